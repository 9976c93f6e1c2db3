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

import dataclasses

import pytest

torch = pytest.importorskip("torch")

from corpus_forms import finding_at, rules


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


# --- a context product in try, its handler the same product with the probabilities cast ---------

WINDOW = '''
import torch
import torch.nn as nn


class WindowAttention(nn.Module):
    def __init__(self, dim=16, window=3, num_heads=2):
        super().__init__()
        self.num_heads = num_heads
        self.window = window
        self.scale = (dim // num_heads) ** -0.5
        n = window * window
        self.relative_position_bias_table = nn.Parameter(torch.randn(2 * n, num_heads))
        self.register_buffer("relative_position_index", torch.randint(0, 2 * n, (n, n)))
        self.qkv = nn.Linear(dim, dim * 3)
        self.attn_drop = nn.Dropout(0.0)
        self.proj = nn.Linear(dim, dim)
        self.softmax = nn.Softmax(dim=-1)

    def forward(self, x, mask=None):
        B_, N, C = x.shape
        qkv = self.qkv(x).reshape(B_, N, 3, self.num_heads, C // self.num_heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        q = q * self.scale
        attn = q @ k.transpose(-2, -1)
        BIAS
        attn = attn + relative_position_bias.unsqueeze(0)
        if mask is not None:
            attn = attn + mask.unsqueeze(1)
        attn = self.softmax(attn)  # site
        attn = self.attn_drop(attn)
        try:
            x = (attn @ v).transpose(1, 2).reshape(B_, N, C)
        HANDLER
        return self.proj(x)
'''

TABLE = ("relative_position_bias = self.relative_position_bias_table[self.relative_position_index.view(-1)].view(\n"
         "            N, N, -1)\n"
         "        relative_position_bias = relative_position_bias.permute(2, 0, 1).contiguous()")
HALF = "except:\n            x = (attn.half() @ v).transpose(1, 2).reshape(B_, N, C)"


def _window(bias=TABLE, handler=HALF):
    return WINDOW.replace("BIAS", bias).replace("HANDLER", handler)


def _fix(code):
    from adopter.synth import fix_text

    return fix_text(code, "model.py", rules("ADP010"))


def test_dtype_fallback_reads_one_statement_cast_again():
    import ast

    from adopter.synth.sdpa import _dtype_fallback

    def reads(text):
        return _dtype_fallback(ast.parse(text).body[0])

    assert reads("try:\n    x = a @ v\nexcept:\n    x = a.half() @ v")
    assert reads("try:\n    x = (a @ v).t()\nexcept RuntimeError:\n    x = (a.to(v.dtype) @ v).t()")
    # near-misses: another computation, no cast at all, more statements, a bound exception,
    # else/finally blocks
    assert not reads("try:\n    x = a @ v\nexcept:\n    x = torch.zeros_like(v)")
    assert not reads("try:\n    x = a @ v\nexcept:\n    x = a @ v")
    assert not reads("try:\n    x = a @ v\nexcept:\n    print(a.dtype)\n    x = a.half() @ v")
    assert not reads("try:\n    x = a @ v\nexcept Exception as e:\n    x = a.half() @ v")
    assert not reads("try:\n    x = a @ v\nexcept:\n    x = a.half() @ v\nelse:\n    pass")
    assert not reads("try:\n    x = a @ v\n    y = 1\nexcept:\n    x = a.half() @ v")


def test_a_product_with_a_cast_fallback_is_fixed_and_matches():
    import torch
    from corpus_forms import float64_pair

    code = _window()
    assert finding_at(code, "ADP010", "# site") is not None
    result = _fix(code)
    fixed = result.text
    assert "scaled_dot_product_attention(" in fixed, result.skipped
    # the cases where the original's product raises (and its handler runs) take the original
    assert "v.dtype != q.dtype" in fixed
    assert 'getattr(self.relative_position_bias_table, "dtype", q.dtype) != q.dtype' in fixed
    assert 'mask is not None and getattr(mask, "dtype", q.dtype) != q.dtype' in fixed
    a, b = float64_pair(code, fixed, "WindowAttention")
    torch.manual_seed(1)
    x = torch.randn(4, 9, 16, dtype=torch.float64, requires_grad=True)
    mask = torch.zeros(4, 9, 9, dtype=torch.float64)
    mask[-1, :, -3:] = -100.0
    for m in (None, mask):
        for grad in (False, True):
            with torch.set_grad_enabled(grad):
                torch.testing.assert_close(b(x, m), a(x, m), rtol=0, atol=1e-12)
        ga = torch.autograd.grad(a(x, m).sum(), [x, a.relative_position_bias_table, *a.qkv.parameters()])
        gb = torch.autograd.grad(b(x, m).sum(), [x, b.relative_position_bias_table, *b.qkv.parameters()])
        for left, right in zip(gb, ga):
            torch.testing.assert_close(left, right, rtol=0, atol=1e-12)


def test_mixed_dtypes_take_the_original_and_its_handler():
    """q in half, the mask in float32: the original's product raises and its handler casts the
    probabilities; the patched module takes the same path and gives the same output."""
    import torch
    from corpus_forms import float64_pair

    code = _window()
    fixed = _fix(code).text
    a, b = float64_pair(code, fixed, "WindowAttention")
    a, b = a.half(), b.half()
    torch.manual_seed(2)
    x = torch.randn(4, 9, 16).half()
    mask = torch.zeros(4, 9, 9)  # float32: promotes the scores
    with torch.no_grad():
        out_a, out_b = a(x, mask), b(x, mask)
    assert out_b.dtype == out_a.dtype == torch.float16
    torch.testing.assert_close(out_b, out_a, rtol=0, atol=0)


@pytest.mark.parametrize("handler", [
    "except:\n            x = torch.zeros_like(v).transpose(1, 2).reshape(B_, N, C)",  # another value
    "except:\n            print(attn.dtype)\n            x = (attn.half() @ v).transpose(1, 2).reshape(B_, N, C)",
    "finally:\n            pass",
], ids=["other-value", "two-statements", "finally"])
def test_other_handlers_stay_declined(handler):
    code = _window(handler=handler)
    result = _fix(code)
    assert "scaled_dot_product_attention(" not in result.text
    assert result.skipped


def test_a_fallback_with_a_bias_of_unknown_dtype_is_hoisted_and_fixed():
    """The bias is a function of the table (its dtype the function's), computed in the
    attention: the guard cannot read its dtype before the steps.  Declined until session 30;
    since rafix41 its statements (reading nothing of the attention) move above the guard,
    which then reads the bias's own dtype (near-misses in tests/test_rafix41_forms.py)."""
    import torch
    from corpus_forms import float64_pair

    code = _window(bias=TABLE + "\n        relative_position_bias = 16 * torch.sigmoid(relative_position_bias)")
    assert finding_at(code, "ADP010", "# site") is not None
    result = _fix(code)
    fixed = result.text
    assert "scaled_dot_product_attention(" in fixed, result.skipped
    assert 'getattr(relative_position_bias, "dtype", q.dtype) != q.dtype' in fixed
    assert fixed.count("relative_position_bias = 16 * torch.sigmoid(relative_position_bias)") == 1
    a, b = float64_pair(code, fixed, "WindowAttention")
    torch.manual_seed(1)
    x = torch.randn(4, 9, 16, dtype=torch.float64)
    mask = torch.zeros(4, 9, 9, dtype=torch.float64)
    mask[-1, :, -3:] = -100.0
    for m in (None, mask):
        with torch.no_grad():
            torch.testing.assert_close(b(x, m), a(x, m), rtol=0, atol=1e-12)
    # q in half, the mask in float32: the original's handler runs, on both
    a, b = a.half(), b.half()
    with torch.no_grad():
        out_a, out_b = a(x.half(), mask.float()), b(x.half(), mask.float())
    assert out_b.dtype == out_a.dtype == torch.float16
    torch.testing.assert_close(out_b, out_a, rtol=0, atol=0)


# --- after a pass, a guarded patch is checked with a mask hiding a whole row -----------------

def test_blind_rows_hides_a_row_either_way():
    from adopter.verify.build import blind_rows, has_full_rows

    keep = torch.ones(2, 1, 4, 4, dtype=torch.bool)
    out = blind_rows(keep)
    assert has_full_rows(out) and bool((~out).all(-1).any()) and bool(out.all(-1).any())
    assert bool(keep.all())  # the input is left as it was
    # near-misses: not boolean, a single row, one axis
    additive = torch.zeros(2, 4)
    assert blind_rows(additive) is additive
    one_row = torch.ones(1, 4, dtype=torch.bool)
    assert blind_rows(one_row) is one_row
    flat = torch.ones(4, dtype=torch.bool)
    assert blind_rows(flat) is flat


KEEP_MASK = FILLED.replace("FilledAttention", "KeepAttention").replace(
    "score.masked_fill_(mask, -1e9)", "score = score.masked_fill(~mask, -1e4)")


def test_a_passing_guarded_patch_is_checked_with_a_hidden_row(tmp_path):
    """A keep-mask filled with a finite value: the patch guards rows it hides entirely; after
    the pass, the same inputs with such a row are compared again (on main: not said)."""
    from adopter.verify.result import PASS

    result = _verify(tmp_path, KEEP_MASK, "keep.py")["KeepAttention"]
    assert result.verdict == PASS, result
    assert "also with a mask hiding a whole row" in result.reason, result


def test_a_guard_that_misses_hidden_rows_fails(tmp_path):
    """The check can fail: with the patch's rows test made never true (a guard that never
    sends hidden rows to the original), the fused call differs there and the site fails."""
    from adopter.config import Config
    from adopter.synth import fix_text
    from adopter.verify import verify_file
    from adopter.verify.core import options_for
    from adopter.verify.result import FAIL

    def blind_guard(text, path, rules_, package=None):
        result = fix_text(text, path, rules_, package)
        assert "(~mask).all(-1).any()" in result.text
        return dataclasses.replace(result, text=result.text.replace(
            "(~mask).all(-1).any()", "((~mask).all(-1).any() and False)"))

    path = tmp_path / "keep.py"
    path.write_text(KEEP_MASK)
    results = verify_file(str(path), rules("ADP010"), Config(), benchmark=False, fix=blind_guard,
                          options=options_for(Config(), benchmark=False))
    result = {r.class_name: r for r in results if not r.combined}["KeepAttention"]
    assert result.verdict == FAIL and "with a mask hiding a whole row" in result.reason, result
