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


# ADP010 (misses59's de-stationary step ``$sp = $s0 * $pre; $b0 = $sp + $bias0``): the factor
# must be one SDPA can fold into q or k -- a number or what the caller passes (tau) -- and the
# added term must not be a function of the scores (``s + s.sigmoid()`` is no additive mask).
SCALED_THEN_BIASED = """\
import math
import torch
from torch import nn


class Mixer(nn.Module):
    def __init__(self, width, length):
        super().__init__()
        self.width = width
        self.wq = nn.Linear(width, width)
        self.wk = nn.Linear(width, width)
        self.wv = nn.Linear(width, width)
        self.table = nn.Parameter(torch.randn(length, length))

    def forward(self, h, coords, factor, shift):
        a, b, c = self.wq(h), self.wk(h), self.wv(h)
        logits = torch.matmul(a, b.transpose(-2, -1)) * FACTOR
        logits = logits + SHIFT
        logits = logits / math.sqrt(self.width)
        w = torch.softmax(logits, dim=-1)
        return torch.matmul(w, c)
"""


def _scaled(factor: str, shift: str = "shift", before: str = "") -> str:
    code = SCALED_THEN_BIASED.replace("FACTOR", factor).replace("SHIFT", shift)
    return code.replace("        logits = torch.matmul", before + "        logits = torch.matmul")


def test_a_factor_the_caller_passes_is_reported():
    code = _scaled("factor.unsqueeze(1).unsqueeze(1)")
    hits = found(code, "ADP010")
    assert [f.line for f in hits] == [line_of(code, "logits = torch.matmul")]


def test_a_number_factor_is_reported():
    assert len(found(_scaled("0.5"), "ADP010")) == 1


def test_a_full_module_tensor_factor_is_not_reported():
    assert found(_scaled("self.table"), "ADP010") == []


def test_a_factor_computed_per_query_and_key_is_not_reported():
    code = _scaled("decay", before="        decay = torch.exp(-torch.cdist(coords, coords))\n")
    assert found(code, "ADP010") == []


def test_a_term_computed_from_the_scores_is_no_additive_mask():
    code = _scaled("factor", shift="logits.sigmoid()")
    assert found(code, "ADP010") == []


# ADP015 (misses59's split per call of a tied-head helper): each finding starts where the root
# calls the helper, so two losses on one line are two places at two columns.
TWO_LOSSES_ONE_LINE = """\
import torch.nn as nn
import torch.nn.functional as F


class Toy(nn.Module):
    def __init__(self, vocab=64, width=16):
        super().__init__()
        self.vocab = vocab
        self.table = nn.Embedding(vocab, width)

    def head(self, u):
        return u @ self.table.weight.t()

    def forward(self, ids, gold):
        u = self.table(ids)
        l1 = F.cross_entropy(self.head(u).view(-1, self.vocab), gold.view(-1)); l2 = F.cross_entropy(self.head(u * 2).view(-1, self.vocab), gold.view(-1))
        return l1 + l2
"""


def test_split_head_findings_start_at_each_call_site():
    hits = sorted(found(TWO_LOSSES_ONE_LINE, "ADP015"), key=lambda f: f.column)
    at = line_of(TWO_LOSSES_ONE_LINE, "l1 = F.cross_entropy")
    text = TWO_LOSSES_ONE_LINE.splitlines()[at - 1]
    assert [(f.line, f.column) for f in hits] == [
        (at, text.index("self.head(u)") + 1), (at, text.index("self.head(u * 2)") + 1)]


def test_a_mask_built_from_the_scores_shape_is_still_an_additive_mask():
    before = "        logits = torch.matmul(a, b.transpose(-2, -1)) * factor\n"
    code = _scaled("factor", shift="torch.ones(r, c).triu(1) * -1e4")
    code = code.replace(before, before + "        _, r, c = logits.shape\n")
    assert "_, r, c = logits.shape" in code
    assert len(found(code, "ADP010")) == 1
