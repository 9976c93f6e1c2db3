"""Forms found while checking the blind batch research92 (image restoration and generation
research code: hyperspectral restoration transformers, Uformer, Restormer, VQ-VAE, style
transfer).  The fixtures are ours.

- ADP009: a mask-guided spectral attention lays out its three projections and a fourth tensor
  with one ``map`` of a lambda over a 4-tuple (``q, k, v, m = map(lambda t: rearrange(t,
  ...), (q_inp, k_inp, v_inp, m_inp))``).  Such a ``map`` was unrolled into one assignment per
  element only when the lambda called a same-file function; a lambda calling a library layout
  function (einops' ``rearrange``) left one opaque node whose four outputs each read all four
  inputs, and the q/k/v projections were not seen to meet.  The lambda's call is now unrolled
  per element whatever it calls, as a list comprehension over the same tuple already was.
Near-miss: the same layout of three projections of one input that never meet (concatenated
into a feed-forward) stays silent.
"""

from __future__ import annotations

from corpus_forms import found, line_of

MAPPED_FOUR = """\
import torch
import torch.nn as nn
import torch.nn.functional as F
from einops import rearrange


class SpectralAttention(nn.Module):
    def __init__(self, dim, heads=2):
        super().__init__()
        self.heads = heads
        self.to_q = nn.Linear(dim, dim, bias=False)
        self.to_k = nn.Linear(dim, dim, bias=False)
        self.to_v = nn.Linear(dim, dim, bias=False)
        self.rescale = nn.Parameter(torch.ones(heads, 1, 1))
        self.proj = nn.Linear(dim, dim)

    def forward(self, x, guide):
        q_inp = self.to_q(x)
        k_inp = self.to_k(x)
        v_inp = self.to_v(x)
        q, k, v, g = map(lambda t: rearrange(t, 'b n (h d) -> b h n d', h=self.heads),
                         (q_inp, k_inp, v_inp, guide))
        v = v * g
        q = F.normalize(q.transpose(-2, -1), dim=-1)
        k = F.normalize(k.transpose(-2, -1), dim=-1)
        attn = (k @ q.transpose(-2, -1)) * self.rescale
        attn = attn.softmax(dim=-1)
        out = attn @ v.transpose(-2, -1)
        return self.proj(rearrange(out, 'b h d n -> b n (h d)'))
"""


def test_projections_laid_out_by_one_map_over_four_meet():
    at = line_of(MAPPED_FOUR, "q_inp = self.to_q(x)")
    hits = [f for f in found(MAPPED_FOUR, "ADP009") if f.line <= at <= f.end_line]
    assert len(hits) == 1


NEVER_MEET = MAPPED_FOUR.replace(
    """        v = v * g
        q = F.normalize(q.transpose(-2, -1), dim=-1)
        k = F.normalize(k.transpose(-2, -1), dim=-1)
        attn = (k @ q.transpose(-2, -1)) * self.rescale
        attn = attn.softmax(dim=-1)
        out = attn @ v.transpose(-2, -1)
        return self.proj(rearrange(out, 'b h d n -> b n (h d)'))
""",
    """        out = torch.cat([q, k, v * g], dim=-1)
        return self.proj(rearrange(out, 'b h n d -> b n (h d)')[..., :q_inp.shape[-1]])
""")


def test_projections_mapped_but_never_meeting_stay_silent():
    assert NEVER_MEET != MAPPED_FOUR
    assert found(NEVER_MEET, "ADP009") == []
