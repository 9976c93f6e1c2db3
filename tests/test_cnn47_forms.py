"""Forms found while checking the blind batches of cnn47 (a wavelet ResNet, RVT and GFNet of an
adversarial-robustness package, training recipes; 23 of 24 `yes` found at first sight, the miss
torchvision's borrowed layers, a ruling miss) and probing the classic CNNs as course code writes
them.  The fixtures are ours.

- torch's lazy layers (``nn.LazyConv2d(out, k)`` then ``nn.LazyBatchNorm2d()``: the residual
  blocks of the Dive-into-Deep-Learning course code) were not typed as a convolution and a
  BatchNorm.  A lazy layer is the plain layer once its first input fixes the input size (the
  module's class then becomes ``nn.Conv2d`` / ``nn.BatchNorm2d``), so the pair folds as the
  plain one does; the constructors take no input size, so no argument is kept.  The fix's
  ``conv_bn`` runs the two modules as written until the first call has made them plain.
Near-misses: a lazy convolution with a ReLU before the norm, a LazyConvTranspose2d before a
LazyBatchNorm2d, a LazyLinear before a LazyBatchNorm1d (LazyLinear is not typed: a Linear fix
builds from its arguments) stay unreported.
"""

from __future__ import annotations

from corpus_forms import found, line_of, rules

from adopter.synth import fix_text

RESIDUAL = """\
import torch
from torch import nn
from torch.nn import functional as F


class Residual(nn.Module):
    def __init__(self, num_channels, use_1x1conv=False, strides=1):
        super().__init__()
        self.conv1 = nn.LazyConv2d(num_channels, kernel_size=3, padding=1, stride=strides)
        self.conv2 = nn.LazyConv2d(num_channels, kernel_size=3, padding=1)
        if use_1x1conv:
            self.conv3 = nn.LazyConv2d(num_channels, kernel_size=1, stride=strides)
        else:
            self.conv3 = None
        self.bn1 = nn.LazyBatchNorm2d()
        self.bn2 = nn.LazyBatchNorm2d()

    def forward(self, X):
        Y = F.relu(self.bn1(self.conv1(X)))
        Y = self.bn2(self.conv2(Y))
        if self.conv3:
            X = self.conv3(X)
        Y += X
        return F.relu(Y)


class Stem(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(
            nn.LazyConv2d(8, kernel_size=3, padding=1), nn.LazyBatchNorm2d(), nn.ReLU(),
            nn.LazyConv2d(8, kernel_size=3, padding=1), nn.ReLU(), nn.LazyBatchNorm2d(),
            nn.LazyConvTranspose2d(8, kernel_size=2, stride=2), nn.LazyBatchNorm2d())

    def forward(self, x):
        return self.net(x)


class Head(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.LazyLinear(16)
        self.bn = nn.LazyBatchNorm1d()

    def forward(self, x):
        return self.bn(self.fc(x))
"""


def _covered(code, rule, needle):
    line = line_of(code, needle)
    return any(f.line <= line <= f.end_line for f in found(code, rule))


def test_lazy_conv_then_lazy_batchnorm_is_a_pair():
    assert _covered(RESIDUAL, "ADP007", "Y = F.relu(self.bn1(self.conv1(X)))")
    assert _covered(RESIDUAL, "ADP007", "Y = self.bn2(self.conv2(Y))")


def test_lazy_pair_inside_a_sequential():
    assert _covered(RESIDUAL, "ADP007", "nn.LazyConv2d(8, kernel_size=3, padding=1), nn.LazyBatchNorm2d(), nn.ReLU(),")
    assert len(found(RESIDUAL, "ADP007")) == 3  # the two blocks' pairs and this one, nothing else


def test_near_miss_relu_between_and_transposed_conv_are_not_pairs():
    assert not _covered(RESIDUAL, "ADP007", "nn.LazyConv2d(8, kernel_size=3, padding=1), nn.ReLU(), nn.LazyBatch")
    assert not _covered(RESIDUAL, "ADP007", "nn.LazyConvTranspose2d(8, kernel_size=2, stride=2)")


def test_near_miss_lazy_linear_is_not_typed():
    assert not found(RESIDUAL, "ADP008")


def test_lazy_pair_fix_folds_exactly_once_materialised():
    import torch

    fixed = fix_text(RESIDUAL, "model.py", rules("ADP007")).text
    assert "conv_bn(self.conv1(X)" not in fixed and "conv_bn(X, self.conv1, self.bn1)" in fixed
    original, patched = {}, {}
    exec(compile(RESIDUAL, "orig.py", "exec"), original)  # noqa: S102 (our own fixture)
    exec(compile(fixed, "fixed.py", "exec"), patched)  # noqa: S102
    for cls, shape in (("Residual", (2, 4, 6, 6)), ("Stem", (2, 3, 6, 6))):
        torch.manual_seed(0)
        a = original[cls](4) if cls == "Residual" else original[cls]()
        b = patched[cls](4) if cls == "Residual" else patched[cls]()
        x = torch.randn(*shape, dtype=torch.float64)
        a.double().eval()
        b.double().eval()
        with torch.no_grad():
            b(x)  # the first call, lazy: the patched module runs the two as written
            a(x)
            for m in a.modules():
                if isinstance(m, torch.nn.BatchNorm2d):
                    m.running_mean.uniform_(-1, 1)
                    m.running_var.uniform_(0.5, 2)
            b.load_state_dict(a.state_dict(), strict=True)
            assert type(b.conv1 if cls == "Residual" else b.net[0]) is torch.nn.Conv2d  # materialised
            torch.testing.assert_close(b(x), a(x), rtol=0, atol=1e-10)
