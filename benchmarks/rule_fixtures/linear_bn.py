"""An MLP with BatchNorm1d after each Linear (rule ADP008), as tabular and recommendation
models and projection heads write it: 1024 -> 1024 -> 1024 -> 256 at batch 512, in inference.
The BatchNorm statistics are those of a trained network (random, not the initial 0/1)."""

import torch
from torch import nn

RULES = ("ADP008",)


class MLPBlock(nn.Module):
    def __init__(self, d_in, d_out):
        super().__init__()
        self.fc = nn.Linear(d_in, d_out)
        self.bn = nn.BatchNorm1d(d_out)
        self.act = nn.ReLU()

    def forward(self, x):
        h = self.fc(x)
        h = self.bn(h)
        return self.act(h)


class MLP(nn.Module):
    def __init__(self, dims):
        super().__init__()
        self.layers = nn.ModuleList(MLPBlock(a, b) for a, b in zip(dims[:-1], dims[1:]))

    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
        return x


def cases(quick=False):
    if quick:
        return [{"name": "b16 32-32-8", "batch": 16, "dims": (32, 32, 8)}]
    return [{"name": "b512 1024-1024-1024-256", "batch": 512, "dims": (1024, 1024, 1024, 256)},
            {"name": "b64 1024-1024-1024-256", "batch": 64, "dims": (1024, 1024, 1024, 256)}]


def build(case):
    model = MLP(case["dims"])
    for module in model.modules():
        if isinstance(module, nn.BatchNorm1d):
            module.running_mean.normal_(0.0, 0.1)
            module.running_var.uniform_(0.5, 2.0)
            nn.init.normal_(module.weight, 1.0, 0.1)
            nn.init.normal_(module.bias, 0.0, 0.1)
    return model


def inputs(case):
    return (torch.randn(case["batch"], case["dims"][0]),)
