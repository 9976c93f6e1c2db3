"""LLaMA's rotary position embedding (rule ADP014) applied to query and key, LLaMA-7B head
layout (32 heads of 128), batch 2 at sequence length 512; the cos/sin tables are inputs as in
transformers' LlamaAttention."""

import torch
from torch import nn

RULES = ("ADP014",)
GRAD_INPUTS = (0, 1)  # query and key are activations; the cos/sin tables are not


def rotate_half(x):
    x1 = x[..., : x.shape[-1] // 2]
    x2 = x[..., x.shape[-1] // 2:]
    return torch.cat((-x2, x1), dim=-1)


def apply_rotary_pos_emb(q, k, cos, sin):
    q_embed = (q * cos) + (rotate_half(q) * sin)
    k_embed = (k * cos) + (rotate_half(k) * sin)
    return q_embed, k_embed


class Rotary(nn.Module):
    def forward(self, q, k, cos, sin):
        q, k = apply_rotary_pos_emb(q, k, cos, sin)
        return q, k


def cases(quick=False):
    if quick:
        return [{"name": "b2 h4 s16 d32", "batch": 2, "heads": 4, "seq": 16, "dim": 32}]
    return [{"name": "llama-7b b2 h32 s512 d128", "batch": 2, "heads": 32, "seq": 512, "dim": 128}]


def build(case):
    return Rotary()


def inputs(case):
    b, h, s, d = case["batch"], case["heads"], case["seq"], case["dim"]
    inv_freq = 1.0 / (10000 ** (torch.arange(0, d, 2).float() / d))
    freqs = torch.outer(torch.arange(s).float(), inv_freq)
    emb = torch.cat((freqs, freqs), dim=-1)
    cos, sin = emb.cos()[None, None], emb.sin()[None, None]
    return torch.randn(b, h, s, d), torch.randn(b, h, s, d), cos, sin


