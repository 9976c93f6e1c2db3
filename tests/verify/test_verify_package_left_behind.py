"""A package ``__init__`` that imports the analysed file and then raises: both copies see it kept.

pyhealth's ``models/__init__.py`` imports the attention file and then a sibling that imports an
installed package too new for this environment's other packages (an ``ImportError`` no stub can
answer).  An earlier attempt (one that stubbed a missing package raised by another sibling) left
the attention module in ``sys.modules`` without its package, so the next import of the file
returned it and never met the package's error; the patched copy's own ``from pkg import X`` met it
alone and verify called the patch a failure.  Now the original imports its packages too: the
package is kept as far as its ``__init__`` runs for both copies (``init_skipped``), and the patch
is judged on what it computes.
"""

import sys

from adopter.config import Config
from adopter.verify import verify_file
from adopter.verify.result import PASS

INIT = """from .base import Base
from .attention import Attention
from .reader import read_records
from .later import Later
"""

BASE = """from torch import nn


class Base(nn.Module):
    pass
"""

ATTENTION = """import math

from torch import nn

from clinicnet import Base


class Attention(Base):
    def __init__(self, dim: int = 32, heads: int = 4):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        b, n, c = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        attn = (q @ k.transpose(-2, -1)) / math.sqrt(c // self.heads)
        attn = attn.softmax(dim=-1)
        out = (attn @ v).transpose(1, 2).reshape(b, n, c)
        return self.proj(out)
"""

# a package no environment has: the first attempt fails here and is retried with a stub
READER = """import clinicnet_columnar_reader_not_installed


def read_records(path):
    return clinicnet_columnar_reader_not_installed.open(path)
"""

# an installed package that lacks a name (a version this environment does not pair): no stub helps
LATER = """from torch import a_name_this_torch_does_not_have


class Later:
    pass
"""


def _package(tmp_path, later: str = LATER):
    folder = tmp_path / "clinicnet"
    folder.mkdir()
    for name, text in (("__init__", INIT), ("base", BASE), ("attention", ATTENTION), ("reader", READER),
                       ("later", later)):
        (folder / f"{name}.py").write_text(text)
    return folder / "attention.py"


def _adp010(path, all_rules, quick):
    rules = [r for r in all_rules if r.id == "ADP010"]
    return [r for r in verify_file(str(path), rules, Config(), benchmark=False, options=quick) if not r.combined]


def test_a_package_that_raises_after_importing_the_file_is_kept_for_both_copies(tmp_path, all_rules, quick):
    (row,) = _adp010(_package(tmp_path), all_rules, quick)
    assert row.verdict == PASS, row.reason
    (stopped,) = row.details["init_skipped"]
    assert stopped.startswith("clinicnet/__init__.py stopped at ImportError: cannot import name "
                              "'a_name_this_torch_does_not_have'"), stopped
    assert "clinicnet_columnar_reader_not_installed" in row.details["not_installed"]
    assert not [m for m in sys.modules if m.split(".")[0] == "clinicnet"]


def test_a_package_that_imports_whole_keeps_nothing_back(tmp_path, all_rules, quick):
    """The look-alike: the same package whose last sibling imports: no package is said to stop."""
    (row,) = _adp010(_package(tmp_path, "class Later:\n    pass\n"), all_rules, quick)
    assert row.verdict == PASS, row.reason
    assert "init_skipped" not in row.details
