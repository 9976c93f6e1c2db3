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

from corpus_forms import finding_at, found

from adopter.structure import canon

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
