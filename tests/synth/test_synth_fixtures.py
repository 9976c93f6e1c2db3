"""Synthesis fixtures: ``fixtures/NAME.in.py`` fixed with the default rules gives
``fixtures/NAME.out.py`` exactly (TorchFix style: new pairs are picked up automatically)."""

import ast
from pathlib import Path

import pytest

from adopter.ruleset import load_rules
from adopter.synth import fix_text

FIXTURES = Path(__file__).parent / "fixtures"
PAIRS = sorted(FIXTURES.glob("*.in.py"))
# the default rules and the softmax rule (ADP004, off by default), which several cases exercise
RULES = load_rules()  # every rule, the off-by-default ones too: the fixtures exercise them all


def _fix(path: Path, text: str | None = None):
    # The fixture's bare name: no file of that name in the working folder, so the rewrite uses
    # the default style whatever the configuration of the folder the tests run in.
    return fix_text(path.read_text() if text is None else text, path.name, RULES)


def test_fixtures_are_paired():
    assert PAIRS
    for source in PAIRS:
        assert source.with_name(source.name.replace(".in.py", ".out.py")).is_file(), source


@pytest.mark.parametrize("source", PAIRS, ids=[p.name[: -len(".in.py")] for p in PAIRS])
def test_fixture(source: Path):
    expected = source.with_name(source.name.replace(".in.py", ".out.py")).read_text()
    result = _fix(source)
    assert result.error is None
    assert result.text == expected
    tree = ast.parse(result.text)
    # Kernel imports only ever land at module level.
    top = [node for node in tree.body if isinstance(node, ast.ImportFrom)]
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "adopter_kernels":
            assert node in top
    # A second run finds nothing more to change.
    again = _fix(source, result.text)
    assert again.text == result.text
    assert again.applied == []


def _reasons(name: str) -> dict[tuple[str, int], str]:
    result = _fix(FIXTURES / f"{name}.in.py")
    return {(f.rule, f.line): reason for f, reason in result.skipped}


def test_skips_say_why():
    reasons = _reasons("not_fixed")
    assert "helper" in reasons[("ADP007", 15)]
    assert "reassigned" in reasons[("ADP005", 31)]


def test_applied_findings_and_requirements():
    result = _fix(FIXTURES / "two_rules.in.py")
    # ADP010 (sdpa, priority -1) fuses the whole attention, so ADP004 has no softmax left.
    assert sorted(f.rule for f in result.applied) == ["ADP005", "ADP009", "ADP010"]
    assert result.requirements == {"adopter-kernels>=0.1.0", "torch>=2.3"}
    assert result.skipped == []


def test_one_layer_called_twice_is_one_init_edit():
    source = FIXTURES / "init_edit.in.py"
    result = _fix(source)
    assert [f.rule for f in result.applied] == ["ADP001", "ADP001"]
    assert result.text.count("sdpa_bert_self_attention(BertSelfAttention)(") == 1


def test_decorated_method_edits_the_right_lines():
    source = FIXTURES / "decorated.in.py"
    before = source.read_text().splitlines()
    after = _fix(source).text.splitlines()
    # One import line added (in its isort place), two statements fused into one: every other
    # line is the same.
    assert after[:5] == before[:3] + ["from adopter_kernels import conv_bn", before[3]]
    fused = after.index("        x = conv_bn(x, self.conv, self.bn)")
    assert before[fused - 1: fused + 1] == ["        x = self.conv(x)", "        x = self.bn(x)"]
    assert after[5:fused] == before[4:fused - 1]
    assert after[fused + 1:] == before[fused + 1:]


def test_unparsable_text_is_an_error_and_unchanged():
    text = "def broken(:\n    pass\n"
    result = fix_text(text, "broken.py", RULES)
    assert result.error and "syntax error" in result.error
    assert result.text == text and result.applied == []


def test_crlf_text_keeps_crlf():
    source = FIXTURES / "nested_call.in.py"
    text = source.read_text().replace("\n", "\r\n")
    result = fix_text(text, source.name, RULES)
    expected = (FIXTURES / "nested_call.out.py").read_text().replace("\n", "\r\n")
    assert result.text == expected


def test_non_ascii_columns():
    text = (
        "import torch.nn.functional as F\n\n\n"
        "def f(größe, värde):\n"
        "    p = värde * F.softmax(größe, dim=-1)  # ünïcode\n"
        "    return p\n"
    )
    result = fix_text(text, "u.py", RULES)
    assert "    p = värde * softmax(größe, dim=-1)  # ünïcode\n" in result.text


def test_target_ellipsis_passes_the_codes_extra_arguments():
    (rule,) = [r for r in RULES if r.id == "ADP004"]
    assert rule.forward_target.rstrip().endswith(", ...)")
    text = (
        "import torch\nimport torch.nn.functional as F\n\n\n"
        "def f(s, t):\n"
        "    a = F.softmax(s, dim=-1, dtype=torch.float32)\n"
        "    b = F.softmax(t, -1)\n"
        "    return a, b\n"
    )
    result = fix_text(text, "f.py", [rule])
    assert "    a = softmax(s, dim=-1, dtype=torch.float32)\n" in result.text
    assert "    b = softmax(t, dim=-1)\n" in result.text
    assert result.skipped == []


def test_each_source_alternative_renders_its_own_target(tmp_path):
    """A rule whose alternatives need different rewrites (ADP011: x normalised in its own dtype,
    or the variance of an upcast copy) renders the target of the alternative that matched."""
    from adopter.ruleset import load_rule

    (tmp_path / "r.toml").write_text(
        'id = "USR001"\nname = "r"\nsummary = "s"\n[kernel]\npackage = "p"\nimport = "p.k.act"\n'
        '[forward]\nsource = ["$y = torch.relu($x)", "$u = $x.float()\\n$y = torch.tanh($u)"]\n'
        'target = ["$y = p.k.act($x, 0)", "$y = p.k.act($x, 1)"]\n'
    )
    rule = load_rule(tmp_path / "r.toml")
    code = "import torch\n\n\ndef f(a, b):\n    c = torch.relu(a)\n    d = b.float()\n    e = torch.tanh(d)\n    return c, e\n"
    result = fix_text(code, "m.py", [rule])
    assert "c = act(a, 0)" in result.text
    assert "e = act(b, 1)" in result.text
    assert "b.float()" not in result.text
