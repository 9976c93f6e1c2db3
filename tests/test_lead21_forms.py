"""A BatchNorm class written on torch's private ``_BatchNorm`` base (session 21, the lead).

Segmentation repositories carry a synchronised BatchNorm of their own (mit-semseg's
``SynchronizedBatchNorm2d``, DeepLab ports' ``sync_batchnorm``): ``class _SyncBN(_BatchNorm)``
whose ``forward`` returns ``F.batch_norm`` on its running statistics unless it is training on
several devices, and ``class SyncBN2d(_SyncBN)`` whose ``_check_input_dim`` asks for 4-D input.
Used through an alias (``BatchNorm2d = SyncBN2d``) after a Conv2d, it is a conv -> BatchNorm2d
pair in eval mode, which the engine did not see: ``_BatchNorm`` has no dimension and a
lower-case first letter, so the class was no layer at all (16 misses in the dev corpus).  The
class is now typed ``BatchNorm<n>d`` from its input check, and a ``forward`` that returns the
BatchNorm computation whenever it is not training makes the pair reported, not fixed (the
kernel folds plain ``nn.BatchNorm2d`` only and would run this one as written).  Near-misses: an
input check for 3-D or 2-D input (a BatchNorm1d), no input check, a forward whose eval path
computes something else, ``F.batch_norm`` always on batch statistics.  The fixtures are ours.
"""

from __future__ import annotations

import ast

import pytest

from adopter.engine import analyze
from adopter.structure import package_of
from adopter.structure.layers import _when_not_training
from adopter.synth import fix_text
from corpus_forms import finding_at, rules

NORM = '''\
import torch
import torch.nn.functional as F
from torch.nn.modules.batchnorm import _BatchNorm


class _SyncBN(_BatchNorm):
    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True):
        super().__init__(num_features, eps=eps, momentum=momentum, affine=affine)
        self._parallel = False

    def forward(self, input):
        if TEST:
            return F.batch_norm(input, self.running_mean, self.running_var, self.weight, self.bias,
                                TRAINING, self.momentum, self.eps)
        raise NotImplementedError("the replicas' statistics")


class SyncBN2d(_SyncBN):
    def _check_input_dim(self, input):
        if CHECK:
            raise ValueError("expected 4D input")
'''

NET = '''\
import torch
from torch import nn

from segpkg.lib.sync import SyncBN2d

BatchNorm2d = SyncBN2d


class Block(nn.Module):
    def __init__(self, width):
        super().__init__()
        self.conv = nn.Conv2d(width, width, 3, padding=1, bias=False)
        self.bn = BatchNorm2d(width)

    def forward(self, x):
        return torch.relu(self.bn(self.conv(x)))  # pair
'''


def _package(root, test="not (self._parallel and self.training)", check="input.dim() != 4",
             training="self.training"):
    lib = root / "segpkg" / "lib" / "sync"
    lib.mkdir(parents=True)
    for folder in (root / "segpkg", root / "segpkg" / "lib"):
        (folder / "__init__.py").write_text("")
    (lib / "__init__.py").write_text("from .norm import *\n")
    text = NORM.replace("TEST", test).replace("CHECK", check).replace("TRAINING", training)
    (lib / "norm.py").write_text(text)
    (root / "segpkg" / "net.py").write_text(NET)
    return root / "segpkg" / "net.py"


def _pair(path):
    text = path.read_text()
    line = next(n for n, t in enumerate(text.splitlines(), 1) if "# pair" in t)
    return [f for f in analyze(text, str(path), rules("ADP007"), package_of(str(path))).findings
            if f.rule == "ADP007" and f.line <= line <= f.end_line]


def test_sibling_sync_batchnorm_after_conv_is_reported(tmp_path):
    assert _pair(_package(tmp_path))


def test_sibling_sync_batchnorm_is_not_fixed_with_its_reason(tmp_path):
    path = _package(tmp_path)
    result = fix_text(path.read_text(), str(path), rules("ADP007"), package_of(str(path)))
    assert result.text == path.read_text()
    reasons = " ".join(str(s) for s in result.skipped)
    assert "overrides forward with the BatchNorm computation in eval mode" in reasons


def test_is_training_test_spelled_directly(tmp_path):
    assert _pair(_package(tmp_path, test="not self.training or not self._parallel"))


@pytest.mark.parametrize("check", ["input.dim() != 2 and input.dim() != 3", "input.dim() != 5",
                                   "input.dim() < 4"])
def test_other_input_ranks_are_no_batchnorm2d(tmp_path, check):
    assert not _pair(_package(tmp_path, check=check))


@pytest.mark.parametrize("test", ["self.training", "self._parallel", "self._parallel and not self.training"])
def test_eval_path_not_known_to_be_the_batchnorm(tmp_path, test):
    assert not _pair(_package(tmp_path, test=test))


def test_batch_statistics_always_is_no_eval_batchnorm(tmp_path):
    assert not _pair(_package(tmp_path, training="True"))


SAME_FILE = '''\
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm


class FrozenishBN(_BatchNorm):
    def _check_input_dim(self, input):
        if input.dim() != 4:
            raise ValueError("4-D")

    def forward(self, input):
        if not self.training:
            return F.batch_norm(input, self.running_mean, self.running_var, self.weight, self.bias,
                                self.training, self.momentum, self.eps)
        return super().forward(input)


class Stem(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3)
        self.bn = FrozenishBN(8)

    def forward(self, x):
        return self.bn(self.conv(x))  # pair
'''


def test_same_file_batchnorm_subclass_of_the_private_base():
    assert finding_at(SAME_FILE, "ADP007", "# pair") is not None


def test_same_file_subclass_without_input_check_is_no_layer():
    code = SAME_FILE.replace('''    def _check_input_dim(self, input):
        if input.dim() != 4:
            raise ValueError("4-D")
''', "")
    assert finding_at(code, "ADP007", "# pair") is None


@pytest.mark.parametrize("test, value", [
    ("self.training", False), ("not self.training", True), ("not (self.p and self.training)", True),
    ("self.p and self.training", False), ("self.p or self.training", None), ("not self.p", None),
    ("not self.training or self.p", True), ("self.training or not self.p", None),
])
def test_truth_when_not_training(test, value):
    assert _when_not_training(ast.parse(test, mode="eval").body) is value
