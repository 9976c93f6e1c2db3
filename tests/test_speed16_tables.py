"""speed16: the imported-table readings (siblings.imported_table_words before the structure,
ModuleStructure.table_words in it) cost no more than they need, and find what they found.

- ``name[`` is looked for in the text's bracket tails (siblings._bracket_tails), made once per
  text, not in the whole text once per name the package's own modules give the file: the
  answers are those of ``name + "[" in text`` (long names, a name ending a longer word, a name
  at the very start, a text with no bracket at all).
- The structure keeps the text the engine read (ModuleStructure.text): the table readers take
  it as it is, the lines are not joined again, and the engine's answers are reused.
The fixtures are ours.
"""

from __future__ import annotations

import random
import textwrap

import pytest

from adopter.engine import analyze
from adopter.ruleset import load_rules
from adopter.structure import model, siblings
from adopter.structure.literals import imported_table_reads, imported_table_reads_in
from adopter.structure.names import package_of

LONG = "x" * (siblings.TAIL + 5)

TEXTS = [
    "",
    "no bracket here",
    "[",
    "table[0]",
    "my_table[1] + other[2]",
    f"{LONG}[3]",
    f"y{LONG}[3]",
    "a [b] c[d]\n  e[[f]]",
    "OPT = {}\nklass = OPT[name]\nOPT [x]",
]
NAMES = ["table", "my_table", "other", LONG, LONG[1:], "x" * siblings.TAIL, "e", "c", "b", "OPT", "a", "f", ""]


def _fresh(text: str) -> str:
    """The same characters in a new object (the memo then starts over)."""
    return "".join(list(text))


@pytest.mark.parametrize("text", TEXTS)
def test_indexed_answers_as_the_whole_text_does(text):
    text = _fresh(text)
    for name in NAMES:
        assert siblings._indexed(text, name) is (name + "[" in text), (text, name)


def test_indexed_agrees_on_random_texts():
    rng = random.Random(16)
    alphabet = "ab_[] \n.x"
    for _ in range(400):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 120)))
        for name in ("a", "ab", "b_", "x" * 70, "x" * 64, "_a", "ba"):
            fresh = _fresh(text)
            assert siblings._indexed(fresh, name) is (name + "[" in fresh), (text, name)


def test_tails_hold_every_bracket_and_less_than_the_text():
    text = "w = " + "v" * 500 + "[0]\n" + "z" * 300 + "[1]"
    tails = siblings._bracket_tails(text)
    assert tails.count("[") == text.count("[")
    assert len(tails) == 2 * (siblings.TAIL + 1)


def test_tails_made_once_per_text(monkeypatch):
    made = []
    real = siblings._bracket_tails
    monkeypatch.setattr(siblings, "_bracket_tails", lambda text: made.append(text) or real(text))
    text = _fresh("a[0] b[1] c")
    assert [siblings._indexed(text, n) for n in ("a", "b", "c", "a")] == [True, True, False, True]
    assert len(made) == 1
    other = _fresh("c[2]")
    assert siblings._indexed(other, "c") is True
    assert len(made) == 2


def test_imported_table_reads_in_is_the_joined_reading():
    code = textwrap.dedent("""\
        from shop.valid import OPT
        def f(name):
            return OPT[name](1)
    """)
    lines = code.split("\n")
    assert imported_table_reads_in("OPT", code) is imported_table_reads("OPT", lines) is True
    changed = code + "OPT['x'] = 1\n"
    assert imported_table_reads_in("OPT", changed) is imported_table_reads("OPT", changed.split("\n")) is False


VALID = textwrap.dedent("""\
    import torch

    OPTIMIZERS = {
        "adamw": torch.optim.AdamW,
        "sgd": torch.optim.SGD,
    }
""")

ENGINE = textwrap.dedent("""\
    import torch
    from shop.config.valid import OPTIMIZERS
    from shop.config import helpers


    def build(model, name="adamw", lr=0.1):
        return OPTIMIZERS[name](model.parameters(), lr=lr)
""")

LOOKALIKE = ENGINE.replace("OPTIMIZERS[name](", "OPTIMIZERS.get(name)(")


def _package(tmp_path, engine: str):
    root = tmp_path / "shop"
    for folder in (root, root / "config", root / "train"):
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "__init__.py").write_text("")
    (root / "config" / "valid.py").write_text(VALID)
    (root / "config" / "helpers.py").write_text("")
    path = root / "train" / "engine.py"
    path.write_text(engine)
    return str(path)


def _adp012(code: str, path: str) -> list[int]:
    rules = [r for r in load_rules() if r.id == "ADP012"]
    return [f.line for f in analyze(code, path, rules, package=package_of(path)).findings]


def test_structure_reads_the_engines_text_without_joining_it_again(tmp_path, monkeypatch):
    path = _package(tmp_path, ENGINE)
    code = _fresh(ENGINE)
    handed = []
    real = siblings.imported_tables
    monkeypatch.setattr(model, "imported_tables", lambda imports, text, package: handed.append(text)
                        or real(imports, text, package))
    made = []
    tails = siblings._bracket_tails
    monkeypatch.setattr(siblings, "_bracket_tails", lambda text: made.append(text) or tails(text))
    assert _adp012(code, path) == [7]
    assert handed and all(text is code for text in handed)
    assert made == [code]  # (the engine's look and the structure's share the answers)


def test_an_entry_read_another_way_is_no_table_read(tmp_path):
    path = _package(tmp_path, LOOKALIKE)
    assert _adp012(_fresh(LOOKALIKE), path) == []


@pytest.mark.parametrize("needle", [")(", ".apply"])
def test_lines_holding_are_the_lines_a_test_of_each_line_finds(needle):
    rng = random.Random(len(needle))
    alphabet = ["\n", ")", "(", ".apply", "a", " ", ")("]
    for _ in range(400):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 40)))
        assert model._lines_holding(text, needle) == [line for line in text.split("\n") if needle in line], text


BUILT = textwrap.dedent("""\
    import torch
    from torch import nn


    class Scale(nn.Module):
        def forward(self, x):
            return x * 2


    class Twice(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2


    twice = Twice.apply


    class Net(nn.Module):
        def forward(self, x):
            y = Scale()(x)
            return Twice.apply(y) + twice(y)""")


def test_built_and_autograd_forwards_read_the_lines_that_name_them():
    from adopter.engine import parse

    code = _fresh(BUILT)
    structure = model.module_structure(parse(code, "net.py"), None, code, "net.py")
    assert structure.text is code
    assert sorted(structure.built_forwards()) == ["Scale"]
    assert structure.built_forwards()["Scale"].lineno == 6
    assert sorted(structure.autograd_forwards()) == ["Twice", "twice"]
    # a class named on no line that builds and calls it, or applies it: none
    bare = _fresh(BUILT.replace("Scale()(x)", "Scale(x)").replace("Twice.apply(y)", "y").replace(
        "twice = Twice.apply", "twice = None"))
    structure = model.module_structure(parse(bare, "net.py"), None, bare, "net.py")
    assert structure.built_forwards() == {} and structure.autograd_forwards() == {}


def _old_owns(package, fqn: str) -> bool:
    """Package.owns as it read before (a split per ask)."""
    head, _, rest = fqn.partition(".")
    if head == package.top:
        return bool(rest)
    return head == package.namespace and rest.partition(".")[0] == package.top and "." in rest


@pytest.mark.parametrize("namespace", [None, "ns", "top"])
def test_owns_answers_as_the_split_did(tmp_path, namespace):
    folder = tmp_path / (namespace or "plain") / "top" / "sub"
    folder.mkdir(parents=True)
    if namespace is None:
        (tmp_path / "plain" / "__init__.py").write_text("")
    package = siblings.Package("top.sub", str(folder / "mod.py"))
    assert package.namespace == namespace
    names = ["top", "top.", "top.x", "top.x.y", "topx.y", "ns", "ns.", "ns.top", "ns.top.", "ns.top.x",
             "ns.topx.y", "top.top.x", "torch.nn.Linear", "", ".", "x.top.y", "ns.ns.top.x"]
    for fqn in names:
        assert package.owns(fqn) is _old_owns(package, fqn), fqn
