"""Forms found while checking the blind batch of research65 (research packages as papers ship
them: a PDE transformer's training scripts, set transformers, molecule transformers).  The
fixtures are ours.

- A training script that gets ``torch`` from a star import (``from libs import *``) and builds
  ``torch.optim.Adam(...)``: ``torch`` is bound nowhere in the file, so the star import binds
  it at run time, and it is the torch package: the optimizer is a fused-optimizer site.
  Near-miss: a file with the same star import that binds ``torch`` itself (to an object of its
  own) is not read as the package.
- A block base class whose activation is ``F.relu`` by default or ``getattr(F, name)`` when a
  string is given, built in the file only through its subclasses' ``super().__init__(...,
  activation=activation)`` with the subclasses' own ``F.relu`` default: the string path never
  runs where the file builds it (GUIDE, the vall-e-x ruling), so the Linear -> activation pair
  is no bias-GELU site.  Near-miss: a subclass that hands on ``"gelu"`` keeps it a site.
"""

from __future__ import annotations

from corpus_forms import found, line_of, rules

from adopter.synth import fix_text

STAR_TORCH = """\
from libs import *


def main(model, lr):
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    return optimizer
"""

STAR_OWN_TORCH = """\
from libs import *

torch = Toolkit()


def main(model, lr):
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    return optimizer
"""


def test_optimizer_of_a_star_imported_torch_is_found_and_fixed():
    anchor = line_of(STAR_TORCH, "torch.optim.Adam(")
    assert [f.line for f in found(STAR_TORCH, "ADP012")] == [anchor]
    fixed = fix_text(STAR_TORCH, "train.py", rules("ADP012")).text
    assert "fused=" in fixed or "foreach=" in fixed
    compile(fixed, "train.py", "exec")


def test_a_torch_the_file_binds_itself_is_not_the_package():
    assert found(STAR_OWN_TORCH, "ADP012") == []


# review36: an ``except ... as torch`` binds the name too; a file that reads no ``torch.nn`` /
# ``torch.optim`` under the star-imported name gives no reason to take it for the package
STAR_EXCEPT_TORCH = STAR_TORCH.replace("\n\n\ndef main", "\ntry:\n    pass\nexcept ImportError as torch:\n    pass\n\n\ndef main")
STAR_NO_PACKAGES = """\
from libs import *


def rms(x, eps=1e-6):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps)
"""


def test_a_star_imported_torch_needs_its_packages_read_and_no_binding_of_its_own():
    assert "as torch" in STAR_EXCEPT_TORCH
    assert found(STAR_EXCEPT_TORCH, "ADP012") == []
    assert found(STAR_NO_PACKAGES, "ADP011") == []
    plain = STAR_NO_PACKAGES.replace("from libs import *", "import torch")
    assert found(plain, "ADP011") != []  # (the same norm with torch imported is one)


HANDED_ON = """\
from typing import Callable, Union

import torch.nn.functional as F
from torch import nn


class Block(nn.Module):
    def __init__(self, dim, hidden, activation: Union[str, Callable] = F.relu):
        super().__init__()
        if isinstance(activation, str):
            self.activation = getattr(F, activation)
        else:
            self.activation = activation
        self.linear1 = nn.Linear(dim, hidden)
        self.linear2 = nn.Linear(hidden, dim)

    def forward_ffn(self, x):
        return self.linear2(self.activation(self.linear1(x)))


class SelfBlock(Block):
    def __init__(self, dim, hidden, activation: Union[str, Callable] = F.relu):
        super().__init__(dim, hidden, activation=activation)

    def forward(self, x):
        return x + self.forward_ffn(x)


class CrossBlock(Block):
    def __init__(self, dim, hidden, activation=F.relu, norm_first=True):
        super().__init__(dim, hidden, activation=activation)
        self.norm_first = norm_first

    def forward(self, x, y):
        return x + self.forward_ffn(x + y)
"""

HANDED_GELU = HANDED_ON.replace(
    "class CrossBlock(Block):\n    def __init__(self, dim, hidden, activation=F.relu, norm_first=True):\n"
    "        super().__init__(dim, hidden, activation=activation)",
    "class CrossBlock(Block):\n    def __init__(self, dim, hidden, norm_first=True):\n"
    "        super().__init__(dim, hidden, activation=\"gelu\")",
)


def test_string_path_no_subclass_takes_is_no_bias_gelu_site():
    assert found(HANDED_ON, "ADP006") == []


def test_a_subclass_handing_on_gelu_keeps_the_site():
    assert HANDED_GELU != HANDED_ON
    anchor = line_of(HANDED_GELU, "self.linear2(self.activation(self.linear1(x)))")
    assert any(f.line <= anchor <= f.end_line for f in found(HANDED_GELU, "ADP006"))


EXP_SOFTMAX = """\
import torch
import torch.nn as nn


def softmax(x, dim=-1):
    shifted_x = x - torch.max(x, dim=dim, keepdim=True)[0]
    exp_x = torch.exp(shifted_x)
    return exp_x / torch.sum(exp_x, dim=dim, keepdim=True)


class Attention(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.head_dim = dim // heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)

    def forward(self, x):
        b = x.size(0)
        qkv = self.qkv(x).reshape(b, -1, self.heads, 3 * self.head_dim).transpose(1, 2)
        q, k, v = qkv.chunk(3, dim=-1)
        q = q / (self.head_dim ** 0.5)
        scores = q @ k.transpose(-2, -1)
        weights = softmax(scores, dim=-1)
        out = (weights @ v).transpose(1, 2).reshape(b, -1, self.heads * self.head_dim)
        return self.out(out)
"""

# the "quiet" softmax (one added to the denominator) and an exponent scaled inside: other functions
QUIET = EXP_SOFTMAX.replace(
    "return exp_x / torch.sum(exp_x, dim=dim, keepdim=True)",
    "return exp_x / (1 + torch.sum(exp_x, dim=dim, keepdim=True))")
SCALED = EXP_SOFTMAX.replace("exp_x = torch.exp(shifted_x)", "exp_x = torch.exp(2 * shifted_x)")


def test_softmax_written_as_exp_over_its_sum_is_attention():
    anchor = line_of(EXP_SOFTMAX, "weights = softmax(scores, dim=-1)")
    assert any(f.line <= anchor <= f.end_line for f in found(EXP_SOFTMAX, "ADP010"))


def test_other_normalisations_of_an_exponent_are_not_softmax():
    assert QUIET != EXP_SOFTMAX and SCALED != EXP_SOFTMAX
    assert found(QUIET, "ADP010") == []
    assert found(SCALED, "ADP010") == []


def test_the_fix_of_the_written_out_softmax_computes_the_same_attention():
    import torch

    fixed = fix_text(EXP_SOFTMAX, "model.py", rules("ADP010")).text
    assert "scaled_dot_product_attention(" in fixed
    original, patched = {}, {}
    exec(compile(EXP_SOFTMAX, "orig.py", "exec"), original)  # noqa: S102 (our own fixture)
    exec(compile(fixed, "fixed.py", "exec"), patched)  # noqa: S102
    torch.manual_seed(0)
    a = original["Attention"](16, 4).double()
    b = patched["Attention"](16, 4).double()
    b.load_state_dict(a.state_dict())
    x = torch.randn(2, 7, 16, dtype=torch.float64)
    # float64 on CPU: softmax over 7 keys and a 4-wide head product, agreement to rounding
    torch.testing.assert_close(b(x), a(x), rtol=1e-10, atol=1e-12)


TABLE_OR_MODULE = """\
from torch import nn


class MLPHead(nn.Module):
    _ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU, "tanh": nn.Tanh}

    def __init__(self, dims, out_dim, activation="relu", dropout=0.0):
        super().__init__()
        if isinstance(activation, str):
            self.activation = self._ACTIVATIONS[activation.lower()]()
        else:
            self.activation = activation
        layers = []
        for i in range(len(dims) - 1):
            layers.append(nn.Linear(dims[i], dims[i + 1]))
            layers.append(self.activation)
            if dropout > 0.0:
                layers.append(nn.Dropout(dropout))
        layers.append(nn.Linear(dims[-1], out_dim))
        self.mlp = nn.Sequential(*layers)

    def forward(self, x):
        return self.mlp(x)
"""

# the same head whose table holds no GELU: whatever the caller passes, nothing says GELU
TABLE_WITHOUT_GELU = TABLE_OR_MODULE.replace('"gelu": nn.GELU, ', "")


def test_activation_from_a_table_or_the_callers_module_in_a_list_built_mlp():
    anchor = line_of(TABLE_OR_MODULE, "layers.append(self.activation)")
    assert any(f.line <= anchor <= f.end_line for f in found(TABLE_OR_MODULE, "ADP006"))


def test_a_table_without_gelu_stays_unreported():
    assert TABLE_WITHOUT_GELU != TABLE_OR_MODULE
    assert found(TABLE_WITHOUT_GELU, "ADP006") == []


# exp and sum of another module (same last name, not torch's): they compute what that module
# says (review36); the tensor methods on the name itself stay the written-out softmax
FOREIGN_EXP = EXP_SOFTMAX.replace("import torch.nn as nn\n", "import torch.nn as nn\nfrom fastmath import exp\n") \
    .replace("exp_x = torch.exp(shifted_x)", "exp_x = exp(shifted_x)")
FOREIGN_SUM = EXP_SOFTMAX.replace("import torch.nn as nn\n", "import torch.nn as nn\nimport fastmath\n") \
    .replace("torch.sum(exp_x, dim=dim, keepdim=True)", "fastmath.sum(exp_x, dim=dim, keepdim=True)")
METHODS = EXP_SOFTMAX.replace("exp_x = torch.exp(shifted_x)", "exp_x = shifted_x.exp()") \
    .replace("torch.sum(exp_x, dim=dim, keepdim=True)", "exp_x.sum(dim=dim, keepdim=True)")


def test_an_exp_or_sum_of_another_module_is_not_softmax():
    assert FOREIGN_EXP.count("fastmath") == 1 and "= exp(shifted_x)" in FOREIGN_EXP
    assert "fastmath.sum(" in FOREIGN_SUM
    assert found(FOREIGN_EXP, "ADP010") == []
    assert found(FOREIGN_SUM, "ADP010") == []


def test_the_tensor_methods_exp_and_sum_are_the_written_out_softmax():
    anchor = line_of(METHODS, "weights = softmax(scores, dim=-1)")
    assert any(f.line <= anchor <= f.end_line for f in found(METHODS, "ADP010"))
