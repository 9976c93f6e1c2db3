"""rafix32 (session 26): research attention leftovers.  Fixtures ours.

1. A fill with a literal number (regionvit's ``masked_fill(mask == 0, -65000)``) that hides
   every key of a row: the original's softmax is uniform there, the fused call's (the fill
   added to the scores) is the softmax of the row's own scores, which float32 keeps beside
   65000.  The filled-rows guard ran only with gradients on, so an eval (no_grad) call with such
   a row took the fused path and differed.  Now a literal fill is tested in both cases; a
   ``finfo`` fill (which swamps the scores) keeps the test to training steps."""

from __future__ import annotations

import pytest

REGION = '''\
import torch
import torch.nn as nn


class Attn(nn.Module):
    def __init__(self, dim=16, heads=2):
        super().__init__()
        self.heads = heads
        self.scale = (dim // heads) ** -0.5
        self.qkv = nn.Linear(dim, dim * 3)

    def forward(self, x, mask=None):
        B, N, C = x.size()
        qkv = self.qkv(x).reshape(B, N, 3, self.heads, C // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        attn = (q @ k.transpose(-2, -1)) * self.scale
        if mask is not None:
            mask = mask.unsqueeze(1).expand(-1, self.heads, -1, -1)
            attn = attn.masked_fill(mask == 0, FILL)
        attn = attn.softmax(dim=-1)  # site
        return (attn @ v).transpose(1, 2).reshape(B, N, C)
'''


@pytest.mark.parametrize("grad", [False, True])
def test_a_literal_fill_hiding_a_whole_row_takes_the_original_without_gradients_too(grad):
    import torch
    from corpus_forms import finding_at, float64_pair, rules

    from adopter.synth import fix_text

    code = REGION.replace("FILL", "-65000")
    assert finding_at(code, "ADP010", "# site") is not None
    fixed = fix_text(code, "model.py", rules("ADP010")).text
    assert "scaled_dot_product_attention(" in fixed
    assert "is_grad_enabled" not in fixed
    a, b = float64_pair(code, fixed, "Attn")
    a.eval()
    b.eval()
    torch.manual_seed(1)
    x = torch.randn(2, 5, 16, dtype=torch.float64) * 4
    mask = torch.ones(2, 5, 5)
    mask[1, 2, :] = 0  # a query that sees no key
    mask[0, :, 3:] = 0  # padding keys
    with torch.set_grad_enabled(grad):
        torch.testing.assert_close(b(x, mask), a(x, mask), rtol=0, atol=1e-12)
        mask[1, 2, 0] = 1  # every row keeps a key: the fused path, the same numbers
        torch.testing.assert_close(b(x, mask), a(x, mask), rtol=0, atol=1e-12)


def test_a_finfo_fill_keeps_the_row_test_to_training_steps():
    from corpus_forms import rules

    from adopter.synth import fix_text

    code = REGION.replace("FILL", "torch.finfo(attn.dtype).min")
    fixed = fix_text(code, "model.py", rules("ADP010")).text
    assert "scaled_dot_product_attention(" in fixed
    assert "torch.is_grad_enabled()" in fixed
