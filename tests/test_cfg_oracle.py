"""Our control-flow graphs against python-graphs' (the issue's oracle), on real forwards.

python-graphs builds a CFG per function from source; ours is built for matching (helpers
inlined, loop bodies taken once).  They must agree on which simple statements of a method
can run after which: for each pair (a, b) of assignment / expression / return statements,
"b is reachable from a".  python-graphs keeps loop back edges, so its graph is first turned
into our model of a loop: each back edge is replaced by edges to the loop's exits.

python-graphs drops ``match``, ``except*`` and ``async def`` bodies, so methods with those
are left to the unit tests in test_structure.py.  The corpus is the ``transformers==4.34.0``
package the dev extra installs (read as text, never imported).
"""

from __future__ import annotations

import ast
import os
import textwrap
from importlib import metadata
from pathlib import Path

import pytest

if os.environ.get("CI"):
    import python_graphs  # noqa: F401  (CI must run the oracle, not skip it)
else:
    pytest.importorskip("python_graphs")
import gast  # noqa: E402
from python_graphs import control_flow  # noqa: E402

from adopter.structure.bindings import bind_class, collect_class  # noqa: E402
from adopter.structure.graph import FlowBuilder  # noqa: E402
from adopter.structure.names import collect_names  # noqa: E402

SIMPLE = (ast.Assign, ast.AnnAssign, ast.AugAssign, ast.Expr, ast.Return)
GAST_SIMPLE = tuple(getattr(gast, t.__name__) for t in SIMPLE)
UNSUPPORTED = (ast.Match, ast.AsyncFunctionDef, ast.AsyncFor, ast.AsyncWith, ast.Lambda) + (
    (ast.TryStar,) if hasattr(ast, "TryStar") else ()
)


def _closure(succ, node):
    seen, todo = set(), list(succ[node])
    while todo:
        other = todo.pop()
        if other not in seen:
            seen.add(other)
            todo.extend(succ[other])
    return seen


def _without_back_edges(starts, nodes):
    """Depth-first from the entries: an edge into a node still on the stack closes a loop."""
    succ = {n: [] for n in nodes}
    state = {}
    for start in starts:
        if start in state:
            continue
        state[start] = "open"
        stack = [(start, iter(list(start.next)))]
        while stack:
            node, edges = stack[-1]
            nxt = next(edges, None)
            if nxt is None:
                state[node] = "done"
                stack.pop()
            elif state.get(nxt) != "open":
                succ[node].append(nxt)
                if nxt not in state:
                    state[nxt] = "open"
                    stack.append((nxt, iter(list(nxt.next))))
    return succ


def _loops_taken_once(cfg, nodes):
    dag = _without_back_edges(list(cfg.get_enter_control_flow_nodes()) + [n for n in nodes if not n.prev], nodes)
    sources: dict = {}
    for node in nodes:
        for head in node.next:
            if head not in dag[node]:
                sources.setdefault(head, set()).add(node)

    def exits(head, seen=()):
        out = []
        for nxt in head.next:
            if nxt in dag[head]:
                if not (({nxt} | _closure(dag, nxt)) & sources[head]):
                    out.append(nxt)
            elif nxt not in seen:  # the loop ends an outer loop's body: leave that one too
                out.extend(exits(nxt, seen + (head,)))
        return out

    succ = {n: list(dag[n]) for n in nodes}
    for head, tails in sources.items():
        for tail in tails:
            succ[tail].extend(e for e in exits(head) if e not in succ[tail])
    return succ


def theirs(lines: list[str], func: ast.FunctionDef) -> dict[int, set[int]]:
    offset = func.lineno - 1
    cfg = control_flow.get_control_flow_graph(textwrap.dedent("\n".join(lines[offset:func.end_lineno])))
    nodes = list(cfg.get_control_flow_nodes())
    line = {n: n.instruction.node.lineno + offset for n in nodes if isinstance(n.instruction.node, GAST_SIMPLE)}
    succ = _loops_taken_once(cfg, nodes)
    return {line[n]: {line[m] for m in _closure(succ, n) if m in line} for n in line}


def ours(names, info, lines: list[str], func: ast.FunctionDef) -> dict[int, set[int]]:
    flow = FlowBuilder(names, info, lines).build(func, func.name)
    simple = {n.lineno for n in ast.walk(func) if isinstance(n, SIMPLE)}

    def line_of(node):
        if node.inlined or node.stmt is None or node.kind in ("entry", "exit") or node.stmt[0] not in simple:
            return None
        return node.stmt[0]

    succ = {n.id: [s for s, _ in flow.out[n.id]] for n in flow.nodes}
    reach: dict[int, set[int]] = {}
    for node in flow.nodes:
        line = line_of(node)
        if line is not None:
            found = {line_of(flow.nodes[m]) for m in _closure(succ, node.id)} - {None}
            reach.setdefault(line, set()).update(found)
    return reach


def disagreements(text: str, method: str = "forward") -> list[str]:
    tree = ast.parse(text)
    lines = text.split("\n")
    names = collect_names(tree, None)
    infos = {name: collect_class(node, names) for name, node in names.classes.items()}
    for info in infos.values():
        bind_class(info, infos, names)
    out = []
    for class_name, info in infos.items():
        func = info.methods.get(method)
        if func is None or any(isinstance(n, UNSUPPORTED) for n in ast.walk(func)):
            continue
        a, b = theirs(lines, func), ours(names, info, lines, func)
        common = set(a) & set(b)
        for line in sorted(common):
            only_theirs = sorted((a[line] & common) - b[line] - {line})
            only_ours = sorted((b[line] & common) - a[line] - {line})
            if only_theirs or only_ours:
                out.append(f"{class_name}.{method} line {line}: python-graphs only {only_theirs}, ours only {only_ours}")
    return out


def _corpus() -> list[Path]:
    try:
        root = Path(metadata.distribution("transformers").locate_file("transformers/models"))
    except metadata.PackageNotFoundError:
        return []
    return sorted(p for p in root.glob("*/modeling_*.py") if p.name == f"modeling_{p.parent.name}.py")


CORPUS = _corpus()


def test_the_corpus_is_there():
    assert len(CORPUS) >= 190, "the dev extra installs transformers==4.34.0"


@pytest.mark.parametrize("path", CORPUS, ids=[p.parent.name for p in CORPUS])
def test_forward_cfg_agrees_with_python_graphs(path: Path):
    assert disagreements(path.read_text(encoding="utf-8")) == []


FIXTURE = '''
import torch
from torch import nn


class Block(nn.Module):
    def forward(self, x, flags):
        y = x + 1
        for flag in flags:
            if flag:
                y = y * 2
                continue
            y = y - 1
            if y is None:
                break
        else:
            y = y + 3
        while y is not None:
            z = y
            y = None
        try:
            w = torch.relu(y)
        except ValueError:
            w = x
        else:
            w = w + 1
        finally:
            v = w
        with torch.no_grad():
            u = v * 2
        if x is None:
            return u
        elif flags:
            u = u + 1
        else:
            raise RuntimeError("no")
        return u + z
'''


def test_loops_branches_try_and_with_agree():
    assert disagreements(FIXTURE) == []


def test_the_oracle_sees_a_wrong_edge(monkeypatch):
    """A builder with a wrong edge (here: every if runs its body, then its else) is caught."""

    def body_then_else(self, stmt, frontier, ctx):
        return self._body(stmt.body + stmt.orelse, frontier, ctx)

    monkeypatch.setattr(FlowBuilder, "_if", body_then_else)
    assert any("Block.forward line 8: python-graphs only [13" in line for line in disagreements(FIXTURE))
