"""Research attention forms read in session 28 (rafix37): the scores' own shape read in the
attention.  The fixtures are ours.

- ADP010: an item of the scores' shape read before any view of them (DAT's window attention:
  ``N = attn.shape[3]``, then the shift mask added through ``attn.view(B // nW, nW, heads, N,
  N)`` and the scores viewed back): the scores of ``q @ k.transpose(-2, -1)`` have the shape
  ``broadcast(q.shape[:-2], k.shape[:-2]) + (q.shape[-2], k.shape[-2])``, so the read is that
  item of it, also after an additive bias (the fused call raises on a mask wider than the
  scores).  A read after a view of the scores reads the viewed shape and stays declined.
- ADP010: ``softmax(attn, dim=-1, dtype=attn.dtype)``: the input's own dtype, the default; v's
  dtype is fixed behind a guard that every operand is in q's dtype (rafix56, session 35).
"""

from __future__ import annotations

import textwrap

import pytest
from corpus_forms import rules

from adopter.synth import fix_text

torch = pytest.importorskip("torch")

WINDOW = textwrap.dedent("""\
    import torch
    import torch.nn as nn


    class WindowAttention(nn.Module):
        def __init__(self, dim=16, heads=2, window=4):
            super().__init__()
            self.num_heads = heads
            self.scale = (dim // heads) ** -0.5
            self.bias = nn.Parameter(torch.randn(heads, window * window, window * window))
            self.qkv = nn.Linear(dim, dim * 3)
            self.attn_drop = nn.Dropout(0.0)
            self.proj = nn.Linear(dim, dim)

        def forward(self, x, mask=None):
            B_, L, C = x.shape
            qkv = self.qkv(x).reshape(B_, L, 3, self.num_heads, C // self.num_heads).permute(2, 0, 3, 1, 4)
            q, k, v = qkv[0], qkv[1], qkv[2]
            q = q * self.scale
            attn = q @ k.transpose(-2, -1)
            attn = attn + self.bias.unsqueeze(0)
            N = attn.shape[3]
            if mask is not None:
                nW = mask.shape[0]
                attn = attn.view(B_ // nW, nW, self.num_heads, N, N) + mask.unsqueeze(1).unsqueeze(0)
                attn = attn.view(-1, self.num_heads, N, N)
            attn = nn.functional.softmax(attn, dim=-1, dtype=attn.dtype)
            attn = self.attn_drop(attn)
            x = (attn @ v).transpose(1, 2).reshape(B_, L, C)
            return self.proj(x)
""")


def _fix(source: str) -> str:
    return fix_text(source, "model.py", rules("ADP010")).text


def _variant(old: str, new: str) -> str:
    assert old in WINDOW
    return WINDOW.replace(old, new)


def _build(source: str):
    namespace: dict = {}
    exec(compile(source, "<fixture>", "exec"), namespace)  # noqa: S102 (our own fixture)
    return namespace["WindowAttention"]


def _check_exact(source: str, must_fix: bool = True) -> None:
    fixed = _fix(source)
    if not must_fix and fixed == source:
        return
    assert fixed != source and "scaled_dot_product_attention" in fixed
    torch.manual_seed(0)
    original = _build(source)().double().eval()
    patched = _build(fixed)().double().eval()
    patched.load_state_dict(original.state_dict())
    x = torch.randn(8, 16, 16, dtype=torch.float64)  # 2 images of 4 windows, 16 tokens each
    mask = torch.zeros(4, 16, 16, dtype=torch.float64)
    mask[1:, :, 8:] = -100.0
    for given in (None, mask):
        with torch.no_grad():
            assert torch.allclose(original(x, given), patched(x, given), atol=1e-10)


def test_shape_item_before_the_shift_view_fixed_exactly():
    _check_exact(WINDOW)


def test_shape_item_read_by_size_fixed_exactly():
    _check_exact(_variant("N = attn.shape[3]", "N = attn.size(3)"))


def test_softmax_in_its_inputs_own_dtype_fixed_exactly():
    _check_exact(_variant("N = attn.shape[3]", "N = L"))


def test_shape_read_after_the_view_declined():
    # an item read of the scores viewed to (images, windows, heads, N, N): the windows' axis,
    # which q and k do not give (the product's own axis 1 is the heads')
    source = _variant("            attn = attn.view(-1, self.num_heads, N, N)\n",
                      "            windows = attn.shape[1]\n"
                      "            attn = attn.view(-1, self.num_heads, N, N) * (windows / nW)\n")
    fixed = _fix(source)
    # that read is never made of q and k: the branch holding it runs as written (guarded)
    assert fixed.count("windows = attn.shape[1]") == 1 and "windows = (" not in fixed
    _check_exact(source, must_fix=False)


def test_shape_item_of_a_head_regrouping_view_declined():
    # the scores regrouped with the heads folded into the windows' axis before the mask: the
    # shift mask is added per (window, head) row, no fold of it into q's layout is read
    source = _variant("attn.view(B_ // nW, nW, self.num_heads, N, N) + mask.unsqueeze(1).unsqueeze(0)",
                      "attn.view(B_ // nW, nW * self.num_heads, N, N) + mask.repeat(self.num_heads, 1, 1).unsqueeze(0)")
    _check_exact(source, must_fix=False)  # where it is fixed, it must be exact


def test_softmax_in_another_tensors_dtype_is_fixed_behind_a_dtype_guard():
    # declined until session 35; rafix56 fuses a softmax in v's dtype where the guard sees v, the
    # bias and the mask in q's dtype (the scores then are in v's dtype already), and runs the
    # original otherwise
    source = _variant("dtype=attn.dtype", "dtype=v.dtype")
    fixed = _fix(source)
    assert "v.dtype != q.dtype" in fixed
    _check_exact(source)
