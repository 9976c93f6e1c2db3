"""Forms from hf31's blind batch of transformers 4.45.2 model files (esmfold, oneformer,
jukebox).  Our own fixtures, each with near-misses."""

from __future__ import annotations

import textwrap

from corpus_forms import finding_at, found

# ---------- ADP009: a triangle update's gated projections (esmfold) are no query, key or value

TRIANGLE = textwrap.dedent("""\
    import torch
    from torch import nn


    class TriangleUpdate(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.proj_a = nn.Linear(c, c)
            self.gate_a = nn.Linear(c, c)
            self.proj_b = nn.Linear(c, c)
            self.gate_b = nn.Linear(c, c)
            self.out_gate = nn.Linear(c, c)
            self.out = nn.Linear(c, c)
            self.norm_out = nn.LayerNorm(c)
            self.sigmoid = nn.Sigmoid()

        def _combine(self, a, b):
            p = torch.matmul(a.permute(0, 3, 1, 2), b.permute(0, 3, 2, 1))
            return p.permute(0, 2, 3, 1)

        def forward(self, z, mask):
            mask = mask.unsqueeze(-1)
            a = mask
            a = a * GATE_A
            a = a * self.proj_a(z)
            b = mask
            b = b * GATE_B
            b = b * self.proj_b(z)
            x = self._combine(a, b)
            x = self.out(self.norm_out(x))
            return x * self.sigmoid(self.out_gate(z))
""")

GATES = (
    ("self.sigmoid(self.gate_a(z))", "self.sigmoid(self.gate_b(z))"),
    ("torch.sigmoid(self.gate_a(z))", "torch.sigmoid(self.gate_b(z))"),
    ("self.gate_a(z).sigmoid()", "self.gate_b(z).sigmoid()"),
)


def test_gated_projections_handed_to_a_helper_are_not_fused_qkv():
    # each half is mask * sigmoid(gate(z)) * proj(z); the halves meet in a helper's matmul
    # over the residues, and a third gate multiplies the output: no attention anywhere
    for gate_a, gate_b in GATES:
        code = TRIANGLE.replace("GATE_A", gate_a).replace("GATE_B", gate_b)
        assert found(code, "ADP009") == [], gate_a


GATED_ATTENTION = textwrap.dedent("""\
    import torch
    from torch import nn


    class GatedAttention(nn.Module):
        def __init__(self, d):
            super().__init__()
            self.q = nn.Linear(d, d)
            self.k = nn.Linear(d, d)
            self.v = nn.Linear(d, d)
            self.g = nn.Linear(d, d)

        def forward(self, x):
            q = self.q(x)
            k = self.k(x)
            v = self.v(x)
            STEP
            a = torch.softmax(q @ k.transpose(-1, -2) * q.shape[-1] ** -0.5, dim=-1)
            OUT
""")


def test_attention_with_a_gate_is_still_fused_qkv():
    # a gate on the value, or on the attention's output, leaves q and k meeting in the scores
    for step, out in (("v = v * torch.sigmoid(self.g(x))", "return a @ v"),
                      ("pass", "return (a @ v) * torch.sigmoid(self.g(x))"),
                      ("pass", "return (a @ v) * self.g(x).sigmoid()")):
        code = GATED_ATTENTION.replace("STEP", step).replace("OUT", out)
        assert finding_at(code, "ADP009", "q = self.q(x)") is not None, (step, out)


# ---------- ADP006: a table key whose string default every call keeps (oneformer's FFNs)

FFN = textwrap.dedent("""\
    import torch
    from torch import nn
    from transformers.activations import ACT2FN


    class FFNLayer(nn.Module):
        def __init__(self, d_model, dim_feedforward=2048, dropout=0.0, activation="relu"):
            super().__init__()
            self.linear1 = nn.Linear(d_model, dim_feedforward)
            self.dropout = nn.Dropout(dropout)
            self.linear2 = nn.Linear(dim_feedforward, d_model)
            self.activation = ACT2FN[activation]

        def forward(self, x):
            return self.linear2(self.dropout(self.activation(self.linear1(x))))


    class Stack(nn.Module):
        def __init__(self, d_model, dim_feedforward=2048, activation="relu"):
            super().__init__()
            self.ffn = FFNLayer(d_model, dim_feedforward, 0.1, PASSED)

        def forward(self, x):
            return self.ffn(x)


    class Model(nn.Module):
        def __init__(self, config):
            super().__init__()
            self.stack = Stack(config.hidden_size, OUTER)

        def forward(self, x):
            return self.stack(x)

        def _init_weights(self, module):
            if isinstance(module, (FFNLayer, nn.Linear)):
                module.weight.data.normal_()
""")


def test_a_relu_default_handed_on_or_tested_by_isinstance_is_a_fixed_relu():
    # ACT2FN[activation], activation="relu" in FFNLayer; Stack hands its own "relu" default
    # on (or passes nothing); the model's _init_weights only tests the class with isinstance
    for passed, outer in (("activation", "2048"), ("activation=activation", "dim_feedforward=512"),
                          ("activation", "2048, 'relu'")):
        code = FFN.replace("PASSED", passed).replace("OUTER", outer)
        assert found(code, "ADP006") == [], (passed, outer)
    code = FFN.replace(", PASSED)", ")").replace("OUTER", "2048")
    assert found(code, "ADP006") == []


def test_a_key_a_caller_may_set_to_gelu_is_still_reported():
    for passed, outer in (("activation", "2048, 'gelu'"), ("activation", "2048, config.hidden_act"),
                          ("'gelu'", "2048"), ("config_act", "2048")):
        code = FFN.replace("PASSED", passed).replace("OUTER", outer)
        if passed == "config_act":
            code = code.replace("def __init__(self, d_model, dim_feedforward=2048, activation=\"relu\"):",
                                "def __init__(self, d_model, dim_feedforward=2048, config_act=None):")
        assert finding_at(code, "ADP006", "self.activation(self.linear1(x))") is not None, (passed, outer)
    # a caller that rebinds the parameter it hands on may hold anything
    code = FFN.replace("PASSED", "activation").replace("OUTER", "2048").replace(
        "        self.ffn = FFNLayer(", "        activation = activation.lower()\n        self.ffn = FFNLayer(")
    assert finding_at(code, "ADP006", "self.activation(self.linear1(x))") is not None


# ---------- ADP006: GPT-2's Conv1D copied with its weights cast to the input's type (jukebox)

CONV1D = textwrap.dedent("""\
    import torch
    from torch import nn
    from transformers.activations import ACT2FN


    class Conv1D(nn.Module):
        def __init__(self, n_in, n_out):
            super().__init__()
            self.n_out = n_out
            self.weight = nn.Parameter(torch.empty(n_in, n_out))
            self.bias = nn.Parameter(torch.zeros(n_out))

        def forward(self, hidden_states):
            size_out = (*hidden_states.size()[:-1], self.n_out)
            hidden_states = torch.addmm(
                BIAS,
                hidden_states.view(-1, hidden_states.size(-1)),
                WEIGHT,
            )
            RESULT
            return hidden_states


    class MLP(nn.Module):
        def __init__(self, config):
            super().__init__()
            self.c_fc = Conv1D(config.d, 4 * config.d)
            self.c_proj = Conv1D(4 * config.d, config.d)
            self.act = ACT2FN[config.act_fn]

        def forward(self, x):
            x = self.c_fc(x)
            x = self.act(x)
            return self.c_proj(x)
""")


def test_an_addmm_linear_with_weights_cast_to_the_input_type_is_a_linear():
    for bias, weight in (("self.bias.type_as(hidden_states)", "self.weight.type_as(hidden_states)"),
                         ("self.bias.to(hidden_states.dtype)", "self.weight.to(hidden_states.dtype)"),
                         ("self.bias", "self.weight.type_as(hidden_states)")):
        code = CONV1D.replace("BIAS", bias).replace("WEIGHT", weight).replace(
            "RESULT", "hidden_states = hidden_states.view(*size_out)")
        finding = finding_at(code, "ADP006", "x = self.act(x)")
        assert finding is not None, (bias, weight)


def test_an_addmm_plus_its_input_or_of_one_weight_twice_is_no_linear():
    for bias, weight, result in (
            ("self.bias.type_as(hidden_states)", "self.weight.type_as(hidden_states)",
             "hidden_states = hidden_states.view(*size_out) + 1.0 * hidden_states.sum()"),
            ("self.weight.type_as(hidden_states)", "self.weight.type_as(hidden_states)",
             "hidden_states = hidden_states.view(*size_out)")):
        code = CONV1D.replace("BIAS", bias).replace("WEIGHT", weight).replace("RESULT", result)
        assert found(code, "ADP006") == [], result


# ---------- ADP010: an einsum over ``...`` whose output moves the heads (esmfold's sequence attention)

ELLIPSIS_ATTENTION = textwrap.dedent("""\
    import torch
    from torch import nn


    class SelfAttention(nn.Module):
        def __init__(self, embed_dim=16, num_heads=4):
            super().__init__()
            self.num_heads = num_heads
            self.head_width = embed_dim // num_heads
            self.proj = nn.Linear(embed_dim, embed_dim * 3, bias=False)
            self.o_proj = nn.Linear(embed_dim, embed_dim)
            self.rescale_factor = self.head_width**-0.5

        def forward(self, x, mask=None, bias=None):
            t = self.proj(x).view(*x.shape[:2], self.num_heads, -1)
            t = t.permute(0, 2, 1, 3)
            q, k, v = t.chunk(3, dim=-1)
            q = self.rescale_factor * q
            a = torch.einsum("...qc,...kc->...qk", q, k)
            if bias is not None:
                a = a + bias.permute(0, 3, 1, 2)
            if mask is not None:
                mask = mask[:, None, None]
                a = a.masked_fill(mask == False, -float("inf"))  # noqa: E712
            a = nn.functional.softmax(a, dim=-1)
            y = torch.einsum("...hqk,...hkc->...qhc", a, v)
            y = y.reshape(*y.shape[:2], -1)
            return self.o_proj(y), a.permute(0, 3, 1, 2)


    class Block(nn.Module):
        def __init__(self, embed_dim=16, num_heads=4):
            super().__init__()
            self.attn = SelfAttention(embed_dim, num_heads)

        def forward(self, x, mask=None, bias=None):
            y, _ = self.attn(x, mask=mask, bias=bias)
            return x + y
""")


def test_an_ellipsis_einsum_whose_output_moves_the_heads_is_fixed_with_movedim():
    import torch
    from corpus_forms import float64_pair, rules

    from adopter.synth.core import fix_text

    assert finding_at(ELLIPSIS_ATTENTION, "ADP010", "a = nn.functional.softmax(a, dim=-1)") is not None
    result = fix_text(ELLIPSIS_ATTENTION, "model.py", rules("ADP010"))
    assert "scaled_dot_product_attention" in result.text
    # the product's (batch, heads, queries, width) taken to the written (batch, queries, heads,
    # width) by its last three axes: a permute of three axes would not fit the 4-D output
    assert ".movedim((-2, -3, -1), (-3, -2, -1))" in result.text
    a, b = float64_pair(ELLIPSIS_ATTENTION, result.text, "Block")
    torch.manual_seed(1)
    x = torch.randn(2, 5, 16, dtype=torch.float64)
    bias = torch.randn(2, 5, 5, 4, dtype=torch.float64)
    mask = torch.ones(2, 5, dtype=torch.bool)
    mask[1, 3:] = False
    for kwargs in ({}, {"bias": bias}, {"mask": mask}, {"mask": mask, "bias": bias}):
        assert torch.allclose(a(x, **kwargs), b(x, **kwargs)), kwargs


def test_an_einsum_without_an_ellipsis_still_moves_its_output_with_permute():
    from corpus_forms import rules

    from adopter.synth.core import fix_text

    code = ELLIPSIS_ATTENTION.replace('"...qc,...kc->...qk"', '"bhqc,bhkc->bhqk"').replace(
        '"...hqk,...hkc->...qhc"', '"bhqk,bhkc->bqhc"')
    result = fix_text(code, "model.py", rules("ADP010"))
    assert "scaled_dot_product_attention" in result.text
    assert ".movedim(" not in result.text and ".permute(0, 2, 1, 3)" in result.text
