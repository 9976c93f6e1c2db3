"""A bias-free ``nn.Linear`` subclass whose forward computes the Linear with dtype casts on
every way out (research121, session 46).

A head written to accumulate its logits in float32 (``F.linear(x.float(), w.float())``, or on
CUDA ``torch.mm(x.reshape(-1, d), w.T, out_dtype=torch.float32)`` reshaped back to ``x``'s
leading axes) is still a Linear of its input with its own weight: the layer typer reads it as
one (reported, not fixed: the kernel would not run its casts as written).  Read here, apart
from ``layers.py``: a forward of local names bound to casts of the input or of the weight,
``if`` statements (no ``else``) and ``with`` blocks, every ``return`` the Linear's output.

Only a base built with ``bias=False`` (a literal in ``super().__init__``): the forward then
needs no bias operand, and one that reads ``self.bias`` anywhere is not this form.
"""

from __future__ import annotations

import ast

from .class_syntax import is_docstring, methods, super_init
from .treewalk import ast_walk

#: the kinds a value of the forward can have: the input (cast), the own weight (cast), the
#: weight transposed, the input flattened to rows (``x.reshape(-1, d)``), the rows' product,
#: and the Linear's output
INPUT, WEIGHT, WEIGHT_T, ROWS, ROWS_OUT, OUTPUT = "x", "w", "wT", "rows", "rows_out", "y"

_LINEAR = "torch.nn.functional.linear"
#: dtypes a cast to keeps every float32 value (review63: only such casts, or one back to the
#: input's or the weight's own dtype, are the head's bookkeeping; ``.half()``, ``.to(torch.int8)``,
#: ``.type(torch.bool)`` round the logits or the weight and make another computation)
_WIDE = frozenset({"torch.float32", "torch.float", "torch.float64", "torch.double"})
_PRODUCTS = frozenset({"torch.mm", "torch.matmul"})


def _own(node, attr: str) -> bool:
    return (isinstance(node, ast.Attribute) and node.attr == attr and isinstance(node.value, ast.Name)
            and node.value.id == "self")


def _bias_free(cls: ast.ClassDef) -> bool:
    """``__init__`` calls ``super().__init__(..., bias=False)`` (a literal; positionally the
    third argument), and nothing in the class reads ``self.bias``."""
    init = methods(cls).get("__init__")
    if init is None:
        return False
    calls = [c for c in map(super_init, init.body) if c is not None]
    if len(calls) != 1:
        return False
    call = calls[0]
    value = next((k.value for k in call.keywords if k.arg == "bias"), None)
    if value is None and len(call.args) >= 3:
        value = call.args[2]
    if not (isinstance(value, ast.Constant) and value.value is False):
        return False
    return not any(_own(node, "bias") for node in ast_walk(cls))


def _minus_one(node) -> bool:
    return ((isinstance(node, ast.Constant) and node.value == -1)
            or (isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub)
                and isinstance(node.operand, ast.Constant) and node.operand.value == 1))


def _leading_axes(node, env: dict) -> bool:
    """``*<input>.shape[:-1]``: the input's leading axes."""
    if not isinstance(node, ast.Starred):
        return False
    sub = node.value
    if not (isinstance(sub, ast.Subscript) and isinstance(sub.slice, ast.Slice) and sub.slice.lower is None
            and sub.slice.step is None and _minus_one(sub.slice.upper)):
        return False
    shape = sub.value
    return (isinstance(shape, ast.Attribute) and shape.attr == "shape"
            and _kind(shape.value, env, None) == INPUT)


def _cast_operand(arg, env: dict, names) -> bool:
    """An operand of ``.to``/``.type`` that keeps the values: a float32/float64 dtype, the
    input's or the weight's ``dtype`` or ``device`` (or the tensor itself), a device string."""
    if isinstance(arg, ast.Attribute) and arg.attr in ("dtype", "device"):
        return _kind(arg.value, env, names) in (INPUT, WEIGHT)
    if isinstance(arg, ast.Constant):
        return isinstance(arg.value, str) and arg.value.split(":")[0] in ("cpu", "cuda", "mps", "xpu")
    if _kind(arg, env, names) in (INPUT, WEIGHT):
        return True
    return names is not None and names.resolve(arg) in _WIDE


def _strip_value_casts(expr, env: dict, names):
    """The value a chain of casts that keep its values converts; the cast itself (not
    stripped) at the first one that may round them."""
    while isinstance(expr, ast.Call) and isinstance(expr.func, ast.Attribute):
        attr = expr.func.attr
        if attr in ("float", "double"):
            if expr.args or expr.keywords:
                return expr
        elif attr in ("to", "type", "type_as"):
            operands = list(expr.args) + [k.value for k in expr.keywords if k.arg in ("dtype", "device", "other")]
            others = [k for k in expr.keywords if k.arg not in ("dtype", "device", "other", "non_blocking", "copy")]
            if not operands or others or not all(_cast_operand(a, env, names) for a in operands):
                return expr
        else:
            return expr
        expr = expr.func.value
    return expr


def _kind(expr, env: dict, names) -> str | None:
    """The kind of ``expr`` (one of the constants above), None for anything else."""
    expr = _strip_value_casts(expr, env, names)
    if isinstance(expr, ast.Name):
        return env.get(expr.id)
    if _own(expr, "weight"):
        return WEIGHT
    if isinstance(expr, ast.Attribute) and expr.attr in ("T", "mT"):
        return WEIGHT_T if _kind(expr.value, env, names) == WEIGHT else None
    if isinstance(expr, ast.BinOp) and isinstance(expr.op, ast.MatMult):
        return _product(_kind(expr.left, env, names), _kind(expr.right, env, names))
    if not isinstance(expr, ast.Call):
        return None
    func = expr.func
    if isinstance(func, ast.Attribute):
        receiver = _kind(func.value, env, names)
        if func.attr == "t" and not expr.args and not expr.keywords:
            return WEIGHT_T if receiver == WEIGHT else None
        if func.attr in ("reshape", "view") and not expr.keywords:
            if receiver == INPUT and len(expr.args) == 2 and _minus_one(expr.args[0]):
                return ROWS  # x.reshape(-1, d): the input's rows
            if (receiver == ROWS_OUT and len(expr.args) == 2 and _leading_axes(expr.args[0], env)
                    and not isinstance(expr.args[1], ast.Starred)):
                return OUTPUT  # the rows' product back on the input's leading axes
            return None
    if names is None:
        return None
    fqn = names.resolve(func)
    if fqn == _LINEAR:
        keywords = {k.arg: k.value for k in expr.keywords}
        if set(keywords) - {"bias"} or len(expr.args) > 2 or len(expr.args) + len(keywords) < 2:
            return None
        if len(expr.args) != 2:
            return None
        bias = keywords.get("bias")
        if bias is not None and not (isinstance(bias, ast.Constant) and bias.value is None):
            return None
        if _kind(expr.args[0], env, names) == INPUT and _kind(expr.args[1], env, names) == WEIGHT:
            return OUTPUT
        return None
    if (fqn in _PRODUCTS and len(expr.args) == 2 and all(k.arg == "out_dtype" for k in expr.keywords)
            and all(names.resolve(k.value) in _WIDE for k in expr.keywords)):
        return _product(_kind(expr.args[0], env, names), _kind(expr.args[1], env, names))
    return None


def _product(left: str | None, right: str | None) -> str | None:
    if right != WEIGHT_T:
        return None
    return {INPUT: OUTPUT, ROWS: ROWS_OUT}.get(left)


def _autocast_on(expr, names) -> bool:
    """An autocast context not literally ``enabled=False``: the product inside it may run in
    float16/bfloat16 (review63)."""
    if not isinstance(expr, ast.Call) or names is None:
        return False
    fqn = names.resolve(expr.func) or ""
    if not fqn.rsplit(".", 1)[-1] == "autocast":
        return False
    enabled = next((k.value for k in expr.keywords if k.arg == "enabled"), None)
    return not (isinstance(enabled, ast.Constant) and enabled.value is False)


def _body_returns_linear(body: list, env: dict, names) -> bool | None:
    """True when every way out of ``body`` returns the Linear's output; None when the body
    falls through (its bindings left in ``env``); False for anything else."""
    for stmt in body:
        if is_docstring(stmt):
            continue
        if isinstance(stmt, ast.Return):
            return stmt.value is not None and _kind(stmt.value, env, names) == OUTPUT
        if isinstance(stmt, ast.Assign):
            if len(stmt.targets) != 1 or not isinstance(stmt.targets[0], ast.Name):
                return False
            kind = _kind(stmt.value, env, names)
            if kind is None:
                return False
            env[stmt.targets[0].id] = kind
            continue
        if isinstance(stmt, ast.With):
            if any(item.optional_vars is not None or _autocast_on(item.context_expr, names) for item in stmt.items):
                return False
            inner = _body_returns_linear(stmt.body, env, names)
            if inner is not None:
                return inner
            continue
        if isinstance(stmt, ast.If) and not stmt.orelse:
            if any(isinstance(n, (ast.NamedExpr, ast.Lambda)) for n in ast_walk(stmt.test)):
                return False
            arm = dict(env)
            inner = _body_returns_linear(stmt.body, arm, names)
            if inner is False:
                return False
            if inner is None:
                # an arm that falls through: each name it binds keeps the kind it had
                if any(env.get(k) != v for k, v in arm.items()):
                    return False
            continue
        return False
    return None


def cast_linear(cls: ast.ClassDef, forward, names) -> bool:
    """Is ``forward`` (of the ``nn.Linear`` subclass ``cls``) the Linear's computation of its
    input with its own weight on every way out, dtype casts around them allowed, the base built
    bias-free?"""
    params = [a.arg for a in forward.args.posonlyargs + forward.args.args]
    if len(params) != 2 or forward.args.vararg or forward.args.kwarg or forward.args.kwonlyargs:
        return False
    if not _bias_free(cls):
        return False
    return _body_returns_linear(forward.body, {params[1]: INPUT}, names) is True
