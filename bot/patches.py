"""Changed files -> findings -> patches -> verified, benchmarked patches the bot may propose.

For every analysed file: the check (``adopter.engine.analyze``), the fix
(``adopter.synth.fix_text``), then, unless verification is off, ``adopter.verify.verify_file``
on the real module.  A patch is proposed only when it verified and was not slower; the others
stay in the table with the reason they were left out (failed, slower, could not be verified,
could not be fixed).  Left-out patches are taken out by fixing the file again without their
rules; a kept patch that shares a rule with a left-out one in the same file is held back with
it, and says so.

Nothing here knows about GitHub; ``main`` decides where the result goes.
"""

from __future__ import annotations

import math
import os
import platform
import re
import stat
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

from adopter.budget import DEFAULT_SECONDS, BudgetExceeded, time_budget
from adopter.config import Config, ConfigError, find_config
from adopter.engine import AnalysisError, Finding, analyze
from adopter.ruleset import Rule, RuleError
from adopter.source import MAX_BYTES, SourceError, decode, encode
from adopter.structure import package_of

from .actions import BotError

PROPOSED = "proposed"
SLOWER = "slower"
FAILED = "failed"
UNVERIFIED = "unverified"
NOT_FIXED = "not-fixed"
HELD_BACK = "held-back"
WHOLE = "whole-model"  # a passing check of all of a file's patches together (information, not a patch)
STATUSES = (PROPOSED, SLOWER, FAILED, UNVERIFIED, NOT_FIXED, HELD_BACK, WHOLE)

# A patch whose measured time is more than this fraction above the original's is "slower".
# Below it, the difference is within what a shared CI runner's timing noise produces.
SLOWER_TOLERANCE = 0.03


@dataclass(frozen=True)
class Row:
    """One patch (or one fixable finding that did not become a patch) in the table.

    The measurement fields say how the ratios were taken, so that the table can state it:
    ``spread`` is the timing noise (the largest relative difference between repeated round
    medians), ``on_hardware`` whether the runner's device is one the rule claims to help on
    (False: the ratios describe other hardware and are not shown as a speed-up)."""

    rule: str
    name: str
    path: str
    line: int
    class_name: str
    kernel: str
    package: str
    status: str
    verified: str  # "yes", "no" or "off"
    reason: str = ""
    max_abs_diff: float | None = None
    forward_ratio: float | None = None
    forward_backward_ratio: float | None = None
    memory_ratio: float | None = None
    device: str = ""
    spread: float | None = None
    torch: str = ""
    dtype: str = ""
    inputs: str = ""
    repeats: str = ""
    helps: str = ""  # the rule's declared hardware and modes ("cuda:training, cpu:inference")
    on_hardware: bool | None = None

    def as_dict(self) -> dict:
        return {
            "rule": self.rule, "name": self.name, "path": self.path, "line": self.line,
            "class": self.class_name, "kernel": self.kernel, "package": self.package,
            "status": self.status, "verified": self.verified, "reason": self.reason,
            "max_abs_diff": self.max_abs_diff, "forward_ratio": self.forward_ratio,
            "forward_backward_ratio": self.forward_backward_ratio, "memory_ratio": self.memory_ratio,
            "device": self.device, "spread": self.spread, "torch": self.torch, "dtype": self.dtype,
            "inputs": self.inputs, "repeats": self.repeats, "helps": self.helps, "on_hardware": self.on_hardware,
        }

    @property
    def measured(self) -> bool:
        return self.forward_ratio is not None or self.forward_backward_ratio is not None

    @classmethod
    def from_dict(cls, data: dict) -> "Row":
        """Rebuild a row from untrusted JSON (the secure split's artifact): types are checked."""
        if not isinstance(data, dict):
            raise ValueError("a row must be an object")

        def text(key: str, limit: int = 300) -> str:
            value = data.get(key, "")
            if not isinstance(value, str):
                raise ValueError(f"{key} must be a string")
            return value[:limit]

        def number(key: str) -> float | None:
            value = data.get(key)
            if value is None:
                return None
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError(f"{key} must be a finite number or null")
            return float(value)

        line = data.get("line")
        if isinstance(line, bool) or not isinstance(line, int) or line < 1:
            raise ValueError("line must be a positive integer")
        status = text("status")
        if status not in STATUSES:
            raise ValueError(f"unknown status {status!r}")
        if not re.fullmatch(r"[A-Z]{2,5}\d{3}(\+[A-Z]{2,5}\d{3})*", text("rule", 200)):
            raise ValueError(f"rule must look like ADP005, not {text('rule', 16)!r}")
        verified = text("verified")
        if verified not in ("yes", "no", "off"):
            raise ValueError(f"unknown verified value {verified!r}")
        on_hardware = data.get("on_hardware")
        if on_hardware is not None and not isinstance(on_hardware, bool):
            raise ValueError("on_hardware must be true, false or null")
        return cls(
            rule=text("rule", 200), name=text("name", 80), path=text("path", 500), line=line,
            class_name=text("class", 200), kernel=text("kernel", 200), package=text("package", 200),
            status=status, verified=verified, reason=text("reason", 500),
            max_abs_diff=number("max_abs_diff"), forward_ratio=number("forward_ratio"),
            forward_backward_ratio=number("forward_backward_ratio"), memory_ratio=number("memory_ratio"),
            device=text("device", 200), spread=number("spread"), torch=text("torch", 40), dtype=text("dtype", 40),
            inputs=text("inputs", 300), repeats=text("repeats", 200), helps=text("helps", 200),
            on_hardware=on_hardware,
        )


@dataclass
class Outcome:
    findings: list[Finding] = field(default_factory=list)
    rows: list[Row] = field(default_factory=list)
    files: dict[str, bytes] = field(default_factory=dict)  # repo-relative path -> new content
    requirements: set[str] = field(default_factory=set)
    needs: dict[str, set[str]] = field(default_factory=dict)  # patched file -> requirements it adds
    dependency_files: dict[str, list[str]] = field(default_factory=dict)  # dependency file -> what was added
    notes: list[str] = field(default_factory=list)
    errors: list[tuple[str, str]] = field(default_factory=list)
    rules: dict[str, Rule] = field(default_factory=dict)
    active: set[str] = field(default_factory=set)  # ids of the rules that ran

    @property
    def proposed(self) -> list[Row]:
        return [r for r in self.rows if r.status == PROPOSED]

    @property
    def left_out(self) -> list[Row]:
        return [r for r in self.rows if r.status not in (PROPOSED, WHOLE)]


@dataclass(frozen=True)
class Options:
    select: tuple[str, ...] = ()
    verify: bool = True
    benchmark: bool = True
    # Mode apply: per file, the (rule, line) patches an artifact says were kept.  The files are
    # fixed again with exactly those kept and nothing is verified (the artifact's measurements
    # are shown); the caller compares the result with what the artifact claims.
    replay: dict[str, frozenset[tuple[str, int]]] | None = None


def file_budget(config: Config) -> float:
    """CPU seconds one file's analysis and fix may take: ``file-timeout`` in ``[tool.adopter]``,
    else the CLI's default (the same budget ``adopter check`` and ``fix`` use)."""
    return DEFAULT_SECONDS if config.file_timeout is None else config.file_timeout


# ---------------------------------------------------------------------- the core APIs

_FIX = []


def _fix_text():
    if _FIX:
        return _FIX[0]
    try:
        from adopter.synth import fix_text
    except ImportError as exc:
        raise BotError(f"this adopter has no patch synthesis (adopter.synth.fix_text): {exc}") from None
    _FIX.append(fix_text)
    return fix_text


_VERIFY = []


def _verify_file():
    if _VERIFY:
        return _VERIFY[0]
    try:
        from adopter.verify import verify_file
    except ImportError as exc:
        raise BotError("verification needs torch and adopter's verify extra "
                       f"(pip install 'adopter[verify]'), or set the input verify: false ({exc})") from None
    _VERIFY.append(verify_file)
    return verify_file


# ---------------------------------------------------------------------- rules per config

class _Rules:
    """The rules for a file's config, chosen as ``adopter check``/``fix`` choose them
    (:class:`adopter.runner.Selection`: the input's select, else the config's; its ignore;
    only rules that help on the config's target)."""

    def __init__(self, select: tuple[str, ...]):
        from adopter.runner import Options, Selection

        self._selection = Selection(Options(select=tuple(select)))

    def __call__(self, config: Config) -> list[Rule]:
        from adopter.runner import SelectionError

        try:
            return self._selection.rules(config)
        except RuleError as exc:
            raise BotError(str(exc)) from None
        except SelectionError as exc:
            raise BotError(f"input select: {exc}") from None


# ---------------------------------------------------------------------- verification results

def noise(spread: float | None) -> float:
    """The relative timing difference that is noise: the measured spread of the repeated rounds,
    and never less than :data:`SLOWER_TOLERANCE`."""
    return max(SLOWER_TOLERANCE, spread or 0.0)


def slower_modes(forward: float | None, forward_backward: float | None,
                 spread: float | None = None) -> list[tuple[str, float]]:
    """Every measured mode in which the patch is slower beyond noise, as (mode, ratio).

    Ratios are original time / patched time (``VerifyResult``): below 1 is slower.  Every mode
    the table shows is gated, so an inference patch that is slower in the forward pass is left
    out even when the training step got faster."""
    limit = 1.0 / (1.0 + noise(spread))
    return [(mode, ratio) for mode, ratio in (("forward", forward), ("forward+backward", forward_backward))
            if ratio is not None and ratio < limit]


def slower_reason(modes: list[tuple[str, float]], spread: float | None) -> str:
    parts = [f"{mode} took {1 / ratio:.2f}× the original's time" for mode, ratio in modes]
    return "; ".join(parts) + f" (beyond the timing noise of ±{noise(spread) * 100:.0f}%)"


def _get(result, name: str):
    if isinstance(result, dict):
        return result.get(name)
    return getattr(result, name, None)


def _number(value) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


_HARDWARE: dict[str, str] = {}


def hardware_name(device: str) -> str:
    """``cuda`` -> ``NVIDIA H100 80GB HBM3 (cuda)``; ``cpu`` -> ``CPU: <model>, N cores``."""
    if device in _HARDWARE:
        return _HARDWARE[device]
    name = device
    try:
        if device.startswith("cuda"):
            import torch

            index = int(device.split(":")[1]) if ":" in device else torch.cuda.current_device()
            name = f"{torch.cuda.get_device_name(index)} ({device})"
        elif device == "cpu":
            model = platform.processor() or platform.machine()
            try:
                for line in Path("/proc/cpuinfo").read_text().splitlines():
                    if line.startswith("model name"):
                        model = line.split(":", 1)[1].strip()
                        break
            except OSError:
                pass
            name = f"CPU: {model}, {os.cpu_count()} cores"
    except Exception:
        name = device
    _HARDWARE[device] = name
    return name


def _key(finding: Finding) -> tuple[str, int]:
    return (finding.rule, finding.line)


def _targets(helps) -> set[str]:
    return {str(h).split(":")[0] for h in helps}


def _on_hardware(helps: tuple[str, ...], device: str) -> bool | None:
    """Whether ``device`` (``cpu``, ``cuda:0``) is hardware the rule claims to help on; a rule
    that claims nothing is measured where it runs."""
    if not device:
        return None
    return not helps or device.split(":")[0] in _targets(helps)


def _details(result) -> dict:
    details = _get(result, "details") if result is not None else None
    return details if isinstance(details, dict) else {}


def _row(finding: Finding, rule: Rule | None, status: str, verified: str, reason: str = "",
         result=None, helps: tuple[str, ...] | None = None) -> Row:
    got = (lambda name: _number(_get(result, name))) if result is not None else (lambda name: None)
    device = str(_get(result, "device") or "") if result is not None else ""
    helps = tuple(rule.helps) if rule is not None and helps is None else tuple(helps or ())
    details = _details(result)
    forward, both = got("forward_ratio"), got("forward_backward_ratio")
    measured = forward is not None or both is not None
    return Row(
        rule=finding.rule, name=finding.name, path=finding.path, line=finding.line,
        class_name=finding.class_name, kernel=rule.kernel.import_ if rule else "",
        package=_requirement(rule) if rule else "", status=status, verified=verified, reason=reason,
        max_abs_diff=got("max_abs_diff"), forward_ratio=forward,
        forward_backward_ratio=both, memory_ratio=got("memory_ratio"),
        device=hardware_name(device) if device else "",
        spread=_number(details.get("timing_spread")) if measured else None,
        torch=str(details.get("torch") or "")[:40] if measured else "",
        dtype=str(details.get("dtype") or "")[:40] if measured else "",
        inputs=str(details.get("benchmark_inputs") or "")[:300] if measured else "",
        repeats=str(details.get("repeats") or "")[:200] if measured else "",
        helps=", ".join(helps),
        on_hardware=_on_hardware(helps, device) if measured else None,
    )


def _requirement(rule: Rule) -> str:
    kernel = rule.kernel
    return f"{kernel.package}>={kernel.min_version}" if kernel.min_version else kernel.package


def split_results(findings: list[Finding], results) -> tuple[dict[tuple[str, int], object], list]:
    """Per-finding results (same rule and line; the first one wins) and the rest, which are the
    checks of all of a file's patches together on the enclosing model."""
    wanted = {_key(f) for f in findings}
    per: dict[tuple[str, int], object] = {}
    whole = []
    for result in results:
        key = (str(_get(result, "rule")), int(_number(_get(result, "line")) or 0))
        if key in wanted and key not in per:
            per[key] = result
        else:
            whole.append(result)
    return per, whole


def map_fix(fixable: list[Finding], fix) -> tuple[set[tuple[str, int]], dict[tuple[str, int], str]]:
    """Which of the original findings ``fix_text`` rewrote, and why the others were not.

    ``fix_text`` re-analyses after each round, so a finding applied in a later round carries a
    line of the intermediate text: pair by rule and class, exact lines first."""
    pool = Counter((f.rule, f.class_name) for f in fix.applied)
    exact = {(f.rule, f.class_name, f.line) for f in fix.applied}
    applied: set[tuple[str, int]] = set()
    for exact_pass in (True, False):
        for finding in fixable:
            group = (finding.rule, finding.class_name)
            if _key(finding) in applied or pool[group] <= 0:
                continue
            if exact_pass and (finding.rule, finding.class_name, finding.line) not in exact:
                continue
            applied.add(_key(finding))
            pool[group] -= 1
    reasons: dict[tuple[str, int], str] = {}
    for skipped, reason in fix.skipped:
        candidates = [f for f in fixable if _key(f) not in applied and f.rule == skipped.rule
                      and f.class_name == skipped.class_name and _key(f) not in reasons]
        candidates.sort(key=lambda f: (f.line != skipped.line, abs(f.line - skipped.line)))
        if candidates:
            reasons[_key(candidates[0])] = str(reason)
    return applied, reasons


# ---------------------------------------------------------------------- one file

def _judge(finding: Finding, rule: Rule | None, result, options: Options) -> Row:
    if not options.verify:
        return _row(finding, rule, PROPOSED, "off", "verification turned off")
    if result is None:
        return _row(finding, rule, UNVERIFIED, "no", "no verification result for this patch")
    verdict = str(_get(result, "verdict") or "").lower()
    reason = str(_get(result, "reason") or "")
    if verdict == "fail":
        return _row(finding, rule, FAILED, "no", reason or "outputs differ", result)
    if verdict != "pass":
        return _row(finding, rule, UNVERIFIED, "no", reason or "verification skipped", result)
    row = _row(finding, rule, PROPOSED, "yes", reason, result)
    return _gate(row) if options.benchmark else row


def _gate(row: Row) -> Row:
    """Leave out a row slower beyond noise in any mode it was measured in on its own hardware.
    Off its hardware (a CUDA rule on a CPU runner) the figures say nothing about the patch and
    are shown as not measured, so they neither keep nor drop it."""
    if row.on_hardware is False:
        return row
    modes = slower_modes(row.forward_ratio, row.forward_backward_ratio, row.spread)
    if not modes:
        return row
    return replace(row, status=SLOWER, reason=slower_reason(modes, row.spread))


def _whole_row(result, rel: str, by_id: dict[str, Rule], benchmark: bool = True) -> Row:
    """A check of all of a file's patches together on the enclosing model, shown with the patches."""
    rules = str(_get(result, "rule") or "")
    verdict = str(_get(result, "verdict") or "")
    finding = Finding(rule=rules, name=f"all patches together in {_get(result, 'class_name') or 'the model'}",
                      path=rel, line=int(_number(_get(result, "line")) or 1), column=1, end_line=1, end_column=1,
                      message="", fixable=True, class_name=str(_get(result, "class_name") or ""))
    status = {"pass": WHOLE, "fail": FAILED}.get(verdict, UNVERIFIED)
    members = [by_id[r] for r in rules.split("+") if r in by_id]
    # the combination is on its hardware where any of its rules claims that hardware
    helps = tuple(dict.fromkeys(h for r in members for h in r.helps)) if all(r.helps for r in members) else ()
    row = _row(finding, None, status, "yes" if verdict == "pass" else "no", str(_get(result, "reason") or ""),
               result, helps=helps)
    return _gate(row) if status == WHOLE and benchmark else row


def patch_file(root: Path, rel: str, data: bytes, rules: list[Rule], config: Config,
               options: Options, outcome: Outcome) -> None:
    """Analyse, fix, verify one file and add its rows (and new content) to ``outcome``.

    The analysis and the fix run within the file's time budget (as in ``adopter fix``); a file
    over it is listed as not analysed and the others go on.  Verification has its own limits."""
    absolute = root / rel
    budget = file_budget(config)
    try:
        source = decode(data, rel)
    except SourceError as exc:
        outcome.errors.append((rel, str(exc)))
        return
    package = package_of(str(absolute))
    try:
        with time_budget(budget):
            analysis = analyze(source.text, rel, rules, package)
    except BudgetExceeded as exc:
        outcome.errors.append((rel, str(exc)))
        return
    except AnalysisError as exc:
        outcome.errors.append((rel, str(exc)))
        return
    outcome.findings.extend(analysis.findings)
    by_id = {r.id: r for r in rules}
    for finding in analysis.findings:
        if finding.rule in by_id:
            outcome.rules[finding.rule] = by_id[finding.rule]
    # An unsafe fix (``fix_safety = "unsafe: why"``) is never proposed: ``adopter fix`` applies
    # it only with ``--unsafe-fixes``, a choice the bot cannot make for the user.  Its rule takes
    # no part in the fix or the verification; its findings are listed with the reason.
    unsafe = {r.id for r in rules if r.fixable and not r.safe_fix}
    for finding in analysis.findings:
        if finding.fixable and finding.rule in unsafe:
            rule = by_id[finding.rule]
            why = rule.fix_safety.split(":", 1)[1].strip() if ":" in rule.fix_safety else ""
            outcome.rows.append(_row(finding, rule, NOT_FIXED, "no", f"unsafe: not proposed ({why})" if why
                                     else "unsafe: not proposed"))
    rules = [r for r in rules if r.id not in unsafe]
    fixable = [f for f in analysis.findings if f.fixable and f.rule not in unsafe]
    if not fixable:
        return
    fix_text = _fix_text()  # LibCST is imported only when there is something to fix
    try:
        with time_budget(budget):
            fix = fix_text(source.text, rel, rules, package)
    except BudgetExceeded as exc:
        outcome.errors.append((rel, str(exc)))
        return
    except Exception as exc:  # a synthesis bug must not stop the other files
        outcome.errors.append((rel, f"could not synthesize the patch: {type(exc).__name__}: {exc}"))
        return
    if getattr(fix, "error", None):
        outcome.errors.append((rel, f"could not synthesize the patch: {fix.error}"))
        return
    applied, not_fixed = map_fix(fixable, fix)
    rows: dict[tuple[str, int], Row] = {}
    for finding in fixable:
        if _key(finding) not in applied:
            rows[_key(finding)] = _row(finding, by_id.get(finding.rule), NOT_FIXED, "no",
                                       not_fixed.get(_key(finding), "no rewrite applies here"))
    done = [f for f in fixable if _key(f) in applied]
    if not done:
        outcome.rows.extend(rows.values())
        return
    whole_rows: list[Row] = []
    if options.replay is not None:
        wanted = options.replay.get(rel, frozenset())
        for finding in done:
            status = PROPOSED if _key(finding) in wanted else UNVERIFIED
            rows[_key(finding)] = _row(finding, by_id.get(finding.rule), status, "no",
                                       "" if status == PROPOSED else "not kept by the analysis run")
    else:
        per: dict[tuple[str, int], object] = {}
        whole: list = []
        if options.verify:
            verify_file = _verify_file()  # torch is imported only when there is a patch to verify
            try:
                found = verify_file(str(absolute), rules, config, benchmark=options.benchmark)
                per, whole = split_results(done, list(found or []))
            except Exception as exc:  # the user's module may not even import; say so, keep going
                reason = f"verification could not run: {type(exc).__name__}: {exc}"
                for finding in done:
                    rows[_key(finding)] = _row(finding, by_id.get(finding.rule), UNVERIFIED, "no", reason[:300])
                outcome.rows.extend(sorted(rows.values(), key=lambda r: (r.line, r.rule)))
                return
        for finding in done:
            rows[_key(finding)] = _judge(finding, by_id.get(finding.rule), per.get(_key(finding)), options)
        whole_rows = [_whole_row(result, rel, by_id, options.benchmark) for result in whole]
        _hold_back_with_whole(rows, done, whole_rows)
    keep = {key for key, row in rows.items() if row.status == PROPOSED}
    final = fix
    if keep != applied:
        try:
            with time_budget(budget):
                final = _fix_only(source.text, rel, rules, package, fixable, keep, fix_text)
        except BudgetExceeded as exc:
            outcome.errors.append((rel, str(exc)))
            return
        landed = map_fix(fixable, final)[0] if final is not None else set()
        for key in keep - landed:
            row = rows[key]
            rows[key] = replace(row, status=HELD_BACK, reason=f"another {row.rule} patch in this file was left out")
    outcome.rows.extend(sorted(rows.values(), key=lambda r: (r.line, r.rule)))
    if keep == applied:  # the whole-model figures describe exactly the proposed code
        outcome.rows.extend(r for r in whole_rows if r.status == WHOLE)
    if final is not None and final.applied and final.text != source.text:
        outcome.files[rel] = encode(source, final.text)
        outcome.requirements.update(final.requirements or ())
        if final.requirements:
            outcome.needs[rel] = set(final.requirements)


def _hold_back_with_whole(rows: dict[tuple[str, int], Row], done: list[Finding], whole_rows: list[Row]) -> None:
    """Each patch passed alone, but together they change the model's results (or make it
    slower): propose none of the file's patches."""
    broken = [r for r in whole_rows if r.status in (FAILED, SLOWER)]
    if broken and all(rows[_key(f)].status == PROPOSED for f in done):
        why = "differs" if broken[0].status == FAILED else "is slower"
        for finding in done:
            row = rows[_key(finding)]
            rows[_key(finding)] = replace(row, status=HELD_BACK,
                                          reason=f"with the file's other patches, {broken[0].class_name} "
                                                 f"{why}: {broken[0].reason}"[:300])


def _fix_only(text: str, rel: str, rules: list[Rule], package, fixable: list[Finding], keep: set, fix_text):
    """Fix again with only the rules whose every rewrite is to be kept (None: no rule left)."""
    active = list(rules)
    while active:
        fix = fix_text(text, rel, active, package)
        if getattr(fix, "error", None):
            return None
        applied, _ = map_fix(fixable, fix)
        unwanted = {rule for rule, _ in applied - keep}
        if not unwanted:
            return fix
        active = [r for r in active if r.id not in unwanted]
    return None


# ---------------------------------------------------------------------- every file

def read_worktree(path: Path) -> bytes | None:
    """The checkout's copy of a file, or None when it is missing, not a regular file (a FIFO
    would block) or larger than the analysis limit; nothing larger is read."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except OSError:
        return None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_BYTES:
            return None
        with os.fdopen(fd, "rb", closefd=False) as handle:
            return handle.read(MAX_BYTES + 1)
    except OSError:
        return None
    finally:
        os.close(fd)


def build(root: Path, paths: list[str], read: Callable[[str], bytes | None], options: Options) -> Outcome:
    """Analyse, fix and verify ``paths`` (repo-relative); ``read`` gives a file's committed bytes
    (None: not a regular file in the commit), and raises ``SourceError`` for one that is too large."""
    rules_for = _Rules(options.select)
    outcome = Outcome()
    takeable: dict = {}
    for rel in paths:
        absolute = root / rel
        try:
            config = find_config(absolute)
        except ConfigError as exc:
            raise BotError(str(exc)) from None
        if config.excludes(absolute):
            continue
        try:
            data = read(rel)
        except SourceError as exc:
            outcome.errors.append((rel, str(exc)))
            continue
        if data is None:
            continue
        if read_worktree(absolute) != data:
            outcome.errors.append((rel, "the working tree differs from the pushed commit; skipped"))
            continue
        rules = _takeable(absolute, rules_for(config), outcome, takeable)
        outcome.active.update(r.id for r in rules)
        patch_file(root, rel, data, rules, config, options, outcome)
    declare_dependencies(root, outcome, read)
    return outcome


def _takeable(path: Path, rules: list[Rule], outcome: Outcome, seen: dict) -> list[Rule]:
    """The rules whose kernel the file's project can take: not one whose Python floor is above
    the project's, or whose version the project's pins exclude (a note says which and why)."""
    from adopter.synth.deps import project_root, unavailable

    root = project_root(path)
    kernels = frozenset((r.kernel.requirement, r.kernel.requires_python) for r in rules)
    if (root, kernels) not in seen:
        seen[(root, kernels)] = blocked = unavailable(root, kernels)
        for rule in rules:
            if rule.kernel.requirement in blocked:
                outcome.notes.append(f"{rule.id} {rule.name} is not applied here: {blocked[rule.kernel.requirement]}")
    blocked = seen[(root, kernels)]
    return [r for r in rules if r.kernel.requirement not in blocked]


def declare_dependencies(root: Path, outcome: Outcome, read: Callable[[str], bytes | None]) -> None:
    """Add the kernels' packages to each patched project's dependency list (as ``adopter fix``
    does), as more files of the same commit."""
    from adopter.synth.deps import plan_dependencies, project_root

    projects: dict[Path, set[str]] = {}
    for rel, needs in sorted(outcome.needs.items()):
        project = project_root(root / rel)
        if project is None:
            outcome.notes.append(f"{rel}: no project folder found; install {', '.join(sorted(needs))}")
            continue
        projects.setdefault(project, set()).update(needs)
    top = root.resolve()
    for project, needs in sorted(projects.items()):
        try:
            edits, messages = plan_dependencies(project, needs)
        except Exception as exc:  # a dependency file we cannot edit must not lose the patches
            edits, messages = [], [f"{project}: could not plan the dependency edit ({type(exc).__name__}: {exc})"]
        outcome.notes.extend(message.replace(str(top) + "/", "") for message in messages)
        for edit in edits:
            try:
                rel = edit.path.resolve().relative_to(top).as_posix()
            except ValueError:
                continue
            try:
                committed = read(rel)
            except SourceError:
                committed = None
            if edit.source is not None and committed != read_worktree(edit.path):
                outcome.notes.append(f"{rel} differs from the pushed commit; add {', '.join(edit.added)} by hand")
                continue
            outcome.files[rel] = encode(edit.source, edit.new) if edit.source is not None else edit.new.encode()
            outcome.dependency_files[rel] = list(edit.added)
