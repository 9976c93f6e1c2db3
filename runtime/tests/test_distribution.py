"""adopter-kernels as a distribution: what a patched project installs.

Patched model code imports this package, so it must stand on its own: torch its only
dependency, Python 3.9 syntax, nothing of the analysis tool.  The last test builds the sdist
and the wheel with ``python -m build`` (from a copy of the folder, without build isolation so
nothing is downloaded), installs the wheel with ``--no-deps`` into a fresh virtual environment
that sees this environment's torch through a ``.pth`` line, and runs a kernel there.
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import venv
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

RUNTIME = Path(__file__).resolve().parents[1]
PACKAGE = RUNTIME / "src" / "adopter_kernels"
MODULES = sorted(PACKAGE.rglob("*.py"))


def test_metadata_torch_only_python_3_9():
    project = tomllib.loads((RUNTIME / "pyproject.toml").read_text())["project"]
    assert project["name"] == "adopter-kernels"
    assert [Requirement(r).name for r in project["dependencies"]] == ["torch"]
    python = SpecifierSet(project["requires-python"])
    assert "3.9" in python and "3.8" not in python


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_module_is_python_3_9_and_never_imports_the_analysis_tool(path):
    tree = ast.parse(path.read_text(), filename=str(path), feature_version=(3, 9))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or ""] if node.level == 0 else []
        else:
            names = []
        assert not [n for n in names if n == "adopter" or n.startswith("adopter.")], (path, node.lineno)
        # PEP 604 unions in annotations parse on 3.9 but fail there when evaluated (TorchScript
        # evaluates the annotations of the functions it compiles): typing.Optional/Union only.
        annotations = []
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            annotations = [a.annotation for a in [*node.args.args, *node.args.kwonlyargs] if a.annotation]
            annotations += [node.returns] if node.returns else []
        elif isinstance(node, ast.AnnAssign):
            annotations = [node.annotation]
        for annotation in annotations:
            assert not any(isinstance(n, ast.BinOp) and isinstance(n.op, ast.BitOr) for n in ast.walk(annotation)), (
                path, annotation.lineno)


PROBE = """
import importlib.metadata as md, sys, torch
import adopter_kernels
from adopter_kernels import conv_bn
assert adopter_kernels.__file__.startswith(sys.prefix), adopter_kernels.__file__
try:
    import adopter
except ImportError:
    pass
else:
    raise SystemExit(f"the analysis tool is importable: {adopter.__file__}")
dist = md.distribution("adopter-kernels")
assert dist.requires == ["torch>=2.1", 'liger-kernel>=0.8.5; extra == "liger"'], dist.requires
assert dist.metadata["Requires-Python"] == ">=3.9", dist.metadata["Requires-Python"]
conv, bn = torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4)
bn.running_mean.uniform_(); bn.running_var.uniform_(0.5, 2.0); bn.eval()
x = torch.randn(2, 3, 8, 8, dtype=torch.float64)
conv, bn = conv.double(), bn.double()
torch.testing.assert_close(conv_bn(x, conv, bn), bn(conv(x)))
print("ok", sorted(adopter_kernels.__all__))
"""


def test_wheel_installs_into_a_fresh_venv_and_runs(tmp_path):
    source = tmp_path / "src"
    shutil.copytree(RUNTIME, source, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "build", "dist"))
    built = subprocess.run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(tmp_path / "dist"),
                            str(source)], capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stdout[-2000:] + built.stderr[-2000:]
    wheels = list((tmp_path / "dist").glob("adopter_kernels-*.whl"))
    assert len(wheels) == 1 and list((tmp_path / "dist").glob("adopter_kernels-*.tar.gz"))

    env = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(env)
    python = env / "bin" / "python"
    site = Path(subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    # torch (and what it imports) from this environment; a plain path line does not run the
    # .pth files there, so this environment's editable installs (adopter, adopter_kernels) stay out.
    (site / "outer-torch.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    installed = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps",
                                "--no-index", "--disable-pip-version-check", "--quiet", str(wheels[0])],
                               capture_output=True, text=True, timeout=300)
    assert installed.returncode == 0, installed.stderr[-2000:]
    probe = subprocess.run([python, "-c", PROBE], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert probe.returncode == 0, probe.stdout[-2000:] + probe.stderr[-2000:]
    assert probe.stdout.startswith("ok ")
