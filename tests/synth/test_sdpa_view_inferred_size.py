"""A bias added to the scores in a folded layout whose view leaves one size to infer (issue 12,
session 47, sites88): ``attn = attn.view(B * H, T, -1) + position_bias`` then ``attn =
attn.view(B, H, T, -1)``, the gated relative-position bias of BEATs/WavLM-style encoders
written in the (B*H) layout.  ``expand`` cannot take the -1, so the fused call's mask expands
the bias to the shape that view gives the scores, read off a stand-in of them (a 0-d tensor
expanded to their shape from q and k: strides 0, any view allowed, no memory), and reshapes it
back as the code does.

The module is written for this test.  Original and patch run side by side in float64, eval and
training, with and without the bias and the padding fill, forward and backward, counting the
fused calls.  A bias that reads the scores' values is no mask step: the guard sends it to
the original."""

from __future__ import annotations

import textwrap

import pytest

torch = pytest.importorskip("torch")

from adopter.synth import fix_text  # noqa: E402
from sdpa_modules import RULES, Counter, assert_same_step, load, sdpa_fixed  # noqa: E402


GATED = textwrap.dedent('''
    import torch
    import torch.nn.functional as F
    from torch import nn


    class GatedBias(nn.Module):
        def __init__(self, width, heads):
            super().__init__()
            self.heads = heads
            self.qkv = nn.Linear(width, width * 3)
            self.gate = nn.Linear(width // heads, 1)

        def forward(self, x, position_bias=None, key_padding_mask=None):
            B, T, C = x.shape
            H = self.heads
            q, k, v = self.qkv(x).reshape(B, T, 3, H, C // H).permute(2, 0, 3, 1, 4)
            attn = torch.matmul(q, k.transpose(-2, -1)) * (C // H) ** -0.5
            if position_bias is not None:
                gate = torch.sigmoid(self.gate(q))
                position_bias = position_bias.unsqueeze(0) * gate
                position_bias = position_bias.view(B * H, T, -1)
                attn = attn.view(B * H, T, -1) + position_bias
                attn = attn.view(B, H, T, -1)
            if key_padding_mask is not None:
                attn = attn.masked_fill(key_padding_mask.unsqueeze(1).unsqueeze(2), float("-inf"))
            attn = F.softmax(attn, dim=-1)
            x = torch.matmul(attn, v)
            return x.transpose(1, 2).reshape(B, T, C)
''')


def test_the_view_with_an_inferred_size_is_read_off_a_stand_in_of_the_scores():
    fixed = sdpa_fixed(GATED)
    assert "q.new_empty(()).expand(" in fixed and ".view(B * H, T, -1).shape)" in fixed
    assert "attn = attn.view" not in fixed  # (no guard sends the bias away: the fused path takes it)


@pytest.mark.parametrize("biased", [True, False])
@pytest.mark.parametrize("padded", [True, False])
def test_the_folded_bias_rewrite_computes_what_the_original_does(biased, padded):
    fixed = sdpa_fixed(GATED)
    original, patched = load(GATED, "original"), load(fixed, "patched")
    counter = Counter(patched)
    torch.manual_seed(1)
    a = original["GatedBias"](8, 2).to(torch.float64)
    b = patched["GatedBias"](8, 2).to(torch.float64)
    b.load_state_dict(a.state_dict())
    torch.manual_seed(0)
    x = torch.randn(3, 5, 8, dtype=torch.float64)
    kwargs = {}
    if biased:
        kwargs["position_bias"] = torch.randn(2, 5, 5, dtype=torch.float64)
    if padded:
        pad = torch.zeros(3, 5, dtype=torch.bool)
        pad[0, 3:] = True
        pad[2, 1:] = True
        kwargs["key_padding_mask"] = pad
    for training in (False, True):
        a.train(training)
        b.train(training)
        before = counter.calls
        assert_same_step(a, b, [x], **kwargs)
        assert counter.calls == before + 1


def test_a_folded_bias_reading_the_scores_goes_to_the_original():
    # (no mask step: the guard sends every call with the bias to the original)
    source = GATED.replace("attn = attn.view(B * H, T, -1) + position_bias",
                           "attn = attn.view(B * H, T, -1) + attn.view(B * H, T, -1).mean(-1, keepdim=True)")
    assert source != GATED
    fixed = sdpa_fixed(source)
    assert "position_bias is not None" in fixed.split("else:")[0] and "new_empty" not in fixed
    original, patched = load(source, "original"), load(fixed, "patched")
    counter = Counter(patched)
    torch.manual_seed(1)
    a = original["GatedBias"](8, 2).to(torch.float64)
    b = patched["GatedBias"](8, 2).to(torch.float64)
    b.load_state_dict(a.state_dict())
    x = torch.randn(3, 5, 8, dtype=torch.float64)
    assert_same_step(a, b, [x], position_bias=torch.randn(2, 5, 5, dtype=torch.float64))
    assert counter.calls == 0


def test_a_bias_added_before_the_fold_keeps_the_inferred_size_declined():
    # (a bias before the fold may broadcast the scores wider than q and k say: the stand-in's
    # shape would not be the folded scores')
    source = GATED.replace("def forward(self, x, position_bias=None, key_padding_mask=None):",
                           "def forward(self, x, position_bias=None, key_padding_mask=None, extra=None):")
    source = source.replace("        if position_bias is not None:\n",
                            "        attn = attn + extra\n        if position_bias is not None:\n", 1)
    assert source.count("attn + extra") == 1
    result = fix_text(source, "attention.py", RULES)
    assert result.error is None
    assert "new_empty" not in result.text
