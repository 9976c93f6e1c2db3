"""Research attention forms read in session 30 (rafix43): an in-place step of the attention.
The fixtures are ours.

- ADP010: the scores formed in each arm of ``if self.training:`` -- ``q * s @ k * s`` in one,
  ``w = torch.matmul(q, k)`` then ``w.mul_(s * s)`` in the other (jukebox's factored
  attention) --, their dtype read as ``wtype = w.dtype`` before ``w = w.float()`` and the
  probabilities cast back with ``.type(wtype)``.  The in-place method statement is a step
  where the tensor it changes was made by an earlier step of the same arm and nothing between
  read it: no other name, argument, attribute or view holds that tensor, so ``w.mul_(s)`` is
  ``w = w * s``.  ``wtype`` read at the top level before the upcast holds the product's dtype,
  q's: the cast back is to q's dtype.  The fused path runs where the arm of the in-place step
  runs (eval); the other arm goes to the original.  The same dtype read on one path (no
  arms) was declined too ("reads the scores in a way that is no step").
"""

from __future__ import annotations

import textwrap

import pytest
from corpus_forms import load_fixture as _load
from corpus_forms import rules

from adopter.synth import fix_text

torch = pytest.importorskip("torch")

FACTORED = textwrap.dedent("""\
    import math

    import torch
    import torch.nn as nn
    import torch.nn.functional as F


    class Factored(nn.Module):
        def __init__(self, dim=16, heads=2):
            super().__init__()
            self.heads = heads
            self.dim = dim
            self.qkv = nn.Linear(dim, dim * 3)
            self.drop = nn.Dropout(0.0)
            self.raw = None

        def _attn(self, q, k, v):
            scale = 1.0 / math.sqrt(math.sqrt(self.dim // self.heads))
            if self.training:
                w = torch.matmul(q * scale, k * scale)
            else:
                w = torch.matmul(q, k)
                w.mul_(scale * scale)
            wtype = w.dtype
            w = w.float()
            w = F.softmax(w, dim=-1).type(wtype)
            w = self.drop(w)
            return torch.matmul(w, v)

        def forward(self, x):
            b, n, _ = x.shape
            q, k, v = self.qkv(x).chunk(3, dim=-1)
            q = q.view(b, n, self.heads, -1).permute(0, 2, 1, 3)
            k = k.view(b, n, self.heads, -1).permute(0, 2, 3, 1)
            v = v.view(b, n, self.heads, -1).permute(0, 2, 1, 3)
            return self._attn(q, k, v)
""")


def _fix(source: str) -> str:
    return fix_text(source, "model.py", rules("ADP010")).text


def _factored(old: str, new: str) -> str:
    assert old in FACTORED
    return FACTORED.replace(old, new)


def _swap(text: str, old: str, new: str) -> str:
    assert old in text
    return text.replace(old, new)


def _check(original_source: str, fixed: str, modes=(False, True)) -> None:
    torch.manual_seed(0)
    original = _load(original_source, "Factored")().double()
    patched = _load(fixed, "Factored")().double()
    patched.load_state_dict(original.state_dict())
    x = torch.randn(2, 5, 16, dtype=torch.float64)
    for train in modes:
        original.train(train)
        patched.train(train)
        with torch.no_grad():
            assert torch.allclose(original(x), patched(x), atol=1e-9)


def test_in_place_scale_of_the_eval_arm_fixed_exactly():
    fixed = _fix(FACTORED)
    assert fixed.count("scaled_dot_product_attention(") == 1
    assert "scale=(scale * scale)" in fixed  # the eval arm's scale: the fused path runs there
    _check(FACTORED, fixed)


# The training arm written so that no attention matches there (a tanh between the product and
# the softmax): only the eval arm, with its in-place step, could be fused.
ONLY_EVAL = _factored("            w = torch.matmul(q * scale, k * scale)\n",
                      "            w = torch.tanh(torch.matmul(q * scale, k * scale))\n")
IN_PLACE = "            w = torch.matmul(q, k)\n            w.mul_(scale * scale)\n"


def test_in_place_scale_with_only_that_arm_fixed_exactly():
    fixed = _fix(ONLY_EVAL)
    assert fixed.count("scaled_dot_product_attention(") == 1
    _check(ONLY_EVAL, fixed)


# One path: the product scaled in place, `wtype = w.dtype` before `w = w.float()`.
ONE_PATH = _factored("        if self.training:\n"
                     "            w = torch.matmul(q * scale, k * scale)\n"
                     "        else:\n"
                     "            w = torch.matmul(q, k)\n"
                     "            w.mul_(scale * scale)\n",
                     "        w = torch.matmul(q, k)\n        w.mul_(scale * scale)\n")


def test_dtype_read_before_the_upcast_fixed_exactly():
    fixed = _fix(ONE_PATH)
    assert fixed.count("scaled_dot_product_attention(") == 1
    _check(ONE_PATH, fixed, modes=(False,))


def test_in_place_scale_of_a_tensor_also_stored_declined():
    # the product is also kept on the module before the in-place scale: the attribute sees it
    assert IN_PLACE in ONLY_EVAL
    source = _swap(ONLY_EVAL, IN_PLACE, "            w = torch.matmul(q, k)\n            self.raw = w\n"
                                         "            w.mul_(scale * scale)\n")
    assert _fix(source) == source


def test_in_place_scale_of_a_tensor_also_named_declined():
    # another name holds the product (and is read after the attention): it sees the change
    source = _swap(ONLY_EVAL, IN_PLACE, "            w = torch.matmul(q, k)\n            raw = w\n"
                                         "            w.mul_(scale * scale)\n")
    source = _swap(source, "        return torch.matmul(w, v)\n", "        return torch.matmul(w, v) + 0 * raw.sum()\n")
    assert _fix(source) == source


def test_in_place_scale_of_a_view_declined():
    # a view of the product is kept: changing the product in place changes the view
    source = _swap(ONLY_EVAL, IN_PLACE, "            w = torch.matmul(q, k)\n            flat = w.flatten(1)\n"
                                         "            w.mul_(scale * scale)\n            self.raw = flat\n")
    assert _fix(source) == source


def test_in_place_scale_of_the_argument_declined():
    # the arm scales the scores handed in, a tensor it did not make: the caller's tensor changes
    source = _swap(ONLY_EVAL, "    def _attn(self, q, k, v):\n", "    def _attn(self, q, k, v, w=None):\n")
    source = _swap(source, IN_PLACE, "            w.mul_(scale * scale)\n")
    source = _swap(source, "        return self._attn(q, k, v)\n", "        return self._attn(q, k, v, torch.matmul(q, k))\n")
    assert _fix(source) == source


def test_in_place_scale_of_a_product_made_before_the_if_declined():
    # the in-place step's tensor was made before the if (not by an earlier step of its arm)
    source = _swap(ONLY_EVAL, "        if self.training:\n", "        w = torch.matmul(q, k)\n        if self.training:\n")
    source = _swap(source, IN_PLACE, "            w.mul_(scale * scale)\n")
    assert _fix(source) == source


def test_dtype_read_after_the_upcast_declined():
    # `wtype` read after `w = w.float()` is float32: the probabilities stay float32
    source = _swap(ONE_PATH, "        wtype = w.dtype\n        w = w.float()\n",
                               "        w = w.float()\n        wtype = w.dtype\n")
    assert _fix(source) == source


def test_dtype_read_under_an_if_declined():
    # `wtype` assigned only under a test: not read off the scores on every path
    source = _swap(ONE_PATH, "        wtype = w.dtype\n",
                               "        wtype = torch.float32\n        if self.heads > 1:\n            wtype = w.dtype\n")
    assert _fix(source) == source
