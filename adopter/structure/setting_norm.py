"""A norm module of the file whose construction setting picks the torch norm it runs.

ognn's ``GraphNorm(channels, norm_type="batch_norm")`` binds ``self.norm =
nn.BatchNorm1d(channels)`` under ``if self.norm_type == "batch_norm":`` (another norm under
``elif``), and its forward runs ``output = self.norm(x)`` under the same test, then returns
``output``.  Built with a setting whose value the file decides (a string literal, or a parameter
whose default and every caller's value are decided), calling the module runs that arm: the torch
norm of its first input, its other inputs unread.  A Linear before it folds into that norm as it
would into the norm itself.

:func:`setting_norm_module` reads the class once (what each value of the setting runs); the
layer typer decides the value at each construction.  Only classes whose forward starts with
``if self.<setting> == "<value>":`` are read further (most forwards start otherwise)."""
from __future__ import annotations

import ast

from ..records import dataclass
from .formulas import forward_and_init
from .treewalk import ast_walk

# the norms whose arm makes the module that norm of its input (what a Linear or a conv folds into)
NORMS = frozenset({"torch.nn.BatchNorm1d", "torch.nn.BatchNorm2d"})


@dataclass(frozen=True)
class SettingNorm:
    """A class's reading: the ``__init__`` parameter holding the setting, its default, and the
    norm each value runs (only values whose arms were read as one norm of the first input)."""

    param: str
    default: ast.expr | None
    norms: tuple  # ((value, norm FQN), ...)

    def norm(self, values) -> str | None:
        """The one norm every value in ``values`` runs; None when one runs none or they differ."""
        chosen = dict(self.norms)
        found = {chosen.get(v) for v in values}
        return found.pop() if len(found) == 1 and None not in found else None


def _setting_test(test: ast.expr, attr: str | None = None, param: str | None = None) -> str | None:
    """``<value>`` for ``self.<attr> == "<value>"`` (``<param> == "<value>"`` where ``param`` is
    given); None otherwise.  With ``attr`` None, the attribute is returned as ``attr:value``."""
    if test.__class__ is not ast.Compare or len(test.ops) != 1 or test.ops[0].__class__ is not ast.Eq:
        return None
    left, right = test.left, test.comparators[0]
    if right.__class__ is not ast.Constant or not isinstance(right.value, str):
        return None
    if left.__class__ is ast.Attribute and left.value.__class__ is ast.Name and left.value.id == "self":
        if attr is None:
            return f"{left.attr}:{right.value}"
        return right.value if left.attr == attr else None
    if param is not None and left.__class__ is ast.Name and left.id == param:
        return right.value
    return None


def _arms(stmt: ast.If, attr: str, param: str | None = None) -> list | None:
    """[(value, arm body)] of an ``if``/``elif`` chain testing the setting; the final ``else``
    (a ``raise``, or nothing) is no value's arm.  None when a test is of anything else."""
    arms = []
    while True:
        value = _setting_test(stmt.test, attr, param)
        if value is None:
            return None
        arms.append((value, stmt.body))
        rest = stmt.orelse
        if len(rest) == 1 and rest[0].__class__ is ast.If:
            stmt = rest[0]
            continue
        return arms


def _self_call(expr: ast.expr, x: str) -> str | None:
    """``<attr>`` for ``self.<attr>(<x>)`` (one argument, the input); None otherwise."""
    if expr.__class__ is not ast.Call or len(expr.args) != 1 or expr.keywords:
        return None
    func, arg = expr.func, expr.args[0]
    if func.__class__ is not ast.Attribute or func.value.__class__ is not ast.Name or func.value.id != "self":
        return None
    return func.attr if arg.__class__ is ast.Name and arg.id == x else None


def _arm_call(arm: list, x: str, after: list) -> str | None:
    """The attribute an arm calls on the input as the forward's result: ``return self.<a>(x)``,
    or ``<n> = self.<a>(x)`` with the forward then returning ``<n>``; None otherwise."""
    if len(arm) != 1:
        return None
    stmt = arm[0]
    if stmt.__class__ is ast.Return:
        return _self_call(stmt.value, x) if stmt.value is not None else None
    if stmt.__class__ is ast.Assign and len(stmt.targets) == 1 and stmt.targets[0].__class__ is ast.Name \
            and len(after) == 1 and after[0].__class__ is ast.Return and after[0].value.__class__ is ast.Name \
            and after[0].value.id == stmt.targets[0].id:
        return _self_call(stmt.value, x)
    return None


def _init_param(init: ast.FunctionDef, attr: str) -> tuple | None:
    """(parameter, its default or None) when ``__init__`` binds ``self.<attr>`` once, to one of
    its parameters, and nothing else in it binds that attribute."""
    params = {a.arg: a for a in init.args.args[1:]}
    defaults = dict(zip([a.arg for a in init.args.args][len(init.args.args) - len(init.args.defaults):],
                        init.args.defaults))
    bound = None
    for node in ast_walk(init):
        if node.__class__ is ast.Attribute and node.attr == attr and node.ctx.__class__ is ast.Store:
            if bound is not None:
                return None
            bound = node
    for stmt in init.body:
        if stmt.__class__ is ast.Assign and len(stmt.targets) == 1 and stmt.targets[0] is bound:
            value = stmt.value
            if value.__class__ is ast.Name and value.id in params:
                return value.id, defaults.get(value.id)
    return None


def _init_norms(init: ast.FunctionDef, attr: str, param: str, names) -> dict:
    """value -> {attribute: constructor FQN} for each arm of ``__init__``'s top-level chain on
    the setting: the attributes the arm binds to one constructor call each."""
    for stmt in init.body:
        if stmt.__class__ is not ast.If:
            continue
        arms = _arms(stmt, attr, param)
        if arms is None:
            continue
        found = {}
        for value, body in arms:
            bound = {}
            for s in body:
                if s.__class__ is ast.Assign and len(s.targets) == 1 and s.targets[0].__class__ is ast.Attribute \
                        and s.targets[0].value.__class__ is ast.Name and s.targets[0].value.id == "self" \
                        and s.value.__class__ is ast.Call:
                    bound[s.targets[0].attr] = names.resolve(s.value.func)
            found[value] = bound
        return found
    return {}


def setting_norm_module(cls: ast.ClassDef, names) -> SettingNorm | None:
    """The class's :class:`SettingNorm` reading (see the module docstring); None for any other
    class."""
    forward, init = forward_and_init(cls)
    if forward is None or init is None or not forward.body or len(forward.args.args) < 2 \
            or forward.args.vararg or forward.args.kwarg:
        return None
    first = forward.body[0]
    if first.__class__ is not ast.If:
        return None  # (the gate: most forwards start otherwise)
    keyed = _setting_test(first.test)
    if keyed is None:
        return None
    attr = keyed.split(":", 1)[0]
    arms = _arms(first, attr)
    if arms is None:
        return None
    setting = _init_param(init, attr)
    if setting is None:
        return None
    param, default = setting
    bound = _init_norms(init, attr, param, names)
    x = forward.args.args[1].arg
    # the arm's layer reads the input; nothing else in the arm, nor after the chain, reads it
    after = forward.body[1:]
    norms = []
    for value, arm in arms:
        called = _arm_call(arm, x, after)
        fqn = bound.get(value, {}).get(called) if called is not None else None
        if fqn in NORMS:
            norms.append((value, fqn))
    if not norms:
        return None
    return SettingNorm(param, default, tuple(norms))
