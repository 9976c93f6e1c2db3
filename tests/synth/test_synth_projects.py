"""Fixes inside real project folders: the project's line length and import sections count.

Each folder of ``projects/`` is a small project (its ``pyproject.toml`` / ``setup.cfg``);
every ``NAME.in.py`` in it is copied with the project into a temporary folder as
``NAME.py``, fixed there with the default rules, and must give ``NAME.out.py`` exactly.
Then Ruff, with the project's own configuration, must find no more unused imports (F401)
or unsorted imports (I001) than in the original, and no line over the project's length
(E501, with the length the project sets or Ruff's default).
"""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from adopter.ruleset import load_rules
from adopter.synth import fix_text
from adopter.synth.style import style_for

PROJECTS = Path(__file__).parent / "projects"
CASES = sorted(PROJECTS.rglob("*.in.py"))
RULES = [r for r in load_rules() if r.default or r.default_targets]  # the rules on by default for some target
RUFF = Path(sys.executable).parent / "ruff"


def _ruff(root: Path, file: Path, select: str) -> list[dict]:
    done = subprocess.run(
        [str(RUFF), "check", "--no-cache", "--select", select, "--output-format", "json", str(file)],
        cwd=root, capture_output=True, text=True,
    )
    assert done.returncode in (0, 1), done.stderr
    return json.loads(done.stdout or "[]")


@pytest.mark.parametrize("source", CASES, ids=[str(p.relative_to(PROJECTS))[: -len(".in.py")] for p in CASES])
def test_project_fixture(source: Path, tmp_path: Path):
    project = source.relative_to(PROJECTS).parts[0]
    root = tmp_path / project
    shutil.copytree(PROJECTS / project, root, ignore=shutil.ignore_patterns("*.out.py", "__pycache__"))
    copy = root / source.relative_to(PROJECTS / project)
    target = copy.with_name(source.name.replace(".in.py", ".py"))
    copy.rename(target)
    original = target.read_text()

    result = fix_text(original, str(target), RULES)
    assert result.error is None and result.applied
    assert result.text == source.with_name(source.name.replace(".in.py", ".out.py")).read_text()
    again = fix_text(result.text, str(target), RULES)
    assert again.text == result.text and again.applied == []

    style = style_for(target)
    assert style.configured
    new_lines = set(result.text.splitlines()) - set(original.splitlines())
    assert new_lines and max(len(line) for line in new_lines) <= style.line_length

    if not RUFF.is_file():
        pytest.skip("ruff is not installed (it is in the dev extra)")
    before = _ruff(root, target, "F401,I001,E501")
    target.write_text(result.text)
    after = _ruff(root, target, "F401,I001,E501")
    assert len(after) <= len(before), after


def test_the_projects_configure_what_they_claim(tmp_path: Path):
    assert style_for(PROJECTS / "line79" / "model.in.py").line_length == 79
    assert style_for(PROJECTS / "flake8_72" / "model.in.py").line_length == 72
    sections = style_for(PROJECTS / "sections" / "zoo" / "model.in.py")
    assert sections.line_length == 88  # Ruff is configured (for isort), so its default length
    assert {"zoo"} <= sections.first_party
