"""Attention sites of the dev corpus the engine did not find (misses37), read by their
computation.  The fixtures are ours.

- ADP010: a value product whose probabilities carry a batch axis the values lack (RETRO's
  cross attention, ``einsum("bcnhij,bcjhd->bcnihd", attn, v)``: one chunk's keys and values
  shared by every neighbour ``n``).  ``canon.einsum_product`` read a product with three lone
  output indices only when the output ended with the matrix axes; an index of one operand only
  that is not its matrix axis is a batch axis the other operand is broadcast over, wherever the
  output puts it.  Exact: fixed as SDPA with the keys and values unsqueezed over that axis.
"""

from __future__ import annotations

import textwrap

from corpus_forms import covered, float64_pair, rules

from adopter.synth import fix_text

# ---------------------------------------------------------------- ADP010: values broadcast over a batch axis

SHARED = textwrap.dedent("""\
    import torch
    from torch import nn


    class SharedKeys(nn.Module):
        def __init__(self, d_model=16, n_heads=2, d_k=8):
            super().__init__()
            self.n_heads = n_heads
            self.d_k = d_k
            self.scale = d_k ** -0.5
            self.query = nn.Linear(d_model, n_heads * d_k)
            self.key = nn.Linear(d_model, n_heads * d_k)
            self.value = nn.Linear(d_model, n_heads * d_k)
            self.softmax = nn.Softmax(dim=-1)

        def forward(self, e, h):
            q = self.query(e).view(*e.shape[:-1], self.n_heads, self.d_k)
            k = self.key(h).view(*h.shape[:-1], self.n_heads, self.d_k)
            v = self.value(h).view(*h.shape[:-1], self.n_heads, self.d_k)
            attn = torch.einsum('bcnihd,bcjhd->bcnhij', q, k)
            attn = attn * self.scale
            attn = self.softmax(attn)
            e = torch.einsum("bcnhij,bcjhd->bcnihd", attn, v)  # shared
            return e.reshape(*e.shape[:-2], -1)


    class QueryAxis(nn.Module):
        def __init__(self):
            super().__init__()
            self.softmax = nn.Softmax(dim=-2)

        def forward(self, q, k, v):
            attn = torch.einsum('bcnihd,bcjhd->bcnhij', q, k)
            attn = self.softmax(attn)
            return torch.einsum("bcnhij,bcjhd->bcnihd", attn, v)  # query axis


    class ContractsQueries(nn.Module):
        def forward(self, q, k, v):
            attn = torch.einsum('bcnihd,bcjhd->bcnhij', q, k)
            attn = attn.softmax(dim=-1)
            return torch.einsum("bcnhij,bcihd->bcnjhd", attn, v)  # contracts queries
""")


def test_values_broadcast_over_a_batch_axis_found():
    assert covered(SHARED, "# shared", "ADP010")


def test_softmax_over_the_query_axis_not_found():
    assert not covered(SHARED, "# query axis", "ADP010")


def test_value_product_over_the_query_axis_not_found():
    assert not covered(SHARED, "# contracts queries", "ADP010")


def test_values_broadcast_fixed_exactly():
    import torch

    result = fix_text(SHARED, "model.py", rules("ADP010"))
    assert result.text.count("scaled_dot_product_attention(") == 1
    a, b = float64_pair(SHARED, result.text, "SharedKeys")
    torch.manual_seed(1)
    e = torch.randn(2, 3, 4, 5, 16, dtype=torch.float64, requires_grad=True)
    h = torch.randn(2, 3, 7, 16, dtype=torch.float64)
    ya, yb = a(e, h), b(e, h)
    torch.testing.assert_close(yb, ya)
    ga, = torch.autograd.grad(ya.sum(), e)
    gb, = torch.autograd.grad(yb.sum(), e)
    torch.testing.assert_close(gb, ga)
