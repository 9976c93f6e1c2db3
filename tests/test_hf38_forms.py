"""Forms from hf38's blind batch of transformers 5.23.0 model files: SwiGLU products written
with a scalar on the gate's pre-activation alone (falcon_h1's MuP `gate_multiplier`), and SwiGLU
products computed on float32 copies of both operands and cast back (beam's MLP over two
projections, and its experts' helper over the halves of one packed projection).  Our own
fixtures, each with near-misses."""

from __future__ import annotations

import textwrap

import torch
from corpus_forms import finding_at, float64_pair, found, rules

from adopter.synth.core import fix_text

# ---------- ADP013: silu(gate(x) * s) * up(x): the kernel's first operand is the scaled gate

SCALED_GATE = textwrap.dedent("""\
    import torch
    from torch import nn


    class MLP(nn.Module):
        def __init__(self, d=8, h=16, gate_multiplier=0.5):
            super().__init__()
            self.gate_proj = nn.Linear(d, h, bias=False)
            self.up_proj = nn.Linear(d, h, bias=False)
            self.down_proj = nn.Linear(h, d, bias=False)
            self.act_fn = nn.SiLU()
            self.gate_multiplier = gate_multiplier

        def forward(self, x, y=None):
            y = self.up_proj(x) * self.act_fn(self.gate_proj(x) * self.gate_multiplier)  # product
            return self.down_proj(y)
""")


def test_a_scaled_gate_alone_is_still_swiglu_and_fixed_exactly():
    assert finding_at(SCALED_GATE, "ADP013", "# product") is not None
    result = fix_text(SCALED_GATE, "model.py", rules("ADP013"))
    assert "liger_swiglu(self.gate_proj(x)*self.gate_multiplier, self.up_proj(x), self.act_fn)" in "".join(result.text.split()).replace(",", ", ")
    a, b = float64_pair(SCALED_GATE, result.text, "MLP")
    x = torch.randn(3, 5, 8, dtype=torch.float64)
    torch.testing.assert_close(b(x), a(x), rtol=0, atol=0)


def test_a_scaled_gate_with_the_up_projection_of_another_input_is_no_swiglu():
    code = SCALED_GATE.replace("self.up_proj(x) * self.act_fn", "self.up_proj(y) * self.act_fn")
    assert not found(code, "ADP013")


def test_a_scaled_gelu_gate_is_no_swiglu():
    code = SCALED_GATE.replace("self.act_fn = nn.SiLU()", "self.act_fn = nn.GELU()")
    assert not found(code, "ADP013")


# ---------- ADP013: act(gate.float()) * up.float(), cast back: the kernel over float32 copies

FP32_MLP = textwrap.dedent("""\
    import torch
    from torch import nn


    class MLP(nn.Module):
        def __init__(self, d=8, h=16):
            super().__init__()
            self.gate_proj = nn.Linear(d, h, bias=False)
            self.up_proj = nn.Linear(d, h, bias=False)
            self.down_proj = nn.Linear(h, d, bias=False)
            self.act_fn = nn.SiLU()

        def forward(self, x, y=None):
            gate = self.gate_proj(x)
            up = self.up_proj(x)
            activated = (self.act_fn(gate.float()) * up.float()).to(gate.dtype)  # product
            return self.down_proj(activated)
""")

FP32_EXPERTS = textwrap.dedent("""\
    import torch
    from torch import nn
    from torch.nn import functional as F


    class Experts(nn.Module):
        def __init__(self, e=2, d=8, h=16):
            super().__init__()
            self.gate_up_proj = nn.Parameter(torch.randn(e, 2 * h, d))
            self.down_proj = nn.Parameter(torch.randn(e, d, h))
            self.act_fn = nn.SiLU()

        def forward(self, x, k=0):
            current = self._apply_gate(F.linear(x, self.gate_up_proj[k]))
            return F.linear(current, self.down_proj[k])

        def _apply_gate(self, gate_up):
            gate, up = gate_up.chunk(2, dim=-1)
            return (self.act_fn(gate.float()) * up.float()).to(gate.dtype)  # product
""")


def test_swiglu_on_float32_copies_of_two_projections_is_found():
    assert finding_at(FP32_MLP, "ADP013", "# product") is not None
    # each projection upcast where it is computed: fixed with the projections inline
    inline = FP32_MLP.replace("(self.act_fn(gate.float()) * up.float()).to(gate.dtype)",
                              "(self.act_fn(self.gate_proj(x).float()) * self.up_proj(x).float()).to(x.dtype)")
    inline = inline.replace("        gate = self.gate_proj(x)\n        up = self.up_proj(x)\n", "")
    assert finding_at(inline, "ADP013", "# product") is not None
    fixed = "".join(fix_text(inline, "model.py", rules("ADP013")).text.split())
    assert "liger_swiglu(self.gate_proj(x).float(),self.up_proj(x).float(),self.act_fn)" in fixed


def test_swiglu_on_float32_copies_of_a_packed_projections_halves_is_found_and_fixed_exactly():
    assert finding_at(FP32_EXPERTS, "ADP013", "# product") is not None
    result = fix_text(FP32_EXPERTS, "model.py", rules("ADP013"))
    assert "liger_swiglu(gate.float(), up.float(), self.act_fn)" in result.text
    for dtype in (torch.float32, torch.bfloat16):
        original, patched = {}, {}
        exec(compile(FP32_EXPERTS, "orig.py", "exec"), original)  # noqa: S102 (our own fixture)
        exec(compile(result.text, "fixed.py", "exec"), patched)  # noqa: S102
        torch.manual_seed(0)
        a = original["Experts"]().to(dtype)
        b = patched["Experts"]().to(dtype)
        b.load_state_dict(a.state_dict(), strict=True)
        x = torch.randn(3, 8, dtype=dtype)
        # the same float32 computation, cast back to the input's dtype: equal bit for bit
        torch.testing.assert_close(b(x), a(x), rtol=0, atol=0)


def test_float32_copies_of_two_inputs_or_a_gelu_gate_are_no_swiglu():
    two_inputs = FP32_MLP.replace("up = self.up_proj(x)", "up = self.up_proj(y)")
    assert not found(two_inputs, "ADP013")
    gelu = FP32_MLP.replace("self.act_fn = nn.SiLU()", "self.act_fn = nn.GELU()")
    assert not found(gelu, "ADP013")
    gelu_experts = FP32_EXPERTS.replace("self.act_fn = nn.SiLU()", "self.act_fn = nn.GELU()")
    assert not found(gelu_experts, "ADP013")


def test_named_float32_projections_are_fixed_by_name_and_a_dtype_read_after_stays_defined():
    # `.to(gate.dtype)` reads the gate's dtype, not its values: the kernel applies; the fix
    # reads the named projections, whose statements stay
    assert finding_at(FP32_MLP, "ADP013", "# product") is not None
    result = fix_text(FP32_MLP, "model.py", rules("ADP013"))
    assert "liger_swiglu(gate.float(),up.float(),self.act_fn)).to(gate.dtype)" in "".join(result.text.split())
    assert "gate = self.gate_proj(x)" in result.text
    for dtype in (torch.float32, torch.bfloat16):
        original, patched = {}, {}
        exec(compile(FP32_MLP, "orig.py", "exec"), original)  # noqa: S102 (our own fixture)
        exec(compile(result.text, "fixed.py", "exec"), patched)  # noqa: S102
        torch.manual_seed(0)
        a = original["MLP"]().to(dtype)
        b = patched["MLP"]().to(dtype)
        b.load_state_dict(a.state_dict(), strict=True)
        x = torch.randn(3, 8, dtype=dtype)
        torch.testing.assert_close(b(x), a(x), rtol=0, atol=0)


def test_a_fix_that_would_delete_a_name_whose_dtype_is_read_after_is_refused_with_why():
    # the plain form's target computes the projections inline: deleting `gate = ...` would
    # leave `.to(gate.dtype)` undefined, so the site is reported and left as it is
    plain = FP32_MLP.replace("(self.act_fn(gate.float()) * up.float()).to(gate.dtype)",
                             "(self.act_fn(gate) * up).to(gate.dtype)")
    assert finding_at(plain, "ADP013", "# product") is not None
    result = fix_text(plain, "model.py", rules("ADP013"))
    assert result.text == plain
    assert any("read again" in why for _, why in result.skipped)


def test_a_value_read_after_is_no_site():
    # the gate's values read again after the product: the kernel would have to keep them
    for read in ("gate.sum()", "gate", "gate[0]", "gate.float()"):
        code = FP32_MLP.replace("return self.down_proj(activated)", f"return self.down_proj(activated) + {read}")
        assert not found(code, "ADP013"), read
