"""softmax, dropout_add_layer_norm and bias_gelu against the expressions they replace."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from adopter_kernels import bias_gelu, dropout_add_layer_norm, linear_gelu, softmax


# ------------------------------------------------------------------------------------- softmax


@pytest.mark.parametrize("dim", [-1, 0, 1])
@pytest.mark.parametrize("dtype", [None, torch.float64])
def test_softmax_matches_functional(dim, dtype, equivalent):
    x = torch.randn(3, 4, 5)
    equivalent(
        lambda t: F.softmax(t, dim=dim, dtype=dtype),
        lambda t: softmax(t, dim=dim, dtype=dtype),
        [],
        [x],
    )


def test_softmax_defaults_to_last_dim():
    x = torch.randn(2, 7)
    assert torch.equal(softmax(x), F.softmax(x, dim=-1))


# ---------------------------------------------------------------------- dropout_add_layer_norm


def _dal_eager(x, r, d, n):
    return n(d(x) + r)


def _dal_kernel(x, r, d, n):
    return dropout_add_layer_norm(x, r, d, n)


@pytest.mark.parametrize("elementwise_affine", [True, False])
def test_dropout_add_layer_norm_eval(elementwise_affine, equivalent):
    drop, norm = nn.Dropout(0.3), nn.LayerNorm(16, elementwise_affine=elementwise_affine)
    drop.eval(), norm.eval()
    equivalent(_dal_eager, _dal_kernel, [drop, norm], [torch.randn(2, 5, 16), torch.randn(2, 5, 16)])


def test_dropout_add_layer_norm_train_p0_gradients(equivalent):
    drop, norm = nn.Dropout(0.0), nn.LayerNorm(16)
    with torch.no_grad():
        norm.weight.normal_(), norm.bias.normal_()
    drop.train(), norm.train()
    equivalent(_dal_eager, _dal_kernel, [drop, norm], [torch.randn(3, 16), torch.randn(3, 16)])


def test_dropout_add_layer_norm_train_with_dropout_uses_the_same_mask_on_cpu():
    drop, norm = nn.Dropout(0.5), nn.LayerNorm(8)
    drop.train()
    x, r = torch.randn(4, 8), torch.randn(4, 8)
    torch.manual_seed(3)
    a = norm(drop(x) + r)
    torch.manual_seed(3)
    b = dropout_add_layer_norm(x, r, drop, norm)
    torch.testing.assert_close(b, a)


def test_dropout_add_layer_norm_layernorm_without_bias_and_multi_dim_shape(equivalent):
    drop, norm = nn.Dropout(0.1).eval(), nn.LayerNorm((4, 6), bias=False)
    equivalent(_dal_eager, _dal_kernel, [drop, norm], [torch.randn(2, 4, 6), torch.randn(2, 4, 6)])


def test_dropout_add_layer_norm_broadcast_residual(equivalent):
    drop, norm = nn.Dropout(0.0), nn.LayerNorm(8)
    equivalent(_dal_eager, _dal_kernel, [drop, norm], [torch.randn(2, 3, 8), torch.randn(8)])


def test_dropout_add_layer_norm_other_callables_run_as_written(equivalent):
    class RMS(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.ones(8))

        def forward(self, x):
            return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6) * self.w

    equivalent(_dal_eager, _dal_kernel, [nn.Identity(), RMS()], [torch.randn(2, 8), torch.randn(2, 8)])
    # a plain function as "dropout" is just called
    half = lambda t: t * 0.5  # noqa: E731
    x, r, ln = torch.randn(2, 8), torch.randn(2, 8), nn.LayerNorm(8)
    torch.testing.assert_close(dropout_add_layer_norm(x, r, half, ln), ln(half(x) + r))


def test_dropout_add_layer_norm_respects_hooks():
    drop, norm = nn.Dropout(0.0), nn.LayerNorm(8)
    norm.register_forward_hook(lambda m, i, o: o * 2)
    x, r = torch.randn(2, 8), torch.randn(2, 8)
    torch.testing.assert_close(dropout_add_layer_norm(x, r, drop, norm), norm(drop(x) + r))


# ----------------------------------------------------------------------------------- bias_gelu


def _bg_eager(x, lin, act):
    return act(lin(x))


def _bg_kernel(x, lin, act):
    return bias_gelu(x, lin, act)


@pytest.mark.parametrize(
    "act",
    [nn.GELU(), nn.GELU(approximate="tanh"), nn.ReLU(), nn.SiLU(), nn.Tanh()],
    ids=["gelu", "gelu-tanh", "relu", "silu", "tanh"],
)
@pytest.mark.parametrize("bias", [True, False])
def test_bias_gelu_torch_activations(act, bias, equivalent):
    lin = nn.Linear(12, 20, bias=bias)
    equivalent(_bg_eager, _bg_kernel, [lin, act], [torch.randn(3, 5, 12)])


@pytest.mark.parametrize("approximate", ["none", "tanh"])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_linear_gelu_is_the_functional_gelu_of_the_linear(approximate, bias, dtype):
    lin = nn.Linear(12, 20, bias=bias).to(dtype)
    x = torch.randn(3, 5, 12, dtype=dtype)
    a, b = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    out, expected = linear_gelu(a, lin, approximate=approximate), F.gelu(lin(b), approximate=approximate)
    # the CPU path is F.gelu(F.linear(x, W, b)): the same operations as the module call
    torch.testing.assert_close(out, expected, rtol=0, atol=0)
    out.square().sum().backward()
    expected.square().sum().backward()
    torch.testing.assert_close(a.grad, b.grad, rtol=0, atol=0)


def test_linear_gelu_runs_other_layers_and_modes_as_written():
    class Doubled(nn.Linear):
        def forward(self, x):
            return super().forward(x) * 2

    x = torch.randn(2, 4)
    odd = Doubled(4, 6)
    torch.testing.assert_close(linear_gelu(x, odd), F.gelu(odd(x)))
    hooked = nn.Linear(4, 6)
    hooked.register_forward_hook(lambda m, i, o: o + 1)
    torch.testing.assert_close(linear_gelu(x, hooked), F.gelu(hooked(x)))
    with pytest.raises(RuntimeError):  # what F.gelu says about an unknown mode
        linear_gelu(x, nn.Linear(4, 6), approximate="erf")


def test_bias_gelu_plain_functions_are_called():
    lin, x = nn.Linear(4, 6), torch.randn(2, 4)
    torch.testing.assert_close(bias_gelu(x, lin, torch.sigmoid), torch.sigmoid(lin(x)))
    torch.testing.assert_close(bias_gelu(x, lin, F.gelu), F.gelu(lin(x)))


def test_bias_gelu_unrelated_module_named_like_a_gelu_with_overridden_activation_falls_back():
    class GELUActivation(nn.Module):  # same name as transformers', but holds a different function
        def __init__(self):
            super().__init__()
            self.act = torch.relu

        def forward(self, x):
            return self.act(x)

    lin, act, x = nn.Linear(4, 6), GELUActivation(), torch.randn(2, 4)
    torch.testing.assert_close(bias_gelu(x, lin, act), torch.relu(lin(x)))


class _FormulaTanhGELU(nn.Module):  # minGPT-style: the tanh approximation written out
    def forward(self, x):
        return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))


class _FormulaErfGELU(nn.Module):  # BERT/ESM-style: the exact GELU written out
    def forward(self, x):
        return x * 0.5 * (1.0 + torch.erf(x / math.sqrt(2.0)))


class _QuickGELU(nn.Module):  # a different function
    def forward(self, x):
        return x * torch.sigmoid(1.702 * x)


class _ScaledGELU(nn.Module):  # per-instance state: not probed, whatever it computes
    def __init__(self, scale):
        super().__init__()
        self.scale = scale

    def forward(self, x):
        return self.scale * x * 0.5 * (1.0 + torch.erf(x / math.sqrt(2.0)))


@pytest.mark.parametrize("act,approximate", [(_FormulaTanhGELU(), "tanh"), (_FormulaErfGELU(), "none")])
def test_bias_gelu_takes_the_builtin_gelu_for_a_gelu_written_as_a_formula(act, approximate):
    lin, x = nn.Linear(8, 8), torch.randn(3, 8)
    got = bias_gelu(x, lin, act)
    assert torch.equal(got, F.gelu(F.linear(x, lin.weight, lin.bias), approximate=approximate))
    # and the formula really is that GELU, to float32 rounding
    torch.testing.assert_close(got, act(lin(x)))


@pytest.mark.parametrize("act", [_QuickGELU(), _ScaledGELU(1.0), _ScaledGELU(2.0)])
def test_bias_gelu_runs_other_modules_as_written(act):
    lin, x = nn.Linear(8, 8), torch.randn(3, 8)
    assert torch.equal(bias_gelu(x, lin, act), act(lin(x)))


ACTS = ["gelu", "gelu_new", "gelu_fast", "gelu_python", "gelu_pytorch_tanh", "gelu_accurate", "gelu_10",
        "quick_gelu", "relu", "silu", "mish", "linear"]


@pytest.mark.parametrize("name", ACTS)
def test_bias_gelu_transformers_activations(name, equivalent):
    activations = pytest.importorskip("transformers.activations")
    act = activations.ACT2FN[name]
    lin = nn.Linear(16, 24)
    with torch.no_grad():
        lin.weight.mul_(4)  # spread the pre-activations so clipping (gelu_10) and tails matter
    equivalent(_bg_eager, _bg_kernel, [lin, act], [torch.randn(4, 16)])


@pytest.mark.parametrize(
    "name,approximate",
    [("gelu", "none"), ("gelu_new", "tanh"), ("gelu_fast", "tanh"), ("gelu_python", "none"),
     ("gelu_pytorch_tanh", "tanh"), ("gelu_accurate", "tanh")],
)
def test_bias_gelu_takes_the_builtin_gelu_for_transformers_gelus(name, approximate):
    activations = pytest.importorskip("transformers.activations")
    lin, x = nn.Linear(8, 8), torch.randn(3, 8)
    got = bias_gelu(x, lin, activations.ACT2FN[name])
    assert torch.equal(got, F.gelu(F.linear(x, lin.weight, lin.bias), approximate=approximate))


def test_bias_gelu_tanh_classes_really_are_the_tanh_approximation():
    # Guards the name table: if transformers changed a formula, this catches it.
    activations = pytest.importorskip("transformers.activations")
    x = torch.linspace(-8, 8, 2001, dtype=torch.float64)
    for name in ["gelu_new", "gelu_fast", "gelu_accurate", "gelu_pytorch_tanh"]:
        torch.testing.assert_close(activations.ACT2FN[name](x), F.gelu(x, approximate="tanh"), atol=1e-9, rtol=1e-9)
    exact = 0.5 * x * (1 + torch.erf(x / math.sqrt(2)))
    torch.testing.assert_close(activations.ACT2FN["gelu_python"](x), exact)


# ------------------------------------------------------- the CUDA branch, exercised on CPU


@pytest.fixture
def compiled_branch(monkeypatch):
    """Route calls through the branch taken for CUDA tensors, with torch.compile replaced by the
    identity: this checks the math of the functions handed to the compiler, on CPU."""
    from adopter_kernels import activations, normalization

    monkeypatch.setattr(normalization, "compile_allowed", lambda t: True)
    monkeypatch.setattr(activations, "compile_allowed", lambda t: True)
    seen = []

    def identity_compile(fn, **kw):
        seen.append(fn.__name__)
        return fn

    monkeypatch.setattr(torch, "compile", identity_compile)
    for lc in (normalization._fused_dropout_add_layer_norm, activations._fused_bias_gelu):
        monkeypatch.setattr(lc, "_compiled", None)
        monkeypatch.setattr(lc, "broken", False)
    return seen


@pytest.mark.parametrize("train", [False, True])
def test_compiled_dropout_add_layer_norm_function(train, compiled_branch, equivalent):
    drop, norm = nn.Dropout(0.0 if train else 0.2), nn.LayerNorm(16)
    with torch.no_grad():
        norm.weight.normal_(), norm.bias.normal_()
    drop.train(train), norm.train(train)
    equivalent(_dal_eager, _dal_kernel, [drop, norm], [torch.randn(2, 3, 16), torch.randn(2, 3, 16)])
    assert compiled_branch == ["_dropout_add_layer_norm_ref"]


def test_compiled_dropout_add_layer_norm_applies_dropout_in_training(compiled_branch):
    drop, norm = nn.Dropout(0.5), nn.LayerNorm(64, elementwise_affine=False)
    x, r = torch.ones(4, 64), torch.zeros(4, 64)
    out = dropout_add_layer_norm(x, r, drop, norm)
    # dropout zeroed about half of x, so rows are no longer constant (constant rows normalise to 0)
    assert out.abs().sum() > 0


@pytest.mark.parametrize("act", [nn.GELU(), nn.GELU(approximate="tanh")], ids=["erf", "tanh"])
@pytest.mark.parametrize("bias", [True, False])
def test_compiled_bias_gelu_function(act, bias, compiled_branch, equivalent):
    equivalent(_bg_eager, _bg_kernel, [nn.Linear(8, 12, bias=bias), act], [torch.randn(5, 8)])
    assert compiled_branch == ["_bias_gelu_ref"]


def test_compiled_bias_gelu_clipped_variant(compiled_branch, equivalent):
    activations = pytest.importorskip("transformers.activations")
    lin = nn.Linear(8, 12)
    with torch.no_grad():
        lin.weight.mul_(10)
    equivalent(_bg_eager, _bg_kernel, [lin, activations.ACT2FN["gelu_10"]], [torch.randn(5, 8)])


@pytest.mark.parametrize("training", [False, True])
def test_dropout_add_layer_norm_functional_dropout_probability(training):
    """``F.dropout(x, p, training)`` spelled as a probability: the same mask, same values."""
    norm = nn.LayerNorm(8).double()
    x, r = torch.randn(4, 8, dtype=torch.float64), torch.randn(4, 8, dtype=torch.float64)
    torch.manual_seed(5)
    a = norm(F.dropout(x, 0.25, training) + r)
    torch.manual_seed(5)
    b = dropout_add_layer_norm(x, r, 0.25, norm, training=training)
    torch.testing.assert_close(b, a, rtol=0, atol=0)


def test_dropout_add_layer_norm_probability_needs_training():
    with pytest.raises(TypeError, match="training="):
        dropout_add_layer_norm(torch.randn(2, 4), torch.randn(2, 4), 0.1, nn.LayerNorm(4))
