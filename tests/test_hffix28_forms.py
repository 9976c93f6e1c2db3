"""Forms of the known Hugging Face misses (session 24, hffix28): a floor of the attention
scores at their dtype's minimum before the softmax.  Our own fixtures, each with near-misses."""

from __future__ import annotations

import textwrap

from corpus_forms import finding_at, float64_pair, found, rules

from adopter.synth import fix_text

# ---------- ADP010: scores floored at their dtype's minimum before the softmax

FLOORED = textwrap.dedent("""\
    import torch
    from torch import nn


    class Attention(nn.Module):
        def __init__(self, d=16, h=2):
            super().__init__()
            self.h, self.dh = h, d // h
            self.q = nn.Linear(d, d, bias=False)
            self.k = nn.Linear(d, d, bias=False)
            self.v = nn.Linear(d, d, bias=False)
            self.p = 0.0

        def heads(self, x):
            b, n, _ = x.shape
            return x.view(b, n, self.h, self.dh).transpose(1, 2)

        def forward(self, x, mask):
            q, k, v = self.heads(self.q(x)), self.heads(self.k(x)), self.heads(self.v(x))
            scores = torch.matmul(q, k.transpose(3, 2))
            scores += mask
            scores = FLOOR
            weights = nn.functional.softmax(scores, dim=-1, dtype=torch.float32).type_as(scores)
            weights = nn.functional.dropout(weights, p=self.p, training=self.training)
            out = torch.matmul(weights, v)
            return out.transpose(1, 2).flatten(2)
""")


def floored(floor: str) -> str:
    return FLOORED.replace("FLOOR", floor)


FLOORS = [
    "torch.max(scores, torch.tensor(torch.finfo(scores.dtype).min))",
    "torch.maximum(scores, torch.tensor(torch.finfo(scores.dtype).min, device=scores.device))",
    "torch.clamp(scores, min=torch.finfo(scores.dtype).min)",
    "scores.clamp(min=torch.finfo(scores.dtype).min)",
    "scores.clamp_min(torch.finfo(scores.dtype).min)",
]


def test_scores_floored_at_their_dtype_minimum_are_attention():
    # every finite score is at or above the floor: the softmax differs only on a row whose
    # every key is at the minimum (fully masked), as the additive finfo.min mask's rows already do
    for floor in FLOORS:
        assert finding_at(floored(floor), "ADP010", "weights = nn.functional.softmax") is not None, floor


def test_floors_that_cut_finite_scores_are_not_attention():
    for floor in [
        "torch.max(scores, torch.tensor(0.0))",  # a ReLU of the scores
        "torch.max(scores, torch.tensor(-5.0))",  # a floor inside the range
        "torch.max(scores, torch.tensor(torch.finfo(scores.dtype).max))",  # every score the maximum
        "torch.max(scores, torch.tensor(torch.finfo(torch.float16).min))",  # another dtype's minimum
        "torch.max(scores, torch.tensor(torch.finfo(mask.dtype).min))",  # another tensor's dtype
        "torch.max(scores, mask)",  # a tensor floor
        "torch.clamp(scores, max=torch.finfo(scores.dtype).min)",  # a ceiling
        "scores.clamp(torch.finfo(scores.dtype).min, 0.0)",  # a ceiling at 0 too
        "scores.clamp_max(torch.finfo(scores.dtype).min)",
        "torch.max(scores, torch.tensor(torch.finfo(scores.dtype).min, requires_grad=True))",
    ]:
        assert found(floored(floor), "ADP010") == [], floor


def test_floored_scores_fixed_and_the_same():
    import torch

    for floor in (FLOORS[0], FLOORS[3]):
        code = floored(floor)
        fixed = fix_text(code, "model.py", rules("ADP010")).text
        assert "scaled_dot_product_attention(" in fixed, floor
        assert "finfo(scores.dtype).min)" not in fixed.split("scaled_dot_product_attention(")[1].split("else")[0]
        a, b = float64_pair(code, fixed, "Attention")
        a.eval(), b.eval()
        x = torch.randn(3, 5, 16, dtype=torch.float64)
        mask = torch.zeros(3, 1, 1, 5, dtype=torch.float64)
        mask[0, ..., 3:] = torch.finfo(torch.float64).min
        # the original's softmax runs in float32 (its dtype=): probabilities rounded to float32
        # (relative 6e-8) over 5 keys of values of order 1, then the float64 product: 1e-6
        with torch.no_grad():
            torch.testing.assert_close(b(x, mask), a(x, mask), rtol=1e-6, atol=1e-6)
        # float32 (the softmax's own dtype: a float64 minimum would cast to -inf in it), a row
        # of the first batch fully masked: the minimum absorbs every score, uniform in both
        a, b, x = a.float(), b.float(), x.float()
        mask = torch.zeros(3, 1, 1, 5)
        mask[0, ..., 3:] = torch.finfo(torch.float32).min
        mask[1] = torch.finfo(torch.float32).min
        # float32, 8-wide dot products, 5-key softmax: a few ulps of values of order 1
        with torch.no_grad():
            torch.testing.assert_close(b(x, mask), a(x, mask), rtol=1e-5, atol=1e-5)
