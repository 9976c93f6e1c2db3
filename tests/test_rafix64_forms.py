"""Research attention found but not fixed (session 40, rafix64).  The fixtures are ours.

- The research attention benchmark counted a site fixed when its line lay inside any applied
  patch's span: a helper's site inside another helper's patch (two helpers a setting picks, one
  fused at the caller's lines, the other declined) counted as fixed though its mode still runs
  the original code.  Sites are now paired with findings one to one, as the dev corpus's scorer
  pairs them, and a site is fixed only when its own finding's patch was applied
  (``research_attention.pair_sites``, placed through ``FixResult.origins``).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from corpus_forms import found, line_of, rules

from adopter.synth import fix_text
from adopter.synth.core import _origins

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "research_attention.py"
_spec = importlib.util.spec_from_file_location("research_attention_rafix64", SCRIPT)
research = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = research
_spec.loader.exec_module(research)
score = research.score

# two helpers a setting picks: the first fuses at the caller's lines; the second's `if` on the
# setting does more than scale (it stores the scores), so it is found and declined
CHOOSER = """\
import torch
from torch import nn


class Chooser(nn.Module):
    def __init__(self, dim=8, kind="dot", sharpen=True):
        super().__init__()
        assert kind in ("dot", "tempered")
        self.kind = kind
        self.sharpen = sharpen
        self.query = nn.Linear(dim, dim)
        self.key = nn.Linear(dim, dim)
        self.value = nn.Linear(dim, dim)

    def dot(self, a, b):
        s = torch.matmul(a, b)
        s = s.softmax(dim=-1)
        return s

    def tempered(self, a, b):
        s = torch.matmul(a, b)
        if self.sharpen:
            s /= a.shape[-1] ** 0.5
            self.seen = s.detach()
        s = s.softmax(dim=-1)
        return s

    def forward(self, x):
        a = self.query(x)
        b = self.key(x).permute(0, 2, 1)
        c = self.value(x)
        chosen = getattr(self, self.kind)
        p = chosen(a, b)
        y = torch.matmul(p, c)
        return y
"""


def _sites(source: str) -> list:
    """A "yes" label at each softmax line (ADP010's anchor)."""
    lines = [n for n, text in enumerate(source.splitlines(), 1) if ".softmax(" in text]
    return [score.Label("fixture", "model.py", line, "ADP010", "yes", "") for line in lines]


def test_a_site_inside_another_sites_patch_is_not_counted_fixed():
    findings = found(CHOOSER, "ADP010")
    assert len(findings) == 2
    result = fix_text(CHOOSER, "model.py", rules("ADP010"))
    assert len(result.applied) == 1 and len(result.skipped) == 1
    dot, tempered = _sites(CHOOSER)
    # the applied patch spans both sites (what the old count took as two fixes)
    assert research._covers(result.applied, dot.line) and research._covers(result.applied, tempered.line)
    pairs, fixed = research.pair_sites([dot, tempered], findings, result)
    assert set(pairs) == {id(dot), id(tempered)}  # both found, each with its own finding
    assert pairs[id(dot)].line == line_of(CHOOSER, "    def dot") + 1
    assert pairs[id(tempered)].line == line_of(CHOOSER, "    def tempered") + 1
    assert fixed == {id(dot)}


def test_a_site_with_no_finding_of_its_own_is_not_found():
    # one finding spanning two labelled sites pairs with one of them only
    findings = found(CHOOSER, "ADP010")
    dot, tempered = _sites(CHOOSER)
    pairs, _ = research.pair_sites([dot, tempered], findings[:1], fix_text(CHOOSER, "model.py", rules("ADP010")))
    assert set(pairs) == {id(dot)}


def test_origins_place_a_later_rounds_findings_in_the_input_text():
    first = "a\nb\nc\nd\ne\n"
    second = "a\nx\ny\nc\nd\ne\n"  # round 1 rewrote line 2 into two lines
    history = [(first, [], []), (second, [], [])]

    def at(line):
        return type("F", (), {"line": line})()

    # round 0's finding as it is; round 1's at line 5 ("d") was line 4; at line 2 ("x", rewritten): none
    assert _origins(history, [at(2), at(5), at(2)], [0, 1, 1]) == [2, 4, None]


def test_fix_text_gives_an_origin_for_each_applied_finding():
    result = fix_text(CHOOSER, "model.py", rules("ADP010"))
    assert result.origins == [f.line for f in result.applied]
