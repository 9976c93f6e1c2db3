"""The kernels under torch.jit.script, torch.jit.trace, torch.fx.symbolic_trace and
torch.export: each records the expression it replaces, so a patched module works with every
tool its original worked with, and a scripted module saves and loads.

Each case is a small module whose forward calls one kernel, next to the same module written
with the original expression; both get the same parameters, the tools are applied to both in
eval mode (BatchNorm with non-trivial running statistics), and the programs must compute what
the eager module computes.  The layer types vary beyond what a rule matches (Conv1d, a GELU
module of another class) because the TorchScript type of a module argument is an interface.
"""

from __future__ import annotations

import io
import warnings

import pytest
import torch
from torch import nn

from adopter_kernels import (bias_gelu, conv_bn, dropout_add_layer_norm, fused_qkv, liger_silu_mul, liger_swiglu,
                             linear_bn, linear_gelu)


class NewGELUActivation(nn.Module):
    """A transformers-style GELU written as a formula (recognised by name by bias_gelu)."""

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return 0.5 * input * (1.0 + torch.tanh(0.7978845608028654 * (input + 0.044715 * torch.pow(input, 3.0))))


class Pair(nn.Module):
    def __init__(self, first: nn.Module, second: nn.Module, kernel):
        super().__init__()
        self.first, self.second, self.kernel = first, second, kernel or ""

    def forward(self, x):
        if self.kernel == "conv_bn":
            return conv_bn(x, self.first, self.second)
        if self.kernel == "linear_bn":
            return linear_bn(x, self.first, self.second)
        if self.kernel == "bias_gelu":
            return bias_gelu(x, self.first, self.second)
        return self.second(self.first(x))


class DropoutAddNorm(nn.Module):
    def __init__(self, fused: bool):
        super().__init__()
        self.fused = fused
        self.dropout, self.norm = nn.Dropout(0.1), nn.LayerNorm(8)

    def forward(self, x, residual):
        if self.fused:
            return dropout_add_layer_norm(x, residual, self.dropout, self.norm)
        return self.norm(self.dropout(x) + residual)


class Qkv(nn.Module):
    def __init__(self, fused: bool):
        super().__init__()
        self.fused = fused
        self.q, self.k, self.v = nn.Linear(8, 8), nn.Linear(8, 4, bias=False), nn.Linear(8, 4)

    def forward(self, x):
        if self.fused:
            q, k, v = fused_qkv(x, self.q, self.k, self.v)
        else:
            q, k, v = self.q(x), self.k(x), self.v(x)
        return q.sum(-1) + k.sum(-1) * v.sum(-1)


class SwiGlu(nn.Module):
    def __init__(self, fused: bool):
        super().__init__()
        self.fused = fused
        self.gate, self.up, self.act = nn.Linear(8, 16), nn.Linear(8, 16), nn.SiLU()

    def forward(self, x):
        if self.fused:
            return liger_swiglu(self.gate(x), self.up(x), self.act)
        return self.act(self.gate(x)) * self.up(x)


class FunctionForms(nn.Module):
    """``F.silu(gate) * up`` next to ``F.gelu(fc(x), approximate="tanh")``, or their function-form
    kernels (the fixes of activations called as functions)."""

    def __init__(self, fused: bool):
        super().__init__()
        self.fused = fused
        self.gate, self.up, self.fc = nn.Linear(8, 16), nn.Linear(8, 16), nn.Linear(8, 16)

    def forward(self, x):
        if self.fused:
            return liger_silu_mul(self.gate(x), self.up(x)) + linear_gelu(x, self.fc, approximate="tanh")
        return nn.functional.silu(self.gate(x)) * self.up(x) + nn.functional.gelu(self.fc(x), approximate="tanh")


CASES = {
    "conv_bn-2d": (lambda k: Pair(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), k), "conv_bn", ((2, 3, 6, 6),)),
    "conv_bn-1d": (lambda k: Pair(nn.Conv1d(3, 4, 3), nn.BatchNorm1d(4), k), "conv_bn", ((2, 3, 7),)),
    "linear_bn": (lambda k: Pair(nn.Linear(5, 4), nn.BatchNorm1d(4), k), "linear_bn", ((3, 5),)),
    "bias_gelu": (lambda k: Pair(nn.Linear(5, 4), nn.GELU(), k), "bias_gelu", ((3, 5),)),
    "bias_gelu-formula": (lambda k: Pair(nn.Linear(5, 4), NewGELUActivation(), k), "bias_gelu", ((3, 5),)),
    "dropout_add_layer_norm": (lambda k: DropoutAddNorm(k is not None), None, ((2, 5, 8), (2, 5, 8))),
    "fused_qkv": (lambda k: Qkv(k is not None), None, ((2, 5, 8),)),
    "liger_swiglu": (lambda k: SwiGlu(k is not None), None, ((2, 5, 8),)),
    "function_forms": (lambda k: FunctionForms(k is not None), None, ((2, 5, 8),)),
}


def _program(tool, module, inputs):
    if tool == "script":
        scripted = torch.jit.script(module)
        buffer = io.BytesIO()
        torch.jit.save(scripted, buffer)
        buffer.seek(0)
        return torch.jit.load(buffer)
    if tool == "trace":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            return torch.jit.trace(module, inputs)
    if tool == "fx":
        return torch.fx.symbolic_trace(module)
    return torch.export.export(module, inputs).module()


@pytest.mark.parametrize("tool", ["script", "trace", "fx", "export"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_patched_module_transforms_like_the_original(case, tool):
    build, kernel, shapes = CASES[case]
    torch.manual_seed(0)
    original = build(None).eval()
    patched = build(kernel or "fused").eval()
    with torch.no_grad():
        for m in original.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.running_mean.uniform_(-1, 1)
                m.running_var.uniform_(0.5, 2.0)
    patched.load_state_dict(original.state_dict(), strict=True)
    inputs = tuple(torch.randn(*s) for s in shapes)
    with torch.no_grad():
        expected = original(*inputs)
        program_of_original = _program(tool, original, inputs)
        program = _program(tool, patched, inputs)
        torch.testing.assert_close(program_of_original(*inputs), expected)
        torch.testing.assert_close(program(*inputs), expected)


def test_fx_graph_holds_the_modules_not_the_fold():
    """Traced in eval mode, the patched block is still conv -> bn (call_module nodes), so it
    keeps BatchNorm's train/eval switch and FX quantization sees the pair it fuses itself."""
    patched = Pair(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), "conv_bn").eval()
    graph = torch.fx.symbolic_trace(patched).graph
    assert [n.target for n in graph.nodes if n.op == "call_module"] == ["first", "second"]


def _attention_cases():
    transformers = pytest.importorskip("transformers")
    from transformers.models.bert import modeling_bert
    from transformers.models.gpt2 import modeling_gpt2
    from transformers.models.t5 import modeling_t5

    from adopter_kernels import sdpa_bert_self_attention, sdpa_gpt2_attention, sdpa_t5_attention

    return {
        "bert": (modeling_bert.BertSelfAttention, sdpa_bert_self_attention,
                 (transformers.BertConfig(hidden_size=16, num_attention_heads=2),)),
        "gpt2": (modeling_gpt2.GPT2Attention, sdpa_gpt2_attention, (transformers.GPT2Config(n_embd=16, n_head=2),)),
        "t5": (modeling_t5.T5Attention, sdpa_t5_attention,
               (transformers.T5Config(d_model=16, d_kv=8, num_heads=2), True)),
    }


@pytest.mark.parametrize("tool", ["script", "trace", "fx", "export"])
@pytest.mark.parametrize("kind", ["bert", "gpt2", "t5"])
def test_attention_subclasses_transform_wherever_the_transformers_class_does(kind, tool):
    """The real transformers 4.34 classes: whatever tool accepts the original accepts the SDPA
    subclass, and the program computes the same (GPT-2's causal-mask cache, for one, would
    stop torch.export: recording sends it to the original forward)."""
    cls, factory, args = _attention_cases()[kind]
    torch.manual_seed(0)
    original = cls(*args).eval()
    patched = factory(cls)(*args).eval()
    patched.load_state_dict(original.state_dict(), strict=True)
    inputs = (torch.randn(2, 5, 16),)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            program_of_original = _program(tool, original, inputs)
            expected = program_of_original(*inputs)
        except Exception as exc:  # noqa: BLE001 - the tool does not take the original: nothing to keep
            pytest.skip(f"{tool} does not take transformers' {cls.__name__}: {type(exc).__name__}")
        torch.testing.assert_close(_program(tool, patched, inputs)(*inputs), expected)
