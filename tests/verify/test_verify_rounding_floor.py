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


# -- no float64 run to ask: only the floor, units of rounding of the tensor's largest entry ------

def _no_reference(nudge: float):
    torch.manual_seed(0)
    original = (torch.randn(64, dtype=torch.float64) * 100).float()
    original[0] = 400.0  # the largest entry
    original[5] = 0.01  # a small entry, where a sum of large terms that cancel leaves their rounding
    patched = original.clone()
    patched[5] += nudge
    return [("grad", original)], [("grad", patched)]


ULP_400 = float(torch.nextafter(torch.tensor(400.0), torch.tensor(500.0))) - 400.0  # 3.05e-5


def test_without_a_float64_run_an_ulp_of_the_largest_entry_passes():
    # one float32 unit of 400 at the small entry (past assert_close's atol 1e-5 there): the
    # rounding a reordered sum of millions of large terms leaves (nuwa's position-bias gradient)
    original, patched = _no_reference(ULP_400)
    outcome = compare_named(original, patched, "train gradients", Tolerance(), None)
    assert outcome.ok, outcome.message
    assert "no float64 run" in outcome.message


def test_without_a_float64_run_a_small_dropped_term_still_fails():
    # a bias of 1e-3 left out at one entry: far past 4 units of rounding of 400 (1.9e-4)
    original, patched = _no_reference(1e-3)
    outcome = compare_named(original, patched, "train gradients", Tolerance(), None)
    assert not outcome.ok
    assert "no float64 run" in outcome.message


def test_a_float64_run_that_raises_is_no_float64_run():
    def raises():
        raise RuntimeError("expected scalar type Double but found Float")  # a module's own .float()

    original, patched = _no_reference(1e-3)
    assert not compare_named(original, patched, "train gradients", Tolerance(), raises).ok
    original, patched = _no_reference(ULP_400)
    assert compare_named(original, patched, "train gradients", Tolerance(), raises).ok
