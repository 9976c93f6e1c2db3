"""Attention that hands its probabilities back on every call, declined by callers in forms
the decline reading did not take (probs60, session 44; the fixtures are ours):

- the probabilities reach the return through a local bound once from them alone (``top =
  attn.view(b, h, n, n)[:, 0].contiguous()``, then ``return out, top, cache``): on the fused
  path the local is ``None if attn is None else ...``, as the probabilities are;
- a caller unpacking them into a name bound more than once and never read (``ctx, _, _ =
  self.attn(x)``);
- a caller slicing them off (``self.attn(x)[:2]`` where they are the third value).

Look-alikes keep the original path: the local read again (a loss on it), its value calling
something other than the probabilities' own methods, the twice-bound name read later, a
slice that keeps their place.
"""

from __future__ import annotations

import pytest
from corpus_forms import float64_pair, rules

from adopter.synth import fix_text

ATTN = """\
import math
import torch
import torch.nn as nn


class Attention(nn.Module):
    def __init__(self, dim=8, heads=2):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)
        self.sm = nn.Softmax(dim=-1)

    def forward(self, x, mask=None):
        b, n, c = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.heads, -1).permute(2, 0, 3, 1, 4)
        scores = torch.matmul(q, k.transpose(2, 3)) / math.sqrt(q.size(-1))
        if mask is not None:
            scores = scores.masked_fill(mask, -1e18)
        attn = self.sm(scores)
        ctx = torch.matmul(attn, v).transpose(1, 2).reshape(b, n, c)
        out = self.out(ctx)
TOP
        return RETURN


class Block(nn.Module):
    def __init__(self, dim=8):
        super().__init__()
        self.attn = Attention(dim)
        self.ff = nn.Linear(dim, dim)

    def forward(self, x, mask=None):
CALL
        return self.ff(h) + x
"""

DERIVED = "        top = attn.view(b, self.heads, n, n)[:, 0, :, :] \\\n            .contiguous()"
RETURN3 = "out, top, [q, k]"
UNPACK = "        h, _, _ = self.attn(x, mask)"


def _code(top=DERIVED, ret=RETURN3, call=UNPACK) -> str:
    return ATTN.replace("TOP", top).replace("RETURN", ret).replace("CALL", call)


def _fixed(code: str) -> str:
    return fix_text(code, "model.py", rules("ADP010")).text


def _mask():
    import torch

    mask = torch.zeros(2, 1, 5, 5, dtype=torch.bool)
    mask[1, :, :, 3:] = True  # some keys masked out, never a whole row
    return mask


@pytest.mark.parametrize("with_mask", [False, True])
def test_probabilities_through_a_local_declined_by_a_twice_bound_name_match(with_mask):
    import torch

    code = _code()
    fixed = _fixed(code)
    assert "scaled_dot_product_attention(" in fixed
    assert "top = None if attn is None else attn" in fixed
    assert "h, _, _ = self.attn(x, mask, need_weights=False)" in fixed
    a, b = float64_pair(code, fixed, "Block")
    torch.manual_seed(1)
    x = torch.randn(2, 5, 8, dtype=torch.float64, requires_grad=True)
    mask = _mask() if with_mask else None
    ya, yb = a(x, mask), b(x, mask)
    # float64, 4-wide dot products, 5-key softmax: equal to rounding
    torch.testing.assert_close(yb, ya, rtol=0, atol=1e-12)
    ga = torch.autograd.grad(ya.sum(), x)[0]
    gb = torch.autograd.grad(yb.sum(), x)[0]
    torch.testing.assert_close(gb, ga, rtol=0, atol=1e-12)


def test_the_attention_called_without_the_flag_still_hands_back_the_local():
    import torch

    code = _code()
    a, b = float64_pair(code, _fixed(code), "Attention")
    torch.manual_seed(2)
    x = torch.randn(2, 5, 8, dtype=torch.float64)
    oa, ta, _ = a(x)
    ob, tb, _ = b(x)  # the default keeps the original path: the probabilities' first head
    torch.testing.assert_close(ob, oa, rtol=0, atol=1e-12)
    torch.testing.assert_close(tb, ta, rtol=0, atol=1e-12)
    assert tb.shape == (2, 5, 5)
    of, tf, _ = b(x, need_weights=False)
    assert tf is None
    torch.testing.assert_close(of, oa, rtol=0, atol=1e-12)


def test_a_slice_leaving_the_probabilities_out_declines_them():
    import torch

    code = _code(ret="out, [q, k], top", call="        h, cache = self.attn(x, mask)[:2]")
    fixed = _fixed(code)
    assert "self.attn(x, mask, need_weights=False)[:2]" in fixed
    a, b = float64_pair(code, fixed, "Block")
    torch.manual_seed(3)
    x = torch.randn(2, 5, 8, dtype=torch.float64, requires_grad=True)
    ya, yb = a(x, _mask()), b(x, _mask())
    torch.testing.assert_close(yb, ya, rtol=0, atol=1e-12)
    ga = torch.autograd.grad(ya.sum(), x)[0]
    gb = torch.autograd.grad(yb.sum(), x)[0]
    torch.testing.assert_close(gb, ga, rtol=0, atol=1e-12)


@pytest.mark.parametrize("top,ret,call", [
    # the local is read again beside the return: every call uses it
    (DERIVED + "\n        out = out + top.sum()", RETURN3, UNPACK),
    # its value calls something other than the probabilities' own methods
    ("        top = torch.mean(attn, dim=1)", RETURN3, UNPACK),
    # the local handed back in two places of the returns
    (DERIVED, "out, top, top", UNPACK),
    # the twice-bound name is read after the second binding: it is the probabilities there
    (DERIVED, RETURN3, "        h, _, _ = self.attn(x, mask)\n        h, _, _ = self.attn(h, mask)\n        h = h + _[0][0].sum()"),
    # the slice keeps their place
    (DERIVED, "out, [q, k], top", "        h, cache, w = self.attn(x, mask)[-3:]\n        h = h + w.sum()"),
])
def test_probabilities_kept_in_look_alike_forms_keep_the_original_path(top, ret, call):
    fixed = _fixed(_code(top=top, ret=ret, call=call))
    assert "need_weights" not in fixed
