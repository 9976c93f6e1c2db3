"""Forms found missing while checking the blind batch cnn28 (torchvision-style CNNs of ten
packages new to the corpus: pathology U-Nets and HoVer-Nets, pix2pixHD, GAN zoos, FPN text
detectors, padded EfficientNet encoders).  The fixtures are ours.

- A same-file ``nn.Conv2d`` subclass whose forward pads its input to "same" size and returns
  ``super().forward(x)``: the base's forward is the convolution on the module's own parameters,
  as ``self._conv_forward(x, self.weight, self.bias)`` already was (reported, not fixed: its
  forward is its own).
- A function defined inside ``__init__`` that builds a block: one returning a list spread into
  ``nn.Sequential(*block(...))``, one returning ``nn.Sequential(layers)`` (its free names the
  caller's).
- ``layers = OrderedDict([(name, layer), ...])`` then ``nn.Sequential(layers)``.
- A list of ``(name, layer)`` pairs prepended to under an ``if`` (``modules = [("pad", pad),
  *modules]``) before ``nn.Sequential(OrderedDict(modules))``.
- A list of list displays (``seq = [[conv, act]]; seq += [[conv, bn, act]]``) flattened by a
  loop (``for n in range(len(seq)): stream += seq[n]``) into one Sequential, or each sublist its
  own Sequential (``nn.Sequential(*seq[n])``).
Near-misses: an activation between, a Conv1d subclass, a base that is no convolution, a
BatchNorm off by a literal flag, an OrderedDict reordered after it is built, two sublists that
only meet in one Sequential each.
"""

from __future__ import annotations

import textwrap

import torch
from corpus_forms import assert_bn_fold_matches, finding_at, float64_pair, found, rules

from adopter.synth import fix_text

# ---------- a padded Conv2d subclass returning super().forward(x)

SUPER_CONV = textwrap.dedent("""\
    import math
    import torch
    import torch.nn.functional as F
    from torch import nn


    class SamePadConv(nn.Conv2d):
        def __init__(self, cin, cout, k, stride=1, bias=False):
            super().__init__(cin, cout, k, stride, padding=0, bias=bias)

        def forward(self, x):
            h, w = x.shape[-2:]
            ph = max((math.ceil(h / self.stride[0]) - 1) * self.stride[0] + self.kernel_size[0] - h, 0)
            pw = max((math.ceil(w / self.stride[1]) - 1) * self.stride[1] + self.kernel_size[1] - w, 0)
            if ph > 0 or pw > 0:
                x = F.pad(x, [pw // 2, pw - pw // 2, ph // 2, ph - ph // 2])
            return super().forward(INPUT)


    class Stem(nn.Module):
        def __init__(self, c=6):
            super().__init__()
            self.conv = SamePadConv(3, c, 3, stride=2)
            self.bn = nn.BatchNorm2d(c)

        def forward(self, x):
            x = self.conv(x)
            x = self.bn(x)  # pair
            return torch.relu(x)
""")


def test_padded_conv_subclass_returning_super_forward_then_batchnorm():
    code = SUPER_CONV.replace("INPUT", "x")
    assert finding_at(code, "ADP007", "# pair") is not None
    # its own forward pads first: reported, not folded into a plain convolution
    assert fix_text(code, "model.py", rules("ADP007")).text == code
    # super(SamePadConv, self).forward spelled out: the same
    spelled = SUPER_CONV.replace("super().forward(INPUT)", "super(SamePadConv, self).forward(x)")
    assert finding_at(spelled, "ADP007", "# pair") is not None


def test_super_forward_near_misses():
    # its own weight in the input
    assert found(SUPER_CONV.replace("INPUT", "x * self.weight.sum()"), "ADP007") == []
    # a Conv1d subclass then BatchNorm1d: not the conv-BN2d pair
    one_d = SUPER_CONV.replace("INPUT", "x").replace("nn.Conv2d", "nn.Conv1d").replace(
        "nn.BatchNorm2d", "nn.BatchNorm1d")
    assert found(one_d, "ADP007") == []
    # an activation on the base's output before it is returned
    assert found(SUPER_CONV.replace("return super().forward(INPUT)", "return F.relu(super().forward(x))"),
                 "ADP007") == []
    # a base that is no convolution (a module of ours whose forward is a pooling)
    pooled = SUPER_CONV.replace("INPUT", "x").replace("class SamePadConv(nn.Conv2d):", textwrap.dedent("""\
        class Pool(nn.Module):
            def __init__(self, *args, **kwargs):
                super().__init__()

            def forward(self, x):
                return F.avg_pool2d(x, 2)


        class SamePadConv(Pool):""")).replace(
        "ph = max((math.ceil(h / self.stride[0]) - 1) * self.stride[0] + self.kernel_size[0] - h, 0)", "ph = 0").replace(
        "pw = max((math.ceil(w / self.stride[1]) - 1) * self.stride[1] + self.kernel_size[1] - w, 0)", "pw = 0")
    assert found(pooled, "ADP007") == []


# ---------- a block builder defined inside __init__

NESTED_LIST = textwrap.dedent("""\
    import torch
    from torch import nn


    class FCGen(nn.Module):
        def __init__(self, z=8, h=16, out=12):
            super().__init__()

            def block(i, o, normalize=True):
                layers = [nn.Linear(i, o)]
                BETWEEN
                if normalize:
                    layers.append(nn.BatchNorm1d(o))
                layers.append(nn.LeakyReLU(0.2))
                return layers

            self.net = nn.Sequential(
                *block(z, h, normalize=False),
                *block(h, h * 2, NORMALIZE),  # pair
                nn.Linear(h * 2, out),
                nn.Tanh(),
            )

        def forward(self, z):
            return self.net(z)
""")


def _nested_list(between: str = "pass", normalize: str = "normalize=True") -> str:
    return NESTED_LIST.replace("BETWEEN", between).replace("NORMALIZE", normalize)


def test_list_from_a_function_nested_in_init_spread_into_a_sequential():
    code = _nested_list()
    assert finding_at(code, "ADP008", "# pair") is not None
    fixed = fix_text(code, "model.py", rules("ADP008")).text
    assert "FoldingSequential(" in fixed
    a, b = float64_pair(code, fixed, "FCGen")
    with torch.no_grad():
        for m in a.modules():
            if isinstance(m, torch.nn.BatchNorm1d):
                m.running_mean.uniform_(-1, 1)
                m.running_var.uniform_(0.5, 2)
    b.load_state_dict(a.state_dict(), strict=True)
    a.eval()
    b.eval()
    z = torch.randn(5, 8, dtype=torch.float64)
    with torch.no_grad():
        # float64, 8-16-term dot products: far below 1e-10
        torch.testing.assert_close(b(z), a(z), rtol=0, atol=1e-10)


def test_nested_list_near_misses():
    # an activation between the Linear and the BatchNorm1d
    assert found(_nested_list(between="layers.append(nn.ReLU())"), "ADP008") == []
    # the BatchNorm off by a literal flag at every call
    assert found(_nested_list(normalize="normalize=False"), "ADP008") == []


NESTED_ORDERED = textwrap.dedent("""\
    from collections import OrderedDict
    import torch
    from torch import nn


    class Dense(nn.Module):
        def __init__(self, cin=4, growth=4, units=2):
            super().__init__()

            def unit(c):
                layers = OrderedDict(
                    [
                        ("pre/bn", nn.BatchNorm2d(c)),
                        ("pre/relu", nn.ReLU()),
                        ("conv1", nn.Conv2d(c, 8, 1, bias=False)),
                        BETWEEN
                        ("conv1/bn", nn.BatchNorm2d(8)),  # pair
                        ("conv1/relu", nn.ReLU()),
                        ("conv2", nn.Conv2d(8, growth, 3, padding=1, bias=False)),
                    ],
                )
                AFTER
                return nn.Sequential(layers)

            self.units = nn.ModuleList()
            c = cin
            for _ in range(units):
                self.units.append(unit(c))
                c += growth

        def forward(self, x):
            for u in self.units:
                x = torch.cat([x, u(x)], dim=1)
            return x
""")


def _nested_ordered(between: str = "", after: str = "pass") -> str:
    return NESTED_ORDERED.replace("BETWEEN", between).replace("AFTER", after)


def test_ordered_dict_name_from_a_nested_function_into_a_sequential():
    code = _nested_ordered()
    assert finding_at(code, "ADP007", "# pair") is not None
    fixed = fix_text(code, "model.py", rules("ADP007")).text
    assert "FoldingSequential(layers)" in fixed
    # float64, 1x1 and 3x3 convolutions over 4-8 channels (4-72 terms): far below 1e-10
    assert_bn_fold_matches(code, fixed, "Dense", (), (2, 4, 7, 7))


def test_ordered_dict_name_at_module_level():
    code = _nested_ordered().replace("        def unit(c):", "        def unit(c, growth=growth):")
    module_level = textwrap.dedent("""\
        from collections import OrderedDict
        from torch import nn


        def unit(c):
            layers = OrderedDict([
                ("conv1", nn.Conv2d(c, 8, 1, bias=False)),
                ("conv1/bn", nn.BatchNorm2d(8)),  # pair
                ("conv1/relu", nn.ReLU()),
            ])
            return nn.Sequential(layers)


        class Head(nn.Module):
            def __init__(self, c=4):
                super().__init__()
                self.u = unit(c)

            def forward(self, x):
                return self.u(x)
    """)
    assert finding_at(module_level, "ADP007", "# pair") is not None
    assert finding_at(code, "ADP007", "# pair") is not None


def test_ordered_dict_name_near_misses():
    # an activation between the conv and the BatchNorm
    assert found(_nested_ordered(between='("conv1/act", nn.ReLU()),'), "ADP007") == []
    # the dict reordered after it is built: the order is no longer the display's
    assert found(_nested_ordered(after='layers.move_to_end("conv1/bn", last=False)'), "ADP007") == []
    # a member put in by key after it is built
    assert found(_nested_ordered(after='layers["conv1/bn"] = nn.GroupNorm(2, 8)'), "ADP007") == []


# ---------- pairs prepended to under an if before OrderedDict(modules)

PREPENDED = textwrap.dedent("""\
    from collections import OrderedDict
    from torch import nn


    class Stem(nn.Module):
        def __init__(self, cin=3, mode="fast"):
            super().__init__()
            modules = [
                ("conv", nn.Conv2d(cin, 8, 7, padding=0, bias=False)),
                BETWEEN
                ("bn", nn.BatchNorm2d(8)),  # pair
                ("relu", nn.ReLU()),
            ]
            if mode == "fast":
                modules = [("pad", nn.ZeroPad2d(3)), *modules]
            self.conv0 = nn.Sequential(OrderedDict(modules))

        def forward(self, x):
            return self.conv0(x)
""")


def test_pairs_prepended_to_under_an_if_then_an_ordered_dict():
    code = PREPENDED.replace("BETWEEN", "")
    assert finding_at(code, "ADP007", "# pair") is not None
    fixed = fix_text(code, "model.py", rules("ADP007")).text
    assert "FoldingSequential(OrderedDict(modules))" in fixed
    # float64, 7x7 convolution over 3 channels (147 terms): far below 1e-10
    assert_bn_fold_matches(code, fixed, "Stem", (), (2, 3, 12, 12))
    assert_bn_fold_matches(code, fixed, "Stem", (3, "slow"), (2, 3, 18, 18))


def test_prepended_pairs_near_miss():
    assert found(PREPENDED.replace("BETWEEN", '("act", nn.ReLU()),'), "ADP007") == []
    # a BatchNorm prepended before a list that starts with the conv: no pair either
    pre_bn = PREPENDED.replace("BETWEEN", '("act", nn.ReLU()),').replace(
        '[("pad", nn.ZeroPad2d(3)), *modules]', '[("pre", nn.BatchNorm2d(cin)), *modules]')
    assert found(pre_bn, "ADP007") == []


# ---------- a list of list displays, flattened by a loop or one Sequential per sublist

LISTS = textwrap.dedent("""\
    from torch import nn


    class PatchDisc(nn.Module):
        def __init__(self, cin=3, nf=8, n_layers=3, norm_layer=nn.BatchNorm2d, split=SPLIT):
            super().__init__()
            self.split = split
            seq = [[nn.Conv2d(cin, nf, 4, stride=2, padding=1), nn.LeakyReLU(0.2)]]
            for n in range(1, n_layers):
                seq += [[nn.Conv2d(nf, nf * 2, 4, stride=2, padding=1),
                         BETWEEN norm_layer(nf * 2), nn.LeakyReLU(0.2)]]  # pair
                nf *= 2
            seq += [[nn.Conv2d(nf, 1, 4, padding=1)]]
            if split:
                for n in range(len(seq)):
                    setattr(self, "part" + str(n), nn.Sequential(*seq[n]))
            else:
                flat = []
                for n in range(len(seq)):
                    flat += seq[n]
                self.model = nn.Sequential(*flat)

        def forward(self, x):
            if self.split:
                for n in range(self.n_parts()):
                    x = getattr(self, "part" + str(n))(x)
                return x
            return self.model(x)

        def n_parts(self):
            return sum(1 for name, _ in self.named_children() if name.startswith("part"))
""")


def _lists(between: str = "", split: str = "False") -> str:
    return LISTS.replace("BETWEEN ", between).replace("SPLIT", split)


def test_list_of_lists_flattened_by_a_loop_into_a_sequential():
    code = _lists()
    assert finding_at(code, "ADP007", "# pair") is not None
    fixed = fix_text(code, "model.py", rules("ADP007")).text
    assert "FoldingSequential(*flat)" in fixed and "FoldingSequential(*seq[n])" in fixed
    # float64, 4x4 convolutions over 3-32 channels (48-512 terms): far below 1e-10
    assert_bn_fold_matches(code, fixed, "PatchDisc", (), (2, 3, 32, 32))
    assert_bn_fold_matches(_lists(split="True"), fix_text(_lists(split="True"), "model.py", rules("ADP007")).text,
                           "PatchDisc", (), (2, 3, 32, 32))


def test_list_of_lists_near_misses():
    # an activation between the conv and the norm
    assert found(_lists(between="nn.LeakyReLU(0.2), "), "ADP007") == []
    # the conv ends one sublist and the BatchNorm starts the next, and each sublist is its own
    # Sequential: they never meet
    apart = textwrap.dedent("""\
        from torch import nn


        class Parts(nn.Module):
            def __init__(self, c=4):
                super().__init__()
                seq = [[nn.Conv2d(c, c, 3, padding=1)], [nn.BatchNorm2d(c), nn.ReLU()]]
                for n in range(len(seq)):
                    setattr(self, "part" + str(n), nn.Sequential(*seq[n]))

            def forward(self, x):
                return self.part1(self.part0(x))
    """)
    assert found(apart, "ADP007") == []


def test_sublists_that_meet_when_flattened():
    apart = textwrap.dedent("""\
        from torch import nn


        class Parts(nn.Module):
            def __init__(self, c=4):
                super().__init__()
                seq = [[nn.Conv2d(c, c, 3, padding=1)], [nn.BatchNorm2d(c), nn.ReLU()]]
                for n in range(len(seq)):
                    setattr(self, "part" + str(n), nn.Sequential(*seq[n]))

            def forward(self, x):
                return self.part1(self.part0(x))
    """)
    # the sublists flattened into one Sequential: a pair
    together = apart.replace('for n in range(len(seq)):\n            setattr(self, "part" + str(n), '
                             'nn.Sequential(*seq[n]))',
                             'flat = []\n        for sub in seq:\n            flat += sub\n        '
                             'self.part0 = nn.Sequential(*flat)\n        self.part1 = nn.Identity()')
    assert "flat += sub" in together
    assert len(found(together, "ADP007")) == 1
