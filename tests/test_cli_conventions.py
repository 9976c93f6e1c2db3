"""The conventions a Ruff user expects, on real files and real subprocesses (and a real
pseudo-terminal for colour and the progress bar)."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from adopter.cli import main

# The models here hold dropout -> add -> LayerNorm (ADP005), on by default for CUDA only (no
# gain measured on the CPU): these runs are for code that runs on CUDA.
CUDA = ("--target", "cuda")

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

BLOCK = (Path(__file__).parent / "hook" / "fixtures" / "block.py").read_text()


def run(*args, cwd=None, stdin: str | None = None, env=None):
    proc = subprocess.run([sys.executable, "-m", "adopter.cli", *args], capture_output=True, text=True, cwd=cwd,
                          input=stdin, env=env, timeout=300)
    return proc.returncode, proc.stdout, proc.stderr


@pytest.fixture
def two(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a.py").write_text(MODEL)
    (tmp_path / "b.py").write_text(MODEL)
    return tmp_path


def test_check_fix_rewrites_every_named_file_and_reports_what_is_left(two):
    """`check --fix a.py b.py` used to be read as the hidden --fix-hint a.py (abbreviation),
    silently skipping a.py."""
    code, out, err = run("check", *CUDA, "--fix", "--no-deps", "a.py", "b.py", cwd=two)
    assert code == 0, err
    for name in ("a.py", "b.py"):
        text = (two / name).read_text()
        assert "dropout_add_layer_norm(h, r, self.dropout, self.norm)" in text and "self.norm(" not in text
    assert out == ""
    assert "Found 2 opportunities (2 fixed, 0 remaining)." in err
    # nothing left: a clean run says so
    code, out, err = run("check", *CUDA, "a.py", "b.py", cwd=two)
    assert (code, out) == (0, "") and "All checks passed!" in err


def test_no_option_is_abbreviated_and_misspellings_get_a_hint(two):
    code, _, err = run("check", *CUDA, "--fix-h", "a.py", cwd=two)
    assert code == 2 and "unrecognized arguments: --fix-h" in err and "did you mean --fix" in err
    code, _, err = run("check", *CUDA, "--selct=ADP004", "a.py", cwd=two)
    assert code == 2 and "did you mean --select" in err
    code, _, err = run("chek", "a.py", cwd=two)
    assert code == 2 and "did you mean 'check'?" in err
    code, _, err = run("check", *CUDA, "--output-format", "jsn", "a.py", cwd=two)
    assert code == 2 and "did you mean 'json'?" in err
    assert (two / "a.py").read_text() == MODEL


def test_check_diff_prints_the_patch_and_writes_nothing(two):
    code, out, err = run("check", *CUDA, "--diff", "--no-deps", "a.py", cwd=two)
    assert code == 1
    assert out.startswith("--- a/a.py\n+++ b/a.py\n") and "+from adopter_kernels import dropout_add_layer_norm" in out
    assert "Would fix 1 opportunity." in err
    assert (two / "a.py").read_text() == MODEL
    # the printed diff is what fix would write
    subprocess.run(["git", "apply", "-"], input=out, text=True, cwd=two, check=True)
    fixed = (two / "a.py").read_text()
    (two / "a.py").write_text(MODEL)
    assert run("fix", *CUDA, "--no-deps", "a.py", cwd=two)[0] == 1
    assert (two / "a.py").read_text() == fixed


def test_exit_zero_statistics_quiet_silent(two):
    code, out, err = run("check", *CUDA, "--exit-zero", ".", cwd=two)
    assert code == 0 and out.count("ADP005") == 2 and "Found 2 opportunities" in err
    code, out, _ = run("check", *CUDA, "--statistics", ".", cwd=two)
    assert code == 1 and out.strip() == "2\tADP005\t[*] dropout-add-layernorm"
    code, out, err = run("check", *CUDA, "--quiet", ".", cwd=two)
    assert code == 1 and out.count("ADP005") == 2 and err == ""
    code, out, err = run("check", *CUDA, "--silent", ".", cwd=two)
    assert (code, out, err) == (1, "", "")


def test_show_fixes_lists_what_was_fixed(two):
    code, _, err = run("check", *CUDA, "--fix", "--show-fixes", "--no-deps", ".", cwd=two)
    assert code == 0
    assert "Fixed 2 opportunities:" in err and "- a.py:\n    1 \u00d7 ADP005 (dropout-add-layernorm)" in err
    code, _, err = run("check", *CUDA, "--fix", "--exit-non-zero-on-fix", "--no-deps", ".", cwd=two)
    assert code == 0  # nothing left to fix the second time
    (two / "c.py").write_text(MODEL)
    assert run("check", *CUDA, "--fix", "--exit-non-zero-on-fix", "--no-deps", "c.py", cwd=two)[0] == 1


def test_standard_input(two):
    (two / "pyproject.toml").write_text('[tool.adopter]\nexclude = ["gen/"]\n')
    code, out, _ = run("check", *CUDA, "-", "--stdin-filename", "pkg/model.py", cwd=two, stdin=MODEL)
    assert code == 1 and out.startswith("pkg/model.py:11:26: ADP005 dropout-add-layernorm")
    code, out, err = run("check", *CUDA, "--fix", "-", "--stdin-filename", "model.py", cwd=two, stdin=MODEL)
    assert code == 0 and "from adopter_kernels import dropout_add_layer_norm" in out
    assert "return dropout_add_layer_norm(h, r, self.dropout, self.norm)" in out
    code, out, _ = run("fix", *CUDA, "--diff", "-", cwd=two, stdin=MODEL)
    assert code == 1 and out.startswith("--- a/-\n+++ b/-\n")
    # excluded with --force-exclude: the code passes through unchanged
    code, out, _ = run("fix", *CUDA, "--force-exclude", "--stdin-filename", "gen/x.py", "-", cwd=two, stdin=MODEL)
    assert (code, out) == (0, MODEL)
    code, _, err = run("check", *CUDA, "-", "a.py", cwd=two, stdin=MODEL)
    assert code == 2 and "cannot be combined" in err


def test_noqa_and_ignore_comments_on_any_line_of_a_multi_line_finding(tmp_path):
    code = textwrap.dedent("""\
        from torch import nn


        class Out(nn.Module):
            def __init__(self):
                super().__init__()
                self.dropout = nn.Dropout(0.1)
                self.norm = nn.LayerNorm(8)

            def forward(self, h, r):
                return self.norm(
                    self.dropout(h)
                    + r{comment}
                )
    """)
    path = tmp_path / "m.py"
    for comment, silenced in (("", False), ("  # noqa: ADP005", True), ("  # noqa", True),
                              ("  # noqa: E501", False), ("  # noqa:", False),
                              ("  # adopter: ignore[dropout-add-layernorm]", True), ("  # NOQA:ADP004,ADP005", True)):
        path.write_text(code.format(comment=comment))
        assert main(["check", *CUDA, "--quiet", str(path)]) == (0 if silenced else 1), comment
    # a suppressed finding is not fixed either
    path.write_text(code.format(comment="  # noqa: ADP005"))
    assert main(["fix", *CUDA, "--no-deps", str(path)]) == 0


# --------------------------------------------------------------------------- terminals

def _on_a_terminal(args: list[str], cwd: Path, env: dict | None = None, timeout: float = 300) -> str:
    """Run the command with stdout and stderr on a pseudo-terminal; return what it printed."""
    leader, follower = pty.openpty()
    environment = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "100", **(env or {})}
    for key in [k for k, v in environment.items() if v is None]:
        del environment[key]
    proc = subprocess.Popen([sys.executable, "-m", "adopter.cli", *args], cwd=cwd, stdin=subprocess.DEVNULL,
                            stdout=follower, stderr=follower, env=environment)
    os.close(follower)
    chunks = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([leader], [], [], 0.5)
        if ready:
            try:
                data = os.read(leader, 65536)
            except OSError:
                break
            if not data:
                break
            chunks.append(data)
        elif proc.poll() is not None:
            break
    proc.wait(timeout=60)
    os.close(leader)
    return b"".join(chunks).decode(errors="replace")


def test_colour_on_a_terminal_unless_no_color_or_never(two):
    coloured = _on_a_terminal(["check", *CUDA, "a.py"], two, env={"NO_COLOR": None, "FORCE_COLOR": None})
    assert "\x1b[1ma.py\x1b[0m" in coloured and "\x1b[1m\x1b[31mADP005\x1b[0m" in coloured
    plain = _on_a_terminal(["check", *CUDA, "a.py"], two, env={"NO_COLOR": "1"})
    assert "\x1b[" not in plain and "a.py:11:26: ADP005 dropout-add-layernorm" in plain
    assert "\x1b[" not in _on_a_terminal(["check", *CUDA, "--color", "never", "a.py"], two, env={"NO_COLOR": None})
    # piped: no colour unless asked for
    assert "\x1b[" not in run("check", *CUDA, "a.py", cwd=two)[1]
    assert "\x1b[31mADP005" in run("check", *CUDA, "--color", "always", "a.py", cwd=two)[1]


def test_a_long_run_shows_a_progress_bar_on_a_terminal_only(tmp_path):
    for i in range(30):
        (tmp_path / f"m{i:02d}.py").write_text(MODEL)
    shown = _on_a_terminal(["check", *CUDA, "--jobs", "1", "."], tmp_path, env={"NO_COLOR": None})
    assert "checking" in shown and "/30" in shown
    assert shown.count("ADP005") == 30
    code, out, err = run("check", *CUDA, "--jobs", "1", ".", cwd=tmp_path)
    assert "checking" not in err and "/30" not in err
    quiet = _on_a_terminal(["check", *CUDA, "--quiet", "--jobs", "1", "."], tmp_path)
    assert "checking" not in quiet


def test_notebook_and_non_python_files_are_never_a_silent_pass(tmp_path):
    (tmp_path / "notes.txt").write_text("self.norm(self.dropout(h) + r)\n")
    code, _, err = run("check", *CUDA, "notes.txt", cwd=tmp_path)
    assert code == 2 and "notes.txt: error: not a Python file" in err
