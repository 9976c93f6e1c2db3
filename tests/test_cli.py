"""The `adopter` command as a user runs it: real files, real subprocesses for exit codes."""

import json
import subprocess
import sys
import textwrap

import pytest

from adopter.cli import main

MODEL = textwrap.dedent("""
    import torch.nn.functional as F
    from torch import nn


    class Out(nn.Module):
        def __init__(self):
            super().__init__()
            self.dropout = nn.Dropout(0.1)
            self.norm = nn.LayerNorm(8)

        def forward(self, h, r):
            probs = F.softmax(h, dim=-1)
            return self.norm(self.dropout(probs) + r)
""")


@pytest.fixture
def project(tmp_path):
    (tmp_path / "model.py").write_text(MODEL)
    (tmp_path / "clean.py").write_text("def f(x):\n    return x + 1\n")
    return tmp_path


def run(*args, cwd=None):
    proc = subprocess.run([sys.executable, "-m", "adopter.cli", *args], capture_output=True, text=True, cwd=cwd)
    return proc.returncode, proc.stdout, proc.stderr


def test_check_reports_findings_and_exits_1(project):
    # neither rule is on by default: softmax (ADP004) never pays and is not shown;
    # dropout-add-layernorm (ADP005) claims CUDA only: shown as informational (exit 0, not
    # fixed), and on when that target is chosen
    code, out, err = run("check", str(project / "model.py"))
    assert code == 0
    assert out.strip().splitlines() == [
        f"{project / 'model.py'}:14:26: ADP005 dropout-add-layernorm: dropout -> residual add -> LayerNorm can be "
        "fused (adopter_kernels.dropout_add_layer_norm) [info: off by default until measured to pay here "
        "(benchmarks/rules.py): on with --target cuda or --select ADP005]",
    ]
    assert "Found 0 opportunities (0 fixable with `adopter fix`) and 1 informational" in err
    assert run("fix", "--diff", str(project / "model.py"))[:2] == (0, "")  # fix leaves it
    code, out, err = run("check", "--target", "cuda", str(project / "model.py"))
    assert code == 1
    assert out.strip().splitlines() == [
        f"{project / 'model.py'}:14:26: ADP005 dropout-add-layernorm: dropout -> residual add -> LayerNorm can be "
        "fused (adopter_kernels.dropout_add_layer_norm)",
    ]
    code, out, err = run("check", "--select", "ADP004,ADP005", str(project / "model.py"))
    assert code == 1
    lines = out.strip().splitlines()
    assert lines == [
        f"{project / 'model.py'}:13:17: ADP004 softmax: last-dimension softmax can use adopter_kernels.softmax",
        f"{project / 'model.py'}:14:26: ADP005 dropout-add-layernorm: dropout -> residual add -> LayerNorm can be "
        "fused (adopter_kernels.dropout_add_layer_norm)",
    ]
    assert "Traceback" not in err


def test_clean_file_exits_0(project):
    assert run("check", str(project / "clean.py"))[0] == 0


def test_json_output_is_stable(project, capsys):
    assert main(["check", "--select", "ADP004,ADP005", "--output-format", "json", str(project)]) == 1
    data = json.loads(capsys.readouterr().out)
    assert {d["rule"] for d in data} == {"ADP004", "ADP005"}
    for item in data:
        assert set(item) >= {"rule", "name", "path", "line", "column", "end_line", "end_column", "message", "fixable"}
        assert item["fixable"] is True


def test_sarif_and_github_formats(project, capsys):
    main(["check", "--select", "ADP004,ADP005", "--output-format", "sarif", str(project / "model.py")])
    sarif = json.loads(capsys.readouterr().out)
    assert sarif["version"] == "2.1.0"
    results = sarif["runs"][0]["results"]
    assert [r["ruleId"] for r in results] == ["ADP004", "ADP005"]
    assert results[0]["locations"][0]["physicalLocation"]["region"]["startLine"] == 13
    main(["check", "--select", "ADP004,ADP005", "--output-format", "github", str(project / "model.py")])
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("::notice file=") and ",line=13," in out[0]


def test_select_and_ignore(project, capsys):
    main(["check", "--select", "ADP005", "--output-format", "json", str(project)])
    assert [d["rule"] for d in json.loads(capsys.readouterr().out)] == ["ADP005"]
    main(["check", "--ignore", "ADP005,ADP004", "--output-format", "json", str(project)])
    assert json.loads(capsys.readouterr().out) == []
    assert main(["check", "--select", "ADP999", str(project)]) == 2
    assert "unknown rule" in capsys.readouterr().err


def test_suppression_comments(project, capsys):
    text = MODEL.replace("dim=-1)", "dim=-1)  # adopter: ignore[ADP004]")
    text = text.replace("+ r)", "+ r)  # adopter: ignore")
    (project / "model.py").write_text(text)
    assert main(["check", str(project / "model.py")]) == 0


def test_pyproject_config(project, capsys):
    (project / "pyproject.toml").write_text(
        '[tool.adopter]\ntarget = "cuda"\nignore = ["ADP004"]\nexclude = ["skipped/"]\n')
    (project / "skipped").mkdir()
    (project / "skipped" / "other.py").write_text(MODEL)
    main(["check", "--output-format", "json", str(project)])
    data = json.loads(capsys.readouterr().out)
    assert [d["rule"] for d in data] == ["ADP005"]
    assert all("skipped" not in d["path"] for d in data)


def test_bad_input_is_reported_and_others_still_checked(project):
    (project / "broken.py").write_text("def f(:\n    pass\n")
    (project / "latin.py").write_bytes(b"x = '\xff\xfe'\n")
    (project / "nul.py").write_bytes(b"x = 1\x00\n")
    code, out, err = run("check", "--target", "cuda", str(project), str(project / "missing.py"))
    assert code == 2
    assert "ADP005" in out  # model.py still reported
    assert "broken.py: error: syntax error at 1:7" in err
    assert "latin.py: error: cannot determine the encoding" in err
    assert "nul.py: error:" in err
    assert "missing.py: error: no such file or directory" in err
    assert "Traceback" not in err


def test_directory_without_python(tmp_path):
    code, _, err = run("check", str(tmp_path))
    assert code == 2 and "no Python files" in err


def test_rules_list_and_explain(capsys):
    assert main(["rules"]) == 0
    listed = capsys.readouterr().out
    assert all(f"ADP00{i}" in listed for i in range(1, 10))
    assert main(["rules", "ADP005"]) == 0
    explained = capsys.readouterr().out
    assert "Forward pattern:" in explained and "Before:" in explained and "After:" in explained
    assert main(["rules", "nope"]) == 2


def test_malformed_user_rule_exits_2_with_position(project, tmp_path_factory):
    folder = tmp_path_factory.mktemp("rules")
    (folder / "x.toml").write_text(
        'id = "USR001"\nname = "x"\nsummary = "s"\n[kernel]\npackage = "p"\nimport = "p.k"\n'
        '[forward]\nsource = "$y = f($x"\n'
    )
    code, out, err = run("check", "--rules-dir", str(folder), str(project / "model.py"))
    assert code == 2
    assert err.startswith(f"{folder / 'x.toml'}:8:") and "expected" in err and "Traceback" not in err


def test_check_writes_nothing(project):
    before = (project / "model.py").read_bytes()
    run("check", str(project))
    assert (project / "model.py").read_bytes() == before


def test_structure_command(project):
    code, out, _ = run("structure", str(project / "model.py"), "Out")
    assert code == 0
    assert "self.dropout = torch.nn.Dropout(...)" in out
    assert "torch.nn.functional.softmax(h, dim=-1)" in out
    assert run("structure", str(project / "model.py"), "Nope")[0] == 2


def test_findings_for_another_target_are_informational(project, capsys):
    """ADP005 helps on CUDA only: selected with --target cpu it is shown, marked, not counted
    in the exit code, and never fixed."""
    before = (project / "model.py").read_text()
    assert main(["check", "--select", "ADP005", "--target", "cpu", str(project / "model.py")]) == 0
    captured = capsys.readouterr()
    lines = captured.out.strip().splitlines()
    assert len(lines) == 1 and all("[info: helps on cuda:training, cuda:inference; target is cpu]" in l for l in lines)
    assert "Found 0 opportunities (0 fixable with `adopter fix`) and 1 informational" in captured.err

    assert main(["check", "--select", "ADP005", "--target", "cpu", "--output-format", "json", str(project / "model.py")]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [(d["severity"], d["fixable"]) for d in data] == [("info", False)]
    assert all("target is cpu" in d["informational"] for d in data)

    main(["check", "--select", "ADP005", "--target", "cpu", "--output-format", "sarif", str(project / "model.py")])
    results = json.loads(capsys.readouterr().out)["runs"][0]["results"]
    assert [r["level"] for r in results] == ["none"]
    assert all(r["properties"]["informational"] is True for r in results)

    main(["check", "--select", "ADP005", "--target", "cpu", "--output-format", "github", str(project / "model.py")])
    out = capsys.readouterr().out.splitlines()
    assert all("(informational)" in line and "[info: " in line for line in out)

    assert main(["fix", "--select", "ADP005", "--target", "cpu", str(project / "model.py")]) == 0
    assert (project / "model.py").read_text() == before

    # the same file on the cuda target: real opportunities, exit 1, fixed
    assert main(["check", "--target", "cuda", "--output-format", "json", str(project / "model.py")]) == 1
    assert [d["severity"] for d in json.loads(capsys.readouterr().out)] == ["opportunity"]


def test_config_target_and_mixed_findings(project, capsys):
    (project / "pyproject.toml").write_text('[tool.adopter]\ntarget = "cpu"\nselect = ["ADP005", "ADP011"]\n')
    (project / "norm.py").write_text(textwrap.dedent("""
        import torch


        def norm(x, eps):
            return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps)
    """))
    assert main(["check", "--output-format", "json", str(project)]) == 1  # ADP011 helps on cpu
    data = json.loads(capsys.readouterr().out)
    assert sorted((d["rule"], d["severity"]) for d in data) == [
        ("ADP005", "info"), ("ADP011", "opportunity")]
    assert main(["fix", str(project / "norm.py"), str(project / "model.py")]) == 1
    assert "rms_norm(x, x.shape[-1:], eps=eps)" in (project / "norm.py").read_text()
    assert (project / "model.py").read_text() == MODEL


def test_rules_listing_says_where_each_rule_helps(capsys):
    assert main(["rules"]) == 0
    line = next(l for l in capsys.readouterr().out.splitlines() if l.startswith("ADP011"))
    assert "cuda:train+infer cpu:train+infer" in line and "torch.nn.functional.rms_norm" in line


def test_cuda_only_rule_is_fixed_only_for_the_cuda_target(tmp_path, capsys):
    """ADP013 (Liger, only_on cuda): informational without a target or on cpu, fixed on cuda."""
    rule = next(r for r in __import__("adopter.ruleset", fromlist=["load_rules"]).load_rules() if r.id == "ADP013")
    example = next(e for e in rule.examples if e.after is not None)
    path = tmp_path / "mlp.py"
    path.write_text(example.before)
    for target in ([], ["--target", "cpu"]):
        assert main(["check", "--select", "ADP013", "--output-format", "json", *target, str(path)]) == 0
        data = json.loads(capsys.readouterr().out)
        assert [d["severity"] for d in data] == ["info"]
        assert "runs on cuda only" in data[0]["informational"]
        assert main(["fix", "--no-deps", "--select", "ADP013", *target, str(path)]) == 0
        assert path.read_text() == example.before
    assert main(["fix", "--no-deps", "--select", "ADP013", "--target", "cuda", str(path)]) == 1
    assert path.read_text() == example.after


def test_check_loads_neither_libcst_nor_torch(project):
    """`check` (the pre-commit hook's path) plans fixes to count them, but LibCST costs about
    0.2 s to import and torch far more: neither may be loaded for a check."""
    script = ("import sys\nfrom adopter.cli import main\n"
              f"code = main(['check', '--target', 'cuda', '--select', 'ALL', {str(project / 'model.py')!r}])\n"
              "print(code, 'libcst' in sys.modules, 'torch' in sys.modules)\n")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert proc.stdout.splitlines()[-1] == "1 False False", proc.stderr
