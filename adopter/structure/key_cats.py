"""Attention scores written as two products of one query concatenated along the key axis.

``s = torch.cat([q @ k1^T * c + b, q @ k2^T * c], dim=-1)`` (a block of pooled landmark keys and
the rest, global and local keys): each part holds the scores of ``q`` against one block of keys,
so the concatenation is ``q @ cat([k1, k2], -2)^T * c`` plus a bias that is ``b`` over the first
block's keys and 0 over the second's.  :func:`read` makes the flow say so: the product node of the
part computed first reads a key that stands for the concatenated keys (:data:`KEY_PREFIX`), and the
``cat`` node becomes that part's scaled product plus a block bias (:data:`BIAS_PREFIX`; a copy of
the scaled product when no part adds one).  The attention then reads as any other, its scores
the concatenation's; the rewrite of such a match is left to the fixer (synth/sdpa.py declines it:
the fused call needs the keys, the values and the bias concatenated in the patch).

Only this form is read: a ``torch.cat`` of exactly two parts along the last axis (``dim=-1``),
each the output of ``matmul(q, k^T)`` (any spelling), then at most one scaling by the same factor
in both parts (the same name or the same literal; none in both), then, in at most one part, a
number added (a literal, a local bound to one, arithmetic of those and ``math`` calls: no tensor), the parts'
intermediates read by nothing else.  Anything else keeps its own ``cat`` node.
"""

from __future__ import annotations

import ast

from .treewalk import ast_walk

from ..records import replace
from .canon import View, ref as _ref

KEY_PREFIX = "%keycat"
BIAS_PREFIX = "%keycatbias"
_SCALES = frozenset({"torch.mul", "torch.div"})
_NUMBER_OPS = frozenset({"+", "-", "*", "/", "**"})


def gate(call) -> bool:
    """The cheap test the flow builder makes at each ``torch.cat`` it meets: two parts written
    in place (a list or tuple); the builder then asks for the last axis (``dim=-1``)."""
    parts = call.args[0] if call.args else None
    return parts is not None and parts.__class__ in (ast.List, ast.Tuple) and len(parts.elts) == 2


def read(nodes, cats: list) -> None:
    """Rewrite, in place, each recorded key-axis concatenation of two score products (module
    docstring).  ``cats`` holds ``(span of the cat call, key of the first part, key of the
    second part)`` as the flow builder met them."""
    for cat_span, first, second in cats:
        cat = next((n for n in nodes if n.span == cat_span and n.kind == "call" and n.op in
                    ("torch.cat", "torch.concat", "torch.concatenate")), None)
        if cat is None or len(cat.outs) != 1:
            continue
        parts = [_chain(nodes, key, cat.id) for key in (first, second)]
        if None in parts:
            continue
        (mm1, sc1, b1), (mm2, sc2, b2) = parts
        if b1 is not None and b2 is not None:
            continue
        q1, q2 = _ref(mm1.view.args[0]), _ref(mm2.view.args[0])
        if q1 is None or q2 is None or q1.key != q2.key:
            continue
        if (sc1 is None) != (sc2 is None):
            continue
        if sc1 is not None and (sc1.canon != sc2.canon or not _same_factor(sc1.args[1], sc2.args[1])):
            continue
        if not _read_only_by_chain(nodes, parts, cat):
            continue
        if not all(_on_every_path(n, cat) for part in parts for n in part if n is not None):
            continue
        _rewrite(nodes, cat, parts, 0 if b1 is not None else 1 if b2 is not None else None)


def _definer(nodes, key: str, before: int):
    for node in reversed(nodes[:before]):
        if key in node.defs:
            return node
    return None


def _chain(nodes, key: str, before: int):
    """(product node, scaling node or None, bias node or None) of one part, or None."""
    node = _definer(nodes, key, before)
    bias = None
    if node is not None and node.canon == "torch.add" and node.kind == "op" and len(node.args) == 2 \
            and _ref(node.args[0]) is not None and _number(nodes, node.args[1], node.id):
        bias = node
        node = _definer(nodes, node.args[0].key, node.id)
    scale = None
    if node is not None and node.canon in _SCALES and node.kind == "op" and len(node.args) == 2 \
            and _ref(node.args[0]) is not None:
        scale = node
        node = _definer(nodes, node.args[0].key, node.id)
    if node is None or node.canon != "torch.matmul" or node.view is None or len(node.view.args) != 2 \
            or len(node.outs) != 1 or node.view.broadcast or node.view.moves:
        return None
    return node, scale, bias


def _number(nodes, value, before: int, depth: int = 0) -> bool:
    """A literal, a local bound to one, or a temporary computed from those by arithmetic and
    ``math`` calls."""
    if _ref(value) is None:
        return isinstance(getattr(value, "value", None), (int, float)) and not isinstance(value.value, bool)
    if depth > 4:
        return False
    node = _definer(nodes, value.key, before)
    if node is None:
        return False
    if node.kind in ("copy", "other") and len(node.args) == 1 and len(node.outs) == 1:
        return _number(nodes, node.args[0], node.id, depth + 1)  # a local bound to a number
    if not value.key.startswith("%"):
        return False
    if node.kind == "op" and node.op in _NUMBER_OPS:
        return all(_number(nodes, a, node.id, depth + 1) for a in node.args)
    if node.kind == "call" and node.op.startswith("math."):
        return all(_number(nodes, a, node.id, depth + 1) for a in node.args) and not node.kwargs
    return False


def _same_factor(a, b) -> bool:
    ra, rb = _ref(a), _ref(b)
    if ra is not None or rb is not None:
        return ra is not None and rb is not None and ra.key == rb.key
    return type(a) is type(b) and a == b


def _read_only_by_chain(nodes, parts, cat) -> bool:
    """Each value a part's chain makes is read by the next step of that chain, the list the cat
    reads, or the cat alone, until it is bound again (the rewrite drops those reads)."""
    chain_ids = {n.id for part in parts for n in part if n is not None}
    for part in parts:
        for node in part:
            if node is None:
                continue
            key = node.outs[0].key if len(node.outs) == 1 else None
            if key is None:
                return False
            for other in nodes[node.id + 1:]:
                if key in other.uses and other.id not in chain_ids and other.id != cat.id \
                        and not (other.kind == "other" and other.id == cat.id - 1):
                    return False
                if key in other.defs:
                    break
    return True


def _on_every_path(node, cat) -> bool:
    """``node`` runs whenever the cat does: its branches (``scope``) are the cat's own or ones
    enclosing it (a part bound in one branch of an if before the cat holds something else on
    the other path)."""
    return node.scope == cat.scope[:len(node.scope)]


def _rewrite(nodes, cat, parts, biased) -> None:
    (mm, scale, _), _other = sorted(parts, key=lambda p: p[0].id)
    keys = _key_ref(cat)
    nodes[mm.id] = replace(mm, view=View((mm.view.args[0], keys), mm.view.kwargs, (mm.view.arg_spans[0], None),
                                         mm.view.kwarg_spans))
    scaled = (scale or mm).outs[0]
    if biased is None:
        nodes[cat.id] = replace(cat, kind="copy", op="", args=(scaled,), canon="", view=None, kwargs=(),
                                uses=frozenset({scaled.key}), arg_spans=(None,), kwarg_spans=())
        return
    bias = _bias_ref(cat)
    nodes[cat.id] = replace(cat, canon="torch.add", args=(scaled, bias), kwargs=(), kwarg_spans=(),
                            uses=cat.uses | {scaled.key}, arg_spans=(None, None),
                            view=View((scaled, bias), (), (None, None), ()))


def _key_ref(cat):
    from .graph import Ref
    return Ref(f"{KEY_PREFIX}{cat.id}", "")


def _bias_ref(cat):
    from .graph import Ref
    return Ref(f"{BIAS_PREFIX}{cat.id}", "")


def concatenated_keys(product) -> bool:
    """Does the product node read keys this module made stand for a concatenation?"""
    view = getattr(product, "view", None)
    return view is not None and any(getattr(a, "key", "").startswith(KEY_PREFIX) for a in view.args)


def not_the_kernels_fallback(match, tree, kernels) -> bool:
    """A match whose scores are a key-axis concatenation read here is no fallback of a kernel
    call that no call in the file hands a concatenation (engine._in_fallback's reading of the
    other branch): the branch calling the kernel attends over other keys (EfficientTAM's plain
    ``scaled_dot_product_attention(q, k, v)`` when there are few keys, pooled landmark keys
    concatenated with the rest otherwise), so the manual attention is not its original kept."""
    if not any(concatenated_keys(node) for node in match.nodes if node.canon == "torch.matmul"):
        return False
    for node in ast_walk(tree):
        if node.__class__ is ast.Call:
            func = node.func
            written = func.attr if func.__class__ is ast.Attribute else getattr(func, "id", "")
            if any(k.rsplit(".", 1)[-1] == written for k in kernels) and any(
                    inner.__class__ is ast.Call and getattr(inner.func, "attr", getattr(inner.func, "id", ""))
                    in ("cat", "concat", "concatenate") for arg in (*node.args, *node.keywords)
                    for inner in ast_walk(arg)):
                return False
    return True
