"""The record ``adopter verify`` produces for each patch (no torch needed to read it)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

PASS, FAIL, SKIP = "pass", "fail", "skip"


@dataclass(frozen=True)
class VerifyResult:
    """One verified patch: a finding verified alone, or all of a file's patches together.

    ``rule`` is the rule id (``ADP005``); for the check of all of a file's patches applied at
    once (``combined``) the ids of the patches inside the checked class, joined by ``+``.  Ratios are original time (or peak memory) divided by
    patched time (or peak memory): above 1 the patched code is faster (or smaller).  They are
    ``None`` when nothing was measured (``--no-benchmark``, or the verdict is not ``pass``).
    """

    rule: str
    path: str
    line: int
    class_name: str
    verdict: str  # pass | fail | skip
    reason: str
    max_abs_diff: float | None = None
    forward_ratio: float | None = None
    forward_backward_ratio: float | None = None
    memory_ratio: float | None = None
    device: str = "cpu"
    details: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)
    combined: bool = False  # True for the check of all of a file's patches together on a model class

    @property
    def passed(self) -> bool:
        return self.verdict == PASS

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "rule": self.rule,
            "path": self.path,
            "line": self.line,
            "class": self.class_name,
            "verdict": self.verdict,
            "reason": self.reason,
            "max_abs_diff": self.max_abs_diff,
            "forward_ratio": self.forward_ratio,
            "forward_backward_ratio": self.forward_backward_ratio,
            "memory_ratio": self.memory_ratio,
            "device": self.device,
            "combined": self.combined,
        }
        if self.details:
            out["details"] = dict(self.details)
        return out
