"""rafix35 (session 28): verify reaches fixed attention sites it could not build.

1. Guided-diffusion ``QKVAttention``: one fused input ``[B, 3 * C, T]`` split in three by a size
   taken from it (``ch = qkv.shape[1] // 3; q, k, v = torch.split(qkv, ch, dim=1)``).  The
   harness's ``float[2, 8, 32]`` splits into four ("too many values to unpack (expected 3)"):
   the repair makes the axis the count does not divide the count times as wide.

Fixtures are ours; positives fail on main's engine, near-misses pass on both.
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from corpus_forms import rules

FUSED = '''
import math

import torch
import torch.nn as nn


class FusedQKVAttention(nn.Module):
    def forward(self, qkv):
        ch = qkv.shape[1] // 3
        q, k, v = torch.split(qkv, ch, dim=1)
        scale = 1 / math.sqrt(math.sqrt(ch))
        weight = torch.einsum("bct,bcs->bts", q * scale, k * scale)
        weight = torch.softmax(weight.float(), dim=-1).type(weight.dtype)
        return torch.einsum("bts,bcs->bct", weight, v)
'''


def _verify_one(tmp_path, text, cls):
    from adopter.config import Config
    from adopter.verify import verify_file
    from adopter.verify.core import options_for

    path = tmp_path / "model.py"
    path.write_text(text)
    results = verify_file(str(path), rules("ADP010"), Config(), benchmark=False,
                          options=options_for(Config(), benchmark=False))
    return {r.class_name: r for r in results if not r.combined}[cls]


def test_a_fused_input_split_in_three_by_its_own_width_verifies(tmp_path):
    from adopter.verify.result import PASS

    result = _verify_one(tmp_path, FUSED, "FusedQKVAttention")
    assert result.verdict == PASS, result


def test_split_repair_widens_the_axis_the_count_does_not_divide():
    from adopter.verify.build import Call
    from adopter.verify.inputs import repairs

    x = torch.randn(2, 8, 32)
    out = repairs(Call((x,), {}), ValueError("too many values to unpack (expected 3)"))
    assert (2, 24, 32) in [tuple(c.args[0].shape) for c in out]
    assert all(c.args[0].shape[1] % 3 == 0 or c.args[0].shape[-1] % 3 == 0 for c in out)


def test_split_repair_near_misses():
    from adopter.verify.build import Call
    from adopter.verify.inputs import repairs

    exc = ValueError("too many values to unpack (expected 3)")
    # every axis already divisible by the count: nothing to widen (the rank repair has nothing either)
    x = torch.randn(2, 6, 12)
    assert repairs(Call((x,), {}), exc) == []
    # another error: no widening
    y = torch.randn(2, 8, 32)
    assert repairs(Call((y,), {}), ValueError("not enough values to unpack (expected 2, got 3)")) == []
