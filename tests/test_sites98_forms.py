"""Attention scores written as two products of one query concatenated along the key axis
(sites98, session 48).  The fixtures are ours.

``s = torch.cat([q @ k1^T * c + b, q @ k2^T * c], dim=-1)`` is ``q @ cat([k1, k2], -2)^T * c``
plus a bias that is ``b`` over the first block of keys and 0 over the second: with the values
concatenated alike, softmax then the value product is attention over the concatenated keys
(structure/key_cats.py).  The engine reports it; the fixer declines it (it would have to write
the concatenations of k, v and the bias), and says so.  Such a manual attention in the other
branch of an ``if`` whose branch calls the kernel over other keys (no concatenation) is no
fallback of that call: it is reported.  Near-misses stay silent: two queries, two scales, a
tensor added to a part, a part read elsewhere, a concatenation along another axis, and the
same form in the fallback of a kernel call that is handed the concatenated keys.
"""

from __future__ import annotations

import math

import torch
from corpus_forms import assert_reported_not_fixed, edit, found, load_fixture

KEY_CAT = """\
import math
import torch
from torch import nn
import torch.nn.functional as F


class BlockKeys(nn.Module):
    def __init__(self, dim, heads, dropout=0.0):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.dropout_p = dropout

    def forward(self, x, extra_k, extra_v):
        b, n, c = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        d = q.shape[-1]
        pool = 2
        scale = 1 / math.sqrt(d)
        w = q @ extra_k.transpose(-2, -1) * scale + 2 * math.log(pool)
        w = torch.cat([w, q @ k.transpose(-2, -1) * scale], dim=-1)
        w = torch.softmax(w, dim=-1)
        w = torch.dropout(w, self.dropout_p, train=self.training)
        vv = torch.cat([extra_v, v], dim=-2)
        out = w @ vv
        return out.transpose(1, 2).reshape(b, n, c)
"""

# the same attention in the other branch of an if whose branch calls the kernel over k alone
BRANCHED = edit(KEY_CAT, """        w = q @ extra_k.transpose(-2, -1) * scale + 2 * math.log(pool)
        w = torch.cat([w, q @ k.transpose(-2, -1) * scale], dim=-1)
        w = torch.softmax(w, dim=-1)
        w = torch.dropout(w, self.dropout_p, train=self.training)
        vv = torch.cat([extra_v, v], dim=-2)
        out = w @ vv
""", """        if extra_k.shape[-2] == 0:
            out = F.scaled_dot_product_attention(q, k, v)
        else:
            w = q @ extra_k.transpose(-2, -1) * scale + 2 * math.log(pool)
            w = torch.cat([w, q @ k.transpose(-2, -1) * scale], dim=-1)
            w = torch.softmax(w, dim=-1)
            w = torch.dropout(w, self.dropout_p, train=self.training)
            vv = torch.cat([extra_v, v], dim=-2)
            out = w @ vv
""")

NEAR_MISSES = {
    # the second block scored by another query
    "two queries": edit(KEY_CAT, "torch.cat([w, q @ k.transpose", "torch.cat([w, x.unsqueeze(1) @ k.transpose"),
    # the blocks scaled by different factors
    "two scales": edit(KEY_CAT, "q @ k.transpose(-2, -1) * scale]", "q @ k.transpose(-2, -1) * d]"),
    # a tensor added to one part (not a number)
    "tensor term": edit(KEY_CAT, "* scale + 2 * math.log(pool)", "* scale + extra_k.mean()"),
    # the first part read again after the concatenation (kept for something else)
    "part read elsewhere": edit(edit(KEY_CAT, "w = torch.cat([w, q", "s = torch.cat([w, q"),
                                "w = torch.softmax(w, dim=-1)", "w2 = w\n        w = torch.softmax(s, dim=-1)"),
    # concatenated along the queries
    "query axis": edit(KEY_CAT, "* scale], dim=-1)", "* scale], dim=-2)"),
    # the fallback of a kernel call handed the concatenated keys: the kernel is adopted there
    "fallback of a concatenating call": edit(BRANCHED, "F.scaled_dot_product_attention(q, k, v)",
                                             "F.scaled_dot_product_attention(q, torch.cat([extra_k, k], dim=-2), "
                                             "torch.cat([extra_v, v], dim=-2))"),
}


def test_key_axis_concatenation_found_and_declined_with_its_reason():
    assert_reported_not_fixed(KEY_CAT, "ADP010", "w = torch.softmax(w, dim=-1)", "concatenated along the key axis")


def test_found_beside_a_kernel_call_over_other_keys():
    assert_reported_not_fixed(BRANCHED, "ADP010", "w = torch.softmax(w, dim=-1)", "concatenated along the key axis")


def test_near_misses_stay_silent():
    for name, code in NEAR_MISSES.items():
        assert found(code, "ADP010") == [], name


def test_the_reading_is_attention_over_the_concatenated_keys():
    """What the reading claims, in float64: the module's output equals SDPA over the keys and
    values concatenated, with the number as a float mask over the first block's keys (train
    mode without dropout, and eval; outputs and input gradients)."""
    torch.manual_seed(0)
    cls = load_fixture(KEY_CAT, "BlockKeys")
    module = cls(16, 4).double()
    heads, d = 4, 4
    for training in (True, False):
        module.train(training)
        x = torch.randn(2, 6, 16, dtype=torch.float64, requires_grad=True)
        extra_k = torch.randn(2, heads, 3, d, dtype=torch.float64, requires_grad=True)
        extra_v = torch.randn(2, heads, 3, d, dtype=torch.float64, requires_grad=True)
        got = module(x, extra_k, extra_v)
        q, k, v = module.qkv(x).reshape(2, 6, 3, heads, d).permute(2, 0, 3, 1, 4)
        bias = torch.cat([q.new_full((1, 3), 2 * math.log(2)), q.new_zeros((1, 6))], dim=-1)
        want = torch.nn.functional.scaled_dot_product_attention(
            q, torch.cat([extra_k, k], dim=-2), torch.cat([extra_v, v], dim=-2), attn_mask=bias)
        want = want.transpose(1, 2).reshape(2, 6, 16)
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
        grads = torch.autograd.grad(got.sum(), (x, extra_k, extra_v))
        wants = torch.autograd.grad(want.sum(), (x, extra_k, extra_v))
        for g, w in zip(grads, wants):
            torch.testing.assert_close(g, w, rtol=1e-12, atol=1e-12)


def test_a_part_bound_in_one_branch_stays_silent():
    """The first block's scores bound in one branch of an if (the other binds something else):
    on that other path the concatenation is no key-block product."""
    code = edit(KEY_CAT, "        w = q @ extra_k.transpose(-2, -1) * scale + 2 * math.log(pool)\n",
                "        if self.heads > 1:\n"
                "            w = extra_k.sum(-1).unsqueeze(-2).expand(b, self.heads, n, -1)\n"
                "        else:\n"
                "            w = q @ extra_k.transpose(-2, -1) * scale + 2 * math.log(pool)\n")
    assert found(code, "ADP010") == []
