"""Module-level imports a rewrite adds or leaves unused, placed as the project's sorter would.

A patch's import lines are the first thing a reviewer sees and the first thing Ruff/isort
(``I001``) and pyflakes (``F401``) check, so they follow the isort conventions that Ruff's
``I`` rules implement with their defaults:

* a name from a module already imported with ``from module import a`` joins that line
  (``from module import a, b``), at its sorted place when the line's names are sorted
  (constants, then classes, then the rest, case-insensitively: ``order-by-type``), at the
  end otherwise; a parenthesised one-name-per-line import gets one more line in its layout;
* a new ``from module import name`` goes into its section (``__future__``, standard library,
  third party, first party, local: :func:`section`) of the module's leading imports, at its
  sorted place there (``import x`` lines before ``from x import`` lines, modules compared
  case-insensitively); a section that does not exist yet is opened, one blank line apart, after
  the sections before it (after the docstring and ``from __future__``, before any code);
* an import line longer than the project's line length is wrapped in parentheses, one name a
  line with a trailing comma (Black's and Ruff's layout);
* imports of the module's own top-level import lines whose every use the rewrite took away
  are removed (:func:`remove_unused`); one that was unused already stays, and so does one
  named in ``__all__``, and every import of an ``__init__.py`` (re-exports).

Only top-level import statements are touched: nothing goes into a function, an
``if TYPE_CHECKING:`` block or a ``try: import ... except ImportError:`` block, and such blocks
are left as they are.

Why not LibCST's ``AddImportsVisitor`` and ``RemoveImportsVisitor`` alone: the first appends
a merged name at the end of the line (unsorted, one long line) and puts every new line after the
last import whatever its section, so Ruff's ``I001`` fires on the patched file; the second,
given ``Tensor`` to drop from a parenthesised ``from torch import (nn, Tensor,  # comment)``,
leaves ``(\\n    nn)`` and drops the comments above and beside the removed line, and it needs
scope metadata over the whole module (about a second per large file).  So both are done here
on LibCST nodes of the module's head only (the docstring and the import block); usage is read
from the ``ast`` trees the rewrite has anyway.  ``AddImportsVisitor``'s contract is kept: an
import that exists already is not added twice.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterable

import libcst as cst

from ..structure.graph import walk
from .style import Style

FUTURE, STDLIB, THIRD_PARTY, FIRST_PARTY, LOCAL = range(5)
IMPORT_LINE_DEFAULT = 88  # the length Ruff's isort rules wrap at when nothing is configured

Request = tuple[str, str, "str | None"]  # (module, name, alias)


# ----------------------------------------------------------------------------- ordering


def section(module: str, style: Style, level: int = 0) -> int:
    """The isort section of an imported module."""
    if level:
        return LOCAL
    top = module.split(".")[0]
    if top == "__future__":
        return FUTURE
    if top in style.first_party:
        return FIRST_PARTY
    if top in sys.stdlib_module_names:
        return STDLIB
    return THIRD_PARTY


def member_key(name: str) -> tuple:
    """isort's ``order-by-type`` order of the names of one ``from`` import."""
    if name.isupper() and len(name) > 1:
        rank = 0
    elif name[:1].isupper():
        rank = 1
    else:
        rank = 2
    return (rank, name.lower(), name)


def _dotted(node) -> str:
    if node is None:
        return ""
    if isinstance(node, cst.Name):
        return node.value
    if isinstance(node, cst.Attribute):
        return f"{_dotted(node.value)}.{node.attr.value}"
    return ""


def _statement_key(stmt: cst.BaseSmallStatement) -> tuple:
    if isinstance(stmt, cst.Import):
        return (0, _dotted(stmt.names[0].name).lower())
    assert isinstance(stmt, cst.ImportFrom)
    return (1, "." * len(stmt.relative) + _dotted(stmt.module).lower())


def _statement_section(stmt, style: Style) -> int:
    if isinstance(stmt, cst.Import):
        return section(_dotted(stmt.names[0].name), style)
    return section(_dotted(stmt.module), style, len(stmt.relative))


def _import_line(node) -> cst.BaseSmallStatement | None:
    """The import of a top-level line holding exactly one import statement."""
    if isinstance(node, cst.SimpleStatementLine) and len(node.body) == 1 and isinstance(
        node.body[0], (cst.Import, cst.ImportFrom)
    ):
        return node.body[0]
    return None


# ----------------------------------------------------------------------------- the head


def _head_end(tree: ast.Module) -> int:
    """The last line of the module's head: the docstring and every top-level import statement
    before the first function or class (0 when there is nothing to keep)."""
    end = 0
    for index, stmt in enumerate(tree.body):
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            break
        if isinstance(stmt, (ast.Import, ast.ImportFrom)) or (
            index == 0 and isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant)
            and isinstance(stmt.value.value, str)
        ):
            end = stmt.end_lineno or stmt.lineno
    return end


PLACEHOLDER = "__adopter_kept_statement_{}__ = None"


def _stand_ins(tree: ast.Module, lines: list[str], end: int) -> tuple[list[str], dict[str, list[str]]]:
    """The head's lines with every statement that is not an import (nor the docstring) stood
    in for by a one-line placeholder: such a statement may be anything (a megabyte dict
    literal, a ``try:`` block), costs LibCST time and memory, and is never edited here.
    Returns the head's lines and placeholder -> the lines it stands for."""
    out: list[str] = []
    kept: dict[str, list[str]] = {}
    taken: set[int] = set()  # lines of imports (a statement sharing one stays as it is)
    for stmt in tree.body:
        if stmt.lineno > end:
            break
        if isinstance(stmt, (ast.Import, ast.ImportFrom)):
            taken.update(range(stmt.lineno, (stmt.end_lineno or stmt.lineno) + 1))
    cursor = 1
    for index, stmt in enumerate(tree.body):
        if stmt.lineno > end:
            break
        first, last = stmt.lineno, stmt.end_lineno or stmt.lineno
        docstring = index == 0 and isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant)
        if isinstance(stmt, (ast.Import, ast.ImportFrom)) or docstring or taken & set(range(first, last + 1)):
            continue
        if first < cursor or lines[first - 1][: stmt.col_offset].strip() or lines[last - 1][stmt.end_col_offset:].strip():
            continue  # shares its lines with another statement
        out += lines[cursor - 1:first - 1]
        name = PLACEHOLDER.format(len(kept))
        kept[name] = lines[first - 1:last]
        out.append(name)
        cursor = last + 1
    out += lines[cursor - 1:end]
    return out, kept


def _edit_head(text: str, tree: ast.Module, edit) -> str:
    """Run ``edit(module) -> module`` on the LibCST module of the head of ``text`` only (its
    other statements stood in for: :func:`_stand_ins`)."""
    lines = text.split("\n")
    end = _head_end(tree)
    rest = lines[end:]
    head_lines, kept = _stand_ins(tree, lines, end) if end else ([], {})
    module = cst.parse_module("\n".join(head_lines) + "\n" if end else "")
    new_head = edit(module, bool(end)).code
    if not end:
        # Nothing kept: the new lines go above the first statement (after leading comments).
        return _prepend(text, tree, new_head)
    if kept:
        restored = []
        for line in new_head.split("\n"):
            restored.extend(kept.pop(line, [line]))
        if kept:
            raise ValueError("a statement among the imports was lost")
        new_head = "\n".join(restored)
    if not new_head.strip():  # every line of the head went: so do the blank lines after it
        return "\n".join(rest).lstrip("\n")
    return new_head + "\n".join(rest) if rest else new_head


def _prepend(text: str, tree: ast.Module, new_lines: str) -> str:
    """Put ``new_lines`` (import lines) above the first statement of a module with neither
    docstring nor imports, after its leading comment block, with the blank lines isort uses."""
    if not new_lines.strip():
        return text
    lines = text.split("\n")
    first = tree.body[0].lineno if tree.body else len(lines) + 1
    # Comments and blank lines above the first statement stay above the imports, except the
    # comment lines directly above it (they belong to it).
    cut = first - 1
    while cut > 0 and lines[cut - 1].lstrip().startswith("#"):
        cut -= 1
    while cut > 0 and not lines[cut - 1].strip():
        cut -= 1
    head, tail = lines[:cut], lines[cut:]
    while tail and not tail[0].strip():
        tail.pop(0)
    block = new_lines.strip("\n").split("\n")
    compound = bool(tree.body) and isinstance(
        tree.body[0], (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
    gap = ["", ""] if compound or (tail and tail[0].lstrip().startswith("@")) else [""]
    out = [*head, *([""] if head else []), *block, *(gap if tail and tail != [""] else []), *tail]
    return "\n".join(out)


# ----------------------------------------------------------------------------- adding


def _alias(name: str, alias: str | None) -> cst.ImportAlias:
    return cst.ImportAlias(
        name=cst.Name(name), asname=cst.AsName(name=cst.Name(alias)) if alias else None,
    )


def _alias_name(alias: cst.ImportAlias) -> str:
    return _dotted(alias.name)


def _alias_as(alias: cst.ImportAlias) -> str | None:
    return alias.asname.name.value if alias.asname and isinstance(alias.asname.name, cst.Name) else None


def _line_length(node: cst.CSTNode, module: cst.Module) -> int:
    return max(len(line) for line in module.code_for_node(node).split("\n"))


def _vertical(stmt: cst.ImportFrom, indent: str) -> cst.ImportFrom:
    """``from m import (\\n    a,\\n    b,\\n)``: one name a line, trailing comma."""
    inner = cst.ParenthesizedWhitespace(
        first_line=cst.TrailingWhitespace(), indent=True, last_line=cst.SimpleWhitespace(indent),
    )
    closing = cst.ParenthesizedWhitespace(first_line=cst.TrailingWhitespace(), indent=True,
                                          last_line=cst.SimpleWhitespace(""))
    names = list(stmt.names)
    laid = []
    for i, alias in enumerate(names):
        after = closing if i == len(names) - 1 else inner
        laid.append(alias.with_changes(comma=cst.Comma(whitespace_after=after)))
    return stmt.with_changes(
        names=laid, lpar=cst.LeftParen(whitespace_after=inner), rpar=cst.RightParen(),
    )


def _is_vertical(stmt: cst.ImportFrom) -> bool:
    return stmt.lpar is not None and isinstance(stmt.lpar.whitespace_after, cst.ParenthesizedWhitespace)


def _merge(stmt: cst.ImportFrom, new: list[cst.ImportAlias], indent: str) -> cst.ImportFrom:
    names = list(stmt.names)
    keys = [member_key(_alias_name(a)) for a in names]
    in_order = keys == sorted(keys)
    for alias in new:
        if in_order:
            key = member_key(_alias_name(alias))
            position = next((i for i, k in enumerate(keys) if k > key), len(names))
            keys.insert(position, key)
        else:
            position = len(names)
        names.insert(position, alias)
    if _is_vertical(stmt):
        return _relayout_vertical(stmt, names, indent)
    # One line: ", " between names, the old trailing comma (if any) kept at the end.
    comma = cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))
    laid = [alias.with_changes(comma=comma) for alias in names[:-1]]
    laid.append(names[-1].with_changes(comma=stmt.names[-1].comma))
    return stmt.with_changes(names=laid)


def _relayout_vertical(stmt: cst.ImportFrom, names: list[cst.ImportAlias], indent: str) -> cst.ImportFrom:
    """Names of a parenthesised one-per-line import, new ones included, each on its line with
    its own comment (the comment lives in the whitespace after the name's comma), and the
    magic trailing comma."""
    old = list(stmt.names)
    newline = cst.ParenthesizedWhitespace(first_line=cst.TrailingWhitespace(), indent=True,
                                          last_line=cst.SimpleWhitespace(indent))
    inner = stmt.lpar.whitespace_after if stmt.lpar is not None else newline
    if not isinstance(inner, cst.ParenthesizedWhitespace):
        inner = newline
    inner = inner.with_changes(first_line=cst.TrailingWhitespace(), empty_lines=[])
    closing = inner.with_changes(last_line=cst.SimpleWhitespace(""))

    def comment_line(alias) -> cst.TrailingWhitespace | None:
        if not any(alias is o for o in old):
            return None
        after = alias.comma.whitespace_after if isinstance(alias.comma, cst.Comma) else (
            stmt.rpar.whitespace_before if alias is old[-1] and stmt.rpar is not None else None)
        return after.first_line if isinstance(after, cst.ParenthesizedWhitespace) else None

    laid = []
    for i, alias in enumerate(names):
        base = closing if i == len(names) - 1 else inner
        line = comment_line(alias) or cst.TrailingWhitespace()
        laid.append(alias.with_changes(comma=cst.Comma(whitespace_after=base.with_changes(first_line=line))))
    rpar = (stmt.rpar or cst.RightParen()).with_changes(whitespace_before=cst.SimpleWhitespace(""))
    lpar = (stmt.lpar or cst.LeftParen()).with_changes(whitespace_after=inner.with_changes(
        first_line=stmt.lpar.whitespace_after.first_line if stmt.lpar is not None and isinstance(
            stmt.lpar.whitespace_after, cst.ParenthesizedWhitespace) else cst.TrailingWhitespace()))
    return stmt.with_changes(names=laid, lpar=lpar, rpar=rpar)


def _fit(stmt: cst.ImportFrom, module: cst.Module, limit: int, indent: str) -> cst.ImportFrom:
    if stmt.lpar is None and _line_length(stmt, module) > limit and len(stmt.names) > 1:
        return _vertical(stmt, indent)
    return stmt


def _new_line(module_name: str, aliases: list[cst.ImportAlias]) -> cst.SimpleStatementLine:
    aliases = sorted(aliases, key=lambda a: member_key(_alias_name(a)))
    laid = [a.with_changes(comma=cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))) for a in aliases[:-1]]
    laid.append(aliases[-1].with_changes(comma=cst.MaybeSentinel.DEFAULT))
    module_expr = cst.parse_expression(module_name)
    return cst.SimpleStatementLine(body=[cst.ImportFrom(module=module_expr, names=laid)])


def _exists(lines, request: Request) -> bool:
    module_name, name, alias = request
    for line in lines:
        stmt = _import_line(line)
        if not name:  # ``import module``: a line importing the module under its own name
            if isinstance(stmt, cst.Import) and any(_alias_name(a) == module_name and _alias_as(a) is None
                                                    for a in stmt.names):
                return True
            continue
        if isinstance(stmt, cst.ImportFrom) and not stmt.relative and _dotted(stmt.module) == module_name:
            if isinstance(stmt.names, cst.ImportStar):
                return True
            if any(_alias_name(a) == name and _alias_as(a) == alias for a in stmt.names):
                return True
    return False


def add_imports(text: str, tree: ast.Module, requests: Iterable[Request], style: Style) -> str:
    """``text`` with ``from module import name [as alias]`` for every request not there yet
    (``import module`` for a request whose name is empty)."""
    requests = sorted(set(requests), key=lambda r: (r[0], r[1], r[2] or ""))
    if not requests:
        return text
    limit = style.line_length if style.configured else IMPORT_LINE_DEFAULT

    def edit(module: cst.Module, has_head: bool) -> cst.Module:
        body = list(module.body)
        indent = module.default_indent
        # Plain names share one line per module; a name imported under an alias gets its own
        # line, as isort and Ruff write it (``combine-as-imports`` is off by default), unless
        # the module's line already holds an aliased name.
        wanted: dict[tuple[str, str | None], list[cst.ImportAlias]] = {}
        for request in requests:
            if not request[1]:
                if not _exists(body, request):
                    line = cst.SimpleStatementLine(body=[cst.Import(names=[_alias(request[0], None)])])
                    body = _place(body, line, section(request[0], style), style, has_head)
                continue
            if not _exists(body, request):
                wanted.setdefault((request[0], request[2]), []).append(_alias(request[1], request[2]))
        for (module_name, alias), aliases in sorted(wanted.items(), key=lambda item: (item[0][0], item[0][1] or "")):
            merged = False
            for i, line in enumerate(body):
                stmt = _import_line(line)
                if (
                    isinstance(stmt, cst.ImportFrom) and not stmt.relative and not isinstance(stmt.names, cst.ImportStar)
                    and _dotted(stmt.module) == module_name
                    and (alias is None or any(_alias_as(a) for a in stmt.names))
                ):
                    new_stmt = _fit(_merge(stmt, aliases, indent), module, limit, indent)
                    body[i] = line.with_changes(body=[new_stmt])
                    merged = True
                    break
            if not merged:
                line = _new_line(module_name, aliases)
                line = line.with_changes(body=[_fit(line.body[0], module, limit, indent)])
                body = _place(body, line, section(module_name, style), style, has_head)
        return module.with_changes(body=body)

    return _edit_head(text, tree, edit)


def _place(body: list, line: cst.SimpleStatementLine, wanted: int, style: Style, has_head: bool) -> list:
    key = _statement_key(line.body[0])
    existing = []  # (position, section, key) of the top-level import lines
    for i, node in enumerate(body):
        stmt = _import_line(node)
        if stmt is not None:
            existing.append((i, _statement_section(stmt, style), _statement_key(stmt)))
    same = [e for e in existing if e[1] == wanted]
    blank = cst.EmptyLine()
    if same:
        after = [e for e in same if e[2] <= key]
        if after:
            position = after[-1][0] + 1
            return [*body[:position], line, *body[position:]]
        position = same[0][0]
        first = body[position]
        return [*body[:position], line.with_changes(leading_lines=first.leading_lines),
                first.with_changes(leading_lines=[]), *body[position + 1:]]
    before = [e for e in existing if e[1] < wanted]
    later = [e for e in existing if e[1] > wanted]
    if before:
        position = before[-1][0] + 1
        return [*body[:position], line.with_changes(leading_lines=[blank]), *body[position:]]
    if later:
        position = later[0][0]
        first = body[position]
        return [*body[:position], line.with_changes(leading_lines=first.leading_lines),
                first.with_changes(leading_lines=[blank]), *body[position + 1:]]
    # No imports: after the docstring (the head holds nothing else).
    if has_head and body:
        return [body[0], line.with_changes(leading_lines=[blank]), *body[1:]]
    return [*body, line]


# ----------------------------------------------------------------------------- removing


def _bindings(tree: ast.Module) -> dict[str, list[tuple[ast.stmt, ast.alias]]]:
    """Name -> the top-level import statements (and aliases) that bind it."""
    out: dict[str, list] = {}
    for stmt in tree.body:
        if isinstance(stmt, (ast.Import, ast.ImportFrom)):
            for alias in stmt.names:
                if alias.name == "*":
                    continue
                bound = alias.asname or (alias.name.split(".")[0] if isinstance(stmt, ast.Import) else alias.name)
                out.setdefault(bound, []).append((stmt, alias))
    return out


def _uses(tree: ast.AST) -> dict[str, int]:
    """How often each name is read, in code, in ``__all__`` and in string annotations.

    Counts add up over statements, so the counts of a rewritten module are the old ones less
    those of the replaced statements plus those of their replacement (:func:`uses_after`).
    The walk skips the context and operator singletons (:func:`~adopter.structure.graph.walk`):
    ``ast.walk`` of a whole module per round cost more than the edit itself.

    A string counts where it is an annotation (``x: "Tensor"``, ``-> Optional["Tensor"]``):
    its names are read when the annotation is evaluated, as pyflakes reads them.  Any other
    string is data: ``config.hidden_act != "gelu"`` does not keep ``from .activations import
    gelu`` that a rewrite left unused."""
    counts: dict[str, int] = {}
    for node in walk(tree):
        kind = type(node)
        if kind is ast.Name:
            if not isinstance(node.ctx, ast.Store):
                counts[node.id] = counts.get(node.id, 0) + 1
        elif kind is ast.Assign:
            if any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets):
                for sub in walk(node.value):
                    if isinstance(sub, ast.Constant) and isinstance(sub.value, str):
                        counts[sub.value] = counts.get(sub.value, 0) + 1
        elif kind is ast.arg or kind is ast.AnnAssign:
            _count_string_annotation(node.annotation, counts)
        elif kind is ast.FunctionDef or kind is ast.AsyncFunctionDef:
            _count_string_annotation(node.returns, counts)
    return counts


def _count_string_annotation(annotation: ast.expr | None, counts: dict[str, int]) -> None:
    """Add the names the strings inside ``annotation`` read (``"Tensor"``, ``"nn.Module"``,
    ``Optional["Tensor"]``); a string that does not parse as an expression reads nothing."""
    if annotation is None:
        return
    for sub in walk(annotation):
        if not (isinstance(sub, ast.Constant) and isinstance(sub.value, str)):
            continue
        try:
            parsed = ast.parse(sub.value.strip(), mode="eval")
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            continue
        for name in walk(parsed):
            if isinstance(name, ast.Name):
                counts[name.id] = counts.get(name.id, 0) + 1
        _count_string_annotation(parsed.body, counts)  # "Optional['Tensor']"


def uses_after(uses: dict[str, int], removed: dict[str, int], added: dict[str, int]) -> dict[str, int]:
    """``uses`` of a module after statements counting ``removed`` were replaced by statements
    counting ``added``."""
    out = dict(uses)
    for name, count in removed.items():
        out[name] = out.get(name, 0) - count
    for name, count in added.items():
        out[name] = out.get(name, 0) + count
    return {name: count for name, count in out.items() if count}


def unused_by_patch(old_tree: ast.Module, new_tree: ast.Module, path: str) -> set[tuple[str, str, str | None]]:
    """The imports (kind, dotted name, alias) of the new module's top-level import lines that
    the old module read and the new one no longer does."""
    return unused_names(_uses(old_tree), _uses(new_tree), new_tree, path)


def unused_names(old_uses: dict[str, int], new_uses: dict[str, int], new_tree: ast.Module,
                 path: str) -> set[tuple[str, str, str | None]]:
    """:func:`unused_by_patch` from the two modules' use counts (:func:`_uses`); ``new_tree``
    only needs the new module's top-level import statements."""
    if path.replace("\\", "/").rsplit("/", 1)[-1] == "__init__.py":
        return set()
    found: set = set()
    for bound, holders in _bindings(new_tree).items():
        if len(holders) != 1 or old_uses.get(bound, 0) == 0 or new_uses.get(bound, 0):
            continue
        stmt, alias = holders[0]
        if isinstance(stmt, ast.Import):
            found.add(("import", alias.name, alias.asname))
        else:
            found.add(("from" + "." * stmt.level + (stmt.module or ""), alias.name, alias.asname))
    return found


def remove_imports(text: str, tree: ast.Module, unused: set) -> str:
    """``text`` without the aliases ``unused`` names (as :func:`unused_by_patch` gives them);
    a line left empty goes, its comments stay above the next line."""
    if not unused:
        return text

    def matches(stmt, alias: cst.ImportAlias) -> bool:
        name, asname = _alias_name(alias), _alias_as(alias)
        if isinstance(stmt, cst.Import):
            return ("import", name, asname) in unused
        kind = "from" + "." * len(stmt.relative) + _dotted(stmt.module)
        return (kind, name, asname) in unused

    def edit(module: cst.Module, has_head: bool) -> cst.Module:
        body: list = []
        pending: list[cst.EmptyLine] = []  # what removed lines leave for the next one
        for line in module.body:
            stmt = _import_line(line)
            kept = None
            if stmt is not None and not isinstance(stmt.names, cst.ImportStar):
                kept = [a for a in stmt.names if not matches(stmt, a)]
            if kept is None or len(kept) == len(stmt.names):
                body.append(_with_pending(line, pending))
                pending = []
                continue
            if not kept:
                lead = list(line.leading_lines)
                if not pending and lead and lead[0].comment is None:
                    pending.append(lead[0])
                pending += [e for e in lead if e.comment is not None] + _comments_of(line)
                continue
            if isinstance(stmt, cst.ImportFrom) and _is_vertical(stmt):
                new_stmt = _relayout_vertical(stmt, kept, module.default_indent)
            else:
                new_stmt = stmt.with_changes(names=[*kept[:-1], kept[-1].with_changes(comma=stmt.names[-1].comma)])
            body.append(_with_pending(line.with_changes(body=[new_stmt]), pending))
            pending = []
        comments = [e for e in pending if e.comment is not None]
        return module.with_changes(body=body, footer=[*comments, *module.footer])

    return _edit_head(text, tree, edit)


def _comments_of(line: cst.SimpleStatementLine) -> list[cst.EmptyLine]:
    found = []
    trailing = line.trailing_whitespace.comment
    if trailing is not None and "noqa" not in trailing.value:
        found.append(cst.EmptyLine(comment=trailing))

    class Collect(cst.CSTVisitor):
        def visit_Comment(self, node: cst.Comment) -> None:
            if "noqa" not in node.value:
                found.append(cst.EmptyLine(comment=node))

    for stmt in line.body:
        stmt.visit(Collect())
    return found


def _with_pending(line, pending: list):
    """``line`` with what removed lines above it left: their comments, and one blank line if
    they were set apart by one and ``line`` is not."""
    if not pending:
        return line
    own = list(line.leading_lines)
    blank = [e for e in pending[:1] if e.comment is None]
    if own and own[0].comment is None:
        blank = [own.pop(0)]
    comments = [e for e in pending if e.comment is not None]
    return line.with_changes(leading_lines=[*blank, *comments, *own])
