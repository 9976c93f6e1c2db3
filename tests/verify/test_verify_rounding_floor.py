"""The float64 second opinion accepts what float32 rounding of the largest entry explains.

A gradient through a saturated softmax is a sum of large terms that cancel: a small entry then
carries the rounding of those terms (a few units of rounding of the largest entry), which a
fused kernel rounds differently.  A different computation is off by far more.
"""

import torch

from adopter.verify.compare import ROUNDING_FACTOR, Tolerance, compare_named


def _case(nudge: float):
    torch.manual_seed(0)
    exact = torch.randn(64, dtype=torch.float64) * 100
    exact[0] = 400.0  # the largest entry
    exact[5] = 0.01  # a small entry, where cancellation leaves its rounding
    original = exact.float()  # the original: exact to float32 rounding
    patched = original.clone()
    patched[5] += nudge
    ref = exact.clone()
    ref[5] = float(original[5])  # the original is exact at that entry: its error there is 0
    return [("grad", original)], [("grad", patched)], lambda: [("grad", ref)]


def test_an_error_within_rounding_of_the_largest_entry_passes():
    eps = torch.finfo(torch.float32).eps
    nudge = 0.5 * ROUNDING_FACTOR * eps * 400.0  # about 1e-4: past assert_close's atol at 0.01
    original, patched, reference = _case(nudge)
    outcome = compare_named(original, patched, "train gradients", Tolerance(), reference)
    assert outcome.ok, outcome.message
    assert "within float32 rounding" in outcome.message


def test_an_error_past_rounding_of_the_largest_entry_fails():
    eps = torch.finfo(torch.float32).eps
    nudge = 4 * ROUNDING_FACTOR * eps * 400.0  # about 8e-4: a different value, not rounding
    original, patched, reference = _case(nudge)
    outcome = compare_named(original, patched, "train gradients", Tolerance(), reference)
    assert not outcome.ok
    assert "against a float64 run" in outcome.message


def test_without_large_entries_the_floor_stays_absolute():
    # entries near 1: 4 eps is 5e-7, below the 1e-6 floor, which applies
    exact = torch.linspace(-1, 1, 32, dtype=torch.float64)
    original = exact.float()
    patched = original.clone()
    patched[3] += 3e-5  # past assert_close (atol 1e-5) and past the floor
    outcome = compare_named([("y", original)], [("y", patched)], "eval outputs", Tolerance(),
                            lambda: [("y", original.double())])
    assert not outcome.ok
