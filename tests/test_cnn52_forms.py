"""Forms the CNN batches of session 34 left unread (cnn52).  The fixtures are ours.

1. Nested ModuleList stages: ``self.stages = nn.ModuleList([nn.ModuleList([conv, bn, act]),
   ...])`` (written out, by comprehension, or rows appended to a local list first) run by ``for
   stage in self.stages: for layer in stage: x = layer(x)``.  Each row runs its members in
   order on the running value, so its conv -> BN pair is a pair as one level's is: reported,
   not fixed (the layers run inside the container, as for one level).
   Near-misses: a row loop that adds a residual, a row with an activation between conv and BN,
   a row loop that keeps every member's output, an inner loop over another list.
"""

from __future__ import annotations

import textwrap

import pytest
from corpus_forms import found, line_of

NESTED = textwrap.dedent("""\
    import torch
    from torch import nn


    class Appended(nn.Module):
        def __init__(self, widths=(8, 16)):
            super().__init__()
            stages = []
            cin = 3
            for w in widths:
                stages.append(nn.ModuleList([
                    nn.Conv2d(cin, w, 3, padding=1, bias=False),
                    nn.BatchNorm2d(w),  # appended
                    nn.ReLU(inplace=True),
                ]))
                cin = w
            self.stages = nn.ModuleList(stages)

        def forward(self, x):
            for stage in self.stages:
                for layer in stage:
                    x = layer(x)
            return x


    class Written(nn.Module):
        def __init__(self):
            super().__init__()
            self.stages = nn.ModuleList([
                nn.ModuleList([nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU()]),  # first row
                nn.ModuleList([nn.Conv2d(8, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU()]),  # second row
            ])

        def forward(self, x):
            for stage in self.stages:
                for layer in stage:
                    x = layer(x)
            return x


    class Comprehended(nn.Module):
        def __init__(self, c=8, depth=3):
            super().__init__()
            self.blocks = nn.ModuleList([
                nn.ModuleList([nn.Conv2d(c, c, 1), nn.BatchNorm2d(c)])  # comprehension
                for _ in range(depth)
            ])

        def forward(self, x):
            for block in self.blocks:
                for m in block:
                    x = m(x)
            return x
""")

LOOK_ALIKES = textwrap.dedent("""\
    import torch
    from torch import nn


    class Residual(nn.Module):
        def __init__(self, c=8):
            super().__init__()
            self.stages = nn.ModuleList([
                nn.ModuleList([nn.Conv2d(c, c, 1), nn.BatchNorm2d(c)]),  # residual row
            ])

        def forward(self, x):
            for stage in self.stages:
                for layer in stage:
                    x = layer(x) + x
            return x


    class ActBetween(nn.Module):
        def __init__(self, c=8):
            super().__init__()
            self.stages = nn.ModuleList([
                nn.ModuleList([nn.Conv2d(c, c, 1), nn.ReLU(), nn.BatchNorm2d(c)]),  # act between
            ])

        def forward(self, x):
            for stage in self.stages:
                for layer in stage:
                    x = layer(x)
            return x


    class KeepsEach(nn.Module):
        def __init__(self, c=8):
            super().__init__()
            self.stages = nn.ModuleList([
                nn.ModuleList([nn.Conv2d(c, c, 1), nn.BatchNorm2d(c)]),  # each output kept
            ])

        def forward(self, x):
            feats = []
            for stage in self.stages:
                for layer in stage:
                    x = layer(x)
                    feats.append(x)
            return x, feats


    class OtherInner(nn.Module):
        def __init__(self, c=8):
            super().__init__()
            self.stages = nn.ModuleList([
                nn.ModuleList([nn.Conv2d(c, c, 1), nn.BatchNorm2d(c)]),  # other inner
            ])
            self.heads = nn.ModuleList([nn.Identity()])

        def forward(self, x):
            for stage in self.stages:
                for layer in self.heads:
                    x = layer(x)
                x = stage[1](stage[0](x).relu())
            return x
""")


@pytest.mark.parametrize("needle", ["# appended", "# first row", "# second row", "# comprehension"])
def test_nested_module_list_rows_pair_conv_and_bn(needle):
    """Main reads one level of ``for m in self.<list>: x = m(x)`` only: these were unreported."""
    hits = [f for f in found(NESTED, "ADP007") if f.line <= line_of(NESTED, needle) <= f.end_line]
    assert len(hits) == 1
    assert hits[0].fixable is False  # the layers run inside the container


def test_nested_module_list_reports_each_row_once():
    assert len(found(NESTED, "ADP007")) == 4


def test_nested_module_list_look_alikes_stay_unreported():
    assert found(LOOK_ALIKES, "ADP007") == []
