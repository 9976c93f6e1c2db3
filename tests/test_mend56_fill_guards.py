"""Masking fills the fix reads as numbers (mend56, review51's two wrong ADP010 patches).  The
fixtures are ours.

- A fill written as arithmetic of literals under a sign (``-(10 ** 9)``, ``-(2**31 - 1)``, also
  as a tensor of ones times it): the fix reads its number as the finder does, so a row the mask
  hides entirely is sent to the original under ``torch.no_grad`` too, as for ``-1e9`` (before,
  the number was unread and the guard tested such rows only while gradients are recorded:
  under no_grad the fused call gave NaN-free but different weights for those rows).
- A fill tensor ``torch.ones_like(scores) * (-(2**31) + 1)`` in float16: the product overflows
  to -inf there and still masks; the fused path's additive mask must compute the same in every
  dtype (before, it filled zeros with -2147483647, which float16 cannot hold, and raised).
"""

from __future__ import annotations

import pytest
from corpus_forms import float64_pair, rules

from adopter.synth import fix_text

HEADS = """\
import math

import torch
from torch import nn
from torch.nn import functional as F


class Attention(nn.Module):
    def __init__(self, dim=8, heads=2):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, dim * 3)
        self.out = nn.Linear(dim, dim)

    def forward(self, x, mask):
        b, n, d = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        s = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(d // self.heads)
        FILL
        p = F.softmax(s, dim=-1)
        y = torch.matmul(p, v)
        return self.out(y.transpose(1, 2).reshape(b, n, d))
"""

FILLS = [
    "s = s.masked_fill(mask == 0, -(10 ** 9))",
    "s = s.masked_fill(mask == 0, -(2**31 - 1))",
    "pad = torch.ones_like(s) * -(10**9)\n        s = torch.where(mask == 0, pad, s)",
]


def _mask(torch):
    # batch 0 keeps some keys of every row; batch 1 hides every key of the first query's row
    mask = torch.ones(2, 1, 5, 5, dtype=torch.long)
    mask[0, :, :, 3:] = 0
    mask[1, :, 0, :] = 0
    mask[1, :, 2:, 1] = 0
    return mask


@pytest.mark.parametrize("fill", FILLS)
@pytest.mark.parametrize("grad", [False, True])
def test_a_negated_arithmetic_fill_is_checked_for_hidden_rows_under_no_grad(fill, grad):
    torch = pytest.importorskip("torch")
    code = HEADS.replace("FILL", fill)
    result = fix_text(code, "model.py", rules("ADP010"))
    assert "scaled_dot_product_attention(" in result.text, result.skipped
    assert "is_grad_enabled" not in result.text  # the guard of a finite literal fill: every step
    a, b = float64_pair(code, result.text, "Attention")
    x = torch.randn(2, 5, 8, dtype=torch.float64)
    mask = _mask(torch)
    with torch.set_grad_enabled(grad):
        out_a, out_b = a(x, mask), b(x, mask)
    # float64, sums over 4 channels and 5 keys: agreement to rounding (a hidden row's uniform
    # weights included: the fused call alone would give that row other weights)
    torch.testing.assert_close(out_b, out_a, rtol=1e-10, atol=1e-12)


def test_a_fill_that_is_no_large_negative_number_stays_unfixed():
    # look-alike: -(10 ** 2) sets masked scores to -100, which no additive mask gives
    code = HEADS.replace("FILL", "s = s.masked_fill(mask == 0, -(10 ** 2))")
    result = fix_text(code, "model.py", rules("ADP010"))
    assert "scaled_dot_product_attention(" not in result.text


TARGET = """\
import torch
from torch import nn
from torch.nn import functional as F


class TargetAttention(nn.Module):
    def forward(self, query, keys, lengths):
        n = keys.size(1)
        valid = torch.arange(n, device=keys.device).unsqueeze(0) < lengths.unsqueeze(1)
        scores = torch.matmul(keys, query.unsqueeze(2)).squeeze(2)
        padding = PADDING
        scores = torch.where(valid, scores, padding)
        weights = F.softmax(scores, dim=-1)  # softmax
        return torch.matmul(weights.unsqueeze(1), keys).squeeze(1)
"""

# (dtype, rtol, atol): float64 to rounding; float32 over sums of 4 and 7 terms; half and
# bfloat16 to a few units of their 11- and 8-bit significands over values of size ~1
DTYPES = [("float64", 1e-10, 1e-12), ("float32", 1e-5, 1e-6), ("float16", 1e-2, 1e-2), ("bfloat16", 4e-2, 4e-2)]


@pytest.mark.parametrize("padding", ["torch.ones_like(scores) * (-(2**31) + 1)", "(-(2**31) + 1) * torch.ones_like(scores)",
                                     "torch.ones_like(scores) * -1e9", "torch.full_like(scores, -1e9)"])
@pytest.mark.parametrize("dtype,rtol,atol", DTYPES)
def test_a_fill_tensor_the_dtype_overflows_computes_the_same_in_every_dtype(padding, dtype, rtol, atol):
    torch = pytest.importorskip("torch")
    code = TARGET.replace("PADDING", padding)
    result = fix_text(code, "model.py", rules("ADP010"))
    assert "scaled_dot_product_attention(" in result.text, result.skipped
    env_a, env_b = {}, {}
    exec(compile(code, "orig.py", "exec"), env_a)  # noqa: S102 (our own fixture)
    exec(compile(result.text, "fixed.py", "exec"), env_b)  # noqa: S102
    a, b = env_a["TargetAttention"](), env_b["TargetAttention"]()
    torch.manual_seed(0)
    kind = getattr(torch, dtype)
    query = torch.randn(3, 4).to(kind)
    keys = torch.randn(3, 7, 4).to(kind)
    lengths = torch.tensor([3, 7, 1])
    for grad in (False, True):
        with torch.set_grad_enabled(grad):
            try:
                out_a = a(query, keys, lengths)
            except RuntimeError:
                # full_like(scores, -1e9) in float16 raises in the original: the patch may too
                assert padding.startswith("torch.full_like") and dtype == "float16"
                with pytest.raises(RuntimeError):
                    b(query, keys, lengths)
                continue
            out_b = b(query, keys, lengths)
        assert out_b.dtype == out_a.dtype
        torch.testing.assert_close(out_b.float(), out_a.float(), rtol=rtol, atol=atol)
