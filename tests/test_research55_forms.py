"""Forms found while checking the blind batch research55 (PhysicsNeMo, MambaVision, TerraMind,
SAM 3, xLSTM).  The fixtures are ours.

- ADP013, missed: xLSTM's gated feed-forward cuts one projection with ``split`` at a size
  written as a name, ``gate, up = self.proj_up(x).split(self.d, dim=-1)``, the projection
  built ``nn.Linear(..., out_features=2 * self.d)``.  Split into parts of ``d`` along the last
  axis of a ``2 * d`` wide output and unpacked into two names, the parts are the two halves
  (``chunk(2, dim=-1)``).  The flow builder read such a cut only when the size was written
  ``h.shape[-1] // 2`` or ``[n, n]`` of a name; it now also reads a single size ``n`` when the
  split tensor is a Linear attribute's call (or a name last bound to one) whose every
  construction writes the output width ``2 * n`` (the same text as ``n``, no call in it), as
  ``tensor_split`` already was.
Near-misses: a width of ``3 * n`` or ``2 * n + 1``, a size written differently from the
width's half, a split along another axis, a convolution's output, parts of ``n`` of an
unknown tensor, a fixed GELU gate (GeGLU).
"""
from __future__ import annotations

from corpus_forms import covered, findings

GATED_FFN = '''\
import torch
from torch import nn

_registry = {
    "gelu": nn.functional.gelu,
    "swish": nn.functional.silu,
}


def get_act(name):
    return _registry[name]


class GatedFeedForward(nn.Module):
    def __init__(self, dim, inner, act="swish"):
        super().__init__()
        self.inner = inner
        self.proj_up = nn.Linear(in_features=dim, out_features=2 * self.inner, bias=False)
        self.proj_down = nn.Linear(self.inner, dim, bias=False)
        self.act_fn = get_act(act)

    def forward(self, x):
        gate, up = self.proj_up(x).split(self.inner, dim=-1)
        return self.proj_down(self.act_fn(gate) * up)
'''
NEEDLE = "return self.proj_down(self.act_fn(gate) * up)"


def test_split_at_half_a_linear_width_is_its_halves():
    assert covered(GATED_FFN, NEEDLE, "ADP013")


def test_split_variants():
    # the projection held in a name first, and the width written n * 2
    named = GATED_FFN.replace("gate, up = self.proj_up(x).split(self.inner, dim=-1)",
                              "h = self.proj_up(x)\n        gate, up = h.split(self.inner, dim=-1)").replace(
        "out_features=2 * self.inner", "out_features=self.inner * 2")
    assert covered(named, NEEDLE, "ADP013")
    # torch.split, positional dim, the up half first
    functional = GATED_FFN.replace("gate, up = self.proj_up(x).split(self.inner, dim=-1)",
                                   "up, gate = torch.split(self.proj_up(x), self.inner, -1)")
    assert covered(functional, NEEDLE, "ADP013")
    # a fixed SiLU and a literal width
    literal = GATED_FFN.replace("2 * self.inner", "2 * 256").replace("split(self.inner,", "split(256,").replace(
        "self.act_fn(gate)", "torch.nn.functional.silu(gate)")
    assert covered(literal, "return self.proj_down(torch.nn.functional.silu(gate) * up)", "ADP013")


def test_look_alikes_are_not_halves():
    # three parts' width: the two names would not hold the halves (the unpacking fails)
    three = GATED_FFN.replace("out_features=2 * self.inner", "out_features=3 * self.inner")
    assert not findings(three, "ADP013")
    # one more column than two parts: not halves
    odd = GATED_FFN.replace("out_features=2 * self.inner", "out_features=2 * self.inner + 1")
    assert not findings(odd, "ADP013")
    # a size written otherwise than the width's half (maybe another number)
    other = GATED_FFN.replace("split(self.inner, dim=-1)", "split(self.other, dim=-1)").replace(
        "self.inner = inner", "self.inner = inner\n        self.other = inner // 2")
    assert not findings(other, "ADP013")
    # split along the sequence axis
    seq = GATED_FFN.replace("split(self.inner, dim=-1)", "split(self.inner, dim=1)")
    assert not findings(seq, "ADP013")
    # a convolution's output (channels first), not a Linear's
    conv = GATED_FFN.replace("nn.Linear(in_features=dim, out_features=2 * self.inner, bias=False)",
                             "nn.Conv1d(dim, 2 * self.inner, 1)")
    assert not findings(conv, "ADP013")
    # parts of an argument of unknown width
    unknown = GATED_FFN.replace("def forward(self, x):", "def forward(self, x, h):").replace(
        "self.proj_up(x).split(self.inner, dim=-1)", "h.split(self.inner, dim=-1)")
    assert not findings(unknown, "ADP013")
    # a fixed GELU gate is GeGLU
    geglu = GATED_FFN.replace("self.act_fn(gate)", "torch.nn.functional.gelu(gate)")
    assert not findings(geglu, "ADP013")
