"""Every bundled rule's examples, Fixit style.

``valid`` examples must produce no finding of their rule; ``before``/``after`` examples must
produce a finding, ``fix_text(before)`` with only that rule must give ``after`` exactly, and
fixing ``after`` again must change nothing; ``reported`` examples (report-only rules) must
produce a finding that fix leaves alone.
"""

import ast

import pytest

from adopter.engine import analyze
from adopter.ruleset import load_rules
from adopter.synth import fix_text

RULES = load_rules()


def _kind(example) -> str:
    return "reported" if example.reported else "valid" if example.after is None else "fix"


CASES = [
    pytest.param(rule, example, id=f"{rule.id}-{index}-{_kind(example)}")
    for rule in RULES
    for index, example in enumerate(rule.examples)
]


def test_every_rule_has_a_fix_example_and_a_valid_one():
    for rule in RULES:
        kinds = {_kind(example) for example in rule.examples}
        shown = "fix" if rule.fixable else "reported"
        # A fixable rule may also show a finding it cannot fix (layers inside an nn.Sequential).
        allowed = {"valid", "fix", "reported"} if rule.fixable else {"valid", "reported"}
        assert {"valid", shown} <= kinds <= allowed, f"{rule.id} needs a valid example and a {shown} one"


@pytest.mark.parametrize("rule, example", CASES)
def test_rule_example(rule, example):
    findings = [f for f in analyze(example.before, "example.py", [rule]).findings if f.rule == rule.id]
    if example.reported:
        assert findings, f"{rule.id} {example.name!r} must be reported"
        assert all(not f.fixable for f in findings), "a reported example's findings are not fixable"
        assert fix_text(example.before, "example.py", [rule]).text == example.before
        return
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
