"""Forms found missing by the blind batch corpus9b (research vision and language code from
OpenMMLab, lightly, torchmultimodal and others): each test states the semantic fact the engine
now reads, and a near-miss it must still leave alone.  The fixtures are ours, written in those
projects' styles."""

from __future__ import annotations

import textwrap

from corpus_forms import covered as _covered
from corpus_forms import findings as _findings

from adopter.engine import analyze
from adopter.ruleset import load_rules, select_rules
from adopter.synth.fixable import plan_findings

RULES = load_rules()


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


# lightly style: a base class turns per-block tuples (in, out, norm, activation) into one
# nn.Sequential of Linear [-> norm] [-> activation]; subclasses only pass their blocks.
BLOCK_HEADS = textwrap.dedent('''
    from typing import List, Optional, Tuple

    import torch
    from torch import nn


    class BlockHead(nn.Module):
        def __init__(self, blocks):
            super().__init__()
            layers: List[nn.Module] = []
            for block in blocks:
                in_dim, out_dim, norm, act, *bias = block
                use_bias = bias[0] if bias else not bool(norm)
                layers.append(nn.Linear(in_dim, out_dim, bias=use_bias))
                if norm:
                    layers.append(norm)
                if act:
                    layers.append(act)
            self.layers = nn.Sequential(*layers)

        def forward(self, x):
            return self.layers(x)


    class TwoLayerHead(BlockHead):
        def __init__(self, dim=256, hidden=1024, out=128):
            super().__init__(
                [
                    (dim, hidden, nn.BatchNorm1d(hidden), nn.ReLU()),  # first-block
                    (hidden, out, None, None),
                ]
            )


    class DeepHead(BlockHead):
        def __init__(self, dim=256, hidden=1024, out=128, depth=4):
            middle = [
                (hidden, hidden, nn.BatchNorm1d(hidden), nn.GELU())  # repeated-block
                for _ in range(depth - 2)
            ]
            super(DeepHead, self).__init__(
                [
                    (dim, hidden, nn.LayerNorm(hidden), nn.ReLU()),  # layernorm-block
                    *middle,
                    (
                        hidden,
                        out,
                        nn.BatchNorm1d(out, affine=False),  # last-block
                        None,
                    ),
                ]
            )


    class PlainHead(BlockHead):
        def __init__(self, dim=256, out=128):
            super().__init__([(dim, out, None, nn.GELU())])  # gelu-block
''')


def test_blocks_a_subclass_passes_to_its_base_become_the_base_sequential():
    # Linear -> BatchNorm1d for each block that gives a BatchNorm1d, placed at that block
    for needle in ("# first-block", "# repeated-block", "# last-block"):
        assert _covered(BLOCK_HEADS, needle, "ADP008"), needle
    # a LayerNorm block and a block without a norm: no Linear -> BatchNorm1d
    assert not _covered(BLOCK_HEADS, "# layernorm-block", "ADP008")
    assert not _covered(BLOCK_HEADS, "(hidden, out, None, None),", "ADP008")
    assert len(_findings(BLOCK_HEADS, "ADP008")) == 3
    # the members run inside the base's Sequential, built by its loop: reported, not fixed
    planned = plan_findings(analyze(BLOCK_HEADS, "model.py", select_rules(RULES, ["ADP008"])), BLOCK_HEADS, "model.py")
    assert len(planned) == 3 and not any(f.fixable for f in planned)
    assert all("base class's loop" in f.not_fixable for f in planned)


def test_a_block_norm_sits_between_its_linear_and_activation():
    # Linear -> BatchNorm1d -> GELU is no Linear -> GELU; a block without a norm is
    assert not _covered(BLOCK_HEADS, "# repeated-block", "ADP006")
    assert _covered(BLOCK_HEADS, "# gelu-block", "ADP006")
    assert len(_findings(BLOCK_HEADS, "ADP006")) == 1
