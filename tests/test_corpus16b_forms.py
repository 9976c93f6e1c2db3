"""Forms found missing while checking the blind batch corpus16b (transformers 4.45 files and
torchvision-style CNNs of five packages new to the corpus): an ``nn.Sequential`` subclass built
from its layers by ``super().__init__(conv, bn, act)`` whose own ``forward`` pads the input
under a test of a plain attribute (``if self.stride == 2:``), then runs every member in order
except those of one type (``if not isinstance(m, nn.MaxPool2d): x = m(x)``).  The near-misses:
a loop that skips the BatchNorm itself, one that skips a layer sitting between the conv and the
norm (no pair is made up across it), a read of ``self`` outside a test (a member run outside
the loop), and an attribute called in the test.  The fixtures are ours."""

from __future__ import annotations

import textwrap

from corpus_forms import found, line_of, rules

from adopter.synth import fix_text

SKIPPING = textwrap.dedent("""\
    import torch.nn as nn
    import torch.nn.functional as F


    class PaddedConvBlock(nn.Sequential):
        def __init__(self, cin, cout, stride=1):
            self.stride = stride
            padding = 0 if stride == 2 else 1
            super().__init__(
                nn.Conv2d(cin, cout, 3, stride, padding, bias=False),
                nn.BatchNorm2d(cout),  # pair
                nn.ReLU6(inplace=True),
            )
            self.pool = nn.MaxPool2d(stride, stride)

        def forward(self, x):
            if self.stride == 2:
                x = F.pad(x, (0, 1, 0, 1))
            for layer in self:
                if not isinstance(layer, nn.MaxPool2d):
                    x = layer(x)
            return x
    """)


def _covers(code: str, needle: str) -> bool:
    line = line_of(code, needle)
    return any(f.line <= line <= f.end_line for f in found(code, "ADP007"))


def test_sequential_subclass_skipping_one_type_and_padding_under_a_flag():
    assert _covers(SKIPPING, "# pair")


def test_its_finding_is_reported_not_rewritten():
    # its own forward runs the members, so giving the container a folding class would change
    # nothing: the fixer leaves the file as it is
    fixed = fix_text(SKIPPING, "model.py", rules("ADP007"))
    assert fixed.error is None
    assert fixed.text == SKIPPING
    assert [why for _, why in fixed.skipped if "own forward" in why]


def test_near_miss_the_skipped_type_is_the_norm():
    code = SKIPPING.replace(
        "isinstance(layer, nn.MaxPool2d)", "isinstance(layer, nn.BatchNorm2d)"
    )
    assert found(code, "ADP007") == []


def test_near_miss_the_skipped_type_sits_between():
    # a skipped Identity between them: the loop does join them at run time, but the structure
    # keeps the skipped member as a barrier (a miss, never a made-up pair)
    code = SKIPPING.replace(
        "nn.BatchNorm2d(cout),  # pair",
        "nn.Identity(),\n            nn.BatchNorm2d(cout),  # pair",
    )
    code = code.replace(
        "isinstance(layer, nn.MaxPool2d)", "isinstance(layer, nn.Identity)"
    )
    assert found(code, "ADP007") == []


def test_near_miss_a_member_run_outside_the_loop():
    code = SKIPPING.replace("x = F.pad(x, (0, 1, 0, 1))", "x = self[0](x)")
    assert found(code, "ADP007") == []


def test_near_miss_a_method_called_in_the_test():
    code = SKIPPING.replace("if self.stride == 2:", "if self.pool(x).sum() > 0:")
    assert found(code, "ADP007") == []


def test_near_miss_a_skip_test_that_is_not_a_type():
    code = SKIPPING.replace(
        "if not isinstance(layer, nn.MaxPool2d):", "if self.training:"
    )
    assert found(code, "ADP007") == []


def test_padding_under_a_flag_before_a_plain_loop():
    code = SKIPPING.replace(
        "if not isinstance(layer, nn.MaxPool2d):\n                x = layer(x)",
        "x = layer(x)",
    )
    assert "isinstance" not in code
    assert _covers(code, "# pair")


def test_near_miss_padding_with_a_member():
    # the test reads a member's attribute and the body runs the member: not a value alone
    code = SKIPPING.replace("x = F.pad(x, (0, 1, 0, 1))", "x = self.pool(x)")
    assert found(code, "ADP007") == []
