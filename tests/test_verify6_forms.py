"""Verify's inputs for research attention fixed but not verified (verify6, session 36).

1. A module-level attention function over [batch, tokens, heads, width] tensors whose keys and
   values are read only through einops' ``repeat`` (grouped heads widened to the queries'
   heads) and whose per-head gate ``[batch, tokens, heads]`` is read only through a pattern of a
   local cast and scan of it (fla's ``naive_forgetting_attn``: ``gc = g.float().cumsum(1)`` then
   ``rearrange(gc, "b t h -> b h t 1")``): the keys were guessed as 3-D tokens ("the number of
   query heads must be divisible by the number of key/value heads") and no input ran.  The
   input side of ``repeat``/``reduce`` patterns now states a parameter's rank as ``rearrange``'s
   did, through a local bound once to rank-keeping calls on it too, and a later tensor stated
   with fewer axes than a certain 4-D first input is first guessed as that input's leading axes.
   Wrong patches (the gate's difference dropped, the scale lost, the causal mask lost) fail.
   Near-misses: a local bound twice, or to a rank-changing call (``g.sum(1)``), states nothing.
2. A constructor parameter left at its default None that the class's own error names in words
   ("Specify window size." for ``window_size``, audyn's Swin attention) was not recognised as
   named (only the spelling ``window_size`` was), so the build gave up.  It is now, and when
   ``__init__`` unpacks it into sides (``window_height, window_width = _pair(window_size)``) it
   is first given the sides of a grid of the guessed sequence (2 x 4), as a size unpacked by
   name already is.  Wrong patches (the relative bias dropped or transposed) fail.
   Near-misses: one word of a longer name ("window") names nothing; a parameter only stored is
   no grid.
3. A subclass of torch's ``nn.MultiheadAttention`` built with ``batch_first=False`` (audyn's
   Swin attention) takes [seq, batch, width], as torch documents; verify guessed only [batch,
   seq, width], so with a window of the guessed sequence no input fitted.  Such a module (or one
   of torch's transformer layers) now also gets [seq, batch, width], after every other guess.
   Wrong patches (the bias dropped or transposed) fail.  Near-misses: the same layer built
   batch-first, and a module of the code's own with a ``batch_first`` attribute, get no such
   guess.

The fixture functions are ours, written in the tests.
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("einops")

from adopter.verify.build import _names_parameter, _unpacked_in_init
from adopter.verify.inputs import _sequence_first, rearranged_ranks
from adopter.verify.result import FAIL, PASS
from verify_patches import adp010_verdicts, replacing_fix

GATED = '''import torch
from einops import rearrange, repeat


def gated_causal_attention(q, k, v, g, scale=None):
    """q: [batch, tokens, heads, width]; k, v: [batch, tokens, kv heads, width]; g: [batch, tokens, heads]."""
    _, t, heads, width = q.shape
    groups = heads // k.shape[2]
    if scale is None:
        scale = width ** -0.5
    decay = g.float().cumsum(1)
    keys = repeat(k, "b t h d -> b t (h r) d", r=groups)
    values = repeat(v, "b t h d -> b t (h r) d", r=groups)
    allowed = torch.ones(t, t, dtype=torch.bool, device=q.device).tril()
    scores = torch.einsum("bqhd,bkhd->bhqk", q * scale, keys)
    scores = scores + rearrange(decay, "b t h -> b h t 1") - rearrange(decay, "b t h -> b h 1 t")
    scores = scores.masked_fill(~allowed, float("-inf"))
    return torch.einsum("bhqk,bkhd->bqhd", scores.softmax(dim=-1), values)
'''

GATED_SITE = (
    '    scores = torch.einsum("bqhd,bkhd->bhqk", q * scale, keys)\n'
    '    scores = scores + rearrange(decay, "b t h -> b h t 1") - rearrange(decay, "b t h -> b h 1 t")\n'
    '    scores = scores.masked_fill(~allowed, float("-inf"))\n'
    '    return torch.einsum("bhqk,bkhd->bqhd", scores.softmax(dim=-1), values)\n')
GATED_RIGHT = (
    '    bias = rearrange(decay, "b t h -> b h t 1") - rearrange(decay, "b t h -> b h 1 t")\n'
    '    bias = bias.masked_fill(~allowed, float("-inf"))\n'
    '    out = torch.nn.functional.scaled_dot_product_attention(\n'
    '        (q * scale).transpose(1, 2), keys.transpose(1, 2), values.transpose(1, 2), attn_mask=bias, scale=1.0)\n'
    '    return out.transpose(1, 2)\n')
GATED_NO_GATE = GATED_RIGHT.replace(' - rearrange(decay, "b t h -> b h 1 t")', "")
GATED_NO_SCALE = GATED_RIGHT.replace("(q * scale).transpose(1, 2)", "q.transpose(1, 2)")
GATED_NOT_CAUSAL = GATED_RIGHT.replace('    bias = bias.masked_fill(~allowed, float("-inf"))\n', "")


def test_a_gated_function_over_repeated_heads_is_fed_and_its_fix_verified(tmp_path):
    # main: skip, "no inputs it accepts ... raised ValueError" (k guessed as [2, 8, 32] tokens)
    results = adp010_verdicts(tmp_path, GATED)
    assert [r.verdict for r in results] == [PASS], results


def test_the_right_hand_patch_of_the_gated_function_passes(tmp_path):
    assert GATED_SITE in GATED
    results = adp010_verdicts(tmp_path, GATED, replacing_fix(GATED_SITE, GATED_RIGHT))
    assert [r.verdict for r in results] == [PASS], results


@pytest.mark.parametrize("new", [GATED_NO_GATE, GATED_NO_SCALE, GATED_NOT_CAUSAL])
def test_a_wrong_patch_of_the_gated_function_fails(tmp_path, new):
    results = adp010_verdicts(tmp_path, GATED, replacing_fix(GATED_SITE, new))
    assert [r.verdict for r in results] == [FAIL], results


def test_repeat_and_a_rank_keeping_local_state_ranks(tmp_path):
    path = tmp_path / "ranks.py"
    path.write_text(
        "from einops import rearrange, repeat, reduce\n\n\n"
        "def f(q, k, g, m):\n"
        '    keys = repeat(k, "b t h d -> b t (h r) d", r=2)\n'
        "    decay = g.float().cumsum(1)\n"
        '    pooled = reduce(m, "b n d -> b d", "mean")\n'
        '    return rearrange(decay, "b t h -> b h t"), keys, pooled, q\n')
    assert _loaded_ranks(path) == {"k": 4, "g": 3, "m": 3}


def test_a_local_bound_twice_or_to_a_rank_changing_call_states_nothing(tmp_path):
    path = tmp_path / "ranks.py"
    path.write_text(
        "from einops import rearrange\n\n\n"
        "def f(g, s):\n"
        "    decay = g.float()\n"
        "    decay = decay[None]\n"
        "    total = s.sum(1)\n"
        '    return rearrange(decay, "o b t h -> b h t o"), rearrange(total, "b h -> h b")\n')
    assert _loaded_ranks(path) == {}


def _loaded_ranks(path) -> dict[str, int]:
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"fixture_{path.parent.name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return rearranged_ranks(module.f)


WINDOW = '''import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.modules.utils import _pair


class WindowBiasAttention(nn.Module):
    def __init__(self, embed_dim, num_heads, window_size=None, dropout=0.0):
        super().__init__()
        if window_size is None:
            raise ValueError("Specify window size.")
        window_size = _pair(window_size)
        window_height, window_width = window_size
        self.table = nn.Parameter(torch.randn(2 * window_height - 1, 2 * window_width - 1) * 0.5)
        self.window_size = window_size
        self.num_heads = num_heads
        self.qkv = nn.Linear(embed_dim, 3 * embed_dim)
        self.out = nn.Linear(embed_dim, embed_dim)
        self.dropout = dropout

    def relative_bias(self):
        h, w = self.window_size
        rows = torch.arange(h).repeat_interleave(w)
        cols = torch.arange(w).repeat(h)
        return self.table[rows[:, None] - rows[None, :] + h - 1, cols[:, None] - cols[None, :] + w - 1]

    def forward(self, x):
        b, n, d = x.shape
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        q, k, v = (t.view(b, n, self.num_heads, -1).transpose(1, 2) for t in (q, k, v))
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(q.shape[-1])
        scores = scores + self.relative_bias()
        attn = F.softmax(scores, dim=-1)
        attn = F.dropout(attn, p=self.dropout, training=self.training)
        out = torch.matmul(attn, v)
        return self.out(out.transpose(1, 2).reshape(b, n, d))
'''

WINDOW_SITE = (
    "        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(q.shape[-1])\n"
    "        scores = scores + self.relative_bias()\n"
    "        attn = F.softmax(scores, dim=-1)\n"
    "        attn = F.dropout(attn, p=self.dropout, training=self.training)\n"
    "        out = torch.matmul(attn, v)\n")
WINDOW_RIGHT = (
    "        out = F.scaled_dot_product_attention(q, k, v, attn_mask=self.relative_bias(),\n"
    "                                             dropout_p=self.dropout if self.training else 0.0,\n"
    "                                             scale=1 / math.sqrt(q.shape[-1]))\n")
WINDOW_NO_BIAS = WINDOW_RIGHT.replace("attn_mask=self.relative_bias(),", "")
WINDOW_TRANSPOSED = WINDOW_RIGHT.replace("attn_mask=self.relative_bias(),", "attn_mask=self.relative_bias().mT,")


def test_a_window_size_its_error_names_in_words_is_built_as_a_grid(tmp_path):
    # main: skip, "WindowBiasAttention(...) raised ValueError: Specify window size."
    results = adp010_verdicts(tmp_path, WINDOW)
    assert [r.verdict for r in results] == [PASS], results
    assert WINDOW_SITE in WINDOW
    results = adp010_verdicts(tmp_path, WINDOW, replacing_fix(WINDOW_SITE, WINDOW_RIGHT))
    assert [r.verdict for r in results] == [PASS], results


@pytest.mark.parametrize("new", [WINDOW_NO_BIAS, WINDOW_TRANSPOSED])
def test_a_wrong_patch_of_the_window_attention_fails(tmp_path, new):
    results = adp010_verdicts(tmp_path, WINDOW, replacing_fix(WINDOW_SITE, new))
    assert [r.verdict for r in results] == [FAIL], results


def test_an_error_names_a_parameter_as_written_or_in_its_words():
    assert _names_parameter("ValueError: Specify window size.", "window_size")
    assert _names_parameter("either max_block_size or blocks are given", "max_block_size")
    assert _names_parameter("Window  Size must be set", "window_size")
    assert not _names_parameter("Specify a window.", "window_size")  # one word of the name
    assert not _names_parameter("the windows size is odd", "window_size")
    assert not _names_parameter("Specify size.", "size_")  # a one-word name is only matched as written


def test_a_parameter_unpacked_in_init_through_one_call_is_counted(tmp_path):
    path = tmp_path / "sides.py"
    path.write_text(
        "def pair(v):\n"
        "    return (v, v) if isinstance(v, int) else tuple(v)\n\n\n"
        "class Direct:\n"
        "    def __init__(self, size=None):\n"
        "        h, w, d = pair(size) + (1,)\n"
        "        self.h, self.w = size\n\n\n"
        "class Rebound:\n"
        "    def __init__(self, window_size=None):\n"
        "        window_size = pair(window_size)\n"
        "        self.rows, self.cols = window_size\n\n\n"
        "class Stored:\n"
        "    def __init__(self, window_size=None):\n"
        "        self.window_size = window_size\n")
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"sides_{tmp_path.name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert _unpacked_in_init(module.Direct, "size") == 2
    assert _unpacked_in_init(module.Rebound, "window_size") == 2
    assert _unpacked_in_init(module.Stored, "window_size") == 0


SEQ_FIRST = '''import math

import torch
import torch.nn.functional as F
from torch import nn


class SeqFirstWindowAttention(nn.MultiheadAttention):
    def __init__(self, embed_dim, num_heads, window_size=None, batch_first=False):
        super().__init__(embed_dim, num_heads, batch_first=batch_first)
        if window_size is None:
            raise ValueError("Specify window size.")
        rows, cols = window_size
        self.sides = (rows, cols)
        self.table = nn.Parameter(torch.randn(2 * rows - 1, 2 * cols - 1) * 0.5)

    def relative_bias(self):
        h, w = self.sides
        r = torch.arange(h).repeat_interleave(w)
        c = torch.arange(w).repeat(h)
        return self.table[r[:, None] - r[None, :] + h - 1, c[:, None] - c[None, :] + w - 1]

    def forward(self, query, key, value):
        length, batch, width = query.shape
        w_q, w_k, w_v = self.in_proj_weight.chunk(3)
        b_q, b_k, b_v = self.in_proj_bias.chunk(3)
        q, k, v = F.linear(query, w_q, b_q), F.linear(key, w_k, b_k), F.linear(value, w_v, b_v)
        q, k, v = (t.reshape(t.shape[0], batch, self.num_heads, -1).permute(1, 2, 0, 3) for t in (q, k, v))
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(q.shape[-1])
        scores = scores + self.relative_bias()
        attn = scores.softmax(dim=-1)
        out = torch.matmul(attn, v)
        return self.out_proj(out.permute(2, 0, 1, 3).reshape(length, batch, width))
'''

SEQ_FIRST_SITE = (
    "        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(q.shape[-1])\n"
    "        scores = scores + self.relative_bias()\n"
    "        attn = scores.softmax(dim=-1)\n"
    "        out = torch.matmul(attn, v)\n")
SEQ_FIRST_RIGHT = ("        out = F.scaled_dot_product_attention(q, k, v, attn_mask=self.relative_bias(),\n"
                   "                                             scale=1 / math.sqrt(q.shape[-1]))\n")
SEQ_FIRST_NO_BIAS = SEQ_FIRST_RIGHT.replace("attn_mask=self.relative_bias(),", "")
SEQ_FIRST_TRANSPOSED = SEQ_FIRST_RIGHT.replace("attn_mask=self.relative_bias(),", "attn_mask=self.relative_bias().mT,")


def test_a_sequence_first_torch_attention_subclass_gets_sequence_first_inputs(tmp_path):
    # main: skip, "no inputs it accepts" (only [batch, seq, width] was tried)
    results = adp010_verdicts(tmp_path, SEQ_FIRST)
    assert [r.verdict for r in results] == [PASS], results
    assert SEQ_FIRST_SITE in SEQ_FIRST
    results = adp010_verdicts(tmp_path, SEQ_FIRST, replacing_fix(SEQ_FIRST_SITE, SEQ_FIRST_RIGHT))
    assert [r.verdict for r in results] == [PASS], results


@pytest.mark.parametrize("new", [SEQ_FIRST_NO_BIAS, SEQ_FIRST_TRANSPOSED])
def test_a_wrong_patch_of_the_sequence_first_attention_fails(tmp_path, new):
    results = adp010_verdicts(tmp_path, SEQ_FIRST, replacing_fix(SEQ_FIRST_SITE, new))
    assert [r.verdict for r in results] == [FAIL], results


def test_only_torch_layers_built_sequence_first_are_sequence_first():
    from torch import nn

    class OwnLayer(nn.Module):
        def __init__(self):
            super().__init__()
            self.batch_first = False

    assert _sequence_first(nn.MultiheadAttention(8, 2))
    assert _sequence_first(nn.TransformerEncoderLayer(8, 2, dim_feedforward=16))
    assert not _sequence_first(nn.MultiheadAttention(8, 2, batch_first=True))
    assert not _sequence_first(OwnLayer())


def test_a_reduce_or_repeat_that_is_not_einops_states_no_rank(tmp_path):
    """Only einops' functions, as the module binds them, state a rank by their pattern: a
    ``reduce`` from functools (or any same-named helper) with a string argument does not
    (review37: the call's last name alone was read)."""
    for index, (header, ranks) in enumerate((("from einops import reduce\n", {"g": 3}),
                          ("import einops\nreduce = einops.reduce\n", {"g": 3}),
                          ("from functools import reduce\n", {}),
                          ("def reduce(x, pattern):\n    return x\n", {}))):
        path = tmp_path / f"not_einops_{index}" / "mod.py"
        path.parent.mkdir()
        path.write_text(header + "\n\ndef f(g):\n" '    return reduce(g, "b t h -> b h", "sum")\n')
        assert _loaded_ranks(path) == ranks, header
