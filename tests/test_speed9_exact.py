"""speed9: regular expressions that start with an assertion (a look-behind, ``\\b``) have no
literal for the engine to skip to, so ``search``/``findall`` tried them at every character of the
text; each is now tried only where ``str.find`` gives the literal its matches hold.  Each reading is
compared with the pattern it replaces on short strings over the characters that decide it, on
fixtures of ours with near-misses, and on the repository's own files; the work-count tests (the
old pattern no longer searched) fail on the engine before speed9."""
from __future__ import annotations

import itertools
import re
from pathlib import Path

import pytest

from adopter.engine import analyze
from adopter.ruleset import load_rules
from adopter.structure import graph, model, names
from adopter.structure.model import module_structure

ROOT = Path(__file__).resolve().parents[1]
REPO_TEXTS = [p.read_text(encoding="utf-8") for p in sorted(ROOT.glob("adopter/**/*.py")) + sorted(ROOT.glob("tests/*.py"))]


def _old_bare(text: str, name: str) -> bool:
    # _roots' own-call test before speed9
    return re.search(r"(?<![\w.'\"])" + re.escape(name) + r"(?![\w'\"])", text) is not None


# __init__'s stored methods before speed9: the pattern started with ``\b``
_OLD_STORED = re.compile(r"\bself\.(\w+)\b(?!\s*\()")


def _old_written(text: str, attr: str) -> bool:
    # FlowBuilder._flag_fixed's text test before speed9
    name = re.escape(attr)
    return re.search(rf"(?<!self)\.{name}\s*(?:[-+*/%@&|^]|//|\*\*|<<|>>)?=(?!=)|[\"']{name}[\"']", text) is not None


# ----------------------------------------------------------------- the readings, compared

BARE_PIECES = ["f", "ff", ".", "'", '"', "_", "x", "1", "é", "١", " ", "(", "\n"]


def test_bare_word_equals_the_pattern_on_every_short_string():
    for n in range(5):
        for parts in itertools.product(BARE_PIECES, repeat=n):
            text = "".join(parts)
            for name in ("f", "ff", "f_1"):
                assert model._bare_word(text, name) == _old_bare(text, name), (text, name)


def test_bare_word_equals_the_pattern_on_the_repositorys_files():
    for text in REPO_TEXTS[::3]:
        for name in ("self", "train", "forward", "x", "re", "_roots", "name", "model"):
            assert model._bare_word(text, name) == _old_bare(text, name)


STORED_PIECES = ["self.", "self", ".", "a", "_", "(", " ", "\n", "1", "é", "my", "\\"]


def test_stored_names_equal_findall_on_every_short_string():
    for n in range(5):
        for parts in itertools.product(STORED_PIECES, repeat=n):
            text = "".join(parts)
            assert model._STORED.findall(text) == _OLD_STORED.findall(text), text


def test_stored_names_equal_findall_on_the_repositorys_files():
    found = 0
    for text in REPO_TEXTS:
        got = model._STORED.findall(text)
        assert got == _OLD_STORED.findall(text)
        found += len(got)
    assert found > 100


WRITTEN_PIECES = ["flag", ".", "self", "'", '"', "=", "==", "+", "*", "/", " ", "x", "_"]


def test_attr_written_equals_the_pattern_on_every_short_string():
    for n in range(5):
        for parts in itertools.product(WRITTEN_PIECES, repeat=n):
            text = "".join(parts)
            for attr in ("flag", "f"):
                assert graph._attr_written(text, attr) == _old_written(text, attr), (text, attr)
    assert graph._attr_written("x.  = 1", "") == _old_written("x.  = 1", "")  # (no name: the search)


def test_attr_written_equals_the_pattern_on_the_repositorys_files():
    for text in REPO_TEXTS[::2]:
        for attr in ("lines", "cls", "training", "flag", "names", "a"):
            assert graph._attr_written(text, attr) == _old_written(text, attr)


# may_import_locally on non-ASCII text: the str.find scan, no longer the regex
UNICODE_PIECES = ["import", "from", " ", "\t", "\n", ";", ":", "\\", "é", "١", "\u00a0", "\u2028",
                  "\u3000", "\x85", "\u200b", "\x1c", "x"]


def test_may_import_locally_equals_the_regex_on_unicode_strings():
    for n in range(4):
        for parts in itertools.product(UNICODE_PIECES, repeat=n):
            text = "".join(parts)
            assert names.may_import_locally(text) == (names._LOCAL_IMPORT_TEXT.search(text) is not None), repr(text)


def test_may_import_locally_on_the_repositorys_files_made_non_ascii():
    for text in REPO_TEXTS:
        for extra in ("# é\n", "x = 1;\u3000"):
            changed = extra + text
            assert names.may_import_locally(changed) == (names._LOCAL_IMPORT_TEXT.search(changed) is not None)


# ----------------------------------------------------------------- fixtures and the work skipped

# Module functions called by their bare names from methods and from one another, a namesake
# method call (``self.model.train()`` in a function ``train`` calls through ``evaluate``), names in
# strings and after a dot (near-misses of the own-call test), a method __init__ stores uncalled
# (``self.attend = self.dense_attend``), one it calls and one it hands to a call (near-misses),
# and a flag the class fixes in an ``if`` (written through another object in a second file text).
SOURCE = '''
import torch
from torch import nn


def helper(x):
    return torch.softmax(x, dim=-1)


def evaluate(model, x):
    model.train()
    return model(x)


def train(model, x):
    out = evaluate(model, x)
    return out


def unused_in_strings(x):
    return "helper" + 'train' + x.helper


class Attention(nn.Module):
    def __init__(self, d, sparse=False):
        super().__init__()
        self.q = nn.Linear(d, d)
        self.k = nn.Linear(d, d)
        self.v = nn.Linear(d, d)
        self.scaled = True
        self.attend = self.dense_attend
        self.other = self.sparse_attend(d)
        self.apply(self._init)

    def _init(self, m):
        return m

    def sparse_attend(self, d):
        return d

    def dense_attend(self, q, k, v):
        scores = q @ k.transpose(-2, -1)
        if self.scaled:
            scores = scores / 8.0
        return helper(scores) @ v

    def forward(self, x):
        return self.attend(self.q(x), self.k(x), self.v(x))


class Trainer:
    def run(self, model, x):
        return train(model, x)
'''

WRITES_FLAG = SOURCE + '''

def switch(block):
    block.scaled = False
'''


def _roots(structure):
    return {name: list(cls.roots) for name, cls in structure.classes.items()}


@pytest.mark.parametrize("text", [SOURCE, WRITES_FLAG])
def test_structure_and_findings_as_with_the_old_patterns(monkeypatch, text):
    import ast

    answers = []
    bare = model._bare_word
    monkeypatch.setattr(model, "_bare_word", lambda t, n: answers.append(bare(t, n)) or answers[-1])
    stored = _Spy(model._STORED)
    monkeypatch.setattr(model, "_STORED", stored)
    new_roots = _roots(module_structure(ast.parse(text), None, text, "fixture.py"))
    new = [(f.rule, f.line, f.column) for f in analyze(text, "fixture.py", load_rules()).findings]
    # (the readings were asked, with both answers, and the stored method found)
    assert True in answers and False in answers
    assert "dense_attend" in stored.found and "sparse_attend" not in stored.found  # (called: not stored)
    monkeypatch.setattr(model, "_bare_word", _old_bare)
    monkeypatch.setattr(model, "_STORED", _OLD_STORED)
    monkeypatch.setattr(graph, "_attr_written", _old_written)
    old_roots = _roots(module_structure(ast.parse(text), None, text, "fixture.py"))
    old = [(f.rule, f.line, f.column) for f in analyze(text, "fixture.py", load_rules()).findings]
    assert new_roots == old_roots
    assert new == old


def test_the_flag_reading_still_decides():
    # The scale under ``if self.scaled`` (fixed True) is on every path; a file that writes
    # ``block.scaled`` elsewhere makes the branch a real one: the flag test reads both texts.
    assert not graph._attr_written(SOURCE, "scaled")
    assert graph._attr_written(WRITES_FLAG, "scaled")
    assert graph._attr_written("setattr(m, 'scaled', 1)", "scaled")
    assert not graph._attr_written("self.scaled = False\nif x.scaled == 1: pass", "scaled")


class _Spy:
    """A compiled pattern stand-in that counts the calls the old readings made."""

    def __init__(self, pattern):
        self.pattern = pattern
        self.calls = 0
        self.found = []

    def findall(self, *args):
        self.calls += 1
        found = self.pattern.findall(*args)
        self.found.extend(found)
        return found

    def search(self, *args):
        self.calls += 1
        return self.pattern.search(*args)

    def match(self, *args):
        return self.pattern.match(*args)


def test_no_search_from_every_character(monkeypatch):
    """The structure of the fixture (own calls read, a non-ASCII text) and its flows (the fixed
    flag) make no ``re.search`` and no search of the local-import regex: on the engine before
    speed9 each of these readings searched its text with a pattern tried at every character."""
    import ast

    searched = []
    real = re.search
    monkeypatch.setattr(re, "search", lambda *a, **k: searched.append(a[0]) or real(*a, **k))
    local = _Spy(names._LOCAL_IMPORT_TEXT)
    monkeypatch.setattr(names, "_LOCAL_IMPORT_TEXT", local)
    text = "# é\n" + SOURCE
    structure = module_structure(ast.parse(text), None, text, "fixture.py")
    for cls in list(structure.classes.values()):
        for root in cls.roots:
            cls.flow(root)
    assert local.calls == 0
    assert searched == []


def test_stored_pattern_starts_with_its_literal():
    """The engine skips to a pattern's literal prefix; one that starts with an assertion (``\\b``,
    a look-behind) has none and is tried at every character (the pattern before speed9)."""
    assert model._STORED.pattern.startswith("self")
    assert not _OLD_STORED.pattern.startswith("self")
