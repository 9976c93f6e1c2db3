"""Research attention found but not fixed (session 39, rafix63).  The fixtures are ours.

- Two attention helpers picked by one setting (``getattr(self, self.mode)``, sssegmentation's
  non-local block): one is fused at the caller's lines under a guard on the setting, the other
  declines (its scale step sits in an ``if`` inside the helper).  After that patch the declined
  finding no longer matches, and the fixer's rounds dropped it with no reason: it now keeps the
  reason its round gave, placed from its first line.
"""

from __future__ import annotations

import pytest
from corpus_forms import found, line_of, rules

from adopter.synth import fix_text

TWO_PICKED = """\
import torch
from torch import nn


class TwoPicked(nn.Module):
    def __init__(self, dim=8, mode="plain", use_scale=True):
        super().__init__()
        assert mode in ["plain", "scaled"]
        self.mode = mode
        self.use_scale = use_scale
        self.to_q = nn.Linear(dim, dim)
        self.to_k = nn.Linear(dim, dim)
        self.to_v = nn.Linear(dim, dim)

    def plain(self, q, k):
        w = torch.matmul(q, k)
        w = w.softmax(dim=-1)
        return w

    def scaled(self, q, k):
        w = torch.matmul(q, k)
        if self.use_scale:
            w /= q.shape[-1] ** 0.5
            self.last = w.detach()
        w = w.softmax(dim=-1)
        return w

    def forward(self, x):
        q = self.to_q(x)
        k = self.to_k(x).permute(0, 2, 1)
        v = self.to_v(x)
        pick = getattr(self, self.mode)
        w = pick(q, k)
        y = torch.matmul(w, v)
        return y
"""


def test_a_finding_declined_beside_a_patch_of_its_round_keeps_its_reason():
    lines = [f.line for f in found(TWO_PICKED, "ADP010")]
    plain = line_of(TWO_PICKED, "w = torch.matmul(q, k)")
    assert len(lines) == 2 and lines[0] == plain
    result = fix_text(TWO_PICKED, "model.py", rules("ADP010"))
    assert "scaled_dot_product_attention(" in result.text
    assert [f.line for f in result.applied] == [plain]
    # the scaled helper's finding: still reported, with the reason of the round that declined it,
    # at its first line in the patched text (the fused call's import adds one above it)
    assert len(result.skipped) == 1
    finding, why = result.skipped[0]
    assert why and "rewrite it by hand" in why
    assert result.text.splitlines()[finding.line - 1].strip() == "w = torch.matmul(q, k)"
    assert finding.line > plain + 1
    assert finding.end_line >= finding.line


def test_placed_never_ends_before_its_first_line():
    from adopter.synth.core import _placed

    assert _placed(10, 14) == (10, 14)
    assert _placed(10, 7) == (10, 10)
