"""Attention over grouped axes: einsum scores over several query or key axes, the key group
flattened to one axis for the softmax and viewed back for the value product.

A 2-D grid of pixels attending to another (``einsum("bnchw,bncyx->bnhwyx", q, k)``, then
``.view(b, n, h, w, -1).softmax(-1).view(b, n, h, w, h, w)``, then ``einsum("bnhwyx,bncyx->
bnchw", p, v)``), a chunk's queries against every retrieved neighbour's tokens
(``"bcihd,bcnjhd->bchinj"``, softmax over ``view(*attn.shape[:-2], -1)``, viewed back to
``attn.shape``), a query map against every support image of a class (einops ``rearrange``
to ``(n i j)`` and back): each is the attention SDPA computes with the query group and the key
group each flattened to one axis, in the order written.  canon.einsum_grouped reads the two
einsums (the graph makes each a product node whose view carries that reading); :func:`read`
keeps them only where the chain between them is this one:

- from the scores, element-wise steps only (a scale, a bias or mask added, a cast: each acts on
  every element where it is) up to a view that flattens exactly the key group: as many sizes
  as the scores have axes less the key group's plus one (the last the group: a row-major view
  groups each row's trailing elements), ``*<scores>.shape[:-keys], -1``, or a ``rearrange``
  that writes the scores' axes and parenthesises the last ``keys`` of them;
- a softmax over that view's last axis (the key group);
- dropout and casts, then a view back: the flattening view's leading sizes then the key
  group's (as many sizes as the scores have axes), ``<scores>.shape``, or the inverse
  ``rearrange``;
- the value product reading that view back, summing exactly as many trailing axes as the key
  group holds, its query group as long as the scores'.

The view back becomes a copy of the probabilities (the alias the matcher follows, as
structure/rows.py does), a ``rearrange`` before the softmax a view.  Anything else (a softmax
over another axis, a view that mixes the key group with a query axis, a value product over
another group) leaves both einsums opaque, as they were.  The fixer declines the reading
(synth/sdpa.py: SDPA would take q, k and v flattened, which it does not write).
"""

from __future__ import annotations

from ..records import replace
from .canon import ref as _ref
from .layouts import _elementwise, _int
from .ops import SOFTMAX

_VIEWS = frozenset({"view", "reshape"})
_PROBS = frozenset({"torch.nn.functional.dropout", "torch.Tensor.to"})
_SAME = frozenset({"contiguous", "float", "type_as", "to", "half", "bfloat16"})


def read(nodes) -> None:
    """Keep, in place, the grouped einsums of a verified chain; make the others opaque."""
    kept: set[int] = set()
    for node in nodes:
        view = node.view
        if node.canon == "torch.matmul" and view is not None and view.grouped and view.grouped[0] == "scores":
            found = _chain(nodes, node)
            if found is not None:
                kept |= found
    for node in nodes:
        view = node.view
        if node.canon == "torch.matmul" and view is not None and view.grouped and node.id not in kept:
            nodes[node.id] = replace(node, canon="", view=None)


def _reader(nodes, key: str, after: int):
    """The first node after ``after`` reading ``key``, and whether it is the only one before
    ``key`` is bound again."""
    for node in nodes[after + 1:]:
        if key in node.uses:
            return node
        if key in node.defs:
            return None
    return None


def _rearranged(node, key: str):
    """(input pattern axes, output pattern) of ``einops.rearrange(<key>, "...")``, else None."""
    if node.kind != "call" or node.op != "einops.rearrange" or len(node.args) != 2 \
            or _ref(node.args[0]) is None or node.args[0].key != key:
        return None
    pattern = getattr(node.args[1], "value", None)
    if not isinstance(pattern, str) or pattern.count("->") != 1:
        return None
    left, right = (side.split() for side in pattern.split("->"))
    return left, right


def _flattens(node, key: str, rank: int, keys: int, source: str) -> tuple | None:
    """Does ``node`` flatten exactly the last ``keys`` axes of ``key`` (a rank-``rank``
    value, ``source`` its text)?  Its leading sizes (to compare with the view back), else None."""
    if node.kind == "method" and node.op in _VIEWS and node.args and _ref(node.args[0]) is not None \
            and node.args[0].key == key and not node.kwargs:
        sizes = node.args[1:]
        if len(sizes) == rank - keys + 1:
            return tuple(sizes[:-1])
        if len(sizes) == 2 and _int(sizes[1]) == -1 and getattr(sizes[0], "text", None) == f"{source}.shape[:-{keys}]":
            return ("shape",)
        return None
    pattern = _rearranged(node, key)
    if pattern is None or node.kwargs:
        return None
    left, right = pattern
    grouped = "(" + " ".join(left[-keys:]) + ")"
    if len(left) == rank and len(set(left)) == rank and all(a.isidentifier() for a in left) \
            and " ".join(right).replace("( ", "(") == " ".join(left[:-keys] + [grouped]):
        return ("rearrange", tuple(left), tuple(right))
    return None


def _restores(node, key: str, rank: int, keys: int, leading: tuple, source: str) -> bool:
    """Does ``node`` view ``key`` (the probabilities over the flattened key group) back to the
    scores' shape (the flattening's leading sizes, then the key group's)?"""
    if node.kind == "method" and node.op in _VIEWS and node.args and _ref(node.args[0]) is not None \
            and node.args[0].key == key and not node.kwargs and len(node.outs) == 1:
        sizes = node.args[1:]
        if len(sizes) == 1:
            return getattr(sizes[0], "text", None) in (f"{source}.shape", f"{source}.size()")
        return len(sizes) == rank and leading and leading[0] not in ("shape", "rearrange") \
            and all(a == b for a, b in zip(sizes, leading))
    pattern = _rearranged(node, key)
    if pattern is None or not leading or leading[0] != "rearrange":
        return False
    left, right = pattern
    return " ".join(left) == " ".join(leading[2]) and " ".join(right) == " ".join(leading[1]) \
        and len(node.outs) == 1


def _chain(nodes, scores) -> set[int] | None:
    """The ids of the scores and value products of a verified chain (module docstring)."""
    _, _, rank, keys, rows = scores.view.grouped
    if len(scores.outs) != 1:
        return None
    key, at = scores.outs[0].key, scores.id
    node = _reader(nodes, key, at)
    while node is not None and _elementwise(node) and len(node.outs) == 1:
        key, at = node.outs[0].key, node.id
        node = _reader(nodes, key, at)
    if node is None:
        return None
    flat, source = node, key
    source_text = next((a.text for a in flat.args[:1] if _ref(a) is not None), "")
    leading = _flattens(flat, key, rank, keys, source_text)
    if leading is None or len(flat.outs) != 1:
        return None
    softmax = _reader(nodes, flat.outs[0].key, flat.id)
    if softmax is None or softmax.canon != SOFTMAX or softmax.view is None or len(softmax.outs) != 1:
        return None
    dim = _int(dict(softmax.view.kwargs).get("dim"))
    if dim not in (-1, rank - keys):
        return None
    key, at = softmax.outs[0].key, softmax.id
    node = _reader(nodes, key, at)
    while node is not None and len(node.outs) == 1 and (
            node.canon in _PROBS or (node.kind == "method" and node.op in _SAME)):
        key, at = node.outs[0].key, node.id
        node = _reader(nodes, key, at)
    if node is None or not _restores(node, key, rank, keys, leading, source_text):
        return None
    names = {source} if leading[:1] == ("shape",) else {a.key for a in leading if _ref(a) is not None}
    if any(names & n.defs for n in nodes[flat.id + 1:node.id]):
        return None  # a name the view back reads bound again after the flattening read it
    back = node
    product = _reader(nodes, back.outs[0].key, back.id)
    view = product.view if product is not None else None
    if view is None or product.canon != "torch.matmul" or not view.grouped or view.grouped[0] != "values" \
            or view.grouped[2:] != (rank, keys, rows) or _ref(view.args[0]) is None \
            or view.args[0].key != back.outs[0].key:
        return None
    out = back.args[0]
    nodes[back.id] = replace(back, kind="copy", op="", args=(out,), kwargs=(), canon="", view=None,
                             uses=frozenset({out.key}), arg_spans=back.arg_spans[:1], kwarg_spans=())
    if flat.kind == "call":  # a rearrange flattening the key group: a view of the scores
        nodes[flat.id] = replace(flat, kind="method", op="reshape", args=flat.args[:1], kwargs=(),
                                 uses=frozenset({flat.args[0].key}), arg_spans=flat.arg_spans[:1], kwarg_spans=())
    return {scores.id, product.id}
