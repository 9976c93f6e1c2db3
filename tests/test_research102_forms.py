"""A form found missing in the blind batch research102 (efficient / variant attention research
code; the miss is flash-cosine-sim-attention's test transformer).  The fixtures are ours.

- A module-level attention function that a module's ``__init__`` stores, uncalled, in an
  attribute (``self.attn_fn = attend``, under an ``if`` that picks among kernels) and whose
  forward calls the attribute (``self.attn_fn(q, k, v, causal=True)``): the call runs the
  function, so its code is live in the model and its softmax attention is a site.  The file
  defines a forward, and the function was dropped as code no forward reaches (a mention in
  ``__init__`` made it a helper, not the file's API).
Near-misses: the attribute stored but never called (the function stays unreached, as before);
the function handed to a call in ``__init__`` (``partial(attend, ...)``: not stored as it is);
an attention function whose probabilities are renormalised after the softmax (still no site).
"""

from __future__ import annotations

import pytest
from corpus_forms import finding_at, float64_pair, found, rules

from adopter.synth import fix_text

STORED = """\
import torch
from functools import partial
from torch import nn, einsum


def attend(q, k, v, **kwargs):
    q = q * (q.shape[-1] ** -0.5)
    sim = einsum('b h i d, b h j d -> b h i j', q, k)
    i, j = sim.shape[-2:]
    causal_mask = torch.ones((i, j), dtype=torch.bool, device=q.device).triu(j - i + 1)
    sim = sim.masked_fill(causal_mask, -torch.finfo(sim.dtype).max)
    attn = sim.softmax(dim=-1)  # site
    return einsum('b h i j, b h j d -> b h i d', attn, v)


def other_kernel(q, k, v, **kwargs):
    return v


class Attention(nn.Module):
    def __init__(self, dim=8, heads=2, plain=True):
        super().__init__()
        self.heads = heads
        STORE
        self.to_q = nn.Linear(dim, dim, bias=False)
        self.to_k = nn.Linear(dim, dim, bias=False)
        self.to_v = nn.Linear(dim, dim, bias=False)

    def forward(self, x):
        b, n, d = x.shape
        q, k, v = (t.view(b, n, self.heads, -1).transpose(1, 2) for t in (self.to_q(x), self.to_k(x), self.to_v(x)))
        o = CALL
        return o.transpose(1, 2).reshape(b, n, d)
"""

UNDER_IF = """if plain:
            self.attn_fn = attend
        else:
            self.attn_fn = other_kernel"""
CALLED = "self.attn_fn(q, k, v, causal=True, scale=8)"


def _code(store: str = UNDER_IF, call: str = CALLED) -> str:
    return STORED.replace("STORE", store).replace("CALL", call)


@pytest.mark.parametrize("store", [
    UNDER_IF,
    "self.attn_fn = attend",
    "self.attn_fn = attend if plain else other_kernel",
])
def test_a_module_function_stored_in_an_attribute_and_called_through_it_is_a_site(store):
    assert finding_at(_code(store), "ADP010", "# site") is not None


def test_the_stored_function_is_fixed_and_computes_the_same():
    torch = pytest.importorskip("torch")
    source = _code()
    result = fix_text(source, "model.py", rules("ADP010"))
    assert "scaled_dot_product_attention(" in result.text, result.skipped
    a, b = float64_pair(source, result.text, "Attention")
    x = torch.randn(2, 5, 8, dtype=torch.float64)
    # float64, a softmax over 5 keys and 4-wide heads: agreement to rounding
    torch.testing.assert_close(b(x), a(x), rtol=1e-10, atol=1e-12)


def test_a_stored_attribute_no_reached_method_calls_leaves_the_function_unreached():
    code = _code(call="v")
    assert found(code, "ADP010") == []


def test_a_function_handed_to_a_call_in_init_is_not_stored():
    code = _code(store="self.attn_fn = partial(attend, causal=True)")
    assert found(code, "ADP010") == []


def test_a_stored_function_that_renormalises_after_the_softmax_is_no_site():
    code = _code().replace("    attn = sim.softmax(dim=-1)  # site\n",
                           "    attn = sim.softmax(dim=-1)  # site\n    attn = attn / (attn.sum(-1, keepdim=True) + 1e-6)\n")
    assert found(code, "ADP010") == []


# fast-weight-attention's chunk step: the probabilities are read again only past two early
# returns; the nearer one tests a value sliced after the attention began (``tokens``), the
# earlier one a flag.  The reads need the flag's test to fail, so the flag guards the patch.
TWO_RETURNS = """\
import torch
from torch import nn


class Chunk(nn.Module):
    def __init__(self, dim=8):
        super().__init__()
        self.to_qkv = nn.Linear(dim, dim * 3, bias=False)

    def forward(self, tokens, return_next=False):
        q, k, v = self.to_qkv(tokens).chunk(3, dim=-1)
        score = (q @ k.transpose(-1, -2)) * q.shape[-1] ** -0.5
        attn = score.softmax(dim=-1)  # site
        out = attn @ v
        if not return_next:
            return out
        tokens = tokens[..., :-1, :]
        if TEST:
            return out
        return out, attn[..., :-1, :-1].sum(-1)
"""


def test_a_later_early_return_on_a_value_changed_after_the_attention_is_passed_over_for_the_flag():
    torch = pytest.importorskip("torch")
    source = TWO_RETURNS.replace("TEST", "tokens.shape[-2] == 0")
    result = fix_text(source, "model.py", rules("ADP010"))
    assert "scaled_dot_product_attention(" in result.text, result.skipped
    assert "if return_next" in result.text
    a, b = float64_pair(source, result.text, "Chunk")
    x = torch.randn(2, 5, 8, dtype=torch.float64)
    # float64, softmax over 5 keys: agreement to rounding, on the fused path and the kept one
    torch.testing.assert_close(b(x), a(x), rtol=1e-10, atol=1e-12)
    for got, want in zip(b(x, return_next=True), a(x, return_next=True)):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)


def test_early_returns_that_all_test_changed_values_still_decline():
    source = TWO_RETURNS.replace("        if not return_next:\n            return out\n", "") \
        .replace("TEST", "tokens.shape[-2] == 0")
    result = fix_text(source, "model.py", rules("ADP010"))
    assert "scaled_dot_product_attention(" not in result.text
