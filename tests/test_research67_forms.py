"""A false positive found in the blind batch research67 (research model files of 4 packages new
to the corpus: a music transformer's rotary embedding).  The fixtures are ours.

- A rotary module whose *method* is called ``rotate_half`` but rotates interleaved pairs
  (``x.view(..., -1, 2)``, ``unbind(-1)``, ``stack((-x2, x1), -1)``, viewed back): the rule's
  by-name alternative ``rotate_half($x)`` matched the method call ``self.rotate_half(t)``, and
  the check that the inlined helper's body computes the half rotation (``helper_computes``)
  looked the helper up by the call's exact op, ``self.rotate_half``, found no entry and let it
  pass.  The lookup now relates names as the step's match does, so a method is held to its
  body as a function is.  Liger's RoPE rotates halves: an interleaved rotation is another
  computation (GUIDE, ADP014: not ``rotate_every_two``).
Look-alikes that must still match: the same method rotating halves (``chunk`` then ``cat``),
with and without x-transformers' xpos ``scale`` factor on both products.
"""

from __future__ import annotations

import textwrap

import pytest
from corpus_forms import found, line_of

ROTARY = textwrap.dedent("""\
    import torch
    from torch import nn


    class Rotary(nn.Module):
        def __init__(self, dim):
            super().__init__()
            self.register_buffer("inv_freq", 1.0 / (10000 ** (torch.arange(0, dim, 2).float() / dim)))

        def rotate_half(self, x):
    {body}

        def apply(self, t, freqs, scale):
            return {apply}  # rotation
    """)

INTERLEAVED_VIEW = """\
        shape = x.shape
        x = x.view(shape[:-1] + (-1, 2))
        x1, x2 = x.unbind(dim=-1)
        x = torch.stack((-x2, x1), dim=-1)
        return x.view(shape)"""

INTERLEAVED_SLICES = """\
        x1, x2 = x[..., ::2], x[..., 1::2]
        return torch.stack((-x2, x1), dim=-1).flatten(-2)"""

HALVES = """\
        x1, x2 = x.chunk(2, dim=-1)
        return torch.cat((-x2, x1), dim=-1)"""

PLAIN = "(t * freqs.cos()) + (self.rotate_half(t) * freqs.sin())"
XPOS = "(t * freqs.cos() * scale) + (self.rotate_half(t) * freqs.sin() * scale)"


def _code(body: str, apply: str) -> str:
    return ROTARY.format(body=body, apply=apply)


@pytest.mark.parametrize("apply", [PLAIN, XPOS], ids=["plain", "xpos"])
@pytest.mark.parametrize("body", [INTERLEAVED_VIEW, INTERLEAVED_SLICES], ids=["view-unbind", "slices"])
def test_a_method_named_rotate_half_that_rotates_pairs_is_no_rope_site(body, apply):
    assert found(_code(body, apply), "ADP014") == []


@pytest.mark.parametrize("apply", [PLAIN, XPOS], ids=["plain", "xpos"])
def test_the_same_method_rotating_halves_is_a_site(apply):
    code = _code(HALVES, apply)
    got = found(code, "ADP014")
    assert len(got) == 1
    assert got[0].line <= line_of(code, "# rotation") <= got[0].end_line


def test_the_function_spelling_is_held_to_its_body_as_before():
    code = textwrap.dedent("""\
        import torch


        def rotate_half(x):
            x1, x2 = x.unbind(dim=-1) if x.shape[-1] == 2 else (x[..., ::2], x[..., 1::2])
            return torch.stack((-x2, x1), dim=-1).flatten(-2)


        def apply_rotary(q, k, cos, sin):
            q_embed = (q * cos) + (rotate_half(q) * sin)
            k_embed = (k * cos) + (rotate_half(k) * sin)
            return q_embed, k_embed
        """)
    assert found(code, "ADP014") == []


def test_the_rotated_pairs_differ_from_the_rotated_halves():
    """Why the site is not Liger's: the two rotations give different tensors."""
    import torch

    space: dict = {}
    exec(compile(_code(INTERLEAVED_VIEW, PLAIN), "a.py", "exec"), space)
    pairs = space["Rotary"](8)
    exec(compile(_code(HALVES, PLAIN), "b.py", "exec"), space)
    halves = space["Rotary"](8)
    x = torch.arange(8.0).reshape(1, 8)
    assert not torch.equal(pairs.rotate_half(x), halves.rotate_half(x))
