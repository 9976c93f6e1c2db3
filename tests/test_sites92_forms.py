"""Attention forms the research corpus left unfound (sites92, session 47), read by what they
compute.  The fixtures are ours.

- An einsum equation written as an f-string over a local that holds one of two literals (keys
  and values per head, or one head shared by all): ``kv = "b j d" if shared else "b h j d"``,
  ``einsum(f"b h i d, {kv} -> b h i j", q, k)``.  The engine reads the choice whose operands
  carry every batch axis (structure/written_equations.py); the fixer's guard compares the
  f-string's value with that equation, so the other choice runs the original code.
  Near-misses: an f-string over a parameter (any string a caller passes), a choice between two
  equations neither of which is a product of q and k.
"""

from __future__ import annotations

import torch
from corpus_forms import edit, found, sdpa_fixed

CHOSEN = """\
import torch
from torch import einsum, nn


def cosine_attention(q, k, v, scale=8, causal=False):
    shared = k.ndim == 3
    q = q / q.norm(dim=-1, keepdim=True)
    k = k / k.norm(dim=-1, keepdim=True)
    kv_eq = 'b j d' if shared else 'b h j d'
    sim = einsum(f'b h i d, {kv_eq} -> b h i j', q, k)
    sim = sim * scale
    if causal:
        i, j = sim.shape[-2:]
        causal_mask = torch.ones((i, j), device=q.device, dtype=torch.bool).triu(j - i + 1)
        sim = sim.masked_fill(causal_mask, -torch.finfo(sim.dtype).max)
    attn = sim.softmax(dim=-1)
    return einsum(f'b h i j, {kv_eq} -> b h i d', attn, v)


class Block(nn.Module):
    def __init__(self, dim, heads, shared=False):
        super().__init__()
        self.heads, self.shared = heads, shared
        self.to_q = nn.Linear(dim, dim)
        kv = dim // heads if shared else dim
        self.to_k = nn.Linear(dim, kv)
        self.to_v = nn.Linear(dim, kv)

    def forward(self, x, causal=True):
        b, n, _ = x.shape
        q = self.to_q(x).view(b, n, self.heads, -1).transpose(1, 2)
        k, v = self.to_k(x), self.to_v(x)
        if not self.shared:
            k = k.view(b, n, self.heads, -1).transpose(1, 2)
            v = v.view(b, n, self.heads, -1).transpose(1, 2)
        return cosine_attention(q, k, v, scale=8, causal=causal)
"""


def _run(source: str, shared: bool, counted: list | None):
    namespace: dict = {}
    exec(compile(source, "fixture.py", "exec"), namespace)  # noqa: S102 (our own fixture)
    if counted is not None:
        inner = namespace["scaled_dot_product_attention"]
        namespace["scaled_dot_product_attention"] = lambda *a, **kw: counted.append(1) or inner(*a, **kw)
    torch.manual_seed(0)
    block = namespace["Block"](16, 4, shared=shared).double()
    results = []
    for training in (True, False):
        block.train(training)
        for causal in (True, False):
            torch.manual_seed(1)
            x = torch.randn(2, 6, 16, dtype=torch.float64, requires_grad=True)
            out = block(x, causal=causal)
            (grad,) = torch.autograd.grad(out.square().sum(), x)
            results.append((out.detach(), grad))
    return results


def test_an_fstring_equation_over_a_chosen_literal_is_an_attention():
    assert found(CHOSEN, "ADP010")


def test_the_fix_computes_the_same_values_and_gradients_and_sends_the_other_choice_back():
    fixed = sdpa_fixed(CHOSEN)
    assert "scaled_dot_product_attention" in fixed
    for shared in (False, True):
        calls: list = []
        want = _run(CHOSEN, shared, None)
        got = _run(fixed, shared, calls)
        for (out_a, grad_a), (out_b, grad_b) in zip(want, got):
            # float64, 4-wide heads over 6 keys: a few ulps apart at most
            torch.testing.assert_close(out_b, out_a, rtol=1e-12, atol=1e-12)
            torch.testing.assert_close(grad_b, grad_a, rtol=1e-12, atol=1e-12)
        # per-head keys take the fused path; one shared key head the original einsums
        assert bool(calls) is (not shared)


def test_an_fstring_over_a_parameter_is_not_read():
    source = edit(CHOSEN, "def cosine_attention(q, k, v, scale=8, causal=False):",
                  "def cosine_attention(q, k, v, scale=8, causal=False, kv_eq='b h j d'):")
    source = edit(source, "    kv_eq = 'b j d' if shared else 'b h j d'\n", "")
    assert not found(source, "ADP010")


def test_choices_that_are_no_product_of_q_and_k_are_not_read():
    # both choices sum over the heads or keep the feature axis: no q . k^T scores
    source = edit(CHOSEN, "kv_eq = 'b j d' if shared else 'b h j d'", "kv_eq = 'b h d' if shared else 'b h i d'")
    assert not found(source, "ADP010")
