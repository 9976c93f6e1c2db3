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
from corpus_forms import finding_at, float64_pair, rules

from adopter.synth import fix_text

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


# ---------------------------------------------------------------------------------------------
# A finite fill the scale then divides (bitnet's GQA helper: `similarity.masked_fill_(~mask,
# torch.finfo(similarity.dtype).min)`, then `F.softmax(similarity / scale, -1)`; the causal mask
# made on `query.device` after `query = query / scale`): the fused call's mask holds the fill
# divided the same way, and the guard for rows filled entirely reads the mask's device off q as
# bound before the attention (a device places a tensor, it changes no value).  Main declined it
# ("a finite fill value scaled with the scores").  Near-miss: a scale that is a learned tensor
# (any sign) is still declined.

GQA = '''\
import torch
import torch.nn as nn
import torch.nn.functional as F
from einops import einsum, rearrange


def grouped_attention(query, key, value, mask=None, is_causal=None, scale=None):
    query = rearrange(query, "b n h d -> b h n d")
    key = rearrange(key, "b s h d -> b h s d")
    value = rearrange(value, "b s h d -> b h s d")
    bq, hq, nq, dq = query.shape
    bk, hk, nk, dk = key.shape
    if scale is None:
        scale = query.size(-1) ** 0.5
    query = query / scale
    similarity = einsum(query, key, "b h n d, b h s d -> b h n s")
    if is_causal:
        mask = torch.ones((bq, nq, nk), device=query.device, dtype=torch.bool).tril_()
    if mask is not None:
        if mask.ndim == 3:
            mask = rearrange(mask, "b n s -> b () n s")
        similarity.masked_fill_(~mask, torch.finfo(similarity.dtype).min)
    attention = F.softmax(similarity / SCALE, dim=-1)  # site
    out = einsum(attention, value, "b h n s, b h s d -> b h n d")
    return rearrange(out, "b h n d -> b n h d")


class Attn(nn.Module):
    def __init__(self, dim=16, heads=2):
        super().__init__()
        self.heads = heads
        self.q = nn.Linear(dim, dim)
        self.k = nn.Linear(dim, dim)
        self.v = nn.Linear(dim, dim)
        self.temperature = nn.Parameter(torch.ones(1))

    def forward(self, x, causal=None, mask=None):
        q = rearrange(self.q(x), "b n (h d) -> b n h d", h=self.heads)
        k = rearrange(self.k(x), "b n (h d) -> b n h d", h=self.heads)
        v = rearrange(self.v(x), "b n (h d) -> b n h d", h=self.heads)
        return grouped_attention(q, k, v, mask=mask, is_causal=causal)
'''


@pytest.mark.parametrize("causal, padded", [(True, False), (None, True), (None, False)])
def test_finite_fill_before_a_size_scale_is_fixed_and_matches(causal, padded):
    import torch

    code = GQA.replace("SCALE", "scale")
    assert finding_at(code, "ADP010", "# site") is not None
    fixed = fix_text(code, "model.py", rules("ADP010")).text
    assert "scaled_dot_product_attention(" in fixed
    assert "/ (scale)" in fixed  # the fill, divided as the scores are
    a, b = float64_pair(code, fixed, "Attn")
    torch.manual_seed(1)
    x = torch.randn(2, 5, 16, dtype=torch.float64, requires_grad=True)
    mask = None
    if padded:
        mask = torch.ones(2, 5, 5, dtype=torch.bool)
        mask[1, :, 3:] = False  # padding keys, every row keeps some
    torch.testing.assert_close(b(x, causal, mask), a(x, causal, mask), rtol=0, atol=1e-12)
    ga = torch.autograd.grad(a(x, causal, mask).sum(), x)[0]
    gb = torch.autograd.grad(b(x, causal, mask).sum(), x)[0]
    torch.testing.assert_close(gb, ga, rtol=0, atol=1e-12)


LEARNED = '''\
import torch
import torch.nn as nn
import torch.nn.functional as F


class Attn(nn.Module):
    def __init__(self, dim=16):
        super().__init__()
        self.qkv = nn.Linear(dim, 3 * dim)
        self.temperature = nn.Parameter(torch.ones(1))

    def forward(self, x, mask):
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        sim = q @ k.transpose(-2, -1)
        sim = sim.masked_fill(~mask, torch.finfo(sim.dtype).min)
        attn = F.softmax(sim / SCALE, dim=-1)  # site
        return attn @ v
'''


def test_finite_fill_before_a_learned_scale_is_not_fixed():
    # a learned temperature may have any sign: the fill may end anywhere
    code = LEARNED.replace("SCALE", "self.temperature")
    assert finding_at(code, "ADP010", "# site") is not None
    assert "scaled_dot_product_attention(" not in fix_text(code, "model.py", rules("ADP010")).text
    # the same with a size: fixed
    code = LEARNED.replace("SCALE", "q.shape[-1] ** 0.5")
    assert "scaled_dot_product_attention(" in fix_text(code, "model.py", rules("ADP010")).text


# ---------------------------------------------------------------------------------------------
# The rotary tables taken inline on each line (`q * freqs.cos() + rotate_half(q) * freqs.sin()`,
# the same for k): the cosine (and sine) of the same table, computed again from a value that
# did not change, is the same tensor (graph._recomputed, as for a repeated `cos.unsqueeze(0)`),
# so q and k are rotated with one cos/sin pair.  Near-misses: q's table a slice of k's (xpos
# code), two tables, and the table reassigned between the two lines.

INLINE = """\
import torch


def rotate_half(x):
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


def apply_rotary_pos_emb(q, k, freqs, other):
    BETWEEN
    q = (q * QF.cos()) + (rotate_half(q) * QF.sin())
    MIDDLE
    k = (k * freqs.cos()) + (rotate_half(k) * freqs.sin())
    return q, k
"""


def _inline(qf="freqs", between="pass", middle="pass"):
    return INLINE.replace("BETWEEN", between).replace("MIDDLE", middle).replace("QF", qf)


def test_inline_table_cos_sin_of_one_table_is_one_rope():
    code = _inline()
    assert finding_at(code, "ADP014", "q = (q * freqs.cos())") is not None


@pytest.mark.parametrize("qf, between, middle", [
    ("q_freqs", "q_freqs = freqs[..., -q.shape[-2]:, :]", "pass"),  # q's table sliced
    ("other", "pass", "pass"),  # two tables
    ("freqs", "pass", "freqs = freqs * 2"),  # the table changed between the lines
])
def test_inline_tables_that_differ_are_not_one_rope(qf, between, middle):
    code = _inline(qf, between, middle)
    assert finding_at(code, "ADP014", f"q = (q * {qf}.cos())") is None


# ---------------------------------------------------------------------------------------------
# xpos RoPE in a helper that rotates q and k (local-attention's rotary code, copied by snac):
# q with its sliced table times `scale`, k with the whole table times `scale ** -1`.  Each line
# is a one-tensor rotation, but q and k are rotated each with its own tables: not one RoPE of
# both (the palm-rlhf / local-attention ruling), as two such lines in a root already were not.
# Read once the einops split with a kept leading axis was, they were reported.  Near-miss: the
# same helper with one table and one scale for both is still reported.

XPOS = """\
import torch
from einops import rearrange
from torch import nn


def rotate_half(x):
    x = rearrange(x, "PATTERN", r=2)
    x1, x2 = x.unbind(dim=-2)
    return torch.cat((-x2, x1), dim=-1)


def apply_rotary_pos_emb(q, k, freqs, scale=1):
    q_len = q.shape[-2]
    q_freqs = freqs[..., -q_len:, :]
    inv_scale = scale ** -1
    q = (q * QF.cos() * scale) + (rotate_half(q) * QF.sin() * scale)
    k = (k * freqs.cos() * KS) + (rotate_half(k) * freqs.sin() * KS)
    return q, k


class Attn(nn.Module):
    def __init__(self, dim=16):
        super().__init__()
        self.to_qkv = nn.Linear(dim, 3 * dim)

    def forward(self, x, freqs, scale):
        q, k, v = self.to_qkv(x).chunk(3, dim=-1)
        q, k = apply_rotary_pos_emb(q, k, freqs, scale)
        return (q @ k.transpose(-1, -2)).softmax(-1) @ v
"""


@pytest.mark.parametrize("pattern", ["b ... (r d) -> b ... r d", "... (r d) -> ... r d"])
def test_xpos_rotations_with_their_own_tables_in_one_helper_are_no_site(pattern):
    code = XPOS.replace("QF", "q_freqs").replace("KS", "inv_scale").replace("PATTERN", pattern)
    assert finding_at(code, "ADP014", "q = (q * q_freqs.cos()") is None
    assert finding_at(code, "ADP014", "k = (k * freqs.cos()") is None


@pytest.mark.parametrize("pattern", ["b ... (r d) -> b ... r d", "... (r d) -> ... r d"])
def test_xpos_rotations_with_one_table_and_scale_in_one_helper_are_reported(pattern):
    code = XPOS.replace("QF", "freqs").replace("KS", "scale").replace("PATTERN", pattern)
    assert finding_at(code, "ADP014", "q = (q * freqs.cos() * scale)") is not None
