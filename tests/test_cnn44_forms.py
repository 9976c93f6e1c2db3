"""Forms found while checking the blind batches cnn44 (classification backbones and training
recipes written by hand: airbench's CIFAR nets, stochastic-depth ResNets, a VAE encoder, a
zoo of one-letter aliases, domain-adaptation heads, dataset-distillation networks; then a
zoo built on its own blocks module and a federated-learning model zoo).  The fixtures are ours.

- A Conv2d subclass whose forward ends in an ``if``/``else`` whose arms each return the
  convolution's output (glasses' ``Conv2dPad``: ``if self.mode == "same":`` pad the input,
  then ``return F.conv2d(x, self.weight, self.bias, self.stride, ...)``, ``else: return
  super().forward(x)``).  Only a single way out was read, so the class was no layer and a
  BatchNorm after it no pair.  Each arm is now read as the forward's body (the statements before
  the ``if``, then the arm; ``elif`` nested): when every arm returns the same layer's output, the
  module's output is that layer's (reported, not fixed: its forward is its own).
- A same-file class of that kind held by a constructor parameter and called through it
  (``ConvBnAct(nn.Sequential)`` with ``conv: nn.Module = Conv2dPad`` and ``normalization=
  nn.BatchNorm2d``, filled by ``add_module``).  A class called by its name was typed both as
  the module and as the convolution's output; called through a name holding it, only as the
  module.  It is now typed the same both ways.
Near-misses: an arm returning the input itself, an arm convolving with a masked weight, an
``if`` without ``else`` (the value after it is no arm's), a parameter whose class is a plain
module: none is read as a convolution's output.
"""

from __future__ import annotations

from corpus_forms import finding_at, found, rules

from adopter.synth import fix_text

PAD = """\
import torch.nn as nn
import torch.nn.functional as F


class Conv2dPad(nn.Conv2d):
    def __init__(self, *args, mode="auto", **kwargs):
        super().__init__(*args, **kwargs)
        self.mode = mode

    def forward(self, x):
        if self.mode == "same":
            x = F.pad(x, [1, 1, 1, 1])
            return F.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)
        {orelse}
"""

ELSE = "else:\n            return super().forward(x)"


def pad(orelse: str = ELSE) -> str:
    return PAD.replace("{orelse}", orelse)


def block(orelse: str = ELSE) -> str:
    return pad(orelse) + """

class Block(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.conv = Conv2dPad(cin, cout, 3, padding=1)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x):
        return self.bn(self.conv(x))
"""


def conv_bn_act(pad_code: str, default: str = "Conv2dPad") -> str:
    return pad_code + f"""

class ConvBnAct(nn.Sequential):
    def __init__(self, cin, cout, activation=nn.ReLU, conv={default}, normalization=nn.BatchNorm2d,
                 bias=False, **kwargs):
        super().__init__()
        self.add_module("conv", conv(cin, cout, **kwargs, bias=bias))
        if normalization:
            self.add_module("bn", normalization(cout))
        if activation:
            self.add_module("act", activation())
"""


def _pair(code: str, needle: str) -> bool:
    return finding_at(code, "ADP007", needle) is not None


def test_conv_subclass_whose_if_else_arms_each_return_the_conv_is_a_conv():
    assert _pair(block(), "return self.bn(self.conv(x))")


def test_elif_arms_are_read_nested():
    orelse = ("elif self.mode == \"valid\":\n            return super().forward(x)\n"
              "        else:\n            return self._conv_forward(x, self.weight, self.bias)")
    assert _pair(block(orelse), "return self.bn(self.conv(x))")


def test_such_a_pair_is_reported_not_rewritten():
    code = block()
    assert len(found(code, "ADP007")) == 1
    assert fix_text(code, "model.py", rules("ADP007")).text == code


def test_sequential_subclass_with_that_class_as_a_parameter_default():
    # glasses' ConvBnAct: add_module("conv", conv(...)) with conv=Conv2dPad, then the norm
    assert _pair(conv_bn_act(pad()), 'self.add_module("bn", normalization(cout))')


def test_parameter_default_padding_conv_with_one_way_out():
    one_way = pad().replace(
        '        if self.mode == "same":\n            x = F.pad(x, [1, 1, 1, 1])\n            return F.conv2d(',
        "        x = F.pad(x, [1, 1, 1, 1])\n        return F.conv2d(").replace("        {orelse}\n", "")
    one_way = one_way.replace("        else:\n            return super().forward(x)\n", "")
    assert "if self.mode" not in one_way
    assert _pair(conv_bn_act(one_way), 'self.add_module("bn", normalization(cout))')


def test_near_miss_an_arm_returning_its_input_is_no_conv():
    assert not found(block("else:\n            return x"), "ADP007")


def test_near_miss_an_arm_with_a_masked_weight_is_no_conv():
    orelse = "else:\n            return F.conv2d(x, self.weight * 0.5, self.bias, self.stride, self.padding)"
    assert not found(block(orelse), "ADP007")


def test_near_miss_an_if_without_else_is_no_arm_reading():
    code = block("").replace(
        "            return F.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)\n",
        "            x = F.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)\n"
        "        return x.relu()\n")
    assert not found(code, "ADP007")


def test_near_miss_a_parameter_default_that_is_a_plain_module_is_no_conv():
    plain = pad("else:\n            return super().forward(x)") + """

class Mix(nn.Module):
    def __init__(self, cin, cout, bias=False):
        super().__init__()
        self.a = nn.Conv2d(cin, cout, 3, bias=bias)

    def forward(self, x):
        return self.a(x) + x
"""
    assert not found(conv_bn_act(plain, default="Mix"), "ADP007")
