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


# -- the SDPA fix keeps comments beside what they describe ---------------------------------------

COMMENTED = textwrap.dedent("""\
    import torch
    from torch import nn


    class Causal(nn.Module):
        def __init__(self, d, h):
            super().__init__()
            self.scale = (d // h) ** -0.5
            self.register_buffer("tri", torch.ones(16, 16, dtype=torch.bool).triu(1), persistent=False)

        def forward(self, q, k, v):
            n = q.shape[-2]
            q = q * self.scale

            # scores

            s = torch.einsum("b h i d, b h j d -> b h i j", q, k)

            # the future is hidden

            hide = self.tri[:n, :n]
            s = s.masked_fill(hide, -torch.finfo(s.dtype).max)

            # weights

            w = s.softmax(dim=-1)

            # mix the values

            out = torch.einsum("b h i j, b h j d -> b h i d", w, v)

            return out
""")


def _above(lines: list[str], needle: str) -> list[str]:
    at = next(i for i, line in enumerate(lines) if needle in line)
    block = []
    for line in reversed(lines[:at]):
        if not line.strip().startswith("#"):
            break
        block.insert(0, line.strip())
    return block


def test_comments_stay_above_the_statement_they_were_written_above():
    import torch

    fixed = fix_text(COMMENTED, "model.py", select_rules(RULES, ["ADP010"])).text
    lines = fixed.splitlines()
    assert "scaled_dot_product_attention(" in fixed
    # the mask line the new code writes again keeps its comment; the comments of the steps the
    # kernel replaces go above the kernel call, not above the mask line
    assert _above(lines, "hide = self.tri[:n, :n]") == ["# the future is hidden"]
    assert _above(lines, "out = scaled_dot_product_attention(") == ["# weights", "# mix the values"]
    assert "# scores" in fixed
    assert not any(line != line.rstrip() for line in lines)
    original, patched = {}, {}
    exec(compile(COMMENTED, "orig.py", "exec"), original)  # noqa: S102 (our own fixture)
    exec(compile(fixed, "fixed.py", "exec"), patched)  # noqa: S102
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 4, 10, 8) for _ in range(3))
    torch.testing.assert_close(patched["Causal"](32, 4)(q, k, v), original["Causal"](32, 4)(q, k, v))


def test_comments_of_code_not_written_again_all_go_above_the_new_code():
    # a mask built in place: no statement of the replaced range is written again
    code = COMMENTED.replace("hide = self.tri[:n, :n]\n        s = s.masked_fill(hide,",
                             "s = s.masked_fill(self.tri[:n, :n],")
    fixed = fix_text(code, "model.py", select_rules(RULES, ["ADP010"])).text
    lines = fixed.splitlines()
    call = next(i for i, line in enumerate(lines) if "scaled_dot_product_attention(" in line and "import" not in line)
    comments = [line.strip() for line in lines[:call] if line.strip().startswith("#")]
    assert comments == ["# scores", "# the future is hidden", "# weights", "# mix the values"]
