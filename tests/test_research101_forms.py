"""research101 (session 42): decoder-only LLM research code.

A package's attention variants subclass a base attention class of another module of the
package and call the projections its ``__init__`` built, never writing ``nn.Linear``
themselves (a GQA base in ``model.py``, NoPE and ALiBi variants in ``attention_variants.py``).
The layers were typed through the base (bindings._inherit_sibling), but the rule's words were
looked for in the file's own text only, so ADP009 never ran there.  Fixtures written for
these tests.
"""

from __future__ import annotations

import ast
import textwrap
from pathlib import Path

from adopter.engine import _with_base_modules, analyze
from adopter.ruleset import load_rules, select_rules
from adopter.structure import package_of
from adopter.structure.siblings import base_class_texts

ALL = load_rules()

BASE = """\
import torch
from torch import nn


class GroupedAttention(nn.Module):
    def __init__(self, dim, heads, kv_heads):
        super().__init__()
        self.heads, self.kv_heads = heads, kv_heads
        self.w_q = nn.Linear(dim, dim, bias=False)
        self.w_k = nn.Linear(dim, dim // heads * kv_heads, bias=False)
        self.w_v = nn.Linear(dim, dim // heads * kv_heads, bias=False)
        self.w_o = nn.Linear(dim, dim, bias=False)

    def forward(self, x):
        return self.w_o(x)
"""

VARIANT = """\
import math

import torch
import torch.nn.functional as F

from .model import GroupedAttention


class BiasedAttention(GroupedAttention):
    def forward(self, x, bias):
        b, n, d = x.shape
        q = self.w_q(x).view(b, n, self.heads, -1).transpose(1, 2)  # query projection
        k = self.w_k(x).view(b, n, self.kv_heads, -1).transpose(1, 2)
        v = self.w_v(x).view(b, n, self.kv_heads, -1).transpose(1, 2)
        k = k.repeat_interleave(self.heads // self.kv_heads, dim=1)
        v = v.repeat_interleave(self.heads // self.kv_heads, dim=1)
        scores = torch.matmul(q, k.transpose(-2, -1)) / math.sqrt(q.shape[-1]) + bias
        probs = F.softmax(scores.float(), dim=-1).to(q.dtype)
        out = torch.matmul(probs, v).transpose(1, 2).reshape(b, n, d)
        return self.w_o(out)
"""

# the look-alike: the base builds its projections as 1x1 convolutions (the module's text names
# ``Linear`` only in a comment); three convolutions are no Linear projections to fuse
CONV_BASE = """\
from torch import nn


class GroupedAttention(nn.Module):
    # projections: 1x1 convolutions, not nn.Linear, over (batch, channels, tokens)
    def __init__(self, dim, heads, kv_heads):
        super().__init__()
        self.heads, self.kv_heads = heads, kv_heads
        self.w_q = nn.Conv1d(dim, dim, 1)
        self.w_k = nn.Conv1d(dim, dim, 1)
        self.w_v = nn.Conv1d(dim, dim, 1)
        self.w_o = nn.Conv1d(dim, dim, 1)

    def forward(self, x):
        return self.w_o(x)
"""


def _rules(*ids):
    return select_rules(ALL, list(ids))


def _line(code: str, needle: str) -> int:
    return next(n for n, text in enumerate(code.splitlines(), 1) if needle in text)


def _write(root: Path, files: dict) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))


def _found(path: Path, *ids) -> list:
    text = path.read_text()
    return [(f.rule, f.line) for f in analyze(text, str(path), _rules(*ids), package_of(str(path))).findings]


def test_projections_a_base_of_another_module_builds_in_a_file_naming_no_linear(tmp_path):
    """The variant never writes ``Linear``: its three projections are the base's, built in
    ``model.py``.  The words of the module defining the base keep ADP009 for the file, which
    then reports the projections (not fixed: they are built in the other module)."""
    _write(tmp_path, {"lm/__init__.py": "", "lm/model.py": BASE, "lm/variants.py": VARIANT})
    path = tmp_path / "lm/variants.py"
    assert "Linear" not in path.read_text()
    assert _found(path, "ADP009") == [("ADP009", _line(VARIANT, "# query projection"))]


def test_a_base_building_convolutions_gives_no_projections(tmp_path):
    """The look-alike: the base module names ``Linear`` (in a comment), so ADP009 is read for
    the variant, but its projections are 1x1 convolutions: nothing is reported."""
    _write(tmp_path, {"lm/__init__.py": "", "lm/model.py": CONV_BASE, "lm/variants.py": VARIANT})
    path = tmp_path / "lm/variants.py"
    # the gate keeps ADP009 for the file (else the look-alike would pass with the gate off)
    text = path.read_text()
    package = package_of(str(path))
    assert "Linear" not in text
    assert [r.id for r in _with_base_modules(ast.parse(text), _rules("ADP009"), [], package, str(path))] == ["ADP009"]
    assert _found(path, "ADP009") == []


def test_base_class_texts_reads_only_package_bases(tmp_path):
    """The texts are those of the package's modules defining the bases (also through a module
    alias, ``model.GroupedAttention``); a class deriving from ``nn.Module`` alone, or a file
    outside any package, reads none."""
    _write(tmp_path, {"lm/__init__.py": "", "lm/model.py": BASE, "lm/variants.py": VARIANT})
    path = tmp_path / "lm/variants.py"
    package = package_of(str(path))
    constructor = BASE[BASE.index("class "):BASE.index("\n    def forward")]  # (the class less forward)
    assert base_class_texts(ast.parse(VARIANT), package, str(path)) == [constructor]
    aliased = "from . import model\n\n\nclass Other(model.GroupedAttention):\n    pass\n"
    assert base_class_texts(ast.parse(aliased), package, str(path)) == [constructor]
    plain = "from torch import nn\n\n\nclass Plain(nn.Module):\n    pass\n"
    assert base_class_texts(ast.parse(plain), package, str(path)) == []
    # a class of another package with the same name is not read
    other = "from torch.nn import GroupedAttention\n\n\nclass Other(GroupedAttention):\n    pass\n"
    assert base_class_texts(ast.parse(other), package, str(path)) == []
    alone = tmp_path / "variants.py"
    alone.write_text(VARIANT)
    assert _found(alone, "ADP009") == []


# review48: a base whose module (and whose other methods) name layers its constructor never
# builds, as transformers' ``PreTrainedModel`` does: only the constructor's words are read
WIDE_BASE = """\
from torch import nn


def make_head(dim):
    return nn.LayerNorm(dim)


class Backbone(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.config = config

    def resize(self, n):
        return nn.Embedding(n, self.config.dim)
"""


def test_base_class_texts_read_the_constructor_only(tmp_path):
    _write(tmp_path, {"lm/__init__.py": "", "lm/model.py": WIDE_BASE,
                      "lm/heads.py": "from .model import Backbone\n\n\nclass Head(Backbone):\n    pass\n"})
    path = tmp_path / "lm/heads.py"
    texts = base_class_texts(ast.parse(path.read_text()), package_of(str(path)), str(path))
    assert texts == [WIDE_BASE[WIDE_BASE.index("class "):WIDE_BASE.index("\n    def resize")]]
    assert "LayerNorm" not in texts[0] and "Embedding" not in texts[0]
    kept = _with_base_modules(ast.parse(path.read_text()), _rules("ADP005"), [], package_of(str(path)),
                              str(path))
    assert kept == []
