"""A mask chosen by a nested ``if`` on its dtype (rafix36, session 28): attzoo's helper and
baby-llm's eager backend apply an optional mask as

    if mask is not None:
        if mask.dtype == torch.bool:
            scores = scores.masked_fill(~mask, float("-inf"))
        else:
            scores = scores + mask

which is exactly how ``scaled_dot_product_attention`` reads ``attn_mask`` (a bool mask keeps
where True, a float one is added): the whole nested ``if`` is the one argument ``attn_mask=mask``
(``mask.logical_not()`` for a bool mask when the fill is where the mask holds), and beside
another part of the mask (a causal fill) the float mask the fill makes of a bool one.  Before,
the planner declined the site ("the if ... does more than an attention step").  The match may
hold either branch as its step (the fill or the add); both are read.  Near-misses, left unfixed:
a branch that does more than the mask step, a fill value that is no masking value, a finite fill
(a row the mask hides entirely is uniform there but NaN under SDPA's bool mask), a test on the
scores' dtype, and an add of another tensor than the tested one.  The fixtures are ours.
"""

from __future__ import annotations

import pytest

from corpus_forms import finding_at, float64_pair, rules

from adopter.synth import fix_text

ATTN = """\
import math
import torch
import torch.nn as nn
import torch.nn.functional as F


class Attention(nn.Module):
    def __init__(self, causal=False):
        super().__init__()
        self.causal = causal

    def forward(self, q, k, v, mask=None):
        scores = torch.matmul(q, k.transpose(-2, -1)) / math.sqrt(q.size(-1))
        if self.causal:
            n = q.shape[-2]
            tri = torch.ones(n, n, dtype=torch.bool, device=q.device).tril()
            scores = scores.masked_fill(~tri, float("-inf"))
        if mask is not None:
            if TEST:
                BOOL
            else:
                FLOAT
        weights = F.softmax(scores, dim=-1)
        return torch.matmul(weights, v)
"""

BOOL = 'scores = scores.masked_fill(~mask, float("-inf"))'
FLOAT = "scores = scores + mask"


def attn(test="mask.dtype == torch.bool", bool_=BOOL, float_=FLOAT, causal_off=False):
    code = ATTN.replace("TEST", test).replace("BOOL", bool_).replace("FLOAT", float_)
    if causal_off:  # (no causal fill beside the choice)
        start = code.index("        if self.causal:")
        code = code[:start] + code[code.index("        if mask is not None:"):]
    return code


def fixed_of(code: str) -> str:
    return fix_text(code, "model.py", rules("ADP010")).text


def masks():
    import torch

    keep = torch.rand(2, 1, 5, 5) > 0.3
    keep[..., 0] = True  # (every row keeps a key: a row hidden entirely is NaN in the original)
    return [None, keep, torch.zeros(2, 1, 5, 5, dtype=torch.float64).masked_fill(~keep, -1e9),
            torch.randn(2, 1, 5, 5, dtype=torch.float64)]


def same(code: str, fixed: str, **kwargs):
    import torch

    a, b = float64_pair(code, fixed, "Attention", **kwargs)
    for mask in masks():
        q, k, v = (torch.randn(2, 3, 5, 4, dtype=torch.float64, requires_grad=True) for _ in range(3))
        if mask is not None and mask.dtype == torch.bool and ("masked_fill(mask," in code or "masked_fill_(mask," in code):
            mask = ~mask  # (the fill where the mask holds: True hides)
        out_a, out_b = a(q, k, v, mask), b(q, k, v, mask)
        torch.testing.assert_close(out_b, out_a, rtol=0, atol=1e-10)
        grads_a = torch.autograd.grad(out_a.sum(), (q, k, v))
        grads_b = torch.autograd.grad(out_b.sum(), (q, k, v))
        for ga, gb in zip(grads_a, grads_b):
            torch.testing.assert_close(gb, ga, rtol=0, atol=1e-10)


@pytest.mark.parametrize("code", [
    attn(),
    attn("mask.dtype is torch.bool"),
    attn("mask.dtype != torch.bool", bool_=FLOAT, float_=BOOL),
    attn(bool_='scores = scores.masked_fill(mask == 0, float("-inf"))'),
    attn(bool_="scores = scores.masked_fill(mask.logical_not(), -math.inf)"),
    attn(bool_='scores = scores.masked_fill(mask, float("-inf"))'),
    attn(float_="scores += mask"),
    attn(bool_='scores.masked_fill_(mask, float("-inf"))', float_="scores += mask"),
])
@pytest.mark.parametrize("causal", [False, True])
def test_a_mask_chosen_by_its_dtype_is_sdpas_attn_mask(code, causal):
    assert finding_at(code, "ADP010", "F.softmax") is not None
    fixed = fixed_of(code)
    assert "scaled_dot_product_attention(" in fixed
    same(code, fixed, causal=causal)


def test_alone_the_choice_is_the_mask_itself():
    assert "attn_mask=mask," in "".join(fixed_of(attn(causal_off=True)).split())


@pytest.mark.parametrize("code", [
    # a branch that does more than the mask step
    attn(bool_='scores = scores.masked_fill(~mask, float("-inf"))\n                scores = scores * 2'),
    attn(float_="scores = scores + mask\n                mask = None"),
    # a fill value that is no masking value, and a finite one
    attn(bool_="scores = scores.masked_fill(~mask, 0.0)"),
    attn(bool_="scores = scores.masked_fill(~mask, -1e9)"),
    # a test on the scores, not the mask
    attn("scores.dtype == torch.bool"),
    attn("mask.dtype == torch.float16"),
    # the float branch adds another tensor than the one tested, or scales the mask
    attn(float_="scores = scores + mask.float()"),
    attn(float_="scores = scores + 2 * mask"),
])
def test_look_alikes_of_the_dtype_choice_stay_unfixed(code):
    assert finding_at(code, "ADP010", "F.softmax") is not None
    assert "scaled_dot_product_attention(" not in fixed_of(code)
