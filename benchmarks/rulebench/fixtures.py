"""Fixture modules, their patched source from the real pipeline, and both imported as modules.

A fixture is a Python file (``benchmarks/rule_fixtures/*.py``, or a folder named with
``--fixtures``) that declares the rules it exercises, ``RULES = ("ADP010", ...)`` (read from
the source with ``ast``, so that discovering fixtures imports nothing), and defines:

* ``cases(quick=False)``: a list of dicts, each with a ``"name"`` and whatever ``build`` and
  ``inputs`` need (shapes); a case with a ``"rule"`` key is only for that rule;
* ``build(case)``: the module to time, built from the classes of *this* file, so the patched
  file builds the patched module;
* ``inputs(case)``: the positional arguments of its forward (CPU, float32; the harness moves
  and casts them);
* optionally ``GRAD_INPUTS`` (indices of the inputs that are activations and need gradients in
  training; default: the first floating input), ``RANDOM_IN_TRAINING = True`` (dropout is
  active in training, so train-mode outputs of two runs differ and only eval mode is compared
  exactly), and ``build_optimizer(model, case)``: then the training mode times
  ``optimizer.step()`` with the gradients of a real backward pass in place.

The patched text is what ``adopter fix`` writes: :func:`adopter.synth.fix_text` (the function
``adopter fix`` runs per file) with only the rule under test, forced on whatever its default
or target; both texts are then executed as real modules under private names.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import itertools
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

_COUNTER = itertools.count(1)
REPO = Path(__file__).resolve().parents[2]


class FixtureError(Exception):
    """A fixture that cannot be used (no RULES, not patched, does not import)."""


@dataclass(frozen=True)
class Fixture:
    path: Path
    rules: tuple[str, ...]


def declared_rules(path: Path) -> tuple[str, ...]:
    """The ``RULES = (...)`` literal of a fixture file, without importing it."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    except (OSError, SyntaxError, UnicodeDecodeError) as exc:
        raise FixtureError(f"{path}: cannot read: {exc}") from None
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "RULES" for t in node.targets):
            try:
                value = ast.literal_eval(node.value)
            except ValueError:
                break
            if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
                return tuple(value)
            break
    return ()


def discover(folder: Path) -> list[Fixture]:
    """Every ``*.py`` file of ``folder`` that declares RULES, in name order."""
    found = []
    for path in sorted(Path(folder).glob("*.py")):
        rules = declared_rules(path)
        if rules:
            found.append(Fixture(path, rules))
    return found


def patched_source(fixture: Fixture, rule) -> tuple[str, list, list]:
    """(new text, applied findings, skipped (finding, reason)) of ``fix`` with ``rule`` alone."""
    from adopter.structure import package_of
    from adopter.synth import fix_text

    text = fixture.path.read_text(encoding="utf-8")
    result = fix_text(text, str(fixture.path), [rule], package_of(str(fixture.path)))
    if result.error:
        raise FixtureError(f"{fixture.path.name}: fix failed: {result.error}")
    return result.text, list(result.applied), list(result.skipped)


def _runtime_paths() -> None:
    """Make the first-party kernels importable the way an installed user has them: patched
    code imports ``adopter_kernels`` (the runtime distribution in ``runtime/``) or, on older
    trees, ``adopter.kernels``.  The dev venv installs the runtime; a bare checkout gets its
    source folder on ``sys.path`` instead."""
    source = REPO / "runtime" / "src"
    if source.is_dir() and importlib.util.find_spec("adopter_kernels") is None:
        sys.path.append(str(source))
        importlib.invalidate_caches()


class ModulePair:
    """The fixture imported twice: as written (``original``) and as ``fix`` rewrote it (``patched``)."""

    def __init__(self, fixture: Fixture, patched_text: str):
        _runtime_paths()
        self._names: list[str] = []
        self._tmp = tempfile.mkdtemp(prefix="adopter-rulebench-")
        stem = fixture.path.stem
        self.original = self._load(f"_rulebench_{stem}_original_{next(_COUNTER)}", fixture.path)
        patched_file = Path(self._tmp) / f"{stem}_patched.py"
        patched_file.write_text(patched_text, encoding="utf-8")
        self.patched = self._load(f"_rulebench_{stem}_patched_{next(_COUNTER)}", patched_file)

    def _load(self, name: str, path: Path) -> ModuleType:
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise FixtureError(f"cannot import {path}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        self._names.append(name)
        try:
            spec.loader.exec_module(module)
        except Exception as exc:
            raise FixtureError(f"importing {path.name}: {type(exc).__name__}: {exc}") from exc
        return module

    def close(self) -> None:
        for name in self._names:
            sys.modules.pop(name, None)
        for entry in Path(self._tmp).glob("*"):
            try:
                entry.unlink()
            except OSError:
                pass
        try:
            os.rmdir(self._tmp)
        except OSError:
            pass

    def __enter__(self) -> ModulePair:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
