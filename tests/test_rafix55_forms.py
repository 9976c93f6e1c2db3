"""An additive mask written as arithmetic of names, optional or lowered by a negated magnitude (rafix55).

The fixtures are ours.

``scores + (1 - mask[:, None, None].float()) * -self.inf`` under ``if mask is not None:`` or
always (a protein-structure model's pair attention; the factor is a constructor argument, 1e6
or 1e9):
a sequence that is all padding has every key of its rows at about ``-self.inf``.  The eager
softmax is (near) uniform there and SDPA's fused forward agrees, but the fused backward
recomputes the weights from the row's log-sum-exp, which at that magnitude lost ``log(keys)``
to rounding (rafix50's table: every weight 1 at -1e9 in float32), so a training step's
gradients differ.  A mask held in a name or a view of one already sent such a step to the
original; arithmetic of names got no guard.  Now it gets the same term (read again: one more
mask-sized product in the guard, no call).

The same holds where the mask is always given and the file multiplies it by a negated
magnitude (``* -self.inf``).  Near-misses: arithmetic always given with no such penalty (an
ALiBi-style ``self.slope * distance``) keeps today's patch (a tensor test there would be one the original
lacks: fx.symbolic_trace refuses it, rafix50); arithmetic holding a call keeps today's patch
(a call is not read twice); arithmetic of what the attention computes stays declined.
"""

from __future__ import annotations

import textwrap

import pytest
from corpus_forms import float64_pair, rules

from adopter.synth import fix_text

CODE = textwrap.dedent("""\
    import math

    import torch
    from torch import nn


    class PairAttention(nn.Module):
        def __init__(self, dim=8, heads=2, inf=1e9):
            super().__init__()
            self.heads = heads
            self.d = dim // heads
            self.inf = inf
            self.qkv = nn.Linear(dim, 3 * dim)

        def forward(self, x, mask=None):
            b, n, _ = x.shape
            q, k, v = self.qkv(x).view(b, n, 3, self.heads, self.d).permute(2, 0, 3, 1, 4)
            attn = q @ k.transpose(-2, -1) / math.sqrt(self.d)
            if mask is not None:
                attn = attn + (1 - mask[:, None, None].float()) * -self.inf
            attn = attn.softmax(dim=-1)
            return (attn @ v).transpose(1, 2).reshape(b, n, -1)


    class Penalized(nn.Module):
        def __init__(self, dim=8, heads=2, inf=1e9):
            super().__init__()
            self.heads = heads
            self.d = dim // heads
            self.inf = inf
            self.qkv = nn.Linear(dim, 3 * dim)

        def forward(self, x, mask):
            b, n, _ = x.shape
            q, k, v = self.qkv(x).view(b, n, 3, self.heads, self.d).permute(2, 0, 3, 1, 4)
            attn = q @ k.transpose(-2, -1) / math.sqrt(self.d)
            attn = attn + (1 - mask[:, None, None].float()) * -self.inf  # always given
            attn = attn.softmax(dim=-1)
            return (attn @ v).transpose(1, 2).reshape(b, n, -1)


    class Slopes(nn.Module):
        def __init__(self, heads=2):
            super().__init__()
            self.slope = nn.Parameter(torch.ones(heads, 1, 1))

        def forward(self, q, k, v, distance):
            s = q @ k.transpose(-2, -1)
            s = s + self.slope * distance  # always given
            return s.softmax(dim=-1) @ v


    def bias_of(m):
        return m


    class Called(nn.Module):
        def forward(self, q, k, v, m=None):
            s = q @ k.transpose(-2, -1)
            if m is not None:
                s = s + (1 - bias_of(m)) * -1e9  # a call inside the arithmetic
            return s.softmax(dim=-1) @ v


    class OwnScale(nn.Module):
        def forward(self, q, k, v, m=None):
            s = q @ k.transpose(-2, -1)
            if m is not None:
                s = s + (1 - m) * s.detach().abs().amax()  # arithmetic of the scores themselves
            return s.softmax(dim=-1) @ v
""")


def _fixed():
    return fix_text(CODE, "model.py", rules("ADP010"))


def _part(text: str, head: str) -> str:
    start = text.index(head)
    end = min(e for e in (text.find("\nclass ", start + 1), text.find("\ndef ", start + 1), len(text)) if e != -1)
    return text[start:end]


def _flat(text: str) -> str:
    return " ".join(text.split())


def _grads(module, x, *rest):
    import torch

    x = x.clone().requires_grad_()
    y = module(x, *rest)
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


@pytest.mark.parametrize("cls", ["PairAttention", "Penalized"])
def test_arithmetic_penalty_mask_gets_the_rows_guard(cls):
    fixed = _flat(_part(_fixed().text, f"class {cls}("))
    assert "scaled_dot_product_attention(" in fixed
    assert "((1 - mask[:, None, None].float()) * -self.inf).amax(-1).min() <= -100.0" in fixed
    assert "not ((1 - mask[:, None, None].float()) * -self.inf).is_floating_point()" in fixed


@pytest.mark.parametrize("cls", ["PairAttention", "Penalized"])
@pytest.mark.parametrize("inf", [1e6, 1e9])
def test_arithmetic_penalty_mask_hiding_a_row_trains_as_the_original(cls, inf):
    import torch

    a, b = float64_pair(CODE, _fixed().text, cls, inf=inf)
    a, b = a.float().train(), b.float().train()
    torch.manual_seed(5)
    x = torch.randn(2, 5, 8) * 3
    mask = torch.ones(2, 5)
    mask[0] = 0  # a sequence of padding only: every key of its rows hidden
    mask[1, 3:] = 0
    calls = _counting(b)
    ya, ga = _grads(a, x, mask)
    yb, gb = _grads(b, x, mask)
    assert not calls  # the original ran
    torch.testing.assert_close(yb, ya)
    for x_b, x_a in zip(gb, ga):
        torch.testing.assert_close(x_b, x_a)  # (main's patch: the fused call, 4x off at 1e9)
    # no row hidden whole: the fused call; float32 sums over 5 keys and 8 features in another
    # order (the products' gradients through a 1e6-1e9 shift: 1e-4)
    mask[0, :2] = 1
    ya, ga = _grads(a, x, mask)
    yb, gb = _grads(b, x, mask)
    assert len(calls) == 1
    torch.testing.assert_close(yb, ya)
    for x_b, x_a in zip(gb, ga):
        torch.testing.assert_close(x_b, x_a, rtol=1e-4, atol=1e-4)
    # no gradients wanted: the fused call, rows hidden whole or not (its forward is the same)
    mask[0] = 0
    with torch.no_grad():
        torch.testing.assert_close(b(x, mask), a(x, mask))
        if cls == "PairAttention":
            torch.testing.assert_close(b(x, None), a(x, None))
    assert len(calls) == (3 if cls == "PairAttention" else 2)


@pytest.mark.parametrize("cls", ["PairAttention", "Penalized"])
def test_arithmetic_penalty_mask_float64_equals_the_original(cls):
    import torch

    a, b = float64_pair(CODE, _fixed().text, cls)
    torch.manual_seed(6)
    x = torch.randn(3, 4, 8, dtype=torch.float64)
    mask = torch.tensor([[1, 1, 0, 0], [1, 1, 1, 1], [0, 0, 0, 0]], dtype=torch.float64)
    for train in (False, True):
        a.train(train), b.train(train)
        ya, ga = _grads(a, x, mask)
        yb, gb = _grads(b, x, mask)
        torch.testing.assert_close(yb, ya, rtol=1e-12, atol=1e-12)
        for x_b, x_a in zip(gb, ga):
            torch.testing.assert_close(x_b, x_a, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(("cls", "needle"), [
    ("Slopes", "attn_mask=self.slope * distance"),  # always given, no penalty: no tensor test the original lacks
    ("Called", "attn_mask=(1 - bias_of(m)) * -1e9"),  # rafix49's literal product keeps its own term
])
def test_other_arithmetic_masks_keep_todays_patch(cls, needle):
    fixed = _flat(_part(_fixed().text, f"class {cls}("))
    assert "scaled_dot_product_attention(" in fixed
    assert needle in fixed
    assert "<= -100.0" not in fixed


def test_arithmetic_of_the_scores_stays_declined():
    # a term that reads the scores' values is no mask (mend49, ``[forward] given``): the site is
    # the path where ``m is None`` (no term), which the patch takes; the term's path keeps the
    # original code as written (tests/test_mend49_forms.py compares the two in float64)
    result = _fixed()
    part = _part(result.text, "class OwnScale(")
    assert "s + (1 - m) * s.detach().abs().amax()" in part
    assert "if m is not None:" in part and "scaled_dot_product_attention(q, k, v, scale=1.0)" in part
