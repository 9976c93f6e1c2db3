"""speed19 (session 37): exact speed-ups, each checked against what it replaces (the old code
written out here, or the work it skips counted, so that the test fails on the old code).

1. The flow builder and the layer typer read the file's text as the module structure holds it
   (``FlowBuilder(text=)``, ``LayerTyper.text``) rather than joining its lines again; the
   literal-table readings take that text too.
2. ``model._roots``: a function's callees are the function names among its words, taken in one
   set intersection (the roots are the same as with the per-word test).
3. ``model._reachable``: the closure follows only the words that name a function.
4. ``ranks._product_ranks``: ``_key_moved`` is worked out only when a product reads the
   probabilities directly.
"""

from __future__ import annotations

import ast
import textwrap

from adopter.engine import analyze
from adopter.ruleset import load_rules
from adopter.structure import model as model_mod
from adopter.structure import ranks as ranks_mod
from adopter.structure.graph import FlowBuilder
from adopter.structure.layers import LayerTyper
from adopter.structure.literals import literal_keywords, literal_table
from adopter.structure.model import module_structure
from adopter.structure.names import collect_names

ADP010 = [r for r in load_rules() if r.id == "ADP010"]


# -- 1. the file's text as it is ------------------------------------------------------------------

def test_the_flow_builder_reads_the_text_it_is_given_not_its_lines_joined():
    names = collect_names(ast.parse("x = 1\n"))
    # (a text that is not the lines' join tells which one the test read)
    given = FlowBuilder(names, None, ["x = 1"], text="h.neg_()")
    assert given._names_neg_() is True
    names = collect_names(ast.parse("x = 1\n"))
    joined = FlowBuilder(names, None, ["x = 1"])  # no text: the lines joined, as before
    assert joined._names_neg_() is False


def test_the_layer_typer_hands_back_the_text_object_itself():
    text = "import torch\n" + "x = torch.zeros(3)\n" * 50
    typer = LayerTyper(collect_names(ast.parse(text)))
    typer.lines, typer.text = text.split("\n"), text
    assert typer._file_text() is text  # (a join would be an equal string, not this one)
    other = LayerTyper(collect_names(ast.parse(text)))
    other.lines = text.split("\n")
    assert other._file_text() == text and other._file_text() is not text


def test_the_module_structure_gives_the_builders_and_the_typer_its_text(monkeypatch):
    source = textwrap.dedent('''
        import torch
        from torch import nn


        class Block(nn.Module):
            def __init__(self, d):
                super().__init__()
                self.fc = nn.Linear(d, d)

            def forward(self, x):
                return self.fc(x).softmax(dim=-1)
    ''')
    seen = []
    init = FlowBuilder.__init__

    def spy(self, *args, **kwargs):
        init(self, *args, **kwargs)
        seen.append(self.text)

    monkeypatch.setattr(FlowBuilder, "__init__", spy)
    structure = module_structure(ast.parse(source), None, source, "m.py")
    structure.classes["Block"].flow("forward")
    assert seen and all(text is source for text in seen)


TABLE_FILE = textwrap.dedent('''
    import torch

    OPTIMIZERS = {"sgd": (torch.optim.SGD, {"momentum": 0.9}), "adam": (torch.optim.Adam, {})}


    def build(params, name):
        klass, defaults = OPTIMIZERS[name]
        return klass(params, **defaults)
''')


def test_literal_table_and_keywords_read_the_given_text_as_the_joined_lines():
    tree = ast.parse(TABLE_FILE)
    value = collect_names(tree).constants["OPTIMIZERS"]
    lines = TABLE_FILE.split("\n")
    assert literal_table("OPTIMIZERS", value, lines, TABLE_FILE) == literal_table("OPTIMIZERS", value, lines)
    assert literal_table("OPTIMIZERS", value, lines, TABLE_FILE) is not None
    # a second binding leaves the entries uncertain, read off the text as off the lines
    rebound = TABLE_FILE + "OPTIMIZERS = {}\n"
    assert literal_table("OPTIMIZERS", value, rebound.split("\n"), rebound) is None
    spread = ast.parse("f(**kw)").body[0].value.keywords[0].value
    assigned = ast.parse("dict(lr=1e-3)").body[0].value
    text = "kw = dict(lr=1e-3)\nf(**kw)"
    assert literal_keywords(spread, assigned, text.split("\n"), {}, text) \
        == literal_keywords(spread, assigned, text.split("\n"), {}) is not None
    # ``kw`` read again elsewhere: not certain, either way
    again = text + "\nprint(kw)"
    assert literal_keywords(spread, assigned, again.split("\n"), {}, again) is None


# -- 2 and 3. roots and reachability off the words that name functions ---------------------------

def _old_roots_callees(functions, mention):
    """``_roots``' callee lists as they were made (a test per word)."""
    return {name: [w for w in mention(func) if w != name and w in functions] for name, func in functions.items()}


ROOTS_FILE = textwrap.dedent('''
    import torch
    from torch import nn


    def helper(x):
        return x * 2


    def train(model, data):
        model.train()
        return estimate(model, data)


    def estimate(model, data):
        return helper(model(data))


    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 4)

        def _inner(self, x):
            return helper(self.fc(x))

        def forward(self, x):
            return self._inner(x) + self.step(x)

        def step(self, x):
            return self._inner(x)

        def train(self, mode=True):
            return self.forward  # a namesake of the module function

        def cycle_a(self, x):
            return self.cycle_b(x)

        def cycle_b(self, x):
            return self.cycle_a(x)
''')


def test_roots_are_those_of_the_per_word_callee_lists():
    structure = module_structure(ast.parse(ROOTS_FILE), None, ROOTS_FILE, "m.py")
    net = structure.classes["Net"]
    mention = structure.mention
    old = _old_roots_callees(net.functions, mention)
    new = {name: net.functions.keys() & mention(func) - {name} for name, func in net.functions.items()}
    assert {k: set(v) for k, v in old.items()} == new
    assert model_mod._roots(net.functions, mention) == ["forward", "train", "cycle_a"]
    module_level = structure.classes["<module>"]
    methods = [(n, f) for c in structure.classes.values() if c is not module_level for n, f in c.functions.items()]
    # (the answers main gave before the change: ``train`` is a root of the module's functions
    # until the class's ``def train`` line, a bare ``train(`` there, counts as its call)
    assert model_mod._roots(module_level.functions, mention, lines=structure.lines) == ["train"]
    assert model_mod._roots(module_level.functions, mention, extra_callers=methods, lines=structure.lines) == []


def test_reachability_follows_only_words_that_name_functions():
    structure = module_structure(ast.parse(ROOTS_FILE), None, ROOTS_FILE, "m.py")
    infos = {name: cls.info for name, cls in structure.classes.items() if cls.info is not None}
    reached = model_mod._reachable(structure, infos)
    # (main's answer before the change; the cycle and the module's train are reached by no forward)
    assert reached == {("<module>", "helper"), ("Net", "_inner"), ("Net", "forward"), ("Net", "step")}


# -- 4. _key_moved only where a product reads the probabilities ----------------------------------

SCORES = '''
import math
import torch
from torch import nn


class Attention(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.q, self.k, self.v = nn.Linear(dim, dim), nn.Linear(dim, dim), nn.Linear(dim, dim)

    def forward(self, x):
        q, k, v = self.q(x), self.k(x), self.v(x)
        w = torch.matmul(q, k.transpose(1, 2)) / math.sqrt(q.size(-1))
        w = torch.softmax(w, dim=2)
        return {TAIL}
'''


def _key_moved_calls(monkeypatch, tail: str) -> tuple[int, list]:
    calls = []
    old = ranks_mod._key_moved

    def counted(*args):
        calls.append(args[1].id)
        return old(*args)

    monkeypatch.setattr(ranks_mod, "_key_moved", counted)
    found = [f.line for f in analyze(SCORES.replace("{TAIL}", tail), "m.py", ADP010).findings]
    return len(calls), found


def test_key_moved_is_read_when_a_product_reads_the_probabilities(monkeypatch):
    calls, found = _key_moved_calls(monkeypatch, "torch.matmul(w, v)")
    assert calls >= 1
    assert found  # (TF-GridNet's keys moved last, softmax over them: attention at rank 3)


def test_key_moved_is_not_worked_out_for_probabilities_no_product_reads(monkeypatch):
    calls, found = _key_moved_calls(monkeypatch, "w.sum(dim=1)")
    assert calls == 0  # (the old code worked it out for every such softmax)
    assert found == []
