"""What a class's own source says about its constructor arguments (read with ``ast``, no import).

Used where names and defaults are not enough to build a class:

- a *config-like* argument (``config``, ``cfg``, ``args``, ...) is known by how it is read:
  ``config.n_embd``, ``cfg.model.dim``, ``cfg["dim"]``, ``cfg.get("dim")``; the reads are
  followed into the local classes it is handed to (``Block(config)`` reads ``config.n_head``),
  so the whole model's needs are known before anything is built;
- a *class-valued* argument (``block`` in a CIFAR ResNet) is called (``block(in_planes, planes,
  stride)``) and has attributes read (``block.expansion``);
- a *list-valued* argument (``num_blocks``) is indexed with constants (``num_blocks[3]``: at
  least four entries), iterated, or measured with ``len``.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field


@dataclass
class Reads:
    """Attribute / key reads on one value, nested: ``cfg.model.dim`` -> {"model": {"dim": {}}}."""

    attrs: dict[str, "Reads"] = field(default_factory=dict)
    defaults: dict[str, ast.expr] = field(default_factory=dict)  # cfg.get("x", default)
    called: int = -1  # positional arguments of a call of the value itself (-1: not called)
    call_keywords: set[str] = field(default_factory=set)
    max_index: int = -1  # highest constant index read
    iterated: bool = False
    truth: bool = False  # used as a condition
    # tested with ``hasattr(cfg, "key")``: the code runs without it (a bag may leave it out)
    optional: bool = False
    # where the value is handed on as an argument: (callee as written, position or keyword),
    # ``nn.Conv2d(d, d, kernel_size=k)`` -> ("nn.Conv2d", "kernel_size"): the callee's parameter
    # says what the value means when its own name does not
    handed_as: list[tuple[str, object]] = field(default_factory=list)
    # an operand of arithmetic with a number (``num_frames * num_patches``): a number itself
    numeric: bool = False
    # string constants it is compared with (``if self.type != "W":``, ``mode in ("a", "b")``): a
    # mode switch, whose values are those strings
    compared: list[str] = field(default_factory=list)
    # int constants it is tested for equality with (``if self.spatial_dims == 2:`` ... ``== 3``):
    # a switch between code paths, each written for one of those values
    compared_ints: list[int] = field(default_factory=list)
    # ordered against another value (``if self.cmem_len <= 0:``, ``min(n, self.mem_len)``): a
    # number, the last resort of a guess (after every other read)
    ordered: bool = False
    # a field looped over (``for loc in cfg.location``, in a comprehension too), used as a
    # condition (``act if cfg.act_layer else None``), handed on by keyword (``scaling=cfg.scaling``):
    # read only where a None-default config gets a bag of its own (``construct._complete``)
    looped: bool = False
    tested: bool = False
    passed: list[str] = field(default_factory=list)
    # where the value is handed on after being stored on self (``self.d = d; nn.Linear(self.d, o)``),
    # as ``handed_as``; read only to name the parameter it is handed to (``construct.handed_names``)
    stored_handed: list[tuple[str, object]] = field(default_factory=list)
    # unpacked into this many names (``self.ih, self.iw = image_size``): a tuple of that length,
    # whose values the constructor keeps as separate sizes (the sides of a grid)
    unpacked: int = 0

    def child(self, name: str) -> "Reads":
        return self.attrs.setdefault(name, Reads())

    def merge(self, other: "Reads") -> None:
        for key, sub in other.attrs.items():
            self.child(key).merge(sub)
        self.defaults.update(other.defaults)
        self.called = max(self.called, other.called)
        self.call_keywords |= other.call_keywords
        self.max_index = max(self.max_index, other.max_index)
        self.iterated |= other.iterated
        self.unpacked = max(self.unpacked, other.unpacked)
        self.truth |= other.truth
        self.numeric |= other.numeric
        self.ordered |= other.ordered
        self.optional |= other.optional
        self.looped |= other.looped
        self.tested |= other.tested
        for keyword in other.passed:
            if keyword not in self.passed:
                self.passed.append(keyword)
        for value in other.compared:
            if value not in self.compared:
                self.compared.append(value)
        for number in other.compared_ints:
            if number not in self.compared_ints:
                self.compared_ints.append(number)
        for item in other.handed_as:
            if item not in self.handed_as:
                self.handed_as.append(item)
        for item in other.stored_handed:
            if item not in self.stored_handed:
                self.stored_handed.append(item)

    @property
    def used_as_object(self) -> bool:
        return bool(self.attrs)


def class_nodes(tree: ast.Module) -> dict[str, ast.ClassDef]:
    return {n.name: n for n in tree.body if isinstance(n, ast.ClassDef)}


def method(node: ast.ClassDef, name: str) -> ast.FunctionDef | None:
    for item in node.body:
        if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)) and item.name == name:
            return item
    return None


def _params(func: ast.FunctionDef) -> list[str]:
    args = func.args
    return [a.arg for a in [*args.posonlyargs, *args.args, *args.kwonlyargs]]


def _chain(node: ast.AST) -> tuple[str | None, list[tuple[str, object]]]:
    """``cfg.model.dim`` -> ("cfg", [("attr", "model"), ("attr", "dim")]); subscripts with constant
    keys and ``.get("k")`` count as reads too."""
    steps: list[tuple[str, object]] = []
    while True:
        if isinstance(node, ast.Attribute):
            steps.append(("attr", node.attr))
            node = node.value
        elif isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant):
            key = node.slice.value
            steps.append(("index", key))
            node = node.value
        else:
            break
    if isinstance(node, ast.Name):
        return node.id, list(reversed(steps))
    return None, []


def _dotted(node: ast.AST) -> str | None:
    """``nn.Conv2d`` -> "nn.Conv2d"; None for anything but a (dotted) name."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        return ".".join([node.id, *reversed(parts)])
    return None


class _Collector(ast.NodeVisitor):
    """Reads of given names inside one function body (names rebound by ``self.x = name`` are
    followed as ``self.x`` too)."""

    def __init__(self, names: dict[str, Reads]):
        self.names = names
        self.aliases: dict[str, Reads] = {}  # "self.cfg" -> reads of cfg
        # "self.factor" -> the config field stored in it (``self.factor = cfg["topk_factor"]``):
        # its later uses type the field (a condition, arithmetic, an order), read only where a
        # config gets a bag typed from its fields' uses (``construct._bag_for(typed=True)``)
        self.fields: dict[str, Reads] = {}
        self.handed: list[tuple[ast.Call, str, object]] = []  # (call, name, position or keyword)
        # local names bound to a stored argument (``ws = self.window_size``, then ``ws[0]``): read
        # as the argument (not handed on through them: only their own reads)
        self.locals: dict[str, Reads] = {}

    def _target(self, node: ast.AST) -> tuple[Reads | None, list[tuple[str, object]]]:
        root, steps = _chain(node)
        if root is None:
            return None, []
        if root in self.names:
            return self.names[root], steps
        if root in self.locals:
            return self.locals[root], steps
        if root == "self" and steps and steps[0][0] == "attr" and f"self.{steps[0][1]}" in self.aliases:
            return self.aliases[f"self.{steps[0][1]}"], steps[1:]
        return None, []

    def _walk_to(self, reads: Reads, steps) -> Reads:
        for kind, key in steps:
            if kind == "attr":
                reads = reads.child(str(key))
            elif kind == "index" and isinstance(key, int):
                reads.max_index = max(reads.max_index, key)
                return reads
            elif kind == "index" and isinstance(key, str):
                reads = reads.child(key)
            else:
                return reads
        return reads

    def visit_Assign(self, node: ast.Assign) -> None:
        if isinstance(node.value, ast.Name) and node.value.id in self.names:
            for target in node.targets:
                if isinstance(target, (ast.Tuple, ast.List)) and len(target.elts) >= 2 and \
                        not any(isinstance(e, ast.Starred) for e in target.elts):
                    self.names[node.value.id].unpacked = max(self.names[node.value.id].unpacked, len(target.elts))
                if isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name) and \
                        target.value.id == "self":
                    self.aliases[f"self.{target.attr}"] = self.names[node.value.id]
        elif isinstance(node.value, ast.Attribute) and isinstance(node.value.value, ast.Name) and \
                node.value.value.id == "self" and f"self.{node.value.attr}" in self.aliases and \
                len(node.targets) == 1 and isinstance(node.targets[0], ast.Name) and \
                node.targets[0].id not in self.names:
            # ``ws = self.window_size``: a local name for the stored argument
            self.locals[node.targets[0].id] = self.aliases[f"self.{node.value.attr}"]
        elif isinstance(node.value, (ast.Attribute, ast.Subscript)):
            # ``self.factor = cfg["topk_factor"]``, ``self.std = cfg.std``: a field stored on self
            reads, steps = self._target(node.value)
            if reads is not None and steps and all(kind == "attr" or isinstance(key, str) for kind, key in steps):
                stored = self._walk_to(reads, steps)
                for target in node.targets:
                    if isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name) and \
                            target.value.id == "self":
                        self.fields[f"self.{target.attr}"] = stored
        self.generic_visit(node)

    def _stored_field(self, node: ast.AST) -> Reads | None:
        """The config field ``self.<attr>`` holds (``self.factor`` after ``self.factor =
        cfg["topk_factor"]``), None for anything else."""
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "self":
            return self.fields.get(f"self.{node.attr}")
        return None

    def visit_Attribute(self, node: ast.Attribute) -> None:
        reads, steps = self._target(node)
        if reads is not None:
            self._walk_to(reads, steps)
            return
        self.generic_visit(node)

    def visit_Subscript(self, node: ast.Subscript) -> None:
        reads, steps = self._target(node)
        if reads is not None and steps:
            self._walk_to(reads, steps)
            self.visit(node.slice)
            return
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        # hasattr(cfg, "key"): the field may be absent
        if isinstance(func, ast.Name) and func.id == "hasattr" and len(node.args) == 2 and \
                isinstance(node.args[1], ast.Constant) and isinstance(node.args[1].value, str):
            reads, steps = self._target(node.args[0])
            if reads is not None:
                self._walk_to(reads, steps).child(node.args[1].value).optional = True
                return
        # cfg.get("key", default)
        if isinstance(func, ast.Attribute) and func.attr == "get" and node.args and \
                isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
            reads, steps = self._target(func.value)
            if reads is not None:
                inner = self._walk_to(reads, steps)
                key = node.args[0].value
                inner.child(key)
                if len(node.args) > 1:
                    inner.defaults[key] = node.args[1]
                for arg in node.args[1:]:
                    self.visit(arg)
                return
        reads, steps = self._target(func)
        if reads is not None:
            target = self._walk_to(reads, steps)
            target.called = max(target.called, len(node.args))
            target.call_keywords |= {k.arg for k in node.keywords if k.arg}
        # values handed on to other constructors / functions
        callee = _dotted(func)
        for position, arg in enumerate(node.args):
            if isinstance(arg, ast.Starred):
                break  # positions after a *args are unknown
            if isinstance(arg, ast.Name) and arg.id in self.names:
                self.handed.append((node, arg.id, position))
                if callee:
                    self.names[arg.id].handed_as.append((callee, position))
            elif isinstance(arg, ast.Attribute) and callee and isinstance(arg.value, ast.Name) and \
                    arg.value.id == "self" and f"self.{arg.attr}" in self.aliases:
                # stored first, then handed on (``self.d_input = d_input; nn.Linear(self.d_input, ...)``)
                self.aliases[f"self.{arg.attr}"].stored_handed.append((callee, position))
        for keyword in node.keywords:
            if isinstance(keyword.value, ast.Attribute) and keyword.arg:
                self._field(keyword.value, "passed", keyword.arg)
            if isinstance(keyword.value, ast.Name) and keyword.value.id in self.names and keyword.arg:
                self.handed.append((node, keyword.value.id, keyword.arg))
                self.names[keyword.value.id].handed_as.append((callee or "", keyword.arg))
        if isinstance(func, ast.Name) and func.id in ("min", "max") and len(node.args) >= 2 and \
                not any(isinstance(arg, ast.Starred) for arg in node.args):
            # ``min(n, self.mem_len)``: the values are ordered against each other
            for arg in node.args:
                reads, steps = self._target(arg) if isinstance(arg, (ast.Name, ast.Attribute)) else (None, [])
                if reads is not None and not steps:
                    reads.ordered = True
        if isinstance(func, ast.Name) and func.id in ("int", "float", "range") and not node.keywords:
            # ``self.n = int(n)``, ``range(2, self.n)``: a number
            for arg in node.args:
                reads, steps = self._target(arg) if isinstance(arg, (ast.Name, ast.Attribute)) else (None, [])
                if reads is not None and not steps:
                    reads.numeric = True
        if isinstance(func, ast.Name) and func.id in ("len", "enumerate", "zip", "list", "tuple", "sum", "max",
                                                      "min", "sorted", "reversed"):
            for arg in node.args:
                if isinstance(arg, ast.Name) and arg.id in self.names:
                    self.names[arg.id].iterated = True
        self.generic_visit(node)

    def _field(self, node: ast.expr, flag: str, keyword: str = "") -> None:
        """Mark the field ``node`` reads (``cfg.location``: a chain of at least one step) with
        ``flag``."""
        if not isinstance(node, (ast.Attribute, ast.Subscript)):  # ``cfg.location``, ``cfg["location"]``
            return
        reads, steps = self._target(node)
        if reads is None or not steps:
            return
        inner = self._walk_to(reads, steps)
        if flag == "passed":
            if keyword not in inner.passed:
                inner.passed.append(keyword)
        else:
            setattr(inner, flag, True)

    def visit_For(self, node: ast.For) -> None:
        if isinstance(node.iter, ast.Name) and node.iter.id in self.names:
            self.names[node.iter.id].iterated = True
        self._field(node.iter, "looped")
        self.generic_visit(node)

    def visit_comprehension(self, node: ast.comprehension) -> None:
        if isinstance(node.iter, ast.Name) and node.iter.id in self.names:
            self.names[node.iter.id].iterated = True
        self._field(node.iter, "looped")
        self.generic_visit(node)

    def visit_IfExp(self, node: ast.IfExp) -> None:
        test = node.test.operand if isinstance(node.test, ast.UnaryOp) else node.test
        self._field(test, "tested")
        if (stored := self._stored_field(test)) is not None:
            stored.tested = True
        self.generic_visit(node)

    def visit_BinOp(self, node: ast.BinOp) -> None:
        if isinstance(node.op, (ast.Add, ast.Sub, ast.Mult, ast.FloorDiv, ast.Pow, ast.Mod)):
            for side, other in ((node.left, node.right), (node.right, node.left)):
                # a name next to a number or another such name (a string or a list would be
                # concatenated or repeated, so a constant string beside it says nothing)
                # (also a name stored on self and read back: ``x + self.n`` after ``self.n = n``)
                reads, steps = self._target(side) if isinstance(side, (ast.Name, ast.Attribute)) else (None, [])
                if reads is not None and not steps and not (
                        isinstance(other, ast.Constant) and not isinstance(other.value, (int, float))) and \
                        not isinstance(other, (ast.List, ast.Tuple, ast.JoinedStr)):
                    reads.numeric = True
                elif (stored := self._stored_field(side)) is not None and _may_be_number(other):
                    stored.numeric = True  # ``self.factor * math.log(n)`` (a field stored on self)
        self.generic_visit(node)

    def visit_Compare(self, node: ast.Compare) -> None:
        sides = [node.left, *node.comparators]
        for (left, right), op in zip(zip(sides, sides[1:]), node.ops):
            if isinstance(op, (ast.Lt, ast.LtE, ast.Gt, ast.GtE)):
                # ``if self.cmem_len <= 0:``, ``if self.seq_len > t:``: ordered against a number
                # or a value that is not a string, list or tuple
                for side, other in ((left, right), (right, left)):
                    reads, steps = self._target(side) if isinstance(side, (ast.Name, ast.Attribute)) else (None, [])
                    if reads is not None and not steps and not isinstance(other, (ast.List, ast.Tuple, ast.JoinedStr)) \
                            and not (isinstance(other, ast.Constant) and not isinstance(other.value, (int, float))):
                        reads.ordered = True
                    elif (stored := self._stored_field(side)) is not None and _may_be_number(other):
                        stored.ordered = True  # ``if self.ratio > 1 / n:`` (a field stored on self)
                continue
            if not isinstance(op, (ast.Eq, ast.NotEq, ast.In, ast.NotIn)):
                continue
            for side, other in ((left, right), (right, left)):
                reads, steps = self._target(side) if isinstance(side, (ast.Name, ast.Attribute)) else (None, [])
                if reads is None:
                    # a config field stored on self, then compared (kan-gpt's ``self.kan_implementation
                    # = config.kan_implementation``, ``if self.kan_implementation == "EFFICIENT_KAN":``)
                    reads, steps = self._stored_field(side), []
                elif steps and all(kind == "attr" for kind, _ in steps):
                    # a config's field compared where it is read (``config.model_type != "gpt2"``):
                    # the field's strings (ints are left as they were)
                    inner = self._walk_to(reads, steps)
                    found = other.elts if isinstance(other, (ast.Tuple, ast.List, ast.Set)) else [other]
                    for value in found:
                        if isinstance(value, ast.Constant) and isinstance(value.value, str) and \
                                value.value not in inner.compared:
                            inner.compared.append(value.value)
                    continue
                if reads is None or steps:
                    continue
                found = other.elts if isinstance(other, (ast.Tuple, ast.List, ast.Set)) else [other]
                for value in found:
                    if isinstance(value, ast.Constant) and isinstance(value.value, str) and \
                            value.value not in reads.compared:
                        reads.compared.append(value.value)
                    elif isinstance(value, ast.Constant) and type(value.value) is int and \
                            value.value not in reads.compared_ints:
                        reads.compared_ints.append(value.value)
        self.generic_visit(node)

    def visit_If(self, node: ast.If) -> None:
        # each operand of an ``and`` / ``or`` test is a condition of its own (graphium's ``if not
        # self.biased_attention or attn_bias is None:``)
        tests = node.test.values if isinstance(node.test, ast.BoolOp) else [node.test]
        for test in tests:
            self._condition(test.operand if isinstance(test, ast.UnaryOp) else test)
        self.generic_visit(node)

    def _condition(self, test: ast.expr) -> None:
        """``test`` used as a condition: a name or a stored argument tested for truth."""
        if isinstance(test, ast.Name) and test.id in self.names:
            self.names[test.id].truth = True
        elif isinstance(test, ast.Subscript):
            self._field(test, "tested")  # ``if cfg["scored"]:``, ``if self.cfg["scored"]:``
        elif isinstance(test, ast.Attribute):
            reads, steps = self._target(test)
            if reads is not None and not steps:  # ``self.shifted = shifted; if self.shifted:``
                reads.truth = True
            self._field(test, "tested")
            if (stored := self._stored_field(test)) is not None:
                stored.tested = True  # ``self.std = cfg["std"]; if self.std:``


def stored_only(node: ast.ClassDef | None, param: str) -> bool:
    """Is ``__init__``'s argument ``param`` at most stored on ``self`` (``self.n = n``) and read
    nowhere else in the class, neither itself nor those attributes (a value kept for callers)?"""
    found = _stored_on_self(node, param)
    if found is None:
        return False
    stored, kept = found
    # (the parameter's own name is read only in ``__init__``: a same-named local of another
    # method, memory-transformer-xl's ``mem_len`` computed from the memories in ``forward``, is
    # another variable; the attributes it is stored in are read anywhere)
    init = method(node, "__init__")
    in_init = {id(n) for n in ast.walk(init)}
    return not any(_reads_param(n, param if id(n) in in_init else None, stored, kept) or _reads_by_name(n)
                   for n in ast.walk(node))


def _stored_on_self(node: ast.ClassDef | None, param: str) -> tuple[set, set] | None:
    """(the attributes ``__init__`` stores its argument ``param`` in by ``self.<attr> = param``,
    the ids of the reads of ``param`` those stores make); None when ``__init__`` takes no such
    argument or assigns it to anything but ``self``."""
    init = method(node, "__init__") if node is not None else None
    if init is None or param not in _params(init):
        return None
    stored, kept = set(), set()
    for stmt in ast.walk(init):
        if isinstance(stmt, ast.Assign) and isinstance(stmt.value, ast.Name) and stmt.value.id == param:
            if not all(isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name) and t.value.id == "self"
                       for t in stmt.targets):
                return None
            stored |= {t.attr for t in stmt.targets}
            kept.add(id(stmt.value))
    return stored, kept


def _reads_param(n: ast.AST, param: str, stored: set, kept: set) -> bool:
    """Is ``n`` a read of ``param`` (other than a store of it on self) or of ``self.<attr>`` it is
    stored in?"""
    if isinstance(n, ast.Name) and n.id == param and isinstance(n.ctx, ast.Load) and id(n) not in kept:
        return True
    return isinstance(n, ast.Attribute) and n.attr in stored and isinstance(n.value, ast.Name) \
        and n.value.id == "self" and isinstance(n.ctx, ast.Load)


def _reads_by_name(n: ast.AST) -> bool:
    """``getattr``/``vars``/``locals``: names read by a string or all at once."""
    return isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id in ("getattr", "vars", "locals")


def _is_not_none(test: ast.AST, names: set[str], stored: set[str]) -> bool:
    """Is ``test`` ``<the argument> is not None`` (the name itself or ``self.<attr>`` it is stored
    in), alone or as one term of an ``and``?"""
    if isinstance(test, ast.BoolOp) and isinstance(test.op, ast.And):
        return any(_is_not_none(value, names, stored) for value in test.values)
    if not (isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], ast.IsNot)
            and isinstance(test.comparators[0], ast.Constant) and test.comparators[0].value is None):
        return False
    left = test.left
    return (isinstance(left, ast.Name) and left.id in names) or (
        isinstance(left, ast.Attribute) and left.attr in stored and isinstance(left.value, ast.Name)
        and left.value.id == "self")


def none_guarded(node: ast.ClassDef | None, param: str) -> bool:
    """Does the class's code handle ``__init__``'s argument ``param`` being None: is every read of
    it (itself, or ``self.<attr>`` it is stored in by ``self.<attr> = param``) inside the body of an
    ``if <it> is not None:`` (or ``a if <it> is not None else b``), with at least one such test?
    (linformer's ``causal_mask``: ``if self.causal_mask is not None: ... ~self.causal_mask``.)
    A read anywhere else (``param.shape`` in ``__init__``, an unguarded ``~self.mask``) says None
    may break the code: False."""
    found = _stored_on_self(node, param)
    if found is None:
        return False
    stored, kept = found
    names = {param}
    guards = 0
    unguarded = False

    def walk(n: ast.AST, guarded: bool) -> None:
        nonlocal guards, unguarded
        if unguarded:
            return
        if isinstance(n, (ast.If, ast.IfExp)) and _is_not_none(n.test, names, stored):
            guards += 1
            # the test's own other terms (``x is not None and x.any()``) count as guarded
            walk(n.test, True)
            for child in (n.body if isinstance(n.body, list) else [n.body]):
                walk(child, True)
            for child in (n.orelse if isinstance(n.orelse, list) else [n.orelse]):
                walk(child, guarded)
            return
        if _reads_by_name(n):
            unguarded = True
            return
        if not guarded and _reads_param(n, param, stored, kept):
            unguarded = True
            return
        for child in ast.iter_child_nodes(n):
            walk(child, guarded)

    walk(node, False)
    return guards > 0 and not unguarded


def _positional_target(params: list[str], where: object) -> str | None:
    if isinstance(where, int) and where < len(params):
        return params[where]
    if isinstance(where, str) and where in params:
        return where
    return None


def _follow(collector: _Collector, names: dict[str, Reads], node: ast.ClassDef | None,
            classes: dict[str, ast.ClassDef], depth: int, seen: set, memo: dict) -> None:
    """Merge into ``names`` the reads made where the values are handed on: to a local class's
    constructor, or to a method of the same class (``self._make_layer(block, ...)``)."""
    for call, name, where in collector.handed:
        callee = call.func
        if isinstance(callee, ast.Name) and callee.id in classes:
            init = method(classes[callee.id], "__init__")
            if init is None:
                continue
            target = _positional_target(_params(init)[1:], where)
            if target:
                inner = argument_reads(classes, callee.id, depth + 1, seen, memo)
                if target in inner:
                    names[name].merge(inner[target])
        elif isinstance(callee, ast.Attribute) and isinstance(callee.value, ast.Name) and \
                callee.value.id == "self" and node is not None and depth < 6:
            helper = method(node, callee.attr)
            key = (node.name, callee.attr, str(where))
            if helper is None or key in seen:
                continue
            target = _positional_target(_params(helper)[1:], where)
            if target is None:
                continue
            sub = _Collector({target: Reads()})
            sub.visit(helper)
            _follow(sub, sub.names, node, classes, depth + 1, seen | {key}, memo)
            names[name].merge(sub.names[target])


def argument_reads(classes: dict[str, ast.ClassDef], class_name: str, depth: int = 0,
                   seen: set | None = None, memo: dict | None = None) -> dict[str, Reads]:
    """For each ``__init__`` argument of ``class_name``: how its value is read, including in the
    local classes and methods it is handed to.

    ``memo`` holds the reads already worked out in this walk, by class, depth and the classes
    above it (what the answer depends on): a constructor that hands ten of its arguments to one
    local class asks for that class's reads ten times, and each of those asks again one level
    down, so without it a deep model (Uformer: model -> layer -> block -> attention, each handing
    on most of its arguments) took tens of minutes of one CPU before verify built anything.  Pass
    one ``memo`` to several calls over the same ``classes`` only where the answers are read, not
    merged into (each answer is shared)."""
    seen = seen if seen is not None else set()
    memo = memo if memo is not None else {}
    node = classes.get(class_name)
    init = method(node, "__init__") if node is not None else None
    if init is None or class_name in seen or depth > 6:
        return {}
    key = (class_name, depth, frozenset(seen))
    if key in memo:
        return memo[key]
    seen = seen | {class_name}
    names = {p: Reads() for p in _params(init)[1:]}
    collector = _Collector(names)
    collector.visit(init)
    _follow(collector, names, node, classes, depth, seen, memo)
    # other methods read what __init__ stored (self.cfg = cfg; ... self.cfg.dropout)
    for item in node.body:
        if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)) and item.name != "__init__":
            local = _Collector({})
            local.aliases = dict(collector.aliases)
            local.fields = dict(collector.fields)
            local.visit(item)
    memo[key] = names
    return names


CONFIG_NAMES = {"config", "cfg", "conf", "args", "opt", "opts", "hparams", "hp", "params", "model_config",
                "model_cfg", "model_args", "settings", "options", "dims", "hps", "configs", "arch", "spec"}


def is_config_like(name: str, reads: Reads) -> bool:
    """A value read as an object with named fields (``cfg.dim``), not called or indexed."""
    return reads.used_as_object and reads.called < 0 and (name.lower() in CONFIG_NAMES or len(reads.attrs) >= 2
                                                          or any(r.used_as_object for r in reads.attrs.values()))


def local_module_classes_with(classes: dict[str, ast.ClassDef], attrs: set[str], called: int) -> list[str]:
    """Local classes that define class attributes ``attrs`` (``expansion``) and whose ``__init__``
    takes ``called`` positional arguments: the candidates for a class-valued argument."""
    out: list[tuple[int, str]] = []
    for name, node in classes.items():
        if not node.bases:
            continue
        defined: set[str] = set()
        for item in node.body:
            if isinstance(item, ast.Assign):
                defined |= {t.id for t in item.targets if isinstance(t, ast.Name)}
            elif isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
                defined.add(item.target.id)
        if not attrs <= defined:
            continue
        init = method(node, "__init__")
        if init is None:
            continue
        positional = len([*init.args.posonlyargs, *init.args.args]) - 1
        required = positional - len(init.args.defaults)
        if called >= 0 and not (required <= called <= positional or init.args.vararg):
            continue
        out.append((0 if attrs else 1, name))
    return [name for _, name in sorted(out, key=lambda x: x[0])]


def _may_be_number(node: ast.AST) -> bool:
    """Could ``node``, the other side of an operator or a comparison with a stored field, be a
    number (no string, bytes or None constant, no list, tuple or f-string)?"""
    if isinstance(node, ast.Constant):
        return isinstance(node.value, (int, float))
    return not isinstance(node, (ast.List, ast.Tuple, ast.JoinedStr))


def calls_super_init(node: ast.AST) -> bool:
    """Is ``node`` the call ``super().__init__(...)`` or ``super(Cls, self).__init__(...)``?  (One
    reading for the builder, which follows a class's arguments into its base, and for the
    unread-field check, which follows a configuration handed whole to the base.)"""
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "__init__" \
        and isinstance(node.func.value, ast.Call) and isinstance(node.func.value.func, ast.Name) \
        and node.func.value.func.id == "super"
