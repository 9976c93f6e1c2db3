"""A mask the code *adds* to the scores, handed in as a bool (or integer) tensor.

``scores + mask`` with a bool ``mask`` adds 1 where it is True; ``scaled_dot_product_attention``
reads a bool ``attn_mask`` as keep (True) / drop (False), which is another computation.  Code
written for additive masks is normally handed float ones (Hugging Face builds them with
``finfo.min``), but nothing in the code says so, and verify found the difference on CLIPSeg's
attention (a bool causal mask: output off by 0.55).  The guard the fixer writes for an additive
mask held in a name now sends a mask that is not floating point to the original path (a dtype
test: no device sync, no graph break), while float masks keep the fused call.  Fixtures ours;
float64, a handful of keys: ``torch.testing``'s float64 defaults.
"""

from __future__ import annotations

import textwrap

import pytest

torch = pytest.importorskip("torch")

from sdpa_modules import Counter, assert_same_step, load, sdpa_fixed  # noqa: E402

SOURCE = textwrap.dedent('''\
    import math
    import torch
    from torch import nn


    class Attention(nn.Module):
        def __init__(self, dim=8, heads=2):
            super().__init__()
            self.heads = heads
            self.qkv = nn.Linear(dim, dim * 3)
            self.out = nn.Linear(dim, dim)

        def forward(self, x, mask=None):
            b, n, _ = x.shape
            q, k, v = self.qkv(x).view(b, n, 3, self.heads, -1).permute(2, 0, 3, 1, 4)
            scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(q.size(-1))
            if mask is not None:
                scores = scores + mask
            probs = scores.softmax(dim=-1)
            out = torch.matmul(probs, v)
            return self.out(out.transpose(1, 2).reshape(b, n, -1))
''')


def _pair():
    torch.manual_seed(0)
    original = load(SOURCE, "original")["Attention"]().double()
    namespace = load(sdpa_fixed(SOURCE), "patched")
    counter = Counter(namespace)
    patched = namespace["Attention"]().double()
    patched.load_state_dict(original.state_dict())
    return original, patched, counter


def _masks(n=5):
    keep = torch.ones(n, n, dtype=torch.bool).tril()[None, None]
    return {
        "float": torch.zeros(n, n, dtype=torch.float64).masked_fill(~keep[0, 0], torch.finfo(torch.float64).min)[None,
                                                                                                                  None],
        "bool": keep,
        "long": keep.long(),
    }


def test_the_guard_tests_the_mask_dtype():
    assert "not mask.is_floating_point()" in sdpa_fixed(SOURCE)


@pytest.mark.parametrize("train", [False, True])
@pytest.mark.parametrize("kind", ["float", "bool", "long"])
def test_patched_matches_for_every_mask_dtype(kind, train):
    original, patched, counter = _pair()
    original.train(train)
    patched.train(train)
    x = torch.randn(2, 5, 8, dtype=torch.float64)
    assert_same_step(original, patched, [x], mask=_masks()[kind])
    # a float mask takes the fused call; one that is not floating point the original path
    assert counter.calls == (1 if kind == "float" else 0)


def test_no_mask_takes_the_fused_call():
    original, patched, counter = _pair()
    x = torch.randn(2, 5, 8, dtype=torch.float64)
    assert_same_step(original, patched, [x])
    assert counter.calls == 1
