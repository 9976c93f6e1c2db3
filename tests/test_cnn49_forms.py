"""Forms found while checking the blind batch of cnn49 (detection, segmentation, GAN, audio and
3-D CNN files: every conv-BN pair found at first sight; the misses were a one-query attention
of an audio encoder and an optimizer class looked up by name).  The fixtures are ours.

- One-query (Luong dot) attention whose size-1 query axis is squeezed for the softmax and
  restored after it: ``w = bmm(values, h.unsqueeze(2)).squeeze(2)``, ``p = softmax(w, 1)``,
  ``bmm(values.transpose(1, 2), p.unsqueeze(2))``.  The squeeze drops an axis the product made
  size 1 and the unsqueeze puts it back where it was, so the probabilities are those of the
  keys-first scores the rule already reads (structure/singletons.py); the fix is that form's.
Near-misses: a squeeze of an axis no operand made size 1, the probabilities unsqueezed at
another axis (the product then contracts something else), a softmax over the batch axis, and
a mask added to the squeezed scores (it would broadcast against the restored layout) stay
unreported.
"""

from __future__ import annotations

import pytest

from corpus_forms import found, line_of, rules

from adopter.synth import fix_text

DOT = """\
import torch
from torch import nn
from torch.nn import functional as F


class DotAttention(nn.Module):
    def forward(self, values, hidden):
        scores = torch.bmm(values, hidden.unsqueeze(2)).squeeze(2)
        weights = F.softmax(scores, 1)
        return torch.bmm(values.transpose(1, 2), weights.unsqueeze(2)).squeeze(2)


class SplitDotAttention(nn.Module):
    def forward(self, values, query):
        weights = self._weights(values, query)
        return torch.bmm(values.transpose(1, 2), weights.unsqueeze(-1)).squeeze(-1)

    def _weights(self, values, query):
        w = torch.bmm(values, query.unsqueeze(-1)).squeeze(-1)
        return torch.softmax(w, dim=-1)


class QueryFirst(nn.Module):
    def forward(self, keys, values, query):
        scores = torch.bmm(query.unsqueeze(1), keys.transpose(1, 2)).squeeze(1)
        weights = scores.softmax(dim=-1)
        return torch.bmm(weights.unsqueeze(1), values).squeeze(1)
"""

NEAR = """\
import torch
from torch import nn
from torch.nn import functional as F


class NotSizeOne(nn.Module):
    def forward(self, values, keys):
        scores = torch.bmm(values, keys.transpose(1, 2)).squeeze(2)
        weights = F.softmax(scores, 1)
        return torch.bmm(values.transpose(1, 2), weights.unsqueeze(2)).squeeze(2)


class OtherAxis(nn.Module):
    def forward(self, values, hidden):
        scores = torch.bmm(values, hidden.unsqueeze(2)).squeeze(2)
        weights = F.softmax(scores, 1)
        return torch.bmm(weights.unsqueeze(1), values).squeeze(1)


class OverBatch(nn.Module):
    def forward(self, values, hidden):
        scores = torch.bmm(values, hidden.unsqueeze(2)).squeeze(2)
        weights = F.softmax(scores, 0)
        return torch.bmm(values.transpose(1, 2), weights.unsqueeze(2)).squeeze(2)


class MaskedSqueezed(nn.Module):
    def forward(self, values, hidden, mask):
        scores = torch.bmm(values, hidden.unsqueeze(2)).squeeze(2) + mask
        weights = F.softmax(scores, 1)
        return torch.bmm(values.transpose(1, 2), weights.unsqueeze(2)).squeeze(2)
"""


def _covered(code, needle):
    line = line_of(code, needle)
    return any(f.line <= line <= f.end_line for f in found(code, "ADP010"))


@pytest.mark.parametrize("needle", [
    "weights = F.softmax(scores, 1)",
    "return torch.softmax(w, dim=-1)",
    "weights = scores.softmax(dim=-1)",
])
def test_one_query_attention_with_its_query_axis_squeezed_is_attention(needle):
    assert _covered(DOT, needle)


def test_near_misses_are_not_attention():
    assert found(NEAR, "ADP010") == []


def test_the_fix_computes_the_original_attention():
    import torch

    fixed = fix_text(DOT, "model.py", rules("ADP010")).text
    assert fixed.count("scaled_dot_product_attention(") == 3  # the three sites
    original, patched = {}, {}
    exec(compile(DOT, "orig.py", "exec"), original)  # noqa: S102 (our own fixture)
    exec(compile(fixed, "fixed.py", "exec"), patched)  # noqa: S102
    torch.manual_seed(0)
    values = torch.randn(3, 7, 5, dtype=torch.float64, requires_grad=True)
    keys = torch.randn(3, 7, 5, dtype=torch.float64)
    query = torch.randn(3, 5, dtype=torch.float64, requires_grad=True)
    for cls, args in (("DotAttention", (values, query)), ("SplitDotAttention", (values, query)),
                      ("QueryFirst", (keys, values, query))):
        want = original[cls]()(*args)
        got = patched[cls]()(*args)
        assert got.shape == want.shape == (3, 5)
        # float64, softmax over 7 keys and a 5-wide contraction: agreement to rounding
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
        gw = torch.autograd.grad(want.sum(), (values, query))
        gg = torch.autograd.grad(got.sum(), (values, query))
        for a, b in zip(gg, gw):
            torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
