"""ADP010 forms of session 45 (helper sites77).  The fixtures are ours.

- A scores helper compiled by a bare ``@torch.jit.script`` whose body is plain tensor code
  (sizes, views, a scale, a batched product) is inlined like a plain function of the file: the
  fused path runs its statements in the caller (TorchScript runs such a body as Python does),
  the scripted function stays in place for the original path.  Declined: a scripted body that
  names ``torch.jit`` (``is_scripting()`` is True only inside it) or tests a type.
- A learned per-head temperature built as ``torch.ones(1, heads, 1, 1).mul_(value)`` is the
  same for every key (an in-place method keeps its receiver's shape): it is folded into the
  query.  A shape-changing or out-of-place product with a wider tensor stays declined.
"""

from __future__ import annotations

import importlib.util
import itertools
import textwrap

import pytest
from corpus_forms import FusedCalls, assert_reported_not_fixed, edit, float64_pair, sdpa_fixed

torch = pytest.importorskip("torch")

SCRIPTED = textwrap.dedent("""\
    from typing import Optional

    import torch
    from torch import nn


    @torch.jit.script
    def head_scores(q: torch.Tensor, k: torch.Tensor, heads: int) -> torch.Tensor:
        qlen, bsz, hidden = q.size()
        hd = hidden // heads
        qh = q.contiguous().view(qlen, bsz * heads, hd).transpose(0, 1)
        qh = qh * hd ** -0.5
        kh = k.contiguous().view(-1, bsz * heads, hd).permute(1, 2, 0)
        return torch.bmm(qh, kh)


    class Cell(nn.Module):
        def __init__(self, dim=16, heads=2, p=0.0):
            super().__init__()
            self.heads = heads
            self.proj = nn.Linear(dim, 3 * dim)
            self.drop = nn.Dropout(p)

        def forward(self, x, mask: Optional[torch.Tensor] = None):
            t, b, d = x.shape
            heads = self.heads
            q, k, v = self.proj(x).chunk(3, dim=-1)
            s = head_scores(q, k, heads)
            if mask is not None:
                s = s + mask
            p = torch.softmax(s, dim=-1)  # softmax
            p = self.drop(p)
            vh = v.contiguous().view(-1, b * heads, d // heads).transpose(0, 1)
            out = torch.bmm(p, vh)
            return out.transpose(0, 1).contiguous().view(t, b, d)
""")

TEMPERATURE = textwrap.dedent("""\
    import torch
    from torch import nn


    class Heads(nn.Module):
        def __init__(self, dim=16, heads=4, head_dim=4, p=0.0, scale_value=1.0, trainable=True):
            super().__init__()
            self.heads = heads
            self.head_dim = head_dim
            self.qkv = nn.Linear(dim, 3 * heads * head_dim, bias=False)
            self.out = nn.Linear(heads * head_dim, dim)
            self.drop = nn.Dropout(p)
            self.scale = nn.Parameter(torch.ones(1, heads, 1, 1).mul_(scale_value).float(), requires_grad=trainable)

        def forward(self, x):
            n, t, _ = x.shape
            q, k, v = self.qkv(x).reshape(n, t, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4).unbind(0)
            scores = q @ k.transpose(-1, -2)
            scores = scores * self.head_dim ** -0.5 * self.scale
            out = self.drop(scores.softmax(-1)) @ v  # softmax
            return self.out(out.transpose(1, 2).reshape(n, t, -1))
""")


def _load(tmp_path, name: str, code: str, cls: str):
    """``cls`` of ``code`` imported from a file (TorchScript reads its functions' source)."""
    path = tmp_path / f"{name}.py"
    path.write_text(code)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, cls)


def _compare(a, b, x, train: bool, **inputs) -> int:
    """Outputs and gradients of the input and every parameter of ``a`` and ``b`` (float64)
    alike; the fused calls ``b`` made."""
    counter = FusedCalls(b)
    results = []
    for module in (a, b):
        module.train(train)
        leaf = x.clone().requires_grad_()
        out = module(leaf, **inputs)
        weights = torch.randn(out.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
        params = [p for p in module.parameters() if p.requires_grad]
        results.append((out, torch.autograd.grad((out * weights).sum(), [leaf, *params])))
    (out_a, grads_a), (out_b, grads_b) = results
    # (float64, products over 8 channels and softmaxes over at most 6 keys: a few ulps)
    torch.testing.assert_close(out_b, out_a, rtol=1e-12, atol=1e-12)
    for ga, gb in zip(grads_a, grads_b):
        torch.testing.assert_close(gb, ga, rtol=1e-10, atol=1e-12)
    return counter.calls


def test_a_torchscript_scores_helper_is_inlined(tmp_path):
    fixed = sdpa_fixed(SCRIPTED)
    # the scripted helper stays, called on the original path; its statements run in the caller
    assert "@torch.jit.script\ndef head_scores(" in fixed and "s = head_scores(q, k, heads)" in fixed
    assert "scaled_dot_product_attention(" in fixed and "hd = hidden // heads" in fixed.split("else:")[-1]
    for p, train in itertools.product((0.0, 0.3), (False, True)):
        if p and train:
            continue  # (random masks differ; the rate's path is checked below)
        torch.manual_seed(0)
        a = _load(tmp_path, "orig_ts", SCRIPTED, "Cell")(p=p).double()
        b = _load(tmp_path, "fixed_ts", fixed, "Cell")(p=p).double()
        b.load_state_dict(a.state_dict(), strict=True)
        x = torch.randn(6, 3, 16, dtype=torch.float64)
        # an additive key-padding mask, never a whole row
        mask = torch.zeros(3 * 2, 1, 6, dtype=torch.float64)
        mask[:, :, 4:] = -1e4
        assert _compare(a, b, x, train) == 1
        assert _compare(a, b, x, train, mask=mask) == 1


def test_a_torchscript_helper_naming_torch_jit_or_testing_types_is_declined():
    scripting = edit(SCRIPTED, "    hd = hidden // heads\n",
                     "    hd = hidden // heads if torch.jit.is_scripting() else hidden // heads\n")
    assert_reported_not_fixed(scripting, "ADP010", "# softmax", "TorchScript")
    typed = edit(SCRIPTED, "    hd = hidden // heads\n", "    hd = hidden // heads if isinstance(heads, int) else 1\n")
    assert_reported_not_fixed(typed, "ADP010", "# softmax", "TorchScript")
    # another decorator than the bare script: declined as before
    traced = edit(SCRIPTED, "@torch.jit.script\n", "@torch.jit.ignore\n")
    assert_reported_not_fixed(traced, "ADP010", "# softmax", "rewrite it by hand")


def test_a_per_head_temperature_changed_in_place_is_folded_into_the_query():
    fixed = sdpa_fixed(TEMPERATURE)
    assert "q * self.scale" in fixed
    x = torch.randn(2, 6, 16, dtype=torch.float64)
    for train, value in ((False, 1.0), (True, 2.5)):
        a, b = float64_pair(TEMPERATURE, fixed, "Heads", scale_value=value)
        with torch.no_grad():  # (one temperature per head, drawn: a constant one hides a wrong fold)
            a.scale.uniform_(0.5, 2.0)
            b.scale.copy_(a.scale)
        assert _compare(a, b, x, train) == 1


def test_a_temperature_that_may_differ_between_keys_is_declined():
    # the receiver's last dimension is not 1: one temperature per key
    wide = edit(TEMPERATURE, "torch.ones(1, heads, 1, 1).mul_(scale_value)", "torch.ones(1, heads, 1, 6).mul_(scale_value)")
    assert_reported_not_fixed(wide, "ADP010", "# softmax", "may be a tensor that differs between keys")
    # an in-place method that changes the shape
    grown = edit(TEMPERATURE, "torch.ones(1, heads, 1, 1).mul_(scale_value)", "torch.ones(1, heads, 1).unsqueeze_(1)")
    assert_reported_not_fixed(grown, "ADP010", "# softmax", "may be a tensor that differs between keys")
    # an out-of-place product broadcasts to the wider shape of its operand
    wider = edit(TEMPERATURE, "torch.ones(1, heads, 1, 1).mul_(scale_value)",
                 "torch.ones(1, heads, 1, 1).mul(torch.ones(1, 1, 1, 6))")
    assert_reported_not_fixed(wider, "ADP010", "# softmax", "may be a tensor that differs between keys")


def test_a_clamp_bound_wider_than_the_temperature_is_declined():
    """``clamp``'s bounds broadcast into its result: a bound of one entry per key makes the
    temperature differ per key (review59; older than the in-place reading, which reaches it).
    A number bound keeps the receiver's shape: folded and exact."""
    per_key = edit(TEMPERATURE, ".mul_(scale_value).float()",
                   ".mul_(scale_value).clamp(max=torch.linspace(0.5, 2.0, 4).view(1, 1, 1, 4)).float()")
    assert_reported_not_fixed(per_key, "ADP010", "# softmax", "may be a tensor that differs between keys")
    # a bound stored on the module: a registered buffer or a plain tensor attribute of one entry
    # per key (review61), read for what the class stores there
    for store in ("self.register_buffer('bound', torch.linspace(0.5, 2.0, 4).view(1, 1, 1, 4))\n",
                  "self.bound = torch.linspace(0.5, 2.0, 4).view(1, 1, 1, 4)\n"):
        held = edit(edit(TEMPERATURE, "        self.drop = nn.Dropout(p)\n", "        self.drop = nn.Dropout(p)\n        " + store),
                    "* self.scale\n", "* self.scale.clamp(max=self.bound)\n")
        assert_reported_not_fixed(held, "ADP010", "# softmax", "may be a tensor that differs between keys")
    function = edit(TEMPERATURE, "torch.ones(1, heads, 1, 1).mul_(scale_value).float()",
                    "torch.clamp(torch.ones(1, heads, 1, 1), None, torch.rand(1, 1, 1, 4)).float()")
    assert_reported_not_fixed(function, "ADP010", "# softmax", "may be a tensor that differs between keys")
    # (Swin v2's ``torch.clamp(logit_scale, max=np.log(1. / 0.01))``: a math function of numbers)
    swin = edit(edit(TEMPERATURE, "import torch\n", "import math\n\nimport torch\n"),
                "* self.scale\n", "* torch.clamp(self.scale, max=math.log(1. / 0.01)).exp()\n")
    assert "scaled_dot_product_attention(" in sdpa_fixed(swin)  # (sdpa_fixed: the one finding applied)
    bounded = edit(TEMPERATURE, ".mul_(scale_value).float()", ".mul_(scale_value).clamp(max=2.0).float()")
    fixed = sdpa_fixed(bounded)
    x = torch.randn(2, 6, 16, dtype=torch.float64)
    a, b = float64_pair(bounded, fixed, "Heads", scale_value=1.5)
    with torch.no_grad():
        a.scale.uniform_(0.5, 2.0)
        b.scale.copy_(a.scale)
    assert _compare(a, b, x, True) == 1


FLOAT_SCALED = textwrap.dedent("""\
    import torch
    from torch import nn


    @torch.jit.script
    def head_scores(q: torch.Tensor, k: torch.Tensor, scale: float) -> torch.Tensor:
        s = torch.matmul(q, k.transpose(-1, -2))
        return s * scale


    class Heads(nn.Module):
        def __init__(self, dim=16, heads=4):
            super().__init__()
            self.heads = heads
            self.temp = nn.Parameter(torch.tensor(0.5))
            self.qkv = nn.Linear(dim, 3 * dim)

        def forward(self, x):
            b, t, d = x.shape
            q, k, v = self.qkv(x).reshape(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4).unbind(0)
            temp = self.temp
            s = head_scores(q, k, temp)
            return torch.matmul(torch.softmax(s, dim=-1), v)  # softmax
""")


def test_a_torchscript_helper_taking_a_float_is_declined(tmp_path):
    """TorchScript converts a 0-d Parameter handed to ``scale: float`` into a Python number (no
    gradient reaches it); the inlined text, run by Python, would keep the tensor and train it
    (review59).  Such a helper is not read as plain code."""
    a = _load(tmp_path, "float_scaled", FLOAT_SCALED, "Heads")()
    a(torch.randn(2, 5, 16)).sum().backward()
    assert a.temp.grad is None  # (what the original does, and the fused call must not change)
    assert_reported_not_fixed(FLOAT_SCALED, "ADP010", "# softmax", "rewrite it by hand")
