"""A name a failing import binds, used only on a path another build takes without it.

A module imports a helper from a sibling module its distribution lacks (``from pkg.tools.causal
import Causal``: ModuleNotFoundError).  Verify already leaves such a statement out and binds its
names to placeholders that raise when used (``loader.py``); but the default build (``causal=True``)
calls the helper, so the check stopped there for every variant.  Now the other builds are tried:
with ``causal=False`` the placeholder is never used, the patch is checked, and the verdict says
that the names stood as placeholders and the path checked did not use them.  Where every path
uses the name (the look-alike), the skip stays and names what is missing.  Fixture of ours.
"""

import sys

from adopter.config import Config
from adopter.verify import verify_file
from adopter.verify.result import PASS, SKIP

ATTENTION = '''import math

import torch
from torch import nn

from seriesnet.tools.causal import Causal


class BlockAttention(nn.Module):
    def __init__(self, causal=True, temperature=None, p_drop=0.1):
        super().__init__()
        self.causal = causal
        self.temperature = temperature
        self.drop = nn.Dropout(p_drop)

    def forward(self, q, k, v, hide):
        n, t, h, d = q.shape
        temperature = self.temperature or 1.0 / math.sqrt(d)
        logits = torch.einsum("nthd,nshd->nhts", q, k)
        if self.causal:
            if hide is None:
                hide = Causal(n, t)
            logits = logits.masked_fill(hide.where, float("-inf"))
        weights = self.drop(torch.softmax(temperature * logits, dim=-1))
        return torch.einsum("nhts,nshd->nthd", weights, v)
'''

# the look-alike: the helper is used on every path
EVERY_PATH = ATTENTION.replace(
    "        logits = torch.einsum(\"nthd,nshd->nhts\", q, k)\n",
    "        logits = torch.einsum(\"nthd,nshd->nhts\", q, k) + Causal(n, t).bias\n")


def _package(tmp_path, text: str):
    top = tmp_path / "seriesnet"
    (top / "layers").mkdir(parents=True)
    (top / "tools").mkdir()
    (top / "__init__.py").write_text("")
    (top / "layers" / "__init__.py").write_text("")
    (top / "tools" / "__init__.py").write_text("")  # the package ships without tools/causal.py
    path = top / "layers" / "block_attention.py"
    path.write_text(text)
    return path


def _rows(path, all_rules, quick):
    rules = [r for r in all_rules if r.id == "ADP010"]
    try:
        return [r for r in verify_file(str(path), rules, Config(), benchmark=False, options=quick) if not r.combined]
    finally:
        for name in [m for m in sys.modules if m.split(".")[0] == "seriesnet"]:
            sys.modules.pop(name, None)


def test_a_left_out_name_off_the_checked_path_lets_the_fix_be_verified(tmp_path, all_rules, quick):
    (row,) = _rows(_package(tmp_path, ATTENTION), all_rules, quick)
    assert row.verdict == PASS, row.reason
    assert "causal=False" in row.reason, row.reason
    # the verdict says what stood in for the missing names
    assert "stood as placeholders that raise if used" in row.reason, row.reason
    assert "Causal" in row.reason and "ModuleNotFoundError" in row.reason, row.reason


def test_a_left_out_name_on_every_path_still_skips(tmp_path, all_rules, quick):
    rows = _rows(_package(tmp_path, EVERY_PATH), all_rules, quick)
    assert rows and all(r.verdict == SKIP for r in rows), rows
    assert all("needs `Causal`" in r.reason for r in rows), [r.reason for r in rows]
