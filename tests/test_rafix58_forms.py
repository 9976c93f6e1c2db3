"""Fixer limits of research attention found but not fixed (session 37), made exact with a
run-time guard where the code decides at run time what the patch cannot decide statically.
The fixtures are ours.

- A key-padding fill in the mask's own if, itself in the body of an inner if whose else fills
  the same positions in another layout (lightseq's fairseq-style attention: `if not self.tpu:
  <fill> else: <transpose, fill, transpose>`).  The inner test reads only names and attributes,
  so the guard sends the else to the original before the attention begins (`key_padding_mask
  is not None and self.tpu`); the fused path takes the body's fill as its mask.  Near-misses:
  an inner test that calls a method (evaluated again before the attention, it might not give the
  same truth) or reads a name the mask's if assigns first is declined; an inner body that does more than the fill is no step the fused call
  takes, so every padded call goes to the original.
- A bias built in an if the guard sends to the original (`if bias is None: <raise check>; bias
  = <relative bias>`, texar's T5 attention) and then added to the scores and returned.  Where
  the test fails the body never runs on either path, so the fused call may take the bias as it
  was handed in and return it.  Near-miss: an else branch that builds the bias from the scores'
  values (a value of the attention) stays declined.
"""

from __future__ import annotations

import pytest
from corpus_forms import float64_pair, found, line_of, rules

from adopter.synth import fix_text

PADDING_LAYOUTS = """\
import torch
import torch.nn.functional as F
from torch import nn


class PaddedSelfAttention(nn.Module):
    def __init__(self, dim=16, heads=4, dropout=0.0, tpu=False):
        super().__init__()
        self.heads = heads
        self.head_dim = dim // heads
        self.scaling = self.head_dim ** -0.5
        self.tpu = tpu
        self.q_proj = nn.Linear(dim, dim)
        self.k_proj = nn.Linear(dim, dim)
        self.v_proj = nn.Linear(dim, dim)
        self.out_proj = nn.Linear(dim, dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, x, key_padding_mask=None):
        tgt_len, bsz, dim = x.shape
        q = self.q_proj(x) * self.scaling
        k = self.k_proj(x)
        v = self.v_proj(x)
        q = q.contiguous().view(tgt_len, bsz * self.heads, self.head_dim).transpose(0, 1)
        k = k.contiguous().view(-1, bsz * self.heads, self.head_dim).transpose(0, 1)
        v = v.contiguous().view(-1, bsz * self.heads, self.head_dim).transpose(0, 1)
        src_len = k.size(1)
        attn_weights = torch.bmm(q, k.transpose(1, 2))
        if key_padding_mask is not None:
            attn_weights = attn_weights.view(bsz, self.heads, tgt_len, src_len)
            if not self.tpu:
                attn_weights = attn_weights.masked_fill(
                    key_padding_mask.unsqueeze(1).unsqueeze(2).to(torch.bool), float("-inf")
                )
            else:
                attn_weights = attn_weights.transpose(0, 2)
                attn_weights = attn_weights.masked_fill(key_padding_mask, float("-inf"))
                attn_weights = attn_weights.transpose(0, 2).contiguous()
            attn_weights = attn_weights.view(bsz * self.heads, tgt_len, src_len)
        attn_weights = F.softmax(attn_weights, dim=-1)
        attn_probs = self.drop(attn_weights)
        attn = torch.bmm(attn_probs, v)
        attn = attn.transpose(0, 1).contiguous().view(tgt_len, bsz, dim)
        return self.out_proj(attn)

    def on_tpu(self):
        return self.tpu
"""

# the inner test calls a method: read again before the attention it need not give the same truth
CALLED_TEST = PADDING_LAYOUTS.replace("            if not self.tpu:\n", "            if not self.on_tpu():\n")
# the inner test reads a name the mask's if assigns first: no guard can read it before the attention
TEST_OF_A_LOCAL = PADDING_LAYOUTS.replace("            if not self.tpu:\n",
                                          "            wide = src_len > 4\n            if not wide:\n")
# the inner body also scales the scores: more than the fill the fused call takes
MORE_THAN_FILL = PADDING_LAYOUTS.replace(
    "            else:\n                attn_weights = attn_weights.transpose(0, 2)\n",
    "                attn_weights = attn_weights * 2.0\n"
    "            else:\n                attn_weights = attn_weights.transpose(0, 2)\n")

SENT_BIAS = """\
import torch
import torch.nn.functional as F
from torch import nn


class RelativeBiasAttention(nn.Module):
    def __init__(self, dim=16, heads=4, dropout=0.0, buckets=3):
        super().__init__()
        self.heads = heads
        self.dropout = dropout
        self.q = nn.Linear(dim, dim, bias=False)
        self.k = nn.Linear(dim, dim, bias=False)
        self.v = nn.Linear(dim, dim, bias=False)
        self.o = nn.Linear(dim, dim, bias=False)
        self.rel = nn.Embedding(2 * buckets + 1, heads)
        self.buckets = buckets

    def relative_bias(self, n, m):
        pos = torch.arange(m)[None, :] - torch.arange(n)[:, None]
        pos = pos.clamp(-self.buckets, self.buckets) + self.buckets
        return self.rel(pos).permute(2, 0, 1).unsqueeze(0)

    def split(self, x):
        b, n, d = x.shape
        return x.reshape(b, n, self.heads, d // self.heads).permute(0, 2, 1, 3)

    def forward(self, x, bias=None, pad=None):
        q, k, v = self.split(self.q(x)), self.split(self.k(x)), self.split(self.v(x))
        scores = torch.einsum("bnqd,bnkd->bnqk", q, k)
        if bias is None:
            if self.rel is None:
                raise ValueError("no relative table to build the bias from")
            bias = self.relative_bias(x.shape[1], x.shape[1])
            if pad is not None:
                pad = pad.to(device=scores.device)
                bias = bias + pad
        scores += bias
        probs = torch.softmax(scores, dim=-1)
        probs = F.dropout(probs, self.dropout, self.training)
        out = torch.matmul(probs, v)
        b, h, n, d = out.shape
        return self.o(out.permute(0, 2, 1, 3).reshape(b, n, h * d)), bias
"""

# an else branch building the bias from the scores' values: a value of the attention
BIAS_FROM_SCORES = SENT_BIAS.replace(
    "                bias = bias + pad\n",
    "                bias = bias + pad\n        else:\n            bias = bias + scores.mean()\n")


def _fixed(source: str) -> str:
    return fix_text(source, "model.py", rules("ADP010")).text


def test_a_fill_whose_else_fills_in_another_layout_is_fixed_with_the_else_sent_to_the_original():
    assert [f.line for f in found(PADDING_LAYOUTS, "ADP010")] == [line_of(PADDING_LAYOUTS, "attn_weights = torch.bmm(q")]
    fixed = _fixed(PADDING_LAYOUTS)
    assert "scaled_dot_product_attention(" in fixed
    assert "key_padding_mask is not None and self.tpu" in fixed


@pytest.mark.parametrize("tpu", [False, True])
@pytest.mark.parametrize("train", [False, True])
@pytest.mark.parametrize("padded", [False, True])
def test_the_guarded_fill_computes_the_same_attention(tpu, train, padded):
    import torch

    fixed = _fixed(PADDING_LAYOUTS)
    assert "scaled_dot_product_attention(" in fixed
    a, b = float64_pair(PADDING_LAYOUTS, fixed, "PaddedSelfAttention", tpu=tpu)
    a.train(train)
    b.train(train)
    x = torch.randn(5, 3, 16, dtype=torch.float64, requires_grad=True)  # (time, batch, channels)
    # each sequence keeps at least one key: no row is filled entirely
    mask = torch.tensor([[0, 0, 0, 1, 1], [0, 0, 0, 0, 0], [0, 1, 0, 0, 1]], dtype=torch.bool) if padded else None
    out_a, out_b = a(x, mask), b(x, mask)
    # float64, softmax over 5 keys of 4-wide head products: rounding far below these
    torch.testing.assert_close(out_b, out_a, rtol=1e-10, atol=1e-12)
    grad_a, = torch.autograd.grad(out_a.sum(), x)
    grad_b, = torch.autograd.grad(out_b.sum(), x)
    torch.testing.assert_close(grad_b, grad_a, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("source", [CALLED_TEST, TEST_OF_A_LOCAL], ids=["called-test", "test-of-a-local"])
def test_an_inner_if_whose_test_the_guard_cannot_read_is_not_fixed(source):
    assert source != PADDING_LAYOUTS
    assert len(found(source, "ADP010")) == 1
    assert "scaled_dot_product_attention(" not in _fixed(source)


def test_an_inner_body_doing_more_than_the_fill_sends_every_padded_call_to_the_original():
    import torch

    assert MORE_THAN_FILL != PADDING_LAYOUTS
    fixed = _fixed(MORE_THAN_FILL)
    # (the fused path is taken without a padding mask only: the scaled fill never runs there)
    assert "scaled_dot_product_attention(" in fixed and "and self.tpu" not in fixed
    assert "if (\n            key_padding_mask is not None\n" in fixed
    a, b = float64_pair(MORE_THAN_FILL, fixed, "PaddedSelfAttention")
    x = torch.randn(5, 3, 16, dtype=torch.float64)
    mask = torch.tensor([[0, 0, 0, 1, 1], [0, 0, 0, 0, 0], [0, 1, 0, 0, 1]], dtype=torch.bool)
    for m in (None, mask):
        torch.testing.assert_close(b(x, m), a(x, m), rtol=1e-10, atol=1e-12)


def test_a_bias_built_under_a_sent_if_is_read_as_handed_in():
    assert [f.line for f in found(SENT_BIAS, "ADP010")] == [line_of(SENT_BIAS, "scores = torch.einsum(")]
    fixed = _fixed(SENT_BIAS)
    assert "scaled_dot_product_attention(" in fixed
    assert "attn_mask=bias" in fixed
    assert "if bias is None:" in fixed


@pytest.mark.parametrize("handed", [False, True])
@pytest.mark.parametrize("train", [False, True])
def test_the_sent_bias_computes_the_same_attention_and_returns_the_same_bias(handed, train):
    import torch

    fixed = _fixed(SENT_BIAS)
    assert "scaled_dot_product_attention(" in fixed
    a, b = float64_pair(SENT_BIAS, fixed, "RelativeBiasAttention")
    a.train(train)
    b.train(train)
    x = torch.randn(2, 6, 16, dtype=torch.float64, requires_grad=True)
    pad = torch.zeros(2, 1, 1, 6, dtype=torch.float64)
    pad[0, ..., 4:] = -1e4  # an additive padding mask (finite: every row keeps keys)
    bias = a.relative_bias(6, 6).detach() + pad if handed else None
    (out_a, bias_a), (out_b, bias_b) = a(x, bias, pad), b(x, bias, pad)
    torch.testing.assert_close(out_b, out_a, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(bias_b, bias_a, rtol=0, atol=0)
    grad_a, = torch.autograd.grad(out_a.sum(), x)
    grad_b, = torch.autograd.grad(out_b.sum(), x)
    torch.testing.assert_close(grad_b, grad_a, rtol=1e-10, atol=1e-12)


def test_a_bias_built_from_the_scores_in_the_else_is_not_fixed():
    assert BIAS_FROM_SCORES != SENT_BIAS
    # a term added after the scale that reads the scores' values is no mask (mend49): no finding
    assert found(BIAS_FROM_SCORES, "ADP010") == []
    assert "scaled_dot_product_attention(" not in _fixed(BIAS_FROM_SCORES)
