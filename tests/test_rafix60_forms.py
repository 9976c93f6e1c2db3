"""Research attention fixed but inert (session 38): a bool mask the code adds to the scores.
The fixtures are ours.

``scores + mask`` with a bool ``mask`` promotes it to the scores' dtype: it adds 1 where the
mask is True and 0 elsewhere (a shift of those scores, not a keep/drop mask; a bool mask
"filled" by ``masked_fill(mask == 0, -big)`` stays bool, all True).  The guard used to send
every bool mask to the original, so such a patch never took its fused path.  The fused call now
takes a bool mask as ``mask.to(q.dtype)`` -- exactly what the code adds, where the scores still
have q's dtype -- and keeps the original path for integer masks and for training steps with a
float mask that hides a whole row.

- Exact in float64 on the CPU, train and eval, for a bool mask with True and False entries, an
  all-True one (the "filled" bool mask) and a float mask; outputs and input gradients.
- Look-alikes: a tensor scale before the add (the scores' dtype is no longer known to be q's,
  so a bool mask keeps the original path); an integer mask (original path).
"""

from __future__ import annotations

import pytest
from corpus_forms import float64_pair, found, line_of, rules

from adopter.synth import fix_text

ADDED = """\
import torch
import torch.nn.functional as F
from torch import nn


class PaddedAttention(nn.Module):
    def __init__(self, dim=16, heads=4):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x, lengths):
        b, n, d = x.shape
        head_dim = d // self.heads
        scale = head_dim ** -0.5
        q, k, v = self.qkv(x).view(b, n, 3, self.heads, head_dim).permute(2, 0, 3, 1, 4)
        attn_mask = torch.arange(n, device=x.device)[None, :] < lengths[:, None]
        attn_mask = attn_mask.unsqueeze(1).unsqueeze(2)
        attn_mask = attn_mask.masked_fill(attn_mask == 0, -torch.finfo(q.dtype).max)
        scores = torch.matmul(q, k.transpose(-2, -1)) * scale
        scores = scores + attn_mask
        probs = F.softmax(scores, dim=-1)
        out = torch.matmul(probs, v)
        return self.proj(out.transpose(1, 2).reshape(b, n, d))
"""

# the mask handed in as it is: bool (True and False entries), float or integer at run time
HANDED = ADDED.replace(
    "    def forward(self, x, lengths):\n", "    def forward(self, x, attn_mask):\n").replace(
    "        attn_mask = torch.arange(n, device=x.device)[None, :] < lengths[:, None]\n"
    "        attn_mask = attn_mask.unsqueeze(1).unsqueeze(2)\n"
    "        attn_mask = attn_mask.masked_fill(attn_mask == 0, -torch.finfo(q.dtype).max)\n", "")

# the scores scaled by a tensor before the add: their dtype is no longer known to be q's (a
# float64 temperature makes float32 scores float64), so a bool mask keeps the original path
TEMPERATURE = HANDED.replace(
    "        self.proj = nn.Linear(dim, dim)\n",
    "        self.proj = nn.Linear(dim, dim)\n        self.temperature = nn.Parameter(torch.ones(heads, 1, 1))\n"
).replace("k.transpose(-2, -1)) * scale\n", "k.transpose(-2, -1)) * self.temperature\n")


def _fixed(source: str) -> str:
    return fix_text(source, "model.py", rules("ADP010")).text


def _guard(fixed: str) -> str:
    return fixed.split("        if (\n", 1)[1].split("        ):\n", 1)[0]


def test_an_added_bool_mask_goes_to_the_fused_call_as_the_0_1_the_code_adds():
    assert [f.line for f in found(ADDED, "ADP010")] == [line_of(ADDED, "scores = torch.matmul(")]
    fixed = _fixed(ADDED)
    assert "scaled_dot_product_attention(" in fixed
    assert "attn_mask.to(q.dtype)" in fixed and "if attn_mask.dtype == torch.bool" in fixed
    # a bool mask no longer takes the original path; an integer one still does
    guard = _guard(fixed)
    assert "attn_mask.dtype != torch.bool" in guard
    assert "not attn_mask.is_floating_point()" in guard


def _pair(source, train):
    fixed = _fixed(source)
    assert "scaled_dot_product_attention(" in fixed
    a, b = float64_pair(source, fixed, "PaddedAttention")
    a.train(train)
    b.train(train)
    return a, b


def _same(a, b, *args):
    import torch

    x = torch.randn(3, 5, 16, dtype=torch.float64, requires_grad=True)
    out_a, out_b = a(x, *args), b(x, *args)
    # float64, a softmax over 5 keys of 4-wide head products: rounding far below these
    torch.testing.assert_close(out_b, out_a, rtol=1e-10, atol=1e-12)
    grad_a, = torch.autograd.grad(out_a.sum(), x)
    grad_b, = torch.autograd.grad(out_b.sum(), x)
    torch.testing.assert_close(grad_b, grad_a, rtol=1e-10, atol=1e-12)


def _spy_sdpa(b, monkeypatch):
    """Count the fused calls the patched module makes (the module's own global name)."""
    import torch.nn.functional as F

    calls = []
    real = F.scaled_dot_product_attention

    def counted(*args, **kwargs):
        calls.append(kwargs.get("attn_mask"))
        return real(*args, **kwargs)

    globals_ = type(b).forward.__globals__
    monkeypatch.setitem(globals_, "scaled_dot_product_attention", counted)
    return calls


@pytest.mark.parametrize("train", [False, True])
def test_the_filled_bool_mask_computes_the_same_attention_on_the_fused_path(train, monkeypatch):
    import torch

    a, b = _pair(ADDED, train)
    calls = _spy_sdpa(b, monkeypatch)
    _same(a, b, torch.tensor([5, 2, 3]))
    assert len(calls) == 1 and calls[0].dtype == torch.float64  # the fused path ran, with 0/1 in q's dtype


@pytest.mark.parametrize("train", [False, True])
@pytest.mark.parametrize("kind", ["bool", "float", "int"])
def test_a_handed_mask_of_any_dtype_computes_the_same_attention(train, kind, monkeypatch):
    import torch

    a, b = _pair(HANDED, train)
    calls = _spy_sdpa(b, monkeypatch)
    keep = torch.rand(3, 1, 1, 5) > 0.4
    mask = {"bool": keep, "float": torch.where(keep, 0.0, -3.0).double(), "int": keep.long() * 2}[kind]
    _same(a, b, mask)
    # bool and float masks take the fused call; an integer one the original
    assert len(calls) == (0 if kind == "int" else 1)


def test_a_tensor_scale_before_the_add_keeps_bool_masks_on_the_original_path(monkeypatch):
    import torch

    assert TEMPERATURE != HANDED
    fixed = _fixed(TEMPERATURE)
    assert "scaled_dot_product_attention(" in fixed
    assert ".dtype == torch.bool else" not in fixed
    assert "not attn_mask.is_floating_point()" in _guard(fixed)
    assert "attn_mask.dtype != torch.bool" not in _guard(fixed)
    a, b = float64_pair(TEMPERATURE, fixed, "PaddedAttention")
    calls = _spy_sdpa(b, monkeypatch)
    _same(a, b, torch.rand(3, 1, 1, 5) > 0.4)
    assert calls == []  # the bool mask took the original path
