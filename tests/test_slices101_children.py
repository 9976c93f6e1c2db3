"""Children slices of a torchvision ResNet and subclasses forwarding their own ``**kwargs``
(session 48, slices101).

``nn.Sequential(*list(net.children())[:3])``, ``layers = list(net.children())`` then
``nn.Sequential(*layers[:3])``, and ``nn.Sequential(*list(net.children()))[:3]`` keep a described
library model's first children in its registration order (library_layers.CHILDREN: conv1, bn1,
relu, maxpool, ...): conv1 -> bn1 is a conv-BN pair built by the library, reported, not fixed.
A slice that leaves one of the two out, a list reordered or a holder changed after it is built
stays silent.  A ResNet subclass whose ``super().__init__`` spreads its own untouched
``**kwargs`` builds the documented members at that default."""

from __future__ import annotations

import ast
import textwrap

from adopter.engine import analyze
from adopter.ruleset import load_rules, select_rules
from adopter.structure import library_layers
from adopter.synth import fix_text

RULES = select_rules(load_rules(), ["ALL"])


def _lines(source: str, rule: str = "ADP007") -> list[int]:
    return sorted(f.line for f in analyze(source, "model.py", RULES).findings if f.rule == rule)


CHILDREN = textwrap.dedent('''
    import torch
    from torch import nn
    import torchvision
    from torchvision import models


    class HeldList(nn.Module):
        def __init__(self):
            super().__init__()
            self.base = models.resnet18(pretrained=False)
            self.base_layers = list(self.base.children())
            self.layer0 = nn.Sequential(*self.base_layers[:3])
            self.layer1 = nn.Sequential(*self.base_layers[3:5])

        def forward(self, x):
            return self.layer1(self.layer0(x))


    class SlicedContainer(nn.Module):
        def __init__(self):
            super().__init__()
            net = torchvision.models.resnet50(weights=None)
            self.stem = nn.Sequential(*list(net.children()))[:3]
            self.pool = list(net.children())[3]

        def forward(self, x):
            return self.pool(self.stem(x))


    class Whole(nn.Module):
        def __init__(self):
            super().__init__()
            net = torchvision.models.resnet34()
            self.body = nn.Sequential(*list(net.children())[:-2])

        def forward(self, x):
            return self.body(x)
''')


def test_children_slices_of_a_described_resnet_keep_conv1_then_bn1():
    assert _lines(CHILDREN) == [13, 24, 35]
    assert fix_text(CHILDREN, "model.py", RULES).text == CHILDREN  # the library's layers: reported


LOOK_ALIKES = textwrap.dedent('''
    import torch
    from torch import nn
    import torchvision


    class Skips(nn.Module):
        def __init__(self):
            super().__init__()
            net = torchvision.models.resnet50()
            self.a = nn.Sequential(*list(net.children())[1:3])
            self.b = nn.Sequential(*list(net.children())[:1], *list(net.children())[2:4])
            self.c = nn.Sequential(*list(net.children()))[1:4]

        def forward(self, x):
            return self.c(self.b(self.a(x)))


    class Changed(nn.Module):
        def __init__(self):
            super().__init__()
            net = torchvision.models.resnet50()
            net.bn1 = nn.Identity()
            self.stem = nn.Sequential(*list(net.children())[:3])

        def forward(self, x):
            return self.stem(x)


    class Reordered(nn.Module):
        def __init__(self):
            super().__init__()
            net = torchvision.models.resnet18()
            layers = list(net.children())
            layers.insert(1, nn.ReLU())
            self.stem = nn.Sequential(*layers[:3])

        def forward(self, x):
            return self.stem(x)


    class OtherNorm(nn.Module):
        def __init__(self, norm):
            super().__init__()
            net = torchvision.models.resnet18(norm_layer=norm)
            self.stem = nn.Sequential(*list(net.children())[:3])

        def forward(self, x):
            return self.stem(x)


    class NotALibrary(nn.Module):
        def __init__(self, net):
            super().__init__()
            self.stem = nn.Sequential(*list(net.children())[:3])

        def forward(self, x):
            return self.stem(x)
''')


def test_slices_without_the_pair_and_changed_or_unknown_holders_stay_silent():
    assert _lines(LOOK_ALIKES) == []


def test_the_described_child_order_follows_the_description_s_own_bindings():
    # the members the description binds appear in CHILDREN in the order its __init__ binds them
    order = library_layers.CHILDREN["torchvision.models.resnet.ResNet"]
    tree = ast.parse(library_layers.MODULES["torchvision.models.resnet"])
    resnet = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "ResNet")
    bound = [t.attr for s in ast.walk(resnet) if isinstance(s, ast.Assign)
             for t in s.targets if isinstance(t, ast.Attribute)]
    assert bound == [m for m in order if m in bound]
    assert order[:3] == ("conv1", "bn1", "relu")
    assert library_layers.children("torchvision.models.ResNet") == order  # the re-export
    assert library_layers.children("torchvision.models.vgg.VGG") is None


KWARGS_SUPER = textwrap.dedent('''
    from torch import nn
    from torchvision.models.resnet import ResNet, BasicBlock


    class Features(ResNet):
        def __init__(self, num_classes=1000, **kwargs):
            super().__init__(block=BasicBlock, layers=[2, 2, 2, 2], num_classes=num_classes, **kwargs)

        def feature_maps(self, x):
            x = self.conv1(x)
            x = self.bn1(x)
            return self.relu(x)
''')


def test_a_subclass_spreading_its_own_untouched_kwargs_inherits_the_documented_members():
    assert _lines(KWARGS_SUPER) == [11]  # conv1 (line 11) into bn1
    assert fix_text(KWARGS_SUPER, "model.py", RULES).text == KWARGS_SUPER


def test_kwargs_changed_or_not_the_subclass_s_own_stay_silent():
    changed = KWARGS_SUPER.replace("        super().__init__(block",
                                   "        kwargs.setdefault('norm_layer', nn.GroupNorm)\n"
                                   "        super().__init__(block")
    assert _lines(changed) == []
    other = KWARGS_SUPER.replace("**kwargs)\n", "**options)\n").replace("**kwargs):", "options=None, **kwargs):")
    assert _lines(other) == []
