"""Forms read while scoring blind batch research107 (recommender systems and reinforcement
learning: sequential recommenders' feed-forwards, target attention of CTR models).  The
fixtures are ours.

- A feed-forward whose activation is a constructor parameter with no default, built in the file
  once with ``nn.GELU()`` and once with ``nn.ReLU()``: the attribute holds one of them at run
  time (as when the file's calls replace a layer default), so the Linear -> activation pair is
  a bias-GELU site (the kernel checks the activation per call).  Calls passing only non-GELU
  activations, or one passing what the file cannot type, stay silent.
- A masking fill written as arithmetic of literals (``-(2**31) + 1``) or as a tensor of ones
  times the fill (``torch.ones_like(scores) * fill``) in ``torch.where(mask, scores, fill)``:
  the number it evaluates to / the fill each element holds.  Such a tensor bound to a name read
  only as the step's fill is dropped from the fused path (the fused call takes the value).
  Look-alikes: fills that are not large negative numbers, and a fill tensor read again.
- One query's keys-first scores squeezed to (batch, keys) (``torch.matmul(keys,
  query.unsqueeze(2)).squeeze(2)``) and then filled: the mask has one entry per key, so the
  fused call takes it with the query axis put back before the keys (``.unsqueeze(-2)``);
  before, such a fill was reported and declined.
"""

from __future__ import annotations

import ast

import pytest
from corpus_forms import finding_at, float64_pair, found, rules

from adopter.structure.canon import constant_number, fill_value
from adopter.synth import fix_text

# ---------------------------------------------------------------- ADP006: activations passed in

FEED_FORWARD = """\
import torch
from torch import nn


class FeedForward(nn.Module):
    def __init__(self, d: int, hidden: int, activation: nn.Module) -> None:
        super().__init__()
        self.up = nn.Linear(d, hidden)
        self.act = activation
        self.down = nn.Linear(hidden, d)

    def forward(self, x):
        h = self.act(self.up(x))  # act
        return self.down(h)


def make_ff(d: int, kind: str) -> nn.Module:
    if kind == "a":
        return FeedForward(d, 4 * d, FIRST)
    return FeedForward(d, 4 * d, activation=SECOND)


class Block(nn.Module):
    def __init__(self, d: int = 8, kind: str = "a") -> None:
        super().__init__()
        self.ff = make_ff(d, kind)

    def forward(self, x):
        return x + self.ff(x)
"""


def _ff(first: str, second: str) -> str:
    return FEED_FORWARD.replace("FIRST", first).replace("SECOND", second)


def test_activation_passed_as_gelu_by_one_call_and_relu_by_another_is_bias_gelu():
    code = _ff("torch.nn.GELU()", "torch.nn.ReLU()")
    assert finding_at(code, "ADP006", "# act") is not None


@pytest.mark.parametrize("kind", ["a", "b"])
def test_the_fix_passes_the_held_activation_and_computes_the_same(kind):
    pytest.importorskip("adopter_kernels")
    torch = pytest.importorskip("torch")
    code = _ff("torch.nn.GELU()", "torch.nn.ReLU()")
    fixed = fix_text(code, "model.py", rules("ADP006")).text
    assert "bias_gelu(x, self.up, self.act)" in fixed
    a, b = float64_pair(code, fixed, "Block", kind=kind)
    x = torch.randn(3, 5, 8, dtype=torch.float64, requires_grad=True)
    y = x.detach().clone().requires_grad_(True)
    out_a, out_b = a(x), b(y)
    torch.testing.assert_close(out_b, out_a, rtol=1e-10, atol=1e-12)
    out_a.sum().backward()
    out_b.sum().backward()
    torch.testing.assert_close(y.grad, x.grad, rtol=1e-10, atol=1e-12)


def test_activations_passed_that_are_never_gelu_stay_silent():
    # look-alike: ReLU by one call, SiLU by the other
    assert finding_at(_ff("torch.nn.ReLU()", "nn.SiLU()"), "ADP006", "# act") is None


def test_one_call_passing_an_untyped_activation_stays_silent():
    # look-alike: what the second call passes is another file's choice (a name of the caller)
    code = _ff("torch.nn.GELU()", "kind_activation").replace(
        "def make_ff(d: int, kind: str)", "def make_ff(d: int, kind: str, kind_activation=None)")
    assert finding_at(code, "ADP006", "# act") is None


# ---------------------------------------------------------------- fills: literal arithmetic

def _expr(text: str) -> ast.expr:
    return ast.parse(text, mode="eval").body


@pytest.mark.parametrize("text, value", [("-(2**31) + 1", -(2**31) + 1), ("-1 * 1e9", -1e9), ("-2 ** 32", -(2**32)),
                                         ("(-1e4) - 1", -10001.0), ("+3 / 2", 1.5)])
def test_constant_number_folds_literal_arithmetic(text, value):
    assert constant_number(_expr(text)) == value


@pytest.mark.parametrize("text", ["2 ** 1000", "x + 1", "-(2 ** n)", "1 / 0", "'a' * 3", "True + 1"])
def test_constant_number_refuses_names_huge_powers_and_non_numbers(text):
    assert constant_number(_expr(text)) is None


@pytest.mark.parametrize("text, kind", [("-(2**31) + 1", "finite"), ("-(2**3) + 1", None), ("-1e9 * 2", "finite"),
                                        ("float('-inf') * 2", None)])
def test_fill_value_of_literal_arithmetic(text, kind):
    assert fill_value(_expr(text)) == kind


TARGET = """\
import torch
from torch import nn
from torch.nn import functional as F


class TargetAttention(nn.Module):
    def forward(self, query, keys, lengths):
        n = keys.size(1)
        valid = torch.arange(n, device=keys.device).unsqueeze(0) < lengths.unsqueeze(1)
        scores = torch.matmul(keys, query.unsqueeze(2)).squeeze(2)
        padding = PADDING
        scores = torch.where(valid, scores, padding)
        weights = F.softmax(scores, dim=-1)  # softmax
        return torch.matmul(weights.unsqueeze(1), keys).squeeze(1)
"""


@pytest.mark.parametrize("padding", ["torch.ones_like(scores) * (-(2**31) + 1)", "-1e9 * torch.ones_like(scores)",
                                     "torch.full_like(scores, -(2**31) + 1)"])
def test_target_attention_with_a_tensor_of_a_large_negative_fill_is_found(padding):
    code = TARGET.replace("PADDING", padding)
    assert finding_at(code, "ADP010", "# softmax") is not None


@pytest.mark.parametrize("padding", ["torch.ones_like(scores) * (-(2**31) + 1)", "torch.full_like(scores, -1e9)"])
@pytest.mark.parametrize("lengths", [[3, 7, 1], [0, 7, 2]])
def test_target_attention_keys_first_with_a_mask_is_fixed_and_computes_the_same(padding, lengths):
    # one query's keys-first scores squeezed to (batch, keys): the mask has one entry per key,
    # and the fused call's has the query axis put back before the keys (a batch row with no
    # key left -- length 0 -- takes the original, whose weights are uniform there)
    torch = pytest.importorskip("torch")
    code = TARGET.replace("PADDING", padding)
    result = fix_text(code, "model.py", rules("ADP010"))
    assert "scaled_dot_product_attention(" in result.text, result.skipped
    assert ".unsqueeze(-2)" in result.text.split("else:")[-1]
    a, b = float64_pair(code, result.text, "TargetAttention")
    query = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    keys = torch.randn(3, 7, 4, dtype=torch.float64, requires_grad=True)
    n = torch.tensor(lengths)
    query2, keys2 = (t.detach().clone().requires_grad_(True) for t in (query, keys))
    out_a, out_b = a(query, keys, n), b(query2, keys2, n)
    # float64, sums over 4 channels and 7 keys: agreement to rounding
    torch.testing.assert_close(out_b, out_a, rtol=1e-10, atol=1e-12)
    out_a.square().sum().backward()
    out_b.square().sum().backward()
    torch.testing.assert_close(query2.grad, query.grad, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(keys2.grad, keys.grad, rtol=1e-10, atol=1e-12)


def test_a_fill_on_queries_first_squeezed_scores_stays_unread():
    # look-alike: the fill on one query's *queries-first* squeezed scores (its mask would reach
    # the fused call laid out for the squeezed scores): no squeezed-keys reading, no patch
    code = TARGET.replace("PADDING", "torch.ones_like(scores) * -1e9").replace(
        "torch.matmul(keys, query.unsqueeze(2)).squeeze(2)", "torch.matmul(query.unsqueeze(1), keys.transpose(1, 2)).squeeze(1)")
    result = fix_text(code, "model.py", rules("ADP010"))
    assert "scaled_dot_product_attention(" not in result.text


@pytest.mark.parametrize("padding", ["torch.ones_like(scores) * 3", "torch.ones_like(scores) * (-(2**3) + 1)",
                                     "torch.zeros_like(scores) * -1e9"])
def test_fills_that_do_not_mask_a_score_out_are_no_attention_mask(padding):
    # look-alikes: the where sets scores to a small number (or zero): no mask SDPA takes
    assert not found(TARGET.replace("PADDING", padding), "ADP010")


HEADS = """\
import math

import torch
from torch import nn
from torch.nn import functional as F


class Attention(nn.Module):
    def __init__(self, dim=8, heads=2):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, dim * 3)
        self.out = nn.Linear(dim, dim)

    def forward(self, x, keep):
        b, n, d = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        s = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(d // self.heads)
        pad = PADDING
        s = torch.where(keep[:, None, None, :], s, pad)
        p = F.softmax(s, dim=-1)
        y = torch.matmul(p, v)
        return self.out(y.transpose(1, 2).reshape(b, n, d))
"""


@pytest.mark.parametrize("padding", ["torch.ones_like(s) * (-(2**31) + 1)", "torch.full_like(s, -1e9)",
                                     "float('-inf') * torch.ones_like(s)"])
def test_a_fill_tensor_read_only_as_the_fill_is_dropped_and_the_fix_computes_the_same(padding):
    torch = pytest.importorskip("torch")
    code = HEADS.replace("PADDING", padding)
    result = fix_text(code, "model.py", rules("ADP010"))
    assert "scaled_dot_product_attention(" in result.text, result.skipped
    fused = result.text.split("else:")[-1]
    assert "ones_like(s)" not in fused and "full_like(s" not in fused  # (the scores are never formed there)
    a, b = float64_pair(code, result.text, "Attention")
    x = torch.randn(2, 5, 8, dtype=torch.float64, requires_grad=True)
    keep = torch.tensor([[True, True, False, True, False], [True, False, True, True, True]])
    y = x.detach().clone().requires_grad_(True)
    out_a, out_b = a(x, keep), b(y, keep)
    torch.testing.assert_close(out_b, out_a, rtol=1e-10, atol=1e-12)
    out_a.pow(2).sum().backward()
    out_b.pow(2).sum().backward()
    torch.testing.assert_close(y.grad, x.grad, rtol=1e-10, atol=1e-12)


def test_a_fill_tensor_read_again_is_not_dropped():
    # look-alike: the padding tensor is also returned, so the fused path would need it
    code = HEADS.replace("PADDING", "torch.ones_like(s) * -1e9").replace(
        "return self.out(y.transpose(1, 2).reshape(b, n, d))",
        "return self.out(y.transpose(1, 2).reshape(b, n, d)), pad.sum()")
    result = fix_text(code, "model.py", rules("ADP010"))
    assert "scaled_dot_product_attention(" not in result.text
