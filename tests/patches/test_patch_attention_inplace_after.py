"""An attention whose context is changed in place afterwards (MViT's residual pooling:
``x = attn @ v`` then ``x[:, :, 1:, :] += q[:, :, 1:, :]``): the product's backward does not
read its output, the fused call's does, so the patched forward must hand on a copy.  Patched by
the real ``fix_text`` and run beside the original on real torch modules, in float64 (the
tolerance is float64 rounding of reductions of length 8), forward and backward, in training."""

from __future__ import annotations

import textwrap

import pytest
import torch

from adopter.ruleset import load_rules
from adopter.synth import fix_text

RULES = [r for r in load_rules() if r.id == "ADP010"]

POOLED = textwrap.dedent('''
    import torch
    from torch import nn


    class PooledAttention(nn.Module):
        def __init__(self, dim, heads=2, with_cls_token=True):
            super().__init__()
            self.heads = heads
            self.scale = (dim // heads) ** -0.5
            self.qkv = nn.Linear(dim, dim * 3)
            self.proj = nn.Linear(dim, dim)
            self.with_cls_token = with_cls_token

        def forward(self, x):
            B, N, C = x.shape
            q, k, v = self.qkv(x).reshape(B, N, 3, self.heads, -1).permute(2, 0, 3, 1, 4).unbind(0)
            attn = (q * self.scale) @ k.transpose(-2, -1)
            attn = attn.softmax(dim=-1)
            x = attn @ v
            if self.with_cls_token:
                x[:, :, 1:, :] += q[:, :, 1:, :]
            else:
                x = x + q
            x = x.transpose(1, 2).reshape(B, N, C)
            return self.proj(x)
''')


def _load(text: str, name: str) -> dict:
    namespace: dict = {"__name__": name}
    exec(compile(text, f"<{name}>", "exec"), namespace)
    return namespace


@pytest.mark.parametrize("with_cls_token", [True, False])
def test_context_changed_in_place_after_the_fused_call(with_cls_token):
    patched = fix_text(POOLED, "model.py", RULES)
    assert [f.rule for f in patched.applied] == ["ADP010"], patched.skipped
    original, new = _load(POOLED, "original"), _load(patched.text, "patched")
    torch.manual_seed(0)
    old = original["PooledAttention"](8, with_cls_token=with_cls_token).double().train()
    fresh = new["PooledAttention"](8, with_cls_token=with_cls_token).double().train()
    fresh.load_state_dict(old.state_dict(), strict=True)
    x = torch.randn(2, 5, 8, dtype=torch.float64)
    a, b = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    y_old, y_new = old(a), fresh(b)
    torch.testing.assert_close(y_new, y_old, rtol=1e-10, atol=1e-12)
    y_old.square().sum().backward()
    y_new.square().sum().backward()  # raised without the copy (an output changed in place)
    torch.testing.assert_close(b.grad, a.grad, rtol=1e-10, atol=1e-12)
    for (name, p_old), (_, p_new) in zip(old.named_parameters(), fresh.named_parameters()):
        torch.testing.assert_close(p_new.grad, p_old.grad, rtol=1e-10, atol=1e-12, msg=name)
