"""ADP010 where a name built for a mask under a guard ``if`` is reused for another mask after it
(compressive-transformer's memory attention: ``mask`` is the input mask under ``if input_mask
is not None:``, filled in place, then ``mask`` is rebuilt as the causal mask over memory and
input and filled too).  The guard sends every call with an input mask to the original, so on
the fused path the first ``mask`` is never built: rebuilding the name changes nothing that
path reads (the guard's test is read before the attention).  Checked numerically against the
original in float64, with and without the input mask and with memory of 0 and 3 positions,
eval and training (dropout 0): outputs, input and parameter gradients, fused calls counted.  A
name a *step* reads (a fill the fused call folds in, which runs after the rebuild) stays
declined."""

from __future__ import annotations

import textwrap

import pytest

torch = pytest.importorskip("torch")

from sdpa_modules import RULES, Counter, assert_same_step, load, sdpa_fixed  # noqa: E402

from adopter.synth import fix_text  # noqa: E402

F64 = torch.float64

MEMORY = textwrap.dedent('''
    import torch
    from torch import nn
    import torch.nn.functional as F


    class MemoryAttention(nn.Module):
        def __init__(self, dim, heads):
            super().__init__()
            self.heads = heads
            self.scale = (dim // heads) ** -0.5
            self.to_q = nn.Linear(dim, dim, bias=False)
            self.to_kv = nn.Linear(dim, 2 * dim, bias=False)
            self.to_out = nn.Linear(dim, dim)
            self.drop = nn.Dropout(0.0)

        def forward(self, x, mem, input_mask=None):
            b, t, d = x.shape
            h = self.heads
            q = self.to_q(x)
            k, v = self.to_kv(torch.cat((mem, x), dim=1)).chunk(2, dim=-1)
            q, k, v = map(lambda z: z.reshape(b, -1, h, d // h).transpose(1, 2), (q, k, v))
            dots = torch.einsum('bhid,bhjd->bhij', q, k) * self.scale
            fill = -torch.finfo(dots.dtype).max
            if input_mask is not None:
                mask = input_mask[:, None, :, None] * input_mask[:, None, None, :]
                mask = F.pad(mask, (mem.shape[1], 0), value=True)
                dots.masked_fill_(~mask, fill)
            m = mem.shape[1]
            mask = torch.ones(t, t + m, device=x.device).triu_(diagonal=1 + m).bool()
            dots.masked_fill_(mask[None, None, ...], fill)
            attn = dots.softmax(dim=-1)
            attn = self.drop(attn)
            out = torch.einsum('bhij,bhjd->bhid', attn, v)
            return self.to_out(out.transpose(1, 2).reshape(b, t, d))
''')


def test_the_name_rebuilt_after_the_guard_is_fixed():
    fixed = sdpa_fixed(MEMORY)
    fast = fixed.split("else:")[-1]
    assert "input_mask[" not in fast  # the input mask's branch is the original's
    assert "scaled_dot_product_attention(" in fast


@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("memory", [0, 3])
def test_the_rewrite_computes_what_the_original_does(masked, memory):
    fixed = sdpa_fixed(MEMORY)
    original, patched = load(MEMORY, "original"), load(fixed, "patched")
    counter = Counter(patched)
    torch.manual_seed(0)
    a = original["MemoryAttention"](8, 2).to(F64)
    b = patched["MemoryAttention"](8, 2).to(F64)
    b.load_state_dict(a.state_dict())
    x = torch.randn(2, 5, 8, dtype=F64)
    mem = torch.randn(2, memory, 8, dtype=F64)
    kwargs = {}
    if masked:
        input_mask = torch.ones(2, 5, dtype=torch.bool)
        input_mask[1, 3:] = False
        kwargs["input_mask"] = input_mask
    for training in (False, True):
        a.train(training)
        b.train(training)
        before = counter.calls
        assert_same_step(a, b, [x, mem], **kwargs)
        assert counter.calls - before == (0 if masked else 1)  # an input mask takes the original


def test_a_name_a_step_reads_is_still_declined():
    # the input mask's fill is a step of its own (no guard around it): the fused call folds it
    # in and runs after the rebuild, so it would read the causal mask instead
    source = MEMORY.replace(
        "        if input_mask is not None:\n"
        "            mask = input_mask[:, None, :, None] * input_mask[:, None, None, :]\n"
        "            mask = F.pad(mask, (mem.shape[1], 0), value=True)\n"
        "            dots.masked_fill_(~mask, fill)\n",
        "        mask = input_mask[:, None, :, None] * input_mask[:, None, None, :]\n"
        "        mask = F.pad(mask, (mem.shape[1], 0), value=True)\n"
        "        dots = dots.masked_fill(~mask, fill)\n").replace(
        "        dots.masked_fill_(mask[None, None, ...], fill)\n", "")
    assert source.count("masked_fill") == 1
    result = fix_text(source, "attention.py", RULES)
    assert not result.applied
    assert any("reassigns `mask` after the attention read it" in why for _, why in result.skipped), result.skipped
