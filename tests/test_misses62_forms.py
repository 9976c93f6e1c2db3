"""misses62 (session 41): readings across a package's own modules for the conv-BN and bias-GELU
rules.

- A sibling module's factory returning the torch.nn class a formatted key names from its int
  parameter (``def get_nd_conv(dim): return getattr(nn, "Conv%dd" % dim)`` in ``util.py``),
  called from the checked file with the caller's parameter at its int default (``Conv =
  get_nd_conv(nd)``, ``nd=2``; celldetection's spelling).  The same factory in the checked file
  was read (cnn45); across modules the argument reached the other module as a typed value with
  no constant, so the key was unknown there.  Now an int the call passes (a literal, or the
  caller's parameter at an int default, not rebound) reaches the sibling as that literal.
Near-misses: the default makes it a Conv1d; the dimension is computed at run time; the factory
formats a transposed convolution.
"""

from __future__ import annotations

from corpus_forms import assert_bn_fold_matches, line_of, rules

from adopter.engine import analyze
from adopter.structure import package_of
from adopter.synth import fix_text

ND_UTIL = """\
import torch.nn as nn


def get_nd_conv(dim):
    assert isinstance(dim, int) and dim in (1, 2, 3)
    return getattr(nn, "Conv%dd" % dim)
"""

ND_BLOCKS = """\
import torch.nn as nn

from ..util.util import get_nd_conv


class ConvNorm(nn.Sequential):
    def __init__(self, cin, cout, kernel_size=3, norm_layer=nn.BatchNorm2d, nd=2):
        Conv = get_nd_conv(nd)
        super().__init__(
            Conv(cin, cout, kernel_size=kernel_size, padding=1, bias=False),
            norm_layer(cout),  # pair
        )


class Head(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.conv = get_nd_conv(dim=2)(cin, cout, 1)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x):
        return self.bn(self.conv(x)).relu()  # head
"""


def _package(tmp_path, util: str = ND_UTIL, blocks: str = ND_BLOCKS):
    top = tmp_path / "cellpkg"
    for folder in (top, top / "util", top / "models"):
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "__init__.py").write_text("")
    (top / "util" / "util.py").write_text(util)
    path = top / "models" / "commons.py"
    path.write_text(blocks)
    return str(path), blocks


def _at(path: str, code: str, needle: str) -> bool:
    line = line_of(code, needle)
    return any(f.rule == "ADP007" and f.line <= line <= f.end_line
               for f in analyze(code, path, rules("ADP007"), package=package_of(path)).findings)


def test_sibling_factory_given_the_callers_int_default_is_a_conv2d(tmp_path):
    path, code = _package(tmp_path)
    assert _at(path, code, "# pair")
    assert _at(path, code, "# head")


def test_sibling_factory_fix_folds_exactly(tmp_path):
    path, code = _package(tmp_path)
    fixed = fix_text(code, path, rules("ADP007"), package=package_of(path)).text
    assert fixed != code
    util = ND_UTIL.replace("import torch.nn as nn\n", "")
    # run both versions standalone: the factory inlined in place of the package import
    inline = lambda text: text.replace("from ..util.util import get_nd_conv\n", util)  # noqa: E731
    assert_bn_fold_matches(inline(code), inline(fixed), "ConvNorm", (3, 4), (2, 3, 6, 6))
    assert_bn_fold_matches(inline(code), inline(fixed), "Head", (3, 4), (2, 3, 6, 6))


def test_sibling_factory_at_a_one_dimensional_default_is_no_pair(tmp_path):
    path, code = _package(tmp_path, blocks=ND_BLOCKS.replace("nd=2):", "nd=1):").replace("dim=2)", "dim=1)"))
    assert not _at(path, code, "# pair")
    assert not _at(path, code, "# head")


def test_sibling_factory_given_a_run_time_dimension_is_not_read(tmp_path):
    path, code = _package(tmp_path, blocks=ND_BLOCKS.replace("get_nd_conv(nd)", "get_nd_conv(len(str(cin)) + 1)"))
    assert not _at(path, code, "# pair")


def test_sibling_factory_formatting_a_transposed_convolution_is_no_pair(tmp_path):
    path, code = _package(tmp_path, util=ND_UTIL.replace('"Conv%dd"', '"ConvTranspose%dd"'))
    assert not _at(path, code, "# pair")
    assert not _at(path, code, "# head")
