"""Forms found missing while checking the blind batch research105 (time-series forecasting and
tabular models: Informer-style encoders, a multivariate time-series transformer, TSMixer, TFT,
FT-Transformer-style classifiers).  The fixtures are ours.

- A class imported from the package ``torch.nn.modules`` itself (``from torch.nn.modules import
  Linear, BatchNorm1d``), which re-exports every class its submodules define, is torch.nn's
  class, as one imported from the defining submodule already was (``torch.nn.modules.linear``).
  Near-misses: a ReLU imported the same way (no GELU), a lower-case helper module of the package
  (``utils``) keeping its path, a project's own ``nn.modules`` package (not torch's).
"""

from __future__ import annotations

import ast

import pytest
from corpus_forms import finding_at, float64_pair, found, rules

from adopter.structure.names import collect_names
from adopter.synth import fix_text


def test_the_modules_package_re_exports_public_classes_only():
    names = collect_names(ast.parse(
        "from torch.nn.modules import Linear, BatchNorm1d, Module, utils\n"
        "from torch.nn.modules import GELU as Act\n"))
    assert names.imports["Linear"] == "torch.nn.Linear"
    assert names.imports["BatchNorm1d"] == "torch.nn.BatchNorm1d"
    assert names.imports["Module"] == "torch.nn.Module"
    assert names.imports["Act"] == "torch.nn.GELU"
    assert names.imports["utils"] == "torch.nn.modules.utils"  # a submodule keeps its path


def test_the_modules_package_written_out_resolves_too():
    code = "import torch\nx = torch.nn.modules.Linear\ny = torch.nn.modules.utils\n"
    tree = ast.parse(code)
    names = collect_names(tree)
    linear, helper = (stmt.value for stmt in tree.body[1:])
    assert names.resolve(linear) == "torch.nn.Linear"
    assert names.resolve(helper) == "torch.nn.modules.utils"


FFN = """\
import torch.nn as nn
import torch.nn.functional as F
from PKG import Linear, Dropout, BatchNorm1d


def _activation(name):
    if name == "relu":
        return F.relu
    elif name == "gelu":
        return F.gelu
    raise ValueError(name)


class Block(nn.Module):
    def __init__(self, dim=8, hidden=16, activation="relu"):
        super().__init__()
        self.linear1 = Linear(dim, hidden)
        self.linear2 = Linear(hidden, dim)
        self.dropout = Dropout(0.0)
        self.activation = _activation(activation)

    def forward(self, x):
        return self.linear2(self.dropout(self.activation(self.linear1(x))))  # site


class Encoder(nn.Module):
    def __init__(self, dim=8, hidden=16, activation="gelu"):
        super().__init__()
        self.block = Block(dim, hidden, activation=activation)

    def forward(self, x):
        return self.block(x)


class Tabular(nn.Module):
    def __init__(self, dim=8, hidden=16):
        super().__init__()
        self.fc = Linear(dim, hidden)
        self.bn = BatchNorm1d(hidden)

    def forward(self, x):
        return self.bn(self.fc(x))  # bn site
"""


def _ffn(package: str) -> str:
    return FFN.replace("PKG", package)


def test_linear_and_batchnorm_imported_from_the_modules_package_are_found():
    code = _ffn("torch.nn.modules")
    assert finding_at(code, "ADP006", "# site") is not None
    assert finding_at(code, "ADP008", "# bn site") is not None


def test_a_relu_only_factory_stays_silent():
    code = _ffn("torch.nn.modules").replace('activation="gelu"', 'activation="relu"').replace(
        '    elif name == "gelu":\n        return F.gelu\n', "")
    assert not found(code, "ADP006")


def test_a_projects_own_modules_package_is_not_torch():
    code = _ffn("mylib.nn.modules")
    assert not found(code, "ADP006")
    assert not found(code, "ADP008")


@pytest.mark.parametrize("activation", ["gelu", "relu"])
def test_the_fixed_block_computes_what_the_original_does(activation):
    import torch

    code = _ffn("torch.nn.modules")
    fixed = fix_text(code, "model.py", rules("ADP006")).text
    assert fixed != code
    a, b = float64_pair(code, fixed, "Block", activation=activation)
    a.eval()
    b.eval()
    torch.manual_seed(1)
    x = torch.randn(4, 8, dtype=torch.float64, requires_grad=True)
    # float64, 8- and 16-wide dot products: equal to rounding
    torch.testing.assert_close(b(x), a(x), rtol=0, atol=1e-12)
    ga = torch.autograd.grad(a(x).sum(), x)[0]
    gb = torch.autograd.grad(b(x).sum(), x)[0]
    torch.testing.assert_close(gb, ga, rtol=0, atol=1e-12)


# ----------------------------------- probabilities a caller drops under ``if not flag: w = None``

HF_STYLE = """\
import math

import torch
import torch.nn as nn
import torch.nn.functional as F


def attention(q, k, v, mask=None, dropout_p=0.0, training=True):
    scores = torch.matmul(q, k.transpose(-2, -1)) / math.sqrt(q.size(-1))
    if mask is not None:
        scores = scores + mask
    weights = F.softmax(scores, dim=-1)  # site
    if dropout_p > 0.0 and training:
        weights = F.dropout(weights, p=dropout_p)
    return torch.matmul(weights, v), weights


class Attn(nn.Module):
    def __init__(self, dim=8, heads=2):
        super().__init__()
        self.heads = heads
        self.q = nn.Linear(dim, dim)
        self.k = nn.Linear(dim, dim)
        self.v = nn.Linear(dim, dim)
        self.o = nn.Linear(dim, dim)

    def forward(self, x, mask=None, output_attentions=False):
        b, n, c = x.shape
        q, k, v = (f(x).view(b, n, self.heads, -1).transpose(1, 2) for f in (self.q, self.k, self.v))
        out, probs = attention(q, k, v, mask, 0.0, self.training)
        out = self.o(out.transpose(1, 2).reshape(b, n, c))
CLEAR
        return out, probs
"""

DROPPED = """\
        if not output_attentions:
            probs = None"""


def _hf(clear: str) -> str:
    return HF_STYLE.replace("CLEAR", clear)


@pytest.mark.parametrize("output_attentions", [False, True])
def test_probabilities_dropped_under_a_flag_get_the_flag_and_match(output_attentions):
    import torch

    code = _hf(DROPPED)
    fixed = fix_text(code, "model.py", rules("ADP010")).text
    assert "scaled_dot_product_attention(" in fixed
    assert "need_weights=output_attentions)" in fixed
    a, b = float64_pair(code, fixed, "Attn")
    torch.manual_seed(1)
    x = torch.randn(2, 5, 8, dtype=torch.float64, requires_grad=True)
    mask = torch.randn(1, 1, 5, 5, dtype=torch.float64)
    oa, wa = a(x, mask, output_attentions=output_attentions)
    ob, wb = b(x, mask, output_attentions=output_attentions)
    # float64, 4-wide dot products, 5-key softmax: equal to rounding
    torch.testing.assert_close(ob, oa, rtol=0, atol=1e-12)
    if output_attentions:
        torch.testing.assert_close(wb, wa, rtol=0, atol=1e-12)
    else:
        assert wa is None and wb is None
    ga = torch.autograd.grad(oa.sum(), x)[0]
    gb = torch.autograd.grad(ob.sum(), x)[0]
    torch.testing.assert_close(gb, ga, rtol=0, atol=1e-12)


def test_a_flag_test_written_without_not_is_negated():
    code = _hf(DROPPED.replace("not output_attentions", "output_attentions is False"))
    fixed = fix_text(code, "model.py", rules("ADP010")).text
    assert "need_weights=not (output_attentions is False)" in fixed


@pytest.mark.parametrize("clear", [
    # read before they are dropped: the caller uses them on every call
    "        self.seen = probs.mean()\n" + DROPPED,
    # replaced by something computed from them, not dropped
    DROPPED.replace("probs = None", "probs = probs.detach()"),
    # a test the caller's own values decide (not one parameter's)
    DROPPED.replace("not output_attentions", "out.sum() > 0"),
    # an else that keeps them under another name
    DROPPED + "\n        else:\n            self.kept = 1",
])
def test_probabilities_not_simply_dropped_under_a_flag_keep_the_original_path(clear):
    fixed = fix_text(_hf(clear), "model.py", rules("ADP010")).text
    assert "need_weights=" not in fixed


# ------------------------------------- verify: einsum ranks through same-rank rebindings and scaling

RANKS = '''
import torch


def swapped(q, k, v):
    scale = q.shape[-1] ** -0.5
    q = q.transpose(0, 1).contiguous()
    k = k.transpose(0, 1).contiguous()
    s = torch.einsum("bthd,bshd->bhts", q, k * scale)
    return torch.einsum("bhts,bshd->bthd", s.softmax(-1), v)


def flattened(q, k):
    q = q.flatten(2).contiguous()
    return torch.einsum("b i d, b j d -> b i j", q, k)


def multiplied_by_a_parameter(q, k, m):
    return torch.einsum("b i h d, b j h d -> b h i j", q, k * m)
'''


def test_einsum_ranks_follow_same_rank_rebindings_and_scaled_operands(tmp_path):
    """FalconTST-style ``q = q.transpose(0, 1).contiguous()`` then ``einsum(..., q, k * scale)``:
    q, k and v are 4-D (before: only v, so verify fed 3-D q and k and found no input).
    Near-misses: a rank-changing ``flatten`` first (q not stated), ``k * m`` with ``m`` another
    parameter (a tensor maybe of another rank: k not stated)."""
    import importlib.util

    path = tmp_path / "ranks105.py"
    path.write_text(RANKS)
    spec = importlib.util.spec_from_file_location("ranks105", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    from adopter.verify.inputs import einsum_ranks, input_rank

    assert einsum_ranks(module.swapped) == {"q": 4, "k": 4, "v": 4}
    assert input_rank(module.swapped) == (4, True)
    assert einsum_ranks(module.flattened) == {"k": 3}
    assert einsum_ranks(module.multiplied_by_a_parameter) == {"q": 4}
