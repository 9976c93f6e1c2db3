import os
import shutil
from pathlib import Path

import pytest

pytest.importorskip("torch")

FIXTURES = Path(__file__).parent / "fixtures"


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: long verify runs (set ADOPTER_SLOW=1 to run them)")


def pytest_collection_modifyitems(config, items):
    if os.environ.get("ADOPTER_SLOW"):
        return
    skip = pytest.mark.skip(reason="slow; set ADOPTER_SLOW=1 to run")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def toy(tmp_path):
    """A private copy of the toy fixtures (the patched module and its imports live beside it)."""
    folder = tmp_path / "toy"
    shutil.copytree(FIXTURES, folder, ignore=shutil.ignore_patterns("__pycache__", "research"))
    return folder


@pytest.fixture(scope="session")
def all_rules():
    from adopter.ruleset import load_rules

    return load_rules()


@pytest.fixture
def quick():
    """Options for a check without timing."""
    from adopter.config import Config
    from adopter.verify.core import options_for

    return options_for(Config(), benchmark=False)
