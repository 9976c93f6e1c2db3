"""Probabilities a caller reads, and binds again, only inside one ``if`` whose test reads
parameters it never rebinds (torchtext's T5: ``if need_weights:`` averages them over the heads,
squeezes them under a test of its own, and returns them; otherwise ``None`` goes back): the
caller passes that test as the flag (``weights.Decline._used_under_one_if``), so a call that
does not want them takes the fused path.  Near-misses keep the original path: a read after the
``if``, a binding outside it, a test of a name the caller assigns, the ``if`` inside a loop.

The modules are written for these tests; the fixed ones run beside the originals in float64
(outputs, input and parameter gradients; eval and train), the fused calls counted.
"""

from __future__ import annotations

import textwrap

import pytest

torch = pytest.importorskip("torch")

from sdpa_modules import Counter, load, sdpa_fixed  # noqa: E402

SOURCE = textwrap.dedent('''
    import math
    import torch
    from torch import nn
    import torch.nn.functional as F


    def attend(q, k, v, bias):
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(q.size(-1))
        scores = scores + bias
        probs = F.softmax(scores, dim=-1)
        return torch.matmul(probs, v), probs


    class Base(nn.Module):
        def __init__(self, dim=16, heads=2):
            super().__init__()
            self.heads = heads
            self.qkv = nn.Linear(dim, 3 * dim)
            self.out = nn.Linear(dim, dim)
            self.bias = nn.Parameter(torch.randn(heads, 1, 1) * 0.1)

        def split(self, x):
            B, N, C = x.shape
            return self.qkv(x).view(B, N, 3, self.heads, C // self.heads).permute(2, 0, 3, 1, 4)

        def merge(self, ctx):
            B, H, N, D = ctx.shape
            return self.out(ctx.transpose(1, 2).reshape(B, N, H * D))


    class Gated(Base):
        def forward(self, x, need_weights: bool = True, average: bool = False):
            batched = x.dim() == 3
            if not batched:
                x = x.unsqueeze(0)
            q, k, v = self.split(x)
            ctx, w = attend(q, k, v, self.bias)
            out = self.merge(ctx)
            if need_weights:
                if average:
                    w = w.sum(dim=1) / self.heads
                if not batched:
                    out = out.squeeze(0)
                    w = w.squeeze(0)
                return out, w
            if not batched:
                out = out.squeeze(0)
            return out, None


    class ReadAfter(Base):
        def forward(self, x, need_weights: bool = True):
            q, k, v = self.split(x)
            ctx, w = attend(q, k, v, self.bias)
            out = self.merge(ctx)
            if need_weights:
                w = w.mean(dim=1)
            return out, w


    class BoundOutside(Base):
        def forward(self, x, need_weights: bool = True):
            q, k, v = self.split(x)
            ctx, w = attend(q, k, v, self.bias)
            w = w * 1.0
            out = self.merge(ctx)
            if need_weights:
                w = w.mean(dim=1)
                return out, w
            return out, None


    class Assigned(Base):
        def forward(self, x, need_weights: bool = True):
            q, k, v = self.split(x)
            ctx, w = attend(q, k, v, self.bias)
            out = self.merge(ctx)
            show = need_weights and out.sum() > 0
            if show:
                w = w.mean(dim=1)
                return out, w
            return out, None


    class Looped(Base):
        def forward(self, x, need_weights: bool = True):
            maps = None
            for _ in range(2):
                q, k, v = self.split(x)
                ctx, w = attend(q, k, v, self.bias)
                x = x + self.merge(ctx)
                if need_weights:
                    w = w.mean(dim=1)
                    maps = w
            return x, maps
''')


@pytest.fixture(scope="module")
def fixed() -> str:
    return sdpa_fixed(SOURCE)


def body(text: str, name: str) -> str:
    return text.split(f"class {name}(")[1].split("\nclass ")[0]


def test_the_caller_passes_the_test_it_reads_them_under(fixed):
    assert "def attend(q, k, v, bias, need_attn_weights: bool = True):" in fixed
    assert "ctx, w = attend(q, k, v, self.bias, need_attn_weights=need_weights)" in body(fixed, "Gated")
    for name in ("ReadAfter", "BoundOutside", "Assigned", "Looped"):
        assert "ctx, w = attend(q, k, v, self.bias)\n" in body(fixed, name), name


def test_without_a_run_of_the_near_misses_alone_nothing_is_fixed():
    from adopter.synth import fix_text
    from sdpa_modules import RULES

    alone = SOURCE.split("class Gated(")[0] + "class ReadAfter(" + SOURCE.split("class ReadAfter(")[1]
    result = fix_text(alone, "attention.py", RULES)
    assert not result.applied
    assert any("no caller in this file declines it" in why for _, why in result.skipped)


@pytest.mark.parametrize("kwargs, unbatched, fused", [
    ({}, False, 0), ({"need_weights": False}, False, 1), ({"need_weights": False}, True, 1),
    ({"average": True}, False, 0), ({"average": True}, True, 0),
])
@pytest.mark.parametrize("training", [False, True])
def test_the_fixed_module_computes_what_the_original_did(fixed, kwargs, unbatched, fused, training):
    original, patched = load(SOURCE, "original"), load(fixed, "patched")
    counter = Counter(patched)
    torch.manual_seed(0)
    one = original["Gated"]().double().train(training)
    two = patched["Gated"]().double().train(training)
    two.load_state_dict(one.state_dict())
    x = torch.randn(5, 16, dtype=torch.float64) if unbatched else torch.randn(2, 5, 16, dtype=torch.float64)
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    out_a, w_a = one(xa, **kwargs)
    out_b, w_b = two(xb, **kwargs)
    assert counter.calls == fused
    # float64 over 5 keys and 8 channels per head: torch.testing's float64 defaults
    torch.testing.assert_close(out_b, out_a)
    if w_a is None:
        assert w_b is None
    else:
        torch.testing.assert_close(w_b, w_a)
    weight = torch.randn_like(out_a)
    loss_a = (weight * out_a).sum() + (0 if w_a is None else w_a.square().sum())
    loss_b = (weight * out_b).sum() + (0 if w_b is None else w_b.square().sum())
    loss_a.backward()
    loss_b.backward()
    torch.testing.assert_close(xb.grad, xa.grad)
    grads = dict(one.named_parameters())
    for name, param in two.named_parameters():
        torch.testing.assert_close(param.grad, grads[name].grad, msg=name)


STORED = textwrap.dedent('''
    import math
    import torch
    from torch import nn
    import torch.nn.functional as F


    class Scaled(nn.Module):
        def forward(self, q, k, v):
            scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(q.size(-1))
            probs = F.softmax(scores, dim=-1)
            return torch.matmul(probs, v), probs


    class Heads(nn.Module):
        def __init__(self):
            super().__init__()
            self.sdpa = Scaled()
            self.attn = None

        def forward(self, q, k, v):
            x, self.attn = self.sdpa(q, k, v)
            return x
''')


def test_a_caller_storing_them_on_the_module_is_named_in_the_reason():
    from adopter.synth import fix_text
    from sdpa_modules import RULES

    result = fix_text(STORED, "attention.py", RULES)
    assert not result.applied
    reasons = [why for _, why in result.skipped]
    assert any("no caller in this file declines it" in why and
               "a caller stores them in `self.attn` (line 22) on every call" in why for why in reasons), reasons
    # without the storing caller: the reason as it was
    alone = fix_text(STORED.split("class Heads(")[0], "attention.py", RULES)
    assert all("stores them" not in why for _, why in alone.skipped)
