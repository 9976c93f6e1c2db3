"""An attention form the research corpus left unfound (sites89, session 47), read by what it
computes.  The fixture is ours.

- Scaled scores minus a tensor term before the softmax (ESM3's geometric attention: a rotation
  term ``q @ k^T / sqrt(3)`` times a weight, minus a weighted distance term, plus a bias):
  ``s * w - t`` is ``s * w + (-t)``, the scores plus an additive bias SDPA takes as ``attn_mask``
  (graph ``_scaled_scores_minus``).  Near-misses: the scores are the subtrahend (the softmax of
  negated scores), a difference whose minuend is no product (rotary ``x1 * cos - x2 * sin``).
"""

from __future__ import annotations

import torch
from corpus_forms import edit, finding_at, found, sdpa_fixed

GEOMETRIC = """\
import math
import torch
from torch import nn


class GeometricAttention(nn.Module):
    def __init__(self, heads, dim):
        super().__init__()
        self.heads = heads
        self.to_qkv = nn.Linear(dim, 3 * dim)
        self.distance_weight = nn.Parameter(torch.rand(heads) + 0.5)

    def forward(self, x, points, bias):
        b, n, _ = x.shape
        q, k, v = self.to_qkv(x).view(b, n, 3, self.heads, -1).permute(2, 0, 3, 1, 4)
        distance = (points[:, None, :, None] - points[:, None, None, :]).norm(dim=-1)
        rotation = q.matmul(k.transpose(-1, -2)) / math.sqrt(3)
        scores = rotation * 0.5 - distance * self.distance_weight[:, None, None]
        scores = scores + bias
        probs = torch.softmax(scores, dim=-1)
        return probs.matmul(v)
"""


def _geometric_inputs():
    torch.manual_seed(1)
    x = torch.randn(2, 7, 16, dtype=torch.float64, requires_grad=True)
    points = torch.randn(2, 7, 3, dtype=torch.float64)
    bias = torch.randn(2, 1, 7, 7, dtype=torch.float64)
    return x, points, bias


def test_scaled_scores_minus_a_distance_term_are_an_attention():
    assert finding_at(GEOMETRIC, "ADP010", "torch.softmax(scores") is not None


def test_the_fix_of_scores_minus_a_distance_term_computes_the_same_values_and_gradients():
    fixed = sdpa_fixed(GEOMETRIC)
    assert "scaled_dot_product_attention" in fixed
    namespace_a, namespace_b = {}, {}
    exec(compile(GEOMETRIC, "orig.py", "exec"), namespace_a)  # noqa: S102 (our own fixture)
    exec(compile(fixed, "fixed.py", "exec"), namespace_b)  # noqa: S102
    torch.manual_seed(0)
    a = namespace_a["GeometricAttention"](4, 16).double()
    b = namespace_b["GeometricAttention"](4, 16).double()
    b.load_state_dict(a.state_dict(), strict=True)
    calls = []
    inner = namespace_b["scaled_dot_product_attention"]
    namespace_b["scaled_dot_product_attention"] = lambda *args, **kw: calls.append(1) or inner(*args, **kw)
    for mode in (a.train, a.eval):
        mode()
        b.train(a.training)
        x, points, bias = _geometric_inputs()
        out_a = a(x, points, bias)
        (grad_a,) = torch.autograd.grad(out_a.square().sum(), x)
        x, points, bias = _geometric_inputs()
        out_b = b(x, points, bias)
        (grad_b,) = torch.autograd.grad(out_b.square().sum(), x)
        # float64, 4-wide heads and 7 keys: a few ulps apart at most
        torch.testing.assert_close(out_b, out_a, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(grad_b, grad_a, rtol=1e-12, atol=1e-12)
    assert calls  # the fused path ran


def test_negated_scores_are_no_attention():
    negated = edit(GEOMETRIC, "rotation * 0.5 - distance * self.distance_weight[:, None, None]",
                   "distance * self.distance_weight[:, None, None] - rotation * 0.5")
    assert not found(negated, "ADP010")


def test_a_difference_of_two_weighted_tensors_that_are_no_product_stays_its_own_step():
    rotary = edit(GEOMETRIC, "rotation = q.matmul(k.transpose(-1, -2)) / math.sqrt(3)",
                  "rotation = (q * q.sum(-1, keepdim=True)) / math.sqrt(3)")
    assert not found(rotary, "ADP010")


def test_a_blend_of_the_scores_with_a_keep_mask_is_no_bias():
    # s * keep - 10 * (1 - keep) and s * keep - distance * keep only lower what keep hides
    for blend in ("rotation * keep - 10.0 * (1 - keep)", "rotation * keep - distance * keep"):
        source = edit(GEOMETRIC, "rotation * 0.5 - distance * self.distance_weight[:, None, None]", blend)
        source = edit(source, "def forward(self, x, points, bias):", "def forward(self, x, points, bias, keep):")
        assert not found(source, "ADP010"), blend
