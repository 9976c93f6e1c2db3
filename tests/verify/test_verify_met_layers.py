"""verify19: each input of a forward read off the layer it meets.

A model over three inputs of different widths (naptrap's keyword model: a mel spectrogram
[batch, frames, 40] turned channel-first for a Conv1d of a block it holds, pretrained features
[batch, frames, 96] turned channel-first for a ConvTranspose1d, text features [batch, tokens, 256]
for a Linear) was a skip: every guess fed the first input channel-first and no combination gave
all three their widths.  Each input is now read off its layer, its axes laid out so that the
code's own transpose gives the layer what it takes, and the verdict says so.
"""

import ast
import textwrap

import torch
from stand_in import adp010_verdicts
from torch import nn

from adopter.verify.inputs import met_inputs, met_layer, met_layer_input
from adopter.verify.result import FAIL, PASS

SOURCE = '''import math

import torch
from torch import nn
from torch.nn import functional as F


class Frontend(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(24, 16, 3, stride=2, padding=1)
        self.norm = nn.BatchNorm1d(16)


class ThreeInputs(nn.Module):
    def __init__(self):
        super().__init__()
        self.front = Frontend()
        self.upsample = nn.ConvTranspose1d(12, 16, 4, stride=2)
        self.words = nn.Linear(48, 16)
        self.qkv = nn.Linear(16, 48)
        self.out = nn.Linear(16, 1)

    def forward(self, frames, coarse, words):
        a = F.relu(self.front.norm(self.front.conv(frames.transpose(1, 2)))).transpose(1, 2)
        c = self.upsample(coarse.permute(0, 2, 1)).permute(0, 2, 1)
        c = F.pad(c, (0, 0, 0, a.shape[1]))[:, :a.shape[1]]
        joint = torch.cat([a + c, torch.tanh(self.words(words))], dim=1)
        q, k, v = self.qkv(joint).chunk(3, dim=-1)
        scores = (q / math.sqrt(16.0)) @ k.transpose(1, 2)
        mixed = torch.softmax(scores, dim=-1) @ v
        return self.out(mixed.mean(dim=1)).squeeze(-1)
'''

SITE = ('        scores = (q / math.sqrt(16.0)) @ k.transpose(1, 2)\n'
        '        mixed = torch.softmax(scores, dim=-1) @ v\n')
RIGHT = '        mixed = F.scaled_dot_product_attention(q, k, v)\n'
UNSCALED = '        mixed = F.scaled_dot_product_attention(q, k, v, scale=1.0)\n'


def test_three_inputs_of_three_widths_pass_and_the_verdict_says_how(tmp_path, all_rules, quick):
    (result,) = adp010_verdicts(tmp_path / "three_inputs.py", SOURCE, (SITE, RIGHT), all_rules, quick)
    assert result.verdict == PASS, result.reason
    assert "inputs read off the layers they meet" in result.reason
    assert "frames: Conv1d's input" in result.reason and "coarse: ConvTranspose1d's input" in result.reason


def test_a_wrong_scale_fails_on_those_inputs(tmp_path, all_rules, quick):
    (result,) = adp010_verdicts(tmp_path / "three_inputs.py", SOURCE, (SITE, UNSCALED), all_rules, quick)
    assert result.verdict == FAIL, result.reason


class _Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(24, 8, 3)


class _Probe(nn.Module):
    def __init__(self):
        super().__init__()
        self.block = _Block()
        self.proj = nn.Linear(48, 8)
        self.conv2d = nn.Conv2d(5, 8, 3)

    def forward(self, x, y, z, w):
        return self.block.conv(x.transpose(1, 2)), self.proj(y), self.conv2d(z.permute(0, 3, 1, 2)), self.proj(w[0])


def test_each_layer_and_layout_is_read():
    probe = _Probe()
    randn = lambda *shape: torch.randn(*shape)  # noqa: E731
    assert met_layer(probe.forward, "x", probe) == (probe.block.conv, [0, 2, 1])
    x = met_layer_input(randn, probe.forward, "x", probe, 2, 8, 16)
    assert list(x.shape) == [2, 32, 24]  # frames last-but-one, the conv's channels last
    probe.block.conv(x.transpose(1, 2))
    z = met_layer_input(randn, probe.forward, "z", probe, 2, 8, 16, later=True)
    assert list(z.shape) == [2, 16, 16, 5]  # channels last, as the code's permute(0, 3, 1, 2) wants
    probe.conv2d(z.permute(0, 3, 1, 2))
    assert list(met_layer_input(randn, probe.forward, "y", probe, 2, 8, 16, later=True).shape) == [2, 8, 48]
    assert "z: Conv2d's input" in met_inputs([x, z])


def test_what_is_not_read():
    probe = _Probe()
    randn = lambda *shape: torch.randn(*shape)  # noqa: E731
    # a first input handed to a layer as it is: left to the guesses that read the first layers
    assert met_layer(probe.forward, "y", probe) is None
    # an input only indexed before its layer: no layout to read
    assert met_layer(probe.forward, "w", probe, later=True) is None
    assert met_inputs([torch.randn(2, 3)]) == ""

    class Negative(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv1d(4, 4, 1)

        def forward(self, x):
            return self.conv(x.transpose(-1, -2))  # negative axes: not read

    neg = Negative()
    assert met_layer_input(randn, neg.forward, "x", neg, 2, 8, 16) is None
