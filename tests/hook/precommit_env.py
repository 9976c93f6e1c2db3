"""Shared by the hook tests under real pre-commit: a hook repository copied from this
checkout, a PRE_COMMIT_HOME with both hooks installed once per session, fresh git projects
(the fixtures are registered in conftest.py; see test_hook_precommit.py for the design)."""

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


