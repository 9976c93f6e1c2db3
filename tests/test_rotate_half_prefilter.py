"""ADP014's rotate-half patterns skip a root before its graph is built when none of the code
it reaches writes a call whose first argument starts with a negated element (the NEG_PAIR
pseudo-word of structure.model): every way of writing the concatenation that the flow builder
reads is still found, and a class that concatenates for anything else gets no graph."""

from __future__ import annotations

import ast

import pytest

from adopter.engine import analyze, matchers_for
from adopter.ruleset import load_rules
from adopter.structure.canon import NEG_PAIR
from adopter.structure.model import _mentions, module_structure

ROPE = """
import torch
from torch import nn
{imports}

class Attention(nn.Module):
    def forward(self, q, k, cos, sin):
        x1 = q[..., : q.shape[-1] // 2]
        x2 = q[..., q.shape[-1] // 2 :]
        y1 = k[..., : k.shape[-1] // 2]
        y2 = k[..., k.shape[-1] // 2 :]
        q = q * cos + {rotated_q} * sin
        k = k * cos + {rotated_k} * sin
        return q @ k.transpose(-1, -2)
"""


@pytest.fixture(scope="module")
def rope_rule():
    return next(r for r in load_rules() if r.id == "ADP014")


@pytest.mark.parametrize("imports, cat", [
    ("", "torch.cat((-x2, x1), dim=-1)"),
    ("", "torch.cat([-x2, x1], dim=-1)"),
    ("", "torch.cat(((-x2), x1), -1)"),
    ("", "torch.cat(  # the two halves swapped\n            (\n                - x2, x1), dim=-1)"),
    ("", "torch.cat(\\\n            (-x2, x1), dim=-1)"),
    ("", "torch.concat((-x2, x1), dim=-1)"),
])
def test_every_spelling_the_builder_reads_is_still_found(rope_rule, imports, cat):
    code = ROPE.format(imports=imports, rotated_q=cat, rotated_k=cat.replace("x2", "y2").replace("x1", "y1"))
    ast.parse(code)
    findings = analyze(code, "m.py", [rope_rule]).findings
    assert [f.rule for f in findings] == ["ADP014"], code


def test_a_helper_function_that_concatenates_counts_for_the_root_that_calls_it(rope_rule):
    # the helper's text has the negated pair, the forward's has not: the forward reaches it
    code = """
import torch
from torch import nn


def apply_rope(x, cos, sin):
    x1, x2 = x.chunk(2, dim=-1)
    return x * cos + torch.cat(
        (-x2, x1), dim=-1) * sin


class Attention(nn.Module):
    def forward(self, q, k, cos, sin):
        return apply_rope(q, cos, sin) @ apply_rope(k, cos, sin).transpose(-1, -2)
"""
    assert [(f.rule, f.line) for f in analyze(code, "m.py", [rope_rule]).findings] == [("ADP014", 8)]


def test_a_class_that_concatenates_for_anything_else_gets_no_graph(rope_rule):
    code = """
import torch
from torch import nn


class Pool(nn.Module):
    def forward(self, a, b):
        both = torch.cat((a, -b), dim=-1)  # negated, but not first
        return torch.cat([both, a.view(-1, 4)], dim=0) * 2
"""
    # (the rule's rotate-half matchers; other alternatives have pre-filters of their own)
    rotating = [m for m in matchers_for(rope_rule) if any(key[0] == "negpair" for key in m.word_keys)]
    assert rotating
    structure = module_structure(ast.parse(code), None, code, "m.py")
    assert [m.match_module(structure) for m in rotating] == [[]] * len(rotating)
    assert structure.classes["Pool"]._flows == {}
    # the same class with the negated half first: its forward's graph is built and searched
    code = code.replace("(a, -b)", "(-b, a)")
    structure = module_structure(ast.parse(code), None, code, "m.py")
    for m in rotating:
        m.match_module(structure)
    assert "forward" in structure.classes["Pool"]._flows


def test_the_pseudo_word_is_read_off_text_and_tree_alike():
    for source, expected in (("def f(x):\n    return g((-x, x))\n", True),
                             ("def f(x):\n    return g([ -x, x])\n", True),
                             ("def f(x):\n    return g((x, -x))\n", False),
                             ("def f(x):\n    return g(-x, x)\n", False),
                             ("def f(x):\n    return g('(-x, x)')  # (-\n", False)):
        func = ast.parse(source).body[0]
        assert (NEG_PAIR in _mentions(func, source.split("\n"))) is expected, source
        assert (NEG_PAIR in _mentions(func, None)) is expected, source
