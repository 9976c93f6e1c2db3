"""ADP010 where the if that applies the padding mask also prepares it in more than plain
assignments: a nested ``if`` (pad the mask for a learned null key) and a ``del mask`` after
the fill, and a later causal branch that binds ``mask`` anew.  The fused path builds the mask
under the same test (the nested if included), leaves ``mask`` bound (nothing reads it before
the causal branch rebinds it) and sends the causal branch to the original.  The module is
written for this test; the fixed one runs beside the original in float64, forward and
backward, counting the fused calls.
"""

from __future__ import annotations

import textwrap

import pytest

torch = pytest.importorskip("torch")

from sdpa_modules import RULES, Counter, load, sdpa_fixed  # noqa: E402

from adopter.synth import fix_text  # noqa: E402

F64 = torch.float64

NULL_KEY = textwrap.dedent('''
    import torch
    import torch.nn.functional as F
    from torch import nn


    class NullKeyAttention(nn.Module):
        def __init__(self, dim=8, heads=2, null_key=True):
            super().__init__()
            self.heads, self.head_dim = heads, dim // heads
            self.scale = self.head_dim ** -0.5
            self.to_qkv = nn.Linear(dim, 3 * dim)
            self.null_kv = nn.Parameter(torch.randn(2, heads, 1, dim // heads)) if null_key else None

        def forward(self, x, mask=None, causal=False):
            b, n, _ = x.shape
            q, k, v = self.to_qkv(x).view(b, n, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
            if self.null_kv is not None:
                nk, nv = (t.expand(b, -1, -1, -1) for t in self.null_kv)
                k = torch.cat((nk, k), dim=-2)
                v = torch.cat((nv, v), dim=-2)
            q = q * self.scale
            sim = torch.einsum("b h i d, b h j d -> b h i j", q, k)
            mask_value = -torch.finfo(sim.dtype).max
            if mask is not None:
                if self.null_kv is not None:
                    mask = F.pad(mask, (1, 0), value=True)
                mask = mask[:, None, None, :]
                sim = sim.masked_fill(~mask, mask_value)
                del mask
            if causal:
                i, j = sim.shape[-2:]
                mask = torch.ones(i, j, dtype=torch.bool).triu(j - i + 1)
                sim = sim.masked_fill(mask, mask_value)
            attn = sim.softmax(dim=-1)
            out = torch.einsum("b h i j, b h j d -> b h i d", attn, v)
            return out.transpose(1, 2).reshape(b, n, -1)
''')


def _pair(null_key: bool):
    original, new = load(NULL_KEY, "orig"), load(sdpa_fixed(NULL_KEY), "new")
    counter = Counter(new)
    torch.manual_seed(0)
    a = original["NullKeyAttention"](null_key=null_key).to(F64)
    b = new["NullKeyAttention"](null_key=null_key).to(F64)
    b.load_state_dict(a.state_dict(), strict=True)
    return a, b, counter


def test_the_fused_path_builds_the_mask_under_the_same_tests():
    patched = " ".join(sdpa_fixed(NULL_KEY).split("else:", 1)[-1].split())
    assert "if mask is not None: if self.null_kv is not None: mask = F.pad(mask, (1, 0), value=True)" in patched
    assert "del mask" not in patched.split("scaled_dot_product_attention(")[0]


@pytest.mark.parametrize("null_key", [False, True])
@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("causal", [False, True])
def test_null_key_attention_matches(null_key, masked, causal):
    a, b, counter = _pair(null_key)
    x = torch.randn(2, 5, 8, dtype=F64)
    kwargs = {"causal": causal}
    if masked:
        keep = torch.ones(2, 5, dtype=torch.bool)
        keep[1, -2:] = False  # every row keeps some key
        kwargs["mask"] = keep
    xa, xb = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    out_a, out_b = a(xa, **kwargs), b(xb, **kwargs)
    # float64, reductions over at most 6 keys: the default float64 tolerances
    torch.testing.assert_close(out_b, out_a)
    weight = torch.randn_like(out_a)
    (weight * out_a).sum().backward()
    (weight * out_b).sum().backward()
    torch.testing.assert_close(xb.grad, xa.grad)
    grads = dict(a.named_parameters())
    for name, param in b.named_parameters():
        torch.testing.assert_close(param.grad, grads[name].grad)
    assert counter.calls == (0 if causal else 1)


def test_a_deleted_mask_read_later_blocks_the_fix():
    # `mask` read after the if without being bound again: deleting it matters (a NameError
    # in the original), so the fused path may not leave it bound
    source = NULL_KEY.replace("        attn = sim.softmax(dim=-1)\n",
                              "        attn = sim.softmax(dim=-1)\n        assert mask is None or mask.any()\n")
    assert source != NULL_KEY
    result = fix_text(source, "attention.py", RULES)
    assert not result.applied and "does more than an attention step" in result.skipped[0][1]


# The probabilities computed in float32 and cast back to the dtype of the scores, which an
# added bias of another dtype would have widened: the fused path is taken when the bias has
# q's dtype (the guard reads it), the original otherwise.
BIAS_CAST_BACK = textwrap.dedent('''
    import torch
    from torch import nn, einsum


    class BiasedAttention(nn.Module):
        def __init__(self, dim=8, heads=2):
            super().__init__()
            self.heads, self.head_dim = heads, dim // heads
            self.scale = self.head_dim ** -0.5
            self.to_q = nn.Linear(dim, dim, bias=False)
            self.to_kv = nn.Linear(dim, 2 * (dim // heads), bias=False)

        def forward(self, x, attn_bias=None):
            b, n, _ = x.shape
            q = self.to_q(x).view(b, n, self.heads, self.head_dim).transpose(1, 2)
            k, v = self.to_kv(x).chunk(2, dim=-1)
            sim = einsum("b h i d, b j d -> b h i j", q, k) * self.scale
            if attn_bias is not None:
                sim = sim + attn_bias
            attn = sim.softmax(dim=-1, dtype=torch.float32)
            attn = attn.to(sim.dtype)
            out = einsum("b h i j, b j d -> b h i d", attn, v)
            return out.transpose(1, 2).reshape(b, n, -1)
''')


@pytest.mark.parametrize("bias_dtype", [None, F64, torch.float32])
def test_probabilities_cast_back_to_scores_a_bias_may_widen(bias_dtype):
    patched = " ".join(sdpa_fixed(BIAS_CAST_BACK).split())
    assert 'attn_bias is not None and getattr(attn_bias, "dtype", q.dtype) != q.dtype' in patched
    original, new = load(BIAS_CAST_BACK, "orig"), load(sdpa_fixed(BIAS_CAST_BACK), "new")
    counter = Counter(new)
    torch.manual_seed(0)
    a = original["BiasedAttention"]().to(F64)
    b = new["BiasedAttention"]().to(F64)
    b.load_state_dict(a.state_dict(), strict=True)
    x = torch.randn(2, 5, 8, dtype=F64)
    kwargs = {} if bias_dtype is None else {"attn_bias": torch.randn(2, 5, 5, dtype=bias_dtype)}
    xa, xb = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    out_a, out_b = a(xa, **kwargs), b(xb, **kwargs)
    # the original's softmax runs in float32 whatever the input: float32's tolerances
    torch.testing.assert_close(out_b, out_a, rtol=1.3e-6, atol=1e-5)
    weight = torch.randn_like(out_a)
    (weight * out_a).sum().backward()
    (weight * out_b).sum().backward()
    torch.testing.assert_close(xb.grad, xa.grad, rtol=1.3e-6, atol=1e-5)
    # a float32 bias on float64 scores: not q's dtype, the original runs
    assert counter.calls == (0 if bias_dtype == torch.float32 else 1)
