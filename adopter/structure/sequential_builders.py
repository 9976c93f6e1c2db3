"""Same-file functions that build an ``nn.Sequential`` from the layers they are handed.

Research code often wraps ``nn.Sequential`` in a helper that takes its layers as ``*modules``,
drops the ``None`` entries (so a caller can write ``RMSNorm(d) if norm else None``), and returns
``nn.Identity()`` for no layer, the one layer itself, or ``nn.Sequential(*modules)``::

    def Sequential(*modules):
        modules = list(filter(exists, modules))   # exists(v): v is not None
        if len(modules) == 0:
            return nn.Identity()
        elif len(modules) == 1:
            return modules[0]
        return nn.Sequential(*modules)

Each of those returns computes what running the kept layers one after the other computes, so a
call of such a function is a Sequential of its (non-None) arguments.  The function is recognised
by what its body does (the statements below, nothing else), never by its name.
"""

from __future__ import annotations

import ast

from .class_syntax import is_name as _is_name
from .treewalk import ast_walk

SEQUENTIAL = "torch.nn.Sequential"
IDENTITY = "torch.nn.Identity"
BUILTINS = ("list", "filter", "len")  # the builtins a builder's body is read through


def rebound_builtins(tree: ast.Module | None, names) -> frozenset:
    """Which of :data:`BUILTINS` the file binds to something else, so that a call of it is not
    the builtin's (``from itertools import filterfalse as filter``, a ``def len(...)``, a
    module-level ``list = ...``): every one where a ``from m import *`` may bring any name in.
    Read once per file where a builder is asked about (few files hand ``*layers`` on)."""
    if names.stars:
        return frozenset(BUILTINS)
    bound = {n for n in BUILTINS if n in names.imports or n in names.functions or n in names.classes
             or n in names.constants or n in names.partials or n in names.choices or n in names.lambdas}
    pending = list(tree.body) if tree is not None else []
    while pending:  # module-level statements, those in module-level if/try/with/for blocks too
        stmt = pending.pop()
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            continue
        for node in ast_walk(stmt) if not isinstance(stmt, (ast.If, ast.Try, ast.With, ast.For, ast.While)) else ():
            if node.__class__ is ast.Name and node.ctx.__class__ is ast.Store and node.id in BUILTINS:
                bound.add(node.id)
        for field in ("body", "orelse", "finalbody", "handlers"):
            pending += [b for b in getattr(stmt, field, ()) if isinstance(b, ast.stmt)]
        for handler in getattr(stmt, "handlers", ()):
            pending += handler.body
        if isinstance(stmt, (ast.For, ast.With)):
            targets = [stmt.target] if isinstance(stmt, ast.For) else [i.optional_vars for i in stmt.items]
            bound |= {n.id for t in targets if t is not None for n in ast_walk(t)
                      if n.__class__ is ast.Name and n.id in BUILTINS}
    return frozenset(bound)


def builder_shape(func: ast.FunctionDef, resolve, functions: dict, rebound: frozenset = frozenset()) -> bool | None:
    """None unless ``func`` is such a builder; else whether it drops ``None`` layers.

    ``resolve`` maps an expression to its FQN (``ModuleNames.resolve``); ``functions`` holds the
    file's functions (a ``filter`` predicate named there must be ``return v is not None``);
    ``rebound``: the builtins the file binds to something else (:func:`rebound_builtins`), whose
    calls are not the builtins'."""
    args = func.args
    if (args.posonlyargs or args.args or args.kwonlyargs or args.kwarg is not None or args.vararg is None
            or func.decorator_list):
        return None
    listed = args.vararg.arg
    body = func.body
    if body and body[0].__class__ is ast.Expr and isinstance(body[0].value, ast.Constant):
        body = body[1:]
    if not body:
        return None
    last = body[-1]
    if not (last.__class__ is ast.Return and _spreads(last.value, listed, resolve)):
        return None
    filtered = False
    counts: set = set()  # names bound to len(<listed>)
    tested = False  # (the filter must come before the list is counted or tested)
    for stmt in body[:-1]:
        if stmt.__class__ is ast.Assign and len(stmt.targets) == 1 and stmt.targets[0].__class__ is ast.Name:
            target = stmt.targets[0].id
            if (target == listed and not filtered and not counts and not tested
                    and _drops_none(stmt.value, listed, functions, rebound)):
                filtered = True
                continue
            if target != listed and _is_len(stmt.value, listed, rebound):
                counts.add(target)
                continue
            return None
        if stmt.__class__ is ast.If and _small_returns(stmt, listed, counts, resolve, rebound):
            tested = True
            continue
        return None
    return filtered


def _spreads(expr, listed: str, resolve) -> bool:
    """``nn.Sequential(*<listed>)``."""
    return (expr.__class__ is ast.Call and len(expr.args) == 1 and not expr.keywords
            and expr.args[0].__class__ is ast.Starred and _is_name(expr.args[0].value, listed)
            and resolve(expr.func) == SEQUENTIAL)


def _drops_none(expr, listed: str, functions: dict, rebound: frozenset = frozenset()) -> bool:
    """``list(filter(p, <listed>))`` with ``p`` ``v is not None`` (a lambda or a same-file
    function), or ``[m for m in <listed> if m is not None]``."""
    if expr.__class__ is ast.ListComp:
        if len(expr.generators) != 1:
            return False
        gen = expr.generators[0]
        return (not gen.is_async and gen.target.__class__ is ast.Name and _is_name(expr.elt, gen.target.id)
                and _is_name(gen.iter, listed) and len(gen.ifs) == 1 and _not_none(gen.ifs[0], gen.target.id))
    if not (expr.__class__ is ast.Call and _is_name(expr.func, "list") and "list" not in rebound and len(expr.args) == 1 and not expr.keywords):
        return False
    inner = expr.args[0]
    if not (inner.__class__ is ast.Call and _is_name(inner.func, "filter") and "filter" not in rebound and len(inner.args) == 2
            and not inner.keywords and _is_name(inner.args[1], listed)):
        return False
    pred = inner.args[0]
    if pred.__class__ is ast.Lambda:
        params = pred.args.args
        return (len(params) == 1 and not pred.args.vararg and not pred.args.kwarg and not pred.args.kwonlyargs
                and not pred.args.posonlyargs and _not_none(pred.body, params[0].arg))
    if pred.__class__ is ast.Name and pred.id in functions:
        fdef = functions[pred.id]
        a = fdef.args
        body = fdef.body
        if body and body[0].__class__ is ast.Expr and isinstance(body[0].value, ast.Constant):
            body = body[1:]
        return (len(a.args) == 1 and not a.posonlyargs and not a.vararg and not a.kwonlyargs and not a.kwarg
                and not fdef.decorator_list and len(body) == 1 and body[0].__class__ is ast.Return
                and body[0].value is not None and _not_none(body[0].value, a.args[0].arg))
    return False


def _not_none(expr, name: str) -> bool:
    """``<name> is not None``."""
    return (expr.__class__ is ast.Compare and _is_name(expr.left, name) and len(expr.ops) == 1
            and expr.ops[0].__class__ is ast.IsNot and len(expr.comparators) == 1
            and expr.comparators[0].__class__ is ast.Constant and expr.comparators[0].value is None)


def _is_len(expr, listed: str, rebound: frozenset = frozenset()) -> bool:
    return (expr.__class__ is ast.Call and _is_name(expr.func, "len") and "len" not in rebound and len(expr.args) == 1
            and not expr.keywords and _is_name(expr.args[0], listed))


def _small_returns(stmt: ast.If, listed: str, counts: set, resolve, rebound: frozenset = frozenset()) -> bool:
    """An ``if``/``elif`` chain whose every branch returns, for no layer, ``nn.Identity()``
    and, for one layer, that layer (``<listed>[0]``), and that has no ``else``."""
    while True:
        size = _size_tested(stmt.test, listed, counts, rebound)
        if size is None or len(stmt.body) != 1 or stmt.body[0].__class__ is not ast.Return:
            return False
        value = stmt.body[0].value
        if size == 0:
            if not (value.__class__ is ast.Call and not value.args and not value.keywords
                    and resolve(value.func) == IDENTITY):
                return False
        elif not (value.__class__ is ast.Subscript and _is_name(value.value, listed)
                  and value.slice.__class__ is ast.Constant and value.slice.value == 0
                  and value.slice.value is not False):
            return False
        if not stmt.orelse:
            return True
        if len(stmt.orelse) != 1 or stmt.orelse[0].__class__ is not ast.If:
            return False
        stmt = stmt.orelse[0]


def _size_tested(test, listed: str, counts: set, rebound: frozenset = frozenset()) -> int | None:
    """0 or 1 for a test that holds exactly when the list has that many layers
    (``len(v) == 1``, ``n == 0`` with ``n = len(v)``, ``not v``); None otherwise."""
    if test.__class__ is ast.UnaryOp and test.op.__class__ is ast.Not and _is_name(test.operand, listed):
        return 0
    if not (test.__class__ is ast.Compare and len(test.ops) == 1 and test.ops[0].__class__ is ast.Eq):
        return None
    left, right = test.left, test.comparators[0]
    if left.__class__ is ast.Constant:
        left, right = right, left
    if not (right.__class__ is ast.Constant and right.value.__class__ is int and right.value in (0, 1)):
        return None
    if _is_len(left, listed, rebound) or (left.__class__ is ast.Name and left.id in counts):
        return right.value
    return None

