"""Forms found missing while checking the blind batch research41 (official code of well-known
papers on PyPI: Depth Anything 3, MIT's EfficientViT).  The fixtures are ours.

- ADP010: a private method that runs the module's own layers and that nothing in the file
  names (Depth Anything 3's ``Attention._forward``: the manual attention kept beside a
  ``forward`` that calls SDPA) is an alternative forward other files or subclasses call:
  structure/model.py's reachability now takes it as an entry point, as it takes a public
  method that runs the module's layers.  A private method the file calls stays what its
  callers make it (a fallback of SDPA is not reported); one that runs no layer of its own is
  not an entry point.
"""

from __future__ import annotations

import textwrap

from corpus_forms import covered, findings

from adopter.synth import fix_text
from corpus_forms import rules

# ---------------------------------------------------------------- ADP010: an uncalled private forward

PRIVATE = textwrap.dedent("""\
    import torch
    import torch.nn.functional as F
    from torch import nn


    class Attention(nn.Module):
        def __init__(self, dim, heads=8, fused=True):
            super().__init__()
            self.heads = heads
            self.scale = (dim // heads) ** -0.5
            self.fused = fused
            self.qkv = nn.Linear(dim, dim * 3)
            self.attn_drop = nn.Dropout(0.0)
            self.proj = nn.Linear(dim, dim)

        def forward(self, x):
            B, N, C = x.shape
            q, k, v = self.qkv(x).reshape(B, N, 3, self.heads, C // self.heads).permute(2, 0, 3, 1, 4)
            if self.fused:
                x = F.scaled_dot_product_attention(q, k, v)
            else:
                a = (q * self.scale) @ k.transpose(-2, -1)
                a = a.softmax(dim=-1)
                x = a @ v
            return self.proj(x.transpose(1, 2).reshape(B, N, C))

        def _forward(self, x):
            B, N, C = x.shape
            qkv = self.qkv(x).reshape(B, N, 3, self.heads, C // self.heads).permute(2, 0, 3, 1, 4)
            q, k, v = qkv[0] * self.scale, qkv[1], qkv[2]
            attn = q @ k.transpose(-2, -1)
            attn = attn.softmax(dim=-1)
            attn = self.attn_drop(attn)
            x = (attn @ v).transpose(1, 2).reshape(B, N, C)
            return self.proj(x)


    class CalledFallback(nn.Module):
        def __init__(self, dim, heads=8):
            super().__init__()
            self.heads = heads
            self.qkv = nn.Linear(dim, dim * 3)
            self.proj = nn.Linear(dim, dim)

        def forward(self, x):
            B, N, C = x.shape
            if hasattr(F, "scaled_dot_product_attention"):
                q, k, v = self.qkv(x).reshape(B, N, 3, self.heads, -1).permute(2, 0, 3, 1, 4)
                out = F.scaled_dot_product_attention(q, k, v)
                return self.proj(out.transpose(1, 2).reshape(B, N, C))
            else:
                return self._manual(x)

        def _manual(self, x):
            B, N, C = x.shape
            q, k, v = self.qkv(x).reshape(B, N, 3, self.heads, -1).permute(2, 0, 3, 1, 4)
            w = torch.softmax(q @ k.transpose(-2, -1) * (C // self.heads) ** -0.5, dim=-1)
            return self.proj((w @ v).transpose(1, 2).reshape(B, N, C))


    class Router(nn.Module):
        def __init__(self, dim, experts=4):
            super().__init__()
            self.gate = nn.Linear(dim, experts)
            self.experts = nn.ModuleList([nn.Linear(dim, dim) for _ in range(experts)])

        def forward(self, x):
            return self.experts[0](x)

        def _mix(self, x):
            weights = self.gate(x).softmax(dim=-1)
            outs = torch.stack([e(x) for e in self.experts], dim=-1)
            return (outs * weights.unsqueeze(-2)).sum(-1)


    class NoLayers(nn.Module):
        def __init__(self, dim):
            super().__init__()
            self.proj = nn.Linear(dim, dim)

        def forward(self, x):
            return self.proj(x)

        def _attend(self, q, k, v):
            return torch.softmax(q @ k.transpose(-2, -1), dim=-1) @ v
""")


def test_an_uncalled_private_forward_that_runs_the_modules_layers_is_read():
    assert covered(PRIVATE, "attn = attn.softmax(dim=-1)", "ADP010")


def test_it_is_fixed_and_the_fallback_branch_stays_alone():
    hits = findings(PRIVATE, "ADP010")
    assert [(f.class_name, f.line) for f in hits] == [("Attention", PRIVATE.splitlines().index(
        "        attn = q @ k.transpose(-2, -1)") + 1)]
    result = fix_text(PRIVATE, "model.py", rules("ADP010"))
    assert result.applied
    head, private = result.text.split("def _forward")
    assert "dropout_p=self.attn_drop.p if self.training else 0.0, scale=1.0" in private
    assert head.count("scaled_dot_product_attention(") == 1  # forward's own call, its else branch untouched


def test_a_private_method_the_file_calls_as_the_fallback_of_sdpa_is_not_reported():
    assert not covered(PRIVATE, "w = torch.softmax(q @ k.transpose(-2, -1) * (C // self.heads) ** -0.5, dim=-1)",
                       "ADP010")


def test_softmax_over_experts_in_an_uncalled_private_method_is_not_attention():
    assert not covered(PRIVATE, "weights = self.gate(x).softmax(dim=-1)", "ADP010")


def test_a_private_helper_that_runs_no_layer_of_its_own_is_not_an_entry_point():
    assert not covered(PRIVATE, "return torch.softmax(q @ k.transpose(-2, -1), dim=-1) @ v", "ADP010")
