"""Forms left by research77's blind batch (session 38: weather, audio, molecules, time series):
our own fixtures, each with near-misses that must not match.

- attention whose scores are folded with the function ``torch.reshape(w, (...))`` rather than
  the method ``w.reshape(...)`` (score-SDE's channel attention, as a speech-enhancement package
  writes it);
- an RMSNorm whose mean of ``x.square()`` is over ``dim=2`` of an input asserted 3-D (moshi's);
- an MLP builder taking each layer's activation from a list made by a comprehension of a
  same-file activation table's class, its last item replaced by the output activation (orb's).
"""

from __future__ import annotations

import textwrap

import pytest
from corpus_forms import edit, finding_at, found, line_of, rules

# ------------------------------------------------------------- attention folded by torch.reshape

RESHAPED_ATTENTION = textwrap.dedent("""\
    import torch
    import torch.nn as nn
    import torch.nn.functional as F


    class ChannelAttention(nn.Module):
        def __init__(self, channels):
            super().__init__()
            self.norm = nn.GroupNorm(4, channels)
            self.q = nn.Conv2d(channels, channels, 1)
            self.k = nn.Conv2d(channels, channels, 1)
            self.v = nn.Conv2d(channels, channels, 1)
            self.out = nn.Conv2d(channels, channels, 1)

        def forward(self, x):
            B, C, H, W = x.shape
            h = self.norm(x)
            q, k, v = self.q(h), self.k(h), self.v(h)
            w = torch.einsum("bchw,bcij->bhwij", q, k) * (int(C) ** (-0.5))
            w = torch.reshape(w, (B, H, W, H * W))
            w = F.softmax(w, dim=-1)  # reshaped-site
            w = torch.reshape(w, (B, H, W, H, W))
            h = torch.einsum("bhwij,bcij->bchw", w, v)
            return x + self.out(h)
    """)

# Near-miss: the softmax over the last key axis alone (the view back taken before it), which
# normalises each row of keys separately: not one softmax over all H * W keys.
RESHAPED_NOT = edit(
    edit(RESHAPED_ATTENTION, "        w = torch.reshape(w, (B, H, W, H * W))\n", ""),
    "        w = F.softmax(w, dim=-1)  # reshaped-site\n        w = torch.reshape(w, (B, H, W, H, W))\n",
    "        w = torch.reshape(w, (B, H, W, H, W))\n        w = F.softmax(w, dim=-1)  # per-row\n")


def test_scores_folded_with_the_reshape_function_are_attention():
    assert finding_at(RESHAPED_ATTENTION, "ADP010", "# reshaped-site") is not None


def test_a_softmax_over_one_key_axis_after_the_function_reshape_is_not_attention():
    assert found(RESHAPED_NOT, "ADP010") == []


def test_the_reshape_function_form_is_fixed_and_computes_the_same():
    torch = pytest.importorskip("torch")
    from corpus_forms import float64_pair

    from adopter.synth import fix_text

    fixed = fix_text(RESHAPED_ATTENTION, "model.py", rules("ADP010"))
    assert "scaled_dot_product_attention(" in fixed.text and "torch.reshape(w" not in fixed.text
    a, b = float64_pair(RESHAPED_ATTENTION, fixed.text, "ChannelAttention", channels=8)
    x = torch.randn(2, 8, 3, 5, dtype=torch.float64, requires_grad=True)
    x2 = x.detach().clone().requires_grad_(True)
    want, got = a(x), b(x2)
    # float64, softmax over 15 keys and sums of 8 channels: rounding of a few ulps
    torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)
    want.sum().backward()
    got.sum().backward()
    torch.testing.assert_close(x2.grad, x.grad, rtol=1e-10, atol=1e-12)


# ------------------------------------------------------------- RMSNorm of x.square() at an asserted rank

RMS_SQUARE = textwrap.dedent("""\
    import torch
    import torch.nn as nn


    def rms_scale(x, alpha, dtype, eps: float):
        assert x.dim() == 3, "expects (batch, time, channels)"
        x_dtype = x.dtype
        if dtype is not None:
            x = x.to(dtype)
        var = eps + torch.mean(x.square(), dim=2, keepdim=True)
        return (x * (alpha.to(var) * torch.rsqrt(var))).to(x_dtype)  # square-site


    class ScaledRMS(nn.Module):
        def __init__(self, dim, eps=1e-5, dtype=None):
            super().__init__()
            self.eps = eps
            self.dtype = dtype
            self.alpha = nn.Parameter(torch.full((1, 1, dim), 1.0))

        def forward(self, x):
            return rms_scale(x, self.alpha, self.dtype, self.eps)
    """)

# Near-misses: dim=2 of an input asserted 4-D (a middle axis); no assert (rank unknown); the
# square root of the mean square of another axis written with sqrt.
RMS_SQUARE_NOT = textwrap.dedent("""\
    import torch
    import torch.nn as nn


    class MiddleAxis(nn.Module):
        def __init__(self, eps=1e-6):
            super().__init__()
            self.eps = eps

        def forward(self, x):
            assert x.dim() == 4
            var = self.eps + torch.mean(x.square(), dim=2, keepdim=True)
            return x * torch.rsqrt(var)  # middle-axis


    class RankUnknown(nn.Module):
        def __init__(self, eps=1e-6):
            super().__init__()
            self.eps = eps

        def forward(self, x):
            var = self.eps + torch.mean(x.square(), dim=2, keepdim=True)
            return x * torch.rsqrt(var)  # rank-unknown


    class SqrtOfFirstAxis(nn.Module):
        def __init__(self, eps=1e-6):
            super().__init__()
            self.eps = eps

        def forward(self, x):
            assert x.dim() == 3
            var = torch.mean(x.square().sqrt(), dim=0, keepdim=True) + self.eps
            return x * torch.rsqrt(var)  # first-axis
    """)


def test_a_mean_of_the_square_over_the_last_axis_of_an_asserted_rank_is_an_rms_norm():
    assert finding_at(RMS_SQUARE, "ADP011", "# square-site") is not None


def test_means_of_the_square_over_other_or_unknown_axes_are_not_rms_norms():
    assert found(RMS_SQUARE_NOT, "ADP011") == []


def test_the_asserted_rank_square_rms_is_fixed_and_computes_the_same():
    torch = pytest.importorskip("torch")
    from adopter.synth import fix_text

    fixed = fix_text(RMS_SQUARE, "model.py", rules("ADP011"))
    assert "rms_norm(x, x.shape[-1:], eps=eps)" in fixed.text
    original, patched = {}, {}
    exec(compile(RMS_SQUARE, "orig.py", "exec"), original)  # noqa: S102 (our own fixture)
    exec(compile(fixed.text, "fixed.py", "exec"), patched)  # noqa: S102
    torch.manual_seed(0)
    x = torch.randn(2, 5, 16, dtype=torch.float64)
    alpha = torch.randn(1, 1, 16, dtype=torch.float64)
    for dtype in (None, torch.float64):
        want = original["rms_scale"](x, alpha, dtype, 1e-5)
        got = patched["rms_scale"](x, alpha, dtype, 1e-5)
        # float64, a 16-term mean: rounding of a few ulps
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


# ------------------------------------------------------------- activations from a comprehension's list

LISTED_ACTIVATIONS = textwrap.dedent("""\
    from typing import Optional

    import torch.nn as nn


    def get_activation(activation: Optional[str]):
        if not activation:
            return nn.Identity()
        return {"softplus": nn.Softplus, "gelu": nn.GELU, "silu": nn.SiLU}[activation]


    def build_mlp(input_size, hidden, output_size=None, output_activation=nn.Identity,
                  activation="softplus", dropout=None):
        sizes = [input_size] + hidden
        if output_size:
            sizes.append(output_size)
        n = len(sizes) - 1
        act = [get_activation(activation) for _ in range(n)]
        act[-1] = output_activation
        mlp = nn.Sequential()
        for i in range(n):
            if dropout is not None:
                mlp.add_module("Dropout" + str(i), nn.Dropout(dropout))
            mlp.add_module("NN-" + str(i), nn.Linear(sizes[i], sizes[i + 1]))
            mlp.add_module("Act-" + str(i), act[i]())  # listed-site
        return mlp
    """)

# Near-misses: a comprehension of a table without GELU; a list later appended to (its items are
# not known); an item read at a literal index after an item store (which item is not read);
# a comprehension whose element names its own variable.
LISTED_NOT = textwrap.dedent("""\
    import torch.nn as nn


    def get_activation(activation):
        return {"relu": nn.ReLU, "silu": nn.SiLU}[activation]


    def no_gelu(sizes, activation="relu"):
        act = [get_activation(activation) for _ in range(len(sizes) - 1)]
        mlp = nn.Sequential()
        for i in range(len(sizes) - 1):
            mlp.add_module("NN-" + str(i), nn.Linear(sizes[i], sizes[i + 1]))
            mlp.add_module("Act-" + str(i), act[i]())  # no-gelu
        return mlp


    def appended(sizes):
        act = [nn.ReLU for _ in range(len(sizes) - 1)]
        act.append(nn.GELU)
        mlp = nn.Sequential()
        for i in range(len(sizes) - 1):
            mlp.add_module("NN-" + str(i), nn.Linear(sizes[i], sizes[i + 1]))
            mlp.add_module("Act-" + str(i), act[i]())  # appended
        return mlp


    def literal_index(sizes):
        act = [nn.ReLU for _ in range(len(sizes) - 1)]
        act[0] = nn.GELU
        mlp = nn.Sequential()
        mlp.add_module("NN", nn.Linear(sizes[0], sizes[1]))
        mlp.add_module("Act", act[1]())  # literal-index
        return mlp


    def own_variable(sizes, kinds=(nn.ReLU, nn.GELU)):
        act = [kinds[j % 2] for j in range(len(sizes) - 1)]
        mlp = nn.Sequential()
        mlp.add_module("NN", nn.Linear(sizes[0], sizes[1]))
        mlp.add_module("Act", act[0]())  # own-variable
        return mlp
    """)


def test_an_activation_from_a_comprehension_list_of_a_table_class_is_a_bias_gelu_site():
    assert finding_at(LISTED_ACTIVATIONS, "ADP006", "# listed-site") is not None


def test_lists_without_gelu_changed_or_read_at_a_stored_literal_index_are_not_sites():
    assert found(LISTED_NOT, "ADP006") == []


def test_the_listed_activation_mlp_is_fixed_and_computes_the_same():
    torch = pytest.importorskip("torch")
    from adopter.synth import fix_text

    fixed = fix_text(LISTED_ACTIVATIONS, "model.py", rules("ADP006"))
    assert fixed.text != LISTED_ACTIVATIONS
    original, patched = {}, {}
    exec(compile(LISTED_ACTIVATIONS, "orig.py", "exec"), original)  # noqa: S102 (our own fixture)
    exec(compile(fixed.text, "fixed.py", "exec"), patched)  # noqa: S102
    for activation in ("gelu", "softplus", "silu"):
        torch.manual_seed(0)
        a = original["build_mlp"](6, [12, 12], 3, activation=activation).double()
        b = patched["build_mlp"](6, [12, 12], 3, activation=activation).double()
        b.load_state_dict(a.state_dict(), strict=True)
        x = torch.randn(4, 6, dtype=torch.float64)
        a.eval()
        b.eval()
        with torch.no_grad():
            # float64, sums of 6 and 12 terms through GELU's erf: rounding of a few ulps
            torch.testing.assert_close(b(x), a(x), rtol=1e-10, atol=1e-12)


def test_no_near_miss_line_is_reported():
    for needle in ("# no-gelu", "# appended", "# literal-index", "# own-variable"):
        assert line_of(LISTED_NOT, needle) > 0
        assert finding_at(LISTED_NOT, "ADP006", needle) is None
