"""RoPE written as a one-tensor helper (``x * cos + rot(x) * sin``) whose rotation is itself a
helper: found whatever the rotation helper is called.  The rotation's step sits in its own
helper and the helper's sum is returned as it is to the attention, so "every step in one
function" must read each step as its own function's or as its caller's (the value a helper
returns as it is): before, only a helper named ``rotate_half`` was found, by the rule's
by-name alternative.  Near-misses: an interleaved rotation (pairs of neighbours swapped) and a
helper that rotates q but adds the sine term in another function."""

from __future__ import annotations

import pytest

from adopter.engine import analyze
from adopter.ruleset import load_rules, select_rules

ADP014 = select_rules(load_rules(), ["ADP014"])

TEMPLATE = """\
import torch
from torch import nn


def {name}(x):
{body}


def apply_rope(t, cos, sin):
    return t * cos + {name}(t) * sin


class Attn(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.qkv = nn.Linear(dim, 3 * dim)

    def forward(self, x, cos, sin):
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        q = apply_rope(q, cos, sin)
        k = apply_rope(k, cos, sin)
        return q, k, v
"""

HALVES = "    a, b = x.chunk(2, dim=-1)\n    return torch.cat((-b, a), dim=-1)"
SLICES = (
    "    h = x.shape[-1] // 2\n    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)"
)
INTERLEAVED = "    a, b = x[..., ::2], x[..., 1::2]\n    return torch.stack((-b, a), dim=-1).flatten(-2)"


def _found(code):
    return [f for f in analyze(code, "model.py", ADP014).findings if f.rule == "ADP014"]


@pytest.mark.parametrize("name", ["rotate_half", "rot", "swap_halves"])
@pytest.mark.parametrize("body", [HALVES, SLICES], ids=["chunk", "slices"])
def test_rotation_helper_found_whatever_its_name(name, body):
    code = TEMPLATE.format(name=name, body=body)
    found = _found(code)
    assert len(found) == 1
    line = next(n for n, t in enumerate(code.splitlines(), 1) if "t * cos" in t)
    assert found[0].line <= line <= found[0].end_line


def test_interleaved_rotation_is_not_rotate_half():
    assert _found(TEMPLATE.format(name="rot", body=INTERLEAVED)) == []


SPLIT_SUM = """\
import torch
from torch import nn


def rot(x):
    a, b = x.chunk(2, dim=-1)
    return torch.cat((-b, a), dim=-1)


def rotated_sine(t, sin):
    return rot(t) * sin


class Attn(nn.Module):
    def forward(self, q, k, cos, sin):
        q = q * cos + rotated_sine(q, sin) * 2
        k = k * cos + rotated_sine(k, sin) * 2
        return q, k
"""


def test_a_sine_term_scaled_again_in_the_caller_is_not_rope():
    assert _found(SPLIT_SUM) == []
