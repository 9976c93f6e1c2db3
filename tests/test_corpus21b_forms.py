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
