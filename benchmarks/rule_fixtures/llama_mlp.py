"""LLaMA's gated MLP (rule ADP013, SwiGLU): ``down(act(gate(x)) * up(x))`` with SiLU, at
TinyLlama-1.1B sizes (hidden 2048, intermediate 5632), batch 2 at sequence length 512."""

import torch
from torch import nn
from transformers.activations import ACT2FN

RULES = ("ADP013",)


class Config:
    def __init__(self, hidden_size, intermediate_size, hidden_act="silu"):
        self.hidden_size = hidden_size
        self.intermediate_size = intermediate_size
        self.hidden_act = hidden_act


class LlamaMLP(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.gate_proj = nn.Linear(config.hidden_size, config.intermediate_size, bias=False)
        self.up_proj = nn.Linear(config.hidden_size, config.intermediate_size, bias=False)
        self.down_proj = nn.Linear(config.intermediate_size, config.hidden_size, bias=False)
        self.act_fn = ACT2FN[config.hidden_act]

    def forward(self, x):
        return self.down_proj(self.act_fn(self.gate_proj(x)) * self.up_proj(x))


def cases(quick=False):
    if quick:
        return [{"name": "b2 s16 64/176", "batch": 2, "seq": 16, "hidden": 64, "inner": 176}]
    return [{"name": "tinyllama b2 s512 2048/5632", "batch": 2, "seq": 512, "hidden": 2048, "inner": 5632}]


def build(case):
    return LlamaMLP(Config(case["hidden"], case["inner"]))


def inputs(case):
    return (torch.randn(case["batch"], case["seq"], case["hidden"]),)
