"""Additive masks whose values the file does not show (rafix50).  The fixtures are ours.

A query row whose every key an additive mask lowers by a large finite amount (a sequence that
is all padding under a ``-1e4``, ``-1e9`` or ``finfo.min`` mask) is near uniform in the eager
softmax, and SDPA's fused CPU kernel agrees in the forward; but its backward recomputes the
weights from the row's log-sum-exp, which at that magnitude lost ``log(keys)`` to rounding, so
the gradients of q and k differ (float32: 2e-4 at -1e4, 5.0 at -1e9).  Before, only a mask
held in a name with values at ``finfo.min / 2`` or below took the original in training, and a
view of a name (``mask[:, None, None, :]``, ``mask.unsqueeze(1)``) got no guard at all (so a bool one, which the code adds as 0/1 and SDPA reads as
keep/drop, changed the forward too).  Now every such mask takes the original where it is not
floating point, and in a training step with a row whose every key is at -100 or below.

Near-misses: a mask known to be 0/-inf or bool (a masked_fill with -inf, a causal keep-mask),
a product with a large literal (rafix49's own term), a call of a function and arithmetic of
names (not read again: left) keep today's patch.
"""

from __future__ import annotations

import textwrap

import pytest
from corpus_forms import float64_pair, rules

from adopter.synth import fix_text

CODE = textwrap.dedent("""\
    import math

    import torch
    import torch.nn.functional as F
    from torch import nn


    class Named(nn.Module):
        def __init__(self, dim=8, heads=2):
            super().__init__()
            self.heads = heads
            self.d = dim // heads
            self.qkv = nn.Linear(dim, 3 * dim)

        def forward(self, x, attention_mask=None):
            b, n, _ = x.shape
            q, k, v = self.qkv(x).view(b, n, 3, self.heads, self.d).permute(2, 0, 3, 1, 4)
            scores = torch.matmul(q, k.transpose(-1, -2))
            scores = scores / math.sqrt(self.d)
            if attention_mask is not None:
                scores = scores + attention_mask
            probs = F.softmax(scores, dim=-1)
            return torch.matmul(probs, v)


    class Viewed(nn.Module):
        def __init__(self, dim=8, heads=2):
            super().__init__()
            self.heads = heads
            self.d = dim // heads
            self.qkv = nn.Linear(dim, 3 * dim)

        def forward(self, x, pad):
            b, n, _ = x.shape
            q, k, v = self.qkv(x).view(b, n, 3, self.heads, self.d).permute(2, 0, 3, 1, 4)
            s = q @ k.transpose(-2, -1) * self.d ** -0.5
            s = s + pad[:, None, None, :]  # viewed
            return s.softmax(dim=-1) @ v


    class Penalty(nn.Module):
        def __init__(self, penalty=-1e9):
            super().__init__()
            self.penalty = penalty

        def forward(self, q, k, v, mask):
            s = q @ k.transpose(-2, -1)
            s = s + mask.unsqueeze(1) * self.penalty  # named factor
            return s.softmax(dim=-1) @ v


    class Filled(nn.Module):
        def forward(self, q, k, v, keep):
            s = q @ k.transpose(-2, -1)
            s = s.masked_fill(~keep, float("-inf"))  # known fill
            return s.softmax(dim=-1) @ v


    class Literal(nn.Module):
        def forward(self, q, k, v, m):
            s = q @ k.transpose(-2, -1)
            s = s + (1.0 - m[:, None, None, :]) * -10000.0  # literal product
            return s.softmax(dim=-1) @ v


    def make_bias(m):
        return m * 0.5


    class Called(nn.Module):
        def forward(self, q, k, v, m):
            s = q @ k.transpose(-2, -1)
            s = s + make_bias(m)  # a call
            return s.softmax(dim=-1) @ v
""")


def _fixed() -> str:
    return fix_text(CODE, "model.py", rules("ADP010")).text


def _part(text: str, head: str) -> str:
    start = text.index(head)
    end = text.find("\nclass ", start + 1)
    end = min(e for e in (end, text.find("\ndef ", start + 1), len(text)) if e != -1)
    return text[start:end]


def _flat(text: str) -> str:
    return " ".join(text.split())


def _grads(module, *inputs):
    import torch

    x = inputs[0].clone().requires_grad_()
    y = module(x, *inputs[1:])
    params = [p for _, p in sorted(module.named_parameters())]
    return y, torch.autograd.grad(y.square().sum(), [x, *params])


def _counting(module):
    """Count the fused calls of ``module``'s forward (its module's global)."""
    import torch

    calls = []
    original = torch.nn.functional.scaled_dot_product_attention

    def counting(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    module.forward.__globals__["scaled_dot_product_attention"] = counting
    return calls


@pytest.mark.parametrize("fill", [-10000.0, -1e9])
def test_named_finite_mask_hiding_a_row_trains_as_the_original(fill):
    import torch

    a, b = float64_pair(CODE, _fixed(), "Named")
    a, b = a.float().train(), b.float().train()
    torch.manual_seed(1)
    x = torch.randn(2, 5, 8) * 3
    keep = torch.ones(2, 1, 1, 5)
    keep[0] = 0  # a sequence of padding only: every key of its rows hidden
    keep[1, ..., 3:] = 0
    mask = (1.0 - keep) * fill  # the caller's extended mask (BERT's -10000.0)
    calls = _counting(b)
    ya, ga = _grads(a, x, mask)
    yb, gb = _grads(b, x, mask)
    torch.testing.assert_close(yb, ya)
    for x_b, x_a in zip(gb, ga):
        torch.testing.assert_close(x_b, x_a)  # (on main: the fused call's gradients, off)
    assert not calls  # the original ran
    # no row hidden whole, or no gradients wanted: the fused call
    keep[0, ..., :2] = 1
    mask = (1.0 - keep) * fill
    ya, ga = _grads(a, x, mask)
    yb, gb = _grads(b, x, mask)
    assert len(calls) == 1
    torch.testing.assert_close(yb, ya)
    for x_b, x_a in zip(gb, ga):
        torch.testing.assert_close(x_b, x_a, rtol=1e-4, atol=1e-4)  # (float32 sums in another order)
    with torch.no_grad():
        keep[0] = 0
        torch.testing.assert_close(b(x, (1.0 - keep) * fill), a(x, (1.0 - keep) * fill))
    assert len(calls) == 2


def test_named_mask_guard_reads_rows_at_any_large_negative_value():
    fixed = _flat(_part(_fixed(), "class Named("))
    assert "attention_mask.amax(-1).min() <= -100.0" in fixed
    assert "finfo(attention_mask.dtype).min / 2" not in fixed


def test_viewed_mask_hiding_a_row_trains_as_the_original():
    import torch

    fixed = _flat(_part(_fixed(), "class Viewed("))
    assert "not pad[:, None, None, :].is_floating_point()" in fixed
    assert "pad[:, None, None, :].amax(-1).min() <= -100.0" in fixed
    a, b = float64_pair(CODE, _fixed(), "Viewed")
    a, b = a.float().train(), b.float().train()
    torch.manual_seed(2)
    x = torch.randn(2, 4, 8) * 3
    pad = torch.zeros(2, 4)
    pad[1] = torch.finfo(torch.float32).min  # HF's finfo.min mask, seen through a view
    calls = _counting(b)
    ya, ga = _grads(a, x, pad)
    yb, gb = _grads(b, x, pad)
    assert not calls
    torch.testing.assert_close(yb, ya)
    for x_b, x_a in zip(gb, ga):
        torch.testing.assert_close(x_b, x_a)


def test_viewed_bool_mask_is_added_as_the_original_adds_it():
    import torch

    a, b = float64_pair(CODE, _fixed(), "Viewed")
    torch.manual_seed(3)
    x = torch.randn(2, 4, 8, dtype=torch.float64)
    pad = torch.tensor([[True, True, False, False], [True, False, True, True]])
    with torch.no_grad():
        # the original adds 1 where the mask is True; SDPA would drop the False keys instead
        torch.testing.assert_close(b(x, pad), a(x, pad))


@pytest.mark.parametrize(("cls", "needle"), [
    ("Filled", "attn_mask=keep"),  # a keep-mask of -inf: known, no row test
    ("Literal", "((1.0 - m[:, None, None, :]) * -10000.0).amax(-1).min() <= (-10000.0) / 2"),  # rafix49's
    ("Called", "attn_mask=make_bias(m)"),  # a call is not read twice
    ("Penalty", "attn_mask=mask.unsqueeze(1) * self.penalty"),  # arithmetic: not read twice (left)
])
def test_known_masks_keep_todays_patch(cls, needle):
    fixed = _flat(_part(_fixed(), f"class {cls}("))
    assert "scaled_dot_product_attention(" in fixed
    assert needle in fixed
    assert "<= -100.0" not in fixed
