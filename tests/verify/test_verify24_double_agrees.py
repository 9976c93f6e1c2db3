"""verify24 (session 43): a float32 failure judged again with both modules in float64.

An exact patch can fail verify's float32 comparison when the patched arithmetic rounds worse
than the original's and something downstream magnifies it (a fused attention backward over many
keys, then a train-mode BatchNorm).  The modules below are our own: the original accumulates a
long reduction whose terms cancel in float64 and rounds the result to its input's dtype, the
patched one does the same reduction in the input's dtype; a train-mode BatchNorm follows.  In
float32 the patched outputs and gradients are off by far more than the original's rounding, so
the float64 second opinion (patched error <= 4x the original's) fails; in float64 the two are
the same arithmetic and agree to float64 rounding, so the verdict is a pass that says so.  A
patch that drops a term of the reduction, or scales its result by 1 + 1e-5, still fails.
"""
from __future__ import annotations

import torch
from torch import nn

from adopter.verify.build import Call, Pair
from adopter.verify.compare import Tolerance, check_eval, check_train, double_tolerance

N = 4096  # the reduction's length
OFFSET = 1000.0  # every input entry carries it: terms of 1e3 cancelling to results of about 64


class Exact(nn.Module):  # the original: the reduction accumulated in float64
    def __init__(self):
        super().__init__()
        w = torch.randn(N, 4)
        self.w = nn.Parameter(w - w.mean(0))  # columns summing to 0: the offset cancels
        self.norm = nn.BatchNorm1d(4)

    def forward(self, x):
        h = (x.double() @ self.w.double()).to(x.dtype)
        return self.norm(h)


class SameInInputDtype(Exact):  # the exact patch: the same reduction in the input's dtype
    def forward(self, x):
        return self.norm(x @ self.w)


class DropsATerm(Exact):  # wrong: the reduction's first term left out (a dropped key)
    def forward(self, x):
        return self.norm(x[:, 1:] @ self.w[1:])


class ScalesSlightly(Exact):  # wrong, by little: the result scaled by 1 + 1e-5 before a non-BN path
    def forward(self, x):
        h = x @ self.w
        return self.norm(h) + 1e-5 * h


def _pair(patched_class) -> Pair:
    torch.manual_seed(0)
    original = Exact()
    patched = patched_class()
    patched.load_state_dict(original.state_dict())
    x = OFFSET + torch.randn(16, N)
    return Pair(original, patched, Call((x,), {}))


def test_the_exact_patch_fails_in_float32_alone():
    # what main did: the float64 second opinion alone (no patched float64 run) rejects it
    from adopter.verify import compare

    pair = _pair(SameInInputDtype)
    x = pair.call.args[0]
    a = Exact.forward(pair.original, x.clone())
    b = SameInInputDtype.forward(pair.patched, x.clone())
    a, b = a.detach(), b.detach()
    outcome = compare.compare_named([("y", a)], [("y", b)], "train outputs", Tolerance(),
                                    lambda: [("y", Exact.forward(pair.original.double(), x.double()).detach())])
    pair.original.float()
    assert not outcome.ok, outcome.message
    assert "against a float64 run" in outcome.message


def test_an_exact_patch_passes_when_float64_agrees():
    pair = _pair(SameInInputDtype)
    outcome = check_train(pair, torch.device("cpu"), Tolerance())
    assert outcome.ok, outcome.message
    assert "the float32 difference is rounding" in outcome.message
    assert "float32 max abs diff" in outcome.message and "in float64 agree to" in outcome.message
    assert outcome.max_abs_diff > 1e-4  # the float32 difference itself was large
    outcome = check_eval(_pair(SameInInputDtype), torch.device("cpu"), Tolerance())
    assert outcome.ok, outcome.message


def test_a_patch_that_drops_a_term_still_fails():
    pair = _pair(DropsATerm)
    assert not check_eval(pair, torch.device("cpu"), Tolerance()).ok
    outcome = check_train(_pair(DropsATerm), torch.device("cpu"), Tolerance())
    assert not outcome.ok
    assert "the patched float64 run differs too" in outcome.message


def test_a_patch_off_by_1e5_relative_still_fails():
    outcome = check_train(_pair(ScalesSlightly), torch.device("cpu"), Tolerance())
    assert not outcome.ok
    assert "the patched float64 run differs too" in outcome.message


def test_the_float64_tolerance_grows_with_reduction_and_scale():
    ref = torch.full((3,), 5.0, dtype=torch.float64)
    eps = torch.finfo(torch.float64).eps
    assert double_tolerance(ref, 192) == 4 * eps * 192 * 5.0
    assert double_tolerance(ref, 1) < double_tolerance(ref, 192)
    assert double_tolerance(torch.zeros(3, dtype=torch.float64), 8) == 4 * eps * 8  # scale at least 1
    assert double_tolerance(ref, 4096) < 1e-10  # far below float32 rounding


def test_the_reduction_length_is_the_largest_input_or_parameter():
    # a convolution's bias gradient sums over every position: the whole input's element count
    from adopter.verify.compare import _reduction

    assert _reduction(Call((torch.zeros(2, 3, 4),), {}), nn.Linear(5, 7)) == 35
    assert _reduction(Call((torch.zeros(2, 30, 4),), {}), nn.Linear(5, 7)) == 240
