"""An attention whose probabilities a caller in another file hands back in turn (a multi-head
module returning what its attention returned), declined only by callers in a third file
(probs60, session 44; the package is ours, written in a temporary folder):

``layers/attend.py`` holds the attention; ``layers/mha.py`` wraps it and hands its
probabilities back on every call; ``model.py`` discards the wrapper's (``y, _ = self.mha(x)``),
reads them (``Probe``), or hands them back once more to ``top.py``, a fourth file, which
discards them.  The run follows the wrapper's callers one file further (``model.py`` gets
``need_weights=False``, the wrapper its own flag), no further (``top.py`` and the relay of
``model.py`` stay as they were), and the patched package computes what the original did, in
float64, with the fused call counted.
"""

from __future__ import annotations

import importlib
import os
import sys
import textwrap
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from adopter.cli import main  # noqa: E402

ATTEND = '''
import torch
from torch import nn


class Attention(nn.Module):
    def __init__(self, scale=0.5):
        super().__init__()
        self.scale = scale

    def forward(self, q, k, v):
        attn = (q @ k.transpose(-2, -1)) * self.scale
        attn = attn.softmax(dim=-1)
        return attn @ v, attn
'''

MHA = '''
from torch import nn

from .attend import Attention


class MHA(nn.Module):
    def __init__(self, dim=16, heads=2):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.attn = Attention((dim // heads) ** -0.5)

    def forward(self, x):
        B, N, C = x.shape
        q, k, v = self.qkv(x).reshape(B, N, 3, self.heads, C // self.heads).permute(2, 0, 3, 1, 4)
        out, probs = self.attn(q, k, v)
        return self.proj(out.transpose(1, 2).reshape(B, N, C)), probs
'''

MODEL = '''
from torch import nn

from .layers.mha import MHA


class Layer(nn.Module):
    def __init__(self, dim=16):
        super().__init__()
        self.mha = MHA(dim)
        self.ff = nn.Linear(dim, dim)

    def forward(self, x):
        y, _ = self.mha(x)
        return self.ff(x + y)


class Probe(nn.Module):
    def __init__(self, dim=16):
        super().__init__()
        self.mha = MHA(dim)

    def forward(self, x):
        y, w = self.mha(x)
        return y * w.sum(-1).mean()


class Relay(nn.Module):
    def __init__(self, dim=16):
        super().__init__()
        self.mha = MHA(dim)

    def forward(self, x):
        y, w = self.mha(x)
        return y, w
'''

TOP = '''
from torch import nn

from .model import Relay


class Top(nn.Module):
    def __init__(self, dim=16):
        super().__init__()
        self.relay = Relay(dim)

    def forward(self, x):
        y, _ = self.relay(x)
        return y
'''


def write_package(root: Path, pkg: str) -> Path:
    base = root / pkg
    (base / "layers").mkdir(parents=True)
    files = {"__init__.py": "", "layers/__init__.py": "", "layers/attend.py": ATTEND, "layers/mha.py": MHA,
             "model.py": MODEL, "top.py": TOP}
    for name, text in files.items():
        (base / name).write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return base


def snapshot(base: Path) -> dict[str, str]:
    return {str(p.relative_to(base)): p.read_text(encoding="utf-8") for p in sorted(base.rglob("*.py"))}


@pytest.fixture
def packages(tmp_path, monkeypatch):
    tag = os.path.basename(str(tmp_path)).replace("-", "_")
    original = write_package(tmp_path / "a", f"hop_orig_{tag}")
    fixed = write_package(tmp_path / "b", f"hop_fixed_{tag}")
    before = snapshot(fixed)
    code = main(["fix", "--select", "ADP010", "--no-config", "--no-deps", str(fixed)])
    monkeypatch.syspath_prepend(str(tmp_path / "a"))
    monkeypatch.syspath_prepend(str(tmp_path / "b"))
    yield original, fixed, before, code
    for name in [m for m in sys.modules if m.startswith((original.name, fixed.name))]:
        del sys.modules[name]


def test_the_wrappers_callers_one_file_further_decline_them(packages):
    _, fixed, before, code = packages
    after = snapshot(fixed)
    assert code == 1
    attend, mha, model = after["layers/attend.py"], after["layers/mha.py"], after["model.py"]
    assert "def forward(self, q, k, v, need_weights: bool = True):" in attend
    assert "def forward(self, x, need_weights: bool = True):" in mha
    assert "out, probs = self.attn(q, k, v, need_weights=need_weights)" in mha
    assert "y, _ = self.mha(x, need_weights=False)" in model  # Layer discards them
    assert "y, w = self.mha(x)\n        return y * w" in model  # Probe reads them
    # Relay hands them on to a fourth file: no further than one file past the wrapper
    assert "y, w = self.mha(x)\n        return y, w" in model
    assert after["top.py"] == before["top.py"]


def test_the_patched_package_computes_what_the_original_did(packages):
    original, fixed, _, _ = packages
    a = importlib.import_module(f"{original.name}.top")
    b = importlib.import_module(f"{fixed.name}.top")
    am = importlib.import_module(f"{original.name}.model")
    bm = importlib.import_module(f"{fixed.name}.model")
    attend_b = importlib.import_module(f"{fixed.name}.layers.attend")
    calls = {"n": 0}
    inner = attend_b.scaled_dot_product_attention

    def counted(*args, **kwargs):
        calls["n"] += 1
        return inner(*args, **kwargs)

    attend_b.scaled_dot_product_attention = counted
    try:
        for one_cls, two_cls, fused in ((am.Layer, bm.Layer, 1), (am.Probe, bm.Probe, 0), (a.Top, b.Top, 0)):
            for training in (False, True):
                torch.manual_seed(0)
                one = one_cls().double().train(training)
                two = two_cls().double().train(training)
                two.load_state_dict(one.state_dict(), strict=True)
                x = torch.randn(2, 5, 16, dtype=torch.float64)
                xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
                calls["n"] = 0
                out_a, out_b = one(xa), two(xb)
                assert calls["n"] == fused, one_cls.__name__
                # float64, 8-wide heads, 5 keys: equal to rounding
                torch.testing.assert_close(out_b, out_a, rtol=0, atol=1e-12)
                out_a.sum().backward()
                out_b.sum().backward()
                torch.testing.assert_close(xb.grad, xa.grad, rtol=0, atol=1e-12)
                for (key, p), (_, q) in zip(one.named_parameters(), two.named_parameters()):
                    torch.testing.assert_close(q.grad, p.grad, rtol=0, atol=1e-12, msg=key)
    finally:
        attend_b.scaled_dot_product_attention = inner


def test_a_second_run_changes_nothing(packages):
    _, fixed, _, _ = packages
    after = snapshot(fixed)
    assert main(["fix", "--select", "ADP010", "--no-config", "--no-deps", str(fixed)]) == 0
    assert snapshot(fixed) == after
