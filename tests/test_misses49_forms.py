"""Research first-sight misses of session 35, read by what the code computes (misses49).  The
fixtures are ours.

- A ``baddbmm`` whose ``beta`` is a local name the ``if`` just before sets to 0 on one path and
  to 1 on a path that zero-fills the input (GPT-BigCode's CPU workaround: ``torch.empty`` with
  beta 0 on an accelerator, ``zeros_like`` with beta 1 on the CPU): on every path the input
  adds nothing, so the scores are ``alpha * (q @ k)`` (structure/zero_input.py).  Near-misses:
  the nonzero-beta path keeps a non-zero input (a bias), the zeros are written to after, beta
  a parameter.
- Partial rotary written per half with the rest of the features concatenated back
  (``x1, x2, x3 = x[..., :d], x[..., d:d * 2], x[..., d * 2:]``, casts, ``cat((x1 * c - x2 * s,
  x2 * c + x1 * s, x3), -1)``, hdit's ``apply_rotary_emb``): rotate-half RoPE of the first
  ``2d`` features (structure/partial_rope.py), reported (the kernel takes whole heads).
  Near-misses: halves cut at other points, a rest of another tensor or from another point,
  one table in both products, a half rebound under an ``if``.
- Dropout handed to an attention helper only in training (``dropout_fn = self.drop if
  self.training else None``, then ``helper(q, k, v, mask, dropout_fn)`` applying it when not
  None; SwissArmyTransformer's and GPT-Neo-style hooks): a Dropout outside training is the
  identity, so the helper's call is that layer's dropout (graph._training_dropout).
  Near-misses: another flag than ``self.training``, a layer that is no Dropout, the layer only
  outside training.
- A module function the file never calls but hands to a call (``registry.register(fn)``,
  unsloth's decode attention handed to its graph registry and to a forward factory): the callee
  runs it, so it is a root of the model flows (model._patched_method_roots).  Near-miss: one
  only stored as a table's value stays unread (research63's test), one only compared is no
  argument.
"""

from __future__ import annotations

import pytest
import torch
from corpus_forms import found, line_of, rules
from test_research63_forms import PATCHED

from adopter.synth import fix_text

ZEROED_INPUT = """\
import torch
from torch import nn


class FoldedAttention(nn.Module):
    def __init__(self, heads, head_dim):
        super().__init__()
        self.heads = heads
        self.scale = head_dim ** -0.5

    def forward(self, q, k, v):
        b, h, t, d = q.shape
        q = q.reshape(b * h, t, d)
        kt = k.reshape(b * h, t, d).transpose(1, 2)
        scores = torch.empty((b * h, t, t), device=q.device, dtype=q.dtype)
        if q.device.type == "cpu":
            scores = torch.zeros_like(scores)
            beta = 1
        else:
            beta = 0
        scores = torch.baddbmm(scores, q, kt, beta=beta, alpha=self.scale)
        probs = torch.softmax(scores, dim=-1)
        return torch.bmm(probs, v.reshape(b * h, t, d)).view(b, h, t, d)
"""


def _covers(code: str, rule: str, needle: str) -> bool:
    at = line_of(code, needle)
    return any(f.line <= at <= f.end_line for f in found(code, rule))


def test_baddbmm_on_zeros_or_with_beta_zero_is_the_scaled_product():
    assert _covers(ZEROED_INPUT, "ADP010", "probs = torch.softmax")


def test_the_fix_of_the_zeroed_input_attention_computes_the_same():
    result = fix_text(ZEROED_INPUT, "model.py", rules("ADP010"))
    assert result.applied and "scaled_dot_product_attention" in result.text
    original, patched = {}, {}
    exec(compile(ZEROED_INPUT, "orig.py", "exec"), original)  # noqa: S102 (our own fixture)
    exec(compile(result.text, "fixed.py", "exec"), patched)  # noqa: S102
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 3, 7, 8, dtype=torch.float64) for _ in range(3))
    want = original["FoldedAttention"](3, 8)(q, k, v)
    got = patched["FoldedAttention"](3, 8)(q, k, v)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)  # (float64, 7 keys)


@pytest.mark.parametrize("change", [
    # the beta-1 path adds a bias, not zeros
    ("scores = torch.zeros_like(scores)", "scores = torch.ones_like(scores)"),
    # the zeros written to after they are made
    ("            beta = 1\n", "            beta = 1\n            scores.add_(1.0)\n"),
    # beta set on one path only: its other value comes from before the if
    ("        else:\n            beta = 0\n", "        else:\n            pass\n"),
    # a non-finite beta: inf times the zeros is NaN, not nothing (review36)
    ("            beta = 1\n", "            beta = 1e999\n"),
])
def test_a_beta_whose_input_may_add_something_is_no_scaled_product(change):
    code = ZEROED_INPUT.replace(*change)
    assert code != ZEROED_INPUT
    assert found(code, "ADP010") == []


def test_a_beta_parameter_counts_only_where_the_if_sets_it_on_every_path():
    # (review36: both stores kept, so the branch reading runs; the parameter's own value
    # reaches the call only where a branch leaves it)
    code = ZEROED_INPUT.replace("def forward(self, q, k, v):", "def forward(self, q, k, v, beta=0.5):")
    assert code != ZEROED_INPUT and code.count("beta = ") == 2
    assert _covers(code, "ADP010", "probs = torch.softmax")  # (set on every path: the parameter is dead)
    kept = code.replace("        else:\n            beta = 0\n", "        else:\n            pass\n")
    assert kept.count("beta = ") == 1
    assert found(kept, "ADP010") == []


PARTIAL_ROPE = """\
import torch


def rotate_prefix(x, theta, conj=False):
    out_dtype = x.dtype
    d = theta.shape[-1]
    x1, x2, x3 = x[..., :d], x[..., d : d * 2], x[..., d * 2 :]
    x1, x2, theta = x1.float(), x2.float(), theta.float()
    cos, sin = torch.cos(theta), torch.sin(theta)
    sin = -sin if conj else sin
    y1 = x1 * cos - x2 * sin
    y2 = x2 * cos + x1 * sin
    y1, y2 = y1.to(out_dtype), y2.to(out_dtype)
    return torch.cat((y1, y2, x3), dim=-1)
"""


def test_partial_rotary_written_per_half_with_the_rest_kept_is_found():
    assert _covers(PARTIAL_ROPE, "ADP014", "y1 = x1 * cos - x2 * sin")
    assert fix_text(PARTIAL_ROPE, "model.py", rules("ADP014")).text == PARTIAL_ROPE  # (reported)


def test_the_partial_fixture_is_rotate_half_rope_of_the_prefix():
    space = {}
    exec(compile(PARTIAL_ROPE, "rope.py", "exec"), space)  # noqa: S102 (our own fixture)
    torch.manual_seed(0)
    x = torch.randn(2, 5, 16, dtype=torch.float64)
    theta = torch.randn(5, 6, dtype=torch.float64)
    head, rest = x[..., :12], x[..., 12:]
    cos, sin = torch.cos(theta).repeat(1, 2), torch.sin(theta).repeat(1, 2)
    rotated = torch.cat((-head[..., 6:], head[..., :6]), dim=-1)
    want = torch.cat((head * cos + rotated * sin, rest), dim=-1)
    torch.testing.assert_close(space["rotate_prefix"](x, theta), want)


@pytest.mark.parametrize("change", [
    ("x[..., d : d * 2]", "x[..., d : d * 3]"),  # the second half cut elsewhere
    ("x[..., d * 2 :]", "x[..., d :]"),  # the rest from another point
    ("x[..., d * 2 :]", "theta[..., d * 2 :]"),  # the rest of another tensor
    ("y1 = x1 * cos - x2 * sin", "y1 = x1 * cos - x2 * cos"),  # one table in both products
    ("    y1 = x1 * cos - x2 * sin\n", "    y1 = x1 * cos - x2 * sin\n    if conj:\n        x1 = x2\n"),
])
def test_prefix_rotations_that_are_no_rope_are_not_found(change):
    code = PARTIAL_ROPE.replace(*change)
    assert code != PARTIAL_ROPE
    assert found(code, "ADP014") == []


# review36: names bound again after a statement read them, and casts that truncate
HALVES = "    x1, x2, x3 = x[..., :d], x[..., d : d * 2], x[..., d * 2 :]\n"
REBOUND_AFTER_READ = [
    # y1 reads the second half as x1; x1 becomes the first half only for y2
    [(HALVES, HALVES.replace("x[..., :d], x[..., d : d * 2]", "x[..., d : d * 2], x[..., d : d * 2]")),
     ("    y1 = x1 * cos - x2 * sin\n", "    y1 = x1 * cos - x2 * sin\n    x1 = x[..., :d]\n")],
    # the first half cut with another d than the second's
    [("    d = theta.shape[-1]\n", "    d = 1\n"),
     (HALVES, "    x1 = x[..., :d]\n    d = theta.shape[-1]\n    x2, x3 = x[..., d : d * 2], x[..., d * 2 :]\n")],
]
TRUNCATING = [
    ("x1, x2, theta = x1.float(), x2.float(), theta.float()",
     "x1, x2, theta = x1.to(torch.int32), x2.to(torch.int32), theta.float()"),
    ("x1, x2, theta = x1.float(), x2.float(), theta.float()",
     "x1, x2, theta = x1.to(dtype=torch.int64), x2.float(), theta.float()"),
    ("x1, x2, theta = x1.float(), x2.float(), theta.float()",
     "x1, x2, theta = x1.type_as(theta), x2.float(), theta.float()"),  # (another tensor's dtype)
]


@pytest.mark.parametrize("changes", REBOUND_AFTER_READ + [[c] for c in TRUNCATING])
def test_halves_rebound_after_a_read_or_cast_to_integers_are_not_found(changes):
    code = PARTIAL_ROPE
    for change in changes:
        assert change[0] in code
        code = code.replace(*change)
    assert found(code, "ADP014") == []


def test_floating_point_casts_of_the_halves_keep_the_partial_rotary():
    promoted = PARTIAL_ROPE.replace("import torch\n", "from functools import reduce\n\nimport torch\n").replace(
        "    d = theta.shape[-1]\n",
        "    dtype = reduce(torch.promote_types, (x.dtype, theta.dtype, torch.float32))\n    d = theta.shape[-1]\n",
    ).replace("x1.float(), x2.float(), theta.float()", "x1.to(dtype), x2.to(torch.float32), theta.to(dtype)")
    assert "reduce(torch.promote_types" in promoted and "x1.to(dtype)" in promoted
    assert _covers(promoted, "ADP014", "y1 = x1 * cos - x2 * sin")


TRAINING_DROPOUT = """\
import math

import torch
import torch.nn.functional as F
from torch import nn


def plain_attention(q, k, v, mask, attention_dropout=None, scaled=True):
    if scaled:
        q = q / math.sqrt(q.shape[-1])
    scores = torch.matmul(q, k.transpose(-1, -2))
    scores = scores + mask
    probs = F.softmax(scores, dim=-1)
    if attention_dropout is not None:
        probs = attention_dropout(probs)
    return torch.matmul(probs, v)


class SelfAttention(nn.Module):
    def __init__(self, dim, heads, p):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.attention_dropout = nn.Dropout(p)
        self.use_dropout = True

    def forward(self, x, mask):
        b, t, c = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.heads, -1).permute(2, 0, 3, 1, 4)
        dropout_fn = self.attention_dropout if self.training else None
        out = plain_attention(q, k, v, mask, dropout_fn)
        return out.transpose(1, 2).reshape(b, t, c)
"""


def test_dropout_handed_in_only_in_training_is_the_attentions_dropout():
    assert _covers(TRAINING_DROPOUT, "ADP010", "probs = F.softmax")
    inline = TRAINING_DROPOUT.replace("plain_attention(q, k, v, mask, dropout_fn)",
                                      "plain_attention(q, k, v, mask, self.attention_dropout if self.training else None)")
    assert inline != TRAINING_DROPOUT
    assert _covers(inline, "ADP010", "probs = F.softmax")


@pytest.mark.parametrize("training", [False, True])
def test_the_fix_with_training_only_dropout_computes_the_same(training):
    result = fix_text(TRAINING_DROPOUT, "model.py", rules("ADP010"))
    assert result.applied and "dropout_p=" in result.text
    original, patched = {}, {}
    exec(compile(TRAINING_DROPOUT, "orig.py", "exec"), original)  # noqa: S102 (our own fixture)
    exec(compile(result.text, "fixed.py", "exec"), patched)  # noqa: S102
    torch.manual_seed(0)
    a = original["SelfAttention"](16, 2, 0.0).double()
    b = patched["SelfAttention"](16, 2, 0.0).double()
    b.load_state_dict(a.state_dict(), strict=True)
    a.train(training)
    b.train(training)
    x = torch.randn(2, 5, 16, dtype=torch.float64)
    mask = torch.randn(2, 1, 5, 5, dtype=torch.float64)
    torch.testing.assert_close(b(x, mask), a(x, mask), rtol=1e-12, atol=1e-12)  # (float64, 5 keys)


@pytest.mark.parametrize("change", [
    # another flag: the layer may be left out while training
    ("self.attention_dropout if self.training else None", "self.attention_dropout if self.use_dropout else None"),
    # a layer that is no Dropout
    ("self.attention_dropout if self.training else None", "self.qkv if self.training else None"),
    # the layer only outside training
    ("self.attention_dropout if self.training else None", "None if self.training else self.attention_dropout"),
])
def test_a_layer_handed_in_otherwise_is_no_dropout(change):
    code = TRAINING_DROPOUT.replace(*change)
    assert code != TRAINING_DROPOUT
    assert found(code, "ADP010") == []


# review36: the helper does something else when handed None (an else that scales, an early
# return), or applies the layer with another statement under the test: None is no identity
GUARD = "    if attention_dropout is not None:\n        probs = attention_dropout(probs)\n"


@pytest.mark.parametrize("other", [
    GUARD + "    else:\n        probs = probs * 0.5\n",
    GUARD + "    else:\n        return probs\n",
    GUARD.replace("probs = attention_dropout(probs)\n", "probs = attention_dropout(probs)\n        probs = probs * 2\n"),
    GUARD + "    mask = attention_dropout\n",
])
def test_a_helper_that_treats_none_otherwise_gets_no_training_dropout(other):
    assert GUARD in TRAINING_DROPOUT
    code = TRAINING_DROPOUT.replace(GUARD, other)
    assert found(code, "ADP010") == []


def test_a_function_handed_to_a_call_is_a_model_root():
    handed = PATCHED.replace("modeling.Attention.forward = patched_forward",
                             "modeling.registry.register_attention(patched_forward)")
    assert handed != PATCHED
    assert _covers(handed, "ADP014", "q_out = (q * cos)")
    assert _covers(handed, "ADP010", "probs = nn.functional.softmax")
    keyword = PATCHED.replace("modeling.Attention.forward = patched_forward",
                              "return modeling.build(attention=patched_forward)")
    assert _covers(keyword, "ADP010", "probs = nn.functional.softmax")


def test_a_function_only_compared_is_no_root():
    compared = PATCHED.replace("modeling.Attention.forward = patched_forward",
                               "return modeling.Attention.forward == patched_forward")
    assert compared != PATCHED
    assert found(compared, "ADP010") == []


def test_a_beta_too_large_for_a_float_is_no_number_and_no_crash():
    """An int beta beyond a float's range (review37: math.isfinite raised OverflowError
    inside the analysis) is no finite number: the baddbmm is not read as adding nothing."""
    code = ZEROED_INPUT.replace("            beta = 1\n", "            beta = 1" + "0" * 400 + "\n")
    assert code != ZEROED_INPUT
    assert not _covers(code, "ADP010", "scores = torch.baddbmm(")
