"""speed11: ``engine.match_rule`` no longer calls ``Matcher.match_module`` for a matcher whose
word-key set already has an empty candidate list in the file (``ModuleStructure.candidates``,
filled by ``Matcher._candidates`` for the first matcher with those keys).  Such a call could only
return ``[]``: with the file's keys ruled out it returns before listing, and with an empty list
it loops over nothing.  Over the paper's 199 files 35,615 of 52,466 calls were of that kind.

The tests check the claim itself (every matcher left out, called after all, finds nothing), that
the findings are those of the loop that calls every matcher, and the work count (fails on the
engine before speed11, which called every matcher).  The fixtures are ours.
"""

from __future__ import annotations

import ast
import textwrap

from adopter.engine import analyze, match_rule, matchers_for
from adopter.match import Matcher
from adopter.ruleset import load_rules
from adopter.structure.model import module_structure

# An attention module (softmax of scaled scores, then a product with v), a conv -> BatchNorm
# block, and classes that compute nothing any rule looks for: most matchers of most rules have
# no candidate root here, and the matchers of a rule's alternatives share their word keys.
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

        def forward(self, x):
            b, n, c = x.shape
            q, k, v = self.qkv(x).chunk(3, dim=-1)
            q = q.view(b, n, self.heads, -1).transpose(1, 2)
            k = k.view(b, n, self.heads, -1).transpose(1, 2)
            v = v.view(b, n, self.heads, -1).transpose(1, 2)
            scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(q.size(-1))
            probs = F.softmax(scores, dim=-1)
            probs = self.drop(probs)
            ctx = torch.matmul(probs, v)
            return self.out(ctx.transpose(1, 2).reshape(b, n, c))


    class Block(nn.Module):
        def __init__(self, cin, cout):
            super().__init__()
            self.conv = nn.Conv2d(cin, cout, 3, padding=1, bias=False)
            self.bn = nn.BatchNorm2d(cout)

        def forward(self, x):
            return F.relu(self.bn(self.conv(x)))


    class Counter:
        def __init__(self):
            self.total = 0

        def add(self, value):
            self.total += value
            return self.total


    def describe(model):
        return sum(p.numel() for p in model.parameters())
''')


def _structure():
    return module_structure(ast.parse(SOURCE), None, SOURCE, "fixture.py")


def _every_matcher(rule, structure) -> dict:
    """match_rule's loop before speed11: every matcher of the rule asked, first match per key."""
    found: dict = {}
    for matcher in matchers_for(rule):
        for match in matcher.match_module(structure):
            found.setdefault(match.key, match)
    return found


def test_a_matcher_left_out_finds_nothing():
    structure = _structure()
    left_out = 0
    for rule in load_rules():
        match_rule(rule, structure)
        for matcher in matchers_for(rule):
            listed = structure.candidates.get(matcher.roots_key)
            if listed is not None and not listed:
                left_out += 1
                assert matcher.match_module(structure) == []
    assert left_out > 0


def test_matches_are_those_of_every_matcher():
    for rule in load_rules():
        skipped = match_rule(rule, _structure())
        every = _every_matcher(rule, _structure())
        assert {m.key for m in skipped} <= set(every)
        # (match_rule's own filters after the loop only drop matches: each kept one is the
        # first match of its key that the full loop finds)
        for match in skipped:
            assert every[match.key].nodes == match.nodes


def test_findings_on_the_fixture():
    findings = analyze(SOURCE, "fixture.py", load_rules()).findings
    rules = {(f.rule, f.line) for f in findings}
    assert any(rule == "ADP010" for rule, _ in rules)  # the attention
    assert any(rule == "ADP007" for rule, _ in rules)  # conv -> BatchNorm
    counter = SOURCE.splitlines().index("class Counter:") + 1
    assert not any(line >= counter for _, line in rules)  # nothing in Counter or describe


def test_match_module_called_once_per_empty_key_set(monkeypatch):
    calls = []
    original = Matcher.match_module

    def counted(self, module):
        calls.append(self)
        return original(self, module)

    monkeypatch.setattr(Matcher, "match_module", counted)
    structure = _structure()
    rules = load_rules()
    matchers = 0
    for rule in rules:
        match_rule(rule, structure)
        matchers += len(matchers_for(rule))
    # every matcher was called before speed11; now one per word-key set with no candidates
    assert len(calls) < matchers
    empty_keys = [m.roots_key for m in calls if structure.candidates.get(m.roots_key) == []]
    assert len(empty_keys) == len(set(empty_keys))


def test_the_skip_reads_the_files_own_lists(monkeypatch):
    # a list filled for another file is not read: each structure has its own (a fresh structure
    # calls the matchers again)
    structure_a, structure_b = _structure(), _structure()
    rule = next(r for r in load_rules() if r.id == "ADP010")
    match_rule(rule, structure_a)
    calls = []
    original = Matcher.match_module
    monkeypatch.setattr(Matcher, "match_module", lambda self, module: calls.append(self) or original(self, module))
    match_rule(rule, structure_b)
    assert calls
