"""Research attention declined for an ``if`` around a step that does more than attention
(session 45, sites73).  The fixtures are ours.

- An ``assert`` in the mask's if comparing the mask with the scores' whole ``.size()`` (no
  argument): read as the shape q and k give (``_scores_metadata``), as ``.size(-1)`` already
  was.  An assert reading the scores' values still declines.
- A statement in the mask's if that binds an attribute (``self.mask = self.mask.to(Q.device)``)
  no earlier step reads (they read other attributes of ``self``, none called): it runs before
  the fused call as it ran before the fill (``_other_attributes_set``).  With q's name rebound
  to the scores (``Q = torch.matmul(Q, K)``), its read of ``Q.device`` is the query's
  (``_rebound_metadata``).  Binding an attribute an earlier step read still declines.
- A scale ``torch.sqrt(torch.tensor(self.dim).type(Q.type()))`` whose ``self.dim`` the code does
  not fix as a number: folded into q as a 0-d tensor, the guard sending ``not isinstance(
  self.dim, (int, float))`` (a list would be one factor per key) to the original
  (``_number_terms``).
- The per-head factor under ``if layer_head_mask is not None:`` whose body also raises on a bad
  size: the fused call takes ``v * w if <test> else v`` and keeps the check under the same test
  (``_optional_head_scale``).  Any other statement in that if still declines.
"""

from __future__ import annotations

import pytest
from corpus_forms import FusedCalls, edit, float64_pair, found, rules, sdpa_fixed

from adopter.synth import fix_text

ASSERTED = """\
import torch
import torch.nn as nn


class DotAttn(nn.Module):
    def __init__(self, d_model=8, p=0.0):
        super().__init__()
        self.temper = d_model ** 0.5
        self.dropout = nn.Dropout(p)
        self.softmax = nn.Softmax(dim=-1)

    def forward(self, q, k, v, attn_mask=None):
        attn = torch.bmm(q, k.transpose(1, 2)) / self.temper
        if attn_mask is not None:
            assert attn_mask.size() == attn.size(), \\
                'mask {} vs scores {}'.format(attn_mask.size(), attn.size())
            attn = attn.masked_fill(attn_mask, -float('inf'))
        attn = self.softmax(attn)
        attn = self.dropout(attn)
        output = torch.bmm(attn, v)
        return output, attn


class Block(nn.Module):
    def __init__(self, d_model=8, p=0.0):
        super().__init__()
        self.attention = DotAttn(d_model, p)
        self.proj = nn.Linear(d_model, d_model)

    def forward(self, x, mask=None):
        out, _ = self.attention(x, x, x, attn_mask=mask)
        return self.proj(out)
"""

LINEAR_HEAD = """\
import torch
import torch.nn as nn


class Head(nn.Module):
    def __init__(self, dim, n=5, p=0.0, causal=True):
        super().__init__()
        self.dim = dim
        self.dropout = nn.Dropout(p)
        self.causal_mask = torch.tril(torch.ones(n, n, dtype=torch.bool)) if causal else None

    def forward(self, Q, K, V):
        K = K.transpose(1, 2)
        Q = torch.matmul(Q, K)
        P_bar = Q / torch.sqrt(torch.tensor(self.dim).type(Q.type())).to(Q.device)
        if self.causal_mask is not None:
            self.causal_mask = self.causal_mask.to(Q.device)
            P_bar = P_bar.masked_fill_(~self.causal_mask, float('-inf'))
        P_bar = P_bar.softmax(dim=-1)
        P_bar = self.dropout(P_bar)
        return torch.matmul(P_bar, V)
"""

HEAD_MASKED = """\
import torch
import torch.nn as nn


class HeadAttn(nn.Module):
    def __init__(self, dim=8, heads=2, p=0.0):
        super().__init__()
        self.num_heads = heads
        self.head_dim = dim // heads
        self.scaling = self.head_dim ** -0.5
        self.dropout = p
        self.qkv = nn.Linear(dim, 3 * dim)

    def forward(self, x, attention_mask=None, layer_head_mask=None):
        b, t, _ = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q = q * self.scaling
        attn_weights = torch.matmul(q, k.transpose(2, 3))
        if attention_mask is not None:
            attn_weights = attn_weights + attention_mask
        attn_weights = nn.functional.softmax(attn_weights, dim=-1)
        if layer_head_mask is not None:
            if layer_head_mask.size() != (self.num_heads,):
                raise ValueError(f"head mask of size {layer_head_mask.size()}")
            attn_weights = layer_head_mask.view(1, -1, 1, 1) * attn_weights
        attn_probs = nn.functional.dropout(attn_weights, p=self.dropout, training=self.training)
        attn_output = torch.matmul(attn_probs, v)
        return attn_output.transpose(1, 2).reshape(b, t, -1)
"""


def _fix(source: str):
    return fix_text(source, "model.py", rules("ADP010"))


def _fused(source: str) -> str:
    text = sdpa_fixed(source)  # (the one ADP010 rewrite applied)
    assert "scaled_dot_product_attention(" in text
    return text


def _same(out_a, out_b, inputs, a, b):
    import torch

    # float64, softmax over 5 keys of 8-wide products: a few roundings apart, far below these
    torch.testing.assert_close(out_b, out_a, rtol=1e-10, atol=1e-12)
    params_a, params_b = list(a.parameters()), list(b.parameters())
    grads_a = torch.autograd.grad(out_a.sum(), [*inputs, *params_a], allow_unused=True)
    grads_b = torch.autograd.grad(out_b.sum(), [*inputs, *params_b], allow_unused=True)
    for ga, gb in zip(grads_a, grads_b):
        assert (ga is None) == (gb is None)  # (a projection only another arm uses)
        if ga is not None:
            torch.testing.assert_close(gb, ga, rtol=1e-10, atol=1e-12)


# ------------------------------------------------------------------ an assert on the whole size

def test_an_assert_on_the_scores_whole_size_is_kept_off_q_and_k():
    text = _fused(ASSERTED)
    assert "attn_mask.size() == torch.broadcast_shapes(q.shape[:-2], k.shape[:-2]) + (q.shape[-2], k.shape[-2])" \
        in text
    assert "need_weights=False" in text  # (the caller drops the weights)


@pytest.mark.parametrize("train", [False, True])
@pytest.mark.parametrize("masked", [False, True])
def test_the_asserted_mask_computes_the_same(train, masked):
    torch = pytest.importorskip("torch")
    a, b = float64_pair(ASSERTED, _fused(ASSERTED), "Block")
    counter = FusedCalls(b.attention)
    a.train(train)
    b.train(train)
    x = torch.randn(3, 5, 8, dtype=torch.float64, requires_grad=True)
    mask = None
    if masked:  # padding keys hidden, never a whole row
        mask = torch.zeros(3, 5, 5, dtype=torch.bool)
        mask[0, :, 4:] = True
        mask[1, :, 2:] = True
    _same(a(x, mask), b(x, mask), [x], a, b)
    assert counter.calls == 1


def test_the_assert_still_fails_on_a_mask_of_another_shape():
    torch = pytest.importorskip("torch")
    a, b = float64_pair(ASSERTED, _fused(ASSERTED), "Block")
    x = torch.randn(3, 5, 8, dtype=torch.float64)
    mask = torch.zeros(3, 1, 5, dtype=torch.bool)
    with pytest.raises(AssertionError) as original:
        a(x, mask)
    with pytest.raises(AssertionError) as patched:
        b(x, mask)
    assert str(patched.value) == str(original.value)


def test_an_assert_on_the_scores_values_still_declines():
    source = edit(ASSERTED, "assert attn_mask.size() == attn.size(), \\",
                  "assert attn_mask.size() == attn.size() and attn.isfinite().all(), \\")
    assert len(found(source, "ADP010")) == 1
    result = _fix(source)
    assert result.applied == [] and len(result.skipped) == 1


# ------------------------------------------------------------------ an attribute bound in the mask's if

def test_an_attribute_moved_to_the_device_in_the_mask_if_is_kept():
    text = _fused(LINEAR_HEAD)
    assert "not isinstance(self.dim, (int, float))" in text
    fast = text.split("else:")[-1]
    assert "self.causal_mask = self.causal_mask.to(Q.device)" in fast


@pytest.mark.parametrize("train", [False, True])
@pytest.mark.parametrize("causal", [False, True])
def test_the_linear_head_computes_the_same(train, causal):
    torch = pytest.importorskip("torch")
    a, b = float64_pair(LINEAR_HEAD, _fused(LINEAR_HEAD), "Head", dim=8, causal=causal)
    counter = FusedCalls(b)
    a.train(train)
    b.train(train)
    q, k, v = (torch.randn(2, 5, 8, dtype=torch.float64, requires_grad=True) for _ in range(3))
    _same(a(q, k, v), b(q, k, v), [q, k, v], a, b)
    assert counter.calls == 1


def test_a_dim_that_is_no_number_takes_the_original():
    """``torch.tensor([8.0, 2.0])``: one factor per key, which the fused call cannot fold
    into q; the guard sends it to the original code."""
    torch = pytest.importorskip("torch")
    a, b = float64_pair(LINEAR_HEAD, _fused(LINEAR_HEAD), "Head", dim=8)
    a.dim = b.dim = [8.0, 2.0, 4.0, 1.0, 3.0]
    counter = FusedCalls(b)
    q, k, v = (torch.randn(2, 5, 8, dtype=torch.float64) for _ in range(3))
    torch.testing.assert_close(b(q, k, v), a(q, k, v), rtol=0, atol=0)
    assert counter.calls == 0


def test_binding_an_attribute_an_earlier_step_read_still_declines():
    """The scale reads ``self.temp``; the mask's if binds it again: moved before the fused
    call, the scale would read the new value."""
    source = edit(LINEAR_HEAD, "P_bar = Q / torch.sqrt(torch.tensor(self.dim).type(Q.type())).to(Q.device)",
                  "P_bar = Q / self.temp")
    source = edit(source, "self.dim = dim", "self.dim = dim\n        self.temp = 3.0")
    source = edit(source, "self.causal_mask = self.causal_mask.to(Q.device)", "self.temp = self.temp * 2")
    assert len(found(source, "ADP010")) == 1
    result = _fix(source)
    assert result.applied == [] and len(result.skipped) == 1
    assert "self.temp" in result.skipped[0][1]


def test_a_dim_the_function_binds_to_a_list_stays_declined():
    """``torch.tensor(dims)`` of a local the function binds to a list: a guard would send
    every call to the original, so the scale declines as before."""
    source = edit(LINEAR_HEAD, "torch.tensor(self.dim)", "torch.tensor(dims)")
    source = edit(source, "        K = K.transpose(1, 2)\n", "        K = K.transpose(1, 2)\n        dims = [self.dim]\n")
    result = _fix(source)
    assert result.applied == [] and "may be a tensor that differs between keys" in result.skipped[0][1]


# ------------------------------------------------------------------ the head factor under an if

def test_the_head_factor_under_an_if_is_folded_into_v_under_the_same_test():
    text = _fused(HEAD_MASKED)
    assert "v * layer_head_mask.view(1, -1, 1, 1) if layer_head_mask is not None else v" in text
    fast = text.split("else:")[-1]
    assert "raise ValueError" in fast  # (the size check runs on the fused path too)


@pytest.mark.parametrize("train", [False, True])
@pytest.mark.parametrize("head_mask", [False, True])
def test_the_head_masked_attention_computes_the_same(train, head_mask):
    torch = pytest.importorskip("torch")
    a, b = float64_pair(HEAD_MASKED, _fused(HEAD_MASKED), "HeadAttn")
    counter = FusedCalls(b)
    a.train(train)
    b.train(train)
    x = torch.randn(3, 5, 8, dtype=torch.float64, requires_grad=True)
    mask = torch.tensor([0.0, 1.0], dtype=torch.float64) if head_mask else None
    _same(a(x, layer_head_mask=mask), b(x, layer_head_mask=mask), [x], a, b)
    assert counter.calls == 1


def test_a_head_mask_of_another_size_raises_alike():
    torch = pytest.importorskip("torch")
    a, b = float64_pair(HEAD_MASKED, _fused(HEAD_MASKED), "HeadAttn")
    x = torch.randn(3, 5, 8, dtype=torch.float64)
    mask = torch.ones(3, dtype=torch.float64)
    with pytest.raises(ValueError) as original:
        a(x, layer_head_mask=mask)
    with pytest.raises(ValueError) as patched:
        b(x, layer_head_mask=mask)
    assert str(patched.value) == str(original.value)


def test_another_statement_in_the_head_mask_if_still_declines():
    source = edit(HEAD_MASKED, "            attn_weights = layer_head_mask.view",
                  "            self.seen = True\n            attn_weights = layer_head_mask.view")
    assert len(found(source, "ADP010")) == 1
    result = _fix(source)
    assert result.applied == [] and len(result.skipped) == 1
    assert "only runs under a condition" in result.skipped[0][1]


def test_a_head_mask_if_reading_the_probabilities_goes_to_the_original():
    """A statement reading the probabilities in that if: the head mask's case is sent to the
    original whole (as before), the fused call never folds the factor."""
    torch = pytest.importorskip("torch")
    source = edit(HEAD_MASKED, "            attn_weights = layer_head_mask.view",
                  "            self.total = attn_weights.sum()\n            attn_weights = layer_head_mask.view")
    result = _fix(source)
    if not result.applied:
        return  # (declined: nothing to run)
    assert "layer_head_mask is not None\n" in result.text and "* layer_head_mask" not in result.text.split("else:")[-1]
    a, b = float64_pair(source, result.text, "HeadAttn")
    counter = FusedCalls(b)
    x = torch.randn(3, 5, 8, dtype=torch.float64)
    mask = torch.tensor([0.0, 1.0], dtype=torch.float64)
    torch.testing.assert_close(b(x, layer_head_mask=mask), a(x, layer_head_mask=mask), rtol=0, atol=0)
    assert counter.calls == 0


# ------------------------------------------------------------------ steps in one arm of an if / elif chain

ELIF_ARM = """\
import torch
import torch.nn as nn


class FinalAttn(nn.Module):
    def __init__(self, d=8, h=6, kind="add", p=0.0):
        super().__init__()
        self.kind = kind
        self.h = h
        self.W_q = nn.Linear(d, h)
        self.W_k = nn.Linear(d, h)
        self.W_v = nn.Linear(d, h)
        self.W_out = nn.Linear(h, 1)
        self.dropout = nn.Dropout(p)
        self.softmax = nn.Softmax(dim=1)

    def forward(self, x):
        b, t, _ = x.size()
        input_q = self.W_q(x[:, -1, :])
        input_k = self.W_k(x)
        input_v = self.W_v(x)
        if self.kind == "add":
            q = torch.reshape(input_q, (b, 1, self.h))
            e = self.W_out(torch.tanh(q + input_k)).reshape(b, t)
        elif self.kind == "mul":
            q = torch.reshape(input_q, (b, self.h, 1))
            e = torch.matmul(input_k, q).squeeze(dim=-1)
        else:
            raise ValueError(f"unknown kind {self.kind}")
        a = self.softmax(e)
        a = self.dropout(a)
        v = torch.matmul(a.unsqueeze(1), input_v).squeeze(dim=1)
        return v, a


class Model(nn.Module):
    def __init__(self, d=8, h=6, kind="mul"):
        super().__init__()
        self.attn = FinalAttn(d, h, kind=kind)
        self.out = nn.Linear(h, 1)

    def forward(self, x):
        ctx, _ = self.attn(x)
        return self.out(ctx)
"""


def test_the_steps_in_an_elif_arm_take_the_fused_path_for_that_arm_alone():
    text = _fused(ELIF_ARM)
    assert '(self.kind == "add" or not (self.kind == "mul"))' in text
    # q's rank is the reshape's (three sizes): no guard on it; k and v are read before the region
    assert "input_k.dim() != 3" in text and "input_v.dim() != 3" in text and "q.dim()" not in text
    fast = text.split("else:")[-1]
    assert "q = torch.reshape(input_q, (b, self.h, 1))" in fast and "tanh" not in fast


@pytest.mark.parametrize("train", [False, True])
@pytest.mark.parametrize("kind", ["mul", "add"])
def test_the_elif_arm_computes_the_same(train, kind):
    torch = pytest.importorskip("torch")
    a, b = float64_pair(ELIF_ARM, _fused(ELIF_ARM), "Model", kind=kind)
    counter = FusedCalls(b.attn)
    a.train(train)
    b.train(train)
    x = torch.randn(3, 5, 8, dtype=torch.float64, requires_grad=True)
    _same(a(x), b(x), [x], a, b)
    assert counter.calls == (1 if kind == "mul" else 0)  # (the other arm runs the original)


def test_an_unknown_kind_raises_alike():
    torch = pytest.importorskip("torch")
    a, b = float64_pair(ELIF_ARM, _fused(ELIF_ARM), "Model", kind="concat")
    x = torch.randn(3, 5, 8, dtype=torch.float64)
    with pytest.raises(ValueError) as original:
        a(x)
    with pytest.raises(ValueError) as patched:
        b(x)
    assert str(patched.value) == str(original.value)


@pytest.mark.parametrize("reshape", ["input_q.unsqueeze(-1)", "torch.reshape(input_q, (*input_q.shape, 1))"])
def test_a_name_of_no_written_out_rank_still_declines(reshape):
    """``q`` made by ``unsqueeze`` of a tensor of any rank, or reshaped to a starred shape: no
    rank is fixed, and the softmax over dim 1 declines as before."""
    source = edit(ELIF_ARM, "torch.reshape(input_q, (b, self.h, 1))", reshape)
    assert len(found(source, "ADP010")) == 1
    result = _fix(source)
    assert result.applied == [] and "dim counts from the front" in result.skipped[0][1]


def test_a_view_with_its_sizes_as_arguments_fixes_the_rank():
    source = edit(ELIF_ARM, "torch.reshape(input_q, (b, self.h, 1))", "input_q.view(b, self.h, 1)")
    assert "q.dim()" not in _fused(source)


@pytest.mark.parametrize("kind", ["mul", "add"])
def test_another_arm_that_is_also_an_attention_runs_the_original(kind):
    """Scores formed in the first arm too: the matched arm is fused, the other is sent to the
    original by the guard (never both folded into one call)."""
    torch = pytest.importorskip("torch")
    source = edit(ELIF_ARM, "            e = self.W_out(torch.tanh(q + input_k)).reshape(b, t)",
                  "            e = torch.matmul(input_k, q.transpose(1, 2)).squeeze(dim=-1)")
    fixed = _fused(source)
    a, b = float64_pair(source, fixed, "Model", kind=kind)
    counter = FusedCalls(b.attn)
    x = torch.randn(3, 5, 8, dtype=torch.float64, requires_grad=True)
    _same(a(x), b(x), [x], a, b)
    assert counter.calls == (1 if kind == "mul" else 0)
