"""Research attention forms read in session 30 (rafix41): code shapes around the attention.
The fixtures are ours.

- ADP010: two cross-attentions written interleaved (slp's symmetric attention: both scores,
  then ``if mask is not None:`` adding the mask to both, both softmaxes and dropouts, both
  context products).  The other attention's statements inside the mask step's ``if`` are
  plain assignments the fused path keeps there, in their place: a later kept statement
  reassigning what they read (the other attention's ``s_b = F.softmax(s_b, dim=-1)``)
  changes nothing they read, so it is no "reassignment after the attention read it".  What
  the mask step itself or the if's test reads stays checked.  Only the first attention is
  fused: the second's statements then run in both branches of the guard's if, and its
  context product after it, so the next round declines it.
"""

from __future__ import annotations

import textwrap

import pytest
from corpus_forms import rules

from adopter.synth import fix_text

torch = pytest.importorskip("torch")

PAIR = textwrap.dedent("""\
    import math

    import torch
    import torch.nn as nn
    import torch.nn.functional as F


    class CrossPair(nn.Module):
        def __init__(self, dim=8, p=0.1):
            super().__init__()
            self.dk = dim
            self.qa = nn.Linear(dim, dim, bias=False)
            self.ka = nn.Linear(dim, dim, bias=False)
            self.va = nn.Linear(dim, dim, bias=False)
            self.qb = nn.Linear(dim, dim, bias=False)
            self.kb = nn.Linear(dim, dim, bias=False)
            self.vb = nn.Linear(dim, dim, bias=False)
            self.drop = nn.Dropout(p)

        def forward(self, a, b, mask=None):
            k_a = self.ka(a)
            q_b = self.qb(b)
            v_a = self.va(a)
            k_b = self.kb(b)
            q_a = self.qa(a)
            v_b = self.vb(b)

            s_a = torch.bmm(q_b, k_a.transpose(1, 2)) / math.sqrt(self.dk)
            s_b = torch.bmm(q_a, k_b.transpose(1, 2)) / math.sqrt(self.dk)

            if mask is not None:
                s_a = s_a + ((1 - mask.unsqueeze(1)) * -1e5)
                s_b = s_b + ((1 - mask.unsqueeze(1)) * -1e5)
            s_a = F.softmax(s_a, dim=-1)
            s_a = self.drop(s_a)
            s_b = F.softmax(s_b, dim=-1)
            s_b = self.drop(s_b)

            out_a = torch.bmm(s_a, v_a)
            out_b = torch.bmm(s_b, v_b)
            return out_a, out_b
""")


def _fix(source: str) -> str:
    return fix_text(source, "model.py", rules("ADP010")).text


def _load(source: str, name: str):
    namespace: dict = {}
    exec(compile(source, "<fixture>", "exec"), namespace)  # noqa: S102 (our own fixture)
    return namespace[name]


def _pair(old: str, new: str) -> str:
    assert old in PAIR
    return PAIR.replace(old, new)


def test_interleaved_attentions_first_fixed_exactly():
    fixed = _fix(PAIR)
    assert fixed.count("scaled_dot_product_attention(") == 1
    torch.manual_seed(0)
    original = _load(PAIR, "CrossPair")().double().eval()
    patched = _load(fixed, "CrossPair")().double().eval()
    patched.load_state_dict(original.state_dict())
    a, b = torch.randn(2, 5, 8, dtype=torch.float64), torch.randn(2, 5, 8, dtype=torch.float64)
    mask = torch.ones(2, 5, dtype=torch.float64)
    mask[0, 3:] = 0.0
    for given in (None, mask):
        with torch.no_grad():
            for x, y in zip(original(a, b, given), patched(a, b, given)):
                assert torch.allclose(x, y, atol=1e-9)


def test_interleaved_mask_step_operand_reassigned_declined():
    # the first attention's mask step reads `bias`, which a kept statement then reassigns: the
    # fused call, after it, would read the new value
    source = _pair("        if mask is not None:\n"
                   "            s_a = s_a + ((1 - mask.unsqueeze(1)) * -1e5)\n"
                   "            s_b = s_b + ((1 - mask.unsqueeze(1)) * -1e5)\n",
                   "        bias = (1 - mask.unsqueeze(1)) * -1e5 if mask is not None else None\n"
                   "        if mask is not None:\n"
                   "            s_a = s_a + bias\n"
                   "            s_b = s_b + bias\n")
    source = source.replace("        s_a = self.drop(s_a)\n", "        s_a = self.drop(s_a)\n        bias = None\n")
    assert _fix(source) == source


def test_interleaved_if_test_reassigned_declined():
    # the if's test (the fused call's mask condition) reads `mask`, which a kept statement then
    # reassigns
    source = _pair("        s_a = self.drop(s_a)\n", "        s_a = self.drop(s_a)\n        mask = None\n")
    assert _fix(source) == source
