"""Forms found while checking the blind batch research103 (diffusion-model research code: DiT
and U-Net attention blocks, latent-diffusion cross-attention, flow-matching models).  The
fixtures are ours.

- ADP009: a graph attention over the edges of a mesh projects the node features three times,
  multiplies each edge's gathered query by its gathered key, and scatters the per-edge logits
  onto the nodes with an in-place ``index_add_`` into a ``zeros_like`` buffer before the
  softmax; the probabilities then weigh the gathered values.  The buffer's values come only
  from the in-place write (``zeros_like`` gives a shape), which the meeting check did not
  follow, so the queries and keys were never seen to reach the values.  An in-place tensor
  method (torch's trailing underscore) now passes what it reads on to its receiver.
Near-misses: the same three projections each scattered into a buffer of its own and
concatenated into a feed-forward, and a sigmoid gate of one scattered into a buffer times another, stay silent.
"""

from __future__ import annotations

from corpus_forms import found, line_of

EDGE_ATTENTION = """\
import math
import torch
import torch.nn as nn
import torch.nn.functional as F


class MeshAttention(nn.Module):
    def __init__(self, dim, heads=2):
        super().__init__()
        self.heads = heads
        self.lin_q = nn.Linear(dim, dim)
        self.lin_k = nn.Linear(dim, dim)
        self.lin_v = nn.Linear(dim, dim)
        self.out = nn.Linear(dim, dim)

    def forward(self, h, senders, receivers):
        b = h.shape[0]
        q = self.lin_q(h)
        k = self.lin_k(h)
        v = self.lin_v(h)
        score = q[:, senders] * k[:, receivers]
        score = score.view(b, score.shape[1], self.heads, -1).sum(-1) / math.sqrt(score.shape[-1])
        node_score = torch.zeros_like(score)
        node_score.index_add_(1, receivers, score)
        weight = F.softmax(node_score, dim=1).unsqueeze(-1)
        msg = v[:, senders].view(b, senders.shape[0], self.heads, -1)
        total = torch.zeros_like(msg)
        total.index_add_(1, receivers, weight * msg)
        return self.out(total.view(b, total.shape[1], -1))
"""


def test_projections_meeting_through_an_in_place_scatter_are_a_site():
    at = line_of(EDGE_ATTENTION, "q = self.lin_q(h)")
    hits = [f for f in found(EDGE_ATTENTION, "ADP009") if f.line <= at <= f.end_line]
    assert len(hits) == 1


SCATTERED_APART = """\
import torch
import torch.nn as nn


class ScatterHeads(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.lin_a = nn.Linear(dim, dim)
        self.lin_b = nn.Linear(dim, dim)
        self.lin_c = nn.Linear(dim, dim)
        self.ff = nn.Linear(3 * dim, dim)

    def forward(self, h, receivers):
        a = self.lin_a(h)
        b = self.lin_b(h)
        c = self.lin_c(h)
        sum_a = torch.zeros_like(a)
        sum_a.index_add_(0, receivers, a)
        sum_b = torch.zeros_like(b)
        sum_b.index_add_(0, receivers, b)
        sum_c = torch.zeros_like(c)
        sum_c.index_add_(0, receivers, c)
        return self.ff(torch.cat([sum_a, sum_b, sum_c], dim=-1))
"""


def test_projections_scattered_apart_into_a_feed_forward_are_no_site():
    assert found(SCATTERED_APART, "ADP009") == []


GATED_SCATTER = """\
import torch
import torch.nn as nn


class GatedScatter(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.lin_g = nn.Linear(dim, dim)
        self.lin_m = nn.Linear(dim, dim)
        self.lin_s = nn.Linear(dim, dim)

    def forward(self, h, receivers):
        gate = torch.sigmoid(self.lin_g(h))
        msg = self.lin_m(h)
        skip = self.lin_s(h)
        agg = torch.zeros_like(msg)
        agg.index_add_(0, receivers, gate * msg)
        return agg + skip
"""


def test_gated_messages_scattered_in_place_are_no_site():
    assert found(GATED_SCATTER, "ADP009") == []
