"""An edit in a decode step that reads the cache the module's own earlier call handed back.

local-attention's ``LocalMHA.forward(x, ..., cache=None, return_cache=False)`` attends one new
token over ``cache`` (``if exists(cache): ck, cv = cache; ...``) and hands back ``out, kv`` when
``return_cache`` is set.  No guessed value of ``cache`` is honest, so verify skipped ("the branch
`if exists(cache)` stayed unexercised").  Now a forward flag under which the module returns more
than its output (``if not return_cache: return out``) gives a two-step call: the first with the
flag set, the second with the last position of the input and, as ``cache``, what the first call
handed back -- each module its own.  Both calls' outputs and the gradients through both are
compared.  The fixture's decode step also asserts ``self.causal``, reached with the constructor
switch flipped alongside.
"""

import pytest
from stand_in import stand_in_fix as _fix

from adopter.config import Config
from adopter.verify import verify_file
from adopter.verify.branches import returning_flags
from adopter.verify.result import FAIL, PASS, SKIP

SOURCE = '''import torch
import torch.nn.functional as F
from torch import nn


def exists(v):
    return v is not None


class CachedAttention(nn.Module):
    def __init__(self, dim: int = 16, heads: int = 2, causal: bool = False):
        super().__init__()
        self.heads = heads
        self.causal = causal
        self.scale = (dim // heads) ** -0.5
        self.to_qkv = nn.Linear(dim, dim * 3, bias=False)
        self.to_out = nn.Linear(dim, dim)

    def forward(self, x, cache=None, return_cache=False):
        b, n, c = x.shape
        q, k, v = self.to_qkv(x).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        if exists(cache):
            assert n == 1 and self.causal
            ck, cv = cache
            k = torch.cat((ck, k), dim=-2)
            v = torch.cat((cv, v), dim=-2)
            sim = q @ k.transpose(-2, -1) * self.scale
            attn = sim.softmax(dim=-1)
            out = attn @ v
        else:
            out = v.cumsum(dim=-2)  # (the prompt's path: no attention of its own here)
        kv = torch.stack((k, v))
        out = self.to_out(out.transpose(1, 2).reshape(b, n, c))
        RETURN
'''

WITH_FLAG = SOURCE.replace("        RETURN\n", "        if not return_cache:\n            return out\n        return out, kv\n")
# the same module without a flag that hands the cache back: nothing honest to feed ``cache``
NO_FLAG = SOURCE.replace("        RETURN\n", "        return out\n")

SITE = ("            sim = q @ k.transpose(-2, -1) * self.scale\n"
        "            attn = sim.softmax(dim=-1)\n"
        "            out = attn @ v\n")
RIGHT = "            out = F.scaled_dot_product_attention(q, k, v, scale=self.scale)\n"
NEW_TOKEN_ONLY = "            out = F.scaled_dot_product_attention(q, k[..., -1:, :], v[..., -1:, :], scale=self.scale)\n"
WRONG_SCALE = "            out = F.scaled_dot_product_attention(q, k, v, scale=1.0)\n"


def _verify(tmp_path, source, edit, all_rules, quick):
    path = tmp_path / "cached_attention.py"
    path.write_text(source)
    assert edit[0] in source
    rules = [r for r in all_rules if r.id == "ADP010"]
    return [r for r in verify_file(str(path), rules, Config(), benchmark=False, fix=_fix(*edit), options=quick)
            if not r.combined]


def test_the_right_decode_patch_passes(tmp_path, all_rules, quick):
    results = _verify(tmp_path, WITH_FLAG, (SITE, RIGHT), all_rules, quick)
    assert [r.verdict for r in results] == [PASS], results
    assert "return_cache=True call" in results[0].reason
    assert "causal=True" in results[0].details["built"] or "causal=True" in results[0].reason


@pytest.mark.parametrize("wrong", [NEW_TOKEN_ONLY, WRONG_SCALE])
def test_wrong_decode_patches_fail(tmp_path, all_rules, quick, wrong):
    results = _verify(tmp_path, WITH_FLAG, (SITE, wrong), all_rules, quick)
    assert [r.verdict for r in results] == [FAIL], results


def test_without_a_flag_that_hands_the_cache_back_it_stays_a_skip(tmp_path, all_rules, quick):
    results = _verify(tmp_path, NO_FLAG, (SITE, RIGHT), all_rules, quick)
    assert [r.verdict for r in results] == [SKIP], results
    assert "exists(cache)" in results[0].reason


def test_returning_flags():
    assert returning_flags(WITH_FLAG, "CachedAttention") == ["return_cache"]
    assert returning_flags(NO_FLAG, "CachedAttention") == []
