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
