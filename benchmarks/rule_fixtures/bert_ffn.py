"""BERT's feed-forward half as model files write it (rules ADP005, ADP006).

``BertIntermediate`` (Linear 768 -> 3072, then ``ACT2FN[config.hidden_act]``) and
``BertOutput`` (Linear 3072 -> 768, dropout, residual add, LayerNorm): BERT-base sizes, batch 8
at sequence length 128 and batch 2 at 512.  The activation is BERT's ``"gelu"`` (the exact GELU,
one kernel already) and GPT-2's ``"gelu_new"`` (the tanh approximation, which transformers
writes as a formula of several elementwise ops), the two a user of this rule has.
"""

import torch
from torch import nn
from transformers.activations import ACT2FN

RULES = ("ADP005", "ADP006")
RANDOM_IN_TRAINING = True  # hidden dropout 0.1
GRAD_INPUTS = (0, 1)  # in training both inputs are activations of the network


class Config:
    def __init__(self, hidden_size, intermediate_size, hidden_act="gelu", hidden_dropout_prob=0.1):
        self.hidden_size = hidden_size
        self.intermediate_size = intermediate_size
        self.hidden_act = hidden_act
        self.hidden_dropout_prob = hidden_dropout_prob
        self.layer_norm_eps = 1e-12


class BertIntermediate(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.intermediate_size)
        self.intermediate_act_fn = ACT2FN[config.hidden_act]

    def forward(self, hidden_states):
        hidden_states = self.dense(hidden_states)
        hidden_states = self.intermediate_act_fn(hidden_states)
        return hidden_states


class BertOutput(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.dense = nn.Linear(config.intermediate_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, hidden_states, input_tensor):
        hidden_states = self.dense(hidden_states)
        hidden_states = self.dropout(hidden_states)
        hidden_states = self.LayerNorm(hidden_states + input_tensor)
        return hidden_states


def cases(quick=False):
    sizes = [(2, 16, 64, 256)] if quick else [(8, 128, 768, 3072), (2, 512, 768, 3072)]
    intermediate = [
        {"name": f"intermediate {act} b{b} s{s}", "part": "intermediate", "act": act, "batch": b, "seq": s,
         "hidden": h, "inner": i, "rule": "ADP006"}
        for act in ("gelu", "gelu_new") for b, s, h, i in sizes
    ]
    output = [{"name": f"output b{b} s{s}", "part": "output", "batch": b, "seq": s, "hidden": h, "inner": i,
               "rule": "ADP005"} for b, s, h, i in sizes]
    return intermediate + output


def build(case):
    config = Config(case["hidden"], case["inner"], hidden_act=case.get("act", "gelu"))
    return BertIntermediate(config) if case["part"] == "intermediate" else BertOutput(config)


def inputs(case):
    batch, seq = case["batch"], case["seq"]
    if case["part"] == "intermediate":
        return (torch.randn(batch, seq, case["hidden"]),)
    return torch.randn(batch, seq, case["inner"]), torch.randn(batch, seq, case["hidden"])

