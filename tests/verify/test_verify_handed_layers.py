"""Layers a caller builds and hands to the class (tinyllama's shared query/key projections).

``Heads.__init__`` builds ``w_q = nn.Linear(width, width)`` under ``if i % share == 0:`` in a loop
and calls ``Head(width, w_q, w_k)``: verify could not value ``w_q`` ("cannot infer argument `w_q`
(a class it calls)").  Now the call site's value of ``w_q`` is the caller's own construction, with
the caller's ``width`` read as whatever ``Head`` gets for its ``width`` (a link to that argument),
so the layer always fits the class as built.  The attention helper drops its probabilities in
training with a literal ``dropout_p=0.2``: the training check draws the same masks on both sides
(seeded alike; the fused kernel's math path on the CPU draws them as ``torch.dropout`` does), so a
patch that forgets the dropout fails.
"""


import pytest
from stand_in import stand_in_fix as _fix

from adopter.config import Config
from adopter.verify import verify_file
from adopter.verify.callsites import UNKNOWN, find_call_sites
from adopter.verify.recipes import Link, Make, substitute_links
from adopter.verify.result import FAIL, PASS, SKIP

SOURCE = '''import math

import torch
import torch.nn.functional as F
from torch import nn


def scaled_attention(self, query, key, value, dropout_p=0.0):
    scale = 1 / math.sqrt(query.size(-1))
    weights = query @ key.transpose(-2, -1) * scale
    weights = torch.softmax(weights, dim=-1)
    weights = torch.dropout(weights, dropout_p, train=self.training)
    return weights @ value


class Head(nn.Module):
    def __init__(self, width: int, w_q: nn.Linear, w_k: nn.Linear):
        super().__init__()
        self.w_q = w_q
        self.w_k = w_k
        self.w_v = nn.Linear(width, width)

    def forward(self, x):
        return scaled_attention(self, self.w_q(x), self.w_k(x), self.w_v(x), dropout_p=0.2)


class Heads(nn.Module):
    def __init__(self, width: int, n_heads: int, share: int):
        super().__init__()
        heads = []
        for i in range(n_heads):
            if i % share == 0:
                w_q = nn.Linear(WIDTH_IN, width)
                w_k = nn.Linear(WIDTH_IN, width)
            heads.append(Head(width, w_q, w_k))
        self.heads = nn.ModuleList(heads)

    def forward(self, x):
        return torch.cat([head(x) for head in self.heads], dim=-1)
'''

SITE = ("    weights = query @ key.transpose(-2, -1) * scale\n"
        "    weights = torch.softmax(weights, dim=-1)\n"
        "    weights = torch.dropout(weights, dropout_p, train=self.training)\n"
        "    return weights @ value\n")
RIGHT = "    return F.scaled_dot_product_attention(query, key, value, dropout_p=dropout_p if self.training else 0.0, scale=scale)\n"
NO_DROPOUT = "    return F.scaled_dot_product_attention(query, key, value, scale=scale)\n"
WRONG_SCALE = "    return F.scaled_dot_product_attention(query, key, value, dropout_p=dropout_p if self.training else 0.0, scale=2 * scale)\n"


def _write(tmp_path, width_in="width"):
    path = tmp_path / "heads_model.py"
    path.write_text(SOURCE.replace("WIDTH_IN", width_in))
    return path


def _verify(path, all_rules, quick, edit):
    rules = [r for r in all_rules if r.id == "ADP010"]
    return [r for r in verify_file(str(path), rules, Config(), benchmark=False, fix=_fix(*edit), options=quick)
            if not r.combined]


def test_the_call_site_links_the_handed_layer_to_the_class_argument(tmp_path):
    path = _write(tmp_path)
    sites = find_call_sites(str(path), "Head", None)
    assert len(sites) == 1
    site = sites[0]
    assert site.args[0] is UNKNOWN  # the caller's own parameter, handed on as it is
    assert site.args[1] == Make(site.args[1].func, (Link(0), Link(0)), {})
    assert substitute_links(Make(nn_linear := site.args[1].func, (Link("width"),), {}), {"width": 8}) == \
        Make(nn_linear, (8,), {})


def test_a_layer_of_a_name_the_class_does_not_get_stays_unknown(tmp_path):
    path = _write(tmp_path, width_in="hidden")
    text = path.read_text().replace("def __init__(self, width: int, n_heads", "def __init__(self, hidden, width: int, n_heads")
    path.write_text(text)
    site = find_call_sites(str(path), "Head", None)[0]
    assert site.args[1] is UNKNOWN


@pytest.mark.parametrize("edit, verdict", [
    ((SITE, RIGHT), PASS),
    ((SITE, NO_DROPOUT), FAIL),  # training drops on the original's side only
    ((SITE, WRONG_SCALE), FAIL),
])
def test_stand_in_patches_of_the_helper(tmp_path, all_rules, quick, edit, verdict):
    path = _write(tmp_path)
    assert SITE in path.read_text()
    results = _verify(path, all_rules, quick, edit)
    assert [r.verdict for r in results] == [verdict], results
    if verdict == PASS:
        assert "nn.Linear(" in results[0].details["built"]


def test_a_layer_the_class_cannot_be_given_is_still_a_skip(tmp_path, all_rules, quick):
    # the caller builds the layer from a size it does not hand the class: no honest value
    path = _write(tmp_path, width_in="hidden")
    text = path.read_text().replace("def __init__(self, width: int, n_heads", "def __init__(self, hidden, width: int, n_heads")
    path.write_text(text)
    results = _verify(path, all_rules, quick, (SITE, RIGHT))
    assert [r.verdict for r in results] == [SKIP], results
    assert "w_q" in results[0].reason
