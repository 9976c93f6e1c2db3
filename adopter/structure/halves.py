"""Two halves of a tensor along its last axis, as ``chunk`` writes them.

One reading shared by the flow graph (``x1, x2 = x.chunk(2, dim=-1)``: the halves a rotation
or a gated unit takes) and the partial-rotary reading (:mod:`.partial_rope`), so that both
accept the same spellings: the method ``t.chunk(2, -1)`` and the function ``torch.chunk(t, 2,
dim=-1)``, the count and the axis positional or by keyword.
"""

from __future__ import annotations

import ast


def chunk_in_two_last(call, resolve) -> ast.expr | None:
    """The tensor ``call`` splits in two halves along its last axis (``t.chunk(2, dim=-1)``,
    ``torch.chunk(t, 2, -1)``, ``t.chunk(chunks=2, dim=-1)``); None for any other call.
    ``resolve``: a dotted expression's FQN (tells the function from the method)."""
    if call.__class__ is not ast.Call or call.func.__class__ is not ast.Attribute or call.func.attr != "chunk":
        return None
    args = list(call.args)
    if resolve(call.func) == "torch.chunk":
        tensor = args.pop(0) if args else None
    else:
        tensor = call.func.value
    if tensor is None or tensor.__class__ is ast.Starred:
        return None
    keywords = {k.arg: k.value for k in call.keywords}
    if len(keywords) != len(call.keywords) or not keywords.keys() <= {"chunks", "dim"}:
        return None
    if "chunks" in keywords:
        if args:
            return None
        args.append(keywords["chunks"])
    if "dim" in keywords:
        if len(args) != 1:
            return None
        args.append(keywords["dim"])
    if len(args) != 2:
        return None
    two, dim = args
    if not (two.__class__ is ast.Constant and two.value.__class__ is int and two.value == 2):
        return None
    if not (dim.__class__ is ast.UnaryOp and dim.op.__class__ is ast.USub
            and dim.operand.__class__ is ast.Constant and dim.operand.value == 1):
        return None
    return tensor
