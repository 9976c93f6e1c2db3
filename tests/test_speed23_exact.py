"""speed23: exact speed-ups, each compared with the algorithm it replaces (written out here as
the old code was) on fixtures of ours and near-misses, and, where the change skips work, that
work counted (so the test fails on the old code).

1. ``LayerTyper.calls_attr``: the search for ``self.<attr>`` passed to a file function that
   calls one of its parameters first asks, once per file, which functions call a parameter
   (none in most files: no per-class or per-attribute regex then), and whether one of them is
   written before a ``(`` in the class's text.
2. ``model._mentions``: the word tests on the set of identifiers, not the list of every
   occurrence; the stacked-halves pattern tried only where ``view(``/``reshape(`` is written.
3. ``bindings._passed_in``: a forward parameter called, found with ``str.find`` and the
   character before it (no pattern compiled per name).
4. ``module_structure``: the text asked for ``ModuleList`` once, not once per class.
5. ``Matcher.match_module``: no sort or choice among matches when there are none.
6. ``Matcher._candidates``: the classes passing a first word group listed once per file and
   scope; ``ClassStructure._bound_by_name``: nothing to look up for a class binding nothing.
7. ``ClassStructure.words``: the helpers a function reaches found from the functions' side.
"""
import ast
import re
from pathlib import Path

import pytest

from adopter import match as match_mod
from adopter.structure import bindings as bindings_mod
from adopter.structure import layers as layers_mod
from adopter.structure import model as model_mod
from adopter.structure.layers import LayerTyper
from adopter.structure.names import collect_names


# -- 1. LayerTyper.calls_attr -----------------------------------------------------------------

def _old_calls_attr(typer, cls, attr):
    """LayerTyper.calls_attr as it was on main ed86185 (uncached: the same answers)."""
    if typer.lines is None:
        return True
    text = "\n".join(typer.lines[cls.lineno - 1:cls.end_lineno])
    if f"self.{attr}(" in text:
        return True
    if f"self.{attr}" not in text:
        return False
    if not any(isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef)) for f in typer.names.functions.values()):
        return False
    if re.fullmatch(r"\w+", attr):
        passed = frozenset(m.group(1) for m in re.finditer(r"\bself\.(\w+)\s*[,)]", text))
        if attr not in passed:
            return False
    for found in re.finditer(rf"\b(\w+)\([^()]*[(,]?\s*\bself\.{re.escape(attr)}\s*[,)]", text):
        func = typer.names.functions.get(found.group(1))
        if isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef)):
            body = "\n".join(typer.lines[func.body[0].lineno - 1:func.end_lineno])
            if any(re.search(rf"\b{a.arg}\(", body) for a in func.args.args if f"{a.arg}(" in body):
                return True
    return False


HEADER = '''
import torch
from torch import nn
'''

# a function calling its parameter (``act(...)``), one that does not, the class passing
# ``self.<attr>`` to each, to an unknown callee, nested inside another call, through a method
CALLING = HEADER + '''

def kernel(w, act, x):
    return act(x @ w)


async def apply_async(fn, x):
    return fn(x)


def scale(x, s):
    return x * s


class Net(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.fc = nn.Linear(d, d)
        self.act = nn.GELU()
        self.gate = nn.SiLU()
        self.norm = nn.LayerNorm(d)
        self.gain = 2.0
        self.inner = nn.ReLU()
        self.other = nn.Tanh()
        self.meth = nn.Sigmoid()

    def kernel(self, f):
        return f

    def forward(self, x):
        h = kernel(self.fc.weight, self.act, x)
        g = apply_async(self.gate, h)
        y = outer(kernel(self.inner), x)
        z = unknown(self.other, y) + self.kernel(self.meth)
        return scale(self.norm.weight, self.gain) + h + g + z
'''

# the same class, no file function calls a parameter (``kernel`` multiplies, ``act`` is a word
# of the body but not called)
NOT_CALLING = CALLING.replace("return act(x @ w)", "return act * (x @ w)").replace(
    "return fn(x)", "return fn + x")

# functions that call a parameter, none of them written before a ``(`` in the class
NOT_CALLED_HERE = HEADER + '''

def helper(fn, x):
    return fn(x)


class Net(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.fc = nn.Linear(d, d)
        self.act = nn.GELU()
        self.hook = helper

    def forward(self, x):
        y = other(self.act, x)
        return self.fc(y), self.hook
'''

# no functions at all
NO_FUNCTIONS = HEADER + '''

class Net(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.act = nn.GELU()

    def forward(self, x):
        return other(self.act, x)
'''

ATTRS = ["fc", "act", "gate", "norm", "gain", "inner", "other", "meth", "hook", "missing", "fc.weight", "act"]


def _typer(source):
    tree = ast.parse(source)
    names = collect_names(tree, None)
    typer = LayerTyper(names, tree)
    typer.lines = source.split("\n")
    return typer, names.classes["Net"]


@pytest.mark.parametrize("source", [CALLING, NOT_CALLING, NOT_CALLED_HERE, NO_FUNCTIONS])
def test_calls_attr_agrees_with_the_old_search(source):
    typer, cls = _typer(source)
    got = [typer.calls_attr(cls, a) for a in ATTRS]
    assert got == [_old_calls_attr(typer, cls, a) for a in ATTRS]
    assert [typer.calls_attr(cls, a) for a in ATTRS] == got  # (cached per file and class: the same)


def test_calls_attr_answers_on_the_calling_fixture():
    typer, cls = _typer(CALLING)
    got = {a: typer.calls_attr(cls, a) for a in ATTRS}
    # passed to a function calling it (also an async one), a method named like one called
    assert got["act"] and got["gate"] and got["meth"]
    # passed to one that does not call it, to an unknown callee, inside a call the search's
    # match starts at the outer callee of (the old search's answer, kept)
    assert not got["norm"] and not got["gain"] and not got["other"] and not got["inner"]
    assert got["fc"] is False and got["missing"] is False


class _CountingRe:
    """layers_mod.re with its finditer counted (the per-class and per-attribute searches)."""

    def __init__(self):
        self.finditer_calls = 0

    def __getattr__(self, name):
        return getattr(re, name)

    def finditer(self, *args, **kwargs):
        self.finditer_calls += 1
        return re.finditer(*args, **kwargs)


@pytest.mark.parametrize("source", [NOT_CALLING, NOT_CALLED_HERE])
def test_calls_attr_skips_the_searches_without_a_calling_function_in_the_class(source, monkeypatch):
    typer, cls = _typer(source)
    answers = [_old_calls_attr(typer, cls, a) for a in ATTRS]
    counting = _CountingRe()
    monkeypatch.setattr(layers_mod, "re", counting)
    monkeypatch.setattr(layers_mod, "_SELF_ATTR_PASSED", _CountedPattern(layers_mod._SELF_ATTR_PASSED))
    _CountedPattern.calls = 0
    assert [typer.calls_attr(cls, a) for a in ATTRS] == answers
    # old code: the class's passed-attribute scan and a search per attribute passed on
    assert counting.finditer_calls == 0
    assert _CountedPattern.calls == (1 if source is NOT_CALLED_HERE else 0)


class _CountedPattern:
    calls = 0

    def __init__(self, pattern):
        self.pattern = pattern

    def finditer(self, *args):
        type(self).calls += 1
        return self.pattern.finditer(*args)


# -- 2. model._mentions: the words' tests on their set, not the list of every occurrence --------



_OLD_TWICE = re.compile(r"(?<!\*)\*\s*2(?![\w.])|(?<![\w.])2\s*\*(?!\*)")
_OLD_ELLIPSIS_SUBSCRIPT = re.compile(r"\[\s*\.\.\.\s*,([^\[\]\n]*)\]")


def _old_twice_slice(code: str) -> bool:
    """A slice after an Ellipsis at a bound ``<x> * 2`` / ``2 * <x>``, written here (not model's
    helper) so the reference cannot follow the code under test."""
    return any(":" in hit.group(1) and _OLD_TWICE.search(hit.group(1)) for hit in _OLD_ELLIPSIS_SUBSCRIPT.finditer(code))


def _old_mentions_of_lines(func, lines):
    """model._mentions as it was on main ed86185, for a function with lines, with the LEAD_SLICE
    pseudo-word added since (research36) and NEG_PAIR also for an assignment of a negated name
    (research54)."""
    code = model_mod._NOISE.sub(" ", "\n".join(lines[func.lineno - 1:func.end_lineno]))
    words = model_mod._WORD.findall(code)
    seq_arg = model_mod._SEQ_ARG.search(code)
    if seq_arg and (model_mod._NEG_PAIR.search(code, seq_arg.start()) or model_mod._NEG_ASSIGN.search(code)):
        words.append(model_mod.NEG_PAIR)
    # (or ``x[..., d : d * 2]``: a rotary prefix's end, misses49's partial_rope)
    if seq_arg and (("//" in code and "..." in code) or not model_mod._HALVES.isdisjoint(words)
                    or ("..." in code and _old_twice_slice(code))):
        words.append(model_mod.HALF_PAIR)
    if model_mod._LEAD_SLICE.search(code):
        words.append(model_mod.LEAD_SLICE)  # research36's pseudo-word for canon.lead2 (x[:, 1:], x[:-1])
    if "split" in words or (("view" in words or "reshape" in words) and model_mod._STACKED.search(code)):
        words.append("chunk")
    return frozenset(words)


MENTIONS = '''
import torch


def rotate(x):
    a, b = x.chunk(2, dim=-1)
    return torch.cat((-b, a), dim=-1)


def halves(x):
    n = x.shape[-1] // 2
    return torch.cat([x[..., n:], x[..., :n]], -1)


def split_parts(h):
    p, q = h.split(4, -1)  # a comment: view reshape 'split'
    return p * q


def stacked(h, b, t):
    h = h.view(b, t, 2, -1)
    return h[..., 0, :] + h[..., 1, :]


def viewed(h, b, t):
    return h.reshape(b, t, 3, -1), "split (a string)", 1e5, 0x1f


def plain(x):
    return torch.cat((x, x), 0) + x
'''


def _functions_of(source):
    return [n for n in ast.walk(ast.parse(source)) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]


def test_mentions_agree_with_the_old_scan_on_fixtures():
    lines = MENTIONS.split("\n")
    got = {f.name: model_mod._mentions(f, lines) for f in _functions_of(MENTIONS)}
    assert got == {f.name: _old_mentions_of_lines(f, lines) for f in _functions_of(MENTIONS)}
    # each pseudo-word where the old scan added it, and not elsewhere
    assert model_mod.NEG_PAIR in got["rotate"] and model_mod.NEG_PAIR not in got["plain"]
    assert model_mod.HALF_PAIR in got["halves"] and model_mod.HALF_PAIR not in got["plain"]
    assert "chunk" in got["split_parts"] and "chunk" in got["stacked"]
    assert "chunk" not in got["viewed"] and "split" not in got["viewed"] and "e5" in got["viewed"]
    assert all(type(words) is frozenset for words in got.values())


def test_mentions_agree_with_the_old_scan_on_the_repositorys_code():
    root = Path(__file__).resolve().parents[1]
    files = sorted((root / "adopter").rglob("*.py")) + sorted((root / "tests").glob("test_s*.py"))
    count = 0
    for path in files:
        source = path.read_text(encoding="utf-8")
        lines = source.split("\n")
        for func in _functions_of(source):
            assert model_mod._mentions(func, lines) == _old_mentions_of_lines(func, lines), (path, func.name)
            count += 1
    assert count > 1000


# -- 3. bindings._passed_in: a forward parameter called, found with str.find ----------------------



def test_called_agrees_with_the_regex_it_replaces():
    import random

    texts = ["dropout(x)", "self.dropout(x)", "a.dropout(x)", "my_dropout(x)", "xdropout(x)", "édropout(x)",
             "(dropout(x))", "\ndropout (x)", "dropout(", "x = dropoutdropout(y)", "1dropout(x)", "_dropout(x)",
             "f(self.dropout(x), dropout(y))", "ádropout(x); bdropout(y); (dropout(z))", "", "dropout"]
    rng = random.Random(23)
    alphabet = ["drop", "dropout", "(", ".", "_", " ", "\n", "é", "1", "a", "x(", "ñ", "·"]
    texts += ["".join(rng.choice(alphabet) for _ in range(rng.randrange(1, 14))) for _ in range(20000)]
    for name in ("dropout", "drop", "a", "x"):
        for text in texts:
            assert bindings_mod._called(name, text) == bool(re.search(rf"(?<![\w.]){name}\(", text)), (name, text)


PASSED_IN = HEADER + '''

class Scaled(nn.Module):
    def forward(self, q, k, v, mask=None, dropout=None, scale=None):
        w = (q @ k.transpose(-2, -1)).softmax(-1)
        if dropout is not None:
            w = dropout(w)
        return w @ v


class Multi(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.drop = nn.Dropout(0.1)
        self.attn = Scaled()

    def forward(self, q, k, v):
        return self.attn(q, k, v, dropout=self.drop)
'''


def test_passed_in_still_reads_a_called_parameter():
    from adopter.structure.model import module_structure

    module = module_structure(ast.parse(PASSED_IN), None, PASSED_IN)
    bound = module.classes["Scaled"].info.bindings
    assert [c.fqn for c in bound["<dropout>"]] == ["torch.nn.Dropout"]
    assert "<scale>" not in bound and "<mask>" not in bound


def test_stacked_agrees_with_the_pattern_search():
    import random

    texts = ["h.view(b, t, 2, -1)", "h.reshape(b, t, 2, d // 2)", "xview(b, 2, -1)", "_view(b, 2, -1)",
             "h.view(b, t, 2, -1 )", "h.view(b, (t), 2, -1)", "view(a, 2, -1)", "h.view(b, t, 3, -1)",
             "reshapeview(b, 2, -1)", "h.view(b,\n 2 ,\n - 1)", "view(view(b, 2, -1)", "éview(b, 2, -1)"]
    rng = random.Random(23)
    alphabet = ["view(", "reshape(", "h.", "x", "b", ", ", "2", " ", "-1", "-", "1", ")", "(", "d // 2", "\n",
                ",", "é", "_"]
    texts += ["".join(rng.choice(alphabet) for _ in range(rng.randrange(1, 16))) for _ in range(20000)]
    # calls with argument lists near the pattern's (about a third of them match)
    before = ["", "h.", "x", "_", ".", " ", "é", "(", "\n"]
    args = ["b", "t", "2", " 2 ", "-1", "- 1", "d // 2", "d//2", "3", "(t)", "x.y // 2", "", "\n2"]
    for _ in range(20000):
        inner = ",".join(rng.choice(args) for _ in range(rng.randrange(1, 5)))
        call = rng.choice(before) + rng.choice(["view(", "reshape(", "view (", "views("]) + inner + rng.choice([")", "", " )"])
        texts.append(call + rng.choice(["", " + h.view(b, 2, -1)", " view(", "(x)"]))
    assert 3000 < sum(bool(model_mod._STACKED.search(t)) for t in texts) < 30000
    for text in texts:
        assert model_mod._stacked(text) == bool(model_mod._STACKED.search(text)), text


# -- 4. module_structure: the file's text asked for ``ModuleList`` once, not once per class --------

class _CountingContains(str):
    asked: list = []

    def __contains__(self, part):
        type(self).asked.append(part)
        return str.__contains__(self, part)


CHAINED = HEADER + '''

class Block(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.fc = nn.Linear(d, d)

    def forward(self, x):
        return self.fc(x)


class Stack(nn.Module):
    def __init__(self, d, n):
        super().__init__()
        self.blocks = nn.ModuleList([Block(d) for _ in range(n)])

    def forward(self, x):
        for block in self.blocks:
            x = block(x)
        return x


class Other(nn.Module):
    def forward(self, x):
        return x
'''


@pytest.mark.parametrize("source", [CHAINED, CHAINED.replace("ModuleList", "Sequential")])
def test_module_structure_asks_the_text_for_module_lists_once(source):
    from adopter.structure.model import module_structure

    _CountingContains.asked = []
    counted = module_structure(ast.parse(source), None, _CountingContains(source))
    assert _CountingContains.asked.count("ModuleList") == 1  # once per class (3) on the old code
    plain = module_structure(ast.parse(source), None, source)
    assert counted.classes.keys() == plain.classes.keys()
    assert {n: c.roots for n, c in counted.classes.items()} == {n: c.roots for n, c in plain.classes.items()}


# -- 5. Matcher.match_module: no sort or choice among matches when there are none -------------------

def test_match_module_without_matches_skips_the_choice(monkeypatch):
    from adopter import match as match_mod
    from adopter.engine import analyze, matchers_for
    from adopter.ruleset import load_rules
    from adopter.structure.model import module_structure

    rules = load_rules()
    calls = []
    for name in ("_longest", "_disjoint"):
        original = getattr(match_mod, name)
        monkeypatch.setattr(match_mod, name, lambda matches, *a, _o=original, _n=name: calls.append(_n) or _o(matches, *a))
    module = module_structure(ast.parse(CHAINED), None, CHAINED)
    results = {}
    for rule in rules:
        for matcher in matchers_for(rule):
            results[(rule.id, id(matcher))] = matcher.match_module(module)
    assert all(found == [] and type(found) is list for found in results.values())
    assert calls == []  # the old code chose among no matches for every matcher with optional steps
    # and the findings of a file with matches are those of the full analysis
    analysis = analyze(ATTENTION_SOURCE, "attention.py", rules)
    assert {f.rule for f in analysis.findings} >= {"ADP010"}
    assert calls  # (chosen among real matches still)


ATTENTION_SOURCE = HEADER + '''
import torch.nn.functional as F


class Attention(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        b, n, c = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        scores = torch.matmul(q, k.transpose(-2, -1)) / (c // self.heads) ** 0.5
        weights = F.softmax(scores, dim=-1)
        out = torch.matmul(weights, v).transpose(1, 2).reshape(b, n, c)
        return self.proj(out)
'''


# -- 6. Matcher._candidates: the classes passing a first word group listed once per file ---------
#    and ClassStructure._bound_by_name: the constructors' last components once per set

FIXTURE_FILES = sorted((Path(__file__).resolve().parents[1] / "benchmarks" / "rule_fixtures").glob("*.py"))
SOURCES = [CALLING, NOT_CALLING, NOT_CALLED_HERE, CHAINED, ATTENTION_SOURCE, MENTIONS, PASSED_IN] + [
    path.read_text(encoding="utf-8") for path in FIXTURE_FILES]


def _old_candidates(matcher, module):
    """Matcher._candidates as it was on main ed86185 (each class with roots tested per key set)."""
    file_scope = matcher.scope == "file"
    return [(name, roots) for name, cls in module.classes.items() if (cls.all_roots if file_scope else cls.roots)
            for roots in [matcher._candidate_roots(cls, module)] if roots]


def _all_matchers():
    from adopter.engine import matchers_for
    from adopter.ruleset import load_rules

    return [m for rule in load_rules() for m in matchers_for(rule)]


def test_candidates_agree_with_the_old_test_of_every_class():
    from adopter.structure.model import module_structure

    matchers = _all_matchers()
    assert len(FIXTURE_FILES) >= 10
    total = 0
    for source in SOURCES:
        new = module_structure(ast.parse(source), None, source)
        old = module_structure(ast.parse(source), None, source)
        for matcher in matchers:
            got = matcher._candidates(new)
            assert got == _old_candidates(matcher, old), (matcher.rule_id, source[:80])
            total += len(got)
    assert total > 50  # (some candidates on these files)


def test_candidates_test_the_first_group_once_per_file(monkeypatch):
    from adopter.structure.model import module_structure

    matchers = _all_matchers()
    calls = []
    original = match_mod.Matcher._candidate_roots
    monkeypatch.setattr(match_mod.Matcher, "_candidate_roots",
                        lambda self, cls, module: calls.append(cls.name) or original(self, cls, module))
    for source in SOURCES:
        module = module_structure(ast.parse(source), None, source)
        calls.clear()
        for matcher in matchers:
            matcher._candidates(module)
        key_sets = {(m.scope == "file", m.roots_key) for m in matchers}
        with_roots = {scope: sum(1 for c in module.classes.values() if (c.all_roots if scope else c.roots))
                      for scope in (False, True)}
        old_calls = sum(with_roots[scope] for scope, _ in key_sets)
        assert len(calls) < old_calls / 2, source[:80]  # the old code tested every class per key set




def _old_bound_by_name(cls, constructors):
    """ClassStructure._bound_by_name as it was on main ed86185."""
    from adopter.structure.names import names_match

    index = {}
    for attr, ctors in cls.bindings.items():
        for c in ctors:
            index.setdefault(c.fqn.rsplit(".", 1)[-1], {})[attr] = None
    bindings = cls.bindings
    found = {}
    for a in constructors:
        for attr in index.get(a.rsplit(".", 1)[-1], ()):
            if attr not in found and any(names_match(a, c.fqn) for c in bindings[attr]):
                found[attr] = None
    if len(found) > 1 and len(constructors) > 1:
        return [attr for attr in bindings if attr in found]
    return list(found)


def test_bound_by_name_agrees_with_the_old_lookup():
    from adopter.structure.model import module_structure

    sets = {frozenset(allowed) for m in _all_matchers() for allowed in m.layer_types.values()}
    sets |= {frozenset({"torch.nn.Linear"}), frozenset({"torch.nn.Linear", "torch.nn.Conv2d", "Linear"}),
             frozenset({"torch.nn.BatchNorm2d", "nn.BatchNorm2d", "torch.nn.modules.batchnorm.BatchNorm2d"}),
             frozenset()}
    checked = 0
    for source in SOURCES:
        module = module_structure(ast.parse(source), None, source)
        for cls in module.classes.values():
            for constructors in sets:
                got = cls._bound_by_name(constructors)
                assert got == _old_bound_by_name(cls, constructors)
                checked += bool(got)
    assert checked > 20


# -- 7. ClassStructure.words: the helpers a function reaches looked up from the functions' side ----

def _old_words(cls, name, _seen=frozenset()):
    """ClassStructure.words as it was on main ed86185 (uncached)."""
    func = cls.functions.get(name) or cls.module.names.functions.get(name)
    if func is None:
        return frozenset()
    own = cls.module.mention(func)
    total = set(own)
    for word in own:
        if word in _seen or word == name:
            continue
        if word in cls.functions or word in cls.module.names.functions:
            owner = cls if word in cls.functions else cls.module.function_owner
            total |= _old_words(owner, word, _seen | {name})
    return frozenset(total)


HELPERS = HEADER + '''

def scale(x):
    return x * 2


def outer(x):
    return scale(x) + inner(x)


def inner(x):
    return outer(x) if x is None else x


class Net(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.fc = nn.Linear(d, d)

    def helper(self, x):
        return self.other(scale(x))

    def other(self, x):
        return self.helper(x) + outer(x)

    def forward(self, x):
        return self.fc(self.helper(x))

    def lone(self, x):
        return x
'''


def test_words_agree_with_the_old_walk_over_every_word():
    from adopter.structure.model import module_structure

    checked = 0
    for source in SOURCES + [HELPERS]:
        module = module_structure(ast.parse(source), None, source)
        for cls in module.classes.values():
            for name in [*cls.functions, "missing"]:
                assert cls.words(name) == _old_words(cls, name), (cls.name, name)
                assert cls.words(name) == _old_words(cls, name)  # (cached: the same)
                checked += 1
    assert checked > 100
    module = module_structure(ast.parse(HELPERS), None, HELPERS)
    assert {"scale", "outer", "inner", "other", "helper"} <= module.classes["Net"].words("forward")
    assert module.classes["Net"].words("lone") == module.mention(module.classes["Net"].functions["lone"])
