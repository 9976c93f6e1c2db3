"""Layers held in an ``nn.ModuleDict`` (minGPT's ``nn.ModuleDict(dict(c_fc=nn.Linear(...),
act=NewGELU(), ...))``): each member is typed under its key and found where ``forward`` calls
it as ``self.mlp.c_fc(x)``, ``self.mlp["c_fc"](x)`` or through ``m = self.mlp``.  A key chosen
at run time, or a dict built with ``**``, names no member the analysis can know."""

from __future__ import annotations

import textwrap

import pytest

from corpus_forms import covered, findings

HEADER = textwrap.dedent('''
    import math

    import torch
    import torch.nn as nn


    class NewGELU(nn.Module):
        def forward(self, x):
            return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))
''')

ATTRIBUTE = HEADER + textwrap.dedent('''
    class MLP(nn.Module):
        def __init__(self, d):
            super().__init__()
            self.mlp = nn.ModuleDict(dict(c_fc=nn.Linear(d, 4 * d), c_proj=nn.Linear(4 * d, d), act=NewGELU()))

        def forward(self, x):
            return self.mlp.c_proj(self.mlp.act(self.mlp.c_fc(x)))  # needle
''')

ALIAS = HEADER + textwrap.dedent('''
    class MLP(nn.Module):
        def __init__(self, d):
            super().__init__()
            self.mlp = nn.ModuleDict(dict(c_fc=nn.Linear(d, 4 * d), c_proj=nn.Linear(4 * d, d), act=nn.GELU()))

        def forward(self, x):
            m = self.mlp
            return m.c_proj(m.act(m.c_fc(x)))  # needle
''')

SUBSCRIPT = HEADER + textwrap.dedent('''
    class MLP(nn.Module):
        def __init__(self, d):
            super().__init__()
            self.mlp = nn.ModuleDict({"fc": nn.Linear(d, 4 * d), "proj": nn.Linear(4 * d, d), "act": nn.GELU()})

        def forward(self, x):
            return self.mlp["proj"](self.mlp["act"](self.mlp["fc"](x)))  # needle
''')


@pytest.mark.parametrize("source", [ATTRIBUTE, ALIAS, SUBSCRIPT], ids=["attribute", "alias", "subscript"])
def test_module_dict_members_are_typed_under_their_keys(source):
    assert covered(source, "# needle", "ADP006")


@pytest.mark.parametrize("change", [
    ("act=NewGELU()", "act=nn.ReLU()"),  # not a GELU
    ("act=nn.GELU()", "act=nn.ReLU()"),
    ("dict(c_fc=", "dict(**extra, c_fc="),  # a member the ** may replace
    ('"act": nn.GELU()', '"act": nn.GELU(), **extra'),
    ('self.mlp["act"]', "self.mlp[self.kind]"),  # a key chosen at run time
])
def test_members_the_code_does_not_pin_down_are_not_found(change):
    old, new = change
    for source in (ATTRIBUTE, ALIAS, SUBSCRIPT):
        if old in source:
            near = source.replace(old, new).replace("def __init__(self, d):", "def __init__(self, d, extra=None):")
            assert not findings(near, "ADP006"), near


# minGPT's block: the MLP runs through a lambda bound in __init__ over a local naming the dict
LAMBDA = HEADER + textwrap.dedent('''
    class Block(nn.Module):
        def __init__(self, d):
            super().__init__()
            self.ln = nn.LayerNorm(d)
            self.mlp = nn.ModuleDict(dict(c_fc=nn.Linear(d, 4 * d), c_proj=nn.Linear(4 * d, d), act=NewGELU(),
                                          dropout=nn.Dropout(0.1)))
            m = self.mlp
            self.mlpf = lambda x: m.dropout(m.c_proj(m.act(m.c_fc(x))))  # needle

        def forward(self, x):
            return x + self.mlpf(self.ln(x))
''')


def test_a_lambda_bound_in_init_runs_as_a_method():
    assert covered(LAMBDA, "# needle", "ADP006")
    plain = LAMBDA.replace("        m = self.mlp\n", "").replace("lambda x: m.", "lambda x: self.mlp.").replace(
        "(m.", "(self.mlp.")
    assert covered(plain, "# needle", "ADP006")


@pytest.mark.parametrize("change", [
    ("        m = self.mlp\n", "        m = self.mlp\n        m = self.ln\n"),  # the closure's name holds two values
    ("lambda x:", "lambda x, y=None:"),  # a default: not a plain method
    ("act=NewGELU()", "act=nn.Tanh()"),
])
def test_lambdas_the_code_does_not_pin_down_are_not_found(change):
    near = LAMBDA.replace(*change)
    assert near != LAMBDA
    assert not findings(near, "ADP006"), near


def test_a_lambda_assigned_twice_is_not_a_method():
    near = LAMBDA.replace("  # needle\n", "  # needle\n        self.mlpf = lambda x: x\n")
    assert near != LAMBDA
    assert not findings(near, "ADP006")
