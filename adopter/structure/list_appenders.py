"""Same-file helpers that put layers into a list their caller passes in.

ReXNet-style code builds a block's layers with a helper that appends to the caller's list::

    def conv_bn_act(out, cin, cout, active=True):
        out.append(nn.Conv2d(cin, cout, 3, bias=False))
        out.append(nn.BatchNorm2d(cout))
        if active:
            out.append(nn.ReLU())

    layers = []
    conv_bn_act(layers, 3, 32)
    layers.append(Block(...))
    self.body = nn.Sequential(*layers)

The call puts the helper's layers at the end of ``layers``, in the order the helper appends
them, so the caller's list reads as if the helper returned a fresh list of them and the caller
extended its own with it.  :func:`as_list_builder` writes that function (``out = []`` first,
``return out`` last) from the helper, so the layer typer reads it like any same-file factory
that returns a list.  It does so only when the helper uses the parameter for nothing but
``out.append(x)`` / ``out.extend(xs)`` statements: any other read (a store elsewhere, an
index, an insert, a return of it) or a rebinding leaves the helper unread (None).
"""

from __future__ import annotations

import ast

from .treewalk import ast_walk

_ADDS = frozenset({"append", "extend"})


def passed_list(call: ast.Call, is_list) -> tuple[int, str] | None:
    """The one positional argument of ``call`` that is a name ``is_list`` says holds a
    followed list: (its position, the name); None when none or several are."""
    found = None
    for i, arg in enumerate(call.args):
        if arg.__class__ is ast.Starred:
            return None  # helper(*args): positions not known
        if arg.__class__ is ast.Name and is_list(arg.id):
            if found is not None:
                return None
            found = (i, arg.id)
    return found


def as_list_builder(func: ast.FunctionDef, index: int) -> ast.FunctionDef | None:
    """``func`` rewritten to build and return, from an empty list, what it appends to its
    positional parameter ``index``; None when that parameter is used in any other way, or
    ``func`` returns anything or ends early."""
    params = func.args.posonlyargs + func.args.args
    if index >= len(params) or not func.body:
        return None
    name = params[index].arg
    if not _only_appended(func, name):
        return None
    target, display, returned = ast.Name(id=name, ctx=ast.Store()), ast.List(elts=[], ctx=ast.Load()), \
        ast.Name(id=name, ctx=ast.Load())
    empty = ast.Assign(targets=[target], value=display)
    ret = ast.Return(value=returned)
    for node, at in ((empty, func.body[0]), (target, func.body[0]), (display, func.body[0]),
                     (ret, func.body[-1]), (returned, func.body[-1])):
        ast.copy_location(node, at)
    builder = ast.FunctionDef(name=func.name, args=func.args, body=[empty, *func.body, ret],
                              decorator_list=[], returns=None, type_comment=None)
    ast.copy_location(builder, func)
    builder.end_lineno = func.end_lineno
    builder.end_col_offset = func.end_col_offset
    return builder


def _only_appended(func: ast.FunctionDef, name: str) -> bool:
    """Is every use of ``name`` in ``func`` the receiver of an ``append``/``extend`` call
    statement, with no return, yield, or other binding of it anywhere?"""
    receivers = set()
    uses = 0
    for node in ast_walk(func):
        cls = node.__class__
        if cls in (ast.Return, ast.Yield, ast.YieldFrom, ast.Lambda, ast.FunctionDef, ast.AsyncFunctionDef,
                   ast.Global, ast.Nonlocal) and node is not func:
            return False
        if cls is ast.Expr and node.value.__class__ is ast.Call:
            f = node.value.func
            if f.__class__ is ast.Attribute and f.attr in _ADDS and f.value.__class__ is ast.Name \
                    and f.value.id == name and len(node.value.args) == 1 and not node.value.keywords:
                receivers.add(id(f.value))
        elif cls is ast.Name and node.id == name:
            uses += 1
            if node.ctx.__class__ is not ast.Load:
                return False
    # every Name of the parameter is one of the receivers (they are Names of it too)
    return uses > 0 and uses == len(receivers)
