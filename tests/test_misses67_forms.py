"""Dev-corpus misses in forms research code writes elsewhere too (session 43, helper misses67).
The fixtures are ours.

- ADP013: the gate and up projections take further arguments besides the input (an adapter
  list, a LoRA scale: ``self.gate_proj(x, scale=s)``, ``self.up_proj(x, s)``; exllamav2's
  ``.forward(x, loras=loras)``, diffusers-style LoRA-compatible layers): the kernel fuses the
  SiLU and the product of the two outputs, whatever else the projections were given.  The fix
  declines with a reason rather than render a projection without its argument (and an in-place
  ``y *= up`` is declined as before); without further arguments the same module is fixed.
  Near-misses: the up projection of another input, a fixed ReLU gate.
"""

from __future__ import annotations

import textwrap

import torch
from corpus_forms import float64_pair, found, line_of, rules

from adopter.synth import fix_text

LORA_MLP = textwrap.dedent("""\
    import torch
    import torch.nn.functional as F
    from torch import nn


    class ScaledLinear(nn.Linear):
        def forward(self, x, scale=1.0):
            return super().forward(x) * scale


    class MLP(nn.Module):
        def __init__(self, d=8, h=16):
            super().__init__()
            self.gate_proj = ScaledLinear(d, h, bias=False)
            self.up_proj = ScaledLinear(d, h, bias=False)
            self.down_proj = nn.Linear(h, d, bias=False)

        def forward(self, x, y=None, scale=0.5):
            BODY
""")

NAMED = """gate = self.gate_proj(x, scale=scale)
        up = self.up_proj(x, scale)
        h = ACT(gate) * up  # product
        return self.down_proj(h)"""
IN_PLACE = """h = ACT(self.gate_proj(x, scale=scale))
        h *= self.up_proj(x, scale)  # product
        return self.down_proj(h)"""


def _mlp(body: str, act: str = "F.silu") -> str:
    return LORA_MLP.replace("BODY", body.replace("ACT", act))


def test_projections_with_extra_arguments_are_a_swiglu():
    for body in (NAMED, IN_PLACE):
        code = _mlp(body)
        hits = found(code, "ADP013")
        assert [f.line <= line_of(code, "# product") <= f.end_line for f in hits] == [True], body


def test_the_fix_declines_rather_than_drop_an_argument_of_a_projection():
    code = _mlp(NAMED)
    result = fix_text(code, "model.py", rules("ADP013"))
    assert not result.applied
    assert result.text == code
    assert [why for _, why in result.skipped] == ["the fused call would drop the argument `scale=scale`"]


def test_projections_without_further_arguments_are_still_fixed_and_compute_the_same():
    code = _mlp(NAMED.replace("(x, scale=scale)", "(x)").replace("(x, scale)", "(x)"))
    result = fix_text(code, "model.py", rules("ADP013"))
    assert result.applied, result.skipped
    assert "liger_silu_mul(self.gate_proj(x), self.up_proj(x))" in result.text
    a, b = float64_pair(code, result.text, "MLP")
    x = torch.randn(3, 8, dtype=torch.float64, requires_grad=True)
    xb = x.detach().clone().requires_grad_(True)
    ya, yb = a(x), b(xb)
    # float64, the same operations on the CPU fallback: equal to rounding
    torch.testing.assert_close(yb, ya, rtol=1e-12, atol=1e-12)
    ya.sum().backward()
    yb.sum().backward()
    torch.testing.assert_close(xb.grad, x.grad, rtol=1e-12, atol=1e-12)


def test_an_in_place_product_is_reported_and_the_fix_declines_with_a_reason():
    code = _mlp(IN_PLACE)
    result = fix_text(code, "model.py", rules("ADP013"))
    assert not result.applied
    assert result.text == code
    assert [why for _, why in result.skipped] == ["the last fused operation is an augmented assignment"]


def test_near_misses_up_of_another_input_and_a_relu_gate():
    other = NAMED.replace("self.up_proj(x, scale)", "self.up_proj(y, scale)")
    assert found(_mlp(other), "ADP013") == []
    assert found(_mlp(NAMED, act="F.relu"), "ADP013") == []
    assert found(_mlp(IN_PLACE, act="torch.sigmoid"), "ADP013") == []
