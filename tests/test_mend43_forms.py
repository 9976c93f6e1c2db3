"""review43's counter-examples to this session's fixes of picked and setting-scaled attention
(session 39, mend43).  The fixtures are ours.

- A scale under ``if self.<setting>:`` becomes ``scale=... if self.<setting> else 1.0`` at the
  fused call: a statement kept between the scale step and the call that may change the instance
  (``self.toggle()``, ``setattr``, a store to one of its attributes) makes the call read another
  value than the step did: declined, in the caller and in an inlined helper alike.
- A helper picked by ``getattr(self, self.mode)`` bound to a local: the guard reads what was
  picked (the bound method's ``__func__`` and ``__self__``), not the setting, which a
  ``setattr`` after the pick or an instance attribute shadowing the method makes disagree.
"""

from __future__ import annotations

import pytest
from corpus_forms import float64_pair, rules
from test_rafix62_forms import PICKED as RAFIX62_PICKED
from test_rafix63_forms import SCALED

from adopter.synth import fix_text

CALLER_SCALED = """\
import torch
from torch import nn


class CallerScaled(nn.Module):
    def __init__(self, dim=8, use_scale=True):
        super().__init__()
        self.use_scale = use_scale
        self.to_q = nn.Linear(dim, dim)
        self.to_k = nn.Linear(dim, dim)
        self.to_v = nn.Linear(dim, dim)

    def flip(self):
        self.use_scale = not self.use_scale

    def forward(self, x):
        q = self.to_q(x)
        k = self.to_k(x).permute(0, 2, 1)
        v = self.to_v(x)
        w = torch.matmul(q, k)
        if self.use_scale:
            w /= q.shape[-1] ** 0.5
        w = w.softmax(dim=-1)
        #BETWEEN
        y = torch.matmul(w, v)
        return y
"""

# rafix63's setting-scaled helper picked by the mode, with a method that flips the setting and a
# place for a statement between the pick and the context product
HELPER_SCALED = (SCALED.replace("class PickedScaled", "class HelperScaled")
                 .replace("        return w\n\n    def forward",
                          "        return w\n\n    def flip(self):\n        self.use_scale = not self.use_scale\n\n"
                          "    def forward")
                 .replace("        w = pick(q, k)\n", "        w = pick(q, k)\n        #BETWEEN\n"))

CHANGES = ["self.flip()", "setattr(self, 'use_scale', not self.use_scale)", "self.use_scale = not self.use_scale"]


def _fix(source: str):
    return fix_text(source, "model.py", rules("ADP010"))


def _same(source: str, fixed: str, cls: str, **kwargs) -> None:
    torch = pytest.importorskip("torch")
    a, b = float64_pair(source, fixed, cls, **kwargs)
    x = torch.randn(2, 6, 8, dtype=torch.float64)
    torch.testing.assert_close(b(x), a(x), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("change", CHANGES, ids=["method", "setattr", "store"])
@pytest.mark.parametrize("source, cls", [(CALLER_SCALED, "CallerScaled"), (HELPER_SCALED, "HelperScaled")],
                         ids=["caller", "helper"])
def test_a_change_of_the_setting_between_the_scale_and_the_fused_call_declines(source, cls, change):
    text = source.replace("#BETWEEN", change)
    result = _fix(text)
    assert "scaled_dot_product_attention(" not in result.text
    if change != CHANGES[2]:  # (a store of the setting itself declined before: the test reads what it assigns)
        assert any("may change it before the fused call" in why for _, why in result.skipped), result.skipped


@pytest.mark.parametrize("source, cls", [(CALLER_SCALED, "CallerScaled"), (HELPER_SCALED, "HelperScaled")],
                         ids=["caller", "helper"])
@pytest.mark.parametrize("use_scale", [True, False])
def test_a_statement_that_cannot_change_the_setting_is_still_fixed(source, cls, use_scale):
    # look-alike: a kept statement that calls nothing on the instance
    text = source.replace("#BETWEEN", "n = w.shape[-1]")
    fixed = _fix(text).text
    assert "scaled_dot_product_attention(" in fixed and "if self.use_scale else 1.0" in fixed
    _same(text, fixed, cls, use_scale=use_scale)


# rafix62's picked attention, with an instance attribute that may shadow the `plain` method and a
# place for a statement between the pick and its call
PICKED = (RAFIX62_PICKED.replace("class PickedAttention", "class PickedPlain")
          .replace('mode="plain"):', 'mode="plain", shadow=False):')
          .replace("        self.to_v = nn.Linear(dim, dim)\n",
                   "        self.to_v = nn.Linear(dim, dim)\n        if shadow:\n"
                   "            self.__dict__[\"plain\"] = self.halved\n", 1)
          .replace("        pick = getattr(self, self.mode)\n", "        pick = getattr(self, self.mode)\n        #BETWEEN\n"))


@pytest.mark.parametrize("between, kwargs", [
    ("setattr(self, 'mode', 'plain')", {"mode": "halved"}),  # the setting changed after the pick
    ("", {"mode": "plain", "shadow": True}),  # an instance attribute shadowing the method
    ("", {"mode": "plain"}),
    ("", {"mode": "halved"}),
], ids=["setattr", "shadow", "plain", "halved"])
def test_the_guard_reads_the_method_picked_not_the_setting(between, kwargs):
    text = PICKED.replace("#BETWEEN", between)
    fixed = _fix(text).text
    assert "scaled_dot_product_attention(" in fixed and "pick.__self__ is not self" in fixed
    _same(text, fixed, "PickedPlain", **kwargs)


def test_a_store_of_the_setting_in_the_caller_is_not_fixed():
    # (the caller's own `self.mode = ...` was declined before: kept so)
    assert "scaled_dot_product_attention(" not in _fix(PICKED.replace("#BETWEEN", "self.mode = 'plain'")).text



def test_a_setting_scale_is_read_off_the_instance_whatever_its_name():
    # _setting_scales reads the test of the method's instance parameter, as the caller passes it
    # (the caller check that the names agree is the planner's): not only one spelled `self`
    import ast

    from adopter.synth.sdpa import _setting_scales
    from adopter.synth.text import span_of

    body = ast.parse("if this.use_scale:\n    w /= q.shape[-1] ** 0.5\n").body
    step = span_of(body[0].body[0])
    assert len(_setting_scales(body, {step}, {step: "s1"}, ["this"])) == 1
    assert _setting_scales(body, {step}, {step: "s1"}, []) == {}  # no instance parameter: none
    other = ast.parse("if other.use_scale:\n    w /= q.shape[-1] ** 0.5\n").body
    assert _setting_scales(other, {span_of(other[0].body[0])}, {span_of(other[0].body[0]): "s1"}, ["this"]) == {}


@pytest.mark.parametrize("kwargs", [{"mode": "plain", "shadow": True}, {"mode": "plain"}, {"mode": "halved"}],
                         ids=["shadow", "plain", "halved"])
def test_a_method_picked_and_called_in_place_is_guarded_on_what_it_picks(kwargs):
    text = PICKED.replace("        pick = getattr(self, self.mode)\n        #BETWEEN\n        w = pick(q, k)",
                          "        w = getattr(self, self.mode)(q, k)")
    fixed = _fix(text).text
    assert "scaled_dot_product_attention(" in fixed and "getattr(self, self.mode).__self__ is not self" in fixed
    _same(text, fixed, "PickedPlain", **kwargs)
