"""Dev-corpus misses read by their computation (misses45).  The fixtures are ours.

1. An ``nn.Sequential`` subclass that starts empty (``super().__init__()``, literal settings
   only) and keeps nn.Sequential's ``append`` -- its own, or one of its own that adds the
   layer under a counter's fresh name (``self.add_module(str(self.n), m); self.n += 1``) --
   as the base of a block whose ``__init__`` appends a conv then a BatchNorm: the members run in
   the order appended, so the pair is a pair (reported, not fixed: the base class has code of
   its own).  The base may sit in the same file or in another module of the package.
   Near-misses: an ``append`` that adds under one constant name (each call replaces the last
   member), a counter another method resets (names used again replace members), a base whose
   forward runs the members in reverse, a base whose ``__init__`` takes layers, an activation
   appended between the conv and the norm.
"""

from __future__ import annotations

import textwrap

from corpus_forms import found, line_of, rules

from adopter.engine import analyze

COUNTER_BASE = textwrap.dedent("""\
    import torch
    from torch import nn


    class Chain(nn.Sequential):
        def __init__(self):
            super().__init__()
            self.count = 0

        def append(self, layer):
            self.add_module(str(self.count), layer)
            self.count += 1
            return self
""")

BLOCK = textwrap.dedent("""\


    class PointConv(BASE):
        def __init__(self, cin, cout, norm=True, act=nn.ReLU()):
            super().__init__()
            self.append(nn.Conv2d(cin, cout, kernel_size=1, bias=not norm))
            MIDDLE
            if norm:
                self.append(nn.BatchNorm2d(cout))  # pair
            if act is not None:
                self.append(act)
""")


def _block(base: str = "Chain", middle: str = "pass") -> str:
    return BLOCK.replace("BASE", base).replace("MIDDLE", middle)


def _pairs(code: str) -> list:
    line = line_of(code, "# pair")
    return [f for f in found(code, "ADP007") if f.line <= line <= f.end_line]


def test_counter_append_base_in_the_same_file():
    code = COUNTER_BASE + _block()
    pairs = _pairs(code)
    assert len(pairs) == 1
    assert not pairs[0].fixable  # the container's class has code of its own: reported only


def test_empty_start_base_keeping_sequentials_append():
    code = textwrap.dedent("""\
        import torch
        from torch import nn


        class Stack(nn.Sequential):
            \"\"\"Filled by subclasses.\"\"\"

            def __init__(self):
                super().__init__()
                self.frozen = False
    """) + _block("Stack")
    assert _pairs(code)


def test_two_levels_of_empty_start_bases():
    code = COUNTER_BASE + textwrap.dedent("""\


        class Tagged(Chain):
            def __init__(self):
                super().__init__()
                self.tag = "point"
    """) + _block("Tagged")
    assert _pairs(code)


def test_counter_append_base_in_another_module_of_the_package(tmp_path):
    from adopter.structure import package_of

    folder = tmp_path / "ptpkg"
    (folder / "common").mkdir(parents=True)
    (folder / "__init__.py").write_text("")
    (folder / "common" / "__init__.py").write_text("")
    (folder / "common" / "base.py").write_text(COUNTER_BASE)
    text = "from torch import nn\nfrom .base import Chain\n" + _block()
    path = folder / "common" / "blocks.py"
    path.write_text(text)
    line = line_of(text, "# pair")
    findings = analyze(text, str(path), rules("ADP007"), package_of(str(path))).findings
    assert [f for f in findings if f.rule == "ADP007" and f.line <= line <= f.end_line]


def test_look_alike_bases_are_not_read():
    # one constant name: each append replaces the member before it (the conv is gone)
    constant = COUNTER_BASE.replace("str(self.count)", '"last"')
    assert not _pairs(constant + _block())
    # a counter another method sets back: names used again replace members
    reset = COUNTER_BASE + "\n    def reset(self):\n        self.count = 0\n"
    assert not _pairs(reset + _block())
    # a forward of its own that runs the members last to first
    reverse = COUNTER_BASE + ("\n    def forward(self, x):\n        for layer in reversed(list(self)):\n"
                              "            x = layer(x)\n        return x\n")
    assert not _pairs(reverse + _block())
    # a base whose __init__ takes layers: not an empty start
    taking = COUNTER_BASE.replace("def __init__(self):", "def __init__(self, *layers):")
    assert not _pairs(taking + _block())
    # an activation appended between the conv and the norm
    assert not _pairs(COUNTER_BASE + _block(middle="self.append(nn.ReLU())"))


# 2. A layer a module takes as an item of a list parameter (``self.first = layers[0]``), the
#    lists built by the file's constructions of the module: the item every caller's list holds
#    at that index (torch-points3d's RSConv ``mapping[0]``/``mapping[3]``).  Fixed as a layer
#    passed in by name is (the kernel takes the modules at run time).
#    Near-misses: the caller inserts before the item, binds the name again from a call, puts a
#    starred list before it, or two callers' lists hold different layers there.

LISTED = textwrap.dedent("""\
    import torch
    from torch import nn


    class Mixer(nn.Module):
        def __init__(self, layers=None, raise_xyz=False):
            super().__init__()
            self.lift = layers[0]
            self.back = layers[1]
            self.bn_lift = nn.BatchNorm2d(self.lift.out_channels)
            self.raise_xyz = raise_xyz
            if raise_xyz:
                self.raising = layers[2]
                self.bn_raising = nn.BatchNorm2d(self.raising.out_channels)

        def forward(self, x):
            h = self.back(torch.relu(self.bn_lift(self.lift(x))))  # pair
            if self.raise_xyz:
                h = h + torch.relu(self.bn_raising(self.raising(x)))  # second pair
            return h


    class Stage(nn.Module):
        def __init__(self, c=4, first=True):
            super().__init__()
            lift = nn.Conv2d(c, 2 * c, 1)
            back = nn.Conv2d(2 * c, c, 1)
            raising = nn.Conv2d(c, c, 1)
            SETUP
            self.mixers = nn.ModuleList([Mixer(layers=layers, raise_xyz=first) for _ in range(2)])

        def forward(self, x):
            for mixer in self.mixers:
                x = mixer(x)
            return x
""")

BRANCHES = """if first:
            layers = [lift, back, raising]
        else:
            layers = [lift, back]"""


def _listed(setup: str = BRANCHES) -> str:
    return LISTED.replace("SETUP", setup)


def test_items_of_the_lists_the_callers_pass():
    code = _listed()
    assert _pairs(code)
    second = line_of(code, "# second pair")
    assert [f for f in found(code, "ADP007") if f.line <= second <= f.end_line]
    # a display written in the call itself
    inline = LISTED.replace("Mixer(layers=layers,", "Mixer(layers=[lift, back, raising],").replace("SETUP", "pass")
    assert _pairs(inline)


def test_items_of_passed_lists_fixed_exactly():
    from corpus_forms import assert_bn_fold_matches

    from adopter.synth import fix_text

    code = _listed()
    fixed = fix_text(code, "model.py", rules("ADP007")).text
    assert fixed.count("conv_bn(") == 2
    assert_bn_fold_matches(code, fixed, "Stage", (), (2, 4, 5, 5))


def test_items_of_passed_lists_look_alikes():
    # an item put in front after the display: index 0 is no longer the conv
    moved = BRANCHES + "\n        layers.insert(0, nn.ReLU())"
    assert not _pairs(_listed(moved))
    # the name bound again from a call: what it holds there is not read
    rebound = BRANCHES + "\n        layers = list(reversed(layers))"
    assert not _pairs(_listed(rebound))
    # a starred list before the item: its place is not known
    starred = "pre = [nn.ReLU()]\n        layers = [*pre, lift, back, raising]"
    assert not _pairs(_listed(starred))
    # another caller's list holds a Linear there
    other = _listed() + textwrap.dedent("""\


        class Head(nn.Module):
            def __init__(self, c=4):
                super().__init__()
                self.mixer = Mixer(layers=[nn.Linear(c, c), nn.Linear(c, c)])
    """)
    assert not _pairs(other)


# 3. ADP012: an optimizer class picked at run time among torch.optim's members
#    (``inspect.getmembers(torch.optim)``, kept by ``list``/``filter``/``sorted`` or a
#    comprehension, called as ``found[0][1](params)``, or a loop's value ``for name, klass in
#    ...``; taolunet's ``parse_optim``): any of its classes, Adam/AdamW/SGD among them, built
#    without ``fused=``.  Reported, not fixed (no text names the class to guard the keyword by),
#    as ``getattr(torch.optim, name)`` is; found although the file names no optimizer class.
#    Near-misses: another module's members, the pair's name called (``[0][0]``), the list
#    bound again, a call that chooses ``foreach=``.

MEMBERS = textwrap.dedent("""\
    import inspect

    import torch


    def by_filter(kind, params):
        found = list(filter(lambda m: inspect.isclass(m[1]) and m[1].__name__.lower() == kind,
                            inspect.getmembers(torch.optim)))
        return found[0][1](params)  # filtered


    def by_comprehension(kind, params):
        found = sorted([m for m in inspect.getmembers(torch.optim) if m[0].lower() == kind])
        return found[0][1](params, lr=0.1)  # comprehension


    def by_loop(kind, params):
        for name, klass in inspect.getmembers(torch.optim):
            if name.lower() == kind:
                return klass(params, lr=0.1)  # loop
        raise KeyError(kind)
""")

NEAR_MEMBERS = textwrap.dedent("""\
    import inspect

    import torch
    import mylib.optimizers as extra


    def other_module(kind, params):
        found = list(filter(lambda m: m[0].lower() == kind, inspect.getmembers(extra)))
        return found[0][1](params)


    def the_name(kind, params):
        found = list(inspect.getmembers(torch.optim))
        return found[0][0](params)


    def rebound(kind, params):
        found = list(inspect.getmembers(torch.optim))
        found = [("lion", extra.Lion)]
        return found[0][1](params)


    def chooses(kind, params):
        for name, klass in inspect.getmembers(torch.optim):
            if name.lower() == kind:
                return klass(params, lr=0.1, foreach=False)
""")


def test_optimizer_picked_among_torch_optim_members():
    lines = sorted(f.line for f in found(MEMBERS, "ADP012"))
    assert lines == sorted(line_of(MEMBERS, f"# {tag}") for tag in ("filtered", "comprehension", "loop"))
    from adopter.synth import fix_text

    assert fix_text(MEMBERS, "model.py", rules("ADP012")).text == MEMBERS  # no class named to guard by


def test_optimizer_members_look_alikes():
    assert found(NEAR_MEMBERS, "ADP012") == []
