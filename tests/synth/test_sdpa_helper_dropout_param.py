"""The Annotated Transformer's attention: a module-level function that takes the dropout module
as a parameter (``attention(q, k, v, mask=mask, dropout=self.dropout)``) and applies it only when
passed (``if dropout is not None: p_attn = dropout(p_attn)``).

In the function the call ``dropout(p_attn)`` is the caller's ``nn.Dropout``, so the attention is
found; the fused call reads the rate from the parameter (``dropout.p if dropout.training``, there
is no ``self`` in the function), 0 without one; any other callable passed as ``dropout`` (another
caller's) or one with hooks goes to the original.  The module is written for this test; the fixed
one runs beside the original in float64, forward and backward, counting fused calls.
"""

from __future__ import annotations

import textwrap

import pytest

torch = pytest.importorskip("torch")

from sdpa_modules import Counter, assert_same_step, load, sdpa_fixed  # noqa: E402

F64 = torch.float64

ANNOTATED = textwrap.dedent('''
    import math

    import torch
    import torch.nn as nn


    def attention(query, key, value, mask=None, dropout=None):
        d_k = query.size(-1)
        scores = torch.matmul(query, key.transpose(-2, -1)) / math.sqrt(d_k)
        if mask is not None:
            scores = scores.masked_fill(mask == 0, -1e9)
        p_attn = scores.softmax(dim=-1)
        if dropout is not None:
            p_attn = dropout(p_attn)
        return torch.matmul(p_attn, value)


    class MultiHeadedAttention(nn.Module):
        def __init__(self, h=2, d_model=16, dropout=0.0):
            super().__init__()
            self.d_k = d_model // h
            self.h = h
            self.linears = nn.ModuleList([nn.Linear(d_model, d_model) for _ in range(4)])
            self.dropout = nn.Dropout(p=dropout)

        def forward(self, query, key, value, mask=None):
            if mask is not None:
                mask = mask.unsqueeze(1)
            nbatches = query.size(0)
            query, key, value = [
                lin(x).view(nbatches, -1, self.h, self.d_k).transpose(1, 2)
                for lin, x in zip(self.linears, (query, key, value))
            ]
            x = attention(query, key, value, mask=mask, dropout=self.dropout)
            x = x.transpose(1, 2).contiguous().view(nbatches, -1, self.h * self.d_k)
            return self.linears[-1](x)
''')


def test_the_rate_is_read_from_the_parameter():
    fixed = sdpa_fixed(ANNOTATED)
    assert "dropout_p=(dropout.p if dropout.training else 0.0) if dropout is not None else 0.0" in fixed
    assert "self.dropout" not in fixed.split("class MultiHeadedAttention")[0]  # the function has no self
    assert "not isinstance(dropout, torch.nn.Dropout)" in fixed


def _pair():
    original, new = load(ANNOTATED, "orig"), load(sdpa_fixed(ANNOTATED), "new")
    counter = Counter(new)
    torch.manual_seed(0)
    a = original["MultiHeadedAttention"]().to(F64)
    b = new["MultiHeadedAttention"]().to(F64)
    b.load_state_dict(a.state_dict(), strict=True)
    return original, new, a, b, counter


@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("training", [False, True])
def test_the_module_matches_the_original(masked, training):
    _, _, a, b, counter = _pair()
    a.train(training), b.train(training)  # dropout rate 0: training changes nothing but the flag
    x = torch.randn(2, 6, 16, dtype=F64)
    kwargs = {}
    if masked:
        kwargs["mask"] = torch.ones(2, 6, 6, dtype=torch.bool).tril()  # causal: every query keeps a key
    assert_same_step(a, b, [x, x, x], **kwargs)  # query, key and value from one tensor
    assert counter.calls == 1


@pytest.mark.parametrize("dropout", ["none", "callable"])
def test_other_callers_of_the_function(dropout):
    # no dropout: the fused path with rate 0; a callable that is no nn.Dropout: the original
    original, new, _, _, counter = _pair()
    given = {"none": None, "callable": (lambda t: t * 0.5)}[dropout]
    q = torch.randn(2, 2, 5, 4, dtype=F64)
    assert_same_step(original["attention"], new["attention"], [q, q.flip(-1), q.flip(-2)], dropout=given)
    assert counter.calls == (1 if dropout == "none" else 0)
