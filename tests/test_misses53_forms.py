"""Forms of research73's nd-vq-vae miss (session 37, helper misses53): N-d layers written
``getattr(nn, f"Conv{n_dims}d")(...)`` / ``getattr(nn, f"BatchNorm{n_dims}d")(...)`` with
``n_dims`` a required argument, used directly or through same-file wrapper modules (one pads
its input then calls its conv; one only calls its BatchNorm).  A conv-BN pair folds in every
dimension when both dimensions are one value.  The fixtures are ours.

Near-misses: the two dimensions come from two different parameters; a wrapper that adds an
activation or a bias after its conv; an InstanceNorm of the run-time dimension.
"""

from __future__ import annotations

import textwrap

import pytest
from corpus_forms import assert_bn_fold_matches, found, line_of, rules

from adopter.synth import fix_text

ND = textwrap.dedent("""\
    import torch
    import torch.nn.functional as F
    from torch import nn


    class PadConv(nn.Module):
        def __init__(self, cin, cout, k, n_dims, bias=True):
            super().__init__()
            self.pad = (k - 1) // 2
            self.n_dims = n_dims
            self.conv = getattr(nn, f"Conv{n_dims}d")(cin, cout, k, bias=bias)

        def forward(self, x):
            return self.conv(F.pad(x, (self.pad,) * (2 * self.n_dims)))


    class Norm(nn.Module):
        def __init__(self, c, n_dims):
            super().__init__()
            self.bn = getattr(nn, f"BatchNorm{n_dims}d")(c)

        def forward(self, x):
            return self.bn(x)


    class Block(nn.Module):
        def __init__(self, c, n_dims):
            super().__init__()
            self.conv1 = PadConv(c, c, 3, n_dims, bias=False)
            self.norm1 = Norm(c, n_dims)
            self.conv2 = getattr(nn, f"Conv{n_dims}d")(c, c, 1)
            self.norm2 = getattr(nn, f"BatchNorm{n_dims}d")(c)

        def forward(self, x):
            h = self.conv1(x)
            h = self.norm1(h)  # wrapped pair
            h = torch.relu(h)
            h = self.conv2(h)
            h = self.norm2(h)  # direct pair
            return h
""")


def _lines(code: str) -> list[int]:
    return sorted(f.end_line for f in found(code, "ADP007"))


def test_run_time_dimension_pairs_direct_and_through_wrappers_are_found():
    assert _lines(ND) == [line_of(ND, "# wrapped pair"), line_of(ND, "# direct pair")]


@pytest.mark.parametrize("n_dims, shape", [(1, (2, 4, 9)), (2, (2, 4, 6, 7)), (3, (2, 4, 5, 4, 6))])
def test_the_fix_folds_the_direct_pair_exactly_and_declines_the_wrapped_one(n_dims, shape):
    result = fix_text(ND, "model.py", rules("ADP007"))
    assert "conv_bn(h, self.conv2, self.norm2)" in result.text
    assert "self.norm1(h)" in result.text  # the wrapper's conv is not reached: left as written
    assert any("PadConv" in why for _, why in result.skipped)
    assert_bn_fold_matches(ND, result.text, "Block", (4, n_dims), shape)


TWO_PARAMS = textwrap.dedent("""\
    from torch import nn


    class Block(nn.Module):
        def __init__(self, c, conv_dims, norm_dims):
            super().__init__()
            self.conv = getattr(nn, f"Conv{conv_dims}d")(c, c, 1)
            self.norm = getattr(nn, f"BatchNorm{norm_dims}d")(c)

        def forward(self, x):
            return self.norm(self.conv(x))
""")

INSTANCE = ND.replace('f"BatchNorm{n_dims}d"', 'f"InstanceNorm{n_dims}d"')
ACTIVATED = ND.replace("return self.conv(F.pad(x, (self.pad,) * (2 * self.n_dims)))",
                       "return torch.relu(self.conv(F.pad(x, (self.pad,) * (2 * self.n_dims))))")
BIASED = ND.replace("return self.conv(F.pad(x, (self.pad,) * (2 * self.n_dims)))",
                    "return self.conv(F.pad(x, (self.pad,) * (2 * self.n_dims))) + 1.0")
DEFAULTED_ELSEWHERE = TWO_PARAMS.replace("def __init__(self, c, conv_dims, norm_dims)",
                                         "def __init__(self, c, conv_dims, norm_dims=2)")


def test_dimensions_from_two_parameters_are_declined():
    assert found(TWO_PARAMS, "ADP007") == []
    assert found(DEFAULTED_ELSEWHERE, "ADP007") == []


def test_an_instance_norm_of_the_run_time_dimension_is_no_pair():
    assert found(INSTANCE, "ADP007") == []


@pytest.mark.parametrize("code", [ACTIVATED, BIASED], ids=["activation", "bias"])
def test_a_wrapper_computing_more_after_its_conv_is_not_that_conv(code):
    assert _lines(code) == [line_of(code, "# direct pair")]
