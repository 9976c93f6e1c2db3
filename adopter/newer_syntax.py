"""Files written in newer Python syntax, analysed by the ``ast`` of the Python that runs us.

Research code written today uses Python 3.12 syntax: type parameter lists (``def f[T](x: T)``,
``class C[T]:``), ``type X = ...`` statements and PEP 701 f-strings (the outer quote inside a
replacement field, ``f"{d["a"]}"``; backslashes or comments there).  Under Python 3.11,
``ast.parse`` rejects the whole file, and every opportunity in it would be missed.  LibCST
parses that syntax; from its tree, :func:`render` writes a 3.11 *rendering* of the text that
keeps every line and every character column: a type parameter list becomes blanks, a ``type``
statement an assignment whose ``=`` and value stay where they were, an f-string 3.11 cannot
read a blank string literal of the same length.  The analysis reads the rendering, so its
findings' lines and columns are the original's; the fixer rewrites the rendering and
:func:`restore` puts the original lines back wherever the rewrite kept a line, so the 3.12
syntax outside the patched lines stays byte for byte.

Nothing here runs for a file ``ast`` parses: :func:`parse` tries LibCST only after a
``SyntaxError`` (and a file neither parser reads keeps the ``SyntaxError``).
"""

from __future__ import annotations

import ast
import difflib
import re

#: A segment that may hold 3.12 syntax: a def or class with a type parameter list, a ``type``
#: statement, or an f-string (a cheap test before LibCST parses a segment that ``ast`` could not).
MAYBE_NEWER = re.compile(r"^[ \t]*(?:async[ \t]+)?(?:def|class)[ \t]+\w+[ \t]*\[|^[ \t]*type[ \t]+\w"
                         r"|(?<![\w])(?:[fF][rR]?|[rR][fF])['\"]", re.M)


def parse(text: str, filename: str = "<unknown>") -> tuple[ast.Module, str]:
    """(the ``ast`` tree, the text it is the tree of): ``text`` itself when ``ast`` parses it,
    else its 3.11 rendering; the first ``SyntaxError`` when neither parser reads it."""
    try:
        return ast.parse(text, filename=filename), text
    except SyntaxError as exc:
        return parse_rendered(text, filename, exc)


def parse_rendered(text: str, filename: str, exc: SyntaxError) -> tuple[ast.Module, str]:
    """(the tree, the rendering) of ``text``, which ``ast`` rejected with ``exc``: for a caller
    that already tried ``ast.parse`` (the engine), so a file is not parsed twice as 3.11; raises
    ``exc`` when no rendering parses."""
    rendered = render(text)
    if rendered is None:
        raise exc from None
    try:
        return ast.parse(rendered, filename=filename), rendered
    except SyntaxError:
        raise exc from None


def render(text: str) -> str | None:
    """``text`` with its 3.12 syntax written as 3.11 syntax at the same lines and columns, or
    None when LibCST does not parse it, or a construct cannot be written in place (a type
    parameter list or an f-string spread over lines in a way no 3.11 form keeps)."""
    import libcst as cst  # (only for the files ``ast`` could not read)
    from libcst.metadata import MetadataWrapper, PositionProvider

    try:
        module = cst.parse_module(text)
        positions = MetadataWrapper(module, unsafe_skip_copy=True).resolve(PositionProvider)
    except Exception:  # noqa: BLE001 - LibCST's parser errors: the file is not read, as before
        return None
    lines = text.split("\n")
    spans = []  # (start line, start column, end line, end column, how): 1-based lines, 0-based columns
    for node, where in positions.items():
        if isinstance(node, cst.TypeParameters):
            how = "blank"
        elif isinstance(node, cst.TypeAlias):
            how = node
        elif isinstance(node, cst.FormattedString):
            how = "string"
        else:
            continue
        spans.append((where.start.line, where.start.column, where.end.line, where.end.column, how))
    spans.sort(key=lambda s: (s[0], s[1], -s[2], -s[3]))
    out = list(lines)
    reach = (0, 0)
    for first, col, last, end, how in spans:
        if (first, col) < reach:
            continue  # inside a span already written (an f-string in an f-string)
        if how == "string":
            if _reads(char_segment(lines, first, col, last, end)):
                continue  # an f-string 3.11 reads stays as it is
            pieces = _blank_string(lines, first, col, last, end)
        elif how == "blank":
            pieces = _blank_brackets(lines, first, col, last, end)
        else:
            pieces = _as_assignment(lines, how, positions, first, col)
        if pieces is None:
            return None
        for number, start, new in pieces:
            line = out[number - 1]
            out[number - 1] = line[:start] + new + line[start + len(new):]
        reach = max(reach, (last, end))
    return "\n".join(out)


def char_segment(lines: list[str], first: int, col: int, last: int, end: int) -> str:
    """The text from line ``first``, column ``col`` to line ``last``, column ``end`` (lines
    1-based, columns in characters: LibCST's positions, the fixer's character spans); "" for
    a span past the last line."""
    part = lines[first - 1:last]
    if not part:
        return ""
    if len(part) == 1:
        return part[0][col:end]
    return "\n".join([part[0][col:], *part[1:-1], part[-1][:end]])


def _reads(source: str) -> bool:
    """Does the ``ast`` of this Python read this f-string (in parentheses, lines and all)?"""
    try:
        ast.parse(f"({source}\n)", mode="eval")
    except SyntaxError:
        return False
    return True


def _blank_string(lines: list[str], first: int, col: int, last: int, end: int) -> list | None:
    """A plain string literal of the f-string's length: its prefix blanked, ``"..."`` of blanks
    on one line; over several lines, ``\"\"\"...\"\"\"`` (None: a line too short to hold one)."""
    text = lines[first - 1]
    prefix = 0
    while text[col + prefix] not in "\"'":
        prefix += 1
    if first == last:
        size = end - col - prefix
        return [(first, col, " " * prefix + '"' + " " * (size - 2) + '"')]
    head = len(text) - col - prefix
    if head < 3 or end < 3:
        return None
    pieces = [(first, col, " " * prefix + '"""' + " " * (head - 3))]
    pieces += [(n, 0, " " * len(lines[n - 1])) for n in range(first + 1, last)]
    pieces.append((last, 0, " " * (end - 3) + '"""'))
    return pieces


def _blank_brackets(lines: list[str], first: int, col: int, last: int, end: int) -> list | None:
    """Blanks for a type parameter list ``[T, U: int]``; over several lines, each line but the
    last ends in a backslash, which joins it to the next as the brackets did (None: a line
    of the list that holds nothing to write the backslash on)."""
    if first == last:
        return [(first, col, " " * (end - col))]
    pieces = []
    for number in range(first, last):
        start = col if number == first else 0
        size = len(lines[number - 1]) - start
        if size < 1:
            return None
        pieces.append((number, start, " " * (size - 1) + "\\"))
    pieces.append((last, 0, " " * end))
    return pieces


def _as_assignment(lines: list[str], node, positions, first: int, col: int) -> list | None:
    """``type X[T] = value`` written as ``X        = value``: the ``=`` and the value stay in
    their columns (the name moves left onto ``type``); None when the head spans lines."""
    value = positions[node.value].start
    if value.line != first:
        return None
    line = lines[first - 1]
    equals = line.rfind("=", col, value.column)
    name = node.name.value
    if equals - col < len(name) + 1:
        return None
    return [(first, col, name.ljust(equals - col))]


def restore(original: str, rendered: str, rewritten: str) -> str:
    """``rewritten`` (the fixer's rewrite of ``rendered``, the 3.11 rendering of ``original``)
    with the original's text on every line the rewrite kept; ValueError when the rewrite
    changed, moved or copied a line whose rendering differs from the original (a patched line
    holding 3.12 syntax: its rendering would replace it), or when it removes or rebinds a name
    that a blanked f-string reads (the fixer never saw that read: restoring the f-string would
    leave it reading a deleted import or another value)."""
    old, new, kept = rendered.split("\n"), rewritten.split("\n"), original.split("\n")
    hidden = names_read_in_blanked_strings(original)
    if hidden:
        before, after = _bindings(rendered, hidden), _bindings(rewritten, hidden)
        if before != after:
            moved = sorted({entry[0] for entry in before + after if before.count(entry) != after.count(entry)})
            raise ValueError(f"the patch would remove or rebind {', '.join(moved)}, which an f-string "
                             "in newer Python syntax reads")
    if len(old) != len(kept):
        raise ValueError("the rendering does not keep the file's lines")
    changed = {old[i].strip() for i in range(len(old)) if old[i] != kept[i]}
    out: list[str] = []
    matcher = difflib.SequenceMatcher(None, old, new, autojunk=False)
    for op, a0, a1, b0, b1 in matcher.get_opcodes():
        if op == "equal":
            out.extend(kept[a0:a1])
            continue
        if old[a0:a1] != kept[a0:a1] or any(line.strip() in changed for line in new[b0:b1] if line.strip()):
            raise ValueError("the patch would rewrite a line written in newer Python syntax")
        out.extend(new[b0:b1])
    return "\n".join(out)


def names_read_in_blanked_strings(text: str) -> set[str]:
    """The names read inside the f-strings :func:`render` blanks (those 3.11 cannot read):
    the analysis and the fixer see a blank literal there, so a patch must keep these names
    bound as they were.  Attribute names (``.softmax``) and keyword names are not reads."""
    import libcst as cst
    from libcst.metadata import MetadataWrapper, PositionProvider

    try:
        module = cst.parse_module(text)
        positions = MetadataWrapper(module, unsafe_skip_copy=True).resolve(PositionProvider)
    except Exception:  # noqa: BLE001 - not rendered either: nothing was blanked
        return set()
    lines = text.split("\n")
    names: set[str] = set()
    for node, where in positions.items():
        if not isinstance(node, cst.FormattedString):
            continue
        start, end = where.start, where.end
        if _reads(char_segment(lines, start.line, start.column, end.line, end.column)):
            continue
        names |= _names_read(node, cst)
    return names


def _names_read(node, cst) -> set[str]:
    """Every ``Name`` under ``node`` but an attribute's or a keyword argument's name."""
    found: list = []
    not_reads: set[int] = set()

    class Names(cst.CSTVisitor):
        def visit_Name(self, name) -> None:
            found.append(name)

        def visit_Attribute(self, attribute) -> None:
            not_reads.add(id(attribute.attr))

        def visit_Arg(self, arg) -> None:
            if arg.keyword is not None:
                not_reads.add(id(arg.keyword))

    node.visit(Names())
    return {name.value for name in found if id(name) not in not_reads}


def _bindings(text: str, names: set[str]) -> list[tuple]:
    """Each place ``text`` binds or deletes one of ``names``, as (name, how), sorted: an import
    with its module and alias, a def or class, an assignment target, a ``del``."""
    out = []
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            module = getattr(node, "module", None)
            for alias in node.names:
                bound = alias.asname or alias.name.split(".")[0]
                if bound in names:
                    out.append((bound, "import", module, alias.name, getattr(node, "level", 0)))
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.name in names:
            out.append((node.name, "def"))
        elif isinstance(node, ast.Name) and node.id in names and not isinstance(node.ctx, ast.Load):
            out.append((node.id, type(node.ctx).__name__))
    return sorted(out, key=repr)
