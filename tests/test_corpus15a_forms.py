"""Forms found missing while checking the blind batch corpus15a (research-style
reimplementations of well-known architectures from eight packages new to the corpus): the two
halves of a packed projection taken with ``split`` instead of ``chunk`` --
``torch.split(h, h.shape[-1] // 2, dim=-1)``, ``h.split(h.size(-1) // 2, -1)``, or sizes
``[n, n]`` -- unpacked into two names, which is ``h.chunk(2, dim=-1)`` whenever the code runs
(an odd axis gives three parts and the unpacking fails; split sizes must add up to the axis).
The near-misses: unequal sizes, another axis, the size of another tensor, a third of the axis.
The fixtures are ours."""

from __future__ import annotations

import textwrap

import pytest
from corpus_forms import covered, findings

from adopter.ruleset import load_rules, select_rules
from adopter.synth import fix_text

RULES = load_rules()

GATED = textwrap.dedent("""\
    import torch
    from torch import nn
    import torch.nn.functional as F


    class PackedGate(nn.Module):
        def __init__(self, d, h):
            super().__init__()
            self.packed = nn.Linear(d, 2 * h, bias=False)
            self.out = nn.Linear(h, d, bias=False)
            self.act = nn.SiLU()

        def forward(self, x):
            both = self.packed(x)
            g, u = torch.split(both, both.shape[-1] // 2, dim=-1)
            return self.out(self.act(g) * u)  # functional-split


    class MethodSplit(nn.Module):
        def forward(self, both):
            u, g = both.split(both.size(-1) // 2, -1)
            return F.silu(g) * u  # method-split


    class ListSplit(nn.Module):
        def __init__(self, h):
            super().__init__()
            self.h = h
            self.act = nn.SiLU()

        def forward(self, both):
            g, u = torch.split(both, [self.h, self.h], dim=-1)
            return self.act(g) * u  # list-split
""")


def test_split_halves_of_a_packed_projection_are_a_swiglu():
    assert covered(GATED, "# functional-split", "ADP013")
    assert covered(GATED, "# method-split", "ADP013")
    assert covered(GATED, "# list-split", "ADP013")


def test_the_fix_passes_the_halves_and_computes_the_same():
    import torch

    fixed = fix_text(GATED, "model.py", select_rules(RULES, ["ADP013"])).text
    assert "liger_swiglu(g, u, self.act)" in fixed
    assert "liger_silu_mul(g, u)" in fixed
    # the split lines stay as written: the kernel takes the halves they give
    assert "torch.split(both, both.shape[-1] // 2, dim=-1)" in fixed
    original, patched = {}, {}
    exec(compile(GATED, "orig.py", "exec"), original)  # noqa: S102 (our own fixture)
    exec(compile(fixed, "fixed.py", "exec"), patched)  # noqa: S102
    torch.manual_seed(0)
    a = original["PackedGate"](8, 6)
    b = patched["PackedGate"](8, 6)
    b.load_state_dict(a.state_dict(), strict=True)
    x = torch.randn(3, 5, 8)
    torch.testing.assert_close(b(x), a(x))
    both = torch.randn(4, 12)
    torch.testing.assert_close(patched["MethodSplit"]()(both), original["MethodSplit"]()(both))
    torch.testing.assert_close(patched["ListSplit"](6)(both), original["ListSplit"](6)(both))
    assert fix_text(fixed, "model.py", select_rules(RULES, ["ADP013"])).text == fixed


@pytest.mark.parametrize("split", [
    "torch.split(both, [self.h, 2 * self.h], dim=-1)",  # unequal parts
    "torch.split(both, both.shape[1] // 2, dim=1)",  # another axis
    "torch.split(both, both.shape[-1] // 2)",  # the default axis is the first
    "torch.split(both, other.shape[-1] // 2, dim=-1)",  # the size of another tensor
    "both.split(both.shape[-1] // 3, -1)",  # not a half
    "both.split([self.h, self.h], -1)[0], other",  # not two parts unpacked
])
def test_splits_that_are_not_the_halves_of_the_last_axis_are_not_a_swiglu(split):
    code = GATED.split("class MethodSplit")[0].replace(
        "g, u = torch.split(both, both.shape[-1] // 2, dim=-1)", f"g, u = {split}").replace(
        "def forward(self, x):", "def forward(self, x, other=None):").replace(
        "self.act = nn.SiLU()", "self.act = nn.SiLU()\n        self.h = d")
    assert f"g, u = {split}" in code
    assert not findings(code, "ADP013")


ROTARY = textwrap.dedent("""\
    import torch


    def rotate_half(x):
        x1, x2 = x.split(x.shape[-1] // 2, dim=-1)
        return torch.cat((-x2, x1), dim=-1)


    def apply_rope(q, k, cos, sin):
        q = q * cos + rotate_half(q) * sin  # rope-q
        k = k * cos + rotate_half(k) * sin
        return q, k
""")


def test_split_halves_make_a_rotate_half_too():
    assert covered(ROTARY, "# rope-q", "ADP014")


def test_a_rotation_of_unequal_split_parts_is_no_rotate_half():
    code = ROTARY.replace("x.split(x.shape[-1] // 2, dim=-1)", "x.split([16, 48], dim=-1)")
    assert not findings(code, "ADP014")
