"""Equivalent spellings that take other steps (adopter.equivalents), and the canonical
operations added for them: what a rule written once matches in code written otherwise."""

from __future__ import annotations

import ast

from adopter.dsl import Pattern, Temp, Var, parse_pattern
from adopter.engine import analyze
from adopter.equivalents import MAX_ORDERS, orders, respellings, variants
from adopter.match import Matcher, canonical_pattern
from adopter.structure.model import module_structure


def _ops(pattern: Pattern) -> list[str]:
    return [n.op for n in pattern.nodes]


def _matches(pattern_text: str, code: str, keep=frozenset()) -> int:
    """How many sites a pattern (with its variants) finds in the function ``f`` of ``code``."""
    tree = ast.parse(code)
    structure = module_structure(tree, text=code)
    found = set()
    for forward in [parse_pattern(pattern_text), *variants(parse_pattern(pattern_text), keep)]:
        matcher = Matcher("T", forward, scope="file")
        for match in matcher.match_module(structure):
            found.add(match.key)
    return len(found)


RMS = """
$p = $x.pow(2)
$v = $p.mean(-1, keepdim=True)
$e = $v + $eps
$r = torch.rsqrt($e)
$y = $x * $r
"""


def test_division_by_the_root_is_multiplication_by_rsqrt():
    spelled = variants(parse_pattern(RMS), frozenset({"x", "eps", "y"}))
    shapes = {tuple(_ops(p)) for p in spelled}
    assert ("torch.pow", "torch.mean", "torch.add", "torch.sqrt", "torch.div") in shapes
    assert ("torch.square", "torch.mean", "torch.add", "torch.rsqrt", "torch.mul") in shapes
    assert ("torch.mul", "torch.mean", "torch.add", "torch.rsqrt", "torch.mul") in shapes
    # the divided form keeps $y as the output of its last step and $x as the dividend
    div = next(p for p in spelled if _ops(p)[-1] == "torch.div")
    assert div.nodes[-1].outs == (Var("y"),)
    assert div.nodes[-1].args == (Var("x"), Temp(3))


def test_a_value_the_fragment_computes_and_the_pattern_reads_again_blocks_the_respelling():
    # $r (the reciprocal root) is read by a later step: x / sqrt(e) does not compute it
    pattern = canonical_pattern(parse_pattern("$r = torch.rsqrt($e)\n$y = $x * $r\n$z = $r + $y"))
    spelled = respellings(pattern)
    assert not any(n.op == "torch.div" and n.args[:1] == (Var("x"),) for p in spelled for n in p.nodes)
    # (rsqrt as 1 / sqrt still computes $r, so that respelling stays)
    assert any(_ops(p)[:2] == ["torch.sqrt", "torch.div"] and p.nodes[1].args[0].value == 1 for p in spelled)


def test_fragment_variables_do_not_bind_literals():
    # 1 / sqrt(e) must not be rewritten into 1 * rsqrt(e)
    pattern = canonical_pattern(parse_pattern("$y = 1 / torch.sqrt($e)"))
    assert all(_ops(p) != ["torch.rsqrt", "torch.mul"] for p in respellings(pattern))


def test_independent_steps_come_in_any_order_and_dependent_ones_do_not():
    pattern = canonical_pattern(parse_pattern("$g = $gate($x)\n$a = $act($g)\n$u = $up($x)\n$m = $a * $u"))
    found = {tuple(n.outs[0].name for n in p.nodes) for p in orders(pattern)}
    assert found == {("g", "u", "a", "m"), ("u", "g", "a", "m")}
    many = canonical_pattern(parse_pattern("\n".join(f"$y{i} = $l{i}($x)" for i in range(5))))
    assert orders(many) == []  # 120 orders: more than MAX_ORDERS, only the written one
    assert MAX_ORDERS < 120


def test_spellings_match_code_and_near_misses_do_not():
    keep = frozenset({"x", "eps", "y"})
    assert _matches(RMS, "import torch\ndef f(x, e):\n    return x / torch.sqrt((x * x).mean(-1, keepdim=True) + e)\n",
                    keep) == 1
    assert _matches(RMS, "import torch\ndef f(x, e):\n    return x * (x.square().mean(-1, keepdim=True) + e).rsqrt()\n",
                    keep) == 1
    # the product of two tensors is not a square; eps outside the root is another norm
    assert _matches(RMS, "import torch\ndef f(x, z, e):\n    return x / torch.sqrt((x * z).mean(-1, keepdim=True) + e)\n",
                    keep) == 0
    assert _matches(RMS, "import torch\ndef f(x, e):\n    return x / (torch.sqrt((x * x).mean(-1, keepdim=True)) + e)\n",
                    keep) == 0


def _canon_nodes(code: str, cls: str = "M") -> list:
    structure = module_structure(ast.parse(code), text=code)
    return [n for n in structure.classes[cls].flow("forward").nodes if n.canon]


def test_a_loss_module_built_in_the_forward_is_a_cross_entropy_call():
    code = """
import torch
from torch.nn import CrossEntropyLoss


class M(torch.nn.Module):
    def forward(self, logits, labels):
        loss_fct = CrossEntropyLoss(ignore_index=-100)
        return loss_fct(logits, labels)
"""
    [node] = [n for n in _canon_nodes(code) if n.canon == "torch.nn.functional.cross_entropy"]
    assert dict(node.view.kwargs)["ignore_index"].value == -100
    assert [a.key for a in node.view.args] == ["logits", "labels"]


def test_rotate_half_in_place_is_one_operation_and_look_alikes_are_not():
    code = """
import torch


class M(torch.nn.Module):
    def forward(self, x, y, r):
        half = x.size(-1) // 2
        x1, x2 = x[..., :half], x[..., half:]
        a = torch.cat((-x[..., x.shape[-1] // 2:], x[..., : x.shape[-1] // 2]), dim=-1)
        y1, y2 = y.chunk(2, dim=-1)
        b = torch.cat((-y2, y1), dim=-1)
        c = torch.cat((x2, x1), dim=-1)
        d = torch.cat((-x[..., r:], x[..., :r]), dim=-1)
        e = torch.cat((-y1, y2), dim=-1)
        return a, b, c, d, e
"""
    rotations = [n for n in _canon_nodes(code) if n.canon == "canon.rotate_half"]
    assert [(n.line, n.view.args[0].key) for n in rotations] == [(9, "x"), (11, "y")]


def test_a_rule_finds_the_one_tensor_rope_helper_once_for_q_and_k():
    from adopter.ruleset import load_rules

    rule = next(r for r in load_rules() if r.id == "ADP014")
    code = """
import torch
from torch import nn


def apply_rope(x, cos, sin):
    x1, x2 = x.chunk(2, dim=-1)
    return x * cos + torch.cat((-x2, x1), dim=-1) * sin


class Attention(nn.Module):
    def forward(self, q, k, cos, sin):
        return apply_rope(q, cos, sin) @ apply_rope(k, cos, sin).transpose(-1, -2)
"""
    findings = analyze(code, "m.py", [rule]).findings
    assert [f.line for f in findings] == [8]
