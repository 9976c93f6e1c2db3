"""A memory ceiling for verify's builds, so that a run never takes the user's machine down.

Verify builds the user's classes with guessed arguments and runs them on guessed inputs.  A
build can be far larger than any the user would make on a laptop (monai-generative's
``DiffusionModelUNet`` paths grew one verify process past 21 GB): on a machine without swap the
kernel's OOM killer then ends the process, or another one.  While verify checks on the CPU, the
process's data segment (``RLIMIT_DATA``: heap and private anonymous mappings, where torch's CPU
allocator gets its tensors) may grow by at most a ceiling while verify runs -- by default half the
machine's memory, ``ADOPTER_VERIFY_MEMORY_GB`` to set it -- so that an oversized build fails to
allocate, which :func:`out_of_memory` recognises and verify turns into a skip that names the
ceiling.  The ceiling counts what verify allocates, not what the process held before it: a
long-lived caller (an editor, a test worker that has run thousands of tests) whose data segment
already spans gigabytes of reserved address space keeps the same room for verify as a fresh
process.  A lower limit already set (``ulimit -d``) is kept; the previous limit is restored on
exit.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Iterator

try:
    import resource
except ImportError:  # not on POSIX: no ceiling, verify runs as before
    resource = None  # type: ignore[assignment]

ENV = "ADOPTER_VERIFY_MEMORY_GB"
GB = 1 << 30


def physical_memory() -> int | None:
    """Bytes of memory this machine has (None where the system does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def ceiling_bytes() -> int | None:
    """The ceiling: ``ADOPTER_VERIFY_MEMORY_GB`` when set (0 turns it off), else half of the
    machine's memory; None for no ceiling."""
    value = os.environ.get(ENV, "").strip()
    if value:
        try:
            gb = float(value)
        except ValueError:
            gb = -1.0
        if gb > 0:
            return int(gb * GB)
        if gb == 0:
            return None
    total = physical_memory()
    return total // 2 if total else None


def data_segment() -> int:
    """Bytes of this process's data segment now (``VmData`` of ``/proc/self/status``, what
    ``RLIMIT_DATA`` is checked against on Linux); 0 where the system does not say."""
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as status:
            for line in status:
                if line.startswith("VmData:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def describe(limit: int | None) -> str:
    """The ceiling as a verdict says it."""
    return f"{limit / GB:.1f} GB" if limit else "the machine's memory"


@contextmanager
def ceiling(on_cpu: bool = True) -> Iterator[int | None]:
    """Hold the process's data segment under :func:`ceiling_bytes` while verify runs (on the CPU
    only: a GPU's own memory bounds what is built there, and CUDA maps host memory of its own).
    Yields the ceiling in force: how much verify may allocate (None where none is set)."""
    room = ceiling_bytes() if on_cpu else None
    if resource is None or room is None or not hasattr(resource, "RLIMIT_DATA"):
        yield None
        return
    used = data_segment()
    limit = used + room  # the segment may grow by ``room``: what verify allocates, not what came before
    soft, hard = resource.getrlimit(resource.RLIMIT_DATA)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    if soft != resource.RLIM_INFINITY and soft <= limit:
        yield max(soft - used, 0)  # a lower limit the user set stays
        return
    try:
        resource.setrlimit(resource.RLIMIT_DATA, (limit, hard))
    except (ValueError, OSError):
        yield None
        return
    try:
        yield limit - used
    finally:
        resource.setrlimit(resource.RLIMIT_DATA, (soft, hard))


_ALLOC_FAILED = ("can't allocate memory", "cannot allocate memory", "std::bad_alloc")


def out_of_memory(exc: BaseException | None) -> bool:
    """Whether ``exc`` (or an error it was raised from) is a failed allocation: a MemoryError, or
    torch's CPU allocator refusing (``DefaultCPUAllocator: can't allocate memory``)."""
    seen = 0
    while exc is not None and seen < 8:
        if isinstance(exc, MemoryError):
            return True
        text = str(exc).lower()
        if isinstance(exc, RuntimeError) and any(s in text for s in _ALLOC_FAILED):
            return True
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return False


_refused: list[str] = []  # allocations refused under the ceiling since the last take_refusals()


def note(exc: BaseException) -> None:
    """Record ``exc`` when it is a refused allocation: the build loops that swallow a recipe's
    error and try the next keep going, and the verdict can still say the ceiling refused one."""
    if out_of_memory(exc):
        _refused.append(" ".join(str(exc).split())[:160])


def take_refusals() -> list[str]:
    """The refusals recorded since the last call, cleared."""
    out = list(_refused)
    _refused.clear()
    return out


def skip_reason(limit: int | None) -> str:
    """What a verdict says of a build or run that failed to allocate under the ceiling."""
    return (f"the build or its inputs need more memory than verify's ceiling ({describe(limit)}, set "
            f"{ENV} to change it): give a smaller configuration in [tool.adopter.verify] factories")
