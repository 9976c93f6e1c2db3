"""The pattern language of rules.

A pattern is a short Python-like program: one statement per line (or separated by ``;``),
each an assignment or a bare expression.  Abstract variables start with ``$`` and bind, on
first use, to a concrete name or value of the analysed code; every later use must bind to
the same thing, which is how a pattern states data flow.  ``_`` matches any single value
and ``...`` in an argument list matches any remaining arguments; ``!name`` says the code
must not pass the keyword ``name`` (nor ``**kwargs``, which might hold it).  A statement
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

from dataclasses import dataclass, field
from typing import Union

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


PValue = Union[Var, Wild, Lit, Sym, Temp]

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
    optional: bool = False  # ``? $y = f($x, ...)``: the step may be absent; then $y is $x


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
