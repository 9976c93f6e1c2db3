"""Forms found missing while checking the blind batch cnn29 (torchvision-style CNNs of
fourteen packages new to the corpus: MobileOne and MobileNet blocks, a YAMNet audio CNN, 3-D
video ResNets, a CRNN OCR backbone, pose ResNets, BiSeNet face parsing, darknet layer
wrappers).  The fixtures are ours.

- An ``nn.ModuleList([conv, bn, act])`` display whose members forward calls by literal index
  (``x = self.layers[0](x)``, ``x = self.layers[1](x)``): the member at that position, as a
  Sequential's member is.  Reported, not fixed: the members are no Sequential's.
- A Conv2d subclass (a TF "SAME"-padding port) whose forward returns, on each of its ways out,
  ``self.forward_func(x, padding=...)``, ``self.forward_func`` a lambda ``__init__`` binds to
  ``F.conv2d(input, self.weight, self.bias, ...)``; handed to a conv-BN wrapper through a
  constructor parameter without default that every caller fills with one.  Reported, not
  fixed: its forward is its own.
Near-misses (ModuleList): the BatchNorm first in the list, an activation between (called out of list
order), a member moved by ``insert`` or replaced by item assignment, the attribute bound again,
a run-time index, and an ``nn.Sequential`` called by index (unchanged: any member).
Near-misses (lambda): the weight scaled in the lambda, one way out returning the input, the
input read with the weight, the lambda bound twice, a Conv1d subclass.
"""

from __future__ import annotations

import textwrap

from corpus_forms import finding_at, found, rules

from adopter.synth import fix_text

MODULE_LIST = textwrap.dedent("""\
    import torch
    from torch import nn


    class ConvNorm(nn.Module):
        def __init__(self, cin, cout, k=3, conv=nn.Conv2d, momentum=0.1):
            super().__init__()
            self.layers = CONTAINER([
                conv(cin, cout, k, 1, k // 2, bias=False),
                nn.BatchNorm2d(cout, momentum=momentum),
                nn.ReLU(inplace=True),
            ])
            AFTER

        def forward(self, x):
            x = self.layers[FIRST](x)
            x = self.layers[SECOND](x)  # pair
            x = self.layers[THIRD](x)
            return x
""")


def _code(container="nn.ModuleList", after="pass", first="0", second="1", third="2"):
    return (MODULE_LIST.replace("CONTAINER", container).replace("AFTER", after).replace("FIRST", first)
            .replace("SECOND", second).replace("THIRD", third))


def test_module_list_members_called_by_index():
    code = _code()
    assert finding_at(code, "ADP007", "# pair") is not None
    # reported, not fixed: the members are picked by index from a ModuleList
    assert fix_text(code, "model.py", rules("ADP007")).text == code
    # members appended after the display keep every position
    appended = _code(after="self.layers.append(nn.Dropout(0.1))")
    assert finding_at(appended, "ADP007", "# pair") is not None
    # a tuple display and a plain Conv2d
    tupled = _code().replace("self.layers = nn.ModuleList([", "self.layers = nn.ModuleList((").replace(
        "        ])\n", "        ))\n", 1).replace("conv(cin, cout", "nn.Conv2d(cin, cout")
    assert finding_at(tupled, "ADP007", "# pair") is not None


def test_module_list_by_index_near_misses():
    # the BatchNorm first: the list called in reverse order is BN -> conv
    assert found(_code(first="1", second="0"), "ADP007") == []
    # an activation between: conv, then the ReLU, then the BatchNorm
    assert found(_code(second="2", third="1"), "ADP007") == []
    # a member inserted in front: position 0 is no longer the conv
    assert found(_code(after="self.layers.insert(0, nn.Identity())"), "ADP007") == []
    # the BatchNorm replaced by item assignment
    assert found(_code(after="self.layers[1] = nn.Identity()"), "ADP007") == []
    # the attribute bound again (another list)
    rebound = _code(after="self.layers = nn.ModuleList([nn.ReLU(), nn.Identity(), nn.ReLU()])")
    assert found(rebound, "ADP007") == []


def test_module_list_run_time_index_and_indexed_sequential_unchanged():
    # a run-time index: any member (mixed kinds, no pair), as before
    code = _code().replace("x = self.layers[0](x)", "i = int(x.shape[0] > 0) - 1\n        x = self.layers[i + 1](x)")
    assert found(code, "ADP007") == []
    # an nn.Sequential called member by member: forward's calls are not read by position (the
    # Sequential's own pair is its construction's, reported there as before)
    indexed = _code(container="nn.Sequential", after="pass").replace("nn.Sequential([", "nn.Sequential(*[")
    assert finding_at(indexed, "ADP007", "# pair") is None


# ---------- a Conv2d subclass computing through a lambda attribute, on every way out

LAMBDA_CONV = textwrap.dedent("""\
    import torch
    import torch.nn.functional as F
    from torch import nn


    class SameConv(nn.Conv2d):
        def __init__(self, *args, **kwargs):
            mode = kwargs.pop("padding", "SAME")
            super().__init__(*args, **kwargs)
            self.mode = mode
            self.run = lambda inp, pad: F.conv2d(inp, WEIGHT, self.bias, self.stride, padding=pad,
                                                 dilation=self.dilation, groups=self.groups)
            AGAIN

        def forward(self, x):
            if self.mode == "VALID":
                return OTHER
            total = max(self.kernel_size[0] - self.stride[0], 0)
            if total % 2:
                x = F.pad(x, [0, 1, 0, 1])
            return self.run(INPUT, pad=total // 2)


    class Unit(nn.Module):
        def __init__(self, conv):
            super().__init__()
            self.conv = conv
            self.bn = nn.BatchNorm2d(conv.out_channels, eps=1e-4)

        def forward(self, x):
            x = self.conv(x)
            x = self.bn(x)  # pair
            return torch.relu(x)


    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = Unit(SameConv(1, 8, 3, stride=2, bias=False))
            self.b = Unit(SameConv(8, 8, 3, groups=8, bias=False))

        def forward(self, x):
            return self.b(self.a(x))
""")


def _lambda(weight="self.weight", other="self.run(x, pad=0)", inp="x", again="pass"):
    return (LAMBDA_CONV.replace("WEIGHT", weight).replace("OTHER", other).replace("INPUT", inp)
            .replace("AGAIN", again))


def test_conv_subclass_returning_a_lambda_conv_on_every_path():
    code = _lambda()
    assert finding_at(code, "ADP007", "# pair") is not None
    # its own forward: reported, not fixed
    assert fix_text(code, "model.py", rules("ADP007")).text == code


def test_lambda_conv_near_misses():
    # the weight scaled inside the lambda: not the module's convolution
    assert found(_lambda(weight="self.weight * 2"), "ADP007") == []
    # one way out returns the input itself
    assert found(_lambda(other="x"), "ADP007") == []
    # the input read with the module's weight
    assert found(_lambda(inp="x + self.weight.mean()"), "ADP007") == []
    # the lambda bound again (another computation may stand there)
    assert found(_lambda(again="self.run = lambda inp, pad: inp"), "ADP007") == []
    # a Conv1d subclass with conv1d and BatchNorm1d: not the 2-D pair
    one_d = _lambda().replace("nn.Conv2d", "nn.Conv1d").replace("F.conv2d", "F.conv1d").replace(
        "nn.BatchNorm2d", "nn.BatchNorm1d").replace("[0, 1, 0, 1]", "[0, 1]")
    assert found(one_d, "ADP007") == []
