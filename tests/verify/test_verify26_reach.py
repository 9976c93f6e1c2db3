"""Three ways verify could not build or feed an attention whose patch applies (session 44,
verify26), each read from what the code does, never from a name:

1. an argument handed whole to a torch base class (``super().__init__(token_len, heads)`` over
   ``nn.MultiheadAttention``) is guessed by the base's own name for it (``embed_dim``); the
   attention sits in a helper method that another method calls with the module's own sizes and
   weights (``step(q, t, k, v)`` -> ``self.cached(q, t, k, v, self.embed_dim, ...)``), so that
   caller is tried before a direct call of the helper; and the helper's cache is made with
   ``torch.empty`` and read before it is all written, so verify hands out zeros for raw memory
   while it runs modules and gives the patched module the original's tensor attributes;
2. a size stored on self and read through a local name (``ws = self.window_size; ws[0]``) counts
   as indexed, so it is guessed as a tuple of sizes;
3. a function's count that divides another of its counts (``n_heads // kv_heads``) is also tried
   equal to it (one key/value head per query head), where inputs of one width fit.
"""

import ast
import importlib
import importlib.util
import sys
import textwrap
import uuid

import torch
from stand_in import adp010_verdicts

from adopter.verify.build import filled_empty
from adopter.verify.construct import inherit_reads
from adopter.verify.facts import argument_reads, class_nodes
from adopter.verify.inputs import divided_params
from adopter.verify.result import FAIL, PASS

# ----------------------------------------------------------------------------- 1. cached helper

CACHED = '''
import torch
import torch.nn.functional as F
from torch import nn


class StepAttention(nn.MultiheadAttention):
    def __init__(self, token_len, heads, dropout=0.0, self_only=False, max_len=64):
        super().__init__(token_len, heads, dropout)
        self.max_len = max_len
        self.self_only = self_only
        self.cache = None

    def step(self, query, t: int, key, value):
        return self.cached(query, t, key, value, self.embed_dim, self.num_heads, self.in_proj_weight,
                           self.in_proj_bias, self.out_proj.weight, self.out_proj.bias)

    def cached(self, query, t, key, value, width, heads, w, b, ow, ob):
        _, n, e = query.shape
        d = width // heads
        query = query[-1:]
        if self.cache is None or t == 1:
            self.cache = torch.empty((self.max_len, n, 3 * e))
            if not self.self_only:
                self.cache[:key.shape[0], :, e:] = F.linear(key, w[e:], b[e:])
        if self.self_only:
            self.cache[t - 1] = F.linear(query, w, b)
            q = self.cache[t - 1:t, :, :e]
            k, v = self.cache[:t, :, e:].chunk(2, dim=-1)
        else:
            q = F.linear(query, w[:e], b[:e])
            k, v = self.cache[:key.shape[0], :, e:].chunk(2, dim=-1)
        q = q * d ** -0.5
        q = q.contiguous().view(-1, n * heads, d).transpose(0, 1)
        k = k.contiguous().view(-1, n * heads, d).transpose(0, 1)
        v = v.contiguous().view(-1, n * heads, d).transpose(0, 1)
        weights = torch.bmm(q, k.transpose(1, 2))
        weights = F.softmax(weights, dim=-1)
        out = torch.bmm(weights, v)
        out = out.transpose(0, 1).contiguous().view(-1, n, width)
        return F.linear(out, ow, ob)
'''

CACHED_SITE = ("        weights = torch.bmm(q, k.transpose(1, 2))\n"
               "        weights = F.softmax(weights, dim=-1)\n"
               "        out = torch.bmm(weights, v)\n")
CACHED_RIGHT = "        out = F.scaled_dot_product_attention(q, k, v, scale=1.0)\n"
# q is already scaled: the default scale scales it twice
CACHED_WRONG = "        out = F.scaled_dot_product_attention(q, k, v)\n"


def test_cached_helper_reached_through_its_caller_passes(tmp_path, all_rules, quick):
    results = adp010_verdicts(tmp_path / "step_attention.py", textwrap.dedent(CACHED), (CACHED_SITE, CACHED_RIGHT),
                              all_rules, quick)
    assert [r.verdict for r in results] == [PASS], results
    assert "step()" in results[0].reason, results[0].reason
    assert "scaled_dot_product_attention" in results[0].details["new_torch_calls"]
    assert "token_len=32" in results[0].details["built"]  # nn.MultiheadAttention's embed_dim


def test_cached_helper_wrong_scale_fails(tmp_path, all_rules, quick):
    results = adp010_verdicts(tmp_path / "step_attention.py", textwrap.dedent(CACHED), (CACHED_SITE, CACHED_WRONG),
                              all_rules, quick)
    assert [r.verdict for r in results] == [FAIL], results


def test_torch_base_names_the_argument():
    classes = class_nodes(ast.parse(textwrap.dedent(CACHED)))
    reads = argument_reads(classes, "StepAttention")
    assert reads["token_len"].handed_as == []  # its own code only hands it to super().__init__
    module = type(sys)("m")
    exec(compile(textwrap.dedent(CACHED), "m.py", "exec"), module.__dict__)
    inherit_reads(module.StepAttention, classes, reads)
    assert ("", "embed_dim") in reads["token_len"].handed_as
    assert ("", "num_heads") in reads["heads"].handed_as
    assert reads["max_len"].handed_as == []  # not handed to the base
    # a look-alike handing the base constants: nothing recorded
    other = class_nodes(ast.parse("class Fixed(nn.MultiheadAttention):\n"
                                  "    def __init__(self, token_len):\n"
                                  "        super().__init__(16, 2)\n        self.n = token_len\n"))
    fixed_reads = argument_reads(other, "Fixed")
    inherit_reads(type("Fixed", (torch.nn.MultiheadAttention,), {}), other, fixed_reads)
    assert fixed_reads["token_len"].handed_as == []


def test_filled_empty_hands_out_zeros_inside_only():
    with filled_empty():
        assert torch.count_nonzero(torch.empty(64, 64)) == 0
        assert torch.count_nonzero(torch.empty_like(torch.ones(8, 8))) == 0
        assert torch.count_nonzero(torch.ones(3).new_empty((16, 16))) == 0
        made = torch.empty(4, 4, requires_grad=True)  # a leaf that needs grad: zeroed all the same
        assert made.requires_grad and torch.count_nonzero(made) == 0
        assert torch.empty(3, dtype=torch.bool).any().item() is False
    assert torch.empty is not None and "lambda" not in getattr(torch.empty, "__name__", "")
    assert torch.Tensor.new_empty.__name__ == "new_empty"


# ----------------------------------------------------------------------------- 2. local alias

WINDOW = '''
import math

import torch
from torch import nn


class Window(nn.Module):
    def __init__(self, dim, side_pair, num_heads):
        super().__init__()
        self.side_pair = side_pair
        self.num_heads = num_heads
        self.scale = (dim // num_heads) ** -0.5
        ws = self.side_pair
        self.table = nn.Parameter(torch.randn((2 * ws[0] - 1) * (2 * ws[1] - 1), num_heads) * 0.02)
        coords = torch.stack(torch.meshgrid(torch.arange(ws[0]), torch.arange(ws[1]), indexing="ij")).flatten(1)
        rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0)
        rel[:, :, 0] += ws[0] - 1
        rel[:, :, 1] += ws[1] - 1
        rel[:, :, 0] *= 2 * ws[1] - 1
        self.register_buffer("index", rel.sum(-1))
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        b, n, c = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.num_heads, -1).permute(2, 0, 3, 1, 4)
        q = q * self.scale
        attn = q @ k.transpose(-2, -1)
        area = math.prod(self.side_pair)
        bias = self.table[self.index.view(-1)].view(area, area, -1).permute(2, 0, 1)
        attn = attn + bias.unsqueeze(0)
        attn = attn.softmax(dim=-1)
        return self.proj((attn @ v).transpose(1, 2).reshape(b, n, c))
'''

WINDOW_SITE = ("        attn = attn + bias.unsqueeze(0)\n"
               "        attn = attn.softmax(dim=-1)\n"
               "        return self.proj((attn @ v).transpose(1, 2).reshape(b, n, c))\n")
WINDOW_RIGHT = ("        out = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=bias.unsqueeze(0), scale=1.0)\n"
                "        return self.proj(out.transpose(1, 2).reshape(b, n, c))\n")
# the bias transposed (keys for queries): wrong on every window with unequal offsets
WINDOW_WRONG = ("        out = torch.nn.functional.scaled_dot_product_attention(\n"
                "            q, k, v, attn_mask=bias.transpose(-1, -2).unsqueeze(0), scale=1.0)\n"
                "        return self.proj(out.transpose(1, 2).reshape(b, n, c))\n")


def test_size_read_through_a_local_name_is_indexed():
    classes = class_nodes(ast.parse(textwrap.dedent(WINDOW)))
    assert argument_reads(classes, "Window")["side_pair"].max_index == 1
    # a look-alike: the local name holds another stored value; the argument stays unindexed
    other = class_nodes(ast.parse("class W:\n    def __init__(self, side_pair, dims):\n"
                                  "        self.side_pair = side_pair\n        self.dims = dims\n"
                                  "        ws = self.dims\n        self.a = ws[0] + ws[1]\n"))
    reads = argument_reads(other, "W")
    assert reads["side_pair"].max_index == -1 and reads["dims"].max_index == 1


def test_window_size_read_through_a_local_name_builds_and_passes(tmp_path, all_rules, quick):
    results = adp010_verdicts(tmp_path / "window.py", textwrap.dedent(WINDOW), (WINDOW_SITE, WINDOW_RIGHT),
                              all_rules, quick)
    assert [r.verdict for r in results] == [PASS], results
    assert "side_pair=(" in results[0].details["built"]


def test_window_transposed_bias_fails(tmp_path, all_rules, quick):
    results = adp010_verdicts(tmp_path / "window.py", textwrap.dedent(WINDOW), (WINDOW_SITE, WINDOW_WRONG),
                              all_rules, quick)
    assert [r.verdict for r in results] == [FAIL], results


# ----------------------------------------------------------------------------- 3. grouped heads

GROUPED = '''
import torch


def grouped_attention(query, key, value, n_heads: int, kv_heads: int):
    b, s, _ = query.shape
    q = query.view(b, s, n_heads, -1).transpose(1, 2)
    k = key.view(b, key.shape[1], kv_heads, -1).transpose(1, 2)
    v = value.view(b, value.shape[1], kv_heads, -1).transpose(1, 2)
    if kv_heads < n_heads:
        k = k.repeat_interleave(n_heads // kv_heads, dim=1)
        v = v.repeat_interleave(n_heads // kv_heads, dim=1)
    scores = q @ k.transpose(-2, -1) / q.shape[-1] ** 0.5
    weights = torch.softmax(scores, dim=-1)
    out = weights @ v
    return out.transpose(1, 2).reshape(b, s, -1)
'''

GROUPED_SITE = ("    scores = q @ k.transpose(-2, -1) / q.shape[-1] ** 0.5\n"
                "    weights = torch.softmax(scores, dim=-1)\n"
                "    out = weights @ v\n")
GROUPED_RIGHT = "    out = torch.nn.functional.scaled_dot_product_attention(q, k, v)\n"
GROUPED_WRONG = "    out = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)\n"


def _load(tmp_path, source):
    path = tmp_path / f"m_{uuid.uuid4().hex[:8]}.py"
    path.write_text(textwrap.dedent(source))
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_divided_params(tmp_path):
    assert divided_params(_load(tmp_path, GROUPED).grouped_attention) == {"kv_heads": "n_heads"}
    plain = _load(tmp_path, "def f(x, n_head):\n    return x.shape[-1] // n_head\n")
    assert divided_params(plain.f) == {}  # the dividend is no parameter


def test_grouped_function_runs_with_one_kv_head_per_query_head(tmp_path, all_rules, quick):
    results = adp010_verdicts(tmp_path / "grouped.py", textwrap.dedent(GROUPED), (GROUPED_SITE, GROUPED_RIGHT),
                              all_rules, quick)
    assert [r.verdict for r in results] == [PASS], results
    assert results[0].details["inputs"].endswith("8, 8"), results[0].details


def test_grouped_function_wrong_patch_fails(tmp_path, all_rules, quick):
    results = adp010_verdicts(tmp_path / "grouped.py", textwrap.dedent(GROUPED), (GROUPED_SITE, GROUPED_WRONG),
                              all_rules, quick)
    assert [r.verdict for r in results] == [FAIL], results
