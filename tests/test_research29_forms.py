"""Forms found missing while checking the blind batch research29 (vision, speech and multimodal
reimplementations: ViT/TimeSformer, FasterViT, Perceiver IO, Squeezeformer, a chunked conformer,
an audio spectrogram transformer).  The fixtures are ours.

- A class imported from the torch submodule that defines it (``from torch.optim.adam import
  Adam``, ``from torch.nn.modules.linear import Linear``) is the class torch's package re-exports
  (``torch.optim.Adam``, ``torch.nn.Linear``), the name rules use.  Near-misses: a scheduler of
  ``torch.optim.lr_scheduler`` (not re-exported by ``torch.optim``), a private base
  (``_BatchNorm``), a project's own ``optim.adam`` module, an optimizer that already chooses
  ``fused=``.
- A position-bias module called on the scores that adds its bias **in place** (``scores +=
  bias; return scores``), with an extra argument the bias reads and an early return of a cached
  bias (FasterViT's window attention): the same "bias added to the scores" as ``return scores +
  bias``.  The fix hands it a stand-in of zeros of its own (an in-place add into a broadcast view
  raises) and the extra argument as written.  Near-misses: an in-place add of a value read from
  the scores, an in-place product, an in-place add whose result is not what is returned, the
  scores handed again as the other argument, the other argument read as a tensor (``scores +
  tokens``, ``table * tokens``, ``tokens.mean()``): it must be read as a size only (an index or
  slice bound, arithmetic or a comparison with a number or the input's shape, ``range``/``int``/
  ``min``/``max``).
"""

from __future__ import annotations

import ast

import pytest
from corpus_forms import finding_at, float64_pair, found, rules

from adopter.structure import formulas
from adopter.structure.names import collect_names
from adopter.synth import fix_text

# ---------------------------------------------------------- classes imported from their submodule

OPTIMIZER = """\
import torch.nn as nn
IMPORT


def train(model: nn.Module):
    opt = CALL  # site
    return opt
"""


def _optimizer(imp: str, call: str) -> str:
    return OPTIMIZER.replace("IMPORT", imp).replace("CALL", call)


@pytest.mark.parametrize("imp, call", [
    ("from torch.optim.adam import Adam", "Adam(model.parameters(), lr=1e-3)"),
    ("from torch.optim.adamw import AdamW as W", "W(model.parameters())"),
    ("from torch.optim.sgd import SGD", "SGD(model.parameters(), lr=0.1, momentum=0.9)"),
])
def test_optimizer_imported_from_its_submodule_is_found(imp, call):
    assert finding_at(_optimizer(imp, call), "ADP012", "# site") is not None


@pytest.mark.parametrize("imp, call", [
    ("from torch.optim.adam import Adam", "Adam(model.parameters(), fused=True)"),
    ("from mylib.optim.adam import Adam", "Adam(model.parameters())"),
    ("from torch.optim.rmsprop import RMSprop", "RMSprop(model.parameters())"),
])
def test_optimizer_near_misses_are_not_found(imp, call):
    # already fused; a project's own module of that name; an optimizer the rule does not name
    assert finding_at(_optimizer(imp, call), "ADP012", "# site") is None


def test_submodule_imports_resolve_to_the_public_class_only_where_torch_re_exports_it():
    names = collect_names(ast.parse(
        "from torch.optim.adam import Adam, adam\n"
        "from torch.optim.lr_scheduler import LambdaLR\n"
        "from torch.optim.optimizer import Optimizer\n"
        "from torch.nn.modules.linear import Linear\n"
        "from torch.nn.modules.batchnorm import _BatchNorm\n"
        "from torch.nn.modules.utils import _pair\n"
        "from torch.nn.modules import Module\n"))
    assert names.imports["Adam"] == "torch.optim.Adam"
    assert names.imports["adam"] == "torch.optim.adam.adam"  # the functional form keeps its module
    assert names.imports["LambdaLR"] == "torch.optim.lr_scheduler.LambdaLR"
    assert names.imports["Optimizer"] == "torch.optim.Optimizer"
    assert names.imports["Linear"] == "torch.nn.Linear"
    assert names.imports["_BatchNorm"] == "torch.nn.modules.batchnorm._BatchNorm"
    assert names.imports["_pair"] == "torch.nn.modules.utils._pair"
    assert names.imports["Module"] == "torch.nn.Module"  # the package re-exports it too (research105)


MLP = """\
import torch.nn as nn
from torch.nn.modules.linear import Linear
from torch.nn.modules.activation import ACT


class Mlp(nn.Module):
    def __init__(self, dim=8):
        super().__init__()
        self.fc1 = Linear(dim, 4 * dim)
        self.act = ACT()
        self.fc2 = Linear(4 * dim, dim)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))  # site
"""


def test_linear_and_gelu_imported_from_their_submodules_are_found():
    assert finding_at(MLP.replace("ACT", "GELU"), "ADP006", "# site") is not None


def test_linear_and_relu_imported_from_their_submodules_are_not_gelu():
    assert finding_at(MLP.replace("ACT", "ReLU"), "ADP006", "# site") is None


# ------------------------------------------------------------- a bias module adding in place

BIAS = """\
import torch
import torch.nn as nn


class TableBias(nn.Module):
    def __init__(self, heads=2, tokens=6):
        super().__init__()
        self.table = nn.Parameter(torch.randn(1, heads, tokens, tokens))
        self.frozen = False
        self.register_buffer("cached", torch.zeros(1, heads, tokens, tokens))

    def forward(self, scores, tokens):
BODY


class Attn(nn.Module):
    def __init__(self, dim=8, heads=2, tokens=6):
        super().__init__()
        self.heads = heads
        self.tokens = tokens
        self.scale = (dim // heads) ** -0.5
        self.qkv = nn.Linear(dim, dim * 3)
        self.bias = TableBias(heads, tokens)
        self.drop = nn.Dropout(0.0)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        B, N, C = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.heads, C // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        attn = (q @ k.transpose(-2, -1)) * self.scale
        attn = self.bias(attn, self.tokens)
        attn = attn.softmax(dim=-1)  # site
        attn = self.drop(attn)
        x = (attn @ v).transpose(1, 2).reshape(B, N, C)
        return self.proj(x)
"""

IN_PLACE = """\
        if self.frozen:
            scores += self.cached
            return scores
        bias = self.table[:, :, :tokens, :tokens] * 0.5
        self.cached = bias
        scores += bias
        return scores"""


def _bias(body: str) -> str:
    return BIAS.replace("BODY", body)


def _forward(cls: ast.ClassDef) -> ast.FunctionDef:
    return next(s for s in cls.body if isinstance(s, ast.FunctionDef) and s.name == "forward")


def test_in_place_bias_module_with_an_argument_and_a_cached_path_is_found():
    assert finding_at(_bias(IN_PLACE), "ADP010", "# site") is not None


def test_in_place_bias_module_reads_as_a_bias_adder():
    cls = next(n for n in ast.parse(_bias(IN_PLACE)).body if isinstance(n, ast.ClassDef))
    assert formulas.bias_add_module(cls)
    assert formulas.bias_add_in_place(_forward(cls))


def test_out_of_place_bias_module_is_not_in_place():
    cls = next(n for n in ast.parse(_bias("        return scores + self.table * 0.5")).body
               if isinstance(n, ast.ClassDef))
    assert formulas.bias_add_module(cls)
    assert not formulas.bias_add_in_place(_forward(cls))


@pytest.mark.parametrize("body", [
    # the added value reads the scores' values
    "        scores += scores.mean(-1, keepdim=True)\n        return scores",
    # an in-place product, not a bias
    "        scores *= self.table\n        return scores",
    # the in-place sum is not what is returned
    "        scores += self.table\n        return scores * 2.0",
    # a path returns the scores with nothing added
    "        if self.frozen:\n            return scores\n        scores += self.table\n        return scores",
])
def test_bias_module_near_misses_are_not_bias_adders(body):
    cls = next(n for n in ast.parse(_bias(body)).body if isinstance(n, ast.ClassDef))
    assert not formulas.bias_add_module(cls)


@pytest.mark.parametrize("frozen", [False, True])
def test_in_place_bias_module_is_fixed_and_matches(frozen):
    import torch

    code = _bias(IN_PLACE)
    fixed = fix_text(code, "model.py", rules("ADP010")).text
    assert "scaled_dot_product_attention(" in fixed
    assert "self.bias(q.new_zeros(" in fixed and ", self.tokens)" in fixed  # zeros of its own, the argument
    a, b = float64_pair(code, fixed, "Attn")
    a.bias.frozen = b.bias.frozen = frozen
    torch.manual_seed(1)
    x = torch.randn(2, 6, 8, dtype=torch.float64, requires_grad=True)
    # float64, 4-wide dot products, 6-key softmax: equal to rounding
    torch.testing.assert_close(b(x), a(x), rtol=0, atol=1e-12)
    ga = torch.autograd.grad(a(x).sum(), x)[0]
    gb = torch.autograd.grad(b(x).sum(), x)[0]
    torch.testing.assert_close(gb, ga, rtol=0, atol=1e-12)


def test_a_product_module_on_the_scores_is_no_attention_bias():
    body = "        scores *= self.table\n        return scores"
    assert finding_at(_bias(body), "ADP010", "# site") is None
    assert not found(_bias(body), "ADP010")


def test_a_bias_module_handed_the_scores_twice_is_not_a_bias():
    code = _bias(IN_PLACE.replace("[:, :, :tokens, :tokens] * 0.5", "[:, :, :6, :6] * tokens.mean()")) \
        .replace("self.bias(attn, self.tokens)", "self.bias(attn, attn)")
    assert "self.bias(attn, attn)" in code
    assert finding_at(code, "ADP010", "# site") is None


def test_a_bias_module_reading_another_argument_as_a_tensor_is_not_a_bias():
    # ``tokens.mean()``: the other argument read as a tensor (here a value of the scores)
    code = _bias(IN_PLACE.replace("[:, :, :tokens, :tokens] * 0.5", "[:, :, :6, :6] * tokens.mean()")) \
        .replace("self.bias(attn, self.tokens)", "self.bias(attn, attn.detach())")
    assert finding_at(code, "ADP010", "# site") is None
    fixed = fix_text(code, "model.py", rules("ADP010")).text
    assert "scaled_dot_product_attention(" not in fixed


@pytest.mark.parametrize("use, adder", [
    ("        n = scores.shape[-1] - tokens\n        scores += self.table[:, :, n:, n:]\n        return scores", True),
    ("        if tokens > 3:\n            scores += self.table\n            return scores\n"
     "        return scores + self.table * 2.0", True),
    ("        return scores + self.table * tokens", False),  # a tensor times it: read as a tensor
    ("        return scores + tokens", False),  # the caller's tensor is the bias
])
def test_other_arguments_of_a_bias_module_are_read_as_sizes_only(use, adder):
    cls = next(n for n in ast.parse(_bias(use)).body if isinstance(n, ast.ClassDef))
    assert formulas.bias_add_module(cls) is adder
