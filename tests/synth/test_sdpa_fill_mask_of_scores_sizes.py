"""ADP010 where a masked_fill's mask reads the scores' sizes, not their values (issue 12,
session 44): ``key_mask.unsqueeze(1).repeat(1, scores.shape[1], 1) == 0`` widens a per-key
mask to every query row by the scores' own query count.  The fused path reads that size off
q (``q.shape[-2]``), as an added bias's reads of the scores' sizes already were; the guards
read the mask as it stood before the region.

The modules are written for this test: heads folded into the batch (3-D scores from an einsum
or ``bmm``), fixed with ADP010 alone and run beside the original in float64 (eval and training,
dropout 0, forward and backward, with and without the mask), counting the fused calls.  The
look-alike -- a mask computed from the scores' values -- stays declined.
"""

from __future__ import annotations

import textwrap

import pytest

torch = pytest.importorskip("torch")

from sdpa_modules import RULES, Counter, assert_same_step, load, sdpa_fixed  # noqa: E402

from adopter.synth import fix_text  # noqa: E402

F64 = torch.float64

FOLDED = textwrap.dedent('''
    import torch
    from torch import nn


    class FoldedHeads(nn.Module):
        def __init__(self, dim=8, heads=2, p=0.0):
            super().__init__()
            self.heads = heads
            self.scale = (dim // heads) ** -0.5
            self.q = nn.Linear(dim, dim)
            self.kv = nn.Linear(dim, 2 * dim)
            self.out = nn.Linear(dim, dim)
            self.drop = nn.Dropout(p)

        def fold(self, t):
            b, n, c = t.shape
            return t.view(b, n, self.heads, c // self.heads).transpose(1, 2).reshape(b * self.heads, n, -1)

        def forward(self, x, ctx, key_mask=None):
            b, n, c = x.shape
            q = self.fold(self.q(x))
            k, v = (self.fold(t) for t in self.kv(ctx).chunk(2, dim=-1))
            sim = SCORES * self.scale
            if key_mask is not None:
                sim = sim.masked_fill(MASK, -1e9)
            attn = self.drop(sim.softmax(dim=-1))
            out = torch.bmm(attn, v)
            out = out.view(b, self.heads, n, -1).transpose(1, 2).reshape(b, n, c)
            return self.out(out)
''')

EINSUM = 'torch.einsum("bid, bjd -> bij", q, k)'
BMM = "torch.bmm(q, k.transpose(1, 2))"
REPEAT = "key_mask.unsqueeze(1).repeat(1, sim.shape[1], 1) == 0"
EXPAND = "key_mask[:, None, :].expand(-1, sim.size(-2), -1) == 0"


def _source(scores: str, mask: str) -> str:
    return FOLDED.replace("SCORES", scores).replace("MASK", mask)


@pytest.mark.parametrize("scores", [EINSUM, BMM])
@pytest.mark.parametrize("mask", [REPEAT, EXPAND])
def test_a_mask_widened_by_the_scores_query_count_reads_it_off_q(scores, mask):
    fixed = sdpa_fixed(_source(scores, mask))
    fused = fixed.split("else:")[-1]
    assert "scaled_dot_product_attention(" in fused
    assert "sim" not in fused  # the fused path reads no value (nor size) of the scores
    assert "q.shape[-2]" in fused


@pytest.mark.parametrize("scores", [EINSUM, BMM])
@pytest.mark.parametrize("mask", [REPEAT, EXPAND])
@pytest.mark.parametrize("masked", [False, True])
def test_the_patch_matches_the_original(scores, mask, masked):
    source = _source(scores, mask)
    original, new = load(source, "orig"), load(sdpa_fixed(source), "new")
    counter = Counter(new)
    torch.manual_seed(0)
    a = original["FoldedHeads"]().to(F64)
    b = new["FoldedHeads"]().to(F64)
    b.load_state_dict(a.state_dict(), strict=True)
    x, ctx = torch.randn(3, 5, 8, dtype=F64), torch.randn(3, 7, 8, dtype=F64)
    kwargs = {}
    if masked:
        key_mask = torch.ones(3 * 2, 7, dtype=torch.long)
        key_mask[0, 4:] = 0
        key_mask[5, :2] = 0
        kwargs["key_mask"] = key_mask
    for training in (False, True):
        a.train(training)
        b.train(training)
        before = counter.calls
        assert_same_step(a, b, [x, ctx], **kwargs)
        assert counter.calls - before == 1


def test_a_fully_masked_row_still_matches():
    """A row whose keys are all masked: the guard sends the call to the original path in training."""
    source = _source(EINSUM, REPEAT)
    original, new = load(source, "orig"), load(sdpa_fixed(source), "new")
    torch.manual_seed(1)
    a = original["FoldedHeads"]().to(F64)
    b = new["FoldedHeads"]().to(F64)
    b.load_state_dict(a.state_dict(), strict=True)
    key_mask = torch.ones(3 * 2, 7, dtype=torch.long)
    key_mask[2] = 0
    x, ctx = torch.randn(3, 5, 8, dtype=F64), torch.randn(3, 7, 8, dtype=F64)
    for training in (False, True):
        a.train(training)
        b.train(training)
        assert_same_step(a, b, [x, ctx], key_mask=key_mask)


def test_a_mask_from_the_scores_values_stays_declined():
    source = _source(EINSUM, "(key_mask.unsqueeze(1) == 0) | (sim < sim.mean(-1, keepdim=True))")
    result = fix_text(source, "attention.py", RULES)
    assert not result.applied, result.text
    assert result.skipped and result.skipped[0][1] == "the mask is computed by the attention"
