"""verify on attention that hands its probabilities back (ADP010's ``need_weights`` flag): the
default build keeps the original path, so verify also runs the patched module with the flag
False -- the fused path -- and compares every output but the probabilities it then hands back
as None.  A patch whose fused path computes something else must fail there."""

from __future__ import annotations

import dataclasses
import textwrap

import pytest

from adopter.config import Config
from adopter.verify import verify_file
from adopter.verify.result import FAIL, PASS

torch = pytest.importorskip("torch")

SOURCE = textwrap.dedent('''
    import torch
    from torch import nn


    class Attention(nn.Module):
        def __init__(self, dim=16, num_heads=2):
            super().__init__()
            self.num_heads = num_heads
            self.scale = (dim // num_heads) ** -0.5
            self.qkv = nn.Linear(dim, dim * 3)
            self.proj = nn.Linear(dim, dim)

        def forward(self, x):
            B, N, C = x.shape
            qkv = self.qkv(x).reshape(B, N, 3, self.num_heads, C // self.num_heads).permute(2, 0, 3, 1, 4)
            q, k, v = qkv[0], qkv[1], qkv[2]
            attn = (q @ k.transpose(-2, -1)) * self.scale
            attn = attn.softmax(dim=-1)
            x = (attn @ v).transpose(1, 2).reshape(B, N, C)
            return self.proj(x), attn


    class Block(nn.Module):
        def __init__(self, dim=16):
            super().__init__()
            self.attn = Attention(dim)

        def forward(self, x):
            y, _ = self.attn(x)
            return x + y
''')


def _rules(all_rules):
    return [r for r in all_rules if r.id == "ADP010"]


def test_the_fused_path_is_verified_with_the_flag_declined(tmp_path, all_rules, quick):
    path = tmp_path / "attention.py"
    path.write_text(SOURCE)
    results = [r for r in verify_file(str(path), _rules(all_rules), Config(), benchmark=False, options=quick)
               if not r.combined]
    [result] = results
    assert result.verdict == PASS, result.reason
    assert "need_weights=False (the patched forward() only)" in result.reason


def test_a_wrong_fused_path_fails(tmp_path, all_rules, quick):
    from adopter.synth import fix_text

    def wrong(text, path, rules, package=None):  # the fused path scales the scores twice
        result = fix_text(text, path, rules, package)
        assert "scale=self.scale" in result.text
        return dataclasses.replace(result, text=result.text.replace("scale=self.scale", "scale=self.scale * 2"))

    path = tmp_path / "attention.py"
    path.write_text(SOURCE)
    results = [r for r in verify_file(str(path), _rules(all_rules), Config(), benchmark=False, fix=wrong,
                                      options=quick) if not r.combined]
    assert [r.verdict for r in results] == [FAIL], [r.reason for r in results]
