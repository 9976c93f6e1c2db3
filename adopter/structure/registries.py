"""Registry objects: builders stored under string keys, the chosen one called.

A file holds an instance of a class that another module of its package defines
(``self.acts = factory.Registry()``), fills it with builders under literal keys
(``self.acts.register("gelu", lambda **kw: nn.GELU(**kw))``) and builds a layer by a key known
only at run time (``self.act = self.acts.create(activation)``).  What such a call builds is
one of the builders the file registered, when the class does nothing else with them:

- its ``__init__`` only binds attributes of ``self`` to empty containers or constants, one of
  them the dict ``self.D = {}`` (no builder is registered there);
- a *register* method ``(self, key, builder)`` is the one statement ``self.D[key] = builder``;
- a *create* method ``(self, key[, **kwargs])`` returns ``self.D[key](**kwargs)`` (or
  ``self.D.get(key)``, bound to a name first and tested with ``if not b: raise ...``).

The class is read from its own source (siblings.Package.find: parsed, never imported), only
when the file calls a method on such an attribute with a builder registered in its text.  The
file's every mention of the attribute must be its one constructor (the same text wherever it
is bound), a register call with a literal key, or a create call: a method that replaces the
dict (``set_builders``), a registration under a computed key, the object handed elsewhere,
and nothing is known.  Mentions are found in the text, so registrations made in one class
are read for its subclasses in the file too (rl-games' network builders).
"""

from __future__ import annotations

import ast
import re

from .treewalk import ast_walk

_MENTION = r"\bself[ \t]*\.[ \t]*{}\b"


def registry_methods(cls: ast.ClassDef) -> tuple | None:
    """(register method names, create method names) of a registry class as the module
    docstring describes it, or None."""
    if any(not (isinstance(b, ast.Name) and b.id == "object") for b in cls.bases) or cls.keywords:
        return None
    methods = {}
    for item in cls.body:
        if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
            methods[item.name] = item
    init = methods.get("__init__")
    if init is None or init.decorator_list:
        return None
    dicts = set()
    for stmt in _statements(init):
        if not (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and _self_attr(stmt.targets[0])):
            return None
        value = stmt.value
        if isinstance(value, ast.Dict) and not value.keys:
            dicts.add(stmt.targets[0].attr)
        elif not (isinstance(value, ast.Constant) or isinstance(value, (ast.List, ast.Set, ast.Tuple))
                  and not value.elts):
            return None
    if not dicts:
        return None
    registers, creates = set(), set()
    for name, func in methods.items():
        if name == "__init__" or func.decorator_list or isinstance(func, ast.AsyncFunctionDef):
            continue
        if _register(func, dicts):
            registers.add(name)
        elif _create(func, dicts):
            creates.add(name)
    if not registers or not creates:
        return None
    return frozenset(registers), frozenset(creates)


def _statements(func) -> list:
    body = func.body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
            and isinstance(body[0].value.value, str):
        body = body[1:]
    return body


def _self_attr(node) -> bool:
    return isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "self"


def _plain_params(func, count: int, kwargs_ok: bool) -> list | None:
    args = func.args
    if args.posonlyargs or args.vararg or args.kwonlyargs or args.defaults or len(args.args) != count \
            or args.args[0].arg != "self" or (args.kwarg is not None and not kwargs_ok):
        return None
    return [a.arg for a in args.args]


def _register(func, dicts: set) -> bool:
    """``def r(self, key, builder): self.D[key] = builder``, D one of ``dicts``."""
    params = _plain_params(func, 3, False)
    body = _statements(func)
    if params is None or len(body) != 1 or not isinstance(body[0], ast.Assign) or len(body[0].targets) != 1:
        return False
    target, value = body[0].targets[0], body[0].value
    return (isinstance(target, ast.Subscript) and _self_attr(target.value) and target.value.attr in dicts
            and isinstance(target.slice, ast.Name) and target.slice.id == params[1]
            and isinstance(value, ast.Name) and value.id == params[2])


def _looked_up(expr, dicts: set, key: str) -> bool:
    """``self.D[key]`` or ``self.D.get(key)``."""
    if isinstance(expr, ast.Subscript):
        return _self_attr(expr.value) and expr.value.attr in dicts and isinstance(expr.slice, ast.Name) \
            and expr.slice.id == key
    return (isinstance(expr, ast.Call) and isinstance(expr.func, ast.Attribute) and expr.func.attr == "get"
            and _self_attr(expr.func.value) and expr.func.value.attr in dicts and len(expr.args) == 1
            and not expr.keywords and isinstance(expr.args[0], ast.Name) and expr.args[0].id == key)


def _create(func, dicts: set) -> bool:
    """``def c(self, key, **kw)`` returning the looked-up builder called with ``**kw`` (or
    nothing), directly or through one name tested only by raising."""
    params = _plain_params(func, 2, True)
    if params is None:
        return False
    kwarg = func.args.kwarg.arg if func.args.kwarg is not None else None
    body = _statements(func)
    if not body or not isinstance(body[-1], ast.Return) or not isinstance(body[-1].value, ast.Call):
        return False
    called = body[-1].value
    if called.args or any(k.arg is not None or not (isinstance(k.value, ast.Name) and k.value.id == kwarg)
                          for k in called.keywords):
        return False
    if len(body) == 1:
        return _looked_up(called.func, dicts, params[1])
    first = body[0]
    if not (isinstance(first, ast.Assign) and len(first.targets) == 1 and isinstance(first.targets[0], ast.Name)
            and _looked_up(first.value, dicts, params[1])):
        return False
    bound = first.targets[0].id
    if bound in params or not (isinstance(called.func, ast.Name) and called.func.id == bound):
        return False
    for stmt in body[1:-1]:  # if not b: raise ... / if b is None: raise ...
        if not (isinstance(stmt, ast.If) and not stmt.orelse and all(isinstance(s, ast.Raise) for s in stmt.body)
                and bound in {n.id for n in ast_walk(stmt.test) if isinstance(n, ast.Name)}):
            return False
    return True


def file_registry(text: str, attr: str) -> tuple | None:
    """(the constructor text, [(method, key, builder expression)] of each call ``self.<attr>.m(
    "key", builder)``, {method: count} of every other method called) for the mentions of
    ``self.<attr>`` in the file's text, or None when one is anything else (read elsewhere,
    bound to another value, a registration that does not parse alone)."""
    constructor = None
    registered = []
    called: dict = {}
    for found in re.finditer(_MENTION.format(re.escape(attr)), text):
        rest = text[found.end():found.end() + 200]
        stripped = rest.lstrip(" \t")
        if stripped.startswith("=") and not stripped.startswith("=="):
            end = text.find("\n", found.end())
            value = text[found.end():end if end >= 0 else len(text)].lstrip(" \t")[1:].strip()
            if constructor is not None and value != constructor:
                return None
            constructor = value
            continue
        method = re.match(r"[ \t]*\.[ \t]*([A-Za-z_]\w*)[ \t]*\(", rest)
        if method is None:
            return None
        name = method.group(1)
        start = text.rfind("\n", 0, found.start()) + 1
        head = text[start:found.start()]
        if head.strip() == "" and re.match(r"[ \t]*(['\"])", rest[method.end():]):
            # a statement of its own with a literal first argument: a registration
            end = text.find("\n", found.end())
            piece = text[found.start():end if end >= 0 else len(text)]
            try:
                body = ast.parse(piece).body
            except (SyntaxError, ValueError, RecursionError, MemoryError):
                return None
            call = body[0].value if len(body) == 1 and isinstance(body[0], ast.Expr) else None
            if not (isinstance(call, ast.Call) and len(call.args) == 2 and not call.keywords
                    and isinstance(call.args[0], ast.Constant) and isinstance(call.args[0].value, str)):
                return None
            registered.append((name, call.args[0].value, call.args[1]))
            continue
        called[name] = called.get(name, 0) + 1
    if constructor is None or not registered:
        return None
    return constructor, registered, called
