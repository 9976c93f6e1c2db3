"""Evidence that a patch was exercised: which lines of the patched file ran, which torch calls ran.

A check that never executes the patched statement proves nothing, so ``adopter verify`` records
the lines of the patched file executed while the patched class is built and run (and the names
of the Python functions entered, so that a kernel written in Python counts as called), and skips
a finding whose edited lines never ran.  A patch that only changes ``__init__`` (the attention
rules swap the class of a submodule) is further required to change what the forward calls at
the torch level (``torch.overrides.TorchFunctionMode``): otherwise the new class fell back to
the original forward for these inputs and the check says nothing about the fast path.
"""

from __future__ import annotations

import sys
from collections import Counter
from typing import Any

from torch.overrides import TorchFunctionMode


class LineTracer:
    """Records the line numbers executed in frames of one file."""

    def __init__(self, filename: str):
        self.filename = filename
        self.lines: set[int] = set()
        self.called: Counter[str] = Counter()  # Python functions entered, by name (a kernel such as fused_qkv)
        self._previous: Any = None

    def _global(self, frame, event, arg):
        self.called[frame.f_code.co_name] += 1
        if frame.f_code.co_filename == self.filename:
            self.lines.add(frame.f_lineno)
            return self._local
        return None

    def _local(self, frame, event, arg):
        if event == "line":
            self.lines.add(frame.f_lineno)
        return self._local

    def __enter__(self) -> "LineTracer":
        self._previous = sys.gettrace()
        sys.settrace(self._global)
        return self

    def __exit__(self, *exc) -> None:
        sys.settrace(self._previous)


class CallRecorder(TorchFunctionMode):
    """Counts the torch functions and tensor methods called, by name."""

    def __init__(self) -> None:
        super().__init__()
        self.counts: Counter[str] = Counter()

    def __torch_function__(self, func, types, args=(), kwargs=None):
        name = getattr(func, "__name__", None) or str(func)
        self.counts[name] += 1
        return func(*args, **(kwargs or {}))
