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
import sys
import threading
import time

#: CPU seconds one file may take (check, or fix with all its rounds), unless configured.
DEFAULT_SECONDS = 10.0

#: After the budget ran out, CPU seconds between repeats of the exception (see time_budget).
RETRY_SECONDS = 0.1

#: While the signal lands in cleanup code, CPU seconds until it tries again, and for how long at
#: most it waits for the cleanup to be over before it raises there after all (a body that spends
#: all its time in ``__exit__`` methods must still be stopped).
CLEANUP_RETRY_SECONDS = 0.005
CLEANUP_GRACE_SECONDS = 1.0


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


#: Code that is never interrupted: context managers' enter and exit (a ``with`` block's cleanup,
#: a ``finally`` of a generator-based context manager runs inside ``__exit__``) and finalizers.
#: An exception raised there would cut the cleanup short (a lock kept, a temporary file left) or
#: be printed and ignored ("Exception ignored in: ..."); the budget waits until they returned.
CLEANUP = frozenset({"__enter__", "__exit__", "__aenter__", "__aexit__", "__del__"})


def _in_cleanup(frame, base) -> bool:
    """Whether ``frame`` (where a signal landed) runs inside a context manager's enter or exit or
    a finalizer, looking up the stack as far as ``base`` (the frame that entered the budget)."""
    while frame is not None and frame is not base:
        if frame.f_code.co_name in CLEANUP:
            return True
        frame = frame.f_back
    return False


class time_budget:  # noqa: N801  (used as ``with time_budget(seconds):``, like contextlib's helpers)
    """Raise :class:`BudgetExceeded` in the body once it used ``seconds`` of CPU (0/None: never).

    Once the budget ran out, whatever the body then does is not trusted: an exception raised
    by a signal handler can surface as another one (inside ``ast.parse``, CPython turns it into
    a ``SystemError``), be caught by the body's own error handling, or be swallowed outright
    (Python ignores exceptions in a garbage-collector callback or a ``__del__`` that happens to
    be running).  So, once expired, the budget raises again every :data:`RETRY_SECONDS` of CPU
    until the body is left, and the body's result or exception is replaced by
    :class:`BudgetExceeded`.

    The signal does not raise inside a context manager's ``__enter__``/``__exit__`` or a
    ``__del__`` (:data:`CLEANUP`): there it tries again every :data:`CLEANUP_RETRY_SECONDS`
    until it lands outside (or, after :data:`CLEANUP_GRACE_SECONDS` of waiting, raises there
    after all).  That includes this class's own: a plain class, not a generator, so
    that leaving the body is one ``__exit__`` that switches the timer off before anything else
    (a generator-based manager could be interrupted before it resumed the generator, leave the
    timer armed, and complain later with "Exception ignored in: <generator object ...>").
    """

    def __init__(self, seconds: float | None):
        self.seconds = seconds
        self.enforced = bool(seconds) and enforceable()
        self.active = False
        self.fired = False
        self._base = None
        self._previous = None
        self._waiting_since: float | None = None

    def __enter__(self) -> "time_budget":
        if self.enforced:
            self._base = sys._getframe(1)
            self._previous = signal.signal(signal.SIGPROF, self._on_signal)
            self.active = True
            signal.setitimer(signal.ITIMER_PROF, self.seconds)
        return self

    def _on_signal(self, signum, frame) -> None:
        if not self.active:
            return
        if _in_cleanup(frame, self._base):
            now = time.process_time()
            if self._waiting_since is None:
                self._waiting_since = now
            if now - self._waiting_since < CLEANUP_GRACE_SECONDS:
                signal.setitimer(signal.ITIMER_PROF, CLEANUP_RETRY_SECONDS)
                return  # try again once the cleanup has returned
        self._waiting_since = None
        signal.setitimer(signal.ITIMER_PROF, RETRY_SECONDS)
        self.fired = True
        raise BudgetExceeded(self.seconds)

    def __exit__(self, kind, value, traceback) -> bool:
        if not self.enforced:
            return False
        self.active = False
        signal.setitimer(signal.ITIMER_PROF, 0)
        signal.signal(signal.SIGPROF, self._previous)
        self._base = None
        if kind is not None and issubclass(kind, BudgetExceeded):
            return False
        if self.fired:
            raise BudgetExceeded(self.seconds) from value
        return False
