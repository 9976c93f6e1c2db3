"""Forms found while checking the blind batch cnn36 (detection, restoration, GAN and remote
sensing CNNs: darknet cfg parsers, YOLO/CSPNeXt/RTMDet backbones, SRResNet, RCAN, DAT, a
VGG-style discriminator, a multi-image SR net, an OCT segmenter).  The fixtures are ours.

- A module class defined in the body of a module-level function (oriented-det's fallback
  backbone: ``def make_single_feature_backbone(c): class TinyBackbone(nn.Module): ...;
  return TinyBackbone(c)``) was not read at all: only the module's own body (and its
  ``if``/``try`` blocks) was searched for classes.  Such a class is now read like any other
  when the file binds its name nowhere else and one function alone defines it.
Near-misses: an activation between the conv and the norm, a Conv1d into a BatchNorm1d, the
same class name defined in two functions (which one a call means is not known).

- A module whose ``forward`` is a package base's (srforge's ``Model.forward`` routing inputs to
  the subclass's ``self._forward(...)``) had that private hook dropped as unreachable whenever
  another class of the file defined a forward (then only forwards and public methods are entry
  points; corpus20a).  A private method of such a class that the base's forward calls (read in
  the package module defining the base) and that runs the module's own layers is now an entry
  point too.
Near-misses: an activation between the pair in the hook, a private method the base's forward
does not call (dead code stays dropped, as corpus20a's and cnn26's tests ask).

- A list of layers begun as a comprehension (``[Block(c) for _ in range(n)]``) and held in an
  attribute while it is built (torch-enhance's SRResNet: ``self.res_blocks = [...]``,
  ``self.res_blocks.append(nn.Conv2d(...))``, ``self.res_blocks.append(nn.BatchNorm2d(64))``,
  ``self.res_blocks = nn.Sequential(*self.res_blocks)``) was not followed: a comprehension was
  no list the builder read, and only plain names held lists.  A comprehension is now its
  element's layer, none or many times; ``self.<attr>`` holds a list like a name does, and
  ``*self.<attr>`` spreads it into the Sequential.
Near-misses: a comprehension of activations before the norm, a ReLU appended between, a member
of the attribute's list replaced by index.
"""

from __future__ import annotations

import textwrap

from corpus_forms import assert_bn_fold_matches, finding_at, found, rules

from adopter.synth import fix_text

# ---------- ADP007: a module class defined inside a factory function

LOCAL_CLASS = textwrap.dedent("""\
    try:
        import torch
        from torch import nn
    except Exception:
        torch = None
        nn = None


    def make_backbone(out_channels=16):
        class TinyBackbone(nn.Module):
            def __init__(self, out_channels):
                super().__init__()
                self.body = nn.Sequential(
                    nn.Conv2d(3, 8, 3, padding=1, bias=False),
                    nn.BatchNorm2d(8),
                    nn.ReLU(inplace=True),
                    nn.Conv2d(8, out_channels, 3, stride=2, padding=1, bias=False),
                    MIDDLE
                    nn.BatchNorm2d(out_channels),
                )

            def forward(self, x):
                return self.body(x)

        return TinyBackbone(out_channels)
    """)

LOCAL_ATTRS = textwrap.dedent("""\
    import torch
    from torch import nn


    def build(c=8):
        class Stem(nn.Module):
            def __init__(self, c):
                super().__init__()
                self.conv = CONV
                self.bn = NORM
                self.act = nn.SiLU()

            def forward(self, x):
                return self.act(self.bn(self.conv(x)))

        return Stem(c)
    """)


def test_class_inside_a_factory_function_is_read():
    code = LOCAL_CLASS.replace("        MIDDLE\n", "")
    assert finding_at(code, "ADP007", "nn.BatchNorm2d(8)") is not None
    assert finding_at(code, "ADP007", "nn.BatchNorm2d(out_channels)") is not None
    fixed = fix_text(code, "model.py", rules("ADP007")).text
    assert "FoldingSequential(" in fixed
    assert_bn_fold_matches(code, fixed, "make_backbone", (), (2, 3, 10, 10))


def test_class_inside_a_factory_function_attribute_pair():
    code = LOCAL_ATTRS.replace("CONV", "nn.Conv2d(c, c, 3, padding=1, bias=False)").replace(
        "NORM", "nn.BatchNorm2d(c)")
    assert finding_at(code, "ADP007", "self.act(self.bn(self.conv(x)))") is not None


def test_class_inside_a_factory_function_near_misses():
    # an activation between the conv and the norm
    code = LOCAL_CLASS.replace("MIDDLE", "nn.ReLU(),")
    assert finding_at(code, "ADP007", "nn.BatchNorm2d(out_channels)") is None
    # a Conv1d into a BatchNorm1d
    code = LOCAL_ATTRS.replace("CONV", "nn.Conv1d(c, c, 3, padding=1)").replace("NORM", "nn.BatchNorm1d(c)")
    assert found(code, "ADP007") == []
    # the class name defined in two functions: which one a call means is not known
    two = LOCAL_ATTRS.replace("CONV", "nn.Conv2d(c, c, 3, padding=1)").replace("NORM", "nn.BatchNorm2d(c)")
    two += "\n\n" + LOCAL_ATTRS.replace("def build(", "def build_other(").replace(
        "CONV", "nn.Conv2d(c, c, 3, padding=1)").replace("NORM", "nn.GroupNorm(1, c)")
    assert found(two, "ADP007") == []


# ---------- ADP007: a private hook a package base's forward calls

BASE = textwrap.dedent("""\
    from torch import nn


    class BaseModule(nn.Module):
        def forward(self, *args, **kwargs):
            return self._forward(*args, **kwargs)
    """)

HOOK = textwrap.dedent("""\
    import torch
    from torch import nn
    from torch.nn import functional as F

    from srpkg.base import BaseModule


    class Block(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.conv = nn.Conv3d(c, c, 3, padding=1)

        def forward(self, x):
            return F.relu(self.conv(x))


    class Net(BaseModule):
        def __init__(self, c=8):
            super().__init__()
            self.block = Block(c)
            self.conv_sigma = nn.Conv2d(c, c, 3, padding=1)
            self.norm_sigma = nn.BatchNorm2d(c)

        def METHOD(self, h):
            h = self.block(h).mean(2)
            x = self.conv_sigma(h)
            MIDDLE
            x = self.norm_sigma(x)  # pair
            return F.leaky_relu(x)
    """)


def _hook_pairs(root, method="_forward", middle="pass"):
    from adopter.engine import analyze
    from adopter.structure import package_of

    folder = root / "srpkg"
    folder.mkdir(parents=True)
    (folder / "__init__.py").write_text("")
    (folder / "base.py").write_text(BASE)
    path = folder / "net.py"
    text = HOOK.replace("METHOD", method).replace("MIDDLE", middle)
    path.write_text(text)
    line = next(n for n, t in enumerate(text.splitlines(), 1) if "# pair" in t)
    return [f for f in analyze(text, str(path), rules("ADP007"), package_of(str(path))).findings
            if f.rule == "ADP007" and f.line <= line <= f.end_line]


def test_private_hook_the_package_base_forward_calls(tmp_path):
    assert _hook_pairs(tmp_path)


def test_private_hook_near_misses(tmp_path):
    # an activation between the conv and the norm
    assert not _hook_pairs(tmp_path / "a", middle="x = F.relu(x)")
    # a private method the base's forward does not call: dead code, as before
    assert not _hook_pairs(tmp_path / "b", method="_unused")


# ---------- ADP007: a comprehension list held in an attribute, then spread into a Sequential

SELF_LIST = textwrap.dedent("""\
    import torch
    from torch import nn


    class Net(nn.Module):
        def __init__(self, n=3):
            super().__init__()
            self.blocks = [nn.Conv2d(8, 8, 3, padding=1) for _ in range(n)]
            self.blocks.append(nn.Conv2d(8, 8, 3, padding=1, bias=False))
            MIDDLE
            self.blocks.append(nn.BatchNorm2d(8))
            self.blocks = nn.Sequential(*self.blocks)

        def forward(self, x):
            return x + self.blocks(x)
    """)

LOCAL_LIST = textwrap.dedent("""\
    import torch
    from torch import nn


    class Net(nn.Module):
        def __init__(self, n=2):
            super().__init__()
            blocks = [nn.Conv2d(8, 8, 3, padding=1) for _ in range(n)]
            blocks.append(nn.BatchNorm2d(8))
            self.blocks = nn.Sequential(*blocks)

        def forward(self, x):
            return self.blocks(x)
    """)


def test_comprehension_list_in_an_attribute():
    code = SELF_LIST.replace("        MIDDLE\n", "")
    assert finding_at(code, "ADP007", "self.blocks.append(nn.BatchNorm2d(8))") is not None
    fixed = fix_text(code, "model.py", rules("ADP007")).text
    assert "FoldingSequential(*self.blocks)" in fixed
    assert_bn_fold_matches(code, fixed, "Net", (), (2, 8, 6, 6))


def test_comprehension_list_in_a_name():
    # the comprehension's last member (a conv) is followed by the appended norm
    assert finding_at(LOCAL_LIST, "ADP007", "blocks.append(nn.BatchNorm2d(8))") is not None
    fixed = fix_text(LOCAL_LIST, "model.py", rules("ADP007")).text
    assert_bn_fold_matches(LOCAL_LIST, fixed, "Net", (), (2, 8, 6, 6))


def test_comprehension_list_near_misses():
    # a ReLU appended between
    code = SELF_LIST.replace("MIDDLE", "self.blocks.append(nn.ReLU())")
    assert found(code, "ADP007") == []
    # a member replaced by index: which layer sits where is no longer known
    code = SELF_LIST.replace("MIDDLE", "self.blocks[-1] = nn.Identity()")
    assert found(code, "ADP007") == []
    # a comprehension of activations before the norm
    code = LOCAL_LIST.replace("[nn.Conv2d(8, 8, 3, padding=1) for _", "[nn.ReLU() for _")
    assert found(code, "ADP007") == []
