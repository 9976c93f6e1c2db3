"""Declaring the kernel package in the analysed project's dependency list."""

import tomllib
from pathlib import Path

import pytest

from adopter.synth.deps import _add_to_array, plan_dependencies, project_root, requirement_name

REQ = {"adopter>=0.1.0"}


@pytest.mark.parametrize(
    "before, after",
    [
        ('dependencies = ["torch", "numpy"]\n', 'dependencies = ["torch", "numpy", "adopter>=0.1.0"]\n'),
        ('dependencies = ["torch",]\n', 'dependencies = ["torch", "adopter>=0.1.0"]\n'),
        ("dependencies = []\n", 'dependencies = ["adopter>=0.1.0"]\n'),
        ("dependencies = [\n]\n", 'dependencies = [\n    "adopter>=0.1.0",\n]\n'),
        (
            'dependencies = [\n  "torch",  # framework\n  "numpy"\n]\n',
            'dependencies = [\n  "torch",  # framework\n  "numpy",\n  "adopter>=0.1.0",\n]\n',
        ),
        ('dependencies = [\n  "torch",\n  "numpy"]\n', 'dependencies = [\n  "torch",\n  "numpy",\n  "adopter>=0.1.0",\n]\n'),
        (
            "dependencies = [\n    \"a[x]>=1; python_version<'3.12'\",\n    # \"b\",\n]\n",
            "dependencies = [\n    \"a[x]>=1; python_version<'3.12'\",\n    \"adopter>=0.1.0\",\n    # \"b\",\n]\n",
        ),
    ],
)
def test_array_edits_keep_the_layout(before, after):
    head = '[project]\nname = "x"\n'
    tail = '\n[tool.x]\ndependencies = ["not-this-one"]\n'
    edited = _add_to_array(head + before + tail, ["adopter>=0.1.0"])
    assert edited == head + after + tail
    assert tomllib.loads(edited)["project"]["dependencies"][-1] == "adopter>=0.1.0"


def test_names_are_normalised():
    assert requirement_name("Adopter_Kernels>=1") == "adopter-kernels"
    assert requirement_name("torch ; python_version > '3'") == "torch"


def _project(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    return tmp_path


def test_pyproject_without_dependencies_gets_the_key(tmp_path):
    root = _project(tmp_path, {"pyproject.toml": '[project]\nname = "x"\nversion = "1"\n\n[build-system]\nrequires = []\n'})
    edit, message = plan_dependencies(root, REQ)
    assert message is None
    assert tomllib.loads(edit.new)["project"]["dependencies"] == ["adopter>=0.1.0"]
    assert tomllib.loads(edit.new)["build-system"] == {"requires": []}


def test_dynamic_dependencies_use_requirements_txt(tmp_path):
    root = _project(tmp_path, {
        "pyproject.toml": '[project]\nname = "x"\ndynamic = ["dependencies"]\n',
        "requirements.txt": "torch\n",
    })
    edit, _ = plan_dependencies(root, REQ)
    assert edit.path == root / "requirements.txt"
    assert edit.new == "torch\nadopter>=0.1.0\n"


def test_declared_in_requirements_is_enough(tmp_path):
    root = _project(tmp_path, {"requirements.txt": "-r base.txt\nADOPTER==0.2  # kernels\n"})
    assert plan_dependencies(root, REQ) == (None, None)


def test_the_project_itself_is_not_a_dependency(tmp_path):
    root = _project(tmp_path, {"pyproject.toml": '[project]\nname = "adopter"\ndependencies = []\n'})
    assert plan_dependencies(root, REQ) == (None, None)


def test_poetry_project(tmp_path):
    root = _project(tmp_path, {
        "pyproject.toml": '[tool.poetry]\nname = "x"\n\n[tool.poetry.dependencies]\npython = "^3.11"\n',
    })
    edit, _ = plan_dependencies(root, REQ)
    assert tomllib.loads(edit.new)["tool"]["poetry"]["dependencies"] == {"python": "^3.11", "adopter": ">=0.1.0"}


def test_no_dependency_file_says_what_to_add(tmp_path):
    (tmp_path / ".git").mkdir()
    edit, message = plan_dependencies(tmp_path, REQ)
    assert edit is None and "adopter>=0.1.0" in message


def test_broken_pyproject_is_a_message(tmp_path):
    root = _project(tmp_path, {"pyproject.toml": "[project\n"})
    edit, message = plan_dependencies(root, REQ)
    assert edit is None and "adopter>=0.1.0" in message


def test_project_root_is_the_nearest_marked_folder(tmp_path):
    (tmp_path / "pyproject.toml").write_text("")
    inner = tmp_path / "src" / "pkg"
    inner.mkdir(parents=True)
    (inner / "m.py").write_text("")
    assert project_root(inner / "m.py") == tmp_path.resolve()
    (tmp_path / "src" / "requirements-dev.txt").write_text("")
    assert project_root(inner / "m.py") == (tmp_path / "src").resolve()
