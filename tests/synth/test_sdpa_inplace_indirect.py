"""ADP010 where a statement kept between the replaced steps changes q or k in place by an indirect
spelling (review58, session 45, after inplace72): ``setattr`` (of ``k.data``, or naming ``k`` by
an attribute a later statement changes), an in-place operator dunder (``k.__imul__``,
``torch.Tensor.__iadd__(k, ...)``), ``operator.imul``, a ``getattr`` of an in-place or computed
method name, a lambda that changes its argument (bound to a name, or handed to ``map``).  Each is
declined.  Look-alikes stay patched and compute what the original does in float64: a same-file
function whose name ends in ``_`` but whose body only reads its argument (its body is read
first), a lambda that only reads, out-of-place dunders and ``operator`` functions, a ``getattr``
of a reading method, ``setattr`` of a copy."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from sdpa_modules import (
    RULES,
    assert_moved_change_alters_output,
    fused_calls_of_equal_steps,
)
from test_sdpa_inplace_alias import TEMPLATE

from adopter.synth import fix_text

F64 = torch.float64

OWN = TEMPLATE.replace("import torch\n", "import operator\nimport torch\n", 1).replace(
    "def total(t):", "def unit_(t):\n    return t / t.norm()\n\n\ndef total(t):", 1)


def _source(between: str) -> str:
    source = OWN.replace("BETWEEN", ("\n" + " " * 8).join(between.split("; ")))
    assert "BETWEEN" not in source and "import operator" in source and "def unit_" in source
    return source


DECLINED = {
    "setattr naming k on self, then in place": 'setattr(self, "cache", k); self.cache.mul_(2.0)',
    "setattr of k.data": 'setattr(k, "data", k * 2.0)',
    "a lambda bound to a name, called on k": "f = lambda t: t.mul_(2.0); f(k)",
    "a lambda mapped over k": "list(map(lambda t: t.mul_(2.0), [k]))",
    "an in-place dunder method": "k.__imul__(2.0)",
    "an in-place dunder of torch.Tensor": "torch.Tensor.__iadd__(q, 1.0)",
    "operator.imul": "operator.imul(k, 2.0)",
    "operator.itruediv": "operator.itruediv(q, 2.0)",
    "getattr of an in-place method": 'getattr(k, "mul_")(2.0)',
    "getattr of a computed name": 'name = "mul" + "_"; getattr(k, name)(2.0)',
}


@pytest.mark.parametrize("case", sorted(DECLINED))
def test_an_indirect_in_place_change_between_the_steps_is_declined(case):
    result = fix_text(_source(DECLINED[case]), "attention.py", RULES)
    assert result.error is None
    assert not result.applied, case
    assert any("in place" in str(reason) for reason in result.skipped), result.skipped


@pytest.mark.parametrize("case", sorted(DECLINED))
def test_each_declined_form_changes_what_a_fused_call_would_read(case):
    """Not idle: moved before the scores (where a fused call would read q and k), the change
    alters the output."""
    assert_moved_change_alters_output(_source(DECLINED[case]), DECLINED[case])


PATCHED = {
    "a same-file function named with a trailing underscore that only reads k": "k2 = unit_(k)",
    "a lambda that only reads k": "f = lambda t: t * 2.0; r = f(k)",
    "a lambda mapped over k that only reads": "r = list(map(lambda t: t.sum(), [k]))",
    "an out-of-place dunder": "r = k.__mul__(2.0)",
    "an out-of-place operator function": "r = operator.mul(k, 2.0)",
    "getattr of a reading method": 'r = getattr(k, "sum")()',
    "setattr of a copy, then in place": 'setattr(self, "cache", k.clone()); self.cache.mul_(2.0)',
    "an in-place dunder of another tensor": "g.__imul__(2.0)",
}


@pytest.mark.parametrize("case", sorted(PATCHED))
def test_look_alikes_are_patched_and_compute_what_the_original_does(case):
    source = _source(PATCHED[case])
    assert fix_text(source, "attention.py", RULES).applied, case
    torch.manual_seed(1)
    x = torch.randn(2, 5, 16, dtype=F64)
    assert fused_calls_of_equal_steps(source, x, None) == 2  # eval and training: the fused call, no mask
    fused_calls_of_equal_steps(source, x, torch.randn(2, 2, 5, 5, dtype=F64))
