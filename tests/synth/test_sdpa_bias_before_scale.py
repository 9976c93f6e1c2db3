"""ADP010 on Transformer-XL-style relative-position attention: the position scores added to
the content scores *before* the scale, ``(q_u @ k^T + shift(q_v @ p^T)) / sqrt(d)``.  That is
``q_u @ k^T * s + shift(...) * s``: the fused call takes the position term, scaled, as its
additive mask.  The probabilities are returned, cleared to None unless asked for (``if not
output_attentions: attn = None``): the fused path runs only when they are not.  The module is
written for this test; the fixed one runs beside the original in float64, forward and
backward, counting the fused calls.
"""

from __future__ import annotations

import textwrap

import pytest

torch = pytest.importorskip("torch")

from sdpa_modules import RULES, Counter, load, sdpa_fixed  # noqa: E402

from adopter.engine import analyze  # noqa: E402

F64 = torch.float64

REL_POS = textwrap.dedent('''
    import math

    import torch
    from torch import nn


    class RelPositionAttention(nn.Module):
        def __init__(self, dim=8, heads=2, dropout=0.0):
            super().__init__()
            self.heads, self.head_dim = heads, dim // heads
            self.to_q = nn.Linear(dim, dim)
            self.to_k = nn.Linear(dim, dim)
            self.to_v = nn.Linear(dim, dim)
            self.to_pos = nn.Linear(dim, dim, bias=False)
            self.content_bias = nn.Parameter(torch.randn(heads, dim // heads))
            self.position_bias = nn.Parameter(torch.randn(heads, dim // heads))
            self.dropout = nn.Dropout(dropout)

        def shift(self, x):
            # (b, h, i, 2i - 1) relative scores -> (b, h, i, i) absolute ones
            b, h, i, r = x.shape
            x = torch.nn.functional.pad(x, (1, 0))
            x = x.view(b, h, r + 1, i)[:, :, 1:].reshape(b, h, i, r)
            return x[..., : r // 2 + 1]

        def forward(self, x, pos, output_attentions=False):
            b, n, _ = x.shape
            q = self.to_q(x).view(b, n, self.heads, self.head_dim)
            k = self.to_k(x).view(b, n, self.heads, self.head_dim)
            v = self.to_v(x).view(b, n, self.heads, self.head_dim)
            p = self.to_pos(pos).view(1, -1, self.heads, self.head_dim)
            q_u = (q + self.content_bias).transpose(1, 2)
            q_v = (q + self.position_bias).transpose(1, 2)
            content = torch.matmul(q_u, k.permute(0, 2, 3, 1))
            position = self.shift(torch.matmul(q_v, p.permute(0, 2, 3, 1)))
            scores = (content + position) / math.sqrt(self.head_dim)
            attn = torch.softmax(scores, dim=-1)
            attn = self.dropout(attn)
            out = torch.matmul(attn, v.transpose(1, 2))
            out = out.transpose(1, 2).reshape(b, n, -1)
            if not output_attentions:
                attn = None
            return out, attn
''')


def _pair():
    original, new = load(REL_POS, "orig"), load(sdpa_fixed(REL_POS), "new")
    counter = Counter(new)
    torch.manual_seed(0)
    a = original["RelPositionAttention"]().to(F64)
    b = new["RelPositionAttention"]().to(F64)
    b.load_state_dict(a.state_dict(), strict=True)
    return a, b, counter


def test_the_position_term_is_the_scaled_mask_and_the_probabilities_guard_the_fused_path():
    patched = " ".join(sdpa_fixed(REL_POS).split())
    assert "attn_mask=position * (1 / math.sqrt(self.head_dim))" in patched
    assert "scale=1 / math.sqrt(self.head_dim)" in patched
    assert "k.permute(0, 2, 3, 1).transpose(-2, -1)" in patched
    assert patched.count("if ( output_attentions or ( False") == 1  # the fallback when the probabilities are wanted


@pytest.mark.parametrize("train", [False, True])
@pytest.mark.parametrize("output_attentions", [False, True])
def test_relative_position_attention_matches(train, output_attentions):
    a, b, counter = _pair()
    a.train(train)
    b.train(train)
    x = torch.randn(2, 5, 8, dtype=F64)
    pos = torch.randn(1, 9, 8, dtype=F64)  # 2n - 1 relative positions
    ins_a = [t.clone().requires_grad_(True) for t in (x, pos)]
    ins_b = [t.clone().requires_grad_(True) for t in (x, pos)]
    (out_a, attn_a), (out_b, attn_b) = a(*ins_a, output_attentions), b(*ins_b, output_attentions)
    # float64; each reduction is over at most 9 terms: the default float64 tolerances
    torch.testing.assert_close(out_b, out_a)
    if output_attentions:
        torch.testing.assert_close(attn_b, attn_a)
    else:
        assert attn_a is None and attn_b is None
    weight = torch.randn_like(out_a)
    (weight * out_a).sum().backward()
    (weight * out_b).sum().backward()
    for u, w in zip(ins_a, ins_b):
        torch.testing.assert_close(w.grad, u.grad)
    grads = dict(a.named_parameters())
    for name, param in b.named_parameters():
        torch.testing.assert_close(param.grad, grads[name].grad)
    assert counter.calls == (0 if output_attentions else 1)


def test_probabilities_returned_whatever_the_flag_still_block_the_fix():
    # without the clearing if, the probabilities are always read: found, not fixed
    source = REL_POS.replace("        if not output_attentions:\n            attn = None\n", "")
    assert source != REL_POS
    assert len(analyze(source, "attention.py", RULES).findings) == 1
    from adopter.synth import fix_text
    result = fix_text(source, "attention.py", RULES)
    assert not result.applied and "unconditionally" in result.skipped[0][1]
