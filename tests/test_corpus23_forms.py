"""Forms found missing while checking the blind batch corpus23 (research reimplementations of
twelve packages new to the corpus: a GPT-2 from scratch, a BERT with explicit ``.forward``
calls, MaxViT / NaViT copies, a stylizing ViT's cross attention, ProteinBERT, EGNN, a Gemma 4
copy, Titans).  The fixtures are ours.

- One query per head, written without a query axis: ProteinBERT's global attention scores a
  global vector against the local tokens, ``einsum("b h d, b l h d -> b h l", q, k)``, takes
  the softmax over the tokens and sums the values with ``einsum("b h l, b l h d -> b h d",
  p, v)``.  Each einsum is a matrix-vector product: one operand has no row (query) axis.
  That is attention over a single query, which SDPA computes with a size-1 query axis:
  ``sdpa(q.unsqueeze(-2), k, v).squeeze(-2)``.  The einsum reader now reads such a product
  as the matrix product with that size-1 axis (the vector operand unsqueezed at -2, the
  written output the product squeezed at -2).  The sdpa fixer writes the squeeze after the
  fused call and declines the form when a mask or bias is added to the scores (a mask
  written for the squeezed scores would broadcast against the product differently).
  Near-misses: the softmax over the heads axis, a vector of another layout (the summed axis
  not last), a matrix-vector product that is no attention (a softmax-weighted pooling whose
  scores are not a product of two tensors).
"""

from __future__ import annotations

from corpus_forms import finding_at, float64_pair, rules

from adopter.structure import canon
from adopter.synth import fix_text

# ---------------------------------------------------------------- one query, no query axis

GLOBAL = """\
import math

import torch
from einops import rearrange
from torch import einsum, nn


class PooledAttention(nn.Module):
    def __init__(self, d_tok=12, d_glob=16, heads=2, d_key=6):
        super().__init__()
        self.heads = heads
        self.d_key = d_key
        self.to_q = nn.Linear(d_glob, d_key * heads, bias=False)
        self.to_k = nn.Linear(d_tok, d_key * heads, bias=False)
        self.to_v = nn.Linear(d_tok, (d_glob // heads) * heads, bias=False)

    def forward(self, tokens, glob):
        q = rearrange(self.to_q(glob), "b (h d) -> b h d", h=self.heads)
        k = rearrange(self.to_k(tokens), "b l (h d) -> b l h d", h=self.heads)
        v = rearrange(self.to_v(tokens), "b l (h d) -> b l h d", h=self.heads)
        w = einsum("b h d, b l h d -> b h l", q, k) / math.sqrt(self.d_key)
        w = w.softmax(dim=DIM)  # site
        out = einsum("b h l, b l h d -> b h d", w, v)
        return rearrange(out, "b h d -> b (h d)")
"""


def test_single_query_einsum_attention_is_found():
    assert finding_at(GLOBAL.replace("DIM", "-1"), "ADP010", "# site") is not None


def test_single_query_einsum_fix_matches():
    import torch

    code = GLOBAL.replace("DIM", "-1")
    fixed = fix_text(code, "model.py", rules("ADP010")).text
    assert "scaled_dot_product_attention(" in fixed and ".squeeze(-2)" in fixed
    a, b = float64_pair(code, fixed, "PooledAttention")
    a.eval(), b.eval()
    tokens, glob = torch.randn(3, 7, 12, dtype=torch.float64), torch.randn(3, 16, dtype=torch.float64)
    # float64, 6-wide dot products and 7-key softmax sums: agreement to rounding
    torch.testing.assert_close(b(tokens, glob), a(tokens, glob), rtol=0, atol=1e-12)


def test_single_query_softmax_over_heads_is_no_attention():
    assert finding_at(GLOBAL.replace("DIM", "1"), "ADP010", "# site") is None


def test_single_query_with_a_mask_is_found_but_not_fixed():
    code = GLOBAL.replace("DIM", "-1").replace(
        "        w = w.softmax", "        w = w.masked_fill(~mask, float('-inf'))\n        w = w.softmax"
    ).replace("def forward(self, tokens, glob):", "def forward(self, tokens, glob, mask):")
    assert finding_at(code, "ADP010", "# site") is not None
    fixed = fix_text(code, "model.py", rules("ADP010")).text
    assert "scaled_dot_product_attention(" not in fixed


def test_matrix_vector_einsum_reading():
    # scores of one query: the vector gets a row axis before its summed (last) axis
    assert canon.einsum_vector("b h d, b l h d -> b h l") == ("bhZd,blhd->bhZl", 0)
    # probabilities of one query times the values
    assert canon.einsum_vector("bhl,blhd->bhd") == ("bhZl,blhd->bhZd", 0)
    # a matrix product already, or a vector whose summed axis is not its last: not read
    assert canon.einsum_vector("bhid,bhjd->bhij") is None
    assert canon.einsum_vector("b d h, b l h d -> b h l") is None
    # the free axis not last in the output
    assert canon.einsum_vector("bhd,blhd->blh") is None


POOL = """\
import torch
from torch import einsum, nn


class WeightedPool(nn.Module):
    def __init__(self, dim=8):
        super().__init__()
        self.score = nn.Parameter(torch.randn(dim))

    def forward(self, x):
        w = einsum("b n d, d -> b n", x, self.score)
        w = w.softmax(dim=-1)  # site
        return einsum("b n, b n d -> b d", w, x)
"""


def test_pooling_by_one_learned_vector_is_no_attention():
    assert finding_at(POOL, "ADP010", "# site") is None


NEIGHBOURS = """\
import math

import torch
from torch import nn


class NeighbourAttention(nn.Module):
    def __init__(self, dim=8):
        super().__init__()
        self.qkv = nn.Linear(dim, 3 * dim)

    def forward(self, x, idx):
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        kn, vn = k[:, idx], v[:, idx]
        w = torch.einsum("bnd,bnwd->bnw", q, kn) / math.sqrt(q.shape[-1])
        w = w.softmax(dim=-1)  # site
        return torch.einsum("bnw,bnwd->bnd", w, vn)
"""

EDGES = """\
from einops import rearrange
from torch import einsum, nn


class EdgeAttention(nn.Module):
    def __init__(self, dim=8, heads=2):
        super().__init__()
        self.heads = heads
        self.to_q = nn.Linear(dim, dim)
        self.to_kv = nn.Linear(dim, 2 * dim)
        self.to_e = nn.Linear(dim, dim)

    def forward(self, nodes, edges):
        q = rearrange(self.to_q(nodes), "b n (h d) -> (b h) n d", h=self.heads)
        k, v = self.to_kv(nodes).chunk(2, dim=-1)
        k = rearrange(k, "b j (h d) -> (b h) 1 j d", h=self.heads)
        v = rearrange(v, "b j (h d) -> (b h) 1 j d", h=self.heads)
        e = rearrange(self.to_e(edges), "b i j (h d) -> (b h) i j d", h=self.heads)
        k = k + e
        v = v + e
        sim = einsum("b i d, b i j d -> b i j", q, k)
        attn = sim.softmax(dim=-1)  # site
        return einsum("b i j, b i j d -> b i d", attn, v)
"""


def test_keys_gathered_per_query_are_no_attention():
    # q and the keys both computed from x: each query scored against keys of its own
    assert finding_at(NEIGHBOURS, "ADP010", "# site") is None


def test_keys_built_per_query_from_edges_are_no_attention():
    assert finding_at(EDGES, "ADP010", "# site") is None
