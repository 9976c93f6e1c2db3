"""Forms found while checking the blind batch of research65 (research packages as papers ship
them: a PDE transformer's training scripts, set transformers, molecule transformers).  The
fixtures are ours.

- A training script that gets ``torch`` from a star import (``from libs import *``) and builds
  ``torch.optim.Adam(...)``: ``torch`` is bound nowhere in the file, so the star import binds
  it at run time, and it is the torch package: the optimizer is a fused-optimizer site.
  Near-miss: a file with the same star import that binds ``torch`` itself (to an object of its
  own) is not read as the package.
- A block base class whose activation is ``F.relu`` by default or ``getattr(F, name)`` when a
  string is given, built in the file only through its subclasses' ``super().__init__(...,
  activation=activation)`` with the subclasses' own ``F.relu`` default: the string path never
  runs where the file builds it (GUIDE, the vall-e-x ruling), so the Linear -> activation pair
  is no bias-GELU site.  Near-miss: a subclass that hands on ``"gelu"`` keeps it a site.
"""

from __future__ import annotations

from corpus_forms import found, line_of, rules

from adopter.synth import fix_text

STAR_TORCH = """\
from libs import *


def main(model, lr):
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    return optimizer
"""

STAR_OWN_TORCH = """\
from libs import *

torch = Toolkit()


def main(model, lr):
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    return optimizer
"""


def test_optimizer_of_a_star_imported_torch_is_found_and_fixed():
    anchor = line_of(STAR_TORCH, "torch.optim.Adam(")
    assert [f.line for f in found(STAR_TORCH, "ADP012")] == [anchor]
    fixed = fix_text(STAR_TORCH, "train.py", rules("ADP012")).text
    assert "fused=" in fixed or "foreach=" in fixed
    compile(fixed, "train.py", "exec")


def test_a_torch_the_file_binds_itself_is_not_the_package():
    assert found(STAR_OWN_TORCH, "ADP012") == []


HANDED_ON = """\
from typing import Callable, Union

import torch.nn.functional as F
from torch import nn


class Block(nn.Module):
    def __init__(self, dim, hidden, activation: Union[str, Callable] = F.relu):
        super().__init__()
        if isinstance(activation, str):
            self.activation = getattr(F, activation)
        else:
            self.activation = activation
        self.linear1 = nn.Linear(dim, hidden)
        self.linear2 = nn.Linear(hidden, dim)

    def forward_ffn(self, x):
        return self.linear2(self.activation(self.linear1(x)))


class SelfBlock(Block):
    def __init__(self, dim, hidden, activation: Union[str, Callable] = F.relu):
        super().__init__(dim, hidden, activation=activation)

    def forward(self, x):
        return x + self.forward_ffn(x)


class CrossBlock(Block):
    def __init__(self, dim, hidden, activation=F.relu, norm_first=True):
        super().__init__(dim, hidden, activation=activation)
        self.norm_first = norm_first

    def forward(self, x, y):
        return x + self.forward_ffn(x + y)
"""

HANDED_GELU = HANDED_ON.replace(
    "class CrossBlock(Block):\n    def __init__(self, dim, hidden, activation=F.relu, norm_first=True):\n"
    "        super().__init__(dim, hidden, activation=activation)",
    "class CrossBlock(Block):\n    def __init__(self, dim, hidden, norm_first=True):\n"
    "        super().__init__(dim, hidden, activation=\"gelu\")",
)


def test_string_path_no_subclass_takes_is_no_bias_gelu_site():
    assert found(HANDED_ON, "ADP006") == []


def test_a_subclass_handing_on_gelu_keeps_the_site():
    assert HANDED_GELU != HANDED_ON
    anchor = line_of(HANDED_GELU, "self.linear2(self.activation(self.linear1(x)))")
    assert any(f.line <= anchor <= f.end_line for f in found(HANDED_GELU, "ADP006"))
