"""Forms found while checking the blind batch cnn26 (torchvision-style CNNs of twelve packages
new to the corpus: adversarially robust ResNets, few-shot backbones, EEG convnets, audio
source-separation nets, a GAN generator block, super-resolution and denoising nets).  The
fixtures are ours.

- ``forward = _forward`` in a class body (a ResNet that keeps ``_forward`` for subclasses): the
  method is the module's forward, but the file's other classes have a ``forward`` of their own,
  so the reachability walk took only public methods as entry points and never read the stem's
  Conv2d -> BatchNorm2d pair.  A class-body alias of a method is that method
  (``bindings.collect_class``).
- Layers added by ``self.add_module(...)`` inside a function defined in ``__init__`` and called
  once per block (an ``nn.Sequential`` subclass built like braindecode's deep convnet): the
  member walk did not run the nested function's body at its call, so the blocks' Conv2d ->
  BatchNorm2d pairs were not members.  A call statement of a function defined in the walked
  body runs that body there, its parameters its own (``LayerTyper._walk_local``).
- ``h = conv_path_a if test else conv_path_b`` then ``h = self.bn(h)`` (a GAN block that
  upsamples or not before the same convolution): a conditional expression of two calls is the
  ``if``/``else`` of the two assignments, so each path's pair is read; when both paths pair, the
  two matches end at one BatchNorm and start on one line, and are one finding.
- ``nn.BatchNorm1d(c, track_running_stats=False)`` after a Linear (and the same for a
  BatchNorm2d after a conv): such a norm normalises with the batch's statistics in eval mode
  too, so there is nothing to fold; ADP007/ADP008's init patterns refuse the literal
  (``!track_running_stats=False``, a new pattern form).
"""

from __future__ import annotations

import pytest

from adopter.dsl import Lit, PatternError
from adopter.dsl_parser import parse as parse_pattern
from adopter.synth import fix_text
from corpus_forms import assert_bn_fold_matches, finding_at, found, line_of, rules

# ----------------------------------------------------------------------------- forward = _forward

ALIASED = """\
import torch
from torch import nn


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.norm = nn.BatchNorm2d(c)

    def forward(self, x):
        return torch.relu(self.norm(self.conv(x)) + x)


class Net(nn.Module):
    def __init__(self, c=6):
        super().__init__()
        self.conv1 = nn.Conv2d(3, c, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.block = Block(c)

    def _forward(self, x):
        x = self.conv1(x)
        BETWEEN
        x = self.bn1(x)  # stem
        return self.block(torch.relu(x))

    ALIAS
"""


def _aliased(between: str = "pass", alias: str = "forward = _forward") -> str:
    return ALIASED.replace("BETWEEN", between).replace("ALIAS", alias)


def test_method_aliased_as_forward_in_the_class_body_is_read():
    assert finding_at(_aliased(), "ADP007", "# stem") is not None


def test_method_aliased_as_forward_fix_matches_in_float64():
    code = _aliased()
    fixed = fix_text(code, "model.py", rules("ADP007")).text
    assert "conv_bn(x, self.conv1, self.bn1)" in fixed
    # float64 eval with drawn running statistics; 27- and 54-term reductions
    assert_bn_fold_matches(code, fixed, "Net", (), (2, 3, 8, 8))


def test_private_method_no_forward_aliases_is_not_read():
    # the same method without the alias: nothing in the file reaches it
    assert finding_at(_aliased(alias="pass"), "ADP007", "# stem") is None


def test_method_aliased_as_forward_near_miss_activation_between():
    assert finding_at(_aliased(between="x = torch.relu(x)"), "ADP007", "# stem") is None


# ----------------------------------------------------------------------------- nested add_module

NESTED = """\
from torch import nn


class Deep(nn.Sequential):
    def __init__(self, c=4, blocks=2):
        super().__init__()
        self.add_module("conv", nn.Conv2d(3, c, 3, padding=1, bias=False))
        self.add_module("bn", nn.BatchNorm2d(c))
        self.add_module("act", nn.ELU())

        def add_block(model, index):
            suffix = "_{:d}".format(index)
            self.add_module("conv" + suffix, nn.Conv2d(c, c, 3, padding=1, bias=False))
            BETWEEN
            self.add_module("bn" + suffix, nn.BatchNorm2d(c))  # block-pair
            self.add_module("act" + suffix, nn.ELU())

        CALLS
"""


def _nested(between: str = "pass", calls: str = "add_block(self, 1)\n        add_block(self, 2)") -> str:
    return NESTED.replace("BETWEEN", between).replace("CALLS", calls)


def test_pairs_added_in_a_nested_function_are_members():
    assert finding_at(_nested(), "ADP007", "# block-pair") is not None


def test_pairs_added_in_a_nested_function_fix_matches_in_float64():
    code = _nested()
    fixed = fix_text(code, "model.py", rules("ADP007")).text
    assert "FoldingSequential" in fixed
    # float64 eval with drawn running statistics; 27- and 36-term reductions
    assert_bn_fold_matches(code, fixed, "Deep", (), (2, 3, 6, 6))


def test_nested_function_near_miss_activation_between():
    code = _nested(between='self.add_module("pre" + suffix, nn.ReLU())')
    assert finding_at(code, "ADP007", "# block-pair") is None


def test_nested_function_never_called_adds_nothing():
    assert finding_at(_nested(calls="pass"), "ADP007", "# block-pair") is None


# ----------------------------------------------------------------------------- conditional expression

CHOICE = """\
import torch
import torch.nn.functional as F
from torch import nn


class Up(nn.Module):
    def __init__(self, c=4, upsample=True):
        super().__init__()
        self.upsample = upsample
        self.c1 = nn.Conv2d(c, c, 3, padding=1)
        self.b2 = nn.BatchNorm2d(c)

    def forward(self, x):
        h = CHOICE
        h = self.b2(h)  # norm
        return torch.relu(h)
"""


def _choice(choice: str) -> str:
    return CHOICE.replace("CHOICE", choice)


def test_conditional_expression_of_two_conv_calls_is_one_finding():
    code = _choice("self.c1(F.interpolate(x, scale_factor=2)) if self.upsample else self.c1(x)")
    hits = found(code, "ADP007")
    assert len(hits) == 1
    assert finding_at(code, "ADP007", "# norm") is not None
    # reported, not fixed: the fixer rewrites statements, and the choices are one expression
    result = fix_text(code, "model.py", rules("ADP007"))
    assert result.text == code and "conditional expression" in result.skipped[0][1]


def test_conditional_expression_pair_on_one_path_is_found():
    # the other choice is no convolution: the pair holds on the path the test may take
    code = _choice("self.c1(x) if self.upsample else F.avg_pool2d(x, 1)")
    assert finding_at(code, "ADP007", "# norm") is not None


def test_conditional_expression_near_miss_steps_between_on_both_paths():
    code = _choice("torch.relu(self.c1(x)) if self.upsample else F.avg_pool2d(self.c1(x), 1)")
    assert not found(code, "ADP007")


def test_statement_if_is_one_finding_fixed_on_each_branch():
    # the statement form: one BatchNorm call, so one site (the GUIDE's anchor; ADP007 names it,
    # session 26 cnnsmall -- was one finding per branch), spanning both convs; the fix still
    # makes one edit per branch
    code = CHOICE.replace("        h = CHOICE\n", """\
        if self.upsample:
            h = self.c1(F.interpolate(x, scale_factor=2))
        else:
            h = self.c1(x)
""")
    hits = found(code, "ADP007")
    assert len(hits) == 1 and hits[0].fixable
    assert hits[0].line == line_of(code, "h = self.c1(F.interpolate") and hits[0].end_line == line_of(code, "# norm")
    fixed = fix_text(code, "model.py", rules("ADP007")).text
    assert fixed.count("conv_bn(") == 2 and "self.b2(h)" not in fixed


# ----------------------------------------------------------------------------- batch statistics

BATCH_STATS = """\
from torch import nn


class Heads(nn.Module):
    def __init__(self, c=8, track=True):
        super().__init__()
        self.fc = nn.Linear(c, c)
        self.bn = nn.BatchNorm1d(c, TRACK)
        self.conv = nn.Sequential(nn.Conv2d(c, c, 1), nn.BatchNorm2d(c, TRACK))  # conv-pair

    def forward(self, x, y):
        h = self.fc(x)
        return self.bn(h), self.conv(y)  # linear-pair
"""


def test_batchnorm_without_running_statistics_is_not_folded():
    code = BATCH_STATS.replace("TRACK", "track_running_stats=False")
    assert not found(code, "ADP008")
    assert not found(code, "ADP007")


@pytest.mark.parametrize("track", ["track_running_stats=True", "track_running_stats=track", "eps=1e-3"])
def test_batchnorm_with_running_statistics_or_unknown_is_still_folded(track):
    code = BATCH_STATS.replace("TRACK", track)
    assert finding_at(code, "ADP008", "# linear-pair") is not None
    assert finding_at(code, "ADP007", "# conv-pair") is not None


def test_refused_keyword_literal_parses():
    pattern = parse_pattern("$second = torch.nn.BatchNorm2d(..., !track_running_stats=False)")
    assert pattern.nodes[0].refused == (("track_running_stats", Lit(False)),)
    with pytest.raises(PatternError):
        parse_pattern("$second = torch.nn.BatchNorm2d(..., !track_running_stats=$v)")


def test_anchored_rule_keeps_both_paths_that_end_at_one_operation():
    # Swin's window attention: masked and unmasked softmax in the two branches of an if, one
    # matmul with v after it; ADP010's anchor is the softmax, so these are two places (the
    # one-line, one-end merge of the conditional expression is for rules without an anchor)
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "devcorpus" / "fixtures" / "swin_like.py"
    code = path.read_text()
    hits = found(code, "ADP010")
    assert {line for line in (68, 70) if any(f.line <= line <= f.end_line for f in hits)} == {68, 70}
    assert len(hits) == 2
