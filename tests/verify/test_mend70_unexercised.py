"""review55's two wrong patches that verify26's reach let pass (session 44, mend70).

A lazily built cached mask: the original's copy, left by the input search, must not stand in for
the patched module's own builder.  Grouped heads tried only with as many key/value heads as query
heads: edited lines that run only when the two counts differ are not checked by that pass."""

import textwrap

from stand_in import adp010_verdicts

LAZY = '''
import torch
from torch import nn


class LazyCausal(nn.Module):
    def __init__(self, width=16, heads=2):
        super().__init__()
        self.heads = heads
        self.to_qkv = nn.Linear(width, 3 * width)
        self.out = nn.Linear(width, width)
        self.keep = None

    def forward(self, x):
        b, t, c = x.shape
        q, k, v = self.to_qkv(x).view(b, t, 3, self.heads, -1).permute(2, 0, 3, 1, 4)
        if self.keep is None or self.keep.shape[-1] != t:
            self.keep = torch.tril(torch.ones(t, t))
        w = (q @ k.transpose(-2, -1)) * q.shape[-1] ** -0.5
        w = w.masked_fill(self.keep == 0, float("-inf"))
        w = torch.softmax(w, dim=-1)
        y = w @ v
        return self.out(y.transpose(1, 2).reshape(b, t, c))
'''
LAZY_SITE = '''            self.keep = torch.tril(torch.ones(t, t))
        w = (q @ k.transpose(-2, -1)) * q.shape[-1] ** -0.5
        w = w.masked_fill(self.keep == 0, float("-inf"))
        w = torch.softmax(w, dim=-1)
        y = w @ v
'''
LAZY_RIGHT = '''            self.keep = torch.tril(torch.ones(t, t))
        y = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=self.keep != 0)
'''
LAZY_WRONG = '''            self.keep = torch.triu(torch.ones(t, t))
        y = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=self.keep != 0)
'''


def test_lazy_mask_built_wrong_fails(tmp_path, all_rules, quick):
    verdicts = adp010_verdicts(tmp_path / "lazy.py", textwrap.dedent(LAZY), (LAZY_SITE, LAZY_WRONG), all_rules, quick)
    assert verdicts and all(v.verdict == "fail" for v in verdicts), [(v.verdict, v.reason) for v in verdicts]


def test_lazy_mask_built_right_passes(tmp_path, all_rules, quick):
    verdicts = adp010_verdicts(tmp_path / "lazy.py", textwrap.dedent(LAZY), (LAZY_SITE, LAZY_RIGHT), all_rules, quick)
    assert verdicts and all(v.verdict == "pass" for v in verdicts), [(v.verdict, v.reason) for v in verdicts]


GROUPED = '''
import torch


def shared_kv_attention(query, key, value, n_heads: int, kv_heads: int):
    b, s, _ = query.shape
    q = query.view(b, s, n_heads, -1).transpose(1, 2)
    k = key.view(b, key.shape[1], kv_heads, -1).transpose(1, 2)
    v = value.view(b, value.shape[1], kv_heads, -1).transpose(1, 2)
    if kv_heads < n_heads:
        k = k.repeat_interleave(n_heads // kv_heads, dim=1)
        v = v.repeat_interleave(n_heads // kv_heads, dim=1)
    scores = q @ k.transpose(-2, -1) / q.shape[-1] ** 0.5
    probs = torch.softmax(scores, dim=-1)
    out = probs @ v
    return out.transpose(1, 2).reshape(b, s, -1)
'''
G_SCORES = '''    scores = q @ k.transpose(-2, -1) / q.shape[-1] ** 0.5
    probs = torch.softmax(scores, dim=-1)
    out = probs @ v
'''
G_FUSED = '''    out = torch.nn.functional.scaled_dot_product_attention(q, k, v)
'''
G_SITE = '''    if kv_heads < n_heads:
        k = k.repeat_interleave(n_heads // kv_heads, dim=1)
        v = v.repeat_interleave(n_heads // kv_heads, dim=1)
''' + G_SCORES
G_TILED = '''    if kv_heads < n_heads:
        k = k.repeat(1, n_heads // kv_heads, 1, 1)
        v = v.repeat(1, n_heads // kv_heads, 1, 1)
''' + G_FUSED


def test_grouped_lines_edited_wrong_do_not_pass(tmp_path, all_rules, quick):
    verdicts = adp010_verdicts(tmp_path / "g.py", textwrap.dedent(GROUPED), (G_SITE, G_TILED), all_rules, quick)
    assert verdicts and all(v.verdict in ("fail", "skip") for v in verdicts), [(v.verdict, v.reason) for v in verdicts]
    assert any("never ran" in v.reason and "kv_heads < n_heads" in v.reason for v in verdicts if v.verdict == "skip") \
        or all(v.verdict == "fail" for v in verdicts)


def test_grouped_scores_only_patch_passes(tmp_path, all_rules, quick):
    # look-alike: the patch leaves the grouped lines as they are, so the equal-count pass checks all it edited
    verdicts = adp010_verdicts(tmp_path / "g.py", textwrap.dedent(GROUPED), (G_SCORES, G_FUSED), all_rules, quick)
    assert verdicts and all(v.verdict == "pass" for v in verdicts), [(v.verdict, v.reason) for v in verdicts]


# verify hands back zeros for torch.empty while modules run (verify26); the patch's own buffer
# allocated on an edited line is NaN instead, so a patch that reads memory it never wrote shows
ACCUM_WRONG = '''            self.keep = torch.tril(torch.ones(t, t))
        y = torch.empty_like(q)
        y += torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=self.keep != 0)
'''
ACCUM_RIGHT = '''            self.keep = torch.tril(torch.ones(t, t))
        y = torch.empty_like(q)
        y.copy_(torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=self.keep != 0))
'''


def test_patch_reading_its_own_unwritten_buffer_does_not_pass(tmp_path, all_rules, quick):
    verdicts = adp010_verdicts(tmp_path / "acc.py", textwrap.dedent(LAZY), (LAZY_SITE, ACCUM_WRONG), all_rules, quick)
    assert verdicts and all(v.verdict in ("fail", "skip") for v in verdicts), [(v.verdict, v.reason) for v in verdicts]


def test_patch_writing_its_own_buffer_first_passes(tmp_path, all_rules, quick):
    verdicts = adp010_verdicts(tmp_path / "acc.py", textwrap.dedent(LAZY), (LAZY_SITE, ACCUM_RIGHT), all_rules, quick)
    assert verdicts and all(v.verdict == "pass" for v in verdicts), [(v.verdict, v.reason) for v in verdicts]


def test_filled_empty_poisons_only_the_named_lines():
    import sys

    import torch

    from adopter.verify.build import filled_empty

    here = sys._getframe().f_code.co_filename
    line = sys._getframe().f_lineno + 2
    with filled_empty((here, {line})):
        a = torch.empty(3)
        b = torch.empty(3)
    assert torch.isnan(a).all() and (b == 0).all()
