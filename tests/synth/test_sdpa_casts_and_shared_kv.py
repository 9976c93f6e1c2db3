"""ADP010 on two research spellings: a float32 softmax cast back to the dtype of the (masked,
scaled) scores, and multi-query attention whose keys and values have no head axis.

Each module is written for this test in the manner of lucidrains-style research code.  The
original and the patched module run side by side in float64 (forward and backward, with and
without masks), counting the calls of scaled_dot_product_attention so that a fallback cannot pass
for the fused path.  Where the patch cannot be proved exact the finding stays, with a reason.
"""

from __future__ import annotations

import textwrap

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("einops")

from sdpa_modules import RULES, Counter, load, sdpa_fixed  # noqa: E402

from adopter.engine import analyze  # noqa: E402
from adopter.synth import fix_text  # noqa: E402

F64 = torch.float64
# The originals compute their softmax in float32 (`dtype=torch.float32`) even for float64
# inputs, so they are only float32-accurate: float32's tolerances (rows of <= 8 keys).
F32_TOLERANCE = {"rtol": 1.3e-6, "atol": 1e-5}

CAST_BACK = textwrap.dedent('''
    import torch
    from torch import nn, einsum
    from einops import rearrange


    class Attention(nn.Module):
        def __init__(self, dim=16, heads=2, dim_head=8, causal=False):
            super().__init__()
            self.heads = heads
            self.causal = causal
            self.scale = dim_head ** -0.5
            self.to_qkv = nn.Linear(dim, heads * dim_head * 3, bias=False)
            self.to_out = nn.Linear(heads * dim_head, dim)

        def forward(self, x, mask=None):
            q, k, v = self.to_qkv(x).chunk(3, dim=-1)
            q, k, v = map(lambda t: rearrange(t, "b n (h d) -> b h n d", h=self.heads), (q, k, v))
            sim = einsum("b h i d, b h j d -> b h i j", q, k) * self.scale
            mask_value = -torch.finfo(sim.dtype).max
            if mask is not None:
                mask = rearrange(mask, "b j -> b 1 1 j")
                sim = sim.masked_fill(~mask, mask_value)
            attn = sim.softmax(dim=-1, dtype=torch.float32)
            attn = attn.type(sim.dtype)
            out = einsum("b h i j, b h j d -> b h i d", attn, v)
            return self.to_out(rearrange(out, "b h n d -> b n (h d)"))
''')


def _pair(source: str, cls: str, **init):
    original, new = load(source, "orig"), load(sdpa_fixed(source), "new")
    counter = Counter(new)
    torch.manual_seed(0)
    a = original[cls](**init).to(F64)
    b = new[cls](**init).to(F64)
    b.load_state_dict(a.state_dict(), strict=True)
    return a, b, counter


def _compare(a, b, inputs, kwargs=None, tolerance=None):
    tolerance = tolerance or {}
    kwargs = kwargs or {}
    ins_a = [t.clone().requires_grad_(True) for t in inputs]
    ins_b = [t.clone().requires_grad_(True) for t in inputs]
    out_a, out_b = a(*ins_a, **kwargs), b(*ins_b, **kwargs)
    torch.testing.assert_close(out_b, out_a, **tolerance)
    weight = torch.randn_like(out_a)
    (weight * out_a).sum().backward()
    (weight * out_b).sum().backward()
    for x, y in zip(ins_a, ins_b):
        torch.testing.assert_close(y.grad, x.grad, **tolerance)
    grads_a = dict(a.named_parameters())
    for name, param in b.named_parameters():
        torch.testing.assert_close(param.grad, grads_a[name].grad, **tolerance)


def _keep(batch: int, keys: int) -> "torch.Tensor":
    keep = torch.ones(batch, keys, dtype=torch.bool)
    keep[-1, -2:] = False  # every row keeps some key
    return keep


@pytest.mark.parametrize("cast", ["attn.type(sim.dtype)", "attn.to(sim.dtype)", "attn.type_as(sim)"])
@pytest.mark.parametrize("masked", [False, True])
def test_a_float32_softmax_cast_back_to_the_masked_scores_dtype(cast, masked):
    # sim is q @ k^T times a number, then masked_fill: neither changes its dtype, so the cast
    # back is to q's dtype, the round trip SDPA makes with float32 accumulation
    source = CAST_BACK.replace("attn.type(sim.dtype)", cast)
    patched = sdpa_fixed(source)
    assert "scale=self.scale" in patched and "sim" not in patched.split("else:")[-1]
    a, b, counter = _pair(source, "Attention")
    kwargs = {"mask": _keep(2, 5)} if masked else {}
    _compare(a, b, [torch.randn(2, 5, 16, dtype=F64)], kwargs, tolerance=F32_TOLERANCE)
    assert counter.calls == 1


def test_a_cast_back_to_scores_a_bias_may_widen_is_fixed_behind_a_dtype_guard():
    # a bias tensor may be wider than q (a float32 table in a half model): sim's dtype is its;
    # the fused path runs when the bias has q's dtype, which the guard checks
    source = CAST_BACK.replace(
        "        self.to_out = nn.Linear(heads * dim_head, dim)\n",
        "        self.to_out = nn.Linear(heads * dim_head, dim)\n"
        "        self.bias = nn.Parameter(torch.randn(heads, 1, 1))\n",
    ).replace("        mask_value = -torch.finfo(sim.dtype).max\n",
              "        sim = sim + self.bias\n        mask_value = -torch.finfo(sim.dtype).max\n")
    patched = sdpa_fixed(source)
    assert 'getattr(self.bias, "dtype", q.dtype) != q.dtype' in patched
    a, b, counter = _pair(source, "Attention")
    _compare(a, b, [torch.randn(2, 5, 16, dtype=F64)], {"mask": _keep(2, 5)}, tolerance=F32_TOLERANCE)
    assert counter.calls == 1
    b.bias.data = b.bias.data.float()  # now wider than nothing, but not q's dtype: the original runs
    b(torch.randn(2, 5, 16, dtype=F64))
    assert counter.calls == 1


@pytest.mark.parametrize("change", [
    # a scale that is a tensor (here foldable into q) may promote the scores too
    "sim = sim * self.temperature",
])
def test_a_cast_back_to_scores_that_may_be_wider_than_q_is_not_fixed(change):
    source = CAST_BACK.replace(
        "        self.to_out = nn.Linear(heads * dim_head, dim)\n",
        "        self.to_out = nn.Linear(heads * dim_head, dim)\n"
        "        self.bias = nn.Parameter(torch.zeros(heads, 1, 1))\n"
        "        self.temperature = nn.Parameter(torch.ones(heads, 1, 1))\n",
    )
    if "temperature" in change:
        source = source.replace("* self.scale", "* self.temperature")
    else:
        source = source.replace("        mask_value = -torch.finfo(sim.dtype).max\n",
                                f"        {change}\n        mask_value = -torch.finfo(sim.dtype).max\n")
    change = change.replace("sim = sim ", "")
    assert change in source
    [finding] = analyze(source, "attention.py", RULES).findings
    assert finding.rule == "ADP010"
    result = fix_text(source, "attention.py", RULES)
    assert result.text == source
    [(_, reason)] = result.skipped
    assert "cast to the dtype of the scores `sim`" in reason and "wider than q" in reason


MULTI_QUERY = textwrap.dedent('''
    import torch
    from torch import nn, einsum
    from einops import rearrange


    class MultiQueryAttention(nn.Module):
        def __init__(self, dim=16, heads=3, dim_head=8, dropout=0.0):
            super().__init__()
            self.heads = heads
            self.scale = dim_head ** -0.5
            self.to_q = nn.Linear(dim, heads * dim_head, bias=False)
            self.to_kv = nn.Linear(dim, dim_head * 2, bias=False)  # one key and value head
            self.dropout = nn.Dropout(dropout)
            self.to_out = nn.Linear(heads * dim_head, dim)

        def forward(self, x, context, mask=None, causal=False):
            q = rearrange(self.to_q(x), "b n (h d) -> b h n d", h=self.heads)
            k, v = self.to_kv(context).chunk(2, dim=-1)
            q = q * self.scale
            sim = einsum("b h i d, b j d -> b h i j", q, k)
            if mask is not None:
                sim = sim.masked_fill(~rearrange(mask, "b j -> b 1 1 j"), -torch.finfo(sim.dtype).max)
            if causal:
                i, j = sim.shape[-2:]
                sim = sim.masked_fill(torch.ones(i, j, dtype=torch.bool).triu(j - i + 1), -torch.finfo(sim.dtype).max)
            attn = sim.softmax(dim=-1)
            attn = self.dropout(attn)
            out = einsum("b h i j, b j d -> b h i d", attn, v)
            return self.to_out(rearrange(out, "b h n d -> b n (h d)"))
''')


@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("causal", [False, True])
def test_multi_query_keys_and_values_broadcast_over_the_query_heads(masked, causal):
    # k and v have no head axis: the einsum broadcasts them over q's heads, and so does SDPA
    # once they have a size-1 head axis (k.unsqueeze(-3))
    patched = sdpa_fixed(MULTI_QUERY)
    assert "k.unsqueeze(-3)" in patched and "v.unsqueeze(-3)" in patched
    a, b, counter = _pair(MULTI_QUERY, "MultiQueryAttention")
    kwargs = {"causal": causal}
    if masked:
        kwargs["mask"] = _keep(2, 7)
    inputs = [torch.randn(2, 5, 16, dtype=F64), torch.randn(2, 7, 16, dtype=F64)]
    _compare(a, b, inputs, kwargs)
    # (a second masked_fill, the causal one, is not read into the fused call: that path keeps
    # the original, which must still run)
    assert counter.calls == (0 if causal else 1)


@pytest.mark.parametrize("masked", [False, True])
def test_an_einsum_that_lacks_an_axis_with_the_other_in_another_order(masked):
    # q heads-first, (h, b, i, d), and k without a head axis: 'h b i d, b j d -> b h i j' is
    # q.permute(1, 0, 2, 3) @ k.unsqueeze(-3)^T, a product of moved and broadcast operands
    source = MULTI_QUERY.replace('"b h i d, b j d -> b h i j", q, k', '"h b i d, b j d -> b h i j", q, k').replace(
        '"b n (h d) -> b h n d", h=self.heads', '"b n (h d) -> h b n d", h=self.heads')
    patched = sdpa_fixed(source)
    assert "q.permute(1, 0, 2, 3), k.unsqueeze(-3)" in " ".join(patched.split()).replace("( ", "(")
    a, b, counter = _pair(source, "MultiQueryAttention")
    kwargs = {"mask": _keep(2, 7)} if masked else {}
    _compare(a, b, [torch.randn(2, 5, 16, dtype=F64), torch.randn(2, 7, 16, dtype=F64)], kwargs)
    assert counter.calls == 1


EARLY_RETURN = textwrap.dedent('''
    import torch
    import torch.nn.functional as F
    from torch import nn, einsum


    class Attend(nn.Module):
        def __init__(self, flash=False):
            super().__init__()
            self.flash = flash

        def flash_attn(self, q, k, v):
            return F.scaled_dot_product_attention(q, k, v)

        def forward(self, q, k, v):
            if self.flash:
                return self.flash_attn(q, k, v)
            sim = einsum("b h i d, b j d -> b h i j", q, k) * q.shape[-1] ** -0.5
            attn = sim.softmax(dim=-1)
            return einsum("b h i j, b j d -> b h i d", attn, v)
''')


def test_the_manual_path_after_an_early_return_through_sdpa_is_not_reported():
    # `if self.flash: return self.flash_attn(...)`, a method that calls SDPA: the kernel is
    # adopted already and the manual attention is its fallback
    assert analyze(EARLY_RETURN, "attend.py", RULES).findings == []


@pytest.mark.parametrize("change", [
    ("return self.flash_attn(q, k, v)", "return q"),  # an early return of something else
    ("    def flash_attn(self, q, k, v):\n        return F.scaled_dot_product_attention(q, k, v)\n",
     "    def flash_attn(self, q, k, v):\n        return q\n"),  # a method that is not SDPA
])
def test_an_early_return_that_is_not_sdpa_does_not_hide_the_attention(change):
    source = EARLY_RETURN.replace(*change)
    assert source != EARLY_RETURN
    [finding] = analyze(source, "attend.py", RULES).findings
    assert finding.rule == "ADP010" and finding.fixable


ALIBI_BADDBMM = textwrap.dedent('''
    import math

    import torch
    from torch import nn


    class AlibiAttention(nn.Module):
        def __init__(self, dim=16, heads=2):
            super().__init__()
            self.heads = heads
            self.head_dim = dim // heads
            self.qkv = nn.Linear(dim, 3 * dim)
            self.inv_norm_factor = 1.0 / math.sqrt(self.head_dim)
            self.beta = 1.0
            self.dropout = nn.Dropout(0.0)

        def forward(self, x, alibi):
            b, n, _ = x.shape
            q, k, v = self.qkv(x).chunk(3, dim=-1)
            q, k, v = (t.reshape(b, n, self.heads, self.head_dim).transpose(1, 2).reshape(b * self.heads, n, self.head_dim)
                       for t in (q, k, v))
            scores = alibi.baddbmm(batch1=q, batch2=k.transpose(-1, -2), beta=self.beta, alpha=self.inv_norm_factor)
            probs = torch.nn.functional.softmax(scores, dim=-1, dtype=torch.float32).to(q.dtype)
            probs = self.dropout(probs)
            out = torch.bmm(probs, v)
            return out.reshape(b, self.heads, n, self.head_dim).transpose(1, 2).reshape(b, n, -1)
''')


def _alibi(batch: int, heads: int, length: int) -> "torch.Tensor":
    slopes = torch.tensor([2.0 ** -(h + 1) for h in range(heads)], dtype=F64)
    distance = torch.arange(length, dtype=F64)[None, :] - torch.arange(length, dtype=F64)[:, None]
    return (slopes[:, None, None] * distance).repeat(batch, 1, 1)  # (batch * heads, n, n)


def test_a_baddbmm_with_beta_one_adds_its_input_as_a_bias():
    # beta=1: scores = alibi + alpha * q @ k^T; the bias is SDPA's attn_mask, alpha its scale
    patched = sdpa_fixed(ALIBI_BADDBMM)
    assert "attn_mask=alibi" in patched.replace(" ", "") and "scale=self.inv_norm_factor" in patched
    a, b, counter = _pair(ALIBI_BADDBMM, "AlibiAttention")
    _compare(a, b, [torch.randn(2, 5, 16, dtype=F64)], {"alibi": _alibi(2, 2, 5)}, tolerance=F32_TOLERANCE)
    assert counter.calls == 1


@pytest.mark.parametrize("beta", ["beta=0.5", "beta=self.half"])
def test_a_baddbmm_with_another_beta_is_not_attention_with_a_bias(beta):
    source = ALIBI_BADDBMM.replace("beta=self.beta", beta).replace(
        "        self.beta = 1.0\n", "        self.beta = 1.0\n        self.half = 0.5\n")
    assert beta in source and "self.half = 0.5" in source
    assert analyze(source, "attention.py", RULES).findings == []
    # the same code with beta 1 is attention: what the test changes is what stops it
    assert len(analyze(source.replace(beta, "beta=1"), "attention.py", RULES).findings) == 1


SOFTMAX_ALIAS = textwrap.dedent('''
    import torch
    from torch import nn, einsum
    from einops import rearrange


    def stable_softmax(t, dim=-1, alpha=32 ** 2):
        t = t / alpha
        t = t - torch.amax(t, dim=dim, keepdim=True).detach()
        return (t * alpha).softmax(dim=dim)


    class Attention(nn.Module):
        def __init__(self, dim=16, heads=2, dim_head=8, stable=False):
            super().__init__()
            self.heads = heads
            self.stable = stable
            self.scale = dim_head ** -0.5
            self.to_qkv = nn.Linear(dim, heads * dim_head * 3, bias=False)
            self.to_out = nn.Linear(heads * dim_head, dim)

        def forward(self, x, mask=None):
            softmax = torch.softmax if not self.stable else stable_softmax
            q, k, v = map(lambda t: rearrange(t, "b n (h d) -> b h n d", h=self.heads), self.to_qkv(x).chunk(3, dim=-1))
            q = q * self.scale
            dots = torch.einsum("b h i d, b h j d -> b h i j", q, k)
            if mask is not None:
                dots.masked_fill_(~rearrange(mask, "b j -> b () () j"), -torch.finfo(dots.dtype).max)
            attn = softmax(dots, dim=-1)
            out = torch.einsum("b h i j, b h j d -> b h i d", attn, v)
            return self.to_out(rearrange(out, "b h n d -> b n (h d)"))
''')


@pytest.mark.parametrize("stable", [False, True])
@pytest.mark.parametrize("masked", [False, True])
def test_a_softmax_alias_whose_alternatives_are_all_softmax(stable, masked):
    # `softmax = torch.softmax if ... else stable_softmax`, a same-file function that divides
    # by alpha, subtracts the row max and multiplies by alpha: the softmax either way
    patched = sdpa_fixed(SOFTMAX_ALIAS)
    assert "scale=1.0" in patched
    a, b, counter = _pair(SOFTMAX_ALIAS, "Attention", stable=stable)
    kwargs = {"mask": _keep(2, 5)} if masked else {}
    _compare(a, b, [torch.randn(2, 5, 16, dtype=F64)], kwargs)
    assert counter.calls == 1


@pytest.mark.parametrize("change", [
    # the scalings no longer cancel: softmax(t / alpha), a temperature
    ("    return (t * alpha).softmax(dim=dim)\n", "    return t.softmax(dim=dim)\n"),
    # an alternative that is not a softmax at all
    ("torch.softmax if not self.stable else stable_softmax", "torch.softmax if not self.stable else torch.sigmoid"),
    # the max over another axis than the softmax's: not a shift along the softmax's axis
    ("torch.amax(t, dim=dim, keepdim=True)", "torch.amax(t, dim=-2, keepdim=True)"),
])
def test_a_softmax_alias_with_an_alternative_that_is_not_softmax_is_not_attention(change):
    source = SOFTMAX_ALIAS.replace(*change)
    assert source != SOFTMAX_ALIAS
    assert analyze(source, "attention.py", RULES).findings == []


def test_a_direct_call_of_a_same_file_softmax_is_a_softmax():
    source = SOFTMAX_ALIAS.replace("attn = softmax(dots, dim=-1)", "attn = stable_softmax(dots, dim=-1)")
    [finding] = analyze(source, "attention.py", RULES).findings
    assert finding.fixable


LONG_HELPER = textwrap.dedent('''
    import torch
    from torch import nn, einsum
    from einops import rearrange


    def positional_bias(n, heads, dtype):
        # many small operations: one call in the forward that uses it
        distance = torch.arange(n, dtype=dtype)
        distance = distance[None, :] - distance[:, None]
        distance = distance.abs()
        distance = distance + 1.0
        distance = distance.log()
        distance = distance * 0.5
        distance = distance.neg()
        distance = distance.exp()
        distance = distance - 1.0
        distance = distance * 2.0
        distance = distance / 3.0
        distance = distance.clamp(min=-1.0)
        distance = distance.sin()
        distance = distance.cos()
        distance = distance * 0.25
        distance = distance + 0.5
        distance = distance.tanh()
        slopes = torch.arange(1, heads + 1, dtype=dtype)
        return slopes[:, None, None] * distance


    class Attention(nn.Module):
        def __init__(self, dim=16, heads=2, dim_head=8):
            super().__init__()
            self.heads = heads
            self.scale = dim_head ** -0.5
            self.to_qkv = nn.Linear(dim, heads * dim_head * 3, bias=False)
            self.to_out = nn.Linear(heads * dim_head, dim)

        def forward(self, x):
            q, k, v = map(lambda t: rearrange(t, "b n (h d) -> b h n d", h=self.heads), self.to_qkv(x).chunk(3, dim=-1))
            sim = einsum("b h i d, b h j d -> b h i j", q, k) * self.scale
            bias = positional_bias(x.shape[1], self.heads, x.dtype)
            sim = sim + bias
            attn = sim.softmax(dim=-1)
            out = einsum("b h i j, b h j d -> b h i d", attn, v)
            return self.to_out(rearrange(out, "b h n d -> b n (h d)"))
''')


def test_a_long_helper_called_between_two_steps_counts_as_one_statement():
    # (the gap a match may skip between two steps counts the operations of the match's own
    # function: the helper's seventeen inlined operations are one call there)
    patched = sdpa_fixed(LONG_HELPER)
    assert "attn_mask=bias" in patched.replace(" ", "")
    a, b, counter = _pair(LONG_HELPER, "Attention")
    _compare(a, b, [torch.randn(2, 5, 16, dtype=F64)])
    assert counter.calls == 1


HELPER_FILL = SOFTMAX_ALIAS.replace(
    "class Attention(nn.Module):",
    "def max_neg_value(t):\n    return -torch.finfo(t.dtype).max\n\n\nclass Attention(nn.Module):",
).replace(
    "            dots.masked_fill_(~rearrange(mask, \"b j -> b () () j\"), -torch.finfo(dots.dtype).max)\n",
    "            dots.masked_fill_(~rearrange(mask, \"b j -> b () () j\"), mask_value)\n",
).replace(
    "        if mask is not None:\n",
    "        mask_value = max_neg_value(dots)\n        if mask is not None:\n",
)


@pytest.mark.parametrize("masked", [False, True])
def test_a_fill_value_from_a_same_file_function_of_the_scores_dtype(masked):
    # mask_value = max_neg_value(dots), `return -torch.finfo(t.dtype).max`: it reads only the
    # scores' dtype, q's, and is a large negative fill
    assert "mask_value = max_neg_value(dots)" in HELPER_FILL and "mask_value)" in HELPER_FILL
    patched = sdpa_fixed(HELPER_FILL)
    assert "mask_value = max_neg_value(q)" in patched
    a, b, counter = _pair(HELPER_FILL, "Attention")
    kwargs = {"mask": _keep(2, 5)} if masked else {}
    _compare(a, b, [torch.randn(2, 5, 16, dtype=F64)], kwargs)
    assert counter.calls == 1


def test_a_fill_value_from_a_function_that_reads_the_scores_values_is_not_fixed():
    source = HELPER_FILL.replace("    return -torch.finfo(t.dtype).max\n", "    return -t.abs().amax() * 1e4\n")
    assert source != HELPER_FILL
    result = fix_text(source, "attention.py", RULES)
    [(finding, reason)] = result.skipped
    assert result.text == source and finding.rule == "ADP010" and "uses a value of the attention" in reason
