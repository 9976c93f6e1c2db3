"""fix23 (session 22): declines of research attention that no exact fused rewrite exists for
say why in words a user reads without the planner's step names: a statement between the steps
that keeps the probabilities in another name returned to the callers (torch-molecule's molgpt),
one that reads the scores in a way that is no step (tranception's per-group ALiBi through
``split``), a scale under an if that also does other work (pytorch-forecasting's TFT once;
rafix38 now fixes the if that only names the divisor and scales), and a split over a caller and a helper whose steps store the probabilities on the module (espnet's
``self.attn``: the value kept for code outside the call, the reason it stays declined)."""

from __future__ import annotations

import textwrap

from corpus_forms import line_of, rules

from adopter.synth import fix_text

HEAD = textwrap.dedent("""
    import math

    import torch
    import torch.nn as nn
    import torch.nn.functional as F
""")


def _why(code: str) -> str:
    fixed = fix_text(code, "model.py", rules("ADP010"))
    assert fixed.error is None and fixed.text == code, fixed.text
    (why,) = [why for _, why in fixed.skipped]
    return why


KEPT = HEAD + textwrap.dedent("""
    class Causal(nn.Module):
        def __init__(self, dim, heads=2):
            super().__init__()
            self.heads = heads
            self.qkv = nn.Linear(dim, dim * 3)
            self.drop = nn.Dropout(0.1)

        def forward(self, x):
            b, n, c = x.shape
            q, k, v = self.qkv(x).view(b, n, 3, self.heads, -1).permute(2, 0, 3, 1, 4)
            att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(k.size(-1)))
            att = F.softmax(att, dim=-1)
            kept = att
            att = self.drop(att)
            y = att @ v
            return y.transpose(1, 2).reshape(b, n, c), kept
""")


def test_probabilities_kept_in_another_name_and_returned():
    why = _why(KEPT)
    assert why == (f"the statement at line {line_of(KEPT, 'kept = att')} uses a value of the attention: it keeps "
                   f"the probabilities (`att`) in `kept`, which line {line_of(KEPT, 'return y.')} returns (to callers "
                   "that may read them); the fused call never forms them")


GROUPED = HEAD + textwrap.dedent("""
    class GroupBias(nn.Module):
        def forward(self, s):
            i, j = s.shape[-2:]
            return -torch.arange(j, device=s.device).float().expand(i, j) * s.std()  # (its values: no bias alone)


    class Grouped(nn.Module):
        def __init__(self, dim, heads=4, groups=2):
            super().__init__()
            self.heads, self.groups = heads, groups
            self.qkv = nn.Linear(dim, dim * 3)
            self.biases = nn.ModuleList([GroupBias() for _ in range(groups)])

        def forward(self, x):
            b, n, c = x.shape
            q, k, v = self.qkv(x).view(b, n, 3, self.heads, -1).permute(2, 0, 3, 1, 4)
            sim = torch.einsum("b h i d, b h j d -> b h i j", q, k)
            parts = sim.split(self.heads // self.groups, dim=1)
            parts = [bias(part) + part for bias, part in zip(self.biases, parts)]
            sim = torch.cat(parts, dim=1)
            attn = sim.softmax(dim=-1)
            out = torch.einsum("b h i j, b h j d -> b h i d", attn, v)
            return out.transpose(1, 2).reshape(b, n, c)
""")


def test_scores_read_by_a_statement_that_is_no_step():
    why = _why(GROUPED)
    assert why == (f"the statement at line {line_of(GROUPED, 'parts = sim.split')} uses a value of the attention: it "
                   "reads the scores (`sim`) in a way that is no step of the attention (`parts = "
                   "sim.split(self.heads // self.groups, dim=1)`); the fused call never forms them")


SCALED_IF = HEAD + textwrap.dedent("""
    class Scaled(nn.Module):
        def __init__(self, scale=True):
            super().__init__()
            self.scale = scale

        def forward(self, q, k, v):
            attn = torch.bmm(q, k.permute(0, 2, 1))
            if self.scale:
                dimension = torch.as_tensor(k.size(-1), dtype=attn.dtype, device=attn.device).sqrt()
                attn = attn / dimension
            attn = attn.softmax(dim=-1)
            return torch.bmm(attn, v)
""")


def test_scale_under_an_if_that_also_computes_it():
    # rafix38 (session 29) folds a divisor named inside its if into q (``(dimension if
    # self.scale else 1.0)``, tests/test_rafix38_forms.py checks it exact); an if whose body
    # does more than name the divisor and scale is still declined, in words
    fixed = fix_text(SCALED_IF, "model.py", rules("ADP010"))
    assert fixed.error is None and "scaled_dot_product_attention(" in fixed.text
    more = SCALED_IF.replace("    attn = attn / dimension\n", "    attn = attn / dimension\n            self.seen = dimension\n")
    assert more != SCALED_IF
    why = _why(more)
    assert why == (f"the scale at line {line_of(more, 'attn = attn / dimension')} only runs under a condition "
                   f"(`if self.scale:` at line {line_of(more, 'if self.scale:')}, whose body also runs lines "
                   f"{line_of(more, 'dimension = ')}, {line_of(more, 'self.seen = ')})")


HANDED_STORED = HEAD + textwrap.dedent("""
    class Split(nn.Module):
        def __init__(self, dim, heads=2):
            super().__init__()
            self.heads = heads
            self.qkv = nn.Linear(dim, dim * 3)
            self.attn = None

        def forward_attention(self, value, scores, mask):
            if mask is not None:
                scores = scores.masked_fill(mask, -1e4)
            self.attn = torch.softmax(scores, dim=-1)
            return torch.matmul(self.attn, value)

        def forward(self, x, mask=None):
            b, n, c = x.shape
            q, k, v = self.qkv(x).view(b, n, 3, self.heads, -1).permute(2, 0, 3, 1, 4)
            scores = torch.matmul(q, k.transpose(-2, -1)) / math.sqrt(c // self.heads)
            n = n + 0
            out = self.forward_attention(v, scores, mask)
            return out.transpose(1, 2).reshape(b, n, c)
""")


def test_probabilities_stored_by_the_helper_handed_the_scores():
    why = _why(HANDED_STORED)
    line = line_of(HANDED_STORED, "self.attn = torch.softmax")
    assert why.startswith(f"the attention's values are stored in `self.attn` at line {line} on every call"), why
