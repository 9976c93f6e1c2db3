"""Attention that hands its probabilities back on every call, declined by callers in forms
the decline reading did not take (probs65, session 44; the fixtures are ours):

- a caller passing a starred argument (``layer['attention'](x, x, *self._scales(layer))``):
  the flag goes after every parameter the function had, so a call that ran before cannot
  fill it by place;
- the attention an entry of ``nn.ModuleDict`` rows of an ``nn.ModuleList`` grown by
  ``self.blocks.append(layer)``, called as ``layer['attention'](...)`` in a loop over the
  list, the loop name passed through ``typing.cast``.

Look-alikes keep the original path: the probabilities read, the entry replaced after the
row is built, the loop name rebound to something else, a ``cast`` that is not typing's,
two entries of the class in a row, the flag's place reachable through ``**kwargs``.
"""

from __future__ import annotations

import pytest
from corpus_forms import float64_pair, rules

from adopter.synth import fix_text

CODE = """\
import math
from typing import Optional, cast
import torch
import torch.nn as nn


class Attention(nn.Module):
    def __init__(self, dim=8, heads=2):
        super().__init__()
        self.heads = heads
        self.q = nn.Linear(dim, dim)
        self.k = nn.Linear(dim, dim)
        self.v = nn.Linear(dim, dim)
        self.out = nn.Linear(dim, dim)

    def forward(self, xq, xkv, scale_k: Optional[torch.Tensor], scale_v: Optional[torch.Tensor]):
        b, n, c = xq.shape
        q = self.q(xq).view(b, n, self.heads, -1).transpose(1, 2)
        k = self.k(xkv).view(b, n, self.heads, -1).transpose(1, 2)
        v = self.v(xkv).view(b, n, self.heads, -1).transpose(1, 2)
        if scale_k is not None:
            k = k * scale_k
            v = v * scale_v
        logits = q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))
        probs = torch.softmax(logits, dim=-1)
        ctx = (probs @ v).transpose(1, 2).reshape(b, n, c)
        return self.out(ctx), {"logits": logits, "probs": probs}


class Stack(nn.Module):
    def __init__(self, dim=8, depth=2, scaled=False):
        super().__init__()
        self.scaled = scaled
        self.blocks = nn.ModuleList([])
        for i in range(depth):
            layer = nn.ModuleDict({"attention": Attention(dim), "ff": nn.Linear(dim, dim)})
            if i or scaled:
                layer["norm"] = nn.LayerNorm(dim)
BUILD
            self.blocks.append(layer)

    def _scales(self, layer):
        return (torch.full((1,), 0.5), torch.full((1,), 2.0)) if self.scaled else (None, None)

    def forward(self, x):
        for i, layer in enumerate(self.blocks):
CAST
            if "norm" in layer:
                x = layer["norm"](x)
CALL
            x = x + layer["ff"](h)
        return x
"""

BUILD = ""
CAST = "            layer = cast(nn.ModuleDict, layer)"
CALL = "            h, _ = layer[\"attention\"](x, x, *self._scales(layer))"


def _code(build=BUILD, cast=CAST, call=CALL) -> str:
    return CODE.replace("BUILD\n", build + "\n" if build else "").replace(
        "CAST\n", cast + "\n" if cast else "").replace("CALL", call)


def _fixed(code: str) -> str:
    return fix_text(code, "model.py", rules("ADP010")).text


@pytest.mark.parametrize("scaled", [False, True])
def test_a_module_dict_entry_called_with_a_starred_argument_declines_them(scaled):
    import torch

    code = _code()
    fixed = _fixed(code)
    assert "scaled_dot_product_attention(" in fixed
    assert 'layer["attention"](x, x, *self._scales(layer), need_weights=False)' in fixed
    a, b = float64_pair(code, fixed, "Stack", scaled=scaled)
    torch.manual_seed(1)
    x = torch.randn(2, 5, 8, dtype=torch.float64, requires_grad=True)
    ya, yb = a(x), b(x)
    # float64, 4-wide dot products, 5-key softmax, two layers: equal to rounding
    torch.testing.assert_close(yb, ya, rtol=0, atol=1e-12)
    ga = torch.autograd.grad(ya.sum(), [x, *a.parameters()])
    gb = torch.autograd.grad(yb.sum(), [x, *b.parameters()])
    for u, w in zip(ga, gb):
        torch.testing.assert_close(w, u, rtol=0, atol=1e-12)


def test_the_fused_call_runs_in_the_stack_and_not_without_the_flag():
    import torch

    code = _code()
    _, b = float64_pair(code, _fixed(code), "Stack")
    calls = []
    real = torch.nn.functional.scaled_dot_product_attention

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    x = torch.randn(2, 5, 8, dtype=torch.float64)
    torch.nn.functional.scaled_dot_product_attention = counting
    try:
        namespace = b.forward.__func__.__globals__
        saved = namespace.get("scaled_dot_product_attention")
        namespace["scaled_dot_product_attention"] = counting
        try:
            b(x)
            assert len(calls) == 2  # one fused call a layer, as the model is built
            out, stats = b.blocks[0]["attention"](x, x, None, None)  # the default: the original path
            assert set(stats) == {"logits", "probs"} and len(calls) == 2
        finally:
            if saved is not None:
                namespace["scaled_dot_product_attention"] = saved
    finally:
        torch.nn.functional.scaled_dot_product_attention = real


@pytest.mark.parametrize("build,cast,call", [
    # the probabilities read: a loss on them on every call
    (BUILD, CAST, "            h, stats = layer[\"attention\"](x, x, *self._scales(layer))\n"
                  "            h = h + stats[\"probs\"].mean()"),
    # the entry replaced after the row is built: it may be another class
    ("            layer[\"attention\"] = nn.Identity()", CAST, CALL),
    # the loop name rebound to something other than itself
    (BUILD, "            layer = self.blocks[0]", CALL),
    # a ``cast`` that is not typing's (defined here: it could return anything)
    (BUILD, "            cast = lambda t, v: v\n            layer = cast(nn.ModuleDict, layer)", CALL),
    # keyword arguments from a dict: they could hold the flag
    (BUILD, CAST, "            h, _ = layer[\"attention\"](x, x, **dict(scale_k=None, scale_v=None))"),
])
def test_look_alikes_keep_the_original_path(build, cast, call):
    fixed = _fixed(_code(build=build, cast=cast, call=call))
    assert "need_weights" not in fixed


def test_two_entries_of_the_class_in_a_row_keep_the_original_path():
    code = _code().replace('"ff": nn.Linear(dim, dim)}', '"ff": nn.Linear(dim, dim), "cross": Attention(dim)}')
    assert "need_weights" not in _fixed(code)


def test_a_starred_argument_on_an_attribute_bound_attention_declines_them():
    import torch

    code = _code().replace(
        "class Stack(nn.Module):",
        "class Block(nn.Module):\n"
        "    def __init__(self, dim=8):\n"
        "        super().__init__()\n"
        "        self.attn = Attention(dim)\n\n"
        "    def forward(self, x, *scales):\n"
        "        h, _ = self.attn(x, x, *scales)\n"
        "        return x + h\n\n\n"
        "class Stack(nn.Module):")
    fixed = _fixed(code)
    assert "self.attn(x, x, *scales, need_weights=False)" in fixed
    a, b = float64_pair(code, fixed, "Block")
    x = torch.randn(2, 5, 8, dtype=torch.float64, requires_grad=True)
    ya, yb = a(x, None, None), b(x, None, None)
    torch.testing.assert_close(yb, ya, rtol=0, atol=1e-12)
    torch.testing.assert_close(torch.autograd.grad(yb.sum(), x)[0], torch.autograd.grad(ya.sum(), x)[0],
                               rtol=0, atol=1e-12)
