"""rafix32 (session 26): research attention leftovers.  Fixtures ours.

1. A fill with a literal number (regionvit's ``masked_fill(mask == 0, -65000)``) that hides
   every key of a row: the original's softmax is uniform there, the fused call's (the fill
   added to the scores) is the softmax of the row's own scores, which float32 keeps beside
   65000.  The filled-rows guard ran only with gradients on, so an eval (no_grad) call with such
   a row took the fused path and differed.  Now a literal fill is tested in both cases; a
   ``finfo`` fill (which swamps the scores) keeps the test to training steps."""

from __future__ import annotations

import pytest
from corpus_forms import finding_at, found

REGION = '''\
import torch
import torch.nn as nn


class Attn(nn.Module):
    def __init__(self, dim=16, heads=2):
        super().__init__()
        self.heads = heads
        self.scale = (dim // heads) ** -0.5
        self.qkv = nn.Linear(dim, dim * 3)

    def forward(self, x, mask=None):
        B, N, C = x.size()
        qkv = self.qkv(x).reshape(B, N, 3, self.heads, C // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        attn = (q @ k.transpose(-2, -1)) * self.scale
        if mask is not None:
            mask = mask.unsqueeze(1).expand(-1, self.heads, -1, -1)
            attn = attn.masked_fill(mask == 0, FILL)
        attn = attn.softmax(dim=-1)  # site
        return (attn @ v).transpose(1, 2).reshape(B, N, C)
'''


@pytest.mark.parametrize("grad", [False, True])
def test_a_literal_fill_hiding_a_whole_row_takes_the_original_without_gradients_too(grad):
    import torch
    from corpus_forms import finding_at, float64_pair, rules

    from adopter.synth import fix_text

    code = REGION.replace("FILL", "-65000")
    assert finding_at(code, "ADP010", "# site") is not None
    fixed = fix_text(code, "model.py", rules("ADP010")).text
    assert "scaled_dot_product_attention(" in fixed
    assert "is_grad_enabled" not in fixed
    a, b = float64_pair(code, fixed, "Attn")
    a.eval()
    b.eval()
    torch.manual_seed(1)
    x = torch.randn(2, 5, 16, dtype=torch.float64) * 4
    mask = torch.ones(2, 5, 5)
    mask[1, 2, :] = 0  # a query that sees no key
    mask[0, :, 3:] = 0  # padding keys
    with torch.set_grad_enabled(grad):
        torch.testing.assert_close(b(x, mask), a(x, mask), rtol=0, atol=1e-12)
        mask[1, 2, 0] = 1  # every row keeps a key: the fused path, the same numbers
        torch.testing.assert_close(b(x, mask), a(x, mask), rtol=0, atol=1e-12)


def test_a_finfo_fill_keeps_the_row_test_to_training_steps():
    from corpus_forms import rules

    from adopter.synth import fix_text

    code = REGION.replace("FILL", "torch.finfo(attn.dtype).min")
    fixed = fix_text(code, "model.py", rules("ADP010")).text
    assert "scaled_dot_product_attention(" in fixed
    assert "torch.is_grad_enabled()" in fixed


# ---------------------------------------------------------------------------------------------
# 2. A bias added into a block of the scores by a read-modify-write item store (birder's MViT v2:
#    a same-file helper `attn[:, :, s:, s:] = (attn[:, :, s:, s:].view(B, -1, qh, qw, kh, kw) +
#    rel_h + rel_w).view(...)`, torchvision's `attn[:, :, 1:, 1:] += rel_pos`): the scores plus
#    a bias that is zero outside the block, an additive step (graph._block_added).  rafix31 read
#    every item store into the scores as a change that is no step, so the unconditional form was
#    not found (its `added-in-place` case moves here, by the lead's ruling in session 26).  In a
#    helper the caller hands the scores to, the fixer calls the helper on zeros of the scores'
#    shape: it returns the padded bias, the fused call's mask (sdpa._inline_block_helper); in the
#    attention's own function the fused path runs the store on such zeros under a new name
#    (sdpa._block_bias).  Under an if the store is still sent to the original by the guard
#    (regionvit's `if patch_attn:`).

HEAD = '''\
import torch
import torch.nn as nn
import torch.nn.functional as F


def add_rel(attn, q, rel_h, rel_w, s):
    B, H, _, d = q.shape
    n = rel_h.shape[0]
    rh = torch.einsum("bhqc,kc->bhqk", q[:, :, s:], rel_h)
    rw = torch.einsum("bhqc,kc->bhqk", q[:, :, s:], rel_w)
    STORE
    return attn


class Attn(nn.Module):
    def __init__(self, dim=16, heads=2, n=4):
        super().__init__()
        self.heads, self.scale = heads, (dim // heads) ** -0.5
        self.qkv = nn.Linear(dim, dim * 3)
        self.rel_h = nn.Parameter(torch.randn(n, dim // heads))
        self.rel_w = nn.Parameter(torch.randn(n, dim // heads))

    def forward(self, x):
        B, N, C = x.shape
        q, k, v = self.qkv(x).reshape(B, N, 3, self.heads, -1).permute(2, 0, 3, 1, 4).unbind(0)
        attn = (q * self.scale) @ k.transpose(-2, -1)
        attn = add_rel(attn, q, self.rel_h, self.rel_w, 1)
        attn = attn.softmax(dim=-1)
        x = attn @ v  # site
        return x.transpose(1, 2).reshape(B, N, C)
'''

VIEWED = "attn[:, :, s:, s:] = (attn[:, :, s:, s:].view(B, H, -1, n) + rh + rw).view(B, H, -1, n)"
AUGMENTED = "attn[:, :, s:, s:] += rh + rw"
SUMMED = "attn[:, :, s:, s:] = rh + attn[:, :, s:, s:] + rw"


def _assert_pair_matches(code, fixed, **kwargs):
    import torch
    from corpus_forms import float64_pair

    a, b = float64_pair(code, fixed, "Attn", **kwargs)
    torch.manual_seed(1)
    x = torch.randn(2, 5, 16, dtype=torch.float64, requires_grad=True)
    for grad in (False, True):
        with torch.set_grad_enabled(grad):
            torch.testing.assert_close(b(x), a(x), rtol=0, atol=1e-12)
    ga = torch.autograd.grad(a(x).sum(), [x, *a.qkv.parameters()])
    gb = torch.autograd.grad(b(x).sum(), [x, *b.qkv.parameters()])
    for left, right in zip(gb, ga):
        torch.testing.assert_close(left, right, rtol=0, atol=1e-12)
    if kwargs.get("rel", True):
        ga = torch.autograd.grad(a(x).sum(), [a.rel_h, a.rel_w])
        gb = torch.autograd.grad(b(x).sum(), [b.rel_h, b.rel_w])
        for left, right in zip(gb, ga):
            torch.testing.assert_close(left, right, rtol=0, atol=1e-12)


@pytest.mark.parametrize("store", [VIEWED, AUGMENTED, SUMMED], ids=["viewed", "augmented", "summed"])
def test_a_helper_adding_a_bias_into_a_block_is_called_on_zeros_and_matches(store):
    from corpus_forms import rules

    from adopter.synth import fix_text

    code = HEAD.replace("STORE", store)
    assert finding_at(code, "ADP010", "# site") is not None
    fixed = fix_text(code, "model.py", rules("ADP010")).text
    assert "scaled_dot_product_attention(" in fixed and ".new_zeros(" in fixed
    _assert_pair_matches(code, fixed)


INLINE = HEAD.replace("STORE", AUGMENTED).replace("        attn = add_rel(attn, q, self.rel_h, self.rel_w, 1)\n", """\
        rh = torch.einsum("bhqc,kc->bhqk", q[:, :, 1:], self.rel_h)
        rw = torch.einsum("bhqc,kc->bhqk", q[:, :, 1:], self.rel_w)
        attn[:, :, 1:, 1:] += rh + rw
""")


def test_a_block_bias_in_the_attentions_own_function_is_written_into_zeros_and_matches():
    from corpus_forms import rules

    from adopter.synth import fix_text

    assert finding_at(INLINE, "ADP010", "# site") is not None
    fixed = fix_text(INLINE, "model.py", rules("ADP010")).text
    assert "attn_bias[:, :, 1:, 1:] += rh + rw" in fixed and "attn_mask=attn_bias" in fixed
    _assert_pair_matches(INLINE, fixed)


def test_a_block_bias_before_a_scale_is_declined_with_its_reason():
    from corpus_forms import rules

    from adopter.synth import fix_text

    code = INLINE.replace("attn = (q * self.scale) @ k.transpose(-2, -1)", "attn = q @ k.transpose(-2, -1)").replace(
        "        attn = attn.softmax(dim=-1)", "        attn = attn * self.scale\n        attn = attn.softmax(dim=-1)")
    assert finding_at(code, "ADP010", "# site") is not None
    result = fix_text(code, "model.py", rules("ADP010"))
    assert "scaled_dot_product_attention(" not in result.text
    assert any("added into a block of the scores" in why and "before a scale" in why for _, why in result.skipped)


@pytest.mark.parametrize("extra", [
    "attn = attn * 2",  # the helper changes the scores otherwise
    "print(attn.max())",  # reads their values
], ids=["scaled-too", "values-read"])
def test_a_block_helper_reading_the_scores_otherwise_stays_declined(extra):
    from corpus_forms import rules

    from adopter.synth import fix_text

    code = HEAD.replace("STORE", AUGMENTED + "\n    " + extra)
    result = fix_text(code, "model.py", rules("ADP010"))
    assert "scaled_dot_product_attention(" not in result.text


@pytest.mark.parametrize("store", [
    "attn[:, :, s:, s:] = attn[:, :, s:, s:] * rh",  # scaled, not added
    "attn[:, :, s:, s:] -= rh",  # subtracted
    "attn[:, :, s:, s:] = attn[:, :, :-s, :-s] + rh",  # another block read
    "attn[:, :, s:, s:] += attn[:, :, :-s, :-s]",  # the added term reads the scores
    "attn[:, :, s:, s:] = attn[:, :, s:, s:] + rh + attn[:, :, s:, s:]",  # the block twice
    "attn[:, :, s:, s:] = rh",  # overwritten
], ids=["scaled", "subtracted", "other-block", "reads-scores", "block-twice", "overwritten"])
def test_other_item_stores_into_the_scores_are_not_attention(store):
    assert not found(HEAD.replace("STORE", store), "ADP010")


CONDITIONAL = HEAD.replace("attn = add_rel(attn, q, self.rel_h, self.rel_w, 1)", """if self.rel:
            attn = add_rel(attn, q, self.rel_h, self.rel_w, 1)""").replace(
    "self.heads, self.scale = heads", "self.rel = rel\n        self.heads, self.scale = heads").replace(
    "n=4):", "n=4, rel=True):")


@pytest.mark.parametrize("rel", [True, False])
def test_a_block_bias_under_an_if_goes_to_the_original_and_matches(rel):
    from corpus_forms import rules

    from adopter.synth import fix_text

    code = CONDITIONAL.replace("STORE", AUGMENTED)
    assert finding_at(code, "ADP010", "# site") is not None
    fixed = fix_text(code, "model.py", rules("ADP010")).text
    assert "scaled_dot_product_attention(" in fixed
    _assert_pair_matches(code, fixed, rel=rel)
