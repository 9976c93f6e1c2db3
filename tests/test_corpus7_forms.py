"""Forms found missing by the blind batch corpus7 (pytorch-forecasting's TFT attention, timm's
separable convolutions, tsai's star imports): each test states the semantic fact the engine
now reads, and a near-miss it must still leave alone."""

from __future__ import annotations

import textwrap

from adopter.engine import analyze
from adopter.ruleset import load_rules, select_rules

SDPA = select_rules(load_rules(), ["ADP010"])

TFT_LIKE = textwrap.dedent('''
    import torch
    from torch import nn


    class ScaledDotProductAttention(nn.Module):
        def __init__(self, dropout: float = None, scale: bool = True, mask_bias=-1e9):
            super().__init__()
            if dropout is not None:
                self.dropout = nn.Dropout(p=dropout)
            else:
                self.dropout = dropout
            self.softmax = nn.Softmax(dim=SOFTMAX_DIM)
            self.scale = scale
            self.mask_bias = mask_bias

        def forward(self, q, k, v, mask=None):
            attn = torch.bmm(q, k.permute(0, 2, 1))
            if self.scale:
                dimension = torch.as_tensor(k.size(-1), dtype=attn.dtype, device=attn.device).sqrt()
                attn = attn / dimension
            if mask is not None:
                attn = attn.masked_fill(mask, self.mask_bias)
            attn = self.softmax(attn)
            if self.dropout is not None:
                attn = self.dropout(attn)
            output = torch.bmm(attn, v)
            return output, attn
''')


def _covered(code: str, needle: str, rules=SDPA) -> bool:
    line = next(n for n, text in enumerate(code.splitlines(), 1) if needle in text)
    return any(f.line <= line <= f.end_line for f in analyze(code, "model.py", rules).findings)


def test_attention_over_bmm_with_softmax_dim_2_an_unknown_mask_and_a_dropout_that_may_be_none():
    """pytorch-forecasting's ScaledDotProductAttention: ``nn.Softmax(dim=2)`` of scores whose
    rank a mask of unknown rank hides; the probabilities go (through the dropout) only into
    ``torch.bmm``, which takes 3-D operands, so dim 2 is the key axis.  ``self.dropout`` is an
    nn.Dropout or None (the else branch of ``if dropout is not None``): no other layer."""
    assert _covered(TFT_LIKE.replace("SOFTMAX_DIM", "2"), "attn = self.softmax(attn)")
    # dim 1 of the same 3-D scores is the query axis: not attention sdpa computes
    assert not _covered(TFT_LIKE.replace("SOFTMAX_DIM", "1"), "attn = self.softmax(attn)")
    # probabilities read by something other than bmm (a mean over heads) say nothing of the rank
    other = TFT_LIKE.replace("SOFTMAX_DIM", "2").replace(
        "output = torch.bmm(attn, v)", "output = torch.bmm(attn, v) + attn.mean(1, keepdim=True)")
    assert not _covered(other, "attn = self.softmax(attn)")


def test_a_layer_attribute_bound_to_none_on_one_branch_is_that_layer_or_nothing():
    """``self.dropout = dropout`` in the else of ``if dropout is not None`` binds None, as
    ``self.dropout = None`` does; a name reassigned inside ``if act is None:`` is not None after."""
    code = TFT_LIKE.replace("SOFTMAX_DIM", "-1")
    assert _covered(code, "attn = self.softmax(attn)")
    assert _covered(code.replace("self.dropout = dropout", "self.dropout = None"), "attn = self.softmax(attn)")
    # a dropout attribute that may be any module the caller passes is no dropout
    branches = ("        if dropout is not None:\n            self.dropout = nn.Dropout(p=dropout)\n"
                "        else:\n            self.dropout = dropout\n")
    guarded = "        if self.dropout is not None:\n            attn = self.dropout(attn)\n"
    assert branches in code and guarded in code
    passed = code.replace(branches, "        self.dropout = dropout\n").replace(guarded, "        attn = self.dropout(attn)\n")
    assert not _covered(passed, "attn = self.softmax(attn)")
    gelu = select_rules(load_rules(), ["ADP006"])
    reassigned = textwrap.dedent('''
        from torch import nn


        class Block(nn.Module):
            def __init__(self, dim, act=None):
                super().__init__()
                self.fc = nn.Linear(dim, dim)
                if act is None:
                    act = nn.GELU()
                    self.act = act
                else:
                    self.act = nn.GELU()

            def forward(self, x):
                return self.act(self.fc(x))
    ''')
    assert _covered(reassigned, "return self.act(self.fc(x))", gelu)
