"""End to end on toy modules of our own: real synthesis, real kernels, and patches that are wrong."""

import json
from types import SimpleNamespace

import pytest

from adopter.config import Config
from adopter.verify import VerifyResult, verify_file
from adopter.verify.core import options_for
from adopter.verify.result import FAIL, PASS, SKIP

JSON_KEYS = {"rule", "path", "line", "class", "verdict", "reason", "max_abs_diff", "forward_ratio",
             "forward_backward_ratio", "memory_ratio", "device", "combined"}


def _by_rule(results):
    return {r.rule: r for r in results}


def test_toy_patches_pass(toy, all_rules, quick):
    results = verify_file(str(toy / "toy_blocks.py"), all_rules, Config(), benchmark=False, options=quick)
    found = _by_rule(r for r in results if not r.combined)
    assert {"ADP004", "ADP005", "ADP007", "ADP010"} <= set(found)
    for rule, cls in (("ADP004", "Mixer"), ("ADP005", "OutputBlock"), ("ADP007", "ConvStem"), ("ADP010", "Mixer")):
        result = found[rule]
        assert result.verdict == PASS, result
        assert result.class_name == cls
        assert result.max_abs_diff is not None and result.max_abs_diff < 1e-4
        assert result.forward_ratio is None  # no benchmark asked for
        assert result.details["edited_lines"]
    combined = [r for r in results if r.combined]
    # Mixer's attention is also ADP010's (sdpa), which wins over ADP004 when all rules apply.
    assert [(r.rule, r.class_name, r.verdict) for r in combined] == [("ADP004+ADP005+ADP010", "TinyModel", PASS)]
    assert "ran in TinyModel" in combined[0].reason
    assert all(isinstance(r, VerifyResult) for r in results)
    data = results[0].as_dict()
    assert JSON_KEYS <= set(data) and data["class"] == results[0].class_name
    json.dumps([r.as_dict() for r in results])


def _text_fix(old, new, extra_import=""):
    """A stand-in for synthesis: a plain text edit (what a buggy synthesizer might produce)."""

    def fix(text, path, rules, package=None):
        if not any(r.id == "ADP004" for r in rules) or old not in text:
            return SimpleNamespace(text=text, applied=[], skipped=[], error=None)
        patched = text.replace(old, new)
        if extra_import:
            patched = patched.replace("import torch\n", f"import torch\n{extra_import}\n", 1)
        return SimpleNamespace(text=patched, applied=[], skipped=[], error=None)

    return fix


def test_kernel_that_changes_numerics_fails(toy, all_rules, quick):
    fix = _text_fix("F.softmax(scores, dim=-1)", "bad_kernels.softmax(scores, dim=-1)", "import bad_kernels")
    results = verify_file(str(toy / "toy_blocks.py"), [r for r in all_rules if r.id == "ADP004"], Config(),
                          benchmark=False, fix=fix, options=quick)
    assert len(results) == 1
    result = results[0]
    assert result.verdict == FAIL and result.class_name == "Mixer"
    assert "eval" in result.reason and "differs" in result.reason
    assert result.max_abs_diff > 1e-4


def test_a_correct_text_edit_passes(toy, all_rules, quick):
    fix = _text_fix("F.softmax(scores, dim=-1)", "torch.softmax(scores, -1)")
    results = verify_file(str(toy / "toy_blocks.py"), [r for r in all_rules if r.id == "ADP004"], Config(),
                          benchmark=False, fix=fix, options=quick)
    assert [r.verdict for r in results] == [PASS]


def test_patch_that_breaks_the_state_dict_fails(toy, all_rules, quick):
    source = toy / "toy_blocks.py"

    def fix(text, path, rules, package=None):
        patched = text.replace("self.key = nn.Linear", "self.key_proj = nn.Linear").replace(
            "self.key(hidden_states)", "self.key_proj(hidden_states)")
        return SimpleNamespace(text=patched.replace("F.softmax(scores, dim=-1)", "torch.softmax(scores, -1)"),
                               applied=[], skipped=[], error=None)

    results = verify_file(str(source), [r for r in all_rules if r.id == "ADP004"], Config(), benchmark=False,
                          fix=fix, options=quick)
    assert results[0].verdict == FAIL
    assert "strict=True" in results[0].reason and "key" in results[0].reason


def test_patch_that_does_not_import_fails(toy, all_rules, quick):
    fix = _text_fix("F.softmax(scores, dim=-1)", "missing_kernels.softmax(scores)", "import missing_kernels")
    results = verify_file(str(toy / "toy_blocks.py"), [r for r in all_rules if r.id == "ADP004"], Config(),
                          benchmark=False, fix=fix, options=quick)
    assert results[0].verdict == FAIL and "does not import" in results[0].reason


def test_edit_that_never_runs_is_skipped(tmp_path, all_rules, quick):
    source = tmp_path / "gated.py"
    source.write_text(
        "import torch\n"
        "import torch.nn.functional as F\n"
        "from torch import nn\n\n\n"
        "class Gated(nn.Module):\n"
        "    def __init__(self, hidden_size):\n"
        "        super().__init__()\n"
        "        self.proj = nn.Linear(hidden_size, hidden_size)\n\n"
        "    def forward(self, hidden_states):\n"
        "        if hidden_states.shape[0] > 1000:\n"
        "            return F.softmax(self.proj(hidden_states), dim=-1)\n"
        "        return self.proj(hidden_states)\n"
    )
    results = verify_file(str(source), [r for r in all_rules if r.id == "ADP004"], Config(), benchmark=False,
                          options=quick)
    assert len(results) == 1 and results[0].verdict == SKIP
    assert "never ran" in results[0].reason


def test_uninferable_constructor_is_skipped_then_verified_with_a_factory(tmp_path, all_rules):
    source = tmp_path / "custom.py"
    source.write_text(
        "import torch.nn.functional as F\n"
        "from torch import nn\n\n\n"
        "class Custom(nn.Module):\n"
        "    def __init__(self, spec):\n"
        "        super().__init__()\n"
        "        self.proj = nn.Linear(spec['width'], spec['width'])\n"
        "        self.layout = spec['layout']\n\n"
        "    def forward(self, tokens):\n"
        "        if self.layout > 'm':  # read, as nothing can type (a field stored and read nowhere is sized)\n"
        "            tokens = tokens.flip(1)\n"
        "        return F.softmax(self.proj(tokens), dim=-1)\n"
    )
    quick = options_for(Config(), benchmark=False)
    results = verify_file(str(source), [r for r in all_rules if r.id == "ADP004"], Config(), benchmark=False,
                          options=quick)
    assert results[0].verdict == SKIP
    assert results[0].reason == ("name a factory in [tool.adopter.verify] factories for Custom: "
                                 "cannot infer `spec.layout` for Custom")
    (tmp_path / "make_custom.py").write_text(
        "import torch\n\n\n"
        "def make(cls, size='verify'):\n"
        "    width = 16 if size == 'verify' else 64\n"
        "    return cls({'width': width, 'layout': 'rows'}), (torch.randn(3, 5, width),)\n"
    )
    (tmp_path / "pyproject.toml").write_text(
        '[tool.adopter]\nselect = ["ADP004"]\n\n'
        '[tool.adopter.verify]\nfactories = { "Custom" = "make_custom.py:make" }\n'
    )
    from adopter.config import find_config

    config = find_config(tmp_path)
    results = verify_file(str(source), [r for r in all_rules if r.id == "ADP004"], config, benchmark=False)
    assert results[0].verdict == PASS, results[0]
    assert results[0].details["built"].startswith("factory")
    assert results[0].details["inputs"] == "float[3, 5, 16]"


def test_benchmark_reports_ratios(toy, all_rules):
    config = Config(verify={"min-run-time": 0.01, "benchmark-sizes": {"batch": 2, "seq": 16, "hidden": 32,
                                                                       "image": 16, "channels": 8}})
    results = verify_file(str(toy / "toy_blocks.py"), [r for r in all_rules if r.id == "ADP005"], config,
                          benchmark=True)
    result = results[0]
    assert result.verdict == PASS
    assert result.forward_ratio > 0 and result.forward_backward_ratio > 0
    assert result.memory_ratio is not None and result.memory_ratio > 0
    assert result.details["forward_ms"][0] > 0 and result.details["peak_memory_bytes"][0] > 0
    assert result.device == "cpu"


def test_bad_verify_config_is_an_error(toy, all_rules):
    from adopter.verify.core import VerifyError

    with pytest.raises(VerifyError, match="unknown key"):
        verify_file(str(toy / "toy_blocks.py"), all_rules, Config(verify={"speed": 1}), benchmark=False)
    with pytest.raises(VerifyError, match="sizes"):
        verify_file(str(toy / "toy_blocks.py"), all_rules, Config(verify={"sizes": {"hidden": 0}}), benchmark=False)
