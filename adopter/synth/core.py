"""``fix_text``: analyse, plan, edit, re-analyse, until nothing fixable is left.

Each round plans every match of the current text, applies the plans that touch disjoint
code (the earlier rule first), and analyses the result again, so findings of several rules
compose and a second run finds nothing more to change.  A round's output must parse; a plan
whose edit does not is never tried again.  Moving statements across an ``if``
(if-straddling) is applied alone and kept only if the match then fuses inside the branch.
"""

from __future__ import annotations

import ast
import difflib
from ..records import dataclass, field, replace

from ..engine import AnalysisError, Finding, analyze, fixable, statement_start
from ..match import Match
from ..newer_syntax import parse as parse_newer, restore
from ..ruleset import Rule
from .apply import rewrite
from .plan import Plan, Planner, Skip
from .render import RenderError
from .style import style_for
from .text import overlaps

MAX_ROUNDS = 24


@dataclass(frozen=True)
class FixResult:
    """What :func:`fix_text` did to one file.

    ``text`` is the new source (the input when nothing changed or on error); ``applied``
    the findings that were rewritten; ``skipped`` the findings left as they are, each with
    the reason; ``requirements`` the kernel packages the new code imports
    (``adopter-kernels>=0.1.0``); ``error`` is set when the file could not be fixed at all.
    """

    text: str
    applied: list[Finding] = field(default_factory=list)
    skipped: list[tuple[Finding, str]] = field(default_factory=list)
    requirements: set[str] = field(default_factory=set)
    error: str | None = None
    # with a run (:mod:`.run`): other files of the run -> the edits their calls of a function
    # this file's patch gives a flag need (``need_weights=False``); :func:`.run.fix_files` applies them
    callers: dict[str, list] = field(default_factory=dict)
    # each applied finding's first line in the input text, in ``applied``'s order: a finding of a
    # later round is placed in that round's text, which the earlier rounds' rewrites may have
    # moved; None where those rewrites changed its first line (the research attention benchmark
    # pairs labelled sites with the findings fixed through these)
    origins: list[int | None] = field(default_factory=list)

    def changed(self, original: str) -> bool:
        return self.text != original


def requirement(rule: Rule) -> str:
    return rule.kernel.requirement


def _finding(rule: Rule, match: Match, path: str, planner: Planner) -> Finding:
    line, col, end_line, end_col = match.span
    # (placed as the engine places it: a step inside a statement opened on an earlier line is
    # reported at the statement's first line, so a decline names the site `adopter check` names)
    line, col = statement_start(match, line, col)
    index = planner.index
    return Finding(
        rule=rule.id, name=rule.name, path=path, line=line, column=index.char_col(line, col) + 1,
        end_line=end_line, end_column=index.char_col(end_line, end_col) + 1, message=rule.message,
        fixable=fixable(rule, match), class_name=match.class_name,
    )


def _select(plans: list[Plan], order: dict[str, int], single: bool) -> list[list[Plan]]:
    """Plans to apply together this round, grouped with the duplicates each one covers."""
    direct = [p for p in plans if p.edits.straddle is None]
    direct.sort(key=lambda p: (order.get(p.rule.id, 0), p.regions[0] if p.regions else (0, 0, 0, 0)))
    groups: list[list[Plan]] = []
    for plan in direct:
        same = next((g for g in groups if g[0].edits.key() == plan.edits.key()), None)
        if same is not None:
            same.append(plan)
            continue
        if single and groups:
            continue
        met = [g for g in groups if any(overlaps(a, b) for a in g[0].regions for b in plan.regions)]
        if len(met) == 1 and _nestable(met[0][0], plan):
            met[0][0] = _nested(met[0][0], plan)
            met[0].append(plan)
            continue
        if met:
            continue
        groups.append([plan])
    if groups:
        return groups
    straddles = sorted((p for p in plans if p.edits.straddle is not None),
                       key=lambda p: (order.get(p.rule.id, 0), p.regions[0]))
    return [[straddles[0]]] if straddles else []


def _nestable(host: Plan, plan: Plan) -> bool:
    """Can ``plan`` be tried inside ``host``'s guarded branch?  Both guard the very same
    statements (``if guard: <statements> else: <fused>``) and edit nothing else (imports aside),
    as two helpers a setting picks, fused at one caller, do (sssegmentation's non-local block:
    ``gaussian`` and ``embeddedgaussian``).  Each guard keeps the original wherever its own fused
    form would differ, so nesting the second in the first's original branch keeps both exact:
    the first's fused form where its guard lets it, else the second's, else the statements."""
    a, b = host.edits, plan.edits
    if host.rule.id != plan.rule.id or a.wrap is None or b.wrap is None or host.regions != plan.regions:
        return False
    if any(e.expr or e.delete or e.replace_stmt or e.straddle is not None or e.params or e.keywords for e in (a, b)):
        return False
    wa, wb = a.wrap, b.wrap
    return (wa.first, wa.last) == (wb.first, wb.last) and all(
        w.guard is not None and not w.keep and not w.prelude and not w.hoist and not w.tail for w in (wa, wb)) and not wb.inner


def _nested(host: Plan, plan: Plan) -> Plan:
    """``host`` with ``plan``'s guarded form tried inside its guarded branch (:func:`_nestable`)."""
    wrap = replace(host.edits.wrap, inner=(*host.edits.wrap.inner, (plan.edits.wrap.guard, plan.edits.wrap.fast)))
    edits = replace(host.edits, wrap=wrap, imports=host.edits.imports | plan.edits.imports)
    return replace(host, edits=edits)


def _normalise(text: str) -> tuple[str, str | None]:
    if "\r" not in text:
        return text, None
    newline = "\r\n" if "\r\n" in text else "\r"
    return text.replace("\r\n", "\n").replace("\r", "\n"), newline


def fix_text(text: str, path: str, rules: list[Rule], package: str | None = None, run=None) -> FixResult:
    """Rewrite ``text`` (the source of ``path``) to use the kernels of ``rules``; ``run``: the
    :class:`.run.Run` of the files fixed together, whose calls of this file's functions may
    decline what they hand back (``FixResult.callers``)."""
    if run is None:
        return _fix_text(text, path, rules, package)
    from .run import flagged

    with run.on(path):
        result = _fix_text(text, path, rules, package)
    if result.error is None and result.applied and run.recorded:
        result = replace(result, callers=flagged(run, path, parse_newer(_normalise(result.text)[0])[0]))
    return result


def _fix_text(text: str, path: str, rules: list[Rule], package: str | None = None) -> FixResult:
    work, newline = _normalise(text)
    original = None  # (the text in newer syntax whose rendering ``work`` is, when it is one)
    order = {rule.id: i for i, rule in enumerate(sorted(rules, key=lambda r: (r.priority, r.id)))}
    current = work
    applied: list[Finding] = []
    requirements: set[str] = set()
    failed: dict[tuple, str] = {}
    single = False
    skipped: list[tuple[Finding, str]] = []
    active = list(rules)
    cached = None
    parsed = None  # (text, its ast): the last rewrite's parse check, reused by its analysis
    uses = None  # (text, its name-use counts): carried from one rewrite to the next
    style = style_for(path)
    history: list[tuple[str, list, list]] = []  # each applied round: (its text, its declines, its patches)
    rounds: list[int] = []  # the index in ``history`` of the round that applied each of ``applied``
    for round_no in range(MAX_ROUNDS + 1):
        try:
            key = (current, tuple(rule.id for rule in active))
            if cached is None or cached[0] != key:  # a failed rewrite leaves the text as it was
                tree = parsed[1] if parsed is not None and parsed[0] is current else None
                cached = (key, analyze(current, path, active, package, tree=tree))
            analysis = cached[1]
            if analysis.rendered is not None and original is None:  # newer syntax: fix its rendering
                original, work = work, analysis.rendered
                current = work
                cached = ((current, key[1]), analysis)
        except AnalysisError as exc:
            if current is work:
                return FixResult(text, error=str(exc))
            return FixResult(text, error=f"internal error: a rewrite did not analyse: {exc}")
        if analysis.tree is None or not analysis.matches:
            skipped = []
            break
        planner = Planner(current, analysis.tree)
        plans, skipped = _plan_all(analysis.matches, planner, path, failed)
        skipped = _as_reported(skipped, analysis.findings)
        # Rewrites replace operations by kernel calls: a rule that matches nothing now will
        # match nothing later either, so later rounds only re-run the rules that matched.
        matched = {rule.id for rule, _ in analysis.matches}
        active = [rule for rule in active if rule.id in matched]
        if not plans or round_no == MAX_ROUNDS:
            skipped += [(p.finding, "not reached within the round limit") for p in plans]
            break
        groups = _select(plans, order, single)
        chosen = [g[0] for g in groups]
        try:
            done = rewrite(current, analysis.tree, [p.edits for p in chosen], style, path,
                           uses[1] if uses is not None and uses[0] is current else None)
            new = done.text
            parsed = (new, done.tree if done.tree is not None else ast.parse(new))
            uses = (new, done.uses)
        except Exception as exc:  # noqa: BLE001 - a rewrite that fails is dropped, never a crash
            if len(chosen) > 1:
                single = True
            else:
                failed[chosen[0].signature] = f"the rewrite could not be applied ({_brief(exc)})"
            continue
        straddle = chosen[0].edits.straddle is not None
        if straddle:
            reason = _straddle_fuses(new, path, rules, package, chosen[0])
            if reason is not None:
                failed[chosen[0].signature] = reason
                continue
        else:
            done_now = [plan.finding for group in groups for plan in group]
            history.append((current, skipped + _set_aside(plans, groups), done_now))
            for group in groups:
                for plan in group:
                    applied.append(plan.finding)
                    rounds.append(len(history) - 1)
                    requirements.add(requirement(plan.rule))
        current = new
    if history:
        skipped += _earlier_declines(history, current, skipped)
    skipped.sort(key=lambda item: (item[0].line, item[0].column, item[0].rule))
    if current == work:
        return FixResult(text, applied=[], skipped=skipped)
    if original is not None:
        try:
            current = restore(original, work, current)
        except ValueError as exc:  # every patch is declined: one of them touches a line in newer syntax
            declined = skipped + [(finding, str(exc)) for finding in applied]
            declined.sort(key=lambda item: (item[0].line, item[0].column, item[0].rule))
            return FixResult(text, applied=[], skipped=declined)
    if newline is not None:
        current = current.replace("\n", newline)
    return FixResult(current, applied=applied, skipped=skipped, requirements=requirements,
                     origins=_origins(history, applied, rounds))


def _origins(history: list, applied: list[Finding], rounds: list[int]) -> list[int | None]:
    """The first line of each applied finding in the first round's text (FixResult.origins):
    as it is for the first round's patches; for a later round's, through the lines the rewrites
    left unchanged, else the one line of the first text reading the same but for indentation and
    a trailing comment (an earlier patch moved the statement into its guarded branch, deepab's
    second criss-cross attention, or its comment above it, curvenet's); None where neither
    places it."""
    maps: dict[int, list] = {}
    first: dict[str, list[int]] | None = None
    out: list[int | None] = []
    for found, i in zip(applied, rounds):
        if i == 0:
            out.append(found.line)
            continue
        lines = history[i][0].splitlines()
        if i not in maps:
            matcher = difflib.SequenceMatcher(None, lines, history[0][0].splitlines(), autojunk=False)
            maps[i] = [op for op in matcher.get_opcodes() if op[0] == "equal"]
        line = next((b0 + found.line - a0 for _, a0, a1, b0, _ in maps[i] if a0 < found.line <= a1), None)
        if line is None and found.line <= len(lines):
            if first is None:
                first = {}
                for n, text in enumerate(history[0][0].splitlines(), 1):
                    first.setdefault(code_of(text), []).append(n)
            same = first.get(code_of(lines[found.line - 1]), [])
            line = same[0] if len(same) == 1 else None
        out.append(line)
    return out


def _as_reported(skipped: list, findings: list[Finding]) -> list[tuple[Finding, str]]:
    """Declines spanning what ``adopter check`` reports: where one place has matches ending at
    several steps (SAM 3's residual sum normed in either branch of an ``if``), the analysis keeps
    one match and its finding spans every end; the decline of that match names the same span."""
    ends = {(f.rule, f.line, f.column): f for f in findings}
    out = []
    for finding, why in skipped:
        whole = ends.get((finding.rule, finding.line, finding.column))
        if whole is not None and (whole.end_line, whole.end_column) > (finding.end_line, finding.end_column):
            finding = replace(finding, end_line=whole.end_line, end_column=whole.end_column)
        out.append((finding, why))
    return out


def _set_aside(plans: list[Plan], groups: list[list[Plan]]) -> list[tuple[Finding, str]]:
    """The plans of a round left for a later one because their edits overlap a chosen plan's,
    each with the reason it was set aside.  A later round usually fixes them; where the chosen
    patch changed the code so that they no longer match (sssegmentation's non-local block: two
    helpers a setting picks, fused at the same caller lines), :func:`_earlier_declines` reports
    them with this reason instead of dropping them."""
    chosen = [g[0] for g in groups]
    taken = {id(p) for g in groups for p in g}
    out = []
    for plan in plans:
        if id(plan) in taken:
            continue
        first = next((c for c in chosen for a in c.regions for b in plan.regions if overlaps(a, b)), None)
        where = f"the fix of line {first.finding.line} ({first.rule.id})" if first is not None else "another fix"
        out.append((plan.finding, f"its edits overlap {where}, applied first, after which it no longer matches; "
                                  "rewrite it by hand"))
    return out


def _earlier_declines(history: list, final: str, skipped: list) -> list[tuple[Finding, str]]:
    """Declines of earlier rounds whose finding the last round no longer matched although its
    lines are still there as they were: a patch nearby changed what the matcher reads (babybert's
    ``layer_norm_2(x + self.mlp(x))``, declined for the Dropout last in ``self.mlp``, no longer
    matches once ADP006 made ``self.mlp`` a FoldingSequential).  The reason still describes that
    code, so the finding keeps it (at its lines in the final text) instead of vanishing.  Not
    when a later round patched it, nor when the final round declines it itself.

    A patch of the same round inside the finding's lines (sssegmentation's non-local block: the
    ``gaussian`` helper fused at the caller's lines, the ``embeddedgaussian`` one declined over
    the same caller) does not drop it either: the finding keeps its reason, placed from its first
    line, which the patch left as it was (:func:`_placed`)."""
    out: list[tuple[Finding, str]] = []
    maps: dict[tuple[int, int], list] = {}

    def moved(i: int, j: int, first: int, last: int) -> tuple[int, int] | None:
        """Lines first..last of round i's text in round j's text (j == len(history): the final
        text), where they lie in a run the rewrites left unchanged."""
        if (i, j) not in maps:
            new = final if j == len(history) else history[j][0]
            matcher = difflib.SequenceMatcher(None, history[i][0].splitlines(), new.splitlines(), autojunk=False)
            maps[(i, j)] = [op for op in matcher.get_opcodes() if op[0] == "equal"]
        for _, a0, a1, b0, _ in maps[(i, j)]:
            if a0 < first and last <= a1:
                return b0 + first - a0, b0 + last - a0
        return None

    def placed(i: int, j: int, found: Finding) -> tuple[int, int] | None:
        """The finding's lines in round j's text: as a whole where unchanged, else from its
        first line (unchanged), its end shifted by the lines the rewrites added (_placed)."""
        span = moved(i, j, found.line, found.end_line)
        if span is not None:
            return span
        first = moved(i, j, found.line, found.line)
        if first is None:
            return None
        new = final if j == len(history) else history[j][0]
        return _placed(first[0], found.end_line + len(new.splitlines()) - len(history[i][0].splitlines()))

    def meets(found: Finding, span: tuple[int, int], others) -> bool:
        return any(o.rule == found.rule and o.line <= span[1] and span[0] <= o.end_line for o in others)

    def patched(i: int, found: Finding) -> bool:
        """A later round patched it (a match of it there, maybe with other lines, overlaps a
        patch).  The round that declined it patched other findings only: one of them counts
        where it starts where this one does."""
        if any(o.rule == found.rule and (o.line, o.column) == (found.line, found.column) for o in history[i][2]):
            return True
        return any((at := placed(i, j, found)) is not None and meets(found, at, history[j][2])
                   for j in range(i + 1, len(history)))

    for i, (_, declined, _) in enumerate(history):
        for found, why in declined:
            span = placed(i, len(history), found)
            if span is None or meets(found, span, [f for f, _ in skipped + out]):
                continue
            if patched(i, found):
                continue
            out.append((replace(found, line=span[0], end_line=span[1]), why))
    return out


def code_of(line: str) -> str:
    """A line's code without its indentation and a trailing comment (a ``#`` after an even
    number of quotes of each kind: outside any string on the line)."""
    at = line.find("#")
    while at >= 0:
        head = line[:at]
        if head.count("'") % 2 == 0 and head.count('"') % 2 == 0:
            return head.strip()
        at = line.find("#", at + 1)
    return line.strip()


def _placed(first: int, end: int) -> tuple[int, int]:
    """A finding's lines from its first line and an estimated end: never before the first
    (a rewrite that removed lines inside it may shift the estimate above it)."""
    return first, max(first, end)


def _plan_all(matches, planner: Planner, path: str, failed: dict) -> tuple[list[Plan], list]:
    plans: list[Plan] = []
    skipped: list[tuple[Finding, str]] = []
    for rule, match in matches:
        finding = _finding(rule, match, path, planner)
        signature = planner.signature(rule, match)
        if signature in failed:
            skipped.append((finding, failed[signature]))
            continue
        try:
            plans.append(planner.plan(rule, match, finding))
        except (Skip, RenderError) as exc:
            skipped.append((finding, str(exc)))
        except Exception as exc:  # noqa: BLE001 - one odd match must not stop the file
            skipped.append((finding, f"internal error while planning: {type(exc).__name__}: {exc}"))
    return plans, skipped


def _straddle_fuses(text: str, path: str, rules, package, plan: Plan) -> str | None:
    """None if, after moving statements into the if's branches, the match fuses there."""
    try:
        analysis = analyze(text, path, [plan.rule], package)
    except AnalysisError as exc:
        return f"moving statements across the if broke the file ({exc})"
    if analysis.tree is None:
        return "after moving statements across the if, the match is gone"
    planner = Planner(text, analysis.tree)
    reason = "after moving statements across the if, the match is gone"
    for rule, match in analysis.matches:
        if planner.signature(rule, match) != plan.signature:
            continue
        try:
            moved = planner.plan(rule, match, plan.finding)
        except (Skip, RenderError) as exc:
            reason = f"fusing inside the if would not apply: {exc}"
            continue
        if moved.edits.straddle is None:
            return None
    return reason


def _brief(exc: Exception) -> str:
    if isinstance(exc, RecursionError):  # LibCST walks trees recursively
        return "the code is nested too deeply to rewrite"
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
