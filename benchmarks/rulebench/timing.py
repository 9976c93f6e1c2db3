"""Clocks and peak memory, on the CPU and on CUDA.

Time of one call, CPU: ``torch.utils.benchmark.Timer(...).blocked_autorange`` (it picks a
block size, runs blocks for at least ``min_run_time`` and reports the median block time per
call) with an explicit thread count, on the wall clock or (``--clock thread``) on the CPU-time
clock of the calling thread.  CUDA: the same kind of median over blocks, but each
block is bracketed by CUDA events (``torch.cuda.Event(enable_timing=True)``) and the device is
synchronised before and after, so the figure is GPU time of the queued work, not the Python
loop that queued it.

Peak memory of one call, CPU: ``torch.profiler`` with ``profile_memory=True`` records every
allocation and free of torch's CPU allocator; replaying them in order gives the peak of live
bytes above what was allocated before the call.  ``tracemalloc`` does not see torch's
allocator, and the process's resident size never shrinks when tensors are freed (and counts
the allocator's caching and the interpreter), so neither says what a patch changes.  The
profiler's figure is the allocator's own account.  Also, for training: the bytes autograd
*saves for backward* (``torch.autograd.graph.saved_tensors_hooks``, each storage counted
once), the part of training memory that fused kernels reduce; it is exact and costs nothing
to take.  CUDA: ``torch.cuda.max_memory_allocated`` after ``reset_peak_memory_stats``, minus
what was allocated before the call.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch
from torch.utils import benchmark as torch_benchmark

# Peak memory is measured as `adopter verify` measures it (one definition of the figure).
from adopter.verify.bench import _peak_memory as peak_memory  # noqa: F401  (harness.py calls timing.peak_memory)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def cpu_clock(min_run_time: float, threads: int, cpu_time: bool = False) -> Callable[[Callable[[], object]], float]:
    """Wall time per call; with ``cpu_time``, the CPU time of the calling thread instead.

    With one intra-op thread every op runs on the calling thread, so its CPU time
    (``time.thread_time``) is the work of the call, and the time the scheduler gives to other
    processes on a crowded machine is not in it; wall time counts that too.  (Cache and memory
    bandwidth shared with other processes still show in both.)
    """
    if cpu_time and threads != 1:
        raise ValueError("the thread CPU-time clock needs --threads 1 (ops of other threads are not counted)")
    timer = time.thread_time if cpu_time else time.perf_counter

    def measure(fn: Callable[[], object]) -> float:
        bench = torch_benchmark.Timer(stmt="fn()", globals={"fn": fn}, num_threads=threads, timer=timer)
        return float(bench.blocked_autorange(min_run_time=min_run_time).median)

    return measure


def cuda_clock(min_run_time: float, device: torch.device) -> Callable[[Callable[[], object]], float]:
    """Median per-call GPU time over blocks of calls, each block timed by a pair of CUDA events."""

    def measure(fn: Callable[[], object]) -> float:
        synchronize(device)
        fn()  # warm: the first call of a shape may compile or autotune
        synchronize(device)
        per_block = 1
        while True:  # grow the block until it takes a measurable time (>= 1/10 of the budget)
            elapsed = _cuda_block(fn, per_block, device)
            if elapsed >= min_run_time / 10 or per_block >= 1 << 16:
                break
            per_block *= 2
        times, total = [], 0.0
        while total < min_run_time or len(times) < 3:
            elapsed = _cuda_block(fn, per_block, device)
            times.append(elapsed / per_block)
            total += elapsed
        times.sort()
        return times[len(times) // 2]

    return measure


def _cuda_block(fn: Callable[[], object], count: int, device: torch.device) -> float:
    start = torch.cuda.Event(enable_timing=True)
    end = torch.cuda.Event(enable_timing=True)
    synchronize(device)
    start.record()
    for _ in range(count):
        fn()
    end.record()
    synchronize(device)
    return start.elapsed_time(end) / 1e3


def steady_malloc() -> bool:
    """Make glibc's allocator keep freed memory (``mallopt``: no mmap threshold, no trimming).

    By default a large tensor (above glibc's mmap threshold) is mapped fresh on allocation and
    unmapped on free, so every call pays page faults for it; how much varies with what the rest
    of the machine is doing, and on a crowded machine it is the largest source of noise (the
    same RMSNorm step measured 28-98 ms of CPU time; 21-31 ms with this).  Keeping freed memory
    is what jemalloc/tcmalloc deployments and long-running training loops see.  Returns False
    where it cannot be applied (not glibc).
    """
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3
        return bool(libc.mallopt(m_trim_threshold, 1 << 30)) and bool(libc.mallopt(m_mmap_threshold, 1 << 30))
    except (OSError, AttributeError):
        return False


def saved_tensor_bytes(fn: Callable[[], object]) -> int:
    """Bytes of the tensors autograd saves for backward during one call of ``fn`` (which runs
    the backward too); a storage saved twice (an input saved by two ops) counts once."""
    seen: dict[tuple, int] = {}

    def pack(tensor: torch.Tensor):
        try:
            storage = tensor.untyped_storage()
            key = (tensor.device.type, storage.data_ptr())
            seen[key] = max(seen.get(key, 0), storage.nbytes())
        except (RuntimeError, NotImplementedError):  # tensors without storage (sparse, nested)
            pass
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        fn()
    return sum(seen.values())
