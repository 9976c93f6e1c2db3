"""Forms from hf35's blind batch of transformers 5.23.0 model files (tipsv2_dpt's readout
projection: ``nn.ModuleList([nn.Linear(...), activation])`` run in order by a ``for`` loop, the
activation a constructor parameter without a default that the file's only construction fills
with ``ACT2FN[config.readout_activation]``).  Our own fixtures, each with near-misses."""

from __future__ import annotations

import textwrap

from corpus_forms import finding_at, found

# ---------- ADP006: a parameter named as a member of a layer container is a layer

READOUT = textwrap.dedent("""\
    import torch
    from torch import nn
    from transformers.activations import ACT2FN


    class Readout(nn.Module):
        def __init__(self, in_dim, out_dim, activation):
            super().__init__()
            self.layers = CONTAINER

        def forward(self, x):
            hidden = x
            for layer in self.layers:
                hidden = layer(hidden)
            return hidden


    class Stage(nn.Module):
        def __init__(self, config):
            super().__init__()
            self.readouts = nn.ModuleList(
                [Readout(2 * config.hidden_size, config.hidden_size, BUILD) for _ in config.sizes]
            )

        def forward(self, xs):
            return [self.readouts[i](x) for i, x in enumerate(xs)]
""")

MODULE_LIST = "nn.ModuleList([nn.Linear(in_dim, out_dim), activation])  # pair"
SEQUENTIAL = "nn.Sequential(nn.Linear(in_dim, out_dim), activation)  # pair"


def _readout(container: str, build: str) -> str:
    return READOUT.replace("CONTAINER", container).replace("BUILD", build)


def test_activation_parameter_member_of_a_container_may_be_gelu():
    for container in (MODULE_LIST, SEQUENTIAL):
        for build in (
            "activation=ACT2FN[config.readout_activation]",  # by keyword, a run-time key
            "ACT2FN[config.readout_activation]",  # by position
            "activation=nn.GELU()",  # a GELU built at the call
        ):
            assert finding_at(_readout(container, build), "ADP006", "# pair") is not None, (container, build)


def test_activation_parameter_member_fixed_to_another_activation_is_no_site():
    for container in (MODULE_LIST, SEQUENTIAL):
        for build in ("activation=nn.ReLU()", "nn.Tanh()", "activation=nn.SiLU()"):
            assert found(_readout(container, build), "ADP006") == [], (container, build)


def test_activation_parameter_member_before_the_linear_is_no_site():
    # the activation runs first: the Linear's output goes nowhere near it
    for container in (MODULE_LIST, SEQUENTIAL):
        code = _readout(container.replace("nn.Linear(in_dim, out_dim), activation",
                                          "activation, nn.Linear(in_dim, out_dim)"),
                        "activation=ACT2FN[config.readout_activation]")
        assert "[activation, nn.Linear" in code or "(activation, nn.Linear" in code
        assert found(code, "ADP006") == [], container


def test_module_list_members_not_chained_are_no_site():
    # each member reads the input, not the one before's output: no Linear -> activation chain
    code = _readout(MODULE_LIST, "activation=ACT2FN[config.readout_activation]").replace(
        "        for layer in self.layers:\n            hidden = layer(hidden)\n",
        "        hidden = [layer(x) for layer in self.layers]\n",
    )
    assert "hidden = [layer(x)" in code
    assert found(code, "ADP006") == []
