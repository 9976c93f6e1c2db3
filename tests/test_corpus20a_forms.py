"""Forms found missing while checking the blind batch corpus20a (torchvision-style CNNs of eight
packages new to the corpus: re-identification backbones, segmentation decoders, optical-flow
encoders, once-for-all layers).  The fixtures are ours.

- A module class whose ``forward`` is another module's of the package: a re-identification
  backbone base (``class Backbone(nn.Module)`` in ``base.py``, its ``forward`` calling
  ``self.forward_head(self.forward_features(x))``) and a subclass in another file that only
  writes ``forward_features`` (the stem's ``conv1`` -> ``bn1``).  The file had other classes
  with a ``forward`` of their own, so the reachability pass (``model._reachable``) took only
  those classes' public methods as entry points and never walked the subclass's methods:
  its conv -> BatchNorm pair went unreported (ADP007).  A module class without a ``forward``
  of its own now has its public methods as entry points too.  Near-misses: a private method
  nothing calls (not an entry point, as before), a class that is not known to be a module (a
  plain class holding layers), the pair with an activation between.
"""

from __future__ import annotations

from adopter.engine import analyze
from adopter.structure import package_of
from adopter.synth import fix_text
from corpus_forms import assert_bn_fold_matches, rules

BASE = """\
from torch import nn


class Backbone(nn.Module):
    def forward_features(self, x):
        raise NotImplementedError

    def forward_head(self, x):
        raise NotImplementedError

    def forward(self, x):
        return self.forward_head(self.forward_features(x))
"""

NET = """\
import torch
from torch import nn
from torch.nn import functional as F

from reidpkg.base import Backbone


class Block(nn.Module):
    def __init__(self, width):
        super().__init__()
        self.conv = nn.Conv2d(width, width, 3, padding=1, bias=False)

    def forward(self, x):
        return F.relu(self.conv(x)) + x


class Net(PARENT):
    def __init__(self, width=8):
        super().__init__()
        self.conv1 = nn.Conv2d(3, width, 3, stride=2, padding=1)
        self.bn1 = nn.BatchNorm2d(width)
        self.block = Block(width)

    def METHOD(self, x):
        x = self.conv1(x)
        BETWEEN
        x = self.bn1(x)  # pair
        x = F.relu(x)
        return self.block(x)

    def forward_head(self, x):
        return x.mean((2, 3))
"""


def _package(root, parent="Backbone", method="forward_features", between=""):
    folder = root / "reidpkg"
    folder.mkdir()
    (folder / "__init__.py").write_text("")
    (folder / "base.py").write_text(BASE)
    text = NET.replace("PARENT", parent).replace("METHOD", method).replace("BETWEEN", between or "pass")
    (folder / "net.py").write_text(text)
    return folder / "net.py"


def _pairs(path):
    text = path.read_text()
    line = next(n for n, t in enumerate(text.splitlines(), 1) if "# pair" in t)
    return [f for f in analyze(text, str(path), rules("ADP007"), package_of(str(path))).findings
            if f.rule == "ADP007" and f.line <= line <= f.end_line]


def test_pair_in_a_method_the_package_base_forward_calls(tmp_path):
    assert _pairs(_package(tmp_path))


def test_pair_in_a_method_the_package_base_forward_calls_fix_matches(tmp_path, monkeypatch):
    path = _package(tmp_path)
    text = path.read_text()
    fixed = fix_text(text, str(path), rules("ADP007"), package_of(str(path))).text
    assert fixed != text and "conv_bn" in fixed
    monkeypatch.syspath_prepend(str(tmp_path))
    # float64, a 27-term convolution folded with drawn running statistics: equal to rounding
    assert_bn_fold_matches(text, fixed, "Net", (8,), (2, 3, 16, 16))


def test_private_method_nothing_calls_is_no_entry_point(tmp_path):
    assert not _pairs(_package(tmp_path, method="_unused_features"))


def test_plain_class_holding_layers_is_not_walked(tmp_path):
    assert not _pairs(_package(tmp_path, parent="object"))


def test_activation_between_is_no_pair(tmp_path):
    assert not _pairs(_package(tmp_path, between="x = F.relu(x)"))
