"""Attention whose additive mask is subtracted from the scores (XLNet's ``score - 1e30 * mask``,
``score - 10000.0 * (1 - m)``, ``attn - (~m) * 1e9``): read as ``score + (-(c * m))`` when the
subtracted term is a product with a large literal (structure/canon.subtracted_mask), and fixed
with ``attn_mask=-(c * m)`` (synth/sdpa.py).  Our own fixtures; near-misses (a difference of
two score products -- differential attention --, a subtraction of the probabilities' own
statistic, a mask subtracted after the softmax, a small weight) stay unmatched."""

from __future__ import annotations

import textwrap

import pytest
from corpus_forms import finding_at, float64_pair, rules

from adopter.synth import fix_text

TEMPLATE = textwrap.dedent("""\
    import torch
    from torch import nn


    class Attn(nn.Module):
        def __init__(self, d=4, p=0.0):
            super().__init__()
            self.scale = d ** -0.5
            self.drop = nn.Dropout(p)

        def forward(self, q, k, v, m):
            score = torch.matmul(q, k.transpose(-1, -2)) * self.scale
            score = MASKED
            prob = nn.functional.softmax(score, dim=-1)
            prob = self.drop(prob)
            return torch.matmul(prob, v)
""")

POSITIVES = {
    "big_times_mask": "score - 1e30 * m",
    "mask_times_big": "score - m * 1e30",
    "complement": "score - 10000.0 * (1 - m)",
    "inverted_bool": "score - (~m.bool()) * 1e9",
}


def form(masked: str) -> str:
    return TEMPLATE.replace("MASKED", masked)


@pytest.mark.parametrize("name", sorted(POSITIVES))
def test_subtracted_mask_found(name):
    assert finding_at(form(POSITIVES[name]), "ADP010", "softmax(score") is not None


@pytest.mark.parametrize("name", sorted(POSITIVES))
def test_subtracted_mask_fixed_and_equal_in_float64(name):
    import torch

    code = form(POSITIVES[name])
    result = fix_text(code, "model.py", rules("ADP010"))
    assert len(result.applied) == 1, result.skipped
    assert "scaled_dot_product_attention(" in result.text and "attn_mask=-" in result.text
    a, b = float64_pair(code, result.text, "Attn")
    g = torch.Generator().manual_seed(3)
    q, k, v = (torch.randn(2, 3, 5, 4, dtype=torch.float64, generator=g) for _ in range(3))
    m = (torch.rand(2, 1, 1, 5, generator=g) > 0.6).double()
    m[..., 0] = 0.0  # (every row keeps a key)
    for mode in ("eval", "train"):  # (p = 0: the fused path is taken in training too)
        getattr(a, mode)()
        getattr(b, mode)()
        xa = [t.clone().requires_grad_() for t in (q, k, v)]
        xb = [t.clone().requires_grad_() for t in (q, k, v)]
        oa, ob = a(*xa, m), b(*xb, m)
        torch.testing.assert_close(ob, oa, rtol=0, atol=1e-10)
        oa.sum().backward()
        ob.sum().backward()
        for ta, tb in zip(xa, xb):
            torch.testing.assert_close(tb.grad, ta.grad, rtol=0, atol=1e-10)


DIFFERENTIAL = textwrap.dedent("""\
    import torch
    from torch import nn


    class Attn(nn.Module):
        def forward(self, q1, k1, q2, k2, v):
            s1 = torch.matmul(q1, k1.transpose(-1, -2))
            s2 = torch.matmul(q2, k2.transpose(-1, -2))
            score = s1 - 0.8 * s2
            prob = nn.functional.softmax(score, dim=-1)
            return torch.matmul(prob, v)
""")

AFTER_SOFTMAX = textwrap.dedent("""\
    import torch
    from torch import nn


    class Attn(nn.Module):
        def forward(self, q, k, v, m):
            score = torch.matmul(q, k.transpose(-1, -2))
            prob = nn.functional.softmax(score, dim=-1)
            prob = prob - 1e4 * m
            return torch.matmul(prob, v)
""")

STATISTIC = form("score - 1e4 * score.amax(-1, keepdim=True)")


def test_difference_of_two_products_not_read_as_mask():
    # differential attention: the second product is scores, not a bias
    assert finding_at(DIFFERENTIAL, "ADP010", "softmax(score") is None


def test_mask_subtracted_after_softmax_not_attention():
    assert finding_at(AFTER_SOFTMAX, "ADP010", "softmax(score") is None


def test_subtracted_statistic_of_the_scores_not_fixed():
    result = fix_text(STATISTIC, "model.py", rules("ADP010"))
    assert "attn_mask=-" not in result.text


# Several additive terms summed into the scores before the scale (Transformer-XL / XLNet's
# content, position and segment scores): the first a q.k product, the others biases.
SUMMED = textwrap.dedent("""\
    import torch
    from torch import nn


    class Attn(nn.Module):
        def __init__(self, d=4, p=0.0):
            super().__init__()
            self.scale = d ** -0.5
            self.drop = nn.Dropout(p)

        def forward(self, q, k, v, pos, seg, m):
            ac = torch.matmul(q, k.transpose(-1, -2))
            bd = torch.matmul(q, pos.transpose(-1, -2))
            score = SUM
            prob = nn.functional.softmax(score, dim=-1)
            prob = self.drop(prob)
            return torch.matmul(prob, v)
""")

SUMS = {
    "three_terms_before_scale": "(ac + bd + seg) * self.scale",
    "three_terms_masked": "(ac + bd + seg) * self.scale - 1e30 * m",
    # (read before this change too: the slots after the scale; kept as a guard)
    "four_terms_after_scale": "ac * self.scale + bd + seg + seg.transpose(-1, -2)",
}


@pytest.mark.parametrize("name", sorted(SUMS))
def test_summed_terms_found(name):
    assert finding_at(SUMMED.replace("SUM", SUMS[name]), "ADP010", "softmax(score") is not None


@pytest.mark.parametrize("name", ["three_terms_before_scale", "three_terms_masked"])
def test_summed_terms_fixed_and_equal_in_float64(name):
    import torch

    code = SUMMED.replace("SUM", SUMS[name])
    result = fix_text(code, "model.py", rules("ADP010"))
    assert len(result.applied) == 1, result.skipped
    assert "scaled_dot_product_attention(" in result.text
    a, b = float64_pair(code, result.text, "Attn")
    g = torch.Generator().manual_seed(5)
    q, k, v, pos = (torch.randn(2, 3, 5, 4, dtype=torch.float64, generator=g) for _ in range(4))
    seg = torch.randn(2, 3, 5, 5, dtype=torch.float64, generator=g)
    m = (torch.rand(2, 1, 1, 5, generator=g) > 0.6).double()
    m[..., 0] = 0.0
    for mode in ("eval", "train"):
        getattr(a, mode)()
        getattr(b, mode)()
        xa = [t.clone().requires_grad_() for t in (q, k, v, pos, seg)]
        xb = [t.clone().requires_grad_() for t in (q, k, v, pos, seg)]
        oa, ob = a(*xa, m), b(*xb, m)
        torch.testing.assert_close(ob, oa, rtol=0, atol=1e-10)
        oa.sum().backward()
        ob.sum().backward()
        for ta, tb in zip(xa, xb):
            torch.testing.assert_close(tb.grad, ta.grad, rtol=0, atol=1e-10)


def test_sum_led_by_an_elementwise_product_not_regrouped():
    # ac = q * k is no q.k product: the sum is read as written, and with no product in it
    # (bd dropped) there is no attention
    code = SUMMED.replace("ac = torch.matmul(q, k.transpose(-1, -2))", "ac = q * k").replace(
        "bd = torch.matmul(q, pos.transpose(-1, -2))", "bd = pos * 2.0").replace("SUM", "(ac + bd + seg) * self.scale")
    assert finding_at(code, "ADP010", "softmax(score") is None


def test_terms_summed_after_the_softmax_not_attention():
    code = SUMMED.replace("SUM", "ac * self.scale").replace(
        "prob = self.drop(prob)", "prob = prob + bd + seg")
    assert finding_at(code, "ADP010", "softmax(score") is None
