"""The scale benchmark's pipeline (benchmarks/scale.py) over a slice of real code: 30 files
spread over the installed transformers package (the pinned dev dependency, read as text,
never imported), check + fix + compile + second fix, over a process pool of two."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "scale.py"

pytestmark = pytest.mark.scale


@pytest.fixture(scope="module")
def scale():
    spec = importlib.util.spec_from_file_location("benchmark_scale", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["benchmark_scale"] = module
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop("benchmark_scale", None)


def _transformers_root() -> Path | None:
    spec = importlib.util.find_spec("transformers")
    return Path(spec.origin).parent if spec and spec.origin else None


@pytest.mark.skipif(_transformers_root() is None, reason="needs the transformers dev dependency")
def test_slice_of_real_files_has_no_internal_error_broken_or_unstable_fix(scale, tmp_path, capsys):
    root = _transformers_root() / "models"
    out = tmp_path / "summary.json"
    code = scale.main(["--src", f"tf={root}", "--limit", "30", "--jobs", "2", "--no-progress",
                       "--cache", str(tmp_path), "--json-out", str(out)])
    printed = capsys.readouterr().out
    summary = json.loads(out.read_text())
    total = summary["total"]
    assert total["files"] == 30 and total["lines"] > 10_000
    assert (total["internal_errors"], total["broken_fixes"], total["second_run_changes"]) == (0, 0, 0), printed
    assert total["timeouts"] == 0 and total["input_errors"] == 0
    assert total["findings_total"] > 0 and total["fixes_applied"] > 0  # the slice exercises fix, not only check
    assert code == 0 and "OK: 0 internal errors" in printed
    # the copies were really rewritten, and still compile
    fixed = [p for p in (tmp_path / "scale" / "tf").rglob("*.py") if "from adopter_kernels import" in p.read_text()]
    assert fixed
    for path in fixed:
        compile(path.read_bytes(), str(path), "exec")


def test_spread_and_failure_count(scale):
    assert scale.spread(list(range(10)), 3) == [0, 3, 6]
    assert scale.spread(list(range(3)), 10) == [0, 1, 2]
    record = {"path": "/x/scale/a/m.py", "corpus": "a", "bytes": 10, "lines": 2, "compiles": True, "findings": {"ADP004": 1},
              "check_error": None, "fix_error": None, "applied": 1, "not_fixed": {}, "internal": [],
              "timeouts": [], "broken": None, "second_run": None, "seconds": 0.1, "rss_kb": 1000}
    result = {"records": [record], "wall_s": 1.0, "cpu_s": 1.0, "jobs": 1, "budget_s": 10.0,
              "rules": ["ADP004"], "peak_rss_mb": 1.0}
    assert scale.failures(scale.summarise(result)) == 0
    for key, value in (("internal", ["fix: internal error: KeyError: 'x'"]), ("broken", "SyntaxError: x"),
                       ("second_run", "a second fix changes it again (1 more)")):
        bad = {**result, "records": [{**record, key: value}]}
        summary = scale.summarise(bad)
        assert scale.failures(summary) == 1
        assert "a/m.py" in scale.report(summary)
