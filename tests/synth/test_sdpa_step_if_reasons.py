"""ADP010's decline of an ``if`` around a mask step that does more than the step says which
statement does what (coqui glow-tts's block mask blended into the scores under ``if mask is not
None:`` was "does more than an attention step" and nothing else)."""

from __future__ import annotations

import textwrap

from sdpa_modules import RULES

from adopter.synth import fix_text

SOURCE = textwrap.dedent('''
    import torch
    from torch import nn
    import torch.nn.functional as F


    class Blended(nn.Module):
        def __init__(self, dim, heads):
            super().__init__()
            self.heads = heads
            self.window = 2
            self.qkv = nn.Linear(dim, dim * 3)

        def forward(self, x, mask=None):
            b, n, d = x.shape
            q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, -1).permute(2, 0, 3, 1, 4)
            scores = torch.matmul(q, k.transpose(-2, -1)) / 4.0
            if mask is not None:
                scores = scores.masked_fill(mask == 0, -1e4)
                EXTRA
            attn = F.softmax(scores, dim=-1)
            return torch.matmul(attn, v)
''')


def _reason(extra: str) -> str:
    result = fix_text(SOURCE.replace("EXTRA", extra), "attention.py", RULES)
    assert not result.applied and result.skipped, result.skipped
    return result.skipped[0][1]


BLEND = ("if TEST:\n"
         "                block = torch.ones_like(scores).triu(-self.window).tril(self.window)\n"
         "                scores = scores * block + -1e4 * (1 - block)")


def test_a_blend_of_the_scores_names_the_statement_and_the_value():
    # (an inner test that reads the scores: the guard cannot read it before the attention)
    reason = _reason(BLEND.replace("TEST", "scores.shape[-1] > self.window"))
    assert reason.startswith("the if at line 18 does more than an attention step: the statement at line 20 "
                             "assigns `scores`, a value of the attention"), reason


def test_a_blend_under_a_test_of_its_own_goes_to_the_original():
    # rafix31: the inner if's test reads no value of the attention, so the guard sends that
    # case to the original and the fused path takes the single fill (it was declined with the
    # reason above); checked against the original in float64, with and without the mask
    import torch

    code = SOURCE.replace("EXTRA", BLEND.replace("TEST", "self.window is not None"))
    result = fix_text(code, "attention.py", RULES)
    assert result.applied and "mask is not None and self.window is not None" in result.text
    namespace_a: dict = {}
    namespace_b: dict = {}
    exec(compile(code, "original", "exec"), namespace_a)  # noqa: S102 -- our own fixture
    exec(compile(result.text, "patched", "exec"), namespace_b)  # noqa: S102
    for window in (2, None):
        torch.manual_seed(0)
        a = namespace_a["Blended"](8, 2).double()
        b = namespace_b["Blended"](8, 2).double()
        b.load_state_dict(a.state_dict())
        a.window = b.window = window
        x = torch.randn(2, 5, 8, dtype=torch.float64)
        mask = torch.ones(2, 1, 5, 5, dtype=torch.float64)
        mask[1, ..., 3:] = 0
        for given in (mask, None):
            torch.testing.assert_close(b(x, given), a(x, given), rtol=0, atol=1e-12)


def test_a_read_of_the_scores_values_says_so():
    reason = _reason("peak = scores.amax()")
    assert reason == ("the if at line 18 does more than an attention step: the statement at line 20 reads "
                      "values of the attention (not only their shape or dtype)"), reason
