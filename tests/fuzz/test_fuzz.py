"""Fuzzing ``check`` and ``fix`` (every rule) with hypothesis.

Properties, for generated PyTorch modules and for mutated pieces of real files:

* no internal error (no exception escapes; no "internal error" in any message);
* ``fix`` output compiles, and a second ``fix`` changes nothing;
* generated modules only: the patched module computes what the original does (torch, CPU,
  eval mode, same weights, random BatchNorm statistics).

The example counts come from the hypothesis profile: ``ci`` (the default, bounded for the
normal test run) or ``campaign`` (``HYPOTHESIS_PROFILE=campaign``; see benchmarks/README.md).
"""

from __future__ import annotations

import importlib.util
import sys
import types
from pathlib import Path

import pytest
from hypothesis import event, given, note

from adopter.engine import AnalysisError, analyze
from adopter.ruleset import load_rules
from adopter.source import SourceError, decode
from adopter.synth import fix_text

from .strategies import GeneratedModule, mutated_sources, real_class_sources, torch_modules

pytestmark = pytest.mark.fuzz

RULES = load_rules()  # every rule, the off-by-default ones too


def fix_properties(text: str, path: str):
    """Run check and fix; assert the properties every input must keep; return the fix."""
    try:
        analysis = analyze(text, path, RULES)
    except AnalysisError as exc:
        assert "internal error" not in str(exc)
        analysis = None
    result = fix_text(text, path, RULES)
    if result.error is not None:
        assert analysis is None, f"check analysed the file but fix failed: {result.error}"
        assert "internal error" not in result.error, result.error
        return result
    for finding, reason in result.skipped:
        assert "internal error" not in reason, (finding, reason)
    if result.text != text:
        compile(result.text, path, "exec", dont_inherit=True)
        again = fix_text(result.text, path, RULES)
        assert again.error is None and again.text == result.text, "a second fix changes the file"
        assert again.applied == []
    return result


def _load(source: str, name: str) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__file__ = f"<{name}>"
    exec(compile(source, module.__file__, "exec"), module.__dict__)
    return module


def _randomise(model, torch) -> dict:
    state = {}
    generator = torch.Generator().manual_seed(1234)
    for key, value in model.state_dict().items():
        if value.is_floating_point():
            value = torch.randn(value.shape, generator=generator, dtype=value.dtype)
            if key.endswith("running_var"):
                value = value.abs() + 0.5
        state[key] = value
    return state


@given(torch_modules())
def test_generated_modules(module: GeneratedModule):
    note(module.source)
    result = fix_properties(module.source, "model.py")
    for rule in sorted({f.rule for f in result.applied}):
        event(f"fixed {rule}")
    if not result.applied:
        event("nothing fixed")
        return
    note(result.text)
    torch = pytest.importorskip("torch")
    config = types.SimpleNamespace(hidden_act="gelu")
    # float64: a fused kernel rounds differently in float32 (folding BatchNorm into a conv
    # changes the order of operations), which is not what this property is about.
    original = _load(module.source, "fuzz_original").Model(config).eval().double()
    patched = _load(result.text, "fuzz_patched").Model(config).eval().double()
    state = _randomise(original, torch)
    original.load_state_dict(state)
    patched.load_state_dict(state)  # the patch keeps the parameter names (checkpoints still load)
    x = torch.randn(module.input_shape, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    with torch.no_grad():
        expected = original(x.clone())
        actual = patched(x.clone())
    torch.testing.assert_close(actual, expected, rtol=1e-9, atol=1e-10)
    event("patched module run and compared")


def _real_pieces() -> list[str]:
    spec = importlib.util.find_spec("transformers")  # located, never imported
    if spec is None or spec.origin is None:  # pragma: no cover - transformers is a dev dependency
        return []
    models = Path(spec.origin).parent / "models"
    pieces: list[str] = []
    for name in ("bert", "gpt2", "t5", "vit", "resnet", "convnext", "gpt_neo", "whisper"):
        path = models / name / f"modeling_{name}.py"
        if path.exists():
            pieces += real_class_sources(path)
    return pieces


PIECES = _real_pieces()


@pytest.mark.skipif(not PIECES, reason="needs the transformers dev dependency")
@given(mutated_sources(PIECES))
def test_mutated_real_code(data: bytes):
    try:
        source = decode(data, "modeling_x.py")
    except SourceError as exc:
        assert "internal error" not in str(exc)
        event("rejected as bad input by the reader")
        return
    note(source.text)
    result = fix_properties(source.text, "modeling_x.py")
    event("fix: file error (bad input)" if result.error else "fix: fixed" if result.applied else "fix: unchanged")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-q"]))
