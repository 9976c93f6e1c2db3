"""A shape check inside the mask's ``if`` (``if mask is not None: assert mask.shape ==
sim.shape[2:]; sim = sim.masked_fill(mask, -inf)``, of an einsum over ``...`` whose rank the
code does not fix): the check is kept on the fused path under the same test, with the scores'
whole shape written from q's and k's (the batch axes they broadcast to, then the queries' and
the keys' lengths).  Checked numerically with and without the mask, and the check still
refuses a mask of another shape.  Left alone: an ``if`` that also hands the scores to other code, a check
of the scores' values, and a whole-shape read after an additive bias (which may broadcast the
scores to more axes)."""

from __future__ import annotations

import pytest

from adopter.ruleset import load_rules, select_rules
from adopter.synth import fix_text

ADP010 = select_rules(load_rules(), ["ADP010"])

CHECKED = """\
import math
import torch
from torch import nn


def attend(q, k, v, scale=1.0, mask=None):
    sim = torch.einsum("... i d, ... j d -> ... i j", q, k) * scale
    if mask is not None:
        assert mask.shape == sim.shape[2:]
        sim = sim.masked_fill(mask, -math.inf)
    probs = torch.softmax(sim, dim=-1)
    return torch.einsum("... i j, ... j d -> ... i d", probs, v)


class Heads(nn.Module):
    def __init__(self, width, heads):
        super().__init__()
        self.heads = heads
        self.scale = (width // heads) ** -0.5

    def forward(self, q, k, v, mask=None):
        return attend(q, k, v, scale=self.scale, mask=mask)
"""


def _fix(code):
    return fix_text(code, "model.py", ADP010)


def _load(code):
    namespace = {}
    exec(compile(code, "model.py", "exec"), namespace)  # noqa: S102 (our own fixture)
    return namespace


def test_the_check_is_kept_with_the_scores_shape_read_off_q_and_k():
    result = _fix(CHECKED)
    assert result.error is None and not result.skipped, result.skipped
    # ``scale`` is a parameter a caller may hand a tensor: a non-number keeps the original
    # (session 42), so the einsums stay only on that way; the fused way is the function's last arm
    guarded, fused = result.text.split("\n    else:\n")
    assert "not isinstance(scale, (int, float))" in guarded
    assert "scaled_dot_product_attention(" in fused and "torch.einsum" not in fused
    assert "        if mask is not None:\n            assert mask.shape == (torch.broadcast_shapes(q.shape[:-2], " \
           "k.shape[:-2]) + (q.shape[-2], k.shape[-2]))[2:]\n" in fused
    assert "attn_mask=~mask if mask is not None else None" in fused


@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("k_heads", [3, 1])
def test_the_rewrite_computes_what_the_original_does(masked, k_heads):
    pytest.importorskip("torch")
    import torch

    fixed = _fix(CHECKED).text
    assert "scaled_dot_product_attention(" in fixed
    original, patched = _load(CHECKED)["Heads"](24, 3), _load(fixed)["Heads"](24, 3)
    torch.manual_seed(0)
    q = torch.randn(2, 3, 5, 8, dtype=torch.float64, requires_grad=True)
    k = torch.randn(2, k_heads, 7, 8, dtype=torch.float64, requires_grad=True)  # one head of keys: broadcast
    v = torch.randn(2, k_heads, 7, 8, dtype=torch.float64, requires_grad=True)
    mask = None
    if masked:  # no row hidden entirely
        mask = torch.rand(5, 7) > 0.6
        mask[:, 0] = False
    want = original(q, k, v, mask)
    grads = torch.autograd.grad(want.square().sum(), (q, k, v))
    got = patched(q, k, v, mask)
    got_grads = torch.autograd.grad(got.square().sum(), (q, k, v))
    # float64, a softmax over 7 keys: agreement to rounding
    torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)
    for a, b in zip(got_grads, grads):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-10)


def test_the_kept_check_still_refuses_a_mask_of_another_shape():
    pytest.importorskip("torch")
    import torch

    fixed = _fix(CHECKED).text
    q = torch.randn(2, 3, 5, 8)
    k = v = torch.randn(2, 3, 7, 8)
    wrong = torch.zeros(1, 7, dtype=torch.bool)  # broadcastable, but not the scores' last two axes
    for code in (CHECKED, fixed):
        with pytest.raises(AssertionError):
            _load(code)["Heads"](24, 3)(q, k, v, wrong)


def test_an_if_with_a_side_effect_on_the_scores_is_left():
    # the scores handed to code outside (a list the module keeps): the fused path has none
    code = CHECKED.replace(
        "        assert mask.shape == sim.shape[2:]\n",
        "        assert mask.shape == sim.shape[2:]\n        SEEN.append(sim)\n",
    ).replace("def attend(", "SEEN = []\n\n\ndef attend(")
    result = _fix(code)
    assert result.text == code
    assert "does more than an attention step" in result.skipped[0][1]


def test_a_check_of_the_scores_values_is_left():
    code = CHECKED.replace("assert mask.shape == sim.shape[2:]", "assert not sim.isnan().any()")
    result = _fix(code)
    assert result.text == code
    assert "does more than an attention step" in result.skipped[0][1]


def test_a_whole_shape_read_after_an_additive_bias_is_left():
    # sim + bias may have more axes than q and k broadcast to: the check is not rewritten
    code = CHECKED.replace("def attend(q, k, v, scale=1.0, mask=None):", "def attend(q, k, v, bias, scale=1.0, mask=None):")
    code = code.replace(
        "    if mask is not None:\n",
        "    sim = sim + bias\n    if mask is not None:\n",
    ).replace("return attend(q, k, v, scale", "return attend(q, k, v, self.bias, scale").replace(
        "        self.heads = heads\n", "        self.heads = heads\n        self.bias = nn.Parameter(torch.zeros(2, 1, 1, 1, 1))\n"
    )
    result = _fix(code)
    assert "mask.shape == (torch.broadcast_shapes" not in result.text
    assert "assert mask.shape == sim.shape[2:]" in result.text
