"""GELU written out as a formula (adopter/structure/formulas.py): recognised by what the code
computes, whatever the function or class is called."""

import ast
import textwrap

import pytest

from adopter.structure.formulas import (autograd_gelu_module, gelu_formula, gelu_module, gelu_on_every_path, silu_module,
                                        SAME, softmax_formula)
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


AUTOGRAD = textwrap.dedent('''
    import torch
    from torch import nn

    def tanh_gelu(x):
        return x * 0.5 * (1.0 + torch.tanh(0.79788456 * x * (1 + 0.044715 * x * x)))

    def quick(x):
        return x * torch.sigmoid(1.702 * x)

    class GeluFn(torch.autograd.Function):
        @staticmethod
        def forward(ctx, inp):
            ctx.save_for_backward(inp)
            return tanh_gelu(inp)

        @staticmethod
        def backward(ctx, grad):
            (inp,) = ctx.saved_tensors
            return grad

    class InlineGeluFn(torch.autograd.Function):
        @staticmethod
        def forward(ctx, inp):
            ctx.save_for_backward(inp)
            return inp * 0.5 * (1.0 + torch.tanh(0.7978845608 * (inp + 0.044715 * inp * inp * inp)))

    class QuickFn(torch.autograd.Function):
        @staticmethod
        def forward(ctx, inp):
            ctx.save_for_backward(inp)
            return quick(inp)

    class ScaledFn(torch.autograd.Function):
        @staticmethod
        def forward(ctx, inp, scale):
            return tanh_gelu(inp) * scale

    class NotAFunction:
        @staticmethod
        def apply(x):
            return tanh_gelu(x)

    class Gelu(nn.Module):
        def forward(self, x):
            return GeluFn.apply(x)

    class InlineGelu(nn.Module):
        def forward(self, x):
            return InlineGeluFn.apply(x)

    class Quick(nn.Module):
        def forward(self, x):
            return QuickFn.apply(x)

    class Plain(nn.Module):
        def forward(self, x):
            return NotAFunction.apply(x)

    class Scaled(nn.Module):
        def forward(self, x):
            return ScaledFn.apply(x, 2.0)

    class Stateful(nn.Module):
        def __init__(self):
            super().__init__()
            self.p = nn.Parameter(torch.ones(1))

        def forward(self, x):
            return GeluFn.apply(x)

    def erf_gelu(x):
        return x * 0.5 * (1.0 + torch.erf(x * 0.7071067811865476))

    class TrainEval(nn.Module):
        def forward(self, x):
            if self.training:
                return GeluFn.apply(x)
            else:
                return tanh_gelu(x)

    class TrainThenFallThrough(nn.Module):
        def forward(self, x):
            if self.training:
                return InlineGeluFn.apply(x)
            return tanh_gelu(x)

    class EvalIdentity(nn.Module):
        def forward(self, x):
            if self.training:
                return GeluFn.apply(x)
            return x

    class EvalOtherVariant(nn.Module):
        def forward(self, x):
            if self.training:
                return GeluFn.apply(x)
            return erf_gelu(x)

    class EvalQuick(nn.Module):
        def forward(self, x):
            if self.training:
                return GeluFn.apply(x)
            return quick(x)

    class FormulaOnly(nn.Module):
        def forward(self, x):
            if self.training:
                return tanh_gelu(x)
            return tanh_gelu(x)

    class TrainOnly(nn.Module):
        def forward(self, x):
            if self.training:
                return GeluFn.apply(x)

    class BranchCalls(nn.Module):
        def forward(self, x):
            if torch.rand(1) > 0.5:
                return GeluFn.apply(x)
            return tanh_gelu(x)
''')


@pytest.mark.parametrize("cls,expected", [
    ("Gelu", "tanh"), ("InlineGelu", "tanh"),
    ("Quick", None), ("Plain", None), ("Scaled", None), ("Stateful", None),
    # BLOOM 4.x: the Function in training, the formula itself in eval: a GELU on both paths
    ("TrainEval", "tanh"), ("TrainThenFallThrough", "tanh"),
    # an identity, another variant or another activation on one path; no Function at all (the
    # plain-module readers' case); a path that returns nothing; a branch that draws
    ("EvalIdentity", None), ("EvalOtherVariant", None), ("EvalQuick", None), ("FormulaOnly", None),
    ("TrainOnly", None), ("BranchCalls", None),
])
def test_gelu_through_an_autograd_function(cls, expected):
    names = collect_names(ast.parse(AUTOGRAD))
    assert autograd_gelu_module(names.classes[cls], names) == expected


PATHS = textwrap.dedent('''
    import torch
    import torch.nn.functional as F
    from packaging import version
    from somewhere import is_torch_version, log

    class M:
        def upcast_on_mps(self, gate):
            if gate.device.type == "mps" and is_torch_version("<", "2.0.0"):
                return F.gelu(gate.to(dtype=torch.float32), approximate=self.approximate).to(dtype=gate.dtype)
            return F.gelu(gate, approximate=self.approximate)

        def tanh_both(self, x):
            if x.dtype == torch.float16:
                return F.gelu(x.float(), approximate="tanh").half()
            else:
                return F.gelu(x, approximate="tanh")

        def exact(self, x):
            return F.gelu(x)

        def relu_on_one_path(self, x):
            if x.is_cuda:
                return F.relu(x)
            return F.gelu(x)

        def variants_differ(self, x):
            if x.is_cuda:
                return F.gelu(x, approximate="tanh")
            return F.gelu(x)

        def falls_through(self, x):
            if x.is_cuda:
                return F.gelu(x)

        def works_in_the_branch(self, x):
            if x.is_cuda:
                x = x * 2
            return F.gelu(x)

        def calls_in_the_test(self, x):
            if log(x):
                return F.gelu(x)
            return F.gelu(x)

        def gelu_of_another_value(self, x):
            if x.is_cuda:
                return F.gelu(x + 1)
            return F.gelu(x)
''')


@pytest.mark.parametrize("name,expected", [
    ("upcast_on_mps", "any"), ("tanh_both", "tanh"), ("exact", "none"),
    ("relu_on_one_path", None), ("variants_differ", None), ("falls_through", None),
    ("works_in_the_branch", None), ("calls_in_the_test", None), ("gelu_of_another_value", None),
])
def test_gelu_on_every_path(name, expected):
    names = collect_names(ast.parse(PATHS))
    method = next(f for f in names.classes["M"].body if isinstance(f, ast.FunctionDef) and f.name == name)
    assert gelu_on_every_path(method, names, method=True) == expected

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
    assert (softmax_formula(func, names) == SAME) is expected


def test_the_softmax_formulas_compute_softmax():
    torch = pytest.importorskip("torch")
    namespace: dict = {}
    exec(SOFTMAXES, namespace)
    x = torch.randn(3, 4, 7, dtype=torch.float64) * 20
    for name in ("cancelling_scales", "shifted", "numbers_that_cancel"):
        torch.testing.assert_close(namespace[name](x, -1), torch.softmax(x, -1))


SILU = textwrap.dedent('''
    import torch
    import torch.nn.functional as F
    from torch import nn

    class FP32SiLU(nn.Module):
        def __init__(self):
            super().__init__()

        def forward(self, inputs):
            return F.silu(inputs.float(), inplace=False).to(inputs.dtype)

    class Plain(nn.Module):
        def forward(self, input):
            """docstring"""
            return F.silu(input)

    class InPlace(nn.Module):
        def forward(self, x):
            return F.silu(x, inplace=True)

    class Scaled(nn.Module):
        def forward(self, x):
            return F.silu(x) * 2

    class OtherValue(nn.Module):
        def forward(self, x):
            return F.silu(x.mean(-1, keepdim=True))

    class Stateful(nn.Module):
        def __init__(self):
            super().__init__()
            self.beta = 1.0

        def forward(self, x):
            return F.silu(x)

    class Gelu(nn.Module):
        def forward(self, x):
            return F.gelu(x.float()).to(x.dtype)
''')


@pytest.mark.parametrize("cls, expected", [
    ("FP32SiLU", "cast"), ("Plain", "exact"), ("InPlace", None), ("Scaled", None), ("OtherValue", None),
    ("Stateful", None), ("Gelu", None),
])
def test_silu_modules(cls, expected):
    names = collect_names(ast.parse(SILU))
    assert silu_module(names.classes[cls], names) == expected


PATH_SOFTMAXES = textwrap.dedent('''
    import torch
    import torch.nn.functional as F

    def two_spellings_in_float32(scores, axis, exporting=False):
        if exporting:
            return torch.softmax(scores.to(torch.float32), axis)
        else:
            return F.softmax(scores, dim=axis, dtype=torch.float)

    def early_return_then_fall_through(scores, axis, exporting=False):
        """docstring"""
        if exporting:
            return torch.softmax(scores.float(), dim=axis)
        return scores.softmax(axis, dtype=torch.float32)

    def same_dtype_both_ways(scores, axis, fast=True):
        if fast:
            return scores.softmax(dim=axis)
        return F.softmax(scores - scores.amax(dim=axis, keepdim=True), dim=axis)

    def dtypes_differ(scores, axis, exporting=False):
        if exporting:
            return F.softmax(scores.float(), dim=axis)
        return F.softmax(scores, dim=axis)

    def tempered_on_one_path(scores, axis, tau=1.0, sharpen=False):
        if sharpen:
            return F.softmax(scores / tau, dim=axis)
        return F.softmax(scores, dim=axis)

    def one_path_falls_off(scores, axis, exporting=False):
        if exporting:
            return F.softmax(scores, dim=axis)

    def works_in_a_branch(scores, axis, exporting=False):
        if exporting:
            scores = scores * 2
        return F.softmax(scores, dim=axis)

    def test_calls(scores, axis, exporting=False):
        if log(exporting):
            return F.softmax(scores, dim=axis)
        return F.softmax(scores, dim=axis)

    def other_axis_on_one_path(scores, axis, exporting=False):
        if exporting:
            return F.softmax(scores, dim=-1)
        return F.softmax(scores, dim=axis)
''')


@pytest.mark.parametrize("name, expected", [
    ("two_spellings_in_float32", "torch.float32"), ("early_return_then_fall_through", "torch.float32"),
    ("same_dtype_both_ways", SAME), ("dtypes_differ", None), ("tempered_on_one_path", None),
    ("one_path_falls_off", None), ("works_in_a_branch", None), ("test_calls", None),
    ("other_axis_on_one_path", None),
])
def test_softmax_on_every_path(name, expected):
    """fairseq's utils_softmax(x, dim, onnx_trace): every path a softmax over the dim, in one
    dtype, branching on tests that only read -- read from the code, not the name."""
    tree = ast.parse(PATH_SOFTMAXES)
    names = collect_names(tree)
    [func] = [f for f in tree.body if isinstance(f, ast.FunctionDef) and f.name == name]
    assert softmax_formula(func, names) == expected


def test_the_path_softmaxes_compute_softmax_in_their_dtype():
    torch = pytest.importorskip("torch")
    namespace: dict = {}
    exec(PATH_SOFTMAXES, namespace)
    x = torch.randn(3, 4, 7, dtype=torch.float16) * 8
    reference = torch.softmax(x.float(), -1)
    for name in ("two_spellings_in_float32", "early_return_then_fall_through"):
        for flag in (False, True):
            out = namespace[name](x, -1, flag)
            assert out.dtype == torch.float32
            torch.testing.assert_close(out, reference)  # both spellings: one float32 softmax
    for flag in (False, True):
        out = namespace["same_dtype_both_ways"](x.double(), -1, flag)
        assert out.dtype == torch.float64
        torch.testing.assert_close(out, torch.softmax(x.double(), -1))
    # the ones read as not a softmax differ on some path
    assert namespace["dtypes_differ"](x, -1, False).dtype != namespace["dtypes_differ"](x, -1, True).dtype
    assert not torch.allclose(namespace["tempered_on_one_path"](x.float(), -1, 0.5, True), reference)
