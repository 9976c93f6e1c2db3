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
2. A guarded patch whose fused side wants an attribute None (``if self.attn_type is None:``, the
   plain attention; else a cosine one) where ``__init__`` stores a constructor argument in it as
   it is (``self.attn_type = attn_type``, default ``'v2'``, or None but built by a caller of the
   file with a value): verify built it only as given, so the patch took its original path
   ("the patched code took its original (guarded) path", pdetransformer's
   ``CarrierTokenAttention2DTimestep`` and ``DownSample_Attn``).  Now also built with that
   argument None (``branches.stored_parameters``; the variant is the class's own test).  A wrong
   fused call still fails.  Near-miss: an attribute __init__ computes (not a constructor
   argument stored as it is) gets no such build and stays a skip.

The fixture modules are ours, written in the tests.
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from adopter.verify.result import FAIL, PASS, SKIP
from verify_patches import adp010_verdicts, replacing_fix

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


MODED_BODY = '''            if self.attn_type is None:
                attn = q @ k.transpose(-2, -1)
                attn = attn * self.scale
            elif self.attn_type == "v2":
                attn = F.normalize(q, dim=-1) @ F.normalize(k, dim=-1).transpose(-2, -1)
                attn = attn * torch.clamp(self.logit_scale, max=4.6052).exp()
            attn = attn.softmax(dim=-1)
            out = attn @ v
'''

MODED = '''import torch
import torch.nn.functional as F
from torch import nn


class ModedAttention(nn.Module):
    def __init__(self, dim, heads=4, attn_type="v2"):
        super().__init__()
        self.heads = heads
        self.scale = (dim // heads) ** -0.5
        self.to_qkv = nn.Linear(dim, dim * 3, bias=False)
        self.attn_type = attn_type
        if attn_type == "v2":
            self.logit_scale = nn.Parameter(torch.log(10 * torch.ones((heads, 1, 1))))

    def forward(self, x):
        b, n, _ = x.shape
        q, k, v = self.to_qkv(x).chunk(3, dim=-1)
        q, k, v = (t.view(b, n, self.heads, -1).transpose(1, 2) for t in (q, k, v))
''' + "\n".join(line[4:] for line in MODED_BODY.splitlines()) + '''
        return out.transpose(1, 2).reshape(b, n, -1)
'''

# the fixer's guarded form: the written attention where the attribute is set, the fused call where
# it is None
MODED_SITE = "\n".join(line[4:] for line in MODED_BODY.splitlines()) + "\n"
MODED_RIGHT = "        if not (self.attn_type is None):\n" + MODED_BODY + \
    "        else:\n            out = F.scaled_dot_product_attention(q, k, v, scale=self.scale)\n"
MODED_WRONG = MODED_RIGHT.replace("scale=self.scale)", "scale=2 * self.scale)")
# the same test on an attribute __init__ computes from its argument (no argument stored as it is)
COMPUTED = MODED.replace("        self.attn_type = attn_type\n", "        self.attn_type = attn_type or \"v2\"\n")


def _verdicts(tmp_path, source, new, site=SITE):
    assert site in source
    return adp010_verdicts(tmp_path, source, replacing_fix(site, new))


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


@pytest.mark.parametrize("new, verdict", [(MODED_RIGHT, PASS), (MODED_WRONG, FAIL)])
def test_a_stored_argument_tested_for_none_is_built_none(tmp_path, new, verdict):
    # main: "the patched code took its original (guarded) path" (built with attn_type="v2" only)
    results = _verdicts(tmp_path, MODED, new, MODED_SITE)
    assert [r.verdict for r in results] == [verdict], results
    if verdict == PASS:
        assert "attn_type=None" in results[0].reason, results[0].reason


def test_a_computed_attribute_gets_no_none_build(tmp_path):
    results = _verdicts(tmp_path, COMPUTED, MODED_RIGHT, MODED_SITE)
    assert [r.verdict for r in results] == [SKIP], results
