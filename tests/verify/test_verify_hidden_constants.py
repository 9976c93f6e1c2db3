"""Verify draws afresh the constants a fresh module holds that would hide a wrong patch.

A zero gate multiplies the attention by 0 (every gradient inside it is 0 on both sides), and
batch-norm statistics at their start (mean 0, variance 1) make an eval fold that drops the mean
agree with the original.  Each stand-in patch below is wrong in a way only those constants hid:
on the code before ``draw_constants`` both passed.
"""

from types import SimpleNamespace

import pytest
import torch
from torch import nn

from adopter.config import Config
from adopter.verify import verify_file
from adopter.verify.build import draw_constants
from adopter.verify.result import FAIL, PASS

GATED = '''import torch
from torch import nn


class GatedAttention(nn.Module):
    def __init__(self, dim: int = 16, heads: int = 2):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)
        self.gamma = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        b, n, c = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        scores = (q @ k.transpose(-2, -1)) * (c // self.heads) ** -0.5
        out = scores.softmax(dim=-1) @ v
        return x + self.gamma * self.proj(out.transpose(1, 2).reshape(b, n, c))
'''

CONV_BN = '''import torch
from torch import nn


class Stem(nn.Module):
    def __init__(self, channels: int = 4):
        super().__init__()
        self.conv = nn.Conv2d(3, channels, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(channels)

    def forward(self, x):
        return torch.relu(self.bn(self.conv(x)))
'''

# an eval fold that forgets the running mean (training runs the layers as written)
WRONG_FOLD = ("self.bn(self.conv(x))",
              "(self.bn(self.conv(x)) if self.training else self.conv(x) * (self.bn.weight / torch.sqrt("
              "self.bn.running_var + self.bn.eps))[None, :, None, None] + self.bn.bias[None, :, None, None])")
# the same fold with the mean: a correct patch, which must still pass
RIGHT_FOLD = ("self.bn(self.conv(x))",
              "(self.bn(self.conv(x)) if self.training else (self.conv(x) - self.bn.running_mean[None, :, None, None])"
              " * (self.bn.weight / torch.sqrt(self.bn.running_var + self.bn.eps))[None, :, None, None]"
              " + self.bn.bias[None, :, None, None])")


def _fix(old, new, rule):
    def fix(text, path, rules, package=None):
        if not any(r.id == rule for r in rules) or old not in text:
            return SimpleNamespace(text=text, applied=[], skipped=[], error=None)
        return SimpleNamespace(text=text.replace(old, new), applied=[], skipped=[], error=None)

    return fix


def _verify(tmp_path, source, rule, edit, all_rules, quick):
    path = tmp_path / "model.py"
    path.write_text(source)
    rules = [r for r in all_rules if r.id == rule]
    return [r for r in verify_file(str(path), rules, Config(), benchmark=False, fix=_fix(*edit, rule), options=quick)
            if not r.combined]


def test_a_patch_whose_backward_is_wrong_fails_behind_a_zero_gate(tmp_path, all_rules, quick):
    # forward unchanged, gradients into the keys cut: behind gamma = 0 every gradient inside
    # the attention is 0 on both sides, so only drawing gamma afresh shows it
    edit = ("out = scores.softmax(dim=-1) @ v", "out = torch.nn.functional.scaled_dot_product_attention(q, k.detach(), v)")
    results = _verify(tmp_path, GATED, "ADP010", edit, all_rules, quick)
    assert [r.verdict for r in results] == [FAIL], results
    assert "gradients" in results[0].reason


def test_a_correct_patch_behind_a_zero_gate_passes(tmp_path, all_rules, quick):
    edit = ("out = scores.softmax(dim=-1) @ v", "out = torch.nn.functional.scaled_dot_product_attention(q, k, v)")
    results = _verify(tmp_path, GATED, "ADP010", edit, all_rules, quick)
    assert [r.verdict for r in results] == [PASS], results


def test_an_eval_fold_that_drops_the_running_mean_fails(tmp_path, all_rules, quick):
    results = _verify(tmp_path, CONV_BN, "ADP007", WRONG_FOLD, all_rules, quick)
    assert [r.verdict for r in results] == [FAIL], results
    assert "eval" in results[0].reason


def test_an_eval_fold_with_the_running_mean_passes(tmp_path, all_rules, quick):
    results = _verify(tmp_path, CONV_BN, "ADP007", RIGHT_FOLD, all_rules, quick)
    assert [r.verdict for r in results] == [PASS], results


class _Mixed(nn.Module):
    def __init__(self):
        super().__init__()
        self.gate = nn.Parameter(torch.zeros(3))
        self.table = nn.Parameter(torch.zeros(4, 5))
        self.drawn = nn.Parameter(torch.randn(2, 2))
        self.norm = nn.LayerNorm(6)
        self.bn = nn.BatchNorm1d(6)
        self.trained = nn.BatchNorm1d(6)
        self.register_buffer("causal", torch.full((3, 3), float("-inf")).triu(1))
        self.register_buffer("zeros", torch.zeros(3))
        with torch.no_grad():
            self.trained.running_mean.fill_(0.5)
            self.trained.weight.fill_(2.0)


def test_draw_constants_draws_only_the_constants_that_hide():
    module = _Mixed()
    before = {k: v.clone() for k, v in module.state_dict().items()}
    count = draw_constants(module)
    after = module.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed == {"gate", "table", "norm.weight", "norm.bias", "bn.weight", "bn.bias", "bn.running_mean",
                       "bn.running_var", "trained.bias"}
    assert count == len(changed)
    assert bool((after["bn.running_var"] >= 0.5).all()) and bool((after["bn.running_var"] <= 2.0).all())
    assert float((after["norm.weight"] - 1).abs().max()) < 1.0  # near 1, not 0: the norm still normalises
    # (a zero bias is a zero parameter wherever it is); trained or drawn values, a mask and a
    # buffer of zeros are left as built
    assert torch.equal(after["trained.running_mean"], before["trained.running_mean"])
    assert torch.equal(after["trained.weight"], before["trained.weight"])
    assert torch.equal(after["causal"], before["causal"]) and torch.equal(after["zeros"], before["zeros"])
    # deterministic: two fresh modules draw the same values
    again = _Mixed()
    draw_constants(again)
    for key in changed:
        torch.testing.assert_close(again.state_dict()[key], after[key], rtol=0, atol=0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_draw_constants_keeps_dtype(dtype):
    module = _Mixed().to(dtype)
    draw_constants(module)
    assert all(p.dtype == dtype for p in module.parameters())
