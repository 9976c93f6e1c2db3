"""Attention probabilities scaled by a factor constant over queries and keys.

NormFormer-style attention multiplies the probabilities by a learned scalar per head before
the value product: ``w = self.head_scale.view(1, n_heads, 1, 1)``, ``p = softmax(s) * w``,
``p @ v``.  A factor of size 1 on the probabilities' last two axes multiplies every query's
row and every key's column alike, so ``(p * w) @ v`` is ``p @ (w * v)``: the attention SDPA
computes, with the values scaled.  :func:`read_one` (called per softmax by structure/rows.py)
gives such a product the table's own operation ``canon.head_scale`` (the rule's optional step
after the softmax), when its other factor is a literal number or a value viewed to sizes that
end in two literal 1s (``.view(...)`` / ``.reshape(...)`` with at least three sizes, or an
einops ``rearrange`` whose output ends in ``1 1``).  A factor of any other shape (a weight per
key, per query, or a full tensor) stays a product: not attention SDPA computes.  The fixer
declines the step (synth/sdpa.py).
"""

from __future__ import annotations

from ..records import replace
from .canon import View
from .canon import ref as _ref

_CASTS = frozenset({"float", "type_as", "to", "half", "bfloat16"})


def _number(value) -> bool:
    inner = getattr(value, "value", None)
    return isinstance(inner, (int, float)) and not isinstance(inner, bool) and _ref(value) is None


def _one(value) -> bool:
    return _ref(value) is None and getattr(value, "value", None) == 1


def _per_head(nodes, key: str, before: int) -> bool:
    """Is ``key`` (last bound before node ``before``) a view to sizes ending in two 1s?"""
    for node in reversed(nodes[:before]):
        if key not in node.defs:
            continue
        if len(node.outs) != 1 or node.outs[0].key != key:
            return False
        if node.kind == "method" and node.op in ("view", "reshape"):
            sizes = node.args[1:]
            return len(sizes) >= 3 and _one(sizes[-1]) and _one(sizes[-2])
        if node.kind == "call" and node.op == "einops.rearrange" and len(node.args) == 2:
            pattern = getattr(node.args[1], "value", None)
            return isinstance(pattern, str) and pattern.count("->") == 1 \
                and pattern.split("->")[1].split()[-2:] == ["1", "1"]
        return False
    return False


def read_one(nodes, softmax) -> None:
    """Make, in place, the product of the probabilities of ``softmax`` (maybe cast first) by
    such a factor a ``canon.head_scale`` step (module docstring)."""
    key, at = softmax.outs[0].key, softmax.id
    for _ in range(2):
        node = next((n for n in nodes[at + 1:] if key in n.uses or key in n.defs), None)
        if node is None or key not in node.uses or len(node.outs) != 1:
            return
        if node.kind == "op" and node.op == "*" and len(node.args) == 2:
            break
        if not (node.canon == "torch.Tensor.to" or (node.kind == "method" and node.op in _CASTS)):
            return
        key, at = node.outs[0].key, node.id
    else:
        return
    args = node.args
    side = next((i for i, a in enumerate(args) if _ref(a) is not None and a.key == key), None)
    if side is None:
        return
    other = args[1 - side]
    if not (_number(other) or (_ref(other) is not None and other.key != key and _per_head(nodes, other.key, node.id))):
        return
    spans = node.arg_spans if len(node.arg_spans) == 2 else (None, None)
    view = View((args[side], other), (), (spans[side], spans[1 - side]), ())
    nodes[node.id] = replace(node, canon="canon.head_scale", view=view)
