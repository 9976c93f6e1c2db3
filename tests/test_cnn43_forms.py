"""Forms found while checking the blind batch cnn43 (hand-written CNNs written by hand outside
the big zoos: UNet++, CE-Net and dense U-Nets of a medical segmentation package, a RevNet
ResNet, a CIFAR MobileNetV2, a T-Net whose blocks are ModuleLists, optimizer recipes).  The
fixtures are ours.

- Layers borrowed from a same-file backbone built in ``__init__`` (CE-Net's encoder:
  ``resnet = get_resnet_backbone("resnet34")(pretrain=True)``, then ``self.firstconv =
  resnet.conv1``, ``self.firstbn = resnet.bn1`` and ``x = self.firstbn(self.firstconv(x))`` in
  ``forward``).  ``resnet.conv1`` was typed as an unknown dotted name.  A local name bound (on
  every way) to a call that builds an instance of one same-file module class -- the class
  called by name, a same-file function returning it (``model = build_resnet(...); return
  model``), a call that returns such a function, or an entry of a module-level dict of them
  (``return _backbones[name]``) -- now reads ``<name>.<attr>`` as the layer that class's
  ``__init__`` binds to ``self.<attr>``.
Near-misses: a name bound again under an ``if`` (to a class whose ``bn1`` is a ReLU), an
instance whose ``bn1`` is replaced after it is built, a name a loop rebinds, a function that
returns one of two classes, an instance handed to a wrapper and bound again: none is read.
Torchvision's ``models.resnet34()`` borrowed the same way was a miss (the session-13 ruling);
session 46 describes torchvision's ResNet pieces (structure/library_layers.py): reported, not
fixed.
"""

from __future__ import annotations

from corpus_forms import assert_bn_fold_matches, finding_at, found, rules

from adopter.synth import fix_text

BACKBONE = """\
import torch.nn as nn


class Stem(nn.Module):
    def __init__(self, width=8):
        super().__init__()
        self.conv1 = nn.Conv2d(3, width, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU()

    def forward(self, x):
        return self.relu(self.bn1(self.conv1(x)))


class Other(nn.Module):
    def __init__(self, width=8):
        super().__init__()
        self.conv1 = nn.Conv2d(3, width, 3, padding=1)
        self.bn1 = nn.ReLU()

    def forward(self, x):
        return self.bn1(self.conv1(x))


def stem_small(pretrain=False):
    model = Stem(8)
    return model


def stem_large(pretrain=False):
    return Stem(16)


_stems = {"small": stem_small, "large": stem_large}


def get_stem(name):
    assert name in _stems
    found = _stems[name]
    return found


def pick(flag):
    if flag:
        return Stem()
    return Other()


def wrap(module):
    return nn.Sequential(module)
"""


def net(binding: str) -> str:
    return BACKBONE + f"""

class Net(nn.Module):
    def __init__(self, flag=False, nets=()):
        super().__init__()
        {binding}
        self.firstconv = net.conv1
        self.firstbn = net.bn1
        self.head = nn.Conv2d(8, 2, 1)

    def forward(self, x):
        x = self.firstconv(x)
        x = self.firstbn(x)
        return self.head(x)
"""


def _borrowed(code: str) -> bool:
    return finding_at(code, "ADP007", "x = self.firstbn(x)") is not None


def test_layers_of_a_same_file_backbone_bound_to_a_local_are_a_pair():
    assert _borrowed(net("net = Stem()"))


def test_backbone_from_a_same_file_function_returning_a_local():
    assert _borrowed(net("net = stem_small(pretrain=True)"))


def test_backbone_from_a_function_a_call_returns_through_a_module_dict():
    # resnet = get_resnet_backbone("resnet34")(pretrain=True), CE-Net's spelling
    assert _borrowed(net('net = get_stem("small")(pretrain=True)'))


def test_backbone_from_a_module_dict_entry_called_in_place():
    assert _borrowed(net('net = _stems["large"]()'))


def test_borrowed_pair_fix_folds_exactly():
    code = net('net = get_stem("small")(pretrain=True)')
    fixed = fix_text(code, "model.py", rules("ADP007")).text
    assert "conv_bn(x, self.firstconv, self.firstbn)" in fixed
    assert_bn_fold_matches(code, fixed, "Net", (), (2, 3, 6, 6))


def test_near_miss_name_bound_again_under_an_if_is_not_read():
    assert not _borrowed(net("net = Stem()\n        if flag:\n            net = Other()"))


def test_near_miss_instance_whose_norm_is_replaced_is_not_read():
    assert not _borrowed(net("net = Stem()\n        net.bn1 = nn.Identity()"))


def test_near_miss_name_a_loop_rebinds_is_not_read():
    assert not _borrowed(net("net = Stem()\n        for net in nets:\n            pass"))


def test_near_miss_function_returning_one_of_two_classes_is_not_read():
    assert not _borrowed(net("net = pick(flag)"))


def test_near_miss_instance_wrapped_and_bound_again_is_not_read():
    assert not _borrowed(net("net = Stem()\n        net = wrap(net)"))


def test_torchvision_backbone_is_read_as_documented_and_reported_not_fixed():
    # (session 46: torchvision's ResNet pieces are described, structure/library_layers.py)
    code = net("net = models.resnet34()").replace("import torch.nn as nn\n",
                                                  "import torch.nn as nn\nfrom torchvision import models\n", 1)
    assert _borrowed(code)
    assert "conv_bn(x, self.firstconv" not in fix_text(code, "model.py", rules("ADP007")).text
    # built with another norm: its members are not read
    assert not _borrowed(code.replace("models.resnet34()", "models.resnet34(norm_layer=nn.GroupNorm)"))
