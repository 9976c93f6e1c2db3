"""Forms found while checking the blind batch cnn32 (torchvision-style CNNs: torch-encoding's
ResNet/ResNeSt and aligned-Xception backbones, a pose-estimation MobileNet's conv factories, a
U-Net's string-chosen norm, a YOLO block with area attention, MTCNN face-detection nets, 3-D
ResNets).  The fixtures are ours.

- Three Linear heads of one feature vector returned together by a module's ``forward`` with one
  of them turned into probabilities first (MTCNN's ONet: ``a = self.cls(x); b = self.box(x);
  c = self.landmarks(x); a = F.softmax(a, dim=1); return c, b, a``) were reported as a fused
  QKV projection (ADP009): three projections of one input returned together count as a
  projection helper handing q, k and v to its caller.  A softmax applied to one projection
  alone makes it class probabilities, never a query, key or value an attention's caller would
  compare: no evidence of an attention, no finding.
Near-misses (still reported): the helper returning q, k, v as they are (also reshaped into
heads), and the same three heads meeting in a product inside the function (the scores'
softmax comes after the projections met).

- A residual block whose ``norm_layer`` parameter defaults to ``None`` and is never filled in
  its body gets its norm class from the file's callers; torch-encoding's ResNet builds it
  through parameters only: ``resnet50()`` calls ``ResNet(Bottleneck, [3, 4, 6, 3])``,
  ``__init__(self, block, layers, norm_layer=nn.BatchNorm2d)`` calls ``self._make_layer(block,
  64, layers[0], norm_layer=norm_layer)``, and ``_make_layer(self, block, ..., norm_layer=None)``
  calls ``block(self.inplanes, planes, norm_layer=norm_layer)``.  Two links were missing: a call
  of a parameter the class is passed for (followed from call to parameter, three calls deep) is
  one of the class's calls, and a method's parameter (``_make_layer``'s ``norm_layer=None``)
  read for what a caller passes gets what the class's ``self._make_layer(...)`` calls pass.
  The block's conv -> norm pairs are then conv -> BatchNorm2d pairs.
Near-misses: the model's default norm an ``nn.InstanceNorm2d``, the block parameter bound again
in ``_make_layer``, a pre-activation block (BN first).

- A package's own synchronised BatchNorm on torch's ``_BatchNorm`` whose eval path is the base's
  forward (torch-encoding's ``SyncBatchNorm``: ``def _check_input_dim(self, x): pass`` and
  ``if not self.training: return super().forward(x)``), the default ``norm_layer`` of its
  segmentation heads, in a sibling module.  Out of training it is _BatchNorm's own
  F.batch_norm on the running statistics, of whatever rank its input has: after a Conv2d a
  BatchNorm2d, as torch's nn.SyncBatchNorm is.  Reported, not fixed (lead ruling, session 25).
  Two readings were missing: ``return super().forward(x)`` as the eval path (only an explicit
  ``F.batch_norm`` on the module's own statistics was read), and an input check that checks
  nothing (rank-free, read as a BatchNorm2d after a Conv2d).
Near-misses: the class's forward with no eval path of the base's (its own computation always),
``super().forward`` of another value than the input, an input check raising unless the rank is
3 (a BatchNorm1d), a Conv1d before it.
"""

from __future__ import annotations

import textwrap

from corpus_forms import assert_bn_fold_matches, found, rules

from adopter.synth import fix_text

HEADS = textwrap.dedent("""\
    import torch.nn as nn
    import torch.nn.functional as F


    class FaceHeads(nn.Module):
        def __init__(self, dim):
            super().__init__()
            self.cls = nn.Linear(dim, 2)
            self.box = nn.Linear(dim, 4)
            self.marks = nn.Linear(dim, 10)

        def forward(self, x):
            a = self.cls(x)
            b = self.box(x)
            c = self.marks(x)
            NORMALIZE
            return c, b, a
""")


def _heads(normalize: str) -> str:
    return HEADS.replace("NORMALIZE", normalize)


def test_heads_returned_with_one_softmaxed_are_no_qkv():
    assert found(_heads("a = F.softmax(a, dim=1)"), "ADP009") == []
    assert found(_heads("a = a.softmax(-1)"), "ADP009") == []
    assert found(_heads("a = torch.softmax(a, dim=-1)").replace(
        "import torch.nn as nn", "import torch\nimport torch.nn as nn"), "ADP009") == []


PROJECT = textwrap.dedent("""\
    import torch.nn as nn


    class Project(nn.Module):
        def __init__(self, dim, heads):
            super().__init__()
            self.heads = heads
            self.q = nn.Linear(dim, dim)
            self.k = nn.Linear(dim, dim)
            self.v = nn.Linear(dim, dim)

        def forward(self, x):
            b, n, _ = x.shape
            q = self.q(x)
            k = self.k(x)
            v = self.v(x)
            SHAPE
            return q, k, v
""")


def test_projection_helper_returning_qkv_still_reported():
    # near-miss: the projections handed on as they are, or reshaped into heads
    assert len(found(PROJECT.replace("SHAPE", "pass"), "ADP009")) == 1
    shaped = PROJECT.replace("SHAPE", "q, k, v = (t.view(b, n, self.heads, -1).transpose(1, 2) for t in (q, k, v))")
    assert len(found(shaped, "ADP009")) == 1


def test_heads_meeting_in_a_product_still_reported():
    # near-miss: a softmax after two projections met (the scores) is attention, reported
    code = _heads("s = (a @ b.transpose(-1, -2)).softmax(-1)\n        c = s @ c")
    assert len(found(code, "ADP009")) == 1


BLOCKS = textwrap.dedent("""\
    import torch.nn as nn


    class Bottleneck(nn.Module):
        expansion = 4

        def __init__(self, inplanes, planes, stride=1, norm_layer=None):
            super().__init__()
            self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
            self.bn1 = norm_layer(planes)
            self.conv2 = nn.Conv2d(planes, planes * 4, 3, stride=stride, padding=1, bias=False)
            self.bn2 = norm_layer(planes * 4)
            self.relu = nn.ReLU(inplace=True)

        def forward(self, x):
            out = self.relu(BLOCK_FIRST)  # first
            out = self.bn2(self.conv2(out))  # second
            return self.relu(out)


    class ResNet(nn.Module):
        def __init__(self, block, layers, norm_layer=NORM):
            super().__init__()
            self.inplanes = 64
            self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
            self.bn1 = norm_layer(64)
            self.layer1 = self._make_layer(block, 64, layers[0], norm_layer=norm_layer)
            self.layer2 = self._make_layer(block, 128, layers[1], stride=2, norm_layer=norm_layer)

        def _make_layer(self, block, planes, blocks, stride=1, norm_layer=None):
            AGAIN
            layers = [BUILD(self.inplanes, planes, stride, norm_layer=norm_layer)]
            self.inplanes = planes * block.expansion
            for _ in range(1, blocks):
                layers.append(BUILD(self.inplanes, planes, norm_layer=norm_layer))
            return nn.Sequential(*layers)

        def forward(self, x):
            return self.layer2(self.layer1(self.bn1(self.conv1(x))))  # stem


    def resnet50(**kwargs):
        return ResNet(PASS, [3, 4, 6, 3], **kwargs)
""")


def _blocks(build="block", norm="nn.BatchNorm2d", again="pass", first="self.bn1(self.conv1(x))",
            passed="Bottleneck"):
    return (BLOCKS.replace("BUILD", build).replace("NORM", norm).replace("AGAIN", again)
            .replace("BLOCK_FIRST", first).replace("PASS", passed))


def _lines(code):
    return sorted(code.splitlines()[f.line - 1].split("#")[-1].strip() for f in found(code, "ADP007"))


def test_block_built_through_a_class_parameter():
    assert _lines(_blocks()) == ["first", "second", "stem"]


def test_block_through_a_class_parameter_fix_folds():
    code = _blocks()
    fixed = fix_text(code, "model.py", rules("ADP007")).text
    assert fixed.count("conv_bn(") == 3
    # the model built through resnet50's path, ResNet(Bottleneck, ...) with its default norm:
    # the same outputs in eval, with drawn running statistics
    assert_bn_fold_matches(code, fixed, "resnet50", (), (2, 3, 32, 32))


def test_block_class_passed_by_keyword():
    code = _blocks(passed="Bottleneck").replace("ResNet(Bottleneck, [3, 4, 6, 3]", "ResNet(layers=[3, 4, 6, 3], block=Bottleneck")
    assert _lines(code) == ["first", "second", "stem"]


def test_block_built_by_name_in_a_method_with_a_none_norm_default():
    # _make_layer's norm_layer=None is what __init__'s self._make_layer(...) calls pass
    assert _lines(_blocks(build="Bottleneck")) == ["first", "second", "stem"]


def test_block_near_misses():
    # the model's norm is no BatchNorm: no pair in the block, none in the stem
    assert _lines(_blocks(norm="nn.InstanceNorm2d")) == []
    # the block parameter bound again before it is called: what it builds is not known
    assert _lines(_blocks(again="block = make_block(block)")) == ["stem"]
    # pre-activation: the block's first norm comes before its conv
    assert "first" not in _lines(_blocks(first="self.conv1(self.bn1(x))"))


SYNC = textwrap.dedent("""\
    import torch.nn as nn
    from torch.nn.modules.batchnorm import _BatchNorm


    class SyncBN(_BatchNorm):
        def __init__(self, num_features, eps=1e-5, momentum=0.1, sync=True):
            super().__init__(num_features, eps=eps, momentum=momentum, affine=True)
            self.sync = sync

        CHECK

        def forward(self, x):
            EVAL
            return all_reduce_batch_norm(x, self.weight, self.bias, self.running_mean, self.running_var)
""")
SYNC_CHECK = "def _check_input_dim(self, x):\n            pass"
SYNC_EVAL = "if not self.training:\n                return super().forward(x)"

BLOCK = textwrap.dedent("""\
    import torch.nn as nn


    class Block(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.conv = nn.CONV(c, c, 3, padding=1, bias=False)
            self.bn = SyncBN(c)

        def forward(self, x):
            return self.bn(self.conv(x))  # pair
""")

HEAD = textwrap.dedent("""\
    import torch.nn as nn
    from .nn import SyncBN


    class Head(nn.Module):
        def __init__(self, c, norm_layer=SyncBN):
            super().__init__()
            self.conv5 = nn.Sequential(
                nn.Conv2d(c, c // 4, 3, padding=1, bias=False),
                norm_layer(c // 4),  # pair
                nn.ReLU(),
            )

        def forward(self, x):
            return self.conv5(x)
""")


def _sync(check=SYNC_CHECK, eval_path=SYNC_EVAL):
    return SYNC.replace("CHECK", check).replace("EVAL", eval_path)


def _block(conv="Conv2d", sync=None):
    return (sync if sync is not None else _sync()) + "\n\n" + BLOCK.replace("CONV", conv)


def test_own_sync_batch_norm_with_the_base_forward_in_eval():
    for spelling in ("super().forward(x)", "super(SyncBN, self).forward(x)"):
        code = _block(sync=_sync(eval_path=SYNC_EVAL.replace("super().forward(x)", spelling)))
        (finding,) = found(code, "ADP007")
        assert finding.line <= code.splitlines().index("        return self.bn(self.conv(x))  # pair") + 1
        result = fix_text(code, "model.py", rules("ADP007"))  # reported, not fixed
        assert result.text == code
        assert "overrides forward with the BatchNorm computation in eval mode" in " ".join(map(str, result.skipped))


def test_own_sync_batch_norm_in_a_sibling_module(tmp_path):
    from adopter.engine import analyze
    from adopter.structure.names import package_of

    package = tmp_path / "segpkg"
    (package / "nn").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "nn" / "__init__.py").write_text("from .syncbn import *\n")
    (package / "nn" / "syncbn.py").write_text("__all__ = ['SyncBN']\n" + _sync())
    model = package / "heads.py"
    model.write_text(HEAD)
    findings = [f for f in analyze(HEAD, str(model), rules("ADP007"), package=package_of(str(model))).findings
                if f.rule == "ADP007"]
    # (a pair inside an nn.Sequential is fixed as the container: FoldingSequential runs a
    # member overriding forward as written)
    assert len(findings) == 1 and findings[0].line <= HEAD.splitlines().index(
        "            norm_layer(c // 4),  # pair") + 1 <= findings[0].end_line


def test_own_sync_batch_norm_near_misses():
    # no eval path of the base's: its own computation in eval too
    assert found(_block(sync=_sync(eval_path="pass")), "ADP007") == []
    # the base's forward of another value than the input
    assert found(_block(sync=_sync(eval_path=SYNC_EVAL.replace("forward(x)", "forward(x * 2)"))), "ADP007") == []
    # an input check for 3-D input: a BatchNorm1d
    check_1d = "def _check_input_dim(self, x):\n            if x.dim() != 3:\n                raise ValueError('3-D')"
    assert found(_block(sync=_sync(check=check_1d)), "ADP007") == []
    # a Conv1d before it
    assert found(_block(conv="Conv1d"), "ADP007") == []
