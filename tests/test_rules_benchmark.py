"""benchmarks/rules.py runs end to end: the real fix, the patched module against the original,
one row per mode the rule claims, and honest notes for what it does not measure (a smoke test;
the figures themselves are in benchmarks/RESULTS.md, never asserted)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_quick_run_reports_rows_and_notes(tmp_path):
    out = tmp_path / "rows.json"
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "rules.py"), "--quick", "--pairs", "2",
                           "--select", "ADP004,ADP008,ADP013", "--json-out", str(out)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = {(r["rule"], r["mode"]): r for r in json.loads(out.read_text())}
    measured = rows[("ADP008", "inference")]
    assert measured["pairs"] == 2 and math.isfinite(measured["ratio"]) and measured["low"] <= measured["high"]
    assert "claims no gain on cpu" in rows[("ADP004", "-")]["note"]
    assert "not measured on its hardware" in next(r["note"] for k, r in rows.items() if k[0] == "ADP013")
    assert "| ADP008 | inference | cpu |" in proc.stdout and proc.stdout.startswith("torch ")


def test_fewer_than_seven_pairs_need_quick():
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "rules.py"), "--pairs", "3"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "at least 7" in proc.stderr
