"""Mends of review45's three open findings (session 41, mend47).  The fixtures are ours.

- ADP015: a tied-embedding head helper called at two places of one forward, each call's logits
  into a cross-entropy of its own, is two places (misses59's split per call).  Each finding now
  starts at its own call of the helper in the caller -- the GUIDE's anchor, "the head call that
  produces the logits" -- so two losses written on one line are two findings at two columns,
  not two findings at the helper's line.  A helper the root calls once keeps its start (an
  ADP014 rotation helper's anchor is the helper's own line: tests/test_misses16_forms.py).
"""

from __future__ import annotations

from corpus_forms import found, line_of

TWO_HEADS_ONE_LINE = """\
import torch.nn as nn
import torch.nn.functional as F


class Scorer(nn.Module):
    def __init__(self, n_tokens=48, size=12):
        super().__init__()
        self.n_tokens = n_tokens
        self.tokens = nn.Embedding(n_tokens, size)

    def project(self, z):
        return z @ self.tokens.weight.t()

    def forward(self, ids, want):
        z = self.tokens(ids)
        one = F.cross_entropy(self.project(z).view(-1, self.n_tokens), want.view(-1)); two = F.cross_entropy(self.project(z + 1).view(-1, self.n_tokens), want.view(-1))
        return one + two
"""


def test_two_head_helper_calls_on_one_line_are_two_places_at_their_calls():
    hits = sorted(found(TWO_HEADS_ONE_LINE, "ADP015"), key=lambda f: f.column)
    at = line_of(TWO_HEADS_ONE_LINE, "one = F.cross_entropy")
    text = TWO_HEADS_ONE_LINE.splitlines()[at - 1]
    assert [(f.line, f.column) for f in hits] == [
        (at, text.index("self.project(z)") + 1), (at, text.index("self.project(z + 1)") + 1)]


TWO_HEADS_TWO_LINES = TWO_HEADS_ONE_LINE.replace(
    "; two = F.cross_entropy", "\n        two = F.cross_entropy")


def test_two_head_helper_calls_on_two_lines_each_start_at_their_own_line():
    hits = sorted(found(TWO_HEADS_TWO_LINES, "ADP015"), key=lambda f: f.line)
    assert [f.line for f in hits] == [line_of(TWO_HEADS_TWO_LINES, "one = F.cross_entropy"),
                                      line_of(TWO_HEADS_TWO_LINES, "two = F.cross_entropy")]
    assert all(f.end_line == f.line for f in hits)


ONE_HEAD_CALL = TWO_HEADS_ONE_LINE.replace(
    "; two = F.cross_entropy(self.project(z + 1).view(-1, self.n_tokens), want.view(-1))", "").replace(
    "return one + two", "return one")


def test_a_head_helper_called_once_keeps_one_finding_over_helper_and_call():
    hits = found(ONE_HEAD_CALL, "ADP015")
    assert len(hits) == 1
    assert hits[0].line == line_of(ONE_HEAD_CALL, "return z @ self.tokens")
    assert hits[0].end_line == line_of(ONE_HEAD_CALL, "one = F.cross_entropy")

