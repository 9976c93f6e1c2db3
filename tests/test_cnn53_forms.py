"""A form found missing in the blind batch cnn53 (detection, segmentation, super-resolution,
re-identification and pose CNN files of 8 packages new to the corpus; the miss is bism's
training engine).  The fixtures are ours.

- An optimizer class looked up in a table that **another module of the package** holds
  (``OPTIMIZERS = {"adamw": torch.optim.AdamW, "sgd": torch.optim.SGD}`` in ``config/valid.py``)
  and that the trainer imports and calls an entry of (``OPTIMIZERS[cfg.name](params, lr=lr)``,
  or ``klass = OPTIMIZERS[name]`` then ``klass(...)``): a callee chosen at run time among the
  table's classes, as an entry of a table the file binds itself already was.  The sibling
  module is read as the layer typer reads one (parsed, never imported); the table counts only
  where that module binds it once and reads it one entry at a time, and this file imports it
  once and only reads entries.  The file need not write ``Adam`` or ``SGD`` anywhere: the
  rule is kept for it (engine._with_imported_tables) and its roots mention the table's
  classes (ModuleStructure.table_words).  The fix guards ``fused=True`` by the class's
  spelling through this file's own ``import torch``.
Near-misses (no finding): the sibling module or this file puts another entry in, a table of
optimizers without a fused step, a value that is no class name (a lambda), a table a call
builds, a file outside any package.
"""

from __future__ import annotations

import sys
import textwrap

import pytest
from corpus_forms import rules

from adopter.engine import analyze
from adopter.structure.names import package_of
from adopter.synth import fix_text

VALID = textwrap.dedent("""\
    import torch

    OPTIMIZERS = {
        "adamw": torch.optim.AdamW,
        "sgd": torch.optim.SGD,
    }
    MORE
""")

ENGINE = textwrap.dedent("""\
    import torch
    from IMPORT import OPTIMIZERS


    def build(model, name="adamw", lr=0.1):
        return OPTIMIZERS[name](model.parameters(), lr=lr)  # called


    def build_bound(model, name="adamw"):
        klass = OPTIMIZERS[name]
        return klass(model.parameters(), lr=0.1)  # bound
    EXTRA
""")


def _package(tmp_path, valid: str = VALID, engine: str = ENGINE, where: str = "shop.config.valid",
             init: bool = True):
    """A package ``shop`` on disk: ``config/valid.py`` holds the table, ``train/engine.py``
    imports it from ``where``; returns the engine's path and text."""
    root = tmp_path / "shop"
    for folder in (root, root / "config", root / "train"):
        folder.mkdir(parents=True, exist_ok=True)
        if init:
            (folder / "__init__.py").write_text("")
    (root / "config" / "valid.py").write_text(valid.replace("MORE", ""))
    code = engine.replace("IMPORT", where).replace("EXTRA", "")
    path = root / "train" / "engine.py"
    path.write_text(code)
    return path, code


def _lines(path, code) -> list[int]:
    return [f.line for f in analyze(code, str(path), rules("ADP012"), package=package_of(str(path))).findings
            if f.rule == "ADP012"]


def _line(code: str, needle: str) -> int:
    return next(n for n, text in enumerate(code.splitlines(), 1) if needle in text)


@pytest.mark.parametrize("where", ["shop.config.valid", "..config.valid"])
def test_an_entry_of_a_table_another_module_of_the_package_holds_is_an_optimizer(tmp_path, where):
    path, code = _package(tmp_path, where=where)
    assert "Adam" not in code and "SGD" not in code  # the rule's words are the table's, not the file's
    got = _lines(path, code)
    assert _line(code, "# called") in got
    assert _line(code, "# bound") in got


def test_the_fixed_trainer_builds_the_fused_class_and_the_other_as_it_was(tmp_path, monkeypatch):
    import torch

    path, code = _package(tmp_path)
    fixed = fix_text(code, str(path), rules("ADP012"), package=package_of(str(path))).text
    assert fixed != code
    path.write_text(fixed)
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in [m for m in sys.modules if m == "shop" or m.startswith("shop.")]:
        monkeypatch.delitem(sys.modules, name)
    from shop.train import engine

    model = torch.nn.Linear(4, 2)
    adamw = engine.build(model, "adamw")
    assert isinstance(adamw, torch.optim.AdamW) and adamw.defaults["fused"] is True
    bound = engine.build_bound(model, "adamw")
    assert isinstance(bound, torch.optim.AdamW) and bound.defaults["fused"] is True
    sgd = engine.build(model, "sgd")  # (the guard names the class the rule matched: SGD as it was)
    assert isinstance(sgd, torch.optim.SGD) and sgd.defaults["lr"] == 0.1


@pytest.mark.parametrize("valid, engine", [
    # the sibling module puts another entry in: its entries are not known
    (VALID.replace("MORE", 'OPTIMIZERS["rms"] = torch.optim.RMSprop'), ENGINE),
    # this file does
    (VALID, ENGINE.replace("EXTRA", 'OPTIMIZERS.update(rms=torch.optim.RMSprop)')),
    # a table of optimizers none of which has a fused step
    (VALID.replace("torch.optim.AdamW", "torch.optim.RMSprop").replace("torch.optim.SGD", "torch.optim.Adagrad"),
     ENGINE),
    # a value that is no class name
    (VALID.replace('"sgd": torch.optim.SGD', '"sgd": lambda p, lr: torch.optim.RMSprop(p, lr)'), ENGINE),
    # a table a call builds
    (VALID.replace('OPTIMIZERS = {', 'OPTIMIZERS = make_table({'), ENGINE),
])
def test_tables_whose_entries_are_not_known_give_no_finding(tmp_path, valid, engine):
    path, code = _package(tmp_path, valid=valid, engine=engine)
    assert _lines(path, code) == []


def test_a_file_outside_any_package_reads_no_other_module(tmp_path):
    path, code = _package(tmp_path, init=False)
    assert package_of(str(path)) is None
    assert _lines(path, code) == []
