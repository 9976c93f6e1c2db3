"""Forms left by research80's blind batch (session 38: efficient and unusual architectures,
EHR and biosignal models): our own fixtures, each with near-misses that must not match.

- an attention module whose ``forward(..., dropout: Optional[nn.Module] = None)`` calls the
  dropout it is handed: the annotation ``nn.Module`` (the base of every layer) names no layer
  kind, so what the file's callers pass (an ``nn.Dropout``) decides, as for an unannotated
  parameter (a healthcare package's transformer).
"""

from __future__ import annotations

import textwrap

import pytest
from corpus_forms import edit, finding_at, found, rules

# ---------------------------------------------- a dropout parameter annotated as any nn.Module

ANNOTATED_MODULE_DROPOUT = textwrap.dedent("""\
    import math
    from typing import Optional

    import torch
    from torch import nn


    class DotAttention(nn.Module):
        def __init__(self):
            super().__init__()
            self.normalise = nn.Softmax(dim=-1)

        def forward(
            self,
            q: torch.Tensor,
            k: torch.Tensor,
            v: torch.Tensor,
            mask: Optional[torch.Tensor] = None,
            dropout: Optional[nn.Module] = None,
        ):
            s = torch.matmul(q, k.transpose(-2, -1)) / math.sqrt(q.size(-1))
            if mask is not None:
                s = s.masked_fill(mask == 0, -1e9)
            p = self.normalise(s)  # annotated-site
            if dropout is not None:
                p = dropout(p)
            return torch.matmul(p, v), p


    class Heads(nn.Module):
        def __init__(self, heads=2, width=8, p=0.1):
            super().__init__()
            self.heads, self.d = heads, width // heads
            self.q = nn.Linear(width, width)
            self.k = nn.Linear(width, width)
            self.v = nn.Linear(width, width)
            self.core = DotAttention()
            self.drop = nn.Dropout(p)

        def forward(self, x, mask=None):
            b = x.size(0)
            q, k, v = [t.view(b, -1, self.heads, self.d).transpose(1, 2) for t in (self.q(x), self.k(x), self.v(x))]
            out, _ = self.core(q, k, v, mask=mask, dropout=self.drop)
            return out.transpose(1, 2).reshape(b, -1, self.heads * self.d)
    """)

# Near-miss: the module handed in mixes the probabilities (a Linear over the key axis), which
# SDPA cannot reproduce: the annotation says nothing, the caller's layer is no dropout.
ANNOTATED_MODULE_MIXER = edit(ANNOTATED_MODULE_DROPOUT, "        self.drop = nn.Dropout(p)\n",
                              "        self.drop = nn.Linear(5, 5)\n")

# Near-miss: no caller in the file hands anything in; the annotation alone (any module) does not
# make the call a dropout.
ANNOTATED_MODULE_UNCALLED = ANNOTATED_MODULE_DROPOUT.split("\n\nclass Heads")[0] + "\n"


def test_a_dropout_parameter_annotated_as_any_module_takes_what_the_callers_pass():
    assert finding_at(ANNOTATED_MODULE_DROPOUT, "ADP010", "# annotated-site") is not None


def test_a_module_parameter_the_callers_fill_with_a_mixing_layer_is_not_attention():
    assert found(ANNOTATED_MODULE_MIXER, "ADP010") == []


def test_a_module_annotation_alone_types_no_dropout():
    assert found(ANNOTATED_MODULE_UNCALLED, "ADP010") == []


def test_the_annotated_dropout_form_is_fixed_and_computes_the_same():
    torch = pytest.importorskip("torch")
    from corpus_forms import float64_pair

    from adopter.synth import fix_text

    fixed = fix_text(ANNOTATED_MODULE_DROPOUT, "model.py", rules("ADP010"))
    assert "scaled_dot_product_attention(" in fixed.text
    a, b = float64_pair(ANNOTATED_MODULE_DROPOUT, fixed.text, "Heads")
    a.eval(), b.eval()
    x = torch.randn(3, 5, 8, dtype=torch.float64, requires_grad=True)
    x2 = x.detach().clone().requires_grad_(True)
    mask = torch.ones(3, 1, 5, 5, dtype=torch.long)
    mask[:, :, :, 3:] = 0
    want, got = a(x, mask), b(x2, mask)
    # float64, softmax over 5 keys and sums of 4 head features: rounding of a few ulps
    torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)
    want.sum().backward()
    got.sum().backward()
    torch.testing.assert_close(x2.grad, x.grad, rtol=1e-10, atol=1e-12)
