"""A subpackage left in ``sys.modules`` by a failed import whose parent package it outlived.

A package's ``__init__`` imports a module of a folder without ``__init__.py`` (a namespace
subpackage), then a sibling that needs a name the installed torch lacks (an ``ImportError`` no stub
answers).  The failed attempt removes the packages whose ``__init__`` raised, but the namespace
subpackage and the module imported from it stay; the next attempt, which keeps each ``__init__`` as
far as it runs, then met them without their parent (``KeyError``) and verify reported the
package's own error as "the original module does not import".  Now such orphans of the file's own
package are forgotten before each attempt (``ModuleLoader._forget_orphans``, which did so only for
files outside a package).  Fixture of ours.
"""

import sys

from adopter.config import Config
from adopter.verify import verify_file
from adopter.verify.result import PASS

TOP_INIT = "from .front.service import Service\n"
SERVICE = """import vocoder_waveform_reader_not_installed

from ..core.models import Model


class Service:
    pass
"""
CORE_INIT = """from .codec.settings import SETTINGS
from .codec.model import CodecModel
"""
SETTINGS = "SETTINGS = {'width': 32}\n"
# an installed package that lacks a name (a version this environment does not pair): no stub helps
NEEDS_NEWER = """from torch import a_name_this_torch_does_not_have


class CodecModel:
    pass
"""
MODELS_INIT = "from .big import Model\n"
BIG = NEEDS_NEWER.replace("CodecModel", "Model")

ATTENTION = """import math

from torch import nn


class FrameAttention(nn.Module):
    def __init__(self, width: int = 32, heads: int = 4):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(width, width * 3)
        self.out = nn.Linear(width, width)

    def forward(self, x):
        b, n, c = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        scores = (q @ k.transpose(-2, -1)) / math.sqrt(c // self.heads)
        y = scores.softmax(dim=-1) @ v
        return self.out(y.transpose(1, 2).reshape(b, n, c))
"""


def _package(tmp_path):
    top = tmp_path / "vocoder"
    files = {
        "__init__.py": TOP_INIT,
        "front/__init__.py": "",
        "front/service.py": SERVICE,
        "core/__init__.py": CORE_INIT,
        "core/codec/settings.py": SETTINGS,  # core/codec has no __init__.py
        "core/codec/model.py": NEEDS_NEWER,
        "core/codec/enc/attention.py": ATTENTION,  # nor core/codec/enc
        "core/models/__init__.py": MODELS_INIT,
        "core/models/big.py": BIG,
    }
    for name, text in files.items():
        path = top / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return top / "core/codec/enc/attention.py"


def test_a_namespace_subpackage_left_by_a_failed_attempt_is_imported_afresh(tmp_path, all_rules, quick):
    rules = [r for r in all_rules if r.id == "ADP010"]
    try:
        rows = [r for r in verify_file(str(_package(tmp_path)), rules, Config(), benchmark=False, options=quick)
                if not r.combined]
    finally:
        for name in [m for m in sys.modules if m.split(".")[0] == "vocoder"]:
            sys.modules.pop(name, None)
    (row,) = rows
    assert row.verdict == PASS, row.reason
    # the package's own error is still said, as far as its __init__ files ran
    assert any("a_name_this_torch_does_not_have" in s for s in row.details["init_skipped"]), row.details
