"""Forms other helpers left, read by their computation.  The fixtures are ours.

- A Linear's output viewed as rows into a BatchNorm1d, then shaped back by reading the Linear's
  output's sizes again (``w_bn.reshape(w.shape[0], w.shape[1], w.shape[2])``): a size is an int,
  not the output's elements, so the Linear and the norm still fold.  The fixer cannot delete
  ``w = self.w(x)`` while that read remains as it is: it reads the sizes from what remains,
  ``(*x.shape[:-1], self.w.out_features)[i]`` (a Linear maps only the last axis), where the
  read sees the deleted value; reads after a statement that assigns the name anew stay.
  Near-miss: the Linear's output read by value after the norm.
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
        h = torch.zeros(w.shape[0], w.size(-1), dtype=w.dtype)
        return torch.tanh(w) + h.unsqueeze(1)
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


def test_the_fix_reads_the_sizes_from_the_input_and_computes_the_same():
    import torch

    fixed = fix_text(SIZED_BACK, "model.py", rules("ADP008")).text
    assert "linear_bn(x.reshape(-1, x.shape[-1]), self.w, self.norm)" in fixed
    assert "w_bn.reshape((*x.shape[:-1], self.w.out_features)[0], (*x.shape[:-1], self.w.out_features)[1], " \
           "(*x.shape[:-1], self.w.out_features)[2])" in fixed
    # after ``w = w_bn.reshape(...)`` the name holds the new value on every path: kept as written
    assert "h = torch.zeros(w.shape[0], w.size(-1), dtype=w.dtype)" in fixed
    original, patched = {}, {}
    exec(compile(SIZED_BACK, "orig.py", "exec"), original)  # noqa: S102 (our own fixture)
    exec(compile(fixed, "fixed.py", "exec"), patched)  # noqa: S102
    for normalize in (True, False):
        torch.manual_seed(0)
        a = original["SizedBack"](12, 3, normalize).double()
        b = patched["SizedBack"](12, 3, normalize).double()
        with torch.no_grad():
            a.norm.running_mean.uniform_(-1, 1)
            a.norm.running_var.uniform_(0.5, 2)
        b.load_state_dict(a.state_dict(), strict=True)
        x = torch.randn(4, 5, 12, dtype=torch.float64)
        for mode in ("eval", "train"):
            getattr(a, mode)()
            getattr(b, mode)()
            # float64, 12-term dot products with the BatchNorm folded in (eval) or run as it is
            # (train): equal to rounding
            torch.testing.assert_close(b(x), a(x), rtol=0, atol=1e-12)


REBOUND_BETWEEN = """\
import torch
from torch import nn


class ReboundBetween(nn.Module):
    def __init__(self, c, hidden):
        super().__init__()
        self.w = nn.Linear(c, hidden, bias=False)
        self.norm = nn.BatchNorm1d(hidden)

    def forward(self, x, flip):
        w = self.w(x)
        w_bn = self.norm(w.reshape(w.shape[0] * w.shape[1], w.shape[2]))
        if flip:
            w = x.transpose(0, 1)
        return w_bn.reshape(w.shape[0], w.shape[1], -1)
"""


def test_a_size_read_after_a_branch_that_may_rebind_the_name_is_not_rewritten():
    result = fix_text(REBOUND_BETWEEN, "model.py", rules("ADP008"))
    assert "(*x.shape[:-1]" not in result.text
    assert "w.shape[0], w.shape[1], -1" in result.text
