"""ADP010 where a statement kept between the replaced steps changes what they read, or reads what
they changed (review55, session 44).  The fused call runs where the context product was, after
the kept statements: an in-place change of k (``k.mul_(2.0)``, ``k += 1``, ``k[..., 0] = 0``,
``out=k``) or an assignment of an attribute a scores helper reads (``self.temp``) between the
scores and the product would reach it, and a helper changing its argument in place
(``a.mul_(scale)``) would change the caller's ``q`` after a kept ``r = q.sum()`` read it.  Those
are declined; look-alikes (an in-place change of v, which the product reads there anyway; a
read of k without a write; an attribute the helper does not read; a helper's in-place change
read by nothing in between) are still patched, checked in float64 against the original."""

from __future__ import annotations

import textwrap

import pytest

torch = pytest.importorskip("torch")

from sdpa_modules import RULES, fused_calls_of_equal_steps

from adopter.synth import fix_text

F64 = torch.float64

FUNC = textwrap.dedent('''
    import torch
    from torch import nn


    def scores(a, b):
        scale = a.shape[-1] ** -0.5
        return torch.matmul(SCALED, b.transpose(-2, -1))


    class Heads(nn.Module):
        def __init__(self, dim=16, heads=2):
            super().__init__()
            self.heads = heads
            self.qkv = nn.Linear(dim, 3 * dim)

        def forward(self, x, mask=None):
            n, t, _ = x.shape
            q, k, v = self.qkv(x).view(n, t, 3, self.heads, -1).permute(2, 0, 3, 1, 4)
            k = k * 1.0
            q = q * 1.0
            v = v * 1.0
            s = scores(q, k)
            BETWEEN
            r = 0.0
            if mask is not None:
                s = s + mask
            p = s.softmax(dim=-1)
            return (p @ v + r).transpose(1, 2).reshape(n, t, -1)
''')

METHOD = textwrap.dedent('''
    import torch
    from torch import nn


    class Heads(nn.Module):
        def __init__(self, dim=16, heads=2):
            super().__init__()
            self.heads = heads
            self.temp = 1.0
            self.count = 0.0
            self.qkv = nn.Linear(dim, 3 * dim)

        def scores(self, a, b):
            return torch.matmul(a, b.transpose(-2, -1)) / self.temp

        def forward(self, x, mask=None):
            n, t, _ = x.shape
            q, k, v = self.qkv(x).view(n, t, 3, self.heads, -1).permute(2, 0, 3, 1, 4)
            self.temp = 4.0
            s = self.scores(q, k)
            BETWEEN
            if mask is not None:
                s = s + mask
            p = s.softmax(dim=-1)
            return (p @ v).transpose(1, 2).reshape(n, t, -1)
''')

INLINE = FUNC.replace("s = scores(q, k)", "s = torch.matmul(q * q.shape[-1] ** -0.5, k.transpose(-2, -1))")


def _source(template: str, between: str, scaled: str = "a * scale") -> str:
    source = template.replace("BETWEEN", between).replace("SCALED", scaled)
    assert "BETWEEN" not in source and "SCALED" not in source
    return source


DECLINED = {
    "helper changes q in place, read between": (FUNC, "r = q.sum()", "a.mul_(scale)"),
    "k.mul_ after a helper's scores": (FUNC, "k.mul_(2.0)", "a * scale"),
    "k.mul_ after inline scores": (INLINE, "k.mul_(2.0)", "a * scale"),
    "k += 1": (INLINE, "k += 1.0", "a * scale"),
    "k[..., 0] = 0": (FUNC, "k[..., 0] = 0.0", "a * scale"),
    "out=k": (INLINE, "torch.mul(k, 2.0, out=k)", "a * scale"),
    "q rebound": (INLINE, "q = q * 2.0", "a * scale"),
    "the helper's attribute set": (METHOD, "self.temp = 1.0", None),
    "torch.nn.init.zeros_(k)": (INLINE, "torch.nn.init.zeros_(k)", "a * scale"),
}


@pytest.mark.parametrize("case", sorted(DECLINED))
def test_a_change_between_the_steps_of_what_they_read_is_declined(case):
    template, between, scaled = DECLINED[case]
    source = _source(template, between, scaled or "")
    result = fix_text(source, "attention.py", RULES)
    assert result.error is None
    assert not result.applied, case
    assert result.skipped, case  # (declined with a reason, not passed over)


PATCHED = {
    "v.mul_ (the product reads it there)": (FUNC, "v.mul_(2.0)", "a * scale"),
    "a read of k": (INLINE, "r = k.sum()", "a * scale"),
    "an attribute the helper does not read": (METHOD, "self.count = 1.0", None),
    "a helper's in-place change read by nothing between": (FUNC, "pass", "a.mul_(scale)"),
    # (review56: a torch function's in-place change is of its argument, not of ``torch``)
    "torch.sigmoid_ of a value the steps do not read": (INLINE, "g = x * 1.0; torch.sigmoid_(g)", "a * scale"),
}


@pytest.mark.parametrize("case", sorted(PATCHED))
def test_look_alikes_are_patched_and_compute_what_the_original_does(case):
    template, between, scaled = PATCHED[case]
    source = _source(template, between, scaled or "")
    torch.manual_seed(1)
    x = torch.randn(2, 5, 16, dtype=F64)
    assert fused_calls_of_equal_steps(source, x, None) == 2  # eval and training: the fused call, no mask
    mask = torch.randn(2, 2, 5, 5, dtype=F64)
    fused_calls_of_equal_steps(source, x, mask)
