"""Make planned edits with LibCST: formatting, comments and blank lines elsewhere stay.

The functions holding edits are parsed once per round; planned spans (character positions)
are mapped to LibCST nodes through ``PositionProvider``, the nodes are replaced, deleted or
moved by one transformer.  New code is laid out like the code it replaces and within the
project's line length (:mod:`.layout`, :mod:`.style`); the kernel imports are added in their
isort place and imports the rewrite left unused are removed (:mod:`.imports`).
"""

from __future__ import annotations

import ast
from ..records import dataclass

import libcst as cst
from libcst.metadata import MetadataWrapper, PositionProvider

from ..structure.graph import walk
from .imports import _uses, add_imports, remove_imports, unused_names, uses_after
from .layout import Refit, _newline, code, fit_if, fit_line, lay_out_call
from .plan import Edits, Straddle, Wrap
from .style import Style

TERMINAL = (cst.Return, cst.Raise, cst.Continue, cst.Break)


class ApplyError(Exception):
    """The edits could not be mapped onto the LibCST tree."""


def _range(position) -> tuple[int, int, int, int]:
    return (position.start.line, position.start.column, position.end.line, position.end.column)


def _span(stmt) -> tuple[int, int]:
    return (min([stmt.lineno, *(d.lineno for d in getattr(stmt, "decorator_list", []))]),
            stmt.end_lineno or stmt.lineno)


def _ranges(tree, bodies: dict | None = None) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """Line ranges (decorators included) of every function, and of each top-level statement;
    ``bodies`` gets each function's range -> its node.

    Functions are statements, so only statement lists are walked (not every expression
    node: a full ``ast.walk`` per round was a tenth of a file's fix time)."""
    functions, tops = [], []
    stack = list(tree.body)
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            functions.append(_span(node))
            if bodies is not None:
                bodies[functions[-1]] = node
        for name in ("body", "orelse", "finalbody", "handlers", "cases"):
            children = getattr(node, name, None)
            if isinstance(children, list):
                stack.extend(child for child in children if isinstance(child, ast.AST))
    for stmt in tree.body:
        start = min([stmt.lineno, *(d.lineno for d in getattr(stmt, "decorator_list", []))])
        tops.append((start, stmt.end_lineno or stmt.lineno))
    return functions, tops


def _blocks(stmt):
    """The indented statement lists of a compound statement."""
    for name in ("body", "orelse", "finalbody"):
        block = getattr(stmt, name, None)
        if isinstance(block, list) and block and isinstance(block[0], ast.stmt):
            yield block
    for part in [*(getattr(stmt, "handlers", None) or []), *(getattr(stmt, "cases", None) or [])]:
        yield part.body


def _narrow(start: int, end: int, pieces: list[Edits], function) -> tuple[int, int]:
    """The lines of a function that its edits need, rather than the whole function.

    Parsing and positioning a whole long ``forward`` with LibCST for one changed line cost
    most of the fix.  The edits need only the statements they touch, in the innermost
    statement list that holds them all, plus, where a statement is deleted, one more on each
    side (a deleted statement hands its comments to the next one, and a block never becomes
    empty); cut at whole lines and statement boundaries, the result is the same text.
    A guard (wrap) needs the statements it guards, which are siblings; moves across an
    ``if`` (straddle) keep the whole function."""
    if function is None or any(p.straddle is not None for p in pieces):
        return start, end
    if any(p.params for p in pieces):  # a new parameter: the def line is edited
        return start, end
    keys = [k for p in pieces for k in (*p.expr, *p.delete, *p.replace_stmt, *p.keywords)]
    keys += [(p.wrap.first[0], 0, p.wrap.last[0], 0) for p in pieces if p.wrap is not None]
    if not keys:
        return start, end
    low, high = min(k[0] for k in keys), max(k[2] for k in keys)
    deleting = any(p.delete for p in pieces)
    block = function.body
    if low < _span(block[0])[0]:
        return start, end
    while True:
        spans = [_span(stmt) for stmt in block]
        touched = [i for i, (a, b) in enumerate(spans) if a <= high and b >= low]
        if not touched:
            return start, end
        if len(touched) == 1:
            stmt = block[touched[0]]
            inner = next((b for b in _blocks(stmt)
                          if _span(b[0])[0] > spans[touched[0]][0] and _span(b[0])[0] <= low
                          and high <= _span(b[-1])[1]), None)
            if inner is not None:
                block = inner
                continue
        first, last = touched[0], touched[-1]
        if deleting:
            first, last = max(first - 1, 0), min(last + 1, len(block) - 1)
        while first > 0 and spans[first][0] <= spans[first - 1][1]:  # a line shared with the one above
            first -= 1
        while last < len(block) - 1 and spans[last][1] >= spans[last + 1][0]:
            last += 1
        if spans[first][0] <= start:  # the body starts on the def line
            return start, end
        return spans[first][0], spans[last][1]


def _leading(line: str) -> str:
    return line[: len(line) - len(line.lstrip(" \t"))]


def _chunk_header(lines: list[str], start: int, end: int, narrow: tuple[int, int]) -> tuple[str, tuple[int, int]]:
    """The ``if True:`` lines that make a cut-out chunk parse at its own columns, and the
    chunk's lines (``narrow``, or the whole ``start``-``end`` where it cannot be cut).

    LibCST indents the blocks it creates by the first indentation it sees in the chunk, so a
    narrowed chunk gets a header whose first indentation is the one the whole function's
    chunk would show: new code is indented the same either way."""
    if narrow != (start, end):
        whole = lines[start - 1:end]
        unit = _first_indent(("if True:\n" if whole[0][:1] in (" ", "\t") else "") + "\n".join(whole) + "\n")
        here = _leading(lines[narrow[0] - 1])
        if unit and here.startswith(unit):
            return "if True:\n" + ("" if here == unit else unit + "if True:\n"), narrow
    indented = lines[start - 1][:1] in (" ", "\t")
    return ("if True:\n" if indented else ""), (start, end)


def _first_indent(text: str) -> str | None:
    """The first INDENT of ``text`` (what LibCST takes as the module's default indent)."""
    import io
    import tokenize

    try:
        for token in tokenize.generate_tokens(io.StringIO(text).readline):
            if token.type == tokenize.INDENT:
                return token.string
    except (tokenize.TokenError, SyntaxError):
        return None
    return None


def _owner(line: int, functions, tops) -> tuple[int, int]:
    inside = [r for r in functions if r[0] <= line <= r[1]]
    if inside:
        return max(inside)  # the innermost function
    for r in tops:
        if r[0] <= line <= r[1]:
            return r
    raise ApplyError(f"no statement holds line {line}")


def _shift(span, lines: int):
    return (span[0] - lines, span[1], span[2] - lines, span[3])


def _pieces(edits: Edits):
    """Each single edit with the line it is anchored at."""
    for key, text in edits.expr.items():
        yield key[0], Edits(expr={key: text})
    for key in edits.delete:
        yield key[0], Edits(delete={key})
    for key, text in edits.replace_stmt.items():
        yield key[0], Edits(replace_stmt={key: text})
    if edits.straddle is not None:
        yield edits.straddle.if_start[0], Edits(straddle=edits.straddle)
    if edits.wrap is not None:
        yield edits.wrap.first[0], Edits(wrap=edits.wrap)
    for key, text in edits.params.items():
        yield key[0], Edits(params={key: text})
    for key, text in edits.keywords.items():
        yield key[0], Edits(keywords={key: text})


def _shift_edits(edits: Edits, lines: int) -> Edits:
    straddle = edits.straddle
    if straddle is not None:
        straddle = Straddle(
            if_start=(straddle.if_start[0] - lines, straddle.if_start[1]),
            moved=tuple((line - lines, col) for line, col in straddle.moved),
            mode=straddle.mode, branch=straddle.branch,
        )
    wrap = edits.wrap
    if wrap is not None:
        wrap = Wrap(first=(wrap.first[0] - lines, wrap.first[1]), last=(wrap.last[0] - lines, wrap.last[1]),
                    guard=wrap.guard, fast=wrap.fast, keep=wrap.keep, prelude=wrap.prelude, hoist=wrap.hoist,
                    inner=wrap.inner, tail=wrap.tail, tail_offsets=wrap.tail_offsets)
    return Edits(
        expr={_shift(k, lines): v for k, v in edits.expr.items()},
        delete={_shift(k, lines) for k in edits.delete},
        replace_stmt={_shift(k, lines): v for k, v in edits.replace_stmt.items()},
        straddle=straddle,
        wrap=wrap,
        params={(k[0] - lines, k[1]): v for k, v in edits.params.items()},
        keywords={_shift(k, lines): v for k, v in edits.keywords.items()},
    )


def apply_edits(text: str, tree, edits: list[Edits], style: Style | None = None, path: str = "") -> str:
    """Apply ``edits`` (character spans of ``text``, whose ``ast`` tree is ``tree``).

    Only the statements an edit touches go through LibCST (a modeling file has hundreds of
    methods; parsing and positioning all of them each round would cost seconds, and a long
    ``forward`` for one changed line most of a fix: :func:`_narrow`): they are cut out as whole
    lines, under ``if True:`` headers when indented, so columns stay the same.  Then the imports (:mod:`.imports`): those the edits left unused are removed
    (never in an ``__init__.py``: ``path`` tells) and the new ones added where isort puts them;
    only the module's head, up to its last import, goes through LibCST for that.
    """
    return rewrite(text, tree, edits, style, path).text


@dataclass
class Rewritten:
    """What :func:`rewrite` made: the new text, its ``ast`` tree when one was parsed on the
    way (None: not parsed), and its name-use counts (:func:`.imports._uses`)."""

    text: str
    tree: ast.Module | None
    uses: dict[str, int]


def rewrite(text: str, tree, edits: list[Edits], style: Style | None = None, path: str = "",
            uses: dict[str, int] | None = None) -> Rewritten:
    """:func:`apply_edits`, with what the caller can reuse; ``uses``: ``text``'s use counts,
    when known (the previous round's :attr:`Rewritten.uses`).

    The unused-import check needs the new module's use counts; they add up per statement,
    so they come from the old counts and the edited chunks alone (parsed small), not from a
    parse and walk of the whole new module.  Where every chunk lies below the module's head
    (the docstring and imports before the first function or class), the old tree still
    describes the new text's head and top-level imports, and serves the import edits."""
    style = style or Style()
    lines = text.split("\n")
    bodies: dict = {}
    functions, tops = _ranges(tree, bodies)
    groups: dict[tuple[int, int], list[Edits]] = {}
    imports: set = set()
    for item in edits:
        imports |= item.imports
        for line, piece in _pieces(item):
            groups.setdefault(_owner(line, functions, tops), []).append(piece)
    # A function nested in another one that is edited too: edit the outer one as a whole.
    merged: list[list] = []
    for (start, end) in sorted(groups):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
            merged[-1][2].extend(groups[(start, end)])
        else:
            merged.append([start, end, list(groups[(start, end)])])
    replaced: list[tuple[int, str, str]] = []  # (first line, old chunk, new chunk), headers included
    for start, end, pieces in reversed(merged):
        header, (start, end) = _chunk_header(lines, start, end, _narrow(start, end, pieces, bodies.get((start, end))))
        chunk = header + "\n".join(lines[start - 1:end]) + "\n"
        offset = start - 1 - header.count("\n")
        new_chunk = _apply_chunk(chunk, [_shift_edits(piece, offset) for piece in pieces], style)
        replaced.append((start, chunk, new_chunk))
        if header:
            if not new_chunk.startswith(header):
                raise ApplyError("the edited function lost its place")
            new_chunk = new_chunk[len(header):]
        if new_chunk.endswith("\n"):
            new_chunk = new_chunk[:-1]
        lines[start - 1:end] = new_chunk.split("\n")
    new_text = "\n".join(lines)
    if uses is None:
        uses = _uses(tree)
    new_uses, below_head = _chunk_uses(uses, replaced, tree)
    if new_uses is None or not below_head:
        new_tree = ast.parse(new_text)
        if new_uses is None:
            new_uses = _uses(new_tree)
    else:
        new_tree = None  # the old tree's head and top-level imports are the new text's
    head_tree = new_tree if new_tree is not None else tree
    unused = unused_names(uses, new_uses, head_tree, path)
    if unused:
        new_text = remove_imports(new_text, head_tree, unused)
        head_tree = new_tree = ast.parse(new_text)
    if imports:
        added = add_imports(new_text, head_tree, imports, style)
        if added != new_text:
            new_text, new_tree = added, None
    return Rewritten(new_text, new_tree, new_uses)


def _chunk_uses(uses: dict[str, int], replaced: list[tuple[int, str, str]], tree) -> tuple[dict | None, bool]:
    """The new module's use counts from the old ones and the replaced chunks (None where a
    chunk does not parse on its own), and whether every chunk lies below the module's head
    and adds no import statement (then the old tree's head is the new text's)."""
    removed: dict[str, int] = {}
    added: dict[str, int] = {}
    below = True
    first = next((_span(stmt)[0] for stmt in tree.body
                  if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))), None)
    for start, old, new in replaced:
        try:
            old_tree, new_tree = ast.parse(old), ast.parse(new)
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            return None, False
        for counts, part in ((removed, old_tree), (added, new_tree)):
            for name, count in _uses(part).items():
                counts[name] = counts.get(name, 0) + count
        if first is None or start <= first or any(isinstance(n, (ast.Import, ast.ImportFrom)) for n in walk(new_tree)):
            below = False
    return uses_after(uses, removed, added), below


@dataclass(frozen=True)
class _Place:
    """Where an edited node sits: the text of its first line before it and of its last line
    after it, its indentation past the block's, the block's, and the line limit for it."""

    before: str
    after: str
    depth: str
    block: int
    limit: int | None


def _holds(outer: tuple, inner: tuple) -> bool:
    return (outer[0], outer[1]) <= (inner[0], inner[1]) and (inner[2], inner[3]) <= (outer[2], outer[3])


def _places(lines: list[str], spans: dict, statements: list, style: Style) -> dict:
    """``spans``: id(node) -> its character span; ``statements``: spans of the statement lines."""
    out = {}
    for node_id, (line, col, end_line, end_col) in spans.items():
        holder = max((st for st in statements if (st[0], st[1]) <= (line, col) and (end_line, end_col) <= (st[2], st[3])),
                     default=None)
        block = holder[1] if holder is not None else 0
        first = lines[line - 1]
        leading = len(first) - len(first.lstrip(" \t"))
        depth = " " * max(leading - block, 0)
        longest = max(len(lines[i - 1]) for i in range(line, end_line + 1))
        out[node_id] = _Place(first[:col], lines[end_line - 1][end_col:], depth, block, style.limit_for(longest))
    return out


def _apply_chunk(text: str, edits: list[Edits], style: Style | None = None) -> str:
    style = style or Style()
    module = cst.parse_module(text)
    wrapper = MetadataWrapper(module, unsafe_skip_copy=True)
    positions = wrapper.resolve(PositionProvider)

    expr: dict = {}
    delete: set = set()
    replace: dict = {}
    straddles: list[Straddle] = []
    wraps: list[Wrap] = []
    params: dict = {}
    keywords: dict = {}
    for item in edits:
        params.update(item.params)
        keywords.update(item.keywords)
        expr.update(item.expr)
        delete |= item.delete
        replace.update(item.replace_stmt)
        if item.straddle is not None:
            straddles.append(item.straddle)
        if item.wrap is not None:
            wraps.append(item.wrap)

    starts_wanted = {s.if_start for s in straddles} | {p for s in straddles for p in s.moved}
    starts_wanted |= {w.first for w in wraps} | {w.last for w in wraps}
    expr_nodes: dict[int, str] = {}
    small_delete: set[int] = set()
    small_replace: dict[int, str] = {}
    by_start: dict[tuple[int, int], cst.CSTNode] = {}
    found_expr: dict = {}
    spans: dict[int, tuple] = {}  # id(edited node) -> its span
    callees: set[int] = set()  # the ``func`` of every call (an init edit replaces a callee)
    statements: list[tuple] = []  # spans of the statement lines (for the block indentation)
    added: dict[int, str] = {}  # id(def or call) -> the parameter or keyword argument appended to it
    headers: dict[int, tuple[int, int | None]] = {}  # id(def given a parameter) -> its column, its line limit
    for node, position in positions.items():
        key = _range(position)
        if isinstance(node, cst.FunctionDef) and key[:2] in params:
            added[id(node)] = params[key[:2]]
            # (a def line the new parameter makes too long gets one parameter a line)
            headers[id(node)] = (key[1], style.limit_for(len(text.split("\n")[key[0] - 1])))
        elif isinstance(node, cst.Call) and key in keywords:
            added[id(node)] = keywords[key]
            spans[id(node)] = key  # (its statement is refitted when the new argument makes it too long)
        if isinstance(node, cst.SimpleStatementLine):
            statements.append(key)
        if isinstance(node, cst.Call):
            callees.add(id(node.func))
        if key in expr and isinstance(node, cst.BaseExpression):
            previous = found_expr.get(key)
            if previous is None or isinstance(node, (cst.Call, cst.BinaryOperation)):
                found_expr[key] = node
        elif isinstance(node, cst.BaseSmallStatement):
            if key in delete:
                small_delete.add(id(node))
            elif key in replace:
                small_replace[id(node)] = replace[key]
                spans[id(node)] = key
        if isinstance(node, (cst.SimpleStatementLine, cst.BaseCompoundStatement)) and key[:2] in starts_wanted:
            by_start.setdefault(key[:2], node)
    for key, new_text in expr.items():
        node = found_expr.get(key)
        if node is None:
            raise ApplyError(f"no expression at {key[0]}:{key[1] + 1}")
        expr_nodes[id(node)] = new_text
        spans[id(node)] = key
    if len(small_delete) != len(delete) or len(small_replace) != len(replace):
        raise ApplyError("a statement to edit could not be located")
    if len(added) != len(params) + len(keywords):
        raise ApplyError("a function or call to extend could not be located")
    moves = []
    for straddle in straddles:
        if_node = by_start.get(straddle.if_start)
        moved = [by_start.get(p) for p in straddle.moved]
        if not isinstance(if_node, cst.If) or any(m is None for m in moved):
            raise ApplyError("the if-statement to restructure could not be located")
        moves.append((straddle, if_node, moved))
    wrap_nodes = {}
    for wrap in wraps:
        first, last = by_start.get(wrap.first), by_start.get(wrap.last)
        if first is None or last is None:
            raise ApplyError("the statements to guard could not be located")
        wrap_nodes[id(first)] = (wrap, id(last))

    # Only the nodes holding an edit need visiting: the transformer leaves every other node
    # as it is, and LibCST's visit of each untouched node cost most of the chunk's time.
    targets = [*expr, *delete, *replace, *keywords, *((p[0], p[1], p[0], p[1]) for p in starts_wanted),
               *((p[0], p[1], p[0], p[1]) for p in params)]
    holding = {id(node) for node, position in positions.items()
               if any(_holds(_range(position), key) for key in targets)}
    places = _places(text.split("\n"), spans, statements, style)
    for wrap in wraps:
        places[id(by_start[wrap.first])] = _Place("", "", "", wrap.first[1], style.line_length)
    wanted = set(expr_nodes) | small_delete | set(small_replace) | set(added)
    for visit in (holding, None):  # None: every node, should a span not hold its edit's nodes
        transformer = _Transformer(expr_nodes, small_delete, small_replace, moves, wrap_nodes,
                                   places=places, style=style, unit=module.default_indent,
                                   callees={i for i in callees if i in expr_nodes}, holding=visit, added=added,
                                   headers=headers)
        new_module = wrapper.module.visit(transformer)
        if transformer.done == wanted and not transformer.pending_moves and not transformer.pending_wraps:
            break
    if transformer.pending_moves or transformer.pending_wraps:
        raise ApplyError("statements to move could not be located")
    return new_module.code


class _CommentCollector(cst.CSTVisitor):
    def __init__(self):
        super().__init__()
        self.found: list[cst.Comment] = []

    def visit_Comment(self, node: cst.Comment) -> None:
        self.found.append(node)


def _comments(*nodes) -> list[cst.Comment]:
    collector = _CommentCollector()
    for node in nodes:
        node.visit(collector)
    return collector.found


def _comments_above(kept: list, fast: list) -> list[list[cst.EmptyLine]]:
    """For each of the ``fast`` statements that replace the ``kept`` ones (whose first one's
    lines above stay above the new code), the comment lines to put above it.  A comment stays
    with what it was written beside: a statement the new code writes again (the same text)
    keeps the comments of its own and of the replaced statements before it, and those of the
    replaced statements after the last one written again go above the first new statement
    after it (set apart by a blank line, if they were).  When the new code writes none of the
    statements again, or has none after the last, every comment goes above the first."""
    def text(node) -> str:
        return "".join(code(node.with_changes(leading_lines=[], trailing_whitespace=cst.TrailingWhitespace())).split())

    own = [([] if k == 0 else [line for line in stmt.leading_lines if line.comment is not None])
           + [_comment_line(c) for c in _comments(stmt.with_changes(leading_lines=[]))] for k, stmt in enumerate(kept)]
    blank = [k > 0 and bool(stmt.leading_lines) and stmt.leading_lines[0].comment is None
             for k, stmt in enumerate(kept)]
    texts = [text(stmt) if isinstance(stmt, cst.SimpleStatementLine) else None for stmt in kept]
    above: list[list[cst.EmptyLine]] = [[] for _ in fast]
    cursor = 0
    for index, node in enumerate(fast):
        same = text(node) if isinstance(node, cst.SimpleStatementLine) else None
        found = next((k for k in range(cursor, len(kept)) if same is not None and texts[k] == same), None)
        if found is not None:
            above[index] = [line for k in range(cursor, found + 1) for line in own[k]]
            cursor = found + 1
            continue
        rest = [line for k in range(cursor, len(kept)) for line in own[k]]
        if cursor and rest:
            first = next(k for k in range(cursor, len(kept)) if own[k])
            above[index] = ([cst.EmptyLine(indent=False)] if blank[first] else []) + rest
            cursor = len(kept)
            break
    if cursor < len(kept) or not cursor:
        # nothing written again, or no new statement after the last one: all above the first
        return [[line for comments in own for line in comments], *([] for _ in fast[1:])]
    return above


def _comment_line(comment: cst.Comment) -> cst.EmptyLine:
    return cst.EmptyLine(indent=True, whitespace=cst.SimpleWhitespace(""), comment=comment)


def _comment_lines(line: cst.SimpleStatementLine) -> list[cst.EmptyLine]:
    """What a deleted line leaves behind: the lines above it and every comment in it."""
    inner = _comments(*line.body, line.trailing_whitespace)
    return [*line.leading_lines, *(_comment_line(c) for c in inner)]


def _as_block(body: cst.BaseSuite) -> cst.IndentedBlock:
    if isinstance(body, cst.IndentedBlock):
        return body
    assert isinstance(body, cst.SimpleStatementSuite)
    line = cst.SimpleStatementLine(body=list(body.body), trailing_whitespace=body.trailing_whitespace)
    return cst.IndentedBlock(body=[line])


def _terminates(block: cst.IndentedBlock) -> bool:
    if not block.body:
        return False
    last = block.body[-1]
    return isinstance(last, cst.SimpleStatementLine) and bool(last.body) and isinstance(last.body[-1], TERMINAL)


def _without_blank_lines(stmt):
    return stmt.with_changes(leading_lines=[line for line in stmt.leading_lines if line.comment is not None])


def _appended(items: list, new):
    """``items`` (parameters or arguments) with ``new`` last, in their layout: after a trailing
    comma (one item a line) the new item takes the last item's comma and the last one the comma
    before it, so the new item gets a line of its own and the list keeps its trailing comma."""
    if not items:
        return [new]
    last = items[-1]
    if isinstance(last.comma, cst.Comma):
        before = items[-2].comma if len(items) > 1 and isinstance(items[-2].comma, cst.Comma) else \
            cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))
        return [*items[:-1], last.with_changes(comma=before), new.with_changes(comma=last.comma)]
    # (the space before the closing bracket, a line break in a wrapped list, follows the new item)
    space = "whitespace_after_param" if isinstance(last, cst.Param) else "whitespace_after_arg"
    return [*items[:-1], last.with_changes(**{space: cst.SimpleWhitespace("")}),
            new.with_changes(**{space: getattr(last, space)})]


def _in_block(text: str, place: _Place | None) -> str:
    """New code ``text`` for a node of a block indented ``place.block``, its continuation lines
    as the file writes them (a multi-line argument kept from the source: ``betas=(`` then
    ``beta_1,`` a line): without the block's indentation, which the code is parsed outside of and
    the block adds back when the code is printed in it (else those lines would be indented twice)."""
    if place is None or not place.block or "\n" not in text:
        return text
    indent = place.before[:place.block]
    if indent.strip():
        return text
    first, *rest = text.split("\n")
    return "\n".join([first, *(line[place.block:] if line.startswith(indent) else line for line in rest)])


def _keyword(text: str) -> cst.Arg:
    name, value = text.split("=", 1)
    return cst.Arg(keyword=cst.Name(name.strip()), value=cst.parse_expression(value.strip()),
                   equal=cst.AssignEqual(whitespace_before=cst.SimpleWhitespace(""),
                                         whitespace_after=cst.SimpleWhitespace("")))


def _fit_header(node: cst.FunctionDef, column: int, unit: str, limit: int | None) -> cst.FunctionDef:
    """``node`` with one parameter a line (a trailing comma, the closing bracket under the
    ``def``) when its one-line header is longer than ``limit``, as Black writes it."""
    params = node.params
    if limit is None or any(isinstance(p.comma, cst.Comma) and "\n" in code(p.comma) for p in params.params):
        return node  # (already one parameter a line)
    if "\n" in code(node.whitespace_before_params):
        # Black's hanging form: every parameter on one line of its own under the def; it
        # becomes one parameter a line when the new parameter makes that line too long
        line = code(params).strip()
        if "\n" in line or column + len(unit) + len(line) <= limit:
            return node
    else:
        returns = f" -> {code(node.returns.annotation)}" if node.returns is not None else ""
        header = f"{'async ' if node.asynchronous else ''}def {node.name.value}({code(params)}){returns}:"
        if column + len(header.split("\n")[0]) <= limit:
            return node
    if params.posonly_params or params.star_arg is not cst.MaybeSentinel.DEFAULT or params.kwonly_params or \
            params.star_kwarg is not None or not params.params:
        return node  # (markers and starred parameters: left on one line)
    count = len(params.params)
    laid = [p.with_changes(comma=cst.Comma(whitespace_after=_newline(unit if i < count - 1 else "")),
                           whitespace_after_param=cst.SimpleWhitespace(""))
            for i, p in enumerate(params.params)]
    return node.with_changes(params=params.with_changes(params=laid), whitespace_before_params=_newline(unit))


def _with_param(params: cst.Parameters, text: str) -> cst.Parameters:
    """``params`` with the parameter ``text`` (``name: type = default``) appended: after the
    positional parameters, or after the keyword-only ones where the function has ``*args`` or
    a bare ``*`` (a positional parameter there would take an extra positional argument)."""
    new = cst.parse_module(f"def f({text}): pass\n").body[0].params.params[0]
    if isinstance(params.star_arg, cst.Param) or params.kwonly_params or isinstance(params.star_arg, cst.ParamStar):
        return params.with_changes(kwonly_params=_appended(list(params.kwonly_params), new))
    return params.with_changes(params=_appended(list(params.params), new))


class _Transformer(cst.CSTTransformer):
    def __init__(self, expr_nodes, small_delete, small_replace, moves, wraps=None, places=None,
                 style: Style | None = None, unit: str = "    ", callees=None, holding=None, added=None,
                 headers=None):
        super().__init__()
        self.headers: dict[int, tuple[int, int | None]] = headers or {}
        self.added: dict[int, str] = added or {}  # id(def or call) -> the parameter or keyword appended
        # ids of the nodes whose span holds an edit (None: visit everything); the others are
        # not descended into, since nothing below them changes.
        self.holding = holding
        self.done: set[int] = set()  # ids of the edited nodes reached
        # A replaced callee (``nn.Conv2d`` -> ``kernel(nn.Conv2d)``) is not laid out itself:
        # its statement is, when too long, at the call's own brackets as Black would.
        self.callees: set[int] = callees or set()
        self.refit: dict[int, _Place] = {}  # id(statement line) -> where the callee was
        self.places: dict[int, _Place] = places or {}
        self.style = style or Style()
        self.unit = unit
        self.wraps = wraps or {}  # id(first statement) -> (Wrap, id(last statement))
        self.pending_wraps = set(self.wraps)
        self.expr_nodes = expr_nodes
        self.small_delete = small_delete
        self.small_replace = small_replace
        self.removed_lines: dict[int, cst.CSTNode] = {}  # values keep the ids valid
        self.moves = {id(if_node): (straddle, [id(m) for m in moved]) for straddle, if_node, moved in moves}
        self.moved_ids = {id(m) for _, _, moved in moves for m in moved}
        self.pending_moves = set(self.moves)
        self.statements: list = []  # the statements being visited, innermost last
        self.comments: dict[int, list[cst.Comment]] = {}  # statement -> comments to put above it

    def on_visit(self, node) -> bool:
        if isinstance(node, (cst.SimpleStatementLine, cst.BaseCompoundStatement)):
            self.statements.append(node)
        if self.holding is not None and id(node) not in self.holding and not isinstance(node, cst.Module):
            super().on_visit(node)
            return False
        return super().on_visit(node)

    def on_leave(self, original_node, updated_node):
        extra = self.added.get(id(original_node))
        if extra is not None:
            self.done.add(id(original_node))
            if isinstance(updated_node, cst.FunctionDef):
                column, limit = self.headers.get(id(original_node), (0, None))
                updated_node = _fit_header(updated_node.with_changes(params=_with_param(updated_node.params, extra)),
                                           column, self.unit, limit)
            else:
                updated_node = updated_node.with_changes(args=_appended(list(updated_node.args), _keyword(extra)))
                place = self.places.get(id(original_node))
                if place is not None and self.statements:
                    self.refit.setdefault(id(self.statements[-1]), place)
        new_text = self.expr_nodes.get(id(original_node))
        if new_text is not None:
            self.done.add(id(original_node))
            replacement = cst.parse_expression(_in_block(new_text, self.places.get(id(original_node))))
            if getattr(updated_node, "lpar", None):
                replacement = replacement.with_changes(lpar=updated_node.lpar, rpar=updated_node.rpar)
            # Comments inside the replaced code stay beside the argument they were beside, or
            # move above its statement.
            lost = [c for c in _comments(original_node) if c.value not in new_text]
            place = self.places.get(id(original_node))
            if place is not None and id(original_node) in self.callees:
                if self.statements:
                    self.refit[id(self.statements[-1])] = place
            elif place is not None:
                replacement, lost = lay_out_call(replacement, original_node, lost, place.before, place.after,
                                                 place.depth, self.unit, place.limit)
            if lost and self.statements:
                self.comments.setdefault(id(self.statements[-1]), []).extend(lost)
            return replacement
        result = super().on_leave(original_node, updated_node)
        if isinstance(original_node, (cst.SimpleStatementLine, cst.BaseCompoundStatement)):
            self.statements.pop()
            place = self.refit.pop(id(original_node), None)
            if place is not None and isinstance(result, cst.SimpleStatementLine):
                result = fit_line(result, place.block, self.unit, place.limit)
            moved = self.comments.pop(id(original_node), None)
            if moved and isinstance(result, (cst.SimpleStatementLine, cst.BaseCompoundStatement)):
                result = result.with_changes(leading_lines=[*result.leading_lines, *map(_comment_line, moved)])
        return result

    def leave_SimpleStatementLine(self, original_node, updated_node):
        if not any(id(s) in self.small_delete or id(s) in self.small_replace for s in original_node.body):
            return updated_node
        body = []
        for original, updated in zip(original_node.body, updated_node.body):
            if id(original) in self.small_delete or id(original) in self.small_replace:
                self.done.add(id(original))
            if id(original) in self.small_delete:
                continue
            if id(original) in self.small_replace:
                parsed = cst.parse_statement(_in_block(self.small_replace[id(original)],
                                                       self.places.get(id(original))) + "\n")
                assert isinstance(parsed, cst.SimpleStatementLine)
                new_stmt = parsed.body[0]
                lost = [c for c in _comments(original) if c.value not in code(new_stmt)]
                place = self.places.get(id(original))
                value = getattr(new_stmt, "value", None)
                if place is not None and isinstance(value, cst.Call):
                    head = code(new_stmt)[: code(new_stmt).index(code(value))] if code(value) in code(new_stmt) else ""
                    laid, lost = lay_out_call(value, original, lost, place.before + head, place.after,
                                              place.depth, self.unit, place.limit)
                    new_stmt = new_stmt.with_changes(value=laid)
                if lost:
                    self.comments.setdefault(id(original_node), []).extend(lost)
                updated = new_stmt.with_changes(semicolon=updated.semicolon)
            body.append(updated)
        if not body:
            self.removed_lines[id(updated_node)] = updated_node
            return updated_node
        if body[-1] is not updated_node.body[-1]:
            body[-1] = body[-1].with_changes(semicolon=cst.MaybeSentinel.DEFAULT)
        return updated_node.with_changes(body=body)

    def leave_IndentedBlock(self, original_node, updated_node):
        return updated_node.with_changes(body=self._rebuild(original_node.body, updated_node.body))

    def leave_Module(self, original_node, updated_node):
        return updated_node.with_changes(body=self._rebuild(original_node.body, updated_node.body))

    def _rebuild(self, originals, updates) -> list:
        relevant = any(id(u) in self.removed_lines for u in updates) or any(
            id(o) in self.moves or id(o) in self.moved_ids for o in originals
        )
        if any(id(o) in self.wraps for o in originals):
            originals, updates = self._wrap(list(originals), list(updates))
        if not relevant:
            return list(updates)
        moved_here = {id(o): u for o, u in zip(originals, updates) if id(o) in self.moved_ids}
        out = []
        pending: list[cst.EmptyLine] = []
        for original, updated in zip(originals, updates):
            if id(updated) in self.removed_lines:
                pending += _comment_lines(updated)
                continue
            if id(original) in self.moved_ids:
                continue
            if id(original) in self.moves:
                straddle, moved_ids = self.moves[id(original)]
                moved = [moved_here[i] for i in moved_ids if i in moved_here]
                if len(moved) != len(moved_ids):
                    raise ApplyError("statements to move are not next to the if-statement")
                updated = self._straddle(straddle, updated, moved)
                self.pending_moves.discard(id(original))
            if pending:
                updated = updated.with_changes(leading_lines=[*pending, *updated.leading_lines])
                pending = []
            out.append(updated)
        return out

    def _wrap(self, originals: list, updates: list) -> tuple[list, list]:
        """Replace each wrapped range of statements by its guarded (or fast-only) form."""
        out_o, out_u = [], []
        i = 0
        while i < len(originals):
            entry = self.wraps.get(id(originals[i]))
            if entry is None:
                out_o.append(originals[i])
                out_u.append(updates[i])
                i += 1
                continue
            wrap, last_id = entry
            j = next((k for k in range(i, len(originals)) if id(originals[k]) == last_id), None)
            if j is None:
                raise ApplyError("the statements to guard are not in one block")
            kept = updates[i:j + 1]
            hoisted = []
            if wrap.hoist or wrap.tail_offsets:
                hoisted = [kept[h] for h in wrap.hoist]
                kept = [s for h, s in enumerate(kept) if h not in {*wrap.hoist, *wrap.tail_offsets}]
            lead = list(kept[0].leading_lines)
            fast = list(cst.parse_module(wrap.fast if wrap.fast.endswith("\n") else wrap.fast + "\n").body)
            depth, step = wrap.first[1], len(self.unit)
            if wrap.guard is None and wrap.keep:
                # The fast statements go before the statements, which stay as they are.
                fast = self._refit(fast, depth, None)
                new_nodes = [fast[0].with_changes(leading_lines=lead), *fast[1:],
                             kept[0].with_changes(leading_lines=[]), *kept[1:]]
            elif wrap.guard is None:
                # The replaced statements go; their comments stay, above the new code: above the
                # statement the new code writes again, or the first new one after it.
                above = _comments_above(kept, fast)
                fast = self._refit(fast, depth, None)
                new_nodes = [node.with_changes(leading_lines=[*(lead if index == 0 else []), *above[index]])
                             for index, node in enumerate(fast)]
            else:
                # The kept statements move one level in (one per guard): wrap those that no
                # longer fit.
                levels = 1 + len(wrap.inner)
                body = self._refit([kept[0].with_changes(leading_lines=[]), *kept[1:]], depth + step * levels,
                                   step * levels)
                if wrap.prelude:
                    prelude = list(cst.parse_module(wrap.prelude.rstrip("\n") + "\n").body)
                    body = [*self._refit(prelude, depth + step * levels, None), *body]
                body = self._inner_guards(wrap.inner, body, depth)
                guarded = cst.If(
                    test=cst.parse_expression(wrap.guard), body=cst.IndentedBlock(body=body),
                    orelse=cst.Else(body=cst.IndentedBlock(body=self._refit(fast, depth + step, None))),
                    leading_lines=lead,
                )
                if hoisted:
                    # the moved statements first, where the range began; the if after them, with
                    # the first one's own leading lines
                    guarded = guarded.with_changes(leading_lines=list(hoisted[0].leading_lines))
                    hoisted = [hoisted[0].with_changes(leading_lines=lead), *hoisted[1:]]
                new_nodes = [*hoisted, fit_if(guarded, depth, self.unit, self.style.line_length)]
                if wrap.tail:
                    new_nodes += self._refit(list(cst.parse_module(wrap.tail.rstrip("\n") + "\n").body), depth, None)
            for node in new_nodes:  # fresh nodes: nothing else refers to them
                out_o.append(node)
                out_u.append(node)
            self.pending_wraps.discard(id(originals[i]))
            i = j + 1
        return out_o, out_u

    def _inner_guards(self, inner: tuple, body: list, depth: int) -> list:
        """``body`` (at the innermost level) inside the further guarded alternatives of a wrap,
        the last one innermost: ``if guard: <body> else: <fast>`` at each level."""
        step = len(self.unit)
        for level in range(len(inner), 0, -1):
            guard, fast = inner[level - 1]
            at = depth + step * level
            nodes = list(cst.parse_module(fast if fast.endswith("\n") else fast + "\n").body)
            node = cst.If(test=cst.parse_expression(guard), body=cst.IndentedBlock(body=body),
                          orelse=cst.Else(body=cst.IndentedBlock(body=self._refit(nodes, at + step, None))))
            body = [fit_if(node, at, self.unit, self.style.line_length)]
        return body

    def _refit(self, statements: list, depth: int, shift: int | None) -> list:
        """``statements`` (at indentation ``depth``, moved right by ``shift``; None: new code)
        with the lines that no longer fit wrapped."""
        return [node.visit(Refit(depth, self.unit, self.style, shift)) for node in statements]

    def _straddle(self, straddle: Straddle, if_node: cst.If, moved: list) -> cst.If:
        moved = self._refit(moved, straddle.if_start[1] + len(self.unit), len(self.unit))
        if straddle.mode == "before":
            lead = list(moved[0].leading_lines)
            copies = [_without_blank_lines(moved[0]).with_changes(leading_lines=[]), *moved[1:]]
            body = _as_block(if_node.body)
            body = body.with_changes(body=[*copies, *body.body])
            orelse = if_node.orelse
            if orelse is None:
                orelse = cst.Else(body=cst.IndentedBlock(body=copies))
            elif isinstance(orelse, cst.Else):
                block = _as_block(orelse.body)
                orelse = orelse.with_changes(body=block.with_changes(body=[*copies, *block.body]))
            else:  # elif: becomes else: <moved> if ...
                orelse = cst.Else(body=cst.IndentedBlock(body=[*copies, orelse.with_changes(leading_lines=[])]))
            own = list(if_node.leading_lines)
            if any(line.comment is None for line in lead):
                # The moved statements' blank line now separates the if: do not double it.
                own = [line for line in own if line.comment is not None]
            return if_node.with_changes(body=body, orelse=orelse, leading_lines=[*lead, *own])
        copies = [_without_blank_lines(moved[0]), *moved[1:]]
        body = _as_block(if_node.body)
        if not _terminates(body):
            body = body.with_changes(body=[*body.body, *copies])
        orelse = if_node.orelse
        if orelse is None:
            orelse = cst.Else(body=cst.IndentedBlock(body=copies))
        elif isinstance(orelse, cst.Else):
            block = _as_block(orelse.body)
            if not _terminates(block):
                orelse = orelse.with_changes(body=block.with_changes(body=[*block.body, *copies]))
        else:
            orelse = cst.Else(body=cst.IndentedBlock(body=[orelse.with_changes(leading_lines=[]), *copies]))
        return if_node.with_changes(body=body, orelse=orelse)
