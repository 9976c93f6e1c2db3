"""Forms found missing while checking the blind batch research38 (vision, speech, diffusion
and world-model reimplementations from eight packages new to the corpus).  The fixtures are
ours.

- ADP010: the scores flattened to rows for the softmax and viewed straight back to the size
  read of them before the dropout (DeepVoice3's ``sz = x.size()``; ``F.softmax(x.view(sz[0] *
  sz[1], sz[2]), dim=1)``; ``x.view(sz)``; ``F.dropout``; ``bmm``): structure/rows.py makes
  that view back a copy of the probabilities.  Only a view to the size read of the very scores
  the softmax's view flattened is read so: one to another shape (or another tensor's size)
  regroups the probabilities' elements.  Reported, not fixed (the size read of the scores is
  what the fused call never forms).
"""

from __future__ import annotations

import textwrap

from corpus_forms import covered, findings, rules

from adopter.synth import fix_text

# ---------------------------------------------------------------- ADP010: softmax over rows, viewed back

ROWS = textwrap.dedent("""\
    import torch
    import torch.nn.functional as F
    from torch import nn


    class RowsAttention(nn.Module):
        def __init__(self, dim, dropout=0.1):
            super().__init__()
            self.query_projection = nn.Linear(dim, dim)
            self.dropout = dropout

        def forward(self, query, keys, values):
            x = self.query_projection(query)
            x = torch.bmm(x, keys)
            sz = x.size()
            x = F.softmax(x.view(sz[0] * sz[1], sz[2]), dim=1)
            x = x.view(sz)
            x = F.dropout(x, p=self.dropout, training=self.training)
            x = torch.bmm(x, values)
            return x


    class RowsModuleDropout(nn.Module):
        def __init__(self):
            super().__init__()
            self.drop = nn.Dropout(0.1)

        def forward(self, q, k, v):
            s = torch.bmm(q, k.transpose(1, 2))
            size = s.size()
            p = F.softmax(s.reshape(-1, size[-1]), dim=-1).reshape(size)
            p = self.drop(p)
            return torch.bmm(p, v)


    class Regrouped(nn.Module):
        def forward(self, q, k, v):
            s = torch.bmm(q, k.transpose(1, 2))
            b, t, n = s.shape
            p = F.softmax(s, dim=-1)
            p = p.view(b, n, t)
            p = F.dropout(p, p=0.1, training=self.training)
            return torch.bmm(p, v)


    class OtherSize(nn.Module):
        def forward(self, q, k, v):
            s = torch.bmm(q, k.transpose(1, 2))
            sz = v.size()
            p = F.softmax(s.view(-1, s.size(-1)), dim=-1)
            p = p.view(sz)
            p = F.dropout(p, p=0.1, training=self.training)
            return torch.bmm(p, v)
""")


def test_softmax_over_rows_viewed_back_to_the_read_size():
    assert covered(ROWS, "x = F.softmax(x.view(sz[0] * sz[1], sz[2]), dim=1)", "ADP010")


def test_softmax_over_rows_reshaped_back_in_one_expression():
    assert covered(ROWS, "p = F.softmax(s.reshape(-1, size[-1]), dim=-1).reshape(size)", "ADP010")


def test_rows_are_reported_not_fixed():
    assert sorted(f.class_name for f in findings(ROWS, "ADP010")) == ["RowsAttention", "RowsModuleDropout"]
    result = fix_text(ROWS, "model.py", rules("ADP010"))
    assert not result.applied and result.text == ROWS


def test_views_after_the_softmax_that_regroup_the_probabilities():
    # a view to the transposed shape, or to the size of another tensor (the values): the
    # elements of a row are no longer one query's probabilities
    assert not covered(ROWS, "p = p.view(b, n, t)", "ADP010")
    assert not covered(ROWS, "p = p.view(sz)", "ADP010")
