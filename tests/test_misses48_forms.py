"""Forms other helpers left, read by their computation.  The fixtures are ours.

- A Linear's output viewed as rows into a BatchNorm1d, then shaped back by reading the Linear's
  output's sizes again (``w_bn.reshape(w.shape[0], w.shape[1], w.shape[2])``): a size is an int,
  not the output's elements, so the Linear and the norm still fold.  The fixer cannot delete
  ``w = self.w(x)`` while that read remains, so it refuses with why (the patch never leaves a
  read undefined).  Near-miss: the Linear's output read by value after the norm.
"""

from __future__ import annotations

from corpus_forms import found, line_of, rules

from adopter.synth import fix_text

SIZED_BACK = """\
import torch
from torch import nn


class SizedBack(nn.Module):
    def __init__(self, c, hidden, normalize=True):
        super().__init__()
        self.w = nn.Linear(c, 2 * hidden, bias=False)
        self.normalize = normalize
        self.norm = nn.BatchNorm1d(2 * hidden, momentum=0.05)

    def forward(self, x):
        w = self.w(x)
        if self.normalize:
            w_bn = self.norm(w.reshape(w.shape[0] * w.shape[1], w.shape[2]))
            w = w_bn.reshape(w.shape[0], w.shape[1], w.size(2))
        return torch.tanh(w)
"""

VALUE_AFTER = """\
import torch
from torch import nn


class ValueAfter(nn.Module):
    def __init__(self, c, hidden):
        super().__init__()
        self.w = nn.Linear(c, hidden, bias=False)
        self.norm = nn.BatchNorm1d(hidden)

    def forward(self, x):
        w = self.w(x)
        w_bn = self.norm(w.reshape(w.shape[0] * w.shape[1], w.shape[2]))
        return w_bn.reshape(w.shape[0], w.shape[1], w.shape[2]) + w
"""


def test_a_size_read_of_the_linear_output_after_the_norm_keeps_the_site():
    spans = [(f.line, f.end_line) for f in found(SIZED_BACK, "ADP008")]
    at = line_of(SIZED_BACK, "w_bn = self.norm(")
    assert any(a <= at <= b for a, b in spans)


def test_the_linear_output_read_by_value_after_the_norm_is_no_site():
    assert found(VALUE_AFTER, "ADP008") == []


def test_the_fix_never_leaves_the_size_read_undefined():
    result = fix_text(SIZED_BACK, "model.py", rules("ADP008"))
    if result.text != SIZED_BACK:
        assert "w = self.w(x)" in result.text or "w.shape" not in result.text.split("def forward")[1]
    else:
        assert any("read again" in why for _, why in result.skipped)
