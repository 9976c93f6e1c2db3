"""ADP010: a finite fill whose mask is a triangle of ones of the scores' own sizes aligned to the
last key (lucidrains' ``torch.ones((i, j)).triu(j - i + 1)`` filled where true, ``i, j`` read off
the scores' shape in the attention: session 46, sites86).  Query row r keeps the keys up to
``r + j - i``, so a row is filled whole exactly when there are more queries than keys (then the
original's first rows are uniform, the fused call's the softmax of their scores).  wrong84 declined
such a mask where the layout allows neither the rows' guard nor zeroed rows (an einsum layout).
It now gets a guard of sizes alone (no device sync): ``q_len - k_len >= c`` (``triu(j - i + c)``
filled where true) or ``> c`` (``tril(j - i + c)`` kept where true) takes the original.  A
triangle whose diagonal is not ``j - i + c``, or that is filled on its own side, stays declined."""

from __future__ import annotations

import textwrap

import pytest

torch = pytest.importorskip("torch")

from adopter.synth.core import fix_text  # noqa: E402
from sdpa_modules import RULES, Counter, assert_same_step, load, sdpa_fixed  # noqa: E402

F64 = torch.float64

TEMPLATE = textwrap.dedent('''
    import torch
    import torch.nn as nn
    from torch import einsum


    class Heads(nn.Module):
        def __init__(self, p=0.0):
            super().__init__()
            self.dropout = nn.Dropout(p)

        def forward(self, q, k, v):
            q = q * (q.shape[-1] ** -0.5)
            sim = einsum('b i h d, b j h d -> b h i j', q, k)
            MASK
            sim = sim.masked_fill(causal_mask, FILL)
            attn = sim.softmax(dim=-1)
            attn = self.dropout(attn)
            return einsum('b h i j, b j h d -> b h i d', attn, v)
''')

ALIGNED = {
    "triu(j - i + 1) filled where true": "i, j, device = *sim.shape[-2:], q.device; "
    "causal_mask = torch.ones((i, j), device=device, dtype=torch.bool).triu(j - i + 1)",
    "torch.triu with a diagonal written otherwise": "i, j, device = *sim.shape[-2:], q.device; "
    "causal_mask = torch.triu(torch.ones(i, j, dtype=torch.bool), diagonal=1 - i + j)",
    "tril(j - i) kept where true": "device, i, j = q.device, *sim.shape[-2:]; "
    "causal_mask = ~torch.ones((i, j), dtype=torch.bool).tril(j - i)",
    "triu(j - i + 2): a row keeps a key beyond its own": "i, j, device = *sim.shape[-2:], q.device; "
    "causal_mask = torch.ones((i, j), dtype=torch.bool).triu(j - i + 2)",
}

# (the sizes bound with a starred item beside the device, as lucidrains writes them: a mask the
# whole-row guard cannot read before the attention, in a layout that cannot zero rows)
DECLINED = {
    "the triangle filled on its own side": "i, j, device = *sim.shape[-2:], q.device; "
    "causal_mask = torch.ones((i, j), dtype=torch.bool).tril(j - i)",
    "a diagonal of the queries alone": "i, j, device = *sim.shape[-2:], q.device; "
    "causal_mask = torch.ones((i, j), dtype=torch.bool).triu(1 - i)",
    "sizes swapped": "i, j, device = *sim.shape[-2:], q.device; "
    "causal_mask = torch.ones((j, i), dtype=torch.bool).triu(j - i + 1)",
    "a diagonal scaled": "i, j, device = *sim.shape[-2:], q.device; "
    "causal_mask = torch.ones((i, j), dtype=torch.bool).triu(2 * j - i + 1)",
}

FILLS = ["-torch.finfo(sim.dtype).max", "-1e4"]


def _source(mask: str, fill: str) -> str:
    return TEMPLATE.replace("MASK", ("\n" + " " * 8).join(mask.split("; "))).replace("FILL", fill)


def _compare(source: str, n_q: int, n_k: int, p: float = 0.0) -> int:
    fixed = sdpa_fixed(source)
    original, patched = load(source, "original"), load(fixed, "patched")
    counter = Counter(patched)
    a, b = original["Heads"](p).to(F64), patched["Heads"](p).to(F64)
    torch.manual_seed(0)
    q = torch.randn(2, n_q, 3, 4, dtype=F64) * 3
    k, v = (torch.randn(2, n_k, 3, 4, dtype=F64) * 3 for _ in range(2))
    for training in (False, True):
        a.train(training)
        b.train(training)
        assert_same_step(a, b, [q, k, v])
    return counter.calls


@pytest.mark.parametrize("fill", FILLS)
@pytest.mark.parametrize("case", sorted(ALIGNED))
@pytest.mark.parametrize("n_q, n_k", [(5, 5), (3, 6)])
def test_as_many_keys_as_queries_or_more_takes_the_fused_call(case, fill, n_q, n_k):
    assert _compare(_source(ALIGNED[case], fill), n_q, n_k) == 2  # eval and training, fused


@pytest.mark.parametrize("fill", FILLS)
@pytest.mark.parametrize("case", sorted(ALIGNED))
def test_more_queries_than_keys_takes_the_original_where_a_row_is_filled_whole(case, fill):
    # (triu(j - i + 2) fills no row whole with one query more than keys: the guard is exact)
    n_k = 4
    fused = _compare(_source(ALIGNED[case], fill), 5, n_k)
    assert fused == (2 if case.startswith("triu(j - i + 2)") else 0)
    assert _compare(_source(ALIGNED[case], fill), 7, n_k) == 0


def test_more_queries_than_keys_fills_a_whole_row_in_the_original():
    """Not idle: with more queries than keys the first row is uniform in the original."""
    module = load(_source(ALIGNED["triu(j - i + 1) filled where true"], FILLS[0]), "original")["Heads"]().to(F64)
    torch.manual_seed(0)
    q, k, v = torch.randn(1, 6, 1, 4, dtype=F64), torch.randn(1, 4, 1, 4, dtype=F64), torch.randn(1, 4, 1, 4, dtype=F64)
    out = module(q, k, v)
    torch.testing.assert_close(out[0, 0, 0], v[0, :, 0].mean(0))


def test_dropout_in_training_only():
    source = _source(ALIGNED["triu(j - i + 1) filled where true"], FILLS[0])
    fixed = sdpa_fixed(source)
    patched = load(fixed, "patched")
    counter = Counter(patched)
    module = patched["Heads"](0.5).to(F64).eval()
    q = torch.randn(1, 4, 2, 4, dtype=F64)
    original = load(source, "original")["Heads"](0.5).to(F64).eval()
    torch.testing.assert_close(module(q, q, q), original(q, q, q))
    assert counter.calls == 1


@pytest.mark.parametrize("case", sorted(DECLINED))
def test_other_triangles_stay_declined(case):
    result = fix_text(_source(DECLINED[case], FILLS[0]), "attention.py", RULES)
    assert result.error is None
    assert not [f for f in result.applied if f.rule == "ADP010"], case
    assert any("fills entirely" in why for _, why in result.skipped)


def test_the_guard_reads_sizes_alone():
    """No device sync: the guard compares the two lengths, it reduces no mask."""
    fixed = sdpa_fixed(_source(ALIGNED["triu(j - i + 1) filled where true"], FILLS[0]))
    assert ".shape[-2] >= 1" in fixed and ".all(-1)" not in fixed
