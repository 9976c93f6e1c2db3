"""Mends of review45's findings on session 40's merged work (research92, misses59).  The
fixtures are ours.

- ADP008 (research92's ``map`` unrolling): ``a, b = map(lambda g: g(a), (self.lin, self.norm))``
  evaluates both calls on the ``a`` passed in -- ``map`` finishes before either target is bound.
  The unrolled flow had ``b = self.norm(a)`` read the new ``a`` (the Linear's output), a false
  Linear -> BatchNorm fold.  The rebinding check now reads the whole substituted call (the
  lambda's closure too), not only the tuple element.  The look-alike that must still match:
  the norm mapped over a Linear's output bound before the ``map``.
"""

from __future__ import annotations

from corpus_forms import found, line_of

CLOSURE_READS_REBOUND = """\
import torch.nn as nn


class Block(nn.Module):
    def __init__(self, width=16):
        super().__init__()
        self.lin = nn.Linear(width, width)
        self.norm = nn.BatchNorm1d(width)

    def forward(self, a):
        a, b = map(lambda g: g(a), (self.lin, self.norm))
        return b
"""


def test_map_lambda_closure_reading_a_rebound_target_is_not_unrolled():
    assert found(CLOSURE_READS_REBOUND, "ADP008") == []


NORM_OF_EARLIER_LINEAR = """\
import torch.nn as nn


class Block(nn.Module):
    def __init__(self, width=16):
        super().__init__()
        self.lin = nn.Linear(width, width)
        self.norm = nn.BatchNorm1d(width)

    def forward(self, a):
        b = self.lin(a)
        a, b = map(lambda t: self.norm(t), (a, b))
        return a + b
"""


def test_map_of_a_norm_over_an_earlier_linear_output_still_folds():
    hits = found(NORM_OF_EARLIER_LINEAR, "ADP008")
    assert len(hits) == 1
    assert hits[0].line == line_of(NORM_OF_EARLIER_LINEAR, "b = self.lin(a)")
