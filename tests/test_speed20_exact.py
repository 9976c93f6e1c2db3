"""speed20: exact speed-ups of the matcher, each compared with the algorithm it replaces (written
out here as the old code was, or the new code with its saving turned off) on fixtures of ours
and near-misses, with the work each one skips counted (so each test fails on the old code)."""
import ast

import pytest

from adopter import match as match_mod
from adopter.dsl import Lit, Sym, Temp, Var, Wild, parse_pattern
from adopter.engine import analyze
from adopter.match import Matcher, _State, _ident, _keywords_fit, commutes, node_view
from adopter.ruleset import load_rules
from adopter.structure import Const, Ref
from adopter.structure.model import module_structure

# Attention with optional steps under ifs (guards), a bias, a mask, dropout; fused-qkv
# projections; dropout-add-LayerNorm; conv-BatchNorm.  Near-misses: probabilities that never
# meet the values, projections of three different inputs, a LayerNorm of something else.
SOURCE = '''
import math
import torch
import torch.nn.functional as F
from torch import nn


class Attention(nn.Module):
    def __init__(self, d, heads, bias=False):
        super().__init__()
        self.heads = heads
        self.use_bias = bias
        self.q = nn.Linear(d, d)
        self.k = nn.Linear(d, d)
        self.v = nn.Linear(d, d)
        self.drop = nn.Dropout(0.1)
        self.out = nn.Linear(d, d)
        self.norm = nn.LayerNorm(d)

    def forward(self, x, mask=None, rel=None):
        b, n, d = x.shape
        q = self.q(x).view(b, n, self.heads, -1).transpose(1, 2)
        k = self.k(x).view(b, n, self.heads, -1).transpose(1, 2)
        v = self.v(x).view(b, n, self.heads, -1).transpose(1, 2)
        scores = torch.matmul(q, k.transpose(-1, -2))
        if rel is not None:
            scores = scores + rel
        scores = scores / math.sqrt(q.size(-1))
        if mask is not None:
            scores = scores.masked_fill(mask == 0, float("-inf"))
        probs = F.softmax(scores.float(), dim=-1).type_as(scores)
        if self.training:
            probs = self.drop(probs)
        ctx = torch.matmul(probs, v).transpose(1, 2).reshape(b, n, d)
        return self.norm(x + self.drop(self.out(ctx)))


class NotAttention(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.a = nn.Linear(d, d)
        self.b = nn.Linear(d, d)
        self.c = nn.Linear(d, d)
        self.norm = nn.LayerNorm(d)
        self.drop = nn.Dropout(0.1)

    def forward(self, x, y, z):
        s = torch.matmul(self.a(x), self.b(y).transpose(-1, -2))
        p = s.softmax(dim=-1)
        if p.shape[0] > 1:
            p = p * 2
        h = self.c(z) + p.sum(-1, keepdim=True)
        return self.norm(h) + self.drop(h)


class Stem(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3)
        self.bn = nn.BatchNorm2d(8)
        self.other = nn.BatchNorm2d(8)

    def forward(self, x, y):
        h = self.bn(self.conv(x))
        return h + self.other(y)
'''


def _everything(text, rules):
    """Every finding, and every match's rule, class, flow, node ids, bindings, roles and
    constructors (where they are: their syntax nodes are new objects in each analysis)."""
    result = analyze(text, "m.py", rules)
    matches = [(rule.id, m.class_name, m.flow, tuple(n.id for n in m.nodes), repr(m.env), m.roles,
                tuple((name, c.attr, c.fqn, c.stmt, c.call) for name, c in m.ctors))
               for rule, m in result.matches]
    return [f.as_dict() for f in result.findings], matches


@pytest.fixture(scope="module")
def rules():
    return load_rules()


def test_fixture_reaches_the_forms(rules):
    findings, _ = _everything(SOURCE, rules)
    found = {(f["rule"], f["class"]) for f in findings}
    assert {("ADP010", "Attention"), ("ADP009", "Attention"), ("ADP005", "Attention"), ("ADP007", "Stem")} <= found
    assert ("ADP010", "NotAttention") not in found and ("ADP009", "NotAttention") not in found


# --- _bind_node: the tests on what the state already holds come before its copy -----------


def _old_bind_node(self, pnode, index, node, state):
    new = state.copy()
    if pnode.layer is not None:
        layer_ident = ("l", node.layer) if node.kind == "layer" else ("f", node.op)
        current = new.values.get(pnode.layer.name)
        if current is None:
            if layer_ident in new.values.values():
                return None
            new.values[pnode.layer.name] = layer_ident
            new.env[pnode.layer.name] = layer_ident[1]
        elif current != layer_ident:
            return None
    args, kwargs, _, _ = node_view(pnode, node)
    if commutes(pnode, self.commutative) and len(args) == 2:
        attempt = new.copy()
        if self._bind(pnode.args[0], args[0], attempt) and self._bind(pnode.args[1], args[1], attempt):
            new = attempt
        elif not (self._bind(pnode.args[0], args[1], new) and self._bind(pnode.args[1], args[0], new)):
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
    if not _keywords_fit(pnode, self._own_keywords(pnode, node, code_kwargs.keys())):
        return None
    outs = node.outs
    if pnode.outs:
        if len(pnode.outs) != len(outs):
            return None
        for pvalue, value in zip(pnode.outs, outs):
            if not self._bind(pvalue, value, new):
                return None
    out_vars = {o.name for o in pnode.outs if isinstance(o, Var)}
    overwritten = {("k", new.canon(o.key)) for o in outs}
    for name, ident in list(new.values.items()):
        if ident in overwritten and name not in out_vars:
            new.values[name] = ("stale", ident[1], index)
    if outs:
        new.values[f"%{index}"] = new.ident(outs[0]) if len(outs) == 1 else ("t", tuple(o.key for o in outs))
        new.env[f"%{index}"] = outs[0] if len(outs) == 1 else outs
    for out in outs:
        new.aliases.pop(out.key, None)
        new.produced.add(out.key)
    new.matched = state.matched + (node,)
    new.steps = state.steps + (index,)
    return new


def _contents(state):
    if state is None:
        return None
    return (state.env, state.values, state.aliases, state.guards, state.produced, state.matched, state.steps)


def test_bind_node_same_as_before_and_no_copy_when_a_bound_value_differs(monkeypatch, rules):
    expected = _everything(SOURCE, rules)
    real_bind_node = Matcher._bind_node
    real_copy = _State.copy
    copies = [0]
    calls = []  # (result is None, copies made by the new code in this call)

    def counting_copy(self):
        copies[0] += 1
        return real_copy(self)

    def both(self, pnode, index, node, state):
        before = copies[0]
        new = real_bind_node(self, pnode, index, node, state)
        made = copies[0] - before
        old = _old_bind_node(self, pnode, index, node, state)
        assert _contents(new) == _contents(old)
        calls.append((new is None, made))
        return new

    monkeypatch.setattr(_State, "copy", counting_copy)
    monkeypatch.setattr(Matcher, "_bind_node", both)
    # (speed6's _reach leaves out most states whose next step's input is not the bound value:
    # turned off, the calls counted below are those this test was written for)
    monkeypatch.setattr(Matcher, "_reach", lambda self, flow, *args: len(flow.nodes))
    assert _everything(SOURCE, rules) == expected
    failed = [made for none, made in calls if none]
    assert failed and calls
    # the old code copied the state on every call; now a step whose input is not the value an
    # earlier step bound fails before any copy
    assert failed.count(0) > len(failed) // 4


# --- _search: the absent optional steps' states made once per state ----------------------


def test_absent_states_made_once_per_state(monkeypatch, rules):
    absent_calls = [0]
    real_absent = Matcher._absent

    def counting(pnode, index, state):
        absent_calls[0] += 1
        return real_absent(pnode, index, state)

    monkeypatch.setattr(Matcher, "_absent", staticmethod(counting))
    # (speed4: the steps after the first of a run of absent ones are applied to the same copy)
    real_into = match_mod._absent_into

    def counting_into(pnode, index, state):
        absent_calls[0] += 1
        return real_into(pnode, index, state)

    monkeypatch.setattr(match_mod, "_absent_into", counting_into)
    # (speed30: the rest of a run is applied from per-step plans, one count per step applied)
    real_run = match_mod._absent_run

    def counting_run(plans, low, high, state):
        absent_calls[0] += high - low
        return real_run(plans, low, high, state)

    monkeypatch.setattr(match_mod, "_absent_run", counting_run)
    # (speed6's _reach leaves out the states that walk past every later reader; turned off here:
    # the states this test compares are those the chain cache was written for)
    monkeypatch.setattr(Matcher, "_reach", lambda self, flow, *args: len(flow.nodes))
    cached = _everything(SOURCE, rules)
    with_cache = absent_calls[0]
    absent_calls[0] = 0
    # the old algorithm: a new chain of absent states for every state popped (the slot
    # replaced by one that never keeps what is put in it)
    monkeypatch.setattr(_State, "_chain", property(lambda self: None, lambda self, value: None))
    assert _everything(SOURCE, rules) == cached
    assert with_cache < absent_calls[0]


# --- _search: a node's options looked through only when some step allows it --------------


def test_options_only_at_nodes_some_step_allows(monkeypatch, rules):
    binds = []
    real_bind_node = Matcher._bind_node

    def recording(self, pnode, index, node, state):
        binds.append((self.rule_id, self.variant, index, node.id))
        return real_bind_node(self, pnode, index, node, state)

    monkeypatch.setattr(Matcher, "_bind_node", recording)
    expected = _everything(SOURCE, rules)
    expected_binds, binds[:] = list(binds), []
    real = Matcher._feasibility
    skipped = [0]

    def every_node(self, flow):
        found = real(self, flow)
        if found is None:
            return None
        feasible, allowed, memo, anywhere = found
        skipped[0] += len(flow.nodes) - len(anywhere)
        return feasible, allowed, memo, frozenset(range(len(flow.nodes)))  # the old code: every node

    monkeypatch.setattr(Matcher, "_feasibility", every_node)
    assert _everything(SOURCE, rules) == expected
    assert binds == expected_binds  # the same steps tried at the same nodes, in the same order
    assert skipped[0] > 0


# --- _feasibility: a step's static candidates shared by matchers with that step ----------


def _old_static_ids(self, index, pnode, flow_index):
    ids = [node.id for node in self._op_candidates(pnode, flow_index) if self._static_ok(pnode, node)]
    return ids, frozenset(ids)


def test_static_candidates_cached_per_flow(monkeypatch, rules):
    tests = [0]
    real_ok = Matcher._static_ok

    def counting(self, pnode, node):
        tests[0] += 1
        return real_ok(self, pnode, node)

    monkeypatch.setattr(Matcher, "_static_ok", counting)
    cached = _everything(SOURCE, rules)
    with_cache = tests[0]
    tests[0] = 0
    monkeypatch.setattr(Matcher, "_static_ids", _old_static_ids)
    assert _everything(SOURCE, rules) == cached
    assert with_cache < tests[0]


LITERALS = '''
from mylib import f, g


def run(x):
    a = g(x)
    y = f(a, flag=True)
    b = g(y)
    return f(b, flag=1)
'''


@pytest.mark.parametrize("first", ["True", "1"])
def test_static_cache_tells_equal_literals_apart(first):
    # Lit(True) == Lit(1) (and hash alike), but a keyword written True is not one written 1:
    # two matchers whose steps differ only there must not share the cached candidates.
    other = "1" if first == "True" else "True"
    tree = ast.parse(LITERALS)
    structure = module_structure(tree, text=LITERALS)
    lines = {}
    for literal in (first, other):  # the same flow, the first matcher's candidates cached in it
        matcher = Matcher("T", parse_pattern(f"$a = mylib.g($x)\n$y = mylib.f($a, flag={literal})"), scope="file")
        lines[literal] = [m.nodes[-1].span[0] for m in matcher.match_module(structure)]
    assert lines == {"True": [7], "1": [9]}


# --- _bind: a variable tested first by its exact type ------------------------------------


def _old_bind(pvalue, value, state):
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
    if isinstance(pvalue, Var):
        ident = state.ident(value)
        current = state.values.get(pvalue.name)
        if current is None:
            state.values[pvalue.name] = ident
            state.env[pvalue.name] = value
            return True
        return current == ident
    return False


def _state(values=None, aliases=None):
    state = _State()
    state.values.update(values or {})
    state.aliases.update(aliases or {})
    return state


def test_bind_same_as_before_without_the_isinstance_chain(monkeypatch):
    matcher = Matcher("T", parse_pattern("$y = mylib.f($x)"), scope="file")
    values = [Ref("h", "h"), Ref("h@1", "h"), Const(1), Const(True), Const(None), "self.fc"]
    pvalues = [Var("x"), Var("y"), Temp(0), Lit(1), Lit(True), Sym("h"), Wild()]
    states = [lambda: _state(), lambda: _state({"x": ("k", "h")}), lambda: _state({"x": ("k", "g")}, {"h@1": "h"}),
              lambda: _state({"%0": ("k", "h")}, {"h@1": "h"}), lambda: _state({"x": _ident(Const(1))})]
    for pvalue in pvalues:
        for value in values:
            for make in states:
                new, old = make(), make()
                assert matcher._bind(pvalue, value, new) == _old_bind(pvalue, value, old)
                assert (new.values, new.env) == (old.values, old.env)
    counted = [0]

    def counting(obj, kinds):
        counted[0] += 1
        return isinstance(obj, kinds)

    monkeypatch.setattr(match_mod, "isinstance", counting, raising=False)
    assert matcher._bind(Var("x"), Ref("h", "h"), _state({"x": ("k", "h")}))
    assert counted[0] == 0  # the old chain made four isinstance tests, then state.ident a fifth


# --- match_module: the file keys' plain word groups made once per matcher ----------------


def test_file_key_groups_made_once(rules):
    from adopter.engine import matchers_for
    tree = ast.parse(SOURCE)
    structure = module_structure(tree, text=SOURCE)
    words = structure.root_words()
    checked = 0
    for rule in rules:
        for matcher in matchers_for(rule):
            old = []
            for key in matcher.file_keys:  # the old test, per call
                old.append(frozenset({key[1]}) if key[0] == "word" else (
                    frozenset(key[1]) if key[0] == "words" else
                    # (a size step's widest group, speed15: what any class may ask)
                    match_mod._size_groups(key[1])[1] if key[0] == "sizes" else structure.call_names(key[1])))
            new = [group if fqn is None else structure.call_names(fqn) for group, fqn in matcher._file_groups]
            assert new == old
            assert any(g.isdisjoint(words) for g in new) == any(g.isdisjoint(words) for g in old)
            checked += len(old)
    assert checked
