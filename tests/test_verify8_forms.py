"""Verify's inputs for research attention fixed but not verified (verify8, session 36).

A fairseq-style self-attention whose forward takes its input sequence-first, ``[T, B, C]``, and a
required ``[B, S]`` padding mask: it unpacks ``query.size()`` into three names and the mask's
into two, and asserts the query's second size equals the mask's first (pytext's
``MultiheadSelfAttention``).  Verify guessed only ``[batch, seq, width]`` for the query, which
that assertion rejects with every mask, so no input ran.  The code's own equality check of the
first input's second unpacked size against a later input's first now states the first input
sequence-first, and ``[seq, batch, width]`` is tried right after the first batch-first guess.
Wrong patches (the mask dropped, the scale lost) fail.  Near-misses: a check against the first
input's first size (batch-first code), or a first input unpacked into four names, state nothing.

The fixture classes are ours, written in the tests.
"""

from __future__ import annotations

import textwrap
from types import SimpleNamespace

import pytest

torch = pytest.importorskip("torch")

from adopter.config import Config
from adopter.ruleset import load_rules
from adopter.verify import verify_file
from adopter.verify.core import options_for
from adopter.verify.inputs import batch_second
from adopter.verify.result import FAIL, PASS

SEQ_FIRST_PADDED = '''import torch
import torch.nn.functional as F
from torch import nn


class PaddedSelfAttention(nn.Module):
    def __init__(self, width, heads, scaling=0.25):
        super().__init__()
        self.width = width
        self.heads = heads
        self.head_width = width // heads
        self.scaling = scaling
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)

    def forward(self, tokens, padding):
        steps, batch, width = tokens.size()
        padding_batch, sources = padding.size()
        assert width == self.width
        assert batch == padding_batch, "batch sizes differ"
        q, k, v = self.qkv(tokens).chunk(3, dim=-1)
        q = q * self.scaling
        rows = batch * self.heads
        q = q.contiguous().view(-1, rows, self.head_width).transpose(0, 1)
        k = k.contiguous().view(-1, rows, self.head_width).transpose(0, 1)
        v = v.contiguous().view(-1, rows, self.head_width).transpose(0, 1)
        weights = torch.bmm(q, k.transpose(1, 2))
        weights = weights.view(batch, self.heads, steps, sources)
        weights = weights.masked_fill(padding.unsqueeze(1).unsqueeze(2), float("-inf"))
        weights = weights.view(rows, steps, sources)
        weights = F.softmax(weights, dim=-1)
        out = torch.bmm(weights, v)
        out = out.transpose(0, 1).contiguous().view(steps, batch, width)
        return self.proj(out)
'''

SITE = (
    "        weights = torch.bmm(q, k.transpose(1, 2))\n"
    "        weights = weights.view(batch, self.heads, steps, sources)\n"
    "        weights = weights.masked_fill(padding.unsqueeze(1).unsqueeze(2), float(\"-inf\"))\n"
    "        weights = weights.view(rows, steps, sources)\n"
    "        weights = F.softmax(weights, dim=-1)\n"
    "        out = torch.bmm(weights, v)\n")
RIGHT = (
    "        keep = ~padding.unsqueeze(1).unsqueeze(2)\n"
    "        out = F.scaled_dot_product_attention(\n"
    "            q.view(batch, self.heads, steps, -1), k.view(batch, self.heads, sources, -1),\n"
    "            v.view(batch, self.heads, sources, -1), attn_mask=keep, scale=1.0).view(rows, steps, -1)\n")
NO_MASK = RIGHT.replace(", attn_mask=keep", "")
WRONG_SCALE = RIGHT.replace("scale=1.0", "scale=None")


def _fix(old: str, new: str):
    def fix(text, path, rules, package=None):
        if old not in text:
            return SimpleNamespace(text=text, applied=[], skipped=[], error=None)
        return SimpleNamespace(text=text.replace(old, new), applied=[], skipped=[], error=None)

    return fix


def _verdicts(tmp_path, source, fix=None):
    path = tmp_path / "attention.py"
    path.write_text(source)
    rules = [r for r in load_rules() if r.id == "ADP010"]
    return [r for r in verify_file(str(path), rules, Config(), benchmark=False, fix=fix,
                                   options=options_for(Config(), benchmark=False)) if not r.combined]


def test_a_sequence_first_attention_with_a_padding_mask_is_fed_and_verified(tmp_path):
    # main: skip, "no inputs it accepts" (the query guessed [batch, seq, width] only)
    results = _verdicts(tmp_path, SEQ_FIRST_PADDED)
    assert [r.verdict for r in results] == [PASS], results


def test_the_right_patch_of_the_sequence_first_attention_passes(tmp_path):
    assert SITE in SEQ_FIRST_PADDED
    results = _verdicts(tmp_path, SEQ_FIRST_PADDED, _fix(SITE, RIGHT))
    assert [r.verdict for r in results] == [PASS], results


@pytest.mark.parametrize("new", [NO_MASK, WRONG_SCALE])
def test_a_wrong_patch_of_the_sequence_first_attention_fails(tmp_path, new):
    results = _verdicts(tmp_path, SEQ_FIRST_PADDED, _fix(SITE, new))
    assert [r.verdict for r in results] == [FAIL], results


def _forward(tmp_path, body: str):
    path = tmp_path / "forward.py"
    path.write_text("def forward(self, x, mask):\n" + textwrap.indent(textwrap.dedent(body), "    ")
                    + "    return x\n")
    namespace: dict = {}
    exec(compile(path.read_text(), str(path), "exec"), namespace)
    return namespace["forward"]


def test_only_a_second_size_checked_against_a_later_batch_states_sequence_first(tmp_path):
    assert batch_second(_forward(tmp_path, """
        t, b, c = x.size()
        mb, s = mask.size()
        assert b == mb
    """))
    assert batch_second(_forward(tmp_path, """
        t, b, c = x.shape
        mb, s = mask.shape
        if mb != b or not mb == b:
            raise ValueError("batch")
    """))
    # batch-first code: the first size is the one checked
    assert not batch_second(_forward(tmp_path, """
        b, t, c = x.size()
        mb, s = mask.size()
        assert b == mb
    """))
    # the second size checked against the mask's second (a length), not its first
    assert not batch_second(_forward(tmp_path, """
        b, t, c = x.size()
        mb, s = mask.size()
        assert t == s
    """))
    # four names: no [seq, batch, width] input
    assert not batch_second(_forward(tmp_path, """
        t, b, h, c = x.size()
        mb, s = mask.size()
        assert b == mb
    """))
