"""ADP010 where the fill under ``if mask is not None:`` takes its value from a function of
another module handed the scores (``w.masked_fill_(~m, neg_of(w))``, jjuke-diffusion's
QKVAttention): the fixer does not read another module's function, so that value may be anything
the scores give it.  The guard sends the if's test to the original, where the fill runs as
written; the fused call, taken where no mask is passed (as the model's own callers call it),
has no mask.  Checked numerically against the original in float64 (train and eval, outputs and
gradients): the fused call runs without a mask, the original with one.  Look-alikes that stay
declined: the same fill with no if around it (every call would need the value), and an if
whose test reads a name the attention assigns before it (the guard, read before the region,
would read another value)."""

from __future__ import annotations

import sys
import textwrap
import types

import pytest

torch = pytest.importorskip("torch")

from sdpa_modules import RULES, Counter, assert_same_step, load, sdpa_fixed  # noqa: E402

from adopter.synth import fix_text  # noqa: E402

F64 = torch.float64

# the other module: what the fixer cannot read (here: the dtype's most negative number)
HELPERS = types.ModuleType("sites96_fill_helpers")
HELPERS.neg_of = lambda t: -torch.finfo(t.dtype).max
sys.modules[HELPERS.__name__] = HELPERS

FOLDED = textwrap.dedent('''
    import math

    import torch
    from torch import nn
    from sites96_fill_helpers import neg_of


    class Folded(nn.Module):
        def __init__(self, width, heads):
            super().__init__()
            self.heads = heads
            self.qkv = nn.Linear(width, 3 * width)

        def forward(self, x, mask=None):
            b, n, c = x.shape
            q, k, v = self.qkv(x).chunk(3, dim=-1)
            q, k, v = (t.reshape(b, n, self.heads, -1).transpose(1, 2).reshape(b * self.heads, n, -1)
                       for t in (q, k, v))
            scale = 1 / math.sqrt(math.sqrt(q.shape[-1]))
            weight = torch.einsum("B i d, B j d -> B i j", q * scale, k * scale)
            if mask is not None:
                mask = mask[:, None, :].repeat_interleave(self.heads, dim=0)
                weight.masked_fill_(~mask, neg_of(weight))
            weight = torch.softmax(weight, dim=-1)
            out = torch.einsum("B i j, B j d -> B i d", weight, v)
            return out.reshape(b, self.heads, n, -1).transpose(1, 2).reshape(b, n, c)
''')


def test_the_guard_sends_the_mask_to_the_original():
    fixed = sdpa_fixed(FOLDED)
    guard, fast = fixed.split("else:")[0], fixed.split("else:")[-1]
    assert "mask is not None" in guard.split("weight = torch.einsum")[0]
    assert "neg_of" not in fast and "attn_mask" not in fast


@pytest.mark.parametrize("masked", [False, True])
def test_the_rewrite_computes_what_the_original_does(masked):
    fixed = sdpa_fixed(FOLDED)
    original, patched = load(FOLDED, "original"), load(fixed, "patched")
    counter = Counter(patched)
    torch.manual_seed(0)
    a = original["Folded"](8, 2).to(F64)
    b = patched["Folded"](8, 2).to(F64)
    b.load_state_dict(a.state_dict())
    x = torch.randn(2, 5, 8, dtype=F64)
    kwargs = {}
    if masked:
        mask = torch.ones(2, 5, dtype=torch.bool)
        mask[1, 3:] = False
        kwargs["mask"] = mask
    for training in (False, True):
        a.train(training)
        b.train(training)
        before = counter.calls
        assert_same_step(a, b, [x], **kwargs)
        assert counter.calls - before == (0 if masked else 1)  # the fused call only without a mask
    if masked:  # the mask does change the output: the original path is the one that ran
        with torch.no_grad():
            assert not torch.allclose(a(x, **kwargs), a(x))


def test_an_unconditional_fill_of_that_value_stays_declined():
    conditional = ("        if mask is not None:\n"
                   "            mask = mask[:, None, :].repeat_interleave(self.heads, dim=0)\n"
                   "            weight.masked_fill_(~mask, neg_of(weight))\n")
    always = ("        mask = mask[:, None, :].repeat_interleave(self.heads, dim=0)\n"
              "        weight.masked_fill_(~mask, neg_of(weight))\n")
    assert conditional in FOLDED
    source = FOLDED.replace(conditional, always)
    result = fix_text(source, "attention.py", RULES)
    assert not result.applied and result.skipped
    assert any("fill value is computed by the attention" in str(s) for s in result.skipped)


def test_a_test_reading_what_the_attention_assigns_before_it_stays_declined():
    source = FOLDED.replace(
        '        if mask is not None:\n',
        '        mask = mask if weight.shape[-1] > 1 else None\n        if mask is not None:\n')
    assert source != FOLDED
    result = fix_text(source, "attention.py", RULES)
    assert not result.applied and result.skipped
