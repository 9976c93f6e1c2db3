"""Research attention forms read in session 41 (research98's blind batch of CNN and graph
research code).  The fixtures are ours.

- ADP010: the probabilities handed to the value product under another name (a pair-bias graph
  attention's ``weights = probs`` then ``bmm(weights, v)``).  The alias is read by the product
  alone, so the fused path, which never forms the probabilities, drops it as it drops a layout
  copy.  An alias read anywhere else stays declined (returned to callers, as before).
- ADP010: a widening bias computed by modules between the scores' product and the add (the
  pair features normed and projected to one bias per head).  The guard tests its dtype before
  the attention, so the statements computing it move above the guard's ``if`` on both paths,
  where they read nothing of the attention and what they move above changes nothing in place
  and calls no module (the move cnstd's Swin-v2 bias already gets under a dtype fallback).
"""

from __future__ import annotations

import textwrap

import pytest
from corpus_forms import load_fixture as _load
from corpus_forms import rules

from adopter.synth import fix_text

torch = pytest.importorskip("torch")

PAIR_BIAS = textwrap.dedent("""\
    import torch
    import torch.nn as nn
    import torch.nn.functional as F


    class PairBiasAttention(nn.Module):
        def __init__(self, dim=16, pair_dim=6, heads=2):
            super().__init__()
            self.heads = heads
            self.head_dim = dim // heads
            self.scaling = self.head_dim ** -0.5
            self.to_q = nn.Linear(dim, dim, bias=False)
            self.to_k = nn.Linear(dim, dim, bias=False)
            self.to_v = nn.Linear(dim, dim, bias=False)
            self.pair_norm = nn.LayerNorm(pair_dim)
            self.pair_to_bias = nn.Linear(pair_dim, heads, bias=False)
            self.out = nn.Linear(dim, dim)

        def forward(self, x, pairs):
            b, n, _ = x.shape
            q = self.to_q(x) * self.scaling
            k = self.to_k(x)
            v = self.to_v(x)
            q = q.view(b, n, self.heads, self.head_dim).transpose(1, 2).reshape(b * self.heads, n, self.head_dim)
            k = k.view(b, n, self.heads, self.head_dim).transpose(1, 2).reshape(b * self.heads, n, self.head_dim)
            v = v.view(b, n, self.heads, self.head_dim).transpose(1, 2).reshape(b * self.heads, n, self.head_dim)

            scores = torch.bmm(q, k.transpose(1, 2))
            pairs = self.pair_norm(pairs)
            bias = self.pair_to_bias(pairs)
            bias = bias.permute(0, 3, 1, 2)
            scores = scores.view(b, self.heads, n, n) + bias
            scores = scores.view(b * self.heads, n, n)

            probs_float = F.softmax(scores, dim=-1)
            probs = probs_float.type_as(scores)
            weights = probs
            out = torch.bmm(weights, v)
            out = out.view(b, self.heads, n, self.head_dim).transpose(1, 2).reshape(b, n, -1)
            return self.out(out)
""")

BIAS_LINES = ("        pairs = self.pair_norm(pairs)\n"
              "        bias = self.pair_to_bias(pairs)\n"
              "        bias = bias.permute(0, 3, 1, 2)\n"
              "        scores = scores.view(b, self.heads, n, n) + bias\n"
              "        scores = scores.view(b * self.heads, n, n)\n")


def _fix(source: str) -> str:
    return fix_text(source, "model.py", rules("ADP010")).text


def _variant(old: str, new: str) -> str:
    assert old in PAIR_BIAS
    return PAIR_BIAS.replace(old, new)


def _same(source: str, fixed: str, with_pairs: bool = True) -> None:
    torch.manual_seed(0)
    original = _load(source, "PairBiasAttention")().double().eval()
    patched = _load(fixed, "PairBiasAttention")().double().eval()
    patched.load_state_dict(original.state_dict())
    x = torch.randn(3, 5, 16, dtype=torch.float64)
    pairs = torch.randn(3, 5, 5, 6, dtype=torch.float64)
    with torch.no_grad():
        # float64 and a 5-key softmax: the two paths differ by rounding alone
        assert torch.allclose(original(x, pairs), patched(x, pairs), atol=1e-10)


def test_pair_bias_from_modules_and_alias_fixed_exactly():
    fixed = _fix(PAIR_BIAS)
    assert fixed.count("scaled_dot_product_attention(") == 1
    # the bias is computed once, above the guard that reads its dtype
    assert fixed.count("bias = self.pair_to_bias(pairs)") == 1
    assert fixed.index("bias = bias.permute(0, 3, 1, 2)") < fixed.index("        if getattr(bias")
    assert 'getattr(bias, "dtype"' in fixed
    _same(PAIR_BIAS, fixed)


def test_alias_alone_fixed_exactly():
    source = _variant(BIAS_LINES, "")
    fixed = _fix(source)
    assert fixed.count("scaled_dot_product_attention(") == 1
    _same(source, fixed)


def test_module_bias_alone_fixed_exactly():
    source = _variant("        weights = probs\n        out = torch.bmm(weights, v)\n",
                      "        out = torch.bmm(probs, v)\n")
    fixed = _fix(source)
    assert fixed.count("scaled_dot_product_attention(") == 1
    _same(source, fixed)


def test_alias_returned_to_callers_declined():
    # the alias keeps the probabilities for the callers on every call: no path without them
    source = _variant("        return self.out(out)\n", "        return self.out(out), weights\n")
    assert "scaled_dot_product_attention(" not in _fix(source)


def test_alias_read_after_the_product_declined():
    # a later statement reads the probabilities' values through the alias
    source = _variant("        out = torch.bmm(weights, v)\n",
                      "        out = torch.bmm(weights, v) + weights.sum(-1, keepdim=True)\n")
    assert "scaled_dot_product_attention(" not in _fix(source)


def test_bias_moved_above_a_module_call_declined():
    # a statement the bias's statements would move above calls a module (hooks run in order)
    source = _variant("        scores = torch.bmm(q, k.transpose(1, 2))\n",
                      "        scores = torch.bmm(q, k.transpose(1, 2))\n        seen = self.out(x)\n")
    assert "scaled_dot_product_attention(" not in _fix(source)


def test_bias_reading_the_scores_declined():
    source = _variant("        bias = bias.permute(0, 3, 1, 2)\n",
                      "        bias = bias.permute(0, 3, 1, 2) + scores.mean()\n")
    assert "scaled_dot_product_attention(" not in _fix(source)
