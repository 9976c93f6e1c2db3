"""Forms from hf40's blind batch of transformers 5.23.0 model files: one activation applied after
each Linear of a layer list (D-FINE's MLP, ``for layer in self.layers: x = self.act(layer(x))``),
query/key/value projections concatenated, run through a per-channel short convolution and split
back into the pieces a delta-rule helper takes (Kimi Linear), and a SwiGLU whose two operands are
clamped before the product (DeepSeek-V4's ``swiglu_limit``).  Our own fixtures, each with
near-misses."""

from __future__ import annotations

import textwrap

import torch
from corpus_forms import finding_at, float64_pair, found, rules

from adopter.synth.core import fix_text

# ---------- ADP006: one activation shared by every Linear of a layer list

LIST_MLP = textwrap.dedent("""\
    import torch
    from torch import nn
    from transformers.activations import ACT2CLS


    class MLP(nn.Module):
        def __init__(self, d=8, n=3, act: str = "relu"):
            super().__init__()
            self.n = n
            self.layers = nn.ModuleList(nn.Linear(d, d) for _ in range(n))
            self.act = ACT2CLS[act]()

        def forward(self, x):
            for i, layer in enumerate(self.layers):
                x = self.act(layer(x)) if i < self.n - 1 else layer(x)  # pair
            return x


    class Encoder(nn.Module):
        def __init__(self, config):
            super().__init__()
            self.mlp = MLP(8, 3, config.encoder_activation_function)
""")

LOOP_GELU = textwrap.dedent("""\
    import torch
    from torch import nn


    class MLP(nn.Module):
        def __init__(self, d=8, n=3):
            super().__init__()
            self.layers = nn.ModuleList([nn.Linear(d, d) for _ in range(n)])
            self.act = nn.GELU()

        def forward(self, x):
            for layer in self.layers:
                x = self.act(layer(x))  # pair
            return x
""")


def test_an_activation_from_a_run_time_key_after_each_listed_linear_is_found():
    assert finding_at(LIST_MLP, "ADP006", "# pair") is not None


def test_one_gelu_after_each_listed_linear_is_found_and_fixed_exactly():
    assert finding_at(LOOP_GELU, "ADP006", "# pair") is not None
    result = fix_text(LOOP_GELU, "model.py", rules("ADP006"))
    assert "x = bias_gelu(x, layer, self.act)" in result.text
    a, b = float64_pair(LOOP_GELU, result.text, "MLP")
    x = torch.randn(4, 8, dtype=torch.float64)
    torch.testing.assert_close(b(x), a(x), rtol=0, atol=0)


def test_a_fixed_relu_after_each_listed_linear_is_no_bias_gelu():
    code = LOOP_GELU.replace("self.act = nn.GELU()", "self.act = nn.ReLU()")
    assert not found(code, "ADP006")


def test_one_batchnorm_after_each_listed_convolution_still_does_not_fold():
    # a BatchNorm holds statistics and an affine map: shared by many convolutions it cannot fold
    # into each of them (an activation holds nothing, so it can follow each)
    code = textwrap.dedent("""\
        import torch
        from torch import nn


        class Stack(nn.Module):
            def __init__(self, c=4, n=3):
                super().__init__()
                self.convs = nn.ModuleList([nn.Conv2d(c, c, 3, padding=1) for _ in range(n)])
                self.bn = nn.BatchNorm2d(c)

            def forward(self, x):
                for conv in self.convs:
                    x = self.bn(conv(x))
                return x
    """)
    assert not found(code, "ADP007")


