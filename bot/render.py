"""The pull request's title and body, and the job summary: Markdown from the patch table.

The body starts with a hidden marker (:data:`MARKER`) by which the bot recognises its own
pull request, lists one row per patch (rule, place, kernel and package, verification with the
largest absolute difference, forward and forward+backward speed ratio, peak-memory ratio, the
hardware they were measured on), then what was left out and why, the new dependencies, and how
to silence a rule or the bot.  Every cell is escaped: paths and reasons come from the analysed
repository and, in the secure split, from an artifact.
"""

from __future__ import annotations

import re
from typing import Iterable

from .patches import FAILED, HELD_BACK, NOT_FIXED, PROPOSED, SLOWER, UNVERIFIED, WHOLE, Row

MARKER = "<!-- adopter-bot -->"
MAX_ROWS = 150  # GitHub caps a body at 65536 characters
STATUS_TEXT = {
    PROPOSED: "proposed",
    SLOWER: "slower on this runner: left out",
    FAILED: "failed verification: left out",
    UNVERIFIED: "not verified: left out",
    NOT_FIXED: "no automatic fix",
    HELD_BACK: "held back",
    WHOLE: "all patches together",
}


def cell(value: object) -> str:
    """A Markdown table cell: no pipes, no line breaks, no HTML, no @-mentions."""
    text = str(value)
    text = re.sub(r"\s+", " ", text).strip()
    text = text.replace("\\", "\\\\").replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")
    text = text.replace("@", "@\u200b")
    return text


def code(value: str) -> str:
    """A code span in a table cell: Markdown and HTML are inert inside it, pipes are not."""
    value = re.sub(r"\s+", " ", str(value)).strip().replace("`", "'").replace("|", "\\|")
    return f"`{value}`" if value else ""


def ratio(value: float | None, what: str = "speed") -> str:
    if value is None:
        return "–"
    if what == "memory":  # original peak / patched peak
        if value >= 1.005:
            return f"{value:.2f}× less"
        return f"{value:.2f}× (same)" if value >= 0.995 else f"{value:.2f}× (more)"
    if value >= 1.0:
        return f"{value:.2f}× faster" if value >= 1.005 else f"{value:.2f}× (same)"
    return f"{value:.2f}× (slower)"


def verified(row: Row) -> str:
    if row.verified == "off":
        return "not run (verify: false)"
    if row.verified == "yes":
        diff = ""
        if row.max_abs_diff is not None:
            diff = ", max abs diff 0" if row.max_abs_diff == 0 else f", max abs diff {row.max_abs_diff:.1e}"
        return f"yes{diff}"
    return "no"


def location(row: Row, link_base: str | None) -> str:
    text = f"{row.path}:{row.line}"
    if link_base:
        path = "/".join(part for part in row.path.split("/"))
        return f"[{cell(text)}]({link_base}/{path.replace(' ', '%20').replace(')', '%29')}#L{row.line})"
    return code(text)


def patch_table(rows: Iterable[Row], link_base: str | None = None) -> str:
    rows = list(rows)
    out = [
        "| Rule | Where | Kernel (package) | Verified | Forward | Forward+backward | Peak memory | Hardware |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows[:MAX_ROWS]:
        out.append("| " + " | ".join([
            f"{cell(row.rule)} {cell(row.name)}",
            location(row, link_base),
            f"{code(row.kernel)} ({code(row.package)})" if row.kernel else "",
            verified(row),
            ratio(row.forward_ratio),
            ratio(row.forward_backward_ratio),
            ratio(row.memory_ratio, "memory"),
            cell(row.device) or "–",
        ]) + " |")
    if len(rows) > MAX_ROWS:
        out.append(f"\n…and {len(rows) - MAX_ROWS} more.")
    return "\n".join(out)


def left_out_table(rows: Iterable[Row], link_base: str | None = None) -> str:
    rows = list(rows)
    out = [
        "| Rule | Where | Why it is not in this pull request | Forward | Forward+backward | Hardware |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows[:MAX_ROWS]:
        why = STATUS_TEXT.get(row.status, row.status)
        if row.reason:
            why += f" ({row.reason})"
        out.append("| " + " | ".join([
            f"{cell(row.rule)} {cell(row.name)}", location(row, link_base), cell(why),
            ratio(row.forward_ratio), ratio(row.forward_backward_ratio), cell(row.device) or "–",
        ]) + " |")
    if len(rows) > MAX_ROWS:
        out.append(f"\n…and {len(rows) - MAX_ROWS} more.")
    return "\n".join(out)


def hardware(rows: Iterable[Row]) -> str:
    names = sorted({r.device for r in rows if r.device})
    return ", ".join(names)


LEGEND = (
    "Ratios are original / patched, measured on the hardware named: time of the forward pass, time of "
    "forward+backward, and peak memory (above 1: the patch is faster, or uses less). Verification builds the original and "
    "the patched class with the same arguments, loads the original's state dict into the patch "
    "(strict) and compares outputs and gradients with `torch.testing.assert_close`."
)

SILENCE = """\
### Not wanted?
- One place: add `# adopter: ignore[{rule}]` at the end of the line.
- A rule, project-wide: `ignore = ["{rule}"]` under `[tool.adopter]` in `pyproject.toml`.
- Only reports, no pull requests: set `mode: report` on the Adopter step of the workflow; or remove that step to turn the bot off.
- Closing this pull request is fine: the next push to {base} opens a fresh one if there is still something to propose."""


def title(base: str, count: int) -> str:
    return f"Adopter: {count} optimized-kernel patch{'es' if count != 1 else ''} for {base}"


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


def body(rows: list[Row], base: str, head_sha: str, requirements: Iterable[str],
         link_base: str | None = None, version: str = "", declared: dict[str, list[str]] | None = None) -> str:
    proposed = [r for r in rows if r.status == PROPOSED]
    shown = proposed + [r for r in rows if r.status == WHOLE]
    left = [r for r in rows if r.status not in (PROPOSED, WHOLE)]
    measured = hardware(rows)
    parts = [
        MARKER,
        f"Adopter found code pushed to {code(base)} (at {head_sha[:7]}) where an optimized kernel "
        f"applies, rewrote it, and checked each rewrite on the real module before proposing it.",
        "",
        f"### Patches in this pull request ({len(proposed)})",
        patch_table(shown, link_base) if proposed else "None.",
    ]
    if measured:
        parts += ["", f"Measured on: {cell(measured)}."]
    parts += ["", LEGEND]
    if left:
        parts += ["", f"### Left out ({len(left)})",
                  "Patches that failed verification or were slower here are never proposed.", "",
                  left_out_table(left, link_base)]
    parts += ["", "### New dependencies"]
    parts += dependencies(requirements, declared) or ["None."]
    first_rule = (proposed or rows)[0].rule if rows else "ADP005"
    parts += ["", SILENCE.format(rule=cell(first_rule), base=code(base)), "",
              f"<sub>Made by adopter {cell(version)} from {head_sha[:12]}. This pull request is rebuilt "
              f"on every push to {code(base)}: commits pushed to its branch are replaced.</sub>"]
    return "\n".join(parts) + "\n"


def summary(rows: list[Row], findings: int, annotated: int, base: str | None, mode: str,
            requirements: Iterable[str], pull_request_url: str | None, errors: list[tuple[str, str]],
            changes: str, link_base: str | None = None, declared: dict[str, list[str]] | None = None,
            notes: Iterable[str] = ()) -> str:
    proposed = [r for r in rows if r.status == PROPOSED]
    shown = proposed + [r for r in rows if r.status == WHOLE]
    left = [r for r in rows if r.status not in (PROPOSED, WHOLE)]
    parts = [f"## Adopter: {findings} finding{'s' if findings != 1 else ''} in the changed files ({cell(changes)})", ""]
    if annotated:
        parts.append(f"{annotated} on changed lines (annotated).")
    if pull_request_url:
        parts.append(f"Pull request: {pull_request_url}")
    elif mode == "report" and proposed:
        parts.append("Report mode: nothing was pushed and no pull request was opened.")
    parts += ["", f"### Patches ({len(proposed)})", patch_table(shown, link_base) if proposed else "None."]
    measured = hardware(rows)
    if measured:
        parts += ["", f"Measured on: {cell(measured)}."]
    if left:
        parts += ["", f"### Left out ({len(left)})", left_out_table(left, link_base)]
    deps = dependencies(requirements, declared)
    if deps:
        parts += ["", "### New dependencies"] + deps
    notes = list(notes)
    if notes:
        parts += ["", "### Notes"] + [f"- {cell(n)}" for n in notes]
    if errors:
        parts += ["", "### Files not analysed"] + [f"- {code(p)}: {cell(m)}" for p, m in errors]
    return "\n".join(parts) + "\n"
