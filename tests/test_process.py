"""The console scripts' process: fast exit only when nothing else has to run, output complete.

Each case runs a fresh interpreter (the fast exit ends the process it runs in) with the
console-script functions of ``adopter.process``, as the installed ``adopter``,
``adopter-hook`` and ``adopter-hook-fix`` scripts call them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from adopter.cli import main

#: One finding per class (ADP005 with --target cuda): enough classes that the JSON report is
#: more than twice a pipe's 64 KiB buffer, so an exit that skipped the flush would cut it short.
BLOCK = textwrap.dedent("""
    class Out{i}(nn.Module):
        def __init__(self):
            super().__init__()
            self.dropout = nn.Dropout(0.1)
            self.norm = nn.LayerNorm(8)

        def forward(self, h, r):
            return self.norm(self.dropout(h) + r)
""")


def _python(code: str, *args: str, cwd=None) -> subprocess.CompletedProcess:
    # buffered output, as a user's shell gives it (some CI machines set PYTHONUNBUFFERED)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code), *args], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=300)


def test_the_console_script_writes_its_whole_report_through_a_pipe(tmp_path, capsys):
    model = tmp_path / "model.py"
    model.write_text("from torch import nn\n" + "".join(BLOCK.format(i=i) for i in range(400)))
    args = ["check", "--target", "cuda", "--select", "ADP005", "--output-format", "json", str(model)]
    proc = _python("from adopter.process import adopter; adopter()", *args)
    assert proc.returncode == 1, proc.stderr
    assert len(proc.stdout) > 2 * 65536
    in_process = main(args)
    assert in_process == 1
    expected = json.loads(capsys.readouterr().out)
    assert json.loads(proc.stdout) == expected and len(expected) == 400


def test_output_still_in_the_buffers_is_written_before_the_exit():
    # stdout and stderr into pipes are block-buffered: the last lines sit in the buffers when
    # the command returns
    proc = _python("""
        import sys
        from adopter.process import run

        def main():
            for i in range(5000):
                print(i)
                print(-i, file=sys.stderr)
            return 1

        run(main)
    """)
    assert proc.returncode == 1
    assert proc.stdout.split() == [str(i) for i in range(5000)]
    assert proc.stderr.split() == [str(-i) for i in range(5000)]


def test_exit_statuses_pass_through(tmp_path):
    model = tmp_path / "clean.py"
    model.write_text("def f(x):\n    return x + 1\n")
    assert _python("from adopter.process import adopter; adopter()", "check", str(model)).returncode == 0
    usage = _python("from adopter.process import adopter; adopter()", "check", "--no-such-option", str(model))
    assert usage.returncode == 2 and "--no-such-option" in usage.stderr
    # a main returning None is 0; SystemExit with a message prints it and exits 1, as Python does
    assert _python("from adopter.process import run; run(lambda: None)").returncode == 0
    message = _python("""
        from adopter.process import run
        def main():
            raise SystemExit("adopter: gave up")
        run(main)
    """)
    assert message.returncode == 1 and "adopter: gave up" in message.stderr


def test_the_hook_scripts_run_their_commands(tmp_path):
    model = tmp_path / "model.py"
    model.write_text("from torch import nn\n" + BLOCK.format(i=0))
    # outside a git repository the hook reports whole files
    proc = _python("from adopter.process import hook_check; hook_check()", "--target=cuda", "--select=ADP005",
                   str(model), cwd=tmp_path)
    assert proc.returncode == 1 and "ADP005" in proc.stdout, proc.stderr
    # the fix hook rewrites the file (nonzero: a file changed), then finds nothing to do
    fixed = _python("from adopter.process import hook_fix; hook_fix()", "--target=cuda", "--select=ADP005",
                    str(model), cwd=tmp_path)
    assert fixed.returncode == 1 and "adopter_kernels" in model.read_text(), fixed.stderr
    again = _python("from adopter.process import hook_fix; hook_fix()", "--target=cuda", "--select=ADP005",
                    str(model), cwd=tmp_path)
    assert again.returncode == 0, again.stderr


@pytest.mark.parametrize("late", ["atexit", "thread"])
def test_work_left_for_the_exit_still_runs(tmp_path, late):
    # an atexit callback (logging, tempfile, torch register them) or a non-daemon thread still
    # running: the process ends the normal way and both get to finish
    marker = tmp_path / "ran"
    proc = _python(f"""
        import atexit, threading, time
        from adopter.process import run

        def write():
            time.sleep(0.2)
            open({str(marker)!r}, "w").write("done")

        def main():
            if {late!r} == "atexit":
                atexit.register(write)
            else:
                threading.Thread(target=write).start()
            print("output")
            return 3

        run(main)
    """)
    assert proc.returncode == 3 and proc.stdout == "output\n", proc.stderr
    assert marker.read_text() == "done"


def test_the_collector_is_set_before_the_tool_is_imported():
    proc = _python("""
        import gc, sys
        from adopter import process

        def main():
            # the young generation collects less often, and the imports are frozen
            print(gc.get_threshold()[0], gc.get_freeze_count() > 0, "adopter.engine" in sys.modules)
            return 0

        process._collect_less()
        import adopter.engine
        process.run(main)
    """)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == [str(20_000), "True", "True"]
