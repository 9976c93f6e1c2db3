"""Does a module's ``forward`` read a tensor it is handed only for what it is (its sizes,
rank, dtype, device), never its values?  Both the matcher and the sdpa synthesizer ask it of a
module called on attention scores (a relative-position or ALiBi bias module sized by
``sim.shape[-2:]``): the matcher to know the bias is given before the scores' values
(match.Matcher._independent), the synthesizer to hand the module a stand-in of their shape
instead of scores the fused call never computes (synth/sdpa.py _stand_in_swaps)."""

from __future__ import annotations

import ast

from .treewalk import ast_walk

SHAPE_METADATA = {"dtype", "device", "shape", "ndim"}  # what a tensor is, not its values
SHAPE_METADATA_METHODS = {"size", "dim", "ndimension"}


def plain_forward(cls: ast.ClassDef) -> ast.FunctionDef | None:
    """The class's own ``forward`` when calling an instance runs just it: no ``__call__``
    override, no decorator, not a coroutine."""
    methods = {m.name: m for m in cls.body if isinstance(m, (ast.FunctionDef, ast.AsyncFunctionDef))}
    forward = methods.get("forward")
    if forward is None or "__call__" in methods or forward.decorator_list or isinstance(forward, ast.AsyncFunctionDef):
        return None
    return forward


def shape_metadata_only(func: ast.FunctionDef, param: str) -> bool:
    """Does ``func`` read its parameter ``param`` only as ``param.shape`` (and its items),
    ``.size(...)``, ``.dim()``, ``.ndim``, ``.dtype`` or ``.device``, and never assign it?"""
    parents = {child: parent for parent in ast_walk(func) for child in ast.iter_child_nodes(parent)}
    uses = [n for n in ast_walk(func) if isinstance(n, ast.Name) and n.id == param]
    if not uses or any(isinstance(n, ast.arg) and n.arg == param for n in ast_walk(func)
                       if n not in (*func.args.posonlyargs, *func.args.args)):
        return False  # (a lambda or nested function of its own with a parameter of that name)
    for n in uses:
        attribute = parents.get(n)
        if not isinstance(n.ctx, ast.Load) or not isinstance(attribute, ast.Attribute):
            return False
        if attribute.attr in SHAPE_METADATA:
            continue
        call = parents.get(attribute)
        if attribute.attr in SHAPE_METADATA_METHODS and isinstance(call, ast.Call) and call.func is attribute:
            continue
        return False
    return True
