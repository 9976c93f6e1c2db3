"""Separate query/key/value projections of one input, then a head split (rule ADP009), as
GPT-Neo / CodeGen-style attention writes them: hidden 768, 12 heads, batch 8 at sequence
length 128 and batch 2 at 512.  The attention itself is SDPA, so only the projections differ."""

import torch
import torch.nn.functional as F
from torch import nn

RULES = ("ADP009",)


class Attention(nn.Module):
    def __init__(self, hidden, heads):
        super().__init__()
        self.num_heads = heads
        self.head_dim = hidden // heads
        self.q_proj = nn.Linear(hidden, hidden, bias=False)
        self.k_proj = nn.Linear(hidden, hidden, bias=False)
        self.v_proj = nn.Linear(hidden, hidden, bias=False)
        self.out_proj = nn.Linear(hidden, hidden)

    def _split_heads(self, tensor):
        batch, seq, _ = tensor.shape
        return tensor.view(batch, seq, self.num_heads, self.head_dim).transpose(1, 2)

    def forward(self, hidden_states):
        query = self.q_proj(hidden_states)
        key = self.k_proj(hidden_states)
        value = self.v_proj(hidden_states)
        query = self._split_heads(query)
        key = self._split_heads(key)
        value = self._split_heads(value)
        context = F.scaled_dot_product_attention(query, key, value, is_causal=True)
        context = context.transpose(1, 2).reshape(hidden_states.shape)
        return self.out_proj(context)


def cases(quick=False):
    if quick:
        return [{"name": "b2 s16 h64", "batch": 2, "seq": 16, "hidden": 64, "heads": 4}]
    return [{"name": f"b{b} s{s} h768", "batch": b, "seq": s, "hidden": 768, "heads": 12}
            for b, s in ((8, 128), (2, 512))]


def build(case):
    return Attention(case["hidden"], case["heads"])


def inputs(case):
    return (torch.randn(case["batch"], case["seq"], case["hidden"]),)
