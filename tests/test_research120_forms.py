"""Forms read while labelling blind batch research120 (torchvision-style CNN blocks, GAN
discriminators, FPN/PAN necks and pose nets of 8 packages new to the corpus).  First sight
missed one conv-BN pair; the fixture below is ours.

- ``model += [nn.Sequential(nn.Conv2d(...), nn.BatchNorm2d(...), act)]`` (in a loop or not),
  then ``nn.Sequential(*model)``: an inline container inside a list display added with ``+=``
  is a site as it is in ``model.append(...)`` or ``model = [...]``.  Near-misses: a transposed
  convolution before the norm, an activation between; a flat display added with ``+=``
  (already read) stays one pair.
"""

from __future__ import annotations

import textwrap

import pytest
from corpus_forms import assert_bn_fold_matches, found, line_of, rules

from adopter.synth import fix_text

AUGMENTED = textwrap.dedent("""\
    import torch
    from torch import nn


    class Critic(nn.Module):
        def __init__(self, c=3, width=4, depth=2, act=nn.LeakyReLU(0.2)):
            super().__init__()
            model = []
            model += [nn.Sequential(nn.Conv2d(c, width, 3, 2, 1, bias=False), act)]
            for _ in range(depth):
                model += [
                    nn.Sequential(
                        nn.Conv2d(width, width * 2, 3, 2, 1, bias=False),
                        nn.BatchNorm2d(width * 2),  # pair
                        act,
                    )
                ]
                width *= 2
            model += [nn.Sequential(nn.Conv2d(width, 1, 1), nn.BatchNorm2d(1))]  # tail
            self.model = nn.Sequential(*model)

        def forward(self, x):
            return self.model(x).flatten(1)
""")


def test_an_inline_sequential_added_with_plus_equals_is_a_site():
    got = sorted((f.line, f.end_line) for f in found(AUGMENTED, "ADP007"))
    assert len(got) == 2
    for mark, (start, end) in zip(("# pair", "# tail"), got):
        assert start <= line_of(AUGMENTED, mark) <= end


def test_the_fixed_critic_computes_what_it_did():
    fixed = fix_text(AUGMENTED, "model.py", rules("ADP007")).text
    assert fixed != AUGMENTED
    assert fixed.count("FoldingSequential(") == 2
    assert_bn_fold_matches(AUGMENTED, fixed, "Critic", (), (2, 3, 16, 16))


@pytest.mark.parametrize("before, after", [
    # a transposed convolution before the norm (a generator's up-block)
    ("nn.Conv2d(width, width * 2, 3, 2, 1, bias=False)", "nn.ConvTranspose2d(width, width * 2, 4, 2, 1, bias=False)"),
    # an activation between the conv and the norm
    ("nn.Conv2d(width, width * 2, 3, 2, 1, bias=False),", "nn.Conv2d(width, width * 2, 3, 2, 1, bias=False), act,"),
])
def test_a_transposed_conv_or_an_activation_between_gives_no_pair_in_the_loop(before, after):
    code = AUGMENTED.replace(before, after)
    assert code != AUGMENTED
    lines = [f.line for f in found(code, "ADP007")]
    assert lines == [line_of(code, "# tail")]


def test_a_flat_display_added_with_plus_equals_is_still_one_pair():
    code = AUGMENTED.replace(
        "model += [nn.Sequential(nn.Conv2d(width, 1, 1), nn.BatchNorm2d(1))]  # tail",
        "model += [nn.Conv2d(width, 1, 1), nn.BatchNorm2d(1)]  # tail")
    assert code != AUGMENTED
    got = sorted(f.line for f in found(code, "ADP007"))
    assert len(got) == 2
    assert got[-1] == line_of(code, "# tail")
