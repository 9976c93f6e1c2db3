"""Forms found while checking research129's blind batch (graph, molecule, protein and single-cell
networks).  The fixtures are ours.

- ``container.add_module(name="L0", module=nn.Linear(...))``: torch's ``Module.add_module(name,
  module)`` called with keywords (single-cell VAEs build their encoders this way).  The layer it
  adds is the ``module`` argument however it is passed, so a Linear added by keyword and a
  BatchNorm1d added right after it are the pair a positional ``add_module`` gives.
Near-misses: an activation added by keyword between the two, a call whose arguments come from
``**kwargs`` (what it adds is not known), and a BatchNorm first stay unreported; a member added
by keyword is not dropped from the order (the ReLU between keeps the pair apart).
"""

from __future__ import annotations

from corpus_forms import assert_bn_fold_matches, found, line_of, rules

from adopter.synth import fix_text

KEYWORD = """\
import torch
from torch import nn


class Encoder(nn.Module):
    def __init__(self, sizes, p):
        super().__init__()
        self.fc = nn.Sequential()
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
            self.fc.add_module(name="L{:d}".format(i), module=nn.Linear(a, b, bias=False))
            self.fc.add_module("N{:d}".format(i), module=nn.BatchNorm1d(b))  # pair-a
            self.fc.add_module(name="A{:d}".format(i), module=nn.LeakyReLU(0.3))

    def forward(self, x):
        return self.fc(x)


class Decoder(nn.Module):
    def __init__(self, a, b):
        super().__init__()
        self.first = nn.Sequential()
        self.first.add_module(module=nn.Linear(a, b), name="L0")
        self.first.add_module(module=nn.BatchNorm1d(b), name="N0")  # pair-b
        self.first.add_module(name="A0", module=nn.ReLU())

    def forward(self, z):
        return self.first(z)
"""

NEAR = """\
import torch
from torch import nn


class ActBetween(nn.Module):
    def __init__(self, a, b):
        super().__init__()
        self.fc = nn.Sequential()
        self.fc.add_module(name="L0", module=nn.Linear(a, b))
        self.fc.add_module(name="A0", module=nn.ReLU())
        self.fc.add_module(name="N0", module=nn.BatchNorm1d(b))

    def forward(self, x):
        return self.fc(x)


class Unknown(nn.Module):
    def __init__(self, a, b, spec):
        super().__init__()
        self.fc = nn.Sequential()
        self.fc.add_module(name="L0", module=nn.Linear(a, b))
        self.fc.add_module(**spec)
        self.fc.add_module(name="N0", module=nn.BatchNorm1d(b))

    def forward(self, x):
        return self.fc(x)


class NormFirst(nn.Module):
    def __init__(self, a, b):
        super().__init__()
        self.fc = nn.Sequential()
        self.fc.add_module(name="N0", module=nn.BatchNorm1d(a))
        self.fc.add_module(name="L0", module=nn.Linear(a, b))

    def forward(self, x):
        return self.fc(x)
"""


def test_keyword_add_module_pairs_are_reported():
    got = found(KEYWORD, "ADP008")
    for needle in ("# pair-a", "# pair-b"):
        line = line_of(KEYWORD, needle)
        assert any(f.line <= line <= f.end_line for f in got), needle
    assert len(got) == 2


def test_keyword_add_module_near_misses_stay_silent():
    assert found(NEAR, "ADP008") == []


def test_keyword_add_module_fix_if_any_keeps_numbers():
    fixed = fix_text(KEYWORD, "model.py", rules("ADP008")).text
    if fixed != KEYWORD:  # a fix, where one is written, computes what the original does
        assert_bn_fold_matches(KEYWORD, fixed, "Encoder", ([6, 5, 4], 0.0), (3, 6))
        assert_bn_fold_matches(KEYWORD, fixed, "Decoder", (6, 5), (3, 6))
