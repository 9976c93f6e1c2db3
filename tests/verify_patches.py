"""Verify run on a fixture with a hand-written patch in place of the fixer's: the shared part
of the verify tests that check a right patch passes and wrong ones fail (test_verify5/6/8,
test_rafix52)."""

from __future__ import annotations

from types import SimpleNamespace

from adopter.config import Config
from adopter.ruleset import load_rules
from adopter.verify import verify_file
from adopter.verify.core import options_for


def replacing_fix(old: str, new: str):
    """A stand-in for the fixer that replaces the text ``old`` by ``new`` (the text unchanged
    where ``old`` is absent), to verify a patch written by hand."""
    def fix(text, path, rules, package=None):
        if old not in text:
            return SimpleNamespace(text=text, applied=[], skipped=[], error=None)
        return SimpleNamespace(text=text.replace(old, new), applied=[], skipped=[], error=None)

    return fix


def adp010_verdicts(tmp_path, source: str, fix=None) -> list:
    """Verify's results for rule ADP010 on ``source`` written as ``attention.py`` (the per-site
    results; the combined one left out), fixed by ``fix`` (None: the fixer)."""
    path = tmp_path / "attention.py"
    path.write_text(source)
    rules = [r for r in load_rules() if r.id == "ADP010"]
    return [r for r in verify_file(str(path), rules, Config(), benchmark=False, fix=fix,
                                   options=options_for(Config(), benchmark=False)) if not r.combined]
