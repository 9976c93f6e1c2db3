"""Attention scores an einsum writes with their axes moved, read in the product's own layout.

``einsum("ibnd,jbnd->ijbn", q, k)`` (Transformer-XL) is the product ``q' @ k'^T`` of q and k
moved to ``[b, n, i, d]`` / ``[b, n, j, d]``, its ``[b, n, i, j]`` result then moved to the
written ``[i, j, b, n]`` (canon.einsum_product; the graph makes the product one node and the
move another).  A softmax over the written dim 1 is then the softmax over the product's last
axis, the keys, and ``einsum("ijbn,jbnd->ibnd", p, v)`` moves the probabilities back to
``[b, n, i, j]`` before it contracts their last axis with v: the attention SDPA computes, laid
out elsewhere.  Channel-first scores (ane-transformers' ``einsum("bchq,bkhc->bkhq", q, k)``,
``softmax(dim=1)``, ``einsum("bkhq,bchk->bchq", p, v)``) are the keys-first product ``k' @
q'^T`` normalised over its axis -2, read as the rule's keys-first alternatives read it.

:func:`read` finds, per such product, every softmax its scores reach through element-wise
steps (a scale, an added bias or mask, a fill, a cast: each acts on every element where it
is, whatever the layout), and every product that reads those probabilities (through dropout
and casts).  Where every softmax normalises the axis the product put the keys on, and every
product moves the probabilities back to the product's layout (its move of that operand undoes
the scores' move), the written move stands for nothing the attention computes: the product
node takes the scores' names, the move node is emptied, each softmax's dim becomes the
product's own (negative) dim and each probability operand loses its move.  The product's view
keeps the output move (``moves[2]``): the masks and biases added to the scores are written in
the moved layout, which a rewrite must undo (synth/sdpa.py).  Anything else reading the scores
on the way -- a reshape, a transpose, another product, a softmax over another axis (the
queries: not attention SDPA computes) -- or a product contracting another axis of the
probabilities leaves the whole flow as it was.
"""

from __future__ import annotations

from ..records import replace
from .canon import View
from .ops import SOFTMAX

# Steps that act on each element where it is: the scores' layout does not change what they do.
_ELEMENTWISE_CANON = frozenset({"torch.add", "torch.sub", "torch.mul", "torch.div", "torch.Tensor.masked_fill",
                                "torch.Tensor.to"})
_ELEMENTWISE_OPS = frozenset({"+", "-", "*", "/"})
_SAME_METHODS = frozenset({"float", "half", "double", "bfloat16", "type_as", "to", "contiguous", "clone",
                           "mul_", "div_", "add_", "sub_", "masked_fill_", "masked_fill"})
# Steps after the softmax that keep each probability where it is (a head mask multiplies).
_PROBS_CANON = frozenset({"torch.nn.functional.dropout", "torch.Tensor.to", "torch.mul"})


def _ref_keys(values) -> list[str]:
    return [v.key for v in values if hasattr(v, "key") and hasattr(v, "text")]


def definer(nodes, key: str, before: int):
    """The last node before node ``before`` that binds ``key`` (None: none does), the step
    whose value a later read of ``key`` there gets (rows.py, singletons.py)."""
    for node in reversed(nodes[:before]):
        if key in node.defs:
            return node
    return None


def _int(value):
    inner = getattr(value, "value", None)
    return inner if isinstance(inner, int) and not isinstance(inner, bool) else None


def _elementwise(node) -> bool:
    if node.kind == "copy":
        return True
    if node.kind == "op":
        return node.op in _ELEMENTWISE_OPS
    if node.canon in _ELEMENTWISE_CANON:
        return True
    return node.kind == "method" and node.op in _SAME_METHODS


# Methods whose result holds no element of the scores where it was (a size, a number) or that
# store them (a list the probabilities are returned in).
_HARMLESS_METHODS = frozenset({"size", "dim", "numel", "item", "tolist", "append", "extend", "detach", "cpu", "numpy"})


def _harmless(node, keys: set) -> bool:
    """Does ``node`` read the values ``keys`` without computing a tensor from their elements
    laid out as written: returned or stored, their size or dtype read (``torch.finfo(s.dtype)``
    reads ``s.dtype``, not ``s``)?"""
    if node.kind in ("other", "exit", "branch"):
        return True
    if node.kind == "method" and node.op in _HARMLESS_METHODS:
        return True
    read = _ref_keys(node.args)
    if node.view is not None:
        read += _ref_keys(node.view.args) + _ref_keys(v for _, v in node.view.kwargs)
    return not any(k in keys for k in read)


def _inputs(node) -> list[str]:
    return _ref_keys(node.view.args if node.view is not None else node.args)


def read(nodes) -> dict:
    """Rewrite, in place, the moved-layout attention of ``nodes`` (see the module docstring).
    Returns, per softmax read in a product's layout, its node id -> the product's node id: its
    dim is the product's, which only a match of the whole attention (holding that product) may
    read; a rule matching the softmax alone (ADP004's last-dim softmax) must not."""
    read_in: dict[int, int] = {}
    for product in nodes:
        view = product.view
        if product.canon != "torch.matmul" or view is None or view.out_move is None \
                or len(product.outs) != 1 or not product.outs[0].key.startswith("%"):
            continue
        _read_one(nodes, product, read_in)
    return read_in


def _read_one(nodes, product, read_in: dict) -> None:
    out_move = product.view.out_move
    rank = len(out_move)
    temp = product.outs[0].key
    move = next((n for n in nodes[product.id + 1:] if n.kind == "call" and not n.canon
                 and _ref_keys(n.args) == [temp] and len(n.args) == 1), None)
    if move is None or len(move.outs) != 1:
        return
    scores = {move.outs[0].key}
    softmaxes = []
    for node in nodes[move.id + 1:]:
        if not any(k in scores for k in node.uses):
            scores.difference_update(node.defs)  # a name bound again to something else
            continue
        inputs = _inputs(node)
        if node.canon == SOFTMAX:
            if not inputs or inputs[0] not in scores or len(node.outs) != 1:
                return
            softmaxes.append(node)
            scores.difference_update(node.defs)  # (``w = w.softmax(dim=1)``: w holds the probabilities)
            continue
        if _elementwise(node):
            scores.update(o.key for o in node.outs)
            continue
        if not _harmless(node, scores):
            return  # a step that reads the scores in their written layout (a reshape, a transpose)
        scores.difference_update(node.defs)
    if not softmaxes:
        return
    dims, products = {}, []
    for softmax in softmaxes:
        d = _int(dict(softmax.view.kwargs).get("dim")) if softmax.view is not None else None
        if d is None or not -rank <= d < rank:
            return
        canonical = out_move[d % rank] - rank  # the product's axis the written dim holds
        if canonical not in (-1, -2):
            return  # over a batch axis (heads, batch): not attention
        readers = _probability_products(nodes, softmax)
        if readers is None:
            return
        for reader, index in readers:
            moves = reader.view.moves
            back = moves[index] if moves else None
            if back is None or len(back) != rank or tuple(out_move[back[i]] for i in range(rank)) != tuple(range(rank)):
                return  # the product reads the probabilities in another layout: another axis contracted
            # keys last (q @ k^T) are contracted as the first factor's last axis; keys first
            # (k @ q^T, normalised over -2) as the second factor's axis -2
            if (canonical == -1) != (index == 0):
                return
            products.append((reader, index))
        dims[softmax.id] = canonical
    if not products:
        return
    # the product takes the scores' name; the move reads nothing and writes nothing
    product.outs, product.defs = move.outs, move.defs
    move.kind, move.op, move.args, move.outs, move.uses, move.defs = "other", "", (), (), frozenset(), frozenset()
    move.arg_spans = ()
    for softmax in softmaxes:
        read_in[softmax.id] = product.id
        kwargs = tuple((n, type(v)(dims[softmax.id]) if n == "dim" else v) for n, v in softmax.view.kwargs)
        softmax.view = replace(softmax.view, kwargs=kwargs)
    for reader, index in products:
        moves = list(reader.view.moves)
        moves[index] = None
        reader.view = replace(reader.view, moves=tuple(moves) if any(m is not None for m in moves) else ())


def _probability_products(nodes, softmax):
    """The einsum products reading the probabilities of ``softmax`` (through dropout, casts, a
    head mask), each with the index of the probabilities among its operands; None when a step
    other than those reads them (a reshape, a transpose the product then reads)."""
    probs = {softmax.outs[0].key}
    found = []
    for node in nodes[softmax.id + 1:]:
        if not any(k in probs for k in node.uses):
            probs.difference_update(node.defs)
            continue
        inputs = _inputs(node)
        if node.canon == "torch.matmul":
            if not isinstance(node.view, View) or len(node.view.args) != 2 or not node.op.endswith("einsum"):
                return None
            index = next((i for i, k in enumerate(inputs) if k in probs), None)
            if index is None or sum(k in probs for k in inputs) != 1:
                return None
            found.append((node, index))
            continue
        if node.kind == "copy" or node.canon in _PROBS_CANON or (node.kind == "op" and node.op == "*") \
                or (node.kind == "method" and node.op in _SAME_METHODS):
            probs.update(o.key for o in node.outs)
            continue
        if not _harmless(node, probs):
            return None  # read in the written layout (a reshape, a transpose)
        probs.difference_update(node.defs)  # returned, stored (``outputs.append(p)``)
    return found
