"""The console scripts: how they run a command and end their process.

A one-file ``adopter check`` is mostly start-up and tear-down.  Of about 0.36 s of CPU, the
interpreter's exit took about 0.06 s (it frees every module, syntax tree and rule object one
by one and runs a last garbage collection over them) and the cyclic garbage collector about
0.04 s more: the imports alone create some 45 dataclasses and many functions, and its passes
walk those objects again and again although none of them is garbage.  So:

* Before anything is imported the young generation collects after 20 000 new objects
  instead of 700, and what the imports built is then moved out of the collector's reach
  (``gc.freeze``).  The analysis makes many short-lived objects and few cycles; a run that
  checks a whole repository still collects, only less often.
* When the command has returned, its output is flushed and the process ends with
  ``os._exit``, skipping the tear-down, but only when nothing asked to run at exit: no
  ``atexit`` callback (``logging``, a ``multiprocessing`` pool, ``tempfile`` finalizers and
  torch all register one) and no live non-daemon thread besides the main one.  Anything else
  ends the normal way, as does a flush that fails (a closed pipe: Python's own handling).

Files are never left half-written by the fast exit: every write goes through
:func:`adopter.source.write_source` (a temporary file, then ``os.replace``) and is complete
before the command returns.  Only the console scripts end this way: ``adopter.cli.main`` and
the hook's ``check``/``fix`` called in-process return their exit status as before.  This
module imports nothing of the tool at its top, so that the collector is set before the rest is
imported.
"""

from __future__ import annotations

import atexit
import gc
import os
import sys
import threading
from collections.abc import Callable

#: Young-generation allocations between collections (CPython's default is 700).
YOUNG_THRESHOLD = 20_000


def adopter() -> "NoReturn":  # noqa: F821 (typing is not imported: 7 ms of start-up)
    """``adopter``: :func:`adopter.cli.main`."""
    _collect_less()
    from .cli import main

    run(main)


def hook_check() -> "NoReturn":  # noqa: F821
    """``adopter-hook`` (pre-commit): :func:`adopter.hook.main.check`."""
    _collect_less()
    from .hook.main import check

    run(check)


def hook_fix() -> "NoReturn":  # noqa: F821
    """``adopter-hook-fix`` (pre-commit): :func:`adopter.hook.main.fix`."""
    _collect_less()
    from .hook.main import fix

    run(fix)


def _collect_less() -> None:
    young, older, oldest = gc.get_threshold()
    gc.set_threshold(max(YOUNG_THRESHOLD, young), older, oldest)


def run(main: Callable[[], int | None]) -> "NoReturn":  # noqa: F821
    """Run ``main`` as a console script's whole process, then exit with its status."""
    gc.freeze()  # what the imports built is not garbage
    try:
        code = main()
    except SystemExit as exc:
        if exc.code is not None and not isinstance(exc.code, int):
            raise  # a message to print: the interpreter's own exit prints it
        code = exc.code
    code = 0 if code is None else code
    if _nothing_to_run_at_exit() and _flushed():
        os._exit(code)
    sys.exit(code)


def _nothing_to_run_at_exit() -> bool:
    count = getattr(atexit, "_ncallbacks", None)  # CPython; elsewhere exit the normal way
    if count is None or count():
        return False
    main = threading.main_thread()
    return not any(t is not main and not t.daemon and t.is_alive() for t in threading.enumerate())


def _flushed() -> bool:
    for stream in (sys.stdout, sys.stderr):
        if stream is None:
            continue
        try:
            stream.flush()
        except (OSError, ValueError):
            return False
    return True
