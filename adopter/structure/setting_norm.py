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


@dataclass(frozen=True)
class SettingActivation:
    """A class's reading (:func:`setting_activation_module`): the ``__init__`` parameter holding
    the setting, its default, whether ``__init__`` lower-cases it first, and the constructor
    each value binds (``((value, constructor FQN), ...)``; a class of the module by its name)."""

    param: str
    default: ast.expr | None
    lowered: bool
    ctors: tuple


def _setting_values_of(test: ast.expr, param: str) -> tuple | None:
    """The strings an arm's test compares the parameter with: ``p == "a"``, or ``p == "a" or
    p == "b"``; None for any other test."""
    if test.__class__ is ast.BoolOp and test.op.__class__ is ast.Or:
        values = tuple(_setting_test(v, None, param) for v in test.values)
        return None if None in values else values
    value = _setting_test(test, None, param)
    return None if value is None else (value,)


def setting_activation_module(cls: ast.ClassDef, names) -> SettingActivation | None:
    """paddleocr ports' ``Activation(act_type)``: ``__init__`` binds ``self.<a>`` to one
    constructor call in each arm of an ``if act_type == "relu": ... elif act_type == "gelu":``
    chain (maybe after ``act_type = act_type.lower()``; a final ``else`` that raises binds
    nothing), and the forward is ``return self.<a>(x)`` alone: calling the module runs the layer
    the construction's setting picks, on its input.  None for any other class (most forwards
    are more than one ``return``)."""
    forward = None
    for item in cls.body:  # (the gate, without calls: most classes are read here and left)
        if item.__class__ is ast.FunctionDef and item.name == "forward":
            forward = item
    if forward is None:
        return None
    body = forward.body
    if body[0].__class__ is ast.Expr and body[0].value.__class__ is ast.Constant:
        body = body[1:]  # (a docstring)
    if not body or body[1:] or body[0].__class__ is not ast.Return or body[0].value is None:
        return None
    forward, init = forward_and_init(cls)
    if init is None or len(forward.args.args) != 2 or forward.args.vararg \
            or forward.args.kwarg or forward.args.kwonlyargs:
        return None
    attr = _self_call(body[0].value, forward.args.args[1].arg)
    if attr is None:
        return None
    params = [a.arg for a in init.args.args[1:]]
    defaults = dict(zip([a.arg for a in init.args.args][len(init.args.args) - len(init.args.defaults):],
                        init.args.defaults))
    lowered = None  # the ``act_type = act_type.lower()`` statement, when there is one
    for stmt in init.body:
        if stmt.__class__ is ast.Assign and len(stmt.targets) == 1 and stmt.targets[0].__class__ is ast.Name \
                and stmt.targets[0].id in params and stmt.value.__class__ is ast.Call \
                and not stmt.value.args and not stmt.value.keywords \
                and stmt.value.func.__class__ is ast.Attribute and stmt.value.func.attr == "lower" \
                and stmt.value.func.value.__class__ is ast.Name and stmt.value.func.value.id == stmt.targets[0].id:
            lowered = stmt  # act_type = act_type.lower()
            continue
        if stmt.__class__ is not ast.If or stmt.test.__class__ not in (ast.Compare, ast.BoolOp):
            continue
        param = _compared_param(stmt.test, params)
        if param is None:
            continue
        if lowered is not None and lowered.targets[0].id != param:
            lowered = None  # (another parameter lower-cased: its binding is checked below)
        arms = []  # (value, constructor or None) in the chain's order: the first match runs
        chain = set()  # the chain's own bindings of the member
        node = stmt
        while True:
            values = _setting_values_of(node.test, param)
            if values is None:
                return None
            ctor = _arm_binding(node.body, attr, names)
            if ctor is not None:
                chain.add(id(node.body[0].targets[0]))
            for value in values:
                if lowered is not None and value != value.lower():
                    continue  # (a test a lower-cased string never passes)
                arms.append((value, ctor))
            rest = node.orelse
            if len(rest) == 1 and rest[0].__class__ is ast.If:
                node = rest[0]
                continue
            if any(s.__class__ is not ast.Raise for s in rest):
                return None  # (an ``else`` that binds: a value no test names)
            break
        first = {}
        for value, ctor in arms:
            first.setdefault(value, ctor)  # (a value tested twice runs its first arm)
        ctors = tuple((v, c) for v, c in first.items() if c is not None)
        if not ctors or _rebound(init, attr, param, chain, lowered):
            return None
        return SettingActivation(param, defaults.get(param), lowered is not None, ctors)
    return _fixed_activation(init, attr, names)


# the torch activation a module may hold fixed and run alone (_fixed_activation)
FIXED_ACTIVATIONS = frozenset({"torch.nn.GELU"})


def _fixed_activation(init: ast.FunctionDef, attr: str, names) -> SettingActivation | None:
    """A wrapper with no setting chain (a package's own ``GELU`` module: ``self.act =
    nn.GELU(approximate=approximate)`` in ``__init__``, ``return self.act(x)`` its forward):
    ``__init__`` binds the member once, at its top level, to a torch activation of
    FIXED_ACTIVATIONS and nowhere else; the reading's setting is None, its one constructor
    that activation."""
    bound = [stmt for stmt in init.body if stmt.__class__ is ast.Assign and len(stmt.targets) == 1
             and _binds(stmt, attr)]
    if len(bound) != 1 or bound[0].value.__class__ is not ast.Call:
        return None
    fqn = names.resolve(bound[0].value.func)
    if fqn not in FIXED_ACTIVATIONS or _rebound(init, attr, "", {id(bound[0].targets[0])}, None):
        return None
    return SettingActivation(None, None, False, ((None, fqn),))


# statements and patterns that bind the name they carry in ``name``
_NAMED = (ast.ExceptHandler, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.MatchAs, ast.MatchStar)


def _rebound(init: ast.FunctionDef, attr: str, param: str, chain: set, lowered) -> bool:
    """Does ``__init__`` bind ``self.<attr>`` anywhere but in the chain's arms (``chain``: ids
    of those targets), or the setting ``param`` anywhere but in the ``.lower()`` statement, at
    any depth (a nested block, a loop, a nested function), or hand ``self`` to ``setattr`` /
    ``delattr`` with that name or a name it does not spell out?  Then the chain alone does not
    decide what the member is."""
    me = init.args.args[0].arg
    skip = id(lowered.targets[0]) if lowered is not None else None
    for node in ast_walk(init):
        kind = node.__class__
        if kind is ast.Attribute:
            if node.attr == attr and node.ctx.__class__ is not ast.Load and node.value.__class__ is ast.Name \
                    and node.value.id == me and id(node) not in chain:
                return True
        elif kind is ast.Name:
            if node.id == param and node.ctx.__class__ is not ast.Load and id(node) != skip:
                return True
        elif kind in _NAMED:
            if node.name == param:
                return True  # (``except E as act_type``, a nested ``def act_type``, a match capture)
        elif kind is ast.alias:
            if (node.asname or node.name.split(".", 1)[0]) == param:
                return True
        elif kind is ast.Call:
            func, args = node.func, node.args
            if func.__class__ is ast.Name and func.id in ("setattr", "delattr") and len(args) >= 2 \
                    and args[0].__class__ is ast.Name and args[0].id == me \
                    and not (args[1].__class__ is ast.Constant and args[1].value != attr):
                return True
    return False


def _compared_param(test: ast.expr, params: list) -> str | None:
    """The ``__init__`` parameter a chain's first test compares with a string (first operand)."""
    first = test.values[0] if test.__class__ is ast.BoolOp else test
    if first.__class__ is ast.Compare and first.left.__class__ is ast.Name and first.left.id in params:
        return first.left.id
    return None


def _arm_binding(body: list, attr: str, names) -> str | None:
    """The constructor FQN an arm binds ``self.<attr>`` to (its only statement, one call); None
    for an arm that raises, or does anything else."""
    if len(body) != 1:
        return None
    stmt = body[0]
    if stmt.__class__ is ast.Assign and len(stmt.targets) == 1 and _binds(stmt, attr) \
            and stmt.value.__class__ is ast.Call:
        return names.resolve(stmt.value.func)
    return None


def _binds(stmt: ast.stmt, attr: str) -> bool:
    """Does the statement assign ``self.<attr>`` (top level of the statement only)?"""
    if stmt.__class__ is not ast.Assign:
        return False
    return any(t.__class__ is ast.Attribute and t.attr == attr and t.value.__class__ is ast.Name
               and t.value.id == "self" for t in stmt.targets)
