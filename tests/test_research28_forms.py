"""Forms found missing while checking the blind batch research28 (language-model
reimplementations of seven packages new to the corpus: a LLaMA-style decoder with a KV cache,
RETRO, a Lightning GPT, a modular LM library, nanoGPT-style heads).  The fixtures are ours.

- q, k and v laid out in heads by one list comprehension over them (``q, k, v = [t.view(b, n,
  h, s).transpose(1, 2) for t in (q, k, v)]``), read as the three assignments it makes; and a
  tensor's in-place method (``a = a.masked_fill_(mask, -inf)``) keeping the rank of the tensor
  it writes into.  Together they fix the rank of scores whose softmax counts its axis from the
  front (``a.softmax(dim=3)``) in a helper method the forward calls.  Near-misses: a
  comprehension with a condition or over a name (no elements to pair with the names), one whose
  call reads a name it assigns, a softmax over the query axis (``dim=2``), and an out-of-place
  fill with a mask of unknown rank (it may broadcast the scores wider).
"""

from __future__ import annotations

from corpus_forms import finding_at, float64_pair, rules

from adopter.synth import fix_text

# ------------------------------------------- heads laid out by a comprehension, in-place fill

HEADS_BY_COMPREHENSION = """\
import math
import torch
import torch.nn as nn


class SelfAttention(nn.Module):
    def __init__(self, d_model=16, n_heads=2, dropout=0.0):
        super().__init__()
        self.n_heads = n_heads
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.drop = nn.Dropout(dropout)
        self.proj = nn.Linear(d_model, d_model)

    def attend(self, q, k, v, mask=None):
        a = q @ k.transpose(2, 3) / math.sqrt(q.size(-1))
        if mask is not None:
            a = FILL
        a = a.softmax(dim=DIM)  # site
        a = self.drop(a)
        return a @ v

    def forward(self, x, mask=None):
        b, n, d = x.size()
        h = self.n_heads
        s = d // h
        q, k, v = self.qkv(x).split(d, dim=2)
        q, k, v = LAYOUT
        y = self.attend(q, k, v, mask=mask)
        y = y.transpose(1, 2).reshape(b, n, d)
        return self.proj(y)
"""

_COMPREHENSION = "[t.view(b, n, h, s).transpose(1, 2) for t in (q, k, v)]"


def _heads(layout=_COMPREHENSION, fill="a.masked_fill_(mask, float('-inf'))", dim="3") -> str:
    return HEADS_BY_COMPREHENSION.replace("LAYOUT", layout).replace("FILL", fill).replace("DIM", dim)


def test_heads_laid_out_by_a_comprehension_fix_the_softmax_axis():
    assert finding_at(_heads(), "ADP010", "# site") is not None


def test_in_place_fill_keeps_the_rank_of_explicitly_laid_out_heads():
    code = _heads().replace("        q, k, v = " + _COMPREHENSION + "\n", "".join(
        f"        {t} = {t}.view(b, n, h, s).transpose(1, 2)\n" for t in "qkv"))
    assert "k = k.view(b, n, h, s)" in code
    assert finding_at(code, "ADP010", "# site") is not None


def test_comprehension_heads_fixed_and_equal():
    import torch

    code = _heads()
    fixed = fix_text(code, "model.py", rules("ADP010")).text
    assert "scaled_dot_product_attention(" in fixed
    a, b = float64_pair(code, fixed, "SelfAttention")
    torch.manual_seed(0)
    x = torch.randn(2, 5, 16, dtype=torch.float64)
    masked = torch.ones(5, 5, dtype=torch.bool).triu(1)[None, None]  # True above the diagonal
    # float64, 8-wide dot products, 5-key softmax: equal to rounding
    with torch.no_grad():
        torch.testing.assert_close(b(x), a(x), rtol=0, atol=1e-12)
        torch.testing.assert_close(b(x, masked), a(x, masked), rtol=0, atol=1e-12)


def test_comprehension_with_a_condition_is_not_read_as_assignments():
    layout = "[t.view(b, n, h, s).transpose(1, 2) for t in (q, k, v) if t is not None]"
    assert finding_at(_heads(layout=layout), "ADP010", "# site") is None


def test_comprehension_over_a_name_pairs_no_elements():
    code = _heads(layout="[t.view(b, n, h, s).transpose(1, 2) for t in qkv]").replace(
        "        q, k, v = self.qkv(x).split(d, dim=2)\n", "        qkv = self.qkv(x).split(d, dim=2)\n")
    assert finding_at(code, "ADP010", "# site") is None


def test_comprehension_reading_a_name_it_assigns_is_not_unrolled():
    # every element is computed before q is assigned: unrolled, the k element would read the new q
    layout = "[t.view(b, n, h, s).transpose(1, 2) + 0 * q.view(b, n, h, s).transpose(1, 2) for t in (q, k, v)]"
    assert finding_at(_heads(layout=layout), "ADP010", "# site") is None


def test_softmax_over_the_query_axis_is_not_attention():
    assert finding_at(_heads(dim="2"), "ADP010", "# site") is None


def test_out_of_place_fill_with_a_mask_of_unknown_rank_fixes_no_rank():
    # masked_fill (not in place) may broadcast the scores wider than 4-D: dim=3 is not read
    assert finding_at(_heads(fill="a.masked_fill(mask, float('-inf'))"), "ADP010", "# site") is None
