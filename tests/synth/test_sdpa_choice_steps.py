"""A step taken in one choice of a conditional expression whose other choice keeps the scores
(``sim = (sim + self.rel_pos(*sim.shape[-2:])) if self.use_rel_pos else sim``): the same as
``if self.use_rel_pos: sim = sim + ...``, which the fixer rewrites with the bias under the
flag (``attn_mask=<bias> if flag else None``); the scores' sizes the bias reads are q's and k's
lengths.  Each rewrite is checked numerically against the original with the flag on and off,
with as many queries as keys and with fewer.  Left alone, with the reason: the step in the
choice taken when the test fails, a bias reading
the scores' values, a test reading the scores."""

from __future__ import annotations

import pytest

from adopter.ruleset import load_rules, select_rules
from adopter.synth import fix_text

ADP010 = select_rules(load_rules(), ["ADP010"])

REL_BIAS = """\
import torch
from torch import nn, einsum


class PairBias(nn.Module):
    def __init__(self, heads, size=16):
        super().__init__()
        self.table = nn.Parameter(torch.randn(heads, size, size))

    def forward(self, rows, cols):
        return self.table[:, :rows, :cols]


class ChoiceAttention(nn.Module):
    def __init__(self, width=16, heads=2, use_bias=True):  # (numbers by default: a plain scale=, mend52)
        super().__init__()
        self.scale = (width // heads) ** -0.5
        self.use_bias = use_bias
        if use_bias:
            self.pair_bias = PairBias(heads)

    def forward(self, q, k, v):
        sim = einsum("... i d, ... j d -> ... i j", q, k)
        sim = (sim + self.pair_bias(*sim.shape[-2:])) if self.use_bias else sim  # choice-line
        sim = sim * self.scale
        attn = sim.softmax(dim=-1)
        return einsum("... i j, ... j d -> ... i d", attn, v)
"""

SCALE_CHOICE = """\
import torch
from torch import nn


class MaybeScaled(nn.Module):
    def __init__(self, width, scaled):
        super().__init__()
        self.scaled = scaled
        self.temperature = width ** 0.5

    def forward(self, q, k, v):
        w = torch.matmul(q, k.transpose(-1, -2))
        w = w / self.temperature if self.scaled else w
        w = torch.softmax(w, dim=-1)
        return torch.matmul(w, v)
"""


def _fix(code):
    return fix_text(code, "model.py", ADP010)


def _run(code, cls, args, q, k, v, train=False):
    import torch

    namespace = {}
    exec(compile(code, f"{cls}.py", "exec"), namespace)  # noqa: S102 (our own fixture)
    torch.manual_seed(1)
    module = namespace[cls](*args).double()
    module.train(train)
    q, k, v = (t.clone().requires_grad_(True) for t in (q, k, v))
    out = module(q, k, v)
    out.square().sum().backward()
    params = [p.grad for p in module.parameters()]
    return out, [q.grad, k.grad, v.grad, *params]


def _inputs(queries, keys, width=16, heads=2):
    import torch

    torch.manual_seed(0)
    q = torch.randn(2, heads, queries, width // heads, dtype=torch.float64)
    k = torch.randn(2, heads, keys, width // heads, dtype=torch.float64)
    v = torch.randn(2, heads, keys, width // heads, dtype=torch.float64)
    return q, k, v


def test_a_bias_chosen_by_a_conditional_expression_becomes_a_mask_under_the_flag():
    result = _fix(REL_BIAS)
    assert result.error is None and not result.skipped, result.skipped
    assert "scaled_dot_product_attention(" in result.text and "einsum(" not in result.text.split("class Choice")[1]
    # the scores' sizes read off q and k; the bias scaled as the scores are (added before the scale)
    assert "self.pair_bias(*(q.shape[-2], k.shape[-2])) * self.scale" in result.text
    assert "if self.use_bias" in result.text and "else None" in result.text
    # the same rewrite as the if-statement form of the same code
    as_if = REL_BIAS.replace(
        "        sim = (sim + self.pair_bias(*sim.shape[-2:])) if self.use_bias else sim  # choice-line\n",
        "        if self.use_bias:\n            sim = sim + self.pair_bias(*sim.shape[-2:])  # choice-line\n",
    )
    assert _fix(as_if).text.split("def forward(self, q, k, v):")[1] == result.text.split("def forward(self, q, k, v):")[1]


@pytest.mark.parametrize("use_bias", [True, False])
@pytest.mark.parametrize("queries, keys", [(6, 6), (5, 7)])
def test_the_rewritten_choice_computes_what_the_original_does(use_bias, queries, keys):
    pytest.importorskip("torch")
    import torch

    fixed = _fix(REL_BIAS).text
    assert "scaled_dot_product_attention(" in fixed
    q, k, v = _inputs(queries, keys)
    want, want_grads = _run(REL_BIAS, "ChoiceAttention", (16, 2, use_bias), q, k, v)
    got, got_grads = _run(fixed, "ChoiceAttention", (16, 2, use_bias), q, k, v)
    # float64, a softmax over at most 7 keys: agreement to rounding
    torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)
    for a, b in zip(got_grads, want_grads):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("scaled", [True, False])
def test_a_scale_chosen_by_a_conditional_expression(scaled):
    pytest.importorskip("torch")
    import torch

    result = _fix(SCALE_CHOICE)
    assert result.error is None and not result.skipped, result.skipped
    assert "self.temperature if self.scaled else 1.0" in result.text
    q, k, v = _inputs(5, 7)
    want, want_grads = _run(SCALE_CHOICE, "MaybeScaled", (16, scaled), q, k, v)
    got, got_grads = _run(result.text, "MaybeScaled", (16, scaled), q, k, v)
    torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)
    for a, b in zip(got_grads, want_grads):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-10)


def _reason(code):
    result = _fix(code)
    assert result.text == code
    assert len(result.skipped) == 1
    return result.skipped[0][1]


def test_the_step_in_the_choice_taken_when_the_test_fails_is_left_with_its_reason():
    code = REL_BIAS.replace(
        "(sim + self.pair_bias(*sim.shape[-2:])) if self.use_bias else sim",
        "sim if not self.use_bias else (sim + self.pair_bias(*sim.shape[-2:]))",
    )
    assert "runs when the test of its conditional expression fails" in _reason(code)


def test_a_conditional_expression_inside_an_if_is_not_read_as_a_mask():
    # two tests over one step: the choice is not folded into the mask; the if around it goes
    # to the original (as an if holding a bias step among other code does)
    code = REL_BIAS.replace(
        "        sim = (sim + self.pair_bias(*sim.shape[-2:])) if self.use_bias else sim  # choice-line\n",
        "        if q.shape[-2] > 1:\n"
        "            sim = (sim + self.pair_bias(*sim.shape[-2:])) if self.use_bias else sim  # choice-line\n",
    )
    fixed = _fix(code).text
    assert "attn_mask" not in fixed
    assert "        if q.shape[-2] > 1:\n            sim = einsum(" in fixed
    assert "        else:\n            return scaled_dot_product_attention(q, k, v, scale=self.scale)" in fixed


def test_a_bias_reading_the_scores_values_is_left():
    # a term computed from the scores' values is no additive mask (review45, mend47): the site
    # left is the path with the flag off, and the choice's statement reads the scores there
    code = REL_BIAS.replace("self.pair_bias(*sim.shape[-2:])", "sim.detach().mean(dim=-1, keepdim=True)")
    assert "it reads the scores (`sim`)" in _reason(code)


def test_a_bias_reading_the_whole_size_of_the_scores_is_left():
    # sim.size() is every axis: the leading ones are not q's and k's lengths
    code = REL_BIAS.replace("self.pair_bias(*sim.shape[-2:])", "self.pair_bias(*sim.size()[-2:])")
    assert "is computed by the attention" in _reason(code)


def test_a_test_reading_the_scores_is_left():
    code = REL_BIAS.replace("if self.use_bias else sim", "if sim.abs().amax() > 1 else sim")
    assert "reads a value of the attention" in _reason(code)
