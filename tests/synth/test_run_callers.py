"""An attention that hands its probabilities back, whose callers live in other files of its
package (``adopter fix pkg/``): the run's caller pass (``adopter.synth.run``).

The packages are written for these tests, in a temporary folder: ``layers/attend.py`` holds a
module attention and a function attention, both returning the probabilities; ``layers/__init__``
re-exports the class; ``blocks.py`` imports it through the package (relative) and the function
by its absolute module path, and calls them in every way the same-file pass knows (discarded,
read, handed back in turn); ``other.py`` binds the same name to classes that are not the
attention (its own ``Attention``, torch's ``MultiheadAttention``): their calls are never edited.
The patched package is imported beside the original and run on the same inputs in float64
(eval, and train with the dropout module of probability 0), the fused call counted.
"""

from __future__ import annotations

import importlib
import os
import stat
import sys
import textwrap
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from adopter.cli import main  # noqa: E402
from adopter.synth import fix_text  # noqa: E402
from adopter.synth.run import Run, fix_files  # noqa: E402
from sdpa_modules import RULES  # noqa: E402

ATTEND = '''
import torch
from torch import nn


class Attention(nn.Module):
    def __init__(self, dim=16, heads=2, drop=0.0):
        super().__init__()
        self.heads = heads
        self.scale = (dim // heads) ** -0.5
        self.qkv = nn.Linear(dim, dim * 3)
        self.drop = nn.Dropout(drop)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        B, N, C = x.shape
        q, k, v = self.qkv(x).reshape(B, N, 3, self.heads, C // self.heads).permute(2, 0, 3, 1, 4)
        attn = (q @ k.transpose(-2, -1)) * self.scale
        attn = attn.softmax(dim=-1)
        attn = self.drop(attn)
        x = (attn @ v).transpose(1, 2).reshape(B, N, C)
        return self.proj(x), attn


def attend(q, k, v, scale):
    scores = torch.matmul(q, k.transpose(-2, -1)) * scale
    probs = torch.softmax(scores, dim=-1)
    return torch.matmul(probs, v), probs
'''

LAYERS_INIT = '''
from .attend import Attention
'''

BLOCKS = '''
import torch
from torch import nn

from .layers import Attention
from {pkg}.layers.attend import attend


class Block(nn.Module):
    def __init__(self, dim=16):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.attn = Attention(dim)

    def forward(self, x):
        y, _ = self.attn(self.norm(x))
        return x + y


class Probe(nn.Module):
    def __init__(self, dim=16):
        super().__init__()
        self.attn = Attention(dim)

    def forward(self, x):
        y, w = self.attn(x)
        return y * w.sum(-1).mean()


class Relay(nn.Module):
    def __init__(self, dim=16):
        super().__init__()
        self.attn = Attention(dim)

    def forward(self, x):
        y, w = self.attn(x)
        return y, w


class Top(nn.Module):
    def __init__(self, dim=16):
        super().__init__()
        self.relay = Relay(dim)

    def forward(self, x):
        y, _ = self.relay(x)
        return y


class Pair(nn.Module):
    def __init__(self, dim=16):
        super().__init__()
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        q = self.proj(x).unflatten(-1, (2, -1)).transpose(1, 2)
        out, probs = attend(q, q, q, 0.5)
        return out.transpose(1, 2).flatten(2)
'''

OTHER = '''
import torch
from torch import nn
from torch.nn import MultiheadAttention as Imported


class Attention(nn.Module):
    def forward(self, x):
        return x, x.sum()


class UsesLocal(nn.Module):
    def __init__(self):
        super().__init__()
        self.attn = Attention()

    def forward(self, x):
        y, _ = self.attn(x)
        return y


class UsesTorch(nn.Module):
    def __init__(self, dim=16):
        super().__init__()
        self.attn = Imported(dim, 2, batch_first=True)

    def forward(self, x):
        y, _ = self.attn(x, x, x)
        return y
'''


def write_package(root: Path, pkg: str) -> Path:
    base = root / pkg
    (base / "layers").mkdir(parents=True)
    files = {"__init__.py": "", "layers/__init__.py": LAYERS_INIT, "layers/attend.py": ATTEND,
             "blocks.py": BLOCKS.format(pkg=pkg), "other.py": OTHER}
    for name, text in files.items():
        (base / name).write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return base


def snapshot(base: Path) -> dict[str, str]:
    return {str(p.relative_to(base)): p.read_text(encoding="utf-8") for p in sorted(base.rglob("*.py"))}


@pytest.fixture
def packages(tmp_path, monkeypatch):
    """An original package and a copy fixed with ``adopter fix FOLDER`` (names unique per test)."""
    tag = os.path.basename(str(tmp_path)).replace("-", "_")
    original = write_package(tmp_path / "a", f"orig_{tag}")
    fixed = write_package(tmp_path / "b", f"fixed_{tag}")
    before = snapshot(fixed)
    code = main(["fix", "--select", "ADP010", "--no-config", "--no-deps", str(fixed)])
    monkeypatch.syspath_prepend(str(tmp_path / "a"))
    monkeypatch.syspath_prepend(str(tmp_path / "b"))
    yield original, fixed, before, code
    for name in [m for m in sys.modules if m.startswith((original.name, fixed.name))]:
        del sys.modules[name]


def test_a_folder_fix_edits_the_callers_in_other_files(packages):
    _, fixed, before, code = packages
    after = snapshot(fixed)
    assert code == 1
    attend, blocks = after["layers/attend.py"], after["blocks.py"]
    assert "def forward(self, x, need_weights: bool = True):" in attend
    assert "def attend(q, k, v, scale, need_weights: bool = True):" in attend
    assert "y, _ = self.attn(self.norm(x), need_weights=False)" in blocks  # Block discards them
    assert "y, w = self.attn(x)\n        return y * w" in blocks  # Probe reads them: the original path
    assert "def forward(self, x, need_weights: bool = True):" in blocks  # Relay hands them back in turn
    assert "y, w = self.attn(x, need_weights=need_weights)" in blocks
    assert "y, _ = self.relay(x, need_weights=False)" in blocks  # Top discards Relay's
    assert "out, probs = attend(q, q, q, 0.5, need_weights=False)" in blocks  # probs never read
    # the same name bound to something else (a class of the file, torch's module) is not the attention
    assert after["other.py"] == before["other.py"]
    assert after["layers/__init__.py"] == before["layers/__init__.py"]


def test_the_patched_package_computes_what_the_original_did(packages):
    original, fixed, _, _ = packages
    a = importlib.import_module(f"{original.name}.blocks")
    b = importlib.import_module(f"{fixed.name}.blocks")
    attend_b = importlib.import_module(f"{fixed.name}.layers.attend")
    calls = {"n": 0}
    inner = attend_b.scaled_dot_product_attention

    def counted(*args, **kwargs):
        calls["n"] += 1
        return inner(*args, **kwargs)

    attend_b.scaled_dot_product_attention = counted
    try:
        for name, fused in (("Block", 1), ("Top", 1), ("Pair", 1), ("Probe", 0), ("Relay", 0)):
            for training in (False, True):
                torch.manual_seed(0)
                one = getattr(a, name)().double().train(training)
                two = getattr(b, name)().double().train(training)
                two.load_state_dict(one.state_dict())
                x = torch.randn(2, 5, 16, dtype=torch.float64)
                xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
                calls["n"] = 0
                out_a, out_b = one(xa), two(xb)
                assert calls["n"] == fused, name
                torch.testing.assert_close(out_b, out_a)  # float64 defaults: 16 channels, 5 keys
                if isinstance(out_a, tuple):
                    out_a, out_b = out_a[0], out_b[0]
                out_a.sum().backward()
                out_b.sum().backward()
                torch.testing.assert_close(xb.grad, xa.grad)
                for (key, p), (_, q) in zip(one.named_parameters(), two.named_parameters()):
                    torch.testing.assert_close(q.grad, p.grad, msg=f"{name}.{key}")
    finally:
        attend_b.scaled_dot_product_attention = inner


def test_a_second_run_changes_nothing(packages):
    _, fixed, _, _ = packages
    after = snapshot(fixed)
    assert main(["fix", "--select", "ADP010", "--no-config", "--no-deps", str(fixed)]) == 0
    assert snapshot(fixed) == after


def test_diff_shows_every_file_of_the_patch_and_writes_nothing(tmp_path, capsys):
    base = write_package(tmp_path, "diffpkg")
    before = snapshot(base)
    assert main(["fix", "--diff", "--select", "ADP010", "--no-config", "--no-deps", str(base)]) == 1
    out = capsys.readouterr().out
    assert "+++ b/" in out and "layers/attend.py" in out and "blocks.py" in out
    assert "+        y, _ = self.attn(self.norm(x), need_weights=False)" in out
    assert snapshot(base) == before


def test_callers_outside_the_run_are_named_not_edited(tmp_path, capsys):
    base = write_package(tmp_path, "outpkg")
    before = snapshot(base)
    assert main(["fix", "--select", "ADP010", "--no-config", "--no-deps", str(base / "layers" / "attend.py")]) == 0
    err = capsys.readouterr().err
    assert snapshot(base) == before
    assert "no caller in this file or the other files of the run declines it" in err
    assert "outside this run" in err and "blocks.py" in err
    assert "other.py" not in err


def test_one_file_fix_text_is_what_it_was(tmp_path):
    """Without a run, ``fix_text`` says what it always said and changes nothing."""
    base = write_package(tmp_path, "onepkg")
    path = base / "layers" / "attend.py"
    result = fix_text(path.read_text(), str(path), RULES, "onepkg.layers")
    assert result.text == path.read_text() and not result.callers
    reasons = [why for _, why in result.skipped]
    assert reasons and all("no caller in this file declines it, so a flag" in why for why in reasons)


def test_fix_files_api_matches_the_command(tmp_path):
    base = write_package(tmp_path, "apipkg")
    texts = {str(p): p.read_text() for p in sorted(base.rglob("*.py"))}
    results = fix_files(texts, RULES)
    blocks = results[str(base / "blocks.py")]
    assert "need_weights=False" in blocks.text and not blocks.applied
    assert results[str(base / "other.py")].text == texts[str(base / "other.py")]
    # the run resolves the re-export in layers/__init__ to the defining module
    run = Run(texts)
    assert run.canonical("apipkg.layers.Attention") == "apipkg.layers.attend.Attention"


def test_a_caller_that_cannot_be_written_leaves_every_file_as_it_was(tmp_path, capsys):
    """(``write_source`` refuses a file without write permission bits, for root too.)"""
    base = write_package(tmp_path, "ropkg")
    before = snapshot(base)
    blocks = base / "blocks.py"
    blocks.chmod(stat.S_IRUSR | stat.S_IRGRP)
    try:
        assert main(["fix", "--select", "ADP010", "--no-config", "--no-deps", str(base)]) == 2
    finally:
        blocks.chmod(stat.S_IRUSR | stat.S_IWUSR)
    assert snapshot(base) == before
    assert "read-only" in capsys.readouterr().err


def test_check_over_the_package_calls_the_attention_fixable(tmp_path, capsys):
    import json

    base = write_package(tmp_path, "chkpkg")
    assert main(["check", "--select", "ADP010", "--no-config", "--output-format", "json", str(base)]) == 1
    found = json.loads(capsys.readouterr().out)
    attend = [f for f in found if f["path"].endswith("attend.py")]
    assert len(attend) == 2 and all(f["fixable"] for f in attend), attend
    main(["check", "--select", "ADP010", "--no-config", "--output-format", "json", str(base / "layers" / "attend.py")])
    alone = json.loads(capsys.readouterr().out)
    assert alone and not any(f["fixable"] for f in alone)
    assert all("outside this run" in f["not_fixable"] for f in alone)


def test_verify_with_the_package_as_context_checks_the_declined_path(tmp_path, capsys):
    import json

    base = write_package(tmp_path, "verpkg")
    code = main(["verify", "--select", "ADP010", "--no-config", "--no-benchmark", "--output-format", "json",
                 str(base / "layers" / "attend.py"), "--context", str(base)])
    results = json.loads(capsys.readouterr().out)["results"]
    module = [r for r in results if r["class"] == "Attention"]
    assert code == 0 and module and module[0]["verdict"] == "pass", results
    assert "need_weights=False" in module[0]["details"]["variant"]


def test_a_one_file_run_with_no_callers_anywhere_says_what_it_said(tmp_path, capsys):
    base = tmp_path / "lonepkg"
    base.mkdir()
    (base / "__init__.py").write_text("")
    (base / "attend.py").write_text(textwrap.dedent(ATTEND).lstrip("\n"))
    assert main(["fix", "--select", "ADP010", "--no-config", "--no-deps", str(base / "attend.py")]) == 0
    err = capsys.readouterr().err
    assert "no caller in this file declines it, so a flag to skip it would never take the fused path" in err
    assert "other files of the run" not in err and "outside this run" not in err
