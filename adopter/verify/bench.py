"""Timing and peak memory of the original and the patched module.

Time: ``torch.utils.benchmark.Timer(...).blocked_autorange(min_run_time=...)``, median per
measurement, taken in four short alternating rounds (original, patched, patched, original, ...)
keeping each side's lowest median, so a burst of background load does not land on one side only.
The spread of the rounds is the noise; a measurement noisier than :data:`NOISY` is taken again
(up to :data:`ATTEMPTS` times, the least noisy kept), and the result says how it was taken:
torch version, dtype, input shapes, rounds, runs per round and attempts.
*forward* is inference: ``eval()`` under ``torch.no_grad()``.  *forward+backward* is one
training step: ``train()`` with the model's own dropout, float inputs requiring grad, backward
of a fixed random projection of the outputs, gradients reset to None between runs.

Peak memory of one training step, above what was allocated before it:
on CUDA ``torch.cuda.max_memory_allocated`` after ``reset_peak_memory_stats``; on CPU the
allocation events ``torch.profiler`` records with ``profile_memory=True`` (every allocation and
free of the CPU allocator, replayed in order; the running total's maximum is the peak).
``tracemalloc`` does not see torch's allocator and process RSS does not return freed memory, so
neither measures what a patch changes.
"""

from __future__ import annotations

import gc
import os
import sys
import warnings
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils import benchmark as torch_benchmark

from .build import Call
from .compare import _loss, flatten


@dataclass
class Timing:
    forward_original: float
    forward_patched: float
    train_original: float
    train_patched: float
    memory_original: int | None
    memory_patched: int | None
    threads: int = 1
    note: str = ""
    spread: float = 0.0  # largest (slowest / fastest round median - 1) of the four series: the noise
    torch_version: str = ""
    dtype: str = ""
    inputs: str = ""  # the benchmark call's arguments, with shapes
    rounds: int = 0  # alternating rounds per side and mode
    runs: int = 0  # the fewest timed runs behind one round's median
    attempts: int = 1  # how often the whole measurement was taken (more than once when noisy)

    @property
    def repeats(self) -> str:
        text = f"{self.rounds} interleaved rounds per side and mode, at least {self.runs} runs per round"
        if self.attempts > 1:
            text += f", measured {self.attempts} times as it was noisy (least noisy kept)"
        return text + f", {self.threads} thread{'s' if self.threads != 1 else ''}"

    @staticmethod
    def _ratio(a: float | int | None, b: float | int | None) -> float | None:
        if a is None or b is None or b <= 0:
            return None
        return round(float(a) / float(b), 3)

    @property
    def forward_ratio(self) -> float | None:
        return self._ratio(self.forward_original, self.forward_patched)

    @property
    def train_ratio(self) -> float | None:
        return self._ratio(self.train_original, self.train_patched)

    @property
    def memory_ratio(self) -> float | None:
        return self._ratio(self.memory_original, self.memory_patched)

    def as_dict(self) -> dict:
        return {
            "forward_ms": [round(self.forward_original * 1e3, 4), round(self.forward_patched * 1e3, 4)],
            "forward_backward_ms": [round(self.train_original * 1e3, 4), round(self.train_patched * 1e3, 4)],
            "peak_memory_bytes": [self.memory_original, self.memory_patched],
            "threads": self.threads,
            "timing_spread": self.spread,
            "torch": self.torch_version,
            "dtype": self.dtype,
            "benchmark_inputs": self.inputs,
            "repeats": self.repeats,
        }


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _forward_fn(module: nn.Module, call: Call):
    def run() -> None:
        with torch.no_grad():
            call.run(module)

    return run


def _train_fn(module: nn.Module, call: Call):
    inputs = [t for t in call.leaves() if t.is_floating_point() and t.requires_grad]

    def run() -> None:
        for tensor in inputs:
            tensor.grad = None
        module.zero_grad(set_to_none=True)
        loss = _loss(flatten(call.run(module)))
        if loss is not None:
            loss.backward()

    return run


ROUNDS = 4
#: A measurement whose rounds differ by more than this is taken again.
NOISY = 0.10
ATTEMPTS = 3


def _alternate(fns, min_run_time: float, threads: int, device: torch.device) -> tuple[list[float], float, int]:
    """Per side, the lowest of ``ROUNDS`` medians taken in alternating order (o p p o o p p o).

    Load from other processes only ever adds time; short alternating rounds spread it over both
    sides, and the lowest median is the one least disturbed.  Also returns the spread of the
    rounds (slowest / fastest median - 1, worst side): ratios closer to 1 than that are noise;
    and the fewest timed runs behind one median.
    """
    medians: list[list[float]] = [[], []]
    runs = []
    for round_ in range(ROUNDS):
        for side in ((0, 1) if round_ % 2 == 0 else (1, 0)):
            _sync(device)
            median, count = _median(fns[side], min_run_time / 2, threads)
            medians[side].append(median)
            runs.append(count)
    spread = max(max(m) / min(m) - 1.0 for m in medians if min(m) > 0)
    return [min(m) for m in medians], spread, min(runs)


def _steady(fns, min_run_time: float, threads: int, device: torch.device) -> tuple[list[float], float, int, int]:
    """:func:`_alternate`, taken again while its spread is above :data:`NOISY` (at most
    :data:`ATTEMPTS` times); the least noisy attempt is kept.  Returns it and the attempts."""
    best = None
    attempts = 0
    for attempts in range(1, ATTEMPTS + 1):
        found = _alternate(fns, min_run_time, threads, device)
        if best is None or found[1] < best[1]:
            best = found
        if found[1] <= NOISY:
            break
    return best[0], best[1], best[2], attempts


def _median(fn, min_run_time: float, threads: int) -> tuple[float, int]:
    timer = torch_benchmark.Timer(stmt="fn()", globals={"fn": fn}, num_threads=threads)
    measurement = timer.blocked_autorange(min_run_time=min_run_time)
    return float(measurement.median), int(measurement.number_per_run * len(measurement.raw_times))


@contextmanager
def _stderr_silenced():
    """The profiler's C++ side logs its start and stop to file descriptor 2; keep that out of reports."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def timing_threads(device: torch.device, requested: int | None) -> tuple[int, str]:
    """Threads to time with, and a note when they differ from what was asked for.

    Intra-op parallel kernels wait for every thread at a barrier; on a machine whose run queue
    is longer than its cores (other jobs running) one descheduled thread stalls the op, and a
    1 ms forward measures 50-100 ms.  Timings then say nothing about the patch, so a busy
    machine (1-minute load above cores + 1, the 1 being this process) is timed
    single-threaded, and the report says so.
    """
    cores = torch.get_num_threads()
    if device.type != "cpu":
        return cores, ""
    if requested:
        return requested, ""
    try:
        load = os.getloadavg()[0]
    except (OSError, AttributeError):
        load = 0.0
    available = os.cpu_count() or cores
    # The load average counts this process too (about one runnable thread between timings).
    if cores > 1 and load > available + 1:
        return 1, f"machine busy (load {load:.1f} on {available} cores): timed with 1 thread"
    # The average trails a burst by a minute: jobs that started just now are seen only in the
    # run queue as it is (this process's running thread is one of them).
    others = runnable_now() - 1
    if cores > 1 and others >= available:
        return 1, f"machine busy ({others} other runnable threads on {available} cores): timed with 1 thread"
    return cores, ""


def runnable_now(path: str = "/proc/loadavg") -> int:
    """Threads runnable at this moment, the reader included (``/proc/loadavg``'s fourth field,
    ``running/total``); 1 (only the reader) where the kernel does not say."""
    try:
        with open(path, encoding="ascii") as handle:
            return max(1, int(handle.read().split()[3].split("/")[0]))
    except (OSError, ValueError, IndexError):
        return 1


def _peak_memory(fn, device: torch.device) -> int | None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        fn()
        torch.cuda.synchronize(device)
        return int(torch.cuda.max_memory_allocated(device) - base)
    try:
        from torch.profiler import ProfilerActivity, profile

        with _stderr_silenced(), profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
            fn()
        events = [e for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"]
    except Exception:
        return None
    events.sort(key=lambda e: e.start_ns())
    current = peak = 0
    for event in events:
        current += int(event.nbytes())
        peak = max(peak, current)
    return peak


def measure(original: nn.Module, patched: nn.Module, call: Call, device: torch.device,
            min_run_time: float = 0.2, memory: bool = True, threads: int | None = None) -> Timing:
    threads, note = timing_threads(device, threads)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        original.to(device)
        patched.to(device)
        infer = call.clone(device)
        train = call.clone(device, grad=True)
        original.eval()
        patched.eval()
        fwd = [_forward_fn(original, infer), _forward_fn(patched, infer)]
        for fn in fwd:  # warm up (lazy initialisation, caches)
            fn()
        times_fwd, spread_fwd, runs_fwd, attempts_fwd = _steady(fwd, min_run_time, threads, device)
        original.train()
        patched.train()
        step = [_train_fn(original, train), _train_fn(patched, train)]
        for fn in step:
            fn()
        times_train, spread_train, runs_train, attempts_train = _steady(step, min_run_time, threads, device)
        peaks: list[int | None] = [None, None]
        if memory:
            peaks = [_peak_memory(step[0], device), _peak_memory(step[1], device)]
        original.zero_grad(set_to_none=True)
        patched.zero_grad(set_to_none=True)
    return Timing(times_fwd[0], times_fwd[1], times_train[0], times_train[1], peaks[0], peaks[1], threads, note,
                  round(max(spread_fwd, spread_train), 3), torch_version=torch.__version__,
                  dtype=_dtype(original, call), inputs=call.describe()[:300], rounds=ROUNDS,
                  runs=min(runs_fwd, runs_train), attempts=max(attempts_fwd, attempts_train))


def _dtype(module: nn.Module, call: Call) -> str:
    """The floating dtype(s) of the inputs and parameters (``float32``)."""
    found = {str(t.dtype).replace("torch.", "") for t in call.leaves() if t.is_floating_point()}
    found |= {str(p.dtype).replace("torch.", "") for p in module.parameters() if p.is_floating_point()}
    return "/".join(sorted(found))
