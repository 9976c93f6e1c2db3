"""A small transformer encoder written the way Hugging Face model files are written.

`make demo` runs Adopter on this folder: every block below holds at least one place where a
fused kernel applies.
"""

import math

import torch
import torch.nn.functional as F
from torch import nn


class SelfAttention(nn.Module):
    def __init__(self, hidden, heads, dropout=0.1):
        super().__init__()
        self.heads = heads
        self.head_dim = hidden // heads
        self.q_proj = nn.Linear(hidden, hidden)
        self.k_proj = nn.Linear(hidden, hidden)
        self.v_proj = nn.Linear(hidden, hidden)
        self.dropout = nn.Dropout(dropout)

    def split(self, x):
        batch, seq, _ = x.shape
        return x.view(batch, seq, self.heads, self.head_dim).transpose(1, 2)

    def forward(self, hidden_states, mask=None):
        query = self.q_proj(hidden_states)
        key = self.k_proj(hidden_states)
        value = self.v_proj(hidden_states)
        query, key, value = self.split(query), self.split(key), self.split(value)
        scores = torch.matmul(query, key.transpose(-1, -2)) / math.sqrt(self.head_dim)
        if mask is not None:
            scores = scores + mask
        probs = F.softmax(scores, dim=-1)  # attention probabilities
        probs = self.dropout(probs)
        context = torch.matmul(probs, value).transpose(1, 2)
        return context.reshape(hidden_states.shape)


class Output(nn.Module):
    def __init__(self, inner, hidden, dropout=0.1):
        super().__init__()
        self.dense = nn.Linear(inner, hidden)
        self.dropout = nn.Dropout(dropout)
        self.norm = nn.LayerNorm(hidden, eps=1e-12)

    def forward(self, hidden_states, residual):
        hidden_states = self.dense(hidden_states)
        # dropout -> residual add -> LayerNorm: one fused kernel on a GPU
        return self.norm(self.dropout(hidden_states) + residual)


class Layer(nn.Module):
    def __init__(self, hidden=64, heads=4, inner=256):
        super().__init__()
        self.attention = SelfAttention(hidden, heads)
        self.attention_output = Output(hidden, hidden)
        self.intermediate = nn.Linear(hidden, inner)
        self.output = Output(inner, hidden)

    def forward(self, hidden_states, mask=None):
        attended = self.attention_output(self.attention(hidden_states, mask), hidden_states)
        inner = F.gelu(self.intermediate(attended))
        return self.output(inner, attended)
