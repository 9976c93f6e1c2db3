"""Forms left by the blind batches of session 16 (helper misses17): our own fixtures, each with
near-misses that must not match."""

from __future__ import annotations

import textwrap

import pytest

from corpus_forms import finding_at, found, rules

# ------------------------------------------------------------- RMSNorm of an asserted-rank input

RMS_ASSERTED = textwrap.dedent("""\
    import torch
    import torch.nn as nn


    def scaled_rms(x, gain, eps: float):
        assert x.dim() == 3, "expects (batch, time, channels)"
        x_dtype = x.dtype
        ms = eps + torch.mean(x ** 2, dim=2, keepdim=True)
        out = x * (gain.to(ms) * torch.rsqrt(ms))  # rms-site
        return out.to(x_dtype)


    class ScaledRMS(nn.Module):
        def __init__(self, channels, eps=1e-6):
            super().__init__()
            self.eps = eps
            self.gain = nn.Parameter(torch.ones(1, 1, channels))

        def forward(self, x):
            return scaled_rms(x, self.gain, self.eps)


    class ChannelRMS(nn.Module):
        def __init__(self, channels, eps=1e-6):
            super().__init__()
            self.eps = eps
            self.weight = nn.Parameter(torch.ones(channels))

        def forward(self, x):
            assert x.ndim == 4
            h = x.float()
            ms = h.pow(2).mean(3, keepdim=True)
            return self.weight * (h * torch.rsqrt(ms + self.eps))  # ndim-site
    """)

# Near-misses: the mean over an axis that is not the last one at the asserted rank; no assert
# (dim 2 of an input of unknown rank); the weight cast to another tensor than the variance.
RMS_NOT = textwrap.dedent("""\
    import torch
    import torch.nn as nn


    class MiddleAxis(nn.Module):
        def __init__(self, eps=1e-6):
            super().__init__()
            self.eps = eps

        def forward(self, x):
            assert x.dim() == 4
            ms = self.eps + torch.mean(x ** 2, dim=2, keepdim=True)
            return x * torch.rsqrt(ms)  # middle-axis


    class RankUnknown(nn.Module):
        def __init__(self, eps=1e-6):
            super().__init__()
            self.eps = eps

        def forward(self, x):
            ms = self.eps + torch.mean(x ** 2, dim=2, keepdim=True)
            return x * torch.rsqrt(ms)  # rank-unknown


    class CastToOther(nn.Module):
        def __init__(self, channels, eps=1e-6):
            super().__init__()
            self.eps = eps
            self.gain = nn.Parameter(torch.ones(channels))

        def forward(self, x, ref):
            assert x.dim() == 3
            ms = self.eps + torch.mean(x ** 2, dim=-1, keepdim=True)
            scale = ref * 2.0
            return x * (self.gain.to(scale) * torch.rsqrt(ms))  # cast-to-other
    """)


def test_an_asserted_rank_makes_a_front_counted_mean_the_last_axis():
    assert finding_at(RMS_ASSERTED, "ADP011", "# rms-site") is not None
    assert finding_at(RMS_ASSERTED, "ADP011", "# ndim-site") is not None


def test_means_over_other_axes_or_of_unknown_rank_and_other_casts_are_not_rms_norms():
    assert found(RMS_NOT, "ADP011") == []


def test_the_weight_cast_to_the_variance_is_fixed_and_computes_the_same():
    torch = pytest.importorskip("torch")
    from adopter.synth import fix_text

    fixed = fix_text(RMS_ASSERTED, "model.py", rules("ADP011"))
    assert "rms_norm(x, x.shape[-1:], eps=eps) * gain.to(x)" in fixed.text
    original, patched = {}, {}
    exec(compile(RMS_ASSERTED, "orig.py", "exec"), original)  # noqa: S102 (our own fixture)
    exec(compile(fixed.text, "fixed.py", "exec"), patched)  # noqa: S102
    torch.manual_seed(0)
    x = torch.randn(2, 5, 16, dtype=torch.float64)
    gain = torch.randn(1, 1, 16, dtype=torch.float32)
    want = original["scaled_rms"](x, gain, 1e-6)
    got = patched["scaled_rms"](x, gain, 1e-6)
    # float64, a 16-term mean: rounding of a few ulps
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


# ------------------------------------------------------------- a gate over halves stacked by a view

GATED_STACKED = textwrap.dedent("""\
    import torch
    import torch.nn as nn
    import torch.nn.functional as F


    def gated_kernel(w_in, w_out, act, x):
        x = F.linear(x, w_in)
        B, T, _ = x.shape
        x = x.view(B, T, 2, -1)
        x = act(x[..., 0, :]) * x[..., 1, :]  # kernel-site
        return F.linear(x, w_out)


    def gated_modules(proj_in, proj_out, act, x):
        h = proj_in(x)
        n, t, d = h.shape
        h = h.reshape(n, t, 2, d // 2)
        h = act(h[..., 0, :]) * h[..., 1, :]  # modules-site
        return proj_out(h)


    class GatedUnit(nn.Module):
        def __init__(self, dim, hidden, act, fused=True):
            super().__init__()
            self.fused = fused
            self.proj_in = nn.Linear(dim, 2 * hidden, bias=False)
            self.proj_out = nn.Linear(hidden, dim, bias=False)
            self.act = act

        def forward(self, x):
            if self.fused:
                return gated_kernel(self.proj_in.weight, self.proj_out.weight, self.act, x)
            return gated_modules(self.proj_in, self.proj_out, self.act, x)


    def pick_activation(kind: str):
        if kind in ("gelu", "silu", "relu"):
            return getattr(F, kind)
        if kind == "none":
            return nn.Identity()
        raise ValueError(kind)


    def build_gate(kind, dim, hidden):
        return GatedUnit(dim, hidden, pick_activation(kind))
    """)

# Near-misses: the stacked entries of another axis (``x[..., :, 0]``), a view whose sizes are not
# the input's leading axes (so the split is not of the last axis), an entry read by ``x[0]`` (the
# first batch row), and a fixed GELU gate (GeGLU).
GATED_NOT = textwrap.dedent("""\
    import torch
    import torch.nn as nn
    import torch.nn.functional as F


    class OtherAxis(nn.Module):
        def __init__(self, dim, hidden):
            super().__init__()
            self.proj_in = nn.Linear(dim, 2 * hidden)

        def forward(self, x):
            x = self.proj_in(x)
            B, T, _ = x.shape
            x = x.view(B, T, 2, -1)
            return F.silu(x[..., :, 0]) * x[..., :, 1]  # other-axis


    class NotLeading(nn.Module):
        def __init__(self, dim, hidden):
            super().__init__()
            self.proj_in = nn.Linear(dim, 2 * hidden)

        def forward(self, x):
            x = self.proj_in(x)
            B, T, _ = x.shape
            x = x.view(T, B, 2, -1)
            return F.silu(x[..., 0, :]) * x[..., 1, :]  # not-leading


    class FirstRow(nn.Module):
        def __init__(self, dim, hidden):
            super().__init__()
            self.proj_in = nn.Linear(dim, 2 * hidden)

        def forward(self, x):
            x = self.proj_in(x)
            B, T, _ = x.shape
            x = x.view(B, T, 2, -1)
            return F.silu(x[0]) * x[1]  # first-row


    class FixedGelu(nn.Module):
        def __init__(self, dim, hidden):
            super().__init__()
            self.proj_in = nn.Linear(dim, 2 * hidden)

        def forward(self, x):
            x = self.proj_in(x)
            B, T, _ = x.shape
            x = x.view(B, T, 2, -1)
            return F.gelu(x[..., 0, :]) * x[..., 1, :]  # fixed-gelu
    """)


def test_halves_stacked_by_a_view_gated_by_an_activation_passed_on_are_swiglu_sites():
    assert finding_at(GATED_STACKED, "ADP013", "# kernel-site") is not None
    assert finding_at(GATED_STACKED, "ADP013", "# modules-site") is not None


def test_other_axes_other_views_whole_rows_and_fixed_gelu_gates_are_not_swiglu_sites():
    assert found(GATED_NOT, "ADP013") == []


def test_a_gate_from_a_function_held_as_a_value_is_reported_not_fixed():
    from adopter.synth import fix_text

    fixed = fix_text(GATED_STACKED, "model.py", rules("ADP013"))
    assert fixed.text == GATED_STACKED and not fixed.applied
    assert len(fixed.skipped) == 2 and all("function held as a value" in why for _, why in fixed.skipped)
