"""Forms found while checking the blind batch of research61 (LLM decoders, quantization
toolkits' reference models and fine-tuning kits' patched attention in plain torch).  The
fixtures are ours.

- A layer built and moved or cast in the same expression (``nn.Linear(d, h).to(dtype)``,
  ``nn.Conv2d(...).cuda()``, ``.half()``, ``.requires_grad_(False)``): those nn.Module methods
  return the module itself, so the attribute holds the layer the inner call builds.  Was read
  as an unknown value, so its pairs (Linear -> GELU, Conv -> BatchNorm, the q/k/v triple) were
  missed.  Near-misses: a tensor moved the same way (``torch.randn(d, h).to(dtype)``, used as a
  matmul weight) is no layer; a moved Linear followed by a ReLU is no GELU site.
"""

from __future__ import annotations

from corpus_forms import found, line_of, rules

from adopter.synth import fix_text

MOVED = """\
import torch
from torch import nn


class Block(nn.Module):
    def __init__(self, d, dtype=torch.float32):
        super().__init__()
        self.fc1 = torch.nn.Linear(d, 4 * d, bias=True).to(dtype)
        self.fc2 = torch.nn.Linear(4 * d, d, bias=True).to(dtype=dtype)
        self.act = torch.nn.GELU()

    def forward(self, x):
        x = self.fc1(x)
        x = self.act(x)
        return self.fc2(x)


class ConvBlock(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, padding=1).float()
        self.bn = nn.BatchNorm2d(c).requires_grad_(True)

    def forward(self, x):
        return torch.relu(self.bn(self.conv(x)))


class Attention(nn.Module):
    def __init__(self, d, dtype=torch.float32):
        super().__init__()
        self.q = nn.Linear(d, d).to(dtype)
        self.k = nn.Linear(d, d).to(dtype)
        self.v = nn.Linear(d, d).to(dtype)

    def forward(self, x):
        q, k, v = self.q(x), self.k(x), self.v(x)
        return torch.softmax(q @ k.transpose(-2, -1), dim=-1) @ v
"""

NEAR = """\
import torch
from torch import nn


class TensorWeight(nn.Module):
    def __init__(self, d, dtype=torch.float32):
        super().__init__()
        self.w = nn.Parameter(torch.randn(d, d).to(dtype))
        self.act = nn.GELU()

    def forward(self, x):
        return self.act(x @ self.w)


class MovedRelu(nn.Module):
    def __init__(self, d, dtype=torch.float32):
        super().__init__()
        self.fc = nn.Linear(d, d).to(dtype)
        self.act = nn.ReLU()

    def forward(self, x):
        return self.act(self.fc(x))
"""


def test_a_moved_linear_before_gelu_is_found():
    spans = [(f.line, f.end_line) for f in found(MOVED, "ADP006")]
    at = line_of(MOVED, "x = self.act(x)")
    assert len(spans) == 1 and spans[0][0] <= at <= spans[0][1]


def test_a_cast_conv_before_a_moved_batchnorm_is_found():
    lines = [(f.line, f.end_line) for f in found(MOVED, "ADP007")]
    at = line_of(MOVED, "torch.relu(self.bn(")
    assert len(lines) == 1 and lines[0][0] <= at <= lines[0][1]


def test_moved_projections_of_one_input_are_a_qkv_triple():
    spans = [(f.line, f.end_line) for f in found(MOVED, "ADP009")]
    at = line_of(MOVED, "q, k, v = self.q(x)")
    assert len(spans) == 1 and spans[0][0] <= at <= spans[0][1]


def test_a_moved_tensor_and_a_moved_linear_before_relu_are_no_sites():
    assert found(NEAR, "ADP006") == []


def test_the_fix_of_a_moved_linear_keeps_the_computation():
    import torch

    fixed = fix_text(MOVED, "model.py", rules("ADP006")).text
    assert "bias_gelu(x, self.fc1, self.act)" in fixed
    original, patched = {}, {}
    exec(compile(MOVED, "orig.py", "exec"), original)  # noqa: S102 (our own fixture)
    exec(compile(fixed, "fixed.py", "exec"), patched)  # noqa: S102
    torch.manual_seed(0)
    a = original["Block"](16).double()
    b = patched["Block"](16).double()
    b.load_state_dict(a.state_dict(), strict=True)
    x = torch.randn(3, 5, 16, dtype=torch.float64)
    # float64, 16- and 64-term dot products around an erf: equal to rounding
    torch.testing.assert_close(b(x), a(x), rtol=0, atol=1e-12)
