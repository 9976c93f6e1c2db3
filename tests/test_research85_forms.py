"""Forms found while checking the blind batch research85 (research model code on PyPI: protein,
RNA and single-cell language models, molecular and structure models).  The fixtures are ours.

- ADP014: rotate-half RoPE written per half, ``cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin])``,
  whose halves come from ``torch.split(x, n, dim=-1)`` with ``n`` a local name bound to half the
  last axis, through ``shape = x.shape`` and ``n = shape[-1] // 2`` (a FLASH protein language
  model's ``rope()``).  The split was read as the halves only when the size was written in place
  (``x.shape[-1] // 2``).  Near-misses: the same split at half of another tensor's last axis, or
  at half of x's first axis, gives no halves of x and is not reported.
- ADP006: a same-file ``nn.Linear`` subclass whose forward is ``F.linear(x, self.get_weight(),
  self.bias)`` (a spectral-normalised Linear of a single-cell transformer): the Linear's
  computation with its own bias on a weight it derives from its own parameters.  Its output
  into GELU is a bias-GELU site, reported and left to a hand fix (the kernel would not run the
  reparametrised weight as written).  Near-miss: a forward whose weight reads the input is no
  Linear and is not reported.
"""

from __future__ import annotations

from corpus_forms import found, line_of

ROPE = """\
import torch
from torch import nn


def rope(x):
    shape = x.shape
    half_size = SIZE // 2
    freq = torch.arange(half_size).type_as(x) / float(half_size)
    position = torch.arange(shape[-2]).type_as(x)
    sinusoid = torch.einsum("n,d->nd", position, 10000 ** -freq)
    sin, cos = torch.sin(sinusoid), torch.cos(sinusoid)
    x1, x2 = torch.split(x, half_size, dim=-1)
    return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1)


class Attention(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.to_qk = nn.Linear(dim, 2 * dim)
        self.other = torch.zeros(1, 1, dim)

    def forward(self, x):
        q, k = self.to_qk(x).chunk(2, dim=-1)
        q, k = rope(q), rope(k)
        return q @ k.transpose(-1, -2)
"""


def _rope_reported(size: str) -> bool:
    code = ROPE.replace("SIZE", size)
    line = line_of(code, "return torch.cat([x1 * cos")
    return any(f.line <= line <= f.end_line for f in found(code, "ADP014"))


def test_split_at_a_local_half_of_the_last_axis_is_rope():
    assert _rope_reported("shape[-1]")


def test_split_at_a_name_bound_to_the_half_in_place_is_rope():
    assert _rope_reported("x.shape[-1]")


def test_split_at_half_of_the_first_axis_is_not_rope():
    assert not _rope_reported("shape[0]")


def test_split_at_half_of_another_tensors_axis_is_not_rope():
    code = ROPE.replace("SIZE", "shape[-1]").replace("    shape = x.shape\n", "    shape = torch.zeros(2, 8).shape\n")
    line = line_of(code, "return torch.cat([x1 * cos")
    assert not any(f.line <= line <= f.end_line for f in found(code, "ADP014"))


def test_the_per_half_rotation_is_rotate_half_rope():
    """What the reading claims: the concatenation equals x * cos + rotate_half(x) * sin with the
    half tables repeated, here in float64 (no rounding to speak of: 1e-12)."""
    import torch

    namespace: dict = {}
    exec(compile(ROPE.replace("SIZE", "shape[-1]"), "rope.py", "exec"), namespace)  # noqa: S102 (our fixture)
    torch.manual_seed(0)
    x = torch.randn(2, 3, 5, 8, dtype=torch.float64)
    half = 4
    freq = torch.arange(half, dtype=torch.float64) / half
    sinusoid = torch.einsum("n,d->nd", torch.arange(5, dtype=torch.float64), 10000 ** -freq)
    cos, sin = torch.cos(sinusoid).repeat(1, 2), torch.sin(sinusoid).repeat(1, 2)
    rotated = torch.cat((-x[..., half:], x[..., :half]), dim=-1)
    assert torch.allclose(namespace["rope"](x), x * cos + rotated * sin, atol=1e-12, rtol=0)


SPECTRAL = """\
import torch
from torch import nn
from torch.nn import functional as F


class Linear(nn.Linear):
    def __init__(self, in_features, out_features, bias=True):
        super().__init__(in_features, out_features, bias=bias)
        self.sigma = nn.Parameter(torch.ones(1))

    def get_weight(self):
        return self.sigma * self.weight / torch.linalg.matrix_norm(self.weight, 2)

    def forward(self, x):
        return F.linear(x, WEIGHT, self.bias)


class FeedForward(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.fc1 = Linear(dim, 4 * dim)
        self.fc2 = Linear(4 * dim, dim)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x)))
"""


def test_linear_on_a_weight_derived_from_its_own_parameters_is_bias_gelu():
    code = SPECTRAL.replace("WEIGHT", "self.get_weight()")
    hits = found(code, "ADP006")
    line = line_of(code, "return self.fc2(F.gelu")
    assert [h.line for h in hits] == [line]


def test_the_derived_weight_linear_is_reported_not_fixed():
    from adopter.synth import fix_text
    from corpus_forms import rules

    code = SPECTRAL.replace("WEIGHT", "self.get_weight()")
    assert fix_text(code, "model.py", rules("ADP006")).text == code


def test_a_weight_that_reads_the_input_is_no_linear():
    code = SPECTRAL.replace("WEIGHT", "self.weight * x.mean()")
    assert found(code, "ADP006") == []
