"""ADP010 where the fill's mask is built in the attention from the scores' sizes (protein-bert's
cross attention: ``i, j = sim.shape[-2:]``, a row mask of ones when none is given, a column mask
padded under an ``if`` or ones under its ``else``, their product filled with ``-finfo.max``;
poolformer's local attention likewise).  A step wanting gradients whose mask fills a whole row
goes to the original (the fused call passes gradients through such a row's keys): the guard
reads that mask before the region, so it is written from what the region's statements compute
-- the sizes read off q and k, an element of a tuple unpacked from one value, the value an
if/else gives a name.  Checked in float64 against the original, eval and training, forward and
backward, counting the fused calls; a mask reading the scores' values stays declined."""

from __future__ import annotations

import textwrap

import pytest

torch = pytest.importorskip("torch")

from sdpa_modules import RULES, Counter, assert_same_step, load, sdpa_fixed  # noqa: E402

from adopter.synth import fix_text  # noqa: E402

F64 = torch.float64

SIZES = textwrap.dedent('''
    import torch
    from torch import nn


    class RowColumnAttention(nn.Module):
        def __init__(self, width, heads):
            super().__init__()
            self.scale = (width // heads) ** -0.5

        def forward(self, q, k, v, rows=None, cols=None):
            b = q.shape[0]
            sim = torch.einsum("b h i d, b h j d -> b h i j", q, k) * self.scale
            if rows is not None or cols is not None:
                n, m = sim.shape[-2:]
                if rows is None:
                    rows = torch.ones(b, n, dtype=torch.bool, device=q.device)
                if cols is not None:
                    cols = cols.bool()
                else:
                    cols = torch.ones(b, m, dtype=torch.bool, device=q.device)
                keep = rows[:, None, :, None] & cols[:, None, None, :]
                sim = sim.masked_fill(~keep, -torch.finfo(sim.dtype).max)
            attn = sim.softmax(dim=-1)
            return torch.einsum("b h i j, b h j d -> b h i d", attn, v)
''')


def test_the_guard_reads_the_mask_as_the_region_builds_it():
    fixed = sdpa_fixed(SIZES)
    guard = " ".join(fixed.split("if (")[1].split("):")[0].split())
    # the sizes read off q and k, the tuple's elements, the if/else's two values
    assert "(q.shape[-2], k.shape[-2])[0]" in guard and "(q.shape[-2], k.shape[-2])[1]" in guard
    assert "(cols.bool() if cols is not None else torch.ones(b, (q.shape[-2], k.shape[-2])[1]" in guard
    assert ".all(-1).any()" in guard


@pytest.mark.parametrize("given", ["none", "rows", "cols", "both"])
def test_the_rewrite_computes_what_the_original_does(given):
    fixed = sdpa_fixed(SIZES)
    original, patched = load(SIZES, "original"), load(fixed, "patched")
    counter = Counter(patched)
    a, b = original["RowColumnAttention"](8, 2), patched["RowColumnAttention"](8, 2)
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 2, n, 4, dtype=F64) for n in (5, 7, 7))
    rows = torch.ones(2, 5, dtype=torch.bool)
    rows[1, 3:] = False  # padded queries: their rows are filled whole
    cols = torch.ones(2, 7)
    cols[0, 5:] = 0  # padded keys (a float mask the code turns into booleans)
    kwargs = {"none": {}, "rows": {"rows": rows}, "cols": {"cols": cols}, "both": {"rows": rows, "cols": cols}}[given]
    whole_rows = given in ("rows", "both")
    for training in (False, True):
        a.train(training)
        b.train(training)
        before = counter.calls
        assert_same_step(a, b, [q, k, v], **kwargs)
        assert counter.calls - before == (0 if whole_rows else 1)
        with torch.no_grad():
            torch.testing.assert_close(b(q, k, v, **kwargs), a(q, k, v, **kwargs))
        assert counter.calls - before == (1 if whole_rows else 2)


def test_a_mask_reading_the_scores_values_is_declined():
    source = SIZES.replace("keep = rows[:, None, :, None] & cols[:, None, None, :]",
                           "keep = rows[:, None, :, None] & cols[:, None, None, :] & (sim > -1e4)")
    assert source != SIZES
    result = fix_text(source, "attention.py", RULES)
    assert not result.applied and result.skipped
