"""What ``adopter rules`` prints: the rule table, and one rule explained (why, patterns, example)."""

from __future__ import annotations

from .ruleset import Rule


def where(rule: Rule) -> str:
    """``cuda:train+infer cpu:infer`` (and ``cuda only`` for patches that run nowhere else)."""
    short = {"training": "train", "inference": "infer"}
    by_target: dict[str, list[str]] = {}
    for item in rule.helps:
        target, _, mode = item.partition(":")
        by_target.setdefault(target, []).append(short.get(mode, mode or "all"))
    text = " ".join(f"{t}:{'+'.join(m)}" for t, m in by_target.items()) or "-"
    return text + (f" ({'/'.join(rule.only_on)} only)" if rule.only_on else "")


def default_note(rule: Rule) -> str:
    """`` (off by default; on with --target cuda)``, `` (off by default)`` or ''."""
    if rule.default:
        return ""
    if rule.default_targets:
        return f" (off by default; on with --target {'/'.join(rule.default_targets)})"
    return " (off by default)"


def measured_line(rule: Rule, figures: list) -> str:
    """The table's one-line summary of what ``benchmarks/rules.py`` measured for the rule."""
    from .measured import summary

    if rule.helps:
        return summary(rule.helps, figures)
    ratios = sorted(f.ratio for f in figures)
    return "declares no target" + (f"; unclaimed figures {ratios[0]:.2f}-{ratios[-1]:.2f}x" if ratios else "")


def rule_dict(rule: Rule, figures: list | None = None) -> dict:
    from dataclasses import asdict

    return {
        "id": rule.id, "name": rule.name, "title": rule.title, "summary": rule.summary,
        "kernel": rule.kernel.import_, "package": rule.kernel.package, "fixable": rule.fixable,
        "fix_safety": rule.fix_safety, "default": rule.default, "default_targets": list(rule.default_targets),
        "helps": list(rule.helps), "checkpoint_compatible": rule.checkpoint_compatible, "path": rule.path,
        "only_on": list(rule.only_on),
        "measured": [{k: v for k, v in asdict(f).items() if k != "rule"} for f in figures or []],
    }


def _explain_measured(rule: Rule, figures: list) -> list[str]:
    """The figures ``benchmarks/rules.py --write`` stored for this rule, one line per case."""
    out = ["", "Measured (benchmarks/rules.py; original / patched time, median [interquartile range] "
                "of interleaved pairs):"]
    if not figures:
        return out + ["    nothing measured yet"]
    for f in figures:
        note = "" if f.claimed else " (mode not claimed)"
        memory = f", peak memory {f.memory_ratio:.2f}x" if f.memory_ratio is not None else ""
        drift = ", drift flagged" if f.drift else ""
        out.append(f"    {f.target}:{f.mode} {f.case}: {f.short()} min-max {f.low:.2f}-{f.high:.2f}, "
                   f"{f.pairs} pairs{memory}{drift}{note}; torch {f.torch}, {f.dtype}, {f.threads} thread(s)"
                   f"{', ' + f.clock + ' clock' if f.clock else ''}, {f.date}")
    measured = {f.target for f in figures}
    for target in sorted({h.partition(":")[0] for h in rule.helps} - measured):
        out.append(f"    {target}: not measured on its hardware yet")
    return out


def explain(rule: Rule, figures: list | None = None) -> str:
    out = [f"{rule.id} {rule.name} ({rule.title})", "", rule.summary, ""]
    if rule.why:
        out += ["Why", "---", rule.why.strip(), ""]
    out += [
        f"Kernel: {rule.kernel.import_} from {rule.kernel.package}"
        + (f" >= {rule.kernel.min_version}" if rule.kernel.min_version else ""),
        f"Helps on: {', '.join(rule.helps) or 'unspecified'}"
        + (f" (the patched code runs on {'/'.join(rule.only_on)} only: fixed with --target {rule.only_on[0]})"
           if rule.only_on else ""),
        f"Fix: {'yes, ' + rule.fix_safety if rule.fixable else 'report only'}; "
        f"checkpoints {'stay loadable' if rule.checkpoint_compatible else 'need conversion (off by default)'}",
        "Default: " + ("on" if rule.default else default_note(rule).strip(" ()")),
        *_explain_measured(rule, figures or []),
        "",
        "Forward pattern:", indent(rule.forward.text.strip()),
    ]
    if rule.forward_target:
        out += ["becomes:", indent(rule.forward_target.strip())]
    for index, init in enumerate(rule.init):
        out += [f"Init pattern{' (alternative %d)' % (index + 1) if len(rule.init) > 1 else ''}:",
                indent(init.text.strip())]
    if rule.init_target:
        out += ["becomes:", indent(rule.init_target.strip())]
    for example in rule.examples:
        if example.after is not None:
            out += ["", f"Example: {example.name}", "Before:", indent(example.before.strip()),
                    "After:", indent(example.after.strip())]
            break
    return "\n".join(out)


def indent(text: str) -> str:
    return "\n".join("    " + line for line in text.splitlines())
