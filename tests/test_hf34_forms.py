"""Forms from hf34's blind batch of transformers 5.23.0 model files (slanet's structure head:
an activation built as ``nn.Identity() if activation is None else ACT2CLS[activation]()`` from
a constructor parameter that defaults to None and that no call of the file sets).  Our own
fixtures, each with near-misses."""

from __future__ import annotations

import textwrap

from corpus_forms import finding_at, found

# ---------- ADP006: an activation parameter defaulting to None, never set, is the identity

MLP = textwrap.dedent("""\
    import torch
    from torch import nn
    from transformers.activations import ACT2CLS


    class HeadMLP(nn.Module):
        def __init__(self, hidden_size, out_channels, activation=None):
            super().__init__()
            self.fc1 = nn.Linear(hidden_size, hidden_size)
            self.fc2 = nn.Linear(hidden_size, out_channels)
            self.act_fn = CHOICE

        def forward(self, hidden_states):
            hidden_states = self.fc1(hidden_states)
            hidden_states = self.fc2(hidden_states)
            hidden_states = self.act_fn(hidden_states)  # act
            return hidden_states


    class Head(nn.Module):
        def __init__(self, config):
            super().__init__()
            self.generator = BUILD

        def forward(self, x):
            return self.generator(x)
""")

CHOICES = (
    "nn.Identity() if activation is None else ACT2CLS[activation]()",
    "ACT2CLS[activation]() if activation is not None else nn.Identity()",
)


def _mlp(choice: str, build: str) -> str:
    return MLP.replace("CHOICE", choice).replace("BUILD", build)


def test_activation_parameter_left_at_none_is_the_identity():
    for choice in CHOICES:
        for build in (
            "HeadMLP(config.hidden_size, config.out_channels)",
            "HeadMLP(config.hidden_size, config.out_channels, None)",
            "HeadMLP(config.hidden_size, config.out_channels, activation=None)",
        ):
            assert found(_mlp(choice, build), "ADP006") == [], (choice, build)


def test_activation_parameter_set_somewhere_may_be_gelu():
    for choice in CHOICES:
        for build in (
            # a call passes a run-time key
            "HeadMLP(config.hidden_size, config.out_channels, activation=config.hidden_act)",
            # a call passes GELU by position
            'HeadMLP(config.hidden_size, config.out_channels, "gelu")',
            # the keywords of a dict: any key may be passed
            "HeadMLP(config.hidden_size, config.out_channels, **config.head_kwargs)",
        ):
            assert finding_at(_mlp(choice, build), "ADP006", "# act") is not None, (choice, build)


def test_activation_parameter_with_another_default_or_handed_on_may_be_gelu():
    build = "HeadMLP(config.hidden_size, config.out_channels)"
    for choice in CHOICES:
        # the default is a key, not None
        code = _mlp(choice, build).replace("activation=None):", 'activation="gelu"):')
        assert finding_at(code, "ADP006", "# act") is not None, choice
        # the class is handed on as a value: built elsewhere with any key
        code = _mlp(choice, build) + "\n\nHEADS = {'mlp': HeadMLP}\n"
        assert finding_at(code, "ADP006", "# act") is not None, choice
        # the body rebinds the parameter before the choice
        code = _mlp(choice, build).replace(
            "        super().__init__()\n        self.fc1",
            "        super().__init__()\n        activation = activation or 'gelu'\n        self.fc1",
        )
        assert "activation = activation or" in code
        assert finding_at(code, "ADP006", "# act") is not None, choice


def test_activation_parameter_of_a_class_the_file_never_builds_may_be_gelu():
    # no call of the class in the file: it is built elsewhere, with any activation
    for choice in CHOICES:
        code = _mlp(choice, "nn.Identity()")
        assert "HeadMLP(" not in code.split("class Head(")[1]
        assert finding_at(code, "ADP006", "# act") is not None, choice
