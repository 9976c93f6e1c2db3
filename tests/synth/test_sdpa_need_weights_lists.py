"""Probabilities a caller appends to a list of its own (``attns.append(attn)`` in the loop over
its layers): the caller declines them where nothing reads the list (``need_weights=False``), and
passes its own condition where it reads the list only under an ``if`` of a parameter it never
reassigns (or past ``if not flag: return``); a list returned, stored or read unconditionally
keeps the original path.  Layers held as rows of an empty ``ModuleList`` grown by ``append``
(``for attn, ff in self.layers``) are calls of the attention where every row holds it at the
same place.

The modules are written for these tests; the fixed ones run beside the originals in float64
(outputs, input and parameter gradients; eval and train), the fused calls counted.
"""

from __future__ import annotations

import textwrap

import pytest

torch = pytest.importorskip("torch")

from sdpa_modules import Counter, assert_same_step, load, sdpa_fixed  # noqa: E402

LISTED = textwrap.dedent('''
    import math
    import torch
    from torch import nn
    import torch.nn.functional as F


    def attend(q, k, v, mask=None):
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(q.size(-1))
        if mask is not None:
            scores = scores.masked_fill(mask, -1e9)
        probs = F.softmax(scores, dim=-1)
        return torch.matmul(probs, v), probs


    class Heads(nn.Module):
        def __init__(self, dim=16, heads=2):
            super().__init__()
            self.heads = heads
            self.qkv = nn.Linear(dim, 3 * dim)
            self.out = nn.Linear(dim, dim)

        def forward(self, x):
            B, N, C = x.shape
            q, k, v = self.qkv(x).view(B, N, 3, self.heads, C // self.heads).permute(2, 0, 3, 1, 4)
            ctx, probs = attend(q, k, v)
            return self.out(ctx.transpose(1, 2).reshape(B, N, C)), probs


    class Stack(nn.Module):
        def __init__(self, dim=16, depth=2):
            super().__init__()
            self.layers = nn.ModuleList([Heads(dim) for _ in range(depth)])

        def forward(self, x):
            maps = []
            for layer in self.layers:
                x, m = layer(x)
                maps.append(m)
            return x


    class Shown(nn.Module):
        def __init__(self, dim=16, depth=2):
            super().__init__()
            self.layers = nn.ModuleList([Heads(dim) for _ in range(depth)])

        def forward(self, x, return_maps: bool = False):
            maps = []
            for layer in self.layers:
                x, m = layer(x)
                maps.append(m)
            if return_maps:
                return x, torch.stack(maps)
            return x


    class Kept(nn.Module):
        def __init__(self, dim=16, depth=2):
            super().__init__()
            self.layers = nn.ModuleList([Heads(dim) for _ in range(depth)])

        def forward(self, x):
            maps = []
            for layer in self.layers:
                x, m = layer(x)
                maps.append(m)
            return x, maps


    class Stored(nn.Module):
        def __init__(self, dim=16, depth=2):
            super().__init__()
            self.layers = nn.ModuleList([Heads(dim) for _ in range(depth)])

        def forward(self, x):
            maps = []
            for layer in self.layers:
                x, m = layer(x)
                maps.append(m)
            self.maps = maps
            return x


    class Rows(nn.Module):
        def __init__(self, dim=16, depth=2):
            super().__init__()
            self.layers = nn.ModuleList([])
            for _ in range(depth):
                self.layers.append(nn.ModuleList([Heads(dim), nn.Linear(dim, dim)]))

        def forward(self, x, return_maps=False):
            maps = []
            for attn, ff in self.layers:
                y, m = attn(x)
                maps.append(m)
                x = ff(x + y)
            if not return_maps:
                return x
            return x, torch.stack(maps)


    class Swapped(nn.Module):
        def __init__(self, dim=16):
            super().__init__()
            self.layers = nn.ModuleList([])
            self.layers.append(nn.ModuleList([Heads(dim), nn.Linear(dim, dim)]))
            self.layers.append(nn.ModuleList([nn.Linear(dim, dim), Heads(dim)]))

        def forward(self, x):
            maps = []
            for attn, ff in self.layers:
                y, m = attn(x)
                maps.append(m)
            return x


    class Reassigned(nn.Module):
        def __init__(self, dim=16, depth=2):
            super().__init__()
            self.layers = nn.ModuleList([])
            for _ in range(depth):
                self.layers.append(nn.ModuleList([Heads(dim), nn.Linear(dim, dim)]))

        def forward(self, x, return_maps=False):
            maps = []
            for attn, ff in self.layers:
                y, m = attn(x)
                maps.append(m)
                x = ff(x + y)
            return_maps = return_maps or x.sum() > 0
            if not return_maps:
                return x
            return x, torch.stack(maps)


    class Refilled(nn.Module):
        def __init__(self, dim=16, depth=2):
            super().__init__()
            self.layers = nn.ModuleList([Heads(dim) for _ in range(depth)])

        def forward(self, x, maps):
            for layer in self.layers:
                x, m = layer(x)
                maps.append(m)
            return x
''')


@pytest.fixture(scope="module")
def fixed() -> str:
    return sdpa_fixed(LISTED)


def test_the_callers_decline_what_their_lists_never_show(fixed):
    assert "def attend(q, k, v, mask=None, need_weights: bool = True):" in fixed
    assert "ctx, probs = attend(q, k, v, need_weights=need_weights)" in fixed  # Heads hands them back
    stack, shown, kept, stored, refilled, rows, swapped, reassigned = (
        fixed.split(f"class {n}(")[1].split("\nclass ")[0]
        for n in ("Stack", "Shown", "Kept", "Stored", "Refilled", "Rows", "Swapped", "Reassigned"))
    assert "x, m = layer(x, need_weights=False)" in stack
    assert "x, m = layer(x, need_weights=return_maps)" in shown
    # rows appended to an empty ModuleList, the list read only past `if not return_maps: return x`
    assert "y, m = attn(x, need_weights=return_maps)" in rows
    # the attention at different places of the rows; the flag reassigned before its early return
    for body in (swapped, reassigned):
        assert "y, m = attn(x)\n" in body
    # returned, stored in an attribute, or a list the caller was given: the original path
    for body in (kept, stored, refilled):
        assert "x, m = layer(x)\n" in body


@pytest.mark.parametrize("name, kwargs, fused", [
    ("Stack", {}, 2), ("Shown", {}, 2), ("Shown", {"return_maps": True}, 0), ("Kept", {}, 0), ("Stored", {}, 0),
    ("Rows", {}, 2), ("Rows", {"return_maps": True}, 0), ("Swapped", {}, 0), ("Reassigned", {}, 0),
])
@pytest.mark.parametrize("training", [False, True])
def test_fixed_modules_compute_what_the_originals_did(fixed, name, kwargs, fused, training):
    original, patched = load(LISTED, "original"), load(fixed, "patched")
    counter = Counter(patched)
    torch.manual_seed(0)
    one = original[name]().double().train(training)
    two = patched[name]().double().train(training)
    two.load_state_dict(one.state_dict())
    x = torch.randn(2, 5, 16, dtype=torch.float64)

    def first(module):
        def run(x):
            out = module(x, **kwargs)
            return out[0] if isinstance(out, tuple) else out
        return run

    assert_same_step(first(one), first(two), [x])
    assert counter.calls == fused  # one fused call per layer where the probabilities are declined
    if name in ("Shown", "Rows") and kwargs:
        torch.testing.assert_close(two(x, **kwargs)[1], one(x, **kwargs)[1])
