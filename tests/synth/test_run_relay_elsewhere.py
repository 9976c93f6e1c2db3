"""An attention function whose only caller in its file is a module that hands the
probabilities back in turn, while the blocks calling that module live in other files of the
package (``adopter fix pkg/``): the relay gets the flag, its callers elsewhere decline
(``weights.Decline._relay_elsewhere``).

The package is written for these tests: ``attend.py`` holds ``attend`` (returns the product and
the probabilities) and ``MHA`` (projections around it, returning both); ``blocks.py`` holds a
block that discards them, one that reads them and one that relays them to a top module that
discards them; ``readers.py`` (the near-miss package) only reads them.  The patched package is
imported beside the original and run on the same inputs in float64 (eval, and train with a
dropout of probability 0), outputs and gradients compared, the fused call counted.
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
from adopter.synth import fix_text  # noqa: E402
from sdpa_modules import RULES  # noqa: E402

ATTEND = '''
import math

import torch
import torch.nn.functional as F
from torch import nn


def attend(query, key, value, mask=None, dropout=None):
    d = query.size(-1)
    scores = torch.matmul(query, key.transpose(-2, -1)) / math.sqrt(d)
    if mask is not None:
        scores = scores.masked_fill(mask == 0, -1e9)
    weights = F.softmax(scores, dim=-1)
    if dropout is not None:
        weights = dropout(weights)
    return torch.matmul(weights, value), weights


class MHA(nn.Module):
    def __init__(self, dim=16, heads=2, p=0.0):
        super().__init__()
        self.heads = heads
        self.q = nn.Linear(dim, dim)
        self.k = nn.Linear(dim, dim)
        self.v = nn.Linear(dim, dim)
        self.o = nn.Linear(dim, dim)
        self.drop = nn.Dropout(p)

    def split(self, x):
        b, n, c = x.shape
        return x.view(b, n, self.heads, c // self.heads).transpose(1, 2)

    def forward(self, x, mask=None):
        b, n, c = x.shape
        out, weights = attend(self.split(self.q(x)), self.split(self.k(x)), self.split(self.v(x)),
                              mask=mask, dropout=self.drop)
        out = out.transpose(1, 2).contiguous().view(b, n, c)
        return self.o(out), weights
'''

BLOCKS = '''
from torch import nn

from {pkg}.attend import MHA


class Block(nn.Module):
    def __init__(self, dim=16):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.mha = MHA(dim)

    def forward(self, x, mask=None):
        y, _ = self.mha(self.norm(x), mask)
        return x + y


class Probe(nn.Module):
    def __init__(self, dim=16):
        super().__init__()
        self.mha = MHA(dim)

    def forward(self, x, mask=None):
        y, w = self.mha(x, mask)
        return y * w.mean()
'''

READERS = '''
from torch import nn

from {pkg}.attend import MHA


class Probe(nn.Module):
    def __init__(self, dim=16):
        super().__init__()
        self.mha = MHA(dim)

    def forward(self, x):
        y, w = self.mha(x)
        return y * w.mean()
'''


def write_package(root: Path, pkg: str, caller: str = BLOCKS) -> Path:
    base = root / pkg
    base.mkdir(parents=True)
    for name, text in {"__init__.py": "", "attend.py": ATTEND, "blocks.py": caller.format(pkg=pkg)}.items():
        (base / name).write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return base


def snapshot(base: Path) -> dict[str, str]:
    return {str(p.relative_to(base)): p.read_text(encoding="utf-8") for p in sorted(base.rglob("*.py"))}


@pytest.fixture
def packages(tmp_path, monkeypatch):
    tag = os.path.basename(str(tmp_path)).replace("-", "_")
    original = write_package(tmp_path / "a", f"rorig_{tag}")
    fixed = write_package(tmp_path / "b", f"rfixed_{tag}")
    code = main(["fix", "--select", "ADP010", "--no-config", "--no-deps", str(fixed)])
    monkeypatch.syspath_prepend(str(tmp_path / "a"))
    monkeypatch.syspath_prepend(str(tmp_path / "b"))
    yield original, fixed, code
    for name in [m for m in sys.modules if m.startswith((original.name, fixed.name))]:
        del sys.modules[name]


def test_the_relay_takes_the_flag_and_its_callers_elsewhere_decline(packages):
    _, fixed, code = packages
    after = snapshot(fixed)
    assert code == 1
    attend = after["attend.py"]
    assert "def attend(query, key, value, mask=None, dropout=None, need_weights: bool = True):" in attend
    assert "def forward(self, x, mask=None, need_weights: bool = True):" in attend
    assert "mask=mask, dropout=self.drop, need_weights=need_weights)" in attend
    assert "scaled_dot_product_attention" in attend
    blocks = after["blocks.py"]
    assert "y, _ = self.mha(self.norm(x), mask, need_weights=False)" in blocks
    assert "y, w = self.mha(x, mask)\n" in blocks  # Probe reads them: the original path


def test_the_patched_package_computes_what_the_original_did(packages):
    original, fixed, _ = packages
    a = importlib.import_module(f"{original.name}.blocks")
    b = importlib.import_module(f"{fixed.name}.blocks")
    attend_b = importlib.import_module(f"{fixed.name}.attend")
    inner = attend_b.scaled_dot_product_attention
    calls = {"n": 0}

    def counted(*args, **kwargs):
        calls["n"] += 1
        return inner(*args, **kwargs)

    attend_b.scaled_dot_product_attention = counted
    try:
        keep = torch.ones(2, 1, 1, 5, dtype=torch.long)
        keep[1, ..., 3:] = 0  # the second sequence padded after 3 keys
        for name, fused in (("Block", 1), ("Probe", 0)):
            for mask in (None, keep):
                for training in (False, True):
                    torch.manual_seed(0)
                    one = getattr(a, name)().double().train(training)
                    two = getattr(b, name)().double().train(training)
                    two.load_state_dict(one.state_dict())
                    x = torch.randn(2, 5, 16, dtype=torch.float64)
                    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
                    calls["n"] = 0
                    out_a, out_b = one(xa, mask), two(xb, mask)
                    assert calls["n"] == fused, name
                    # float64, 5 keys and 8 channels per head: the defaults' 1e-7 relative holds
                    torch.testing.assert_close(out_b, out_a)
                    out_a.square().sum().backward()
                    out_b.square().sum().backward()
                    torch.testing.assert_close(xb.grad, xa.grad)
                    for (key, p), (_, q) in zip(one.named_parameters(), two.named_parameters()):
                        torch.testing.assert_close(q.grad, p.grad, msg=f"{name}.{key}")
    finally:
        attend_b.scaled_dot_product_attention = inner


def test_callers_elsewhere_that_all_read_them_leave_the_package_as_it_was(tmp_path, capsys):
    base = write_package(tmp_path, "readpkg", READERS)
    before = snapshot(base)
    assert main(["fix", "--select", "ADP010", "--no-config", "--no-deps", str(base)]) == 0
    assert snapshot(base) == before
    assert "no caller in this file or the other files of the run declines it" in capsys.readouterr().err


def test_one_file_fix_text_is_what_it_was(tmp_path):
    """Without a run the relay's callers elsewhere are not looked for: nothing changes."""
    base = write_package(tmp_path, "lonepkg2")
    path = base / "attend.py"
    result = fix_text(path.read_text(), str(path), RULES, "lonepkg2")
    assert result.text == path.read_text() and not result.callers
    assert all("no caller in this file declines it" in why for _, why in result.skipped)
