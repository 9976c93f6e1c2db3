"""ADP010's unsafe fix for a step that stores its own value in an attribute no file reads.

``self.weights = torch.softmax(scores, dim=-1)`` followed by ``torch.matmul(self.weights, v)``
(or ``self.drop(self.attn)``): the attribute is the working variable of the steps, and it keeps
the probabilities on the module on every call.  The safe fix declines it; with
``--unsafe-fixes`` (and only then), where no file of the run or of the project around it reads
the attribute -- the steps' own reads aside -- and the store happens on every path (under an
``if`` only where its other arm stores the attribute too), the fused path runs and sets the
attribute to None.  The packages are written by these tests; the patched module runs beside
the original in float64.
"""

from __future__ import annotations

import importlib
import os
import sys
import textwrap
from contextlib import contextmanager
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from adopter.cli import main  # noqa: E402
from sdpa_modules import RULES, Counter  # noqa: E402

# (A) the probabilities stored by the softmax step and read from the attribute by the product
FIELD = '''
import torch
import torch.nn.functional as F
from torch import nn


class FieldAttention(nn.Module):
    def __init__(self, dim=16, heads=2, scaled=True):
        super().__init__()
        self.size = dim // heads
        self.scaled = scaled
        self.w_q = nn.Parameter(torch.randn(dim, dim) * 0.2)
        self.w_k = nn.Parameter(torch.randn(dim, dim) * 0.2)
        self.w_v = nn.Parameter(torch.randn(dim, dim) * 0.2)

    def forward(self, x):
{before}        q = torch.stack(torch.split(torch.tensordot(x, self.w_q, dims=([-1], [0])), self.size, dim=2))
        k = torch.stack(torch.split(torch.tensordot(x, self.w_k, dims=([-1], [0])), self.size, dim=2))
        v = torch.stack(torch.split(torch.tensordot(x, self.w_v, dims=([-1], [0])), self.size, dim=2))
        s = torch.einsum("hbik,hbjk->hbij", q, k)
        if self.scaled:
            s /= self.size ** 0.5
        self.weights = F.softmax(s, dim=-1)
        out = torch.matmul(self.weights, v)
{after}        return torch.cat(torch.split(out, 1), dim=-1).squeeze(0)
{extra}'''

# (B) scores handed to a helper that stores the probabilities in both arms of a mask test
HANDED = '''
import math

import torch
from torch import nn


class HeadedAttention(nn.Module):
    def __init__(self, dim=16, heads=2, p=0.0):
        super().__init__()
        self.h = heads
        self.d_k = dim // heads
        self.linear_q = nn.Linear(dim, dim)
        self.linear_k = nn.Linear(dim, dim)
        self.linear_v = nn.Linear(dim, dim)
        self.linear_out = nn.Linear(dim, dim)
        self.dropout = nn.Dropout(p)
        self.attn = None

    def forward_attention(self, value, scores, mask):
        n_batch = value.size(0)
        if mask is not None:
            scores = scores.masked_fill(mask.unsqueeze(1).unsqueeze(2).to(bool), float("-inf"))
            self.attn = torch.softmax(scores, dim=-1)
        else:
            self.attn = torch.softmax(scores, dim=-1)
        p_attn = self.dropout(self.attn)
        x = torch.matmul(p_attn, value)
        x = x.transpose(1, 2).contiguous().view(n_batch, -1, self.h * self.d_k)
        return self.linear_out(x)

    def forward(self, query, key, value, key_padding_mask=None):
        b = query.size(0)
        q = self.linear_q(query).view(b, -1, self.h, self.d_k).transpose(1, 2)
        k = self.linear_k(key).view(b, -1, self.h, self.d_k).transpose(1, 2)
        v = self.linear_v(value).view(b, -1, self.h, self.d_k).transpose(1, 2)
        scores = torch.matmul(q, k.transpose(-2, -1)) / math.sqrt(self.d_k)
        out = self.forward_attention(v, scores, key_padding_mask)
{after}        return out
{extra}'''


def write(root: Path, pkg: str, source: str, after: str = "", extra: str = "", other: str | None = None,
          before: str = "") -> Path:
    base = root / pkg
    base.mkdir(parents=True)
    (base / "__init__.py").write_text("", encoding="utf-8")
    text = textwrap.dedent(source).lstrip("\n")
    text = text.format(after=after, extra=extra, before=before) if "{before}" in text \
        else text.format(after=after, extra=extra)
    (base / "layers.py").write_text(text, encoding="utf-8")
    if other is not None:
        (base / "plots.py").write_text(textwrap.dedent(other).lstrip("\n"), encoding="utf-8")
    return base


def fix(base: Path, *flags: str) -> int:
    return main(["fix", "--select", "ADP010", "--no-config", "--no-deps", *flags, str(base)])


@contextmanager
def _both(tmp_path, monkeypatch, original, fixed):
    monkeypatch.syspath_prepend(str(tmp_path / "a"))
    monkeypatch.syspath_prepend(str(tmp_path / "b"))
    try:
        a = importlib.import_module(f"{original.name}.layers")
        b = importlib.import_module(f"{fixed.name}.layers")
        yield a, b, Counter(vars(b))
    finally:
        for name in [m for m in sys.modules if m.startswith((original.name, fixed.name))]:
            del sys.modules[name]


def _grads_equal(one, two, xa, xb):
    torch.testing.assert_close(xb.grad, xa.grad)  # float64 defaults: 5 or 6 keys, 8 channels per head
    for (key, p), (_, q) in zip(one.named_parameters(), two.named_parameters()):
        torch.testing.assert_close(q.grad, p.grad, msg=key)


@pytest.mark.parametrize("source", [FIELD, HANDED], ids=["field", "handed"])
def test_safe_fix_leaves_the_step_store(tmp_path, source):
    base = write(tmp_path, "safestep", source)
    before = (base / "layers.py").read_text()
    assert fix(base) == 0
    assert (base / "layers.py").read_text() == before


def test_field_step_store_unsafe_fix_is_exact_and_leaves_none(tmp_path, monkeypatch):
    tag = os.path.basename(str(tmp_path)).replace("-", "_")
    original = write(tmp_path / "a", f"field_orig_{tag}", FIELD)
    fixed = write(tmp_path / "b", f"field_fixed_{tag}", FIELD)
    assert fix(fixed, "--unsafe-fixes") == 1
    text = (fixed / "layers.py").read_text()
    assert "scaled_dot_product_attention" in text and "self.weights = None" in text
    assert "F.softmax" not in text  # the fused path is the only one: nothing else sends to an original
    with _both(tmp_path, monkeypatch, original, fixed) as (a, b, counter):
        for scaled in (True, False):
            for training in (False, True):
                torch.manual_seed(0)
                one = a.FieldAttention(scaled=scaled).double().train(training)
                two = b.FieldAttention(scaled=scaled).double().train(training)
                two.load_state_dict(one.state_dict())
                x = torch.randn(3, 5, 16, dtype=torch.float64)
                xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
                counter.calls = 0
                out_a, out_b = one(xa), two(xb)
                assert counter.calls == 1
                torch.testing.assert_close(out_b, out_a)
                assert one.weights.shape == (2, 3, 5, 5) and two.weights is None
                out_a.pow(2).sum().backward()
                out_b.pow(2).sum().backward()
                _grads_equal(one, two, xa, xb)


def test_handed_step_store_in_both_arms_unsafe_fix_is_exact_and_leaves_none(tmp_path, monkeypatch):
    tag = os.path.basename(str(tmp_path)).replace("-", "_")
    original = write(tmp_path / "a", f"handed_orig_{tag}", HANDED)
    fixed = write(tmp_path / "b", f"handed_fixed_{tag}", HANDED)
    assert fix(fixed, "--unsafe-fixes") == 1
    text = (fixed / "layers.py").read_text()
    assert "scaled_dot_product_attention" in text and "self.attn = None" in text
    with _both(tmp_path, monkeypatch, original, fixed) as (a, b, counter):
        for training in (False, True):
            for masked in (False, True):
                torch.manual_seed(0)
                one = a.HeadedAttention().double().train(training)
                two = b.HeadedAttention().double().train(training)
                two.load_state_dict(one.state_dict())
                x = torch.randn(2, 6, 16, dtype=torch.float64)
                pad = (torch.arange(6)[None, :] >= torch.tensor([[6], [4]])) if masked else None
                xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
                counter.calls = 0
                out_a, out_b = one(xa, xa, xa, pad), two(xb, xb, xb, pad)
                assert counter.calls == 1
                torch.testing.assert_close(out_b, out_a)
                assert one.attn.shape == (2, 2, 6, 6) and two.attn is None
                out_a.pow(2).sum().backward()
                out_b.pow(2).sum().backward()
                _grads_equal(one, two, xa, xb)
        # the original path (scores handed in by another caller, as a subclass's forward does) still stores them
        torch.manual_seed(0)
        two = b.HeadedAttention().double().eval()
        x = torch.randn(2, 6, 16, dtype=torch.float64)
        v = two.linear_v(x).view(2, -1, 2, 8).transpose(1, 2)
        two.forward_attention(v, torch.randn(2, 2, 6, 6, dtype=torch.float64), None)
        assert two.attn.shape == (2, 2, 6, 6)


# Look-alikes: each reads the stored probabilities somewhere the fused path would leave None.
LOOK_ALIKES = {
    # a later statement of the same forward reads the attribute after the product (the analysis
    # already sees this use: no finding)
    "read_later_in_forward": (FIELD, dict(after="        self.peak = self.weights.amax()\n")),
    # the forward that hands the scores to the helper reads it after the call (no finding either)
    "handed_read_later_in_forward": (HANDED, dict(after="        self.peak = self.attn.amax()\n")),
    # the same forward reads the previous call's value before the steps store the new one
    "read_earlier_in_forward": (FIELD, dict(before="        self.previous = getattr(self, 'weights', None)\n")),
    "read_earlier_by_attribute": (FIELD, dict(before="        if hasattr(self, 'done'):\n"
                                               "            self.previous = self.weights.detach()\n")),
    # another method of the class reads it
    "read_by_a_later_method": (FIELD, dict(extra='''
    def entropy(self):
        return -(self.weights * self.weights.clamp_min(1e-12).log()).sum(-1).mean()
''')),
    # another file of the package reads it
    "read_in_another_file": (FIELD, dict(other='''
def maps(model):
    return [m.weights for m in model.modules() if hasattr(m, "scaled")]
''')),
    # the helper form, read by a plot function of the file
    "handed_read_in_file": (HANDED, dict(extra='''

def attention_maps(model):
    return [m.attn for m in model.modules() if isinstance(m, HeadedAttention)]
''')),
    # the helper form, read through getattr with the name
    "handed_read_by_getattr": (HANDED, dict(other='''
def maps(model):
    return [getattr(m, "attn", None) for m in model.modules()]
''')),
}


@pytest.mark.parametrize("form", sorted(LOOK_ALIKES))
def test_look_alikes_stay_declined_with_unsafe_fixes(tmp_path, form):
    from adopter.synth import fix_text
    from adopter.synth.run import Run

    source, parts = LOOK_ALIKES[form]
    base = write(tmp_path, "lookstep", source, **parts)
    path = base / "layers.py"
    before = path.read_text()
    assert fix(base, "--unsafe-fixes") == 0, form
    assert path.read_text() == before
    run = Run.of_paths([str(p) for p in sorted(base.rglob("*.py"))])
    run.unsafe_fixes = True
    result = fix_text(before, str(path), RULES, "lookstep", run=run)
    assert result.text == before
    if form not in ("read_later_in_forward", "handed_read_later_in_forward"):
        assert any("are stored in `self." in why and "on every call" in why for _, why in result.skipped), \
            result.skipped


def test_flag_choosing_the_store_stays_declined(tmp_path):
    """The store in one arm of an if only (the other arm keeps the probabilities in a local):
    the if says when they are kept, so the store is not on every path -- left alone."""
    source = HANDED.replace(
        "            self.attn = torch.softmax(scores, dim=-1)\n        else:\n"
        "            self.attn = torch.softmax(scores, dim=-1)\n        p_attn = self.dropout(self.attn)\n",
        "            self.attn = torch.softmax(scores, dim=-1)\n            p_attn = self.dropout(self.attn)\n"
        "        else:\n            p_attn = self.dropout(torch.softmax(scores, dim=-1))\n")
    assert source != HANDED
    base = write(tmp_path, "flagstep", source)
    before = (base / "layers.py").read_text()
    fix(base, "--unsafe-fixes")
    after = (base / "layers.py").read_text()
    # the else arm (no store) may take the fused path; the arm that stores goes to the original
    assert after.count("self.attn = None") == before.count("self.attn = None") == 1  # (__init__'s)
    if "scaled_dot_product_attention" in after:
        assert "or mask is not None" in after
    assert before.count("self.attn = torch.softmax") == after.count("self.attn = torch.softmax")
