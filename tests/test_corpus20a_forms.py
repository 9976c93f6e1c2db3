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
- ``verify`` of a conv -> BatchNorm fix in an ``nn.Sequential`` subclass whose ``__init__``
  passes its layers up (``super().__init__(conv, bn, relu)``, torchseg's ``Conv2dReLU`` and the
  ASPP branches): the fix rebases the class (``class ConvBNReLU(FoldingSequential)``), a line
  outside the finding's constructors, so verify reported "the synthesized patch changes no line
  of this finding" (or, where another class of the file was declined, that class's reason).  The
  container's lines are the finding's anchors now (``core._container_lines``), and the built
  class's own ``class`` statement counts as run when an instance is built
  (``_Checker._header_lines``), so the fix is checked: pass.  Near-miss: a Sequential subclass
  with its own forward is still declined, with its own reason.
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


# ------------------------------------------------- verify of a rebased nn.Sequential subclass

SUBCLASS = """\
from torch import nn


class ConvBNReLU(nn.Sequential):
    def __init__(self, cin, cout, use_bn=True):
        conv = nn.Conv2d(cin, cout, 3, padding=1, bias=not use_bn)
        bn = nn.BatchNorm2d(cout) if use_bn else nn.Identity()
        super().__init__(conv, bn, nn.ReLU(inplace=True))


class PooledConvBN(nn.Sequential):
    def __init__(self, cin, cout):
        super().__init__(nn.AdaptiveAvgPool2d(1), nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        size = x.shape[-2:]
        for layer in self:
            x = layer(x)
        return x.expand(-1, -1, *size)
"""


def test_verify_checks_a_rebased_sequential_subclass(tmp_path):
    from adopter.config import Config
    from adopter.verify import verify_file
    from adopter.verify.core import options_for
    from adopter.verify.result import PASS, SKIP

    path = tmp_path / "blocks.py"
    path.write_text(SUBCLASS)
    results = verify_file(str(path), rules("ADP007"), Config(), benchmark=False,
                          options=options_for(Config(), benchmark=False))
    by_class = {r.class_name: r for r in results if not r.combined}
    assert by_class["ConvBNReLU"].verdict == PASS, by_class["ConvBNReLU"]
    declined = by_class["PooledConvBN"]
    assert declined.verdict == SKIP and "`PooledConvBN`" in declined.reason, declined
