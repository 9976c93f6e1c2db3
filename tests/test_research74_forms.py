"""Forms found while checking the blind batch research74 (research model code on PyPI: MoE
layers, Perceiver, LongNet, memory-compressed attention, FNet, MLP-Mixer, soft-MoE, Griffin,
switch transformers).  The fixtures are ours.

- ADP009: the three projections of one input written inside the tuple that the builtin ``map``
  runs a norm over (``q, k, v = map(self.norm, (self.proj_q(x), self.proj_k(x),
  self.proj_v(x)))``, LongNet's qk-norm path), the names then handed together to an attention
  module.  ``map`` applies its function to each element alone, so each name holds one
  projection, as when the projections are named first (found before).  Near-misses: the
  three mapped through a sigmoid and returned as a model's gates inside a larger tuple; a tuple
  whose first element mixes two projections (no element-wise split: the module still gets
  them, found either way) is left as the matcher read it.
"""

from __future__ import annotations

import textwrap

from adopter.synth.core import fix_text

from corpus_forms import finding_at, found, rules

# --------------------------------------------------------------------------- ADP009

QK_NORM = textwrap.dedent("""\
    import torch
    from torch import nn


    class DilatedAttention(nn.Module):
        def __init__(self, dim):
            super().__init__()
            self.norm = nn.LayerNorm(dim)
            self.attention = Core()
            self.proj_q = nn.Linear(dim, dim)
            self.proj_k = nn.Linear(dim, dim)
            self.proj_v = nn.Linear(dim, dim)

        def forward(self, x):
            q, k, v = MAPPED
            return self.attention(q, k, v)


    class Core(nn.Module):
        def forward(self, q, k, v):
            w = torch.softmax(q @ k.transpose(-1, -2), dim=-1)
            return w @ v
    """)

TRIPLE = "(self.proj_q(x), self.proj_k(x), self.proj_v(x))"


def test_projections_mapped_through_a_layer_inside_the_tuple_are_found():
    code = QK_NORM.replace("MAPPED", f"map(self.norm, {TRIPLE})")
    assert finding_at(code, "ADP009", "q, k, v = map(") is not None


def test_projections_mapped_through_a_lambda_inside_the_tuple_are_found():
    code = QK_NORM.replace("MAPPED", f"map(lambda t: self.norm(t), {TRIPLE})")
    assert finding_at(code, "ADP009", "q, k, v = map(") is not None


def test_mapped_projections_fix_keeps_the_map_over_the_fused_outputs():
    code = QK_NORM.replace("MAPPED", f"map(self.norm, {TRIPLE})")
    fixed = fix_text(code, "model.py", rules("ADP009")).text
    assert "fused_qkv(x, self.proj_q, self.proj_k, self.proj_v)" in fixed
    assert "map(self.norm, (proj_q_out, proj_k_out, proj_v_out))" in fixed
    compile(fixed, "model.py", "exec")


GATES = textwrap.dedent("""\
    import torch
    from torch import nn


    class Heads(nn.Module):
        def __init__(self, dim):
            super().__init__()
            self.a = nn.Linear(dim, 1)
            self.b = nn.Linear(dim, 1)
            self.c = nn.Linear(dim, 1)
            self.d = nn.Linear(dim, 1)

        def forward(self, x):
            a, b, c = map(torch.sigmoid, (self.a(x), self.b(x), self.c(x)))
            return a, b, c, self.d(x)
    """)


def test_mapped_heads_returned_with_another_head_are_no_site():
    # four heads returned together: a model's outputs, no projections handed on
    assert found(GATES, "ADP009") == []


def test_mapped_tuple_mixing_two_projections_is_not_split():
    code = QK_NORM.replace(
        "MAPPED", "map(self.norm, (self.proj_q(x) + self.proj_k(x), self.proj_v(x), x))")
    # the first element mixes two projections, the last is no projection: the map's names are
    # not one projection each (nothing is claimed beyond what the matcher read before)
    assert finding_at(code, "ADP009", "q, k, v = map(") is None
