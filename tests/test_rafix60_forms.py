"""Research attention found but not fixed, or fixed but inert (session 38).  The fixtures are ours.

A mask the code makes bool on every path and adds to the scores: ``scores + mask`` promotes it
to the scores' dtype, adding 1 where it is True and 0 elsewhere (a shift of those scores, not a
keep/drop mask; a bool mask "filled" by ``masked_fill(mask == 0, -big)`` stays bool, all True).
The guard sent every bool mask to the original, so such a patch never took its fused path
(inert).  Where the code makes the mask bool (a comparison, its views, a fill of it: every
binding of the name) and the scores keep q's dtype up to the add, the fused call takes
``mask.to(q.dtype)`` with no guard (0/1 hides no row).

- Exact in float64 on the CPU, train and eval, outputs and input gradients, the fused path taken.
- Look-alikes: the mask handed in (its dtype unknown: a bool one keeps the original path, a
  float one the fused call, an integer one the original); a tensor scale before the add (the
  scores' dtype is no longer known to be q's: the guard stays).

Scores an einsum writes with their axes moved (``"bqkh"``: the keys not last), a bias and a
fill added in that layout: each moved into the fused call's layout by the inverse of the scores'
move (``.permute(0, 3, 1, 2)``), where the code fixes its rank at the scores' (``x.repeat(1, 1,
h).unsqueeze(1)``, an einsum's output).  Exact in float64, train and eval, padded or not.
Look-alikes: a fill's mask handed in whole (its rank unknown: declined); the softmax over the
queries' axis (no site).
"""

from __future__ import annotations

import pytest
from corpus_forms import float64_pair, found, line_of, rules

from adopter.synth import fix_text

ADDED = """\
import torch
import torch.nn.functional as F
from torch import nn


class PaddedAttention(nn.Module):
    def __init__(self, dim=16, heads=4):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x, lengths):
        b, n, d = x.shape
        head_dim = d // self.heads
        scale = head_dim ** -0.5
        q, k, v = self.qkv(x).view(b, n, 3, self.heads, head_dim).permute(2, 0, 3, 1, 4)
        attn_mask = torch.arange(n, device=x.device)[None, :] < lengths[:, None]
        attn_mask = attn_mask.unsqueeze(1).unsqueeze(2)
        attn_mask = attn_mask.masked_fill(attn_mask == 0, -torch.finfo(q.dtype).max)
        scores = torch.matmul(q, k.transpose(-2, -1)) * scale
        scores = scores + attn_mask
        probs = F.softmax(scores, dim=-1)
        out = torch.matmul(probs, v)
        return self.proj(out.transpose(1, 2).reshape(b, n, d))
"""

# the mask handed in as it is: bool (True and False entries), float or integer at run time
HANDED = ADDED.replace(
    "    def forward(self, x, lengths):\n", "    def forward(self, x, attn_mask):\n").replace(
    "        attn_mask = torch.arange(n, device=x.device)[None, :] < lengths[:, None]\n"
    "        attn_mask = attn_mask.unsqueeze(1).unsqueeze(2)\n"
    "        attn_mask = attn_mask.masked_fill(attn_mask == 0, -torch.finfo(q.dtype).max)\n", "")

# the scores scaled by a tensor before the add: their dtype is no longer known to be q's (a
# float64 temperature makes float32 scores float64), so a bool mask keeps the original path
TEMPERATURE = ADDED.replace(
    "        self.proj = nn.Linear(dim, dim)\n",
    "        self.proj = nn.Linear(dim, dim)\n        self.temperature = nn.Parameter(torch.ones(heads, 1, 1))\n"
).replace("k.transpose(-2, -1)) * scale\n", "k.transpose(-2, -1)) * self.temperature\n")


def _fixed(source: str) -> str:
    return fix_text(source, "model.py", rules("ADP010")).text


def _guard(fixed: str) -> str:
    return fixed.split("        if (\n", 1)[1].split("        ):\n", 1)[0]


def test_a_bool_mask_the_code_adds_goes_to_the_fused_call_as_its_0_1():
    assert [f.line for f in found(ADDED, "ADP010")] == [line_of(ADDED, "scores = torch.matmul(")]
    fixed = _fixed(ADDED)
    assert "attn_mask=attn_mask.to(q.dtype)" in fixed
    assert "is_floating_point" not in fixed and "        if (" not in fixed  # (no guard: nothing to send back)


def test_a_handed_mask_keeps_its_dtype_guard():
    fixed = _fixed(HANDED)
    assert "scaled_dot_product_attention(" in fixed
    assert "attn_mask.to(" not in fixed
    assert "not attn_mask.is_floating_point()" in _guard(fixed)


def _pair(source, train):
    fixed = _fixed(source)
    assert "scaled_dot_product_attention(" in fixed
    a, b = float64_pair(source, fixed, "PaddedAttention")
    a.train(train)
    b.train(train)
    return a, b


def _same(a, b, *args):
    import torch

    x = torch.randn(3, 5, 16, dtype=torch.float64, requires_grad=True)
    out_a, out_b = a(x, *args), b(x, *args)
    # float64, a softmax over 5 keys of 4-wide head products: rounding far below these
    torch.testing.assert_close(out_b, out_a, rtol=1e-10, atol=1e-12)
    grad_a, = torch.autograd.grad(out_a.sum(), x)
    grad_b, = torch.autograd.grad(out_b.sum(), x)
    torch.testing.assert_close(grad_b, grad_a, rtol=1e-10, atol=1e-12)


def _spy_sdpa(b, monkeypatch):
    """Count the fused calls the patched module makes (the module's own global name)."""
    import torch.nn.functional as F

    calls = []
    real = F.scaled_dot_product_attention

    def counted(*args, **kwargs):
        calls.append(kwargs.get("attn_mask"))
        return real(*args, **kwargs)

    globals_ = type(b).forward.__globals__
    monkeypatch.setitem(globals_, "scaled_dot_product_attention", counted)
    return calls


@pytest.mark.parametrize("train", [False, True])
def test_the_filled_bool_mask_computes_the_same_attention_on_the_fused_path(train, monkeypatch):
    import torch

    a, b = _pair(ADDED, train)
    calls = _spy_sdpa(b, monkeypatch)
    _same(a, b, torch.tensor([5, 2, 3]))
    assert len(calls) == 1 and calls[0].dtype == torch.float64  # the fused path ran, with 0/1 in q's dtype


@pytest.mark.parametrize("train", [False, True])
@pytest.mark.parametrize("kind", ["bool", "float", "int"])
def test_a_handed_mask_of_any_dtype_computes_the_same_attention(train, kind, monkeypatch):
    import torch

    a, b = _pair(HANDED, train)
    calls = _spy_sdpa(b, monkeypatch)
    keep = torch.rand(3, 1, 1, 5) > 0.4
    mask = {"bool": keep, "float": torch.where(keep, 0.0, -3.0).double(), "int": keep.long() * 2}[kind]
    _same(a, b, mask)
    # a float mask takes the fused call; bool and integer ones (their dtype unknown to the code) the original
    assert len(calls) == (1 if kind == "float" else 0)


def test_a_tensor_scale_before_the_add_keeps_bool_masks_on_the_original_path(monkeypatch):
    import torch

    assert TEMPERATURE != HANDED
    fixed = _fixed(TEMPERATURE)
    assert "scaled_dot_product_attention(" in fixed
    assert ".dtype == torch.bool else" not in fixed
    assert "not attn_mask.is_floating_point()" in _guard(fixed)
    assert "attn_mask.to(" not in fixed
    a, b = float64_pair(TEMPERATURE, fixed, "PaddedAttention")
    calls = _spy_sdpa(b, monkeypatch)
    _same(a, b, torch.tensor([5, 2, 3]))
    assert calls == []  # the bool mask took the original path


# Scores an einsum writes with their axes moved (batch, queries, keys, heads), a relative bias
# added in that layout and a padding fill whose rank the code fixes (`repeat` names every axis):
# both moved into the fused call's (batch, heads, queries, keys) layout.
MOVED = """\
import torch
from torch import nn


class HeadsLastAttention(nn.Module):
    def __init__(self, dim=12, inner=4, heads=3, p=0.0):
        super().__init__()
        self.heads = heads
        self.scale = inner ** 0.5
        self.wq = nn.Parameter(torch.randn(dim, inner, heads) / dim ** 0.5)
        self.wk = nn.Parameter(torch.randn(dim, inner, heads) / dim ** 0.5)
        self.wv = nn.Parameter(torch.randn(dim, inner, heads) / dim ** 0.5)
        self.rel = nn.Parameter(torch.randn(inner, heads) / inner)
        self.wo = nn.Parameter(torch.randn(inner, heads, dim) / dim ** 0.5)
        self.drop = nn.Dropout(p)

    def forward(self, x, keep):
        q = torch.einsum('btm,meh->bteh', x, self.wq)
        k = torch.einsum('btm,meh->bteh', x, self.wk)
        v = torch.einsum('btm,meh->bteh', x, self.wv)
        n = x.shape[1]
        pos = torch.linspace(-1, 1, n, dtype=x.dtype)[:, None, None] - torch.linspace(-1, 1, n, dtype=x.dtype)[None, :, None]
        dist = pos * torch.ones(q.shape[2], dtype=x.dtype)
        s = torch.einsum('bqeh,bkeh->bqkh', q, k) + torch.einsum('bqeh,qke->bqkh', q + self.rel, dist)
        s = s / self.scale
        s = s.masked_fill(~keep.unsqueeze(-1).repeat(1, 1, self.heads).unsqueeze(1), float('-inf')).softmax(-2)
        out = torch.einsum('bqkh,bkeh->bqeh', self.drop(s), v)
        return torch.einsum('bqeh,ehm->bqm', out, self.wo)
"""

# the fill's mask handed in whole: its rank (a (batch, 1, keys, 1) mask or a (keys, 1) one,
# each broadcast differently) is not in the code, so the move cannot be written
# the softmax over the queries' axis of the same scores: no attention over the keys
OVER_QUERIES = MOVED.replace(".softmax(-2)", ".softmax(1)")
UNKNOWN_RANK = MOVED.replace("s.masked_fill(~keep.unsqueeze(-1).repeat(1, 1, self.heads).unsqueeze(1),",
                             "s.masked_fill(~keep,")


def test_a_fill_and_bias_on_moved_scores_are_moved_into_the_fused_layout():
    assert [f.line for f in found(MOVED, "ADP010")] == [line_of(MOVED, "s = torch.einsum('bqeh,bkeh->bqkh'")]
    fixed = _fixed(MOVED)
    assert "scaled_dot_product_attention(" in fixed
    # the (batch, queries, keys, heads) mask and bias read as (batch, heads, queries, keys)
    assert ".unsqueeze(1)).permute(0, 3, 1, 2)" in fixed
    assert fixed.count(".permute(0, 3, 1, 2)") >= 3  # (q, the bias, the fill's mask)


@pytest.mark.parametrize("train", [False, True])
@pytest.mark.parametrize("padded", [False, True])
def test_moved_scores_with_a_fill_and_a_bias_compute_the_same_attention(train, padded, monkeypatch):
    import torch

    fixed = _fixed(MOVED)
    a, b = float64_pair(MOVED, fixed, "HeadsLastAttention", p=0.0)
    a.train(train)
    b.train(train)
    calls = _spy_sdpa(b, monkeypatch)
    x = torch.randn(2, 6, 12, dtype=torch.float64, requires_grad=True)
    keep = torch.ones(2, 6, dtype=torch.bool)
    if padded:
        keep[0, 4:] = False
        keep[1, 1:3] = False
    out_a, out_b = a(x, keep), b(x, keep)
    # float64, a softmax over 6 keys of 4-wide head products: rounding far below these
    torch.testing.assert_close(out_b, out_a, rtol=1e-10, atol=1e-12)
    grad_a, = torch.autograd.grad(out_a.sum(), x)
    grad_b, = torch.autograd.grad(out_b.sum(), x)
    torch.testing.assert_close(grad_b, grad_a, rtol=1e-10, atol=1e-12)
    assert len(calls) == 1


def test_moved_scores_with_dropout_compute_the_same_attention_seeded(monkeypatch):
    import torch

    fixed = _fixed(MOVED)
    a, b = float64_pair(MOVED, fixed, "HeadsLastAttention", p=0.5)
    a.eval()
    b.eval()
    x = torch.randn(2, 6, 12, dtype=torch.float64)
    keep = torch.ones(2, 6, dtype=torch.bool)
    keep[0, 3:] = False
    torch.testing.assert_close(b(x, keep), a(x, keep), rtol=1e-10, atol=1e-12)
    # (in training the fused call draws its dropout mask in its own order: the rate reaches it)
    assert "dropout_p=self.drop.p if self.training else 0.0" in fixed


def test_a_fill_of_unknown_rank_on_moved_scores_is_declined():
    assert UNKNOWN_RANK != MOVED
    assert len(found(UNKNOWN_RANK, "ADP010")) == 1
    result = fix_text(UNKNOWN_RANK, "model.py", rules("ADP010"))
    assert "scaled_dot_product_attention(" not in result.text


def test_a_softmax_over_the_queries_of_moved_scores_is_no_site():
    assert OVER_QUERIES != MOVED
    assert found(OVER_QUERIES, "ADP010") == []
    assert "scaled_dot_product_attention(" not in _fixed(OVER_QUERIES)


@pytest.mark.parametrize("text, rank", [
    ("~mask.unsqueeze(-1).repeat(1, 1, self.heads).unsqueeze(1)", 4),
    ("torch.einsum('bqeh,qke->bqkh', q, p)", 4),
    ("m.view(b, 1, 1, n).bool()", 4),
    ("m.reshape((b, 1, n)).eq(0)", 3),
    ("m.expand(b, h, n, n).to(torch.float32)", 4),
    ("mask", None),  # a name: any rank
    ("mask[:, None]", None),  # an index of a tensor of unknown rank
    ("m.unsqueeze(1)", None),
    ("m.view(b, 1, 1, n).eq(other)", None),  # a tensor compared may broadcast to more axes
    ("m.view(shape)", None),  # a shape held in a name
    ("torch.einsum('...qk,...kd->...qd', a, b)", None),
    ("m.squeeze(1).view(b, n)", 2),
])
def test_the_rank_the_code_fixes(text, rank):
    import ast

    from adopter.synth.ranks import static_rank

    assert static_rank(ast.parse(text, mode="eval").body) == rank


@pytest.mark.parametrize("text, expected", [
    ("m = torch.arange(n)[None, :] < lens[:, None]\nm = m.unsqueeze(1)\nm = m.masked_fill(m == 0, -1e9)", True),
    ("m = ~x.eq(0)\nm = m[:, None] & y.bool()", True),
    ("m = x.float()", False),  # a float tensor
    ("m = x < 1\nif flag:\n    m = x", False),  # another binding of unknown dtype
    ("m = x < 1\nm += 1", False),  # an augmented assignment (bool + 1 is an integer)
    ("for m in masks:\n    pass\nm = x < 1", False),  # a loop binds it too
])
def test_a_mask_the_code_makes_bool(text, expected):
    import ast

    from adopter.synth.ranks import bool_by_code

    func = ast.parse("def f(x, y, n, lens, flag, masks):\n" + "\n".join("    " + line for line in text.split("\n"))
                     + "\n    return m").body[0]
    assert bool_by_code(ast.Name(id="m", ctx=ast.Load()), func) is expected
    # a parameter is never known to be bool
    assert bool_by_code(ast.Name(id="x", ctx=ast.Load()), func) is False
