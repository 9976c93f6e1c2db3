"""ADP010 where a finite fill's mask has more (or longer) axes than the scores: bert-pytorch's
attention called with a 3-D query and a 4-D mask.  ``scores.masked_fill(mask == 0, -1e9)``
broadcasts the scores (and so the output) to the mask's axes; the fused call cannot (its mask
must broadcast to q and k's product) and raised.  The guard now sends such calls to the
original: the mask, as read before the attention, broadcast with the product's shape must be
that shape.  Checked in float64 against the original, eval and training, forward and backward,
counting the fused calls; where the product's shape is not q's and k's as written (an einsum
broadcasting k over q's heads) the patch is as before, with no such term."""

from __future__ import annotations

import textwrap

import pytest

torch = pytest.importorskip("torch")

from sdpa_modules import Counter, assert_same_step, load, sdpa_fixed  # noqa: E402

F64 = torch.float64

FILLED = textwrap.dedent('''
    import math

    import torch
    from torch import nn


    class Scaled(nn.Module):
        def forward(self, query, key, value, mask=None):
            scores = torch.matmul(query, key.transpose(-2, -1)) / math.sqrt(query.size(-1))
            if mask is not None:
                scores = scores.masked_fill(mask == 0, -1e9)
            weights = torch.softmax(scores, dim=-1)
            return torch.matmul(weights, value)
''')

# k and v shared by every head (multi-query): the einsum broadcasts k over q's head axis
MULTI_QUERY = textwrap.dedent('''
    import torch
    from torch import nn


    class MultiQuery(nn.Module):
        def forward(self, q, k, v, mask=None):
            sim = torch.einsum("b h i d, b j d -> b h i j", q, k) * q.shape[-1] ** -0.5
            if mask is not None:
                sim = sim.masked_fill(mask == 0, -1e9)
            attn = sim.softmax(dim=-1)
            return torch.einsum("b h i j, b j d -> b h i d", attn, v)
''')


def _guard(fixed: str) -> str:
    """The guard's text, one line ("" where the patch has no parenthesised guard)."""
    return " ".join(fixed.split("if (")[1].split("):")[0].split()) if "if (" in fixed else ""


def test_the_guard_compares_the_mask_with_the_products_shape():
    guard = _guard(sdpa_fixed(FILLED))
    assert "torch.broadcast_shapes((mask == 0).shape," in guard
    assert "query.shape[:-2], key.shape[:-2]" in guard


def _mask(shape, hidden_key=None):
    mask = torch.ones(*shape, dtype=torch.long)
    if hidden_key is not None:
        mask[..., hidden_key] = 0
    return mask


# (q's shape, k's shape, mask's shape or None, whether the fused call takes it)
CASES = [
    ((2, 2, 5, 4), (2, 2, 7, 4), (2, 1, 1, 7), True),    # a padding mask over the heads: fused
    ((2, 5, 4), (2, 7, 4), (2, 5, 7), True),             # same rank and axes: fused
    ((2, 5, 4), (2, 7, 4), None, True),                  # no mask: fused
    ((2, 5, 4), (2, 7, 4), (2, 1, 1, 7), False),         # bert-pytorch's verify: 4-D mask, 3-D q
    ((1, 5, 4), (1, 7, 4), (3, 5, 7), False),            # same rank, a longer batch axis
    ((2, 2, 5, 4), (2, 2, 7, 4), (3, 2, 2, 5, 7), False),  # one more axis in front
]


@pytest.mark.parametrize("q_shape,k_shape,mask_shape,fused", CASES)
def test_the_rewrite_computes_what_the_original_does(q_shape, k_shape, mask_shape, fused):
    fixed = sdpa_fixed(FILLED)
    original, patched = load(FILLED, "original"), load(fixed, "patched")
    counter = Counter(patched)
    a, b = original["Scaled"](), patched["Scaled"]()
    torch.manual_seed(0)
    q = torch.randn(*q_shape, dtype=F64)
    k, v = torch.randn(*k_shape, dtype=F64), torch.randn(*k_shape, dtype=F64)
    kwargs = {} if mask_shape is None else {"mask": _mask(mask_shape, hidden_key=-1)}
    for training in (False, True):
        a.train(training)
        b.train(training)
        before = counter.calls
        assert_same_step(a, b, [q, k, v], **kwargs)
        assert counter.calls - before == (1 if fused else 0)
    if not fused:
        # the original's output takes the mask's axes
        assert a(q, k, v, **kwargs).dim() == max(q.dim(), len(mask_shape))


def test_no_term_where_the_product_broadcasts_an_operand():
    # near-miss: the product's shape is not q's and k's as written, so the term is not written
    # (the patch is as before this change)
    fixed = sdpa_fixed(MULTI_QUERY)
    assert "broadcast_shapes" not in _guard(fixed)
    original, patched = load(MULTI_QUERY, "original"), load(fixed, "patched")
    a, b = original["MultiQuery"](), patched["MultiQuery"]()
    torch.manual_seed(1)
    q, k, v = torch.randn(2, 3, 5, 4, dtype=F64), torch.randn(2, 7, 4, dtype=F64), torch.randn(2, 7, 4, dtype=F64)
    for training in (False, True):
        a.train(training)
        b.train(training)
        assert_same_step(a, b, [q, k, v], mask=_mask((2, 1, 1, 7), hidden_key=0))


def test_no_term_for_a_fill_in_place():
    # near-miss: `masked_fill_` cannot widen the scores it fills (a wider mask raises there as
    # in the fused call), so the patch is as before this change
    source = FILLED.replace("scores = scores.masked_fill(mask == 0, -1e9)",
                            "scores = scores.masked_fill_(mask == 0, -1e9)")
    assert source != FILLED
    fixed = sdpa_fixed(source)
    assert "broadcast_shapes" not in _guard(fixed)
    original, patched = load(source, "original"), load(fixed, "patched")
    torch.manual_seed(2)
    q, k, v = (torch.randn(2, 2, n, 4, dtype=F64) for n in (5, 7, 7))
    a, b = original["Scaled"](), patched["Scaled"]()
    for training in (False, True):
        a.train(training)
        b.train(training)
        assert_same_step(a, b, [q, k, v], mask=_mask((2, 1, 1, 7), hidden_key=-1))
