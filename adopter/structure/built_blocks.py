"""``nn.Sequential`` subclasses that build their own members, read as factories.

``class Conv2dBNActivation(nn.Sequential)`` in another module of the package: its
``__init__`` builds a conv, ``norm_layer(...)`` and ``activation_layer()`` from its
parameters and ends by handing them to ``super().__init__(...)``.  What a call of such a class
holds is then what ``nn.Sequential(<those members>)`` holds when the ``__init__`` body runs with
the call's arguments: the class read as a factory function that returns that Sequential
(:func:`block_factory`).  The engine types the members with the caller's arguments
(``LayerTyper._sibling_block_site``); a pair only the caller's arguments form (the class's
own defaults leave ``nn.Identity`` there) is a pair of the calling file.

Read only when the class keeps nn.Sequential's behaviour: one base that is ``nn.Sequential``,
no container method of its own, a forward that runs the members in order (or none), and the
``super().__init__`` call, with positional members only, as the last statement of
``__init__`` (a module cannot be registered before it, and nothing is added after it).
"""

from __future__ import annotations

import ast

from .appending import CONTAINER_API
from .class_syntax import methods as class_methods, super_init


def block_factory(cls: ast.ClassDef, base_is_sequential: bool, runs_in_order) -> ast.FunctionDef | None:
    """The class's ``__init__`` as a function of its parameters but ``self`` whose body is the
    ``__init__`` body with the final ``super().__init__(a, b, ...)`` replaced by ``return
    <base>(a, b, ...)``; None when the class is no such block (see the module docstring).
    ``runs_in_order(cls)`` is the layer typer's reading."""
    if not base_is_sequential or len(cls.bases) != 1 or cls.keywords:
        return None
    methods = class_methods(cls)
    init = methods.get("__init__")
    if init is None or init.__class__ is not ast.FunctionDef or init.decorator_list \
            or CONTAINER_API & methods.keys() or "append" in methods:
        return None
    args = init.args
    positional = args.posonlyargs + args.args
    if not positional or positional[0].arg != "self":
        return None
    body = init.body
    call = super_init(body[-1]) if body else None
    if call is None or call.keywords or any(super_init(stmt) is not None for stmt in body[:-1]):
        return None
    if not runs_in_order(cls):
        return None
    if args.posonlyargs:
        trimmed = ast.arguments(posonlyargs=args.posonlyargs[1:], args=args.args, vararg=args.vararg,
                                kwonlyargs=args.kwonlyargs, kw_defaults=args.kw_defaults, kwarg=args.kwarg,
                                defaults=args.defaults)
    else:
        trimmed = ast.arguments(posonlyargs=[], args=args.args[1:], vararg=args.vararg, kwonlyargs=args.kwonlyargs,
                                kw_defaults=args.kw_defaults, kwarg=args.kwarg, defaults=args.defaults)
    built = ast.copy_location(ast.Call(func=cls.bases[0], args=call.args, keywords=[]), call)
    returned = ast.copy_location(ast.Return(value=built), body[-1])
    func = ast.FunctionDef(name=cls.name, args=trimmed, body=[*body[:-1], returned], decorator_list=[],
                           returns=None, type_comment=None)
    return ast.copy_location(func, init)


def defaults_call(func: ast.FunctionDef, call: ast.Call) -> ast.Call:
    """``call`` less what it passes for parameters that have a default: the same block built
    at the class's own defaults (required arguments kept).  A positional argument for a
    defaulted parameter drops it and those after it (they bind defaulted parameters too)."""
    args = func.args
    positional = args.posonlyargs + args.args
    first_default = len(positional) - len(args.defaults)
    defaulted = {a.arg for a in positional[first_default:]}
    defaulted.update(a.arg for a, d in zip(args.kwonlyargs, args.kw_defaults) if d is not None)
    kept_args = call.args[:first_default] if args.vararg is None else call.args
    keywords = [k for k in call.keywords if k.arg is None or k.arg not in defaulted]
    return ast.copy_location(ast.Call(func=call.func, args=list(kept_args), keywords=keywords), call)
