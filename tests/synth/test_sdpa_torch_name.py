"""ADP010 where the module has no ``import torch`` of its own, in spellings of our own.

The fused path needs ``torch`` twice: for the guard that sends a training step whose additive
mask hides every key of some query row to the original code (SDPA's backward is wrong for such
a row), and for the float mask a large negative ``masked_fill`` becomes.  A module that only
writes ``from torch import nn`` used to get the rewrite *without* the guard (wrong input
gradients for a padded row); one that reaches ``torch`` through a star import of its package's
module was not rewritten at all.  Now the first gets ``import torch`` with the guard, and the
second uses the name its own steps already call torch's functions through.

The original and the patched module run side by side in float64 (forward and backward, in
training and in evaluation, dropout off and on), counting the calls of
scaled_dot_product_attention so that a fallback cannot pass for the fused path.
"""

from __future__ import annotations

import importlib
import sys
import textwrap

import pytest

torch = pytest.importorskip("torch")

from sdpa_modules import RULES, Counter, load, sdpa_fixed  # noqa: E402

from adopter.structure.names import package_of  # noqa: E402
from adopter.synth import fix_text  # noqa: E402

F64 = torch.float64
# float64 products and softmax over 5 keys, two ways of summing: float64's resolution, a few ulps
F64_TOLERANCE = {"rtol": 1e-12, "atol": 1e-12}

NO_TORCH_NAME = textwrap.dedent('''
    from torch import nn


    class PaddedAttention(nn.Module):
        def __init__(self, width=8, heads=2, p=0.0):
            super().__init__()
            self.heads = heads
            self.scale = (width // heads) ** -0.5
            self.qkv = nn.Linear(width, width * 3)
            self.drop = nn.Dropout(p)

        def forward(self, x, mask):
            b, n, _ = x.shape
            q, k, v = self.qkv(x).view(b, n, 3, self.heads, -1).permute(2, 0, 3, 1, 4)
            scores = q @ k.transpose(-2, -1) * self.scale
            scores = scores + mask
            attn = scores.softmax(dim=-1)
            attn = self.drop(attn)
            out = attn @ v
            return out.transpose(1, 2).reshape(b, n, -1)
''')


def _pair(source: str, p: float = 0.0):
    patched = sdpa_fixed(source)
    old, new = load(source, "old"), load(patched, "new")
    counter = Counter(new)
    torch.manual_seed(0)
    a = old["PaddedAttention"](p=p).to(F64)
    b = new["PaddedAttention"](p=p).to(F64)
    b.load_state_dict(a.state_dict())
    return patched, a, b, counter


def _masks():
    """(a key-padding mask, the same with every key of sample 1 hidden), additive, float64."""
    keep = torch.ones(2, 1, 1, 5, dtype=torch.bool)
    keep[0, ..., 3:] = False
    padded = torch.zeros(2, 1, 1, 5, dtype=F64).masked_fill(~keep, torch.finfo(F64).min)
    blind = padded.clone()
    blind[1] = torch.finfo(F64).min
    return padded, blind


def _run(module, x, mask, seed=1):
    x = x.clone().requires_grad_(True)
    torch.manual_seed(seed)
    out = module(x, mask)
    (out * torch.linspace(-1, 1, out.numel(), dtype=F64).view_as(out)).sum().backward()
    return out.detach(), x.grad, [p.grad.clone() for p in module.parameters()]


def _compare(a, b, x, mask, **tolerance):
    for module in (a, b):
        module.zero_grad()
    out_a, grad_a, params_a = _run(a, x, mask)
    out_b, grad_b, params_b = _run(b, x, mask)
    torch.testing.assert_close(out_b, out_a, **tolerance)
    torch.testing.assert_close(grad_b, grad_a, **tolerance)
    for pa, pb in zip(params_a, params_b):
        torch.testing.assert_close(pb, pa, **tolerance)


def test_a_module_without_a_torch_name_gets_the_import_and_the_guard():
    patched, a, b, counter = _pair(NO_TORCH_NAME)
    assert patched.lstrip().startswith("import torch\nfrom torch import nn\n")
    assert "torch.is_grad_enabled()" in patched
    x = torch.randn(2, 5, 8, dtype=F64)
    padded, blind = _masks()
    for train in (False, True):
        a.train(train), b.train(train)
        _compare(a, b, x, padded, **F64_TOLERANCE)  # the fused path, both modes
    assert counter.calls == 2
    # training with a sample whose every key is hidden: the guard sends it to the original
    _compare(a, b, x, blind, rtol=0, atol=0)
    assert counter.calls == 2
    # ... which matters: the fused call alone gets that sample's input gradients wrong
    a.zero_grad()
    _, grad_a, _ = _run(a, x, blind)
    fused = load(patched.replace("torch.is_grad_enabled()", "False"), "unguarded")
    c = fused["PaddedAttention"]().to(F64)
    c.load_state_dict(a.state_dict())
    _, grad_c, _ = _run(c, x, blind)
    assert not torch.allclose(grad_c[1], grad_a[1], rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(grad_c[0], grad_a[0], **F64_TOLERANCE)  # the other sample is exact
    # evaluation needs no guard (no gradients): the fused path, the same outputs
    a.eval(), b.eval()
    with torch.no_grad():
        torch.testing.assert_close(b(x, blind), a(x, blind), **F64_TOLERANCE)
    assert counter.calls == 3


def test_with_dropout_the_fallback_is_the_original_and_the_fused_path_drops():
    patched, a, b, counter = _pair(NO_TORCH_NAME, p=0.3)
    assert "dropout_p=self.drop.p if self.training else 0.0" in patched
    x = torch.randn(2, 5, 8, dtype=F64)
    padded, blind = _masks()
    a.train(), b.train()
    _compare(a, b, x, blind, rtol=0, atol=0)  # the original code, the same random draws
    assert counter.calls == 0
    torch.manual_seed(2)
    first = b(x, padded)
    assert not torch.allclose(b(x, padded), first)  # training: dropout applies on the fused path
    assert counter.calls == 2
    a.eval(), b.eval()
    _compare(a, b, x, padded, **F64_TOLERANCE)
    assert counter.calls == 3


def test_a_name_bound_to_something_else_is_not_taken_for_torch():
    source = NO_TORCH_NAME.replace("from torch import nn\n", "from torch import nn\n\ntorch = None\n")
    result = fix_text(source, "attention.py", RULES)
    assert not result.applied
    assert "binds that name to something else" in result.skipped[0][1]


PACKAGE_IMPORTS = textwrap.dedent('''
    import torch
    import torch.nn.functional as F
    from torch import nn
    from torch.nn import Module
''')

# torch, F and Module only through the star import; a large negative fill becomes a float mask
STAR_MODEL = textwrap.dedent('''
    from .imports import *


    class PaddedAttention(Module):
        def __init__(self, width=8, heads=2, p=0.0):
            super().__init__()
            self.heads = heads
            self.d = width // heads
            self.qkv = nn.Linear(width, width * 3)
            self.p = p

        def forward(self, x, mask):
            b, n, _ = x.shape
            q, k, v = self.qkv(x).view(b, n, 3, self.heads, -1).permute(2, 0, 3, 1, 4)
            scores = torch.matmul(q, k.transpose(-2, -1)) / self.d ** 0.5
            scores = scores + mask
            attn = F.softmax(scores, dim=-1)
            attn = F.dropout(attn, p=self.p, training=self.training)
            context = torch.matmul(attn, v)
            return context.transpose(1, 2).reshape(b, n, -1)
''')


@pytest.fixture
def star_package(tmp_path, monkeypatch):
    """Two copies of a package whose model module reaches torch through ``from .imports import
    *``: the original and the patched one (importable side by side)."""
    monkeypatch.syspath_prepend(str(tmp_path))
    paths = {}
    for name in ("starpkg_old", "starpkg_new"):
        folder = tmp_path / name
        folder.mkdir()
        (folder / "__init__.py").write_text("")
        (folder / "imports.py").write_text(PACKAGE_IMPORTS)
        (folder / "model.py").write_text(STAR_MODEL)
        paths[name] = folder / "model.py"
    path = paths["starpkg_new"]
    result = fix_text(STAR_MODEL, str(path), RULES, package_of(str(path)))
    assert result.error is None and [f.rule for f in result.applied] == ["ADP010"], result.skipped
    path.write_text(result.text)
    yield result.text, importlib.import_module("starpkg_old.model"), importlib.import_module("starpkg_new.model")
    for name in list(sys.modules):
        if name.startswith(("starpkg_old", "starpkg_new")):
            del sys.modules[name]


def test_torch_reached_through_a_star_import_is_the_name_the_steps_call(star_package):
    patched, old, new = star_package
    assert "import torch" not in patched  # the module's torch is the star import's
    assert "torch.is_grad_enabled()" in patched and "scaled_dot_product_attention(" in patched
    counter = Counter(vars(new))
    torch.manual_seed(0)
    a = old.PaddedAttention().to(F64)
    b = new.PaddedAttention().to(F64)
    b.load_state_dict(a.state_dict())
    x = torch.randn(2, 5, 8, dtype=F64)
    padded, blind = _masks()
    for train in (False, True):
        a.train(train), b.train(train)
        _compare(a, b, x, padded, **F64_TOLERANCE)
    assert counter.calls == 2
    _compare(a, b, x, blind, rtol=0, atol=0)  # training, a sample with every key hidden
    assert counter.calls == 2
    # dropout on: the fused path drops in training only
    a.p = b.p = 0.3
    torch.manual_seed(3)
    assert not torch.allclose(b(x, padded), b(x, padded))
    b.eval(), a.eval()
    torch.testing.assert_close(b(x, padded), a(x, padded), **F64_TOLERANCE)
    assert counter.calls == 5
