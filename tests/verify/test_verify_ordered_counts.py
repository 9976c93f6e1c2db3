"""A constructor argument the class's code only orders against numbers (``if self.spare <= 0:``,
``min(n, self.horizon)``) is a count: verify guesses a small int for it, as for an ``int``
annotation, where nothing else says what it is (``facts.Reads.ordered``, the last resort of
``construct._param_candidates``; compressive-transformer's ``mem_len`` and ``cmem_len``).
Fixture ``research/ordered_counts`` (a recent-window attention of ours): fixed and verified; on
main its build stopped at "cannot infer argument `horizon`"."""

from __future__ import annotations

import pytest

pytest.importorskip("torch")

from test_verify_research import fix_then_verify  # noqa: E402
from test_verify_window_modes import _candidates  # noqa: E402

from adopter.verify.construct import NeedsFactory  # noqa: E402
from adopter.verify.result import PASS  # noqa: E402


def test_the_window_attention_is_built_and_verified(tmp_path, capsys):
    patches, _ = fix_then_verify(tmp_path, capsys, "ordered_counts", "attention.py")
    rows = [r for r in patches if r["rule"] == "ADP010"]
    assert [r["class"] for r in rows] == ["RecentAttention"]
    assert rows[0]["verdict"] == PASS, rows


def _source(use: str) -> str:
    return (
        "class A:\n"
        "    def __init__(self, value):\n"
        "        self.value = value\n"
        "    def forward(self, x, n):\n"
        f"        {use}\n"
        "        return x\n")


@pytest.mark.parametrize("use", ["if self.value <= 0: x = x * 2", "if 3 > self.value: x = x * 2",
                                 "m = min(n, self.value)", "m = max(self.value, n, 1)"])
def test_a_value_ordered_against_numbers_is_a_count(use):
    found = _candidates(_source(use), "value")
    assert found and all(isinstance(v, int) and v > 0 for v in found)


@pytest.mark.parametrize("use", ["if self.value < 'm': x = x * 2", "m = min(self.value)",
                                 "if self.value > (1, 2): x = x * 2", "m = min(*n, self.value)"])
def test_a_value_ordered_against_no_number_says_nothing(use):
    # against a string or a tuple, or the only argument of min (a sequence): not a count
    with pytest.raises(NeedsFactory):
        _candidates(_source(use), "value")
