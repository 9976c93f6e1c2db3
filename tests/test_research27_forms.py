"""Forms found missing while checking the blind batch research27 (research reimplementations of
eight packages new to the corpus: nanoGPT-style heads, minBERT/microBERT, "Attention is all you
need" reimplementations, a modular transformer toolkit).  The fixtures are ours.

- A softmax over a dimension counted from the front (``dim=3``) of scores whose rank the code
  leaves open (an einsum's 4-D product filled through a mask parameter of unknown rank, which
  may broadcast it wider), whose probabilities an einsum then multiplies with an equation that
  names four axes for them: torch raises on an operand of any other rank, so the probabilities,
  and the scores, are 4-D and ``dim=3`` is the last axis.  Near-misses: the equation names
  three axes (the softmax is then over an axis that is not the last one), an ellipsis (no
  rank), and a softmax over a middle axis.
- A fill value written as a string number, ``float("-1e20")``: a large negative number (read,
  then declined when the scale divides it, as every finite fill before a scale is).
"""

from __future__ import annotations

from corpus_forms import finding_at, float64_pair, rules

from adopter.structure import canon
from adopter.synth import fix_text

import ast

# ------------------------------------------------------- softmax dim fixed by an einsum reader

EINSUM_DIM = """\
import torch
import torch.nn as nn


class Attention(nn.Module):
    def __init__(self, embed_size=16, heads=2):
        super().__init__()
        self.embed_size = embed_size
        self.heads = heads
        self.head_dim = embed_size // heads
        self.values = nn.Linear(self.head_dim, self.head_dim, bias=False)
        self.keys = nn.Linear(self.head_dim, self.head_dim, bias=False)
        self.queries = nn.Linear(self.head_dim, self.head_dim, bias=False)
        self.fc_out = nn.Linear(embed_size, embed_size)

    def forward(self, values, keys, query, mask):
        n, lq = query.shape[0], query.shape[1]
        values = self.values(values.reshape(n, values.shape[1], self.heads, self.head_dim))
        keys = self.keys(keys.reshape(n, keys.shape[1], self.heads, self.head_dim))
        queries = self.queries(query.reshape(n, lq, self.heads, self.head_dim))
        energy = torch.einsum("nqhd,nkhd->nhqk", [queries, keys])
        if mask is not None:
            energy = energy.masked_fill(mask == 0, FILL)
        attention = torch.softmax(energy / (self.embed_size ** (1 / 2)), dim=DIM)  # site
        out = torch.einsum(PRODUCT, [attention, values]).reshape(n, lq, self.embed_size)
        return self.fc_out(out)
"""


def _einsum(fill="float('-inf')", dim="3", product='"nhql,nlhd->nqhd"') -> str:
    return EINSUM_DIM.replace("FILL", fill).replace("DIM", dim).replace("PRODUCT", product)


def test_softmax_dim_counted_from_the_front_read_at_the_einsum_rank_is_found():
    assert finding_at(_einsum(), "ADP010", "# site") is not None


def test_softmax_dim_from_the_front_through_dropout_is_found():
    code = _einsum().replace("        out = torch.einsum(PRODUCT".replace("PRODUCT", '"nhql,nlhd->nqhd"'),
                             "        attention = torch.nn.functional.dropout(attention, 0.0)\n"
                             "        out = torch.einsum(\"nhql,nlhd->nqhd\"")
    assert "dropout(attention" in code
    assert finding_at(code, "ADP010", "# site") is not None


def test_softmax_dim_from_the_front_is_fixed_and_matches():
    import torch

    code = _einsum()
    fixed = fix_text(code, "model.py", rules("ADP010")).text
    assert "scaled_dot_product_attention(" in fixed
    a, b = float64_pair(code, fixed, "Attention")
    torch.manual_seed(1)
    x = torch.randn(2, 5, 16, dtype=torch.float64)
    causal = torch.tril(torch.ones(5, 5))[None, None]  # (1, 1, q, k): 0 above the diagonal
    # float64, 8-wide dot products, 5-key softmax: equal to rounding
    with torch.no_grad():
        torch.testing.assert_close(b(x, x, x, causal), a(x, x, x, causal), rtol=0, atol=1e-12)
        torch.testing.assert_close(b(x, x, x, None), a(x, x, x, None), rtol=0, atol=1e-12)


def test_einsum_naming_three_axes_for_the_probabilities_is_not_read_as_four():
    # the probabilities read as 3-D: dim=3 would not exist, nothing fixes dim=3 as the last axis
    code = _einsum(product='"nql,nld->nqd"')
    assert finding_at(code, "ADP010", "# site") is None


def test_einsum_with_an_ellipsis_fixes_no_rank():
    code = _einsum(product='"...ql,...ld->...qd"')
    assert finding_at(code, "ADP010", "# site") is None


def test_softmax_over_a_middle_axis_is_not_attention():
    # dim=2 of the 4-D scores is the query axis
    assert finding_at(_einsum(dim="2"), "ADP010", "# site") is None


# ------------------------------------------------------------------ a fill spelled as a string


def test_string_number_fill_is_a_large_negative_number():
    assert canon.fill_value(ast.parse('float("-1e20")', mode="eval").body) == "finite"
    assert canon.fill_value(ast.parse('float("-1e3")', mode="eval").body) is None
    assert canon.fill_value(ast.parse('float("1e20")', mode="eval").body) is None
    assert canon.fill_value(ast.parse('-float("1e20")', mode="eval").body) == "finite"
    assert canon.fill_value(ast.parse('float("nan")', mode="eval").body) is None
    assert canon.fill_value(ast.parse('float("-inf")', mode="eval").body) == "inf"


def test_string_number_fill_before_the_scale_is_found_and_fixed_with_the_fill_scaled():
    # a finite fill the scale divides: passed divided the same way (research31; declined before)
    import torch

    code = _einsum(fill='float("-1e20")')
    assert finding_at(code, "ADP010", "# site") is not None
    fixed = fix_text(code, "model.py", rules("ADP010")).text
    assert "scaled_dot_product_attention(" in fixed
    a, b = float64_pair(code, fixed, "Attention")
    torch.manual_seed(1)
    x = torch.randn(2, 5, 16, dtype=torch.float64)
    causal = torch.tril(torch.ones(5, 5))[None, None]
    with torch.no_grad():
        torch.testing.assert_close(b(x, x, x, causal), a(x, x, x, causal), rtol=0, atol=1e-12)


# ----------------------------------------- a forward-less module's public method is its API

ROPE_TABLE = """\
import torch
import torch.nn as nn


class AddedPositions(nn.Module):
    def __init__(self, dim, max_seq=64):
        super().__init__()
        self.pe = nn.Embedding(max_seq, dim)

    def forward(self, x):
        return x + self.pe(torch.arange(x.shape[1], device=x.device))


class RotaryTable(nn.Module):
    def __init__(self, head_dim, max_seq=64, base=10000):
        super().__init__()
        self.head_dim = head_dim
        inv = 1.0 / (base ** (torch.arange(0, head_dim, 2).float() / head_dim))
        freqs = torch.outer(torch.arange(max_seq).float(), inv)
        emb = torch.cat([freqs, freqs], dim=-1)
        self.register_buffer("cos_cache", emb.cos()[None, None], persistent=False)
        self.register_buffer("sin_cache", emb.sin()[None, None], persistent=False)

    def METHOD(self, q, k, offset=0):
        end = offset + q.shape[2]
        cos = self.cos_cache[:, :, offset:end, :].to(dtype=q.dtype)
        sin = self.sin_cache[:, :, offset:end, :].to(dtype=q.dtype)
        return (
            q * cos + _half_turn(q) * sin,  # site
            k * cos + _half_turn(k) * sin,
        )


def _half_turn(x):
    a, b = x.chunk(2, dim=-1)
    return torch.cat([-b, a], dim=-1)
"""


def test_public_method_of_a_forwardless_module_is_analysed():
    # another class of the file has a forward: before, only what a forward reaches was read
    assert finding_at(ROPE_TABLE.replace("METHOD", "rotate"), "ADP014", "# site") is not None


def test_private_method_of_a_forwardless_module_is_not_an_entry():
    assert finding_at(ROPE_TABLE.replace("METHOD", "_rotate"), "ADP014", "# site") is None


def test_forwardless_module_method_called_in_the_file_is_not_an_entry_of_its_own():
    # a caller in the file that no forward reaches: the method is a helper of that code
    code = ROPE_TABLE.replace("METHOD", "rotate") + (
        "\n\ndef _unused(table, q, k):\n    return table.rotate(q, k)\n")
    assert finding_at(code, "ADP014", "# site") is None


def test_forwardless_module_with_an_interleaved_rotation_is_not_rope():
    code = ROPE_TABLE.replace("METHOD", "rotate").replace(
        "    a, b = x.chunk(2, dim=-1)\n    return torch.cat([-b, a], dim=-1)",
        "    a, b = x[..., ::2], x[..., 1::2]\n    return torch.stack([-b, a], dim=-1).flatten(-2)")
    assert finding_at(code, "ADP014", "# site") is None


# --------------------------------------------- the rms held in a name, the weight's product last

RMS = """\
import torch
import torch.nn as nn


class Norm(nn.Module):
    def __init__(self, dim=8, eps=1e-6):
        super().__init__()
        self.w = nn.Parameter(torch.ones(dim) + 0.1 * torch.arange(dim))
        self.eps = eps

    def forward(self, x):
        rms = RMS_EXPR
        return self.w * x / rms  # site
"""


def _rms(expr: str) -> str:
    return RMS.replace("RMS_EXPR", expr)


def test_rms_named_first_then_weight_times_x_over_it_is_found():
    for expr in ("x.pow(2).mean(-1, keepdim=True).add(self.eps).sqrt()",
                 "(x.pow(2).mean(-1, keepdim=True) + self.eps).sqrt()",
                 "torch.sqrt((x * x).mean(dim=-1, keepdim=True) + self.eps)"):
        assert finding_at(_rms(expr), "ADP011", "# site") is not None, expr


def test_rms_named_first_is_fixed_and_matches():
    import torch

    code = _rms("x.pow(2).mean(-1, keepdim=True).add(self.eps).sqrt()")
    fixed = fix_text(code, "model.py", rules("ADP011")).text
    assert "rms_norm(" in fixed
    a, b = float64_pair(code, fixed, "Norm")
    x = torch.randn(3, 5, 8, dtype=torch.float64)
    # float64, an 8-wide mean square: equal to rounding
    torch.testing.assert_close(b(x), a(x), rtol=0, atol=1e-12)


def test_rms_over_another_axis_is_not_rms_norm():
    assert finding_at(_rms("x.pow(2).mean(1, keepdim=True).add(self.eps).sqrt()"), "ADP011", "# site") is None


def test_sum_of_squares_is_not_rms_norm():
    assert finding_at(_rms("x.pow(2).sum(-1, keepdim=True).add(self.eps).sqrt()"), "ADP011", "# site") is None


def test_weight_times_another_tensor_over_the_rms_is_not_rms_norm():
    code = _rms("x.pow(2).mean(-1, keepdim=True).add(self.eps).sqrt()").replace(
        "return self.w * x / rms", "return self.w * x.flip(-1) / rms")
    assert finding_at(code, "ADP011", "# site") is None
