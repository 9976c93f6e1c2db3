"""review51's ADP013 projections (session 43, mend57).  The fixtures are ours.

ADP013's one-function gate/up form (one callable applied to x twice, a weight each) needs the
callable to be a projection of x.  Three real projections were refused: a function or module
casting the weight to x's dtype (``w.to(x.dtype)`` reads x's metadata, not its values: the
result stays linear in x), and an extension's registered op (``torch.ops.<ns>.<op>``), which the
file cannot read and counts like another module's callable.  Look-alikes stay silent:
``torch.mul``, ``torch.maximum``, aten's element-wise ``mul``, a same-file element-wise product,
and a cast function that also scales by a value of x.
"""

from __future__ import annotations

import pytest
from corpus_forms import finding_at, float64_pair, found, rules

from adopter.synth import fix_text

torch = pytest.importorskip("torch")

SWIGLU = """\
import torch
import torch.nn.functional as F
from torch import nn


class GatedFF(nn.Module):
    def __init__(self, d=8, h=16):
        super().__init__()
        self.w1 = nn.Parameter(torch.randn(h, d) / 4)
        self.w3 = nn.Parameter(torch.randn(h, d) / 4)
        self.out = nn.Linear(h, d)
        self.proj = PROJ

    def forward(self, x):
        a = self.proj(x, self.w1)
        b = self.proj(x, self.w3)
        return self.out(F.silu(a) * b)  # gated


def cast_matmul(x, w):
    return torch.matmul(x, w.to(x.dtype).t())


def cast_product(x, w):
    return x * w.to(x.dtype).sum()


def cast_matmul_by_norm(x, w):
    return torch.matmul(x, w.to(x.dtype).t()) * x.norm()


class CastLinear(nn.Module):
    def forward(self, x, w):
        return F.linear(x, w.to(device=x.device, dtype=x.dtype))


class CastScale(nn.Module):
    def forward(self, x, w):
        return F.linear(x, w.to(x.dtype)) * x.abs().max()
"""


@pytest.mark.parametrize("proj", ["cast_matmul", "CastLinear()", "torch.ops._C.gptq_gemm",
                                  "torch.ops.my_ext.int4_gemm.default"])
def test_a_projection_reading_only_the_inputs_metadata_or_an_extension_op_is_a_site(proj):
    assert finding_at(SWIGLU.replace("PROJ", proj), "ADP013", "# gated") is not None


@pytest.mark.parametrize("proj", ["torch.mul", "torch.maximum", "torch.ops.aten.mul", "torch.ops.quantized.mul",
                                  "cast_product", "cast_matmul_by_norm", "CastScale()"])
def test_an_element_wise_or_input_scaled_callable_stays_silent(proj):
    assert found(SWIGLU.replace("PROJ", proj), "ADP013") == []


@pytest.mark.parametrize("proj", ["cast_matmul", "CastLinear()"])
def test_the_cast_projection_patch_matches_the_original(proj):
    code = SWIGLU.replace("PROJ", proj)
    result = fix_text(code, "model.py", rules("ADP013"))
    assert [f.rule for f in result.applied] == ["ADP013"], result.skipped
    fixed = result.text
    original, patched = float64_pair(code, fixed, "GatedFF")
    x = torch.randn(3, 5, 8, dtype=torch.float64, requires_grad=True)
    y = x.detach().clone().requires_grad_(True)
    out_a, out_b = original(x), patched(y)
    torch.testing.assert_close(out_b, out_a, rtol=1e-10, atol=1e-12)
    out_a.square().sum().backward()
    out_b.square().sum().backward()
    torch.testing.assert_close(y.grad, x.grad, rtol=1e-10, atol=1e-12)
