"""Forms from the lead's blind batch of session 18 (transformers 4.45.2: videomae, wavlm,
bark, roformer): our own fixtures, each with near-misses that must not match."""

from __future__ import annotations

import textwrap

from corpus_forms import finding_at, found, rules

# ------------------------- ADP009: three functional projections of one input, inputs by keyword

FUNCTIONAL_QKV = textwrap.dedent("""\
    import torch
    from torch import nn


    class VideoAttention(nn.Module):
        def __init__(self, dim):
            super().__init__()
            self.query = nn.Linear(dim, dim, bias=False)
            self.key = nn.Linear(dim, dim, bias=False)
            self.value = nn.Linear(dim, dim, bias=False)
            self.q_bias = nn.Parameter(torch.zeros(dim))
            self.v_bias = nn.Parameter(torch.zeros(dim))

        def forward(self, h):
            k_bias = torch.zeros_like(self.v_bias, requires_grad=False)
            keys = nn.functional.linear(input=h, weight=self.key.weight, bias=k_bias)  # kw-site
            values = nn.functional.linear(input=h, weight=self.value.weight, bias=self.v_bias)
            queries = nn.functional.linear(input=h, weight=self.query.weight, bias=self.q_bias)
            return (queries @ keys.transpose(-2, -1)).softmax(-1) @ values


    class Positional(VideoAttention):
        def forward(self, h):
            q = nn.functional.linear(h, self.query.weight)  # pos-site
            k = nn.functional.linear(h, self.key.weight, None)
            v = nn.functional.linear(h, self.value.weight, self.v_bias)
            return (q @ k.transpose(-2, -1)).softmax(-1) @ v
""")

NOT_ONE_INPUT = textwrap.dedent("""\
    import torch
    from torch import nn


    class Cross(nn.Module):
        def __init__(self, dim):
            super().__init__()
            self.query = nn.Linear(dim, dim)
            self.key = nn.Linear(dim, dim)
            self.value = nn.Linear(dim, dim)

        def forward(self, h, context):
            q = nn.functional.linear(input=h, weight=self.query.weight, bias=self.query.bias)
            k = nn.functional.linear(input=context, weight=self.key.weight, bias=self.key.bias)
            v = nn.functional.linear(input=context, weight=self.value.weight, bias=self.value.bias)
            return (q @ k.transpose(-2, -1)).softmax(-1) @ v


    class Sharded(nn.Module):
        def __init__(self, dim, tp):
            super().__init__()
            self.tp = tp
            self.q_proj = nn.Linear(dim, dim, bias=False)
            self.k_proj = nn.Linear(dim, dim, bias=False)
            self.v_proj = nn.Linear(dim, dim, bias=False)

        def forward(self, h):
            q_slices = self.q_proj.weight.split(h.shape[-1] // self.tp, dim=0)
            k_slices = self.k_proj.weight.split(h.shape[-1] // self.tp, dim=0)
            v_slices = self.v_proj.weight.split(h.shape[-1] // self.tp, dim=0)
            q = torch.cat([nn.functional.linear(h, q_slices[i]) for i in range(self.tp)], dim=-1)
            k = torch.cat([nn.functional.linear(h, k_slices[i]) for i in range(self.tp)], dim=-1)
            v = torch.cat([nn.functional.linear(h, v_slices[i]) for i in range(self.tp)], dim=-1)
            return (q @ k.transpose(-2, -1)).softmax(-1) @ v


    class TwoOnly(nn.Module):
        def __init__(self, dim):
            super().__init__()
            self.key = nn.Linear(dim, dim)
            self.value = nn.Linear(dim, dim)

        def forward(self, h, q):
            k = nn.functional.linear(input=h, weight=self.key.weight, bias=self.key.bias)
            v = nn.functional.linear(input=h, weight=self.value.weight, bias=self.value.bias)
            return (q @ k.transpose(-2, -1)).softmax(-1) @ v
""")


def test_functional_projections_of_one_input_are_found_however_their_arguments_are_passed():
    assert finding_at(FUNCTIONAL_QKV, "ADP009", "# kw-site") is not None
    assert finding_at(FUNCTIONAL_QKV, "ADP009", "# pos-site") is not None


def test_functional_projections_are_reported_with_the_reason_they_are_not_fixed():
    from adopter.synth import fix_text

    result = fix_text(FUNCTIONAL_QKV, "model.py", rules("ADP009"))
    assert result.text == FUNCTIONAL_QKV
    reasons = [reason for _, reason in result.skipped]
    assert len(reasons) == 2 and all("reported only" in r and "three Linear layers" in r for r in reasons)


def test_functional_projections_of_two_inputs_of_weight_shards_or_only_two_are_not_fused_qkv():
    assert found(NOT_ONE_INPUT, "ADP009") == []


# ------------------------------- any operation: a tensor input passed by keyword is its input

KEYWORD_INPUTS = textwrap.dedent("""\
    import torch
    import torch.nn.functional as F
    from torch import nn


    class Attention(nn.Module):
        def forward(self, q, k, v):
            scores = torch.matmul(q, k.transpose(-1, -2)) / 8.0
            probs = F.softmax(input=scores, dim=-1)  # softmax-site
            return torch.matmul(probs, v)


    class Gated(nn.Module):
        def __init__(self, dim, hidden):
            super().__init__()
            self.w1 = nn.Linear(dim, hidden, bias=False)
            self.w3 = nn.Linear(dim, hidden, bias=False)

        def forward(self, x):
            return F.silu(F.linear(input=x, weight=self.w1.weight)) * F.linear(x, weight=self.w3.weight)  # glu-site
""")


def test_inputs_passed_by_keyword_are_read_as_the_operation_s_inputs():
    assert finding_at(KEYWORD_INPUTS, "ADP010", "# softmax-site") is not None
    assert finding_at(KEYWORD_INPUTS, "ADP013", "# glu-site") is not None
