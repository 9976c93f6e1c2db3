"""The parentheses that grouped ``attn @ v`` so a method could follow (``(attn @ v).transpose(1,
2)``) are not needed around the call that replaces it: the fix writes ``scaled_dot_product_attention(
...).transpose(1, 2)``, as a person would.  A call's own parentheses (``torch.flatten(attn @ v,
2)``) stay."""

from __future__ import annotations

import ast

from adopter.ruleset import load_rules, select_rules
from adopter.synth import fix_text

ADP010 = select_rules(load_rules(), ["ADP010"])

MODULE = """\
import torch
from torch import nn


class Attn(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.scale = (dim // heads) ** -0.5
        self.qkv = nn.Linear(dim, 3 * dim)

    def forward(self, x):
        b, n, c = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        s = (q @ k.transpose(-2, -1)) * self.scale
        s = s.softmax(dim=-1)
        {line}
        return y
"""


def _fused_line(line: str) -> str:
    code = MODULE.replace("{line}", line)
    fixed = fix_text(code, "model.py", ADP010).text
    ast.parse(fixed)
    return next(
        t.strip()
        for t in fixed.splitlines()
        if "scaled_dot_product_attention(" in t and "import" not in t
    )


def test_grouping_parentheses_before_a_method_call_are_dropped():
    assert _fused_line("y = (s @ v).transpose(1, 2).reshape(b, n, c)").startswith(
        "y = scaled_dot_product_attention("
    )


def test_a_calls_own_parentheses_stay():
    assert _fused_line("y = torch.flatten(s @ v, 2)").startswith(
        "y = torch.flatten(scaled_dot_product_attention("
    )


def test_parentheses_around_the_whole_value_that_the_author_wrote_on_one_line_are_dropped_too():
    # (they grouped nothing but the product the call now stands for)
    assert _fused_line("y = (s @ v)").startswith("y = scaled_dot_product_attention(")
