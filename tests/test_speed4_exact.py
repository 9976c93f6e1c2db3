"""speed4: exact savings in the matcher's search, each compared with the algorithm it replaces
(the saving turned off) on fixtures of ours and near-misses, with the work each one skips
counted (so each test fails on the engine before it)."""
import sys

import pytest

from adopter.dsl import parse_pattern
from adopter.engine import analyze
from adopter.match import Matcher
from adopter.ruleset import load_rules

# Three projections of one input, spelt through the forms the per-start test of the next steps'
# inputs must follow: the input itself, a pure alias of a parameter (``h = x``), a copy made
# after the first projection of a value the function assigned (an alias the search records
# then), the same temporary computed again for each projection (the flow's repeats), an input
# handed by keyword.  Near-misses: three different inputs, two of one input and a third of
# another, one input read only before the first projection.
SOURCE = '''
import torch
from torch import nn
import torch.nn.functional as F


class Plain(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.q = nn.Linear(d, d)
        self.k = nn.Linear(d, d)
        self.v = nn.Linear(d, d)

    def forward(self, x):
        q = self.q(x)
        k = self.k(x)
        v = self.v(x)
        return F.softmax(q @ k.transpose(-1, -2), dim=-1) @ v


class PureAlias(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.q = nn.Linear(d, d)
        self.k = nn.Linear(d, d)
        self.v = nn.Linear(d, d)

    def forward(self, x):
        h = x
        q = self.q(x)
        k = self.k(h)
        v = self.v(h)
        return F.softmax(q @ k.transpose(-1, -2), dim=-1) @ v


class LateCopy(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.norm = nn.LayerNorm(d)
        self.q = nn.Linear(d, d)
        self.k = nn.Linear(d, d)
        self.v = nn.Linear(d, d)

    def forward(self, x):
        x = self.norm(x)
        q = self.q(x)
        y = x
        k = self.k(y)
        v = self.v(y)
        return F.softmax(q @ k.transpose(-1, -2), dim=-1) @ v


class Repeated(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.q = nn.Linear(d, d)
        self.k = nn.Linear(d, d)
        self.v = nn.Linear(d, d)

    def forward(self, x):
        q = self.q(x.transpose(1, 2))
        k = self.k(x.transpose(1, 2))
        v = self.v(x.transpose(1, 2))
        return F.softmax(q @ k.transpose(-1, -2), dim=-1) @ v


class Functional(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.wq = nn.Parameter(torch.randn(d, d))
        self.wk = nn.Parameter(torch.randn(d, d))
        self.wv = nn.Parameter(torch.randn(d, d))

    def forward(self, x):
        q = F.linear(x, self.wq)
        k = F.linear(input=x, weight=self.wk)
        v = F.linear(x, self.wv)
        return F.softmax(q @ k.transpose(-1, -2), dim=-1) @ v


class ThreeInputs(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.q = nn.Linear(d, d)
        self.k = nn.Linear(d, d)
        self.v = nn.Linear(d, d)
        self.o = nn.Linear(d, d)

    def forward(self, x, y, z):
        q = self.q(x)
        k = self.k(y)
        v = self.v(z)
        return self.o(F.softmax(q @ k.transpose(-1, -2), dim=-1) @ v)


class TwoOfOne(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.q = nn.Linear(d, d)
        self.k = nn.Linear(d, d)
        self.v = nn.Linear(d, d)

    def forward(self, x, y):
        q = self.q(x)
        k = self.k(x)
        v = self.v(y)
        return F.softmax(q @ k.transpose(-1, -2), dim=-1) @ v


class ReadBefore(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.a = nn.Linear(d, d)
        self.b = nn.Linear(d, d)
        self.c = nn.Linear(d, d)
        self.d = nn.Linear(d, d)

    def forward(self, x):
        h = self.a(x)
        g = self.b(x)
        return self.d(self.c(h + g))
'''


def _everything(text, rules):
    """Every finding, and every match's rule, class, flow, node ids, bindings and roles."""
    result = analyze(text, "m.py", rules)
    matches = [(rule.id, m.class_name, m.flow, tuple(n.id for n in m.nodes), repr(m.env), m.roles)
               for rule, m in result.matches]
    return [f.as_dict() for f in result.findings], matches


@pytest.fixture(scope="module")
def rules():
    return load_rules()


def _counting(monkeypatch):
    """Count _bind_node calls of ADP009's searches (the work a start costs past its first step)."""
    calls = {"n": 0}
    bind = Matcher._bind_node

    def counted(self, pnode, index, node, state):
        if self.rule_id == "ADP009" and index:
            calls["n"] += 1
        return bind(self, pnode, index, node, state)

    monkeypatch.setattr(Matcher, "_bind_node", counted)
    return calls


def test_qkv_forms_found(rules):
    findings, _ = _everything(SOURCE, rules)
    found = {f["class"] for f in findings if f["rule"] == "ADP009"}
    assert {"Plain", "PureAlias", "Repeated", "Functional"} <= found
    # (LateCopy: same_source rejects a copy's other spelling)
    assert not found & {"LateCopy", "ThreeInputs", "TwoOfOne", "ReadBefore"}


def test_next_reads_test_same_matches_as_without_it(rules, monkeypatch):
    """The per-start test is a necessary condition of a match: with it turned off (every start
    searched, as before), every finding and match is the same."""
    new = _everything(SOURCE, rules)
    monkeypatch.setattr(Matcher, "_may_read", lambda self, *args: True)
    old = _everything(SOURCE, rules)
    assert new == old


@pytest.mark.parametrize("name", ["ThreeInputs", "TwoOfOne", "ReadBefore"])
def test_near_misses_search_less(rules, monkeypatch, name):
    """A start whose input no two later layers read (one by one) is not searched: fewer binding
    attempts than with the test turned off, the same (no) finding."""
    text = _class(name)
    calls = _counting(monkeypatch)
    # (speed6's _reach, a later test of the same kind per state, leaves these starts out too:
    # turned off, what is counted is _may_read's own saving)
    monkeypatch.setattr(Matcher, "_reach", lambda self, flow, *args: len(flow.nodes))
    new = _everything(text, rules)
    with_test = calls["n"]
    monkeypatch.setattr(Matcher, "_may_read", lambda self, *args: True)
    calls["n"] = 0
    old = _everything(text, rules)
    assert new == old
    assert with_test < calls["n"]


def _class(name):
    return SOURCE.split("\nclass ")[0] + "\nclass " + next(
        part for part in SOURCE.split("\nclass ")[1:] if part.startswith(name + "("))


@pytest.mark.parametrize("name", ["Plain", "PureAlias", "LateCopy", "Repeated", "ThreeInputs"])
def test_start_at_the_first_projection(rules, monkeypatch, name):
    """The start at the first projection passes the test where the later two read its input
    under another name (a pure alias, a copy the search records when it passes ``y = x``, a
    temporary computed again: LateCopy's is searched, though same_source then rejects the
    match), and fails it where they read other values."""
    answers = []
    may_read = Matcher._may_read

    def recorded(self, flow, first, state, pos, allowed, options_at):
        answer = may_read(self, flow, first, state, pos, allowed, options_at)
        if self.rule_id == "ADP009" and self.alternative == 0:
            answers.append((state.values.get("lq"), answer))
        return answer

    monkeypatch.setattr(Matcher, "_may_read", recorded)
    findings, _ = _everything(_class(name), rules)
    assert (("l", "self.q"), name != "ThreeInputs") in answers
    assert (("l", "self.v"), False) in answers  # (no layer after the last projection)
    found = [f["class"] for f in findings if f["rule"] == "ADP009"]
    assert found == ([] if name in ("ThreeInputs", "LateCopy") else [name])


def test_required_reads_of_the_qkv_pattern():
    """The steps the test reads: ADP009's two projections after the first, each reading $x;
    none for a chain whose next step is optional."""
    qkv = Matcher("T", parse_pattern("$q = $lq($x)\n$k = $lk($x)\n$v = $lv($x)\n"))
    assert qkv._next_reads[0] == ((1, ("x",)), (2, ("x",)))
    chain = Matcher("T", parse_pattern("$a = torch.matmul($q, $k)\n? $b = $a + $m\n$c = torch.softmax($b, dim=-1)\n"))
    assert chain._next_reads[0] == ()


# --- _mentions: the leading-slice test searched from the bracket -------------------------

LEAD_SLICE_CASES = [
    "x[:, 1:]", "x[:-1]", "h = x[1:]", "[1:]", " [1:]", "([:, 1:])", "f(a)[1:]", "é[1:]", "x٣[1:]",
    "(a)[1:] + b[ : -1 ]", "[:, 1:] and y[:, :-1]", "x[1:2, 3:4, 5:6]", "x[..., 1:]", "x[i]", "x[:, 0]",
    "a\n[1:]", "_[::]", "x[1:][2:]", "[[1:]]", "x[ -n : ]", "d[k:v, j:w]", "", "[", "x[", "x[:",
]


@pytest.mark.parametrize("text", LEAD_SLICE_CASES)
def test_lead_slice_as_the_whole_pattern(text):
    """_lead_slice answers what ``_LEAD_SLICE.search`` answers: a match after a word character
    (a name, a call's closing bracket is none), also where an earlier bracket has none before it,
    and for word characters outside ASCII."""
    from adopter.structure import model

    assert model._lead_slice(text) == (model._LEAD_SLICE.search(text) is not None)


def test_lead_slice_reads_the_pseudo_word():
    """The LEAD_SLICE pseudo-word still comes from a function whose only leading slice follows
    another bracket that has no word before it; none from a function with no slice."""
    import ast

    from adopter.structure.model import LEAD_SLICE, _mentions

    text = "def f(x, y):\n    z = (x)[1:]\n    return y[:, 1:]\n\n\ndef g(x):\n    return (x)[1:] + x[0]\n"
    tree = ast.parse(text)
    lines = text.splitlines()
    assert LEAD_SLICE in _mentions(tree.body[0], lines)
    assert LEAD_SLICE not in _mentions(tree.body[1], lines)


# --- _search: a run of absent optional steps applied to one copy --------------------------

CHAIN = """
$s0 = torch.matmul($q, $kt)
? $b0 = $s0 + $bias0
? $s1 = $b0 / $div
? $s2 = $s1 * $mul
? $f1 = torch.Tensor.masked_fill($s2, $where, $fill)
$p0 = torch.nn.functional.softmax($f1, dim=-1)
$c = torch.matmul($p0, $v)
"""


def test_absent_run_in_one_copy_is_the_chain_of_copies():
    """Steps 1..4 absent: one copy with each step applied in turn holds what a copy per step
    (the old chain) holds, at every length of the run."""
    from adopter.match import _absent_into, _State

    pattern = parse_pattern(CHAIN).nodes
    start = _State()
    start.values.update({"q": ("k", "q"), "kt": ("k", "kt"), "s0": ("k", "s"), "%0": ("k", "s")})
    start.env.update({"q": "Q", "kt": "K", "s0": "S", "%0": "S"})
    for length in range(1, 5):
        chained = start
        for i in range(1, 1 + length):
            chained = Matcher._absent(pattern[i], i, chained)
        one = Matcher._absent(pattern[1], 1, start)
        for i in range(2, 1 + length):
            _absent_into(pattern[i], i, one)
        assert (one.values, one.env, one.aliases, one.guards, one.produced) == \
            (chained.values, chained.env, chained.aliases, chained.guards, chained.produced)
        assert one.values["f1" if length == 4 else f"%{length}"] == ("k", "s")
    assert start.values == {"q": ("k", "q"), "kt": ("k", "kt"), "s0": ("k", "s"), "%0": ("k", "s")}


def test_softmax_after_absent_steps_copies_once(rules, monkeypatch):
    """Attention with no bias, scale or mask: the softmax binds with the steps before it absent
    in one copy per state (the old chain made one per absent step), the same finding."""
    text = (
        "import torch\nimport torch.nn.functional as F\nfrom torch import nn\n\n\n"
        "class A(nn.Module):\n    def forward(self, q, k, v):\n"
        "        s = torch.matmul(q, k.transpose(-1, -2))\n        p = F.softmax(s, dim=-1)\n"
        "        return torch.matmul(p, v)\n")
    from adopter import match

    made = []
    real = Matcher._absent
    monkeypatch.setattr(Matcher, "_absent", staticmethod(lambda p, i, s: made.append(i) or real(p, i, s)))
    findings, _ = _everything(text, rules)
    assert [f["rule"] for f in findings if f["rule"] == "ADP010"] == ["ADP010"]
    # ADP010's first alternative has ten optional steps between the product and the softmax:
    # at most one _absent per state and step asked for, not one per absent step
    assert made and len(made) < 10
    assert match._absent_into is not None


# --- _bind_node and the search memo: the same answers, fewer calls -------------------------


def test_bind_node_asks_commutes_once_and_keywords_only_when_written(rules, monkeypatch):
    """Per _bind_node call at most one commutes() (it was asked up to three times) and no
    keyword test for a node written without keywords; the findings the same as with the calls
    counted through the real functions."""
    from adopter import match

    counts = {"bind": 0, "commutes": 0, "fit": 0, "nokw": 0}
    real_bind, real_commutes, real_fit = Matcher._bind_node, match.commutes, match._keywords_fit

    def bind(self, pnode, index, node, state):
        counts["bind"] += 1
        counts["nokw"] += not match.node_view(pnode, node)[1]
        return real_bind(self, pnode, index, node, state)

    def commutes(pnode, commutative):
        counts["commutes"] += sys._getframe(1).f_code.co_name == "_bind_node"  # (_static_ok asks too)
        return real_commutes(pnode, commutative)

    def fit(pnode, keys):
        counts["fit"] += sys._getframe(1).f_code.co_name == "_bind_node"
        return real_fit(pnode, keys)

    monkeypatch.setattr(Matcher, "_bind_node", bind)
    monkeypatch.setattr(match, "commutes", commutes)
    monkeypatch.setattr(match, "_keywords_fit", fit)
    findings, _ = _everything(SOURCE, rules)
    assert {"Plain", "PureAlias", "Repeated", "Functional"} <= {f["class"] for f in findings if f["rule"] == "ADP009"}
    assert counts["bind"] and counts["nokw"]
    assert counts["commutes"] <= counts["bind"]
    assert counts["fit"] <= counts["bind"] - counts["nokw"]


def test_memo_of_a_state_without_aliases_or_guards():
    """A state with no aliases and no guards keys the memo with the one empty frozenset (equal
    to a new one, so states with and without it meet in the search's seen set)."""
    from adopter.match import _NO_ITEMS, _State

    state = _State()
    state.values["x"] = ("k", "x")
    memo = state.memo()
    assert memo[1] is _NO_ITEMS and memo[2] is _NO_ITEMS
    # (the fourth entry: the ids of the nodes matched, none here -- mend54)
    assert memo == (frozenset({("x", ("k", "x"))}), frozenset(), frozenset(), ())
    other = state.copy()
    other.guards["flag"] = True
    assert other.memo()[2] == frozenset({("flag", True)}) and other.memo() != memo
