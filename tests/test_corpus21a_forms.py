"""Forms from blind batch corpus21a (transformers 4.45.2 files: an expert MLP whose activation
key is a choice of two literals, attention whose products go through a module that only calls
``torch.matmul``): our own fixtures, each with near-misses."""

from __future__ import annotations

import textwrap

from corpus_forms import finding_at, found

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
