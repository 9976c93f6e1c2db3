"""benchmarks/rules.py: the per-rule benchmark's logic, with deterministic clocks.

No timing is asserted: the A/B statistics are driven by scripted clocks, and the end-to-end
runs inject a clock that counts floating-point operations (``torch.utils.flop_counter``) at
the timing boundary, over real rule files, real fixtures patched by ``fix_text``, real
modules and the real equality check.  One user rule does ten times the work of the code it
replaces (it must come out below 1 and be turned off); another reassociates a matrix chain
into far fewer operations (it must come out above 1 and be turned on).
"""

from __future__ import annotations

import importlib.util
import json
import sys
import textwrap
from pathlib import Path

import pytest

from adopter.cli import main as adopter_main
from adopter.measured import Figure, load_measured, read_file, summary, verdict
from adopter.ruleset import RuleError, load_rules, select_rules

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look the module up by name
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def bench():
    sys.path.insert(0, str(BENCH))
    try:
        yield _load("benchmark_rules", BENCH / "rules.py")
    finally:
        sys.modules.pop("benchmark_rules", None)
        sys.path.remove(str(BENCH))


@pytest.fixture(scope="module")
def stats(bench):
    import rulebench.stats

    return rulebench.stats


SLOW_RULE = '''
id = "TST001"
name = "slow-matmul"
summary = "A deliberately slower rewrite: the product computed ten times."
helps = ["cpu:inference", "cpu:training"]

[kernel]
package = "torch"
import = "torch.matmul"

[forward]
source = """
$h = torch.matmul($a, $b)
$y = torch.relu($h)
"""
target = "$y = torch.relu(sum(torch.matmul($a, $b) for _ in range(10)) / 10)"
'''

FAST_RULE = '''
id = "TST002"
name = "matmul-chain"
summary = "(a @ b) @ c as a @ (b @ c): far fewer operations when c is narrow."
default = false
helps = ["cpu:inference"]

[kernel]
package = "torch"
import = "torch.matmul"

[forward]
source = """
$h = torch.matmul($a, $b)
$y = torch.matmul($h, $c)
"""
target = "$y = torch.matmul($a, torch.matmul($b, $c))"
'''

WRONG_RULE = '''
id = "TST003"
name = "wrong-relu"
summary = "A rewrite that changes the result: the benchmark must refuse to time it."
helps = ["cpu:inference"]

[kernel]
package = "torch"
import = "torch.relu"

[forward]
source = """
$h = torch.matmul($a, $b)
$y = torch.relu($h)
"""
target = "$y = torch.relu(torch.matmul($a, $b) * 2)"
'''

CUDA_RULE = '''
id = "TST004"
name = "cuda-only"
summary = "Patched code that runs on CUDA only."
helps = ["cuda:training"]
only_on = ["cuda"]

[kernel]
package = "torch"
import = "torch.matmul"

[forward]
source = """
$h = torch.matmul($a, $b)
$y = torch.relu($h)
"""
target = "$y = torch.relu(torch.matmul($a, $b))"
'''

FIXTURE = '''
import torch
from torch import nn

RULES = ("TST001", "TST002", "TST003", "TST004")


class Activated(nn.Module):
    def __init__(self, n):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(n, n))

    def forward(self, x):
        h = torch.matmul(x, self.weight)
        return torch.relu(h)


class Chain(nn.Module):
    def __init__(self, n, k):
        super().__init__()
        self.up = nn.Parameter(torch.randn(n, 4 * n))
        self.down = nn.Parameter(torch.randn(4 * n, k))

    def forward(self, x):
        h = torch.matmul(x, self.up)
        y = torch.matmul(h, self.down)
        return y


def cases(quick=False):
    return [{"name": "relu n32", "n": 32, "kind": "relu"}, {"name": "chain n64 k4", "rule": "TST002", "n": 64}]


def build(case):
    return Activated(case["n"]) if case.get("kind") == "relu" else Chain(case["n"], 4)


def inputs(case):
    return (torch.randn(4 * case["n"], case["n"]),)
'''


@pytest.fixture
def user(tmp_path):
    rules, fixtures = tmp_path / "rules", tmp_path / "fixtures"
    rules.mkdir()
    fixtures.mkdir()
    for name, text in (("TST001-slow.toml", SLOW_RULE), ("TST002-chain.toml", FAST_RULE),
                       ("TST003-wrong.toml", WRONG_RULE), ("TST004-cuda.toml", CUDA_RULE)):
        (rules / name).write_text(text.lstrip())
    (fixtures / "mm.py").write_text(FIXTURE.lstrip())
    return tmp_path


# ------------------------------------------------------------------------------ A/B pairs


def scripted(times: dict):
    """A clock that returns the next scripted time of whichever function it is given."""
    calls = []

    def measure(fn):
        calls.append(fn.__name__)
        return times[fn.__name__].pop(0)

    return measure, calls


def fa():
    pass


def fb():
    pass


def test_pairs_alternate_order_and_take_the_median_ratio(stats):
    measure, calls = scripted({"fa": [2.0] * 8, "fb": [1.0, 1.0, 2.0, 1.0, 1.0, 1.0, 4.0]})
    result = stats.run_pairs(measure, fa, fb, min_pairs=7, max_pairs=7)
    assert calls[:6] == ["fa", "fb", "fb", "fa", "fa", "fb"]  # A B, B A, A B, ...
    assert calls[-1] == "fa"  # the original timed again after the last pair
    assert result.pairs == 7
    assert result.ratios == [2.0, 2.0, 1.0, 2.0, 2.0, 2.0, 0.5]
    assert result.ratio == 2.0 and result.low == 0.5 and result.high == 2.0
    assert result.q1 == 1.5 and result.q3 == 2.0


def test_more_pairs_while_the_spread_is_wide_and_stop_at_the_cap(stats):
    steady, _ = scripted({"fa": [1.0] * 8, "fb": [1.0] * 7})
    assert stats.run_pairs(steady, fa, fb, min_pairs=7, max_pairs=21).pairs == 7
    noisy = [1.0, 3.0] * 20
    wide, _ = scripted({"fa": [1.0] * 22, "fb": noisy[:21]})
    result = stats.run_pairs(wide, fa, fb, min_pairs=7, max_pairs=21, wide=0.10)
    assert result.pairs == 21 and result.relative_iqr > 0.10


def test_drift_is_flagged_from_the_halves_and_from_the_final_timing(stats):
    rising = [1.0, 1.0, 1.0, 1.5, 1.5, 1.5, 1.5]
    measure, _ = scripted({"fa": rising + [1.5], "fb": [x / 2 for x in rising]})
    result = stats.run_pairs(measure, fa, fb, min_pairs=7, max_pairs=7)
    assert result.drift and result.drift_halves == pytest.approx(0.5)
    assert result.ratio == 2.0  # the pairs drift together: the ratio does not move
    late, _ = scripted({"fa": [1.0] * 7 + [1.3], "fb": [1.0] * 7})
    result = stats.run_pairs(late, fa, fb, min_pairs=7, max_pairs=7, drift_limit=0.10)
    assert result.drift and result.drift_halves == 0.0 and result.drift_end == pytest.approx(0.3)
    calm, _ = scripted({"fa": [1.0] * 8, "fb": [1.0] * 7})
    assert not stats.run_pairs(calm, fa, fb, min_pairs=7, max_pairs=7).drift


# ------------------------------------------------------------------------------ policy


def fig(target, mode, ratio, q1, q3, claimed=True):
    return Figure("X", target, mode, "case", ratio, q1, q3, q1, q3, 7, claimed=claimed)


def test_a_gain_needs_the_median_and_the_lower_quartile():
    assert fig("cpu", "inference", 1.10, 1.02, 1.2).gain
    assert not fig("cpu", "inference", 1.10, 0.98, 1.2).gain  # within the spread
    assert not fig("cpu", "inference", 1.04, 1.02, 1.06).gain  # below 1.05
    assert fig("cpu", "training", 0.90, 0.85, 0.95).loss


def test_verdict_turns_figures_into_a_default():
    helps = ["cpu:inference", "cuda:training"]
    assert verdict(helps, [fig("cpu", "inference", 1.3, 1.2, 1.4)]).default is True
    # no gain on cpu, cuda never measured: on only with --target cuda
    v = verdict(helps, [fig("cpu", "inference", 1.0, 0.95, 1.05)])
    assert v.default == ("cuda",) and v.targets == {"cpu": "no gain", "cuda": "unmeasured"}
    assert verdict(["cpu:inference"], [fig("cpu", "inference", 0.5, 0.4, 0.6)]).default is False
    # a gain in one claimed mode and a loss in another on the same target: it does not pay there
    both = ["cpu:inference", "cpu:training"]
    assert verdict(both, [fig("cpu", "inference", 1.5, 1.4, 1.6),
                          fig("cpu", "training", 0.8, 0.7, 0.9)]).default is False
    # figures of modes the rule does not claim do not count
    assert verdict(["cpu:training"], [fig("cpu", "inference", 2.0, 1.9, 2.1)]).targets["cpu"] == "unmeasured"
    assert verdict([], []).default is False


def test_summary_says_gain_no_gain_and_not_measured():
    line = summary(["cpu:inference", "cuda:training"], [fig("cpu", "inference", 1.42, 1.31, 1.5)])
    assert line == "cpu 1.42x [1.31-1.50], cuda not measured"
    assert summary(["cpu:inference"], [fig("cpu", "inference", 0.98, 0.95, 1.01)]) == "cpu no gain 0.98x [0.95-1.01]"
    mixed = [fig("cpu", "inference", 1.08, 1.04, 1.1), fig("cpu", "inference", 0.94, 0.9, 0.99)]
    assert summary(["cpu:inference"], mixed) == "cpu no gain 0.94-1.08x (2 figures)"


# ------------------------------------------------------------------------------ rule files


def test_default_may_list_the_targets_it_is_on_for(tmp_path):
    (tmp_path / "TST009-x.toml").write_text(FAST_RULE.replace("TST002", "TST009").replace(
        "default = false", 'default = ["cuda"]'))
    (tmp_path / "measured.toml").write_text("[[TST009]]\ntarget = 'cpu'\nmode = 'inference'\nratio = 1.0\n"
                                            "q1 = 0.9\nq3 = 1.1\n")
    rules = [r for r in load_rules([tmp_path]) if r.id == "TST009"]  # measured.toml is not a rule
    rule = rules[0]
    assert rule.default is False and rule.default_targets == ("cuda",)
    assert rule not in select_rules(rules) and rule not in select_rules(rules, target="cpu")
    assert rule in select_rules(rules, target="cuda")
    assert rule in select_rules(rules, ["TST009"])  # named: always
    assert read_file(tmp_path / "measured.toml")["TST009"][0].q3 == 1.1
    (tmp_path / "TST009-x.toml").write_text(FAST_RULE.replace("TST002", "TST009").replace(
        "default = false", 'default = ["tpu"]'))
    with pytest.raises(RuleError, match="default: must be"):
        load_rules([tmp_path])


def test_target_cuda_turns_on_a_rule_that_is_on_for_cuda(tmp_path, capsys):
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "TST002-chain.toml").write_text(FAST_RULE.replace("default = false", 'default = ["cuda"]').replace(
        'helps = ["cpu:inference"]', 'helps = ["cuda:inference"]'))
    (tmp_path / "m.py").write_text(textwrap.dedent("""
        import torch

        def f(a, b, c):
            h = torch.matmul(a, b)
            return torch.matmul(h, c)
        """))
    args = ["check", "--no-config", "--rules-dir", str(rules), "--output-format", "json", str(tmp_path / "m.py")]
    assert adopter_main(args) == 0  # off by default here: shown as information, not counted
    shown = [f for f in json.loads(capsys.readouterr().out) if f["rule"] == "TST002"]
    assert len(shown) == 1 and shown[0]["severity"] == "info" and "--target cuda" in shown[0]["informational"]
    adopter_main(args + ["--target", "cuda"])
    found = [f for f in json.loads(capsys.readouterr().out) if f["rule"] == "TST002"]
    assert len(found) == 1 and found[0]["severity"] != "info"


# ------------------------------------------------------------------------------ end to end


def test_slow_rule_measures_below_one_and_is_turned_off(bench, user, capsys):
    out = user / "out.json"
    measured = user / "rules" / "measured.toml"
    code = bench.main(["--rules-dir", str(user / "rules"), "--fixtures", str(user / "fixtures"),
                       "--select", "TST001,TST002", "--json-out", str(out), "--write", str(measured),
                       "--apply-defaults", "--no-memory"], clock=bench.flop_clock)
    assert code == 0
    data = json.loads(out.read_text())
    rows = {(r["rule"], r["mode"]): r for r in data["rows"]}
    slow_inference = rows[("TST001", "inference")]["result"]
    assert slow_inference["ratio"] == pytest.approx(0.1, rel=1e-6)  # ten products instead of one
    assert rows[("TST001", "training")]["result"]["ratio"] < 1
    assert rows[("TST001", "inference")]["claimed"] and rows[("TST001", "inference")]["result"]["pairs"] >= 7
    assert rows[("TST002", "inference")]["result"]["ratio"] > 10
    assert ("TST002", "training") not in rows  # not claimed, not timed
    assert data["verdicts"]["TST001"] == {
        "targets": {"cpu": "no gain"}, "default": "false", "rule_file_default": "true",
        "slower": ["cpu:inference relu n32 0.10x [0.10-0.10]", "cpu:training relu n32 0.10x [0.10-0.10]"]}
    assert data["verdicts"]["TST002"]["default"] == "true"
    meta = data["meta"]
    assert meta["torch"] and meta["device"] == "cpu" and meta["dtype"] == "float32" and meta["threads"] == 1
    assert meta["min_pairs"] == 7
    # the rule files now say what the figures earn, and the loader reads the figures back
    by_id = {r.id: r for r in load_rules([user / "rules"])}
    assert by_id["TST001"].default is False and by_id["TST002"].default is True
    figures = load_measured([user / "rules"])
    assert {f.mode for f in figures["TST001"]} == {"inference", "training"}
    assert "default = false" in (user / "rules" / "TST001-slow.toml").read_text()
    capsys.readouterr()
    assert adopter_main(["rules", "--rules-dir", str(user / "rules"), "TST001"]) == 0
    explained = capsys.readouterr().out
    assert "cpu:inference relu n32: 0.10x" in explained and "Default: off by default" in explained
    assert adopter_main(["rules", "--rules-dir", str(user / "rules")]) == 0
    line = next(t for t in capsys.readouterr().out.splitlines() if t.startswith("TST002"))
    assert "measured: cpu 34.00x" in line


def test_an_earlier_run_is_written_from_its_json(bench, user, capsys):
    out = user / "out.json"
    args = ["--rules-dir", str(user / "rules"), "--fixtures", str(user / "fixtures"), "--select", "TST001"]
    assert bench.main([*args, "--json-out", str(out), "--no-memory"], clock=bench.flop_clock) == 0
    measured = user / "figures.toml"
    assert bench.main(["--rules-dir", str(user / "rules"), "--from-json", str(out), "--write", str(measured),
                       "--apply-defaults"]) == 0
    figures = bench.read_file(measured)["TST001"]
    assert sorted((f.mode, f.ratio) for f in figures) == [("inference", 0.1), ("training", 0.1)]
    assert "default = false" in (user / "rules" / "TST001-slow.toml").read_text()
    assert "TST001  relu n32" in capsys.readouterr().out
    out.write_text("{}")
    assert bench.main(["--from-json", str(out)]) == 2


def test_write_keeps_the_figures_of_other_targets(bench, user):
    measured = user / "rules" / "measured.toml"
    cuda = Figure("TST001", "cuda", "training", "relu n32", 2.0, 1.8, 2.2, 1.7, 2.3, 9, torch="2.13.0")
    bench.write_measured(measured, [cuda], {"TST001"}, "cuda")
    cpu = Figure("TST001", "cpu", "inference", "relu n32", 0.5, 0.4, 0.6, 0.3, 0.7, 7)
    bench.write_measured(measured, [cpu], {"TST001"}, "cpu")
    figures = load_measured([user / "rules"])["TST001"]
    assert sorted((f.target, f.ratio) for f in figures) == [("cpu", 0.5), ("cuda", 2.0)]
    assert verdict(["cpu:inference", "cuda:training"], figures).default is True


def test_different_results_are_never_timed_and_cuda_rules_get_no_ratio(bench, user, capsys):
    out = user / "out.json"
    code = bench.main(["--rules-dir", str(user / "rules"), "--fixtures", str(user / "fixtures"),
                       "--select", "TST003,TST004", "--json-out", str(out), "--all-modes"], clock=bench.flop_clock)
    assert code == 1  # an error row
    rows = {r["rule"]: r for r in json.loads(out.read_text())["rows"]}
    assert rows["TST003"]["status"].startswith("error: not equal") and rows["TST003"]["result"] is None
    assert rows["TST004"]["status"].startswith("not measured on its hardware") and rows["TST004"]["result"] is None
    printed = capsys.readouterr().out
    assert "TST004  not measured on its hardware" in printed
    # a rule that claims only CUDA (without only_on) gets no CPU ratio either, even with --all-modes
    (user / "rules" / "TST004-cuda.toml").write_text(CUDA_RULE.replace('only_on = ["cuda"]\n', ""))
    bench.main(["--rules-dir", str(user / "rules"), "--fixtures", str(user / "fixtures"), "--select", "TST004",
                "--json-out", str(out), "--all-modes"], clock=bench.flop_clock)
    rows = json.loads(out.read_text())["rows"]
    assert [r["status"] for r in rows] == ["not measured on its hardware (claims cuda:training)"]


def test_every_fixable_bundled_rule_has_a_fixture_the_fix_applies_to(bench):
    from rulebench.fixtures import discover, patched_source

    fixtures = discover(BENCH / "rule_fixtures")
    for rule in load_rules():
        if not rule.fixable:
            continue
        mine = [f for f in fixtures if rule.id in f.rules]
        assert mine, f"{rule.id} has no benchmark fixture in benchmarks/rule_fixtures"
        for fixture in mine:
            _, applied, skipped = patched_source(fixture, rule)
            assert applied, f"fix does not apply {rule.id} to {fixture.path.name}: {skipped}"


def test_bundled_fixtures_compute_the_same_patched_quick_cases(bench):
    """Every fixture's small cases, patched by each rule it declares whose patched code runs on
    the CPU, load the original's weights strictly and compute the same outputs and gradients."""
    import torch
    from rulebench.fixtures import ModulePair, discover, patched_source
    from rulebench.harness import check_equal

    by_id = {r.id: r for r in load_rules()}
    checked = set()
    for fixture in discover(BENCH / "rule_fixtures"):
        for rule_id in fixture.rules:
            rule = by_id[rule_id]
            if not rule.fixable or (rule.only_on and "cpu" not in rule.only_on):
                continue
            text, _, _ = patched_source(fixture, rule)
            with ModulePair(fixture, text) as pair:
                for case in pair.original.cases(True):
                    if case.get("rule", rule_id) == rule_id:
                        assert check_equal(pair, case, torch.device("cpu")) == "float64"
                        checked.add(rule_id)
    assert {"ADP001", "ADP005", "ADP007", "ADP010", "ADP012"} <= checked


def test_the_script_runs_end_to_end_and_refuses_fewer_than_seven_pairs(tmp_path):
    import subprocess

    out = tmp_path / "rows.json"
    script = str(BENCH / "rules.py")
    proc = subprocess.run([sys.executable, script, "--quick", "--clock", "flops", "--select", "ADP008,ADP013",
                           "--json-out", str(out)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    data = json.loads(out.read_text())
    rows = {r["rule"]: r for r in data["rows"]}
    assert rows["ADP008"]["result"]["pairs"] >= 7 and rows["ADP008"]["checked_in"] == "float64"
    assert rows["ADP013"]["status"].startswith("not measured on its hardware") and rows["ADP013"]["result"] is None
    assert proc.stdout.startswith("# torch ") and "ADP013  not measured on its hardware" in proc.stdout
    proc = subprocess.run([sys.executable, script, "--pairs", "3"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "at least 7" in proc.stderr
