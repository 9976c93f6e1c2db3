"""Layer typing that follows the code, on model files written in the styles of torchvision,
timm and Hugging Face (tests/fixtures/layers/, written for these tests).

Each fixture marks the line of every expected finding with ``# expect: RULE`` (``RULE report``
when it is reported but not fixable).  For every fixture: the findings are exactly the marked
ones, ``fix`` rewrites exactly the fixable ones (check's fixable count is what fix does), the
patched file compiles and a second fix changes nothing, and the patched models, built with
the original's state dict loaded strictly, compute what the originals do (float64, eval mode;
the fixture's ``cases()`` say which models to build and the input shape).
"""

from __future__ import annotations

import ast
import importlib.util
import re
import sys
from collections import Counter
from pathlib import Path

import pytest

from adopter.engine import analyze
from adopter.ruleset import load_rules, select_rules
from adopter.synth import fix_text

FIXTURES = Path(__file__).parent / "fixtures" / "layers"
RULES = select_rules(load_rules(), ["ADP005", "ADP007", "ADP008", "ADP009"])
EXPECT = re.compile(r"#\s*expect:\s*(?P<rule>ADP\d{3})(?P<report>\s+report)?")
FILES = sorted(FIXTURES.glob("*.py"))


def _expected(text: str) -> set[tuple[int, str, bool]]:
    out = set()
    for number, line in enumerate(text.split("\n"), 1):
        found = EXPECT.search(line)
        if found:
            out.add((number, found.group("rule"), not found.group("report")))
    return out


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_findings_are_the_marked_ones(path):
    text = path.read_text()
    found = {(f.line, f.rule, f.fixable) for f in analyze(text, str(path), RULES).findings}
    assert found == _expected(text)


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_fix_does_what_check_says_and_is_idempotent(path):
    text = path.read_text()
    findings = analyze(text, str(path), RULES).findings
    result = fix_text(text, str(path), RULES)
    assert result.error is None
    # Each fix round re-analyses the edited text, so lines of later findings move: compare per rule.
    assert Counter(f.rule for f in result.applied) == Counter(f.rule for f in findings if f.fixable)
    assert Counter(f.rule for f, _ in result.skipped) == Counter(f.rule for f in findings if not f.fixable)
    ast.parse(result.text)
    compile(result.text, str(path), "exec")
    again = fix_text(result.text, str(path), RULES)
    assert again.text == result.text and again.applied == []


def _load(text: str, name: str, folder: Path):
    path = folder / f"{name}.py"
    path.write_text(text)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    finally:
        sys.modules.pop(name, None)
    return module


def _prepare(model, torch):
    """Non-trivial BatchNorm statistics and affine parameters, then eval mode in float64."""
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                module.running_mean.uniform_(-0.5, 0.5, generator=generator)
                module.running_var.uniform_(0.5, 2.0, generator=generator)
                module.weight.uniform_(0.5, 1.5, generator=generator)
                module.bias.uniform_(-0.5, 0.5, generator=generator)
    return model.double().eval()


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_patched_models_compute_what_the_originals_do(path, tmp_path):
    torch = pytest.importorskip("torch")
    text = path.read_text()
    patched_text = fix_text(text, str(path), RULES).text
    assert (patched_text != text) == any(fixable for _, _, fixable in _expected(text))
    original = _load(text, f"orig_{path.stem}", tmp_path)
    patched = _load(patched_text, f"patched_{path.stem}", tmp_path)
    for index, ((build_a, shape), (build_b, _)) in enumerate(zip(original.cases(), patched.cases())):
        torch.manual_seed(index)
        a = _prepare(build_a(), torch)
        b = build_b().double()
        b.load_state_dict(a.state_dict(), strict=True)
        b.eval()
        x = torch.randn(*shape, dtype=torch.float64, generator=torch.Generator().manual_seed(7))
        with torch.no_grad():
            torch.testing.assert_close(b(x), a(x))


def test_a_layer_class_passed_down_through_several_constructors(findings):
    """torchvision's MaxVit passes activation_layer=nn.GELU through MaxVitLayer and MaxVitBlock
    to the block that builds its MLP: each constructor hands its parameter on."""
    src = """
    from torch import nn


    class Inner(nn.Module):
        def __init__(self, d, activation_layer):
            super().__init__()
            self.fc = nn.Linear(d, d)
            self.act = activation_layer()

        def forward(self, x):
            return self.act(self.fc(x))


    class Mid(nn.Module):
        def __init__(self, d, activation_layer):
            super().__init__()
            self.inner = Inner(d, activation_layer=activation_layer)

        def forward(self, x):
            return self.inner(x)


    class Mid2(nn.Module):
        def __init__(self, d, activation_layer):
            super().__init__()
            self.mid = Mid(d, activation_layer)

        def forward(self, x):
            return self.mid(x)


    class Outer(nn.Module):
        def __init__(self, d, activation_layer=nn.GELU):
            super().__init__()
            self.mid = Mid2(d, activation_layer=activation_layer)

        def forward(self, x):
            return self.mid(x)
    """
    assert findings(src, "ADP006") == [("ADP006", 12)]
    assert findings(src.replace("activation_layer=nn.GELU", "activation_layer=nn.ReLU"), "ADP006") == []

