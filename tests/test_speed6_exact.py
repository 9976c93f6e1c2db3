"""speed6: exact savings in the matcher's search, each compared with the search without it on
fixtures of ours and near-misses, with the work it skips counted (so each test fails on the
engine before it)."""
import ast

import pytest

from adopter import match as match_mod
from adopter.engine import analyze, matchers_for
from adopter.match import Matcher, _absent_into
from adopter.ruleset import load_rules
from adopter.structure.model import module_structure

# Attention spelt so that the search meets states whose values are read later (or not): the
# whole chain with a long tail of other work after it, the scores read through a copy a few
# statements on, the probabilities read again through a name that copies them, the same
# scores computed again (a repeat), q/k/v of one input through a pure alias (ADP009), a
# dropout-add-LayerNorm after the attention.  Near-misses: scores overwritten before the
# softmax, probabilities that never meet the values, a softmax of something else.
SOURCE = '''
import math
import torch
import torch.nn.functional as F
from torch import nn


class Full(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.heads = heads
        self.q = nn.Linear(d, d)
        self.k = nn.Linear(d, d)
        self.v = nn.Linear(d, d)
        self.drop = nn.Dropout(0.1)
        self.out = nn.Linear(d, d)
        self.norm = nn.LayerNorm(d)

    def forward(self, x, mask=None, rel=None):
        b, n, d = x.shape
        h = x
        q = self.q(x).view(b, n, self.heads, -1).transpose(1, 2)
        k = self.k(h).view(b, n, self.heads, -1).transpose(1, 2)
        v = self.v(h).view(b, n, self.heads, -1).transpose(1, 2)
        scores = torch.matmul(q, k.transpose(-1, -2))
        if rel is not None:
            scores = scores + rel
        scores = scores / math.sqrt(q.size(-1))
        if mask is not None:
            scores = scores.masked_fill(mask == 0, float("-inf"))
        probs = F.softmax(scores.float(), dim=-1).type_as(scores)
        probs = self.drop(probs)
        ctx = torch.matmul(probs, v).transpose(1, 2).reshape(b, n, d)
        y = self.norm(x + self.drop(self.out(ctx)))
        y = y * 2
        y = y + 1
        y = y.relu()
        y = y.sigmoid()
        y = y - 3
        y = y.tanh()
        return y


class CopiedScores(nn.Module):
    def forward(self, q, k, v, t):
        scores = q @ k.transpose(-2, -1)
        w = scores
        t = t * 2
        t = t + 1
        t = t.relu()
        w = w / 8.0
        p = w.softmax(dim=-1)
        kept = p
        t = t.sigmoid()
        return kept @ v, t


class Recomputed(nn.Module):
    def forward(self, q, k, v):
        a = torch.matmul(q, k.transpose(-1, -2))
        b = torch.matmul(q, k.transpose(-1, -2))
        p = torch.softmax(a, dim=-1)
        o = torch.matmul(p, v)
        return o + b.sum()


class Overwritten(nn.Module):
    def forward(self, q, k, v, other):
        scores = q @ k.transpose(-2, -1)
        scores = other * 2
        p = F.softmax(scores, dim=-1)
        return p @ v


class NeverMeets(nn.Module):
    def forward(self, q, k, v):
        scores = q @ k.transpose(-2, -1)
        p = F.softmax(scores, dim=-1)
        o = v @ v.transpose(-2, -1)
        o = o * 2
        o = o + 1
        return o, p.sum()


class OtherSoftmax(nn.Module):
    def forward(self, q, k, v, z):
        scores = q @ k.transpose(-2, -1)
        p = F.softmax(z, dim=-1)
        scores = scores * 2
        return p @ v, scores
'''


@pytest.fixture(scope="module")
def rules():
    return load_rules()


def _everything(text, rules):
    """Every finding, and every match's rule, class, flow, node ids, bindings, roles and others."""
    result = analyze(text, "m.py", rules)
    matches = [(rule.id, m.class_name, m.flow, tuple(n.id for n in m.nodes), repr(m.env), m.roles,
                tuple(tuple(n.id for n in o.nodes) for o in m.others))
               for rule, m in result.matches]
    return [f.as_dict() for f in result.findings], matches


def _no_reach(self, flow, *args):
    """_reach turned off: every state may bind at any later node (the search before speed6)."""
    return len(flow.nodes)


def _counting(monkeypatch):
    """Count the states the searches pop (each pop reads feasible's memo first)."""
    counts = {"pops": 0, "binds": 0}
    bind = Matcher._bind_node

    def counted(self, pnode, index, node, state):
        counts["binds"] += 1
        return bind(self, pnode, index, node, state)

    monkeypatch.setattr(Matcher, "_bind_node", counted)
    real = Matcher._feasibility

    def feasibility(self, flow):
        found = real(self, flow)
        if found is None:
            return None
        feasible, allowed, memo, anywhere = found

        class Counted(dict):
            def get(self, key, default=None):
                counts["pops"] += 1
                return dict.get(self, key, default)

        counted_memo = Counted(memo)
        return feasible, allowed, counted_memo, anywhere

    monkeypatch.setattr(Matcher, "_feasibility", feasibility)
    return counts


def test_findings_and_matches_as_without_reach(rules, monkeypatch):
    """_reach leaves out only states that bind nothing more: every finding and match (and each
    match's others) is the one the search without it gives, in the same order."""
    new = _everything(SOURCE, rules)
    findings = {(f["rule"], f["class"]) for f in new[0]}
    # the fixture's positives are found, the near-misses are not
    assert {("ADP010", "Full"), ("ADP010", "CopiedScores"), ("ADP010", "Recomputed"), ("ADP009", "Full"),
            ("ADP005", "Full")} <= findings
    assert not {c for r, c in findings if r == "ADP010"} & {"Overwritten", "NeverMeets", "OtherSoftmax"}
    monkeypatch.setattr(Matcher, "_reach", _no_reach)
    assert _everything(SOURCE, rules) == new


def test_reach_searches_fewer_states(rules, monkeypatch):
    counts = _counting(monkeypatch)
    new = _everything(SOURCE, rules)
    with_reach = dict(counts)
    counts["pops"] = counts["binds"] = 0
    monkeypatch.setattr(Matcher, "_reach", _no_reach)
    assert _everything(SOURCE, rules) == new
    assert with_reach["pops"] < counts["pops"]
    assert with_reach["binds"] < counts["binds"]


def _recorded(rules, monkeypatch):
    """(matcher, flow, index, state, allowed, answer) of every _reach the fixture's analysis asks."""
    calls = []
    real = Matcher._reach

    def recording(self, flow, index, state, allowed, options_at):
        answer = real(self, flow, index, state, allowed, options_at)
        calls.append((self, flow, index, state, allowed, answer))
        return answer

    monkeypatch.setattr(Matcher, "_reach", recording)
    analyze(SOURCE, "m.py", rules)
    monkeypatch.setattr(Matcher, "_reach", real)
    return calls


def test_no_node_after_reach_binds_a_next_step(rules, monkeypatch):
    """The bound is a necessary condition: for every state the searches asked about, no node after
    the answer binds any step the state may bind next (the step itself, or a later one with the
    optional steps before it absent) -- tried with _bind_node itself on every such node."""
    calls = _recorded(rules, monkeypatch)
    assert len(calls) > 50
    tried = pruned = 0
    for matcher, flow, index, state, allowed, answer in calls:
        pattern = matcher.forward.nodes
        if answer < len(flow.nodes) - 1:
            pruned += 1
        j = index
        option = state
        while True:
            for node in flow.nodes[answer + 1:]:
                if node.id in allowed[j]:
                    tried += 1
                    assert matcher._bind_node(pattern[j], j, node, option) is None, (matcher.rule_id, j, node)
            if not pattern[j].optional or j + 1 >= len(pattern):
                break
            option = option.copy()
            _absent_into(pattern[j], j, option)
            j += 1
    assert pruned and tried


def test_reach_memo_keyed_by_the_bound_values(rules):
    """Two states at one step that bind the scores to different values get their own answers,
    whichever is asked first: the per-flow memo is keyed by what the state binds, the answer kept
    on a state by its step (and dropped by a copy)."""
    tree = ast.parse(SOURCE)
    structure = module_structure(tree, text=SOURCE)
    cls = structure.classes["CopiedScores"]
    flow = cls.flow(cls.roots[0])
    rule = next(r for r in rules if r.id == "ADP010")
    matcher = matchers_for(rule)[0]
    _, allowed, _, _ = matcher._feasibility(flow)
    product = next(n for n in flow.nodes if n.kind in ("op", "call", "method") and n.canon == "torch.matmul")
    state = matcher._bind_node(matcher.forward.nodes[0], 0, product, match_mod._State())
    assert state is not None
    other = state.copy()
    key = state.values["s0"][1]
    # the same step's state with the scores bound to a value nothing later reads (``t``)
    t_key = next(n.outs[0].key for n in flow.nodes if n.outs and n.outs[0].text == "t")
    other.values["s0"] = ("k", t_key)
    other.env["s0"] = None
    answers = []
    for order in ((state, other), (other, state)):
        options_at = {}
        fresh = [s.copy() for s in order]  # (a copy keeps no answer)
        assert all(s._reach is None for s in fresh)
        answers.append([matcher._reach(flow, 1, s, allowed, options_at) for s in fresh])
        assert [s._reach for s in fresh] == [(1, a) for a in answers[-1]]
    assert answers[0] == answers[1][::-1]
    read, unread = answers[0]
    assert read > product.id  # the scores are read later (through the copy ``w``)
    assert unread < read
    assert key != t_key
    # a state asked at another step is answered again, not from what it keeps
    again = state.copy()
    first = matcher._reach(flow, 1, again, allowed, {})
    assert again._reach == (1, first)
    last = len(matcher.forward.nodes) - 1
    matcher._reach(flow, last, again, allowed, {})
    assert again._reach[0] == last


def test_shared_tables_as_each_matcher_would_make_them(rules):
    """The per-flow tables shared by the matchers with one step (the first step's starts, the
    last-reader tables of _reach) are, for every matcher of every rule on every flow of the
    fixture, what that matcher makes alone: a table keyed too coarsely would hand some matcher
    another's nodes."""
    tree = ast.parse(SOURCE)
    structure = module_structure(tree, text=SOURCE)
    compared = {"starts": 0, "readers": 0}
    for cls in structure.classes.values():
        for root in cls.roots:
            flow = cls.flow(root)
            for rule in rules:
                for matcher in matchers_for(rule):
                    pruning = matcher._feasibility(flow)
                    if pruning is None:
                        continue
                    list(matcher.match_flow(cls, flow))  # (fills the shared tables)
                    allowed = pruning[1]
                    static = match_mod._index(flow).static
                    pattern = matcher.forward.nodes
                    for index in ((0, 1) if pattern[0].optional else (0,)):
                        if pattern[index].canonical:
                            continue
                        alone = [node for kind in matcher._kinds(pattern[index])
                                 for node in match_mod._index(flow).kinds.get(kind, ())
                                 if matcher._op_ok(pattern[index], node)]
                        assert static[("starts", matcher._static_keys[index])][1] == alone
                        compared["starts"] += 1
                    for j in range(1, len(pattern)):
                        table = matcher._last_readers(flow, j, allowed)
                        assert table[None] == matcher._readers(flow, j, allowed)
                        for key, last in table.items():
                            if key is not None:
                                ids = [i for k in match_mod._copy_closure(flow, key) for i in table[None].get(k, ())]
                                assert last == max(ids, default=-1)
                        compared["readers"] += 1
    assert compared["starts"] > 20 and compared["readers"] > 50
