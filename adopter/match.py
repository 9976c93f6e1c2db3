"""Match a rule's patterns against model structures (SPEC section 3).

The forward pattern is matched first, on the control-flow graph rather than on enumerated
paths: a depth-first search from every node that can start the pattern, carrying the
abstract-variable bindings, the aliases made by copies, and the branch choices taken so far
(so correlated guards stay consistent).  Nodes between two pattern nodes are skipped
provided they neither read an intermediate value of the match nor overwrite a value the
match has bound; states are memoised, so the search is polynomial in the graph size.

Then the init pattern binds the constructors of the layers the forward match used.
A match whose intermediate values are read after it (liveness) is rejected, because the
fused code would no longer produce them.
"""

from __future__ import annotations

import ast
import bisect
import operator
import re
from .records import dataclass, field, replace
from collections.abc import Iterable

from .dsl import COMMUTATIVE, Lit, Pattern, PNode, Sym, Temp, Var, Wild
from .structure import ClassStructure, Const, Flow, ModuleStructure, Node, Ref, names_match
from .structure.bindings import Ctor
from .structure.canon import CASTS, HALF_PAIR, NEG_PAIR, ROTATE_HALF_CALLS, TABLE, normalise
from .structure.graph import segment
from .structure.ops import SOFTMAX, TENSOR_METADATA  # SOFTMAX: the canonical softmax
from .structure.sized import plain_forward, shape_metadata_only

# Tensor methods that pass a value on rather than compute with it (``qk.detach()`` returned).
PASS_THROUGH = frozenset({"detach", "clone", "cpu", "cuda", "to", "float", "half", "contiguous", "numpy", "tolist"})
# Tensor methods that give the same elements in another shape: a read that passes the values on
# (_computed_on follows the reshaped value).
RESHAPING = frozenset({"view", "reshape", "transpose", "permute", "flatten", "unsqueeze", "squeeze", "view_as",
                       "reshape_as"})
# Tensor methods that average or add up the values over an axis: the probabilities averaged over
# the heads to be handed back (the Temporal Fusion Transformer's interpretable attention) are
# still handed back; what is computed with the average later counts as computed with them.
AVERAGING = frozenset({"mean", "sum"})
_AVERAGING_CALLS = frozenset({"torch.mean", "torch.sum"})  # the same as functions of the tensor
from .structure.layers import EMBEDDING, LM_HEAD, _self_values, _size_text
from .structure.model import SEQUENTIAL_OWNER, attr_words
from .structure.names import record_types
from .structure.treewalk import ast_walk
from .structure.mask_tokens import replaced_by_token

# Tensor methods that pick some elements of a tensor (rows of attention probabilities, say).
# Methods that read their argument's type or shape alone
_LIKE = frozenset({"type_as", "to", "expand_as", "view_as", "reshape_as"})
# Tensors made from another's shape and type alone, not its values
_VALUE_FREE = frozenset({"torch.zeros_like", "torch.ones_like", "torch.empty_like", "torch.full_like",
                         "torch.rand_like", "torch.randn_like", "new_zeros", "new_ones", "new_empty", "new_full"})
SELECTING = frozenset({"gather", "index_select", "take_along_dim", "masked_select", "take"})
_COMPUTING = frozenset({"call", "method", "op"})  # node kinds _derived_between follows

MAX_STEPS_PER_START = 50_000
# Nodes a match may skip between two pattern nodes.  Every fusion site in the paper's corpus
# is within a few statements; the bound keeps the search from walking to the end of a long
# forward from every candidate start.
MAX_GAP = 16
GAP_WEIGHT = 4  # an operation of the match's own function, in units of a helper's operation


def match_key(rule_id: str, nodes) -> tuple:
    """What makes two matches one: the rule and the operations matched, whatever their roles
    (:attr:`Match.key`; the search skips a state whose key is already kept).  A member of an
    ``nn.Sequential`` is its constructor's span: with the statement that calls its container, so
    that the same containers run on x and then on y are two matches (review63)."""
    # (_member spelled inline: this runs for every state the search completes)
    return (rule_id, tuple(sorted(n.span + n.stmt if (l := n.layer) and l[-1:] == "]" and "0" <= l[-2:-1] <= "9"
                                  and n.stmt and n.kind == "layer" else n.span for n in nodes)))


@dataclass(frozen=True)
class Match:
    """One place a rule applies: the forward nodes, the bindings, the init constructors."""

    rule_id: str
    class_name: str
    flow: str
    nodes: tuple[Node, ...]
    env: tuple[tuple[str, object], ...]
    ctors: tuple[tuple[str, Ctor], ...]
    alternative: int = 0  # which forward source pattern of the rule matched
    variant: int = 0  # which matcher of the rule (engine.matchers_for: alternatives, then their variants)
    # Per matched node, the pattern variable it assigns (``%i`` when none): which step it is
    # when optional steps (``?``) make the nodes and the pattern differ in length.
    roles: tuple[str, ...] = ()
    # Other matches of the same site (the rule's anchor) that start elsewhere -- the scores
    # computed another way in the other branch of an if --, best first: a synthesizer may
    # rewrite one of them where this one cannot be rewritten.
    others: tuple = field(default=(), compare=False, repr=False)
    # Why the site is reported but not fixed ("" when nothing here says so): a step between two
    # matched ones that a configuration ``if`` runs (the match is the path where it does not).
    unfixable: str = field(default="", compare=False)
    # The tests of those configuration ``if`` statements, for a rule whose fix keeps the original
    # code behind a guard (``live_intermediates``): its synthesizer may send each test to the
    # original path instead (it must, or decline with ``unfixable``: ``sdpa.GUARDS_SETTINGS``).
    settings: tuple[str, ...] = field(default=(), compare=False)

    @property
    def span(self) -> tuple[int, int, int, int]:
        # From the first line any matched step is on to the last: a step inlined from a helper
        # defined below its caller (``norm1(x + self._sa_block(x))``, the dropout in
        # ``_sa_block``) must not leave the caller's steps outside the finding.
        first = self.nodes[0].span
        above = min((n.span for n in self.nodes if n.span[0] < first[0]), default=None, key=lambda s: (s[0], s[1]))
        first = above or first
        last = max((n.span for n in self.nodes), key=lambda s: (s[2], s[3]))
        return (first[0], first[1], last[2], last[3])

    @property
    def in_container(self) -> bool:
        """Some matched layer runs as a member of an ``nn.Sequential`` (its layer path ends in
        ``[i]``): the members run inside the container's own forward, so no edit of the
        model's forward can fuse them, and the finding is not fixable."""
        return bool(self.container_roles())

    def container_roles(self) -> frozenset[str]:
        """The steps (pattern variables, see ``roles``) whose layers run as members of an
        ``nn.Sequential``: a rule's synthesizer may fuse those it names (``container_steps``)."""
        roles = self.roles if len(self.roles) == len(self.nodes) else ("?",) * len(self.nodes)
        return frozenset(role for role, n in zip(roles, self.nodes) if n.kind == "layer" and _member(n.layer))

    def members_only(self) -> bool:
        """Every matched node is a layer member of an ``nn.Sequential``: the whole match runs
        inside containers' forwards."""
        return all(n.kind == "layer" and _member(n.layer) for n in self.nodes)

    def unfusable_container(self, steps: tuple[str, ...]) -> bool:
        """Some matched layer runs inside an ``nn.Sequential`` as a step other than ``steps``."""
        return not self.container_roles() <= set(steps)

    @property
    def key(self) -> tuple:
        return match_key(self.rule_id, self.nodes)


def _member(layer: str | None) -> bool:
    """A layer path naming a member of an ``nn.Sequential`` (``self.stem[1]``)."""
    return bool(layer) and layer.endswith("]") and layer[-2:-1].isdigit()


# ----------------------------------------------------------------------------- values


# ----------------------------------------------------------------------------- canonical steps


def canonical_pattern(pattern: Pattern) -> Pattern:
    """The pattern with every step that names a canonical operation (structure/ops.py) in
    canonical form: ``$x.softmax(-1)``, ``torch.softmax($x, -1)`` and
    ``torch.nn.Softmax($x, dim=-1)`` all become ``torch.nn.functional.softmax($x, dim=-1)``,
    which matches every spelling of that softmax in code."""
    return Pattern(tuple(canonical_step(p) for p in pattern.nodes), pattern.text)


def canonical_step(pnode: PNode) -> PNode:
    if pnode.op in ("layer", "table", "call", "neg") or pnode.canonical:
        return pnode
    no_spans = [None] * len(pnode.args)
    no_kw_spans = [(None, None)] * len(pnode.kwargs)
    if pnode.op == "method":
        name = pnode.method
        if name in CASTS and len(pnode.args) == 1 and not pnode.kwargs and not pnode.rest:
            return replace(pnode, op="torch.Tensor.to", method=None, kwargs=(("dtype", Sym(CASTS[name])),),
                           canonical=True)
        op = TABLE.method(name) or TABLE.inplace(name)
        if op is None:
            return pnode
        view = normalise(op, "method", pnode.args, pnode.kwargs, no_spans, no_kw_spans)
        if view is None:
            return pnode
        return replace(pnode, op=op.name, method=None, args=view.args, kwargs=view.kwargs, canonical=True)
    op = TABLE.canonical(pnode.op)
    if op is None:
        return pnode
    if pnode.op in op.operators:
        return replace(pnode, op=op.name, canonical=True)
    module = TABLE.module(pnode.op)
    if module is not None and pnode.op not in op.functions:
        # torch.nn.Softmax($s, dim=-1): the input, then the constructor's arguments
        params = module[1]
        head, rest = pnode.args[:op.inputs], pnode.args[op.inputs:]
        if len(rest) > len(params):
            return pnode
        kwargs = tuple(zip(params, rest)) + pnode.kwargs
        return replace(pnode, op=op.name, args=head, kwargs=kwargs, canonical=True)
    view = normalise(op, "function", pnode.args, pnode.kwargs, no_spans, no_kw_spans, pnode.op)
    if view is None:
        return pnode
    return replace(pnode, op=op.name, args=view.args, kwargs=view.kwargs, canonical=True)


def node_view(pnode: PNode, node: Node) -> tuple[tuple, tuple, tuple, tuple]:
    """The code's (args, kwargs, arg spans, kwarg spans) as the pattern step reads them: in
    canonical form for a canonical step, as written otherwise."""
    view = node.view
    if view is not None and (pnode.canonical or (
            pnode.layer is not None and len(node.args) > len(pnode.args) == len(view.args) and not pnode.rest)):
        # (a layer variable's call, ``$act($g)``, binds a function call whose other arguments
        # are written by position -- ``F.silu(a, True)`` -- as it binds them written by keyword:
        # the canonical reading, inputs positional, the rest by name)
        return view.args, view.kwargs, view.arg_spans, view.kwarg_spans
    return node.args, node.kwargs, node.arg_spans, node.kwarg_spans


def commutes(pnode: PNode, commutative: bool) -> bool:
    if not commutative or len(pnode.args) != 2:
        return False
    if pnode.canonical:
        return TABLE.ops[pnode.op].commutative
    return pnode.op in COMMUTATIVE


def computes(op: str, node: Node) -> bool:
    """Does ``node`` compute the canonical operation ``op`` (or may it, at run time)?"""
    return node.canon == op or (op in node.maybe and op in TABLE.runtime)


def _first_only(node: Node, live) -> bool:
    """Does ``node`` read the live values as its first argument alone (``torch.mean(p, dim=1)``)?"""
    first = node.args[0] if node.args else None
    return isinstance(first, Ref) and first.key in live \
        and not (_keys(node.args[1:]) | _keys(tuple(v for _, v in node.kwargs))) & live


def _stored(node: Node, live, classes=None) -> bool:
    """Does ``node`` only store the live values: keyword arguments of a class constructor
    (``CausalLMOutputWithPast(loss=loss, logits=logits)``, a record the caller reads; a class
    of the file however its name is spelled, ``xLSTMCausalLMOutput``), as a tuple would hold
    them?"""
    if node.kind != "call" or not node.op[:1].isalpha() or not (
            node.op.rsplit(".", 1)[-1][:1].isupper() or (classes is not None and node.op in classes)):
        return False
    if node.canon or _keys(node.args) & live:
        return False
    return all(not (_keys((v,)) & live) or name != "**" for name, v in node.kwargs)


def _in_record(node: Node, live, classes, names) -> bool:
    """Does ``node`` build one of the file's record types (``names``: structure.names.
    record_types, a namedtuple or ``typing.NamedTuple``) from the live values, by position or
    keyword, holding them as a tuple would (ASAC's ``AttentionReturn(out, ..., attn, ...)``)?
    A module-level name the graph does not resolve is written ``?Name``; a class of the file
    keeps its name.  The file's records are read only for such a call."""
    if node.kind != "call" or node.canon or names is None:
        return False
    op = node.op
    name = op[1:] if op[:1] == "?" else op if classes is not None and op in classes else None
    if name is None or name not in record_types(names):
        return False
    return all(not (_keys((v,)) & live) or key != "**" for key, v in node.kwargs)


def _ident(value) -> tuple:
    if isinstance(value, Ref):
        return ("k", value.key)
    if isinstance(value, Const):
        return ("c", repr(value.value))
    if isinstance(value, str):  # a layer path
        return ("l", value)
    return ("?", repr(value))


def _pure_aliases(flow: Flow) -> dict[str, str]:
    """Names that only ever hold a copy of an argument of the root function: assigned once, as
    ``a = b`` with ``b`` a parameter nothing in the function assigns (``query_key_states =
    hidden_states``), ``a`` no parameter (``if q is None: q = x`` keeps the argument on the
    other path).  Everywhere ``a`` is read it is ``b``'s one value: name -> ``b``."""
    found = getattr(flow, "_pure_aliases", None)
    if found is None:
        defined: dict[str, int] = {}
        copies: dict[str, str] = {}
        for node in flow.nodes:
            for key in node.defs:
                defined[key] = defined.get(key, 0) + 1
            if node.kind == "copy" and len(node.outs) == 1 and node.args and isinstance(node.args[0], Ref):
                copies[node.outs[0].key] = node.args[0].key
        found = {
            dst: src for dst, src in copies.items()
            if defined.get(dst) == 1 and src not in defined and src in flow.params and dst not in flow.params
        }
        flow._pure_aliases = found
    return found


def _absent_into(pnode: PNode, index: int, state: _State) -> None:
    """The optional step ``index`` absent, in ``state`` (a copy no one has read yet): its
    output stands for its first input.  (Each step reads only what the steps before it left,
    so several applied to one copy give the state a chain of copies would.)"""
    first = pnode.args[0]
    source = f"%{first.index}" if isinstance(first, Temp) else first.name
    values = state.values
    if source in values:
        values[pnode.outs[0].name] = values[source]
        values[f"%{index}"] = values[source]
        if source in state.env:
            state.env[pnode.outs[0].name] = state.env[source]


def _absent_plan(pnode: PNode, index: int) -> tuple[str, str, str] | None:
    """What :func:`_absent_into` reads of an optional step: (the name its first input is bound
    under, its output's name, its temporary's name); None for a required step."""
    if not pnode.optional:
        return None
    first = pnode.args[0]
    source = f"%{first.index}" if isinstance(first, Temp) else first.name
    return source, pnode.outs[0].name, f"%{index}"


def _absent_run(plans: tuple, low: int, high: int, state: _State) -> None:
    """:func:`_absent_into` for the steps ``low``..``high - 1`` in turn, read off their
    :func:`_absent_plan` (no name made per step: a run of absent steps before a far step --
    ADP010's ten optional steps between the product and the softmax -- is made for most
    states that bind a later step)."""
    values = state.values
    env = state.env
    for i in range(low, high):
        source, out, temp = plans[i]
        if source in values:
            value = values[source]
            values[out] = value
            values[temp] = value
            if source in env:
                env[out] = env[source]


def _copy_closure(flow: Flow, key: str) -> set:
    """The keys a variable bound to ``key``'s value may bind again (:meth:`Matcher._may_read`):
    ``key``'s repeat class and every key copied from one of those, transitively."""
    closures = getattr(flow, "_closures", None)
    if closures is None:
        closures = flow._closures = {}
    reached = closures.get(key)
    if reached is not None:
        return reached  # (one set per key and flow: the callers only read it)
    edges, classes = _copy_edges(flow)
    repeats = flow.repeats
    todo = list(classes.get(repeats.get(key, key), (key,))) if repeats else [key]
    reached = set(todo)
    while todo:
        for dst in edges.get(todo.pop(), ()):
            if dst not in reached:
                reached.add(dst)
                todo.append(dst)
    closures[key] = reached
    return reached


def _copy_edges(flow: Flow) -> tuple[dict, dict]:
    """(source key -> the keys copied from it: a copy node's ``dst = src`` and the flow's pure
    aliases; repeat class -> its keys, each with itself) for :meth:`Matcher._may_read`."""
    found = getattr(flow, "_copy_edges", None)
    if found is None:
        edges: dict[str, list[str]] = {}
        for node in flow.nodes:
            if node.kind == "copy" and node.outs and node.args and isinstance(node.args[0], Ref):
                edges.setdefault(node.args[0].key, []).append(node.outs[0].key)
        for dst, src in _pure_aliases(flow).items():
            edges.setdefault(src, []).append(dst)
        # (a key outside ``repeats`` is its own class: ``repeats.get(k, k)``)
        repeats = flow.repeats or {}
        classes: dict[str, list[str]] = {}
        for key, first in repeats.items():
            classes.setdefault(first, [first] if first not in repeats else []).append(key)
        found = flow._copy_edges = (edges, classes)
    return found


def _keywords_fit(pnode: PNode, keys) -> bool:
    """No keyword the pattern does not name (unless it ends in ``...``), none it forbids
    (``!name``; ``**kwargs`` might hold it)."""
    if not pnode.rest and set(keys) - {k for k, _ in pnode.kwargs}:
        return False
    return not (pnode.absent and (set(keys) & {*pnode.absent, "**"}))


def _literal_is(pvalue: Lit, value) -> bool:
    if not isinstance(value, Const):
        return False
    if isinstance(pvalue.value, bool) or isinstance(value.value, bool):
        return value.value is pvalue.value
    return value.value == pvalue.value


def _unbound(state: _State, pvalues: tuple) -> tuple:
    """The variables among ``pvalues`` that ``state`` leaves unbound, each with its ``env``
    entry (or _NO_ENTRY): what :meth:`Matcher._bind` of them may write (:func:`_forget_bound`)."""
    values, env = state.values, state.env
    return tuple((p.name, env.get(p.name, _NO_ENTRY)) for p in pvalues if type(p) is Var and p.name not in values)


def _forget_bound(state: _State, fresh: tuple) -> None:
    """Undo what :meth:`Matcher._bind` wrote in ``state`` since :func:`_unbound` gave ``fresh``:
    it writes only an unbound variable, under its name in ``values`` and ``env``.  So a
    commutative step tries its second order of arguments in the copy the first order failed
    in, not in a second copy made for the first (the same entries, in the same order)."""
    values, env = state.values, state.env
    for name, entry in fresh:
        values.pop(name, None)
        if entry is _NO_ENTRY:
            env.pop(name, None)
        else:
            env[name] = entry


_NO_ENTRY = object()


def _bound_differ(pvalues, values, state: "_State", repeats: dict | None = None) -> bool:
    """Does some argument pair fail :meth:`Matcher._bind` on what ``state`` holds before any
    binding of the step: a temporary or a variable already bound to another value?  (The
    step binds only variables not yet bound and its own ``%index`` after its arguments, so
    these comparisons read the same values in the copy the step binds into.)"""
    bound = state.values
    for pvalue, value in zip(pvalues, values):
        kind = type(pvalue)
        if kind is Temp:
            if bound.get(f"%{pvalue.index}") != state.ident(value):
                return True
        elif kind is Var:
            current = bound.get(pvalue.name)
            if current is not None:
                ident = state.ident(value)
                if current != ident and (repeats is None or current[0] != "k" or ident[0] != "k" or repeats.get(
                        current[1], current[1]) != repeats.get(ident[1], ident[1])):
                    return True  # (Matcher._bind: a temporary computed again by the same steps is the same)
    return False


_NO_ITEMS: frozenset = frozenset()
_NODE_ID = operator.attrgetter("id")  # (C-level: no Python call per matched node)


class _State:
    __slots__ = ("env", "values", "aliases", "guards", "produced", "matched", "steps", "_memo", "_bound", "_chain",
                 "_reach")

    def __init__(self):
        self.env: dict[str, object] = {}  # abstract var or %temp -> concrete value
        self.values: dict[str, tuple] = {}  # abstract var -> identity
        self.aliases: dict[str, str] = {}  # copy target key -> canonical key
        self.guards: dict[str, bool] = {}
        self.produced: set[str] = set()  # canonical keys of values the match has produced
        self.matched: tuple[Node, ...] = ()
        self.steps: tuple[int, ...] = ()  # the pattern index of each matched node
        # memo()'s frozensets, made on its first call: a state is not changed after the
        # step that made it (a copy, then its updates) hands it on, and the search keys one
        # state once per node it skips.
        self._memo: tuple | None = None
        self._bound: set | None = None  # bound_keys, likewise
        # Matcher._search: (step index, [this state with the optional step at that index
        # absent, then the next one too, ...]); the search meets one state at every node it
        # skips.  (The state itself is not in the list: that would be a reference cycle.)
        self._chain: tuple | None = None
        # Matcher._reach: (step index, the last node id at which a next step may still bind)
        self._reach: tuple | None = None

    def copy(self) -> "_State":
        new = _State.__new__(_State)  # not __init__: its empty containers would be replaced
        new._memo = new._bound = new._chain = new._reach = None
        # (displays, not dict()/set() nor .copy(): no global look-up, no call -- cProfile
        # counts a method's call as a raw call, not a display; the aliases and guards are most
        # often empty, and an empty one is a fresh {} -- the same plain containers either way)
        new.env = {**self.env}
        new.values = {**self.values}
        aliases = self.aliases
        new.aliases = {**aliases} if aliases else {}
        guards = self.guards
        new.guards = {**guards} if guards else {}
        new.produced = {*self.produced}
        new.matched = self.matched
        new.steps = self.steps
        return new

    def canon(self, key: str) -> str:
        return self.aliases.get(key, key)

    def ident(self, value) -> tuple:
        if isinstance(value, Ref):
            return ("k", self.canon(value.key))
        return _ident(value)

    def bound_keys(self) -> set[str]:
        """The keys the match's variables and steps hold (the caller must not change it)."""
        bound = self._bound
        if bound is None:
            # (the produced keys added in place: one set made, not two)
            bound = {ident[1] for ident in self.values.values() if ident[0] == "k"}
            bound |= self.produced
            self._bound = bound
        return bound

    def memo(self) -> tuple:
        """What tells two states apart in the search's memo: the bindings, the aliases, the
        guards taken (frozensets, not sorted tuples: built for every state it visits) and the
        ids of the nodes matched (two ways binding different nodes to the same values are
        different matches)."""
        memo = self._memo
        if memo is None:
            # (one empty frozenset for no aliases, no guards: equal, and nothing built)
            memo = self._memo = (frozenset(self.values.items()),
                                 frozenset(self.aliases.items()) if self.aliases else _NO_ITEMS,
                                 frozenset(self.guards.items()) if self.guards else _NO_ITEMS,
                                 tuple(map(_NODE_ID, self.matched)))
        return memo


def _first_visit(seen: dict, place: tuple, state: _State) -> bool:
    """Is ``state`` the first at ``place`` (a node, the step it waits for and, for a gap, the
    gap so far) with its :meth:`_State.memo`?  Then it is recorded.  ``seen`` maps a place to
    the first state met there, then to the list of the states with different memos met there,
    compared by their dicts and matched nodes (two memos are equal exactly when the values,
    aliases and guards dicts and the matched nodes are), and past _MEMOS_AFTER of them to the set of their memos: the same answers as
    a set of (place, memo) pairs, but a state alone at its place -- over a third of the gap
    states, a quarter of the bound ones -- or among a few never builds its memo's frozensets
    (a frozenset of every binding, for each state the search visits)."""
    met = seen.get(place)
    if met is None:
        seen[place] = state
        return True
    cls = met.__class__
    if cls is not set:
        # (a state is not changed after the step that made it hands it on: the ones recorded
        # hold what they held then)
        values, aliases, guards = state.values, state.aliases, state.guards
        for other in (met,) if cls is _State else met:
            # (the matched nodes too: two ways that bound *different* nodes to the same values --
            # an arm each with its own softmax -- are two matches, never one; a tuple compares
            # its nodes by identity first, so equal ones cost no call)
            if other is state or (other.values == values and other.aliases == aliases and other.guards == guards
                                  and other.matched == state.matched):
                return False
        if cls is _State:
            seen[place] = [met, state]
            return True
        if len(met) < _MEMOS_AFTER:
            met.append(state)
            return True
        met = seen[place] = {other._memo or other.memo() for other in met}
    memo = state._memo or state.memo()
    if memo in met:
        return False
    met.add(memo)
    return True


_MEMOS_AFTER = 8  # _first_visit: states compared one by one at a place, up to this many


# ----------------------------------------------------------------------------- the matcher


METHOD_SPELLINGS = {"view": ("view", "reshape"), "reshape": ("reshape", "view")}


class Matcher:
    """Matches one rule; reusable across files."""

    def __init__(self, rule_id: str, forward: Pattern, init: tuple[Pattern, ...] = (), commutative: bool = True,
                 alternative: int = 0, live_intermediates: bool = False, spellings: str = "canonical",
                 anchor: str | None = None, direct_layers: bool = False, same_source: bool = False,
                 setting_paths: bool = False,
                 scope: str = "model", variant: int = 0, same_function: bool | str = False,
                 helper_computes: tuple[tuple[str, str], ...] = (), predicts_input: bool = False,
                 computed: tuple[str, ...] = (), module_weights: tuple[str, ...] = (),
                 independent: tuple[str, ...] = (), outputs_meet: bool = False,
                 uncentred: tuple[str, ...] = (), foldable: tuple[str, ...] = (),
                 given: tuple[str, ...] = (), projection: tuple[str, ...] = (), max_gap: int = 0,
                 same_extras: tuple[str, ...] = ()):
        self.rule_id = rule_id
        self.same_extras = same_extras
        self.projection = projection
        # the weighted gap a search may skip between two steps (the rule's ``max_gap``, else MAX_GAP)
        self.gap_bound = (max_gap or MAX_GAP) * GAP_WEIGHT
        self.foldable = foldable
        self.given = given
        self.uncentred = uncentred
        self.outputs_meet = outputs_meet
        self._repeats = None  # the searched flow's Flow.repeats (set by _search)
        self.independent = independent
        self.computed = computed
        self.module_weights = module_weights
        self.predicts_input = predicts_input
        self.same_function = same_function
        self.helper_computes = dict(helper_computes)
        self.variant = variant
        # ``layer_typing = "direct"``: a layer is typed only by a constructor call assigned to its
        # attribute (the paper benchmark's convention), not through factories, parameters,
        # ``a if c else b`` or the members of a Sequential built elsewhere.
        self.direct_layers = direct_layers
        # ``[forward] same_source = true``: the values a variable binds are spelled alike.
        self.same_source = same_source
        # ``[forward] setting_paths = true``: see _same_on_every_path.
        self.setting_paths = setting_paths
        # "model": the code a forward reaches (the model structure); "file": every function,
        # method (also __init__) and the module's statements (code that builds the model).
        self.scope = scope
        self.alternative = alternative
        self.commutative = commutative
        # "canonical": a step naming an operation of the table matches every spelling of it;
        # "exact": only the spelling the pattern writes (the paper benchmark's conventions).
        self.spellings = spellings
        # ``[forward] anchor = "$p0"``: the step that identifies a site; matches sharing its node
        # are one finding (two ways to the same softmax), matches with different ones are two.
        self.anchor = anchor
        if spellings == "canonical":
            forward = canonical_pattern(forward)
        # A rule whose fix keeps the original code (behind a guard) may let later code read
        # the values the match computes; its synthesis checks those reads itself.
        self.live_intermediates = live_intermediates
        self.has_optional = any(p.optional for p in forward.nodes)
        # Words a root must mention for the pattern to fit: the name of every required function
        # call (lower-case last component: a layer class could also match a layer node) and
        # method.  Checked per root before its graph is searched.
        self.required_calls = sorted({p.op for p in forward.nodes if not p.optional and p.op[:1].isalpha()
                                      and not p.canonical and p.op not in ("layer", "method", "table", "call")
                                      and p.op.rsplit(".", 1)[-1][:1].islower()})
        # Canonical operations the pattern needs, each with a spelling that is a word.
        self.required_ops = sorted({p.op for p in forward.nodes if not p.optional and p.canonical
                                    and TABLE.words(p.op)})
        self.required_methods = sorted({p.method for p in forward.nodes if not p.optional and p.op == "method"})
        # Keywords a step names (``vocab_size=_``) are written at the call site, unless the step
        # is canonical (a module's constructor arguments are merged in as keywords).
        self.required_keywords = sorted({k for p in forward.nodes if not p.optional and not p.canonical
                                         and p.op != "table" and p.op[:1].isalpha() for k, _ in p.kwargs
                                         if k != "**"})
        # An attribute of the module passed by position to a step that is not canonical
        # (``self.vocab_size`` in ``$c.view(-1, self.vocab_size)``) binds only a value whose
        # source text is that attribute (_bind: Sym), and such a step reads the arguments as
        # written at the call site: the code mentions the attribute's name.
        self.required_attributes = sorted({a.name.rsplit(".", 1)[-1] for p in forward.nodes
                                           if not p.optional and not p.canonical and p.op != "table"
                                           and p.op[:1].isalpha() for a in p.args
                                           if isinstance(a, Sym) and a.name.startswith("self.")})
        self.forward = forward
        self.init = init
        self.layer_types = self._layer_types()
        self.layer_ops = self._layer_ops() if spellings == "canonical" else {}
        # Layer variables of the same allowed types, with how many the pattern needs: two layer
        # variables never name the same layer, so a root must call that many distinct ones.
        groups: dict[frozenset, int] = {}
        for pnode in forward.nodes:
            if pnode.op == "layer" and not pnode.optional and pnode.layer.name in self.layer_types:
                allowed = frozenset(self.layer_types[pnode.layer.name])
                groups[allowed] = groups.get(allowed, 0) + 1
        self.distinct_layers = [(allowed, n) for allowed, n in groups.items() if n > 1]
        self.word_keys = self._word_keys()
        # The same keys, those every class of a file shares first (plain words, then call names,
        # then what depends on the class's bindings): _candidate_roots works out one group at a
        # time and stops when no root is left, so a class that calls none of the pattern's
        # functions never has its bindings searched for the layer constructors.
        self.word_order = _shared_first(scope, tuple(sorted(self.word_keys, key=lambda k: _KEY_COST.get(k[0], 3))))
        # The keys whose word groups are the same in every class of a file (plain words, call
        # names): when the words of all the file's roots hold none of one group, no root of any
        # class can pass _candidate_roots, and match_module returns before visiting a class.
        self.file_keys = tuple(k for k in self.word_order if k[0] in ("word", "words", "sizes", "calls"))
        self.roots_key = _ROOTS_KEYS.setdefault((scope, self.word_keys), len(_ROOTS_KEYS))
        # match_module's test of the file keys: each plain word group made once here, a call
        # key's group (the file's import aliases) looked up per file: (group, None) / (None, fqn)
        self._file_groups = tuple(
            (frozenset({key[1]}), None) if key[0] == "word" else
            (frozenset(key[1]), None) if key[0] == "words" else
            (_size_groups(key[1])[1], None) if key[0] == "sizes" else (None, key[1])
            for key in self.file_keys)

    # -- the search's own data, made on first use --------------------------------
    # Most matchers of a one-file check never search a flow (no root of the file mentions
    # every word the pattern needs: _candidates finds none; 28 of 246 search on BERT), so what only
    # the search reads is made the first time it is asked for: an attribute of _SEARCH_STATE
    # missing from the instance comes here (once made, normal look-ups find it at no cost).
    _SEARCH_STATE = frozenset({"optional_layers", "layer_vars", "fan_out", "needed_after", "later_uses",
                               "_static_steps", "_static_keys", "_next_reads", "_option_reads",
                               "_option_runs", "_feasibility_key", "_absent_plans"})

    def __getattr__(self, name: str):
        if name not in Matcher._SEARCH_STATE or "forward" not in self.__dict__:
            raise AttributeError(name)
        self._make_search_state()
        return self.__dict__[name]

    def _make_search_state(self) -> None:
        forward = self.forward
        self.optional_layers = {p.layer.name for p in forward.nodes if p.optional and p.layer is not None}
        self.layer_vars = {p.layer.name for p in forward.nodes if p.layer is not None}
        # A step that reads no earlier step's output (three projections of one input): the
        # code may offer more such steps than the pattern has, and so several overlapping
        # combinations of them (see _disjoint).  A chain's overlapping matches are different
        # paths through shared nodes, each its own site.
        self.fan_out = any(not _reads_earlier(forward.nodes, i) for i in range(1, len(forward.nodes)))
        # Per first step of a search (0, or 1 when the first is optional): (step, the variables
        # it reads) of the required steps right after it, up to the first optional one
        # (_may_read tests them per start).
        self._next_reads = tuple(self._required_reads(i) for i in range(2))
        # Per step index, the steps after it a node may bind instead when it and the optional
        # steps after it are absent (_options): up to the next required step, or () when the
        # step itself is required.
        self._option_runs = tuple(self._option_run(i) for i in range(len(forward.nodes)))
        # Per step index, what a run of absent steps reads of it (_absent_run)
        self._absent_plans = tuple(_absent_plan(p, i) for i, p in enumerate(forward.nodes))
        # Per step index, what the steps a state there may bind next read (_reach).
        self._option_reads = tuple(self._reads_from(i) for i in range(len(forward.nodes)))
        # Per step index, the variables (and nested values) steps from there on read: a value
        # the code overwrites between steps is lost only if one of them still needs it.
        # (built from the last step back: each set is the next one's plus what its step reads)
        needed: set[str] = set()
        self.needed_after: list[set[str]] = [needed]
        for pnode in reversed(forward.nodes):
            needed = set(needed)
            for value in (*pnode.args, *(v for _, v in pnode.kwargs)):
                if isinstance(value, Var):
                    needed.add(value.name)
                elif isinstance(value, Temp):
                    needed.add(f"%{value.index}")
            if pnode.layer is not None:
                needed.add(pnode.layer.name)
            self.needed_after.append(needed)
        self.needed_after.reverse()
        # Per step index, the values (variables, temporaries, literals) the steps after it
        # read (_intermediates asks at every match the search completes).
        later: set = set()
        self.later_uses: list[frozenset] = []
        for pnode in reversed(forward.nodes):
            self.later_uses.append(frozenset(later))
            later.update(pnode.args)
            later.update(v for _, v in pnode.kwargs)
        self.later_uses.reverse()
        # Per step, what _static_ok reads of this matcher besides the node (see _static_ids);
        # the step by its first equal one met in the process (each matcher has its own copies).
        self._static_steps = [_STEPS.setdefault((repr(key), key), key) for key in map(_static_form, forward.nodes)]
        self._static_keys = [
            (id(step), self.commutative, self.spellings,
             frozenset(self.layer_types.get(p.layer.name, ())) if p.layer is not None else None,
             p.layer is not None and p.layer.name in self.layer_types,
             frozenset(self.layer_ops.get(p.layer.name, ())) if p.layer is not None else None,
             p.layer is not None and p.layer.name in self.layer_ops)  # (_kinds reads it)
            for step, p in zip(self._static_steps, forward.nodes)
        ]
        # What _feasibility reads of this matcher: every step after the first, by its static key
        # and whether it is optional -- matchers alike in these (variants that differ in the
        # first step or not at all there) get one answer per flow.  Interned to a small number
        # (the keys name their steps by id, kept alive in _STEPS: no id names another step).
        signature = tuple((key, p.optional) for key, p in zip(self._static_keys[1:], forward.nodes[1:]))
        self._feasibility_key = ("feasible", _FEASIBILITY_KEYS.setdefault(signature, len(_FEASIBILITY_KEYS)))

    def _layer_types(self) -> dict[str, set[str]]:
        """For each layer variable, the constructor names some init alternative allows."""
        types: dict[str, set[str]] = {}
        for alternative in self.init:
            seen: set[str] = set()
            for pnode in alternative.nodes:
                if len(pnode.outs) != 1 or not isinstance(pnode.outs[0], Var):
                    continue
                name = pnode.outs[0].name
                fqn = pnode.method if pnode.op == "table" else pnode.op
                types.setdefault(name, set()).add(fqn)
                seen.add(name)
        return types

    def _layer_ops(self) -> dict[str, set[str]]:
        """For each layer variable, the canonical operations some init alternative's
        constructor computes (``torch.nn.GELU(...)``: any layer or callable computing a GELU)."""
        ops: dict[str, set[str]] = {}
        for alternative in self.init:
            for pnode in alternative.nodes:
                if len(pnode.outs) != 1 or not isinstance(pnode.outs[0], Var) or pnode.op == "table":
                    continue
                op = TABLE.canonical(pnode.op)
                if op is not None:
                    ops.setdefault(pnode.outs[0].name, set()).add(op.name)
        return ops

    # -- forward ----------------------------------------------------------------
    def match_module(self, module: ModuleStructure) -> list[Match]:
        if self.file_keys:
            words = module.root_words()
            for group, fqn in self._file_groups:
                if (group if fqn is None else module.call_names(fqn)).isdisjoint(words):
                    return []
        found: dict[tuple, Match] = {}
        for name, roots in self._candidates(module):
            if self.direct_layers and name == SEQUENTIAL_OWNER:
                continue
            cls = module.classes[name]
            for root in roots:
                if self.distinct_layers and not all(
                    len({p for p in cls.bound_paths(allowed) if not cls.words(root).isdisjoint(attr_words(p))}) >= n
                    for allowed, n in self.distinct_layers
                ):
                    continue
                flow = cls.flow(root)
                for match in self.match_flow(cls, flow, found):
                    if flow.inherited and all(n.id in flow.inherited for n in match.nodes):
                        continue  # (a torch base's method the subclass runs: code the file does not write)
                    found.setdefault(match.key, match)
        if not found:
            return []  # (most files and matchers: nothing to sort or to choose among)
        matches = sorted(found.values(), key=lambda m: m.span)
        if self.has_optional:
            matches = _longest(matches, self.anchor)
        return _disjoint(matches) if self.fan_out else matches

    def _word_keys(self) -> tuple:
        """What a root must mention for the pattern to fit, as keys of :func:`_word_group`:
        the name of every required function call (lower-case last component: a layer class
        could also match a layer node), method and keyword, and per named pattern node the
        identifiers one of which the root must mention (its triggers).  Computed once per
        matcher; the word sets themselves once per class, shared by every matcher."""
        found = [("calls", op) for op in self.required_calls]
        found += [self._method_key(m) for m in self.required_methods]
        found += [("word", k) for k in (*self.required_keywords, *self.required_attributes)]
        found += [("op", op) for op in self.required_ops]
        for pnode in self.forward.nodes:
            if getattr(pnode, "optional", False):
                continue
            key = self._node_key(pnode)
            if key is not None:
                found.append(key)
            if pnode.canonical and pnode.op == "canon.rotate_half":
                found.append(("negpair", pnode.op))
            if pnode.canonical and pnode.op == "canon.rope_halves":
                found.append(("halfpair", pnode.op))
            if pnode.canonical and pnode.op == "canon.split_member":
                # its one word is the starred split's pseudo-word, in the file's words too: a
                # file without one is left before any class is looked at (file_keys)
                found.append(("words", tuple(TABLE.words(pnode.op))))
        return tuple(dict.fromkeys(found))

    def _node_key(self, pnode: PNode) -> tuple | None:
        """The :func:`_word_group` key of the identifiers one of which a root must mention for
        ``pnode`` to match there (None: no constraint): a canonical operation's spellings (an
        operator spelling such as ``@`` needs no word), a layer variable's allowed constructors
        bound in the class (and the spellings of what they compute), a method's name, a
        function's call names (or a layer bound to that class)."""
        if pnode.canonical:
            return ("op", pnode.op) if TABLE.words(pnode.op) else None
        if pnode.op == "layer":
            allowed = self.layer_types.get(pnode.layer.name)
            if allowed is None:
                return None
            return ("layer", frozenset(allowed), tuple(self.layer_ops.get(pnode.layer.name, ())))
        if pnode.op == "method":
            return self._method_key(pnode.method)
        if not pnode.op[:1].isalpha():
            return None
        return ("callbound", pnode.op)

    def _candidates(self, module: ModuleStructure) -> list[tuple[str, list[str]]]:
        """(class name, :meth:`_candidate_roots`) of the classes of ``module`` that have some,
        in the module's order; worked out once per file for all matchers with the same word
        keys and scope (the variants of an alternative, alternatives that differ only in
        their steps' arguments: 45 key sets for some 130 matchers)."""
        found = module.candidates.get(self.roots_key)
        if found is None:
            file_scope = self.scope == "file"
            classes = module.classes
            if self.word_order:
                # The classes some root of which mentions a word of the first group, listed once
                # per file and scope for every key set that starts with that group (29 first
                # groups for 49 key sets): _candidate_roots is [] for the others, whose roots
                # its first test leaves out (most classes: it was called for each, per key set).
                first = self.word_order[0]
                listed = module.first_candidates.get((file_scope, first))
                if listed is None:
                    listed = module.first_candidates[(file_scope, first)] = _first_candidates(module, first, file_scope)
            else:
                listed = [name for name, cls in classes.items() if (cls.all_roots if file_scope else cls.roots)]
            found = module.candidates[self.roots_key] = [
                (name, roots) for name in listed for roots in [self._candidate_roots(classes[name], module)] if roots
            ]
        return found

    def _candidate_roots(self, cls: ClassStructure, module: ModuleStructure) -> list[str]:
        """The roots of ``cls`` that mention every word group of :meth:`_word_keys` (cheap,
        so before any graph is built: most classes call none of the pattern's functions)."""
        cache = cls.__dict__.get("_match_words")
        if cache is None:
            # roots_key (scope, word keys) -> roots; word key -> words; scope -> (root, its
            # words) of the scope's roots (each root's words looked up once per class, not
            # once per matcher key)
            cache = cls._match_words = ({}, {}, {})
        roots = cache[0].get(self.roots_key)
        if roots is None:
            file_scope = self.scope == "file"
            pairs = cache[2].get(file_scope)
            if pairs is None:
                pairs = cache[2][file_scope] = [(r, cls.words(r)) for r in (cls.all_roots if file_scope else cls.roots)]
            groups = cache[1]
            single = len(pairs) == 1
            for key in self.word_order:
                if not pairs:
                    break
                group = groups.get(key)
                if group is None:
                    group = _word_group(cls, module, key, groups)
                if single:  # (most classes: one root; no list made to keep it)
                    if group.isdisjoint(pairs[0][1]):
                        pairs = ()
                else:
                    pairs = [pair for pair in pairs if not group.isdisjoint(pair[1])]
            roots = cache[0][self.roots_key] = ([pairs[0][0]] if pairs else []) if single else [r for r, _ in pairs]
        return roots

    def match_flow(self, cls: ClassStructure, flow: Flow, found=()) -> Iterable[Match]:
        """The matches in ``flow``; ``found``: the keys of matches already kept, whose nodes a
        later state (the same operations in other roles: an addition taken as the bias or as
        the mask) is not checked again for -- the caller keeps the first match per key."""
        by_kind = _index(flow).kinds
        pruning = self._feasibility(flow)
        if pruning is None:
            return
        # An optional first step may be absent: the search then also starts at the second.
        starts = (0, 1) if self.forward.nodes[0].optional else (0,)
        options: dict = {}  # (step, node id) -> _options, shared by the searches of this flow
        for index in starts:
            first = self.forward.nodes[index]
            if first.canonical:
                # (_op_ok of a canonical step is computes(op, node): the nodes of the four kinds
                # that compute it, in the same order, listed once per flow and operation)
                starts_at = _index(flow).computing(first.op)
            else:
                # (what _kinds and _op_ok read of the matcher is in the step's static key: the
                # list is made once per flow for the matchers that share the first step)
                key = ("starts", self._static_keys[index])
                step = self._static_steps[index]
                static = _index(flow).static
                listed = static.get(key)
                if listed is None or listed[0] is not step:
                    listed = static[key] = (step, [node for kind in self._kinds(first) for node in by_kind.get(kind, ())
                                                   if self._op_ok(first, node)])
                starts_at = listed[1]
            for node in starts_at:
                yield from self._search(cls, flow, node, *pruning, first=index, found=found, options_at=options)

    def _kinds(self, pnode: PNode) -> tuple[str, ...]:
        """The node kinds a pattern step can match."""
        if pnode.canonical:
            return _CANONICAL_KINDS
        if pnode.op == "layer":
            return ("layer", "call") if pnode.layer.name in self.layer_ops else ("layer",)
        if pnode.op == "method":
            return ("method",)
        return ("op",) if not pnode.op[:1].isalpha() else ("call", "layer")

    def _feasibility(self, flow: Flow):
        """A test ``feasible(pos, index)`` -- can pattern nodes ``index..`` still be matched after
        node ``pos``? -- and, per required pattern index, the ids of the nodes that may match it,
        and the test's memo ((pos, index) -> answer: the search reads it before calling), and
        the ids of all those nodes.
        None when some required pattern node has no candidate in the flow at all.

        Edges only go from lower to higher node ids (nodes are numbered as the builder emits
        them), so each required pattern node must find a candidate -- a node whose operation
        and literal arguments fit -- with a higher id than the previous one's.  This cuts the
        search from every ``transpose``/``einsum`` after a forward's last softmax, say, which
        was most of the cost of long patterns with optional steps.
        """
        index_ = _index(flow)
        key = self._feasibility_key
        found = index_.static.get(key, _UNKNOWN)
        if found is _UNKNOWN:
            found = index_.static[key] = self._flow_feasibility(index_)
        return found

    def _flow_feasibility(self, index_: "_FlowIndex"):
        """:meth:`_feasibility` worked out (shared per flow by the matchers with its key)."""
        pattern = self.forward.nodes
        candidates: dict[int, list[int]] = {}
        allowed: dict[int, frozenset] = {}
        for index, pnode in enumerate(pattern):
            if index == 0 or pnode.optional:
                continue
            ids, allowed[index] = self._static_ids(index, pnode, index_)
            if not ids:
                return None
            candidates[index] = ids
        required = sorted(candidates)
        memo: dict[tuple[int, int], bool] = {}
        # The optional steps too: a node that fails these static checks never binds the step
        # (_bind_node checks them again), so the search tests membership instead of the op.
        for index, pnode in enumerate(pattern):
            if index and pnode.optional:
                allowed[index] = self._static_ids(index, pnode, index_)[1]

        def feasible(pos: int, index: int) -> bool:
            key = (pos, index)
            found = memo.get(key)
            if found is None:
                found = True
                cur = pos
                for j in required:
                    if j < index:
                        continue
                    ids = candidates[j]
                    at = bisect.bisect_right(ids, cur)
                    if at == len(ids):
                        found = False
                        break
                    cur = ids[at]
                memo[key] = found
            return found

        # the nodes that may match some step after the first (_search looks for a step to
        # bind only at those)
        return feasible, allowed, memo, frozenset().union(*allowed.values())

    def _static_ids(self, index: int, pnode: PNode, flow_index: "_FlowIndex") -> tuple[list[int], frozenset]:
        """The ids of the flow's nodes that pass :meth:`_static_ok` for step ``index`` (in id
        order, and as a set).  What the test reads of the matcher -- the step itself, the
        commutativity, the spellings, and the constructors and operations its layer variable
        allows -- is the key of a per-flow cache, so matchers that share a step (the variants
        of an alternative, alternatives with the same steps) test the flow's nodes once."""
        key = self._static_keys[index]
        step = self._static_steps[index]
        found = flow_index.static.get(key)
        # (the step is kept in the entry, and in _STEPS: alive, its id names no other object)
        if found is None or found[0] is not step:
            ids = [node.id for node in self._op_candidates(pnode, flow_index) if self._static_ok(pnode, node)]
            found = flow_index.static[key] = (step, ids, frozenset(ids))
        return found[1], found[2]

    def _op_candidates(self, pnode: PNode, index: "_FlowIndex") -> list[Node]:
        """The flow's nodes that :meth:`_op_ok` may accept for ``pnode`` (a superset), in id
        order: read off the flow's index instead of testing every node."""
        op = pnode.op
        if pnode.canonical:
            found = index.canon.get(op, [])
            maybe = index.maybe.get(op) if op in TABLE.runtime else None
            if maybe:
                found = sorted({n.id: n for n in (*found, *maybe)}.values(), key=_node_id)
            return found
        if op == "layer":
            if self.layer_ops.get(pnode.layer.name):
                return index.merged(("layer", "call"))
            return index.kinds.get("layer", [])
        if op == "method":
            names = self._methods(pnode.method)
            if len(names) == 1:
                return index.ops.get(("method", pnode.method), [])
            return sorted((n for name in names for n in index.ops.get(("method", name), ())), key=_node_id)
        if op in _OPERATORS:
            return index.ops.get(("op", op), [])
        return index.merged(("call", "layer"))

    def _static_ok(self, pnode: PNode, node: Node) -> bool:
        """What :meth:`_bind_node` checks that does not depend on the bindings: the operation,
        the arity, literal arguments and keywords."""
        if not self._op_ok(pnode, node):
            return False
        args, kwargs, _, _ = node_view(pnode, node)
        if not (commutes(pnode, self.commutative) and len(args) == 2):
            if len(args) < len(pnode.args) or (len(args) > len(pnode.args) and not pnode.rest):
                return False
            for pvalue, value in zip(pnode.args, args):
                if isinstance(pvalue, Lit) and not _literal_is(pvalue, value):
                    return False
        code_kwargs = dict(kwargs)
        for name, pvalue in pnode.kwargs:
            if name not in code_kwargs:
                return False
            if isinstance(pvalue, Lit) and not _literal_is(pvalue, code_kwargs[name]):
                return False
        return _keywords_fit(pnode, self._own_keywords(pnode, node, code_kwargs.keys()))

    def _own_keywords(self, pnode: PNode, node: Node, keys) -> set:
        """The keywords of a call that the pattern must account for.  A layer step matched by a
        function computing the layer's activation (``F.gelu(h, approximate=...)`` for ``$act(h)``
        with ``$act = torch.nn.GELU(...)``) may pass that activation's own parameters: they pick
        its variant (its layer takes them in the constructor), not other data."""
        keys = set(keys)
        if pnode.op != "layer" or node.kind != "call" or not node.canon:
            return keys
        if node.canon not in self.layer_ops.get(pnode.layer.name, ()):
            return keys
        op = TABLE.ops.get(node.canon)
        if op is None or not op.runtime:  # activations only: dropout's ``training`` is not a variant
            return keys
        return keys - set(op.signature[op.inputs:])

    def _methods(self, name: str) -> tuple[str, ...]:
        """The Tensor methods a method step ``x.<name>(...)`` matches: ``view`` and ``reshape``
        give the same values (a copy where a view is impossible), so one is the other's
        spelling -- except under exact spellings (the paper benchmark's conventions)."""
        if self.spellings == "canonical":
            return METHOD_SPELLINGS.get(name, (name,))
        return (name,)

    def _method_key(self, name: str) -> tuple:
        """The :func:`_word_group` key of the words one of which code must mention for a method
        step ``x.<name>(...)``: its spellings; for ``size`` (kind ``sizes``) also the ``shape``
        attribute (``x.shape[-1]`` as the argument of a view or reshape is read as
        ``x.size(-1)``: graph._shape_as_size), ``flatten`` and, in a class that binds a
        ``BatchNorm1d`` and a ``Linear``, the views (:func:`_size_groups`)."""
        methods = self._methods(name)
        if name != "size":
            return ("words", methods)
        return ("sizes", methods)

    def _op_ok(self, pnode: PNode, node: Node) -> bool:
        op = pnode.op
        if pnode.canonical:
            return computes(op, node)
        if op == "layer":
            ops = self.layer_ops.get(pnode.layer.name)
            if ops and any(computes(o, node) for o in ops):
                # a layer computing the operation, or a callable that does (F.gelu, nn.GELU())
                return node.kind == "layer" or (node.kind == "call" and node.func_span is not None
                                                and bool(node.op) and not node.op.startswith("?"))
            if node.kind != "layer":
                return False
            allowed = self.layer_types.get(pnode.layer.name)
            return allowed is None or any(names_match(a, t) for a in allowed for t in node.types)
        if op == "method":
            return node.kind == "method" and node.op in self._methods(pnode.method)
        if op in _OPERATORS:
            return node.kind == "op" and node.op == op
        if node.kind == "call":
            # a callee chosen at run time (``Lion if use_lion else Adam``) may be this one: the
            # fix must then apply to that choice only (synth/plan.py guards it)
            return names_match(op, node.op) or (
                bool(node.choices) and any(names_match(op, fqn) or _any_of_module(op, fqn) for fqn, _ in node.choices))
        if node.kind == "layer":
            return any(names_match(op, t) for t in node.types)
        return False

    def _search(self, cls: ClassStructure, flow: Flow, start: Node, feasible, allowed, known: dict,
                anywhere: frozenset, first: int = 0, found=(), options_at: dict | None = None) -> Iterable[Match]:
        """Depth-first from ``start``; a node that binds the next step is explored before the
        same node skipped as a gap (pushed last, popped first).  Every reachable state is still
        visited unless the search runs past MAX_STEPS_PER_START; then what it stops on is gaps
        walked into the rest of a long forward (timesfm's KV-cache branches after the query
        projection), not the key projection two statements on.  ``feasible``, ``allowed``,
        ``known`` and ``anywhere`` are :meth:`_feasibility`'s test, allowed sets, memo and
        the union of the allowed sets."""
        pattern = self.forward.nodes
        out = flow.out
        nodes = flow.nodes
        seen: dict = {}  # the states visited, by place (_first_visit)
        steps = 0
        self._repeats = flow.repeats
        initial = self._absent(pattern[0], 0, _State()) if first else _State()
        if self.same_source:
            initial.aliases.update(_pure_aliases(flow))
        state = self._bind_node(pattern[first], first, start, initial)
        if state is None:
            return
        if len(pattern) == first + 1:
            match = self._finish(cls, flow, state)
            if match is not None:
                yield match
            return
        if options_at is None:
            options_at = {}
        if self._next_reads[first] and not self._may_read(flow, first, state, start.id, allowed, options_at):
            return  # no later nodes can bind the next steps to what this start bound (_may_read)
        if self._reach(flow, first + 1, state, allowed, options_at) <= start.id:
            return  # no later node can bind a next step (_reach)
        stack = [(start.id, first + 1, state, 0)]
        last = len(pattern) - 1
        live = self.live_intermediates
        tested_after = _guards_tested(flow)
        settings = self.setting_paths
        # (node id, step) -> (the last state popped there, its gap): a state met again at a
        # place it was walked from with no larger gap is not walked again (see below)
        walked: dict = {}
        while stack:
            pos, index, state, gap = stack.pop()
            walked[(pos, index)] = (state, gap)
            ok = known.get((pos, index))  # feasible's memo read here: most states repeat a test
            if ok is None:
                ok = feasible(pos, index)
            if not ok:
                continue
            # The steps the next node may match: pattern[index], or -- an optional step being
            # absent, its output standing for its input -- a later one, up to the next
            # required step.  Absent steps are taken here, when a node matches a later step,
            # rather than as states of their own: that kept a state per optional step per node.
            options = None
            for succ, guard in out[pos]:
                steps += 1
                if steps > MAX_STEPS_PER_START:
                    return
                added = None
                if guard is not None:
                    text, taken = guard
                    if state.guards.get(text, taken) != taken:
                        continue
                    if text not in state.guards and (tested_after[text] >= succ or (settings and "self" in text)):
                        # (a test no edge from ``succ`` on asks again, and that _finish does not
                        # read, is not recorded: :func:`_guards_tested`)
                        added = (text, taken)
                node = nodes[succ]
                progress = None  # pushed after the gap below, so popped first: see the docstring
                # (most nodes may match no step at all: the options are not looked through then,
                # nor made: a state most often walks gaps to a node no step allows)
                if succ in anywhere:
                    if options is None:
                        options = options_at.get((index, pos))
                        if options is None:
                            options = options_at[(index, pos)] = self._options(index, pos, feasible)
                        # the state at step index + i, its optional steps before absent (made once per
                        # state: a state skipped over a gap is popped again at the next node)
                        chain = state._chain
                        if chain is None or chain[0] != index:
                            chain = state._chain = (index, {})
                        chain = chain[1]  # (without the state itself: a state in its own dict is a cycle)
                    for j in options:
                        if succ not in allowed[j]:
                            continue
                        option = chain.get(j - index, state) if j > index else state
                        if option is state and j > index:
                            # made only when a node may match step j: the steps index..j-1 absent,
                            # from the nearest state made before it, in one copy (the states
                            # between, with fewer steps absent, only when a node asks for them)
                            made = j - index - 1
                            while made and made not in chain:
                                made -= 1
                            option = self._absent(pattern[index + made], index + made, chain[made] if made else state)
                            if j - index - made > 1:
                                _absent_run(self._absent_plans, index + made + 1, j, option)
                            chain[j - index] = option
                        if added is not None:
                            option = option.copy()
                            option.guards[added[0]] = added[1]
                        bound = self._bind_node(pattern[j], j, node, option)
                        if bound is None:
                            continue
                        if j == last:
                            if found and match_key(self.rule_id, bound.matched) in found:
                                continue
                            match = self._finish(cls, flow, bound)
                            if match is not None:
                                yield match
                                self._repeats = flow.repeats  # (another flow's search may have run meanwhile)
                        # (a 2-tuple place; the gaps' places below are 3-tuples: never equal)
                        elif self._reach(flow, j + 1, bound, allowed, options_at) > succ \
                                and _first_visit(seen, (succ, j + 1), bound):
                            if progress is None:
                                progress = []
                            progress.append((succ, j + 1, bound, 0))
                # Or skip it as a gap.  The gap counts the operations of the function the
                # match is in at full weight, those of a helper called between two steps (its
                # body inlined here, as enformer's positional features and relative shift are)
                # at a quarter: a helper's many small operations are one call there, and the
                # bound still keeps a search from walking every inlined body to the end.  Only
                # for rules whose steps may lie far apart with values live between them
                # (attention: ``live_intermediates``); for the others the lighter weight bought
                # no site on any corpus and cost a tenth of the analysis time.
                step = (GAP_WEIGHT if node.func == state.matched[-1].func or not live else 1) \
                    if node.kind in ("layer", "call", "method", "op") else 0
                if gap + step <= self.gap_bound:
                    next_state = state
                    if added is not None:
                        next_state = state.copy()
                        next_state.guards[added[0]] = added[1]
                    defs = node.defs
                    if node.kind in ("exit", "copy") or (next_state.produced and not live):
                        skipped = self._skip(node, next_state, index)
                    elif not defs:
                        skipped = next_state  # what _skip returns for a node that assigns nothing
                    elif defs.isdisjoint(next_state._bound or next_state.bound_keys()) and (
                            not next_state.aliases or defs.isdisjoint(next_state.aliases)):
                        # what _skip returns for a node whose assignments touch no bound value
                        # and no alias (its tests written out: a name no alias holds is its own
                        # canonical key, so none of them reaches a bound value through one either).
                        # The rules whose search starts with the file's pure aliases (same_source:
                        # ADP009) took _skip at every such gap node.
                        skipped = next_state
                    else:
                        skipped = self._skip(node, next_state, index)
                    # The same state walked onto a node it was already walked from at this step
                    # with a gap no larger (the ways of an ``if`` rejoining, no test recorded:
                    # _guards_tested) is not walked again.  The gap is read only against the bound
                    # (a smaller one reaches every node a larger one does) and the earlier walk from
                    # there is over (a state popped there has had every node after it walked: ids
                    # only grow along edges): what this one would meet, it met -- each step bound
                    # again an equal state at an equal place (_first_visit refuses it), each last
                    # step a match already kept or _finish's same answer.
                    if skipped is not None and (
                            reach[1] if (reach := skipped._reach) is not None and reach[0] == index
                            else self._reach(flow, index, skipped, allowed, options_at)) > succ \
                            and ((done := walked.get((succ, index))) is None or done[0] is not skipped
                                 or done[1] > gap + step) \
                            and _first_visit(seen, (succ, index, gap + step), skipped):
                        stack.append((succ, index, skipped, gap + step))
                if progress is not None:
                    stack.extend(progress)

    def _reads_from(self, index: int) -> tuple:
        """What :meth:`_reach` reads for a state at step ``index``: (every variable name below,
        ((j, the names of the variables and temporaries step ``j`` reads, in the state at
        ``index``), ...)) for each step ``j`` such a state may bind next -- ``index`` and,
        past each optional step, the following one (:meth:`_options` without the feasibility
        test).  A step ``j`` after absent ones reads their outputs as the inputs they stand
        for (:func:`_absent_into`), so its names are those inputs' names."""
        nodes = self.forward.nodes
        steps = []
        alias: dict[str, str] = {}  # an absent step's output (and %index) -> the name it stands for
        j = index
        while j < len(nodes):
            pnode = nodes[j]
            names = []
            for value in (*pnode.args, *(v for _, v in pnode.kwargs)):
                if type(value) is Var:
                    names.append(alias.get(value.name, value.name))
                elif type(value) is Temp:
                    names.append(alias.get(f"%{value.index}", f"%{value.index}"))
            steps.append((j, tuple(dict.fromkeys(names))))
            if not pnode.optional or j + 1 >= len(nodes):
                break
            first = pnode.args[0]
            source = f"%{first.index}" if isinstance(first, Temp) else first.name
            alias[pnode.outs[0].name] = alias[f"%{j}"] = alias.get(source, source)
            j += 1
        return tuple(dict.fromkeys(n for _, names in steps for n in names)), tuple(steps)

    def _reach(self, flow: Flow, index: int, state: _State, allowed, options_at: dict) -> int:
        """The last node id at which a state at step ``index`` may still bind a next step (-1:
        at none); a search state at a node with that id or a later one yields nothing and is
        not searched (it would walk its gaps to the end of the function: the values it holds
        are read by no later node that could bind a step).

        Why it is exact: the next step the state binds is one of :meth:`_reads_from`'s steps
        ``j`` (:meth:`_options`), at a node of its ``allowed`` set reached over gap nodes.
        Gaps change no binding but to turn it stale (a stale one binds nothing), and the
        state's aliases are the flow's pure aliases and copies, so -- :meth:`_may_read`'s
        argument -- for every variable ``j`` reads that the state binds to ``("k", K)``, the
        node must hand ``j`` (as :func:`node_view` reads it) a ``Ref`` whose key lies in the
        closure of ``K``'s repeat class along copy edges.  The last such node of ``j``'s
        allowed set bounds where ``j`` may bind; the largest bound over the steps ``j`` bounds
        the state (and every state its gaps lead to: they bind what it binds, or less).
        A state is not changed after the step that made it hands it on, so the answer is
        kept on the state (one state is met at every gap node it is skipped over)."""
        reach = state._reach
        if reach is not None and reach[0] == index:
            return reach[1]
        names, steps = self._option_reads[index]
        values = state.values
        key = ("reach", index, tuple(map(values.get, names)))  # (no generator frame per state)
        found = options_at.get(key)
        if found is None:
            found = -1
            everywhere = len(flow.nodes)  # (no bound value read: any later node)
            for j, reads in steps:
                last = everywhere
                for name in reads:
                    ident = values.get(name)
                    if ident is None:
                        continue
                    if ident[0] == "k":
                        lasts = options_at.get(("last", j))
                        if lasts is None:
                            lasts = options_at[("last", j)] = self._last_readers(flow, j, allowed)
                        at = lasts.get(ident[1])
                        if at is None:
                            index_of = lasts[None]
                            at = lasts[ident[1]] = max(
                                (index_of[k][-1] for k in _copy_closure(flow, ident[1]) if k in index_of), default=-1)
                        last = min(last, at)
                    elif ident[0] == "stale":  # (Matcher._bind: a stale value binds nothing)
                        last = -1
                        break
                if last > found:
                    found = last
                    if found == everywhere:
                        break
            options_at[key] = found
        state._reach = (index, found)
        return found

    def _last_readers(self, flow: Flow, index: int, allowed) -> dict:
        """:meth:`_reach`'s table for step ``index``: bound key -> the last node the step may bind
        at that reads a value of it (filled as asked), and under ``None`` :meth:`_readers`.
        Both depend only on the step's static key (the nodes it allows, read as it reads them),
        so the matchers that share the step (the variants of an alternative, alternatives with
        the same steps) share one table per flow, kept with the step as _static_ids keeps its."""
        key = ("last", self._static_keys[index])
        step = self._static_steps[index]
        static = _index(flow).static
        found = static.get(key)
        if found is None or found[0] is not step:
            found = static[key] = (step, {None: self._readers(flow, index, allowed)})
        return found[1]

    def _required_reads(self, first: int) -> tuple:
        nodes = self.forward.nodes
        found = []
        for index in range(first + 1, len(nodes)):
            pnode = nodes[index]
            if pnode.optional:
                break
            names = tuple(dict.fromkeys(v.name for v in (*pnode.args, *(v for _, v in pnode.kwargs)) if type(v) is Var))
            if not names:
                break
            found.append((index, names))
        return tuple(found)

    def _may_read(self, flow: Flow, first: int, state: _State, pos: int, allowed, options_at: dict) -> bool:
        """Can the required steps right after the start's step ``first`` bind, one after another,
        at nodes after ``pos``, as far as the variables among their arguments that the start's
        state already binds to a name's value (ADP009's ``$x``: a second and a third layer
        reading the first one's input)?  A necessary condition of every match of the search,
        so a start it fails yields nothing.

        Why it is necessary: the search binds a required step only at a node of its
        ``allowed`` set after the previous step's node (edges go to higher ids), in a state the
        start's reaches over gap nodes and steps.  Neither rebinds a variable: a bound
        ``("k", K)`` stays or turns stale, and a stale one binds nothing (:meth:`_bind`).  So
        the node must hand the variable a ``Ref`` whose key ``k`` has ``canon(k)`` equal to
        ``K`` or, the flow computing it again, in ``K``'s repeat class.  The state's aliases
        are the file's pure aliases and the copies ``_skip`` records (``dst -> canon(src)``):
        ``canon(k)`` is ``k`` or a key ``k`` is copied from along those edges, so ``k`` lies in
        the closure of ``K``'s repeat class along copy edges (source -> target).  Each step's
        node is then at least the first such node after the previous bound, for every
        variable it reads."""
        values = state.values
        closures: dict[str, set] = {}
        cur = pos
        for index, reads in self._next_reads[first]:
            bound = [(name, values[name][1]) for name in reads
                     if name in values and values[name][0] == "k"]
            if not bound:
                return True  # (nothing more this test can read)
            index_of = options_at.get(("reads", index))
            if index_of is None:
                index_of = options_at[("reads", index)] = self._readers(flow, index, allowed)
            low = cur
            for name, key in bound:
                keys = closures.get(name)
                if keys is None:
                    keys = closures[name] = _copy_closure(flow, key)
                best = None
                for k in keys:
                    ids = index_of.get(k)
                    if ids:
                        at = bisect.bisect_right(ids, cur)
                        if at < len(ids) and (best is None or ids[at] < best):
                            best = ids[at]
                if best is None:
                    return False
                low = max(low, best)
            cur = low
        return True

    def _readers(self, flow: Flow, index: int, allowed) -> dict[str, list[int]]:
        """Per key, the ids (ascending) of the nodes step ``index`` may bind at that hand some
        argument (positional or keyword, as the step reads them) a ``Ref`` of that key."""
        pnode = self.forward.nodes[index]
        nodes = flow.nodes
        found: dict[str, list[int]] = {}
        for node_id in sorted(allowed[index]):
            args, kwargs, _, _ = node_view(pnode, nodes[node_id])
            for value in (*args, *(v for _, v in kwargs)):
                if type(value) is Ref:
                    ids = found.setdefault(value.key, [])
                    if not ids or ids[-1] != node_id:
                        ids.append(node_id)
        return found

    def _option_run(self, index: int) -> tuple[int, ...]:
        """The steps past ``index`` that :meth:`_options` may add: while the step before is
        optional, the next one, up to the first required step (or the pattern's end)."""
        pattern = self.forward.nodes
        run = []
        j = index
        while pattern[j].optional and j + 1 < len(pattern):
            j += 1
            run.append(j)
        return tuple(run)

    def _options(self, index: int, pos: int, feasible) -> list[int]:
        """The steps the next node may match: ``index`` itself and, past each optional step
        (absent), the following one; only those still feasible after ``pos``.  (The state at
        a later step, with the optional steps before it absent, is made by the search when a
        node is a candidate for that step: most nodes are none.)

        ``feasible(pos, j)`` reads only the required steps from ``j`` on, and every step of
        the run but its last is optional: the run's steps all have its last step's required
        steps from there on, so one test answers for all of them (it was asked per step)."""
        run = self._option_runs[index]
        if run and feasible(pos, run[-1]):
            return [index, *run]
        return [index]

    @staticmethod
    def _absent(pnode: PNode, index: int, state: _State) -> _State:
        new = state.copy()
        _absent_into(pnode, index, new)
        return new

    def _overwritten(self, state: _State, keys: set, index: int) -> _State | None:
        """The state after code between two steps assigns ``keys``: None when a step from
        ``index`` on still needs a value bound there; otherwise those values are stale."""
        names = [n for n, ident in state.values.items() if ident[0] == "k" and ident[1] in keys]
        if any(n in self.needed_after[index] for n in names):
            return None
        new = state.copy()
        for name in names:
            new.values[name] = ("stale", new.values[name][1], index)
        new.produced -= keys
        return new

    def _skip(self, node: Node, state: _State, index: int = 0) -> _State | None:
        if node.kind == "exit":
            return None
        if node.kind == "copy" and node.args and isinstance(node.args[0], Ref):
            bound = state.bound_keys()
            src = state.canon(node.args[0].key)
            dst = node.outs[0].key if node.outs else None
            if dst is not None and dst in bound:
                if src == dst:
                    # ``w = Attention.apply_sparse_mask(w, ...)`` of a helper that returns its
                    # argument: the name keeps its value
                    return state
                # ``dots = self.apply_pos_bias(dots)``: the helper's result replaces a value no
                # later step reads
                if src not in bound:
                    return None
                state = self._overwritten(state, {dst}, index)
                if state is None:
                    return None
                bound = state.bound_keys()
            if (dst is not None and src in state.produced and not self.live_intermediates
                    and any(c in dst for c in ".[|")):
                return None  # an intermediate stored into an attribute or a container escapes
            if src in bound and dst is not None:
                new = state.copy()
                new.aliases[dst] = src
                return new
            if dst in state.aliases:
                new = state.copy()
                new.aliases.pop(dst)
                return new
            return state
        if state.produced and not self.live_intermediates:
            aliases = state.aliases
            uses = {aliases.get(k, k) for k in node.uses} if aliases else node.uses
            if not state.produced.isdisjoint(uses) and not _template_read(node, state.produced & uses):
                # an intermediate value of the match is read elsewhere (a cast to its dtype and
                # device, ``w = self.weight.type_as(var)``, reads no value)
                return None
        defs = node.defs
        if not defs:
            return state
        bound = state.bound_keys()
        if not defs.isdisjoint(bound) or (state.aliases and any(state.canon(k) in bound for k in defs)):
            # a bound value is overwritten between pattern nodes (fairseq's dead cast
            # ``attn_weights = attn_weights_float.type_as(attn_weights)`` after the softmax):
            # not a site when a later step still reads it; otherwise it is stale
            state = self._overwritten(state, set(defs) | {state.canon(k) for k in defs}, index)
            if state is None:
                return None
        if state.aliases and not defs.isdisjoint(state.aliases):
            new = state.copy()
            for key in node.defs:
                new.aliases.pop(key, None)
            return new
        return state

    def _bind(self, pvalue, value, state: _State) -> bool:
        if type(pvalue) is Var:  # (most steps' arguments: the chain below tests it last)
            ident = ("k", state.aliases.get(value.key, value.key)) if type(value) is Ref else state.ident(value)
            current = state.values.get(pvalue.name)
            if current is None:
                state.values[pvalue.name] = ident
                state.env[pvalue.name] = value
                return True
            if current == ident:
                return True
            repeats = self._repeats  # (a temporary the flow computes again by the same steps)
            return repeats is not None and current[0] == "k" and ident[0] == "k" \
                and repeats.get(current[1], current[1]) == repeats.get(ident[1], ident[1])
        if isinstance(pvalue, Wild):
            return True
        if isinstance(pvalue, Lit):
            if not isinstance(value, Const):
                return False
            if isinstance(pvalue.value, bool) or isinstance(value.value, bool):
                return value.value is pvalue.value
            return value.value == pvalue.value
        if isinstance(pvalue, Sym):
            return isinstance(value, Ref) and value.text == pvalue.name
        if isinstance(pvalue, Temp):
            return state.values.get(f"%{pvalue.index}") == state.ident(value)
        return False  # (a Var is bound above: the pattern classes have no subclasses)

    def _bind_node(self, pnode: PNode, index: int, node: Node, state: _State) -> _State | None:
        # ``state`` is never changed here (the bindings go into a copy): a test that fails on
        # what ``state`` already holds fails on the copy too, so those tests come first, and
        # half the calls (a step's input is not the value an earlier step bound) make no copy.
        values = state.values
        if pnode.layer is not None:
            # A layer, or the function a callable step calls (F.gelu(h) for $act(h)).
            layer_ident = ("l", node.layer) if node.kind == "layer" else ("f", node.op)
            current = values.get(pnode.layer.name)
            if current is None:
                if layer_ident in values.values():
                    return None  # two layer variables never name the same layer
            elif current != layer_ident:
                return None
        args, kwargs, _, _ = node_view(pnode, node)
        swap = len(args) == 2 and commutes(pnode, self.commutative)  # (asked once per call)
        if _bound_differ(pnode.args, args, state, self._repeats) and (
                not swap or _bound_differ(pnode.args, args[::-1], state, self._repeats)):
            return None
        new = state.copy()
        if pnode.layer is not None and current is None:
            new.values[pnode.layer.name] = layer_ident
            new.env[pnode.layer.name] = layer_ident[1]
        if swap:
            first, second = pnode.args[0], pnode.args[1]
            fresh = _unbound(new, (first, second))
            if not (self._bind(first, args[0], new) and self._bind(second, args[1], new)):
                _forget_bound(new, fresh)
                if not (self._bind(first, args[1], new) and self._bind(second, args[0], new)):
                    return None
        else:
            if len(args) < len(pnode.args) or (len(args) > len(pnode.args) and not pnode.rest):
                return None
            for pvalue, value in zip(pnode.args, args):
                if not self._bind(pvalue, value, new):
                    return None
        code_kwargs = dict(kwargs)
        for name, pvalue in pnode.kwargs:
            if name not in code_kwargs or not self._bind(pvalue, code_kwargs[name], new):
                return None
        # (no keyword written: none the pattern does not name, none it forbids)
        if code_kwargs and not _keywords_fit(pnode, self._own_keywords(pnode, node, code_kwargs.keys())):
            return None
        outs = node.outs
        aliases = new.aliases
        rebound = ()
        if aliases and node.span != node.stmt:
            for out in outs:
                if out.key in aliases:
                    # A name that held a copy of another value (``logits = self.head_of(x)``:
                    # the helper's result copied to it) rebound by this step (``logits =
                    # logits.view(...)``): the name now holds this step's output, a new
                    # tensor, which the step's own pattern variable binds (not the value it was
                    # a copy of).  An in-place step (``x += pad``, ``x.masked_fill_(...)``: its
                    # span is its statement's) changes the one tensor both names hold: the
                    # copy still reads as that value.
                    rebound += (("k", aliases[out.key]),)
                    del aliases[out.key]
        # A name this node assigns no longer holds the value an earlier pattern variable bound
        # to it (``x = f(x)``: a later ``$x`` must not match the new ``x``; nor, once the name is
        # rebound, the value it was a copy of: read through that name it is gone).
        # (new.canon written out: ``aliases`` is new.aliases)
        overwritten = {("k", aliases.get(o.key, o.key)) for o in outs}
        if rebound:
            overwritten.update(rebound)
        values = new.values
        # Tested before the step's own outputs are bound (one C-level test): binding them adds
        # the overwritten values under the step's output variables only, which keep them, so
        # when no other variable holds one (most steps) nothing turns stale -- tested after,
        # the step's own binding met the test at every step and the loop below ran for nothing.
        overwrites = not overwritten.isdisjoint(values.values())
        if pnode.outs:
            if len(pnode.outs) != len(outs):
                return None
            for pvalue, value in zip(pnode.outs, outs):
                if not self._bind(pvalue, value, new):
                    return None
        out_vars = None  # (made when some value is overwritten)
        if overwrites:
            for name, ident in list(values.items()):
                if ident in overwritten:
                    if out_vars is None:
                        out_vars = {o.name for o in pnode.outs if isinstance(o, Var)}
                    if name not in out_vars:
                        values[name] = ("stale", ident[1], index)
        if outs:
            values[f"%{index}"] = new.ident(outs[0]) if len(outs) == 1 else ("t", tuple(o.key for o in outs))
            new.env[f"%{index}"] = outs[0] if len(outs) == 1 else outs
            # (``aliases`` is new.aliases, most often empty: nothing to drop then)
            produced = new.produced
            for out in outs:
                if aliases:
                    aliases.pop(out.key, None)
                produced.add(out.key)
        new.matched = state.matched + (node,)
        new.steps = state.steps + (index,)
        return new

    # -- after the forward match ------------------------------------------------
    def _finish(self, cls: ClassStructure, flow: Flow, state: _State) -> Match | None:
        if flow.layouts is not None and not _whole_layouts(flow.layouts, state.matched):
            return None  # a softmax read in an einsum product's layout, matched without that product
        if self.same_function and len({n.func for n in state.matched}) > 1 \
                and not set.intersection(*({n.func, _home(flow, n)} for n in state.matched)):
            # every step written in one function, a step a helper returns as it is counting as
            # its caller's too (the rotation a ``rot(x)`` helper returns, inside a one-tensor
            # ``apply_rope`` whose own sum is in turn returned to the attention)
            return None
        if not self.live_intermediates and not self._dead_after(flow, state):
            return None
        if self.live_intermediates and self._computed_on(flow, state, cls.module.names):
            return None
        if self.same_source and not self._same_source(flow, state):
            return None
        if self.helper_computes and not self._helpers_compute(flow, state):
            return None
        if self.predicts_input and not (self._shifted_target(cls, flow, state) if self.predicts_input == "shift"
                                        else _masked_rows(cls, flow, state) if self.predicts_input == "masked"
                                        else _mask_token_rows(cls, flow, state) if self.predicts_input == "token"
                                        else self._predicts_input(flow, state)):
            return None
        if self.computed and not (self._computed(cls, flow, state) and self._one_query_sources(flow, state)
                                  and not self._ranked_selection(flow, state)):
            return None
        if self.module_weights and not self._module_weights(state):
            return None
        if self.independent and not self._independent(cls, flow, state, self.independent):
            return None
        if self.given and not all(self._independent(cls, flow, state, (name,), given=True)
                                  for name in self.given if isinstance(state.env.get(name), Ref)):
            return None
        if self.foldable and not self._foldable(cls, flow, state):
            return None
        if self.uncentred and not self._uncentred(flow, state):
            return None
        if self.outputs_meet and not self._outputs_meet(flow, state):
            return None
        if self.same_extras and not self._same_extras(state):
            return None
        if self.projection and not all(_projection_callee(cls, state.env.get(name)) for name in self.projection):
            return None
        guarded: list[str] = []
        if not self._same_on_every_path(flow, state, cls, guarded):
            return None
        ctors = self._match_init(cls, state)
        if ctors is None:
            return None
        return Match(
            rule_id=self.rule_id, class_name=cls.name, flow=flow.name, nodes=state.matched,
            env=tuple(sorted(state.env.items(), key=lambda kv: kv[0])), ctors=tuple(ctors),
            alternative=self.alternative,
            variant=self.variant,
            roles=tuple(self._role(i) for i in state.steps),
            unfixable=(f"a step runs between the matched operations when `{guarded[0]}` (a setting of the "
                       f"module): the fix would have to keep it on that path; rewrite it by hand") if guarded else "",
            settings=tuple(guarded) if self.live_intermediates else (),
        )

    def _same_on_every_path(self, flow: Flow, state: _State, cls: ClassStructure | None = None,
                            guarded: list | None = None) -> bool:
        """Does each step read what the step before it produced on every way between them?
        The search follows one path; another path between the two steps may rewrite the value
        (``if self.training: x = self.drop(x)`` between a conv and its BatchNorm) or, for a rule
        whose intermediates must stay private, read it.  Then the code does not always compute
        the pattern: not a site.  A rule that lets intermediates live (its fix keeps the original
        behind a guard) only asks this from its anchor step on, and only of values replaced by a
        module or function call or a selection of elements (reshapes, casts and arithmetic are
        kept behind its guard): a branch that adds to the scores before the softmax, or multiplies
        the probabilities by a head mask, is kept behind the guard; one that hands the
        probabilities to another module or gathers rows of them (adaptive token sampling) makes
        something the fused kernel does not compute.

        With ``setting_paths``, a step that only the other branch of a configuration ``if`` the
        matched path took runs
        (``if self.activation_sparsity > 0.0: gate = self._topk(gate)`` between the gate
        projection and its activation; :func:`_setting_test`) leaves the site on the path the
        module's settings choose: reported, not fixed (its text appended to ``guarded``); for a
        rule with live intermediates, from its anchor on, when the step is no layer (area
        attention's optional top-k renormalisation of the probabilities, ``if self.top_k_areas >
        0:``; a module handed them under ``if self.sampler is not None:`` stays no site), whose
        fix may send the test to the original path instead (``Match.settings``).  A mode
        (``self.training``) or an argument of the call decides per call: no site."""
        matched = state.matched
        start = 0
        if self.live_intermediates:
            roles = [self._role(i) for i in state.steps]
            if self.anchor is None or self.anchor not in roles:
                return True
            start = roles.index(self.anchor)
        ids = {n.id for n in matched}
        for a, b in zip(matched[start:], matched[start + 1:]):
            keys = {o.key for o in a.outs} | {state.canon(o.key) for o in a.outs}
            if not keys:
                continue
            for pos in _between(flow, a.id, b.id):
                node = flow.nodes[pos]
                if pos in ids or node.kind in ("branch", "entry", "exit"):
                    continue
                if not node.defs & keys and (self.live_intermediates or node.kind == "copy"
                                             or not node.uses & keys or _template_read(node, node.uses & keys)):
                    continue  # (a cast to a value's dtype and device, ``w.type_as(var)``, reads none of it)
                if not self.live_intermediates or node.kind in ("layer", "call", "other") or (
                        node.kind == "method" and node.op in SELECTING):
                    # a module handed the values under a setting (a token sampler, talking heads
                    # through a layer) is none of this: the fixer would have to prove it an identity
                    setting = _excluded_by_setting(flow, a.id, pos, state.guards, cls) \
                        if self.setting_paths and guarded is not None and not (
                            self.live_intermediates and node.kind == "layer") else None
                    if setting is None:
                        return False
                    guarded.append(setting)
        return True

    def _helpers_compute(self, flow: Flow, state: _State) -> bool:
        """Each matched call of a helper named in ``helper_computes`` was inlined, and its body
        computes the named canonical operation of the call's first argument."""
        for node in state.matched:
            wanted = self._helper_wanted(node.op) if node.kind == "call" and not node.outs else None
            if wanted is None:
                continue
            arg = node.args[0] if node.args else None
            if not isinstance(arg, Ref):
                return False
            keys = {arg.key, state.canon(arg.key)}
            found = False
            for body in flow.nodes[node.id + 1:]:
                if body.func == node.func:
                    break  # back in the caller: the helper's body has ended
                view = body.view
                if body.canon == wanted and view is not None and view.args and isinstance(view.args[0], Ref) \
                        and view.args[0].key in keys:
                    found = True
                    break
            if not found:
                return False
        return True

    def _helper_wanted(self, op: str) -> str | None:
        """The canonical operation ``helper_computes`` asks of the helper a call names: looked up
        as the step matched it (:func:`names_match`), so a method call ``self.rotate_half(t)``
        is held to its body as the function call ``rotate_half(t)`` is -- else a method that
        shares the name but rotates interleaved pairs would pass unchecked."""
        wanted = self.helper_computes.get(op)
        if wanted is None and "." in op:
            for name, canon in self.helper_computes.items():
                if names_match(name, op):
                    return canon
        return wanted

    def _same_source(self, flow: Flow, state: _State) -> bool:
        """Every argument bound to one pattern variable is the same value on every path, not
        only on the matched one: spelled the same in the code (one name, not an alias that holds
        the value only on the matched path), that name assigned on no way between the steps
        (``if sr_ratio > 1: x = reduce(x)`` between the query's and the key's projection of
        ``x``), and every way from one step passing through the next (a key projection in the
        self-attention branch of an ``if`` that projects another tensor in its cross-attention
        branch is not one input for the three)."""
        texts: dict[str, set] = {}
        keys: dict[str, set] = {}
        reads: dict[str, int] = {}  # variable -> how many arguments of the steps bind it
        pure = _pure_aliases(flow)
        for index, node in zip(state.steps, state.matched):
            for pvalue, value in zip(self.forward.nodes[index].args, node.args):
                if isinstance(pvalue, Var) and isinstance(value, Ref):
                    # a name that only ever holds a copy of an argument is that argument
                    texts.setdefault(pvalue.name, set()).add(pure.get(value.key, value.text))
                    keys.setdefault(pvalue.name, set()).update((value.key, state.canon(value.key)))
                    reads[pvalue.name] = reads.get(pvalue.name, 0) + 1
        if not all(len(spellings) == 1 for spellings in texts.values()):
            return False
        shared = set().union(*(keys[name] for name in keys if reads[name] > 1))
        if shared and flow.repeats:
            # a temporary the flow computes again by the same steps (``x[:, 1:]`` written for each
            # projection) is the same value: the steps computing it again do not reassign it
            shared.difference_update(flow.repeats)
        ordered = sorted(state.matched, key=lambda n: n.id)
        for a, b in zip(ordered, ordered[1:]):
            if not _always_reaches(flow, a.id, b.id) and not (a is ordered[0] and self._only_after(flow, state, a, b)):
                return False
            if shared and any(flow.nodes[pos].defs & shared for pos in _between(flow, a.id, b.id)):
                return False
        # ... and no other way into the last step projects another input with the same layers:
        # the Q-Former's key and value of ``encoder_hidden_states`` in the cross-attention
        # branch, of ``hidden_states`` in the others, then the query after the if (the input is
        # chosen at run time between self and cross attention).  A call of the layers on another
        # input that every way then takes on to the matched steps (Pegasus-X's local q, k, v of
        # the tokens, then its global q, k, v) is an earlier use, not an alternative.
        first, last = ordered[0].id, ordered[-1].id
        for node in state.matched:
            if node.kind != "layer" or not node.args or not isinstance(node.args[0], Ref):
                continue
            own = node.args[0].text
            for other in flow.nodes[:last]:
                if other.layer != node.layer or other.id == node.id or other.kind != "layer" or not other.args \
                        or not isinstance(other.args[0], Ref) or other.args[0].text == own:
                    continue
                before = _always_reaches(flow, other.id, first) if other.id < first else _reaches(flow, first, other.id)
                if not before and _reaches(flow, other.id, last):
                    return False
        return True

    @staticmethod
    def _only_after(flow: Flow, state: _State, a: Node, b: Node) -> bool:
        """Some way from the first step ``a`` skips the second ``b``, but ``b`` runs only after ``a``
        (every way from the entry to ``b`` passes ``a``; the steps after ``b`` run whenever it
        does), no other call of the matched layers exists (none projects another input), and no
        other layer call of the input lies in ``b``'s block?  Gemma-style attention projects the query, then the key and
        value in the ``else`` of an ``if`` that reuses another layer's cache: where they run, the
        three read one input (reported; the fix needs the three in one block).  BERT-style
        self-or-cross attention calls the key and value layers on the encoder's states in the
        other branch: the input is chosen per call, no site."""
        if a.kind != "layer" or b.kind != "layer":
            return False
        layers = {n.layer for n in state.matched}
        ids = {n.id for n in state.matched}
        source = b.args[0].text if b.args and b.args[0].__class__ is Ref else None
        for node in flow.nodes:
            if node.kind != "layer" or node.id in ids:
                continue
            if node.layer in layers:
                return False
            if node.scope == b.scope and source is not None and node.args and node.args[0].__class__ is Ref \
                    and node.args[0].text == source:
                # another layer of the input beside ``b``: the branch holds its own three (timm's
                # unfused q, k, v in the else, a gate projected before the if)
                return False
        out = flow.out
        last = b.id
        seen = {flow.entry, a.id}
        stack = [flow.entry]
        while stack:
            pos = stack.pop()
            for succ, _ in out[pos]:
                if succ == last:
                    return False  # reached around ``a``
                if succ < last and succ not in seen:
                    seen.add(succ)
                    stack.append(succ)
        return True

    # Steps that only lay a tensor out (its values unchanged): a weight read through them is
    # still the weight.
    _LAYOUT = frozenset({"transpose", "permute", "t", "T", "mT", "unsqueeze", "expand", "expand_as", "view",
                         "reshape", "contiguous", "to", "float", "type_as", "repeat"})

    def _same_extras(self, state: _State) -> bool:
        """Do the calls of the ``[forward] same_extras`` layer variables pass the same arguments
        beyond the pattern's ``...`` (the same values by position, the same keywords with the
        same values)?  Two projections of one input given one adapter list (``loras=loras``) or
        one scale are a gate and an up projection; a layer given the input and a second tensor
        (an attention of both) beside a gate given the input alone is not."""
        extras = []
        nodes = self.forward.nodes
        for index, node in zip(state.steps, state.matched):
            pnode = nodes[index]
            if pnode.op != "layer" or pnode.layer.name not in self.same_extras:
                continue
            if not node.kwargs and len(node.args) <= len(pnode.args):
                extras.append(((), ()))  # (the common case: nothing beyond the pattern's arguments)
                continue
            args, kwargs, _, _ = node_view(pnode, node)
            named = {name for name, _ in pnode.kwargs}
            extras.append((tuple(args[len(pnode.args):]),
                           tuple(sorted(((k, v) for k, v in kwargs if k not in named), key=lambda kv: kv[0]))))
        return all(e == extras[0] for e in extras[1:])

    def _module_weights(self, state: _State) -> bool:
        """Does every variable of ``[forward] module_weights`` the match binds hold a tensor of
        the module read as it is (``self.key.weight``, ``self.w_q``)?  A weight computed in the
        function -- a shard ``slices[i]`` of a split weight in a comprehension, the tensor-parallel
        emulation of one projection -- is not a projection's weight of its own."""
        for name in self.module_weights:
            value = state.env.get(name)
            if value is None:
                continue
            key = value.key if isinstance(value, Ref) else None
            if key is None or not key.startswith("self.") or not all(part.isidentifier() for part in key[5:].split(".")):
                return False
        return True

    def _outputs_meet(self, flow: Flow, state: _State) -> bool:
        """Do two of the matched steps' outputs meet as the operands of one computation (lead
        ruling, session 25: ADP009 is the attention projection kernel)?  Each step's output is
        followed forward through the flow: a node that reads a followed value passes on the steps
        it came from (a statement rebinding followed names keeps each name's own step:
        ``q, k, v = (t.view(s) for t in (q, k, v))``; a name keeps what every assignment gave it,
        the branches being read in one pass; metadata read beside a value, ``q.dtype``, is not
        its values).  Two arguments, each from one step and from different steps, meet where they
        are the operands of a product (``@``, matmul, bmm, an einsum of a literal equation) or
        are handed together to a call that is no torch function (SDPA excepted): an attention
        call, a helper (inlined or not), a module.  Attention's scores are such a product.  A
        container returned or built (eleven classifier heads ``return (a, b, c, ...)``) is no
        such computation; nor is an operand that mixes two steps in another way (a triangle
        update's ``left * left_gate``), nor an einsum whose equation the code picks at run time."""
        matched = state.matched
        first = min(n.id for n in matched)
        labels: dict[str, frozenset] = {}
        own = {n.id: frozenset((i,)) for i, n in enumerate(matched)}
        in_stmt: dict = {}  # statement -> the steps whose output one of its temporaries holds whole
        probs: set = set()  # names last bound to a softmax of one step's output alone
        gates: set = set()  # names bound to a sigmoid or to a product with one
        again: set = set()  # names computed from a step's output projected by another Linear
        activated: set = set()  # names computed from a step's output through an activation
        mlp: set = set()  # names computed from an MLP's hidden layer (a Linear over an activated step)
        normed: set = set()  # names computed from a step's output through a normalization layer
        finished: set = set()  # names computed through an activation of a normalized value
        catted: set = set()  # names computed from a concatenation of two steps' outputs (no layer since)
        spliced: set = set()  # names computed from a layer applied to such a concatenation
        paired: set = set()  # names computed from an elementwise product of two steps' outputs
        weights: set = set()  # names last bound to an exp or softmax of one step's output alone
        displays: set = set()  # temporaries holding a tuple of the steps' outputs, one step each
        every = labels
        single: dict = {}  # name -> the one node that labelled it (None once several did)
        for node in flow.nodes[first:]:
            labels = every
            mine = own.get(node.id)
            if mine is not None:
                for key in node.defs:
                    single[key] = node if key not in every else None
                    every[key] = mine
                    if key[:1] == "%":
                        in_stmt[node.stmt] = in_stmt.get(node.stmt, frozenset()) | mine
                continue
            uses = node.uses
            if node.scope and single:
                # a name labelled by one assignment in the other branch of an ``if`` is not the
                # value this node reads (``if isinstance(x, Tensor): x = (self.lin(x), x) else:
                # x = (self.lin(x[0]), x[1])``: the else reads the argument)
                hidden = [key for key in uses if single.get(key) is not None
                          and _other_branch(flow, single[key], node)]
                if hidden:
                    labels = {key: got for key, got in every.items() if key not in hidden}
            # a sigmoid is a gate, and so is what a gate multiplies (``mask * sigmoid(g(z))``, a
            # triangle update's ``a * a_p(z)``): a gated projection is no query, key or value
            # an attention meets
            gate = "igmoid" in node.op or _SIGMOID in node.types or (
                gates and node.canon == "torch.mul" and not gates.isdisjoint(uses))
            if gate:
                gates.update(node.defs)
            if not uses and node.kind == "call" and node.args:
                # an inlined helper's marker reads nothing itself: its arguments are what the
                # helper is handed
                if self._meet(node, labels, paired):
                    return True
                continue
            if labels.keys().isdisjoint(uses):
                steps = in_stmt.get(node.stmt) if len(node.outs) > 1 and node.kind == "other" else None
                if steps is not None and len(steps) == len(node.outs):
                    # ``query, key, value = (self.q(query), self.k(query), self.v(query))``: the
                    # statement reads the names its calls read; its elements are the steps
                    for out, step in zip(node.outs, sorted(steps)):
                        single[out.key] = node if out.key not in every else None
                        every[out.key] = frozenset((step,))
                continue
            if self._meet(node, labels, paired) or (weights and not gate and _weighs_another(node, labels, weights)):
                return True
            if node.kind == "other" and not node.inlined and _returned_together(flow, node, labels, again,
                                                                                 mlp | finished if finished else mlp,
                                                                                 spliced) \
                    and probs.isdisjoint(node.uses):
                # (a step's output turned into probabilities alone -- ``a = F.softmax(self.cls(x),
                # dim=1); return c, b, a`` -- is a classifier head's, never a query, key or value
                # handed on to an attention)
                return True
            if not node.defs or node.op in _VALUE_FREE or (node.kind == "method" and node.op in TENSOR_METADATA):
                continue
            # what the node computes from the followed values: its operands where it has them,
            # what it reads otherwise; a value's metadata (``q.dtype`` in ``cache["k"].to(q.dtype)``,
            # ``d = k.shape[-1]``) is not its values
            if node.args or node.kwargs:
                came = frozenset()
                # (``t.type_as(v)``, ``t.to(v)``, ``t.expand_as(v)``: of ``v`` only its type or shape)
                values = node.args[:1] if node.kind == "method" and node.op in _LIKE else \
                    (*node.args, *(v for _, v in node.kwargs))
                for value in values:
                    if value.__class__ is Ref:
                        got = _followed(value.key, labels)
                        if got:
                            came = came | got
            else:
                came = frozenset().union(*(labels[key] for key in uses if key in labels and not any(
                    other.startswith(key + "." + attr) for other in uses for attr in TENSOR_METADATA)))
            if not came:
                continue
            written = _written_receiver(node)
            if written is not None:
                # ``alpha = zeros_like(logits); alpha.index_add_(1, dst, logits)``: an in-place
                # method writes what it reads into its receiver (a graph attention's per-edge
                # logits scattered onto the nodes before the softmax)
                every[written] = every.get(written, frozenset()) | came
                if paired and not paired.isdisjoint(uses):
                    paired.add(written)
            if (mlp and not mlp.isdisjoint(uses)) or (
                    activated and node.kind == "layer" and _LINEAR in node.types and not activated.isdisjoint(uses)):
                # ``self.fc_3(relu(self.fc_3_1(x)))``: the step is a small MLP's hidden layer
                mlp.update(node.defs)
            activation = node.canon in _ACTIVATION_CANON or (node.kind == "layer" and not _ACTIVATION_LAYERS.isdisjoint(
                node.types))
            if (normed and activation and not normed.isdisjoint(uses)) or (finished and not finished.isdisjoint(uses)):
                # ``x_new = F.silu(self.bn_nodes(self.src_update(x) + h))``: a layer's normalized,
                # activated result (a graph convolution's node and edge updates returned
                # together) is its output, not a projection handed on to an attention
                finished.update(node.defs)
            if node.kind == "layer" and not _NORM_LAYERS.isdisjoint(node.types):
                normed.update(node.defs)
            if activation or (activated and not activated.isdisjoint(uses)):
                activated.update(node.defs)
            if (node.kind == "layer" and _LINEAR in node.types) or (again and not again.isdisjoint(uses)):
                # a step's output projected again (a graph layer's output Linear over the
                # messages its projections made): what is returned from it is no query, key or
                # value handed on to a caller
                again.update(node.defs)
            if (spliced and not spliced.isdisjoint(uses)) or (
                    node.kind == "layer" and catted and not catted.isdisjoint(uses)):
                # ``qk = torch.cat([q, k], -1)``, then ``self.mix(qk)`` (Zaya's causal convolution):
                # one layer mixes the steps, and the parts split from its output are q and k mixed
                spliced.update(node.defs)
                catted.difference_update(node.defs)
            elif len(came) > 1 and (node.op in _CATS or catted and not catted.isdisjoint(uses)):
                catted.update(node.defs)
            if paired and not paired.isdisjoint(uses):
                paired.update(node.defs)
            elif len(came) == 2 and node.canon == "torch.mul" and node.kind == "op" and not gate and all(
                    len(_followed(v.key, labels) or came) == 1 for v in node.args if v.__class__ is Ref):
                # ``q.unsqueeze(2) * k.unsqueeze(1)``: every query with every key, one logit a feature
                paired.update(node.defs)
            if node.canon == SOFTMAX and len(came) == 1:
                probs.update(node.defs)
            elif probs:
                probs.difference_update(node.defs)
            if len(came) == 1 and (node.canon == SOFTMAX or node.op in _EXP):
                weights.update(node.defs)
            elif weights:
                weights.difference_update(node.defs)
            if gate:
                came = came | _GATED
            if len(came) == 1 and node.outs and node.outs[0].key[:1] == "%":
                in_stmt[node.stmt] = in_stmt.get(node.stmt, frozenset()) | came
            several = len(node.outs) > 1
            if not several and node.kind == "other" and not node.args and len(came) > 1 and len(uses) == len(came) \
                    and node.outs and node.outs[0].key[:1] == "%" and all(len(labels.get(key, ())) == 1 for key in uses):
                displays.add(node.outs[0].key)  # (q(x), k(x), v(x)): each element one step's output
            if several and len(came) == len(node.outs) and (all(
                    len(labels[key]) == 1 for key in uses if key in labels) or _splits_steps(node, again)
                    or (displays and _maps_display(node, displays))) and not any(
                    len(labels.get(out.key, ())) == 1 for out in node.outs):
                # as many names bound as the steps read, each read whole: one name per step
                # (``q, k, v = torch.cat([q, c_q]), torch.cat([k, c_k]), ...``; which name holds
                # which step does not change where two steps meet)
                for out, step in zip(node.outs, sorted(came)):
                    single[out.key] = node if out.key not in every else None
                    every[out.key] = frozenset((step,))
                continue
            for key in node.defs:
                kept = every.get(key)
                single[key] = node if kept is None else None
                if kept is None:
                    every[key] = came
                elif not (several and len(kept) == 1):
                    # (a name keeps what every assignment of it gave it: the flow's branches are
                    # read in one pass, so a later branch's assignment does not end an earlier one's)
                    every[key] = kept | came
        return False

    # torch functions that take two tensors without computing their product or an attention
    _PRODUCTS = frozenset({"torch.matmul", "torch.einsum", "einops.einsum", "torch.bmm", "torch.baddbmm",
                           "opt_einsum.contract"})
    _NOT_MEETING = frozenset({"?map", "?zip", "?tuple", "?list", "?dict", "?print", "?len", "?isinstance",
                              "?setattr", "?sorted", "?enumerate"})

    def _meet(self, node: Node, labels: dict, paired: set = frozenset()) -> bool:
        """Does ``node`` take two arguments, each from one matched step and from different
        ones, as a product's operands or as a call's arguments (see :meth:`_outputs_meet`); or,
        a product, one step's output and a value computed from two others?"""
        kind = node.kind
        op = node.op
        elementwise = False
        if node.canon == "torch.matmul":
            pass
        elif node.canon == "torch.mul" and kind == "op":
            # ``weights * v.unsqueeze(1)`` with weights from the elementwise product of the other
            # two steps: per-feature attention (DiGress) applies what q and k computed to v; two
            # single steps alone (``silu(a) * b``) are a gated unit, and a sum of two (OWL-ViT's
            # ``(logits + shift) * scale``) no query-key product: neither is a meeting
            elementwise = True
        elif op in self._PRODUCTS:
            if "einsum" in op and not (node.args and isinstance(node.args[0], Const)):
                return False  # an equation the code computes: what it contracts is not known
        elif kind == "call":
            if op in self._NOT_MEETING or "einsum" in op or (op.startswith("torch.") and "attention" not in op):
                return False
        elif kind == "method":
            # a method of an object the steps did not compute (``cache.update(k, v)``): a helper
            if not node.args or node.args[0].__class__ is not Ref or node.args[0].key in labels:
                return False
        elif kind != "layer":
            return False
        seen = None
        mixed = None
        spans = None  # an elementwise product's operands that each mix two or more steps
        for value in (*node.args, *(v for _, v in node.kwargs)):
            if value.__class__ is not Ref:
                continue
            got = _followed(value.key, labels)
            if not got or _GATED_MARK in got:
                continue
            if len(got) != 1:
                if not elementwise or value.key in paired:
                    mixed = got if mixed is None else mixed
                elif spans is None:
                    spans = got
                elif _cross_mixed(spans, got):
                    return True
                continue
            if seen is None:
                seen = got
            elif got != seen and not elementwise:
                return True
        # one step's output with what two others computed together (the value with the
        # probabilities of point attention's query-key distances, or with the correlation of
        # query and key an auto-correlation helper aggregates it by)
        return seen is not None and mixed is not None and not seen <= mixed

    def _independent(self, cls, flow: Flow, state: _State, names: tuple[str, ...], given: bool = False) -> bool:
        """Is no variable of ``[forward] independent`` computed from a step of the match?  Each
        value is followed back through its nearest definition (the assignment that reaches its
        read in straight-line code, an inlined helper's parameter included) and the values that
        definition reads: ``v = p.transpose(-1, -2) * c; p @ v`` or Nystrom's
        ``iterative_inv(softmax(...))`` multiplying the kernel by a matrix built from it is a
        product with the probabilities' own function, not with values given before them.  A
        value built from a step lies between the match's first and last steps, so one backward
        pass over that span (set operations, no calls per node) decides it.  A value read only
        for its size (``B, _, n = s.shape``, ``bias(*s.shape[-2:])``, ``s.size(-1)``) is not
        followed: sizes are given before the scores' values, so a mask sized by the scores is
        still one (see _size_reads), and so is one handed to a module of this file whose
        forward reads it only for its size (see _module_reads_sizes).  For ``given`` variables
        (``[forward] given``) a read the flow does not follow step by step -- a callable handed
        in, another file's function, a comprehension -- is not followed either: what it takes of
        the scores, the fixer reads (its stand-ins for them, synth/sdpa.py _stand_in_swaps).  A
        module the flow does not follow (another file's class, a torch layer, one of a list) is
        followed through what it is handed, as any step: ``s + self.gate(s)`` may compute the
        term from the scores' values, which the fixer declines and SDPA's mask cannot be."""
        matched = {n.id for n in state.matched}
        first, last = min(matched), max(matched)
        wanted = set()
        for name in names:
            value = state.env.get(name)
            if isinstance(value, Ref):
                wanted.add(value.key)
                if given:
                    # a term's value where its add reads it (a name the scores reuse later --
                    # GPT-NeoX's ``attn_scores = torch.baddbmm(attn_scores, ...)`` of zeros --
                    # holds the scores only after that step)
                    reader = next((n for n in state.matched if value.key in n.uses), None)
                    if reader is not None:
                        last = reader.id  # (one name per call: see _finish)
        if given and not _may_reach_steps(flow.nodes[first:last], matched, wanted):
            return True  # (no definition the term may read back to is a step: no size read to tell apart)
        own = None  # the values the match's steps define (computed when a read is followed)
        for node in reversed(flow.nodes[first:last]):
            if not wanted:
                break
            hit = node.defs & wanted
            if not hit:
                continue
            if node.id in matched:
                return False
            wanted -= hit
            if own is None:
                own = frozenset().union(*(n.defs for n in state.matched))
            reads = node.uses & own
            if given and cls is not None:
                if node.kind != "layer" and _unread_step(node, cls):
                    continue  # (what it takes of its inputs, the fixer reads)
                # a module the flow does not follow (another file's, a torch layer, one of a
                # list: ``s + self.gate(s)``) handed the scores' values may compute the term from
                # them, which SDPA's mask cannot be: its reads are followed like any step's
                # a size read of any value is no value read (a helper's ``w = s.view(...)``
                # read only for ``w.shape`` reads no value of s)
                lines = cls.module.lines
                wanted |= {key for key in node.uses if not _size_reads(node, key, lines)
                           and not _module_reads_sizes(node, key, cls)}
                continue
            if reads and cls is not None:
                reads = {key for key in reads if not _size_reads(node, key, cls.module.lines)
                         and not _module_reads_sizes(node, key, cls)}
                wanted |= (node.uses - own) | reads
            else:
                wanted |= node.uses
        return True

    # A pairwise product (queries with keys, or positions with positions): a factor built
    # from one has a value per query and key, which no operand of a fused call can carry.
    _PAIRWISE = frozenset({"torch.matmul", "torch.einsum", "einsum", "cdist", "outer", "ger", "baddbmm"})

    def _foldable(self, cls, flow: Flow, state: _State) -> bool:
        """Is every variable of ``[forward] foldable`` a factor a fused call can fold into q
        or k?  A number is, and so is what the caller passes (de-stationary attention's tau,
        ``[B, 1, 1, X]``: which axis it scales, the caller decides) or a module value whose
        shape is per head or per key (a learned temperature ``Parameter(ones(h, 1, 1))``, a
        float ``self.scale``).  Not: a module tensor of its own (query, key) shape
        (``Parameter(randn(n, n))``, _pair_shaped), nor a value the function computes through a
        pairwise product (``exp(-cdist(pos, pos))``, ``(q @ k^T).detach()``).  The value is
        followed back through the definitions before the step reading it, with the other
        steps of each statement it is written in (an operand's sub-expression is a step of
        the same statement, read by no key)."""
        bindings = cls.bindings if cls is not None else {}
        lines = cls.module.lines if cls is not None else []
        for name in self.foldable:
            value = state.env.get(name)
            if not isinstance(value, Ref):
                continue
            reader = next((n for n in state.matched if value.key in n.uses), None)
            end = reader.id if reader is not None else min(n.id for n in state.matched)
            if not self._folds(value.key, flow.nodes[:end], bindings, state.matched, lines):
                return False
        return True

    def _folds(self, key: str, before: list, bindings: dict, matched: list, lines: list[str]) -> bool:
        """Does the value ``key`` holds at the end of ``before`` fold (see _foldable)?  The
        match's own steps are not the factor's; a step written inside a step the factor is
        computed by (``torch.cdist`` inside ``-torch.cdist(...)``) is one of its steps.  A
        size read (``q.size(-1) ** -0.5``) is not followed: a size is no value per query and
        key.  A product with a module weight (``x @ self.w``) projects; it pairs nothing."""
        wanted = {_axes_added_base(key)}
        if _pair_shaped(next(iter(wanted)), bindings):
            return False
        own = {n.id for n in matched}
        spans = []  # the spans of the steps the factor is computed by
        for at in range(len(before) - 1, -1, -1):
            node = before[at]
            if node.id in own:
                continue
            hit = node.defs & wanted
            if not hit and (node.inlined or node.span is None or not any(_within(node.span, s) for s in spans)):
                continue
            if node.span is not None and not node.inlined:
                spans.append(node.span)
            wanted -= hit
            if node.kind == "method" and node.op in TENSOR_METADATA:
                continue  # q.size(-1), q.dim(): a size
            if (node.canon in self._PAIRWISE or node.op.rsplit(".", 1)[-1] in self._PAIRWISE) \
                    and not any(k.startswith("self.") or "|self." in k for k in node.uses):
                return False
            if _broadcast_pair(node, before, at):
                return False
            reads = {_axes_added_base(k) for k in node.uses if not _size_reads(node, k, lines)
                     and not (node.inlined and _meta_only(before, at, k))}
            if any(_pair_shaped(k, bindings) for k in reads):
                return False
            wanted |= reads
        return True

    def _uncentred(self, flow: Flow, state: _State) -> bool:
        """Does no variable of ``[forward] uncentred`` hold a value minus its own mean over the
        axes the match's mean reduces?  ``c = x - x.mean(-1, keepdim=True)`` then ``c /
        sqrt(c.pow(2).mean(-1) + eps)`` divides by the standard deviation: a layer norm without
        affine (moonshine_streaming's frame normalisation), not an RMS norm.  The value's
        definition is the last one before the match, on every path to it (its scope encloses the
        match's), a subtraction whose right operand is defined once, as the mean of the left
        operand's own name over the same axes.  Only the definitions are read (no tree walk)."""
        reduce = next((n for n in state.matched if n.canon == "torch.mean"), None)
        if reduce is None:
            return True
        axes = _mean_axes(reduce)
        if axes is None:
            return True
        nodes = flow.nodes
        first = min(n.id for n in state.matched)
        scope = nodes[first].scope
        for name in self.uncentred:
            value = state.env.get(name)
            if not isinstance(value, Ref):
                continue
            found = _definers(nodes, value.key, first)
            if not found:
                continue
            sub = found[-1]
            if sub.canon != "torch.sub" or len(sub.args) != 2 or scope[:len(sub.scope)] != sub.scope:
                continue
            base, mean = sub.args
            if not (isinstance(base, Ref) and isinstance(mean, Ref)):
                continue
            means = _definers(nodes, mean.key, sub.id)
            if len(means) != 1 or means[0].canon != "torch.mean":
                continue
            of = (means[0].view.args if means[0].view is not None else means[0].args)[:1]
            if of and isinstance(of[0], Ref) and of[0].key == base.key and _mean_axes(means[0]) == axes \
                    and not any(base.key in n.defs for n in nodes[means[0].id:sub.id]):
                return False
        return True

    def _computed(self, cls, flow: Flow, state: _State) -> bool:
        """Does no variable of ``[forward] computed`` hold a module weight -- a ``self``
        attribute ``__init__`` binds to an ``nn.Parameter`` -- read as it is or through layout
        steps (transpose, unsqueeze, view, ...)?  Scores ``x @ self.theta`` (or an einsum of a
        tensor with a weight) project one tensor: softmax-weighted pooling with learned queries
        (self-attentive embeddings, item-to-interest aggregation), which the attention kernel
        would only reach with the weight spread over the batch as a query, for no gain.  Keys
        and queries that layers compute from the weight (``self.to_q(self.latents)``) are
        computed."""
        bindings = cls.bindings if cls is not None else {}
        nodes = flow.nodes
        first = min(n.id for n in state.matched)
        for name in self.computed:
            value = state.env.get(name)
            key = value.key if isinstance(value, Ref) else None
            before, budget = first, 8
            while key is not None and budget > 0:
                budget -= 1
                key = _axes_added_base(key)
                if key.startswith("self.") and "." not in key[5:]:
                    if any(c.fqn.endswith("Parameter") for c in bindings.get(key[5:], ())):
                        return False
                    break
                found = _definers(nodes, key, before)
                if len(found) != 1:
                    break
                node = found[0]
                if node.kind in ("method", "call") and node.op.rsplit(".", 1)[-1] in self._LAYOUT \
                        and node.args and isinstance(node.args[0], Ref):
                    key, before = node.args[0].key, node.id
                elif node.kind == "copy" and len(node.uses) == 1:
                    key, before = next(iter(node.uses)), node.id
                else:
                    break
        return True

    def _one_query_sources(self, flow: Flow, state: _State) -> bool:
        """When the scores are an einsum matrix-vector product (one query per head written
        without a query axis, canon.einsum_vector: the scores node's view is squeezed), are the
        query and the keys computed from no common value of the function?  ProteinBERT's
        global vector scored against the local tokens is attention over one query; a query and
        keys both computed from one tensor (its tokens, each scored against a neighbourhood of
        keys gathered or built for it: ``einsum("b i d, b i j d -> b i j", q, k)``) give every
        query keys of its own, which SDPA only reaches with each query a batch of its own.
        The values each operand is computed from are read back through the flow's definitions
        (every definition before the use: more sources, more refusals); module attributes are
        shared by construction and not counted.  Too long a chain refuses."""
        scores = None
        for node in state.matched:
            if node.view is not None and node.view.squeezed and (scores is None or node.id < scores.id):
                scores = node
        if scores is None:
            return True
        nodes = flow.nodes
        sources = []
        for value in scores.view.args[:2]:
            if not isinstance(value, Ref):
                return False
            found: set = set()
            seen: set = set()
            stack = [(value.key, scores.id)]
            while stack:
                item = stack.pop()
                if item in seen:
                    continue
                seen.add(item)
                if len(seen) > 64:
                    return False
                key, before = item
                if key.startswith("self."):
                    continue
                definers = _definers(nodes, key, before)
                if not definers:
                    found.add(key)
                for node in definers:
                    stack.extend((used, node.id) for used in node.uses)
            sources.append(found)
        return not (sources[0] & sources[1])

    # Methods that rank values: their indices pick the top entries
    _RANKING = frozenset({"topk", "sort", "argsort", "argmax", "argmin", "kthvalue"})

    def _ranked_selection(self, flow: Flow, state: _State) -> bool:
        """Are the keys of ``[forward] computed`` (the scores' second operand) gathered per
        query by indices a ranking chose -- ``k.gather(dim, idx)`` (or ``index_select`` /
        ``take_along_dim``) with ``idx`` from a ``topk`` / ``sort`` of importance scores,
        native sparse attention's selected blocks, each query's own, the queries' axis a batch
        axis of the product between its rows and its keys?  Attention over top-k keys gathered
        per query is a sparse attention of its own (GUIDE: not a site); one gathered key set
        for every query is still attention (ITTR).  Read back through the flow's definitions as :meth:`_one_query_sources`
        does, from the keys to the selecting call, then from its index to a ranking; a long
        chain stops the walk (no refusal).  Cheap first tests: a product not written with its
        output axes moved (most), then a function with no selecting call."""
        scores = next((n for n in state.matched if n.canon == "torch.matmul"), None)
        moves = getattr(scores.view, "moves", None) if scores is not None else None
        if not (moves and moves[2] is not None):
            # the product written (queries, keys): one key set for every query (ITTR's keys
            # pruned per image, labelled a site); keys gathered per query carry the queries'
            # axis as a batch axis of the product, which the einsum writes between the rows
            # and the keys (native sparse attention's "b h qh i d, b h i j d -> b h qh i j")
            return False
        nodes = flow.nodes
        first = min(n.id for n in state.matched)
        if not any(n.kind in ("method", "call") and n.op.rsplit(".", 1)[-1] in SELECTING for n in nodes[:first]):
            return False
        value = state.env.get(self.computed[-1])
        if not isinstance(value, Ref):
            return False

        def reaches(keys, before, want) -> bool:
            seen: set = set()
            stack = [(k, before) for k in keys]
            while stack:
                item = stack.pop()
                if item in seen:
                    continue
                seen.add(item)
                if len(seen) > 64:
                    return False
                key, at = item
                for node in _definers(nodes, key, at):
                    if want(node):
                        return True
                    if node.kind == "other" and node.span is not None:
                        # ``importance.topk(k).indices``: the call is a node of its own, just
                        # before the statement's, its span inside the statement's
                        pos = node.id - 1
                        while pos >= 0 and nodes[pos].span is not None and _within(nodes[pos].span, node.span):
                            if want(nodes[pos]):
                                return True
                            pos -= 1
                    stack.extend((used, node.id) for used in node.uses)
            return False

        def ranked(node) -> bool:
            return node.kind in ("method", "call") and node.op.rsplit(".", 1)[-1] in self._RANKING

        def selected(node) -> bool:
            if not (node.kind in ("method", "call") and node.op.rsplit(".", 1)[-1] in SELECTING):
                return False
            index = [a.key for a in node.args[1:] if isinstance(a, Ref)]
            return bool(index) and reaches(index, node.id, ranked)

        return reaches([value.key], first, selected)

    # What a loss target may go through and still be the ids it selects from: the receiver
    # (first argument) of these methods is the value they select, fill or copy.
    _SELECTIONS = frozenset({"masked_fill", "masked_fill_", "clone", "detach", "contiguous", "long", "view",
                             "reshape", "flatten", "to", "__getitem__"})

    def _shifted_target(self, cls: ClassStructure, flow: Flow, state: _State) -> bool:
        """Is the loss target ``$t`` the complementary shift of the logits' positions
        (``labels[:, 1:]`` beside ``logits[:, :-1]``: the slice ``$s`` of the head's logits and
        the target's slice take the same leading axes, ``:-k`` of one where the other has
        ``k:``, whole where the other is whole), through copies and flattening views only?  The
        causal LM's next-token target: axis 1 holds the positions, so the logits' last axis is
        past it and stays whole.  (Of 2-D logits the slice would cut the classes, and the
        flattened logits would have a row per sequence against a target per position: no
        cross-entropy but for two-token sequences.)

        The next-token target makes any Linear's classes the sequence's tokens where the
        sequence model is a module this forward hands its inputs to (a language model another
        file builds), unless the class shows otherwise: it embeds tokens with an embedding the
        head is not typed against (a Linear to ``num_labels`` beside ``nn.Embedding(vocab_size,
        d)``: the tokens have another size than the head's classes), or the head's input is
        computed here from a Linear's output (``h = self.embed(x)`` a Linear: the sequence's
        elements are features the file projects, nothing says they are tokens)."""
        slices, t = flow.slices, state.env.get("t")
        if not slices or not isinstance(t, Ref):
            return False
        head = state.matched[0]
        if head.kind == "layer" and LM_HEAD not in head.types and (
                _embeds(cls) or _projected_inputs(flow, state.env.get("h"), head.id)):
            return False
        cut = next((n for n in state.matched if n.canon == "canon.lead2" or n.canon == "canon.rows"), None)
        mine = slices.get(cut.span) if cut is not None else None
        if mine is None:
            return False
        if cut.canon == "canon.rows":
            # logits[..., :-1, :]: the rows of the positions, the class axis whole; the target has
            # no class axis, so its slice is the same without that last element
            if not mine.endswith(",:"):
                return False
            mine = mine[:-2]
        nodes, key, before = flow.nodes, t.key, max(n.id for n in state.matched)
        for _ in range(8):
            # of the target's definitions, those on the logits' slice's own arm of each if
            # (``shift_labels`` masked in one arm, shifted plainly in the other, beside the
            # logits': the match reads the arm it took)
            found = _last_reaching([n for n in _definers(nodes, key, before) if _same_arms(n.scope, cut.scope)],
                                   state.matched[-1].scope)
            if len(found) != 1 or not found[0].args or not isinstance(found[0].args[0], Ref):
                return False
            node = found[0]
            if node.kind == "copy":
                # ``labels[..., 1:]``: a slice the flow keeps as an expression of its own
                theirs = _slice_text(node.args[0].key)
                return theirs is not None and _complementary(mine, theirs)
            if node.kind != "method":
                return False
            if node.op == "__getitem__":
                theirs = slices.get(node.span)
                if theirs is None or not _complementary(mine, theirs):
                    return False
                break
            if node.op not in ("contiguous", "view", "reshape", "flatten", "clone", "long", "to"):
                return False
            key, before = node.args[0].key, node.id
        else:
            return False
        if not _rows_of_the_head_width(cls, flow, state):
            return False
        return self.predicts_input == "shift" or not any(
            n.kind == "layer" and "torch.nn.Embedding" in n.types for n in nodes)

    def _predicts_input(self, flow: Flow, state: _State) -> bool:
        """Is the loss target ``$t`` a selection of a forward argument that the head's input
        ``$h`` is computed from (``labels = seq.masked_fill(~mask, pad)`` beside
        ``h = self.transformer(seq.clone()...)``; ``text[:, 1:]`` beside ``text[:, :-1]``)?
        Then the model predicts its own input ids: the classes are the tokens.  A target given
        as its own argument (``labels`` of a token classifier) is no selection of the input.
        The ids may be a value the forward computes rather than an argument (jukebox's prior:
        ``prime`` from ``self.get_cond(...)``, the head's input ``self.get_encoder_kv(prime)``,
        the loss over ``prime`` in a helper given both): the head's input must be computed from
        that very value (a target computed beside it from the same input, or from it by any
        step but a selection -- ``x.argmax(-1)`` --, is no such value)."""
        h, t = state.env.get("h"), state.env.get("t")
        if not (isinstance(h, Ref) and isinstance(t, Ref)):
            return False
        nodes = flow.nodes
        loss = max(n.id for n in state.matched)
        head = min(n.id for n in state.matched)

        sources: set = set()
        stack, budget = [(t.key, loss)], 50
        while stack:
            key, before = stack.pop()
            budget -= 1
            if budget < 0:
                return False
            found = _definers(nodes, key, before)
            if not found:
                if "@" in key or key.startswith(("%", "self")) or "|" in key:
                    return False
                sources.add(key)  # an argument of the root (nothing before defines it)
                continue
            for node in found:
                if (node.kind == "method" and node.op in self._SELECTIONS
                        or node.kind == "call" and node.op == "einops.rearrange") and node.args \
                        and isinstance(node.args[0], Ref):
                    # (einops.rearrange only moves, merges and splits axes: the same ids laid
                    # out anew, ``rearrange(ids[:, 1:], "b n -> (b n)")``, research112)
                    stack.append((node.args[0].key, node.id))
                elif node.kind in ("copy", "other") and len(node.uses) == 1 and node.op != "compare":
                    # (not ``ids > 0``: a comparison makes a mask of the ids, not the ids;
                    # research112's ``rearrange(ids > 0, ...).long()``)
                    stack.append((next(iter(node.uses)), node.id))
                else:
                    # a value the code computes (``x_cond, prime = self.get_cond(y)``): the
                    # ids are that value, whose selection the target is
                    sources.add(key)
        if not sources:
            return False
        seen, stack, budget = {h.key}, [(h.key, head)], 400
        while stack:
            key, before = stack.pop()
            if key in sources:
                return True
            for node in _definers(nodes, key, before):
                budget -= 1
                if budget < 0:
                    return False
                for used in node.uses:
                    if used not in seen:
                        seen.add(used)
                        stack.append((used, node.id))
        return False

    def _role(self, index: int) -> str:
        outs = [o.name for o in self.forward.nodes[index].outs if isinstance(o, Var)]
        return outs[0] if outs else f"%{index}"

    def _intermediates(self, state: _State) -> set[str]:
        """Keys produced by a pattern node and consumed by a later one."""
        keys: set[str] = set()
        pattern = self.forward.nodes
        for index, node in zip(state.steps, state.matched):
            pnode = pattern[index]
            later_uses = self.later_uses[index]
            if Temp(index) in later_uses:
                keys.update(o.key for o in node.outs)
            else:  # of a tuple of outputs, those a later step reads (``$l, _ = f(x)``: the first)
                keys.update(o.key for p, o in zip(pnode.outs, node.outs) if isinstance(p, Var) and p in later_uses)
        return keys

    def _live_keys(self, state: _State) -> set[str]:
        """The names under which intermediate values may still be read after the match: their
        own (unless the last step reassigns them) and every alias the code made of them
        (``residual = hidden_states`` keeps the sum alive after ``hidden_states = ln(...)``)."""
        keys = {state.canon(k) for k in self._intermediates(state)}
        last_defs = state.matched[-1].defs
        return (keys - last_defs) | {k for k, v in state.aliases.items() if v in keys and k not in last_defs}

    def _after(self, flow: Flow, state: _State, step, live: set | None = None) -> bool:
        """Walk every path after the match carrying the intermediate keys still live there
        (``live`` when given).  ``step(node, live)`` returns True to end the walk with a hit, else
        the keys live after the node (none: the path ends).  True when some step hit."""
        if live is None:
            live = self._live_keys(state)
        if not live:
            return False
        out, nodes = flow.out, flow.nodes
        stack = [(s, frozenset(live)) for s, _ in out[state.matched[-1].id]]
        seen = set()
        while stack:
            pos, live = stack.pop()
            if (pos, live) in seen:
                continue
            seen.add((pos, live))
            after = step(nodes[pos], live)
            if after is True:
                return True
            if after:
                stack.extend((s, frozenset(after)) for s, _ in out[pos])
        return False

    def _dead_after(self, flow: Flow, state: _State) -> bool:
        """No code after the match reads an intermediate value, on any path."""

        containers = self._first_of(state)

        def step(node, live):
            if node.rest and containers and node.uses & live <= containers:
                # ``attn_outputs[1:]`` of a module whose first output the match took
                # (canon.first): its other outputs, not that value
                return live - node.defs
            read = node.uses & live
            if read and _metadata_only(node, read):
                # ``(act(gate.float()) * up.float()).to(gate.dtype)``: the dtype of the gate,
                # which the fused code's operands share, not its values
                return live - node.defs
            if read or (node.kind == "copy" and _keys(node.args) & live):
                return True
            return live - node.defs

        return not self._after(flow, state, step)

    def _first_of(self, state: _State) -> frozenset:
        """The keys of the values whose first element a step of the match takes (canon.first)."""
        if not any(n.canon == "canon.first" for n in state.matched):
            return frozenset()
        return frozenset(state.canon(v.key) for n in state.matched if n.canon == "canon.first"
                         for v in n.args if v.__class__ is Ref)

    def _computed_on(self, flow: Flow, state: _State, names=None) -> bool:
        """Does code after the match compute with an intermediate value on every path (an
        entropy of the probabilities, a second product)?  Then no rewrite can drop them: not a
        site.  Reads that only pass values on (returned, put in a tuple or one of the file's
        record types) or that sit behind a branch keep the site (the rewrite guards them)."""

        stopped = []  # (the first walk ended a path at a branch with values still live)

        def step(node, live, through=False):
            if node.kind == "branch":
                # the first walk ends a path at a branch; the second goes through it
                if through:
                    return live - node.defs
                stopped.append(True)
                return None
            reads = node.uses & live or (node.kind == "copy" and _keys(node.args) & live)
            passed = reads and (node.kind == "method" and (
                node.op in RESHAPING or node.op in PASS_THROUGH or node.op in AVERAGING)
                or node.kind == "call" and node.op in _AVERAGING_CALLS and _first_only(node, live))
            if reads and node.kind in ("call", "method", "op", "layer") and not passed \
                    and not _stored(node, live, flow.classes) \
                    and not ((node.op[:1] == "?" or flow.classes and node.op in flow.classes)
                             and _in_record(node, live, flow.classes, names)):
                return True
            after = live - node.defs
            if reads and (node.kind == "copy" or passed):
                # an alias of the value (not a tuple holding it), a copy or cast of it, or its
                # elements in another shape (``probs = probs.view(b, h, n, m)`` then returned):
                # what is computed with that later still counts (NEZHA's probabilities
                # permuted, made contiguous, viewed and multiplied by position values); their
                # average over the heads (``probs.mean(dim=1)``) likewise
                after = after | {o.key for o in node.outs}
            return after

        live = self._live_keys(state)
        if self._second_product_between(flow, state, live):
            return True
        if self._after(flow, state, step, live | self._derived_between(flow, state, live)):
            return True
        # the match's own values (not those derived from them between its steps: lilt's text
        # scores take the layout scores as a bias before the layout softmax, and the text
        # attention after it reads that sum, not the layout attention's scores), walked past
        # branches only where the first walk reached one with values live (else every path
        # ended, or its values died, before any branch: no read after)
        return bool(stopped) and _on_every_path(flow, state.matched[-1].id, step, live)

    def _second_product_between(self, flow: Flow, state: _State, keys: set[str]) -> bool:
        """Is an intermediate value multiplied, between the steps of the match, by a product the
        match does not hold, on every path to its last step (the probabilities of a dual-aspect
        attention, ``attn1 @ v_node`` then ``attn1 @ v_pos``, the match taking the second)?
        That product computes with the probabilities as the one after the match would: no
        rewrite can drop them.  Nodes between the first step's id and the last's only."""
        matched = state.matched
        if len(matched) < 2 or not keys:
            return False
        nodes, last = flow.nodes, matched[-1]
        ids = None
        for pos in range(matched[0].id + 1, last.id):
            node = nodes[pos]
            if node.canon != "torch.matmul" or not node.uses & keys:
                continue
            if ids is None:
                ids = {n.id for n in matched}
            if pos in ids or last.scope[:len(node.scope)] != node.scope:
                continue  # a step of the match, or a product under a branch the last step is not
            return True
        return False

    def _derived_between(self, flow: Flow, state: _State, keys: set[str]) -> set[str]:
        """Values computed between the steps of the match from an intermediate one by code the
        match does not hold, that no step reads: ``lse = torch.logsumexp(scores, -1)`` before
        the softmax, its ``sigmoid(lse - sink)`` scaling the attention's output (an attention
        sink applied after the product).  Code after the match computing with them computes
        with the intermediate: :meth:`_computed_on` follows them as it follows the
        intermediates.  A read of the value's shape alone (``scores.size(-1)``) derives
        nothing; nodes whose result a step reads (a max subtracted before the exponential)
        are the chain's own.  ``keys``: the intermediates' (:meth:`_live_keys`).  The nodes are
        those whose ids lie between the first step's and the last's (edges go from lower to
        higher ids), read with operators only: most matches have none that reads the keys."""
        matched = state.matched
        derived: set[str] = set()
        if len(matched) < 2 or not keys:
            return derived
        nodes, reading, ids, steps_read = flow.nodes, keys, None, None
        for pos in range(matched[0].id + 1, matched[-1].id):
            node = nodes[pos]
            if not (node.uses & reading) or node.kind not in _COMPUTING or not node.outs \
                    or (node.kind == "method" and node.op in TENSOR_METADATA):
                continue
            if ids is None:
                ids = {n.id for n in matched}
                steps_read = set().union(*(n.uses for n in matched))
            if pos in ids or node.defs & keys or not _same_arms(node.scope, matched[-1].scope):
                continue  # (a node in another arm of an if than the last step: not on the match's path)
            outs = {o.key for o in node.outs}
            if not outs & steps_read:
                derived |= outs
                reading = keys | derived
        return derived

    def _match_init(self, cls: ClassStructure, state: _State) -> list | None:
        if not self.init:
            return []
        if not self.layer_vars:
            # A forward alternative that calls no pattern layer (a step the table canonicalises,
            # canon.tied_logits): the rule's init patterns say what the others' layers are.
            return []
        for alternative in self.init:
            result = self._match_init_alternative(cls, alternative, state)
            if result is not None:
                return result
        return None

    def _match_init_alternative(self, cls: ClassStructure, pattern: Pattern, state: _State):
        attempt = state.copy()
        chosen: list[tuple[str, Ctor]] = []
        for pnode in pattern.nodes:
            if len(pnode.outs) != 1 or not isinstance(pnode.outs[0], Var):
                return None
            var = pnode.outs[0].name
            layer = attempt.env.get(var)
            if layer is None and var in self.optional_layers:
                continue  # the optional step calling this layer is absent
            if attempt.values.get(var, ("",))[0] == "f":
                continue  # a function call (F.gelu): its operation is known, no constructor
            if not isinstance(layer, str):
                return None  # the forward match did not bind this layer
            attr = layer[len("self."):] if layer.startswith("self.") else layer
            for ctor in cls.bindings.get(attr, []):
                if self.direct_layers and (ctor.via or ctor.conditional):
                    continue
                trial = attempt.copy()
                if self._bind_ctor(pnode, ctor, trial):
                    attempt = trial
                    chosen.append((var, ctor))
                    break
            else:
                return None
        if _one_of_many_with_one(attempt.env[var] for var, _ in chosen) and _one_of_many_with_one(
                attempt.env[var] for var, ctor in chosen
                if not (_parameter_free(ctor) and not _picked(attempt.env[var]))):
            # (a parameter-free layer is left out only as the single one: one activation after
            # each listed Linear; an activation *picked* among many members by a key the code
            # does not pin down, ``self.mlp[self.kind]``, is any of them: test_module_dict_members)
            return None
        state.env.update(attempt.env)
        return chosen

    def _bind_ctor(self, pnode: PNode, ctor: Ctor, state: _State) -> bool:
        op = TABLE.canonical(pnode.op) if self.spellings == "canonical" and pnode.op != "table" else None
        if pnode.op == "table":
            if not ctor.table or not names_match(pnode.method, ctor.fqn):
                return False
        elif op is not None and not names_match(pnode.op, ctor.fqn):
            # Any constructor of a layer computing the operation (nn.GELU(), ACT2FN["gelu"], or
            # ACT2FN[config.hidden_act], which may be a GELU at run time); another class's
            # arguments cannot be compared with the pattern's, so only (...) fits.
            definite, maybe = TABLE.layer_ops([ctor])
            if not (definite == op.name or op.name in maybe):
                return False
            return not pnode.args and not pnode.kwargs
        elif ctor.table and not ctor.fqn.endswith("get_activation"):
            return False
        elif not names_match(pnode.op, ctor.fqn):
            return False
        args = [_ast_value(a) for a in ctor.args]
        if len(args) < len(pnode.args) or (len(args) > len(pnode.args) and not pnode.rest):
            return False
        for pvalue, value in zip(pnode.args, args):
            if not self._bind(pvalue, value, state):
                return False
        code_kwargs = {k: _ast_value(v) for k, v in ctor.kwargs}
        for name, pvalue in pnode.kwargs:
            if name not in code_kwargs or not self._bind(pvalue, code_kwargs[name], state):
                return False
        for name, literal in pnode.refused:
            # nn.BatchNorm1d(c, track_running_stats=False): batch statistics in eval too
            if name in code_kwargs and _literal_is(literal, code_kwargs[name]):
                return False
        return _keywords_fit(pnode, code_kwargs.keys())


def _cross_mixed(one: frozenset, other: frozenset) -> bool:
    """Do two operands of an elementwise product, each computed from two or more steps, hold
    three steps between them with neither inside the other?  Point Transformer's vector
    attention multiplies ``(v + pos)`` by weights computed from ``k - q + pos``, where the
    positions come out of the call that groups the keys (``p_r, x_k = grouped[..., :3],
    grouped[..., 3:]``): the value side then carries the key's step too, yet the product
    still applies what q and k computed to v.  Two operands made of the same steps (``(a + b) *
    (a + b)``) or one holding the other's (OWL-ViT's ``(logits + shift) * scale``) are no such
    meeting."""
    return len(one | other) >= 3 and not one <= other and not other <= one


# Matcher._outputs_meet: the calls and methods that cut one tensor into pieces along an axis
_SPLITS = frozenset({"torch.split", "split", "torch.chunk", "chunk", "torch.tensor_split", "tensor_split",
                     "torch.unbind", "unbind"})


def _maps_display(node: Node, displays: set) -> bool:
    """Is ``node`` the builtin ``map`` over a tuple whose elements are the steps' outputs, one
    each (``q, k, v = map(self.norm, (self.proj_q(x), self.proj_k(x), self.proj_v(x)))``:
    LongNet's qk-norm)?  ``map`` applies its function to each element alone, so each name it
    binds holds one step's output, as if the elements had been named first (Matcher._outputs_meet
    then splits the names one step each)."""
    args = node.args
    return node.op == "?map" and len(args) == 2 and args[1].__class__ is Ref and args[1].key in displays


def _written_receiver(node: Node):
    """The name an in-place tensor method writes into (Matcher._outputs_meet): torch names
    in-place methods with a trailing underscore (``index_add_``, ``scatter_add_``, ``copy_``), and
    such a method's receiver then holds values computed from the method's operands, whatever
    the call returns; None for any other node or a receiver that is not a plain name."""
    if node.kind != "method" or node.op[-1:] != "_" or node.op[:1] == "_" or not node.args:
        return None
    receiver = node.args[0]
    if receiver.__class__ is not Ref or not receiver.key.isidentifier():
        return None
    return receiver.key


def _splits_steps(node: Node, again: set) -> bool:
    """Does ``node`` cut one value that concatenates the steps' outputs back into as many pieces
    (Matcher._outputs_meet's caller checks the count)?  ``torch.cat([q_proj(x), k_proj(x),
    v_proj(x)])`` run through a per-channel short convolution, then ``q, k, v = torch.split(m,
    [dk, dk, dv], dim=-1)`` (gated delta nets): each piece is one step's channels, so the pieces
    handed together to the delta-rule helper meet as the steps' outputs would.  Not a value a
    Linear projected again (its pieces mix every step's channels)."""
    return node.op in _SPLITS and again.isdisjoint(node.uses)


def _one_of_many_with_one(layers) -> bool:
    """Whether the matched layers mix an element of a layer list (``self.bns[i]``, one of many
    instances picked per call) with a single layer (``self.conv``): the fused computation would
    then pair one instance with each of many (a Conv2d shared by several BatchNorms cannot fold
    into one of them), so the pattern's layers are not one fusible group."""
    kinds = {_picked(layer) for layer in layers}
    return len(kinds) == 2


def _picked(layer) -> bool:
    """Is the matched layer one of many instances picked per call (``self.bns[i]``)?"""
    return isinstance(layer, str) and layer.endswith("[]")


def _parameter_free(ctor: Ctor) -> bool:
    """Is the layer ``ctor`` builds an activation, or one of the activations a run-time key may
    choose (``nn.GELU()``, ``ACT2CLS[act]()``, ``ACT2FN[config.hidden_act]``)?  It holds no
    parameters, so one instance applied after each member of a layer list (``for layer in
    self.layers: x = self.act(layer(x))``) pairs with each as a fresh one would: unlike a
    BatchNorm shared by many convolutions, nothing of it is folded into a member
    (:func:`_one_of_many_with_one` does not count it)."""
    definite, maybe = TABLE.layer_ops([ctor])
    chosen = {definite} | maybe if definite else maybe
    # (a run-time key's candidates are the table's ``runtime`` operations, the loss among them)
    return chosen <= TABLE.runtime and not chosen <= _LOSS


_LOSS = frozenset({"torch.nn.functional.cross_entropy"})


def _first_candidates(module: ModuleStructure, key: tuple, file_scope: bool) -> list[str]:
    """The names of the classes of ``module``, in its order, some root of which (in the scope)
    mentions a word of the group of ``key``: the classes :meth:`Matcher._candidate_roots` may
    keep for a matcher whose first key this is.

    For an operation's key and a layer's (most first keys), the group is the file's spellings
    of the operations (one set per file) and the class's layer attributes: tested as such --
    the file's words against the roots' words, then the operations the roots name a layer of,
    then the layers bound to the constructors (only where the roots name a layer whose
    constructor has the last name component of one: :func:`names_match` needs it) -- instead of
    the union :func:`_word_group` makes per class and key, which most classes then fail (the
    same answer: a union meets the words exactly when one of its parts does)."""
    classes = module.classes
    kind = key[0]
    if kind != "op" and kind != "layer":
        return [name for name, cls in classes.items()
                if (cls.all_roots if file_scope else cls.roots)  # (most classes of a file have none)
                and _mentions_group(cls, module, key, file_scope)]
    ops = (key[1],) if kind == "op" else key[2]
    spellings = [module.op_words(op) for op in ops]
    lasts = None
    found = []
    for entry in _rooted(module, file_scope):
        name, words, named, bound = entry
        spelled = False
        for spelling in spellings:  # (one set, or none: no generator per class)
            if not spelling.isdisjoint(words):
                spelled = True
                break
        if spelled:
            found.append(name)
            continue
        if named is None:
            named = entry[2] = classes[name].layer_ops_named(words)
        if named and not named.isdisjoint(ops):
            found.append(name)
            continue
        if kind == "layer":
            if bound is None:
                bound = entry[3] = _named_constructors(classes[name], words)
            if lasts is None:
                lasts = _last_parts(key[1])
            if not bound.isdisjoint(lasts) and not classes[name].bound_to(key[1]).isdisjoint(words):
                found.append(name)
    return found


def _rooted(module: ModuleStructure, file_scope: bool) -> list[list]:
    """``module.rooted[file_scope]``, made on first use: per class with roots in the scope,
    [name, every word some root mentions, None, None] (its matcher caches keep the roots' own
    words for :meth:`Matcher._candidate_roots`)."""
    rooted = module.rooted.get(file_scope)
    if rooted is None:
        rooted = module.rooted[file_scope] = []
        for name, cls in module.classes.items():
            roots = cls.all_roots if file_scope else cls.roots
            if not roots:
                continue
            cache = cls.__dict__.get("_match_words")
            if cache is None:
                cache = cls._match_words = ({}, {}, {})
            pairs = cache[2].get(file_scope)
            if pairs is None:
                pairs = cache[2][file_scope] = [(r, cls.words(r)) for r in roots]
            words = pairs[0][1] if len(pairs) == 1 else frozenset().union(*(w for _, w in pairs))
            rooted.append([name, words, None, None])
    return rooted


def _named_constructors(cls: ClassStructure, words: frozenset) -> frozenset[str]:
    """The last name components of the constructors of the layers bound to attributes that
    ``words`` name (:func:`attr_words`): a layer key's constructors none of which has one of
    these are bound to no attribute the words name."""
    return frozenset(ctor.fqn.rsplit(".", 1)[-1] for attr, ctors in cls.bindings.items()
                     if not words.isdisjoint(attr_words(attr)) for ctor in ctors)


def _last_parts(constructors: frozenset) -> frozenset[str]:
    """The last name components of ``constructors``, once per set in the process."""
    lasts = _CTOR_LASTS.get(constructors)
    if lasts is None:
        lasts = _CTOR_LASTS[constructors] = frozenset(c.rsplit(".", 1)[-1] for c in constructors)
    return lasts


_CTOR_LASTS: dict[frozenset, frozenset] = {}


def _mentions_group(cls: ClassStructure, module: ModuleStructure, key: tuple, file_scope: bool) -> bool:
    """Does some root of ``cls`` in the scope mention a word of the group of ``key``: the first
    test :meth:`Matcher._candidate_roots` makes when ``key`` is its first (its caches shared)."""
    cache = cls.__dict__.get("_match_words")
    if cache is None:
        cache = cls._match_words = ({}, {}, {})
    pairs = cache[2].get(file_scope)
    if pairs is None:
        pairs = cache[2][file_scope] = [(r, cls.words(r)) for r in (cls.all_roots if file_scope else cls.roots)]
    groups = cache[1]
    group = groups.get(key)
    if group is None:
        group = _word_group(cls, module, key, groups)
    if len(pairs) == 1:  # (most classes: one root)
        return not group.isdisjoint(pairs[0][1])
    return any(not group.isdisjoint(words) for _, words in pairs)


def _word_group(cls: ClassStructure, module: ModuleStructure, key: tuple, cache: dict) -> frozenset:
    """The words one of which a root of ``cls`` must mention, for a key of
    :meth:`Matcher._word_keys` (cached per class with the roots)."""
    group = cache.get(key)
    if group is not None:
        return group
    kind = key[0]
    if kind == "word":
        group = frozenset({key[1]})
    elif kind == "words":
        group = frozenset(key[1])
    elif kind == "sizes":
        # (plain loops over the bindings: every class whose roots reach this key asks, and most
        # bind neither layer)
        norm = linear = False
        info = cls.info
        if info is not None:
            bindings = info.bindings
            for attr in bindings:
                for ctor in bindings[attr]:
                    if ctor.fqn == _BATCHNORM1D:
                        norm = True
                    elif ctor.fqn == _LINEAR:
                        linear = True
        groups = _SIZE_GROUPS.get(key[1])  # (made once per spelling: the call only the first time)
        group = (groups if groups is not None else _size_groups(key[1]))[norm and linear]
    elif kind == "calls":
        group = module.call_names(key[1])
    elif kind == "op":
        group = cls.op_words(key[1])
    elif kind == "layer":
        group = cls.bound_to(key[1])
        for op in key[2]:
            group = group | cls.op_words(op)
    elif kind == "negpair":
        # a rotate-half is read off a concatenation whose first argument starts with a negated
        # element (the NEG_PAIR pseudo-word of structure.model), or is computed by a layer or
        # another spelling of the operation: the other words of key[1] (a root that mentions
        # `cat` for anything else then has no graph built for these patterns)
        group = (cls.op_words(key[1]) - ROTATE_HALF_CALLS) | cls.op_attrs(key[1]) | {NEG_PAIR}
    elif kind == "halfpair":
        # the same for a rotation written per half: a concatenation of a tuple or list in a
        # function that takes the halves of a last axis (the HALF_PAIR pseudo-word)
        group = (cls.op_words(key[1]) - ROTATE_HALF_CALLS) | cls.op_attrs(key[1]) | {HALF_PAIR}
    else:  # "callbound": a function call, or a layer bound to that class
        group = module.call_names(key[1]) | cls.bound_to(frozenset({key[1]}))
    cache[key] = group
    return group


def _size_groups(methods: tuple[str, ...]) -> tuple[frozenset, frozenset]:
    """The word groups of a ``size`` step spelled ``methods``, (in most classes, in a class that
    binds both an ``nn.BatchNorm1d`` and an ``nn.Linear``), made once per spelling.

    An ``x.size(-1)`` in a flow is written ``x.size``, ``x.shape[-1]`` (graph._shape_as_size,
    and ``B, T, C = x.shape`` before ``x.view(B * T, C)``: graph._unpacked_rows), or is read
    off a view whose code names no size: ``x.flatten(0, -2)`` is ``x.reshape(-1, x.size(-1))``
    (graph._flatten_to_rows: the word ``flatten``), and ``self.bn(h.view(-1, W))`` with
    ``self.bn`` a BatchNorm1d and h an ``nn.Linear`` attribute's output of width W is
    ``h.view(-1, h.size(-1))`` (graph.FlowBuilder._linear_rows: the word ``view`` or
    ``reshape``, in a class binding both layers).  Views count only there, so the flows of
    other classes that view something but never name a size do not reach the ADP008 and
    ADP015 searches.  (``flatten`` on its own lets through no root the views did not: every
    size step of the rules is the size of a view step, whose own group is the views.)"""
    groups = _SIZE_GROUPS.get(methods)
    if groups is None:
        narrow = frozenset((*methods, "shape", "flatten"))
        groups = _SIZE_GROUPS[methods] = (narrow, narrow | _ROWS_VIEWS)
    return groups


# size step spellings -> (its word group in most classes, in a class binding a BatchNorm1d and
# a Linear): _size_groups
_SIZE_GROUPS: dict[tuple[str, ...], tuple[frozenset, frozenset]] = {}
_ROWS_VIEWS = frozenset(("view", "reshape"))
_BATCHNORM1D, _LINEAR = "torch.nn.BatchNorm1d", "torch.nn.Linear"
_OPERATORS = frozenset({"+", "-", "*", "/", "@", "//", "%", "**", "neg"})

# Matcher.word_order: the word-group kinds that depend on no class first.
_KEY_COST = {"word": 0, "words": 0, "sizes": 0, "calls": 1, "op": 2}
# A pattern step -> the first equal step a matcher was made with (Matcher._static_keys); its repr
# in the key too: Lit(1) == Lit(True) == Lit(1.0), which _literal_is tells apart.
_STEPS: dict[tuple[str, PNode], PNode] = {}
# Matcher._feasibility's signatures (every step after the first: static key, optional) -> a
# number, the same for equal signatures in the process
_FEASIBILITY_KEYS: dict[tuple, int] = {}
_UNKNOWN = object()  # (a cache entry may be None: the flow cannot match)
_ANY = Var("")  # _static_form's stand-in for every variable and earlier step's output


def _static_form(pnode: PNode) -> PNode:
    """The step as :meth:`Matcher._static_ok` (and the node lists keyed with it: the starts,
    :meth:`Matcher._readers`) reads it: every variable and temporary argument one stand-in
    (those tests tell a literal from any other value, never one name from another), the
    outputs and the source position gone, the layer variable's name too (what the tests read
    of it, its constructors and operations, is in the key beside the step).  So steps that
    differ only in their names -- ``$gs = $g * $s`` and ``$m = $a * $u`` in two alternatives
    of a rule -- test a flow's nodes once; so do a step and its optional copy (``? $b0 = $s0 +
    $bias0`` and ``$b0 = $sp + $bias0``: the tests do not read whether it may be absent)."""
    def plain(value):
        return _ANY if type(value) is Var or type(value) is Temp else value
    return replace(pnode, args=tuple(map(plain, pnode.args)),
                   kwargs=tuple((name, plain(value)) for name, value in pnode.kwargs),
                   layer=_ANY if pnode.layer is not None else None, outs=(), line=0, column=0, optional=False)
# (scope, word keys) -> a small number: the key of a class's candidate-roots cache (hashing the
# nested tuple for every class of every file cost more than the look-up).
_ROOTS_KEYS: dict[tuple, int] = {}
# (scope, key) of the first word group of every matcher made so far (_shared_first).
_FIRST_GROUPS: set[tuple] = set()


def _shared_first(scope: str, order: tuple) -> tuple:
    """``order`` (word keys, cheapest kind first) with, among the canonical-operation keys
    tied for first, one that an earlier matcher already starts with moved to the front.  A
    first group is listed once per file and scope for every matcher starting with it
    (module.first_candidates: one test of every class of the file); a new one costs that
    scan again (an nll_loss pattern starting with log_softmax where another starts with
    transpose).  The order only says which group is tested first: a root must mention every
    group, so the roots kept, and the matches, are the same."""
    if order and order[0][0] == "op" and (scope, order[0]) not in _FIRST_GROUPS:
        for key in order[1:]:
            if key[0] != "op":
                break
            if (scope, key) in _FIRST_GROUPS:
                order = (key, *(k for k in order if k != key))
                break
    if order:
        _FIRST_GROUPS.add((scope, order[0]))
    return order


def _whole_layouts(layouts: dict, matched) -> bool:
    """Does every matched softmax whose dim is read in an einsum product's layout
    (structure/layouts.py) come with that product in the match?"""
    ids = {n.id for n in matched}
    return all(layouts[i] in ids for i in ids if i in layouts)


def _node_id(node: Node) -> int:
    return node.id


_CANONICAL_KINDS = ("call", "layer", "method", "op")  # Matcher._kinds of a canonical step


class _FlowIndex:
    """A flow's nodes grouped (each group in id order) by kind, by (kind, op), by canonical
    operation and by each operation a layer may compute at run time; built once per flow."""

    __slots__ = ("kinds", "ops", "canon", "maybe", "_merged", "static", "_computing")

    def __init__(self, flow: Flow):
        self.kinds: dict[str, list[Node]] = {}
        self.ops: dict[tuple[str, str], list[Node]] = {}
        self.canon: dict[str, list[Node]] = {}
        self.maybe: dict[str, list[Node]] = {}
        self._merged: dict[tuple, list[Node]] = {}
        self.static: dict[tuple, tuple] = {}  # Matcher._static_ids
        self._computing: dict[str, list[Node]] = {}
        for node in flow.nodes:
            self.kinds.setdefault(node.kind, []).append(node)
            if node.kind in ("method", "op"):
                self.ops.setdefault((node.kind, node.op), []).append(node)
            if node.canon:
                self.canon.setdefault(node.canon, []).append(node)
            for op in node.maybe:
                self.maybe.setdefault(op, []).append(node)

    def computing(self, op: str) -> list[Node]:
        """The call, layer, method and op nodes that compute the canonical operation ``op`` (or
        may, at run time), kind by kind in that order, each kind's in id order: where
        ``Matcher.match_flow`` starts a canonical first step (``_kinds``, ``_op_ok``)."""
        found = self._computing.get(op)
        if found is None:
            found = self._computing[op] = [node for kind in _CANONICAL_KINDS for node in self.kinds.get(kind, ())
                                           if computes(op, node)]
        return found

    def merged(self, kinds: tuple[str, ...]) -> list[Node]:
        found = self._merged.get(kinds)
        if found is None:
            found = self._merged[kinds] = sorted((n for k in kinds for n in self.kinds.get(k, ())), key=_node_id)
        return found


def _guards_tested(flow: Flow) -> dict[str, int]:
    """Per ``if`` test text on the flow's edges, the largest id of a node with an out-edge
    guarded by it; made once per flow.

    The search records the way a state took each guarded edge (``_State.guards``) for two
    readers only: a later edge guarded by the same test (a state that took ``if mask is not
    None:`` one way never takes the other way at a second ``if`` on the same test), and, for a
    rule with ``setting_paths``, ``_finish``'s :func:`_excluded_by_setting`, which reads the
    entries whose text is a test of the module's settings (:func:`_setting_test`).  Edges go
    from lower to higher node ids, so once a state walks onto node ``succ`` past the last
    node whose edges ask a test, no later edge asks it: recording that test can change no
    answer of the first reader, only the states' memos -- and two states that differ only in
    such entries then explore the same nodes with the same bindings, the second finding again
    what the first found (a match already kept, or ``_finish``'s same answer).  Not recording
    the entry lets ``_first_visit`` meet the second as the first: the ways through a run of
    ``if``s that rejoin (T5's position-bias branches between its scores and its softmax, each
    way a copy of the state) are walked once past the join instead of once per way.  For a
    ``setting_paths`` rule every test that mentions ``self`` is still recorded: a settings
    test reads only ``self.<attr>`` (``_setting_test`` is False without one), and asking
    ``_setting_test`` itself walks every method of the class.

    Two ways that bound *different* nodes to the same values (an arm each with its own
    softmax into the same name) meet at the join with equal bindings and, the test unrecorded,
    equal tests: ``_first_visit`` and :meth:`_State.memo` compare the matched nodes too, so
    they stay two states and two matches (mend54: the second was dropped before).  One corner
    remains where the answers could differ from recording every test: a search cut at
    MAX_STEPS_PER_START walks fewer states now, so it stops later (none is cut on the paper
    corpus: the most steps any search takes there is far below the bound)."""
    index = _index(flow)
    found = index.static.get(_GUARDS_TESTED)
    if found is None:
        found = {}
        for pos, edges in enumerate(flow.out):
            for _, guard in edges:
                if guard is not None:
                    found[guard[0]] = pos
        index.static[_GUARDS_TESTED] = found
    return found


_GUARDS_TESTED = ("guards tested",)  # (its key in _FlowIndex.static)


def _index(flow: Flow) -> _FlowIndex:
    index = getattr(flow, "_index", None)
    if index is None:
        index = flow._index = _FlowIndex(flow)
    return index


def _reaches(flow: Flow, first: int, last: int) -> bool:
    """Does some path from node ``first`` reach node ``last``?  Edges go from lower to higher
    ids, so only ids up to ``last``'s are walked."""
    out = flow.out
    seen = {first}
    stack = [first]
    while stack:
        for succ, _ in out[stack.pop()]:
            if succ == last:
                return True
            if succ < last and succ not in seen:
                seen.add(succ)
                stack.append(succ)
    return False


# Matcher._outputs_meet: the mark on the steps of a value a gate (a sigmoid) computed or
# multiplied: no query, key or value an attention meets
_GATED_MARK = -1
_GATED = frozenset((_GATED_MARK,))
_SIGMOID = "torch.nn.Sigmoid"
# Matcher._outputs_meet: element-wise activations (an MLP's hidden layer runs one before its next Linear)
_ACTIVATION_CANON = frozenset({"torch.nn.functional.relu", "torch.nn.functional.gelu", "torch.nn.functional.silu",
                               "torch.tanh", "torch.nn.functional.leaky_relu", "torch.nn.functional.elu"})
_ACTIVATION_LAYERS = frozenset({"torch.nn.ReLU", "torch.nn.GELU", "torch.nn.SiLU", "torch.nn.Tanh",
                                "torch.nn.LeakyReLU", "torch.nn.ELU", "torch.nn.Mish"})
_LINEAR = "torch.nn.Linear"
# Matcher._outputs_meet: layers that normalize a value (a layer's output, normalized then
# activated, is its result)
_NORM_LAYERS = frozenset({"torch.nn.LayerNorm", "torch.nn.BatchNorm1d", "torch.nn.BatchNorm2d", "torch.nn.GroupNorm",
                          "torch.nn.RMSNorm"})


def _mean_axes(node) -> object:
    """The axes a ``torch.mean`` node reduces, as written (``dim=`` or the second argument: a
    literal's value, a name's key), None when not given."""
    view = node.view
    args, kwargs = (view.args, view.kwargs) if view is not None else (node.args, node.kwargs)
    dim = dict(kwargs).get("dim", args[1] if len(args) > 1 else None)
    if isinstance(dim, Const):
        return ("c", dim.value)
    if isinstance(dim, Ref):
        return ("k", dim.key)
    return None


def _complementary(one: str, other: str) -> bool:
    """Do two slices' texts (spaces removed) take complementary shifts of the same axes:
    ``:,:-1`` and ``:,1:``, each element whole in both or ``:-k`` in one and ``k:`` in the other,
    and at least one such pair (Matcher._shifted_target)?  A leading ``...`` in both counts the
    axes from the right in both alike; a trailing one stands for no axis more (the axes it
    covers are whole: ``:,:-1,...`` of the logits beside ``:,1:`` of the targets, research112)."""
    a, b = one.split(","), other.split(",")
    if len(a) > 1 and a[-1] == "...":
        a.pop()
    if len(b) > 1 and b[-1] == "...":
        b.pop()
    if len(a) != len(b):
        return False
    shifted = False
    for x, y in zip(a, b):
        if x == y == ":" or x == y == "...":
            continue
        if x.startswith(":-") and y.endswith(":") and x[2:] == y[:-1] and x[2:].isdigit() \
                or y.startswith(":-") and x.endswith(":") and y[2:] == x[:-1] and y[2:].isdigit():
            shifted = True
            continue
        return False
    return shifted


def _embeds(cls: ClassStructure) -> bool:
    """Does the class bind an ``nn.Embedding`` (or a same-file subclass of one)?"""
    info = cls.info
    if info is None:
        return False
    classes, resolve = cls.module.names.classes, cls.module.names.resolve
    for ctors in info.bindings.values():
        for ctor in ctors:
            if ctor.fqn == EMBEDDING or ctor.fqn in classes and any(
                    resolve(b) == EMBEDDING for b in classes[ctor.fqn].bases):
                return True
    return False


def _projected_inputs(flow: Flow, h, before: int) -> bool:
    """Is the value ``h`` computed, in this flow, from the output of a Linear layer (its own
    definitions followed back through what they read, a bounded walk)?"""
    if not isinstance(h, Ref):
        return False
    nodes, seen, stack, budget = flow.nodes, {h.key}, [(h.key, before)], 200
    while stack:
        key, at = stack.pop()
        for node in _definers(nodes, key, at):
            budget -= 1
            if budget < 0:
                return True  # (too far to tell: not read as the tokens)
            if node.kind == "layer" and _LINEAR in node.types:
                return True
            for used in node.uses:
                if used not in seen:
                    seen.add(used)
                    stack.append((used, node.id))
    return False


def _same_arms(one: tuple, other: tuple) -> bool:
    """Can two nodes of one flow run on one path: for every ``if`` both lie in (scopes are
    ((if span, arm), ...) from the outside in), the same arm?"""
    arms = dict(other)
    return all(arms.get(span, arm) == arm for span, arm in one)


def _slice_text(key: str) -> str | None:
    """The index of ``name[...]`` written as a flow key (``labels[..., 1:]``), spaces removed,
    as Flow.slices holds slices; None for any other key."""
    expr = _subscript(key)
    if expr is None or expr.value.__class__ is not ast.Name:
        return None
    return key[key.index("[") + 1:-1].replace(" ", "")


def _subscript(text: str) -> ast.Subscript | None:
    """``text`` parsed when it is one subscript expression (``x[...]``), else None."""
    if not text.endswith("]") or "[" not in text:
        return None
    try:
        expr = ast.parse(text, mode="eval").body
    except SyntaxError:
        return None
    return expr if expr.__class__ is ast.Subscript else None


def _within(inner: tuple, outer: tuple) -> bool:
    """Does the source span ``inner`` (line, col, end line, end col) lie inside ``outer``?"""
    return (inner[0], inner[1]) >= (outer[0], outer[1]) and (inner[2], inner[3]) <= (outer[2], outer[3])


def _masked_rows(cls: ClassStructure, flow: Flow, state: _State) -> bool:
    """Are the head's logits those of rows picked by one mask or index of the leading axes
    (``h[labels != -100]`` before the head, directly or through a local name bound to it once
    on the path; ``logits[mask]`` after it, canon.rows), rows of the loss's target too?  Such a
    selection flattens the leading axes, so the logits are (rows, classes) and a cross-entropy
    of them is over the head's own output axis: the fused linear cross-entropy takes any rows.
    A tuple index (``x[:, m]``, a selection over another axis, a slice keeping the positions
    axis) is none of these; nor a mask the target is not selected by (:func:`_selects_target`:
    ``hidden[keep]`` with ``keep`` over the batch axis only keeps 3-D logits)."""
    lines = cls.module.lines
    if lines is None:
        return False
    mask = _row_mask(lines, flow, state)
    return mask is not None and _selects_target(flow, state.matched[-1], mask, lines)


def _row_mask(lines: list, flow: Flow, state: _State) -> ast.expr | None:
    """The one mask or index that picks the head's rows, after the head (``logits[mask]``,
    canon.rows) or before it (``head(h[mask])``, also through a local name bound to it once on
    the path); None for any other selection."""
    cut = next((n for n in state.matched if n.canon == "canon.rows"), None)
    if cut is not None:
        return _one_mask_index(_one_line(lines, cut.span))
    head = state.matched[0]
    if not head.args or not isinstance(head.args[0], Ref):
        return None
    key = head.args[0].key
    mask = _one_mask_index(key)
    if mask is None:
        found = _last_reaching(_definers(flow.nodes, key, head.id), head.scope)
        mask = _one_mask_index(_one_line(lines, found[0].span)) \
            if len(found) == 1 and found[0].kind in ("copy", "method") else None
    return mask


def _mask_token_rows(cls: ClassStructure, flow: Flow, state: _State) -> bool:
    """Are the head's logits those of the rows a mask picks (:func:`_row_mask`) that the root
    function takes as a parameter and hands to a same-file module which replaces those rows
    of its input by a learned token (structure/mask_tokens.py: BEiT's masked image modeling)?
    Then the loss is over the content of inputs the model did not see, its classes that
    content's tokens: a vocabulary head, whatever its width is named.  A mask used otherwise
    (an attention mask, rows zeroed or filled with a constant) types nothing."""
    lines = cls.module.lines
    name = flow.name if cls.info is None else flow.name[len(cls.name) + 1:]  # (qualname: Class.method)
    func = cls.functions.get(name) if lines is not None else None
    if func is None:
        return False
    mask = _row_mask(lines, flow, state)
    return mask.__class__ is ast.Name and mask.id in flow.params \
        and replaced_by_token(cls.module, cls, func, mask.id)


def _one_line(lines: list, span: tuple | None) -> str:
    """The source of a one-line span (``""`` for none, or a span over several lines)."""
    if span is None or span[0] != span[2] or not 0 < span[0] <= len(lines):
        return ""
    return segment(lines, span)


def _one_mask_index(text: str) -> ast.expr | None:
    """The index of ``text`` when it is ``x[m]`` with one index that is a comparison (a boolean
    mask, ``labels != -100``) or a name (a mask or the indices of rows); None otherwise."""
    expr = _subscript(text)
    if expr is not None and expr.slice.__class__ in (ast.Compare, ast.Name):
        return expr.slice
    return None


def _selects_target(flow: Flow, loss, mask: ast.expr, lines: list) -> bool:
    """Does the mask that picks the logits' rows pick the loss's target's too?  Either the mask
    compares the target itself (``labels != -100``, the target ``labels`` or a selection of
    it), or the target is selected by the same index (``labels[keep]``, written in the call or
    bound once before it).  A mask over another axis than the target's (``hidden[keep]``, keep
    over the batch axis alone) leaves 3-D logits whose second axis the loss takes for the
    classes: no site."""
    target = loss.args[1] if len(loss.args) > 1 else next((v for k, v in loss.kwargs if k == "target"), None)
    if not isinstance(target, Ref):
        return False
    if mask.__class__ is ast.Compare:
        root = _root_name(target.text)
        if root is not None and any(n.__class__ is ast.Name and n.id == root for n in ast_walk(mask)):
            return True
    wanted = ast.dump(mask)
    picked = _one_mask_index(target.text)
    if picked is not None:
        return ast.dump(picked) == wanted
    found = _last_reaching(_definers(flow.nodes, target.key, loss.id), loss.scope)
    if len(found) != 1 or found[0].kind not in ("copy", "method"):
        return False
    picked = _one_mask_index(_one_line(lines, found[0].span))
    return picked is not None and ast.dump(picked) == wanted


def _root_name(text: str) -> str | None:
    """The name an expression's text starts from (``labels`` of ``labels[m].view(-1)``)."""
    try:
        expr = ast.parse(text, mode="eval").body
    except SyntaxError:
        return None
    while expr.__class__ in (ast.Attribute, ast.Subscript, ast.Call):
        expr = expr.func if expr.__class__ is ast.Call else expr.value
    return expr.id if expr.__class__ is ast.Name else None


def _definers(nodes: list, key: str, before: int) -> list:
    """The nodes before position ``before`` that assign ``key``."""
    return [n for n in nodes[:before] if key in n.defs]


def _last_reaching(found: list, use_scope: tuple) -> list:
    """Of several definitions of one name (in flow order), the last alone where it overrides the
    others on every path to the use: it lies in no ``if`` arm the use is outside of (its scope
    leads the use's), so ``labels = labels.to(dev)`` then ``labels = labels[:, 1:]`` gives the
    use the slice.  Otherwise ``found`` as it is (the caller wants exactly one)."""
    if len(found) < 2:
        return found
    last = found[-1]
    scope = tuple(last.scope)
    return [last] if scope == tuple(use_scope)[:len(scope)] else found


# Matcher._outputs_meet: the spellings of a concatenation (a layer over the steps' concatenation
# mixes them; see _apart)
_CATS = frozenset({"torch.cat", "torch.concat", "torch.concatenate"})
# Matcher._outputs_meet: the spellings of an element-wise exponential (``torch.exp(k)``, ``k.exp()``)
_EXP = frozenset({"torch.exp", "exp"})


def _weighs_another(node, labels: dict, weights: set) -> bool:
    """Is ``node`` an element-wise product of one step's output turned into weights (an exp or a
    softmax of it alone) and another step's output as it is (the Attention-Free Transformer's
    ``exp(K) * V``, ``softmax(K, 1) * V``)?  The weights of the keys applied to the values are an
    attention-like meeting of the two (lead ruling, session 39); a sigmoid of one step times
    another stays a gate (a triangle update's ``left * sigmoid(left_gate)``), and two steps
    multiplied as they are a gated unit."""
    if node.canon != "torch.mul" or len(node.args) != 2:
        return False
    a, b = node.args
    if a.__class__ is not Ref or b.__class__ is not Ref or (a.key in weights) == (b.key in weights):
        return False
    got_a, got_b = _followed(a.key, labels), _followed(b.key, labels)
    return bool(got_a and got_b) and len(got_a) == len(got_b) == 1 and got_a != got_b \
        and _GATED_MARK not in got_a and _GATED_MARK not in got_b


def _followed(key: str, labels: dict):
    """The matched steps a value comes from (Matcher._outputs_meet): its own, or those of the
    name it selects from (``q[:, 0]``, ``keys.T``: an opaque key; ``Q|X[..., :h]``, a helper's
    parameter ``X`` holding ``Q``), not of one whose metadata it reads (``k.shape[-1]``)."""
    got = labels.get(key)
    if got is not None or key[:1] == "%":
        return got
    base, bar, text = key.partition("|")
    if not bar:
        text = key
    cut = len(text)
    for mark in ("[", "."):
        at = text.find(mark)
        if 0 < at < cut:
            cut = at
    if cut == len(text) and not bar:
        return None
    rest = text[cut:]
    if rest[:1] == "." and rest[1:].split("[", 1)[0].split(".", 1)[0] in TENSOR_METADATA:
        return None
    return labels.get(base if bar else text[:cut])


def _returned_together(flow: Flow, node: Node, labels: dict, again: set = frozenset(),
                       hidden: set = frozenset(), spliced: set = frozenset()) -> bool:
    """Is ``node`` the tuple or list the root function returns (``return q, k, v``), holding
    the matched steps' outputs alone, two of them at least?  A projection helper hands them to a
    caller that computes with them (Matcher._outputs_meet; read no further, as before the lead's
    session-25 ruling).  A model's eleven classifier heads returned in one tuple hold more than
    the three matched: no evidence of an attention.  Outputs that another Linear projected
    again (``again``: DiGress's node, edge and global updates, each through its output Linear)
    are a layer's results, not projections handed on: they count for no step.  A tuple holding
    the output of a small MLP whose hidden layer is a step (``hidden``: Maia-2's move,
    side-information and value heads, ``return self.fc_1(x), self.fc_2(x),
    self.fc_3(relu(self.fc_3_1(x)))``) is a model's outputs, no hand-off at all; a step projected
    again with no activation between (``self.v2(self.v(x))``) is still a projection."""
    outs = node.outs
    if len(outs) != 1 or node.defs != {outs[0].key}:
        return False
    after = node.id + 1
    nodes = flow.nodes
    if after >= len(nodes) or nodes[after].kind != "other" or nodes[after].defs \
            or nodes[after].uses != node.defs or nodes[after].inlined:
        return False
    steps = set()
    mixed = set()
    for key in node.uses:
        got = labels.get(key)
        if got is None or key in hidden:
            return False
        if len(got) != 1:
            if _GATED_MARK in got:
                return False
            mixed.add(got)
        if key not in again:
            steps |= got
    return len(steps) > 1 and (not mixed or (len(node.uses) == len(steps) and _apart(mixed, node.uses, labels, spliced)))


def _apart(mixed: set, uses, labels: dict, spliced: set) -> bool:
    """May a returned tuple whose elements mix steps (``mixed``: their step sets) still be the
    hand-off of projections (:func:`_returned_together`)?  Zaya's CCA block concatenates q and
    k, convolves them and returns ``query, key, value``: query and key each mix the q and k
    steps, value is the v step's alone.  The caller gets them as separate operands, as it does
    three single steps.  What is returned must keep some step apart: an element holding one
    step that no mixed element holds, beside the mixes.  Mixes alone (``return mix, mix``)
    and a mix holding every step are one combined output, no q, k and v handed on.  (The
    caller also asks for one element per step: four heads mapped through a sigmoid and
    returned with a fourth are a model's outputs.)  A mixed element must come from one layer
    applied to a concatenation of the steps (``spliced``: Zaya's cat -> conv -> slice); heads
    mixed by arithmetic alone (a box's ``(left + right) * 0.5, right - left, score``) are a
    model's outputs, not q and k handed on."""
    if any(len(got) > 1 and key not in spliced for key in uses if (got := labels.get(key))):
        return False
    union = frozenset().union(*mixed)
    return any(len(got) == 1 and got.isdisjoint(union) for key in uses if (got := labels.get(key)))


def _other_branch(flow: Flow, defined: Node, node: Node) -> bool:
    """Does ``node`` lie in another branch of an ``if`` than the node ``defined`` (their scopes part
    at one statement's two bodies) with no way from ``defined`` to it?  The scope test is a tuple
    comparison; the walk runs only where it holds (a loop's ``else`` follows its body)."""
    a, b = defined.scope, node.scope
    if a == b or not a:
        return False
    for x, y in zip(a, b):
        if x != y:
            return x[0] == y[0] and not _reaches(flow, defined.id, node.id)
    return False


def _always_reaches(flow: Flow, first: int, last: int) -> bool:
    """Does every path from node ``first`` pass through node ``last``?  Edges go from lower to
    higher ids, so a path that steps past ``last``'s id without meeting it never will."""
    out = flow.out
    seen: set[int] = set()
    stack = [first]
    while stack:
        pos = stack.pop()
        if not out[pos] and pos != last:
            return False  # the function ends (or raises) on this path first
        for succ, _ in out[pos]:
            if succ == last:
                continue
            if succ > last:
                return False
            if succ not in seen:
                seen.add(succ)
                stack.append(succ)
    return True


def _on_every_path(flow: Flow, start: int, step, live: set) -> bool:
    """Does every path from node ``start`` to the function's end reach a node where ``step(node,
    live, True)`` hits (True), branches included?  The scores read again after an ``if`` that
    joins (native-sparse-attention's ``importance = sim[..., n:]`` below an unrelated branch),
    or computed with in both arms: no path runs without them (GUIDE: "probabilities that are
    always read again").  A path on which the keys all die, or that ends, without a hit keeps
    the site."""
    if not live:
        return False
    out, nodes = flow.out, flow.nodes
    stack = [(s, frozenset(live)) for s, _ in out[start]]
    if not stack:
        return False
    seen = set()
    while stack:
        pos, keys = stack.pop()
        while (pos, keys) not in seen:  # (a straight run of nodes followed without the stack)
            seen.add((pos, keys))
            after = step(nodes[pos], keys, True)
            if after is True:
                break
            succ = out[pos]
            if not after or not succ:
                return False
            keys = after if after.__class__ is frozenset else frozenset(after)
            if len(succ) == 1:
                pos = succ[0][0]
                continue
            for s, _ in succ:
                stack.append((s, keys))
            break
    return True


def _excluded_by_setting(flow: Flow, first: int, pos: int, guards: dict, cls) -> str | None:
    """The text of a configuration ``if`` (:func:`_setting_test`) that the matched path took
    one way (``guards``) and without whose other branch no path from node ``first`` reaches node
    ``pos``; None when there is none."""
    out = flow.out
    for text, taken in guards.items():
        if not _setting_test(text, cls):
            continue
        seen = {first}
        stack = [first]
        while stack:
            at = stack.pop()
            for succ, guard in out[at]:
                if succ > pos or succ in seen or (guard is not None and guard[0] == text and guard[1] != taken):
                    continue
                seen.add(succ)
                stack.append(succ)
        if pos not in seen:
            return _INSTANCE.sub("", text)
    return None


# A subscript that only adds axes or keeps whole ones (``w[None, None, :, :]``, ``w[..., None]``)
_AXES_ADDED = re.compile(r"^(self\.\w+)\[\s*(?:(?:None|:|\.\.\.)\s*,\s*)*(?:None|:|\.\.\.)\s*,?\s*\]$")


# A read of a value for its size, layout or placement only: ``x.shape``, ``x.size(...)``,
# ``x.dim()``, ``x.ndim``, ``x.dtype``, ``x.device``, or ``torch.zeros_like(x)`` and its kin.
_SIZE_READ = re.compile(r"\s*\.\s*(?:shape|size\s*\(|dim\s*\(|ndim\b|dtype\b|device\b|new_(?:zeros|ones|empty|full)\s*\()")
_LIKE_BEFORE = re.compile(r"(?:(?:zeros|ones|empty|full)_like|\.\s*type_as)\s*\(\s*$")


def _size_reads(node, key: str, lines: list[str]) -> bool:
    """Does ``node`` read the value ``key`` names only for its size (every mention of the name
    in the node's source is followed by ``.shape``, ``.size(``, ... or is the first argument
    of a ``*_like`` call)?  Such a read is no function of the values: a mask built from the
    scores' sizes is given before them (matcher's _independent).  A key that is no plain
    name (a temporary, a subscript) is read for its value.  A step whose source does not
    write the name (a helper's parameter bound to the caller's ``scores.shape``, inlined)
    reads it only for its size when every value it reads through the name is a size."""
    span = node.span
    if span is None or span[2] > len(lines) or span[0] > span[2]:
        return False
    mentions = ()
    name = key.partition("@")[0] if _INSTANCE_KEY.match(key) else key  # (an inlined helper's local)
    if name.isidentifier():
        text = _lines_text(lines, span)
        mentions = [m.end() for m in re.finditer(r"(?<![\w.])" + name + r"(?!\w)", text)]
    if not mentions:
        through = [_past_name(use, key) for use in node.uses if use != key and use.startswith(key)
                   and use[len(key)] in ".[|"]
        return bool(through) and all(_SIZE_READ.match(rest) for rest in through)
    return all(
        _SIZE_READ.match(text, end) or _LIKE_BEFORE.search(text, 0, end - len(name)) for end in mentions)


# Element-wise operators of two operands: with each operand's axes added at other places they
# broadcast to a value per pair (``q_pos[:, None] - k_pos[None, :]``), as an outer product does.
_BROADCASTING = frozenset({"torch.sub", "torch.add", "torch.mul", "torch.div"})


def _may_reach_steps(nodes: list, matched: set, wanted: set) -> bool:
    """Matcher._independent's gate for ``[forward] given`` terms: may a value of ``wanted`` be
    computed from a step of the match (``matched``: node ids) within ``nodes``, every read
    followed (size reads too, and what an unread module takes)?  Set operations only.  The
    precise pass follows a subset of these reads, so where this says no, it says no too; most
    terms (the caller's mask, a bias made before the scores or from the mask alone) stop here
    without a size read parsed."""
    wanted = set(wanted)
    for node in reversed(nodes):
        if not wanted:
            return False
        hit = node.defs & wanted
        if not hit:
            continue
        if node.id in matched:
            return True
        wanted -= hit
        wanted |= node.uses
    return False


def _broadcast_pair(node, before: list, at: int) -> bool:
    """Is ``node`` an element-wise operator of two operands that each add axes, at places
    neither shares (``pos[:, None] - pos[None]``, ``x.unsqueeze(-1) - x.unsqueeze(-2)``,
    ``p[..., :, None] - p[..., None, :]``)?  Its value has one entry per pair of the two
    operands' positions -- a distance matrix -- which no scale of q or k carries (matcher's
    _folds).  Operands adding axes at one common place (``tau[:, None] * g[:, None]``) or
    one operand alone (``self.temp * tau[:, None, None, None]``) broadcast no pair."""
    if node.canon not in _BROADCASTING or len(node.args) != 2 \
            or not all(isinstance(arg, Ref) for arg in node.args):
        return False
    left, right = (_added_axes(arg.key, before, at) for arg in node.args)
    return bool(left) and bool(right) and not left & right


def _added_axes(key: str, before: list, at: int) -> frozenset:
    """The places the value ``key`` adds an axis at, each ``("front", i)`` or ``("end", -i)``:
    of a subscript with ``None`` (``pos[:, None]``: front 1; ``p[..., None, :]``: end -2) or
    of a temporary a step before ``at`` makes by ``unsqueeze(d)`` (front d, or end d when d < 0).
    Empty for any other value."""
    if key.startswith("%"):
        for node in reversed(before[:at]):
            if key in node.defs:
                if node.kind == "method" and node.op == "unsqueeze" and len(node.args) == 2 \
                        and isinstance(node.args[1], Const) and type(node.args[1].value) is int:
                    d = node.args[1].value
                    return frozenset({("end", d) if d < 0 else ("front", d)})
                return frozenset()
        return frozenset()
    if not key.endswith("]") or "None" not in key or "|" in key:
        return frozenset()
    try:
        expr = ast.parse(re.sub(r"%(\d+)", r"_t\1", key), mode="eval").body
    except SyntaxError:
        return frozenset()
    if not isinstance(expr, ast.Subscript):
        return frozenset()
    items = expr.slice.elts if isinstance(expr.slice, ast.Tuple) else [expr.slice]
    dots = [i for i, item in enumerate(items) if isinstance(item, ast.Constant) and item.value is Ellipsis]
    if len(dots) > 1:
        return frozenset()
    places = set()
    head, tail = (items[:dots[0]], items[dots[0] + 1:]) if dots else (items, [])
    out = 0
    for item in head:  # an integer index drops its axis: no output place
        if isinstance(item, ast.Constant) and item.value is None:
            places.add(("front", out))
        if not _int_index(item):
            out += 1
    out = -1
    for item in reversed(tail):
        if isinstance(item, ast.Constant) and item.value is None:
            places.add(("end", out))
        if not _int_index(item):
            out -= 1
    return frozenset(places)


def _int_index(item: ast.expr) -> bool:
    """Is the subscript item an integer (``0``, ``-1``), which drops its axis?"""
    if isinstance(item, ast.UnaryOp) and isinstance(item.op, ast.USub):
        item = item.operand
    return isinstance(item, ast.Constant) and type(item.value) is int


def _unread_step(node, cls) -> bool:
    """Is ``node`` a step whose reading of its inputs the flow does not know: a module call
    other than a ``self.<attr>`` of one class of this file with a plain forward (which
    _module_reads_sizes reads), a call of something not torch's (another file's function, a
    callable handed in: ``?bias``), or an expression the graph keeps whole (kind "other") that
    reads a module of the class (a comprehension calling ``self.biases``' members per group;
    not a comparison ``s > 0``)?"""
    if node.kind == "other":
        bindings = cls.bindings
        return any(key.startswith("self.") and key[5:] in bindings for key in node.uses)
    if node.kind == "call":
        return not node.canon and not node.op.startswith("torch.")
    if node.kind != "layer":
        return False
    if not node.op.startswith("self.") or "." in node.op[5:]:
        return True
    ctors = cls.bindings.get(node.op[5:])
    if not ctors or len({c.fqn for c in ctors}) != 1:
        return True
    klass = cls.module.names.classes.get(ctors[0].fqn)
    return klass is None or plain_forward(klass) is None


# Torch and operator functions whose result is a linear map of their first argument (by a
# weight handed as the second): the projections a SwiGLU's one-function gate and up may call.
_PROJECTION_FUNCTIONS = frozenset({"torch.nn.functional.linear", "torch.matmul", "torch.mm", "torch.bmm",
                                   "operator.matmul", "torch.Tensor.matmul", "torch.Tensor.mm"})


# torch's own operator namespaces (element-wise and control-flow ops among them), not extensions
_TORCH_OWN_OPS = tuple(f"torch.ops.{ns}." for ns in ("aten", "prims", "quantized", "higher_order", "_quantized",
                                                       "quantized_decomposed", "_refs"))


def _projection_callee(cls, callee) -> bool:
    """Does the callable a match binds (``self.linear``: ADP013's one function called twice on x
    with a weight per call) compute a linear map of its input, what the fused SwiGLU's operands
    are?  Every binding of the attribute must be a projection function (F.linear, matmul), a
    same-file function or module whose result is a linear map of its first input
    (:func:`linear_of_input`), or a callable the file cannot read -- another module's (an
    extension's quantized GEMM), a parameter's -- taken as the call reads.  ``torch.mul``
    (an element-wise product with a weight) or a same-file function computing another thing
    is not."""
    if not isinstance(callee, str) or not callee.startswith("self.") or cls is None:
        return True  # (no attribute: nothing bound here to read)
    ctors = cls.bindings.get(callee[5:], ())
    names = cls.module.names
    for ctor in ctors:
        fqn, held = ctor.fqn, ctor.fqn == "?"
        if held:
            # a callable held as a value (``self.linear = torch.mul``): what the expression names
            try:
                expr = ast.parse(_lines_text(cls.module.lines, ctor.call).strip(), mode="eval").body
            except SyntaxError:
                continue
            fqn = names.resolve(expr) or (expr.id if isinstance(expr, ast.Name) and expr.id in _BUILTIN_CALLABLES
                                          else "")
        if fqn.startswith("torch.ops.") and not fqn.startswith(_TORCH_OWN_OPS):
            continue  # (an extension's registered op, ``torch.ops._C.gptq_gemm``: unread, as another module's)
        if fqn.startswith(("torch.", "operator.")) or fqn in _BUILTIN_CALLABLES:
            if not held or fqn not in _PROJECTION_FUNCTIONS:
                return False  # (a torch module or function that is no projection of x by w)
            continue
        func = names.functions.get(fqn) if held else None  # (called: a factory's result, unread)
        if func is not None and not linear_of_input(func, 0):
            return False
        klass = names.classes.get(fqn) if not held else None
        if klass is not None:
            forward = plain_forward(klass)
            if forward is None or not linear_of_input(forward, 1):
                return False
    return True


_BUILTIN_CALLABLES = frozenset({"max", "min", "pow", "sum", "abs", "divmod", "round"})


def linear_of_input(func, index: int) -> bool:
    """Does ``func`` return, on its one path, a linear (or affine) map of its parameter at
    ``index``: the input times a weight (``@``, ``F.linear``, ``matmul``, ``mm``), scaled or
    shifted by values not computed from the input, reshaped or cast?  Read through locals
    bound once in a straight-line body."""
    params = [a.arg for a in (*func.args.posonlyargs, *func.args.args)]
    if index >= len(params):
        return False
    x = params[index]
    body = [s for s in func.body if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))]
    if not body or not isinstance(body[-1], ast.Return) or body[-1].value is None:
        return False
    env: dict[str, ast.expr] = {}
    for stmt in body[:-1]:
        if not (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name)
                and stmt.targets[0].id not in env and stmt.targets[0].id != x):
            return False
        env[stmt.targets[0].id] = stmt.value
    return _linear(body[-1].value, x, env, 0) == "linear"


def _linear(expr, x: str, env: dict, depth: int) -> str:
    """"linear" (a linear map of x that multiplies by a weight), "input" (x itself, reshaped
    or cast), "free" (no read of x), or "other"."""
    if depth > 8:
        return "other"
    if isinstance(expr, ast.Name):
        if expr.id == x:
            return "input"
        return _linear(env[expr.id], x, env, depth + 1) if expr.id in env else "free"
    if isinstance(expr, ast.Constant):
        return "free"
    if isinstance(expr, ast.Attribute):
        base = _linear(expr.value, x, env, depth + 1)
        if base == "free" or (base == "input" and expr.attr in _METADATA_ATTRIBUTES):
            return "free"  # (``x.dtype``: the input's metadata, no value of it, ``w.to(x.dtype)``)
        return "other"
    if isinstance(expr, ast.BinOp):
        left, right = _linear(expr.left, x, env, depth + 1), _linear(expr.right, x, env, depth + 1)
        if left == right == "free":
            return "free"
        if isinstance(expr.op, ast.MatMult) and "free" in (left, right) and ({left, right} - {"free"}) <= {"input", "linear"}:
            return "linear"
        if isinstance(expr.op, (ast.Mult, ast.Div)) and "linear" in (left, right) and "free" in (left, right) \
                and not (isinstance(expr.op, ast.Div) and right == "linear"):
            return "linear"  # (a per-channel scale of the product)
        if isinstance(expr.op, (ast.Add, ast.Sub)) and "linear" in (left, right) and "free" in (left, right):
            return "linear"  # (a bias)
        return "other"
    if isinstance(expr, ast.Call):
        func = expr.func
        parts = [_linear(a, x, env, depth + 1) for a in expr.args] + \
                [_linear(k.value, x, env, depth + 1) for k in expr.keywords]
        if isinstance(func, ast.Attribute):
            base = _linear(func.value, x, env, depth + 1)
            if all(p == "free" for p in parts):
                if base == "free":
                    return "free"
                if func.attr in _SHAPE_ONLY_METHODS:
                    return base  # (x.reshape(...), w.t(), y.to(dtype))
            if func.attr in ("matmul", "mm") and len(parts) == 1 and {base, parts[0]} == {"input", "free"}:
                return "linear"
            if func.attr in ("linear", "matmul", "mm") and base == "free" and len(expr.args) >= 2 \
                    and parts[0] == "input" and all(p == "free" for p in parts[1:]):
                return "linear"  # (F.linear(x, w, b), torch.matmul(x, w))
            return "other"
        if isinstance(func, ast.Name) and all(p == "free" for p in parts):
            return "free"
        return "other"
    return "other" if any(_linear(n, x, env, depth + 1) != "free" for n in ast.iter_child_nodes(expr)
                          if isinstance(n, ast.expr)) else "free"


# attributes of a tensor that are its metadata, not its values: a weight cast to x's dtype or
# moved to its device is still a weight
_METADATA_ATTRIBUTES = frozenset({"dtype", "device"})

# methods that move, reshape or cast a tensor: a linear map of x stays one
_SHAPE_ONLY_METHODS = frozenset({"t", "T", "transpose", "reshape", "view", "contiguous", "to", "float", "half",
                                 "bfloat16", "double", "type_as", "permute", "flatten", "unflatten", "squeeze",
                                 "unsqueeze"})


def _module_reads_sizes(node, key: str, cls) -> bool:
    """Does ``node`` hand the value ``key`` to a module of a class of this file whose
    ``forward`` reads that argument only for its sizes, rank, dtype or device (a relative
    position bias ``self.rel_pos(sim)`` whose forward starts ``i, j = sim.shape[-2:]``)?  Such
    a module's output is given before the scores' values, as a mask sized by them is.  Every
    binding of the attribute must build that one class, called with ``key`` once, by position
    (as the sdpa synthesizer's stand-in for the scores requires: _stand_in_swaps)."""
    if node.kind != "layer" or not node.op.startswith("self.") or "." in node.op[5:] \
            or any(isinstance(value, Ref) and value.key == key for _, value in node.kwargs):
        return False
    positions = [i for i, arg in enumerate(node.args) if isinstance(arg, Ref) and arg.key == key]
    ctors = cls.bindings.get(node.op[5:])
    if len(positions) != 1 or not ctors or len({c.fqn for c in ctors}) != 1:
        return False
    klass = cls.module.names.classes.get(ctors[0].fqn)
    forward = plain_forward(klass) if klass is not None else None
    if forward is None:
        return False
    params = [a.arg for a in forward.args.posonlyargs + forward.args.args][1:]
    return positions[0] < len(params) and shape_metadata_only(forward, params[positions[0]])


# a local of an inlined helper, keyed by its instance (``attn_weights@1``)
_INSTANCE_KEY = re.compile(r"^[A-Za-z_]\w*@\d+$")


def _lines_text(lines: list[str], span: tuple) -> str:
    """The source a node's span covers, over one line or several (T5's ``torch.zeros(\n
    shape, device=scores.device, dtype=scores.dtype)``); columns in bytes."""
    if span[0] == span[2]:
        return lines[span[0] - 1].encode()[span[1]:span[3]].decode(errors="replace")
    first = lines[span[0] - 1].encode()[span[1]:].decode(errors="replace")
    last = lines[span[2] - 1].encode()[:span[3]].decode(errors="replace")
    return "\n".join([first, *lines[span[0]:span[2] - 1], last])


def _past_name(use: str, key: str) -> str:
    """What a value key reads through ``key``: ``.shape[-1]`` of ``q.shape[-1]``, and of
    ``q|p.shape[-1]`` (an inlined helper's ``p.shape[-1]`` with its parameter ``p`` bound to
    ``q``)."""
    rest = use[len(key):]
    if rest.startswith("|"):
        found = re.match(r"\|[A-Za-z_]\w*", rest)
        return rest[found.end():] if found else rest
    return rest


def _meta_only(before: list, at: int, key: str) -> bool:
    """Do the steps written inside ``before[at]`` (its sub-expressions, just before it) read
    ``key`` only through a size method (``query.size(-1)`` inside an inlined helper's
    ``1 / math.sqrt(query.size(-1)) if scale is None else scale``)?"""
    outer = before[at].span
    seen = False
    for node in reversed(before[:at]):
        if node.span is None or not _within(node.span, outer):
            break
        if key in node.uses:
            if node.kind != "method" or node.op not in TENSOR_METADATA:
                return False
            seen = True
    return seen


def _pair_shaped(key: str, bindings: dict) -> bool:
    """Is ``key`` a module attribute every binding of which constructs a tensor of at least two
    axes whose last two sizes are not written as 1 (``nn.Parameter(torch.randn(n, n))``): a
    factor per query and key, of the module's own shape?  A per-head temperature
    (``ones(h, 1, 1)``), a number or anything not read here is not."""
    if not key.startswith("self.") or "." in key[5:] or "[" in key:
        return False
    ctors = bindings.get(key[5:])
    return bool(ctors) and all(_pair_tensor(ctor) for ctor in ctors)


_FACTORIES = frozenset({"randn", "rand", "zeros", "ones", "empty", "Tensor", "FloatTensor"})


def _pair_tensor(ctor) -> bool:
    """``ctor`` builds a tensor (a ``torch`` factory, or an ``nn.Parameter`` of one) whose
    written shape has two or more sizes, neither of the last two the literal 1."""
    if ctor.fqn == "torch.nn.Parameter" and ctor.args:
        call = ctor.args[0]
        if not isinstance(call, ast.Call) or not isinstance(call.func, ast.Attribute):
            return False
        factory, sizes = call.func.attr, call.args
    else:
        factory, sizes = ctor.fqn.rpartition(".")[2], ctor.args
    if factory not in _FACTORIES or not ctor.fqn.startswith("torch."):
        return False
    if len(sizes) == 1 and isinstance(sizes[0], (ast.Tuple, ast.List)):
        sizes = sizes[0].elts
    if len(sizes) < 2 or any(isinstance(s, ast.Starred) for s in sizes):
        return False
    return not any(isinstance(s, ast.Constant) and s.value == 1 for s in sizes[-2:])


def _axes_added_base(key: str) -> str:
    """The attribute a value key reads through a subscript of only ``None``, ``:`` and
    ``...`` (``self.w[None, None, :, :]``): such an index is an ``unsqueeze``, a layout
    step that leaves the module's weight as it is (match.Matcher._computed); any other key
    is returned unchanged.  In a method inlined into its caller the subscript's key carries
    the inlined receiver (``self@3|self.w[None, :]``, graph.FlowBuilder._opaque_ref): the
    receiver is the module, as ``self.w`` alone is keyed in any instance."""
    if not key.endswith("]"):
        return key
    base, bar, text = key.partition("|")
    if bar and base.split("@", 1)[0] == "self" and text.startswith("self."):
        key = text
    found = _AXES_ADDED.match(key)
    return found.group(1) if found else key


_INSTANCE = re.compile(r"@\d+$")  # the suffix an inlined helper's guard text carries (graph._guard_text)


def _setting_test(text: str, cls) -> bool:
    """Is ``text`` (an ``if`` test of the class's own method, or of a helper it calls with its
    ``self.<attr>`` reads in place of the parameters, graph._guard_text) a comparison of the
    module's settings: only ``self.<attr>`` reads, constants, comparisons, ``and``/``or``/``not``,
    no call, where every ``attr`` is one the class assigns in ``__init__`` only (not
    ``training``, which ``train()``/``eval()`` switch per call)?"""
    if cls is None or cls.info is None:
        return False
    if "@" in text:
        text = _INSTANCE.sub("", text)  # (any other "@" is a product: not a settings test)
        if "@" in text:
            return False
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError:
        return False
    attrs = set()
    for node in ast_walk(tree):
        if isinstance(node, ast.Attribute):
            if not (isinstance(node.value, ast.Name) and node.value.id == "self") or node.attr == "training":
                return False
            attrs.add(node.attr)
        elif isinstance(node, ast.Name):
            if node.id != "self":
                return False
        elif not isinstance(node, (ast.Expression, ast.Compare, ast.BoolOp, ast.UnaryOp, ast.Constant, ast.Load,
                                   ast.cmpop, ast.boolop, ast.Not, ast.USub)):
            return False
    if not attrs:
        return False
    init_only = set()
    for name, method in cls.info.methods.items():
        for node in ast_walk(method):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(
                node, (ast.AugAssign, ast.AnnAssign)) else []
            for target in targets:
                if isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name) \
                        and target.value.id == "self" and target.attr in attrs:
                    if name != "__init__":
                        return False
                    init_only.add(target.attr)
    return init_only == attrs


def _between(flow: Flow, first: int, last: int) -> list[int]:
    """The nodes on some path from node ``first`` to node ``last`` (neither included).  Edges
    go from lower to higher ids, so only ids between the two can lie on such a path."""
    out = flow.out
    seen: set[int] = set()
    stack = [first]
    while stack:
        pos = stack.pop()
        for succ, _ in out[pos]:
            if first < succ < last and succ not in seen:
                seen.add(succ)
                stack.append(succ)
    reaches: dict[int, bool] = {}
    for pos in sorted(seen, reverse=True):
        reaches[pos] = any(succ == last or reaches.get(succ, False) for succ, _ in out[pos])
    return [pos for pos in sorted(seen) if reaches[pos]]


def _longest(matches: list[Match], anchor: str | None = None) -> list[Match]:
    """With optional steps, a match that leaves out a step present on the path is a shorter
    copy of a fuller one: keep, per class, method, first and last node (per anchor node when the
    rule names one), the one with most nodes (of those, the one whose steps are least nested in
    ifs, then the earliest)."""
    best: dict[tuple, Match] = {}

    def site(match: Match) -> tuple:
        if anchor is not None and anchor in match.roles:
            return (match.class_name, match.flow, match.nodes[match.roles.index(anchor)].span)
        return (match.class_name, match.flow, match.nodes[0].span, match.nodes[-1].span)

    def rank(match: Match) -> tuple:
        return (-len(match.nodes), sum(len(n.scope) for n in match.nodes), [n.span for n in match.nodes])

    starts: dict[tuple, dict] = {}  # site -> first node -> the best match starting there
    for match in matches:
        key = site(match)
        current = best.get(key)
        if current is None or rank(match) < rank(current):
            best[key] = match
        if anchor is not None:
            # (per first and last node: the scores and the context each computed one way or
            # another in the arms of an if, which pair the fix tries: synth/sdpa.py _context_if)
            first = starts.setdefault(key, {})
            ends = (match.nodes[0].span, match.nodes[-1].span)
            current = first.get(ends)
            if current is None or rank(match) < rank(current):
                first[ends] = match
    # A match whose nodes another match contains (it left out an optional first step the
    # code has) is that match, shorter.
    kept: list[Match] = []
    for match in sorted(best.values(), key=lambda m: -len(m.nodes)):
        ids = {n.id for n in match.nodes}
        if not any(k.class_name == match.class_name and k.flow == match.flow and ids < {n.id for n in k.nodes}
                   and (anchor is None or site(k) == site(match)) for k in kept):
            kept.append(match)
    if anchor is not None:
        kept = [replace(m, others=tuple(sorted((o for o in starts.get(site(m), {}).values()
                                                if (o.nodes[0].span, o.nodes[-1].span)
                                                != (m.nodes[0].span, m.nodes[-1].span)), key=rank)))
                if len(starts.get(site(m), ())) > 1 else m for m in kept]
    return sorted(kept, key=lambda m: m.span)


def _reads_earlier(nodes, index: int) -> bool:
    """Does pattern step ``index`` read the output of a step before it?"""
    earlier = {out.name for p in nodes[:index] for out in p.outs if isinstance(out, Var)}
    for value in (*nodes[index].args, *(v for _, v in nodes[index].kwargs)):
        if isinstance(value, Temp) and value.index < index:
            return True
        if isinstance(value, Var) and value.name in earlier:
            return True
    return False


def _disjoint(matches: list[Match]) -> list[Match]:
    """One computation is replaced by one kernel call: of the matches of a fan-out rule in one
    method that share a matched node (a fourth Linear of the same input, a gate projection
    beside query, key and value, offers several triples), keep those whose steps sit in the
    fewest blocks (a fused call needs them in one), then the earliest; the others are the same
    opportunity counted again."""
    if len(matches) < 2:
        return matches

    def rank(match: Match) -> tuple:
        return (len({n.scope for n in match.nodes}), match.span)

    taken: dict[tuple, set[int]] = {}
    kept: list[Match] = []
    for match in sorted(matches, key=rank):
        ids = {n.id for n in match.nodes}
        used = taken.setdefault((match.class_name, match.flow), set())
        if ids & used:
            continue
        used |= ids
        kept.append(match)
    return sorted(kept, key=lambda m: m.span)


def _ast_value(expr: ast.expr):
    if isinstance(expr, ast.Constant):
        return Const(expr.value)
    if isinstance(expr, ast.UnaryOp) and isinstance(expr.op, ast.USub) and isinstance(expr.operand, ast.Constant):
        return Const(-expr.operand.value)
    text = ast.unparse(expr)
    return Ref("init:" + text, text)


def _keys(values) -> set[str]:
    return {v.key for v in values if isinstance(v, Ref)}


def _metadata_only(node: Node, keys) -> bool:
    """Does ``node`` read each of ``keys`` only through its metadata (``x.dtype``, ``x.shape``,
    ``x.size(-1)``)?  A value's dtype or shape is not its elements: code that reads only them
    after a match leaves the match's values free to be fused.  Only nodes whose operands the
    graph lists: a key passed as an operand itself (``x.to(x.dtype)``) is a read of its values."""
    if not (node.args or node.kwargs):
        return False
    if _size_read(node, keys) or _template_read(node, keys):
        return True
    operands = _keys(node.args) | _keys(v for _, v in node.kwargs)
    uses = node.uses
    return all(key not in operands and any(_reads_attribute(u, key) for u in uses) for key in keys)


def _size_read(node: Node, keys) -> bool:
    """Is ``node`` a read of one key's sizes (``w.shape[0]``, ``w.size(-1)``, ``w.dim()``), which
    the graph lowers to a method step on the key (``size(w, 0)``)?  Its result is an int, not
    the key's elements, so code that only sizes an intermediate after a match leaves the
    intermediate free to be fused: the receiver is the only tensor operand."""
    if node.kind != "method" or node.op not in _SIZE_METHODS or node.kwargs or len(keys) != 1:
        return False
    receiver, rest = node.args[0] if node.args else None, node.args[1:]
    return receiver.__class__ is Ref and receiver.key in keys and not any(v.__class__ is Ref for v in rest)


_SIZE_METHODS = frozenset({"size", "dim", "numel"})


def _template_read(node: Node, keys) -> bool:
    """Is ``node`` a cast of another tensor to the dtype (and device) of one key
    (``w.to(var)``, ``w.to(tensor=var)``, ``w.type_as(var)``)?  Tensor.to(other) and type_as read
    only the template's dtype and device, which a fused kernel's result shares, not its
    elements: RMSNorm's ``x * rsqrt(var + eps) * weight.to(var)`` uses the variance once as a
    value.  The key must be the template alone, never the receiver (``var.to(w)`` casts the
    variance's values), and the cast takes nothing else (``w.to(var, copy=True)`` is kept out
    only for simplicity)."""
    if node.kind != "method" or node.op not in _TEMPLATE_CASTS or len(keys) != 1:
        return False
    (key,) = keys
    receiver = node.args[0] if node.args else None
    if receiver.__class__ is not Ref or receiver.key == key:
        return False
    rest = node.args[1:]
    if node.kwargs:
        if rest or len(node.kwargs) != 1 or node.kwargs[0][0] != _TEMPLATE_CASTS[node.op]:
            return False
        template = node.kwargs[0][1]
    elif len(rest) == 1:
        template = rest[0]
    else:
        return False
    return template.__class__ is Ref and template.key == key


# the casts whose tensor argument is a template of dtype and device -> that argument's keyword
_TEMPLATE_CASTS = {"to": "tensor", "type_as": "other"}


def _reads_attribute(use: str, key: str) -> bool:
    """Is ``use`` a read of the metadata of ``key`` (``key.dtype``, ``key.shape[0]``)?  The
    graph keys such a read by its text after the key (``gate.dtype``), or, where the name holds
    a value keyed otherwise (an inlined helper's ``gate@1``), as ``gate@1|gate.dtype``."""
    if use.startswith(key + "|"):
        text = use[len(key) + 1:]
        root, dot, rest = text.partition(".")
        if not dot or not root.isidentifier():
            return False
    elif use.startswith(key + "."):
        rest = use[len(key) + 1:]
    else:
        return False
    end = 0
    while end < len(rest) and (rest[end].isalnum() or rest[end] == "_"):
        end += 1
    return rest[:end] in TENSOR_METADATA


def _home(flow: Flow, node: Node) -> str:
    """The function a step is written for: a helper that returns one step's result as it is
    (a ``_rotate_half`` method returning its ``torch.cat((-x2, x1), dim=-1)``) computes that step
    for its caller, so the step counts as the caller's."""
    nodes = flow.nodes
    if not node.outs or node.id + 1 >= len(nodes):
        return node.func
    after = nodes[node.id + 1]
    if not (after.kind == "copy" and after.func == node.func and after.args and isinstance(after.args[0], Ref)
            and after.args[0].key == node.outs[0].key and after.outs and after.outs[0].key.startswith("%")):
        return node.func
    helper = node.func.split(".")[-1]
    for prev in range(node.id - 1, -1, -1):
        marker = nodes[prev]
        if marker.func != node.func and marker.kind == "call" and not marker.outs \
                and marker.op.split(".")[-1] == helper:
            return marker.func
    return node.func


def _any_of_module(op: str, choice: str) -> bool:
    """A choice ``module.*`` (a class looked up in ``module`` by a run-time name,
    ``getattr(torch.optim, name)``) may be any class the module defines directly: ``op``."""
    if not choice.endswith(".*"):
        return False
    prefix = choice[:-1]
    return op.startswith(prefix) and "." not in op[len(prefix):]


def _rows_of_the_head_width(cls: ClassStructure, flow: Flow, state: _State) -> bool:
    """Are the shifted logits flattened (``view(-1, R)``/``reshape(-1, R)``, where the match has
    such a view) to rows of the head's own width: ``R`` the last size of one of the matched
    values (``shift_logits.size(-1)``), or the head's ``out_features`` itself (the same
    expression, ``self.a`` read as ``__init__``'s value: ``self.cfg.vocab_size`` beside
    ``nn.Linear(d, cfg.vocab_size)``)?  Rows of another size (a codebook's ``C`` of a Linear to
    ``n_q * C``) regroup each position's logits into several rows: the cross-entropy is then over
    classes the head's one matrix product does not give, no fused head-and-loss kernel's."""
    view = next((n for n in state.matched if n.kind == "method" and n.op in ("view", "reshape")
                 and len(n.args) == 3 and isinstance(n.args[1], Const) and n.args[1].value == -1), None)
    if view is None:
        return True
    rows = view.args[2]
    if not isinstance(rows, Ref):
        return False
    made = next((n for n in flow.nodes if rows in n.outs), None) if rows.key.startswith("%") else None
    if made is not None and made.op == "size":
        # ``x.size(-1)`` / ``x.shape[-1]`` of a value the match holds (the logits, their slice, a
        # copy): their last size, whatever it is
        mine = {out.key for n in state.matched for out in n.outs if isinstance(out, Ref)}
        return (made.kind == "method" and len(made.args) == 2 and isinstance(made.args[0], Ref)
                and made.args[0].key in mine and isinstance(made.args[1], Const) and made.args[1].value == -1)
    head = state.matched[0]
    attr = head.layer[5:] if head.kind == "layer" and head.layer and head.layer.startswith("self.") else None
    width = _linear_width(cls, attr) if attr is not None else None
    text = _span_text(cls.module.lines, view.arg_spans[2]) if len(view.arg_spans) == 3 else None
    if width is None or not text:
        return False
    try:
        written = ast.parse(text, mode="eval").body
    except SyntaxError:
        return False
    return _same_size(written, width, _self_values(cls.info) if cls.info is not None else {})


def _same_size(a: ast.expr, b: ast.expr, values: dict) -> bool:
    """Are two size expressions the same, ``self.a`` read as ``__init__``'s value, also inside
    arithmetic (``self.cfg.n_q * self.cfg.codebook_size`` beside ``cfg.n_q * cfg.codebook_size``)?"""
    if isinstance(a, ast.BinOp) and isinstance(b, ast.BinOp):
        return type(a.op) is type(b.op) and _same_size(a.left, b.left, values) and _same_size(a.right, b.right, values)
    return _size_text(a, values) == _size_text(b, values)


def _linear_width(cls: ClassStructure, attr: str) -> ast.expr | None:
    """The ``out_features`` expression of the one ``nn.Linear`` bound to ``self.<attr>``."""
    linears = [c for c in cls.bindings.get(attr, ()) if c.fqn == "torch.nn.Linear" and not c.table]
    if len(linears) != 1:
        return None
    ctor = linears[0]
    out = dict(ctor.kwargs).get("out_features")
    return ctor.args[1] if out is None and len(ctor.args) >= 2 else out


def _span_text(lines: list[str] | None, span: tuple | None) -> str | None:
    """The source of a one-line span (columns in bytes), or None."""
    if not lines or span is None or span[0] != span[2] or not 0 < span[0] <= len(lines):
        return None
    return lines[span[0] - 1].encode("utf-8")[span[1]:span[3]].decode("utf-8", "replace")
