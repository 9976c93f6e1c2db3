"""Probabilities kept only when a flag asks for them: ``weights = attention_probs if self.vis
else None`` (the well-known ViT ports hand the attention map back for visualization this way).
The flag joins the fallback's test, so with it set the original runs and hands back the same
probabilities; without it the fused call runs and ``weights`` is ``None``, as before.  A choice
whose test reads the attention's values, or whose both sides read them, stays not fixed.

The modules are written for these tests; the fixed one runs beside the original in float64,
the fused call counted so that the fallback cannot pass for it."""

from __future__ import annotations

import textwrap

import pytest

torch = pytest.importorskip("torch")

from adopter.synth import fix_text  # noqa: E402
from sdpa_modules import RULES, Counter, assert_same_step, load, sdpa_fixed  # noqa: E402

SOURCE = textwrap.dedent('''
    import math

    import torch
    from torch.nn import Dropout, Linear, Module, Softmax


    class Attention(Module):
        def __init__(self, hidden=16, heads=2, vis=False, rate=0.0):
            super().__init__()
            self.vis = vis
            self.heads = heads
            self.head_size = hidden // heads
            self.query = Linear(hidden, hidden)
            self.key = Linear(hidden, hidden)
            self.value = Linear(hidden, hidden)
            self.out = Linear(hidden, hidden)
            self.attn_dropout = Dropout(rate)
            self.softmax = Softmax(dim=-1)

        def split(self, x):
            return x.view(*x.size()[:-1], self.heads, self.head_size).permute(0, 2, 1, 3)

        def forward(self, hidden_states):
            q = self.split(self.query(hidden_states))
            k = self.split(self.key(hidden_states))
            v = self.split(self.value(hidden_states))
            scores = torch.matmul(q, k.transpose(-1, -2))
            scores = scores / math.sqrt(self.head_size)
            probs = self.softmax(scores)
            weights = probs if self.vis else None
            probs = self.attn_dropout(probs)
            context = torch.matmul(probs, v)
            context = context.permute(0, 2, 1, 3).contiguous()
            context = context.view(*context.size()[:-2], self.heads * self.head_size)
            return self.out(context), weights
''')


def _near_miss(choice: str) -> str:
    return SOURCE.replace("weights = probs if self.vis else None", choice)


def test_the_flag_joins_the_fallback_and_the_fused_path_hands_back_none():
    fixed = sdpa_fixed(SOURCE)
    guard = fixed.split("scores = torch.matmul", 1)[0].rsplit("\n        if ", 1)[1]
    assert guard.lstrip("( \n").startswith("self.vis")  # the flag reads first
    assert "weights = None" in fixed
    original, patched = load(SOURCE, "original"), load(fixed, "patched")
    counter = Counter(patched)
    x = torch.randn(2, 5, 16, dtype=torch.float64)
    for vis in (False, True):
        torch.manual_seed(0)
        a = original["Attention"](vis=vis).double().eval()
        b = patched["Attention"](vis=vis).double().eval()
        b.load_state_dict(a.state_dict(), strict=True)
        before = counter.calls
        out_a, w_a = a(x)
        out_b, w_b = b(x)
        torch.testing.assert_close(out_b, out_a)
        if vis:
            torch.testing.assert_close(w_b, w_a)  # the original ran: the same map handed back
            assert counter.calls == before
        else:
            assert w_a is None and w_b is None
            assert counter.calls == before + 1
            assert_same_step(lambda t: a(t)[0], lambda t: b(t)[0], [x])


@pytest.mark.parametrize("choice", [
    "weights = probs if probs.amax() > 0.5 else None",  # the test reads the probabilities
    "weights = probs if self.vis else probs.detach()",  # both sides read them
])
def test_choices_the_fused_path_cannot_make_stay_not_fixed(choice):
    source = _near_miss(choice)
    result = fix_text(source, "attention.py", RULES)
    assert result.error is None
    assert result.applied == []
    assert result.text == source
