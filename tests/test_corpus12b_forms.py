"""Forms found missing while checking the blind batch corpus12b (research transformers written
as plain PyTorch, torchvision-style CNNs): each test states the semantic fact the engine now
reads, and a near-miss it must still leave alone.  The fixtures are ours: a BART-style model
that calls its layers' ``forward`` by name and splits its attention across two modules of a
package, a channel-first attention block whose sizes are unpacked from a tuple, a ResNet-style
``_make_layer`` method whose norm class its callers pass, and a network of layers registered
with ``add_module`` under computed names."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from corpus_forms import assert_bn_fold_matches

from adopter.engine import analyze
from adopter.ruleset import load_rules, select_rules
from adopter.structure import package_of
from adopter.synth import fix_text

ALL = load_rules()


def _rules(*ids):
    return select_rules(ALL, list(ids))


def _line(code: str, needle: str) -> int:
    return next(n for n, text in enumerate(code.splitlines(), 1) if needle in text)


def _found(code: str, rule: str, path: str = "model.py", package=None) -> list:
    return [f for f in analyze(code, path, _rules(rule), package).findings if f.rule == rule]


def _lines(code: str, rule: str, **kw) -> set:
    return {f.line for f in _found(code, rule, **kw)}


def _covers(code: str, rule: str, needle: str, **kw) -> bool:
    line = _line(code, needle)
    return any(f.line <= line <= f.end_line for f in _found(code, rule, **kw))


# ----------------------------------------------------------------- a layer's forward by name

FORWARD_BY_NAME = """\
import torch
from torch import nn


class GLU(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.act = nn.GELU()
        self.fc0 = nn.Linear(dim, hidden, bias=False)
        self.fc1 = nn.Linear(dim, hidden, bias=False)
        self.fc2 = nn.Linear(hidden, dim, bias=False)

    def forward(self, z):
        w = self.fc0.forward(z)
        w = self.act.forward(w)  # act-call
        return self.fc2.forward(w * self.fc1.forward(z))


class SelfAttention(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.k_proj = nn.Linear(dim, dim, bias=False)
        self.v_proj = nn.Linear(dim, dim, bias=False)
        self.q_proj = nn.Linear(dim, dim, bias=False)

    def forward(self, x):
        k = self.k_proj.forward(x)  # first-projection
        v = self.v_proj.forward(x)
        q = self.q_proj.forward(x)
        return q, k, v


class CrossAttention(SelfAttention):
    def forward(self, x, context):
        k = self.k_proj.forward(context)  # cross-projection
        v = self.v_proj.forward(context)
        q = self.q_proj.forward(x)
        return q, k, v


class Hooked(nn.Module):
    \"\"\"forward of a method of the module itself, and of an object that is no layer: no call of
    a Linear's output into GELU here.\"\"\"

    def __init__(self, dim, fn):
        super().__init__()
        self.fc = nn.Linear(dim, dim)
        self.fn = fn

    def helper(self, x):
        return x

    def forward(self, x):
        h = self.fc(x)
        h = self.helper(h) + 1
        return torch.nn.functional.gelu(self.fn.forward(x))  # not-a-layer
"""


def test_a_layers_forward_called_by_name_is_the_layers_call():
    """``self.fc0.forward(z)`` computes what ``self.fc0(z)`` does (less the hooks): a Linear ->
    GELU pair and three projections of one input are found as they are with plain calls."""
    code = FORWARD_BY_NAME
    assert _covers(code, "ADP006", "# act-call")
    assert _covers(code, "ADP009", "# first-projection")
    # near-misses: key and value of another tensor; forward of what is no layer
    assert not _covers(code, "ADP009", "# cross-projection")
    assert not _covers(code, "ADP006", "# not-a-layer")


def test_the_fused_projections_are_given_the_layers_not_their_forward():
    code = FORWARD_BY_NAME
    result = fix_text(code, "model.py", _rules("ADP009"))
    assert result.error is None
    assert "fused_qkv(x, self.k_proj, self.v_proj, self.q_proj)" in result.text
    assert ".forward," not in result.text
    compile(result.text, "model.py", "exec")


# ----------------------------------------------------------------- sizes unpacked from a tuple

CHANNEL_ATTENTION = """\
import torch
from torch import nn


class AttnBlock(nn.Module):
    def __init__(self, n):
        super().__init__()
        self.n = n
        self.q = nn.Conv2d(n, n, 1)
        self.k = nn.Conv2d(n, n, 1)
        self.v = nn.Conv2d(n, n, 1)

    def forward(self, x):
        n, m = self.n, x.shape[0]
        q = self.q(x).reshape(m, n, -1).permute(0, 2, 1)
        k = self.k(x).reshape(m, n, -1)
        v = self.v(x).reshape(m, n, -1)
        w = torch.bmm(q, k)
        w /= n ** 0.5
        w = torch.softmax(w, dim=2)  # unpacked
        w = w.permute(0, 2, 1)
        h = torch.bmm(v, w)
        return x + h.reshape(x.shape)


class Swapped(nn.Module):
    \"\"\"``a, b = b, a`` reads the names it assigns: each keeps the other's earlier value, so the
    scores are k·q over the queries' axis: no attention SDPA computes.\"\"\"

    def forward(self, q, k, v):
        q, k = k, q
        w = torch.softmax(q @ k.transpose(-1, -2), dim=-2)  # swapped
        return w @ v
"""


def test_names_unpacked_from_a_tuple_of_values_hold_each_value():
    """``n, m = self.n, x.shape[0]`` binds each name as two assignments would: the scale
    ``n ** 0.5`` reads n, and the channel-first attention is found and fixed."""
    code = CHANNEL_ATTENTION
    assert _covers(code, "ADP010", "# unpacked")
    assert not _covers(code, "ADP010", "# swapped")
    result = fix_text(code, "model.py", _rules("ADP010"))
    assert result.error is None and "scaled_dot_product_attention" in result.text


def test_the_unpacked_attention_computes_what_the_original_does():
    torch = pytest.importorskip("torch")
    code = CHANNEL_ATTENTION
    fixed = fix_text(code, "model.py", _rules("ADP010")).text
    assert fixed != code
    torch.manual_seed(0)
    original, patched = {}, {}
    exec(compile(code, "orig.py", "exec"), original)
    exec(compile(fixed, "fixed.py", "exec"), patched)
    a = original["AttnBlock"](8).double().eval()
    b = patched["AttnBlock"](8).double().eval()
    b.load_state_dict(a.state_dict())
    x = torch.randn(2, 8, 3, 5, dtype=torch.float64)
    with torch.no_grad():
        assert torch.allclose(a(x), b(x), atol=1e-12)


# ----------------------------------------------------------------- a method's norm parameter

MAKE_LAYER = """\
import torch.nn as nn


class Net(nn.Module):
    def __init__(self, layers, avg_down=False, norm_layer=nn.BatchNorm2d):
        super().__init__()
        self.inplanes = 16
        self.avg_down = avg_down
        self.layer1 = self._make_layer(32, layers[0], stride=2, norm_layer=norm_layer)
        self.layer2 = self._make_layer(64, layers[1], stride=2, norm_layer=norm_layer)

    def _make_layer(self, planes, blocks, stride=1, norm_layer=None):
        down_layers = []
        if self.avg_down:
            down_layers.append(nn.AvgPool2d(kernel_size=stride, stride=stride))
            down_layers.append(nn.Conv2d(self.inplanes, planes, 1, bias=False))
        else:
            down_layers.append(nn.Conv2d(self.inplanes, planes, 1, stride=stride, bias=False))
        down_layers.append(norm_layer(planes))  # method-norm
        self.inplanes = planes
        return nn.Sequential(*down_layers)

    def forward(self, x):
        return self.layer2(self.layer1(x))


class Other(nn.Module):
    \"\"\"Every call of the method passes a GroupNorm factory: no BatchNorm to fold.\"\"\"

    def __init__(self):
        super().__init__()
        self.body = self._block(16, norm_layer=lambda c: nn.GroupNorm(4, c))

    def _block(self, planes, norm_layer=None):
        return nn.Sequential(nn.Conv2d(planes, planes, 3, padding=1), norm_layer(planes))  # group-norm

    def forward(self, x):
        return self.body(x)
"""


def test_a_methods_norm_parameter_holds_what_its_class_passes():
    """``_make_layer(..., norm_layer=None)`` called as ``self._make_layer(...,
    norm_layer=norm_layer)`` with the constructor's ``nn.BatchNorm2d``: the conv (appended on
    either branch of an if) and the norm are one pair of the list that becomes a Sequential,
    reported once (one place, one edit: the container's class)."""
    code = MAKE_LAYER
    found = _found(code, "ADP007")
    assert [f.end_line for f in found] == [_line(code, "# method-norm")]
    assert not _covers(code, "ADP007", "# group-norm")
    result = fix_text(code, "model.py", _rules("ADP007"))
    assert result.error is None
    assert result.text.count("FoldingSequential(") == 1


def test_two_findings_of_one_container_pair_would_be_one_edit():
    """The two conv alternatives (the if's two branches) share the norm: before the change the
    finding was reported twice, one of them a place no label holds."""
    code = MAKE_LAYER.replace("norm_layer=None):", "norm_layer=nn.BatchNorm2d):", 1)
    assert len(_found(code, "ADP007")) == 1


# ----------------------------------------------------------------- add_module under computed names

COMPUTED_NAMES = """\
import torch.nn as nn
import torch.nn.functional as F


class Stack(nn.Module):
    def __init__(self, count=2):
        super().__init__()
        self.count = count
        for i in range(count):
            self.add_module("conv_last" + str(i), nn.Conv2d(8, 8, 1))
            self.add_module("bn_end" + str(i), nn.BatchNorm2d(8))
            self.add_module(f"proj{i}", nn.Conv2d(8, 8, 1))
            self.add_module(f"gn{i}", nn.GroupNorm(2, 8))

    def forward(self, x):
        for i in range(self.count):
            x = F.relu(self._modules["bn_end" + str(i)](self._modules["conv_last" + str(i)](x)))  # family
            x = self._modules[f"gn{i}"](self._modules[f"proj{i}"](x))  # group
            x = self._modules["bn" + str(i)](x)  # unnamed
        return x
"""


def test_layers_added_under_computed_names_are_read_by_those_names():
    """``self.add_module("bn_end" + str(i), nn.BatchNorm2d(8))`` in a loop names the family
    ``bn_end{}``; ``self._modules["bn_end" + str(j)]`` reads it.  A conv of one family into a
    BatchNorm of another is a pair; into a GroupNorm, or into a name nothing added, is not."""
    code = COMPUTED_NAMES
    assert _covers(code, "ADP007", "# family")
    assert not _covers(code, "ADP007", "# group")
    assert not _covers(code, "ADP007", "# unnamed")
    result = fix_text(code, "model.py", _rules("ADP007"))
    assert result.error is None
    assert 'conv_bn(' in result.text and 'self._modules["conv_last" + str(i)]' in result.text


def test_the_fixed_computed_names_compute_what_the_original_does():
    pytest.importorskip("torch")
    pytest.importorskip("adopter_kernels")
    code = COMPUTED_NAMES.replace('            x = self._modules["bn" + str(i)](x)  # unnamed\n', "")
    fixed = fix_text(code, "model.py", _rules("ADP007")).text
    assert "conv_bn(" in fixed
    assert_bn_fold_matches(code, fixed, "Stack", (), (2, 8, 5, 5))


# ----------------------------------------------------------------- a base class in another module

BASE = """\
from torch import nn


class AttentionBase(nn.Module):
    def __init__(self, heads, dim):
        super().__init__()
        self.heads = heads
        self.k_proj = nn.Linear(dim, dim, bias=False)
        self.v_proj = nn.Linear(dim, dim, bias=False)
        self.q_proj = nn.Linear(dim, dim, bias=False)
        self.out_proj = nn.Linear(dim, dim, bias=False)

    def forward(self, k, v, q):
        return self.out_proj(q)
"""

SUBCLASSES = """\
from torch import nn

from .encoder import AttentionBase


class DecoderSelfAttention(AttentionBase):
    def forward(self, state):
        keys = self.k_proj(state)  # self-projection
        values = self.v_proj(state)
        queries = self.q_proj(state)
        return super().forward(keys, values, queries)


class DecoderCrossAttention(AttentionBase):
    def forward(self, state, memory):
        keys = self.k_proj(memory)  # cross-projection
        values = self.v_proj(memory)
        queries = self.q_proj(state)
        return super().forward(keys, values, queries)


class Head(nn.Module):
    def __init__(self, dim, vocab):
        super().__init__()
        self.lm_head = nn.Linear(dim, vocab, bias=False)

    def forward(self, x):
        return self.lm_head(x)
"""


def _write(root: Path, files: dict) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))


def test_layers_a_base_class_of_another_module_builds(tmp_path):
    """A subclass of a class defined in another module of the package calls the layers that
    class's ``__init__`` built: typed as there, reported, not fixed (the fix would edit the other
    module), and the base's forward is that module's code, not reported here.  (Here the file
    names ``nn.Linear`` for its head, as min-dalle's decoder does; a file naming none is read
    for ADP009 through its base's module too: test_research101_forms.)"""
    _write(tmp_path, {"bart/__init__.py": "", "bart/encoder.py": BASE, "bart/decoder.py": SUBCLASSES})
    path = tmp_path / "bart/decoder.py"
    text = path.read_text()
    package = package_of(str(path))
    assert package == "bart.decoder" or package.endswith("decoder") or package == "bart"
    found = [f for f in analyze(text, str(path), _rules("ADP009"), package).findings]
    assert [f.line for f in found] == [_line(text, "# self-projection")]
    result = fix_text(text, str(path), _rules("ADP009"), package)
    assert result.error is None and result.text == text and not result.applied
    assert any("another module of the package" in why for _, why in result.skipped)
    # outside any package the base is unknown: nothing is typed, nothing reported
    alone = tmp_path / "decoder.py"
    alone.write_text(text)
    assert not analyze(text, str(alone), _rules("ADP009"), None).findings
