"""A helper method forward never calls, verified by a direct call with inputs of the rank its code states.

basicts' Leddam ``AutoAttention.auto_attention(inp)`` reads its input as ``inp[:, :, 0, :]`` and
feeds it to ``nn.Linear(hidden, hidden)``; forward never calls it.  Verify called the method
directly with the usual [batch, seq, width] guess, which the four-item index rejects, so the
edited lines never ran ("neither forward nor a direct call with guessed inputs reached").  Now a
direct call reads the method's first input with forward's reader (``inputs.input_rank``), which
also takes a tuple index that spells every axis out (its last item a plain ``:``) as the rank.
By what the code does with the input, not by any name.
"""

import ast

import pytest
from stand_in import adp010_verdicts

from adopter.verify.inputs import indexed_rank
from adopter.verify.result import FAIL, PASS

SOURCE = '''import torch
import torch.nn.functional as F
from torch import nn


class SummaryAttention(nn.Module):
    def __init__(self, width: int):
        super().__init__()
        self.q = nn.Linear(width, width)
        self.k = nn.Linear(width, width)
        self.v = nn.Linear(width, width)

    def summarise(self, t):
        first = self.q(t[:, :, 0, :].unsqueeze(-2))
        keys = self.k(t)
        vals = self.v(t)
        w = torch.matmul(first, keys.transpose(-2, -1))
        w = F.softmax(w, dim=-1)
        out = torch.matmul(w, vals)
        return out

    def forward(self, x):
        return self.v(x)
'''

SITE = ("        w = torch.matmul(first, keys.transpose(-2, -1))\n"
        "        w = F.softmax(w, dim=-1)\n"
        "        out = torch.matmul(w, vals)\n")
RIGHT = "        out = F.scaled_dot_product_attention(first, keys, vals, scale=1.0)\n"
# the default scale 1/sqrt(width) where the original has none
DROPPED_SCALE = "        out = F.scaled_dot_product_attention(first, keys, vals)\n"
# the attention taken over the feature axis instead of the time axis
WRONG_AXIS = ("        out = F.scaled_dot_product_attention(first.transpose(1, 2), keys.transpose(1, 2),\n"
              "                                             vals.transpose(1, 2), scale=1.0).transpose(1, 2)\n")


def test_the_right_patch_of_a_helper_method_passes(tmp_path, all_rules, quick):
    results = adp010_verdicts(tmp_path / "summary.py", SOURCE, (SITE, RIGHT), all_rules, quick)
    assert [r.verdict for r in results] == [PASS], results
    assert "summarise()" in results[0].reason
    assert "gradients match" in results[0].reason


@pytest.mark.parametrize("wrong", [DROPPED_SCALE, WRONG_AXIS], ids=["dropped-scale", "wrong-axis"])
def test_wrong_patches_of_a_helper_method_fail(tmp_path, all_rules, quick, wrong):
    results = adp010_verdicts(tmp_path / "summary.py", SOURCE, (SITE, wrong), all_rules, quick)
    assert [r.verdict for r in results] == [FAIL], results


def _rank(body: str, name: str = "x"):
    node = ast.parse(f"def f(self, {name}):\n" + "".join(f"    {line}\n" for line in body.splitlines()))
    return indexed_rank(node.body[0], name)


def test_indexed_rank():
    assert _rank("return x[:, :, 0, :]") == (4, True)
    assert _rank("return x[:, None, :]") == (2, True)  # a new axis is not one of the input's
    assert _rank("return x[..., 0, 0, :, :]") == (4, False)  # at least four
    # look-alikes that state nothing: a partial index, an index after the name is rebound, an
    # Ellipsis that asks no more than the usual three axes, two indexings that disagree, another name
    assert _rank("return x[:, 0]") == (None, False)
    assert _rank("x = x.flatten(1)\nreturn x[:, :, 0, :]") == (None, False)
    assert _rank("return x[..., 0, :]") == (None, False)
    assert _rank("return x[:, :, 0, :] + x[:, 0, :]") == (None, False)
    assert _rank("return y[:, :, 0, :]") == (None, False)
