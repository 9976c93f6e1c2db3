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
from corpus_forms import finding_at, float64_pair, rules

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
    a, b = float64_pair(code, fixed, "Attention")
    a.eval(), b.eval()
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


# ---------------------------------------------------------------- keys-first, handed to a product
#
# flair's lemmatizer decodes with attention over the encoder outputs:
# ``coeff = torch.softmax(torch.matmul(enc, torch.transpose(out, 1, 2)), dim=1)`` (scores
# (keys, queries), normalised over the keys), then ``torch.matmul(torch.transpose(enc, 1, 2),
# coeff)``.  The ranks are not stated (an RNN's output, a parameter), so ``dim=1`` stayed a dim
# from the front.  The probabilities are the *second* operand of the product, whose axis -2 it
# contracts: the normalised axis only at rank 3 (d + 2), which is now read as the rank the code
# means, recorded as assumed (the fix declines: the rank is not checked at run time).  As the
# first operand (``coeff @ v`` contracts the last axis) a softmax over dim 1 is as likely the
# queries' axis of 3-D scores: still not read.
#
# The method is ``decode``, called by ``forward_pass``, called by ``forward_loss``; neither caller
# runs a layer of the module, so both were dropped as roots no forward reaches, and ``decode``
# -- itself an entry point (public, runs the module's layers) -- was inlined nowhere.  A
# reachable function that only dropped roots call is now a root of its own.

KEYS_FIRST = '''\
import torch
from torch import nn


class Lemmatizer(nn.Module):
    def __init__(self, dim=8, vocab=11):
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.rnn = nn.GRU(dim, dim, batch_first=True)
        self.out = nn.Linear(2 * dim, vocab)

    def forward(self, tokens):
        return self.embed(tokens)

    def forward_loss(self, tokens, enc, h0):
        return self.forward_pass(tokens, enc, h0).sum()

    def forward_pass(self, tokens, enc, h0):
        return self.decode(tokens, enc, h0)

    def decode(self, tokens, enc, h0):
        output, hidden = self.rnn(self.embed(tokens), h0)
        coeff = torch.softmax(torch.matmul(enc, torch.transpose(output, 1, 2)), dim=DIM)  # site
        context = PRODUCT
        return self.out(torch.cat((output, context), dim=2))
'''

SECOND = "torch.transpose(torch.matmul(torch.transpose(enc, 1, 2), coeff), 1, 2)"
FIRST = "torch.matmul(coeff, output)"


def _keys_first(dim="1", product=SECOND):
    return KEYS_FIRST.replace("DIM", dim).replace("PRODUCT", product)


def test_keys_first_probabilities_as_the_second_operand_are_attention():
    assert finding_at(_keys_first(), "ADP010", "# site") is not None


def test_keys_first_with_an_assumed_rank_is_fixed_only_at_that_rank():
    # (rafix28: declined before; now the fused call is taken only where q, k and v have the rank
    # the products read, checked at run time -- tests/test_rafix28_forms.py checks the numbers)
    fixed = fix_text(_keys_first(), "model.py", rules("ADP010")).text
    assert "if output.dim() != 3 or enc.dim() != 3:" in fixed
    assert "scaled_dot_product_attention(output, enc, enc, scale=1.0)" in fixed


def test_probabilities_as_the_first_operand_with_a_dim_from_the_front_stay_unread():
    assert finding_at(_keys_first(product=FIRST), "ADP010", "# site") is None


def test_keys_first_over_the_last_axis_is_no_attention():
    # softmax over dim -1 of (keys, queries) scores, the product contracting the keys: not attention
    assert finding_at(_keys_first(dim="-1"), "ADP010", "# site") is None


def test_an_entry_point_only_dropped_roots_call_is_a_root():
    import ast

    from adopter.structure import module_structure

    code = _keys_first()
    structure = module_structure(ast.parse(code), text=code)
    assert "decode" in structure.classes["Lemmatizer"].roots
    assert "forward_loss" not in structure.classes["Lemmatizer"].roots


def test_a_helper_of_a_kept_root_is_no_root_of_its_own():
    import ast

    from adopter.structure import module_structure

    code = _keys_first().replace("return self.embed(tokens)", "return self.forward_pass(tokens, tokens, tokens)")
    structure = module_structure(ast.parse(code), text=code)
    assert structure.classes["Lemmatizer"].roots == ["forward"]
    # (decode is inlined in forward through forward_pass: found there, once)
    assert finding_at(code, "ADP010", "# site") is not None


# ---------------------------------------------------------------- partial(F.softmax, dim=-1)
#
# Research attention often holds its normaliser as a value: ``self.attn_fn = partial(F.softmax,
# dim=-1)``, then ``attn = self.attn_fn(sim)`` (mega-pytorch, lucidrains' code).  Functions held as
# values were typed only for run-time activations, so the call was unknown.  A partial of a torch
# softmax that binds ``dim`` is that softmax; the fix reads no forward hooks of it (a partial has
# none).  A choice between the partial and another module (mega's ``partial(F.softmax, dim=-1)
# if not laplacian_attn_fn else LaplacianAttnFn()``) is the softmax while the attribute holds the
# partial: found, and the fix takes the fused path only then (``isinstance(self.attn_fn,
# partial)``; scripted, the original).  Near-misses: a partial without ``dim`` (softmax's
# implicit dim is the first axis of 3-D input) and ``dim=1`` of 3-D scores (the queries' axis).
# Beside a function held as a value (``torch.sigmoid``) the guard is the same.

PARTIAL = '''\
from functools import partial

import torch
import torch.nn.functional as F
from torch import einsum, nn


class Laplace(nn.Module):
    def forward(self, x):
        return (1 + torch.special.erf((x - 0.5) / 0.4)) * 0.5


class Attention(nn.Module):
    def __init__(self, dim=16, laplace=False):
        super().__init__()
        self.scale = dim ** -0.5
        self.attn_fn = CHOICE
        self.to_q = nn.Linear(dim, dim)
        self.to_k = nn.Linear(dim, dim)
        self.to_v = nn.Linear(dim, dim)

    def forward(self, x):
        q, k, v = self.to_q(x), self.to_k(x), self.to_v(x)
        sim = einsum("b i d, b j d -> b i j", q, k) * self.scale
        attn = self.attn_fn(sim)  # site
        return einsum("b i j, b j d -> b i d", attn, v)
'''


@pytest.mark.parametrize("choice", ["partial(F.softmax, dim=-1)", "partial(torch.softmax, dim=-1, dtype=torch.float32)"])
def test_a_partial_softmax_held_as_a_value_is_attention(choice):
    assert finding_at(PARTIAL.replace("CHOICE", choice), "ADP010", "# site") is not None


@pytest.mark.parametrize("choice", ["partial(F.softmax)", "partial(F.softmax, dim=1)"],
                         ids=["no_dim", "queries_axis"])
def test_partial_softmax_near_misses(choice):
    assert finding_at(PARTIAL.replace("CHOICE", choice), "ADP010", "# site") is None


def test_a_partial_softmax_fix_matches():
    import torch

    code = PARTIAL.replace("CHOICE", "partial(F.softmax, dim=-1)")
    fixed = fix_text(code, "model.py", rules("ADP010")).text
    assert "scaled_dot_product_attention(" in fixed and "_forward_hooks" not in fixed
    a, b = float64_pair(code, fixed, "Attention")
    x = torch.randn(2, 5, 16, dtype=torch.float64)
    # float64, 16-wide dot products and 5-key softmax sums: agreement to rounding
    torch.testing.assert_close(b(x), a(x), rtol=0, atol=1e-12)


CHOSEN = "partial(F.softmax, dim=-1) if not laplace else Laplace()"
SIGMOID = "partial(F.softmax, dim=-1) if not laplace else torch.sigmoid"


@pytest.mark.parametrize("choice", [CHOSEN, SIGMOID], ids=["module", "function"])
def test_a_partial_softmax_chosen_beside_another_value_is_attention(choice):
    assert finding_at(PARTIAL.replace("CHOICE", choice), "ADP010", "# site") is not None


@pytest.mark.parametrize("choice", [CHOSEN, SIGMOID], ids=["module", "function"])
@pytest.mark.parametrize("laplace", [False, True])
def test_a_partial_softmax_chosen_beside_another_value_fix_matches(laplace, choice):
    import torch

    code = PARTIAL.replace("CHOICE", choice)
    fixed = fix_text(code, "model.py", rules("ADP010")).text
    assert "scaled_dot_product_attention(" in fixed and "isinstance(self.attn_fn, partial)" in fixed
    a, b = float64_pair(code, fixed, "Attention", laplace=laplace)
    x = torch.randn(2, 5, 16, dtype=torch.float64)
    # float64, 16-wide dot products and 5-key sums: agreement to rounding (the Laplace choice
    # takes the original path: equal)
    torch.testing.assert_close(b(x), a(x), rtol=0, atol=1e-12)
