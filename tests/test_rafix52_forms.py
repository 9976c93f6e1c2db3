"""Verify's inputs for research attention the fixer patched but verify skipped (rafix52).

1. A later forward argument the code hands as it is to a Linear of its own and then reads as
   one vector per sample (maia2's ``EloAwareAttention.forward(x, elo_emb)``:
   ``self.elo_query(elo_emb).view(x.size(0), heads, 1, -1)`` added to the per-head queries) was
   only guessed as tokens ([batch, seq, width]) or as rows of a wider batch: "no inputs it
   accepts".  It is now also tried as that Linear's width, one row per sample ([batch, in]),
   after every token guess (a module some earlier guess fits is called as before).  A wrong
   patch (a scale off, the conditioning dropped) still fails: the comparison is unchanged.
   Near-miss: a cross attention's context, handed to a Linear as tokens, is still guessed as
   tokens first (the same inputs as on main).

The fixture modules are ours, written in the tests.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest

torch = pytest.importorskip("torch")

from adopter.config import Config
from adopter.ruleset import load_rules
from adopter.verify import verify_file
from adopter.verify.core import options_for
from adopter.verify.result import FAIL, PASS, SKIP

CONDITIONED = '''import torch
from torch import nn


class ConditionedAttention(nn.Module):
    def __init__(self, dim, heads=4, dim_head=8, cond_dim=16):
        super().__init__()
        inner = heads * dim_head
        self.heads = heads
        self.scale = dim_head ** -0.5
        self.to_qkv = nn.Linear(dim, inner * 3, bias=False)
        self.cond_query = nn.Linear(cond_dim, inner, bias=False)
        self.to_out = nn.Linear(inner, dim)

    def forward(self, x, cond):
        b, n, _ = x.shape
        q, k, v = self.to_qkv(x).chunk(3, dim=-1)
        q = q.view(b, n, self.heads, -1).transpose(1, 2)
        k = k.view(b, n, self.heads, -1).transpose(1, 2)
        v = v.view(b, n, self.heads, -1).transpose(1, 2)
        q = q + self.cond_query(cond).view(x.size(0), self.heads, 1, -1)
        dots = torch.matmul(q, k.transpose(-1, -2)) * self.scale
        attn = dots.softmax(dim=-1)
        out = torch.matmul(attn, v)
        out = out.transpose(1, 2).reshape(b, n, -1)
        return self.to_out(out)
'''

SITE = ("        dots = torch.matmul(q, k.transpose(-1, -2)) * self.scale\n"
        "        attn = dots.softmax(dim=-1)\n"
        "        out = torch.matmul(attn, v)\n")
RIGHT = "        out = torch.nn.functional.scaled_dot_product_attention(q, k, v, scale=self.scale)\n"
WRONG_SCALE = "        out = torch.nn.functional.scaled_dot_product_attention(q, k, v, scale=2 * self.scale)\n"
NO_CONDITION = ("        q = q - self.cond_query(cond).view(x.size(0), self.heads, 1, -1)\n"
                "        out = torch.nn.functional.scaled_dot_product_attention(q, k, v, scale=self.scale)\n")

# a cross attention whose context goes through Linears of its own as tokens (the near-miss: the
# context is still guessed as tokens first, on main and here alike, never as one row per sample)
CROSS = '''import torch
from torch import nn


class CrossAttention(nn.Module):
    def __init__(self, dim, heads=4, dim_head=8, context_dim=16):
        super().__init__()
        inner = heads * dim_head
        self.heads = heads
        self.scale = dim_head ** -0.5
        self.to_q = nn.Linear(dim, inner, bias=False)
        self.to_kv = nn.Linear(context_dim, inner * 2, bias=False)
        self.to_out = nn.Linear(inner, dim)

    def forward(self, x, context):
        b, n, _ = x.shape
        q = self.to_q(x).view(b, n, self.heads, -1).transpose(1, 2)
        k, v = self.to_kv(context).chunk(2, dim=-1)
        k = k.view(b, k.shape[1], self.heads, -1).transpose(1, 2)
        v = v.view(b, v.shape[1], self.heads, -1).transpose(1, 2)
        dots = torch.matmul(q, k.transpose(-1, -2)) * self.scale
        attn = dots.softmax(dim=-1)
        out = torch.matmul(attn, v)
        out = out.transpose(1, 2).reshape(b, n, -1)
        return self.to_out(out)
'''


def _fix(old: str, new: str):
    def fix(text, path, rules, package=None):
        if old not in text:
            return SimpleNamespace(text=text, applied=[], skipped=[], error=None)
        return SimpleNamespace(text=text.replace(old, new), applied=[], skipped=[], error=None)

    return fix


def _verdicts(tmp_path, source, new):
    path = tmp_path / "conditioned.py"
    path.write_text(source)
    assert SITE in source
    rules = [r for r in load_rules() if r.id == "ADP010"]
    return [r for r in verify_file(str(path), rules, Config(), benchmark=False, fix=_fix(SITE, new),
                                   options=options_for(Config(), benchmark=False)) if not r.combined]


def test_a_per_sample_vector_handed_to_a_linear_is_guessed(tmp_path):
    # main: "no inputs it accepts" (the conditioning guessed as tokens only)
    results = _verdicts(tmp_path, CONDITIONED, RIGHT)
    assert [r.verdict for r in results] == [PASS], results
    inputs = results[0].details["inputs"]
    first, second = inputs.split("], ")[:2]
    assert first.count(",") == 2 and second.count(",") == 1, inputs  # [batch, seq, dim], [batch, cond]


@pytest.mark.parametrize("new", [WRONG_SCALE, NO_CONDITION])
def test_a_wrong_patch_of_the_conditioned_attention_still_fails(tmp_path, new):
    results = _verdicts(tmp_path, CONDITIONED, new)
    assert [r.verdict for r in results] == [FAIL], results


def test_a_context_of_tokens_is_still_guessed_as_tokens(tmp_path):
    results = _verdicts(tmp_path, CROSS, RIGHT)
    assert [r.verdict for r in results] == [PASS], results
    second = results[0].details["inputs"].split("], ")[1]
    assert second.count(",") == 2, results[0].details["inputs"]  # [batch, tokens, context width]
