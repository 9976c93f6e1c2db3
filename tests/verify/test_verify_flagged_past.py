"""An edit under ``if keep and past is not None:``: a flag and a past only the module makes.

vitvqgan's stage-2 attention attends over ``torch.cat([past_key, k], dim=-2)`` only where its
forward is called with ``use_cache=True`` *and* a ``layer_past`` -- a stack of the keys and values
that a first ``use_cache=True`` call handed back (``return y, present``).  A guessed tensor for
the past never has the shape its code unpacks, and a decode step that drops the flag takes the
other side, so verify skipped ("the branch `if use_cache and layer_past is not None` stayed
unexercised").  Now a guard testing an optional forward argument ``is not None`` also gets the
two-step call (the module's own past fed back), and where another part of the guard wants the
returning flag True, the second call keeps it set.  Read from the tests and the returns, not from
any name.
"""

import pytest
from stand_in import stand_in_fix as _fix

from adopter.config import Config
from adopter.verify import verify_file
from adopter.verify.result import FAIL, PASS, SKIP

SOURCE = '''import torch
from torch import nn


class PastAttention(nn.Module):
    def __init__(self, width: int = 16, heads: int = 2):
        super().__init__()
        self.heads = heads
        self.scale = (width // heads) ** -0.5
        self.qkv = nn.Linear(width, 3 * width)
        self.out = nn.Linear(width, width)

    def forward(self, x, keep=False, past=None):
        b, t, c = x.shape
        parts = self.qkv(x).chunk(3, dim=-1)
        q, k, v = (p.reshape(b, t, self.heads, c // self.heads).transpose(1, 2)
                   .reshape(b * self.heads, t, c // self.heads) for p in parts)
        if keep:
            saved = torch.stack([k, v])
        if past is not None:
            old_k, old_v = past
            k = torch.cat([old_k, k], dim=-2)
            v = torch.cat([old_v, v], dim=-2)
        if GUARD:
            w = torch.bmm(q, k.transpose(-2, -1)) * self.scale
            w = torch.softmax(w, dim=-1)
            y = torch.bmm(w, v)
        else:
            y = v.cumsum(dim=-2)[:, -t:]
        y = y.reshape(b, self.heads, t, c // self.heads).transpose(1, 2).reshape(b, t, c)
        y = self.out(y)
        if keep:
            return y, saved
        return y
'''

BOTH = SOURCE.replace("GUARD", "keep and past is not None")

SITE = ("            w = torch.bmm(q, k.transpose(-2, -1)) * self.scale\n"
        "            w = torch.softmax(w, dim=-1)\n"
        "            y = torch.bmm(w, v)\n")
RIGHT = "            y = torch.nn.functional.scaled_dot_product_attention(q, k, v, scale=self.scale)\n"
WRONG_SCALE = "            y = torch.nn.functional.scaled_dot_product_attention(q, k, v, scale=1.0)\n"
# the past dropped: attends over the new position only
NO_PAST = ("            y = torch.nn.functional.scaled_dot_product_attention(q, k[:, -q.shape[1]:], "
           "v[:, -q.shape[1]:], scale=self.scale)\n")


def _verify(tmp_path, source, edit, all_rules, quick):
    path = tmp_path / "past_attention.py"
    path.write_text(source)
    assert edit[0] in source
    rules = [r for r in all_rules if r.id == "ADP010"]
    return [r for r in verify_file(str(path), rules, Config(), benchmark=False, fix=_fix(*edit), options=quick)
            if not r.combined]


def test_the_right_patch_under_flag_and_past_passes(tmp_path, all_rules, quick):
    results = _verify(tmp_path, BOTH, (SITE, RIGHT), all_rules, quick)
    assert [r.verdict for r in results] == [PASS], results
    assert "keep=True call" in results[0].reason


@pytest.mark.parametrize("wrong", [WRONG_SCALE, NO_PAST])
def test_wrong_patches_under_flag_and_past_fail(tmp_path, all_rules, quick, wrong):
    results = _verify(tmp_path, BOTH, (SITE, wrong), all_rules, quick)
    assert [r.verdict for r in results] == [FAIL], results


def test_a_flag_that_must_be_false_with_the_past_is_not_kept(tmp_path, all_rules, quick):
    """``if not keep and past is not None:`` -- the step drops the flag, as before."""
    source = BOTH.replace("if keep and past is not None:", "if not keep and past is not None:")
    results = _verify(tmp_path, source, (SITE, RIGHT), all_rules, quick)
    assert [r.verdict for r in results] == [PASS], results
