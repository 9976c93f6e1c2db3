#!/usr/bin/env python
"""How much of the every-rule analysis goes into flow graphs no rule matches in, and what
skipping them could buy at most (issue #12's speed target, session 41).

A root's flow (``ClassStructure.flow``: one ``FlowBuilder.build`` per root) is built the first
time a matcher's word prefilter (``Matcher._candidate_roots``) lets the root through; the flow
is then searched by every matcher that asks.  This script analyses the paper corpus (199 files,
every bundled rule, one process) and records, per built flow: the rules whose matchers searched
it, whether any of them matched, whether any of them got past the feasibility test
(``Matcher._feasibility``: every required step has a candidate node), its node count and the
CPU time its build took.  Printed: the totals, the flows with no match by the set of rules
that searched them, and the build time they cost.

``--ceiling`` then measures, in this process and alternated with the plain analysis, the
analysis CPU when an oracle replaces a group of those flows by an empty one (entry and exit
only; the findings must stay equal, which the script checks): every flow with no match, only
those every searching rule found infeasible, and the no-match flows one rule alone searched
(per rule given with ``--rule``).  That is an upper bound on what an exact precondition that
skips building such flows could save; it does not say such a precondition exists.

    PYTHONPATH=$PWD .venv/bin/python benchmarks/flow_waste.py --cache .bench --ceiling --rounds 3
"""

from __future__ import annotations

import argparse
import collections
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import paper  # (the corpus: the same 199 files paper.py scores)

from adopter import match as _match
from adopter.engine import AnalysisError, analyze
from adopter.ruleset import load_rules
from adopter.structure import model as _model
from adopter.structure import package_of
from adopter.structure.graph import Flow


class _Record:
    """One built flow: who searched it, with what outcome, and its size and build time."""

    __slots__ = ("askers", "feasible", "matched", "nodes", "seconds")

    def __init__(self, nodes: int, seconds: float):
        self.askers: set[str] = set()
        self.matched = False
        self.feasible = False
        self.nodes = nodes
        self.seconds = seconds


def _record(texts, rules) -> dict[tuple, _Record]:
    """Analyse every file once with the flow builder and the matcher's search watched
    (wrapped, then restored): (file, class, root) -> its _Record."""
    current = {"file": None}
    records: dict[tuple, _Record] = {}
    by_flow: dict[int, _Record] = {}
    flow, match_flow, feasibility = (_model.ClassStructure.flow, _match.Matcher.match_flow,
                                     _match.Matcher._feasibility)

    def watched_flow(cls, name):
        new = name not in cls._flows
        start = time.process_time()
        built = flow(cls, name)
        if new:
            rec = records[(current["file"], cls.name, name)] = _Record(len(built.nodes), time.process_time() - start)
            by_flow[id(built)] = rec
        return built

    def watched_match_flow(self, cls, built, found=()):
        found_here = list(match_flow(self, cls, built, found))
        rec = by_flow.get(id(built))
        if rec is not None:
            rec.askers.add(self.rule_id)
            rec.matched = rec.matched or bool(found_here)
        return found_here

    def watched_feasibility(self, built):
        answer = feasibility(self, built)
        rec = by_flow.get(id(built))
        if rec is not None and answer is not None:
            rec.feasible = True
        return answer

    _model.ClassStructure.flow = watched_flow
    _match.Matcher.match_flow = watched_match_flow
    _match.Matcher._feasibility = watched_feasibility
    try:
        for path, text, package in texts:
            current["file"] = path
            try:
                analyze(text, path, rules, package)
            except AnalysisError:
                pass
    finally:
        _model.ClassStructure.flow = flow
        _match.Matcher.match_flow = match_flow
        _match.Matcher._feasibility = feasibility
    return records


def _report(records: dict[tuple, _Record]) -> None:
    flows = list(records.values())
    idle = [r for r in flows if not r.matched]
    infeasible = [r for r in idle if not r.feasible]

    def line(label, group):
        print(f"{label:<34} {len(group):5d} flows {sum(r.nodes for r in group):7d} nodes "
              f"{sum(r.seconds for r in group):7.3f} s build CPU")

    line("built", flows)
    line("no rule matched", idle)
    line("  every searching rule infeasible", infeasible)
    print("no-match flows by the rules that searched them:")
    groups = collections.defaultdict(list)
    for rec in idle:
        groups[tuple(sorted(rec.askers))].append(rec)
    for askers, group in sorted(groups.items(), key=lambda item: -sum(r.nodes for r in item[1]))[:12]:
        line("  " + "+".join(askers), group)


def _analysis_cpu(texts, rules, skip: set, current: dict) -> tuple[float, int]:
    """Analysis CPU of the corpus with the flows of ``skip`` empty (see _oracle_flow)."""
    current["skip"] = skip
    findings = 0
    start = time.process_time()
    for path, text, package in texts:
        current["file"] = path
        try:
            findings += len(analyze(text, path, rules, package).findings)
        except AnalysisError:
            pass
    return time.process_time() - start, findings


def _ceiling(texts, rules, records: dict[tuple, _Record], only: list[str], rounds: int) -> None:
    idle = {key for key, rec in records.items() if not rec.matched}
    skips = {"plain": set(), "no match": idle,
             "infeasible": {key for key in idle if not records[key].feasible}}
    for rule in only:
        skips[f"no match, {rule} alone searched"] = {key for key in idle if records[key].askers == {rule}}
    current = {"file": None, "skip": set()}
    flow = _model.ClassStructure.flow

    def oracle_flow(cls, name):
        if name not in cls._flows and (current["file"], cls.name, name) in current["skip"]:
            cls._flows[name] = Flow(name, [], [], 0, 0)
        return flow(cls, name)

    _model.ClassStructure.flow = oracle_flow
    times = collections.defaultdict(list)
    counts = {}
    try:
        names = list(skips)
        for index in range(rounds):
            for name in (names if index % 2 == 0 else names[::-1]):
                seconds, findings = _analysis_cpu(texts, rules, skips[name], current)
                times[name].append(seconds)
                counts.setdefault(name, findings)
                if findings != counts["plain" if "plain" in counts else name]:
                    raise SystemExit(f"{name}: {findings} findings, the plain analysis {counts.get('plain')}")
    finally:
        _model.ClassStructure.flow = flow
    print(f"ceiling, in one process, {rounds} alternated rounds ({counts['plain']} findings each):")
    for name in names:
        ratios = [t / p for t, p in zip(times[name], times["plain"])]
        print(f"  {name:<34} {len(skips[name]):4d} flows  median CPU {statistics.median(times[name]):6.3f} s"
              f"  B/A {statistics.median(ratios):.4f} ({min(ratios):.4f}-{max(ratios):.4f})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache", type=Path, default=HERE.parent / ".bench", help="paper.py's cache folder")
    parser.add_argument("--ceiling", action="store_true", help="also measure the oracle's savings")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rule", action="append", default=[],
                        help="a rule whose lone-searched no-match flows get a ceiling of their own")
    args = parser.parse_args(argv)
    files = [f.path for f in paper.build_corpus(args.cache, quiet=True)]
    rules = load_rules()
    texts = [(p, Path(p).read_text(encoding="utf-8"), package_of(p)) for p in files]
    for path, text, package in texts:  # (a warm pass: imports, the process's caches)
        try:
            analyze(text, path, rules, package)
        except AnalysisError:
            pass
    records = _record(texts, rules)
    _report(records)
    if args.ceiling:
        _ceiling(texts, rules, records, args.rule, args.rounds)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
