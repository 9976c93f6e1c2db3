"""Same-file wrappers around one operation (misses39): a dropout module, a softmax helper or
module, a pass-through helper.  Each is read by what its body computes, never its name; the
fixtures are ours, each with near-misses.

- A dropout module whose forward returns ``F.dropout(x, p=self.<rate>, training=self.training)``
  on the branch this construction's arguments (or the parameters' defaults) select (mega's
  ``MegaDropout(p, is_featurewise=False)``): an ``nn.Dropout`` (formulas.dropout_wrapper).  The
  SDPA fix reads the rate from the module's own attribute; a kernel taking nn.Dropout (ADP005)
  does not take it.
- A softmax helper whose branch test calls code given none of the function's values (esmfold's
  ``if d is torch.bfloat16 and not is_deepspeed_initialized():``): both branches compute the
  same softmax, so the helper is the softmax (formulas.softmax_formula).
- A helper inlined with the call's literal arguments and its parameters' literal defaults
  (``fp32_softmax(s, -1)``, ``masked_softmax(s, mask)`` with ``dim=-1``): its steps read as if
  written in the caller.
- A softmax module over the axis it is built with, maybe in float32 and cast back
  (formulas.softmax_module): an ``nn.Softmax(dim=...)``.
- A pass-through helper (StripedHyena's ``grab_first_if_tuple``: ``x[0]`` only behind a test
  that ``x`` is a tuple) applied to a tensor: the tensor itself (formulas.passes_tensor_through);
  ``z1, z2 = f(z1), f(z2)`` is two assignments in turn.
"""

from __future__ import annotations

import textwrap

import pytest
from corpus_forms import assert_reported_not_fixed, covered, dropout_add_norm, edit, finding_at, float64_pair, rules

from adopter.synth import fix_text


# ---------------------------------------------------------------------------- dropout modules

DROPOUT_MODULE = textwrap.dedent("""\
    import torch
    import torch.nn.functional as F
    from torch import nn


    class UnifiedDropout(nn.Module):
        def __init__(self, rate, feature_wise=False):
            super().__init__()
            self.rate = rate
            self.feature_wise = feature_wise

        def forward(self, x, batch_first: bool = False):
            if self.feature_wise:
                if batch_first:
                    return F.dropout2d(x.transpose(-1, -2), p=self.rate, training=self.training).transpose(-1, -2)
                return F.dropout2d(x.permute(1, 2, 0), p=self.rate, training=self.training).permute(2, 0, 1)
            else:
                return F.dropout(x, p=self.rate, training=self.training)


    class Attention(nn.Module):
        def __init__(self, dim=16, heads=2, p=0.1):
            super().__init__()
            self.heads = heads
            self.qkv = nn.Linear(dim, dim * 3)
            self.proj = nn.Linear(dim, dim)
            self.attn_drop = UnifiedDropout(p, feature_wise=False)

        def forward(self, x):
            b, n, c = x.shape
            q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
            attn = (q @ k.transpose(-2, -1)) * (c // self.heads) ** -0.5
            attn = attn.softmax(dim=-1)
            attn = self.attn_drop(attn)
            x = (attn @ v).transpose(1, 2).reshape(b, n, c)
            return self.proj(x)
""")
SCORES = "attn = (q @ k.transpose(-2, -1))"


def test_dropout_module_on_the_branch_its_construction_selects():
    assert covered(DROPOUT_MODULE, SCORES, "ADP010")
    # the flag's default selects the dropout branch too
    assert covered(edit(DROPOUT_MODULE, "UnifiedDropout(p, feature_wise=False)", "UnifiedDropout(p)"),
                   SCORES, "ADP010")
    # the flag by position, and a test written the other way round
    text = edit(DROPOUT_MODULE, "UnifiedDropout(p, feature_wise=False)", "UnifiedDropout(p, False)")
    text = edit(text, "if self.feature_wise:", "if not self.feature_wise:\n"
                "            return F.dropout(x, p=self.rate, training=self.training)\n"
                "        if True:")
    assert covered(text, SCORES, "ADP010")


def test_plain_dropout_module():
    text = edit(DROPOUT_MODULE, "self.attn_drop = UnifiedDropout(p, feature_wise=False)", "self.attn_drop = Drop(p)")
    text = edit(text, "class Attention(", textwrap.dedent("""\
        class Drop(nn.Module):
            def __init__(self, p):
                super().__init__()
                self.p = p

            def forward(self, x):
                return F.dropout(x, p=self.p, training=self.training)


        class Attention("""))
    assert covered(text, SCORES, "ADP010")


def test_dropout_module_fix_reads_the_modules_own_rate():
    result = fix_text(DROPOUT_MODULE, "model.py", rules("ADP010"))
    assert result.applied
    assert "dropout_p=self.attn_drop.rate if self.training else 0.0" in result.text
    import torch

    for training, p in ((False, 0.1), (True, 0.0)):
        a, b = float64_pair(DROPOUT_MODULE, result.text, "Attention", p=p)
        a.train(training)
        b.train(training)
        x = torch.randn(2, 5, 16, dtype=torch.float64)
        xa, xb = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
        out_a, out_b = a(xa), b(xb)
        torch.testing.assert_close(out_b, out_a)
        out_a.sum().backward()
        out_b.sum().backward()
        torch.testing.assert_close(xb.grad, xa.grad)


# modules that are not a dropout of their input where this file builds them
NOT_A_DROPOUT = {
    "feature-wise branch selected": ("UnifiedDropout(p, feature_wise=False)", "UnifiedDropout(p, feature_wise=True)"),
    "flag chosen at run time": ("UnifiedDropout(p, feature_wise=False)", "UnifiedDropout(p, feature_wise=p > 0.5)"),
    "also scales": ("return F.dropout(x, p=self.rate, training=self.training)",
                    "return F.dropout(x, p=self.rate, training=self.training) * 2.0"),
    "drops in eval too": ("return F.dropout(x, p=self.rate, training=self.training)",
                          "return F.dropout(x, p=self.rate)"),
    "rate set again later": ("\n\nclass Attention(", "\n    def set_rate(self, r):\n        self.rate = r\n\n\nclass Attention("),
    "flag set again later": ("\n\nclass Attention(",
                             "\n    def set_flag(self, f):\n        self.feature_wise = f\n\n\nclass Attention("),
}


@pytest.mark.parametrize("why", sorted(NOT_A_DROPOUT))
def test_modules_that_are_not_a_dropout_here(why):
    old, new = NOT_A_DROPOUT[why]
    assert not covered(edit(DROPOUT_MODULE, old, new), SCORES, "ADP010"), why


DROPOUT_ADD_NORM = textwrap.dedent("""\
    import torch.nn.functional as F
    from torch import nn


    class UnifiedDropout(nn.Module):
        def __init__(self, rate, feature_wise=False):
            super().__init__()
            self.rate = rate
            self.feature_wise = feature_wise

        def forward(self, x):
            if self.feature_wise:
                return F.dropout2d(x, p=self.rate, training=self.training)
            return F.dropout(x, p=self.rate, training=self.training)
""") + dropout_add_norm("UnifiedDropout(p)")


def test_dropout_module_before_a_residual_add_and_layer_norm_is_reported_not_fixed():
    line = "return self.norm(h + residual)"
    assert_reported_not_fixed(DROPOUT_ADD_NORM, "ADP005", line, "nn.Dropout's p")
    feature_wise = edit(DROPOUT_ADD_NORM, "UnifiedDropout(p)", "UnifiedDropout(p, feature_wise=True)")
    assert finding_at(feature_wise, "ADP005", line) is None


# ---------------------------------------------------------------------------- softmax helpers

ENV_SOFTMAX = textwrap.dedent("""\
    import math

    import torch
    from torch import nn


    def accelerator_ready():
        try:
            import deepspeed
        except ImportError:
            return False
        return deepspeed.utils.is_initialized()


    def softmax_keep_dtype(t, dim=-1):
        d = t.dtype
        if d is torch.bfloat16 and not accelerator_ready():
            with torch.autocast("cuda", enabled=False):
                s = torch.nn.functional.softmax(t, dim=dim)
        else:
            s = torch.nn.functional.softmax(t, dim=dim)
        return s


    class PairAttention(nn.Module):
        def __init__(self, c=8, c_hidden=4, heads=2):
            super().__init__()
            self.c_hidden = c_hidden
            self.heads = heads
            self.linear_q = nn.Linear(c, c_hidden * heads, bias=False)
            self.linear_k = nn.Linear(c, c_hidden * heads, bias=False)
            self.linear_v = nn.Linear(c, c_hidden * heads, bias=False)
            self.linear_o = nn.Linear(c_hidden * heads, c, bias=False)

        def forward(self, q_x, kv_x, bias):
            q = self.linear_q(q_x).view(q_x.shape[:-1] + (self.heads, -1)).transpose(-2, -3)
            k = self.linear_k(kv_x).view(kv_x.shape[:-1] + (self.heads, -1)).transpose(-2, -3)
            v = self.linear_v(kv_x).view(kv_x.shape[:-1] + (self.heads, -1)).transpose(-2, -3)
            q = q / math.sqrt(self.c_hidden)
            a = torch.matmul(q, k.transpose(-1, -2))
            a = a + bias
            a = softmax_keep_dtype(a, -1)
            o = torch.matmul(a, v).transpose(-2, -3)
            return self.linear_o(o.reshape(o.shape[:-2] + (-1,)))
""")
ENV_NEEDLE = "a = torch.matmul(q, k.transpose(-1, -2))"


def test_softmax_helper_branching_on_an_environment_query_is_fixed():
    result = fix_text(ENV_SOFTMAX, "model.py", rules("ADP010"))
    assert result.applied and "scaled_dot_product_attention(" in result.text
    import torch

    a, b = float64_pair(ENV_SOFTMAX, result.text, "PairAttention")
    torch.manual_seed(1)
    x = torch.randn(2, 5, 8, dtype=torch.float64)
    y = torch.randn(2, 6, 8, dtype=torch.float64)
    bias = torch.randn(2, 2, 5, 6, dtype=torch.float64)
    torch.testing.assert_close(b(x, y, bias), a(x, y, bias))


def test_softmax_helper_whose_test_is_handed_the_tensor_is_not_fixed():
    # a call given the tensor may act on it: the helper is not read as one softmax (it is
    # inlined, its two softmax paths reported; the fixer declines a match spanning the helper)
    text = edit(ENV_SOFTMAX, "def accelerator_ready():", "def accelerator_ready(t=None):")
    text = edit(text, "and not accelerator_ready():", "and not accelerator_ready(t):")
    assert fix_text(text, "model.py", rules("ADP010")).text == text


HELPERS = textwrap.dedent("""\
    import torch
    import torch.nn.functional as F
    from torch import nn


    def fp32_softmax(x, dim):
        return F.softmax(x.float(), dim=dim).type_as(x)


    def masked_softmax(x, mask, dim=-1):
        x = x.masked_fill(~mask, float("-inf"))
        return F.softmax(x, dim=dim)


    class Attention(nn.Module):
        def __init__(self, dim=16, heads=2, p=0.1):
            super().__init__()
            self.heads = heads
            self.scale = (dim // heads) ** -0.5
            self.qkv = nn.Linear(dim, dim * 3)
            self.proj = nn.Linear(dim, dim)
            self.drop = nn.Dropout(p)

        def forward(self, x, mask):
            b, n, c = x.shape
            q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
            attn = torch.matmul(q * self.scale, k.transpose(-1, -2))
            attn = fp32_softmax(attn, -1)
            attn = self.drop(attn)
            out = torch.matmul(attn, v)
            return self.proj(out.transpose(1, 2).reshape(b, n, c))
""")
HELPER_NEEDLE = "attn = torch.matmul(q * self.scale"


def test_helpers_inlined_with_their_literal_arguments():
    assert covered(HELPERS, HELPER_NEEDLE, "ADP010")
    assert covered(edit(HELPERS, "fp32_softmax(attn, -1)", "fp32_softmax(attn, dim=-1)"), HELPER_NEEDLE, "ADP010")
    # the axis from the parameter's literal default, a mask inside the helper
    assert covered(edit(HELPERS, "fp32_softmax(attn, -1)", "masked_softmax(attn, mask)"), HELPER_NEEDLE, "ADP010")


@pytest.mark.parametrize("call", ["fp32_softmax(attn, 1)", "fp32_softmax(attn, -2)", "masked_softmax(attn, mask, 1)",
                                  "masked_softmax(attn, mask, dim=-2)"])
def test_helpers_over_another_axis_are_no_attention(call):
    assert not covered(edit(HELPERS, "fp32_softmax(attn, -1)", call), HELPER_NEEDLE, "ADP010")


def test_helper_binding_its_axis_again_is_not_read_with_the_literal():
    # the call passes -1, the helper then normalises over axis 1
    text = edit(HELPERS, "    return F.softmax(x.float(), dim=dim).type_as(x)",
                "    dim = 1\n    return F.softmax(x.float(), dim=dim).type_as(x)")
    assert not covered(text, HELPER_NEEDLE, "ADP010")
    assert fix_text(text, "model.py", rules("ADP010")).text == text


def test_helper_that_sharpens_the_probabilities_is_no_attention():
    text = edit(HELPERS, "return F.softmax(x.float(), dim=dim).type_as(x)",
                "return F.softmax(x.float(), dim=dim).pow(2).type_as(x)")
    assert not covered(text, HELPER_NEEDLE, "ADP010")


# ---------------------------------------------------------------------------- softmax modules

SOFTMAX_MODULE = textwrap.dedent("""\
    import torch
    import torch.nn.functional as F
    from torch import nn


    class FP32Softmax(nn.Module):
        def __init__(self, dim=-1):
            super().__init__()
            self.dim = dim

        def forward(self, x):
            return F.softmax(x.float(), dim=self.dim).type_as(x)


    class Attention(nn.Module):
        def __init__(self, dim=16, heads=2, p=0.1):
            super().__init__()
            self.heads = heads
            self.scale = (dim // heads) ** -0.5
            self.qkv = nn.Linear(dim, dim * 3)
            self.proj = nn.Linear(dim, dim)
            self.drop = nn.Dropout(p)
            self.softmax = FP32Softmax(dim=-1)

        def forward(self, x):
            b, n, c = x.shape
            q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
            attn = torch.matmul(q * self.scale, k.transpose(-1, -2))
            attn = self.softmax(attn)
            attn = self.drop(attn)
            out = torch.matmul(attn, v)
            return self.proj(out.transpose(1, 2).reshape(b, n, c))
""")


def test_softmax_module_over_the_last_axis():
    assert covered(SOFTMAX_MODULE, HELPER_NEEDLE, "ADP010")
    assert covered(edit(SOFTMAX_MODULE, "FP32Softmax(dim=-1)", "FP32Softmax()"), HELPER_NEEDLE, "ADP010")
    plain = edit(SOFTMAX_MODULE, "F.softmax(x.float(), dim=self.dim).type_as(x)", "x.softmax(self.dim)")
    assert covered(plain, HELPER_NEEDLE, "ADP010")


def test_softmax_module_fix_computes_the_same():
    result = fix_text(SOFTMAX_MODULE, "model.py", rules("ADP010"))
    assert result.applied and "scaled_dot_product_attention(" in result.text
    import torch

    a, b = float64_pair(SOFTMAX_MODULE, result.text, "Attention")
    a.eval()
    b.eval()
    x = torch.randn(2, 5, 16, dtype=torch.float64)
    torch.testing.assert_close(b(x), a(x))


NOT_A_SOFTMAX_MODULE = {
    "over the query axis": ("FP32Softmax(dim=-1)", "FP32Softmax(dim=-2)"),
    "axis at run time": ("FP32Softmax(dim=-1)", "FP32Softmax(dim=heads - 3)"),
    "with a temperature": ("F.softmax(x.float(), dim=self.dim)", "F.softmax(x.float() / 0.5, dim=self.dim)"),
    "sharpened": ("F.softmax(x.float(), dim=self.dim).type_as(x)", "(F.softmax(x.float(), dim=self.dim) ** 2).type_as(x)"),
    "upcast never cast back": ("F.softmax(x.float(), dim=self.dim).type_as(x)", "F.softmax(x.float(), dim=self.dim)"),
    "a second input": ("def forward(self, x):", "def forward(self, x, y=None):"),
}


@pytest.mark.parametrize("why", sorted(NOT_A_SOFTMAX_MODULE))
def test_modules_that_are_not_a_softmax_over_the_keys(why):
    old, new = NOT_A_SOFTMAX_MODULE[why]
    assert not covered(edit(SOFTMAX_MODULE, old, new), HELPER_NEEDLE, "ADP010"), why


# ---------------------------------------------------------------------------- pass-throughs

GATED_MLP = textwrap.dedent("""\
    import torch.nn.functional as F
    from torch import nn


    def first_if_tuple(x):
        if x.__class__.__name__ == "tuple":
            return x[0]
        else:
            return x


    class ParallelGatedMLP(nn.Module):
        def __init__(self, d=16, inner=32):
            super().__init__()
            self.act = F.gelu
            self.l1 = nn.Linear(d, inner, bias=False)
            self.l2 = nn.Linear(d, inner, bias=False)
            self.l3 = nn.Linear(inner, d, bias=False)

        def forward(self, z):
            z1, z2 = self.l1(z), self.l2(z)
            z1, z2 = first_if_tuple(z1), first_if_tuple(z2)
            y = self.l3(self.act(z1) * z2)
            return first_if_tuple(y)
""")
GATE = "y = self.l3(self.act(z1) * z2)"


def test_pass_through_of_a_linears_output():
    assert covered(GATED_MLP, GATE, "ADP006")
    silu = edit(GATED_MLP, "self.act = F.gelu", "self.act = F.silu")
    assert covered(silu, GATE, "ADP013")
    # spelled as a conditional expression, or one name at a time
    text = edit(GATED_MLP, """    if x.__class__.__name__ == "tuple":
        return x[0]
    else:
        return x
""", "    return x[0] if isinstance(x, (tuple, list)) else x\n")
    assert covered(text, GATE, "ADP006")
    text = edit(GATED_MLP, "z1, z2 = first_if_tuple(z1), first_if_tuple(z2)",
                "z1 = first_if_tuple(z1)\n        z2 = first_if_tuple(z2)")
    assert covered(text, GATE, "ADP006")


NOT_A_PASS_THROUGH = {
    "indexes a tensor": ('if x.__class__.__name__ == "tuple":', "if x.dim() > 2:"),
    "tests another value": ("def first_if_tuple(x):\n    if x.__class__.__name__ == \"tuple\":",
                            "def first_if_tuple(x, y=None):\n    if y.__class__.__name__ == \"tuple\":"),
    "returns something else for a tensor": ("    else:\n        return x\n", "    else:\n        return x * 2\n"),
    "tests for a tensor": ('if x.__class__.__name__ == "tuple":', 'if x.__class__.__name__ == "Tensor":'),
}


@pytest.mark.parametrize("why", sorted(NOT_A_PASS_THROUGH))
def test_helpers_that_do_not_pass_a_tensor_through(why):
    old, new = NOT_A_PASS_THROUGH[why]
    assert not covered(edit(GATED_MLP, old, new), GATE, "ADP006"), why


def test_pass_through_of_a_module_that_may_return_a_tuple_is_not_read():
    # an LSTM returns (output, state): the helper takes the output, no tensor passed through
    text = edit(GATED_MLP, "z1, z2 = self.l1(z), self.l2(z)", "z1, z2 = self.rnn(z), self.l2(z)")
    text = edit(text, "self.l3 = nn.Linear(inner, d, bias=False)",
                "self.l3 = nn.Linear(inner, d, bias=False)\n        self.rnn = nn.LSTM(d, inner)")
    assert not covered(text, GATE, "ADP006")


# ---------------------------------------------------------------------------- a method picked in __init__

PICKED = textwrap.dedent("""\
    import torch
    import torch.nn.functional as F
    from torch import nn


    class Attention(nn.Module):
        def __init__(self, dim=16, heads=2, p=0.1, kind="softmax"):
            super().__init__()
            self.heads = heads
            self.scale = (dim // heads) ** -0.5
            self.qkv = nn.Linear(dim, dim * 3)
            self.proj = nn.Linear(dim, dim)
            self.drop = nn.Dropout(p)
            self.attention_function = self.softmax_attention if kind == "softmax" else self.relu_attention

        def softmax_attention(self, q, k):
            s = torch.matmul(q * self.scale, k.transpose(-1, -2))
            return F.softmax(s, dim=-1)

        def relu_attention(self, q, k):
            s = torch.matmul(q * self.scale, k.transpose(-1, -2))
            return F.relu(s) ** 2

        def forward(self, x):
            b, n, c = x.shape
            q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
            attn = self.attention_function(q, k)
            attn = self.drop(attn)
            out = torch.matmul(attn, v)
            return self.proj(out.transpose(1, 2).reshape(b, n, c))
""")
PICKED_NEEDLE = "s = torch.matmul(q * self.scale"


def test_method_picked_in_init_is_what_the_call_runs():
    assert covered(PICKED, PICKED_NEEDLE, "ADP010")
    one = edit(PICKED, 'self.softmax_attention if kind == "softmax" else self.relu_attention', "self.softmax_attention")
    assert covered(one, PICKED_NEEDLE, "ADP010")
    # (the match spans the method and the caller: reported, not fixed)
    assert fix_text(PICKED, "model.py", rules("ADP010")).text == PICKED


def test_methods_picked_that_compute_no_attention():
    relu = edit(PICKED, 'self.softmax_attention if kind == "softmax" else self.relu_attention', "self.relu_attention")
    assert not covered(relu, PICKED_NEEDLE, "ADP010")
    # bound again outside __init__: what the call runs is not known
    again = edit(PICKED, "    def forward(self, x):", "    def use_relu(self):\n"
                 "        self.attention_function = self.relu_attention\n\n    def forward(self, x):")
    again = edit(again, 'self.softmax_attention if kind == "softmax" else self.relu_attention', "self.softmax_attention")
    assert not covered(again, "return F.softmax(s, dim=-1)", "ADP010")
