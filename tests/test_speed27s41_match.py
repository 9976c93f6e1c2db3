"""speed27 (session 41): three exact cuts in the matcher's search.

1. ``Matcher._bind_node`` tests whether a step overwrites a value some pattern variable holds
   before it binds the step's own outputs.  Tested after, the step's own output variable
   (just bound to the overwritten value) met the test at nearly every step, and the loop
   over every binding ran to change nothing.  Checked: a step that overwrites nothing held
   walks no binding (fails before: ``dict.items`` was called), and a value rebound between
   two steps still turns stale (``x = f(x)``: a later ``$x`` does not match the new ``x``).
2. ``Matcher._options`` asks the feasibility test once per (step, node), not once per
   optional step after it: every step of the run has the run's last step's required steps
   from there on.  Checked against the old per-step loop on every step and node of every
   rule over a fixture, with at most one test asked per call (fails before).
3. ``Matcher._feasibility`` is worked out once per flow for the matchers whose steps after
   the first are alike (static key, optional): those matchers get the same answer object
   (fails before: each worked out its own), and it answers as each matcher's own would.

The fixtures are ours.
"""

from __future__ import annotations

import ast
import sys
import textwrap

from adopter.dsl import parse_pattern
from adopter.engine import matchers_for
from adopter.match import Matcher, _FlowIndex, _State
from adopter.ruleset import load_rules
from adopter.structure.model import module_structure

# an attention with a scale, a mask and a dropout (ADP010's optional steps), a SwiGLU MLP, a
# residual LayerNorm and a rebound name
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
            self.norm = nn.LayerNorm(dim)

        def forward(self, x, mask):
            b, n, c = x.shape
            q, k, v = self.qkv(x).chunk(3, dim=-1)
            q = q.view(b, n, self.heads, -1).transpose(1, 2)
            k = k.view(b, n, self.heads, -1).transpose(1, 2)
            v = v.view(b, n, self.heads, -1).transpose(1, 2)
            scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(q.size(-1))
            scores = scores + mask
            probs = self.drop(F.softmax(scores, dim=-1))
            h = self.out(torch.matmul(probs, v).transpose(1, 2).reshape(b, n, c))
            return self.norm(x + self.drop(h))


    class MLP(nn.Module):
        def __init__(self, d, h):
            super().__init__()
            self.gate = nn.Linear(d, h, bias=False)
            self.up = nn.Linear(d, h, bias=False)
            self.down = nn.Linear(h, d, bias=False)
            self.act = nn.SiLU()

        def forward(self, x):
            return self.down(self.act(self.gate(x)) * self.up(x))


    class Chain(nn.Module):
        def forward(self, x):
            h = torch.relu(x)
            return torch.sigmoid(h)


    class Rebound(nn.Module):
        def forward(self, x):
            x = torch.relu(x)
            return torch.sigmoid(x)


    class Kept(nn.Module):
        def forward(self, x):
            h = torch.relu(x)
            return torch.sigmoid(x)
''')


def _structure():
    return module_structure(ast.parse(SOURCE), None, SOURCE, "fixture.py")


def _flows():
    structure = _structure()
    return [cls.flow(root) for cls in structure.classes.values() for root in cls.roots]


def _matchers():
    return [m for rule in load_rules() for m in matchers_for(rule)]


# -- 1. the overwrite test before the outputs are bound ---------------------------------------

def _items_calls(call) -> int:
    count = 0

    def profile(frame, event, arg):
        nonlocal count
        if event == "c_call" and getattr(arg, "__name__", None) == "items" \
                and getattr(arg, "__self__", None).__class__ is dict:
            count += 1

    sys.setprofile(profile)
    try:
        call()
    finally:
        sys.setprofile(None)
    return count


def _first_relu(flow):
    return next(n for n in flow.nodes if n.kind == "call" and n.op.endswith("relu"))


def test_a_step_overwriting_nothing_held_walks_no_binding():
    structure = _structure()
    flow = structure.classes["Chain"].flow("forward")
    matcher = Matcher("T", parse_pattern("$h = torch.relu($x)\n$y = torch.sigmoid($h)"), scope="file")
    relu = _first_relu(flow)
    found = []
    calls = _items_calls(lambda: found.append(matcher._bind_node(matcher.forward.nodes[0], 0, relu, _State())))
    state = found[0]
    assert state is not None and state.values["h"] == ("k", relu.outs[0].key)
    assert calls == 0


def test_a_rebound_name_still_turns_stale():
    structure = _structure()
    pattern = "$h = torch.relu($x)\n$y = torch.sigmoid($x)"
    rebound = structure.classes["Rebound"]
    kept = structure.classes["Kept"]
    matcher = Matcher("T", parse_pattern(pattern), scope="file")
    # x = relu(x) rebinds x: the sigmoid reads the new x, not the value $x bound
    assert list(matcher.match_flow(rebound, rebound.flow("forward"))) == []
    state = matcher._bind_node(matcher.forward.nodes[0], 0, _first_relu(rebound.flow("forward")), _State())
    assert state.values["x"][0] == "stale"
    # the look-alike that keeps x: a site
    assert len(list(matcher.match_flow(kept, kept.flow("forward")))) == 1


# -- 2. one feasibility test per _options call ------------------------------------------------

def _old_options(matcher, index, pos, feasible):
    pattern = matcher.forward.nodes
    options = [index]
    j = index
    while pattern[j].optional and j + 1 < len(pattern):
        j += 1
        if feasible(pos, j):
            options.append(j)
    return options


def test_options_equal_the_per_step_loop_with_one_test():
    flows = _flows()
    checked = runs = 0
    for matcher in _matchers():
        for flow in flows:
            pruning = matcher._feasibility(flow)
            if pruning is None:
                continue
            feasible = pruning[0]
            asked = []

            def counted(pos, j, feasible=feasible, asked=asked):
                asked.append((pos, j))
                return feasible(pos, j)

            for index in range(len(matcher.forward.nodes)):
                for pos in range(-1, len(flow.nodes)):
                    del asked[:]
                    got = matcher._options(index, pos, counted)
                    assert got == _old_options(matcher, index, pos, feasible), (matcher.rule_id, matcher.variant, index)
                    assert len(asked) <= 1
                    checked += 1
                    runs += len(got) > 2
    assert checked and runs  # (some run of several optional steps was feasible)


# -- 3. one feasibility answer per flow for matchers alike after the first step ----------------

def test_matchers_alike_after_the_first_step_share_the_answer():
    flow = _structure().classes["Attention"].flow("forward")
    tail = "$s = torch.matmul($q, $kt)\n$p = torch.nn.functional.softmax($s, dim=-1)\n"
    one = Matcher("T", parse_pattern("$q = $a.transpose(1, 2)\n" + tail), scope="file")
    other = Matcher("T", parse_pattern("$q = $a.view(...)\n" + tail), scope="file")
    differs = Matcher("T", parse_pattern("$q = $a.view(...)\n$s = torch.matmul($q, $kt)\n"
                                         "? $t = $s + $m\n$p = torch.nn.functional.softmax($t, dim=-1)\n"),
                      scope="file")
    answer = one._feasibility(flow)
    assert answer is not None
    assert other._feasibility(flow) is answer
    assert differs._feasibility(flow) is not answer
    # a flow where it cannot match: None, also for the second matcher
    chain = _structure().classes["Chain"].flow("forward")
    assert one._feasibility(chain) is None and other._feasibility(chain) is None


def test_the_shared_answer_is_each_matchers_own():
    flows = _flows()
    compared = 0
    for matcher in _matchers():
        for flow in flows:
            cached = matcher._feasibility(flow)
            own = matcher._flow_feasibility(_FlowIndex(flow))
            assert (cached is None) == (own is None), (matcher.rule_id, matcher.variant)
            if own is None:
                continue
            assert cached[1] == own[1] and cached[3] == own[3]
            for index in range(len(matcher.forward.nodes)):
                for pos in range(-1, len(flow.nodes)):
                    assert cached[0](pos, index) == own[0](pos, index)
            compared += 1
    assert compared
