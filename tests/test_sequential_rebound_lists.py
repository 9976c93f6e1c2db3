"""A list of layers that a branch binds anew (``middle = []``) rather than extends.

mmagic's pix2pix U-Net block builds ``middle = [submodule]`` and ``upper = []``, rebinds them
under ``if``/``elif``, then makes ``nn.Sequential(*(down + middle + up + upper))``.  The join
after the ``if`` used to keep the list object the branch had bound and give it the frontier of
the list before the ``if``: an index past the new list's end, then a member that followed
itself, and ``check`` stopped with an internal error (``KeyError``).  After the ``if`` the list
is the branch's or the one from before: either.
"""

from __future__ import annotations

import textwrap

from adopter.engine import analyze
from adopter.ruleset import load_rules

RULES = load_rules()


def _found(source: str) -> list[tuple[str, int]]:
    return [(f.rule, f.line) for f in analyze(textwrap.dedent(source), "m.py", RULES).findings]


def test_a_unet_block_whose_branches_rebind_its_lists_is_analysed():
    assert _found('''
        import torch.nn as nn


        class UnetBlock(nn.Module):
            def __init__(self, cin, cout, submodule=None, outermost=False, innermost=False, dropout=False):
                super().__init__()
                middle = [submodule]
                upper = []
                if outermost:
                    upper = [nn.Tanh()]
                elif innermost:
                    middle = []
                else:
                    upper = [nn.Dropout(0.5)] if dropout else []
                down = [nn.Conv2d(cin, cout, 4, 2, 1)]
                up = [nn.ConvTranspose2d(cout, cin, 4, 2, 1)]
                self.model = nn.Sequential(*(down + middle + up + upper))

            def forward(self, x):
                return self.model(x)
    ''') == []


def test_a_norm_a_branch_may_drop_still_follows_the_conv_on_the_other_way():
    source = textwrap.dedent('''
        import torch.nn as nn


        class Block(nn.Module):
            def __init__(self, cin, cout, plain=False):
                super().__init__()
                norm = [nn.BatchNorm2d(cout)]
                if plain:
                    norm = []
                layers = [nn.Conv2d(cin, cout, 3, padding=1, bias=False)] + norm + [nn.ReLU()]
                self.body = nn.Sequential(*layers)

            def forward(self, x):
                return self.body(x)
    ''')
    assert _found(source) == [("ADP007", 8)]
    # a branch that rebinds the list to another norm: no conv -> batchnorm pair on either way
    assert _found(source.replace("norm = []", "norm = [nn.GroupNorm(8, cout)]").replace(
        "norm = [nn.BatchNorm2d(cout)]", "norm = [nn.LayerNorm(cout)]")) == []
    # ... and one where only the else branch binds it to a batchnorm
    assert _found(source.replace("        norm = [nn.BatchNorm2d(cout)]\n", "        norm = []\n").replace(
        "            norm = []\n", "            norm = []\n        else:\n            norm = [nn.BatchNorm2d(cout)]\n"
    )) == [("ADP007", 12)]
