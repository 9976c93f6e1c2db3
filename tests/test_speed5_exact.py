"""speed5: cheaper flow building, exactly.

``ranks._Ranks.solve`` works a node's rank out again only when the rank or an assignment's
rank of a key the node reads changed since (``_read_keys``); the fixed point it reaches is
compared here with the old algorithm (every node's rank worked out in every round), written
out below, on fixtures of ours whose ranks need more than one round.
"""

from __future__ import annotations

import ast
import textwrap

import pytest

from adopter.structure import model, ranks

TOP = ranks.TOP


def _old_solve(self) -> None:
    """ranks._Ranks.solve as it was before speed5 (bf3573f)."""
    for _ in range(6):
        changed = False
        for key, nodes in self.defined.items():
            found = TOP
            for node in nodes:
                rank = self.node_rank(node) if len(node.outs) == 1 and node.outs[0].key == key else None
                site = (node.id, key)
                if self.reach is not None and self.def_rank[site] is not None and self.def_rank[site] != rank:
                    self.def_rank[site] = rank
                    changed = True
                if found is None or rank == TOP:
                    continue
                if rank is None:
                    found = None
                elif found == TOP:
                    found = rank
                elif found != rank:
                    found = None
                    self.conflicts.add(key)
            if found != self.rank[key] and self.rank[key] is not None:
                self.rank[key] = found
                changed = True
        if not changed:
            break
    for key, rank in self.rank.items():
        if rank == TOP:
            self.rank[key] = None
    for site, rank in self.def_rank.items():
        if rank == TOP:
            self.def_rank[site] = None


# ``y`` reads ``a`` before the loop's later statement assigns it: in the first round a's rank
# is not known yet (TOP), so y's is TOP; a is then 3-D, and y (4-D) is known only in round two.
LOOP_CARRIED = '''
import torch
from torch import nn


class Block(nn.Module):
    def forward(self, x):
        y = x
        for i in range(2):
            if i:
                y = a.unsqueeze(0)
            a = x.view(2, 3, 4)
        w = y.softmax(dim=3)
        return w.transpose(1, 2)
'''

# a name assigned twice, read where each assignment reaches; a chain of reads across rounds
REACHING = '''
import torch
from torch import nn


class Attention(nn.Module):
    def forward(self, qkv, mask):
        B, T, C = qkv.shape
        q, k, v = qkv.split(C // 3, dim=2)
        for _ in range(2):
            s = torch.bmm(q, k.transpose(1, 2))
            s = s + t
            t = mask.view(B, T, T)
            q = q.view(B, T, C // 3)
        w = s.softmax(dim=2)
        return torch.bmm(w, v)
'''

# ranks that never settle the same way: a branch that unsqueezes (a conflict)
CONFLICT = '''
import torch
from torch import nn


class Block(nn.Module):
    def forward(self, x, flag):
        h = x.view(2, 3, 4)
        for _ in range(3):
            g = h * 2
            if flag:
                h = g.unsqueeze(1)
            else:
                h = g.view(2, 3, 4)
        return h.softmax(dim=2).transpose(0, 1)
'''

FIXTURES = {"loop": LOOP_CARRIED, "reaching": REACHING, "conflict": CONFLICT}


def _solved(source: str, monkeypatch, solve) -> list[tuple]:
    """(rank, def_rank, conflicts) of each rank pass the fixture's flows run, with ``solve``;
    and the number of node_rank calls."""
    out: list[tuple] = []
    calls = [0]
    node_rank = ranks._Ranks.node_rank

    def counted(self, node):
        calls[0] += 1
        return node_rank(self, node)

    def recorded(self):
        solve(self)
        out.append((dict(self.rank), dict(self.def_rank), set(self.conflicts)))

    with monkeypatch.context() as m:
        m.setattr(ranks._Ranks, "node_rank", counted)
        m.setattr(ranks._Ranks, "solve", recorded)
        text = textwrap.dedent(source)
        structure = model.module_structure(ast.parse(text), None, text, "m.py")
        for cls in structure.classes.values():
            for root in cls.functions:
                cls.flow(root)
    return out, calls[0]


@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_solve_reaches_the_old_fixed_point_with_fewer_node_ranks(name, monkeypatch):
    new, new_calls = _solved(FIXTURES[name], monkeypatch, ranks._Ranks.solve)
    old, old_calls = _solved(FIXTURES[name], monkeypatch, _old_solve)
    assert new, "the fixture runs the rank pass"
    assert new == old
    assert new_calls < old_calls  # (every round after the first repeated them all)


@pytest.mark.parametrize("name", ["loop", "reaching"])
def test_without_invalidation_the_fixed_point_differs(name, monkeypatch):
    """Near-miss of the memo: a node whose read keys are not looked at (never worked out
    again) keeps its first-round rank, and the answer is not the old one -- so the keys read
    are what keeps the memo exact on these fixtures."""
    old, _ = _solved(FIXTURES[name], monkeypatch, _old_solve)
    monkeypatch.setattr(ranks, "_read_keys", lambda node: [])
    stale, _ = _solved(FIXTURES[name], monkeypatch, ranks._Ranks.solve)
    assert stale != old


def test_read_keys_lists_args_view_args_and_view_keywords():
    from adopter.structure.canon import View
    from adopter.structure.graph import Const, Node, Ref

    a, b, m = Ref("a", "a"), Ref("b", "b"), Ref("m", "m")
    view = View(args=(b,), kwargs=(("mask", m), ("value", Const(0.0))), arg_spans=(None,), kwarg_spans=(None, None))
    node = Node(id=0, kind="method", op="masked_fill", args=(a, Const(1)), view=view)
    assert ranks._read_keys(node) == ["a", "b", "m"]
    assert ranks._read_keys(Node(id=1, kind="op", op="+", args=(Const(1), Const(2)))) == []
