"""An argument that defaults to None but whose branch assigns a local read later.

DETR-style attention (mask2former's in hf26a) adds position embeddings to the queries and keys
only, keeping the input for the values, and keeps it only under ``if pos_embed is not None:``; the
values read the kept name unconditionally.  Called without ``pos_embed`` the original raises
UnboundLocalError ("cannot access local variable ... where it is not associated with a value")
and verify found no inputs (skip).  Now the optional argument whose ``is not None`` test guards the
local's assignment is given (``inputs.guarding_params``; the others stay at their defaults).  The right patch passes; a patch that uses the position-added input for the values fails.
"""


import pytest
from stand_in import adp010_verdicts

from adopter.verify.inputs import guarding_params
from adopter.verify.result import FAIL, PASS

SOURCE = '''import torch
import torch.nn.functional as F
from torch import nn


class PositionedAttention(nn.Module):
    def __init__(self, dim: int = 16, heads: int = 2):
        super().__init__()
        self.heads = heads
        self.q = nn.Linear(dim, dim)
        self.k = nn.Linear(dim, dim)
        self.v = nn.Linear(dim, dim)
        self.out = nn.Linear(dim, dim)

    def forward(self, x, pos_embed=None):
        if pos_embed is not None:
            kept = x
            x = x + pos_embed
        b, n, c = x.shape
        d = c // self.heads
        q = self.q(x).view(b, n, self.heads, d).transpose(1, 2)
        k = self.k(x).view(b, n, self.heads, d).transpose(1, 2)
        v = self.v(kept).view(b, n, self.heads, d).transpose(1, 2)
        scores = torch.matmul(q, k.transpose(-1, -2)) * d ** -0.5
        probs = scores.softmax(dim=-1)
        out = torch.matmul(probs, v)
        return self.out(out.transpose(1, 2).reshape(b, n, c))
'''

SITE = ("        v = self.v(kept).view(b, n, self.heads, d).transpose(1, 2)\n"
        "        scores = torch.matmul(q, k.transpose(-1, -2)) * d ** -0.5\n"
        "        probs = scores.softmax(dim=-1)\n"
        "        out = torch.matmul(probs, v)\n")
RIGHT = ("        v = self.v(kept).view(b, n, self.heads, d).transpose(1, 2)\n"
         "        out = F.scaled_dot_product_attention(q, k, v)\n")
VALUES_WITH_POSITIONS = ("        v = self.v(x).view(b, n, self.heads, d).transpose(1, 2)\n"
                         "        out = F.scaled_dot_product_attention(q, k, v)\n")



def _verify(tmp_path, new, all_rules, quick):
    return adp010_verdicts(tmp_path / "positioned_attention.py", SOURCE, (SITE, new), all_rules, quick)


def test_the_right_patch_passes_with_the_argument_given(tmp_path, all_rules, quick):
    results = _verify(tmp_path, RIGHT, all_rules, quick)
    assert [r.verdict for r in results] == [PASS], results


def test_values_from_the_positioned_input_fail(tmp_path, all_rules, quick):
    results = _verify(tmp_path, VALUES_WITH_POSITIONS, all_rules, quick)
    assert [r.verdict for r in results] == [FAIL], results


def test_guarding_params_names_the_none_test_around_the_assignment():
    def kept_only_when_given(x, pos_embed=None, other=None):
        if other is not None:
            x = x + other
        if pos_embed is not None:
            kept = x
        return kept

    with pytest.raises(UnboundLocalError) as raised:
        kept_only_when_given(1)
    assert guarding_params(kept_only_when_given, raised.value) == ("pos_embed",)
    assert guarding_params(kept_only_when_given, ValueError("cannot access local variable 'kept' where it is "
                                                             "not associated with a value")) == ()
    assert guarding_params(kept_only_when_given, RuntimeError("shapes do not match")) == ()
