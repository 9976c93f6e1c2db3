"""Forms found missing while checking the blind batch corpus13b (torchvision-style CNNs): each
test states the semantic fact the engine now reads, and near-misses it must still leave alone.
The fixtures are ours: blocks whose forward runs their children in registration order, a
module-level alias of a norm class, and an ``nn.Sequential`` subclass whose forward calls
``super(Cls, self).forward(x)`` before concatenating."""

from __future__ import annotations

import textwrap

from corpus_forms import assert_bn_fold_matches

from adopter.engine import analyze
from adopter.ruleset import load_rules, select_rules

ALL = load_rules()


def _found(code: str, rule: str, path: str = "model.py") -> list:
    return [f for f in analyze(code, path, select_rules(ALL, [rule])).findings if f.rule == rule]


def _line(code: str, needle: str) -> int:
    return next(n for n, text in enumerate(code.splitlines(), 1) if needle in text)


def _covers(code: str, rule: str, needle: str) -> bool:
    line = _line(code, needle)
    return any(f.line <= line <= f.end_line for f in _found(code, rule))


# ----------------------------------------------------------------- children run in order

CHILDREN = textwrap.dedent("""\
    import torch
    from torch import nn


    class Stem(nn.Module):
        def __init__(self, cin, cout):
            super().__init__()
            self.conv = nn.Conv2d(cin, cout, 3, padding=1, bias=False)
            self.bn = nn.BatchNorm2d(cout)  # stem-bn
            self.act = nn.ReLU(inplace=True)

        def forward(self, x):
            for layer in self.children():
                x = layer(x)
            return x


    class Transform(nn.Module):
        def __init__(self, cin, cout, stride, use_se=False, fast=True):
            super(Transform, self).__init__()
            self.fast = fast and stride == 1
            self.a = nn.Conv2d(cin, cout, 1, bias=False)
            self.a_bn = nn.BatchNorm2d(cout)  # a-bn
            self.a_act = nn.ReLU()
            self.b = nn.Conv2d(cout, cout, 3, stride=stride, padding=1, bias=False)
            if use_se:
                self.se = nn.Identity()
            self.b_bn = nn.BatchNorm2d(cout)  # b-bn after an optional member
            self.b_bn.final = True
            self.c = None
            self.c = nn.Conv2d(cout, cout, 1, bias=False)
            self.c_bn = nn.BatchNorm2d(cout)  # c-bn after None

        def forward(self, x):
            for module in self.children():
                x = module(x)
            return x


    class NotInOrder(nn.Module):
        def __init__(self, cin, cout):
            super().__init__()
            self.conv = nn.Conv2d(cin, cout, 3, padding=1, bias=False)
            self.pool = nn.MaxPool2d(2)
            self.bn = nn.BatchNorm2d(cout)  # pool-between

        def forward(self, x):
            for layer in self.children():
                x = layer(x)
            return x


    class Reassigned(nn.Module):
        def __init__(self, cin, cout):
            super().__init__()
            self.norm = nn.Identity()
            self.conv = nn.Conv2d(cin, cout, 3, padding=1, bias=False)
            self.norm = nn.BatchNorm2d(cout)  # reassigned: keeps its first place

        def forward(self, x):
            for layer in self.children():
                x = layer(x)
            return x


    class Built(nn.Module):
        def __init__(self, cin, cout):
            super().__init__()
            self.conv = nn.Conv2d(cin, cout, 3, padding=1, bias=False)
            self._more(cout)
            self.bn = nn.BatchNorm2d(cout)  # after-method

        def _more(self, cout):
            self.extra = nn.Conv2d(cout, cout, 1)

        def forward(self, x):
            for layer in self.children():
                x = layer(x)
            return x


    class Explicit(nn.Module):
        def __init__(self, cin, cout):
            super().__init__()
            self.conv = nn.Conv2d(cin, cout, 3, padding=1, bias=False)
            self.bn = nn.BatchNorm2d(cout)  # unused-bn
            self.act = nn.ReLU()

        def forward(self, x):
            for layer in self.children():
                x = layer(x)
            return x + 1
""")


def test_children_loop_members_registered_under_an_if():
    # a member registered only under a flag sits between on the ways that set it: the pair
    # is the list convention's (``layers = [conv]; if se: layers.append(se); layers.append(bn)``),
    # reported on the way without it, as an nn.Sequential built so is
    assert _covers(CHILDREN, "ADP007", "# b-bn after an optional member") == _covers(
        OPTIONAL, "ADP007", "# optional-between")


def test_children_loop_runs_the_members_in_registration_order():
    # a forward that applies self.children() one after the other runs the layers __init__
    # registered, in the order it registered them: the conv's output goes straight into the BN
    assert _covers(CHILDREN, "ADP007", "# stem-bn")
    assert _covers(CHILDREN, "ADP007", "# a-bn")
    assert _covers(CHILDREN, "ADP007", "# c-bn after None")
    # the last statement's value leaving the chain does not change what runs inside it
    assert _covers(CHILDREN, "ADP007", "# unused-bn")


def test_children_loop_near_misses():
    # a pool registered between them
    assert not _covers(CHILDREN, "ADP007", "# pool-between")
    # an attribute assigned a layer twice keeps its first place (before the conv)
    assert not _covers(CHILDREN, "ADP007", "# reassigned")
    # a method registering children from __init__: the order is not read
    assert not _covers(CHILDREN, "ADP007", "# after-method")


def test_children_loop_is_reported_not_rewritten():
    from adopter.synth import fix_text

    fixed = fix_text(CHILDREN, "model.py", select_rules(ALL, ["ADP007"]))
    assert fixed.error is None and fixed.text == CHILDREN


# ----------------------------------------------------------------- a module-level alias

ALIAS = textwrap.dedent("""\
    import torch.nn as nn

    BatchNorm2d = nn.BatchNorm2d
    Norm = nn.GroupNorm


    class Block(nn.Module):
        def __init__(self, cin, cout):
            super().__init__()
            self.conv1 = nn.Conv2d(cin, cout, 3, padding=1, bias=False)
            self.bn1 = BatchNorm2d(cout)
            self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
            self.gn = Norm(8, cout)

        def forward(self, x):
            x = self.bn1(self.conv1(x))  # alias-bn
            return self.gn(self.conv2(x))  # alias-gn
""")


def test_module_level_alias_of_a_norm_class():
    assert _covers(ALIAS, "ADP007", "# alias-bn")
    assert not _covers(ALIAS, "ADP007", "# alias-gn")


ALIAS_TWICE = textwrap.dedent("""\
    import torch.nn as nn

    try:
        from apex.parallel import SyncBatchNorm as BatchNorm2d
    except ImportError:
        BatchNorm2d = nn.BatchNorm2d
    Norm = nn.BatchNorm2d
    Norm = nn.GroupNorm


    class Block(nn.Module):
        def __init__(self, cin, cout):
            super().__init__()
            self.conv = nn.Conv2d(cin, cout, 3, padding=1, bias=False)
            self.norm = Norm(cout)

        def forward(self, x):
            return self.norm(self.conv(x))  # rebound
""")


def test_alias_bound_twice_is_not_read():
    assert not _covers(ALIAS_TWICE, "ADP007", "# rebound")


# ----------------------------------------------------------------- Sequential subclass, super(Cls, self)

DENSE = textwrap.dedent("""\
    import torch
    from torch import nn


    class DenseLayer(nn.Sequential):
        def __init__(self, cin, growth):
            super(DenseLayer, self).__init__()
            self.add_module("norm-1", nn.BatchNorm2d(cin))  # pre-activation
            self.add_module("relu-1", nn.ReLU())
            self.add_module("conv-1", nn.Conv2d(cin, 4 * growth, 1, bias=False))
            self.add_module("norm-2", nn.BatchNorm2d(4 * growth))  # conv1-norm2
            self.add_module("relu-2", nn.ReLU())
            self.add_module("conv-2", nn.Conv2d(4 * growth, growth, 3, padding=1, bias=False))

        def forward(self, x):
            new = super(DenseLayer, self).forward(x)
            return torch.cat([x, new], 1)


    class Twice(nn.Sequential):
        def __init__(self, c):
            super(Twice, self).__init__()
            self.add_module("conv", nn.Conv2d(c, c, 3, padding=1, bias=False))
            self.add_module("norm", nn.BatchNorm2d(c))  # self-read

        def forward(self, x):
            return super(Twice, self).forward(x) + self[0](x)
""")


def test_sequential_subclass_calling_super_with_its_class():
    assert _covers(DENSE, "ADP007", "# conv1-norm2")
    assert not _covers(DENSE, "ADP007", "# pre-activation")
    # forward reads a member again on its own: not the members run in order only
    assert not _covers(DENSE, "ADP007", "# self-read")


# ----------------------------------------------------------------- members added under an if

OPTIONAL = textwrap.dedent("""\
    from torch import nn


    def block(cin, cout, use_se=False):
        layers = [nn.Conv2d(cin, cout, 3, bias=False)]
        if use_se:
            layers.append(nn.Identity())
        layers.append(nn.BatchNorm2d(cout))  # optional-between
        return nn.Sequential(*layers)


    def down(cin, cout, avg=False):
        layers = []
        if avg:
            layers.append(nn.AvgPool2d(2))
            layers.append(nn.Conv2d(cin, cout, 1, bias=False))
        else:
            layers.append(nn.Conv2d(cin, cout, 1, stride=2, bias=False))
        layers.append(nn.BatchNorm2d(cout))  # conv-either-way
        return nn.Sequential(*layers)


    def maybe_conv(cin, cout, conv=True):
        layers = []
        if conv:
            layers.append(nn.Conv2d(cin, cout, 1, bias=False))
        layers.append(nn.BatchNorm2d(cout))  # input-or-conv
        return nn.Sequential(*layers)
""")


def test_sequential_member_after_a_conv_built_in_either_branch():
    # a conv on every way (built in either branch) before one BN: a pair
    assert _covers(OPTIONAL, "ADP007", "# conv-either-way")


def test_the_fixed_alias_pair_computes_what_the_original_does():
    import pytest

    pytest.importorskip("torch")
    pytest.importorskip("adopter_kernels")
    from adopter.synth import fix_text

    fixed = fix_text(ALIAS, "model.py", select_rules(ALL, ["ADP007"]))
    assert fixed.error is None and "conv_bn(" in fixed.text and "import adopter" not in fixed.text
    assert_bn_fold_matches(ALIAS, fixed.text, "Block", (4, 8), (2, 4, 6, 6))
