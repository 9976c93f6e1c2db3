"""The rank an expression's tensor has, read from the code alone where the code fixes it.

A mask or bias written for attention scores laid out with their axes moved (``einsum(...,
"bqkh")``: the keys not last) reaches the fused call only moved into its layout, a
``.permute`` of as many axes as the scores have.  A tensor broadcast from fewer axes would
need its missing leading axes first, so the move is written only where the code itself fixes
the rank: ``x.repeat(1, 1, h)`` has three axes whatever ``x`` is, ``.unsqueeze`` adds one, an
einsum has as many as its output names, a cast or comparison with a number keeps them.  Every
other expression (a name, an index of one of unknown rank, a ``squeeze`` that may remove none)
has no rank here (None), and the caller declines.
"""

from __future__ import annotations

import ast

# methods that keep their receiver's shape whatever their arguments (casts, copies; ``.to``
# and ``.type_as`` take a dtype, a device or a tensor, never sizes)
_SHAPE_KEEPING = frozenset({"bool", "float", "double", "half", "bfloat16", "long", "int", "to", "type_as",
                            "contiguous", "clone", "detach", "logical_not"})
# elementwise tests: the receiver's shape where the other operand is a number (a tensor may broadcast)
_COMPARING = frozenset({"eq", "ne", "lt", "le", "gt", "ge"})
# methods whose arguments name every size of the result: one argument a size (or one tuple of them)
_SIZED = frozenset({"repeat", "expand", "view", "reshape"})


def static_rank(expr: ast.expr) -> int | None:
    """The number of axes ``expr``'s tensor has, where the code fixes it; else None."""
    if isinstance(expr, ast.UnaryOp) and isinstance(expr.op, (ast.Invert, ast.USub)):
        return static_rank(expr.operand)
    if isinstance(expr, ast.Compare) and len(expr.comparators) == 1 and _number(expr.comparators[0]):
        return static_rank(expr.left)
    if not isinstance(expr, ast.Call) or any(kw.arg not in ("dtype", "device", "non_blocking") for kw in expr.keywords):
        return None
    if any(isinstance(a, ast.Starred) for a in expr.args):
        return None
    func = expr.func
    if isinstance(func, ast.Attribute) and func.attr == "einsum" and expr.args:
        return _einsum_rank(expr.args[0])
    if not isinstance(func, ast.Attribute):
        return None
    if func.attr == "unsqueeze" and len(expr.args) == 1:
        inner = static_rank(func.value)
        return None if inner is None else inner + 1
    if func.attr in _SIZED and expr.args:
        if len(expr.args) == 1 and isinstance(expr.args[0], (ast.Tuple, ast.List)):
            sizes = expr.args[0].elts
            return None if any(isinstance(s, ast.Starred) for s in sizes) else len(sizes)
        if len(expr.args) == 1:
            return None  # (one size, or a shape held in a name: not told apart here)
        return len(expr.args)
    if func.attr in _SHAPE_KEEPING or (func.attr in _COMPARING and len(expr.args) == 1 and _number(expr.args[0])):
        return static_rank(func.value)
    return None


def _einsum_rank(equation: ast.expr) -> int | None:
    """The output's rank of an einsum equation written with an explicit output and no ``...``."""
    if not isinstance(equation, ast.Constant) or not isinstance(equation.value, str):
        return None
    text = equation.value.replace(" ", "")
    if "->" not in text or "." in text:
        return None
    return len(text.split("->", 1)[1])


def _number(node: ast.expr) -> bool:
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        node = node.operand
    return isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool)
