"""Forms found while checking the blind batch of research66 (research language and speech model
packages: dialogue and translation transformers, speech encoders, text-to-speech decoders).  The
fixtures are ours; each is read by its computation.

- A softmax computed by a function of another module of the package, called through the module
  (``from pkg import utils`` then ``utils.softmax(scores, dim=-1)``: fairseq's float32 softmax
  helper, copied into lightseq's ``util``): the function returns the softmax of its first
  parameter over its second on every path, as a same-file softmax helper does, so the attention
  around it is one SDPA can compute.  Near-misses: a sibling log-softmax, a sibling function that
  normalises over a fixed axis whatever dim it is given, and a name the module does not define
  stay no softmax.
- Scores viewed to heads, filled there and viewed back (pytext's RoBERTa attention with the heads
  folded into the batch: ``w.view(b, h, t, s)``, ``masked_fill(pad.unsqueeze(1).unsqueeze(2),
  -inf)``, ``w.view(b * h, t, s)``, unconditionally): the fill's mask broadcast to the heads'
  view and folded back as the scores are is the fused call's mask.  Near-miss: a softmax over
  the heads' axis of that view is no attention.
- ParlAI's attention: a float32 softmax spelled ``dtype=torch.float`` (the same dtype as
  ``torch.float32``) and a fill mask its assignment writes over several lines inside its own
  parentheses (``blocked = (\n (mask == 0)\n .view(...)\n)``), filled with a value a function
  computes at run time: the fix takes both (it declined the first, and the second failed while
  the guard was written).
"""

from __future__ import annotations

import sys
import textwrap

from corpus_forms import found, line_of, rules

from adopter.engine import analyze
from adopter.structure import package_of
from adopter.synth import fix_text

UTILS = textwrap.dedent('''
    import torch
    import torch.nn.functional as F


    def softmax(x, dim: int, traced: bool = False):
        if traced:
            return F.softmax(x.float(), dim=dim)
        return F.softmax(x, dim=dim, dtype=torch.float32)


    def log_softmax(x, dim: int):
        return F.log_softmax(x, dim=dim, dtype=torch.float32)


    def rows_softmax(x, dim: int):
        return F.softmax(x, dim=0)
''')

ATTENTION = textwrap.dedent('''
    import torch
    from torch import nn

    from softpkg import utils


    class Attention(nn.Module):
        def __init__(self, dim, heads, dropout=0.0):
            super().__init__()
            self.heads = heads
            self.head_dim = dim // heads
            self.scaling = self.head_dim ** -0.5
            self.drop = nn.Dropout(dropout)
            self.q = nn.Linear(dim, dim)
            self.k = nn.Linear(dim, dim)
            self.v = nn.Linear(dim, dim)

        def split(self, x):
            b, t, _ = x.size()
            return x.view(b, t, self.heads, self.head_dim).transpose(1, 2).reshape(b * self.heads, t, self.head_dim)

        def forward(self, x, pad=None):
            b, t, d = x.size()
            q = self.split(self.q(x) * self.scaling)
            k = self.split(self.k(x))
            v = self.split(self.v(x))
            weights = torch.bmm(q, k.transpose(1, 2))
            if pad is not None:
                weights = weights + pad
            probs = utils.softmax(weights, dim=-1)
            probs = probs.type_as(weights)
            probs = self.drop(probs)
            out = torch.bmm(probs, v)
            return out.view(b, self.heads, t, self.head_dim).transpose(1, 2).reshape(b, t, d)
''')


def _package(root, text: str):
    folder = root / "softpkg"
    folder.mkdir(parents=True)
    (folder / "__init__.py").write_text("")
    (folder / "utils.py").write_text(UTILS)
    path = folder / "attention.py"
    path.write_text(text)
    return path


def _attention_lines(root, text: str) -> list:
    path = _package(root, text)
    return [f.line for f in analyze(text, str(path), rules("ADP010"), package_of(str(path))).findings
            if f.rule == "ADP010"]


def test_a_sibling_modules_softmax_called_through_the_module_is_the_softmax(tmp_path):
    assert len(_attention_lines(tmp_path, ATTENTION)) == 1


def test_sibling_functions_that_are_no_softmax_over_the_given_dim_stay_unreported(tmp_path):
    log = ATTENTION.replace("utils.softmax(weights, dim=-1)", "utils.log_softmax(weights, dim=-1)")
    assert _attention_lines(tmp_path / "a", log) == []
    fixed_axis = ATTENTION.replace("utils.softmax(weights, dim=-1)", "utils.rows_softmax(weights, dim=-1)")
    assert _attention_lines(tmp_path / "b", fixed_axis) == []
    undefined = ATTENTION.replace("utils.softmax(weights, dim=-1)", "utils.stable_softmax(weights, dim=-1)")
    assert _attention_lines(tmp_path / "c", undefined) == []


def test_the_fix_computes_the_same_attention(tmp_path):
    import torch

    path = _package(tmp_path, ATTENTION)
    result = fix_text(ATTENTION, str(path), rules("ADP010"), package_of(str(path)))
    assert "scaled_dot_product_attention" in result.text
    sys.path.insert(0, str(tmp_path))
    try:
        original, patched = {}, {}
        exec(compile(ATTENTION, "orig.py", "exec"), original)  # noqa: S102 (our own fixture)
        exec(compile(result.text, "fixed.py", "exec"), patched)  # noqa: S102
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("softpkg.utils", None)
        sys.modules.pop("softpkg", None)
    torch.manual_seed(0)
    a = original["Attention"](16, 4).eval()
    b = patched["Attention"](16, 4).eval()
    b.load_state_dict(a.state_dict())
    x = torch.randn(2, 5, 16)
    pad = torch.zeros(8, 5, 5)
    pad[:, :, -1] = -1e9
    # float32 (the helper's softmax runs in float32 whatever the input): sums over 5 keys and
    # 4-wide products, agreement to a few float32 roundings
    with torch.no_grad():
        torch.testing.assert_close(b(x), a(x), rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(b(x, pad), a(x, pad), rtol=1e-5, atol=1e-6)


FOLDED = textwrap.dedent('''
    import torch
    from torch import nn
    from torch.nn import functional as F


    class Folded(nn.Module):
        def __init__(self, dim, heads):
            super().__init__()
            self.heads = heads
            self.head_dim = dim // heads
            self.scaling = self.head_dim ** -0.5
            self.drop = nn.Dropout(0.0)
            self.proj = nn.Linear(dim, 3 * dim)

        def forward(self, x, pad):
            t, b, d = x.size()
            q, k, v = self.proj(x).chunk(3, dim=-1)
            q = q * self.scaling
            bh = b * self.heads
            q = q.contiguous().view(t, bh, self.head_dim).transpose(0, 1)
            k = k.contiguous().view(t, bh, self.head_dim).transpose(0, 1)
            v = v.contiguous().view(t, bh, self.head_dim).transpose(0, 1)
            w = torch.bmm(q, k.transpose(1, 2))
            w = w.view(b, self.heads, t, t)
            w = w.masked_fill(pad.unsqueeze(1).unsqueeze(2), float("-inf"))
            w = w.view(bh, t, t)
            w = F.softmax(w, dim=-1, dtype=torch.float32).type_as(w)
            w = self.drop(w)
            out = torch.bmm(w, v)
            return out.transpose(0, 1).contiguous().view(t, b, d)
''')


def test_scores_filled_in_the_heads_view_between_two_reshapes_are_attention():
    assert [f.line for f in found(FOLDED, "ADP010")] == [line_of(FOLDED, "w = torch.bmm(q, k.transpose(1, 2))")]


def test_a_softmax_over_the_heads_axis_of_that_view_is_no_attention():
    heads_axis = FOLDED.replace(
        """        w = w.view(bh, t, t)
        w = F.softmax(w, dim=-1, dtype=torch.float32).type_as(w)""",
        """        w = F.softmax(w, dim=1, dtype=torch.float32).type_as(w)
        w = w.view(bh, t, t)""")
    assert heads_axis != FOLDED
    assert found(heads_axis, "ADP010") == []


def test_the_fix_folds_the_fills_mask_as_the_scores_are():
    import torch

    fixed = fix_text(FOLDED, "model.py", rules("ADP010")).text
    assert "(~pad.unsqueeze(1).unsqueeze(2)).expand(b, self.heads, t, t).reshape(" in fixed
    original, patched = {}, {}
    exec(compile(FOLDED, "orig.py", "exec"), original)  # noqa: S102 (our own fixture)
    exec(compile(fixed, "fixed.py", "exec"), patched)  # noqa: S102
    torch.manual_seed(0)
    a = original["Folded"](16, 4).eval()
    b = patched["Folded"](16, 4).eval()
    b.load_state_dict(a.state_dict())
    x = torch.randn(6, 3, 16)
    pad = torch.zeros(3, 6, dtype=torch.bool)
    pad[0, -2:] = True
    pad[2, -1] = True
    # float32: sums over 6 keys and 4-wide products, agreement to a few float32 roundings
    with torch.no_grad():
        torch.testing.assert_close(b(x, pad), a(x, pad), rtol=1e-5, atol=1e-6)


MULTILINE_MASK = textwrap.dedent('''
    import math

    import torch
    from torch import nn
    from torch.nn import functional as F


    def neg_inf(dtype):
        if dtype == torch.float16:
            return -65504.0
        return -1e20


    class Attn(nn.Module):
        def __init__(self, p=0.0):
            super().__init__()
            self.drop = nn.Dropout(p)

        def forward(self, q, k, v, mask):
            b, h, t, d = q.size()
            scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(d)
            blocked = (
                (mask == 0)
                .view(b, 1, 1, -1)
                .expand_as(scores)
            )
            scores.masked_fill_(blocked, neg_inf(scores.dtype))
            p = F.softmax(scores, dim=-1, dtype=torch.float32).type_as(q)
            p = self.drop(p)
            return torch.matmul(p, v)
''')


def _fixed_matches(code: str) -> None:
    import torch

    fixed = fix_text(code, "model.py", rules("ADP010")).text
    assert "scaled_dot_product_attention(" in fixed
    original, patched = {}, {}
    exec(compile(code, "orig.py", "exec"), original)  # noqa: S102 (our own fixture)
    exec(compile(fixed, "fixed.py", "exec"), patched)  # noqa: S102
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 3, 5, 8) for _ in range(3))
    mask = torch.ones(2, 5)
    mask[0, -2:] = 0
    # float32: sums over 5 keys and 8-wide products, agreement to a few float32 roundings
    with torch.no_grad():
        torch.testing.assert_close(patched["Attn"]().eval()(q, k, v, mask), original["Attn"]().eval()(q, k, v, mask),
                                   rtol=1e-5, atol=1e-6)


def test_a_fill_mask_written_over_several_lines_is_fixed():
    _fixed_matches(MULTILINE_MASK)


def test_a_softmax_in_torch_float_is_the_float32_softmax():
    _fixed_matches(MULTILINE_MASK.replace("dtype=torch.float32)", "dtype=torch.float)"))


def test_a_softmax_in_half_precision_is_still_declined():
    half = MULTILINE_MASK.replace("dtype=torch.float32)", "dtype=torch.half)")
    assert half != MULTILINE_MASK
    assert "scaled_dot_product_attention(" not in fix_text(half, "model.py", rules("ADP010")).text
