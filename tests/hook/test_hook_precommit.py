"""The hooks under real pre-commit and real git, in temp repositories that have never seen Adopter.

The hook repository is a copy of this checkout's working tree (what is on disk, tracked or not,
less what .gitignore ignores) committed into a temp git repository, so the tests exercise
uncommitted work too.  pre-commit builds the hook's virtualenv from it (pip, from the package
indexes) once per test session in a shared PRE_COMMIT_HOME.  ``pre-commit try-repo`` always
builds its own throw-away environment (about 20 s of CPU each), so only two tests use it: the
report and the fix, each the way the issue and docs/pre-commit.md show; the other cases run
the same hooks through ``pre-commit run`` on the shared environment.

xdist: both workers share one hook repo and one PRE_COMMIT_HOME, built under a file lock in the
session's common temp folder; pre-commit itself locks its store while installing.
"""

from __future__ import annotations

import re

import yaml

from precommit_env import (BROKEN, CLEAN, DOC, DROPOUT_LINE, MODEL, SOFTMAX_LINE, _comments, _doc_configs,
                            _finding_lines, _git, _pin, _pre_commit, _run, _try_repo)


# --------------------------------------------------------------------------- try-repo

def test_try_repo_reports_findings_and_fails(hook_repo, project):
    (project / "model.py").write_text(MODEL)
    proc = _try_repo(project, hook_repo, "adopter", "model.py")
    assert proc.returncode == 1, proc.stdout
    assert "Failed" in proc.stdout and "- exit code: 1" in proc.stdout
    # softmax (ADP004) is off by default; ADP005 (CUDA only) is shown as information, not counted
    assert _finding_lines(proc.stdout) == [
        "model.py:19:26: ADP005 dropout-add-layernorm: dropout -> residual add -> LayerNorm can be fused "
        "(adopter_kernels.dropout_add_layer_norm) [info: off by default until measured to pay here "
        "(benchmarks/rules.py): on with --target cuda or --select ADP005]",
        "model.py:24:12: ADP012 fused-optimizer: optimizer can use its fused implementation (fused=True, torch>=2.4) "
        "(fix: adopter-fix)",
    ]
    assert (project / "model.py").read_text() == MODEL  # the reporting hook writes nothing


def test_try_repo_fix_rewrites_into_compiling_code_that_keeps_its_comments(hook_repo, installed, project):
    (project / "model.py").write_text(MODEL)
    _git(project, "add", "model.py")  # staged, as in a commit: pre-commit then sees the rewrite
    proc = _try_repo(project, hook_repo, "adopter-fix", "model.py")
    assert proc.returncode == 1, proc.stdout
    assert "files were modified by this hook" in proc.stdout
    fixed = (project / "model.py").read_text()
    assert fixed != MODEL
    compile(fixed, "model.py", "exec")
    assert _comments(fixed) == _comments(MODEL)
    assert '"""A tiny encoder block' in fixed
    assert "fused=True" in fixed
    # nothing left for the reporting hook to find
    proc = _run(project, installed, "adopter", "--files", "model.py", hooks=({"id": "adopter"},))
    assert proc.returncode == 0, proc.stdout


# --------------------------------------------------------------------------- pre-commit run

def test_a_file_without_opportunities_passes(installed, project):
    (project / "clean.py").write_text(CLEAN)
    proc = _run(project, installed, "--files", "clean.py", hooks=({"id": "adopter"},))
    assert proc.returncode == 0, proc.stdout
    assert "Passed" in proc.stdout and not _finding_lines(proc.stdout)


def test_a_syntax_error_is_reported_clearly(installed, project):
    (project / "model.py").write_text(BROKEN)
    proc = _run(project, installed, "--files", "model.py", hooks=({"id": "adopter"},))
    assert proc.returncode == 1, proc.stdout
    assert "- exit code: 2" in proc.stdout
    assert re.search(r"^model\.py: error: syntax error at 4:\d+: .+$", proc.stdout, flags=re.M), proc.stdout
    assert "Traceback" not in proc.stdout


def test_suppression_comments_silence_findings(installed, project):
    both = ({"id": "adopter", "args": ["--select=ADP004,ADP005"]},)  # ADP004 is off by default
    text = MODEL.replace(DROPOUT_LINE, DROPOUT_LINE + "  # adopter: ignore[ADP005]")
    (project / "model.py").write_text(text)
    proc = _run(project, installed, "--files", "model.py", hooks=both)
    assert proc.returncode == 1, proc.stdout
    assert [line.split(": ")[1] for line in _finding_lines(proc.stdout)] == ["ADP004 softmax"]

    text = text.replace(SOFTMAX_LINE, SOFTMAX_LINE + "  # adopter: ignore")
    (project / "model.py").write_text(text)
    proc = _run(project, installed, "--files", "model.py", hooks=both)
    assert proc.returncode == 0, proc.stdout


def test_select_from_args_in_the_users_config(installed, project):
    (project / "model.py").write_text(MODEL)
    proc = _run(project, installed, "--files", "model.py", hooks=({"id": "adopter", "args": ["--select=ADP005"]},))
    assert proc.returncode == 1, proc.stdout
    assert [line.split(": ")[1] for line in _finding_lines(proc.stdout)] == ["ADP005 dropout-add-layernorm"]

    proc = _run(project, installed, "--files", "model.py",
                hooks=({"id": "adopter", "args": ["--select=ADP004,ADP005", "--ignore=ADP004,ADP005"]},))
    assert proc.returncode == 0, proc.stdout


def test_tool_adopter_config_is_honoured(installed, project):
    (project / "pyproject.toml").write_text('[tool.adopter]\nignore = ["ADP004"]\nexclude = ["legacy/*"]\n')
    (project / "model.py").write_text(MODEL)
    (project / "legacy").mkdir()
    (project / "legacy" / "old.py").write_text(MODEL)
    proc = _run(project, installed, "--files", "model.py", "legacy/old.py", hooks=({"id": "adopter"},))
    assert proc.returncode == 1, proc.stdout
    assert [line.split(": ")[:2] for line in _finding_lines(proc.stdout)] == [
        ["model.py:19:26", "ADP005 dropout-add-layernorm"], ["model.py:24:12", "ADP012 fused-optimizer"]]


def test_parallel_batches_report_every_file(installed, project):
    names = [f"model_{i:02d}.py" for i in range(40)]
    for name in names:
        (project / name).write_text(MODEL)
    (project / "broken.py").write_text(BROKEN)
    proc = _run(project, installed, "--files", *names, "broken.py", hooks=({"id": "adopter"},))
    assert proc.returncode == 1, proc.stdout
    found = sorted(line.split(":")[0] + " " + line.split(": ")[1] for line in _finding_lines(proc.stdout))
    assert found == sorted([f"{n} ADP012 fused-optimizer" for n in names]
                           + [f"{n} ADP005 dropout-add-layernorm" for n in names])  # the latter informational
    assert "broken.py: error: syntax error" in proc.stdout


def test_parallel_batches_fix_every_file(installed, project):
    names = [f"model_{i:02d}.py" for i in range(40)]
    for name in names:
        (project / name).write_text(MODEL)
    _git(project, "add", *names)
    proc = _run(project, installed, "--files", *names, hooks=({"id": "adopter-fix"},))
    assert proc.returncode == 1, proc.stdout
    assert "files were modified by this hook" in proc.stdout
    texts = {(project / n).read_text() for n in names}
    assert len(texts) == 1 and MODEL not in texts
    compile(texts.pop(), "model.py", "exec")


# --------------------------------------------------------------------------- the documented snippet

def test_documented_configs_are_valid(hook_repo, project):
    configs = _doc_configs()
    assert configs, f"no ```yaml block with `repos:` in {DOC}"
    for index, snippet in enumerate(configs):
        config = project / f"config-{index}.yaml"
        config.write_text(_pin(snippet, hook_repo))
        proc = _pre_commit(project, hook_repo.home, "validate-config", str(config))
        assert proc.returncode == 0, f"{snippet}\n{proc.stdout}"


def test_documented_snippet_runs_on_all_files(installed, project):
    snippet = _doc_configs()[0]  # the one README.md shows
    (project / ".pre-commit-config.yaml").write_text(_pin(snippet, installed))
    (project / "model.py").write_text(MODEL)
    (project / "clean.py").write_text(CLEAN)
    _git(project, "add", ".")
    proc = _run(project, installed, "--all-files")
    assert proc.returncode == 1, proc.stdout
    assert [line.split(": ")[:2] for line in _finding_lines(proc.stdout)] == [
        ["model.py:19:26", "ADP005 dropout-add-layernorm"], ["model.py:24:12", "ADP012 fused-optimizer"]]

    (project / "model.py").unlink()
    _git(project, "add", "-A")
    proc = _run(project, installed, "--all-files")
    assert proc.returncode == 0, proc.stdout


def test_documented_fix_config_rewrites_then_reports_nothing(installed, project):
    configs = [c for c in _doc_configs() if "adopter-fix" in yaml.safe_dump(yaml.safe_load(c))]
    assert configs, "docs/pre-commit.md shows no config enabling adopter-fix"
    (project / ".pre-commit-config.yaml").write_text(_pin(configs[0], installed))
    (project / "model.py").write_text(MODEL)
    _git(project, "add", ".")
    proc = _run(project, installed, "--all-files")
    assert proc.returncode == 1, proc.stdout
    assert "files were modified by this hook" in proc.stdout
    assert not _finding_lines(proc.stdout), proc.stdout
    compile((project / "model.py").read_text(), "model.py", "exec")
