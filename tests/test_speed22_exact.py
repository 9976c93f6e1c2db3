"""speed22: exact speed-ups, each compared with the algorithm it replaces (written out here as
the old code was) on fixtures of ours and near-misses, and, where the change skips work, that
work counted (so the test fails on the old code).

1. ``Matcher._search`` decides in place that a gap node whose assignments touch no bound
   value, with no aliases in the state, leaves the state as it is (``_skip``'s answer then).
2. Order-free scans of syntax trees (``any`` over a predicate, a set of names) walk with
   ``graph.walk`` (the same nodes less the ctx/operator singletons, none of which the
   predicates test) instead of ``ast.walk``.
3. ``_weight_given_heads`` walks a method in ``ast.walk``'s order only when it assigns some
   ``<x>.weight`` (what it reads first of every statement).
"""
import ast
from pathlib import Path

from adopter import match as match_mod
from adopter.engine import analyze
from adopter.ruleset import load_rules
from adopter.structure import graph as graph_mod
from adopter.structure import layers as layers_mod
from adopter.structure import model as model_mod
from adopter.structure.bindings import bind_class, collect_class
from adopter.structure.canon import LEAD_SLICE, slices_two_leading
from adopter.structure.layers import LayerTyper
from adopter.structure.names import collect_names

ROOT = Path(__file__).resolve().parents[1]

ATTENTION = '''
import math
import torch
import torch.nn.functional as F
from torch import nn


class Attention(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)
        self.drop = nn.Dropout(0.1)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x, mask=None):
        b, n, c = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        scale = 1.0 / math.sqrt(q.shape[-1])
        other = x.mean(dim=1)
        scores = torch.matmul(q, k.transpose(-2, -1)) * scale
        count = other.sum()
        if mask is not None:
            scores = scores.masked_fill(mask == 0, float("-inf"))
        tmp = count + 1
        weights = F.softmax(scores, dim=-1)
        weights = self.drop(weights)
        alias = weights
        out = torch.matmul(alias, v)
        out = out.transpose(1, 2).reshape(b, n, c)
        return self.proj(out), tmp


class Mlp(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.fc1 = nn.Linear(dim, dim * 4)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(dim * 4, dim)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x):
        h = self.norm(x)
        y = self.fc1(h)
        z = x * 2
        y = self.act(y)
        return self.fc2(y) + z


class Overwrites(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.fc1 = nn.Linear(dim, dim)
        self.act = nn.GELU()

    def forward(self, x):
        y = self.fc1(x)
        x = x + 1
        y = y * 1
        return self.act(y) + x
'''


# -- 1. the gap test of Matcher._search ------------------------------------------------------

def _fast(node, state, live: bool) -> bool:
    """The search's in-place test (as in match.py): True when it keeps ``state`` unasked."""
    return (node.kind not in ("exit", "copy") and not (state.produced and not live) and bool(node.defs)
            and not state.aliases and node.defs.isdisjoint(state.bound_keys()))


def test_the_in_place_gap_test_gives_what_skip_gives(monkeypatch):
    """Every state the search binds on the fixtures, against every node of the flows: where the
    in-place test holds, ``_skip`` returns the state itself."""
    seen = []
    real_bind = match_mod.Matcher._bind_node

    def bind(self, pnode, index, node, state):
        out = real_bind(self, pnode, index, node, state)
        if out is not None:
            seen.append((self, out, index))
        return out

    flows = []
    real_flow = model_mod.ClassStructure.flow

    def flow(self, root):
        out = real_flow(self, root)
        flows.append(out)
        return out

    monkeypatch.setattr(match_mod.Matcher, "_bind_node", bind)
    monkeypatch.setattr(model_mod.ClassStructure, "flow", flow)
    analyze(ATTENTION, "fixture.py", load_rules())
    assert seen and flows
    tested = held = 0
    for matcher, state, index in seen[:400]:
        for flow in flows:
            for node in flow.nodes:
                tested += 1
                if _fast(node, state, matcher.live_intermediates):
                    held += 1
                    assert matcher._skip(node, state, index) is state
    assert held > 50 and tested > held


def test_the_search_asks_skip_less(monkeypatch):
    """The work skipped: on the old code every gap node that assigns something went through
    ``_skip``; now the ones the in-place test settles do not."""
    calls = []
    real = match_mod.Matcher._skip

    def counted(self, node, state, index=0):
        calls.append((_fast(node, state, self.live_intermediates)))
        return real(self, node, state, index)

    monkeypatch.setattr(match_mod.Matcher, "_skip", counted)
    analyze(ATTENTION, "fixture.py", load_rules())
    assert calls  # (some gap nodes still need it: a copy, an overwritten bound value)
    assert not any(calls)


# -- 2. graph.walk for order-free scans ----------------------------------------------------

_SINGLETONS = (ast.expr_context, ast.operator, ast.boolop, ast.unaryop, ast.cmpop)


def _sources():
    files = sorted((ROOT / "adopter").rglob("*.py")) + sorted((ROOT / "tests").glob("test_*.py"))[:60]
    yield ATTENTION
    for path in files:
        yield path.read_text()


def test_graph_walk_yields_ast_walks_nodes_less_the_singletons():
    """What the replaced scans rely on: the same nodes as ast.walk (by identity), less the
    ctx/operator singletons, which none of them tests (they test Name, Attribute, keyword,
    Call, BinOp -- reading its ``op`` attribute, not a walked node --, Constant, Assign)."""
    count = 0
    for text in _sources():
        tree = ast.parse(text)
        for top in [tree, *tree.body]:
            old = {id(n) for n in ast.walk(top) if not isinstance(n, _SINGLETONS)}
            new = [n for n in graph_mod.walk(top) if not isinstance(n, _SINGLETONS)]
            assert len(new) == len({id(n) for n in new})
            assert {id(n) for n in new} == old
            count += len(new)
    assert count > 100_000


def _old_twice(node) -> bool:
    """``<x> * 2`` / ``2 * <x>``, written here (not model's helper) so the reference cannot follow it."""
    return isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult) and any(
        isinstance(side, ast.Constant) and side.value == 2 and type(side.value) is int
        for side in (node.left, node.right))


def _old_mentions(func):
    """model._mentions without the file's lines, as it was (ast.walk), with the LEAD_SLICE pseudo-word
    added since (research36), SPLIT_SHAPE (misses40: a starred subscript, x.reshape(*x.shape[:2], ...))
    and NEG_PAIR also for an assignment of a negated name (research54)."""
    words = set()
    seq_arg = floor_div = ellipsis = neg_assign = False
    for node in ast.walk(func):
        if isinstance(node, ast.Attribute):
            words.add(node.attr)
        elif isinstance(node, ast.Name):
            words.add(node.id)
        elif isinstance(node, ast.keyword) and node.arg:
            words.add(node.arg)
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], (ast.Tuple, ast.List)):
            seq_arg = True
            if node.args[0].elts and isinstance(node.args[0].elts[0], ast.UnaryOp) \
                    and isinstance(node.args[0].elts[0].op, ast.USub):
                words.add(model_mod.NEG_PAIR)
        elif isinstance(node, ast.Assign) and isinstance(node.value, ast.UnaryOp) \
                and isinstance(node.value.op, ast.USub) and isinstance(node.value.operand, ast.Subscript):
            neg_assign = True  # research54: x1 = -x[..., h:], then cat((x1, x2), -1)
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.FloorDiv):
            floor_div = True
        elif node.__class__ is ast.Slice and (_old_twice(node.lower) or _old_twice(node.upper)):
            floor_div = True  # (``x[..., d : d * 2]``: a rotary prefix's end, misses49's partial_rope)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                and node.func.attr in ("view", "reshape") and len(node.args) >= 3 \
                and isinstance(node.args[-2], ast.Constant) and node.args[-2].value == 2:
            words.add("chunk")
        elif isinstance(node, ast.Constant) and node.value is Ellipsis:
            ellipsis = True
        elif isinstance(node, ast.Subscript) and slices_two_leading(node):
            words.add(LEAD_SLICE)  # research36's pseudo-word for canon.lead2 (x[:, 1:], x[:-1])
        elif isinstance(node, ast.Starred) and isinstance(node.value, ast.Subscript):
            words.add(model_mod.SPLIT_SHAPE)  # misses40's pre-filter word for canon.split_member
    if seq_arg and ((floor_div and ellipsis) or not words.isdisjoint(model_mod._HALVES)):
        words.add(model_mod.HALF_PAIR)
    if seq_arg and neg_assign:
        words.add(model_mod.NEG_PAIR)
    if "split" in words or "tensor_split" in words:  # (hf36: tensor_split halves)
        words.add("chunk")
    return frozenset(words)


HALVES = '''
import torch
def rot(x):
    a, b = x[..., : x.shape[-1] // 2], x[..., x.shape[-1] // 2 :]
    return torch.cat((-b, a), dim=-1)
def pairs(x):
    return x.view(x.shape[0], x.shape[1], 2, -1).split(1, dim=2)
def plain(x, *, key=None):
    return torch.stack([x, x], dim=0) + x @ x
'''


def test_mentions_without_lines_unchanged():
    for text in [HALVES, *_sources()]:
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                assert model_mod._mentions(node, None) == _old_mentions(node)


# -- 3. _weight_given_heads reads only methods that assign a weight ---------------------------

def _old_weight_given_heads(infos):
    """layers._weight_given_heads as it was: every method walked."""
    found = {}
    for name, info in infos.items():
        init = info.methods.get("__init__")
        inner = (layers_mod._returned_attr(info) or (None, 1))
        if init is None or inner[0] is None or inner[1] is not None \
                or not any(layers_mod.names_match(layers_mod.LINEAR, c.fqn) and not c.table
                           for c in info.bindings.get(inner[0], ())):
            continue
        init_params = [a.arg for a in init.args.posonlyargs + init.args.args][1:]
        for method_name, method in info.methods.items():
            params = [a.arg for a in method.args.posonlyargs + method.args.args][1:]
            for stmt in ast.walk(method):
                if not (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1
                        and isinstance(stmt.targets[0], ast.Attribute) and stmt.targets[0].attr == "weight"
                        and layers_mod._is_own(stmt.targets[0].value, inner[0])
                        and isinstance(stmt.value, ast.Name) and stmt.value.id in params):
                    continue
                given = stmt.value.id
                if method is not init:
                    position = params.index(given)
                    passed = {c.args[position].id if position < len(c.args) and isinstance(c.args[position], ast.Name)
                              else None
                              for c in ast.walk(init) if isinstance(c, ast.Call) and layers_mod._is_own(c.func, method_name)}
                    given = passed.pop() if len(passed) == 1 else None
                if given in init_params:
                    found[name] = init_params.index(given)
    return found


HEADS = '''
from torch import nn


class InInit(nn.Module):
    def __init__(self, width, weights):
        super().__init__()
        self.decoder = nn.Linear(width, 10, bias=False)
        self.decoder.weight = weights

    def forward(self, h):
        return self.decoder(h)


class ViaMethod(nn.Module):
    def __init__(self, weights, width):
        super().__init__()
        self.tie(weights)

    def tie(self, weights):
        self.decoder = nn.Linear(3, 4, bias=False)
        self.decoder.weight = weights

    def forward(self, h):
        return self.decoder(h)


class Twice(nn.Module):
    def __init__(self, first, second):
        super().__init__()
        self.decoder = nn.Linear(3, 4, bias=False)
        if first is not None:
            self.decoder.weight = first
        self.retie(second)

    def retie(self, second):
        self.decoder.weight = second

    def forward(self, h):
        return self.decoder(h)


class Nested(nn.Module):
    def __init__(self, a, b):
        super().__init__()
        self.decoder = nn.Linear(3, 4, bias=False)
        for _ in range(1):
            if a:
                self.decoder.weight = b
        self.decoder.weight = a

    def forward(self, h):
        return self.decoder(h)


class BiasOnly(nn.Module):
    def __init__(self, bias):
        super().__init__()
        self.decoder = nn.Linear(3, 4)
        self.decoder.bias = bias

    def forward(self, h):
        return self.decoder(h)


class Wrapped(nn.Module):
    def __init__(self, weights):
        super().__init__()
        self.decoder = nn.Linear(3, 4)
        self.decoder.weight = nn.Parameter(weights)
        self.decoder.weight, self.other = weights, weights

    def forward(self, h):
        return self.decoder(h)


class OtherAttr(nn.Module):
    def __init__(self, weights):
        super().__init__()
        self.decoder = nn.Linear(3, 4)
        self.proj = nn.Linear(3, 4)
        self.proj.weight = weights

    def forward(self, h):
        return self.decoder(h)
'''


def _infos(text):
    tree = ast.parse(text)
    names = collect_names(tree)
    infos = {name: collect_class(node, names) for name, node in names.classes.items()}
    typer = LayerTyper(names, tree)
    for info in infos.values():
        bind_class(info, infos, names, typer)
    return infos


def test_weight_given_heads_unchanged():
    fixtures = [HEADS, *_sources()]
    heads = 0
    for text in fixtures:
        infos = _infos(text)
        new = layers_mod._weight_given_heads(infos)
        assert new == _old_weight_given_heads(infos)
        heads += len(new)
    # (Nested: ast.walk's breadth-first order meets the loop's assignment last, and the last one
    # met is kept -- why that walk keeps ast.walk's order)
    assert layers_mod._weight_given_heads(_infos(HEADS)) == {"InInit": 1, "ViaMethod": 0, "Twice": 1, "Nested": 1}
    assert heads >= 4


def test_weight_given_heads_walks_only_methods_that_assign_a_weight(monkeypatch):
    """The work skipped: on the old code every method of a class returning a Linear was
    walked with ast.walk (here: the forwards and BiasOnly's/OtherAttr's __init__ too)."""
    infos = _infos(HEADS)
    walked = []
    real = layers_mod.ast_walk  # (ast.walk's nodes in its order: treewalk.ast_walk, session 26)

    def counted(node):
        walked.append(getattr(node, "name", None))
        return real(node)

    monkeypatch.setattr(layers_mod, "ast_walk", counted)
    layers_mod._weight_given_heads(infos)
    assert walked and "forward" not in walked


# -- 4. a canonical first step's starting nodes, listed once per flow and operation ----------

def _flows_and_matchers(monkeypatch, source):
    flows, matchers = [], set()
    real_flow = model_mod.ClassStructure.flow
    real_match = match_mod.Matcher.match_flow

    def flow(self, root):
        out = real_flow(self, root)
        flows.append(out)
        return out

    def match_flow(self, cls, flow, found=()):
        matchers.add(self)
        return real_match(self, cls, flow, found)

    monkeypatch.setattr(model_mod.ClassStructure, "flow", flow)
    monkeypatch.setattr(match_mod.Matcher, "match_flow", match_flow)
    analyze(source, "fixture.py", load_rules())
    monkeypatch.undo()
    return flows, matchers


def test_canonical_first_step_starts_are_the_old_loops(monkeypatch):
    flows, matchers = _flows_and_matchers(monkeypatch, ATTENTION + HALVES)
    compared = 0
    for matcher in matchers:
        for first in matcher.forward.nodes[:2]:
            if not first.canonical:
                continue
            for flow in flows:
                by_kind = match_mod._index(flow).kinds
                old = [node for kind in ("call", "layer", "method", "op") for node in by_kind.get(kind, ())
                       if matcher._op_ok(first, node)]
                assert match_mod._index(flow).computing(first.op) == old
                compared += bool(old)
    assert compared > 5


def test_canonical_first_step_not_tested_node_by_node(monkeypatch):
    """The work skipped: on the old code match_flow called _op_ok on every node of the four
    kinds for each matcher with a canonical first step."""
    flows, matchers = _flows_and_matchers(monkeypatch, ATTENTION)
    canonical = [m for m in matchers if m.forward.nodes[0].canonical]
    assert canonical
    asked = []
    real = match_mod.Matcher._op_ok

    def counted(self, pnode, node):
        asked.append(pnode)
        return real(self, pnode, node)

    monkeypatch.setattr(match_mod.Matcher, "_op_ok", counted)
    cls = next(iter(model_mod.module_structure(ast.parse(ATTENTION), None, ATTENTION).classes.values()))
    for matcher in canonical:
        first = matcher.forward.nodes[0]
        for flow in flows:
            list(matcher.match_flow(cls, flow))
            assert not any(p is first for p in asked)


# -- 5. _candidate_roots of a one-root class: no list per word group ------------------------

def test_candidate_roots_unchanged_for_one_and_many_roots():
    """The cached answer (one-root classes tested in place) against the old filter, written
    out without a cache, for every matcher on classes with one root and with several."""
    from tests.test_speed19_exact import ROOTS, _old_candidate_roots
    from adopter.engine import matchers_for

    matchers = [m for rule in load_rules() for m in matchers_for(rule)]
    sizes = set()
    found = 0
    for source in (ATTENTION, ROOTS, HEADS, ATTENTION.replace("def forward(self, x):", "def forward(self, x):\n        return x\n\n    def extra(self, x):")):
        reference = model_mod.module_structure(ast.parse(source), None, source, "m.py")
        structure = model_mod.module_structure(ast.parse(source), None, source, "m.py")
        for name, cls in structure.classes.items():
            sizes.add(len(cls.roots))
            for matcher in matchers:
                got = matcher._candidate_roots(cls, structure)
                assert got == _old_candidate_roots(matcher, reference.classes[name], reference), (name, matcher.rule_id)
                assert matcher._candidate_roots(cls, structure) == got  # (the cached answer)
                found += bool(got)
    assert {1} < sizes and found > 10


# -- 6. FlowBuilder._uses_of without a generator per node ---------------------------------

def _old_uses_of(self, expr, ctx):
    """FlowBuilder._uses_of as it was (graph.walk)."""
    keys = set()
    for sub in graph_mod.walk(expr):
        if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Load):
            if ctx.chunked and sub.id in ctx.chunked:
                keys.update(ctx.chunked[sub.id])
                continue
            name = sub.id
            if name in ctx.params:
                value = ctx.params[name]
                if isinstance(value, graph_mod.Ref):
                    keys.add(value.key)
            else:
                keys.add(name if ctx.instance == 0 else f"{name}@{ctx.instance}")
        elif isinstance(sub, ast.Attribute) and isinstance(sub.value, ast.Name) and sub.value.id == "self":
            keys.add("self." + sub.attr)
    return frozenset(keys)


CHUNKS = '''
import torch
from torch import nn


def helper(a, b, scale=2.0):
    return torch.softmax(a @ b.transpose(-1, -2) * scale, dim=-1) @ b


class Mixer(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.fc = nn.Linear(d, d * 2)
        self.out = nn.Linear(d, d)

    def forward(self, x, y=None):
        a, b = self.fc(x).chunk(2, dim=-1)
        c = helper(a, b) + self.fc.weight.sum() + {k: v for k, v in [(a, b)]}[a]
        d = [t * 2 for t in (a, b) if t is not None][0] + (lambda z: z + y)(c)
        return self.out(d + c[..., ::2].mean() if y is None else x.view(*x.shape))
'''


def test_uses_of_unchanged(monkeypatch):
    compared = []
    real = graph_mod.FlowBuilder._uses_of

    def both(self, expr, ctx):
        new = real(self, expr, ctx)
        assert new == _old_uses_of(self, expr, ctx)
        compared.append(new)
        return new

    monkeypatch.setattr(graph_mod.FlowBuilder, "_uses_of", both)
    for source in (ATTENTION, CHUNKS, HALVES, HEADS):
        analyze(source, "fixture.py", load_rules())
    assert len(compared) > 10 and any(len(k) > 1 for k in compared)


def test_uses_of_makes_no_walk(monkeypatch):
    """The work skipped: on the old code every _uses_of call walked its expression through
    graph.walk's generator."""
    inside = []
    walked = []
    real = graph_mod.walk
    monkeypatch.setattr(graph_mod, "walk", lambda node: walked.append(bool(inside)) or real(node))
    real_uses = graph_mod.FlowBuilder._uses_of

    def uses(self, expr, ctx):
        inside.append(expr)
        try:
            return real_uses(self, expr, ctx)
        finally:
            inside.pop()

    monkeypatch.setattr(graph_mod.FlowBuilder, "_uses_of", uses)
    analyze(CHUNKS, "fixture.py", load_rules())
    assert walked and not any(walked)
