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

import io
import json
import os
import re
import shutil
import subprocess
import sys
import tokenize
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from filelock import FileLock

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "pre-commit.md"
TIMEOUT = 600

MODEL = (Path(__file__).parent / "fixtures" / "block.py").read_text()  # shared by both hook test files
SOFTMAX_LINE = 'probs = torch.nn.functional.softmax(x, dim=-1)'
DROPOUT_LINE = 'return self.norm(self.dropout(h) + residual)  # keep me'

CLEAN = '''\
import torch


def scale(x):
    return torch.relu(x) * 2  # nothing to fuse here
'''

BROKEN = '''\
import torch.nn.functional as F


def attend(scores:
    return F.softmax(scores, dim=-1)
'''

_IGNORED_TOP = {".git", ".venv", ".bench", ".pytest_cache", ".hypothesis", "build", "dist"}


# --------------------------------------------------------------------------- helpers

def _clean_env(home: Path | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GIT_", "PRE_COMMIT"))}
    env.update(GIT_CONFIG_GLOBAL=os.devnull, GIT_CONFIG_NOSYSTEM="1", PRE_COMMIT_COLOR="never",
               GIT_AUTHOR_NAME="Test", GIT_AUTHOR_EMAIL="test@example.com",
               GIT_COMMITTER_NAME="Test", GIT_COMMITTER_EMAIL="test@example.com")
    if home is not None:
        env["PRE_COMMIT_HOME"] = str(home)
    return env


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, env=_clean_env(), check=True, capture_output=True,
                          text=True, timeout=TIMEOUT).stdout.strip()


def _git_init(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    _git(path, "init", "-q")
    _git(path, "config", "user.name", "Test")
    _git(path, "config", "user.email", "test@example.com")
    _git(path, "config", "commit.gpgsign", "false")
    return path


def _working_tree_files() -> list[str]:
    try:
        out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                             cwd=ROOT, env=_clean_env(), check=True, capture_output=True,
                             timeout=TIMEOUT).stdout
        names = [n.decode() for n in out.split(b"\0") if n]
    except (OSError, subprocess.CalledProcessError):  # not a git checkout (an unpacked sdist)
        names = [str(p.relative_to(ROOT)) for p in ROOT.rglob("*") if p.is_file() or p.is_symlink()]
    keep = []
    for name in names:
        parts = Path(name).parts
        if parts[0] in _IGNORED_TOP or "__pycache__" in parts or any(p.endswith(".egg-info") for p in parts):
            continue
        if (ROOT / name).is_file() or (ROOT / name).is_symlink():
            keep.append(name)
    return keep


def _copy_hook_repo(dest: Path) -> str:
    """The working tree as it is on disk, committed into a fresh repo; returns the commit."""
    _git_init(dest)
    for name in _working_tree_files():
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, target, follow_symlinks=False)
    _git(dest, "add", "-A")
    _git(dest, "commit", "-q", "--no-verify", "-m", "adopter under test")
    return _git(dest, "rev-parse", "HEAD")


@dataclass(frozen=True)
class HookRepo:
    path: Path
    rev: str
    home: Path  # PRE_COMMIT_HOME shared by the session (see the `installed` fixture)

    def config(self, *hooks: dict) -> str:
        return yaml.safe_dump({"repos": [{"repo": str(self.path), "rev": self.rev, "hooks": list(hooks)}]},
                              sort_keys=False)


def _shared_dir(tmp_path_factory) -> Path:
    base = tmp_path_factory.getbasetemp()
    # under xdist each worker has its own basetemp inside the run's common one
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@pytest.fixture(scope="session")
def hook_repo(tmp_path_factory) -> HookRepo:
    """One hook repo (and PRE_COMMIT_HOME) per test session, shared by the xdist workers."""
    shared = _shared_dir(tmp_path_factory)
    base = shared / "adopter-hook"
    ready = shared / "adopter-hook.json"
    with FileLock(str(shared / "adopter-hook.lock")):
        if not ready.exists():
            shutil.rmtree(base, ignore_errors=True)  # left half-built by a worker that failed
            rev = _copy_hook_repo(base / "hook-repo")
            ready.write_text(json.dumps({"path": str(base / "hook-repo"), "rev": rev,
                                         "home": str(base / "pre-commit-home")}))
        data = json.loads(ready.read_text())
    return HookRepo(Path(data["path"]), data["rev"], Path(data["home"]))


@pytest.fixture(scope="session")
def installed(hook_repo, tmp_path_factory) -> HookRepo:
    """The hook repo with both hooks' environment built in its PRE_COMMIT_HOME.

    pre-commit holds a lock on its store while installing and skips environments that are
    already there, so the second xdist worker just waits for the first.
    """
    warm = _git_init(tmp_path_factory.mktemp("warm"))
    (warm / ".pre-commit-config.yaml").write_text(hook_repo.config({"id": "adopter"}, {"id": "adopter-fix"}))
    proc = _pre_commit(warm, hook_repo.home, "install-hooks")
    assert proc.returncode == 0, f"building the hook environment failed:\n{proc.stdout}"
    return hook_repo


@pytest.fixture
def project(tmp_path) -> Path:
    """A git repository that has never seen Adopter."""
    return _git_init(tmp_path / "project")


def _pre_commit(cwd: Path, home: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pre_commit", *args], cwd=cwd, env=_clean_env(home),
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=TIMEOUT)


def _run(project: Path, repo: HookRepo, *args: str, hooks: tuple[dict, ...] | None = None):
    """`pre-commit run` with a config naming the hook repo (shared, pre-built environment)."""
    config = project / ".pre-commit-config.yaml"
    if hooks is not None:
        config.write_text(repo.config(*hooks))
    return _pre_commit(project, repo.home, "run", "--color=never", *args)


def _try_repo(project: Path, repo: HookRepo, hook_id: str, *files: str) -> subprocess.CompletedProcess:
    """`pre-commit try-repo`: builds a throw-away environment in its own temp store."""
    return _pre_commit(project, project.parent / "unused-home", "try-repo", str(repo.path), hook_id,
                       "--ref", repo.rev, "--color=never", "--files", *files)


def _finding_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if re.match(r"^\S+\.py:\d+:\d+: ADP\d{3} ", line)]


def _comments(source: str) -> list[str]:
    tokens = tokenize.generate_tokens(io.StringIO(source).readline)
    return [t.string for t in tokens if t.type == tokenize.COMMENT]


def _doc_configs() -> list[str]:
    """The fenced ```yaml blocks of docs/pre-commit.md that are whole configs (have `repos:`)."""
    blocks = re.findall(r"^```yaml\n(.*?)^```", DOC.read_text(), flags=re.S | re.M)
    return [b for b in blocks if re.match(r"repos:", b)]


def _pin(snippet: str, repo: HookRepo) -> str:
    """The documented snippet with `repo:` and `rev:` pointing at the hook repo under test."""
    config = yaml.safe_load(snippet)
    (entry,) = config["repos"]
    assert set(entry) == {"repo", "rev", "hooks"}, entry
    entry["repo"], entry["rev"] = str(repo.path), repo.rev
    return yaml.safe_dump(config, sort_keys=False)


# --------------------------------------------------------------------------- try-repo

def test_try_repo_reports_findings_and_fails(hook_repo, project):
    (project / "model.py").write_text(MODEL)
    proc = _try_repo(project, hook_repo, "adopter", "model.py")
    assert proc.returncode == 1, proc.stdout
    assert "Failed" in proc.stdout and "- exit code: 1" in proc.stdout
    assert _finding_lines(proc.stdout) == [  # softmax (ADP004) and ADP005 (CUDA) are off by default
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
        ["model.py:24:12", "ADP012 fused-optimizer"]]


def test_parallel_batches_report_every_file(installed, project):
    names = [f"model_{i:02d}.py" for i in range(40)]
    for name in names:
        (project / name).write_text(MODEL)
    (project / "broken.py").write_text(BROKEN)
    proc = _run(project, installed, "--files", *names, "broken.py", hooks=({"id": "adopter"},))
    assert proc.returncode == 1, proc.stdout
    found = sorted(line.split(":")[0] + " " + line.split(": ")[1] for line in _finding_lines(proc.stdout))
    assert found == sorted(f"{n} ADP012 fused-optimizer" for n in names)
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
        ["model.py:24:12", "ADP012 fused-optimizer"]]

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
