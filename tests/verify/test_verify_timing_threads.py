"""How many threads a CPU timing uses: all cores on a quiet machine, one on a busy one.

Intra-op threads wait for each other at a barrier; with other jobs runnable, one descheduled
thread stalls every op, and a 0.1 ms forward measures milliseconds.  The 1-minute load average
sees a burst only a minute late, so the run queue at the moment of timing is read too.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
import torch

from adopter.verify.bench import runnable_now, timing_threads


def test_the_run_queue_is_read_from_the_kernels_loadavg(tmp_path):
    path = tmp_path / "loadavg"
    path.write_text("0.52 0.58 0.59 7/1234 56789\n")
    assert runnable_now(str(path)) == 7
    path.write_text("garbage\n")
    assert runnable_now(str(path)) == 1  # only the reader, where the file does not say
    assert runnable_now(str(tmp_path / "missing")) == 1


@pytest.mark.skipif(not os.path.exists("/proc/loadavg"), reason="needs /proc/loadavg")
def test_a_burst_of_busy_processes_is_seen_before_the_load_average_moves():
    cores = os.cpu_count() or 1
    if cores < 2:
        pytest.skip("one core: there is no choice of threads to make")
    threads_before = torch.get_num_threads()
    torch.set_num_threads(2)  # (a test worker may run single-threaded: give the choice back)
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(cores + 1)]
    try:
        # the hogs are runnable as soon as they have started; sample until the kernel shows them
        deadline = time.monotonic() + 10
        seen = []
        while time.monotonic() < deadline:
            threads, note = timing_threads(torch.device("cpu"), None)
            seen.append(threads)
            if threads == 1:
                break
            time.sleep(0.05)
        assert seen[-1] == 1, seen
        assert "timed with 1 thread" in note and "cores" in note
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()
        torch.set_num_threads(threads_before)


def test_a_requested_thread_count_is_kept_however_busy_the_machine():
    assert timing_threads(torch.device("cpu"), 3) == (3, "")
