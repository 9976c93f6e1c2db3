"""Forms found while checking the blind batch of research62 (vision, diffusion, science and
audio transformers written the way papers' code is).  The fixtures are ours.

- The dtype an RMSNorm computes in, held by a local name bound to a promotion of several dtypes
  (``dtype = reduce(torch.promote_types, (x.dtype, scale.dtype, torch.float32))``, the
  hourglass diffusion transformer's ``rms_norm``) or to a torch dtype (``dtype =
  torch.float32``): ``x.to(dtype)`` is a dtype conversion, as it is for a name bound to
  ``torch.promote_types(a, b)``.  Was read as an unknown ``.to`` (a device, a tensor), so the
  norm was missed.  Near-miss: a ``dtype`` parameter may be a device or a tensor, so ``x.to``
  of it stays unknown and nothing is reported; ``reduce`` of another function is no promotion.
- A Linear's output flattened to rows of its features before a BatchNorm1d and put back after
  (MOFTransformer's CGCNN: ``h = self.fc_full(x)`` with ``out_features=2 * self.d``, then
  ``self.bn1(h.view(-1, self.d * 2)).view(N, M, self.d * 2)``): ``h.view(-1, W)`` with W the
  Linear's output width as ``__init__`` writes it (the factors in either order) is
  ``h.view(-1, h.size(-1))``, the Linear of the input's rows (read so only as a BatchNorm1d's
  argument: ADP015 reads an LM head's ``logits.view(-1, self.vocab)`` as written, misses36's
  tests).  Near-misses: a width that is not
  the Linear's (``self.d`` of a ``2 * self.d`` Linear: two rows per token, BatchNorm over half
  the features), and h reassigned under an ``if`` before the view.  (A bare name in ``forward``
  was one too; since misses47 it is a site where the BatchNorm1d checks that width: see
  test_misses47_forms.py.)
"""

from __future__ import annotations

from corpus_forms import found, line_of, rules

from adopter.synth import fix_text

PROMOTED = """\
from functools import reduce

import torch
from torch import nn


def rms_norm(x, scale, eps):
    dtype = reduce(torch.promote_types, (x.dtype, scale.dtype, torch.float32))
    mean_sq = torch.mean(x.to(dtype) ** 2, dim=-1, keepdim=True)
    scale = scale.to(dtype) * torch.rsqrt(mean_sq + eps)
    return x * scale.to(x.dtype)


def rms_norm_fp32(x, scale, eps):
    dtype = torch.float32
    mean_sq = torch.mean(x.to(dtype) ** 2, dim=-1, keepdim=True)
    scale = scale.to(dtype) * torch.rsqrt(mean_sq + eps)
    return x * scale.to(x.dtype)


class RMSNorm(nn.Module):
    def __init__(self, d, eps=1e-6):
        super().__init__()
        self.scale = nn.Parameter(torch.rand(d) + 0.5)
        self.eps = eps

    def forward(self, x):
        return rms_norm(x, self.scale, self.eps) + rms_norm_fp32(x, self.scale, self.eps)
"""

NEAR = """\
from functools import reduce

import torch


def rms_param(x, scale, eps, dtype):
    mean_sq = torch.mean(x.to(dtype) ** 2, dim=-1, keepdim=True)
    scale = scale.to(dtype) * torch.rsqrt(mean_sq + eps)
    return x * scale.to(x.dtype)


def rms_other_reduce(x, scale, eps, devices):
    dtype = reduce(max, devices)
    mean_sq = torch.mean(x.to(dtype) ** 2, dim=-1, keepdim=True)
    scale = scale.to(dtype) * torch.rsqrt(mean_sq + eps)
    return x * scale.to(x.dtype)
"""


def test_a_norm_in_a_promotion_of_several_dtypes_is_found():
    at = line_of(PROMOTED, "return x * scale.to(x.dtype)")
    spans = [(f.line, f.end_line) for f in found(PROMOTED, "ADP011")]
    assert any(a <= at <= b for a, b in spans)


def test_a_norm_in_a_dtype_held_by_a_local_name_is_found():
    lines = PROMOTED.splitlines()
    at = next(n for n, text in enumerate(lines, 1) if "return x * scale.to(x.dtype)" in text
              and n > line_of(PROMOTED, "def rms_norm_fp32"))
    spans = [(f.line, f.end_line) for f in found(PROMOTED, "ADP011")]
    assert len(spans) == 2 and any(a <= at <= b for a, b in spans)


def test_a_dtype_parameter_or_another_reduce_is_no_dtype():
    assert found(NEAR, "ADP011") == []


def test_the_fix_keeps_the_norm():
    import torch

    fixed = fix_text(PROMOTED, "model.py", rules("ADP011")).text
    assert fixed.count("adopter_rms_norm(") == 2 or fixed.count("rms_norm(x.to(") == 2
    original, patched = {}, {}
    exec(compile(PROMOTED, "orig.py", "exec"), original)  # noqa: S102 (our own fixture)
    exec(compile(fixed, "fixed.py", "exec"), patched)  # noqa: S102
    torch.manual_seed(0)
    a = original["RMSNorm"](32)
    b = patched["RMSNorm"](32)
    b.load_state_dict(a.state_dict(), strict=True)
    x = torch.randn(4, 7, 32)
    # float32 throughout (the second norm's dtype is float32 itself): a 32-term mean of squares,
    # one rsqrt and two products, grouped differently: a few float32 roundings (eps 1.2e-7) of
    # values of order 1-10
    torch.testing.assert_close(b(x), a(x), rtol=1e-5, atol=1e-5)


ROWS = """\
import torch
from torch import nn


class Gated(nn.Module):
    def __init__(self, c, d):
        super().__init__()
        self.d = d
        self.fc = nn.Linear(c, 2 * self.d)
        self.bn = nn.BatchNorm1d(2 * self.d)

    def forward(self, x):
        n, m = x.shape[:2]
        h = self.fc(x)
        h = self.bn(h.view(-1, self.d * 2)).view(n, m, self.d * 2)
        return torch.sigmoid(h)


class Reshaped(nn.Module):
    def __init__(self, c, d):
        super().__init__()
        self.d = d
        self.fc = nn.Linear(c, out_features=self.d)
        self.bn = nn.BatchNorm1d(self.d)

    def forward(self, x):
        h = self.fc(x)
        return self.bn(h.reshape(-1, self.d))
"""

ROWS_NEAR = """\
import torch
from torch import nn


class Halves(nn.Module):
    def __init__(self, c, d):
        super().__init__()
        self.d = d
        self.fc = nn.Linear(c, 2 * self.d)
        self.bn = nn.BatchNorm1d(self.d)

    def forward(self, x):
        h = self.fc(x)
        return self.bn(h.view(-1, self.d))


class BareName(nn.Module):
    def __init__(self, c, d):
        super().__init__()
        self.fc = nn.Linear(c, d)
        self.bn = nn.BatchNorm1d(d)

    def forward(self, x, d):
        h = self.fc(x)
        return self.bn(h.view(-1, d))


class Rebound(nn.Module):
    def __init__(self, c, d):
        super().__init__()
        self.d = d
        self.fc = nn.Linear(c, self.d)
        self.other = nn.Linear(c, self.d)
        self.bn = nn.BatchNorm1d(self.d)

    def forward(self, x, flag: bool):
        h = self.fc(x)
        if flag:
            h = torch.tanh(self.other(x))
        return self.bn(h.view(-1, self.d))
"""


def test_a_linear_flattened_to_rows_of_its_width_before_batchnorm_is_found():
    spans = [(f.line, f.end_line) for f in found(ROWS, "ADP008")]
    assert len(spans) == 2
    for needle in ("h = self.bn(h.view(", "return self.bn(h.reshape("):
        at = line_of(ROWS, needle)
        assert any(a <= at <= b for a, b in spans)


def test_other_widths_names_and_rebound_values_are_no_rows():
    # BareName's forward-parameter width is no longer a near-miss (misses47): its BatchNorm1d of
    # ``d`` features is built with the Linear's own ``d``, and refuses rows of any other width,
    # so every run that succeeds normalises the Linear's rows (structure/normed_rows.py)
    spans = [(f.line, f.end_line) for f in found(ROWS_NEAR, "ADP008")]
    at = line_of(ROWS_NEAR, "return self.bn(h.view(-1, d))")
    assert len(spans) == 1 and spans[0][0] <= at <= spans[0][1]


def test_the_fix_of_the_rows_keeps_the_computation():
    import torch

    fixed = fix_text(ROWS, "model.py", rules("ADP008")).text
    assert "linear_bn(x.reshape(-1, x.shape[-1]), self.fc, self.bn).view(n, m, self.d * 2)" in fixed
    original, patched = {}, {}
    exec(compile(ROWS, "orig.py", "exec"), original)  # noqa: S102 (our own fixture)
    exec(compile(fixed, "fixed.py", "exec"), patched)  # noqa: S102
    torch.manual_seed(0)
    a = original["Gated"](12, 5).double()
    b = patched["Gated"](12, 5).double()
    with torch.no_grad():
        a.bn.running_mean.uniform_(-1, 1)
        a.bn.running_var.uniform_(0.5, 2)
    b.load_state_dict(a.state_dict(), strict=True)
    x = torch.randn(3, 4, 12, dtype=torch.float64)
    for mode in ("eval", "train"):
        getattr(a, mode)()
        getattr(b, mode)()
        # float64, 12-term dot products and the BatchNorm folded into them (eval) or run as it
        # is (train): equal to rounding
        torch.testing.assert_close(b(x), a(x), rtol=0, atol=1e-12)
