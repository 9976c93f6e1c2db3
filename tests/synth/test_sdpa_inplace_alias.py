"""ADP010 where a statement kept between the replaced steps may change q, k or the mask in place
through another name or a call (review56, session 45).  The fused call runs where the context
product was and reads the tensors there; the steps it replaces read them earlier.  A change made
through an alias (``kk = k; kk.mul_(2.0)``, a view ``k0 = k[0]; k0.zero_()``, ``k.data``,
``self.cache = k; self.cache[0] = 0``), by a call with ``inplace=True`` (a function, or a module
attribute built with it), by ``nn.init.*_``/``F.relu_``, or by a function or method of the same
file handed the tensor is declined.  Look-alikes -- the same forms on a copy (``k.clone()``), on
a tensor the steps do not read, an out-of-place ``F.relu(k)``, a same-file function handed a
new tensor -- are still patched, checked in float64 (eval and training, with and without a
mask) against the original."""

from __future__ import annotations

import textwrap

import pytest

torch = pytest.importorskip("torch")

from sdpa_modules import (
    RULES,
    assert_moved_change_alters_output,
    fused_calls_of_equal_steps,
)

from adopter.synth import fix_text

F64 = torch.float64

TEMPLATE = textwrap.dedent('''
    import torch
    import torch.nn.functional as F
    from torch import nn


    def double_(t):
        t.mul_(2.0)
        return t


    def total(t):
        return t.sum()


    class Heads(nn.Module):
        def __init__(self, dim=16, heads=2):
            super().__init__()
            self.heads = heads
            self.qkv = nn.Linear(dim, 3 * dim)
            self.gate = nn.Linear(dim, dim)
            self.act = nn.ReLU(inplace=True)
            self.soft = nn.ReLU()

        def bump(self, t):
            t.add_(1.0)

        def bump_first(self, t, u):
            t.mul_(u.abs().mean() + 1.0)
            return t

        def forward(self, x, mask=None):
            n, t, _ = x.shape
            q, k, v = self.qkv(x).view(n, t, 3, self.heads, -1).permute(2, 0, 3, 1, 4)
            q = q * 1.0
            k = k * 1.0
            v = v * 1.0
            g = self.gate(x)
            s = torch.matmul(q, k.transpose(-2, -1)) * q.shape[-1] ** -0.5
            BETWEEN
            if mask is not None:
                s = s + mask
            p = s.softmax(dim=-1)
            return (p @ v).transpose(1, 2).reshape(n, t, -1) * g
''')


def _source(between: str) -> str:
    lines = between.split("; ")
    source = TEMPLATE.replace("BETWEEN", ("\n" + " " * 8).join(lines))
    assert "BETWEEN" not in source
    return source


DECLINED = {
    "alias then in place": "kk = k; kk.mul_(2.0)",
    "alias of q then in place": "qq = q; qq.add_(1.0)",
    "an index view then in place": "k0 = k[0]; k0.zero_()",
    "a column view then in place": "kc = k[:, 0]; kc.zero_()",
    "a transposed view then in place": "kt = k.transpose(-2, -1); kt.mul_(2.0)",
    "an unsqueezed view then item store": "ku = k.unsqueeze(0); ku[..., 0] = 0.0",
    "a view() then in place": "kv = k.view(k.shape); kv.mul_(2.0)",
    "k.data chain": "k.data.mul_(2.0)",
    "k.data bound then in place": "kd = k.data; kd.mul_(2.0)",
    "F.relu inplace=True": "F.relu(k, inplace=True)",
    "functional hardtanh inplace=True": "nn.functional.hardtanh(k, -0.1, 0.1, inplace=True)",
    "module attribute built with inplace=True": "self.act(k)",
    "F.relu_": "F.relu_(k)",
    "nn.init.*_": "nn.init.constant_(k, 0.5)",
    "same-file function handed k": "double_(k)",
    "self method handed q": "self.bump(q)",
    "self method changing its first parameter, handed k there by keyword": "self.bump_first(g, k); self.bump_first(u=g, t=k)",
    "attribute alias then item store": "self.cache = k; self.cache[0] = 0.0",
    "alias in a tuple then in place": "a, b = k, v; a.mul_(2.0)",
    "base alias then in place": "kk = k; kk2 = kk[1]; kk2.mul_(2.0)",
}


@pytest.mark.parametrize("case", sorted(DECLINED))
def test_a_possible_in_place_change_between_the_steps_is_declined(case):
    source = _source(DECLINED[case])
    result = fix_text(source, "attention.py", RULES)
    assert result.error is None
    assert not result.applied, case
    assert result.skipped, case
    assert any("in place" in str(reason) for reason in result.skipped), result.skipped


PATCHED = {
    "a copy changed in place": "kk = k.clone(); kk.mul_(2.0)",
    "an out-of-place relu of k": "r = F.relu(k)",
    "inplace=False": "r = F.relu(k, inplace=False)",
    "a module attribute built without inplace": "r = self.soft(k)",
    "an in-place relu of another tensor": "F.relu_(g)",
    "a module built with inplace=True on another tensor": "g = self.act(g)",
    "a same-file function handed a new tensor": "g = double_(g * 1.0)",
    "a same-file function handed another tensor": "g = double_(g)",
    "a product of k changed in place": "kk = k * 2.0; kk.mul_(2.0)",
    "a same-file function that only reads k": "r = total(k)",
    "a method changing another argument in place, handed k to read": "g = self.bump_first(g, k)",
    "an in-place method of another tensor taking k": "g.masked_fill_(g > 5.0, 0.0); g.add_(k.sum())",
}


@pytest.mark.parametrize("case", sorted(PATCHED))
def test_look_alikes_are_patched_and_compute_what_the_original_does(case):
    source = _source(PATCHED[case])
    torch.manual_seed(1)
    x = torch.randn(2, 5, 16, dtype=F64)
    assert fused_calls_of_equal_steps(source, x, None) == 2  # eval and training: the fused call, no mask
    mask = torch.randn(2, 2, 5, 5, dtype=F64)
    fused_calls_of_equal_steps(source, x, mask)


@pytest.mark.parametrize("case", sorted(DECLINED))
def test_each_declined_form_changes_what_a_fused_call_would_read(case):
    """The guard is not idle: with the change moved before the scores (where a fused call at the
    product would read the tensors), the output differs from the original's."""
    assert_moved_change_alters_output(_source(DECLINED[case]), DECLINED[case])
