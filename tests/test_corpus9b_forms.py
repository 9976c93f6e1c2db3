"""Forms found missing by the blind batch corpus9b (research vision and language code from
OpenMMLab, lightly, torchmultimodal and others): each test states the semantic fact the engine
now reads, and a near-miss it must still leave alone.  The fixtures are ours, written in those
projects' styles."""

from __future__ import annotations

import textwrap

from adopter.engine import analyze
from adopter.ruleset import load_rules, select_rules

RULES = load_rules()


def _findings(code: str, rule: str):
    return analyze(code, "model.py", select_rules(RULES, [rule])).findings


def _covered(code: str, needle: str, rule: str) -> bool:
    line = next(n for n, text in enumerate(code.splitlines(), 1) if needle in text)
    return any(f.line <= line <= f.end_line for f in _findings(code, rule))


# OpenMMLab style: activations are built by a registry builder of another package from a config
# dict whose ``type`` names the class; the MLP's default config names GELU.
REGISTRY_MLP = textwrap.dedent('''
    import torch
    from torch import nn
    from mmcv.cnn import build_activation_layer, build_norm_layer


    class MLP(nn.Module):
        def __init__(self, dim, hidden, act_cfg=dict(type='GELU')):
            super().__init__()
            self.fc1 = nn.Linear(dim, hidden)
            self.act = build_activation_layer(act_cfg)
            self.fc2 = nn.Linear(hidden, dim)

        def forward(self, x):
            x = self.fc1(x)
            x = self.act(x)  # default-config
            return self.fc2(x)


    class Head(nn.Module):
        def __init__(self, dim):
            super().__init__()
            self.proj = nn.Linear(dim, dim)
            self.act = build_activation_layer({'type': 'GELU'})
            self.out = nn.Linear(dim, dim)
            self.relu = build_activation_layer(dict(type='ReLU'))
            self.norm = build_norm_layer(dict(type='GELU'), dim)

        def forward(self, x):
            x = self.act(self.proj(x))  # literal-config
            x = self.relu(self.out(x))  # relu-config
            return self.norm(x)
''')


def test_an_activation_built_from_a_registry_config_naming_gelu():
    # a parameter's default config: GELU unless a caller passes another (a run-time guard)
    assert _covered(REGISTRY_MLP, "# default-config", "ADP006")
    # a config literal in place: GELU
    assert _covered(REGISTRY_MLP, "# literal-config", "ADP006")
    # near-misses: a config naming ReLU, and a builder given two arguments (not an activation)
    assert not _covered(REGISTRY_MLP, "# relu-config", "ADP006")
    assert len(_findings(REGISTRY_MLP, "ADP006")) == 2
