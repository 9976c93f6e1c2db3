"""Verify's inputs for research attention fixed but not verified (verify8, session 36).

1. A fairseq-style self-attention whose forward takes its input sequence-first, ``[T, B, C]``, and a
required ``[B, S]`` padding mask: it unpacks ``query.size()`` into three names and the mask's
into two, and asserts the query's second size equals the mask's first (pytext's
``MultiheadSelfAttention``).  Verify guessed only ``[batch, seq, width]`` for the query, which
that assertion rejects with every mask, so no input ran.  The code's own equality check of the
first input's second unpacked size against a later input's first now states the first input
sequence-first, and ``[seq, batch, width]`` is tried right after the first batch-first guess.
Wrong patches (the mask dropped, the scale lost) fail.  Near-misses: a check against the first
input's first size (batch-first code), or a first input unpacked into four names, state nothing.

2. Varlen attention over sequences packed along the first input's rows, whose boundaries come in a
   parameter that defaults to None but is handed to a method of the module's own that takes the
   differences of its consecutive items (``bounds[1:] - bounds[:-1]``, qwen-tts' whisper
   encoder): it was left at None and no input ran.  Such a parameter is now given int32 offsets
   of two unequal sequences over the rows the first input's guesses have.  Wrong patches (the
   padding mask dropped, a wrong scale) fail.  Near-misses: a parameter only sliced, or
   differenced two items apart, is no offsets.

The fixture classes are ours, written in the tests.
"""

from __future__ import annotations

import textwrap

import pytest

torch = pytest.importorskip("torch")

from adopter.verify.inputs import batch_second
from adopter.verify.result import FAIL, PASS
from verify_patches import adp010_verdicts, replacing_fix

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


def test_a_sequence_first_attention_with_a_padding_mask_is_fed_and_verified(tmp_path):
    # main: skip, "no inputs it accepts" (the query guessed [batch, seq, width] only)
    results = adp010_verdicts(tmp_path, SEQ_FIRST_PADDED)
    assert [r.verdict for r in results] == [PASS], results


def test_the_right_patch_of_the_sequence_first_attention_passes(tmp_path):
    assert SITE in SEQ_FIRST_PADDED
    results = adp010_verdicts(tmp_path, SEQ_FIRST_PADDED, replacing_fix(SITE, RIGHT))
    assert [r.verdict for r in results] == [PASS], results


@pytest.mark.parametrize("new", [NO_MASK, WRONG_SCALE])
def test_a_wrong_patch_of_the_sequence_first_attention_fails(tmp_path, new):
    results = adp010_verdicts(tmp_path, SEQ_FIRST_PADDED, replacing_fix(SITE, new))
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


PACKED = '''import torch
import torch.nn.functional as F
from torch import nn


class PackedAttention(nn.Module):
    def __init__(self, width, heads):
        super().__init__()
        self.heads = heads
        self.q_proj = nn.Linear(width, width)
        self.k_proj = nn.Linear(width, width)
        self.v_proj = nn.Linear(width, width)
        self.o_proj = nn.Linear(width, width)

    def forward(self, x, bounds=None):
        out = self.padded_attention(self.q_proj(x), self.k_proj(x), self.v_proj(x), bounds=bounds)
        return self.o_proj(out)

    def padded_attention(self, q, k, v, bounds):
        rows, width = q.shape
        head_width = width // self.heads
        lengths = (bounds[1:] - bounds[:-1]).tolist()
        count, longest = len(lengths), max(lengths)
        padded = [q.new_zeros(count, longest, self.heads, head_width) for _ in range(3)]
        for i in range(count):
            start, end = int(bounds[i]), int(bounds[i + 1])
            for dst, src in zip(padded, (q, k, v)):
                dst[i, :end - start] = src[start:end].view(-1, self.heads, head_width)
        q, k, v = (t.transpose(1, 2) for t in padded)
        valid = torch.arange(longest)[None, :] < torch.tensor(lengths)[:, None]
        bias = torch.zeros(count, 1, 1, longest).masked_fill(~valid[:, None, None, :], float("-inf"))
        scores = torch.matmul(q, k.transpose(-2, -1)) * head_width ** -0.5
        scores = scores + bias
        weights = F.softmax(scores, dim=-1)
        context = torch.matmul(weights, v)
        context = context.transpose(1, 2).reshape(count, longest, width)
        return torch.cat([context[i, :n] for i, n in enumerate(lengths)], dim=0)
'''

PACKED_SITE = (
    "        scores = torch.matmul(q, k.transpose(-2, -1)) * head_width ** -0.5\n"
    "        scores = scores + bias\n"
    "        weights = F.softmax(scores, dim=-1)\n"
    "        context = torch.matmul(weights, v)\n")
PACKED_RIGHT = "        context = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)\n"
PACKED_NO_MASK = "        context = F.scaled_dot_product_attention(q, k, v)\n"
PACKED_WRONG_SCALE = "        context = F.scaled_dot_product_attention(q, k, v, attn_mask=bias, scale=0.5)\n"


def test_packed_sequences_with_offsets_defaulting_to_none_are_fed_and_verified(tmp_path):
    # main: skip, "no inputs it accepts" (bounds left at None, which the method subtracts)
    results = adp010_verdicts(tmp_path, PACKED)
    assert [r.verdict for r in results] == [PASS], results
    assert PACKED_SITE in PACKED
    results = adp010_verdicts(tmp_path, PACKED, replacing_fix(PACKED_SITE, PACKED_RIGHT))
    assert [r.verdict for r in results] == [PASS], results


@pytest.mark.parametrize("new", [PACKED_NO_MASK, PACKED_WRONG_SCALE])
def test_a_wrong_patch_of_the_packed_attention_fails(tmp_path, new):
    results = adp010_verdicts(tmp_path, PACKED, replacing_fix(PACKED_SITE, new))
    assert [r.verdict for r in results] == [FAIL], results


def test_only_differences_of_consecutive_items_read_offsets(tmp_path):
    from torch import nn

    from adopter.verify.inputs import offsets_params

    path = tmp_path / "packed.py"
    path.write_text(textwrap.dedent('''
        from torch import nn


        class Own(nn.Module):
            def forward(self, x, bounds=None, other=None, weights=None):
                self.helper(x, bounds, scale=other)
                return x * weights[1:]

            def helper(self, x, starts, scale=None):
                spans = starts[1:] - starts[:-1]
                return x[: int(scale[2:] - scale[:-2])]
    '''))
    namespace: dict = {}
    exec(compile(path.read_text(), str(path), "exec"), namespace)
    module = namespace["Own"]()
    # ``other`` is differenced two apart, ``weights`` only sliced: neither is offsets
    assert offsets_params(module.forward, module) == {"bounds"}
