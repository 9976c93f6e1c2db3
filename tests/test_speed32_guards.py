"""speed32 (session 43): the search records an ``if`` test a state took only while some later
edge still asks it (adopter/match.py, ``_guards_tested``).

Ways through a run of ``if``s that rejoin (T5's position-bias branches between its scores and
its softmax) were each a copy of the state that differed only in the tests taken, so every way
walked the rest of the forward on its own.  A test no later edge asks (and, for a rule with
``setting_paths``, no settings test, which ``_finish`` reads) is no longer recorded: the ways
meet as one state at the join.  These tests run each fixture with the cut and with every test
recorded (the code before it: ``_guards_tested`` answering "asked again" for every text) and
ask for the same matches, field by field, and for fewer states where ways rejoin.  The
look-alikes: a test asked again after the join (its ways must not be paired crosswise) and a
settings test a rewrite must guard (``Match.settings``), both recorded as before.

Then the one state arrives at each join once per way, with gaps that differ: it is walked on
from a node once, unless it arrives with a smaller gap than it was walked from there before
(``_search``'s ``walked``).

The fixtures are ours.
"""

from __future__ import annotations

import ast
import textwrap

from adopter import match as match_mod
from adopter.engine import analyze
from adopter.ruleset import load_rules
from adopter.structure.model import module_structure

RUN_OF_IFS = textwrap.dedent('''
    import math
    import torch
    import torch.nn as nn
    import torch.nn.functional as F


    class BiasedAttention(nn.Module):
        def __init__(self, dim, heads):
            super().__init__()
            self.heads = heads
            self.q = nn.Linear(dim, dim)
            self.k = nn.Linear(dim, dim)
            self.v = nn.Linear(dim, dim)
            self.bias = nn.Embedding(32, heads)
            self.drop = nn.Dropout(0.1)

        def forward(self, x, mask=None, position_bias=None, past=None, head_mask=None):
            b, n, c = x.shape
            q = self.q(x).view(b, n, self.heads, -1).transpose(1, 2)
            k = self.k(x).view(b, n, self.heads, -1).transpose(1, 2)
            v = self.v(x).view(b, n, self.heads, -1).transpose(1, 2)
            scores = torch.matmul(q, k.transpose(3, 2))
            if position_bias is None:
                positions = torch.arange(n, device=x.device)
                relative = positions[None, :] - positions[:, None]
                if past is not None:
                    relative = relative + past
                buckets = torch.clamp(relative.abs(), max=31)
                position_bias = self.bias(buckets).permute(2, 0, 1).unsqueeze(0)
                if mask is not None:
                    position_bias = position_bias + mask
            if head_mask is not None:
                position_bias = position_bias * head_mask
            scores = scores + position_bias
            weights = F.softmax(scores.float(), dim=-1).type_as(scores)
            weights = self.drop(weights)
            return torch.matmul(weights, v).transpose(1, 2).reshape(b, n, c)
''')

# The same test asked before and after the softmax: a way that adds the mask must not be
# paired with the way that skips the second use (recorded, as before the cut).
ASKED_AGAIN = textwrap.dedent('''
    import torch
    import torch.nn as nn


    class TwiceAsked(nn.Module):
        def forward(self, q, k, v, mask=None):
            scores = q @ k.transpose(-2, -1)
            if mask is not None:
                scores = scores + mask
            probs = scores.softmax(dim=-1)
            if mask is not None:
                probs = probs.masked_fill(mask == 0, 0.0)
            return probs @ v
''')

# A settings test between the softmax and the value product (a renormalisation only some
# configurations run): reported with the setting the rewrite must send to the original path.
SETTING = textwrap.dedent('''
    import torch
    import torch.nn as nn


    class TopK(nn.Module):
        def __init__(self, top_k):
            super().__init__()
            self.top_k = top_k

        def forward(self, q, k, v, mask=None):
            scores = torch.matmul(q, k.transpose(-2, -1)) * q.shape[-1] ** -0.5
            if mask is not None:
                scores = scores + mask
            probs = torch.softmax(scores, dim=-1)
            if self.top_k > 0:
                best, _ = probs.topk(self.top_k)
                floor, _ = torch.min(best, dim=-1, keepdim=True)
                probs = torch.where(probs >= floor, probs, torch.zeros_like(probs))
            return torch.matmul(probs, v)
''')


class _AlwaysAsked(dict):
    """``_guards_tested``'s answer before the cut: every test is asked again later."""

    def __missing__(self, key):
        return 1 << 30


def _run(source: str, cut: bool, rule_ids=("ADP010",)):
    rules = [r for r in load_rules() if r.id in rule_ids]
    visits = []
    original_visit, original_tested = match_mod._first_visit, match_mod._guards_tested

    def counting(seen, place, state):
        visits.append(place)
        return original_visit(seen, place, state)

    match_mod._first_visit = counting
    if not cut:
        match_mod._guards_tested = lambda flow: _AlwaysAsked()
    try:
        analysis = analyze(source, "fixture.py", rules)
    finally:
        match_mod._first_visit, match_mod._guards_tested = original_visit, original_tested
    matches = [(rule.id, m.key, m.class_name, m.flow, m.alternative, m.variant, m.roles,
                tuple((k, repr(v)) for k, v in m.env), tuple(n.id for n in m.nodes), m.settings, m.unfixable,
                tuple((o.key, o.roles) for o in m.others))
               for rule, m in analysis.matches]
    findings = [f.as_dict() for f in analysis.findings]
    return matches, findings, len(visits)


def test_rejoining_ways_are_walked_once_with_the_same_matches():
    before, before_findings, before_states = _run(RUN_OF_IFS, cut=False)
    after, after_findings, after_states = _run(RUN_OF_IFS, cut=True)
    assert before and after == before
    assert after_findings == before_findings and len(after_findings) == 1
    # four ifs between the scores and the softmax: the ways through them were separate
    # states (each a copy with its own tests) walking on to the value product
    assert after_states < before_states * 0.75, (before_states, after_states)


def test_a_test_asked_again_is_still_recorded():
    before, before_findings, _ = _run(ASKED_AGAIN, cut=False)
    after, after_findings, _ = _run(ASKED_AGAIN, cut=True)
    assert after == before and after_findings == before_findings
    # the way that adds the mask also fills the probabilities (overwritten: no site); the way
    # without either is the site.  Not recording the first ``if`` would pair the mask's add
    # with the way around the fill, a match ('s0', 'm2', 'p0', 'c') no execution runs.
    (match,) = after
    assert match[6] == ("s0", "p0", "c")


def test_guards_tested_is_the_last_branch_asking_each_test():
    structure = module_structure(ast.parse(ASKED_AGAIN), None, ASKED_AGAIN, "fixture.py")
    cls = structure.classes["TwiceAsked"]
    flow = cls.flow("forward")
    tested = match_mod._guards_tested(flow)
    branches = [pos for pos, edges in enumerate(flow.out) if any(g is not None for _, g in edges)]
    assert len(branches) == 2
    assert list(tested.values()) == [branches[-1]]
    assert match_mod._guards_tested(flow) is tested  # (once per flow)


def test_a_settings_test_is_still_read_by_finish():
    before, before_findings, _ = _run(SETTING, cut=False)
    after, after_findings, _ = _run(SETTING, cut=True)
    assert after == before and after_findings == before_findings
    assert any(m[9] for m in after), after  # Match.settings: the top-k test


def test_a_state_is_not_walked_again_from_a_node_with_no_smaller_gap():
    # the ways through the ifs rejoin as one state (no test recorded): at each join the state
    # arrives once per way, with gaps that differ by the way's operations; walked on from there
    # once, unless it arrives with a smaller gap than before (then more lies within the bound)
    rules = [r for r in load_rules() if r.id == "ADP010"]
    gap_places = []
    original = match_mod._first_visit

    def counting(seen, place, state):
        if len(place) == 3:
            gap_places.append((place, state))
        return original(seen, place, state)

    match_mod._first_visit = counting
    try:
        analysis = analyze(RUN_OF_IFS, "fixture.py", rules)
    finally:
        match_mod._first_visit = original
    assert len(analysis.findings) == 1
    least: dict = {}
    again = 0
    for (node, step, gap), state in gap_places:
        key = (id(state), node, step)
        if key in least and least[key] <= gap:
            again += 1
        least[key] = min(gap, least.get(key, gap))
    assert again == 0, again
    assert gap_places  # (the search did walk gaps)
