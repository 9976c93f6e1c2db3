"""Fixtures for the bot: a real git world (bare origin, a developer's clone that pushes, a fresh
Actions-style checkout per run), a fake GitHub API on 127.0.0.1, and a runner for
``adopter bot`` as a real subprocess with an Actions environment."""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from bot_fakes import FakeGitHub  # noqa: E402

TOKEN = "ghs_SuperSecretToken0123456789abcdef"

MODEL_V1 = '''\
import torch
from torch import nn


class SelfOutput(nn.Module):
    def __init__(self, hidden):
        super().__init__()
        self.dense = nn.Linear(hidden, hidden)
        self.LayerNorm = nn.LayerNorm(hidden, eps=1e-12)
        self.dropout = nn.Dropout(0.1)

    def forward(self, hidden_states, input_tensor):
        hidden_states = self.dense(hidden_states)
        hidden_states = self.dropout(hidden_states)
        hidden_states = self.LayerNorm(hidden_states + input_tensor)
        return hidden_states
'''

MODEL_V2 = '''\
import torch
from torch import nn


class Output(nn.Module):
    def __init__(self, size):
        super().__init__()
        self.proj = nn.Linear(size, size)
        self.norm = nn.LayerNorm(size)
        self.drop = nn.Dropout(0.2)

    def forward(self, x, residual):
        x = self.proj(x)
        x = self.drop(x)
        x = self.norm(x + residual)
        return x
'''

PYPROJECT = '''\
[project]
name = "models"
version = "0.0.1"
dependencies = ["torch"]
'''


def synth_available() -> str | None:
    """None when adopter.synth.fix_text is importable, else why not (the skip reason)."""
    try:
        from adopter.synth import fix_text  # noqa: F401
    except ImportError as exc:
        return f"adopter.synth.fix_text is not importable yet ({exc}); the PR tests need real patches"
    return None


def verify_available() -> str | None:
    try:
        from adopter.verify import verify_file  # noqa: F401
    except ImportError as exc:
        return f"adopter.verify.verify_file is not importable yet ({exc})"
    return None


needs_synth = pytest.mark.skipif(synth_available() is not None, reason=synth_available() or "")


def _clean_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("GITHUB_", "INPUT_", "RUNNER_", "GIT_", "ACTIONS_"))}
    gitconfig = home / ".gitconfig"
    if not gitconfig.exists():
        gitconfig.write_text("[user]\n\tname = Dev\n\temail = dev@example.com\n[init]\n\tdefaultBranch = main\n"
                             "[advice]\n\tdetachedHead = false\n")
    env.update({"HOME": str(home), "GIT_CONFIG_GLOBAL": str(gitconfig), "GIT_CONFIG_NOSYSTEM": "1",
                "PYTHONDONTWRITEBYTECODE": "1"})
    return env


def git(cwd: Path, *args: str, env: dict | None = None) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed: {done.stderr}")
    return done.stdout.strip()


@dataclass
class Run:
    rc: int
    stdout: str
    stderr: str
    outputs: dict
    summary: str
    checkout: Path
    out_dir: Path

    @property
    def text(self) -> str:
        return self.stdout + self.stderr


class World:
    """origin.git (bare) <- dev (pushes) ; checkout-N (fresh clones, one per bot run)."""

    def __init__(self, tmp: Path):
        self.tmp = tmp
        home = tmp / "home"
        home.mkdir()
        self.env = _clean_env(home)
        self.origin = tmp / "origin.git"
        git(tmp, "init", "--bare", "-q", "-b", "main", str(self.origin), env=self.env)
        self.dev = tmp / "dev"
        git(tmp, "clone", "-q", str(self.origin), str(self.dev), env=self.env)
        self.runs = 0

    def git(self, *args: str, cwd: Path | None = None) -> str:
        return git(cwd or self.dev, *args, env=self.env)

    def push(self, files: dict[str, str | None], message: str = "change", branch: str = "main",
             force: bool = False) -> tuple[str, str]:
        """Commit ``files`` (None deletes) in the dev clone and push; returns (before, after)."""
        before = self.origin_ref(branch) or "0" * 40
        for name, content in files.items():
            path = self.dev / name
            if content is None:
                self.git("rm", "-q", name)
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content)
            self.git("add", name)
        self.git("commit", "-q", "-m", message)
        self.git("push", "-q", *(["--force"] if force else []), "origin", f"HEAD:refs/heads/{branch}")
        return before, self.git("rev-parse", "HEAD")

    def origin_ref(self, branch: str) -> str | None:
        out = git(self.tmp, "--git-dir", str(self.origin), "for-each-ref", "--format=%(objectname)",
                  f"refs/heads/{branch}", env=self.env)
        return out or None

    def origin_refs(self) -> dict[str, str]:
        out = git(self.tmp, "--git-dir", str(self.origin), "for-each-ref",
                  "--format=%(refname) %(objectname)", env=self.env)
        return dict(line.split(" ", 1) for line in out.splitlines())

    def origin_file(self, ref: str, path: str) -> str:
        return git(self.tmp, "--git-dir", str(self.origin), "show", f"{ref}:{path}", env=self.env)

    def checkout(self, sha: str, branch: str = "main") -> Path:
        """What actions/checkout leaves: a clone with the pushed branch checked out at ``sha``."""
        self.runs += 1
        path = self.tmp / f"checkout-{self.runs}"
        git(self.tmp, "clone", "-q", "--no-checkout", str(self.origin), str(path), env=self.env)
        git(path, "checkout", "-q", "-B", branch, sha, env=self.env)
        return path

    def event(self, before: str | None, after: str, ref: str = "refs/heads/main", forced: bool = False,
              default_branch: str = "main", name: str = "push", extra: dict | None = None) -> Path:
        data = {"ref": ref, "before": before, "after": after, "forced": forced, "created": before == "0" * 40,
                "repository": {"full_name": "octo/models", "name": "models", "default_branch": default_branch,
                               "owner": {"login": "octo"}},
                "head_commit": {"id": after}}
        if before is None:
            del data["before"]
        data.update(extra or {})
        path = self.tmp / f"event-{self.runs}-{name}.json"
        path.write_text(json.dumps(data))
        return path

    def actions_env(self, fake: FakeGitHub, event: Path, sha: str, ref: str = "refs/heads/main",
                    event_name: str = "push", token: str = TOKEN, **inputs: str) -> dict[str, str]:
        env = dict(self.env)
        work = self.tmp / f"runner-{self.runs}"
        work.mkdir(exist_ok=True)
        (work / "output").write_text("")
        (work / "summary.md").write_text("")
        env.update({
            "GITHUB_ACTIONS": "true", "CI": "true", "GITHUB_API_URL": fake.api_url,
            "GITHUB_SERVER_URL": fake.host, "GITHUB_REPOSITORY": f"{fake.owner}/{fake.name}",
            "GITHUB_EVENT_NAME": event_name, "GITHUB_EVENT_PATH": str(event), "GITHUB_SHA": sha,
            "GITHUB_REF": ref, "GITHUB_OUTPUT": str(work / "output"),
            "GITHUB_STEP_SUMMARY": str(work / "summary.md"), "RUNNER_TEMP": str(work / "tmp"),
            "INPUT_GITHUB-TOKEN": token,
        })
        # The world's models hold one opportunity, dropout -> add -> LayerNorm (ADP005), which is
        # off by default (it claims CUDA only): runs name it, as a workflow's `select:` input
        # would.  A test of the default rules passes select="".
        inputs.setdefault("select", "ADP005")
        for key, value in inputs.items():
            env[f"INPUT_{key.upper().replace('_', '-')}"] = value
        return env

    def run_bot(self, fake: FakeGitHub, before: str | None, after: str, *args: str, ref: str = "refs/heads/main",
                event_name: str = "push", token: str = TOKEN, event: Path | None = None,
                checkout: Path | None = None, subprocess_run: bool = False, **inputs: str) -> Run:
        """Run ``adopter bot`` in a fresh checkout at ``after``: in this process through
        ``adopter.cli.main`` (fast), or as the real console script (``subprocess_run``)."""
        checkout = checkout or self.checkout(after, ref.rsplit("/", 1)[-1])
        event = event or self.event(before, after, ref=ref)
        env = self.actions_env(fake, event, after, ref=ref, event_name=event_name, token=token, **inputs)
        env["GITHUB_WORKSPACE"] = str(checkout)
        out_dir = Path(env["RUNNER_TEMP"]) / "adopter"
        if subprocess_run:
            done = subprocess.run([*adopter_command(), "bot", *args], cwd=checkout, env=env, capture_output=True,
                                  text=True, timeout=300)
            rc, stdout, stderr = done.returncode, done.stdout, done.stderr
        else:
            rc, stdout, stderr = run_in_process(["bot", *args], env, checkout)
        outputs = parse_outputs(Path(env["GITHUB_OUTPUT"]).read_text())
        return Run(rc, stdout, stderr, outputs,
                   Path(env["GITHUB_STEP_SUMMARY"]).read_text(), checkout, out_dir)


def run_in_process(argv: list[str], env: dict[str, str], cwd: Path) -> tuple[int, str, str]:
    from adopter.cli import main

    saved_env, saved_cwd = dict(os.environ), os.getcwd()
    out, err = io.StringIO(), io.StringIO()
    os.environ.clear()
    os.environ.update(env)
    os.chdir(cwd)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            rc = main(argv)
    finally:
        os.environ.clear()
        os.environ.update(saved_env)
        os.chdir(saved_cwd)
    return rc, out.getvalue(), err.getvalue()


def adopter_command() -> list[str]:
    script = Path(sys.executable).parent / "adopter"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "import sys; from adopter.cli import main; sys.exit(main())"]


def parse_outputs(text: str) -> dict[str, str]:
    """$GITHUB_OUTPUT as the runner reads it: name=value lines and name<<DELIM heredocs."""
    outputs: dict[str, str] = {}
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            name, delimiter = line.split("<<", 1)
            value = []
            i += 1
            while lines[i] != delimiter:
                value.append(lines[i])
                i += 1
            outputs[name] = "\n".join(value)
        elif "=" in line:
            name, value = line.split("=", 1)
            outputs[name] = value
        i += 1
    return outputs


@pytest.fixture
def fake_github(world):
    """The GitHub stand-in for ``world``: its branches are the bare origin's."""
    fake = FakeGitHub(owner="octo", name="models", token=TOKEN,
                      branches=lambda name: world.origin_ref(name) is not None).start()
    yield fake
    fake.stop()


@pytest.fixture
def world(tmp_path):
    return World(tmp_path)
