"""Forms session 31's blind batches left unread, and its three false positives (session 32,
helper misses40).  The fixtures are ours; each is read by its computation.

- Attention scores read again after an unrelated ``if`` joins (native-sparse-attention's
  inference path: ``importance = sim[..., n:]`` feeding a block selection after the
  attention): on every path the scores are computed with after the softmax, so no rewrite can
  drop them (GUIDE: "probabilities that are always read again").  Near-misses: the scores read
  only in one arm of an ``if`` or returned after the join keep the site.
"""

from __future__ import annotations

import textwrap

from corpus_forms import found, line_of

SCORES_AGAIN = textwrap.dedent('''
    import torch
    from torch import nn


    class Attn(nn.Module):
        def __init__(self, dim, keep):
            super().__init__()
            self.keep = keep
            self.scale = dim ** -0.5

        def forward(self, q, k, v, extra):
            sim = torch.einsum('bhid,bhjd->bhij', q, k) * self.scale
            attn = sim.softmax(dim=-1)
            out = torch.einsum('bhij,bhjd->bhid', attn, v)
            if extra.shape[-1] > 4:
                extra = extra[..., :4]
            importance = sim[..., 1:]
            n = importance.shape[-1]
            if n > self.keep:
                importance = importance.mean(dim=1)
            return out + extra.sum(), importance.topk(2, dim=-1).indices
''')


def _attention_lines(code: str) -> set:
    return {f.line for f in found(code, "ADP010")}


def test_scores_read_again_after_an_unrelated_branch_are_no_site():
    assert _attention_lines(SCORES_AGAIN) == set()


def test_scores_computed_with_in_both_arms_are_no_site():
    code = SCORES_AGAIN.replace(
        "        importance = sim[..., 1:]\n        n = importance.shape[-1]\n"
        "        if n > self.keep:\n            importance = importance.mean(dim=1)\n",
        "        if self.keep:\n            importance = sim.mean(dim=1)\n"
        "        else:\n            importance = sim.amax(dim=1)\n")
    assert "sim.amax" in code
    assert _attention_lines(code) == set()


def test_scores_read_in_one_arm_only_keep_the_site():
    code = SCORES_AGAIN.replace(
        "        importance = sim[..., 1:]\n        n = importance.shape[-1]\n"
        "        if n > self.keep:\n            importance = importance.mean(dim=1)\n",
        "        importance = extra\n        if self.keep:\n"
        "            importance = sim.mean(dim=1) * 2\n")
    assert "sim.mean(dim=1) * 2" in code
    assert _attention_lines(code) == {line_of(code, "sim = torch.einsum")}


def test_scores_returned_after_the_join_keep_the_site():
    code = SCORES_AGAIN.replace(
        "        importance = sim[..., 1:]\n        n = importance.shape[-1]\n"
        "        if n > self.keep:\n            importance = importance.mean(dim=1)\n"
        "        return out + extra.sum(), importance.topk(2, dim=-1).indices\n",
        "        return out + extra.sum(), sim\n")
    assert code.rstrip().endswith("extra.sum(), sim")
    assert _attention_lines(code) == {line_of(code, "sim = torch.einsum")}
