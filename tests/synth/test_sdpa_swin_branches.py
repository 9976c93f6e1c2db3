"""Swin's window attention as its reference code writes it: the softmax called in both branches
of ``if mask is not None`` (the shifted windows' mask added in one).  ADP010 matches once per
branch, over the same code; the masked branch's match reads both, and its one rewrite fuses the
attention for either branch.  ``check`` used to plan the two matches under one key and keep the
last verdict (the unmasked branch's, which cannot be planned alone), so it called the attention
not fixable while ``fix`` rewrote it.  The module is written for this test; the fixed one runs
beside the original in float64, forward and backward, with and without the mask.
"""

from __future__ import annotations

import json
import textwrap

import pytest

torch = pytest.importorskip("torch")

from sdpa_modules import Counter, assert_same_step, load, sdpa_fixed  # noqa: E402

from adopter.cli import main as adopter_main  # noqa: E402

F64 = torch.float64

WINDOW_ATTENTION = textwrap.dedent('''
    import torch
    import torch.nn as nn


    class WindowAttention(nn.Module):
        def __init__(self, dim=16, heads=2, window=4):
            super().__init__()
            self.num_heads = heads
            self.scale = (dim // heads) ** -0.5
            self.window = window
            self.relative_position_bias_table = nn.Parameter(torch.randn((2 * window - 1) ** 2, heads))
            coords = torch.stack(torch.meshgrid([torch.arange(window), torch.arange(window)], indexing="ij"))
            flat = torch.flatten(coords, 1)
            relative = (flat[:, :, None] - flat[:, None, :]).permute(1, 2, 0).contiguous()
            relative[:, :, 0] += window - 1
            relative[:, :, 1] += window - 1
            relative[:, :, 0] *= 2 * window - 1
            self.register_buffer("relative_position_index", relative.sum(-1))
            self.qkv = nn.Linear(dim, dim * 3)
            self.attn_drop = nn.Dropout(0.0)
            self.proj = nn.Linear(dim, dim)
            self.softmax = nn.Softmax(dim=-1)

        def forward(self, x, mask=None):
            B_, N, C = x.shape
            qkv = self.qkv(x).reshape(B_, N, 3, self.num_heads, C // self.num_heads).permute(2, 0, 3, 1, 4)
            q, k, v = qkv[0], qkv[1], qkv[2]
            q = q * self.scale
            attn = (q @ k.transpose(-2, -1))
            bias = self.relative_position_bias_table[self.relative_position_index.view(-1)].view(N, N, -1)
            attn = attn + bias.permute(2, 0, 1).contiguous().unsqueeze(0)
            if mask is not None:
                nW = mask.shape[0]
                attn = attn.view(B_ // nW, nW, self.num_heads, N, N) + mask.unsqueeze(1).unsqueeze(0)
                attn = attn.view(-1, self.num_heads, N, N)
                attn = self.softmax(attn)
            else:
                attn = self.softmax(attn)
            attn = self.attn_drop(attn)
            x = (attn @ v).transpose(1, 2).reshape(B_, N, C)
            return self.proj(x)
''')


def test_check_calls_both_branches_fixable(tmp_path, capsys):
    path = tmp_path / "swin.py"
    path.write_text(WINDOW_ATTENTION, encoding="utf-8")
    adopter_main(["check", "--no-config", "--select", "ADP010", "--output-format", "json", str(path)])
    findings = json.loads(capsys.readouterr().out)
    softmax_lines = [i for i, line in enumerate(WINDOW_ATTENTION.splitlines(), 1) if "self.softmax(attn)" in line]
    assert len(findings) == 2 and len(softmax_lines) == 2  # one per branch's softmax, as labelled
    assert all(f["line"] <= line <= f["end_line"] for f in findings for line in softmax_lines)
    assert [f["fixable"] for f in findings] == [True, True], [f["not_fixable"] for f in findings]


@pytest.mark.parametrize("masked", [False, True])
def test_the_one_rewrite_matches_both_branches(masked):
    original, new = load(WINDOW_ATTENTION, "orig"), load(sdpa_fixed(WINDOW_ATTENTION), "new")
    counter = Counter(new)
    torch.manual_seed(0)
    a = original["WindowAttention"]().to(F64)
    b = new["WindowAttention"]().to(F64)
    b.load_state_dict(a.state_dict(), strict=True)
    x = torch.randn(6, 16, 16, dtype=F64)  # 2 images of 3 windows, 16 tokens each
    kwargs = {}
    if masked:
        mask = torch.zeros(3, 16, 16, dtype=F64)
        mask[1, :, 8:] = -100.0  # the shifted window's tokens from elsewhere
        kwargs["mask"] = mask
    assert_same_step(a, b, [x], **kwargs)
    assert counter.calls == 1
