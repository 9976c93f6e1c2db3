"""Hand-written multi-head self-attention as research code writes it (rules ADP004, ADP010).

Projections, a head split, ``softmax(q @ k^T / sqrt(d) + mask)``, attention dropout and the
weighted sum of the values: BERT-base sizes (hidden 768, 12 heads of 64), batch 8 at sequence
length 128 and batch 2 at 512, with a padding mask.
"""

import math

import torch
import torch.nn.functional as F
from torch import nn

RULES = ("ADP004", "ADP010")
RANDOM_IN_TRAINING = True  # attention dropout 0.1: SDPA draws its own mask


class SelfAttention(nn.Module):
    def __init__(self, hidden, heads, dropout=0.1):
        super().__init__()
        self.heads = heads
        self.head_dim = hidden // heads
        self.query = nn.Linear(hidden, hidden)
        self.key = nn.Linear(hidden, hidden)
        self.value = nn.Linear(hidden, hidden)
        self.dropout = nn.Dropout(dropout)

    def split_heads(self, x):
        batch, seq, _ = x.shape
        return x.view(batch, seq, self.heads, self.head_dim).transpose(1, 2)

    def forward(self, hidden_states, attention_mask):
        query = self.split_heads(self.query(hidden_states))
        key = self.split_heads(self.key(hidden_states))
        value = self.split_heads(self.value(hidden_states))
        scores = torch.matmul(query, key.transpose(-1, -2))
        scores = scores / math.sqrt(self.head_dim)
        scores = scores + attention_mask
        probs = F.softmax(scores, dim=-1)
        probs = self.dropout(probs)
        context = torch.matmul(probs, value)
        context = context.transpose(1, 2).contiguous()
        return context.view(hidden_states.shape)


def cases(quick=False):
    if quick:
        return [{"name": "b2 s16 h64", "batch": 2, "seq": 16, "hidden": 64, "heads": 4}]
    return [{"name": f"bert-base b{b} s{s}", "batch": b, "seq": s, "hidden": 768, "heads": 12}
            for b, s in ((8, 128), (2, 512))]


def build(case):
    return SelfAttention(case["hidden"], case["heads"])


def inputs(case):
    batch, seq = case["batch"], case["seq"]
    keep = torch.ones(batch, seq)
    keep[1::2, seq - seq // 8:] = 0  # the last eighth of every other sequence is padding
    return torch.randn(batch, seq, case["hidden"]), (1.0 - keep)[:, None, None, :] * -65504.0
