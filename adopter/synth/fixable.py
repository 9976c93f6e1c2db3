"""Which findings ``adopter fix`` will rewrite, decided by the planning step ``fix`` runs.

``check`` used to call a finding fixable when its rule has a target.  ``fix`` then left some
of them alone (a conv+BN pair inside ``nn.Sequential``, a softmax that ADP010's rewrite of
the whole attention absorbs), so the count ``check`` printed was not what ``fix`` did.  Here
each match goes through the same :class:`~adopter.synth.plan.Planner` ``fix`` uses (``ast``
only: no LibCST, nothing the check path must not import), and then through the same choice
between overlapping plans (:func:`adopter.synth.core._select`'s rule: the rule that comes
first by priority wins, the other's code is gone after its rewrite).  A finding that is not
planned, or loses to another rule's plan, is reported not fixable, with the reason.

Fix safety follows Ruff: a rule marked ``fix_safety = "unsafe: why"`` is applied by ``fix``
only with ``--unsafe-fixes``.  Without it its findings are planned as ``fix`` plans them (not
at all: the rule takes no part, so it absorbs nothing), and one that ``fix --unsafe-fixes``
would rewrite says so (:data:`UNSAFE`, counted apart as a hidden fix, as Ruff counts them).

What this cheap criterion cannot see is an edit that plans but fails when LibCST applies it,
and a move across an ``if`` (if-straddling) that does not fuse after the move; both are rare
(``benchmarks/diff_quality.py`` prints the agreement with ``fix`` over the paper corpus).
"""

from __future__ import annotations

from ..records import replace

from ..engine import Analysis, Finding
from ..newer_syntax import char_segment
from .plan import Planner, Skip
from .render import RenderError
from .text import overlaps


# The start of ``not_fixable`` for a finding only ``fix --unsafe-fixes`` rewrites.
UNSAFE = "unsafe fix: apply with --unsafe-fixes"


def unsafe_reason(rule) -> str:
    """What ``check`` and ``fix`` say of an unsafe rule's finding left alone without
    ``--unsafe-fixes``: :data:`UNSAFE` and the rule's own why."""
    why = rule.fix_safety.split(":", 1)[1].strip() if ":" in rule.fix_safety else ""
    return f"{UNSAFE} ({why})" if why else UNSAFE


def hidden_unsafe(findings) -> int:
    """How many findings only ``fix --unsafe-fixes`` would rewrite (Ruff's hidden fixes)."""
    return sum(1 for f in findings if not f.fixable and f.not_fixable.startswith(UNSAFE))


def _key(finding: Finding) -> tuple:
    return (finding.rule, finding.line, finding.column, finding.end_line, finding.end_column)


def _by_start(findings: list[Finding]) -> dict[tuple, Finding]:
    """The findings by (rule, line, column), for a position that starts one finding only."""
    out: dict[tuple, Finding] = {}
    seen: set[tuple] = set()
    for finding in findings:
        start = (finding.rule, finding.line, finding.column)
        if start in seen:
            out.pop(start, None)
        else:
            seen.add(start)
            out[start] = finding
    return out


def _squeeze(text: str) -> str:
    return "".join(text.split())


def _survives(loser, winner, index) -> bool:
    """Does the code ``loser`` rewrites outlive ``winner``'s rewrite?  Yes when the winner
    keeps the original under a guard (``if <not covered>: <original> else: <fast>``), or
    writes the loser's code again in its fast path (statements of the region it does not
    fuse): ``fix`` then rewrites it in a later round."""
    wrap = winner.edits.wrap
    if wrap is None:
        return False
    if wrap.guard is not None:
        return True
    spans = [*loser.edits.expr, *loser.edits.delete, *loser.edits.replace_stmt]
    if not spans:
        return False
    fast = _squeeze(wrap.fast)
    return all(_squeeze(char_segment(index.lines, *span)) in fast for span in spans)


def plan_findings(analysis: Analysis, text: str, path: str, unsafe_fixes: bool = False,
                  applied: frozenset[str] | None = None) -> list[Finding]:
    """``analysis.findings`` with ``fixable`` set by planning, and ``not_fixable`` saying why
    a finding of a rule with a target will not be rewritten, for ``fix`` (``unsafe_fixes``:
    for ``fix --unsafe-fixes``).  ``applied``: the ids of the rules ``fix`` would apply here
    (None: all); the others (informational for this target) take no part in the planning, so
    that they cannot claim a site another rule's fix will take."""
    applies = (lambda rule: True) if applied is None else (lambda rule: rule.id in applied)
    if unsafe_fixes or all(rule.safe_fix for rule, _ in analysis.matches if rule.fixable and applies(rule)):
        return _planned(analysis, text, path, applies)
    safe = _planned(analysis, text, path, lambda rule: rule.safe_fix and applies(rule))
    every = {_key(f): f for f in _planned(analysis, text, path, applies)}
    unsafe = {rule.id: rule for rule, _ in analysis.matches if rule.fixable and not rule.safe_fix}
    out = []
    for finding in safe:
        rule = unsafe.get(finding.rule)
        if rule is not None:
            planned = every.get(_key(finding), finding)
            reason = unsafe_reason(rule) if planned.fixable else planned.not_fixable
            finding = replace(finding, fixable=False, not_fixable=reason)
        out.append(finding)
    return out


def _planned(analysis: Analysis, text: str, path: str, takes_part) -> list[Finding]:
    """Plan the matches of the fixable rules ``takes_part`` accepts (the others' findings are
    returned as they are)."""
    wanted = [(rule, match) for rule, match in analysis.matches if rule.fixable and takes_part(rule)]
    if not wanted or analysis.tree is None:
        return list(analysis.findings)
    from ..engine import _finding as engine_finding  # the same positions check reports

    lines = text.split("\n")
    by_key = {_key(f): f for f in analysis.findings}
    order = {rule.id: i for i, rule in enumerate(sorted({r.id: r for r, _ in analysis.matches}.values(),
                                                        key=lambda r: (r.priority, r.id)))}
    planner = Planner(text, analysis.tree)
    planner.index.assume_fresh_names()  # which fresh name a rewrite picks does not decide whether it is made
    verdict: dict[tuple, str] = {}  # finding key -> reason it will not be fixed ("" = fixed)
    plans = []
    by_start = _by_start(analysis.findings)
    for rule, match in wanted:
        key = _key(engine_finding(rule, match, path, lines))
        if key not in by_key:
            # (the analysis may lengthen a finding to the call of a helper its last step was
            # inlined from -- engine._to_call_site -- which this position does not redo: the
            # finding of the same rule starting here is this match's)
            key = _key(by_start[key[:3]]) if key[:3] in by_start else None
            if key is None:
                continue
        finding = by_key[key]
        if verdict.get(key) == "":
            # (two matches reported over the same code -- Swin's softmax written in both
            # branches of an if, one match per branch -- are planned as one: the planned one
            # rewrites the attention both report)
            continue
        try:
            plan = planner.plan(rule, match, finding)
        except (Skip, RenderError) as exc:
            verdict[key] = str(exc)
            continue
        except Exception as exc:  # noqa: BLE001 - one odd match must not stop the check
            verdict[key] = f"internal error while planning: {type(exc).__name__}: {exc}"
            continue
        verdict[key] = ""
        plans.append((key, plan))
    # Overlapping plans: the rule that comes first wins; another rule's plan over the same
    # code is absorbed when the winner's rewrite removes that code (see _survives).
    plans.sort(key=lambda item: (order.get(item[1].rule.id, 0), item[1].regions[0] if item[1].regions else ()))
    chosen = []
    for key, plan in plans:
        winner = next((other for other in chosen if other.rule.id != plan.rule.id
                       and any(overlaps(a, b) for a in other.regions for b in plan.regions)
                       and not _survives(plan, other, planner.index)), None)
        if winner is not None:
            verdict[key] = f"{winner.rule.id} ({winner.rule.name}) rewrites the same code"
            continue
        chosen.append(plan)
    out = []
    for finding in analysis.findings:
        reason = verdict.get(_key(finding))
        if reason:
            finding = replace(finding, fixable=False, not_fixable=reason)
        out.append(finding)
    return out
