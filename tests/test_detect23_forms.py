"""Research attention the engine did not find (session 22, helper detect23).  Fixtures are ours.

**In-place steps keep the rank of the tensor they update.**  A BERT port (tbert) writes
``scores = torch.matmul(q, k.transpose(2, 3))``, ``scores *= 1. / math.sqrt(H)``, ``if mask is
not None: scores += mask`` and ``F.softmax(scores, dim=3)`` with q and k 4-D.  ``dim=3`` is the
keys' axis only where the scores are 4-D; the rank pass read ``scores + mask`` with a mask of
unknown rank as unknown (an out-of-place add may broadcast the scores wider), so the softmax
kept a dim counted from the front and matched no layout.  An in-place update cannot change the
shape of the tensor it writes into (torch raises where the other operand would widen it): the
result of ``scores += mask`` and ``scores.masked_fill_(m, v)`` has the target's rank.
Near-misses: the same code written ``scores = scores + mask`` (may broadcast: still unknown) and
``dim=2`` (the queries' axis of 4-D scores).
"""

from __future__ import annotations

import pytest

from adopter.synth import fix_text
from corpus_forms import finding_at, rules

INPLACE = '''\
import math

import torch
import torch.nn.functional as F


class Attention(torch.nn.Module):
    def __init__(self, dim=16, heads=2):
        super().__init__()
        self.heads = heads
        self.head_size = dim // heads
        self.query = torch.nn.Linear(dim, dim)
        self.key = torch.nn.Linear(dim, dim)
        self.value = torch.nn.Linear(dim, dim)
        self.dropout = torch.nn.Dropout(0.1)

    def forward(self, x, mask=None):
        B, T, C = x.shape
        q = self.query(x).view(B, T, self.heads, self.head_size).transpose(1, 2)
        k = self.key(x).view(B, T, self.heads, self.head_size).transpose(1, 2)
        v = self.value(x).view(B, T, self.heads, self.head_size).transpose(1, 2)
        scores = torch.matmul(q, k.transpose(2, 3))
        SCALE
        if mask is not None:
            MASK
        w = F.softmax(scores, dim=DIM)  # site
        w = self.dropout(w)
        c = torch.matmul(w, v).transpose(1, 2).contiguous()
        return c.view(B, T, C)
'''


def _inplace(scale="scores *= 1.0 / math.sqrt(self.head_size)", mask="scores += mask", dim="3"):
    return INPLACE.replace("SCALE", scale).replace("MASK", mask).replace("DIM", dim)


def test_inplace_scale_and_mask_with_a_dim_from_the_front_is_attention():
    assert finding_at(_inplace(), "ADP010", "# site") is not None


def test_inplace_masked_fill_with_a_dim_from_the_front_is_attention():
    code = _inplace(mask="scores.masked_fill_(mask, float('-inf'))")
    assert finding_at(code, "ADP010", "# site") is not None


def test_out_of_place_mask_of_unknown_rank_stays_unread():
    # `scores + mask` may broadcast the scores wider: dim=3 is then not known to be the keys'
    assert finding_at(_inplace(mask="scores = scores + mask"), "ADP010", "# site") is None


def test_inplace_softmax_over_the_queries_axis_is_no_attention():
    assert finding_at(_inplace(dim="2"), "ADP010", "# site") is None


@pytest.mark.parametrize("mask_kind", ["float", "masked_key"])
def test_inplace_fix_matches(mask_kind):
    import torch

    code = _inplace()
    fixed = fix_text(code, "model.py", rules("ADP010")).text
    assert "scaled_dot_product_attention(" in fixed
    original, patched = {}, {}
    exec(compile(code, "orig.py", "exec"), original)  # noqa: S102 (our own fixture)
    exec(compile(fixed, "fixed.py", "exec"), patched)  # noqa: S102
    torch.manual_seed(0)
    a = original["Attention"]().double().eval()
    b = patched["Attention"]().double().eval()
    b.load_state_dict(a.state_dict(), strict=True)
    x = torch.randn(2, 5, 16, dtype=torch.float64)
    if mask_kind == "float":
        mask = torch.randn(2, 1, 5, 5, dtype=torch.float64)
    else:
        mask = torch.zeros(2, 1, 5, 5, dtype=torch.float64)
        mask[..., -1] = torch.finfo(torch.float64).min  # every query's last key masked
    # float64, 8-wide head dot products and 5-key softmax sums: agreement to rounding
    torch.testing.assert_close(b(x, mask), a(x, mask), rtol=0, atol=1e-12)
    torch.testing.assert_close(b(x), a(x), rtol=0, atol=1e-12)


# ---------------------------------------------------------------- a normal CDF is no GELU
#
# mega-pytorch's Laplace attention function, ``(1 + erf((x - mu) / (std * sqrt(2)))) * 0.5``, has
# the calls and constants of an erf GELU (erf, one half, sqrt(2)) but is the normal CDF of a
# shifted input, without the product by ``x`` that makes GELU ``x * Phi(x)``.  The formula test
# read only calls and constants, so the module was typed nn.GELU (a Linear before it would have
# been a bias-GELU site).  The input must now also be read outside the erf/tanh call.

CDF = '''\
import math

import torch
from torch import nn


class Act(nn.Module):
    def forward(self, x):
        BODY


class Block(nn.Module):
    def __init__(self, dim=8):
        super().__init__()
        self.fc = nn.Linear(dim, dim)
        self.act = Act()

    def forward(self, x):
        return self.act(self.fc(x))  # site
'''

LAPLACE = ("mu = math.sqrt(0.5)\n        std = math.sqrt((4 * math.pi) ** -1)\n"
           "        return (1 + torch.special.erf((x - mu) / (std * math.sqrt(2)))) * 0.5")
NORMAL_CDF = "return 0.5 * (1.0 + torch.erf(x / math.sqrt(2.0)))"
GELU_VIA_CDF = "cdf = 0.5 * (1.0 + torch.erf(x / math.sqrt(2.0)))\n        return x * cdf"
GELU_TANH = ("return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * "
             "(x + 0.044715 * torch.pow(x, 3.0))))")


@pytest.mark.parametrize("body", [LAPLACE, NORMAL_CDF], ids=["laplace", "normal_cdf"])
def test_a_normal_cdf_module_is_no_gelu(body):
    assert finding_at(CDF.replace("BODY", body), "ADP006", "# site") is None


@pytest.mark.parametrize("body", [GELU_VIA_CDF, GELU_TANH], ids=["erf_via_name", "tanh"])
def test_gelu_modules_written_out_stay_gelu(body):
    assert finding_at(CDF.replace("BODY", body), "ADP006", "# site") is not None


def test_laplace_module_is_not_typed_gelu():
    import ast

    from adopter.structure import module_structure

    code = CDF.replace("BODY", LAPLACE)
    structure = module_structure(ast.parse(code), text=code)
    assert [c.fqn for c in structure.classes["Block"].bindings["act"]] == ["Act"]
