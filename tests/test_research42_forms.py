"""Forms found while checking the blind batch research42 (single-file from-scratch GPT, ViT
and attention-module reimplementations from four packages new to the corpus).  The fixtures
are ours.

- ADP010 fix: the scores scaled by a number and then, under ``if weights is not None:``,
  multiplied by an optional weight of every score (External-Attention's ScaledDotProductAttention
  and MUSEAttention: ``att = matmul(q, k) / np.sqrt(d_k)``, ``if attention_weights is not None:
  att = att * attention_weights``).  The site was found but declined ("the scores are scaled
  twice, one step under a condition"): one ``scale=`` cannot say both factors, and a bare
  parameter name reads like a number.  The guard now sends the case where the test holds to the
  original code, and the fused call takes the other scale (synth/sdpa.py).
"""

from __future__ import annotations

import textwrap

from corpus_forms import covered, float64_pair, rules

from adopter.synth import fix_text

WEIGHTED = textwrap.dedent("""\
    import math

    import torch
    from torch import nn


    class WeightedAttention(nn.Module):
        def __init__(self, dim=8, heads=2, p=0.0):
            super().__init__()
            self.heads = heads
            self.dh = dim // heads
            self.to_q = nn.Linear(dim, dim)
            self.to_k = nn.Linear(dim, dim)
            self.to_v = nn.Linear(dim, dim)
            self.drop = nn.Dropout(p)

        def forward(self, a, b, c, mask=None, weights=None):
            n, t = a.shape[:2]
            s = b.shape[1]
            q = self.to_q(a).view(n, t, self.heads, self.dh).permute(0, 2, 1, 3)
            k = self.to_k(b).view(n, s, self.heads, self.dh).permute(0, 2, 3, 1)
            v = self.to_v(c).view(n, s, self.heads, self.dh).permute(0, 2, 1, 3)
            scores = torch.matmul(q, k) / math.sqrt(self.dh)
            if weights is not None:
                scores = scores * weights
            if mask is not None:
                scores = scores.masked_fill(mask, float("-inf"))
            scores = torch.softmax(scores, -1)
            scores = self.drop(scores)
            return torch.matmul(scores, v).permute(0, 2, 1, 3).reshape(n, t, -1)


    class ChosenScale(nn.Module):
        def __init__(self, scale=True):
            super().__init__()
            self.scale = scale

        def forward(self, q, k, v):
            w = torch.matmul(q, k.transpose(-1, -2))
            if self.scale:
                w = w / math.sqrt(v.size(-1))
            w = torch.softmax(w, -1)
            return torch.matmul(w, v)


    class WeightedAndLogged(nn.Module):
        def __init__(self):
            super().__init__()
            self.seen = 0

        def forward(self, q, k, v, weights=None):
            w = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(q.size(-1))
            if weights is not None:
                w = w * weights
                self.seen += 1
            w = torch.softmax(w, -1)
            return torch.matmul(w, v)
""")


def _region(text: str, cls: str) -> str:
    start = text.index(f"class {cls}(")
    end = text.find("\nclass ", start + 1)
    return text[start:] if end < 0 else text[start:end]


def test_optional_weight_after_a_scale_is_found():
    assert covered(WEIGHTED, "scores = torch.softmax(scores, -1)", "ADP010")


def test_optional_weight_after_a_scale_is_fixed_behind_the_guard():
    result = fix_text(WEIGHTED, "model.py", rules("ADP010"))
    assert result.applied
    region = _region(result.text, "WeightedAttention")
    assert "scaled_dot_product_attention(" in region
    assert "weights is not None" in region.split("scaled_dot_product_attention(")[0]


def test_optional_weight_fix_computes_the_same_with_and_without_weights():
    import torch

    result = fix_text(WEIGHTED, "model.py", rules("ADP010"))
    assert "scaled_dot_product_attention(" in _region(result.text, "WeightedAttention")
    a, b = float64_pair(WEIGHTED, result.text, "WeightedAttention")
    torch.manual_seed(1)
    x = torch.randn(2, 3, 8, dtype=torch.float64)
    y = torch.randn(2, 5, 8, dtype=torch.float64)
    mask = torch.zeros(2, 2, 3, 5, dtype=torch.bool)
    mask[..., -1] = True
    weights = torch.rand(2, 2, 3, 5, dtype=torch.float64) + 0.5
    for kwargs in ({}, {"mask": mask}, {"weights": weights}, {"mask": mask, "weights": weights}):
        xa = x.clone().requires_grad_(True)
        xb = x.clone().requires_grad_(True)
        out_a, out_b = a(xa, y, y, **kwargs), b(xb, y, y, **kwargs)
        torch.testing.assert_close(out_b, out_a)
        out_a.sum().backward()
        out_b.sum().backward()
        torch.testing.assert_close(xb.grad, xa.grad)


def test_the_only_scale_under_an_if_stays_a_chosen_scale():
    # near-miss: one scale chosen by a test is `scale=` itself, not a guarded case
    result = fix_text(WEIGHTED, "model.py", rules("ADP010"))
    region = _region(result.text, "ChosenScale")
    assert "scaled_dot_product_attention(" in region
    assert "if self.scale else 1.0" in region


def test_an_optional_weight_whose_if_does_more_is_not_fixed():
    # near-miss: the if around the weight also counts calls, which the fused path would skip
    result = fix_text(WEIGHTED, "model.py", rules("ADP010"))
    region = _region(result.text, "WeightedAndLogged")
    assert "scaled_dot_product_attention(" not in region
