"""A scale step under an ``if`` (OpenAI GPT's ``if self.scale: w = w / math.sqrt(v.size(-1))``,
a constructor flag): the scores are scaled exactly when the test holds, which ``scale=`` can
say (``1 / math.sqrt(v.size(-1)) if self.scale else 1.0``).  The rewrite is checked numerically
with the flag on and off.  Left alone: an ``if`` that does more than the scale, and a test that
reads a value the attention computes."""

from __future__ import annotations

import pytest

from adopter.ruleset import load_rules, select_rules
from adopter.synth import fix_text

ADP010 = select_rules(load_rules(), ["ADP010"])

GPT_STYLE = """\
import math
import torch
from torch import nn


class Attention(nn.Module):
    def __init__(self, n_ctx, scale=False):
        super().__init__()
        self.register_buffer("bias", torch.tril(torch.ones(n_ctx, n_ctx)).view(1, 1, n_ctx, n_ctx))
        self.scale = scale
        self.drop = nn.Dropout(0.1)

    def forward(self, q, k, v):
        w = torch.matmul(q, k)
        if self.scale:
            w = w / math.sqrt(v.size(-1))
        b = self.bias[:, :, : w.size(-2), : w.size(-1)]
        w = w * b + -1e9 * (1 - b)
        w = nn.Softmax(dim=-1)(w)
        w = self.drop(w)
        return torch.matmul(w, v)
"""


def _fix(code):
    return fix_text(code, "model.py", ADP010)


def test_a_scale_under_a_flag_becomes_a_scale_chosen_by_the_flag():
    result = _fix(GPT_STYLE)
    assert result.error is None and "scaled_dot_product_attention(" in result.text
    assert "scale=1 / math.sqrt(v.size(-1)) if self.scale else 1.0" in result.text


@pytest.mark.parametrize("flag", [True, False])
def test_the_rewrite_computes_what_the_original_does_with_the_flag_on_and_off(flag):
    torch = pytest.importorskip("torch")
    fixed = _fix(GPT_STYLE).text
    assert "scaled_dot_product_attention(" in fixed
    original, patched = {}, {}
    exec(compile(GPT_STYLE, "orig.py", "exec"), original)  # noqa: S102 (our own fixture)
    exec(compile(fixed, "fixed.py", "exec"), patched)  # noqa: S102
    torch.manual_seed(0)
    q = torch.randn(2, 3, 6, 8, dtype=torch.float64)
    k = torch.randn(
        2, 3, 8, 6, dtype=torch.float64
    )  # already transposed, as GPT's split_heads(k=True)
    v = torch.randn(2, 3, 6, 8, dtype=torch.float64)
    a, b = (
        original["Attention"](6, scale=flag).eval(),
        patched["Attention"](6, scale=flag).eval(),
    )
    torch.testing.assert_close(b(q, k, v), a(q, k, v), rtol=1e-10, atol=1e-10)


def test_an_if_that_does_more_than_the_scale_is_left():
    code = GPT_STYLE.replace(
        "            w = w / math.sqrt(v.size(-1))\n",
        "            w = w / math.sqrt(v.size(-1))\n            self.scaled = True\n",
    )
    result = _fix(code)
    assert "scaled_dot_product_attention(" not in result.text


def test_a_test_reading_the_scores_is_left():
    code = GPT_STYLE.replace(
        "        if self.scale:\n", "        if w.abs().max() > 10:\n"
    )
    result = _fix(code)
    assert "scaled_dot_product_attention(" not in result.text
