"""``adopter verify``: prove each synthesized patch on the real module, then time it (needs torch).

``verify_file(path, rules, config, benchmark=True) -> list[VerifyResult]`` is the API (see
``core.py`` for how it works and docs/verify.md for the configuration).  ``VerifyResult`` is
importable without torch; ``verify_file`` imports torch on first use.
"""

from __future__ import annotations

from typing import Any

from .result import FAIL, PASS, SKIP, VerifyResult

__all__ = ["FAIL", "PASS", "SKIP", "VerifyError", "VerifyResult", "verify_file"]


def __getattr__(name: str) -> Any:
    if name in ("verify_file", "VerifyError"):
        from . import core

        return getattr(core, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
