"""Activations called as functions (``F.silu(gate) * up``, ``F.gelu(fc(x), approximate=...)``):
ADP013 and ADP006 fix them with the function forms of their kernels (``liger_silu_mul``,
``linear_gelu``), which take no activation object, so the patch passes no function as a value.

Each module below is written here (no project's code), patched by the real ``fix_text`` and
run side by side with the original in float64 on CPU, forward and backward.  The kernels'
CPU path is the original expression (``F.silu(gate) * up``; ``F.gelu(F.linear(x, W, b))``),
so the outputs agree to float64 rounding of a length-16 matmul; a GELU written as a formula in
the file's own function becomes the built-in ``F.gelu`` of the same variant, equal to float64
rounding too (rtol 1e-12 would show a wrong variant, ~1e-4 apart, or a lost operand by many
orders of magnitude).
"""

from __future__ import annotations

import pytest
import torch

from adopter.ruleset import load_rules
from adopter.synth import fix_text

RULES = {r.id: r for r in load_rules()}
DIM, HIDDEN = 16, 24

HEADER = """
import torch
import torch.nn.functional as F
from torch import nn
"""

# name -> (rule, source of a class Model(nn.Module) built as Model(DIM, HIDDEN), kernel called)
CASES = {
    "silu-two-projections": ("ADP013", """
class Model(nn.Module):
    def __init__(self, d, h):
        super().__init__()
        self.w1 = nn.Linear(d, h, bias=False)
        self.w2 = nn.Linear(h, d, bias=False)
        self.w3 = nn.Linear(d, h, bias=False)

    def forward(self, x):
        return self.w2(F.silu(self.w1(x)) * self.w3(x))
""", "liger_silu_mul"),
    "silu-named-steps-up-first": ("ADP013", """
class Model(nn.Module):
    def __init__(self, d, h):
        super().__init__()
        self.fc_1 = nn.Linear(d, h)
        self.fc_2 = nn.Linear(d, h)
        self.proj = nn.Linear(h, d)

    def forward(self, x):
        x_fc_2 = self.fc_2(x)
        x_fc_1 = self.fc_1(x)
        x = x_fc_2 * torch.nn.functional.silu(x_fc_1)
        return self.proj(x)
""", "liger_silu_mul"),
    "silu-packed-chunk": ("ADP013", """
class Model(nn.Module):
    def __init__(self, d, h):
        super().__init__()
        self.w12 = nn.Linear(d, 2 * h)
        self.w3 = nn.Linear(h, d)

    def forward(self, x):
        x1, x2 = self.w12(x).chunk(2, dim=-1)
        hidden = F.silu(x1) * x2
        return self.w3(hidden)
""", "liger_silu_mul"),
    "silu-batched-experts": ("ADP013", """
class Model(nn.Module):
    def __init__(self, d, h):
        super().__init__()
        self.w1 = nn.Parameter(torch.randn(3, d, h) / d ** 0.5)
        self.w3 = nn.Parameter(torch.randn(3, d, h) / d ** 0.5)

    def forward(self, x):
        x = x.reshape(3, -1, x.shape[-1])
        return F.silu(torch.bmm(x, self.w1)) * torch.bmm(x, self.w3)
""", "liger_silu_mul"),
    "gelu-plain": ("ADP006", """
class Model(nn.Module):
    def __init__(self, d, h):
        super().__init__()
        self.fc = nn.Linear(d, h)
        self.out = nn.Linear(h, d)

    def forward(self, x):
        return self.out(F.gelu(self.fc(x)))
""", "linear_gelu"),
    "gelu-approximate-attribute": ("ADP006", """
class Model(nn.Module):
    def __init__(self, d, h, approximate="tanh"):
        super().__init__()
        self.fc = nn.Linear(d, h)
        self.proj = nn.Linear(h, d)
        self.approximate = approximate

    def forward(self, x):
        x = self.fc(x)
        x = F.gelu(x, approximate=self.approximate)
        return self.proj(x)
""", "linear_gelu"),
    "geglu-gate-product": ("ADP006", """
class Model(nn.Module):
    def __init__(self, d, h):
        super().__init__()
        self.fc_1 = nn.Linear(d, h)
        self.fc_2 = nn.Linear(d, h)
        self.proj = nn.Linear(h, d)

    def forward(self, x):
        x_fc_1 = self.fc_1(x)
        x_fc_2 = self.fc_2(x)
        x = F.gelu(x_fc_1, approximate="tanh") * x_fc_2
        return self.proj(x)
""", "linear_gelu"),
    "gelu-formula-functions": ("ADP006", """
import math


def gelu(x):
    return x * 0.5 * (1.0 + torch.erf(x / math.sqrt(2.0)))


def gelu_new(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))


class Model(nn.Module):
    def __init__(self, d, h):
        super().__init__()
        self.dense = nn.Linear(d, h)
        self.fc = nn.Linear(h, d)

    def forward(self, x):
        x = gelu(self.dense(x))
        return gelu_new(self.fc(x))
""", "linear_gelu"),
}


def _load(text: str, name: str) -> dict:
    namespace: dict = {"__name__": name}
    exec(compile(text, f"<{name}>", "exec"), namespace)
    return namespace


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("training", [True, False])
def test_function_form_patch_computes_the_original(case, training):
    rule_id, body, kernel = CASES[case]
    source = HEADER + body
    patched = fix_text(source, "model.py", [RULES[rule_id]])
    assert {f.rule for f in patched.applied} == {rule_id} and not patched.skipped, patched.skipped
    assert f"{kernel}(" in patched.text and "import adopter\n" not in patched.text
    # no function is passed as a value: the activation's name is gone from the fused call
    assert "F.silu" not in patched.text and "F.gelu" not in patched.text
    assert "functional.silu" not in patched.text
    original, new = _load(source, "original"), _load(patched.text, "patched")
    torch.manual_seed(0)
    old = original["Model"](DIM, HIDDEN).double().train(training)
    fresh = new["Model"](DIM, HIDDEN).double().train(training)
    fresh.load_state_dict(old.state_dict(), strict=True)
    x = torch.randn(3, 5, DIM, dtype=torch.float64)
    a, b = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    y_old, y_new = old(a), fresh(b)
    torch.testing.assert_close(y_new, y_old, rtol=1e-12, atol=1e-12)
    y_old.square().sum().backward()
    y_new.square().sum().backward()
    torch.testing.assert_close(b.grad, a.grad, rtol=1e-12, atol=1e-12)
    for (name, p_old), (_, p_new) in zip(old.named_parameters(), fresh.named_parameters()):
        torch.testing.assert_close(p_new.grad, p_old.grad, rtol=1e-12, atol=1e-12, msg=name)


@pytest.mark.parametrize("call, reported", [
    ("F.silu(self.gate(x), inplace=True) * self.up(x)", True),  # overwrites the gate: not the kernel's
    # the flag by position is the same flag (research45: read as F.silu's inplace=True)
    ("F.silu(self.gate(x), True) * self.up(x)", True),
    ("F.silu(self.gate(x), **self.kw) * self.up(x)", False),
])
def test_silu_calls_with_arguments_the_kernel_does_not_take_are_not_fixed(call, reported):
    source = HEADER + f"""
class Model(nn.Module):
    def __init__(self, d, h):
        super().__init__()
        self.gate = nn.Linear(d, h)
        self.up = nn.Linear(d, h)
        self.kw = {{}}

    def forward(self, x):
        return {call}
"""
    patched = fix_text(source, "model.py", [RULES["ADP013"]])
    assert patched.applied == [] and patched.text == source
    assert [f.rule for f, _ in patched.skipped] == (["ADP013"] if reported else [])
    if reported:
        assert "inplace" in patched.skipped[0][1]
