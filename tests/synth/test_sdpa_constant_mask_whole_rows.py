"""ADP010: a finite fill (``masked_fill(m, -1e4)``) whose mask is built from sizes and the
module's buffers alone (review60, session 46 wrong84).  Such a mask is the same for every input,
yet may fill every key of a row: a causal buffer filled where it is true (the last row), a
``triu(0)`` (the first row).  The original's softmax over such a row is uniform (every score the
same fill); the fused call with the fill added gives the softmax of the row's own scores.  Such
masks now get the whole-row guard as a mask read from the inputs does (the original runs where a
row is filled whole), and the patched module computes what the original does.  A causal
triangle read so that the first key of every row stays unfilled (GPT-2's ``bias[..., :n, :n] ==
0``, ``where(tril == 0, fill, w)``, ``triu(1)``) keeps the guard-free fused call."""

from __future__ import annotations

import textwrap

import pytest

torch = pytest.importorskip("torch")

from sdpa_modules import Counter, assert_same_step, load, sdpa_fixed

F64 = torch.float64

TEMPLATE = textwrap.dedent('''
    import torch
    import torch.nn as nn


    class Heads(nn.Module):
        def __init__(self, n=6):
            super().__init__()
            self.register_buffer("bias", torch.tril(torch.ones(n, n)).view(1, 1, n, n))
            self.register_buffer("masked_bias", torch.tensor(-1e4))

        def forward(self, q, k, v):
            w = torch.matmul(q, k.transpose(-1, -2))
            w = w / (v.size(-1) ** 0.5)
            n = q.size(-2)
            FILL
            w = nn.functional.softmax(w, dim=-1)
            return torch.matmul(w, v)
''')

WHOLE_ROWS = {
    "a causal buffer filled where it is true": "w = w.masked_fill(self.bias[:, :, :n, :n].bool(), -1e4)",
    "the same through a local": "causal = self.bias[:, :, :n, :n].bool(); w = w.masked_fill(causal, -1e4)",
    "a where taking the fill where the buffer is 1": "w = torch.where(self.bias[:, :, :n, :n] == 1, -1e4, w)",
    "triu(0) of ones": "w = w.masked_fill(torch.ones(n, n, dtype=torch.bool).triu(0), -1e4)",
}

FIRST_KEY_KEPT = {
    "GPT-2's fill where the buffer is 0": "w = w.masked_fill(self.bias[:, :, :n, :n] == 0, -1e4)",
    "a where taking the fill where the buffer is 0": "w = torch.where(self.bias[:, :, :n, :n] == 0, -1e4, w)",
    "triu(1) of ones": "w = w.masked_fill(torch.ones(n, n, dtype=torch.bool).triu(1), -1e4)",
}


def _source(fill: str) -> str:
    return TEMPLATE.replace("FILL", ("\n" + " " * 8).join(fill.split("; ")))


def _compare(source: str) -> int:
    """Fix ``source``, run original and patched in float64 (eval and training) and return the
    fused calls the patched module made."""
    fixed = sdpa_fixed(source)
    original, patched = load(source, "original"), load(fixed, "patched")
    counter = Counter(patched)
    a, b = original["Heads"]().to(F64), patched["Heads"]().to(F64)
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 2, 6, 4, dtype=F64) * 3 for _ in range(3))
    for training in (False, True):
        a.train(training)
        b.train(training)
        assert_same_step(a, b, [q, k, v])
    return counter.calls


@pytest.mark.parametrize("case", sorted(WHOLE_ROWS))
def test_a_constant_mask_filling_whole_rows_takes_the_original(case):
    assert _compare(_source(WHOLE_ROWS[case])) == 0  # the guard sees the whole row: the original runs


@pytest.mark.parametrize("case", sorted(WHOLE_ROWS))
def test_the_whole_row_is_uniform_in_the_original(case):
    """Not idle: the original's filled row averages v, which the fill added to the scores would not."""
    module = load(_source(WHOLE_ROWS[case]), "original")["Heads"]().to(F64)
    torch.manual_seed(0)
    q, k, v = (torch.randn(1, 1, 6, 4, dtype=F64) * 3 for _ in range(3))
    out = module(q, k, v)
    rows = [r for r in range(6) if torch.allclose(out[0, 0, r], v[0, 0].mean(0))]
    assert rows, "no row is uniform"
    scores = q @ k.transpose(-1, -2) / 2.0
    assert not torch.allclose(out[0, 0, rows[0]], (scores[0, 0, rows[0]].softmax(-1) @ v[0, 0]))


@pytest.mark.parametrize("case", sorted(FIRST_KEY_KEPT))
def test_a_causal_mask_keeping_the_first_key_keeps_the_fused_call(case):
    assert _compare(_source(FIRST_KEY_KEPT[case])) == 2  # eval and training: the fused call


LOCAL_BUFFER = ('        bias = torch.tril(torch.ones((n, n), dtype=torch.bool)).view(1, 1, n, n)\n'
                '        self.register_buffer("bias", bias)\n')


@pytest.mark.parametrize("fill, fused", [
    ("w = w.masked_fill(self.bias[:, :, :n, :n] == 0, -1e4)", 2),  # the first key kept: no guard
    ("w = w.masked_fill(self.bias[:, :, :n, :n], -1e4)", 0),  # the last row filled: the original
])
def test_a_buffer_registered_from_a_local_of_init_is_read(fill, fused):
    """bark's ``bias = torch.tril(...)`` then ``self.register_buffer("bias", bias)``: the local of
    ``__init__`` is read for the triangle."""
    source = _source(fill).replace(
        '        self.register_buffer("bias", torch.tril(torch.ones(n, n)).view(1, 1, n, n))\n', LOCAL_BUFFER)
    assert LOCAL_BUFFER in source
    assert _compare(source) == fused
