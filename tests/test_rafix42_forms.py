"""rafix42 (session 30): research attention, a finite fill before an added mask.

d3rlpy's decision transformer fills its causal mask with -10000 and then adds
``attention_mask.view(b, 1, 1, t) * -10000``: a 0/1 float mask read as 1 hides.  The fixer now
rewrites it behind a guard on the rows' fate (tests/synth/test_sdpa_fill_before_added_mask.py).
Verify's guessed 0/1 float mask is read the other way round there (the inputs' padding hides the
last positions where 1 keeps), so every position but the padding is hidden, the guard sends the
call to the original path and the fused call was never compared: a skip.  Verify now checks the
same inputs again with each 0/1 float mask flipped (``1 - mask``), which reaches the fused path.

Fixtures are ours; positives fail on main's engine, near-misses pass on both.
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from corpus_forms import rules  # noqa: E402


def test_flipped_masks_turns_zero_one_floats_around():
    from adopter.verify.build import flipped_masks, has_two_valued

    padding = torch.ones(2, 6)
    padding[-1, -2:] = 0
    assert has_two_valued(padding)
    out = flipped_masks(padding)
    assert torch.equal(out, 1 - padding)
    nested = {"m": (padding, 3)}
    assert has_two_valued(nested) and torch.equal(flipped_masks(nested)["m"][0], 1 - padding)


def test_flipped_masks_near_misses_left_alone():
    from adopter.verify.build import flipped_masks, has_two_valued

    x = torch.randn(2, 6)
    assert not has_two_valued(x) and flipped_masks(x) is x  # data, not a mask
    ones = torch.ones(2, 6)
    assert not has_two_valued(ones) and flipped_masks(ones) is ones  # one value: nothing to read either way
    boolean = torch.ones(2, 6, dtype=torch.bool)
    boolean[-1, -2:] = False
    assert not has_two_valued(boolean) and flipped_masks(boolean) is boolean  # (mixed_rows' business)
    additive = torch.zeros(2, 1, 1, 6)
    additive[-1, ..., -2:] = torch.finfo(torch.float32).min
    assert not has_two_valued(additive) and flipped_masks(additive) is additive  # an additive mask
    single = torch.tensor([[0.0], [1.0]])
    assert not has_two_valued(single)  # one key per row


def test_variant_label_says_so():
    from adopter.verify.build import Variant

    assert Variant(flipped_masks=True).label() == "0/1 float masks flipped (1 - mask)"


HIDES_WHERE_ONE = """
import math

import torch
import torch.nn as nn
import torch.nn.functional as F


class PaddedCausalAttention(nn.Module):
    def __init__(self, dim: int = 32, heads: int = 4, context: int = 16):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)
        self.register_buffer("causal", torch.tril(torch.ones(context, context)).view(1, 1, context, context))

    def forward(self, x, attention_mask):
        b, t, c = x.shape
        q, k, v = self.qkv(x).reshape(b, t, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        w = torch.matmul(q, k.transpose(-2, -1)) / math.sqrt(q.shape[-1])
        w = w.masked_fill(self.causal[..., :t, :t] == 0, -10000)
        w = w + attention_mask.view(b, 1, 1, t) * -10000
        w = F.softmax(w, dim=-1)
        out = torch.matmul(w, v).transpose(1, 2).reshape(b, t, c)
        return self.proj(out)
"""

# (a fill at the dtype's extreme, fixed on main too: the added mask read as 1 keeps)
KEEPS_WHERE_ONE = HIDES_WHERE_ONE.replace("attention_mask.view(b, 1, 1, t) * -10000",
                                          "(1.0 - attention_mask.view(b, 1, 1, t)) * -10000").replace(
    "== 0, -10000)", "== 0, torch.finfo(w.dtype).min)")


def _verify(tmp_path, text, name):
    from adopter.config import Config
    from adopter.verify import verify_file
    from adopter.verify.core import options_for

    path = tmp_path / name
    path.write_text(text)
    results = verify_file(str(path), rules("ADP010"), Config(), benchmark=False,
                          options=options_for(Config(), benchmark=False))
    return {r.class_name: r for r in results if not r.combined}


def test_a_mask_read_as_one_hides_is_verified_on_its_fused_path(tmp_path):
    """The guessed 0/1 mask, read as 1 hides, leaves the early rows only padded kept keys beside
    an unpadded filled one: the guard takes the original; flipped, the fused path runs and
    passes (on main: not fixed, so nothing verified)."""
    from adopter.verify.result import PASS

    result = _verify(tmp_path, HIDES_WHERE_ONE, "hides.py")["PaddedCausalAttention"]
    assert result.verdict == PASS, result
    assert "0/1 float masks flipped" in result.reason, result


def test_a_mask_read_as_one_keeps_needs_no_flip(tmp_path):
    """Near-miss: code reading 1 as keep (beside a fill at the dtype's extreme, which main fixes
    too) takes the fused path with the mask as guessed: no flip."""
    from adopter.verify.result import PASS

    result = _verify(tmp_path, KEEPS_WHERE_ONE, "keeps.py")["PaddedCausalAttention"]
    assert result.verdict == PASS, result
    assert "flipped" not in result.reason, result
