"""Forms found missing while checking the blind batch corpus20b (research reimplementations of
fifteen packages new to the corpus: nanoGPT/minGPT copies, a Gemma-style decoder, protein and
graph transformers).  The fixtures are ours.

- A Linear's output passed to a *function* that computes GELU, called by a name that no
  spelling table knows: the file's own function whose body is the tanh or erf formula
  (nanoGPT's ``new_gelu``), or a function of another module of the package that returns
  ``F.gelu`` of its argument with one fixed ``approximate`` (a ``gelu_tanh`` helper imported with
  ``from .layers import ...``).  The flow builder already read a call of a same-file formula
  function as a GELU (and a sibling module's formula function), but the matcher's cheap word
  test asks a root to mention one of the GELU's spellings (``gelu``, ``GELU``, an attribute
  bound to a GELU layer) first, and ``new_gelu`` is none of them, so the root was never built.
  The module's words for the GELU operation now include the names of such functions that some
  root mentions; a sibling function that wraps ``F.gelu`` is read as a GELU too (ADP006; the
  fix calls ``linear_gelu`` with the variant's ``approximate``).  Near-misses: a same-file
  sigmoid-GELU (``x * sigmoid(1.702 x)``), a sibling wrapper of ``F.silu``, a sibling wrapper
  whose ``approximate`` is a module constant (not one literal setting), the formula after a
  convolution.
"""

from __future__ import annotations

from corpus_forms import finding_at, rules

from adopter.synth import fix_text

# ---------------------------------------------------------------- a same-file GELU formula function

FORMULA = """\
import math
import torch
import torch.nn as nn


def smooth_act(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))


def sigmoid_act(x):
    return x * torch.sigmoid(1.702 * x)


class MLP(nn.Module):
    def __init__(self, dim=16):
        super().__init__()
        self.c_fc = nn.Linear(dim, 4 * dim)
        self.c_proj = nn.Linear(4 * dim, dim)

    def forward(self, x):
        x = self.c_fc(x)
        x = ACT(x)  # act
        x = self.c_proj(x)
        return x
"""

CONV_FORMULA = """\
import math
import torch
import torch.nn as nn


def smooth_act(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))


class Stem(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3)

    def forward(self, x):
        return smooth_act(self.conv(x))  # act
"""


def test_same_file_formula_function_after_a_linear():
    assert finding_at(FORMULA.replace("ACT", "smooth_act"), "ADP006", "# act") is not None


def test_same_file_formula_function_fix_matches():
    import torch

    code = FORMULA.replace("ACT", "smooth_act")
    fixed = fix_text(code, "model.py", rules("ADP006")).text
    assert 'linear_gelu(x, self.c_fc, approximate="tanh")' in fixed
    original, patched = {}, {}
    exec(compile(code, "orig.py", "exec"), original)  # noqa: S102 (our own fixture)
    exec(compile(fixed, "fixed.py", "exec"), patched)  # noqa: S102
    torch.manual_seed(0)
    a = original["MLP"]().double()
    b = patched["MLP"]().double()
    b.load_state_dict(a.state_dict(), strict=True)
    x = torch.randn(2, 5, 16, dtype=torch.float64)
    # float64: the formula and F.gelu(approximate="tanh") agree to rounding (a 16-term and a
    # 64-term dot product around them)
    torch.testing.assert_close(b(x), a(x), rtol=0, atol=1e-12)


def test_same_file_sigmoid_gelu_is_no_gelu():
    assert finding_at(FORMULA.replace("ACT", "sigmoid_act"), "ADP006", "# act") is None


def test_same_file_formula_function_after_a_conv_is_no_pair():
    assert finding_at(CONV_FORMULA, "ADP006", "# act") is None


# ---------------------------------------------------------------- a sibling module's F.gelu wrapper

SIBLING_LAYERS = """\
import torch.nn.functional as F

MODE = "tanh"


def smooth(x):
    return F.gelu(x, approximate="tanh")


def swish(x):
    return F.silu(x)


def configured(x):
    return F.gelu(x, approximate=MODE)
"""

SIBLING_MLP = """\
import torch.nn as nn

from .layers import ACT


class GatedMLP(nn.Module):
    def __init__(self, hidden=16, inner=32):
        super().__init__()
        self.gate_proj = nn.Linear(hidden, inner, bias=False)
        self.up_proj = nn.Linear(hidden, inner, bias=False)
        self.down_proj = nn.Linear(inner, hidden, bias=False)

    def forward(self, x):
        return self.down_proj(ACT(self.gate_proj(x)) * self.up_proj(x))  # act
"""


def _package(root, act: str):
    folder = root / "wrappkg"
    folder.mkdir()
    (folder / "__init__.py").write_text("")
    (folder / "layers.py").write_text(SIBLING_LAYERS)
    (folder / "mlp.py").write_text(SIBLING_MLP.replace("ACT", act))
    return folder / "mlp.py"


def _found(path, rule="ADP006"):
    from adopter.engine import analyze
    from adopter.structure import package_of

    text = path.read_text()
    line = next(n for n, t in enumerate(text.splitlines(), 1) if "# act" in t)
    return [f for f in analyze(text, str(path), rules(rule), package_of(str(path))).findings
            if f.rule == rule and f.line <= line <= f.end_line]


def test_sibling_gelu_wrapper_after_a_linear(tmp_path):
    assert _found(_package(tmp_path, "smooth"))


def test_sibling_gelu_wrapper_fix_matches(tmp_path, monkeypatch):
    import torch
    from adopter.structure import package_of

    path = _package(tmp_path, "smooth")
    text = path.read_text()
    fixed = fix_text(text, str(path), rules("ADP006"), package_of(str(path))).text
    assert "linear_gelu(" in fixed and 'x, self.gate_proj, approximate="tanh"' in fixed
    monkeypatch.syspath_prepend(str(tmp_path))
    import importlib

    original = importlib.import_module("wrappkg.mlp")
    (tmp_path / "wrappkg" / "fixed.py").write_text(fixed)
    patched = importlib.import_module("wrappkg.fixed")
    torch.manual_seed(0)
    a = original.GatedMLP().double()
    b = patched.GatedMLP().double()
    b.load_state_dict(a.state_dict(), strict=True)
    x = torch.randn(3, 4, 16, dtype=torch.float64)
    # the same F.gelu(approximate="tanh") of the same product: equal to rounding in float64
    torch.testing.assert_close(b(x), a(x), rtol=0, atol=1e-12)


def test_sibling_gelu_wrapper_gate_is_no_swiglu(tmp_path):
    assert not _found(_package(tmp_path, "smooth"), "ADP013")


def test_sibling_silu_wrapper_is_no_gelu(tmp_path):
    assert not _found(_package(tmp_path, "swish"))


def test_sibling_wrapper_with_a_constant_setting_is_not_read(tmp_path):
    assert not _found(_package(tmp_path, "configured"))
