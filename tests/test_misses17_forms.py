"""Forms left by the blind batches of session 16 (helper misses17): our own fixtures, each with
near-misses that must not match."""

from __future__ import annotations

import textwrap

import pytest
from corpus_forms import finding_at, found, line_of, rules

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
    # CastToOther is a site since misses47: whatever the weight is cast to, ``x * (g * rsqrt(ms))``
    # is ``g * (x * rsqrt(ms))`` (the product is associative), x's rms norm times the value g;
    # the fix normalises x in the product's dtype (``torch.result_type(x, g)``)
    spans = [(f.line, f.end_line) for f in found(RMS_NOT, "ADP011")]
    at = line_of(RMS_NOT, "# cast-to-other")
    assert len(spans) == 1 and spans[0][0] <= at <= spans[0][1]


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
    assert len(fixed.skipped) == 2 and all(
        "function held as a value" in why for _, why in fixed.skipped
    )


# ------------------------------------------------------------- a dropout another module passes in

CORE = textwrap.dedent("""\
    import math

    import torch
    import torch.nn as nn
    import torch.nn.functional as F


    class ScoredAttention(nn.Module):
        def forward(self, q, k, v, mask=None, drop=None):
            w = torch.matmul(q, k.transpose(-2, -1)) / math.sqrt(q.size(-1))
            if mask is not None:
                w = w.masked_fill(mask == 0, -1e9)
            p = F.softmax(w, dim=-1)  # passed-site
            if drop is not None:
                p = drop(p)
            return torch.matmul(p, v)
    """)

HEADS = textwrap.dedent("""\
    import torch.nn as nn

    from .core import ScoredAttention


    class Heads(nn.Module):
        def __init__(self, d, h, p=0.1):
            super().__init__()
            self.h = h
            self.qkv = nn.Linear(d, 3 * d)
            self.core = ScoredAttention()
            self.attn_drop = nn.Dropout(p)

        def forward(self, x, mask=None):
            b, n, d = x.shape
            q, k, v = self.qkv(x).view(b, n, 3, self.h, d // self.h).permute(2, 0, 3, 1, 4)
            out = self.core(q, k, v, mask=mask, drop=self.attn_drop)
            return out.transpose(1, 2).reshape(b, n, d)
    """)

# Near-misses: a sibling passes a layer that is no dropout (a learned re-weighting of the
# probabilities), or a lambda (no layer its __init__ binds).
HEADS_REWEIGHT = HEADS.replace(
    "self.attn_drop = nn.Dropout(p)", "self.attn_drop = nn.Linear(16, 16)"
)
HEADS_LAMBDA = HEADS.replace("drop=self.attn_drop", "drop=lambda t: t * 2")


def _package(root, heads: str, name: str = "attnpkg"):
    folder = root / name
    folder.mkdir()
    (folder / "__init__.py").write_text("")
    (folder / "core.py").write_text(CORE)
    (folder / "heads.py").write_text(heads)
    return folder / "core.py"


def _found_in(path) -> list:
    from adopter.engine import analyze
    from adopter.structure import package_of

    text = path.read_text()
    return [
        f
        for f in analyze(
            text, str(path), rules("ADP010"), package_of(str(path))
        ).findings
        if f.rule == "ADP010"
    ]


def _line(needle: str) -> int:
    return next(n for n, text in enumerate(CORE.splitlines(), 1) if needle in text)


def test_a_dropout_a_sibling_module_passes_in_is_the_attention_s_dropout(tmp_path):
    hits = _found_in(_package(tmp_path, HEADS))
    line = _line("# passed-site")
    assert [f for f in hits if f.line <= line <= f.end_line]


def test_a_layer_passed_in_that_is_no_dropout_or_a_lambda_is_not_read_as_one(tmp_path):
    assert _found_in(_package(tmp_path, HEADS_REWEIGHT, "reweight")) == []
    assert _found_in(_package(tmp_path, HEADS_LAMBDA, "lam")) == []
    # the same file outside any package: nothing says what `drop` is
    alone = tmp_path / "alone.py"
    alone.write_text(CORE)
    assert _found_in(alone) == []


def test_a_dropout_passed_in_from_another_module_is_fixed_behind_a_run_time_check(
    tmp_path,
):
    torch = pytest.importorskip("torch")
    from adopter.structure import package_of
    from adopter.synth import fix_text

    path = _package(tmp_path, HEADS, "fixpkg")
    fixed = fix_text(CORE, str(path), rules("ADP010"), package_of(str(path)))
    assert "scaled_dot_product_attention(" in fixed.text
    # the fused path only for an nn.Dropout (its rate read where it runs); anything else
    # passed in keeps the written path
    assert "isinstance(drop, torch.nn.Dropout)" in fixed.text
    original, patched = {}, {}
    exec(compile(CORE, "orig.py", "exec"), original)  # noqa: S102 (our own fixture)
    exec(compile(fixed.text, "fixed.py", "exec"), patched)  # noqa: S102
    a, b = original["ScoredAttention"](), patched["ScoredAttention"]()
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 3, 7, 8, dtype=torch.float64) for _ in range(3))
    mask = torch.rand(2, 1, 1, 7) > 0.3
    mask[..., 0] = True  # every row keeps a key
    drop = torch.nn.Dropout(0.1).eval()
    with torch.no_grad():
        for kwargs in (
            {},
            {"mask": mask},
            {"drop": drop},
            {"mask": mask, "drop": drop},
            {"drop": lambda t: t * 0.5},
        ):
            # float64, 7 keys, 8 features: rounding only
            torch.testing.assert_close(
                b(q, k, v, **kwargs), a(q, k, v, **kwargs), rtol=1e-10, atol=1e-12
            )


# A view of the same shape unbound into its halves (a rotate-half): still the rotation's halves
# (the stacked reading must not hide them from the RoPE rule).
ROPE_UNBOUND = textwrap.dedent("""\
    import torch
    import torch.nn as nn


    class Rotary(nn.Module):
        def _rotate_half(self, x):
            B, nh, T, hs = x.size()
            x = x.view(B, nh, T, 2, hs // 2)
            x1, x2 = x.unbind(dim=-2)
            return torch.cat((-x2, x1), dim=-1)

        def forward(self, q, k, sin, cos):
            q_ = (q * cos) + (self._rotate_half(q) * sin)  # rope-site
            k_ = (k * cos) + (self._rotate_half(k) * sin)
            return q_, k_
    """)


def test_halves_unbound_from_a_stacking_view_still_rotate():
    assert finding_at(ROPE_UNBOUND, "ADP014", "# rope-site") is not None
