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
from corpus_forms import assert_reported_not_fixed, finding_at, found
from torch import nn

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


# De-stationary attention (basicts', tempodev's): the scores multiplied by a factor before a bias
# is added, ``(q @ k^T * tau + delta) / sqrt(d) + mask``, then softmax, dropout, ``@ v``.  tau
# scales the product only (it folds into q where it is the same for every key: the caller's
# [B, 1, 1, 1], or the 1.0 default), delta is an additive bias: SDPA reproduces it.  Found and
# fixed (session 44: the factor folded into q under a test of its last dimension).
DE_STATIONARY = textwrap.dedent("""\
    import torch
    from torch import nn


    class DSAttention(nn.Module):
        def __init__(self, dim=16, heads=2, p=0.1):
            super().__init__()
            self.head_dim = dim // heads
            self.drop = nn.Dropout(p)

        def forward(self, q, k, v, mask=None, tau=None, delta=None):
            tau = 1.0 if tau is None else tau.unsqueeze(1).unsqueeze(1)
            delta = 0.0 if delta is None else delta.unsqueeze(1).unsqueeze(1)
            s = torch.matmul(q, k.transpose(-2, -1)) * tau + delta
            s /= self.head_dim ** 0.5
            if mask is not None:
                s = s + mask
            p = torch.softmax(s, dim=-1)  # softmax
            return torch.matmul(self.drop(p), v)
""")

DE_STATIONARY_FILLED = textwrap.dedent("""\
    import math

    import torch
    from torch import nn


    class DSAttention(nn.Module):
        def __init__(self, p=0.1, causal=True):
            super().__init__()
            self.causal = causal
            self.drop = nn.Dropout(p)

        def forward(self, q, k, v, mask, tau=None, delta=None):
            scale = 1.0 / math.sqrt(q.shape[-1])
            tau = 1.0 if tau is None else tau.unsqueeze(1).unsqueeze(1)
            delta = 0.0 if delta is None else delta.unsqueeze(1).unsqueeze(1)
            s = torch.einsum("bhle,bhse->bhls", q, k) * tau + delta
            if self.causal:
                s.masked_fill_(mask, -math.inf)
            a = self.drop(torch.softmax(scale * s, dim=-1))  # softmax
            return torch.einsum("bhls,bhsd->bhld", a, v)
""")

def test_de_stationary_attention_is_found_and_fixed():
    # (declined until session 44; fixer62 folds the factor into the query under a test of its
    # last dimension: the numbers are checked in test_fixer62_forms.py)
    from corpus_forms import sdpa_fixed

    for code in (DE_STATIONARY, DE_STATIONARY_FILLED, DE_STATIONARY.replace("* tau + delta", "* 2.0 + delta")):
        assert finding_at(code, "ADP010", "# softmax") is not None
        assert "scaled_dot_product_attention(" in sdpa_fixed(code)


def test_de_stationary_look_alikes():
    # the factor multiplies the probabilities, not the scores (renormalisation after softmax)
    after = DE_STATIONARY.replace("* tau + delta", "+ delta").replace(
        "torch.softmax(s, dim=-1)", "torch.softmax(s, dim=-1) * tau")
    assert found(after, "ADP010") == []
    # the scores multiplied by a function of themselves before the bias: not a factor
    gated = DE_STATIONARY.replace("s = torch.matmul(q, k.transpose(-2, -1)) * tau + delta",
                                  "s = torch.matmul(q, k.transpose(-2, -1))\n        s = s * s.sigmoid() + delta")
    assert "s.sigmoid()" in gated
    assert found(gated, "ADP010") == []


# A tied-embedding head helper (``self.logits(h)``: ``h @ self.emb.weight.t()``) whose logits go
# into a cross-entropy over the vocabulary at two statements of forward (bantamtrain's one-token
# and slot paths): each statement is a place of its own, not one finding spanning both.
TIED_TWO_PATHS = textwrap.dedent("""\
    import torch.nn as nn
    import torch.nn.functional as F


    class TinyLM(nn.Module):
        def __init__(self, vocab=32, dim=8):
            super().__init__()
            self.vocab = vocab
            self.emb = nn.Embedding(vocab, dim)
            self.mix = nn.Linear(dim, dim)

        def logits(self, h):
            return h @ self.emb.weight.t()

        def forward(self, idx, targets, slots=False):
            h = self.emb(idx)
            if not slots:
                return F.cross_entropy(self.logits(h).view(-1, self.vocab), targets.reshape(-1))  # one
            z = self.logits(self.mix(h))  # two
            return F.cross_entropy(z.reshape(-1, self.vocab), targets.reshape(-1))
""")


def _ends(code: str) -> list[int]:
    return sorted(f.end_line for f in found(code, "ADP015"))


def test_a_head_helper_used_at_two_statements_is_two_places():
    lines = TIED_TWO_PATHS.splitlines()
    one = next(n for n, t in enumerate(lines, 1) if "# one" in t)
    two = next(n for n, t in enumerate(lines, 1) if "# two" in t)
    assert _ends(TIED_TWO_PATHS) == [one, two + 1]


def test_a_head_helper_used_once_is_one_place():
    # the slot path's logits returned without a loss: only the first statement is a site
    once = TIED_TWO_PATHS.replace(
        "return F.cross_entropy(z.reshape(-1, self.vocab), targets.reshape(-1))", "return z")
    one = next(n for n, t in enumerate(once.splitlines(), 1) if "# one" in t)
    assert _ends(once) == [one]


def test_a_linear_head_called_inside_a_helper_called_twice_is_one_place():
    """A Linear head called inside the helper (tortoise's ``first_head(h)``) is placed at its own
    call: the helper called on either branch of an if is still one place per head."""
    layer_head = TIED_TWO_PATHS.replace(
        "self.mix = nn.Linear(dim, dim)", "self.mix = nn.Linear(dim, dim)\n        self.head = nn.Linear(dim, vocab)").replace(
        "return h @ self.emb.weight.t()", "return self.head(h)  # head")
    head = next(n for n, t in enumerate(layer_head.splitlines(), 1) if "# head" in t)
    assert [f.line for f in found(layer_head, "ADP015")] == [head]
