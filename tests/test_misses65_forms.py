"""SwiGLU over projections that are calls with extra arguments (session 42, helper misses65).
The fixtures are ours.

- ADP013: one projection function held by the module (a quantized GEMM an extension provides,
  handed in or picked in ``__init__``) called twice on the same input with two sets of
  weights, ``act(gemm(x, w_gate, s_gate)) * gemm(x, w_up, s_up)`` with act SiLU (autoawq's
  fused MLP): the SiLU-mul product of two projections of x.  The fix keeps both calls as
  written and fuses the product of their named outputs; written inline, the calls would lose
  their extra arguments in the kernel call, so that form is reported, not fixed (and never
  rendered as ``F.linear(x, w)``, which another alternative's target says).
  Near-misses: the up call of another input, a fixed ReLU gate.
"""

from __future__ import annotations

import textwrap

import torch
from corpus_forms import float64_pair, found, line_of, rules

from adopter.synth import fix_text

QUANT_MLP = textwrap.dedent("""\
    import torch
    import torch.nn.functional as F
    from torch import nn


    class QuantMLP(nn.Module):
        def __init__(self, d=8, h=16, gemm=None, activation=ACT):
            super().__init__()
            self.register_buffer("w_gate", torch.randn(h, d))
            self.register_buffer("s_gate", torch.rand(h) + 0.5)
            self.register_buffer("w_up", torch.randn(h, d))
            self.register_buffer("s_up", torch.rand(h) + 0.5)
            self.down = nn.Linear(h, d)
            self.gemm = gemm
            self.activation = activation

        def forward(self, x, y=None):
            BODY
""")

NAMED = """gate = self.gemm(x, self.w_gate, self.s_gate)
        up = self.gemm(x, self.w_up, self.s_up)
        return self.down(self.activation(gate) * up)  # product"""
INLINE = "return self.down(self.activation(self.gemm(x, self.w_gate, self.s_gate)) * self.gemm(x, self.w_up, self.s_up))"


def _mlp(body: str, act: str = "F.silu") -> str:
    return QUANT_MLP.replace("ACT", act).replace("BODY", body)


def _gemm(x, w, s):
    return (x @ w.t()) * s


def test_one_projection_function_twice_on_the_same_input_is_a_swiglu():
    code = _mlp(NAMED)
    hits = found(code, "ADP013")
    assert [f.line <= line_of(code, "# product") <= f.end_line for f in hits] == [True]


def test_the_fix_keeps_both_calls_and_computes_the_same():
    code = _mlp(NAMED)
    result = fix_text(code, "model.py", rules("ADP013"))
    assert result.applied, result.skipped
    fixed = result.text
    assert "liger_swiglu(gate, up, self.activation)" in fixed
    assert "gate = self.gemm(x, self.w_gate, self.s_gate)" in fixed
    assert "up = self.gemm(x, self.w_up, self.s_up)" in fixed
    assert "functional.linear" not in fixed
    a, b = float64_pair(code, fixed, "QuantMLP", gemm=_gemm)
    x = torch.randn(3, 8, dtype=torch.float64, requires_grad=True)
    xb = x.detach().clone().requires_grad_(True)
    ya, yb = a(x), b(xb)
    # float64, the same operations on the CPU fallback: equal to rounding
    torch.testing.assert_close(yb, ya, rtol=1e-12, atol=1e-12)
    ya.sum().backward()
    yb.sum().backward()
    torch.testing.assert_close(xb.grad, x.grad, rtol=1e-12, atol=1e-12)


def test_inline_calls_with_extra_arguments_are_reported_not_rendered_as_f_linear():
    code = _mlp(INLINE)
    assert len(found(code, "ADP013")) == 1
    result = fix_text(code, "model.py", rules("ADP013"))
    assert not result.applied
    assert "functional.linear" not in result.text
    assert [why for _, why in result.skipped] == [
        "the target needs $g, an intermediate value the fused code no longer computes"]


def test_near_misses_up_of_another_input_and_a_relu_gate():
    other = NAMED.replace("up = self.gemm(x,", "up = self.gemm(y,")
    assert found(_mlp(other), "ADP013") == []
    assert found(_mlp(NAMED, act="F.relu"), "ADP013") == []
