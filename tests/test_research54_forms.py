"""Forms found while checking the blind batch research54 (curated-transformers' layers,
explainable-attention's SDPA re-implementation).  The fixtures are ours.

- ADP014, missed: a one-tensor rotary module whose forward writes the rotation with the table
  first, ``cos * x + sin * self._rotate(x)``, and whose rotate-half names the negated half
  before concatenating (``x1 = -x[..., h:]; x2 = x[..., :h]; cat([x1, x2], -1)``); the module
  is applied to key and query by another module.  Two readings were missing:
  the rotate-half was read only with the negation written inside the concatenation (the flow
  builder now resolves a local name for the negated part, and the file's text prefilter takes
  an assignment of a negated name as the pseudo-word it needs), and the products matched only
  with x first (the rule is commutative now; the table-first first product is an alternative
  of its own, since its operands are bound before the rotation pins x).
Near-misses: the halves concatenated in the wrong order (``cat([x2, -x1])``), a negated half of
another tensor, no rotation at all (``cos * x + sin * x``), interleaved pairs.
"""
from __future__ import annotations

import textwrap

from corpus_forms import covered, findings

ROTARY_MODULE = textwrap.dedent("""\
    import torch
    from torch import Tensor
    from torch.nn import Module


    class RotaryEmbeddings(Module):
        def __init__(self, width: int, length: int = 64):
            super().__init__()
            self.register_buffer("cos", torch.ones(length, width), persistent=False)
            self.register_buffer("sin", torch.zeros(length, width), persistent=False)

        def _rotate(self, input: Tensor):
            half_idx = input.shape[-1] // 2
            input_1 = -input[..., half_idx:]
            input_2 = input[..., :half_idx]
            return torch.cat([input_1, input_2], dim=-1)

        def forward(self, input: Tensor) -> Tensor:
            seq_len = input.shape[-2]
            rot_cos = self.cos[:seq_len, :]
            rot_sin = self.sin[:seq_len, :]
            return rot_cos * input + rot_sin * self._rotate(input)


    class QueryKeyRotary(Module):
        def __init__(self, width: int):
            super().__init__()
            self.rotary_embeds = RotaryEmbeddings(width)

        def forward(self, *, query: Tensor, key: Tensor):
            key = self.rotary_embeds(key)
            query = self.rotary_embeds(query)
            return query, key
""")
NEEDLE = "return rot_cos * input + rot_sin * self._rotate(input)"


def test_table_first_rotation_with_a_named_negated_half_is_found():
    assert covered(ROTARY_MODULE, NEEDLE, "ADP014")


def test_each_reading_alone():
    # x first, the negated half named: the name reading alone
    x_first = ROTARY_MODULE.replace(NEEDLE, "return input * rot_cos + self._rotate(input) * rot_sin")
    assert covered(x_first, "return input * rot_cos", "ADP014")
    # table first, the negation written in place: the operand order alone
    in_place = ROTARY_MODULE.replace("""input_1 = -input[..., half_idx:]
        input_2 = input[..., :half_idx]
        return torch.cat([input_1, input_2], dim=-1)""", """return torch.cat([-input[..., half_idx:], input[..., :half_idx]], dim=-1)""")
    assert covered(in_place, NEEDLE, "ADP014")
    # a module-level helper, both products table first
    helper = ROTARY_MODULE.replace("self._rotate(input)", "_rotate(input)").replace(
        "    def _rotate(self, input: Tensor):", "    def _unused(self):\n        return None\n\n    def _rotate_old(self, input: Tensor):"
    ) + textwrap.dedent("""\


        def _rotate(input: Tensor):
            half_idx = input.shape[-1] // 2
            input_1 = -input[..., half_idx:]
            input_2 = input[..., :half_idx]
            return torch.cat([input_1, input_2], dim=-1)
    """)
    assert covered(helper, "return rot_cos * input + rot_sin * _rotate(input)", "ADP014")


def test_look_alikes_are_not_rotary():
    # the halves in the wrong order: cat((x2, -x1)) is the inverse rotation's layout, no rotate-half
    wrong_order = ROTARY_MODULE.replace("torch.cat([input_1, input_2], dim=-1)", "torch.cat([input_2, input_1], dim=-1)")
    assert not findings(wrong_order, "ADP014")
    # the negated half of another tensor
    other = ROTARY_MODULE.replace("def _rotate(self, input: Tensor):", "def _rotate(self, input: Tensor, other: Tensor = None):").replace(
        "input_1 = -input[..., half_idx:]", "input_1 = -other[..., half_idx:]").replace(
        "self._rotate(input)", "self._rotate(input, input.flip(-1))")
    assert not findings(other, "ADP014")
    # no rotation: the sine table times x itself
    plain = ROTARY_MODULE.replace(NEEDLE, "return rot_cos * input + rot_sin * input")
    assert not findings(plain, "ADP014")
    # interleaved pairs (rotate_every_two) through names
    interleaved = ROTARY_MODULE.replace("""input_1 = -input[..., half_idx:]
        input_2 = input[..., :half_idx]
        return torch.cat([input_1, input_2], dim=-1)""", """x1 = input[..., ::2]
        x2 = -input[..., 1::2]
        return torch.stack((x2, x1), dim=-1).flatten(-2)""")
    assert not findings(interleaved, "ADP014")
