"""The hook's entry points, called directly (the pre-commit runs are in test_hook_precommit.py)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import pytest
import yaml

from adopter.hook import main as hook

ROOT = Path(__file__).resolve().parents[2]

MODEL = (Path(__file__).parent / "fixtures" / "block.py").read_text()  # shared by both hook test files


@pytest.fixture
def model(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "model.py").write_text(MODEL)
    return "model.py"


def test_check_reports_findings_with_the_fix_hook_as_hint(model, capsys):
    assert hook.check([model]) == 1
    assert [line.split(": ")[1] for line in capsys.readouterr().out.splitlines()] == [
        "ADP005 dropout-add-layernorm", "ADP012 fused-optimizer"]  # softmax (ADP004) is off; ADP005 (CUDA) informational
    assert hook.check(["--select=ADP004,ADP005", model]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out == [
        "model.py:16:17: ADP004 softmax: last-dimension softmax can use adopter_kernels.softmax (fix: adopter-fix)",
        "model.py:19:26: ADP005 dropout-add-layernorm: dropout -> residual add -> LayerNorm can be fused "
        "(adopter_kernels.dropout_add_layer_norm) (fix: adopter-fix)",
    ]


def test_args_before_the_files_are_passed_through(model, capsys):
    assert hook.check(["--select=ADP005", model]) == 1
    out = capsys.readouterr().out
    assert "ADP005" in out and "ADP004" not in out
    assert hook.check(["--ignore", "ADP012", model]) == 0


def test_clean_file_passes(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    Path("clean.py").write_text("import torch\n\n\ndef f(x):\n    return torch.relu(x)\n")
    assert hook.check(["clean.py"]) == 0
    assert capsys.readouterr().out == ""


def test_syntax_error_is_reported_without_a_traceback(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    Path("broken.py").write_text("import torch.nn.functional as F\n\ndef f(x:\n    return F.softmax(x, dim=-1)\n")
    assert hook.check(["broken.py"]) == 2
    err = capsys.readouterr().err
    assert "broken.py: error: syntax error at 3:" in err
    assert "Traceback" not in err
    # also when nothing in the file is anything a rule looks for
    Path("plain.py").write_text("values = (1,\n")
    assert hook.check(["plain.py", "broken.py"]) == 2
    err = capsys.readouterr().err
    assert "plain.py: error: syntax error at 1:" in err and "broken.py: error:" in err


def test_file_names_are_never_options(model, capsys):
    """pre-commit appends the staged names after the user's args: a name starting with '-'
    is a file, and the user's args still work."""
    Path("-x.py").write_text(MODEL)
    Path("--select=ADP005").write_text("x = 1\n")  # a file named like an option, not Python
    assert hook.check(["--select=ADP004", "-x.py", model]) == 1
    out = capsys.readouterr().out
    assert "-x.py:16:17: ADP004" in out and "model.py:16:17: ADP004" in out and "ADP005" not in out
    assert hook.check(["--select=ADP004", "--select=ADP005"]) == 2
    assert "not a Python file" in capsys.readouterr().err


def test_tool_adopter_config_and_its_exclude_apply_to_named_files(model, capsys):
    Path("pyproject.toml").write_text('[tool.adopter]\nselect = ["ADP004"]\nexclude = ["legacy/*"]\n')
    Path("legacy").mkdir()
    Path("legacy/old.py").write_text(MODEL)
    assert hook.check([model, "legacy/old.py"]) == 1
    out = capsys.readouterr().out
    assert "model.py:16:17: ADP004" in out
    assert "ADP005" not in out and "legacy" not in out
    # only excluded files: nothing to do (the core would otherwise complain about no paths)
    assert hook.check(["legacy/old.py"]) == 0
    assert hook.check(["--no-config", "legacy/old.py"]) == 1


_NO_HEAVY_IMPORTS = textwrap.dedent("""
    import json, sys
    heavy = ("torch", "github", "transformers")
    import adopter.hook.main as hook
    after_import = [m for m in heavy if m in sys.modules]
    rc = hook.check(sys.argv[1:])
    after_check = [m for m in heavy if m in sys.modules]
    print(json.dumps({"rc": rc, "after_import": after_import, "after_check": after_check}))
""")


def test_hook_imports_neither_torch_nor_github(model):
    # a fresh interpreter from the dev environment, where torch and PyGithub are installed
    proc = subprocess.run([sys.executable, "-c", _NO_HEAVY_IMPORTS, model], capture_output=True, text=True,
                          timeout=120)
    result = json.loads(proc.stdout.splitlines()[-1])
    assert result == {"rc": 1, "after_import": [], "after_check": []}, proc.stderr


def test_manifest_matches_the_console_scripts():
    manifest = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    hooks = {h["id"]: h for h in manifest}
    assert set(hooks) == {"adopter", "adopter-fix"}
    for hook_id, entry, target in (("adopter", "adopter-hook", "adopter.process:hook_check"),
                                   ("adopter-fix", "adopter-hook-fix", "adopter.process:hook_fix")):
        h = hooks[hook_id]
        assert h["entry"] == entry and scripts[entry] == target
        assert h["language"] == "python" and h["types_or"] == ["python", "pyi", "jupyter"]
        assert h.get("require_serial", False) is False
        # types_or needs pre-commit 2.9: older ones must refuse the hook, not misread it
        assert tuple(map(int, h["minimum_pre_commit_version"].split("."))) >= (2, 9, 0)


def test_manifest_is_valid():
    proc = subprocess.run([sys.executable, "-m", "pre_commit", "validate-manifest", ".pre-commit-hooks.yaml"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
