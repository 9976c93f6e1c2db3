"""ADP010 fixes whose whole-row guard read the wrong mask (session 45, helper mend79).  The
fixtures are ours.

1. Scores an einsum writes with their axes moved (``"bqhd,bkhd->bqkh"``: the keys on axis 2
   of 4) filled with -1e4 where a per-key-per-head mask ``keep[B, K, H]`` hides them.  A row
   whose every key is hidden (one head of one batch) gets uniform weights in the original; the
   fused call, adding -1e4, keeps the softmax of the row's own scores.  The guard sending such
   rows to the original must reduce the mask over the KEY axis of the layout the scores are
   written in (``.all(-2)`` here), not the last one (the heads).
2. A helper method computing the probabilities from its parameters, inlined by the fixer,
   whose fill mask ``m = mask[:, None, None, :] == 0`` it computes itself: the whole-row guard
   reads that mask before the call, in the caller's names (as for the same code written in
   forward), or the site is declined.  A helper that rebinds its mask parameter first gives
   no such reading: exact (or declined) all the same.

Each case runs in float64, train and eval, with a fully hidden row: the patched module equals
the original (outputs and input gradients), or the site is declined.
"""

from __future__ import annotations

import textwrap

import pytest
from corpus_forms import FusedCalls, edit, float64_pair, sdpa_fixed

torch = pytest.importorskip("torch")

MOVED = textwrap.dedent("""\
    import torch
    import torch.nn.functional as F
    from torch import nn


    class HeadsLast(nn.Module):
        def __init__(self, dim=12, heads=3, p=0.0):
            super().__init__()
            self.heads = heads
            self.proj = nn.Linear(dim, 3 * dim)
            self.o = nn.Linear(dim, dim)
            self.p = p

        def forward(self, x, keep=None):
            b, n, d = x.shape
            q, k, v = self.proj(x).reshape(b, n, 3, self.heads, d // self.heads).unbind(2)
            s = torch.einsum('bqhd,bkhd->bqkh', q, k)
            if keep is not None:
                hidden = ~keep[:, None].bool()
                s = s.masked_fill(hidden, -1e4)
            w = F.softmax(s, dim=2)
            w = F.dropout(w, p=self.p, training=self.training)
            out = torch.einsum('bqkh,bkhd->bqhd', w, v)
            return self.o(out.reshape(b, n, d))
""")

HELPER = textwrap.dedent("""\
    import torch
    from torch import nn


    class RelFill(nn.Module):
        def __init__(self, dim=12, heads=3, n=7, p=0.0):
            super().__init__()
            self.heads = heads
            self.d = dim // heads
            self.to_q = nn.Linear(dim, dim)
            self.to_k = nn.Linear(dim, dim)
            self.to_v = nn.Linear(dim, dim)
            self.pos = nn.Parameter(torch.randn(heads, n, self.d))
            self.drop = nn.Dropout(p)
            self.out = nn.Linear(dim, dim)

        def weights(self, x, mask):
            b, n, _ = x.shape
            q, k, v = (t.view(b, n, self.heads, self.d).transpose(1, 2)
                       for t in (self.to_q(x), self.to_k(x), self.to_v(x)))
            q = q * self.d ** -0.5
            content = torch.einsum("bhid,bhjd->bhij", q, k)
            bias = torch.einsum("bhid,hjd->bhij", q, self.pos)
            m = mask[:, None, None, :] == 0
            logits = (content + bias).masked_fill(m, -1e4)
            p = logits.softmax(dim=-1)
            return self.drop(p), v

        def forward(self, x, mask):
            p, v = self.weights(x, mask)
            o = torch.einsum("bhij,bhjd->bhid", p, v)
            return self.out(o.transpose(1, 2).reshape(x.shape))
""")


def _compare(code: str, fixed: str, cls: str, cases: list) -> list[int]:
    """Outputs and input gradients of the original and the patched module equal (float64,
    eval and train), per case; returns the fused calls per case and mode."""
    a, b = float64_pair(code, fixed, cls)
    calls = []
    for train in (False, True):
        a.train(train)
        b.train(train)
        for args in cases:
            xa = args[0].clone().requires_grad_(True)
            xb = args[0].clone().requires_grad_(True)
            counter = FusedCalls(b)
            oa, ob = a(xa, *args[1:]), b(xb, *args[1:])
            calls.append(counter.calls)
            torch.testing.assert_close(ob, oa, rtol=1e-12, atol=1e-12)
            ga, = torch.autograd.grad(oa.sum(), xa)
            gb, = torch.autograd.grad(ob.sum(), xb)
            torch.testing.assert_close(gb, ga, rtol=1e-10, atol=1e-10)
    return calls


def _keep(whole: bool):
    m = torch.ones(2, 6, 3, dtype=torch.long)
    m[1, 4:, 1] = 0  # some keys hidden from head 1 of batch 1
    if whole:
        m[0, :, 0] = 0  # every key hidden from head 0 of batch 0: whole rows
    return m


def test_moved_layout_whole_row_guard_reduces_the_key_axis():
    fixed = sdpa_fixed(MOVED)
    assert "scaled_dot_product_attention" in fixed
    torch.manual_seed(3)
    x = torch.randn(2, 6, 12, dtype=torch.float64)
    calls = _compare(MOVED, fixed, "HeadsLast", [(x, _keep(True)), (x, _keep(False)), (x, None)])
    # the whole-row case takes the original; the others the fused call, in both modes
    assert calls == [0, 1, 1, 0, 1, 1]


def test_moved_layout_with_the_keys_last_hidden_whole_for_one_head():
    # the same rows hidden on the heads' axis alone (every head of one key): no row is whole
    torch.manual_seed(4)
    fixed = sdpa_fixed(MOVED)
    keep = torch.ones(2, 6, 3, dtype=torch.long)
    keep[0, 2, :] = 0
    calls = _compare(MOVED, fixed, "HeadsLast", [(torch.randn(2, 6, 12, dtype=torch.float64), keep)])
    assert calls == [1, 1]


def _mask(whole: bool):
    m = torch.ones(2, 7, dtype=torch.float64)
    m[1, 5:] = 0.0
    if whole:
        m[0, :] = 0.0  # every key of batch 0 hidden
    return m


def test_helper_computed_fill_gets_the_whole_row_guard():
    fixed = sdpa_fixed(HELPER)
    assert "scaled_dot_product_attention" in fixed
    torch.manual_seed(5)
    x = torch.randn(2, 7, 12, dtype=torch.float64)
    calls = _compare(HELPER, fixed, "RelFill", [(x, _mask(True)), (x, _mask(False))])
    assert calls == [0, 1, 0, 1]


def test_helper_computed_fill_with_a_flag_gets_the_whole_row_guard():
    code = edit(HELPER, "def weights(self, x, mask):", "def weights(self, x, mask, with_v=False):")
    code = edit(code, "        return self.drop(p), v\n",
                "        if with_v:\n            return self.drop(p), v\n"
                "        else:\n            return self.drop(p)\n")
    code = edit(code, "p, v = self.weights(x, mask)", "p, v = self.weights(x, mask, with_v=True)")
    fixed = sdpa_fixed(code)
    assert "scaled_dot_product_attention" in fixed
    torch.manual_seed(6)
    x = torch.randn(2, 7, 12, dtype=torch.float64)
    calls = _compare(code, fixed, "RelFill", [(x, _mask(True)), (x, _mask(False))])
    assert calls == [0, 1, 0, 1]


def test_helper_rebinding_its_mask_first_is_exact_or_declined():
    # look-alike: the helper rebinds its mask parameter before making the fill's mask, so the
    # caller's `mask` is not what the fill reads; no guard can be written from it
    code = edit(HELPER, "        m = mask[:, None, None, :] == 0\n",
                "        mask = 1.0 - mask\n        m = mask[:, None, None, :] == 1\n")
    from corpus_forms import rules

    from adopter.synth import fix_text

    fixed = fix_text(code, "model.py", rules("ADP010")).text
    torch.manual_seed(7)
    x = torch.randn(2, 7, 12, dtype=torch.float64)
    if fixed != code:
        _compare(code, fixed, "RelFill", [(x, _mask(True)), (x, _mask(False))])
