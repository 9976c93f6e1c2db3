"""ADP010 where the mask is built inside ``if exists(mask) or exists(context_mask):`` from
defaults given as lambdas (``default(mask, lambda: torch.ones(...))``, the Conformer's
relative-position attention): the statements that build the mask are kept, under the same test,
on the fused path; a lambda called where it is written reads nothing the attention computes.
The module is written for this test; the fixed one runs beside the original in float64, forward
and backward, train and eval, with no mask, a query mask, a context mask and both, counting the
fused calls."""

from __future__ import annotations

import textwrap

import pytest

torch = pytest.importorskip("torch")

from sdpa_modules import RULES, Counter, assert_same_step, load, sdpa_fixed  # noqa: E402

from adopter.synth import fix_text  # noqa: E402

F64 = torch.float64

SOURCE = textwrap.dedent('''
    import torch
    from torch import nn


    def exists(val):
        return val is not None


    def default(val, d):
        if exists(val):
            return val
        return d() if callable(d) else d


    class RelativeAttention(nn.Module):
        def __init__(self, dim=8, heads=2, max_pos=4, dropout=0.0):
            super().__init__()
            self.heads = heads
            self.scale = (dim // heads) ** -0.5
            self.to_q = nn.Linear(dim, dim, bias=False)
            self.to_kv = nn.Linear(dim, dim * 2, bias=False)
            self.max_pos = max_pos
            self.rel = nn.Embedding(2 * max_pos + 1, dim // heads)
            self.drop = nn.Dropout(dropout)

        def forward(self, x, context=None, mask=None, context_mask=None):
            n, has_context = x.shape[-2], exists(context)
            context = default(context, x)
            q, k, v = (self.to_q(x), *self.to_kv(context).chunk(2, dim=-1))
            q, k, v = (t.unflatten(-1, (self.heads, -1)).transpose(1, 2) for t in (q, k, v))
            dots = torch.einsum('b h i d, b h j d -> b h i j', q, k) * self.scale
            seq = torch.arange(n)
            dist = (seq[:, None] - seq[None, :]).clamp(-self.max_pos, self.max_pos) + self.max_pos
            pos = torch.einsum('b h n d, n r d -> b h n r', q, self.rel(dist).to(q)) * self.scale
            dots = dots + pos
            if exists(mask) or exists(context_mask):
                mask = default(mask, lambda: torch.ones(*x.shape[:2], dtype=torch.bool))
                context_mask = default(context_mask, mask) if not has_context else \\
                    default(context_mask, lambda: torch.ones(*context.shape[:2], dtype=torch.bool))
                mask_value = -torch.finfo(dots.dtype).max
                mask = mask[:, None, :, None] * context_mask[:, None, None, :]
                dots.masked_fill_(~mask, mask_value)
            attn = dots.softmax(dim=-1)
            attn = self.drop(attn)
            out = torch.einsum('b h i j, b h j d -> b h i d', attn, v)
            return out.transpose(1, 2).flatten(2)
''')


def test_the_mask_if_with_lambda_defaults_is_kept_on_the_fused_path():
    fixed = sdpa_fixed(SOURCE)
    assert "scaled_dot_product_attention(" in fixed
    # the mask is still built from the lambdas, under the same test, on the fused path
    fused = fixed.split("else:")[-1]
    assert "default(mask, lambda: torch.ones(*x.shape[:2], dtype=torch.bool))" in fused
    assert "dropout_p=self.drop.p if self.training else 0.0" in fused


def _masks(kind: str):
    query = torch.ones(2, 5, dtype=torch.bool)
    query[1, -1] = False
    keys = torch.ones(2, 5, dtype=torch.bool)
    keys[0, -2:] = False
    return {"none": {}, "query": {"mask": query}, "context": {"context_mask": keys},
            "both": {"mask": query, "context_mask": keys}}[kind]


@pytest.mark.parametrize("train", [False, True], ids=["eval", "train"])
@pytest.mark.parametrize("kind", ["none", "query", "context", "both"])
def test_matches_the_original_in_float64(kind, train):
    original, new = load(SOURCE, "orig"), load(sdpa_fixed(SOURCE), "new")
    counter = Counter(new)
    torch.manual_seed(0)
    a = original["RelativeAttention"]().to(F64).train(train)
    b = new["RelativeAttention"]().to(F64).train(train)
    b.load_state_dict(a.state_dict(), strict=True)
    x = torch.randn(2, 5, 8, dtype=F64)
    masks = _masks(kind)
    assert_same_step(a, b, [x], **masks)
    # a query mask hides whole rows: with gradients on, the original computes those (uniform
    # rows, gradients through them); without a fully hidden row the fused call runs
    fully_hidden = "mask" in masks
    assert counter.calls == (0 if fully_hidden else 1)
    with torch.no_grad():
        calls = counter.calls
        torch.testing.assert_close(b(x, **masks), a(x, **masks))
        assert counter.calls == calls + 1  # no gradients: the fused call, whatever the rows


def test_a_lambda_that_reads_the_scores_is_not_kept():
    # the default reads the scores the fused path never computes: not rewritten
    source = SOURCE.replace("lambda: torch.ones(*x.shape[:2], dtype=torch.bool)",
                            "lambda: torch.ones(*dots.shape[:1], n, dtype=torch.bool)")
    result = fix_text(source, "attention.py", RULES)
    assert not result.applied
