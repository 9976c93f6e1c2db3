"""A guarded patch whose fused side wants every part of its test false at once.

lightseq's fairseq-style attention is patched as ``if need_weights or before_softmax or self.tpu
or ...: <original> else: <fused>``.  Verify tried one change per part of the test (each part's
side), then flipped one flag at a time; the else wants all of them false together, and the one
change that mattered (``need_weights=False``, default True) came thirteenth, past the twelve
variants tried.  Now the parts of a side that must all hold (a disjunction's else, a
conjunction's body) are also tried together, first.  By the test's logic, not by any name.
"""

import ast

import pytest
from stand_in import adp010_verdicts

from adopter.verify.branches import _all_must_hold, guards
from adopter.verify.result import FAIL, PASS

SOURCE = '''import torch
from torch import nn


class GatedAttention(nn.Module):
    def __init__(self, width: int = 32, heads: int = 4, causal: bool = False, talking: bool = False):
        super().__init__()
        self.heads = heads
        self.causal = causal
        self.talking = talking
        self.tpu = False
        self.onnx_trace = False
        self.qkv = nn.Linear(width, 3 * width)
        self.out = nn.Linear(width, width)

    def forward(self, x, before_softmax: bool = False, return_logits: bool = False, need_weights: bool = True):
        b, t, c = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        weights = None
        scores = (q @ k.transpose(-2, -1)) * (q.shape[-1] ** -0.5)
        if self.causal:
            scores = scores + torch.full((t, t), float("-inf")).triu(1)
        if before_softmax or return_logits:
            return scores
        weights = scores.softmax(dim=-1)
        y = weights @ v
        return self.out(y.transpose(1, 2).reshape(b, t, c)), weights if need_weights else None
'''

SITE = """        scores = (q @ k.transpose(-2, -1)) * (q.shape[-1] ** -0.5)
        if self.causal:
            scores = scores + torch.full((t, t), float("-inf")).triu(1)
        if before_softmax or return_logits:
            return scores
        weights = scores.softmax(dim=-1)
        y = weights @ v
"""


def _guarded(fused: str) -> str:
    """The site kept under a test of seven parts (a hand-written guarded patch), ``fused`` else."""
    kept = "".join("    " + line + "\n" for line in SITE.splitlines())
    return ("        if before_softmax or return_logits or self.tpu or self.causal or self.onnx_trace \\\n"
            "                or self.talking or need_weights:\n" + kept +
            "        else:\n            y = torch.nn.functional.scaled_dot_product_attention(q, k, v" + fused + ")\n")


RIGHT = _guarded("")
WRONG_SCALE = _guarded(", scale=1.0")
CAUSAL = _guarded(", is_causal=True")


def test_the_fused_side_is_reached_with_every_part_false(tmp_path, all_rules, quick):
    (result,) = adp010_verdicts(tmp_path / "gated.py", SOURCE, (SITE, RIGHT), all_rules, quick)
    assert result.verdict == PASS, result.reason
    assert "need_weights=False" in result.details["variant"] and "self.tpu=False" in result.details["variant"]


@pytest.mark.parametrize("wrong", [WRONG_SCALE, CAUSAL], ids=["wrong-scale", "causal"])
def test_a_wrong_fused_side_fails(tmp_path, all_rules, quick, wrong):
    (result,) = adp010_verdicts(tmp_path / "gated.py", SOURCE, (SITE, wrong), all_rules, quick)
    assert result.verdict == FAIL, result.reason


def test_which_sides_want_every_part():
    def side(test: str, body: bool) -> bool:
        return _all_must_hold(ast.parse(test, mode="eval").body, body)

    assert side("a or b", False) and side("a and b", True) and side("not (a or b)", True)
    # look-alikes: any one part takes these sides, and a single test has no parts to join
    assert not side("a or b", True) and not side("a and b", False) and not side("a", False)
    assert not side("not a", True)
    text = "def f(a, b):\n    if a or b:\n        x = 1\n    else:\n        x = 2\n    return x\n"
    assert {(g.branch, g.joint) for g in guards(text, {5})} == {("else", True)}
    assert {(g.branch, g.joint) for g in guards(text, {3})} == {("body", False)}


COMPUTED = SOURCE.replace("causal: bool = False, talking: bool = False", "sharp: bool = False") \
    .replace("        self.causal = causal\n        self.talking = talking\n",
             "        self.gated = not sharp\n        self.causal = sharp\n")
DROPS_CAUSAL = ("        if self.gated or need_weights:\n" + "".join("    " + line + "\n" for line in SITE.splitlines())
                + "        else:\n            y = torch.nn.functional.scaled_dot_product_attention(q, k, v)\n")


def test_an_attribute_computed_from_an_argument_is_not_set_apart_from_it(tmp_path, all_rules, quick):
    # ``self.gated = not sharp`` beside ``self.causal = sharp``: gated=False with causal=False is
    # a module no constructor builds, and there the patch that drops the causal mask looks right;
    # joined, the attribute goes through its argument or not at all -- never a pass
    assert "self.gated = not sharp" in COMPUTED and "self.talking" not in COMPUTED
    (result,) = adp010_verdicts(tmp_path / "gated.py", COMPUTED, (SITE, DROPS_CAUSAL), all_rules, quick)
    assert result.verdict != PASS, result.details.get("variant")


def test_an_attribute_stored_from_an_argument_is_joined_through_it(tmp_path, all_rules, quick):
    # ``self.causal = causal``: the joint change builds with causal=False rather than setting it
    (result,) = adp010_verdicts(tmp_path / "gated.py", SOURCE, (SITE, RIGHT), all_rules, quick)
    assert result.verdict == PASS, result.reason
    assert "causal=False" in result.details["variant"] and "self.causal" not in result.details["variant"]
