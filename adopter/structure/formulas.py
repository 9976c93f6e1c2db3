"""Activations written out as formulas: a same-file function or module whose whole body is GELU.

Research code often spells GELU by hand instead of calling ``F.gelu``: BERT's and ESM's
``def gelu(x): return x * 0.5 * (1.0 + torch.erf(x / math.sqrt(2.0)))``, minGPT's ``NewGELU``
module ``0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 *
torch.pow(x, 3.0))))``.  Those compute exactly what ``F.gelu`` (``approximate="none"``) and
``F.gelu(approximate="tanh")`` compute, so a Linear before them is a bias-GELU site like one
before ``nn.GELU``.

The test reads the function's own code, never its name: one tensor parameter, a body of
assignments and one ``return``, every call an element-wise operation, and the constants that
fix the formula: ``erf`` of the input over ``sqrt(2)`` (or times ``1/sqrt(2)``) scaled by one
half, or ``tanh`` with the cubic coefficient 0.044715 and ``sqrt(2/pi)``.  QuickGELU
(``x * sigmoid(1.702 * x)``) is another function and is not taken.
"""

from __future__ import annotations

import ast
import copy
import math

from .treewalk import blocks, walk
from ..records import dataclass
from .names import ModuleNames, names_match, param_default
from .ops import CASTS, DTYPE_ALIASES, TENSOR_METADATA
from .treewalk import ast_walk
from .class_syntax import super_init

# Calls a GELU formula may make (last component of the resolved name, or a method name).
_ELEMENTWISE = {"erf", "tanh", "pow", "sqrt", "mul", "add", "float", "type_as", "to"}
_SQRT2 = (math.sqrt(2.0), 1.0 / math.sqrt(2.0))
_SQRT_2_PI = math.sqrt(2.0 / math.pi)


def gelu_formula(func: ast.FunctionDef | ast.AsyncFunctionDef, names: ModuleNames,
                 method: bool = False) -> str | None:
    """``"none"`` (erf GELU) or ``"tanh"`` (tanh approximation) when ``func`` computes GELU of
    its one tensor argument (``method``: after ``self``), else None."""
    params = [a.arg for a in func.args.args][1 if method else 0:]
    if (len(params) != 1 or func.args.vararg or func.args.kwarg or func.args.kwonlyargs
            or func.args.posonlyargs):
        return None
    body = _code(func.body)
    if not body or not isinstance(body[-1], ast.Return) or body[-1].value is None:
        return None
    if not all(isinstance(s, ast.Assign) and len(s.targets) == 1 and isinstance(s.targets[0], ast.Name)
               for s in body[:-1]):
        return None
    calls: set[str] = set()
    numbers: list[float] = []
    for stmt in body:
        for node in ast_walk(stmt):
            if isinstance(node, ast.Call):
                if _constant_tensor(node, names) is not None:
                    continue  # torch.tensor(2.0 / torch.pi): a number held in a 0-d tensor
                name = _call_name(node, names)
                if name is None or name not in _ELEMENTWISE:
                    return None
                calls.add(name)
            elif isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) \
                    and not isinstance(node.value, bool):
                numbers.append(float(node.value))
            elif isinstance(node, (ast.Lambda, ast.IfExp, ast.Subscript, ast.Compare)):
                return None
    values = set(numbers) | _derived(body, names)
    half = 0.5 in numbers or any(isinstance(n, ast.BinOp) and isinstance(n.op, ast.Div) and _number(n.right, names) == 2.0
                                 for s in body for n in ast_walk(s))
    if "erf" in calls and half and any(_near(v, s) for v in values for s in _SQRT2):
        return "none" if _scales_input(body, params[0], names) else None
    if "tanh" in calls and half and any(_near(v, 0.044715) for v in values) and (
            any(_near(v, _SQRT_2_PI) for v in values) or ("sqrt" in calls and any(_near(v, math.pi) for v in values))):
        return "tanh" if _scales_input(body, params[0], names) else None
    return None


_MAX_FORMULA_NODES = 400  # a GELU written out is a few dozen nodes; larger is no such formula


def _scales_input(body: list, x: str, names: ModuleNames) -> bool:
    """Does the formula read its input ``x`` outside the ``erf``/``tanh`` call too?  GELU is
    ``x * Phi(x)``: the input times its normal CDF.  The CDF alone of a shifted, scaled input
    (mega's Laplace attention function, ``0.5 * (1 + erf((x - mu) / (std * sqrt(2))))``) has
    the same calls and constants but reads ``x`` only inside ``erf``.  The assignments are
    substituted into the returned expression first (``cdf = 0.5 * (1 + erf(x / sqrt(2)))``,
    ``return x * cdf``)."""
    env: dict = {}

    def substituted(expr):
        expr = copy.deepcopy(expr)

        class _Sub(ast.NodeTransformer):
            def visit_Name(self, node):
                return copy.deepcopy(env[node.id]) if node.id in env else node

        return _Sub().visit(expr)

    for stmt in body[:-1]:
        env[stmt.targets[0].id] = substituted(stmt.value)
    value = substituted(body[-1].value)
    if sum(1 for _ in ast_walk(value)) > _MAX_FORMULA_NODES:
        return False
    todo = [value]
    while todo:
        node = todo.pop()
        if isinstance(node, ast.Call) and _call_name(node, names) in ("erf", "tanh"):
            continue  # its argument (and a method's receiver) is the CDF's
        if isinstance(node, ast.Name) and node.id == x:
            return True
        todo.extend(ast.iter_child_nodes(node))
    return False


def gelu_function(func: ast.FunctionDef | ast.AsyncFunctionDef, names: ModuleNames) -> str | None:
    """``"none"`` or ``"tanh"`` when a function computes one GELU variant of its one tensor
    argument: written out (:func:`gelu_formula`) or as ``F.gelu`` with one ``approximate``
    setting on every path (:func:`gelu_on_every_path`, a variant chosen at run time excluded);
    None otherwise."""
    formula = gelu_formula(func, names)
    if formula is None:
        formula = gelu_on_every_path(func, names)
    return formula if formula in ("none", "tanh") else None


def gelu_module(cls: ast.ClassDef, names: ModuleNames) -> str | None:
    """The GELU variant a same-file module class computes, when its ``forward`` is a GELU
    formula or returns a GELU function of its input, and its ``__init__`` (if any) builds
    nothing: it may record its settings (Hunyuan3D's ``GELU(approximate='tanh')`` storing
    ``self.approximate`` for ``F.gelu(x.contiguous(), approximate=self.approximate)``), which
    builds no layer and holds no tensor; the variant is then the one its settings pick at run
    time ("any")."""
    forward = _stateless_forward(cls)
    if forward is None:
        forward = _settings_gelu_forward(cls)
        return None if forward is None else gelu_on_every_path(forward, names, method=True)
    formula = gelu_formula(forward, names, method=True)
    # ... or ``return F.gelu(x)`` (one ``approximate`` setting, or one chosen at run time:
    # "any") or transformers' ``gelu(x)`` on every path (LXMERT's ``GeLU`` module in a head's
    # Sequential)
    return formula if formula is not None else gelu_on_every_path(forward, names, method=True)


def silu_module(cls: ast.ClassDef, names: ModuleNames) -> str | None:
    """When a module class's ``forward`` is ``F.silu`` of its input and its ``__init__`` (if
    any) builds nothing: ``"cast"`` when the SiLU runs on a dtype conversion of the input and
    the result is converted (back) (diffusers' ``FP32SiLU``: ``F.silu(x.float()).to(x.dtype)``),
    ``"exact"`` when it is ``F.silu(x)`` itself; None otherwise (``inplace=True`` included)."""
    forward = _stateless_forward(cls)
    if forward is None or len(forward.args.args) != 2 or forward.args.vararg or forward.args.kwarg:
        return None
    body = _code(forward.body)
    if len(body) != 1 or not isinstance(body[0], ast.Return) or body[0].value is None:
        return None
    x = forward.args.args[1].arg
    outer = body[0].value
    call = strip_casts(outer)
    if not (isinstance(call, ast.Call) and names.resolve(call.func) == "torch.nn.functional.silu"
            and len(call.args) == 1 and all(k.arg == "inplace" and isinstance(k.value, ast.Constant)
                                            and k.value.value is False for k in call.keywords)):
        return None
    arg = call.args[0]
    if not (isinstance(strip_casts(arg), ast.Name) and strip_casts(arg).id == x):
        return None
    return "exact" if arg is strip_casts(arg) and outer is call else "cast"


def untransposed(expr: ast.expr, names: ModuleNames) -> ast.expr | None:
    """The matrix ``expr`` transposes (``w.T``, ``w.mT``, ``w.t()``, ``w.transpose(0, 1)`` or
    ``(-2, -1)`` in any order, ``torch.transpose(w, 0, 1)``; a 2-D weight has no other swap),
    dtype casts stripped; None when ``expr`` is no such transpose."""
    if isinstance(expr, ast.Attribute) and expr.attr in ("T", "mT"):
        inner = expr.value
    elif (isinstance(expr, ast.Call) and isinstance(expr.func, ast.Attribute) and not expr.keywords
          and ((expr.func.attr == "t" and not expr.args) or (expr.func.attr == "transpose" and _swaps_2d(expr.args)))):
        inner = expr.func.value
    elif (isinstance(expr, ast.Call) and names.resolve(expr.func) == "torch.transpose"
          and not expr.keywords and len(expr.args) == 3 and _swaps_2d(expr.args[1:])):
        inner = expr.args[0]
    else:
        return None
    return strip_casts(inner)


def _swaps_2d(args) -> bool:
    """Transpose dimensions that swap the two axes of a matrix: (0, 1), (-2, -1), any order."""
    dims = []
    for arg in args:
        if isinstance(arg, ast.UnaryOp) and isinstance(arg.op, ast.USub) and isinstance(arg.operand, ast.Constant):
            dims.append(-arg.operand.value)
        elif isinstance(arg, ast.Constant):
            dims.append(arg.value)
        else:
            return False
    return len(dims) == 2 and sorted(dims) in ([0, 1], [-2, -1], [-1, 0], [-2, 1])


def _stateless_forward(cls: ast.ClassDef):
    """The ``forward`` of a module class whose ``__init__`` (if any) assigns nothing, or None.
    None too when the class defines its own ``__call__``: calling the module then runs that
    method, not ``forward``, so the forward says nothing about what the module computes."""
    forward = None
    for stmt in cls.body:
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
            if stmt.name == "forward":
                forward = stmt
            elif stmt.name == "__call__" or (stmt.name == "__init__" and _assigns(stmt.body)):
                return None
    return forward


def _settings_gelu_forward(cls: ast.ClassDef):
    """The ``forward`` of a module class whose one statement returns a call of a ``gelu`` and
    whose ``__init__`` only records settings (:func:`_records_settings`), or None.  (The forward
    is tested first, with no call but the dictionary's: most classes whose ``__init__``
    assigns are no such module, and their ``__init__`` is then not read.)  A class with its own
    ``__call__`` is none either: calling it runs that method, not ``forward``."""
    forward = init = None
    for stmt in cls.body:
        if stmt.__class__ in (ast.FunctionDef, ast.AsyncFunctionDef):
            if stmt.name == "forward":
                forward = stmt
            elif stmt.name == "__init__":
                init = stmt
            elif stmt.name == "__call__":
                return None
    if forward is None or init is None:
        return None
    body = forward.body
    if len(body) == 2 and body[0].__class__ is ast.Expr and body[0].value.__class__ is ast.Constant:
        body = body[1:]  # (a docstring)
    value = body[0].value if len(body) == 1 and body[0].__class__ is ast.Return else None
    while value.__class__ is ast.Call and value.func.__class__ is ast.Attribute and value.func.attr in DTYPE_METHODS:
        value = value.func.value  # (a cast of the result)
    if value.__class__ is not ast.Call:
        return None
    func = value.func
    if not ((func.__class__ is ast.Attribute and func.attr == "gelu")
            or (func.__class__ is ast.Name and func.id == "gelu")):
        return None
    return forward if _records_settings(init) else None


def _records_settings(init: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    """Is every statement of ``__init__`` a ``super().__init__()`` call or ``self.<attr> =`` one
    of its own parameters or a literal (``self.approximate = approximate``)?  Such a module
    holds settings only: it builds no layer and allocates no tensor."""
    params = {a.arg for a in (*init.args.posonlyargs, *init.args.args, *init.args.kwonlyargs)}
    for stmt in _code(init.body):
        value = stmt.value if isinstance(stmt, (ast.Expr, ast.Assign)) else None
        if super_init(stmt) is not None:
            continue
        if not (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1
                and isinstance(stmt.targets[0], ast.Attribute) and isinstance(stmt.targets[0].value, ast.Name)
                and stmt.targets[0].value.id == "self"
                and (isinstance(value, ast.Constant) or (isinstance(value, ast.Name) and value.id in params))):
            return False
    return True


_STATEMENT_LISTS = ("body", "orelse", "finalbody")


def _assigns(body: list) -> bool:
    """Is there an assignment statement (``=``, annotated, augmented) in these statements, also
    nested in compound statements and definitions?  (Statements lie only in statement lists,
    never inside expressions: the expressions are not walked.)"""
    stack = list(body)
    while stack:
        stmt = stack.pop()
        if isinstance(stmt, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            return True
        for name in _STATEMENT_LISTS:
            inner = getattr(stmt, name, None)
            if inner:
                stack.extend(inner)
        for handler in getattr(stmt, "handlers", ()):
            stack.extend(handler.body)
        for case in getattr(stmt, "cases", ()):
            stack.extend(case.body)
    return False


def autograd_gelu_module(cls: ast.ClassDef, names: ModuleNames) -> str | None:
    """The GELU variant a same-file module class computes when every path of its ``forward``
    returns ``F.apply(x)`` of a same-file ``torch.autograd.Function`` whose ``forward(ctx, x)``
    returns a GELU formula of ``x`` (written inline, or a call of a same-file function that is
    one), besides saving tensors on ``ctx``, or a call of a same-file GELU formula function on
    ``x`` -- branches only test (BLOOM 4.x: the Function when ``self.training``, the formula
    itself otherwise) -- with one variant on every path, the Function on one at least, and
    whose ``__init__`` builds nothing (BLOOM's ``BloomGelu``).  Its backward is the Function's
    own: the forward is a GELU, the gradient is whatever the code wrote."""
    forward = _stateless_forward(cls)
    if forward is None:
        return None
    params = [a.arg for a in forward.args.args]
    if len(params) != 2 or forward.args.vararg or forward.args.kwarg or forward.args.kwonlyargs:
        return None
    variants: list[str | None] = []
    applied: list[bool] = []
    if not _returns_on_every_path(forward.body, names, lambda e: _gelu_of(e, params[1], names, variants, applied)):
        return None
    return variants[0] if any(applied) and len(set(variants)) == 1 and variants[0] is not None else None


def _returns_on_every_path(stmts, names: ModuleNames, accept) -> bool:
    """Does every path through the block end in a ``return`` whose value ``accept`` takes, the
    statements before it being ``if``s that only test (each branch such a block, or empty)?"""
    stmts = _code(stmts)
    if not stmts:
        return False
    for stmt in stmts[:-1]:
        if not (isinstance(stmt, ast.If) and _pure_test(stmt.test, names)
                and all(not b or _returns_on_every_path(b, names, accept) for b in (stmt.body, stmt.orelse))):
            return False
    last = stmts[-1]
    if isinstance(last, ast.Return):
        return last.value is not None and accept(last.value)
    return (isinstance(last, ast.If) and _pure_test(last.test, names)
            and _returns_on_every_path(last.body, names, accept) and _returns_on_every_path(last.orelse, names, accept))


def _gelu_of(expr: ast.expr, x: str, names: ModuleNames, variants: list, applied: list) -> bool:
    """Is ``expr`` the call ``Fn.apply(x)`` of a GELU autograd Function or ``f(x)`` of a same-file
    GELU formula function?  (Its variant appended to ``variants``, and whether it went through
    the Function to ``applied``.)"""
    if not (isinstance(expr, ast.Call) and len(expr.args) == 1 and not expr.keywords
            and isinstance(expr.args[0], ast.Name) and expr.args[0].id == x):
        return False
    func = expr.func
    if isinstance(func, ast.Attribute) and func.attr == "apply" and isinstance(func.value, ast.Name):
        variants.append(_autograd_gelu(func.value.id, names))
        applied.append(True)
    elif isinstance(func, ast.Name) and func.id in names.functions:
        variants.append(gelu_formula(names.functions[func.id], names))
        applied.append(False)
    else:
        return False
    return variants[-1] is not None


def _autograd_gelu(name: str, names: ModuleNames) -> str | None:
    """The GELU variant the same-file ``torch.autograd.Function`` ``name`` computes in its static
    ``forward(ctx, x)`` (bookkeeping on ``ctx`` aside), or None."""
    fwd = function_forward(name, names)
    if fwd is None:
        return None
    args = [a.arg for a in fwd.args.args]
    if len(args) != 2 or fwd.args.vararg or fwd.args.kwarg or fwd.args.kwonlyargs:
        return None
    ctx, x = args
    # ctx.save_for_backward(x), ctx.mark_non_differentiable(...): bookkeeping for the backward
    kept = [s for s in _code(fwd.body) if not (
        isinstance(s, ast.Expr) and isinstance(s.value, ast.Call) and isinstance(s.value.func, ast.Attribute)
        and isinstance(s.value.func.value, ast.Name) and s.value.func.value.id == ctx)]
    if any(isinstance(n, ast.Name) and n.id == ctx for s in kept for n in ast_walk(s)):
        return None
    if len(kept) == 1 and isinstance(kept[0], ast.Return):
        inner = kept[0].value
        if (isinstance(inner, ast.Call) and isinstance(inner.func, ast.Name) and inner.func.id in names.functions
                and len(inner.args) == 1 and not inner.keywords and isinstance(inner.args[0], ast.Name)
                and inner.args[0].id == x):
            return gelu_formula(names.functions[inner.func.id], names)
    stripped = ast.FunctionDef(name=fwd.name, args=ast.arguments(posonlyargs=[], args=[fwd.args.args[1]], vararg=None,
                                                                 kwonlyargs=[], kw_defaults=[], kwarg=None, defaults=[]),
                               body=kept, decorator_list=[], returns=None)
    return gelu_formula(stripped, names)


def gelu_on_every_path(func: ast.FunctionDef | ast.AsyncFunctionDef, names: ModuleNames,
                       method: bool = False) -> str | None:
    """``"none"``, ``"tanh"`` or ``"any"`` (a variant chosen at run time) when every way out of
    ``func`` returns ``F.gelu`` of its one tensor argument with one ``approximate`` setting,
    maybe computed on an upcast copy and cast back (diffusers' ``GELU.gelu``: float32 on one
    device, as it is on the others); the branches only test (no assignment, no other call
    than reading the argument's device or dtype, version checks).  None otherwise."""
    params = [a.arg for a in func.args.args][1 if method else 0:]
    if (len(params) != 1 or func.args.vararg or func.args.kwarg or func.args.kwonlyargs
            or func.args.posonlyargs):
        return None
    settings: list[str] = []
    if not _gelu_block(func.body, params[0], names, settings) or len(set(settings)) != 1:
        return None
    setting = settings[0]
    if setting in ("'none'", ast.dump(ast.Constant("none"))):
        return "none"
    if setting == ast.dump(ast.Constant("tanh")):
        return "tanh"
    return "any"


def _gelu_block(stmts, x: str, names: ModuleNames, settings: list) -> bool:
    """Does every path through the block return a GELU of ``x`` (its settings appended)?
    (Module-level, not nested closures: recursive closures are reference cycles.)"""
    stmts = _code(stmts)
    if not stmts:
        return False
    for stmt in stmts[:-1]:  # an if before more code: each branch returns a GELU, or is empty
        if not (isinstance(stmt, ast.If) and _pure_test(stmt.test, names)
                and all(not b or _gelu_block(b, x, names, settings) for b in (stmt.body, stmt.orelse))):
            return False
    last = stmts[-1]
    if isinstance(last, ast.Return):
        return last.value is not None and _gelu_return(last.value, x, names, settings)
    return (isinstance(last, ast.If) and _pure_test(last.test, names)
            and _gelu_block(last.body, x, names, settings) and _gelu_block(last.orelse, x, names, settings))


def _gelu_return(expr: ast.expr, x: str, names: ModuleNames, settings: list) -> bool:
    expr = strip_casts(expr)  # a cast of the result back to the input's dtype
    if isinstance(expr, ast.Call) and len(expr.args) == 1 and not expr.keywords:
        variant = _transformers_gelu(names.resolve(expr.func))
        if variant is not None and isinstance(strip_casts(expr.args[0]), ast.Name) \
                and strip_casts(expr.args[0]).id == x:
            settings.append("'none'" if variant == "none" else ast.dump(ast.Constant(variant)))
            return True
    if not (isinstance(expr, ast.Call) and names.resolve(expr.func) in _GELU_FUNCTIONS and len(expr.args) == 1):
        return False
    arg = strip_casts(_contiguous_of(expr.args[0]))
    if not (isinstance(arg, ast.Name) and arg.id == x) or any(k.arg != "approximate" for k in expr.keywords):
        return False
    setting = next((k.value for k in expr.keywords), None)
    settings.append("'none'" if setting is None else ast.dump(setting))
    return True


_GELU_FUNCTIONS = ("torch.nn.functional.gelu",)


def _contiguous_of(expr: ast.expr) -> ast.expr:
    """The tensor ``expr.contiguous()`` lays out anew (the same values in another memory
    layout), else ``expr`` itself."""
    while (isinstance(expr, ast.Call) and isinstance(expr.func, ast.Attribute) and expr.func.attr == "contiguous"
           and not expr.args and not expr.keywords):
        expr = expr.func.value
    return expr
# transformers' module-level GELU objects (``gelu = get_activation("gelu")`` in
# transformers.activations), called as functions: the variant each computes.
_TRANSFORMERS_GELUS = {"gelu": "none", "gelu_new": "tanh", "gelu_fast": "tanh"}


def _transformers_gelu(fqn: str | None) -> str | None:
    """``"none"``/``"tanh"`` for transformers' ``gelu``/``gelu_new``/``gelu_fast`` objects (an
    absolute or relative import of ``transformers.activations``), None for any other name."""
    if fqn is None or "activations." not in fqn:
        return None
    last = fqn.rsplit(".", 1)[-1]
    variant = _TRANSFORMERS_GELUS.get(last)
    return variant if variant is not None and names_match("transformers.activations." + last, fqn) else None

#: Tensor methods that only convert the dtype (``w.to(x.dtype)``, ``w.float()``, ``w.type_as(x)``).
DTYPE_METHODS = frozenset({"to", "type", "type_as", "float", "half", "double", "bfloat16"})


def strip_casts(expr):
    """The value a chain of dtype conversions (``w.to(x.dtype).float()``) converts."""
    while isinstance(expr, ast.Call) and isinstance(expr.func, ast.Attribute) and expr.func.attr in DTYPE_METHODS:
        expr = expr.func.value
    return expr


def _pure_test(test: ast.expr, names: ModuleNames) -> bool:
    """A branch condition that only reads (comparisons, attribute reads, calls of a version
    check): nothing it does changes what the function computes."""
    for node in ast_walk(test):
        if isinstance(node, (ast.NamedExpr, ast.Lambda, ast.Await, ast.Yield, ast.YieldFrom)):
            return False
        if isinstance(node, ast.Call):
            name = names.resolve(node.func)
            if name is None or "version" not in name.rsplit(".", 1)[-1]:
                return False
    return True


def _code(body: list) -> list:
    """The statements of a body, less its docstring."""
    return [s for s in body if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))]


def _torch_or_method(call: ast.Call, op: str, names: ModuleNames) -> list | None:
    """The operands of ``torch.<op>(...)`` (the callee resolves to torch's own function) or of
    the tensor method ``n.<op>(...)`` (the receiver first); None for anything else -- a
    same-named function of another module (``from fastmath import exp``) computes what that
    module says, not what torch does."""
    func = call.func
    resolved = names.resolve(func)
    if resolved is not None:
        return list(call.args) if resolved == "torch." + op else None
    if func.__class__ is ast.Attribute and func.attr == op:
        return [func.value, *call.args]
    return None


def _call_name(call: ast.Call, names: ModuleNames) -> str | None:
    func = call.func
    resolved = names.resolve(func)
    if resolved is not None:
        return resolved.rsplit(".", 1)[-1]
    if isinstance(func, ast.Attribute):  # x.pow(3), (x / c).erf()
        return func.attr
    return None


def _derived(body, names: ModuleNames) -> set[float]:
    """Constants written as ``math.sqrt(2.0)``, ``math.sqrt(2 / math.pi)``, ``math.pi``."""
    out: set[float] = set()
    for stmt in body:
        for node in ast_walk(stmt):
            if isinstance(node, ast.Attribute) and names.resolve(node) in ("math.pi", "numpy.pi", "torch.pi"):
                out.add(math.pi)
            if isinstance(node, ast.Call) and _call_name(node, names) == "sqrt" and len(node.args) == 1:
                value = _number(node.args[0], names)
                if value is not None and value >= 0:
                    out.add(math.sqrt(value))
    return out


def _constant_tensor(call: ast.Call, names: ModuleNames) -> float | None:
    """The number ``torch.tensor(c)`` holds, ``c`` an expression of numbers alone; else None.
    A 0-d tensor does not promote the input's dtype, so it stands for its number; where it is
    made (``device=x.device``) does not change it, any other keyword (a dtype) may."""
    if (names.resolve(call.func) != "torch.tensor" or len(call.args) != 1
            or any(k.arg != "device" for k in call.keywords)):
        return None
    return _number(call.args[0], names)


def _number(expr: ast.expr, names: ModuleNames) -> float | None:
    if isinstance(expr, ast.Call):
        return _constant_tensor(expr, names)
    if isinstance(expr, ast.Constant) and isinstance(expr.value, (int, float)) and not isinstance(expr.value, bool):
        return float(expr.value)
    if isinstance(expr, ast.Attribute) and names.resolve(expr) in ("math.pi", "numpy.pi", "torch.pi"):
        return math.pi
    if isinstance(expr, ast.BinOp):
        left, right = _number(expr.left, names), _number(expr.right, names)
        if left is None or right is None:
            return None
        if isinstance(expr.op, ast.Div) and right != 0:
            return left / right
        if isinstance(expr.op, ast.Mult):
            return left * right
    return None


def _near(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-4 * max(1.0, abs(b))


# ----------------------------------------------------------------------------- softmax

_SOFTMAX = {"softmax"}  # the last component of torch.softmax / F.softmax / x.softmax
_ROW_MAX = {"amax", "max"}
FLOAT_DTYPES = frozenset(CASTS.values())


SAME = "same"  # softmax_formula: the softmax keeps its input's dtype


def softmax_formula(func: ast.FunctionDef | ast.AsyncFunctionDef, names: ModuleNames) -> str | None:
    """Does ``func(x, dim, ...)`` compute ``softmax(x, dim)``, whatever its other parameters?
    :data:`SAME` when it does in ``x``'s dtype, the dtype's name (``"torch.float32"``) when it
    does in that dtype on every path; None otherwise.

    DALL-E's ``stable_softmax(t, dim=-1, alpha=32 ** 2)``: ``t = t / alpha; t = t -
    torch.amax(t, dim=dim, keepdim=True).detach(); return (t * alpha).softmax(dim=dim)``.
    Softmax is invariant to a shift constant along ``dim`` (a ``keepdim`` max over ``dim``
    subtracted), and the scalings cancel (``/ alpha`` then ``* alpha``, alpha a number or
    another parameter): it is the softmax of ``x`` over ``dim``.  fairseq's ``utils_softmax(x,
    dim, onnx_trace)``: ``if onnx_trace: return F.softmax(x.float(), dim=dim)`` else ``return
    F.softmax(x, dim=dim, dtype=torch.float32)``: a test that only reads chooses between two
    spellings of one float32 softmax.  Read from the code, never the name: the first parameter
    is the tensor, the second the dim the final softmax normalises (so that a positional call
    binds the same way), each path a run of assignments and one ``return``, branching only on
    tests that read; any other step -- an exponent, a mask, a scale that does not cancel, paths
    in different dtypes -- is not this."""
    args = func.args
    params = [a.arg for a in args.posonlyargs + args.args]
    if len(params) < 2 or args.vararg or args.kwarg:
        return None
    reader = _SoftmaxReader(params[0], params[1], set(params[2:]) | {a.arg for a in args.kwonlyargs}, names, func)
    dtypes: list[str] = []
    if not reader.block(_code(func.body), {params[0]: (1.0, {})}, dtypes) or len(set(dtypes)) != 1:
        return None
    return dtypes[0]


_SOFTMAX_HELD = "softmax held"  # states key (with a name): the softmax that name holds, its dtype
_EXP_HELD = "exp held"  # states key (with a name): that name holds exp(x), x shifted along dim at most


class _SoftmaxReader:
    """One function's paths, read by :func:`softmax_formula`: each name a path assigns is ``x``
    times a factor (numbers multiplied, exponents per scalar parameter), up to a shift constant
    along ``dim``."""

    def __init__(self, x: str, dim: str, scalars: set, names: ModuleNames, func=None):
        self.x, self.dim, self.scalars, self.names = x, dim, scalars, names
        self.func = func
        self.own = None  # the names the function binds or reads (_choice; read when a test calls)

    def block(self, stmts: list, states: dict, dtypes: list) -> bool:
        """Does every path through ``stmts`` return the softmax (its dtype appended per return)?
        A branch that does not return goes on with the statements after its ``if``; a ``with``
        that turns autocast off (``with torch.autocast("cuda", enabled=False):``) runs its body
        in the input's dtype, as if unwrapped; a name may hold a read of the tensor's metadata
        (``d = t.dtype``, for a test to branch on) or the softmax itself, returned later
        (OpenFold's ``softmax_no_cast``: ``s = F.softmax(t, dim=dim)`` on both branches of a
        dtype test, one under autocast turned off, then ``return s``)."""
        if not stmts:
            return False
        states = dict(states)
        for index, stmt in enumerate(stmts):
            last = index == len(stmts) - 1
            kind = stmt.__class__
            if kind is ast.Return:
                value = stmt.value
                if value.__class__ is ast.Name and (_SOFTMAX_HELD, value.id) in states:
                    dtypes.append(states[(_SOFTMAX_HELD, value.id)])
                    return last
                return last and self._returns(value, states, dtypes)
            if kind is ast.If and (_pure_test(stmt.test, self.names) or self._choice(stmt.test)):
                # a branch returns the softmax, or goes on with the statements after the if
                rest = stmts[index + 1:]
                ends = []
                for branch in (stmt.body, stmt.orelse):
                    code = _code(branch)
                    ends.append(bool(code) and code[-1].__class__ is ast.Return)
                    if not (self.block(code, states, dtypes) if ends[-1] else bool(rest)
                            and self.block(code + rest, states, dtypes)):
                        return False
                return not (rest and all(ends))  # (code after two returns: not read)
            if kind is ast.With and self._autocast_off(stmt):
                return self.block(_code(stmt.body) + stmts[index + 1:], states, dtypes)
            if not (kind is ast.Assign and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name)):
                return False
            target, value = stmt.targets[0].id, stmt.value
            if target in (self.dim, *self.scalars):
                return False
            states.pop((_SOFTMAX_HELD, target), None)
            states.pop((_EXP_HELD, target), None)
            state = self._read(value, states)
            if state is not None:
                states[target] = state
                continue
            states.pop(target, None)
            if value.__class__ is ast.Attribute and value.attr in TENSOR_METADATA \
                    and value.value.__class__ is ast.Name and value.value.id in states:
                continue  # d = t.dtype: the name holds no tensor
            if self._exp_of_x(value, states):
                states[(_EXP_HELD, target)] = True  # e = torch.exp(x - max): normalised later
                continue
            held: list = []
            if not self._returns(value, states, held):
                return False
            states[(_SOFTMAX_HELD, target)] = held[0]
        return False

    def _exp_of_x(self, expr, states) -> bool:
        """``torch.exp(n)`` / ``n.exp()`` of a name holding ``x`` itself (up to a shift along
        ``dim``: a factor other than one would change what the normalised exponent is)."""
        if expr.__class__ is not ast.Call or expr.keywords:
            return False
        func = expr.func
        if (func.attr if func.__class__ is ast.Attribute else getattr(func, "id", None)) != "exp":
            return False  # (the last component first: no resolving for the other calls)
        operands = _torch_or_method(expr, "exp", self.names)
        if operands is None:
            return False
        if len(operands) != 1:
            return False
        state = self._read(operands[0], states)
        return state is not None and not state[1] and abs(state[0] - 1.0) <= 1e-12

    def _normalised_exp(self, expr, states) -> bool:
        """``e / torch.sum(e, dim=dim, keepdim=True)`` (or ``e / e.sum(dim, keepdim=True)``)
        with ``e`` a name holding ``exp(x - max)``: softmax written out, the exponent over its
        sum along ``dim``."""
        if not (expr.__class__ is ast.BinOp and expr.op.__class__ is ast.Div and expr.left.__class__ is ast.Name
                and (_EXP_HELD, expr.left.id) in states):
            return False
        total = expr.right
        if total.__class__ is not ast.Call:
            return False
        operands = _torch_or_method(total, "sum", self.names)  # (e.sum(dim, keepdim=True) too)
        if operands is None:
            return False
        keywords = {k.arg: k.value for k in total.keywords}
        if set(keywords) - {"dim", "keepdim"} or not operands or len(operands) > 3:
            return False
        axis = operands[1] if len(operands) > 1 else keywords.get("dim")
        keep = operands[2] if len(operands) > 2 else keywords.get("keepdim")
        return operands[0].__class__ is ast.Name and operands[0].id == expr.left.id \
            and axis.__class__ is ast.Name and axis.id == self.dim \
            and keep.__class__ is ast.Constant and keep.value is True

    def _choice(self, test: ast.expr) -> bool:
        """A test whose calls are given none of the function's own values, queries of the
        environment (esmfold's ``if d is torch.bfloat16 and not is_deepspeed_initialized():``):
        every path must return the same softmax in one dtype (:func:`softmax_formula`), so which
        one the test picks does not change what the function computes, and what it calls is
        handed neither the tensor nor anything derived from the function's arguments.  A call
        given a parameter or a local (``if log(exporting):``) may act on them: not read."""
        own = self.own
        for node in ast_walk(test):
            kind = node.__class__
            if kind is ast.NamedExpr or kind is ast.Lambda or kind is ast.Await or kind is ast.Yield \
                    or kind is ast.YieldFrom:
                return False
            if kind is ast.Call:
                if own is None:
                    own = self.own = {n.id for n in ast_walk(self.func) if n.__class__ is ast.Name
                                      and n.ctx.__class__ is not ast.Load} | {
                        a.arg for a in ast_walk(self.func.args) if a.__class__ is ast.arg}
                for part in ast_walk(node):
                    if part.__class__ is ast.Name and part.id in own:
                        return False
        return True

    def _autocast_off(self, stmt: ast.With) -> bool:
        """``with torch.autocast(..., enabled=False):`` (any autocast), bound to no name."""
        for item in stmt.items:
            expr = item.context_expr
            if item.optional_vars is not None or expr.__class__ is not ast.Call:
                return False
            name = self.names.resolve(expr.func)
            if name is None or name.rsplit(".", 1)[-1] != "autocast" or not any(
                    k.arg == "enabled" and isinstance(k.value, ast.Constant) and k.value.value is False
                    for k in expr.keywords):
                return False
        return bool(stmt.items)

    def _scale(self, expr):
        if isinstance(expr, ast.Name) and expr.id in self.scalars:
            return 1.0, {expr.id: 1}
        value = _number(expr, self.names)
        return (value, {}) if value not in (None, 0.0) else None

    @staticmethod
    def _combine(state, factor, sign):
        number, exps = state[0] * factor[0] ** sign, dict(state[1])
        for key, power in factor[1].items():
            exps[key] = exps.get(key, 0) + sign * power
        return number, {k: v for k, v in exps.items() if v}

    def _row_max(self, expr, states) -> bool:
        """torch.amax(n, dim=dim, keepdim=True)[.detach()], n.max(dim, keepdim=True)[0]"""
        if isinstance(expr, ast.Call) and isinstance(expr.func, ast.Attribute) and expr.func.attr == "detach" \
                and not expr.args:
            expr = expr.func.value
        if isinstance(expr, ast.Subscript) and isinstance(expr.slice, ast.Constant) and expr.slice.value == 0:
            expr = expr.value
        elif isinstance(expr, ast.Attribute) and expr.attr == "values":
            expr = expr.value
        if not isinstance(expr, ast.Call) or _call_name(expr, self.names) not in _ROW_MAX:
            return False
        operands = list(expr.args)
        if isinstance(expr.func, ast.Attribute) and self.names.resolve(expr.func) is None:
            operands.insert(0, expr.func.value)  # n.amax(...)
        keywords = {k.arg: k.value for k in expr.keywords}
        if not operands or not (isinstance(operands[0], ast.Name) and operands[0].id in states):
            return False
        axis = operands[1] if len(operands) > 1 else keywords.get("dim")
        keep = operands[2] if len(operands) > 2 else keywords.get("keepdim")
        return isinstance(axis, ast.Name) and axis.id == self.dim and isinstance(keep, ast.Constant) \
            and keep.value is True

    def _read(self, expr, states):
        if isinstance(expr, ast.Name):
            return states.get(expr.id)
        if isinstance(expr, ast.BinOp) and isinstance(expr.op, (ast.Mult, ast.Div)):
            left = self._read(expr.left, states)
            if left is not None and self._scale(expr.right) is not None:
                return self._combine(left, self._scale(expr.right), 1 if isinstance(expr.op, ast.Mult) else -1)
            right = self._read(expr.right, states) if isinstance(expr.op, ast.Mult) else None
            if right is not None and self._scale(expr.left) is not None:
                return self._combine(right, self._scale(expr.left), 1)
            return None
        if isinstance(expr, ast.BinOp) and isinstance(expr.op, ast.Sub) and self._row_max(expr.right, states):
            return self._read(expr.left, states)
        return None

    def _returns(self, last, states, dtypes: list) -> bool:
        if last.__class__ is ast.BinOp and self._normalised_exp(last, states):
            dtypes.append(SAME)
            return True
        if not isinstance(last, ast.Call) or _call_name(last, self.names) not in _SOFTMAX:
            return False
        operands = list(last.args)
        if isinstance(last.func, ast.Attribute) and self.names.resolve(last.func) is None:
            operands.insert(0, last.func.value)  # (t * alpha).softmax(dim=dim)
        keywords = {k.arg: k.value for k in last.keywords}
        if set(keywords) - {"dim", "dtype"} or not operands or len(operands) > 2:
            return False
        axis = operands[1] if len(operands) > 1 else keywords.get("dim")
        dtype = SAME
        if "dtype" in keywords:  # F.softmax(x, dim=dim, dtype=torch.float32)
            dtype = self._dtype(keywords["dtype"])
        operand = operands[0]
        cast = self._cast(operand)
        if cast is not None:  # F.softmax(x.float(), dim=dim): the softmax of x computed in float32
            operand, upcast = cast
            dtype = upcast if dtype == SAME else dtype
        state = self._read(operand, states)
        if dtype is None or not (isinstance(axis, ast.Name) and axis.id == self.dim and state is not None
                                 and not state[1] and abs(state[0] - 1.0) <= 1e-12):
            return False
        dtypes.append(dtype)
        return True

    def _dtype(self, expr) -> str | None:
        if isinstance(expr, ast.Constant) and expr.value is None:
            return SAME
        resolved = self.names.resolve(expr) if isinstance(expr, (ast.Name, ast.Attribute)) else None
        resolved = DTYPE_ALIASES.get(resolved, resolved)
        return resolved if resolved in FLOAT_DTYPES else None

    def _cast(self, expr) -> tuple | None:
        """``t.float()`` / ``t.to(torch.float32)`` / ``t.type(torch.float32)``: (t, the dtype)."""
        if not (isinstance(expr, ast.Call) and isinstance(expr.func, ast.Attribute)
                and self.names.resolve(expr.func) is None):
            return None
        method = expr.func.attr
        if method in CASTS and not expr.args and not expr.keywords:
            return expr.func.value, CASTS[method]
        if method in ("to", "type") and len(expr.args) + len(expr.keywords) == 1:
            value = expr.args[0] if expr.args else expr.keywords[0].value
            if expr.keywords and expr.keywords[0].arg != "dtype":
                return None
            dtype = self._dtype(value)
            return (expr.func.value, dtype) if dtype not in (None, SAME) else None
        return None


# ----------------------------------------------------------------------------- layer norm


def layer_norm_module(cls: ast.ClassDef, names: ModuleNames) -> bool:
    """Does a module class's ``forward(self, x)`` compute a LayerNorm over the last axis,
    written out: ``u = x.mean(-1, keepdim=True)``, ``s = (x - u).pow(2).mean(-1, keepdim=True)``
    (or ``x.var(-1, unbiased=False, keepdim=True)``), ``(x - u) / torch.sqrt(s + eps)`` (or
    ``* torch.rsqrt(...)``), then optionally ``weight * y + bias`` (TF-style BertLayerNorm of
    older speech and NLP code)?  Straight-line code only; names are substituted, so any
    split into statements reads the same."""
    forward = next((s for s in cls.body if isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef))
                    and s.name == "forward"), None)
    if forward is None or len(forward.args.args) != 2 or forward.args.vararg or forward.args.kwarg \
            or forward.args.kwonlyargs:
        return False
    body = _code(forward.body)
    if not body or not isinstance(body[-1], ast.Return) or body[-1].value is None:
        return False
    x = forward.args.args[1].arg
    if not _straight_line(body):
        return False  # _returned_value declines it: not worth walking
    if not any(isinstance(n, ast.Attribute) and n.attr in ("sqrt", "rsqrt") or isinstance(n, ast.Name)
               and (names.resolve(n) or n.id).rsplit(".", 1)[-1] in ("sqrt", "rsqrt")
               for st in body for n in walk(st)):
        return False  # no root to divide by: not worth substituting (a deep copy per statement)
    out = _returned_value(body)
    return out is not None and _affine_norm(strip_casts(out), x, names)


def flagged_layer_norm_module(cls: ast.ClassDef, names: ModuleNames) -> tuple[int, str, str] | None:
    """The constructor parameter (its position after ``self``, its name) that must stay at its
    ``False`` default for a module class to compute a LayerNorm written out: a ``forward(self,
    x)`` whose whole body is ``if self.<flag> == False:`` (``is False``, ``not self.<flag>``)
    with the written-out LayerNorm of :func:`layer_norm_module` in that branch, and
    ``__init__`` storing the parameter as ``self.<flag>`` (bert_seq2seq's BertLayerNorm, a
    conditional LayerNorm when built with ``conditional=True``).  None otherwise; the caller
    checks that every build of the class leaves the flag at its default."""
    forward = None
    for stmt in cls.body:  # (a loop, not a generator: asked of every class typed as a layer)
        if stmt.__class__ is ast.FunctionDef and stmt.name == "forward":
            forward = stmt
            break
    if forward is None:
        return None
    body = forward.body
    if body and body[0].__class__ is ast.Expr and body[0].value.__class__ is ast.Constant:
        body = body[1:]  # (the docstring)
    if len(body) != 1 or body[0].__class__ is not ast.If:
        return None
    test = body[0].test
    if test.__class__ is ast.UnaryOp and test.op.__class__ is ast.Not:
        flag = test.operand
    elif (test.__class__ is ast.Compare and len(test.ops) == 1 and test.ops[0].__class__ in (ast.Eq, ast.Is)
          and test.comparators[0].__class__ is ast.Constant and test.comparators[0].value is False):
        flag = test.left
    else:
        return None
    if not (flag.__class__ is ast.Attribute and flag.value.__class__ is ast.Name and flag.value.id == "self"):
        return None
    init = next((s for s in cls.body if isinstance(s, ast.FunctionDef) and s.name == "__init__"), None)
    if init is None:
        return None
    stores = [n for n in walk(init) if n.__class__ is ast.Assign
              and any(t.__class__ is ast.Attribute and t.attr == flag.attr for t in n.targets)]
    if len(stores) != 1 or len(stores[0].targets) != 1 or stores[0].value.__class__ is not ast.Name:
        return None
    param = stores[0].value.id
    args = init.args
    positional = args.posonlyargs + args.args
    defaults = dict(zip([a.arg for a in positional[len(positional) - len(args.defaults):]], args.defaults))
    defaults.update((a.arg, d) for a, d in zip(args.kwonlyargs, args.kw_defaults) if d is not None)
    default = defaults.get(param)
    if not (default.__class__ is ast.Constant and default.value is False):
        return None
    names_ = [a.arg for a in positional]
    if param not in names_ and param not in (a.arg for a in args.kwonlyargs):
        return None
    branch = ast.ClassDef(name=cls.name, bases=[], keywords=[], decorator_list=[],
                          body=[ast.FunctionDef(name="forward", args=forward.args, body=body[0].body,
                                                decorator_list=[], returns=None)])
    if not layer_norm_module(branch, names):
        return None
    index = names_.index(param) - 1 if param in names_ else -1
    return index, param, flag.attr


def functional_layer_norm_module(cls: ast.ClassDef, names: ModuleNames) -> bool:
    """Does a module class's ``forward(self, x, ...)`` return ``F.layer_norm(x, ...)`` of its
    input tensor (nanoGPT's LayerNorm with an optional bias, a bias-free ``F.layer_norm(x,
    x.shape[-1:], self.gamma, self.beta)``, VALL-E X's ``LayerNorm`` taking an unused
    ``embedding``)?  Before that return only these may stand: asserts, and an ``if
    isinstance(x, tuple)`` (or ``list``) branch that returns, which a tensor never takes.  Any
    further parameter has a default and is read, on the tensor's path, by asserts alone
    (``assert embedding is None``): a call passing it computes the same LayerNorm or fails.
    The layer norm's other arguments must not read the input's values (its ``shape`` only)."""
    forward = None
    for stmt in cls.body:  # (a plain loop: this runs for every same-file class a layer is built from)
        if stmt.__class__ is ast.FunctionDef and stmt.name == "forward":
            forward = stmt
            break
    if forward is None:
        return False
    last = forward.body[-1]
    call = last.value if last.__class__ is ast.Return else None
    # (call-free tests of the last statement first: most forwards end otherwise)
    if call.__class__ is not ast.Call or not call.args or not (
            call.func.__class__ is ast.Attribute and call.func.attr == "layer_norm"
            or call.func.__class__ is ast.Name and call.func.id == "layer_norm"):
        return False
    args = forward.args
    if len(args.args) < 2 or args.posonlyargs or args.vararg or args.kwarg or args.kwonlyargs \
            or len(args.defaults) < len(args.args) - 2:
        return False
    if names.resolve(call.func) != "torch.nn.functional.layer_norm":
        return False
    body = _code(forward.body)
    x = args.args[1].arg
    if not (call.args[0].__class__ is ast.Name and call.args[0].id == x):
        return False
    for stmt in body[:-1]:
        if stmt.__class__ is ast.Assert:
            continue
        if stmt.__class__ is ast.If and not stmt.orelse and _tuple_test(stmt.test, x, names) \
                and stmt.body and stmt.body[-1].__class__ is ast.Return:
            continue
        return False
    # the input read by the layer norm's first argument alone (or through its shape), and the
    # other parameters nowhere but in asserts
    extra = {a.arg for a in args.args[2:]}
    rest = [*call.args[1:], *(k.value for k in call.keywords)]
    shapes = {id(n.value) for e in rest for n in ast_walk(e)
              if n.__class__ is ast.Attribute and n.attr in ("shape", "ndim") and n.value.__class__ is ast.Name}
    for e in rest:
        for node in ast_walk(e):
            if node.__class__ is ast.Name and (node.id in extra or node.id == x and id(node) not in shapes):
                return False
    return not any(node.__class__ is ast.Name and node.id in extra for stmt in body[:-1] if stmt.__class__ is ast.If
                   for node in ast_walk(stmt.test))


def _tuple_test(test: ast.expr, x: str, names: ModuleNames) -> bool:
    """``isinstance(x, tuple)`` (or ``list``, or a tuple of those)."""
    if not (test.__class__ is ast.Call and test.func.__class__ is ast.Name and test.func.id == "isinstance"
            and len(test.args) == 2 and not test.keywords and test.args[0].__class__ is ast.Name
            and test.args[0].id == x):
        return False
    kinds = test.args[1].elts if test.args[1].__class__ is ast.Tuple else [test.args[1]]
    return all(k.__class__ is ast.Name and k.id in ("tuple", "list") for k in kinds)


def bias_add_module(cls: ast.ClassDef) -> bool:
    """Does a module class's ``forward(self, x, ...)`` return its input plus a tensor computed
    without reading the input's values (``return x + bias`` or ``bias + x``, or ``x += bias``
    then ``return x``, the bias from the module's parameters, its other arguments and the input's
    shape, dtype or device only: a continuous position bias added to attention scores, ``sim =
    self.cpb(sim)``, FasterViT's ``attn = self.pos_emb_funct(attn, n)``)?  A call of such a
    module adds that bias to its argument.  Every return is one of those two forms (a branch
    may return early with another bias: a cached one); nothing else may rebind the input or
    read its values, and the forward must end in a return."""
    return _bias_adder(cls) is not None


def bias_add_in_place(forward: ast.FunctionDef) -> bool:
    """Does the forward of a :func:`bias_add_module` add its bias in place (``x += bias;
    return x``) on some path?  Its input must then be a tensor of its own (not a broadcast
    view)."""
    return bool(_bias_adder_forward(forward))


def _bias_adder(cls: ast.ClassDef) -> bool | None:
    """None: not a :func:`bias_add_module`; else whether some return adds in place."""
    forward = next((s for s in cls.body if isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef))
                    and s.name == "forward"), None)
    if forward is None or isinstance(forward, ast.AsyncFunctionDef):
        return None
    return _bias_adder_forward(forward)


def _bias_adder_forward(forward: ast.FunctionDef) -> bool | None:
    args = forward.args
    if len(args.args) < 2 or args.posonlyargs or args.vararg or args.kwarg or args.kwonlyargs \
            or len(args.defaults) > len(args.args) - 2:
        return None
    body = _code(forward.body)
    if not body or not isinstance(body[-1], ast.Return):
        return None
    x = args.args[1].arg
    allowed: set[int] = set()  # the nodes that may name x: the returns' and in-place adds' own
    in_place = False
    for block in _blocks(forward.body):
        for at, stmt in enumerate(block):
            if not isinstance(stmt, ast.Return):
                continue
            ret = stmt.value
            if isinstance(ret, ast.Name) and ret.id == x:
                before = block[at - 1] if at else None
                if not (isinstance(before, ast.AugAssign) and isinstance(before.op, ast.Add)
                        and isinstance(before.target, ast.Name) and before.target.id == x):
                    return None
                allowed.update((id(ret), id(before.target)))
                in_place = True
            elif isinstance(ret, ast.BinOp) and isinstance(ret.op, ast.Add):
                plain = [side for side in (ret.left, ret.right) if isinstance(side, ast.Name) and side.id == x]
                if len(plain) != 1:
                    return None
                allowed.add(id(plain[0]))
            else:
                return None
    metadata = {id(n.value) for n in ast_walk(forward) if isinstance(n, ast.Attribute) and n.attr in TENSOR_METADATA}
    others = {a.arg for a in args.args[2:]}
    sizes = _size_reads(forward, others, metadata) if others else set()
    for stmt in body:
        for n in ast_walk(stmt):
            if isinstance(n, (ast.Yield, ast.YieldFrom, ast.Await, ast.Global, ast.Nonlocal,
                              ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
                return None
            if isinstance(n, ast.Name) and n.id == x and id(n) not in allowed \
                    and (not isinstance(n.ctx, ast.Load) or id(n) not in metadata):
                return None
            if isinstance(n, ast.Name) and n.id in others and id(n) not in sizes:
                return None  # another argument read as a tensor (``return x + y``): not a bias of its own
    return in_place


_SIZE_CALLS = frozenset({"range", "int", "min", "max"})


def _size_reads(forward: ast.FunctionDef, others: set, metadata: set) -> set:
    """The reads of the parameters ``others`` that use them as sizes: an index or slice bound,
    arithmetic or a comparison with a number, another such parameter or the input's shape
    (``input_tensor.shape[2] - local_window_size``), an argument of ``range``/``int``/``min``/``max``."""

    def size_like(e) -> bool:
        if isinstance(e, ast.Constant):
            return isinstance(e.value, (int, float)) and not isinstance(e.value, bool)
        if isinstance(e, ast.Name):
            return e.id in others
        return any(id(n) in metadata for n in ast_walk(e) if isinstance(n, ast.Name))

    out = set()
    for parent in ast_walk(forward):
        if isinstance(parent, ast.Slice):
            out.update(id(c) for c in (parent.lower, parent.upper, parent.step) if isinstance(c, ast.Name))
        elif isinstance(parent, ast.Subscript):
            index = parent.slice.elts if isinstance(parent.slice, ast.Tuple) else [parent.slice]
            out.update(id(c) for c in index if isinstance(c, ast.Name))
        elif isinstance(parent, ast.BinOp):
            if isinstance(parent.left, ast.Name) and size_like(parent.right):
                out.add(id(parent.left))
            if isinstance(parent.right, ast.Name) and size_like(parent.left):
                out.add(id(parent.right))
        elif isinstance(parent, ast.Compare):
            sides = [parent.left, *parent.comparators]
            for side in sides:
                if isinstance(side, ast.Name) and all(size_like(o) for o in sides if o is not side):
                    out.add(id(side))
        elif isinstance(parent, ast.Call) and isinstance(parent.func, ast.Name) and parent.func.id in _SIZE_CALLS:
            out.update(id(a) for a in parent.args if isinstance(a, ast.Name))
    return out


def _blocks(body: list):
    """Each statement list of a function body, nested ones included (not nested functions'
    or classes'): :func:`treewalk.blocks` of each compound statement."""
    stack = [body]
    while stack:
        block = stack.pop()
        yield block
        for stmt in block:
            if not isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                stack.extend(blocks(stmt))


def function_module(cls: ast.ClassDef, names: ModuleNames) -> str | None:
    """The torch function a module class's forward returns, called on the forward's own
    parameters as they are and nothing else (``def forward(self, a, b): return torch.matmul(a,
    b)``, a wrapper some models keep so that a FLOP counter sees the product): calling such a
    module computes that function of its arguments.  None for any other forward (defaults,
    keywords, another statement than a docstring, a use of ``self`` or of a parameter twice).
    (Read for every class of a file: the common answer, no, is reached without calls.)"""
    for forward in cls.body:
        if forward.__class__ is ast.FunctionDef and forward.name == "forward":
            break
    else:
        return None
    body = forward.body
    last = body[-1]
    if last.__class__ is not ast.Return or last.value.__class__ is not ast.Call or forward.decorator_list:
        return None
    if len(body) > 1 and not (len(body) == 2 and body[0].__class__ is ast.Expr
                              and body[0].value.__class__ is ast.Constant):
        return None  # another statement before the return (a docstring is none)
    args = forward.args
    call = last.value
    params = [a.arg for a in args.args[1:]]
    if (not params or args.posonlyargs or args.vararg or args.kwarg or args.kwonlyargs or args.defaults
            or call.keywords or len(call.args) != len(params)):
        return None
    for arg, param in zip(call.args, params):
        if arg.__class__ is not ast.Name or arg.id != param:
            return None
    fqn = names.resolve(call.func)
    return fqn if fqn is not None and fqn.startswith("torch.") else None


def _straight_line(body: list) -> bool:
    """Is every statement before the last one ``name = value`` (what :func:`_returned_value`
    needs; it returns None otherwise)?"""
    return all(isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name)
               for stmt in body[:-1])


def _returned_value(body: list) -> ast.expr | None:
    """The value straight-line code ending in ``return`` returns, each name read replaced by
    the value it was assigned (``x = (x - u) / ...`` keeps reading the input, a later ``x``
    the normalised value); None when a statement before the return is not ``name = value``."""
    env: dict[str, ast.expr] = {}
    for stmt in body[:-1]:
        if not (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name)):
            return None
        env[stmt.targets[0].id] = _substituted(stmt.value, env)
    return _substituted(body[-1].value, env)


def addmm_linear_module(cls: ast.ClassDef, names: ModuleNames) -> bool:
    """Does a module class's ``forward(self, x)`` compute a Linear with an (in, out) weight,
    written out: ``torch.addmm(self.bias, x.view(-1, x.size(-1)), self.weight)``, returned as
    is or viewed back to ``x``'s leading shape (GPT-2's ``Conv1D``, copied into many ports)?
    Straight-line code, or such code under an ``if`` whose other branch only raises (the
    original's ``if self.rf == 1: ... else: raise NotImplementedError``)."""
    forward = next((s for s in cls.body if isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef))
                    and s.name == "forward"), None)
    if forward is None or len(forward.args.args) != 2 or forward.args.vararg or forward.args.kwarg \
            or forward.args.kwonlyargs:
        return False
    x = forward.args.args[1].arg
    body = _code(forward.body)
    if len(body) >= 1 and isinstance(body[0], ast.If):
        # the computation under the if, the other branch a raise; what follows returns its value
        branch = body[0]
        raises = [s for s in branch.orelse if not isinstance(s, ast.Raise)] == [] and branch.orelse
        if not raises or not _code(branch.body):
            return False
        body = _code(branch.body) + body[1:]
    if not body or not isinstance(body[-1], ast.Return) or body[-1].value is None:
        return False
    # The returned call's callee (after substitution: a copy of a node of these statements)
    # resolves to torch.addmm only if it is an attribute ``.addmm`` or a name that resolves so:
    # none in the statements, nothing to substitute (a deep copy per statement).  (Code that is
    # not straight-line assignments, which _returned_value declines, is not walked at all.)
    if not _straight_line(body):
        return False
    if not any(isinstance(n, ast.Attribute) and n.attr == "addmm"
               or isinstance(n, ast.Name) and names.resolve(n) == "torch.addmm"
               for st in body for n in walk(st)):
        return False
    out = _returned_value(body)
    if out is None:
        return False
    if isinstance(out, ast.Call) and isinstance(out.func, ast.Attribute) and out.func.attr in ("view", "reshape") \
            and not isinstance(out.func.value, ast.Name):
        out = out.func.value  # viewed back to the input's leading shape
    if not (isinstance(out, ast.Call) and names.resolve(out.func) == "torch.addmm" and len(out.args) == 3
            and not out.keywords):
        return False
    # (the weights may be cast to the input's type first: ``self.weight.type_as(x)``)
    bias, rows, weight = strip_casts(out.args[0]), out.args[1], strip_casts(out.args[2])
    own = [isinstance(v, ast.Attribute) and isinstance(v.value, ast.Name) and v.value.id == "self" for v in (bias, weight)]
    if not all(own) or bias.attr == weight.attr:
        return False
    # the input flattened to (rows, its last axis): x.view(-1, x.size(-1)) / x.reshape(-1, x.shape[-1])
    if not (isinstance(rows, ast.Call) and isinstance(rows.func, ast.Attribute) and rows.func.attr in ("view", "reshape")
            and isinstance(rows.func.value, ast.Name) and rows.func.value.id == x and len(rows.args) == 2
            and not rows.keywords):
        return False
    first, last = rows.args
    minus_one = isinstance(first, ast.UnaryOp) and isinstance(first.op, ast.USub) \
        and isinstance(first.operand, ast.Constant) and first.operand.value == 1
    width = ast.unparse(last) in (f"{x}.size(-1)", f"{x}.shape[-1]")
    return minus_one and width


class _Substitute(ast.NodeTransformer):
    """Each loaded name replaced by the expression ``env`` holds for it (a class of the module,
    not of the call: a class made per call is cyclic garbage, tests/test_engine_gc.py)."""

    def __init__(self, env: dict):
        self.env = env

    def visit_Name(self, node):
        return self.env.get(node.id, node) if isinstance(node.ctx, ast.Load) else node


def _substituted(expr: ast.expr, env: dict) -> ast.expr:
    return _Substitute(env).visit(copy.deepcopy(expr))


def _affine_norm(expr: ast.expr, x: str, names: ModuleNames) -> bool:
    """``w * n + b`` / ``b + n * w`` / ``w * n`` / ``n`` with ``n`` the normalised input and
    ``w``, ``b`` attributes of self."""
    if isinstance(expr, ast.BinOp) and isinstance(expr.op, ast.Add):
        for scaled, shift in ((expr.left, expr.right), (expr.right, expr.left)):
            if _self_attr(shift) and _scaled_norm(scaled, x, names):
                return True
        return False
    return _scaled_norm(expr, x, names)


def _scaled_norm(expr: ast.expr, x: str, names: ModuleNames) -> bool:
    if isinstance(expr, ast.BinOp) and isinstance(expr.op, ast.Mult):
        for weight, norm in ((expr.left, expr.right), (expr.right, expr.left)):
            if _self_attr(weight) and _normalised(strip_casts(norm), x, names):
                return True
    return _normalised(expr, x, names)


def _self_attr(expr: ast.expr) -> bool:
    expr = strip_casts(expr)
    return isinstance(expr, ast.Attribute) and isinstance(expr.value, ast.Name) and expr.value.id == "self"


def _normalised(expr: ast.expr, x: str, names: ModuleNames) -> bool:
    """``(x - mean) / sqrt(var + eps)`` or ``(x - mean) * rsqrt(var + eps)``."""
    if not isinstance(expr, ast.BinOp):
        return False
    if isinstance(expr.op, ast.Div):
        centred, root, wanted = expr.left, expr.right, "sqrt"
    elif isinstance(expr.op, ast.Mult):
        centred, root, wanted = expr.left, expr.right, "rsqrt"
        if not _centred(strip_casts(centred), x, names):
            centred, root = root, centred
    else:
        return False
    if not _centred(strip_casts(centred), x, names):
        return False
    root = strip_casts(root)
    if not (isinstance(root, ast.Call) and _call_name(root, names) == wanted):
        return False
    inner = root.args[0] if len(root.args) == 1 and not root.keywords else (
        root.func.value if isinstance(root.func, ast.Attribute) and not root.args and wanted == "rsqrt"
        and names.resolve(root.func) is None else None)
    if inner is None:
        return False
    inner = strip_casts(inner)
    if not (isinstance(inner, ast.BinOp) and isinstance(inner.op, ast.Add)):
        return False
    return any(_variance(strip_casts(v), x, names) and _number(e, names) is not None or
               _variance(strip_casts(v), x, names) and _self_attr(e)
               for v, e in ((inner.left, inner.right), (inner.right, inner.left)))


def _is_x(expr: ast.expr, x: str) -> bool:
    expr = strip_casts(expr)
    return isinstance(expr, ast.Name) and expr.id == x


def _last_axis_keepdim(call: ast.Call, at: int) -> bool:
    """The reduction's axis (positional at ``at`` or ``dim=``) is -1 and keepdim is True."""
    dims = [a for a in call.args[at:at + 1]] + [k.value for k in call.keywords if k.arg in ("dim", "axis")]
    keep = [k.value for k in call.keywords if k.arg == "keepdim"] + list(call.args[at + 1:at + 2])
    if len(dims) != 1 or len(keep) != 1:
        return False
    dim = dims[0]
    if isinstance(dim, (ast.List, ast.Tuple)) and len(dim.elts) == 1:
        dim = dim.elts[0]
    last = isinstance(dim, ast.UnaryOp) and isinstance(dim.op, ast.USub) and isinstance(dim.operand, ast.Constant) \
        and dim.operand.value == 1
    return last and isinstance(keep[0], ast.Constant) and keep[0].value is True


def _reduction(expr: ast.expr, names: ModuleNames, name: str) -> ast.expr | None:
    """The operand of ``t.<name>(-1, keepdim=True)`` / ``torch.<name>(t, -1, keepdim=True)``."""
    if not isinstance(expr, ast.Call):
        return None
    resolved = names.resolve(expr.func)
    if resolved is not None:
        if resolved.rsplit(".", 1)[-1] == name and resolved.startswith("torch.") and expr.args \
                and _last_axis_keepdim(expr, 1):
            return expr.args[0]
        return None
    if isinstance(expr.func, ast.Attribute) and expr.func.attr == name and _last_axis_keepdim(expr, 0):
        return expr.func.value
    return None


def _mean_of_x(expr: ast.expr, x: str, names: ModuleNames) -> bool:
    operand = _reduction(strip_casts(expr), names, "mean")
    return operand is not None and _is_x(operand, x)


def _centred(expr: ast.expr, x: str, names: ModuleNames) -> bool:
    """``x - x.mean(-1, keepdim=True)``."""
    return isinstance(expr, ast.BinOp) and isinstance(expr.op, ast.Sub) and _is_x(expr.left, x) \
        and _mean_of_x(expr.right, x, names)


def _variance(expr: ast.expr, x: str, names: ModuleNames) -> bool:
    """``((x - u) ** 2).mean(-1, keepdim=True)`` (``pow(2)``, ``square()``, ``c * c``) or
    ``x.var(-1, unbiased=False, keepdim=True)`` (or ``torch.var(x, -1, correction=0, keepdim=True)``)."""
    operand = _reduction(expr, names, "mean")
    if operand is not None:
        operand = strip_casts(operand)
        if isinstance(operand, ast.BinOp) and isinstance(operand.op, ast.Pow):
            return _centred(strip_casts(operand.left), x, names) and _number(operand.right, names) == 2.0
        if isinstance(operand, ast.BinOp) and isinstance(operand.op, ast.Mult):
            return _centred(strip_casts(operand.left), x, names) and _centred(strip_casts(operand.right), x, names)
        if isinstance(operand, ast.Call) and isinstance(operand.func, ast.Attribute):
            if operand.func.attr == "pow" and len(operand.args) == 1 and _number(operand.args[0], names) == 2.0:
                return _centred(strip_casts(operand.func.value), x, names)
            if operand.func.attr == "square" and not operand.args:
                return _centred(strip_casts(operand.func.value), x, names)
        return False
    if isinstance(expr, ast.Call) and isinstance(expr.func, ast.Attribute) and expr.func.attr == "var":
        resolved = names.resolve(expr.func)
        if resolved is None and _is_x(expr.func.value, x):
            at = 0  # x.var(-1, unbiased=False, keepdim=True)
        elif resolved == "torch.var" and expr.args and _is_x(expr.args[0], x):
            at = 1  # torch.var(x, dim=-1, correction=0, keepdim=True) (tfs-mt, research33)
        else:
            return False
        biased = [k for k in expr.keywords if k.arg in ("unbiased", "correction")]
        if len(biased) != 1 or not isinstance(biased[0].value, ast.Constant) \
                or biased[0].value.value not in (False, 0):
            return False
        call = ast.Call(func=expr.func, args=expr.args,
                        keywords=[k for k in expr.keywords if k.arg not in ("unbiased", "correction")])
        return _last_axis_keepdim(call, at)
    return False


# ----------------------------------------------------------------------------- dropout

# Methods that fill a tensor with random numbers, one per element: ``torch.empty_like(x).bernoulli_(q)``.
_RANDOM_METHODS = frozenset({"bernoulli", "bernoulli_", "uniform_"})
# Tensors shaped like their argument: a draw on one of these is one number per element.
_SHAPED_LIKE = frozenset({"empty_like", "zeros_like", "ones_like", "full_like", "rand_like"})


def dropout_function_module(cls: ast.ClassDef, names: ModuleNames) -> bool:
    """Does a module class's ``forward(self, x)`` compute element-wise dropout in training and
    the identity otherwise, through a same-file ``torch.autograd.Function`` (DeBERTa's
    ``StableDropout`` over ``XDropout``)?  Read from the code, never a name:

    - the module's forward is ``if <test>: return F.apply(x, ...)`` then ``return x``, where
      ``<test>`` is ``self.training`` or an ``and`` of it with pure reads (``self.p > 0``);
      ``F`` a same-file ``torch.autograd.Function``;
    - that Function's static ``forward(ctx, t, ...)`` returns only ``t`` itself or ``t`` with
      elements zeroed and the rest rescaled by ``1 / (1 - q)``: ``t.masked_fill(m, 0) * s``
      (``s * ...``, ``... / (1 - q)``, ``t * m * s`` alike), ``s`` bound to ``1 / (1 - q)``;
    - the mask ``m`` comes from a random draw made per element of ``t``: a ``bernoulli``/
      ``rand_like`` draw on ``torch.empty_like(t)`` (any ``*_like`` of it) in that forward, or
      in a same-file function it calls with ``t`` in the parameter the draw is shaped like.

    Its backward is the Function's own, and the module keeps its probability under its own
    attribute: a dropout to read, not one a kernel can take as it is."""
    forward = None
    for item in cls.body:
        if item.__class__ is ast.FunctionDef and item.name == "forward":
            forward = item
    if forward is None:
        return False
    # Read for every same-file module class the typer meets: the common answer, no, is given by
    # the shape of the forward's body alone, without a call (a match statement tests classes
    # and lengths in the interpreter).
    match forward.body:
        case [ast.If() as branch, ast.Return(value=ast.Name() as last)]:
            pass
        case [ast.Expr(value=ast.Constant()), ast.If() as branch, ast.Return(value=ast.Name() as last)]:
            pass
        case _:
            return False
    args = forward.args
    if len(args.args) != 2 or args.vararg or args.kwarg or args.kwonlyargs:
        return False
    x = args.args[1].arg
    if branch.orelse or last.id != x:
        return False
    if not _training_test(branch.test, names) or len(branch.body) != 1 or branch.body[0].__class__ is not ast.Return:
        return False
    call = branch.body[0].value
    if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute) and call.func.attr == "apply"
            and isinstance(call.func.value, ast.Name) and call.args and not call.keywords
            and isinstance(call.args[0], ast.Name) and call.args[0].id == x):
        return False
    fwd = function_forward(call.func.value.id, names)
    if fwd is None:
        return False
    params = [a.arg for a in fwd.args.args]
    if len(params) != len(call.args) + 1 or fwd.args.vararg or fwd.args.kwarg or fwd.args.kwonlyargs:
        return False
    return _zeroes_and_rescales(fwd, params[0], params[1], names)


def function_forward(name: str, names: ModuleNames) -> ast.FunctionDef | None:
    """The static ``forward`` of the same-file ``torch.autograd.Function`` subclass ``name``
    (what ``name.apply(...)`` runs), or None."""
    function = names.classes.get(name)
    if function is None or not any(names.resolve(b) == "torch.autograd.Function" for b in function.bases):
        return None
    fwd = next((s for s in function.body if isinstance(s, ast.FunctionDef) and s.name == "forward"), None)
    if fwd is None or not any(isinstance(d, ast.Name) and d.id == "staticmethod" for d in fwd.decorator_list):
        return None
    return fwd


def _training_test(test: ast.expr, names: ModuleNames) -> bool:
    """``self.training``, or an ``and`` with it among pure reads."""
    parts = test.values if isinstance(test, ast.BoolOp) and isinstance(test.op, ast.And) else [test]
    return (any(isinstance(p, ast.Attribute) and p.attr == "training" and isinstance(p.value, ast.Name)
                and p.value.id == "self" for p in parts) and _pure_test(test, names))


def _zeroes_and_rescales(fwd: ast.FunctionDef, ctx: str, t: str, names: ModuleNames) -> bool:
    """See :func:`dropout_function_module`: every return of ``fwd`` is ``t`` or ``t`` zeroed by a
    random per-element mask and rescaled by ``1 / (1 - q)``; at least one is the latter."""
    assigned: dict[str, list[ast.expr]] = {}  # a name or ``ctx.attr`` -> the values bound to it
    masks_from: dict[str, ast.Call] = {}  # a name unpacked from a call -> that call
    returns: list[ast.expr | None] = []
    for node in walk(fwd):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)) and node is not fwd:
            return False
        if isinstance(node, ast.Return):
            returns.append(node.value)
        elif isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]
            key = _slot(target, ctx)
            if key is not None:
                assigned.setdefault(key, []).append(node.value)
            elif isinstance(target, ast.Tuple) and isinstance(node.value, ast.Call):
                for elt in target.elts:
                    if isinstance(elt, ast.Name):
                        masks_from[elt.id] = node.value
    zeroed = False
    for value in returns:
        if isinstance(value, ast.Name) and value.id == t:
            continue
        mask = _rescaled_zeroing(value, t, ctx, assigned)
        if mask is None or not _random_mask(mask, t, assigned, masks_from, names):
            return False
        zeroed = True
    return zeroed


def _slot(target: ast.expr, ctx: str) -> str | None:
    if isinstance(target, ast.Name):
        return target.id
    if isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name) and target.value.id == ctx:
        return f"{ctx}.{target.attr}"
    return None


def _rescaled_zeroing(expr, t: str, ctx: str, assigned: dict) -> str | None:
    """The mask name of ``t.masked_fill(m, 0) * s`` (or ``t * m * s``, ``... / (1 - q)``) with
    ``s`` bound only to ``1 / (1 - q)``; None for anything else."""
    if not isinstance(expr, ast.BinOp):
        return None
    if isinstance(expr.op, ast.Div):
        zeroed, scale_ok = expr.left, _one_minus(expr.right)
    elif isinstance(expr.op, ast.Mult):
        for zeroed, scale in ((expr.left, expr.right), (expr.right, expr.left)):
            if _zeroing_mask(zeroed, t) is not None:
                break
        key = _slot(scale, ctx)
        bound = assigned.get(key, ()) if key is not None else ()
        scale_ok = bool(bound) and all(_inverse_keep(v) for v in bound)
    else:
        return None
    return _zeroing_mask(zeroed, t) if scale_ok else None


def _zeroing_mask(expr, t: str) -> str | None:
    """``m`` of ``t.masked_fill(m, 0)``, ``t * m`` or ``m * t`` (``m`` a name); else None."""
    if (isinstance(expr, ast.Call) and isinstance(expr.func, ast.Attribute) and expr.func.attr == "masked_fill"
            and isinstance(expr.func.value, ast.Name) and expr.func.value.id == t and len(expr.args) == 2
            and not expr.keywords and isinstance(expr.args[0], ast.Name)
            and isinstance(expr.args[1], ast.Constant) and expr.args[1].value == 0):
        return expr.args[0].id
    if isinstance(expr, ast.BinOp) and isinstance(expr.op, ast.Mult):
        for a, b in ((expr.left, expr.right), (expr.right, expr.left)):
            if isinstance(a, ast.Name) and a.id == t and isinstance(b, ast.Name) and b.id != t:
                return b.id
    return None


def _one_minus(expr) -> bool:
    return (isinstance(expr, ast.BinOp) and isinstance(expr.op, ast.Sub) and isinstance(expr.left, ast.Constant)
            and expr.left.value == 1)


def _inverse_keep(expr) -> bool:
    """``1 / (1 - q)`` (``1.0`` alike)."""
    return (isinstance(expr, ast.BinOp) and isinstance(expr.op, ast.Div) and isinstance(expr.left, ast.Constant)
            and expr.left.value == 1 and _one_minus(expr.right))


def _random_mask(mask: str, t: str, assigned: dict, masks_from: dict, names: ModuleNames) -> bool:
    """Is the mask name bound to a per-element random draw on ``t`` (see
    :func:`dropout_function_module`), here or in a same-file function called with ``t``?"""
    values = assigned.get(mask, ())
    if any(_draws_on(value, {t}, names) for value in values):
        return True
    calls = [v for v in values if isinstance(v, ast.Call)]
    if mask in masks_from:
        calls.append(masks_from[mask])
    return any(_helper_draws(call, t, names) for call in calls)


def _helper_draws(call: ast.Call, t: str, names: ModuleNames) -> bool:
    """Is ``call`` a call of a same-file function that makes a per-element random draw shaped
    like the parameter it is handed ``t`` in (a parameter it never rebinds)?"""
    if not isinstance(call.func, ast.Name) or call.keywords:
        return False
    helper = names.functions.get(call.func.id)
    if helper is None or helper.args.vararg or helper.args.kwonlyargs:
        return False
    params = [a.arg for a in helper.args.args]
    fed = {p for p, a in zip(params, call.args) if isinstance(a, ast.Name) and a.id == t}
    if not fed:
        return False
    rebound = {n.id for n in walk(helper) if isinstance(n, ast.Name) and not isinstance(n.ctx, ast.Load)}
    return not (fed & rebound) and any(_draws_on(stmt, fed, names) for stmt in helper.body)


def _draws_on(tree, shaped: set, names: ModuleNames) -> bool:
    """A per-element random draw on a tensor shaped like one of ``shaped``:
    ``torch.empty_like(t).bernoulli_(q)`` (``bernoulli``, ``uniform_``),
    ``torch.bernoulli(torch.full_like(t, q))``, ``torch.rand_like(t)``."""
    for node in walk(tree):
        if node.__class__ is not ast.Call:
            continue
        func = node.func
        if isinstance(func, ast.Attribute) and func.attr in _RANDOM_METHODS:
            if isinstance(func.value, ast.Call) and _like_of(func.value, shaped, names):
                return True
            continue
        fqn = names.resolve(func)
        if fqn == "torch.rand_like" and _like_of(node, shaped, names):
            return True
        if (fqn == "torch.bernoulli" and node.args and isinstance(node.args[0], ast.Call)
                and _like_of(node.args[0], shaped, names)):
            return True
    return False


def _like_of(call: ast.Call, shaped: set, names: ModuleNames) -> bool:
    fqn = names.resolve(call.func) or ""
    return (fqn.startswith("torch.") and fqn.rsplit(".", 1)[-1] in _SHAPED_LIKE and call.args
            and isinstance(call.args[0], ast.Name) and call.args[0].id in shaped)


# ----------------------------------------------------------------------------- dropout wrappers

# The functions a dropout wrapper's forward may return: element-wise dropout of the input.
_DROPOUT_FUNCTIONS = frozenset({"torch.nn.functional.dropout", "torch.dropout"})


@dataclass(frozen=True)
class DropoutWrapper:
    """A same-file module class whose forward returns, on some settings of attributes its
    ``__init__`` binds, ``F.dropout(x, p=self.<rate>, training=self.training)``: read by
    :func:`dropout_wrapper`, settled per construction by :meth:`rate`."""

    cls: ast.ClassDef
    forward: ast.FunctionDef
    # attributes the forward's tests read -> (the ``__init__`` parameter bound to it, or None,
    # and the expression: that parameter's default, or the value bound when no parameter)
    flags: tuple
    init: ast.FunctionDef
    own: frozenset  # attributes ``__init__`` binds once and nothing else binds (a rate may be one)
    bound: frozenset = frozenset()  # every attribute the class binds (a run-time flag must be one)

    def rate(self, call: ast.Call, names: ModuleNames, known=None) -> str | None:
        """The attribute holding the dropout rate when the module ``call`` builds runs the
        dropout branch: each attribute the forward's tests read is settled by what ``call``
        passes for the ``__init__`` parameter bound to it (a literal, or ``known(expr)``'s
        literal), else by that parameter's literal default; None when a test the way taken
        needs is not settled or the branch taken is not the dropout.  A dropout gated on the
        training flag (:func:`_gated_dropout`, fairseq's ``FairseqDropout``) may also run in
        eval on attributes set at run time: the rate then reads ``"<rate> or <flag> ..."``
        (:func:`rate_parts`), the flags that make it drop in eval too."""
        values = {}
        for attr, param, default in self.flags:
            expr = default
            if param is not None:
                passed = passed_argument(self.init, call, param)
                if passed is False:
                    return None  # a starred argument or a ** spread: not known
                if passed is not None:
                    expr = passed
            value = _literal(expr, known)
            if value is not _UNKNOWN:
                values[attr] = value  # (an unsettled attribute fails any test that needs it)
        x = self.forward.args.args[1].arg
        rate = _dropout_path(self.forward.body, x, values, names)
        if rate is None:
            gated = _gated_dropout(self.forward, x, values, names, self.bound)
            if gated is None or gated[0] not in self.own:
                return None
            return " or ".join(gated)
        return rate if rate in self.own else None


def rate_parts(rate: str) -> tuple:
    """(the rate attribute, the attributes that make the module drop in eval too) of a
    dropout layer's ``rate`` (DropoutWrapper.rate): ``"p or apply_during_inference"`` ->
    ``("p", ("apply_during_inference",))``."""
    first, *flags = rate.split(" or ")
    return first, tuple(flags)


_UNKNOWN = object()


def _literal(expr, known=None):
    if expr.__class__ is ast.Constant:
        return expr.value
    if expr.__class__ is ast.UnaryOp and expr.op.__class__ is ast.Not and expr.operand.__class__ is ast.Constant:
        return not expr.operand.value
    if known is not None and expr is not None:
        value = known(expr)
        if value.__class__ is ast.Constant:
            return value.value
    return _UNKNOWN


def passed_argument(init: ast.FunctionDef, call: ast.Call, param: str):
    """What ``call`` passes for ``init``'s parameter ``param`` (after ``self``): the expression,
    None when it passes nothing for it, False when that cannot be told."""
    params = [a.arg for a in init.args.posonlyargs + init.args.args][1:]
    for index, arg in enumerate(call.args):
        if arg.__class__ is ast.Starred:
            return False
        if index < len(params) and params[index] == param:
            return arg
    for keyword in call.keywords:
        if keyword.arg is None:
            return False
        if keyword.arg == param:
            return keyword.value
    return None


def forward_and_init(cls: ast.ClassDef) -> tuple:
    """The class body's own ``forward`` and ``__init__`` definitions (the last of each; None
    where it has none): what the wrapper-module readings below read."""
    forward = init = None
    for item in cls.body:
        if item.__class__ is ast.FunctionDef:
            if item.name == "forward":
                forward = item
            elif item.name == "__init__":
                init = item
    return forward, init


def dropout_wrapper(cls: ast.ClassDef, names: ModuleNames) -> DropoutWrapper | None:
    """Is ``cls`` a module of this file whose forward is a dropout of its input on some
    settings (mega's ``MegaDropout``: ``if self.is_featurewise:`` a channel dropout, ``else:
    return F.dropout(input, p=self.dropout_probability, training=self.training)``)?  Read from
    the code, never a name: an ``nn.Module`` subclass whose ``forward(self, x, ...)`` (any
    other parameter with a default) is ``if``s and ``return``s at its top; the attributes its
    tests read are bound once, in ``__init__``, to one of its parameters or to a literal, and
    bound nowhere else in the class.  Which branch runs is settled per construction
    (:meth:`DropoutWrapper.rate`)."""
    forward, init = forward_and_init(cls)
    if forward is None or forward.decorator_list:
        return None
    # (read for every same-file class a file builds: the common answer, no, from the shape of
    # the forward's top statements alone, without a walk)
    for stmt in forward.body:
        kind = stmt.__class__
        if not (kind is ast.If or kind is ast.Return or (kind is ast.Expr and stmt.value.__class__ is ast.Constant)):
            return None
    args = forward.args
    if len(args.args) < 2 or args.vararg or args.kwarg or len(args.defaults) < len(args.args) - 2 \
            or len(args.kw_defaults) != len(args.kwonlyargs) or None in args.kw_defaults or args.posonlyargs:
        return None
    if init is None or not _returns_dropout(forward.body, names):
        return None
    if len(cls.bases) != 1 or names.resolve(cls.bases[0]) != "torch.nn.Module" or cls.keywords:
        return None
    tests = [node for stmt in forward.body if stmt.__class__ is ast.If for node in ast_walk(stmt)
             if node.__class__ is ast.If]
    read = {node.attr for test in tests for node in ast_walk(test.test)
            if node.__class__ is ast.Attribute and node.value.__class__ is ast.Name and node.value.id == "self"}
    bound = _self_binds(cls, init)
    params = {a.arg for a in init.args.posonlyargs + init.args.args + init.args.kwonlyargs}
    flags = []
    for attr in sorted(read):
        values = bound.get(attr)
        if values is None or len(values) != 1 or values[0] is None:
            # the training flag, or an attribute bound again at run time: never settled, so
            # a way through the forward that needs it is none, but a gate may read it at run
            # time (_gated_dropout)
            if attr == "training" or values is not None:
                continue
            return None
        value = values[0]
        if value.__class__ is ast.Name and value.id in params:
            if _reassigned(init, value.id):
                return None
            flags.append((attr, value.id, param_default(init.args, value.id)))
        elif value.__class__ is ast.Constant:
            flags.append((attr, None, value))
        else:
            return None
    own = frozenset(attr for attr, values in bound.items() if len(values) == 1 and values[0] is not None)
    return DropoutWrapper(cls, forward, tuple(flags), init, own, frozenset(bound))


def _returns_dropout(stmts: list, names: ModuleNames) -> bool:
    """Does some ``return`` among ``stmts`` and their ``if``s return a call of a dropout
    function (the test before any walk of the class)?"""
    for stmt in stmts:
        kind = stmt.__class__
        if kind is ast.Return:
            value = stmt.value
            if value.__class__ is ast.Call and (
                    value.func.__class__ is ast.Attribute and value.func.attr == "dropout"
                    or value.func.__class__ is ast.Name and value.func.id == "dropout") \
                    and names.resolve(value.func) in _DROPOUT_FUNCTIONS:
                return True
        elif kind is ast.If and (_returns_dropout(stmt.body, names) or _returns_dropout(stmt.orelse, names)):
            return True
    return False


def _self_binds(cls: ast.ClassDef, init: ast.FunctionDef) -> dict:
    """``self.<attr>`` -> the values ``__init__``'s top-level statements bind it to; a bind
    anywhere else in the class (another method, nested code, an augmented or unpacked
    assignment) adds None."""
    bound: dict[str, list] = {}
    for node in ast_walk(cls):
        if node.__class__ is ast.Attribute and node.ctx.__class__ is ast.Store \
                and node.value.__class__ is ast.Name and node.value.id == "self":
            bound.setdefault(node.attr, []).append(None)
    for stmt in init.body:
        if stmt.__class__ is ast.Assign and len(stmt.targets) == 1:
            target = stmt.targets[0]
            if target.__class__ is ast.Attribute and target.value.__class__ is ast.Name and target.value.id == "self":
                values = bound[target.attr]
                values[values.index(None)] = stmt.value
    return bound


def _reassigned(func: ast.FunctionDef, name: str) -> bool:
    return any(node.__class__ is ast.Name and node.id == name and node.ctx.__class__ is not ast.Load
               for node in ast_walk(func))


def _settled(test: ast.expr, values: dict):
    """The truth of a forward's test on settled attributes (``self.a``, ``not ...``, ``and``/
    ``or``, ``self.a == <literal>``/``!=``/``is``/``is not``), None when it is not settled."""
    kind = test.__class__
    if kind is ast.Attribute:
        if test.value.__class__ is ast.Name and test.value.id == "self" and test.attr in values:
            return bool(values[test.attr])
        return None
    if kind is ast.UnaryOp and test.op.__class__ is ast.Not:
        inner = _settled(test.operand, values)
        return None if inner is None else not inner
    if kind is ast.BoolOp:
        parts = [_settled(v, values) for v in test.values]
        if test.op.__class__ is ast.And:
            return False if False in parts else (None if None in parts else True)
        return True if True in parts else (None if None in parts else False)
    if kind is ast.Compare and len(test.ops) == 1 and test.comparators[0].__class__ is ast.Constant:
        left = test.left
        if not (left.__class__ is ast.Attribute and left.value.__class__ is ast.Name and left.value.id == "self"
                and left.attr in values):
            return None
        a, b, op = values[left.attr], test.comparators[0].value, test.ops[0].__class__
        if op is ast.Eq:
            return a == b
        if op is ast.NotEq:
            return a != b
        if op is ast.Is:
            return a is b
        if op is ast.IsNot:
            return a is not b
    return None


def _dropout_path(stmts: list, x: str, values: dict, names: ModuleNames) -> str | None:
    """The rate attribute when the way through ``stmts`` the settled ``values`` take returns
    ``F.dropout(x, p=self.<rate>, training=self.training)`` (``torch.dropout(x, self.<rate>,
    self.training)``), nothing else run on it; None otherwise."""
    for index, stmt in enumerate(stmts):
        kind = stmt.__class__
        if kind is ast.Expr and stmt.value.__class__ is ast.Constant or kind is ast.Pass:
            continue
        if kind is ast.If:
            taken = _settled(stmt.test, values)
            if taken is None:
                return None
            return _dropout_path((stmt.body if taken else stmt.orelse) + stmts[index + 1:], x, values, names)
        if kind is ast.Return:
            return _dropout_call(stmt.value, x, names)
        return None
    return None


def _gated_dropout(forward: ast.FunctionDef, x: str, values: dict, names: ModuleNames, bound: frozenset):
    """(rate attribute, run-time flag attributes...) when the forward, the settled ``values``
    taken, is ``if <gate>: return F.dropout(x, p=self.<rate>, training=True)`` and ``x``
    otherwise (fairseq's ``FairseqDropout``: ``if self.p > 0 and (self.training or
    self.apply_during_inference)``).  The gate is an ``and`` of a test that the rate is
    positive (dropout at rate 0 is the identity), settled-true tests, and one test of the
    training flag, maybe ``or`` attributes the class binds: one settled false is left out, one
    settled true (the module drops in eval) or not an attribute of the class reads none.
    Then the module is ``F.dropout(x, p=self.<rate>, training=self.training or <flags>)``.
    None otherwise (only when ``_dropout_path``, the common reading, found none)."""
    stmts = forward.body
    while stmts and (stmts[0].__class__ is ast.Expr and stmts[0].value.__class__ is ast.Constant
                     or stmts[0].__class__ is ast.Pass):
        stmts = stmts[1:]
    if not stmts or stmts[0].__class__ is not ast.If:
        return None
    first = stmts[0]
    taken = _settled(first.test, values)
    if taken is not None:  # a settled test before the gate: the way it takes
        return _gated_dropout_in((first.body if taken else first.orelse) + stmts[1:], x, values, names, bound,
                                 forward)
    return _gated_dropout_in(stmts, x, values, names, bound, forward)


def _gated_dropout_in(stmts: list, x: str, values: dict, names: ModuleNames, bound: frozenset, forward):
    if not stmts or stmts[0].__class__ is not ast.If:
        return None
    gate, rest = stmts[0], stmts[0].orelse + stmts[1:]
    if len(gate.body) != 1 or gate.body[0].__class__ is not ast.Return or not rest \
            or rest[0].__class__ is not ast.Return or not (rest[0].value.__class__ is ast.Name
                                                           and rest[0].value.id == x):
        return None
    # ``training=self.training`` under the gate drops only in training, whatever the flag:
    # the plain dropout (no run-time flag); only a constant True drops where the flag says
    rate = _dropout_call(gate.body[0].value, x, names, forward)
    plain = rate is not None
    if not plain:
        rate = _dropout_call(gate.body[0].value, x, names, forward, gated=True)
    if rate is None:
        return None
    terms = gate.test.values if gate.test.__class__ is ast.BoolOp and gate.test.op.__class__ is ast.And \
        else [gate.test]
    flags = None
    for term in terms:
        if _rate_positive(term, rate):
            continue
        found = _training_flags(term, values, bound)
        if found is not None and flags is None:
            flags = found
            continue
        if _settled(term, values) is not True:
            return None
    return None if flags is None else (rate,) if plain else (rate, *flags)


def _self_named(node, attr: str | None = None) -> bool:
    """``self.<attr>`` (any attribute of self when ``attr`` is None), no casts stripped: the
    gated-dropout reading's own test (``_self_attr`` above strips casts for the norms)."""
    return (node.__class__ is ast.Attribute and node.value.__class__ is ast.Name and node.value.id == "self"
            and (attr is None or node.attr == attr))


def _rate_positive(term, rate: str) -> bool:
    """``self.<rate> > 0`` (``!= 0``, ``0 < self.<rate>``, ``self.<rate>``): false only where the
    dropout would be the identity anyway."""
    if _self_named(term, rate):
        return True
    if term.__class__ is not ast.Compare or len(term.ops) != 1:
        return False
    left, op, right = term.left, term.ops[0].__class__, term.comparators[0]
    if op is ast.Lt:
        left, right, op = right, left, ast.Gt
    return (op is ast.Gt or op is ast.NotEq) and _self_named(left, rate) \
        and right.__class__ is ast.Constant and right.value == 0 and right.value is not False


def _training_flags(term, values: dict, bound: frozenset) -> tuple | None:
    """The run-time flags of a test ``self.training`` or ``self.training or self.<flag> ...``:
    flags settled false are left out; None when one is settled true or is not an attribute
    the class binds (a property, a method: not read here)."""
    parts = term.values if term.__class__ is ast.BoolOp and term.op.__class__ is ast.Or else [term]
    if not any(_self_named(part, "training") for part in parts):
        return None
    flags = []
    for part in parts:
        if _self_named(part, "training"):
            continue
        if not _self_named(part) or part.attr not in bound:
            return None
        if part.attr in values:
            if values[part.attr]:
                return None
            continue
        flags.append(part.attr)
    return tuple(flags)


def _dropout_call(call, x: str, names: ModuleNames, forward=None, gated: bool = False) -> str | None:
    if call.__class__ is not ast.Call or names.resolve(call.func) not in _DROPOUT_FUNCTIONS:
        return None
    slots = {"input": None, "p": None, "training": None}
    order = ("input", "p", "training", "inplace")
    if len(call.args) > 4 or any(a.__class__ is ast.Starred for a in call.args):
        return None
    for name, arg in zip(order, call.args):
        slots[name] = arg
    for keyword in call.keywords:
        name = {"train": "training"}.get(keyword.arg, keyword.arg)
        if name not in order or slots.get(name) is not None:
            return None
        slots[name] = keyword.value
    inplace = slots.get("inplace")
    if inplace is not None and not (inplace.__class__ is ast.Constant and inplace.value is False) \
            and not _false_parameter(inplace, forward):
        return None
    tensor, rate, training = slots["input"], slots["p"], slots["training"]
    if not (tensor.__class__ is ast.Name and tensor.id == x):
        return None
    if gated:  # (inside ``self.training or self.<flag>``: ``training=self.training`` would
        # drop nothing in eval with the flag set, so only a constant True is that gate's dropout)
        if not (training.__class__ is ast.Constant and training.value is True):
            return None
    elif not _self_named(training, "training"):
        return None
    if not (rate.__class__ is ast.Attribute and rate.value.__class__ is ast.Name and rate.value.id == "self"):
        return None
    return rate.attr


def _false_parameter(value, forward) -> bool:
    """Is ``value`` a parameter of ``forward`` (after the input) that defaults to False
    (``inplace: bool = False``)?  The module's callers pass it no value where they call it
    with the input alone; an in-place dropout computes the same values."""
    if forward is None or value.__class__ is not ast.Name:
        return False
    default = param_default(forward.args, value.id)
    return default is not None and default.__class__ is ast.Constant and default.value is False


# ----------------------------------------------------------------------------- pass-throughs

_SEQUENCE_TYPES = frozenset({"tuple", "list"})


def passes_tensor_through(func: ast.FunctionDef, method: bool = False) -> bool:
    """Does ``func(x)`` return ``x`` itself whenever ``x`` is a tensor?  StripedHyena's
    ``grab_first_if_tuple``: ``if x.__class__.__name__ == "tuple": return x[0]`` ``else:
    return x`` (``return x[0] if isinstance(x, tuple) else x`` alike): each way that does not
    return ``x`` lies behind a test that ``x`` is a tuple or a list (``isinstance(x, tuple)``,
    ``type(x) is tuple``, ``x.__class__.__name__ == "tuple"``, or ``in`` a set of those
    names), false for a tensor.  One parameter (after ``self`` for a ``method``), ``if``s and
    ``return``s only.  Read from the code, never a name."""
    args = func.args
    params = args.args[1:] if method else args.args
    if len(params) != 1 or args.vararg or args.kwarg or args.kwonlyargs or args.posonlyargs or func.decorator_list:
        return False
    return _through(func.body, params[0].arg)


def _through(stmts: list, x: str) -> bool:
    """Does every way through ``stmts`` a tensor ``x`` takes return ``x``?"""
    for index, stmt in enumerate(stmts):
        kind = stmt.__class__
        if kind is ast.Expr and stmt.value.__class__ is ast.Constant:
            continue
        if kind is ast.Return:
            return _through_value(stmt.value, x)
        if kind is not ast.If:
            return False
        sequence = _sequence_test(stmt.test, x)
        if sequence is None:
            return False
        # a tensor takes the other branch, then the statements after the if
        taken = stmt.orelse if sequence else stmt.body
        return _through(taken + stmts[index + 1:], x)
    return False


def _through_value(value, x: str) -> bool:
    if value.__class__ is ast.Name:
        return value.id == x
    if value.__class__ is ast.IfExp:
        sequence = _sequence_test(value.test, x)
        if sequence is None:
            return False
        return _through_value(value.orelse if sequence else value.body, x)
    return False


def _sequence_test(test, x: str) -> bool | None:
    """True for a test that holds only when ``x`` is a tuple or list (``isinstance(x,
    tuple)``), False for its negation, None for any other test."""
    kind = test.__class__
    if kind is ast.UnaryOp and test.op.__class__ is ast.Not:
        inner = _sequence_test(test.operand, x)
        return None if inner is None else not inner
    if kind is ast.Call:
        if not (test.func.__class__ is ast.Name and test.func.id == "isinstance" and len(test.args) == 2
                and not test.keywords and _named(test.args[0], x)):
            return None
        types = test.args[1].elts if test.args[1].__class__ is ast.Tuple else [test.args[1]]
        return True if types and all(t.__class__ is ast.Name and t.id in _SEQUENCE_TYPES for t in types) else None
    if kind is not ast.Compare or len(test.ops) != 1:
        return None
    op, left, right = test.ops[0].__class__, test.left, test.comparators[0]
    if op is ast.IsNot or op is ast.NotEq:
        flipped = ast.Compare(left=left, ops=[ast.Eq()], comparators=[right])
        inner = _sequence_test(flipped, x)
        return None if inner is None else not inner
    if op is ast.Is or op is ast.Eq:
        # type(x) is tuple; x.__class__.__name__ == "tuple"
        if left.__class__ is ast.Call and left.func.__class__ is ast.Name and left.func.id == "type" \
                and len(left.args) == 1 and not left.keywords and _named(left.args[0], x):
            return True if right.__class__ is ast.Name and right.id in _SEQUENCE_TYPES else None
        if left.__class__ is ast.Attribute and left.attr == "__class__" and _named(left.value, x):
            return True if right.__class__ is ast.Name and right.id in _SEQUENCE_TYPES else None
        if _class_name_of(left, x):
            return True if right.__class__ is ast.Constant and right.value in _SEQUENCE_TYPES else None
        return None
    if op is ast.In and _class_name_of(left, x) and right.__class__ in (ast.Tuple, ast.List, ast.Set):
        return True if all(e.__class__ is ast.Constant and e.value in _SEQUENCE_TYPES for e in right.elts) else None
    return None


def _class_name_of(expr, x: str) -> bool:
    """``x.__class__.__name__`` / ``type(x).__name__``"""
    if expr.__class__ is not ast.Attribute or expr.attr != "__name__":
        return False
    inner = expr.value
    if inner.__class__ is ast.Attribute and inner.attr == "__class__":
        return _named(inner.value, x)
    return (inner.__class__ is ast.Call and inner.func.__class__ is ast.Name and inner.func.id == "type"
            and len(inner.args) == 1 and not inner.keywords and _named(inner.args[0], x))


def _named(expr, x: str) -> bool:
    return expr.__class__ is ast.Name and expr.id == x


# ----------------------------------------------------------------------------- softmax modules

_SOFTMAX_FUNCTIONS = frozenset({"torch.nn.functional.softmax", "torch.softmax"})


def softmax_module(cls: ast.ClassDef, names: ModuleNames) -> tuple | None:
    """Does a module class's ``forward(self, x)`` return the softmax of ``x`` over an axis its
    construction fixes (a float32 softmax module: ``return F.softmax(x.float(),
    dim=self.dim).type_as(x)``)?  (the axis: ``("attr", __init__'s parameter bound to the
    attribute, its default)`` or ``("literal", expr)``; whether the softmax runs in float32 and
    is cast back to ``x``'s dtype) when it does; None otherwise.  Read from the code, never a
    name: an ``nn.Module`` subclass whose forward is one ``return`` (a docstring aside), the axis
    ``self.<attr>`` bound once in ``__init__`` to one of its parameters (never rebound there)
    or a literal axis; an upcast of ``x`` (``x.float()``, ``dtype=torch.float32``) only with
    the cast back (``.type_as(x)``, ``.to(x.dtype)``, ``.type(x.dtype)``)."""
    forward, init = forward_and_init(cls)
    if forward is None or forward.decorator_list:
        return None
    body = forward.body
    if len(body) == 2 and body[0].__class__ is ast.Expr and body[0].value.__class__ is ast.Constant:
        body = body[1:]  # a docstring
    # (read for every same-file class a file builds: the common answer, no, without a walk)
    if len(body) != 1 or body[0].__class__ is not ast.Return or body[0].value.__class__ is not ast.Call:
        return None
    args = forward.args
    if len(args.args) != 2 or args.vararg or args.kwarg or args.kwonlyargs or args.posonlyargs or args.defaults:
        return None
    value = body[0].value
    if len(cls.bases) != 1 or names.resolve(cls.bases[0]) != "torch.nn.Module" or cls.keywords:
        return None
    x = args.args[1].arg
    cast = False
    back = _cast_back(value, x, names)
    if back is not None:
        value, cast = back, True
    if value.__class__ is not ast.Call:
        return None
    operands = list(value.args)
    fqn = names.resolve(value.func)
    if fqn is None and value.func.__class__ is ast.Attribute and value.func.attr == "softmax":
        operands.insert(0, value.func.value)  # x.softmax(dim)
    elif fqn not in _SOFTMAX_FUNCTIONS:
        return None
    keywords = {k.arg: k.value for k in value.keywords}
    if None in keywords or set(keywords) - {"dim", "dtype"} or not 1 <= len(operands) <= 2 \
            or (len(operands) == 2 and "dim" in keywords):
        return None
    axis = operands[1] if len(operands) == 2 else keywords.get("dim")
    upcast = False
    if "dtype" in keywords:
        dtype = names.resolve(keywords["dtype"]) if keywords["dtype"].__class__ is ast.Attribute else None
        if DTYPE_ALIASES.get(dtype, dtype) != "torch.float32":
            return None
        upcast = True
    operand = operands[0]
    if operand.__class__ is ast.Call and operand.func.__class__ is ast.Attribute and not operand.keywords \
            and names.resolve(operand.func) is None:
        method = operand.func.attr
        if (method == "float" and not operand.args) or (
                method in ("to", "type") and len(operand.args) == 1 and operand.args[0].__class__ is ast.Attribute
                and DTYPE_ALIASES.get(names.resolve(operand.args[0]), names.resolve(operand.args[0]))
                == "torch.float32"):
            operand, upcast = operand.func.value, True
    if not _named(operand, x) or upcast != cast:
        return None
    if axis is None:
        return None
    if axis.__class__ is ast.Constant and axis.value.__class__ is int or (
            axis.__class__ is ast.UnaryOp and axis.op.__class__ is ast.USub and axis.operand.__class__ is ast.Constant
            and axis.operand.value.__class__ is int):
        return ("literal", axis), cast
    if not (axis.__class__ is ast.Attribute and axis.value.__class__ is ast.Name and axis.value.id == "self"
            and init is not None):
        return None
    bound = _self_binds(cls, init).get(axis.attr)
    if bound is None or len(bound) != 1 or bound[0] is None:
        return None
    held = bound[0]
    params = {a.arg for a in init.args.args[1:] + init.args.kwonlyargs}
    if held.__class__ is ast.Name and held.id in params and not _reassigned(init, held.id):
        return ("attr", held.id, param_default(init.args, held.id)), cast
    if held.__class__ is ast.Constant or held.__class__ is ast.UnaryOp:
        return ("literal", held), cast
    return None


def _cast_back(value, x: str, names: ModuleNames):
    """``<v>.type_as(x)`` / ``<v>.to(x.dtype)`` / ``<v>.type(x.dtype)``: ``<v>``; else None."""
    if not (value.__class__ is ast.Call and value.func.__class__ is ast.Attribute and len(value.args) == 1
            and not value.keywords):
        return None
    method, arg = value.func.attr, value.args[0]
    if method == "type_as" and _named(arg, x):
        return value.func.value
    if method in ("to", "type") and arg.__class__ is ast.Attribute and arg.attr == "dtype" and _named(arg.value, x):
        return value.func.value
    return None
