"""Interleaved A/B pairs: per-pair ratios, their spread, and a drift check.

On a shared machine the load changes from one second to the next.  Timing the original (A) and
the patched module (B) back to back, alternating which goes first (A B, B A, A B, ...), lets
each pair see nearly the same load, so the *ratio within a pair* is far steadier than either
time.  The result is the median of the per-pair ratios with their interquartile range and
min-max; more pairs are taken while the spread is wide.  Drift is checked on A alone: the
median of the second half of its times against the first half, and A timed once more at the
end against the first half; a change beyond ``drift_limit`` is flagged (the ratios stay
usable, since both sides of a pair drift together, but the times in the table do not).

Everything here takes the clock as an argument (``measure(fn) -> seconds``), so the logic can
be tested with deterministic fake clocks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass


def quantile(values: list[float], q: float) -> float:
    """Linear-interpolation quantile (numpy's default) of a non-empty list."""
    data = sorted(values)
    if not data:
        raise ValueError("quantile of no values")
    pos = (len(data) - 1) * q
    lower = int(pos)
    upper = min(lower + 1, len(data) - 1)
    return data[lower] + (data[upper] - data[lower]) * (pos - lower)


def median(values: list[float]) -> float:
    return quantile(values, 0.5)


@dataclass(frozen=True)
class PairResult:
    a: list[float]  # original times (s), in measurement order
    b: list[float]  # patched times (s)
    a_end: float  # the original timed once more after the last pair
    ratios: list[float]  # a[i] / b[i]
    ratio: float  # median
    q1: float
    q3: float
    low: float
    high: float
    drift_halves: float  # median(second half of a) / median(first half of a) - 1
    drift_end: float  # a_end / median(first half of a) - 1
    drift: bool  # either beyond the limit

    @property
    def pairs(self) -> int:
        return len(self.ratios)

    @property
    def relative_iqr(self) -> float:
        return (self.q3 - self.q1) / self.ratio if self.ratio > 0 else float("inf")

    def as_dict(self) -> dict:
        out = asdict(self)
        out["pairs"] = self.pairs
        return out


def summarize(a: list[float], b: list[float], a_end: float, drift_limit: float = 0.10) -> PairResult:
    ratios = [x / y if y > 0 else float("inf") for x, y in zip(a, b)]
    half = len(a) // 2
    first, second = a[:half] or a, a[half:] or a
    base = median(first)
    drift_halves = median(second) / base - 1.0 if base > 0 else 0.0
    drift_end = a_end / base - 1.0 if base > 0 else 0.0
    return PairResult(
        a=list(a), b=list(b), a_end=a_end, ratios=ratios, ratio=median(ratios),
        q1=quantile(ratios, 0.25), q3=quantile(ratios, 0.75), low=min(ratios), high=max(ratios),
        drift_halves=drift_halves, drift_end=drift_end,
        drift=abs(drift_halves) > drift_limit or abs(drift_end) > drift_limit,
    )


def run_pairs(
    measure: Callable[[Callable[[], object]], float],
    fn_a: Callable[[], object],
    fn_b: Callable[[], object],
    min_pairs: int = 7,
    max_pairs: int = 21,
    wide: float = 0.10,
    drift_limit: float = 0.10,
) -> PairResult:
    """Time ``fn_a`` and ``fn_b`` with ``measure`` in alternating order, at least ``min_pairs``
    pairs, and more (up to ``max_pairs``) while the interquartile range of the ratios is wider
    than ``wide`` times their median."""
    if min_pairs < 1 or max_pairs < min_pairs:
        raise ValueError("need 1 <= min_pairs <= max_pairs")
    a: list[float] = []
    b: list[float] = []
    while True:
        if len(a) % 2 == 0:
            a.append(measure(fn_a))
            b.append(measure(fn_b))
        else:
            b.append(measure(fn_b))
            a.append(measure(fn_a))
        if len(a) >= min_pairs:
            result = summarize(a, b, a[-1], drift_limit)
            if result.relative_iqr <= wide or len(a) >= max_pairs:
                break
    return summarize(a, b, measure(fn_a), drift_limit)
