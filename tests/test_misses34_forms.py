"""The dev corpus's remaining misses, read by their computation (session 28, helper misses34).
The fixtures are ours.

- ADP009: three Linear projections of one input inside one branch of an ``if`` whose other
  branch projects the parts of a pair (``if isinstance(x, Tensor): alpha = (self.lin_src(x),
  self.lin_dst(x)); x = (self.lin(x), x) else: alpha = (self.lin_src(x[0]), ...)``, a point
  transformer's query/key/value handed together to a message-passing call).  The outputs were
  followed through the branches in one pass, so the ``else`` read ``x`` as the ``if``'s
  projected pair and its own projections of the argument mixed every step into ``alpha``:
  the outputs never met.  A name labelled by one assignment in the other branch of the same
  ``if`` (no way from it to the reader) is now not what the reader reads
  (``match._other_branch``).
Near-misses: the pair's projections not handed on together (only ``x`` reaches the call), and
three projections whose outputs are concatenated by a torch function (no product, no call).

- ADP011: the mean square written as a sum divided by the summed axis's width
  (``torch.sum(x ** 2, dim=-1, keepdim=True) / x.shape[-1]``, ``x.pow(2).sum(-1, keepdim=True) /
  d`` with ``d = x.size(-1)``, ``B, T, C = x.shape`` then ``/ C``): the width is the tensor's own
  size along that axis, so the quotient is the mean (``graph._mean_of_sum``: one ``torch.mean``
  step whose node also covers the sum and the size, so the patch replaces them).  Only where
  the divisor is provably that width: openlanguagemodel's ``/ self.d_model`` (an attribute its
  base class in another file sets) stays a miss.
Near-misses: the divisor another axis's width, an attribute, another tensor's width; the sum of
a product of two tensors.
"""

from __future__ import annotations

import textwrap

import pytest
from corpus_forms import found, rules

from adopter.synth import fix_text

POINT_CONV = textwrap.dedent("""\
    import torch
    from torch import nn


    class PointConv(nn.Module):
        def __init__(self, c, o):
            super().__init__()
            self.lin = nn.Linear(c, o, bias=False)
            self.lin_src = nn.Linear(c, o, bias=False)
            self.lin_dst = nn.Linear(c, o, bias=False)

        def forward(self, x, edge_index):
            if isinstance(x, torch.Tensor):
                alpha = (self.lin_src(x), self.lin_dst(x))  # site
                x = (self.lin(x), x)
            else:
                alpha = (self.lin_src(x[0]), self.lin_dst(x[1]))
                x = (self.lin(x[0]), x[1])
            return self.propagate(edge_index, x=HANDED)
""")


def _line(code, needle):
    return next(n for n, text in enumerate(code.splitlines(), 1) if needle in text)


def test_adp009_projections_in_one_branch_handed_on_together():
    code = POINT_CONV.replace("HANDED", "x, alpha=alpha")
    hits = found(code, "ADP009")
    assert [f.line for f in hits] == [_line(code, "# site")]
    fixed = fix_text(code, "model.py", rules("ADP009")).text
    assert "fused_qkv(x, self.lin_src, self.lin_dst, self.lin)" in fixed
    # the else branch still projects the pair's parts with the three layers
    assert "alpha = (self.lin_src(x[0]), self.lin_dst(x[1]))" in fixed


def test_adp009_near_miss_one_output_handed_on():
    code = POINT_CONV.replace("HANDED", "x")
    assert found(code, "ADP009") == []


def test_adp009_near_miss_outputs_concatenated_in_branches():
    code = textwrap.dedent("""\
        import torch
        from torch import nn


        class Heads(nn.Module):
            def __init__(self, c):
                super().__init__()
                self.a = nn.Linear(c, c)
                self.b = nn.Linear(c, c)
                self.c = nn.Linear(c, c)

            def forward(self, x):
                if isinstance(x, torch.Tensor):
                    x = (self.a(x), self.b(x), self.c(x))
                else:
                    x = (self.a(x[0]), self.b(x[1]), self.c(x[2]))
                return torch.cat(x, -1)
    """)
    assert found(code, "ADP009") == []


RMS = textwrap.dedent("""\
    import torch
    from torch import nn


    class RMSNorm(nn.Module):
        def __init__(self, d, eps=1e-5):
            super().__init__()
            self.eps = eps
            self.d = d
            self.weight = nn.Parameter(torch.ones(d))

        def forward(self, x, y):
            PRELUDE
            rms = torch.sqrt(MEANSQ + self.eps)
            return x / rms * self.weight
""")


def _rms(ms, pre="pass"):
    return RMS.replace("MEANSQ", ms).replace("PRELUDE", pre)


@pytest.mark.parametrize("ms, pre", [
    ("torch.sum(x ** 2, dim=-1, keepdim=True) / x.shape[-1]", "pass"),
    ("x.pow(2).sum(-1, keepdim=True) / d", "d = x.size(-1)"),
    ("(x * x).sum(dim=-1, keepdim=True) / c", "b, t, c = x.shape"),
    ("x.float().square().sum(-1, keepdim=True) / x.size(dim=-1)", "pass"),
])
def test_adp011_sum_over_the_width_is_the_mean(ms, pre):
    torch = pytest.importorskip("torch")
    code = _rms(ms, pre)
    hits = found(code, "ADP011")
    assert [f.line for f in hits] == [_line(code, "rms = torch.sqrt")]
    fixed = fix_text(code, "model.py", rules("ADP011")).text
    assert "rms_norm(" in fixed and "eps=self.eps" in fixed
    assert ".sum(" not in fixed and "torch.sum" not in fixed
    # the patched module computes what the original does (float32 input: the upcast is a no-op)
    before, after = {}, {}
    exec(compile(code, "orig.py", "exec"), before)  # noqa: S102 (our own fixture)
    exec(compile(fixed, "fixed.py", "exec"), after)  # noqa: S102
    torch.manual_seed(0)
    a, b = before["RMSNorm"](6), after["RMSNorm"](6)
    with torch.no_grad():
        a.weight.normal_()
    b.load_state_dict(a.state_dict(), strict=True)
    x = torch.randn(2, 3, 6)
    torch.testing.assert_close(a(x, x), b(x, x))


@pytest.mark.parametrize("ms, pre", [
    ("torch.sum(x ** 2, dim=-1, keepdim=True) / x.shape[-2]", "pass"),
    ("x.pow(2).sum(-1, keepdim=True) / self.d", "pass"),
    ("x.pow(2).sum(-1, keepdim=True) / y.shape[-1]", "pass"),
    ("(x * y).sum(-1, keepdim=True) / x.shape[-1]", "pass"),
    ("(x * x).sum(dim=-1, keepdim=True) / t", "b, t, c = x.shape"),
])
def test_adp011_near_miss_another_divisor(ms, pre):
    assert found(_rms(ms, pre), "ADP011") == []
