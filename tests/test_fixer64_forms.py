"""ADP010 matches whose scores are computed in a scores-only helper handed the caller's own
names (session 44, helper fixer64).  The fixtures are ours.

A helper (a method, or a function of the file) that only computes the scores -- a centred
query's product with the keys, scaled -- called once, by the forward, as ``f = self.cov(t)``
with ``def cov(self, inp)``: the fused path runs the helper's other statements in the caller,
reading the parameter as the caller's argument and the helper's locals the caller also names
(``x``, ``y``) under fresh names, so the caller's own ``x`` is left as it was.  The helper stays
in place (the original path and a subclass overriding it call it).  Declined: a helper with
another caller, one that rebinds its parameter, one that stores state, a TorchScript helper
naming ``torch.jit`` in its body.
"""

from __future__ import annotations

import textwrap

import pytest
from corpus_forms import FusedCalls, assert_reported_not_fixed, edit, float64_pair, found, sdpa_fixed

torch = pytest.importorskip("torch")

COVARIANCE = textwrap.dedent("""\
    import torch
    from torch import nn
    import torch.nn.functional as F


    class NonLocal(nn.Module):
        def __init__(self, c=6, d=4):
            super().__init__()
            self.d = d
            self.theta = nn.Conv1d(c, d, 1)
            self.g = nn.Conv1d(c, d, 1)
            self.out = nn.Conv1d(d, c, 1)

        def forward(self, x):
            b = x.size(0)
            g_x = self.g(x).permute(0, 2, 1)
            theta_x = self.theta(x).permute(0, 2, 1)
            f = self.cov(theta_x)
            y = F.softmax(f, dim=-1)  # softmax
            y = torch.matmul(y, g_x).permute(0, 2, 1).contiguous()
            return self.out(y.view(b, self.d, *x.size()[2:])) + x

        def cov(self, inp):
            x = inp
            n, m, c = x.data.shape
            centre = x.mean(2).view(n, m, 1).expand(n, m, c)
            y = (x - centre).bmm(x.transpose(1, 2)) / c
            return y
""")

FUNCTION = textwrap.dedent("""\
    import torch
    from torch import nn


    def scores(a, b):
        scale = a.shape[-1] ** -0.5
        q = a * scale
        return torch.matmul(q, b.transpose(-2, -1))


    class Heads(nn.Module):
        def __init__(self, dim=16, heads=2):
            super().__init__()
            self.heads = heads
            self.qkv = nn.Linear(dim, 3 * dim)

        def forward(self, x, mask=None):
            n, t, _ = x.shape
            q, k, v = self.qkv(x).view(n, t, 3, self.heads, -1).permute(2, 0, 3, 1, 4)
            s = scores(q, k)
            if mask is not None:
                s = s + mask
            p = s.softmax(dim=-1)  # softmax
            return (p @ v).transpose(1, 2).reshape(n, t, -1)
""")


def _check(code: str, cls: str, x, calls_expected: int = 1, **inputs) -> str:
    """The fixed class against the original in float64: outputs and the gradients of the input
    and of every parameter alike, the fused call made ``calls_expected`` times."""
    fixed = sdpa_fixed(code)
    a, b = float64_pair(code, fixed, cls)
    counter = FusedCalls(b)
    results = []
    for module in (a, b):
        leaf = x.clone().requires_grad_()
        out = module(leaf, **inputs)
        weights = torch.randn(out.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
        results.append((out, torch.autograd.grad((out * weights).sum(), [leaf, *module.parameters()])))
    (out_a, grads_a), (out_b, grads_b) = results
    # (float64, reductions over a few channels and at most 10 keys: a few ulps)
    torch.testing.assert_close(out_b, out_a, rtol=1e-12, atol=1e-12)
    for ga, gb in zip(grads_a, grads_b):
        torch.testing.assert_close(gb, ga, rtol=1e-10, atol=1e-12)
    assert counter.calls == calls_expected
    return fixed


def test_scores_method_handed_another_name_is_fixed_with_its_locals_renamed():
    torch.manual_seed(3)
    fixed = _check(COVARIANCE, "NonLocal", torch.randn(2, 6, 10, dtype=torch.float64))
    # the helper left in place, called on the original path; the caller's `x` not rebound
    assert "def cov(self, inp):" in fixed and "f = self.cov(theta_x)" in fixed
    assert "x = theta_x" not in fixed and "x_cov = theta_x" in fixed
    assert "scale=1 / c" in fixed


def test_scores_function_of_the_file_handed_other_names():
    torch.manual_seed(4)
    mask = torch.zeros(5, 5, dtype=torch.float64).masked_fill(torch.ones(5, 5, dtype=torch.bool).triu(1), -1e4)
    fixed = _check(FUNCTION, "Heads", torch.randn(2, 5, 16, dtype=torch.float64))
    _check(FUNCTION, "Heads", torch.randn(2, 5, 16, dtype=torch.float64), mask=mask)
    assert "def scores(a, b):" in fixed
    # the helper's `q` is a name of the caller too: renamed on the fused path, the caller's q kept
    assert "q_scores = q * scale" in fixed


def test_look_alikes_are_declined_with_the_reason():
    # another caller of the helper: the fused path would replace its work for one caller only
    twice = edit(COVARIANCE, "        return self.out(", "        self.cov(g_x)\n        return self.out(")
    assert_reported_not_fixed(twice, "ADP010", "# softmax", "is called or named elsewhere in the file")
    # the helper rebinds its parameter: on the fused path that would rebind the caller's name
    rebound = edit(COVARIANCE, "        x = inp\n", "        inp = inp * 1.0\n        x = inp\n")
    assert_reported_not_fixed(rebound, "ADP010", "# softmax", "rebinds its parameter `inp`")
    # the helper stores state on every call
    stored = edit(COVARIANCE, "        return y\n", "        self.last = centre\n        return y\n")
    assert_reported_not_fixed(stored, "ADP010", "# softmax", "no plain assignment")
    # the helper reads a module name the caller hands it under its own: it would be captured
    captured = edit(edit(edit(COVARIANCE, "        x = inp\n", "        x = inp + eps\n"),
                         "import torch\n", "import torch\neps = 0.0\n"),
                    "self.cov(theta_x)", "self.cov(eps)")
    captured = edit(captured, "theta_x = self.theta", "eps = self.theta")
    assert_reported_not_fixed(captured, "ADP010", "# softmax", "names `eps`, which the caller hands it")
    # a local of the helper the caller also names is renamed, not declined (the function form's `q`)


def test_a_torchscript_helper_is_declined():
    # (sites77, session 45: a bare `@torch.jit.script` helper of plain tensor code is inlined like
    # a plain function -- tests/test_sites77_forms.py; one whose body names torch.jit is not)
    scripted = edit(FUNCTION, "def scores(a, b):", "@torch.jit.script\ndef scores(a, b):")
    scripted = edit(scripted, "    q = a * scale\n", "    q = a * scale if not torch.jit.is_scripting() else a\n")
    assert_reported_not_fixed(scripted, "ADP010", "# softmax", "TorchScript")


def test_a_product_that_is_no_attention_stays_silent():
    # the helper's product is taken to the values without a softmax: no attention
    plain = edit(FUNCTION, "p = s.softmax(dim=-1)  # softmax", "p = s  # softmax")
    assert found(plain, "ADP010") == []
