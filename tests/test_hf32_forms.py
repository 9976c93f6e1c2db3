"""Forms from hf32's blind batch of transformers 5.23.0 model files (moonshine_streaming's frame
normalisation).  Our own fixtures, each with near-misses."""

from __future__ import annotations

import textwrap

from corpus_forms import finding_at, found

# ---------- ADP011: the root mean square of a value centred on its own mean is a layer norm

CENTRED = textwrap.dedent("""\
    import torch
    from torch import nn


    class FrameNorm(nn.Module):
        def __init__(self, eps: float = 1e-6):
            super().__init__()
            self.eps = eps

        def forward(self, x):
            CENTRE
            NORM
""")

# (how the value is centred, what the norm then divides or multiplies)
CENTRINGS = (
    # a name for the mean, one for the centred value (moonshine_streaming's frame CMVN)
    ("mean = x.mean(dim=-1, keepdim=True)\n        c = x - mean", "c"),
    # the mean inline
    ("c = x - x.mean(-1, keepdim=True)", "c"),
    # the input name rebound to its centred value
    ("x = x - torch.mean(x, dim=-1, keepdim=True)", "x"),
)

NORMS = (
    "return {v} / (({v}.pow(2).mean(dim=-1, keepdim=True) + self.eps).sqrt())",
    "return {v} * torch.rsqrt({v}.pow(2).mean(-1, keepdim=True) + self.eps)",
    "return {v} * torch.rsqrt(({v} ** 2).mean(-1, keepdim=True) + self.eps)",
)


def _code(centre: str, norm: str) -> str:
    return CENTRED.replace("CENTRE", centre).replace("NORM", norm)


def test_rms_of_a_value_centred_on_its_own_mean_is_not_rms_norm():
    # (x - mean(x)) / sqrt(mean((x - mean(x))^2) + eps): the variance, a layer norm without
    # affine (the guide: layer norms that subtract the mean are not RMSNorm)
    for centre, value in CENTRINGS:
        for norm in NORMS:
            code = _code(centre, norm.format(v=value))
            assert found(code, "ADP011") == [], (centre, norm)


def test_rms_norm_of_other_differences_is_still_found():
    # near-misses: a difference that is no centring (a residual, a mean over another axis, the
    # mean of another tensor) leaves an RMS norm of that difference
    for centre in (
        "c = x - self.eps",
        "c = x - x.mean(dim=1, keepdim=True)",
        "c = x - x.flip(0).mean(-1, keepdim=True)",
        "c = x[..., 1:] - x[..., :-1]",
    ):
        for norm in NORMS:
            code = _code(centre, norm.format(v="c"))
            assert finding_at(code, "ADP011", "return c") is not None, (centre, norm)


def test_plain_rms_norm_after_a_centring_elsewhere_is_still_found():
    # near-miss: the centred value is computed, but the norm reads the input itself
    code = _code("c = x - x.mean(-1, keepdim=True)\n        self.last = c",
                 "return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)")
    assert finding_at(code, "ADP011", "return x") is not None


# ---------- ADP011: the inverse RMS of an upcast copy cast back before it scales x

CAST_BACK = textwrap.dedent("""\
    import torch
    from torch import nn


    class UnweightedNorm(nn.Module):
        def __init__(self, eps: float = 1e-6):
            super().__init__()
            self.eps = eps

        def forward(self, x):
            return NORM
""")

CAST_BACK_NORMS = (
    # deepseek_v4 / glm5_next / inkling2's unweighted norm
    "x * torch.rsqrt(x.float().square().mean(-1, keepdim=True) + self.eps).to(x.dtype)",
    "x * torch.rsqrt(x.to(torch.float32).pow(2).mean(dim=-1, keepdim=True) + self.eps).to(x.dtype)",
    "torch.rsqrt((x.float() ** 2).mean(-1, keepdim=True) + self.eps).to(x.dtype) * x",
)


def test_inverse_rms_cast_back_is_rms_norm_and_fixed():
    import torch

    from adopter.synth.core import fix_text
    from corpus_forms import float64_pair, rules

    for norm in CAST_BACK_NORMS:
        code = CAST_BACK.replace("NORM", norm)
        assert finding_at(code, "ADP011", "return") is not None, norm
        result = fix_text(code, "model.py", rules("ADP011"))
        assert [f.rule for f in result.applied] == ["ADP011"], norm
        assert "rms_norm(" in result.text and ".to(x.dtype)" in result.text, result.text
        a, b = float64_pair(code, result.text, "UnweightedNorm")
        # float32 input: the code's mean square is computed in float32 whatever the input's dtype
        x = torch.randn(2, 5, 8)
        torch.testing.assert_close(b.float()(x), a.float()(x), rtol=1e-6, atol=1e-6)
        # the cast back kept: a half-precision input stays half precision, as the code's product
        h = torch.randn(2, 5, 8).to(torch.bfloat16)
        assert b.float()(h).dtype == a.float()(h).dtype == torch.bfloat16
        torch.testing.assert_close(b.float()(h).float(), a.float()(h).float(), rtol=2e-2, atol=2e-2)


def test_inverse_rms_cast_to_another_tensor_is_reported_not_rewritten_wrongly():
    # `.type_as(x)`: found; the dtype it casts to is not written in the code, so the fix
    # declines it (it must not render another form's target that drops the cast)
    from adopter.synth.core import fix_text
    from corpus_forms import rules

    code = CAST_BACK.replace("NORM", "x * torch.rsqrt(x.float().pow(2).mean(-1, keepdim=True) + self.eps).type_as(x)")
    assert finding_at(code, "ADP011", "return") is not None
    result = fix_text(code, "model.py", rules("ADP011"))
    assert result.applied == [] and result.text == code


def test_cast_back_look_alikes_are_not_rms_norm():
    # near-misses: a sum of squares (an L2 norm), a mean over another axis, a cast of the
    # squares' mean of another tensor
    for norm in (
        "x * torch.rsqrt(x.float().square().sum(-1, keepdim=True) + self.eps).to(x.dtype)",
        "x * torch.rsqrt(x.float().square().mean(1, keepdim=True) + self.eps).to(x.dtype)",
        "x * torch.rsqrt(x.flip(0).float().square().mean(-1, keepdim=True) + self.eps).to(x.dtype)",
    ):
        assert found(CAST_BACK.replace("NORM", norm), "ADP011") == [], norm
