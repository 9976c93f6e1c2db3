"""The optimizer of a training script (rule ADP012): AdamW (and SGD with momentum) over the
parameters of a ~10M-parameter model, built in a function no ``forward`` reaches.

The benchmark times one ``optimizer.step()`` with the gradients of a real backward pass in
place (the part the fused implementation changes); ``build_optimizer`` is what the rule
rewrites.  The model (ten 1024x1024 Linear layers with biases: 10.5M parameters) is built
elsewhere, as in a training script."""

import torch
from torch import nn

RULES = ("ADP012",)


def build_optimizer(model, case):
    if case["optimizer"] == "sgd":
        return torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    return torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)


def cases(quick=False):
    width, depth = (64, 2) if quick else (1024, 10)
    return [{"name": f"{opt} {depth}x linear {width} ({depth * (width * width + width) / 1e6:.1f}M params)",
             "optimizer": opt, "width": width, "depth": depth}
            for opt in ("adamw", "sgd")]


def build(case):
    return nn.Sequential(*[nn.Linear(case["width"], case["width"]) for _ in range(case["depth"])])


def inputs(case):
    return (torch.randn(64, case["width"]),)
