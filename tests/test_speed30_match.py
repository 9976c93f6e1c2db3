"""speed30 (session 42): exact cuts in the matcher's search (adopter/match.py).

1. A run of absent optional steps is applied from per-step plans (``_absent_run``): the same
   state as one ``_absent_into`` per step.
2. The search's visited states are kept by place (``_first_visit``): a state's memo (frozensets
   of every binding) is built only past eight different states at one place; before, every
   state the search visited built one.  The answers are those of a set of (place, memo) pairs,
   a state that differs only in a guard or an alias included (the look-alike that must not be
   dropped as seen).
3. A commutative step whose first order of arguments fails tries the second in the same copy,
   what the first order bound undone (``_forget_bound``): one copy where there were two, the
   same state, its entries in the same order.

The fixtures are ours.
"""

from __future__ import annotations

import ast
import textwrap

from adopter import match as match_mod
from adopter.dsl import parse_pattern
from adopter.engine import analyze, matchers_for
from adopter.match import Matcher, _absent_into, _absent_run, _first_visit, _State
from adopter.ruleset import load_rules
from adopter.structure.model import module_structure

SOURCE = textwrap.dedent('''
    import math
    import torch
    import torch.nn as nn
    import torch.nn.functional as F


    class Attention(nn.Module):
        def __init__(self, dim, heads):
            super().__init__()
            self.heads = heads
            self.qkv = nn.Linear(dim, dim * 3)
            self.out = nn.Linear(dim, dim)
            self.drop = nn.Dropout(0.1)

        def forward(self, x, mask):
            b, n, c = x.shape
            q, k, v = self.qkv(x).chunk(3, dim=-1)
            q = q.view(b, n, self.heads, -1).transpose(1, 2)
            k = k.view(b, n, self.heads, -1).transpose(1, 2)
            v = v.view(b, n, self.heads, -1).transpose(1, 2)
            scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(q.size(-1))
            scores = scores + mask
            probs = self.drop(F.softmax(scores, dim=-1))
            return self.out(torch.matmul(probs, v).transpose(1, 2).reshape(b, n, c))


    class Add(nn.Module):
        def forward(self, q, k, mask):
            scores = torch.matmul(q, k)
            return scores + mask
''')


def _structure():
    return module_structure(ast.parse(SOURCE), None, SOURCE, "fixture.py")


def _sdpa_first():
    rule = next(r for r in load_rules() if r.id == "ADP010")
    return next(m for m in matchers_for(rule) if m.alternative == 0 and m.variant == 0)


# -- 1. absent runs from plans ----------------------------------------------------------------

def test_absent_run_is_the_chain_of_absent_into():
    matcher = _sdpa_first()
    pattern = matcher.forward.nodes
    softmax = next(i for i, p in enumerate(pattern) if "softmax" in p.op and not p.optional)
    start = _State()
    start.values.update({"q": ("k", "q"), "kt": ("k", "kt"), "s0": ("k", "s"), "%0": ("k", "s")})
    start.env.update({"q": "Q", "kt": "K", "s0": "S", "%0": "S"})
    for low in range(1, softmax):
        for high in range(low + 1, softmax + 1):
            chained, planned = start.copy(), start.copy()
            for i in range(low, high):
                _absent_into(pattern[i], i, chained)
            _absent_run(matcher._absent_plans, low, high, planned)
            assert (list(planned.values.items()), list(planned.env.items())) == \
                (list(chained.values.items()), list(chained.env.items()))
    # steps 1..softmax-1 absent: the softmax's input stands for the scores
    whole = start.copy()
    _absent_run(matcher._absent_plans, 1, softmax, whole)
    assert whole.values[pattern[softmax].args[0].name] == ("k", "s")


# -- 2. visited states by place ---------------------------------------------------------------

def _state(values, aliases=None, guards=None):
    state = _State()
    state.values.update(values)
    state.aliases.update(aliases or {})
    state.guards.update(guards or {})
    return state


def test_first_visit_answers_as_the_set_of_place_and_memo():
    # ten different states at each of two places (value i % 10, a guard when i % 4 == 0)
    states = [_state({"x": ("k", f"v{i % 10}")}, guards={"flag": True} if i % 4 == 0 else None)
              for i in range(60)]
    # the look-alikes: the same bindings with an alias, or with the other side of a guard
    states += [_state({"x": ("k", "v1")}, aliases={"y": "v1"}), _state({"x": ("k", "v1")}, guards={"flag": False})]
    places = [(i % 2, 1) for i in range(len(states))] + [(5, 1, 0), (5, 1, 4)]
    states += [_state({"x": ("k", "v1")}), _state({"x": ("k", "v1")})]
    seen, reference = {}, set()
    answers = []
    for place, state in zip(places, states):
        expected = (place, state.memo()) not in reference
        reference.add((place, state.memo()))
        fresh = _state(dict(state.values), dict(state.aliases), dict(state.guards))  # (no memo built)
        answers.append(_first_visit(seen, place, fresh))
        assert answers[-1] == expected
    assert True in answers and False in answers
    assert any(type(v) is set for v in seen.values())  # (past eight states at a place: memos)


def test_few_states_at_a_place_build_no_memo(monkeypatch):
    built = []
    real = _State.memo
    monkeypatch.setattr(_State, "memo", lambda self: built.append(1) or real(self))
    visits = []
    real_visit = match_mod._first_visit
    monkeypatch.setattr(match_mod, "_first_visit", lambda *a: visits.append(1) or real_visit(*a))
    result = analyze(SOURCE, "fixture.py", load_rules())
    assert [f.rule for f in result.findings if f.rule == "ADP010"] == ["ADP010"]
    # every visited state built its memo before; here no place holds more than a few
    assert len(visits) > 5 and len(built) == 0


# -- 3. a commutative step's second order in the same copy ------------------------------------

def _old_swap_bind(matcher, pnode, args, new):
    attempt = new.copy()
    if matcher._bind(pnode.args[0], args[0], attempt) and matcher._bind(pnode.args[1], args[1], attempt):
        return attempt
    if matcher._bind(pnode.args[0], args[1], new) and matcher._bind(pnode.args[1], args[0], new):
        return new
    return None


def test_commutative_second_order_in_one_copy(monkeypatch):
    cls = _structure().classes["Add"]
    flow = cls.flow("forward")
    matcher = Matcher("T", parse_pattern("$s = torch.matmul($q, $k)\n$y = $m + $s"), scope="file")
    matcher._repeats = flow.repeats
    product = next(n for n in flow.nodes if n.kind == "call" and "matmul" in n.op)
    add = next(n for n in flow.nodes if n.kind == "op" and n.op == "+")
    first = matcher._bind_node(matcher.forward.nodes[0], 0, product, _State())
    # `scores + mask` against `$m + $s`: the first order binds $m to the scores, then fails
    # on $s; the second binds $m to the mask
    copies = []
    real_copy = _State.copy
    monkeypatch.setattr(_State, "copy", lambda self: copies.append(1) or real_copy(self))
    bound = matcher._bind_node(matcher.forward.nodes[1], 1, add, first)
    assert len(copies) == 1
    monkeypatch.setattr(_State, "copy", real_copy)
    assert bound.values["m"] == ("k", add.args[1].key) and bound.values["s"] == first.values["s"]
    old = _old_swap_bind(matcher, matcher.forward.nodes[1], add.args, first.copy())
    assert list(old.values.items()) == [item for item in bound.values.items() if item[0] in old.values]
    assert list(old.env.items()) == [item for item in bound.env.items() if item[0] in old.env]
    # the look-alike whose operands are both other values: no binding
    other = Matcher("T", parse_pattern("$s = torch.matmul($q, $k)\n$y = $s + $s"), scope="file")
    other._repeats = flow.repeats
    start = other._bind_node(other.forward.nodes[0], 0, product, _State())
    assert other._bind_node(other.forward.nodes[1], 1, add, start) is None
    assert len(list(matcher.match_flow(cls, flow))) == 1
