"""research124 (session 46): blind batch of vision-transformer and vision-language research
code.  A manual attention that is the ``else`` arm of a kernel switch (``if use_kernel:
<custom kernel> else: <attention>``) and keeps its probabilities for the caller in the same arm
(``weights = probs``): a read after the attention in the attention's own arm runs wherever the
attention runs, so the arm's test is no condition the guard can send to the original.  Before,
the guard took ``not use_kernel`` -- always true inside that arm -- and the patch's fused path
never ran; now the read is unconditional and the fixer declines as it does for any probabilities
handed back on every call.  A read under a test of its own in that arm (``if need_weights:``)
still guards on that test, and the fused path runs (and computes what the original does: float64,
eval and train with no dropout, outputs and gradients).  Our own fixtures."""

from __future__ import annotations

import textwrap

from corpus_forms import finding_at, found, rules
from test_fix22_helper_declines import _same

from adopter.synth import fix_text

KERNEL_ARM = textwrap.dedent("""
    import math

    import torch
    import torch.nn as nn
    import torch.nn.functional as F


    def custom_kernel(q, k, v):
        return v[..., : q.shape[-2], :]


    class SwitchedAttention(nn.Module):
        def __init__(self, dim, heads=2, use_kernel=False):
            super().__init__()
            self.heads = heads
            self.use_kernel = use_kernel
            self.q = nn.Linear(dim, dim)
            self.kv = nn.Linear(dim, 2 * dim)
            self.out = nn.Linear(dim, dim)

        def forward(self, x, ctx, need_weights=False):
            b, n, d = x.shape
            q = self.q(x).view(b, n, self.heads, -1).transpose(1, 2)
            k, v = self.kv(ctx).view(b, ctx.shape[1], 2, self.heads, -1).permute(2, 0, 3, 1, 4)
            weights = None
            if self.use_kernel:
                o = custom_kernel(q, k, v)
            else:
                s = torch.matmul(q, k.transpose(-2, -1)) / math.sqrt(q.shape[-1])
                p = F.softmax(s, dim=-1)
                o = torch.matmul(p, v)
                WEIGHTS
            return self.out(o.transpose(1, 2).reshape(b, n, d)), weights
""")


def _FirstOutput(inner):
    """The module's output alone (the weights, None here, left out of the comparison)."""
    import torch

    class FirstOutput(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = inner

        def forward(self, *args):
            return self.inner(*args)[0]

    return FirstOutput()


def _code(weights: str) -> str:
    return KERNEL_ARM.replace("WEIGHTS", weights)


def test_probabilities_kept_in_the_attentions_own_arm_are_read_wherever_it_runs():
    # `weights = p` in the else arm of `if self.use_kernel:`: no guard sends that arm's calls to
    # the original and still lets the fused path run -- declined, not a patch that never fuses
    code = _code("weights = p")
    fixed = fix_text(code, "model.py", rules("ADP010"))
    assert fixed.error is None
    assert fixed.text == code, fixed.text
    assert any("unconditionally" in why for _, why in fixed.skipped), fixed.skipped


def test_probabilities_kept_under_a_test_of_their_own_stay_guarded_by_it():
    import torch

    code = _code("if need_weights:\n                weights = p")
    fixed = fix_text(code, "model.py", rules("ADP010"))
    assert fixed.error is None and [f.rule for f in fixed.applied] == ["ADP010"], fixed.skipped
    patched = fixed.text
    assert "scaled_dot_product_attention(" in patched
    fused_arm = patched[patched.index("else:", patched.index("o = custom_kernel")):]
    assert "if need_weights:" in fused_arm and "use_kernel" not in fused_arm  # guard: the read's own test
    torch.manual_seed(2)
    x = torch.randn(2, 4, 8, dtype=torch.float64)
    ctx = torch.randn(2, 6, 8, dtype=torch.float64)
    _same(code, patched, "SwitchedAttention", lambda c: _FirstOutput(c(8)), [x, ctx])

    # the fused call is what runs when the weights are not wanted
    ns: dict = {}
    exec(compile(patched, "patched", "exec"), ns)  # noqa: S102 (our own fixture)
    module = ns["SwitchedAttention"](8).double()
    calls = []
    real = torch.nn.functional.scaled_dot_product_attention

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    for name, value in list(ns.items()):
        if value is real:
            ns[name] = counting
    with torch.no_grad():
        _, weights = module(x, ctx)
        assert weights is None
        _, weights = module(x, ctx, need_weights=True)
        assert weights is not None and weights.shape == (2, 2, 4, 6)
    assert len(calls) == 1  # once: the call without weights; the call asking for them ran the original


# ------------------------------------- ADP014: a rotary module applied to one tensor of the file

ROTARY = textwrap.dedent("""
    import torch
    import torch.nn as nn


    def rotate_half(x):
        x1, x2 = x.chunk(2, dim=-1)
        return torch.cat((-x2, x1), dim=-1)


    class Rotary(nn.Module):
        def __init__(self, dim):
            super().__init__()
            self.freqs = nn.Parameter(torch.randn(2, dim))

        def forward(self, x, coords):
            angle = coords @ self.freqs
            return x * angle.cos() + rotate_half(x) * angle.sin()  # rotation
""")

STEM = ROTARY + textwrap.dedent("""

    class Upsampler(nn.Module):
        def __init__(self, dim):
            super().__init__()
            self.rope = Rotary(dim)
            self.to_q = nn.Conv2d(dim, dim, 1)
            self.to_k = nn.Conv2d(dim, dim, 1)

        def forward(self, feats, coords):
            b, c, h, w = feats.shape
            enc = feats.flatten(2).transpose(1, 2)
            enc = self.rope(enc, coords)
            enc = enc.transpose(1, 2).reshape(b, c, h, w)
            return self.to_q(enc), self.to_k(enc)
""")

Q_AND_K = ROTARY + textwrap.dedent("""

    class Attention(nn.Module):
        def __init__(self, dim):
            super().__init__()
            self.rope = Rotary(dim)
            self.qkv = nn.Linear(dim, 3 * dim)

        def forward(self, x, coords):
            q, k, v = self.qkv(x).chunk(3, dim=-1)
            q = self.rope(q, coords)
            k = self.rope(k, coords)
            return torch.softmax(q @ k.transpose(-2, -1), dim=-1) @ v
""")

STACKED = ROTARY + textwrap.dedent("""

    class Attention(nn.Module):
        def __init__(self, dim):
            super().__init__()
            self.rope = Rotary(dim)
            self.qkv = nn.Linear(dim, 3 * dim)

        def forward(self, x, coords):
            q, k, v = self.qkv(x).chunk(3, dim=-1)
            qk = torch.stack((q, k))
            q, k = self.rope(qk, coords).unbind(0)
            return torch.softmax(q @ k.transpose(-2, -1), dim=-1) @ v
""")


def test_a_rotary_module_the_file_applies_to_one_stem_tensor_is_no_rope_of_q_and_k():
    assert found(STEM, "ADP014") == []


def test_a_rotary_module_applied_to_q_and_k_or_to_them_stacked_or_built_elsewhere_stays_a_site():
    for code in (ROTARY, Q_AND_K, STACKED):
        assert finding_at(code, "ADP014", "# rotation") is not None


# review63 (session 46): the one read of the module inside a helper the forward calls on q and
# on k is two applications; a leading-axis slice of a stacked q/k/v (``qkv[:2]``) is q and k.
# The stem's helper, called once, and a channel slice of one tensor stay silent.
THROUGH_HELPER = ROTARY + textwrap.dedent("""

    class Attention(nn.Module):
        def __init__(self, dim):
            super().__init__()
            self.rope = Rotary(dim)
            self.qkv = nn.Linear(dim, 3 * dim)

        def _rot(self, t, coords):
            return self.rope(t, coords)

        def forward(self, x, coords):
            q, k, v = self.qkv(x).chunk(3, dim=-1)
            q = self._rot(q, coords)
            k = self._rot(k, coords)
            return torch.softmax(q @ k.transpose(-2, -1), dim=-1) @ v
""")

SLICED = ROTARY + textwrap.dedent("""

    class Attention(nn.Module):
        def __init__(self, dim):
            super().__init__()
            self.rope = Rotary(dim)
            self.qkv = nn.Linear(dim, 3 * dim)

        def forward(self, x, coords):
            qkv = torch.stack(self.qkv(x).chunk(3, dim=-1))
            qk = self.rope(qkv[:2], coords)
            q, k = qk[0], qk[1]
            return torch.softmax(q @ k.transpose(-2, -1), dim=-1) @ qkv[2]
""")

STEM_HELPER = STEM.replace("enc = self.rope(enc, coords)", "enc = self._rot(enc, coords)").replace(
    "    def forward(self, feats, coords):",
    "    def _rot(self, t, coords):\n        return self.rope(t, coords)\n\n    def forward(self, feats, coords):")

STEM_CHANNELS = STEM.replace("enc = self.rope(enc, coords)", "enc = self.rope(enc[..., :c], coords)")


def test_rotary_through_a_helper_called_on_q_and_k_or_on_a_slice_of_stacked_qkv_stays_a_site():
    for code in (THROUGH_HELPER, SLICED):
        assert finding_at(code, "ADP014", "# rotation") is not None


def test_helper_called_once_or_a_channel_slice_of_one_tensor_stays_silent():
    assert "self._rot(enc, coords)" in STEM_HELPER and "enc[..., :c]" in STEM_CHANNELS
    assert found(STEM_HELPER, "ADP014") == []
    assert found(STEM_CHANNELS, "ADP014") == []
