"""Attention whose probability dropout is ``nn.Dropout(p) if ... else nn.Identity()`` (espnet's
attention when flash attention is off / on): the identity is the dropout at p = 0, so the layer is
the pattern's dropout, and the patch reads the rate only from a module that has one.  The module
is our own fixture, fixed by the real ``fix_text``, loaded from a file, compared in float64 with
the original (outputs and gradients) for both constructions, in eval mode and, where the layer is
the identity, in training mode too (no randomness then); both constructions of the patched
module compile under TorchScript.
"""

from __future__ import annotations

import pytest
import torch

from adopter.ruleset import load_rules
from adopter.synth import fix_text

ADP010 = [r for r in load_rules() if r.id == "ADP010"]

SOURCE = '''
import math

import torch
from torch import nn


class Attention(nn.Module):
    def __init__(self, dim, heads, dropout_rate, use_flash=False):
        super().__init__()
        self.d_k = dim // heads
        self.dropout = nn.Dropout(p=dropout_rate) if not use_flash else nn.Identity()

    def forward(self, q, k, v, mask=None):
        scores = torch.matmul(q, k.transpose(-2, -1)) / math.sqrt(self.d_k)
        if mask is not None:
            scores = scores.masked_fill(mask, float("-inf"))
        attn = torch.softmax(scores, dim=-1)
        return torch.matmul(self.dropout(attn), v)
'''


@pytest.mark.parametrize("use_flash", [False, True], ids=["dropout", "identity"])
def test_a_dropout_or_identity_layer_is_fused_and_reads_a_rate_only_where_there_is_one(use_flash,
                                                                                          module_from_file):
    result = fix_text(SOURCE, "attention.py", ADP010)
    assert result.error is None and len(result.applied) == 1, result.skipped
    assert "scaled_dot_product_attention(" in result.text
    original = module_from_file(SOURCE, "identity_dropout_original").Attention(32, 4, 0.25, use_flash)
    patched = module_from_file(result.text, "identity_dropout_patched").Attention(32, 4, 0.25, use_flash)
    torch.manual_seed(0)
    b, h, n, d = 2, 4, 6, 8
    mask = torch.zeros(b, 1, n, n, dtype=torch.bool)
    mask[:, :, :, -2:] = True  # padded keys; every query keeps some keys
    modes = [False, True] if use_flash else [False]
    for training in modes:
        original.train(training)
        patched.train(training)
        inputs = [torch.randn(b, h, n, d, dtype=torch.float64, requires_grad=True) for _ in range(3)]
        copies = [t.detach().clone().requires_grad_(True) for t in inputs]
        out, out_patched = original(*inputs, mask), patched(*copies, mask)
        # float64 over a 6-key softmax and an 8-wide product: agreement to ~1e-12
        torch.testing.assert_close(out_patched, out, rtol=1e-10, atol=1e-12)
        out.sum().backward()
        out_patched.sum().backward()
        for a, c in zip(inputs, copies):
            torch.testing.assert_close(c.grad, a.grad, rtol=1e-10, atol=1e-12)
    scripted = torch.jit.script(patched.eval())
    q, k, v = (torch.randn(b, h, n, d) for _ in range(3))
    torch.testing.assert_close(scripted(q, k, v, mask), original.eval().float()(q, k, v, mask),
                               rtol=1e-5, atol=1e-6)
