"""CNN blocks whose Conv2d -> BatchNorm2d pairs are members of containers (rule ADP007, fixed by
changing the container's class to ``adopter_kernels.FoldingSequential``), in inference.

A ResNet-style downsampling basic block (``layer2.0``: 64 -> 128 channels, stride 2, 56x56 in)
whose two convolution branches and 1x1 downsample are ``nn.Sequential``s, and a MobileNetV2-style
inverted residual built from a ``ConvBNReLU(nn.Sequential)`` subclass and a list of layers
(``nn.Sequential(*layers)``), batch 8.  BatchNorm statistics are those of a trained network.
"""

import torch
from torch import nn

RULES = ("ADP007",)


class ConvBNReLU(nn.Sequential):
    def __init__(self, cin, cout, kernel_size=3, stride=1, groups=1):
        padding = (kernel_size - 1) // 2
        super().__init__(
            nn.Conv2d(cin, cout, kernel_size, stride, padding, groups=groups, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU6(inplace=True),
        )


class InvertedResidual(nn.Module):
    def __init__(self, channels, expand):
        super().__init__()
        hidden = channels * expand
        layers = [ConvBNReLU(channels, hidden, kernel_size=1)]
        layers += [
            ConvBNReLU(hidden, hidden, stride=1, groups=hidden),
            nn.Conv2d(hidden, channels, 1, 1, 0, bias=False),
            nn.BatchNorm2d(channels),
        ]
        self.conv = nn.Sequential(*layers)

    def forward(self, x):
        return x + self.conv(x)


class DownBlock(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.branch = nn.Sequential(
            nn.Conv2d(cin, cout, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True),
            nn.Conv2d(cout, cout, 3, padding=1, bias=False),
            nn.BatchNorm2d(cout),
        )
        self.downsample = nn.Sequential(
            nn.Conv2d(cin, cout, 1, stride=2, bias=False),
            nn.BatchNorm2d(cout),
        )
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        return self.relu(self.branch(x) + self.downsample(x))


def cases(quick=False):
    if quick:
        return [{"name": "down c8 8x8 b2", "kind": "down", "channels": 8, "size": 8, "batch": 2}]
    return [
        {"name": "resnet18 layer2.0 downsample b8 64x56x56", "kind": "down", "channels": 64, "size": 56, "batch": 8},
        {"name": "mobilenetv2 inverted residual b8 32x56x56 x6", "kind": "inverted", "channels": 32, "size": 56,
         "batch": 8},
    ]


def build(case):
    c = case["channels"]
    model = DownBlock(c, 2 * c) if case["kind"] == "down" else InvertedResidual(c, 6)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):  # statistics of a trained network
            module.running_mean.normal_(0.0, 0.1)
            module.running_var.uniform_(0.5, 2.0)
            nn.init.normal_(module.weight, 1.0, 0.1)
            nn.init.normal_(module.bias, 0.0, 0.1)
    return model


def inputs(case):
    return (torch.randn(case["batch"], case["channels"], case["size"], case["size"]),)
