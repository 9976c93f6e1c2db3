"""The Lark grammar of the pattern language (see :mod:`adopter.dsl`) and its parser.

Kept apart from the pattern types because building the LALR tables and importing Lark cost
about 0.1 s, which the pre-commit check path avoids by loading parsed rules from a cache.
"""

from __future__ import annotations

from lark import Lark, Transformer
from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken, VisitError

from .dsl import WILD, Lit, Pattern, PatternError, PNode, PValue, Sym, Temp, Var

GRAMMAR = r"""
start: _sep* (stmt (_sep+ stmt)* _sep*)?
_sep: _NL | ";"

stmt: [OPTIONAL] [targets "="] expr
targets: target ("," target)*
target: VAR | NAME

?expr: arith
?arith: arith ADD_OP term   -> binop
      | term
?term: term MUL_OP unary     -> binop
     | unary
?unary: "-" unary           -> neg
      | atom
?atom: call
     | NAME "[" tablekey "]"  -> table
     | VAR                  -> var
     | NAME                 -> name
     | NUMBER               -> number
     | STRING               -> string
     | "(" expr ")"

call: callee "(" [arglist] ")"
    | call "(" [arglist] ")"      -> chained_call
callee: NAME                       -> callee_name
      | VAR                        -> callee_var
      | VAR "." NAME               -> callee_method
tablekey: VAR | NAME | STRING
arglist: arg ("," arg)* [","]
?arg: expr
    | NAME "=" expr                -> kwarg
    | ELLIPSIS                     -> rest
    | "!" NAME                     -> absent
    | "!" NAME "=" expr            -> refused

ADD_OP: "+" | "-"
MUL_OP: "*" | "/" | "@" | "//" | "%"
ELLIPSIS: "..."
OPTIONAL: "?"
VAR: /\$[A-Za-z_][A-Za-z0-9_]*/
NAME: /[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*/
NUMBER: /\d+(\.\d*)?([eE][-+]?\d+)?/
STRING: /'[^'\n]*'|"[^"\n]*"/
COMMENT: /#[^\n]*/
_NL: /\r?\n/
%ignore /[ \t]+/
%ignore COMMENT
"""

_PARSER = Lark(GRAMMAR, parser="lalr", propagate_positions=True, maybe_placeholders=True)


# ----------------------------------------------------------------------------- parsing


class _Unchain(Transformer):
    """Turns the Lark tree into pattern nodes, unchaining nested calls into temporaries."""

    def __init__(self) -> None:
        super().__init__()
        self.nodes: list[PNode] = []

    # values -----------------------------------------------------------------
    def var(self, items):
        return Var(str(items[0])[1:])

    def name(self, items):
        text = str(items[0])
        if text == "_":
            return WILD
        if text in ("True", "False", "None"):
            return Lit({"True": True, "False": False, "None": None}[text])
        return Sym(text)

    def chained_call(self, items):
        inner, arglist = items[0], items[1] or []
        node = self.nodes[inner.index]
        return self._emit(PNode(op="call", args=(inner, *[a for a in arglist if not isinstance(a, tuple)]),
                                rest=any(isinstance(a, tuple) and a[0] == "rest" for a in arglist),
                                line=node.line, column=node.column))

    def number(self, items):
        text = str(items[0])
        return Lit(float(text) if any(c in text for c in ".eE") else int(text))

    def string(self, items):
        return Lit(str(items[0])[1:-1])

    def neg(self, items):
        (value,) = items
        if isinstance(value, Lit) and isinstance(value.value, (int, float)):
            return Lit(-value.value)
        return self._emit(PNode(op="neg", args=(value,)))

    def binop(self, items):
        left, op, right = items
        return self._emit(PNode(op=str(op), args=(left, right), line=op.line, column=op.column))

    # calls ------------------------------------------------------------------
    def callee_name(self, items):
        return ("name", str(items[0]), items[0])

    def callee_var(self, items):
        return ("var", str(items[0])[1:], items[0])

    def table(self, items):
        name, key = items
        return self._emit(PNode(op="table", method=str(name), args=(key,), line=name.line, column=name.column))

    def callee_method(self, items):
        return ("method", (str(items[0])[1:], str(items[1])), items[0])

    def tablekey(self, items):
        token = items[0]
        if token.type == "VAR":
            return Var(str(token)[1:])
        if token.type == "STRING":
            return Lit(str(token)[1:-1])
        return WILD if str(token) == "_" else Sym(str(token))

    def kwarg(self, items):
        key, value = items
        if "." in str(key):
            raise PatternError(f"keyword {key!s} is not a plain name", key.line, key.column)
        return ("kw", str(key), value)

    def rest(self, items):
        return ("rest",)

    def absent(self, items):
        key = items[0]
        if "." in str(key):
            raise PatternError(f"keyword {key!s} is not a plain name", key.line, key.column)
        return ("absent", str(key))

    def refused(self, items):
        key, value = items
        if "." in str(key):
            raise PatternError(f"keyword {key!s} is not a plain name", key.line, key.column)
        if not isinstance(value, Lit):
            raise PatternError(f"!{key!s}= takes a literal", key.line, key.column)
        return ("refused", str(key), value)

    def arglist(self, items):
        return [i for i in items if i is not None]

    def call(self, items):
        (kind, what, token), arglist = items[0], items[1] or []
        args: list[PValue] = []
        kwargs: list[tuple[str, PValue]] = []
        rest = False
        absent: list[str] = []
        refused: list[tuple[str, Lit]] = []
        for item in arglist:
            if isinstance(item, tuple) and item[0] == "kw":
                kwargs.append((item[1], item[2]))
            elif isinstance(item, tuple) and item[0] == "rest":
                rest = True
            elif isinstance(item, tuple) and item[0] == "absent":
                absent.append(item[1])
            elif isinstance(item, tuple) and item[0] == "refused":
                refused.append((item[1], item[2]))
            else:
                if kwargs or rest or absent or refused:
                    raise PatternError("positional argument after keyword or '...'", token.line, token.column)
                args.append(item)
        common = dict(args=tuple(args), kwargs=tuple(kwargs), rest=rest, absent=tuple(absent), refused=tuple(refused),
                      line=token.line, column=token.column)
        if kind == "name" and what.startswith("_."):  # _.view(...): a method of any receiver
            if what.count(".") != 1:
                raise PatternError(f"{what!r}: a method of _ is written _.name(...)", token.line, token.column)
            return self._emit(PNode(op="method", method=what[2:], **{**common, "args": (WILD, *args)}))
        if kind == "name":
            return self._emit(PNode(op=what, **common))
        if kind == "var":
            return self._emit(PNode(op="layer", layer=Var(what), **common))
        obj, method = what
        return self._emit(PNode(op="method", method=method, **{**common, "args": (Var(obj), *args)}))

    # statements -------------------------------------------------------------
    def targets(self, items):
        return tuple(items)

    def target(self, items):
        token = items[0]
        text = str(token)
        if text.startswith("$"):
            return Var(text[1:])
        if text == "_":
            return WILD
        raise PatternError(f"cannot assign to {text!r}: targets are $vars or _", token.line, token.column)

    def stmt(self, items):
        optional, targets, value = items
        if targets is None:
            if optional is not None:
                raise PatternError("an optional step ('?') must assign one $variable", optional.line, optional.column)
            return None
        if not isinstance(value, Temp):
            raise PatternError("the right-hand side of an assignment must be a call or an operation")
        node = self.nodes[value.index]
        if optional is not None:
            # When the step is absent its output is its first input, so both must be values.
            if len(targets) != 1 or not isinstance(targets[0], Var):
                raise PatternError("an optional step ('?') must assign one $variable", optional.line, optional.column)
            if not node.args or not isinstance(node.args[0], (Var, Temp)):
                raise PatternError("an optional step ('?') must take a $variable as its first input",
                                   optional.line, optional.column)
        self.nodes[value.index] = PNode(
            op=node.op, args=node.args, kwargs=node.kwargs, rest=node.rest, layer=node.layer,
            outs=targets, method=node.method, line=node.line, column=node.column, absent=node.absent,
            refused=node.refused, optional=optional is not None,
        )
        return None

    def _emit(self, node: PNode) -> Temp:
        self.nodes.append(node)
        return Temp(len(self.nodes) - 1)


def parse(text: str) -> Pattern:
    """Parse pattern text; raise :class:`PatternError` with a position on bad input."""
    try:
        tree = _PARSER.parse(text)
    except UnexpectedCharacters as exc:
        raise PatternError(f"unexpected character {text[exc.pos_in_stream]!r}", exc.line, exc.column) from None
    except UnexpectedToken as exc:
        expected = sorted(_pretty(t) for t in exc.accepts or exc.expected)
        got = "end of pattern" if exc.token.type == "$END" else repr(str(exc.token))
        raise PatternError(f"expected {' or '.join(expected[:4])}, got {got}", exc.line, exc.column) from None
    except UnexpectedInput as exc:  # pragma: no cover - other lark errors
        raise PatternError(str(exc).splitlines()[0], getattr(exc, "line", 1), getattr(exc, "column", 1)) from None
    unchain = _Unchain()
    try:
        unchain.transform(tree)
    except VisitError as exc:
        if isinstance(exc.orig_exc, PatternError):
            raise exc.orig_exc from None
        raise
    return Pattern(nodes=tuple(unchain.nodes), text=text)


_PRETTY = {
    "RPAR": "')'", "LPAR": "'('", "COMMA": "','", "EQUAL": "'='", "NAME": "a name", "VAR": "a $variable",
    "NUMBER": "a number", "STRING": "a string", "_NL": "a new line", "SEMICOLON": "';'", "RSQB": "']'",
    "LSQB": "'['", "ELLIPSIS": "'...'", "ADD_OP": "an operator", "MUL_OP": "an operator", "MINUS": "'-'",
    "DOT": "'.'", "OPTIONAL": "'?'", "$END": "end of pattern",
}


def _pretty(terminal: str) -> str:
    return _PRETTY.get(terminal, terminal.lower())


