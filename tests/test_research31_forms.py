"""Forms found while checking the blind batch research31 (research reimplementations:
lightning-thunder's nanoGPT / llama2.c / BART copies, bitnet, the linear-attention, reformer,
routing and sinkhorn transformers, snac, so-vits-svc-fork, xcodec2, altasr).  The fixtures are
ours.

- Rotate-half written through ``einops.rearrange`` with kept axes named before the ellipsis or
  instead of it (snac: ``rearrange(x, "b ... (r d) -> b ... r d", r=2)`` then ``unbind(dim=-2)``
  and ``cat((-x2, x1), -1)``): the split of the last axis into two halves is the same
  computation as ``"... (j d) -> ... j d"``, which alone was read.  Near-misses: the
  interleaved split ``"... (d r) -> ... r d"`` (rotate-every-two) and a pattern that moves a
  kept axis (``"b ... (r d) -> ... b r d"``) are no rotate-half.
"""

from __future__ import annotations

import pytest

from corpus_forms import finding_at

ROPE = """\
import torch
from einops import rearrange


def rotate_half(x):
    x = rearrange(x, "PATTERN", r=2)
    x1, x2 = x.unbind(dim=-2)
    return torch.cat((-x2, x1), dim=-1)


def apply_rotary_pos_emb(q, k, cos, sin):
    q = (q * cos) + (rotate_half(q) * sin)
    k = (k * cos) + (rotate_half(k) * sin)
    return q, k
"""

NEEDLE = "q = (q * cos) + (rotate_half(q) * sin)"


@pytest.mark.parametrize("pattern", [
    "b ... (r d) -> b ... r d",
    "b h n (r d) -> b h n r d",
    "b ...(r d)->b ... r d",
    "... (r d) -> ... r d",
])
def test_rearrange_split_with_kept_axes_is_rotate_half(pattern):
    assert finding_at(ROPE.replace("PATTERN", pattern), "ADP014", NEEDLE) is not None


@pytest.mark.parametrize("pattern", [
    "b ... (d r) -> b ... r d",  # interleaved pairs: rotate-every-two
    "... (d r) -> ... r d",
    "b ... (r d) -> ... b r d",  # a kept axis moved
    "b h n (r d) -> b n h r d",
    "b ... (r d) -> b ... d r",
])
def test_other_rearranges_are_not_rotate_half(pattern):
    assert finding_at(ROPE.replace("PATTERN", pattern), "ADP014", NEEDLE) is None
