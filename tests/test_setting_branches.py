"""A layer ``__init__`` types under a setting that ``forward`` tests again (mend44; the two
false positives research94 left: a gate flag read from a config choosing SiLU or GELU, and a
mode string choosing a spiking projection or an ``nn.Linear``).  The fixtures are ours.

The arm of ``forward`` taken with the setting true calls only the layer the ``__init__`` branch
taken with it true bound (structure.setting_branches); the other arm keeps the other type.
Look-alikes that stay reported: the arm that runs with the reported type, a setting some
method writes again, a parameter ``__init__`` rebinds before its test, and a different test.
"""

from __future__ import annotations

from corpus_forms import finding_at

GATE_FROM_CONFIG = """\
import torch.nn as nn


class Mlp(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.use_gate = getattr(config, "use_gate", True)
        self.up = nn.Linear(config.width, 4 * config.width, bias=False)
        self.down = nn.Linear(4 * config.width, config.width, bias=False)
        if self.use_gate:
            self.gate = nn.Linear(config.width, 4 * config.width, bias=False)
            self.act = nn.SiLU()
        else:
            self.act = nn.GELU()

    def forward(self, x):
        if self.use_gate:
            return self.down(self.act(self.up(x)) * self.gate(x))  # gated arm
        else:
            return self.down(self.act(self.up(x)))  # plain arm
"""


def test_gated_arm_calls_only_the_gate_branch_activation():
    assert finding_at(GATE_FROM_CONFIG, "ADP006", "# gated arm") is None
    assert finding_at(GATE_FROM_CONFIG, "ADP013", "# gated arm") is not None


def test_other_arm_keeps_the_other_branch_activation():
    assert finding_at(GATE_FROM_CONFIG, "ADP006", "# plain arm") is not None


def test_negated_setting_reads_the_other_branch():
    code = GATE_FROM_CONFIG.replace("        if self.use_gate:\n            return self.down(self.act(self.up(x)) * self.gate(x))"
                                    "  # gated arm\n        else:\n            return self.down(self.act(self.up(x)))  # plain arm",
                                    "        if not self.use_gate:\n            return self.down(self.act(self.up(x)))  # plain arm\n"
                                    "        else:\n            return self.down(self.act(self.up(x)) * self.gate(x))  # gated arm")
    assert code != GATE_FROM_CONFIG
    assert finding_at(code, "ADP006", "# plain arm") is not None
    assert finding_at(code, "ADP006", "# gated arm") is None


def test_setting_written_again_types_from_both_branches():
    code = GATE_FROM_CONFIG + "\n    def ungate(self):\n        self.use_gate = False\n"
    assert finding_at(code, "ADP006", "# gated arm") is not None


def test_a_different_test_types_from_both_branches():
    code = GATE_FROM_CONFIG.replace("        if self.use_gate:\n            return", "        if self.training:\n            return")
    assert finding_at(code, "ADP006", "# gated arm") is not None


MODE_PARAMETER = """\
import torch
import torch.nn as nn


class SpikeProjection(nn.Module):
    def __init__(self, d_in, d_out):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(d_out, d_in))

    def forward(self, x):
        return (x @ self.weight.t() > 0).to(x.dtype)


class SpikingAttention(nn.Module):
    def __init__(
        self,
        dim=64,
        mode="spiking",
    ):
        super().__init__()
        self.mode = mode
        if mode == "spiking":
            self.q = SpikeProjection(dim, dim)
            self.k = SpikeProjection(dim, dim)
            self.v = nn.Linear(dim, dim)
        else:
            self.q = nn.Linear(dim, dim)
            self.k = nn.Linear(dim, dim)
            self.v = nn.Linear(dim, dim)

    def forward(self, x):
        if self.mode == "spiking":
            q = self.q(x)  # spiking arm
            k = self.k(x)
            v = self.v(x)
        else:
            q = self.q(x)  # linear arm
            k = self.k(x)
            v = self.v(x)
        return (q @ k.transpose(-1, -2)) @ v
"""


def test_mode_arm_with_a_signature_one_parameter_a_line():
    """The parameter's default in a signature written one parameter a line (``mode="spiking",``)
    is no assignment in ``__init__``'s body: the mode still holds the caller's value."""
    assert finding_at(MODE_PARAMETER, "ADP009", "# spiking arm") is None
    assert finding_at(MODE_PARAMETER, "ADP009", "# linear arm") is not None


def test_truth_setting_over_a_parameter_held_by_self():
    code = (MODE_PARAMETER.replace('if mode == "spiking":', "if spiking:")
            .replace('if self.mode == "spiking":', "if self.spiking:")
            .replace('mode="spiking",', "spiking=True,").replace("self.mode = mode", "self.spiking = spiking"))
    assert finding_at(code, "ADP009", "# spiking arm") is None
    assert finding_at(code, "ADP009", "# linear arm") is not None


def test_parameter_rebound_before_its_test_types_from_both_branches():
    code = MODE_PARAMETER.replace("        self.mode = mode\n", "        mode = mode.lower()\n        self.mode = mode\n")
    assert finding_at(code, "ADP009", "# spiking arm") is not None


def test_training_flag_is_no_setting():
    """``self.training`` is what ``train()``/``eval()`` rewrite after construction."""
    code = (GATE_FROM_CONFIG.replace('self.use_gate = getattr(config, "use_gate", True)', "self.training = config.use_gate")
            .replace("if self.use_gate:", "if self.training:"))
    assert finding_at(code, "ADP006", "# gated arm") is not None


def test_setting_assigned_again_in_init_types_from_both_branches():
    code = GATE_FROM_CONFIG.replace("            self.act = nn.GELU()\n",
                                    "            self.act = nn.GELU()\n        self.use_gate = config.gate_later\n")
    assert finding_at(code, "ADP006", "# gated arm") is not None


CONFIG_HELD = """\
import torch.nn as nn


class Mlp(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.config = config
        self.up = nn.Linear(config.width, 4 * config.width, bias=False)
        self.down = nn.Linear(4 * config.width, config.width, bias=False)
        if config.gated:
            self.gate = nn.Linear(config.width, 4 * config.width, bias=False)
            self.act = nn.SiLU()
        else:
            self.act = nn.GELU()

    def forward(self, x):
        if self.config.gated:
            return self.down(self.act(self.up(x)) * self.gate(x))  # gated arm
        return self.down(self.act(self.up(x)))  # plain arm
"""


def test_config_attribute_held_by_self_is_one_setting():
    assert finding_at(CONFIG_HELD, "ADP006", "# gated arm") is None
    assert finding_at(CONFIG_HELD, "ADP006", "# plain arm") is not None


def test_config_attribute_the_file_writes_is_no_setting():
    code = CONFIG_HELD + "\n\ndef ungated(model):\n    model.config.gated = False\n"
    assert finding_at(code, "ADP006", "# gated arm") is not None
