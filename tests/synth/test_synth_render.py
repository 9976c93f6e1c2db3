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


def test_a_dtype_promoted_with_itself_is_rendered_as_that_dtype():
    values = {"x": "hidden", "cd": "hidden.dtype", "dt": "torch.float32"}
    template = "norm(x.to(torch.promote_types($x.dtype, $dt))).to(torch.promote_types($x.dtype, $cd))"
    assert substitute(template, values) == "norm(x.to(torch.promote_types(hidden.dtype, torch.float32))).to(hidden.dtype)"
    # different operands, or keywords, are kept as written
    assert substitute("torch.promote_types($x.dtype, $dt)", values) == "torch.promote_types(hidden.dtype, torch.float32)"
    assert substitute("t.promote_types(type1=$x.dtype, type2=$cd)", values) == "t.promote_types(type1=hidden.dtype, type2=hidden.dtype)"
