"""ADP010 where q, k and v are one tensor that the context statement overwrites (charformer's
consensus attention over block scores: ``sim = einsum('b i d, b j d -> b i j', s, s)``, a fill
under ``if exists(mask)`` whose fill value reads ``-torch.finfo(sim.dtype).max``, softmax, then
``s = einsum('b i j, b j m -> b i m', attn, s)``).  The fill value's read of the scores' dtype is
q's (``s.dtype``) on the fused path, which runs before the context statement assigns ``s``: the
name still holds q there.  Checked numerically against the original in float64, with and without
the mask, eval and training (a step wanting gradients whose mask fills a whole row goes to the
original); a fill value reading the scores' values stays declined."""

from __future__ import annotations

import textwrap

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("einops")

from sdpa_modules import RULES, Counter, assert_same_step, load, sdpa_fixed  # noqa: E402

from adopter.synth import fix_text  # noqa: E402

F64 = torch.float64

CONSENSUS = textwrap.dedent('''
    import torch
    from torch import nn, einsum
    from einops import rearrange


    def exists(val):
        return val is not None


    class Consensus(nn.Module):
        def __init__(self, width, spans):
            super().__init__()
            self.score = nn.Linear(width, spans)

        def forward(self, x, mask=None):
            s = self.score(x).softmax(dim=-1)
            sim = einsum('b i d, b j d -> b i j', s, s)

            if exists(mask):
                both = rearrange(mask, 'b i -> b i ()') * rearrange(mask, 'b j -> b () j')
                neg = -torch.finfo(sim.dtype).max
                sim = sim.masked_fill(~both, neg)

            attn = sim.softmax(dim=-1)
            s = einsum('b i j, b j m -> b i m', attn, s)
            return s
''')


def test_the_fill_value_reads_the_dtype_of_the_operand_before_the_context_overwrites_it():
    fixed = sdpa_fixed(CONSENSUS)
    fast = fixed.split("else:")[-1]
    assert "neg = -torch.finfo(s.dtype).max" in fast
    assert "s = scaled_dot_product_attention(" in " ".join(fast.split()).replace("( ", "(")


@pytest.mark.parametrize("masked", [False, True])
def test_the_rewrite_computes_what_the_original_does(masked):
    fixed = sdpa_fixed(CONSENSUS)
    original, patched = load(CONSENSUS, "original"), load(fixed, "patched")
    counter = Counter(patched)
    torch.manual_seed(0)
    a = original["Consensus"](8, 4).to(F64)
    b = patched["Consensus"](8, 4).to(F64)
    b.load_state_dict(a.state_dict())
    x = torch.randn(2, 6, 8, dtype=F64)
    kwargs = {}
    if masked:
        mask = torch.ones(2, 6, dtype=torch.bool)
        mask[1, 4:] = False  # rows 4 and 5 of the second sequence see no key: filled whole
        kwargs["mask"] = mask
    for training in (False, True):
        a.train(training)
        b.train(training)
        before = counter.calls
        assert_same_step(a, b, [x], **kwargs)
        # a step wanting gradients whose mask fills a whole row (a padded query sees no key)
        # takes the original
        assert counter.calls - before == (0 if masked else 1)
        with torch.no_grad():  # without gradients the fused call, whole rows filled or not
            torch.testing.assert_close(b(x, **kwargs), a(x, **kwargs))
        assert counter.calls - before == (1 if masked else 2)


def test_a_fill_value_reading_the_scores_values_is_declined():
    source = CONSENSUS.replace("neg = -torch.finfo(sim.dtype).max", "neg = sim.min() - 1e4")
    assert source != CONSENSUS
    result = fix_text(source, "attention.py", RULES)
    assert not result.applied and result.skipped
