"""Research attention declined for a mask's layout or a scale's kind (session 45, sites75).
The fixtures are ours.

Scores an einsum writes with their axes moved (``"bqkh"``: the keys third, the heads last), a
padding fill whose mask is a parameter indexed into that layout (``~pad[:, None, :, None]``):
the mask has the scores' four axes exactly when ``pad`` has two (each ``:`` takes one axis of
the base, each ``None`` adds one), so the guard sends any other rank of ``pad`` to the original
(``pad.dim() != 2``, under the fill's own test) and the fused call takes the mask moved into
its layout.  A fill whose mask's rank no parameter says (rebound in the if that runs it: ``if
mask is not None: if mask.dim() == 2: mask = mask.unsqueeze(1)``) goes to the original with
its test (``mask is not None``): the fused path runs without that step.  A scale that makes a
tensor of a constructor argument (``torch.sqrt(torch.tensor(self.d_k))``) is a 0-d tensor when
the argument is a Python number, which the guard tests; a list (one value per key) takes the
original.

- Exact in float64 on the CPU, train and eval, outputs and input gradients, the fused path
  taken (or not) as the guard says.
- Look-alikes: the mask indexed by a tensor (declined); the parameter rebound before the fill
  (declined); the scale made of a list literal per key (declined).
"""

from __future__ import annotations

import pytest
from corpus_forms import float64_pair, found, rules

from adopter.synth import fix_text

KEYS_THIRD = """\
import torch
import torch.nn.functional as F
from torch import nn


class KeysThirdAttention(nn.Module):
    def __init__(self, dim=12, heads=3, p=0.0):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)
        self.p = p

    def forward(self, x, pad=None):
        b, n, d = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, d // self.heads).unbind(2)
        s = torch.einsum('bqhd,bkhd->bqkh', q, k)
        if pad is not None:
            hidden = ~pad[:, None, :, None].bool()
            s = s.masked_fill(hidden, -float('inf'))
        w = F.softmax(s, dim=2)
        w = F.dropout(w, p=self.p, training=self.training)
        o = torch.einsum('bqkh,bkhd->bqhd', w, v)
        return self.out(o.reshape(b, n, d))
"""

# the fill run on every call (``pad`` required): the guard's term alone
ALWAYS = KEYS_THIRD.replace("def forward(self, x, pad=None):", "def forward(self, x, pad):").replace(
    "        if pad is not None:\n            hidden = ~pad[:, None, :, None].bool()\n"
    "            s = s.masked_fill(hidden, -float('inf'))\n",
    "        hidden = ~pad[:, None, :, None].bool()\n        s = s.masked_fill(hidden, -float('inf'))\n")
# the mask indexed by a tensor of positions: its rank is not the indices' count
BY_TENSOR = ALWAYS.replace("~pad[:, None, :, None].bool()", "~pad[:, None, :, None][:, :, torch.arange(n)].bool()")
# the parameter rebound before the fill: the guard would read another value than the step
REBOUND = ALWAYS.replace("        s = torch.einsum('bqhd,bkhd->bqkh', q, k)\n",
                         "        s = torch.einsum('bqhd,bkhd->bqkh', q, k)\n        pad = pad.flatten(1)\n")

CONDITIONAL = """\
import torch
from torch import nn


class SometimesMaskedAttention(nn.Module):
    def __init__(self, dim=12, heads=3):
        super().__init__()
        self.heads = heads
        self.scale = (dim // heads) ** -0.5
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, 2 * dim)
        self.out = nn.Linear(dim, dim)

    def forward(self, x, mask=None):
        b, n, d = x.shape
        q = self.q(x).reshape(b, n, self.heads, d // self.heads)
        k, v = self.kv(x).reshape(b, n, 2, self.heads, d // self.heads).unbind(2)
        s = torch.einsum('bnhd,bmhd->bnmh', q, k) * self.scale
        if mask is not None:
            if mask.dim() == 2:
                mask = mask.unsqueeze(1)
            s = s.masked_fill(mask.unsqueeze(3), float('-inf'))
        s = s.softmax(dim=2)
        o = torch.einsum('bnmh,bmhd->bnhd', s, v).reshape(b, n, d)
        return self.out(o)
"""

TENSOR_SCALE = """\
import torch
from torch import nn


class DividedAttention(nn.Module):
    def __init__(self, d_k):
        super().__init__()
        self.d_k = d_k

    def forward(self, q, k, v):
        scores = torch.matmul(q, k.transpose(-2, -1)) / torch.sqrt(torch.tensor(self.d_k))
        probs = torch.softmax(scores, dim=-1)
        return torch.matmul(probs, v)
"""

# one divisor per key written in the class: no constructor argument, no guard reads it
PER_KEY = TENSOR_SCALE.replace("torch.tensor(self.d_k)", "torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0])")


def _fixed(source: str) -> str:
    return fix_text(source, "model.py", rules("ADP010")).text


def _spy_sdpa(b, monkeypatch):
    """Count the fused calls the patched module makes (the module's own global name)."""
    import torch.nn.functional as F

    calls = []
    real = F.scaled_dot_product_attention

    def counted(*args, **kwargs):
        calls.append(kwargs.get("attn_mask"))
        return real(*args, **kwargs)

    monkeypatch.setitem(type(b).forward.__globals__, "scaled_dot_product_attention", counted)
    return calls


def _same(a, b, x, *args):
    import torch

    out_a, out_b = a(x, *args), b(x, *args)
    # float64, softmaxes over at most 6 keys of 4-wide head products: rounding far below these
    torch.testing.assert_close(out_b, out_a, rtol=1e-10, atol=1e-12)
    grad_a, = torch.autograd.grad(out_a.sum(), x)
    grad_b, = torch.autograd.grad(out_b.sum(), x)
    torch.testing.assert_close(grad_b, grad_a, rtol=1e-10, atol=1e-12)


def test_a_parameter_indexed_into_the_moved_layout_takes_a_rank_guard():
    assert len(found(KEYS_THIRD, "ADP010")) == 1
    fixed = _fixed(KEYS_THIRD)
    assert "scaled_dot_product_attention(" in fixed
    assert "pad is not None and pad.dim() != 2" in fixed
    assert ".permute(0, 3, 1, 2)" in fixed


@pytest.mark.parametrize("train", [False, True])
@pytest.mark.parametrize("padded", [False, True])
def test_the_indexed_mask_on_moved_scores_computes_the_same_attention(train, padded, monkeypatch):
    import torch

    a, b = float64_pair(KEYS_THIRD, _fixed(KEYS_THIRD), "KeysThirdAttention")
    a.train(train)
    b.train(train)
    calls = _spy_sdpa(b, monkeypatch)
    x = torch.randn(2, 6, 12, dtype=torch.float64, requires_grad=True)
    pad = None
    if padded:
        pad = torch.ones(2, 6, dtype=torch.long)
        pad[0, 4:] = 0
        pad[1, 1:3] = 0
    _same(a, b, x, pad)
    assert len(calls) == 1


def test_a_mask_of_another_rank_takes_the_original(monkeypatch):
    import torch

    a, b = float64_pair(KEYS_THIRD, _fixed(KEYS_THIRD), "KeysThirdAttention")
    calls = _spy_sdpa(b, monkeypatch)
    # a 1-D pad (one row for every batch): ``pad[:, None, :, None]`` cannot index it at all
    x = torch.randn(2, 6, 12, dtype=torch.float64, requires_grad=True)
    pad = torch.ones(6, dtype=torch.long)
    with pytest.raises(IndexError):
        a(x, pad)
    with pytest.raises(IndexError):
        b(x, pad)
    assert calls == []


def test_a_fill_on_every_call_takes_the_rank_term_alone(monkeypatch):
    import torch

    assert ALWAYS != KEYS_THIRD
    fixed = _fixed(ALWAYS)
    assert "pad.dim() != 2" in fixed and "pad is not None" not in fixed
    a, b = float64_pair(ALWAYS, fixed, "KeysThirdAttention")
    calls = _spy_sdpa(b, monkeypatch)
    x = torch.randn(2, 6, 12, dtype=torch.float64, requires_grad=True)
    pad = torch.ones(2, 6, dtype=torch.long)
    pad[1, 2:] = 0
    _same(a, b, x, pad)
    assert len(calls) == 1


@pytest.mark.parametrize("source", [BY_TENSOR, REBOUND], ids=["indexed-by-a-tensor", "rebound-before"])
def test_masks_whose_rank_no_parameter_says_stay_declined(source):
    assert source != KEYS_THIRD
    assert len(found(source, "ADP010")) == 1
    assert "scaled_dot_product_attention(" not in _fixed(source)


def test_a_conditional_fill_of_unknown_rank_goes_to_the_original_with_its_test():
    fixed = _fixed(CONDITIONAL)
    assert "scaled_dot_product_attention(" in fixed
    guard = fixed.split("scaled_dot_product_attention(", 1)[0]
    assert "if mask is not None:" in guard and "        if mask is not None:\n            s = torch.einsum" in fixed


@pytest.mark.parametrize("train", [False, True])
@pytest.mark.parametrize("masked", [False, True])
def test_the_conditional_fill_computes_the_same_attention(train, masked, monkeypatch):
    import torch

    a, b = float64_pair(CONDITIONAL, _fixed(CONDITIONAL), "SometimesMaskedAttention")
    a.train(train)
    b.train(train)
    calls = _spy_sdpa(b, monkeypatch)
    x = torch.randn(2, 5, 12, dtype=torch.float64, requires_grad=True)
    mask = None
    if masked:
        mask = torch.zeros(2, 5, dtype=torch.bool)
        mask[0, 3:] = True
    _same(a, b, x, mask)
    assert len(calls) == (0 if masked else 1)


def test_a_tensor_of_a_constructor_argument_as_the_scale_is_guarded():
    fixed = _fixed(TENSOR_SCALE)
    assert "scaled_dot_product_attention(" in fixed
    assert "not isinstance(self.d_k, (int, float))" in fixed


@pytest.mark.parametrize("d_k", [4, 7.0, [1.0, 2.0, 3.0, 4.0, 5.0]])
def test_the_tensor_scale_computes_the_same_attention(d_k, monkeypatch):
    import torch

    original, patched = {}, {}
    exec(compile(TENSOR_SCALE, "orig.py", "exec"), original)  # noqa: S102 (our own fixture)
    exec(compile(_fixed(TENSOR_SCALE), "fixed.py", "exec"), patched)  # noqa: S102
    a, b = original["DividedAttention"](d_k), patched["DividedAttention"](d_k)
    calls = _spy_sdpa(b, monkeypatch)
    q = torch.randn(2, 3, 4, 4, dtype=torch.float64, requires_grad=True)
    k, v = torch.randn(2, 3, 5, 4, dtype=torch.float64), torch.randn(2, 3, 5, 4, dtype=torch.float64)
    out_a, out_b = a(q, k, v), b(q, k, v)
    # (the list: one divisor per key, a 1-D float32 tensor; rounding of float32 divisors in
    # float64 scores is the same on both paths, which divide by the same tensor)
    torch.testing.assert_close(out_b, out_a, rtol=1e-10, atol=1e-12)
    grad_a, = torch.autograd.grad(out_a.sum(), q)
    grad_b, = torch.autograd.grad(out_b.sum(), q)
    torch.testing.assert_close(grad_b, grad_a, rtol=1e-10, atol=1e-12)
    assert len(calls) == (0 if isinstance(d_k, list) else 1)


def test_a_per_key_scale_written_in_the_class_stays_declined():
    assert PER_KEY != TENSOR_SCALE
    assert len(found(PER_KEY, "ADP010")) == 1
    assert "scaled_dot_product_attention(" not in _fixed(PER_KEY)
