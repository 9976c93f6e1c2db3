"""A guessed input one axis deeper than the code expects, told by a ``repeat`` over fewer axes
(``inputs.repairs``).  Multiplicative attention pooling takes one query vector per row:
``(query @ W).unsqueeze(1) @ values.transpose(1, 2)`` gives [b, 1, t] scores, and the pooled
output repeats the [b, t] weights over ``values``' width with ``weights.unsqueeze(2).repeat(1, 1,
d)``.  Verify's default inputs gave the query as [b, t, d] too, the repeat raised "Number of
dimensions of repeat dims can not be smaller than number of dimensions of tensor", and the fixed
site went unchecked (wavencoder 0.1.3 ``attention_layer.py:75``).  Now each 3-D argument in turn is
tried with its middle axis dropped, and the query given as [b, d] reaches the patch.
"""

import torch

from adopter.verify.build import Call
from adopter.verify.inputs import repairs
from adopter.verify.result import PASS

from stand_in import adp010_verdicts

SOURCE = '''import torch
import torch.nn.functional as F
from torch import nn


class ScoredPool(nn.Module):
    def __init__(self, width: int, query_width: int):
        super().__init__()
        self.query_width = query_width
        self.W = nn.Parameter(torch.randn(query_width, width))

    def forward(self, values, query):
        scores = (query @ self.W).unsqueeze(1) @ values.transpose(1, 2)
        weights = F.softmax(scores.squeeze(1) / 4.0, 1)
        return (weights.unsqueeze(2).repeat(1, 1, values.size(2)) * values).sum(1)
'''

SITE = ('        scores = (query @ self.W).unsqueeze(1) @ values.transpose(1, 2)\n'
        '        weights = F.softmax(scores.squeeze(1) / 4.0, 1)\n'
        '        return (weights.unsqueeze(2).repeat(1, 1, values.size(2)) * values).sum(1)\n')
RIGHT = ('        return F.scaled_dot_product_attention((query @ self.W).unsqueeze(1), values, values,\n'
         '                                              scale=0.25).squeeze(1)\n')
WRONG = ('        return F.scaled_dot_product_attention((query @ self.W).unsqueeze(1), values, values,\n'
         '                                              scale=0.5).squeeze(1)\n')

REPEAT_ERROR = RuntimeError("Number of dimensions of repeat dims can not be smaller than number of "
                            "dimensions of tensor")


def test_a_repeat_over_fewer_axes_drops_a_guessed_axis():
    values, query = torch.randn(2, 5, 16), torch.randn(2, 5, 8)
    shapes = [tuple(tuple(a.shape) for a in c.args) for c in repairs(Call((values, query), {}), REPEAT_ERROR)]
    assert ((2, 5, 16), (2, 8)) in shapes and ((2, 16), (2, 5, 8)) in shapes


def test_another_error_asks_no_such_drop():
    values, query = torch.randn(2, 5, 16), torch.randn(2, 5, 8)
    other = RuntimeError("mat1 and mat2 shapes cannot be multiplied (10x8 and 16x8)")
    assert not any(c.args[1].dim() == 2 for c in repairs(Call((values, query), {}), other))


def test_the_pooled_query_reaches_the_patch(tmp_path, all_rules, quick):
    results = adp010_verdicts(tmp_path / "pool.py", SOURCE, (SITE, RIGHT), all_rules, quick)
    assert [r.verdict for r in results] == [PASS], [r.reason for r in results]


def test_a_wrong_scale_still_fails(tmp_path, all_rules, quick):
    results = adp010_verdicts(tmp_path / "pool.py", SOURCE, (SITE, WRONG), all_rules, quick)
    assert [r.verdict for r in results] == ["fail"], [r.reason for r in results]
