"""Forms found while checking the blind batch of research65 (research packages as papers ship
them: a PDE transformer's training scripts, set transformers, molecule transformers).  The
fixtures are ours.

- A training script that gets ``torch`` from a star import (``from libs import *``) and builds
  ``torch.optim.Adam(...)``: ``torch`` is bound nowhere in the file, so the star import binds
  it at run time, and it is the torch package: the optimizer is a fused-optimizer site.
  Near-miss: a file with the same star import that binds ``torch`` itself (to an object of its
  own) is not read as the package.
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
