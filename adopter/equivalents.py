"""Spellings of one computation that take a different shape of steps.

The canonical table (:mod:`adopter.structure.ops`) makes every spelling of *one* operation one
graph node.  Some computations are also written with *other* operations -- ``x / sqrt(v)`` is
``x * rsqrt(v)``, ``x * x`` and ``x.square()`` are ``x ** 2`` -- or with their independent
steps in another order (``up = up_proj(x)`` before ``gate_proj(x)``: both feed one product).
A rule states its computation once; this module derives the other shapes from the table's
``EQUIVALENT_STEPS`` and from the pattern's own data flow, so every rule benefits:

* :func:`respellings`: rewrite a fragment of canonical steps into each equivalent fragment
  (repeatedly, so ``x / sqrt(mean(x * x))`` follows from ``x * rsqrt(mean(x ** 2))``);
* :func:`orders`: the orders of the steps that keep every step after the steps it reads
  (bounded: a pattern with many independent steps keeps only its written order).

Variants are computed when a rule file is parsed (the rule cache keeps them), never on the
check path.  A variant keeps the variables the rule's target reads, so the fix renders the
same target from it.
"""

from __future__ import annotations

from .records import replace
from functools import lru_cache

from .dsl import Lit, Pattern, PNode, Temp, Var, Wild
from .match import canonical_pattern
from .structure.ops import EQUIVALENT_STEPS

MAX_VARIANTS = 24  # per authored pattern, spellings and orders together
MAX_ORDERS = 6  # orders of one spelling; more means many independent steps: keep the written one


@lru_cache(maxsize=None)
def _rewrites() -> tuple[tuple[tuple[PNode, ...], tuple[PNode, ...]], ...]:
    from .dsl import parse_pattern

    pairs = []
    for canonical, others in EQUIVALENT_STEPS:
        left = canonical_pattern(parse_pattern(canonical)).nodes
        for other in others:
            right = canonical_pattern(parse_pattern(other)).nodes
            pairs.append((left, right))
            pairs.append((right, left))
    return tuple(pairs)


def variants(pattern: Pattern, keep: frozenset[str] = frozenset()) -> list[Pattern]:
    """Patterns computing what ``pattern`` computes, written otherwise (``pattern`` itself not
    included); each binds every variable of ``keep`` (the target's)."""
    start = canonical_pattern(pattern)
    seen = {start.nodes}
    spelled = [start]
    queue = [start]
    while queue and len(spelled) < MAX_VARIANTS:
        current = queue.pop(0)
        for new in respellings(current):
            if new.nodes not in seen and keep <= new.variables:
                seen.add(new.nodes)
                spelled.append(new)
                queue.append(new)
    out: list[Pattern] = []
    found = {start.nodes}
    for spelling in spelled:
        for ordered in [spelling, *orders(spelling)]:
            if ordered.nodes not in found and len(out) < MAX_VARIANTS:
                found.add(ordered.nodes)
                out.append(ordered)
    return out


# ----------------------------------------------------------------------------- respelling


def _value_of(nodes, index: int):
    node = nodes[index]
    return node.outs[0] if len(node.outs) == 1 else Temp(index)


def _unify(left: PNode, node: PNode, env: dict, lhs, nodes, lhs_start: int) -> dict | None:
    if node.optional or left.op != node.op or left.method != node.method or left.rest != node.rest \
            or left.absent != node.absent or left.refused != node.refused or (left.layer is None) != (node.layer is None):
        return None
    if len(left.args) != len(node.args) or len(left.kwargs) != len(node.kwargs):
        return None
    from .structure.canon import TABLE

    orders = [node.args]
    op = TABLE.ops.get(node.op) if node.canonical else None
    if op is not None and op.commutative and len(node.args) == 2:
        orders.append(node.args[::-1])
    for args in orders:
        trial = dict(env)
        pairs = list(zip(left.args, args)) + [(lv, dict(node.kwargs).get(k, _MISSING))
                                               for k, lv in left.kwargs]
        if left.layer is not None:
            pairs.append((left.layer, node.layer))
        if all(_bind(lv, v, trial, lhs, lhs_start) for lv, v in pairs):
            return trial
    return None


_MISSING = object()


def _bind(left, value, env: dict, lhs, lhs_start: int) -> bool:
    if value is _MISSING:
        return False
    if isinstance(left, Var):
        # a fragment's variables stand for tensors the pattern names, not for its literals
        # (``1 / sqrt(v)`` is not ``$x / sqrt(v)`` to be rewritten as ``1 * rsqrt(v)``)
        if not isinstance(value, (Var, Temp)):
            return False
        if left.name in env:
            return env[left.name] == value
        env[left.name] = value
        return True
    if isinstance(left, Temp):  # the value of an earlier step of the fragment
        return value == env.get(f"%{left.index}")
    if isinstance(left, Lit):
        return isinstance(value, Lit) and value.value == left.value and type(value.value) is type(left.value)
    return left == value


def respellings(pattern: Pattern) -> list[Pattern]:
    """Every pattern one rewrite of ``EQUIVALENT_STEPS`` makes of ``pattern``."""
    out = []
    nodes = pattern.nodes
    for lhs, rhs in _rewrites():
        width = len(lhs)
        for start in range(len(nodes) - width + 1):
            env: dict = {}
            ok = True
            for offset, left in enumerate(lhs):
                found = _unify(left, nodes[start + offset], env, lhs, nodes, start)
                if found is None:
                    ok = False
                    break
                env = found
                # the fragment's own values: its outputs (a variable or a nested step's temp)
                env[f"%{offset}"] = _value_of(nodes, start + offset)
                for out_var in left.outs:
                    if isinstance(out_var, Var):
                        if out_var.name in env and env[out_var.name] != _value_of(nodes, start + offset):
                            ok = False
                        env[out_var.name] = _value_of(nodes, start + offset)
            if not ok:
                continue
            new = _splice(nodes, start, width, lhs, rhs, env)
            if new is not None:
                out.append(Pattern(new, pattern.text))
    return out


def _splice(nodes, start: int, width: int, lhs, rhs, env: dict):
    """``nodes`` with ``nodes[start:start+width]`` (matched by ``lhs`` under ``env``) replaced by
    ``rhs``, or None when a value internal to the fragment is read outside it."""
    last = start + width - 1
    internal = {_value_of(nodes, i) for i in range(start, last)}
    # A value the fragment computes before its last step is gone in the other spelling.
    for index, node in enumerate(nodes):
        if start <= index <= last:
            continue
        if internal & {*node.args, *(v for _, v in node.kwargs)}:
            return None
    grow = len(rhs) - width
    result_value = _value_of(nodes, last)

    def shift(value):
        if isinstance(value, Temp):
            if value.index == last:
                return Temp(start + len(rhs) - 1)
            if value.index >= start + width:
                return Temp(value.index + grow)
        return value

    new_rhs = []
    local: dict = {}
    anchor = nodes[start]
    for offset, node in enumerate(rhs):
        position = start + offset

        def value(v):
            if isinstance(v, Temp):
                return local[f"%{v.index}"]
            if isinstance(v, Var):
                if v.name in local:
                    return local[v.name]
                return env.get(v.name, v)
            return v

        final = offset == len(rhs) - 1
        if final:
            outs = nodes[last].outs
        else:
            outs = ()
        args = tuple(value(a) for a in node.args)
        kwargs = tuple((k, value(v)) for k, v in node.kwargs)
        layer = value(node.layer) if node.layer is not None else None
        new_rhs.append(replace(node, args=args, kwargs=kwargs, layer=layer, outs=outs,
                               line=anchor.line, column=anchor.column))
        produced = Temp(position) if not outs else outs[0]
        if final:
            produced = result_value if isinstance(result_value, Var) else Temp(position)
        local[f"%{offset}"] = produced
        for out_var in node.outs:
            if isinstance(out_var, Var):
                local[out_var.name] = produced
    head = [replace(n, args=tuple(shift(a) for a in n.args), kwargs=tuple((k, shift(v)) for k, v in n.kwargs))
            for n in nodes[:start]]
    tail = [replace(n, args=tuple(shift(a) for a in n.args), kwargs=tuple((k, shift(v)) for k, v in n.kwargs))
            for n in nodes[start + width:]]
    return tuple(head + new_rhs + tail)


# ----------------------------------------------------------------------------- orders


def _reads(node: PNode) -> set:
    values = {*node.args, *(v for _, v in node.kwargs)}
    if node.layer is not None:
        values.add(node.layer)
    return {v for v in values if isinstance(v, (Var, Temp))}


def orders(pattern: Pattern) -> list[Pattern]:
    """The other orders of ``pattern``'s steps in which each step still follows the steps whose
    values it reads; a step that assigns nothing (a helper-call marker), an optional step, and
    a step reading a variable no step assigns stay where they are relative to all others.
    Empty when there are more than ``MAX_ORDERS`` orders."""
    nodes = pattern.nodes
    n = len(nodes)
    if n < 3:
        return []
    defined = {}
    for index, node in enumerate(nodes):
        defined[Temp(index)] = index
        for out in node.outs:
            if isinstance(out, Var):
                defined.setdefault(out, index)
    before: list[set[int]] = [set() for _ in range(n)]
    pinned = {i for i, node in enumerate(nodes)
              if not node.outs and not any(Temp(i) in _reads(other) for other in nodes)
              or node.optional}
    for j, node in enumerate(nodes):
        for value in _reads(node):
            i = defined.get(value)
            if i is not None and i < j:
                before[j].add(i)
    for p in pinned:
        for i in range(n):
            if i < p:
                before[p].add(i)
            elif i > p:
                before[i].add(p)
    found: list[tuple[int, ...]] = []

    def walk(prefix: list[int], left: set[int]) -> bool:
        if len(found) > MAX_ORDERS + 1:
            return False
        if not left:
            found.append(tuple(prefix))
            return True
        for i in sorted(left):
            if before[i] <= set(prefix):
                prefix.append(i)
                left.remove(i)
                walk(prefix, left)
                left.add(i)
                prefix.pop()
        return True

    walk([], set(range(n)))
    if len(found) > MAX_ORDERS + 1:
        return []
    out = []
    for order in found:
        if order == tuple(range(n)):
            continue
        position = {old: new for new, old in enumerate(order)}

        def move(value):
            return Temp(position[value.index]) if isinstance(value, Temp) else value

        out.append(Pattern(tuple(
            replace(nodes[old], args=tuple(move(a) for a in nodes[old].args),
                    kwargs=tuple((k, move(v)) for k, v in nodes[old].kwargs))
            for old in order), pattern.text))
    return out
