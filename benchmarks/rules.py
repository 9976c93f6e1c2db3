"""Per-rule benchmark: does each rule's patch make the code it rewrites faster where it claims to?

For every rule (or those named with ``--select``), each fixture in ``benchmarks/rule_fixtures/``
that declares the rule is rewritten by ``adopter fix`` (the engine's ``fix_text``, that rule
alone), the original and patched files are imported as modules, the patched module loads the
original's weights (``load_state_dict(strict=True)``) and must compute the same outputs and
gradients (float64), and then both are timed in the modes the rule claims on this device
(``helps``): *inference* = forward in eval mode under ``no_grad``, *training* = forward and
backward in train mode (an optimizer fixture: ``optimizer.step()``), with peak memory.
Timing is in interleaved A/B pairs (at least ``--pairs``, more while their spread is wide);
the table shows the median per-pair ratio (original time / patched time: above 1 = faster),
its interquartile range and min-max, and a drift check of the original's time.

Rules whose patched code runs only elsewhere (``only_on``) or that claim nothing on this
device are listed as "not measured on its hardware", never with a ratio.

    python benchmarks/rules.py                          # every rule, CPU, table on stdout
    python benchmarks/rules.py --select ADP010,ADP011   # some rules
    python benchmarks/rules.py --device cuda --dtype bfloat16
    python benchmarks/rules.py --json-out rules.json    # also every figure as JSON
    python benchmarks/rules.py --write                  # store the figures in rules/measured.toml
    python benchmarks/rules.py --write --apply-defaults # ... and set each rule file's `default`

The default each rule earns follows the policy in ``adopter/measured.py`` (a gain is a median
of at least 1.05x with the lower quartile above 1; default-on requires a gain on a declared
target; a declared target nobody has measured yet makes the rule "on with --target T" only).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import platform
import re
import sys
import tomllib
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(REPO))

import torch  # noqa: E402
from rulebench import timing  # noqa: E402
from rulebench.fixtures import discover  # noqa: E402
from rulebench.harness import Harness, Row, Settings  # noqa: E402
from rulebench.stats import PairResult  # noqa: E402

from adopter.measured import FILE_NAME, Figure, load_measured, read_file, verdict  # noqa: E402
from adopter.ruleset import RuleError, bundled_rules_dir, load_rules, select_rules  # noqa: E402

DTYPES = {"float32": torch.float32, "float64": torch.float64, "bfloat16": torch.bfloat16, "float16": torch.float16}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--select",
                   help="comma-separated rule ids or names (default: every rule, off-by-default ones too)")
    p.add_argument("--rules-dir", action="append", default=[], help="extra folder of rule files")
    p.add_argument("--fixtures", type=Path, default=HERE / "rule_fixtures", help="folder of fixture modules")
    p.add_argument("--device", default="cpu", help="cpu or cuda[:N]")
    p.add_argument("--dtype", choices=sorted(DTYPES), default="float32", help="dtype of the timed modules")
    p.add_argument("--threads", type=int, default=1,
                   help="intra-op threads on the CPU (default 1: steady on a shared machine)")
    p.add_argument("--pairs", type=int, default=7, help="minimum interleaved A/B pairs per figure (>= 7)")
    p.add_argument("--max-pairs", type=int, default=21, help="pairs to take at most while the spread is wide")
    p.add_argument("--wide", type=float, default=0.10,
                   help="take more pairs while the ratios' interquartile range exceeds this fraction of the median")
    p.add_argument("--min-run-time", type=float, default=0.2, help="seconds per timing (blocked_autorange)")
    p.add_argument("--drift-limit", type=float, default=0.10, help="flag a drift of the original's time beyond this")
    p.add_argument("--all-modes", action="store_true", help="also time the modes a rule does not claim (marked)")
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory measurements")
    p.add_argument("--quick", action="store_true",
                   help="the fixtures' small cases (a smoke test; figures mean nothing)")
    p.add_argument("--clock", choices=("wall", "thread", "flops"), default="wall",
                   help="wall: wall-clock time; thread: CPU time of the timing thread (CPU, --threads 1: what a "
                        "crowded machine's scheduler takes away is not counted); flops: floating-point operations "
                        "per call instead of time (deterministic: tests)")
    p.add_argument("--steady-malloc", action="store_true",
                   help="glibc keeps freed memory (mallopt) instead of mapping large tensors afresh on every call: "
                        "removes page-fault noise (rulebench/timing.py says why)")
    p.add_argument("--json-out", type=Path, help="write every row and the metadata as JSON")
    p.add_argument("--from-json", type=Path, metavar="FILE",
                   help="measure nothing: take the rows of an earlier --json-out (to review, then --write)")
    p.add_argument("--write", nargs="?", const="", metavar="PATH",
                   help=f"store the figures (default: rules/{FILE_NAME}); figures of other devices are kept")
    p.add_argument("--apply-defaults", action="store_true",
                   help="set `default` in each measured rule's file to what the figures earn")
    return p


def flop_clock(fn) -> float:
    """Floating-point operations of one call (torch.utils.flop_counter), as a stand-in for seconds."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        fn()
    return float(counter.get_total_flops())


def machine() -> dict:
    name = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except (OSError, AttributeError):
        load = []
    return {"cpu": name, "cores": os.cpu_count(), "load_average": load}


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return machine()["cpu"]


# ------------------------------------------------------------------------------ output


def _ms(seconds: float, clock: str) -> str:
    return f"{seconds / 1e6:.2f}" if clock == "flops" else f"{seconds * 1e3:.2f}"


def _mb(value) -> str:
    return "-" if value is None else f"{value / 2**20:.1f}"


def table(rows: list[Row], clock: str) -> str:
    unit = "MFLOP" if clock == "flops" else "ms"
    head = ["rule", "fixture case", "mode", f"orig {unit}", f"patched {unit}", "ratio", "IQR", "min-max", "pairs",
            "drift", "peak MB orig>patched", "saved MB"]
    lines = []
    for r in rows:
        if r.result is None:
            lines.append([r.rule, f"{r.fixture} {r.case}".strip(), r.mode, r.status])
            continue
        res = r.result
        drift = f"{res.drift_halves:+.0%}/{res.drift_end:+.0%}" + (" !" if res.drift else "")
        mode = r.mode + ("" if r.claimed else " (unclaimed)")
        a = sorted(res.a)[len(res.a) // 2]
        b = sorted(res.b)[len(res.b) // 2]
        lines.append([r.rule, r.case, mode, _ms(a, clock), _ms(b, clock), f"{res.ratio:.2f}x",
                      f"{res.q1:.2f}-{res.q3:.2f}", f"{res.low:.2f}-{res.high:.2f}", str(res.pairs), drift,
                      "-" if r.peak_bytes == (None, None) else f"{_mb(r.peak_bytes[0])}>{_mb(r.peak_bytes[1])}",
                      "-" if r.saved_bytes[0] is None else f"{_mb(r.saved_bytes[0])}>{_mb(r.saved_bytes[1])}"])
    full = [line for line in lines if len(line) == len(head)]
    widths = [max([len(head[i])] + [len(line[i]) for line in full]) for i in range(len(head))]
    out = ["  ".join(h.ljust(w) for h, w in zip(head, widths)).rstrip()]
    for line in lines:
        if len(line) == 4:  # no ratio: rule, case, mode, why
            rule, case, mode, why = line
            where = f"{case} {mode}".strip()
            out.append(f"{rule.ljust(widths[0])}  {where + '  ' if where else ''}{why}".rstrip())
        else:
            out.append("  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip())
    return "\n".join(out)


def rows_from_json(data: dict) -> list[Row]:
    """The rows of an earlier ``--json-out``."""
    names = {f.name for f in dataclasses.fields(PairResult)}
    rows = []
    for entry in data["rows"]:
        values = {k: v for k, v in entry.items() if k in {f.name for f in dataclasses.fields(Row)}}
        values["peak_bytes"] = tuple(values.get("peak_bytes") or (None, None))
        values["saved_bytes"] = tuple(values.get("saved_bytes") or (None, None))
        result = entry.get("result")
        values["result"] = PairResult(**{k: v for k, v in result.items() if k in names}) if result else None
        rows.append(Row(**values))
    return rows


def figures_of(rows: list[Row], meta: dict) -> list[Figure]:
    out = []
    for r in rows:
        if r.result is None:
            continue
        res = r.result
        out.append(Figure(
            rule=r.rule, target=meta["target"], mode=r.mode, case=r.case, ratio=round(res.ratio, 3),
            q1=round(res.q1, 3), q3=round(res.q3, 3), low=round(res.low, 3), high=round(res.high, 3), pairs=res.pairs,
            claimed=r.claimed, drift=res.drift,
            memory_ratio=round(r.memory_ratio, 3) if r.memory_ratio is not None else None,
            torch=meta["torch"], date=meta["date"], device=meta["device_name"], dtype=meta["dtype"],
            threads=meta["threads"], shapes=r.shapes,
            clock=meta["clock"] + (", steady malloc" if meta.get("steady_malloc") else ""),
        ))
    return out


def write_measured(path: Path, figures: list[Figure], measured_rules: set[str], target: str) -> None:
    """Replace the ``target`` figures of ``measured_rules`` in ``path`` (TOML, via tomlkit),
    keeping every other rule's and every other target's; write atomically."""
    import tomlkit

    document = tomlkit.document()
    document.add(tomlkit.comment("Written by `python benchmarks/rules.py --write`: each rule's measured figures"))
    document.add(tomlkit.comment("(original time / patched time per interleaved pair; see adopter/measured.py)."))
    old = read_file(path)
    keep = {rule: [f for f in figs if not (rule in measured_rules and f.target == target)]
            for rule, figs in old.items()}
    for figure in figures:
        keep.setdefault(figure.rule, []).append(figure)
    for rule in sorted(keep):
        entries = tomlkit.aot()
        for f in sorted(keep[rule], key=lambda f: (f.target, f.mode, f.case)):
            item = {k: v for k, v in f.__dict__.items() if k != "rule" and v is not None}
            entries.append(tomlkit.item(item))
        if len(entries):
            document.add(rule, entries)
    temp = path.with_name(f".{path.name}.tmp")
    temp.write_text(tomlkit.dumps(document), encoding="utf-8")
    os.replace(temp, path)


def apply_default(rule, wanted) -> str | None:
    """Set ``default`` in the rule's file, changing nothing else; the new value's text, or None
    when the file already says that.

    An existing key is replaced in place by tomlkit.  A missing one is written (as tomlkit
    renders it) on its own line just above the top-level ``helps`` line, where the other rule
    files keep it, so that a concurrent edit of the same key shows up as a merge conflict
    rather than as a duplicate key.  Either way the result must parse to the same table apart
    from ``default``, or nothing is written.
    """
    import tomlkit

    path = Path(rule.path)
    text = path.read_text(encoding="utf-8")
    before = tomllib.loads(text)
    value = list(wanted) if isinstance(wanted, tuple) else wanted
    if before.get("default", True) == value:
        return None
    if "default" in before:
        document = tomlkit.parse(text)
        document["default"] = value
        new = tomlkit.dumps(document)
    else:
        line = tomlkit.dumps({"default": value})
        found = re.search(r"^helps[ \t]*=", text, re.M) or re.search(r"^\[", text, re.M)
        at = found.start() if found else len(text)
        new = text[:at] + line + text[at:]
    after = tomllib.loads(new)
    if after.pop("default", None) != value or after != {k: v for k, v in before.items() if k != "default"}:
        raise RuntimeError(f"{path}: setting default would change more than default; left as it is")
    temp = path.with_name(f".{path.name}.tmp")
    temp.write_text(new, encoding="utf-8")
    os.replace(temp, path)
    return json.dumps(value)


# ------------------------------------------------------------------------------ main


def measure(args, rules, device: torch.device, command: str, clock) -> tuple[dict, list[Row]] | int:
    """Run the harness over ``rules``; (metadata, rows), or an exit code."""
    torch.set_num_threads(args.threads)
    steady = timing.steady_malloc() if args.steady_malloc else False
    if args.steady_malloc and not steady:
        print("warning: --steady-malloc could not be applied (not glibc): the default allocator is used",
              file=sys.stderr)
    settings = Settings(device=device, dtype=DTYPES[args.dtype], threads=args.threads, min_run_time=args.min_run_time,
                        min_pairs=args.pairs, max_pairs=max(args.max_pairs, args.pairs), wide=args.wide,
                        drift_limit=args.drift_limit, quick=args.quick, all_modes=args.all_modes,
                        memory=not args.no_memory, cpu_time=args.clock == "thread")
    if settings.cpu_time and (device.type != "cpu" or args.threads != 1):
        print("error: --clock thread needs --device cpu and --threads 1", file=sys.stderr)
        return 2
    fixtures = discover(args.fixtures)
    before = machine()
    meta = {
        "torch": torch.__version__.split("+")[0], "torch_full": torch.__version__, "python": platform.python_version(),
        "device": str(device), "target": device.type, "device_name": device_name(device), "dtype": args.dtype,
        "threads": args.threads if device.type == "cpu" else None, "min_run_time": args.min_run_time,
        "steady_malloc": steady, "min_pairs": settings.min_pairs, "max_pairs": settings.max_pairs, "wide": args.wide,
        "clock": "injected" if clock is not None else args.clock,
        "date": datetime.date.today().isoformat(), "machine": before, "quick": args.quick,
        "command": command,
    }
    print(f"# torch {meta['torch_full']} on {meta['device_name']} ({device}), {args.dtype}, "
          f"{args.threads} thread(s), {args.clock} clock{', steady malloc' if steady else ''}, "
          f"load {before['load_average']} on {before['cores']} cores, >= {settings.min_pairs} pairs "
          f"(up to {settings.max_pairs}), {args.min_run_time}s per timing", flush=True)

    def progress(message: str) -> None:
        print(f"  ... {message}", file=sys.stderr, flush=True)

    harness = Harness(settings, clock or (flop_clock if args.clock == "flops" else None), progress)
    rows: list[Row] = []
    for rule in rules:
        rows += harness.run_rule(rule, fixtures)
    meta["machine_after"] = machine()
    print(table(rows, args.clock))

    return meta, rows


def main(argv: list[str] | None = None, clock=None) -> int:
    """``clock`` (``measure(fn) -> seconds``) replaces the timer: the boundary tests inject at."""
    args = build_parser().parse_args(argv)
    if args.pairs < 7:
        print("error: --pairs must be at least 7", file=sys.stderr)
        return 2
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("error: --device cuda but torch.cuda.is_available() is False", file=sys.stderr)
        return 2
    try:
        dirs = [Path(d) for d in args.rules_dir]
        every = load_rules(dirs)
        select = [s.strip() for s in (args.select or "").split(",") if s.strip()]
        rules = select_rules(every, select) if select else every
        if select:  # a named rule is measured even where it is off by default
            named = {r.id for r in every if any(s == r.id or s == r.name for s in select)}
            rules = [r for r in every if r in rules or r.id in named]
    except (RuleError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.from_json:
        try:
            data = json.loads(args.from_json.read_text(encoding="utf-8"))
            meta, rows = data["meta"], rows_from_json(data)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            print(f"error: {args.from_json}: not a --json-out file of this script: {exc}", file=sys.stderr)
            return 2
        device = torch.device(meta["device"])
        if not select:
            rules = [r for r in rules if any(row.rule == r.id for row in rows)]
        rows = [row for row in rows if any(row.rule == r.id for r in rules)]
        print(f"# {args.from_json}: torch {meta['torch_full']} on {meta['device_name']} ({meta['device']}), "
              f"{meta['dtype']}, {meta['threads']} thread(s), {meta['clock']} clock, {meta['date']}")
        print(table(rows, meta["clock"]))
    else:
        command = " ".join([Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])])
        result = measure(args, rules, device, command, clock)
        if isinstance(result, int):
            return result
        meta, rows = result
    quick, clock_name = meta.get("quick", False), meta["clock"]
    figures = figures_of(rows, meta)
    stored = load_measured([bundled_rules_dir(), *dirs])
    verdicts = {}
    print()
    if clock_name == "flops":
        print("(operation counts, not times: the verdicts below say what such ratios would earn)")
    for rule in rules:
        mine = [f for f in figures if f.rule == rule.id]
        others = [f for f in stored.get(rule.id, []) if f.target != device.type]
        v = verdict(rule.helps, [f for f in mine + others if f.claimed])
        file_default = (json.dumps(list(rule.default_targets)) if rule.default_targets
                        else ("true" if rule.default else "false"))
        verdicts[rule.id] = {"targets": v.targets, "default": v.default_text(), "rule_file_default": file_default}
        mark = "" if v.default_text().replace(" ", "") == file_default.replace(" ", "") else "   <- differs"
        losses = [f for f in mine if f.claimed and f.loss]
        lost = ("; slower in a claimed mode: " + ", ".join(f"{f.target}:{f.mode} {f.case} {f.short()}" for f in losses)
                if losses else "")
        verdicts[rule.id]["slower"] = [f"{f.target}:{f.mode} {f.case} {f.short()}" for f in losses]
        print(f"{rule.id}: {', '.join(f'{t} {s}' for t, s in v.targets.items()) or 'claims no target'}; "
              f"earns default = {v.default_text()} (rule file: {file_default}){mark}{lost}")
    errors = [r for r in rows if r.status.startswith("error")]
    if args.json_out:
        args.json_out.write_text(json.dumps({"meta": meta, "rows": [r.as_dict() for r in rows], "verdicts": verdicts},
                                            indent=2, default=str) + "\n", encoding="utf-8")
    if args.write is not None:
        if quick or clock_name == "flops":
            print("error: --write stores real timings only (not --quick or --clock flops)", file=sys.stderr)
            return 2
        path = Path(args.write) if args.write else bundled_rules_dir() / FILE_NAME
        measured_rules = {r.rule for r in rows if r.result is not None}
        write_measured(path, figures, measured_rules, device.type)
        print(f"wrote {path}")
    if args.apply_defaults:
        for rule in rules:
            wanted = verdict(rule.helps, [f for f in figures if f.rule == rule.id and f.claimed]
                             + [f for f in stored.get(rule.id, []) if f.target != device.type and f.claimed]).default
            off_for_another_reason = not rule.checkpoint_compatible or rule.fix_safety.startswith("unsafe")
            if wanted is not False and off_for_another_reason and not (rule.default or rule.default_targets):
                continue  # off for another reason than speed: figures never turn it on
            changed = apply_default(rule, wanted)
            if changed is not None:
                print(f"{rule.path}: default = {changed}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
