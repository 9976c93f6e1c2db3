"""Rule targets (``$y = adopter_kernels.softmax($x, dim=-1)``) rendered into Python text.

A target is written in the rule DSL, which is Python with ``$vars``.  Rendering replaces each
``$var`` with the source text the match bound it to (parenthesised where the context needs
it) and each dotted kernel name with the local name it is imported under.  Targets are small
and regular, so this works on text with a tokenizer that skips string literals.
"""

from __future__ import annotations

import ast
import re
from ..records import dataclass
from ..structure.treewalk import ast_walk

VAR = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")
# A string literal (left alone), or a possibly dotted name not preceded by a name character,
# a dot or a '$'.
TOKEN = re.compile(
    r"""(?P<str>'[^'\n]*'|"[^"\n]*")|(?<![\w.$])(?P<name>[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)"""
)
KEEP_ARGS = re.compile(r"^(?P<callee>.*)\(\s*\.\.\.\s*\)\s*$", re.S)

ATOMS = (
    ast.Name, ast.Attribute, ast.Call, ast.Subscript, ast.Constant, ast.List, ast.Dict, ast.Set,
    ast.ListComp, ast.DictComp, ast.SetComp, ast.JoinedStr,
)


class RenderError(Exception):
    """A target cannot be rendered for this match; the message is the skip reason."""


@dataclass(frozen=True)
class Target:
    outs: tuple[str, ...]  # the $vars the target assigns, in order ('_' for a wildcard)
    rhs: str  # the template of the value


def _split_assignment(text: str) -> tuple[str | None, str]:
    depth = 0
    quote = ""
    for i, ch in enumerate(text):
        if quote:
            if ch == quote:
                quote = ""
            continue
        if ch in "'\"":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == "=" and depth == 0:
            before = text[i - 1] if i else ""
            after = text[i + 1] if i + 1 < len(text) else ""
            if after != "=" and before not in "=!<>":
                return text[:i], text[i + 1:]
    return None, text


def parse_target(text: str) -> Target:
    text = " ".join(line.strip() for line in text.strip().splitlines() if line.strip())
    lhs, rhs = _split_assignment(text)
    outs: list[str] = []
    if lhs is not None:
        for part in lhs.split(","):
            part = part.strip().strip("()").strip()
            if part == "_":
                outs.append("_")
                continue
            found = VAR.fullmatch(part)
            if not found:
                raise RenderError(f"target assigns {part!r}, not a $variable")
            outs.append(found.group(1))
    return Target(tuple(outs), rhs.strip())


def template_vars(template: str) -> list[str]:
    seen: list[str] = []
    for found in VAR.finditer(template):
        if found.group(1) not in seen:
            seen.append(found.group(1))
    return seen


def replace_names(template: str, mapping) -> str:
    """Replace whole (dotted) names outside strings: ``mapping(name) -> str | None``."""

    def sub(found: re.Match) -> str:
        name = found.group("name")
        if name is None:
            return found.group(0)
        start = found.start()
        if start and template[start - 1] == "$":
            return found.group(0)
        new = mapping(name)
        return found.group(0) if new is None else new

    return TOKEN.sub(sub, template)


def _in_argument(template: str, start: int, end: int) -> bool:
    before = template[:start].rstrip()
    after = template[end:].lstrip()
    return before.endswith(("(", ",")) and after.startswith((",", ")"))


def atomize(text: str, argument: bool) -> str:
    """``text`` made safe to put where the template had ``$var``."""
    stripped = text.strip()
    try:
        node = ast.parse(stripped, mode="eval").body
    except SyntaxError:
        return f"({stripped})"
    if argument:
        bare_tuple = isinstance(node, (ast.Tuple, ast.GeneratorExp)) and not stripped.startswith("(")
        if bare_tuple or isinstance(node, (ast.Yield, ast.YieldFrom, ast.NamedExpr, ast.Starred)):
            return f"({stripped})"
        return stripped
    if isinstance(node, ATOMS) or (isinstance(node, (ast.Tuple, ast.GeneratorExp)) and stripped.startswith("(")):
        return stripped
    return f"({stripped})"


REST = re.compile(r"(?P<before>,\s*)?(?<![.\w])\.\.\.(?![.\w])(?P<after>\s*,)?")


def substitute(template: str, values: dict[str, str], rest: str = "") -> str:
    """Replace every ``$var`` by its value text (one pass: values are never re-scanned) and an
    argument ``...`` by ``rest`` (the code's extra arguments; dropped with its comma if none)."""

    def sub_rest(found: re.Match) -> str:
        if rest:
            return (found.group("before") or "") + rest + (found.group("after") or "")
        if found.group("before") and found.group("after"):
            return found.group("before")
        return ""

    template = REST.sub(sub_rest, template)

    def sub(found: re.Match) -> str:
        name = found.group(1)
        if name not in values:
            raise RenderError(f"the target needs ${name}, which the match does not bind")
        return atomize(values[name], _in_argument(template, found.start(), found.end()))

    rendered = VAR.sub(sub, template)
    try:
        ast.parse(rendered.strip(), mode="eval")
    except SyntaxError:
        raise RenderError("the rendered target is not a valid expression") from None
    return fold_same_promotions(rendered)


def fold_same_promotions(rendered: str) -> str:
    """A target that promotes a dtype with itself (``torch.promote_types(x.dtype, x.dtype)``,
    when the code casts back to x's own dtype) is rendered as that dtype: the call is a no-op a
    reviewer would ask to remove."""
    while "promote_types" in rendered:
        stripped = rendered.strip()
        try:
            tree = ast.parse(stripped, mode="eval")
        except SyntaxError:
            return rendered
        same = next((node for node in ast_walk(tree) if isinstance(node, ast.Call) and not node.keywords
                     and len(node.args) == 2 and not any(isinstance(a, ast.Starred) for a in node.args)
                     and getattr(node.func, "attr", getattr(node.func, "id", None)) == "promote_types"
                     and ast.dump(node.args[0]) == ast.dump(node.args[1])), None)
        if same is None:
            return rendered
        call, operand = ast.get_source_segment(stripped, same), ast.get_source_segment(stripped, same.args[0])
        rendered = rendered.replace(call, operand, 1)
    return rendered
