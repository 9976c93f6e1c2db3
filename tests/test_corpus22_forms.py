"""Forms found missing while checking the blind batch corpus22 (torchvision-style CNNs of five
packages new to the corpus: continual-learning ResNets and MLPs, audio CNNs, salient-object
and OCR backbones).  The fixtures are ours.

- A list of ``(name, layer)`` pairs filled in a loop and passed as ``nn.Sequential(OrderedDict(
  pairs))``, the names written with ``%``-formatting (``("fc_%d" % i, nn.Linear(...))``) or
  ``str.format`` rather than an f-string: the list builder took a pair as a named member only
  when its name was a string literal or an f-string, so such a pair became one untyped member
  and the whole list was no list of pairs (``OrderedDict(pairs)`` then had no members): the
  Linear -> BatchNorm1d pair (ADP008) and the Conv2d -> BatchNorm2d pair (ADP007) went
  unreported.  A pair's name is any expression that computes a string from a string literal
  (``%``, ``+``, ``.format``, ``str(...)``), read in ``_pair_name``.  Near-misses: a tuple whose
  first item is no string (a layer pair ``(conv, bn)`` put in as one member), an activation
  between the two layers.  (A BatchNorm appended only under a flag that defaults to off is
  reported with f-string names too: such pairs are ``skip`` labels, not this form's concern.)
"""

from __future__ import annotations

import pytest

from adopter.synth import fix_text
from corpus_forms import finding_at, found, rules

MLP = """\
from collections import OrderedDict

import torch
from torch import nn


class MLP(nn.Module):
    def __init__(self, sizes=(12, 16, 8), last_bn=True):
        super().__init__()
        pairs = []
        for i in range(len(sizes) - 1):
            pairs.append((NAME_LINEAR, nn.Linear(sizes[i], sizes[i + 1])))
            if i < len(sizes) - 2 or last_bn:
                BETWEEN
                pairs.append((NAME_BN, nn.BatchNorm1d(sizes[i + 1])))  # pair
                pairs.append(("act_%d" % i, nn.ReLU()))
        self.body = nn.Sequential(OrderedDict(pairs))

    def forward(self, x):
        return self.body(x)
"""

NAMES = {
    "percent": ('"fc_%d" % i', '"bn_%d" % i'),
    "format": ('"fc_{}".format(i)', '"bn_{}".format(i)'),
    "concat": ('"fc_" + str(i)', '"bn_" + str(i)'),
}


def _mlp(kind: str, between: str = "pass", last_bn: str = "True") -> str:
    linear, bn = NAMES[kind]
    return (MLP.replace("NAME_LINEAR", linear).replace("NAME_BN", bn).replace("BETWEEN", between)
            .replace("last_bn=True", f"last_bn={last_bn}"))


@pytest.mark.parametrize("kind", sorted(NAMES))
def test_linear_batchnorm_pairs_named_by_formatting_are_found(kind):
    code = _mlp(kind)
    assert finding_at(code, "ADP008", "# pair") is not None


def test_linear_batchnorm_pair_named_by_formatting_fix_matches_in_float64():
    import torch

    code = _mlp("percent")
    fixed = fix_text(code, "model.py", rules("ADP008")).text
    assert fixed != code
    original, patched = {}, {}
    exec(compile(code, "orig.py", "exec"), original)  # noqa: S102 (our own fixture)
    exec(compile(fixed, "fixed.py", "exec"), patched)  # noqa: S102
    torch.manual_seed(0)
    a = original["MLP"]().double()
    b = patched["MLP"]().double()
    with torch.no_grad():
        for m in a.modules():
            if isinstance(m, torch.nn.BatchNorm1d):
                m.running_mean.uniform_(-1, 1)
                m.running_var.uniform_(0.5, 2)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-1, 1)
    b.load_state_dict(a.state_dict(), strict=False)
    a.eval()
    b.eval()
    x = torch.randn(5, 12, dtype=torch.float64)
    with torch.no_grad():
        # float64, reductions of 12-16 terms: far below 1e-10
        torch.testing.assert_close(b(x), a(x), rtol=0, atol=1e-10)


def test_formatted_names_near_miss_activation_between():
    code = _mlp("percent", between='pairs.append(("pre_%d" % i, nn.ReLU()))')
    assert finding_at(code, "ADP008", "# pair") is None


CONVS = """\
from collections import OrderedDict

from torch import nn


class Stem(nn.Module):
    def __init__(self, widths=(3, 8, 16)):
        super().__init__()
        items = []
        for i in range(len(widths) - 1):
            items.append(("conv%d" % i, nn.Conv2d(widths[i], widths[i + 1], 3, padding=1, bias=False)))
            items.append(("norm%d" % i, nn.BatchNorm2d(widths[i + 1])))  # conv-pair
            items.append(("relu%d" % i, nn.ReLU(inplace=True)))
        self.stem = nn.Sequential(OrderedDict(items))

    def forward(self, x):
        return self.stem(x)
"""


def test_conv_batchnorm_pairs_named_by_formatting_are_found():
    assert finding_at(CONVS, "ADP007", "# conv-pair") is not None


def test_tuple_of_two_layers_is_no_named_pair():
    # (conv, bn) appended as one element of a list unpacked into nn.Sequential: a tuple is no
    # module, and its first item is no name: nothing is reported for it
    code = """\
from torch import nn


class Odd(nn.Module):
    def __init__(self, c=4):
        super().__init__()
        items = []
        items.append((nn.Conv2d(c, c, 3, padding=1), nn.BatchNorm2d(c)))  # tuple
        self.items = items

    def forward(self, x):
        conv, bn = self.items[0]
        return x
"""
    assert not found(code, "ADP007")
