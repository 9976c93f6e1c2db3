"""Nothing left behind and nothing that hangs (issue #17, items 10 and 11): a FIFO where a
file or a rule file was, kill -9 and SIGTERM in the middle of a write, and worker processes
whose parent died.  Real processes, real signals, real FIFOs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from adopter import source as source_module
from adopter.runner import Options, Selection, check_job, plan
from adopter.source import remove_stale_temporaries

# The models here hold dropout -> add -> LayerNorm (ADP005), on by default for CUDA only (no
# gain measured on the CPU): these runs are for code that runs on CUDA.
CUDA = ("--target", "cuda")

pytestmark = pytest.mark.skipif(not hasattr(os, "mkfifo") or not sys.platform.startswith("linux"),
                                reason="FIFOs, signals and /proc as on Linux")

MODEL = textwrap.dedent("""\
    from torch import nn


    class Out(nn.Module):
        def __init__(self):
            super().__init__()
            self.dropout = nn.Dropout(0.1)
            self.norm = nn.LayerNorm(8)

        def forward(self, h, r):
            return self.norm(self.dropout(h) + r)
""")

# Runs the CLI with a pause right before the atomic replace: the temporary file is on disk.
PAUSED_FIX = textwrap.dedent("""
    import sys, time
    import adopter.source as source
    def pause(path):
        print("PAUSED", flush=True)
        time.sleep(120)
    source.before_replace = pause
    from adopter.cli import main
    sys.exit(main(sys.argv[1:]))
""")


def temporaries(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if ".adopter-" in p.name and p.name.endswith(".tmp"))


def start_paused_fix(tmp_path: Path) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", PAUSED_FIX, "fix", *CUDA, "--no-deps", str(tmp_path / "model.py")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "PAUSED"
    assert len(temporaries(tmp_path)) == 1
    return proc


def test_kill_9_during_fix_leaves_a_temporary_file_that_the_next_run_removes(tmp_path):
    (tmp_path / "model.py").write_text(MODEL)
    proc = start_paused_fix(tmp_path)
    proc.kill()
    proc.wait(timeout=30)
    assert (tmp_path / "model.py").read_text() == MODEL  # the file itself is intact
    (leftover,) = temporaries(tmp_path)
    assert leftover.startswith(".model.py.adopter-") and f"-{proc.pid}-" in leftover
    done = subprocess.run([sys.executable, "-m", "adopter.cli", "check", *CUDA, str(tmp_path / "model.py")],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 1
    assert temporaries(tmp_path) == []


def test_sigterm_during_fix_removes_its_temporary_file_and_keeps_the_old_file(tmp_path):
    (tmp_path / "model.py").write_text(MODEL)
    proc = start_paused_fix(tmp_path)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 143
    assert "Traceback" not in proc.stderr.read()
    assert temporaries(tmp_path) == []
    assert (tmp_path / "model.py").read_text() == MODEL


def test_a_live_run_s_temporary_file_is_never_removed(tmp_path):
    live = tmp_path / f".model.py.adopter-{os.getppid()}-abcdef12.tmp"
    live.write_text("in flight")
    legacy_fresh = tmp_path / ".model.py.adopter-x1y2z3w4.tmp"
    legacy_fresh.write_text("older format, just written")
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / f".model.py.adopter-{dead.stdout.strip()}-abcdef12.tmp"
    stale.write_text("left by a killed run")
    assert remove_stale_temporaries(str(tmp_path)) == [stale.name]
    assert live.exists() and legacy_fresh.exists()
    old = time.time() - 3600
    os.utime(legacy_fresh, (old, old))
    assert remove_stale_temporaries(str(tmp_path)) == [legacy_fresh.name]


def _children(pid: int) -> set[int]:
    found = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            found |= {int(p) for p in (task / "children").read_text().split()}
        except OSError:
            pass
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _slow_tree(tmp_path: Path, files: int = 48) -> None:
    """Files whose check takes a while each: many classes, each with a match (of ADP004,
    which is off by default: the runs below select it).  Enough of them that a run lasts some
    seconds (16 took ~2 s with two workers once the check got faster: a worker signalled late
    had already done its share, and the run ended well)."""
    parts = ["import torch.nn.functional as F", "from torch import nn", ""]
    for i in range(300):
        parts += [f"class Head{i}(nn.Module):", "    def forward(self, h):",
                  "        h = F.softmax(h, dim=-1)", "        return F.softmax(h * 2, dim=-1)", ""]
    text = "\n".join(parts) + "\n"
    for i in range(files):
        (tmp_path / f"m{i:02d}.py").write_text(text)


def _signal_masks(pid: int) -> tuple[int, int]:
    """(ignored, caught) signal masks of ``pid`` from /proc (0, 0 when it is gone)."""
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return 0, 0
    masks = {k: int(v, 16) for k, v in (line.split(":\t", 1) for line in lines if line.startswith(("SigIgn", "SigCgt")))}
    return masks.get("SigIgn", 0), masks.get("SigCgt", 0)


def _initialised(pid: int) -> bool:
    """Whether a worker has run its initializer (runner._exit_with_parent): it ignores SIGINT
    and no longer catches SIGTERM with the handler it inherited from the run.  A signal sent
    earlier reaches the run's own handler in the forked child, not the worker's."""
    ignored, caught = _signal_masks(pid)
    return bool(ignored & (1 << (signal.SIGINT - 1))) and not caught & (1 << (signal.SIGTERM - 1))


def _workers_of(proc: subprocess.Popen, timeout: float = 120) -> set[int]:
    """The run's worker processes, once two of them have started and run their initializer."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        workers = {pid for pid in _children(proc.pid) if _initialised(pid)}
        if len(workers) >= 2:
            return workers
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    raise AssertionError("the run never started its workers")


@pytest.mark.parametrize("how", ["kill -9", "SIGTERM"])
def test_workers_do_not_outlive_their_run(tmp_path, how):
    _slow_tree(tmp_path)
    proc = subprocess.Popen([sys.executable, "-m", "adopter.cli", "check", *CUDA, "--select", "ADP004", "--jobs", "2", "--file-timeout", "0",
                             str(tmp_path)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    workers = _workers_of(proc)
    time.sleep(0.5)  # the workers are busy with files
    proc.send_signal(signal.SIGKILL if how == "kill -9" else signal.SIGTERM)
    code = proc.wait(timeout=60)
    if how == "SIGTERM":
        assert code == 143 and "Traceback" not in proc.stderr.read()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and any(_alive(w) for w in workers):
        time.sleep(0.2)
    assert not any(_alive(w) for w in workers), "a worker outlived the run"


def test_a_file_replaced_by_a_fifo_after_discovery_is_refused_not_waited_on(tmp_path):
    (tmp_path / "model.py").write_text(MODEL)
    (tmp_path / "other.py").write_text(MODEL)
    jobs, errors = plan([str(tmp_path)], Selection(Options()))
    assert errors == [] and len(jobs) == 2
    os.unlink(tmp_path / "model.py")
    os.mkfifo(tmp_path / "model.py")  # nobody will ever write to it
    started = time.monotonic()
    results = {Path(job.path).name: check_job(job) for job in jobs}
    assert time.monotonic() - started < 60
    assert results["model.py"].error == "not a regular file (a pipe, socket or device); skipped"
    assert [f.rule for f in results["other.py"].findings] == ["ADP005"]


def test_a_file_replaced_by_a_fifo_right_before_the_write_is_left_alone(tmp_path):
    path = tmp_path / "model.py"
    path.write_text(MODEL)

    def swap(p):
        os.unlink(p)
        os.mkfifo(p)

    source_module.before_replace = swap
    try:
        from adopter.cli import main

        code = main(["fix", *CUDA, "--no-deps", str(path)])
    finally:
        source_module.before_replace = None
    assert code == 2
    assert path.is_fifo()  # not replaced by the fix
    assert temporaries(tmp_path) == []


def test_fifo_rule_file_and_fifo_config_do_not_hang(tmp_path):
    rules = tmp_path / "rules"
    rules.mkdir()
    os.mkfifo(rules / "x.toml")
    (tmp_path / "model.py").write_text(MODEL)
    proc = subprocess.run([sys.executable, "-m", "adopter.cli", "check", *CUDA, "--rules-dir", str(rules),
                           str(tmp_path / "model.py")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.startswith(f"{rules / 'x.toml'}:1:1: cannot read rule file: not a regular file")
    project = tmp_path / "proj"
    project.mkdir()
    os.mkfifo(project / "pyproject.toml")
    os.mkfifo(project / ".gitignore")
    (project / "model.py").write_text(MODEL)
    proc = subprocess.run([sys.executable, "-m", "adopter.cli", "check", *CUDA, str(project)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and "ADP005" in proc.stdout


def test_sigterm_to_a_worker_stops_that_worker_and_the_run_says_so(tmp_path):
    _slow_tree(tmp_path)
    proc = subprocess.Popen([sys.executable, "-m", "adopter.cli", "check", *CUDA, "--select", "ADP004", "--jobs", "2", "--file-timeout", "0",
                             str(tmp_path)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    workers = _workers_of(proc)
    victim = min(workers)
    os.kill(victim, signal.SIGTERM)
    assert proc.wait(timeout=120) == 2
    assert "a worker process died" in proc.stderr.read()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and any(_alive(w) for w in workers):
        time.sleep(0.2)
    assert not any(_alive(w) for w in workers)


def test_a_stopped_run_exits_even_when_unwinding_hangs():
    """SIGTERM gives the run a bounded time to unwind: an exit step that never returns (as
    joining a process pool's manager thread can, when a worker was killed mid-task) does not
    keep a stopped run alive."""
    script = (
        "import atexit, os, signal, threading, time\n"
        "from adopter import runner\n"
        "runner.TERMINATE_GRACE = 1.0\n"
        "atexit.register(lambda: threading.Event().wait())  # an exit step that never returns\n"
        "runner.on_sigterm()\n"
        "try:\n"
        "    os.kill(os.getpid(), signal.SIGTERM)\n"
        "    time.sleep(30)\n"
        "except runner.Terminated:\n"
        "    print('unwound', flush=True)\n"
    )
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 143, proc.stderr
    assert proc.stdout == "unwound\n"
    assert time.monotonic() - started < 30
