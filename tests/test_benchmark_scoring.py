"""The paper-benchmark script's scoring and corpus rules, on hand-made inputs (no downloads)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "paper.py"


@pytest.fixture(scope="module")
def paper():
    spec = importlib.util.spec_from_file_location("benchmark_paper", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["benchmark_paper"] = module  # dataclasses look the module up by name
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop("benchmark_paper", None)


def test_cell_found_more_than_truth_is_fp(paper):
    c = paper.score_one(found=3, truth=1)
    assert (c.tp, c.fn, c.fp) == (1, 0, 2)


def test_cell_found_less_than_truth_is_fn(paper):
    c = paper.score_one(found=1, truth=4)
    assert (c.tp, c.fn, c.fp) == (1, 3, 0)


def test_cell_exact_and_empty(paper):
    assert (lambda c: (c.tp, c.fn, c.fp))(paper.score_one(2, 2)) == (2, 0, 0)
    assert (lambda c: (c.tp, c.fn, c.fp))(paper.score_one(0, 0)) == (0, 0, 0)


def test_score_sums_per_rule_and_total(paper):
    truth = {"bert": {"ADP004": 2, "ADP005": 2}, "gpt2": {"ADP003": 1, "ADP004": 1}}
    found = {"bert": {"ADP004": 3, "ADP005": 1}, "gpt2": {"ADP003": 1}}
    s = paper.score(found, truth)
    r4, r5, r3 = s.per_rule["ADP004"], s.per_rule["ADP005"], s.per_rule["ADP003"]
    assert (r4.tp, r4.fn, r4.fp) == (2, 1, 1)  # bert 3 vs 2 (FP 1), gpt2 0 vs 1 (FN 1)
    assert (r5.tp, r5.fn, r5.fp) == (1, 1, 0)
    assert (r3.tp, r3.fn, r3.fp) == (1, 0, 0)
    assert (s.total.tp, s.total.fn, s.total.fp) == (4, 2, 1)
    assert s.total.precision == pytest.approx(4 / 5)
    assert s.total.recall == pytest.approx(4 / 6)
    assert s.disagreements == [("bert", "ADP004", 3, 2), ("bert", "ADP005", 1, 2), ("gpt2", "ADP004", 0, 1)]


def test_missing_model_counts_as_nothing_found(paper):
    s = paper.score({}, {"vit": {"ADP006": 2}})
    assert (s.total.tp, s.total.fn, s.total.fp) == (0, 2, 0)
    assert s.total.recall == 0.0
    assert s.total.precision == 1.0  # nothing reported, nothing wrong
    assert s.disagreements == [("vit", "ADP006", 0, 2)]


def test_heldout_models_are_not_scored(paper):
    s = paper.score({"bert": {"ADP004": 1}, "secret": {"ADP004": 9}}, {"bert": {"ADP004": 1}})
    assert (s.total.tp, s.total.fn, s.total.fp) == (1, 0, 0)
    assert s.disagreements == []


def test_unknown_rules_in_findings_are_ignored(paper):
    s = paper.score({"bert": {"ADP004": 1, "XYZ999": 5}}, {"bert": {"ADP004": 1}})
    assert (s.total.tp, s.total.fn, s.total.fp) == (1, 0, 0)


def test_published_cells_are_summed(paper):
    C = paper.Counts
    s = paper.published_score({"a": {"ADP004": C(6, 2, 0)}, "b": {"ADP004": C(1, 0, 1), "ADP006": C(0, 1, 0)}})
    r4 = s.per_rule["ADP004"]
    assert (r4.tp, r4.fn, r4.fp) == (7, 2, 1)
    assert (s.total.tp, s.total.fn, s.total.fp) == (7, 3, 1)
    assert paper.parse_cell(" 1/0/2 ") == C(1, 0, 2)


def test_read_dev_tsv(paper, tmp_path):
    header = ["model", "wheel", "path"] + [f"gt_r{i}" for i in range(1, 10)] + [f"adopter_r{i}" for i in range(1, 10)]
    row = ["bert", "transformers==4.34.0", "transformers/models/bert/modeling_bert.py",
           "1", "0", "0", "4", "2", "2", "0", "0", "0"] + ["0/0/0"] * 3 + ["3/1/0"] + ["0/0/0"] * 5
    tsv = tmp_path / "dev.tsv"
    tsv.write_text("\t".join(header) + "\n" + "\t".join(row) + "\n")
    dev = paper.read_dev(tsv)
    assert dev["bert"].truth["ADP001"] == 1 and dev["bert"].truth["ADP004"] == 4
    assert dev["bert"].published["ADP004"] == paper.Counts(3, 1, 0)


def test_findings_are_mapped_to_models_by_path(paper):
    model_of = {"src/bert/modeling_bert.py": "bert", "src/gpt2/modeling_gpt2.py": "gpt2"}
    findings = [
        {"rule": "ADP004", "path": "src/bert/modeling_bert.py", "line": 30},
        {"rule": "ADP004", "path": "src/bert/./modeling_bert.py", "line": 10},
        {"rule": "ADP003", "path": "src/gpt2/modeling_gpt2.py", "line": 5},
        {"rule": "ADP004", "path": "elsewhere.py", "line": 1},
    ]
    counts, lines = paper.counts_by_model(findings, model_of)
    assert counts == {"bert": {"ADP004": 2}, "gpt2": {"ADP003": 1}}
    assert lines[("bert", "ADP004")] == [10, 30]


def test_corpus_rule(paper):
    names = [
        "transformers/models/bert/modeling_bert.py",
        "transformers/models/bert/modeling_tf_bert.py",
        "transformers/models/bert/modeling_flax_bert.py",
        "transformers/models/blip/modeling_blip.py",
        "transformers/models/blip/modeling_blip_text.py",
        "transformers/models/data2vec/modeling_data2vec_audio.py",
        "transformers/models/donut/modeling_donut_swin.py",
        "transformers/models/deprecated/van/modeling_van.py",
        "transformers/models/bertweet/tokenization_bertweet.py",
        "transformers/modeling_utils.py",
    ]
    assert paper.corpus_members(names) == [
        ("bert", "transformers/models/bert/modeling_bert.py"),
        ("blip", "transformers/models/blip/modeling_blip.py"),
    ]


def test_extract_takes_package_inits(paper, tmp_path):
    wheel = tmp_path / "w.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        for name in ["transformers/__init__.py", "transformers/models/__init__.py",
                     "transformers/models/bert/__init__.py", "transformers/models/bert/modeling_bert.py",
                     "transformers/models/bert/modeling_tf_bert.py", "transformers/activations.py"]:
            zf.writestr(name, "# " + name + "\n")
    paper.extract(wheel, tmp_path / "src", ["transformers/models/bert/modeling_bert.py"])
    got = sorted(str(p.relative_to(tmp_path / "src")) for p in (tmp_path / "src").rglob("*.py"))
    assert got == ["transformers/__init__.py", "transformers/models/__init__.py",
                   "transformers/models/bert/__init__.py", "transformers/models/bert/modeling_bert.py"]


def test_table_is_plain_text(paper):
    text = paper.table(["rule", "TP"], [["ADP004", 12], ["total", 3]])
    assert text.splitlines() == ["rule    TP", "------  --", "ADP004  12", "total    3"]


def test_help_runs():
    proc = subprocess.run([sys.executable, str(SCRIPT), "--help"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0
    assert "--cache" in proc.stdout and "--json-out" in proc.stdout
