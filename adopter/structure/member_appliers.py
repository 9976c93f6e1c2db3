"""A module-level function that applies one member of an ``nn.Sequential`` subclass to the
running value for that subclass's ``forward`` loop (``for m in self: x, s = step(m, x, s)``).

Point-cloud and sparse-tensor packages chain torch layers and their own spatial modules in one
container: the running value is either the package's structured object (a point set holding a
feature tensor) or a plain tensor, and a helper picks, by ``isinstance`` tests on the member
and on the value, how to run the member (unwrap the features for a torch layer, wrap a tensor
back for a spatial module) while it threads the structured object along as state::

    def step(module, x, state):
        if isinstance(module, SpatialModule) and isinstance(x, PointSet):
            return module(x), state
        elif not isinstance(module, SpatialModule) and isinstance(x, PointSet):
            state = x
            x = module(x.features)
        elif isinstance(x, torch.Tensor) and isinstance(module, SpatialModule):
            x = module(state.replace(x))
        else:
            x = module(x)
        return x, state

What a layer pair needs is the step between two torch layers: the member is a torch class,
an instance of none of the package's own classes, and the running value is the previous torch
layer's output, a ``torch.Tensor`` and an instance of none of the package's classes.  Under
those facts each ``isinstance`` test of the member or of the value against a package class is
false and one against ``torch.Tensor`` true: :func:`applies_member` reads the branch the
tests then take and accepts the helper only when that branch runs the member on the running
value itself and hands the value and the state back unchanged otherwise (``x = module(x)``
then ``return x, state``, or ``return module(x), state``).  A test it cannot decide (against
a torch class, on another name, a call) makes the helper unknown: no chain.
"""

from __future__ import annotations

import ast

from .class_syntax import is_name as _is_name

TENSOR = "torch.Tensor"


def applies_member(fdef: ast.FunctionDef, resolve, owns) -> bool:
    """Is ``fdef`` ``step(member, value, state)`` running a torch-layer member on a tensor
    value as ``value = member(value)`` and handing back ``(value, state)``?  ``resolve`` maps
    an expression to its dotted name (or None), ``owns(fqn)`` says whether a name is one of
    the checked package's (or file's) own classes."""
    args = fdef.args
    if args.vararg or args.kwarg or args.kwonlyargs or args.posonlyargs or args.defaults or len(args.args) != 3:
        return False
    member, value, state = (a.arg for a in args.args)
    body = fdef.body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
            and isinstance(body[0].value.value, str):
        body = body[1:]  # the docstring
    if len(body) != 2 or not isinstance(body[0], ast.If) or not _returns(body[1], value, state):
        return False
    taken = _taken(body[0], member, value, resolve, owns)
    if taken is None:
        return False
    taken = [s for s in taken if not isinstance(s, ast.Pass)]
    if len(taken) != 1:
        return False
    stmt = taken[0]
    if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and _is_name(stmt.targets[0], value):
        call = stmt.value
    elif isinstance(stmt, ast.Return) and isinstance(stmt.value, ast.Tuple) and len(stmt.value.elts) == 2 \
            and _is_name(stmt.value.elts[1], state):
        call = stmt.value.elts[0]
    else:
        return False
    return isinstance(call, ast.Call) and _is_name(call.func, member) and len(call.args) == 1 \
        and not call.keywords and _is_name(call.args[0], value)


def _returns(stmt: ast.stmt, value: str, state: str) -> bool:
    """``return value, state``."""
    return isinstance(stmt, ast.Return) and isinstance(stmt.value, ast.Tuple) and len(stmt.value.elts) == 2 \
        and _is_name(stmt.value.elts[0], value) and _is_name(stmt.value.elts[1], state)


def _taken(stmt: ast.If, member: str, value: str, resolve, owns) -> list | None:
    """The statements of the branch of the ``if``/``elif`` chain ``stmt`` taken for a torch
    layer on a tensor; None when a test cannot be decided or no branch is taken."""
    while True:
        truth = _assumed(stmt.test, member, value, resolve, owns)
        if truth is True:
            return stmt.body
        if truth is not False:
            return None
        orelse = stmt.orelse
        if len(orelse) == 1 and isinstance(orelse[0], ast.If):
            stmt = orelse[0]
            continue
        return orelse or None


def _assumed(expr: ast.expr, member: str, value: str, resolve, owns):
    """True / False / None (unknown) for ``expr`` with ``member`` a torch layer and ``value``
    a torch layer's output tensor."""
    if isinstance(expr, ast.BoolOp):
        truths = [_assumed(v, member, value, resolve, owns) for v in expr.values]
        if isinstance(expr.op, ast.And):
            return False if False in truths else (True if all(t is True for t in truths) else None)
        return True if True in truths else (False if all(t is False for t in truths) else None)
    if isinstance(expr, ast.UnaryOp) and isinstance(expr.op, ast.Not):
        truth = _assumed(expr.operand, member, value, resolve, owns)
        return None if truth is None else not truth
    if isinstance(expr, ast.Call) and _is_name(expr.func, "isinstance") and len(expr.args) == 2 and not expr.keywords:
        subject, kind = expr.args
        if not isinstance(kind, (ast.Name, ast.Attribute)):
            return None
        fqn = resolve(kind)
        if fqn is None:
            return None
        if _is_name(subject, member):
            return False if owns(fqn) else None
        if _is_name(subject, value):
            if fqn == TENSOR:
                return True
            return False if owns(fqn) else None
    return None
