"""Fixer limits of research attention found in session 36's blind batches, made exact with a
run-time guard where the fixture's code decides at run time what the patch cannot decide
statically.  The fixtures are ours.

- An attention that reads q's dtype into a local name (``dtype = query.dtype``), then upcasts q
  and k to float32 under a flag (``if self.upcast_attention: query = query.float()``) and casts
  the probabilities back with ``.to(dtype=dtype)`` (monai-generative's CrossAttention).  The cast
  is a no-op exactly where q's dtype at the attention is still the one read before the upcast
  (the flag off, or q float32 already), so the fused call runs only there (guard ``query.dtype
  != dtype``); the original runs otherwise.  Near-miss: the dtype read only under the flag
  (``dtype`` unbound on the other path) is declined.
"""

from __future__ import annotations

import pytest
from corpus_forms import found, line_of, rules

from adopter.synth import fix_text

UPCAST_FLAG = """\
import math

import torch
from torch import nn


class FoldedCrossAttention(nn.Module):
    def __init__(self, dim, heads, upcast_attention=False):
        super().__init__()
        self.heads = heads
        self.scale = 1 / math.sqrt(dim // heads)
        self.upcast_attention = upcast_attention
        self.to_q = nn.Linear(dim, dim, bias=False)
        self.to_k = nn.Linear(dim, dim, bias=False)
        self.to_v = nn.Linear(dim, dim, bias=False)
        self.to_out = nn.Linear(dim, dim)

    def fold(self, x):
        b, n, d = x.shape
        x = x.reshape(b, n, self.heads, d // self.heads).permute(0, 2, 1, 3)
        return x.reshape(b * self.heads, n, d // self.heads)

    def unfold(self, x):
        bh, n, d = x.shape
        x = x.reshape(bh // self.heads, self.heads, n, d).permute(0, 2, 1, 3)
        return x.reshape(bh // self.heads, n, d * self.heads)

    def _attention(self, query, key, value):
        dtype = query.dtype
        if self.upcast_attention:
            query = query.float()
            key = key.float()
        scores = torch.baddbmm(
            torch.empty(query.shape[0], query.shape[1], key.shape[1], dtype=query.dtype, device=query.device),
            query,
            key.transpose(-1, -2),
            beta=0,
            alpha=self.scale,
        )
        probs = scores.softmax(dim=-1)
        probs = probs.to(dtype=dtype)
        return torch.bmm(probs, value)

    def forward(self, x, context=None):
        context = x if context is None else context
        q = self.fold(self.to_q(x))
        k = self.fold(self.to_k(context))
        v = self.fold(self.to_v(context))
        return self.to_out(self.unfold(self._attention(q, k, v)))
"""

# the dtype read only on the flag's path: on the other one `dtype` is unbound at the cast
READ_UNDER_FLAG = UPCAST_FLAG.replace(
    "        dtype = query.dtype\n        if self.upcast_attention:\n",
    "        if self.upcast_attention:\n            dtype = query.dtype\n")


def _modules(source: str, fixed: str):
    original, patched = {}, {}
    exec(compile(source, "orig.py", "exec"), original)  # noqa: S102 (our own fixture)
    exec(compile(fixed, "fixed.py", "exec"), patched)  # noqa: S102
    return original["FoldedCrossAttention"], patched["FoldedCrossAttention"]


def test_upcast_under_a_flag_is_found_and_fixed_with_a_dtype_guard():
    assert [f.line for f in found(UPCAST_FLAG, "ADP010")] == [line_of(UPCAST_FLAG, "scores = torch.baddbmm(")]
    fixed = fix_text(UPCAST_FLAG, "model.py", rules("ADP010")).text
    assert "scaled_dot_product_attention(" in fixed
    assert "query.dtype != dtype" in fixed


@pytest.mark.parametrize("upcast", [False, True])
@pytest.mark.parametrize("train", [False, True])
def test_the_guarded_fix_computes_the_same_attention(upcast, train):
    import torch

    fixed = fix_text(UPCAST_FLAG, "model.py", rules("ADP010")).text
    assert "scaled_dot_product_attention(" in fixed
    original, patched = _modules(UPCAST_FLAG, fixed)
    for dtype, tol in ((torch.float64, dict(rtol=1e-10, atol=1e-12)),
                       # float32: the flag's upcast is a no-op, so the fused path runs with it on
                       # too; softmax over 7 keys of 4-wide head products, float32 rounding
                       (torch.float32, dict(rtol=1e-5, atol=1e-6))):
        torch.manual_seed(0)
        a = original(16, 4, upcast_attention=upcast).to(dtype).train(train)
        b = patched(16, 4, upcast_attention=upcast).to(dtype).train(train)
        b.load_state_dict(a.state_dict())
        x = torch.randn(2, 7, 16, dtype=dtype, requires_grad=True)
        c = torch.randn(2, 5, 16, dtype=dtype)
        out_a, out_b = a(x, c), b(x, c)
        torch.testing.assert_close(out_b, out_a, **tol)
        grad_a, = torch.autograd.grad(out_a.sum(), x)
        grad_b, = torch.autograd.grad(out_b.sum(), x)
        torch.testing.assert_close(grad_b, grad_a, **tol)


def test_the_guard_sends_a_real_upcast_to_the_original():
    import torch

    fixed = fix_text(UPCAST_FLAG, "model.py", rules("ADP010")).text
    original, patched = _modules(UPCAST_FLAG, fixed)
    torch.manual_seed(0)
    a = original(16, 4, upcast_attention=True).double()
    b = patched(16, 4, upcast_attention=True).double()
    b.load_state_dict(a.state_dict())
    x = torch.randn(2, 7, 16, dtype=torch.float64)
    # float64 in, float32 scores: the original's rounding, kept bit for bit by the fallback
    assert torch.equal(b(x), a(x))


def test_a_dtype_read_only_under_the_flag_is_not_fixed():
    assert READ_UNDER_FLAG != UPCAST_FLAG
    fixed = fix_text(READ_UNDER_FLAG, "model.py", rules("ADP010")).text
    assert "scaled_dot_product_attention(" not in fixed
