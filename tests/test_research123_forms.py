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


# review63 (session 46): the same three containers run on x and then on y are two places (one
# per set of calls), as plain Linears are; and a chain through two containers (a Linear ending
# one, its GELU starting the next) keeps GELU's constructor anchor -- the re-placement is for
# projections side by side on one input only.
TWICE = WRAPPED.replace("def forward(self, x):", "def forward(self, x, y):").replace(
    "        return out + x\n",
    "        q2 = self.q_proj(y)  # second first\n"
    "        k2 = self.k_proj(y)\n"
    "        v2 = self.v_proj(y)  # second last\n"
    "        out2, _ = self.mha(q2, k2, v2)\n"
    "        return out + x + out2\n")
assert "q2 = self.q_proj(y)" in TWICE

CHAIN = textwrap.dedent("""\
    from torch import nn


    class FFN(nn.Module):
        def __init__(self, d):
            super().__init__()
            self.fc = nn.Sequential(nn.Dropout(0.1), nn.Linear(d, 4 * d))
            self.act = nn.Sequential(nn.GELU(), nn.Dropout(0.1))  # activation
            self.out = nn.Linear(4 * d, d)

        def forward(self, x):
            h = self.fc(x)
            h = self.act(h)  # act call
            return self.out(h)
""")


def test_containers_run_twice_are_two_places():
    spans = sorted((f.line, f.end_line) for f in found(TWICE, "ADP009"))
    assert spans == [(line_of(TWICE, "# first projection"), line_of(TWICE, "# last projection")),
                     (line_of(TWICE, "# second first"), line_of(TWICE, "# second last"))]


def test_chain_through_two_containers_keeps_constructor_anchor():
    hits = found(CHAIN, "ADP006")
    assert len(hits) == 1
    assert hits[0].line <= line_of(CHAIN, "# activation") <= hits[0].end_line
    assert hits[0].end_line < line_of(CHAIN, "# act call")


def test_chain_is_linear_then_gelu():
    # the chain's premise: the containers compute GELU(Linear(x)) (dropout off in eval)
    torch.manual_seed(0)
    ns = {}
    exec(compile(CHAIN, "chain.py", "exec"), ns)
    ffn = ns["FFN"](4).eval().double()
    x = torch.randn(3, 4, dtype=torch.float64)
    lin = ffn.fc[1]
    torch.testing.assert_close(ffn.act(ffn.fc(x)), torch.nn.functional.gelu(lin(x)), rtol=0, atol=1e-12)
