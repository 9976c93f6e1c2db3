"""Forms found while checking the blind batch research78 (research model code on PyPI:
knowledge-tracing transformers, a diffusion U-Net, tabular and recommendation models).  The
fixtures are ours.

- ADP010: softmax-weighted pooling whose keys are a module weight read through a subscript
  that only adds axes (``self.w[None, None, :, :].expand(...).view(...)``: a read-out of the
  knowledge state against learned knowledge vectors).  The subscript is an ``unsqueeze``, a
  layout step like ``expand`` and ``view``, so the scores project one tensor onto a weight of
  the module (GUIDE: learned-query pooling, not a site); also when the read-out is a method
  the forward calls (inlined, the subscript's key carries the inlined receiver).  Near-miss: keys of a computed tensor
  read through the same subscript stay attention.
"""

from __future__ import annotations

import textwrap

from corpus_forms import finding_at, found

READOUT = textwrap.dedent("""\
    import torch
    from torch import nn


    class Readout(nn.Module):
        def __init__(self, num_know, dim):
            super().__init__()
            self.num_know = num_know
            self.know = nn.Parameter(torch.empty(num_know, dim))

        def forward(self, z, concept):
            b, n, _ = concept.size()
            key = KEYS.expand(b, n, -1, -1).reshape(b * n, self.num_know, -1)
            value = z.reshape(b * n, self.num_know, -1)
            beta = torch.matmul(key, concept.reshape(b * n, -1, 1)).view(b * n, 1, self.num_know)
            alpha = torch.softmax(beta, -1)
            return torch.matmul(alpha, value).view(b, n, -1)
    """)


def test_scores_against_a_weight_read_through_an_axes_only_subscript_are_no_attention():
    code = READOUT.replace("KEYS", "self.know[None, None, :, :]")
    assert found(code, "ADP010") == []


def test_scores_against_a_weight_read_through_an_ellipsis_subscript_are_no_attention():
    code = READOUT.replace("KEYS", "self.know[None, None, ...]")
    assert found(code, "ADP010") == []


def test_keys_of_a_computed_tensor_through_the_same_subscript_stay_attention():
    code = READOUT.replace("KEYS", "torch.tanh(self.know)[None, None, :, :]")
    assert finding_at(code, "ADP010", "alpha = torch.softmax") is not None


def test_the_same_read_out_in_a_method_the_forward_calls_is_no_attention():
    code = READOUT.replace("KEYS", "self.know[None, None, :, :]").replace(
        "def forward(self, z, concept):", "def forward(self, z, concept):\n        return self.read(z, concept)\n\n    def read(self, z, concept):")
    assert "self.read(z, concept)" in code
    assert found(code, "ADP010") == []
