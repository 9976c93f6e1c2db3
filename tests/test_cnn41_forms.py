"""Forms found while checking the blind batch cnn41 (CNNs inside packages whose main job is
something else: pose estimation, EM and microscopy segmentation, document layout, beat
tracking, optimizer benchmarks).  The fixtures are ours.

- A norm class taken from a parameter without a usable default (``BatchNorm=None`` on the
  model, no default on its factories) whose one construction in the file is module-level
  code -- an ``if __name__ == "__main__":`` demo building ``Net(BatchNorm=nn.BatchNorm2d)``
  (the DeepLab-v3+ MobileNetV2 backbone of doclayout-yolo).  The file's callers were looked
  for in its functions and methods only; module-level code is a construction in the file
  like any other, so its calls now count among the callers (their arguments read with the
  module-level names).
- A block class called through a local name bound to it (``block = InvertedResidual``, then
  ``block(inp, oup, stride, dilation, t, BatchNorm)`` in the stage loop): that call builds the
  class, so what it passes is what the class's parameters hold.
- A module whose forward returns an ``nn.Sequential`` member ending in a Conv2d (empanada's
  ``SeparableConv2d``: ``self.sepconv = nn.Sequential(depthwise Conv2d, pointwise Conv2d)``,
  ``return self.sepconv(x)``), then a BatchNorm2d: the module's output is that last
  convolution's, as for an attribute ending in one.  Reported, not fixed (the conv sits
  inside the module).
  Only for a parameter the layer cannot be built without (no default, or a ``None`` default
  the body never tests): a demo that passes a norm for an optional one (``norm_op=None``, then
  ``if norm_op is not None:``; nnU-Net's ConvDropoutNormReLU, labelled ``no``) does not turn on
  a layer that is off by default.
Near-misses: the demo passes a norm that is not a BatchNorm (InstanceNorm2d), a demo inside a
function (the module-level reading leaves definitions to their own callers), a demo turning on
an optional norm, a local alias bound to another class, a Sequential ending in an activation,
a module that scales its container's output before returning it.
"""

from __future__ import annotations

from corpus_forms import assert_bn_fold_matches, finding_at, found, rules

from adopter.synth import fix_text

DEMO = """\
import torch.nn as nn


def conv_bn(inp, oup, stride, BatchNorm):
    return nn.Sequential(
        nn.Conv2d(inp, oup, 3, stride, 1, bias=False),
        BatchNorm(oup),
        nn.ReLU6(inplace=True),
    )


class Net(nn.Module):
    def __init__(self, BatchNorm=None):
        super().__init__()
        self.features = nn.Sequential(conv_bn(3, 8, 2, BatchNorm), nn.Conv2d(8, 4, 1))

    def forward(self, x):
        return self.features(x)


if __name__ == "__main__":
    model = Net(BatchNorm=nn.BatchNorm2d)
"""

ALIAS = """\
import torch.nn as nn


class Block(nn.Module):
    def __init__(self, cin, cout, stride, BatchNorm):
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(cin, cout, 3, stride, 1, bias=False),
            BatchNorm(cout),
            nn.ReLU6(inplace=True),
        )

    def forward(self, x):
        return self.conv(x)


class Net(nn.Module):
    def __init__(self, BatchNorm=nn.BatchNorm2d, widths=(4, 6, 8)):
        super().__init__()
        block = Block
        layers = []
        cin = 3
        for width in widths:
            layers.append(block(cin, width, 1, BatchNorm))
            cin = width
        self.features = nn.Sequential(*layers)

    def forward(self, x):
        return self.features(x)
"""

SEPARABLE = """\
import torch.nn as nn


class SeparableConv2d(nn.Module):
    def __init__(self, nin, nout, kernel_size=3, stride=1, bias=True):
        super().__init__()
        padding = (kernel_size - 1) // 2
        self.sepconv = nn.Sequential(
            nn.Conv2d(nin, nin, kernel_size, stride=stride, padding=padding, groups=nin, bias=bias),
            nn.Conv2d(nin, nout, 1, stride=1, bias=bias),
        )

    def forward(self, x):
        x = self.sepconv(x)
        return x


def separable_conv_bn_act(nin, nout, kernel_size, stride=1, activation=nn.ReLU(inplace=True)):
    layers = [
        SeparableConv2d(nin, nout, kernel_size, stride, bias=False),
        nn.BatchNorm2d(nout),
    ]
    if activation is not None:
        layers.append(activation)
    return nn.Sequential(*layers)


class Head(nn.Module):
    def __init__(self, c=8):
        super().__init__()
        self.fusion = separable_conv_bn_act(c, c, 5)

    def forward(self, x):
        return self.fusion(x)
"""


def test_norm_class_from_a_module_level_demo_is_a_pair():
    assert finding_at(DEMO, "ADP007", "        BatchNorm(oup),") is not None
    assert len(found(DEMO, "ADP007")) == 1


def test_norm_class_from_a_module_level_demo_fix_folds_exactly():
    fixed = fix_text(DEMO, "model.py", rules("ADP007")).text
    assert "return FoldingSequential(" in fixed
    # (the demo does not run under exec: the test builds the class as the demo does)
    from torch import nn

    assert_bn_fold_matches(DEMO, fixed, "Net", (nn.BatchNorm2d,), (2, 3, 9, 9))


def test_module_level_call_without_a_demo_block_counts_too():
    code = DEMO.replace('if __name__ == "__main__":\n    model = Net(BatchNorm=nn.BatchNorm2d)\n',
                        "model = Net(BatchNorm=nn.BatchNorm2d)\n")
    assert code != DEMO
    assert finding_at(code, "ADP007", "        BatchNorm(oup),") is not None


def test_module_level_demo_with_another_norm_is_not_a_pair():
    code = DEMO.replace("Net(BatchNorm=nn.BatchNorm2d)", "Net(BatchNorm=nn.InstanceNorm2d)")
    assert code != DEMO
    assert found(code, "ADP007") == []


def test_demo_inside_a_function_body_is_read_as_before():
    # a function the file never calls: its call of Net is a caller as it always was, and
    # module-level code holds no second one
    code = DEMO.replace('if __name__ == "__main__":\n    model = Net(BatchNorm=nn.BatchNorm2d)\n',
                        "def demo():\n    return Net(BatchNorm=nn.InstanceNorm2d)\n")
    assert code != DEMO
    assert found(code, "ADP007") == []


def test_no_construction_in_the_file_says_nothing():
    code = DEMO.replace('if __name__ == "__main__":\n    model = Net(BatchNorm=nn.BatchNorm2d)\n', "")
    assert code != DEMO
    assert found(code, "ADP007") == []


OPTIONAL = """\
import torch.nn as nn


class ConvNorm(nn.Module):
    def __init__(self, conv_op, cin, cout, norm_op=None, nonlin=None):
        super().__init__()
        ops = [conv_op(cin, cout, 3, padding=1)]
        if norm_op is not None:
            ops.append(norm_op(cout))
        if nonlin is not None:
            ops.append(nonlin())
        self.all_modules = nn.Sequential(*ops)

    def forward(self, x):
        return self.all_modules(x)


if __name__ == "__main__":
    model = ConvNorm(nn.Conv2d, 3, 8, nn.BatchNorm2d, nn.ReLU)
"""


def test_demo_turning_on_an_optional_norm_is_not_a_pair():
    assert found(OPTIONAL, "ADP007") == []


def test_none_default_called_unguarded_takes_the_demo_value():
    # the same class whose body calls norm_op without testing it: None cannot be called, so
    # the demo's BatchNorm2d is what it holds
    code = OPTIONAL.replace("        if norm_op is not None:\n            ops.append(norm_op(cout))\n",
                            "        ops.append(norm_op(cout))\n")
    assert code != OPTIONAL
    assert finding_at(code, "ADP007", "ops.append(norm_op(cout))") is not None


def test_block_called_through_a_local_alias_is_a_pair():
    assert finding_at(ALIAS, "ADP007", "            BatchNorm(cout),") is not None
    fixed = fix_text(ALIAS, "model.py", rules("ADP007")).text
    assert "self.conv = FoldingSequential(" in fixed
    assert_bn_fold_matches(ALIAS, fixed, "Net", (), (2, 3, 7, 7))


def test_local_alias_of_another_class_is_not_a_call_of_the_block():
    # Block is then built nowhere in the file: its BatchNorm parameter holds nothing known
    other = (
        "class Other(nn.Module):\n"
        "    def __init__(self, cin, cout, stride, BatchNorm):\n"
        "        super().__init__()\n"
        "        self.conv = nn.Conv2d(cin, cout, 3, stride, 1)\n\n"
        "    def forward(self, x):\n"
        "        return self.conv(x)\n\n\n"
        "class Net(nn.Module):"
    )
    code = ALIAS.replace("        block = Block\n", "        block = Other\n").replace("class Net(nn.Module):", other)
    assert code != ALIAS
    assert found(code, "ADP007") == []


def test_module_ending_in_a_sequential_conv_then_batch_norm_is_a_pair():
    finding = finding_at(SEPARABLE, "ADP007", "        nn.BatchNorm2d(nout),")
    assert finding is not None
    assert len(found(SEPARABLE, "ADP007")) == 1


def test_module_ending_in_a_sequential_activation_is_not_a_pair():
    code = SEPARABLE.replace("            nn.Conv2d(nin, nout, 1, stride=1, bias=bias),\n",
                             "            nn.Conv2d(nin, nout, 1, stride=1, bias=bias),\n            nn.ReLU(),\n")
    assert code != SEPARABLE
    assert found(code, "ADP007") == []


def test_module_scaling_its_container_output_is_not_a_pair():
    code = SEPARABLE.replace("        x = self.sepconv(x)\n        return x\n",
                             "        x = self.sepconv(x)\n        return x * 2\n")
    assert code != SEPARABLE
    assert found(code, "ADP007") == []


def test_module_ending_in_a_sequential_conv_held_by_an_attribute_is_a_pair():
    code = """\
import torch.nn as nn


class SepConv(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(cin, cin, 3, padding=1, groups=cin), nn.Conv2d(cin, cout, 1))

    def forward(self, x):
        return self.body(x)


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv = SepConv(c, c)
        self.bn = nn.BatchNorm2d(c)
        self.act = nn.ReLU()

    def forward(self, x):
        return self.act(self.bn(self.conv(x)))
"""
    assert finding_at(code, "ADP007", "return self.act(self.bn(self.conv(x)))") is not None
    # reported, not fixed: the convolution sits inside the module
    fixed = fix_text(code, "model.py", rules("ADP007")).text
    assert fixed == code
