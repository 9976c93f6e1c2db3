"""Tensor ranks where the code states them, and the dimensions they make negative.

``softmax(w, dim=2)`` of a three-dimensional ``w`` is the softmax over its last axis, as
``dim=-1`` is; ``w.transpose(1, 2)`` of it swaps its last two axes.  Code written for one
rank (``torch.bmm`` takes and gives 3-D tensors, ``x.reshape(b, c, h * w)`` gives 3-D,
``einsum("bct,bcs->bts", ...)`` names its axes) counts dimensions from the front; the table's
operations count them from the back.  This pass finds the rank of each value a flow computes
when the code fixes it, and rewrites the non-negative dimensions of softmax and transpose
nodes whose input rank is known as negative ones, so that one canonical step matches both.

The ranks are a data-flow fact over the whole function: a temporary has the rank its node
gives; a name has a rank only when every assignment to it anywhere in the function gives the
same one (loops and branches included: the graph takes a loop body once, the run may not).
Unknown stays unknown: a parameter, an attribute, a value of a call we do not know.  An
elementwise operation with an operand of unknown rank has an unknown rank (it broadcasts).
"""

from __future__ import annotations

import ast
import re
from ..records import replace

from . import graph as _graph  # Const and Ref (graph imports this module: read at call time)
from .canon import _unordered, TABLE, einops_equation
from .ops import SOFTMAX

TOP = "top"  # not known yet (the optimistic start of a name the function assigns)
# (square, sqrt, rsqrt: elementwise, the input's rank; ``torch.mean(x.square(), dim=2)`` of an
# asserted 3-D x is a mean over its last axis as ``x ** 2`` is)
_UNARY = {SOFTMAX, "torch.nn.functional.dropout", "torch.Tensor.to", "torch.transpose",
          "canon.softmax_shift", "torch.square", "torch.sqrt", "torch.rsqrt"}
_ELEMENTWISE = {"torch.add", "torch.sub", "torch.mul", "torch.div", "torch.pow"}
_ELEMENTWISE_SYMBOLS = {"+", "-", "*", "/", "//", "%", "**"}
_SAME_RANK_METHODS = {"contiguous", "clone", "detach", "float", "half", "double", "bfloat16", "type_as", "to", "abs",
                      "exp", "sqrt", "rsqrt", "neg", "sigmoid", "tanh", "relu", "clamp", "clip"}
_SCALAR_CALLS = {"?int", "?float", "?len", "?abs", "?round", "math.sqrt", "math.log", "math.pow", "math.exp",
                 "numpy.sqrt", "np.sqrt"}
_FIXED_THREE = {"bmm", "baddbmm"}
_DIM_NODES = frozenset({SOFTMAX, "torch.transpose", "torch.mean"})


def wanted(nodes) -> bool:
    """Whether a flow has a step this pass could change that a rule reads: a softmax, and a
    softmax or transpose node with a non-negative dimension (most flows have none: the pass is
    skipped; a transpose matters only to attention, which needs a softmax)."""
    softmax = found = False
    for node in nodes:
        if node.canon in (SOFTMAX, "torch.transpose") and node.view is not None:
            softmax = softmax or node.canon == SOFTMAX
            if not found:
                found = any(name in ("dim", "dim0", "dim1") and _nonnegative(value) for name, value in node.view.kwargs)
            if softmax and found:
                return True
    return False


def _int(value):
    inner = getattr(value, "value", None)
    if isinstance(value, _graph.Const) and isinstance(inner, int) and not isinstance(inner, bool):
        return inner
    return None


def _nonnegative(value) -> bool:
    d = _int(value)
    return d is not None and d >= 0


def _is_ref(value) -> bool:
    return isinstance(value, _graph.Ref)


_SIZE = re.compile(r"\.(shape|size\(\))\[\s*-?\d+\s*\]$")  # x.shape[1]: a Python int


class _Ranks:
    def __init__(self, nodes, segment, scalar_attribute, out=None, asserted=None):
        self.nodes = nodes
        # value key -> the rank an ``assert`` states for it (graph.FlowBuilder.asserted): a
        # value the function does not assign (a parameter) has it wherever it is read
        self.asserted = asserted or {}
        self.segment = segment  # span -> source text (to tell a starred shape argument)
        self.scalar_attribute = scalar_attribute  # "self.scale" -> whether the class binds it to a number
        defined: dict[str, list] = {}
        for node in nodes:
            for key in node.defs:
                defined.setdefault(key, []).append(node)
        self.defined = defined
        self.rank: dict[str, object] = {key: TOP for key in defined}
        self.conflicts: set[str] = set()  # names whose assignments give different ranks
        # With the flow's edges, a name read at a node has the rank of the assignments that
        # reach it (``q, k, v = qkv.split(...)`` then ``q = q.view(b, n, h, d).transpose(1, 2)``:
        # q is 4-D where the product reads it); without them, of every assignment.
        self.reach = _reaching(nodes, out) if out is not None else None
        self.defined_ids = {key: [node.id for node in ds] for key, ds in defined.items()}
        self.def_rank: dict[tuple, object] = {(node.id, key): TOP for key, ds in defined.items() for node in ds}

    def of(self, value, at=None):
        if isinstance(value, _graph.Const):
            inner = value.value
            return 0 if isinstance(inner, (int, float)) and not isinstance(inner, bool) else None
        if _is_ref(value):
            if value.key in self.rank:
                if at is not None and self.reach is not None and value.key in self.reach[2]:
                    reach_in, bits, masks = self.reach
                    present = reach_in[at.id] & masks[value.key]
                    defs = [d for d in self.defined_ids[value.key] if bits[(d, value.key)] & present]
                    return self._join([self.def_rank[(d, value.key)] for d in defs]) if defs else None
                return self.rank[value.key]
            if value.key in self.asserted:
                return self.asserted[value.key]
            if _SIZE.search(value.text) or (value.text.startswith("self.") and value.key == value.text
                                            and self.scalar_attribute(value.text[len("self."):])):
                return 0  # x.shape[1]; self.scale = dim ** -0.5
            return None
        return None

    @staticmethod
    def _join(ranks):
        found = TOP
        for rank in ranks:
            if rank is None:
                return None
            if rank == TOP:
                continue
            if found == TOP:
                found = rank
            elif found != rank:
                return None
        return found

    def node_rank(self, node):
        """The rank of the (single) value ``node`` computes."""
        args = node.view.args if node.view is not None else node.args
        tail = node.op.rsplit(".", 1)[-1]
        if node.kind == "copy":
            return self.of(node.args[0], node) if node.args else None
        if tail in _FIXED_THREE and node.canon in ("torch.matmul", "torch.mul"):
            return 3  # bmm / baddbmm (and baddbmm's alpha scaling): 3-D in, 3-D out
        if tail == "einsum":
            # an explicit equation names its output's axes: a product, or one operand's axes
            # moved (XLNet's ``einsum("ijbn->bnij", mask)``, subtracted from the scores)
            equations = [a.value for a in node.args if isinstance(a, _graph.Const) and isinstance(a.value, str)]
            if len(equations) != 1 or equations[0].count("->") != 1 or any(c in equations[0] for c in ".()"):
                return None
            out = equations[0].split("->")[1]
            return len(out.split()) if " " in out.strip() else len(out.strip())
        if node.canon == "torch.matmul":
            ranks = [self.of(v, node) for v in args[:2]]
            if any(r is None for r in ranks):
                return None
            if any(r == TOP for r in ranks):
                return TOP
            return max(ranks) if min(ranks) >= 2 else None
        if node.canon in _UNARY or (node.kind == "op" and node.op == "neg"):
            # (neg: the subtracted product of ``s - 1e30 * m``, graph's canon.subtracted_mask)
            return self.of(args[0], node) if args else None
        if node.canon == "torch.Tensor.masked_fill" or node.canon in _ELEMENTWISE or (
                node.kind == "op" and node.op in _ELEMENTWISE_SYMBOLS):
            if node.canon == "torch.Tensor.masked_fill":
                other = dict(node.view.kwargs).get("mask") if node.view is not None else None
            else:
                other = args[1] if len(args) >= 2 else None
            if not args or other is None:
                return None
            rank, other_rank = self.of(args[0], node), self.of(other, node)
            if other_rank is None:
                # an operand of unknown rank may broadcast the result wider, unless the step
                # writes into the first in place (``scores += mask``, ``masked_fill_``)
                if rank is not None and rank != 0 and (node.kind == "op" or node.op.endswith("_")) \
                        and self._in_place(node):
                    return rank
                return None
            if rank is None:
                return None
            if rank == TOP or other_rank == TOP:
                return TOP
            return max(rank, other_rank)
        if node.kind == "method":
            receiver = node.args[0] if node.args else None
            rest = node.args[1:]
            if node.op in ("view", "reshape"):
                if not rest or node.kwargs or any(self._starred(s) for s in node.arg_spans[1:]):
                    return None
                if len(rest) == 1:
                    return 1 if _int(rest[0]) is not None else None
                return len(rest)
            if node.op == "permute" and len(rest) > 1 and not node.kwargs:
                return len(rest)
            if node.op in _SAME_RANK_METHODS or (node.op[-1:] == "_" and node.op[:1] != "_"):
                # (a tensor's in-place method -- ``masked_fill_``, ``add_``, ``clamp_`` --
                # returns the tensor it wrote into, whose shape it cannot change)
                return self.of(receiver, node)
            if node.op == "size" and len(rest) == 1 and not node.kwargs:
                return 0
            if node.op == "unsqueeze" and len(rest) == 1 and not node.kwargs:
                base = self.of(receiver, node)
                return base + 1 if isinstance(base, int) else base
            return None
        if node.kind == "call" and node.op in _SCALAR_CALLS:
            return 0
        return None

    def _in_place(self, node) -> bool:
        """Does ``node`` update its first operand in place?  ``scores += mask`` and
        ``scores.masked_fill_(mask, v)`` write into ``scores``, whose shape they cannot change
        (torch raises where the other operand would broadcast it wider), so the result has the
        target's rank whatever the other operand's (an out-of-place ``scores + mask`` may
        broadcast: unknown).  The caller asks only for a target of known rank other than 0 (a
        Python number the statement would rebind to a tensor)."""
        target = node.args[0] if node.args else None
        if not _is_ref(target) or len(node.outs) != 1 or node.outs[0].key != target.key:
            return False
        if node.kind == "op":
            spans = node.arg_spans
            if len(spans) != 2 or spans[0] is None or spans[1] is None:
                return False
            between = self.segment((spans[0][2], spans[0][3], spans[1][0], spans[1][1])).strip()
            return between == node.op + "="  # `x += m`, not `x = x + m`
        return True

    def _starred(self, span) -> bool:
        return span is None or self.segment(span).lstrip().startswith("*")

    def solve(self) -> None:
        """Each name's rank: the one every assignment gives (optimistic fixed point); with the
        flow's edges, also each assignment's own rank (``def_rank``), read where it reaches."""
        # ``node_rank(node)`` reads the state this loop changes only through ``of`` of the
        # references the node hands it (its args, its view's args and keywords): the rank and
        # the assignments' ranks of those keys.  A node none of whose keys changed since its
        # rank was last worked out has that rank again; it is not worked out again (most
        # nodes in every round after the first).  ``tick`` counts the changes; ``changed_at``:
        # key -> the tick of its last one; ``known``: node id -> (rank, tick when worked out, the
        # keys it reads).
        known: dict[int, tuple] = {}
        changed_at: dict[str, int] = {}
        tick = 0
        for _ in range(6):
            changed = False
            for key, nodes in self.defined.items():
                found = TOP
                for node in nodes:
                    outs = node.outs
                    if len(outs) == 1 and outs[0].key == key:
                        hit = known.get(node.id)
                        if hit is not None:
                            rank, at, reads = hit
                            for k in reads:
                                if changed_at.get(k, -1) > at:
                                    rank = self.node_rank(node)
                                    known[node.id] = (rank, tick, reads)
                                    break
                        else:
                            rank = self.node_rank(node)
                            known[node.id] = (rank, tick, _read_keys(node))
                    elif len(outs) > 1 and node.canon == "torch.chunk" and node.view is not None and node.view.args:
                        # ``q, k, v = qkv.chunk(3, dim=1)``: each piece has the rank of the
                        # tensor cut (v-diffusion's heads view, then ``(q @ kT).softmax(3)``)
                        rank = self.of(node.view.args[0], node)
                    else:
                        rank = None
                    site = (node.id, key)
                    if self.reach is not None and self.def_rank[site] is not None and self.def_rank[site] != rank:
                        self.def_rank[site] = rank
                        changed = True
                        tick += 1
                        changed_at[key] = tick
                    if found is None or rank == TOP:
                        continue
                    if rank is None:
                        found = None
                    elif found == TOP:
                        found = rank
                    elif found != rank:
                        found = None
                        self.conflicts.add(key)  # assigned values of two ranks (a branch unsqueezes)
                if found != self.rank[key] and self.rank[key] is not None:
                    self.rank[key] = found
                    changed = True
                    tick += 1
                    changed_at[key] = tick
            if not changed:
                break
        for key, rank in self.rank.items():
            if rank == TOP:
                self.rank[key] = None
        for site, rank in self.def_rank.items():
            if rank == TOP:
                self.def_rank[site] = None


def _read_keys(node) -> list[str]:
    """The keys of the references :meth:`_Ranks.node_rank` may hand to :meth:`_Ranks.of` for
    ``node`` (a superset: every reference among its args, its view's args and its view's
    keyword values; ``of`` reads nothing the solve changes for any other value)."""
    keys = [v.key for v in node.args if isinstance(v, _graph.Ref)]
    view = node.view
    if view is not None:
        keys += [v.key for v in view.args if isinstance(v, _graph.Ref)]
        keys += [v.key for _, v in view.kwargs if isinstance(v, _graph.Ref)]
    return keys


def _reaching(nodes, out) -> tuple[list[int], dict, dict]:
    """Reaching definitions over the flow, for the names assigned more than once (a name
    assigned once has that one value wherever it is read).  Each such assignment is one bit;
    returns, per node id, the bits of the assignments reaching it, the bit of each (node id,
    name), and each name's mask of bits."""
    defined: dict[str, list[int]] = {}
    for node in nodes:
        for key in node.defs:
            defined.setdefault(key, []).append(node.id)
    bits: dict[tuple, int] = {}
    masks: dict[str, int] = {}
    for key, ids in defined.items():
        if len(ids) > 1:
            mask = 0
            for node_id in ids:
                bits[(node_id, key)] = 1 << len(bits)
                mask |= bits[(node_id, key)]
            masks[key] = mask
    size = len(nodes)
    reach_in = [0] * size
    if not masks:
        return reach_in, bits, masks
    gen, kill = [0] * size, [0] * size
    for node in nodes:
        for key in node.defs:
            if key in masks:
                kill[node.id] |= masks[key]
                gen[node.id] |= bits[(node.id, key)]
    preds: list[list[int]] = [[] for _ in range(size)]
    for pred, edges in enumerate(out):
        for succ, _ in edges:
            preds[succ].append(pred)
    reach_out = [0] * size
    changed = True
    while changed:
        changed = False
        for node in nodes:
            i = node.id
            merged = 0
            for pred in preds[i]:
                merged |= reach_out[pred]
            reach_in[i] = merged
            after = (merged & ~kill[i]) | gen[i]
            if after != reach_out[i]:
                reach_out[i] = after
                changed = True
    return reach_in, bits, masks


def _contracted(nodes, ranks: _Ranks) -> dict[int, int]:
    """Softmax nodes over a dim ``d`` counted from the front, of a value whose rank the code does
    not fix, whose probabilities (through casts and dropout) move that axis by
    ``transpose(d, d + 1)`` and are then the first operand of a product: the product contracts
    its first operand's last axis, which is the normalised one only at rank ``d + 2``; or which
    are the second operand of a product (flair's keys-first ``enc^T @ softmax(enc @ out^T,
    dim=1)``), whose axis -2 the product contracts: the normalised one only at rank ``d + 2``.  That
    rank is the one the code moves the axis into place for (speechbrain's ``(keys @
    query).softmax(1).transpose(1, 2) @ values``: a single query, (B, L, 1) scores); at any
    other the product would not contract the normalised axis.  (Probabilities the product reads
    directly are not read so: a softmax over a middle axis -- heads, queries -- of a 4-D tensor
    is as likely as one over the keys of a 2-D one.)  Returns the id of each such softmax (and
    transpose) node -> the rank, which the node then records as ``assumed_rank``: a rewrite must
    not rely on it without checking it at run time."""
    readers: dict[str, list] = {}
    for node in nodes:
        if node.view is not None and node.view.args and _is_ref(node.view.args[0]):
            readers.setdefault(node.view.args[0].key, []).append(node)
        if node.canon == "torch.matmul" and node.view is not None and len(node.view.args) == 2 \
                and _is_ref(node.view.args[1]) and node.view.args[1] != node.view.args[0]:
            readers.setdefault(node.view.args[1].key, []).append(node)  # (_second_operand)
    found: dict[int, int] = {}
    for node in nodes:
        if node.canon != SOFTMAX or node.view is None or not node.view.args \
                or len(node.outs) != 1 or ranks.of(node.view.args[0], node) not in (None, TOP):
            continue
        d = _int(dict(node.view.kwargs).get("dim"))
        if d is None or d < 0 or _from_conflict(node.view.args[0], ranks):
            continue
        ranks_seen, transposes, key = set(), [], node.outs[0].key
        keyed = _UNREAD  # (_key_moved, read when a product reads the probabilities directly)
        for _ in range(4):  # the probabilities, cast or dropped out
            for reader in readers.get(key, ()):
                if reader.canon == "torch.matmul" and _second_operand(reader, key):
                    # the second operand of a product (``v @ p``, the keys-first layout): the
                    # product contracts its axis -2, the normalised one only at rank d + 2 (at
                    # any other rank it contracts an axis the softmax did not normalise)
                    ranks_seen.add(d + 2)
                elif reader.canon == "torch.matmul":
                    if keyed is _UNREAD:
                        keyed = _key_moved(nodes, node, d, ranks)
                    # read directly: over a middle axis (heads, queries) of a 4-D tensor is as
                    # likely as over the keys of a 2-D one ("softmax over another dimension"),
                    # unless the scores' keys were moved last by ``k.transpose(d - 1, d)``:
                    # the product contracts p's last axis, axis d at the rank d + 1 that
                    # transpose moves the keys into place for
                    ranks_seen.add(d + 1 if keyed is not None else None)
                    if keyed is not None:
                        transposes.append(keyed)
                elif reader.canon == "torch.transpose" and len(reader.outs) == 1:
                    dims = sorted(_int(v) for n, v in reader.view.kwargs if n in ("dim0", "dim1"))
                    after = [r for r in readers.get(reader.outs[0].key, ()) if r.canon == "torch.matmul"
                             and len(r.view.args) == 2]
                    if dims == [d, d + 1] and after and all(_is_ref(r.view.args[0]) and r.view.args[0].key
                                                            == reader.outs[0].key for r in after):
                        ranks_seen.add(d + 2)
                        transposes.append(reader)
            nxt = [r for r in readers.get(key, ()) if r.canon in ("torch.Tensor.to", "torch.nn.functional.dropout")
                   and len(r.outs) == 1]
            if len(nxt) != 1:
                break
            key = nxt[0].outs[0].key
        if len(ranks_seen) == 1 and None not in ranks_seen:
            rank = ranks_seen.pop()
            found[node.id] = rank
            for transpose in transposes:
                found[transpose.id] = rank
    return found


_UNREAD = object()  # (_product_ranks: a _key_moved answer not worked out yet)


def _key_moved(nodes, softmax, d: int, ranks: _Ranks):
    """The transpose node of ``softmax(q @ k.transpose(d - 1, d) [/ scale], dim=d)`` (TF-GridNet's
    heads-in-the-batch ``matmul(Q, K.transpose(1, 2)) / sqrt(e)``, then ``softmax(w, dim=2)``):
    the scores' second operand with the two axes before and at ``d`` swapped, which makes
    ``q @ kT`` the product of q with k transposed only at rank ``d + 1`` -- where the softmax
    normalises the keys' axis, the last.  Between the product and the softmax only a scale by a
    number (a value of rank 0) or a cast: a mask of unknown rank could broadcast the scores
    wider.  None when the scores are not so written."""
    if d < 1:
        return None
    producer = {}
    for node in nodes:
        if node.id >= softmax.id:
            break
        for out in node.outs:
            producer[out.key] = node  # the last assignment before the softmax
    value = softmax.view.args[0]
    for _ in range(4):
        node = producer.get(value.key) if _is_ref(value) else None
        if node is None or len(node.outs) != 1:
            return None
        if node.canon == "torch.matmul" and node.op.rsplit(".", 1)[-1] in ("matmul", "@") \
                and node.view is not None and len(node.view.args) == 2 and _is_ref(node.view.args[1]):
            moved = producer.get(node.view.args[1].key)
            if moved is None or moved.canon != "torch.transpose" or moved.view is None or len(moved.outs) != 1:
                return None
            dims = sorted(_int(v) for n, v in moved.view.kwargs if n in ("dim0", "dim1"))
            return moved if dims == [d - 1, d] else None
        args = node.view.args if node.view is not None else node.args
        if node.kind == "copy" or node.canon == "torch.Tensor.to":
            value = args[0] if args else None
        elif node.canon in ("torch.div", "torch.mul") and len(args) == 2 and ranks.of(args[1], node) == 0:
            value = args[0]
        else:
            return None
    return None


def _second_operand(product, key: str) -> bool:
    """Is the value ``key`` the second operand of the two-operand product ``product`` (and not
    its first: ``p @ p`` reads it both ways)?  An einsum's operands name their axes: not read so."""
    args = product.view.args if product.view is not None else ()
    return (len(args) == 2 and product.op.rsplit(".", 1)[-1] != "einsum" and _is_ref(args[1])
            and args[1].key == key and not (_is_ref(args[0]) and args[0].key == key))


def _from_conflict(value, ranks: _Ranks) -> bool:
    """Is ``value`` computed (through the function's own nodes) from a name that the code gives
    different ranks on different paths?  Its rank is then not one the code leaves open but
    one that changes: no single rank is read into it."""
    seen, stack = set(), [value]
    while stack:
        value = stack.pop()
        if not _is_ref(value) or value.key in seen:
            continue
        seen.add(value.key)
        if value.key in ranks.conflicts:
            return True
        for node in ranks.defined.get(value.key, ()):
            stack.extend(node.view.args if node.view is not None else node.args)
    return False


def _product_reads(nodes, index, segment) -> int | None:
    """The rank the products reading the output of ``nodes[index]`` (a softmax) fix for it, when
    it is read, after it, only by rank-keeping steps (dropout, casts, copies) and, at the end of
    every such chain, by ``torch.bmm`` (3-D operands only) or by an einsum whose equation names
    that operand's axes without an ellipsis (``einsum("nhql,nlhd->nqhd", [p, v])``: 4-D): torch
    raises on an operand of any other rank, so the softmax's output, and its input, have that
    rank (a mask of unknown rank filled in before it does not make it wider).  None when the
    readers fix no rank, or two different ones."""
    node = nodes[index]
    if len(node.outs) != 1:
        return None
    keys = {node.outs[0].key}
    found = None
    for later in nodes[index + 1:]:
        args = later.view.args if later.view is not None else later.args
        if not any(_is_ref(v) and v.key in keys for v in args):
            if any(out.key in keys for out in later.outs):
                keys -= {out.key for out in later.outs}  # rebound to something else
            continue
        if later.canon == "torch.matmul":
            tail = later.op.rsplit(".", 1)[-1]
            rank = 3 if tail == "bmm" else _einsum_operand_rank(later, keys, nodes, segment) if tail == "einsum" else None
            if rank is None or found not in (None, rank):
                return None
            found = rank
            continue
        keeps = later.kind == "copy" or later.canon in ("torch.nn.functional.dropout", "torch.Tensor.to") or (
            later.kind == "method" and later.op in _SAME_RANK_METHODS)
        if not keeps or len(later.outs) != 1:
            return None
        keys.add(later.outs[0].key)
    return found


def _einsum_operand_rank(product, keys, nodes, segment) -> int | None:
    """The number of axes the equation of the einsum ``product`` names for its operand that is
    one of ``keys`` (a name written as the operand, or a temporary whose producing step is the
    operand's text), read from the call's source; None when the equation has an ellipsis, the
    operand is not found, or it is found twice with two ranks."""
    if product.span is None:
        return None
    text = segment(product.span)
    try:
        call = ast.parse(text.strip(), mode="eval").body
    except SyntaxError:
        return None
    if not isinstance(call, ast.Call) or call.keywords or not call.args:
        return None
    operands = list(call.args)
    if isinstance(operands[0], ast.Constant) and isinstance(operands[0].value, str):
        equation = operands.pop(0).value  # torch.einsum(eq, a, b) / torch.einsum(eq, [a, b])
        if len(operands) == 1 and isinstance(operands[0], (ast.List, ast.Tuple)):
            operands = list(operands[0].elts)
    elif isinstance(operands[-1], ast.Constant) and isinstance(operands[-1].value, str):
        equation = einops_equation(operands.pop().value)  # einops.einsum(a, b, eq): names may be words
        if equation is None:
            return None
    else:
        return None
    subscripts = equation.replace(" ", "").split("->")[0].split(",")
    if len(subscripts) != len(operands) or any(isinstance(o, ast.Starred) for o in operands):
        return None
    wanted = set()
    for key in keys:
        if not key.startswith("%"):
            wanted.add(key)
            continue
        for node in nodes:
            if len(node.outs) == 1 and node.outs[0].key == key and node.span is not None:
                wanted.add(" ".join(segment(node.span).split()))
    read = {sub for sub, operand in zip(subscripts, operands) if " ".join(ast.unparse(operand).split()) in wanted}
    ranks = {len(sub) for sub in read}
    if len(ranks) != 1 or not all(sub.isalpha() for sub in read):
        return None
    return ranks.pop()


def normalise(nodes, segment, scalar_attribute=lambda attr: False, out=None, asserted=None) -> None:
    """Rewrite, in place, the non-negative dims of softmax and transpose nodes whose input's
    rank is known as negative ones (and the transposes products record as their operands).
    ``out``: the flow's edges (per node id, its successors), to read a name's rank where it is
    read rather than over all its assignments.  ``asserted``: ranks the function's ``assert``s
    state (value key -> rank); where there are any, the dims of means are rewritten too
    (``torch.mean(x ** 2, dim=2)`` of an asserted 3-D x is the mean over its last axis)."""
    ranks = _Ranks(nodes, segment, scalar_attribute, out, asserted)
    ranks.solve()
    # A temporary that torch.bmm multiplies is 3-D (bmm raises otherwise): so is the input of
    # the transpose computing it (``torch.bmm(v, w.transpose(1, 2))``).
    into_bmm = {v.key for node in nodes if node.canon == "torch.matmul" and node.view is not None
                and node.op.rsplit(".", 1)[-1] == "bmm" for v in node.view.args if _is_ref(v) and v.key.startswith("%")}
    changed: dict[int, tuple] = {}  # id of a transpose node -> its new (dim0, dim1)
    assumed = _contracted(nodes, ranks)
    for index, node in enumerate(nodes):
        if node.view is None or node.canon not in _DIM_NODES or (node.canon == "torch.mean" and not asserted):
            continue
        view = node.view
        if not view.args:
            continue
        rank = ranks.of(view.args[0], node)
        if node.canon == "torch.transpose" and len(node.outs) == 1 and node.outs[0].key in into_bmm:
            rank = 3
        elif node.canon == SOFTMAX and not isinstance(rank, int):
            # a softmax whose output only torch.bmm multiplies (after dropout, casts) is 3-D; one
            # only an einsum multiplies has the rank its equation names for that operand
            rank = _product_reads(nodes, index, segment) or rank
        if (not isinstance(rank, int) or rank == TOP) and node.id in assumed:
            rank = node.assumed_rank = assumed[node.id]
        if not isinstance(rank, int) or rank == TOP:
            continue
        kwargs = list(view.kwargs)
        dims = ("dim0", "dim1") if node.canon == "torch.transpose" else ("dim",)
        edited = False
        for index, (name, value) in enumerate(kwargs):
            d = _int(value)
            if name in dims and d is not None and 0 <= d < rank:
                kwargs[index] = (name, type(value)(d - rank))
                edited = True
        if node.canon == "torch.transpose":
            values = [_int(v) for n, v in kwargs if n in dims]
            if len(values) != 2 or any(v is None or v >= 0 for v in values):
                continue  # both negative, or neither changed
        if not edited:
            continue
        new = replace(view, kwargs=tuple(kwargs))
        if node.canon == "torch.transpose":
            new = _unordered(TABLE.ops["torch.transpose"], new)
            changed[node.id] = tuple(_int(v) for n, v in new.kwargs if n in dims)
        node.view = new
    if not changed:
        return
    # A product records the transposes written inline as its operands (View.origins): the
    # dims it recorded are now negative too.
    producer = {node.outs[0].key: node.id for node in nodes
                if node.id in changed and len(node.outs) == 1 and node.outs[0].key.startswith("%")}
    for node in nodes:
        view = node.view
        if node.canon != "torch.matmul" or view is None or not view.origins:
            continue
        origins = list(view.origins)
        for index, (value, origin) in enumerate(zip(view.args, origins)):
            if origin is not None and _is_ref(value) and producer.get(value.key) is not None:
                origins[index] = (origin[0], changed[producer[value.key]])
        node.view = replace(view, origins=tuple(origins))
