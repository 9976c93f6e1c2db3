"""The paper benchmark's rule override (benchmarks/paper_rules) and how rule folders combine
with the bundled rules: a folder's rule replaces the bundled rule of the same id as a whole;
``--no-bundled-rules`` loads the folders only."""

import json
from pathlib import Path

from adopter.cli import main
from adopter.engine import analyze
from adopter.ruleset import load_rules, select_rules

PAPER = Path(__file__).resolve().parent.parent / "benchmarks" / "paper_rules"
PAPER_IDS = [f"ADP00{i}" for i in range(1, 10)]

# The residual on the left of the add: the paper's ground truth does not count it.
RESIDUAL_FIRST = """
import torch.nn as nn


class Output(nn.Module):
    def __init__(self, hidden):
        super().__init__()
        self.dropout = nn.Dropout(0.1)
        self.LayerNorm = nn.LayerNorm(hidden)

    def forward(self, hidden_states, input_tensor):
        hidden_states = self.LayerNorm(input_tensor + self.dropout(hidden_states))
        return hidden_states
"""


def test_paper_rules_are_the_nine_paper_rules_only():
    rules = load_rules([PAPER], bundled=False)
    assert [r.id for r in rules] == PAPER_IDS
    assert all(Path(r.path).parent == PAPER for r in rules)


def test_a_folder_rule_replaces_the_bundled_rule_of_its_id():
    mixed = {r.id: r for r in load_rules([PAPER])}
    assert len(mixed) == len(load_rules())  # nothing added: nine replaced
    assert all(Path(mixed[i].path).parent == PAPER for i in PAPER_IDS)
    assert Path(mixed["ADP010"].path).parent != PAPER  # bundled rules without an override stay


def test_paper_rules_keep_the_paper_convention_and_bundled_rules_state_the_semantics():
    paper = select_rules(load_rules([PAPER], bundled=False), ["ADP005"])
    bundled = select_rules(load_rules(), ["ADP005"])
    assert analyze(RESIDUAL_FIRST, "m.py", paper).findings == []
    assert [f.rule for f in analyze(RESIDUAL_FIRST, "m.py", bundled).findings] == ["ADP005"]


def _check(tmp_path, capsys, *options):
    model = tmp_path / "model.py"
    model.write_text(RESIDUAL_FIRST)
    code = main(["check", "--output-format", "json", "--no-config", *options, str(model)])
    return code, json.loads(capsys.readouterr().out or "[]")


def test_cli_no_bundled_rules_reads_only_the_folder(tmp_path, capsys):
    code, found = _check(tmp_path, capsys, "--no-bundled-rules", "--rules-dir", str(PAPER))
    assert (code, found) == (0, [])
    code, found = _check(tmp_path, capsys, "--target", "cuda")  # bundled ADP005: on for cuda
    assert code == 1 and [f["rule"] for f in found] == ["ADP005"]
    assert main(["rules", "--no-bundled-rules", "--rules-dir", str(PAPER), "--output-format", "json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [r["id"] for r in listed] == PAPER_IDS


def test_cli_no_bundled_rules_without_a_folder_is_a_usage_error(capsys):
    assert main(["rules", "--no-bundled-rules"]) == 2
    assert "needs a --rules-dir" in capsys.readouterr().err
