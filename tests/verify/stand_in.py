"""A stand-in for the fixer in verify tests: the patch is the text the test writes, so a test
can hand verify a right patch and a wrong one (a dropped term, a wrong scale) and see which
verdict each gets."""

import dataclasses
from types import SimpleNamespace

from adopter.config import Config
from adopter.verify import verify_file
from adopter.verify.compare import Tolerance


def stand_in_fix(old: str, new: str):
    """``fix_text``'s shape: ``old`` replaced by ``new`` in a file that holds it, others as they are."""
    def fix(text, path, rules, package=None):
        if old not in text:
            return SimpleNamespace(text=text, applied=[], skipped=[], error=None)
        return SimpleNamespace(text=text.replace(old, new), applied=[], skipped=[], error=None)

    return fix



def adp010_verdicts(path, source, edit, all_rules, options):
    """Verify ADP010's stand-in patch ``edit`` (old, new) of ``source`` written at ``path``
    with ``options``; the per-class results (not the combined one)."""
    path.write_text(source)
    assert edit[0] in source
    rules = [r for r in all_rules if r.id == "ADP010"]
    return [r for r in verify_file(str(path), rules, Config(), benchmark=False, fix=stand_in_fix(*edit), options=options)
            if not r.combined]


def exact_adp010_verdicts(path, source, edit, all_rules, quick):
    """:func:`adp010_verdicts` with the tolerance set to exact equality, so that every rounding
    difference goes to the float64 second opinion."""
    exact = dataclasses.replace(quick, tolerance=Tolerance(rtol=0.0, atol=0.0))
    return adp010_verdicts(path, source, edit, all_rules, exact)
