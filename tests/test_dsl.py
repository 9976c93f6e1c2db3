import pytest

from adopter.dsl import Lit, PatternError, Sym, Temp, Var, Wild, parse_pattern


def test_nested_calls_unchain_like_code():
    nested = parse_pattern("$y = $ln($drop($x) + $r)")
    flat = parse_pattern("$d = $drop($x)\n$s = $d + $r\n$y = $ln($s)")
    assert [n.op for n in nested.nodes] == [n.op for n in flat.nodes] == ["layer", "+", "layer"]
    assert nested.nodes[1].args == (Temp(0), Var("r"))
    assert nested.nodes[2].outs == (Var("y"),)


def test_literals_keywords_rest_and_tables():
    p = parse_pattern("$p = torch.nn.functional.softmax($a, dim=-1, ...); $t = x.ACT2FN[config.hidden_act]")
    softmax, table = p.nodes
    assert softmax.op == "torch.nn.functional.softmax"
    assert softmax.kwargs == (("dim", Lit(-1)),) and softmax.rest
    assert table.op == "table" and table.method == "x.ACT2FN" and table.args == (Sym("config.hidden_act"),)


def test_wildcards_and_constants():
    p = parse_pattern("_ = f(_, True, None, 'gelu', 1.5)")
    assert p.nodes[0].args == (Wild(), Lit(True), Lit(None), Lit("gelu"), Lit(1.5))


@pytest.mark.parametrize(
    "text, line, column, words",
    [
        ("$y = torch.nn.foo($x", 1, 19, "expected ')'"),
        ("$y = torch.nn.foo($x\n", 1, 21, "expected ')'"),
        ("$y = f($x)\n$z = g($x,,)", 2, 11, "expected"),
        ("foo = bar($x)", 1, 1, "cannot assign to 'foo'"),
        ("$y = f(a.b=1)", 1, 8, "not a plain name"),
        ("$y = f($x) $z", 1, 12, "expected"),
        ("$y = f(#)", 1, 7, "expected"),
    ],
)
def test_errors_have_positions(text, line, column, words):
    with pytest.raises(PatternError) as info:
        parse_pattern(text)
    assert (info.value.line, info.value.column) == (line, column)
    assert words in info.value.message


def test_comments_and_blank_lines_are_ignored():
    p = parse_pattern("\n# a comment\n$y = f($x)  # trailing\n\n")
    assert len(p.nodes) == 1


def test_absent_keyword_constraint(findings, tmp_path):
    """``!name``: the code must not pass that keyword (nor ``**kwargs``, which might hold it)."""
    from adopter.dsl import parse_pattern
    from adopter.engine import analyze
    from adopter.ruleset import load_rule

    node = parse_pattern("torch.optim.SGD(..., !fused, !foreach)").nodes[0]
    assert node.absent == ("fused", "foreach") and node.rest
    with pytest.raises(PatternError):
        parse_pattern("torch.optim.SGD(!fused, $x)")  # positional after it
    (tmp_path / "r.toml").write_text(
        'id = "USR001"\nname = "r"\nsummary = "s"\n[kernel]\npackage = "p"\nimport = "p.k"\n'
        '[forward]\nsource = "torch.optim.SGD(..., !fused)"\n'
    )
    rule = load_rule(tmp_path / "r.toml")
    code = ("import torch\n\ndef f(m, opts):\n    a = torch.optim.SGD(m.parameters(), lr=1)\n"
            "    b = torch.optim.SGD(m.parameters(), lr=1, fused=False)\n"
            "    c = torch.optim.SGD(m.parameters(), **opts)\n")
    assert [f.line for f in analyze(code, "m.py", [rule]).findings] == [4]
