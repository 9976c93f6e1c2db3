"""research109 (session 43): a GNN/sciML blind batch.

Verify's input repair for a convolution handed another channel count than its weight takes:
channels-last inputs concatenated on their last axis and permuted to channels-first before a 1x1
convolution (a spatio-temporal graph attention's ``cat((X, STE), -1).permute(0, 3, 2, 1)``).
The guessed inputs put the channels on axis 1, so the convolution got a whole fraction of its
channels from the concatenated last axes; the repair makes each float input's last axis (then
its axis 1) that many times as long.  The module below is our own.
"""
from __future__ import annotations

import torch

from corpus_forms import rules

CHANNELS_LAST = """\
import torch
import torch.nn.functional as F
from torch import nn


class NodeAttention(nn.Module):
    def __init__(self, heads, width):
        super().__init__()
        self.heads, self.width = heads, width
        dim = heads * width
        self.q = nn.Conv2d(2 * dim, dim, 1)
        self.k = nn.Conv2d(2 * dim, dim, 1)
        self.v = nn.Conv2d(2 * dim, dim, 1)

    def forward(self, x, ste):
        h = torch.cat((x, ste), dim=-1).permute(0, 3, 2, 1)
        q = self.q(h).permute(0, 3, 2, 1)
        k = self.k(h).permute(0, 3, 2, 1)
        v = self.v(h).permute(0, 3, 2, 1)
        q = torch.cat(torch.split(q, self.width, dim=-1), dim=0)
        k = torch.cat(torch.split(k, self.width, dim=-1), dim=0)
        v = torch.cat(torch.split(v, self.width, dim=-1), dim=0)
        scores = torch.matmul(q, k.transpose(2, 3)) / self.width ** 0.5
        scores = F.softmax(scores, dim=-1)
        out = torch.matmul(scores, v)
        return torch.cat(torch.split(out, x.shape[0], dim=0), dim=-1)
"""


def test_conv_channel_repair_scales_the_last_axis_then_axis_one():
    from adopter.verify.build import Call
    from adopter.verify.inputs import repairs

    x, ste = torch.randn(2, 16, 8, 8), torch.randn(2, 16, 8, 8)
    error = RuntimeError("Given groups=1, weight of size [48, 48, 1, 1], expected input[2, 16, 8, 16] "
                         "to have 48 channels, but got 16 channels instead")
    shapes = [tuple(tuple(t.shape) for t in c.args) for c in repairs(Call((x, ste), {}), error)]
    assert ((2, 16, 8, 24), (2, 16, 8, 24)) in shapes
    assert ((2, 48, 8, 8), (2, 48, 8, 8)) in shapes
    # a count that is no whole multiple of what the conv got, or another error: nothing of this kind
    odd = RuntimeError("Given groups=1, weight of size [40, 40, 1, 1], expected input[2, 16, 8, 16] "
                       "to have 40 channels, but got 16 channels instead")
    assert repairs(Call((x, ste), {}), odd) == []
    assert repairs(Call((x, ste), {}), RuntimeError("mat1 and mat2 shapes cannot be multiplied")) == []


def test_channels_last_concatenated_attention_verifies(tmp_path):
    from adopter.config import Config
    from adopter.verify import verify_file
    from adopter.verify.core import options_for
    from adopter.verify.result import PASS

    path = tmp_path / "model.py"
    path.write_text(CHANNELS_LAST)
    results = verify_file(str(path), rules("ADP010"), Config(), benchmark=False,
                          options=options_for(Config(), benchmark=False))
    result = {r.class_name: r for r in results if not r.combined}["NodeAttention"]
    assert result.verdict == PASS, result
