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
(so it has size 1), the softmax reads the squeezed scores directly and normalises the other
of the two last axes (the keys), and the probabilities reach an unsqueeze at the same axis
through copies, dropout or casts only.  A product's rank is known for ``bmm`` (3); for
``matmul`` / ``@`` every dim involved must be written from the back.  Anything else -- a mask
or a scale applied to the squeezed scores (it would broadcast against the other layout), a
squeeze of another axis, an unsqueeze elsewhere -- leaves the flow as it was.
"""

from __future__ import annotations

from ..records import replace
from .canon import ref as _ref
from .layouts import _int
from .layouts import definer as _definer

_PRODUCTS_OF_RANK_THREE = frozenset({"torch.bmm", "bmm", "torch.Tensor.bmm"})
# steps after the softmax that keep each probability where it is
_PROBS_CANON = frozenset({"torch.nn.functional.dropout", "torch.Tensor.to"})


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
    squeeze = _definer(nodes, scores_in.key, softmax.id)
    d = _axis_step(squeeze, "squeeze")
    if d is None:
        return None
    product = _definer(nodes, squeeze.args[0].key, squeeze.id)
    if product is None or product.canon != "torch.matmul" or product.view is None or len(product.view.args) != 2 \
            or len(product.outs) != 1:
        return None
    rank = 3 if product.op in _PRODUCTS_OF_RANK_THREE else None
    axis = _from_back(d, rank)
    if axis not in (-1, -2):
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
    back = _restoring_unsqueeze(nodes, softmax, axis, rank)
    if back is None:
        return None
    nodes[squeeze.id] = _copy(squeeze)
    nodes[back.id] = _copy(back)
    kwargs = tuple((n, type(v)(keys) if n == "dim" else v) for n, v in softmax.view.kwargs)
    nodes[softmax.id] = replace(softmax, view=replace(softmax.view, kwargs=kwargs))
    return product.id


def _restoring_unsqueeze(nodes, softmax, axis: int, rank: int | None):
    """The unsqueeze putting the query axis back on the probabilities of ``softmax`` before a
    product reads them; None when another step reads them in their squeezed layout first."""
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
                return None
            if _from_back(_axis_step(node, "unsqueeze"), rank) != axis:
                return None
            reader = next((n for n in nodes[node.id + 1:] if node.outs[0].key in n.uses), None)
            return node if reader is not None and reader.canon == "torch.matmul" else None
        if node.kind in ("other", "exit", "branch"):
            continue  # returned or stored: read as written (the rewrite's guard keeps them)
        return None
    return None


def _copy(node):
    """``node`` (a squeeze or unsqueeze of its first argument) as a copy of that argument."""
    return replace(node, kind="copy", op="", args=(node.args[0],), canon="", view=None,
                   uses=frozenset({node.args[0].key}), arg_spans=node.arg_spans[:1])
