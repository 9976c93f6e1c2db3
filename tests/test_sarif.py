"""SARIF output against the official SARIF 2.1.0 JSON schema (OASIS, errata 01:
tests/fixtures/sarif-schema-2.1.0.json, unchanged), with URI formats checked
(rfc3986-validator), on files whose names need percent-encoding."""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path
from urllib.parse import unquote, urljoin

import jsonschema
import pytest

from adopter.cli import main

# The models here hold dropout -> add -> LayerNorm (ADP005), on by default for CUDA only (no
# gain measured on the CPU): these runs are for code that runs on CUDA.
CUDA = ("--target", "cuda")

SCHEMA = json.loads((Path(__file__).parent / "fixtures" / "sarif-schema-2.1.0.json").read_text())
MODEL = textwrap.dedent("""\
    from torch import nn


    class Out(nn.Module):
        def __init__(self):
            super().__init__()
            self.dropout = nn.Dropout(0.1)
            self.norm = nn.LayerNorm(8)

        def forward(self, h, r):
            return self.norm(self.dropout(h) + r)
""")


def validate(doc: dict) -> None:
    validator = jsonschema.Draft4Validator(SCHEMA, format_checker=jsonschema.FormatChecker())
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(doc)]
    assert errors == []


def test_the_validator_checks_uri_formats():
    """Without a URI checker installed, jsonschema skips `format`: this test would prove nothing."""
    doc = {"version": "2.1.0", "runs": [{"tool": {"driver": {"name": "x"}}, "results": [{
        "message": {"text": "m"}, "locations": [{"physicalLocation": {"artifactLocation": {
            "uri": "weird dir/my model#1.py#x"}}}]}]}]}
    with pytest.raises(AssertionError):
        validate(doc)


@pytest.fixture
def tree(tmp_path, monkeypatch):
    odd = tmp_path / "weird dir"
    odd.mkdir()
    (odd / "my model#1.py").write_text(MODEL)
    (tmp_path / "ünïcode 100%.py").write_text(MODEL)
    (tmp_path / "broken.py").write_text("def f(:\n")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run_sarif(capsys, *paths) -> tuple[int, dict]:
    code = main(["check", *CUDA, "--output-format", "sarif", *paths])
    return code, json.loads(capsys.readouterr().out)


def test_odd_file_names_give_valid_relative_percent_encoded_uris(tree, capsys):
    code, doc = run_sarif(capsys, "weird dir", "ünïcode 100%.py")
    assert code == 1
    validate(doc)
    run = doc["runs"][0]
    base = run["originalUriBaseIds"]["SRCROOT"]["uri"]
    assert base.startswith("file:///") and base.endswith("/")
    locations = [r["locations"][0]["physicalLocation"]["artifactLocation"] for r in run["results"]]
    assert {loc["uri"] for loc in locations} == {"weird%20dir/my%20model%231.py", "%C3%BCn%C3%AFcode%20100%25.py"}
    assert all(loc["uriBaseId"] == "SRCROOT" for loc in locations)
    for loc in locations:  # the URI resolves back to the real file
        resolved = unquote(urljoin(base, loc["uri"]))
        assert Path(resolved[len("file://"):]).is_file()
    assert run["invocations"] == [{"executionSuccessful": True}]


def test_absolute_inputs_outside_the_root_are_file_uris(tree, tmp_path_factory, capsys):
    elsewhere = tmp_path_factory.mktemp("other place") / "m#.py"
    elsewhere.write_text(MODEL)
    code, doc = run_sarif(capsys, str(elsewhere), str(tree / "weird dir" / "my model#1.py"))
    validate(doc)
    uris = [r["locations"][0]["physicalLocation"]["artifactLocation"] for r in doc["runs"][0]["results"]]
    assert {"uri": elsewhere.as_uri()} in uris and elsewhere.as_uri().endswith("/m%23.py")
    assert {"uri": "weird%20dir/my%20model%231.py", "uriBaseId": "SRCROOT"} in uris


def test_every_rule_has_help_text_and_a_help_uri(tree, capsys):
    code, doc = run_sarif(capsys, "--select", "ALL", "weird dir")
    validate(doc)
    rules = doc["runs"][0]["tool"]["driver"]["rules"]
    assert len(rules) >= 10
    for rule in rules:
        assert rule["help"]["text"].strip() and rule["help"]["markdown"].strip()
        assert rule["helpUri"].startswith("https://")
        assert rule["shortDescription"]["text"]
    indexes = {r["ruleId"]: r["ruleIndex"] for r in doc["runs"][0]["results"]}
    assert all(rules[i]["id"] == rule for rule, i in indexes.items())


def test_a_failed_file_makes_the_run_incomplete_with_a_notification(tree, capsys):
    code, doc = run_sarif(capsys, ".")
    assert code == 2
    validate(doc)
    (invocation,) = doc["runs"][0]["invocations"]
    assert invocation["executionSuccessful"] is False
    (note,) = invocation["toolExecutionNotifications"]
    assert note["level"] == "error" and "syntax error" in note["message"]["text"]
    assert note["locations"][0]["physicalLocation"]["artifactLocation"] == {"uri": "broken.py", "uriBaseId": "SRCROOT"}
    # the good files are still reported
    assert len(doc["runs"][0]["results"]) == 2


def test_notebook_findings_validate_and_name_their_cell(tree, capsys):
    nb = {"cells": [{"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [],
                     "source": MODEL.splitlines(keepends=True)}],
          "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    (tree / "nb #2.ipynb").write_text(json.dumps(nb, indent=1) + "\n")
    code, doc = run_sarif(capsys, "nb #2.ipynb")
    validate(doc)
    (result,) = doc["runs"][0]["results"]
    assert result["properties"]["cell"] == 1 and result["message"]["text"].startswith("cell 1: ")
    assert result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "nb%20%232.ipynb"
