"""ADP010 where the attention is handed its caller's position-bias module and runs it under a
test, ``sim = rel_pos(sim) if exists(rel_pos) else sim`` (difformer's AttentionBase; the caller
always hands its DynamicPositionBias, whose forward returns its input plus a bias computed from
the input's shape, dtype and device only).  On the fused path that bias is the module's output
for a stand-in of zeros of the scores' shape (``0 + b`` is ``b``), a part of the mask under the
same test; a value of another type than such a class of this file (a subclass, a lambda), or a
module with forward hooks, takes the original.  Checked numerically against the original in
float64, eval and training, outputs and every gradient (the bias module's own parameters
included), with the fused call counted.  Look-alikes that stay declined: a handed module whose
forward reads the scores' values, and the same statement before the scale (the bias would be
scaled)."""

from __future__ import annotations

import textwrap

import pytest

torch = pytest.importorskip("torch")

from sdpa_modules import RULES, Counter, assert_same_step, load, sdpa_fixed  # noqa: E402

from adopter.synth import fix_text  # noqa: E402

F64 = torch.float64

HANDED = textwrap.dedent('''
    import torch
    from torch import nn, einsum


    def exists(val):
        return val is not None


    class PosBias(nn.Module):
        def __init__(self, heads):
            super().__init__()
            self.mlp = nn.Sequential(nn.Linear(1, 8), nn.ReLU(), nn.Linear(8, heads))

        def forward(self, dots):
            n, m, device, dtype = dots.shape[-2], dots.shape[-1], dots.device, dots.dtype
            rel = torch.arange(n, device=device)[:, None] - torch.arange(m, device=device)[None, :]
            bias = self.mlp(rel.to(dtype)[..., None])
            return dots + bias.permute(2, 0, 1)


    class Core(nn.Module):
        def __init__(self, dim_head):
            super().__init__()
            self.scale = dim_head ** -0.5

        def forward(self, q, k, v, *, rel_pos=None):
            sim = einsum("b h i d, b h j d -> b h i j", q, k) * self.scale
            sim = rel_pos(sim) if exists(rel_pos) else sim
            attn = sim.softmax(dim=-1)
            return einsum("b h i j, b h j d -> b h i d", attn, v)


    class Block(nn.Module):
        def __init__(self, dim, heads):
            super().__init__()
            self.heads = heads
            self.qkv = nn.Linear(dim, 3 * dim)
            self.core = Core(dim // heads)
            self.rel_pos = PosBias(heads)

        def forward(self, x, use_bias=True):
            b, n, c = x.shape
            q, k, v = (t.reshape(b, n, self.heads, -1).transpose(1, 2) for t in self.qkv(x).chunk(3, dim=-1))
            out = self.core(q, k, v, rel_pos=self.rel_pos if use_bias else None)
            return out.transpose(1, 2).reshape(b, n, c)
''')


def test_the_handed_bias_is_a_part_of_the_mask_under_the_test():
    fixed = sdpa_fixed(HANDED)
    guard, fast = fixed.split("else:")[0], fixed.split("else:")[-1]
    assert "type(rel_pos) is not PosBias" in guard
    flat = "".join(fast.split())
    assert "rel_pos(q.new_zeros(()).expand(" in flat and "ifexists(rel_pos)elseNone" in flat


@pytest.mark.parametrize("use_bias", [True, False])
def test_the_rewrite_computes_what_the_original_does(use_bias):
    fixed = sdpa_fixed(HANDED)
    original, patched = load(HANDED, "original"), load(fixed, "patched")
    counter = Counter(patched)
    torch.manual_seed(0)
    a = original["Block"](8, 2).to(F64)
    b = patched["Block"](8, 2).to(F64)
    b.load_state_dict(a.state_dict())
    x = torch.randn(2, 5, 8, dtype=F64)
    for training in (False, True):
        a.train(training)
        b.train(training)
        before = counter.calls
        assert_same_step(a, b, [x], use_bias=use_bias)
        assert counter.calls - before == 1
    if use_bias:  # the bias module's parameters get the same gradients through the fused call's mask
        assert b.rel_pos.mlp[0].weight.grad is not None
        with torch.no_grad():
            assert not torch.allclose(a(x), a(x, use_bias=False))


def test_another_callable_handed_in_takes_the_original():
    fixed = sdpa_fixed(HANDED)
    original, patched = load(HANDED, "original"), load(fixed, "patched")
    counter = Counter(patched)
    torch.manual_seed(0)
    a, b = original["Core"](4).to(F64), patched["Core"](4).to(F64)
    q, k, v = (torch.randn(2, 2, 5, 4, dtype=F64) for _ in range(3))
    doubled = lambda s: s * 2.0  # noqa: E731 (reads the scores' values: no bias)
    assert_same_step(a, b, [q, k, v], rel_pos=doubled)
    assert counter.calls == 0

    class Hooked(patched["PosBias"]):
        pass

    sub = Hooked(2).to(F64)
    assert_same_step(a, b, [q, k, v], rel_pos=sub)  # a subclass may read more: the original
    assert counter.calls == 0


def test_a_module_reading_the_scores_values_stays_declined():
    source = HANDED.replace("return dots + bias.permute(2, 0, 1)", "return dots * dots.sigmoid() + bias.permute(2, 0, 1)")
    assert source != HANDED
    result = fix_text(source, "attention.py", RULES)
    assert not result.applied and result.skipped


def test_the_bias_before_the_scale_stays_declined():
    source = HANDED.replace(
        '        sim = einsum("b h i d, b h j d -> b h i j", q, k) * self.scale\n'
        '        sim = rel_pos(sim) if exists(rel_pos) else sim\n',
        '        sim = einsum("b h i d, b h j d -> b h i j", q, k)\n'
        '        sim = rel_pos(sim) if exists(rel_pos) else sim\n'
        '        sim = sim * self.scale\n')
    assert source != HANDED
    result = fix_text(source, "attention.py", RULES)
    assert not result.applied and result.skipped
