"""A module whose forward runs one BatchNorm1d over its input's last axis, the axis moved to
the channel position and moved back (torch-points3d's fast BatchNorm: ``self.bn(x.permute(0, 2,
1)).permute(0, 2, 1)`` for 3-D input, ``unsqueeze(2)``/``transpose(0, 2)`` and back for 2-D).

What such a module computes in eval mode is a per-feature affine map of the input's last axis:
after a Linear, exactly what a BatchNorm1d on the Linear's output features folds into.  The
reading follows the axes, not the names: every way out of forward (by the input's rank where an
``if`` tests it, ``raise`` allowed) is traced axis by axis through the layout steps
(``permute``, ``transpose``, ``unsqueeze``, ``squeeze`` of an inserted axis, ``contiguous``),
same-class helper methods of one argument included, and must apply the norm once, with the
input's last axis at the channel position, and return the input's axes in their order.
"""

from __future__ import annotations

import ast

# (a step this reading cannot follow, or one the input's rank makes fail: that rank is not run)
_UNREAD = object()
_INVALID = object()
# the unit axis ``unsqueeze`` inserts
_UNIT = "unit"
_LAYOUT = frozenset({"permute", "transpose", "unsqueeze", "squeeze", "contiguous"})


def moves_last_axis_through_norm(cls: ast.ClassDef, forward: ast.FunctionDef, is_norm) -> bool:
    """Does ``forward`` (of ``cls``) return, on every way out that returns, its one input put
    through a BatchNorm1d attribute (``is_norm(attr)``) with the input's last axis at the channel
    axis, every other axis back where it was?  (Ranks 2 and 3, the ones BatchNorm1d takes.)"""
    args = forward.args
    if len(args.args) != 2 or args.posonlyargs or args.vararg or args.kwarg or args.kwonlyargs or args.defaults:
        return False
    methods = {item.name: item for item in cls.body if item.__class__ is ast.FunctionDef}
    x = args.args[1].arg
    ran = False
    for rank in (2, 3):
        out = _run(forward.body, {x: (tuple(range(rank)), None)}, x, rank, methods, is_norm, 0)
        if out is _UNREAD:
            return False
        if out is _INVALID or out is None:
            continue
        axes, normed = out
        if axes != tuple(range(rank)) or normed != rank - 1:
            return False
        ran = True
    return ran


def _rank_test(test: ast.expr, x: str):
    """The rank ``test`` compares the input's with (``x.dim() == k``, ``x.ndim == k``,
    ``len(x.shape) == k``), or None."""
    if not (test.__class__ is ast.Compare and len(test.ops) == 1 and test.ops[0].__class__ is ast.Eq):
        return None
    left, right = test.left, test.comparators[0]
    if not (right.__class__ is ast.Constant and right.value.__class__ is int):
        return None
    if (left.__class__ is ast.Call and not left.args and not left.keywords and left.func.__class__ is ast.Attribute
            and left.func.attr in ("dim", "ndimension") and _is(left.func.value, x)):
        return right.value
    if left.__class__ is ast.Attribute and left.attr == "ndim" and _is(left.value, x):
        return right.value
    if (left.__class__ is ast.Call and left.func.__class__ is ast.Name and left.func.id == "len"
            and len(left.args) == 1 and left.args[0].__class__ is ast.Attribute and left.args[0].attr == "shape"
            and _is(left.args[0].value, x)):
        return right.value
    return None


def _is(expr: ast.expr, name: str) -> bool:
    return expr.__class__ is ast.Name and expr.id == name


def _run(body: list, env: dict, x: str, rank: int, methods: dict, is_norm, depth: int):
    """The statements ``body`` at this input rank (``x`` the input's name, for rank tests):
    ``(axes, normed)`` of the value returned, None when the way raises, _INVALID when a step
    fails at this rank, _UNREAD otherwise (an arm that does not end the way is not read)."""
    for stmt in body:
        kind = stmt.__class__
        if kind is ast.Expr and stmt.value.__class__ is ast.Constant:
            continue  # a docstring
        if kind is ast.Raise:
            return None
        if kind is ast.Return:
            if stmt.value is None:
                return _UNREAD
            return _value(stmt.value, env, x, rank, methods, is_norm, depth)
        if kind is ast.Assign and len(stmt.targets) == 1 and stmt.targets[0].__class__ is ast.Name:
            value = _value(stmt.value, env, x, rank, methods, is_norm, depth)
            if value is _UNREAD or value is _INVALID:
                return value
            env = {**env, stmt.targets[0].id: value}
            continue
        if kind is ast.If:
            # ``if x.dim() == k:`` on the input as given: its arm runs at that rank alone
            tested = _rank_test(stmt.test, x) if env.get(x) == (tuple(range(rank)), None) else None
            if tested is None:
                return _UNREAD
            if tested == rank:
                return _run(stmt.body, env, x, rank, methods, is_norm, depth)
            if stmt.orelse:
                return _run(stmt.orelse, env, x, rank, methods, is_norm, depth)
            continue
        return _UNREAD
    return _UNREAD  # falls off the end: returns None


def _value(expr: ast.expr, env: dict, x: str, rank: int, methods: dict, is_norm, depth: int):
    """``(axes, normed)`` of ``expr``: the input's axes in the order the value holds them (the
    unit axes ``unsqueeze`` put in as ``_UNIT``) and the input axis a norm ran over (None if none)."""
    if expr.__class__ is ast.Name:
        return env.get(expr.id, _UNREAD)
    if expr.__class__ is not ast.Call:
        return _UNREAD
    func = expr.func
    if func.__class__ is not ast.Attribute:
        return _UNREAD
    if func.value.__class__ is ast.Name and func.value.id == "self":
        if len(expr.args) != 1 or expr.keywords:
            return _UNREAD
        inner = _value(expr.args[0], env, x, rank, methods, is_norm, depth)
        if inner is _UNREAD or inner is _INVALID:
            return inner
        axes, normed = inner
        method = methods.get(func.attr)
        if method is not None:
            # a helper of the class on the value (``self._forward_dense(x)``): its body, its one
            # argument bound to the value
            margs = method.args
            if (depth > 2 or len(margs.args) != 2 or margs.posonlyargs or margs.vararg or margs.kwarg
                    or margs.kwonlyargs or margs.defaults):
                return _UNREAD
            param = margs.args[1].arg
            out = _run(method.body, {param: inner}, "\0", rank, methods, is_norm, depth + 1)
            return _UNREAD if out is None else out
        if not is_norm(func.attr) or normed is not None:
            return _UNREAD
        if len(axes) not in (2, 3):
            # BatchNorm1d raises on any other rank (deltaconv's 2-D form given 3-D input:
            # ``unsqueeze(2)`` then ``transpose(0, 2)`` makes it 4-D): that rank is not run
            return _INVALID
        if axes[1] == _UNIT:
            return _UNREAD
        return axes, axes[1]
    if func.attr not in _LAYOUT:
        return _UNREAD
    inner = _value(func.value, env, x, rank, methods, is_norm, depth)
    if inner is _UNREAD or inner is _INVALID:
        return inner
    axes, normed = inner
    moved = _layout(func.attr, axes, expr)
    if moved is _UNREAD or moved is _INVALID:
        return moved
    return moved, normed


def _ints(nodes) -> list | None:
    out = []
    for node in nodes:
        if node.__class__ is ast.UnaryOp and node.op.__class__ is ast.USub and node.operand.__class__ is ast.Constant:
            node = ast.Constant(-node.operand.value) if node.operand.value.__class__ is int else node
        if not (node.__class__ is ast.Constant and node.value.__class__ is int):
            return None
        out.append(node.value)
    return out


def _axis(index: int, size: int):
    if not -size <= index < size:
        return _INVALID
    return index % size


def _layout(step: str, axes: tuple, call: ast.Call):
    """The axes after one layout step, _INVALID when the step fails on them."""
    if step == "contiguous":
        return axes if not call.args and not call.keywords else _UNREAD
    if step == "squeeze" and len(call.keywords) == 1 and call.keywords[0].arg == "dim" and not call.args:
        given = _ints([call.keywords[0].value])
    elif call.keywords:
        return _UNREAD
    else:
        given = call.args
        if step == "permute" and len(given) == 1 and given[0].__class__ in (ast.Tuple, ast.List):
            given = given[0].elts
        given = _ints(given)
    if given is None:
        return _UNREAD
    size = len(axes)
    if step == "permute":
        if len(given) != size:
            return _INVALID
        order = [_axis(i, size) for i in given]
        if _INVALID in order or sorted(order) != list(range(size)):
            return _INVALID
        return tuple(axes[i] for i in order)
    if step == "transpose":
        if len(given) != 2:
            return _UNREAD
        a, b = (_axis(i, size) for i in given)
        if _INVALID in (a, b):
            return _INVALID
        out = list(axes)
        out[a], out[b] = out[b], out[a]
        return tuple(out)
    if len(given) != 1:
        return _UNREAD
    if step == "unsqueeze":
        at = _axis(given[0], size + 1)
        return _INVALID if at is _INVALID else axes[:at] + (_UNIT,) + axes[at:]
    at = _axis(given[0], size)
    if at is _INVALID or axes[at] != _UNIT:
        return _UNREAD  # (squeezing an input axis: its size is not known to be one)
    return axes[:at] + axes[at + 1:]
