"""engine.analyze pauses the cyclic garbage collector while it analyses a file; that is only
sound if the analysis leaves no reference cycles behind (its garbage is then freed by
reference counting).  These tests analyse real model code with every rule and count what a
collection finds afterwards."""

from __future__ import annotations

import ast
import gc
from pathlib import Path

import pytest

from adopter.engine import analyze
from adopter.ruleset import load_rules

ROOT = Path(__file__).resolve().parent.parent
MODELS = sorted([ROOT / "examples" / "tiny_transformer.py", ROOT / "examples" / "convnet.py",
                 *(ROOT / "tests" / "synth" / "fixtures").glob("*.in.py"),
                 # layer lists unrolled, chain loops, same-file head modules: readers that once
                 # kept the syntax tree in a cycle (a recursive closure, an environment holding
                 # itself), found over the paper corpus
                 *(ROOT / "tests" / "fixtures" / "engine_gc").glob("*.py")])


@pytest.fixture(scope="module")
def rules():
    return load_rules()


@pytest.mark.parametrize("path", MODELS, ids=lambda p: p.name)
def test_analysis_leaves_no_cyclic_garbage(path, rules):
    text = path.read_text(encoding="utf-8")
    analyze(text, str(path), rules)  # warm: matchers compiled, caches filled
    gc.collect()
    gc.disable()
    try:
        result = analyze(text, str(path), rules)
        del result
        assert gc.collect() == 0
    finally:
        gc.enable()


def test_the_examples_are_analysed(rules):
    """The files above do reach the matcher (a no-op analysis would pass trivially)."""
    text = (ROOT / "examples" / "tiny_transformer.py").read_text(encoding="utf-8")
    assert analyze(text, "tiny_transformer.py", rules).findings


@pytest.mark.parametrize("enabled", [True, False])
def test_analyze_restores_the_collector_state(enabled, rules):
    text = (ROOT / "examples" / "tiny_transformer.py").read_text(encoding="utf-8")
    (gc.enable if enabled else gc.disable)()
    try:
        analyze(text, "tiny_transformer.py", rules)
        assert gc.isenabled() is enabled
        with pytest.raises(Exception):
            analyze("def f(:\n", "broken.py", rules)
        assert gc.isenabled() is enabled
    finally:
        gc.enable()


def test_no_collection_runs_inside_an_analysis(rules):
    """The collector stays off from the parse to the return (one window): switched back on in
    between, the first allocation after the parse collected the whole new syntax tree."""
    text = (ROOT / "examples" / "tiny_transformer.py").read_text(encoding="utf-8")
    text = "\n\n".join([text] * 20)  # a tree of some 10^4 objects, more than gen 0's threshold
    analyze(text, "big.py", rules)  # warm
    inside = [False]
    during: list[int] = []

    def count(phase, info):
        if phase == "start" and inside[0]:
            during.append(info["generation"])

    gc.collect()
    gc.callbacks.append(count)
    try:
        inside[0] = True
        result = analyze(text, "big.py", rules)
        inside[0] = False
    finally:
        gc.callbacks.remove(count)
    assert result.findings
    assert gc.isenabled()
    assert during == []


def test_no_recursive_closure_in_the_analysis():
    """A nested function that calls itself is a reference cycle (the function, its closure
    cell); whatever its closure holds -- environments, class infos, the syntax tree -- then
    outlives the analysis until a cyclic collection, which analyze keeps paused.  Three such
    closures held 1.8M objects over the paper corpus (peak memory 350 MiB instead of 60 MiB).
    The fixtures above exercise the ones found; this keeps new ones out of the analysis
    modules, whose shapes no fixture set covers completely."""
    found = []
    for path in sorted([*(ROOT / "adopter" / "structure").glob("*.py"), ROOT / "adopter" / "match.py",
                        ROOT / "adopter" / "engine.py"]):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for outer in ast.walk(tree):
            if not isinstance(outer, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for inner in ast.walk(outer):
                if inner is not outer and isinstance(inner, (ast.FunctionDef, ast.AsyncFunctionDef)) and any(
                        isinstance(n, ast.Name) and n.id == inner.name for n in ast.walk(inner)):
                    found.append(f"{path.relative_to(ROOT)}:{inner.lineno} {outer.name}.{inner.name}")
    assert found == []
