"""speed15: the words a root must mention for a ``size`` step (``$h.view(-1, $h.size(-1))`` of
ADP008 and ADP015).  research62 read ``self.bn(h.view(-1, W))`` (a BatchNorm1d of a Linear's
output of width W) as ``h.view(-1, h.size(-1))`` and let ``view``/``reshape`` stand for the size
in every class, so every class that views something reached those searches.  The views now count
only in a class binding both a ``BatchNorm1d`` and a ``Linear`` (where that reading can happen),
and ``flatten`` counts everywhere (``x.flatten(0, -2)`` is read as ``x.reshape(-1, x.size(-1))``):
the same findings, fewer flows searched.

The tests: the two readings that name no size are still found (each fails with the views left out
of the group everywhere), a class that views without naming a size is no candidate of any size
matcher (fails on the engine of research62), and every size step is that of a view step (what
makes ``flatten`` alone let nothing new through).  The fixtures are ours.
"""

from __future__ import annotations

import ast

from corpus_forms import found, line_of

from adopter import match
from adopter.engine import matchers_for
from adopter.ruleset import load_rules
from adopter.structure.model import module_structure

# A Linear's output viewed as rows of its width before a BatchNorm1d, with no size or shape
# anywhere in the class: read as h.view(-1, h.size(-1)) only by the view.
NORMED_ROWS = """\
import torch
from torch import nn


class Gated(nn.Module):
    def __init__(self, c, d):
        super().__init__()
        self.d = d
        self.fc = nn.Linear(c, 2 * self.d)
        self.bn = nn.BatchNorm1d(2 * self.d)

    def forward(self, x):
        h = self.fc(x)
        return torch.sigmoid(self.bn(h.view(-1, self.d * 2)))
"""

# An LM head's logits flattened to rows by flatten(0, -2), the labels by a view: no size word.
FLATTENED_LOGITS = """\
import torch
from torch import nn
import torch.nn.functional as F


class Head(nn.Module):
    def __init__(self, d, vocab):
        super().__init__()
        self.lm_head = nn.Linear(d, vocab, bias=False)

    def forward(self, h, labels):
        logits = self.lm_head(h)
        return F.cross_entropy(logits.flatten(0, -2), labels.view(-1))
"""

# A classifier's loss over views of its logits and labels, a Linear, no BatchNorm1d, no size,
# no shape, no flatten: no size step can match here (ADP015's forms with one read a size).
PLAIN_VIEWS = """\
import torch
from torch import nn


class Classifier(nn.Module):
    def __init__(self, d, num_labels):
        super().__init__()
        self.num_labels = num_labels
        self.embed = nn.Embedding(1000, d)
        self.score = nn.Linear(d, num_labels)
        self.loss_fct = nn.CrossEntropyLoss()

    def forward(self, tokens, labels):
        logits = self.score(self.embed(tokens))
        return self.loss_fct(logits.view(-1, self.num_labels), labels.view(-1))
"""


def _size_matchers():
    """The matchers with a ``size`` step (read off the pattern, not the keys)."""
    return [m for rule in load_rules() for m in matchers_for(rule)
            if any(p.op == "method" and p.method == "size" and not p.optional for p in m.forward.nodes)]


def test_a_normed_linear_view_is_still_found():
    at = line_of(NORMED_ROWS, "self.bn(h.view")
    assert any(f.line <= at <= f.end_line for f in found(NORMED_ROWS, "ADP008"))


def test_a_flattened_logits_view_is_still_found():
    at = line_of(FLATTENED_LOGITS, "F.cross_entropy")
    assert any(f.line <= at <= f.end_line for f in found(FLATTENED_LOGITS, "ADP015"))


def test_both_need_their_reading_of_the_size(monkeypatch):
    """Without views in the BatchNorm class's group and without flatten, neither is found: the
    two findings above rest on those words, not on a size the code names."""
    # The groups are made lazily, one per spelling the first time a class asks: ask first, so
    # the narrowing below has the spellings of both texts to narrow (alone in a fresh process,
    # the table would still be empty and the narrowing a no-op).
    found(NORMED_ROWS, "ADP008"), found(FLATTENED_LOGITS, "ADP015")
    assert match._SIZE_GROUPS
    narrow = {k: (frozenset(k) | {"shape"},) * 2 for k in match._SIZE_GROUPS}
    monkeypatch.setattr(match, "_SIZE_GROUPS", narrow)
    assert found(NORMED_ROWS, "ADP008") == []
    assert found(FLATTENED_LOGITS, "ADP015") == []


def test_a_class_that_views_without_a_size_is_no_candidate():
    module = module_structure(ast.parse(PLAIN_VIEWS), text=PLAIN_VIEWS)
    matchers = _size_matchers()
    assert matchers
    for m in matchers:
        assert m._candidates(module) == []
    cls = module.classes["Classifier"]
    assert "view" in cls.words("forward")


def test_views_count_in_a_class_binding_a_batchnorm1d_and_a_linear():
    module = module_structure(ast.parse(NORMED_ROWS), text=NORMED_ROWS)
    key = next(k for m in _size_matchers() for k in m.word_keys if k[0] == "sizes")
    assert key[1] == ("size",)
    group = match._word_group(module.classes["Gated"], module, key, {})
    assert {"view", "reshape", "flatten", "shape"} <= group
    plain = module_structure(ast.parse(PLAIN_VIEWS), text=PLAIN_VIEWS)
    group = match._word_group(plain.classes["Classifier"], plain, key, {})
    assert "view" not in group and "reshape" not in group and "flatten" in group


def test_every_size_step_comes_with_a_view_step():
    """``flatten`` is in every class's size group although it spells no size of its own: a root
    it lets through must still mention a view for the view step, as the group of research62
    asked, so it adds no candidate."""
    for m in _size_matchers():
        views = [k for k in m.word_keys if k[0] == "words" and set(k[1]) <= {"view", "reshape"}]
        assert views, m.word_keys
