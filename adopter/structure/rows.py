"""Attention scores flattened to rows for the softmax and viewed straight back.

DeepVoice3 normalises its ``(B, T, S)`` scores as rows: ``sz = x.size()``, ``x =
F.softmax(x.view(sz[0] * sz[1], sz[2]), dim=1)``, ``x = x.view(sz)``, then drops out and
multiplies the values.  The view after the softmax gives the probabilities back the shape the
scores had before they were flattened, read from those very scores, so past it the flow holds
what a softmax over the scores' last axis holds: :func:`read` makes that view a copy of the
probabilities (an alias, which the matcher follows), and the attention reads as any other.
The view before the softmax stays a step of its own (the rule's optional ``view``), and the
statement reading the scores' size stays in the attention's code, which the fixer declines
(the fused call never forms the scores).

Only this shape is read: the view's one argument a name bound to ``<scores>.size()`` (a
node of the flow) where ``<scores>`` is what the view before the softmax flattened, with no
new binding of either name between.  A view to another shape (the transposed sizes, another
tensor's size) regroups the rows' elements and stays a view.
"""

from __future__ import annotations

from ..records import replace
from . import headscale, singletons
from .canon import ref as _ref
from .layouts import definer as _definer
from .ops import SOFTMAX

_VIEWS = frozenset({"view", "reshape"})


def read(nodes) -> dict | None:
    """Make, in place, each view back of a row-wise softmax a copy (module docstring).  The
    common flow has no softmax: one pass over the nodes, no call per node.  Returns, per
    softmax read in the layout of a one-query product (structure/singletons.py), its node id
    -> that product's node id (as layouts.read does); None when none."""
    read_in = None
    for node in nodes:
        if node.canon == SOFTMAX and len(node.outs) == 1:
            _read_one(nodes, node)
            # probabilities scaled per head before the value product (structure/headscale.py)
            headscale.read_one(nodes, node)
            # a size-1 query axis squeezed for the softmax and restored after it
            product = singletons.read_one(nodes, nodes[node.id])
            if product is not None:
                read_in = read_in or {}
                read_in[node.id] = product
    return read_in


def _read_one(nodes, softmax) -> None:
    args = softmax.view.args if softmax.view is not None else softmax.args
    scores_in = _ref(args[0]) if args else None
    if scores_in is None:
        return
    flat = _definer(nodes, scores_in.key, softmax.id)
    if flat is None or flat.kind != "method" or flat.op not in _VIEWS or not flat.args \
            or _ref(flat.args[0]) is None:
        return
    scores = flat.args[0].key
    out = softmax.outs[0].key
    back = next((n for n in nodes[softmax.id + 1:] if out in n.uses), None)
    if back is None or back.kind != "method" or back.op not in _VIEWS or len(back.args) != 2 or back.kwargs \
            or _ref(back.args[0]) is None or back.args[0].key != out or _ref(back.args[1]) is None \
            or len(back.outs) != 1:
        return
    size = _definer(nodes, back.args[1].key, back.id)
    if size is None or size.kind != "method" or size.op != "size" or len(size.args) != 1 or size.kwargs \
            or _ref(size.args[0]) is None or size.args[0].key != scores:
        return
    if any(scores in n.defs for n in nodes[size.id + 1:flat.id]):
        return  # the scores bound again between their size read and the flattening
    nodes[back.id] = replace(back, kind="copy", op="", args=(back.args[0],), canon="", view=None,
                             uses=frozenset({out}), arg_spans=back.arg_spans[:1])
