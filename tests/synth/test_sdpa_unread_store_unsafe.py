"""ADP010's unsafe fix: probabilities a caller stores in an attribute that no file reads.

``x, self.attn = self.attention(q, k, v, mask)`` keeps the probabilities on the module for code
outside the package (a plot hook) on every call, so the safe fix declines the attention.  With
``--unsafe-fixes`` (and only then) a store no file of the run, nor of the folder around its
package, reads (through any object, ``getattr`` or the name in a string), not under an ``if``,
declines them: the call passes ``need_weights=False``, and after a call that took the fused
path the attribute is None (outside code reading it gets None: why the fix is unsafe).  The
packages are written by these tests; the patched one is run beside the original in float64.
"""

from __future__ import annotations

import importlib
from contextlib import contextmanager
import os
import sys
import textwrap
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from adopter.cli import main  # noqa: E402
from sdpa_modules import Counter  # noqa: E402

ATTN = '''
import math

import torch
from torch import nn


class MultiHeadAttention(nn.Module):
    def __init__(self, channels=16, heads=2, p_dropout=0.0):
        super().__init__()
        self.heads = heads
        self.k_channels = channels // heads
        self.conv_q = nn.Conv1d(channels, channels, 1)
        self.conv_k = nn.Conv1d(channels, channels, 1)
        self.conv_v = nn.Conv1d(channels, channels, 1)
        self.conv_o = nn.Conv1d(channels, channels, 1)
        self.drop = nn.Dropout(p_dropout)
        self.attn = None

    def forward(self, x, c, attn_mask=None):
        q = self.conv_q(x)
        k = self.conv_k(c)
        v = self.conv_v(c)
        x, self.attn = self.attention(q, k, v, mask=attn_mask)
{extra_forward}        return self.conv_o(x)

    def attention(self, query, key, value, mask=None):
        b, d, t_s, t_t = (*key.size(), query.size(2))
        query = query.view(b, self.heads, self.k_channels, t_t).transpose(2, 3)
        key = key.view(b, self.heads, self.k_channels, t_s).transpose(2, 3)
        value = value.view(b, self.heads, self.k_channels, t_s).transpose(2, 3)
        scores = torch.matmul(query / math.sqrt(self.k_channels), key.transpose(-2, -1))
        if mask is not None:
            scores = scores.masked_fill(mask == 0, -1e4)
        p_attn = torch.softmax(scores, dim=-1)
        p_attn = self.drop(p_attn)
        output = torch.matmul(p_attn, value)
        output = output.transpose(2, 3).contiguous().view(b, d, t_t)
        return output, p_attn
{extra_class}'''

# The look-alikes: each keeps the probabilities for code the run can see.
READ_IN_FILE = ("", '''

def attention_maps(model):
    return [m.attn for m in model.modules() if isinstance(m, MultiHeadAttention)]
''')
READ_BY_GETATTR = ("", '''

def attention_maps(model):
    return [getattr(m, "attn", None) for m in model.modules()]
''')
RETURNED_AND_READ = ("        return self.conv_o(x), self.attn\n", '''

class Probe(nn.Module):
    def __init__(self):
        super().__init__()
        self.mha = MultiHeadAttention()

    def forward(self, x):
        y, w = self.mha(x, x)
        return y * w.mean()
''')
OTHER_READS = '''
def plot(model):
    return model.encoder.attn
'''


def write_package(root: Path, pkg: str, forward: str = "", extra: str = "", other: str | None = None) -> Path:
    base = root / pkg
    base.mkdir(parents=True)
    (base / "__init__.py").write_text("", encoding="utf-8")
    (base / "attentions.py").write_text(textwrap.dedent(ATTN).lstrip("\n").format(
        extra_forward=forward, extra_class=extra), encoding="utf-8")
    if other is not None:
        (base / "plots.py").write_text(textwrap.dedent(other).lstrip("\n"), encoding="utf-8")
    return base


def fix(base: Path, *flags: str) -> int:
    return main(["fix", "--select", "ADP010", "--no-config", "--no-deps", *flags, str(base)])



@contextmanager
def _both(tmp_path, monkeypatch, original, fixed, module):
    """The original and the fixed package's ``module`` imported side by side, the fixed one's
    ``scaled_dot_product_attention`` counted (sdpa_modules.Counter); both unloaded after."""
    monkeypatch.syspath_prepend(str(tmp_path / "a"))
    monkeypatch.syspath_prepend(str(tmp_path / "b"))
    try:
        a = importlib.import_module(f"{original.name}.{module}")
        b = importlib.import_module(f"{fixed.name}.{module}")
        yield a, b, Counter(vars(b))
    finally:
        for name in [m for m in sys.modules if m.startswith((original.name, fixed.name))]:
            del sys.modules[name]

def test_safe_fix_leaves_it_and_says_the_unsafe_fix_exists(tmp_path, capsys):
    base = write_package(tmp_path, "safepkg")
    before = (base / "attentions.py").read_text()
    assert fix(base) == 0
    assert (base / "attentions.py").read_text() == before
    err = capsys.readouterr().err
    assert "unsafe fix: apply with --unsafe-fixes" in err and "`self.attn`" in err and "would get None" in err


def test_unsafe_fix_declines_them_and_computes_what_the_original_did(tmp_path, monkeypatch):
    tag = os.path.basename(str(tmp_path)).replace("-", "_")
    original = write_package(tmp_path / "a", f"orig_{tag}")
    fixed = write_package(tmp_path / "b", f"fixed_{tag}")
    assert fix(fixed, "--unsafe-fixes") == 1
    text = (fixed / "attentions.py").read_text()
    assert "x, self.attn = self.attention(q, k, v, mask=attn_mask, need_weights=False)" in text
    assert "scaled_dot_product_attention" in text
    assert fix(fixed, "--unsafe-fixes") == 0 and (fixed / "attentions.py").read_text() == text  # a second run
    with _both(tmp_path, monkeypatch, original, fixed, "attentions") as (a, b, counter):
        for training in (False, True):
            for masked in (False, True):
                torch.manual_seed(0)
                one = a.MultiHeadAttention().double().train(training)
                two = b.MultiHeadAttention().double().train(training)
                two.load_state_dict(one.state_dict())
                x = torch.randn(2, 16, 5, dtype=torch.float64)
                c = torch.randn(2, 16, 7, dtype=torch.float64)
                mask = (torch.rand(2, 1, 5, 7) > 0.3).double() if masked else None
                xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
                counter.calls = 0
                out_a, out_b = one(xa, c, mask), two(xb, c, mask)
                assert counter.calls == 1
                # float64: 8 channels per head, 7 keys -- the defaults' 1e-7 relative is ample
                torch.testing.assert_close(out_b, out_a)
                assert torch.is_tensor(one.attn) and one.attn.shape == (2, 2, 5, 7)
                assert two.attn is None  # the unsafe part: outside readers get None
                out_a.pow(2).sum().backward()
                out_b.pow(2).sum().backward()
                torch.testing.assert_close(xb.grad, xa.grad)
                for (key, p), (_, q) in zip(one.named_parameters(), two.named_parameters()):
                    torch.testing.assert_close(q.grad, p.grad, msg=key)
        # the original path (a call that passes no flag) still stores the map exactly
        torch.manual_seed(0)
        one, two = a.MultiHeadAttention().double().eval(), b.MultiHeadAttention().double().eval()
        two.load_state_dict(one.state_dict())
        x = torch.randn(2, 16, 5, dtype=torch.float64)
        out_a, p_a = one.attention(one.conv_q(x), one.conv_k(x), one.conv_v(x))
        out_b, p_b = two.attention(two.conv_q(x), two.conv_k(x), two.conv_v(x))
        torch.testing.assert_close(out_b, out_a)
        torch.testing.assert_close(p_b, p_a)


@pytest.mark.parametrize("form", ["read_in_file", "read_by_getattr", "returned_and_read", "read_in_other_file",
                                  "read_beside_the_package", "under_an_if", "kept_in_a_list"])
def test_look_alikes_stay_declined_with_unsafe_fixes(tmp_path, form):
    pkg = f"look_{form}"
    if form == "read_in_file":
        base = write_package(tmp_path, pkg, *READ_IN_FILE)
    elif form == "read_by_getattr":
        base = write_package(tmp_path, pkg, *READ_BY_GETATTR)
    elif form == "returned_and_read":
        base = write_package(tmp_path, pkg, *RETURNED_AND_READ)
    elif form == "read_in_other_file":
        base = write_package(tmp_path, pkg, other=OTHER_READS)
    elif form == "read_beside_the_package":
        # a script next to the package (outside the run of `fix pkg/`) reads the attribute
        base = write_package(tmp_path, pkg)
        (tmp_path / "plot_maps.py").write_text("def show(layer):\n    return layer.attn.mean()\n", encoding="utf-8")
    else:
        base = write_package(tmp_path, pkg)
        path = base / "attentions.py"
        old = "        x, self.attn = self.attention(q, k, v, mask=attn_mask)\n"
        new = {"under_an_if": "        if self.heads > 1:\n            x, self.attn = self.attention(q, k, v, mask=attn_mask)\n"
                              "        else:\n            x, self.attn = self.attention(q, k, v, mask=attn_mask)\n",
               "kept_in_a_list": "        x, p = self.attention(q, k, v, mask=attn_mask)\n        self.maps = [p]\n"}[form]
        path.write_text(path.read_text().replace(old, new), encoding="utf-8")
    before = (base / "attentions.py").read_text()
    assert fix(base, "--unsafe-fixes") == 0, form
    assert (base / "attentions.py").read_text() == before


# The attention's own store, after the steps: ``self.scores = scores`` (a ViT block kept for a plot).
SELF_STORE = '''
import torch
from torch import nn


class SelfAttention(nn.Module):
    def __init__(self, dim=16, heads=2):
        super().__init__()
        self.heads = heads
        self.proj_q = nn.Linear(dim, dim)
        self.proj_k = nn.Linear(dim, dim)
        self.proj_v = nn.Linear(dim, dim)
        self.drop = nn.Dropout(0.0)
        self.scores = None

    def forward(self, x, mask=None):
        b, n, c = x.shape
        q, k, v = (p(x).view(b, n, self.heads, -1).transpose(1, 2) for p in (self.proj_q, self.proj_k, self.proj_v))
        scores = q @ k.transpose(-2, -1) / (c // self.heads) ** 0.5
        if mask is not None:
            scores = scores - 10000.0 * (1.0 - mask[:, None, None, :].float())
        scores = self.drop(torch.softmax(scores, dim=-1))
        h = (scores @ v).transpose(1, 2).reshape(b, n, c)
        self.scores = scores
        return h
{extra}'''


def write_self_store(root: Path, pkg: str, extra: str = "") -> Path:
    base = root / pkg
    base.mkdir(parents=True)
    (base / "__init__.py").write_text("", encoding="utf-8")
    (base / "blocks.py").write_text(textwrap.dedent(SELF_STORE).lstrip("\n").format(extra=extra), encoding="utf-8")
    return base


def test_own_store_safe_fix_leaves_it(tmp_path, capsys):
    from adopter.synth import fix_text
    from adopter.synth.run import Run
    from sdpa_modules import RULES

    base = write_self_store(tmp_path, "ownsafe")
    path = base / "blocks.py"
    before = path.read_text()
    assert fix(base) == 0 and path.read_text() == before
    # with the run (as `fix` asks for it under --unsafe-fixes, and verify has it), the decline says more
    run = Run.of_paths([str(p) for p in sorted(base.rglob("*.py"))])
    result = fix_text(before, str(path), RULES, "ownsafe", run=run)
    assert result.text == before
    assert any("unsafe fix: apply with --unsafe-fixes: no file of the run reads `self.scores`" in why
               for _, why in result.skipped)


def test_own_store_unsafe_fix_is_exact_and_leaves_none(tmp_path, monkeypatch):
    tag = os.path.basename(str(tmp_path)).replace("-", "_")
    original = write_self_store(tmp_path / "a", f"own_orig_{tag}")
    fixed = write_self_store(tmp_path / "b", f"own_fixed_{tag}")
    assert fix(fixed, "--unsafe-fixes") == 1
    text = (fixed / "blocks.py").read_text()
    assert "scaled_dot_product_attention" in text and "scores = None" in text
    assert "self.scores = scores" in text  # kept: it stores None after the fused call
    with _both(tmp_path, monkeypatch, original, fixed, "blocks") as (a, b, counter):
        for training in (False, True):
            for masked in (False, True):
                torch.manual_seed(0)
                one = a.SelfAttention().double().train(training)
                two = b.SelfAttention().double().train(training)
                two.load_state_dict(one.state_dict())
                x = torch.randn(2, 6, 16, dtype=torch.float64)
                mask = (torch.arange(6)[None, :] < torch.tensor([[6], [4]])).long() if masked else None
                xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
                counter.calls = 0
                out_a, out_b = one(xa, mask), two(xb, mask)
                assert counter.calls == 1
                torch.testing.assert_close(out_b, out_a)  # float64 defaults; 6 keys, 8 channels per head
                assert one.scores.shape == (2, 2, 6, 6) and two.scores is None
                out_a.pow(2).sum().backward()
                out_b.pow(2).sum().backward()
                torch.testing.assert_close(xb.grad, xa.grad)
                for (key, p), (_, q) in zip(one.named_parameters(), two.named_parameters()):
                    torch.testing.assert_close(q.grad, p.grad, msg=key)


@pytest.mark.parametrize("extra", [
    "\n\ndef maps(model):\n    return [m.scores for m in model.modules() if isinstance(m, SelfAttention)]\n",
    "\n\nNAMES = ['scores']\n",
])
def test_own_store_read_in_the_run_stays_declined(tmp_path, extra):
    base = write_self_store(tmp_path, "ownread", extra)
    before = (base / "blocks.py").read_text()
    assert fix(base, "--unsafe-fixes") == 0 and (base / "blocks.py").read_text() == before


# Reads that name no attribute, notebooks beside the package, and a src layout's scripts
# (review55's misses): each keeps the stored map for someone, so --unsafe-fixes declines too.
DYNAMIC_READS = {
    "vars_walk": '''

def tensors(model):
    return [v for m in model.modules() for k, v in vars(m).items() if torch.is_tensor(v)]
''',
    "getattr_built_name": '''

def maps(model, prefix="at"):
    return [getattr(m, prefix + "tn") for m in model.modules() if isinstance(m, MultiHeadAttention)]
''',
    "dict_walk": '''

def maps(model):
    return [m.__dict__.get(n) for m in model.modules() for n in m.__dict__ if n.endswith("tn")]
''',
    "hasattr_variable": '''

def has(model, name):
    return [hasattr(m, name) for m in model.modules()]
''',
    "attrgetter_variable": '''
import operator


def pick(model, name):
    return [operator.attrgetter(name)(m) for m in model.children()]
''',
    "getattr_fstring": '''

def maps(model, rest):
    return [getattr(m, f"at{rest}") for m in model.modules()]
''',
    # review56: whole-object reads that name no attribute either
    "object_getattribute": '''

def maps(model, name):
    return [object.__getattribute__(m, name) for m in model.modules()]
''',
    "getmembers": '''
import inspect


def maps(model):
    return [dict(inspect.getmembers(m)) for m in model.modules()]
''',
    "getstate": '''

def maps(model):
    return [m.__getstate__() for m in model.modules()]
''',
}
# look-alikes: a built name that can never be ``attn`` (a literal piece it lacks), a literal
# other attribute -- the store is still dropped with --unsafe-fixes
DYNAMIC_NOT_READS = {
    "getattr_other_prefix": '''

def convs(model, i="q"):
    return [getattr(model, "conv_" + i), getattr(model, f"conv_{i}")]
''',
    "getattr_other_literal": '''

def heads(model):
    return getattr(model, "heads", 1)
''',
}


def _patched(base: Path) -> bool:
    return "scaled_dot_product_attention" in (base / "attentions.py").read_text()


@pytest.mark.parametrize("form", sorted(DYNAMIC_READS))
def test_reads_naming_no_attribute_stay_declined(tmp_path, form):
    base = write_package(tmp_path, f"dyn_{form}", "", DYNAMIC_READS[form])
    before = (base / "attentions.py").read_text()
    assert fix(base, "--unsafe-fixes") == 0, form
    assert (base / "attentions.py").read_text() == before


@pytest.mark.parametrize("form", sorted(DYNAMIC_NOT_READS))
def test_names_that_cannot_be_the_attribute_still_fixed(tmp_path, form):
    base = write_package(tmp_path, f"nodyn_{form}", "", DYNAMIC_NOT_READS[form])
    assert fix(base, "--unsafe-fixes") == 1, form
    assert _patched(base)


def _notebook(cells: list[tuple[str, str]]) -> str:
    import json
    return json.dumps({"cells": [{"cell_type": kind, "source": source.splitlines(True), "metadata": {},
                                  **({"outputs": [], "execution_count": None} if kind == "code" else {})}
                                 for kind, source in cells],
                       "metadata": {}, "nbformat": 4, "nbformat_minor": 5}, indent=1)


@pytest.mark.parametrize("reads", [True, False])
def test_notebook_beside_the_package(tmp_path, reads):
    base = write_package(tmp_path, f"nb_{reads}")
    code = "m = MultiHeadAttention()\ny = m(x, x)\n" + ("plt.imshow(m.attn[0, 0])\n" if reads else "print(y.shape)\n")
    # the look-alike's markdown cell names the attribute: prose, not a read
    (tmp_path / "visualize.ipynb").write_text(_notebook(
        [("markdown", "Plot `m.attn` here."), ("code", f"from {base.name}.attentions import MultiHeadAttention\n"),
         ("code", "%matplotlib inline\n" + code)]), encoding="utf-8")
    before = (base / "attentions.py").read_text()
    if reads:
        assert fix(base, "--unsafe-fixes") == 0
        assert (base / "attentions.py").read_text() == before
    else:
        assert fix(base, "--unsafe-fixes") == 1 and _patched(base)


@pytest.mark.parametrize("form", ["marker_script_reads", "marker_script_other", "no_marker_script_other"])
def test_src_layout_scans_the_project_root(tmp_path, form):
    project = tmp_path / "proj"
    base = write_package(project / "src", f"src_{form}")
    if form.startswith("marker"):
        (project / "pyproject.toml").write_text("[project]\nname = 'x'\n", encoding="utf-8")
    (project / "scripts").mkdir()
    read = "layer.enc.attn.mean()" if form == "marker_script_reads" else "layer.enc.heads"
    (project / "scripts" / "plot.py").write_text(f"def show(layer):\n    return {read}\n", encoding="utf-8")
    before = (base / "attentions.py").read_text()
    code = fix(project / "src", "--unsafe-fixes")
    if form == "marker_script_reads":
        assert code == 0 and (base / "attentions.py").read_text() == before
    else:
        assert code == 1 and _patched(base)


def test_safe_fix_unchanged_by_the_new_reads(tmp_path):
    # without --unsafe-fixes nothing is patched, whether or not something reads the attribute
    for form, extra in [("plain", ""), ("vars", DYNAMIC_READS["vars_walk"])]:
        base = write_package(tmp_path / form, f"safe2_{form}", "", extra)
        before = (base / "attentions.py").read_text()
        assert fix(base) == 0 and (base / "attentions.py").read_text() == before
