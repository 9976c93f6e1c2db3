"""Forms found missing (or wrongly reported) by the blind batch corpus10b (language, speech,
time-series and protein code: fairseq, NeMo, EvolutionaryScale's ESM, uni2ts, f5-tts, fairseq2,
llm-foundry, OLMo-core): each test states the semantic fact the engine now reads, and a near-miss
it must still leave alone.  The fixtures are ours, written in those projects' styles."""

from __future__ import annotations

import textwrap

import pytest
from corpus_forms import covered as _covered
from corpus_forms import findings as _findings

from adopter.ruleset import load_rules, select_rules
from adopter.synth import fix_text

RULES = load_rules()


# -- rotate-half: halves named in one tuple assignment, the axis written as the rank minus one --

ROPE_TUPLE = textwrap.dedent('''
    import torch
    from torch import nn


    class Rotary(nn.Module):
        def __init__(self, dim):
            super().__init__()
            self.register_buffer("inv_freq", 1.0 / (10000 ** (torch.arange(0, dim, 2).float() / dim)))

        def forward(self, x, seq_len):
            t = torch.arange(seq_len).type_as(self.inv_freq)
            emb = torch.cat((torch.outer(t, self.inv_freq),) * 2, dim=-1)
            return emb.cos()[:, None, None, :], emb.sin()[:, None, None, :]


    def rotate_half(x):
        x1, x2 = x[..., : x.shape[-1] // 2], x[..., x.shape[-1] // 2 :]
        return torch.cat((-x2, x1), dim=x1.ndim - 1)


    def apply_rotary_pos_emb(q, k, cos, sin):
        return (q * cos) + (rotate_half(q) * sin), (k * cos) + (rotate_half(k) * sin)
''')


def test_rotate_half_of_a_tuple_assignment_in_a_public_helper_is_found():
    # the class's forward reaches nothing of the helper: a public module function the file never
    # calls is its API for other files (fairseq's rotary module), so it is analysed too
    assert _covered(ROPE_TUPLE, "return (q * cos) + (rotate_half(q) * sin)", "ADP014")


def test_swapped_halves_are_not_a_rotate_half():
    swapped = ROPE_TUPLE.replace("x1, x2 = x[..., : x.shape[-1] // 2], x[..., x.shape[-1] // 2 :]",
                                 "x2, x1 = x[..., : x.shape[-1] // 2], x[..., x.shape[-1] // 2 :]")
    assert not _findings(swapped, "ADP014")


def test_a_tuple_assignment_reading_its_own_names_holds_nothing():
    # x1, x2 = x2, x1 swaps the earlier values: the names do not hold the halves afterwards
    code = ROPE_TUPLE.replace(
        "x1, x2 = x[..., : x.shape[-1] // 2], x[..., x.shape[-1] // 2 :]",
        "x1, x2 = x[..., : x.shape[-1] // 2], x[..., x.shape[-1] // 2 :]\n    x1, x2 = x2, x1")
    assert not _findings(code, "ADP014")


def test_a_private_unreached_helper_is_still_dropped():
    private = ROPE_TUPLE.replace("def apply_rotary_pos_emb(", "def _apply_rotary_pos_emb(")
    assert not _findings(private, "ADP014")


# -- rotate-half as a method: the last axis viewed as (2, d // 2) and unbound --------------------

ROPE_METHOD = textwrap.dedent('''
    import torch
    from torch import nn


    class RotaryEmbedding(nn.Module):
        def __init__(self, head_size):
            super().__init__()
            self.head_size = head_size

        def _rotate_half(self, x):
            B, nh, T, hs = x.size()
            x = x.view(B, nh, T, 2, hs // 2)
            x1, x2 = x.unbind(dim=-2)
            return torch.cat((-x2, x1), dim=-1)

        def _apply_rotary_pos_emb(self, pos_sin, pos_cos, t):
            return ((t * pos_cos) + (self._rotate_half(t) * pos_sin)).to(t.dtype)

        def forward(self, q, k, pos_sin, pos_cos):
            return self._apply_rotary_pos_emb(pos_sin, pos_cos, q), self._apply_rotary_pos_emb(pos_sin, pos_cos, k)
''')


def test_rotate_half_method_viewing_the_last_axis_in_two_is_found():
    assert _covered(ROPE_METHOD, "return ((t * pos_cos) + (self._rotate_half(t) * pos_sin))", "ADP014")


def test_a_view_that_merges_the_leading_axes_is_not_a_rotate_half():
    # view(-1, 2, hs // 2) keeps the halves but not the other axes: cat of them is no rotation of x
    merged = ROPE_METHOD.replace("x = x.view(B, nh, T, 2, hs // 2)", "x = x.view(-1, 2, hs // 2)")
    assert not _findings(merged, "ADP014")


def test_a_view_by_another_axis_is_not_a_rotate_half():
    # hs // 2 must be half of the last axis: T // 2 is not
    other = ROPE_METHOD.replace("x = x.view(B, nh, T, 2, hs // 2)", "x = x.view(B, nh, hs, 2, T // 2)")
    assert not _findings(other, "ADP014")


# -- a manual attention that is the fallback of SDPA chosen in both branches of a nested if ------

NEMO_ATTENTION = textwrap.dedent('''
    import math

    import torch
    from torch import nn


    class MultiHeadAttention(nn.Module):
        def __init__(self, n_head, n_feat, dropout_rate, use_pytorch_sdpa=False, backends=None):
            super().__init__()
            self.d_k = n_feat // n_head
            self.h = n_head
            self.linear_q = nn.Linear(n_feat, n_feat)
            self.linear_k = nn.Linear(n_feat, n_feat)
            self.linear_v = nn.Linear(n_feat, n_feat)
            self.linear_out = nn.Linear(n_feat, n_feat)
            self.dropout = nn.Dropout(p=dropout_rate)
            self.dropout_rate = dropout_rate
            self.use_pytorch_sdpa = use_pytorch_sdpa
            self.backends = backends

        def forward_attention(self, value, scores):
            attn = torch.softmax(scores, dim=-1)
            p_attn = self.dropout(attn)
            x = torch.matmul(p_attn, value)
            return self.linear_out(x.transpose(1, 2).reshape(value.size(0), -1, self.h * self.d_k))

        def forward(self, query, key, value):
            b = query.size(0)
            q = self.linear_q(query).view(b, -1, self.h, self.d_k).transpose(1, 2)
            k = self.linear_k(key).view(b, -1, self.h, self.d_k).transpose(1, 2)
            v = self.linear_v(value).view(b, -1, self.h, self.d_k).transpose(1, 2)
            if self.use_pytorch_sdpa:
                rate = self.dropout_rate if self.training else 0
                if self.backends:
                    with torch.nn.attention.sdpa_kernel(self.backends):
                        out = torch.nn.functional.scaled_dot_product_attention(q, k, v, dropout_p=rate)
                else:
                    out = torch.nn.functional.scaled_dot_product_attention(q, k, v, dropout_p=rate)
                out = self.linear_out(out.transpose(1, 2).reshape(b, -1, self.h * self.d_k))
            else:
                scores = torch.matmul(q, k.transpose(-2, -1)) / math.sqrt(self.d_k)
                out = self.forward_attention(v, scores)
            return out
''')


def test_fallback_of_sdpa_chosen_in_both_branches_of_a_nested_if_is_not_reported():
    assert not _findings(NEMO_ATTENTION, "ADP010")


def test_fallback_of_an_if_that_may_skip_sdpa_is_still_reported():
    # the nested if has no else: the first branch need not call SDPA at all
    one_branch = NEMO_ATTENTION.replace(
        "            else:\n"
        "                out = torch.nn.functional.scaled_dot_product_attention(q, k, v, dropout_p=rate)\n", "")
    assert one_branch != NEMO_ATTENTION
    assert _covered(one_branch, "attn = torch.softmax(scores, dim=-1)", "ADP010")


# -- a manual RMSNorm that is the fallback of F.rms_norm ------------------------------------------

RMS_FALLBACK = textwrap.dedent('''
    import torch
    import torch.nn.functional as F
    from torch import nn


    class RMSNorm(nn.Module):
        def __init__(self, dim, eps):
            super().__init__()
            self.eps = eps
            self.weight = nn.Parameter(torch.ones(dim))
            self.native_rms_norm = float(torch.__version__[:3]) >= 2.4

        def forward(self, x):
            if self.native_rms_norm:
                x = F.rms_norm(x, normalized_shape=(x.shape[-1],), weight=self.weight, eps=self.eps)
            else:
                variance = x.to(torch.float32).pow(2).mean(-1, keepdim=True)
                x = x * torch.rsqrt(variance + self.eps)
                x = x * self.weight
            return x
''')


def test_rms_norm_fallback_of_the_functional_kernel_is_not_reported():
    assert not _findings(RMS_FALLBACK, "ADP011")


def test_rms_norm_beside_another_branch_is_still_reported():
    other = RMS_FALLBACK.replace("x = F.rms_norm(x, normalized_shape=(x.shape[-1],), weight=self.weight, eps=self.eps)",
                                 "x = F.layer_norm(x, (x.shape[-1],), self.weight, None, self.eps)")
    assert _covered(other, "x = x * torch.rsqrt(variance + self.eps)", "ADP011")


# -- a subclass passing its own activation default to the base's constructor ----------------------

FFN_SUBCLASS = textwrap.dedent('''
    import torch.nn.functional as F
    from torch import nn


    class FeedForward(nn.Module):
        def __init__(self, in_dim, hidden_dim, activation=F.gelu, bias=True):
            super().__init__()
            self.fc1 = nn.Linear(in_dim, hidden_dim, bias=bias)
            self.fc2 = nn.Linear(hidden_dim, in_dim, bias=bias)
            self.activation = activation

        def forward(self, x):
            return self.fc2(self._in_proj(x))

        def _in_proj(self, x):
            return self.activation(self.fc1(x))


    class GatedFeedForward(FeedForward):
        def __init__(self, in_dim, hidden_dim, activation=F.silu, bias=True):
            super().__init__(in_dim, hidden_dim, activation=activation, bias=bias)
            self.fc_gate = nn.Linear(in_dim, hidden_dim, bias=bias)

        def _in_proj(self, x):
            return self.activation(self.fc_gate(x)) * self.fc1(x)
''')


def test_subclass_activation_default_replaces_the_base_default():
    # the subclass's activation is SiLU by its own default: a SwiGLU, and no bias-GELU
    assert _covered(FFN_SUBCLASS, "return self.activation(self.fc_gate(x)) * self.fc1(x)", "ADP013")
    assert not _covered(FFN_SUBCLASS, "return self.activation(self.fc_gate(x)) * self.fc1(x)", "ADP006")
    # the base keeps its GELU default
    assert _covered(FFN_SUBCLASS, "return self.activation(self.fc1(x))", "ADP006")


def test_subclass_passing_nothing_keeps_the_base_default():
    plain = FFN_SUBCLASS.replace("super().__init__(in_dim, hidden_dim, activation=activation, bias=bias)",
                                 "super().__init__(in_dim, hidden_dim, bias=bias)")
    assert _covered(plain, "return self.activation(self.fc_gate(x)) * self.fc1(x)", "ADP006")
    assert not _covered(plain, "return self.activation(self.fc_gate(x)) * self.fc1(x)", "ADP013")


# -- an activation table written as a local dict in the constructor -------------------------------

LOCAL_TABLE = textwrap.dedent('''
    import torch
    from torch import nn
    from torch.nn.functional import gelu


    class PositionWiseFF(nn.Module):
        def __init__(self, hidden_size, inner_size, hidden_act="relu"):
            super().__init__()
            self.dense_in = nn.Linear(hidden_size, inner_size)
            self.dense_out = nn.Linear(inner_size, hidden_size)
            ACT2FN = {"gelu": gelu, "relu": torch.relu}
            self.act_fn = ACT2FN[hidden_act]

        def forward(self, hidden_states):
            output_states = self.dense_in(hidden_states)
            output_states = self.act_fn(output_states)
            return self.dense_out(output_states)
''')


def test_local_activation_table_keyed_by_a_parameter_may_be_gelu():
    assert _covered(LOCAL_TABLE, "output_states = self.act_fn(output_states)", "ADP006")


def test_local_activation_table_without_gelu_is_not_reported():
    no_gelu = LOCAL_TABLE.replace('{"gelu": gelu, "relu": torch.relu}', '{"tanh": torch.tanh, "relu": torch.relu}')
    assert not _findings(no_gelu, "ADP006")


# -- SDPA fixes: a functional dropout under its rate's test, a mask cast to the scores' dtype -------

NAIVE_SDPA = textwrap.dedent('''
    import torch
    from torch import nn
    from torch.nn.functional import dropout, softmax


    def naive_attention(q, k, v, bias, *, dropout_p=0.0, needs_weights=False):
        weights = torch.matmul(q, k.transpose(-1, -2))
        weights = weights * (q.size(-1) ** -0.5)
        if bias is not None:
            weights = weights + bias
        weights = softmax(weights, dim=-1, dtype=torch.float32)
        weights = weights.type_as(q)
        if dropout_p > 0.0:
            weights = dropout(weights, dropout_p)
        attns = torch.matmul(weights, v)
        return attns, weights if needs_weights else None


    class NaiveSDPA(nn.Module):
        def __init__(self, dropout_p=0.0):
            super().__init__()
            self.dropout_p = dropout_p

        def forward(self, q, k, v, bias=None):
            p = self.dropout_p if self.training else 0.0
            return naive_attention(q, k, v, bias, dropout_p=p)[0]
''')

SCORES_DTYPE_MASK = textwrap.dedent('''
    import math

    import torch
    from torch import nn


    class MultiHeadAttention(nn.Module):
        def __init__(self, hidden_size, num_attention_heads, attn_score_dropout=0.0):
            super().__init__()
            self.num_attention_heads = num_attention_heads
            self.attn_head_size = hidden_size // num_attention_heads
            self.attn_scale = math.sqrt(math.sqrt(self.attn_head_size))
            self.query_net = nn.Linear(hidden_size, hidden_size)
            self.key_net = nn.Linear(hidden_size, hidden_size)
            self.value_net = nn.Linear(hidden_size, hidden_size)
            self.attn_dropout = nn.Dropout(attn_score_dropout)

        def transpose_for_scores(self, x):
            x = x.view(*x.size()[:-1], self.num_attention_heads, self.attn_head_size)
            return x.permute(0, 2, 1, 3)

        def forward(self, queries, keys, values, attention_mask):
            query = self.transpose_for_scores(self.query_net(queries)) / self.attn_scale
            key = self.transpose_for_scores(self.key_net(keys)) / self.attn_scale
            value = self.transpose_for_scores(self.value_net(values))
            attention_scores = torch.matmul(query, key.transpose(-1, -2))
            if attention_mask is not None:
                attention_scores = attention_scores + attention_mask.to(attention_scores.dtype)
            attention_probs = torch.softmax(attention_scores, dim=-1)
            attention_probs = self.attn_dropout(attention_probs)
            context = torch.matmul(attention_probs, value)
            return context.permute(0, 2, 1, 3).reshape(queries.size(0), -1, self.num_attention_heads * self.attn_head_size)
''')


def _fixed(code: str) -> str:
    result = fix_text(code, "model.py", select_rules(RULES, ["ADP010"]))
    assert result.error is None
    assert [f.rule for f in result.applied] == ["ADP010"], result.skipped
    assert "scaled_dot_product_attention(" in result.text
    return result.text


def test_functional_dropout_under_its_rate_test_is_fused(module_from_file):
    torch = pytest.importorskip("torch")
    fixed = _fixed(NAIVE_SDPA)
    assert "dropout_p=(dropout_p) if dropout_p > 0.0 else 0.0" in fixed
    before = module_from_file(NAIVE_SDPA, "naive_before").NaiveSDPA()
    after = module_from_file(fixed, "naive_after").NaiveSDPA()
    torch.manual_seed(0)
    # float32: the original runs its softmax in float32 whatever q's dtype, SDPA in q's dtype
    q, k, v = (torch.randn(2, 3, 5, 8, dtype=torch.float32, requires_grad=True) for _ in range(3))
    bias = torch.randn(2, 3, 5, 5, dtype=torch.float32)
    for mask in (None, bias):
        expected = before(q, k, v, mask)
        got = after(q, k, v, mask)
        # float32 (eps 1.2e-7), a softmax over 5 keys then sums of 5 products: within ~10 ulps
        torch.testing.assert_close(got, expected, rtol=2e-6, atol=2e-6)
        (g_expected,) = torch.autograd.grad(expected.sum(), q)
        (g_got,) = torch.autograd.grad(got.sum(), q)
        torch.testing.assert_close(g_got, g_expected, rtol=2e-6, atol=2e-6)


def test_functional_dropout_under_a_test_that_calls_is_not_fused():
    code = NAIVE_SDPA.replace("if dropout_p > 0.0:", "if float(dropout_p) > 0.0:")
    result = fix_text(code, "model.py", select_rules(RULES, ["ADP010"]))
    assert not result.applied


def test_mask_cast_to_the_scores_dtype_is_fused_with_q_dtype(module_from_file):
    torch = pytest.importorskip("torch")
    fixed = _fixed(SCORES_DTYPE_MASK)
    assert "attention_mask.to(query.dtype)" in fixed
    before = module_from_file(SCORES_DTYPE_MASK, "nemo_before").MultiHeadAttention(16, 4).double().eval()
    after = module_from_file(fixed, "nemo_after").MultiHeadAttention(16, 4).double().eval()
    after.load_state_dict(before.state_dict(), strict=True)
    torch.manual_seed(0)
    x = torch.randn(2, 6, 16, dtype=torch.float64)
    keep = torch.rand(2, 1, 1, 6) > 0.3
    keep[..., 0] = True
    mask = torch.zeros(2, 1, 1, 6).masked_fill(~keep, -10000.0)  # float32 mask, cast by the model
    for m in (None, mask):
        torch.testing.assert_close(after(x, x, x, m), before(x, x, x, m), rtol=1e-12, atol=1e-12)


def test_mask_reading_scaled_scores_dtype_is_left_alone():
    # a tensor scale between the product and the mask may promote the scores: not q's dtype
    code = SCORES_DTYPE_MASK.replace(
        "attention_scores = torch.matmul(query, key.transpose(-1, -2))\n",
        "attention_scores = torch.matmul(query, key.transpose(-1, -2))\n"
        "        attention_scores = attention_scores * self.temperature\n").replace(
        "self.attn_dropout = nn.Dropout(attn_score_dropout)",
        "self.attn_dropout = nn.Dropout(attn_score_dropout)\n        self.temperature = nn.Parameter(torch.ones(1))")
    result = fix_text(code, "model.py", select_rules(RULES, ["ADP010"]))
    assert "attention_mask.to(query.dtype)" not in result.text
