"""Scores divided twice in a row (research117's blind batch, science models: a weather
emulator's Swin V2-style window attention, ``(q @ k^T) / (|q| * |k|^T).clamp(min=eps)`` then
``/ tau.clamp(min=0.01)`` with a learned per-head temperature, a bias and a shift mask after).
Both divisors fold into q and k (cosine attention at a per-head temperature), so
``scaled_dot_product_attention`` reproduces the module: shown numerically below on a real
module.  The engine reports the site (rules/ADP010-sdpa.toml, last alternative) and the fixer
declines it with its reason (only one divisor is planned).  Look-alikes that must stay
silent: a second divisor that is a (query, key) table of the module's own, and one computed
from the scores' values.  The fixtures are ours.
"""

from __future__ import annotations

import textwrap

from corpus_forms import found, line_of, load_fixture, rules

from adopter.synth import fix_text

COSINE = textwrap.dedent("""\
    import torch
    from torch import nn


    class CosineWindowAttention(nn.Module):
        def __init__(self, dim=32, heads=4, n=6):
            super().__init__()
            self.heads = heads
            self.qkv = nn.Linear(dim, dim * 3)
            self.tau = nn.Parameter(torch.rand(1, heads, 1, 1) + 0.5)
            self.table = nn.Parameter(torch.ones(n, n))
            self.bias = nn.Parameter(torch.randn(heads, n, n))
            self.proj = nn.Linear(dim, dim)
            self.softmax = nn.Softmax(dim=-1)

        def forward(self, x, mask=None):
            b, n, c = x.shape
            qkv = self.qkv(x).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
            q, k, v = qkv[0], qkv[1], qkv[2]
            norm_q = torch.norm(q, dim=-1, keepdim=True)
            norm_k = torch.norm(k, dim=-1, keepdim=True).transpose(-2, -1)
            attn = (q @ k.transpose(-2, -1)) / (norm_q * norm_k).clamp(min=1e-6)
            attn = attn / SECOND
            attn = attn + self.bias.unsqueeze(0)
            if mask is not None:
                nw = mask.shape[0]
                attn = attn.view(b // nw, nw, self.heads, n, n) + mask.unsqueeze(1).unsqueeze(0)
                attn = attn.view(-1, self.heads, n, n)
            attn = self.softmax(attn)  # softmax
            return self.proj((attn @ v).transpose(1, 2).reshape(b, n, c))
""")


def _code(second="self.tau.clamp(min=0.01)"):
    return COSINE.replace("SECOND", second)


def _softmax_hits(code):
    line = line_of(code, "# softmax")
    return [f for f in found(code, "ADP010") if f.line <= line <= f.end_line]


def test_scores_divided_twice_are_attention():
    assert len(_softmax_hits(_code())) == 1
    # a fixed scale then a per-head temperature: the same form
    assert len(_softmax_hits(_code().replace("(norm_q * norm_k).clamp(min=1e-6)", "8.0"))) == 1


def test_sdpa_reproduces_the_cosine_form():
    # the reading the site rests on: q / |q| / tau and k / |k| with scale=1 and the bias as an
    # additive mask give the module's output (float64; the clamp only acts on near-zero rows)
    import torch

    cls = load_fixture(_code(), "CosineWindowAttention")
    torch.manual_seed(0)
    m = cls().double().eval()
    x = torch.randn(2, 6, 32, dtype=torch.float64)
    with torch.no_grad():
        want = m(x)
        b, n, c = x.shape
        q, k, v = m.qkv(x).reshape(b, n, 3, 4, c // 4).permute(2, 0, 3, 1, 4)
        q = q / q.norm(dim=-1, keepdim=True) / m.tau.clamp(min=0.01)
        k = k / k.norm(dim=-1, keepdim=True)
        out = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=m.bias.unsqueeze(0), scale=1.0)
        got = m.proj(out.transpose(1, 2).reshape(b, n, c))
    torch.testing.assert_close(got, want, rtol=0, atol=1e-12)


def test_two_divisors_are_declined_by_the_fixer():
    # (folding the second divisor is not planned: reported, not rewritten, with the reason)
    for code in (_code(), _code().replace("(norm_q * norm_k).clamp(min=1e-6)", "8.0")):
        result = fix_text(code, "model.py", rules("ADP010"))
        assert result.applied == [] and result.text == code
        assert [why for _, why in result.skipped] == [
            "the scores are divided twice; only one divisor is folded into the fused call"]


def test_second_divisor_of_query_key_shape_is_no_scale():
    # a (query, key) table of the module's own: not a factor SDPA's scale or q can take
    assert _softmax_hits(_code("self.table")) == []


def test_second_divisor_computed_from_the_scores_is_no_scale():
    # a function of the scores' values (a row maximum): not a factor
    assert _softmax_hits(_code("attn.abs().amax(dim=-1, keepdim=True)")) == []
