"""Forms from hf36's blind batch of transformers 5.23.0 model files (phi4_multimodal's audio
projection: a local name bound to one of two Linear attributes by a conditional expression,
called, then ``F.gelu``).  Our own fixtures, each with near-misses."""

from __future__ import annotations

import textwrap

from corpus_forms import finding_at, found

# ---------- ADP006: a local name bound to one of several alike layers by a conditional expression

CHOSEN = textwrap.dedent("""\
    import torch
    from torch import nn


    class Projection(nn.Module):
        def __init__(self, d):
            super().__init__()
            self.up_speech = nn.Linear(d, 4 * d)
            self.up_vision = OTHER
            self.up_text = nn.Linear(d, 4 * d)
            self.down = nn.Linear(4 * d, d)

        def forward(self, x, mode="speech"):
            up = CHOICE
            h = up(x)
            h = nn.functional.gelu(h)  # pair
            return self.down(h)
""")

TWO = "self.up_speech if mode == 'speech' else self.up_vision"
THREE = "(self.up_speech if mode == 'speech' else self.up_vision if mode == 'vision' else self.up_text)"


def _chosen(other: str, choice: str) -> str:
    return CHOSEN.replace("OTHER", other).replace("CHOICE", choice)


def test_layer_chosen_by_a_conditional_expression_between_alike_linears():
    for choice in (TWO, THREE):
        code = _chosen("nn.Linear(d, 4 * d)", choice)
        assert finding_at(code, "ADP006", "# pair") is not None, choice


def test_layer_chosen_between_unlike_layers_is_not_read():
    # one arm a convolution, a GELU-free identity, or a layer the class does not bind
    for other in ("nn.Conv1d(d, 4 * d, 1)", "nn.Identity()"):
        for choice in (TWO, THREE):
            assert not found(_chosen(other, choice), "ADP006"), (other, choice)
    code = _chosen("nn.Linear(d, 4 * d)", "self.up_speech if mode == 'speech' else self.proj_elsewhere")
    assert not found(code, "ADP006")


def test_chosen_linear_then_fixed_relu_is_not_bias_gelu():
    code = _chosen("nn.Linear(d, 4 * d)", TWO).replace("nn.functional.gelu(h)", "nn.functional.relu(h)")
    assert not found(code, "ADP006")
