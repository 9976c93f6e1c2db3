"""Research attention declined for its context product in an ``elif`` arm, and for a read of
the scores' whole ``.size()`` after an in-place mask add (session 45, sites80).  The fixtures
are ours.

- The scores formed in one arm of an if / elif chain and the context product alone in the
  same arm of a second chain on the same tests (one module computing token attention or, on a
  flag, another attention over the channels): the second chain's first if is the region's last
  statement (``_context_elif``); the guard sends every other arm of both chains to the original.
  A match pairing one chain's arm with another arm of the other chain holds a test and its
  negation in the guard's ``or`` (``_contradiction`` now reads an elif term's parts): declined.
- ``attn += mask`` before a read of ``attn.size()``: sites80 read the size off q and k there
  (``_in_place_add``); review61 found the patch wrong for a boolean mask (``attn += bool``
  adds 0/1, SDPA drops the hidden keys: the guard lost its dtype term) and the lead withdrew
  it: in place or not, an add before the size read declines, as on main before.
"""

from __future__ import annotations

import pytest
from corpus_forms import FusedCalls, edit, float64_pair, found, rules, sdpa_fixed

from adopter.synth import fix_text

TWO_CHAINS = """\
import torch
import torch.nn as nn


class TokenOrChannel(nn.Module):
    def __init__(self, dim=8, heads=2, p=0.0, mode="tokens"):
        super().__init__()
        self.heads = heads
        self.scale = (dim // heads) ** -0.5
        self.mode = mode
        self.qkv = nn.Linear(dim, 3 * dim)
        self.drop = nn.Dropout(p)
        self.out = nn.Linear(dim, dim)

    def forward(self, x):
        b, n, c = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        if self.mode == "channels":
            w = (q.transpose(-2, -1) @ k) * self.scale
        elif self.mode == "tokens":
            w = (q @ k.transpose(-2, -1)) * self.scale
        w = w.softmax(dim=-1)
        w = self.drop(w)
        if self.mode == "channels":
            y = (w @ v.transpose(-2, -1)).transpose(-2, -1)
            y = y.permute(0, 2, 1, 3).reshape(b, n, c)
        elif self.mode == "tokens":
            y = (w @ v).transpose(1, 2).reshape(b, n, c)
        return self.out(y)
"""

IN_PLACE = """\
import torch
import torch.nn as nn


class BiasedAttn(nn.Module):
    def __init__(self, dim=8, heads=2, p=0.0):
        super().__init__()
        self.heads = heads
        self.scaling = (dim // heads) ** -0.5
        self.proj = nn.Linear(dim, 3 * dim)
        self.drop = nn.Dropout(p)

    def forward(self, x, attn_mask=None, position_bias=None):
        b, t, c = x.shape
        h = self.heads
        q, k, v = self.proj(x).reshape(b, t, 3, h, c // h).permute(2, 0, 3, 1, 4).reshape(3, b * h, t, c // h)
        q = q * self.scaling
        attn = torch.bmm(q, k.transpose(1, 2))
        if attn_mask is not None:
            attn += attn_mask.unsqueeze(0)
        if position_bias is not None:
            position_bias = position_bias.view(attn.size())
            attn = attn + position_bias
        attn = torch.softmax(attn, dim=-1)
        attn = self.drop(attn)
        out = torch.bmm(attn, v)
        return out.reshape(b, h, t, c // h).transpose(1, 2).reshape(b, t, c)
"""


def _fix(source: str):
    return fix_text(source, "model.py", rules("ADP010"))


def _fused(source: str) -> str:
    text = sdpa_fixed(source)  # (the one ADP010 rewrite applied)
    assert "scaled_dot_product_attention(" in text
    return text


def _same(out_a, out_b, inputs, a, b):
    import torch

    # float64, softmax over at most 8 keys of 4-wide products: a few roundings apart
    torch.testing.assert_close(out_b, out_a, rtol=1e-10, atol=1e-12)
    grads_a = torch.autograd.grad(out_a.sum(), [*inputs, *a.parameters()])
    grads_b = torch.autograd.grad(out_b.sum(), [*inputs, *b.parameters()])
    for ga, gb in zip(grads_a, grads_b):
        torch.testing.assert_close(gb, ga, rtol=1e-10, atol=1e-12)


# ------------------------------------------------------------------ the context in an elif arm

def test_the_context_in_an_elif_arm_is_fused_for_that_arm_alone():
    text = _fused(TWO_CHAINS)
    guard = text.split("def forward")[1].split("):\n")[1]
    assert 'self.mode == "channels"\n' in guard and 'or not (self.mode == "tokens")\n' in guard
    fast = text.split("else:")[-1]
    assert "scaled_dot_product_attention(\n                q, k, v," in fast
    assert ".transpose(1, 2).reshape(b, n, c)" in fast and "channels" not in fast


@pytest.mark.parametrize("train", [False, True])
@pytest.mark.parametrize("mode", ["tokens", "channels"])
def test_the_elif_context_computes_the_same(train, mode):
    torch = pytest.importorskip("torch")
    a, b = float64_pair(TWO_CHAINS, _fused(TWO_CHAINS), "TokenOrChannel", mode=mode)
    counter = FusedCalls(b)
    a.train(train)
    b.train(train)
    x = torch.randn(3, 5, 8, dtype=torch.float64, requires_grad=True)
    _same(a(x), b(x), [x], a, b)
    assert counter.calls == (1 if mode == "tokens" else 0)  # (the channel arm runs the original)


def test_dropout_in_training_reaches_the_fused_call():
    torch = pytest.importorskip("torch")
    _, b = float64_pair(TWO_CHAINS, _fused(TWO_CHAINS), "TokenOrChannel", p=0.5)
    seen: list = []
    namespace = type(b).forward.__globals__
    fused = namespace["scaled_dot_product_attention"]
    namespace["scaled_dot_product_attention"] = lambda *a, **kw: seen.append(kw["dropout_p"]) or fused(*a, **kw)
    x = torch.randn(2, 5, 8, dtype=torch.float64)
    b.train(True)
    b(x)
    b.train(False)
    b(x)
    assert seen == [0.5, 0.0]


def test_a_mode_of_neither_arm_fails_alike():
    torch = pytest.importorskip("torch")
    a, b = float64_pair(TWO_CHAINS, _fused(TWO_CHAINS), "TokenOrChannel", mode="both")
    x = torch.randn(3, 5, 8, dtype=torch.float64)
    with pytest.raises(UnboundLocalError):
        a(x)
    with pytest.raises(UnboundLocalError):
        b(x)


def test_the_channel_attention_is_never_paired_with_the_token_context():
    """Four matches: the channel scores with either context, the token scores with either.  Only
    the token scores with the token context is fused; a pairing across arms declines (the guard
    would always hold), the channel context (two statements in its arm) stays as it was."""
    result = _fix(TWO_CHAINS)
    assert len(result.applied) == 1
    assert "q.transpose(-2, -1)," not in result.text.split("else:")[-1]


def test_a_context_arm_on_another_test_declines():
    """The context's arm must test what the scores' arm tests: ``elif mode != "tokens"`` beside
    the scores' ``elif mode == "tokens"`` (and a third arm, ``elif mode == "both"``) made a fused
    path behind a guard that always holds -- a patch that never runs (review61)."""
    negated = edit(TWO_CHAINS, """        elif self.mode == "tokens":
            y = (w @ v)""", """        elif self.mode != "tokens":
            y = (w @ v)""")
    assert found(negated, "ADP010")
    assert _fix(negated).applied == []
    third = edit(TWO_CHAINS, "            y = (w @ v).transpose(1, 2).reshape(b, n, c)\n        return",
                 "            y = (w @ v).transpose(1, 2).reshape(b, n, c)\n"
                 "        elif self.mode == \"both\":\n            y = (w @ v).transpose(1, 2).reshape(b, n, c) * 2\n"
                 "        return")
    fixed = _fix(third)
    # (declined, or fused with the token arm's context alone: never the third arm's `* 2`)
    assert fixed.applied == [] or "* 2" not in fixed.text.split("else:")[-1]


def test_a_context_arm_that_does_more_still_declines():
    source = edit(TWO_CHAINS, "            y = (w @ v).transpose(1, 2).reshape(b, n, c)\n",
                  "            y = (w @ v).transpose(1, 2).reshape(b, n, c)\n            self.last = w\n")
    assert found(source, "ADP010")
    assert _fix(source).applied == []


def test_a_context_in_the_final_else_is_not_taken_as_an_elif_arm():
    """The product in an ``else`` (no test of its own): not this form; declined as before."""
    source = edit(TWO_CHAINS, '        elif self.mode == "tokens":\n            y =', '        else:\n            y =')
    assert found(source, "ADP010")
    assert all("scaled_dot_product_attention" not in t for t in [_fix(source).text.split("def forward")[-1]]) \
        or _fix(source).applied  # (either declined, or a patch that computes the same:)
    result = _fix(source)
    if result.applied:
        torch = pytest.importorskip("torch")
        for mode in ("tokens", "channels"):
            a, b = float64_pair(source, result.text, "TokenOrChannel", mode=mode)
            x = torch.randn(3, 5, 8, dtype=torch.float64, requires_grad=True)
            _same(a(x), b(x), [x], a, b)


# ------------------------------------------------------------------ .size() after an in-place add

def test_an_in_place_add_before_the_size_declines():
    assert found(IN_PLACE, "ADP010")
    assert _fix(IN_PLACE).applied == []


def test_an_out_of_place_add_before_the_size_still_declines():
    source = edit(IN_PLACE, "attn += attn_mask.unsqueeze(0)", "attn = attn + attn_mask.unsqueeze(0)")
    assert found(source, "ADP010")
    result = _fix(source)
    assert result.applied == []
