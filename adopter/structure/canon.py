"""Canonical operations: one graph node per computation, whatever its spelling.

The table is data (:mod:`adopter.structure.ops`); this module answers the questions the graph
builder, the matcher, the pre-filters and the synthesizers ask of it:

* which operation a function, method, operator, attribute or module class computes
  (:meth:`Table.function`, :meth:`Table.method`, ...), and which a layer built by given
  constructors computes -- definitely, or possibly (an activation chosen at run time);
* how a call's arguments read in the canonical form (:func:`normalise`): tensor inputs
  positional, everything else by keyword, a module's constructor arguments merged in;
* the words a file or function must mention for an operation to occur (:meth:`Table.words`);
* what an ``einsum`` equation, a ``permute`` or an ``einops.rearrange`` pattern computes, when
  it is a matrix product or a transpose of the last two axes.

Nothing here knows rules; nothing here imports torch.
"""

from __future__ import annotations

import ast
import re
from ..records import dataclass

from .names import names_match
from .ops import ACTIVATION_FACTORIES, ACTIVATION_TABLES, CASTS, DTYPE_ALIASES, OPS, RUNTIME_PARAM, SOFTMAX


# canon.rotate_half is read off a concatenation (graph._rotate_half): its spellings (einops'
# ``rearrange([-x2, x1], "h ... d -> ... (h d)")`` is one, canon.rearrange_concatenates_last), and
# the pseudo-word (not an identifier) that structure.model adds to what a function mentions when
# its text has a call whose first argument is a tuple or list with a negated first element.
ROTATE_HALF_CALLS = frozenset({"cat", "concat", "concatenate", "rearrange"})
NEG_PAIR = "(-"
# canon.rope_halves is read off a concatenation too (graph._rope_halves): the pseudo-word that
# structure.model adds when one function's text has a call whose first argument is a tuple or
# list and takes halves of a last axis the way the builder reads them (a slice ``x[..., :n]``
# whose bound is a floor division, or ``chunk`` / ``unbind``).
HALF_PAIR = "(//"
# canon.lead2 is read off a subscript (``x[:, 1:]``, ``x[:-1]``; graph.FlowBuilder._value): the
# pseudo-word that structure.model adds where a function's text slices one or two leading axes.
LEAD_SLICE = "[:"
# canon.split_member is read off a subscript of a name bound to ``x.reshape(*x.shape[:k], n, V)``
# (graph._split_last_axis): the pseudo-word that a function whose text has such a starred
# split mentions (model._mentions), so that a root without one is skipped before its graph is built
SPLIT_SHAPE = "(*[:"

@dataclass(frozen=True)
class Op:
    name: str
    functions: frozenset = frozenset()
    methods: frozenset = frozenset()
    inplace: frozenset = frozenset()
    operators: frozenset = frozenset()
    attributes: tuple = ()  # (attribute, ((param, value), ...))
    modules: tuple = ()  # (class fqn, (ctor positional parameter names))
    signature: tuple = ()
    method_signature: tuple = ()
    inputs: int = 1
    commutative: bool = False
    dims: tuple = ()
    unordered: tuple = ()
    activation_keys: frozenset = frozenset()
    runtime: bool = False
    renames: tuple = ()  # (function, ((spelled, canonical), ...))

    def rename(self, fqn: str | None) -> dict[str, str]:
        for name, pairs in self.renames:
            if fqn is not None and names_match(name, fqn):
                return dict(pairs)
        return {}


@dataclass(frozen=True)
class View:
    """A call read in canonical form: inputs positional, other arguments by keyword.

    Spans are where the code writes each value (None: a value the call site does not write,
    such as a module constructor's argument or an implied ``dim``)."""

    args: tuple
    kwargs: tuple
    arg_spans: tuple
    kwarg_spans: tuple
    # Per argument, how the code wrote it when that is a transpose of the last two axes in the
    # same expression (``k.transpose(-1, -2)``, or the ``k`` of ``einsum("...id,...jd", q, k)``):
    # ``(span of the transposed value, (dim0, dim1))``; None otherwise.
    origins: tuple = ()
    # Per argument of a product, the dims an einsum broadcasts it over (canon.einsum_broadcast:
    # the operand reads as ``x.unsqueeze(d)`` for each, in order); () when it has every axis.
    broadcast: tuple = ()
    # Of a product an einsum computes with its axes moved (canon.einsum_product): the
    # permutation applied to each written operand (in view order) before the product, then
    # the one applied to the product to give the written output; () or None where none.
    moves: tuple = ()
    # Of a matrix-vector product an einsum computes (canon.einsum_vector): the dims at which the
    # written output is the product squeezed (the vector's size-1 row axis); () for a product.
    squeezed: tuple = ()
    # Of an einsum read as attention over grouped axes (canon.einsum_grouped, verified by
    # structure/groups.py): that reading, ``("scores" | "values", ...)``; () for a product.
    # The product of the flattened groups is what it computes: the fixer declines it.
    grouped: tuple = ()

    @property
    def out_move(self) -> tuple | None:
        """The permutation that gives an einsum's written output from the product it computes
        with the axes moved (``moves[2]``); None where the output is written unmoved."""
        return self.moves[2] if self.moves else None


def ref(value):
    """``value`` (an argument of a node or a :class:`View`) when it is a value of the flow (a
    graph ``Ref``: it has a ``key`` and the ``text`` that wrote it), else None (a literal, an
    expression the graph keeps as text).  Duck-typed so the modules that read nodes need not
    import the graph."""
    return value if hasattr(value, "key") and hasattr(value, "text") else None


def _op(name: str, data: dict) -> Op:
    signature = tuple(data.get("signature", ()))
    return Op(
        name=name,
        functions=frozenset({name, *data.get("functions", ())}) if "." in name else frozenset(data.get("functions", ())),
        methods=frozenset(data.get("methods", ())),
        inplace=frozenset(data.get("inplace", ())),
        operators=frozenset(data.get("operators", ())),
        attributes=tuple((a, tuple(v.items())) for a, v in data.get("attributes", {}).items()),
        modules=tuple((cls, tuple(params)) for cls, params in data.get("modules", {}).items()),
        signature=signature,
        method_signature=tuple(data.get("method_signature", signature[1:])),
        inputs=data.get("inputs", 1),
        commutative=bool(data.get("commutative", False)),
        dims=tuple(data.get("dims", ())),
        unordered=tuple(data.get("unordered", ())),
        activation_keys=frozenset(data.get("activation_keys", ())),
        runtime=bool(data.get("runtime", False)),
        renames=tuple((f, tuple(m.items())) for f, m in data.get("renames", {}).items()),
    )


class Table:
    """Indexes over the operation table (built once per process)."""

    def __init__(self, ops: dict[str, dict]):
        self.ops = {name: _op(name, data) for name, data in ops.items()}
        self._functions: dict[str, Op] = {}
        self._methods: dict[str, Op] = {}
        self._inplace: dict[str, Op] = {}
        self._operators: dict[str, Op] = {}
        self._attributes: dict[str, tuple[Op, tuple]] = {}
        self._modules: dict[str, tuple[Op, tuple]] = {}
        self._keys: dict[str, Op] = {}
        for op in self.ops.values():
            for fqn in op.functions:
                self._functions[fqn] = op
            for name in op.methods:
                self._methods[name] = op
            for name in op.inplace:
                self._inplace[name] = op
            for sym in op.operators:
                self._operators[sym] = op
            for attr, values in op.attributes:
                self._attributes[attr] = (op, values)
            for cls, params in op.modules:
                self._modules[cls] = (op, params)
            for key in op.activation_keys:
                self._keys[key] = op
        self.runtime = frozenset(op.name for op in self.ops.values() if op.runtime)
        self._words: dict[str, frozenset[str]] = {}
        self._relative: dict[str, object] = {}  # relative names (``.activations.ACT2FN``) looked up once

    # -- what a spelling computes ------------------------------------------------
    def function(self, fqn: str | None) -> Op | None:
        if not fqn:
            return None
        op = self._functions.get(fqn)
        if op is None and fqn.startswith("."):  # a relative import of a known module
            if fqn not in self._relative:
                self._relative[fqn] = next((o for name, o in self._functions.items() if names_match(name, fqn)), None)
            op = self._relative[fqn]
        return op

    def method(self, name: str) -> Op | None:
        return self._methods.get(name)

    def inplace(self, name: str) -> Op | None:
        return self._inplace.get(name)

    def operator(self, symbol: str) -> Op | None:
        return self._operators.get(symbol)

    def attribute(self, name: str) -> tuple[Op, tuple] | None:
        return self._attributes.get(name)

    def module(self, fqn: str | None) -> tuple[Op, tuple] | None:
        if not fqn:
            return None
        found = self._modules.get(fqn)
        if found is None and fqn.startswith("."):
            key = "module:" + fqn
            if key not in self._relative:
                self._relative[key] = next((v for name, v in self._modules.items() if names_match(name, fqn)), None)
            found = self._relative[key]
        return found

    def activation_key(self, key: str) -> Op | None:
        return self._keys.get(key)

    def canonical(self, name: str) -> Op | None:
        """The operation a rule's name denotes: a function, a module class or an operator."""
        return self.ops.get(name) or self.function(name) or (self.module(name) or (None,))[0] \
            or self.operator(name)

    # -- what to look for in text --------------------------------------------------
    def words(self, name: str) -> frozenset[str]:
        """Identifiers one of which code must mention to compute ``name`` (empty: an
        operator spelling needs none, so no word can be required)."""
        words = self._words.get(name)
        if words is None:
            op = self.ops[name]
            if op.operators or name in ("canon.member", "canon.first", "canon.rows"):
                # (canon.member, ``logits[:, k]``, canon.first, ``outputs[0]``, and canon.rows,
                # ``logits[..., :-1, :]``: subscripts, which mention no word of their own)
                words = frozenset()
            else:
                found = {f.rsplit(".", 1)[-1] for f in op.functions} | set(op.methods) | set(op.inplace)
                found |= {cls.rsplit(".", 1)[-1] for cls, _ in op.modules}
                found |= {attr for attr, _ in op.attributes}
                if op.activation_keys:  # (getattr(nn, name)(): a torch.nn class named at run time)
                    found |= {t for t in ACTIVATION_TABLES} | set(ACTIVATION_FACTORIES) | {"getattr"}
                if op.name == "torch.matmul":
                    found.add("einsum")
                if op.name == "torch.transpose":
                    found |= {"permute", "rearrange", "einsum"}  # an einsum operand may be transposed
                    # one query's squeezed probabilities unsqueezed at the other of the two last
                    # axes: their transpose (structure/singletons.py)
                    found.add("unsqueeze")
                if op.name == "torch.Tensor.to":
                    found |= set(CASTS) | {"type_as"}
                if op.name == "torch.Tensor.masked_fill":
                    found.add("where")
                if op.name == SOFTMAX:
                    found.add("logsumexp")  # exp(x - logsumexp(x, dim, keepdim=True)) (graph._logsumexp_shift)
                if op.name == "torch.mean":
                    found.add("sum")  # x.pow(2).sum(-1) / x.shape[-1] (graph._mean_of_sum)
                if op.name == "canon.tied_logits":
                    found.add("weight")  # self.embed.weight
                if op.name == "canon.lead2":
                    found.add(LEAD_SLICE)
                if op.name == "canon.split_member":
                    found = {SPLIT_SHAPE}  # (a subscript: no word of its own but the split's)
                if op.name == "canon.members":
                    found.add("stack")  # torch.stack([head(h) for head in self.heads], dim=1)
                if op.name == "canon.class_axis_second":
                    found.add("rearrange")  # einops.rearrange(logits, "b l n d -> b d (l n)")
                if op.name in ("canon.rotate_half", "canon.rope_halves"):
                    found |= ROTATE_HALF_CALLS
                if op.name == "canon.rotate_half":
                    found.add("neg_")  # a half negated in place (canon.swapped_halves_negated)
                if op.name == "canon.softmax_shift":
                    # x - x.amax(-1, keepdim=True) (or .max(...).values), a floor at the dtype's
                    # minimum (torch.max / torch.maximum / clamp / clamp_min): the words that
                    # spell it (a pattern that requires the shift needs one of them)
                    found |= {"amax", "max", "maximum", "clamp", "clamp_min"}
                words = frozenset(found)
            self._words[name] = words
        return words

    def module_classes(self, name: str) -> frozenset[str]:
        return frozenset(cls for cls, _ in self.ops[name].modules)

    # -- layers ---------------------------------------------------------------------
    def layer_ops(self, ctors) -> tuple[str, frozenset[str]]:
        """(definite operation, operations it may compute at run time) of a layer built by
        ``ctors`` (every constructor one branch of ``__init__`` may bind)."""
        definite: set[str] = set()
        maybe: set[str] = set()
        unknown = held = False
        for ctor in ctors:
            ops = self._ctor_ops(ctor)
            if ops is None:
                # Another branch binds something else: a value of unknown kind (``config.hidden_act``
                # itself) or another class (``nn.Identity()`` when no activation is configured).
                # Then only an activation may be chosen at run time.
                unknown = True
                continue
            kind, names = ops
            (maybe if kind == "maybe" else definite).update(names)
            if kind == "held":
                held = True
        if not unknown and not maybe and len(definite) == 1:
            return next(iter(definite)), frozenset()
        if held and not maybe and len(definite) == 1:
            # partial(F.softmax, dim=-1) if not flag else OtherFn() (mega's attention function):
            # the softmax whenever the attribute holds the partial, which the fix tests at run
            # time (synth/sdpa.py _held_partial); graph.FlowBuilder reads the partial's dim
            return next(iter(definite)), frozenset()
        # Chosen at run time (a table key, a different class per branch, or a branch binding a
        # value of unknown kind beside an activation): only activations may be, and then the
        # layer *may* compute each of them.
        possible = definite | maybe
        if not possible or possible - self.runtime:
            return "", frozenset()
        return "", frozenset(possible)

    def lookup_ops(self, fqn: str, key: ast.expr | None) -> frozenset[str]:
        """The operations an activation looked up and called in place may compute
        (``ACT2FN[config.act](x)``, ``ACT2FN["gelu"](x)``); empty when ``fqn`` is no table."""
        found = self._lookup_ops(fqn, key)
        return frozenset(found[1]) if found is not None else frozenset()

    def _lookup_ops(self, fqn: str, key: ast.expr | None):
        if fqn == "torch.nn":  # getattr(nn, key)(): the class of torch.nn the key names
            if isinstance(key, ast.Constant) and isinstance(key.value, str):
                found = self.module("torch.nn." + key.value)
                return ("definite", {found[0].name}) if found is not None else None
            return ("maybe", set(self.runtime))
        if fqn == "torch.nn.functional":  # getattr(F, key): the function the key names
            if isinstance(key, ast.Constant) and isinstance(key.value, str):
                op = self.function("torch.nn.functional." + key.value)
                return ("definite", {op.name}) if op is not None else None
            return ("maybe", set(self.runtime))
        last = fqn.rsplit(".", 1)[-1]
        if last not in ACTIVATION_TABLES and last not in ACTIVATION_FACTORIES:
            return None
        if isinstance(key, ast.Constant) and isinstance(key.value, str):
            op = self.activation_key(key.value)
            return ("definite", {op.name}) if op is not None else None
        return ("maybe", set(self.runtime))

    def _ctor_ops(self, ctor):
        if getattr(ctor, "function", False):  # F.gelu held as a value: calling it is that activation
            op = self.function(ctor.fqn)
            if op is not None and op.name == SOFTMAX and any(
                    name == "dim" for name, _ in ctor.kwargs):
                return "held", {op.name}  # partial(F.softmax, dim=-1): a softmax over that dim
            return ("definite", {op.name}) if op is not None and op.name in self.runtime else None
        if ctor.fqn == RUNTIME_PARAM:
            # a required parameter other files pass, called as a layer: any activation
            return "maybe", {op for op in self.runtime if op != "torch.nn.functional.cross_entropy"}
        last = ctor.fqn.rsplit(".", 1)[-1]
        if ctor.table or last in ACTIVATION_FACTORIES:
            return self._lookup_ops(ctor.fqn, ctor.args[0] if ctor.args else None)
        found = self.module(ctor.fqn)
        if found is None:
            return None
        return "definite", {found[0].name}


TABLE = Table(OPS)


# ----------------------------------------------------------------------------- arguments


def normalise(op: Op, form: str, args, kwargs, arg_spans, kwarg_spans, fqn: str | None = None) -> View | None:
    """Read a call of ``op`` in canonical form; None when it cannot be read (a starred
    argument, more positional arguments than the signature has).

    ``form`` is ``"function"`` (``args`` start with the inputs), ``"method"`` (``args[0]`` is the
    receiver) or ``"operator"``."""
    if form == "operator":
        return View(tuple(args), (), tuple(arg_spans), ())
    if form == "method":
        params = op.method_signature
        positional = list(args[1:])
        head = [args[0]]
        head_spans = [arg_spans[0] if arg_spans else None]
        rest_spans = list(arg_spans[1:])
        more = op.inputs - 1
        head += positional[:more]
        head_spans += rest_spans[:more]
        positional, rest_spans = positional[more:], rest_spans[more:]
        params = params[more:]
    else:
        params = op.signature[op.inputs:]
        head, head_spans = list(args[:op.inputs]), list(arg_spans[:op.inputs])
        positional, rest_spans = list(args[op.inputs:]), list(arg_spans[op.inputs:])
        if len(head) < op.inputs and kwargs:
            # inputs passed by keyword (``F.linear(input=x, weight=w)``) are inputs all the same
            head, head_spans, kwargs, kwarg_spans = _keyword_inputs(op, head, head_spans, kwargs, kwarg_spans)
    if len(positional) > len(params):
        return None
    renames = op.rename(fqn)
    if "dim" in op.dims and "axis" not in params:
        # torch reads ``axis=`` as ``dim=`` (its NumPy alias): ``torch.mean(x, axis=-1)``
        renames = {"axis": "dim", **renames}
    if "keepdim" in params and "keepdims" not in params:
        # and ``keepdims=`` as ``keepdim=`` (NumPy's spelling): ``torch.mean(x, axis=-1, keepdims=True)``
        renames = {"keepdims": "keepdim", **renames}
    out_kwargs = []
    out_spans = []
    for name, value, span in zip(params, positional, rest_spans):
        out_kwargs.append((name, value))
        out_spans.append((span, span))
    for (name, value), spans in zip(kwargs, kwarg_spans):
        out_kwargs.append((renames.get(name, name), value))
        out_spans.append(spans)
    names = [name for name, _ in out_kwargs]
    if len(set(names)) != len(names):
        return None
    view = View(tuple(head), tuple(out_kwargs), tuple(head_spans), tuple(out_spans))
    return _unordered(op, view)


def _keyword_inputs(op: Op, head: list, head_spans: list, kwargs, kwarg_spans):
    """Move the leading inputs a call passes by keyword into ``head``, in the signature's
    order, as far as each is given; the other keywords stay as they are."""
    given = {name: i for i, (name, _) in enumerate(kwargs)}
    taken: set[int] = set()
    for name in op.signature[len(head):op.inputs]:
        i = given.get(name)
        if i is None:
            break
        head.append(kwargs[i][1])
        spans = kwarg_spans[i] if i < len(kwarg_spans) else None
        head_spans.append(spans[0] if spans else None)  # (value, whole keyword)
        taken.add(i)
    if not taken:
        return head, head_spans, kwargs, kwarg_spans
    rest = [i for i in range(len(kwargs)) if i not in taken]
    return (head, head_spans, [kwargs[i] for i in rest],
            [kwarg_spans[i] for i in rest if i < len(kwarg_spans)])


def _unordered(op: Op, view: View) -> View:
    if not op.unordered:
        return view
    kwargs = dict(view.kwargs)
    values = [kwargs.get(name) for name in op.unordered]
    if not all(_is_int(v) for v in values) or len({v.value < 0 for v in values}) != 1:
        return view
    order = sorted(values, key=lambda v: v.value)
    spans = dict(zip([k for k, _ in view.kwargs], view.kwarg_spans))
    by_value = {id(v): spans[name] for name, v in zip(op.unordered, values)}
    new_kwargs = []
    new_spans = []
    sorted_iter = iter(order)
    for name, value in view.kwargs:
        if name in op.unordered:
            value = next(sorted_iter)
            new_spans.append(by_value[id(value)])
        else:
            new_spans.append(spans[name])
        new_kwargs.append((name, value))
    return View(view.args, tuple(new_kwargs), view.arg_spans, tuple(new_spans))


def _is_int(value) -> bool:
    """An integer literal of the code (Const) or of a pattern (Lit)."""
    inner = getattr(value, "value", None)
    return type(value).__name__ in ("Const", "Lit") and isinstance(inner, int) and not isinstance(inner, bool)


def last_dim(expr: ast.expr, input_text: str, text_of) -> bool:
    """Does ``expr`` name the last dimension of the tensor written ``input_text``
    (``x.dim() - 1``, ``x.ndim - 1``, ``len(x.shape) - 1``, ``x.ndimension() - 1``)?"""
    if not (isinstance(expr, ast.BinOp) and isinstance(expr.op, ast.Sub) and isinstance(expr.right, ast.Constant)
            and expr.right.value == 1):
        return False
    rank = expr.left
    if isinstance(rank, ast.Call) and not rank.args and not rank.keywords and isinstance(rank.func, ast.Attribute) \
            and rank.func.attr in ("dim", "ndimension"):
        return text_of(rank.func.value) == input_text
    if isinstance(rank, ast.Attribute) and rank.attr == "ndim":
        return text_of(rank.value) == input_text
    if isinstance(rank, ast.Call) and isinstance(rank.func, ast.Name) and rank.func.id == "len" \
            and len(rank.args) == 1 and isinstance(rank.args[0], ast.Attribute) and rank.args[0].attr == "shape":
        return text_of(rank.args[0].value) == input_text
    return False


def dtype_name(text: str, resolve) -> str | None:
    """The canonical name of a dtype written ``text`` (``torch.float`` -> ``torch.float32``),
    resolved through the module's imports by ``resolve``; None if it is not a torch dtype."""
    fqn = resolve(text)
    if fqn is None or not fqn.startswith("torch."):
        return None
    fqn = DTYPE_ALIASES.get(fqn, fqn)
    if re.fullmatch(r"torch\.(b?float\d+|float|double|half|complex\d+|u?int\d+|bool)", fqn):
        return fqn
    return None


# ----------------------------------------------------------------------------- masks

LARGE_NEGATIVE = -1e4  # a fill value this negative (or less) masks a score out of a softmax


def fill_choices(expr: ast.expr) -> list:
    """The values a fill may take: the branches of a choice made at run time (``float("-inf")
    if precision == "32" else -10000``, nested choices flattened), else ``expr`` alone.  The
    one reading of such a choice that :func:`fill_value` and the fix's fill number share."""
    if expr.__class__ is not ast.IfExp:
        return [expr]
    return fill_choices(expr.body) + fill_choices(expr.orelse)


# calls that make a Python number of any number-like argument (a one-element tensor
# included): ``int``, ``float``, ``math.sqrt`` ...; with those that keep numbers numbers
# (``len``, ``abs``, ``round``, ``min``, ``max``), the number calls of a number expression
# (graph.py's, whose names are numbers already; structure/singletons.py's scale takes the
# first kind only, its arguments module settings that may be tensors)
TO_NUMBER_CALLS = frozenset({"int", "float", "math.sqrt", "numpy.sqrt", "math.pow", "math.log"})
NUMBER_CALLS = TO_NUMBER_CALLS | {"len", "abs", "round", "min", "max"}


def fill_value(expr: ast.expr) -> str | None:
    """Whether ``expr`` is a masking fill value: ``"inf"`` for minus infinity
    (``float('-inf')``, ``-math.inf``, ``-torch.inf``), ``"finite"`` for a large negative number
    (``torch.finfo(t.dtype).min``, ``-torch.finfo(t.dtype).max``, a literal <= -1e4), else None.
    A value chosen at run time between two fills (graphium's ``float("-inf") if precision == "32"
    else -10000``) masks on either path: ``"inf"`` when both branches are minus infinity, else
    ``"finite"`` (the kind whose entirely filled rows the fix checks, which covers both)."""
    if expr.__class__ is ast.IfExp:
        kinds = {fill_value(e) for e in fill_choices(expr)}
        return None if None in kinds else ("inf" if kinds == {"inf"} else "finite")
    negated = isinstance(expr, ast.UnaryOp) and isinstance(expr.op, ast.USub)
    inner = expr.operand if negated else expr
    if inner.__class__ in (ast.Constant, ast.BinOp):
        # a literal, or a number written as arithmetic of literals (tzrec's ``-(2**31) + 1``,
        # ``-1 * 1e9``, ``-(10 ** 9)``): the number it evaluates to (:func:`fill_number`)
        value = fill_number(expr)
        if value is None:
            return None
        if value == float("-inf"):
            return "inf"
        return "finite" if value <= LARGE_NEGATIVE else None
    if isinstance(inner, ast.Call) and isinstance(inner.func, ast.Name) and inner.func.id == "float" \
            and len(inner.args) == 1 and isinstance(inner.args[0], ast.Constant) and isinstance(inner.args[0].value, str):
        text = inner.args[0].value.strip().lower()
        sign = -1 if text.startswith("-") else 1
        if text.lstrip("+-") in ("inf", "infinity"):
            return "inf" if sign * (-1 if negated else 1) < 0 else None
        try:
            number = float(text)  # float("-1e20"): the number the string spells
        except ValueError:
            return None
        value = -number if negated else number
        return "finite" if number == number and value <= LARGE_NEGATIVE else None
    if isinstance(inner, ast.Attribute) and inner.attr == "inf" and negated:
        return "inf"  # -math.inf, -torch.inf, -np.inf
    if isinstance(inner, ast.Attribute) and inner.attr in ("min", "max") and isinstance(inner.value, ast.Call) \
            and isinstance(inner.value.func, (ast.Attribute, ast.Name)) \
            and (getattr(inner.value.func, "attr", None) or getattr(inner.value.func, "id", None)) == "finfo":
        return "finite" if (inner.attr == "min") != negated else None
    return None


def fill_number(expr: ast.expr) -> float | int | None:
    """The number a fill spelled in literals evaluates to (``-1e9``, ``-(10 ** 9)``, ``-(2**31) +
    1``, ``-1 * 1e9``: :func:`constant_number`), else None: the one reading of a fill's number
    that :func:`fill_value` and the fix's fill literal (synth/sdpa.py ``_fill_literal``, which
    picks the guard for entirely filled rows) share."""
    return constant_number(expr) if expr.__class__ in (ast.Constant, ast.UnaryOp, ast.BinOp) else None


_FOLDED = {ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b, ast.Mult: lambda a, b: a * b,
           ast.Div: lambda a, b: a / b, ast.Pow: lambda a, b: a ** b}


def constant_number(expr: ast.expr, depth: int = 0) -> float | int | None:
    """The number an arithmetic expression of number literals evaluates to (``-(2**31) + 1``,
    ``-1 * 1e9``), else None: only ``+ - * / **`` and signs, exponents at most 128 in size (no
    huge powers), nothing read from a name."""
    cls = expr.__class__
    if cls is ast.Constant:
        value = expr.value
        return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None
    if depth > 8:
        return None
    if cls is ast.UnaryOp and expr.op.__class__ in (ast.USub, ast.UAdd):
        value = constant_number(expr.operand, depth + 1)
        return None if value is None else (-value if expr.op.__class__ is ast.USub else value)
    if cls is ast.BinOp and expr.op.__class__ in _FOLDED:
        left = constant_number(expr.left, depth + 1)
        right = constant_number(expr.right, depth + 1) if left is not None else None
        if right is None or (expr.op.__class__ is ast.Pow and (abs(right) > 128 or abs(left) > 1e6)) \
                or (expr.op.__class__ is ast.Div and right == 0):
            return None
        try:
            return _FOLDED[expr.op.__class__](left, right)
        except (OverflowError, ZeroDivisionError, ValueError):
            return None
    return None


#: Calls that make a tensor of ones shaped as their argument: times a fill, a tensor of that
#: fill (tzrec's ``torch.ones_like(scores) * (-(2**31) + 1)`` in ``torch.where(mask, scores, ...)``)
_ONES_HOLDERS = frozenset({"ones_like", "ones", "new_ones"})


def ones_times(expr: ast.expr) -> ast.expr | None:
    """The factor ``f`` of ``torch.ones_like(t) * f`` (either operand order; ``torch.ones(...)``,
    ``t.new_ones(...)``), else None: every element of the product is ``f``."""
    if expr.__class__ is not ast.BinOp or expr.op.__class__ is not ast.Mult:
        return None
    for ones, factor in ((expr.left, expr.right), (expr.right, expr.left)):
        if ones.__class__ is ast.Call and ones.func.__class__ in (ast.Attribute, ast.Name) \
                and (getattr(ones.func, "attr", None) or getattr(ones.func, "id", None)) in _ONES_HOLDERS:
            return factor
    return None


#: Calls that make a tensor holding their value argument, by its position: ``torch.tensor(v,
#: dtype=...)``, the 0-d ``torch.full([], v, ...)`` (GPT-2's mask value), ``x.new_full(shape, v)``.
_FILL_HOLDERS = {"tensor": 0, "as_tensor": 0, "scalar_tensor": 0, "full": 1, "new_tensor": 0, "new_full": 1,
                "full_like": 1}


def held_fill(expr: ast.expr, lookup) -> str | None:
    """:func:`fill_value` of ``expr``, also through a local name (``lookup(name)``: the kind
    of fill its binding holds, or None) and through the tensors made to hold a fill --
    ``torch.tensor(torch.finfo(w.dtype).min, dtype=w.dtype).to(w.device)`` is still a large
    negative number wherever it is moved."""
    for _ in range(6):
        kind = fill_value(expr)
        if kind is not None:
            return kind
        if isinstance(expr, ast.Name):
            return lookup(expr.id)
        if expr.__class__ is ast.BinOp:
            factor = ones_times(expr)  # torch.ones_like(scores) * fill: a tensor of the fill
            if factor is None:
                return None
            expr = factor
            continue
        if not (isinstance(expr, ast.Call) and isinstance(expr.func, ast.Attribute)):
            return None
        if expr.func.attr == "to":
            expr = expr.func.value
            continue
        position = _FILL_HOLDERS.get(expr.func.attr)
        if position is None:
            return None
        value = expr.args[position] if len(expr.args) > position else next(
            (k.value for k in expr.keywords if k.arg in ("data", "fill_value")), None)
        if value is None:
            return None
        expr = value
    return None


# ----------------------------------------------------------------------------- einsum


def einsum(equation: str) -> tuple[str, tuple[int, int]] | None:
    """What a two-operand ``einsum`` equation computes, if a (batched) matrix product:

    ``("matmul", (i, j))``: operands i and j are a and b of ``a @ b``;
    ``("matmul_t", (i, j))``: ``a @ b^T`` (scores ``q . k``);
    ``("t_matmul", (i, j))``: ``a^T @ b`` (channel-first scores ``einsum("bct,bcs->bts", q, k)``);
    ``("t_matmul_t", (i, j))``: ``a^T @ b^T``.
    Batch axes must be the same leading axes of both operands and the output (or ``...``)."""
    found = einsum_broadcast(equation)
    if found is None or any(found[2]):
        return None
    return found[0], found[1]


def einsum_broadcast(equation: str) -> tuple[str, tuple[int, int], tuple[tuple[int, ...], ...]] | None:
    """:func:`einsum`, also when an operand lacks some of the output's batch axes (multi-query
    attention's ``einsum("b h i d, b j d -> b h i j", q, k)``: one key head for every query
    head).  The einsum then broadcasts that operand over those axes, which is what ``a @ b``
    does once the operand has a size-1 axis in each place: the third item gives, per operand
    (in equation order), the dims to ``unsqueeze`` it at, counted from the end of the output
    and applied in that order (the one nearest the end first); ``()`` for an operand that has
    every batch axis.  The batch axes an operand has must be in the output's order."""
    found = einsum_product(equation)
    if found is None or any(found[3]):
        return None
    return found[0], found[1], found[2]


def einops_equation(pattern: str) -> str | None:
    """``einops.einsum``'s pattern written as torch's equation, one letter an axis.  einops
    separates axis names by spaces and a name may be a word (``"b h qh i d, b h j d -> b h qh i
    j"``: grouped queries ``qh``, native-sparse-attention's ``attend``); removing the spaces, as
    for one-letter names, would read ``qh`` as the two axes ``q`` and ``h``.  Each longer name
    gets a letter no other name of the pattern uses; ``...`` stays.  None where the pattern is not
    one (no ``->``, a name that is not an identifier) or the letters run out."""
    if pattern.count("->") != 1:
        return None
    lhs, out = pattern.split("->")
    terms = [t.split() for t in lhs.split(",")] + [out.split()]
    names = {n for t in terms for n in t if n != "..."}
    if all(len(n) == 1 for n in names):
        return pattern.replace(" ", "")
    if not all(n.isidentifier() for n in names):
        return None
    free = iter(c for c in "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ" if c not in names)
    letter = {}
    for n in sorted(names, key=lambda n: (len(n), n)):
        if len(n) == 1:
            letter[n] = n
        else:
            letter[n] = next(free, None)
            if letter[n] is None:
                return None
    written = ["".join("..." if n == "..." else letter[n] for n in t) for t in terms]
    return ",".join(written[:-1]) + "->" + written[-1]


def einsum_product(equation: str) -> tuple[str, tuple[int, int], tuple, tuple] | None:
    """What a two-operand ``einsum`` computes, read by its index algebra: a (batched) matrix
    product when exactly one index is summed (in both operands, not in the output), one output
    index comes from the first factor only (the rows) and one from the second only (the
    columns), and every other output index is a batch index.  :func:`einsum_broadcast`'s three
    items, and a fourth: ``(move of operand 0, move of operand 1, move of the output)`` in
    equation order, each a permutation or None.  An operand's move is applied to it as written
    (``x.permute(*move)``) and puts its axes in the product's order: its batch axes in the
    output's order, then (rows, summed) for the first factor, (columns, summed) for the second
    (read ``matmul_t``); an operand already in that order, or with its last two axes swapped
    (the plain and transposed forms :func:`einsum` reads) needs none.  The output's move takes
    the product ``(batch..., rows, columns)`` to the written output order
    (``(a @ b).permute(*move)``): the heads-on-axis-2 einsums ``"bnmc,bkmc->bmnk"`` (ultralytics)
    and the column attention ``"icnhd,jcnhd->hcnij"`` (ESM) are such products."""
    parts = equation.replace(" ", "").split("->")
    if len(parts) != 2:
        return None
    inputs = parts[0].split(",")
    if len(inputs) != 2:
        return None
    out = parts[1]
    x, y = inputs
    ellipsis = [s.startswith("...") for s in (x, y, out)]
    if any(ellipsis) and not all(ellipsis):
        return None
    x, y, out = (s[3:] if e else s for s, e in zip((x, y, out), ellipsis))
    if "." in x + y + out or not (len(x) >= 2 and len(y) >= 2 and len(out) >= 2):
        return None
    if len(set(x)) != len(x) or len(set(y)) != len(y) or len(set(out)) != len(out):
        return None
    if any(a not in x and a not in y for a in out) or any(a not in out and a not in y for a in x) \
            or any(a not in out and a not in x for a in y):
        return None  # an output index of neither operand, or one summed over a single operand
    summed = [a for a in x if a in y and a not in out]
    if len(summed) != 1:
        return None
    inner = summed[0]
    lone = [a for a in out if (a in x) != (a in y)]  # output indices of one operand only
    if len(lone) >= 2 and (lone[-1] in x) != (lone[-2] in x) and list(out[-2:]) == lone[-2:]:
        r, c = out[-2:]  # the matrix axes last (the others, if any, broadcast an operand)
    elif len(lone) == 2 and (lone[0] in x) != (lone[1] in x):
        r, c = lone
    elif len(lone) >= 3 and sum(a in x for a in lone) in (1, len(lone) - 1):
        # One operand's own index, and several of the other's: that operand's other own indices
        # are batch axes the first broadcasts over (retro's neighbour axis `n` of
        # "bcnhij,bcjhd->bcnihd": values shared by every neighbour), whatever the output's order.
        # The matrix axis of the several is the last of them in its operand, next to the
        # summed index there.
        # Those batch axes precede both matrix axes in the output (one between them, RETRO's
        # neighbours of "bcihd,bcnjhd->bchinj", groups keys for a softmax over both: groups.py).
        many = x if sum(a in x for a in lone) > 1 else y
        own = [a for a in many if a in lone]
        single = next(a for a in lone if a not in many)
        r, c = sorted((own[-1], single), key=out.index)
        if any(out.index(a) > out.index(r) for a in own[:-1]) \
                or abs(many.index(own[-1]) - many.index(summed[0])) != 1:
            return None  # (an axis between the matrix axis and the summed one: another layout)
    else:
        return None
    first, second = (0, 1) if r in x else (1, 0)
    ops = (x, y)
    a_op, b_op = ops[first], ops[second]
    if c in a_op or r in b_op:
        return None
    # The batch axes in the output's order when it ends with (rows, columns): no move of the
    # output, which a softmax over the scores must see unmoved; otherwise in the order of an
    # operand that has them all (the fewest moves).
    batch = [a for a in out if a not in (r, c)]
    for operand in (a_op, b_op) if list(out[-2:]) != [r, c] else ():
        if all(a in operand for a in batch):
            batch = [a for a in operand if a in batch]
            break
    missing = []
    for operand in (x, y):
        own = [a for a in batch if a in operand]
        # dims from the end of the output (its rank: the batch axes and the matrix's two)
        missing.append(tuple(p - len(batch) - 2 for p in reversed(range(len(batch))) if batch[p] not in own))
    moves: list = [None, None]

    def move(operand: str, wanted: list) -> tuple[int, ...] | None:
        perm = tuple(operand.index(a) for a in wanted)
        return None if perm == tuple(range(len(perm))) else perm

    a_own = [a for a in batch if a in a_op]
    b_own = [a for a in batch if a in b_op]
    if list(a_op) == a_own + [r, inner]:
        prefix = ""
    elif list(a_op) == a_own + [inner, r]:
        prefix = "t_"
    else:
        prefix = ""
        moves[first] = move(a_op, a_own + [r, inner])
    if list(b_op) == b_own + [inner, c]:
        suffix = "matmul"
    elif list(b_op) == b_own + [c, inner]:
        suffix = "matmul_t"
    elif b_op[-1] == inner:  # keys written feature-last: moved to (columns, summed), transposed
        suffix = "matmul_t"
        moves[second] = move(b_op, b_own + [c, inner])
    else:  # values: moved to (summed, columns)
        suffix = "matmul"
        moves[second] = move(b_op, b_own + [inner, c])
    canonical = batch + [r, c]
    out_move = tuple(canonical.index(a) for a in out)
    out_move = None if out_move == tuple(range(len(out_move))) else out_move
    return prefix + suffix, (first, second), tuple(missing), (moves[0], moves[1], out_move)


def einsum_grouped(equation: str) -> tuple | None:
    """A two-operand ``einsum`` that is attention over grouped axes, which :func:`einsum_product`
    does not read: several query axes or several key axes (a 2-D grid of pixels attending to
    another, ``"bnchw,bncyx->bnhwyx"``; a chunk's queries against every neighbour's tokens,
    ``"bcihd,bcnjhd->bchinj"``), flattened to one by a view around the softmax (structure/
    groups.py verifies the chain).  Returns

    ``("scores", q, rank, keys, rows)``: exactly one summed index; the output is batch axes,
    then every index of operand ``q`` alone (the query group, ``rows`` long), then the last
    ``keys`` axes, indices of the other operand alone (the key group); a batch axis of the
    other operand alone broadcasts the queries (cross-transformers' classes);

    ``("values", p, rank, keys, rows)``: operand ``p`` (the probabilities, ``rank`` axes) ends
    with the ``keys`` summed indices, which the other operand (the values) has too, before
    them its indices alone (``rows`` of them) are the output's rows; the values have exactly
    one index of their own (the feature) and share every batch axis they have;

    None for anything else (a group of one query and one key axis is einsum_product's)."""
    parts = equation.replace(" ", "").split("->")
    if len(parts) != 2:
        return None
    inputs = parts[0].split(",")
    if len(inputs) != 2 or not (parts[0] + parts[1]).replace(",", "").isalpha():
        return None
    x, y = inputs
    out = parts[1]
    if len(set(x)) != len(x) or len(set(y)) != len(y) or len(set(out)) != len(out) \
            or any(a not in x and a not in y for a in out):
        return None
    summed = [a for a in x if a in y and a not in out]
    if any(a not in out and a not in summed for a in x + y):
        return None  # an index summed over one operand alone
    ops = (x, y)
    if len(summed) == 1:
        for q in (0, 1):
            a, b = ops[q], ops[1 - q]
            keys = 0
            while keys < len(out) and out[len(out) - 1 - keys] in b and out[len(out) - 1 - keys] not in a:
                keys += 1
            rows = [c for c in out if c in a and c not in b]
            end = len(out) - keys
            if keys and rows and keys + len(rows) >= 3 and list(out[end - len(rows):end]) == rows:
                return "scores", q, len(out), keys, len(rows)
        return None
    if len(summed) < 2:
        return None
    for p in (0, 1):
        a, b = ops[p], ops[1 - p]
        keys = len(summed)
        if sorted(a[-keys:]) != sorted(summed):
            continue
        rows = [c for c in a[:-keys] if c not in b]
        own = [c for c in b if c not in a]
        if len(own) != 1 or not rows or list(a[len(a) - keys - len(rows):len(a) - keys]) != rows:
            continue
        return "values", p, len(a), keys, len(rows)
    return None


def einsum_vector(equation: str) -> tuple[str, int] | None:
    """A two-operand ``einsum`` that is a matrix-vector product: one operand has no row axis
    (one query per head written without a query axis, ProteinBERT's global attention
    ``einsum("b h d, b l h d -> b h l", q, k)`` and ``einsum("b h l, b l h d -> b h d", p, v)``).
    It is the matrix product with a size-1 row axis, squeezed: ``(a.unsqueeze(-2) @ b)
    .squeeze(-2)``.  Returns the equation written with that axis (a fresh index before the
    vector's summed axis and before the output's last axis, which :func:`einsum_product`
    reads with no move of the vector or of the output) and the index of the vector operand;
    None unless the vector's axes are the output's batch axes in the output's order, then the
    summed axis, and the output's last axis is the other operand's own."""
    parts = equation.replace(" ", "").split("->")
    if len(parts) != 2:
        return None
    inputs = parts[0].split(",")
    out = parts[1]
    if len(inputs) != 2 or not out or not (parts[0] + out).replace(",", "").isalpha():
        return None
    x, y = inputs
    summed = [a for a in x if a in y and a not in out]
    lone = [a for a in out if (a in x) != (a in y)]
    if len(summed) != 1 or lone != [out[-1]]:
        return None
    index = 1 if out[-1] in x else 0  # the vector: the operand without the output's own axis
    vector = inputs[index]
    if list(vector) != [a for a in out if a in vector] + summed:
        return None
    fresh = next((c for c in "ZYXWVU" if c not in x + y + out), None)
    if fresh is None:
        return None
    widened = list(inputs)
    widened[index] = vector[:-1] + fresh + vector[-1]
    written = f"{widened[0]},{widened[1]}->{out[:-1]}{fresh}{out[-1]}"
    found = einsum_product(written)
    if found is None or found[3][index] is not None or found[3][2] is not None:
        return None
    return written, index


# ----------------------------------------------------------------------------- permutes


def permutation_swaps_last_two(perm: list[int]) -> bool:
    """Is ``x.permute(*perm)`` a transpose of the last two axes (the others in place)?"""
    n = len(perm)
    if n < 2:
        return False
    norm = [p + n if p < 0 else p for p in perm]
    if sorted(norm) != list(range(n)):
        return False
    return norm[:-2] == list(range(n - 2)) and norm[-2:] == [n - 1, n - 2]


_AXIS = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def rearrange_swaps_last_two(pattern: str) -> bool:
    """Does ``einops.rearrange(x, pattern)`` only swap the last two axes?"""
    parts = pattern.split("->")
    if len(parts) != 2:
        return False
    left, right = parts[0].split(), parts[1].split()
    if not left or len(left) != len(right):
        return False
    if any(not (_AXIS.match(a) or a == "...") for a in left + right) or len(set(left)) != len(left):
        return False
    return left[:-2] == right[:-2] and left[-2:] == right[-2:][::-1] and "..." not in left[-2:]


def rearrange_concatenates_last(pattern: str) -> bool:
    """Does ``einops.rearrange([a, b], pattern)`` compute ``torch.cat((a, b), dim=-1)``?  einops
    stacks a list of tensors on a new first axis; a pattern that keeps every other axis in place
    and merges that new axis, outermost, with the last one (``"h ... d -> ... (h d)"``, ``"two b
    n d -> b n (two d)"``) lays the parts end to end along the last axis.  The new axis innermost
    (``"h ... d -> ... (d h)"``) interleaves them instead: not a concatenation."""
    parts = pattern.split("->")
    if len(parts) != 2:
        return False
    left = parts[0].split()
    right = parts[1].replace("(", " ( ").replace(")", " ) ").split()
    if len(left) < 2 or len(set(left)) != len(left) or any(not (_AXIS.match(a) or a == "...") for a in left):
        return False
    stacked, *kept, last = left
    if "..." in (stacked, last):
        return False
    return right == [*kept, "(", stacked, last, ")"]


def rearrange_class_axis_second(pattern: str) -> bool:
    """Does ``einops.rearrange(x, pattern)`` only move and merge axes, putting ``x``'s last axis,
    alone, at position 1 (``"b l n d -> b d (l n)"``, ``"b n d -> (b n) d"``)?  A cross-entropy
    takes its classes on axis 1 and reads every other axis as a position, so of a head's logits
    such a rearrangement scores each position over the head's outputs.  Plain input names only
    (no groups, no ellipsis), each used once on the output, alone or in a parenthesised group;
    no name made up."""
    parts = pattern.split("->")
    if len(parts) != 2:
        return False
    left = parts[0].split()
    right = parts[1].replace("(", " ( ").replace(")", " ) ").split()
    if len(left) < 2 or len(set(left)) != len(left) or any(not _AXIS.match(a) for a in left):
        return False
    names, groups, depth = [], [], 0
    for token in right:
        if token == "(":
            if depth:
                return False
            depth, group = 1, []
        elif token == ")":
            if not depth or not group:
                return False
            depth = 0
            groups.append(group)
        elif _AXIS.match(token):
            names.append(token)
            if depth:
                group.append(token)
            else:
                groups.append(token)
        else:
            return False
    return not depth and sorted(names) == sorted(left) and len(groups) >= 2 and groups[1] == left[-1]


def einx_where_layout(pattern: str) -> tuple[int, tuple[bool, ...]] | None:
    """Read ``einx.where(pattern, cond, a, b)`` as ``torch.where`` over one kept tensor and a
    scalar fill: the position (1 or 2) of the operand whose axes are the output's, the other
    one written with no axes (a scalar), and, for each output axis, whether ``cond`` has it.
    ``cond``'s axes must be the output's in the same order with some left out, so that
    ``cond`` indexed with ``None`` at the missing axes broadcasts exactly as einx broadcasts
    it.  None for anything else (composed or bracketed axes, ellipses, repeated names, a
    reordered or extra ``cond`` axis, two tensor operands)."""
    parts = pattern.split("->")
    if len(parts) != 2:
        return None
    inputs = parts[0].split(",")
    if len(inputs) != 3:
        return None
    specs = [spec.split() for spec in inputs]
    out = parts[1].split()
    if not out or any(not _AXIS.match(a) for a in out + [a for spec in specs for a in spec]):
        return None
    if len(set(out)) != len(out) or len(set(specs[0])) != len(specs[0]):
        return None
    if specs[1] == out and not specs[2]:
        kept = 1
    elif specs[2] == out and not specs[1]:
        kept = 2
    else:
        return None
    cond = specs[0]
    if [a for a in out if a in cond] != cond:
        return None
    return kept, tuple(a in cond for a in out)


def _is_minus_one(node) -> bool:
    return node.__class__ is ast.UnaryOp and node.op.__class__ is ast.USub \
        and node.operand.__class__ is ast.Constant and node.operand.value == 1 and type(node.operand.value) is int


def _undetached(expr: ast.expr) -> ast.expr:
    while expr.__class__ is ast.Call and expr.func.__class__ is ast.Attribute and expr.func.attr == "detach" \
            and not expr.args and not expr.keywords:
        expr = expr.func.value
    return expr


ROW_MAX_CALLS = frozenset({"amax", "max", "unsqueeze", "detach"})


def row_max_of(expr: ast.expr) -> ast.expr | None:
    """The tensor ``expr`` is the row maximum of, kept broadcastable along the last axis:
    ``x.amax(dim=-1, keepdim=True)`` (``x.max(-1, keepdim=True).values`` / ``[0]``), or the
    same without ``keepdim`` and then ``.unsqueeze(-1)`` (``x.amax(dim=-1).unsqueeze(-1)``), the
    whole maybe ``.detach()``-ed.  None for anything else (another axis, a max over several,
    ``torch.max(a, b)`` of two tensors)."""
    expr = _undetached(expr)
    unsqueezed = False
    if expr.__class__ is ast.Call and expr.func.__class__ is ast.Attribute and expr.func.attr == "unsqueeze":
        if len(expr.args) + len(expr.keywords) != 1:
            return None
        axis = expr.args[0] if expr.args else expr.keywords[0].value
        if (expr.keywords and expr.keywords[0].arg != "dim") or not _is_minus_one(axis):
            return None
        expr, unsqueezed = _undetached(expr.func.value), True
    if expr.__class__ is ast.Attribute and expr.attr == "values":
        expr, wanted = expr.value, "max"
    elif expr.__class__ is ast.Subscript and expr.slice.__class__ is ast.Constant and expr.slice.value == 0:
        expr, wanted = expr.value, "max"
    else:
        wanted = "amax"
    if not (expr.__class__ is ast.Call and expr.func.__class__ is ast.Attribute and expr.func.attr == wanted):
        return None
    if len(expr.args) > 1 or any(k.arg not in ("dim", "keepdim") for k in expr.keywords):
        return None
    dims = list(expr.args) + [k.value for k in expr.keywords if k.arg == "dim"]
    keep = [k.value for k in expr.keywords if k.arg == "keepdim"]
    if len(dims) != 1 or not _is_minus_one(dims[0]):
        return None
    flag = keep[0].value if len(keep) == 1 and keep[0].__class__ is ast.Constant else None
    if not ((flag is True and not unsqueezed) or (unsqueezed and (not keep or flag is False))):
        return None
    return expr.func.value


def scaled_name(expr: ast.expr) -> tuple[str, str] | None:
    """``x / c`` with ``x`` a name and ``c`` a number or a name: (``x``, the text of ``c``).
    With :func:`row_max_of`, how ``(s - s.amax(-1, keepdim=True)) * c`` with ``s = x / c``
    reads (CogView's precision-bottleneck relaxation): the softmax of it is the softmax of ``x``."""
    if not (isinstance(expr, ast.BinOp) and isinstance(expr.op, ast.Div) and isinstance(expr.left, ast.Name)):
        return None
    right = expr.right
    if isinstance(right, ast.Name) or (isinstance(right, ast.Constant) and type(right.value) in (int, float)
                                       and right.value != 0):
        return expr.left.id, ast.unparse(right)
    return None


def subtracts_row_max(expr: ast.BinOp) -> bool:
    """Is ``expr`` ``x - x.amax(dim=-1, keepdim=True)`` (or ``x.max(-1, keepdim=True).values``
    / ``[0]``, or ``x.amax(dim=-1).unsqueeze(-1)``: :func:`row_max_of`), the right side maybe
    ``.detach()``-ed, ``x`` the same expression on both sides?  A softmax over the last axis
    of it is the softmax of ``x``."""
    right = expr.right
    if not (right.__class__ is ast.Call or right.__class__ is ast.Attribute or right.__class__ is ast.Subscript):
        return False
    target = row_max_of(right)
    return target is not None and ast.dump(target) == ast.dump(expr.left)


def selects_rows(expr: ast.Subscript) -> bool:
    """Is ``expr`` ``x[..., :-1, :]`` (or ``x[:, 1:, :]``): slices of leading axes only, the
    last axis whole?  A row-wise operation (a Linear head) commutes with it: the logits of
    the selected positions are the selected logits.  Only slices and an ellipsis (no integer
    index, no ``None``), the last element a bare ``:``, some other element a real slice."""
    index = expr.slice
    if not isinstance(index, ast.Tuple) or len(index.elts) < 2:
        return False
    *lead, last = index.elts
    if not (isinstance(last, ast.Slice) and last.lower is None and last.upper is None and last.step is None):
        return False
    real = False
    for elt in lead:
        if isinstance(elt, ast.Constant) and elt.value is Ellipsis:
            continue
        if not isinstance(elt, ast.Slice):
            return False
        if elt.lower is not None or elt.upper is not None or elt.step is not None:
            real = True
    return real


def slices_two_leading(expr: ast.Subscript) -> bool:
    """Is ``expr`` ``x[:, 1:]`` (or ``x[1:]``): slices of the first one or two axes only, some
    a real slice (no ellipsis, integer index or ``None``)?  Of a 3-D value (batch, positions,
    classes) that keeps the last axis whole, as ``canon.rows`` does; a pattern uses it only
    where the rank is 3 (``canon.lead2``).  A trailing ellipsis stands for no axis more
    (``x[:, :-1, ...]`` is ``x[:, :-1]``: the axes it would cover are kept whole either way;
    voltron's shifted logits, research112)."""
    index = expr.slice
    elts = index.elts if isinstance(index, ast.Tuple) else [index]
    if len(elts) > 1 and isinstance(elts[-1], ast.Constant) and elts[-1].value is Ellipsis:
        elts = elts[:-1]
    if not 1 <= len(elts) <= 2 or not all(isinstance(e, ast.Slice) for e in elts):
        return False
    return any(e.lower is not None or e.upper is not None or e.step is not None for e in elts)


def subtracted_mask(expr: ast.BinOp) -> bool:
    """``s - c * m`` (either order of the product) with ``c`` a number of at least ``1e4``
    (XLNet's ``score - 1e30 * mask``, ``score - 10000.0 * (1 - m)``): ``s + (-(c * m))``, an
    additive mask subtracted.  Only a large literal scale reads as a mask: ``s1 - lam * s2``
    (a difference of two score products, differential attention) and a small weight are not."""
    right = expr.right
    if not (right.__class__ is ast.BinOp and right.op.__class__ is ast.Mult and expr.op.__class__ is ast.Sub):
        return False
    for factor in (right.left, right.right):
        if factor.__class__ is ast.Constant and factor.value.__class__ in (int, float) \
                and factor.value >= -LARGE_NEGATIVE:
            return True
    return False


def subtracted_term(expr: ast.BinOp) -> bool:
    """``s + a - b``: a tensor subtracted from a sum (fla's forgetting attention, ``scores +
    gc[..., :, None] - gc[..., None, :]``).  A sum of terms, one of them negated: ``s + a +
    (-b)``, so that ``-b`` is a bias added like ``a`` (an additive mask of the scores when the
    sum feeds a softmax).  Only when the minuend is itself a sum (the subtraction is one more
    term of it) and the subtrahend is no number (``x + a - 1`` is a shift, not a term the
    flow needs apart); a plain difference ``x - m`` (a layer norm's centring, a row maximum
    subtracted) keeps its own node."""
    if expr.op.__class__ is not ast.Sub or expr.left.__class__ is not ast.BinOp \
            or expr.left.op.__class__ is not ast.Add:
        return False
    right = expr.right
    if right.__class__ is ast.UnaryOp:
        right = right.operand
    return right.__class__ is not ast.Constant


def _last_axis_half(expr: ast.expr) -> tuple[str, str, int, int] | None:
    """``n[..., :h]`` / ``n[:, :, h:]`` (a name sliced on its last axis only, every other axis
    whole): (the name, the split point's text, 0 for the part before it or 1 for the part
    after, the number of index elements).  None for any other subscript."""
    if expr.__class__ is not ast.Subscript or expr.value.__class__ is not ast.Name:
        return None
    index = expr.slice
    elts = index.elts if index.__class__ is ast.Tuple else [index]
    *lead, last = elts
    for elt in lead:
        whole = elt.__class__ is ast.Slice and elt.lower is None and elt.upper is None and elt.step is None
        if not whole and not (elt.__class__ is ast.Constant and elt.value is Ellipsis):
            return None
    if last.__class__ is not ast.Slice or last.step is not None or (last.lower is None) == (last.upper is None):
        return None
    point = last.upper if last.lower is None else last.lower
    if point.__class__ is ast.Constant or point.__class__ is ast.UnaryOp:
        return None  # (a literal split point: a fixed width, not a point read off the tensor)
    return expr.value.id, ast.dump(point), 0 if last.lower is None else 1, len(elts)


def swapped_halves_negated(stmts: list[ast.stmt]) -> tuple[str, str] | None:
    """``r[..., :h] = x[..., h:]; r[..., h:] = x[..., :h]; r[..., :h].neg_()`` (unsloth's
    in-place RoPE into a preallocated buffer): (r, x) when the three statements write into
    ``r``, over its whole last axis, x's part after the split point, then x's part before it,
    then negate r's first part -- ``r = cat((-x2, x1), -1)``.  The two copies run only when
    each part has the width of the slot it fills, so the split point is the middle of both
    last axes (``h = d - h``): r is x's rotate-half whatever ``h`` is named.  None for any
    other three statements (halves copied unswapped, the wrong part negated, two names)."""
    if len(stmts) != 3:
        return None
    first, second, third = stmts
    if not (first.__class__ is ast.Assign and second.__class__ is ast.Assign and len(first.targets) == 1
            and len(second.targets) == 1 and third.__class__ is ast.Expr):
        return None
    call = third.value
    if not (call.__class__ is ast.Call and call.func.__class__ is ast.Attribute and call.func.attr == "neg_"
            and not call.args and not call.keywords):
        return None
    parts = [_last_axis_half(e) for e in (first.targets[0], first.value, second.targets[0], second.value,
                                          call.func.value)]
    if any(p is None for p in parts):
        return None
    (r, h, r0, n), (x, hx, x1, nx), (r_b, hb, r1, nb), (x_b, hxb, x0, nxb), (r_n, hn, neg, nn) = parts
    if not (r == r_b == r_n and x == x_b and r != x and h == hx == hb == hxb == hn and n == nx == nb == nxb == nn):
        return None
    if (r0, x1, r1, x0, neg) != (0, 1, 1, 0, 0):
        return None
    return r, x


def mask_blend(expr: ast.BinOp) -> tuple[ast.expr, ast.expr, ast.expr, float] | None:
    """``x * b - c * (1 - b)`` / ``x * b + -c * (1 - b)`` (either order of each product, and
    of the sum): OpenAI GPT's causal mask ``w = w * b - 1e4 * (1 - b)`` with ``b`` the 0/1
    lower triangle.  Where ``b`` is 1 it keeps ``x``, where it is 0 it gives ``-c``: for a 0/1
    mask, ``x.masked_fill(b == 0, -c)``.  Returns (x, b, the expression of c, the fill -c) when
    ``-c`` is a large negative number (an infinite one would give NaN where ``b`` is 1)."""
    if not isinstance(expr.op, (ast.Add, ast.Sub)):
        return None
    orders = [(expr.left, expr.right)] + ([(expr.right, expr.left)] if isinstance(expr.op, ast.Add) else [])
    for kept, filled in orders:
        if not (isinstance(kept, ast.BinOp) and isinstance(kept.op, ast.Mult)
                and isinstance(filled, ast.BinOp) and isinstance(filled.op, ast.Mult)):
            continue
        for constant, complement in ((filled.left, filled.right), (filled.right, filled.left)):
            if not (isinstance(complement, ast.BinOp) and isinstance(complement.op, ast.Sub)
                    and isinstance(complement.left, ast.Constant) and complement.left.value in (1, 1.0)
                    and not isinstance(complement.left.value, bool)):
                continue
            negated = isinstance(constant, ast.UnaryOp) and isinstance(constant.op, ast.USub)
            inner = constant.operand if negated else constant
            if not (isinstance(inner, ast.Constant) and isinstance(inner.value, (int, float))
                    and not isinstance(inner.value, bool)):
                continue
            value = -inner.value if negated else inner.value
            fill = -value if isinstance(expr.op, ast.Sub) else value
            if not (fill <= LARGE_NEGATIVE and fill != float("-inf")):
                continue
            mask = ast.dump(complement.right)
            for x, b in ((kept.left, kept.right), (kept.right, kept.left)):
                if ast.dump(b) == mask and ast.dump(x) != mask:
                    return x, b, constant, float(fill)
    return None


def floors_at_dtype_min(call: ast.Call, fqn: str | None, resolve) -> ast.expr | None:
    """The tensor ``call`` floors at its own dtype's minimum, or None: ``torch.max(x,
    torch.tensor(torch.finfo(x.dtype).min))`` (also ``torch.maximum``; the 0-d tensor maybe
    given a device or dtype), ``torch.clamp(x, min=torch.finfo(x.dtype).min)`` and the methods
    ``x.clamp(min=...)`` / ``x.clamp_min(...)`` (``fqn`` None: a method call).  Every finite
    value of ``x`` is at or above the floor, so only ``-inf`` changes (to the minimum), and a
    softmax over the last axis gives the same row unless the row's maximum is itself within
    float range of the minimum (every entry masked): the same softmax as of ``x`` wherever
    a mask leaves a row one key (see ``canon.softmax_shift`` in ops.py).  ``resolve`` gives a
    dotted expression's FQN.  The finfo must be of ``x``'s own dtype: a floor of another dtype's
    minimum may cut finite values."""
    if fqn is None:
        func = call.func
        if func.__class__ is not ast.Attribute:
            return None
        x = func.value
        if func.attr == "clamp_min" and len(call.args) == 1 and not call.keywords:
            floor = call.args[0]
        elif func.attr == "clamp" and not call.args and len(call.keywords) == 1 and call.keywords[0].arg == "min":
            floor = call.keywords[0].value
        else:
            return None
        return x if _is_dtype_min(floor, x, resolve, wrapped=False) else None
    if fqn in ("torch.max", "torch.maximum") and len(call.args) == 2 and not call.keywords:
        x, floor = call.args
        return x if _is_dtype_min(floor, x, resolve, wrapped=True) else None
    if fqn == "torch.clamp" and len(call.args) == 1 and len(call.keywords) == 1 and call.keywords[0].arg == "min":
        x = call.args[0]
        return x if _is_dtype_min(call.keywords[0].value, x, resolve, wrapped=False) else None
    return None


def _is_dtype_min(floor: ast.expr, x: ast.expr, resolve, wrapped: bool) -> bool:
    """Is ``floor`` ``torch.finfo(x.dtype).min`` (``wrapped``: inside ``torch.tensor(...)``,
    maybe with ``device=``/``dtype=`` keywords; else bare or so wrapped)?"""
    if floor.__class__ is ast.Call:
        if resolve(floor.func) != "torch.tensor" or len(floor.args) != 1 \
                or any(k.arg not in ("device", "dtype") for k in floor.keywords):
            return False
        floor = floor.args[0]
    elif wrapped:
        return False
    if not (floor.__class__ is ast.Attribute and floor.attr == "min" and floor.value.__class__ is ast.Call):
        return False
    finfo = floor.value
    if resolve(finfo.func) != "torch.finfo" or len(finfo.args) != 1 or finfo.keywords:
        return False
    dtype = finfo.args[0]
    return dtype.__class__ is ast.Attribute and dtype.attr == "dtype" and ast.dump(dtype.value) == ast.dump(x)
