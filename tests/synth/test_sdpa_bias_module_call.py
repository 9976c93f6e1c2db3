"""ADP010 where a module of the file is called on the scores and returns them plus a bias it
computes from its own parameters and the scores' shape, device and dtype only (a continuous
position bias, ``sim = self.bias(sim)``: dalle2's VQ-GAN attention).  The graph reads the call
as an add of a bias that has no expression in the code; the fused call's mask is the module's
output for a stand-in of zeros of the scores' shape, device and dtype (``0 + b`` is ``b``
exactly).  Checked numerically against the original in float64, eval and training (dropout
0): outputs, input and parameter gradients (the bias net's included), fused calls counted; a
forward hook on the bias module (which would see the stand-in) takes the original.  A bias
module that reads the scores' values is no add (not matched); a tensor scale before it (nuwa's
learned temperature) scales the stand-in too; one after an added bias (which may promote the
scores' dtype) is declined with the reason."""

from __future__ import annotations

import textwrap

import pytest

torch = pytest.importorskip("torch")

from sdpa_modules import RULES, Counter, assert_same_step, load, sdpa_fixed  # noqa: E402

from adopter.synth import fix_text  # noqa: E402

F64 = torch.float64

GRID = textwrap.dedent('''
    import math
    import torch
    from torch import nn


    class GridBias(nn.Module):
        def __init__(self, heads):
            super().__init__()
            self.net = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, heads))

        def forward(self, x):
            n, device = x.shape[-1], x.device
            side = int(math.sqrt(n))
            pos = torch.arange(side, device=device)
            grid = torch.stack(torch.meshgrid(pos, pos, indexing='ij')).reshape(2, -1).t()
            rel = (grid[:, None, :] - grid[None, :, :]).to(x.dtype)
            bias = self.net(rel).permute(2, 0, 1)
            return x + bias


    class GridAttention(nn.Module):
        def __init__(self, dim, heads=2, dim_head=4, dropout=0.0):
            super().__init__()
            self.heads = heads
            self.scale = dim_head ** -0.5
            self.bias = GridBias(heads)
            self.to_qkv = nn.Conv2d(dim, heads * dim_head * 3, 1, bias=False)
            self.to_out = nn.Conv2d(heads * dim_head, dim, 1)
            self.dropout = nn.Dropout(dropout)

        def forward(self, x):
            b, c, hh, ww = x.shape
            q, k, v = self.to_qkv(x).chunk(3, dim=1)
            q, k, v = (t.reshape(b, self.heads, -1, hh * ww) for t in (q, k, v))
            sim = torch.einsum('b h c i, b h c j -> b h i j', q, k) * self.scale
            sim = self.bias(sim)
            attn = sim.softmax(dim=-1)
            attn = self.dropout(attn)
            out = torch.einsum('b h i j, b h c j -> b h c i', attn, v)
            return self.to_out(out.reshape(b, -1, hh, ww))
''')


def test_the_bias_is_the_modules_output_for_a_stand_in_of_zeros():
    fixed = sdpa_fixed(GRID)
    fast = " ".join(fixed.split("else:")[-1].split())
    assert "attn_mask=self.bias(" in fast.replace("( ", "(") and "new_zeros(())" in fast


@pytest.mark.parametrize("hooked", [False, True])
def test_the_rewrite_computes_what_the_original_does(hooked):
    fixed = sdpa_fixed(GRID)
    original, patched = load(GRID, "original"), load(fixed, "patched")
    counter = Counter(patched)
    torch.manual_seed(0)
    a = original["GridAttention"](6).to(F64)
    b = patched["GridAttention"](6).to(F64)
    b.load_state_dict(a.state_dict())
    seen = []
    if hooked:  # a hook sees what the module is handed: the original's scores
        a.bias.register_forward_hook(lambda m, i, o: seen.append(i[0].detach().clone()))
        b.bias.register_forward_hook(lambda m, i, o: seen.append(i[0].detach().clone()))
    x = torch.randn(2, 6, 3, 3, dtype=F64)
    for training in (False, True):
        a.train(training)
        b.train(training)
        before = counter.calls
        assert_same_step(a, b, [x])
        assert counter.calls - before == (0 if hooked else 1)
    if hooked:
        for first, second in zip(seen[::2], seen[1::2]):
            torch.testing.assert_close(second, first)


def test_a_bias_module_reading_the_scores_values_is_no_bias_add():
    source = GRID.replace("return x + bias", "return x + bias * x.mean()")
    assert source != GRID
    result = fix_text(source, "attention.py", RULES)
    assert not result.applied


TEMPERED = GRID.replace("self.scale = dim_head ** -0.5",
                        "self.scale = nn.Parameter(torch.full((1, heads, 1, 1), 0.3))").replace(
    "q, k) * self.scale", "q, k) * self.scale.exp()")


def test_a_tensor_scale_before_the_bias_module_scales_the_stand_in_too():
    assert TEMPERED.count("self.scale.exp()") == 1
    fixed = sdpa_fixed(TEMPERED)
    fast = " ".join(fixed.split("else:")[-1].split())
    assert "* self.scale.exp())" in fast  # the stand-in of zeros, scaled as the scores are
    original, patched = load(TEMPERED, "original"), load(fixed, "patched")
    counter = Counter(patched)
    torch.manual_seed(0)
    a = original["GridAttention"](6).to(F64)
    b = patched["GridAttention"](6).to(F64)
    b.load_state_dict(a.state_dict())
    x = torch.randn(2, 6, 3, 3, dtype=F64)
    for training in (False, True):
        a.train(training)
        b.train(training)
        before = counter.calls
        assert_same_step(a, b, [x])  # the temperature's gradient included
        assert counter.calls - before == 1


def test_a_bias_module_after_an_added_bias_is_declined_with_the_reason():
    # scores plus a bias of another dtype may be promoted: the stand-in of zeros has q's dtype
    source = GRID.replace("self.heads = heads", "self.heads = heads\n        self.shift = nn.Parameter(torch.zeros(1))").replace(
        "        sim = self.bias(sim)\n", "        sim = sim + self.shift\n        sim = self.bias(sim)\n")
    assert source.count("self.shift") == 2
    result = fix_text(source, "attention.py", RULES)
    assert not result.applied
    assert any("`self.bias` adds its bias to scores that may not have q's dtype" in why for _, why in result.skipped), \
        result.skipped
