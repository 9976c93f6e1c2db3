"""Forms found missing while checking the blind batch corpus11b (vision, generative and
multimodal research code, torchvision-style CNNs): each test states the semantic fact the
engine now reads, and a near-miss it must still leave alone.  The fixtures are ours, written in
the style of research attention that masks with ``einx.where`` and chooses its softmax's dtype
through a keyword dict."""

from __future__ import annotations

import ast

import pytest

from adopter.engine import analyze
from adopter.ruleset import load_rules, select_rules
from adopter.structure.canon import einx_where_layout
from adopter.structure.literals import spread_keys
from adopter.synth import fix_text

RULES = select_rules(load_rules(), ["ADP010"])


def _line(code: str, needle: str) -> int:
    return next(n for n, text in enumerate(code.splitlines(), 1) if needle in text)


def _covering(findings, code: str, needle: str):
    line = _line(code, needle)
    return [f for f in findings if f.line <= line <= f.end_line]


# Attention whose key-padding mask is applied with einx.where (the mask carries only the axes it
# has: "b j" against the scores' "b h i j"), an optional bias prepared under its own if with a
# shape assert, the fill from a same-file helper, and a softmax whose dtype comes from a keyword
# dict that a flag fills.
EINX = """\
import torch
import einx
from einops import einsum, rearrange
from torch import nn


def exists(v):
    return v is not None


def max_neg_value(t):
    return -torch.finfo(t.dtype).max


class Attend(nn.Module):
    def __init__(self, dropout=0.0, full_precision=False):
        super().__init__()
        self.attn_dropout = nn.Dropout(dropout)
        self.full_precision = full_precision

    def forward(self, q, k, v, mask=None, attn_bias=None):
        dtype = q.dtype
        q = q * q.shape[-1] ** -0.5
        sim = einsum(q, k, "b h i d, b h j d -> b h i j")
        if exists(attn_bias):
            if attn_bias.ndim == 3:
                attn_bias = rearrange(attn_bias, "h i j -> 1 h i j")
            assert attn_bias.ndim == sim.ndim
            sim = sim + attn_bias
        if exists(mask):
            sim = einx.where("b j, b h i j, -> b h i j", mask, sim, max_neg_value(sim))
        softmax_kwargs = dict()
        if self.full_precision:
            softmax_kwargs.update(dtype=torch.float32)
        attn = sim.softmax(dim=-1, **softmax_kwargs)  # einx-softmax
        attn = attn.to(dtype)
        attn = self.attn_dropout(attn)
        return einsum(attn, v, "b h i j, b h j d -> b h i d")


class ZeroFill(nn.Module):
    \"\"\"einx.where fills masked scores with 0: not a mask SDPA can take.\"\"\"

    def forward(self, q, k, v, mask):
        sim = einsum(q, k, "b h i d, b h j d -> b h i j")
        sim = einx.where("b j, b h i j, -> b h i j", mask, sim, 0.0)
        attn = sim.softmax(dim=-1)  # zero-fill
        return einsum(attn, v, "b h i j, b h j d -> b h i d")


class TransposedMask(nn.Module):
    \"\"\"The mask's axes in another order than the scores' ("j b"): indexing with None cannot
    broadcast it, so this is not read as a mask.\"\"\"

    def forward(self, q, k, v, mask):
        sim = einsum(q, k, "b h i d, b h j d -> b h i j")
        sim = einx.where("j b, b h i j, -> b h i j", mask, sim, max_neg_value(sim))
        attn = sim.softmax(dim=-1)  # transposed-mask
        return einsum(attn, v, "b h i j, b h j d -> b h i d")
"""


def test_einx_where_layouts():
    assert einx_where_layout("b j, b h i j, -> b h i j") == (1, (True, False, False, True))
    assert einx_where_layout("b n j, b h n i j, -> b h n i j") == (1, (True, False, True, False, True))
    assert einx_where_layout("b i j, , b i j -> b i j") == (2, (True, True, True))
    # a reordered, composed, ellipsis or extra cond axis; two tensor operands; no fill operand
    assert einx_where_layout("j b, b h i j, -> b h i j") is None
    assert einx_where_layout("b (i j), b h i j, -> b h i j") is None
    assert einx_where_layout("... j, ... i j, -> ... i j") is None
    assert einx_where_layout("b k, b h i j, -> b h i j") is None
    assert einx_where_layout("b j, b h i j, b h i j -> b h i j") is None
    assert einx_where_layout("b j, b h i j -> b h i j") is None


def test_spread_keys_reads_a_dict_the_function_fills():
    def keys(body: str):
        func = ast.parse(body).body[0]
        call = next(n for n in ast.walk(func) if isinstance(n, ast.Call) and n.keywords
                    and n.keywords[-1].arg is None)
        found = spread_keys(call.keywords[-1].value, func)
        return None if found is None else [(k, ast.unparse(v)) for k, v in found]

    assert keys("def f(x, c):\n kw = dict()\n if c:\n  kw.update(dtype=torch.float32)\n"
                " return x.softmax(-1, **kw)") == [("dtype", "torch.float32")]
    assert keys("def f(x):\n kw = {'dim': -1}\n kw['dtype'] = torch.float32\n"
                " return x.softmax(**kw)") == [("dim", "-1"), ("dtype", "torch.float32")]
    # two values for one key, a second binding, another use (passed on, aliased): not certain
    assert keys("def f(x, c):\n kw = dict(dtype=torch.float32)\n if c:\n  kw.update(dtype=torch.float16)\n"
                " return x.softmax(-1, **kw)") is None
    assert keys("def f(x, c):\n kw = {}\n if c:\n  kw = {'dtype': torch.float32}\n"
                " return x.softmax(-1, **kw)") is None
    assert keys("def f(x, g):\n kw = {}\n g(kw)\n return x.softmax(-1, **kw)") is None
    assert keys("def f(x, other):\n kw = {}\n kw.update(other)\n return x.softmax(-1, **kw)") is None


def test_einx_masked_attention_with_a_keyword_dict_softmax_is_found_and_fixed():
    findings = analyze(EINX, "attend.py", RULES).findings
    assert [f.rule for f in _covering(findings, EINX, "# einx-softmax")] == ["ADP010"]
    # a zero fill and a mask einx would transpose are not additive masks: nothing reported
    assert _covering(findings, EINX, "# zero-fill") == []
    assert _covering(findings, EINX, "# transposed-mask") == []
    result = fix_text(EINX, "attend.py", RULES)
    assert result.error is None and len(result.applied) == 1
    assert "~mask[:, None, None, :]" in result.text
    assert "assert attn_bias.ndim == q.ndim" in result.text
    assert fix_text(result.text, "attend.py", RULES).applied == []  # a second run changes nothing


def test_the_fix_of_einx_masked_attention_computes_what_the_original_does(module_from_file):
    torch = pytest.importorskip("torch")
    pytest.importorskip("einx")
    pytest.importorskip("einops")
    result = fix_text(EINX, "attend.py", RULES)
    assert result.error is None and len(result.applied) == 1
    original = module_from_file(EINX, "einx_original")
    fixed = module_from_file(result.text, "einx_fixed")
    calls = []
    sdpa = fixed.scaled_dot_product_attention
    fixed.scaled_dot_product_attention = lambda *a, **kw: (calls.append(1), sdpa(*a, **kw))[1]
    torch.manual_seed(0)
    b, h, n, d = 2, 3, 7, 8
    for bias_rank in (None, 3, 4):
        for with_mask in (False, True):
            q, k, v = (torch.randn(b, h, n, d, dtype=torch.float64) for _ in range(3))
            mask = torch.rand(b, n) > 0.4 if with_mask else None
            if mask is not None:
                mask[:, 0] = True  # no row entirely masked
            bias = None if bias_rank is None else torch.randn(*((h, n, n) if bias_rank == 3 else (b, h, n, n)),
                                                             dtype=torch.float64)
            calls.clear()
            with torch.no_grad():
                want = original.Attend()(q, k, v, mask=mask, attn_bias=bias)
                got = fixed.Attend()(q, k, v, mask=mask, attn_bias=bias)
            assert calls, "the fused path ran"
            # float64, softmax over 7 keys and a sum of 7 products: a few roundings reordered
            torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    # the flag's float32 softmax: SDPA computes in the inputs' dtype (float32 here), as the
    # original does after its cast back
    q, k, v = (torch.randn(b, h, n, d) for _ in range(3))
    with torch.no_grad():
        want = original.Attend(full_precision=True)(q, k, v)
        got = fixed.Attend(full_precision=True)(q, k, v)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)


# torch.where with the fill from a same-file function (the graph read only literal fills and
# local names holding one): the same fact as einx's fill above.
WHERE = """\
import torch
from torch import nn


def max_neg_value(t):
    return -torch.finfo(t.dtype).max


def row_mean(t):
    return t.mean(dim=-1, keepdim=True)


class Attention(nn.Module):
    def forward(self, q, k, v, mask):
        sim = q @ k.transpose(-2, -1) * q.shape[-1] ** -0.5
        sim = torch.where(mask[:, None, None, :], sim, max_neg_value(sim))
        attn = sim.softmax(dim=-1)  # helper-fill
        return attn @ v


class MeanFill(nn.Module):
    \"\"\"Masked scores replaced by the row mean: a function that returns no fill.\"\"\"

    def forward(self, q, k, v, mask):
        sim = q @ k.transpose(-2, -1)
        sim = torch.where(mask[:, None, None, :], sim, row_mean(sim))
        attn = sim.softmax(dim=-1)  # mean-fill
        return attn @ v
"""


def test_a_where_fill_from_a_same_file_function_is_a_mask(module_from_file):
    findings = analyze(WHERE, "attention.py", RULES).findings
    assert [f.rule for f in _covering(findings, WHERE, "# helper-fill")] == ["ADP010"]
    assert _covering(findings, WHERE, "# mean-fill") == []
    result = fix_text(WHERE, "attention.py", RULES)
    assert result.error is None and len(result.applied) == 1
    torch = pytest.importorskip("torch")
    original = module_from_file(WHERE, "where_original").Attention()
    fixed = module_from_file(result.text, "where_fixed").Attention()
    torch.manual_seed(2)
    q, k, v = (torch.randn(2, 3, 6, 4, dtype=torch.float64) for _ in range(3))
    mask = torch.rand(2, 6) > 0.4
    mask[:, 0] = True
    with torch.no_grad():
        # float64, softmax over 6 keys and a sum of 6 products: a few roundings reordered
        torch.testing.assert_close(fixed(q, k, v, mask), original(q, k, v, mask), rtol=1e-12, atol=1e-12)
