"""An attention dropout the module may not have: ``self.dropout = nn.Dropout(p) if p else
None`` and ``if self.dropout is not None: probs = self.dropout(probs)`` (rtdl's FT-Transformer
attention).  The fused call's rate is the module's under the same test, 0 without one; its hooks
are read only when there is one.  The module is written for this test; the fixed one runs beside
the original in float64 (outputs and gradients, eval and train at rate 0), eager and scripted.
"""

from __future__ import annotations

import textwrap

import pytest

torch = pytest.importorskip("torch")

from sdpa_modules import Counter, sdpa_fixed

F64 = torch.float64

OPTIONAL_DROPOUT = textwrap.dedent('''
    import math

    import torch
    import torch.nn as nn
    import torch.nn.functional as F


    class Attention(nn.Module):
        def __init__(self, d=16, heads=2, dropout=0.0, with_dropout=True):
            super().__init__()
            self.W_q = nn.Linear(d, d)
            self.W_k = nn.Linear(d, d)
            self.W_v = nn.Linear(d, d)
            self.n_heads = heads
            self.dropout = nn.Dropout(dropout) if with_dropout else None

        def _reshape(self, x):
            batch_size, n_tokens, d = x.shape
            d_head = d // self.n_heads
            return x.reshape(batch_size, n_tokens, self.n_heads, d_head).transpose(1, 2) \\
                .reshape(batch_size * self.n_heads, n_tokens, d_head)

        def forward(self, x):
            q, k, v = self.W_q(x), self.W_k(x), self.W_v(x)
            batch_size, n_tokens, d = q.shape
            d_head = d // self.n_heads
            q = self._reshape(q)
            k = self._reshape(k)
            attention_logits = q @ k.transpose(1, 2) / math.sqrt(d_head)
            attention_probs = F.softmax(attention_logits, dim=-1)
            if self.dropout is not None:
                attention_probs = self.dropout(attention_probs)
            out = attention_probs @ self._reshape(v)
            return out.reshape(batch_size, self.n_heads, n_tokens, d_head).transpose(1, 2) \\
                .reshape(batch_size, n_tokens, d)
''')


def test_the_rate_is_read_under_the_same_test():
    fixed = sdpa_fixed(OPTIONAL_DROPOUT)
    assert "(self.dropout.p if self.training else 0.0) if self.dropout is not None else 0.0" in " ".join(fixed.split())
    assert "self.dropout is not None and bool(self.dropout._forward_hooks" in " ".join(fixed.split())


@pytest.mark.parametrize("with_dropout", [True, False])
@pytest.mark.parametrize("training", [False, True])
@pytest.mark.parametrize("scripted", [False, True])
def test_the_module_matches_the_original(with_dropout, training, scripted, module_from_file):
    original, new = (module_from_file(text, name).__dict__
                     for text, name in ((OPTIONAL_DROPOUT, "orig_opt_drop"), (sdpa_fixed(OPTIONAL_DROPOUT), "new_opt_drop")))
    counter = None if scripted else Counter(new)  # (TorchScript cannot compile the counting wrapper)
    torch.manual_seed(0)
    a = original["Attention"](with_dropout=with_dropout).to(F64).train(training)
    b = new["Attention"](with_dropout=with_dropout).to(F64).train(training)
    b.load_state_dict(a.state_dict(), strict=True)
    if scripted:
        a, b = torch.jit.script(a), torch.jit.script(b)
    x = torch.randn(2, 5, 16, dtype=F64)
    xa, xb = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    out_a, out_b = a(xa), b(xb)
    # float64, reductions over 5 keys and 8 channels: the default float64 tolerances
    torch.testing.assert_close(out_b, out_a)
    weight = torch.randn_like(out_a)
    (weight * out_a).sum().backward()
    (weight * out_b).sum().backward()
    torch.testing.assert_close(xb.grad, xa.grad)
    if not scripted:
        assert counter.calls == 1
