"""The float64 second opinion of a module that casts to float32 itself (nuwa's VQGanAttention).

A position-bias network reads ``self.rel.float()``: in the float64 reference copy the buffer is
float64, the cast makes it float32 again, and the first Linear (float64 weights) raised, so a
patch whose gradients differ from the original's by float32 rounding alone failed with no second
opinion.  The reference run now keeps float64 tensors float64 through such casts
(``compare.kept_double``).  With the tolerance set to exact equality every rounding difference
goes to the second opinion: the right patch passes, patches that drop the small position bias or
cut the keys' gradients fail.
"""


import pytest
import torch
from stand_in import exact_adp010_verdicts

from adopter.verify.compare import kept_double
from adopter.verify.result import FAIL, PASS

SOURCE = '''import torch
import torch.nn.functional as F
from torch import nn


class CastBiasAttention(nn.Module):
    def __init__(self, dim: int = 16, heads: int = 2, tokens: int = 16):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, dim * 3, bias=False)
        self.proj = nn.Linear(dim, dim)
        pos = torch.arange(tokens, dtype=torch.float64)
        self.register_buffer("rel", (pos[:, None] - pos[None, :])[..., None] / tokens, persistent=False)
        self.bias_net = nn.Sequential(nn.Linear(1, 8), nn.SiLU(), nn.Linear(8, heads))

    def forward(self, x):
        b, n, c = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        bias = self.bias_net(self.rel.float()).permute(2, 0, 1)
        sim = q @ k.transpose(-2, -1) * (c // self.heads) ** -0.5
        sim = sim + bias
        attn = sim.softmax(dim=-1)
        out = attn @ v
        return self.proj(out.transpose(1, 2).reshape(b, n, c))
'''

SITE = ("        sim = q @ k.transpose(-2, -1) * (c // self.heads) ** -0.5\n"
        "        sim = sim + bias\n"
        "        attn = sim.softmax(dim=-1)\n"
        "        out = attn @ v\n")
RIGHT = "        out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)\n"
NO_BIAS = "        out = F.scaled_dot_product_attention(q, k, v)\n"
CUT_KEYS = "        out = F.scaled_dot_product_attention(q, k.detach(), v, attn_mask=bias)\n"


def _verify(tmp_path, edit, all_rules, quick):
    return exact_adp010_verdicts(tmp_path / "cast_bias.py", SOURCE, edit, all_rules, quick)


def test_the_right_patch_passes_on_the_second_opinion(tmp_path, all_rules, quick):
    results = _verify(tmp_path, (SITE, RIGHT), all_rules, quick)
    assert [r.verdict for r in results] == [PASS], results
    assert "float64 run" in results[0].reason


@pytest.mark.parametrize("wrong", [NO_BIAS, CUT_KEYS])
def test_wrong_patches_still_fail(tmp_path, all_rules, quick, wrong):
    results = _verify(tmp_path, (SITE, wrong), all_rules, quick)
    assert [r.verdict for r in results] == [FAIL], results


def test_kept_double_leaves_other_casts_alone():
    x64 = torch.ones(2, dtype=torch.float64)
    x16 = torch.ones(2, dtype=torch.float16)
    with kept_double():
        assert x64.float().dtype == torch.float64
        assert x64.to(torch.float32).dtype == torch.float64
        assert x64.to("cpu", torch.float32).dtype == torch.float64
        assert x64.to(dtype=torch.float32).dtype == torch.float64
        assert x16.float().dtype == torch.float32  # only float64 tensors are kept
        assert x64.to(torch.int64).dtype == torch.int64
    assert x64.float().dtype == torch.float32  # put back
