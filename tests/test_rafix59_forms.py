"""Research attention found but not fixed (session 37): a context product chosen by an if /
else.  The fixtures are ours.

- The scores and the context product each an if / else (a beam-folded ``einsum`` in one arm,
  ``bmm`` in the other, fairseq-style): the fix pairs the scores and the context of the same
  arms (match.py: a value the other arm derives is not on the match's path, and every
  scores/context pairing of a site is tried), takes the context's if as the region's last
  statement, and the guard sends the folded arms' case to the original.  Exact in train and
  eval, either arm.
- The context product alone chosen by an if / else (gpt_bigcode-style: a 3-D ``bmm`` of viewed
  probabilities or a ``matmul``), tests that differ (the scores' if on one flag, the context's
  on another: the guard sends both to the original).
- A method returning the scores as they are, dropped from the fused path: a subclass that
  overrides it (a sparse mask) is sent to the original by the guard.
- Near-misses that stay declined: the product's arm also stores the probabilities; the
  context's test reads a name assigned after the attention begins; a test that calls a method.
"""

from __future__ import annotations

import pytest
from corpus_forms import float64_pair, found, line_of, rules

from adopter.synth import fix_text

FOLDED = """\
import torch
import torch.nn.functional as F
from torch import nn


class FoldedAttention(nn.Module):
    def __init__(self, dim=16, heads=4, folded=False):
        super().__init__()
        self.heads = heads
        self.head_dim = dim // heads
        self.folded = folded
        self.q_proj = nn.Linear(dim, dim)
        self.k_proj = nn.Linear(dim, dim)
        self.v_proj = nn.Linear(dim, dim)
        self.out_proj = nn.Linear(dim, dim)
        self.drop = nn.Dropout(0.0)

    def forward(self, x, memory, beams=1):
        tgt_len, bsz, dim = x.shape
        kv_bsz = memory.shape[1]
        q = self.q_proj(x) * self.head_dim ** -0.5
        k = self.k_proj(memory)
        v = self.v_proj(memory)
        q = q.contiguous().view(tgt_len, bsz * self.heads, self.head_dim).transpose(0, 1)
        k = k.contiguous().view(-1, kv_bsz * self.heads, self.head_dim).transpose(0, 1)
        v = v.contiguous().view(-1, kv_bsz * self.heads, self.head_dim).transpose(0, 1)
        if self.folded and bsz != kv_bsz:
            attn_weights = torch.einsum(
                "bxhtd,bhsd->bxhts",
                q.view((kv_bsz, -1, self.heads) + q.size()[1:]),
                k.view((kv_bsz, self.heads) + k.size()[1:]),
            )
            attn_weights = attn_weights.reshape((-1,) + attn_weights.size()[-2:])
        else:
            attn_weights = torch.bmm(q, k.transpose(1, 2))
        attn_weights = F.softmax(attn_weights, dim=-1)
        attn_probs = self.drop(attn_weights)
        if self.folded and bsz != kv_bsz:
            attn = torch.einsum(
                "bxhts,bhsd->bxhtd",
                attn_probs.view((kv_bsz, -1, self.heads) + attn_probs.size()[1:]),
                v.view((kv_bsz, self.heads) + v.size()[1:]),
            )
            attn = attn.reshape((-1,) + attn.size()[-2:])
        else:
            attn = torch.bmm(attn_probs, v)
        attn = attn.transpose(0, 1).contiguous().view(tgt_len, bsz, dim)
        return self.out_proj(attn)
"""

# the product's arm also stores the probabilities for code outside the call to read
STORED_IN_ARM = FOLDED.replace(
    "        else:\n            attn = torch.bmm(attn_probs, v)\n",
    "        else:\n            self.last_probs = attn_probs\n            attn = torch.bmm(attn_probs, v)\n")
# the context's test reads a local assigned after the attention begins: no guard can read it first
LOCAL_TEST = FOLDED.replace(
    "        attn_probs = self.drop(attn_weights)\n        if self.folded and bsz != kv_bsz:\n",
    "        attn_probs = self.drop(attn_weights)\n        fold = self.folded and bsz != kv_bsz\n        if fold:\n")
# the context's test calls a method: read again before the attention it need not give the same truth
CALLED_TEST = FOLDED.replace(
    "        attn_probs = self.drop(attn_weights)\n        if self.folded and bsz != kv_bsz:\n",
    "        attn_probs = self.drop(attn_weights)\n        if self.is_folded(bsz, kv_bsz):\n"
).replace("    def forward(", "    def is_folded(self, bsz, kv_bsz):\n        return self.folded and bsz != kv_bsz\n\n"
          "    def forward(")

QUERY_GROUPS = """\
import torch
from torch import nn


class GroupedQueryAttention(nn.Module):
    def __init__(self, dim=16, heads=4, shared_kv=False, fold=False):
        super().__init__()
        self.heads = heads
        self.head_dim = dim // heads
        self.shared_kv = shared_kv
        self.fold = fold
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        b, n, d = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        if self.fold:
            scores = torch.einsum("bhqd,bhkd->bhqk", q, k)
        else:
            scores = torch.matmul(q, k.transpose(-1, -2))
        scores = scores / self.head_dim ** 0.5
        probs = scores.softmax(dim=-1)
        if self.shared_kv:
            out = torch.bmm(probs.reshape(b * self.heads, n, n), v.reshape(b * self.heads, n, self.head_dim))
            out = out.view(b, self.heads, n, self.head_dim)
        else:
            out = torch.matmul(probs, v)
        return self.proj(out.transpose(1, 2).reshape(b, n, d))
"""

KEPT_HOOK = """\
import torch
from torch import nn


class HookedAttention(nn.Module):
    def __init__(self, dim=16, heads=4):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def shape_scores(self, scores, n):
        return scores

    def forward(self, x):
        b, n, d = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        scores = q @ k.transpose(-2, -1) * (d // self.heads) ** -0.5
        scores = self.shape_scores(scores, n)
        probs = scores.softmax(dim=-1)
        out = probs @ v
        return self.proj(out.transpose(1, 2).reshape(b, n, d))

"""


def _fixed(source: str) -> str:
    return fix_text(source, "model.py", rules("ADP010")).text


def test_scores_and_context_chosen_by_if_else_are_fixed_with_the_other_arms_sent_to_the_original():
    assert [f.line for f in found(FOLDED, "ADP010")] == [line_of(FOLDED, "attn_weights = torch.einsum(")]
    fixed = _fixed(FOLDED)
    assert "scaled_dot_product_attention(" in fixed
    assert "if self.folded and bsz != kv_bsz:\n            attn = scaled" not in fixed
    # the guard sends the folded arms' case to the original (one term for the two ifs' one test)
    guard = fixed.split("        if (\n", 1)[1].split("        ):\n", 1)[0]
    assert guard.count("(self.folded and bsz != kv_bsz)") == 1


@pytest.mark.parametrize("folded", [False, True])
@pytest.mark.parametrize("train", [False, True])
@pytest.mark.parametrize("beams", [1, 2])
def test_the_if_else_context_computes_the_same_attention(folded, train, beams):
    import torch

    fixed = _fixed(FOLDED)
    assert "scaled_dot_product_attention(" in fixed
    a, b = float64_pair(FOLDED, fixed, "FoldedAttention", folded=folded)
    a.train(train)
    b.train(train)
    x = torch.randn(5, 2 * beams, 16, dtype=torch.float64, requires_grad=True)  # (time, batch x beams, channels)
    # the folded arms read one memory per beam group; the others one per query row
    memory = torch.randn(7, 2 if folded else 2 * beams, 16, dtype=torch.float64)
    out_a, out_b = a(x, memory), b(x, memory)
    # float64, softmax over 7 keys of 4-wide head products: rounding far below these
    torch.testing.assert_close(out_b, out_a, rtol=1e-10, atol=1e-12)
    grad_a, = torch.autograd.grad(out_a.sum(), x)
    grad_b, = torch.autograd.grad(out_b.sum(), x)
    torch.testing.assert_close(grad_b, grad_a, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("source", [STORED_IN_ARM, LOCAL_TEST, CALLED_TEST],
                         ids=["probabilities-stored-in-the-arm", "test-of-a-local", "called-test"])
def test_an_if_else_context_the_guard_cannot_take_is_not_fixed(source):
    assert source != FOLDED
    assert len(found(source, "ADP010")) == 1
    assert "scaled_dot_product_attention(" not in _fixed(source)


def test_a_context_alone_chosen_by_if_else_is_fixed_with_both_tests_in_the_guard():
    assert [f.line for f in found(QUERY_GROUPS, "ADP010")] == [line_of(QUERY_GROUPS, 'scores = torch.einsum(')]
    fixed = _fixed(QUERY_GROUPS)
    assert "scaled_dot_product_attention(" in fixed
    # the scores' einsum arm and the context's bmm arm both go to the original
    assert "        if not self.fold or self.shared_kv:\n" in fixed


@pytest.mark.parametrize("shared_kv", [False, True])
@pytest.mark.parametrize("fold", [False, True])
def test_the_context_alone_chosen_computes_the_same_attention(shared_kv, fold):
    import torch

    fixed = _fixed(QUERY_GROUPS)
    assert "scaled_dot_product_attention(" in fixed
    a, b = float64_pair(QUERY_GROUPS, fixed, "GroupedQueryAttention", shared_kv=shared_kv, fold=fold)
    for train in (False, True):
        a.train(train)
        b.train(train)
        x = torch.randn(2, 6, 16, dtype=torch.float64, requires_grad=True)
        out_a, out_b = a(x), b(x)
        torch.testing.assert_close(out_b, out_a, rtol=1e-10, atol=1e-12)
        grad_a, = torch.autograd.grad(out_a.sum(), x)
        grad_b, = torch.autograd.grad(out_b.sum(), x)
        torch.testing.assert_close(grad_b, grad_a, rtol=1e-10, atol=1e-12)


def _banded(base):
    """A subclass in another file (here: the test's) overriding the method the fused path drops."""
    import torch

    class BandedAttention(base):
        def shape_scores(self, scores, n):
            band = torch.ones(n, n, dtype=torch.bool).triu(2)
            return scores.masked_fill(band, float("-inf"))

    return BandedAttention


def test_a_dropped_method_a_subclass_overrides_is_sent_to_the_original():
    import torch

    assert [f.line for f in found(KEPT_HOOK, "ADP010")] == [line_of(KEPT_HOOK, "scores = q @ k")]
    fixed = _fixed(KEPT_HOOK)
    assert "scaled_dot_product_attention(" in fixed
    assert "type(self).shape_scores is not HookedAttention.shape_scores" in fixed
    original, patched = {}, {}
    exec(compile(KEPT_HOOK, "orig.py", "exec"), original)  # noqa: S102 (our own fixture)
    exec(compile(fixed, "fixed.py", "exec"), patched)  # noqa: S102
    for make in (lambda ns: ns["HookedAttention"], lambda ns: _banded(ns["HookedAttention"])):
        torch.manual_seed(0)
        a = make(original)().double()
        b = make(patched)().double()
        b.load_state_dict(a.state_dict(), strict=True)
        x = torch.randn(2, 5, 16, dtype=torch.float64)
        # float64, softmax over 5 keys: rounding far below these
        torch.testing.assert_close(b(x), a(x), rtol=1e-10, atol=1e-12)


BRANCH_PER_MASK = '''
import torch
import torch.nn.functional as F
from torch import nn


class TwoBranches(nn.Module):
    def __init__(self, dim=16, heads=4):
        super().__init__()
        self.heads, self.scale = heads, (dim // heads) ** -0.5
        self.qkv = nn.Linear(dim, 3 * dim)

    def forward(self, x, mask=None):
        b, n, d = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        if mask is not None:
            y = F.softmax(q @ k.transpose(-2, -1) * self.scale + mask, dim=-1) @ v
        else:
            y = F.softmax(q @ k.transpose(-2, -1) * self.scale, dim=-1) @ v
        return y.transpose(1, 2).reshape(b, n, d)
'''


def test_a_whole_attention_in_each_arm_is_fixed_in_its_own_arm():
    # each arm holds its own scores, softmax and product: no arm is a context product alone, so
    # neither fix takes the if (that sent the unmasked branch to the original: lead, session 37)
    assert len(found(BRANCH_PER_MASK, "ADP010")) == 2
    fixed = _fixed(BRANCH_PER_MASK)
    assert fixed.count("scaled_dot_product_attention(") == 2
    assert "        if mask is not None:\n" in fixed
