"""One-query attention over keys-first scores whose fill runs in float32 under the mask's if
(issue 12, session 47, sites88): ``s = torch.matmul(keys, x.unsqueeze(-1)).squeeze(-1)``, then
under ``if pad is not None:`` ``s = s.float().masked_fill_(pad.eq(0), -inf).type_as(s)``, the
softmax and ``torch.matmul(p.unsqueeze(1), keys).squeeze(1)`` -- the seq2seq form the
singletons reading (structure/singletons.py) was written for.  Three readings let it through:

- the rank guard reads ``x.unsqueeze(-1)`` (a negative axis parses as a unary minus) as x at
  one rank less;
- ``type_as(s)`` casts back to the dtype of the product itself: the squeeze the graph folds into
  the product leaves ``s`` the output of no node, but the statement assigns it the product
  through reshapes alone, which keep its dtype;
- the upcast and its cast back in one statement under the mask's if: for float32 scores the
  round trip changes nothing, so the fused path is taken only where q, k and v are float32 (in
  float64 the ``.float()`` rounds the scores first, which the fused call would not do).

The modules are written for this test.  The original and the patch run side by side, forward and
backward, with and without the mask, counting the fused calls.  An upcast under the if that is
never cast back stays declined; a round trip with more than the fill in it is no mask step, and
its masked case goes to the original."""

from __future__ import annotations

import textwrap

import pytest

torch = pytest.importorskip("torch")

from adopter.synth import fix_text  # noqa: E402
from sdpa_modules import RULES, Counter, assert_same_step, load, sdpa_fixed  # noqa: E402


LUONG = textwrap.dedent('''
    import torch
    import torch.nn.functional as F
    from torch import nn


    class OneQuery(nn.Module):
        def __init__(self, width):
            super().__init__()
            self.proj = nn.Linear(width, width)

        def forward(self, state, keys, pad=None):
            x = self.proj(state)
            s = torch.matmul(keys, x.unsqueeze(-1)).squeeze(-1)
            if pad is not None:
                s = s.float().masked_fill_(pad.eq(0), float("-inf")).type_as(s)
            p = F.softmax(s, dim=-1)
            return torch.matmul(p.unsqueeze(1), keys).squeeze(1)
''')


def _inputs(dtype, batch=3, length=6, width=4):
    torch.manual_seed(0)
    state = torch.randn(batch, width, dtype=dtype)
    keys = torch.randn(batch, length, width, dtype=dtype)
    pad = torch.ones(batch, length, dtype=torch.long)
    pad[0, 4:] = 0
    pad[2, 1:] = 0
    return state, keys, pad


def _pair(source, dtype):
    fixed = sdpa_fixed(source)
    original, patched = load(source, "original"), load(fixed, "patched")
    counter = Counter(patched)
    torch.manual_seed(1)
    a = original["OneQuery"](4).to(dtype)
    b = patched["OneQuery"](4).to(dtype)
    b.load_state_dict(a.state_dict())
    return fixed, a, b, counter


def test_the_keys_first_recast_under_the_mask_if_is_fixed_with_a_float32_guard():
    fixed = sdpa_fixed(LUONG)
    guard, fast = fixed.split("else:")[0], fixed.split("else:")[-1]
    assert "x.dim() != 2" in guard and "keys.dim() != 3" in guard  # (the rank the squeezes assume)
    assert "keys.dtype != torch.float32" in guard  # (the round trip is exact in float32 alone)
    assert "scaled_dot_product_attention(" in fast and ".float()" not in fast and "type_as" not in fast


@pytest.mark.parametrize("masked", [True, False])
def test_the_fused_path_computes_what_the_original_does_in_float32(masked):
    _, a, b, counter = _pair(LUONG, torch.float32)
    state, keys, pad = _inputs(torch.float32)
    for training in (False, True):
        a.train(training)
        b.train(training)
        before = counter.calls
        assert_same_step(a, b, [state, keys], pad=pad if masked else None)
        assert counter.calls == before + 1


def test_float64_goes_to_the_original_and_agrees_exactly():
    _, a, b, counter = _pair(LUONG, torch.float64)
    state, keys, pad = _inputs(torch.float64)
    out_a, out_b = a(state, keys, pad), b(state, keys, pad)
    assert counter.calls == 0
    assert torch.equal(out_a, out_b)


def test_a_recast_that_rounds_float64_would_differ_from_the_fused_call():
    # (why the guard: the original's float32 round trip changes float64 scores)
    state, keys, pad = _inputs(torch.float64)
    s = torch.matmul(keys, state.unsqueeze(-1)).squeeze(-1)
    rounded = s.float().masked_fill_(pad.eq(0), float("-inf")).type_as(s)
    assert not torch.equal(rounded.masked_fill(pad.eq(0), 0), s.masked_fill(pad.eq(0), 0))


def test_an_upcast_never_cast_back_stays_declined():
    # the softmax would run in float32 only when there is a mask
    source = LUONG.replace(".type_as(s)", "")
    assert source != LUONG
    result = fix_text(source, "attention.py", RULES)
    assert result.error is None and not result.applied


def test_more_than_the_fill_in_the_round_trip_sends_the_masked_case_to_the_original():
    # (a scale between the upcast and the cast back: the if is no mask step, the guard sends
    # every masked call to the original; the fused path runs only without the mask)
    source = LUONG.replace("s.float().masked_fill_", "(s.float() * 2).masked_fill_")
    assert source != LUONG
    fixed = sdpa_fixed(source)
    assert "pad is not None" in fixed.split("else:")[0]
    _, a, b, counter = _pair(source, torch.float64)
    state, keys, pad = _inputs(torch.float64)
    assert_same_step(a, b, [state, keys], pad=pad)
    assert counter.calls == 0
    assert_same_step(a, b, [state, keys], pad=None)
    assert counter.calls == 1
