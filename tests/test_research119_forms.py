"""Forms from research119's blind batch of Hugging Face-style model files (session 45).

* ADP010: the older GPT-2 / GPT-J / ProGen mask value held in a registered buffer,
  ``self.register_buffer("masked_bias", torch.tensor(-1e9))``, filled in with
  ``torch.where(causal, w, self.masked_bias.to(w.dtype))``: a large negative fill, so the
  scores are masked as by ``-inf`` (checked in numbers below).  Look-alikes: a buffer holding
  something else (a zero), and one the class binds twice (which value is read is not known).
* ADP014: a function that rotates one tensor and then consumes it (a KV-cache scorer that
  rotates the window's queries, multiplies them by keys rotated elsewhere and returns the
  attention weights) is no one-tensor RoPE helper applied to q and to k: silent.  A helper
  that returns its rotation, applied to q and to k, is still found.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from adopter.engine import analyze
from adopter.ruleset import load_rules, select_rules

RULES = select_rules(load_rules(), ["ADP010", "ADP014"])

BUFFER_ATTENTION = """\
import torch
from torch import nn


class Attention(nn.Module):
    def __init__(self, dim, heads, max_positions=64):
        super().__init__()
        self.register_buffer(
            "bias",
            torch.tril(torch.ones((max_positions, max_positions), dtype=torch.bool)).view(
                1, 1, max_positions, max_positions
            ),
        )
        self.register_buffer("masked_bias", {fill})
{extra}        self.heads = heads
        self.head_dim = dim // heads
        self.scale_attn = self.head_dim ** 0.5

    def _attn(self, query, key, value, attention_mask=None):
        query_length, key_length = query.size(-2), key.size(-2)
        causal_mask = self.bias[:, :, key_length - query_length : key_length, :key_length]
        attn_weights = torch.matmul(query, key.transpose(-1, -2))
        attn_weights = attn_weights / self.scale_attn
        attn_weights = torch.where(causal_mask, attn_weights, self.masked_bias.to(attn_weights.dtype))
        if attention_mask is not None:
            attn_weights = attn_weights + attention_mask
        attn_weights = nn.Softmax(dim=-1)(attn_weights)
        attn_weights = attn_weights.to(value.dtype)
        attn_output = torch.matmul(attn_weights, value)
        return attn_output, attn_weights

    def forward(self, q, k, v, attention_mask=None):
        return self._attn(q, k, v, attention_mask)[0]
"""


def _findings(code, rule):
    return [f for f in analyze(code, "model.py", RULES).findings if f.rule == rule]


def _line(code, text):
    return next(n for n, t in enumerate(code.splitlines(), 1) if text in t)


def test_buffer_fill_found():
    code = BUFFER_ATTENTION.format(fill="torch.tensor(-1e9)", extra="")
    found = _findings(code, "ADP010")
    assert len(found) == 1
    softmax = _line(code, "nn.Softmax(dim=-1)")
    assert found[0].line <= softmax <= found[0].end_line


@pytest.mark.parametrize("fill, extra", [
    ("torch.tensor(0.0)", ""),  # a zero is no mask value: the scores are kept, not hidden
    ("torch.tensor(-1e9)", "        self.masked_bias = torch.tensor(1.0)\n"),  # bound twice
], ids=["zero", "bound-twice"])
def test_buffer_look_alikes_silent(fill, extra):
    code = BUFFER_ATTENTION.format(fill=fill, extra=extra)
    assert _findings(code, "ADP010") == []


def test_buffer_fill_masks_as_sdpa_does():
    """The buffer's -1e9 in place of the causal mask's hidden scores gives SDPA's causal
    attention (float32, rows of 8 keys: a tolerance of a few ulps of the softmax's sums)."""
    namespace: dict = {}
    exec(compile(BUFFER_ATTENTION.format(fill="torch.tensor(-1e9)", extra=""), "model.py", "exec"), namespace)
    torch.manual_seed(0)
    module = namespace["Attention"](dim=32, heads=4).eval()
    q, k, v = (torch.randn(2, 4, 8, 8) for _ in range(3))
    ours = module(q, k, v)
    theirs = F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=1 / math.sqrt(8))
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-6)


SCORER = """\
import math
import torch
from torch import nn


def rotate_half(x):
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


class Scorer(nn.Module):
    @staticmethod
    def window_attention(queries, keys, cos, sin):
        queries = (queries * cos) + (rotate_half(queries) * sin)
        weights = torch.matmul(queries, keys.transpose(2, 3)) / math.sqrt(queries.shape[-1])
        weights = nn.functional.softmax(weights, dim=-1, dtype=torch.float32)
        return weights

    def forward(self, queries, keys, cos, sin):
        return self.window_attention(queries, keys, cos, sin).mean(dim=-2)
"""

HELPER = """\
import torch
from torch import nn


def rotate_half(x):
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


def rotate_one(x, cos, sin):
    x_embed = (x * cos) + (rotate_half(x) * sin)
    return x_embed


class Attention(nn.Module):
    def forward(self, q, k, v, cos, sin):
        q = rotate_one(q, cos, sin)
        k = rotate_one(k, cos, sin)
        return torch.softmax(q @ k.transpose(-1, -2), dim=-1) @ v
"""


def test_rotation_consumed_in_its_function_silent():
    assert _findings(SCORER, "ADP014") == []


def test_helper_returning_its_rotation_found():
    found = _findings(HELPER, "ADP014")
    assert len(found) == 1
    line = _line(HELPER, "x_embed = (x * cos)")
    assert found[0].line <= line <= found[0].end_line


PARTIAL = """\
import torch
from torch import nn


class Rotary(nn.Module):
    def _rotate_half(self, x):
        x1, x2 = x.chunk(2, dim=-1)
        return torch.cat((-x2, x1), dim=-1)

    def _apply(self, sin, cos, t):
        rotary_dim = sin.shape[-1]
        t_rot, t_pass = t[..., :rotary_dim], t[..., rotary_dim:]
        t_rot = ((t_rot * cos) + (self._rotate_half(t_rot) * sin)).to(t.dtype)
        return torch.cat([t_rot, t_pass], dim=-1)

    def forward(self, q, k, sin, cos):
        return self._apply(sin, cos, q), self._apply(sin, cos, k)
"""

MAPPED = """\
import torch


def rotate_half(x):
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


def apply_rotary_pos_emb(q, k, freqs):
    q, k = map(lambda t: (t * freqs.cos()) + (rotate_half(t) * freqs.sin()), (q, k))
    return q, k


class Attention(torch.nn.Module):
    def forward(self, q, k, v, freqs):
        q, k = apply_rotary_pos_emb(q, k, freqs)
        return torch.softmax(q @ k.transpose(-1, -2), dim=-1) @ v
"""


@pytest.mark.parametrize("code, text", [
    (PARTIAL, "t_rot = ((t_rot * cos)"),  # the rotation cast, bound, then concatenated and returned
    (MAPPED, "map(lambda t:"),  # a lambda returns its body
], ids=["cast-then-returned", "lambda"])
def test_helper_handing_back_its_rotation_found(code, text):
    found = _findings(code, "ADP014")
    line = _line(code, text)
    assert any(f.line <= line <= f.end_line for f in found)
