"""speed19: exact speed-ups compared with the algorithms they replace (written out here as
the old code was), on fixtures of ours that reach the unusual AST field shapes."""
import ast
import sys

from adopter.structure import graph

# Fixture: every kind of list field that holds something other than nodes (dict unpacking's
# None key, global/nonlocal names, a class pattern's keyword names), comparison operators,
# f-strings, comprehensions, lambdas, match statements, decorators, starred and slices.
SOURCE = '''
import torch as T
from torch import nn

@decorate(1, k=2)
class Block(nn.Module):
    counter = 0

    def forward(self, x, *rest, scale=None, **extra):
        global counter
        merged = {**extra, "a": 1, **{"b": x}}
        def inner():
            nonlocal scale
            scale = 2
        if 0 < x.size(-1) <= 8 and x is not None:
            y = [v * 2 for v in rest if v] + list({k: v for k, v in merged.items()})
        else:
            y = (lambda t, *, u=1: t + u)(x)
        match y:
            case Point(x=0, y=yy) if yy:
                pass
            case [a, *others]:
                pass
            case {"k": v, **kw}:
                pass
        s = f"{x!r:>{scale}} {y}"
        z = x[1:2, ..., None] @ x.mT
        try:
            w = -z ** 2
        except (ValueError, TypeError) as err:
            raise RuntimeError from err
        finally:
            del z
        with T.no_grad() as g, open("f") as h:
            async def f():
                async for q in g:
                    await q
        return (yield w)
'''


def _old_children(node):
    names = tuple(f for f in type(node)._fields if f not in graph._SKIP_FIELDS)
    out = []
    for name in names:
        value = getattr(node, name, None)
        if type(value) is list:
            out.extend(v for v in value if isinstance(v, ast.AST))
        elif isinstance(value, ast.AST):
            out.append(value)
    return out


def _old_walk(node):
    stack = [node]
    while stack:
        node = stack.pop()
        yield node
        stack.extend(_old_children(node))


def test_walk_and_children_same_nodes_same_order():
    tree = ast.parse(SOURCE)
    kinds = {type(n) for n in ast.walk(tree)}
    # the fixture reaches the odd shapes
    assert {ast.Dict, ast.Global, ast.Nonlocal, ast.MatchClass, ast.Compare, ast.JoinedStr} <= kinds
    for node in ast.walk(tree):
        assert graph.children(node) == _old_children(node)
        assert [id(n) for n in graph.walk(node)] == [id(n) for n in _old_walk(node)]
    # None keys and strings are not children; the comparison operators are (as before)
    merged = next(n for n in ast.walk(tree) if isinstance(n, ast.Dict) and None in n.keys)
    assert None not in graph.children(merged)
    compare = next(n for n in ast.walk(tree) if isinstance(n, ast.Compare))
    assert any(isinstance(c, ast.cmpop) for c in graph.children(compare))
    glob = next(n for n in ast.walk(tree) if isinstance(n, ast.Global))
    assert graph.children(glob) == []


def test_walk_sees_a_node_mutated_after_it_was_yielded():
    """Children are read after the node is yielded (as before): a caller that changes a node
    while walking sees the new children."""
    tree = ast.parse("f(a)\n")
    seen = []
    for node in graph.walk(tree):
        seen.append(type(node).__name__)
        if isinstance(node, ast.Call):
            node.args = [ast.Name(id="b", ctx=ast.Load())]
    old = ast.parse("f(a)\n")
    seen_old = []
    for node in _old_walk(old):
        seen_old.append(type(node).__name__)
        if isinstance(node, ast.Call):
            node.args = [ast.Name(id="b", ctx=ast.Load())]
    assert seen == seen_old


def test_walk_makes_no_call_per_node(monkeypatch):
    """The work skipped: walk no longer goes through children() for every node (on the old
    code this counted one call per node visited)."""
    calls = []
    real = graph.children
    monkeypatch.setattr(graph, "children", lambda node: calls.append(node) or real(node))
    nodes = list(graph.walk(ast.parse(SOURCE)))
    assert len(nodes) > 100
    assert calls == []


# --- Matcher._candidate_roots: each root's words read once per class ----------------------

ROOTS = '''
import torch
import torch.nn.functional as F
from torch import nn


def helper(q, k):
    return torch.softmax(q @ k.transpose(-2, -1), dim=-1)


class Attn(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.drop = nn.Dropout(0.1)
        self.norm = nn.LayerNorm(d)
        self.act = nn.GELU()
        self.fc = nn.Linear(d, d)

    def forward(self, q, k, v):
        w = self.drop(helper(q, k))
        return self.norm(w @ v + q)

    def mlp(self, x):
        return self.fc(self.act(x))

    def plain(self, x):
        return x.float().mean(-1)


class Other(nn.Module):
    def forward(self, x):
        return F.silu(x[..., :4]) * x[..., 4:]
'''


def _old_candidate_roots(matcher, cls, module):
    """Matcher._candidate_roots as it was (no cache), the reference."""
    from adopter.match import _word_group
    roots = cls.all_roots if matcher.scope == "file" else cls.roots
    groups = {}
    for key in matcher.word_order:
        if not roots:
            break
        group = _word_group(cls, module, key, groups)
        roots = [r for r in roots if not group.isdisjoint(cls.words(r))]
    return roots


def test_candidate_roots_same_as_before_and_words_read_once(monkeypatch):
    from adopter.engine import matchers_for
    from adopter.ruleset import load_rules
    from adopter.structure import model as model_mod
    from adopter.structure.model import module_structure

    matchers = [m for rule in load_rules() for m in matchers_for(rule)]
    reference = module_structure(ast.parse(ROOTS), None, ROOTS, "m.py")
    expected = {(i, name): _old_candidate_roots(m, cls, reference)
                for i, m in enumerate(matchers) for name, cls in reference.classes.items()}
    assert any(expected.values()) and not all(expected.values())  # matches and near-misses

    calls = []
    real = model_mod.ClassStructure.words
    monkeypatch.setattr(model_mod.ClassStructure, "words",
                        lambda self, name, *rest: calls.append((self.name, name, *rest)) or real(self, name, *rest))
    structure = module_structure(ast.parse(ROOTS), None, ROOTS, "m.py")
    got = {(i, name): m._candidate_roots(cls, structure)
           for i, m in enumerate(matchers) for name, cls in structure.classes.items()
           if cls.roots or cls.all_roots}
    for key, roots in got.items():
        assert roots == expected[key], key
    # once per (class, scope, root) from the matcher (words() recursing into helpers adds its own)
    direct = [c for c in calls if len(c) == 2]
    assert len(direct) <= sum(len(c.roots) + len(c.all_roots) for c in structure.classes.values())


# --- Matcher._search: the feasibility memo read before calling the test ------------------

ATTENTION = '''
import math
import torch
from torch import nn


class SelfAttention(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.heads = heads
        self.q = nn.Linear(d, d)
        self.k = nn.Linear(d, d)
        self.v = nn.Linear(d, d)
        self.drop = nn.Dropout(0.1)

    def forward(self, x, mask=None):
        b, n, d = x.shape
        q = self.q(x).view(b, n, self.heads, -1).transpose(1, 2)
        k = self.k(x).view(b, n, self.heads, -1).transpose(1, 2)
        v = self.v(x).view(b, n, self.heads, -1).transpose(1, 2)
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(q.size(-1))
        if mask is not None:
            scores = scores.masked_fill(mask == 0, float("-inf"))
        probs = self.drop(scores.softmax(dim=-1))
        out = torch.matmul(probs, v).transpose(1, 2).reshape(b, n, d)
        return out


class NotAttention(nn.Module):
    def forward(self, a, b):
        s = torch.matmul(a, b.transpose(-1, -2))
        return s.softmax(dim=-1).sum(-1)  # no product with values: not a site
'''


def _findings(text, rules):
    from adopter.engine import analyze
    return [f.as_dict() for f in analyze(text, "m.py", rules).findings]


def test_search_reads_the_feasibility_memo(monkeypatch):
    from adopter import match as match_mod
    from adopter.ruleset import load_rules

    rules = load_rules()
    expected = _findings(ATTENTION, rules)
    assert [f["rule"] for f in expected].count("ADP010") == 1  # SelfAttention, not NotAttention

    calls, kept = [], []
    real = match_mod.Matcher._feasibility

    def counting(self, flow):
        found = real(self, flow)
        if found is None:
            return None
        feasible, allowed, memo, *rest = found  # (speed20: and the nodes any step allows)
        kept.append(memo)  # alive to the end: each memo's id names one flow's test

        def counted(pos, index):
            calls.append((sys._getframe(1).f_code.co_name, id(memo), pos, index))
            return feasible(pos, index)
        return counted, allowed, memo, *rest

    monkeypatch.setattr(match_mod.Matcher, "_feasibility", counting)
    assert _findings(ATTENTION, rules) == expected
    # the search asks the test only for states whose answer is not in the memo yet (on the old
    # code it asked again for every state popped: 7 repeats on this fixture); a step's options
    # still call it
    assert calls
    searched = [c for c in calls if c[0] == "_search"]
    assert searched and len(searched) == len(set(searched))
