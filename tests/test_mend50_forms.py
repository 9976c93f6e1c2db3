"""ADP010's ``scale=`` from a factor the caller hands in (session 42, mend50).  The fixtures are
ours.

``scores * pos`` with ``pos`` a parameter of the attention reads like a number, and ``scale=``
takes only a number: a tensor handed there (a per-head temperature, a (query, key) table) made
the patch raise or compute another thing.  The patch now sends any value that is not a Python
int or float to the original (``not isinstance(pos, (int, float))``), so a tensor takes the
code as written and a number the fused call.  Look-alikes: a factor that is a size or a
``self`` setting keeps its plain ``scale=`` with no such guard.
"""

from __future__ import annotations

import pytest
from corpus_forms import FusedCalls as _Counted
from corpus_forms import float64_pair
from corpus_forms import sdpa_fixed as _fixed

torch = pytest.importorskip("torch")

HANDED_FACTOR = """\
import math
import torch
from torch import nn


class Attention(nn.Module):
    def __init__(self, dim=8, heads=2):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)

    def forward(self, x, pos):
        b, n, d = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.heads, -1).permute(2, 0, 3, 1, 4)
        scores = torch.matmul(q, k.transpose(-2, -1))
        scores = scores * pos
        probs = scores.softmax(dim=-1)
        out = torch.matmul(probs, v)
        return out.transpose(1, 2).reshape(b, n, d)
"""

DIVIDED = HANDED_FACTOR.replace("scores = scores * pos", "scores = scores / (pos * 2)")


@pytest.mark.parametrize("source", [HANDED_FACTOR, DIVIDED])
def test_a_handed_factor_is_guarded_to_be_a_number(source):
    fixed = _fixed(source)
    assert "not isinstance(pos, (int, float))" in fixed or "not isinstance(pos * 2, (int, float))" in fixed


@pytest.mark.parametrize("source", [HANDED_FACTOR, DIVIDED])
@pytest.mark.parametrize("pos, fused", [
    (0.5, 1),
    (3, 1),
    ("zero_d", 0),
    ("per_head", 0),
    ("pairwise", 0),
])
def test_a_handed_factor_matches_the_original_whatever_it_is(source, pos, fused):
    a, b = float64_pair(source, _fixed(source), "Attention")
    counter = _Counted(b)
    torch.manual_seed(1)
    factors = {"zero_d": torch.tensor(0.7, dtype=torch.float64),
               "per_head": torch.rand(2, 1, 1, dtype=torch.float64) + 0.5,
               "pairwise": torch.rand(5, 5, dtype=torch.float64) + 0.5}
    factor = factors.get(pos, pos)
    x = torch.randn(2, 5, 8, dtype=torch.float64)
    for training in (False, True):
        a.train(training)
        b.train(training)
        xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
        out_a, out_b = a(xa, factor), b(xb, factor)
        torch.testing.assert_close(out_b, out_a)
        weight = torch.randn_like(out_a)
        (weight * out_a).sum().backward()
        (weight * out_b).sum().backward()
        torch.testing.assert_close(xb.grad, xa.grad)
        for (_, pa), (_, pb) in zip(a.named_parameters(), b.named_parameters()):
            torch.testing.assert_close(pb.grad, pa.grad)
    assert counter.calls == 2 * fused


@pytest.mark.parametrize("factor", ["q.shape[-1] ** -0.5", "self.temperature"])
def test_a_size_or_a_setting_keeps_a_plain_scale(factor):
    source = HANDED_FACTOR.replace("scores = scores * pos", f"scores = scores * {factor}")
    source = source.replace("self.heads = heads", "self.heads = heads\n        self.temperature = 0.25")
    fixed = _fixed(source)
    assert "isinstance(" not in fixed
    a, b = float64_pair(source, fixed, "Attention")
    x = torch.randn(2, 5, 8, dtype=torch.float64)
    torch.testing.assert_close(b(x, None), a(x, None))


def test_an_annotation_does_not_drop_the_guard():
    # review49: ``scaling: float`` handed ``self.logit_scale.exp()`` (a tensor) in the same file;
    # an annotation is not checked at run time, so the guard stays and a tensor takes the original
    source = HANDED_FACTOR.replace("def forward(self, x, pos):", "def forward(self, x, pos: float):")
    fixed = _fixed(source)
    assert "not isinstance(pos, (int, float))" in fixed
    a, b = float64_pair(source, fixed, "Attention")
    x = torch.randn(2, 5, 8, dtype=torch.float64)
    for pos in (0.5, torch.tensor(0.5, dtype=torch.float64)):
        torch.testing.assert_close(b(x, pos), a(x, pos))


GIVEN_MASK = """\
import math
import torch
from torch import nn


class Masked(nn.Module):
    def __init__(self, dim=8):
        super().__init__()
        self.qkv = nn.Linear(dim, 3 * dim)
        self.dim = dim

    def forward(self, x, mask):
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        scores = torch.matmul(q, k.transpose(-2, -1)) / math.sqrt(self.dim)
        keep = mask[:, None, :] * -1e9
        scores = scores + keep
        probs = torch.softmax(scores, dim=-1)
        return torch.matmul(probs, v)
"""


def test_a_term_that_cannot_reach_the_scores_is_decided_without_size_reads(monkeypatch):
    # the given check's set-only gate (match._may_reach_steps): a term made from the caller's
    # mask alone never reaches a step, so no read of it is parsed for sizes; still a site
    from corpus_forms import finding_at

    from adopter import match

    calls = []
    real = match._size_reads
    monkeypatch.setattr(match, "_size_reads", lambda *a: calls.append(a) or real(*a))
    assert finding_at(GIVEN_MASK, "ADP010", "scores = scores + keep") is not None
    assert calls == []


DEFAULTED = HANDED_FACTOR.replace("def forward(self, x, pos):", "def forward(self, x, pos=None):").replace(
    "scores = torch.matmul(q, k.transpose(-2, -1))\n        scores = scores * pos",
    "factor = q.shape[-1] ** -0.5 if pos is None else pos\n"
    "        scores = torch.matmul(q, k.transpose(-2, -1))\n        scores = scores * factor")


@pytest.mark.parametrize("pos, fused", [(None, 1), (0.3, 1), ("tensor", 0)])
def test_a_defaulted_factor_takes_the_fused_call_when_left_out(pos, fused):
    # the guard tests the factor's value (a float when the caller leaves pos None), not the name
    fixed = _fixed(DEFAULTED)
    assert "not isinstance(factor, (int, float))" in fixed
    a, b = float64_pair(DEFAULTED, fixed, "Attention")
    counter = _Counted(b)
    factor = torch.rand(2, 1, 1, dtype=torch.float64) + 0.5 if pos == "tensor" else pos
    x = torch.randn(2, 5, 8, dtype=torch.float64)
    torch.testing.assert_close(b(x, factor), a(x, factor))
    assert counter.calls == fused
