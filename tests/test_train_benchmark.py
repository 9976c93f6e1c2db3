"""benchmarks/train.py's prepare-here, train-there split and its flat rows, on the CPU.

A lent GPU has little time and none of Adopter's dependencies, so the patched variants are made
here (``--prepare``, the real ``adopter fix``) and only trained there (``--prepared``); the rows
file is what the GPU run leaves behind.  Tiny ResNet, two dtypes, one timed step.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("transformers")

REPO = Path(__file__).resolve().parent.parent
TRAIN = REPO / "benchmarks" / "train.py"


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(TRAIN), *args], capture_output=True, text=True, cwd=REPO,
                          timeout=600)


def test_prepared_variants_train_and_leave_flat_rows(tmp_path):
    prepared = tmp_path / "prep"
    proc = run("--device", "cpu", "--prepare", str(prepared), "--models", "resnet")
    assert proc.returncode == 0, proc.stderr
    manifest = json.loads((prepared / "manifest.json").read_text())
    entry = manifest["models"]["resnet"]
    assert entry["rules"], "ResNet's conv-batchnorm and the trainer's AdamW are fixable"
    assert set(entry["variants"]) == {"vanilla", *entry["rules"], *(["all"] if len(entry["rules"]) > 1 else [])}
    def texts(label):
        return {name: (prepared / stored).read_text() for name, stored in entry["variants"][label].items()}

    for label in entry["rules"]:
        assert texts(label) != texts("vanilla"), f"{label} changed neither file"

    rows_path = tmp_path / "rows.json"
    proc = run("--device", "cpu", "--prepared", str(prepared), "--models", "resnet", "--dtype", "float32,bfloat16",
               "--steps", "1", "--warmup", "0", "--threads", "1", "--rows-out", str(rows_path))
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(rows_path.read_text())
    keys = {"model", "variant", "dtype", "samples_per_s", "peak_mem_bytes", "device", "torch"}
    assert all(keys <= set(r) for r in rows)
    seen = {(r["variant"], r["dtype"]) for r in rows}
    for dtype in ("float32", "bfloat16"):
        assert ("vanilla", dtype) in seen and all((rule, dtype) in seen for rule in entry["rules"])
    assert not any(r["variant"] == "vanilla-again" for r in rows)  # folded into the vanilla row
    assert all(r["samples_per_s"] > 0 for r in rows), [r for r in rows if "error" in r]
    assert all("vanilla_again_samples_per_s" in r for r in rows if r["variant"] == "vanilla")
    assert "### float32" in proc.stdout and "### bfloat16" in proc.stdout


def test_budget_marks_variants_not_run(tmp_path):
    prepared = tmp_path / "prep"
    assert run("--device", "cpu", "--prepare", str(prepared), "--models", "resnet").returncode == 0
    rows_path = tmp_path / "rows.json"
    proc = run("--device", "cpu", "--prepared", str(prepared), "--models", "resnet", "--steps", "1",
               "--warmup", "0", "--budget-s", "0.001", "--rows-out", str(rows_path))
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(rows_path.read_text())
    assert rows and all(r["error"].startswith("not run") and r["samples_per_s"] is None for r in rows)


def test_bad_arguments_are_reported_without_a_traceback():
    proc = run("--device", "cpu", "--dtype", "float8", "--prepare", "/nonexistent")
    assert proc.returncode == 2 and "float8" in proc.stderr and "Traceback" not in proc.stderr
    proc = run("--device", "cpu", "--models", "bert,nonsense", "--prepare", "/nonexistent")
    assert proc.returncode == 2 and "nonsense" in proc.stderr and "Traceback" not in proc.stderr
