"""Forms from hf40's blind batch of transformers 5.23.0 model files: one activation applied after
each Linear of a layer list (D-FINE's MLP, ``for layer in self.layers: x = self.act(layer(x))``),
query/key/value projections concatenated, run through a per-channel short convolution and split
back into the pieces a delta-rule helper takes (Kimi Linear); and a SwiGLU whose two operands are
clamped before the product (DeepSeek-V4's ``swiglu_limit``), which stays unreported.  Our own
fixtures, each with near-misses."""

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


# ---------- ADP009: q, k, v concatenated, through a per-channel conv, split, handed on together

DELTA = textwrap.dedent("""\
    import torch
    from torch import nn
    from torch.nn import functional as F


    def delta_rule(q, k, v, beta):
        state = q.new_zeros(q.shape[0], q.shape[-1], v.shape[-1])
        out = []
        for t in range(q.shape[1]):
            kt, vt = k[:, t], v[:, t]
            state = state + beta[:, t, None, None] * kt[:, :, None] * (vt - (kt[:, None, :] @ state)[:, 0])[:, None, :]
            out.append((q[:, t, None, :] @ state)[:, 0])
        return torch.stack(out, dim=1)


    class DeltaLayer(nn.Module):
        def __init__(self, d=8):
            super().__init__()
            self.d = d
            self.q_proj = nn.Linear(d, d, bias=False)
            self.k_proj = nn.Linear(d, d, bias=False)
            self.v_proj = nn.Linear(d, d, bias=False)
            self.b_proj = nn.Linear(d, 1, bias=False)
            self.conv = nn.Conv1d(3 * d, 3 * d, 4, groups=3 * d, padding=3)

        def forward(self, x):
            mixed = torch.cat(
                [
                    self.q_proj(x),  # first
                    self.k_proj(x),
                    self.v_proj(x),
                ],
                dim=-1,
            ).transpose(1, 2)
            mixed = F.silu(self.conv(mixed)[..., : x.shape[1]])
            q, k, v = torch.split(mixed.transpose(1, 2), [self.d, self.d, self.d], dim=-1)
            beta = self.b_proj(x).sigmoid()[..., 0]
            return delta_rule(q, k, v, beta)
""")


def test_projections_concatenated_and_split_back_for_a_delta_rule_are_fused_exactly():
    assert finding_at(DELTA, "ADP009", "# first") is not None
    result = fix_text(DELTA, "model.py", rules("ADP009"))
    assert "fused_qkv(x, self.q_proj, self.k_proj, self.v_proj)" in result.text
    a, b = float64_pair(DELTA, result.text, "DeltaLayer")
    x = torch.randn(2, 5, 8, dtype=torch.float64)
    torch.testing.assert_close(b(x), a(x), rtol=1e-12, atol=1e-12)


def test_projections_concatenated_into_a_feed_forward_and_split_are_no_attention():
    # the concatenation projected again by a Linear: each piece mixes every projection
    code = DELTA.replace("mixed = F.silu(self.conv(mixed)[..., : x.shape[1]])",
                         "mixed = self.mix(mixed.transpose(1, 2)).transpose(1, 2)")
    code = code.replace("        self.conv = nn.Conv1d(3 * d, 3 * d, 4, groups=3 * d, padding=3)\n",
                        "        self.mix = nn.Linear(3 * d, 3 * d)\n")
    assert "self.mix = nn.Linear" in code and "self.mix(mixed" in code
    assert not found(code, "ADP009")


def test_projections_concatenated_and_returned_are_no_attention():
    code = DELTA.replace("        q, k, v = torch.split(mixed.transpose(1, 2), [self.d, self.d, self.d], dim=-1)\n"
                         "        beta = self.b_proj(x).sigmoid()[..., 0]\n"
                         "        return delta_rule(q, k, v, beta)\n", "        return mixed\n")
    assert "return delta_rule(q" not in code
    assert not found(code, "ADP009")


# ---------- ADP013: silu(clamp(gate)) * clamp(up) is no SwiGLU location (an operation between)

CLAMPED = textwrap.dedent("""\
    import torch
    from torch import nn
    from torch.nn import functional as F


    class MLP(nn.Module):
        def __init__(self, d=8, h=16, limit=1.5):
            super().__init__()
            self.gate_proj = nn.Linear(d, h, bias=False)
            self.up_proj = nn.Linear(d, h, bias=False)
            self.down_proj = nn.Linear(h, d, bias=False)
            self.act_fn = nn.SiLU()
            self.limit = limit

        def forward(self, x, y=None):
            gate = self.gate_proj(x).clamp(max=self.limit)
            up = self.up_proj(x).clamp(min=-self.limit, max=self.limit)
            return self.down_proj(self.act_fn(gate) * up)  # product


    class Experts(nn.Module):
        def __init__(self, e=2, d=8, h=16, limit=1.5):
            super().__init__()
            self.gate_up_proj = nn.Parameter(torch.randn(e, 2 * h, d))
            self.act_fn = nn.SiLU()
            self.limit = limit

        def forward(self, x, k=0):
            return self._apply_gate(F.linear(x, self.gate_up_proj[k]))

        def _apply_gate(self, gate_up):
            gate, up = gate_up.chunk(2, dim=-1)
            gate = gate.clamp(max=self.limit)
            up = up.clamp(min=-self.limit, max=self.limit)
            return self.act_fn(gate) * up  # halves
""")


def test_swiglu_of_clamped_operands_is_not_reported():
    # DeepSeek-V4's swiglu_limit: the corpus labels it no (hy_v4, nano-deepseek-v4: an operation
    # between the projection and the product), while the same code unclamped is a SwiGLU
    assert finding_at(CLAMPED, "ADP013", "# product") is None
    assert finding_at(CLAMPED, "ADP013", "# halves") is None
    plain = CLAMPED.replace(".clamp(max=self.limit)", "").replace(".clamp(min=-self.limit, max=self.limit)", "")
    assert finding_at(plain, "ADP013", "# product") is not None
    assert finding_at(plain, "ADP013", "# halves") is not None
