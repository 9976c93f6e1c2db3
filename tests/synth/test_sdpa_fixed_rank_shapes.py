"""A check of the mask's shape against the scores' shape counted from the front: ``assert
mask.shape == sim.shape[1:]`` of 3-D scores.  Where the product's code fixes the scores' rank
(an einsum that names every output axis, ``torch.bmm``), ``sim.shape[1:]`` is the last two axes,
(queries, keys), read off q and k on the fused path; where it does not (an einsum with an
ellipsis), the check is kept with the scores' whole shape written from q's and k's.

The modules are written for these tests; each fixed one runs beside the original in float64
(outputs and gradients), the fused call counted, and the check raises on both for a wrong mask.
"""

from __future__ import annotations

import textwrap

import pytest

torch = pytest.importorskip("torch")

from sdpa_modules import RULES, Counter, load, sdpa_fixed

from adopter.synth import fix_text

F64 = torch.float64

FIXED_RANK = textwrap.dedent("""
    import torch
    from torch import nn


    class Plain(nn.Module):
        def __init__(self, dim=8):
            super().__init__()
            self.proj = nn.Linear(dim, 3 * dim, bias=False)
            self.factor = dim ** -0.5

        def forward(self, x, mask=None):
            q, k, v = self.proj(x).chunk(3, dim=-1)
            dots = torch.einsum("b q c, b k c -> b q k", q, k) * self.factor
            if mask is not None:
                assert mask.shape == dots.shape[1:]
                dots = dots.masked_fill(mask, float("-inf"))
            weights = torch.softmax(dots, dim=-1)
            return torch.einsum("b q k, b k c -> b q c", weights, v)
""")


def _pair(source: str):
    original, new = load(source, "orig"), load(sdpa_fixed(source), "new")
    counter = Counter(new)
    torch.manual_seed(0)
    a = original["Plain"]().to(F64)
    b = new["Plain"]().to(F64)
    b.load_state_dict(a.state_dict(), strict=True)
    return a, b, counter


def test_the_check_reads_the_last_two_axes_off_q_and_k():
    fixed = sdpa_fixed(FIXED_RANK)
    assert "assert mask.shape == (q.shape[-2], k.shape[-2])" in fixed
    assert "dots.shape" not in fixed.split("else:")[-1]


@pytest.mark.parametrize("masked", [False, True])
def test_fixed_rank_check_matches(masked):
    a, b, counter = _pair(FIXED_RANK)
    x = torch.randn(2, 5, 8, dtype=F64)
    kwargs = {}
    if masked:
        drop = torch.zeros(5, 5, dtype=torch.bool)
        drop[:, 3:] = True  # every row keeps some key
        kwargs["mask"] = drop
    xa, xb = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    out_a, out_b = a(xa, **kwargs), b(xb, **kwargs)
    torch.testing.assert_close(out_b, out_a)
    weight = torch.randn_like(out_a)
    (weight * out_a).sum().backward()
    (weight * out_b).sum().backward()
    torch.testing.assert_close(xb.grad, xa.grad)
    grads = dict(a.named_parameters())
    for name, param in b.named_parameters():
        torch.testing.assert_close(param.grad, grads[name].grad)
    assert counter.calls == 1


def test_a_wrong_mask_fails_the_check_on_both():
    a, b, _ = _pair(FIXED_RANK)
    x = torch.randn(2, 5, 8, dtype=F64)
    for wrong in (
        torch.zeros(2, 5, 5, dtype=torch.bool),
        torch.zeros(5, 4, dtype=torch.bool),
    ):
        for module in (a, b):
            with pytest.raises(AssertionError):
                module(x, mask=wrong)


def test_bmm_scores_are_three_dimensional():
    source = FIXED_RANK.replace(
        'torch.einsum("b q c, b k c -> b q k", q, k)', "torch.bmm(q, k.transpose(1, 2))"
    )
    assert source != FIXED_RANK
    assert "assert mask.shape == (q.shape[-2], k.shape[-2])" in sdpa_fixed(source)


WHOLE = "(torch.broadcast_shapes(q.shape[:-2], k.shape[:-2]) + (q.shape[-2], k.shape[-2]))"


@pytest.mark.parametrize("einsum, index", [('"... q c, ... k c -> ... q k"', "[1:]"),
                                           ('"b q c, b k c -> b q k"', "[0:]")])
def test_scores_whose_rank_the_code_does_not_fix_check_their_whole_shape(einsum, index):
    # with an ellipsis the operands decide the rank: shape[1:] may hold a batch axis, and a
    # slice from the front that is not the last two axes holds one; the check is kept with the
    # scores' whole shape written from q's and k's (session 18; before, the site was not fixed)
    source = FIXED_RANK.replace('"b q c, b k c -> b q k"', einsum).replace("dots.shape[1:]", f"dots.shape{index}")
    assert source != FIXED_RANK or index == "[1:]"
    fixed = sdpa_fixed(source)
    assert f"assert mask.shape == {WHOLE}{index}" in fixed
    a, b, counter = _pair(source)
    x = torch.randn(2, 5, 8, dtype=F64)
    right = torch.zeros(*((5, 5) if index == "[1:]" else (2, 5, 5)), dtype=torch.bool)
    right[..., 3:] = True  # every row keeps some key
    torch.testing.assert_close(b(x, mask=right), a(x, mask=right))
    torch.testing.assert_close(b(x), a(x))
    assert counter.calls == 2
    wrong = torch.zeros(1, 5, 5, dtype=torch.bool)  # broadcasts, but is not the scores' shape
    for module in (a, b):
        with pytest.raises(AssertionError):
            module(x, mask=wrong)
