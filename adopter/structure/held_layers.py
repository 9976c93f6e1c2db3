"""Layers of a module that another module holds and calls through it.

``self.encoder = GPT(config)`` in ``__init__``, then ``self.encoder.lm_head(h)`` in ``forward``:
the call runs the layer ``GPT.__init__`` binds to ``lm_head`` (an ``nn.Linear`` to the
vocabulary), and what the layer is follows from that constructor, not from any name.  The held
class is one of this file (its bindings are already read) or of another module of the package
(siblings.Package.find: read there, never imported), and the chain may go through several held
modules (``self.txt_encoder.encoder.lm_head``, ``TextEncoder`` holding a ``GPT``).

Only chains the file calls are typed (read off its text, not by walking its classes), each
bound as ``<attr>.<...>.<layer>`` in the classes binding ``<attr>`` (graph.FlowBuilder reads a
call of ``self.<attr>.<...>.<layer>`` through that binding), and only where one class is held (every constructor of the attribute the same class, none under a condition).  The layer
is built in another class's constructor: placed at the holding statement, not fixed (a fix would
edit that class, maybe in another file).

Read only in files that compute a cross-entropy (the LM-head reading, ADP015, is what needs it:
a head reached through the model that holds it); the rest of the file's typing is unchanged.
"""

from __future__ import annotations

import ast
import re

from ..records import replace
from .bindings import ClassInfo, bind_class, collect_class

MAX_HOPS = 3  # held modules followed from one attribute
_LOSS_WORDS = ("cross_entropy", "CrossEntropy", "nll_loss", "NLLLoss")


def wanted(text: str | None) -> bool:
    """Does the file compute a loss over classes (the reading's gate: a held head matters
    where its logits meet a cross-entropy)?"""
    return text is not None and any(w in text for w in _LOSS_WORDS)


def borrow_held_layers(infos: dict[str, ClassInfo], typer, text: str) -> None:
    """Bind each chain ``self.a.<...>.b(...)`` a class calls to the layer the held classes
    build (see the module's docstring)."""
    chains = _called_chains(text)
    if not chains:
        return
    siblings: dict[str, ClassInfo | None] = {}
    assigned = _assigned_chains(text)
    # (the file's lines as module_structure split them for the typer: one split per file)
    lines = (typer.lines if getattr(typer, "lines", None) is not None else text.split("\n")) if assigned else []
    for info in infos.values():
        bindings = info.bindings
        for chain in chains:
            if chain[0] not in bindings:
                continue
            key = ".".join(chain)
            if key in bindings or (chain in assigned and _class_assigns(info.node, chain, lines)):
                continue
            ctors = _held(chain, info, infos, typer, siblings, 0)
            if ctors:
                holder = bindings[chain[0]][0]
                why = (f"built by the constructor of the module held as `self.{chain[0]}`, "
                       f"not in this class: not fixed")
                bindings[key] = [replace(c, attr=key, stmt=holder.stmt, call=holder.call, in_init=True,
                                         container=None, unlike=c.unlike or why) for c in ctors]


# (``\w*+``, possessive: what follows a name is a dot, a space, a bracket, a colon, an equals
# sign, a comma or a quote -- never a word character -- so giving characters back finds no other
# match; at each ``self`` that is not a chain the search fails without retrying each shorter name)
# The patterns start with their literal word, not ``\b``: the regex engine then skips to each
# ``self``/``setattr`` instead of trying every position (ten times faster on a model file), and
# :func:`_word_matches` applies the word boundary the ``\b`` stood for.
# a call through ``self`` and two to MAX_HOPS + 1 attributes: ``self.encoder.lm_head(``
_CHAIN_CALL = re.compile(rf"self((?:\.[A-Za-z_]\w*+){{2,{MAX_HOPS + 1}}})\s*\(")


# an assignment to such a chain: ``self.encoder.lm_head = ...`` (not ``==``)
_CHAIN_STORE = re.compile(rf"self((?:\.[A-Za-z_]\w*+){{2,{MAX_HOPS + 1}}})\s*(?::[^=\n]*)?=(?!=)")
# ``setattr(self.encoder, "lm_head", ...)``
_CHAIN_SETATTR = re.compile(rf"setattr\(\s*self((?:\.[A-Za-z_]\w*+){{1,{MAX_HOPS}}})\s*,\s*[\"']([A-Za-z_]\w*+)[\"']")
_WORD = re.compile(r"\w")


def _word_matches(pattern: re.Pattern, text: str):
    """``pattern.finditer(text)`` as if the pattern began with ``\b``: a match whose first
    character follows a word character is passed over and the search goes on one character
    later (where a ``\b`` pattern would have gone on looking)."""
    pos = 0
    while (match := pattern.search(text, pos)) is not None:
        start = match.start()
        if start and _WORD.match(text, start - 1):
            pos = start + 1
            continue
        yield match
        pos = match.end()


def _called_chains(text: str) -> list[tuple[str, ...]]:
    """``("encoder", "lm_head")`` for each call ``self.encoder.lm_head(...)`` the file's text
    writes, once each (read off the text: the file's classes are not walked for it; a chain
    only in a comment binds a path nothing calls, which nothing reads)."""
    found: list[tuple[str, ...]] = []
    for match in _word_matches(_CHAIN_CALL, text):
        chain = tuple(match.group(1)[1:].split("."))
        if chain not in found:
            found.append(chain)
    return found


def _assigned_chains(text: str) -> set[tuple[str, ...]]:
    """The chains ``self.a.<...>.b`` the text assigns, directly or through ``setattr`` (the
    cheap text gate of :func:`_class_assigns`)."""
    assigned = {tuple(m.group(1)[1:].split(".")) for m in _word_matches(_CHAIN_STORE, text)}
    if "setattr" not in text:
        return assigned
    for match in _word_matches(_CHAIN_SETATTR, text):
        assigned.add(tuple(match.group(1)[1:].split(".")) + (match.group(2),))
    return assigned


def _class_assigns(node: ast.ClassDef, chain: tuple[str, ...], lines: list[str]) -> bool:
    """Does the class replace the held layer itself (``self.encoder.lm_head = nn.Sequential(
    ...)`` in ``__init__`` or any other method, or ``setattr(self.encoder, "lm_head", ...)``)?
    Then the held class's constructor no longer says what the chain calls.  Read off the
    class's own lines (only for a chain the file's text assigns somewhere)."""
    body = "\n".join(lines[node.lineno - 1:node.end_lineno])
    *held, last = chain
    attr = r"\s*\.\s*".join(map(re.escape, ["self", *chain]))
    holder = r"\s*\.\s*".join(map(re.escape, ["self", *held]))
    store = re.compile(rf"\b{attr}\s*(?::[^=\n]*)?=(?!=)|\bsetattr\(\s*{holder}\s*,\s*[\"']{re.escape(last)}[\"']")
    return store.search(body) is not None


def self_chain(expr: ast.expr) -> tuple[str, ...] | None:
    """``self.a.b.c`` -> ("a", "b", "c"); None for anything else."""
    attrs = []
    while expr.__class__ is ast.Attribute:
        attrs.append(expr.attr)
        expr = expr.value
    if expr.__class__ is not ast.Name or expr.id != "self" or not attrs:
        return None
    return tuple(reversed(attrs))


def _held(chain: tuple[str, ...], info: ClassInfo, infos: dict[str, ClassInfo], typer,
          siblings: dict, hops: int) -> list | None:
    """The constructors of ``chain[-1]`` in the class held at ``chain[:-1]`` from ``info``."""
    ctors = info.bindings.get(chain[0])
    if not ctors or hops >= MAX_HOPS:
        return None
    fqns = {c.fqn for c in ctors}
    if len(fqns) != 1 or any(c.conditional for c in ctors):
        return None  # (which class is held at run time is not one)
    held, held_infos, held_typer = _class_info(next(iter(fqns)), infos, typer, siblings)
    if held is None or not held.is_module:
        return None
    rest = chain[1:]
    if len(rest) == 1:
        return held.bindings.get(rest[0]) or None
    return _held(rest, held, held_infos, held_typer, siblings, hops + 1)


def _class_info(fqn: str, infos: dict[str, ClassInfo], typer, siblings: dict):
    """(ClassInfo, the classes of its module, its module's typer) for a same-file class or a
    class another module of the package defines; (None, None, None) for anything else."""
    info = infos.get(fqn)
    if info is not None:
        return info, infos, typer
    package = typer.package
    if package is None or not package.owns(fqn):
        return None, None, None
    if fqn not in siblings:
        siblings[fqn] = None
        found = package.find(fqn)
        if found is not None and found[0] is not typer:
            other, name = found
            node = other.names.classes.get(name)
            if isinstance(node, ast.ClassDef):
                sibling = collect_class(node, other.names)
                bind_class(sibling, {}, other.names, other)
                siblings[fqn] = (sibling, {name: sibling}, other)
    found = siblings[fqn]
    return found if found is not None else (None, None, None)
