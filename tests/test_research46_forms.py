"""Forms found while checking the blind batch research46 (research training code and
transformers outside NLP and vision: DiGress's graph transformer, a symbolic-music GPT and its
Lightning trainer, the Molecule Attention Transformer, a decision GPT-2, a weather GAN, an EEG
optimizer factory, a crop-distress cross-attention model, a spatial-transcriptomics graph
model).  The fixtures are ours.

- ADP009, missed: per-feature (DiGress-style) graph attention.  q, k and v are three Linears of
  the node features; the scores are the elementwise product ``q.unsqueeze(2) * k.unsqueeze(1)``
  (every node pair, one logit per feature), the softmax runs over the key axis and the weights
  multiply ``v.unsqueeze(1)`` elementwise before a sum over keys.  No matmul ever meets the
  projections, so the session-25 "outputs meet" reading saw none.  An elementwise product of one
  step's output with a value that the two other steps computed together (the weights applied to
  v) is now a meeting; two single steps multiplied (``silu(gate(x)) * up(x)``) still are not.
- ADP009, false positive: DiGress's FiLM of the global features: five Linears of ``y`` modulate
  the edge, node and global streams, each stream goes through its own output Linear, and the
  layer returns the three updated streams together.  The "projection helper returns q, k, v to
  its caller" reading took that tuple as a hand-off.  Outputs that another Linear projected
  again are a layer's results, not projections handed on: they count for no step.
"""

from __future__ import annotations

import textwrap

from corpus_forms import covered, float64_pair, rules

from adopter.synth import fix_text

PAIR_ATTENTION = textwrap.dedent("""\
    import math

    import torch
    from torch import nn


    class PairAttention(nn.Module):
        def __init__(self, dim, heads):
            super().__init__()
            self.heads = heads
            self.q_proj = nn.Linear(dim, dim)
            self.k_proj = nn.Linear(dim, dim)
            self.v_proj = nn.Linear(dim, dim)
            self.out = nn.Linear(dim, dim)

        def forward(self, x, mask):
            b, n, d = x.shape
            q = (self.q_proj(x) * mask).view(b, n, self.heads, -1)
            k = (self.k_proj(x) * mask).view(b, n, self.heads, -1)
            v = (self.v_proj(x) * mask).view(b, n, self.heads, -1)
            scores = (q.unsqueeze(2) * k.unsqueeze(1)) / math.sqrt(d)
            w = torch.softmax(scores, dim=2)
            y = (w * v.unsqueeze(1)).sum(dim=2)
            return self.out(y.flatten(2))
""")

PAIR_ATTENTION_HELPER = textwrap.dedent("""\
    import torch
    from torch import nn


    def masked_softmax(x, mask, **kwargs):
        if mask.sum() == 0:
            return torch.softmax(x, **kwargs)
        x = x.masked_fill(mask == 0, float("-inf"))
        return torch.softmax(x, **kwargs)


    class PairAttention(nn.Module):
        def __init__(self, dim):
            super().__init__()
            self.to_q = nn.Linear(dim, dim)
            self.to_k = nn.Linear(dim, dim)
            self.to_v = nn.Linear(dim, dim)
            self.mul = nn.Linear(dim, dim)

        def forward(self, x, e, mask):
            q = self.to_q(x)
            k = self.to_k(x)
            v = self.to_v(x)
            logits = q[:, :, None] * k[:, None] * (self.mul(e) + 1)
            attn = masked_softmax(logits, mask, dim=2)
            return (attn * v[:, None]).sum(2)
""")

# near-misses: three Linears of one input whose outputs never meet in an attention
GATED_UNIT_WITH_SKIP = textwrap.dedent("""\
    import torch.nn.functional as F
    from torch import nn


    class GatedMLP(nn.Module):
        def __init__(self, dim, hidden):
            super().__init__()
            self.gate = nn.Linear(dim, hidden)
            self.up = nn.Linear(dim, hidden)
            self.skip = nn.Linear(dim, dim)
            self.down = nn.Linear(hidden, dim)

        def forward(self, x):
            g = self.gate(x)
            u = self.up(x)
            s = self.skip(x)
            return self.down(F.silu(g) * u) + s
""")

FILM_STREAMS = textwrap.dedent("""\
    from torch import nn


    class GlobalFilm(nn.Module):
        def __init__(self, dx, de, dy):
            super().__init__()
            self.y_to_e = nn.Linear(dy, de)
            self.y_to_x = nn.Linear(dy, dx)
            self.y_self = nn.Linear(dy, dy)
            self.e_out = nn.Linear(de, de)
            self.x_out = nn.Linear(dx, dx)
            self.y_out = nn.Sequential(nn.Linear(dy, dy), nn.ReLU(), nn.Linear(dy, dy))

        def forward(self, x, e, y, mask):
            e_mod = self.y_to_e(y).unsqueeze(1).unsqueeze(1) + e
            x_mod = self.y_to_x(y).unsqueeze(1) * x
            y_new = self.y_self(y) + x.mean(1)
            new_e = self.e_out(e_mod) * mask
            new_x = self.x_out(x_mod)
            new_y = self.y_out(y_new)
            return new_x, new_e, new_y
""")

# still a hand-off: a projection helper that returns its projections (one of them projected
# again) to the caller
PROJECTION_HELPER = textwrap.dedent("""\
    import torch
    from torch import nn


    class Attention(nn.Module):
        def __init__(self, dim, heads):
            super().__init__()
            self.heads = heads
            self.q = nn.Linear(dim, dim)
            self.k = nn.Linear(dim, dim)
            self.v = nn.Linear(dim, dim)
            self.v2 = nn.Linear(dim, dim)

        def project(self, x):
            b, n, _ = x.shape
            q = self.q(x).view(b, n, self.heads, -1)
            k = self.k(x).view(b, n, self.heads, -1)
            v = self.v2(self.v(x))
            return q, k, v
""")


def test_per_feature_pair_attention_is_found():
    assert covered(PAIR_ATTENTION, "q = (self.q_proj(x)", "ADP009")


def test_per_feature_pair_attention_through_a_softmax_helper_is_found():
    assert covered(PAIR_ATTENTION_HELPER, "q = self.to_q(x)", "ADP009")


def test_per_feature_pair_attention_fix_fuses_the_three():
    import torch

    result = fix_text(PAIR_ATTENTION, "model.py", rules("ADP009"))
    assert result.applied
    assert "fused_qkv(x, self.q_proj, self.k_proj, self.v_proj)" in result.text
    a, b = float64_pair(PAIR_ATTENTION, result.text, "PairAttention", dim=8, heads=2)
    torch.manual_seed(1)
    x = torch.randn(2, 5, 8, dtype=torch.float64)
    mask = (torch.rand(2, 5, 1) > 0.2).double()
    assert torch.allclose(a(x, mask), b(x, mask))


def test_two_gated_projections_and_a_skip_do_not_meet():
    assert not covered(GATED_UNIT_WITH_SKIP, "g = self.gate(x)", "ADP009")


def test_film_streams_projected_again_and_returned_are_not_found():
    assert not covered(FILM_STREAMS, "e_mod = self.y_to_e(y)", "ADP009")


def test_projection_helper_returning_its_projections_is_still_found():
    assert covered(PROJECTION_HELPER, "q = self.q(x)", "ADP009")


# near-miss: three Linears of one input, one scaled by a sum of the two others (OWL-ViT's class
# head: ``(logits + shift) * scale``): no query-key product
SHIFT_AND_SCALE = textwrap.dedent("""\
    import torch
    from torch import nn


    class ClassHead(nn.Module):
        def __init__(self, dim, qdim):
            super().__init__()
            self.dense = nn.Linear(dim, qdim)
            self.shift = nn.Linear(dim, 1)
            self.scale = nn.Linear(dim, 1)
            self.elu = nn.ELU()

        def forward(self, x, queries):
            c = self.dense(x)
            c = c / c.norm(dim=-1, keepdim=True)
            logits = torch.einsum("...pd,...qd->...pq", c, queries)
            shift = self.shift(x)
            scale = self.elu(self.scale(x)) + 1
            logits = (logits + shift) * scale
            return logits, c
""")


def test_logits_shifted_and_scaled_by_two_projections_are_not_found():
    assert not covered(SHIFT_AND_SCALE, "c = self.dense(x)", "ADP009")
