"""An index assignment into the scores (``scores[pad] = -1e9``, nemo's padded rows) changes a
value of the attention in place: the fused call has no argument for it, so the site stays
declined, and the decline says that (it used to call it a store for a visualization hook).
A store of the probabilities in an item of the module (``self.maps[0] = attn``) keeps the hook
reason, and the ``masked_fill`` spelling of the same fill is still rewritten."""

from __future__ import annotations

import textwrap

from corpus_forms import rules

from adopter.synth import fix_text

MODULE = textwrap.dedent("""
    import math
    import torch
    from torch import nn


    class Attn(nn.Module):
        def __init__(self, d, h):
            super().__init__()
            self.h = h
            self.maps = [None]
            self.qkv = nn.Linear(d, 3 * d)
            self.out = nn.Linear(d, d)

        def forward(self, x, pad):
            b, n, d = x.shape
            q, k, v = self.qkv(x).view(b, n, 3, self.h, d // self.h).permute(2, 0, 3, 1, 4)
            scores = torch.matmul(q, k.transpose(-2, -1)) / math.sqrt(d // self.h)
            FILL
            attn = torch.softmax(scores, dim=-1)
            STORE
            y = torch.matmul(attn, v)
            return self.out(y.transpose(1, 2).reshape(b, n, d))
""")


def _fix(fill: str, store: str = "pass"):
    code = MODULE.replace("FILL", fill).replace("STORE", store)
    fixed = fix_text(code, "model.py", rules("ADP010"))
    assert fixed.error is None
    return code, fixed


def test_index_assignment_into_the_scores_is_declined_as_a_change_not_a_store():
    code, fixed = _fix("scores[pad] = -1e9")
    assert fixed.text == code
    (why,) = [why for _, why in fixed.skipped]
    assert "changes `scores`" in why and "index assignment" in why and "masked_fill" in why
    assert "visualization" not in why


def test_an_item_of_the_module_storing_the_probabilities_keeps_the_hook_reason():
    code, fixed = _fix("scores = scores.masked_fill(pad, -1e9)", "self.maps[0] = attn")
    assert fixed.text == code
    (why,) = [why for _, why in fixed.skipped]
    assert "visualization" in why and "index assignment" not in why


def test_the_masked_fill_spelling_of_the_same_fill_is_rewritten():
    code, fixed = _fix("scores = scores.masked_fill(pad, -1e9)")
    assert fixed.text != code
    assert "scaled_dot_product_attention" in fixed.text
