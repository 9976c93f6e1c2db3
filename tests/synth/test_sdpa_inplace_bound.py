"""ADP010 where a statement kept between the replaced steps changes q or k in place through a
function held by another name, or names k by an attribute in another way than ``setattr``
(review61, session 46): an in-place method bound to a name (``f = torch.Tensor.mul_``, ``f =
k.mul_``, ``getattr(torch.Tensor, "mul_")``), a ``functools.partial`` of one,
``object.__setattr__``, a store into ``self.__dict__`` / ``vars(self)`` (then changed through the
attribute), and numpy's view of the tensor.  Each was patched (the fused call reading k before
the change, max diff 0.59 in review61's fixtures) and is declined.  Look-alikes stay patched and
compute what the original does in float64: an out-of-place method bound to a name or held by a
partial, each store of a copy, a numpy array only read."""

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

OWN = TEMPLATE.replace("import torch\n", "import functools\nimport numpy as np\nimport torch\n", 1)


def _source(between: str) -> str:
    source = OWN.replace("BETWEEN", ("\n" + " " * 8).join(between.split("; ")))
    assert "BETWEEN" not in source and "import functools" in source
    return source


DECLINED = {
    "an unbound in-place method bound to a name": "f = torch.Tensor.mul_; f(k, 2.0)",
    "k's in-place method bound to a name": "f = k.mul_; f(2.0)",
    "an in-place method taken by getattr and bound to a name": 'f = getattr(torch.Tensor, "mul_"); f(k, 2.0)',
    "a partial of an in-place method holding k": "h = functools.partial(torch.Tensor.mul_, k); h(2.0)",
    "a partial of an in-place method, k handed at the call": "h = functools.partial(torch.Tensor.mul_); h(k, 2.0)",
    "object.__setattr__ naming k, then in place": 'object.__setattr__(self, "cache", k); self.cache.mul_(2.0)',
    "a store into self.__dict__, then in place": 'self.__dict__["cache"] = k; self.cache.mul_(2.0)',
    "a store into vars(self), then in place": 'vars(self)["cache"] = k; self.cache.mul_(2.0)',
    "self.__dict__.update, then in place": "self.__dict__.update(cache=k); self.cache.mul_(2.0)",
    "numpy's view of k changed in place": "k.detach().numpy().__imul__(2.0)",
    "np.asarray of k changed in place": "a = np.asarray(k.detach()); a *= 2.0",
}


@pytest.mark.parametrize("case", sorted(DECLINED))
def test_an_in_place_change_through_another_name_is_declined(case):
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
    "an out-of-place method bound to a name": "f = torch.Tensor.mul; r = f(k, 2.0)",
    "a partial of an out-of-place function": "h = functools.partial(torch.mul, k); r = h(2.0)",
    "object.__setattr__ of a copy, then in place": 'object.__setattr__(self, "cache", k.clone()); self.cache.mul_(2.0)',
    "a store of a copy into self.__dict__, then in place": 'self.__dict__["cache"] = k.clone(); self.cache.mul_(2.0)',
    "numpy's view of k only read": "r = float(k.detach().numpy().sum())",
}


@pytest.mark.parametrize("case", sorted(PATCHED))
def test_look_alikes_are_patched_and_compute_what_the_original_does(case):
    source = _source(PATCHED[case])
    assert fix_text(source, "attention.py", RULES).applied, case
    torch.manual_seed(1)
    x = torch.randn(2, 5, 16, dtype=F64)
    assert fused_calls_of_equal_steps(source, x, None) == 2  # eval and training: the fused call, no mask
    fused_calls_of_equal_steps(source, x, torch.randn(2, 2, 5, 5, dtype=F64))
