"""A stand-in for the fixer in verify tests: the patch is the text the test writes, so a test
can hand verify a right patch and a wrong one (a dropped term, a wrong scale) and see which
verdict each gets."""

from types import SimpleNamespace


def stand_in_fix(old: str, new: str):
    """``fix_text``'s shape: ``old`` replaced by ``new`` in a file that holds it, others as they are."""
    def fix(text, path, rules, package=None):
        if old not in text:
            return SimpleNamespace(text=text, applied=[], skipped=[], error=None)
        return SimpleNamespace(text=text.replace(old, new), applied=[], skipped=[], error=None)

    return fix
