"""The package a user installs: `python -m build` (sdist, then the wheel from the sdist) from a
copy of this checkout, the wheel installed into a fresh virtualenv the way the README says,
and the installed commands run there.  Marked `packaging` (about a minute: the build's own
environment and the dependencies come from the package index or pip's cache)."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MODEL = (ROOT / "tests" / "hook" / "fixtures" / "block.py").read_text()

pytestmark = pytest.mark.packaging


def _tracked(root: Path) -> list[str]:
    out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=root,
                         capture_output=True, check=True).stdout
    return [n.decode() for n in out.split(b"\0") if n]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    source = tmp_path_factory.mktemp("source")
    for name in _tracked(ROOT):
        if (ROOT / name).is_file() and not name.startswith((".venv/", "build/", "dist/")):
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            (source / name).write_bytes((ROOT / name).read_bytes())
    dist = tmp_path_factory.mktemp("dist")
    proc = subprocess.run([sys.executable, "-m", "build", "--outdir", str(dist), str(source)],
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (built,) = dist.glob("adopter-*.whl")
    assert len(list(dist.glob("adopter-*.tar.gz"))) == 1
    return built


def test_the_wheel_carries_the_license_rules_and_metadata(wheel):
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert wheel.name.startswith(f"adopter-{version}-py3-none-any")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        metadata = archive.read(f"adopter-{version}.dist-info/METADATA").decode()
        license_text = archive.read(f"adopter-{version}.dist-info/licenses/LICENSE").decode()
    assert "Apache License" in license_text and "Version 2.0, January 2004" in license_text
    assert "License-Expression: Apache-2.0" in metadata
    assert sum(n.startswith("adopter/rules/ADP") and n.endswith(".toml") for n in names) >= 15
    assert "adopter/hook/main.py" in names and "adopter/runner.py" in names
    # the verify extra takes a range, never an exact torch
    requires = re.findall(r"^Requires-Dist: torch(.*)$", metadata, flags=re.M)
    assert requires and all("==" not in r.split(";")[0] for r in requires)


def test_pip_install_of_the_wheel_into_a_fresh_venv_works(wheel, tmp_path):
    venv = tmp_path / "fresh"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    pip = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--disable-pip-version-check", "-q",
                          str(wheel)], capture_output=True, text=True, timeout=900)
    assert pip.returncode == 0, pip.stdout[-3000:] + pip.stderr[-3000:]
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    out = subprocess.run([str(venv / "bin" / "adopter"), "--version"], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == f"adopter {version}"
    (tmp_path / "model.py").write_text(MODEL)
    check = subprocess.run([str(venv / "bin" / "adopter"), "check", "model.py"], cwd=tmp_path,
                           capture_output=True, text=True, timeout=300)
    assert check.returncode == 1 and "model.py:19:26: ADP005 dropout-add-layernorm" in check.stdout, check.stderr
    hook = subprocess.run([str(venv / "bin" / "adopter-hook"), "model.py"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert hook.returncode == 1 and "(fix: adopter-fix)" in hook.stdout
    rules = subprocess.run([str(venv / "bin" / "adopter"), "rules"], capture_output=True, text=True, timeout=120)
    assert rules.returncode == 0 and len(rules.stdout.splitlines()) >= 15
    # the core install does not pull torch (only the verify extra does)
    freeze = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "list", "--format=freeze"],
                            capture_output=True, text=True, timeout=120).stdout.lower()
    assert "torch==" not in freeze and "pathspec==" in freeze


def test_readme_and_changelog_name_the_packaged_version():
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    changelog = (ROOT / "CHANGELOG.md").read_text()
    first = re.search(r"^## \[?(\d+\.\d+\.\d+[^\]\s]*)\]?", changelog, flags=re.M)
    assert first and first.group(1) == version
    import adopter

    assert adopter.__version__ == version
    readme = (ROOT / "README.md").read_text()
    assert f"adopter-{version}-py3-none-any.whl" in readme
    # no pre-commit `rev:` that names a release tag: none has been made yet
    assert not re.search(r"^\s*rev:\s*v\d", readme, flags=re.M)
    assert not re.search(r"^\s*rev:\s*v\d", (ROOT / "docs" / "pre-commit.md").read_text(), flags=re.M)
