"""Forms from research119's blind batch of Hugging Face-style model files (session 45).

(research119's ADP010 reading of a mask value held in a registered buffer was withdrawn by the
lead: two sites main fixed and verified, lightseq and bert-seq2seq's GPT-2, were then declined,
and a swapped ``torch.where`` was patched wrongly, review60.)

* ADP014: a function that rotates one tensor and then consumes it (a KV-cache scorer that
  rotates the window's queries, multiplies them by keys rotated elsewhere and returns the
  attention weights) is no one-tensor RoPE helper applied to q and to k: silent.  A helper
  that returns its rotation, applied to q and to k, is still found.
"""

from __future__ import annotations

import pytest

from adopter.engine import analyze
from adopter.ruleset import load_rules, select_rules

RULES = select_rules(load_rules(), ["ADP010", "ADP014"])

def _findings(code, rule):
    return [f for f in analyze(code, "model.py", RULES).findings if f.rule == rule]


def _line(code, text):
    return next(n for n, t in enumerate(code.splitlines(), 1) if text in t)


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
