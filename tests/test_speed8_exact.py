"""speed8: exact cuts of the every-rule analysis.

- ``LayerTyper._input_kind`` (a same-file module class that runs a BatchNorm attribute on its
  input first, HoVer-Net's ``_BatchNormRelu``) began with ``"BatchNorm" in <the file's text>``,
  a scan of the whole file once per same-file class read (2,316 scans over the paper's 199
  files).  The file's text does not change, so the answer is kept once per file beside the
  joined text (``_BATCH_NORM_TEXT`` in the typer's per-file table).

The readings are the same: a class running its BatchNorm first is still typed as that
BatchNorm (a conv before it folds), and a file without the word types no class that way; what
changes is how often the text is scanned.

- bindings' ``__init__`` hook types ``self.<attr> = <value>`` (``_record``), and the walk that
  called the hook typed the same value in the same env again, just after, for the env it leaves
  (``LayerTyper._walk``): 12,158 values over the paper, 2% of the analysis.  The hook now keeps
  its answer (``LayerTyper.typed``) and the walk takes it when nothing that reading depends on
  can have changed: the same value node and env object, depth 0, no Sequential sites recorded,
  one target (a second target's typing follows the first's env write), a value that is no list,
  tuple, operator or conditional expression (whose list graph the walk stores under the
  target's key before typing) and no plain name; and no parameter resolved into the env since
  the hook began typing (``LayerTyper.resolved``: the one write a read makes to the env it is
  given, ``values`` storing a parameter's callers' layers; a value that both reads a parameter
  as passed and builds it would otherwise be read with the default once and the resolution
  once).  Over the paper (11,117 reuses) and every fourth labelled dev-corpus file (10,822) the
  walk's own typing, run beside it, gave a structurally equal answer every time.

The fixtures are ours.
"""

from __future__ import annotations

import ast
import textwrap

from adopter.engine import analyze
from adopter.ruleset import load_rules
from adopter.structure import layers
from adopter.structure.model import module_structure

# Several same-file module classes, one of them normalising its input first: every class the
# constructors build is read by _find_kind, and those of no other kind reach _input_kind.
BN_FIRST = textwrap.dedent("""\
    import torch
    from torch import nn


    class BNReLU(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.bn = nn.BatchNorm2d(c)
            self.act = nn.ReLU()

        def forward(self, x):
            return self.act(self.bn(x))


    class Gate(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.proj = nn.Conv2d(c, c, 1)

        def forward(self, x):
            return x * torch.sigmoid(self.proj(x))


    class Mix(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.a = nn.Conv2d(c, c, 1)
            self.b = nn.Conv2d(c, c, 1)

        def forward(self, x):
            return self.a(x) + self.b(x)


    class Block(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.conv = nn.Conv2d(c, c, 3, padding=1, bias=False)
            self.post = BNReLU(c)
            self.gate = Gate(c)
            self.mix = Mix(c)

        def forward(self, x):
            return self.mix(self.gate(self.post(self.conv(x))))
    """)

# The same classes with the norm a GroupNorm: no text of the file mentions a BatchNorm.
NO_BN = BN_FIRST.replace("nn.BatchNorm2d(c)", "nn.GroupNorm(4, c)")


def _rules(rule: str) -> list:
    return [r for r in load_rules() if r.id == rule]


def _ctors(text: str, cls: str, attr: str) -> list[str]:
    structure = module_structure(ast.parse(text), None, text, None)
    return [c.fqn for c in structure.classes[cls].bindings.get(attr, ())]


def test_batchnorm_first_module_still_typed_as_its_norm():
    assert "torch.nn.BatchNorm2d" in _ctors(BN_FIRST, "Block", "post")
    found = analyze(BN_FIRST, "m.py", _rules("ADP007")).findings
    assert [f.rule for f in found] == ["ADP007"]


def test_near_miss_file_without_batchnorm_types_no_class_as_one():
    assert "torch.nn.BatchNorm2d" not in _ctors(NO_BN, "Block", "post")
    assert not analyze(NO_BN, "m.py", _rules("ADP007")).findings


def test_file_text_scanned_once_per_file(monkeypatch):
    """The text test is made once per file however many classes reach it (on c304d49 it was
    made once per class: 3 of this fixture's classes, each of no other kind)."""
    calls = []
    original = layers.LayerTyper._file_text

    def counted(self):
        calls.append(self)
        return original(self)

    monkeypatch.setattr(layers.LayerTyper, "_file_text", counted)
    for text in (BN_FIRST, NO_BN):
        calls.clear()
        module_structure(ast.parse(text), None, text, None)
        # one call per text fact of the file, never one per class: whether it mentions
        # BatchNorm, and (only where it does) whether it moves an axis (cnn52's moved norm)
        assert len(calls) <= 2, len(calls)


def test_kept_answer_is_the_scan_of_the_text():
    """What is kept is ``"BatchNorm" in`` the joined lines, per typer: a second file's typer
    does not see the first's answer."""
    for text, expected in ((BN_FIRST, True), (NO_BN, False)):
        tree = ast.parse(text)
        structure = module_structure(tree, None, text, None)
        assert structure is not None
        typer = layers.LayerTyper(structure.names, tree)
        typer.lines = text.split("\n")
        cls = structure.names.classes["BNReLU"]
        forward = next(f for f in cls.body if isinstance(f, ast.FunctionDef) and f.name == "forward")
        found = typer._input_kind(cls, forward, 0)
        assert typer._kinds[layers._BATCH_NORM_TEXT] is expected
        assert (found is not None) is expected


# ---------- the __init__ hook's typing of ``self.<attr> = <value>`` taken by the walk

# Assignments the walk takes the hook's answer for (a constructor, a same-file class, a
# container, one in an ``if``, one in a helper __init__ calls) and near-misses it types again: a
# layer-class parameter built (its callers' values resolved into the env while typing), two
# targets, a conditional expression (a list-like value), a plain name.
TYPED = textwrap.dedent("""\
    import torch
    from torch import nn


    class Block(nn.Module):
        def __init__(self, d):
            super().__init__()
            self.fc = nn.Linear(d, d)

        def forward(self, x):
            return self.fc(x)


    class Net(nn.Module):
        def __init__(self, d, norm_layer=nn.LayerNorm, gelu=True, flag=False):
            super().__init__()
            self.proj = nn.Linear(d, 4 * d)
            self.block = Block(d)
            self.blocks = nn.ModuleList([Block(d) for _ in range(2)])
            self.norm = norm_layer(d)
            self.a = self.b = nn.Dropout(0.1)
            self.act = nn.GELU() if gelu else nn.ReLU()
            head = nn.Linear(d, 2)
            self.head = head
            if flag:
                self.extra = nn.Linear(d, d)
            self._build(d)

        def _build(self, d):
            self.out = nn.Linear(4 * d, d)

        def forward(self, x):
            h = self.blocks[1](self.blocks[0](self.act(self.proj(self.norm(x)))))
            return self.head(self.out(self.a(self.b(h))) + self.extra(self.block(x)))


    def make(d):
        return Net(d, norm_layer=nn.BatchNorm1d)
    """)


def _same(a, b) -> bool:
    """Structural equality: syntax nodes by their dump (with positions), records by their fields."""
    if a is b:
        return True
    if isinstance(a, ast.AST) or isinstance(b, ast.AST):
        return type(a) is type(b) and ast.dump(a, include_attributes=True) == ast.dump(b, include_attributes=True)
    if isinstance(a, (tuple, list)) and isinstance(b, (tuple, list)):
        return type(a) is type(b) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if hasattr(a, "__dict__") and type(a) is type(b) and not isinstance(a, type):
        return _same(vars(a), vars(b))
    return a == b


def _bound(text: str, monkeypatch, reuse: bool):
    """Every class's bindings, and every env a hooked walk left (bindings' __init__ walks)."""
    monkeypatch.setattr(layers.LayerTyper, "reuse_typed", reuse)
    envs = []
    original = layers.LayerTyper.function_env

    def recorded(self, func, owner, *args, **kwargs):
        env = original(self, func, owner, *args, **kwargs)
        if kwargs.get("hook") is not None:
            envs.append((func.name, {k: v for k, v in env.items() if k != "__class__"}))
        return env

    monkeypatch.setattr(layers.LayerTyper, "function_env", recorded)
    structure = module_structure(ast.parse(text), None, text, None)
    bindings = {name: dict(cls.bindings) for name, cls in structure.classes.items()}
    monkeypatch.undo()
    return bindings, envs


def test_hook_typing_taken_gives_the_walks_own_answer(monkeypatch):
    """Bindings and the env each __init__ walk leaves are the same with the walk typing every
    ``self.<attr> = <value>`` again (the reuse turned off)."""
    for text in (TYPED, BN_FIRST):
        on = _bound(text, monkeypatch, True)
        off = _bound(text, monkeypatch, False)
        assert _same(on[0], off[0])
        assert [name for name, _ in on[1]] == [name for name, _ in off[1]]
        assert _same(on[1], off[1])
    bindings = _bound(TYPED, monkeypatch, True)[0]["Net"]
    assert [c.fqn for c in bindings["proj"]] == ["torch.nn.Linear"]
    assert {c.fqn for c in bindings["norm"]} == {"torch.nn.LayerNorm", "torch.nn.BatchNorm1d"}
    assert [c.fqn for c in bindings["out"]] == ["torch.nn.Linear"]


def _typings(text: str, monkeypatch) -> dict[str, int]:
    """How often each ``self.<attr> = <value>`` of Net's __init__ and _build has its value typed."""
    tree = ast.parse(text)
    net = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Net")
    wanted = {}
    for node in ast.walk(net):
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Attribute):
            wanted[id(node.value)] = ast.unparse(node.targets[0])
    counts = dict.fromkeys(wanted.values(), 0)
    original = layers.LayerTyper.values

    def counted(self, expr, env, depth=0, called=False):
        if id(expr) in wanted:
            counts[wanted[id(expr)]] += 1
        return original(self, expr, env, depth, called)

    monkeypatch.setattr(layers.LayerTyper, "values", counted)
    module_structure(tree, None, text, None)
    monkeypatch.undo()
    return counts


def test_each_constructor_typed_once(monkeypatch):
    """The hook's answer is taken (on c304d49 the walk typed each of these a second time)."""
    counts = _typings(TYPED, monkeypatch)
    for attr in ("self.proj", "self.block", "self.blocks", "self.extra", "self.out"):
        assert counts[attr] == 1, (attr, counts[attr])


def test_near_misses_typed_again(monkeypatch):
    """A value whose typing resolved a parameter into the env (the layer class the callers
    pass), two targets, a conditional expression and a plain name are typed by the walk itself."""
    counts = _typings(TYPED, monkeypatch)
    assert counts["self.norm"] == 2
    assert counts["self.a"] == 4  # (the hook's per target, then the walk's per target)
    assert counts["self.act"] == 2
    assert counts["self.head"] == 2


def test_kept_answer_dropped_when_the_env_changes(monkeypatch):
    """Near-miss: an answer whose env was written after it was kept (the resolution counter
    moved) is not taken -- bumping the counter in the hook makes every value typed twice."""
    from adopter.structure import bindings as bindings_module
    original = bindings_module._record

    def bumping(attr, value, stmt, func_name, typer, *args, **kwargs):
        typer.resolved += 1
        return original(attr, value, stmt, func_name, typer, *args, **kwargs)

    monkeypatch.setattr(bindings_module, "_record", bumping)
    counts = _typings(TYPED, monkeypatch)
    for attr in ("self.proj", "self.block", "self.blocks", "self.out"):
        assert counts[attr] == 2, (attr, counts[attr])
