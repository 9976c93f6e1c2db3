"""Forms left by the blind batches of session 15 (helper misses16): our own fixtures, each with
near-misses that must not match."""

from __future__ import annotations

import textwrap

from corpus_forms import finding_at, found, rules

# ------------------------------------------------------------- a layer applied by a callable attribute

APPLIED = textwrap.dedent("""\
    import torch.nn as nn
    import torch.nn.functional as F
    from torch.utils.checkpoint import checkpoint


    class CheckpointedFeedForward(nn.Module):
        def __init__(self, d, h, ckpt=False):
            super().__init__()
            self.up = nn.Linear(d, h)
            self.gate = nn.Linear(d, h)
            self.down = nn.Linear(h, d)
            self.run = checkpoint if ckpt else lambda fn, t: fn(t)

        def forward(self, x):
            h = self.run(self.up, x)  # gelu-site
            h = F.gelu(h)
            return self.down(h)


    class GatedThroughLambda(nn.Module):
        def __init__(self, d, h):
            super().__init__()
            self.up = nn.Linear(d, h)
            self.gate = nn.Linear(d, h)
            self.down = nn.Linear(h, d)
            self.call = lambda fn, *xs: fn(*xs)

        def forward(self, x):
            h = F.silu(self.call(self.gate, x))  # swiglu-site
            h.mul_(self.call(self.up, x))
            return self.down(h)


    class ThroughMethod(nn.Module):
        def __init__(self, d, h):
            super().__init__()
            self.up = nn.Linear(d, h)
            self.down = nn.Linear(h, d)

        def apply_layer(self, fn, t):
            return fn(t)

        def forward(self, x):
            return self.down(F.gelu(self.apply_layer(self.up, x)))  # method-site
    """)

NOT_APPLIED = textwrap.dedent("""\
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
    from torch.utils.checkpoint import checkpoint


    class OtherChoice(nn.Module):
        def __init__(self, d, h, ckpt=False):
            super().__init__()
            self.up = nn.Linear(d, h)
            self.down = nn.Linear(h, d)
            self.run = checkpoint if ckpt else lambda fn, t: fn(t) * 2

        def forward(self, x):
            return self.down(F.gelu(self.run(self.up, x)))  # scaled-choice


    class SwappedArguments(nn.Module):
        def __init__(self, d, h):
            super().__init__()
            self.up = nn.Linear(d, h)
            self.down = nn.Linear(h, d)
            self.run = lambda t, fn: fn(t)

        def forward(self, x):
            return self.down(F.gelu(self.run(self.up, x)))  # swapped


    class OtherArgument(nn.Module):
        def __init__(self, d, h):
            super().__init__()
            self.up = nn.Linear(d, h)
            self.down = nn.Linear(h, d)
            self.run = lambda fn, t, u: fn(u)

        def forward(self, x, y):
            return self.down(F.gelu(self.run(self.up, x, y)))  # other-argument


    class Rebound(nn.Module):
        def __init__(self, d, h, fancy=False):
            super().__init__()
            self.up = nn.Linear(d, h)
            self.down = nn.Linear(h, d)
            self.run = lambda fn, t: fn(t)
            if fancy:
                self.run = torch.vmap

        def forward(self, x):
            return self.down(F.gelu(self.run(self.up, x)))  # rebound


    class MethodDoingMore(nn.Module):
        def __init__(self, d, h):
            super().__init__()
            self.up = nn.Linear(d, h)
            self.down = nn.Linear(h, d)

        def apply_layer(self, fn, t):
            return fn(t.flip(-1))

        def forward(self, x):
            return self.down(F.gelu(self.apply_layer(self.up, x)))  # method-more
    """)


def test_a_layer_applied_by_a_callable_attribute_is_the_layer_s_call():
    assert finding_at(APPLIED, "ADP006", "# gelu-site") is not None
    assert finding_at(APPLIED, "ADP013", "# swiglu-site") is not None
    assert finding_at(APPLIED, "ADP006", "# method-site") is not None


def test_callables_that_do_not_apply_their_first_argument_to_the_rest_are_not_read_through():
    assert found(NOT_APPLIED, "ADP006") == []


def test_a_layer_applied_by_a_callable_is_reported_not_fixed():
    # the callable may checkpoint the layer (or do more): a fused call would drop that
    from adopter.synth import fix_text

    fixed = fix_text(APPLIED, "model.py", rules("ADP006"))
    assert fixed.error is None and fixed.text == APPLIED and not fixed.applied
    assert len(fixed.skipped) == 2 and all(
        "runs through" in why for _, why in fixed.skipped
    )


# ------------------------------------------------------------- a Linear whose input is computed in its statement

RESHAPED = textwrap.dedent("""\
    import torch
    from torch import nn


    class Encoder(nn.Module):
        def __init__(self, c, f, h):
            super().__init__()
            self.c, self.f, self.h = c, f, h
            self.fc1 = nn.Linear(c * f, h, bias=False)
            self.bn1 = nn.BatchNorm1d(h)
            self.fc2 = nn.Linear(h, h)
            self.bn2 = nn.BatchNorm1d(h)

        def forward(self, x):
            frames, batch = x.shape[0], x.shape[1]
            x = self.fc1(x.reshape(-1, self.c * self.f))  # first-pair
            x = self.bn1(x)
            x = torch.tanh(x)
            x = self.fc2(x.reshape(-1, x.shape[-1]))  # second-pair
            x = self.bn2(x)
            return x.reshape(frames, batch, self.h)
    """)

RESHAPED_APART = textwrap.dedent("""\
    import torch
    from torch import nn


    class Apart(nn.Module):
        def __init__(self, c, h):
            super().__init__()
            self.c = c
            self.fc1 = nn.Linear(c, h, bias=False)
            self.bn1 = nn.BatchNorm1d(h)

        def forward(self, x):
            h = self.fc1(x.reshape(-1, self.c))  # apart-pair
            x.mul_(2.0)
            return self.bn1(h), x
    """)


def test_a_linear_input_computed_in_its_statement_moves_into_the_fused_call():
    import pytest

    torch = pytest.importorskip("torch")
    pytest.importorskip("adopter_kernels")
    from adopter.synth import fix_text

    assert finding_at(RESHAPED, "ADP008", "# first-pair") is not None
    assert finding_at(RESHAPED, "ADP008", "# second-pair") is not None
    fixed = fix_text(RESHAPED, "model.py", rules("ADP008"))
    assert fixed.error is None and len(fixed.applied) == 2, fixed.skipped
    assert "linear_bn(x.reshape(-1, self.c * self.f), self.fc1, self.bn1)" in fixed.text
    assert "linear_bn(x.reshape(-1, x.shape[-1]), self.fc2, self.bn2)" in fixed.text
    compile(fixed.text, "fixed.py", "exec")
    original, patched = {}, {}
    exec(compile(RESHAPED, "orig.py", "exec"), original)  # noqa: S102 (our own fixture)
    exec(compile(fixed.text, "fixed.py", "exec"), patched)  # noqa: S102
    torch.manual_seed(0)
    a = original["Encoder"](2, 3, 5).double()
    b = patched["Encoder"](2, 3, 5).double()
    with torch.no_grad():
        for m in a.modules():
            if isinstance(m, torch.nn.BatchNorm1d):
                m.running_mean.uniform_(-1, 1)
                m.running_var.uniform_(0.5, 2)
    b.load_state_dict(a.state_dict(), strict=True)
    a.eval()
    b.eval()
    x = torch.randn(4, 3, 2, 3, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(b(x), a(x))


def test_a_computed_input_does_not_move_past_a_statement_kept_between():
    from adopter.synth import fix_text

    # (an in-place step on x between them: the reshape would read x after it)
    assert finding_at(RESHAPED_APART, "ADP008", "# apart-pair") is not None
    fixed = fix_text(RESHAPED_APART, "model.py", rules("ADP008"))
    assert not fixed.applied and fixed.text == RESHAPED_APART
    why = "the statement at line 13 also computes `x.reshape(-1, self.c)`, and other statements run before"
    assert [reason for _, reason in fixed.skipped] == [why + " the fused call would"]


# ------------------------------------------------------------- an nn.Sequential attribute ending in a Linear

SEQUENTIAL_END = textwrap.dedent("""\
    import torch.nn.functional as F
    from torch import nn


    class Stem(nn.Module):
        def __init__(self, d, h):
            super().__init__()
            self.embed = nn.Sequential(nn.LayerNorm(d), nn.Linear(d, h))
            self.act = nn.GELU()
            self.out = nn.Linear(h, d)

        def forward(self, x):
            return self.out(self.act(self.embed(x)))  # seq-gelu


    class Folded(nn.Module):
        def __init__(self, d, h):
            super().__init__()
            self.proj = nn.Sequential(nn.ReLU(), nn.Linear(d, h))
            self.bn = nn.BatchNorm1d(h)

        def forward(self, x):
            return self.bn(self.proj(x))  # seq-bn


    class LanguageModel(nn.Module):
        def __init__(self, vocab, d):
            super().__init__()
            self.tokens = nn.Embedding(vocab, d)
            self.head = nn.Sequential(nn.LayerNorm(d), nn.Linear(d, vocab))

        def forward(self, ids, labels):
            logits = self.head(self.tokens(ids))  # seq-head
            return F.cross_entropy(logits.view(-1, logits.size(-1)), labels.view(-1))
    """)

SEQUENTIAL_NOT_LINEAR = textwrap.dedent("""\
    from torch import nn


    class EndsInDropout(nn.Module):
        def __init__(self, d, h):
            super().__init__()
            self.embed = nn.Sequential(nn.Linear(d, h), nn.Dropout(0.1))
            self.act = nn.GELU()

        def forward(self, x):
            return self.act(self.embed(x))


    class EndsInAChoice(nn.Module):
        def __init__(self, d, h, project=True):
            super().__init__()
            self.embed = nn.Sequential(nn.LayerNorm(d), nn.Linear(d, h) if project else nn.Identity())
            self.act = nn.GELU()

        def forward(self, x):
            return self.act(self.embed(x))


    class EndsInLinearThenReLU(nn.Module):
        def __init__(self, d, h):
            super().__init__()
            self.embed = nn.Sequential(nn.LayerNorm(d), nn.Linear(d, h))
            self.act = nn.ReLU()

        def forward(self, x):
            return self.act(self.embed(x))
    """)


def test_a_sequential_attribute_ending_in_a_linear_gives_that_linear_s_output():
    from adopter.synth import fix_text

    assert finding_at(SEQUENTIAL_END, "ADP006", "# seq-gelu") is not None
    assert finding_at(SEQUENTIAL_END, "ADP008", "# seq-bn") is not None
    # the Linear is inside the container: reported, not fixed
    fixed = fix_text(SEQUENTIAL_END, "model.py", rules("ADP006", "ADP008"))
    assert fixed.error is None and not fixed.applied and fixed.text == SEQUENTIAL_END


def test_a_sequential_lm_head_stays_one_head_at_its_call():
    (head,) = found(SEQUENTIAL_END, "ADP015")
    line = next(
        n
        for n, text in enumerate(SEQUENTIAL_END.splitlines(), 1)
        if "# seq-head" in text
    )
    assert head.line == line


def test_sequential_attributes_not_ending_in_a_linear_give_no_linear_output():
    assert found(SEQUENTIAL_NOT_LINEAR, "ADP006") == []


# ------------------------------------------------------------- a one-tensor rotary module, partial rotary

ROTARY_MODULES = textwrap.dedent("""\
    import torch
    from torch import nn


    class WholeRotary(nn.Module):
        def swap(self, t):
            mid = t.shape[-1] // 2
            return torch.cat((-t[..., mid:], t[..., :mid]), dim=-1)  # whole-rot

        def forward(self, t, cos, sin):
            return t * cos + self.swap(t) * sin


    class PartialRotary(nn.Module):
        def __init__(self, width):
            super().__init__()
            self.width = width

        def swap(self, t):
            mid = self.width // 2
            return torch.cat([-t[:, :, :, mid:], t[:, :, :, :mid]], dim=-1)  # partial-rot

        def forward(self, t, cos, sin):
            rot, rest = t[..., : self.width], t[..., self.width :]
            turned = self.swap(rot)
            rot = (rot * cos) + (turned * sin)
            return torch.cat((rot, rest), dim=-1)


    class InlinePartialRotary(nn.Module):
        def __init__(self, width):
            super().__init__()
            self.width = width

        def forward(self, t, cos, sin):
            rot = t[..., : self.width]
            mid = self.width // 2
            turned = torch.cat((-rot[..., mid:], rot[..., :mid]), dim=-1)  # inline-rot
            rot = rot * cos + turned * sin
            return torch.cat((rot, t[..., self.width :]), dim=-1)


    class Attention(nn.Module):
        def __init__(self, width):
            super().__init__()
            self.q_rotary = PartialRotary(width)
            self.k_rotary = PartialRotary(width)

        def forward(self, q, k, cos, sin):
            return self.q_rotary(q, cos, sin) @ self.k_rotary(k, cos, sin).transpose(-1, -2)
    """)

ROTARY_NEAR_MISSES = textwrap.dedent("""\
    import torch
    from torch import nn


    class OwnTables(nn.Module):
        def forward(self, q, k, q_cos, q_sin, k_cos, k_sin):
            h = q.shape[-1] // 2
            g = k.shape[-1] // 2
            q = q * q_cos + torch.cat((-q[..., h:], q[..., :h]), dim=-1) * q_sin
            k = k * k_cos + torch.cat((-k[..., g:], k[..., :g]), dim=-1) * k_sin
            return q + k


    class OnlyOneRead(nn.Module):
        def forward(self, q, k, cos, sin):
            h = q.shape[-1] // 2
            q = q * cos + torch.cat((-q[..., h:], q[..., :h]), dim=-1) * sin
            k = k * cos + torch.stack((-k[..., 1::2], k[..., ::2]), dim=-1).flatten(-2) * sin
            return q, k


    class NotSliced(nn.Module):
        def __init__(self, width):
            super().__init__()
            self.width = width

        def swap(self, t):
            mid = self.width // 2
            return torch.cat((-t[..., mid:], t[..., :mid]), dim=-1)

        def forward(self, t, cos, sin):
            return (t * cos) + (self.swap(t) * sin)


    class OtherWidth(nn.Module):
        def __init__(self, width, other):
            super().__init__()
            self.width, self.other = width, other

        def swap(self, t):
            mid = self.other // 2
            return torch.cat((-t[..., mid:], t[..., :mid]), dim=-1)

        def forward(self, t, cos, sin):
            rot = t[..., : self.width]
            return (rot * cos) + (self.swap(rot) * sin)


    class PickedRow(nn.Module):
        def __init__(self, width):
            super().__init__()
            self.width = width

        def swap(self, t):
            mid = self.width // 2
            return torch.cat((-t[0, :, :, mid:], t[0, :, :, :mid]), dim=-1)

        def forward(self, t, cos, sin):
            rot = t[..., : self.width]
            return (rot * cos) + (self.swap(rot) * sin)


    class Rebound(nn.Module):
        def __init__(self, width):
            super().__init__()
            self.width = width

        def swap(self, t):
            t = torch.cat((t, t), dim=-1)
            mid = self.width // 2
            return torch.cat((-t[..., mid:], t[..., :mid]), dim=-1)

        def forward(self, t, cos, sin):
            rot = t[..., : self.width]
            return (rot * cos) + (self.swap(rot) * sin)
    """)


def test_a_one_tensor_rotary_module_rotating_its_own_input_is_a_rope_site():
    assert finding_at(ROTARY_MODULES, "ADP014", "# whole-rot") is not None
    # partial rotary: the first `width` features, their halves at width // 2 (in a method, the
    # caller's slice; in forward, the name's own)
    assert finding_at(ROTARY_MODULES, "ADP014", "# partial-rot") is not None
    assert finding_at(ROTARY_MODULES, "ADP014", "# inline-rot") is not None
    assert len(found(ROTARY_MODULES, "ADP014")) == 3


def test_rotations_that_are_not_one_tensor_s_rope_halves_are_not_sites():
    assert found(ROTARY_NEAR_MISSES, "ADP014") == []
