"""What the code alone fixes about a tensor: its rank (:func:`static_rank`), or that it is
bool on every path (:func:`bool_by_code`).

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

from ..structure.treewalk import ast_walk
from .text import numeric_literal

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
    if isinstance(expr, ast.Compare) and len(expr.comparators) == 1 \
            and numeric_literal(expr.comparators[0]) is not None:
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
    if func.attr in _SHAPE_KEEPING or (
            func.attr in _COMPARING and len(expr.args) == 1 and numeric_literal(expr.args[0]) is not None):
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


# methods whose result keeps the receiver's dtype (views, copies, a fill: ``masked_fill`` of a
# bool tensor stays bool whatever the value, which it casts)
_DTYPE_KEEPING = frozenset({"unsqueeze", "squeeze", "view", "reshape", "expand", "expand_as", "transpose", "permute",
                            "contiguous", "clone", "detach", "repeat", "flatten", "unflatten", "masked_fill",
                            "masked_fill_", "tril", "triu"})
# methods and torch functions whose result is bool whatever their input
_BOOL_MAKING = frozenset({"bool", "logical_not", "logical_and", "logical_or", "logical_xor", "eq", "ne", "lt", "le",
                          "gt", "ge", "isnan", "isinf", "isfinite"})


def bool_by_code(expr: ast.expr, func: ast.AST | None, seen: frozenset = frozenset()) -> bool:
    """Is ``expr`` a bool tensor on every path, by the code alone: a comparison, a bool-making
    method or ``torch`` function, ``~``/``&``/``|``/``^`` of bool tensors, a view, index, copy
    or ``masked_fill`` of one, or a local name of ``func`` that every binding makes so (no
    parameter, each binding a plain assignment: qwen-tts's ``m = arange(n)[None, :] <
    lengths[:, None]``, ``m = m.unsqueeze(1)``, ``m = m.masked_fill(m == 0, -big)``)."""
    if isinstance(expr, ast.Compare):
        return True
    if isinstance(expr, ast.UnaryOp) and isinstance(expr.op, ast.Invert):
        return bool_by_code(expr.operand, func, seen)
    if isinstance(expr, ast.BinOp) and isinstance(expr.op, (ast.BitAnd, ast.BitOr, ast.BitXor)):
        return bool_by_code(expr.left, func, seen) and bool_by_code(expr.right, func, seen)
    if isinstance(expr, ast.Subscript):
        return bool_by_code(expr.value, func, seen)
    if isinstance(expr, ast.Call) and isinstance(expr.func, ast.Attribute):
        attr = expr.func.attr
        receiver = expr.func.value
        if attr in _BOOL_MAKING:
            return True  # (x.eq(y), torch.logical_not(x): bool whatever x is)
        if attr in _DTYPE_KEEPING and not (isinstance(receiver, ast.Name) and receiver.id == "torch"):
            return bool_by_code(receiver, func, seen)
        return False
    if isinstance(expr, ast.Name) and func is not None:
        if expr.id in seen:
            return True  # (a binding read by another of the same name: each is checked once)
        if any(isinstance(a, ast.arg) and a.arg == expr.id for a in ast_walk(func.args)):
            return False
        bindings = []
        for node in ast_walk(func):
            if isinstance(node, ast.Name) and node.id == expr.id and not isinstance(node.ctx, ast.Load):
                bindings.append(node)
        if not bindings:
            return False
        values = []
        for node in ast_walk(func):
            if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name) \
                    and node.targets[0].id == expr.id:
                values.append(node.value)
        if len(values) != len(bindings):
            return False  # (bound another way too: a loop, a tuple, a with, an augmented assignment)
        inner = seen | {expr.id}
        return all(bool_by_code(value, func, inner) for value in values)
    return False


def rank_leaves(expr: ast.expr, rank: int, resolve, depth: int = 0) -> list[tuple[ast.expr, int]] | None:
    """Plain names and the ranks that, all held, give ``expr`` exactly ``rank`` axes, where the
    code fixes its rank but for theirs (None where no such reading is known; an empty list
    where the code fixes it outright, :func:`static_rank`).  fastNLP's keys-first mask
    ``~key_mask[:, None, :, None].bool()`` has four axes exactly when ``key_mask`` has two:
    each ``:`` or integer index takes one axis of the base, each ``None`` adds one, and the
    base's axes beyond the indexed ones are kept.  ``resolve``: a local name's one value (or
    the name itself, a leaf)."""
    if depth > 6:
        return None
    fixed = static_rank(expr)
    if fixed is not None:
        return [] if fixed == rank else None
    if isinstance(expr, ast.UnaryOp) and isinstance(expr.op, (ast.Invert, ast.USub)):
        return rank_leaves(expr.operand, rank, resolve, depth + 1)
    if isinstance(expr, ast.Compare) and len(expr.comparators) == 1 \
            and numeric_literal(expr.comparators[0]) is not None:
        return rank_leaves(expr.left, rank, resolve, depth + 1)
    if isinstance(expr, ast.Call) and isinstance(expr.func, ast.Attribute) \
            and not any(isinstance(a, ast.Starred) for a in expr.args) \
            and all(kw.arg in ("dtype", "device", "non_blocking") for kw in expr.keywords):
        attr = expr.func.attr
        if attr in _SHAPE_KEEPING or (attr in _COMPARING and len(expr.args) == 1
                                      and numeric_literal(expr.args[0]) is not None):
            return rank_leaves(expr.func.value, rank, resolve, depth + 1)
        if attr == "unsqueeze" and len(expr.args) == 1 and rank >= 1:
            return rank_leaves(expr.func.value, rank - 1, resolve, depth + 1)
        return None
    if isinstance(expr, ast.Subscript):
        items = expr.slice.elts if isinstance(expr.slice, ast.Tuple) else [expr.slice]
        added = taken = 0
        for item in items:
            if isinstance(item, ast.Constant) and item.value is None:
                added += 1
            elif isinstance(item, ast.Slice):
                taken += 1
                added += 1
            elif isinstance(item, ast.Constant) and type(item.value) is int:
                taken += 1
            else:
                return None  # (an ellipsis, a tensor or a name as an index: not read here)
        base = rank - added + taken
        if base < taken:
            return None
        return rank_leaves(expr.value, base, resolve, depth + 1)
    if isinstance(expr, ast.Name):
        value = resolve(expr)
        if value is expr:
            return [(expr, rank)]
        return rank_leaves(value, rank, resolve, depth + 1)
    return None
