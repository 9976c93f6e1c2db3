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

- between the squeeze and the softmax, casts -- and, for keys-first scores only, a
  ``masked_fill``: the fill then reads as a mask on the (keys, queries) scores, which the fixer
  declines (its layout is the squeezed one), while a mask on queries-first scores would reach
  the fused call's ``attn_mask`` as written, broadcast wrongly: those stay unread;
- the unsqueeze putting the size-1 axis back at the *other* of the two last axes gives the
  probabilities transposed (a one-row matrix is its one-column one's transpose): it is read as
  ``transpose(-2, -1)`` of the restored probabilities, the rule's transposed value product.
  An unsqueeze written from the front (``p.unsqueeze(1)``) of a ``matmul`` of unknown rank is
  that axis at one rank only (3 for dim 1): the node records it as ``assumed_rank``, and a fix
  takes the fused call only where q, k and v have that rank (the guard checks it at run time).
"""

from __future__ import annotations

from ..records import replace
from .canon import View
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
    """The dim of ``x.squeeze(d)`` / ``x.unsqueeze(d)`` (one positional int), else None."""
    if node is None or node.kind != "method" or node.op != op or len(node.args) != 2 or node.kwargs \
            or len(node.outs) != 1 or _ref(node.args[0]) is None:
        return None
    return _int(node.args[1])


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
    rank = 3 if product.op in _PRODUCTS_OF_RANK_THREE else None
    axis = _from_back(d, rank)
    if axis not in (-1, -2) or (axis == -2 and any(n.canon == _FILL for n in steps)):
        return None
    # the operand that gives the product's squeezed axis was unsqueezed there: that axis is size 1
    operand = _ref(product.view.args[1 if axis == -1 else 0])
    unsqueezed = _definer(nodes, operand.key, product.id) if operand is not None else None
    if _from_back(_axis_step(unsqueezed, "unsqueeze"), rank) != axis:
        return None
    k = _int(dict(softmax.view.kwargs).get("dim"))
    k = _from_back(k, rank - 1 if rank is not None else None)
    if k is None:
        return None
    keys = k if k > axis else k - 1  # the softmax's axis among the product's
    if keys not in (-1, -2) or keys == axis:
        return None  # over a batch axis: not attention
    back, at, assumed = _restoring_unsqueeze(nodes, softmax, axis, rank)
    if back is None:
        return None
    nodes[squeeze.id] = _copy(squeeze)
    nodes[back.id] = _copy(back) if at == axis else _transposed(back, assumed)
    kwargs = tuple((n, type(v)(keys) if n == "dim" else v) for n, v in softmax.view.kwargs)
    # (an assumed rank on the softmax too: a copy is no step of the match, the softmax is)
    nodes[softmax.id] = replace(softmax, view=replace(softmax.view, kwargs=kwargs),
                                assumed_rank=assumed if assumed is not None else softmax.assumed_rank)
    return product.id


def _squeezed_scores(nodes, key: str, before: int):
    """(the node defining the scores the softmax at ``before`` reads, walked back through casts
    and fills of them -- module docstring -- and those steps).  Every binding of the walked
    values between that node and the softmax must be a walked step (a fill under ``if mask is
    not None:`` leaves the squeezed scores on the other path: the same values)."""
    steps: list = []
    node = _definer(nodes, key, before)
    while node is not None and node.canon in (_CAST, _FILL) and node.view is not None and node.view.args \
            and len(node.outs) == 1 and len(steps) < 4:
        steps.append(node)
        inner = _ref(node.view.args[0])
        if inner is None:
            return None, ()
        node = _definer(nodes, inner.key, node.id)
    if steps and node is not None:
        walked = {n.id for n in steps}
        keys = {o.key for n in steps for o in n.outs}
        if any(n.id not in walked and n.defs & keys for n in nodes[node.id + 1:before]):
            return None, ()
    return node, steps


def _restoring_unsqueeze(nodes, softmax, axis: int, rank: int | None):
    """(the unsqueeze putting the size-1 axis back on the probabilities of ``softmax`` before a
    product -- or a transpose then a product -- reads them, the axis it puts back counted from
    the back, the rank that axis assumes or None); (None, None, None) when another step reads
    them in their squeezed layout first.  The axis is ``axis`` (the layout restored) or the other
    of the two last (the layout transposed), never a batch axis."""
    probs = {softmax.outs[0].key}
    for node in nodes[softmax.id + 1:]:
        if not any(k in probs for k in node.uses):
            probs.difference_update(node.defs)
            continue
        if node.kind == "copy" or node.canon in _PROBS_CANON:
            probs.update(o.key for o in node.outs)
            continue
        if node.kind == "method" and node.op == "unsqueeze":
            if _ref(node.args[0]) is None or node.args[0].key not in probs:
                break
            at, assumed = _restored_axis(_axis_step(node, "unsqueeze"), axis, rank)
            if at is None:
                break
            reader = next((n for n in nodes[node.id + 1:] if node.outs[0].key in n.uses), None)
            if reader is None or reader.canon not in _RESTORED_READERS:
                break
            return node, at, assumed
        if node.kind in ("other", "exit", "branch"):
            continue  # returned or stored: read as written (the rewrite's guard keeps them)
        break
    return None, None, None


def _restored_axis(dim: int | None, axis: int, rank: int | None) -> tuple:
    """(the axis, counted from the back, at which an unsqueeze at ``dim`` of the probabilities
    puts the size-1 axis back, the rank assumed for it or None): ``axis`` or the other of the
    two last axes; (None, None) for any other.  A dim from the front of a value of unknown rank
    is each of the two at one rank (``dim - at``): read at the smaller one that has a batch axis
    (3 or more; 2 is one unbatched query), which the fix then checks at run time."""
    at = _from_back(dim, rank)
    if at in (-1, -2):
        return at, None
    if dim is None or dim < 0 or rank is not None:
        return None, None
    at = min((-1, -2), key=lambda a: (dim - a < 3, dim - a))
    return at, dim - at


def _transposed(node, assumed: int | None):
    """``node`` (``p.unsqueeze(d)`` putting the size-1 axis back at the other of the two last
    axes) read as ``transpose(-2, -1)`` of the probabilities with that axis restored, which
    holds the same elements in that order."""
    const = type(node.args[1])
    view = View((node.args[0],), (("dim0", const(-2)), ("dim1", const(-1))), node.arg_spans[:1],
                        ((None, None), (None, None)))
    return replace(node, op="transpose", canon="torch.transpose", view=view, assumed_rank=assumed)


def _copy(node):
    """``node`` (a squeeze or unsqueeze of its first argument) as a copy of that argument."""
    return replace(node, kind="copy", op="", args=(node.args[0],), canon="", view=None,
                   uses=frozenset({node.args[0].key}), arg_spans=node.arg_spans[:1])
