"""mend54 (session 43): two arms of an ``if`` that bind *different* nodes to the *same* values are
two matches, never one.

speed32 stopped recording an ``if`` test a state took unless a later edge asks it again (or, for
a ``setting_paths`` rule, it mentions ``self``), so the ways through a run of ``if``s rejoin as
one state.  But ``_first_visit`` told states apart by their bindings, aliases and tests only: an
arm each computing the probabilities with its own softmax (``scores.softmax(-1)`` in one,
``torch.softmax(scores, -1)`` in the other, both into ``attn``) bound the same values at the
same place, so with the test unrecorded the second arm's state met the first as equal and was
dropped -- one finding instead of two, and that arm kept its hand-written attention.  The matched
nodes are now part of what tells states apart (compared by identity: equal ones cost no call).

Look-alikes: an arm whose softmax is not over the keys (one match, the other arm's); the ways
through ``if``s that bind nothing (speed32's T5-style run, tests/test_speed32_guards.py) still
rejoin as one state.  The fixtures are ours.
"""

from __future__ import annotations

import dataclasses
import textwrap

import pytest
import torch
from corpus_forms import found, rules

from adopter import match as match_mod
from adopter.engine import analyze
from adopter.synth import fix_text

ARMS = textwrap.dedent("""\
    import math

    import torch
    import torch.nn as nn
    import torch.nn.functional as F


    class TwoWays(nn.Module):
        def __init__(self, dim=16, heads=2, p=0.0, quick=False):
            super().__init__()
            self.heads = heads
            self.quick = quick
            self.wq = nn.Linear(dim, dim)
            self.wk = nn.Linear(dim, dim)
            self.wv = nn.Linear(dim, dim)
            self.p = p

        def forward(self, x, quick=False):
            b, n, d = x.shape
            q = self.wq(x).view(b, n, self.heads, -1).transpose(1, 2)
            k = self.wk(x).view(b, n, self.heads, -1).transpose(1, 2)
            v = self.wv(x).view(b, n, self.heads, -1).transpose(1, 2)
            logits = torch.matmul(q, k.transpose(-2, -1)) / math.sqrt(q.size(-1))
            if TEST:
                probs = FIRST
            else:
                probs = SECOND
            probs = F.dropout(probs, p=self.p, training=self.training)
            return torch.matmul(probs, v).transpose(1, 2).reshape(b, n, d)
""")

METHOD = "logits.softmax(dim=-1)"
FUNCTION = "torch.softmax(logits, dim=-1)"


def _arms(test: str, first: str, second: str) -> str:
    return ARMS.replace("TEST", test).replace("FIRST", first).replace("SECOND", second)


def _matches(code: str, setting_paths: bool | None = None):
    chosen = rules("ADP010")
    if setting_paths is not None:
        chosen = [dataclasses.replace(r, setting_paths=setting_paths) for r in chosen]
    return [m for _, m in analyze(code, "model.py", chosen).matches]


def _softmax_lines(code: str, matches) -> set[int]:
    """The source lines of the softmax node each match bound."""
    lines = set()
    for m in matches:
        (node,) = [n for n in m.nodes if "softmax" in n.canon]
        lines.add(node.span[0])
    return lines


@pytest.mark.parametrize("first, second", [(METHOD, FUNCTION), (FUNCTION, METHOD)], ids=["method-first", "function-first"])
def test_an_arm_each_with_its_own_softmax_is_two_matches(first, second):
    code = _arms("quick", first, second)
    matches = _matches(code)
    assert len(matches) == 2, [tuple(n.id for n in m.nodes) for m in matches]
    assert _softmax_lines(code, matches) == {line for line, text in enumerate(code.splitlines(), 1)
                                             if "softmax" in text}
    assert len(found(code, "ADP010")) == 2


def test_under_a_self_test_on_a_rule_without_setting_paths():
    # a rule without setting_paths does not record a test mentioning self either (speed32):
    # the arms must still be two matches
    code = _arms("self.quick", METHOD, FUNCTION)
    for setting_paths in (False, True):
        matches = _matches(code, setting_paths=setting_paths)
        assert len(matches) == 2, (setting_paths, [tuple(n.id for n in m.nodes) for m in matches])


def test_an_arm_whose_softmax_is_not_over_the_keys_is_no_match():
    code = _arms("quick", METHOD, "torch.softmax(logits, dim=1)")
    matches = _matches(code)
    assert len(matches) == 1
    assert _softmax_lines(code, matches) == {next(line for line, text in enumerate(code.splitlines(), 1)
                                                  if METHOD in text)}


def test_memo_tells_apart_states_that_bound_different_nodes():
    # (past _MEMOS_AFTER states at one place _first_visit compares memos, not dicts)
    code = _arms("quick", METHOD, FUNCTION)
    a, b = _matches(code)
    states = []
    for m in (a, b):
        s = match_mod._State()
        s.values = {"x": ("k", "logits")}
        s.matched = m.nodes
        states.append(s)
    assert states[0].memo() != states[1].memo()
    seen: dict = {}
    assert match_mod._first_visit(seen, (1, 2), states[0])
    assert match_mod._first_visit(seen, (1, 2), states[1])
    assert not match_mod._first_visit(seen, (1, 2), states[1])


def _module(code: str, **kwargs):
    namespace: dict = {}
    exec(compile(code, "fixture.py", "exec"), namespace)  # noqa: S102 (our own fixture)
    torch.manual_seed(0)
    return namespace["TwoWays"](**kwargs).double(), namespace


@pytest.mark.parametrize("test", ["quick", "self.quick"])
@pytest.mark.parametrize("first, second", [(METHOD, FUNCTION), (FUNCTION, METHOD)], ids=["method-first", "function-first"])
def test_both_arms_are_fixed_and_compute_the_original(test, first, second):
    code = _arms(test, first, second)
    result = fix_text(code, "model.py", rules("ADP010"))
    assert len(result.applied) == 2, result.skipped
    for quick in (False, True):
        a, _ = _module(code, quick=quick)
        b, ns = _module(result.text, quick=quick)
        b.load_state_dict(a.state_dict(), strict=True)
        calls = []
        fused = ns["scaled_dot_product_attention"]
        ns["scaled_dot_product_attention"] = lambda *args, **kw: calls.append(1) or fused(*args, **kw)
        a.eval()
        b.eval()
        x = torch.randn(2, 5, 16, dtype=torch.float64)
        want = a(x, quick=quick)
        got = b(x, quick=quick)
        # both ways run the fused call now (before: the arm dropped kept its softmax)
        assert calls == [1], (quick, calls)
        # float64, sums over 5 keys and 8 features: rounding only
        assert torch.allclose(got, want, rtol=0, atol=1e-12), (got - want).abs().max()
