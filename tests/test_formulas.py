"""GELU written out as a formula (adopter/structure/formulas.py): recognised by what the code
computes, whatever the function or class is called."""

import ast
import textwrap

import pytest

from adopter.structure.formulas import gelu_formula, gelu_module, softmax_formula
from adopter.structure.names import collect_names

SRC = textwrap.dedent('''
    import math
    import torch
    from torch import nn

    def erf_gelu(x):
        """exact"""
        return x * 0.5 * (1.0 + torch.erf(x / math.sqrt(2.0)))

    def erf_gelu_const(t):
        return 0.5 * t * (1 + torch.erf(t * 0.7071067811865476))

    def erf_gelu_div2(x):
        return x * (1.0 + torch.erf(x / math.sqrt(2.0))) / 2

    def tanh_gelu(x):
        return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))

    def tanh_gelu_steps(x):
        inner = 0.7978845608028654 * (x + 0.044715 * x.pow(3))
        return 0.5 * x * (1.0 + inner.tanh())

    def quick_gelu(x):
        return x * torch.sigmoid(1.702 * x)

    def erf_only(x):
        return x * torch.erf(x)

    def no_half(x):
        return x * (1.0 + torch.erf(x / math.sqrt(2.0)))

    def two_inputs(x, y):
        return x * 0.5 * (1.0 + torch.erf(y / math.sqrt(2.0)))

    def with_branch(x):
        if x.is_cuda:
            return x
        return x * 0.5 * (1.0 + torch.erf(x / math.sqrt(2.0)))

    def calls_something_else(x):
        return x * 0.5 * (1.0 + torch.erf(x / math.sqrt(2.0))) + torch.randn_like(x)

    class NewGELU(nn.Module):
        def forward(self, x):
            return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))

    class Parameterised(nn.Module):
        def __init__(self):
            super().__init__()
            self.alpha = nn.Parameter(torch.ones(1))

        def forward(self, x):
            return self.alpha * x * 0.5 * (1.0 + torch.erf(x / math.sqrt(2.0)))
''')


@pytest.fixture(scope="module")
def names():
    return collect_names(ast.parse(SRC))


@pytest.mark.parametrize("name,expected", [
    ("erf_gelu", "none"), ("erf_gelu_const", "none"), ("erf_gelu_div2", "none"),
    ("tanh_gelu", "tanh"), ("tanh_gelu_steps", "tanh"),
    ("quick_gelu", None), ("erf_only", None), ("no_half", None), ("two_inputs", None),
    ("with_branch", None), ("calls_something_else", None),
])
def test_gelu_functions(names, name, expected):
    assert gelu_formula(names.functions[name], names) == expected


def test_gelu_modules(names):
    assert gelu_module(names.classes["NewGELU"], names) == "tanh"
    assert gelu_module(names.classes["Parameterised"], names) is None


SOFTMAXES = textwrap.dedent('''
    import torch
    import torch.nn.functional as F

    def cancelling_scales(t, dim=-1, alpha=32 ** 2):
        t = t / alpha
        t = t - torch.amax(t, dim=dim, keepdim=True).detach()
        return (t * alpha).softmax(dim=dim)

    def shifted(x, axis=-1):
        return F.softmax(x - x.max(axis, keepdim=True)[0], dim=axis)

    def numbers_that_cancel(t, dim):
        t = t * 4
        t = t / 2
        return torch.softmax(t / 2, dim)

    def tempered(t, dim=-1, alpha=2.0):
        return (t * alpha).softmax(dim=dim)

    def shift_over_a_fixed_axis(t, dim=-1):
        t = t - t.amax(dim=-1, keepdim=True)
        return t.softmax(dim=dim)

    def exp_normalised(t, dim=-1):
        return t.exp() / t.exp().sum(dim, keepdim=True)

    def masked(t, mask, dim=-1):
        return t.masked_fill(mask, 0.0).softmax(dim=dim)
''')


@pytest.mark.parametrize("name, expected", [
    ("cancelling_scales", True), ("shifted", True), ("numbers_that_cancel", True),
    ("tempered", False), ("shift_over_a_fixed_axis", False), ("exp_normalised", False), ("masked", False),
])
def test_softmax_formula(name, expected):
    tree = ast.parse(SOFTMAXES)
    names = collect_names(tree)
    [func] = [f for f in tree.body if isinstance(f, ast.FunctionDef) and f.name == name]
    assert softmax_formula(func, names) is expected


def test_the_softmax_formulas_compute_softmax():
    torch = pytest.importorskip("torch")
    namespace: dict = {}
    exec(SOFTMAXES, namespace)
    x = torch.randn(3, 4, 7, dtype=torch.float64) * 20
    for name in ("cancelling_scales", "shifted", "numbers_that_cancel"):
        torch.testing.assert_close(namespace[name](x, -1), torch.softmax(x, -1))
