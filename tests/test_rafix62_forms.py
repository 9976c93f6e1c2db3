"""Research attention found but not fixed (session 39): fixer limits.  The fixtures are ours.

- A causal branch that checks the call's inputs (``assert mask is None``, PEER's product-key
  attention) before building its mask: an ``assert`` reading no value of the attention checks
  the inputs alone and binds nothing, so the fused path keeps it in the branch's order.  Exact
  in float64 for the causal and the masked build, train and eval (dropout off); it raises where
  the original raised.  An assert on the scores themselves still declines.
"""

from __future__ import annotations

import pytest
from corpus_forms import float64_pair, found, line_of, rules

from adopter.synth import fix_text

torch = pytest.importorskip("torch")

ASSERTED = """\
import torch
from torch import nn


class CausalKeyed(nn.Module):
    def __init__(self, causal=True):
        super().__init__()
        self.causal = causal
        self.dropout = nn.Dropout(0.0)

    def forward(self, q, k, v, mask=None):
        q = q * (q.shape[-1] ** -0.5)
        sim = torch.einsum("bihd,bjhd->bhij", q, k)
        if self.causal:
            assert mask is None
            i, j, device = *sim.shape[-2:], q.device
            causal_mask = torch.ones((i, j), device=device, dtype=torch.bool).triu(j - i + 1)
            sim = sim.masked_fill(causal_mask, -torch.finfo(sim.dtype).max)
        elif mask is not None:
            sim = sim.masked_fill(~mask[:, None, None, :], -torch.finfo(sim.dtype).max)
        attn = sim.softmax(dim=-1)
        attn = self.dropout(attn)
        return torch.einsum("bhij,bjhd->bhid", attn, v)
"""

# the assert reads the scores: a check of a value the fused call never forms
ON_SCORES = ASSERTED.replace("assert mask is None", "assert sim.isfinite().all()")
# the assert binds a name (a walrus): not a check alone
BINDING = ASSERTED.replace("assert mask is None", "assert (m := mask) is None")


def _fixed(source: str) -> str:
    return fix_text(source, "model.py", rules("ADP010")).text


def _skipped(source: str) -> list[str]:
    return [why for _, why in fix_text(source, "model.py", rules("ADP010")).skipped]


def test_a_causal_branch_asserting_on_its_inputs_is_fixed_with_the_assert_kept():
    assert [f.line for f in found(ASSERTED, "ADP010")] == [line_of(ASSERTED, "sim = torch.einsum(")]
    fixed = _fixed(ASSERTED)
    assert "scaled_dot_product_attention(" in fixed
    # the fused branch checks the inputs as the original does
    fused = fixed.split("scaled_dot_product_attention(", 1)[0].rsplit("else:\n", 1)[1]
    assert "assert mask is None" in fused


@pytest.mark.parametrize("causal", [True, False])
@pytest.mark.parametrize("train", [False, True])
@pytest.mark.parametrize("keys", [5, 7])
def test_the_asserted_causal_attention_computes_the_same(causal, train, keys):
    fixed = _fixed(ASSERTED)
    assert "scaled_dot_product_attention(" in fixed
    a, b = float64_pair(ASSERTED, fixed, "CausalKeyed", causal=causal)
    a.train(train)
    b.train(train)
    q = torch.randn(2, 5, 3, 8, dtype=torch.float64, requires_grad=True)
    k = torch.randn(2, keys, 3, 8, dtype=torch.float64, requires_grad=True)
    v = torch.randn(2, keys, 3, 8, dtype=torch.float64, requires_grad=True)
    mask = None
    if not causal:
        mask = torch.ones(2, keys, dtype=torch.bool)
        mask[1, -2:] = False  # two keys hidden in the second sample, no row hidden entirely
    out_a, out_b = a(q, k, v, mask), b(q, k, v, mask)
    # float64, softmax over at most 7 keys of 8-wide products: rounding far below these
    torch.testing.assert_close(out_b, out_a, rtol=1e-10, atol=1e-12)
    grads_a = torch.autograd.grad(out_a.sum(), (q, k, v))
    grads_b = torch.autograd.grad(out_b.sum(), (q, k, v))
    for ga, gb in zip(grads_a, grads_b):
        torch.testing.assert_close(gb, ga, rtol=1e-10, atol=1e-12)


def test_the_kept_assert_raises_where_the_original_raised():
    fixed = _fixed(ASSERTED)
    assert "scaled_dot_product_attention(" in fixed
    a, b = float64_pair(ASSERTED, fixed, "CausalKeyed", causal=True)
    q = torch.randn(1, 4, 2, 8, dtype=torch.float64)
    mask = torch.ones(1, 4, dtype=torch.bool)
    for module in (a, b):
        with pytest.raises(AssertionError):
            module(q, q, q, mask)


@pytest.mark.parametrize("source", [ON_SCORES, BINDING], ids=["reads-the-scores", "binds-a-name"])
def test_an_assert_that_is_more_than_an_input_check_still_declines(source):
    assert len(found(source, "ADP010")) == 1
    assert "scaled_dot_product_attention(" not in _fixed(source)
    assert any("does more than an attention step" in why for why in _skipped(source))


PICKED = """\
import torch
from torch import nn


class PickedAttention(nn.Module):
    def __init__(self, dim=8, mode="plain"):
        super().__init__()
        assert mode in ["plain", "halved"]
        self.mode = mode
        self.to_q = nn.Linear(dim, dim)
        self.to_k = nn.Linear(dim, dim)
        self.to_v = nn.Linear(dim, dim)

    def plain(self, q, k):
        w = torch.matmul(q, k)
        w = w.softmax(dim=-1)
        return w

    def halved(self, q, k):
        w = torch.matmul(q, k)
        w = w / w.shape[-1]
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

# written in place: ``getattr(self, self.mode)(q, k)``
IN_PLACE = PICKED.replace("        pick = getattr(self, self.mode)\n        w = pick(q, k)\n",
                          "        w = getattr(self, self.mode)(q, k)\n")
# the setting picks twice in the caller: the fused path would replace one of two calls
PICKED_TWICE = PICKED.replace("        return y\n", "        return y + pick(q, k).sum(-1, keepdim=True)\n")
# the picked helper handed other names than its parameters' own
RENAMED = PICKED.replace("        w = pick(q, k)\n", "        w = pick(q, k * 2)\n")


@pytest.mark.parametrize("source", [PICKED, IN_PLACE], ids=["local", "in-place"])
def test_a_helper_picked_by_a_setting_is_fixed_under_a_guard_on_the_setting(source):
    assert [f.line for f in found(source, "ADP010")] == [line_of(source, "w = torch.matmul(q, k)")]
    fixed = _fixed(source)
    assert "scaled_dot_product_attention(" in fixed
    # the other values of the setting pick other methods: they take the original
    assert "self.mode != 'plain'" in fixed
    # the helpers stay as they are, for the other values and other callers
    assert fixed.count("    def plain(self, q, k):\n        w = torch.matmul(q, k)\n        w = w.softmax(dim=-1)\n") == 1


@pytest.mark.parametrize("source", [PICKED, IN_PLACE], ids=["local", "in-place"])
@pytest.mark.parametrize("mode", ["plain", "halved"])
@pytest.mark.parametrize("train", [False, True])
def test_the_picked_attention_computes_the_same_for_every_value(source, mode, train):
    fixed = _fixed(source)
    assert "scaled_dot_product_attention(" in fixed
    a, b = float64_pair(source, fixed, "PickedAttention", mode=mode)
    a.train(train)
    b.train(train)
    x = torch.randn(2, 6, 8, dtype=torch.float64, requires_grad=True)
    out_a, out_b = a(x), b(x)
    # float64, softmax over 6 keys of 8-wide products: rounding far below these
    torch.testing.assert_close(out_b, out_a, rtol=1e-10, atol=1e-12)
    params_a = [x, *a.parameters()]
    params_b = [x, *b.parameters()]
    grads_a = torch.autograd.grad(out_a.sum(), params_a)
    grads_b = torch.autograd.grad(out_b.sum(), params_b)
    for ga, gb in zip(grads_a, grads_b):
        torch.testing.assert_close(gb, ga, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("source, why", [
    (PICKED_TWICE, "is called or named elsewhere in the file"),
    (RENAMED, "other than its parameters' own names"),
], ids=["picked-twice", "renamed-arguments"])
def test_a_setting_picked_helper_called_otherwise_still_declines(source, why):
    assert len(found(source, "ADP010")) == 1
    assert "scaled_dot_product_attention(" not in _fixed(source)
    assert any(why in reason for reason in _skipped(source))


def test_dispatched_calls_reads_a_pick_only_where_the_caller_leaves_the_setting_alone():
    import ast

    from adopter.synth.sdpa import _dispatched_calls

    def picks(text: str) -> list:
        func = ast.parse(text).body[0]
        return [(ast.unparse(call), attr) for call, attr in _dispatched_calls(func)]

    assert picks("def f(self, q, k):\n    pick = getattr(self, self.mode)\n    return pick(q, k)\n") == \
        [("pick(q, k)", "mode")]
    assert picks("def f(self, q, k):\n    return getattr(self, self.mode)(q, k)\n") == \
        [("getattr(self, self.mode)(q, k)", "mode")]
    # the setting changed by the caller between the pick and the guard; a pick bound twice
    assert picks("def f(self, q, k):\n    pick = getattr(self, self.mode)\n    self.mode = 'b'\n"
                 "    return pick(q, k)\n") == []
    assert picks("def f(self, q, k):\n    self.mode = 'b'\n    return getattr(self, self.mode)(q, k)\n") == []
    assert picks("def f(self, q, k):\n    pick = getattr(self, self.mode)\n    pick = self.other\n"
                 "    return pick(q, k)\n") == []
