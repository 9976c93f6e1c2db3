"""speed (session 26): compiled matchers are cached per rule object, and a rule's search-only
state is made on first use.

- engine.matchers_for: a rule whose patterns differ gets its own matchers, even with the id
  and the path of a rule compiled before (a rule file edited while a process runs, a second
  rule set loaded beside the first); the entry of a rule that is gone goes with it.
- ruleset.load_rule: with the parse cache on, loading the same file again gives the same rule
  object (so its matchers are compiled once per process); a changed file a new one.
- match.Matcher: the state only the search reads is made on first use; findings are the same
  as with it made up front.
"""
import gc
import textwrap

import pytest

from adopter import engine
from adopter.dsl import parse_pattern
from adopter.engine import analyze, matchers_for
from adopter.match import Matcher
from adopter.ruleset import load_rule, load_rules
from adopter.records import replace

HEAD = 'id = "USR001"\nname = "r"\nsummary = "s"\n[kernel]\npackage = "p"\nimport = "p.k"\n'

SOURCE = textwrap.dedent('''
    import torch
    from torch import nn


    class Block(nn.Module):
        def forward(self, x):
            a = torch.relu(x)
            return torch.sigmoid(a)
''')


def _rule_text(op: str) -> str:
    return HEAD + f'[forward]\nsource = "$y = torch.{op}($x)"\ntarget = "$y = p.k($x)"\n'


def _lines(rules) -> list[tuple[str, int]]:
    return [(f.rule, f.line) for f in analyze(SOURCE, "m.py", rules).findings]


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("ADOPTER_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("ADOPTER_NO_CACHE", raising=False)
    return tmp_path / "cache"


def test_an_edited_rule_file_gets_its_own_matchers(tmp_path, cache_dir):
    """Same id, same path, another pattern: the second rule set finds what its pattern says,
    and the first one still finds what its own says (no leak either way)."""
    path = tmp_path / "USR001.toml"
    path.write_text(_rule_text("relu"))
    relu = load_rule(path)
    assert _lines([relu]) == [("USR001", 8)]
    path.write_text(_rule_text("sigmoid"))
    sigmoid = load_rule(path)
    assert (sigmoid.id, sigmoid.path) == (relu.id, relu.path)
    assert matchers_for(sigmoid) is not matchers_for(relu)
    assert _lines([sigmoid]) == [("USR001", 9)]
    assert _lines([relu]) == [("USR001", 8)]  # the first set, used again in the same process
    assert [m.forward for m in matchers_for(relu)] != [m.forward for m in matchers_for(sigmoid)]


def test_a_replaced_rule_gets_its_own_matchers(cache_dir):
    """A rule made from another with other patterns (as tests and tools do with ``replace``):
    same id, same path, compiled from its own patterns; the bundled rule keeps its own."""
    softmax = next(r for r in load_rules() if r.id == "ADP004")
    sigmoid = parse_pattern("$y = torch.sigmoid($x)")
    other = replace(softmax, forward=sigmoid, forwards=(sigmoid,), variants=())
    source = "import torch\n\ndef f(x):\n    y = torch.sigmoid(x)\n    return torch.softmax(y, dim=-1)\n"
    assert [f.line for f in analyze(source, "m.py", [softmax]).findings] == [5]
    assert [f.line for f in analyze(source, "m.py", [other]).findings] == [4]
    assert [f.line for f in analyze(source, "m.py", [softmax]).findings] == [5]
    # near-miss: a copy with the same patterns finds the same
    same = replace(softmax, summary="another summary")
    assert [f.line for f in analyze(source, "m.py", [same]).findings] == [5]


def test_the_same_file_loaded_again_is_the_same_rule(tmp_path, cache_dir):
    path = tmp_path / "USR001.toml"
    path.write_text(_rule_text("relu"))
    first = load_rule(path)
    assert load_rule(path) is first
    assert matchers_for(load_rule(path)) is matchers_for(first)
    # near-miss: the same text at another path is another rule (its findings name its path)
    other = tmp_path / "sub" / "USR001.toml"
    other.parent.mkdir()
    other.write_text(_rule_text("relu"))
    assert load_rule(other) is not first and load_rule(other).path == str(other)


def test_without_the_cache_every_load_parses_and_compiles_again(tmp_path, monkeypatch):
    monkeypatch.setenv("ADOPTER_NO_CACHE", "1")
    path = tmp_path / "USR001.toml"
    path.write_text(_rule_text("relu"))
    a, b = load_rule(path), load_rule(path)
    assert a is not b and a == b
    assert matchers_for(a) is not matchers_for(b)
    assert _lines([a]) == _lines([b]) == [("USR001", 8)]


def test_a_rule_that_is_gone_takes_its_entry_with_it(tmp_path, monkeypatch):
    monkeypatch.setenv("ADOPTER_NO_CACHE", "1")
    path = tmp_path / "USR001.toml"
    path.write_text(_rule_text("relu"))
    rule = load_rule(path)
    matchers_for(rule)
    key = id(rule)
    assert key in engine._MATCHERS
    del rule
    gc.collect()
    assert key not in engine._MATCHERS


def test_search_state_is_made_on_first_use_and_changes_no_finding(monkeypatch):
    monkeypatch.setattr(engine, "_MATCHERS", {})  # fresh matchers (none searched yet)
    source = textwrap.dedent('''
        import torch
        import torch.nn.functional as F
        from torch import nn


        class Attention(nn.Module):
            def __init__(self, d):
                super().__init__()
                self.qkv = nn.Linear(d, 3 * d)
                self.norm = nn.LayerNorm(d)
                self.drop = nn.Dropout(0.1)

            def forward(self, x, h):
                q, k, v = self.qkv(x).chunk(3, dim=-1)
                scores = q @ k.transpose(-2, -1) / q.size(-1) ** 0.5
                out = F.softmax(scores, dim=-1) @ v
                return self.norm(self.drop(out) + h)


        class Plain(nn.Module):
            def forward(self, x):
                return x.float()
    ''')
    rules = load_rules()
    lazy = [m for r in rules for m in matchers_for(r)]
    assert not any(name in m.__dict__ for m in lazy for name in Matcher._SEARCH_STATE)
    found = analyze(source, "m.py", rules).findings
    assert {f.rule for f in found} >= {"ADP004", "ADP005", "ADP010"}
    searched = [m for m in lazy if "needed_after" in m.__dict__]
    assert searched and len(searched) < len(lazy)  # made for the matchers that searched, only
    assert all(all(name in m.__dict__ for name in Matcher._SEARCH_STATE) for m in searched)

    engine._MATCHERS.clear()
    eager = [m for r in rules for m in matchers_for(r)]
    assert not set(map(id, eager)) & set(map(id, lazy))
    for m in eager:
        m._make_search_state()
    assert analyze(source, "m.py", rules).findings == found
    with pytest.raises(AttributeError):
        lazy[0].no_such_attribute  # noqa: B018 (only the search's own names are made)
