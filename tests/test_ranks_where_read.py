"""A tensor's rank where it is read, not over every assignment to its name.

``q, k, v = qkv.split(c, dim=2)`` then ``q = q.view(b, t, h, d).transpose(1, 2)``: the first
binding of ``q`` has no rank the code states, the second is 4-D, and the product reads the
second.  ``att.softmax(dim=3)`` of ``q @ k^T`` is then the softmax over the keys (dim=-1), as
GPT-style research code writes it.  Read over all of ``q``'s assignments, the rank was unknown,
the dim stayed 3, and the attention was not found.  A name whose reaching assignments differ in
rank (a branch that unsqueezes) still has none.
"""

from __future__ import annotations

import textwrap

from adopter.engine import analyze
from adopter.ruleset import load_rules

ADP010 = [r for r in load_rules() if r.id == "ADP010"]

REBOUND = textwrap.dedent('''
    import math
    import torch
    from torch import nn


    class Attention(nn.Module):
        def __init__(self, dim, heads):
            super().__init__()
            self.heads, self.head_dim = heads, dim // heads
            self.qkv = nn.Linear(dim, 3 * dim)

        def forward(self, x):
            B, T, C = x.shape
            q, k, v = self.qkv(x).split(C, dim=2)
            q = q.view(B, T, self.heads, self.head_dim).transpose(1, 2)
            k = k.view(B, T, self.heads, self.head_dim).transpose(1, 2)
            v = v.view(B, T, self.heads, self.head_dim).transpose(1, 2)
            att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(k.size(-1)))
            att = att.softmax(dim=DIM)
            y = att @ v
            return y.transpose(1, 2).reshape(B, T, C)
''')


def _found(source: str) -> list[tuple[int, bool]]:
    return [(f.line, f.fixable) for f in analyze(source, "m.py", ADP010).findings]


def test_the_last_axis_counted_from_the_front_at_the_rank_the_reads_see():
    found = _found(REBOUND.replace("DIM", "3"))
    assert found == [(19, True)]  # the scores' line
    assert found == _found(REBOUND.replace("DIM", "-1"))


def test_another_axis_counted_from_the_front_is_not_attention():
    assert _found(REBOUND.replace("DIM", "2")) == []  # the queries' axis of 4-D scores


def test_a_rank_that_differs_between_branches_stays_unknown():
    # q is 4-D on one path and 5-D on the other where the product reads it: no rank, dim 3 is not read as -1
    branched = REBOUND.replace("DIM", "3").replace(
        "        att = (q @ k",
        "        if T > 1:\n            q = q.unsqueeze(0)\n        att = (q @ k")
    assert branched.count("unsqueeze") == 1
    assert _found(branched) == []
