"""An einsum equation written as an f-string over locals that hold string literals
(``kv = 'b j d' if single_head_kv else 'b h j d'``, then ``einsum(f'b h i d, {kv} -> b h i j', q, k)``).

The equation is one of a few strings.  The engine reads the one choice that is a plain product of
operands carrying every batch axis (no operand broadcast over an axis it lacks); the SDPA fixer
sends every other choice to the original code by a guard comparing the f-string's value, computed
before the attention, with that very equation (:func:`guard_term`), so the fused path runs exactly
where the reading holds.  None where the parts are anything else, where no choice or more than one
reads so, or where there are too many choices."""
from __future__ import annotations

import ast
import itertools

from . import canon as canonical
from .treewalk import ast_walk

_MOST_CHOICES = 8


def _choices(part: ast.expr, lookup) -> tuple | None:
    if part.__class__ is ast.Constant and isinstance(part.value, str):
        return (part.value,)
    if part.__class__ is not ast.FormattedValue or part.conversion != -1 or part.format_spec is not None \
            or part.value.__class__ is not ast.Name:
        return None
    held = lookup(part.value.id)
    if held.__class__ is ast.Constant and isinstance(held.value, str):
        return (held.value,)
    if held.__class__ is ast.IfExp and all(arm.__class__ is ast.Constant and isinstance(arm.value, str)
                                           for arm in (held.body, held.orelse)):
        return (held.body.value, held.orelse.value)
    return None


def equation(joined: ast.JoinedStr, lookup) -> str | None:
    """The choice of ``joined`` read as the product (module docstring); ``lookup(name)`` is the
    expression the local ``name`` holds (None for a parameter or an unknown name)."""
    parts = []
    for part in joined.values:
        choices = _choices(part, lookup)
        if choices is None:
            return None
        parts.append(choices)
    count = 1
    for choices in parts:
        count *= len(choices)
    if count > _MOST_CHOICES:
        return None
    read = set()
    for combination in itertools.product(*parts):
        written = "".join(combination)
        found = canonical.einsum_product(written)
        if found is not None and not any(found[2]):
            read.add(written)
    return read.pop() if len(read) == 1 else None


def function_lookup(func: ast.AST):
    """``lookup`` for :func:`equation` outside the engine: a name assigned exactly once in
    ``func`` (one plain target, no other binding) holds that value; a parameter or any other
    name holds nothing."""
    bound: dict[str, list] = {}
    params = set()
    if isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef)):
        params = {a.arg for a in (*func.args.posonlyargs, *func.args.args, *func.args.kwonlyargs,
                                  func.args.vararg, func.args.kwarg) if a is not None}
    for node in ast_walk(func):
        if node.__class__ is ast.Assign:
            for target in node.targets:
                for name in ast_walk(target):
                    if name.__class__ is ast.Name:
                        bound.setdefault(name.id, []).append(
                            node.value if target.__class__ is ast.Name and len(node.targets) == 1 else None)
        elif node.__class__ in (ast.AugAssign, ast.AnnAssign, ast.For, ast.NamedExpr, ast.With):
            for name in ast_walk(getattr(node, "target", None) or node):
                if name.__class__ is ast.Name and name.ctx.__class__ is ast.Store:
                    bound.setdefault(name.id, []).append(None)

    def lookup(name: str):
        values = bound.get(name)
        if name in params or values is None or len(values) != 1:
            return None
        return values[0]
    return lookup


def guard_term(joined: ast.JoinedStr, text: str, written: str) -> str:
    """The guard sending every other choice to the original: the f-string (its source ``text``)
    differs from the equation read."""
    return f"({text}) != {written!r}"
