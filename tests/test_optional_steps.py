"""Optional pattern steps ('?'), rule keys synth/live_intermediates/priority/not_in_fallback_of,
and the matcher's choice among matches that differ only in optional steps."""

import pytest

from adopter.dsl import PatternError, Temp, Var, parse_pattern
from adopter.engine import analyze
from adopter.ruleset import RuleError, load_rule

TOP = 'id = "USR001"\nname = "chain"\nsummary = "s"\n'
KERNEL = '[kernel]\npackage = "p"\nimport = "p.k"\n'


def _rule(tmp_path, forward: str, extra: str = ""):
    # A fresh file each time: the engine caches compiled matchers per rule id and path.
    path = tmp_path / f"r{len(list(tmp_path.glob('*.toml')))}.toml"
    path.write_text(TOP + extra + KERNEL + "[forward]\n" + forward)
    return load_rule(path)


def test_optional_step_parses():
    pattern = parse_pattern("$a = torch.exp($x)\n? $b = $a / $d\n$c = torch.log($b)")
    assert [n.optional for n in pattern.nodes] == [False, True, False]
    assert pattern.nodes[1].args == (Var("a"), Var("d"))


@pytest.mark.parametrize("text, words", [
    ("? torch.exp($x)", "must assign one $variable"),
    ("? $a, $b = f($x)", "must assign one $variable"),
    ("? $a = f(1, $x)", "first input"),
])
def test_optional_step_errors(text, words):
    with pytest.raises(PatternError, match=words.replace("$", r"\$")):
        parse_pattern(text)


def test_nested_optional_step_keeps_inner_nodes_required():
    pattern = parse_pattern("? $y = torch.exp(torch.log($x))")
    assert [n.optional for n in pattern.nodes] == [False, True]
    assert pattern.nodes[1].args == (Temp(0),)


def test_last_step_and_two_first_steps_cannot_be_optional(tmp_path):
    with pytest.raises(RuleError, match="cannot be optional"):
        _rule(tmp_path, 'source = """\n? $a = torch.exp($x)\n? $b = torch.log($a)\n$c = torch.sin($b)\n"""\n')
    with pytest.raises(RuleError, match="cannot be optional"):
        _rule(tmp_path, 'source = """\n$a = torch.exp($x)\n? $b = torch.log($a)\n"""\n')


def test_an_optional_first_step_matches_with_and_without_it(tmp_path):
    from adopter.engine import analyze

    rule = _rule(tmp_path, 'source = """\n? $a = torch.exp($x)\n$b = torch.log($a)\n"""\n')
    both = "import torch\n\n\ndef f(x, y):\n    a = torch.exp(x)\n    b = torch.log(a)\n    c = torch.log(y)\n    return b, c\n"
    found = analyze(both, "m.py", [rule]).matches
    # log(exp(x)) is one match with both steps (not also a shorter one without exp); log(y) another
    assert sorted(len(match.nodes) for _, match in found) == [1, 2]


def test_synth_and_priority_keys_are_checked(tmp_path):
    with pytest.raises(RuleError, match="forward.synth"):
        _rule(tmp_path, 'source = "$y = torch.exp($x)"\nsynth = "../evil"\n')
    with pytest.raises(RuleError, match="priority"):
        _rule(tmp_path, 'source = "$y = torch.exp($x)"\n', 'priority = "high"\n')
    rule = _rule(tmp_path, 'source = "$y = torch.exp($x)"\nsynth = "sdpa"\nlive_intermediates = true\n',
                 "priority = -2\n")
    assert (rule.synth, rule.live_intermediates, rule.priority, rule.fixable) == ("sdpa", True, -2, True)


CHAIN = 'source = """\n$a = torch.exp($x)\n? $b = $a / $d\n? $c = $b + $m\n$y = torch.log($c)\n"""\n'


def _found(rule, code: str):
    return analyze(code, "m.py", [rule]).matches


def test_optional_steps_absent_present_and_longest(tmp_path):
    rule = _rule(tmp_path, CHAIN)
    none = "import torch\ndef f(x):\n    a = torch.exp(x)\n    return torch.log(a)\n"
    both = "import torch\ndef f(x, d, m):\n    a = torch.exp(x)\n    a = a / d\n    a = a + m\n    return torch.log(a)\n"
    (_, match), = _found(rule, none)
    assert match.roles == ("a", "y")
    (_, match), = _found(rule, both)  # one match: the one using both optional steps
    assert match.roles == ("a", "b", "c", "y")
    wrong = "import torch\ndef f(x, d):\n    a = torch.exp(x)\n    b = x / d\n    return torch.log(b)\n"
    assert _found(rule, wrong) == []  # the optional step must continue the chain


def test_conditional_optional_step_prefers_the_path_that_has_it(tmp_path):
    rule = _rule(tmp_path, CHAIN)
    code = ("import torch\ndef f(x, m=None):\n    a = torch.exp(x)\n    if m is not None:\n"
            "        a = a + m\n    return torch.log(a)\n")
    (_, match), = _found(rule, code)
    assert match.roles == ("a", "c", "y")


def test_live_intermediates(tmp_path):
    code = "import torch\ndef f(x):\n    a = torch.exp(x)\n    y = torch.log(a)\n    return y, a\n"
    assert _found(_rule(tmp_path, 'source = "$a = torch.exp($x)\\n$y = torch.log($a)"\n'), code) == []
    live = _rule(tmp_path, 'source = "$a = torch.exp($x)\\n$y = torch.log($a)"\nlive_intermediates = true\n')
    assert len(_found(live, code)) == 1


def test_not_in_fallback_of(tmp_path):
    rule = _rule(tmp_path, 'source = "$a = torch.exp($x)\\n$y = torch.log($a)"\nnot_in_fallback_of = "fast"\n')
    code = ("import torch\ndef f(x, slow):\n    if slow:\n        a = torch.exp(x)\n        y = torch.log(a)\n"
            "    else:\n        y = fast(x)\n    return y\n")
    assert analyze(code, "m.py", [rule]).findings == []
    assert len(analyze(code.replace("fast(x)", "other(x)"), "m.py", [rule]).findings) == 1
