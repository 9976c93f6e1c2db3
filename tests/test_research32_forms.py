"""Forms found while checking the blind batch research32 (vision and speech reimplementations:
windowed and channel attention, Conformer and VITS-style encoders, an icefall-style attention
decoder, a DINOv2-based segmenter).  The fixtures are ours.

- Projections bound by unpacking a comprehension in ``__init__`` (``self.q, self.k, self.v,
  self.o = (nn.Linear(dim, dim) for _ in range(4))``): each name holds one layer the
  comprehension builds, so three of them projecting one input are a fused-QKV site (ADP009).
  Near-misses: the comprehension builds convolutions, the projections read two inputs, or only
  two of the three are Linears built so.
"""

from __future__ import annotations

from corpus_forms import finding_at, found

UNPACKED = """\
import torch.nn as nn


class Refiner(nn.Module):
    def __init__(self, dim=16, heads=4):
        super().__init__()
        self.h = heads
        self.norm = nn.LayerNorm(dim)
        BINDING

    def forward(self, x, y):
        n = self.norm(x)
        q, k, v = self.q(n), self.k(INPUT), self.v(n)
        return x + self.o(q * k + v)
"""


def _unpacked(binding: str, key_input: str = "n") -> str:
    return UNPACKED.replace("BINDING", binding).replace("INPUT", key_input)


def test_projections_unpacked_from_a_generator_are_fused_qkv():
    code = _unpacked("self.q, self.k, self.v, self.o = (nn.Linear(dim, dim) for _ in range(4))")
    assert finding_at(code, "ADP009", "q, k, v = self.q(n), self.k(n), self.v(n)") is not None


def test_projections_unpacked_from_a_list_comprehension_are_fused_qkv():
    code = _unpacked("self.q, self.k, self.v, self.o = [nn.Linear(dim, dim, bias=False) for i in range(4)]")
    assert finding_at(code, "ADP009", "q, k, v = self.q(n), self.k(n), self.v(n)") is not None


def test_convolutions_unpacked_from_a_generator_are_not_linear_projections():
    code = _unpacked("self.q, self.k, self.v, self.o = (nn.Conv1d(dim, dim, 1) for _ in range(4))")
    assert found(code, "ADP009") == []


def test_unpacked_projections_of_two_inputs_are_not_one_input():
    code = _unpacked("self.q, self.k, self.v, self.o = (nn.Linear(dim, dim) for _ in range(4))", key_input="y")
    assert found(code, "ADP009") == []


def test_two_unpacked_linears_and_a_convolution_are_not_three_projections():
    code = _unpacked("self.q, self.k, self.o = (nn.Linear(dim, dim) for _ in range(3))\n"
                     "        self.v = nn.Conv1d(dim, dim, 1)")
    assert found(code, "ADP009") == []
