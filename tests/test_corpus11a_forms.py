"""Forms found missing (or wrongly reported) by the blind batch corpus11a (time-series, graph,
speech, audio and tabular code: chronos-forecasting, pytorch-tabular and others): each test
states the semantic fact the engine now reads, and a near-miss it must still leave alone.  The
fixtures are ours, written in those projects' styles."""

from __future__ import annotations

import textwrap

import pytest

from corpus_forms import covered as _covered
from corpus_forms import findings as _findings

from adopter.ruleset import load_rules, select_rules
from adopter.synth import fix_text

RULES = load_rules()


# -- SDPA already adopted: the other branch calls a helper method that calls it ------------------

HELPER_BRANCHES = textwrap.dedent('''
    import torch
    from torch import nn
    import torch.nn.functional as F


    class SelfAttention(nn.Module):
        def __init__(self, dim, heads, dropout=0.0, backend="sdpa"):
            super().__init__()
            self.heads = heads
            self.dropout = dropout
            self.backend = backend
            self.wq = nn.Linear(dim, dim, bias=False)
            self.wk = nn.Linear(dim, dim, bias=False)
            self.wv = nn.Linear(dim, dim, bias=False)
            self.wo = nn.Linear(dim, dim, bias=False)

        def _manual(self, q, k, v, bias):
            scores = torch.matmul(q, k.transpose(3, 2))
            scores += bias
            probs = F.softmax(scores.float(), dim=-1).type_as(scores)
            probs = F.dropout(probs, p=self.dropout, training=self.training)
            return torch.matmul(probs, v), probs

        def _fused(self, q, k, v, bias):
            p = self.dropout if self.training else 0.0
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias, dropout_p=p, scale=1.0)
            return out, None

        def forward(self, x, bias, need_weights=False):
            b, n, d = x.shape
            q, k, v = (t.view(b, n, self.heads, -1).transpose(1, 2) for t in (self.wq(x), self.wk(x), self.wv(x)))
            backend = self.backend
            if need_weights:
                backend = "manual"
            if backend == "sdpa":
                out, probs = self._fused(q, k, v, bias)
            else:
                out, probs = self._manual(q, k, v, bias)
            out = out.transpose(1, 2).reshape(b, n, d)
            return self.wo(out), probs
''')


def test_manual_attention_beside_a_branch_whose_helper_calls_sdpa_is_not_reported():
    # the manual helper runs only in the else branch of an if whose branch calls a method that
    # always calls scaled_dot_product_attention (chronos-2's _sdpa_attention / _eager_attention)
    assert not _findings(HELPER_BRANCHES, "ADP010")


def test_manual_attention_beside_a_helper_that_may_skip_sdpa_is_still_reported():
    code = HELPER_BRANCHES.replace(
        "        out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias, dropout_p=p, scale=1.0)\n",
        "        if q.dtype == torch.float16:\n"
        "            out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias, dropout_p=p, scale=1.0)\n"
        "        else:\n"
        "            out = q\n")
    assert "if q.dtype == torch.float16:" in code
    assert _covered(code, "probs = F.softmax(scores.float(), dim=-1)", "ADP010")


def test_manual_attention_beside_a_helper_without_sdpa_is_still_reported():
    code = HELPER_BRANCHES.replace(
        "out = F.scaled_dot_product_attention(q, k, v,", "out = torch.flash_like_attention(q, k, v,")
    assert _covered(code, "probs = F.softmax(scores.float(), dim=-1)", "ADP010")


# -- an activation parameter the file's constructions of the class set ---------------------------

PASSED_ACTIVATION = textwrap.dedent('''
    import torch
    from torch import nn


    class PositionwiseFFN(nn.Module):
        def __init__(self, d_model, d_ff, dropout=0.1, activation=nn.ReLU(), is_gated=False):
            super().__init__()
            self.layer1 = nn.Linear(d_model, d_ff)
            self.layer2 = nn.Linear(d_ff, d_model)
            self.dropout = nn.Dropout(dropout)
            self.activation = activation
            self.is_gated = is_gated
            if is_gated:
                self.linear_v = nn.Linear(d_model, d_ff, bias=False)

        def forward(self, x):
            g = self.activation(self.layer1(x))
            if self.is_gated:
                x = g * self.linear_v(x)
            else:
                x = g
            return self.layer2(self.dropout(x))


    class GatedGELU(nn.Module):
        def __init__(self, d_model, d_ff, dropout=0.1):
            super().__init__()
            self.ffn = PositionwiseFFN(d_model, d_ff, dropout, nn.GELU(), True)

        def forward(self, x):
            return self.ffn(x)


    class GatedSiLU(nn.Module):
        def __init__(self, d_model, d_ff, dropout=0.1):
            super().__init__()
            self.ffn = PositionwiseFFN(d_model, d_ff, dropout, activation=nn.SiLU(), is_gated=True)

        def forward(self, x):
            return self.ffn(x)
''')


def test_activation_passed_by_a_construction_in_the_file_may_be_gelu():
    assert _covered(PASSED_ACTIVATION, "g = self.activation(self.layer1(x))", "ADP006")


def test_activation_passed_by_a_construction_in_the_file_may_be_silu():
    assert _covered(PASSED_ACTIVATION, "x = g * self.linear_v(x)", "ADP013")


def test_constructions_passing_neither_gelu_nor_silu_leave_the_relu_default_alone():
    code = PASSED_ACTIVATION.replace("nn.GELU(), True", "nn.Tanh(), True").replace(
        "activation=nn.SiLU()", "activation=nn.ReLU()")
    assert not _findings(code, "ADP006")
    assert not _findings(code, "ADP013")


def test_a_relu_default_nothing_overrides_is_not_reported():
    code = PASSED_ACTIVATION.split("class GatedGELU")[0]
    assert not _findings(code, "ADP006")
    assert not _findings(code, "ADP013")


def test_the_bias_gelu_fix_hands_the_stored_activation_to_the_kernel():
    # the attribute may hold ReLU, GELU or SiLU: the fix passes the layer itself, as for
    # ACT2FN[config.hidden_act], and a second run changes nothing
    fixed = fix_text(PASSED_ACTIVATION, "model.py", select_rules(RULES, ["ADP006"])).text
    assert "bias_gelu(x, self.layer1, self.activation)" in fixed
    compile(fixed, "model.py", "exec")
    assert fix_text(fixed, "model.py", select_rules(RULES, ["ADP006"])).text == fixed


# -- an assert beside the optional bias, checking its shape against the scores -------------------

CACHED_DECODE = textwrap.dedent('''
    import torch
    from torch import nn
    from einops import rearrange, einsum


    def exists(val):
        return val is not None


    class WindowedDecode(nn.Module):
        def __init__(self, dim, heads=2, window=4):
            super().__init__()
            self.heads = heads
            self.window = window
            self.to_qkv = nn.Linear(dim, dim * 3, bias=False)
            self.to_out = nn.Linear(dim, dim, bias=False)

        def forward(self, x, cache, attn_bias=None):
            q, k, v = self.to_qkv(x).chunk(3, dim=-1)
            q, k, v = map(lambda t: rearrange(t, 'b n (h d) -> b h n d', h=self.heads), (q, k, v))
            q = q * (q.shape[-1] ** -0.5)
            ck, cv = cache
            k = torch.cat((ck, k), dim=-2)
            v = torch.cat((cv, v), dim=-2)
            k, v = tuple(t[..., -(self.window + 1):, :] for t in (k, v))

            sim = einsum(q, k, 'b h i d, b h j d -> b h i j')

            if exists(attn_bias):
                k_len = k.shape[-2]
                attn_bias = attn_bias[..., -1:, -k_len:]
                assert attn_bias.shape[-1] == sim.shape[-1]
                sim = sim + attn_bias

            attn = sim.softmax(dim=-1)
            out = einsum(attn, v, 'b h i j, b h j d -> b h i d')
            return self.to_out(rearrange(out, 'b h n d -> b n (h d)'))
''')


def test_assert_on_the_bias_shape_is_kept_with_the_keys_count(module_from_file):
    torch = pytest.importorskip("torch")
    pytest.importorskip("einops")
    result = fix_text(CACHED_DECODE, "model.py", select_rules(RULES, ["ADP010"]))
    assert [f.rule for f in result.applied] == ["ADP010"], result.skipped
    fixed = result.text
    assert "assert attn_bias.shape[-1] == k.shape[-2]" in fixed
    assert "sim" not in fixed
    assert fix_text(fixed, "model.py", select_rules(RULES, ["ADP010"])).text == fixed
    before = module_from_file(CACHED_DECODE, "decode_before").WindowedDecode(8).double().eval()
    after = module_from_file(fixed, "decode_after").WindowedDecode(8).double().eval()
    after.load_state_dict(before.state_dict(), strict=True)
    torch.manual_seed(0)
    x = torch.randn(2, 1, 8, dtype=torch.float64)
    cache = (torch.randn(2, 2, 7, 4, dtype=torch.float64), torch.randn(2, 2, 7, 4, dtype=torch.float64))
    bias = torch.randn(2, 4, 9, dtype=torch.float64)
    for b in (None, bias):
        # float64, a softmax over 5 keys then sums of 5 products: far inside 1e-12
        torch.testing.assert_close(after(x, cache, b), before(x, cache, b), rtol=1e-12, atol=1e-12)
    with pytest.raises(AssertionError):
        after(x, cache, bias[..., :3])  # the kept assert still rejects a bias of the wrong width
    with pytest.raises(AssertionError):
        before(x, cache, bias[..., :3])


def test_assert_reading_the_scores_values_is_not_fixed():
    code = CACHED_DECODE.replace("assert attn_bias.shape[-1] == sim.shape[-1]",
                                 "assert torch.isfinite(sim).all()")
    result = fix_text(code, "model.py", select_rules(RULES, ["ADP010"]))
    assert not result.applied


# -- getattr(F, name): an activation function chosen by a string ---------------------------------

GETATTR_ACTIVATIONS = textwrap.dedent('''
    import torch
    from torch import nn
    import torch.nn.functional as F


    class FFN(nn.Module):
        def __init__(self, d, hidden, act_fn="gelu"):
            super().__init__()
            self.fc1 = nn.Linear(d, hidden)
            self.act_fn = getattr(F, act_fn)
            self.fc2 = nn.Linear(hidden, d)

        def forward(self, x):
            return self.fc2(self.act_fn(self.fc1(x)))


    class GatedFFN(nn.Module):
        def __init__(self, d, hidden, act="silu"):
            super().__init__()
            self.w1 = nn.Linear(d, hidden, bias=False)
            self.w3 = nn.Linear(d, hidden, bias=False)
            self.w2 = nn.Linear(hidden, d, bias=False)
            self.act = getattr(F, act)

        def forward(self, x):
            return self.w2(self.act(self.w1(x)) * self.w3(x))
''')


def test_getattr_of_functional_by_a_parameter_may_be_gelu_or_silu():
    # the string is a constructor argument: any torch.nn.functional activation at run time
    assert _covered(GETATTR_ACTIVATIONS, "return self.fc2(self.act_fn(self.fc1(x)))", "ADP006")
    assert _covered(GETATTR_ACTIVATIONS, "return self.w2(self.act(self.w1(x)) * self.w3(x))", "ADP013")


def test_getattr_of_functional_is_reported_but_not_fixed():
    # a function held as a value is no layer module for the kernel (as `self.act = F.gelu`)
    result = fix_text(GETATTR_ACTIVATIONS, "model.py", select_rules(RULES, ["ADP006", "ADP013"]))
    assert not result.applied and result.text == GETATTR_ACTIVATIONS
    assert sorted(f.rule for f, _ in result.skipped) == ["ADP006", "ADP006", "ADP013"]
    assert all("function held as a value" in why for _, why in result.skipped)


def test_getattr_of_functional_with_a_fixed_other_name_is_left_alone():
    code = GETATTR_ACTIVATIONS.replace("getattr(F, act_fn)", 'getattr(F, "relu")').replace(
        "getattr(F, act)", 'getattr(F, "sigmoid")')
    assert not _findings(code, "ADP006")
    assert not _findings(code, "ADP013")


def test_getattr_of_another_object_is_not_an_activation():
    code = GETATTR_ACTIVATIONS.replace("getattr(F, act_fn)", "getattr(self, act_fn)").replace(
        "getattr(F, act)", "getattr(self, act)")
    assert not _findings(code, "ADP006")
    assert not _findings(code, "ADP013")


# -- a slice of a ModuleList in a zip: its elements are the list's -------------------------------

SLICED_LISTS = textwrap.dedent('''
    import torch
    from torch import nn
    import torch.nn.functional as F


    class GraphMLP(nn.Module):
        def __init__(self, dims):
            super().__init__()
            self.lins = nn.ModuleList()
            self.norms = nn.ModuleList()
            for i in range(len(dims) - 1):
                self.lins.append(nn.Linear(dims[i], dims[i + 1]))
                self.norms.append(nn.BatchNorm1d(dims[i + 1]))

        def forward(self, x):
            for lin, norm in zip(self.lins[:-1], self.norms):
                x = F.relu(norm(lin(x)))
            return self.lins[-1](x)
''')


def test_linear_then_batchnorm_over_a_sliced_module_list_is_found_and_fixed():
    assert _covered(SLICED_LISTS, "x = F.relu(norm(lin(x)))", "ADP008")
    fixed = fix_text(SLICED_LISTS, "model.py", select_rules(RULES, ["ADP008"])).text
    assert "x = F.relu(linear_bn(x, lin, norm))" in fixed
    assert fix_text(fixed, "model.py", select_rules(RULES, ["ADP008"])).text == fixed


def test_batchnorm_before_the_sliced_lists_linear_is_not_reported():
    code = SLICED_LISTS.replace("x = F.relu(norm(lin(x)))", "x = F.relu(lin(norm(x)))").replace(
        "nn.BatchNorm1d(dims[i + 1])", "nn.BatchNorm1d(dims[i])")
    assert not _findings(code, "ADP008")


def test_a_sliced_list_of_convolutions_is_not_a_linear():
    code = SLICED_LISTS.replace("nn.Linear(dims[i], dims[i + 1])", "nn.Conv1d(dims[i], dims[i + 1], 1)")
    assert not _findings(code, "ADP008")


def test_getattr_of_functional_called_in_place_is_reported_but_not_fixed():
    code = textwrap.dedent('''
        import torch
        from torch import nn
        import torch.nn.functional as F


        class FFN(nn.Module):
            def __init__(self, d, hidden, activation="gelu"):
                super().__init__()
                self.fc1 = nn.Linear(d, hidden)
                self.fc2 = nn.Linear(hidden, d)
                self.activation = activation

            def forward(self, x):
                return self.fc2(getattr(F, self.activation)(self.fc1(x)))
    ''')
    assert _covered(code, "getattr(F, self.activation)(self.fc1(x))", "ADP006")
    result = fix_text(code, "model.py", select_rules(RULES, ["ADP006"]))
    assert not result.applied and "function held as a value" in result.skipped[0][1]
    fixed_name = code.replace("getattr(F, self.activation)", 'getattr(F, "relu")')
    assert not _findings(fixed_name, "ADP006")


# -- rotate-half through unflatten: the last axis split in two, the halves unbound ---------------

ROPE_UNFLATTEN = textwrap.dedent('''
    import torch
    from torch import nn


    def rotate_half(x):
        x = x.unflatten(-1, (2, -1))
        x1, x2 = x.unbind(dim=-2)
        return torch.cat((-x2, x1), dim=-1)


    def apply_rope(q, k, cos, sin):
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        return q, k


    class Rotary(nn.Module):
        def __init__(self, dim, base=10000):
            super().__init__()
            self.register_buffer("inv_freq", 1.0 / (base ** (torch.arange(0, dim, 2).float() / dim)))

        def forward(self, q, k):
            t = torch.arange(q.shape[-2], device=q.device).type_as(self.inv_freq)
            emb = torch.cat((torch.outer(t, self.inv_freq),) * 2, dim=-1)
            return apply_rope(q, k, emb.cos(), emb.sin())
''')


def test_rotate_half_through_unflatten_is_found():
    assert _covered(ROPE_UNFLATTEN, "q = q * cos + rotate_half(q) * sin", "ADP014")


def test_rotate_half_through_unflatten_with_the_half_width_written_out_is_found():
    code = ROPE_UNFLATTEN.replace("x.unflatten(-1, (2, -1))", "x.unflatten(-1, (2, x.shape[-1] // 2))")
    assert _covered(code, "q = q * cos + rotate_half(q) * sin", "ADP014")
    inline = ROPE_UNFLATTEN.replace("    x = x.unflatten(-1, (2, -1))\n    x1, x2 = x.unbind(dim=-2)\n",
                                    "    x1, x2 = x.unflatten(-1, (2, -1)).unbind(-2)\n")
    assert "x.unflatten(-1, (2, -1)).unbind(-2)" in inline
    assert _covered(inline, "q = q * cos + rotate_half(q) * sin", "ADP014")


def test_unflatten_into_pairs_is_an_interleaved_rotation_not_a_rotate_half():
    # (-1, 2) then unbind(-1): the even and odd entries (rotate_every_two), not the two halves
    code = ROPE_UNFLATTEN.replace("x.unflatten(-1, (2, -1))", "x.unflatten(-1, (-1, 2))").replace(
        "x.unbind(dim=-2)", "x.unbind(dim=-1)")
    assert not _findings(code, "ADP014")


def test_unflatten_of_another_axis_or_count_is_not_a_rotate_half():
    assert not _findings(ROPE_UNFLATTEN.replace("x.unflatten(-1, (2, -1))", "x.unflatten(1, (2, -1))"), "ADP014")
    assert not _findings(ROPE_UNFLATTEN.replace("x.unflatten(-1, (2, -1))", "x.unflatten(-1, (4, -1))"), "ADP014")
    swapped = ROPE_UNFLATTEN.replace("x1, x2 = x.unbind(dim=-2)", "x2, x1 = x.unbind(dim=-2)")
    assert not _findings(swapped, "ADP014")


# -- RMSNorm with the fp32 upcast written twice --------------------------------------------------

RMS_TWO_CASTS = textwrap.dedent('''
    import torch
    from torch import nn


    class RMSNorm(nn.Module):
        def __init__(self, d, eps=1e-6):
            super().__init__()
            self.eps = eps
            self.g = nn.Parameter(torch.ones(d))

        def forward(self, x):
            ms = x.float().square().mean(dim=-1, keepdim=True)
            return (x.float() * torch.rsqrt(ms + self.eps)).type_as(x) * self.g
''')


def test_rms_norm_with_the_upcast_written_twice_is_fixed(module_from_file):
    torch = pytest.importorskip("torch")
    assert _covered(RMS_TWO_CASTS, "return (x.float() * torch.rsqrt(ms + self.eps))", "ADP011")
    result = fix_text(RMS_TWO_CASTS, "model.py", select_rules(RULES, ["ADP011"]))
    assert [f.rule for f in result.applied] == ["ADP011"], result.skipped
    fixed = result.text
    assert "rms_norm(x.to(torch.float32), x.shape[-1:], eps=self.eps)" in fixed
    assert fix_text(fixed, "model.py", select_rules(RULES, ["ADP011"])).text == fixed
    before = module_from_file(RMS_TWO_CASTS, "rms2_before").RMSNorm(16)
    after = module_from_file(fixed, "rms2_after").RMSNorm(16)
    with torch.no_grad():
        before.g.copy_(torch.randn(16))
    after.load_state_dict(before.state_dict(), strict=True)
    torch.manual_seed(0)
    x = torch.randn(3, 5, 16)
    # float32: a mean of 16 squares and one rsqrt, a few ulps (eps 1.2e-7) apart at most
    torch.testing.assert_close(after(x), before(x), rtol=1e-5, atol=1e-6)
    half = x.to(torch.bfloat16)
    got, expected = after(half), before(half)
    # both normalise in float32, round once to bfloat16 (type_as) and scale by the float32 weight
    assert got.dtype == expected.dtype == torch.float32
    # the rounding to bfloat16 (8 bits of mantissa) may differ by 1 ulp: 2**-7 relative
    torch.testing.assert_close(got, expected, rtol=2 ** -7, atol=1e-6)


def test_two_casts_of_different_values_are_not_an_rms_norm():
    code = RMS_TWO_CASTS.replace("def forward(self, x):", "def forward(self, x, y):").replace(
        "ms = x.float().square()", "ms = y.float().square()")
    assert not _findings(code, "ADP011")


def test_a_value_changed_between_the_two_casts_is_not_an_rms_norm():
    code = RMS_TWO_CASTS.replace(
        "        return (x.float()", "        x = x * 2\n        return (x.float()")
    assert "x = x * 2" in code
    assert not _findings(code, "ADP011")


def test_a_second_cast_to_another_dtype_is_not_this_rms_norm():
    code = RMS_TWO_CASTS.replace("return (x.float() *", "return (x.half() *")
    assert not _findings(code, "ADP011")
