"""``fix`` never loses data: atomic writes, a file that changes meanwhile is not overwritten,
a failure at the worst moment leaves the file as it was, and a pathological file is stopped
by its time budget while the others are still fixed (CLI, process pool and pre-commit hook)."""

from __future__ import annotations

import contextlib
import io
import os
import textwrap
import time

import pytest

from adopter import source as source_module
from adopter.budget import BudgetExceeded, enforceable, time_budget
from adopter.cli import main
from adopter.hook.main import fix as hook_fix
from adopter.source import SourceError, read_source, write_source

MODEL = textwrap.dedent("""\
    import torch.nn.functional as F
    from torch import nn


    class Head(nn.Module):
        def forward(self, h):
            return F.softmax(h, dim=-1)
""")

needs_timer = pytest.mark.skipif(not enforceable(), reason="the budget needs SIGPROF in the main thread")


def slow_model(classes: int) -> str:
    """A real (if silly) model file whose fix takes seconds: many classes, each with a match."""
    parts = ["import torch.nn.functional as F", "from torch import nn", ""]
    for i in range(classes):
        parts += [f"class Head{i}(nn.Module):", "    def forward(self, h):",
                  "        h = F.softmax(h, dim=-1)", "        return F.softmax(h * 2, dim=-1)", ""]
    return "\n".join(parts) + "\n"


def run_here(*args, entry=main):
    args = list(args)
    if entry is main and args[:1] in (["check"], ["fix"]):  # the softmax rule (ADP004) is off by default
        args.insert(1, "--select=ADP004")
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = entry(args)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def hook_point():
    yield
    source_module.before_replace = None


def test_file_changed_right_before_the_replace_is_not_overwritten(tmp_path, hook_point):
    path = tmp_path / "model.py"
    path.write_text(MODEL)
    edited = MODEL + "# the user's edit, made while adopter was fixing\n"

    def user_edits(p):
        with open(p, "w") as handle:
            handle.write(edited)

    source_module.before_replace = user_edits
    code, _, err = run_here("fix", "--no-deps", str(path))
    assert code == 2
    assert "file changed while it was being fixed; left as it is" in err
    assert path.read_text() == edited
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.py"]  # no temporary file left


def test_file_changed_between_read_and_write_is_not_overwritten(tmp_path):
    path = tmp_path / "model.py"
    path.write_text(MODEL)
    source = read_source(str(path))
    path.write_text(MODEL.replace("dim=-1", "dim=1"))  # same size, other bytes
    with pytest.raises(SourceError, match="changed while it was being fixed"):
        write_source(source, "x = 1\n")
    assert "dim=1" in path.read_text()


def test_interrupt_at_the_worst_moment_leaves_the_old_file(tmp_path, hook_point):
    path = tmp_path / "model.py"
    path.write_text(MODEL)

    def interrupt(p):
        raise KeyboardInterrupt

    source_module.before_replace = interrupt
    source = read_source(str(path))
    with pytest.raises(KeyboardInterrupt):
        write_source(source, "x = 1\n")
    assert path.read_text() == MODEL
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.py"]


def test_text_the_encoding_cannot_hold_is_refused(tmp_path):
    path = tmp_path / "model.py"
    data = "# -*- coding: latin-1 -*-\nx = 'caf\xe9'\n".encode("latin-1")
    path.write_bytes(data)
    source = read_source(str(path))
    with pytest.raises(SourceError, match="cannot be written as iso-8859-1"):
        write_source(source, source.text + "y = '\u20ac'\n")
    assert path.read_bytes() == data


def test_written_file_keeps_mode_encoding_and_endings(tmp_path):
    path = tmp_path / "model.py"
    data = "# -*- coding: latin-1 -*-\r\nx = 'caf\xe9'\r\n".encode("latin-1")
    path.write_bytes(data)
    path.chmod(0o640)
    source = read_source(str(path))
    write_source(source, source.text + "y = 2\n")
    assert path.read_bytes() == data + b"y = 2\r\n"
    assert oct(path.stat().st_mode & 0o777) == oct(0o640)


@needs_timer
def test_budget_stops_pure_python_work():
    with pytest.raises(BudgetExceeded):
        with time_budget(0.05):
            while True:
                pass
    with time_budget(5):  # a finished body is not interrupted later
        total = sum(range(1000))
    assert total == 499500


@needs_timer
def test_budget_exception_that_is_swallowed_comes_again_and_stops_after_the_body():
    # Python drops an exception raised in a gc callback or __del__; the budget must not be lost.
    swallowed = 0
    with pytest.raises(BudgetExceeded):
        with time_budget(0.05):
            while True:
                try:
                    while True:
                        pass
                except BudgetExceeded:
                    if swallowed:
                        raise
                    swallowed += 1
    assert swallowed == 1
    with pytest.raises(BudgetExceeded):  # a body that swallowed the budget and then finished
        with time_budget(0.05):
            try:
                while True:
                    pass
            except BudgetExceeded:
                pass
    with pytest.raises(BudgetExceeded):  # the budget surfacing as another error (ast.parse: SystemError)
        with time_budget(0.05):
            try:
                while True:
                    pass
            except BudgetExceeded:
                raise SystemError("AST constructor recursion depth mismatch") from None
    with time_budget(0.05):
        pass
    burn = time.process_time() + 0.3  # no late exception once the body is left
    while time.process_time() < burn:
        pass


@needs_timer
def test_budget_stops_a_pathological_file_and_the_others_go_on(tmp_path):
    slow = tmp_path / "slow.py"
    slow.write_text(slow_model(300))
    good = tmp_path / "good.py"
    good.write_text(MODEL)
    code, _, err = run_here("fix", "--no-deps", "--jobs=1", "--file-timeout=0.3", str(slow), str(good))
    assert code == 2
    assert f"{slow}: error: time budget of 0.3 s exceeded; file skipped" in err
    assert slow.read_text() == slow_model(300)  # untouched
    assert "from adopter_kernels import softmax" in good.read_text()  # the other file was fixed


@needs_timer
def test_budget_in_the_pre_commit_hook_and_from_the_config(tmp_path):
    (tmp_path / "pyproject.toml").write_text('[tool.adopter]\nfile-timeout = 0.2\nselect = ["ADP004"]\n')
    slow = tmp_path / "slow.py"
    slow.write_text(slow_model(300))
    code, _, err = run_here(str(slow), entry=hook_fix)
    assert code == 2 and "time budget of 0.2 s exceeded" in err
    assert slow.read_text() == slow_model(300)
    slow.write_text(slow_model(1500))  # the check path is faster: a larger file
    code, _, err = run_here("check", str(slow))
    assert code == 2 and "time budget of 0.2 s exceeded" in err
    code, out, err = run_here("check", "--file-timeout=0", str(slow))  # 0: no limit; the flag beats the config
    assert code == 1 and out.count("ADP004") == 3000


def test_budget_in_worker_processes(tmp_path):
    slow = tmp_path / "slow.py"
    slow.write_text(slow_model(300))
    for i in range(9):  # enough files for the process pool
        (tmp_path / f"good{i}.py").write_text(MODEL)
    code, _, err = run_here("fix", "--no-deps", "--jobs=2", "--file-timeout=0.3", str(tmp_path))
    assert code == 2
    assert "slow.py: error: time budget of 0.3 s exceeded" in err
    assert slow.read_text() == slow_model(300)
    for i in range(9):
        assert "from adopter_kernels import softmax" in (tmp_path / f"good{i}.py").read_text()
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]
