"""What the blind-batch form tests (``tests/test_corpus*_forms.py``) ask of a fixture: the
findings one rule reports on it, and whether one of them covers the line holding a needle."""

from __future__ import annotations

from adopter.engine import analyze
from adopter.ruleset import load_rules, select_rules

RULES = load_rules()


def findings(code: str, rule: str):
    return analyze(code, "model.py", select_rules(RULES, [rule])).findings


def covered(code: str, needle: str, rule: str) -> bool:
    line = next(n for n, text in enumerate(code.splitlines(), 1) if needle in text)
    return any(f.line <= line <= f.end_line for f in findings(code, rule))
