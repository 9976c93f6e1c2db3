import textwrap

import pytest

from adopter.engine import analyze
from adopter.ruleset import load_rules, select_rules


@pytest.fixture(scope="session")
def rules():
    return load_rules()


@pytest.fixture
def findings(rules):
    """findings(source, *rule_ids) -> list of (rule, line) for a dedented source."""

    def run(source, *ids):
        chosen = select_rules(rules, list(ids)) if ids else rules
        result = analyze(textwrap.dedent(source), "model.py", chosen)
        return [(f.rule, f.line) for f in result.findings]

    return run
