"""ADP010 matches whose probabilities are computed in a helper method with a flag parameter
(session 45, helper sites76).  The fixtures are ours.

A helper ``def weights(self, x, with_v=False)`` computes q, k, v from its input, the
probabilities (softmax of pre-scaled content scores plus a positional bias, dropout) and
returns ``drop(p), v`` or ``drop(p)`` by the flag; the forward calls it once as ``p, v =
self.weights(x, with_v=True)`` and takes ``p`` to the values.  The call hands the flag a
constant, so the arm it picks is known: the fused path runs the helper's statements before
the flag's test and the picked return's steps become the fused call.  The helper stays in
place (the original path, a subclass overriding it, and other callers -- a visualisation
calling ``m.weights(x)`` -- still get the probabilities).  Declined: a flag the caller hands
a name (not a constant), a flag read elsewhere in the helper, a picked arm that does more
than return.
"""

from __future__ import annotations

import textwrap

import pytest
from corpus_forms import FusedCalls, assert_reported_not_fixed, edit, float64_pair, sdpa_fixed

torch = pytest.importorskip("torch")

FLAGGED = textwrap.dedent("""\
    import torch
    from torch import nn


    def shift(t):
        return t.roll(1, dims=-1)


    class Rel(nn.Module):
        def __init__(self, dim=12, heads=3, n=7, p=0.0):
            super().__init__()
            self.heads = heads
            self.d = dim // heads
            self.to_q = nn.Linear(dim, dim)
            self.to_k = nn.Linear(dim, dim)
            self.to_v = nn.Linear(dim, dim)
            self.content_bias = nn.Parameter(torch.randn(1, heads, 1, self.d))
            self.pos = nn.Parameter(torch.randn(heads, n, self.d))
            self.drop = nn.Dropout(p)
            self.out = nn.Linear(dim, dim)

        def weights(self, x, with_v=False):
            b, n, _ = x.shape
            q, k, v = (t.view(b, n, self.heads, self.d).transpose(1, 2)
                       for t in (self.to_q(x), self.to_k(x), self.to_v(x)))
            q = q / (self.d ** 0.5)
            content = torch.einsum("bhid,bhjd->bhij", q + self.content_bias, k)
            positional = shift(torch.einsum("bhid,hjd->bhij", q, self.pos))
            logits = content + positional
            p = logits.softmax(dim=-1)  # softmax
            if with_v:
                return self.drop(p), v
            else:
                return self.drop(p)

        def forward(self, x):
            p, v = self.weights(x, with_v=True)
            o = torch.einsum("bhij,bhjd->bhid", p, v)
            return self.out(o.transpose(1, 2).reshape(x.shape))
""")


def _run(module, x, seed=None):
    leaf = x.clone().requires_grad_()
    if seed is not None:
        torch.manual_seed(seed)
    out = module(leaf)
    weights = torch.randn(out.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    return out, torch.autograd.grad((out * weights).sum(), [leaf, *module.parameters()])


def _check(code: str, x) -> str:
    fixed = sdpa_fixed(code)
    a, b = float64_pair(code, fixed, "Rel")
    counter = FusedCalls(b)
    for train in (False, True):
        a.train(train)
        b.train(train)
        (out_a, grads_a), (out_b, grads_b) = _run(a, x), _run(b, x)
        # (float64, reductions over 4 channels and 7 keys: a few ulps)
        torch.testing.assert_close(out_b, out_a, rtol=1e-12, atol=1e-12)
        for ga, gb in zip(grads_a, grads_b):
            torch.testing.assert_close(gb, ga, rtol=1e-10, atol=1e-12)
    assert counter.calls == 2
    # the helper left in place for its other callers, which still get the probabilities
    assert "def weights(self, x, with_v=False):" in fixed
    p = b.weights(x)
    torch.testing.assert_close(p, a.weights(x), rtol=0, atol=0)
    torch.testing.assert_close(p.sum(-1), torch.ones_like(p.sum(-1)))
    return fixed


def test_flag_handed_a_constant_picks_the_return_and_is_fixed():
    torch.manual_seed(5)
    fixed = _check(FLAGGED, torch.randn(2, 7, 12, dtype=torch.float64))
    assert "scaled_dot_product_attention" in fixed


def test_dropout_in_training_takes_the_fused_path_with_its_probability():
    torch.manual_seed(6)
    code = edit(FLAGGED, "n=7, p=0.0", "n=7, p=0.5")
    fixed = sdpa_fixed(code)
    a, b = float64_pair(code, fixed, "Rel")
    x = torch.randn(2, 7, 12, dtype=torch.float64)
    for module in (a, b):
        module.eval()
    torch.testing.assert_close(_run(b, x)[0], _run(a, x)[0], rtol=1e-12, atol=1e-12)
    b.train()
    counter = FusedCalls(b)
    b(x)
    assert counter.calls == 1 and "dropout_p=" in fixed


def test_a_negated_flag_picks_its_other_arm():
    torch.manual_seed(7)
    code = edit(edit(FLAGGED, "if with_v:", "if not with_v:"), "with_v=True)", "with_v=False)")
    code = edit(code, "def weights(self, x, with_v=False):", "def weights(self, x, with_v=True):")
    fixed = sdpa_fixed(code)
    a, b = float64_pair(code, fixed, "Rel")
    x = torch.randn(3, 7, 12, dtype=torch.float64)
    counter = FusedCalls(b)
    (out_a, grads_a), (out_b, grads_b) = _run(a, x), _run(b, x)
    torch.testing.assert_close(out_b, out_a, rtol=1e-12, atol=1e-12)
    for ga, gb in zip(grads_a, grads_b):
        torch.testing.assert_close(gb, ga, rtol=1e-10, atol=1e-12)
    assert counter.calls == 1


def _unchanged(code: str, why: str | None) -> None:
    from adopter.synth import fix_text
    from corpus_forms import rules

    result = fix_text(code, "model.py", rules("ADP010"))
    assert result.text == code and not result.applied
    if why is not None:
        assert any(why in reason for _, reason in result.skipped), result.skipped


def test_look_alikes_are_left_as_they_are():
    # the flag handed a name: the arm is not known where the file is read (not reported)
    named = edit(FLAGGED, "p, v = self.weights(x, with_v=True)",
                 "flag = x.dim() == 3\n        p, v = self.weights(x, with_v=flag)")
    _unchanged(named, None)
    # the flag read before its test too
    read = edit(FLAGGED, "        q = q / (self.d ** 0.5)\n", "        q = q / (self.d ** 0.5) if with_v else q\n")
    _unchanged(read, "takes its arguments in a way not read here")
    # the picked arm stores state before returning
    stored = edit(FLAGGED, "        if with_v:\n            return", "        if with_v:\n            self.last = p\n            return")
    _unchanged(stored, "takes its arguments in a way not read here")
    # the flag handed positionally
    positional = edit(FLAGGED, "with_v=True)", "True)")
    _unchanged(positional, None)
    # a second call of the helper in the caller
    twice = edit(FLAGGED, "        return self.out(", "        self.weights(x)\n        return self.out(")
    _unchanged(twice, "takes its arguments in a way not read here")
    # the caller picks the arm that returns the probabilities alone but unpacks two values
    _unchanged(edit(FLAGGED, "with_v=True)", "with_v=False)"), None)
