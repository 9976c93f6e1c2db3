"""verify19: a guessed call verify's memory ceiling refuses is retried with fewer tokens.

Attention over a map's positions builds scores quadratic in them: monai-generative's
AttentionBlock, 96 heads over a guessed [2, 96, 96, 32] map, asked for 7.2 GB and was a skip at
the ceiling, though its weights are small.  The call is now retried with its token axes shortened
(the map's sides, a sequence's positions; widths and channels kept), and the verdict says so.
"""

import torch
from stand_in import adp010_verdicts

from adopter.verify import memory
from adopter.verify.build import Call
from adopter.verify.inputs import memory_repairs, repairs, shrunk_inputs
from adopter.verify.result import FAIL, PASS

SOURCE = '''import math

import torch
from torch import nn


class MapAttention(nn.Module):
    def __init__(self, spatial_dims: int, num_channels: int, head_channels: int | None = {head_channels}, groups: int = 32):
        super().__init__()
        self.spatial_dims = spatial_dims
        self.heads = num_channels // head_channels if head_channels is not None else 1
        self.scale = 1 / math.sqrt(num_channels / self.heads)
        self.norm = nn.GroupNorm(groups, num_channels)
        self.to_q = nn.Linear(num_channels, num_channels)
        self.to_k = nn.Linear(num_channels, num_channels)
        self.to_v = nn.Linear(num_channels, num_channels)
        self.out = nn.Linear(num_channels, num_channels)

    def split(self, t):
        b, n, c = t.shape
        return t.reshape(b, n, self.heads, c // self.heads).permute(0, 2, 1, 3).reshape(b * self.heads, n, c // self.heads)

    def forward(self, x):
        b, c, h, w = x.shape
        t = self.norm(x).view(b, c, h * w).transpose(1, 2)
        q, k, v = self.split(self.to_q(t)), self.split(self.to_k(t)), self.split(self.to_v(t))
        scores = torch.bmm(q, k.transpose(-1, -2)) * self.scale
        attn = scores.softmax(dim=-1)
        y = torch.bmm(attn, v)
        y = y.reshape(b, self.heads, h * w, c // self.heads).permute(0, 2, 1, 3).reshape(b, h * w, c)
        return x + self.out(y).transpose(1, 2).view(b, c, h, w)
'''

SITE = ('        scores = torch.bmm(q, k.transpose(-1, -2)) * self.scale\n'
        '        attn = scores.softmax(dim=-1)\n'
        '        y = torch.bmm(attn, v)\n')
RIGHT = ('        y = torch.nn.functional.scaled_dot_product_attention(q, k, v, scale=self.scale)\n'
         '        attn = None\n')
HALVED = ('        y = torch.nn.functional.scaled_dot_product_attention(q, k, v, scale=self.scale / 2)\n'
          '        attn = None\n')

# one channel a head: as many heads as channels.  Verify's guessed input is a [2, 96, 96, 32] map
# (96 channels, for 32 groups): 2 * 96 heads * 3072**2 float32 scores = 7.2 GB, far above a 1.5 GB
# ceiling; over an 8 x 8 map, 3 MB.  With one head of 96 channels the guess fits (75 MB).
MANY = "1"


def test_a_refused_call_passes_with_fewer_tokens_and_says_so(tmp_path, all_rules, quick, monkeypatch):
    monkeypatch.setenv(memory.ENV, "1.5")
    source = SOURCE.replace("{head_channels}", MANY)
    (result,) = adp010_verdicts(tmp_path / "map_attention.py", source, (SITE, RIGHT), all_rules, quick)
    assert result.verdict == PASS, result.reason
    assert "fewer tokens" in result.reason and "memory ceiling" in result.reason


def test_a_wrong_patch_still_fails_on_the_shrunk_inputs(tmp_path, all_rules, quick, monkeypatch):
    monkeypatch.setenv(memory.ENV, "1.5")
    source = SOURCE.replace("{head_channels}", MANY)
    (result,) = adp010_verdicts(tmp_path / "map_attention.py", source, (SITE, HALVED), all_rules, quick)
    assert result.verdict == FAIL, result.reason


def test_a_call_that_fits_is_not_shrunk(tmp_path, all_rules, quick, monkeypatch):
    monkeypatch.setenv(memory.ENV, "1.5")
    source = SOURCE.replace("{head_channels}", "None")
    (result,) = adp010_verdicts(tmp_path / "map_attention.py", source, (SITE, RIGHT), all_rules, quick)
    assert result.verdict == PASS, result.reason
    assert "fewer tokens" not in result.reason


def test_only_token_axes_are_shortened():
    image = torch.randn(2, 96, 96, 32)
    tokens = torch.randn(2, 500, 64)
    mask = torch.zeros(2, 500, 500)
    per_sample = torch.randn(2, 64)
    call = Call((image, tokens), {"mask": mask, "cond": per_sample})
    first, second = memory_repairs(call)
    assert [list(t.shape) for t in first.leaves()] == [[2, 96, 8, 8], [2, 8, 64], [2, 8, 500], [2, 64]]
    assert [list(t.shape) for t in second.leaves()] == [[2, 96, 24, 8], [2, 125, 64], [2, 125, 500], [2, 64]]
    assert bool((first.kwargs["mask"] == 0).all())  # an additive mask keeps everything
    assert first.kwargs["cond"] is per_sample
    assert "[2, 96, 96, 32] -> [2, 96, 8, 8]" in shrunk_inputs(first.args)
    assert shrunk_inputs(call.args) == ""


def test_other_errors_ask_for_no_fewer_tokens():
    call = Call((torch.randn(2, 8, 16, 16),), {})
    assert memory_repairs(Call((torch.randn(2, 8),), {})) == []
    refused = RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 7247757312 bytes")
    assert [list(t.shape) for t in repairs(call, refused)[0].leaves()] == [[2, 8, 8, 8]]
    for other in repairs(call, RuntimeError("mat1 and mat2 shapes cannot be multiplied (2x8 and 4x4)")):
        assert not shrunk_inputs(other.args)


def test_a_shrunk_mask_is_sliced_keeping_its_pattern_and_two_tokens():
    # a causal mask redrawn keep-all let a patch that drops the mask pass on the shrunk call
    causal = torch.ones(2, 1, 32, 32, dtype=torch.bool).tril()
    additive = torch.zeros(2, 1, 32, 32).masked_fill(~causal, float("-inf"))
    first, second = memory_repairs(Call((torch.randn(2, 4, 32, 5),), {"mask": causal, "bias": additive}))
    assert torch.equal(first.kwargs["mask"], torch.ones(2, 1, 8, 8, dtype=torch.bool).tril())
    assert torch.equal(first.kwargs["bias"], additive[:, :, :8, :8])
    assert "a mask was cut to its first tokens" in shrunk_inputs(first.kwargs)
    assert "a mask was cut" not in shrunk_inputs(first.args)
    # a quarter of 5 tokens is 1: an axis keeps at least 2 (one token makes every softmax 1)
    assert list(second.args[0].shape) == [2, 4, 8, 2]
