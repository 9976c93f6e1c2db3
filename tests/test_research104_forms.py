"""A look-alike mask from the blind batch research104 (Hugging Face-style modeling files shipped
by other packages; the form is RibonanzaNet's sequence attention).  The fixture is ours.

The scores are masked one of two ways, chosen by a constructor flag: an additive float mask
(``scores + attention_mask``), or ``scores.masked_fill(attention_mask == -1, -1e-9)``, which
sets masked scores to a tiny negative number instead of removing them: no mask SDPA takes
reproduces that.  The site is still reported and fixed for the additive path; the patch must
keep the original code whenever the ``masked_fill`` runs, so the two agree on every path.
Dropping that guard would hand the ``-1`` markers to SDPA as an additive mask, and the
outputs would differ.
"""

from __future__ import annotations

import pytest
from corpus_forms import finding_at, float64_pair, rules

from adopter.synth import fix_text

FLAG_MASKED = """\
import torch
import torch.nn.functional as F
from torch import nn


class Attention(nn.Module):
    def __init__(self, dim=8, heads=2, fix_mask=False):
        super().__init__()
        self.heads = heads
        self.head_dim = dim // heads
        self.scaling = self.head_dim ** -0.5
        self.query = nn.Linear(dim, dim, bias=False)
        self.key = nn.Linear(dim, dim, bias=False)
        self.value = nn.Linear(dim, dim, bias=False)
        self.dropout = nn.Dropout(0.1)
        self.fix_mask = fix_mask

    def split(self, x):
        return x.view(x.shape[0], x.shape[1], self.heads, self.head_dim).transpose(1, 2)

    def forward(self, x, attention_mask=None):
        q = self.split(self.query(x))
        k = self.split(self.key(x))
        v = self.split(self.value(x))
        scores = torch.matmul(q, k.transpose(-1, -2)) * self.scaling
        if attention_mask is not None:
            if self.fix_mask:
                scores = scores + attention_mask
            else:
                scores = scores.masked_fill(attention_mask == -1, -1e-9)
        probs = F.softmax(scores, dim=-1)  # site
        probs = self.dropout(probs)
        out = torch.matmul(probs, v)
        return out.transpose(1, 2).reshape(x.shape[0], x.shape[1], -1)
"""


def test_the_flag_masked_attention_is_a_site():
    assert finding_at(FLAG_MASKED, "ADP010", "# site") is not None


@pytest.mark.parametrize("fix_mask", [True, False])
def test_the_fix_keeps_the_original_wherever_the_tiny_negative_fill_runs(fix_mask):
    torch = pytest.importorskip("torch")
    result = fix_text(FLAG_MASKED, "model.py", rules("ADP010"))
    assert "scaled_dot_product_attention(" in result.text, result.skipped
    a, b = float64_pair(FLAG_MASKED, result.text, "Attention", fix_mask=fix_mask)
    a.eval()
    b.eval()
    x = torch.randn(2, 5, 8, dtype=torch.float64)
    if fix_mask:
        mask = torch.randn(2, 1, 1, 5, dtype=torch.float64)  # an additive float bias per key
    else:
        mask = torch.tensor([0.0, 0.0, -1.0, 0.0, -1.0], dtype=torch.float64).view(1, 1, 1, 5).expand(2, 1, 1, 5)
    # float64, a softmax over 5 keys and 4-wide heads: agreement to rounding on every path
    for m in (mask, None):
        torch.testing.assert_close(b(x, m), a(x, m), rtol=1e-10, atol=1e-12)
