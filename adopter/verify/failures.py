"""Where a training step failed, and whether the original and the patched module failed alike.

Lead's ruling (session 37): a forward-only comparison also applies where neither the original
nor the patched module can take a training step, when both raise the same error type at the
same source line and that line lies outside what the patch changed (pytext's ``q *= scaling`` on
a ``chunk`` view, which the patch leaves as it is).  The failure is then the original code's, not
the patch's.  A patched module that fails at another line, or at a line the patch changed, made
a failure of its own.  The line is read from the traceback (the innermost frame in the module's
own file), never from the error's text.
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass


@dataclass(frozen=True)
class SameFailure:
    """Both failed alike: ``line`` is the original's line (1-based), outside the patch's edits."""

    error: str
    line: int

    def reason(self) -> str:
        return f"neither trains: {self.error} at line {self.line}, a line the patch does not change"


def failure_line(exc: BaseException, filename: str) -> int | None:
    """The line of ``filename`` where ``exc`` was raised: the innermost traceback frame in that
    file (an error raised in torch below it is placed at the module's own line that called in)."""
    target = os.path.realpath(filename)
    line = None
    tb = exc.__traceback__
    while tb is not None:
        if os.path.realpath(tb.tb_frame.f_code.co_filename) == target:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def unchanged_line(old: str, new: str, line: int) -> int | None:
    """The line of ``new`` that is line ``line`` of ``old`` where it lies in a run of lines the
    patch left as they were; None where the patch changed it."""
    matcher = difflib.SequenceMatcher(None, old.splitlines(), new.splitlines(), autojunk=False)
    for tag, a0, a1, b0, _ in matcher.get_opcodes():
        if tag == "equal" and a0 < line <= a1:
            return b0 + line - a0
    return None


def compare_failures(original_error: BaseException, patched_error: BaseException, original_file: str,
                     patched_file: str, original_text: str, patched_text: str) -> SameFailure | str | None:
    """``SameFailure`` where both raised the same error type at the same unchanged line; a
    string saying how they differ where both lines are known and differ (or the type does, or
    the line is one the patch changed); None where a line cannot be placed (no judgement)."""
    line_o = failure_line(original_error, original_file)
    line_p = failure_line(patched_error, patched_file)
    if line_o is None or line_p is None or not original_text or not patched_text:
        return None
    name_o, name_p = type(original_error).__name__, type(patched_error).__name__
    mapped = unchanged_line(original_text, patched_text, line_o)
    if name_o != name_p or mapped != line_p:
        return (f"the patched module's training step raised {name_p} at its line {line_p}, the original's "
                f"{name_o} at line {line_o}" + ("" if mapped is not None else ", a line the patch changed"))
    return SameFailure(f"{name_o}: {_first_line(original_error)[:160]}", line_o)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else ""
