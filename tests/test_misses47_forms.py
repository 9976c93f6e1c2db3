"""Forms research62 saw outside its batch, read by their computation.  The fixtures are ours.

- An RMSNorm whose weight is grouped with the inverse RMS before x is scaled, with no cast:
  ``x * (w * torch.rsqrt(ms + eps))`` (also ``w / torch.sqrt(...)``, ``(rsqrt * w) * x``, the
  factor held in a name).  The product is associative, so this is x's rms normalisation times
  the weight, ``w * rms_norm(x, ...)``; ADP011 read that grouping only with casts (k-diffusion,
  moshi).  Near-misses: a mean over another axis, eps added after the root, the square of
  another tensor.
- Any two-axis view of a Linear's output that goes into a norm checking its width
  (``self.bn(h.view(N * M, -1))``, ``w.reshape(w.shape[0] * w.shape[1], w.shape[2])``): a
  BatchNorm1d of C features (with running statistics or an affine weight) refuses a ``(rows,
  B)`` input unless B == C, so where C is written as the Linear's output width the view keeps
  the last axis whole and is the output's rows (structure/normed_rows.py).  research62 read only
  ``h.view(-1, W)`` with W the Linear's width.  Near-misses: a view that splits the last axis
  (the norm's width half the Linear's), the same split into a BatchNorm1d that checks nothing
  (no running statistics, no affine weight), a leading size computed by a call.
"""

from __future__ import annotations

from corpus_forms import found, line_of, rules

from adopter.synth import fix_text

FOLDED = """\
import torch
from torch import nn


def rms_named(x, weight, eps):
    mean_sq = torch.mean(x ** 2, dim=-1, keepdim=True)
    s = weight * torch.rsqrt(mean_sq + eps)
    return x * s


def rms_inline(x, weight, eps):
    return x * (weight * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps))


def rms_divided(x, weight, eps):
    return x * (weight / torch.sqrt(x.pow(2).mean(-1, keepdim=True) + eps))


def rms_swapped(x, weight, eps):
    return (torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * weight) * x


class Norms(nn.Module):
    def __init__(self, d, eps=1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.rand(d) + 0.5)
        self.eps = eps

    def forward(self, x):
        w, e = self.weight, self.eps
        return rms_named(x, w, e) + rms_inline(x, w, e) + rms_divided(x, w, e) + rms_swapped(x, w, e)
"""

FOLDED_NEAR = """\
import torch


def mean_over_rows(x, weight, eps):
    return x * (weight * torch.rsqrt(x.pow(2).mean(1, keepdim=True) + eps))


def eps_after_root(x, weight, eps):
    return x * (weight / (torch.sqrt(x.pow(2).mean(-1, keepdim=True)) + eps))


def square_of_another(x, y, weight, eps):
    return x * (weight * torch.rsqrt(y.pow(2).mean(-1, keepdim=True) + eps))
"""


def test_a_weight_grouped_with_the_inverse_rms_is_found():
    spans = [(f.line, f.end_line) for f in found(FOLDED, "ADP011")]
    assert len(spans) == 4
    for needle in ("return x * s", "return x * (weight * torch.rsqrt", "return x * (weight / torch.sqrt",
                   "return (torch.rsqrt("):
        at = line_of(FOLDED, needle)
        assert any(a <= at <= b for a, b in spans), needle


def test_another_axis_eps_after_the_root_or_another_square_is_no_rms_norm():
    assert found(FOLDED_NEAR, "ADP011") == []


def test_the_fix_of_the_grouped_weight_keeps_the_norm():
    import torch

    fixed = fix_text(FOLDED, "model.py", rules("ADP011")).text
    assert fixed.count("weight * rms_norm(x.to(torch.result_type(x, weight)), x.shape[-1:], eps=eps)") == 4
    original, patched = {}, {}
    exec(compile(FOLDED, "orig.py", "exec"), original)  # noqa: S102 (our own fixture)
    exec(compile(fixed, "fixed.py", "exec"), patched)  # noqa: S102
    torch.manual_seed(0)
    a = original["Norms"](48)
    b = patched["Norms"](48)
    b.load_state_dict(a.state_dict(), strict=True)
    x = torch.randn(3, 5, 48)
    # float32: a 48-term mean of squares, one rsqrt and two products grouped differently, four
    # such norms summed: a few float32 roundings (eps 1.2e-7) of values of order 1-10
    torch.testing.assert_close(b(x), a(x), rtol=1e-5, atol=1e-5)
    # bfloat16 x, float32 weight: the code's product is float32 and so is the patch's (x
    # normalised in float32, not rounded to bfloat16 first); the code's own inverse RMS is a
    # bfloat16 value (unit roundoff 2**-8 = 3.9e-3; the mean, the sum with eps and the rsqrt each
    # round once), the patch's a float32 one, so they agree to a few bfloat16 roundings
    h = x.to(torch.bfloat16)
    got, want = b(h), a(h)
    assert got.dtype == want.dtype == torch.float32
    torch.testing.assert_close(got, want, rtol=2e-2, atol=2e-2)
    # ... and the patch keeps the float32 product's precision: against the same norms in float64
    # of the same bfloat16 values it is off by float32 roundings only (a 48-term mean, an rsqrt,
    # two products, four norms summed), not by a bfloat16 rounding of the normalised x
    exact = b.double()(h.double())
    torch.testing.assert_close(got.double(), exact, rtol=1e-5, atol=1e-5)


ROWS = """\
import torch
from torch import nn


class Leading(nn.Module):
    def __init__(self, c, d):
        super().__init__()
        self.fc = nn.Linear(c, d)
        self.bn = nn.BatchNorm1d(d)

    def forward(self, x):
        n, m, _ = x.shape
        h = self.fc(x)
        h = self.bn(h.view(n * m, -1)).view(n, m, -1)
        return torch.tanh(h)


class Sizes(nn.Module):
    def __init__(self, c, hidden, normalization="batchnorm"):
        super().__init__()
        self.hidden = hidden
        self.w = nn.Linear(c, 2 * self.hidden, bias=False)
        if normalization == "batchnorm":
            self.norm = nn.BatchNorm1d(2 * self.hidden, momentum=0.05)
        else:
            self.norm = nn.LayerNorm(2 * self.hidden)

    def forward(self, x):
        w = self.w(x)
        if self.training or not self.training:
            w_bn = self.norm(w.reshape(w.shape[0] * w.shape[1], w.shape[2]))
            w = w_bn.reshape(x.shape[0], x.shape[1], -1)
        return w
"""

ROWS_NEAR = """\
import torch
from torch import nn


class SplitsLastAxis(nn.Module):
    def __init__(self, c, d):
        super().__init__()
        self.fc = nn.Linear(c, 2 * d)
        self.bn = nn.BatchNorm1d(d)

    def forward(self, x):
        n, m, _ = x.shape
        h = self.fc(x)
        return self.bn(h.view(n * m * 2, -1))


class ChecksNothing(nn.Module):
    def __init__(self, c, d):
        super().__init__()
        self.fc = nn.Linear(c, d)
        self.bn = nn.BatchNorm1d(d, affine=False, track_running_stats=False)

    def forward(self, x):
        n, m, _ = x.shape
        h = self.fc(x)
        return self.bn(h.view(n * m * 2, -1))


class CalledSize(nn.Module):
    def __init__(self, c, d):
        super().__init__()
        self.fc = nn.Linear(c, d)
        self.bn = nn.BatchNorm1d(d)

    def forward(self, x, count):
        h = self.fc(x)
        return self.bn(h.view(count(), -1))
"""


def test_any_view_a_checking_norm_proves_to_be_rows_is_found():
    spans = [(f.line, f.end_line) for f in found(ROWS, "ADP008")]
    assert len(spans) == 2
    for needle in ("h = self.bn(h.view(n * m, -1))", "w_bn = self.norm(w.reshape("):
        at = line_of(ROWS, needle)
        assert any(a <= at <= b for a, b in spans), needle


def test_a_split_last_axis_an_unchecking_norm_or_a_called_size_is_no_rows():
    assert found(ROWS_NEAR, "ADP008") == []


def test_the_fix_of_the_proven_rows_keeps_the_computation():
    import torch

    fixed = fix_text(ROWS, "model.py", rules("ADP008")).text
    assert "linear_bn(x.reshape(-1, x.shape[-1]), self.fc, self.bn).view(n, m, -1)" in fixed
    assert "linear_bn(x.reshape(-1, x.shape[-1]), self.w, self.norm)" in fixed
    original, patched = {}, {}
    exec(compile(ROWS, "orig.py", "exec"), original)  # noqa: S102 (our own fixture)
    exec(compile(fixed, "fixed.py", "exec"), patched)  # noqa: S102
    for name, args, norm in (("Leading", (12, 5), "bn"), ("Sizes", (12, 3), "norm")):
        torch.manual_seed(0)
        a = original[name](*args).double()
        b = patched[name](*args).double()
        with torch.no_grad():
            getattr(a, norm).running_mean.uniform_(-1, 1)
            getattr(a, norm).running_var.uniform_(0.5, 2)
        b.load_state_dict(a.state_dict(), strict=True)
        x = torch.randn(3, 4, 12, dtype=torch.float64)
        for mode in ("eval", "train"):
            getattr(a, mode)()
            getattr(b, mode)()
            # float64, 12-term dot products with the BatchNorm folded in (eval) or run as it is
            # (train): equal to rounding
            torch.testing.assert_close(b(x), a(x), rtol=0, atol=1e-12)
