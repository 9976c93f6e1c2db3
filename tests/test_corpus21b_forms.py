"""Forms found missing while checking the blind batch corpus21b (research reimplementations of
eleven packages new to the corpus: a Whisper copy, hourglass / long-short / block-recurrent
transformers, nGPT, Uni-Mol's molecule transformers, latent-diffusion attention).  The fixtures
are ours.

- Scores made contiguous between the product and the softmax: Uni-Mol's same-file softmax
  helper starts with ``scores = scores.contiguous()`` and then adds the mask and the pair bias
  in place.  ``.contiguous()`` returns the same values (the tensor itself when it is contiguous
  already), but the flow held it as a step, which no ADP010 pattern has, so the attention was
  not found.  The flow now reads ``y = x.contiguous()`` as ``y = x`` (fewer nodes, no pattern
  step added), and the sdpa fixer drops such a statement on the fused path (the original path
  keeps it).  Near-misses: a softmax over the query axis, an operation that changes the
  values between the copy and the softmax.
"""

from __future__ import annotations

from corpus_forms import finding_at, rules

from adopter.synth import fix_text

# ---------------------------------------------------------------- scores made contiguous

HELPER = """\
import torch
import torch.nn.functional as F
from torch import nn


def probs_with_dropout(scores, p, training=True, mask=None, bias=None, inplace=True):
    scores = scores.contiguous()
    if not inplace:
        scores = scores.clone()
    if mask is not None:
        scores += mask
    if bias is not None:
        scores += bias
    return F.dropout(F.softmax(scores, dim=-1), p=p, training=training)


class PairAttention(nn.Module):
    def __init__(self, dim=16, heads=2, p=0.1):
        super().__init__()
        self.heads = heads
        self.p = p
        self.in_proj = nn.Linear(dim, 3 * dim)
        self.scaling = (dim // heads) ** -0.5

    def forward(self, x, pair_bias=None):
        b, n, d = x.shape
        q, k, v = self.in_proj(x).chunk(3, dim=-1)
        q = q.view(b, n, self.heads, -1).transpose(1, 2) * self.scaling
        k = k.view(b, n, self.heads, -1).transpose(1, 2)
        v = v.view(b, n, self.heads, -1).transpose(1, 2)
        w = torch.matmul(q, k.transpose(-1, -2))
        a = probs_with_dropout(w, self.p, self.training, bias=pair_bias)  # site
        o = torch.matmul(a, v)
        return o.transpose(1, 2).reshape(b, n, d)
"""

INLINE = """\
import torch
import torch.nn.functional as F
from torch import nn


class Attention(nn.Module):
    def __init__(self, dim=16, heads=2, p=0.1):
        super().__init__()
        self.heads = heads
        self.p = p
        self.in_proj = nn.Linear(dim, 3 * dim)
        self.scaling = (dim // heads) ** -0.5

    def forward(self, x):
        b, n, d = x.shape
        q, k, v = self.in_proj(x).chunk(3, dim=-1)
        q = q.view(b, n, self.heads, -1).transpose(1, 2) * self.scaling
        k = k.view(b, n, self.heads, -1).transpose(1, 2)
        v = v.view(b, n, self.heads, -1).transpose(1, 2)
        w = torch.matmul(q, k.transpose(-1, -2))
        w = w.contiguous()
        STEP
        a = F.dropout(F.softmax(w, dim=DIM), p=self.p, training=self.training)  # site
        o = torch.matmul(a, v)
        return o.transpose(1, 2).reshape(b, n, d)
"""


def test_contiguous_scores_in_a_softmax_helper_are_attention():
    assert finding_at(HELPER, "ADP010", "# site") is not None


def test_contiguous_scores_inline_are_attention():
    assert finding_at(INLINE.replace("        STEP\n", "").replace("DIM", "-1"), "ADP010", "# site") is not None


def test_contiguous_scores_fix_matches():
    import torch

    code = INLINE.replace("        STEP\n", "").replace("DIM", "-1")
    fixed = fix_text(code, "model.py", rules("ADP010")).text
    assert "scaled_dot_product_attention(" in fixed and "contiguous" not in fixed
    original, patched = {}, {}
    exec(compile(code, "orig.py", "exec"), original)  # noqa: S102 (our own fixture)
    exec(compile(fixed, "fixed.py", "exec"), patched)  # noqa: S102
    torch.manual_seed(0)
    a = original["Attention"]().double().eval()
    b = patched["Attention"]().double().eval()
    b.load_state_dict(a.state_dict(), strict=True)
    x = torch.randn(2, 5, 16, dtype=torch.float64)
    # float64, 8-wide head dot products and 5-key softmax sums: agreement to rounding
    torch.testing.assert_close(b(x), a(x), rtol=0, atol=1e-12)


def test_contiguous_scores_softmax_over_queries_is_no_attention():
    assert finding_at(INLINE.replace("        STEP\n", "").replace("DIM", "-2"), "ADP010", "# site") is None


def test_contiguous_scores_then_a_value_changing_step_is_no_attention():
    code = INLINE.replace("STEP", "w = w.cumsum(-1)").replace("DIM", "-1")
    assert finding_at(code, "ADP010", "# site") is None


# ---------------------------------------------------------------- a gate scaled twice (nGPT)
#
# nGPT's feed-forward projects x twice (local modules: a Linear whose output is scaled), scales
# the up projection by a learned vector and the gate by a learned vector and by sqrt(dim), then
# computes silu(gate) * up.  The one scaled alternative (each operand scaled once, the gate's
# steps first) did not fit the order the code is written in (both projections, both scales,
# then the gate).  A new alternative reads that order with the gate's second product; the fix
# passes the scaled operands, products in their original order.

SCALED = """\
import torch
import torch.nn.functional as F
from torch import nn


class ScaledLinear(nn.Module):
    def __init__(self, dim, dim_out):
        super().__init__()
        self.linear = nn.Linear(dim, dim_out, bias=False)
        self.scale = 0.5

    def forward(self, x):
        return self.linear(x) * self.scale


class FeedForward(nn.Module):
    def __init__(self, dim=16, inner=32):
        super().__init__()
        self.to_hidden = ScaledLinear(dim, inner)
        self.to_gate = ScaledLinear(dim, inner)
        self.hidden_scale = nn.Parameter(torch.ones(inner))
        self.gate_scale = nn.Parameter(torch.ones(inner))
        self.to_out = nn.Linear(inner, dim)
        self.dim = dim

    def forward(self, x):
        hidden = self.to_hidden(x)
        gate = self.to_gate(x)
        hidden = hidden * self.hidden_scale
        gate = gate * self.gate_scale * (self.dim ** 0.5)
        hidden = ACT(gate) * hidden  # site
        return self.to_out(hidden)
"""


def test_gate_scaled_twice_is_swiglu():
    assert finding_at(SCALED.replace("ACT", "F.silu"), "ADP013", "# site") is not None


def test_gate_scaled_twice_in_one_tuple_assignment_is_swiglu():
    code = SCALED.replace("ACT", "F.silu").replace(
        "        hidden = self.to_hidden(x)\n        gate = self.to_gate(x)\n",
        "        hidden, gate = self.to_hidden(x), self.to_gate(x)\n")
    assert finding_at(code, "ADP013", "# site") is not None


def test_gate_scaled_twice_fix_matches():
    import torch

    code = SCALED.replace("ACT", "F.silu")
    fixed = fix_text(code, "model.py", rules("ADP013")).text
    assert "liger_silu_mul(" in fixed
    original, patched = {}, {}
    exec(compile(code, "orig.py", "exec"), original)  # noqa: S102 (our own fixture)
    exec(compile(fixed, "fixed.py", "exec"), patched)  # noqa: S102
    torch.manual_seed(0)
    a = original["FeedForward"]().double()
    b = patched["FeedForward"]().double()
    with torch.no_grad():
        for p in a.parameters():
            p.normal_()
    b.load_state_dict(a.state_dict(), strict=True)
    x = torch.randn(2, 5, 16, dtype=torch.float64)
    # float64, the same products in the same order (CPU path of liger_silu_mul: F.silu(g) * u)
    torch.testing.assert_close(b(x), a(x), rtol=0, atol=1e-12)


def test_gate_scaled_twice_with_gelu_is_no_swiglu():
    assert finding_at(SCALED.replace("ACT", "F.gelu"), "ADP013", "# site") is None


def test_gate_scaled_then_shifted_is_no_swiglu():
    code = SCALED.replace("ACT", "F.silu").replace(
        "gate = gate * self.gate_scale * (self.dim ** 0.5)", "gate = gate * self.gate_scale * (self.dim ** 0.5) + 1.0")
    assert finding_at(code, "ADP013", "# site") is None


# ---------------------------------------------------------------- a finding starts at its statement
#
# Uni-Mol's movement head writes `q = (` and the projection on the next line.  The corpus labels
# a multi-line statement by its first line (GUIDE), while a finding started at the matched call,
# one line below.  A finding now starts at the first line of the statement holding its first
# step when that statement opens above it; a layer built in __init__ (a Sequential member, its
# finding at the constructor) and one-line statements are unchanged.

OPENED = """\
import torch
from torch import nn


class Head(nn.Module):
    def __init__(self, dim=16, heads=2):
        super().__init__()
        self.heads = heads
        self.q_proj = nn.Linear(dim, dim, bias=False)
        self.k_proj = nn.Linear(dim, dim, bias=False)
        self.v_proj = nn.Linear(dim, dim, bias=False)
        self.scaling = (dim // heads) ** -0.5

    def forward(self, x):
        b, n, _ = x.shape
        q = (  # opens
            self.q_proj(x).view(b, n, self.heads, -1).transpose(1, 2)
            * self.scaling
        )
        k = self.k_proj(x).view(b, n, self.heads, -1).transpose(1, 2)
        v = self.v_proj(x).view(b, n, self.heads, -1).transpose(1, 2)
        return q, k, v
"""


def test_finding_starts_at_the_statement_that_opens_above_its_step():
    from corpus_forms import found, line_of

    (finding,) = found(OPENED, "ADP009")
    assert (finding.line, finding.column) == (line_of(OPENED, "# opens"), 9)


def test_finding_on_a_one_line_statement_starts_at_its_step():
    from corpus_forms import found, line_of

    code = OPENED.replace(
        "        q = (  # opens\n            self.q_proj(x).view(b, n, self.heads, -1).transpose(1, 2)\n"
        "            * self.scaling\n        )\n",
        "        q = self.scaling * self.q_proj(x).view(b, n, self.heads, -1).transpose(1, 2)  # one\n")
    (finding,) = found(code, "ADP009")
    assert (finding.line, finding.column) == (line_of(code, "# one"), 28)


def test_sequential_member_finding_stays_at_its_constructor():
    from corpus_forms import found, line_of

    code = """\
from torch import nn


class MLP(nn.Module):
    def __init__(self, dim=16):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(dim, 4 * dim),
            nn.GELU(),  # act
            nn.Linear(4 * dim, dim),
        )

    def forward(self, x):
        return self.net(x)
"""
    (finding,) = found(code, "ADP006")
    assert finding.line <= line_of(code, "# act") <= finding.end_line
    assert finding.line > line_of(code, "self.net = nn.Sequential(")
