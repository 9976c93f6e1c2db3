import importlib.util
import sys
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


@pytest.fixture
def module_from_file(tmp_path, monkeypatch):
    """module_from_file(source, name) -> the module, imported from a file under tmp_path (what
    TorchScript and ``inspect`` need: the source of what they compile), registered in
    ``sys.modules`` for the test only."""

    def load(source: str, name: str):
        path = tmp_path / f"{name}.py"
        path.write_text(source, encoding="utf-8")
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        monkeypatch.setitem(sys.modules, name, module)
        spec.loader.exec_module(module)
        return module

    return load


# Hypothesis profiles (tests/fuzz): `ci` is the default, bounded for the normal run;
# `campaign` is the long run recorded in benchmarks/RESULTS.md (HYPOTHESIS_PROFILE=campaign).
def _hypothesis_profiles():
    import os

    from hypothesis import HealthCheck, Phase, settings

    common = dict(deadline=None, print_blob=True,
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])
    settings.register_profile("ci", max_examples=int(os.environ.get("ADOPTER_FUZZ_EXAMPLES", "40")),
                              derandomize=True, **common)
    # No shrinking in the campaign: a failure is printed as found, with the seed to replay it.
    settings.register_profile("campaign", max_examples=int(os.environ.get("ADOPTER_FUZZ_EXAMPLES", "1500")),
                              phases=[Phase.explicit, Phase.reuse, Phase.generate], **common)
    settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


_hypothesis_profiles()
