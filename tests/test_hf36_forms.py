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


# ---------- ADP013: one Linear of width 2 * n split at index n by tensor_split: its halves

PACKED = textwrap.dedent("""\
    import torch
    from torch import nn


    class FeedForward(nn.Module):
        def __init__(self, d, e):
            super().__init__()
            self.e = e
            self.proj_up_gate_z = nn.Linear(d, WIDTH, bias=False)
            self.proj_down = nn.Linear(self.e, d)
            self.act_fn = ACT

        def forward(self, x):
            x = self.proj_up_gate_z(x)
            gate, z = SPLIT
            x = self.act_fn(gate) * z  # product
            return self.proj_down(x)
""")


def _packed(width="2 * self.e", split="torch.tensor_split(x, (self.e,), dim=-1)", act="nn.SiLU()") -> str:
    return PACKED.replace("WIDTH", width).replace("SPLIT", split).replace("ACT", act)


def test_tensor_split_at_half_the_linear_width_is_the_halves():
    for width, split in (
        ("2 * self.e", "torch.tensor_split(x, (self.e,), dim=-1)"),
        ("self.e * 2", "torch.tensor_split(x, [self.e], -1)"),
        ("2 * self.e", "x.tensor_split((self.e,), dim=-1)"),
        ("out_features=2 * self.e", "x.tensor_split([self.e], -1)"),
    ):
        code = _packed(width, split)
        assert finding_at(code, "ADP013", "# product") is not None, (width, split)


def test_tensor_split_that_is_not_the_halves_is_not_read():
    for width, split in (
        ("3 * self.e", "torch.tensor_split(x, (self.e,), dim=-1)"),  # a third and two thirds
        ("2 * self.e", "torch.tensor_split(x, (self.e + 1,), dim=-1)"),  # another index
        ("2 * self.e", "torch.tensor_split(x, (self.e,), dim=1)"),  # another axis
        ("2 * self.e", "torch.tensor_split(x, (self.e, 2 * self.e), dim=-1)[:2]"),  # two indices
    ):
        assert not found(_packed(width, split), "ADP013"), (width, split)


def test_tensor_split_halves_under_a_fixed_gelu_are_not_swiglu():
    assert not found(_packed(act="nn.GELU()"), "ADP013")


# ---------- ADP015: the logits stored in an output record of a class of the file, any spelling

RECORD = textwrap.dedent("""\
    from dataclasses import dataclass

    import torch
    from torch import nn
    from transformers.utils import ModelOutput


    @dataclass
    class xLMOutput(ModelOutput):
        loss: torch.Tensor | None = None
        logits: torch.Tensor | None = None


    class xLMForCausalLM(nn.Module):
        def __init__(self, config):
            super().__init__()
            self.config = config
            self.backbone = Backbone(config)
            self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)

        def forward(self, input_ids, labels=None, **kwargs):
            hidden_states = self.backbone(input_ids, **kwargs)[0]
            logits = self.lm_head(hidden_states).float()  # head
            loss = None
            if labels is not None:
                loss = self.loss_function(logits=logits, labels=labels, vocab_size=self.config.vocab_size, **kwargs)
            return RETURN
""")


def test_logits_stored_in_a_record_class_of_the_file_keep_the_head():
    code = RECORD.replace("RETURN", "xLMOutput(loss=loss, logits=logits)")
    assert finding_at(code, "ADP015", "# head") is not None


def test_logits_computed_on_by_a_lower_case_function_are_not_stored():
    # a callable the file does not define (a function may compute with the logits): not a record
    code = RECORD.replace("RETURN", "summarize(loss=loss, logits=logits)")
    assert not found(code, "ADP015")
