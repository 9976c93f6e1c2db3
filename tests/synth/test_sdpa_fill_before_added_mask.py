"""ADP010 where a finite fill (-10000, no float's extreme) comes before an added float mask
(rafix42, session 30: d3rlpy's decision transformer, older GPT-2 code): ``masked_fill(causal == 0,
-10000)`` then ``+ padding[:, None, None, :] * -10000``.  The fused call's mask is the fill made
float plus the added mask, so its filled keys hold scores + fill + added where the original
holds fill + added.  Where a row keeps a key the added mask favours as much as any filled key,
the filled keys lie |fill| below the row's best in both and weigh nothing (as beside a finite
fill alone); where a row's kept keys are all hidden by the added mask and a filled key is not
(left padding), the original weighs the filled keys uniformly and the fused call by their
scores.  The patch's guard sends such a call to the original: some row whose added mask is
larger at a filled key than at every kept one.  Checked in float64 against the original, eval
and training, forward and backward, counting the fused calls.  Near-misses stay declined: a
bias added before the fill (the kept keys no longer carry the added mask alone), an added mask
computed in the attention (the guard cannot read it before), a fill that is no large negative
number.  The fixtures are ours."""

from __future__ import annotations

import textwrap

import pytest

torch = pytest.importorskip("torch")

from sdpa_modules import RULES, Counter, assert_same_step, load, sdpa_fixed  # noqa: E402

from adopter.synth import fix_text  # noqa: E402

F64 = torch.float64

FILL_THEN_ADD = textwrap.dedent('''
    import math

    import torch
    import torch.nn.functional as F
    from torch import nn


    class CausalAttention(nn.Module):
        def __init__(self, context):
            super().__init__()
            self.register_buffer("causal", torch.tril(torch.ones(context, context)).view(1, 1, context, context))

        def forward(self, q, k, v, padding):
            t = q.shape[-2]
            scores = torch.matmul(q, k.transpose(-2, -1)) / math.sqrt(q.shape[-1])
            scores = scores.masked_fill(self.causal[..., :t, :t] == 0, -10000)
            scores = scores + padding[:, None, None, :] * -10000
            probs = F.softmax(scores, dim=-1)
            return torch.matmul(probs, v)
''')


def _paddings(t: int) -> dict:
    right = torch.zeros(3, t, dtype=F64)
    right[0, t - 2:] = 1  # padded keys at the end: every row keeps its first key
    left = torch.zeros(3, t, dtype=F64)
    left[1, :2] = 1  # padded at the start: rows 0 and 1 keep only padded keys, later keys are not
    whole = torch.zeros(3, t, dtype=F64)
    whole[2] = 1  # a sequence padded whole: every key equally hidden
    # (whole: the original since rafix49 wherever gradients are wanted, as in both steps here --
    # the added `padding * -10000` hides every key of the sequence's rows, where SDPA's float32
    # CPU backward recomputes the weights from a log-sum-exp rounded at 1e4: off by about 2e-4)
    return {"none": (torch.zeros(3, t, dtype=F64), True), "right": (right, True), "left": (left, False),
            "whole": (whole, False), "soft": (torch.rand(3, t, dtype=F64) * 1e-3, None)}


@pytest.mark.parametrize("padding", ["none", "right", "left", "whole", "soft"])
def test_the_rewrite_computes_what_the_original_does(padding):
    fixed = sdpa_fixed(FILL_THEN_ADD)
    assert ".amax(-1)" in fixed  # the rows' guard on the added mask
    original, patched = load(FILL_THEN_ADD, "original"), load(fixed, "patched")
    counter = Counter(patched)
    a, b = original["CausalAttention"](8), patched["CausalAttention"](8)
    torch.manual_seed(0)
    q, k, v = (torch.randn(3, 2, 6, 4, dtype=F64) for _ in range(3))
    mask, fused = _paddings(6)[padding]
    for training in (False, True):
        a.train(training)
        b.train(training)
        before = counter.calls
        assert_same_step(a, b, [q, k, v], padding=mask)
        if fused is not None:
            assert counter.calls - before == (1 if fused else 0)


def test_left_padding_differs_in_the_fused_call():
    """The guard is needed: without it the fused call's output differs on the left-padded rows."""
    original = load(FILL_THEN_ADD, "original")["CausalAttention"](8)
    torch.manual_seed(0)
    q, k, v = (torch.randn(3, 2, 6, 4, dtype=F64) for _ in range(3))
    mask, _ = _paddings(6)["left"]
    causal = torch.zeros(6, 6, dtype=F64).masked_fill(torch.ones(6, 6).tril() == 0, -10000)
    fused = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=causal + mask[:, None, None, :] * -10000)
    assert not torch.allclose(fused, original(q, k, v, mask))


@pytest.mark.parametrize("source", [
    # a bias added before the fill: the kept keys carry it beside the added mask
    FILL_THEN_ADD.replace("scores = scores.masked_fill(", "scores = scores + bias\n        scores = scores.masked_fill(")
    .replace("def forward(self, q, k, v, padding):", "def forward(self, q, k, v, padding, bias):"),
    # the added mask computed in the attention: the guard cannot read it before the region
    FILL_THEN_ADD.replace("scores = scores + padding[:, None, None, :] * -10000",
                          "scores = scores + (scores > 50) * -10000"),
    # a fill that is no large negative number
    FILL_THEN_ADD.replace("== 0, -10000)", "== 0, -1.0)"),
])
def test_near_misses_stay_declined(source):
    assert source != FILL_THEN_ADD
    result = fix_text(source, "attention.py", RULES)
    if "(scores > 50)" in source:
        # mend49: a term that reads the scores' values is no mask; here it sits under no
        # condition, so no path is attention: no finding, nothing rewritten (mend50)
        assert result.text == source and not result.applied and not result.skipped
        return
    assert not result.applied and result.skipped
