"""Layers built by torchvision's documented ResNet pieces (adopter/structure/library_layers.py):
``conv3x3`` / ``conv1x1`` imported from ``torchvision.models.resnet``, the members of a
``torchvision.models.resnet50()`` held in ``self.backbone`` (or a local ``net``), and the
members a subclass of ``ResNet`` / ``Bottleneck`` inherits are typed as the library documents
them, so their conv-BN pairs are found.  Members of a held or inherited model are built by the
library: reported, not fixed.  A call that may change the members (``norm_layer=``, ``**kw``),
an undescribed model, or a same-named function of another package stays silent."""

from __future__ import annotations

import textwrap

from adopter.engine import analyze
from adopter.ruleset import load_rules, select_rules
from adopter.synth import fix_text

RULES = select_rules(load_rules(), ["ALL"])


def _lines(source: str, rule: str = "ADP007") -> list[int]:
    return sorted(f.line for f in analyze(source, "model.py", RULES).findings if f.rule == rule)


FACTORIES = textwrap.dedent('''
    import torch
    from torch import nn
    from torchvision.models.resnet import conv1x1, conv3x3


    class Block(nn.Module):
        def __init__(self, inplanes, planes, stride=1):
            super().__init__()
            self.conv1 = conv3x3(inplanes, planes, stride)
            self.bn1 = nn.BatchNorm2d(planes)
            self.relu = nn.ReLU(inplace=True)
            self.conv2 = conv1x1(planes, planes)
            self.bn2 = nn.BatchNorm2d(planes)
            self.down = nn.Sequential(conv1x1(inplanes, planes, stride), nn.BatchNorm2d(planes))

        def forward(self, x):
            out = self.relu(self.bn1(self.conv1(x)))
            out = self.bn2(self.conv2(out))
            return self.relu(out + self.down(x))
''')


def test_imported_factories_build_convolutions_and_their_pairs_are_fixed():
    assert _lines(FACTORIES) == [15, 18, 19]
    fixed = fix_text(FACTORIES, "model.py", RULES).text
    assert "conv_bn(x, self.conv1, self.bn1)" in fixed
    assert "conv_bn(out, self.conv2, self.bn2)" in fixed
    assert "FoldingSequential(conv1x1(inplanes, planes, stride)" in fixed


def test_a_same_named_factory_of_another_package_is_not_read():
    other = FACTORIES.replace("from torchvision.models.resnet import", "from mylib.blocks import")
    assert _lines(other) == []


HELD = textwrap.dedent('''
    import torch
    from torch import nn
    import torchvision
    from torchvision import models


    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.model = models.resnet50(weights=None)
            self.stem = nn.Sequential(self.model.conv1, self.model.bn1, self.model.relu)

        def forward(self, x):
            x = self.model.conv1(x)
            x = self.model.bn1(x)
            return x + self.stem(x)


    class Encoder(nn.Module):
        def __init__(self):
            super().__init__()
            net = torchvision.models.resnet34(pretrained=True)
            self.stem = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool)

        def forward(self, x):
            return self.stem(x)
''')


def test_members_of_a_held_resnet_are_typed_and_reported_not_fixed():
    assert _lines(HELD) == [12, 15, 24]
    result = fix_text(HELD, "model.py", RULES)
    assert result.text == HELD  # built by torchvision, not in this file: reported only


def test_a_held_model_built_with_other_norms_or_undescribed_is_not_read():
    assert _lines(HELD.replace("resnet50(weights=None)", "resnet50(norm_layer=norm)")
                  .replace("resnet34(pretrained=True)", "resnet34(**kwargs)")) == []
    assert _lines(HELD.replace("models.resnet50", "models.vgg16_bn")
                  .replace("torchvision.models.resnet34", "torchvision.models.densenet121")) == []


SUBCLASS = textwrap.dedent('''
    import torch
    from torch import nn
    from torchvision.models import ResNet
    from torchvision.models.resnet import BasicBlock, Bottleneck


    class Features(ResNet):
        def __init__(self):
            super().__init__(BasicBlock, [2, 2, 2, 2])

        def feature_maps(self, x):
            x = self.conv1(x)
            x = self.bn1(x)
            return self.maxpool(self.relu(x))


    class MyBlock(Bottleneck):
        def forward(self, x):
            out = self.relu(self.bn1(self.conv1(x)))
            return self.relu(self.bn3(self.conv3(out)) + x)
''')


def test_subclasses_of_resnet_pieces_inherit_the_documented_members():
    assert _lines(SUBCLASS) == [13, 20, 21]
    assert fix_text(SUBCLASS, "model.py", RULES).text == SUBCLASS
    frozen = SUBCLASS.replace("super().__init__(BasicBlock, [2, 2, 2, 2])",
                              "super().__init__(BasicBlock, [2, 2, 2, 2], norm_layer=norm)")
    assert _lines(frozen) == [20, 21]


CHANGED = textwrap.dedent('''
    import torch
    from torch import nn
    from torchvision import models
    from torchvision.models.resnet import ResNet, Bottleneck


    class Direct(nn.Module):
        def __init__(self, norm):
            super().__init__()
            self.backbone = ResNet(Bottleneck, [3, 4, 6, 3], 1000, False, 1, 64, None, norm)

        def forward(self, x):
            return self.backbone.bn1(self.backbone.conv1(x))


    class Swapped(nn.Module):
        def __init__(self):
            super().__init__()
            self.backbone = models.resnet18(weights=None)
            swap_norms(self.backbone)

        def forward(self, x):
            return self.backbone.bn1(self.backbone.conv1(x))


    class Set(nn.Module):
        def __init__(self):
            super().__init__()
            net = models.resnet18()
            setattr(net, "bn1", nn.Identity())
            self.stem = nn.Sequential(net.conv1, net.bn1, net.relu)

        def forward(self, x):
            return self.stem(x)


    class PositionalNorm(Bottleneck):
        def __init__(self, inplanes, planes, norm):
            super().__init__(inplanes, planes, 1, None, 1, 64, 1, norm)

        def forward(self, x):
            return self.bn1(self.conv1(x))


    class Kept(nn.Module):
        def __init__(self):
            super().__init__()
            self.backbone = models.resnet50(True)

        def forward(self, x):
            return self.backbone.bn1(self.backbone.conv1(x))
''')


def test_members_changed_or_chosen_by_the_caller_are_not_read():
    # a class built directly (handed a norm positionally), members swapped by a function or set by
    # setattr, a block given its norm positionally: only the untouched resnet50 of Kept is read
    assert _lines(CHANGED) == [52]


def test_a_same_file_factory_shadowing_the_import_is_read_as_its_own():
    shadowed = FACTORIES.replace("class Block(nn.Module):", '''def conv3x3(cin, cout, stride=1):
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.ReLU())


class Block(nn.Module):''')
    lines = _lines(shadowed)
    assert len(lines) == 2  # conv1x1's two pairs; conv3x3 is the file's own Conv-ReLU block
    assert "conv_bn(x, self.conv1" not in fix_text(shadowed, "model.py", RULES).text


# research131 (session 47): a ResNet subclass handing torchvision's constructor its leading
# parameters by keyword and ``norm_layer=norm_layer`` left at the subclass's None default (a
# matting encoder), and ``getattr(models, arch)(...)`` with ``arch="resnet34"`` a parameter's
# default (building-footprint networks): what the documented pieces build.
KEYWORD_SUPER = textwrap.dedent('''
    from torch import nn
    from torchvision.models.resnet import ResNet, Bottleneck


    class Encoder(ResNet):
        def __init__(self, in_channels, norm_layer=None):
            super().__init__(block=Bottleneck, layers=[3, 4, 6, 3],
                             replace_stride_with_dilation=[False, False, True], norm_layer=norm_layer)
            if in_channels != 3:
                self.conv1 = nn.Conv2d(in_channels, 64, 7, 2, 3, bias=False)

        def forward(self, x):
            x = self.conv1(x)
            x = self.bn1(x)
            return self.relu(x)
''')


def test_a_subclass_passing_keywords_at_their_defaults_inherits_the_documented_members():
    assert _lines(KEYWORD_SUPER) == [14]
    assert fix_text(KEYWORD_SUPER, "model.py", RULES).text == KEYWORD_SUPER  # the library's members


def test_a_norm_layer_rebound_or_defaulting_to_another_class_is_not_read():
    rebound = KEYWORD_SUPER.replace("        super().__init__(block",
                                    "        if norm_layer is None:\n            norm_layer = nn.GroupNorm\n"
                                    "        super().__init__(block")
    assert _lines(rebound) == []
    other = KEYWORD_SUPER.replace("norm_layer=None):", "norm_layer=nn.InstanceNorm2d):")
    assert _lines(other) == []
    unknown = KEYWORD_SUPER.replace("replace_stride_with_dilation=", "foo=")
    assert _lines(unknown) == []


GETATTR = textwrap.dedent('''
    from torch import nn
    from torchvision import models


    class Net(nn.Module):
        def __init__(self, arch="resnet34", pretrained=False):
            super().__init__()
            net = getattr(models, arch)(pretrained=pretrained)
            self.stem = nn.Sequential(net.conv1, net.bn1, net.relu)
            self.conv = net.conv1
            self.bn = net.bn1

        def forward(self, x):
            return self.bn(self.conv(x)) + self.stem(x)
''')


def test_getattr_of_the_library_module_with_a_known_key_is_that_factory():
    assert _lines(GETATTR) == [10, 15]


def test_getattr_with_an_undescribed_or_unknown_key_or_other_norms_stays_silent():
    assert _lines(GETATTR.replace('arch="resnet34"', 'arch="vgg11"')) == []
    assert _lines(GETATTR.replace('arch="resnet34"', 'arch')) == []
    assert _lines(GETATTR.replace("(pretrained=pretrained)", "(norm_layer=nn.InstanceNorm2d)")) == []
    assert _lines(GETATTR.replace("from torchvision import models", "from mylib import models")) == []


FUNCTION_HOLDER = textwrap.dedent('''
    import torch
    from torch import nn
    from torchvision import models


    def stem(pretrained):
        net = models.resnet50(pretrained=pretrained)
        extractor = nn.Sequential()
        extractor.add_module("0", net.conv1)
        extractor.add_module("1", net.bn1)
        extractor.add_module("2", net.relu)
        return extractor


    def direct(pretrained):
        net = models.resnet18(pretrained=pretrained)
        return nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool)


    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = stem(True)
            self.b = direct(False)

        def forward(self, x):
            return self.b(self.a(x))
''')


def test_a_local_model_in_a_module_level_function_is_read_in_that_function():
    # the holder ``net`` is local to the function: the function's own text says whether its
    # members change (a module-level function has no class text to read)
    assert _lines(FUNCTION_HOLDER) == [10, 18]
    assert fix_text(FUNCTION_HOLDER, "model.py", RULES).text == FUNCTION_HOLDER  # built by torchvision


def test_a_local_model_changed_in_its_function_stays_silent():
    swapped = FUNCTION_HOLDER.replace(
        "    extractor = nn.Sequential()\n",
        "    net.bn1 = nn.GroupNorm(32, 64)\n    extractor = nn.Sequential()\n").replace(
        "    return nn.Sequential(net.conv1",
        "    convert_norms(net)\n    return nn.Sequential(net.conv1")
    assert _lines(swapped) == []
    # bn1 before conv1: no conv-BN pair
    assert _lines(FUNCTION_HOLDER.replace('add_module("0", net.conv1)', 'add_module("0", net.@)')
                  .replace('add_module("1", net.bn1)', 'add_module("1", net.conv1)').replace("@", "bn1")
                  .replace("net.conv1, net.bn1, net.relu", "net.bn1, net.conv1, net.relu")) == []
