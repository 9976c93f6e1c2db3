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
# one thread: two intra-op threads on a runner whose cores are taken stall at their barrier,
# and a sub-millisecond forward then measures as long as the 20 ms the test is built on
threads = 1
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


# A user rule that helps inference (forward) only. Its patch is faster in training and slower in
# inference, by construction and not by machine noise: the original function sleeps 20 ms when
# gradients are on, the kernel sleeps 20 ms when they are off. Every mode the table shows is gated,
# so the patch is left out for its forward pass, and the pull request says so.
OPS = '''\
import time

import torch


def slow_scale(x):
    """The original: 20 ms more in a training step (gradients on)."""
    if torch.is_grad_enabled():
        time.sleep(0.02)
    return x * 2.0


def fast_scale(x):
    """The "kernel": 20 ms more in inference (no gradients)."""
    if not torch.is_grad_enabled():
        time.sleep(0.02)
    return x * 2.0
'''

BLOCK = '''\
import torch
from torch import nn

from models.ops import slow_scale


class Scale(nn.Module):
    def __init__(self, hidden):
        super().__init__()
        self.proj = nn.Linear(hidden, hidden)

    def forward(self, hidden_states):
        hidden_states = self.proj(hidden_states)
        hidden_states = slow_scale(hidden_states)
        return hidden_states
'''

USER_RULE = '''\
id = "USR001"
name = "fast-scale"
summary = "Scaling by two through models.ops.fast_scale."
helps = ["cpu:inference"]

[kernel]
package = "models"
import = "models.ops.fast_scale"

[forward]
source = "$y = models.ops.slow_scale($x)"
target = "$y = models.ops.fast_scale($x)"
'''


@needs_synth
@pytest.mark.skipif(verify_available() is not None, reason=verify_available() or "")
def test_an_inference_patch_slower_in_forward_is_left_out_though_training_got_faster(world, fake_github):
    config = FAST_BENCH + '\n[tool.adopter]\nrule-paths = ["adopter_rules"]\nselect = ["ADP005", "USR001"]\n'
    world.push({"pyproject.toml": config, "adopter_rules/USR001.toml": USER_RULE, "models/__init__.py": "",
                "models/ops.py": OPS}, "init")
    before, after = world.push({"models/block.py": BLOCK, "models/bert.py": MODEL_V1}, "add blocks")
    run = world.run_bot(fake_github, before, after, subprocess_run=True, select="")  # [tool.adopter] select
    assert run.rc == 0, run.text
    rows = {r["rule"]: r for r in json.loads(open(run.outputs["results-file"]).read())["rows"]}
    user = rows["USR001"]
    assert user["verified"] == "yes" and user["on_hardware"] is True
    # 20 ms of sleep on a sub-millisecond module: far beyond a loaded runner's noise, either way
    assert user["forward_ratio"] < 0.8 and user["forward_backward_ratio"] > 1.0
    assert user["status"] == "slower" and user["reason"].startswith("forward took ")
    assert "forward+backward" not in user["reason"]
    (post,) = fake_github.calls("POST", r"/pulls$")
    body = post.body["body"]
    left = body.split("### Left out (1)")[1]
    row = next(line for line in left.splitlines() if line.startswith("| USR001"))
    assert "slower on this runner: left out \\(forward took " in row and "beyond the timing noise of ±" in row
    assert "(slower ±" in row  # both modes shown, with the noise
    assert f"{user['forward_backward_ratio']:.2f}×" in row
    # the patch is not in the pull request; ADP005's is, listed as not measured on its hardware
    assert world.origin_file("adopter/main", "models/block.py") == BLOCK.rstrip("\n")
    assert "dropout_add_layer_norm(" in world.origin_file("adopter/main", "models/bert.py")
    assert "not measured on its hardware" in next(line for line in body.splitlines() if line.startswith("| ADP005"))
    # how it was measured: torch version, dtype, shapes, repeats, spread
    assert f"torch {user['torch']}" in body and user["torch"][:1].isdigit()
    assert "float32" in body and "float[" in user["inputs"] and "interleaved rounds per side" in body
    assert "timing spread ±" in body
    # why each rule helps, linked to its documentation (the user's rule file in the repository)
    assert "- **USR001** fast-scale: Scaling by two through models.ops.fast\\_scale. Helps on cpu:inference." in body
    assert f"/blob/{after}/adopter_rules/USR001.toml)" in body
    assert "- **ADP005** dropout-add-layernorm: " in body
