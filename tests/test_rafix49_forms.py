"""Research attention fixed but failing verify (rafix49): an additive mask written as a 0/1 mask
times a large negative constant (diffusionlm's ``scores + attention_mask * -1e9``).  The fixtures
are ours.

A query row the product hides whole sits at about the constant, finite: the original's softmax
is (near) uniform there and passes gradients to q and k through the add.  SDPA's fused CPU
kernel agrees in the forward, but its backward recomputes the weights from the row's
log-sum-exp, which at -1e9 in float32 lost ``log(keys)`` to rounding (every weight 1): the
gradients are off by the row's length.  The patch now sends a training step with such a row
(every key at half the constant or below) to the original; other steps take the fused call.
Near-misses: a product with a small constant (a scaled bias, not a mask: no such rows) or with a
name (its value unknown) keeps the fused call without the new term.
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


    class Hidden(nn.Module):
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
                scores = scores + (attention_mask * -1e9)
            probs = F.softmax(scores, dim=-1)
            return torch.matmul(probs, v)


    class Keep(nn.Module):
        def forward(self, q, k, v, keep):
            s = q @ k.transpose(-2, -1) * q.shape[-1] ** -0.5
            s = s + -10000.0 * (1.0 - keep)  # keep product
            return s.softmax(dim=-1) @ v


    class SmallFactor(nn.Module):
        def forward(self, q, k, v, bias):
            s = q @ k.transpose(-2, -1)
            s = s + bias * -0.5  # small factor
            return s.softmax(dim=-1) @ v


    class NamedFactor(nn.Module):
        def __init__(self, penalty=-1e9):
            super().__init__()
            self.penalty = penalty

        def forward(self, q, k, v, mask):
            s = q @ k.transpose(-2, -1)
            s = s + mask * self.penalty  # named factor
            return s.softmax(dim=-1) @ v
""")


def _fixed() -> str:
    return fix_text(CODE, "model.py", rules("ADP010")).text


def _part(text: str, head: str) -> str:
    start = text.index(head)
    end = text.find("\nclass ", start + 1)
    return text[start:end if end != -1 else len(text)]


def _modules(cls: str):
    """The original and the patched class in float32 (the dtype where the fused backward
    loses the rows), the patched one holding the original's state."""
    import torch

    a, b = float64_pair(CODE, _fixed(), cls)
    return a.float(), b.float(), torch


def _grads(module, x, mask):
    import torch

    x = x.clone().requires_grad_()
    y = module(x, mask)
    params = [p for _, p in sorted(module.named_parameters())]
    return y, torch.autograd.grad(y.square().sum(), [x, *params])


def test_product_mask_guard_in_the_patch():
    fixed = _part(_fixed(), "class Hidden(")
    assert "scaled_dot_product_attention(" in fixed
    assert "(attention_mask * -1e9).amax(-1).min() <= (-1e9) / 2" in fixed
    assert "attention_mask is not None\n            and (" in fixed  # only when the mask is given


def test_rows_hidden_whole_train_as_the_original():
    a, b, torch = _modules("Hidden")
    torch.manual_seed(1)
    x = torch.randn(2, 5, 8) * 3
    mask = torch.ones(2, 1, 1, 5)  # diffusionlm's mask hides where it is 1: every key of sequence 0
    mask[1, ..., :3] = 0
    a.train()
    b.train()
    ya, ga = _grads(a, x, mask)
    yb, gb = _grads(b, x, mask)
    torch.testing.assert_close(yb, ya)
    for x_b, x_a in zip(gb, ga):
        torch.testing.assert_close(x_b, x_a)


def test_rows_partly_hidden_take_the_fused_call_and_agree():
    a, b, torch = _modules("Hidden")
    torch.manual_seed(2)
    x = torch.randn(2, 5, 8)
    mask = torch.zeros(2, 1, 1, 5)
    mask[1, ..., -2:] = 1
    calls = []
    original = torch.nn.functional.scaled_dot_product_attention

    def counting(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    for module in (a, b):
        module.train()
    ya, ga = _grads(a, x, mask)
    fixed_globals = b.forward.__globals__
    fixed_globals["scaled_dot_product_attention"] = counting
    try:
        yb, gb = _grads(b, x, mask)
    finally:
        fixed_globals["scaled_dot_product_attention"] = original
    assert calls  # the fused call ran
    torch.testing.assert_close(yb, ya)
    for x_b, x_a in zip(gb, ga):
        torch.testing.assert_close(x_b, x_a, rtol=1e-4, atol=1e-5)


def test_constant_first_and_a_keep_mask_guarded_too():
    fixed = _part(_fixed(), "class Keep(")
    assert "scaled_dot_product_attention(" in fixed
    assert "(-10000.0 * (1.0 - keep)).amax(-1).min() <= (-10000.0) / 2" in fixed
    a, b = float64_pair(CODE, _fixed(), "Keep")
    import torch

    torch.manual_seed(3)
    q, k, v = (torch.randn(2, 2, 4, 6, dtype=torch.float64, requires_grad=True) for _ in range(3))
    keep = torch.ones(2, 1, 1, 4, dtype=torch.float64)
    keep[0] = 0  # a sequence with no key kept
    ya, yb = a(q, k, v, keep), b(q, k, v, keep)
    torch.testing.assert_close(yb, ya)
    for x_b, x_a in zip(torch.autograd.grad(yb.sum(), (q, k)), torch.autograd.grad(ya.sum(), (q, k))):
        torch.testing.assert_close(x_b, x_a)


@pytest.mark.parametrize(("cls", "needle"), [("SmallFactor", "bias * -0.5"), ("NamedFactor", "mask * self.penalty")])
def test_products_without_a_large_literal_keep_the_fused_call_unguarded(cls, needle):
    fixed = _part(_fixed(), f"class {cls}(")
    assert "scaled_dot_product_attention(" in fixed
    assert needle in fixed
    assert ".amax(-1).min()" not in fixed
