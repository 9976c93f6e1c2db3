"""A per-file time budget, so that one pathological file cannot hang a commit hook.

The check and the fix of one file run inside :func:`time_budget`; when the budget runs out,
:class:`BudgetExceeded` is raised where the work happens to be, the file is reported with a
one-line error, and the next file goes on.  The writing of a file is never inside a budget:
an interrupted write could lose data, an interrupted analysis loses nothing.

The budget counts CPU seconds of the process (``ITIMER_PROF``, signal ``SIGPROF``), not wall
time: a pathological file is one that burns CPU, and on a busy machine (a 2-core laptop
running the hook in parallel batches) wall time would stop ordinary files at random.  A signal
timer needs the main thread of a process on a POSIX system: that is where the CLI, the pre-commit hook and the CLI's worker processes run
their files.  Elsewhere (Windows, a thread) the budget is not enforced, and the work runs
unbounded as before.  A timer cannot cut into one long call into C (``ast.parse`` of a huge
file): the size limit in :mod:`adopter.source` bounds those.

``BudgetExceeded`` derives from ``BaseException`` on purpose: the fixer drops a rewrite that
fails with ``except Exception`` and goes on with the next one, which must not swallow the
budget.
"""

from __future__ import annotations

import math
import signal
import threading
from contextlib import contextmanager

#: CPU seconds one file may take (check, or fix with all its rounds), unless configured.
DEFAULT_SECONDS = 10.0

#: After the budget ran out, CPU seconds between repeats of the exception (see time_budget).
RETRY_SECONDS = 0.1


class BudgetExceeded(BaseException):
    """The file's time budget ran out."""

    def __init__(self, seconds: float):
        super().__init__(seconds)
        self.seconds = seconds

    def __str__(self) -> str:
        return (f"time budget of {format_seconds(self.seconds)} s exceeded; file skipped "
                "(raise it with --file-timeout or file-timeout in [tool.adopter])")


def format_seconds(seconds: float) -> str:
    return f"{seconds:g}"


def enforceable() -> bool:
    """True where :func:`time_budget` can stop the work (main thread, POSIX timers)."""
    return hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()


def parse_seconds(value) -> float:
    """A budget from the command line or the config: positive seconds, or 0 for none."""
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"file-timeout must be a number of seconds, not {value!r}") from None
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"file-timeout must be a number of seconds >= 0 (0: no limit), not {value!r}")
    return seconds


@contextmanager
def time_budget(seconds: float | None):
    """Raise :class:`BudgetExceeded` in the body once it used ``seconds`` of CPU (0/None: never).

    Once the budget ran out, whatever the body then does is not trusted: an exception raised
    by a signal handler can surface as another one (inside ``ast.parse``, CPython turns it into
    a ``SystemError``), be caught by the body's own error handling, or be swallowed outright
    (Python ignores exceptions in a garbage-collector callback or a ``__del__`` that happens to
    be running).  So, once expired, the budget raises again every :data:`RETRY_SECONDS` of CPU
    until the body is left, and the body's result or exception is replaced by
    :class:`BudgetExceeded`.  Leaving the body switches the handler off before anything else
    (there is no point between entering ``finally`` and that store where Python runs a
    handler).
    """
    if not seconds or not enforceable():
        yield
        return
    state = {"active": True, "fired": False}

    def on_signal(signum, frame):
        if not state["active"]:
            return
        state["fired"] = True
        signal.setitimer(signal.ITIMER_PROF, RETRY_SECONDS)
        raise BudgetExceeded(seconds)

    previous = signal.signal(signal.SIGPROF, on_signal)
    signal.setitimer(signal.ITIMER_PROF, seconds)
    try:
        yield
    except BudgetExceeded:
        raise
    except BaseException as exc:
        if state["fired"]:
            raise BudgetExceeded(seconds) from exc
        raise
    else:
        if state["fired"]:
            raise BudgetExceeded(seconds)
    finally:
        state["active"] = False
        signal.setitimer(signal.ITIMER_PROF, 0)
        signal.signal(signal.SIGPROF, previous)
