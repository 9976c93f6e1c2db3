"""ADP010 on attention as research code writes it: found, fixed, and numerically the same.

Each module below is written for this test in the manner of a well-known family of research
code (ViT with an ``nn.Softmax`` attribute and einops, nanoGPT's registered ``tril`` buffer and
``masked_fill(-inf)``, LLaMA's float32 softmax cast back with ``type_as``, Whisper's pre-scaled q
and k with ``.float().softmax(-1).to(q.dtype)``, Swin's relative position bias and window
mask, an einsum attention with a learned temperature and a ``masked_fill`` of ``-finfo.max``,
a windowed attention whose softmax and dropout are one ``nn.Sequential`` attribute).
Each is fixed with ADP010 alone; the original and the patched module are run side by side in
float64 -- eval and training (dropout 0), forward and backward, with and without masks --
counting the calls of scaled_dot_product_attention so that a fallback cannot pass for the
fused path.  Forms SDPA cannot reproduce (talking heads, re-attention, softmax over the queries,
renormalised probabilities) must not be reported at all.
"""

from __future__ import annotations

import re
import textwrap

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("einops")

from sdpa_modules import RULES, Counter, load, sdpa_fixed  # noqa: E402

from adopter.engine import analyze  # noqa: E402
from adopter.synth import fix_text  # noqa: E402

F64 = torch.float64
# The upcast forms compute their softmax in float32 even for float64 inputs (`.float()`), so
# the original itself is only float32-accurate there: compare with float32's tolerances.
F32_TOLERANCE = {"rtol": 1.3e-6, "atol": 1e-5}

VIT = textwrap.dedent('''
    import torch
    from torch import nn
    from einops import rearrange


    class Attention(nn.Module):
        def __init__(self, dim=16, heads=2, dim_head=8, dropout=0.0):
            super().__init__()
            inner = heads * dim_head
            self.heads = heads
            self.scale = dim_head ** -0.5
            self.attend = nn.Softmax(dim=-1)
            self.dropout = nn.Dropout(dropout)
            self.to_qkv = nn.Linear(dim, inner * 3, bias=False)
            self.to_out = nn.Linear(inner, dim)

        def forward(self, x):
            qkv = self.to_qkv(x).chunk(3, dim=-1)
            q, k, v = map(lambda t: rearrange(t, "b n (h d) -> b h n d", h=self.heads), qkv)
            dots = torch.matmul(q, rearrange(k, "b h n d -> b h d n")) * self.scale
            attn = self.attend(dots)
            attn = self.dropout(attn)
            out = torch.matmul(attn, v)
            out = rearrange(out, "b h n d -> b n (h d)")
            return self.to_out(out)
''')

NANOGPT = textwrap.dedent('''
    import math

    import torch
    import torch.nn as nn


    class CausalSelfAttention(nn.Module):
        def __init__(self, n_embd=16, n_head=2, block_size=8, dropout=0.0):
            super().__init__()
            self.c_attn = nn.Linear(n_embd, 3 * n_embd)
            self.c_proj = nn.Linear(n_embd, n_embd)
            self.attn_dropout = nn.Dropout(dropout)
            self.n_head = n_head
            self.n_embd = n_embd
            self.register_buffer("bias", torch.tril(torch.ones(block_size, block_size)).view(1, 1, block_size, block_size))

        def forward(self, x):
            B, T, C = x.size()
            q, k, v = self.c_attn(x).split(self.n_embd, dim=2)
            k = k.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
            q = q.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
            v = v.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
            att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(k.size(-1)))
            att = att.masked_fill(self.bias[:, :, :T, :T] == 0, float("-inf"))
            att = att.softmax(dim=-1)
            att = self.attn_dropout(att)
            y = att @ v
            y = y.transpose(1, 2).contiguous().view(B, T, C)
            return self.c_proj(y)
''')

LLAMA = textwrap.dedent('''
    import math

    import torch
    import torch.nn.functional as F
    from torch import nn


    class Attention(nn.Module):
        def __init__(self, dim=16, n_heads=2):
            super().__init__()
            self.n_heads = n_heads
            self.head_dim = dim // n_heads
            self.wq = nn.Linear(dim, dim, bias=False)
            self.wk = nn.Linear(dim, dim, bias=False)
            self.wv = nn.Linear(dim, dim, bias=False)
            self.wo = nn.Linear(dim, dim, bias=False)

        def forward(self, x, mask=None):
            bsz, seqlen, _ = x.shape
            xq = self.wq(x).view(bsz, seqlen, self.n_heads, self.head_dim).transpose(1, 2)
            keys = self.wk(x).view(bsz, seqlen, self.n_heads, self.head_dim).transpose(1, 2)
            values = self.wv(x).view(bsz, seqlen, self.n_heads, self.head_dim).transpose(1, 2)
            scores = torch.matmul(xq, keys.transpose(2, 3)) / math.sqrt(self.head_dim)
            if mask is not None:
                scores = scores + mask
            scores = F.softmax(scores.float(), dim=-1).type_as(xq)
            output = torch.matmul(scores, values)
            output = output.transpose(1, 2).contiguous().view(bsz, seqlen, -1)
            return self.wo(output)
''')

WHISPER = textwrap.dedent('''
    import torch
    from torch import nn


    class MultiHeadAttention(nn.Module):
        def __init__(self, n_state=16, n_head=2):
            super().__init__()
            self.n_head = n_head
            self.query = nn.Linear(n_state, n_state)
            self.key = nn.Linear(n_state, n_state, bias=False)
            self.value = nn.Linear(n_state, n_state)
            self.out = nn.Linear(n_state, n_state)

        def forward(self, x, mask=None):
            q, k, v = self.query(x), self.key(x), self.value(x)
            n_batch, n_ctx, n_state = q.shape
            scale = (n_state // self.n_head) ** -0.25
            q = q.view(*q.shape[:2], self.n_head, -1).permute(0, 2, 1, 3)
            k = k.view(*k.shape[:2], self.n_head, -1).permute(0, 2, 1, 3)
            v = v.view(*v.shape[:2], self.n_head, -1).permute(0, 2, 1, 3)
            qk = (q * scale) @ (k * scale).transpose(-1, -2)
            if mask is not None:
                qk = qk + mask[:n_ctx, :n_ctx]
            w = qk.float().softmax(-1).to(q.dtype)
            out = (w @ v).permute(0, 2, 1, 3).flatten(start_dim=2)
            return self.out(out)
''')

SWIN = textwrap.dedent('''
    import torch
    from torch import nn


    class WindowAttention(nn.Module):
        def __init__(self, dim=16, window=4, num_heads=2, attn_drop=0.0):
            super().__init__()
            self.num_heads = num_heads
            head_dim = dim // num_heads
            self.scale = head_dim ** -0.5
            self.relative_position_bias_table = nn.Parameter(torch.randn(2 * window - 1, num_heads))
            index = torch.arange(window)
            self.register_buffer("relative_position_index", (index[:, None] - index[None, :]) + window - 1)
            self.qkv = nn.Linear(dim, dim * 3)
            self.attn_drop = nn.Dropout(attn_drop)
            self.proj = nn.Linear(dim, dim)
            self.softmax = nn.Softmax(dim=-1)

        def forward(self, x, mask=None):
            B_, N, C = x.shape
            qkv = self.qkv(x).reshape(B_, N, 3, self.num_heads, C // self.num_heads).permute(2, 0, 3, 1, 4)
            q, k, v = qkv[0], qkv[1], qkv[2]
            q = q * self.scale
            attn = q @ k.transpose(-2, -1)
            relative_position_bias = self.relative_position_bias_table[self.relative_position_index.view(-1)].view(N, N, -1)
            relative_position_bias = relative_position_bias.permute(2, 0, 1).contiguous()
            attn = attn + relative_position_bias.unsqueeze(0)
            if mask is not None:
                nW = mask.shape[0]
                attn = attn.view(B_ // nW, nW, self.num_heads, N, N) + mask.unsqueeze(1).unsqueeze(0)
                attn = attn.view(-1, self.num_heads, N, N)
                attn = self.softmax(attn)
            else:
                attn = self.softmax(attn)
            attn = self.attn_drop(attn)
            x = (attn @ v).transpose(1, 2).reshape(B_, N, C)
            return self.proj(x)
''')

TEMPERATURE = textwrap.dedent('''
    import torch
    from torch import einsum, nn
    from einops import rearrange


    class XCAttention(nn.Module):
        def __init__(self, dim=16, heads=2, dropout=0.0):
            super().__init__()
            self.heads = heads
            self.temperature = nn.Parameter(torch.ones(heads, 1, 1))
            self.to_qkv = nn.Linear(dim, dim * 3, bias=False)
            self.attend = nn.Softmax(dim=-1)
            self.dropout = nn.Dropout(dropout)
            self.to_out = nn.Linear(dim, dim)

        def forward(self, x, mask=None):
            q, k, v = self.to_qkv(x).chunk(3, dim=-1)
            q, k, v = map(lambda t: rearrange(t, "b n (h d) -> b h n d", h=self.heads), (q, k, v))
            sim = einsum("b h i d, b h j d -> b h i j", q, k) * self.temperature
            if mask is not None:
                sim = sim.masked_fill(~mask, -torch.finfo(sim.dtype).max)
            attn = self.attend(sim)
            attn = self.dropout(attn)
            out = einsum("b h i j, b h j d -> b h i d", attn, v)
            out = rearrange(out, "b h n d -> b n (h d)")
            return self.to_out(out)
''')

TWO_MASKS = textwrap.dedent('''
    import math

    import torch
    from torch import nn


    class SelfAttention(nn.Module):
        def __init__(self, dim=16, heads=2):
            super().__init__()
            self.heads, self.head_size = heads, dim // heads
            self.q, self.k, self.v = nn.Linear(dim, dim), nn.Linear(dim, dim), nn.Linear(dim, dim)
            self.dropout = nn.Dropout(0.0)

        def forward(self, hidden, attention_mask=None, position_bias=None):
            shape = (hidden.shape[0], hidden.shape[1], self.heads, self.head_size)
            q = self.q(hidden).view(shape).transpose(1, 2)
            k = self.k(hidden).view(shape).transpose(1, 2)
            v = self.v(hidden).view(shape).transpose(1, 2)
            attention_scores = torch.matmul(q, k.transpose(-1, -2))
            attention_scores = attention_scores / math.sqrt(self.head_size)
            if position_bias is not None:
                attention_scores += position_bias
            if attention_mask is not None:
                attention_scores = attention_scores + attention_mask
            attention_probs = nn.functional.softmax(attention_scores, dim=-1)
            attention_probs = self.dropout(attention_probs)
            context = torch.matmul(attention_probs, v)
            return context.transpose(1, 2).reshape(hidden.shape)
''')

COSINE = textwrap.dedent('''
    import math

    import torch
    import torch.nn.functional as F
    from torch import nn


    class CosineAttention(nn.Module):
        def __init__(self, dim=16, heads=2, scaled_cosine=True):
            super().__init__()
            self.heads = heads
            self.qkv = nn.Linear(dim, dim * 3)
            if scaled_cosine:
                self.logit_scale = nn.Parameter(torch.log(10 * torch.ones((heads, 1, 1))))
            else:
                self.logit_scale = None
            self.logit_scale_max = math.log(1.0 / 0.01)
            self.attn_drop = nn.Dropout(0.0)

        def forward(self, x, attn_mask=None):
            N, L, C = x.shape
            q, k, v = (t.reshape(N, L, self.heads, -1).transpose(1, 2) for t in self.qkv(x).chunk(3, dim=-1))
            if self.logit_scale is not None:
                attn = F.normalize(q, dim=-1) @ F.normalize(k, dim=-1).transpose(-1, -2)
                logit_scale = torch.clamp(self.logit_scale, max=self.logit_scale_max).exp()
                attn = attn * logit_scale
                if attn_mask is not None:
                    attn = attn + attn_mask
                attn = attn.softmax(dim=-1)
                attn = self.attn_drop(attn)
                x = attn @ v
            else:
                x = v
            return x.transpose(1, 2).reshape(N, L, C)
''')

RETURNED = textwrap.dedent('''
    import torch
    from torch import nn


    class Attention(nn.Module):
        def __init__(self, dim=16, heads=2):
            super().__init__()
            self.heads = heads
            self.qkv = nn.Linear(dim, dim * 3)

        def forward(self, x, return_attention=False):
            B, N, C = x.shape
            q, k, v = self.qkv(x).reshape(B, N, 3, self.heads, C // self.heads).permute(2, 0, 3, 1, 4)
            attn = (q @ k.transpose(-2, -1)) * 0.125
            attn = attn.softmax(dim=-1)
            x = (attn @ v).transpose(1, 2).reshape(B, N, C)
            if return_attention:
                return x, attn
            return x
''')

SEQUENTIAL = textwrap.dedent('''
    import torch
    from torch import einsum, nn
    from einops import rearrange


    class WindowedAttention(nn.Module):
        def __init__(self, dim=16, dim_head=8, dropout=0.0):
            super().__init__()
            self.heads = dim // dim_head
            self.scale = dim_head ** -0.5
            self.to_qkv = nn.Linear(dim, dim * 3, bias=False)
            self.attend = nn.Sequential(nn.Softmax(dim=-1), nn.Dropout(dropout))
            self.to_out = nn.Linear(dim, dim)

        def forward(self, x):
            q, k, v = self.to_qkv(x).chunk(3, dim=-1)
            q, k, v = map(lambda t: rearrange(t, "b n (h d) -> b h n d", h=self.heads), (q, k, v))
            q = q * self.scale
            sim = einsum("b h i d, b h j d -> b h i j", q, k)
            attn = self.attend(sim)
            out = einsum("b h i j, b h j d -> b h i d", attn, v)
            out = rearrange(out, "b h n d -> b n (h d)")
            return self.to_out(out)
''')
SEQUENTIAL_MEMBERS = "nn.Sequential(nn.Softmax(dim=-1), nn.Dropout(dropout))"

CANNOT = textwrap.dedent('''
    import torch
    from torch import einsum, nn


    class TalkingHeads(nn.Module):
        def __init__(self, heads=2):
            super().__init__()
            self.mix_pre = nn.Parameter(torch.randn(heads, heads))
            self.mix_post = nn.Parameter(torch.randn(heads, heads))
            self.attend = nn.Softmax(dim=-1)

        def forward(self, q, k, v):
            dots = einsum("b h i d, b h j d -> b h i j", q, k) * 0.5
            dots = einsum("b h i j, h g -> b g i j", dots, self.mix_pre)
            attn = self.attend(dots)
            attn = einsum("b h i j, h g -> b g i j", attn, self.mix_post)
            return einsum("b h i j, b h j d -> b h i d", attn, v)


    class ReAttention(nn.Module):
        def __init__(self, heads=2):
            super().__init__()
            self.reattn_weights = nn.Parameter(torch.randn(heads, heads))
            self.norm = nn.LayerNorm(heads)

        def forward(self, q, k, v):
            dots = einsum("b h i d, b h j d -> b h i j", q, k) * 0.5
            attn = dots.softmax(dim=-1)
            attn = einsum("b h i j, h g -> b g i j", attn, self.reattn_weights)
            attn = self.norm(attn.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
            return einsum("b h i j, b h j d -> b h i d", attn, v)


    class SoftmaxOverQueries(nn.Module):
        def forward(self, q, k, v):
            dots = q @ k.transpose(-1, -2)
            attn = dots.softmax(dim=-2)
            return attn @ v


    class Renormalised(nn.Module):
        def forward(self, q, k, v):
            dots = q @ k.transpose(-1, -2)
            attn = dots.softmax(dim=-1)
            attn = attn / (attn.sum(dim=-1, keepdim=True) + 1e-8)
            return attn @ v


    class SlotAttention(nn.Module):
        def forward(self, slots, inputs):
            dots = torch.einsum("bid,bjd->bij", slots, inputs)
            attn = dots.softmax(dim=1) + 1e-8
            attn = attn / attn.sum(dim=-1, keepdim=True)
            return torch.einsum("bjd,bij->bid", inputs, attn)
''')




def _flat(code: str) -> str:
    """The code on one line: what a call says, whichever way the synthesizer wraps its arguments."""
    code = re.sub(r"\s+", " ", code)
    code = re.sub(r"([(\[]) ", r"\1", code)
    return re.sub(r",? ([)\]])", r"\1", code)



def _pair(source: str, cls: str, **init):
    """The original and the patched module (same parameters, float64), and the SDPA counter."""
    original, new = load(source, "orig"), load(sdpa_fixed(source), "new")
    counter = Counter(new)
    torch.manual_seed(0)
    a = original[cls](**init).to(F64)
    with torch.no_grad():  # a learned temperature / bias that is not all ones
        for param in a.parameters():
            param.add_(0.1 * torch.randn_like(param))
    b = new[cls](**init).to(F64)
    b.load_state_dict(a.state_dict(), strict=True)
    return a, b, counter


def _compare(a, b, inputs, kwargs=None, train=False, tolerance=None):
    tolerance = tolerance or {}
    kwargs = kwargs or {}
    a.train(train)
    b.train(train)
    ins_a = [t.clone().requires_grad_(True) for t in inputs]
    ins_b = [t.clone().requires_grad_(True) for t in inputs]
    out_a = a(*ins_a, **kwargs)
    out_b = b(*ins_b, **kwargs)
    flat_a = [t for t in (out_a if isinstance(out_a, tuple) else (out_a,)) if t is not None]
    flat_b = [t for t in (out_b if isinstance(out_b, tuple) else (out_b,)) if t is not None]
    assert len(flat_a) == len(flat_b)
    for x, y in zip(flat_a, flat_b):
        torch.testing.assert_close(y, x, **tolerance)
    weights = [torch.randn_like(t) for t in flat_a]
    sum((w * t).sum() for w, t in zip(weights, flat_a)).backward()
    sum((w * t).sum() for w, t in zip(weights, flat_b)).backward()
    for x, y in zip(ins_a, ins_b):
        torch.testing.assert_close(y.grad, x.grad, **tolerance)
    grads_a = dict(a.named_parameters())
    for name, param in b.named_parameters():
        torch.testing.assert_close(param.grad, grads_a[name].grad, **tolerance)


def _causal(length: int) -> "torch.Tensor":
    return torch.full((length, length), float("-inf"), dtype=F64).triu(1)


@pytest.mark.parametrize("train", [False, True])
def test_vit_softmax_module_and_rearrange(train):
    patched = sdpa_fixed(VIT)
    assert "self.attend._forward_hooks" in patched  # a hook on the softmax module keeps the original
    assert "scale=self.scale" in patched
    a, b, counter = _pair(VIT, "Attention")
    _compare(a, b, [torch.randn(2, 5, 16, dtype=F64)], train=train)
    assert counter.calls == 1


def test_vit_softmax_module_with_a_hook_takes_the_original_path():
    a, b, counter = _pair(VIT, "Attention")
    seen = []
    b.attend.register_forward_hook(lambda module, args, output: seen.append(output))
    _compare(a, b, [torch.randn(2, 5, 16, dtype=F64)])
    assert counter.calls == 0 and len(seen) == 1  # the recorded attention map is still there


@pytest.mark.parametrize("train", [False, True])
def test_nanogpt_causal_mask_from_a_tril_buffer(train):
    patched = sdpa_fixed(NANOGPT)
    assert "attn_mask=self.bias[:, :, :T, :T] != 0" in _flat(patched)
    a, b, counter = _pair(NANOGPT, "CausalSelfAttention")
    _compare(a, b, [torch.randn(2, 6, 16, dtype=F64)], train=train)
    assert counter.calls == 1


@pytest.mark.parametrize("masked", [False, True])
def test_llama_float32_softmax_cast_back(masked):
    patched = sdpa_fixed(LLAMA)
    assert "attn_mask=mask," in _flat(patched)
    a, b, counter = _pair(LLAMA, "Attention")
    kwargs = {"mask": _causal(5)} if masked else {}
    _compare(a, b, [torch.randn(2, 5, 16, dtype=F64)], kwargs, tolerance=F32_TOLERANCE)
    assert counter.calls == 1


@pytest.mark.parametrize("masked", [False, True])
def test_whisper_prescaled_q_and_k(masked):
    patched = sdpa_fixed(WHISPER)
    assert "scaled_dot_product_attention(q * scale, k * scale, v," in _flat(patched) and "scale=1.0" in patched
    a, b, counter = _pair(WHISPER, "MultiHeadAttention")
    kwargs = {"mask": _causal(8)} if masked else {}
    _compare(a, b, [torch.randn(2, 6, 16, dtype=F64)], kwargs, tolerance=F32_TOLERANCE)
    assert counter.calls == 1


@pytest.mark.parametrize("train", [False, True])
@pytest.mark.parametrize("masked", [False, True])
def test_swin_relative_position_bias_and_window_mask(train, masked):
    patched = sdpa_fixed(SWIN)
    # (the conditional mask in parentheses where the call is wrapped, as Black writes it)
    assert re.search(r"attn_mask=\(?relative_position_bias\.unsqueeze\(0\) \+ ", _flat(patched))
    a, b, counter = _pair(SWIN, "WindowAttention")
    kwargs = {}
    if masked:  # two windows per image, Swin's 0 / -100 shifted-window mask
        mask = torch.zeros(2, 4, 4, dtype=F64)
        mask[1, :2, 2:] = -100.0
        mask[1, 2:, :2] = -100.0
        kwargs["mask"] = mask
    _compare(a, b, [torch.randn(4, 4, 16, dtype=F64)], kwargs, train=train)
    assert counter.calls == 1


@pytest.mark.parametrize("masked", [False, True])
def test_einsum_with_a_learned_temperature_folded_into_q(masked):
    patched = sdpa_fixed(TEMPERATURE)
    assert "scaled_dot_product_attention(q * self.temperature, k, v," in _flat(patched) and "scale=1.0" in patched
    a, b, counter = _pair(TEMPERATURE, "XCAttention")
    kwargs = {}
    if masked:  # keep-mask over the keys; every row keeps some
        keep = torch.ones(2, 1, 1, 5, dtype=torch.bool)
        keep[1, ..., -2:] = False
        kwargs["mask"] = keep
    _compare(a, b, [torch.randn(2, 5, 16, dtype=F64)], kwargs)
    assert counter.calls == 1


@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("masked", [False, True])
def test_two_optional_additive_masks(bias, masked):
    patched = sdpa_fixed(TWO_MASKS)
    assert (
        "(position_bias + attention_mask if attention_mask is not None else position_bias)"
        " if position_bias is not None else attention_mask" in _flat(patched)
    )
    a, b, counter = _pair(TWO_MASKS, "SelfAttention")
    kwargs = {}
    if bias:
        kwargs["position_bias"] = torch.randn(1, 2, 5, 5, dtype=F64)
    if masked:
        kwargs["attention_mask"] = torch.zeros(2, 1, 1, 5, dtype=F64).index_fill(3, torch.tensor([4]), -1e9)
    _compare(a, b, [torch.randn(2, 5, 16, dtype=F64)], kwargs)
    assert counter.calls == 1


@pytest.mark.parametrize("asked", [False, True])
def test_returned_probabilities_keep_the_original_path_when_asked(asked):
    a, b, counter = _pair(RETURNED, "Attention")
    _compare(a, b, [torch.randn(2, 5, 16, dtype=F64)], {"return_attention": asked})
    assert counter.calls == (0 if asked else 1)


@pytest.mark.parametrize("masked", [False, True])
def test_a_learned_per_head_logit_scale_computed_in_the_function_is_folded_into_q(masked):
    # cosine attention: `logit_scale` is a (heads, 1, 1) tensor read through a local name;
    # passed as scale= it would raise, so it multiplies the query instead
    patched = sdpa_fixed(COSINE)
    assert "F.normalize(q, dim=-1) * logit_scale, F.normalize(k, dim=-1), v," in _flat(patched) and "scale=1.0" in patched
    a, b, counter = _pair(COSINE, "CosineAttention")
    kwargs = {"attn_mask": _causal(5)} if masked else {}
    _compare(a, b, [torch.randn(2, 5, 16, dtype=F64)], kwargs)
    assert counter.calls == 1


def test_scores_read_beside_the_context_are_not_fixed():
    source = WHISPER.replace("return self.out(out)", "return self.out(out), qk.detach()").replace(
        "        out = (w @ v).permute(0, 2, 1, 3).flatten(start_dim=2)\n        return self.out(out), qk.detach()",
        "        return self.out((w @ v).permute(0, 2, 1, 3).flatten(start_dim=2)), qk.detach()")
    assert "qk.detach()" in source
    result = fix_text(source, "attention.py", RULES)
    assert result.text == source and result.applied == []
    [(finding, reason)] = result.skipped
    assert "`qk`" in reason and "no caller in this file declines it" in reason


def test_forms_sdpa_cannot_reproduce_are_not_reported():
    # talking heads and re-attention mix heads after the softmax; softmax over the queries;
    # probabilities renormalised after the softmax (slot attention too)
    assert analyze(CANNOT, "cannot.py", RULES).findings == []


def test_probabilities_returned_unconditionally_are_found_but_not_fixed():
    source = RETURNED.replace("        if return_attention:\n            return x, attn\n        return x\n",
                              "        return x, attn\n")
    result = fix_text(source, "attention.py", RULES)
    assert result.text == source
    [(finding, reason)] = result.skipped
    assert finding.rule == "ADP010" and "read at line" in reason and "unconditionally" in reason


@pytest.mark.parametrize("train", [False, True])
def test_softmax_and_dropout_members_of_one_sequential(train):
    # `self.attend = nn.Sequential(nn.Softmax(dim=-1), nn.Dropout(p))` called on the scores:
    # the container's call is what the fused call replaces
    assert analyze(SEQUENTIAL, "attention.py", RULES).findings[0].fixable
    patched = _flat(sdpa_fixed(SEQUENTIAL))
    assert "dropout_p=self.attend[1].p if self.training else 0.0" in patched and "scale=1.0" in patched
    for hooked in ("self.attend", "self.attend[0]", "self.attend[1]"):
        assert f"{hooked}._forward_hooks" in patched and f"{hooked}._forward_pre_hooks" in patched
    a, b, counter = _pair(SEQUENTIAL, "WindowedAttention")
    _compare(a, b, [torch.randn(2, 5, 16, dtype=F64)], train=train)
    assert counter.calls == 1


@pytest.mark.parametrize("hooked", ["container", "softmax", "dropout"])
def test_a_hook_on_the_sequential_or_its_members_takes_the_original_path(hooked):
    a, b, counter = _pair(SEQUENTIAL, "WindowedAttention")
    module = {"container": b.attend, "softmax": b.attend[0], "dropout": b.attend[1]}[hooked]
    seen = []
    module.register_forward_hook(lambda module, args, output: seen.append(output))
    _compare(a, b, [torch.randn(2, 5, 16, dtype=F64)])
    assert counter.calls == 0 and len(seen) == 1


def test_dropout_rate_is_read_from_the_sequential_member():
    # a real rate: SDPA draws its own dropout mask, so compare in eval (no dropout) and check
    # that training hands the member's p to the fused call
    a, b, counter = _pair(SEQUENTIAL, "WindowedAttention", dropout=0.25)
    _compare(a, b, [torch.randn(2, 5, 16, dtype=F64)])
    assert counter.calls == 1
    rates = []
    namespace = b.forward.__globals__
    inner = namespace["scaled_dot_product_attention"]

    def recording(*args, **kwargs):
        rates.append(kwargs["dropout_p"])
        return inner(*args, **kwargs)

    namespace["scaled_dot_product_attention"] = recording
    b.train()
    b(torch.randn(2, 5, 16, dtype=F64))
    b.eval()
    b(torch.randn(2, 5, 16, dtype=F64))
    assert rates == [0.25, 0.0]


@pytest.mark.parametrize("members", [
    "nn.Sequential(nn.Softmax(dim=-1), nn.Dropout(dropout), nn.Identity())",  # runs a third module
    "nn.Sequential(nn.Softmax(dim=-1), nn.Dropout(dropout), nn.Dropout(dropout))",
    "nn.Sequential(nn.Softmax(dim=-2), nn.Dropout(dropout))",  # over the queries
    "nn.Sequential(nn.Dropout(dropout), nn.Softmax(dim=-1))",  # dropout of the scores
    "nn.Sequential(nn.Linear(5, 5), nn.Softmax(dim=-1), nn.Dropout(dropout))",
])
def test_a_sequential_with_other_members_is_not_reported(members):
    source = SEQUENTIAL.replace(SEQUENTIAL_MEMBERS, members)
    assert members in source
    assert analyze(source, "attention.py", RULES).findings == []


@pytest.mark.parametrize("change", ["self.attend.append(nn.Identity())", "self.attend[1] = nn.Identity()"])
def test_a_sequential_changed_after_it_is_built_is_found_but_not_fixed(change):
    source = SEQUENTIAL.replace("        self.to_out = nn.Linear(dim, dim)\n",
                                f"        self.to_out = nn.Linear(dim, dim)\n        {change}\n")
    assert change in source
    result = fix_text(source, "attention.py", RULES)
    assert result.text == source
    [(finding, reason)] = result.skipped
    assert finding.rule == "ADP010" and "changes the members of `self.attend`" in reason


# A 1-D shifted-window attention: the shift mask is built in loops under the same `if` as the
# add of the mask (window labels filled region by region, the pairs of different labels hidden).
SHIFTED = textwrap.dedent('''
    import torch
    import torch.nn.functional as F
    from torch import nn


    class ShiftedWindows(nn.Module):
        def __init__(self, dim=16, heads=2, window=4, shift=0, attn_drop=0.0):
            super().__init__()
            self.heads, self.window, self.shift, self.attn_drop = heads, window, shift, attn_drop
            self.qkv = nn.Linear(dim, dim * 3)
            self.pos = nn.Parameter(torch.zeros(heads, window, window))

        def forward(self, x):
            B, L, C = x.shape
            w, s = self.window, self.shift
            nw = L // w
            if s > 0:
                x = torch.roll(x, -s, dims=1)
            qkv = self.qkv(x).view(B * nw, w, 3, self.heads, C // self.heads).permute(2, 0, 3, 1, 4)
            q, k, v = qkv.unbind(0)
            attn = q @ k.transpose(-2, -1) * (C // self.heads) ** -0.5
            attn = attn + self.pos
            if s > 0:
                labels = x.new_zeros(L)
                count = 0
                for lo, hi in ((0, -w), (-w, -s), (-s, None)):
                    labels[lo:hi] = count
                    count += 1
                labels = labels.view(nw, w)
                pairs = labels.unsqueeze(1) - labels.unsqueeze(2)
                pairs = pairs.masked_fill(pairs != 0, -100.0)
                attn = attn.view(B, nw, self.heads, w, w) + pairs.unsqueeze(1).unsqueeze(0)
                attn = attn.view(-1, self.heads, w, w)
            attn = F.softmax(attn, dim=-1)
            attn = F.dropout(attn, p=self.attn_drop, training=self.training)
            out = (attn @ v).transpose(1, 2).reshape(B, L, C)
            return torch.roll(out, s, dims=1) if s > 0 else out
''')


@pytest.mark.parametrize("shift", [0, 2])
@pytest.mark.parametrize("train", [False, True])
def test_a_mask_built_in_loops_under_the_masks_if(shift, train):
    patched = sdpa_fixed(SHIFTED)
    assert "for lo, hi in ((0, -w), (-w, -s), (-s, None)):" in patched  # the fused path builds the mask too
    a, b, counter = _pair(SHIFTED, "ShiftedWindows", shift=shift)
    _compare(a, b, [torch.randn(2, 12, 16, dtype=F64)], train=train)
    assert counter.calls == 1


def test_a_mask_loop_that_changes_what_an_earlier_step_read_is_not_fixed():
    # the loop writes into q after the scores read it: building the mask before the fused call
    # would change the query it is given
    source = SHIFTED.replace("                count += 1\n", "                count += 1\n                q[..., 0] = 0\n")
    assert "q[..., 0] = 0" in source
    result = fix_text(source, "attention.py", RULES)
    assert result.applied == [] and result.text == source
    [(finding, reason)] = result.skipped
    # (mend69: the check of what kept statements change between the steps says it first)
    assert "does more than an attention step" in reason or "`q`, read by the attention" in reason


# A learned positional bias added by a helper method the forward calls on the scores.
HELPER_BIAS = textwrap.dedent('''
    import torch
    from torch import nn


    class BiasedAttention(nn.Module):
        def __init__(self, dim=16, heads=2, tokens=6, attn_drop=0.0):
            super().__init__()
            self.heads = heads
            self.scale = (dim // heads) ** -0.5
            self.qkv = nn.Linear(dim, dim * 3)
            self.table = nn.Embedding(2 * tokens - 1, heads)
            index = torch.arange(tokens)
            self.register_buffer("offsets", index[None, :] - index[:, None] + tokens - 1)
            self.attend = nn.Softmax(dim=-1)
            self.dropout = nn.Dropout(attn_drop)

        def add_position_bias(self, scores):
            bias = self.table(self.offsets).permute(2, 0, 1)
            return scores + bias.unsqueeze(0) / self.scale

        def forward(self, x):
            B, N, C = x.shape
            q, k, v = self.qkv(x).view(B, N, 3, self.heads, -1).permute(2, 0, 3, 1, 4)
            dots = torch.matmul(q, k.transpose(-1, -2)) * self.scale
            dots = self.add_position_bias(dots)
            attn = self.dropout(self.attend(dots))
            out = torch.matmul(attn, v)
            return out.transpose(1, 2).reshape(B, N, C)
''')


@pytest.mark.parametrize("train", [False, True])
def test_a_bias_added_by_a_helper_method(train):
    patched = sdpa_fixed(HELPER_BIAS)
    # the fused path computes the bias with the helper's own statement
    assert "bias = self.table(self.offsets).permute(2, 0, 1)\n            out = scaled_dot_product_attention(" in patched
    assert "attn_mask=bias.unsqueeze(0) / self.scale" in _flat(patched)
    a, b, counter = _pair(HELPER_BIAS, "BiasedAttention")
    _compare(a, b, [torch.randn(2, 6, 16, dtype=F64)], train=train)
    assert counter.calls == 1


@pytest.mark.parametrize("change", [
    ("return scores + bias.unsqueeze(0) / self.scale", "return scores * 2 + bias.unsqueeze(0) / self.scale"),
    ("return scores + bias.unsqueeze(0) / self.scale", "return scores + bias.unsqueeze(0) / scores.shape[-1]"),
    ("def add_position_bias(self, scores):", "def add_position_bias(self, scores, extra=0):"),
    ("        attn = self.dropout(", "        bias = 1\n        attn = self.dropout("),  # a name of the caller
])
def test_a_helper_that_does_more_than_add_a_bias_is_not_fixed(change):
    source = HELPER_BIAS.replace(*change)
    assert source != HELPER_BIAS
    result = fix_text(source, "attention.py", RULES)
    assert result.applied == [] and result.text == source


# The scores computed two ways in the branches of an if: cosine attention with a temperature
# handed in by the caller (no shape known, so not foldable into q) or the scaled dot product.
BRANCHES = textwrap.dedent('''
    import torch
    import torch.nn.functional as F
    from torch import nn


    class TwoWayAttention(nn.Module):
        def __init__(self, dim=16, heads=2, attn_drop=0.0):
            super().__init__()
            self.heads, self.attn_drop = heads, attn_drop
            self.qkv = nn.Linear(dim, dim * 3)

        def forward(self, x, logit_scale=None, mask=None):
            B, N, C = x.shape
            q, k, v = self.qkv(x).view(B, N, 3, self.heads, -1).permute(2, 0, 3, 1, 4)
            if logit_scale is not None:
                attn = F.normalize(q, dim=-1) @ F.normalize(k, dim=-1).transpose(-2, -1)
                attn = attn * logit_scale.exp()
            else:
                q = q * (C // self.heads) ** -0.5
                attn = q @ k.transpose(-2, -1)
            if mask is not None:
                attn = attn + mask
            attn = F.softmax(attn, dim=-1)
            attn = F.dropout(attn, p=self.attn_drop, training=self.training)
            return (attn @ v).transpose(1, 2).reshape(B, N, C)
''')


@pytest.mark.parametrize("cosine", [False, True])
@pytest.mark.parametrize("masked", [False, True])
def test_scores_computed_two_ways_in_the_branches_of_an_if(cosine, masked):
    # the cosine branch (more steps, matched first) cannot be rewritten: its scale may differ
    # between keys; the dot-product branch is, and the cosine branch keeps the original path
    analysis = analyze(BRANCHES, "attention.py", RULES)
    [(_, match)] = analysis.matches
    assert match.others, "the other way to the softmax is kept beside the match"
    patched = sdpa_fixed(BRANCHES)
    assert "if logit_scale is not None" in patched and "q = q * (C // self.heads) ** -0.5\n" in patched
    a, b, counter = _pair(BRANCHES, "TwoWayAttention")
    kwargs = {"logit_scale": torch.randn(2, 6, 1, dtype=F64)} if cosine else {}
    if masked:
        kwargs["mask"] = _causal(6)
    _compare(a, b, [torch.randn(2, 6, 16, dtype=F64)], kwargs)
    assert counter.calls == (0 if cosine else 1)


def test_a_branch_that_does_more_than_the_attention_is_not_fixed():
    # the dot-product branch also records its scores: the fused path could not
    source = BRANCHES.replace("            attn = q @ k.transpose(-2, -1)\n",
                              "            attn = q @ k.transpose(-2, -1)\n            self.seen = attn.detach()\n")
    assert "self.seen" in source
    result = fix_text(source, "attention.py", RULES)
    assert result.applied == [] and result.text == source
    [(finding, reason)] = result.skipped
    assert finding.rule == "ADP010"
