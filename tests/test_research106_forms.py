"""Forms from the blind batch research106 (speech, audio and music models: speaker-embedding
ResNets, TTS and codec blocks).  The fixtures are ours; each pins a reading the batch relied on.

* Layer classes handed in without defaults: a block takes ``conv_cls`` and ``norm_cls`` as
  plain parameters and the file's only builder passes the classes it keeps in attributes
  (``self.conv_cls = nn.Conv2d``), as a SimAM-ResNet does.  Conv2d -> BatchNorm2d there is a
  pair (found and folded); the same code handing Conv1d/BatchNorm1d or an InstanceNorm2d is not.
* A stem that loops over a literal list of ``(conv, bn)`` attribute pairs (CLIP-style
  ModifiedResNet in a CLAP copy): one call line folds every pair the loop visits.
* A "RMSNorm" over the variance (``x * rsqrt(x.var(-1) + eps)``) subtracts the mean: not the
  mean square, so ADP011 stays silent, whichever spelling of the centred second moment.
"""

from __future__ import annotations

import pytest
from corpus_forms import assert_bn_fold_matches, found, line_of, rules

from adopter.synth import fix_text

HANDED = """\
import torch
from torch import nn


class Block(nn.Module):
    def __init__(self, conv_cls, norm_cls, channels):
        super().__init__()
        self.conv = conv_cls(channels, channels, kernel_size=3, padding=1, bias=False)
        self.norm = norm_cls(channels)
        self.act = nn.ReLU()

    def forward(self, x):
        return self.act(self.norm(self.conv(x))) + x  # block pair


class Backbone(nn.Module):
    def __init__(self, channels=4, depth=2):
        super().__init__()
        self.conv_cls = CONV
        self.norm_cls = NORM
        self.stem = self.conv_cls(1, channels, kernel_size=3, padding=1, bias=False)
        self.stem_norm = self.norm_cls(channels)
        self.blocks = nn.Sequential(*[Block(self.conv_cls, self.norm_cls, channels) for _ in range(depth)])

    def forward(self, x):
        x = torch.relu(self.stem_norm(self.stem(x)))  # stem pair
        return self.blocks(x)
"""

STEM = """\
import torch
from torch import nn


class Stem(nn.Module):
    def __init__(self, width=8):
        super().__init__()
        self.conv1 = nn.Conv2d(3, width // 2, kernel_size=3, stride=2, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width // 2)
        self.conv2 = nn.Conv2d(width // 2, width, kernel_size=3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU()

    def forward(self, x):
        for conv, bn in [(self.conv1, self.bn1), (self.conv2, self.bn2)]:
            x = self.relu(bn(conv(x)))  # pairs
        return x
"""

NORM = """\
import torch
from torch import nn


class Norm(nn.Module):
    def __init__(self, dim, eps=1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        return x * torch.rsqrt(STAT + self.eps) * self.weight  # norm
"""


def handed(conv: str, norm: str) -> str:
    return HANDED.replace("CONV", conv).replace("NORM", norm)


def test_classes_handed_in_by_the_only_builder_make_conv_bn_pairs():
    code = handed("nn.Conv2d", "nn.BatchNorm2d")
    lines = sorted(f.line for f in found(code, "ADP007"))
    assert lines == sorted([line_of(code, "# block pair"), line_of(code, "# stem pair")])


@pytest.mark.parametrize("conv,norm", [("nn.Conv1d", "nn.BatchNorm1d"), ("nn.Conv2d", "nn.InstanceNorm2d")])
def test_other_classes_handed_in_make_no_pair(conv, norm):
    assert found(handed(conv, norm), "ADP007") == []


def test_the_handed_pairs_fold_to_what_the_original_computes():
    pytest.importorskip("torch")
    code = handed("nn.Conv2d", "nn.BatchNorm2d")
    result = fix_text(code, "model.py", rules("ADP007"))
    assert result.text.count("conv_bn(x, ") == 2, result.skipped  # the block's pair and the stem's
    # float64, 3x3 convolutions over 4 channels: a fold differs from the original by rounding only
    assert_bn_fold_matches(code, result.text, "Backbone", (), (2, 1, 6, 6))


def test_a_loop_over_literal_conv_bn_pairs_is_one_site_that_folds():
    pytest.importorskip("torch")
    sites = found(STEM, "ADP007")
    assert [(f.line, f.end_line) for f in sites] == [(line_of(STEM, "# pairs"),) * 2]
    result = fix_text(STEM, "model.py", rules("ADP007"))
    assert result.text.count("conv_bn(x, conv, bn)") == 1, result.skipped
    assert_bn_fold_matches(STEM, result.text, "Stem", (), (2, 3, 8, 8))


def test_the_mean_square_control_is_an_rms_norm():
    code = NORM.replace("STAT", "x.pow(2).mean(-1, keepdim=True)")
    assert [f.line for f in found(code, "ADP011")] == [line_of(code, "# norm")]


@pytest.mark.parametrize("stat", [
    "x.var(-1, keepdim=True)",
    "x.var(-1, keepdim=True, unbiased=False)",
    "(x - x.mean(-1, keepdim=True)).pow(2).mean(-1, keepdim=True)",
])
def test_a_centred_variance_is_no_rms_norm(stat):
    assert found(NORM.replace("STAT", stat), "ADP011") == []
