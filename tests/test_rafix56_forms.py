"""Research attention forms found but not fixed in research64's batch.  The fixtures are ours.

- ADP010, a softmax computed in the value's dtype (``torch.softmax(scores, dim=-1,
  dtype=v.dtype)``): the softmax casts its input to that dtype first, so it is the plain softmax
  exactly where the scores already have v's dtype.  The scores have q's (a product of q and k,
  a number scale, fills, and an added mask made with ``dtype=scores.dtype``), and SDPA requires
  q, k and v of one dtype, so the patch takes the fused call when ``v.dtype == q.dtype`` and
  the original otherwise (where the original computes the softmax in v's dtype).
Look-alikes that stay declined: a softmax in the dtype of a bias that widened the scores is
not q's dtype; a softmax in float16 (a fixed other dtype).
"""

from __future__ import annotations

import pytest
from corpus_forms import rules

from adopter.synth import fix_text

VALUE_DTYPE = """\
import math

import torch
from einops import rearrange
from torch import nn


class CrossAttention(nn.Module):
    def __init__(self, causal=False, attention_dropout=0.0):
        super().__init__()
        self.causal = causal
        self.drop = nn.Dropout(attention_dropout)

    def forward(self, q, k, v, key_padding_mask=None):
        batch_size, seqlen_k = q.shape[0], k.shape[1]
        scale = 1.0 / math.sqrt(q.shape[-1])
        scores = torch.einsum("bthd,bshd->bhts", q, k * scale)
        if key_padding_mask is not None:
            padding_mask = torch.full((batch_size, seqlen_k), -10000.0, dtype=scores.dtype, device=scores.device)
            padding_mask.masked_fill_(key_padding_mask, 0.0)
            scores = scores + rearrange(padding_mask, 'b s -> b 1 1 s')
        attention = torch.softmax(scores, dim=-1, dtype=v.dtype)
        attention_drop = self.drop(attention)
        output = torch.einsum("bhts,bshd->bthd", attention_drop, v)
        return output
"""

LOOK_ALIKES = {
    "a bias of its own dtype widens the scores": VALUE_DTYPE.replace(
        "scores = scores + rearrange(padding_mask, 'b s -> b 1 1 s')",
        "scores = scores + rearrange(padding_mask, 'b s -> b 1 1 s') + self.bias",
    ).replace("self.causal = causal", "self.causal = causal\n        self.bias = torch.zeros(1, dtype=torch.float64)"),
    "a fixed narrower dtype": VALUE_DTYPE.replace("dtype=v.dtype)", "dtype=torch.float16)"),
}


def _fixed(code: str) -> str:
    return fix_text(code, "model.py", rules("ADP010")).text


def test_softmax_in_the_values_dtype_is_fixed_behind_a_dtype_guard():
    fixed = _fixed(VALUE_DTYPE)
    assert "scaled_dot_product_attention(" in fixed
    assert "v.dtype != q" in fixed  # the original where v's dtype is not q's


@pytest.mark.parametrize("why", sorted(LOOK_ALIKES))
def test_softmax_in_another_dtype_stays_declined(why):
    code = LOOK_ALIKES[why]
    result = fix_text(code, "model.py", rules("ADP010"))
    assert result.text == code, why
    assert [reason for _, reason in result.skipped] == [
        "the softmax computes in a dtype other than float32" + (", of scores that may have another"
                                                                 if "bias" in why else "")], why


def _pair(code: str):
    original, patched = {}, {}
    exec(compile(code, "orig.py", "exec"), original)  # noqa: S102 (our own fixture)
    exec(compile(_fixed(code), "fixed.py", "exec"), patched)  # noqa: S102
    return original["CrossAttention"](), patched["CrossAttention"]()


@pytest.mark.parametrize("dtype, tol", [("float64", 1e-12), ("float32", 1e-5)])
def test_the_fused_call_computes_the_same_outputs_and_gradients(dtype, tol):
    import torch

    a, b = _pair(VALUE_DTYPE)
    a.eval(), b.eval()
    torch.manual_seed(0)
    dt = getattr(torch, dtype)
    q, k, v = (torch.randn(2, 5, 3, 8, dtype=dt) for _ in range(3))
    pad = torch.tensor([[True] * 5, [True, True, True, False, False]])
    # float64: agreement to rounding; float32: a softmax over 5 keys and an 8-wide head, a
    # few ulps of the fused kernel's other summation order
    for mask in (None, pad):
        leaves_a = [t.clone().requires_grad_(True) for t in (q, k, v)]
        leaves_b = [t.clone().requires_grad_(True) for t in (q, k, v)]
        out_a, out_b = a(*leaves_a, key_padding_mask=mask), b(*leaves_b, key_padding_mask=mask)
        torch.testing.assert_close(out_b, out_a, rtol=tol, atol=tol)
        out_a.square().sum().backward()
        out_b.square().sum().backward()
        for la, lb in zip(leaves_a, leaves_b):
            torch.testing.assert_close(lb.grad, la.grad, rtol=tol, atol=tol)


def test_values_of_another_dtype_take_the_original():
    import torch

    a, b = _pair(VALUE_DTYPE)
    a.eval(), b.eval()
    torch.manual_seed(1)
    q, k = (torch.randn(2, 5, 3, 8, dtype=torch.float32) for _ in range(2))
    v = torch.randn(2, 5, 3, 8, dtype=torch.float64)
    # the original runs the softmax in float64 and its value product in float64; the fused
    # call would reject q and v of two dtypes: the guard sends this to the original, bitwise
    assert torch.equal(b(q, k, v), a(q, k, v))


# - ADP010, a bias built from the sequence length and cast to the scores' type
#   (``scores + self._bias_proximal(t).type_as(scores)``): it reads the scores only for their
#   dtype and device, q's where the steps before keep q's dtype, so the mask is the same bias
#   cast to q (``type_as(query)``), an exact float ``attn_mask`` that broadcasts to the scores.
#   Look-alike: a bias cast to the scores after a tensor scale (which may widen them) stays
#   declined.
PROXIMAL = """\
import math

import torch
from torch import nn
from torch.nn import functional as F


class ProximalAttention(nn.Module):
    def __init__(self, channels, n_heads, p_dropout=0.0, proximal_bias=True):
        super().__init__()
        self.n_heads = n_heads
        self.k_channels = channels // n_heads
        self.proximal_bias = proximal_bias
        self.drop = nn.Dropout(p_dropout)

    def attention(self, query, key, value, mask=None):
        b, d, t_s, t_t = key.size(0), key.size(1), key.size(2), query.size(2)
        query = query.view(b, self.n_heads, self.k_channels, t_t).transpose(2, 3)
        key = key.view(b, self.n_heads, self.k_channels, t_s).transpose(2, 3)
        value = value.view(b, self.n_heads, self.k_channels, t_s).transpose(2, 3)
        scores = torch.matmul(query / math.sqrt(self.k_channels), key.transpose(-2, -1))
        if self.proximal_bias:
            assert t_s == t_t, "self-attention only"
            scores = scores + self._bias_proximal(t_s).type_as(scores)
        if mask is not None:
            scores = scores.masked_fill(mask == 0, -1e4)
        p_attn = F.softmax(scores, dim=-1)
        p_attn = self.drop(p_attn)
        output = torch.matmul(p_attn, value)
        return output.transpose(2, 3).contiguous().view(b, d, t_t)

    def _bias_proximal(self, length: int):
        r = torch.arange(length, dtype=torch.float32)
        diff = torch.unsqueeze(r, 0) - torch.unsqueeze(r, 1)
        return torch.unsqueeze(torch.unsqueeze(-torch.log1p(torch.abs(diff)), 0), 0)
"""

PROXIMAL_AFTER_TENSOR_SCALE = PROXIMAL.replace(
    "scores = torch.matmul(query / math.sqrt(self.k_channels), key.transpose(-2, -1))",
    "scores = torch.matmul(query, key.transpose(-2, -1)) * self.temperature",
).replace("self.proximal_bias = proximal_bias", "self.proximal_bias = proximal_bias\n"
          "        self.temperature = nn.Parameter(torch.ones(()))")


def test_a_proximal_bias_cast_to_the_scores_is_an_exact_mask():
    fixed = fix_text(PROXIMAL, "model.py", rules("ADP010")).text
    assert "scaled_dot_product_attention(" in fixed
    assert "self._bias_proximal(t_s).type_as(query" in fixed


def test_a_bias_cast_to_scores_a_tensor_scale_may_widen_stays_declined():
    result = fix_text(PROXIMAL_AFTER_TENSOR_SCALE, "model.py", rules("ADP010"))
    assert result.text == PROXIMAL_AFTER_TENSOR_SCALE
    assert [reason for _, reason in result.skipped] == [
        "the mask `self._bias_proximal(t_s).type_as(scores)` is computed by the attention"]


@pytest.mark.parametrize("dtype, tol", [("float64", 1e-12), ("float32", 1e-5)])
@pytest.mark.parametrize("proximal", [True, False])
def test_the_proximal_mask_computes_the_same_outputs_and_gradients(dtype, tol, proximal):
    import torch

    fixed = fix_text(PROXIMAL, "model.py", rules("ADP010")).text
    original, patched = {}, {}
    exec(compile(PROXIMAL, "orig.py", "exec"), original)  # noqa: S102 (our own fixture)
    exec(compile(fixed, "fixed.py", "exec"), patched)  # noqa: S102
    dt = getattr(torch, dtype)
    a = original["ProximalAttention"](16, 2, proximal_bias=proximal).eval()
    b = patched["ProximalAttention"](16, 2, proximal_bias=proximal).eval()
    torch.manual_seed(0)
    x = torch.randn(2, 16, 7, dtype=dt)
    keep = torch.ones(2, 1, 7, 7, dtype=dt)
    keep[1, :, :, 5:] = 0
    # float64: agreement to rounding; float32: a softmax over 7 keys and an 8-wide head, a few
    # ulps of the fused kernel's other summation order
    for mask in (None, keep):
        xa, xb = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
        out_a, out_b = a.attention(xa, xa, xa, mask), b.attention(xb, xb, xb, mask)
        torch.testing.assert_close(out_b, out_a, rtol=tol, atol=tol)
        out_a.square().sum().backward()
        out_b.square().sum().backward()
        torch.testing.assert_close(xb.grad, xa.grad, rtol=tol, atol=tol)
