"""rafix33 (session 27): research attention's fixed-and-verified rate.

Verify's guessed masks may hide a whole row of the scores (a ``[batch, 1, seq, seq]`` boolean
lower triangle read by code that fills where True hides every key of the last query).  A guarded
ADP010 patch (``mask.all(-1).any()``: rows the fused call would treat differently) sends such
inputs to its original path, so the fused path was never compared and the site was a skip
(coqui-tts' delightful_tts ``RelativeMultiHeadAttention``).  Verify now checks the same inputs
again with every boolean mask's rows mixed (no row of one value), which reaches the fused path.

Fixtures are ours; positives fail on main's engine, near-misses pass on both.
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from corpus_forms import rules


def test_mixed_rows_breaks_rows_of_one_value():
    from adopter.verify.build import has_full_rows, mixed_rows

    tril = torch.ones(4, 4, dtype=torch.bool).tril()[None, None].expand(2, 1, 4, 4).contiguous()
    assert has_full_rows(tril)
    out = mixed_rows(tril)
    assert not has_full_rows(out)
    # every row keeps a key and hides one, whichever value the code reads as hidden
    assert bool(out.any(-1).all()) and bool((~out).any(-1).all())
    # only the full rows changed, and the input is left as it was
    assert torch.equal(out[..., :3, :], tril[..., :3, :])
    assert bool(tril.all(-1).any())
    zeros = torch.zeros(2, 5, dtype=torch.bool)
    assert torch.equal(mixed_rows(zeros)[:, 0], torch.ones(2, dtype=torch.bool))


def test_mixed_rows_near_misses_left_alone():
    from adopter.verify.build import has_full_rows, mixed_rows

    padding = torch.zeros(2, 6, dtype=torch.bool)
    padding[-1, -2:] = True
    padding[0, 0] = True
    assert not has_full_rows(padding) and mixed_rows(padding) is padding  # no full row: unchanged
    additive = torch.zeros(2, 1, 1, 6)
    assert not has_full_rows(additive) and mixed_rows(additive) is additive  # not boolean
    ids = torch.ones(2, 6, dtype=torch.long)
    assert mixed_rows(ids) is ids  # token ids are no mask
    one = torch.ones(2, 1, dtype=torch.bool)
    assert not has_full_rows(one) and mixed_rows(one) is one  # a row of one key cannot mix
    nested = {"mask": torch.ones(3, 3, dtype=torch.bool), "x": 1.5}
    out = mixed_rows(nested)
    assert out["x"] == 1.5 and not has_full_rows(out)


def test_variant_label_says_so():
    from adopter.verify.build import Variant

    assert Variant(mixed_rows=True).label() == "masks with no fully hidden row"
    assert Variant().label() == ""


FILLED = """
import math

import torch
import torch.nn as nn
import torch.nn.functional as F


class FilledAttention(nn.Module):
    def __init__(self, d_model: int = 32, num_heads: int = 4):
        super().__init__()
        self.d_model = d_model
        self.num_heads = num_heads
        self.d_head = d_model // num_heads
        self.sqrt_dim = math.sqrt(self.d_head)
        self.query_proj = nn.Linear(d_model, d_model)
        self.key_proj = nn.Linear(d_model, d_model)
        self.value_proj = nn.Linear(d_model, d_model)
        self.out_proj = nn.Linear(d_model, d_model)

    def forward(self, query, key, value, mask):
        batch_size = query.shape[0]
        q = self.query_proj(query).view(batch_size, -1, self.num_heads, self.d_head).transpose(1, 2)
        k = self.key_proj(key).view(batch_size, -1, self.num_heads, self.d_head).transpose(1, 2)
        v = self.value_proj(value).view(batch_size, -1, self.num_heads, self.d_head).transpose(1, 2)
        score = q @ k.transpose(2, 3)
        score = score * (1.0 / self.sqrt_dim)
        score.masked_fill_(mask, -1e9)
        attn = F.softmax(score, -1)
        context = (attn @ v).transpose(1, 2)
        context = context.contiguous().view(batch_size, -1, self.d_model)
        return self.out_proj(context)
"""

ADDITIVE = """
import torch
import torch.nn as nn
import torch.nn.functional as F


class AddedMaskAttention(nn.Module):
    def __init__(self, dim: int = 32, heads: int = 4):
        super().__init__()
        self.heads = heads
        self.scale = (dim // heads) ** -0.5
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x, mask=None):
        b, n, c = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        attn = (q @ k.transpose(-2, -1)) * self.scale
        if mask is not None:
            attn = attn + mask
        attn = attn.softmax(dim=-1)
        x = (attn @ v).transpose(1, 2).reshape(b, n, c)
        return self.proj(x)
"""


def _verify(tmp_path, text, name):
    from adopter.config import Config
    from adopter.verify import verify_file
    from adopter.verify.core import options_for

    path = tmp_path / name
    path.write_text(text)
    results = verify_file(str(path), rules("ADP010"), Config(), benchmark=False,
                          options=options_for(Config(), benchmark=False))
    return {r.class_name: r for r in results if not r.combined}


def test_guarded_patch_verified_on_its_fused_path(tmp_path):
    """A required boolean mask filled where True: the first guessed mask that runs (a lower
    triangle) hides the last query's every key, so the patch takes its original path; the fused
    path is checked with the same inputs' rows mixed, and passes (on main: a skip)."""
    from adopter.verify.result import PASS

    result = _verify(tmp_path, FILLED, "filled.py")["FilledAttention"]
    assert result.verdict == PASS, result
    assert "masks with no fully hidden row" in result.reason, result


def test_unguarded_mask_needs_no_second_input_set(tmp_path):
    """Near-miss: an added float mask has no hidden rows to mix; the patch passes as before,
    without the mixed-rows inputs."""
    from adopter.verify.result import PASS

    result = _verify(tmp_path, ADDITIVE, "added.py")["AddedMaskAttention"]
    assert result.verdict == PASS, result
    assert "masks with no fully hidden row" not in result.reason, result
