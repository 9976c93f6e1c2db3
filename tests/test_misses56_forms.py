"""A module that picks its computation by a setting fixed at construction (misses56, session
38): ``fn = getattr(self, self.mode)`` in forward, ``self.mode`` an ``__init__`` parameter,
the softmax in the helper methods the setting's values name (a non-local block's pairwise
functions).  The flow graph reads the call as ``if self.mode == "<v>": self.<v>(...)`` over the
values the file lets the setting take: the strings its constructions pass, else an ``assert
mode in [...]`` domain, else the parameter's default.  Our own fixtures, with near-misses:
modes whose methods are not attention, and a setting whose values the file cannot decide.
"""

from __future__ import annotations

import textwrap

import pytest
from corpus_forms import FusedCalls, edit, float64_pair, found, line_of, rules

from adopter.synth import fix_text

torch = pytest.importorskip("torch")

DISPATCHED = textwrap.dedent("""\
    import torch
    from torch import nn


    class PairwiseBlock(nn.Module):
        def __init__(self, channels, inner=4, scaled=True, mode="scaled"):
            super().__init__()
            assert mode in ["plain", "scaled", "averaged"]
            self.mode = mode
            self.use_scale = scaled
            self.query = nn.Conv2d(channels, inner, 1)
            self.key = nn.Conv2d(channels, inner, 1)
            self.value = nn.Conv2d(channels, inner, 1)
            self.out = nn.Conv2d(inner, channels, 1)

        def plain(self, a, b):
            w = torch.matmul(a, b)
            w = w.softmax(dim=-1)  # plain-site
            return w

        def scaled(self, a, b):
            w = torch.matmul(a, b)
            if self.use_scale:
                w /= a.shape[-1] ** 0.5
            w = w.softmax(dim=-1)  # scaled-site
            return w

        def averaged(self, a, b):
            w = torch.matmul(a, b)
            w /= w.shape[-1]  # averaged-site
            return w

        def forward(self, x):
            n, _, h, wd = x.shape
            q = self.query(x).flatten(2).permute(0, 2, 1)
            k = self.key(x).flatten(2)
            v = self.value(x).flatten(2).permute(0, 2, 1)
            pick = getattr(self, self.mode)
            weights = pick(q, k)
            y = torch.matmul(weights, v)
            return x + self.out(y.permute(0, 2, 1).reshape(n, -1, h, wd))
    """)

# the call written in place, no domain asserted: the default ("scaled") alone is the setting
INLINE_DEFAULT = edit(edit(DISPATCHED, '        assert mode in ["plain", "scaled", "averaged"]\n', ""),
                      "        pick = getattr(self, self.mode)\n        weights = pick(q, k)\n",
                      "        weights = getattr(self, self.mode)(q, k)\n")

# the file builds the block with one mode only: that mode's method, not the others
BUILT_PLAIN = edit(DISPATCHED, '        assert mode in ["plain", "scaled", "averaged"]\n', "") + textwrap.dedent("""\


    class Head(nn.Module):
        def __init__(self):
            super().__init__()
            self.block = PairwiseBlock(8, mode="plain")

        def forward(self, x):
            return self.block(x)
    """)

# Near-miss: the modes' methods normalise without a softmax (averaged, sigmoid gates): no attention
NOT_ATTENTION = edit(edit(DISPATCHED, "        w = w.softmax(dim=-1)  # plain-site\n",
                          "        w = torch.sigmoid(w)  # plain-site\n"),
                     "        w = w.softmax(dim=-1)  # scaled-site\n",
                     "        w = w / w.sum(dim=-1, keepdim=True)  # scaled-site\n")

# Near-miss: the file builds the block with a mode read from a config: it cannot decide the values
UNDECIDED = edit(DISPATCHED, '        assert mode in ["plain", "scaled", "averaged"]\n', "") + textwrap.dedent("""\


    class Head(nn.Module):
        def __init__(self, cfg):
            super().__init__()
            self.block = PairwiseBlock(8, mode=cfg["mode"])

        def forward(self, x):
            return self.block(x)
    """)


def starts(code: str) -> list:
    """The first lines of the ADP010 findings: each match starts at the picked method's product."""
    return sorted(f.line for f in found(code, "ADP010"))


def product_in(code: str, method: str) -> int:
    """The line of the first statement (the product) of ``method``."""
    return line_of(code, f"    def {method}(self, a, b):") + 1


def test_a_method_picked_by_an_asserted_setting_is_read_for_every_value():
    assert starts(DISPATCHED) == [product_in(DISPATCHED, "plain"), product_in(DISPATCHED, "scaled")]


def test_the_parameter_default_decides_when_nothing_else_does():
    assert starts(INLINE_DEFAULT) == [product_in(INLINE_DEFAULT, "scaled")]


def test_the_files_constructions_decide_the_values():
    assert starts(BUILT_PLAIN) == [product_in(BUILT_PLAIN, "plain")]


def test_modes_whose_methods_are_not_attention_are_not_found():
    assert found(NOT_ATTENTION, "ADP010") == []


def test_a_setting_the_file_cannot_decide_reads_nothing():
    assert found(UNDECIDED, "ADP010") == []


def test_the_dispatched_attention_is_fixed_under_guards_on_the_setting():
    # the softmax sits in a method the setting picks, handed the caller's q and k under its own
    # names a and b: since fixer64 (session 44) each picked method is inlined with its parameters
    # read as the caller's names, under a guard on self.mode (rafix62's); the third value
    # ("averaged", no softmax) takes the original.  float64 outputs and gradients alike.
    fixed = fix_text(DISPATCHED, "model.py", rules("ADP010")).text
    assert fixed.count("scaled_dot_product_attention(") == 2  # (one call for each softmax site)
    assert "self.mode != 'plain'" in fixed and "self.mode != 'scaled'" in fixed
    for mode, calls in (("plain", 1), ("scaled", 1), ("averaged", 0)):
        for scaled in (True, False):
            a, b = float64_pair(DISPATCHED, fixed, "PairwiseBlock", channels=6, mode=mode, scaled=scaled)
            counter = FusedCalls(b)
            x = torch.randn(2, 6, 4, 5, dtype=torch.float64)
            results = []
            for module in (a, b):
                leaf = x.clone().requires_grad_()
                out = module(leaf)
                results.append((out, torch.autograd.grad(out.square().sum(), [leaf, *module.parameters()])))
            # (float64, softmax over 20 keys of 4-wide products)
            torch.testing.assert_close(results[1][0], results[0][0], rtol=1e-12, atol=1e-12)
            for ga, gb in zip(results[0][1], results[1][1]):
                torch.testing.assert_close(gb, ga, rtol=1e-10, atol=1e-12)
            assert counter.calls == calls