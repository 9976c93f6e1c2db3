"""Attention layers of BERT-base, T5-base and GPT-2 small as a model repository keeps them.

Research code copies these classes into its own files (the local class of rules ADP001-ADP003
is such a copy).  Here each local class *is* the transformers 4.34.0 implementation (the
pinned wheel of the dev extra), subclassed under its own name in this file, so the benchmark
times the real eager attention against the patched one; the layer calling it is ours.

Shapes: BERT-base / T5-base / GPT-2 small (hidden 768, 12 heads of 64), batch 8 at sequence
length 128 and batch 2 at 512.
"""

import torch
from torch import nn
from transformers import BertConfig, GPT2Config, T5Config
from transformers.models.bert import modeling_bert
from transformers.models.gpt2 import modeling_gpt2
from transformers.models.t5 import modeling_t5

RULES = ("ADP001", "ADP002", "ADP003")


class BertSelfAttention(modeling_bert.BertSelfAttention):
    pass


class T5Attention(modeling_t5.T5Attention):
    pass


class GPT2Attention(modeling_gpt2.GPT2Attention):
    pass


class BertAttentionLayer(nn.Module):
    """BERT's attention block: the self-attention under a padding mask."""

    def __init__(self, config):
        super().__init__()
        self.self = BertSelfAttention(config)

    def forward(self, hidden_states, attention_mask):
        return self.self(hidden_states, attention_mask)[0]


class T5AttentionLayer(nn.Module):
    """A T5 encoder layer after the first: it receives the shared relative-position bias."""

    def __init__(self, config):
        super().__init__()
        self.SelfAttention = T5Attention(config, has_relative_attention_bias=False)

    def forward(self, hidden_states, position_bias):
        return self.SelfAttention(hidden_states, position_bias=position_bias)[0]


class GPT2AttentionLayer(nn.Module):
    """GPT-2's causal self-attention without a padding mask (training on packed sequences)."""

    def __init__(self, config):
        super().__init__()
        self.attn = GPT2Attention(config, layer_idx=0)

    def forward(self, hidden_states):
        return self.attn(hidden_states)[0]


# Attention dropout is on in training (0.1, as these models ship): SDPA draws its own mask.
RANDOM_IN_TRAINING = True


def cases(quick=False):
    sizes = [(2, 16)] if quick else [(8, 128), (2, 512)]
    hidden, heads = (64, 4) if quick else (768, 12)
    # T5 computes its softmax in float32 whatever the model's dtype: compare to float32 precision.
    return [
        {"name": f"{kind} b{batch} s{seq}", "kind": kind, "batch": batch, "seq": seq, "hidden": hidden, "heads": heads,
         "rule": rule, **({"rounds_through": "float32"} if kind == "t5" else {})}
        for kind, rule in (("bert", "ADP001"), ("t5", "ADP002"), ("gpt2", "ADP003"))
        for batch, seq in sizes
    ]


def build(case):
    hidden, heads = case["hidden"], case["heads"]
    if case["kind"] == "bert":
        return BertAttentionLayer(BertConfig(hidden_size=hidden, num_attention_heads=heads))
    if case["kind"] == "t5":
        config = T5Config(d_model=hidden, d_kv=hidden // heads, num_heads=heads, dropout_rate=0.1)
        return T5AttentionLayer(config)
    config = GPT2Config(n_embd=hidden, n_head=heads, n_positions=max(1024, case["seq"]))
    return GPT2AttentionLayer(config)


def inputs(case):
    batch, seq, hidden, heads = case["batch"], case["seq"], case["hidden"], case["heads"]
    x = torch.randn(batch, seq, hidden)
    if case["kind"] == "bert":
        # padding mask as BertModel extends it: 0 for tokens, a large negative value for padding (the last
        # eighth of every other sequence is padding)
        keep = torch.ones(batch, seq)
        keep[1::2, seq - seq // 8:] = 0
        return x, (1.0 - keep)[:, None, None, :] * -65504.0  # float16 min: representable in every dtype
    if case["kind"] == "t5":
        return x, 0.1 * torch.randn(1, heads, seq, seq)
    return (x,)
