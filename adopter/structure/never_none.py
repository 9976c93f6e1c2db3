"""Is the value a call hands an inlined helper's parameter never None?

earthformer's ``masked_softmax(att_score, mask)`` tests ``if mask is not None:`` and re-masks
the probabilities on that arm (``softmax(...) * mask``); its ``else`` arm is a plain softmax.
Its callers hand it ``F.pad(attn_mask, ...)``, or a name every binding of which is the result of
a same-file function that always returns a tensor expression: at those calls the test goes one
way, and the plain arm is code that call never runs.  Read both ways, the plain arm matched
attention at every call and the finding claimed calls whose probabilities are always re-masked.

:func:`none_test` reads the test's shape (one parameter compared with ``None``);
:func:`never_none` decides an argument expression, exactly and conservatively: only forms whose
value cannot be None (an operator's result, a literal, a call into ``torch.nn.functional`` or of
a torch function that builds a tensor, a tensor method of such a value, a same-file function
whose every return is such a value and that cannot fall off its end, a local name every binding
of which is such a value).  Anything else (a parameter of the caller, an attribute, a
subscript, a name also bound by unpacking or a loop) is not known, and the test is read both
ways as before."""
from __future__ import annotations

import ast

from .names import BINDERS, binds, bound_by
from .treewalk import ast_walk

# torch functions (besides torch.nn.functional's) that build a tensor from their arguments
_TENSOR_FUNCTIONS = frozenset({
    "torch.ones", "torch.zeros", "torch.ones_like", "torch.zeros_like", "torch.full", "torch.full_like",
    "torch.empty", "torch.empty_like", "torch.arange", "torch.tensor", "torch.as_tensor", "torch.tril",
    "torch.triu", "torch.roll", "torch.cat", "torch.concat", "torch.stack", "torch.logical_not",
    "torch.logical_and", "torch.logical_or", "torch.where", "torch.eye", "torch.rand", "torch.randn",
})
# Tensor methods that return a tensor computed from their receiver (a value, never None)
_TENSOR_METHODS = frozenset({
    "reshape", "view", "unsqueeze", "squeeze", "expand", "expand_as", "repeat", "permute", "transpose",
    "float", "bool", "half", "long", "int", "to", "type", "type_as", "contiguous", "clone", "detach",
    "flatten", "masked_fill", "logical_not", "eq", "ne", "roll",
})
_FUNCTION_DEFS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)


def none_test(test: ast.expr) -> tuple[str, bool] | None:
    """``(name, True)`` for ``name is not None``, ``(name, False)`` for ``name is None``."""
    if test.__class__ is not ast.Compare or len(test.ops) != 1 or test.left.__class__ is not ast.Name:
        return None
    right = test.comparators[0]
    if right.__class__ is not ast.Constant or right.value is not None:
        return None
    op = test.ops[0].__class__
    if op is ast.IsNot:
        return test.left.id, True
    if op is ast.Is:
        return test.left.id, False
    return None


def passed_argument(params: list, call: ast.Call, name: str) -> ast.expr | None:
    """The expression ``call`` hands parameter ``name`` (by position or keyword); None when it
    hands none or spreads arguments (``*args``/``**kwargs``: then any parameter may be passed)."""
    if any(a.__class__ is ast.Starred for a in call.args) or any(k.arg is None for k in call.keywords):
        return None
    for param, expr in zip(params, call.args):
        if param == name:
            return expr
    for keyword in call.keywords:
        if keyword.arg == name:
            return keyword.value
    return None


# the expressions whose value may be a tensor rather than None, read without looking further
_MAY_HOLD_VALUE = frozenset({ast.Call, ast.Compare, ast.BinOp, ast.UnaryOp, ast.IfExp, ast.Name})


def may_hold_value(expr) -> bool:
    """A quick test before :func:`never_none` walks a caller: is ``expr`` (the last plain
    binding of a name the flow builder recorded, or None when there is none) a form that may be
    never None?  None, a literal None, an attribute, a subscript, an ``or``, or a split the
    builder recorded as a tuple are not."""
    return expr.__class__ in _MAY_HOLD_VALUE or (expr.__class__ is ast.Constant and expr.value is not None)


def binds_in_body(func: ast.AST, name: str) -> bool:
    """Does ``func``'s body bind ``name`` by any form (an assignment, ``case ... as``, an import,
    a ``def``, ``except ... as``, a nested function's parameter: names.binds), so that a
    parameter of that name may hold another value there?"""
    return any(binds(stmt, name) for stmt in func.body)


def _shadows(func: ast.AST, name: str) -> bool:
    """Does ``func`` take or bind a local ``name`` (hiding the file's function of that name)?"""
    args = func.args
    every = args.posonlyargs + args.args + args.kwonlyargs + [a for a in (args.vararg, args.kwarg) if a]
    return any(a.arg == name for a in every) or binds_in_body(func, name)


def never_none(expr: ast.expr, func: ast.AST | None, resolve, functions: dict, depth: int = 3,
               active: frozenset = frozenset()) -> bool:
    """Is ``expr``, evaluated in ``func``, never None (see the module's docstring)?
    ``resolve`` maps a name or attribute to its imported FQN; ``functions`` the file's functions;
    ``depth`` bounds the names and functions followed; ``active``: the (function, name) pairs
    whose bindings are being decided -- a binding reading the name itself (``m = m.reshape(...)``)
    runs after another binding (a local read before any binding raises), so it holds a value
    when every other binding does."""
    if depth < 0:
        return False
    kind = expr.__class__
    if kind in (ast.Compare, ast.BinOp, ast.UnaryOp):
        return True
    if kind is ast.Constant:
        return expr.value is not None
    if kind is ast.IfExp:
        return never_none(expr.body, func, resolve, functions, depth, active) \
            and never_none(expr.orelse, func, resolve, functions, depth, active)
    if kind is ast.Name:
        if (id(func), expr.id) in active:
            return True
        return func is not None and _bound_never_none(expr.id, func, resolve, functions, depth - 1,
                                                      active | {(id(func), expr.id)})
    if kind is not ast.Call:
        return False
    target = expr.func
    if target.__class__ is ast.Name and target.id in functions and not (func is not None and _shadows(func, target.id)):
        return _returns_never_none(functions[target.id], resolve, functions, depth - 1)
    if target.__class__ is ast.Attribute and target.attr in _TENSOR_METHODS \
            and never_none(target.value, func, resolve, functions, depth, active):
        return True
    fqn = resolve(target) if target.__class__ in (ast.Name, ast.Attribute) else None
    return fqn is not None and (fqn.startswith("torch.nn.functional.") or fqn in _TENSOR_FUNCTIONS)


def _bound_never_none(name: str, func: ast.AST, resolve, functions: dict, depth: int, active: frozenset) -> bool:
    """Is every binding of local ``name`` in ``func`` a whole-target assignment of a never-None
    value (``x = ...``, ``x: T = ...``, ``(x := ...)``; ``x += ...`` is an operator's result), and
    ``name`` none of ``func``'s parameters, nor declared global or nonlocal?  A binding by
    unpacking, a loop, a ``with``, a comprehension, a ``del`` or any :data:`names.BINDERS` form
    (``case ... as``, an import, ``except ... as``, a nested ``def``'s parameter) is not read."""
    args = func.args
    if any(a.arg == name for a in args.posonlyargs + args.args + args.kwonlyargs) \
            or (args.vararg and args.vararg.arg == name) or (args.kwarg and args.kwarg.arg == name):
        return False
    values, whole, stores = [], set(), []
    for node in ast_walk(func):
        kind = node.__class__
        if kind is ast.Assign:
            for t in node.targets:
                if t.__class__ is ast.Name and t.id == name:
                    whole.add(id(t))
                    values.append(node.value)
        elif kind is ast.AnnAssign or kind is ast.NamedExpr or kind is ast.AugAssign:
            t = node.target
            if t.__class__ is ast.Name and t.id == name:
                if node.value is None:
                    return False  # (``x: T`` declares, binds nothing here)
                whole.add(id(t))
                if kind is not ast.AugAssign:
                    values.append(node.value)
        elif kind is ast.Name and node.id == name and node.ctx.__class__ is not ast.Load:
            stores.append(id(node))
        elif kind in BINDERS and node is not func and name in bound_by(node):
            return False  # (``case ... as m``, an import, ``except ... as m``, a def, global)
    if not values or any(s not in whole for s in stores):
        return False
    return all(never_none(v, func, resolve, functions, depth, active) for v in values)


def _returns_never_none(helper: ast.AST, resolve, functions: dict, depth: int) -> bool:
    """Does same-file function ``helper`` always return a never-None value: its body ends in a
    ``return`` (no falling off the end), every ``return`` of its own has such a value, and it
    does not ``yield``?"""
    if helper.__class__ not in (ast.FunctionDef, ast.AsyncFunctionDef) or not helper.body \
            or helper.body[-1].__class__ is not ast.Return:
        return False
    returns = []
    todo = list(helper.body)
    while todo:
        node = todo.pop()
        kind = node.__class__
        if kind in _FUNCTION_DEFS or kind is ast.ClassDef:
            continue  # (a nested function's returns are its own)
        if kind is ast.Yield or kind is ast.YieldFrom:
            return False
        if kind is ast.Return:
            if node.value is None:
                return False
            returns.append(node.value)
        todo.extend(ast.iter_child_nodes(node))
    return all(never_none(v, helper, resolve, functions, depth) for v in returns)
