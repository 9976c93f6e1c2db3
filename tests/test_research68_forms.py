"""Forms found while checking the blind batch research68 (speech enhancement and separation,
GAN, OCR and NeRF research code on PyPI: clearvoice's MossFormer-GAN / FRCRN / AV-MossFormer2,
stylegan2-pytorch, transganformer, donut-python, resemble-enhance, nerf-pytorch).  The fixtures
are ours.

- ADP010: TF-GridNet-style attention with the heads folded into the batch, the scores written
  ``torch.matmul(Q, K.transpose(1, 2)) / sqrt(e)`` and normalised by ``F.softmax(w, dim=2)``,
  then ``torch.matmul(w, V)``: the softmax's dim counts from the front of scores whose rank no
  step fixes (``matmul``, not ``bmm``), so it was not read as the keys' axis.  The key written
  transposed at ``(d - 1, d)`` is the key transposed only at rank ``d + 1``, where ``dim=d`` is
  the last axis (structure/ranks._key_moved); the fix checks that rank at run time.  A softmax
  over the queries' axis of 4-D scores (``K.transpose(2, 3)``, ``dim=2``) stays no site.
"""

from __future__ import annotations

import textwrap

import pytest

from corpus_forms import covered, finding_at, float64_pair, rules

from adopter.synth import fix_text

FOLDED_HEADS = textwrap.dedent("""\
    import torch
    import torch.nn.functional as F
    from torch import nn


    class FoldedHeads(nn.Module):
        def __init__(self, dim=12, heads=3):
            super().__init__()
            self.heads = heads
            self.q = nn.Linear(dim, dim)
            self.k = nn.Linear(dim, dim)
            self.v = nn.Linear(dim, dim)

        def forward(self, x):
            b, t, c = x.shape
            Q = torch.cat(self.q(x).chunk(self.heads, dim=-1), dim=0)
            K = torch.cat(self.k(x).chunk(self.heads, dim=-1), dim=0)
            V = torch.cat(self.v(x).chunk(self.heads, dim=-1), dim=0)
            emb_dim = Q.shape[-1]
            attn_mat = torch.matmul(Q, K.transpose(1, 2)) / (emb_dim**0.5)
            attn_mat = F.softmax(attn_mat, dim=2)
            V = torch.matmul(attn_mat, V)
            return torch.cat(V.chunk(self.heads, dim=0), dim=-1)
""")

SOFTMAX_LINE = "attn_mat = F.softmax(attn_mat, dim=2)"


def test_a_front_counted_softmax_over_keys_transposed_into_place_is_a_site():
    finding = finding_at(FOLDED_HEADS, "ADP010", SOFTMAX_LINE)
    assert finding is not None and finding.fixable


def test_its_fix_checks_the_rank_and_computes_the_same_attention():
    import torch

    fixed = fix_text(FOLDED_HEADS, "model.py", rules("ADP010")).text
    assert "scaled_dot_product_attention(" in fixed and ".dim() != 3" in fixed
    a, b = float64_pair(FOLDED_HEADS, fixed, "FoldedHeads")
    x = torch.randn(2, 5, 12, dtype=torch.float64, requires_grad=True)
    x2 = x.detach().clone().requires_grad_(True)
    out_a, out_b = a(x), b(x2)
    # float64, sums over 4 head channels and 5 keys: agreement to rounding
    torch.testing.assert_close(out_b, out_a, rtol=1e-12, atol=1e-12)
    out_a.square().sum().backward()
    out_b.square().sum().backward()
    torch.testing.assert_close(x2.grad, x.grad, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("transpose, dim", [("K.transpose(2, 3)", "dim=2"), ("K.transpose(1, 2)", "dim=1")])
def test_a_softmax_over_another_axis_is_no_site(transpose, dim):
    """``dim=2`` of scores whose keys were moved last at rank 4 (``transpose(2, 3)``) is the
    queries' axis; ``dim=1`` with the key transposed at (1, 2) normalises the queries of 3-D
    scores: neither is attention SDPA computes."""
    code = FOLDED_HEADS.replace("K.transpose(1, 2)", transpose).replace("dim=2)\n", f"{dim})\n")
    assert transpose in code and f"F.softmax(attn_mat, {dim})" in code
    assert not covered(code, f"F.softmax(attn_mat, {dim})", "ADP010")
