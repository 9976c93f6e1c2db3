"""rafix31 (session 25): scores changed by an item assignment between the product and the softmax
(or between the softmax and the value product).  The graph read ``dot[:, i, i] = v`` as a store
into something else, so a match went on as if ``dot`` kept its value: reformer's shared-QK
attention (the diagonal set to a finite -5e4 beside a causal fill of -finfo.max, two fill levels:
a causal row whose other keys are all masked attends itself, which no SDPA mask gives) was
reported.  Now an item assignment into a local value redefines it (``FlowBuilder._stored_items``),
except a plain mask fill -- a masking value written where every other fill of the name in the
function writes the same (Longformer's global rows set to finfo.min beside a masked_fill of
finfo.min): one fill level at positions a boolean mask states, still reported.  Fixtures ours."""

from __future__ import annotations

import textwrap

import pytest
from corpus_forms import found

HEAD = textwrap.dedent("""
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    SELF_VALUE = -5e4


    def max_neg_value(t):
        return -torch.finfo(t.dtype).max
""")


def _module(body: str, params: str = "qk, v, mask=None") -> str:
    return HEAD + textwrap.dedent('''
        class Attend(nn.Module):
            def __init__(self, causal=False):
                super().__init__()
                self.causal = causal

            def forward(self, {params}):
                b, n, d = qk.shape
        ''').format(params=params) + textwrap.indent(textwrap.dedent(body), " " * 8)


SHARED_QK = '''
    dot = torch.einsum("bie,bje->bij", qk, qk) * (d ** -0.5)
    i = torch.arange(n)
    dot[:, i, i] = SELF_VALUE
    masked_value = max_neg_value(dot)
    if mask is not None:
        dot.masked_fill_(~mask, masked_value)
    if self.causal:
        r, c = torch.triu_indices(n, n, 1)
        dot[:, r, c] = masked_value
    dot = dot.softmax(dim=-1)
    return torch.einsum("bij,bje->bie", dot, v)
'''

TWO_LITERALS = '''
    s = q @ k.transpose(-2, -1) / d ** 0.5
    s[:, :, torch.arange(n), torch.arange(n)] = -5e4
    s = s.masked_fill(~mask, -1e9)
    p = F.softmax(s, dim=-1)
    return p @ v
'''

NOT_A_FILL = '''
    s = q @ k.transpose(-2, -1) / d ** 0.5
    s[..., 0] = 0.0
    p = F.softmax(s, dim=-1)
    return p @ v
'''

AFTER_SOFTMAX = '''
    s = q @ k.transpose(-2, -1) / d ** 0.5
    p = F.softmax(s, dim=-1)
    p[..., 0] = 0.0
    return p @ v
'''

ADDED_IN_PLACE = '''
    s = q @ k.transpose(-2, -1) / d ** 0.5
    s[..., :4] += bias
    p = F.softmax(s, dim=-1)
    return p @ v
'''


@pytest.mark.parametrize("body, params", [
    (SHARED_QK, "qk, v, mask=None"),  # reformer's FullQK: finite diagonal beside -finfo.max
    (TWO_LITERALS, "qk, q, k, v, mask"),  # two literal levels
    (NOT_A_FILL, "qk, q, k, v"),  # a score set to a value, no mask
    (AFTER_SOFTMAX, "qk, q, k, v"),  # the probabilities changed before the value product
], ids=["shared-qk", "two-literal-levels", "not-a-fill", "after-softmax"])
def test_scores_changed_by_an_item_assignment_are_not_attention(body, params):
    assert not found(_module(body, params), "ADP010")


GLOBAL_ROWS = '''
    s = torch.bmm(q, k.transpose(1, 2))
    s = s.view(b, 2, n, n).transpose(1, 2)
    s[rows[0], rows[1], :, :] = torch.finfo(s.dtype).min
    s = s.transpose(1, 2)
    s = s.masked_fill(pad[:, None, None, :], torch.finfo(s.dtype).min)
    s = s.view(b * 2, n, n)
    p = F.softmax(s, dim=-1, dtype=torch.float32)
    return torch.bmm(p, v)
'''

ONE_INF_LEVEL = '''
    s = q @ k.transpose(-2, -1) / d ** 0.5
    s[:, :, torch.arange(n), torch.arange(n)] = float("-inf")
    s = s.masked_fill(~mask, float("-inf"))
    p = F.softmax(s, dim=-1)
    return p @ v
'''

OTHER_TENSOR = '''
    hide = torch.zeros(n, n, dtype=torch.bool, device=q.device)
    hide[:, -1] = True
    s = q @ k.transpose(-2, -1) / d ** 0.5
    s = s.masked_fill(hide, float("-inf"))
    p = F.softmax(s, dim=-1)
    return p @ v
'''

CACHE = '''
    self.cache[:b, :n] = k
    keys = self.cache[:b, :n]
    s = q @ keys.transpose(-2, -1) / d ** 0.5
    p = F.softmax(s, dim=-1)
    return p @ v
'''


def test_a_bias_added_into_a_block_is_attention():
    # (session 26, rafix32, by the lead's ruling: `s[..., :4] += bias` adds a bias that is zero
    # outside the block -- an additive step; tests/test_rafix32_forms.py)
    assert found(_module(ADDED_IN_PLACE, "qk, q, k, v, bias"), "ADP010")


@pytest.mark.parametrize("body, params", [
    (GLOBAL_ROWS, "qk, q, k, v, rows, pad"),  # Longformer: one finfo.min level
    (ONE_INF_LEVEL, "qk, q, k, v, mask"),  # one -inf level, item and masked_fill alike
    (OTHER_TENSOR, "qk, q, k, v"),  # an item assignment into the mask, not the scores
    (CACHE, "qk, q, k, v"),  # a cache on self written before the keys are read from it
], ids=["global-rows", "one-inf-level", "other-tensor", "cache-on-self"])
def test_plain_mask_fills_and_other_stores_still_report(body, params):
    assert len(found(_module(body, params), "ADP010")) == 1


# ---------------------------------------------------------------------------------------------
# A grouped branch the guard sends to the original that lays q out again (bitnet's GQA helper:
# `if num_head_groups > 1 or force_grouped: query = rearrange(query, "b (h g) n d -> b g h n
# d", g=...); similarity = einsum(query, key, "b g h n d, ...")`): on the fused path that branch
# did not run, so `query` is the value from before the if, which the other branch's scores read
# too.  Main declined ("line .. also reads `query`, which only the original attention computes":
# only recasts counted).  Near-miss: the branch giving q new values (`query = query * 2`) stays
# declined.

GROUPED = '''\
import torch
import torch.nn as nn
import torch.nn.functional as F
from einops import einsum, rearrange


def grouped_attention(query, key, value, mask=None, is_causal=None, force_grouped=False):
    query = rearrange(query, "b n h d -> b h n d")
    key = rearrange(key, "b s h d -> b h s d")
    value = rearrange(value, "b s h d -> b h s d")
    bq, hq, nq, dq = query.shape
    bk, hk, nk, dk = key.shape
    scale = query.size(-1) ** 0.5
    query = query / scale
    groups = hq // hk
    if groups > 1 or force_grouped:
        REBIND
        similarity = einsum(query, key, "b g h n d, b h s d -> b h n s")
    else:
        similarity = einsum(query, key, "b h n d, b h s d -> b h n s")  # site
    if is_causal:
        mask = torch.ones((bq, nq, nk), device=query.device, dtype=torch.bool).tril_()
    if mask is not None:
        if mask.ndim == 3:
            mask = rearrange(mask, "b n s -> b () n s")
        similarity.masked_fill_(~mask, torch.finfo(similarity.dtype).min)
    attention = F.softmax(similarity / scale, dim=-1)
    out = einsum(attention, value, "b h n s, b h s d -> b h n d")
    return rearrange(out, "b h n d -> b n h d")


class Attn(nn.Module):
    def __init__(self, dim=16, heads=4, kv_heads=4):
        super().__init__()
        self.heads, self.kv_heads = heads, kv_heads
        self.q = nn.Linear(dim, dim)
        self.k = nn.Linear(dim, dim // heads * kv_heads)
        self.v = nn.Linear(dim, dim // heads * kv_heads)

    def forward(self, x, causal=None, mask=None):
        q = rearrange(self.q(x), "b n (h d) -> b n h d", h=self.heads)
        k = rearrange(self.k(x), "b n (h d) -> b n h d", h=self.kv_heads)
        v = rearrange(self.v(x), "b n (h d) -> b n h d", h=self.kv_heads)
        return grouped_attention(q, k, v, mask=mask, is_causal=causal)
'''

RELAYOUT = 'query = rearrange(query, "b (h g) n d -> b g h n d", g=groups)'


@pytest.mark.parametrize("kv_heads, causal, padded", [
    (4, True, False), (4, None, True), (4, None, False),  # the fused path
    (2, None, True), (2, True, False),  # grouped: the original path
])
def test_a_grouped_branch_that_relays_q_out_is_fixed_and_matches(kv_heads, causal, padded):
    import torch
    from corpus_forms import finding_at, float64_pair, rules

    from adopter.synth import fix_text

    code = GROUPED.replace("REBIND", RELAYOUT)
    assert finding_at(code, "ADP010", "# site") is not None
    fixed = fix_text(code, "model.py", rules("ADP010")).text
    assert "scaled_dot_product_attention(" in fixed
    a, b = float64_pair(code, fixed, "Attn", kv_heads=kv_heads)
    torch.manual_seed(1)
    x = torch.randn(2, 5, 16, dtype=torch.float64, requires_grad=True)
    mask = None
    if padded:
        mask = torch.ones(2, 5, 5, dtype=torch.bool)
        mask[1, :, 3:] = False  # padding keys, every row keeps some
    for training in (False, True):  # (no dropout: the same numbers in both modes)
        a.train(training)
        b.train(training)
        torch.testing.assert_close(b(x, causal, mask), a(x, causal, mask), rtol=0, atol=1e-12)
        ga = torch.autograd.grad(a(x, causal, mask).sum(), [x, *a.parameters()])
        gb = torch.autograd.grad(b(x, causal, mask).sum(), [x, *b.parameters()])
        for left, right in zip(gb, ga):
            torch.testing.assert_close(left, right, rtol=0, atol=1e-12)


@pytest.mark.parametrize("kv_heads, causal, padded", [
    (4, True, False), (4, None, True), (4, None, False),  # the fused path (the grouped branch,
])                                                          # not laid out for groups, cannot run)
def test_a_grouped_branch_giving_q_new_values_reads_q_from_before_the_if(kv_heads, causal, padded):
    # (sites82) the grouped branch, sent to the original, gives q new values; the fused branch
    # holds only the product and reads q as it was before the if, as the original does there
    import torch
    from corpus_forms import finding_at, float64_pair, rules

    from adopter.synth import fix_text

    code = GROUPED.replace("REBIND", "query = query * 2")
    assert finding_at(code, "ADP010", "# site") is not None
    fixed = fix_text(code, "model.py", rules("ADP010")).text
    assert "scaled_dot_product_attention(" in fixed
    a, b = float64_pair(code, fixed, "Attn", kv_heads=kv_heads)
    torch.manual_seed(1)
    x = torch.randn(2, 5, 16, dtype=torch.float64, requires_grad=True)
    mask = None
    if padded:
        mask = torch.ones(2, 5, 5, dtype=torch.bool)
        mask[1, :, 3:] = False
    torch.testing.assert_close(b(x, causal, mask), a(x, causal, mask), rtol=0, atol=1e-12)
    ga = torch.autograd.grad(a(x, causal, mask).sum(), [x, *a.parameters()])
    gb = torch.autograd.grad(b(x, causal, mask).sum(), [x, *b.parameters()])
    for left, right in zip(gb, ga):
        torch.testing.assert_close(left, right, rtol=0, atol=1e-12)


def test_a_grouped_branch_giving_q_new_values_beside_a_fused_branch_doing_more_stays_declined():
    # near-miss: the fused branch also assigns a name of its own, so the grouped branch's new q
    # stays a value only the original computes
    from corpus_forms import finding_at, rules

    from adopter.synth import fix_text

    code = GROUPED.replace("REBIND", "query = query * 2").replace(
        "    else:\n        similarity = einsum(",
        "    else:\n        width = dq\n        similarity = einsum(")
    assert "width = dq" in code
    assert finding_at(code, "ADP010", "# site") is not None
    result = fix_text(code, "model.py", rules("ADP010"))
    assert "scaled_dot_product_attention(" not in result.text


# ---------------------------------------------------------------------------------------------
# A second fill under an if of its own inside the mask step's if (VITS' `if mask is not None:
# scores = scores.masked_fill(mask == 0, -1e4); if self.block_length is not None: scores =
# scores.masked_fill(band == 0, -1e4)`): the guard sends `mask is not None and block_length is
# not None` to the original, and the fused path takes the single fill.  Main declined ("the if
# at line .. does more than an attention step").  Near-miss: the inner if's test reads the
# scores (stays declined).

BANDED = '''\
import math

import torch
import torch.nn as nn
import torch.nn.functional as F


class Banded(nn.Module):
    def __init__(self, channels=16, heads=2, block_length=None):
        super().__init__()
        self.heads, self.k_channels = heads, channels // heads
        self.block_length = block_length
        self.conv_q = nn.Conv1d(channels, channels, 1)
        self.conv_k = nn.Conv1d(channels, channels, 1)
        self.conv_v = nn.Conv1d(channels, channels, 1)

    def forward(self, x, mask=None):
        q, k, v = self.conv_q(x), self.conv_k(x), self.conv_v(x)
        b, d, t = k.size()
        q = q.view(b, self.heads, self.k_channels, t).transpose(2, 3)
        k = k.view(b, self.heads, self.k_channels, t).transpose(2, 3)
        v = v.view(b, self.heads, self.k_channels, t).transpose(2, 3)
        scores = torch.matmul(q / math.sqrt(self.k_channels), k.transpose(-2, -1))
        if mask is not None:
            scores = scores.masked_fill(mask == 0, -1e4)
            if INNER:
                band = torch.ones_like(scores).triu(-self.block_length).tril(self.block_length)
                scores = scores.masked_fill(band == 0, -1e4)
        p = F.softmax(scores, dim=-1)  # site
        out = torch.matmul(p, v)
        return out.transpose(2, 3).contiguous().view(b, d, t)
'''


@pytest.mark.parametrize("block_length, masked", [(None, True), (None, False), (1, True), (1, False)])
def test_a_second_fill_under_its_own_if_goes_to_the_original_and_matches(block_length, masked):
    import torch
    from corpus_forms import finding_at, float64_pair, rules

    from adopter.synth import fix_text

    code = BANDED.replace("INNER", "self.block_length is not None")
    assert finding_at(code, "ADP010", "# site") is not None
    fixed = fix_text(code, "model.py", rules("ADP010")).text
    assert "scaled_dot_product_attention(" in fixed
    assert "mask is not None and self.block_length is not None" in fixed
    a, b = float64_pair(code, fixed, "Banded", block_length=block_length)
    torch.manual_seed(1)
    x = torch.randn(2, 16, 6, dtype=torch.float64, requires_grad=True)
    mask = None
    if masked:
        mask = torch.ones(2, 1, 6, 6, dtype=torch.float64)
        mask[1, :, :, 4:] = 0  # padding keys, every row keeps some
    for training in (False, True):
        a.train(training)
        b.train(training)
        torch.testing.assert_close(b(x, mask), a(x, mask), rtol=0, atol=1e-12)
        ga = torch.autograd.grad(a(x, mask).sum(), [x, *a.parameters()])
        gb = torch.autograd.grad(b(x, mask).sum(), [x, *b.parameters()])
        for left, right in zip(gb, ga):
            torch.testing.assert_close(left, right, rtol=0, atol=1e-12)


def test_an_inner_if_reading_the_scores_stays_declined():
    from corpus_forms import finding_at, rules

    from adopter.synth import fix_text

    code = BANDED.replace("INNER", "scores.shape[-1] > 4")
    assert finding_at(code, "ADP010", "# site") is not None
    assert "scaled_dot_product_attention(" not in fix_text(code, "model.py", rules("ADP010")).text
