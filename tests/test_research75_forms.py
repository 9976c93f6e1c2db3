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
