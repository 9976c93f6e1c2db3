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
    from corpus_forms import float64_pair, rules

    from adopter.synth.core import fix_text

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
    from corpus_forms import rules

    from adopter.synth.core import fix_text

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


# ---------- ADP010: the row maximum subtracted before the fill (evolla's sequence compressor)

RESAMPLER = textwrap.dedent("""\
    import torch
    from torch import nn


    class Resampler(nn.Module):
        def __init__(self, dim, dim_head=4, heads=2):
            super().__init__()
            self.scale = dim_head**-0.5
            self.heads = heads
            inner_dim = dim_head * heads
            self.to_q = nn.Linear(dim, inner_dim, bias=False)
            self.to_kv = nn.Linear(dim, inner_dim * 2, bias=False)
            self.to_out = nn.Linear(inner_dim, dim, bias=False)

        def forward(self, x, latents, mask):
            h = self.heads
            q = self.to_q(latents)
            kv_input = torch.cat((x, latents), dim=-2)
            k, v = self.to_kv(kv_input).chunk(2, dim=-1)
            q = q.view(q.size(0), q.size(1), h, -1).permute(0, 2, 1, 3)
            k = k.view(k.size(0), k.size(1), h, -1).permute(0, 2, 1, 3)
            v = v.view(v.size(0), v.size(1), h, -1).permute(0, 2, 1, 3)
            q = q * self.scale
            sim = torch.matmul(q, k.transpose(-1, -2))
            SHIFT
            bs, nh, skd, okd = sim.shape
            ones = torch.ones(nh, skd).to(mask.device)
            mask = mask[:, None, None, :] * ones[None, :, :, None]
            FILL
            attn = sim.softmax(dim=-1)
            out = torch.matmul(attn, v)
            out = out.permute(0, 2, 1, 3)
            out = out.reshape(out.size(0), out.size(1), -1)
            return self.to_out(out)
""")

SHIFTS = (
    "sim = sim - sim.amax(dim=-1, keepdim=True).detach()",
    "sim = sim - sim.max(dim=-1, keepdim=True).values",
)
FILLS = (
    "sim = sim.masked_fill((1 - mask).bool(), -1e4)",
    "sim = sim.masked_fill(mask == 0, float('-inf'))",
)


def test_row_max_shift_before_the_fill_is_sdpa():
    import torch
    from corpus_forms import float64_pair, rules

    from adopter.synth.core import fix_text

    for shift in SHIFTS:
        for fill in FILLS:
            code = RESAMPLER.replace("SHIFT", shift).replace("FILL", fill)
            assert finding_at(code, "ADP010", "attn = sim.softmax") is not None, (shift, fill)
            result = fix_text(code, "model.py", rules("ADP010"))
            assert [f.rule for f in result.applied] == ["ADP010"], (shift, fill, result.skipped)
            assert "scaled_dot_product_attention(" in result.text
            a, b = float64_pair(code, result.text, "Resampler", dim=8)
            torch.manual_seed(1)
            x, latents = torch.randn(2, 5, 8, dtype=torch.float64), torch.randn(2, 3, 8, dtype=torch.float64)
            mask = torch.ones(2, 8, dtype=torch.float64)
            mask[0, 2:5] = 0
            torch.testing.assert_close(b(x, latents, mask), a(x, latents, mask), rtol=1e-9, atol=1e-9)


def test_shift_look_alikes_before_the_fill_are_not_sdpa():
    # near-misses: a maximum over the query axis (not a row constant), a maximum of another
    # tensor, probabilities renormalised after the softmax
    for shift, extra in (
        ("sim = sim - sim.amax(dim=-2, keepdim=True).detach()", ""),
        ("sim = sim - x.amax(dim=-1, keepdim=True)", ""),
        ("sim = sim - sim.amax(dim=-1, keepdim=True).detach()",
         "\n        attn = attn / attn.sum(dim=-2, keepdim=True)"),
    ):
        code = RESAMPLER.replace("SHIFT", shift).replace("FILL", FILLS[0])
        code = code.replace("attn = sim.softmax(dim=-1)", "attn = sim.softmax(dim=-1)" + extra)
        assert finding_at(code, "ADP010", "attn = sim.softmax") is None, (shift, extra)


def test_scores_shape_unpacked_before_the_fill_is_read_off_q_and_k_whole():
    # `bs, nh, skd, okd = sim.shape` read before the fill (the shift after it, the form the
    # first pattern already found): the guard reads nh and skd off q's and k's shapes; the
    # shape's expression is one value indexed (`(<batch axes> + (<q len>, <k len>))[1]`), not
    # an index of its last term (a TypeError on the fixed module)
    import torch
    from corpus_forms import float64_pair, rules

    from adopter.synth.core import fix_text

    code = RESAMPLER.replace("SHIFT", "").replace("FILL", FILLS[0] + "\n        " + SHIFTS[0])
    result = fix_text(code, "model.py", rules("ADP010"))
    assert [f.rule for f in result.applied] == ["ADP010"]
    a, b = float64_pair(code, result.text, "Resampler", dim=8)
    x, latents = torch.randn(2, 5, 8, dtype=torch.float64), torch.randn(2, 3, 8, dtype=torch.float64)
    mask = torch.ones(2, 8, dtype=torch.float64)
    mask[1, :4] = 0
    torch.testing.assert_close(b(x, latents, mask), a(x, latents, mask), rtol=1e-9, atol=1e-9)
