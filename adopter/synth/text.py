"""Positions and source text on the standard ``ast`` tree the check path already built.

The structure abstraction reports spans as ``(line, col, end_line, end_col)`` with 1-based
lines and UTF-8 *byte* columns (what ``ast`` gives); LibCST counts columns in characters.
:class:`SourceIndex` converts between the two and finds, for a span, the statement that
holds it and the block (list of statements) that statement sits in.
"""

from __future__ import annotations

import ast
from ..records import dataclass

from ..structure.graph import segment, walk
from ..structure.treewalk import ast_walk

Span = tuple[int, int, int, int]
# The fields that hold statement lists (``handlers`` and ``cases`` hold the except clauses
# and match cases, whose ``body`` does).
STATEMENT_LISTS = ("body", "orelse", "finalbody", "handlers", "cases")


def span_of(node: ast.AST) -> Span:
    return (node.lineno, node.col_offset, node.end_lineno or node.lineno, node.end_col_offset or 0)


def contains(outer: Span, inner: Span) -> bool:
    return (outer[0], outer[1]) <= (inner[0], inner[1]) and (inner[2], inner[3]) <= (outer[2], outer[3])


def overlaps(a: Span, b: Span) -> bool:
    return (a[0], a[1]) < (b[2], b[3]) and (b[0], b[1]) < (a[2], a[3])


@dataclass
class StmtInfo:
    stmt: ast.stmt
    block: list  # the statement list holding ``stmt``
    index: int
    owner: ast.AST  # the node whose field is ``block``
    field: str


class SourceIndex:
    """Statement lookup and byte/character conversions for one version of a file."""

    def __init__(self, text: str, tree: ast.Module):
        self.text = text
        self.tree = tree
        self.lines = text.split("\n")
        self.stmts: dict[Span, StmtInfo] = {}
        # Statements only live in statement lists: descend through those, not through every
        # expression node (a walk of the whole tree cost as much as the analysis on `check`).
        owners: list[ast.AST] = [tree]
        while owners:
            owner = owners.pop()
            for field in STATEMENT_LISTS:
                block = getattr(owner, field, None)
                if not isinstance(block, list):
                    continue
                for index, stmt in enumerate(block):
                    if isinstance(stmt, ast.stmt):
                        self.stmts.setdefault(span_of(stmt), StmtInfo(stmt, block, index, owner, field))
                    owners.append(stmt)
        self._identifiers: set[str] | None = None

    def assume_fresh_names(self) -> None:
        """Treat every name as free: for callers that only ask whether a plan exists, not
        which names it picks (``check``'s fixable flag), so the module's identifiers, a walk
        of the whole tree, are never collected."""
        self._identifiers = set()

    # -- positions -------------------------------------------------------------
    def char_col(self, line: int, byte_col: int) -> int:
        if not 1 <= line <= len(self.lines):
            return byte_col
        text = self.lines[line - 1]
        if text.isascii():
            return byte_col
        return len(text.encode("utf-8")[:byte_col].decode("utf-8", "replace"))

    def char_span(self, span: Span) -> Span:
        return (span[0], self.char_col(span[0], span[1]), span[2], self.char_col(span[2], span[3]))

    def segment(self, span: Span) -> str:
        return segment(self.lines, span)

    def expr_at(self, span: Span) -> ast.expr | None:
        """The expression written at ``span``, parsed from its text, with the file's positions
        (so that :meth:`segment` of any part of it reads the file); None if the text there is
        not an expression on its own (a starred argument)."""
        text = self.segment(span)
        try:
            tree = ast.parse(f"({text})", mode="eval").body
        except SyntaxError:
            return None
        shift = span[1] - 1  # bytes before the span on its first line, less the "("
        for node in ast_walk(tree):
            if not hasattr(node, "lineno"):
                continue
            if node.lineno == 1:
                node.col_offset += shift
            if getattr(node, "end_lineno", None) == 1:
                node.end_col_offset += shift
            node.lineno += span[0] - 1
            if getattr(node, "end_lineno", None) is not None:
                node.end_lineno += span[0] - 1
        return tree

    # -- lookups ---------------------------------------------------------------
    def stmt(self, span: Span | None) -> StmtInfo | None:
        return self.stmts.get(span) if span is not None else None

    def find_expr(self, root: ast.AST, span: Span, kinds: tuple = (ast.expr,)) -> ast.AST | None:
        for node in ast_walk(root):
            if isinstance(node, kinds) and hasattr(node, "lineno") and span_of(node) == span:
                return node
        return None

    @property
    def identifiers(self) -> set[str]:
        """Every name the module binds or reads anywhere (for collision-free new names)."""
        if self._identifiers is None:
            names: set[str] = set()
            for node in walk(self.tree):  # every node but the ctx/op singletons: ast.walk's set, faster
                if isinstance(node, ast.Name):
                    names.add(node.id)
                elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                    names.add(node.name)
                elif isinstance(node, ast.arg):
                    names.add(node.arg)
                elif isinstance(node, ast.alias):
                    names.add(node.asname or node.name.split(".")[0])
                elif isinstance(node, (ast.Global, ast.Nonlocal)):
                    names.update(node.names)
                elif isinstance(node, ast.ExceptHandler) and node.name:
                    names.add(node.name)
                elif isinstance(node, (ast.MatchAs, ast.MatchStar)) and node.name:
                    names.add(node.name)
                elif isinstance(node, ast.MatchMapping) and node.rest:
                    names.add(node.rest)
            self._identifiers = names
        return self._identifiers


def stored_names(stmt: ast.AST) -> set[str]:
    """Names (and ``self.x``-style dotted targets) a statement may assign, at any depth."""
    out: set[str] = set()
    for node in ast_walk(stmt):
        if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            out.add(node.id)
        elif isinstance(node, (ast.Attribute, ast.Subscript)) and isinstance(node.ctx, (ast.Store, ast.Del)):
            dotted = dotted_name(node)
            if dotted:
                out.add(dotted)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            out.add(node.name)
        elif isinstance(node, ast.alias):
            out.add(node.asname or node.name.split(".")[0])
    return out


def read_names(expr: ast.AST) -> set[str]:
    """Names and dotted attribute chains an expression reads."""
    out: set[str] = set()
    for node in ast_walk(expr):
        if isinstance(node, ast.Name):
            out.add(node.id)
        elif isinstance(node, ast.Attribute):
            dotted = dotted_name(node)
            if dotted:
                out.add(dotted)
    return out


def dotted_name(node: ast.AST) -> str | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Subscript):
        return dotted_name(node.value)
    if isinstance(node, ast.Name):
        return ".".join([node.id, *reversed(parts)])
    return None


WORK = (ast.Call, ast.BinOp, ast.Await, ast.Yield, ast.YieldFrom, ast.NamedExpr, ast.ListComp, ast.SetComp,
        ast.DictComp, ast.GeneratorExp, ast.Lambda, ast.UnaryOp, ast.Compare, ast.BoolOp, ast.IfExp)


def work_spans(expr: ast.AST) -> list[tuple[Span, ast.AST]]:
    """The sub-expressions of ``expr`` that compute something (calls, operations, ...)."""
    return [
        (span_of(n), n) for n in ast_walk(expr)
        if isinstance(n, WORK) and not (isinstance(n, ast.UnaryOp) and isinstance(n.operand, ast.Constant))
    ]


def numeric_literal(node: ast.AST) -> int | float | None:
    """The number a literal writes (``2``, ``-0.5``, ``-1e9``), keeping int or float; None for
    anything else (a bool is no number here)."""
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        inner = numeric_literal(node.operand)
        return None if inner is None else (-inner if isinstance(node.op, ast.USub) else inner)
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
        return node.value
    return None
