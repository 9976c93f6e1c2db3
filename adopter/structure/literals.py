"""Keyword arguments passed as ``**name`` where ``name`` is a dict literal of the same code.

``torch.optim.AdamW(params, **opt_kwargs)`` with ``opt_kwargs = {"lr": 1e-3, "betas": (0.9,
0.99)}``: the keywords the call receives are the literal's keys, so a rule that must know
which keywords a call passes (``!fused``) can read them, as for written keywords.  Only when
that is certain: the name is bound once in the whole file, to a dict display with string keys
and no ``**`` inside, and every other occurrence of the name in the file is a ``**name``
argument (no item assignment, ``update``, alias, or second binding anywhere, in any function).
"""

from __future__ import annotations

import ast
import re

from .treewalk import ast_walk


def literal_keywords(expr: ast.expr, assigned: object, lines: list[str] | None,
                     cache: dict, text: str | None = None) -> list[tuple[str, ast.expr]] | None:
    """The (key, value expression) pairs ``**expr`` passes, or None when they are not certain.
    ``assigned``: what the flow builder last saw assigned to the name (an ast expression).
    ``text``: ``"\n".join(lines)`` when the caller holds it (not joined again)."""
    if not isinstance(expr, ast.Name) or lines is None:
        return None
    if assigned.__class__ is ast.Call and assigned.func.__class__ is ast.Name and assigned.func.id == "dict" \
            and not assigned.args and all(k.arg is not None for k in assigned.keywords):
        # ``opt_kwargs = dict(lr=1e-3, betas=(0.9, 0.99))``: the builtin's keywords are the keys
        assigned = ast.Dict(keys=[ast.Constant(k.arg) for k in assigned.keywords],
                            values=[k.value for k in assigned.keywords])
    if not isinstance(assigned, ast.Dict):
        return None
    if not all(isinstance(k, ast.Constant) and isinstance(k.value, str) for k in assigned.keys):
        return None  # a None key is a ``**other`` spread inside the literal
    name = expr.id
    once = cache.get(name)
    if once is None:
        if text is None:
            text = "\n".join(lines)
        total = len(re.findall(rf"(?<![\w.]){re.escape(name)}\b", text))
        spread = len(re.findall(rf"\*\*\s*{re.escape(name)}\b", text))
        once = cache[name] = total == spread + 1
    if not once:
        return None
    return [(k.value, v) for k, v in zip(assigned.keys, assigned.values)]


def spread_keys(expr: ast.expr, definition: ast.AST, text: str | None = None) -> list[tuple[str, ast.expr]] | None:
    """The keywords ``**name`` may pass where ``name`` is a dict the function builds itself:
    bound once to a dict display with string keys or a ``dict(key=value, ...)`` call, then
    only given keys by ``name.update(key=value)`` or ``name["key"] = value`` (under an ``if``
    too), every other occurrence in the function a ``**name`` argument.  Each key with the one
    value the function gives it (a key given two different values is not certain: None), in
    the order first given.  ``softmax_kwargs = dict()`` then, under a flag,
    ``softmax_kwargs.update(dtype=torch.float32)``: ``[("dtype", torch.float32)]``.
    ``self.optim_args`` the same way, when ``text`` (the file) mentions the attribute's name
    nowhere outside this function (no other method adds a key or binds it again)."""
    if expr.__class__ is ast.Attribute and expr.value.__class__ is ast.Name and expr.value.id == "self" \
            and text is not None:
        return _attribute_spread_keys(expr.attr, definition, text)
    if not isinstance(expr, ast.Name):
        return None
    name = expr.id
    arguments = getattr(definition, "args", None)
    if arguments is not None and name in {a.arg for a in (*arguments.posonlyargs, *arguments.args,
                                                          *arguments.kwonlyargs, arguments.vararg,
                                                          arguments.kwarg) if a is not None} \
            and not _parameter_rebound_first(definition, name):
        return None  # ``**kwargs`` the caller passes: not built here

    def held(node: ast.AST) -> bool:
        return node.__class__ is ast.Name and node.id == name

    return _given_keys(definition, held)


def _parameter_rebound_first(definition: ast.AST, name: str) -> bool:
    """Whether the parameter ``name`` is dead on entry: the first statement of the function
    body that names it at all is, at the body's top level (no ``if``, loop or ``try`` around
    it), a plain ``name = <value>`` whose value does not read it.  ``def __init__(self, ...,
    optim_kwargs=dict()):`` that begins ``optim_kwargs = dict(lr=lr)``: what the caller passed
    reaches no later use, so the dict is the function's own (a rebinding under an ``if``, or
    after a read, leaves the caller's)."""
    for stmt in getattr(definition, "body", ()):
        if not any(n.__class__ is ast.Name and n.id == name for n in ast_walk(stmt)):
            continue
        return stmt.__class__ is ast.Assign and len(stmt.targets) == 1 \
            and stmt.targets[0].__class__ is ast.Name and stmt.targets[0].id == name \
            and not any(n.__class__ is ast.Name and n.id == name for n in ast_walk(stmt.value))
    return False


def _attribute_spread_keys(attr: str, definition: ast.AST, text: str) -> list[tuple[str, ast.expr]] | None:
    """spread_keys for ``**self.<attr>``: the function binds the attribute once to a dict
    display with string keys (or ``dict(key=value)``), then gives it keys only by
    ``self.<attr>["key"] = value`` or ``self.<attr>.update(key=value)``, reads it only as a
    ``**`` argument, and the file names the attribute nowhere else."""
    def held(node: ast.AST) -> bool:
        return node.__class__ is ast.Attribute and node.attr == attr and node.value.__class__ is ast.Name \
            and node.value.id == "self"

    mentions = [n for n in ast_walk(definition) if n.__class__ is ast.Attribute and n.attr == attr]
    if not mentions or not all(held(n) for n in mentions) \
            or len(re.findall(rf"(?<![\w'\"]){re.escape(attr)}\b", text)) != len(mentions):
        return None
    return _given_keys(definition, held, mentions)


def _given_keys(definition: ast.AST, held, uses: list | None = None) -> list[tuple[str, ast.expr]] | None:
    """The walk of :func:`spread_keys` for a dict ``held(node)`` names (a local or
    ``self.<attr>``): bound once to a display of string keys, given keys only by subscript or
    ``update``, read only as ``**``; every node naming it (``uses``, else found by a last walk)
    must be one of those."""
    found: dict[str, ast.expr] = {}
    bound = 0
    accounted: set[int] = set()

    def give(key: str, value: ast.expr) -> bool:
        if key in found and ast.dump(found[key]) != ast.dump(value):
            return False
        found.setdefault(key, value)
        return True

    for node in ast_walk(definition):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)) \
                and node is not definition and any(held(n) for n in ast_walk(node)):
            return None  # a nested scope reads or binds the dict
        if node.__class__ is ast.Assign and len(node.targets) == 1:
            target = node.targets[0]
            if held(target):
                bound += 1
                value = node.value
                if value.__class__ is ast.Dict:
                    if not all(k.__class__ is ast.Constant and isinstance(k.value, str) for k in value.keys):
                        return None
                    pairs = [(k.value, v) for k, v in zip(value.keys, value.values)]
                elif value.__class__ is ast.Call and value.func.__class__ is ast.Name and value.func.id == "dict" \
                        and not value.args and all(k.arg is not None for k in value.keywords):
                    pairs = [(k.arg, k.value) for k in value.keywords]
                else:
                    return None
                if not all(give(k, v) for k, v in pairs):
                    return None
                accounted.add(id(target))
            elif target.__class__ is ast.Subscript and held(target.value):
                if not (target.slice.__class__ is ast.Constant and isinstance(target.slice.value, str)):
                    return None
                if not give(target.slice.value, node.value):
                    return None
                accounted.add(id(target.value))
        elif node.__class__ is ast.Call and node.func.__class__ is ast.Attribute and node.func.attr == "update" \
                and held(node.func.value):
            if node.args or any(k.arg is None for k in node.keywords):
                return None
            if not all(give(k.arg, k.value) for k in node.keywords):
                return None
            accounted.add(id(node.func.value))
        elif node.__class__ is ast.keyword and node.arg is None and held(node.value):
            accounted.add(id(node.value))
    if bound != 1:
        return None
    if uses is None:
        uses = [n for n in ast_walk(definition) if held(n)]
    if any(id(n) not in accounted for n in uses):
        return None
    return list(found.items())


def literal_table(name: str, value: ast.expr | None, lines: list[str] | None,
                  text: str | None = None) -> tuple[list, int] | None:
    """(the entries, how many statements read it) of a module-level dict literal ``name``
    (``OPTIMIZERS = {"sgd": (torch.optim.SGD, {"momentum": 0.9}), ...}``, annotated or not)
    that the file binds once and reads only as the value of an assignment of one entry
    (``klass, defaults = OPTIMIZERS[name]``) or as the callee of a call of one entry
    (``OPTIMIZERS[name](params, lr=lr)``): every other occurrence of the name (an item
    store, ``update``, an alias, a second binding) leaves its entries uncertain: None.  A
    name in a string (``__all__``) is no occurrence.  ``text``: ``"\n".join(lines)`` when the
    caller holds it (not joined again)."""
    if value.__class__ is not ast.Dict or lines is None or None in value.keys:
        return None
    if text is None:
        text = "\n".join(lines)
    word = re.escape(name)
    total, reads, calls = _entry_uses(word, text)
    bound = len(re.findall(rf"^{word}\s*(?::[^=\n]*)?=(?!=)", text, re.MULTILINE))
    if bound != 1 or total != bound + reads + calls:
        return None
    return list(value.values), reads


def class_table(node: ast.ClassDef, attr: str, lines: list[str] | None,
                text: str | None = None) -> ast.Dict | None:
    """The dict literal a class body binds once to ``attr`` (``_OPTIMIZERS = {"sgd":
    optim.SGD, ...}``) when the file reads it through the class or an instance only an entry at
    a time (``cls._OPTIMIZERS[name](params)``), by its keys (``.keys()``) or in a membership
    test (``name in cls._OPTIMIZERS``): the entries literal_table asks of a module-level table.
    Any other occurrence of the name (an item store, ``update``, ``del``, a rebinding, an
    alias, another class's attribute of that name) leaves them uncertain: None.  ``text``:
    ``"\n".join(lines)`` when the caller holds it (not joined again)."""
    if lines is None:
        return None
    value = None
    for stmt in node.body:
        target = stmt.targets[0] if stmt.__class__ is ast.Assign and len(stmt.targets) == 1 else (
            stmt.target if stmt.__class__ is ast.AnnAssign else None)
        if target.__class__ is ast.Name and target.id == attr:
            if value is not None:
                return None
            value = stmt.value
    if value.__class__ is not ast.Dict or None in value.keys:
        return None
    if text is None:
        text = "\n".join(lines)
    word = re.escape(attr)
    if re.search(rf"\bdel\s+[\w.]*\.{word}\b", text):
        return None
    total = len(re.findall(rf"(?<![\w'\"]){word}\b", text))
    entries = len(re.findall(rf"\.{word}\s*\[[^\[\]\n]*\](?!\s*=(?!=))", text))
    keys = len(re.findall(rf"\.{word}\.keys\(\)", text))
    member = len(re.findall(rf"\bin\s+(?:self|cls)\.{word}\b(?!\s*[\[.])", text))
    return value if total == 1 + entries + keys + member else None


def _entry_uses(word: str, text: str) -> tuple[int, int, int]:
    """(every occurrence of the table ``word`` (escaped) outside strings and attributes, the
    assignments of one entry ``= word[...]``, the calls of one entry in place ``word[...](``
    that are not such assignments): what literal_table and imported_table_reads account for."""
    total = len(re.findall(rf"(?<![\w.'\"]){word}\b(?!['\"])", text))
    reads = len(re.findall(rf"(?<![=!<>])=\s*{word}\s*\[", text))
    entry_call = rf"{word}\s*\[[^\[\]\n]*\]\s*\("
    calls = len(re.findall(rf"(?<![\w.'\"]){entry_call}", text))
    calls -= len(re.findall(rf"(?<![=!<>])=\s*{entry_call}", text))  # (counted as reads already)
    return total, reads, calls


def imported_table_reads(name: str, lines: list[str] | None) -> bool:
    """Does a file that imports a table ``name`` from another module read it only one entry at
    a time, as literal_table asks of a table the file binds (``name[key](params)`` called in
    place, ``klass = name[key]``, the bracket right after the name), importing it once?  An
    item store, ``update``, an alias or a second binding here would change the entries that
    module holds: False."""
    return lines is not None and imported_table_reads_in(name, "\n".join(lines))


def imported_table_reads_in(name: str, text: str) -> bool:
    """imported_table_reads of the file's whole ``text`` (its lines joined), for a reader that
    holds the text already: the whole file is not joined again per name."""
    if name + "[" not in text:  # (an entry is read with the bracket right after the name)
        return False
    word = re.escape(name)
    total, reads, calls = _entry_uses(word, text)
    imported = len(re.findall(rf"^[ \t]*from[ \t]+[\w.]+[ \t]+import[ \t]*\(?[^\n]*(?<![\w.]){word}\b(?![ \t]+as\b)",
                              text, re.MULTILINE))
    return imported == 1 and reads + calls > 0 and total == imported + reads + calls


def entry_keys(name: str, dicts: list, definition: ast.AST) -> list[tuple[str, ast.expr]] | None:
    """The keywords ``**name`` may pass where the function bound ``name`` once, by unpacking
    an entry of a literal table whose entries hold, at that position, the dict literals
    ``dicts`` (``klass, defaults = OPTIMIZERS[key]``, literal_table), and otherwise only
    iterates it (``for k in defaults:``), tests membership in it, gives a key the loop over it
    yields a new value (``defaults[k] = given[k]``: a key it holds already, no new one) and
    spreads it: the keys of every entry's dict, each with its first value."""
    keys: dict[str, ast.expr] = {}
    for found in dicts:
        if found.__class__ is not ast.Dict \
                or not all(k.__class__ is ast.Constant and isinstance(k.value, str) for k in found.keys):
            return None
        for key, item in zip(found.keys, found.values):
            keys.setdefault(key.value, item)
    accounted: set[int] = set()
    stores = []
    for node in ast_walk(definition):
        kind = node.__class__
        if kind in (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef) and node is not definition \
                and any(n.__class__ is ast.Name and n.id == name for n in ast_walk(node)):
            return None  # a nested scope reads or binds the name
        if kind is ast.Name and node.id == name and node.ctx.__class__ is ast.Store:
            stores.append(node)
        elif kind is ast.For and node.iter.__class__ is ast.Name and node.iter.id == name \
                and node.target.__class__ is ast.Name:
            accounted.add(id(node.iter))
            loop = node.target.id
            inner = [n for n in ast_walk(node) if n is not node]
            if any(n.__class__ is ast.Name and n.id == loop and n.ctx.__class__ is not ast.Load
                   and n is not node.target for n in inner):
                return None  # the loop's key bound again in its body
            for stmt in inner:
                if stmt.__class__ is ast.Assign and len(stmt.targets) == 1:
                    item = stmt.targets[0]
                    if item.__class__ is ast.Subscript and item.value.__class__ is ast.Name \
                            and item.value.id == name and item.slice.__class__ is ast.Name and item.slice.id == loop:
                        accounted.add(id(item.value))
        elif kind is ast.Compare and len(node.ops) == 1 and node.ops[0].__class__ in (ast.In, ast.NotIn) \
                and node.comparators[0].__class__ is ast.Name and node.comparators[0].id == name:
            accounted.add(id(node.comparators[0]))
        elif kind is ast.keyword and node.arg is None and node.value.__class__ is ast.Name and node.value.id == name:
            accounted.add(id(node.value))
    if len(stores) != 1:
        return None
    accounted.add(id(stores[0]))
    if any(n.__class__ is ast.Name and n.id == name and id(n) not in accounted for n in ast_walk(definition)):
        return None
    return list(keys.items())


_IN_PLACE_METHODS = "update|setdefault|pop|popitem|clear|append|extend|insert|remove"


# what may follow a table's name where the occurrence reads it, never holds it whole: an entry
# (``NAME[``), a lookup method (``NAME.get(``, ``.keys()``), or the end of an import's names
_READ_AFTER = re.compile(r"\s*(?:\[|\.\s*(?:get|keys|values|items)\s*\()")
_IMPORT_LINE = re.compile(r"^[ \t]*(?:from[ \t]+[\w.]+[ \t]+)?import[ \t]")


def held_whole(name: str, text: str) -> bool:
    """Does the file hold the container a module-level ``name`` names under another name or
    hand it on whole (``table = NAME``, ``register(NAME)``, ``return NAME``), where it may be
    changed through that alias (written_in_place sees only ``NAME``'s own writes)?  Every
    occurrence outside strings and attributes must be its binding (``NAME = {...}`` at a line's
    start), an import, a membership test (``in NAME``) or an entry read (``NAME[``, ``.get(``):
    a text test, cautious (a multi-line import's own line counts as holding it)."""
    if name not in text:
        return False
    word = re.escape(name)
    for found in re.finditer(rf"(?<![\w.'\"]){word}\b(?!['\"])", text):
        start, end = found.span()
        line_start = text.rfind("\n", 0, start) + 1
        before = text[line_start:start]
        if _READ_AFTER.match(text, end) or _IMPORT_LINE.match(before):
            continue
        if not before.strip() and re.match(r"\s*(?::[^=\n]*)?=(?!=)", text[end:end + 200]):
            continue  # (the binding itself, ``NAME = {...}``; a second one is written_in_place's)
        if re.search(r"(?<![\w.])in\s*$", before):
            continue  # ``key in NAME``
        return True
    return False


def written_in_place(name: str, text: str) -> bool:
    """Does the file change the container a module-level ``name`` holds after binding it?  An
    item store or delete (``NORMS["bn2d"] = nn.LayerNorm``, ``NORMS[key] += ...``, ``del
    NORMS[k]``), a mutating method (``NORMS.update(...)``, ``.setdefault``, ``.pop``,
    ``.append``, ...), an augmented assignment (``NORMS |= {...}``) or a ``global NAME`` (a
    function may bind it again), anywhere in the file, in any function: the literal is then
    not what the table holds when it is read, so a reader must not take its entries.  A
    same-named local changed in a function counts too (a text test: cautious, never reads
    a changed table)."""
    if name not in text:
        return False
    word = re.escape(name)
    written = (rf"(?<![\w.'\"]){word}\s*\[[^\[\]\n]*\]\s*(?:(?:\*\*|//|>>|<<|[-+*/%@&|^])?=(?!=))"
               rf"|\bdel\s+{word}\s*\["
               rf"|(?<![\w.'\"]){word}\s*\.\s*(?:{_IN_PLACE_METHODS})\s*\("
               rf"|(?<![\w.'\"]){word}\s*(?:\|=|\+=)"
               rf"|^[ \t]*global\s+[^\n]*(?<![\w.]){word}\b")
    return re.search(written, text, re.MULTILINE) is not None
