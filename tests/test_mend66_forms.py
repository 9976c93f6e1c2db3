"""review53's counter-examples to the de-stationary ADP010 fix (session 44, helper mend66).
The fixtures are ours.

- A factor of the product alone that is a 0-d tensor (``tau = taus[layer]`` of a 1-D table,
  ``tau = stats["tau"]``) is the same for every key: the fused call takes ``q * tau``.  The
  guard that tests a factor's last dimension reads ``.ndim``/``.shape`` (``.size(-1)`` raised
  on a 0-d tensor where the original runs).
- A factor rebound from the caller's value (``tau = 1.0 if tau is None else tau``) may be a
  tensor: ``scale=`` takes only a number, so any other value takes the original (the guard
  ``not isinstance(tau, (int, float))``), with and without a bias after it.
- A bias that is a Python number whatever the caller hands (``self.shift`` bound to 0.1,
  ``float(delta)``, ``delta.item()``) adds the same to every score, which the softmax does not
  see: the fused call leaves it out (``attn_mask`` takes no number).  A bias the class binds to
  a constructor argument, a parameter tensor or a bare forward argument stays the mask.
"""

from __future__ import annotations

import textwrap

import pytest
from corpus_forms import FusedCalls, edit, float64_pair, sdpa_fixed

torch = pytest.importorskip("torch")

BASE = textwrap.dedent("""\
    import torch
    from torch import nn


    class DSAttention(nn.Module):
        def __init__(self, dim=16, heads=2, p=0.0, shift=0.1):
            super().__init__()
            self.heads = heads
            self.head_dim = dim // heads
            self.qkv = nn.Linear(dim, 3 * dim)
            self.drop = nn.Dropout(p)
            self.shift = 0.1
            self.given_shift = shift
            self.learned_shift = nn.Parameter(torch.randn(5))

        def forward(self, x, mask=None, tau=None, delta=None, taus=None, layer=0, stats=None):
            b, n, _ = x.shape
            q, k, v = self.qkv(x).view(b, n, 3, self.heads, -1).permute(2, 0, 3, 1, 4)
            TAU
            DELTA
            s = SCORES
            s /= self.head_dim ** 0.5
            if mask is not None:
                s = s + mask
            p = torch.softmax(s, dim=-1)  # softmax
            return torch.matmul(self.drop(p), v).transpose(1, 2).reshape(b, n, -1)
""")

PRODUCT = "torch.matmul(q, k.transpose(-2, -1))"


def form(tau: str = "pass", delta: str = "delta = 0.0 if delta is None else delta.unsqueeze(1).unsqueeze(1)",
         scores: str = f"{PRODUCT} * tau + delta") -> str:
    return edit(edit(edit(BASE, "TAU", tau), "DELTA", delta), "SCORES", scores)


def _grads(module, x, inputs):
    out = module(x, **inputs)
    weights = torch.randn(out.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    leaves = [x, *(t for t in inputs.values() if isinstance(t, torch.Tensor) and t.requires_grad)]
    return out, torch.autograd.grad((out * weights).sum(), [*leaves, *module.parameters()], allow_unused=True)


def _assert_same(code: str, calls_expected: int, ctor: dict | None = None, **make_inputs) -> str:
    """The fixed class against the original in float64: outputs and the gradients of x, of the
    tensors handed in and of every parameter alike; the fused call made ``calls_expected`` times."""
    fixed = sdpa_fixed(code)
    a, b = float64_pair(code, fixed, "DSAttention", **(ctor or {}))
    counter = FusedCalls(b)
    torch.manual_seed(2)
    inputs = {name: make() for name, make in make_inputs.items()}
    copies = {name: (t.detach().clone().requires_grad_(t.requires_grad) if isinstance(t, torch.Tensor) else t)
              for name, t in inputs.items()}
    x = torch.randn(2, 5, 16, dtype=torch.float64)
    out_a, grads_a = _grads(a, x.clone().requires_grad_(), inputs)
    out_b, grads_b = _grads(b, x.clone().requires_grad_(), copies)
    # (float64, reductions over 8 channels and 5 keys: a few ulps of 1)
    torch.testing.assert_close(out_b, out_a, rtol=1e-12, atol=1e-12)
    for ga, gb in zip(grads_a, grads_b):
        assert (ga is None) == (gb is None)
        if ga is not None:
            torch.testing.assert_close(gb, ga, rtol=1e-10, atol=1e-12)
    assert counter.calls == calls_expected
    return fixed


def _mask_lines(fixed: str) -> list[str]:
    """The fused call's ``attn_mask=`` argument, its lines up to the next argument."""
    lines = fixed.splitlines()
    start = next(i for i, line in enumerate(lines) if "attn_mask=" in line)
    end = next(i for i in range(start, len(lines)) if "dropout_p=" in lines[i] or "scale=" in lines[i])
    return lines[start:max(end, start + 1)]


def _t(*shape):
    return lambda: (torch.rand(*shape, dtype=torch.float64) + 0.5).requires_grad_()


def _delta():
    return torch.randn(2, 5, dtype=torch.float64).requires_grad_()


# -- a 0-d tensor factor --------------------------------------------------------------------

def test_a_zero_dim_factor_from_a_table_takes_the_fused_call():
    code = form(tau="tau = taus[layer]")
    fixed = _assert_same(code, 1, taus=_t(4), layer=lambda: 1, delta=_delta)
    assert "q * tau" in fixed and "tau.ndim > 0" in fixed
    # a table of [batch, 1, 1, 1] factors: fused as before
    _assert_same(code, 1, taus=_t(4, 2, 1, 1, 1), layer=lambda: 2, delta=_delta)
    # look-alike: a table of per-key factors ([batch, 1, 1, keys]) takes the original
    _assert_same(code, 0, taus=_t(4, 2, 1, 1, 5), layer=lambda: 2, delta=_delta)


def test_a_zero_dim_factor_read_by_key_takes_the_fused_call():
    code = form(tau="tau = stats['tau']")
    _assert_same(code, 1, stats=lambda: {"tau": torch.tensor(0.7, dtype=torch.float64)}, delta=_delta)
    _assert_same(code, 1, stats=lambda: {"tau": torch.tensor(0.7, dtype=torch.float64)})


# -- a factor rebound from the caller's value ------------------------------------------------

def test_a_factor_rebound_from_the_callers_value_is_guarded():
    code = form(tau="tau = 1.0 if tau is None else tau")
    fixed = _assert_same(code, 1, delta=_delta)  # (tau None: the number 1.0, the fused call)
    assert "not isinstance(tau, (int, float))" in fixed
    _assert_same(code, 1, tau=lambda: 0.5, delta=_delta)
    # a tensor the caller hands (0-d or [batch, 1, 1, 1]): scale= takes none, the original runs
    _assert_same(code, 0, tau=lambda: torch.tensor(0.7, dtype=torch.float64, requires_grad=True), delta=_delta)
    _assert_same(code, 0, tau=_t(2, 1, 1, 1), delta=_delta)


def test_a_rebound_factor_without_a_bias_is_guarded():
    code = edit(form(tau="tau = 1.0 if tau is None else tau", delta="pass", scores=f"{PRODUCT} * tau"),
                "        s /= self.head_dim ** 0.5\n", "")
    fixed = _assert_same(code, 1)
    assert "not isinstance(tau, (int, float))" in fixed
    _assert_same(code, 0, tau=_t(2, 1, 1, 1))
    _assert_same(code, 0, tau=lambda: torch.tensor(0.7, dtype=torch.float64, requires_grad=True))


# -- a bias that is a Python number ------------------------------------------------------------

@pytest.mark.parametrize("delta", ["delta = self.shift", "delta = float(delta)", "delta = delta.item()",
                                   "delta = 0.25 * x.shape[1]"])
def test_a_number_bias_is_left_out(delta):
    handed = {"delta": lambda: torch.tensor(0.3, dtype=torch.float64)} if "delta)" in delta or ".item" in delta else {}
    float_mask = {"mask": lambda: torch.zeros(5, 5, dtype=torch.float64).masked_fill(
        torch.ones(5, 5, dtype=torch.bool).triu(1), -1e4)}
    # a number factor (into scale=), and a tensor one folded into q
    code = form(delta=delta)
    fixed = _assert_same(code, 1, tau=lambda: 0.5, **handed)
    assert _mask_lines(fixed) and not any("delta" in line for line in _mask_lines(fixed))
    _assert_same(code, 1, tau=lambda: 0.5, **handed, **float_mask)
    code = form(tau="tau = taus[layer]", delta=delta)
    fixed = _assert_same(code, 1, taus=_t(4, 2, 1, 1, 1), layer=lambda: 1, **handed)
    assert _mask_lines(fixed) and not any("delta" in line for line in _mask_lines(fixed))
    _assert_same(code, 1, taus=_t(4), layer=lambda: 3, **handed, **float_mask)


def test_a_number_attribute_added_to_the_product_alone_is_left_out():
    code = form(delta="pass", scores=f"{PRODUCT} + self.shift")
    fixed = _assert_same(code, 1)
    assert _mask_lines(fixed) and not any("shift" in line for line in _mask_lines(fixed))


def test_tensor_biases_stay_the_mask():
    # a per-key parameter, a constructor argument a caller may hand a tensor, a bare forward
    # argument: each added as the mask, each exact
    learned = form(delta="pass", scores=f"{PRODUCT} + self.learned_shift")
    assert any("self.learned_shift" in line for line in _mask_lines(sdpa_fixed(learned)))
    _assert_same(learned, 1)
    given = form(delta="pass", scores=f"{PRODUCT} + self.given_shift")
    assert any("self.given_shift" in line for line in _mask_lines(sdpa_fixed(given)))
    _assert_same(given, 1, ctor={"shift": torch.randn(5, 5, dtype=torch.float64)})
    # (its default, a number: added only where it is a tensor -- attn_mask takes no number)
    assert any("is_tensor(self.given_shift)" in line for line in _mask_lines(sdpa_fixed(given)))
    _assert_same(given, 1)
    bare = form(tau="tau = taus[layer]", delta="pass")
    _assert_same(bare, 1, taus=_t(4), layer=lambda: 0, delta=lambda: torch.randn(2, 1, 1, 5, dtype=torch.float64))
