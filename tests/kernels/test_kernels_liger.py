"""adopter.kernels.liger_swiglu (ADP013's target): the guarded call into Liger Kernel.

Liger needs CUDA and Triton, so on CPU the wrapper must compute exactly ``act(gate) * up``;
what can be checked of Liger itself here is that the function it calls exists with the
signature used: it is read from the liger-kernel 0.8.5 wheel, downloaded at test time with
pip (never vendored), without importing it.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import zipfile

import pytest
import torch
from torch import nn

from adopter.kernels import liger_swiglu
from adopter.kernels.liger import LIGER_SWIGLU, is_silu

transformers_activations = pytest.importorskip("transformers.activations")


@pytest.mark.parametrize("act", [nn.SiLU(), transformers_activations.ACT2FN["silu"], nn.GELU(),
                                 transformers_activations.ACT2FN["gelu_new"]], ids=["SiLU", "hf-silu", "GELU", "gelu_new"])
def test_cpu_computes_the_original_expression_exactly(act):
    gate = torch.randn(2, 5, 16, requires_grad=True)
    up = torch.randn(2, 5, 16, requires_grad=True)
    out = liger_swiglu(gate, up, act)
    expected = act(gate) * up
    torch.testing.assert_close(out, expected, rtol=0, atol=0)
    (g1, u1) = torch.autograd.grad(out.sum(), (gate, up))
    (g2, u2) = torch.autograd.grad(expected.sum(), (gate, up))
    torch.testing.assert_close(g1, g2, rtol=0, atol=0)
    torch.testing.assert_close(u1, u2, rtol=0, atol=0)


def test_only_real_silu_takes_the_fused_path():
    assert is_silu(nn.SiLU()) and is_silu(transformers_activations.ACT2FN["silu"])
    assert is_silu(nn.functional.silu)
    assert not is_silu(nn.SiLU(inplace=True))
    assert not is_silu(nn.GELU()) and not is_silu(transformers_activations.ACT2FN["gelu"])
    hooked = nn.SiLU()
    hooked.register_forward_hook(lambda *a: None)
    assert not is_silu(hooked)

    class Custom(nn.SiLU):
        def forward(self, x):
            return super().forward(x) * 2

    assert not is_silu(Custom())


@pytest.fixture(scope="module")
def liger_wheel(tmp_path_factory):
    folder = tmp_path_factory.mktemp("liger")
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check", "-q",
         "liger-kernel==0.8.5", "-d", str(folder)], capture_output=True, text=True, timeout=300)
    wheels = list(folder.glob("liger_kernel-0.8.5-*.whl"))
    if proc.returncode != 0 or not wheels:
        pytest.skip(f"liger-kernel wheel not downloadable here: {proc.stderr.strip()[-200:]}")
    return wheels[0]


def test_the_liger_function_called_exists_with_that_signature(liger_wheel):
    module, name = LIGER_SWIGLU
    with zipfile.ZipFile(liger_wheel) as wheel:
        source = wheel.read(module.replace(".", "/") + ".py").decode()
    functions = {f.name: f for f in ast.parse(source).body if isinstance(f, ast.FunctionDef)}
    assert name in functions
    params = [a.arg for a in functions[name].args.args]
    assert params == ["a", "b"]  # liger_swiglu(a, b) == silu(a) * b: the wrapper calls fused(gate, up)
    assert "LigerSiLUMulFunction.apply(a, b)" in ast.unparse(functions[name])
