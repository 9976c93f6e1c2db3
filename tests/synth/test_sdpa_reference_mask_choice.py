"""Attention written out as ``scaled_dot_product_attention``'s own reference: under ``if m is
not None``, a boolean mask becomes a bias of zeros of the scores filled with -inf where m is
False, any other mask is the bias as it is, and the bias is added.  That is exactly how SDPA
reads ``attn_mask``, so the fused call takes m itself and the if goes.  ``torch.dropout(w, p,
train=True)`` drops whatever the module's mode (``dropout_p=p``); the scale chosen by a
conditional expression (``1 / math.sqrt(q.size(-1)) if scale is None else scale``) is a number
either way.  Checked numerically with a boolean mask, a float mask and none (float64, dropout 0
in train mode: the rate reaches the call).  Left alone: a boolean branch that fills where m is
True (the opposite of SDPA's reading), a float branch that changes the mask, and a bias read
again after the add."""

from __future__ import annotations

import pytest

from adopter.ruleset import load_rules, select_rules
from adopter.synth import fix_text

ADP010 = select_rules(load_rules(), ["ADP010"])

REFERENCE = """\
import math
import torch
from torch import nn


def reference_attention(q, k, v, mask=None, p=0.0, scale=None):
    factor = 1 / math.sqrt(q.size(-1)) if scale is None else scale
    w = q @ k.transpose(-2, -1) * factor
    if mask is not None:
        if mask.dtype == torch.bool:
            bias = torch.zeros_like(w)
            bias.masked_fill_(mask.logical_not(), float("-inf"))
        else:
            bias = mask
        w = w + bias
    w = torch.softmax(w, dim=-1)
    w = torch.dropout(w, p, train=True)
    return w @ v


class Block(nn.Module):
    def __init__(self, p=0.0):
        super().__init__()
        self.p = p

    def forward(self, q, k, v, mask=None):
        return reference_attention(q, k, v, mask, self.p)
"""

ONE_STATEMENT = REFERENCE.replace(
    "            bias = torch.zeros_like(w)\n            bias.masked_fill_(mask.logical_not(), float(\"-inf\"))\n",
    "            bias = torch.zeros_like(w).masked_fill(~mask, -math.inf)\n",
)


def _fix(code):
    return fix_text(code, "model.py", ADP010)


def _load(code):
    namespace = {}
    exec(compile(code, "model.py", "exec"), namespace)  # noqa: S102 (our own fixture)
    return namespace


@pytest.mark.parametrize("code", [REFERENCE, ONE_STATEMENT], ids=["two statements", "one statement"])
def test_the_mask_passes_straight_through(code):
    result = _fix(code)
    assert result.error is None and not result.skipped, result.skipped
    fused = result.text.split("else:\n")[-1]
    assert "scaled_dot_product_attention(" in fused
    assert "attn_mask=mask" in fused and "dropout_p=p" in fused and "scale=factor" in fused
    assert "bias" not in fused and "zeros_like" not in fused


@pytest.mark.parametrize("code", [REFERENCE, ONE_STATEMENT], ids=["two statements", "one statement"])
@pytest.mark.parametrize("kind", ["none", "bool", "float"])
@pytest.mark.parametrize("train", [False, True])
def test_the_rewrite_computes_what_the_original_does(code, kind, train):
    pytest.importorskip("torch")
    import torch

    fixed = _fix(code).text
    assert "scaled_dot_product_attention(" in fixed
    torch.manual_seed(0)
    q = torch.randn(2, 3, 5, 8, dtype=torch.float64, requires_grad=True)
    k = torch.randn(2, 3, 7, 8, dtype=torch.float64, requires_grad=True)
    v = torch.randn(2, 3, 7, 8, dtype=torch.float64, requires_grad=True)
    mask = None
    if kind == "bool":  # True where a key is seen; every row sees one
        mask = torch.rand(2, 1, 5, 7) > 0.5
        mask[..., 0] = True
    elif kind == "float":
        mask = torch.randn(2, 1, 5, 7, dtype=torch.float64)
    outs = []
    for source in (code, fixed):
        module = _load(source)["Block"](0.0).train(train)
        out = module(q, k, v, mask)
        outs.append((out, torch.autograd.grad(out.square().sum(), (q, k, v))))
    (want, want_grads), (got, got_grads) = outs
    # float64, a softmax over 7 keys: agreement to rounding
    torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)
    for a, b in zip(got_grads, want_grads):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-10)


def test_dropout_applies_in_eval_mode_too():
    # torch.dropout(..., train=True) drops whatever the mode: so does the fused call (p=1: all zero)
    pytest.importorskip("torch")
    import torch

    fixed = _fix(REFERENCE).text
    q = k = v = torch.randn(1, 2, 4, 8)
    for source in (REFERENCE, fixed):
        out = _load(source)["Block"](1.0).eval()(q, k, v)
        assert torch.count_nonzero(out) == 0


def test_a_boolean_branch_filling_where_the_mask_is_true_is_not_passed_through():
    pytest.importorskip("torch")
    _bias_built_not_passed(REFERENCE.replace("mask.logical_not(), float", "mask, float"), bool_keeps=False)


def _bias_built_not_passed(code, bool_keeps=True):
    """The mask itself is never SDPA's ``attn_mask``: the branch's bias is built on the fused path
    (its zeros made from q's and k's shapes) and added, computing what the original does."""
    import torch

    result = _fix(code)
    # a handed ``scale`` that is no number keeps the original (session 42): judge the fused way,
    # the function's last arm
    fused = result.text.split("\n    else:\n")[-1]
    assert "not isinstance(factor, (int, float))" in result.text
    assert "scaled_dot_product_attention(" in fused
    assert "attn_mask=mask" not in fused and "zeros_like(w" not in fused
    torch.manual_seed(0)
    q = torch.randn(2, 3, 5, 8, dtype=torch.float64)
    k = torch.randn(2, 3, 7, 8, dtype=torch.float64)
    v = torch.randn(2, 3, 7, 8, dtype=torch.float64)
    kept = torch.rand(2, 1, 5, 7) > 0.5
    kept[..., 0] = True  # every row keeps a key
    for mask in (torch.randn(2, 1, 5, 7, dtype=torch.float64), kept if bool_keeps else ~kept):
        want, got = (_load(source)["Block"](0.0).eval()(q, k, v, mask) for source in (code, result.text))
        # float64, a softmax over 7 keys: agreement to rounding (an infinite sum compared as equal)
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10, equal_nan=True)


def test_a_float_branch_that_changes_the_mask_is_not_passed_through():
    pytest.importorskip("torch")
    _bias_built_not_passed(REFERENCE.replace("            bias = mask\n", "            bias = mask * 2\n"))


def test_a_bias_read_again_after_the_add_is_not_passed_through():
    pytest.importorskip("torch")
    _bias_built_not_passed(REFERENCE.replace("    return w @ v\n", "    return w @ v + bias.sum()\n"))
