"""Members taken back by unpacking the module's ordered children (research97's blind batch:
LeViT-style research code's ``Linear_BN``, an ``nn.Sequential`` subclass filled with
``add_module('c', Linear)`` / ``add_module('bn', BatchNorm1d)`` whose own forward reads
``l, bn = self._modules.values()`` and returns ``bn(l(x).flatten(0, 1)).reshape_as(...)``).
A module keeps its children in registration order, so the names are the two members and the
pair is an ADP008 place (the fix folds it; verified numerically below).  Look-alikes that must
not match: the registrations in the other order (BatchNorm1d first, then the Linear), and a
registration under an ``if`` or a child assigned on the side (the order is not read: the names
stay untyped).  The fixtures are ours.
"""

from __future__ import annotations

import textwrap

from corpus_forms import assert_bn_fold_matches, found, rules

from adopter.synth import fix_text

LINEAR_BN = textwrap.dedent("""\
    import torch


    class LinearNorm(torch.nn.Sequential):
        def __init__(self, a, b, init=1.0):
            super().__init__()
            self.add_module("FIRST", FIRST_LAYER)
            bn = torch.nn.BatchNorm1d(b)
            torch.nn.init.constant_(bn.weight, init)
            self.add_module("SECOND", SECOND_LAYER)

        def forward(self, x):
            l, bn = self._modules.values()
            x = l(x)
            return bn(x.flatten(0, 1)).reshape_as(x)  # norm
""")


def _code(first="lin", first_layer="torch.nn.Linear(a, b, bias=False)", second="bn", second_layer="bn"):
    return (LINEAR_BN.replace("FIRST_LAYER", first_layer).replace("SECOND_LAYER", second_layer)
            .replace('"FIRST"', f'"{first}"').replace('"SECOND"', f'"{second}"'))


def _norm_line(code):
    return next(n for n, text in enumerate(code.splitlines(), 1) if "# norm" in text)


def test_unpacked_children_are_the_registered_members():
    code = _code()
    hits = found(code, "ADP008")
    assert len(hits) == 1
    assert hits[0].line <= _norm_line(code) <= hits[0].end_line


def test_unpacked_children_fix_matches_the_original():
    code = _code()
    fixed = fix_text(code, "model.py", rules("ADP008")).text
    assert "linear_bn(" in fixed
    # float64, six-term dot products: folding reorders a few roundings only
    assert_bn_fold_matches(code, fixed, "LinearNorm", (6, 4), (3, 5, 6), atol=1e-12)


def test_norm_registered_first_is_no_pair():
    # the first child is the BatchNorm1d, the second the Linear: l is the norm, bn the Linear
    code = _code(first="bn", first_layer="torch.nn.BatchNorm1d(a)",
                 second="lin", second_layer="torch.nn.Linear(a, b, bias=False)")
    assert found(code, "ADP008") == []


def test_order_not_read_from_init_types_nothing():
    # a registration under an if: which child comes first is not fixed by the text
    code = _code().replace('        self.add_module("lin"', '        if a:\n            self.add_module("lin"')
    assert found(code, "ADP008") == []
    # a child assigned on the side takes a place of its own among the children
    code = _code().replace("super().__init__()\n", "super().__init__()\n        self.pre = torch.nn.Identity()\n")
    assert found(code, "ADP008") == []


# -- ADP010: the scores multiplied by two factors in a row --------------------------------------
# (research97's blind batch: x-metaformer's attention scales the scores by the fixed
# head_dim ** -0.5 and then by a learned per-head temperature, ``scores * c * self.scale``; the
# rule held one multiplicative step, so the softmax was no site.)

TWO_FACTORS = textwrap.dedent("""\
    import torch
    from torch import nn


    class Attention(nn.Module):
        def __init__(self, dim, heads=2, head_dim=4, drop=0.0):
            super().__init__()
            self.heads = heads
            self.head_dim = head_dim
            self.qkv = nn.Linear(dim, 3 * heads * head_dim, bias=False)
            self.out = nn.Linear(heads * head_dim, dim)
            self.drop = nn.Dropout(drop)
            self.scale = nn.Parameter(torch.ones(1, heads, 1, 1))

        def forward(self, x):
            b, n, _ = x.shape
            q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, -1).permute(2, 0, 3, 1, 4).unbind(0)
            scores = (q @ k.transpose(-1, -2)) * SCALED
            attention = self.drop(scores.softmax(-1)) @ v  # softmax
            return self.out(attention.transpose(1, 2).reshape(b, n, -1))
""")


def _two(scaled="self.head_dim ** -0.5 * self.scale"):
    return TWO_FACTORS.replace("SCALED", scaled)


def _softmax_covered(code):
    line = next(n for n, text in enumerate(code.splitlines(), 1) if "# softmax" in text)
    return [f for f in found(code, "ADP010") if f.line <= line <= f.end_line]


def test_two_scale_factors_in_a_row_are_attention():
    assert len(_softmax_covered(_two())) == 1
    assert len(_softmax_covered(_two("self.scale * 0.5"))) == 1


def test_two_scale_factors_fix_matches_the_original():
    import torch

    for scaled in ("self.head_dim ** -0.5 * self.scale", "self.head_dim ** -0.5 * 2.0"):
        code = _two(scaled)
        fixed = fix_text(code, "model.py", rules("ADP010")).text
        assert "scaled_dot_product_attention(" in fixed, scaled
        scopes = []
        for text, name in ((code, "orig.py"), (fixed, "fixed.py")):
            scope: dict = {}
            exec(compile(text, name, "exec"), scope)  # noqa: S102 (our own fixture, and its fix)
            scopes.append(scope)
        torch.manual_seed(0)
        a = scopes[0]["Attention"](6).double()
        b = scopes[1]["Attention"](6).double()
        with torch.no_grad():
            a.scale.uniform_(0.5, 2.0)  # a temperature that differs between the heads
        b.load_state_dict(a.state_dict(), strict=True)
        x = torch.randn(3, 5, 6, dtype=torch.float64)
        for mode in (a.eval, a.train):
            mode()
            b.train(a.training)
            # float64, four-term dot products over five keys: the fused call reorders roundings only
            torch.testing.assert_close(b(x), a(x), rtol=0, atol=1e-12)


def test_two_factors_through_helpers_are_reported():
    # x-metaformer's shape: the product and each scaling in a method of their own
    code = textwrap.dedent("""\
        import torch
        from torch import nn


        class Attention(nn.Module):
            def __init__(self, dim, heads=2, head_dim=4, l2=False):
                super().__init__()
                self.heads, self.head_dim, self.l2 = heads, head_dim, l2
                self.qkv = nn.Linear(dim, 3 * heads * head_dim, bias=False)
                self.drop = nn.Dropout(0.0)
                self.scale = nn.Parameter(torch.ones(1, heads, 1, 1))

            def scale_scores(self, scores):
                return scores * (self.head_dim ** -0.5 if not self.l2 else 1.0) * self.scale

            def compute_scores(self, q, k):
                return q @ k.transpose(-1, -2)

            def forward(self, x):
                b, n, _ = x.shape
                q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, -1).permute(2, 0, 3, 1, 4).unbind(0)
                scores = self.scale_scores(self.compute_scores(q, k))
                return self.drop(scores.softmax(-1)) @ v  # softmax
    """)
    assert len(_softmax_covered(code)) == 1


def test_factor_computed_from_the_scores_is_no_scale():
    # s * sigmoid(s) * c: a function of the scores, not a factor (the pattern's `independent`)
    code = _two().replace("scores = (q @ k.transpose(-1, -2)) * self.head_dim ** -0.5 * self.scale",
                          "s = q @ k.transpose(-1, -2)\n        scores = s * torch.sigmoid(s) * 0.5")
    assert "scores = s * torch.sigmoid(s) * 0.5" in code
    assert _softmax_covered(code) == []
    # the softmax over the queries' axis is no attention, however the scores are scaled
    assert _softmax_covered(_two().replace("scores.softmax(-1)", "scores.softmax(-2)")) == []
