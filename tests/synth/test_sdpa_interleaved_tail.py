"""Two attentions interleaved statement by statement (issue 12, session 48, sites97): both score
products, one ``if pad is not None:`` masking both, both softmaxes and dropouts, then both value
products (slp's symmetric cross-attention is written so).  The first attention's patch used to
keep the second's statements in both arms of its guard, leaving the second's steps in two arms
and its value product after them, which no later round could take.  Where the second's
statements commute with the first's (they read and assign nothing the first's statements do,
the if's test is read again unchanged, and no two swapped statements both have effects: the
dropouts keep their order), they now run after the first's guarded region on both paths, and
the second round fuses the second attention too.

The module is written for this test.  Original and patch run side by side in float64, eval and
training (dropout 0), with and without the mask, forward and backward, counting the fused
calls (two per forward); with a hook on the dropout the guard takes the original statements,
and there the dropouts draw in the original's order (equal to the bit with dropout on).  Look-
alikes: a second attention reading the first's scores, and dropouts in the other order, keep
their statements where they were."""

from __future__ import annotations

import textwrap

import pytest

torch = pytest.importorskip("torch")

from adopter.synth import fix_text  # noqa: E402
from sdpa_modules import RULES, Counter, assert_same_step, load  # noqa: E402


CROSS = textwrap.dedent('''
    import torch
    import torch.nn.functional as F
    from torch import nn


    class Cross(nn.Module):
        def __init__(self, width, p=0.0):
            super().__init__()
            self.width = width
            self.to_qa = nn.Linear(width, width)
            self.to_kva = nn.Linear(width, 2 * width)
            self.to_qb = nn.Linear(width, width)
            self.to_kvb = nn.Linear(width, 2 * width)
            self.dropout = nn.Dropout(p)

        def forward(self, a, b, pad=None):
            qa = self.to_qa(a)
            ka, va = self.to_kva(a).chunk(2, dim=-1)
            qb = self.to_qb(b)
            kb, vb = self.to_kvb(b).chunk(2, dim=-1)
            sa = (qb @ ka.transpose(-2, -1)) * self.width ** -0.5
            sb = (qa @ kb.transpose(-2, -1)) * self.width ** -0.5
            if pad is not None:
                sa = sa.masked_fill(pad[:, None, :], float("-inf"))
                sb = sb.masked_fill(pad[:, None, :], float("-inf"))
            sa = sa.softmax(dim=-1)
            sa = self.dropout(sa)
            sb = sb.softmax(dim=-1)
            sb = self.dropout(sb)
            oa = sa @ va
            ob = sb @ vb
            return torch.cat([oa + b, ob + a], dim=-1)
''')


def _fixed(source: str):
    result = fix_text(source, "attention.py", RULES)
    assert result.error is None
    assert fix_text(result.text, "attention.py", RULES).text == result.text  # a second fix is a no-op
    return result


def _pair(source: str, fixed: str, p: float = 0.0):
    original, patched = load(source, "original"), load(fixed, "patched")
    counter = Counter(patched) if "scaled_dot_product_attention" in patched else type("None", (), {"calls": 0})()
    torch.manual_seed(1)
    a = original["Cross"](8, p).to(torch.float64)
    b = patched["Cross"](8, p).to(torch.float64)
    b.load_state_dict(a.state_dict())
    return a, b, counter


def _inputs():
    torch.manual_seed(0)
    x = torch.randn(3, 5, 8, dtype=torch.float64)
    y = torch.randn(3, 5, 8, dtype=torch.float64)
    pad = torch.zeros(3, 5, dtype=torch.bool)
    pad[0, 3:] = True
    pad[2, 1:] = True
    return x, y, pad


def test_both_interleaved_attentions_are_fused():
    result = _fixed(CROSS)
    assert [f.rule for f in result.applied] == ["ADP010", "ADP010"], result.skipped
    assert result.text.count("scaled_dot_product_attention(") == 2  # (two calls)
    # the second attention's statements left the first one's arms: its mask in an if of its own
    assert result.text.count("if pad is not None:") == 2


@pytest.mark.parametrize("masked", [True, False])
def test_the_two_fused_attentions_compute_what_the_original_does(masked):
    fixed = _fixed(CROSS).text
    a, b, counter = _pair(CROSS, fixed)
    x, y, pad = _inputs()
    kwargs = {"pad": pad} if masked else {}
    for training in (False, True):
        a.train(training)
        b.train(training)
        before = counter.calls
        assert_same_step(a, b, [x, y], **kwargs)
        assert counter.calls == before + 2


def test_the_original_arms_draw_the_dropouts_in_the_original_order():
    # (a hook on the dropout sends both attentions to their original statements: with dropout on
    # in training, the same seed gives the very same masks only if the draws keep their order)
    fixed = _fixed(CROSS).text
    a, b, counter = _pair(CROSS, fixed, p=0.5)
    for module in (a, b):
        module.dropout.register_forward_hook(lambda mod, args, out: None)
    x, y, pad = _inputs()
    a.train()
    b.train()
    torch.manual_seed(3)
    out_a = a(x, y, pad=pad)
    torch.manual_seed(3)
    out_b = b(x, y, pad=pad)
    assert counter.calls == 0
    assert torch.equal(out_a, out_b)


def _second_round_declined(source: str) -> None:
    assert source != CROSS
    result = _fixed(source)
    assert len(result.applied) <= 1
    fixed = result.text
    a, b, counter = _pair(source, fixed)
    x, y, pad = _inputs()
    for training in (False, True):
        a.train(training)
        b.train(training)
        before = counter.calls
        assert_same_step(a, b, [x, y], pad=pad)
        assert counter.calls <= before + 1


def test_a_second_attention_reading_the_first_ones_scores_stays_in_place():
    # (the second's mask reads the first's scores: it cannot run after the first's region)
    _second_round_declined(CROSS.replace(
        'sb = sb.masked_fill(pad[:, None, :], float("-inf"))',
        'sb = sb.masked_fill(pad[:, None, :], float("-inf")) + sa.detach()'))


def test_dropouts_drawn_in_the_other_order_stay_in_place():
    # (the second's dropout draws before the first's: moving it after would swap the draws)
    source = CROSS.replace("        sa = self.dropout(sa)\n        sb = sb.softmax(dim=-1)\n"
                           "        sb = self.dropout(sb)\n",
                           "        sb = sb.softmax(dim=-1)\n        sb = self.dropout(sb)\n"
                           "        sa = self.dropout(sa)\n")
    _second_round_declined(source)
