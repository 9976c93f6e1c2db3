"""What each rule measured, and whether that earns it a place among the default rules.

``benchmarks/rules.py`` times every rule's patched module against the original in the modes
the rule claims (its ``helps`` list) and, with ``--write``, stores the figures as
``measured.toml`` next to the rule files (bundled ``rules/measured.toml``; a user's rule folder
may hold its own).  This module reads them back without torch, so ``adopter rules`` can show
them on the check path, and holds the policy that turns figures into a default:

* a **gain** on a target is a median time ratio (original / patched, per interleaved A/B pair)
  of at least :data:`GAIN` whose spread agrees: the lower quartile of the per-pair ratios is
  above 1, i.e. at least three pairs in four saw the patched module faster;
* a **loss** is the mirror image (median at most ``1 / GAIN``, upper quartile below 1);
* a rule *pays* on a target when some claimed mode gained there and no claimed mode lost;
* the suggested default is ``true`` when the rule pays on some target it declares; otherwise
  the declared targets nothing has measured yet (a CUDA-only rule before any GPU run), as a
  list, meaning "on only when that target is chosen explicitly" (``--target cuda``); otherwise
  ``false``.  Default-on requires a measured gain.
"""

from __future__ import annotations

import tomllib
from .records import dataclass, field
from pathlib import Path

FILE_NAME = "measured.toml"
GAIN = 1.05


@dataclass(frozen=True)
class Figure:
    """One measured (rule, fixture case, target, mode): ratio = original time / patched time."""

    rule: str
    target: str  # "cpu" or "cuda"
    mode: str  # "inference" or "training"
    case: str
    ratio: float  # median of the per-pair ratios
    q1: float
    q3: float
    low: float
    high: float
    pairs: int
    claimed: bool = True  # whether the rule's helps list names this target:mode
    drift: bool = False  # the original's time moved by more than the drift limit during the run
    memory_ratio: float | None = None  # training peak memory, original / patched
    torch: str = ""
    date: str = ""
    device: str = ""
    dtype: str = ""
    threads: int = 0
    shapes: str = ""
    clock: str = ""  # what was timed: wall / thread (CPU time) / cuda events


    @property
    def gain(self) -> bool:
        return self.ratio >= GAIN and self.q1 > 1.0

    @property
    def loss(self) -> bool:
        return self.ratio <= 1.0 / GAIN and self.q3 < 1.0

    def short(self) -> str:
        """``1.42x [1.31-1.50]``: median and interquartile range of the per-pair ratios."""
        return f"{self.ratio:.2f}x [{self.q1:.2f}-{self.q3:.2f}]"


@dataclass(frozen=True)
class Verdict:
    """Per declared target: "pays", "no gain" or "unmeasured"; and the default that follows."""

    targets: dict[str, str] = field(default_factory=dict)
    default: bool | tuple[str, ...] = False

    def default_text(self) -> str:
        if isinstance(self.default, bool):
            return "true" if self.default else "false"
        return "[" + ", ".join(f'"{t}"' for t in self.default) + "]"


def declared(helps: tuple[str, ...] | list[str]) -> dict[str, tuple[str, ...]]:
    """``["cuda:training", "cpu:inference"]`` -> ``{"cuda": ("training",), "cpu": ("inference",)}``;
    an entry without a mode claims both."""
    out: dict[str, list[str]] = {}
    for item in helps:
        target, _, mode = item.partition(":")
        modes = [mode] if mode else ["inference", "training"]
        out.setdefault(target, [])
        out[target] += [m for m in modes if m not in out[target]]
    return {t: tuple(m) for t, m in out.items()}


def verdict(helps: tuple[str, ...] | list[str], figures: list[Figure]) -> Verdict:
    """Apply the policy of the module docstring to one rule's claims and figures."""
    claims = declared(helps)
    targets: dict[str, str] = {}
    for target, modes in claims.items():
        mine = [f for f in figures if f.target == target and f.mode in modes]
        if not mine:
            targets[target] = "unmeasured"
        elif any(f.gain for f in mine) and not any(f.loss for f in mine):
            targets[target] = "pays"
        else:
            targets[target] = "no gain"
    if "pays" in targets.values():
        default: bool | tuple[str, ...] = True
    else:
        default = tuple(t for t, status in targets.items() if status == "unmeasured") or False
    return Verdict(targets, default)


def _figure(rule: str, entry: dict) -> Figure | None:
    try:
        return Figure(
            rule=rule, target=str(entry["target"]), mode=str(entry["mode"]), case=str(entry.get("case", "")),
            ratio=float(entry["ratio"]), q1=float(entry["q1"]), q3=float(entry["q3"]),
            low=float(entry.get("low", entry["q1"])), high=float(entry.get("high", entry["q3"])),
            pairs=int(entry.get("pairs", 0)), claimed=bool(entry.get("claimed", True)),
            drift=bool(entry.get("drift", False)),
            memory_ratio=float(entry["memory_ratio"]) if "memory_ratio" in entry else None,
            torch=str(entry.get("torch", "")), date=str(entry.get("date", "")), device=str(entry.get("device", "")),
            dtype=str(entry.get("dtype", "")), threads=int(entry.get("threads", 0)),
            shapes=str(entry.get("shapes", "")), clock=str(entry.get("clock", "")),
        )
    except (KeyError, TypeError, ValueError):
        return None  # a malformed entry is not a measurement


def read_file(path: Path) -> dict[str, list[Figure]]:
    """Figures of one ``measured.toml`` by rule id; a missing or unreadable file has none."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return {}
    out: dict[str, list[Figure]] = {}
    for rule, entries in data.items():
        if rule == "meta" or not isinstance(entries, list):
            continue
        figures = [f for f in (_figure(rule, e) for e in entries if isinstance(e, dict)) if f is not None]
        if figures:
            out[rule] = figures
    return out


def load_measured(folders: list[Path]) -> dict[str, list[Figure]]:
    """Figures from the ``measured.toml`` of each rule folder; a later folder's figures for a
    rule replace an earlier one's (as its rule file would)."""
    out: dict[str, list[Figure]] = {}
    for folder in folders:
        out.update(read_file(Path(folder) / FILE_NAME))
    return out


def summary(helps: tuple[str, ...] | list[str], figures: list[Figure]) -> str:
    """One line for ``adopter rules``: per declared target, its best gain or the range of its
    medians, or that nothing was measured there.

    ``cpu 1.42x [1.31-1.50]`` (pays: the best gaining figure with its interquartile range),
    ``cpu no gain 0.94-1.08x (4 figures)``, ``cuda not measured``.
    """
    parts = []
    for target, modes in declared(helps).items():
        mine = [f for f in figures if f.target == target and f.mode in modes and f.claimed]
        if not mine:
            parts.append(f"{target} not measured")
        elif verdict(helps, mine).targets.get(target) == "pays":
            parts.append(f"{target} {max((f for f in mine if f.gain), key=lambda f: f.ratio).short()}")
        elif len(mine) == 1:
            parts.append(f"{target} no gain {mine[0].short()}")
        else:
            low, high = min(f.ratio for f in mine), max(f.ratio for f in mine)
            parts.append(f"{target} no gain {low:.2f}-{high:.2f}x ({len(mine)} figures)")
    return ", ".join(parts) or "-"
