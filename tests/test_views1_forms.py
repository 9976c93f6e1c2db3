"""Forms found missing by hf39 in transformers 5.23.0 (XGLM, GroupViT).  The fixtures are ours.

- ADP010: the probabilities viewed per head and straight back before the dropout
  (``r = p.view(b, h, t, s)``; ``p = r.view(b * h, t, s)``) where the scores were last written
  by a view to that very shape (``s = (s.view(b, h, t, s) + mask).view(b * h, t, s)``):
  structure/rows.py makes the view back a copy of the probabilities (a view of a view is one
  view, and a view to the shape the probabilities have is the probabilities).  A view back to
  another shape regroups the elements and stays a view.  Reported, not fixed (the per-head view
  is a read of the probabilities the fused call never forms).
"""

from __future__ import annotations

import textwrap

import torch
from corpus_forms import covered, findings, rules
from torch import nn

from adopter.synth import fix_text

ROUND_TRIP = textwrap.dedent("""\
    import torch
    from torch import nn


    class HeadsRoundTrip(nn.Module):
        def __init__(self, dim, heads, p=0.0):
            super().__init__()
            self.heads = heads
            self.hd = dim // heads
            self.p = p
            self.q = nn.Linear(dim, dim)
            self.k = nn.Linear(dim, dim)
            self.v = nn.Linear(dim, dim)

        def forward(self, x, mask=None):
            b, t, _ = x.shape
            q = self.q(x).view(b, t, self.heads, self.hd).transpose(1, 2).reshape(b * self.heads, t, self.hd)
            k = self.k(x).view(b, t, self.heads, self.hd).transpose(1, 2).reshape(b * self.heads, t, self.hd)
            v = self.v(x).view(b, t, self.heads, self.hd).transpose(1, 2).reshape(b * self.heads, t, self.hd)
            w = torch.bmm(q, k.transpose(1, 2))
            if mask is not None:
                w = w.view(b, self.heads, t, t) + mask
                w = w.view(b * self.heads, t, t)
            if w.dtype == torch.float16:
                w = nn.functional.softmax(w, dim=-1, dtype=torch.float32).to(torch.float16)
            else:
                w = nn.functional.softmax(w, dim=-1)
            per_head = w.view(b, self.heads, t, t)
            w = per_head.view(b * self.heads, t, t)
            probs = nn.functional.dropout(w, p=self.p, training=self.training)
            return torch.bmm(probs, v)


    class HeadsToAnotherShape(nn.Module):
        def __init__(self, dim, heads):
            super().__init__()
            self.heads = heads
            self.q = nn.Linear(dim, dim)

        def forward(self, x, k, v, mask):
            b, t, _ = x.shape
            q = self.q(x)
            w = torch.bmm(q, k.transpose(1, 2))
            w = w.view(b, self.heads, t, t) + mask
            w = w.view(b * self.heads, t, t)
            w = nn.functional.softmax(w, dim=-1)
            per_head = w.view(b, self.heads, t, t)
            w = per_head.view(b * t, self.heads, t)
            probs = nn.functional.dropout(w, p=0.1, training=self.training)
            return torch.bmm(probs, v)
""")


def test_probabilities_viewed_per_head_and_back_are_attention():
    assert covered(ROUND_TRIP, "w = torch.bmm(q, k.transpose(1, 2))", "ADP010")
    # (one finding per softmax branch, as without the round trip)
    assert {f.class_name for f in findings(ROUND_TRIP, "ADP010")} == {"HeadsRoundTrip"}


def test_a_view_back_to_another_shape_is_not():
    # (b * t, heads, t): the rows of one head's queries are regrouped across heads
    assert not any(f.class_name == "HeadsToAnotherShape" for f in findings(ROUND_TRIP, "ADP010"))


def test_round_trip_is_reported_not_fixed():
    result = fix_text(ROUND_TRIP, "model.py", rules("ADP010"))
    assert not result.applied and result.text == ROUND_TRIP


def test_the_round_trip_is_the_identity_the_read_assumes():
    # the reading's premise on the real module: with the view back dropped (the probabilities
    # used as they are), outputs and gradients are equal in float64 with dropout off
    ns: dict = {}
    exec(compile(ROUND_TRIP, "model.py", "exec"), ns)
    torch.manual_seed(0)
    module = ns["HeadsRoundTrip"](12, 3).double().eval()
    x = torch.randn(2, 5, 12, dtype=torch.float64, requires_grad=True)
    mask = torch.randn(2, 1, 5, 5, dtype=torch.float64)
    out = module(x, mask)
    b, t, h, d = 2, 5, 3, 4
    q = module.q(x).view(b, t, h, d).transpose(1, 2).reshape(b * h, t, d)
    k = module.k(x).view(b, t, h, d).transpose(1, 2).reshape(b * h, t, d)
    v = module.v(x).view(b, t, h, d).transpose(1, 2).reshape(b * h, t, d)
    fused = nn.functional.scaled_dot_product_attention(q.view(b, h, t, d), k.view(b, h, t, d), v.view(b, h, t, d),
                                                       attn_mask=mask, scale=1.0).reshape(b * h, t, d)
    torch.testing.assert_close(out, fused, rtol=1e-10, atol=1e-12)
    (g1,) = torch.autograd.grad(out.sum(), x)
    (g2,) = torch.autograd.grad(fused.sum(), x)
    torch.testing.assert_close(g1, g2, rtol=1e-10, atol=1e-12)
