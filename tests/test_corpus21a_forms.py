"""Forms from blind batch corpus21a (transformers 4.45.2 files: an expert MLP whose activation
key is a choice of two literals, attention whose products go through a module that only calls
``torch.matmul``): our own fixtures, each with near-misses."""

from __future__ import annotations

import textwrap

from corpus_forms import finding_at, found, rules

# ---------- ADP006: an activation-table key that is a choice of literals

LITERAL_CHOICE = textwrap.dedent("""\
    import torch.nn as nn
    from transformers.activations import ACT2FN


    class Expert(nn.Module):
        def __init__(self, d, hidden, gated):
            super().__init__()
            self.up = nn.Linear(d, hidden)
            self.down = nn.Linear(hidden, d)
            self.act = ACT2FN["silu" if gated else "relu"]

        def forward(self, x):
            h = self.act(self.up(x))
            return self.down(h)
""")


def test_a_table_key_choosing_between_silu_and_relu_is_never_gelu():
    # the key is "silu" or "relu", whatever ``gated`` is: no GELU can follow the Linear
    assert found(LITERAL_CHOICE, "ADP006") == []


def test_a_table_key_choosing_gelu_on_one_branch_may_be_gelu():
    text = LITERAL_CHOICE.replace('"silu" if gated else "relu"', '"relu" if gated else "gelu_new"')
    assert finding_at(text, "ADP006", "h = self.act(self.up(x))") is not None


def test_nested_literal_choices_are_read_through():
    text = LITERAL_CHOICE.replace('"silu" if gated else "relu"', '"silu" if gated else ("relu" if d else "swish")')
    assert found(text, "ADP006") == []
    text = LITERAL_CHOICE.replace('"silu" if gated else "relu"', '"silu" if gated else ("relu" if d else "gelu")')
    assert finding_at(text, "ADP006", "h = self.act(self.up(x))") is not None


def test_a_choice_with_a_computed_branch_may_be_any_activation():
    # one branch is a run-time string: it may name GELU
    text = LITERAL_CHOICE.replace('"silu" if gated else "relu"', '"silu" if gated else self.kind').replace(
        "        super().__init__()\n", "        super().__init__()\n        self.kind = str(hidden)\n")
    assert finding_at(text, "ADP006", "h = self.act(self.up(x))") is not None


# ---------- ADP010: the products through a module that returns torch.matmul of its arguments

WRAPPED_MATMUL = textwrap.dedent("""\
    import math

    import torch
    import torch.nn as nn


    class Product(nn.Module):
        \"\"\"Kept as a module so that a FLOP counter sees each product.\"\"\"

        def forward(self, left, right):
            return torch.matmul(left, right)


    class ChannelAttention(nn.Module):
        def __init__(self, channels, heads, p=0.1):
            super().__init__()
            self.heads = heads
            self.width = channels // heads
            self.q = nn.Linear(channels, channels)
            self.k = nn.Linear(channels, channels)
            self.v = nn.Linear(channels, channels)
            self.drop = nn.Dropout(p)
            self.softmax = nn.Softmax(dim=-1)
            self.scores_of = Product()
            self.mix = Product()

        def forward(self, x, mask):
            b, n, c = x.shape
            q = self.q(x).view(b, n, self.heads, self.width).permute(0, 2, 1, 3)
            k = self.k(x).view(b, n, self.heads, self.width).permute(0, 2, 3, 1)
            v = self.v(x).view(b, n, self.heads, self.width).permute(0, 2, 1, 3)
            scores = self.scores_of(q, k)
            scores = scores / math.sqrt(self.width)
            scores = scores + mask
            probs = self.softmax(scores)
            probs = self.drop(probs)
            out = self.mix(probs, v)
            return out.permute(0, 2, 1, 3).reshape(b, n, c)
""")


def test_attention_through_a_matmul_module_is_found():
    assert finding_at(WRAPPED_MATMUL, "ADP010", "probs = self.softmax(scores)") is not None


def test_attention_through_a_matmul_module_is_fixed_and_computes_the_same():
    import torch

    from adopter.synth import fix_text

    result = fix_text(WRAPPED_MATMUL, "model.py", rules("ADP010"))
    assert "scaled_dot_product_attention" in result.text, result.skipped
    before, after = {}, {}
    exec(compile(WRAPPED_MATMUL, "before.py", "exec"), before)  # noqa: S102 (our own fixture)
    exec(compile(result.text, "after.py", "exec"), after)  # noqa: S102 (our own fixture)
    torch.manual_seed(0)
    original = before["ChannelAttention"](16, 4).double().eval()
    patched = after["ChannelAttention"](16, 4).double().eval()
    patched.load_state_dict(original.state_dict(), strict=True)
    torch.manual_seed(1)
    x = torch.randn(2, 6, 16, dtype=torch.float64)
    mask = torch.zeros(2, 1, 1, 6, dtype=torch.float64)
    mask[1, ..., 4:] = -1e9
    with torch.no_grad():
        # float64 softmax over 6 keys of 4-wide heads: rounding only
        torch.testing.assert_close(patched(x, mask), original(x, mask), rtol=1e-12, atol=1e-12)


def test_a_module_that_does_more_than_the_product_is_not_read_as_one():
    text = WRAPPED_MATMUL.replace("return torch.matmul(left, right)", "return torch.matmul(left, right) * 2.0")
    assert text != WRAPPED_MATMUL
    assert found(text, "ADP010") == []


def test_a_module_that_swaps_its_arguments_is_not_read_as_their_product():
    text = WRAPPED_MATMUL.replace("return torch.matmul(left, right)", "return torch.matmul(right, left)")
    assert text != WRAPPED_MATMUL
    assert found(text, "ADP010") == []


def test_a_module_with_its_own_state_in_the_product_is_not_read_as_one():
    text = WRAPPED_MATMUL.replace("return torch.matmul(left, right)", "return torch.matmul(left, self.weight)")
    assert text != WRAPPED_MATMUL
    assert found(text, "ADP010") == []


# ---------- ADP006: a same-file table whose entries are transformers' module-level activations

ACTIVATION_VALUES = textwrap.dedent("""\
    import torch.nn as nn
    from transformers.activations import gelu_new, silu

    CHOICES = {"relu": nn.ReLU(), "silu": silu, "gelu": gelu_new}


    class Feed(nn.Module):
        def __init__(self, d, hidden, kind):
            super().__init__()
            self.up = nn.Linear(d, hidden)
            self.down = nn.Linear(hidden, d)
            self.act = CHOICES[kind]

        def forward(self, x):
            h = self.act(self.up(x))
            return self.down(h)
""")


def test_a_table_entry_holding_transformers_gelu_new_may_be_gelu():
    # gelu_new is ACT2FN["gelu_new"] (transformers builds it with get_activation): a GELU
    assert finding_at(ACTIVATION_VALUES, "ADP006", "h = self.act(self.up(x))") is not None


def test_a_table_of_silu_and_relu_entries_is_never_gelu():
    text = ACTIVATION_VALUES.replace('"gelu": gelu_new', '"swish": silu')
    assert found(text, "ADP006") == []


def test_a_name_from_another_packages_activations_is_not_read_as_transformers():
    text = ACTIVATION_VALUES.replace("from transformers.activations import", "from mylib.activations import")
    assert found(text, "ADP006") == []
