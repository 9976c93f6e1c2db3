"""Forms found while checking research75's blind batch (LLM and NLP research code: a local
attention with a multi-query key head, a seq2seq lemmatizer's Luong attention, a relative-
position transformer for tagging, Medusa's modified LLaMA).  The fixtures are ours.

- ``torch.mean(torch.square(x), axis=-1, keepdims=True)``: NumPy's ``keepdims=`` is torch's
  ``keepdim=`` (as ``axis=`` is ``dim=``), so the mean square is the RMSNorm's;
- partial rotary written with two-way chunks of the last axis: ``x_rope, x = chunk(inputs, 2)``,
  the halves ``chunk(x_rope, 2)`` rotated per half and ``cat([.., .., x])``, also when the
  angle table is built from positions reshaped in place (only the rotation's own names must
  hold one value each);
- a masking fill held in a module-level constant (``_MIN_LOGITS = -2.3819763e38`` in
  ``torch.where(mask, logits, _MIN_LOGITS)``);
- a one-query attention's probabilities given back their size-1 axis by
  ``p.view(p.size(0), 1, p.size(1))``: every size of p in order with one 1 put in, which is
  ``p.unsqueeze(1)``;
- a Linear, then on a later line a same-file activation helper (``y = gelu(y)``): the finding
  reaches the line that calls the helper.
Near-misses stay unreported: a mean over another axis, a rest that is not the other chunk of
the rotated tensor (or the rotated part the second chunk), a module constant too small to mask
or rebound in the function, sizes of the probabilities out of order.
"""

from __future__ import annotations

from corpus_forms import edit, found, line_of, rules

from adopter.synth import fix_text

RMS = """\
import torch
from torch import nn


class RMSNorm(nn.Module):
    def __init__(self, width, eps=1e-6):
        super().__init__()
        self.eps = eps
        self.scale = nn.Parameter(torch.zeros(width))

    def forward(self, x):
        var = torch.mean(torch.square(x), axis=-1, keepdims=True)
        normed_x = x * torch.rsqrt(var + self.eps)
        return normed_x * (self.scale + 1)
"""


def _covered(code: str, rule: str, needle: str) -> bool:
    line = line_of(code, needle)
    return any(f.line <= line <= f.end_line for f in found(code, rule))


def test_numpy_keepdims_is_keepdim():
    assert _covered(RMS, "ADP011", "normed_x = x * torch.rsqrt")


def test_mean_over_another_axis_with_keepdims_is_no_rms_norm():
    assert found(edit(RMS, "axis=-1, keepdims", "axis=1, keepdims"), "ADP011") == []


def test_the_keepdims_rms_norm_fix_computes_the_original():
    import torch

    fixed = fix_text(RMS, "model.py", rules("ADP011")).text
    assert "rms_norm(" in fixed
    original, patched = {}, {}
    exec(compile(RMS, "orig.py", "exec"), original)  # noqa: S102 (our own fixture)
    exec(compile(fixed, "fixed.py", "exec"), patched)  # noqa: S102
    torch.manual_seed(0)
    x = torch.randn(2, 5, 16, dtype=torch.float64)
    a, b = original["RMSNorm"](16).double(), patched["RMSNorm"](16).double()
    # float64, a mean over 16 features: agreement to rounding
    torch.testing.assert_close(b(x), a(x), rtol=1e-12, atol=1e-12)


ROPE = """\
import torch
from torch import nn


def apply_rope(inputs, positions, max_wavelength=10_000):
    batch, length = positions.shape
    x_rope, x = torch.chunk(inputs, 2, dim=-1)
    positions = positions.reshape(batch, length, 1, 1)
    freq = torch.arange(x_rope.shape[-1] // 2, device=x.device)
    inv = 1.0 / max_wavelength ** (2 * freq / x_rope.shape[-1])
    angles = positions * inv
    sin = torch.sin(angles).type_as(inputs)
    cos = torch.cos(angles).type_as(inputs)
    first_half, second_half = torch.chunk(x_rope, 2, dim=-1)
    first_part = first_half * cos - second_half * sin
    second_part = second_half * cos + first_half * sin
    return torch.concatenate([first_part, second_part, x], dim=-1)


class Attention(nn.Module):
    def forward(self, q, k, positions):
        return apply_rope(q, positions), apply_rope(k, positions)
"""


def test_partial_rotary_written_with_chunks_is_rope():
    assert _covered(ROPE, "ADP014", "first_part = first_half * cos")


def test_chunked_partial_rotary_near_misses():
    # the rest is not the other chunk of the rotated tensor
    other = edit(edit(ROPE, "def apply_rope(inputs, positions,", "def apply_rope(inputs, other, positions,"),
                 "x_rope, x = torch.chunk(inputs, 2, dim=-1)",
                 "x_rope, _ = torch.chunk(inputs, 2, dim=-1)\n    _, x = torch.chunk(other, 2, dim=-1)")
    other = edit(other, "apply_rope(q, positions), apply_rope(k, positions)",
                 "apply_rope(q, k, positions), apply_rope(k, q, positions)")
    # the second chunk rotated and the first kept after it: not the head's rotary prefix
    second = edit(ROPE, "x_rope, x = torch.chunk(inputs, 2, dim=-1)", "x, x_rope = torch.chunk(inputs, 2, dim=-1)")
    # three chunks: the halves are not the two halves of the prefix
    thirds = edit(ROPE, "first_half, second_half = torch.chunk(x_rope, 2, dim=-1)",
                  "first_half, second_half, _ = torch.chunk(x_rope, 3, dim=-1)")
    # the halves of another tensor
    elsewhere = edit(ROPE, "first_half, second_half = torch.chunk(x_rope, 2, dim=-1)",
                     "first_half, second_half = torch.chunk(x, 2, dim=-1)")
    # not a rotation: both products added
    added = edit(ROPE, "first_half * cos - second_half * sin", "first_half * cos + second_half * sin")
    for code in (other, second, thirds, elsewhere, added):
        assert found(code, "ADP014") == [], code


LOCAL = """\
import torch
from torch import nn

_MIN_LOGITS = -2.3819763e38


class LocalAttention(nn.Module):
    def __init__(self, width, heads):
        super().__init__()
        self.heads = heads
        self.head_dim = width // heads
        self.proj_q = nn.Linear(width, width, bias=False)
        self.proj_k = nn.Linear(width, width, bias=False)
        self.proj_v = nn.Linear(width, width, bias=False)

    def forward(self, x, attn_mask):
        b, t, _ = x.shape
        q = self.proj_q(x).view(b, t, self.heads, self.head_dim)
        k = self.proj_k(x).view(b, t, self.heads, self.head_dim)
        v = self.proj_v(x).view(b, t, self.heads, self.head_dim)
        logits = torch.einsum("btnh,bsnh->bnts", q, k)
        logits = logits * (self.head_dim**-0.5)
        masked = torch.where(attn_mask[:, None], logits, _MIN_LOGITS)
        masked = masked.type(torch.float32)
        probs = nn.functional.softmax(masked, dim=-1).type_as(x)
        out = torch.einsum("bnts,bsnh->btnh", probs, v)
        return out.reshape(b, t, -1)
"""


def test_a_fill_held_in_a_module_constant_masks():
    assert _covered(LOCAL, "ADP010", "probs = nn.functional.softmax")


def test_module_constants_that_do_not_mask():
    small = edit(LOCAL, "_MIN_LOGITS = -2.3819763e38", "_MIN_LOGITS = -1.0")
    rebound = edit(LOCAL, "        b, t, _ = x.shape", "        b, t, _ = x.shape\n        _MIN_LOGITS = 0.0")
    taken = edit(LOCAL, "def forward(self, x, attn_mask):", "def forward(self, x, attn_mask, _MIN_LOGITS=0.0):")
    for code in (small, rebound, taken):
        assert found(code, "ADP010") == [], code


def test_the_module_constant_fill_fix_computes_the_original():
    import torch

    fixed = fix_text(LOCAL, "model.py", rules("ADP010")).text
    assert "scaled_dot_product_attention(" in fixed
    original, patched = {}, {}
    exec(compile(LOCAL, "orig.py", "exec"), original)  # noqa: S102 (our own fixture)
    exec(compile(fixed, "fixed.py", "exec"), patched)  # noqa: S102
    torch.manual_seed(0)
    a = original["LocalAttention"](16, 4)
    b = patched["LocalAttention"](16, 4)
    b.load_state_dict(a.state_dict())
    x = torch.randn(2, 6, 16)
    mask = torch.ones(6, 6, dtype=torch.bool).tril().expand(2, 6, 6)
    # float32 (the upcast a no-op, as the original's .type(torch.float32) would round a float64
    # input): a softmax over 6 keys and 4-wide products, a few float32 ulps
    torch.testing.assert_close(b(x, mask), a(x, mask), rtol=1e-5, atol=1e-6)


SOFT_DOT = """\
import torch
from torch import nn


class SoftDotAttention(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.linear_in = nn.Linear(dim, dim, bias=False)
        self.sm = nn.Softmax(dim=1)
        self.linear_out = nn.Linear(dim * 2, dim, bias=False)

    def forward(self, input, context):
        target = self.linear_in(input).unsqueeze(2)
        attn = torch.bmm(context, target).squeeze(2)
        attn = self.sm(attn)
        attn3 = attn.view(attn.size(0), 1, attn.size(1))
        weighted_context = torch.bmm(attn3, context).squeeze(1)
        return torch.tanh(self.linear_out(torch.cat((weighted_context, input), 1)))
"""


def test_a_view_that_puts_one_size_one_axis_back_is_an_unsqueeze():
    assert _covered(SOFT_DOT, "ADP010", "attn = self.sm(attn)")


def test_views_that_are_no_unsqueeze_stay_unread():
    swapped = edit(SOFT_DOT, "attn.view(attn.size(0), 1, attn.size(1))", "attn.view(attn.size(1), 1, attn.size(0))")
    two = edit(SOFT_DOT, "attn.view(attn.size(0), 1, attn.size(1))", "attn.view(attn.size(0), 1, 1, attn.size(1))")
    for code in (swapped, two):
        assert found(code, "ADP010") == [], code


def test_the_viewed_one_query_fix_computes_the_original():
    import torch

    fixed = fix_text(SOFT_DOT, "model.py", rules("ADP010")).text
    assert "scaled_dot_product_attention(" in fixed
    original, patched = {}, {}
    exec(compile(SOFT_DOT, "orig.py", "exec"), original)  # noqa: S102 (our own fixture)
    exec(compile(fixed, "fixed.py", "exec"), patched)  # noqa: S102
    torch.manual_seed(0)
    a = original["SoftDotAttention"](8).double()
    b = patched["SoftDotAttention"](8).double()
    b.load_state_dict(a.state_dict())
    query = torch.randn(3, 8, dtype=torch.float64)
    context = torch.randn(3, 5, 8, dtype=torch.float64)
    # float64, a softmax over 5 keys and 8-wide products: agreement to rounding
    torch.testing.assert_close(b(query, context), a(query, context), rtol=1e-12, atol=1e-12)


HELPER = """\
import torch
from torch import nn


def gelu(x):
    return nn.functional.gelu(x, approximate="tanh")


class Gated(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.linear_y = nn.Linear(d, d)
        self.linear_x = nn.Linear(d, d)

    def forward(self, x):
        y = self.linear_y(x)
        y = gelu(y)
        return self.linear_x(x) * y
"""


def test_the_finding_reaches_the_line_calling_the_activation_helper():
    (finding,) = found(HELPER, "ADP006")
    assert finding.line <= line_of(HELPER, "y = gelu(y)") <= finding.end_line


def test_a_helper_called_in_the_layers_own_statement_keeps_its_span():
    code = edit(HELPER, "        y = self.linear_y(x)\n        y = gelu(y)\n", "        y = gelu(self.linear_y(x))\n")
    (finding,) = found(code, "ADP006")
    assert finding.end_line == line_of(code, "y = gelu(self.linear_y(x))")
