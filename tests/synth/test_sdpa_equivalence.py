"""ADP010 patches compute what the hand-written attention computed (torch, CPU).

Small attention modules written for this test (BERT-style matmul, Bart-style bmm with a
pre-scaled query and reshaped mask, einsum with a multiplied scale, a branch the fused call
does not cover) are fixed with ADP010 alone; original and patched modules are executed side
by side and compared in eval and in training (dropout 0), forward and backward, with and
without masks.  Every fast-path check counts the calls of scaled_dot_product_attention, so a
fallback cannot pass for the fused path; head-mask / output_attentions / branch cases must
take the original path and give identical results.
"""

from __future__ import annotations

import copy
import textwrap

import pytest

torch = pytest.importorskip("torch")

from sdpa_modules import Counter, load, sdpa_fixed  # noqa: E402

BERT = textwrap.dedent('''
    import math

    import torch
    from torch import nn


    class SelfAttention(nn.Module):
        def __init__(self, dim=16, heads=2, p=0.0):
            super().__init__()
            self.heads, self.head_dim = heads, dim // heads
            self.query, self.key, self.value = nn.Linear(dim, dim), nn.Linear(dim, dim), nn.Linear(dim, dim)
            self.dropout = nn.Dropout(p)

        def split(self, x):
            return x.view(x.shape[0], x.shape[1], self.heads, self.head_dim).permute(0, 2, 1, 3)

        def forward(self, hidden, attention_mask=None, head_mask=None, output_attentions=False):
            query_layer = self.split(self.query(hidden))
            key_layer = self.split(self.key(hidden))
            value_layer = self.split(self.value(hidden))
            attention_scores = torch.matmul(query_layer, key_layer.transpose(-1, -2))
            attention_scores = attention_scores / math.sqrt(self.head_dim)
            if attention_mask is not None:
                attention_scores = attention_scores + attention_mask
            attention_probs = nn.functional.softmax(attention_scores, dim=-1)
            attention_probs = self.dropout(attention_probs)
            if head_mask is not None:
                attention_probs = attention_probs * head_mask
            context = torch.matmul(attention_probs, value_layer)
            context = context.permute(0, 2, 1, 3).reshape(hidden.shape)
            return (context, attention_probs) if output_attentions else (context,)
''')

BART = textwrap.dedent('''
    import torch
    from torch import nn


    class Attention(nn.Module):
        def __init__(self, dim=16, heads=2, p=0.0):
            super().__init__()
            self.heads, self.head_dim, self.dropout = heads, dim // heads, p
            self.scaling = self.head_dim ** -0.5
            self.q_proj, self.k_proj, self.v_proj = nn.Linear(dim, dim), nn.Linear(dim, dim), nn.Linear(dim, dim)

        def shape(self, x, bsz, n):
            return x.view(bsz, n, self.heads, self.head_dim).transpose(1, 2).reshape(bsz * self.heads, n, self.head_dim)

        def forward(self, hidden, attention_mask=None, layer_head_mask=None, output_attentions=False):
            bsz, tgt_len, _ = hidden.shape
            src_len = tgt_len
            query_states = self.shape(self.q_proj(hidden) * self.scaling, bsz, tgt_len)
            key_states = self.shape(self.k_proj(hidden), bsz, src_len)
            value_states = self.shape(self.v_proj(hidden), bsz, src_len)
            attn_weights = torch.bmm(query_states, key_states.transpose(1, 2))
            if attn_weights.size() != (bsz * self.heads, tgt_len, src_len):
                raise ValueError("bad scores")
            if attention_mask is not None:
                if attention_mask.size() != (bsz, 1, tgt_len, src_len):
                    raise ValueError("bad mask")
                attn_weights = attn_weights.view(bsz, self.heads, tgt_len, src_len) + attention_mask
                attn_weights = attn_weights.view(bsz * self.heads, tgt_len, src_len)
            attn_weights = nn.functional.softmax(attn_weights, dim=-1)
            if layer_head_mask is not None:
                attn_weights = layer_head_mask.view(1, -1, 1, 1) * attn_weights.view(bsz, self.heads, tgt_len, src_len)
                attn_weights = attn_weights.view(bsz * self.heads, tgt_len, src_len)
            if output_attentions:
                kept = attn_weights.view(bsz, self.heads, tgt_len, src_len)
                attn_weights = kept.view(bsz * self.heads, tgt_len, src_len)
            else:
                kept = None
            attn_probs = nn.functional.dropout(attn_weights, p=self.dropout, training=self.training)
            attn_output = torch.bmm(attn_probs, value_states)
            attn_output = attn_output.view(bsz, self.heads, tgt_len, self.head_dim).transpose(1, 2)
            return attn_output.reshape(bsz, tgt_len, -1), kept
''')

EINSUM = textwrap.dedent('''
    import torch
    from torch import nn


    class EinsumAttention(nn.Module):
        def __init__(self, dim=16, heads=2, p=0.0, relative=False):
            super().__init__()
            self.heads, self.head_dim = heads, dim // heads
            self.scale = self.head_dim ** -0.5
            self.relative = relative
            self.qkv = nn.Linear(dim, 3 * dim)
            self.bias = nn.Parameter(torch.randn(heads, 1, 1))
            self.attn_drop = nn.Dropout(p)

        def forward(self, hidden, attention_mask=None):
            b, n, _ = hidden.shape
            q, k, v = self.qkv(hidden).view(b, n, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
            scores = torch.einsum("bhid,bhjd->bhij", q, k)
            if self.relative:
                scores = scores + self.bias
            scores = scores * self.scale
            scores = scores + attention_mask
            probs = nn.functional.softmax(scores, -1)
            probs = self.attn_drop(probs)
            out = torch.einsum("bhij,bhjd->bhid", probs, v)
            return out.transpose(1, 2).reshape(b, n, -1)
''')





def _compare(cls_a, cls_b, make_inputs, kwargs=None, train=False):
    torch.manual_seed(0)
    a = cls_a()
    b = cls_b()
    b.load_state_dict(a.state_dict(), strict=True)
    a.train(train)
    b.train(train)
    kwargs = kwargs or {}
    inputs = make_inputs()
    ins_a = [t.clone().requires_grad_(True) for t in inputs]
    ins_b = [t.clone().requires_grad_(True) for t in inputs]
    out_a = a(*ins_a, **kwargs)
    out_b = b(*ins_b, **kwargs)
    flat_a = [t for t in (out_a if isinstance(out_a, tuple) else (out_a,)) if t is not None]
    flat_b = [t for t in (out_b if isinstance(out_b, tuple) else (out_b,)) if t is not None]
    assert len(flat_a) == len(flat_b)
    for x, y in zip(flat_a, flat_b):
        torch.testing.assert_close(y, x)
    weights = [torch.randn_like(t) for t in flat_a]
    sum((w * t).sum() for w, t in zip(weights, flat_a)).backward()
    sum((w * t).sum() for w, t in zip(weights, flat_b)).backward()
    for x, y in zip(ins_a, ins_b):
        torch.testing.assert_close(y.grad, x.grad)
    grads_a = dict(a.named_parameters())
    for name, param in b.named_parameters():
        if grads_a[name].grad is None:
            assert param.grad is None
        else:
            torch.testing.assert_close(param.grad, grads_a[name].grad)


def _mask(batch: int, length: int, square: bool = False) -> torch.Tensor:
    mask = torch.zeros(batch, 1, length if square else 1, length)
    mask[1, ..., -2:] = torch.finfo(torch.float32).min
    return mask


@pytest.mark.parametrize("train", [False, True])
@pytest.mark.parametrize("masked", [False, True])
def test_bert_style_fast_path(train, masked):
    patched = sdpa_fixed(BERT)
    assert "scale=1 / math.sqrt(self.head_dim)" in patched
    assert "dropout_p=self.dropout.p if self.training else 0.0" in patched
    original, new = load(BERT, "orig"), load(patched, "new")
    counter = Counter(new)
    kwargs = {"attention_mask": _mask(2, 6)} if masked else {}
    _compare(original["SelfAttention"], new["SelfAttention"], lambda: [torch.randn(2, 6, 16)], kwargs, train)
    assert counter.calls == 1


@pytest.mark.parametrize("case", ["head_mask", "output_attentions"])
def test_bert_style_falls_back(case):
    patched = sdpa_fixed(BERT)
    original, new = load(BERT, "orig"), load(patched, "new")
    counter = Counter(new)
    kwargs = {"attention_mask": _mask(2, 6)}
    if case == "head_mask":
        kwargs["head_mask"] = torch.tensor([1.0, 0.0]).view(1, 2, 1, 1)
    else:
        kwargs["output_attentions"] = True
    for train in (False, True):
        _compare(original["SelfAttention"], new["SelfAttention"], lambda: [torch.randn(2, 6, 16)], kwargs, train)
    assert counter.calls == 0


def test_bert_style_dropout_only_in_training():
    patched = sdpa_fixed(BERT)
    new = load(patched, "new")
    torch.manual_seed(0)
    module = new["SelfAttention"](p=0.5)
    hidden = torch.randn(2, 6, 16)
    module.eval()
    first, second = module(hidden)[0], module(hidden)[0]
    torch.testing.assert_close(first, second)  # eval: no dropout
    module.train()
    assert not torch.allclose(module(hidden)[0], module(hidden)[0])  # training: dropout applies


@pytest.mark.parametrize("train", [False, True])
@pytest.mark.parametrize("masked", [False, True])
def test_bart_style_bmm_with_prescaled_query(train, masked):
    patched = sdpa_fixed(BART)
    assert "scale=1.0" in patched
    # (whitespace aside: the new call is wrapped to the line length)
    assert ".expand(bsz,self.heads,tgt_len,src_len).reshape(bsz*self.heads,tgt_len,src_len)" in "".join(patched.split())
    original, new = load(BART, "orig"), load(patched, "new")
    counter = Counter(new)
    kwargs = {"attention_mask": _mask(2, 5, square=True)} if masked else {}
    _compare(original["Attention"], new["Attention"], lambda: [torch.randn(2, 5, 16)], kwargs, train)
    assert counter.calls == 1


@pytest.mark.parametrize("case", ["layer_head_mask", "output_attentions"])
def test_bart_style_falls_back(case):
    patched = sdpa_fixed(BART)
    original, new = load(BART, "orig"), load(patched, "new")
    counter = Counter(new)
    kwargs = {"attention_mask": _mask(2, 5, square=True)}
    if case == "layer_head_mask":
        kwargs["layer_head_mask"] = torch.tensor([0.5, 1.0])
    else:
        kwargs["output_attentions"] = True
    _compare(original["Attention"], new["Attention"], lambda: [torch.randn(2, 5, 16)], kwargs, True)
    assert counter.calls == 0


@pytest.mark.parametrize("train", [False, True])
@pytest.mark.parametrize("relative", [False, True])
def test_einsum_with_multiplied_scale_and_a_branch(train, relative):
    patched = sdpa_fixed(EINSUM)
    assert "if self.relative:" in patched and "scale=self.scale" in patched
    original, new = load(EINSUM, "orig"), load(patched, "new")
    counter = Counter(new)

    def make(cls, module_ns):
        def build():
            return module_ns[cls](relative=relative)
        return build

    kwargs = {"attention_mask": _mask(2, 7)}
    _compare(make("EinsumAttention", original), make("EinsumAttention", new),
             lambda: [torch.randn(2, 7, 16)], kwargs, train)
    # the bias added before the scale is part of the mask, scaled: `self.bias * self.scale if
    # self.relative`, so both branches take the fused call
    assert "(self.bias * self.scale) + attention_mask if self.relative else attention_mask" in " ".join(patched.split())
    assert counter.calls == 1


def test_patched_module_state_dict_is_unchanged():
    original, new = load(BERT, "orig"), load(sdpa_fixed(BERT), "new")
    assert list(original["SelfAttention"]().state_dict()) == list(new["SelfAttention"]().state_dict())
    assert copy.deepcopy(new["SelfAttention"]()) is not None
