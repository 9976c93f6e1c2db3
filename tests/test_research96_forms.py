"""Forms read while labelling blind batch research96 (CNN backbones of face-recognition,
few-shot and segmentation research code).  The fixtures are ours.

- A same-file helper that appends a conv then a BatchNorm to the list its caller passes in
  (``conv_bn(out, cin, cout)`` as a statement, the caller's list later ``nn.Sequential(*out)``,
  ReXNet's ``ConvBNAct``): the pair sits in the caller's list at the call.  Near-misses: a
  helper that appends an activation between the two; a same-file helper that does something
  else with the list (here reverses it) between a conv and a BatchNorm the caller appends (no
  pair: what the list holds there is not known); a helper that also hands the list elsewhere.
"""

from __future__ import annotations

import textwrap

from corpus_forms import assert_bn_fold_matches, found, line_of, rules

from adopter.synth import fix_text

APPENDER = textwrap.dedent("""\
    import torch
    from torch import nn


    def conv_bn(out, cin, cout, active=True):
        out.append(nn.Conv2d(cin, cout, 3, padding=1, bias=False))
        out.append(nn.BatchNorm2d(cout))
        if active:
            out.append(nn.ReLU())


    class Stem(nn.Module):
        def __init__(self, c):
            super().__init__()
            layers = []
            conv_bn(layers, 3, c)  # pair
            layers.append(nn.MaxPool2d(2))
            conv_bn(layers, c, c, active=False)  # second
            self.body = nn.Sequential(*layers)

        def forward(self, x):
            return self.body(x)
""")


def test_a_helper_appending_conv_then_bn_to_the_callers_list_is_a_pair_at_each_call():
    got = sorted((f.line, f.end_line) for f in found(APPENDER, "ADP007"))
    assert [start for start, _ in got] == [line_of(APPENDER, "# pair"), line_of(APPENDER, "# second")]


def test_the_fixed_appender_stem_computes_what_it_did():
    fixed = fix_text(APPENDER, "model.py", rules("ADP007")).text
    assert fixed != APPENDER
    assert_bn_fold_matches(APPENDER, fixed, "Stem", (4,), (2, 3, 8, 8))


CONV_LINE = "    out.append(nn.Conv2d(cin, cout, 3, padding=1, bias=False))\n"
BN_LINE = "    out.append(nn.BatchNorm2d(cout))\n"
assert CONV_LINE in APPENDER and BN_LINE in APPENDER
ACT_BETWEEN = APPENDER.replace(CONV_LINE, CONV_LINE + "    out.append(nn.ReLU())\n")


def test_a_helper_with_an_activation_between_conv_and_bn_is_no_pair():
    assert found(ACT_BETWEEN, "ADP007") == []


REORDERS = textwrap.dedent("""\
    import torch
    from torch import nn


    def flip(out):
        out.reverse()


    class Stem(nn.Module):
        def __init__(self, c):
            super().__init__()
            layers = [nn.BatchNorm2d(3)]
            layers.append(nn.Conv2d(3, 3, 3, padding=1, bias=False))
            flip(layers)
            layers.append(nn.BatchNorm2d(3))
            self.body = nn.Sequential(*layers)

        def forward(self, x):
            return self.body(x)
""")


def test_a_same_file_helper_that_reorders_the_list_breaks_the_pair_across_its_call():
    assert found(REORDERS, "ADP007") == []


HANDS_ON = APPENDER.replace(BN_LINE, BN_LINE + "    REGISTRY.append(out)\n").replace("from torch import nn\n", "from torch import nn\n\nREGISTRY = []\n")


def test_a_helper_that_hands_the_list_elsewhere_is_not_read():
    assert found(HANDS_ON, "ADP007") == []
