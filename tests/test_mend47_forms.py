"""Mends of review45's three open findings (session 41, mend47).  The fixtures are ours.

- ADP015: a tied-embedding head helper called at two places of one forward, each call's logits
  into a cross-entropy of its own, is two places (misses59's split per call).  Each finding now
  starts at its own call of the helper in the caller -- the GUIDE's anchor, "the head call that
  produces the logits" -- so two losses written on one line are two findings at two columns,
  not two findings at the helper's line.  A helper the root calls once keeps its start (an
  ADP014 rotation helper's anchor is the helper's own line: tests/test_misses16_forms.py).
- ADP010: a factor on the scores (misses59's ``$pre`` before a bias, the older ``$mul`` after
  the scale) must fold into q or k: a number, what the caller passes (tau), a per-head
  temperature -- not a module tensor of its own (query, key) shape, nor a value computed
  through a pairwise product (``exp(-cdist(pos, pos))``, ``(q @ k^T).detach()``).  The term
  added before the scale (``$bias0``) must not be a function of the scores' values
  (``s + s.sigmoid()``); a mask built from their sizes only stays a site.
"""

from __future__ import annotations

from corpus_forms import found, line_of

TWO_HEADS_ONE_LINE = """\
import torch.nn as nn
import torch.nn.functional as F


class Scorer(nn.Module):
    def __init__(self, n_tokens=48, size=12):
        super().__init__()
        self.n_tokens = n_tokens
        self.tokens = nn.Embedding(n_tokens, size)

    def project(self, z):
        return z @ self.tokens.weight.t()

    def forward(self, ids, want):
        z = self.tokens(ids)
        one = F.cross_entropy(self.project(z).view(-1, self.n_tokens), want.view(-1)); two = F.cross_entropy(self.project(z + 1).view(-1, self.n_tokens), want.view(-1))
        return one + two
"""


def test_two_head_helper_calls_on_one_line_are_two_places_at_their_calls():
    hits = sorted(found(TWO_HEADS_ONE_LINE, "ADP015"), key=lambda f: f.column)
    at = line_of(TWO_HEADS_ONE_LINE, "one = F.cross_entropy")
    text = TWO_HEADS_ONE_LINE.splitlines()[at - 1]
    assert [(f.line, f.column) for f in hits] == [
        (at, text.index("self.project(z)") + 1), (at, text.index("self.project(z + 1)") + 1)]


TWO_HEADS_TWO_LINES = TWO_HEADS_ONE_LINE.replace(
    "; two = F.cross_entropy", "\n        two = F.cross_entropy")


def test_two_head_helper_calls_on_two_lines_each_start_at_their_own_line():
    hits = sorted(found(TWO_HEADS_TWO_LINES, "ADP015"), key=lambda f: f.line)
    assert [f.line for f in hits] == [line_of(TWO_HEADS_TWO_LINES, "one = F.cross_entropy"),
                                      line_of(TWO_HEADS_TWO_LINES, "two = F.cross_entropy")]
    assert all(f.end_line == f.line for f in hits)


ONE_HEAD_CALL = TWO_HEADS_ONE_LINE.replace(
    "; two = F.cross_entropy(self.project(z + 1).view(-1, self.n_tokens), want.view(-1))", "").replace(
    "return one + two", "return one")


def test_a_head_helper_called_once_keeps_one_finding_over_helper_and_call():
    hits = found(ONE_HEAD_CALL, "ADP015")
    assert len(hits) == 1
    assert hits[0].line == line_of(ONE_HEAD_CALL, "return z @ self.tokens")
    assert hits[0].end_line == line_of(ONE_HEAD_CALL, "one = F.cross_entropy")


# ADP010: misses59's de-stationary step ``$sp = $s0 * $pre; $b0 = $sp + $bias0`` and the older
# scale-then-multiply step ``$s2 = $s1 * $mul``.  A factor must be one SDPA can fold into q or k
# (a number, what the caller passes, a per-head temperature); the term added before the scale
# must not be a function of the scores' values -- but may read their sizes.
FACTOR_THEN_TERM = """\
import math
import torch
from torch import nn


class Mixer(nn.Module):
    def __init__(self, width, length, heads):
        super().__init__()
        self.width = width
        self.to_q = nn.Linear(width, width)
        self.to_k = nn.Linear(width, width)
        self.to_v = nn.Linear(width, width)
        self.grid = nn.Parameter(torch.randn(length, length))
        self.temp = nn.Parameter(torch.ones(heads, 1, 1))

    def forward(self, h, where, gain, term):
        a, b, c = self.to_q(h), self.to_k(h), self.to_v(h)
        BEFORE
        e = torch.matmul(a, b.transpose(-2, -1)) * FACTOR
        e = e + TERM
        e = e / math.sqrt(self.width)
        w = torch.softmax(e, dim=-1)
        return torch.matmul(w, c)
"""


def _form(factor="gain", term="term", before=""):
    code = FACTOR_THEN_TERM.replace("FACTOR", factor).replace("TERM", term)
    if before:
        return code.replace("        BEFORE\n", "".join(f"        {line}\n" for line in before.split("\n")))
    return code.replace("        BEFORE\n", "")


def test_a_factor_the_caller_passes_folds():
    code = _form("gain.unsqueeze(1).unsqueeze(1)")
    assert [f.line for f in found(code, "ADP010")] == [line_of(code, "e = torch.matmul")]


def test_a_number_or_a_per_head_temperature_factor_folds():
    assert len(found(_form("0.5"), "ADP010")) == 1
    assert len(found(_form("self.temp"), "ADP010")) == 1


def test_a_module_tensor_of_its_own_query_key_shape_is_no_factor():
    assert found(_form("self.grid"), "ADP010") == []


def test_a_factor_computed_through_a_pairwise_product_is_no_factor():
    assert found(_form("fall", before="fall = torch.exp(-torch.cdist(where, where))"), "ADP010") == []
    assert found(_form("(a @ b.transpose(-2, -1)).detach()"), "ADP010") == []


def test_a_term_computed_from_the_scores_values_is_no_mask():
    assert found(_form(term="e.sigmoid()"), "ADP010") == []
    assert found(_form(term="e.detach().mean(dim=-1, keepdim=True)"), "ADP010") == []


SIZED_TERMS = [
    ("band", "n, m = e.shape[-2:]\nband = torch.ones(n, m).triu(1) * -1e4"),
    ("torch.ones(e.size(-2), e.size(-1)).triu(1) * -1e4", ""),
    ("term[..., : e.size(-1)]", ""),
    ("torch.zeros_like(e).masked_fill(where > 0, -1e4)", ""),
]


def _sized(term, before):
    code = _form(term=term)
    if before:
        lead = "        e = torch.matmul(a, b.transpose(-2, -1)) * gain\n"
        code = code.replace(lead, lead + "".join(f"        {line}\n" for line in before.split("\n")))
    return code


def test_a_term_reading_only_the_scores_sizes_is_still_a_mask():
    for term, before in SIZED_TERMS:
        assert len(found(_sized(term, before), "ADP010")) == 1, term


PLAIN = """\
import math
import torch
from torch import nn


class Plain(nn.Module):
    def __init__(self, width, length, heads):
        super().__init__()
        self.width = width
        self.to_q = nn.Linear(width, width)
        self.to_k = nn.Linear(width, width)
        self.to_v = nn.Linear(width, width)
        self.grid = nn.Parameter(torch.randn(length, length))
        self.temp = nn.Parameter(torch.ones(1, heads, 1, 1))

    def forward(self, h, rel):
        a, b, c = self.to_q(h), self.to_k(h), self.to_v(h)
        e = torch.matmul(a, b.transpose(-2, -1))
        e = e + TERM
        e = e / math.sqrt(self.width) * FACTOR
        w = torch.softmax(e, dim=-1)
        return torch.matmul(w, c)
"""


def test_the_plain_form_refuses_a_term_of_the_scores_values_and_keeps_a_sized_one():
    assert found(PLAIN.replace("TERM", "e.sigmoid()").replace("FACTOR", "2.0"), "ADP010") == []
    sized = PLAIN.replace("TERM", "rel[..., : e.shape[-1]]").replace("FACTOR", "2.0")
    assert len(found(sized, "ADP010")) == 1


def test_the_plain_form_folds_a_per_head_temperature_and_refuses_a_query_key_tensor():
    assert len(found(PLAIN.replace("TERM", "rel").replace("FACTOR", "self.temp"), "ADP010")) == 1
    assert found(PLAIN.replace("TERM", "rel").replace("FACTOR", "self.grid"), "ADP010") == []


SCALE_FROM_SIZES = """\
import torch
from torch import nn


class Projected(nn.Module):
    def __init__(self, width):
        super().__init__()
        self.wq = nn.Parameter(torch.randn(width, width))
        self.wk = nn.Parameter(torch.randn(width, width))

    def forward(self, x, v, bias):
        q = x @ self.wq
        k = torch.einsum("bnd,de->bne", x, self.wk)
        scale = q.size(-1) ** -0.5
        e = torch.matmul(q, k.transpose(-2, -1))
        e = e + bias
        e = e / 2.0 * scale
        return torch.softmax(e, dim=-1) @ v
"""


def test_a_scale_read_off_the_sizes_of_projected_queries_folds():
    # q's size is no value per query and key; q projected by a module weight pairs nothing
    assert len(found(SCALE_FROM_SIZES, "ADP010")) == 1
    per_pair = SCALE_FROM_SIZES.replace("scale = q.size(-1) ** -0.5", "scale = torch.sigmoid(q @ k.transpose(-2, -1))")
    assert found(per_pair, "ADP010") == []


HELPERS_READ_SIZES = """\
import math
import torch
from torch import nn


def fallback(value, other):
    return value if value is not None else other


def attend(query, key, value, scale=None):
    factor = 1 / math.sqrt(query.size(-1)) if scale is None else scale
    e = query @ key.transpose(-2, -1) * factor
    e = e + band(e.shape)
    return torch.softmax(e, dim=-1) @ value


def band(size):
    n, m = size[-2:]
    return torch.ones(n, m).triu(1) * -1e4


class Turned(nn.Module):
    def __init__(self, width):
        super().__init__()
        self.to_q = nn.Linear(width, width)
        self.to_k = nn.Linear(width, width)

    def forward(self, x, turn, v, scale=None):
        q = torch.bmm(self.to_q(x), turn)
        k = torch.bmm(self.to_k(x), turn)
        return attend(q, k, v, fallback(scale, q.shape[-1] ** -0.5))
"""


def test_sizes_read_inside_inlined_helpers_are_no_values():
    # the scale reads q's size in a helper (q itself came from a product: no matter), and the
    # mask is built by a helper from the scores' shape passed in; a factor per query and key
    # handed through the same helpers is still refused
    hits = found(HELPERS_READ_SIZES, "ADP010")
    assert len(hits) == 1
    per_pair = HELPERS_READ_SIZES.replace("q.shape[-1] ** -0.5", "torch.sigmoid(q @ k.transpose(-2, -1))")
    assert found(per_pair, "ADP010") == []


def test_a_mask_a_helper_builds_from_the_scores_shape_before_the_scale_is_still_a_mask():
    # the helper's parameter is bound to ``e.shape`` (inlined): a size read, not a value read
    before = HELPERS_READ_SIZES.replace(
        "    e = query @ key.transpose(-2, -1) * factor\n    e = e + band(e.shape)\n",
        "    e = query @ key.transpose(-2, -1)\n    e = (e + band(e.shape)) * factor\n")
    assert "(e + band(e.shape)) * factor" in before
    assert len(found(before, "ADP010")) == 1
    valued = before.replace("band(e.shape)", "band(e.shape) + e.sigmoid()")
    assert found(valued, "ADP010") == []
