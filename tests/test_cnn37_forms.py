"""Forms probed while checking the blind batch cnn37 (speech, self-supervised, NAS, continual-learning
and tabular CNN and head files: ERes2NetV2, a VGGSound ResNet, PyramidNet, DARTS/NAS-Bench ops,
BYOL/VICReg/DINO heads, CIFAR ResNets).  The batch itself scored 48/0/0 at first sight; its
constructions were varied (factories returning tuples, lists, dicts; norm layers by string, by
table, by ``functools.partial``; ``add_module`` loops, ``Sequential`` subclasses, builders, flag
wrappers, lambda op tables) and one family was not read.  The fixtures are ours.

- A convolution (or a Linear) whose output goes into a module that runs a BatchNorm first: an
  ``nn.Sequential`` whose first member is the norm (``self.bn_act = nn.Sequential(
  nn.BatchNorm2d(c), nn.ReLU())``, the same returned by a same-file factory, a same-file
  ``nn.Sequential`` subclass ``BNReLU(c)``, or such a container nested as the next member of a
  Sequential after the conv).  The conv's output is the norm's input, exactly as when the norm is
  called by name; only a module class with its own forward normalising first was read before
  (LayerTyper._input_kind).  Such a call is now typed as that BatchNorm too (the first member on
  every way through the construction, built unconditionally, with its arguments, so
  ``track_running_stats=False`` still rules it out): reported, not fixed (the norm sits inside
  the container, which the kernel does not reach).
Near-misses: an activation first in the container, a first norm with ``track_running_stats=False``,
a norm appended only under a flag (the first member is the ReLU on the other way), a Conv1d into a
BatchNorm1d-first container, the conv's output also returned.

- The rows of a list of per-block lists unpacked in ``forward`` (``self.blocks =
  nn.ModuleList([nn.ModuleList([conv, bn]) for ...])`` or appended one per block, then ``for
  conv, bn in self.blocks: x = bn(conv(x))``; the ``for attn, ff in self.layers`` idiom): the
  names the loop unpacks called nothing known, so a pair across them was not seen.  Each
  position of such written-out rows is now the layer at that position (``blocks[][0]``, ...), and
  the loop's names call them, when every row is such a list of exactly the loop's width and each
  position holds one kind of layer in every row: reported, not fixed.
Near-misses: a row of another kind appended last (a GroupNorm at the norm's position), the norm
first in each row (the pair runs the other way), an activation between the unpacked layers.
"""

from __future__ import annotations

import textwrap

from corpus_forms import finding_at, found, rules

from adopter.synth import fix_text

# ---------- ADP007 / ADP008: a container that runs a BatchNorm first, after the conv / Linear

INLINE = textwrap.dedent("""\
    import torch
    from torch import nn


    class Block(nn.Module):
        def __init__(self, cin, cout):
            super().__init__()
            self.conv = nn.Conv2d(cin, cout, 3, padding=1, bias=False)
            self.post = POST

        def forward(self, x):
            return self.post(self.conv(x))
    """)

FACTORY = textwrap.dedent("""\
    import torch
    from torch import nn


    def bn_relu(c):
        return nn.Sequential(nn.BatchNorm2d(c), nn.ReLU(inplace=True))


    class Block(nn.Module):
        def __init__(self, cin, cout):
            super().__init__()
            self.conv = nn.Conv2d(cin, cout, 3, padding=1, bias=False)
            self.post = bn_relu(cout)

        def forward(self, x):
            y = self.conv(x)
            return self.post(y)
    """)

SUBCLASS = textwrap.dedent("""\
    import torch
    from torch import nn


    class BNReLU(nn.Sequential):
        def __init__(self, c):
            super().__init__(FIRST, nn.ReLU(inplace=True))


    class Block(nn.Module):
        def __init__(self, cin, cout):
            super().__init__()
            self.conv = nn.Conv2d(cin, cout, 3, padding=1, bias=False)
            self.post = BNReLU(cout)

        def forward(self, x):
            return self.post(self.conv(x))
    """)

NESTED = textwrap.dedent("""\
    import torch
    from torch import nn


    class BNReLU(nn.Sequential):
        def __init__(self, c):
            super().__init__(nn.BatchNorm2d(c), nn.ReLU(inplace=True))


    class Stem(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.a = nn.Sequential(nn.Conv2d(3, c, 3, padding=1, bias=False), nn.Sequential(nn.BatchNorm2d(c), nn.ReLU()))
            self.b = nn.Sequential(nn.Conv2d(c, c, 3, padding=1, bias=False), BNReLU(c))

        def forward(self, x):
            return self.b(self.a(x))
    """)

HEAD = textwrap.dedent("""\
    import torch
    from torch import nn


    class Projector(nn.Module):
        def __init__(self, d=32, h=16):
            super().__init__()
            self.fc = nn.Linear(d, h, bias=False)
            self.post = nn.Sequential(nn.BatchNorm1d(h), nn.ReLU(inplace=True))
            self.out = nn.Linear(h, d)

        def forward(self, x):
            return self.out(self.post(self.fc(x)))
    """)


def _reported_not_fixed(code: str, rule: str, needle: str) -> None:
    finding = finding_at(code, rule, needle)
    assert finding is not None
    result = fix_text(code, "model.py", rules(rule))
    assert result.text == code  # the norm sits inside the container: reported, not fixed


def test_sequential_starting_with_batchnorm_after_conv():
    code = INLINE.replace("POST", "nn.Sequential(nn.BatchNorm2d(cout), nn.ReLU(inplace=True))")
    _reported_not_fixed(code, "ADP007", "return self.post(self.conv(x))")


def test_factory_sequential_starting_with_batchnorm_after_conv():
    _reported_not_fixed(FACTORY, "ADP007", "return self.post(y)")


def test_sequential_subclass_starting_with_batchnorm_after_conv():
    code = SUBCLASS.replace("FIRST", "nn.BatchNorm2d(c)")
    _reported_not_fixed(code, "ADP007", "return self.post(self.conv(x))")


def test_nested_member_starting_with_batchnorm_after_conv_member():
    assert finding_at(NESTED, "ADP007", "self.a = nn.Sequential(") is not None
    assert finding_at(NESTED, "ADP007", "self.b = nn.Sequential(") is not None
    assert fix_text(NESTED, "model.py", rules("ADP007")).text == NESTED


def test_sequential_starting_with_batchnorm1d_after_linear():
    _reported_not_fixed(HEAD, "ADP008", "return self.out(self.post(self.fc(x)))")


def test_container_starting_with_batchnorm_near_misses():
    # an activation first: the norm is not the conv's consumer
    code = INLINE.replace("POST", "nn.Sequential(nn.ReLU(), nn.BatchNorm2d(cout))")
    assert found(code, "ADP007") == []
    # batch statistics in eval too: nothing to fold
    code = INLINE.replace("POST", "nn.Sequential(nn.BatchNorm2d(cout, track_running_stats=False), nn.ReLU())")
    assert found(code, "ADP007") == []
    code = SUBCLASS.replace("FIRST", "nn.BatchNorm2d(c, track_running_stats=False)")
    assert found(code, "ADP007") == []
    # a norm appended only under a flag: on the other way the first member is the ReLU
    code = INLINE.replace("POST", "nn.Sequential(*layers)").replace(
        "        self.post = ",
        "        layers = []\n        if cout > 8:\n            layers.append(nn.BatchNorm2d(cout))\n"
        "        layers.append(nn.ReLU())\n        self.post = ")
    assert found(code, "ADP007") == []
    # a Conv1d into a BatchNorm1d-first container
    code = INLINE.replace("nn.Conv2d(", "nn.Conv1d(").replace(
        "POST", "nn.Sequential(nn.BatchNorm1d(cout), nn.ReLU())")
    assert found(code, "ADP007") == []
    # the conv's output is also returned
    code = FACTORY.replace("return self.post(y)", "return self.post(y), y")
    assert found(code, "ADP007") == []


# ---------- ADP007 / ADP008: the rows of a list of per-block lists unpacked in forward

ROWS = textwrap.dedent("""\
    import torch
    from torch import nn


    class Encoder(nn.Module):
        def __init__(self, widths=(8, 16)):
            super().__init__()
            self.blocks = nn.ModuleList([nn.ModuleList([nn.Conv2d(3, w, 3, padding=1), NORM]) for w in widths])

        def forward(self, x):
            for conv, norm in self.blocks:
                x = norm(conv(x)).relu()  # pair
            return x
    """)

APPENDED = textwrap.dedent("""\
    import torch
    from torch import nn


    class Tower(nn.Module):
        def __init__(self, dim=16, depth=3):
            super().__init__()
            self.layers = nn.ModuleList([])
            for _ in range(depth):
                self.layers.append(nn.ModuleList([nn.Linear(dim, dim), nn.BatchNorm1d(dim), nn.ReLU()]))
            LAST

        def forward(self, x):
            for i, (lin, bn, act) in enumerate(self.layers):
                x = act(bn(lin(x)))  # pair
            return x
    """)


def test_unpacked_rows_conv_bn():
    code = ROWS.replace("NORM", "nn.BatchNorm2d(w)")
    finding = finding_at(code, "ADP007", "# pair")
    assert finding is not None
    assert fix_text(code, "model.py", rules("ADP007")).text == code  # reported, not fixed


def test_unpacked_rows_linear_bn_appended_with_enumerate():
    code = APPENDED.replace("        LAST\n", "")
    assert finding_at(code, "ADP008", "# pair") is not None


def test_unpacked_rows_near_misses():
    # a row of another kind appended last: the norm's position holds a GroupNorm there
    code = APPENDED.replace("LAST", "self.layers.append(nn.ModuleList([nn.Linear(dim, dim), nn.LayerNorm(dim), nn.ReLU()]))")
    assert found(code, "ADP008") == []
    # the norm first in each row: the pair runs the other way
    code = ROWS.replace("nn.Conv2d(3, w, 3, padding=1), NORM", "nn.BatchNorm2d(3), nn.Conv2d(3, w, 3, padding=1)").replace(
        "for conv, norm in", "for norm, conv in").replace("x = norm(conv(x)).relu()", "x = conv(norm(x)).relu()")
    assert found(code, "ADP007") == []
    # an activation between the unpacked layers
    code = ROWS.replace("NORM", "nn.BatchNorm2d(w)").replace("x = norm(conv(x)).relu()", "x = norm(conv(x).relu())")
    assert found(code, "ADP007") == []
