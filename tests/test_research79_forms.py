"""Forms left by research79's blind batch (session 38: reimplemented architectures, model zoos,
robot-policy transformers): our own fixtures, each with near-misses that must not match.

- attention whose probabilities (and raw scores) are handed back inside one of the file's
  record types, a ``namedtuple`` built positionally (``Return(out, sim, attn)``), as a research
  attention returns them for its auxiliary losses (ASAC's ``AttentionReturn``): a record only
  holds its arguments, as a tuple does, so the site stays (the rewrite guards the values).
"""

from __future__ import annotations

import textwrap

from corpus_forms import edit, finding_at

# ------------------------------------------------------ probabilities returned in a namedtuple

RECORD_ATTENTION = textwrap.dedent("""\
    from collections import namedtuple

    import torch
    import torch.nn as nn
    from einops import rearrange

    AttentionOut = namedtuple("AttentionOut", ["out", "sim", "attn"])


    class Attention(nn.Module):
        def __init__(self, dim, heads=4):
            super().__init__()
            self.heads = heads
            self.scale = (dim // heads) ** -0.5
            self.to_qkv = nn.Linear(dim, dim * 3, bias=False)
            self.to_out = nn.Linear(dim, dim)

        def forward(self, x):
            q, k, v = self.to_qkv(x).chunk(3, dim=-1)
            q, k, v = (rearrange(t, "b n (h d) -> b h n d", h=self.heads) for t in (q, k, v))
            sim = torch.einsum("bhid,bhjd->bhij", q * self.scale, k)
            attn = sim.softmax(dim=-1)  # record-site
            out = torch.einsum("bhij,bhjd->bhid", attn, v)
            out = rearrange(out, "b h n d -> b n (h d)")
            return AttentionOut(self.to_out(out), sim, attn)
    """)

# The same record declared as a ``typing.NamedTuple`` class.
TYPED_RECORD_ATTENTION = edit(
    edit(RECORD_ATTENTION, 'AttentionOut = namedtuple("AttentionOut", ["out", "sim", "attn"])\n',
         "class AttentionOut(NamedTuple):\n    out: torch.Tensor\n    sim: torch.Tensor\n    attn: torch.Tensor\n"),
    "from collections import namedtuple\n", "from typing import NamedTuple\n")

# Near-miss: a same-file class that is no record, whose constructor computes with the
# probabilities (their entropy) on every path: no rewrite can drop them.
COMPUTED_NOT = edit(
    edit(RECORD_ATTENTION, 'AttentionOut = namedtuple("AttentionOut", ["out", "sim", "attn"])\n',
         textwrap.dedent("""\
             class AttentionOut:
                 def __init__(self, out, sim, attn):
                     self.out = out
                     self.entropy = -(attn * attn.clamp_min(1e-9).log()).sum(-1)
             """)),
    "from collections import namedtuple\n", "")

# Near-miss: the probabilities handed positionally to a same-file record type, but also
# multiplied again after the product (re-weighted values): computed with on every path.
REWEIGHTED_NOT = edit(
    RECORD_ATTENTION,
    "        return AttentionOut(self.to_out(out), sim, attn)\n",
    "        out = out * attn.amax(dim=-1).mean()\n        return AttentionOut(self.to_out(out), sim, attn)\n")


def test_probabilities_returned_in_a_namedtuple_are_a_site():
    assert finding_at(RECORD_ATTENTION, "ADP010", "# record-site") is not None


def test_probabilities_returned_in_a_typed_namedtuple_are_a_site():
    assert finding_at(TYPED_RECORD_ATTENTION, "ADP010", "# record-site") is not None


def test_a_class_computing_with_the_probabilities_is_no_record():
    assert finding_at(COMPUTED_NOT, "ADP010", "# record-site") is None


def test_probabilities_computed_with_before_the_record_are_no_site():
    assert finding_at(REWEIGHTED_NOT, "ADP010", "# record-site") is None
