"""speed8: exact cuts of the every-rule analysis.

- ``LayerTyper._input_kind`` (a same-file module class that runs a BatchNorm attribute on its
  input first, HoVer-Net's ``_BatchNormRelu``) began with ``"BatchNorm" in <the file's text>``,
  a scan of the whole file once per same-file class read (2,316 scans over the paper's 199
  files).  The file's text does not change, so the answer is kept once per file beside the
  joined text (``_BATCH_NORM_TEXT`` in the typer's per-file table).

The readings are the same: a class running its BatchNorm first is still typed as that
BatchNorm (a conv before it folds), and a file without the word types no class that way; what
changes is how often the text is scanned.  The fixtures are ours.
"""

from __future__ import annotations

import ast
import textwrap

from adopter.engine import analyze
from adopter.ruleset import load_rules
from adopter.structure import layers
from adopter.structure.model import module_structure

# Several same-file module classes, one of them normalising its input first: every class the
# constructors build is read by _find_kind, and those of no other kind reach _input_kind.
BN_FIRST = textwrap.dedent("""\
    import torch
    from torch import nn


    class BNReLU(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.bn = nn.BatchNorm2d(c)
            self.act = nn.ReLU()

        def forward(self, x):
            return self.act(self.bn(x))


    class Gate(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.proj = nn.Conv2d(c, c, 1)

        def forward(self, x):
            return x * torch.sigmoid(self.proj(x))


    class Mix(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.a = nn.Conv2d(c, c, 1)
            self.b = nn.Conv2d(c, c, 1)

        def forward(self, x):
            return self.a(x) + self.b(x)


    class Block(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.conv = nn.Conv2d(c, c, 3, padding=1, bias=False)
            self.post = BNReLU(c)
            self.gate = Gate(c)
            self.mix = Mix(c)

        def forward(self, x):
            return self.mix(self.gate(self.post(self.conv(x))))
    """)

# The same classes with the norm a GroupNorm: no text of the file mentions a BatchNorm.
NO_BN = BN_FIRST.replace("nn.BatchNorm2d(c)", "nn.GroupNorm(4, c)")


def _rules(rule: str) -> list:
    return [r for r in load_rules() if r.id == rule]


def _ctors(text: str, cls: str, attr: str) -> list[str]:
    structure = module_structure(ast.parse(text), None, text, None)
    return [c.fqn for c in structure.classes[cls].bindings.get(attr, ())]


def test_batchnorm_first_module_still_typed_as_its_norm():
    assert "torch.nn.BatchNorm2d" in _ctors(BN_FIRST, "Block", "post")
    found = analyze(BN_FIRST, "m.py", _rules("ADP007")).findings
    assert [f.rule for f in found] == ["ADP007"]


def test_near_miss_file_without_batchnorm_types_no_class_as_one():
    assert "torch.nn.BatchNorm2d" not in _ctors(NO_BN, "Block", "post")
    assert not analyze(NO_BN, "m.py", _rules("ADP007")).findings


def test_file_text_scanned_once_per_file(monkeypatch):
    """The text test is made once per file however many classes reach it (on c304d49 it was
    made once per class: 3 of this fixture's classes, each of no other kind)."""
    calls = []
    original = layers.LayerTyper._file_text

    def counted(self):
        calls.append(self)
        return original(self)

    monkeypatch.setattr(layers.LayerTyper, "_file_text", counted)
    for text in (BN_FIRST, NO_BN):
        calls.clear()
        module_structure(ast.parse(text), None, text, None)
        assert len(calls) == 1, len(calls)


def test_kept_answer_is_the_scan_of_the_text():
    """What is kept is ``"BatchNorm" in`` the joined lines, per typer: a second file's typer
    does not see the first's answer."""
    for text, expected in ((BN_FIRST, True), (NO_BN, False)):
        tree = ast.parse(text)
        structure = module_structure(tree, None, text, None)
        assert structure is not None
        typer = layers.LayerTyper(structure.names, tree)
        typer.lines = text.split("\n")
        cls = structure.names.classes["BNReLU"]
        forward = next(f for f in cls.body if isinstance(f, ast.FunctionDef) and f.name == "forward")
        found = typer._input_kind(cls, forward, 0)
        assert typer._kinds[layers._BATCH_NORM_TEXT] is expected
        assert (found is not None) is expected
