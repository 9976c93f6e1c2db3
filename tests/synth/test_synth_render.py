"""Rendering rule targets into Python text."""

import pytest

from adopter.synth.render import RenderError, atomize, parse_target, replace_names, substitute


def test_parse_target():
    target = parse_target("$q, $k, $v = adopter_kernels.fused_qkv($x, $lq, $lk, $lv)")
    assert target.outs == ("q", "k", "v")
    assert target.rhs == "adopter_kernels.fused_qkv($x, $lq, $lk, $lv)"
    assert parse_target("f($x, dim=-1)").outs == ()
    with pytest.raises(RenderError):
        parse_target("self.x = f($x)")


def test_atomize():
    assert atomize("a + b", argument=True) == "a + b"
    assert atomize("a + b", argument=False) == "(a + b)"
    assert atomize("a, b", argument=True) == "(a, b)"
    assert atomize("self.dense(x)", argument=False) == "self.dense(x)"
    assert atomize("a\n    + b", argument=True) == "(a\n    + b)"  # only valid inside brackets


def test_substitute_and_names():
    template = replace_names("adopter_kernels.softmax($x, dim=-1, ...)", lambda n: "sm" if n.startswith("adopter_kernels.") else None)
    assert template == "sm($x, dim=-1, ...)"
    assert substitute(template, {"x": "s"}) == "sm(s, dim=-1)"
    assert substitute(template, {"x": "s"}, "dtype=torch.float32") == "sm(s, dim=-1, dtype=torch.float32)"
    assert substitute("$ln($x) * $y", {"ln": "self.norm", "x": "a", "y": "b + c"}) == "self.norm(a) * (b + c)"
    assert substitute("f($x)", {"x": "'$y'"}) == "f('$y')"  # values are never re-scanned
    with pytest.raises(RenderError):
        substitute("f($missing)", {})
