"""Synthesis (SPEC section 4): rewrite matched code to call the rules' kernels.

``fix_text(text, path, rules, package=None) -> FixResult`` is the whole API for one file;
``adopter.synth.deps`` adds the kernels' packages to the analysed project's dependency
list, and ``adopter.fixer`` drives both for ``adopter fix``.

``check`` imports :mod:`adopter.synth.fixable` (planning, ``ast`` only), so this package
loads :mod:`.core` (and with it LibCST) only when one of its names is asked for.
"""

__all__ = ["FixResult", "fix_text", "requirement"]


def __getattr__(name: str):
    if name in __all__:
        from . import core

        return getattr(core, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
