"""Forms probed after the blind batch cnn35 (face detection, landmarks, gaze, face recognition and
expression CNNs of py-feat, spotiflow's ResNet, pymic's U-Net, pyod's anomaly-detection MLPs: 50
of 50 sites found at first sight).  Variants of the batch's constructions were then probed; one
family was missing.  The fixtures are ours.

- A layer class looked up on ``torch.nn`` by a key known where it runs:
  ``getattr(nn, f"Conv{ndim}d")(...)`` / ``getattr(nn, f"BatchNorm{ndim}d")(...)`` with
  ``ndim=2`` a constructor default (the GUIDE's own example: yes), ``getattr(nn, norm)(c)``
  with ``norm="BatchNorm2d"`` (as ``norm_layer=nn.BatchNorm2d`` is), or a string literal.  Such a
  call was read only as a run-time activation table; a key that is a literal, a parameter with
  a constant string default, or an f-string of literals and parameters with constant defaults
  is now read as the structural class it names (convolutions, norms, Linear); an activation's
  name stays a run-time key as before.
  Near-misses: the default dimension 3 (Conv3d then BatchNorm3d, not a 2-D pair), a default that
  names GroupNorm, a key that is a parameter without a default, an activation looked up between.
"""

from __future__ import annotations

import pytest
from corpus_forms import assert_bn_fold_matches, finding_at, rules

from adopter.synth import fix_text

FSTRING = """\
import torch
from torch import nn


class Block(nn.Module):
    def __init__(self, c=4, ndim=NDIM):
        super().__init__()
        self.conv = getattr(nn, f"Conv{ndim}d")(c, c, 3, padding=1, bias=False)
        self.bn = getattr(nn, f"BatchNorm{ndim}d")(c)
        self.act = nn.ReLU()

    def forward(self, x):
        x = self.conv(x)
        BETWEEN
        x = self.bn(x)  # pair
        return self.act(x)
"""

NAMED = """\
import torch.nn as nn


class Block(nn.Module):
    def __init__(self, c=4, norm=NORM):
        super().__init__()
        self.conv = getattr(nn, "Conv2d")(c, c, 3, padding=1)
        self.norm = getattr(nn, norm)(NORM_ARGS)

    def forward(self, x):
        return self.norm(self.conv(x))  # pair
"""


def _fstring(ndim: str = "2", between: str = "pass") -> str:
    return FSTRING.replace("NDIM", ndim).replace("BETWEEN", between)


def _named(norm: str = '"BatchNorm2d"', args: str = "c") -> str:
    return NAMED.replace("NORM_ARGS", args).replace("NORM", norm)


def test_fstring_getattr_classes_at_their_default_dimension_are_a_pair():
    assert finding_at(_fstring(), "ADP007", "# pair") is not None


def test_fstring_getattr_pair_fix_matches_in_float64():
    code = _fstring()
    fixed = fix_text(code, "model.py", rules("ADP007")).text
    assert "conv_bn(" in fixed
    # float64, a 3x3 convolution over 4 channels (36 terms): far below 1e-10
    assert_bn_fold_matches(code, fixed, "Block", (), (2, 4, 7, 7))


def test_string_default_naming_batchnorm_is_a_pair():
    assert finding_at(_named(), "ADP007", "# pair") is not None


@pytest.mark.parametrize("ndim", ["3", "1"])
def test_near_miss_default_dimension_that_is_not_2d(ndim):
    # Conv3d then BatchNorm3d (Conv1d then BatchNorm1d): not the rule's 2-D pair
    assert finding_at(_fstring(ndim=ndim), "ADP007", "# pair") is None


def test_near_miss_activation_between():
    assert finding_at(_fstring(between='x = getattr(nn, "ReLU")()(x)'), "ADP007", "# pair") is None


def test_near_miss_default_naming_group_norm():
    assert finding_at(_named('"GroupNorm"', "2, c"), "ADP007", "# pair") is None


def test_near_miss_key_parameter_without_a_default():
    code = _named().replace('c=4, norm="BatchNorm2d"', "norm, c=4")
    assert 'norm="BatchNorm2d"' not in code
    assert finding_at(code, "ADP007", "# pair") is None


def test_activation_key_stays_a_run_time_table():
    # getattr(nn, act)() after a Linear, act="GELU" by default: still "may be GELU" (ADP006),
    # as before: activations are not pinned to their default by the new reading
    code = """\
import torch.nn as nn


class MLP(nn.Module):
    def __init__(self, d=8, act="ReLU"):
        super().__init__()
        self.fc = nn.Linear(d, d)
        self.act = getattr(nn, act)()

    def forward(self, x):
        return self.act(self.fc(x))  # pair
"""
    assert finding_at(code, "ADP006", "# pair") is not None
