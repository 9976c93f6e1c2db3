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
