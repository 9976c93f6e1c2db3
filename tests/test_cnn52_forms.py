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
from corpus_forms import found, line_of, rules

from adopter.synth import fix_text

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


MOVED_NORM = textwrap.dedent("""\
    import torch
    from torch import nn


    class PointNorm(nn.Module):
        def __init__(self, features, momentum=0.1):
            super().__init__()
            self.norm = nn.BatchNorm1d(features, momentum=momentum)

        def _rows(self, h):
            h = h.unsqueeze(2)
            h = h.transpose(0, 2)
            h = self.norm(h)
            h = h.transpose(0, 2)
            return h.squeeze(dim=2)

        def _sets(self, h):
            return self.norm(h.permute(0, 2, 1)).permute(0, 2, 1)

        def forward(self, h):
            if h.dim() == 2:
                return self._rows(h)
            elif h.dim() == 3:
                return self._sets(h)
            raise ValueError(h.dim())


    class LastAxisNorm(nn.Module):
        def __init__(self, features):
            super().__init__()
            self.bn = nn.BatchNorm1d(features)

        def forward(self, x):
            return self.bn(x.transpose(1, 2).contiguous()).transpose(1, 2)


    def point_mlp(widths):
        return nn.Sequential(*[
            nn.Sequential(nn.Linear(widths[i - 1], widths[i]), PointNorm(widths[i]), nn.ReLU())  # in mlp
            for i in range(1, len(widths))
        ])


    class Head(nn.Module):
        def __init__(self, c=6, out=5):
            super().__init__()
            self.fc = nn.Linear(c, out)
            self.norm = PointNorm(out)
            self.proj = nn.Linear(out, out)
            self.post = LastAxisNorm(out)

        def forward(self, x):
            y = self.norm(self.fc(x))  # head pair
            return self.post(self.proj(y))  # transposed pair
""")

MOVED_LOOK_ALIKES = textwrap.dedent("""\
    import torch
    from torch import nn


    class NotBack(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.bn = nn.BatchNorm1d(c)

        def forward(self, x):
            return self.bn(x.permute(0, 2, 1))


    class UnitChannel(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.bn = nn.BatchNorm1d(1)

        def forward(self, x):
            return self.bn(x.unsqueeze(1)).squeeze(1)


    class AddsBack(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.bn = nn.BatchNorm1d(c)

        def forward(self, x):
            return self.bn(x.permute(0, 2, 1)).permute(0, 2, 1) + x


    class LayerNormed(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.ln = nn.LayerNorm(c)

        def forward(self, x):
            return self.ln(x.permute(0, 2, 1)).permute(0, 2, 1)


    class Moved(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.bn = nn.BatchNorm1d(c)

        def forward(self, x):
            return self.bn(x.permute(0, 2, 1)).permute(0, 2, 1)


    class Net(nn.Module):
        def __init__(self, c=8):
            super().__init__()
            self.a = nn.Linear(c, c)
            self.b = NotBack(c)
            self.c = nn.Linear(c, c)
            self.d = UnitChannel(c)
            self.e = nn.Linear(c, c)
            self.f = AddsBack(c)
            self.g = nn.Linear(c, c)
            self.h = LayerNormed(c)
            self.conv = nn.Conv2d(c, c, 1)
            self.moved = Moved(c)

        def forward(self, x, img):
            x = self.b(self.a(x))
            x = self.d(self.c(x))
            x = self.f(self.e(x))
            return self.h(self.g(x)), self.moved(self.conv(img))
""")


@pytest.mark.parametrize("needle", ["# in mlp", "# head pair", "# transposed pair"])
def test_linear_then_last_axis_batch_norm_module_is_a_pair(needle):
    """Main read such a module as a module of its own: these were unreported."""
    hits = [f for f in found(MOVED_NORM, "ADP008") if f.line <= line_of(MOVED_NORM, needle) <= f.end_line]
    assert len(hits) == 1


def test_last_axis_batch_norm_module_is_reported_not_fixed():
    result = fix_text(MOVED_NORM, "model.py", rules("ADP008"))
    assert result.text == MOVED_NORM
    assert len(result.skipped) == 3
    assert all("kernel takes an nn.BatchNorm1d" in why for _, why in result.skipped)


def test_the_fold_would_be_exact_in_eval():
    """What the report claims: a Linear then such a module, in eval mode, is one Linear whose
    rows are scaled by gamma / sqrt(var + eps) and whose bias is shifted (float64, 2-D and 3-D)."""
    import torch

    scope: dict = {}
    exec(compile(MOVED_NORM, "moved.py", "exec"), scope)  # noqa: S102 (our own fixture)
    torch.manual_seed(0)
    head = scope["Head"]().double().eval()
    bn = head.norm.norm
    with torch.no_grad():
        bn.running_mean.uniform_(-1, 1)
        bn.running_var.uniform_(0.5, 2)
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.uniform_(-1, 1)
        scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        folded = torch.nn.Linear(6, 5).double()
        folded.weight.copy_(head.fc.weight * scale[:, None])
        folded.bias.copy_((head.fc.bias - bn.running_mean) * scale + bn.bias)
        for shape in ((7, 6), (3, 4, 6)):
            x = torch.randn(*shape, dtype=torch.float64)
            torch.testing.assert_close(head.norm(head.fc(x)), folded(x), rtol=0, atol=1e-12)


def test_last_axis_look_alikes_stay_unreported():
    assert found(MOVED_LOOK_ALIKES, "ADP008") == []
    assert found(MOVED_LOOK_ALIKES, "ADP007") == []


CHECKPOINTED = textwrap.dedent("""\
    import torch
    import torch.utils.checkpoint as cp
    from torch import nn
    from torch.utils.checkpoint import checkpoint


    class Block(nn.Module):
        def __init__(self, c=8):
            super().__init__()
            self.conv = nn.Conv2d(c, c, 3, padding=1, bias=False)
            self.bn = nn.BatchNorm2d(c)

        def forward(self, x):
            y = checkpoint(self.conv, x, use_reentrant=False)
            return torch.relu(self.bn(y))  # imported


    class Inline(nn.Module):
        def __init__(self, c=8):
            super().__init__()
            self.conv = nn.Conv2d(c, c, 1)
            self.norm = nn.BatchNorm2d(c)

        def forward(self, x):
            return self.norm(cp.checkpoint(self.conv, x))  # module alias
""")

CHECKPOINT_LOOK_ALIKES = textwrap.dedent("""\
    import torch
    from torch import nn
    from torch.utils.checkpoint import checkpoint as ckpt


    def checkpoint(fn, x):
        return fn(x) * 2


    class ActBetween(nn.Module):
        def __init__(self, c=8):
            super().__init__()
            self.conv = nn.Conv2d(c, c, 1)
            self.bn = nn.BatchNorm2d(c)

        def forward(self, x):
            return self.bn(torch.relu(ckpt(self.conv, x, use_reentrant=False)))


    class OwnCheckpoint(nn.Module):
        def __init__(self, c=8):
            super().__init__()
            self.conv = nn.Conv2d(c, c, 1)
            self.bn = nn.BatchNorm2d(c)

        def forward(self, x):
            return self.bn(checkpoint(self.conv, x))


    class SequentialEndsInAct(nn.Module):
        def __init__(self, c=8):
            super().__init__()
            self.body = nn.Sequential(nn.Conv2d(c, c, 1), nn.ReLU())
            self.bn = nn.BatchNorm2d(c)

        def forward(self, x):
            return self.bn(ckpt(self.body, x, use_reentrant=False))
""")


@pytest.mark.parametrize("needle", ["# imported", "# module alias"])
def test_checkpointed_conv_then_batch_norm_is_a_pair(needle):
    """Main read ``checkpoint(self.conv, x)`` as an opaque call: these were unreported."""
    hits = [f for f in found(CHECKPOINTED, "ADP007") if f.line <= line_of(CHECKPOINTED, needle) <= f.end_line]
    assert len(hits) == 1


def test_checkpointed_pair_is_left_to_the_user():
    result = fix_text(CHECKPOINTED, "model.py", rules("ADP007"))
    assert result.text == CHECKPOINTED
    assert len(result.skipped) == 2
    assert all("checkpoint" in why and "by hand" in why for _, why in result.skipped)


def test_checkpoint_look_alikes_stay_unreported():
    assert found(CHECKPOINT_LOOK_ALIKES, "ADP007") == []
