"""Forms found while checking the blind batch of research60 (transformer code outside NLP and
vision: time-series, tabular, offline-RL, protein/RNA and graph models).  The fixtures are ours.

- A hand-written RMSNorm after an ``if`` that returns a fused norm kernel only outside
  training: ``if (not self.training or <weight frozen>) and <kernel available>: return
  rms_norm(...)``.  Training a module whose weight is trained always runs the hand-written
  code, so it is the training path, not a fallback of an adopted kernel: F.rms_norm helps
  there.  The same holds when the kernel is the ``if`` branch and the norm its ``else``.
Near-misses: a norm after an ``if`` that takes the kernel whenever it is available, or
``not self.training or use_fused`` (a flag may take the kernel in training too), stays an
adopted kernel's fallback and unreported.
"""

from __future__ import annotations

import pytest

from corpus_forms import found, line_of, rules

from adopter.synth import fix_text

EVAL_ONLY = """\
import torch


class EarlyReturnNorm(torch.nn.Module):
    def __init__(self, dim, eps=1e-8):
        super().__init__()
        self.eps = eps
        self.scale = torch.nn.Parameter(torch.ones(dim))

    def forward(self, x):
        if ((not self.training) or (self.scale is not None and not self.scale.requires_grad)) and HAVE_FUSED:
            return rms_norm(x, self.scale, self.eps)
        x_normed = x / torch.sqrt(torch.mean(x * x, dim=-1, keepdim=True) + self.eps)
        return x_normed * self.scale


class ElseBranchNorm(torch.nn.Module):
    def __init__(self, dim, eps=1e-6):
        super().__init__()
        self.eps = eps
        self.weight = torch.nn.Parameter(torch.ones(dim))

    def forward(self, x):
        if not self.training:
            y = rms_norm(x, self.weight, self.eps)
        else:
            y = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight
        return y
"""

FALLBACKS = """\
import torch


class AvailableNorm(torch.nn.Module):
    def __init__(self, dim, eps=1e-8):
        super().__init__()
        self.eps = eps
        self.scale = torch.nn.Parameter(torch.ones(dim))

    def forward(self, x):
        if HAVE_FUSED:
            return rms_norm(x, self.scale, self.eps)
        return x / torch.sqrt(torch.mean(x * x, dim=-1, keepdim=True) + self.eps) * self.scale


class FlagNorm(torch.nn.Module):
    def __init__(self, dim, eps=1e-8, use_fused=True):
        super().__init__()
        self.eps = eps
        self.use_fused = use_fused
        self.scale = torch.nn.Parameter(torch.ones(dim))

    def forward(self, x):
        if not self.training or self.use_fused:
            return rms_norm(x, self.scale, self.eps)
        return x / torch.sqrt(torch.mean(x * x, dim=-1, keepdim=True) + self.eps) * self.scale
"""


@pytest.mark.parametrize("needle", ["x_normed = x / torch.sqrt", "y = x * torch.rsqrt"])
def test_norm_whose_kernel_runs_only_outside_training_is_reported(needle):
    lines = [f.line for f in found(EVAL_ONLY, "ADP011")]
    assert line_of(EVAL_ONLY, needle) in lines


def test_fallbacks_of_an_adopted_kernel_stay_unreported():
    assert found(FALLBACKS, "ADP011") == []


def test_the_fix_keeps_the_training_path_numerics():
    import torch

    fixed = fix_text(EVAL_ONLY, "model.py", rules("ADP011")).text
    assert fixed.count("adopter_rms_norm(x, x.shape[-1:], eps=self.eps)") == 2  # both training paths
    original, patched = {}, {}
    exec(compile(EVAL_ONLY, "orig.py", "exec"), original)  # noqa: S102 (our own fixture)
    exec(compile(fixed, "fixed.py", "exec"), patched)  # noqa: S102
    torch.manual_seed(0)
    x = torch.randn(3, 5, 16, dtype=torch.float64)
    for cls in ("EarlyReturnNorm", "ElseBranchNorm"):
        a, b = original[cls](16), patched[cls](16)
        a.train(), b.train()  # (the training path: the fused branch is never taken)
        with torch.no_grad():
            for m in (a, b):
                next(m.parameters()).uniform_(0.5, 1.5)
            next(b.parameters()).copy_(next(a.parameters()))
        # float64, a 16-wide mean: agreement to rounding of a few ulps
        torch.testing.assert_close(b(x), a(x), rtol=1e-12, atol=1e-12)
