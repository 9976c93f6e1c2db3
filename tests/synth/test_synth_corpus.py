"""Smoke test on real model code: the installed transformers==4.34.0 modeling files."""

import ast
from pathlib import Path

import pytest

from adopter.ruleset import load_rules
from adopter.synth import fix_text

transformers = pytest.importorskip("transformers")
if transformers.__version__ != "4.34.0":  # pragma: no cover - the corpus is pinned
    pytest.skip("needs transformers==4.34.0", allow_module_level=True)

MODELS = ("bert", "gpt2", "t5", "albert", "resnet", "distilbert")
ROOT = Path(transformers.__file__).parent / "models"
# the default rules and the softmax rule (ADP004, off by default), which several cases exercise
RULES = load_rules()  # every rule, the off-by-default ones too: the fixtures exercise them all


@pytest.mark.parametrize("model", MODELS)
def test_corpus_file(model):
    path = ROOT / model / f"modeling_{model}.py"
    text = path.read_text(encoding="utf-8")
    package = f"transformers.models.{model}"
    result = fix_text(text, str(path), RULES, package)
    assert result.error is None
    assert result.applied, f"expected rewrites in {path.name}"
    tree = ast.parse(result.text)
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "adopter_kernels":
            assert node in tree.body, f"kernel import at line {node.lineno} is not at module level"
    again = fix_text(result.text, str(path), RULES, package)
    assert again.text == result.text
    assert again.applied == []
