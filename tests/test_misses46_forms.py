"""Two forms research63's blind batch left, read by what they compute.  The fixtures are ours.

- A tensor subtracted from a sum of the scores and a bias before the softmax (forgetting
  attention's ``s + c[..., :, None] - c[..., None, :]``, the cumulative log forget gates of the
  query minus those of the key): ``s + a + (-b)``, an additive mask SDPA takes as
  ``attn_mask = a + (-b)`` (canon.subtracted_term).  Near-misses: differential attention (two
  softmaxes subtracted after), a bias added and subtracted after the softmax.
- RoPE written in place into a preallocated buffer (``r[..., :h] = x[..., h:]; r[..., h:] =
  x[..., :h]; r[..., :h].neg_()``, then ``x *= cos; x.addcmul_(r, sin)``): the buffer holds x's
  rotate-half (canon.swapped_halves_negated), addcmul_ is a product then a sum, and q and k
  rotated so, each on its own lines with one pair of tables, are one RoPE of both.  Reported,
  not fixed (there is no rotate_half function to hand the kernel).  Near-misses: the halves
  copied without the negation, unswapped, or with the wrong half negated; q and k rotated each
  with its own tables (Falcon).
"""

from __future__ import annotations

import pytest
from corpus_forms import found, line_of, rules

from adopter.synth import fix_text

FORGETTING = """\
import torch
import torch.nn.functional as F


def forgetting_attention(q, k, v, g, scale):
    t = q.shape[-2]
    c = g.float().cumsum(-1)
    keep = torch.ones(t, t, dtype=torch.bool, device=q.device).tril()
    s = torch.matmul(q.float() * scale, k.float().transpose(-1, -2))
    s = s + c[..., :, None] - c[..., None, :]
    s = s.masked_fill(~keep, float("-inf"))
    return torch.matmul(F.softmax(s, dim=-1), v.float())
"""

DIFFERENTIAL = """\
import torch
import torch.nn.functional as F


def differential_attention(q1, k1, q2, k2, v, lam):
    p1 = F.softmax(torch.matmul(q1, k1.transpose(-1, -2)), dim=-1)
    p2 = F.softmax(torch.matmul(q2, k2.transpose(-1, -2)), dim=-1)
    return torch.matmul(p1 - lam * p2, v)
"""

AFTER_SOFTMAX = """\
import torch
import torch.nn.functional as F


def shifted_probabilities(q, k, v, a, b):
    s = torch.matmul(q, k.transpose(-1, -2))
    p = F.softmax(s, dim=-1) + a - b
    return torch.matmul(p, v)
"""

IN_PLACE_ROPE = """\
import torch
from torch import nn


class DecodeAttention(nn.Module):
    def __init__(self, heads, kv_heads, dim):
        super().__init__()
        self.kv_heads = kv_heads
        self.half = dim // 2
        self.register_buffer("turned", torch.empty(1, heads, 1, dim), persistent=False)

    def forward(self, q, k, cos, sin):
        h = self.half
        rq = self.turned
        rq[:, :, :, :h] = q[:, :, :, h:]
        rq[:, :, :, h:] = q[:, :, :, :h]
        rq[:, :, :, :h].neg_()
        q *= cos
        q.addcmul_(rq, sin)
        rk = rq[:, :self.kv_heads, :, :]
        rk[:, :, :, :h] = k[:, :, :, h:]
        rk[:, :, :, h:] = k[:, :, :, :h]
        rk[:, :, :, :h].neg_()
        k *= cos
        k.addcmul_(rk, sin)
        return q, k
"""


def _covers(code: str, rule: str, needle: str) -> bool:
    at = line_of(code, needle)
    return any(f.line <= at <= f.end_line for f in found(code, rule))


def test_a_tensor_subtracted_from_the_scores_and_a_bias_is_an_additive_mask():
    assert _covers(FORGETTING, "ADP010", "F.softmax(s, dim=-1)")


def test_the_fix_of_forgetting_attention_computes_the_same():
    import torch

    fixed = fix_text(FORGETTING, "model.py", rules("ADP010")).text
    assert "scaled_dot_product_attention" in fixed
    original, patched = {}, {}
    exec(compile(FORGETTING, "orig.py", "exec"), original)  # noqa: S102 (our own fixture)
    exec(compile(fixed, "fixed.py", "exec"), patched)  # noqa: S102
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 3, 9, 16) for _ in range(3))
    g = torch.nn.functional.logsigmoid(torch.randn(2, 3, 9))
    args = (q, k, v, g, 16 ** -0.5)
    # float32: 16-term products, a 9-key softmax, a 9-term weighted sum: a few ulps apart
    torch.testing.assert_close(patched["forgetting_attention"](*args), original["forgetting_attention"](*args),
                               rtol=1e-5, atol=1e-6)


def test_differential_attention_is_no_sdpa_site():
    assert found(DIFFERENTIAL, "ADP010") == []


def test_a_bias_added_and_subtracted_after_the_softmax_is_no_sdpa_site():
    assert found(AFTER_SOFTMAX, "ADP010") == []


def test_a_plain_difference_keeps_its_own_step():
    # (x - m: a centring, not a term of a sum; the subtracted-mask reading leaves it alone)
    centred = FORGETTING.replace("s = s + c[..., :, None] - c[..., None, :]", "s = s - c[..., None, :]")
    assert centred != FORGETTING
    assert found(centred, "ADP010") == []


def test_rope_written_in_place_into_a_buffer_is_found():
    assert _covers(IN_PLACE_ROPE, "ADP014", "q *= cos")


def test_the_in_place_rope_is_reported_not_fixed():
    assert fix_text(IN_PLACE_ROPE, "model.py", rules("ADP014")).text == IN_PLACE_ROPE


def test_the_in_place_fixture_computes_rotate_half_rope():
    # (what the reading claims, checked on the fixture itself)
    import torch

    space = {}
    exec(compile(IN_PLACE_ROPE, "rope.py", "exec"), space)  # noqa: S102 (our own fixture)
    torch.manual_seed(0)
    module = space["DecodeAttention"](4, 2, 8)
    q, k = torch.randn(1, 4, 1, 8), torch.randn(1, 2, 1, 8)
    cos, sin = torch.randn(1, 1, 1, 8), torch.randn(1, 1, 1, 8)

    def rotate_half(x):
        return torch.cat((-x[..., 4:], x[..., :4]), dim=-1)

    want = (q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin)
    got = module(q.clone(), k.clone(), cos, sin)
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("change", [
    ("rq[:, :, :, :h].neg_()", "rq[:, :, :, :h].abs_()"),  # no negation: a swap, not a rotation
    ("rq[:, :, :, :h] = q[:, :, :, h:]", "rq[:, :, :, :h] = q[:, :, :, :h]"),  # halves not swapped
    ("rq[:, :, :, :h].neg_()", "rq[:, :, :, h:].neg_()"),  # the second half negated: the inverse rotation
])
def test_slice_copies_that_are_no_rotation_are_not_rope(change):
    code = IN_PLACE_ROPE.replace(*change).replace(*(s.replace("rq", "rk").replace("q[", "k[") for s in change))
    assert code != IN_PLACE_ROPE
    assert found(code, "ADP014") == []


def test_q_and_k_rotated_in_place_with_their_own_tables_are_not_one_rope():
    code = IN_PLACE_ROPE.replace("def forward(self, q, k, cos, sin):", "def forward(self, q, k, cos, sin, kc, ks):")
    code = code.replace("k *= cos", "k *= kc").replace("k.addcmul_(rk, sin)", "k.addcmul_(rk, ks)")
    assert found(code, "ADP014") == []


def test_addcmul_with_a_value_factor_is_no_rotation():
    code = IN_PLACE_ROPE.replace("q.addcmul_(rq, sin)", "q.addcmul_(rq, sin, value=0.5)")
    code = code.replace("k.addcmul_(rk, sin)", "k.addcmul_(rk, sin, value=0.5)")
    assert found(code, "ADP014") == []
