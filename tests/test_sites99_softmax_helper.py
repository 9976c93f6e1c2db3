"""ADP010 matches whose softmax runs in a module-level helper that binds the same softmax on
every path, the paths told apart only by the precision it runs in (session 48, helper sites99).
The fixtures are ours.

``s = soft_keep(s, dim=-1)`` with ``soft_keep`` keeping a half-precision softmax out of
autocast (``if t.dtype is torch.bfloat16 and not <flag>: with torch.autocast(..., enabled=False):
p = torch.softmax(t, dim=dim)`` / ``else: p = torch.softmax(t, dim=dim)``; ``return p``): whichever
path runs, the helper's value is that softmax, so the caller's product, bias loop, softmax and
product with v become one fused call; the helper stays for its other callers.  Declined: a helper
whose arms compute different values, enter another context than autocast (``no_grad``), change
state, or carry another decorator.
"""

from __future__ import annotations

import textwrap

import pytest
from corpus_forms import FusedCalls, edit, float64_pair, rules

torch = pytest.importorskip("torch")

HELPER = textwrap.dedent("""\
import math

import torch
from torch import nn

_STATE = {"sharded": False}


def _sharded():
    return _STATE["sharded"]


@torch.jit.ignore
def soft_keep(t, dim=-1):
    '''The softmax, kept in half precision where autocast would widen it.'''
    kind = t.dtype
    sharded = _sharded()
    if kind is torch.bfloat16 and not sharded:
        with torch.autocast(t.device.type, enabled=False):
            p = torch.softmax(t, dim=dim)
    else:
        p = torch.softmax(t, dim=dim)
    return p


def attend(q, k, v, biases):
    s = torch.einsum("...qc,...kc->...qk", q, k)
    for b in biases:
        s += b
    s = soft_keep(s, dim=-1)
    return torch.einsum("...qk,...kc->...qc", s, v)


class Block(nn.Module):
    def __init__(self, dim=16, heads=2):
        super().__init__()
        self.heads, self.d = heads, dim // heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.pair = nn.Linear(4, heads)
        self.out = nn.Linear(dim, dim)

    def forward(self, x, z=None, keep=None):
        b, n, _ = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.heads, self.d).permute(2, 0, 3, 1, 4)
        q = q / math.sqrt(self.d)
        biases = []
        if keep is not None:
            biases.append(1e9 * (keep[:, None, None, :].to(x.dtype) - 1))
        if z is not None:
            biases.append(self.pair(z).permute(0, 3, 1, 2))
        o = attend(q, k, v, biases)
        return self.out(o.transpose(1, 2).reshape(b, n, -1))
""")


def _fixed(code: str) -> str:
    from adopter.synth import fix_text

    result = fix_text(code, "model.py", rules("ADP010"))
    # (one match through each arm of the helper: the same patch)
    assert result.applied and {f.rule for f in result.applied} == {"ADP010"}, result.skipped
    return result.text


def _run(module, x, z, keep):
    leaves = [x.clone().requires_grad_(), None if z is None else z.clone().requires_grad_()]
    out = module(leaves[0], leaves[1], keep)
    weights = torch.randn(out.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    wrt = [t for t in leaves if t is not None] + list(module.parameters())
    grads = torch.autograd.grad((out * weights).sum(), wrt, allow_unused=True)
    return out, [g if g is not None else torch.zeros_like(t) for g, t in zip(grads, wrt)]


@pytest.mark.parametrize("with_z", [False, True])
@pytest.mark.parametrize("with_keep", [False, True])
def test_the_softmax_helper_is_read_through_and_the_fused_path_is_equal(with_z, with_keep):
    fixed = _fixed(HELPER)
    assert "scaled_dot_product_attention(q, k, v, attn_mask=s_bias, scale=1.0)" in fixed
    assert "def soft_keep(t, dim=-1):" in fixed and "p = torch.softmax(t, dim=dim)" in fixed  # (left as it is)
    a, b = float64_pair(HELPER, fixed, "Block")
    torch.manual_seed(2)
    x = torch.randn(2, 5, 16, dtype=torch.float64)
    z = torch.randn(2, 5, 5, 4, dtype=torch.float64) if with_z else None
    keep = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]]) if with_keep else None
    counter = FusedCalls(b)
    for train in (False, True):
        a.train(train)
        b.train(train)
        (out_a, grads_a), (out_b, grads_b) = _run(a, x, z, keep), _run(b, x, z, keep)
        # (float64, sums over 8 channels and 5 keys; the additive mask of 1e9 costs ~1e-7 of
        # each masked score in both: its rows' probabilities agree to far below that)
        torch.testing.assert_close(out_b, out_a, rtol=1e-10, atol=1e-12)
        assert len(grads_a) == len(grads_b)
        for ga, gb in zip(grads_a, grads_b):
            torch.testing.assert_close(gb, ga, rtol=1e-9, atol=1e-11)
    assert counter.calls == 2
    # the masked keys take no weight on the fused path either
    if with_keep:
        probe = torch.zeros(2, 5, 16, dtype=torch.float64)
        probe[0, 3:] = 100.0
        torch.testing.assert_close(b(probe, None, keep)[0], a(probe, None, keep)[0], rtol=1e-10, atol=1e-12)


def _unchanged(code: str) -> None:
    from adopter.synth import fix_text

    result = fix_text(code, "model.py", rules("ADP010"))
    assert result.text == code and not result.applied
    # (declined where found: by the helper's reading, or -- the scores rebound by `t * 2.0`,
    # read as a scale -- by the loop's bias before that scale)
    assert all("rewrite it by hand" in why for _, why in result.skipped), result.skipped


@pytest.mark.parametrize("old, new", [
    # one arm computes another value (in float32)
    ("    else:\n        p = torch.softmax(t, dim=dim)",
     "    else:\n        p = torch.softmax(t.float(), dim=dim)"),
    # one arm normalises another axis
    ("    else:\n        p = torch.softmax(t, dim=dim)",
     "    else:\n        p = torch.softmax(t, dim=-2)"),
    # the arm runs without gradient: not a matter of precision
    ("torch.autocast(t.device.type, enabled=False)", "torch.no_grad()"),
    # a statement of the helper changes state (the fused path would skip it)
    ("    sharded = _sharded()\n", "    sharded = _sharded()\n    _STATE.update(seen=True)\n"),
    # a statement before the arms rebinds the scores the softmax reads
    ("    kind = t.dtype\n", "    kind = t.dtype\n    t = t * 2.0\n"),
    # an arm binds the value under another name and returns it
    ("    else:\n        p = torch.softmax(t, dim=dim)\n    return p",
     "    else:\n        p = torch.softmax(t, dim=dim)\n        return p\n    return p * 1.0"),
    # another decorator than torch.jit.ignore (it may wrap the function in anything)
    ("@torch.jit.ignore\n", "@torch.no_grad()\n"),
])
def test_look_alikes_stay_declined(old, new):
    _unchanged(edit(HELPER, old, new))
