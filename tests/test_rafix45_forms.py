"""Research attention found but not fixed (rafix45): biases added to the scores in a ``for`` loop
(AlphaFold/OpenFold-style attention, boltz's triangular attention: ``for b in biases: a += b``
before the softmax).  The fixtures are ours.

The fused path runs the same loop on zeros of the scores' shape and q's dtype (``a_bias =
q.new_zeros(shape)`` then ``for b in biases: a_bias += b``): the biases' sum as the scores would
get it, in place (their dtype kept), which is the fused call's ``attn_mask``; no bias gives zeros,
no change.  Positives computed against the original in float64 (outputs and the gradients of the
input and of the biases): a free attention function a module calls with a list of two biases
(one broadcast over the heads), a scaled product in a module's forward with two, one or no
biases.  Declined (found, left as written): ``s = s + bias`` in the loop (a bias of another dtype
may widen the scores, which no guard can tell before the loop without iterating it), a bias
that reads the scores, a loop body that does more than the add, an iterable made from the
scores, and a bias list extended inside the attention.
"""

from __future__ import annotations

import textwrap

import pytest
from corpus_forms import covered, float64_pair, rules

from adopter.synth import fix_text

CODE = textwrap.dedent("""\
    import torch
    from torch import nn


    def softmax_keep(t, dim=-1):
        return torch.nn.functional.softmax(t, dim=dim)


    def attend(query, key, value, biases):
        key = key.transpose(-1, -2)
        a = torch.matmul(query, key)
        for b in biases:
            a += b
        a = softmax_keep(a, -1)
        a = torch.matmul(a, value)
        return a


    class Biased(nn.Module):
        def __init__(self, dim=8, heads=2):
            super().__init__()
            self.heads = heads
            self.d = dim // heads
            self.qkv = nn.Linear(dim, 3 * dim)
            self.out = nn.Linear(dim, dim)

        def forward(self, x, pair_bias, mask_bias):
            b, n, _ = x.shape
            q, k, v = self.qkv(x).view(b, n, 3, self.heads, self.d).permute(2, 0, 3, 1, 4)
            q = q * self.d ** -0.5
            o = attend(q, k, v, [pair_bias, mask_bias])
            return self.out(o.transpose(1, 2).reshape(b, n, -1))


    class Summed(nn.Module):
        def __init__(self, scale=0.5):
            super().__init__()
            self.scale = scale

        def forward(self, q, k, v, biases):
            s = q @ k.transpose(-2, -1) * self.scale
            for bias in biases:
                s += bias  # loop add
            p = s.softmax(dim=-1)
            return p @ v


    class Rebound(nn.Module):
        def forward(self, q, k, v, biases):
            s = q @ k.transpose(-2, -1)
            for bias in biases:
                s = s + bias  # rebound add
            return s.softmax(dim=-1) @ v


    class ReadsScores(nn.Module):
        def forward(self, q, k, v, biases):
            s = q @ k.transpose(-2, -1)
            for bias in biases:
                s += bias * s.sigmoid()  # reads scores
            return s.softmax(dim=-1) @ v


    class TwoStatements(nn.Module):
        def forward(self, q, k, v, biases):
            s = q @ k.transpose(-2, -1)
            for bias in biases:
                s += bias  # two statements
                s = s.clamp(-10, 10)
            return s.softmax(dim=-1) @ v


    class FromScores(nn.Module):
        def forward(self, q, k, v):
            s = q @ k.transpose(-2, -1)
            for bias in s.unbind(1):
                s += bias.unsqueeze(1)  # from scores
            return s.softmax(dim=-1) @ v


    class BuiltInside(nn.Module):
        def forward(self, q, k, v, pos, biases):
            s = q @ k.transpose(-2, -1)
            biases.append(pos)
            for bias in biases:
                s += bias  # built inside
            return s.softmax(dim=-1) @ v
""")


def _fixed() -> str:
    return fix_text(CODE, "model.py", rules("ADP010")).text


def _part(text: str, head: str) -> str:
    start = text.index(head)
    end = min((i for i in (text.find("\nclass ", start + 1), text.find("\ndef ", start + 1)) if i != -1),
              default=len(text))
    return text[start:end]


def _grads_match(ya, yb, xs_a, xs_b):
    import torch

    torch.testing.assert_close(yb, ya)
    ga = torch.autograd.grad(ya.square().sum(), xs_a)
    gb = torch.autograd.grad(yb.square().sum(), xs_b)
    for x, y in zip(gb, ga):
        torch.testing.assert_close(x, y)


def test_biases_added_in_a_loop_of_a_free_function_fixed_exactly():
    import torch

    text = _fixed()
    fixed = _part(text, "def attend(")
    assert "scaled_dot_product_attention(" in fixed and "for b in biases:" in fixed
    assert "a_bias += b" in fixed and "attn_mask=a_bias" in fixed
    a, b = float64_pair(CODE, text, "Biased")
    torch.manual_seed(3)
    x = torch.randn(2, 5, 8, dtype=torch.float64, requires_grad=True)
    pair = torch.randn(2, 2, 5, 5, dtype=torch.float64, requires_grad=True)
    per_key = torch.randn(2, 1, 1, 5, dtype=torch.float64, requires_grad=True)  # broadcast over heads, queries
    for module in (a, b):
        module.train()
    _grads_match(a(x, pair, per_key), b(x, pair, per_key), (x, pair, per_key), (x, pair, per_key))


@pytest.mark.parametrize("count", [0, 1, 2])
def test_biases_added_in_a_loop_after_the_scale_fixed_exactly(count):
    import torch

    text = _fixed()
    fixed = _part(text, "class Summed(")
    assert "scaled_dot_product_attention(" in fixed and "s_bias += bias" in fixed
    a, b = float64_pair(CODE, text, "Summed")
    torch.manual_seed(4)
    q, k, v = (torch.randn(2, 3, 4, 6, dtype=torch.float64, requires_grad=True) for _ in range(3))
    biases = [torch.randn(2, 3, 4, 4, dtype=torch.float64, requires_grad=True) for _ in range(count)]
    xs = (q, k, v, *biases)
    _grads_match(a(q, k, v, biases), b(q, k, v, list(biases)), xs, xs)


def test_loop_add_keeps_the_scores_dtype_as_the_original():
    import torch

    # a float64 bias added in place to float32 scores: the in-place add keeps float32, as the
    # stand-in of zeros in q's dtype does, so the mask is in the scores' dtype (SDPA's rule)
    text = _fixed()
    assert "attn_mask=s_bias" in _part(text, "class Summed(")
    a, b = float64_pair(CODE, text, "Summed")
    a, b = a.float(), b.float()
    torch.manual_seed(5)
    q, k, v = (torch.randn(1, 2, 3, 4) for _ in range(3))
    biases = [torch.randn(1, 2, 3, 3, dtype=torch.float64)]
    ya, yb = a(q, k, v, biases), b(q, k, v, biases)
    assert ya.dtype == yb.dtype == torch.float32
    torch.testing.assert_close(yb, ya)


@pytest.mark.parametrize(("cls", "needle"), [
    ("Rebound", "# rebound add"),
    ("ReadsScores", "# reads scores"),
    ("TwoStatements", "# two statements"),
    ("FromScores", "# from scores"),
    ("BuiltInside", "# built inside"),
])
def test_loop_near_misses_found_and_declined(cls, needle):
    assert covered(CODE, needle, "ADP010")
    assert _part(_fixed(), f"class {cls}(") == _part(CODE, f"class {cls}(")


def test_loop_decline_reasons_say_why():
    reasons = [why for _, why in fix_text(CODE, "model.py", rules("ADP010")).skipped]
    assert any("as `a = a + b`" in why for why in reasons)
    # a bias that reads the scores' values is no mask (mend49, ``[forward] given``): those two
    # sites are read on the loop's zero-iteration path, the loop a statement between its steps
    # (and TwoStatements' loop, as before)
    assert sum("between the attention steps is not simple" in why for why in reasons) == 3
    assert any("inside the attention" in why for why in reasons)
