"""Rotary position embedding of a prefix of the features, written per half, the rest kept.

Partial rotary (only the first ``2d`` features of each head rotate, ``d`` the width of the angle
table) written as hdit's ``apply_rotary_emb``:

    d = theta.shape[-1]
    x1, x2, x3 = x[..., :d], x[..., d : d * 2], x[..., d * 2 :]
    x1, x2 = x1.to(dtype), x2.to(dtype)          # (optional casts, also of the results)
    y1 = x1 * cos - x2 * sin
    y2 = x2 * cos + x1 * sin
    return torch.cat((y1, y2, x3), dim=-1)

The first two parts are the per-half rotation of ``x[..., :2d]`` (``x1 * c - x2 * s``, ``x2 * c
+ x1 * s``: rotate-half RoPE with the tables ``cat((c, c), -1)``, as graph._rope_halves reads the
whole-axis form) and the third is the rest of the last axis, unchanged: the prefix is split
where the third part starts, ``d`` and ``2d``, so the two halves have one width.
:func:`read` finds that from the function's own straight-line statements (each name bound only
at the top level of the function, before the concatenation; a cast of a name to a dtype keeps
what it holds, in another floating-point precision: ``.float()``, ``.half()``, ``.to(torch.float32)``,
``.to(x.dtype)``/``.type_as(x)`` of the rotated tensor itself, or ``.to(dtype)`` with ``dtype``
a torch promotion that includes a floating dtype; a cast to an integer type truncates, another
tensor's dtype may be one).  A followed name stored again after a statement that reads it (other
than a cast of itself) is not read either: the earlier reader saw another value.  Anything else -- halves cut at other points, a third
part that is not the rest of the same tensor, one table for both products, a name also bound
under an ``if`` or a loop -- is not read.  A finding form (reported; the fixer hands the
kernel whole heads, not a prefix).

The same computation is also written with two-way chunks of the last axis instead of slices
(recurrentgemma's ``_apply_rope``: the first half of each head rotates)::

    x_rope, x = torch.chunk(inputs, 2, dim=-1)
    x1, x2 = torch.chunk(x_rope, 2, dim=-1)
    return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin, x], dim=-1)

the prefix is the first chunk, the rest the second chunk of the same tensor, and the halves the
two chunks of the prefix: :func:`_read_chunked` reads it with the same straight-line rules.
"""

from __future__ import annotations

import ast

from .halves import chunk_in_two_last
from .treewalk import ast_walk

_FLOAT_METHODS = frozenset({"float", "double", "half", "bfloat16"})
_DTYPE_CASTS = frozenset({"to", "type"})
_FLOAT_DTYPES = frozenset({"torch." + n for n in ("float", "float32", "float16", "half", "bfloat16", "float64",
                                                    "double")})


def read(call: ast.Call, definition: ast.AST | None, stmt_span: tuple | None, resolve):
    """``(x, cos, sin, first)`` -- names of the tensor and of the two half tables, and the
    expression of the first rotated half -- when ``call`` is the three-part concatenation
    above; None otherwise.  ``resolve`` gives a dotted name's import path (torch's dtypes)."""
    if definition is None or stmt_span is None or not _on_last_axis(call):
        return None
    parts = call.args[0].elts
    if not all(p.__class__ is ast.Name for p in parts):
        return None
    casts = _straight_line_values(definition, stmt_span, {p.id for p in parts}, resolve)
    if casts is None:
        return None
    bound = casts.bound
    first, second, rest = (_through_casts(p.id, casts) for p in parts)
    if not (first.__class__ is ast.BinOp and first.op.__class__ is ast.Sub
            and second.__class__ is ast.BinOp and second.op.__class__ is ast.Add):
        return None
    cut = _slice(rest)
    if cut is None:
        return _read_chunked(first, second, rest, casts)
    if cut[1] is None or cut[2] is not None:
        return None
    x, width2 = cut[0], cut[1]
    if x in bound:  # (the tensor itself rebound: its slices might be of two values)
        return None
    width = _half_of(width2)
    if width is None:
        return None
    terms = [_product(e, casts, x, width, width2) for e in (first.left, first.right, second.left, second.right)]
    return _rotation(terms, casts, x, first)


def _on_last_axis(call: ast.Call) -> bool:
    """``cat((a, b, c), dim=-1)`` / ``cat([a, b, c], -1)``."""
    if len(call.args) not in (1, 2) or len(call.keywords) != 2 - len(call.args):
        return False
    parts = call.args[0]
    if parts.__class__ not in (ast.Tuple, ast.List) or len(parts.elts) != 3:
        return False
    dim = call.args[1] if len(call.args) == 2 else call.keywords[0].value
    if len(call.args) == 1 and call.keywords[0].arg not in ("dim", "axis"):
        return False
    return dim.__class__ is ast.UnaryOp and dim.op.__class__ is ast.USub \
        and dim.operand.__class__ is ast.Constant and dim.operand.value == 1


def _straight_line_values(definition: ast.AST, stmt_span: tuple, wanted: set, resolve) -> "_Casts | None":
    """Casts read over ``bound``, name -> the values it is bound to, in order, by the top-level
    statements before the one at ``stmt_span`` (``a, b = e1, e2`` binds each its own element); the names ``wanted``
    and every name those values read are followed.  None when a followed name is also bound
    anywhere else in the function (under an ``if``, in a loop, as a target of another kind), or
    stored again after a statement that reads it, unless that store is a floating-point cast of
    the name itself (``n = n.float()``): the last binding is then what every reader saw."""
    body = definition.body
    values: dict[str, list] = {}
    top_stores: dict[str, int] = {}
    for stmt in body:
        if stmt.lineno >= stmt_span[0]:
            break
        if stmt.__class__ is not ast.Assign or len(stmt.targets) != 1:
            continue
        for name, expr in _pairs(stmt.targets[0], stmt.value, resolve):
            if name.__class__ is ast.Name:
                values.setdefault(name.id, []).append(expr)
                top_stores[name.id] = top_stores.get(name.id, 0) + 1
    followed = set(wanted)
    todo = list(wanted)
    probe = _Casts(values, resolve)  # (asked only what a value is: its dtype notes are dropped)
    while todo:  # (the names the wanted values read, and theirs in turn)
        for expr in values.get(todo.pop(), ()):
            if _computed(expr, probe):
                continue  # (a table's ingredients: what it holds is not read, only that it is one)
            for node in ast_walk(expr):
                if node.__class__ is ast.Name and node.id not in followed:
                    followed.add(node.id)
                    todo.append(node.id)
    stores: dict[str, int] = {}
    for node in ast_walk(definition):
        if node.__class__ is ast.Name and node.ctx.__class__ is not ast.Load and node.id in followed:
            stores[node.id] = stores.get(node.id, 0) + 1
    if any(stores.get(n, 0) != top_stores.get(n, 0) for n in followed):
        return None
    casts = _Casts(values, resolve)
    read_before: set = set()
    for stmt in body:  # (every store now is a top-level one: is any after a reader?)
        if stmt.lineno >= stmt_span[0]:
            break
        if stmt.__class__ is ast.Assign and len(stmt.targets) == 1:
            for name, expr in _pairs(stmt.targets[0], stmt.value, resolve):
                if name.__class__ is ast.Name and name.id in read_before and casts.of(expr) != name.id:
                    return None
        read_before.update(node.id for node in ast_walk(stmt)
                           if node.__class__ is ast.Name and node.ctx.__class__ is ast.Load and node.id in followed)
    return casts


def _computed(expr, probe: "_Casts") -> bool:
    """Is ``expr`` a call other than a floating-point cast of a name or a two-way chunk (e.g.
    ``torch.sin(angles).type_as(x)``, ``theta.cos()``)?  A value computed so is held by a name
    the rotation reads as a table; the names it reads in turn (the angles, the positions, maybe
    reshaped in place) are not followed."""
    if expr.__class__ is not ast.Call:
        return False
    return probe.of(expr) is None and _halved(expr, probe.resolve) is None


def _pairs(target, value, resolve) -> list:
    """(target, value) of each name an ``=`` binds element-wise; none for other shapes.  The two
    names of ``a, b = torch.chunk(t, 2, dim=-1)`` (or ``t.chunk(2, -1)``) are bound to
    ``<that call>[0]`` and ``[1]`` (:func:`_chunk_half` reads them back)."""
    if target.__class__ is ast.Name:
        return [(target, value)]
    if target.__class__ is ast.Tuple and value.__class__ is ast.Tuple and len(target.elts) == len(value.elts):
        return list(zip(target.elts, value.elts))
    if target.__class__ is ast.Tuple and len(target.elts) == 2 and _halved(value, resolve) is not None:
        return [(t, ast.Subscript(value=value, slice=ast.Constant(value=i), ctx=ast.Load()))
                for i, t in enumerate(target.elts)]
    return []


def _halved(call, resolve) -> str | None:
    """t of ``torch.chunk(t, 2, dim=-1)`` / ``t.chunk(2, -1)`` (:func:`.halves.chunk_in_two_last`),
    t a name; None otherwise."""
    tensor = chunk_in_two_last(call, resolve)
    return tensor.id if tensor.__class__ is ast.Name else None


def _chunk_half(expr, resolve) -> tuple | None:
    """(t, i) when ``expr`` is what :func:`_pairs` binds to chunk ``i`` of ``t``."""
    if expr.__class__ is not ast.Subscript or expr.slice.__class__ is not ast.Constant:
        return None
    tensor = _halved(expr.value, resolve)
    return None if tensor is None else (tensor, expr.slice.value)


def _read_chunked(first, second, rest, casts: "_Casts"):
    """``(x, cos, sin, first)`` for the chunk spelling (module docstring): ``rest`` is chunk 1 of
    x, each product's half a chunk of chunk 0 of x."""
    cut = _chunk_half(rest, casts.resolve)
    if cut is None or cut[1] != 1 or cut[0] in casts.bound:
        return None
    x = cut[0]
    if not (first.__class__ is ast.BinOp and first.op.__class__ is ast.Sub
            and second.__class__ is ast.BinOp and second.op.__class__ is ast.Add):
        return None
    terms = [_chunk_product(e, casts, x) for e in (first.left, first.right, second.left, second.right)]
    return _rotation(terms, casts, x, first)


def _rotation(terms: list, casts: "_Casts", x: str, first):
    """``(x, cos, sin, first)`` where the four products (half index, table) of ``x1 * c - x2 *
    s`` and ``x2 * c + x1 * s`` (either order of the sum) rotate the halves by one pair of
    tables -- the sliced and the chunked spellings alike -- else None."""
    if None in terms:
        return None
    a, b, c, d = terms
    if c[0] == 0:  # x2 * c + x1 * s, either order of the sum
        c, d = d, c
    if (a[0], b[0], c[0], d[0]) != (0, 1, 1, 0) or a[1] != c[1] or b[1] != d[1] or a[1] == b[1]:
        return None
    if casts.dtype_of - {x}:  # (a cast to another tensor's dtype: maybe an integer one)
        return None
    return x, a[1], b[1], first


def _chunk_product(expr, casts: "_Casts", x: str):
    """(0 or 1, table name) for ``half * table`` (either order), half chunk 0 or 1 of a name
    holding chunk 0 of ``x`` (through names and casts)."""
    if not (expr.__class__ is ast.BinOp and expr.op.__class__ is ast.Mult):
        return None
    for half, table in ((expr.left, expr.right), (expr.right, expr.left)):
        if table.__class__ is not ast.Name or half.__class__ is not ast.Name:
            continue
        cut = _chunk_half(_through_casts(half.id, casts), casts.resolve)
        if cut is None or cut[0] == x:
            continue
        prefix = _chunk_half(_through_casts(cut[0], casts), casts.resolve)
        if prefix == (x, 0) and cut[1] in (0, 1):
            return cut[1], table.id
    return None


def _through_casts(name: str, casts: "_Casts", depth: int = 0):
    """What ``name`` holds, through ``n = n.to(dtype)`` casts of itself (and ``y = x`` copies)."""
    held = casts.bound.get(name)
    if not held or depth > 6:
        return None
    for expr in reversed(held):
        inner = casts.of(expr)
        if inner is None:
            if expr.__class__ is ast.Name:
                return _through_casts(expr.id, casts, depth + 1) or expr
            return expr
        if inner != name:
            return _through_casts(inner, casts, depth + 1) or ast.Name(id=inner, ctx=ast.Load())
    return None


class _Casts:
    """Floating-point casts of names, read against the straight-line ``bound`` values.  A cast to
    a tensor's own dtype (``.to(t.dtype)``, ``.type_as(t)``) keeps values only where ``t`` is
    floating: ``dtype_of`` collects those ``t``, which :func:`read` accepts only for the rotated
    tensor itself (its halves cut from it, or cast back to what they were cut from)."""

    __slots__ = ("bound", "resolve", "dtype_of")

    def __init__(self, bound: dict, resolve):
        self.bound = bound
        self.resolve = resolve
        self.dtype_of: set = set()

    def of(self, expr) -> str | None:
        """n for ``n.float()``, ``n.to(<floating dtype>)``, ``n.type_as(t)``, n a name; None
        otherwise (an integer dtype, a dtype of unknown kind, other arguments)."""
        if expr.__class__ is not ast.Call or expr.func.__class__ is not ast.Attribute \
                or expr.func.value.__class__ is not ast.Name:
            return None
        method, args = expr.func.attr, expr.args
        if expr.keywords:
            if method not in _DTYPE_CASTS or args or len(expr.keywords) != 1 or expr.keywords[0].arg != "dtype":
                return None
            args = [expr.keywords[0].value]
        if method in _FLOAT_METHODS and not args:
            return expr.func.value.id
        if len(args) != 1:
            return None
        if method == "type_as" and args[0].__class__ is ast.Name:
            self.dtype_of.add(args[0].id)
            return expr.func.value.id
        if method in _DTYPE_CASTS and self._floating(args[0], 0):
            return expr.func.value.id
        return None

    def _floating(self, dtype, depth: int) -> bool:
        """``torch.float32`` and the like, ``t.dtype`` (t noted), a name bound to one of these,
        or ``functools.reduce(torch.promote_types, (..., <floating dtype>, ...))``: a promotion
        with a floating dtype is floating and no narrower than any of its inputs."""
        if dtype.__class__ is ast.Attribute:
            if dtype.attr == "dtype" and dtype.value.__class__ is ast.Name:
                self.dtype_of.add(dtype.value.id)
                return True
            return self.resolve(dtype) in _FLOAT_DTYPES
        if dtype.__class__ is ast.Name:
            held = self.bound.get(dtype.id)
            return bool(held) and depth < 4 and self._floating(held[-1], depth + 1)
        if dtype.__class__ is ast.Call and len(dtype.args) == 2 and not dtype.keywords \
                and self.resolve(dtype.func) == "functools.reduce" \
                and self.resolve(dtype.args[0]) == "torch.promote_types" \
                and dtype.args[1].__class__ in (ast.Tuple, ast.List):
            return any(e.__class__ is ast.Attribute and self.resolve(e) in _FLOAT_DTYPES
                       for e in dtype.args[1].elts)
        return False


def _slice(expr):
    """(x, lower, upper) of ``x[..., lower:upper]``, x a name; None otherwise."""
    if expr.__class__ is not ast.Subscript or expr.value.__class__ is not ast.Name:
        return None
    index = expr.slice
    if not (index.__class__ is ast.Tuple and len(index.elts) == 2 and index.elts[0].__class__ is ast.Constant
            and index.elts[0].value is Ellipsis and index.elts[1].__class__ is ast.Slice
            and index.elts[1].step is None):
        return None
    part = index.elts[1]
    return expr.value.id, part.lower, part.upper


def doubled(node):
    """d of ``d * 2`` or ``2 * d`` (2 an int); None otherwise (also model's pre-filter test for a
    rotary prefix's end)."""
    if node.__class__ is not ast.BinOp or node.op.__class__ is not ast.Mult:
        return None
    left, right = node.left, node.right
    for d, two in ((left, right), (right, left)):
        if two.__class__ is ast.Constant and two.value == 2 and two.value.__class__ is int:
            return d
    return None


def _half_of(width2):
    """d of ``d * 2``, ``2 * d`` or ``d + d``; None otherwise."""
    if width2.__class__ is not ast.BinOp:
        return None
    if width2.op.__class__ is ast.Mult:
        return doubled(width2)
    left, right = width2.left, width2.right
    if width2.op.__class__ is ast.Add and ast.dump(left) == ast.dump(right):
        return left
    return None


def _product(expr, casts: _Casts, x: str, width, width2):
    """(0 or 1, table name) for ``half * table`` (either order): half 0 is ``x[..., :d]``, half 1
    ``x[..., d:2d]`` (through names and casts)."""
    if not (expr.__class__ is ast.BinOp and expr.op.__class__ is ast.Mult):
        return None
    for half, table in ((expr.left, expr.right), (expr.right, expr.left)):
        if table.__class__ is not ast.Name or half.__class__ is not ast.Name:
            continue
        cut = _slice(_through_casts(half.id, casts))
        if cut is None or cut[0] != x:
            continue
        if cut[1] is None and cut[2] is not None and ast.dump(cut[2]) == ast.dump(width):
            return 0, table.id
        if cut[1] is not None and cut[2] is not None and ast.dump(cut[1]) == ast.dump(width) \
                and ast.dump(cut[2]) == ast.dump(width2):
            return 1, table.id
    return None
