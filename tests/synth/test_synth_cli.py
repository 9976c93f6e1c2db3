"""``adopter fix`` end to end on real temporary files and projects."""

import textwrap
import tomllib
from pathlib import Path

import pytest

from adopter.cli import main

# conv-batchnorm (ADP007) is off by default (no gain measured on the CPU; benchmarks/rules.py),
# so these runs name it; the fix itself is what they test.
CONV_BN = ["--select", "ADP007"]
MODEL = textwrap.dedent(
    """\
    from torch import nn


    class Block(nn.Module):
        def __init__(self, dim):
            super().__init__()
            self.conv = nn.Conv2d(dim, dim, 3, padding=1, bias=False)
            self.bn = nn.BatchNorm2d(dim)

        def forward(self, x):
            x = self.conv(x)  # convolve
            x = self.bn(x)
            return x
    """
)
FIXED = textwrap.dedent(
    """\
    from adopter_kernels import conv_bn
    from torch import nn


    class Block(nn.Module):
        def __init__(self, dim):
            super().__init__()
            self.conv = nn.Conv2d(dim, dim, 3, padding=1, bias=False)
            self.bn = nn.BatchNorm2d(dim)

        def forward(self, x):
            # convolve
            x = conv_bn(x, self.conv, self.bn)
            return x
    """
)
PYPROJECT = textwrap.dedent(
    """\
    [project]
    name = "my-models"
    version = "1.0"
    # what the models need
    dependencies = [
        "torch>=2.0",  # the framework
    ]

    [tool.other]
    key = "value"
    """
)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    (root / "pkg").mkdir(parents=True)
    (root / "pyproject.toml").write_text(PYPROJECT)
    (root / "pkg" / "model.py").write_text(MODEL)
    return root


def test_fix_writes_the_file_and_adds_the_dependency_once(project: Path, capsys):
    model = project / "pkg" / "model.py"
    assert main(["fix", *CONV_BN, str(model)]) == 1
    assert model.read_text() == FIXED
    err = capsys.readouterr().err
    assert "fixed 1 (ADP007)" in err
    pyproject = (project / "pyproject.toml").read_text()
    assert pyproject == PYPROJECT.replace(
        '    "torch>=2.0",  # the framework\n', '    "torch>=2.0",  # the framework\n    "adopter-kernels>=0.1.0",\n'
    )
    assert tomllib.loads(pyproject)["project"]["dependencies"] == ["torch>=2.0", "adopter-kernels>=0.1.0"]
    # A second run changes nothing, not even the dependency list.
    assert main(["fix", *CONV_BN, str(model)]) == 0
    assert model.read_text() == FIXED
    assert (project / "pyproject.toml").read_text() == pyproject


def test_dependency_already_declared_is_left_alone(project: Path):
    (project / "pyproject.toml").write_text(PYPROJECT.replace('"torch>=2.0",', '"torch>=2.0",\n    "Adopter_Kernels>=0.1",'))
    before = (project / "pyproject.toml").read_text()
    assert main(["fix", *CONV_BN, str(project)]) == 1
    assert (project / "pyproject.toml").read_text() == before


def test_requirements_txt_project(tmp_path: Path):
    (tmp_path / "requirements.txt").write_text("torch==2.1  # pinned\nnumpy")
    (tmp_path / "model.py").write_text(MODEL)
    assert main(["fix", *CONV_BN, str(tmp_path)]) == 1
    assert (tmp_path / "requirements.txt").read_text() == "torch==2.1  # pinned\nnumpy\nadopter-kernels>=0.1.0\n"
    assert main(["fix", *CONV_BN, str(tmp_path)]) == 0


def test_no_deps(project: Path):
    assert main(["fix", *CONV_BN, "--no-deps", str(project)]) == 1
    assert (project / "pkg" / "model.py").read_text() == FIXED
    assert (project / "pyproject.toml").read_text() == PYPROJECT


def test_diff_writes_nothing(project: Path, capsys):
    model = project / "pkg" / "model.py"
    assert main(["fix", *CONV_BN, "--diff", str(model)]) == 1
    out = capsys.readouterr().out
    assert model.read_text() == MODEL
    assert (project / "pyproject.toml").read_text() == PYPROJECT
    shown = str(model).lstrip("/")
    assert f"--- a/{shown}\n+++ b/{shown}\n" in out
    assert "+        x = conv_bn(x, self.conv, self.bn)\n" in out
    assert "-        x = self.bn(x)\n" in out
    assert '+    "adopter-kernels>=0.1.0",\n' in out  # the dependency change is in the diff too


def test_crlf_file_stays_crlf(project: Path):
    model = project / "pkg" / "model.py"
    model.write_bytes(MODEL.replace("\n", "\r\n").encode())
    assert main(["fix", *CONV_BN, "--no-deps", str(model)]) == 1
    data = model.read_bytes()
    assert data == FIXED.replace("\n", "\r\n").encode()
    assert b"\n" not in data.replace(b"\r\n", b"")


def test_bom_and_latin1_cookie_are_kept(tmp_path: Path):
    bom = tmp_path / "bom.py"
    bom.write_bytes(b"\xef\xbb\xbf" + MODEL.encode())
    latin = tmp_path / "latin.py"
    latin.write_bytes(("# -*- coding: latin-1 -*-\n# caf\xe9\n" + MODEL).encode("latin-1"))
    assert main(["fix", *CONV_BN, "--no-deps", str(bom), str(latin)]) == 1
    assert bom.read_bytes() == b"\xef\xbb\xbf" + FIXED.encode()
    assert latin.read_bytes() == ("# -*- coding: latin-1 -*-\n# caf\xe9\n" + FIXED).encode("latin-1")


def test_nothing_to_fix_is_exit_0(tmp_path: Path, capsys):
    clean = tmp_path / "clean.py"
    clean.write_text("x = 1\n")
    assert main(["fix", *CONV_BN, str(clean)]) == 0
    assert clean.read_text() == "x = 1\n"
    assert capsys.readouterr().out == ""


def test_bad_files_are_exit_2_and_the_others_still_fixed(tmp_path: Path, capsys):
    (tmp_path / "broken.py").write_text("def broken(:\n")
    (tmp_path / "binary.py").write_bytes(b"\x00\x01\x02")
    good = tmp_path / "model.py"
    good.write_text(MODEL)
    assert main(["fix", *CONV_BN, "--no-deps", str(tmp_path), str(tmp_path / "missing.py")]) == 2
    assert good.read_text() == FIXED
    err = capsys.readouterr().err
    assert "broken.py: error: syntax error" in err
    assert "binary.py: error:" in err
    assert "missing.py: error:" in err
    assert "Traceback" not in err


def test_skipped_findings_are_reported(tmp_path: Path, capsys):
    source = Path(__file__).parent / "fixtures" / "not_fixed.in.py"
    target = tmp_path / "not_fixed.py"
    target.write_text(source.read_text())
    assert main(["fix", *CONV_BN, str(target)]) == 0
    assert target.read_text() == source.read_text()
    err = capsys.readouterr().err
    assert "ADP007 not fixed: the match spans a helper method" in err


def test_select_limits_the_rules(project: Path, tmp_path: Path):
    model = project / "pkg" / "model.py"
    assert main(["fix", "--select", "ADP004", str(model)]) == 0
    assert model.read_text() == MODEL


def test_many_files_in_parallel(tmp_path: Path):
    for index in range(10):
        (tmp_path / f"m{index}.py").write_text(MODEL)
    assert main(["fix", *CONV_BN, "--no-deps", "--jobs", "2", str(tmp_path)]) == 1
    assert all((tmp_path / f"m{index}.py").read_text() == FIXED for index in range(10))
