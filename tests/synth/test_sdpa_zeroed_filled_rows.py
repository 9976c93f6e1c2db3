"""ADP010 where the fill's mask is built in the attention by ifs that read only what the scores
are (rlt's causal and sliding-window masks: ``torch.ones((i, j), dtype=torch.bool,
device=sim.device).triu(...)`` under ``if self.causal:``, a window mask or-ed in under ``if window
is not None:``, then ``sim.masked_fill(mask, -finfo.max)`` under ``if mask is not None:``), rafix42
(session 30).

Two readings.  (1) An if that reads the scores' device, dtype or sizes, never their values, and
assigns none of them runs on the fused path too, with those read off q and k (before: the guard
sent every call where it ran to the original, so the fused call ran only with no mask at all).
(2) Such a mask can hide every key of a row (a window of 0, or one that ends before the first
key), and a guard before the region cannot read it.  The original's row is uniform there (every
score the same fill) and passes no gradient to q or k; the fused call's would pass gradients
through the scores, and its backward, recomputing the weights from the row's log-sum-exp at
the fill's magnitude, gives every weight 1.  The fused call now zeroes the query on such rows (a
``where``: q gets no gradient there) and leaves the mask at 0 on them: their scores are exactly
0, uniform, forward and backward.  Checked in float64 against the original, eval and training,
outputs and gradients, counting the fused calls.  Near-misses: an if that stores on an attribute
stays with the original; a fill beside another part of the mask (a bias added before it, where
the zeroed row would hold the bias alone) and a fill that is no large negative number are
declined.  The fixtures are ours."""

from __future__ import annotations

import textwrap

import pytest

torch = pytest.importorskip("torch")

from sdpa_modules import RULES, Counter, assert_same_step, load, sdpa_fixed  # noqa: E402

from adopter.synth import fix_text  # noqa: E402

F64 = torch.float64

WINDOWED = textwrap.dedent('''
    import torch
    from torch import nn


    class WindowAttention(nn.Module):
        def __init__(self, width, heads, causal=True):
            super().__init__()
            self.scale = (width // heads) ** -0.5
            self.causal = causal

        def forward(self, q, k, v, window=None):
            i, j = q.shape[-2], k.shape[-2]
            sim = torch.einsum("b h i d, b h j d -> b h i j", q, k) * self.scale
            mask = None
            offset = j - i
            if self.causal:
                causal_mask = torch.ones((i, j), dtype=torch.bool, device=sim.device).triu(offset + 1)
                mask = causal_mask
            if window is not None:
                window_mask = torch.ones((i, j), dtype=torch.bool, device=sim.device).tril(offset - window)
                mask = window_mask if mask is None else (mask | window_mask)
            if mask is not None:
                sim = sim.masked_fill(mask, -torch.finfo(sim.dtype).max)
            attn = sim.softmax(dim=-1)
            return torch.einsum("b h i j, b h j d -> b h i d", attn, v)
''')

LITERAL = WINDOWED.replace("-torch.finfo(sim.dtype).max)", "-1e9)")

CAUSAL_INF = textwrap.dedent('''
    import torch
    from torch import nn


    class CausalAttention(nn.Module):
        def __init__(self, width, heads, causal=True):
            super().__init__()
            self.scale = (width // heads) ** -0.5
            self.causal = causal

        def forward(self, q, k, v):
            sim = torch.einsum("b h i d, b h j d -> b h i j", q, k) * self.scale
            mask = None
            if self.causal:
                i, j = sim.shape[-2:]
                mask = torch.ones(i, j, dtype=torch.bool, device=sim.device).triu(1)
            if mask is not None:
                sim = sim.masked_fill(mask, float("-inf"))
            attn = sim.softmax(dim=-1)
            return torch.einsum("b h i j, b h j d -> b h i d", attn, v)
''')

# (causal, window): no mask, causal alone, a window, rows hidden whole by the window (0, -1),
# a window alone hiding the last rows whole
CASES = [(False, None), (True, None), (True, 2), (True, 0), (True, -1), (False, -2)]


@pytest.mark.parametrize("source", [WINDOWED, LITERAL], ids=["finfo", "literal"])
@pytest.mark.parametrize("causal,window", CASES)
def test_the_rewrite_computes_what_the_original_does(source, causal, window):
    fixed = sdpa_fixed(source)
    assert "device=q.device" in fixed and ".all(-1, keepdim=True)" in fixed
    original, patched = load(source, "original"), load(fixed, "patched")
    counter = Counter(patched)
    a, b = original["WindowAttention"](8, 2, causal), patched["WindowAttention"](8, 2, causal)
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 2, n, 4, dtype=F64) for n in (5, 7, 7))
    kwargs = {} if window is None else {"window": window}
    for training in (False, True):
        a.train(training)
        b.train(training)
        before = counter.calls
        assert_same_step(a, b, [q, k, v], **kwargs)
        assert counter.calls - before == 1  # the fused call, every time
    if window is not None and window <= 0:
        # (the case the zeroed rows are for: some row hidden whole)
        mask = torch.ones(5, 7, dtype=torch.bool).tril(2 - window)
        if causal:
            mask |= torch.ones(5, 7, dtype=torch.bool).triu(3)
        assert mask.all(-1).any()


def test_an_if_reading_the_scores_device_and_sizes_runs_on_the_fused_path():
    fixed = sdpa_fixed(CAUSAL_INF)
    original, patched = load(CAUSAL_INF, "original"), load(fixed, "patched")
    counter = Counter(patched)
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 2, 6, 4, dtype=F64) for _ in range(3))
    for causal in (True, False):
        a, b = original["CausalAttention"](8, 2, causal), patched["CausalAttention"](8, 2, causal)
        before = counter.calls
        assert_same_step(a, b, [q, k, v])
        assert counter.calls - before == 1


def test_an_if_storing_on_an_attribute_stays_with_the_original():
    source = CAUSAL_INF.replace("        mask = None\n",
                                "        mask = None\n        if self.causal:\n"
                                "            self.last_device = sim.device\n")
    assert source != CAUSAL_INF
    fixed = sdpa_fixed(source)
    original, patched = load(source, "original"), load(fixed, "patched")
    counter = Counter(patched)
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 2, 6, 4, dtype=F64) for _ in range(3))
    a, b = original["CausalAttention"](8, 2, True), patched["CausalAttention"](8, 2, True)
    assert_same_step(a, b, [q, k, v])
    assert counter.calls == 0  # the guard sends the if's case to the original, as before


@pytest.mark.parametrize("source", [
    # a bias before the fill: a zeroed row would hold the bias alone, the original's the fill
    WINDOWED.replace("sim = torch.einsum(\"b h i d, b h j d -> b h i j\", q, k) * self.scale\n",
                     "sim = torch.einsum(\"b h i d, b h j d -> b h i j\", q, k) * self.scale\n"
                     "        sim = sim + bias\n")
    .replace("def forward(self, q, k, v, window=None):", "def forward(self, q, k, v, bias, window=None):"),
    # a fill that is no large negative number
    WINDOWED.replace("-torch.finfo(sim.dtype).max)", "-1.0)"),
])
def test_near_misses_stay_declined(source):
    assert source != WINDOWED
    result = fix_text(source, "attention.py", RULES)
    assert not result.applied and result.skipped
