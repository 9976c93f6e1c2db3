"""A two-axis view of a Linear's output that its norm layer proves to be the output's rows.

``self.bn(h.view(A, B))`` with ``h = self.fc(x)``: whatever ``A`` and ``B`` are written as
(``-1, W``; ``N * M, -1`` with N, M read off another tensor; ``h.shape[0] * h.shape[1],
h.shape[2]``), the norm checks ``B`` at run time: a ``BatchNorm1d`` of ``C`` features that keeps
running statistics or an affine weight refuses a ``(rows, B)`` input unless ``B == C``, and a
``LayerNorm(C)`` refuses one whose last size is not ``C``.  When every construction of the norm
writes ``C`` as every construction of the Linear writes its output width, ``B`` is the width of
h's last axis, and a view ``(A, B)`` of h (contiguous: a Linear's fresh output) that does not
fail is h's last-axis rows: ``h.view(-1, h.size(-1))``.  A view whose second size differs fails
in the norm as written, so no run that succeeds reads otherwise.

Only that is read: a BatchNorm1d without running statistics and without affine parameters
checks nothing (its ``(A, B)`` input may split h's last axis), nor does any other layer; sizes
written differently (``self.d`` against ``2 * self.d``), with a call in them, or with a bare name
that its building method binds again, prove nothing.
"""

from __future__ import annotations

import ast

from .treewalk import ast_walk

_CHECKED_NORMS = frozenset({"torch.nn.BatchNorm1d", "torch.nn.LayerNorm"})


def norm_checks_width(norm_ctors, linear_ctors, methods) -> bool:
    """True when every construction of the norm (at least one ``BatchNorm1d``; else
    ``BatchNorm1d`` or ``LayerNorm`` only) checks its input's last size against the same size
    every construction of the Linear writes as its output width (module docstring).
    ``methods`` maps the class's method names to their definitions (for bare names)."""
    if not norm_ctors or not linear_ctors \
            or not any(c.fqn == "torch.nn.BatchNorm1d" for c in norm_ctors):
        return False
    widths = []
    for ctor in linear_ctors:
        out = ctor.args[1] if len(ctor.args) > 1 else dict(ctor.kwargs).get("out_features")
        if ctor.fqn != "torch.nn.Linear" or ctor.unlike or ctor.via or out is None:
            return False
        widths.append((out, ctor))
    for ctor in norm_ctors:
        size = _checked_size(ctor)
        if size is None:
            return False
        for out, built in widths:
            if not (same_size(size, out) and _fixed_names(size, ctor, built, methods)):
                return False
    return True


def size_text(expr: ast.expr) -> bool:
    """``expr`` is a size computed from names, attributes, int literals, ``t.shape[i]``,
    ``t.size(i)`` and arithmetic: reading it computes nothing else, so a patch that no longer
    needs it (the leading size of a view read as rows) loses nothing by not writing it."""
    kind = expr.__class__
    if kind is ast.Name or kind is ast.Constant:
        return kind is ast.Name or type(expr.value) is int
    if kind is ast.Attribute:
        return size_text(expr.value) if expr.value.__class__ is not ast.Name else True
    if kind is ast.UnaryOp:
        return expr.op.__class__ is ast.USub and size_text(expr.operand)
    if kind is ast.BinOp:
        return expr.op.__class__ in (ast.Mult, ast.Add, ast.Sub, ast.FloorDiv) \
            and size_text(expr.left) and size_text(expr.right)
    if kind is ast.Subscript:
        return expr.value.__class__ is ast.Attribute and expr.value.attr == "shape" \
            and expr.value.value.__class__ is ast.Name and _int(expr.slice)
    if kind is ast.Call:
        func = expr.func
        return func.__class__ is ast.Attribute and func.attr == "size" and func.value.__class__ is ast.Name \
            and not expr.keywords and len(expr.args) == 1 and _int(expr.args[0])
    return False


def _int(expr: ast.expr) -> bool:
    if expr.__class__ is ast.UnaryOp and expr.op.__class__ is ast.USub:
        expr = expr.operand
    return expr.__class__ is ast.Constant and type(expr.value) is int


def _checked_size(ctor) -> ast.expr | None:
    """The size a norm construction checks its input's last axis against, or None when it
    checks none (another layer; a BatchNorm1d with neither running statistics nor an affine
    weight; a LayerNorm over several axes or a starred/computed shape)."""
    if ctor.fqn not in _CHECKED_NORMS or ctor.unlike or ctor.via:
        return None
    kwargs = dict(ctor.kwargs)
    if ctor.fqn == "torch.nn.BatchNorm1d":
        if _false(kwargs.get("affine")) and _false(kwargs.get("track_running_stats")):
            return None
        size = ctor.args[0] if ctor.args else kwargs.get("num_features")
    else:
        size = ctor.args[0] if ctor.args else kwargs.get("normalized_shape")
    if size is None or size.__class__ in (ast.Tuple, ast.List, ast.Starred) or not _pure_size(size):
        return None
    return size


def _false(value) -> bool:
    return value.__class__ is ast.Constant and value.value is False


def _pure_size(expr: ast.expr) -> bool:
    """Names, attributes, constants and arithmetic only: the same text is the same number."""
    return all(isinstance(n, (ast.Name, ast.Attribute, ast.Constant, ast.BinOp, ast.UnaryOp, ast.Load,
                              ast.operator, ast.unaryop)) for n in ast_walk(expr))


def same_size(a: ast.expr, b: ast.expr) -> bool:
    """Are ``a`` and ``b`` one size written the same way, or a product of the same two factors
    in either order (``2 * self.d`` and ``self.d * 2``)?"""
    if ast.dump(a) == ast.dump(b):
        return True
    return (a.__class__ is ast.BinOp and b.__class__ is ast.BinOp and a.op.__class__ is ast.Mult
            and b.op.__class__ is ast.Mult and ast.dump(a.left) == ast.dump(b.right)
            and ast.dump(a.right) == ast.dump(b.left))


def _fixed_names(size: ast.expr, norm, linear, methods) -> bool:
    """The bare names in ``size`` (``self`` aside) hold one value for both constructions: both
    are built in the same method, and that method never binds those names (its parameters
    are bound once, on the call)."""
    names = {n.id for n in ast_walk(size) if n.__class__ is ast.Name and n.id != "self"}
    if not names:
        return True
    if norm.func != linear.func or norm.func not in methods:
        return False
    for node in ast_walk(methods[norm.func]):
        kind = node.__class__
        if kind is ast.Name and node.id in names and node.ctx.__class__ is not ast.Load:
            return False
        if kind is ast.Global or kind is ast.Nonlocal:
            return False  # a name another scope may bind: not read
    return True
