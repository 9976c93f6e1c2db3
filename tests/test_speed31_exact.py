"""speed31 (session 42): cheaper readings of the module structure, each compared with what the
old code gives on fixtures of ours.

``bindings._statements`` (every class's ``__init__`` flattened for the appliers and the lambda
methods) was a recursive generator calling ``treewalk.blocks`` on every statement; it now fills
one list and asks ``blocks`` only of the statement kinds that hold blocks."""
import ast
import textwrap

from adopter.structure.bindings import _statements
from adopter.structure.treewalk import blocks

INIT = textwrap.dedent('''
    def __init__(self, d, kind, extra=None):
        super().__init__()
        self.a = nn.Linear(d, d)
        if kind == "x":
            self.b = nn.ReLU()
            for i in range(3):
                self.add_module(f"c{i}", nn.Linear(d, d))
            else:
                self.d = 1
        elif kind == "y":
            while extra:
                extra = None
        else:
            self.b = nn.GELU()
        try:
            self.e = nn.Dropout(0.1)
        except ValueError:
            self.e = None
        else:
            self.f = 2
        finally:
            self.g = 3
        with torch.no_grad():
            self.h = nn.Identity()
        match kind:
            case "z":
                self.m = nn.Tanh()
            case _:
                pass
        def helper(x):
            self.inner = x       # a nested function: its statements are its own
        class Local:
            attr = 1             # a nested class: its statements are its own
        self.lam = lambda x: self.a(x)
''')


def _reference(body):
    """The old generator, as it was: a statement, then its blocks' statements, depth first."""
    for stmt in body:
        yield stmt
        if not isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            for block in blocks(stmt):
                yield from _reference(block)


def test_statements_same_order_as_the_recursive_walk():
    body = ast.parse(INIT).body[0].body
    got = _statements(body)
    assert isinstance(got, list)  # (one list, not a generator per block)
    want = list(_reference(body))
    assert [id(s) for s in got] == [id(s) for s in want]
    texts = [ast.unparse(s).split("\n")[0] for s in got]
    # the statements inside if/elif/else, for-else, while, try/except/else/finally, with and
    # match cases are listed; the nested function's and class's own are not
    for inside in ("self.b = nn.ReLU()", "self.d = 1", "extra = None", "self.b = nn.GELU()",
                   "self.e = None", "self.f = 2", "self.g = 3", "self.h = nn.Identity()", "self.m = nn.Tanh()"):
        assert inside in texts
    assert "self.inner = x" not in texts and "attr = 1" not in texts
    assert texts.index("self.a = nn.Linear(d, d)") < texts.index("self.b = nn.ReLU()") < texts.index("self.d = 1")


def test_statements_of_an_empty_or_flat_body():
    assert _statements([]) == []
    body = ast.parse("x = 1\ny = x\nprint(y)").body
    assert _statements(body) == body and _statements(body) is not body


# ``held_layers.borrow_held_layers`` read the class text of a holder that assigns a held chain
# (``self.inner.out = ...``) from its own ``text.split("\n")``; it now takes the lines
# module_structure split for the typer (one split per file).
HELD = textwrap.dedent('''
    import torch.nn.functional as F
    from torch import nn


    class Inner(nn.Module):
        def __init__(self, d, n):
            super().__init__()
            self.emb = nn.Embedding(n, d)
            self.out = nn.Linear(d, n)
            self.norm = nn.LayerNorm(d)

        def forward(self, x):
            return self.norm(self.emb(x))


    class Outer(nn.Module):
        def __init__(self, d, n):
            super().__init__()
            self.inner = Inner(d, n)
    REPLACE
        def forward(self, x, y):
            h = self.inner(x)
            logits = self.inner.out(h)
            return F.cross_entropy(logits.view(-1, logits.size(-1)), y.view(-1))
''')


class _CountingText(str):
    """A file text that counts its whole-text splits into lines."""
    splits = 0

    def split(self, *args, **kwargs):
        if args[:1] == ("\n",):
            type(self).splits += 1
        return super().split(*args, **kwargs)


def _held(replace: str):
    from adopter.structure.model import module_structure
    code = HELD.replace("REPLACE\n", replace)
    _CountingText.splits = 0
    text = _CountingText(code)
    structure = module_structure(ast.parse(code), None, text)
    return structure.classes["Outer"].info.bindings, _CountingText.splits


def test_a_held_layer_is_bound_and_the_text_split_once():
    bindings, splits = _held("\n")
    assert [c.fqn for c in bindings["inner.out"]][0] == "torch.nn.Linear"
    # (no chain assigned in the file: the lines were never needed)
    assert splits == 1


def test_a_held_chain_the_holder_assigns_is_not_bound_and_the_text_split_once():
    bindings, splits = _held("        self.inner.out = nn.Identity()\n\n")
    assert "inner.out" not in bindings or all(c.fqn != "torch.nn.Linear" for c in bindings["inner.out"])
    assert splits == 1  # module_structure's own split; borrow_held_layers reads those lines
