"""De-stationary attention fixed (session 44, helper fixer62).  The fixtures are ours.

``(q @ k^T * tau + delta) / sqrt(d) + mask`` (the Non-stationary Transformer's attention: a
learned factor of the product alone, then a learned bias, then the scale): ``(q k^T) * t`` is
``(q * t) k^T`` wherever ``t`` is the same for every key, so the fused call takes ``q * tau``,
the bias scaled by the steps after it alone, and the scale.  The caller hands tau in a shape
the code does not fix (``[batch, 1]`` made ``[batch, 1, 1, 1]``), so the guard tests its last
dimension; a tau of one entry per key takes the original.  A bias that is a Python number
(``delta = 0.0`` when none is given) shifts every score alike: SDPA's mask takes no number, so
the fused call leaves it out there (``... if torch.is_tensor(delta) else <the other parts>``).  A number as the
factor goes into ``scale=``, the bias scaled without it.  The fill form (a causal fill after the
bias, the scale inside the softmax) fills in the fused call's mask.
"""

from __future__ import annotations

import textwrap

import pytest
from corpus_forms import FusedCalls, assert_reported_not_fixed, edit, float64_pair, found, sdpa_fixed

torch = pytest.importorskip("torch")

DE_STATIONARY = textwrap.dedent("""\
    import torch
    from torch import nn


    class DSAttention(nn.Module):
        def __init__(self, dim=16, heads=2, p=0.0):
            super().__init__()
            self.heads = heads
            self.head_dim = dim // heads
            self.qkv = nn.Linear(dim, 3 * dim)
            self.drop = nn.Dropout(p)

        def forward(self, x, mask=None, tau=None, delta=None):
            b, n, _ = x.shape
            q, k, v = self.qkv(x).view(b, n, 3, self.heads, -1).permute(2, 0, 3, 1, 4)
            tau = 1.0 if tau is None else tau.unsqueeze(1).unsqueeze(1)
            delta = 0.0 if delta is None else delta.unsqueeze(1).unsqueeze(1)
            s = torch.matmul(q, k.transpose(-2, -1)) * tau + delta
            s /= self.head_dim ** 0.5
            if mask is not None:
                s = s + mask
            p = torch.softmax(s, dim=-1)  # softmax
            return torch.matmul(self.drop(p), v).transpose(1, 2).reshape(b, n, -1)
""")

DE_STATIONARY_FILLED = textwrap.dedent("""\
    import math

    import torch
    from torch import nn


    class DSAttention(nn.Module):
        def __init__(self, dim=16, heads=2, p=0.0, causal=True):
            super().__init__()
            self.heads = heads
            self.causal = causal
            self.qkv = nn.Linear(dim, 3 * dim)
            self.drop = nn.Dropout(p)

        def forward(self, x, tau=None, delta=None):
            b, n, _ = x.shape
            q, k, v = self.qkv(x).view(b, n, 3, self.heads, -1).unbind(2)
            scale = 1.0 / math.sqrt(q.shape[-1])
            tau = 1.0 if tau is None else tau.unsqueeze(1).unsqueeze(1)
            delta = 0.0 if delta is None else delta.unsqueeze(1).unsqueeze(1)
            s = torch.einsum("blhe,bshe->bhls", q, k) * tau + delta
            if self.causal:
                mask = torch.ones(n, n, dtype=torch.bool, device=x.device).triu(1)
                s.masked_fill_(mask, -math.inf)
            a = self.drop(torch.softmax(scale * s, dim=-1))  # softmax
            return torch.einsum("bhls,bshd->blhd", a, v).reshape(b, n, -1)
""")


def _grads(module, x, **inputs):
    out = module(x, **inputs)
    weights = torch.randn(out.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    leaves = [x, *(t for t in inputs.values() if isinstance(t, torch.Tensor) and t.requires_grad)]
    grads = torch.autograd.grad((out * weights).sum(), [*leaves, *module.parameters()])
    return out, grads


def _assert_same(code: str, calls_expected: int, **make_inputs):
    """The fixed class against the original in float64: outputs and the gradients of the input,
    of tau and delta and of every parameter alike; the fused call made ``calls_expected`` times."""
    fixed = sdpa_fixed(code)
    a, b = float64_pair(code, fixed, "DSAttention")
    counter = FusedCalls(b)
    torch.manual_seed(2)
    inputs = {name: make() for name, make in make_inputs.items()}
    x = torch.randn(2, 5, 16, dtype=torch.float64)
    copies = {name: (t.detach().clone().requires_grad_(t.requires_grad) if isinstance(t, torch.Tensor) else t)
              for name, t in inputs.items()}
    out_a, grads_a = _grads(a, x.clone().requires_grad_(), **inputs)
    out_b, grads_b = _grads(b, x.clone().requires_grad_(), **copies)
    # (float64, reductions over 8 channels and 5 keys: a few ulps of 1)
    torch.testing.assert_close(out_b, out_a, rtol=1e-12, atol=1e-12)
    for ga, gb in zip(grads_a, grads_b):
        torch.testing.assert_close(gb, ga, rtol=1e-10, atol=1e-12)
    assert counter.calls == calls_expected
    return fixed


def _tau():
    return (torch.rand(2, 1, dtype=torch.float64) + 0.5).requires_grad_()


def _delta():
    return torch.randn(2, 5, dtype=torch.float64).requires_grad_()


def test_de_stationary_takes_the_fused_call_with_tau_and_delta():
    fixed = _assert_same(DE_STATIONARY, 1, tau=_tau, delta=_delta)
    assert "tau.shape[-1] != 1" in fixed and "is_tensor(delta)" in fixed
    # a float mask as well
    _assert_same(DE_STATIONARY, 1, tau=_tau, delta=_delta,
                 mask=lambda: torch.zeros(5, 5, dtype=torch.float64).masked_fill(
                     torch.ones(5, 5, dtype=torch.bool).triu(1), -1e4))


def test_de_stationary_filled_einsum_form():
    _assert_same(DE_STATIONARY_FILLED, 1, tau=_tau, delta=_delta)


def test_a_number_bias_is_left_out_of_the_fused_mask():
    # no delta (a Python number): the fused call without it, with and without a float mask
    _assert_same(DE_STATIONARY, 1, tau=_tau)
    _assert_same(DE_STATIONARY, 1)
    _assert_same(DE_STATIONARY, 1, mask=lambda: torch.zeros(5, 5, dtype=torch.float64).masked_fill(
        torch.ones(5, 5, dtype=torch.bool).triu(1), -1e4))
    _assert_same(DE_STATIONARY_FILLED, 1)
    _assert_same(DE_STATIONARY_FILLED, 1, tau=_tau)


def test_de_stationary_guard_sends_a_per_key_factor_to_the_original():
    # a tau of one entry per key ([batch, keys] made [batch, 1, 1, keys]): not a factor of the
    # query, so the original runs
    _assert_same(DE_STATIONARY, 0, tau=lambda: (torch.rand(2, 5, dtype=torch.float64) + 0.5).requires_grad_(),
                 delta=_delta)


def test_a_number_factor_before_the_bias_goes_into_the_scale():
    number = edit(DE_STATIONARY, "* tau + delta", "* 2.0 + delta")
    fixed = _assert_same(number, 1, delta=_delta)
    assert "tau.size" not in fixed


def test_de_stationary_look_alikes_stay_unfixed():
    # the factor multiplies the probabilities, not the scores: not attention SDPA computes
    after = edit(edit(DE_STATIONARY, "* tau + delta", "+ delta"),
                 "torch.softmax(s, dim=-1)", "torch.softmax(s, dim=-1) * tau")
    assert found(after, "ADP010") == []
    # a factor the guard cannot read again as written (a call of the caller's tensor): its
    # shape unknown, declined with the reason
    called = edit(DE_STATIONARY, "* tau + delta", "* tau.exp() + delta")
    assert_reported_not_fixed(called, "ADP010", "# softmax", "may be a tensor that differs between keys")
