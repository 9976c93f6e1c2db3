"""Forms found while checking the blind batch of cnn49 (detection, segmentation, GAN, audio and
3-D CNN files: every conv-BN pair found at first sight; the misses were a one-query attention
of an audio encoder and an optimizer class looked up by name).  The fixtures are ours.

- One-query (Luong dot) attention whose size-1 query axis is squeezed for the softmax and
  restored after it: ``w = bmm(values, h.unsqueeze(2)).squeeze(2)``, ``p = softmax(w, 1)``,
  ``bmm(values.transpose(1, 2), p.unsqueeze(2))``.  The squeeze drops an axis the product made
  size 1 and the unsqueeze puts it back where it was, so the probabilities are those of the
  keys-first scores the rule already reads (structure/singletons.py); the fix is that form's.
Near-misses: a squeeze of an axis no operand made size 1, a softmax over the batch axis, and
a mask added to the squeezed scores (it would broadcast against the restored layout) stay
unreported.  (The probabilities unsqueezed at the other of the two last axes,
``bmm(p.unsqueeze(1), values)``, were a near-miss here until misses51: that product contracts
the keys' axis too -- the probabilities transposed -- and is attention, fixed to the same
values in tests/test_misses51_forms.py.)

Found by probing 60 spellings of conv-BN construction after the batch (scratch fixtures):
- ``self.register_module("bn", nn.BatchNorm2d(c))``: torch's other name for ``add_module``;
- ``torch.nn.modules.batchnorm.BatchNorm2d(c)`` written out in full (code torch.fx prints): the
  class torch re-exports as ``nn.BatchNorm2d``, as an import from that module already read;
- ``norm_layer = kwargs.get("norm_layer", nn.BatchNorm2d)`` of the function's ``**kwargs``:
  the default, as for a parameter written with it.
Near-misses: a transposed convolution written in full before a BatchNorm, a GroupNorm bound by
register_module, a ``kwargs.get`` defaulting to a GroupNorm, and a ``.get`` of a dict that is
not the function's ``**kwargs`` stay unreported.
"""

from __future__ import annotations

import pytest

from corpus_forms import assert_bn_fold_matches, found, line_of, rules

from adopter.synth import fix_text

DOT = """\
import torch
from torch import nn
from torch.nn import functional as F


class DotAttention(nn.Module):
    def forward(self, values, hidden):
        scores = torch.bmm(values, hidden.unsqueeze(2)).squeeze(2)
        weights = F.softmax(scores, 1)
        return torch.bmm(values.transpose(1, 2), weights.unsqueeze(2)).squeeze(2)


class SplitDotAttention(nn.Module):
    def forward(self, values, query):
        weights = self._weights(values, query)
        return torch.bmm(values.transpose(1, 2), weights.unsqueeze(-1)).squeeze(-1)

    def _weights(self, values, query):
        w = torch.bmm(values, query.unsqueeze(-1)).squeeze(-1)
        return torch.softmax(w, dim=-1)


class QueryFirst(nn.Module):
    def forward(self, keys, values, query):
        scores = torch.bmm(query.unsqueeze(1), keys.transpose(1, 2)).squeeze(1)
        weights = scores.softmax(dim=-1)
        return torch.bmm(weights.unsqueeze(1), values).squeeze(1)
"""

NEAR = """\
import torch
from torch import nn
from torch.nn import functional as F


class NotSizeOne(nn.Module):
    def forward(self, values, keys):
        scores = torch.bmm(values, keys.transpose(1, 2)).squeeze(2)
        weights = F.softmax(scores, 1)
        return torch.bmm(values.transpose(1, 2), weights.unsqueeze(2)).squeeze(2)


class OverBatch(nn.Module):
    def forward(self, values, hidden):
        scores = torch.bmm(values, hidden.unsqueeze(2)).squeeze(2)
        weights = F.softmax(scores, 0)
        return torch.bmm(values.transpose(1, 2), weights.unsqueeze(2)).squeeze(2)


class MaskedSqueezed(nn.Module):
    def forward(self, values, hidden, mask):
        scores = torch.bmm(values, hidden.unsqueeze(2)).squeeze(2) + mask
        weights = F.softmax(scores, 1)
        return torch.bmm(values.transpose(1, 2), weights.unsqueeze(2)).squeeze(2)
"""


def _covered(code, needle):
    line = line_of(code, needle)
    return any(f.line <= line <= f.end_line for f in found(code, "ADP010"))


@pytest.mark.parametrize("needle", [
    "weights = F.softmax(scores, 1)",
    "return torch.softmax(w, dim=-1)",
    "weights = scores.softmax(dim=-1)",
])
def test_one_query_attention_with_its_query_axis_squeezed_is_attention(needle):
    assert _covered(DOT, needle)


def test_near_misses_are_not_attention():
    assert found(NEAR, "ADP010") == []


def test_the_fix_computes_the_original_attention():
    import torch

    fixed = fix_text(DOT, "model.py", rules("ADP010")).text
    assert fixed.count("scaled_dot_product_attention(") == 3  # the three sites
    original, patched = {}, {}
    exec(compile(DOT, "orig.py", "exec"), original)  # noqa: S102 (our own fixture)
    exec(compile(fixed, "fixed.py", "exec"), patched)  # noqa: S102
    torch.manual_seed(0)
    values = torch.randn(3, 7, 5, dtype=torch.float64, requires_grad=True)
    keys = torch.randn(3, 7, 5, dtype=torch.float64)
    query = torch.randn(3, 5, dtype=torch.float64, requires_grad=True)
    for cls, args in (("DotAttention", (values, query)), ("SplitDotAttention", (values, query)),
                      ("QueryFirst", (keys, values, query))):
        want = original[cls]()(*args)
        got = patched[cls]()(*args)
        assert got.shape == want.shape == (3, 5)
        # float64, softmax over 7 keys and a 5-wide contraction: agreement to rounding
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
        gw = torch.autograd.grad(want.sum(), (values, query))
        gg = torch.autograd.grad(got.sum(), (values, query))
        for a, b in zip(gg, gw):
            torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


LAYERS = """\
import torch
from torch import nn


class Registered(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.register_module("conv", nn.Conv2d(c, c, 3, padding=1, bias=False))
        self.register_module("bn", nn.BatchNorm2d(c))

    def forward(self, x):
        return torch.relu(self.bn(self.conv(x)))


class FullPath(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv = torch.nn.modules.conv.Conv2d(c, c, 3, padding=1)
        self.bn = torch.nn.modules.batchnorm.BatchNorm2d(c)

    def forward(self, x):
        return self.bn(self.conv(x))


class FromKwargs(nn.Module):
    def __init__(self, c, **kwargs):
        super().__init__()
        norm_layer = kwargs.get("norm_layer", nn.BatchNorm2d)
        self.conv = nn.Conv2d(c, c, 1, bias=False)
        self.bn = norm_layer(c)

    def forward(self, x):
        return self.bn(self.conv(x))
"""

LAYERS_NEAR = """\
import torch
from torch import nn


class FullPathTransposed(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.up = torch.nn.modules.conv.ConvTranspose2d(c, c, 2, stride=2)
        self.bn = torch.nn.modules.batchnorm.BatchNorm2d(c)

    def forward(self, x):
        return self.bn(self.up(x))


class RegisteredGroupNorm(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.register_module("conv", nn.Conv2d(c, c, 3, padding=1))
        self.register_module("norm", nn.GroupNorm(4, c))

    def forward(self, x):
        return self.norm(self.conv(x))


class KwargsGroupNorm(nn.Module):
    def __init__(self, c, **kwargs):
        super().__init__()
        norm_layer = kwargs.get("norm_layer", nn.GroupNorm)
        self.conv = nn.Conv2d(c, c, 1)
        self.norm = norm_layer(4, c)

    def forward(self, x):
        return self.norm(self.conv(x))


TABLE = {"bn": nn.BatchNorm2d}


class OtherDict(nn.Module):
    def __init__(self, c, options):
        super().__init__()
        norm_layer = options.get("norm_layer", nn.BatchNorm2d)
        self.conv = nn.Conv2d(c, c, 1)
        self.norm = norm_layer(c)

    def forward(self, x):
        return self.norm(self.conv(x))
"""


def _forward_return(code, cls):
    """The line of ``cls``'s ``return`` (its forward's, the class's only one)."""
    lines = code.splitlines()
    first = line_of(code, f"class {cls}(")
    return next(n for n in range(first, len(lines) + 1) if lines[n - 1].strip().startswith("return "))


@pytest.mark.parametrize("cls", ["Registered", "FullPath", "FromKwargs"])
def test_layers_bound_by_register_module_full_paths_and_kwargs_defaults(cls):
    line = _forward_return(LAYERS, cls)
    assert any(f.line <= line <= f.end_line for f in found(LAYERS, "ADP007"))


def test_layer_near_misses_are_not_pairs():
    assert found(LAYERS_NEAR, "ADP007") == []


def test_layer_forms_fold_exactly():
    fixed = fix_text(LAYERS, "model.py", rules("ADP007")).text
    assert fixed.count("conv_bn(") == 3
    for cls in ("Registered", "FullPath", "FromKwargs"):
        assert_bn_fold_matches(LAYERS, fixed, cls, (4,), (2, 4, 6, 6))
