"""speed2: the search's written-out gap test covers nodes whose assignments touch neither a bound
value nor an alias, also when the state holds aliases (the pure aliases a ``same_source`` rule,
ADP009, starts every search with): such a node is passed over without a call of
``Matcher._skip``, which returns the state unchanged for it.  Counted here (main's engine called
``_skip`` at every such node of an ADP009 search), with the findings compared; near-misses: a
node rebinding a bound value still goes through ``_skip``, and its finding is unchanged."""
from adopter import match as match_mod
from adopter.engine import analyze
from adopter.ruleset import load_rules

QKV = '''
import torch
from torch import nn


class Attention(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.q = nn.Linear(d, d)
        self.k = nn.Linear(d, d)
        self.v = nn.Linear(d, d)

    def forward(self, x, scale):
        h = x
        q = self.q(h)
        t = scale * 2
        k = self.k(h)
        u = t + 1
        v = self.v(h)
        s = (q @ k.transpose(-2, -1)) * u
        return s.softmax(dim=-1) @ v
'''

# the same, with the bound query rebound between the projections (``q = q * t``)
REBOUND = QKV.replace("        u = t + 1\n", "        q = q * t\n        u = t + 1\n")


def _run(text: str, monkeypatch):
    rules = [r for r in load_rules() if r.id == "ADP009"]
    skipped = []
    original = match_mod.Matcher._skip

    def counting(self, node, state, index=0):
        skipped.append(node)
        return original(self, node, state, index)

    monkeypatch.setattr(match_mod.Matcher, "_skip", counting)
    findings = analyze(text, "qkv.py", rules).findings
    return findings, skipped


def test_gap_without_bound_or_alias_skips_no_call(monkeypatch):
    findings, skipped = _run(QKV, monkeypatch)
    assert [(f.rule, f.line) for f in findings] == [("ADP009", 15)]
    # the pure alias h -> x is in every state; `t = ...` and `u = ...` assign neither a bound
    # value nor an alias: passed over without _skip (main called it for both)
    assert not [n for n in skipped if n.defs & {"t", "u"} and n.kind not in ("exit", "copy")]


def test_rebinding_a_bound_value_still_takes_skip(monkeypatch):
    findings, skipped = _run(REBOUND, monkeypatch)
    # `q = q * t` rebinds the bound query: _skip decides (the value is stale, not needed later)
    assert any("q" in n.defs and n.op == "*" for n in skipped)
    assert [(f.rule, f.line) for f in findings] == [("ADP009", 15)]
