"""ADP010's if / elif guard (sites73 form 5) copies the chain's tests before the region and the
original chain evaluates them again: a test that calls something other than a known pure read
(``self.kind() == "mul"``, a method counting its calls) would run twice, so the site is declined
(review58, session 45).  Tests that only read -- an attribute, ``isinstance``, ``len``,
``x.dim()``, ``x.size(i)`` -- keep the fused arm and compute what the original does in float64."""

from __future__ import annotations

import pytest
from corpus_forms import FusedCalls, edit, float64_pair
from test_sites73_forms import ELIF_ARM, _fix, _fused, _same

COUNTING = edit(edit(edit(ELIF_ARM, 'if self.kind == "add":', 'if self.mode() == "add":'),
                     'elif self.kind == "mul":', 'elif self.mode() == "mul":'),
                "    def forward(self, x):\n        b, t, _ = x.size()",
                "    def mode(self):\n        self.calls += 1\n        return self.kind\n\n"
                "    def forward(self, x):\n        self.calls = getattr(self, 'calls', 0)\n"
                "        b, t, _ = x.size()")
COUNTING = edit(COUNTING, "        return v, a\n", "        return v * self.calls, a\n")


@pytest.mark.parametrize("test", ['self.mode() == "mul"', '(w := self.kind) == "mul"',
                                  'str(self.kind) == "mul"'])
def test_an_elif_test_that_may_do_more_than_read_is_declined(test):
    source = COUNTING if test.startswith("self.mode") else \
        edit(ELIF_ARM, 'elif self.kind == "mul":', f"elif {test}:")
    result = _fix(source)
    assert result.applied == [] and "second time" in result.skipped[0][1], result.skipped


def test_the_counting_test_runs_once_per_forward_in_the_original():
    """Not idle: a copy of the chain's tests before it (what the guard would do) changes the output."""
    torch = pytest.importorskip("torch")
    doubled = edit(COUNTING, "        if self.mode() == \"add\":",
                   "        _ = self.mode() == \"add\" or self.mode() == \"mul\"\n        if self.mode() == \"add\":")
    a, b = float64_pair(COUNTING, doubled, "Model", kind="mul")
    x = torch.randn(3, 5, 8, dtype=torch.float64)
    assert not torch.allclose(a(x), b(x))


@pytest.mark.parametrize("test", ['isinstance(self.kind, str) and self.kind == "mul"',
                                  'len(self.kind) == 3 and x.dim() == 3 and x.size(-1) == 8'])
@pytest.mark.parametrize("kind", ["mul", "add"])
def test_a_test_of_pure_reads_keeps_the_fused_arm(test, kind):
    torch = pytest.importorskip("torch")
    source = edit(ELIF_ARM, 'elif self.kind == "mul":', f"elif {test}:")
    fixed = _fused(source)
    a, b = float64_pair(source, fixed, "Model", kind=kind)
    counter = FusedCalls(b.attn)
    x = torch.randn(3, 5, 8, dtype=torch.float64, requires_grad=True)
    _same(a(x), b(x), [x], a, b)
    assert counter.calls == (1 if kind == "mul" else 0)
