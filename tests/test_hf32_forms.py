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
