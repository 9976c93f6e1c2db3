"""LLaMA's RMSNorm as model files write it (rule ADP011): statistics in float32, the result
cast back and scaled by the weight.  LLaMA-7B width (4096) and a 1B-class width (2048),
sequence length 512."""

import torch
from torch import nn

RULES = ("ADP011",)


class LlamaRMSNorm(nn.Module):
    def __init__(self, hidden_size, eps=1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(hidden_size))
        self.variance_epsilon = eps

    def forward(self, hidden_states):
        input_dtype = hidden_states.dtype
        hidden_states = hidden_states.to(torch.float32)
        variance = hidden_states.pow(2).mean(-1, keepdim=True)
        hidden_states = hidden_states * torch.rsqrt(variance + self.variance_epsilon)
        return self.weight * hidden_states.to(input_dtype)


def cases(quick=False):
    if quick:
        return [{"name": "b2 s16 h64", "batch": 2, "seq": 16, "hidden": 64}]
    return [{"name": f"b{b} s512 h{h}", "batch": b, "seq": 512, "hidden": h} for b, h in ((4, 2048), (2, 4096))]


def build(case):
    model = LlamaRMSNorm(case["hidden"])
    nn.init.normal_(model.weight, 1.0, 0.1)  # a trained scale, not the initial ones
    return model


def inputs(case):
    return (torch.randn(case["batch"], case["seq"], case["hidden"]),)
