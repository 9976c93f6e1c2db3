"""Hostile input through the real CLI: one clear line per bad file, exit 2, never a traceback,
the good files still checked and fixed, and every file left as it was unless it was fixed."""

from __future__ import annotations

import contextlib
import io
import os
import stat
import subprocess
import sys
import textwrap

import pytest

from adopter.cli import main

MODEL = textwrap.dedent("""\
    import torch.nn.functional as F
    from torch import nn


    class Head(nn.Module):
        def forward(self, h):
            return F.softmax(h, dim=-1)
""")


def _softmax(args) -> list:
    """The model's finding is a softmax (ADP004), a rule that is off by default: select it."""
    args = list(args)
    return [args[0], "--select=ADP004", *args[1:]] if args[:1] in (["check"], ["fix"]) else args


def run(*args, cwd=None):
    """The CLI in a subprocess: what a user sees, tracebacks included."""
    proc = subprocess.run([sys.executable, "-m", "adopter.cli", *_softmax(args)], capture_output=True, text=True,
                          cwd=cwd)
    return proc.returncode, proc.stdout, proc.stderr


def run_here(*args):
    """The CLI in this process (an escaping exception fails the test just as a traceback would)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(_softmax(args))
    return code, out.getvalue(), err.getvalue()


def one_error_line(err: str, name: str) -> str:
    lines = [line for line in err.splitlines() if name in line and ": error: " in line]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0].split(": error: ", 1)[1]


BAD = {
    "syntax.py": (b"def f(:\n    pass\n", "syntax error at 1:7"),
    "undecodable.py": (b"x = '\xff\xfe'\n", "cannot determine the encoding"),
    "latin_cookie_bad.py": (b"# -*- coding: ascii -*-\nx = '\xe9'\n", "cannot decode as ascii"),
    "nul.py": (b"x = 1\x00\n", "NUL bytes"),
    "parens.py": (b"x = " + b"(" * 300 + b"1" + b")" * 300 + b"\n", "too many nested parentheses"),
    "unary.py": (b"x = " + b"-" * 200_000 + b"1\n", "too deep"),
    "chain.py": (b"x = " + b"1+" * 200_000 + b"1\n", "too deep"),
    "huge.py": (b"x = 1\n" * (10 * 1024 * 1024 // 6), "too large"),  # 10 MB
    "tabs_mixed.py": (b"if x:\n        a = 1\n\tb = 2\n", "syntax error"),
}


@pytest.fixture
def tree(tmp_path):
    (tmp_path / "model.py").write_text(MODEL)
    for name, (data, _) in BAD.items():
        (tmp_path / name).write_bytes(data)
    os.symlink("loop_b.py", tmp_path / "loop_a.py")
    os.symlink("loop_a.py", tmp_path / "loop_b.py")
    os.mkfifo(tmp_path / "fifo.py")
    os.symlink(tmp_path, tmp_path / "cycle")  # a folder that contains itself
    return tmp_path


def _files(tree):
    return {p.name: p.read_bytes() for p in tree.iterdir() if p.is_file() and not p.is_symlink()
            and stat.S_ISREG(p.stat().st_mode)}


@pytest.mark.parametrize("command", ["check", "fix"])
def test_each_bad_file_is_one_line_and_the_good_one_is_still_done(tree, command):
    before = _files(tree)
    code, out, err = run(command, "--no-deps" if command == "fix" else "--no-config", str(tree), cwd=tree)
    assert code == 2
    for name, (_, reason) in BAD.items():
        assert reason in one_error_line(err, name), name
    assert "symlink loop" in one_error_line(err, "loop_a.py")
    assert "symlink loop" in one_error_line(err, "loop_b.py")
    assert "not a regular file" in one_error_line(err, "fifo.py")
    after = _files(tree)
    for name in BAD:
        assert after[name] == before[name], f"{name} was modified"
    if command == "check":
        assert "model.py:7:16: ADP004" in out
        assert after["model.py"] == before["model.py"]
    else:
        assert "model.py: fixed 1 (ADP004)" in err
        assert b"softmax(h, dim=-1)" in after["model.py"] and b"from adopter_kernels import softmax" in after["model.py"]
    assert len(err.splitlines()) < 20  # one line per problem, no dumps
    assert "cycle" not in out + err  # the folder cycle is not walked


def test_single_bad_file_exits_2_with_one_line(tmp_path):
    path = tmp_path / "broken.py"
    path.write_bytes(b"class A(:\n")
    for command in ("check", "fix"):
        code, out, err = run_here(command, str(path))
        assert code == 2 and out == ""
        assert err.strip().count("\n") == 0 and err.startswith(f"{path}: error: syntax error at 1:9")


def test_deeply_nested_code_that_parses_is_handled(tmp_path):
    depth = 150  # below the parser's own limit of 200 nested brackets
    path = tmp_path / "nested.py"
    path.write_text(MODEL.replace("F.softmax(h, dim=-1)", "F.softmax(" + "[" * depth + "h" + "]" * depth + ", dim=-1)"))
    code, _, err = run_here("check", str(path))
    assert code == 1 and "Traceback" not in err
    before = path.read_bytes()
    code, _, err = run_here("fix", "--no-deps", str(path))
    assert "Traceback" not in err and "RecursionError" not in err
    after = path.read_bytes()
    compile(after, str(path), "exec")
    if after == before:
        assert code == 0 and "not fixed" in err
    else:
        assert code == 1 and run_here("fix", "--no-deps", str(path))[0] == 0


def test_bom_crlf_tabs_latin1_are_fixed_and_kept(tmp_path):
    cases = {
        "bom.py": b"\xef\xbb\xbf" + MODEL.encode(),
        "crlf.py": MODEL.replace("\n", "\r\n").encode(),
        "cr.py": MODEL.replace("\n", "\r").encode(),
        "tabs.py": MODEL.replace("    ", "\t").encode(),
        "latin1.py": ("# -*- coding: latin-1 -*-\n# caf\xe9\n" + MODEL).encode("latin-1"),
        "no_newline_at_end.py": MODEL.rstrip("\n").encode(),
    }
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
    code, _, err = run_here("fix", "--no-deps", str(tmp_path))
    assert code == 1, err
    for name, data in cases.items():
        new = (tmp_path / name).read_bytes()
        assert new != data and b"from adopter_kernels import softmax" in new, name
        compile(new, name, "exec")
    files = {name: (tmp_path / name).read_bytes() for name in cases}
    assert files["bom.py"].startswith(b"\xef\xbb\xbf") and files["bom.py"].count(b"\xef\xbb\xbf") == 1
    # 7 lines: the fix adds the kernel import and removes `import torch.nn.functional as F`,
    # which the rewrite left unused.
    assert b"\n" not in files["crlf.py"].replace(b"\r\n", b"") and files["crlf.py"].count(b"\r\n") >= 7
    assert b"\n" not in files["cr.py"] and files["cr.py"].count(b"\r") >= 7
    assert b"\treturn softmax(h, dim=-1)" in files["tabs.py"].replace(b"\t\t", b"\t")
    assert b"caf\xe9" in files["latin1.py"]
    assert not files["no_newline_at_end.py"].endswith(b"\n")
    assert run_here("fix", "--no-deps", str(tmp_path)) [0] == 0  # a second fix changes nothing


def test_mixed_line_endings_keep_each_line_s_own(tmp_path):
    lines = MODEL.splitlines()
    data = "".join(line + ("\r\n" if i % 2 else "\n") for i, line in enumerate(lines)).encode()
    path = tmp_path / "mixed.py"
    path.write_bytes(data)
    assert run_here("fix", "--no-deps", str(path))[0] == 1
    new = path.read_bytes()
    # The softmax line is rewritten and `import torch.nn.functional as F`, left unused, removed.
    kept = [line for line in data.splitlines(keepends=True) if b"softmax" not in line and b" as F" not in line]
    assert b" as F" not in new
    new_lines = new.splitlines(keepends=True)
    for line in kept:
        assert line in new_lines, line  # untouched lines keep their own ending
    assert run_here("fix", "--no-deps", str(path))[0] == 0


def test_read_only_file_is_reported_and_untouched(tmp_path):
    path = tmp_path / "model.py"
    path.write_text(MODEL)
    path.chmod(0o444)
    code, _, err = run_here("fix", "--no-deps", str(path))
    assert code == 2
    assert "read-only" in one_error_line(err, "model.py")
    assert path.read_text() == MODEL and stat.S_IMODE(path.stat().st_mode) == 0o444


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_file(tmp_path):
    path = tmp_path / "model.py"
    path.write_text(MODEL)
    path.chmod(0)
    code, _, err = run_here("check", str(path))
    assert code == 2 and "permission denied" in one_error_line(err, "model.py")


def test_fix_keeps_mode_and_symlink(tmp_path):
    real = tmp_path / "real.py"
    real.write_text(MODEL)
    real.chmod(0o750)
    link = tmp_path / "sub"
    link.mkdir()
    (link / "alias.py").symlink_to(real)
    code, _, err = run_here("fix", "--no-deps", str(link / "alias.py"))
    assert code == 1, err
    assert (link / "alias.py").is_symlink()
    assert "from adopter_kernels import softmax" in real.read_text()
    assert stat.S_IMODE(real.stat().st_mode) == 0o750
    leftovers = [p.name for p in [*tmp_path.iterdir(), *link.iterdir()] if "adopter" in p.name]
    assert leftovers == []


def test_file_budget_from_config_and_flag_is_validated(tmp_path):
    (tmp_path / "pyproject.toml").write_text('[tool.adopter]\nfile-timeout = "soon"\n')
    (tmp_path / "model.py").write_text(MODEL)
    code, _, err = run_here("check", str(tmp_path / "model.py"))
    assert code == 2 and "file-timeout" in err and "Traceback" not in err
    err = io.StringIO()
    with contextlib.redirect_stderr(err), pytest.raises(SystemExit) as exit_:
        main(["check", "--file-timeout", "-3", str(tmp_path / "model.py")])
    assert exit_.value.code == 2 and "file-timeout must be a number of seconds >= 0" in err.getvalue()
