"""Ways torchvision-style CNN code builds conv -> BatchNorm pairs that the layer typing did not
read (session 25, helper cnnforms; found by cnn31's probe, none in a blind file yet).  The
fixtures are ours.

- A same-file factory (or method) returning a ``(conv, bn)`` tuple unpacked into attributes:
  ``self.conv, self.bn = conv_bn(c, d)``: each attribute holds that element of the tuple, as
  ``conv, bn = conv_bn(...)`` into locals already did.
- Layer classes held as class attributes (``conv = nn.Conv2d`` in the class body, built as
  ``self.conv(...)``), also a same-file base's; not when a same-file subclass binds the name
  again (the code then runs with another class) or a method stores ``self.<name>``.
Near-misses: the tuple unpacked the other way round (BatchNorm first), an activation between,
the attribute overridden by a subclass.
"""

from __future__ import annotations

import textwrap

from corpus_forms import assert_bn_fold_matches, finding_at, found, rules

from adopter.synth import fix_text

PAIR_FACTORY = textwrap.dedent("""\
    import torch.nn as nn


    def conv_bn(cin, cout, stride=1):
        return nn.Conv2d(cin, cout, 3, stride, padding=1, bias=False), nn.BatchNorm2d(cout)


    class Block(nn.Module):
        def __init__(self, cin=3, cout=8):
            super().__init__()
            TARGETS = conv_bn(cin, cout)
            self.act = nn.ReLU()

        def forward(self, x):
            x = self.conv(x)
            BETWEEN
            return self.act(self.bn(x))  # pair
""")


def _pair_factory(targets="self.conv, self.bn", between="pass"):
    return PAIR_FACTORY.replace("TARGETS", targets).replace("BETWEEN", between)


def test_factory_pair_unpacked_into_attributes():
    code = _pair_factory()
    assert finding_at(code, "ADP007", "# pair") is not None
    fixed = fix_text(code, "model.py", rules("ADP007")).text
    assert "conv_bn(x, self.conv, self.bn)" in fixed.replace("adopter_kernels.", "")
    assert_bn_fold_matches(code, fixed, "Block", (), (2, 3, 8, 8))


def test_method_factory_pair_unpacked_into_attributes():
    code = textwrap.dedent("""\
        import torch.nn as nn


        class Block(nn.Module):
            def __init__(self, cin=3, cout=8):
                super().__init__()
                self.conv, self.bn = self._conv_bn(cin, cout)

            def _conv_bn(self, cin, cout):
                return nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout)

            def forward(self, x):
                return self.bn(self.conv(x))  # pair
    """)
    assert finding_at(code, "ADP007", "# pair") is not None
    fixed = fix_text(code, "model.py", rules("ADP007")).text
    assert_bn_fold_matches(code, fixed, "Block", (), (2, 3, 8, 8))


def test_factory_pair_near_misses():
    # unpacked the other way round: self.bn holds the conv, self.conv the BatchNorm
    assert found(_pair_factory(targets="self.bn, self.conv"), "ADP007") == []
    # an activation between
    assert found(_pair_factory(between="x = self.act(x)"), "ADP007") == []
    # a factory whose tuple is not (layer, layer): nothing known of its elements
    other = _pair_factory().replace("nn.BatchNorm2d(cout)", "cout")
    assert found(other, "ADP007") == []


CLASS_ATTRS = textwrap.dedent("""\
    import torch.nn as nn


    class Base(nn.Module):
        conv = nn.Conv2d
        norm = nn.BatchNorm2d


    class Block(Base):
        def __init__(self, cin=3, cout=8):
            super().__init__()
            self.c = self.conv(cin, cout, 3, padding=1, bias=False)
            self.n = self.norm(cout)

        def forward(self, x):
            return self.n(self.c(x))  # pair
    MORE
""")


def _class_attrs(more=""):
    return CLASS_ATTRS.replace("MORE", more)


def test_layer_classes_held_as_class_attributes():
    code = _class_attrs()
    assert finding_at(code, "ADP007", "# pair") is not None
    fixed = fix_text(code, "model.py", rules("ADP007")).text
    assert "conv_bn(x, self.c, self.n)" in fixed.replace("adopter_kernels.", "")
    assert_bn_fold_matches(code, fixed, "Block", (), (2, 3, 8, 8))
    # a subclass that keeps the classes: still known
    keeps = _class_attrs("\n\nclass Wide(Block):\n    expansion = 2\n")
    assert finding_at(keeps, "ADP007", "# pair") is not None


def test_class_attribute_near_misses():
    # a subclass overriding the norm with another class: Block's code runs with either
    assert found(_class_attrs("\n\nclass GNBlock(Block):\n    norm = nn.GroupNorm\n"), "ADP007") == []
    # bound twice in the body, or bound on the instance by a method
    assert found(_class_attrs().replace("norm = nn.BatchNorm2d", "norm = nn.BatchNorm2d\n    norm = nn.GroupNorm"),
                 "ADP007") == []
    stored = _class_attrs("\n    def set_norm(self, cls):\n        self.norm = cls\n")
    assert found(stored, "ADP007") == []
    # the BatchNorm first
    assert found(_class_attrs().replace("self.n(self.c(x))", "self.c(self.n(x))").replace(
        "self.n = self.norm(cout)", "self.n = self.norm(cin)"), "ADP007") == []
