"""An ``if`` on a flag the file fixes goes one way on every run of the model as built.

GLIP's bi-directional attention (mmdet's ``vlfuse_helper.py``) clamps its scores under
``if self.clamp_min_for_underflow:``, an attribute whose only assignment is ``= True`` in
``__init__``: the clamp sits between the product and the softmax on every path, which SDPA
does not reproduce (the dev corpus labels the site "no").  Read as a configurable ``if``, the
path around the clamp was a match.  A flag counts as fixed only when the class assigns it the
same bool literal everywhere and nothing else in the file can change it on the class's
instances; anything else keeps both ways (and the fix guards the capped one).
"""

from __future__ import annotations

import textwrap

import pytest

from adopter.engine import analyze
from adopter.ruleset import load_rules

ADP010 = [r for r in load_rules() if r.id == "ADP010"]

ATTENTION = textwrap.dedent('''
    import math
    import torch
    from torch import nn


    class Attention(nn.Module):
        def __init__(self, dim, heads, clamp=True):
            super().__init__()
            self.heads, self.head_dim = heads, dim // heads
            self.qkv = nn.Linear(dim, 3 * dim)
            self.proj = nn.Linear(dim, dim)
            self.clamp_scores = FLAG

        def forward(self, x):
            B, T, C = x.shape
            q, k, v = self.qkv(x).reshape(B, T, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
            att = (q @ k.transpose(-2, -1)) / math.sqrt(self.head_dim)
            if TEST:
                att = torch.clamp(att, min=-50000, max=50000)
            att = att.softmax(dim=-1)
            y = att @ v
            return self.proj(y.transpose(1, 2).reshape(B, T, C))
''')


def _scores_line(source: str) -> int:
    return next(i for i, line in enumerate(source.splitlines(), 1) if "att = (q @ k" in line)


SCORES = _scores_line(ATTENTION)


def _found(flag: str, test: str = "self.clamp_scores", extra: str = "") -> list[tuple[int, bool]]:
    source = ATTENTION.replace("FLAG", flag).replace("TEST", test) + textwrap.dedent(extra)
    return [(f.line, f.fixable) for f in analyze(source, "m.py", ADP010).findings]


def test_a_clamp_under_a_flag_set_true_once_runs_on_every_path():
    assert _found("True") == []
    assert _found("False", test="not self.clamp_scores") == []


def test_a_flag_from_a_parameter_leaves_the_unclamped_path():
    assert _found("clamp") == [(SCORES, True)]


def test_a_flag_set_false_never_clamps():
    assert _found("False") == [(SCORES, True)]


OTHER_CLASS_PARAMETER = '''
    class Other(nn.Module):
        def __init__(self, clamp_scores: bool = False):
            super().__init__()
            self.clamp_scores = clamp_scores
'''
WRITTEN_THROUGH_AN_OBJECT = '''
    def unclamped(dim, heads):
        attention = Attention(dim, heads)
        attention.clamp_scores = False
        return attention
'''
SUBCLASS = '''
    class Unclamped(Attention):
        def __init__(self, dim, heads):
            super().__init__(dim, heads)
            self.clamp_scores = False
'''
NAMED_IN_A_STRING = '''
    def set_flag(module, value):
        setattr(module, "clamp_scores", value)
'''
CLASS_ATTRIBUTE = '''
    Attention.clamp_scores = False
'''


def test_another_class_configuring_its_own_attribute_of_that_name_changes_nothing():
    assert _found("True", extra=OTHER_CLASS_PARAMETER) == []


@pytest.mark.parametrize("extra", [WRITTEN_THROUGH_AN_OBJECT, SUBCLASS, NAMED_IN_A_STRING, CLASS_ATTRIBUTE],
                         ids=["object", "subclass", "setattr", "class-attribute"])
def test_a_flag_the_file_can_change_keeps_both_ways(extra):
    assert _found("True", extra=extra) == [(SCORES, True)]


def test_a_flag_assigned_two_values_keeps_both_ways():
    source = ATTENTION.replace("FLAG", "True").replace("TEST", "self.clamp_scores").replace(
        "        self.clamp_scores = True\n",
        "        self.clamp_scores = True\n        if heads > 8:\n            self.clamp_scores = False\n")
    assert source.count("self.clamp_scores = False") == 1
    assert [(f.line, f.fixable) for f in analyze(source, "m.py", ADP010).findings] == [(_scores_line(source), True)]
