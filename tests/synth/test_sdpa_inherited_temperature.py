"""ADP010 in a subclass whose scores are scaled by a learned per-head temperature that its
same-file base class's ``__init__`` makes (``self.temperature = nn.Parameter(torch.ones(heads, 1,
1))``) while the subclass assigns nothing to it (hsir's Restormer ``LocalAttention(Attention)``).
The fix passed ``scale=self.temperature`` (a tensor, which ``scale=`` refuses) because only the
subclass's own body was read; the base's value now says it is a tensor constant along the keys,
folded into the query as it is in the base's own attention.  A subclass that assigns its own
number keeps ``scale=``.  Checked numerically in float64, forward and backward."""

from __future__ import annotations

import textwrap

import pytest

torch = pytest.importorskip("torch")

from sdpa_modules import assert_same_step, load, sdpa_fixed  # noqa: E402

F64 = torch.float64

SOURCE = textwrap.dedent('''
    import torch
    from torch import nn


    class Base(nn.Module):
        def __init__(self, dim, heads):
            super().__init__()
            self.heads = heads
            self.temperature = nn.Parameter(torch.rand(heads, 1, 1) + 0.5)
            self.qkv = nn.Linear(dim, dim * 3)


    class Windowed(Base):
        def __init__(self, dim, heads, window=2):
            super().__init__(dim, heads)
            self.window = window

        def forward(self, x):
            b, n, c = x.shape
            q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
            attn = (q @ k.transpose(-2, -1)) * self.temperature
            attn = attn.softmax(dim=-1)
            out = attn @ v
            return out.transpose(1, 2).reshape(b, n, c)
''')


def test_an_inherited_per_head_temperature_is_folded_into_the_query():
    fixed = sdpa_fixed(SOURCE)
    assert "scale=self.temperature" not in fixed
    assert "q * self.temperature" in fixed
    torch.manual_seed(0)
    before, after = load(SOURCE, "before")["Windowed"], load(fixed, "after")["Windowed"]
    original = before(8, 2).to(F64)
    patched = after(8, 2).to(F64)
    patched.load_state_dict(original.state_dict())
    assert_same_step(original, patched, [torch.randn(2, 5, 8, dtype=F64)])


def test_a_subclass_number_of_its_own_stays_a_scale():
    own = SOURCE.replace("        self.window = window\n",
                         "        self.window = window\n        self.temperature = 0.25\n")
    assert own != SOURCE
    fixed = sdpa_fixed(own)
    assert "scale=self.temperature" in fixed
