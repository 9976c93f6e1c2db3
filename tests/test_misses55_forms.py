"""Forms left by session 38's research batches (misses55): our own fixtures, each with
look-alikes that must not match.

- an RMSNorm whose variance is read a second time only as the dtype and device template of a
  cast of the weight (``x * torch.rsqrt(var + eps) * weight.to(var)``, ``.type_as(var)``,
  ``.type_as(other=var)``, the cast made before the product): the cast reads no element of the
  variance, so the variance is used once as a value.
"""

from __future__ import annotations

import textwrap

import pytest
from corpus_forms import finding_at, found, rules

from adopter.synth import fix_text
from adopter.synth.fixable import plan_findings
from adopter.engine import analyze

# ------------------------------------------------ RMSNorm weight cast to the variance's dtype


def _rms(name: str, body: str) -> str:
    return textwrap.dedent(f"""\

        class {name}(nn.Module):
            def __init__(self, d, eps=1e-6):
                super().__init__()
                self.eps = eps
                self.weight = nn.Parameter(torch.ones(d))

            def forward(self, x):
        """) + textwrap.indent(textwrap.dedent(body), " " * 8) + "\n"


HEADER = "import torch\nimport torch.nn as nn\n\n"

TEMPLATE_CASTS = HEADER + "".join([
    _rms("CastTo", """\
        var = x.pow(2).mean(-1, keepdim=True)
        return x * torch.rsqrt(var + self.eps) * self.weight.to(var)  # cast-to
        """),
    _rms("TypeAs", """\
        var = torch.mean(x * x, dim=-1, keepdim=True)
        return x * torch.rsqrt(var + self.eps) * self.weight.type_as(var)  # type-as
        """),
    _rms("OtherKeyword", """\
        var = self.eps + torch.mean(x ** 2, dim=-1, keepdim=True)
        return x * torch.rsqrt(var) * self.weight.type_as(other=var)  # other-keyword
        """),
    _rms("CastFirst", """\
        var = x.pow(2).mean(-1, keepdim=True)
        w = self.weight.type_as(var)
        return x * torch.rsqrt(var + self.eps) * w  # cast-first
        """),
])

# Look-alikes: the variance's values cast and multiplied in (a half-precision copy of the mean
# square; the variance cast to the weight's dtype, ``var.to(w)``: its elements, not a template);
# the variance added to the weight.
TEMPLATE_NOT = HEADER + "".join([
    _rms("HalfVariance", """\
        var = x.pow(2).mean(-1, keepdim=True)
        return x * torch.rsqrt(var + self.eps) * var.to(torch.float16)  # half-variance
        """),
    _rms("VarianceCastToWeight", """\
        var = x.pow(2).mean(-1, keepdim=True)
        return x * torch.rsqrt(var + self.eps) * var.to(self.weight)  # variance-to-weight
        """),
    _rms("WeightPlusVariance", """\
        var = x.pow(2).mean(-1, keepdim=True)
        return x * torch.rsqrt(var + self.eps) * self.weight.add(var)  # weight-plus
        """),
])


@pytest.mark.parametrize("needle", ["# cast-to", "# type-as", "# other-keyword", "# cast-first"])
def test_a_weight_cast_to_the_variance_leaves_an_rms_norm(needle):
    assert finding_at(TEMPLATE_CASTS, "ADP011", needle) is not None


def test_the_variance_read_as_a_value_a_second_time_is_no_rms_norm():
    assert found(TEMPLATE_NOT, "ADP011") == []


def test_a_template_cast_site_is_reported_not_fixed_since_the_cast_still_names_the_variance():
    # deleting ``var = ...`` would leave ``self.weight.to(var)`` undefined: the fixer declines
    planned = plan_findings(analyze(TEMPLATE_CASTS, "model.py", rules("ADP011")), TEMPLATE_CASTS, "model.py")
    assert len(planned) == 4
    assert all(not p.fixable and "`var` is read again" in p.not_fixable for p in planned)
    assert fix_text(TEMPLATE_CASTS, "model.py", rules("ADP011")).text == TEMPLATE_CASTS


def test_the_fixtures_compute_what_they_say():
    """The casts are dtype templates indeed: each module equals the plain weighted RMSNorm."""
    torch = pytest.importorskip("torch")
    scope: dict = {}
    exec(compile(TEMPLATE_CASTS, "casts.py", "exec"), scope)  # noqa: S102 (our own fixture)
    torch.manual_seed(0)
    x = torch.randn(3, 7, 16, dtype=torch.float64)
    for name in ("CastTo", "TypeAs", "OtherKeyword", "CastFirst"):
        m = scope[name](16).double()
        with torch.no_grad():
            m.weight.copy_(torch.randn(16, dtype=torch.float64))
        want = torch.nn.functional.rms_norm(x, (16,), m.weight, eps=1e-6)
        # float64, a 16-term mean: a few ulps
        torch.testing.assert_close(m(x), want, rtol=1e-12, atol=1e-12)


# ------------------------------------------- an RMSNorm helper normalising over a dim parameter

DIM_HELPER = textwrap.dedent("""\
    import torch
    import torch.nn as nn


    def mean_square_norm(x, dim: int = -1, eps: float = 1e-5):
        return x * torch.rsqrt(torch.mean(torch.square(x), dim=dim, keepdim=True) + eps)  # dim-site


    class Norm(nn.Module):
        def __init__(self, axis, eps=1e-5):
            super().__init__()
            self.axis = axis
            self.eps = eps

        def forward(self, x):
            return mean_square_norm(x, dim=self.axis, eps=self.eps)
    """)

# ... and called once at its default, once with a run-time axis: the fix would rewrite the text
# both calls run
DIM_HELPER_MIXED = DIM_HELPER + textwrap.dedent("""\


    class Block(nn.Module):
        def __init__(self, d):
            super().__init__()
            self.lin = nn.Linear(d, d)

        def forward(self, x):
            return mean_square_norm(self.lin(x))
    """)

# Look-alikes: the same helper defaulting to the channel axis of a 4-D input (dim=1), every call
# passing 1; and one at -1 whose every call passes dim=1.
DIM_NOT = textwrap.dedent("""\
    import torch
    import torch.nn as nn


    def channel_norm(x, dim: int = 1, eps: float = 1e-5):
        return x * torch.rsqrt(torch.mean(torch.square(x), dim=dim, keepdim=True) + eps)


    def last_by_default(x, dim: int = -1, eps: float = 1e-5):
        return x * torch.rsqrt(torch.mean(torch.square(x), dim=dim, keepdim=True) + eps)


    class Norm(nn.Module):
        def __init__(self, axis, eps=1e-5):
            super().__init__()
            self.axis = axis
            self.eps = eps

        def forward(self, x):
            return channel_norm(x, dim=self.axis, eps=self.eps) + last_by_default(x, 1)
    """)


def test_a_norm_helper_over_a_run_time_dim_is_found_at_its_default_and_not_fixed():
    planned = plan_findings(analyze(DIM_HELPER, "model.py", rules("ADP011")), DIM_HELPER, "model.py")
    assert finding_at(DIM_HELPER, "ADP011", "# dim-site") is not None
    assert len(planned) == 1 and not planned[0].fixable
    assert "-1 by default" in planned[0].not_fixable
    assert fix_text(DIM_HELPER, "model.py", rules("ADP011")).text == DIM_HELPER


def test_a_helper_called_at_its_default_and_with_another_dim_is_not_fixed():
    # (the fix rewrote the helper for both calls, assuming -1 for the run-time axis)
    planned = plan_findings(analyze(DIM_HELPER_MIXED, "model.py", rules("ADP011")), DIM_HELPER_MIXED, "model.py")
    assert finding_at(DIM_HELPER_MIXED, "ADP011", "# dim-site") is not None
    assert len(planned) == 1 and not planned[0].fixable
    assert "passes another" in planned[0].not_fixable
    assert fix_text(DIM_HELPER_MIXED, "model.py", rules("ADP011")).text == DIM_HELPER_MIXED


def test_norms_over_another_axis_are_not_rms_norms():
    assert found(DIM_NOT, "ADP011") == []


def test_a_helper_every_call_leaves_at_its_default_is_still_fixed():
    code = DIM_HELPER_MIXED.replace("mean_square_norm(x, dim=self.axis, eps=self.eps)", "x")
    fixed = fix_text(code, "model.py", rules("ADP011"))
    assert "x.shape[-1:]" in fixed.text
