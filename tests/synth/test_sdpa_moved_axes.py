"""ADP010 on einsum attention whose operands or output keep their axes in another order.

An einsum is read by its index algebra (canon.einsum_product): one summed index, one output
index of each factor only (rows, columns), the others batch.  When an operand's axes are not
in the product's order (heads on axis 2, ``"bnhd,bmhd->bhnm"``; a 5-D column attention
``"icnhd,jcnhd->hcnij"``) the product reads it through ``permute``; when the output's are not
(``"bhnm,bmhd->bnhd"``) the product's result is permuted after.  A softmax over scores whose
axes the einsum moved away from (…, queries, keys) is read over the keys only where the value
einsum moves them back and contracts that axis (structure/layouts.py).  Each
module here is written for this test; the fixed module runs beside the original in float64,
forward and backward, counting the fused calls.
"""

from __future__ import annotations

import textwrap

import pytest

torch = pytest.importorskip("torch")

from sdpa_modules import RULES, Counter, load, sdpa_fixed  # noqa: E402

from adopter.engine import analyze  # noqa: E402
from adopter.structure.canon import einsum_product  # noqa: E402

F64 = torch.float64


def _product(equation: str, x, y):
    """The einsum computed the way einsum_product reads it: moves, unsqueezes, a matmul."""
    kind, (i, j), broadcast, moves = einsum_product(equation)
    ops = [x, y]
    for index in (0, 1):
        if moves[index] is not None:
            ops[index] = ops[index].permute(*moves[index])
        for dim in broadcast[index]:
            ops[index] = ops[index].unsqueeze(dim)
    a, b = ops[i], ops[j]
    if kind.startswith("t_"):
        a = a.transpose(-2, -1)
    if kind.endswith("matmul_t"):
        b = b.transpose(-2, -1)
    out = a @ b
    return out.permute(*moves[2]) if moves[2] is not None else out


@pytest.mark.parametrize("equation, shapes", [
    ("bnhd,bmhd->bhnm", ((2, 5, 3, 4), (2, 7, 3, 4))),  # heads on axis 2: q and k moved
    ("bhnm,bmhd->bnhd", ((2, 3, 5, 7), (2, 7, 3, 4))),  # v moved, and the output
    ("icnhd,jcnhd->hcnij", ((5, 2, 3, 2, 4), (5, 2, 3, 2, 4))),  # column attention
    ("hcnij,jcnhd->icnhd", ((2, 2, 3, 5, 5), (5, 2, 3, 2, 4))),
    ("hbid,bjd->bhij", ((3, 2, 5, 4), (2, 7, 4))),  # multi-query with q's batch axes swapped
    ("bhid,bhjd->bhji", ((2, 3, 5, 4), (2, 3, 7, 4))),  # unmoved forms still read as before
    ("bct,bcs->bts", ((2, 4, 5), (2, 4, 6))),
    ("nd,bmd->bnm", ((5, 4), (2, 7, 4))),
])
def test_einsum_product_is_the_einsum(equation, shapes):
    x, y = (torch.randn(*s, dtype=F64) for s in shapes)
    torch.testing.assert_close(_product(equation, x, y), torch.einsum(equation, x, y))


@pytest.mark.parametrize("equation", [
    "bhid,bgjd->bhij",  # g summed over one operand only: a reduction, not a product
    "bhij,hg->bgij",  # talking heads
    "bid,bjd->bi",  # j summed over one operand
    "bhid,bhje->bhij",  # two summed indices? none: d and e are each in one operand only
    "bhid,bhid->bhi",  # no rows or columns: an elementwise product summed
])
def test_einsums_that_are_no_product(equation):
    assert einsum_product(equation) is None


HEADS_ON_AXIS_2 = textwrap.dedent('''
    import torch
    import torch.nn.functional as F
    from torch import nn


    class PooledTextAttention(nn.Module):
        def __init__(self, dim=12, heads=3):
            super().__init__()
            self.heads, self.head_dim = heads, dim // heads
            self.query = nn.Linear(dim, dim)
            self.key = nn.Linear(dim, dim)
            self.value = nn.Linear(dim, dim)
            self.drop = nn.Dropout(0.0)
            self.out = nn.Linear(dim, dim)

        def forward(self, text, image):
            b = text.shape[0]
            q = self.query(text).reshape(b, -1, self.heads, self.head_dim)
            k = self.key(image).reshape(b, -1, self.heads, self.head_dim)
            v = self.value(image).reshape(b, -1, self.heads, self.head_dim)
            weights = torch.einsum("bnhd,bmhd->bhnm", q, k)
            weights = weights / self.head_dim ** 0.5
            weights = F.softmax(weights, dim=-1)
            weights = self.drop(weights)
            mixed = torch.einsum("bhnm,bmhd->bnhd", weights, v)
            return self.out(mixed.reshape(b, -1, self.heads * self.head_dim)) + text
''')

COLUMN_ATTENTION = textwrap.dedent('''
    import torch
    from torch import nn


    class ColumnAttention(nn.Module):
        """Attention down each column of a (rows, cols, batch, dim) grid."""

        def __init__(self, dim=8, heads=2):
            super().__init__()
            self.heads, self.head_dim = heads, dim // heads
            self.scaling = self.head_dim ** -0.5
            self.to_q = nn.Linear(dim, dim)
            self.to_k = nn.Linear(dim, dim)
            self.to_v = nn.Linear(dim, dim)

        def forward(self, x, padding=None):
            rows, cols, batch, dim = x.shape
            q = self.to_q(x).view(rows, cols, batch, self.heads, self.head_dim) * self.scaling
            k = self.to_k(x).view(rows, cols, batch, self.heads, self.head_dim)
            v = self.to_v(x).view(rows, cols, batch, self.heads, self.head_dim)
            scores = torch.einsum("icnhd,jcnhd->hcnij", q, k)
            if padding is not None:
                # padding: (batch, rows), True where a row is padding
                scores = scores.masked_fill(padding[:, None, :], float("-inf"))
            probs = scores.softmax(-1)
            context = torch.einsum("hcnij,jcnhd->icnhd", probs, v)
            return context.reshape(rows, cols, batch, dim)
''')


def _pair(source: str, cls: str):
    original, new = load(source, "orig"), load(sdpa_fixed(source), "new")
    counter = Counter(new)
    torch.manual_seed(0)
    a = original[cls]().to(F64)
    b = new[cls]().to(F64)
    b.load_state_dict(a.state_dict(), strict=True)
    return a, b, counter


def _compare(a, b, inputs, kwargs=None, train=False):
    """Outputs, input and parameter gradients equal in float64 (default float64 tolerances:
    every reduction here is over at most a dozen terms)."""
    a.train(train)
    b.train(train)
    ins_a = [t.clone().requires_grad_(True) for t in inputs]
    ins_b = [t.clone().requires_grad_(True) for t in inputs]
    out_a, out_b = a(*ins_a, **(kwargs or {})), b(*ins_b, **(kwargs or {}))
    torch.testing.assert_close(out_b, out_a)
    weight = torch.randn_like(out_a)
    (weight * out_a).sum().backward()
    (weight * out_b).sum().backward()
    for x, y in zip(ins_a, ins_b):
        torch.testing.assert_close(y.grad, x.grad)
    grads = dict(a.named_parameters())
    for name, param in b.named_parameters():
        torch.testing.assert_close(param.grad, grads[name].grad)


@pytest.mark.parametrize("train", [False, True])
def test_heads_on_axis_2_einsums(train):
    patched = " ".join(sdpa_fixed(HEADS_ON_AXIS_2).split())
    # (the einsums stay only on the path kept for forward hooks on the dropout module)
    assert patched.count("einsum") == 2 and "else: mixed = scaled_dot_product_attention(" in patched
    assert "q.permute(0, 2, 1, 3), k.permute(0, 2, 1, 3), v.permute(0, 2, 1, 3)" in patched
    assert ").permute(0, 2, 1, 3)" in patched  # the context back to (b, n, heads, d)
    a, b, counter = _pair(HEADS_ON_AXIS_2, "PooledTextAttention")
    _compare(a, b, [torch.randn(2, 5, 12, dtype=F64), torch.randn(2, 7, 12, dtype=F64)], train=train)
    assert counter.calls == 1


@pytest.mark.parametrize("padded", [False, True])
def test_five_dimensional_column_attention(padded):
    patched = sdpa_fixed(COLUMN_ATTENTION)
    assert "einsum" not in patched
    a, b, counter = _pair(COLUMN_ATTENTION, "ColumnAttention")
    kwargs = {}
    if padded:  # the last row of the second batch item is padding (never a whole column)
        padding = torch.zeros(2, 5, dtype=torch.bool)
        padding[1, -1] = True
        kwargs["padding"] = padding
    _compare(a, b, [torch.randn(5, 3, 2, 8, dtype=F64)], kwargs)
    assert counter.calls == 1


@pytest.mark.parametrize("train", [False, True])
def test_a_softmax_over_the_keys_of_scores_the_einsum_wrote_moved(train):
    # the scores come out (b, n, heads, m): a softmax over -1 is over the keys, and the value
    # einsum moves the probabilities back to the product's (..., queries, keys) order before it
    # contracts m: attention in another layout (structure/layouts.py; session 25 attnlayout --
    # until then this spelling was asserted unread).  Fixed with q, k, v and the context moved.
    source = HEADS_ON_AXIS_2.replace('"bnhd,bmhd->bhnm"', '"bnhd,bmhd->bnhm"').replace(
        '"bhnm,bmhd->bnhd"', '"bnhm,bmhd->bnhd"')
    assert [f.line for f in analyze(source, "attention.py", RULES).findings if f.rule == "ADP010"]
    a, b, counter = _pair(source, "PooledTextAttention")
    _compare(a, b, [torch.randn(2, 5, 12, dtype=F64), torch.randn(2, 7, 12, dtype=F64)], train=train)
    assert counter.calls == 1


def test_a_softmax_over_the_queries_of_moved_scores_is_not_attention():
    source = HEADS_ON_AXIS_2.replace("F.softmax(weights, dim=-1)", "F.softmax(weights, dim=-2)")
    assert analyze(source, "attention.py", RULES).findings == []
    # the same over the queries (dim 1) of the scores written (b, n, heads, m)
    source = HEADS_ON_AXIS_2.replace('"bnhd,bmhd->bhnm"', '"bnhd,bmhd->bnhm"').replace(
        '"bhnm,bmhd->bnhd"', '"bnhm,bmhd->bnhd"').replace("F.softmax(weights, dim=-1)", "F.softmax(weights, dim=1)")
    assert analyze(source, "attention.py", RULES).findings == []
