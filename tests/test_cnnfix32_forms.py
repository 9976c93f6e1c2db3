"""Dev-corpus CNN and head misses read by their computation (session 26, helper cnnfix32).
The fixtures are ours.

- Block classes chosen by a key from a module-level dict (``blocks = {"BASIC": Basic, ...}``)
  and built through the name the lookup is bound to (``block = blocks[cfg]``), also when that
  name is handed to a method or another class's constructor first (``self._make_layer(block,
  ...)``, HRNet): such a call builds each class of the dict, so what it passes for a constructor
  parameter without a default (``norm_layer``) is what the class is given.  The builder's own
  ``__init__`` walk, which builds the blocks, no longer leaves the block's parameter unknown
  for good (a lookup cut short by a walk in progress is looked up again).  A class handed on
  by its name (``Stage(Wide, ...)``, torchvision's ``ResNet(BasicBlock, ...)`` form) is read the
  same way when its constructor parameter has no default.
- ADP015: one Linear to ``channels * vocabulary`` (a head per audio channel, stacked in one
  weight) whose output is viewed to ``(b, t, C, V)``, the channels moved before the positions
  and flattened to ``(b * C, t, V)``, then handed to a loss with ``vocab_size=V``: each row is
  one channel's logits over the vocabulary the loss is told (dia's form).  ``x.view((a, b))``
  with the sizes in one tuple is read as ``x.view(a, b)``.
Near-misses: every builder passing an InstanceNorm class, the calls through the looked-up name
passing a GroupNorm class (what they pass decides, not the dict), BatchNorm before the conv; a
split putting the channels last, a loss told another vocabulary size, logits only returned.
"""

from __future__ import annotations

import textwrap

from corpus_forms import assert_bn_fold_matches, finding_at, found, rules

from adopter.synth import fix_text

BLOCK_TABLE = textwrap.dedent("""\
    import torch.nn as nn


    def conv3x3(cin, cout, stride=1):
        return nn.Conv2d(cin, cout, 3, stride, 1, bias=False)


    class Basic(nn.Module):
        def __init__(self, cin, cout, norm_layer, stride=1):
            super().__init__()
            self.norm_layer = norm_layer
            self.conv1 = conv3x3(cin, cout, stride)
            self.bn1 = self.norm_layer(cout)
            self.relu = nn.ReLU()

        def forward(self, x):
            ORDER
            return self.relu(out)


    class Wide(nn.Module):
        def __init__(self, cin, cout, norm_layer, stride=1):
            super().__init__()
            self.conv = nn.Conv2d(cin, cout, 1, bias=False)
            self.bn = norm_layer(cout)

        def forward(self, x):
            return self.bn(self.conv(x))  # wide pair


    blocks_dict = {"BASIC": Basic, "WIDE": Wide}


    class Stage(nn.Module):
        def __init__(self, block, width, norm_layer):
            super().__init__()
            self.norm_layer = norm_layer
            self.blocks = self._make_blocks(block, width)

        def _make_blocks(self, block, width):
            return nn.Sequential(block(width, width, self.norm_layer), block(width, width, self.norm_layer))

        def forward(self, x):
            return self.blocks(x)


    class Net(nn.Module):
        def __init__(self, cfg, norm_layer):
            super().__init__()
            self.norm_layer = norm_layer
            block = LOOKUP
            self.layer1 = self._make_layer(block, 8)
            self.stage = Stage(blocks_dict[cfg["S2"]], 8, self.norm_layer)

        def _make_layer(self, block, width):
            return nn.Sequential(block(3, width, self.norm_layer, 2), block(width, width, self.norm_layer))

        def forward(self, x):
            return self.stage(self.layer1(x))


    def build(norm_layer=NORM):
        return Net({"S1": "BASIC", "S2": "WIDE"}, norm_layer=norm_layer)
""")

PAIR = "out = self.bn1(self.conv1(x))  # basic pair"


def _table(order=PAIR, lookup='blocks_dict[cfg["S1"]]', norm="nn.BatchNorm2d"):
    return BLOCK_TABLE.replace("ORDER", order).replace("LOOKUP", lookup).replace("NORM", norm)


def test_block_classes_from_a_dict_get_what_every_builder_passes():
    code = _table()
    assert finding_at(code, "ADP007", "# basic pair") is not None  # through _make_layer's `block`
    assert finding_at(code, "ADP007", "# wide pair") is not None  # through Stage's `block` parameter
    fixed = fix_text(code, "model.py", rules("ADP007")).text
    assert fixed.count("conv_bn(") >= 2
    # Net built as build() does, BatchNorm2d for every block
    import torch

    assert_bn_fold_matches(code, fixed, "Net", ({"S1": "BASIC", "S2": "WIDE"}, torch.nn.BatchNorm2d), (2, 3, 8, 8))


def _other_norm():
    other = _table().replace("block(3, width, self.norm_layer, 2), block(width, width, self.norm_layer)",
                             "block(3, width, nn.GroupNorm, 2), block(width, width, nn.GroupNorm)")
    return other.replace('Stage(blocks_dict[cfg["S2"]]', "Stage(Wide")


def test_block_class_handed_to_a_constructor_by_name():
    # Wide handed to Stage by its name is read as the table's entries are
    assert finding_at(_other_norm(), "ADP007", "# wide pair") is not None


def test_block_classes_from_a_dict_near_misses():
    # every builder passes a GroupNorm-like class: no BatchNorm anywhere
    assert found(_table(norm="nn.InstanceNorm2d"), "ADP007") == []
    # the calls through the looked-up name pass another norm; Stage builds Wide by its name
    assert finding_at(_other_norm(), "ADP007", "# basic pair") is None
    # BatchNorm before the conv
    assert finding_at(_table(order="out = self.conv1(self.bn1(x))  # basic pair"), "ADP007", "# basic pair") is None


CHANNEL_HEADS = textwrap.dedent("""\
    import torch
    from torch import nn


    class AudioLM(nn.Module):
        def __init__(self, config):
            super().__init__()
            self.num_channels = config.num_channels
            self.vocab_size = config.vocab_size
            self.embed = nn.Embedding(config.vocab_size * config.num_channels, config.hidden_size)
            self.logits_dense = nn.Linear(config.hidden_size, self.num_channels * self.vocab_size, bias=False)

        def forward(self, input_ids, labels=None, **kwargs):
            h = self.embed(input_ids)
            b = h.shape[0]
            logits = (
                self.logits_dense(h)  # head
                .view(SPLIT)
                .transpose(1, 2)
                .contiguous()
                .view(b * self.num_channels, -1, self.vocab_size)
            )
            loss = None
            if labels is not None:
                loss = self.loss_function(logits=logits, labels=labels, vocab_size=VOCAB, **kwargs)
            return loss, logits
""")


def _channels(split="(b, -1, self.num_channels, self.vocab_size)", vocab="self.vocab_size"):
    return CHANNEL_HEADS.replace("SPLIT", split).replace("VOCAB", vocab)


def test_one_linear_to_channels_times_vocabulary_viewed_per_channel():
    # (b, t, C * V) viewed to (b, t, C, V), channels moved before positions, flattened to
    # (b * C, t, V): every row is one channel's logits over the vocabulary the loss is given
    assert finding_at(_channels(), "ADP015", "# head") is not None
    # the sizes given one by one, not as a tuple
    assert finding_at(_channels(split="b, -1, self.num_channels, self.vocab_size"), "ADP015", "# head") is not None


def test_channel_heads_near_misses():
    # the split puts the channels last: rows are not over the vocabulary
    assert found(_channels(split="(b, -1, self.vocab_size, self.num_channels)"), "ADP015") == []
    # the loss is told another vocabulary than the rows hold
    assert found(_channels(vocab="self.num_channels"), "ADP015") == []
    # no loss: the logits are only returned
    no_loss = _channels().replace("loss = self.loss_function(", "loss = (").replace(
        "logits=logits, labels=labels, vocab_size=self.vocab_size, **kwargs)", "None)")
    assert found(no_loss, "ADP015") == []


RESNET_BY_NAME = textwrap.dedent("""\
    import torch.nn as nn


    class Basic(nn.Module):
        def __init__(self, cin, cout, norm_layer, stride=1):
            super().__init__()
            self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
            self.bn1 = norm_layer(cout)

        def forward(self, x):
            return self.bn1(self.conv1(x))  # pair


    class ResNet(nn.Module):
        def __init__(self, block, layers, norm_layer):
            super().__init__()
            self._norm = norm_layer
            self.layer1 = self._make_layer(block, 8, layers[0])

        def _make_layer(self, block, planes, blocks):
            return nn.Sequential(*[block(planes, planes, self._norm) for _ in range(blocks)])

        def forward(self, x):
            return self.layer1(x)


    def resnet18(norm_layer=NORM):
        return ResNet(Basic, [2, 2], norm_layer)


    class Model(ResNet):
        def __init__(self):
            super().__init__(Basic, [2, 2], NORM)
""")


def test_block_class_handed_on_by_name_gets_what_the_builder_passes():
    code = RESNET_BY_NAME.replace("NORM", "nn.BatchNorm2d")
    assert finding_at(code, "ADP007", "# pair") is not None
    fixed = fix_text(code, "model.py", rules("ADP007")).text
    assert "conv_bn(" in fixed
    assert_bn_fold_matches(code, fixed, "Model", (), (2, 8, 8, 8))


def test_block_class_by_name_near_misses():
    # the builders pass an InstanceNorm class
    assert found(RESNET_BY_NAME.replace("NORM", "nn.InstanceNorm2d"), "ADP007") == []
