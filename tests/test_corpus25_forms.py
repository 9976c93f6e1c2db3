"""Forms found missing while checking the blind batch corpus25 (research reimplementations of
six packages new to the corpus: a diffusion U-Net, ETSformer, a GPT from scratch, a credibility
transformer for tabular data, PonderNet, multistream transformers).  The fixtures are ours.

- An LM head's logits with the class axis moved by an einops pattern that also merges the
  other axes: a pondering model stacks the hidden states of every step, takes the vocabulary
  logits of all of them and scores them at once, ``rearrange(logits, "b l n d -> b d (l n)")``
  then ``F.cross_entropy(logits, labels)``.  ``cross_entropy``'s class axis is 1 and every
  other axis is a position, so any pattern that keeps every axis (moves and merges only) and
  puts the head's last axis, alone, at position 1 scores each position's logits over the
  vocabulary: a fused linear cross-entropy computes the same loss.  Near-misses: a pattern
  that puts another axis at position 1, one that merges the vocabulary axis with another, one
  that drops or reduces an axis (not a rearrangement), and a head that is no vocabulary head.
"""

from __future__ import annotations

from corpus_forms import finding_at, float64_pair, found, rules

from adopter.structure import canon
from adopter.synth import fix_text

# ---------------------------------------------------------------- class axis moved by einops

PONDER = """\
import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn


class Looped(nn.Module):
    def __init__(self, vocab=50, dim=16, steps=3):
        super().__init__()
        self.steps = steps
        self.embed = nn.Embedding(vocab, dim)
        self.step = nn.Linear(dim, dim)
        self.head = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, vocab))

    def forward(self, ids, labels):
        x = self.embed(ids)
        states = []
        for _ in range(self.steps):
            x = torch.tanh(self.step(x))
            states.append(x)
        states = torch.stack(states, dim=1)
        logits = self.head(states)  # site
        logits = rearrange(logits, PATTERN)
        labels = labels.unsqueeze(1).expand(-1, self.steps, -1).reshape(labels.shape[0], -1)
        return F.cross_entropy(logits, labels, ignore_index=0)
"""


def _ponder(pattern: str) -> str:
    return PONDER.replace("PATTERN", repr(pattern))


def test_class_axis_moved_and_positions_merged_is_found():
    assert finding_at(_ponder("b l n d -> b d (l n)"), "ADP015", "# site") is not None


def test_class_axis_moved_positions_merged_other_order_is_found():
    assert finding_at(_ponder("b l n d -> b d (n l)"), "ADP015", "# site") is not None


def test_rearranged_loss_equals_per_row_loss():
    """The reading's premise, checked on numbers: the loss of the rearranged logits is the
    cross-entropy of every position's logits over the vocabulary (the rows of the flattened
    logits against the flattened labels), which is what the fused kernel computes."""
    import torch
    import torch.nn.functional as F
    from einops import rearrange

    torch.manual_seed(0)
    logits = torch.randn(2, 3, 5, 11, dtype=torch.float64)
    labels = torch.randint(0, 11, (2, 3 * 5))
    moved = F.cross_entropy(rearrange(logits, "b l n d -> b d (l n)"), labels, ignore_index=0)
    rows = F.cross_entropy(rearrange(logits, "b l n d -> (b l n) d"),
                           rearrange(labels, "b (l n) -> (b l n)", l=3), ignore_index=0)
    # float64, 11-way log-softmax over 30 positions: equal to rounding
    torch.testing.assert_close(moved, rows, rtol=0, atol=1e-12)


def test_another_axis_at_position_one_is_no_site():
    # the steps axis becomes the class axis: not a loss over the vocabulary
    assert not found(_ponder("b l n d -> b l (n d)"), "ADP015")


def test_vocabulary_axis_merged_is_no_site():
    assert not found(_ponder("b l n d -> b (d n) l"), "ADP015")


def test_non_vocabulary_head_is_no_site():
    code = _ponder("b l n d -> b d (l n)").replace("nn.Linear(dim, vocab))", "nn.Linear(dim, 7))")
    assert not found(code, "ADP015")


def test_pattern_reader():
    assert canon.rearrange_class_axis_second("b l n d -> b d (l n)")
    assert canon.rearrange_class_axis_second("b n d -> (b n) d")
    assert canon.rearrange_class_axis_second("b l n d -> b d n l")
    assert not canon.rearrange_class_axis_second("b l n d -> b l (n d)")   # d not alone
    assert not canon.rearrange_class_axis_second("b l n d -> b (d n) l")   # d grouped
    assert not canon.rearrange_class_axis_second("b l n d -> b d n")       # an axis dropped
    assert not canon.rearrange_class_axis_second("b n d -> b d n c")       # an axis made up
    assert not canon.rearrange_class_axis_second("b (n d) -> b d n")       # a split input
    assert not canon.rearrange_class_axis_second("b ... d -> b d ...")     # an ellipsis
    assert not canon.rearrange_class_axis_second("b n d -> b d d")         # a repeated name
    assert not canon.rearrange_class_axis_second("b n d")                  # no arrow


# ---------------------------------------------------------------- a fill named twice, the same way

# Two masked fills under their own ifs, each after its own ``fill = neg_big(scores)`` (a
# same-file function returning ``-torch.finfo(t.dtype).max``): the name is assigned twice, by
# the same expression, so whichever path ran, the fill is that large negative number.  The
# sdpa fixer read a fill's name only when it is assigned once.
TWICE = """\
import torch
from torch import einsum, nn


def neg_big(t):
    return -torch.finfo(t.dtype).max


class GroupedAttention(nn.Module):
    def __init__(self, dim=16, heads=2, dim_head=8, causal=False):
        super().__init__()
        self.heads, self.causal, self.scale = heads, causal, dim_head ** -0.5
        self.to_q = nn.Linear(dim, heads * dim_head, bias=False)
        self.to_kv = nn.Linear(dim, 2 * heads * dim_head, bias=False)
        self.to_out = nn.Linear(heads * dim_head, dim)

    def forward(self, x, keep=None):
        b, n, _ = x.shape
        h = self.heads
        q, k, v = (self.to_q(x), *self.to_kv(x).chunk(2, dim=-1))
        q, k, v = (t.reshape(b, n, h, -1).transpose(1, 2).reshape(b * h, n, -1) for t in (q, k, v))
        q = q * self.scale
        scores = einsum("b i d, b j d -> b i j", q, k)
        if keep is not None:
            keep = keep.repeat_interleave(h, dim=0)
            pair = keep[:, :, None] & keep[:, None, :]
            fill = neg_big(scores)
            scores = scores.masked_fill(~pair, fill)
        if self.causal:
            later = torch.ones((n, n), device=x.device).triu(1).bool()
            fill = SECOND
            scores = scores.masked_fill(later, fill)
        attn = scores.softmax(dim=-1)  # site
        out = einsum("b i j, b j d -> b i d", attn, v)
        return self.to_out(out.reshape(b, h, n, -1).transpose(1, 2).reshape(b, n, -1))
"""


def test_fill_assigned_twice_the_same_way_is_fixed_and_matches():
    import torch

    code = TWICE.replace("SECOND", "neg_big(scores)")
    assert finding_at(code, "ADP010", "# site") is not None
    fixed = fix_text(code, "model.py", rules("ADP010")).text
    assert "scaled_dot_product_attention(" in fixed
    a, b = float64_pair(code, fixed, "GroupedAttention")
    a.eval(), b.eval()
    x = torch.randn(3, 5, 16, dtype=torch.float64)
    keep = torch.ones(3, 5, dtype=torch.bool)
    keep[0, 3:] = False
    keep[2, 1:] = False
    # float64, 8-wide dot products and 5-key softmax sums: agreement to rounding; rows whose
    # queries are padding are compared too (every key filled but their own)
    with torch.no_grad():
        torch.testing.assert_close(b(x, keep), a(x, keep), rtol=0, atol=1e-12)
        torch.testing.assert_close(b(x), a(x), rtol=0, atol=1e-12)


def test_fill_assigned_two_different_ways_is_declined():
    # the second assignment is another number: the fill at the use is not one known value
    code = TWICE.replace("SECOND", "-0.5")
    fixed = fix_text(code, "model.py", rules("ADP010")).text
    assert "scaled_dot_product_attention(" not in fixed
