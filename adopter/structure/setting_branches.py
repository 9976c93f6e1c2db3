"""A layer whose type ``__init__`` picks by a setting that ``forward`` tests again.

``if self.use_swiglu: self.act = nn.SiLU() else: self.act = nn.GELU()`` in ``__init__``, then
``if self.use_swiglu: h = self.act(self.w1(x)) * self.w3(x)`` in ``forward``: the setting is fixed
once the module is built, so the ``forward`` arm taken with the test true only ever calls the
layer the ``__init__`` branch taken with the test true bound (here SiLU, never GELU).  Typing the
attribute from both branches reads that arm as if it might hold GELU.

A test is a *setting* when its value cannot change between construction and a call: it reads
only constants, ``__init__`` parameters its body never assigns, attributes ``self.<a>`` that
hold such a parameter (``self.mode = mode``) or that ``__init__``'s top level assigns once and
nothing else in the file writes, and attributes of those that nothing in the file writes
(``config.use_gate``), combined by comparisons, ``and``/``or``/``not``.  Both tests are
written in one canonical text (``self.mode`` read as ``mode`` when it holds that parameter), so
``if mode == "exact":`` in ``__init__`` and ``if self.mode == "exact":`` in ``forward`` are one
setting.  Anything else (a call, a local, an attribute some code writes) is no setting.

The flow builder asks only for classes whose ``__init__`` binds an attribute under such a test
(:func:`init_settings`, once per class), and keys the arm's layer calls with
``(SETTING + text, truth)`` as it keys ``if self.<attr> == "<key>":`` arms (graph
``FlowBuilder._keyed_ctors``)."""
from __future__ import annotations

import ast
import re

from .bindings import span

SETTING = "?"  # prefix of a setting's key (a parameter's name never starts with it)
_COMPARE = {ast.Eq: "==", ast.NotEq: "!=", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=",
            ast.Is: "is", ast.IsNot: "is not", ast.In: "in", ast.NotIn: "not in"}


def setting_text(test: ast.expr, builder, in_init: bool) -> str | None:
    """The canonical text of ``test`` when it is a setting (module docstring), else None.
    ``in_init``: the test is read in ``__init__``, where a bare parameter name may appear."""
    kind = test.__class__
    if kind is ast.Constant:
        return repr(test.value)
    if kind is ast.Name:
        return test.id if in_init and builder._param_kept(test.id) else None
    if kind is ast.Attribute:
        holder = test.value
        if holder.__class__ is ast.Name and holder.id == "self":
            return _self_setting(test.attr, builder)
        inner = setting_text(holder, builder, in_init)
        if inner is None or _written(test.attr, builder):
            return None
        return f"{inner}.{test.attr}"
    if kind is ast.UnaryOp and test.op.__class__ is ast.Not:
        inner = setting_text(test.operand, builder, in_init)
        return None if inner is None else f"not ({inner})"
    if kind is ast.BoolOp:
        parts = [setting_text(v, builder, in_init) for v in test.values]
        if None in parts:
            return None
        return (" and " if test.op.__class__ is ast.And else " or ").join(f"({p})" for p in parts)
    if kind is ast.Compare:
        parts = [setting_text(test.left, builder, in_init)]
        for op, right in zip(test.ops, test.comparators):
            parts.append(_COMPARE.get(op.__class__))
            parts.append(setting_text(right, builder, in_init))
        return None if None in parts else " ".join(parts)
    if kind is ast.Tuple:
        parts = [setting_text(e, builder, in_init) for e in test.elts]
        return None if None in parts else "(" + ", ".join(parts) + ",)"
    return None


def _self_setting(attr: str, builder) -> str | None:
    """``self.<attr>`` in a setting (once per class and attribute: ``cls.setting_attrs``)."""
    found = builder.cls.setting_attrs
    if found is None:
        found = builder.cls.setting_attrs = {}
    if attr not in found:
        found[attr] = None if attr in _MODULE_STATE else _read_self_setting(attr, builder)
    return found[attr]


# attributes torch.nn.Module itself rewrites after construction (``train()``/``eval()``)
_MODULE_STATE = frozenset({"training"})


def _read_self_setting(attr: str, builder) -> str | None:
    """The parameter ``self.<attr>`` holds (``self.mode = mode``), or ``self.<attr>`` itself
    when ``__init__``'s top level assigns it once, no other statement of the class assigns it,
    its value is no container built empty or filled later, and nothing else in the file writes
    it (graph ``FlowBuilder._flag_fixed``); None otherwise."""
    param = builder._held_param(attr)
    if param is not None:
        return param
    cls = builder.cls
    assigned = [stmt for stmt in cls.methods["__init__"].body if stmt.__class__ is ast.Assign
                and len(stmt.targets) == 1 and _is_self_attr(stmt.targets[0], attr)]
    if len(assigned) != 1 or _container(assigned[0].value):
        return None
    if builder.lines is None:
        return None
    node = cls.node  # (the class's text, as graph's _kept_param reads it: no walk of its tree)
    text = "\n".join(builder.lines[node.lineno - 1:node.end_lineno])
    if len(re.findall(rf"\bself\.{re.escape(attr)}\s*(?:[-+*/%@&|^]|//|\*\*|<<|>>)?=(?!=)", text)) != 1:
        return None
    return f"self.{attr}" if builder._flag_fixed(attr, _getattr_reads_masked(attr, builder)) else None


def _getattr_reads_masked(attr: str, builder) -> str:
    """The file's text with each ``getattr(<obj>, "<attr>"`` read masked: ``_flag_fixed`` takes
    any quoted name for a write (``setattr(self, "<attr>", v)``), but the setting read from a
    config (``self.use_swiglu = getattr(config, 'use_swiglu', True)``) writes nothing."""
    text = builder.text if builder.text is not None else "\n".join(builder.lines)
    if f'"{attr}"' not in text and f"'{attr}'" not in text:
        return text  # (no quoted name: nothing to mask, no pass of the regex over the file)
    return re.sub(rf"getattr\(\s*[\w.]+\s*,\s*[\"']{re.escape(attr)}[\"']", "getattr(_, _", text)


_CONTAINERS = (ast.List, ast.Dict, ast.Set, ast.ListComp, ast.DictComp, ast.SetComp)
_CONTAINER_CALLS = frozenset({"list", "dict", "set", "deque", "defaultdict", "OrderedDict"})


def _container(value: ast.expr) -> bool:
    """A value whose truth may change after construction (a container filled later)."""
    if value.__class__ in _CONTAINERS:
        return True
    func = value.func if value.__class__ is ast.Call else None
    name = func.id if func.__class__ is ast.Name else func.attr if func.__class__ is ast.Attribute else None
    return name in _CONTAINER_CALLS


def _is_self_attr(node: ast.AST, attr: str) -> bool:
    return node.__class__ is ast.Attribute and node.attr == attr and node.value.__class__ is ast.Name \
        and node.value.id == "self"


def _written(attr: str, builder) -> bool:
    """Whether the file may write ``<obj>.<attr>`` (graph ``_attr_written``, through the builder)."""
    from .graph import _attr_written  # (graph imports this module)
    text = builder.text if builder.text is not None else "\n".join(builder.lines)
    return _attr_written(text, attr)


def init_settings(builder) -> dict:
    """Each ``__init__`` statement that sits in a branch of a setting's ``if`` -> the
    ``(SETTING + text, True, taken)`` tests around it (the shape of ``key_branches``'
    ``(param, key, taken)``); empty when no setting's branch assigns an attribute of self."""
    init = builder.cls.methods.get("__init__")
    found: dict = {}
    if init is None or not init.body:
        return found
    todo = [(init.body, ())]  # (a stack, not a recursive closure: test_engine_gc)
    while todo:
        body, tests = todo.pop()
        for stmt in body:
            if stmt.__class__ is ast.If:
                text = setting_text(stmt.test, builder, True) if _binds_self(stmt) else None
                if text is None:
                    todo.append((stmt.body, tests))
                    todo.append((stmt.orelse, tests))
                else:
                    todo.append((stmt.body, tests + ((SETTING + text, True, True),)))
                    todo.append((stmt.orelse, tests + ((SETTING + text, True, False),)))
            elif tests:
                found[span(stmt)] = tests
    return found


def _binds_self(stmt: ast.If) -> bool:
    """Whether a branch of the ``if`` (at any depth of ``if``s) assigns an attribute of self."""
    todo = [*stmt.body, *stmt.orelse]
    while todo:
        node = todo.pop()
        if node.__class__ is ast.If:
            todo.extend(node.body)
            todo.extend(node.orelse)
        elif node.__class__ is ast.Assign:
            for t in node.targets:  # (a loop, not any() over a generator: cProfile counts calls)
                if t.__class__ is ast.Attribute and t.value.__class__ is ast.Name and t.value.id == "self":
                    return True
    return False


def _lead_word(test: ast.expr) -> str | None:
    """The name a test's first operand ends in (``mode`` of ``self.mode == "exact"`` and of
    ``mode == "exact"``, ``gated`` of ``not self.config.gated``): the gate's word."""
    while True:
        kind = test.__class__
        if kind is ast.UnaryOp:
            test = test.operand
        elif kind is ast.Compare:
            test = test.left
        elif kind is ast.BoolOp:
            test = test.values[0]
        elif kind is ast.Attribute:
            return test.attr
        elif kind is ast.Name:
            return test.id
        else:
            return None


def _gate_words(init: ast.FunctionDef | None) -> frozenset:
    """The lead words of ``__init__``'s ``if`` tests (within ``if``s) a branch of which assigns
    an attribute of self: a ``forward`` test with another lead word is no setting here, with
    nothing more read (once per class: ``cls.setting_gates``)."""
    words = set()
    bodies = [init.body] if init is not None else []
    for body in bodies:  # (a list read while it grows: the bodies of ifs within ifs)
        for stmt in body:
            if stmt.__class__ is ast.If:
                bodies.append(stmt.body)
                bodies.append(stmt.orelse)
                if _binds_self(stmt):
                    word = _lead_word(stmt.test)
                    if word is not None:
                        words.add(word)
    return frozenset(words) if words else NO_GATES


NO_GATES: frozenset = frozenset()  # a class none of whose __init__ settings binds a layer


def forward_setting(test: ast.expr, builder) -> tuple[str, bool] | None:
    """The key of a ``forward`` test that is a setting some ``__init__`` branch binds a layer
    under, and the truth the test's true arm gives it (False under ``not``); None for any other
    test (the class's ``__init__`` settings are read once: ``cls.setting_branches``)."""
    cls = builder.cls
    gates = cls.setting_gates
    if gates is None:
        gates = cls.setting_gates = _gate_words(cls.methods.get("__init__"))
    if not gates or _lead_word(test) not in gates:
        return None
    branches = cls.setting_branches
    if branches is None:
        branches = cls.setting_branches = init_settings(builder)
    if not branches:
        return None
    truth = True
    while test.__class__ is ast.UnaryOp and test.op.__class__ is ast.Not:
        test, truth = test.operand, not truth
    text = setting_text(test, builder, False)
    if text is None:
        return None
    key = SETTING + text
    for tests in branches.values():
        for param, _, _ in tests:
            if param == key:
                return key, truth
    return None
