"""speed21: exact speed-ups of the engine's text scans and the flow builder, each compared with
the algorithm it replaces (written out here as the old code was) on fixtures of ours and
near-misses, and, where the change skips work, that work counted (so the test fails on the
old code)."""
import ast
import random
import re

from adopter import engine
from adopter.ruleset import load_rules
from adopter.structure import graph as graph_mod
from adopter.structure import model as model_mod
from adopter.structure.graph import FlowBuilder, Ref
from adopter.structure.model import module_structure

SOURCE = '''
import torch
import torch.nn.functional as F
from torch import nn


def rotate(x):
    a, b = x.chunk(2, dim=-1)
    return torch.cat((-b, a), dim=-1)


class Block(nn.Module):
    """A block: 'quoted', "double", and a # that is no comment."""

    def __init__(self, d):
        super().__init__()
        self.fc = nn.Linear(d, d)  # a comment with 'quotes" and """ in it
        self.drop = nn.Dropout(0.1)
        self.norm = nn.LayerNorm(d)
        self.act = nn.GELU()

    def forward(self, x, scale=None):
        s = 'it\\'s' + "a \\"b\\"" + """one '' two"""
        h = self.act(self.fc(x))
        c = h.chunk(2, dim=-1)
        y = c
        z = c[0] + c[1]
        w = rotate(h) * scale
        return self.norm(x + self.drop(h)), y, z, w
'''


# -- engine: the file's lines split once ---------------------------------------------------

class _CountingText(str):
    splits = 0

    def split(self, *args, **kwargs):
        type(self).splits += 1
        return str.split(self, *args, **kwargs)


def test_analyze_splits_the_text_once_and_finds_the_same():
    rules = load_rules()
    plain = engine.analyze(SOURCE, "block.py", rules)
    _CountingText.splits = 0
    counted = engine.analyze(_CountingText(SOURCE), "block.py", rules)
    assert _CountingText.splits == 1  # two on the old code: the engine's and the structure's
    assert [(f.rule, f.line, f.column, f.message) for f in counted.findings] == \
        [(f.rule, f.line, f.column, f.message) for f in plain.findings]
    assert plain.findings  # the fixture has findings to compare


# -- model._NOISE: the same matches as the old alternation ------------------------------------

_OLD_NOISE = re.compile(r"""#[^\n]*|'''.*?'''|\"\"\".*?\"\"\"|'(?:\\.|[^'\\\n])*'|"(?:\\.|[^"\\\n])*\"""", re.S)

_NOISE_CASES = [
    SOURCE,
    "x = 'a' # c 'd'\ny = \"e\\\"f\"",
    "s = '''a '' b ''' + '''''' + ''''x'''\nt = \"\"\"a \"\" b \"\"\" \"\"\"\"y\"\"\"",
    "u = '''never closed\nv = 1",
    "w = 'never closed\nz = \"also\n",
    "a = 'x\\\ny' + \"p\\\nq\"",  # a backslash before a line break
    "b = '\\\\' + \"\\\\\" + '\\''",
    "c = '''a''''\nd = \"\"\"b\"\"\"\"\"",
    "e = 'a' 'b' \"c\" # 'd' \"e\" '''f'''",
    "",
]


def test_noise_regex_matches_the_old_alternation():
    for text in _NOISE_CASES:
        assert [m.span() for m in model_mod._NOISE.finditer(text)] == \
            [m.span() for m in _OLD_NOISE.finditer(text)], text
        assert model_mod._NOISE.sub(" ", text) == _OLD_NOISE.sub(" ", text)


def test_noise_regex_matches_the_old_alternation_on_random_text():
    rng = random.Random(21)
    alphabet = ["'", '"', "#", "\\", "\n", "a", " ", "'''", '"""', "''", '""']
    for _ in range(20000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 24)))
        assert [m.span() for m in model_mod._NOISE.finditer(text)] == \
            [m.span() for m in _OLD_NOISE.finditer(text)], repr(text)


def test_noise_regex_has_no_lazy_step():
    # (the old pattern's ``.*?`` tried the closing quotes at every character of a docstring)
    assert ".*?" not in model_mod._NOISE.pattern
    assert ".*?" in _OLD_NOISE.pattern


# -- graph._contains_call: the old any() over walk --------------------------------------------

def _old_contains_call(expr):
    return any(isinstance(n, (ast.Call, ast.BinOp)) for n in graph_mod.walk(expr))


def test_contains_call_as_before():
    tree = ast.parse(SOURCE + "\nq = x.a[0].b\nr = x[f(y)]\nt = x[lambda: g()]\nu = x[a + b]\nv = x[-1]\n")
    exprs = [n for n in ast.walk(tree) if isinstance(n, ast.expr)]
    assert len(exprs) > 100
    assert {graph_mod._contains_call(e) for e in exprs} == {True, False}
    for expr in exprs:
        assert graph_mod._contains_call(expr) == _old_contains_call(expr)


# -- ClassStructure.op_words: no copy of the file's words for a class without such a layer -----

def test_op_words_shares_the_file_words_when_no_layer_computes_the_op():
    structure = module_structure(ast.parse(SOURCE), None, SOURCE, "block.py")
    cls = structure.classes["Block"]
    for op in ("torch.nn.functional.softmax", "torch.nn.functional.dropout", "torch.nn.functional.gelu",
               "torch.nn.functional.linear"):
        old = structure.op_words(op) | cls.op_attrs(op)  # the old algorithm: always the union
        assert cls.op_words(op) == old
        if not cls.op_attrs(op):
            assert cls.op_words(op) is structure.op_words(op)  # a fresh copy on the old code
    assert cls.op_attrs("torch.nn.functional.dropout")  # the fixture's Dropout layer: a union
    assert not cls.op_attrs("torch.nn.functional.softmax")


# -- FlowBuilder._value: names and calls by exact class first ----------------------------------

def _flow_summary(flow):
    return [(n.kind, n.op, n.canon, tuple(a.key if isinstance(a, Ref) else repr(a) for a in n.args),
             tuple(o.key for o in n.outs), tuple(sorted(n.uses)), tuple(sorted(n.defs)), n.span)
            for n in flow.nodes]


def test_value_fast_path_gives_the_same_flow_and_skips_the_name_calls(monkeypatch):
    structure = module_structure(ast.parse(SOURCE), None, SOURCE, "block.py")
    cls = structure.classes["Block"]
    calls = {"n": 0}
    original = FlowBuilder._name_value

    def counted(self, name, ctx):
        calls["n"] += 1
        return original(self, name, ctx)

    monkeypatch.setattr(FlowBuilder, "_name_value", counted)
    builder = FlowBuilder(structure.names, cls.info, structure.lines, None)
    flow = builder.build(cls.functions["forward"], "Block.forward")
    summary = _flow_summary(flow)
    keys = {key for row in summary for key in row[3] + row[4]}
    assert "x" in keys and "h" in keys
    assert any(key.endswith("@1") for key in keys)  # rotate(h) inlined: its names keyed per instance
    # y = c reads both chunks (a name of chunks takes the old path); c[0] + c[1] reads each
    chunk_reads = [row for row in summary if row[0] == "other" and any("c#" in u or "c" == u for u in row[5])]
    assert chunk_reads
    # the old code asked _name_value for every name it evaluated; now only the other paths do
    names = sum(1 for n in ast.walk(cls.functions["forward"]) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load))
    assert calls["n"] < names

    # The same flow as the old dispatch (the fast path turned off: every expression through the
    # isinstance chain, names through _name_value).
    monkeypatch.setattr(graph_mod, "_NAME", type("NoName", (), {}))
    monkeypatch.setattr(graph_mod, "_CALL", type("NoCall", (), {}))
    old_builder = FlowBuilder(structure.names, cls.info, structure.lines, None)
    old_flow = old_builder.build(cls.functions["forward"], "Block.forward")
    assert _flow_summary(old_flow) == summary
    assert old_flow.out == flow.out


# -- engine.relevant_rules: the trigger found last time tried first -------------------------------

class _CountingScans(str):
    scans = 0

    def __contains__(self, word):
        type(self).scans += 1
        return str.__contains__(self, word)


class _TriggerRule:
    def __init__(self, triggers):
        self.triggers = frozenset(triggers)


def _old_relevant_rules(text, rules):
    return [r for r in rules if not r.triggers or any(word in text for word in r.triggers)]


def test_relevant_rules_as_before_on_our_rules_and_texts():
    rules = load_rules()
    texts = [SOURCE, "", "import torch\nx = torch.softmax(y, -1)\n", "class A(nn.Module): pass\n",
             "nn.Conv2d nn.BatchNorm2d", "F.scaled_dot_product_attention", "torch.optim.AdamW(params)",
             "rotate_half cat lm_head CrossEntropyLoss", SOURCE.replace("Dropout", "Drop")] * 3
    for text in texts:
        assert engine.relevant_rules(text, rules) == _old_relevant_rules(text, rules)


def test_relevant_rules_tries_the_last_found_trigger_first():
    many = _TriggerRule({f"trigger_word_{i:02d}" for i in range(30)})
    none = _TriggerRule(())
    absent = _TriggerRule({"never_here", "nor_this"})
    rules = [none, many, absent]
    text = _CountingScans("x = trigger_word_29(y)\n")
    assert engine.relevant_rules(text, rules) == [none, many] == _old_relevant_rules(text, rules)
    _CountingScans.scans = 0
    assert engine.relevant_rules(text, rules) == [none, many]
    # one scan finds the rule's word (tried first now), two for the absent rule's words; the old
    # code scanned in the frozenset's hash order (29 absent words before it, on average 15)
    assert _CountingScans.scans == 3
    other = _CountingScans("trigger_word_03 and trigger_word_29")
    assert engine.relevant_rules(other, rules) == [none, many] == _old_relevant_rules(other, rules)


# -- LayerTyper.calls_attr: whether the file defines a function, once per file -----------------

CALLS_ATTR_SOURCE = '''
import torch
from torch import nn


def kernel(w, act, x):
    return act(x @ w)


def scale(x, s):
    return x * s


class Mlp(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.fc = nn.Linear(d, d)
        self.act = nn.GELU()
        self.norm = nn.LayerNorm(d)
        self.gain = 2.0

    def forward(self, x):
        h = kernel(self.fc.weight, self.act, x)
        return scale(self.norm.weight, self.gain) + h
'''


class _CountingFunctions(dict):
    reads = 0

    def values(self):
        type(self).reads += 1
        return dict.values(self)


def _old_calls_attr(typer, cls, attr):
    """LayerTyper.calls_attr as it was (the function test inside, per call)."""
    text = "\n".join(typer.lines[cls.lineno - 1:cls.end_lineno])
    if f"self.{attr}(" in text:
        return True
    if f"self.{attr}" not in text:
        return False
    if not any(isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef)) for f in typer.names.functions.values()):
        return False
    for found in re.finditer(rf"\b(\w+)\([^()]*[(,]?\s*\bself\.{re.escape(attr)}\s*[,)]", text):
        func = typer.names.functions.get(found.group(1))
        if isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef)):
            body = "\n".join(typer.lines[func.body[0].lineno - 1:func.end_lineno])
            if any(re.search(rf"\b{a.arg}\(", body) for a in func.args.args if f"{a.arg}(" in body):
                return True
    return False


def test_calls_attr_reads_the_files_functions_once():
    from adopter.structure.layers import LayerTyper
    from adopter.structure.names import collect_names

    for source in (CALLS_ATTR_SOURCE, CALLS_ATTR_SOURCE.replace("def kernel", "kernel = None\ndef _kernel")
                   .replace("def scale", "scale = None\ndef _scale")):
        tree = ast.parse(source)
        names = collect_names(tree, None)
        names.functions = _CountingFunctions(names.functions)
        typer = LayerTyper(names, tree)
        typer.lines = source.split("\n")
        cls = names.classes["Mlp"]
        attrs = ["fc", "act", "norm", "gain", "missing", "fc", "act"]
        got = [typer.calls_attr(cls, a) for a in attrs]
        assert got == [_old_calls_attr(typer, cls, a) for a in attrs]
        assert [typer.calls_attr(cls, a) for a in attrs] == got  # (cached answers, the same)


def test_calls_attr_skips_the_function_test_after_the_first():
    from adopter.structure.layers import LayerTyper
    from adopter.structure.names import collect_names

    tree = ast.parse(CALLS_ATTR_SOURCE)
    names = collect_names(tree, None)
    names.functions = _CountingFunctions(names.functions)
    typer = LayerTyper(names, tree)
    typer.lines = CALLS_ATTR_SOURCE.split("\n")
    cls = names.classes["Mlp"]
    _CountingFunctions.reads = 0
    answers = [typer.calls_attr(cls, a) for a in ("fc", "norm", "gain", "act")]
    assert answers == [False, False, False, True]
    assert _CountingFunctions.reads == 1  # 4 on the old code: one per attribute mentioned, not called


# -- FlowBuilder._uses_of and _keys: _name_value written out, a list for the set --------------------

def _old_uses_of(builder, expr, ctx):
    keys = set()
    for sub in graph_mod.walk(expr):
        if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Load):
            if ctx.chunked and sub.id in ctx.chunked:
                keys.update(ctx.chunked[sub.id])
                continue
            value = builder._name_value(sub.id, ctx)
            if isinstance(value, Ref):
                keys.add(value.key)
        elif isinstance(sub, ast.Attribute) and isinstance(sub.value, ast.Name) and sub.value.id == "self":
            keys.add("self." + sub.attr)
    return frozenset(keys)


def test_uses_of_as_before(monkeypatch):
    from adopter.structure.graph import Const, _Ctx

    structure = module_structure(ast.parse(SOURCE), None, SOURCE, "block.py")
    cls = structure.classes["Block"]
    builder = FlowBuilder(structure.names, cls.info, structure.lines, None)
    exprs = [ast.parse(e, mode="eval").body for e in (
        "x + y * self.w", "f(a, b=c)[d].e", "x if p else q", "[h for h in hs if h > k]", "c", "c[0] + z",
        "self.fc(x).weight", "-n", "lambda t: t + u", "p.q.r", "{'k': v, **rest}")]
    contexts = []
    for instance in (0, 2):
        for params in ({}, {"x": Ref("h@1", "h"), "p": Const(3), "q": Ref("%7", ""), "u": Const(None)}):
            for chunked in ({}, {"c": ("c#0", "c#1")}):
                contexts.append(_Ctx(instance=instance, func="Block.forward", params=dict(params),
                                     chunked=dict(chunked)))
    calls = {"n": 0}
    original = FlowBuilder._name_value

    def counted(self, name, ctx):
        calls["n"] += 1
        return original(self, name, ctx)

    for ctx in contexts:
        for expr in exprs:
            new = builder._uses_of(expr, ctx)
            monkeypatch.setattr(FlowBuilder, "_name_value", counted)
            before = calls["n"]
            old = _old_uses_of(builder, expr, ctx)
            assert calls["n"] >= before  # (the old algorithm asks _name_value)
            monkeypatch.setattr(FlowBuilder, "_name_value", original)
            assert new == old, (ast.unparse(expr), ctx.instance, ctx.params, ctx.chunked)
            assert list(new) == list(old)  # the same insertion order, the same iteration order
    monkeypatch.setattr(FlowBuilder, "_name_value", counted)
    calls["n"] = 0
    for ctx in contexts:
        for expr in exprs:
            builder._uses_of(expr, ctx)
    assert calls["n"] == 0  # the old _uses_of asked it for every name loaded


def test_keys_as_before():
    from adopter.structure.graph import Const, _keys

    values = [Ref("a", "a"), Const(1), Ref("b@2", "b"), Ref("a", "a"), Const(None), Ref("%3", "")]
    for n in range(len(values) + 1):
        part = values[:n]
        old = frozenset(v.key for v in part if isinstance(v, Ref))
        assert _keys(part) == old and list(_keys(part)) == list(old)
        assert _keys(iter(part)) == old  # (a generator of values too)


# -- FlowBuilder._new: nodes made from the defaults' template, not through __init__ ---------------

def test_new_nodes_are_those_init_makes(monkeypatch):
    from adopter.structure.graph import Node

    structure = module_structure(ast.parse(SOURCE), None, SOURCE, "block.py")
    cls = structure.classes["Block"]
    inits = {"n": 0}
    original = Node.__init__

    def counted(self, *args, **kwargs):
        inits["n"] += 1
        original(self, *args, **kwargs)

    monkeypatch.setattr(Node, "__init__", counted)
    flow = FlowBuilder(structure.names, cls.info, structure.lines, None).build(cls.functions["forward"],
                                                                               "Block.forward")
    assert inits["n"] == 0  # one per node on the old code
    monkeypatch.setattr(Node, "__init__", original)
    assert len(flow.nodes) > 15
    def values(node):  # (Node is slotted since speed14: its fields, in field order)
        return [(name, getattr(node, name)) for name in Node.__record_fields__]

    for node in flow.nodes:
        again = Node(**dict(values(node)))  # __init__ with the same values: the same attributes
        assert values(again) == values(node)
        assert again == node and repr(again) == repr(node)
    assert any(n.inlined for n in flow.nodes) and any(not n.inlined for n in flow.nodes)


def test_new_refuses_what_init_refused():
    import pytest

    from adopter.structure.graph import _Ctx

    structure = module_structure(ast.parse(SOURCE), None, SOURCE, "block.py")
    builder = FlowBuilder(structure.names, structure.classes["Block"].info, structure.lines, None)
    ctx = _Ctx(instance=0, func="Block.forward")
    node, frontier = builder._new(ctx, [], kind="entry")
    assert node.id == 0 and frontier == [(0, None)]
    for bad in ({"op": "+"}, {"kind": "op", "no_such_field": 1}, {"kind": "op", "func": "other"},
                {"kind": "op", "id": 7}, {"kind": "op", "inlined": True}):
        with pytest.raises(TypeError):
            builder._new(ctx, frontier, **bad)
    assert len(builder.nodes) == 1


def test_relevant_rules_orders_are_whole_tuples():
    rule = _TriggerRule({f"w{i}" for i in range(6)})
    before = engine._TRIGGER_ORDER.get(rule.triggers)
    engine.relevant_rules("x w4 y", [rule])
    order = engine._TRIGGER_ORDER[rule.triggers]
    assert isinstance(order, tuple) and order[0] == "w4" and sorted(order) == sorted(rule.triggers)
    if before is not None:
        assert before is not order or before[0] == "w4"
    kept = order
    engine.relevant_rules("w4 w1", [rule])  # found first: the order is not replaced
    assert engine._TRIGGER_ORDER[rule.triggers] is kept
