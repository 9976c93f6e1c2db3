"""Research misses left by session 39, read by what the code computes (session 40, helper
misses59).  The fixtures are ours.

- torch's ``nn.SyncBatchNorm`` after a Linear (ak-ssl's SLIP projector): in eval it is
  ``F.batch_norm`` on its running statistics over the Linear's ``(N, C)`` rows, which is what
  BatchNorm1d computes, so the pair is ADP008's, reported and not fixed (the kernel folds plain
  BatchNorm classes only), as after a Conv2d it is ADP007's.  Near-misses: an activation or a
  LayerNorm between, the norm before the Linear.
"""

from __future__ import annotations

import textwrap

import torch
from torch import nn

from corpus_forms import assert_reported_not_fixed, finding_at, found

SYNC_AFTER_LINEAR = textwrap.dedent("""\
    import torch.nn as nn


    class Projector(nn.Module):
        def __init__(self, dim=8, hidden=16):
            super().__init__()
            self.mlp = nn.Sequential(
                nn.Linear(dim, hidden),
                BETWEEN
                nn.SyncBatchNorm(hidden),  # member
                nn.ReLU(inplace=True),
                nn.Linear(hidden, dim),
            )

        def forward(self, x):
            return self.mlp(x)
""")

SYNC_ATTRIBUTES = textwrap.dedent("""\
    import torch.nn as nn


    class Head(nn.Module):
        def __init__(self, dim=8, norm_layer=nn.SyncBatchNorm):
            super().__init__()
            self.fc = nn.Linear(dim, dim)
            self.bn = NORM

        def forward(self, x):
            return self.bn(self.fc(x)).relu()  # pair
""")

SYNC_WHY = "nn.SyncBatchNorm is a BatchNorm on its running statistics in eval mode"


def test_sync_batchnorm_in_eval_is_batchnorm1d_over_rows():
    """The reading's premise, on torch itself: in eval, on (N, C) rows, SyncBatchNorm computes
    exactly what a BatchNorm1d with the same state computes."""
    torch.manual_seed(0)
    sync, plain = nn.SyncBatchNorm(4), nn.BatchNorm1d(4)
    with torch.no_grad():
        sync.running_mean.normal_()
        sync.running_var.uniform_(0.5, 2.0)
        sync.weight.normal_()
        sync.bias.normal_()
    plain.load_state_dict(sync.state_dict())
    sync.eval()
    plain.eval()
    x = torch.randn(6, 4)
    assert torch.equal(sync(x), plain(x))


def test_sync_batchnorm_after_a_linear_is_reported_not_fixed():
    assert_reported_not_fixed(SYNC_AFTER_LINEAR.replace("BETWEEN\n", ""), "ADP008", "# member", SYNC_WHY)
    for norm in ("nn.SyncBatchNorm(dim)", "norm_layer(dim)"):
        assert_reported_not_fixed(SYNC_ATTRIBUTES.replace("NORM", norm), "ADP008", "# pair", SYNC_WHY)


def test_sync_batchnorm_after_a_linear_near_misses():
    for between in ("nn.ReLU(),", "nn.LayerNorm(hidden),", "nn.Dropout(0.1),"):
        assert found(SYNC_AFTER_LINEAR.replace("BETWEEN", between), "ADP008") == [], between
    # the norm first, then the Linear (pre-activation order)
    first = SYNC_ATTRIBUTES.replace("NORM", "nn.SyncBatchNorm(dim)").replace(
        "self.bn(self.fc(x))", "self.fc(self.bn(x))")
    assert found(first, "ADP008") == []
    # after a Linear it is no conv-BN pair, and a Conv1d before it is no Linear-BN pair
    assert found(SYNC_AFTER_LINEAR.replace("BETWEEN\n", ""), "ADP007") == []
    conv1d = SYNC_AFTER_LINEAR.replace("BETWEEN\n", "").replace("nn.Linear(dim, hidden)", "nn.Conv1d(dim, hidden, 1)")
    assert finding_at(conv1d, "ADP008", "# member") is None
