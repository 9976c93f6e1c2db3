"""The pattern language of rules.

A pattern is a short Python-like program: one statement per line (or separated by ``;``),
each an assignment or a bare expression.  Abstract variables start with ``$`` and bind, on
first use, to a concrete name or value of the analysed code; every later use must bind to
the same thing, which is how a pattern states data flow.  ``_`` matches any single value
and ``...`` in an argument list matches any remaining arguments; ``!name`` says the code
must not pass the keyword ``name`` (nor ``**kwargs``, which might hold it), and
``!name=literal`` (in init patterns) that it must not pass it as that literal.  A statement
prefixed with ``?`` is an optional step: when the code has no such step, its output is its
first input.

    $d = $drop($x)                 # a call of the layer bound to $drop
    $s = $d + $r                   # tensor add ('+' and '*' match commutatively)
    $y = $ln($s)
    $p = torch.nn.functional.softmax($a, dim=-1)   # literal keyword must match

Nested expressions are unchained into temporaries exactly as the analysed code is, so
``$y = $ln($drop($x) + $r)`` is the same pattern as the three lines above.

Init patterns use the same syntax; there the left-hand side is the attribute the
constructor is bound to (``$ln = torch.nn.LayerNorm($n, eps=$eps)``) and a subscripted
callee names an activation table (``$act = transformers.activations.ACT2FN[_]``).

The grammar is parsed with Lark; errors carry the line and column inside the pattern so the
rule loader can report ``rules/x.toml:12:7: expected ...``.
"""

from __future__ import annotations

from .records import dataclass, field


class PatternError(ValueError):
    """A malformed pattern; ``line``/``column`` are 1-based inside the pattern text."""

    def __init__(self, message: str, line: int = 1, column: int = 1):
        super().__init__(message)
        self.message = message
        self.line = line
        self.column = column


# ----------------------------------------------------------------------------- pattern values


@dataclass(frozen=True)
class Var:
    """An abstract variable (``$x``)."""

    name: str


@dataclass(frozen=True)
class Wild:
    """``_``: matches any one value and binds nothing."""


@dataclass(frozen=True)
class Lit:
    """A literal that must equal the code's literal (``-1``, ``True``, ``'gelu'``)."""

    value: object


@dataclass(frozen=True)
class Sym:
    """A bare (dotted) name used as a value: matches code whose text is that name."""

    name: str


@dataclass(frozen=True)
class Temp:
    """The output of an earlier node of the same pattern (from unchaining)."""

    index: int


PValue = Var | Wild | Lit | Sym | Temp

WILD = Wild()


@dataclass(frozen=True)
class PNode:
    """One node of a pattern.

    ``op`` is a fully qualified callee (``torch.nn.functional.softmax``), an operator
    (``+``), ``'layer'`` for a call through an abstract layer variable (``$ln(...)``), or
    ``'table'`` for an activation-table lookup in an init pattern.  ``layer`` is the
    abstract variable naming the called layer, ``outs`` the assigned abstract variables.
    """

    op: str
    args: tuple[PValue, ...] = ()
    kwargs: tuple[tuple[str, PValue], ...] = ()
    rest: bool = False
    layer: Var | None = None
    outs: tuple[PValue, ...] = ()
    method: str | None = None
    line: int = 1
    column: int = 1
    absent: tuple[str, ...] = ()  # keywords the code must not pass (``!fused``)
    # keywords the code must not pass as these literals (``!track_running_stats=False``); a
    # value that is no literal there may be anything, so it fits (init patterns)
    refused: tuple = ()
    optional: bool = False  # ``? $y = f($x, ...)``: the step may be absent; then $y is $x
    # Set by the matcher when ``op`` names a canonical operation (structure/ops.py): the step
    # then matches every spelling of it, and its arguments are read in canonical form.
    canonical: bool = False


@dataclass(frozen=True)
class Pattern:
    """A parsed pattern: its nodes in order, and the source text it came from."""

    nodes: tuple[PNode, ...]
    text: str = field(default="", compare=False)

    @property
    def variables(self) -> set[str]:
        names: set[str] = set()
        for node in self.nodes:
            for value in (*node.args, *(v for _, v in node.kwargs), *node.outs):
                if isinstance(value, Var):
                    names.add(value.name)
            if node.layer is not None:
                names.add(node.layer.name)
        return names


COMMUTATIVE = frozenset({"+", "*"})


def _names(node: PNode) -> tuple[set[str], set[int]]:
    """The variables a node mentions (inputs, outputs, called layer) and the earlier nodes
    whose values it reads through nesting."""
    names: set[str] = set()
    temps: set[int] = set()
    for value in (*node.args, *(v for _, v in node.kwargs), *node.outs):
        if isinstance(value, Var):
            names.add(value.name)
        elif isinstance(value, Temp):
            temps.add(value.index)
    if node.layer is not None:
        names.add(node.layer.name)
    return names, temps


def _reads(node: PNode, name: str) -> bool:
    values = (*node.args, *(v for _, v in node.kwargs))
    return Var(name) in values or (node.layer is not None and node.layer.name == name)


def flow_problems(pattern: "Pattern", read_elsewhere: set[str]) -> list[tuple[PNode, str]]:
    """Ways a forward pattern fails to state the data flow it seems to state.

    A variable binds on first use, so a misspelt one (``$p4`` where ``$p3`` was meant) is not
    an error of the grammar: it silently matches *any* value, and a rewrite built on it drops
    code.  Two checks catch that class of mistake:

    * every value a step computes (``$s = ...``) is read by a later step or by
      ``read_elsewhere`` (the target's variables), except the last step's;
    * the steps that mention variables form one connected piece: each shares a variable
      (or a nested value) with another, so no step floats free of the rest.
    """
    nodes = pattern.nodes
    problems: list[tuple[PNode, str]] = []
    for index, node in enumerate(nodes[:-1]):
        for out in node.outs:
            if isinstance(out, Var) and out.name not in read_elsewhere and not any(
                _reads(later, out.name) for later in nodes[index + 1:]
            ):
                problems.append((node, f"${out.name} is computed here but no later step reads it "
                                       "(a misspelt variable? write _ for a value the pattern ignores)"))
    parent = list(range(len(nodes)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    owner: dict[str, int] = {}
    mentions: list[int] = []
    for index, node in enumerate(nodes):
        names, temps = _names(node)
        if not names and not temps:
            continue
        mentions.append(index)
        for other in temps:
            parent[find(other)] = find(index)
        for name in names:
            if name in owner:
                parent[find(owner[name])] = find(index)
            else:
                owner[name] = index
    if mentions:
        sizes: dict[int, int] = {}
        for index in mentions:
            sizes[find(index)] = sizes.get(find(index), 0) + 1
        main = max(sizes, key=lambda root: (sizes[root], -min(i for i in mentions if find(i) == root)))
        for index in mentions:
            if find(index) != main:
                node = nodes[index]
                names = ", ".join(f"${n}" for n in sorted(_names(node)[0])) or "its values"
                problems.append((node, f"this step shares no variable with the rest of the pattern ({names} "
                                       "appear nowhere else): a misspelt variable?"))
                break
    return problems


def parse_pattern(text: str) -> "Pattern":
    """Parse pattern text; raise :class:`PatternError` with a position on bad input.

    The Lark parser lives in :mod:`adopter.dsl_parser` and is imported on first use: the
    check path loads rules from the cache (:mod:`adopter.ruleset`) and never needs it.
    """
    from .dsl_parser import parse

    return parse(text)


def format_value(value: PValue) -> str:
    if isinstance(value, Var):
        return f"${value.name}"
    if isinstance(value, Wild):
        return "_"
    if isinstance(value, Lit):
        return repr(value.value)
    if isinstance(value, Sym):
        return value.name
    return f"%{value.index}"
