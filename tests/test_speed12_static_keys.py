"""speed12: the per-flow lists of nodes that pass a step's static tests (``Matcher._static_ids``,
the starts, ``_readers``) are keyed by the step without its names (``match._static_form``):
``$gs = $g * $s`` and ``$m = $a * $u`` -- two alternatives of ADP013 -- test a flow's products
once.  Those tests tell a literal from any other value but never one name from another, and what
they read of a layer variable (its constructors and operations) is in the key beside the step.

The tests check the claim on every step of every rule (the shared list is the one the step's
own tests give), that steps differing only in names share a key (fails before speed12, whose
key held the names and source positions), and that steps the tests tell apart do not.  The
fixtures are ours.
"""

from __future__ import annotations

import ast
import textwrap

from adopter.dsl import parse_pattern
from adopter.engine import matchers_for
from adopter.match import Matcher, _index
from adopter.ruleset import load_rules
from adopter.structure.model import module_structure

# A SwiGLU MLP with a scaled gate, an attention, a chunked gate, and products with literals:
# nodes that some steps of several rules accept and others refuse.
SOURCE = textwrap.dedent('''
    import math
    import torch
    import torch.nn as nn
    import torch.nn.functional as F


    class MLP(nn.Module):
        def __init__(self, d, h):
            super().__init__()
            self.gate = nn.Linear(d, h, bias=False)
            self.up = nn.Linear(d, h, bias=False)
            self.down = nn.Linear(h, d, bias=False)
            self.act = nn.SiLU()
            self.scale = nn.Parameter(torch.ones(h))

        def forward(self, x):
            g = self.gate(x) * self.scale
            y = self.act(g * 2.0) * self.up(x)
            a, b = self.gate(x).chunk(2, dim=-1)
            z = F.silu(a) * b * 0.5
            return self.down(y + z)


    class Attention(nn.Module):
        def __init__(self, dim, heads):
            super().__init__()
            self.heads = heads
            self.qkv = nn.Linear(dim, dim * 3)
            self.out = nn.Linear(dim, dim)

        def forward(self, x):
            b, n, c = x.shape
            q, k, v = self.qkv(x).chunk(3, dim=-1)
            q = q.view(b, n, self.heads, -1).transpose(1, 2)
            k = k.view(b, n, self.heads, -1).transpose(1, 2)
            v = v.view(b, n, self.heads, -1).transpose(1, 2)
            scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(q.size(-1))
            probs = F.softmax(scores, dim=-1)
            return self.out(torch.matmul(probs, v).transpose(1, 2).reshape(b, n, c))
''')


def _flows():
    structure = module_structure(ast.parse(SOURCE), None, SOURCE, "fixture.py")
    return [cls.flow(root) for cls in structure.classes.values() for root in cls.roots]


def test_the_shared_list_is_each_steps_own():
    # every step of every matcher of every rule: the list read from the flow's cache (filled by
    # whichever matcher with an equal key came first) is the list its own tests give
    flows = _flows()
    checked = shared = 0
    for rule in load_rules():
        for matcher in matchers_for(rule):
            for index, pnode in enumerate(matcher.forward.nodes):
                for flow in flows:
                    flow_index = _index(flow)
                    cached = flow_index.static.get(matcher._static_keys[index])
                    ids, _ = matcher._static_ids(index, pnode, flow_index)
                    own = [n.id for n in matcher._op_candidates(pnode, flow_index) if matcher._static_ok(pnode, n)]
                    assert ids == own, (rule.id, matcher.variant, index)
                    checked += 1
                    shared += cached is not None
    assert checked and shared


def test_steps_differing_in_names_share_a_key():
    rule = next(r for r in load_rules() if r.id == "ADP013")
    matchers = matchers_for(rule)
    plain = next(m for m in matchers if m.alternative == 0 and m.variant == 0)  # act(gate(x)) * up(x)
    scaled = next(m for m in matchers if m.alternative == 7 and m.variant == 7)  # gate scaled alone
    product = plain._static_keys[len(plain.forward.nodes) - 1]  # $m = $a * $u
    gate_scale = scaled._static_keys[1]  # $gs = $g * $s
    assert product == gate_scale
    one = Matcher("T", parse_pattern("$y = mylib.f($x, $w)"), scope="file")
    other = Matcher("T", parse_pattern("\n\n$out = mylib.f($h, $v)"), scope="file")
    assert one._static_keys == other._static_keys


def test_steps_the_tests_tell_apart_do_not_share():
    def key(text: str):
        return Matcher("T", parse_pattern(text), scope="file")._static_keys[0]

    assert key("$y = $x * $w") != key("$y = $x * 2")  # a literal operand
    assert key("$y = $x * 2") != key("$y = $x * 2.5")  # another literal
    assert key("$y = mylib.f($x, 1)") != key("$y = mylib.f($x, True)")  # 1 == True, not the same literal
    assert key("$y = mylib.f($x, dim=$d)") != key("$y = mylib.f($x, axis=$d)")  # another keyword
    assert key("$y = mylib.f($x)") != key("$y = mylib.f($x, ...)")  # more arguments allowed
    assert key("$y = mylib.f($x)") != key("$y = mylib.g($x)")  # another function
    assert key("$y = $x.view($s)") != key("$y = $x.transpose($s)")  # another method
