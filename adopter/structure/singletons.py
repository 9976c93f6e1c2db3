"""One-query attention whose size-1 query axis is squeezed for the softmax and restored after.

Luong's dot attention (a decoder state attending over encoder outputs, wavencoder's
``DotAttention``) writes ``w = torch.bmm(values, hidden.unsqueeze(2)).squeeze(2)``, ``p =
F.softmax(w, 1)``, then ``torch.bmm(values.transpose(1, 2), p.unsqueeze(2)).squeeze(2)``: the
keys-first product ``k @ q^T`` of one query, its size-1 query axis squeezed away before the
softmax and put back where it was before the value product.  The squeeze removes an axis the
product made size 1 (the operand was unsqueezed to give it), so it drops no element, and the
unsqueeze at that same axis gives the probabilities back the product's layout: past it the
flow holds what a softmax over the unsqueezed scores holds.  :func:`read_one` makes both steps
copies (aliases, which the matcher follows) and states the softmax's dim in the product's
layout (the keys' axis of the three-dimensional scores), so the attention reads as the
rule's keys-first (or queries-first) alternative, whose rewrite the fixer already knows.

Only this shape is read, checked by what the code computes: the squeezed axis is the last (or
second last) axis of a product whose second (or first) operand was unsqueezed at that axis
(so it has size 1), the softmax normalises the other of the two last axes (the keys), and the
probabilities reach an unsqueeze at the same axis through copies, dropout or casts only, which
a product or a transpose reads.  A product's rank is known for ``bmm`` (3); for ``matmul`` /
``@`` every dim involved must be written from the back.  Anything else -- a scale or an added
mask on the squeezed scores, a squeeze of another axis, an unsqueeze elsewhere -- leaves the
flow as it was.

Two more steps keep every element where the keys-first layout has it (fastNLP's Luong
attention, as fairseq-era seq2seq code writes it: ``s = torch.matmul(keys, x.unsqueeze(-1))
.squeeze(-1)``, ``s = s.float().masked_fill_(pad, -inf).type_as(s)``, ``p = F.softmax(s, -1)``,
``torch.matmul(p.unsqueeze(1), keys)``):

- between the squeeze and the softmax, copies, casts, a division or product by a number
  (``/ np.sqrt(self.d)``: the same scale in either layout) -- and, for keys-first scores only,
  a ``masked_fill``: the fill then reads as a mask on the (keys, queries) scores, its node marked
  ``squeezed_keys`` (its layout is the squeezed one, one entry per key: the fixer puts the query
  axis back with ``.unsqueeze(-2)``), while a mask on queries-first scores would reach
  the fused call's ``attn_mask`` as written, broadcast wrongly: those stay unread;
- the unsqueeze putting the size-1 axis back at the *other* of the two last axes gives the
  probabilities transposed (a one-row matrix is its one-column one's transpose): it is read as
  ``transpose(-2, -1)`` of the restored probabilities, the rule's transposed value product.

Dims written from the front (``squeeze(1)``, ``softmax(w, 1)``, ``p.unsqueeze(1)``) of a
``matmul`` of unknown rank are read at rank 3, one query per batch row (``(batch, keys,
dim)``), when the dims written from the back alone do not read: the softmax and the transposed
probabilities record it as ``assumed_rank``, and a fix takes the fused call only where q, k and
v have that rank (the guard checks it at run time).  A 4-D attention written from the front
reads at rank 3 as over another axis, and stays unread.
"""

from __future__ import annotations

from ..records import replace
from .canon import TO_NUMBER_CALLS, View
from .canon import ref as _ref
from .layouts import _int
from .layouts import definer as _definer

_PRODUCTS_OF_RANK_THREE = frozenset({"torch.bmm", "bmm", "torch.Tensor.bmm"})
# steps after the softmax that keep each probability where it is
_PROBS_CANON = frozenset({"torch.nn.functional.dropout", "torch.Tensor.to"})
# steps between the squeeze and the softmax that keep each score where it is: casts in either
# layout, a fill only on keys-first scores (module docstring)
_CAST = "torch.Tensor.to"
_FILL = "torch.Tensor.masked_fill"
# a division or product of the squeezed scores by a number (a literal, or one of these calls of
# literals and module settings, ``np.sqrt(self.d)``): the same scale in either layout
_SCALES = frozenset({"torch.div", "torch.mul"})
# what may read the restored probabilities: the value product, or a transpose before it
_RESTORED_READERS = frozenset({"torch.matmul", "torch.transpose"})


def _from_back(dim: int | None, rank: int | None) -> int | None:
    """``dim`` of a tensor of ``rank`` counted from the back; None when unknown."""
    if dim is None:
        return None
    if dim < 0:
        return dim
    return dim - rank if rank is not None and dim < rank else None


def _axis_step(node, op: str) -> int | None:
    """The dim of ``x.squeeze(d)`` / ``x.unsqueeze(d)`` (one int, positional or ``dim=d``),
    else None."""
    if node is None or node.kind != "method" or node.op != op or len(node.outs) != 1 \
            or not node.args or _ref(node.args[0]) is None:
        return None
    if len(node.args) == 2 and not node.kwargs:
        return _int(node.args[1])
    if len(node.args) == 1 and len(node.kwargs) == 1 and node.kwargs[0][0] == "dim":
        return _int(node.kwargs[0][1])
    return None


def _ones_from_back(node) -> frozenset:
    """The axes, counted from the back, that ``x.view(a, b, 1)`` / ``torch.reshape(x, (a, b,
    1))`` writes as the literal 1 (concare's one query ``torch.reshape(q, (batch, hidden,
    1))``): each is size 1, as an unsqueeze there makes it.  The sizes written give the rank,
    so the places count from the back whatever a product's rank; at least two sizes (a
    one-axis operand multiplies as a vector, not a matrix).  Empty for any other step."""
    if node is None or node.kind != "method" or node.op not in ("view", "reshape") or node.kwargs \
            or len(node.outs) != 1 or len(node.args) < 3 or _ref(node.args[0]) is None:
        return frozenset()
    sizes = node.args[1:]
    return frozenset(i - len(sizes) for i, size in enumerate(sizes) if _ref(size) is None and _int(size) == 1)


def read_one(nodes, softmax):
    """Read the softmax ``softmax`` in the layout of the product its squeezed scores come from
    (module docstring), in place.  Returns the product's node id when it did, else None."""
    args = softmax.view.args if softmax.view is not None else softmax.args
    scores_in = _ref(args[0]) if args else None
    if scores_in is None or softmax.view is None:
        return None
    squeeze, steps = _squeezed_scores(nodes, scores_in.key, softmax.id)
    d = _axis_step(squeeze, "squeeze")
    if d is None:
        return None
    product = _definer(nodes, squeeze.args[0].key, squeeze.id)
    if product is None or product.canon != "torch.matmul" or product.view is None or len(product.view.args) != 2 \
            or len(product.outs) != 1:
        return None
    if product.op in _PRODUCTS_OF_RANK_THREE:
        return _read_at(nodes, softmax, squeeze, product, steps, 3, None)
    # a matmul's rank is unknown: every dim written from the back, or else read at rank 3 (one
    # query per batch row), which the fix checks at run time (assumed_rank)
    found = _read_at(nodes, softmax, squeeze, product, steps, None, None)
    return found if found is not None else _read_at(nodes, softmax, squeeze, product, steps, 3, 3)


def _read_at(nodes, softmax, squeeze, product, steps, rank: int | None, assumed: int | None):
    """:func:`read_one` with the product's rank ``rank`` (None: unknown), ``assumed`` when it
    is a rank the code does not fix."""
    d = _axis_step(squeeze, "squeeze")
    axis = _from_back(d, rank)
    if axis not in (-1, -2) or (axis == -2 and any(n.canon == _FILL for n in steps)):
        return None
    # the operand that gives the product's squeezed axis was unsqueezed there: that axis is size 1
    operand = _ref(product.view.args[1 if axis == -1 else 0])
    unsqueezed = _definer(nodes, operand.key, product.id) if operand is not None else None
    if _from_back(_axis_step(unsqueezed, "unsqueeze"), rank) != axis and axis not in _ones_from_back(unsqueezed):
        return None
    k = _int(dict(softmax.view.kwargs).get("dim"))
    k = _from_back(k, rank - 1 if rank is not None else None)
    if k is None:
        return None
    keys = k if k > axis else k - 1  # the softmax's axis among the product's
    if keys not in (-1, -2) or keys == axis:
        return None  # over a batch axis: not attention
    back, at, summed = _restoring_unsqueeze(nodes, softmax, axis, rank, product)
    if back is None:
        return None
    nodes[squeeze.id] = _copy(squeeze)
    for step in steps:
        if step.canon == _FILL and axis == -1:
            # (keys-first: the fill's mask covers the squeezed scores, one per key)
            nodes[step.id] = replace(step, squeezed_keys=True)
    if summed is not None:
        # the column's transpose is the probabilities' row: their layout for queries-first
        # scores, its transpose for keys-first ones; the multiplication is that row times v
        nodes[back.id] = _copy(back) if axis == -2 else _transposed(back, assumed)
        spread, mul = summed
        for step in spread:
            nodes[step.id] = _copy(step)
        nodes[mul.id] = _row_product(mul, spread[-1] if spread else back)
    else:
        nodes[back.id] = _copy(back) if at == axis else _transposed(back, assumed)
    kwargs = tuple((n, type(v)(keys) if n == "dim" else v) for n, v in softmax.view.kwargs)
    # (an assumed rank on the softmax too: a copy is no step of the match, the softmax is)
    nodes[softmax.id] = replace(softmax, view=replace(softmax.view, kwargs=kwargs),
                                assumed_rank=assumed if assumed is not None else softmax.assumed_rank)
    return product.id


def _squeezed_scores(nodes, key: str, before: int):
    """(the node defining the scores the softmax at ``before`` reads, walked back through copies,
    casts and fills of them -- module docstring -- and those steps).  Every binding of the walked
    values between that node and the softmax must be a walked step (a fill under ``if mask is
    not None:`` leaves the squeezed scores on the other path: the same values)."""
    steps: list = []
    node = _definer(nodes, key, before)
    while node is not None and len(node.outs) == 1 and len(steps) < 6:
        if node.kind == "copy" and len(node.args) == 1:
            inner = _ref(node.args[0])  # (a helper's return value handed to its caller's name)
        elif node.canon in (_CAST, _FILL) and node.view is not None and node.view.args:
            inner = _ref(node.view.args[0])
        elif node.canon in _SCALES and node.kind == "op" and len(node.args) == 2 \
                and _number(nodes, node.args[1], node.id):
            inner = _ref(node.args[0])
        else:
            break
        steps.append(node)
        if inner is None:
            return None, ()
        node = _definer(nodes, inner.key, node.id)
    if steps and node is not None:
        walked = {n.id for n in steps}
        keys = {o.key for n in steps for o in n.outs}
        if any(n.id not in walked and n.defs & keys for n in nodes[node.id + 1:before]):
            return None, ()
    return node, steps


def _number(nodes, value, before: int) -> bool:
    """Is ``value`` a number: a literal, or what one of canon's ``TO_NUMBER_CALLS`` makes of literals
    and module settings (``self.<name>``)?"""
    if _ref(value) is None:
        return _int(value) is not None or isinstance(getattr(value, "value", None), float)
    node = _definer(nodes, value.key, before)
    return node is not None and node.kind == "call" and node.op in TO_NUMBER_CALLS and not node.kwargs \
        and all((_ref(a) is None and _number(nodes, a, node.id)) or (_ref(a) is not None and a.key.startswith("self.")
                                                                    and "(" not in a.key) for a in node.args)


def _restoring_unsqueeze(nodes, softmax, axis: int, rank: int | None, product):
    """(the unsqueeze putting the size-1 axis back on the probabilities of ``softmax`` before a
    product -- or a transpose then a product -- reads them, the axis it puts back counted from
    the back); (None, None) when another step reads them in their squeezed layout first.  The
    axis is ``axis`` (the layout restored) or the other of the two last (the layout
    transposed), never a batch axis."""
    probs = {softmax.outs[0].key}
    sizes: dict = {}  # key of ``p.size(i)`` of the probabilities -> i
    for node in nodes[softmax.id + 1:]:
        if not any(k in probs for k in node.uses):
            probs.difference_update(node.defs)
            continue
        if node.kind == "copy" or node.canon in _PROBS_CANON:
            probs.update(o.key for o in node.outs)
            continue
        size = _size_of(node, probs)
        if size is not None:
            sizes[node.outs[0].key] = size  # (a size read: no value of the probabilities taken)
            continue
        viewed = _view_unsqueeze(node, probs, sizes, rank)
        if viewed is not None or (node.kind == "method" and node.op == "unsqueeze"):
            if _ref(node.args[0]) is None or node.args[0].key not in probs:
                break
            at = _from_back(_axis_step(node, "unsqueeze") if viewed is None else viewed, rank)
            if at not in (-1, -2):
                break
            reader = next((n for n in nodes[node.id + 1:] if node.outs[0].key in n.uses), None)
            if reader is not None and reader.canon in _RESTORED_READERS:
                return node, at, None
            summed = _mul_sum(nodes, node, rank, product) if at == -1 else None
            return (node, at, summed) if summed is not None else (None, None, None)
        if node.kind in ("other", "exit", "branch"):
            continue  # returned or stored: read as written (the rewrite's guard keeps them)
        break
    return None, None, None


def _size_of(node, probs) -> int | None:
    """i of ``p.size(i)`` (one non-negative int), p the probabilities; None otherwise."""
    if node.kind != "method" or node.op != "size" or len(node.args) != 2 or node.kwargs or len(node.outs) != 1:
        return None
    tensor = _ref(node.args[0])
    i = _int(node.args[1])
    return i if tensor is not None and tensor.key in probs and i is not None and i >= 0 else None


def _view_unsqueeze(node, probs, sizes: dict, rank: int | None) -> int | None:
    """d when ``node`` is ``p.view(p.size(0), ..., 1, ..., p.size(n - 1))`` (or ``reshape``):
    every size of the probabilities p in order with one 1 put in at position d -- trankit's
    ``attn.view(attn.size(0), 1, attn.size(1))`` -- which is ``p.unsqueeze(d)``.  Only where
    the product's rank is known (the probabilities have one axis less): then the sizes written
    are all of p's."""
    if rank is None or node.kind != "method" or node.op not in ("view", "reshape") or node.kwargs \
            or len(node.outs) != 1 or len(node.args) != rank + 1:
        return None
    tensor = _ref(node.args[0])
    if tensor is None or tensor.key not in probs:
        return None
    dims = node.args[1:]
    ones = [i for i, d in enumerate(dims) if _ref(d) is None and _int(d) == 1]
    if len(ones) != 1:
        return None
    rest = [_ref(d) for i, d in enumerate(dims) if i != ones[0]]
    if any(r is None or sizes.get(r.key) != i for i, r in enumerate(rest)):
        return None
    return ones[0]


def _mul_sum(nodes, column, rank: int | None, product):
    """``(column * v).sum(-2)`` -- ``column`` the probabilities unsqueezed at -1, maybe
    broadcast first by ``.repeat(1, ..., 1, n)`` or ``.expand_as(...)`` -- is the product of the
    probabilities' row with ``v`` (the keys' axis summed), its size-1 row axis dropped
    (wavencoder's ``torch.mul(p.unsqueeze(2).repeat(1, 1, D), values).sum(1)``).  Returns (the
    broadcasting steps, the multiplication) when each value between is read by the next step
    only; None otherwise (a sum over another axis, a product read elsewhere).  A sum dim
    written from the front counts from the column's rank only where nothing between adds a
    leading axis (:func:`_keeps_rank`); else it must be written from the back, where the keys'
    axis stays whatever leads are broadcast on."""
    spread: list = []
    node = column
    kept = rank is not None
    while True:
        out = node.outs[0].key
        readers = [n for n in nodes[node.id + 1:] if out in n.uses]
        if len(readers) != 1:
            return None
        step = readers[0]
        if step.kind == "method" and step.op in ("repeat", "expand_as") and len(step.outs) == 1 \
                and not step.kwargs and _ref(step.args[0]) is not None and step.args[0].key == out \
                and (step.op == "expand_as" or (len(step.args) > 2 and all(_int(a) == 1 for a in step.args[1:-1]))):
            kept = kept and _keeps_rank(nodes, step, rank, product)
            spread.append(step)
            node = step
            continue
        break
    mul = step
    args = _factors(mul)
    if mul.canon != "torch.mul" or args is None or len(mul.outs) != 1 \
            or sum(_ref(a) is not None and a.key == out for a in args) != 1:
        return None
    other = next(a for a in args if not (_ref(a) is not None and a.key == out))
    kept = kept and _product_operand(nodes, other, product, mul.id)
    readers = [n for n in nodes[mul.id + 1:] if mul.outs[0].key in n.uses]
    total = readers[0] if len(readers) == 1 else None
    if total is None or total.kind != "method" or total.op != "sum" or _ref(total.args[0]) is None \
            or total.args[0].key != mul.outs[0].key:
        return None
    dims = [*total.args[1:], *(v for k, v in total.kwargs if k == "dim")]
    if len(dims) != 1 or len(total.args) + len(total.kwargs) != 2:
        return None  # (keepdim=, dtype=, or no dim: not the keys' axis alone)
    dim = _int(dims[0])
    if dim is None or (dim >= 0 and not kept) or _from_back(dim, rank) != -2:
        return None
    return spread, mul


def _keeps_rank(nodes, step, rank: int, product) -> bool:
    """Does the broadcasting ``step`` keep the column's rank ``rank``: ``repeat`` with exactly
    ``rank`` sizes (more put leading axes in front), ``expand_as`` of an operand of the product
    (whose rank the product's fixes, at most ``rank``)?"""
    if step.op == "repeat":
        return len(step.args) - 1 == rank
    return len(step.args) == 2 and _product_operand(nodes, step.args[1], product, step.id)


def _product_operand(nodes, value, product, before: int) -> bool:
    """Is ``value`` an operand of the attention's ``product`` as it was there, or what one was
    transposed from (``values.transpose(1, 2)``), nothing between rebinding it?  Its rank is
    then at most the product's, so broadcasting it against the column adds no leading axis."""
    ref = _ref(value)
    if ref is None:
        return False
    for arg in product.view.args:
        operand = _ref(arg)
        if operand is None:
            continue
        at = product.id
        if operand.key != ref.key:
            made = _definer(nodes, operand.key, product.id)
            if made is None or made.kind != "method" or made.op != "transpose" or len(made.args) != 3 \
                    or made.kwargs or _ref(made.args[0]) is None or made.args[0].key != ref.key:
                continue
            at = made.id
        if not any(ref.key in n.defs for n in nodes[at + 1:before]):
            return True
    return False


def _factors(mul):
    """The two factors of a multiplication (``torch.mul(a, b)`` or ``a * b``), None otherwise."""
    if mul.view is not None:
        return mul.view.args if len(mul.view.args) == 2 and not mul.view.kwargs else None
    return mul.args if mul.kind == "op" and len(mul.args) == 2 and not mul.kwargs else None


def _transposed(node, assumed: int | None):
    """``node`` (``p.unsqueeze(d)`` putting the size-1 axis back at the other of the two last
    axes) read as ``transpose(-2, -1)`` of the probabilities with that axis restored, which
    holds the same elements in that order."""
    const = type(next(a for a in node.args[1:] if _ref(a) is None))
    view = View((node.args[0],), (("dim0", const(-2)), ("dim1", const(-1))), node.arg_spans[:1],
                        ((None, None), (None, None)))
    return replace(node, op="transpose", canon="torch.transpose", view=view, assumed_rank=assumed)


def _row_product(mul, row):
    """``mul`` (``row * v`` summed over the keys' axis by the next step) read as ``row @ v``:
    the row's operand first, the spans kept."""
    args = _factors(mul)
    spans = mul.view.arg_spans if mul.view is not None else mul.arg_spans
    first = 0 if _ref(args[0]) is not None and args[0].key == row.outs[0].key else 1
    order = (first, 1 - first)
    view = View(tuple(args[i] for i in order), (), tuple(spans[i] for i in order), ())
    return replace(mul, canon="torch.matmul", view=view)


def _copy(node):
    """``node`` (a squeeze or unsqueeze of its first argument) as a copy of that argument."""
    return replace(node, kind="copy", op="", args=(node.args[0],), canon="", view=None,
                   uses=frozenset({node.args[0].key}), arg_spans=node.arg_spans[:1])
