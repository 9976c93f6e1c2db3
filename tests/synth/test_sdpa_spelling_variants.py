"""One causal/padded multi-head attention written in each spelling research code uses, one
axis at a time (the scores, the mask, the softmax, the dropout, the value product) and in a
few combinations: every variant is found, fixed, and the fixed module computes what the original
does (float64, outputs and input gradients, eval mode) with one fused call.

The spellings are the ones the issue lists for GPT / ViT / LLaMA-style code: ``@`` / matmul /
einsum products, ``.transpose(2, 3)`` / ``.mT`` / ``permute``, pre- and post-scaling,
``masked_fill`` from a registered ``tril`` buffer or a caller's mask, ``torch.where``, softmax as
a function, method, module or with ``dim=3`` on 4-D scores, float32 round trips.
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from sdpa_modules import Counter, load, sdpa_fixed  # noqa: E402

BASE = '''
import math
import torch
import torch.nn as nn
import torch.nn.functional as F


class Attention(nn.Module):
    def __init__(self, dim=16, heads=2, max_len=32):
        super().__init__()
        self.heads = heads
        self.head_dim = dim // heads
        self.scale = self.head_dim ** -0.5
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)
        self.attn_drop = nn.Dropout(0.1)
        self.softmax = nn.Softmax(dim=-1)
        self.register_buffer("bias", torch.tril(torch.ones(max_len, max_len)).view(1, 1, max_len, max_len))

    def forward(self, x, mask=None):
        B, T, C = x.shape
        q, k, v = self.qkv(x).split(C, dim=2)
        q = q.view(B, T, self.heads, self.head_dim).transpose(1, 2)
        k = k.view(B, T, self.heads, self.head_dim).transpose(1, 2)
        v = v.view(B, T, self.heads, self.head_dim).transpose(1, 2)
SCORES
MASK
PROBS
DROP
OUT
        y = y.transpose(1, 2).contiguous().view(B, T, C)
        return self.proj(y)
'''

SCORES = {
    "at": "att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(k.size(-1)))",
    "transpose23": "att = torch.matmul(q, k.transpose(2, 3)) / math.sqrt(self.head_dim)",
    "mT": "att = q @ k.mT * self.scale",
    "permute": "att = torch.matmul(q, k.permute(0, 1, 3, 2)) * self.scale",
    "einsum": "att = torch.einsum('bhid,bhjd->bhij', q, k) * self.scale",
    "einsum_spaced": "att = torch.einsum('b h i d, b h j d -> b h i j', q, k) * self.scale",
    "prescaled": "q = q * self.scale\natt = q @ k.transpose(-2, -1)",
    "divided": "att = q @ k.transpose(-1, -2) / self.head_dim ** 0.5",
    "shape_scale": "att = (q @ k.transpose(-2, -1)) * q.shape[-1] ** -0.5",
}
MASK = {
    "none": "",
    "tril_buffer": "att = att.masked_fill(self.bias[:, :, :T, :T] == 0, float('-inf'))",
    "tril_buffer_finite": "att = att.masked_fill(self.bias[:,:,:T,:T] == 0, -1e9)",
    "added": "if mask is not None:\n    att = att + mask",
    "filled": "if mask is not None:\n    att = att.masked_fill(mask == 0, float('-inf'))",
    "filled_min": "if mask is not None:\n    att = att.masked_fill(~mask, torch.finfo(att.dtype).min)",
    "triu_inline": ("causal = torch.triu(torch.ones(T, T, dtype=torch.bool, device=x.device), diagonal=1)\n"
                    "att = att.masked_fill(causal, float('-inf'))"),
    "where_full_like": "att = torch.where(self.bias[:, :, :T, :T].bool(), att, torch.full_like(att, float('-inf')))",
    "blend": "b = self.bias[:, :, :T, :T]\natt = att * b - 1e4 * (1 - b)",
}
PROBS = {
    "function": "att = F.softmax(att, dim=-1)",
    "method": "att = att.softmax(dim=-1)",
    "method_positional": "att = att.softmax(-1)",
    "module": "att = self.softmax(att)",
    "float_type_as": "att = F.softmax(att.float(), dim=-1).type_as(q)",
    "dtype_float32": "att = torch.softmax(att, dim=-1, dtype=torch.float32).to(q.dtype)",
    "dim3": "att = att.softmax(dim=3)",
}
DROP = {"none": "", "module": "att = self.attn_drop(att)",
        "function": "att = F.dropout(att, p=0.1, training=self.training)"}
OUT = {"at": "y = att @ v", "matmul": "y = torch.matmul(att, v)", "einsum": "y = torch.einsum('bhij,bhjd->bhid', att, v)"}

TABLES = {"SCORES": SCORES, "MASK": MASK, "PROBS": PROBS, "DROP": DROP, "OUT": OUT}
DEFAULT = {"SCORES": "at", "MASK": "none", "PROBS": "function", "DROP": "module", "OUT": "at"}
PAIRS = [("einsum", "tril_buffer", "module"), ("permute", "filled", "float_type_as"),
         ("prescaled", "where_full_like", "method_positional"), ("mT", "triu_inline", "dtype_float32"),
         ("transpose23", "blend", "module"), ("einsum_spaced", "added", "method")]


def _variants() -> dict[str, dict]:
    found = {"default": dict(DEFAULT)}
    for part, table in TABLES.items():
        for name in table:
            if name != DEFAULT[part]:
                found[f"{part.lower()}={name}"] = {**DEFAULT, part: name}
    for scores, mask, probs in PAIRS:
        found[f"{scores}+{mask}+{probs}"] = {**DEFAULT, "SCORES": scores, "MASK": mask, "PROBS": probs}
    return found


VARIANTS = _variants()


def _source(choice: dict) -> str:
    text = BASE
    for part, name in choice.items():
        lines = [("        " + line) for line in TABLES[part][name].split("\n") if TABLES[part][name]]
        text = text.replace(part + "\n", "".join(line + "\n" for line in lines))
    return text


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_each_spelling_is_fused_and_computes_the_same(name):
    source = _source(VARIANTS[name])
    original, new = load(source, "orig"), load(sdpa_fixed(source), "new")
    counter = Counter(new)
    torch.manual_seed(0)
    a = original["Attention"]().double().eval()
    b = new["Attention"]().double().eval()
    b.load_state_dict(a.state_dict(), strict=True)
    x = torch.randn(2, 6, 16, dtype=torch.float64)
    kwargs = {}
    if "mask is not None" in source:
        keep = torch.ones(2, 1, 6, 6, dtype=torch.bool)
        keep[1, :, :, -2:] = False  # padding: every query keeps some key
        additive = "att + mask" in source
        kwargs["mask"] = torch.zeros(2, 1, 6, 6, dtype=torch.float64).masked_fill(~keep, -1e9) if additive else keep
    xa, xb = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    out_a, out_b = a(xa, **kwargs), b(xb, **kwargs)
    # float64, reductions over 6 keys and 8 channels: the default float64 tolerances
    torch.testing.assert_close(out_b, out_a)
    out_a.sum().backward()
    out_b.sum().backward()
    torch.testing.assert_close(xb.grad, xa.grad)
    assert counter.calls == 1
