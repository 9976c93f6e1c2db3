"""The pull request's title and body, and the job summary: Markdown from the patch table.

The body starts with a hidden marker (:data:`MARKER`) by which the bot recognises its own
pull request, lists one row per patch (rule, place, kernel and package, verification with the
largest absolute difference, forward and forward+backward speed ratio with the timing noise,
peak-memory ratio, the hardware they were measured on), how they were measured (torch version,
dtype, input shapes, repeats), what was left out and why, why each rule helps with a link to
its documentation, the new dependencies, and how to silence a rule or the bot.

Every cell is escaped: paths and reasons come from the analysed repository and, in the secure
split, from an artifact, so Markdown, HTML, ``@mentions`` and ``#references`` in them are made
inert.  The body is kept under GitHub's 65,536-character limit by size (rows are dropped from
the end of the tables, with a note, until it fits), so the pull request is never refused for
its length after the branch was pushed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Iterable
from urllib.parse import quote

from .patches import FAILED, HELD_BACK, NOT_FIXED, PROPOSED, SLOWER, UNVERIFIED, WHOLE, Row, noise

MARKER = "<!-- adopter-bot -->"
# how verify's reason opens for a pass whose original cannot train (adopter.verify.core.FORWARD_ONLY;
# not imported: the verify core imports torch)
FORWARD_ONLY = "forward only: the original cannot train"
#: GitHub refuses a body over 65,536 characters; stay well below it (escapes and links add up).
MAX_BODY_CHARS = 60_000
#: The job summary may hold 1 MiB per step.
MAX_SUMMARY_CHARS = 900_000
STATUS_TEXT = {
    PROPOSED: "proposed",
    SLOWER: "slower on this runner: left out",
    FAILED: "failed verification: left out",
    UNVERIFIED: "not verified: left out",
    NOT_FIXED: "no automatic fix",
    HELD_BACK: "held back",
    WHOLE: "all patches together",
}
NOT_ON_HARDWARE = "not measured on its hardware"


@dataclass(frozen=True)
class RuleNote:
    """What the body says about one rule: why it helps (one line) and where to read more."""

    id: str
    name: str
    why: str
    helps: str
    doc_url: str | None = None  # None: point at `adopter rules ID`


_MARKDOWN = re.compile(r"([\\`*_{}\[\]()!|~])")


def cell(value: object) -> str:
    """Text for a table cell or a list item: one line, no Markdown, no HTML, no mentions.

    Markdown's inline punctuation is backslash-escaped (block syntax such as ``#`` headings and
    ``-`` lists needs a line start, and a cell never has one), ``<``, ``>`` and ``&`` become
    entities (no raw HTML), and a
    zero-width space after ``@`` and ``#`` and inside ``://`` keeps GitHub from turning the
    text into a mention, an issue reference or a link."""
    text = re.sub(r"\s+", " ", str(value)).strip()
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = _MARKDOWN.sub(r"\\\1", text)
    text = text.replace("@", "@\u200b").replace("#", "#\u200b")
    return re.sub(r"(?i)\b(https?|ftp|www)(:/|\\\.)", lambda m: m.group(1) + "\u200b" + m.group(2), text)


def code(value: str) -> str:
    """A code span in a table cell: Markdown, HTML and mentions are inert inside it, pipes are not."""
    value = re.sub(r"\s+", " ", str(value)).strip().replace("`", "'").replace("|", "\\|")
    return f"`{value}`" if value else ""


def ratio(value: float | None, what: str = "speed", spread: float | None = None) -> str:
    if value is None:
        return "–"
    if what == "memory":  # original peak / patched peak
        if value >= 1.005:
            return f"{value:.2f}× less"
        return f"{value:.2f}× (same)" if value >= 0.995 else f"{value:.2f}× (more)"
    band = noise(spread)
    plus = f" ±{band * 100:.0f}%"
    if value >= 1.0 + band:
        return f"{value:.2f}× faster{plus}"
    if value >= 1.0 / (1.0 + band):
        return f"{value:.2f}× (same{plus})"
    return f"{value:.2f}× (slower{plus})"


def speed(row: Row, which: str) -> str:
    value = row.forward_ratio if which == "forward" else row.forward_backward_ratio
    if value is not None and row.on_hardware is False:
        return f"{NOT_ON_HARDWARE} ({cell(row.helps)})" if which == "forward" else NOT_ON_HARDWARE
    return ratio(value, spread=row.spread)


def verified(row: Row) -> str:
    if row.verified == "off":
        return "not run (verify: false)"
    if row.verified == "yes":
        diff = ""
        if row.max_abs_diff is not None:
            diff = ", max abs diff 0" if row.max_abs_diff == 0 else f", max abs diff {row.max_abs_diff:.1e}"
        if row.reason.startswith(FORWARD_ONLY):  # verify's pass whose original cannot train
            return f"yes, forward only (the original cannot train){diff}"
        return f"yes{diff}"
    return "no"


def location(row: Row, link_base: str | None) -> str:
    text = f"{row.path}:{row.line}"
    if link_base:
        return f"[{code(text)}]({link_base}/{quote(row.path, safe='/')}#L{row.line})"
    return code(text)


def _more(total: int, shown: int, where: str) -> list[str]:
    if total <= shown:
        return []
    return ["", f"…and {total - shown} more, not shown to keep this under GitHub's size limit ({where})."]


def patch_table(rows: Iterable[Row], link_base: str | None = None, limit: int | None = None,
                where: str = "the job summary and the results file list them all") -> str:
    rows = list(rows)
    shown = rows if limit is None else rows[:limit]
    out = [
        "| Rule | Where | Kernel (package) | Verified | Forward | Forward+backward | Peak memory | Hardware |",
        "|---|---|---|---|---|---|---|---|",
    ]
    out += [_patch_line(row, link_base) for row in shown]
    return "\n".join(out + _more(len(rows), len(shown), where))


@lru_cache(maxsize=8192)  # the body is rendered several times while it is fitted to the size limit
def _patch_line(row: Row, link_base: str | None) -> str:
    return "| " + " | ".join([
        f"{cell(row.rule)} {cell(row.name)}",
        location(row, link_base),
        f"{code(row.kernel)} ({code(row.package)})" if row.kernel else "",
        verified(row),
        speed(row, "forward"),
        speed(row, "forward+backward"),
        "–" if row.on_hardware is False else ratio(row.memory_ratio, "memory"),
        cell(row.device) or "–",
    ]) + " |"


def left_out_table(rows: Iterable[Row], link_base: str | None = None, limit: int | None = None,
                   where: str = "the job summary and the results file list them all") -> str:
    rows = list(rows)
    shown = rows if limit is None else rows[:limit]
    out = [
        "| Rule | Where | Why it is not in this pull request | Forward | Forward+backward | Hardware |",
        "|---|---|---|---|---|---|",
    ]
    out += [_left_line(row, link_base) for row in shown]
    return "\n".join(out + _more(len(rows), len(shown), where))


@lru_cache(maxsize=8192)
def _left_line(row: Row, link_base: str | None) -> str:
    why = STATUS_TEXT.get(row.status, row.status)
    if row.reason:
        why += f" ({row.reason})"
    return "| " + " | ".join([
        f"{cell(row.rule)} {cell(row.name)}", location(row, link_base), cell(why),
        speed(row, "forward"), speed(row, "forward+backward"), cell(row.device) or "–",
    ]) + " |"


def hardware(rows: Iterable[Row]) -> str:
    names = sorted({r.device for r in rows if r.device})
    return ", ".join(names)


def measurements(rows: Iterable[Row], link_base: str | None = None) -> list[str]:
    """One line per measured row: torch version, dtype, input shapes, repeats and spread."""
    return [_measure_line(row, link_base) for row in rows if row.measured]


@lru_cache(maxsize=8192)
def _measure_line(row: Row, link_base: str | None) -> str:
    parts = [f"torch {cell(row.torch)}" if row.torch else "", cell(row.dtype),
             f"inputs {code(row.inputs)}" if row.inputs else "", cell(row.repeats),
             f"timing spread ±{(row.spread or 0) * 100:.1f}%" if row.spread is not None else ""]
    where = f"{cell(row.rule)} {location(row, link_base)}"
    text = "; ".join(p for p in parts if p) or "no details recorded"
    if row.on_hardware is False:
        text += f"; the rule helps on {cell(row.helps)}, so these figures say nothing about its speed"
    return f"- {where}: {text}"


def rule_lines(notes: Iterable[RuleNote]) -> list[str]:
    lines = []
    for note in notes:
        doc = (f"[documentation]({note.doc_url})" if note.doc_url
               else f"documentation: `adopter rules {note.id}`")
        helps = f" Helps on {cell(note.helps)}." if note.helps else ""
        lines.append(f"- **{cell(note.id)}** {cell(note.name)}: {cell(note.why)}{helps} ({doc})")
    return lines


LEGEND = (
    "Ratios are original / patched, measured on the hardware named: time of the forward pass (inference, "
    "`eval()` under `no_grad`), time of forward+backward (one training step), and peak memory (above 1: the "
    "patch is faster, or uses less). ± is the timing noise: the spread of repeated, interleaved rounds; a patch "
    "slower than that in either mode is left out. A rule measured on hardware it does not claim to help on "
    "(a CUDA kernel on a CPU runner) is listed as *not measured on its hardware*. Verification builds the "
    "original and the patched class with the same arguments, loads the original's state dict into the patch "
    "(strict) and compares outputs and gradients with `torch.testing.assert_close`."
)

SILENCE = """\
### Not wanted?
- One place: add `# adopter: ignore[{rule}]` at the end of the line.
- A rule, project-wide: `ignore = ["{rule}"]` under `[tool.adopter]` in `pyproject.toml`.
- Only reports, no pull requests: set `mode: report` on the Adopter step of the workflow; or remove that step to turn the bot off.
- Closing this pull request is fine: the next push to {base} opens a fresh one if there is still something to propose."""


def title(base: str, count: int) -> str:
    return f"Adopter: {count} optimized-kernel patch{'es' if count != 1 else ''} for {base}"[:250]


def dependencies(requirements: Iterable[str], declared: dict[str, list[str]] | None) -> list[str]:
    """One line per new requirement, saying which file of this pull request declares it."""
    where = {req: path for path, added in (declared or {}).items() for req in added}
    requirements = sorted(set(requirements))
    lines = []
    for req in requirements:
        if req in where:
            lines.append(f"- {code(req)}, added to {code(where[req])}")
        else:
            lines.append(f"- {code(req)} (add it to your project's dependencies if it is not there)")
    if any(re.match(r"adopter[-_.]kernels\b", req, re.I) for req in requirements):
        lines.append(f"\n{code('adopter-kernels')} is the small runtime package of Adopter's fused functions "
                     "(PyTorch its only dependency, Python >= 3.9; `runtime/` of the Adopter repository). "
                     "The patched code imports it, never the analysis tool itself.")
    return lines


def _split(rows: list[Row]) -> tuple[list[Row], list[Row], list[Row]]:
    proposed = [r for r in rows if r.status == PROPOSED]
    shown = proposed + [r for r in rows if r.status == WHOLE]
    left = [r for r in rows if r.status not in (PROPOSED, WHOLE)]
    return proposed, shown, left


def fit(make, sizes: tuple[int, ...], limit: int) -> str:
    """``make(*caps)`` with the largest row caps (the last one shrunk first) under ``limit``
    characters; the caps start at ``sizes``."""
    caps = list(sizes)
    text = make(*caps)
    for index in reversed(range(len(caps))):
        if len(text) <= limit:
            return text
        low, high = 0, caps[index]
        while low < high:  # the largest cap of this table that fits
            mid = (low + high + 1) // 2
            caps[index] = mid
            if len(make(*caps)) <= limit:
                low = mid
            else:
                high = mid - 1
        caps[index] = low
        text = make(*caps)
    if len(text) > limit:  # only the fixed parts left, and still too long: cut at a line
        text = text[:limit - 100].rsplit("\n", 1)[0] + "\n\n…(cut to GitHub's size limit)\n"
    return text


def body(rows: list[Row], base: str, head_sha: str, requirements: Iterable[str],
         link_base: str | None = None, version: str = "", declared: dict[str, list[str]] | None = None,
         rules: Iterable[RuleNote] = (), limit: int = MAX_BODY_CHARS) -> str:
    proposed, shown, left = _split(rows)
    notes = list(rules)

    def make(cap_shown: int, cap_left: int, cap_lines: int) -> str:
        measured = hardware(shown[:cap_shown] + left[:cap_left])
        parts = [
            MARKER,
            f"Adopter found code pushed to {code(base)} (at {head_sha[:7]}) where an optimized kernel "
            f"applies, rewrote it, and checked each rewrite on the real module before proposing it.",
            "",
            f"### Patches in this pull request ({len(proposed)})",
            patch_table(shown, link_base, cap_shown) if proposed else "None.",
        ]
        if measured:
            parts += ["", f"Measured on: {cell(measured)}."]
        parts += ["", LEGEND]
        details = measurements(shown[:cap_shown] + left[:cap_left], link_base)
        if details:
            parts += ["", "<details><summary>How each patch was measured</summary>", ""]
            parts += details[:cap_lines] + _more(len(details), min(cap_lines, len(details)), "see the results file")
            parts += ["", "</details>"]
        if notes:
            parts += ["", "### Why these rules help"] + rule_lines(notes)
        if left:
            parts += ["", f"### Left out ({len(left)})",
                      "Patches that failed verification or were slower here are never proposed.", "",
                      left_out_table(left, link_base, cap_left)]
        parts += ["", "### New dependencies"]
        parts += dependencies(requirements, declared) or ["None."]
        first_rule = (proposed or rows)[0].rule if rows else "ADP005"
        parts += ["", SILENCE.format(rule=cell(first_rule), base=code(base)), "",
                  f"<sub>Made by adopter {cell(version)} from {head_sha[:12]}. This pull request is rebuilt "
                  f"on every push to {code(base)}: commits pushed to its branch are replaced.</sub>"]
        return "\n".join(parts) + "\n"

    return fit(make, (len(shown), len(left), len(shown) + len(left)), limit)


def summary(rows: list[Row], findings: int, annotated: int, base: str | None, mode: str,
            requirements: Iterable[str], pull_request_url: str | None, errors: list[tuple[str, str]],
            changes: str, link_base: str | None = None, declared: dict[str, list[str]] | None = None,
            notes: Iterable[str] = (), rules: Iterable[RuleNote] = (), limit: int = MAX_SUMMARY_CHARS) -> str:
    proposed, shown, left = _split(rows)
    notes = list(notes)
    rule_notes = list(rules)
    where = "the results file lists them all"

    def make(cap_shown: int, cap_left: int, cap_errors: int) -> str:
        parts = [f"## Adopter: {findings} finding{'s' if findings != 1 else ''} in the changed files "
                 f"({cell(changes)})", ""]
        if annotated:
            parts.append(f"{annotated} on changed lines (annotated).")
        if pull_request_url:
            parts.append(f"Pull request: {pull_request_url}")
        elif mode == "report" and proposed:
            parts.append("Report mode: nothing was pushed and no pull request was opened.")
        parts += ["", f"### Patches ({len(proposed)})",
                  patch_table(shown, link_base, cap_shown, where) if proposed else "None."]
        measured = hardware(rows)
        if measured:
            parts += ["", f"Measured on: {cell(measured)}."]
        details = measurements(shown[:cap_shown] + left[:cap_left], link_base)
        if details:
            parts += ["", "#### How each patch was measured"] + details
        if rule_notes:
            parts += ["", "### Why these rules help"] + rule_lines(rule_notes)
        if left:
            parts += ["", f"### Left out ({len(left)})", left_out_table(left, link_base, cap_left, where)]
        deps = dependencies(requirements, declared)
        if deps:
            parts += ["", "### New dependencies"] + deps
        if notes:
            parts += ["", "### Notes"] + [f"- {cell(n)}" for n in notes[:200]]
        if errors:
            parts += ["", "### Files not analysed"] + [f"- {code(p)}: {cell(m)}" for p, m in errors[:cap_errors]]
            parts += _more(len(errors), min(cap_errors, len(errors)), "see the log")
        return "\n".join(parts) + "\n"

    return fit(make, (len(shown), len(left), len(errors)), limit)
