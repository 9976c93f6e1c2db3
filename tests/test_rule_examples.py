"""Every bundled rule's examples, Fixit style.

``valid`` examples must produce no finding of their rule; ``before``/``after`` examples must
produce a finding, ``fix_text(before)`` with only that rule must give ``after`` exactly, and
fixing ``after`` again must change nothing.
"""

import ast

import pytest

from adopter.engine import analyze
from adopter.ruleset import load_rules
from adopter.synth import fix_text

RULES = load_rules()
CASES = [
    pytest.param(rule, example, id=f"{rule.id}-{index}-{'valid' if example.after is None else 'fix'}")
    for rule in RULES
    for index, example in enumerate(rule.examples)
]


def test_every_rule_has_a_fix_example_and_a_valid_one():
    for rule in RULES:
        kinds = {example.after is None for example in rule.examples}
        assert kinds == {True, False}, f"{rule.id} needs both a valid and a before/after example"


@pytest.mark.parametrize("rule, example", CASES)
def test_rule_example(rule, example):
    findings = [f for f in analyze(example.before, "example.py", [rule]).findings if f.rule == rule.id]
    if example.after is None:
        assert findings == [], f"{rule.id} {example.name!r} must not match"
        assert fix_text(example.before, "example.py", [rule]).text == example.before
        return
    assert findings, f"{rule.id} {example.name!r} must match"
    result = fix_text(example.before, "example.py", [rule])
    assert result.error is None
    assert result.skipped == []
    assert result.text == example.after
    assert [f.rule for f in result.applied] == [rule.id] * len(result.applied)
    assert result.requirements == {f"{rule.kernel.package}>={rule.kernel.min_version}"}
    ast.parse(result.text)
    again = fix_text(result.text, "example.py", [rule])
    assert again.text == result.text
    assert again.applied == []
