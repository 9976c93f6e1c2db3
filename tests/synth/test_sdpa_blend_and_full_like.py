"""Two spellings of the causal mask in older research code, found and fused by ADP010.

- OpenAI GPT's blend ``w = w * b - 1e4 * (1 - b)`` (also ``+ -1e4 * (1 - b)``, either order of
  each product) with ``b`` the 0/1 lower triangle sliced from a buffer: ``w`` where ``b`` is 1,
  -1e4 where it is 0, i.e. ``w.masked_fill(b == 0, -1e4)``.
- ``torch.where(b.bool(), att, torch.full_like(att, float("-inf")))``: the fill held in a
  tensor of the scores' shape.

The modules are written for this test, with the keys pre-transposed as GPT-2 ports write them;
the fixed module runs beside the original in float64, forward and backward, counting fused calls.
"""

from __future__ import annotations

import textwrap

import pytest

torch = pytest.importorskip("torch")

from sdpa_modules import RULES, Counter, assert_same_step, load, sdpa_fixed  # noqa: E402

from adopter.engine import analyze  # noqa: E402
from adopter.synth import fix_text  # noqa: E402

F64 = torch.float64

GPT_BLEND = textwrap.dedent('''
    import math
    import torch
    import torch.nn as nn


    class Attention(nn.Module):
        def __init__(self, nx=16, heads=2, n_ctx=32):
            super().__init__()
            self.register_buffer("bias", torch.tril(torch.ones(n_ctx, n_ctx)).view(1, 1, n_ctx, n_ctx))
            self.n_head = heads
            self.c_attn = nn.Linear(nx, nx * 3)
            self.c_proj = nn.Linear(nx, nx)
            self.attn_dropout = nn.Dropout(0.0)

        def _attn(self, q, k, v):
            w = torch.matmul(q, k)
            w = w / math.sqrt(v.size(-1))
            nd, ns = w.size(-2), w.size(-1)
            b = self.bias[:, :, ns - nd:ns, :ns]
            w = BLEND
            w = nn.Softmax(dim=-1)(w)
            w = self.attn_dropout(w)
            return torch.matmul(w, v)

        def forward(self, x):
            B, T, C = x.shape
            query, key, value = self.c_attn(x).split(C, dim=2)
            query = query.view(B, T, self.n_head, -1).permute(0, 2, 1, 3)
            key = key.view(B, T, self.n_head, -1).permute(0, 2, 3, 1)
            value = value.view(B, T, self.n_head, -1).permute(0, 2, 1, 3)
            a = self._attn(query, key, value)
            return self.c_proj(a.permute(0, 2, 1, 3).reshape(B, T, C))
''')

BLENDS = {
    "minus": "w * b - 1e4 * (1 - b)",
    "plus_negative": "w * b + -1e4 * (1 - b)",
    "swapped": "b * w - (1 - b) * 1e10",
}

FULL_LIKE = textwrap.dedent('''
    import torch
    import torch.nn as nn
    import torch.nn.functional as F


    class Attention(nn.Module):
        def __init__(self, nx=16, heads=2, n_ctx=32):
            super().__init__()
            self.heads = heads
            self.qkv = nn.Linear(nx, 3 * nx)
            self.register_buffer("bias", torch.tril(torch.ones(n_ctx, n_ctx)).view(1, 1, n_ctx, n_ctx))

        def forward(self, x):
            B, T, C = x.shape
            q, k, v = self.qkv(x).view(B, T, 3, self.heads, -1).permute(2, 0, 3, 1, 4)
            att = (q @ k.transpose(-2, -1)) * q.size(-1) ** -0.5
            att = torch.where(self.bias[:, :, :T, :T].bool(), att, torch.full_like(att, float("-inf")))
            att = F.softmax(att, dim=-1)
            return (att @ v).transpose(1, 2).reshape(B, T, C)
''')

SOURCES = {**{f"blend_{k}": GPT_BLEND.replace("BLEND", v) for k, v in BLENDS.items()}, "full_like": FULL_LIKE}


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_the_fused_module_matches_the_original(name):
    source = SOURCES[name]
    original, new = load(source, "orig"), load(sdpa_fixed(source), "new")
    counter = Counter(new)
    torch.manual_seed(0)
    a = original["Attention"]().to(F64)
    b = new["Attention"]().to(F64)
    b.load_state_dict(a.state_dict(), strict=True)
    assert_same_step(a, b, [torch.randn(2, 7, 16, dtype=F64)])
    assert counter.calls == 1


def test_a_blend_with_a_small_constant_is_no_mask():
    # w * b - 10 * (1 - b) only lowers the scores outside b: the softmax still reads them
    source = GPT_BLEND.replace("BLEND", "w * b - 10.0 * (1 - b)")
    assert analyze(source, "m.py", RULES).findings == []


def test_a_blend_with_an_input_mask_is_found_and_left_with_its_reason():
    # b from the caller: a row it blanks entirely would need the filled-rows test, which reads
    # a boolean mask; the blend is reported and not rewritten
    source = GPT_BLEND.replace("BLEND", "w * b - 1e4 * (1 - b)").replace(
        "        b = self.bias[:, :, ns - nd:ns, :ns]\n", "").replace(
        "def _attn(self, q, k, v):", "def _attn(self, q, k, v, b):").replace(
        "def forward(self, x):", "def forward(self, x, keep):").replace(
        "self._attn(query, key, value)", "self._attn(query, key, value, keep)")
    assert "self.bias[:, :, ns" not in source and "keep)" in source
    findings = analyze(source, "m.py", RULES).findings
    assert len(findings) == 1
    result = fix_text(source, "attention.py", RULES)
    assert not result.applied
    assert any("depends on the input" in why for _, why in result.skipped), result.skipped
