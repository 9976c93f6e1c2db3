"""Forms found missing while checking the blind batch corpus14a (attention-heavy research code:
speech ports, diffusion and GAN attention, vision transformers): each test states the semantic
fact the engine now reads, and near-misses it must still leave alone.  The fixtures are ours: a
rotate-half that concatenates on ``len(x.shape) - 1`` of the tensor it halves, and attention
whose relative bias is added by a conditional expression that otherwise keeps the scores."""

from __future__ import annotations

import pytest
from corpus_forms import finding_at as _finding
from corpus_forms import rules as _rules

from adopter.synth import fix_text

# ----------------------------------------------------------------- rotate-half on the rank - 1

RANK_DIM_ROPE = """\
import torch
from torch import nn


def rotate_half(t):
    a, b = t[..., : t.shape[-1] // 2], t[..., t.shape[-1] // 2 :]
    return torch.cat((-b, a), dim=len(t.shape) - 1)


def rotate(t, where, c, s):
    return t * c[:, where] + rotate_half(t) * s[:, where]  # rope-line


class Heads(nn.Module):
    def __init__(self, width, heads):
        super().__init__()
        self.heads = heads
        self.wq = nn.Linear(width, width)
        self.wk = nn.Linear(width, width)

    def forward(self, x, where, c, s):
        b, n, _ = x.shape
        q = self.wq(x).view(b, n, self.heads, -1)
        k = self.wk(x).view(b, n, self.heads, -1)
        return rotate(q, where, c, s), rotate(k, where, c, s)
"""


def test_rotate_half_on_the_rank_of_the_halved_tensor_is_rope():
    """``cat((-b, a), dim=len(t.shape) - 1)`` with a, b the halves of t's last axis: slices keep
    t's rank, so ``len(t.shape) - 1`` is the last axis, and the helper is rotate-half."""
    assert _finding(RANK_DIM_ROPE, "ADP014", "# rope-line") is not None


def test_rank_of_another_tensor_is_not_the_last_axis():
    # the rank of a tensor that is not the one halved says nothing about the parts' last axis
    other = RANK_DIM_ROPE.replace(
        "def rotate_half(t):", "def rotate_half(t, u=None):"
    ).replace("dim=len(t.shape) - 1", "dim=len(u.shape) - 1")
    assert _finding(other, "ADP014", "# rope-line") is None
    # nor is rank - 2 (the axis before the last)
    second = RANK_DIM_ROPE.replace("dim=len(t.shape) - 1", "dim=len(t.shape) - 2")
    assert _finding(second, "ADP014", "# rope-line") is None


# ----------------------------------------------------------------- an optional step as a choice

OPTIONAL_BIAS = """\
import torch
from torch import nn, einsum


class BiasedAttention(nn.Module):
    def __init__(self, width=32, heads=2, with_bias=True, n=64):  # (numbers by default: a plain scale=, mend52)
        super().__init__()
        self.heads = heads
        self.scale = (width // heads) ** -0.5
        self.with_bias = with_bias
        self.table = nn.Parameter(torch.zeros(heads, n, n))

    def forward(self, q, k, v):
        logits = einsum("b h i d, b h j d -> b h i j", q, k)
        logits = (logits + self.table) if self.with_bias else logits
        logits = logits * self.scale
        weights = logits.softmax(dim=-1)  # softmax-line
        return einsum("b h i j, b h j d -> b h i d", weights, v)
"""


def test_a_bias_added_by_a_conditional_expression_is_attention():
    """``s = (s + bias) if flag else s``: the bias is added only when the flag holds, the other
    choice keeps the scores -- the same as ``if flag: s = s + bias``, an optional additive bias."""
    assert _finding(OPTIONAL_BIAS, "ADP010", "# softmax-line") is not None


def test_a_choice_that_does_not_keep_the_scores_is_not_a_step():
    # the other choice is another tensor (not the scores): on that way the softmax is not of q.k
    other = OPTIONAL_BIAS.replace(
        "if self.with_bias else logits", "if self.with_bias else self.table"
    )
    assert _finding(other, "ADP010", "# softmax-line") is None
    # both choices change the scores (a tanh on the other way): no way is plain attention
    both = OPTIONAL_BIAS.replace(
        "if self.with_bias else logits", "if self.with_bias else logits.tanh()"
    )
    assert _finding(both, "ADP010", "# softmax-line") is None


def test_the_conditional_bias_is_rewritten_as_its_if_statement_form():
    """The fixer reads a step written as a conditional expression as the same code written as
    an ``if`` (session 18; before, it left the file as it was): the same rewrite, the bias under
    the flag (numerical checks: ``tests/synth/test_sdpa_choice_steps.py``)."""
    result = fix_text(OPTIONAL_BIAS, "model.py", _rules("ADP010"))
    as_if = OPTIONAL_BIAS.replace(
        "        logits = (logits + self.table) if self.with_bias else logits\n",
        "        if self.with_bias:\n            logits = logits + self.table\n",
    )
    fixed = fix_text(as_if, "model.py", _rules("ADP010")).text
    assert "attn_mask=self.table * self.scale if self.with_bias else None" in fixed
    assert result.text == fixed


# ----------------------------------------------------------------- where(c, fill, scores)

WHERE_FILL_FIRST = """\
import einx
import torch


def causal(q, k, v):
    q = q * q.shape[-1] ** -0.5
    lowest = -torch.finfo(q.dtype).max
    sim = torch.einsum("b h i d, b h j d -> b h i j", q, k)
    i, j = sim.shape[-2:]
    future = torch.ones((i, j), dtype=torch.bool, device=q.device).triu(j - i + 1)
    sim = torch.where(future, lowest, sim)  # fill-first
    return torch.einsum("b h i j, b h j d -> b h i d", sim.softmax(dim=-1), v)


def causal_kept(q, k, v):
    q = q * q.shape[-1] ** -0.5
    lowest = -torch.finfo(q.dtype).max
    sim = torch.einsum("b h i d, b h j d -> b h i j", q, k)
    i, j = sim.shape[-2:]
    past = torch.ones((i, j), dtype=torch.bool, device=q.device).tril(j - i)
    sim = torch.where(past, sim, lowest)  # fill-second
    return torch.einsum("b h i j, b h j d -> b h i d", sim.softmax(dim=-1), v)


def causal_einx(q, k, v):
    q = q * q.shape[-1] ** -0.5
    sim = torch.einsum("b h i d, b h j d -> b h i j", q, k)
    i, j = sim.shape[-2:]
    future = torch.ones((i, j), dtype=torch.bool, device=q.device).triu(j - i + 1)
    sim = einx.where("i j, , b h i j -> b h i j", future, -torch.finfo(q.dtype).max, sim)
    return torch.einsum("b h i j, b h j d -> b h i d", sim.softmax(dim=-1), v)
"""


def test_a_where_that_takes_the_fill_where_its_condition_holds_masks_there():
    """``torch.where(c, fill, scores)`` fills where c holds (the opposite of ``where(c,
    scores, fill)``): the fused call's mask must fill there too, for torch.where and for
    einx.where with the fill operand first.  Each rewrite computes what the original does."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("einx")
    result = fix_text(WHERE_FILL_FIRST, "model.py", _rules("ADP010"))
    assert result.error is None
    assert result.text.count("scaled_dot_product_attention(") == 3
    original, patched = {}, {}
    exec(compile(WHERE_FILL_FIRST, "orig.py", "exec"), original)  # noqa: S102 (our own fixture)
    exec(compile(result.text, "fixed.py", "exec"), patched)  # noqa: S102
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 3, 5, 8, dtype=torch.float64) for _ in range(3))
    for name in ("causal", "causal_kept", "causal_einx"):
        assert torch.allclose(
            original[name](q, k, v), patched[name](q, k, v), atol=1e-10
        ), name


# ----------------------------------------------------------------- the scores' shape in a branch

SHAPE_IN_BRANCH = """\
import torch


def attend(q, k, v, pad=None, causal=False):
    q = q * q.shape[-1] ** -0.5
    lowest = -torch.finfo(q.dtype).max
    sim = torch.einsum("b h i d, b h j d -> b h i j", q, k)
    if causal:
        i, j = sim.shape[-2:]
        future = torch.ones((i, j), dtype=torch.bool, device=q.device).triu(j - i + 1)
        sim = torch.where(future, lowest, sim)
    elif pad is not None:
        sim = sim.masked_fill(~pad[:, None, None, :], lowest)
    return torch.einsum("b h i j, b h j d -> b h i d", sim.softmax(dim=-1), v)
"""


def test_a_branch_reading_the_scores_shape_is_rewritten_with_q_and_k():
    """``i, j = sim.shape[-2:]`` in the branch that builds the causal mask reads only the
    scores' shape: (queries, keys), read off q and k on the fused path.  The rewrite computes
    what the original does on both branches and with neither."""
    torch = pytest.importorskip("torch")
    result = fix_text(SHAPE_IN_BRANCH, "model.py", _rules("ADP010"))
    assert result.error is None and "scaled_dot_product_attention(" in result.text
    original, patched = {}, {}
    exec(compile(SHAPE_IN_BRANCH, "orig.py", "exec"), original)  # noqa: S102 (our own fixture)
    exec(compile(result.text, "fixed.py", "exec"), patched)  # noqa: S102
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 3, 5, 8, dtype=torch.float64) for _ in range(3))
    pad = torch.rand(2, 5) > 0.3
    pad[:, 0] = True
    for kwargs in ({}, {"causal": True}, {"pad": pad}):
        assert torch.allclose(
            original["attend"](q, k, v, **kwargs), patched["attend"](q, k, v, **kwargs)
        ), kwargs


def test_a_branch_that_reads_the_scores_values_is_left():
    # the branch reads the scores' values (their maximum), not only their shape: not rewritten
    values = SHAPE_IN_BRANCH.replace(
        "        i, j = sim.shape[-2:]\n",
        "        i, j = sim.shape[-2:]\n        top = sim.max()\n",
    )
    assert (
        "scaled_dot_product_attention("
        not in fix_text(values, "model.py", _rules("ADP010")).text
    )


# ----------------------------------------------------------------- a nested Sequential's Linear

NESTED_LINEAR = """\
import torch
from torch import nn


class Fourier(nn.Module):
    def forward(self, t):
        return torch.cat((t, t.sin()), dim=-1)


def time_features(width, out):
    return nn.Sequential(Fourier(), nn.Linear(width * 2, out))


def squashed(width, out):
    return nn.Sequential(nn.Linear(width, out), nn.Tanh())


class Conditioning(nn.Module):
    def __init__(self, width):
        super().__init__()
        self.time = nn.Sequential(
            time_features(width, width),
            nn.GELU(),  # factory-gelu
        )
        self.inline = nn.Sequential(nn.Sequential(Fourier(), nn.Linear(width * 2, width)), nn.GELU())  # inline-gelu
        self.squash = nn.Sequential(squashed(width, width), nn.GELU())  # squashed-gelu

    def forward(self, t):
        return self.time(t) + self.inline(t) + self.squash(t)
"""


def test_a_nested_sequential_ending_in_a_linear_outputs_a_linear():
    """``nn.Sequential(f(...), nn.GELU())`` with ``f`` returning ``nn.Sequential(..., nn.Linear)``
    (or the nested Sequential written in place): the GELU takes the Linear's output, a
    bias-GELU site, reported and not fixed (the Linear is inside the nested container).  A
    nested Sequential ending in another layer (a Tanh) is no Linear's output."""
    assert _finding(NESTED_LINEAR, "ADP006", "# factory-gelu") is not None
    assert _finding(NESTED_LINEAR, "ADP006", "# inline-gelu") is not None
    assert _finding(NESTED_LINEAR, "ADP006", "# squashed-gelu") is None
    result = fix_text(NESTED_LINEAR, "model.py", _rules("ADP006"))
    assert result.text == NESTED_LINEAR
