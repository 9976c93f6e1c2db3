"""Which files a run looks at: a user's project with a gitignored virtualenv, real git, real files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
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


def git(cwd: Path, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(GIT_CONFIG_GLOBAL=os.devnull, GIT_CONFIG_NOSYSTEM="1")
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout


@pytest.fixture
def project(tmp_path, monkeypatch) -> Path:
    """A project as a user has it: git, a .gitignore'd venv with installed packages, code."""
    root = tmp_path / "proj"
    (root / "src" / "pkg").mkdir(parents=True)
    (root / "src" / "pkg" / "model.py").write_text(MODEL)
    site = root / "venv" / "lib" / "python3.11" / "site-packages" / "thirdparty"
    site.mkdir(parents=True)
    (root / "venv" / "pyvenv.cfg").write_text("home = /usr/bin\n")
    (site / "modeling.py").write_text(MODEL)
    (root / ".gitignore").write_text("venv/\nbuild/\n*.generated.py\n!keep.generated.py\n")
    (root / "build").mkdir()
    (root / "build" / "copy.py").write_text(MODEL)
    (root / "src" / "pkg" / "x.generated.py").write_text(MODEL)
    (root / "src" / "pkg" / "keep.generated.py").write_text(MODEL)
    git(root, "init", "-q")
    monkeypatch.chdir(root)
    return root


def paths_reported(capsys, *args) -> tuple[int, set[str]]:
    code = main(["check", *CUDA, "--output-format", "json", *args])
    data = json.loads(capsys.readouterr().out)
    return code, {item["path"] for item in data}


def test_check_dot_never_looks_into_a_gitignored_venv(project, capsys):
    code, paths = paths_reported(capsys)  # the default path is "."
    assert code == 1
    assert paths == {"src/pkg/model.py", "src/pkg/keep.generated.py"}


def test_fix_dot_never_rewrites_installed_packages(project, capsys):
    installed = project / "venv" / "lib" / "python3.11" / "site-packages" / "thirdparty" / "modeling.py"
    assert main(["fix", *CUDA, "--no-deps", "."]) == 1
    assert installed.read_text() == MODEL
    assert (project / "build" / "copy.py").read_text() == MODEL
    assert (project / "src" / "pkg" / "model.py").read_text() != MODEL


def test_an_environment_is_skipped_by_its_contents_whatever_its_name(project, capsys):
    env = project / "my-env"
    (env / "lib").mkdir(parents=True)
    (env / "pyvenv.cfg").write_text("home = /usr/bin\n")
    (env / "lib" / "m.py").write_text(MODEL)
    conda = project / "tools" / "conda"
    (conda / "conda-meta").mkdir(parents=True)
    (conda / "m.py").write_text(MODEL)
    _, paths = paths_reported(capsys, "--no-respect-gitignore")
    assert not any(p.startswith(("my-env", "tools/conda")) for p in paths)
    # without gitignore the build/ copy and the generated file are analysed again
    assert {"build/copy.py", "src/pkg/x.generated.py"} <= paths


def test_gitignore_of_the_repository_applies_below_a_subfolder_and_nested_files(project, capsys):
    (project / "src" / "pkg" / ".gitignore").write_text("model.py\n")
    _, paths = paths_reported(capsys, "src")
    assert paths == {"src/pkg/keep.generated.py"}
    (project / ".git" / "info" / "exclude").write_text("pkg/\n")
    code = main(["check", *CUDA, "src"])
    err = capsys.readouterr().err
    assert code == 2 and "src: error: nothing to analyse:" in err and "excluded by exclude patterns or .gitignore" in err


def test_the_files_walked_are_the_ones_git_does_not_ignore(project, capsys):
    """Git's own answer (ls-files --others --exclude-standard) on a tree with negations,
    anchored and nested patterns, against what `check .` analyses."""
    for name in ("a/b/deep.py", "a/skip/x.py", "a/skip/keep.py", "top.py", "a/top.py", "logs/run.py", "c/d/e.py"):
        (project / name).parent.mkdir(parents=True, exist_ok=True)
        (project / name).write_text(MODEL)
    (project / "a" / ".gitignore").write_text("skip/*\n!skip/keep.py\n/top.py\n")
    (project / "c" / ".gitignore").write_text("*\n!*/\n!e.py\n")
    (project / ".git" / "info" / "exclude").write_text("logs/\n")
    listed = git(project, "ls-files", "--others", "--exclude-standard", "-z")
    expected = {n for n in listed.split("\0") if n.endswith(".py")}
    _, paths = paths_reported(capsys)
    assert paths == expected
    assert "a/skip/keep.py" in paths and "c/d/e.py" in paths and "a/top.py" not in paths


def test_a_file_named_explicitly_is_analysed_unless_force_exclude(project, capsys):
    (project / "pyproject.toml").write_text('[tool.adopter]\nexclude = ["legacy/"]\n')
    (project / "legacy").mkdir()
    (project / "legacy" / "old.py").write_text(MODEL)
    _, paths = paths_reported(capsys, "legacy/old.py")
    assert paths == {"legacy/old.py"}
    assert main(["check", *CUDA, "--force-exclude", "legacy/old.py"]) == 0
    _, paths = paths_reported(capsys, "--force-exclude", "legacy/old.py", "src/pkg/model.py")
    assert paths == {"src/pkg/model.py"}
    assert main(["check", *CUDA, "--force-exclude", "venv/lib/python3.11/site-packages/thirdparty/modeling.py"]) == 0


def test_a_folder_named_explicitly_inside_an_ignored_one_is_walked(project, capsys):
    _, paths = paths_reported(capsys, "venv/lib/python3.11/site-packages/thirdparty")
    assert paths == {"venv/lib/python3.11/site-packages/thirdparty/modeling.py"}


def test_a_non_python_file_named_explicitly_is_an_error_not_clean(project, capsys):
    (project / "README.md").write_text("# not code\n")
    (project / "data.json").write_text("{}\n")
    code = main(["check", *CUDA, "README.md", "data.json"])
    err = capsys.readouterr().err
    assert code == 2
    assert "README.md: error: not a Python file" in err and "data.json: error: not a Python file" in err
    # an extensionless script is Python when its #! line says so
    (project / "tool").write_text("#!/usr/bin/env python3\n" + MODEL)
    assert main(["check", *CUDA, "tool"]) == 1


def test_walks_without_git_use_the_gitignore_files_they_find(tmp_path, monkeypatch, capsys):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "m.py").write_text(MODEL)
    (tmp_path / "a" / ".gitignore").write_text("m.py\n")
    (tmp_path / "b.py").write_text(MODEL)
    monkeypatch.chdir(tmp_path)
    _, paths = paths_reported(capsys)
    assert paths == {"b.py"}


def test_unknown_config_key_is_rejected_with_the_key_and_a_suggestion(project):
    (project / "pyproject.toml").write_text('[tool.adopter]\nselct = ["ADP004"]\n')
    proc = subprocess.run([sys.executable, "-m", "adopter.cli", "check", *CUDA, "."], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "unknown key 'selct' in [tool.adopter]; did you mean 'select'?" in proc.stderr
    assert "Traceback" not in proc.stderr
    (project / "pyproject.toml").write_text('[tool.adopter]\nrespect-gitignore = "no"\n')
    proc = subprocess.run([sys.executable, "-m", "adopter.cli", "check", *CUDA, "."], capture_output=True, text=True)
    assert proc.returncode == 2 and "respect-gitignore must be true or false" in proc.stderr
    (project / "pyproject.toml").write_text('[tool.adopter]\nrespect-gitignore = false\n')
    proc = subprocess.run([sys.executable, "-m", "adopter.cli", "check", *CUDA, "--output-format", "json", "."],
                          capture_output=True, text=True)
    assert "build/copy.py" in {d["path"] for d in json.loads(proc.stdout)}


def test_a_broken_pyproject_is_an_error_only_when_it_can_hold_the_adopter_table(project):
    # another tool's broken table is that tool's business: its file is not even parsed (the
    # TOML parser's imports were a twentieth of a one-file check); a broken file that mentions
    # adopter is reported, with where
    (project / "pyproject.toml").write_text('[tool.black]\nline-length = = 88\n')
    proc = subprocess.run([sys.executable, "-m", "adopter.cli", "check", *CUDA, "."], capture_output=True, text=True)
    assert proc.returncode == 1 and "ADP005" in proc.stdout, proc.stderr
    (project / "pyproject.toml").write_text('[tool.adopter]\nselect = = ["ADP005"]\n')
    proc = subprocess.run([sys.executable, "-m", "adopter.cli", "check", *CUDA, "."], capture_output=True, text=True)
    assert proc.returncode == 2 and "pyproject.toml" in proc.stderr and "line 2" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("text", [
    '[tool.adopter]\nselect = ["ADP005"]\n',
    '[ tool . "adopter" ]\nselect = ["ADP005"]\n',
    '[project]\nname = "x"\n[tool]\nadopter = { select = ["ADP005"] }\n',
    '[tool]\nadopter.select = ["ADP005"]\n',
    'tool.adopter.select = ["ADP005"]\n[project]\nname = "x"\n',
    'tool = { adopter = { select = ["ADP005"] } }\n',
    "[project.scripts]\nadopter = 'adopter.process:adopter'\n[tool.adopter]\nselect = ['ADP005']\n",
])
def test_every_spelling_of_the_adopter_table_is_read(tmp_path, text):
    from adopter.config import find_config

    (tmp_path / "pyproject.toml").write_text(text)
    assert find_config(tmp_path).select == ("ADP005",)


def test_a_pyproject_that_names_adopter_only_outside_a_table_header_is_not_parsed(tmp_path):
    # the tool as a dependency or a script's name, and a broken line another tool owns: no
    # [tool.adopter] table can be there, so the file is not parsed (no TOML error either)
    from adopter.config import find_config

    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "adopter"\ndependencies = ["adopter>=0.1"]\n'
        '[project.scripts]\nadopter = "adopter.process:adopter"\n[tool.black]\nline-length = = 88\n')
    assert find_config(tmp_path).select == ()
    # the same file with the table: parsed, and its error reported
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "pyproject.toml").write_text(
        '[project]\nname = "adopter"\n[tool.adopter]\nselect = ["ADP005"]\n[tool.black]\nline-length = = 88\n')
    from adopter.config import ConfigError

    with pytest.raises(ConfigError, match="line 6"):
        find_config(tmp_path / "b")
