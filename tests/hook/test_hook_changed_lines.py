"""The `adopter` hook on real commits: `pre-commit install` in a fresh repository, then `git
commit`.  By default it reports only the findings whose lines the commit changes, so an old
opportunity does not fail every later commit that touches its file; `--whole-file` brings
back the whole-file report; `--exit-zero` with `verbose: true` only warns; a file whose name
starts with `-` is a file.  (The model's softmax is ADP004, off by default: the hooks select it.)"""

from __future__ import annotations

import subprocess

import pytest

from precommit_env import MODEL, SOFTMAX_LINE, TIMEOUT, _clean_env, _finding_lines, _git, _pre_commit

BOTH = "--select=ADP004,ADP005"

NEW_HELPER = '''

def helper(x):
    return x + 1  # nothing to fuse
'''


def commit(project, repo, message: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", "commit", "-m", message], cwd=project, env=_clean_env(repo.home),
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=TIMEOUT)


@pytest.fixture
def hooked(installed, project):
    """A project whose history already holds model.py with its two opportunities (committed
    before the hook was installed), with the hook installed as a git pre-commit hook."""
    (project / "model.py").write_text(MODEL)
    _git(project, "add", "model.py")
    _git(project, "commit", "-q", "--no-verify", "-m", "the model, before adopter")

    def install(*hooks: dict):
        (project / ".pre-commit-config.yaml").write_text(installed.config(*hooks))
        _git(project, "add", ".pre-commit-config.yaml")
        proc = _pre_commit(project, installed.home, "install")
        assert proc.returncode == 0, proc.stdout

    return project, installed, install


def test_an_old_opportunity_does_not_fail_a_commit_that_does_not_touch_it(hooked):
    project, repo, install = hooked
    install({"id": "adopter", "args": [BOTH]})
    (project / "model.py").write_text(MODEL + NEW_HELPER)
    _git(project, "add", "model.py")
    proc = commit(project, repo, "add a helper")
    assert proc.returncode == 0, proc.stdout
    assert "adopter (find optimized-kernel opportunities)" in proc.stdout and "Passed" in proc.stdout


def test_a_commit_that_touches_an_opportunity_is_told_about_that_one_only(hooked):
    project, repo, install = hooked
    install({"id": "adopter", "args": [BOTH]})
    changed = MODEL.replace(SOFTMAX_LINE, SOFTMAX_LINE.replace("(x,", "(x * 2,"))
    (project / "model.py").write_text(changed)
    _git(project, "add", "model.py")
    proc = commit(project, repo, "scale the scores")
    assert proc.returncode == 1, proc.stdout
    assert [line.split(": ")[1] for line in _finding_lines(proc.stdout)] == ["ADP004 softmax"]
    assert "model.py:16:17: ADP004" in proc.stdout


def test_deleting_a_line_inside_an_opportunity_counts_as_touching_it(hooked):
    project, repo, install = hooked
    install({"id": "adopter", "args": [BOTH]})
    lines = MODEL.splitlines(keepends=True)
    del lines[17]  # "# dropout -> residual add -> LayerNorm", between the two findings
    (project / "model.py").write_text("".join(lines))
    _git(project, "add", "model.py")
    proc = commit(project, repo, "drop a comment")
    assert proc.returncode == 1, proc.stdout
    assert [line.split(": ")[1] for line in _finding_lines(proc.stdout)] == ["ADP005 dropout-add-layernorm"]


def test_whole_file_reports_every_finding_of_a_touched_file(hooked):
    project, repo, install = hooked
    install({"id": "adopter", "args": [BOTH, "--whole-file"]})
    (project / "model.py").write_text(MODEL + NEW_HELPER)
    _git(project, "add", "model.py")
    proc = commit(project, repo, "add a helper")
    assert proc.returncode == 1, proc.stdout
    assert [line.split(": ")[1] for line in _finding_lines(proc.stdout)] == [
        "ADP004 softmax", "ADP005 dropout-add-layernorm"]


def test_a_new_file_is_reported_whole_and_warn_only_lets_the_commit_through(hooked):
    project, repo, install = hooked
    install({"id": "adopter", "args": [BOTH, "--exit-zero"], "verbose": True})
    (project / "other.py").write_text(MODEL)
    _git(project, "add", "other.py")
    proc = commit(project, repo, "a second model")
    assert proc.returncode == 0, proc.stdout
    assert [line.split(": ")[:2] for line in _finding_lines(proc.stdout)] == [
        ["other.py:16:17", "ADP004 softmax"], ["other.py:19:26", "ADP005 dropout-add-layernorm"]]
    assert "Found 2 opportunities" in proc.stdout
    assert "a second model" in _git(project, "log", "-1", "--format=%s")


def test_a_staged_file_named_like_an_option_is_a_file(hooked):
    project, repo, install = hooked
    install({"id": "adopter", "args": ["--select=ADP004"]})
    for name in ("-x.py", "--whole-file.py"):
        (project / name).write_text(MODEL)
    _git(project, "add", "--", "-x.py", "--whole-file.py")
    proc = commit(project, repo, "odd names")
    assert proc.returncode == 1, proc.stdout
    assert sorted(line.split(": ")[:2] for line in _finding_lines(proc.stdout)) == [
        ["--whole-file.py:16:17", "ADP004 softmax"], ["-x.py:16:17", "ADP004 softmax"]]
    assert "unrecognized arguments" not in proc.stdout


def test_pre_push_ranges_come_from_pre_commit(hooked):
    """`pre-commit run --from-ref A --to-ref B` (what the pre-push stage does) reports what
    changed between the two commits."""
    project, repo, install = hooked
    install({"id": "adopter", "args": [BOTH]})
    first = _git(project, "rev-parse", "HEAD")
    changed = MODEL.replace(SOFTMAX_LINE, SOFTMAX_LINE.replace("(x,", "(x * 2,"))
    (project / "model.py").write_text(changed)
    _git(project, "commit", "-q", "--no-verify", "-am", "touch the softmax")
    second = _git(project, "rev-parse", "HEAD")
    proc = _pre_commit(project, repo.home, "run", "--color=never", "adopter", "--from-ref", first, "--to-ref", second)
    assert proc.returncode == 1, proc.stdout
    assert [line.split(": ")[1] for line in _finding_lines(proc.stdout)] == ["ADP004 softmax"]
    proc = _pre_commit(project, repo.home, "run", "--color=never", "adopter", "--from-ref", second, "--to-ref", second)
    assert proc.returncode == 0, proc.stdout
