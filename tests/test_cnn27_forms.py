"""Forms found missing while checking the blind batch cnn27 (torchvision-style CNNs of seven
packages new to the corpus: anomaly-detection backbones and bottlenecks, text detectors, OCR and
tracking MobileNets).  The fixtures are ours.

- A helper (a method of the class, or a function of the file) that is handed a convolution and
  the BatchNorm that normalises its output, and calls them: ``self._branch(x, self.conv_a,
  self.bn_a)`` with ``def _branch(self, x, conv, bn): out = conv(x); out = bn(out)`` (a two-branch
  bottleneck whose branches differ only in their layers).  The flow inlines the helper, but read
  its parameters' calls as layers only for dropout, softmax, vocabulary heads and run-time
  activations; a BatchNorm handed in is now read as that layer too, and so is a convolution or
  Linear handed in by the same call (a convolution handed in without a BatchNorm stays opaque,
  as before).  The fix rewrites the helper's two calls into ``conv_bn(x, conv, bn)``, which folds
  only when the two modules it is given at run time are a plain conv and BatchNorm of matching
  rank, so a helper that other calls hand other layers stays exact.
  Near-misses: an activation between the two calls in the helper, a GroupNorm handed in instead
  of the BatchNorm, a convolution handed in alone whose helper normalises with a GroupNorm.
"""

from __future__ import annotations

from corpus_forms import assert_bn_fold_matches, finding_at, rules

from adopter.synth import fix_text

METHOD = """\
import torch
from torch import nn


class TwoBranch(nn.Module):
    def __init__(self, c=6):
        super().__init__()
        self.conv_a = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn_a = nn.BatchNorm2d(c)
        self.conv_b = nn.Conv2d(c, c, 5, padding=2, bias=False)
        self.bn_b = NORM_B
        self.relu = nn.ReLU()

    def _branch(self, x, conv, bn, relu):
        out = conv(x)
        BETWEEN
        out = bn(out)  # pair
        return relu(out)

    def forward(self, x):
        y1 = self._branch(x, self.conv_a, self.bn_a, self.relu)
        y2 = self._branch(x, self.conv_b, self.bn_b, self.relu)
        return torch.cat([y1, y2], dim=1)
"""


def _method(between: str = "pass", norm_b: str = "nn.BatchNorm2d(c)") -> str:
    return METHOD.replace("BETWEEN", between).replace("NORM_B", norm_b)


def test_conv_and_batchnorm_handed_to_a_method_are_a_pair():
    assert finding_at(_method(), "ADP007", "# pair") is not None


def test_conv_and_batchnorm_handed_to_a_method_fix_matches_in_float64():
    code = _method()
    fixed = fix_text(code, "model.py", rules("ADP007")).text
    assert "conv_bn(" in fixed
    # float64, 3x3 and 5x5 convolutions over 6 channels (54-150 terms): far below 1e-10
    assert_bn_fold_matches(code, fixed, "TwoBranch", (), (2, 6, 9, 9))


def test_a_helper_whose_other_call_hands_a_group_norm_stays_exact():
    # one call hands a BatchNorm (a pair), the other a GroupNorm: the rewritten helper folds
    # only what it is given at run time, so the GroupNorm branch runs as written
    code = _method(norm_b="nn.GroupNorm(2, c)")
    fixed = fix_text(code, "model.py", rules("ADP007")).text
    assert "conv_bn(" in fixed
    assert_bn_fold_matches(code, fixed, "TwoBranch", (), (2, 6, 9, 9))


def test_near_miss_activation_between_in_the_helper():
    assert finding_at(_method(between="out = relu(out)"), "ADP007", "# pair") is None


FUNCTION = """\
from torch import nn


def conv_norm(x, conv, norm):
    return norm(conv(x))  # pair


class Head(nn.Module):
    def __init__(self, c=4):
        super().__init__()
        self.conv = nn.Conv2d(c, 2 * c, 3, padding=1)
        self.norm = NORM
        self.act = nn.ReLU()

    def forward(self, x):
        return self.act(conv_norm(x, self.conv, self.norm))
"""


def test_conv_and_batchnorm_handed_to_a_module_function_are_a_pair():
    code = FUNCTION.replace("NORM", "nn.BatchNorm2d(2 * c)")
    assert finding_at(code, "ADP007", "# pair") is not None
    fixed = fix_text(code, "model.py", rules("ADP007")).text
    # float64, 3x3 convolution over 4 channels (36 terms)
    assert_bn_fold_matches(code, fixed, "Head", (), (2, 4, 7, 7))


def test_near_miss_group_norm_handed_to_a_module_function():
    code = FUNCTION.replace("NORM", "nn.GroupNorm(2, 2 * c)")
    assert finding_at(code, "ADP007", "# pair") is None


LINEAR = """\
from torch import nn


class Projector(nn.Module):
    def __init__(self, d=12, h=16):
        super().__init__()
        self.fc = nn.Linear(d, h)
        self.bn = nn.BatchNorm1d(h)

    def _project(self, x, norm, layer):
        return norm(layer(x))  # pair

    def forward(self, x):
        return self._project(x, self.bn, self.fc).relu()
"""


def test_linear_and_batchnorm1d_handed_to_a_method_are_a_pair():
    # the BatchNorm handed in before the Linear it normalises
    assert finding_at(LINEAR, "ADP008", "# pair") is not None
