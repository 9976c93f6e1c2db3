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
            # the scores the softmax reads (through its view, when it has one): both readings
            # below start from them (and read nothing when they are no reference)
            args = node.view.args if node.view is not None else node.args
            scores_in = _ref(args[0]) if args else None
            if scores_in is not None:
                _read_one(nodes, node, scores_in)
                # probabilities viewed per head and straight back to the scores' shape
                _read_round_trip(nodes, nodes[node.id], scores_in)
            # probabilities scaled per head before the value product (structure/headscale.py)
            headscale.read_one(nodes, node)
            # a size-1 query axis squeezed for the softmax and restored after it
            product = singletons.read_one(nodes, nodes[node.id])
            if product is not None:
                read_in = read_in or {}
                read_in[node.id] = product
    return read_in


def _read_one(nodes, softmax, scores_in) -> None:
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
    _make_copy(nodes, back, back.args[0], out)


def _read_round_trip(nodes, softmax, scores_in) -> None:
    """``r = p.view(A)``, ``p = r.view(B)`` right after ``p = softmax(s)`` where ``s`` was last
    written by a view to that very ``B`` (XGLM and GroupViT view the probabilities per head and
    back on every call; ``s = (s.view(A) + mask).view(B)`` before the softmax): a view of a view
    is one view, ``p.view(B)``, and a view to the shape ``p`` already has is ``p`` itself, so the
    second view is made a copy of the probabilities (the per-head view stays, for what else
    reads it).  ``B`` must be the same values (names not bound again between, literals equal,
    products of the same operands); a view to another shape regroups the elements and stays.

    On the path around the view that wrote ``s`` (no mask), ``s`` is the product that view
    reshapes to ``B`` when there is a mask: the read assumes, as the mask's own view back
    (rule ADP010's ``$s3``) does, that ``B`` is the scores' shape."""
    out = softmax.outs[0].key
    first = next((n for n in nodes[softmax.id + 1:] if out in n.uses and _on_path(n, softmax)), None)
    if not _view_of(first, out):
        return
    mid = first.outs[0].key
    back = next((n for n in nodes[first.id + 1:] if mid in n.uses), None)
    if not _view_of(back, mid) or any(out in n.defs for n in nodes[first.id + 1:back.id]):
        return
    wrote = next((n for n in reversed(nodes[:softmax.id]) if scores_in.key in n.defs and _on_path(n, softmax)),
                 None)
    if not _view_of(wrote, None) or len(wrote.args) != len(back.args):
        return
    names: set = set()
    if not all(_same_value(nodes, a, b, names) for a, b in zip(wrote.args[1:], back.args[1:])):
        return
    if any(n.defs & names for n in nodes[wrote.id + 1:back.id]):
        return  # a size bound again between the scores' view and the probabilities'
    _make_copy(nodes, back, softmax.outs[0], out)


def _make_copy(nodes, back, probs, out: str) -> None:
    """Make the view ``back`` a copy of ``probs`` (the probabilities, held under ``out``)."""
    nodes[back.id] = replace(back, kind="copy", op="", args=(probs,), canon="", view=None,
                             uses=frozenset({out}), arg_spans=back.arg_spans[:1])


def _on_path(node, softmax) -> bool:
    """``node`` is not in another branch of an if the softmax is in (XGLM writes its softmax
    twice, in the two branches of a dtype test): both may run on one call."""
    for (span, branch), (other, taken) in zip(node.scope, softmax.scope):
        if span != other:
            return True
        if branch != taken:
            return False
    return True


def _view_of(node, key) -> bool:
    """``node`` is ``<key>.view(...)`` / ``.reshape(...)`` (any receiver when ``key`` is None)
    with one output, its sizes as positional values (no starred shape, no keywords)."""
    return node is not None and node.kind == "method" and node.op in _VIEWS and len(node.args) > 1 \
        and not node.kwargs and len(node.outs) == 1 and _ref(node.args[0]) is not None \
        and (key is None or node.args[0].key == key) \
        and all(sp is not None for sp in node.arg_spans[1:])


def _same_value(nodes, a, b, names: set, depth: int = 0) -> bool:
    """``a`` and ``b`` are the same size: equal literals, one name (collected into ``names``,
    which must not be bound again between), or temporaries computed by the same operation of
    the same values (``b * self.num_heads`` written twice)."""
    ra, rb = _ref(a), _ref(b)
    if ra is None or rb is None:
        return ra is None and rb is None and type(a) is type(b) and a == b
    if not (ra.key.startswith("%") and rb.key.startswith("%")):
        names.add(ra.key)
        return ra.key == rb.key
    if depth > 3:
        return False
    da, db = _temp_definer(nodes, ra.key), _temp_definer(nodes, rb.key)
    return da is not None and db is not None and da.kind == db.kind == "op" and da.canon == db.canon \
        and len(da.args) == len(db.args) and not da.kwargs and not db.kwargs \
        and all(_same_value(nodes, x, y, names, depth + 1) for x, y in zip(da.args, db.args))


def _temp_definer(nodes, key: str):
    return next((n for n in nodes if key in n.defs), None)
