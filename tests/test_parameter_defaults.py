"""A number the code reads from a constructor parameter's default (``mean(dim=self.axis)`` with
``self.axis = axis`` and ``axis=-1``): matched as that number, never fixed as if it were one."""

from __future__ import annotations

import textwrap

from adopter.engine import analyze
from adopter.ruleset import load_rules, select_rules
from adopter.synth import fix_text

RULES = select_rules(load_rules(), ["ADP011"])

NORM = textwrap.dedent("""\
    import torch
    from torch import nn


    class ScaleNorm(nn.Module):
        def __init__(self, features, eps=1e-5, axis: int = -1):
            super().__init__()
            self.gain = nn.Parameter(torch.ones(features))
            self.eps = eps
            self.axis = axis

        def forward(self, h):
            ms = h.pow(2).mean(dim=self.axis, keepdim=True)
            return self.gain * (h * torch.rsqrt(ms + self.eps))
""")


def _run(text: str):
    findings = analyze(text, "norm.py", RULES).findings
    result = fix_text(text, "norm.py", RULES)
    assert result.error is None
    return findings, result


def test_a_dimension_given_by_a_parameter_default_is_found_and_left_unfixed():
    findings, result = _run(NORM)
    assert [f.line for f in findings] == [13]
    assert result.applied == [] and len(result.skipped) == 1
    assert "`self.axis` is the constructor's `axis`, -1 by default" in result.skipped[0][1]


def test_another_default_or_a_changed_attribute_is_not_the_last_dimension():
    assert _run(NORM.replace("axis: int = -1", "axis: int = 1"))[0] == []
    changed = NORM.replace("self.axis = axis", "self.axis = axis\n        self.axis = 0")
    assert _run(changed)[0] == []
    rebound = NORM.replace("        self.axis = axis", "        axis = axis + 1\n        self.axis = axis")
    assert _run(rebound)[0] == []
    no_default = NORM.replace("eps=1e-5, axis: int = -1", "axis: int, eps=1e-5")
    assert _run(no_default)[0] == []


def test_the_literal_is_still_fixed():
    findings, result = _run(NORM.replace("dim=self.axis", "dim=-1"))
    assert len(findings) == 1 and len(result.applied) == 1
