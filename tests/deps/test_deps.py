"""Declaring what patched code needs in the project's own dependency files, of every kind.

Each test writes real files into a temporary project, plans the edits, writes them, checks
the result with the reader of that kind of file (tomllib, configparser, packaging, Python's
own parser) and that comments and layout stay, then plans again: a second run changes nothing.
"""

from __future__ import annotations

import ast
import configparser
import tomllib
from pathlib import Path

import pytest

from adopter.synth.deps import excludes_floor, implies_floor, plan_dependencies, project_root, unavailable
from adopter.synth.manifests import poetry_specifier
from packaging.specifiers import SpecifierSet
from packaging.version import Version

KERNELS = "adopter-kernels>=0.1.0"
RMS = "torch>=2.4"


def _project(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    return tmp_path


def _apply(root: Path, wanted: set[str]) -> tuple[dict[str, str], list[str]]:
    """Plan, write, and check that a second plan finds nothing left to do."""
    edits, notes = plan_dependencies(root, wanted)
    for edit in edits:
        edit.path.write_text(edit.new)
    again, again_notes = plan_dependencies(root, wanted)
    assert again == [], [e.said for e in again]
    assert again_notes == notes
    return {e.path.name: e.new for e in edits}, notes


def test_pep621_array_keeps_comments_and_raises_a_bare_torch(tmp_path):
    root = _project(tmp_path, {"pyproject.toml": (
        '[project]\nname = "model"\nrequires-python = ">=3.9"\n'
        'dependencies = [\n    "torch",  # the framework\n    "numpy>=1.24",\n]\n\n[tool.ruff]\nline-length = 100\n'
    )})
    new, notes = _apply(root, {KERNELS, RMS})
    assert notes == []
    assert new["pyproject.toml"] == (
        '[project]\nname = "model"\nrequires-python = ">=3.9"\n'
        'dependencies = [\n    "torch>=2.4",  # the framework\n    "numpy>=1.24",\n    "adopter-kernels>=0.1.0",\n]\n'
        '\n[tool.ruff]\nline-length = 100\n'
    )


@pytest.mark.parametrize("declared, raised", [
    ('"torch>=1.13,<3"', '"torch>=2.4,<3"'),
    ('"torch>=2.5"', None),  # already above the floor: untouched
    ('"torch[opt-einsum]~=2.0"', '"torch[opt-einsum]>=2.4,~=2.0"'),
    ("\"torch; sys_platform != 'darwin'\"", "\"torch>=2.4; sys_platform != 'darwin'\""),
])
def test_existing_declarations_get_the_floor(tmp_path, declared, raised):
    text = f'[project]\nname = "m"\ndependencies = [{declared}]\n'
    root = _project(tmp_path, {"pyproject.toml": text})
    new, _ = _apply(root, {RMS})
    if raised is None:
        assert new == {}
    else:
        assert new["pyproject.toml"] == text.replace(declared, raised)


def test_a_pin_below_the_floor_is_a_conflict_not_an_edit(tmp_path):
    root = _project(tmp_path, {"requirements.txt": "torch==2.1.0  # CUDA 11.8 wheels\nnumpy\n"})
    edits, notes = plan_dependencies(root, {RMS})
    assert edits == []
    assert len(notes) == 1 and "torch==2.1.0" in notes[0] and "excludes torch>=2.4" in notes[0]
    assert unavailable(root, [(RMS, ">=3.8")]) == {RMS: "requirements.txt declares 'torch==2.1.0', which excludes torch>=2.4"}


def test_poetry_caret_is_raised_as_a_caret_and_extras_become_a_table(tmp_path):
    root = _project(tmp_path, {"pyproject.toml": (
        '[tool.poetry]\nname = "m"\nversion = "0.1.0"\n\n'
        '[tool.poetry.dependencies]\npython = "^3.9"\ntorch = "^2.0"  # cu121 source below\n\n'
        '[[tool.poetry.source]]\nname = "pytorch"\nurl = "https://download.pytorch.org/whl/cu121"\n'
    )})
    new, notes = _apply(root, {RMS, "adopter-kernels[liger]>=0.1.0"})
    assert notes == []
    text = new["pyproject.toml"]
    assert 'torch = "^2.4"  # cu121 source below\n' in text
    assert tomllib.loads(text)["tool"]["poetry"]["dependencies"]["adopter-kernels"] == {
        "version": ">=0.1.0", "extras": ["liger"]}
    assert tomllib.loads(text)["tool"]["poetry"]["source"][0]["name"] == "pytorch"


def test_setup_cfg_install_requires(tmp_path):
    text = (
        "[metadata]\nname = model\n\n[options]\npackages = find:\npython_requires = >=3.9\n"
        "install_requires =\n    torch>=1.13  # pinned by the cluster image\n    numpy\n\n"
        "[options.extras_require]\ndev = pytest\n"
    )
    root = _project(tmp_path, {"setup.cfg": text})
    new, notes = _apply(root, {KERNELS, RMS})
    assert notes == []
    assert new["setup.cfg"] == text.replace(
        "    torch>=1.13  # pinned by the cluster image\n    numpy\n",
        "    torch>=2.4  # pinned by the cluster image\n    numpy\n    adopter-kernels>=0.1.0\n")
    parser = configparser.ConfigParser()
    parser.read_string(new["setup.cfg"])
    assert parser.get("options", "install_requires").split() == [
        "torch>=2.4", "#", "pinned", "by", "the", "cluster", "image", "numpy", "adopter-kernels>=0.1.0"]


SETUP_PY = '''\
from setuptools import find_packages, setup

setup(
    name="model",
    packages=find_packages(),
    python_requires=">=3.9",
    install_requires=[
        "torch",  # the framework
        'numpy',
    ],
)
'''


def test_setup_py_literal_list_is_edited_with_libcst(tmp_path):
    root = _project(tmp_path, {"setup.py": SETUP_PY})
    new, notes = _apply(root, {KERNELS, RMS})
    assert notes == []
    assert new["setup.py"] == SETUP_PY.replace(
        '        "torch",  # the framework\n        \'numpy\',\n',
        '        "torch>=2.4",  # the framework\n        \'numpy\',\n        "adopter-kernels>=0.1.0",\n')
    call = ast.parse(new["setup.py"]).body[-1].value
    requires = next(k.value for k in call.keywords if k.arg == "install_requires")
    assert [e.value for e in requires.elts] == ["torch>=2.4", "numpy", "adopter-kernels>=0.1.0"]


@pytest.mark.parametrize("layout, expected", [
    ('REQUIRES = ["torch", "numpy"]\n', 'REQUIRES = ["torch>=2.4", "numpy", "adopter-kernels>=0.1.0"]\n'),
    ('REQUIRES = ["numpy",]\n', 'REQUIRES = ["numpy", "adopter-kernels>=0.1.0", "torch>=2.4"]\n'),
    ("REQUIRES = []\n", 'REQUIRES = ["adopter-kernels>=0.1.0", "torch>=2.4"]\n'),
    ('REQUIRES = [\n    "numpy"]\n', 'REQUIRES = [\n    "numpy",\n    "adopter-kernels>=0.1.0",\n    "torch>=2.4"]\n'),
    ('REQUIRES = [\n    "numpy",  # arrays\n]\n',
     'REQUIRES = [\n    "numpy",  # arrays\n    "adopter-kernels>=0.1.0",\n    "torch>=2.4",\n]\n'),
])
def test_setup_py_list_bound_to_a_name(tmp_path, layout, expected):
    tail = 'from setuptools import setup\n\nsetup(name="m", install_requires=REQUIRES)\n'
    root = _project(tmp_path, {"setup.py": layout + tail})
    new, notes = _apply(root, {KERNELS, RMS})
    assert notes == []
    assert new["setup.py"] == expected + tail


def test_setup_py_reading_requirements_txt_edits_requirements_txt(tmp_path):
    root = _project(tmp_path, {
        "setup.py": 'from setuptools import setup\nsetup(name="m", install_requires=open("requirements.txt").read().split())\n',
        "requirements.txt": "torch\n-r extra.txt\nnumpy  # arrays",
    })
    new, notes = _apply(root, {KERNELS, RMS})
    assert notes == []
    assert set(new) == {"requirements.txt"}
    assert new["requirements.txt"] == "torch>=2.4\n-r extra.txt\nnumpy  # arrays\nadopter-kernels>=0.1.0\n"


def test_dynamic_dependencies_go_to_the_file_they_name(tmp_path):
    root = _project(tmp_path, {
        "pyproject.toml": ('[project]\nname = "m"\ndynamic = ["dependencies"]\n\n'
                           '[tool.setuptools.dynamic]\ndependencies = {file = ["deps/runtime.txt"]}\n'),
        "deps/runtime.txt": "torch>=2.0\n",
        "requirements-dev.txt": "pytest\n",
    })
    edits, notes = plan_dependencies(root, {KERNELS})
    assert notes == [] and [e.path for e in edits] == [root / "deps" / "runtime.txt"]
    assert edits[0].new == "torch>=2.0\nadopter-kernels>=0.1.0\n"


def test_package_metadata_is_preferred_to_requirements_txt(tmp_path):
    root = _project(tmp_path, {
        "pyproject.toml": '[project]\nname = "m"\ndependencies = ["numpy"]\n',
        "requirements.txt": "torch==2.5.1\nnumpy==1.26.4\n",  # the pinned environment
    })
    new, notes = _apply(root, {KERNELS, RMS})
    assert notes == []
    assert new == {"pyproject.toml": '[project]\nname = "m"\ndependencies = ["numpy", "adopter-kernels>=0.1.0"]\n'}


def test_a_requirement_with_hashes_is_read_but_never_rewritten(tmp_path):
    text = "torch==2.5.1 \\\n    --hash=sha256:abc\n"
    root = _project(tmp_path, {"requirements.txt": text})
    assert plan_dependencies(root, {RMS}) == ([], [])  # 2.5.1 is above the floor
    (root / "requirements.txt").write_text(text.replace("2.5.1", "2.4.0").replace("==", ">="))
    edits, notes = plan_dependencies(root, {"torch>=2.5"})
    assert edits == [] and "with hashes" in notes[0]


def test_extras_are_merged_into_an_existing_declaration(tmp_path):
    root = _project(tmp_path, {"requirements.txt": "adopter-kernels>=0.1.0\n"})
    new, _ = _apply(root, {"adopter-kernels[liger]>=0.1.0"})
    assert new["requirements.txt"] == "adopter-kernels[liger]>=0.1.0\n"


def test_python_floor_above_the_project_s_blocks_the_package(tmp_path):
    root = _project(tmp_path, {"pyproject.toml": '[project]\nname = "m"\nrequires-python = ">=3.8"\ndependencies = []\n'})
    reasons = unavailable(root, [(KERNELS, ">=3.9"), (RMS, ">=3.8")])
    assert list(reasons) == [KERNELS]
    assert "Python >=3.9" in reasons[KERNELS] and "3.8" in reasons[KERNELS]


@pytest.mark.parametrize("files", [
    {"setup.cfg": "[options]\npython_requires = >=3.7\ninstall_requires =\n    torch\n"},
    {"setup.py": 'from setuptools import setup\nsetup(name="m", python_requires=">=3.6", install_requires=[])\n'},
    {"pyproject.toml": '[tool.poetry]\nname = "m"\n[tool.poetry.dependencies]\npython = "^3.8"\n'},
])
def test_python_floor_is_read_from_every_kind_of_file(tmp_path, files):
    root = _project(tmp_path, files)
    assert KERNELS in unavailable(root, [(KERNELS, ">=3.9")])


def test_a_project_on_3_9_or_later_takes_the_runtime(tmp_path):
    root = _project(tmp_path, {"pyproject.toml": '[project]\nname = "m"\nrequires-python = ">=3.9,<3.13"\n'})
    assert unavailable(root, [(KERNELS, ">=3.9")]) == {}


def test_the_project_itself_is_not_a_dependency(tmp_path):
    root = _project(tmp_path, {"pyproject.toml": '[project]\nname = "adopter_kernels"\ndependencies = []\n'})
    assert plan_dependencies(root, {KERNELS}) == ([], [])


def test_pyproject_without_a_list_gets_the_key_when_nothing_else_lists_dependencies(tmp_path):
    root = _project(tmp_path, {"pyproject.toml": '[project]\nname = "x"\nversion = "1"\n\n[build-system]\nrequires = []\n'})
    new, _ = _apply(root, {KERNELS})
    assert tomllib.loads(new["pyproject.toml"])["project"]["dependencies"] == [KERNELS]
    assert tomllib.loads(new["pyproject.toml"])["build-system"] == {"requires": []}


def test_no_dependency_file_says_what_to_add(tmp_path):
    (tmp_path / ".git").mkdir()
    edits, notes = plan_dependencies(tmp_path, {KERNELS})
    assert edits == [] and len(notes) == 1 and KERNELS in notes[0]


def test_broken_pyproject_is_a_note(tmp_path):
    root = _project(tmp_path, {"pyproject.toml": "[project\n"})
    edits, notes = plan_dependencies(root, {KERNELS})
    assert edits == [] and KERNELS in notes[0]


def test_project_root_is_the_nearest_marked_folder(tmp_path):
    (tmp_path / "pyproject.toml").write_text("")
    inner = tmp_path / "src" / "pkg"
    inner.mkdir(parents=True)
    (inner / "m.py").write_text("")
    assert project_root(inner / "m.py") == tmp_path.resolve()
    (tmp_path / "src" / "requirements-dev.txt").write_text("")
    assert project_root(inner / "m.py") == (tmp_path / "src").resolve()


@pytest.mark.parametrize("constraint, inside, outside", [
    ("^2.0", ["2.0", "2.9.1"], ["1.13", "3.0"]),
    ("^0.3", ["0.3.5"], ["0.4", "0.2"]),
    ("~2.1", ["2.1.3"], ["2.2", "2.0"]),
    (">=1.13, <3", ["2.4"], ["3.0", "1.12"]),
    ("2.1.*", ["2.1.2"], ["2.2"]),
    ("*", ["0.1", "9"], []),
])
def test_poetry_constraints_read_as_pep_440(constraint, inside, outside):
    spec = poetry_specifier(constraint)
    assert all(spec.contains(v) for v in inside) and not any(spec.contains(v) for v in outside)


def test_floor_logic():
    floor = Version("2.4")
    assert implies_floor(SpecifierSet(">=2.4"), floor) and implies_floor(SpecifierSet("==2.5.1"), floor)
    assert not implies_floor(SpecifierSet(">=2.0"), floor) and not implies_floor(SpecifierSet(""), floor)
    assert excludes_floor(SpecifierSet("==2.1.0"), floor) and excludes_floor(SpecifierSet("<2.3"), floor)
    assert not excludes_floor(SpecifierSet(">=1.0,<3"), floor) and not excludes_floor(SpecifierSet("~=2.0"), floor)
