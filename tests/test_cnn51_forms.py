"""Forms found while checking the blind batch of cnn51 (efficient/mobile CNNs and CNNs inside
tooling packages: every labelled site found at first sight).  The fixtures are ours.

Found by probing construction spellings of mobile-CNN code after the batch (scratch fixtures):
- a block configured by a record: ``def __init__(self, cfg: StageConfig)`` with ``StageConfig``
  a same-file ``@dataclass`` (or ``typing.NamedTuple``) whose field ``norm_layer: Callable =
  nn.BatchNorm2d`` (also ``field(default=...)``, also a forward reference ``cfg: "StageConfig"``),
  then ``self.bn = cfg.norm_layer(cfg.channels)``.  The record's generated constructor takes its
  fields as parameters, so the field reads as a constructor parameter with that default does
  (the GUIDE's ``norm_layer=nn.BatchNorm2d``); the fix is that pair's.
Near-misses: a field defaulting to a GroupNorm, a field with no default, a record whose
``__post_init__`` assigns the field again, and a plain (non-record) class whose class body
holds the layer class stay unreported.
"""

from __future__ import annotations

import pytest

from corpus_forms import assert_bn_fold_matches, found, line_of, rules

from adopter.synth import fix_text

RECORDS = """\
import dataclasses
from dataclasses import dataclass, field
from typing import Callable, NamedTuple

import torch
from torch import nn


@dataclass
class StageConfig:
    channels: int
    norm_layer: Callable[..., nn.Module] = nn.BatchNorm2d


class Stage(nn.Module):
    def __init__(self, cfg: StageConfig):
        super().__init__()
        self.conv = nn.Conv2d(cfg.channels, cfg.channels, 3, padding=1, bias=False)
        self.bn = cfg.norm_layer(cfg.channels)

    def forward(self, x):
        return self.bn(self.conv(x))


class BlockArgs(NamedTuple):
    channels: int
    expand: int = 2
    norm_layer: type = nn.BatchNorm2d


class TupleBlock(nn.Module):
    def __init__(self, args: BlockArgs):
        super().__init__()
        self.conv = nn.Conv2d(args.channels, args.channels * args.expand, 1, bias=False)
        self.bn = args.norm_layer(args.channels * args.expand)

    def forward(self, x):
        y = self.conv(x)
        return self.bn(y)


@dataclasses.dataclass(frozen=True)
class FieldConfig:
    channels: int
    norm_layer: type = field(default=nn.BatchNorm2d)


class FieldStage(nn.Module):
    def __init__(self, cfg: "FieldConfig"):
        super().__init__()
        self.conv = nn.Conv2d(cfg.channels, cfg.channels, 3, padding=1)
        self.bn = cfg.norm_layer(cfg.channels, eps=1e-3)

    def forward(self, x):
        return torch.relu(self.bn(self.conv(x)))


class Net(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.a = Stage(StageConfig(c))
        self.b = TupleBlock(BlockArgs(c, expand=1))
        self.c = FieldStage(FieldConfig(c))

    def forward(self, x):
        return self.c(self.b(self.a(x)))
"""

RECORDS_NEAR = """\
from dataclasses import dataclass
from typing import Callable, NamedTuple

from torch import nn


@dataclass
class GroupConfig:
    channels: int
    norm_layer: Callable[..., nn.Module] = nn.GroupNorm


class GroupStage(nn.Module):
    def __init__(self, cfg: GroupConfig):
        super().__init__()
        self.conv = nn.Conv2d(cfg.channels, cfg.channels, 3)
        self.norm = cfg.norm_layer(1, cfg.channels)

    def forward(self, x):
        return self.norm(self.conv(x))


class NoDefault(NamedTuple):
    channels: int
    norm_layer: type


class NoDefaultStage(nn.Module):
    def __init__(self, cfg: NoDefault):
        super().__init__()
        self.conv = nn.Conv2d(cfg.channels, cfg.channels, 3)
        self.norm = cfg.norm_layer(cfg.channels)

    def forward(self, x):
        return self.norm(self.conv(x))


@dataclass
class Reassigned:
    channels: int
    norm_layer: type = nn.BatchNorm2d

    def __post_init__(self):
        self.norm_layer = nn.InstanceNorm2d


class ReassignedStage(nn.Module):
    def __init__(self, cfg: Reassigned):
        super().__init__()
        self.conv = nn.Conv2d(cfg.channels, cfg.channels, 3)
        self.norm = cfg.norm_layer(cfg.channels)

    def forward(self, x):
        return self.norm(self.conv(x))


class Options:
    norm_layer = nn.BatchNorm2d


class OptionsStage(nn.Module):
    def __init__(self, opts: Options, c):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3)
        self.norm = opts.norm_layer(c)

    def forward(self, x):
        return self.norm(self.conv(x))
"""


@pytest.mark.parametrize("cls", ["Stage", "TupleBlock", "FieldStage"])
def test_norm_layer_from_a_record_field_default_is_a_pair(cls):
    first = line_of(RECORDS, f"class {cls}(")
    lines = RECORDS.splitlines()
    ret = next(n for n in range(first, len(lines) + 1) if lines[n - 1].strip().startswith("return "))
    assert any(f.line <= ret <= f.end_line for f in found(RECORDS, "ADP007"))


def test_record_near_misses_are_not_pairs():
    assert found(RECORDS_NEAR, "ADP007") == []


def test_record_configured_pairs_fold_exactly():
    fixed = fix_text(RECORDS, "model.py", rules("ADP007")).text
    assert fixed.count("conv_bn(") == 3
    assert_bn_fold_matches(RECORDS, fixed, "Net", (4,), (2, 4, 6, 6))
