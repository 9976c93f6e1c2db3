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
