"""Inputs read from how the forward uses each parameter (verify24).

Two research attentions were fixed but skipped by verify ("no inputs it accepts"):
proteinbert's ``GlobalAttention.forward(x_local, x_global)`` -- tokens beside one global vector
per sample, of another width, whose projection the code rearranges as ``'b (h d)'`` -- and
insurance-credibility-transformer's ``ICLTransformerLayer.forward(c_decor, is_target)``, whose
``is_target`` a method of its own combines with ``&``.  Now a later input handed as is to a
rank-keeping layer (a Linear, or a Sequential of one and activations) whose result is
rearranged from two axes is tried first as [batch, that Linear's width]
(``inputs.fed_output_rank``), and a later input the code (or a method of its own it is handed
to) combines with ``&``/``|``/``~``, or hands to ``where``/``masked_fill`` as the condition, is
tried as booleans (``inputs.bool_used``).  The modules below are our own; right stand-in patches
pass, wrong ones (a wrong scale, the mask dropped) fail.
"""


import textwrap

import pytest
from stand_in import stand_in_fix as _fix

from adopter.config import Config
from adopter.verify import verify_file
from adopter.verify.inputs import bool_used, fed_output_rank
from adopter.verify.result import FAIL, PASS

GLOBAL_SOURCE = '''import math
import torch
import torch.nn.functional as F
from torch import nn, einsum
from einops import rearrange


class VectorQueryAttention(nn.Module):
    def __init__(self, d_tokens, d_vector, heads, d_key):
        super().__init__()
        self.to_q = nn.Sequential(nn.Linear(d_vector, d_key * heads, bias=False), nn.Tanh())
        self.to_k = nn.Sequential(nn.Linear(d_tokens, d_key * heads, bias=False), nn.Tanh())
        self.to_v = nn.Sequential(nn.Linear(d_tokens, (d_vector // heads) * heads, bias=False), nn.GELU())
        self.heads = heads
        self.d_key = d_key

    def forward(self, tokens, vector):
        q = self.to_q(vector)
        k = self.to_k(tokens)
        v = self.to_v(tokens)
        q = rearrange(q, 'b (h d) -> b h d', h=self.heads)
        k = rearrange(k, 'b l (h d) -> b l h d', h=self.heads)
        v = rearrange(v, 'b l (h d) -> b l h d', h=self.heads)
        att = einsum('b h d, b l h d -> b h l', q, k) / math.sqrt(self.d_key)
        att = att.softmax(dim=-1)
        out = einsum('b h l, b l h d -> b h d', att, v)
        return rearrange(out, 'b h d -> b (h d)')


class Outer(nn.Module):
    def __init__(self, d_tokens=24, d_vector=32):
        super().__init__()
        self.attn = VectorQueryAttention(d_tokens, d_vector, heads=4, d_key=8)
'''

GLOBAL_SITE = ("        att = einsum('b h d, b l h d -> b h l', q, k) / math.sqrt(self.d_key)\n"
               "        att = att.softmax(dim=-1)\n"
               "        out = einsum('b h l, b l h d -> b h d', att, v)\n")
GLOBAL_RIGHT = ("        out = F.scaled_dot_product_attention(q.unsqueeze(2), k.transpose(1, 2), v.transpose(1, 2),\n"
                "                                             scale=1 / math.sqrt(self.d_key)).squeeze(2)\n")
GLOBAL_WRONG = ("        out = F.scaled_dot_product_attention(q.unsqueeze(2), k.transpose(1, 2), v.transpose(1, 2),\n"
                "                                             scale=1 / self.d_key).squeeze(2)\n")

BOOL_SOURCE = '''import torch
import torch.nn.functional as F
from torch import nn


class TargetBlockAttention(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.head_dim = dim // heads
        self.q = nn.Linear(dim, dim)
        self.k = nn.Linear(dim, dim)
        self.v = nn.Linear(dim, dim)
        self.o = nn.Linear(dim, dim)

    def _block(self, flags, n):
        both = flags.unsqueeze(2) & flags.unsqueeze(1)
        keep_self = torch.eye(n, dtype=torch.bool).unsqueeze(0)
        hidden = both & ~keep_self
        mask = torch.zeros(flags.shape[0], n, n)
        mask[hidden] = float("-inf")
        return mask

    def forward(self, x, flags):
        b, n, c = x.shape
        q = self.q(x).view(b, n, self.heads, self.head_dim).transpose(1, 2)
        k = self.k(x).view(b, n, self.heads, self.head_dim).transpose(1, 2)
        v = self.v(x).view(b, n, self.heads, self.head_dim).transpose(1, 2)
        bias = self._block(flags, n).unsqueeze(1)
        scores = torch.matmul(q, k.transpose(-2, -1)) / self.head_dim ** 0.5
        scores = scores + bias
        attn = F.softmax(scores, dim=-1)
        out = torch.matmul(attn, v)
        return self.o(out.transpose(1, 2).reshape(b, n, c))


class Outer(nn.Module):
    def __init__(self, dim=32):
        super().__init__()
        self.layer = TargetBlockAttention(dim, heads=4)
'''

BOOL_SITE = ("        scores = torch.matmul(q, k.transpose(-2, -1)) / self.head_dim ** 0.5\n"
             "        scores = scores + bias\n"
             "        attn = F.softmax(scores, dim=-1)\n"
             "        out = torch.matmul(attn, v)\n")
BOOL_RIGHT = "        out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)\n"
BOOL_NO_MASK = "        out = F.scaled_dot_product_attention(q, k, v)\n"



def _verify(tmp_path, source, site, patch, all_rules, quick):
    pytest.importorskip("einops")
    path = tmp_path / "attention.py"
    path.write_text(source)
    assert site in source
    rules = [r for r in all_rules if r.id == "ADP010"]
    return [r for r in verify_file(str(path), rules, Config(), benchmark=False, fix=_fix(site, patch), options=quick)
            if not r.combined and r.class_name in ("VectorQueryAttention", "TargetBlockAttention")]


def test_a_global_vector_beside_tokens_is_verified(tmp_path, all_rules, quick):
    results = _verify(tmp_path, GLOBAL_SOURCE, GLOBAL_SITE, GLOBAL_RIGHT, all_rules, quick)
    assert [r.verdict for r in results] == [PASS], results


def test_a_global_vector_patch_with_the_wrong_scale_fails(tmp_path, all_rules, quick):
    results = _verify(tmp_path, GLOBAL_SOURCE, GLOBAL_SITE, GLOBAL_WRONG, all_rules, quick)
    assert [r.verdict for r in results] == [FAIL], results


def test_boolean_flags_through_a_method_are_verified(tmp_path, all_rules, quick):
    results = _verify(tmp_path, BOOL_SOURCE, BOOL_SITE, BOOL_RIGHT, all_rules, quick)
    assert [r.verdict for r in results] == [PASS], results


def test_a_patch_that_drops_the_flags_mask_fails(tmp_path, all_rules, quick):
    results = _verify(tmp_path, BOOL_SOURCE, BOOL_SITE, BOOL_NO_MASK, all_rules, quick)
    assert [r.verdict for r in results] == [FAIL], results


def _functions(source: str) -> dict:
    import linecache

    path = "<read_inputs>"
    text = textwrap.dedent(source)
    linecache.cache[path] = (len(text), None, text.splitlines(True), path)
    namespace: dict = {}
    exec(compile(text, path, "exec"), namespace)
    return namespace


def test_bool_used_reads_operators_not_names():
    ns = _functions("""
        def forward(x, a, b, c, d, e, mask):
            a2 = a.unsqueeze(1)
            y = x.masked_fill(b, 0.0) + torch.where(c, x, x)
            z = a2[:, None] | ~d
            return x * mask + e & 1
    """)
    # e is an operand of ``&`` through ``(x * mask + e) & 1``: a BinOp, not e itself
    assert {n for n in "abcde" if bool_used(ns["forward"], n)} == {"a", "b", "c", "d"}
    assert not bool_used(ns["forward"], "mask")  # a name says nothing; a product is no boolean use


def test_fed_output_rank_needs_a_rank_keeping_layer_and_one_pattern():
    from torch import nn

    ns = _functions("""
        from einops import rearrange


        def forward(self, x, g, h):
            q = self.lin(g)
            r = self.conv(h)
            q = rearrange(q, 'b (h d) -> b h d', h=2)
            r = rearrange(r, 'b c -> b c')
            k = rearrange(self.lin(x), 'b n (h d) -> b h n d', h=2)
            return q, r, k
    """)
    module = nn.Module()
    module.lin = nn.Sequential(nn.Linear(4, 4), nn.Tanh())
    module.conv = nn.Sequential(nn.Conv1d(4, 4, 1))
    assert fed_output_rank(ns["forward"], "g", module) == 2
    assert fed_output_rank(ns["forward"], "h", module) is None  # a convolution: not rank-keeping
    assert fed_output_rank(ns["forward"], "x", module) is None  # not bound to a name first
