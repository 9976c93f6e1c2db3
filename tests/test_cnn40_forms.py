"""Forms found while checking the blind batch cnn40 (hand-written CNNs: GhostNet, ShuffleNetV2,
MobileNeXt, PP-LCNet, PeleeNet, ParNet, HRNet, stacked hourglass, I3D, optical-flow encoders).
The fixtures are ours.

- A local ``nn.ModuleList`` built from a list literal (or empty, then appended to) and then
  spread into ``nn.Sequential(*layers)`` (ezflow's ResNet-style flow encoders: ``layers =
  nn.ModuleList([nn.Conv2d(...), norm_fn, nn.ReLU()])``, stages appended, then
  ``self.encoder = layers`` and ``self.encoder = nn.Sequential(*self.encoder)`` unless
  intermediate features are asked for) was not read as a list of layers: only list displays
  and factory calls were.  A ``nn.ModuleList([...])`` holds its modules in the list's order, so
  its members are now read as the list's; and ``self.<attr> = <list name>`` carries the list
  to the attribute, so ``nn.Sequential(*self.<attr>)`` reads it too.
Near-misses: an activation between the conv and the norm in the ModuleList, the norm first,
a ModuleList of something that is not a list display, and a 3-D pair (Conv3d -> BatchNorm3d,
outside ADP007's Conv2d/BatchNorm2d: the torchvision-video precedent).
"""

from __future__ import annotations

from corpus_forms import assert_bn_fold_matches, finding_at, found, rules

from adopter.synth import fix_text

ENCODER = """\
import torch.nn as nn


class Encoder(nn.Module):
    def __init__(self, in_channels=3, norm="batch", widths=(8, 12), intermediate=False):
        super().__init__()
        norm = norm.lower()
        start = widths[0]
        if norm == "group":
            norm_fn = nn.GroupNorm(num_groups=4, num_channels=start)
        elif norm == "batch":
            norm_fn = nn.BatchNorm2d(start)
        elif norm == "none":
            norm_fn = nn.Identity()
        layers = nn.ModuleList(
            [
                nn.Conv2d(in_channels, start, kernel_size=3, stride=2, padding=1),
                norm_fn,
                nn.ReLU(inplace=True),
            ]
        )
        for width in widths[1:]:
            layers.append(self._stage(start, width))
            start = width
        self.encoder = layers
        if intermediate is False:
            self.encoder = nn.Sequential(*self.encoder)

    def _stage(self, cin, cout):
        return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.ReLU())

    def forward(self, x):
        return self.encoder(x)
"""

LOCAL = """\
import torch.nn as nn


class Stem(nn.Module):
    def __init__(self, c=6):
        super().__init__()
        layers = nn.ModuleList()
        layers.append(nn.Conv2d(3, c, 3, padding=1, bias=False))
        layers.append(nn.BatchNorm2d(c))
        layers.append(nn.ReLU())
        self.stem = nn.Sequential(*layers)

    def forward(self, x):
        return self.stem(x)
"""


def test_module_list_spread_through_an_attribute_is_a_pair():
    assert finding_at(ENCODER, "ADP007", "                norm_fn,") is not None
    assert len(found(ENCODER, "ADP007")) == 1


def test_module_list_spread_through_an_attribute_fix_folds_exactly():
    fixed = fix_text(ENCODER, "model.py", rules("ADP007")).text
    assert "FoldingSequential(*self.encoder)" in fixed
    assert_bn_fold_matches(ENCODER, fixed, "Encoder", (), (2, 3, 9, 9))


def test_empty_module_list_appended_to_then_spread_is_a_pair():
    assert finding_at(LOCAL, "ADP007", "layers.append(nn.BatchNorm2d(c))") is not None
    fixed = fix_text(LOCAL, "model.py", rules("ADP007")).text
    assert "FoldingSequential(*layers)" in fixed
    assert_bn_fold_matches(LOCAL, fixed, "Stem", (), (2, 3, 5, 5))


def test_activation_between_in_the_module_list_is_not_a_pair():
    code = ENCODER.replace("                norm_fn,\n                nn.ReLU(inplace=True),\n",
                           "                nn.ReLU(inplace=True),\n                norm_fn,\n")
    assert code != ENCODER
    assert found(code, "ADP007") == []


def test_norm_first_in_the_module_list_is_not_a_pair():
    code = LOCAL.replace("        layers.append(nn.Conv2d(3, c, 3, padding=1, bias=False))\n"
                         "        layers.append(nn.BatchNorm2d(c))\n",
                         "        layers.append(nn.BatchNorm2d(3))\n"
                         "        layers.append(nn.Conv2d(3, c, 3, padding=1, bias=False))\n")
    assert code != LOCAL
    assert found(code, "ADP007") == []


def test_module_list_of_an_unknown_value_says_nothing():
    code = LOCAL.replace("layers = nn.ModuleList()", "layers = nn.ModuleList(make_layers(c))").replace(
        "        layers.append(nn.Conv2d(3, c, 3, padding=1, bias=False))\n", "")
    code = "from elsewhere import make_layers\n" + code
    assert found(code, "ADP007") == []


def test_a_3d_pair_under_a_default_flag_is_not_adp007():
    code = """\
import torch.nn as nn
import torch.nn.functional as F


class Unit3D(nn.Module):
    def __init__(self, cin, cout, use_batch_norm=True):
        super().__init__()
        self._use_batch_norm = use_batch_norm
        self.conv3d = nn.Conv3d(cin, cout, 3, bias=False)
        if self._use_batch_norm:
            self.bn = nn.BatchNorm3d(cout, eps=1e-5, momentum=0.001)

    def forward(self, x):
        x = self.conv3d(F.pad(x, (1, 1, 1, 1, 1, 1)))
        if self._use_batch_norm:
            x = self.bn(x)
        return x
"""
    assert found(code, "ADP007") == []
