"""Forms read while labelling blind batch research123 (detection, OCR, depth, pose and
super-resolution networks of 7 packages new to the corpus).  First sight reported one site at
the wrong place; the fixtures below are ours.

- Three projections of one input, each an ``nn.Sequential(nn.Linear(...), nn.ReLU())`` called
  in the forward and handed together to an attention: ADP009 matches the containers' first
  members, which sit in three different containers, so the place is where the containers are
  called (the first projection call, the corpus's anchor), not the three constructor lines in
  ``__init__``.  Members of one container keep the constructor anchor (a conv-BN pair inside one
  ``nn.Sequential``).  Near-miss: key and value of another tensor stay silent.
"""

from __future__ import annotations

import textwrap

import torch
from corpus_forms import found, line_of
from torch import nn

WRAPPED = textwrap.dedent("""\
    from torch import nn


    class Attend(nn.Module):
        def __init__(self, dim, heads=2):
            super().__init__()
            self.norm = nn.LayerNorm(dim)
            self.mha = nn.MultiheadAttention(dim, heads)
            self.q_proj = nn.Sequential(nn.Linear(dim, dim), nn.ReLU())
            self.k_proj = nn.Sequential(nn.Linear(dim, dim), nn.ReLU())
            self.v_proj = nn.Sequential(nn.Linear(dim, dim), nn.ReLU())

        def forward(self, x):
            h = self.norm(x)
            q = self.q_proj(h)  # first projection
            k = self.k_proj(h)
            v = self.v_proj(h)  # last projection
            out, _ = self.mha(q, k, v)
            return out + x
""")

CROSS = WRAPPED.replace("k = self.k_proj(h)", "k = self.k_proj(memory)").replace(
    "v = self.v_proj(h)", "v = self.v_proj(memory)").replace("def forward(self, x):", "def forward(self, x, memory):")

ONE_CONTAINER = textwrap.dedent("""\
    from torch import nn


    class Stem(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.body = nn.Sequential(
                nn.Conv2d(3, c, 3, padding=1, bias=False),
                nn.BatchNorm2d(c),  # pair
                nn.ReLU(),
            )

        def forward(self, x):
            return self.body(x)  # call
""")


def test_wrapped_projections_are_reported_at_their_calls():
    (got,) = found(WRAPPED, "ADP009")
    assert got.line == line_of(WRAPPED, "# first projection")
    assert got.end_line == line_of(WRAPPED, "# last projection")
    assert not got.fixable  # the Linears run inside the containers' forwards


def test_wrapped_projections_of_two_inputs_stay_silent():
    assert found(CROSS, "ADP009") == []


def test_a_pair_inside_one_container_keeps_its_constructor_anchor():
    (got,) = found(ONE_CONTAINER, "ADP007")
    assert got.line <= line_of(ONE_CONTAINER, "# pair") <= got.end_line
    assert got.end_line < line_of(ONE_CONTAINER, "# call")


def test_one_gemm_computes_the_three_wrapped_projections():
    # what the report claims: the three Linears of one input are one matmul over the
    # concatenated weights, and the ReLU after each is element-wise on its own slice
    torch.manual_seed(0)
    dim = 16
    projs = [nn.Sequential(nn.Linear(dim, dim), nn.ReLU()) for _ in range(3)]
    x = torch.randn(5, 3, dim)
    weight = torch.cat([p[0].weight for p in projs])
    bias = torch.cat([p[0].bias for p in projs])
    fused = torch.relu(torch.nn.functional.linear(x, weight, bias)).split(dim, dim=-1)
    for p, got in zip(projs, fused):
        torch.testing.assert_close(got, p(x), rtol=1e-5, atol=1e-6)
