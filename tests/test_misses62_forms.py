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
- A dict literal of another module of the package holding activation layers under literal keys
  (``ACT2FN = {"relu": nn.ReLU(), "gelu": nn.GELU(), ...}`` in ``activations.py``), looked up
  with a constructor parameter (basicts' ``self.act_fn = ACT2FN[hidden_act]``).  A dict of this
  file is read entry by entry (a parameter's key chosen at run time: each entry, conditionally,
  the patch guarding GELU at run time); one imported from a sibling module was read by its name
  alone, with the default key ("relu") taken as decided.  Now its entries are read where they
  are written, whatever the dict is named, as a dict of this file is.
Near-misses: a literal non-GELU key; a dict holding no GELU; a dict its module or this file
changes in place (its literal is not what a read finds).
- ``vars(torch.nn.modules.activation)[key]()`` (graphium's ``get_activation``) or
  ``vars(nn)[key]()``: the builtin ``vars`` of a module is its namespace, so the call builds what
  ``getattr(module, key)()`` builds, and is read as that is (a run-time key: any torch.nn
  activation, checked where it runs).  It was no layer at all.
Near-misses: a literal ReLU key; ``vars`` of an object that is not torch.nn; a file that defines
its own ``vars``.
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


ACTIVATIONS = """\
from torch import nn

NONLIN = {
    "relu": nn.ReLU(),
    "gelu": nn.GELU(),
    "silu": nn.SiLU(),
}
"""

MLP = """\
import torch
from torch import nn

from .activations import NONLIN


class MLPLayer(nn.Module):
    def __init__(self, width: int, hidden: int, hidden_act: str = "relu") -> None:
        super().__init__()
        self.act_fn = NONLIN[hidden_act]
        self.fc1 = nn.Linear(width, hidden)
        self.fc2 = nn.Linear(hidden, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act_fn(self.fc1(x)))  # pair
"""


def _mlp_package(tmp_path, table: str = ACTIVATIONS, mlp: str = MLP, init: str = ""):
    top = tmp_path / "tspkg"
    (top / "modules").mkdir(parents=True)
    (top / "__init__.py").write_text("")
    (top / "modules" / "__init__.py").write_text(init)
    (top / "modules" / "activations.py").write_text(table)
    path = top / "modules" / "mlps.py"
    path.write_text(mlp)
    return str(path), mlp


def _gelu_at(path: str, code: str) -> bool:
    line = line_of(code, "# pair")
    return any(f.rule == "ADP006" and f.line <= line <= f.end_line
               for f in analyze(code, path, rules("ADP006"), package=package_of(path)).findings)


def test_sibling_dict_looked_up_by_a_run_time_key_may_be_gelu(tmp_path):
    assert _gelu_at(*_mlp_package(tmp_path))


def test_sibling_dict_fix_guards_the_activation_and_matches(tmp_path):
    import torch
    from torch import nn

    path, code = _mlp_package(tmp_path)
    fixed = fix_text(code, path, rules("ADP006"), package=package_of(path)).text
    assert "bias_gelu(x, self.fc1, self.act_fn)" in fixed
    table = {"relu": nn.ReLU(), "gelu": nn.GELU(), "silu": nn.SiLU()}
    for key in table:  # the guard keeps every entry's activation
        spaces = []
        for text in (code, fixed):
            space = {"NONLIN": table}
            exec(text.replace("from .activations import NONLIN\n", ""), space)
            spaces.append(space)
        torch.manual_seed(0)
        before = spaces[0]["MLPLayer"](8, 16, key).double()
        after = spaces[1]["MLPLayer"](8, 16, key).double()
        after.load_state_dict(before.state_dict(), strict=True)
        x = torch.randn(3, 8, dtype=torch.float64)
        # float64, one Linear of 8 inputs: the fused and the plain path agree to rounding
        torch.testing.assert_close(after(x), before(x), rtol=1e-12, atol=1e-12)


def test_sibling_dict_read_with_a_literal_relu_key_is_no_gelu(tmp_path):
    assert not _gelu_at(*_mlp_package(tmp_path, mlp=MLP.replace("NONLIN[hidden_act]", 'NONLIN["relu"]')))


def test_sibling_dict_holding_no_gelu_is_no_pair(tmp_path):
    assert not _gelu_at(*_mlp_package(tmp_path, table=ACTIVATIONS.replace('"gelu": nn.GELU()', '"tanh": nn.Tanh()')))


def test_sibling_dict_changed_in_place_is_not_read(tmp_path):
    """The literal holds GELU, but its module (or this file) changes the dict after binding it."""
    assert not _gelu_at(*_mlp_package(tmp_path, table=ACTIVATIONS + 'NONLIN.pop("gelu")\n'))
    changed = MLP.replace("class MLPLayer", 'NONLIN["gelu"] = nn.ReLU()\n\n\nclass MLPLayer')
    assert not _gelu_at(*_mlp_package(tmp_path / "b", mlp=changed))


VARS = """\
import torch
from torch import nn


def build_act(name):
    return vars(torch.nn.modules.activation)[name]()


class Block(nn.Module):
    def __init__(self, d, act="ReLU"):
        super().__init__()
        self.fc = nn.Linear(d, d)
        self.act = build_act(act)
        self.fc2 = nn.Linear(d, d)
        self.fixed = vars(nn)["GELU"]()

    def forward(self, x):
        h = self.act(self.fc(x))  # keyed
        return self.fixed(self.fc2(h))  # literal
"""


def _vars_at(code: str, needle: str) -> bool:
    line = line_of(code, needle)
    return any(f.rule == "ADP006" and f.line <= line <= f.end_line
               for f in analyze(code, "model.py", rules("ADP006")).findings)


def test_vars_of_torch_nn_looked_up_is_that_class():
    assert _vars_at(VARS, "# keyed")
    assert _vars_at(VARS, "# literal")


def test_vars_lookup_fix_matches():
    import torch

    fixed = fix_text(VARS, "model.py", rules("ADP006")).text
    assert "bias_gelu(" in fixed
    for key in ("ReLU", "GELU", "Tanh"):
        spaces = [{}, {}]
        exec(VARS, spaces[0])
        exec(fixed, spaces[1])
        torch.manual_seed(0)
        before = spaces[0]["Block"](8, key).double()
        after = spaces[1]["Block"](8, key).double()
        after.load_state_dict(before.state_dict(), strict=True)
        x = torch.randn(3, 8, dtype=torch.float64)
        torch.testing.assert_close(after(x), before(x), rtol=1e-12, atol=1e-12)


def test_vars_lookup_of_a_relu_key_is_no_gelu():
    assert not _vars_at(VARS.replace('vars(nn)["GELU"]()', 'vars(nn)["ReLU"]()'), "# literal")


def test_vars_of_another_object_is_not_read():
    code = VARS.replace("vars(torch.nn.modules.activation)[name]()", "vars(ACTS)[name]()").replace(
        "def build_act", "class ACTS:\n    relu = nn.ReLU\n\n\ndef build_act")
    assert not _vars_at(code, "# keyed")


def test_a_file_defining_its_own_vars_is_not_read():
    code = VARS.replace("def build_act", "def vars(obj):\n    return {'ReLU': nn.ReLU, 'GELU': nn.ReLU}\n\n\ndef build_act")
    assert not _vars_at(code, "# keyed")
    assert not _vars_at(code, "# literal")


def test_a_module_level_rebinding_of_vars_or_getattr_is_not_read():
    # ``vars = lambda obj: {...}`` binds no def, yet the call is no longer the builtin's
    rebound = VARS.replace("def build_act", "vars = lambda obj: {'ReLU': nn.ReLU, 'GELU': nn.ReLU}\n\n\ndef build_act")
    assert not _vars_at(rebound, "# keyed")
    assert not _vars_at(rebound, "# literal")
    looked_up = VARS.replace('vars(nn)["GELU"]()', 'getattr(nn, "GELU")()')
    assert _vars_at(looked_up, "# literal")
    for binding in ("getattr = lambda module, key: nn.ReLU\n", "from operator import getitem as getattr\n",
                    "for getattr in (lambda module, key: nn.ReLU,):\n    pass\n"):
        code = looked_up.replace("def build_act", binding + "\n\ndef build_act")
        assert not _vars_at(code, "# literal"), binding


def test_sibling_dict_changed_by_a_third_module_or_through_an_alias_is_not_read(tmp_path):
    """The literal holds GELU, but another module of the package replaces the entry, or the
    defining module writes it through another name: the entries are not what a read finds."""
    assert _gelu_at(*_mlp_package(tmp_path / "a"))
    third = 'from torch import nn\nfrom .activations import NONLIN\n\nNONLIN["gelu"] = nn.Tanh()\n'
    assert not _gelu_at(*_mlp_package(tmp_path / "b", init=third))
    alias = ACTIVATIONS + '\n\ndef register(key, layer):\n    table = NONLIN\n    table[key] = layer\n\n\nregister("gelu", nn.Tanh())\n'
    assert not _gelu_at(*_mlp_package(tmp_path / "c", table=alias))
    handed = MLP.replace("class MLPLayer", "def extend(table):\n    table.update(gelu=nn.Tanh())\n\n\nextend(NONLIN)\n\n\nclass MLPLayer")
    assert not _gelu_at(*_mlp_package(tmp_path / "d", mlp=handed))
