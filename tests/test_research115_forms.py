"""Forms found while checking the blind batch of research115 (speech and audio models outside
the big toolkits: source separation, diarization, music transcription, sound event detection).
The fixtures are ours.

- Hand-written attention in the handler of a ``try`` whose body calls a closure defined in the
  enclosing function (``def _sdpa(q, k, v): return F.scaled_dot_product_attention(...)``, then
  ``try: out = _sdpa(q, k, v) except RuntimeError: <manual attention>``): the kernel is already
  adopted there, the manual code its fallback, as when the try body calls it by name.
Near-misses that stay reported: a handler whose try body calls a closure that does not call the
kernel, and a handler whose try body calls a function of that name defined in another function
(only the enclosing functions' own closures are read).
"""

from __future__ import annotations

from corpus_forms import found

CLOSURE_FALLBACK = """\
import torch
import torch.nn.functional as F
from torch import einsum, nn


class Attend(nn.Module):
    def __init__(self, scale=None):
        super().__init__()
        self.scale = scale

    def forward(self, q, k, v):
        scale = self.scale if self.scale is not None else q.shape[-1] ** -0.5

        def _fused(q, k, v):
            return F.scaled_dot_product_attention(q, k, v, scale=scale)

        try:
            with torch.autocast(device_type="cpu", enabled=False):
                out = _fused(q, k, v)
        except RuntimeError:
            sim = einsum("b h i d, b h j d -> b h i j", q, k) * scale
            attn = sim.softmax(dim=-1)
            out = einsum("b h i j, b h j d -> b h i d", attn, v)
        return out
"""

NOT_A_FALLBACK = """\
import torch
import torch.nn.functional as F
from torch import einsum, nn


def _other_scope():
    def _fused(q, k, v):
        return F.scaled_dot_product_attention(q, k, v)
    return _fused


class Attend(nn.Module):
    def forward(self, q, k, v):
        scale = q.shape[-1] ** -0.5

        def _prepare(q, k, v):
            return q.contiguous(), k.contiguous(), v.contiguous()

        try:
            q, k, v = _prepare(q, k, v)
        except RuntimeError:
            pass
        try:
            out = _fused(q, k, v)
        except RuntimeError:
            sim = einsum("b h i d, b h j d -> b h i j", q, k) * scale
            attn = sim.softmax(dim=-1)
            out = einsum("b h i j, b h j d -> b h i d", attn, v)
        return out


class Plain(nn.Module):
    def forward(self, q, k, v):
        def _prepare(q):
            return q * 1.0

        try:
            q = _prepare(q)
        except RuntimeError:
            sim = einsum("b h i d, b h j d -> b h i j", q, k)
            attn = sim.softmax(dim=-1)
            return einsum("b h i j, b h j d -> b h i d", attn, v)
        return q
"""


def test_manual_attention_in_the_handler_of_a_closure_calling_sdpa_is_not_reported():
    assert found(CLOSURE_FALLBACK, "ADP010") == []


def test_handlers_of_other_closures_or_another_functions_def_stay_reported():
    softmaxes = [i for i, text in enumerate(NOT_A_FALLBACK.splitlines(), 1) if "sim.softmax(" in text]
    spans = [(f.line, f.end_line) for f in found(NOT_A_FALLBACK, "ADP010")]
    assert len(softmaxes) == 2
    for line in softmaxes:
        assert any(start <= line <= end for start, end in spans), (line, spans)
