"""ADP010: a finite fill whose mask is a slice of a causal or banded buffer that keeps each query's
own key (session 46, sites86).  wrong84 read a constant mask as never filling a whole row only
where it keeps the first key (GPT-2's ``bias[..., :n] == 0``); a local-window band
(``bitwise_xor(tril, tril(-w))``, GPT-Neo's form) keeps no first key but keeps every row's
diagonal key, so no row is filled whole where the rows' and the keys' slices end at the same
length (``bias[:, :, n - m:n, :n]``: buffer row r < n, key r among the keys 0..n-1).  Such a mask,
with a literal window of at least 1, now keeps the guard-free fused call; a window that is not a
literal (its sign unknown: a window of 0 fills every row), or 0, a slice whose rows and keys end
differently, or a buffer that is not square keeps the whole-row guard."""

from __future__ import annotations

import textwrap

import pytest

torch = pytest.importorskip("torch")

from sdpa_modules import Counter, assert_same_step, load, sdpa_fixed  # noqa: E402

F64 = torch.float64

TEMPLATE = textwrap.dedent('''
    import torch
    import torch.nn as nn


    class Heads(nn.Module):
        def __init__(self, n=8, local=True, window=WINDOW):
            super().__init__()
            bias = BUFFER
            if local:
                bias = BAND
            self.register_buffer("bias", bias, persistent=False)

        def forward(self, q, k, v):
            w = torch.matmul(q, k.transpose(-1, -2))
            m, n = q.size(-2), k.size(-2)
            causal = self.bias[:, :, SLICE]
            fill = torch.finfo(w.dtype).min
            fill = torch.tensor(fill, dtype=w.dtype).to(w.device)
            w = torch.where(causal, w, fill)
            w = nn.functional.softmax(w, dim=-1)
            return torch.matmul(w, v)
''')

SQUARE = "torch.tril(torch.ones((n, n), dtype=torch.bool)).view(1, 1, n, n)"
XOR = "torch.bitwise_xor(bias, torch.tril(bias, -W))"
SAME_STOP = "n - m:n, :n"


def _source(window="2", band=XOR, buffer=SQUARE, slice_=SAME_STOP, default="None") -> str:
    return (TEMPLATE.replace("BUFFER", buffer).replace("BAND", band.replace("W", window))
            .replace("SLICE", slice_).replace("WINDOW", default))


def _compare(source: str, m: int, n: int) -> tuple[str, int]:
    fixed = sdpa_fixed(source)
    original, patched = load(source, "original"), load(fixed, "patched")
    counter = Counter(patched)
    a, b = original["Heads"]().to(F64), patched["Heads"]().to(F64)
    torch.manual_seed(0)
    q = torch.randn(2, 2, m, 4, dtype=F64) * 3
    k, v = (torch.randn(2, 2, n, 4, dtype=F64) * 3 for _ in range(2))
    for training in (False, True):
        a.train(training)
        b.train(training)
        assert_same_step(a, b, [q, k, v])
    return fixed, counter.calls


KEPT = {
    "xor with a literal window": _source(),
    "xor as an operator": _source(band="bias ^ torch.tril(bias, -W)"),
    "and-not": _source(band="bias & ~bias.tril(-W)"),
    "a window of 1 (the diagonal alone)": _source(window="1"),
    "the fill where the band is false": _source().replace("torch.where(causal, w, fill)",
                                                          "w.masked_fill(causal == 0, fill)"),
}

GUARDED = {
    "a window the constructor takes": _source(window="window", default="3"),
    "a window of 0 (every row filled)": _source(window="0"),
    "rows and keys ending differently": _source(slice_="n - m:n, :m"),
    "a buffer that is not square": _source(buffer="torch.tril(torch.ones((n, n + 1), dtype=torch.bool))"
                                                  ".view(1, 1, n, n + 1)"),
    "the band filled where true": _source().replace("torch.where(causal, w, fill)", "torch.where(causal, fill, w)"),
}


@pytest.mark.parametrize("m, n", [(5, 5), (2, 6)])
@pytest.mark.parametrize("case", sorted(KEPT))
def test_a_band_keeping_each_rows_own_key_takes_no_row_guard(case, m, n):
    fixed, calls = _compare(KEPT[case], m, n)
    assert ".all(-1).any()" not in fixed
    assert calls == 2  # eval and training: the fused call


@pytest.mark.parametrize("case", sorted(GUARDED))
def test_other_buffers_keep_the_whole_row_guard(case):
    fixed = sdpa_fixed(GUARDED[case])
    assert ".all(-1).any()" in fixed


def test_a_zero_window_fills_every_row_and_the_guard_takes_the_original():
    """Not idle: with a window of 0 every row is filled whole in the original (uniform), and the
    guarded patch agrees with it in training."""
    source = GUARDED["a window of 0 (every row filled)"]
    module = load(source, "original")["Heads"]().to(F64)
    torch.manual_seed(0)
    q, k, v = (torch.randn(1, 1, 4, 4, dtype=F64) for _ in range(3))
    torch.testing.assert_close(module(q, k, v)[0, 0], v[0, 0].mean(0).expand(4, 4))
    fixed, calls = _compare(source, 4, 4)
    assert calls == 0  # both steps take gradients: the guard sends them to the original
