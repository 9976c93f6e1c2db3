"""Research first-sight misses of session 35, read by what the code computes (misses49).  The
fixtures are ours.

- A ``baddbmm`` whose ``beta`` is a local name the ``if`` just before sets to 0 on one path and
  to 1 on a path that zero-fills the input (GPT-BigCode's CPU workaround: ``torch.empty`` with
  beta 0 on an accelerator, ``zeros_like`` with beta 1 on the CPU): on every path the input
  adds nothing, so the scores are ``alpha * (q @ k)`` (structure/zero_input.py).  Near-misses:
  the nonzero-beta path keeps a non-zero input (a bias), the zeros are written to after, beta
  a parameter.
"""

from __future__ import annotations

import pytest
import torch
from corpus_forms import found, line_of, rules

from adopter.synth import fix_text

ZEROED_INPUT = """\
import torch
from torch import nn


class FoldedAttention(nn.Module):
    def __init__(self, heads, head_dim):
        super().__init__()
        self.heads = heads
        self.scale = head_dim ** -0.5

    def forward(self, q, k, v):
        b, h, t, d = q.shape
        q = q.reshape(b * h, t, d)
        kt = k.reshape(b * h, t, d).transpose(1, 2)
        scores = torch.empty((b * h, t, t), device=q.device, dtype=q.dtype)
        if q.device.type == "cpu":
            scores = torch.zeros_like(scores)
            beta = 1
        else:
            beta = 0
        scores = torch.baddbmm(scores, q, kt, beta=beta, alpha=self.scale)
        probs = torch.softmax(scores, dim=-1)
        return torch.bmm(probs, v.reshape(b * h, t, d)).view(b, h, t, d)
"""


def _covers(code: str, rule: str, needle: str) -> bool:
    at = line_of(code, needle)
    return any(f.line <= at <= f.end_line for f in found(code, rule))


def test_baddbmm_on_zeros_or_with_beta_zero_is_the_scaled_product():
    assert _covers(ZEROED_INPUT, "ADP010", "probs = torch.softmax")


def test_the_fix_of_the_zeroed_input_attention_computes_the_same():
    result = fix_text(ZEROED_INPUT, "model.py", rules("ADP010"))
    assert result.applied and "scaled_dot_product_attention" in result.text
    original, patched = {}, {}
    exec(compile(ZEROED_INPUT, "orig.py", "exec"), original)  # noqa: S102 (our own fixture)
    exec(compile(result.text, "fixed.py", "exec"), patched)  # noqa: S102
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 3, 7, 8, dtype=torch.float64) for _ in range(3))
    want = original["FoldedAttention"](3, 8)(q, k, v)
    got = patched["FoldedAttention"](3, 8)(q, k, v)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)  # (float64, 7 keys)


@pytest.mark.parametrize("change", [
    # the beta-1 path adds a bias, not zeros
    ("scores = torch.zeros_like(scores)", "scores = torch.ones_like(scores)"),
    # the zeros written to after they are made
    ("            beta = 1\n", "            beta = 1\n            scores.add_(1.0)\n"),
    # beta set on one path only: its other value comes from before the if
    ("        else:\n            beta = 0\n", "        else:\n            pass\n"),
])
def test_a_beta_whose_input_may_add_something_is_no_scaled_product(change):
    code = ZEROED_INPUT.replace(*change)
    assert code != ZEROED_INPUT
    assert found(code, "ADP010") == []


def test_a_beta_parameter_is_no_scaled_product():
    code = ZEROED_INPUT.replace("def forward(self, q, k, v):", "def forward(self, q, k, v, beta=0):")
    code = code.replace("            beta = 1\n", "            pass\n").replace("            beta = 0\n", "            pass\n")
    assert found(code, "ADP010") == []
