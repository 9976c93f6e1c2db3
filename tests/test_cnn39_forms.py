"""Forms found while checking the blind batch cnn39 (CNN code vendored by packages whose main
job is something else: adversarial robustness, cosmic-ray masks, inpainting plugins, cell
tracking, 3-D projection, self-supervised denoising).  The fixtures are ours.

- An ``nn.Sequential`` subclass whose ``forward`` runs nn.Sequential's own forward in each
  branch of a flag (auto-denoise's U-Net ``ConvBlock``: ``if self.residual: return
  super().forward(inp) + inp`` / ``else: return super().forward(inp)``) was not read as a
  chain: only one ``super().forward(x)`` call was accepted, and ``self`` could be read around it
  only as ``self.training`` or an attribute the forward compares (``self.drop_rate > 0``), not a
  flag tested for its truth.  Several ``super().forward`` calls on the same input (each runs the
  whole chain) and ``if self.<flag>:`` / ``if not self.<flag>:`` tests of an attribute the forward
  never calls are now read like that.
Near-misses: an activation between the conv and the norm, a branch that runs only the first
member (``return self[0](x)``: the conv's output leaves without the norm on that path).
"""

from __future__ import annotations

import textwrap

from corpus_forms import found, rules

PREAMBLE = textwrap.dedent("""\
    import torch.nn as nn

    NDConv = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}
    NDBatchNorm = {1: nn.BatchNorm1d, 2: nn.BatchNorm2d, 3: nn.BatchNorm3d}

""")


def block(forward: str, middle: str = "") -> str:
    return PREAMBLE + textwrap.dedent("""\
        class ConvBlock(nn.Sequential):
            def __init__(self, in_ch, out_ch, n_dims=2, residual=False, last_block=False):
                if last_block:
                    post_conv = []
                else:
                    post_conv = [MIDDLENDBatchNorm[n_dims](out_ch), nn.LeakyReLU(0.2, inplace=True)]
                super().__init__(
                    NDConv[n_dims](
                        in_ch,
                        out_ch,
                        kernel_size=3,
                        padding=1,
                    ),
                    *post_conv,
                )
                self.residual = residual

        """).replace("MIDDLE", middle) + textwrap.indent(textwrap.dedent(forward), "    ")


BRANCHES = """\
def forward(self, inp):
    if self.residual:
        return super().forward(inp) + inp
    else:
        return super().forward(inp)
"""

NEGATED = """\
def forward(self, x):
    if not self.residual:
        return super(ConvBlock, self).forward(x)
    return super(ConvBlock, self).forward(x) + x
"""


def test_sequential_forward_in_both_branches_of_a_flag_is_a_chain():
    assert rules("ADP007")
    code = block(BRANCHES)
    hits = found(code, "ADP007")
    assert len(hits) == 1
    assert hits[0].line == code.splitlines().index(
        "            post_conv = [NDBatchNorm[n_dims](out_ch), nn.LeakyReLU(0.2, inplace=True)]") + 1


def test_negated_flag_and_named_super_calls_are_a_chain():
    assert len(found(block(NEGATED), "ADP007")) == 1


def test_near_miss_activation_between_conv_and_norm():
    assert found(block(BRANCHES, middle="nn.ReLU(), "), "ADP007") == []


def test_near_miss_branch_running_only_the_first_member():
    skipping = """\
    def forward(self, x):
        if self.residual:
            return self[0](x)
        return super().forward(x)
    """
    assert found(block(skipping), "ADP007") == []
