"""Patched code never imports the analysis tool: no rule's target, after-text or synthesis
fixture output imports ``adopter``, and every kernel a rule names lives in a distribution that is
not the tool (PyTorch, or adopter-kernels, whose own tests check it never imports ``adopter``)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from packaging.requirements import Requirement

from adopter.ruleset import load_rules

TOOL_IMPORT = re.compile(r"^\s*(from|import)\s+adopter(\.|\s|$)", re.M)
FIXTURES = Path(__file__).resolve().parents[1] / "synth" / "fixtures"


def _imported(text: str) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_rules_target_built_ins_or_the_runtime_distribution():
    for rule in load_rules():
        package = Requirement(rule.kernel.package).name
        assert package in ("torch", "adopter-kernels"), (rule.id, package)
        assert rule.kernel.import_.split(".")[0] in ("torch", "adopter_kernels"), rule.id
        for target in (*rule.forward_targets, rule.init_target):
            assert target is None or "adopter." not in target, rule.id
        for example in rule.examples:
            if example.after is not None:
                assert not TOOL_IMPORT.search(example.after), (rule.id, example.name)
                assert "adopter" not in _imported(example.after), (rule.id, example.name)


def test_synthesis_fixture_outputs_never_import_the_tool():
    outputs = sorted(FIXTURES.glob("*.out.py"))
    assert outputs
    for path in outputs:
        assert not TOOL_IMPORT.search(path.read_text()), path.name
