"""ResNet stages in inference (rule ADP007): convolutions each followed by BatchNorm2d.

A ResNet-18/34 ``layer1`` stage (two basic blocks, 64 channels at 56x56) and a ResNet-50
``layer3`` bottleneck (1024 -> 256 -> 256 -> 1024 channels at 14x14), batch 8.  The BatchNorm
statistics are those of a trained network (random, not the initial 0/1), so folding them
into the convolution is a real change of weights.
"""

import torch
from torch import nn

RULES = ("ADP007",)


class BasicBlock(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)

    def forward(self, x):
        identity = x
        out = self.conv1(x)
        out = self.bn1(out)
        out = self.relu(out)
        out = self.conv2(out)
        out = self.bn2(out)
        out = out + identity
        return self.relu(out)


class Bottleneck(nn.Module):
    def __init__(self, channels, width):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, channels, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(channels)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        out = out + identity
        return self.relu(out)


class Stage(nn.Module):
    def __init__(self, blocks):
        super().__init__()
        self.blocks = nn.Sequential(*blocks)

    def forward(self, x):
        return self.blocks(x)


def cases(quick=False):
    if quick:
        return [{"name": "basic c8 8x8 b2", "kind": "basic", "channels": 8, "size": 8, "batch": 2}]
    return [
        {"name": "resnet18 layer1 b8 64x56x56", "kind": "basic", "channels": 64, "size": 56, "batch": 8},
        {"name": "resnet50 layer3 bottleneck b8 1024x14x14", "kind": "bottleneck", "channels": 1024, "size": 14,
         "batch": 8},
    ]


def build(case):
    c = case["channels"]
    if case["kind"] == "basic":
        model = Stage([BasicBlock(c), BasicBlock(c)])
    else:
        model = Stage([Bottleneck(c, c // 4)])
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):  # statistics of a trained network
            module.running_mean.normal_(0.0, 0.1)
            module.running_var.uniform_(0.5, 2.0)
            nn.init.normal_(module.weight, 1.0, 0.1)
            nn.init.normal_(module.bias, 0.0, 0.1)
    return model


def inputs(case):
    return (torch.randn(case["batch"], case["channels"], case["size"], case["size"]),)
