"""ADP010 where an if chooses the bias added to the scores, and one branch chooses zeros of the
scores' own shape (OLMo's eager attention: the causal bias, else the caller's mask, else
``torch.zeros_like(scores)``).  Adding those zeros changes nothing, so on the fused path that
branch binds None: no ``attn_mask``.  The module is written for this test; the fixed one runs
beside the original in float64, forward and backward, on each branch, counting the fused calls.
"""

from __future__ import annotations

import textwrap

import pytest

torch = pytest.importorskip("torch")

from sdpa_modules import RULES, Counter, assert_same_step, load, sdpa_fixed  # noqa: E402

from adopter.synth import fix_text  # noqa: E402

F64 = torch.float64

CHOSEN_BIAS = textwrap.dedent('''
    import math

    import torch
    from torch import nn


    class ChosenBiasAttention(nn.Module):
        def __init__(self, dim=8, heads=2, max_len=16):
            super().__init__()
            self.heads, self.head_dim = heads, dim // heads
            self.qkv = nn.Linear(dim, 3 * dim)
            causal = torch.triu(torch.full((max_len, max_len), torch.finfo(torch.float32).min), 1)
            self.register_buffer("causal_bias", causal.view(1, 1, max_len, max_len), persistent=False)

        def attend(self, q, k, v, attn_mask=None, dropout_p=0.0, is_causal=False):
            attn_weights = torch.matmul(q, k.transpose(-2, -1)) / math.sqrt(q.size(-1))

            if is_causal:
                assert attn_mask is None
                query_len, key_len = q.shape[-2], k.shape[-2]
                attn_bias = self.causal_bias[:, :, :query_len, :key_len]
            elif attn_mask is not None:
                attn_bias = attn_mask.to(q.dtype)
            else:
                attn_bias = ZEROS

            attn_weights += attn_bias
            attn_weights = nn.functional.softmax(attn_weights, dim=-1).to(q.dtype)
            attn_weights = nn.functional.dropout(attn_weights, p=dropout_p)
            return torch.matmul(attn_weights, v)

        def forward(self, x, bias=None, causal=False):
            b, n, _ = x.shape
            q, k, v = self.qkv(x).view(b, n, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
            out = self.attend(q, k, v, attn_mask=bias, is_causal=causal)
            return out.transpose(1, 2).reshape(b, n, -1)
''')

ZEROS_LIKE = CHOSEN_BIAS.replace("ZEROS", "torch.zeros_like(attn_weights)")
NEW_ZEROS = CHOSEN_BIAS.replace("ZEROS", "attn_weights.new_zeros(attn_weights.shape)")


@pytest.mark.parametrize("source", [ZEROS_LIKE, NEW_ZEROS], ids=["zeros_like", "new_zeros"])
def test_the_zeros_branch_binds_no_bias_on_the_fused_path(source):
    fixed = sdpa_fixed(source)
    assert "attn_bias = None" in fixed and "zeros" not in fixed
    assert "attn_mask=attn_bias" in fixed


@pytest.mark.parametrize("source", [ZEROS_LIKE, NEW_ZEROS], ids=["zeros_like", "new_zeros"])
@pytest.mark.parametrize("branch", ["causal", "mask", "neither"])
def test_each_branch_matches_the_original_with_one_fused_call(source, branch):
    original, new = load(source, "orig"), load(sdpa_fixed(source), "new")
    counter = Counter(new)
    torch.manual_seed(0)
    a = original["ChosenBiasAttention"]().to(F64)
    b = new["ChosenBiasAttention"]().to(F64)
    b.load_state_dict(a.state_dict(), strict=True)
    x = torch.randn(2, 5, 8, dtype=F64)
    kwargs = {"causal": branch == "causal"}
    if branch == "mask":
        kwargs["bias"] = torch.randn(2, 1, 5, 5, dtype=F64)  # an additive float bias
    assert_same_step(a, b, [x], **kwargs)
    assert counter.calls == 1


def test_zeros_read_again_after_the_attention_are_not_rewritten():
    # the zeros bias handed back as well: binding None there would change what the caller gets
    source = ZEROS_LIKE.replace("return torch.matmul(attn_weights, v)\n",
                                "return torch.matmul(attn_weights, v), attn_bias\n")
    source = source.replace("out = self.attend(", "out, _ = self.attend(")
    assert source.count(", attn_bias\n") == 1 and source.count("out, _ = ") == 1
    result = fix_text(source, "attention.py", RULES)
    assert "attn_bias = None" not in result.text


def test_zeros_of_another_shape_are_not_no_bias():
    # zeros of the value's shape are not zeros of the scores: the if keeps reading the attention
    source = CHOSEN_BIAS.replace("ZEROS", "torch.zeros_like(v)")
    result = fix_text(source, "attention.py", RULES)
    assert "attn_bias = None" not in result.text
