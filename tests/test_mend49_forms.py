"""ADP010's two open precision cases after mend47 (session 42, mend49).  The fixtures are ours.

- A term added to the scores *after* the scale (``$bias``, or the pattern's ``$mask``) must not
  be a function of the scores' values: ``e + e.sigmoid()``, ``e + softmax(e)``, a row statistic
  of them, or a module of this file whose forward reads the scores it is handed.  SDPA's
  ``attn_mask`` is given before the scores.  A relative-position table, an ALiBi slope tensor
  times a distance, the caller's additive mask, a mask sized by the scores, and a module of this
  file that reads the scores it is handed only for their sizes all stay sites.
- A factor on the scores (``$mul``, ``$pre``) whose (query, key) shape comes from a broadcast
  of two operands with axes added at different places (``(pos[:, None] - pos[None]).abs()``,
  ``x.unsqueeze(-1) - x.unsqueeze(-2)``) is a value per query and key: SDPA's ``scale=`` takes
  a number, and a per-head or per-query factor folds into q; a pairwise one folds into neither.
  Added to the scores, the same distance is an additive bias and stays a site (ALiBi).
"""

from __future__ import annotations

from corpus_forms import found, line_of, load_fixture, rules

from adopter.synth import fix_text

AFTER_SCALE = """\
import math
import torch
from torch import nn


class Mix(nn.Module):
    def __init__(self, width, length, heads):
        super().__init__()
        self.width = width
        self.to_q = nn.Linear(width, width)
        self.to_k = nn.Linear(width, width)
        self.to_v = nn.Linear(width, width)
        self.rel = nn.Parameter(torch.zeros(heads, length, length))
        self.slopes = nn.Parameter(torch.ones(heads, 1, 1))

    def forward(self, h, mask, pos):
        a, b, c = self.to_q(h), self.to_k(h), self.to_v(h)
        e = torch.matmul(a, b.transpose(-2, -1)) / math.sqrt(self.width)
        BEFORE
        e = e + TERM
        w = torch.softmax(e, dim=-1)
        return torch.matmul(w, c)
"""


def _after(term: str, before: str = "") -> str:
    lines = "".join(f"        {line}\n" for line in before.split("\n")) if before else ""
    return AFTER_SCALE.replace("TERM", term).replace("        BEFORE\n", lines)


VALUED_TERMS = [
    ("e.mean(-1, keepdim=True)", ""),
    ("e.sigmoid()", ""),
    ("torch.softmax(e, dim=-1)", ""),
    ("g", "g = torch.tanh(e.detach()) * 2"),
    ("torch.where(e > 0, 0.0, -1e4)", ""),
]


def test_a_term_after_the_scale_computed_from_the_scores_values_is_no_mask():
    for term, before in VALUED_TERMS:
        assert found(_after(term, before), "ADP010") == [], term


GIVEN_TERMS = [
    ("self.rel", ""),
    ("self.slopes * (pos[:, None] - pos[None, :]).abs() * -1", ""),
    ("mask", ""),
    ("torch.ones(e.size(-2), e.size(-1)).triu(1) * -1e4", ""),
    ("band", "n, m = e.shape[-2:]\nband = torch.ones(n, m, device=e.device).triu(1) * -1e4"),
]


def test_a_term_after_the_scale_given_before_the_scores_stays_a_site():
    for term, before in GIVEN_TERMS:
        code = _after(term, before)
        hits = found(code, "ADP010")
        assert [f.line for f in hits] == [line_of(code, "e = torch.matmul")], term


def test_the_caller_mask_after_the_scale_is_still_fixed():
    code = _after("mask")
    text = fix_text(code, "model.py", rules("ADP010")).text
    assert "scaled_dot_product_attention(" in text and "attn_mask=mask" in text


MODULE_BIAS = """\
import math
import torch
from torch import nn


class RelPos(nn.Module):
    def __init__(self, heads, buckets=32):
        super().__init__()
        self.emb = nn.Embedding(buckets, heads)

    def forward(self, qk_dots):
        i, j, device = *qk_dots.shape[-2:], qk_dots.device
        q_pos = torch.arange(i, device=device)
        k_pos = torch.arange(j, device=device)
        rel = (k_pos[None, :] - q_pos[:, None]).clamp(0, 31)
        return self.emb(rel).permute(2, 0, 1)


class Attn(nn.Module):
    def __init__(self, width, heads):
        super().__init__()
        self.width = width
        self.rel_pos = RelPos(heads)

    def forward(self, a, b, c):
        e = torch.matmul(a, b.transpose(-2, -1)) / math.sqrt(self.width)
        e = e + self.rel_pos(e)
        w = torch.softmax(e, dim=-1)
        return torch.matmul(w, c)
"""


def test_a_module_reading_the_scores_only_for_their_sizes_gives_a_bias():
    hits = found(MODULE_BIAS, "ADP010")
    assert [f.line for f in hits] == [line_of(MODULE_BIAS, "e = torch.matmul")]
    text = fix_text(MODULE_BIAS, "model.py", rules("ADP010")).text
    assert "attn_mask=self.rel_pos(" in text


def test_a_module_reading_the_scores_values_gives_no_mask():
    valued = MODULE_BIAS.replace("return self.emb(rel).permute(2, 0, 1)",
                                 "return self.emb(rel).permute(2, 0, 1) * qk_dots.sigmoid()")
    assert found(valued, "ADP010") == []
    assigned = MODULE_BIAS.replace("        i, j, device = *qk_dots.shape[-2:], qk_dots.device\n",
                                   "        i, j, device = *qk_dots.shape[-2:], qk_dots.device\n"
                                   "        qk_dots = qk_dots.softmax(-1)\n")
    assert found(assigned, "ADP010") == []


# The factor after the scale (``$mul``) and the de-stationary factor before a term (``$pre``).
FACTOR = """\
import math
import torch
from torch import nn


class Plain(nn.Module):
    def __init__(self, width, heads):
        super().__init__()
        self.width = width
        self.to_q = nn.Linear(width, width)
        self.to_k = nn.Linear(width, width)
        self.to_v = nn.Linear(width, width)
        self.temp = nn.Parameter(torch.ones(1, heads, 1, 1))

    def forward(self, h, rel, pos, tau):
        a, b, c = self.to_q(h), self.to_k(h), self.to_v(h)
        BEFORE
        e = torch.matmul(a, b.transpose(-2, -1))
        e = e + rel
        e = e / math.sqrt(self.width) * FACTOR
        w = torch.softmax(e, dim=-1)
        return torch.matmul(w, c)
"""


def _factor(factor: str, before: str = "", code: str = FACTOR) -> str:
    lines = "".join(f"        {line}\n" for line in before.split("\n")) if before else ""
    return code.replace("FACTOR", factor).replace("        BEFORE\n", lines)


PAIRWISE_FACTORS = [
    ("dist", "dist = (pos[:, None] - pos[None]).abs()"),
    ("(pos[:, None] - pos[None, :]).abs()", ""),
    ("dist", "dist = torch.exp(-(pos.unsqueeze(-1) - pos.unsqueeze(-2)) ** 2)"),
    ("dist", "dist = (pos[..., :, None] - pos[..., None, :]).abs()"),
    ("dist", "qp, kp = pos, pos + 1\ndist = 1 / (1 + (qp[:, None] - kp[None, :]).abs())"),
]


def test_a_factor_broadcast_from_two_axes_is_no_factor():
    for factor, before in PAIRWISE_FACTORS:
        assert found(_factor(factor, before), "ADP010") == [], before or factor


FOLDING_FACTORS = [
    ("2.0", ""),
    ("self.temp", ""),
    ("tau.unsqueeze(1).unsqueeze(1)", ""),
    ("gain", "gain = pos[:, None] * 0.5"),
    ("gain", "gain = self.temp * tau[:, None, None, None]"),
    ("gain", "gain = tau[:, None] * tau[:, None]"),
]


def test_a_factor_the_same_for_every_key_still_folds():
    for factor, before in FOLDING_FACTORS:
        assert len(found(_factor(factor, before), "ADP010")) == 1, before or factor


DESTATIONARY = FACTOR.replace(
    "        e = torch.matmul(a, b.transpose(-2, -1))\n        e = e + rel\n        e = e / math.sqrt(self.width) * FACTOR\n",
    "        e = torch.matmul(a, b.transpose(-2, -1)) * FACTOR\n        e = e + rel\n        e = e / math.sqrt(self.width)\n")


def test_the_destationary_factor_broadcast_from_two_axes_is_no_factor():
    assert "* FACTOR\n" in DESTATIONARY
    assert len(found(_factor("tau.unsqueeze(1).unsqueeze(1)", code=DESTATIONARY), "ADP010")) == 1
    assert found(_factor("dist", "dist = (pos[:, None] - pos[None]).abs()", code=DESTATIONARY), "ADP010") == []


# One query per batch row (concare's final attention): the query reshaped to a column
# ``(batch, hidden, 1)`` -- a size-1 last axis, as ``unsqueeze(-1)`` makes it -- the keys-first
# scores ``k @ q`` squeezed with ``squeeze(dim=-1)``, a softmax over time, and the probabilities
# unsqueezed back before the value product: the keys-first attention of one query
# (structure/singletons.py).  The softmax's dim counts from the front of scores whose rank the
# code does not fix (k's rank is the caller's): reported, the fix declines.
ONE_QUERY = """\
import torch
from torch import nn


class OneQuery(nn.Module):
    def __init__(self, dim=8, hidden=6, dropout=0.5):
        super().__init__()
        self.hidden = hidden
        self.W_q = nn.Linear(dim, hidden)
        self.W_k = nn.Linear(dim, hidden)
        self.W_v = nn.Linear(dim, hidden)
        self.dropout = nn.Dropout(p=dropout)
        self.softmax = nn.Softmax(dim=1)

    def forward(self, x):
        batch_size, time_step, _ = x.size()
        q = torch.reshape(self.W_q(x[:, -1, :]), (batch_size, self.hidden, 1))
        e = torch.matmul(self.W_k(x), q).squeeze(dim=-1)
        a = self.softmax(e)
        a = self.dropout(a)
        v = torch.matmul(a.unsqueeze(1), self.W_v(x)).squeeze(dim=1)
        return v, a
"""


def test_one_query_reshaped_to_a_column_is_keys_first_attention():
    hits = found(ONE_QUERY, "ADP010")
    assert [(f.line, f.end_line) for f in hits] == [
        (line_of(ONE_QUERY, "e = torch.matmul"), line_of(ONE_QUERY, "v = torch.matmul"))]
    result = fix_text(ONE_QUERY, "model.py", rules("ADP010"))
    assert result.text == ONE_QUERY
    assert [reason for _, reason in result.skipped] == [
        "the softmax's dim counts from the front of scores whose rank the code does not fix"]


def test_the_squeeze_dim_keyword_reads_as_its_positional_form():
    unsqueezed = ONE_QUERY.replace(
        "q = torch.reshape(self.W_q(x[:, -1, :]), (batch_size, self.hidden, 1))",
        "q = self.W_q(x[:, -1, :]).unsqueeze(dim=-1)")
    assert len(found(unsqueezed, "ADP010")) == 1
    viewed = ONE_QUERY.replace(
        "q = torch.reshape(self.W_q(x[:, -1, :]), (batch_size, self.hidden, 1))",
        "q = self.W_q(x[:, -1, :]).view(batch_size, self.hidden, 1)")
    assert len(found(viewed, "ADP010")) == 1


def test_a_query_reshaped_with_no_size_one_axis_is_no_single_query():
    # no axis written as 1 (``(batch, hidden // 2, 2)``): nothing says the squeezed axis is
    # size 1, so the scores are not known to be one query's
    wide = ONE_QUERY.replace("(batch_size, self.hidden, 1)", "(batch_size, self.hidden // 2, 2)")
    assert found(wide, "ADP010") == []
    # the 1 written at another axis than the squeezed one
    other = ONE_QUERY.replace("(batch_size, self.hidden, 1)", "(batch_size, 1, self.hidden)")
    assert found(other, "ADP010") == []


# Scores chosen by a string setting (concare's ``if self.attention_type == "add": ... elif
# self.attention_type == "mul": ... elif ... == "concat": ...``): where every construction of the
# class in the file passes one literal key, the ``if`` goes the way that key takes, as an int
# setting's axis does (graph.FlowBuilder._fixed_literal).  Built with "mul", the scores are the
# one-query product above; read with every arm, the squeezed scores' definition the softmax
# sees is the last arm's, and the one-query layout is not read.  The fixer declines (the if's
# other arms compute other scores): reported, not fixed.
KEYED = """\
import torch
from torch import nn


class Pool(nn.Module):
    def __init__(self, dim, hidden, kind="add"):
        super().__init__()
        self.kind = kind
        self.hidden = hidden
        self.to_q = nn.Linear(dim, hidden)
        self.to_k = nn.Linear(dim, hidden)
        self.to_v = nn.Linear(dim, hidden)
        self.score = nn.Linear(hidden, 1)
        self.softmax = nn.Softmax(dim=1)

    def forward(self, x):
        batch_size, time_step, _ = x.size()
        q, k = self.to_q(x[:, -1, :]), self.to_k(x)
        if self.kind == "add":
            e = self.score(torch.tanh(q[:, None] + k)).squeeze(-1)
        elif self.kind == "mul":
            e = torch.matmul(k, torch.reshape(q, (batch_size, self.hidden, 1))).squeeze(dim=-1)
        elif self.kind == "concat":
            e = self.score(torch.tanh(torch.cat((q[:, None].expand_as(k), k), -1)[..., :self.hidden])).squeeze(-1)
        else:
            raise ValueError(self.kind)
        a = self.softmax(e)
        return torch.matmul(a.unsqueeze(1), self.to_v(x)).squeeze(1)


class User(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.pool = Pool(dim, dim, kind=KIND)

    def forward(self, x):
        return self.pool(x)
"""


def test_a_string_setting_every_construction_fixes_decides_the_scores():
    code = KEYED.replace("KIND", '"mul"')
    hits = found(code, "ADP010")
    assert [(f.line, f.end_line) for f in hits] == [
        (line_of(code, "e = torch.matmul"), line_of(code, "return torch.matmul(a.unsqueeze(1)"))]
    result = fix_text(code, "model.py", rules("ADP010"))
    assert result.text == code and len(result.skipped) == 1


def test_a_string_setting_the_file_does_not_fix_decides_nothing():
    assert found(KEYED.replace("KIND", '"add"'), "ADP010") == []  # the additive scores
    two = KEYED.replace("KIND", '"mul"').replace(
        "        self.pool = Pool(dim, dim, kind=\"mul\")\n",
        "        self.pool = Pool(dim, dim, kind=\"mul\")\n        self.other = Pool(dim, dim)\n")
    assert "self.other = Pool(dim, dim)" in two
    assert found(two, "ADP010") == []  # one construction leaves the "add" default
    alone = KEYED[:KEYED.index("class User")]
    assert found(alone, "ADP010") == []  # built nowhere here: another file's key is unknown


PLAIN_KEYED = KEYED.replace(
    "e = torch.matmul(k, torch.reshape(q, (batch_size, self.hidden, 1))).squeeze(dim=-1)",
    "e = torch.matmul(q.unsqueeze(-2), k.transpose(-2, -1)).squeeze(-2)")


def test_an_arm_no_construction_takes_is_no_site():
    # the plain product in the "mul" arm was read with every arm before; built only with "add",
    # the scores are additive (tanh) ones on every run of the model the file builds
    code = PLAIN_KEYED.replace("KIND", '"add"')
    assert "q.unsqueeze(-2), k.transpose(-2, -1)" in code
    assert found(code, "ADP010") == []
    assert len(found(PLAIN_KEYED.replace("KIND", '"mul"'), "ADP010")) == 1


# A term of the scores' values under an ``if`` (rafix55's OwnScale): no mask, so the site is the
# path without it; the patch keeps the original under the test, and computes the same attention
# on both paths.
OWN_SCALE = """\
import torch
from torch import nn


class OwnScale(nn.Module):
    def forward(self, q, k, v, m=None):
        s = q @ k.transpose(-2, -1)
        if m is not None:
            s = s + (1 - m) * s.detach().abs().amax()
        return s.softmax(dim=-1) @ v
"""


def test_a_term_of_the_scores_under_an_if_sends_that_path_to_the_original():
    import torch

    fixed = fix_text(OWN_SCALE, "model.py", rules("ADP010")).text
    assert "if m is not None:" in fixed and "scaled_dot_product_attention(q, k, v, scale=1.0)" in fixed
    a, b = load_fixture(OWN_SCALE, "OwnScale")(), load_fixture(fixed, "OwnScale")()
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 3, 5, 4, dtype=torch.float64) for _ in range(3))
    m = torch.randint(0, 2, (5, 5)).double()
    for mask in (None, m):
        torch.testing.assert_close(b(q, k, v, mask), a(q, k, v, mask), rtol=1e-12, atol=1e-12)
