"""``adopter verify`` on the command line: formats, exit codes, and running without torch."""

import json
import subprocess
import sys
from types import SimpleNamespace

from adopter.cli import main


def test_json_output_and_exit_0(toy, capsys):
    code = main(["verify", str(toy / "toy_blocks.py"), "--select", "ADP004,ADP007", "--no-benchmark",
                 "--output-format", "json", "--no-config"])
    out = capsys.readouterr().out
    data = json.loads(out)
    assert code == 0
    rows = data["results"]
    assert {(r["rule"], r["class"], r["verdict"]) for r in rows} >= {("ADP004", "Mixer", "pass"),
                                                                     ("ADP007", "ConvStem", "pass")}
    for row in rows:
        assert row["forward_ratio"] is None and row["device"] == "cpu"
        assert row["path"].endswith("toy_blocks.py") and row["line"] > 0


def test_what_the_checked_code_prints_leaves_the_json_report_alone(toy, capsys):
    """A module that prints a banner when imported and shapes in its forward: the prints go to
    stderr, stdout is the JSON report alone."""
    path = toy / "toy_blocks.py"
    text = path.read_text()
    text = text.replace("import torch\n", "import torch\nprint('logging into ~/logs/console.log')\n", 1)
    text = text.replace("F.softmax(scores, dim=-1)", "(print(scores.shape), F.softmax(scores, dim=-1))[1]")
    assert "print(scores.shape)" in text
    path.write_text(text)
    code = main(["verify", str(path), "--select", "ADP004", "--no-benchmark", "--output-format", "json",
                 "--no-config"])
    captured = capsys.readouterr()
    data = json.loads(captured.out)
    assert code == 0 and [r["verdict"] for r in data["results"]] == ["pass"]
    assert "logging into" in captured.err and "torch.Size" in captured.err


def test_text_table(toy, capsys):
    code = main(["verify", str(toy / "toy_blocks.py"), "--select", "ADP007", "--no-benchmark", "--no-config"])
    out = capsys.readouterr().out
    assert code == 0
    assert "ConvStem" in out and "pass" in out and "1 pass, 0 fail, 0 skip" in out


def test_failing_patch_exits_1(toy, capsys, monkeypatch):
    import adopter.verify.core as core

    def bad_fix(text, path, rules, package=None):
        text = text.replace("F.softmax(scores, dim=-1)", "bad_kernels.softmax(scores)")
        text = text.replace("import torch\n", "import torch\nimport bad_kernels\n", 1)
        return SimpleNamespace(text=text, applied=[], skipped=[], error=None)

    monkeypatch.setattr(core, "_default_fix", lambda: bad_fix)
    code = main(["verify", str(toy / "toy_blocks.py"), "--select", "ADP004", "--no-benchmark",
                 "--output-format", "json", "--no-config"])
    data = json.loads(capsys.readouterr().out)
    assert code == 1
    assert [r["verdict"] for r in data["results"]] == ["fail"]


def test_unreadable_file_exits_2(tmp_path, capsys):
    broken = tmp_path / "broken.py"
    broken.write_text("def f(:\n    pass\n")
    code = main(["verify", str(broken), "--no-benchmark", "--no-config", "--select", "ALL"])
    captured = capsys.readouterr()
    assert code == 2 and "syntax error" in captured.err


def test_without_torch_the_error_is_one_clean_line(tmp_path, toy):
    script = (
        "import sys\n"
        "sys.modules['torch'] = None\n"  # makes `import torch` raise ImportError
        "from adopter.verify import VerifyResult\n"
        "assert VerifyResult('ADP004', 'x.py', 1, 'C', 'pass', '').as_dict()['class'] == 'C'\n"
        "from adopter.cli import main\n"
        f"sys.exit(main(['verify', {str(toy / 'toy_blocks.py')!r}]))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "adopter verify needs torch" in lines[0]
