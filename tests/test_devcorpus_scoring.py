"""The development-corpus scorer's matching and label reading, on hand-made inputs (no downloads)."""
import importlib.util
import sys
from pathlib import Path

import pytest

SCORE = Path(__file__).resolve().parent.parent / "benchmarks" / "devcorpus" / "score.py"
spec = importlib.util.spec_from_file_location("devcorpus_score", SCORE)
score = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = score  # dataclasses look their module up by name
spec.loader.exec_module(score)

Label, Finding = score.Label, score.Finding


def lab(line, rule="ADP007", label="yes"):
    return Label("fixture", "fixtures/x.py", line, rule, label, "why")


def test_anchor_inside_span_is_a_true_positive_and_outside_is_a_miss_plus_unlabelled():
    m = score.match_file([lab(10), lab(20)], [Finding("ADP007", 8, 10), Finding("ADP007", 21, 22)])
    c = m.counts("ADP007")
    assert (c.tp, c.fp, c.fn) == (1, 1, 1)
    assert [x.line for x in m.missed] == [20]
    assert [f.line for f in m.unlabelled] == [21]


def test_rule_must_agree_and_unscored_rules_are_ignored():
    m = score.match_file([lab(5, "ADP010")], [Finding("ADP004", 5, 5), Finding("ADP006", 5, 5)])
    assert m.counts("ADP010").fn == 1
    assert m.counts("ADP006").fp == 1  # fully labelled file: an unlabelled finding is a false positive
    assert all(f.rule != "ADP004" for f in m.unlabelled)


def test_no_label_hit_is_a_false_positive_and_skip_counts_nowhere():
    m = score.match_file([lab(3, label="no"), lab(9, label="skip")],
                         [Finding("ADP007", 3, 3), Finding("ADP007", 9, 9)])
    c = m.counts("ADP007")
    assert (c.tp, c.fp, c.fn) == (0, 1, 0)


def test_each_label_and_each_finding_is_used_once_yes_before_no():
    # one finding spanning a 'no' and a 'yes' anchor takes the 'yes'; a second finding over the
    # same yes cannot reuse it and falls to the 'no'
    labels = [lab(4, label="no"), lab(6)]
    m = score.match_file(labels, [Finding("ADP007", 4, 6), Finding("ADP007", 4, 6)])
    c = m.counts("ADP007")
    assert (c.tp, c.fp, c.fn) == (1, 1, 0)
    # two findings over one yes label: one TP, one unlabelled FP
    m = score.match_file([lab(6)], [Finding("ADP007", 5, 7), Finding("ADP007", 6, 6)])
    assert (m.counts("ADP007").tp, m.counts("ADP007").fp) == (1, 1)


def test_nearest_anchor_wins_among_equal_labels():
    m = score.match_file([lab(10), lab(12)], [Finding("ADP007", 11, 12)])
    assert [pair[0].line for pair in m.matched] == [12]
    assert [x.line for x in m.missed] == [10]


def test_counts_precision_recall_on_empty_sets():
    c = score.Counts()
    assert (c.precision, c.recall) == (1.0, 1.0)
    c.add(score.Counts(tp=3, fp=1, fn=3))
    assert (c.precision, c.recall) == (0.75, 0.5)


def test_read_labels_rejects_bad_rows(tmp_path):
    good = tmp_path / "labels.tsv"
    good.write_text("source\tpath\tline\trule\tlabel\twhy\nfixture\tfixtures/a.py\t3\tADP005\tyes\tok\n")
    assert score.read_labels(good)[0].line == 3
    for row in ("fixture\tfixtures/a.py\t3\tADP004\tyes\tunscored rule",
                "fixture\tfixtures/a.py\tx\tADP005\tyes\tbad line",
                "fixture\tfixtures/a.py\t3\tADP005\tmaybe\tbad label",
                "fixture\tfixtures/a.py\t3\tADP005\tyes"):
        bad = tmp_path / "bad.tsv"
        bad.write_text("source\tpath\tline\trule\tlabel\twhy\n" + row + "\n")
        with pytest.raises(SystemExit):
            score.read_labels(bad)


def test_committed_labels_parse_and_fixture_anchors_exist():
    labels = score.read_labels(SCORE.parent / "labels.tsv")
    assert len(labels) >= 300
    assert len({(x.source, x.path) for x in labels}) >= 60
    for x in labels:
        if x.source == "fixture":
            lines = (SCORE.parent / x.path).read_text().splitlines()
            assert lines[x.line - 1].strip(), x  # an anchor on a real statement line


def test_two_findings_of_one_rule_on_one_line_are_one_location():
    # `bn(conv(x)) if a else act(bn(conv(x)))`: two rewrites on one line, one label (by location)
    m = score.match_file([lab(6)], [Finding("ADP007", 6, 6), Finding("ADP007", 6, 6)])
    assert (m.counts("ADP007").tp, m.counts("ADP007").fp) == (1, 0)
    assert len(m.same_location) == 1 and not m.unlabelled
    # another rule's finding on that line, or a finding on the next line, is still its own
    m = score.match_file([lab(6)], [Finding("ADP007", 6, 6), Finding("ADP006", 6, 6), Finding("ADP007", 7, 7)])
    assert m.counts("ADP006").fp == 1 and m.counts("ADP007").fp == 1


def test_a_wider_finding_gives_up_the_yes_in_its_span_for_its_own_skip():
    # kernel_1's finding (10-21) spans its own skip anchor (10) and kernel_3's yes (19), whose
    # own finding (19-21) comes later: both are paired, nothing is charged
    m = score.match_file([lab(10, "ADP010", "skip"), lab(11, "ADP010", "no"), lab(19, "ADP010")],
                         [Finding("ADP010", 10, 21), Finding("ADP010", 19, 21)])
    c = m.counts("ADP010")
    assert (c.tp, c.fp, c.fn) == (1, 0, 0)
    assert not m.unlabelled


def test_a_wider_finding_keeps_its_yes_when_the_only_other_label_is_a_no():
    # swapping would put the wider finding on a `no`: the order-free count is the same (one FP),
    # so the greedy pairing stands
    m = score.match_file([lab(11, "ADP010", "no"), lab(19, "ADP010")],
                         [Finding("ADP010", 10, 21), Finding("ADP010", 19, 21)])
    c = m.counts("ADP010")
    assert (c.tp, c.fp, c.fn) == (1, 1, 0)
    assert [f.line for f in m.unlabelled] == [19]
