"""The bot with verification and benchmarks on (the real ``adopter.verify`` on CPU torch).

Timing on a shared runner is what it is: the patch is either proposed (verified, not slower)
and the pull request's table carries its measured ratios and the hardware, or it was slower
here and is left out, listed as slower, with nothing pushed.  Both are checked as they come.
"""

from __future__ import annotations

import json

import pytest

from conftest import MODEL_V1, PYPROJECT, needs_synth, verify_available

FAST_BENCH = PYPROJECT + """
[tool.adopter.verify]
min-run-time = 0.05
benchmark-sizes = { batch = 2, seq = 32, hidden = 64, ffn = 128 }
"""


@needs_synth
@pytest.mark.skipif(verify_available() is not None, reason=verify_available() or "")
def test_verified_and_benchmarked_patch_in_the_pull_request(world, fake_github):
    world.push({"pyproject.toml": FAST_BENCH}, "init")
    before, after = world.push({"models/bert.py": MODEL_V1}, "add bert")
    # verify and benchmark default to true; a subprocess keeps torch out of the test worker
    run = world.run_bot(fake_github, before, after, subprocess_run=True)
    assert run.rc == 0, run.text
    rows = json.loads(open(run.outputs["results-file"]).read())["rows"]
    (row,) = [r for r in rows if r["rule"] == "ADP005"]
    assert row["verified"] == "yes" and row["max_abs_diff"] is not None and row["max_abs_diff"] < 1e-4
    assert row["forward_ratio"] and row["forward_backward_ratio"] and row["memory_ratio"]
    assert row["device"].startswith("CPU: ")
    # ADP005 helps on CUDA: measured on this CPU runner it is verified and proposed, and its
    # figures are listed as not measured on its hardware, never as a speed-up or a slowdown
    assert row["status"] == "proposed" and row["on_hardware"] is False
    (post,) = fake_github.calls("POST", r"/pulls$")
    body = post.body["body"]
    table_row = next(line for line in body.splitlines() if line.startswith("| ADP005"))
    assert "yes, max abs diff" in table_row and "CPU: " in table_row
    assert "not measured on its hardware (cuda:training, cuda:inference)" in table_row
    assert "faster" not in table_row and "slower" not in table_row
    assert "Measured on: CPU: " in body
    assert "dropout_add_layer_norm(" in world.origin_file("adopter/main", "models/bert.py")
