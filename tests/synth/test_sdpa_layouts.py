"""ADP010 on attention written in other layouts: channel-first tensors and transposed products.

Which axis the softmax normalises says which axis of the scores holds the keys; the value
product must contract that axis.  Each module below is written for this test in the manner of a
family of code people copy: a VQ-GAN / latent-diffusion ``AttnBlock`` (``bmm(q, k)`` with k left
(b, c, hw), ``softmax(w, dim=2)``, ``bmm(v, w.permute(0, 2, 1))`` giving (b, c, hw)),
guided-diffusion's ``QKVAttention`` (``einsum("bct,bcs->bts", q * s, k * s)``, a float32 softmax
cast back to the scores' dtype, ``einsum("bts,bcs->bct", w, v)``), scores written (keys,
queries) and normalised over dim 1 of a 3-D tensor, and a causal mask on channel-first
attention.  Each is fixed with ADP010 alone and run beside the original in float64, forward and
backward (outputs, input and parameter gradients), counting the fused calls.  Products over
another axis than the normalised one are not attention and must not be reported, nor a
softmax over a name the code gives two ranks; a softmax whose dim counts from the front of a
value of unknown rank is read at the rank its product makes attention, and not fixed.
"""

from __future__ import annotations

import textwrap

import pytest

torch = pytest.importorskip("torch")

from sdpa_modules import RULES, Counter, load, sdpa_fixed  # noqa: E402

from adopter.engine import analyze  # noqa: E402
from adopter.synth import fix_text  # noqa: E402

F64 = torch.float64

ATTN_BLOCK = textwrap.dedent('''
    import torch
    import torch.nn as nn


    class AttnBlock(nn.Module):
        def __init__(self, channels=8):
            super().__init__()
            self.norm = nn.GroupNorm(2, channels)
            self.q = nn.Conv2d(channels, channels, 1)
            self.k = nn.Conv2d(channels, channels, 1)
            self.v = nn.Conv2d(channels, channels, 1)
            self.proj_out = nn.Conv2d(channels, channels, 1)

        def forward(self, x):
            h_ = self.norm(x)
            q = self.q(h_)
            k = self.k(h_)
            v = self.v(h_)

            # compute attention
            b, c, h, w = q.shape
            q = q.reshape(b, c, h * w)
            q = q.permute(0, 2, 1)   # b, hw, c
            k = k.reshape(b, c, h * w)  # b, c, hw
            w_ = torch.bmm(q, k)     # b, hw, hw
            w_ = w_ * (int(c) ** (-0.5))
            w_ = torch.nn.functional.softmax(w_, dim=2)

            # attend to values
            v = v.reshape(b, c, h * w)
            w_ = w_.permute(0, 2, 1)
            h_ = torch.bmm(v, w_)     # b, c, hw
            h_ = h_.reshape(b, c, h, w)
            h_ = self.proj_out(h_)
            return x + h_
''')

QKV_ATTENTION = textwrap.dedent('''
    import math

    import torch as th
    import torch.nn as nn


    class QKVAttention(nn.Module):
        def __init__(self, n_heads=2):
            super().__init__()
            self.n_heads = n_heads

        def forward(self, qkv):
            bs, width, length = qkv.shape
            ch = width // (3 * self.n_heads)
            q, k, v = qkv.reshape(bs * self.n_heads, ch * 3, length).split(ch, dim=1)
            scale = 1 / math.sqrt(math.sqrt(ch))
            weight = th.einsum("bct,bcs->bts", q * scale, k * scale)
            weight = th.softmax(weight.float(), dim=-1).type(weight.dtype)
            a = th.einsum("bts,bcs->bct", weight, v)
            return a.reshape(bs, -1, length)
''')

# Scores written (keys, queries), normalised over dim 1 of the 3-D product: the
# probabilities transposed before the value product, or met channel-first by v.
KEYS_FIRST = textwrap.dedent('''
    import torch
    import torch.nn as nn
    import torch.nn.functional as F


    class KeysFirst(nn.Module):
        def __init__(self, dim=8, dropout=0.0):
            super().__init__()
            self.to_qkv = nn.Linear(dim, dim * 3)
            self.dropout = nn.Dropout(dropout)
            self.scale = dim ** -0.5

        def forward(self, x):
            q, k, v = self.to_qkv(x).chunk(3, dim=-1)
            scores = torch.bmm(k, q.transpose(1, 2)) * self.scale   # b, keys, queries
            attn = scores.softmax(dim=1)
            attn = self.dropout(attn)
            return torch.bmm(attn.transpose(1, 2), v)
''')

CHANNEL_FIRST_KEYS_FIRST = textwrap.dedent('''
    import torch
    import torch.nn as nn
    import torch.nn.functional as F


    class ChannelFirstKeysFirst(nn.Module):
        def __init__(self, channels=8):
            super().__init__()
            self.qkv = nn.Conv1d(channels, channels * 3, 1)

        def forward(self, x):
            q, k, v = self.qkv(x).chunk(3, dim=1)   # b, c, t each
            scores = torch.einsum("bcs,bct->bst", k, q) / q.shape[1] ** 0.5
            attn = F.softmax(scores, dim=1)
            return torch.einsum("bcs,bst->bct", v, attn)
''')

CAUSAL_CHANNEL_FIRST = textwrap.dedent('''
    import torch
    import torch.nn as nn


    class CausalChannelFirst(nn.Module):
        def __init__(self, channels=8, length=6):
            super().__init__()
            self.qkv = nn.Conv1d(channels, channels * 3, 1)
            self.register_buffer("causal", torch.tril(torch.ones(length, length, dtype=torch.bool)))

        def forward(self, x):
            q, k, v = self.qkv(x).chunk(3, dim=1)   # b, c, t each
            t = x.shape[-1]
            w = torch.bmm(q.transpose(1, 2), k) / q.shape[1] ** 0.5   # b, t, t
            w = w.masked_fill(~self.causal[:t, :t], float("-inf"))
            w = w.softmax(dim=-1)
            return torch.bmm(v, w.transpose(1, 2))   # b, c, t
''')

# Look-alikes: products over another axis than the one the softmax normalised, and a softmax
# over dim 1 of a tensor whose rank the code does not fix.
NOT_ATTENTION = textwrap.dedent('''
    import torch
    import torch.nn as nn


    class OverTheQueries(nn.Module):
        def forward(self, q, k, v):
            w = torch.bmm(q, k)                 # b, i, j
            w = torch.softmax(w, dim=2)         # over j
            return torch.bmm(v, w)              # contracts i: not the normalised axis


    class SlotLike(nn.Module):
        def forward(self, q, k, v):
            dots = torch.einsum("bid,bjd->bij", q, k)
            attn = dots.softmax(dim=1)          # over the slots i
            return torch.einsum("bjd,bij->bid", v, attn)   # contracts j


    class TransposedTwice(nn.Module):
        def forward(self, q, k, v):
            w = torch.bmm(k, q.transpose(1, 2))  # b, keys, queries
            w = w.softmax(dim=-1)                # over the queries
            return torch.bmm(w.transpose(1, 2), v)


    class FourDimensional(nn.Module):
        def forward(self, q, k, v):
            b, h, n, d = q.shape
            w = torch.matmul(q, k.transpose(-1, -2)).view(b, h, n, n)
            w = w.softmax(dim=2)                 # the queries of a 4-D tensor
            return torch.matmul(w, v)


    class RankChanges(nn.Module):
        def forward(self, q, k, v, flag: bool):
            w = torch.bmm(q, k.transpose(1, 2))
            if flag:
                w = w.unsqueeze(1)               # 4-D on this path: dim 2 is the queries
            w = w.softmax(dim=2)
            return torch.matmul(w, v)
''')


def _pair(source: str, cls: str, **init):
    original, new = load(source, "orig"), load(sdpa_fixed(source), "new")
    counter = Counter(new)
    torch.manual_seed(0)
    a = original[cls](**init).to(F64)
    b = new[cls](**init).to(F64)
    b.load_state_dict(a.state_dict(), strict=True)
    return a, b, counter


def _compare(a, b, inputs, train=False, **tolerance):
    """Outputs, input gradients and parameter gradients equal in float64 (default float64
    tolerances: each reduction here is over at most a few dozen terms)."""
    a.train(train)
    b.train(train)
    ins_a = [t.clone().requires_grad_(True) for t in inputs]
    ins_b = [t.clone().requires_grad_(True) for t in inputs]
    out_a, out_b = a(*ins_a), b(*ins_b)
    torch.testing.assert_close(out_b, out_a, **tolerance)
    weight = torch.randn_like(out_a)
    (weight * out_a).sum().backward()
    (weight * out_b).sum().backward()
    for x, y in zip(ins_a, ins_b):
        torch.testing.assert_close(y.grad, x.grad, **tolerance)
    grads = dict(a.named_parameters())
    for name, param in b.named_parameters():
        torch.testing.assert_close(param.grad, grads[name].grad, **tolerance)


def _one_line(code: str) -> str:
    return " ".join(code.split()).replace("( ", "(").replace(" )", ")").replace(",)", ")")


def test_vqgan_attn_block_channel_first():
    patched = sdpa_fixed(ATTN_BLOCK)
    assert "torch.bmm" not in patched and "softmax" not in patched
    assert ("scaled_dot_product_attention(q, k.transpose(-2, -1), v.transpose(-2, -1), "
            "scale=(int(c) ** (-0.5))).transpose(-2, -1)") in _one_line(patched)
    a, b, counter = _pair(ATTN_BLOCK, "AttnBlock")
    _compare(a, b, [torch.randn(2, 8, 3, 4, dtype=F64)])
    assert counter.calls == 1


def test_guided_diffusion_qkv_attention_einsums():
    patched = sdpa_fixed(QKV_ATTENTION)
    assert "einsum" not in patched
    assert "(q * scale).transpose(-2, -1), (k * scale).transpose(-2, -1), v.transpose(-2, -1), scale=1.0" \
        in _one_line(patched)
    a, b, counter = _pair(QKV_ATTENTION, "QKVAttention")
    # the original computes its softmax in float32 (`.float()`) even for float64 inputs: it is
    # only float32-accurate, so float32's tolerances
    _compare(a, b, [torch.randn(2, 2 * 3 * 4, 5, dtype=F64)], rtol=1.3e-6, atol=1e-5)
    assert counter.calls == 1


@pytest.mark.parametrize("train", [False, True])
def test_scores_written_keys_first(train):
    a, b, counter = _pair(KEYS_FIRST, "KeysFirst")  # (dropout 0: training mode takes the same path)
    _compare(a, b, [torch.randn(2, 5, 8, dtype=F64)], train=train)
    assert counter.calls == 1
    patched = _one_line(sdpa_fixed(KEYS_FIRST))
    assert "scaled_dot_product_attention(q, k, v, dropout_p=self.dropout.p if self.training else 0.0, " \
           "scale=self.scale)" in patched


def test_scores_written_keys_first_channel_first():
    a, b, counter = _pair(CHANNEL_FIRST_KEYS_FIRST, "ChannelFirstKeysFirst")
    _compare(a, b, [torch.randn(2, 8, 6, dtype=F64)])
    assert counter.calls == 1


def test_causal_mask_on_channel_first_attention():
    patched = _one_line(sdpa_fixed(CAUSAL_CHANNEL_FIRST))
    assert "attn_mask=self.causal[:t, :t]" in patched and ").transpose(-2, -1)" in patched
    a, b, counter = _pair(CAUSAL_CHANNEL_FIRST, "CausalChannelFirst")
    _compare(a, b, [torch.randn(2, 8, 6, dtype=F64)])
    _compare(a, b, [torch.randn(1, 8, 4, dtype=F64)])  # a shorter sequence: the buffer sliced
    assert counter.calls == 2


def test_products_over_another_axis_are_not_attention():
    assert analyze(NOT_ATTENTION, "not_attention.py", RULES).findings == []


# speechbrain's single-query attention: the rank of the scores is not fixed by the code (the
# keys and the query are inputs), but the product contracts the last axis of the transposed
# probabilities, which is the normalised one only at rank 3 -- (B, L, 1) scores, a single
# query.  Read at that rank it is attention (found); the fused call is taken only where q, k and
# v have that rank, checked at run time (rafix28: before, not fixed).  A name the code gives two
# ranks on two paths is not read so.
RANK_OPEN = textwrap.dedent('''
    import torch
    import torch.nn as nn


    class RankUnknown(nn.Module):
        def forward(self, keys, query, values):
            scores = torch.matmul(keys, query)   # (B, L, 1) if query is (B, D, 1): not known
            p = scores.softmax(1).transpose(1, 2)
            return torch.matmul(p, values)
''')


def test_a_rank_the_product_fixes_is_read_and_checked_at_run_time():
    [finding] = analyze(RANK_OPEN, "rank_open.py", RULES).findings
    assert finding.class_name == "RankUnknown"
    result = fix_text(RANK_OPEN, "rank_open.py", RULES)
    assert len(result.applied) == 1, result.skipped
    assert "if query.dim() != 3 or keys.dim() != 3 or values.dim() != 3:" in result.text
    # the reading is what the code computes at that rank: a single query over 7 keys
    namespace = load(RANK_OPEN, "rank_open")
    keys, query, values = torch.randn(2, 7, 4, dtype=F64), torch.randn(2, 4, 1, dtype=F64), torch.randn(2, 7, 5, dtype=F64)
    out = namespace["RankUnknown"]()(keys, query, values)
    fused = torch.nn.functional.scaled_dot_product_attention(query.transpose(1, 2), keys, values, scale=1.0)
    torch.testing.assert_close(out, fused)
    patched = load(result.text, "rank_open_fixed")["RankUnknown"]()
    torch.testing.assert_close(patched(keys, query, values), out)  # float64: a few ulps
    # at rank 4 the softmax normalises another axis; the original runs there, bit for bit
    keys4, query4, values4 = (torch.randn(2, 3, 7, 4, dtype=F64), torch.randn(2, 3, 4, 1, dtype=F64),
                              torch.randn(2, 7, 1, 5, dtype=F64))
    assert torch.equal(patched(keys4, query4, values4), namespace["RankUnknown"]()(keys4, query4, values4))
    # contracted after a transpose of other axes: not the normalised one at any rank
    other = RANK_OPEN.replace("scores.softmax(1).transpose(1, 2)", "scores.softmax(1).transpose(0, 2)")
    assert analyze(other, "rank_open.py", RULES).findings == []


# The heads folded into the batch, the scores unfolded to add a 4-D mask, and the
# probabilities folded back before the value product (DeBERTa's spelling); the Megatron-style
# upcast baddbmm whose scores are reshaped (not viewed) before the mask.  Found; not fixed:
# the fused call would need the mask and the reshapes read in the folded layout.
FOLDED_HEADS = textwrap.dedent('''
    import torch
    import torch.nn as nn


    class FoldedHeads(nn.Module):
        def __init__(self, heads=2):
            super().__init__()
            self.heads = heads
            self.dropout = nn.Dropout(0.0)

        def forward(self, q, k, v, mask):
            scores = torch.bmm(q, k.transpose(-1, -2) / q.size(-1) ** 0.5)
            scores = scores.view(-1, self.heads, scores.size(-2), scores.size(-1))
            scores = scores.masked_fill(~mask, torch.finfo(q.dtype).min)
            probs = torch.softmax(scores, dim=-1)
            probs = self.dropout(probs)
            return torch.bmm(probs.view(-1, probs.size(-2), probs.size(-1)), v)


    class UpcastReordered(nn.Module):
        def __init__(self, scale=0.5):
            super().__init__()
            self.scale = scale
            self.dropout = nn.Dropout(0.0)

        def forward(self, query, key, value, mask=None):
            b, h, n, d = query.size()
            w = torch.empty(b * h, n, n, dtype=torch.float32, device=query.device)
            q, k = query.reshape(-1, n, d), key.transpose(-1, -2).reshape(-1, d, n)
            w = torch.baddbmm(w, q.float(), k.float(), beta=0, alpha=self.scale)
            w = w.reshape(b, h, n, n)
            if mask is not None:
                w = w + mask
            w = nn.functional.softmax(w, dim=-1)
            w = w.type(value.dtype)
            w = self.dropout(w)
            return torch.matmul(w, value)
''')


def test_folded_heads_and_reshaped_scores_are_found():
    findings = analyze(FOLDED_HEADS, "folded.py", RULES).findings
    assert sorted(f.line for f in findings) == [13, 31]  # one per class (a finding starts at the scores)
    result = fix_text(FOLDED_HEADS, "folded.py", RULES)
    reasons = sorted(reason for _, reason in result.skipped)
    assert "the probabilities are reshaped before the value product" in reasons


RESHAPED_MASK = textwrap.dedent('''
    import torch
    import torch.nn as nn


    class ReshapedMask(nn.Module):
        """Bart's mask add on unfolded heads, written with reshape."""

        def __init__(self, heads=2):
            super().__init__()
            self.heads = heads

        def forward(self, q, k, v, mask):
            bh, n, d = q.shape
            w = torch.bmm(q * d ** -0.5, k.transpose(1, 2))
            w = w.reshape(bh // self.heads, self.heads, n, n) + mask
            w = w.reshape(bh, n, n)
            w = w.softmax(dim=-1)
            return torch.bmm(w, v)
''')


def test_scores_reshaped_around_the_mask_like_views():
    patched = _one_line(sdpa_fixed(RESHAPED_MASK))
    assert "attn_mask=mask.expand(bh // self.heads, self.heads, n, n).reshape(bh, n, n)" in patched
    a, b, counter = _pair(RESHAPED_MASK, "ReshapedMask")
    q, k, v = (torch.randn(4, 5, 3, dtype=F64) for _ in range(3))
    mask = torch.randn(2, 1, 5, 5, dtype=F64)
    torch.testing.assert_close(b(q, k, v, mask), a(q, k, v, mask))
    assert counter.calls == 1


# The probabilities cast to the dtype of the block's input (EVA-02's `type_as(x)`): the same
# computation when x has q's dtype, which the fused path's guard checks.
CAST_TO_INPUT = textwrap.dedent('''
    import torch
    import torch.nn as nn


    class CastToInput(nn.Module):
        def __init__(self, dim=8, heads=2):
            super().__init__()
            self.heads = heads
            self.scale = (dim // heads) ** -0.5
            self.qkv = nn.Linear(dim, dim * 3)
            self.attn_drop = nn.Dropout(0.0)

        def forward(self, x):
            B, N, _ = x.shape
            qkv = self.qkv(x).reshape(B, N, 3, self.heads, -1).permute(2, 0, 3, 1, 4)
            q, k, v = qkv.unbind(dim=0)
            q = q * self.scale
            attn = (q @ k.transpose(-2, -1))
            attn = attn.softmax(dim=-1).type_as(x)
            attn = self.attn_drop(attn)
            x = (attn @ v).transpose(1, 2).reshape(B, N, -1)
            return x
''')

# A scale that may be a number or a tensor: `scale or default` tests its truth, which a tensor
# allows only with one element, the same for every key (folded into q).
SCALE_OR_DEFAULT = textwrap.dedent('''
    import torch
    import torch.nn as nn


    def attention(query, key, value, attn_mask=None, scale=None):
        scale = scale or query.size(-1) ** 0.5
        attn_weight = query @ key.transpose(-2, -1) / scale
        if attn_mask is not None:
            attn_weight += attn_mask
        attn_weight = torch.softmax(attn_weight, dim=-1)
        return attn_weight @ value


    class Attend(nn.Module):
        def forward(self, q, k, v, attn_mask=None, scale=None):
            return attention(q, k, v, attn_mask=attn_mask, scale=scale)
''')


def test_probabilities_cast_to_the_input_dtype_are_guarded():
    patched = sdpa_fixed(CAST_TO_INPUT)
    assert "x.dtype != q.dtype" in patched
    a, b, counter = _pair(CAST_TO_INPUT, "CastToInput")
    _compare(a, b, [torch.randn(2, 5, 8, dtype=F64)])
    assert counter.calls == 1


@pytest.mark.parametrize("scale", [None, 2.0, "tensor"])
def test_a_scale_that_may_be_a_one_element_tensor_is_folded_into_q(scale):
    assert "query / scale" in _one_line(sdpa_fixed(SCALE_OR_DEFAULT))
    a, b, counter = _pair(SCALE_OR_DEFAULT, "Attend")
    q, k, v = (torch.randn(2, 2, 5, 4, dtype=F64) for _ in range(3))
    mask = torch.randn(5, 5, dtype=F64)
    value = torch.tensor(3.0, dtype=F64) if scale == "tensor" else scale
    torch.testing.assert_close(b(q, k, v, scale=value), a(q, k, v, scale=value))
    torch.testing.assert_close(b(q, k, v, attn_mask=mask, scale=value), a(q, k, v, attn_mask=mask, scale=value))
    assert counter.calls == 2


CONV_ATTENTION_VIEWED = textwrap.dedent('''
    import torch
    import torch.nn as nn


    class ConvAttention(nn.Module):
        def __init__(self, channels=8, heads=2):
            super().__init__()
            self.heads = heads
            self.scale = (channels // heads) ** -0.5
            self.qkv = nn.Conv2d(channels, 3 * channels, 1)

        def forward(self, x):
            B, C, H, W = x.shape
            q, k, v = self.qkv(x).view(B, self.heads, -1, H * W).chunk(3, dim=2)
            attn = (q.transpose(-2, -1) @ k) * self.scale
            attn = attn.softmax(dim=-1)
            return (v @ attn.transpose(-2, -1)).view(B, -1, H, W)
''')


def test_a_channel_first_context_viewed_next_is_laid_out_as_the_product_was():
    # (v @ attn^T) is a fresh contiguous tensor; the fused context transposed back is not, and
    # `.view` refuses a view across its strides: the fix makes it contiguous (timm's LeViT)
    patched = _one_line(sdpa_fixed(CONV_ATTENTION_VIEWED))
    assert ".transpose(-2, -1).contiguous()).view(B, -1, H, W)" in patched
    a, b, counter = _pair(CONV_ATTENTION_VIEWED, "ConvAttention")
    _compare(a, b, [torch.randn(2, 8, 3, 4, dtype=F64)])
    assert counter.calls == 1
