"""Synthesis (SPEC section 4): rewrite matched code to call the rules' kernels.

``fix_text(text, path, rules, package=None) -> FixResult`` is the whole API for one file;
``adopter.synth.deps`` adds the kernels' packages to the analysed project's dependency
list, and ``adopter.fixer`` drives both for ``adopter fix``.
"""

from .core import FixResult, fix_text, requirement

__all__ = ["FixResult", "fix_text", "requirement"]
