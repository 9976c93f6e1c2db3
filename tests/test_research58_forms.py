"""Forms found while checking the blind batch research58 (research repositories' model code:
lumiere's magnitude-preserving attention, video-vit's MaxViT, equiformer, torchmix, torch-
dimensions, mambapy's Jamba, ChatTTS' DVAE, babyGPT).  The fixtures are ours.

- ADP014, missed: a rotate-half whose two halves are laid end to end by einops instead of
  ``torch.cat`` -- ``rearrange([-x2, x1], "j ... d -> ... (j d)")``, the halves taken with
  ``rearrange(x, "... (j d) -> ... j d", j=2).unbind(-2)`` (torchmix's RotaryEmbedding).  einops
  stacks a list on a new first axis; merging that axis, outermost, with the last one and keeping
  every other axis in place is the concatenation along the last axis
  (canon.rearrange_concatenates_last), so the rotation is canon.rotate_half as the ``cat``
  spelling is (graph.FlowBuilder._special_call, ``_rotated_parts``).
Near-misses: the new axis merged innermost (``"j ... d -> ... (d j)"``: the halves interleaved,
another rotation), the new axis kept apart (no merge), the halves in the other order (``[x2,
-x1]``: the negation on the second part), and halves of two different tensors.
- verify, skipped: an attention class defined in another class's body (babyGPT's
  ``babyGPT.AttentionHead``, found and fixed) was "not an nn.Module class at module level": the
  builder looked the dotted name up as one attribute of the module.  It now walks it one class at
  a time, for the class and for its source (build.ModuleBuilder.class_of / _class_node).  A name
  that leads nowhere is still a skip.
"""
from __future__ import annotations

import textwrap

import torch
from corpus_forms import covered
from einops import rearrange

from adopter.structure import canon

ROTARY = textwrap.dedent("""\
    import torch
    from torch import nn
    from einops import rearrange, repeat


    class Rotary(nn.Module):
        def __init__(self, head_dim=64):
            super().__init__()
            inv_freq = 1.0 / (10000 ** (torch.arange(0, head_dim, 2).float() / head_dim))
            self.register_buffer("inv_freq", inv_freq)

        @staticmethod
        def rotate(x):
            x1, x2 = rearrange(x, "... (half d) -> ... half d", half=2).unbind(-2)
            return rearrange([-x2, x1], "half ... d -> ... (half d)")

        def tables(self, n):
            freqs = torch.einsum("i, j -> i j", torch.arange(n).float(), self.inv_freq)
            emb = repeat(freqs, "... f -> ... (r f)", r=2)
            return emb.cos(), emb.sin()

        def embed(self, x, cos, sin):
            return x * cos + self.rotate(x) * sin

        def forward(self, q, k):
            cos, sin = self.tables(q.shape[-2])
            return self.embed(q, cos, sin), self.embed(k, cos, sin)
""")

ROTATION = "return x * cos + self.rotate(x) * sin"
STACKED = 'return rearrange([-x2, x1], "half ... d -> ... (half d)")'


def _with(old: str, new: str) -> str:
    assert old in ROTARY
    return ROTARY.replace(old, new)


def test_halves_laid_end_to_end_by_rearrange_are_the_rotate_half():
    assert covered(ROTARY, ROTATION, "ADP014")


def test_rearrange_with_the_axes_named_is_the_same_concatenation():
    code = _with(STACKED, 'return rearrange((-x2, x1), "half b h n d -> b h n (half d)")')
    assert covered(code, ROTATION, "ADP014")


def test_halves_interleaved_by_rearrange_are_not_the_rotate_half():
    code = _with(STACKED, 'return rearrange([-x2, x1], "half ... d -> ... (d half)")')
    assert not covered(code, ROTATION, "ADP014")


def test_halves_stacked_on_an_axis_of_their_own_are_not_the_rotate_half():
    code = _with(STACKED, 'return rearrange([-x2, x1], "half ... d -> ... d half")')
    assert not covered(code, ROTATION, "ADP014")


def test_halves_in_the_other_order_are_not_the_rotate_half():
    code = _with(STACKED, 'return rearrange([x2, -x1], "half ... d -> ... (half d)")')
    assert not covered(code, ROTATION, "ADP014")


def test_halves_of_two_tensors_are_not_the_rotate_half():
    code = _with("def rotate(x):", "def rotate(x, y):")
    code = code.replace('x1, x2 = rearrange(x, "... (half d) -> ... half d", half=2).unbind(-2)',
                        'x1, _ = rearrange(x, "... (half d) -> ... half d", half=2).unbind(-2)\n'
                        '        _, x2 = rearrange(y, "... (half d) -> ... half d", half=2).unbind(-2)')
    code = code.replace("self.rotate(x) * sin", "self.rotate(x, x.flip(-1)) * sin")
    assert not covered(code, "return x * cos", "ADP014")


def test_the_patterns_read_as_a_concatenation_are_one_at_run_time():
    a, b = torch.randn(2, 3, 4, 5), torch.randn(2, 3, 4, 5)
    for pattern in ("half ... d -> ... (half d)", "two b h n d -> b h n (two d)"):
        assert canon.rearrange_concatenates_last(pattern)
        assert torch.equal(rearrange([a, b], pattern), torch.cat((a, b), dim=-1))
    for pattern in ("half ... d -> ... (d half)", "half ... d -> ... d half", "half b h n d -> h b n (half d)",
                    "... d -> ... d", "half ... -> ... half"):
        assert not canon.rearrange_concatenates_last(pattern)
    interleaved = rearrange([a, b], "half ... d -> ... (d half)")
    assert not torch.equal(interleaved, torch.cat((a, b), dim=-1))


# -- verify: an attention class nested in another class ----------------------------------------

NESTED = textwrap.dedent("""\
    import math

    import torch
    import torch.nn as nn


    class Toy(object):
        class Head(nn.Module):
            def __init__(self, width):
                super().__init__()
                self.width = width
                self.wq = nn.Linear(width, width)
                self.wk = nn.Linear(width, width)
                self.wv = nn.Linear(width, width)
                self.softmax = nn.Softmax(dim=-1)

            def forward(self, x):
                q = self.wq(x)
                k = self.wk(x)
                v = self.wv(x)
                probs = self.softmax(q @ k.transpose(2, 1))
                return (probs @ v) / math.sqrt(self.width)
""")


def _verdicts(tmp_path, text):
    from corpus_forms import rules

    from adopter.config import Config
    from adopter.verify import verify_file
    from adopter.verify.core import options_for

    path = tmp_path / "model.py"
    path.write_text(text)
    results = verify_file(str(path), rules("ADP010"), Config(), benchmark=False,
                          options=options_for(Config(), benchmark=False))
    return {r.class_name: r for r in results if not r.combined}


def test_an_attention_class_nested_in_a_class_verifies(tmp_path):
    from adopter.verify.result import PASS

    assert covered(NESTED, "probs = self.softmax", "ADP010")
    result = _verdicts(tmp_path, NESTED)["Toy.Head"]
    assert result.verdict == PASS, result


def test_a_nested_name_that_leads_nowhere_is_still_a_skip(tmp_path):
    import importlib.util

    import pytest

    from adopter.verify.build import Builder, Skip

    path = tmp_path / "nested_model.py"
    path.write_text(NESTED)
    spec = importlib.util.spec_from_file_location("nested_model", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    builder = Builder(module, NESTED, sizes=None)
    assert builder.class_of(module, "Toy.Head") is module.Toy.Head
    for name in ("Toy.Missing", "Toy", "Head", "Toy.Head.forward"):
        with pytest.raises(Skip):
            builder.class_of(module, name)
