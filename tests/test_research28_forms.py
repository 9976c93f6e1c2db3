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


# -------------------------------- a rotary table's layout written again for q and for k

ROPE_INLINE = """\
import torch
import torch.nn as nn


class Rotary(nn.Module):
    def __init__(self, dim=8, base=10000.0):
        super().__init__()
        inv_freq = 1.0 / (base ** (torch.arange(0, dim, 2).float() / dim))
        self.register_buffer("inv_freq", inv_freq)

    def forward(self, q, k):
        t = torch.arange(q.shape[2], dtype=self.inv_freq.dtype)
        freqs = torch.einsum("i,j->ij", t, self.inv_freq)
        emb = torch.cat((freqs, freqs), dim=-1)
        cos = emb.cos()
        sin = emb.sin()

        def rotate_half(x):
            x1, x2 = x.chunk(2, dim=-1)
            return torch.cat((-x2, x1), dim=-1)

        q_rot = (q * cos.unsqueeze(0).unsqueeze(0)) + (rotate_half(q) * sin.unsqueeze(0).unsqueeze(0))  # site
BETWEEN
        k_rot = (k * KCOS) + (rotate_half(k) * sin.unsqueeze(0).unsqueeze(0))
        return q_rot, k_rot
"""


def _rope(between="", kcos="cos.unsqueeze(0).unsqueeze(0)") -> str:
    return ROPE_INLINE.replace("BETWEEN\n", between).replace("KCOS", kcos)


def test_table_laid_out_again_for_k_is_the_same_table():
    assert finding_at(_rope(), "ADP014", "# site") is not None


def test_table_laid_out_again_is_declined_by_the_fix_with_its_reason():
    result = fix_text(_rope(), "model.py", rules("ADP014"))
    assert "liger_rope" not in result.text  # the k line's own copy of the table is other work
    assert [reason for _, reason in result.skipped] == [
        "the statement at line 23 also computes `cos.unsqueeze(0).unsqueeze(0)`"]


def test_table_of_another_layout_for_k_is_not_the_same():
    assert finding_at(_rope(kcos="cos.unsqueeze(1).unsqueeze(0)"), "ADP014", "# site") is None


def test_table_reassigned_between_is_not_the_same():
    code = _rope(between="        cos = cos * 2\n")
    assert finding_at(code, "ADP014", "# site") is None


def test_table_written_into_in_place_between_is_not_the_same():
    code = _rope(between="        cos.mul_(2)\n")
    assert finding_at(code, "ADP014", "# site") is None


def _repeats(code: str):
    import ast

    from adopter.structure.model import module_structure

    module = module_structure(ast.parse(code), None, code)
    return module.classes["M"].flows["forward"].repeats


def test_a_layout_computed_first_under_an_if_is_not_on_every_way():
    code = """\
import torch.nn as nn


class M(nn.Module):
    def forward(self, x, flag: bool):
        y = x
        if flag:
            y = x.unsqueeze(0) * 2
        z = x.unsqueeze(0) + 1
        return y, z
"""
    assert _repeats(code) is None
    straight = code.replace("        if flag:\n            y = x.unsqueeze(0) * 2\n", "        y = x.unsqueeze(0) * 2\n")
    assert _repeats(straight) and len(_repeats(straight)) == 1


def test_a_parameter_assigned_between_the_two_layouts_is_not_the_same_value():
    code = """\
import torch.nn as nn


class M(nn.Module):
    def forward(self, x):
        a = x.unsqueeze(0) * 2
        x = x * 3
        b = x.unsqueeze(0) + 1
        return a, b
"""
    assert _repeats(code) is None
    before = code.replace("        a = x.unsqueeze(0) * 2\n        x = x * 3\n", "        x = x * 3\n        a = x.unsqueeze(0) * 2\n")
    assert _repeats(before) and len(_repeats(before)) == 1
