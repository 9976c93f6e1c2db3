"""Forms found while checking the blind batch research58 (research repositories' model code:
lumiere's magnitude-preserving attention, video-vit's MaxViT, equiformer, torchmix, torch-
dimensions, mambapy's Jamba, ChatTTS' DVAE, babyGPT).  The fixtures are ours.

- ADP014, missed: a rotate-half whose two halves are laid end to end by einops instead of
  ``torch.cat`` -- ``rearrange([-x2, x1], "j ... d -> ... (j d)")``, the halves taken with
  ``rearrange(x, "... (j d) -> ... j d", j=2).unbind(-2)`` (torchmix's RotaryEmbedding).  einops
  stacks a list on a new first axis; merging that axis, outermost, with the last one and keeping
  every other axis in place is the concatenation along the last axis
  (canon.rearrange_concatenates_last), so the rotation is canon.rotate_half as the ``cat``
  spelling is (graph.FlowBuilder._special_call, ``_rotated_parts``).
Near-misses: the new axis merged innermost (``"j ... d -> ... (d j)"``: the halves interleaved,
another rotation), the new axis kept apart (no merge), the halves in the other order (``[x2,
-x1]``: the negation on the second part), and halves of two different tensors.
"""
from __future__ import annotations

import textwrap

import torch
from einops import rearrange

from corpus_forms import covered

from adopter.structure import canon

ROTARY = textwrap.dedent("""\
    import torch
    from torch import nn
    from einops import rearrange, repeat


    class Rotary(nn.Module):
        def __init__(self, head_dim=64):
            super().__init__()
            inv_freq = 1.0 / (10000 ** (torch.arange(0, head_dim, 2).float() / head_dim))
            self.register_buffer("inv_freq", inv_freq)

        @staticmethod
        def rotate(x):
            x1, x2 = rearrange(x, "... (half d) -> ... half d", half=2).unbind(-2)
            return rearrange([-x2, x1], "half ... d -> ... (half d)")

        def tables(self, n):
            freqs = torch.einsum("i, j -> i j", torch.arange(n).float(), self.inv_freq)
            emb = repeat(freqs, "... f -> ... (r f)", r=2)
            return emb.cos(), emb.sin()

        def embed(self, x, cos, sin):
            return x * cos + self.rotate(x) * sin

        def forward(self, q, k):
            cos, sin = self.tables(q.shape[-2])
            return self.embed(q, cos, sin), self.embed(k, cos, sin)
""")

ROTATION = "return x * cos + self.rotate(x) * sin"
STACKED = 'return rearrange([-x2, x1], "half ... d -> ... (half d)")'


def _with(old: str, new: str) -> str:
    assert old in ROTARY
    return ROTARY.replace(old, new)


def test_halves_laid_end_to_end_by_rearrange_are_the_rotate_half():
    assert covered(ROTARY, ROTATION, "ADP014")


def test_rearrange_with_the_axes_named_is_the_same_concatenation():
    code = _with(STACKED, 'return rearrange((-x2, x1), "half b h n d -> b h n (half d)")')
    assert covered(code, ROTATION, "ADP014")


def test_halves_interleaved_by_rearrange_are_not_the_rotate_half():
    code = _with(STACKED, 'return rearrange([-x2, x1], "half ... d -> ... (d half)")')
    assert not covered(code, ROTATION, "ADP014")


def test_halves_stacked_on_an_axis_of_their_own_are_not_the_rotate_half():
    code = _with(STACKED, 'return rearrange([-x2, x1], "half ... d -> ... d half")')
    assert not covered(code, ROTATION, "ADP014")


def test_halves_in_the_other_order_are_not_the_rotate_half():
    code = _with(STACKED, 'return rearrange([x2, -x1], "half ... d -> ... (half d)")')
    assert not covered(code, ROTATION, "ADP014")


def test_halves_of_two_tensors_are_not_the_rotate_half():
    code = _with("def rotate(x):", "def rotate(x, y):")
    code = code.replace('x1, x2 = rearrange(x, "... (half d) -> ... half d", half=2).unbind(-2)',
                        'x1, _ = rearrange(x, "... (half d) -> ... half d", half=2).unbind(-2)\n'
                        '        _, x2 = rearrange(y, "... (half d) -> ... half d", half=2).unbind(-2)')
    code = code.replace("self.rotate(x) * sin", "self.rotate(x, x.flip(-1)) * sin")
    assert not covered(code, "return x * cos", "ADP014")


def test_the_patterns_read_as_a_concatenation_are_one_at_run_time():
    a, b = torch.randn(2, 3, 4, 5), torch.randn(2, 3, 4, 5)
    for pattern in ("half ... d -> ... (half d)", "two b h n d -> b h n (two d)"):
        assert canon.rearrange_concatenates_last(pattern)
        assert torch.equal(rearrange([a, b], pattern), torch.cat((a, b), dim=-1))
    for pattern in ("half ... d -> ... (d half)", "half ... d -> ... d half", "half b h n d -> h b n (half d)",
                    "... d -> ... d", "half ... -> ... half"):
        assert not canon.rearrange_concatenates_last(pattern)
    interleaved = rearrange([a, b], "half ... d -> ... (d half)")
    assert not torch.equal(interleaved, torch.cat((a, b), dim=-1))
