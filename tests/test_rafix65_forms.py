"""Research attention found but not fixed (session 40, rafix65).  The fixtures are ours.

- A softmax whose dim counts from the front (``softmax(s, 1)``) is the keys' only at the rank
  the products contract it at, so the fused call is guarded on q's, k's and v's ranks
  (``_rank_terms``).  That guard read names only; an operand built from names by steps of a
  known rank -- ``(query @ self.W).unsqueeze(1)``, one projected query per row (wavencoder's
  multiplicative attention) -- was declined.  Its rank now follows from its leaves
  (``_rank_leaves``): ``x.unsqueeze(i)`` is one more than ``x``, ``a @ b`` is ``a``'s and
  ``b``'s where both have it; a step of unknown rank (``squeeze``) or a call
  still declines.
"""

from __future__ import annotations

import pytest
from corpus_forms import found, rules

from adopter.synth import fix_text
from adopter.synth.sdpa import RANK_SKIP

# one projected query per row against a sequence of keys that are also the values, the scores
# formed in a helper and normalised over dim 1 (counted from the front)
PROJECTED = """\
import math

import torch
import torch.nn.functional as F
from torch import nn


class GeneralScore(nn.Module):
    def __init__(self, width=8, state=6):
        super().__init__()
        self.state = state
        self.bilinear = nn.Parameter(torch.randn(state, width))

    def scores(self, memory, state):
        logits = (state @ self.bilinear).unsqueeze(1) @ memory.transpose(1, 2)
        return logits.squeeze(1) / math.sqrt(self.state)

    def forward(self, memory, state):
        logits = self.scores(memory, state)
        weights = F.softmax(logits, 1)
        return (weights.unsqueeze(2) * memory).sum(1)
"""


def _fix(source: str):
    return fix_text(source, "model.py", rules("ADP010"))


def test_a_projected_query_operand_is_guarded_on_its_leaves_ranks():
    assert len(found(PROJECTED, "ADP010")) == 1
    result = _fix(PROJECTED)
    assert len(result.applied) == 1 and result.skipped == []
    text = result.text
    assert "state.dim() != 2" in text and "self.bilinear.dim() != 2" in text and "memory.dim() != 3" in text
    assert "scaled_dot_product_attention(" in text
    assert found(text, "ADP010") == []


def _pair(fixed: str):
    """The original and the fixed class in float64, the fixed one's fused calls counted."""
    import torch

    original, patched = {}, {}
    exec(compile(PROJECTED, "orig.py", "exec"), original)  # noqa: S102 (our own fixture)
    exec(compile(fixed, "fixed.py", "exec"), patched)  # noqa: S102
    calls = []
    fused = patched["scaled_dot_product_attention"]

    def counted(*args, **kw):
        calls.append(args[0].shape)
        return fused(*args, **kw)

    patched["scaled_dot_product_attention"] = counted
    torch.manual_seed(0)
    a = original["GeneralScore"]().double()
    b = patched["GeneralScore"]().double()
    b.load_state_dict(a.state_dict(), strict=True)
    return a, b, calls


@pytest.mark.parametrize("train", [False, True])
def test_the_guarded_patch_computes_the_same(train):
    torch = pytest.importorskip("torch")
    a, b, calls = _pair(_fix(PROJECTED).text)
    a.train(train)
    b.train(train)
    memory = torch.randn(3, 5, 8, dtype=torch.float64, requires_grad=True)
    state = torch.randn(3, 6, dtype=torch.float64, requires_grad=True)
    out_a, out_b = a(memory, state), b(memory, state)
    # float64, softmax over 5 keys of 8-wide products, a division by sqrt(6) against a
    # multiplication by its inverse: a few roundings apart, far below these
    torch.testing.assert_close(out_b, out_a, rtol=1e-10, atol=1e-12)
    grads_a = torch.autograd.grad(out_a.sum(), [memory, state, *a.parameters()])
    grads_b = torch.autograd.grad(out_b.sum(), [memory, state, *b.parameters()])
    for ga, gb in zip(grads_a, grads_b):
        torch.testing.assert_close(gb, ga, rtol=1e-10, atol=1e-12)
    assert len(calls) == 1


def test_another_rank_keeps_the_original_code():
    """A state of rank 3 makes the scores 4-d (dim 1 no longer the keys): the guard sends it
    to the original code, which fails as it did (no fused call is made)."""
    torch = pytest.importorskip("torch")
    a, b, calls = _pair(_fix(PROJECTED).text)
    memory = torch.randn(3, 5, 8, dtype=torch.float64)
    state = torch.randn(3, 1, 6, dtype=torch.float64)
    with pytest.raises(RuntimeError) as original:
        a(memory, state)
    with pytest.raises(RuntimeError) as patched:
        b(memory, state)
    assert str(patched.value) == str(original.value)
    assert calls == []


@pytest.mark.parametrize("operand", ["state.squeeze(0).unsqueeze(1)", "torch.tanh(state @ self.bilinear).unsqueeze(1)"])
def test_an_operand_of_unknown_rank_still_declines(operand):
    """``squeeze`` gives a rank the code does not fix, and a call is not read for its rank: no
    guard on leaves is formed, the attention stays declined."""
    source = PROJECTED.replace("(state @ self.bilinear).unsqueeze(1)", operand)
    assert len(found(source, "ADP010")) == 1
    result = _fix(source)
    assert result.applied == []
    assert [reason for _, reason in result.skipped] == [RANK_SKIP]
