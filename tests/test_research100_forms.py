"""A form found missing in the blind batch research100 (vision-language research code: CLIP /
CoCa towers, VQA fusion, captioning projectors; the miss is conch-fork's open_clip-style
``CustomResidualAttentionBlock``).  The fixtures are ours.

- An ``nn.Sequential`` member ``X if flag else nn.Identity()`` (either side, plain members or an
  ``OrderedDict`` of pairs) that the known keys do not decide for ``X``: on the ways that build
  the identity the member computes nothing, so the members around it run one right after the
  other there, as the ways without an ``X if c else None`` entry already joined its
  neighbours.  ``Linear, norm(w) if scale_fc else nn.Identity(), GELU`` is an ADP006 pair; the
  fix is the folding container, whose pairs look past plain ``nn.Identity`` members.
Near-misses: the LayerNorm always there; the identity's test decided for the layer (a literal
``True``); a ReLU in place of the GELU.
"""

from __future__ import annotations

import textwrap

from corpus_forms import finding_at, found

from adopter.synth import fix_text
from corpus_forms import rules

BLOCK = textwrap.dedent("""\
    from collections import OrderedDict

    import torch.nn as nn


    class Block(nn.Module):
        def __init__(self, d, act_layer=nn.GELU, norm_layer=nn.LayerNorm, scale_fc=False):
            super().__init__()
            self.mlp = nn.Sequential(OrderedDict([
                ("c_fc", nn.Linear(d, 4 * d)),
                ("ln", MIDDLE),
                ("act", act_layer()),  # pair
                ("c_proj", nn.Linear(4 * d, d)),
            ]))

        def forward(self, x):
            return x + self.mlp(x)
""")

PLAIN = textwrap.dedent("""\
    import torch.nn as nn


    class Head(nn.Module):
        def __init__(self, d, scale_fc=False):
            super().__init__()
            self.mlp = nn.Sequential(
                nn.Linear(d, 4 * d),
                MIDDLE,
                ACT,  # pair
            )

        def forward(self, x):
            return self.mlp(x)
""")


def test_ordered_dict_member_that_may_be_the_identity_is_passed_over():
    code = BLOCK.replace("MIDDLE", "norm_layer(4 * d) if scale_fc else nn.Identity()")
    assert finding_at(code, "ADP006", "# pair") is not None


def test_plain_members_either_side_identity():
    for middle in ("nn.LayerNorm(4 * d) if scale_fc else nn.Identity()",
                   "nn.Identity() if not scale_fc else nn.LayerNorm(4 * d)"):
        code = PLAIN.replace("MIDDLE", middle).replace("ACT", "nn.GELU()")
        assert finding_at(code, "ADP006", "# pair") is not None, middle


def test_fix_puts_the_folding_container_in():
    code = BLOCK.replace("MIDDLE", "norm_layer(4 * d) if scale_fc else nn.Identity()")
    fixed = fix_text(code, "model.py", rules("ADP006")).text
    assert "FoldingSequential(OrderedDict([" in fixed and "nn.Identity()" in fixed


def test_near_misses():
    always = BLOCK.replace("MIDDLE", "norm_layer(4 * d)")
    assert found(always, "ADP006") == []
    decided = PLAIN.replace("MIDDLE", "nn.LayerNorm(4 * d) if True else nn.Identity()").replace("ACT", "nn.GELU()")
    assert found(decided, "ADP006") == []
    relu = PLAIN.replace("MIDDLE", "nn.LayerNorm(4 * d) if scale_fc else nn.Identity()").replace("ACT", "nn.ReLU()")
    assert found(relu, "ADP006") == []
