"""A method chosen by a setting fixed at construction: ``fn = getattr(self, self.mode)``
then ``fn(a, b)`` (or ``getattr(self, self.mode)(a, b)``), ``self.mode`` an ``__init__``
parameter.  The call runs the class's method the setting's value names, so the flow graph
reads it as the branches ``if self.mode == "<value>": <that method>(a, b)`` over the values
the file lets the setting take (see :func:`setting_values`), each helper inlined as a direct
call is.  Without those values (a setting the file cannot decide) nothing is read.
Only files whose text holds ``getattr(self, self.`` ask (graph.FlowBuilder gates on it)."""
from __future__ import annotations

import ast
import re

from .treewalk import ast_walk

GATE = "getattr(self, self."
_DISPATCH = re.compile(r"getattr\(self, self\.(\w+)\)")


def dispatched_attr(expr: ast.expr) -> str | None:
    """``<attr>`` for ``getattr(self, self.<attr>)`` (two arguments, no default); None otherwise."""
    if expr.__class__ is not ast.Call or expr.func.__class__ is not ast.Name or expr.func.id != "getattr" \
            or len(expr.args) != 2 or expr.keywords:
        return None
    owner, key = expr.args
    if owner.__class__ is not ast.Name or owner.id != "self" or key.__class__ is not ast.Attribute \
            or key.value.__class__ is not ast.Name or key.value.id != "self":
        return None
    return key.attr


def local_dispatches(definition: ast.AST) -> dict:
    """name -> ``<attr>`` for each local ``definition`` binds exactly once, to
    ``getattr(self, self.<attr>)`` (one walk of the function; the flow builder keeps it)."""
    found, binds = {}, {}
    for node in ast_walk(definition):
        if node.__class__ is ast.Name and node.ctx.__class__ is not ast.Load:
            binds[node.id] = binds.get(node.id, 0) + 1
        elif node.__class__ is ast.Assign and len(node.targets) == 1 and node.targets[0].__class__ is ast.Name:
            attr = dispatched_attr(node.value)
            if attr is not None:
                found[node.targets[0].id] = attr
    return {name: attr for name, attr in found.items() if binds.get(name) == 1}


def _init_param(cls_node: ast.ClassDef, methods: dict, attr: str):
    """(init, parameter) when ``__init__`` binds ``self.<attr>`` once, at its top level, to one of
    its parameters, and no method binds it elsewhere; None otherwise.  (The top-level binding is
    looked for first: most attributes a ``getattr`` names are no parameter, and cost no walk.)"""
    init = methods.get("__init__")
    if init is None:
        return None
    params = {a.arg for a in init.args.args + init.args.kwonlyargs}
    bound = None
    for stmt in init.body:
        if stmt.__class__ is ast.Assign and len(stmt.targets) == 1:
            target, value = stmt.targets[0], stmt.value
            if target.__class__ is ast.Attribute and target.attr == attr and target.value.__class__ is ast.Name \
                    and target.value.id == "self":
                if bound is not None or value.__class__ is not ast.Name or value.id not in params:
                    return None
                bound = (target, value.id)
    if bound is None:
        return None
    for func in methods.values():
        for node in ast_walk(func):
            if node.__class__ is ast.Attribute and node.attr == attr and node.ctx.__class__ is not ast.Load \
                    and node is not bound[0] and node.value.__class__ is ast.Name and node.value.id == "self":
                return None
    return init, bound[1]


def _strings(expr: ast.expr) -> list | None:
    """The strings of a list/tuple/set display of string literals; None otherwise."""
    if expr.__class__ not in (ast.List, ast.Tuple, ast.Set) or not expr.elts:
        return None
    found = []
    for e in expr.elts:
        if e.__class__ is not ast.Constant or not isinstance(e.value, str):
            return None
        found.append(e.value)
    return found


def _default(init: ast.FunctionDef, param: str):
    """The parameter's default expression, or None when it has none."""
    args = init.args
    positional = args.posonlyargs + args.args
    for arg, default in zip(positional[len(positional) - len(args.defaults):], args.defaults):
        if arg.arg == param:
            return default
    for arg, default in zip(args.kwonlyargs, args.kw_defaults):
        if arg.arg == param:
            return default
    return None


def _passed(tree: ast.AST, class_names: set, param: str) -> list | None:
    """The string literals the file's constructions of the class (or a same-file subclass) pass
    as ``param=``; [] when none passes it; None when one passes something else or spreads
    ``**kwargs`` into it (the value is then not the file's to decide)."""
    found = []
    for node in ast_walk(tree):
        if node.__class__ is ast.Call and node.func.__class__ is ast.Name and node.func.id in class_names:
            for kw in node.keywords:
                if kw.arg == param:
                    if kw.value.__class__ is not ast.Constant or not isinstance(kw.value.value, str):
                        return None
                    found.append(kw.value.value)
                elif kw.arg is None:
                    return None
    return found


def setting_values(tree: ast.AST, cls_node: ast.ClassDef, methods: dict, attr: str,
                   class_names: set) -> tuple | None:
    """The string values ``self.<attr>`` may hold, in order: what the file's constructions pass
    for its ``__init__`` parameter when any passes it (all string literals), else the values an
    ``assert <param> in [...]`` in ``__init__`` allows, else the parameter's string default.
    None when the file cannot decide them (another binding, a non-literal passed, no default)."""
    found = _init_param(cls_node, methods, attr)
    if found is None:
        return None
    init, param = found
    passed = _passed(tree, class_names, param)
    if passed is None:
        return None
    if passed:
        return tuple(dict.fromkeys(passed))
    for stmt in init.body:
        if stmt.__class__ is ast.Assert and stmt.test.__class__ is ast.Compare and len(stmt.test.ops) == 1 \
                and stmt.test.ops[0].__class__ is ast.In and stmt.test.left.__class__ is ast.Name \
                and stmt.test.left.id == param:
            allowed = _strings(stmt.test.comparators[0])
            if allowed is not None:
                return tuple(dict.fromkeys(allowed))
    default = _default(init, param)
    if default is not None and default.__class__ is ast.Constant and isinstance(default.value, str):
        return (default.value,)
    return None


def dispatch_branches(targets: list, call: ast.Call, attr: str, values: tuple, methods: dict):
    """``if self.<attr> == "<v1>": <targets> = self.<v1>(args) elif ... else: <targets> =
    <call>`` for the values naming a method of the class (a value naming none would raise at
    run time: not a path), located at the call; the last ``else`` keeps the call as written (a
    value the file does not decide, passed from elsewhere: an unknown callee), so that every
    method's path is guarded by its own test.  Returns (the ``if`` statement, {id(test): its
    (test, text)}) -- the tests are not in the source, so their text is written out -- or None when no
    value names a method."""
    chosen = [v for v in values if v in methods and v != "__init__" and v.isidentifier()
              and not methods[v].decorator_list]
    if not chosen:
        return None

    def located(node):
        return ast.copy_location(node, call)

    def assign(value):
        return located(ast.Assign(targets=targets, value=value, lineno=call.lineno))

    def self_attr(name):
        return located(ast.Attribute(value=located(ast.Name(id="self", ctx=ast.Load())), attr=name,
                                     ctx=ast.Load()))

    orelse = [assign(call)]
    texts = {}
    for method in reversed(chosen):
        body = [assign(located(ast.Call(func=self_attr(method), args=call.args, keywords=call.keywords)))]
        test = located(ast.Compare(left=self_attr(attr), ops=[ast.Eq()],
                                   comparators=[located(ast.Constant(value=method))]))
        texts[id(test)] = (test, f"self.{attr} == {method!r}")  # (the node kept: its id stays its own)
        orelse = [located(ast.If(test=test, body=body, orelse=orelse))]
    return orelse[0], texts


def class_setting_values(cls, names, attr: str) -> tuple | None:
    """:func:`setting_values` for ``self.<attr>`` of ``cls`` (bindings.ClassInfo) in the module
    ``names`` (names.ModuleNames) describes: its constructions are searched in the module's
    classes and functions, of the class and of the file's classes deriving from it."""
    derived = {name for name, node in names.classes.items()
               if any(b.__class__ is ast.Name and b.id == cls.name for b in node.bases)}
    scope = ast.Module(body=list(names.classes.values()) + list(names.functions.values()), type_ignores=[])
    return setting_values(scope, cls.node, cls.methods, attr, {cls.name} | derived)


def class_dispatches(cls, names, text: str) -> dict:
    """``<attr>`` -> its decided values (:func:`class_setting_values`) for each
    ``getattr(self, self.<attr>)`` the module's text writes, where ``cls`` decides them: read
    once per class (the flow builder's gate and the word prefilter's reach)."""
    found = {}
    for attr in dict.fromkeys(_DISPATCH.findall(text)):
        values = class_setting_values(cls, names, attr)
        if values is not None:
            found[attr] = values
    return found


def dispatched_methods(dispatches: dict, methods: dict, own) -> list:
    """The methods of the class a function mentioning ``self.<attr>`` (a key of
    :func:`class_dispatches`) may call through the dispatch: the words it reaches."""
    return [v for attr, values in dispatches.items() if attr in own for v in values if v in methods]
