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


def rule_dict(rule: Rule) -> dict:
    return {
        "id": rule.id, "name": rule.name, "title": rule.title, "summary": rule.summary,
        "kernel": rule.kernel.import_, "package": rule.kernel.package, "fixable": rule.fixable,
        "fix_safety": rule.fix_safety, "default": rule.default, "helps": list(rule.helps),
        "checkpoint_compatible": rule.checkpoint_compatible, "path": rule.path, "only_on": list(rule.only_on),
    }


def explain(rule: Rule) -> str:
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
