"""pre-commit entry points: thin doors onto ``adopter check`` and ``adopter fix``.

pre-commit runs ``entry + args + filenames``, so ``argv`` is whatever the user put in
``args:`` (``--select=ADP004``, ``--ignore=...``, ``--target=cuda``, ...) followed by the
staged Python files.  Nothing here imports torch, LibCST or GitHub libraries: the check path
only needs the core, which keeps the hook's environment small and its startup fast.

Two things differ from running ``adopter`` by hand, both because pre-commit names the files:

* ``exclude`` in ``[tool.adopter]`` applies to the files pre-commit passes (the CLI applies it
  only while walking folders, since a file named on the command line is one you asked for).
* pre-commit already runs one batch of files per core (``require_serial: false``), so the
  core's own process pool is switched off with ``--jobs=1`` (a ``--jobs`` in ``args:`` wins).

Both hooks are safe in parallel batches: each batch reads, and for the fix hook rewrites, only
the files it was given (``adopter.source.write_source``: temporary file + ``os.replace``), and
the fix hook leaves the dependency files that every batch shares alone (``--no-deps``).
"""

from __future__ import annotations

import os
import sys

#: Printed after each fixable finding: the id of the hook that applies the fix.
FIX_HINT = "adopter-fix"

_CHECK_OPTIONS = ("--fix-hint", FIX_HINT, "--jobs=1")
_FIX_OPTIONS = ("--jobs=1", "--no-deps")


def _without_excluded(args: list[str]) -> list[str] | None:
    """Drop the files that ``[tool.adopter] exclude`` names; None when no file is left."""
    if "--no-config" in args:
        return args
    from pathlib import Path

    from adopter.config import find_config

    kept: list[str] = []
    files = dropped = 0
    for arg in args:
        if not arg.startswith("-") and os.path.isfile(arg):
            files += 1
            path = Path(arg)
            if find_config(path.parent).excludes(path):
                dropped += 1
                continue
        kept.append(arg)
    if files and files == dropped:
        return None
    return kept


def _run(command: str, options: tuple[str, ...], argv: list[str] | None) -> int:
    from adopter.cli import main
    from adopter.config import ConfigError

    args = list(sys.argv[1:] if argv is None else argv)
    try:
        kept = _without_excluded(args)
    except ConfigError:
        kept = args  # the core reports a broken [tool.adopter] table with its usual message
    if kept is None:
        return 0
    return main([command, *options, *kept])


def check(argv: list[str] | None = None) -> int:
    """``adopter check --fix-hint adopter-fix <args> <files>``: 0 clean, 1 findings, 2 errors."""
    return _run("check", _CHECK_OPTIONS, argv)


def fix(argv: list[str] | None = None) -> int:
    """``adopter fix <args> <files>``: rewrites the files; nonzero when one changed or failed."""
    return _run("fix", _FIX_OPTIONS, argv)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(check())
