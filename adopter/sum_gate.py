"""Before a flow graph is built for a pattern ``$d = src(...); ... ; $s = $d + $r; $y = L($s, ...)``
(ADP005's dropout -> residual add -> LayerNorm), ask whether the root's code can carry a value
of ``src`` through an addition into an argument of ``L`` at all; when it cannot, the matcher
skips the root without building its flow (issue #12's speed target: of the flows the paper
corpus builds, some 200 are built for ADP005 alone and match nothing -- an encoder's embedding
sum and final LayerNorm beside a dropout that feeds neither, a tuple ``states + (h,)`` as the
add).

Why it is sound (an over-approximation of the flow's data flow).  A match binds a node of the
first step, a chain of steps each reading the previous one's output, an addition node one of
whose operands is that chain's value (through copies), and a node of the last step reading the
sum.  This gate runs a forward, flow-sensitive taint analysis over the root's own statements:

* tag ``D`` ("may hold or be computed from a value of the first step"): the result of every call
  whose callee may be that step (``_may_call``: its words meet the step's prefilter word group --
  the same group :meth:`Matcher._candidate_roots` trusts --, or the callee is anything the gate
  cannot name: a local name, a parameter, a call's result, an attribute of ``self`` that
  ``__init__`` does not bind as a layer); every expression with a tagged part carries its tags
  (names, attributes, subscripts, tuples, calls, comprehensions: no step loses a tag);
* tag ``S`` ("may hold or be computed from a sum with a D operand"): every binary operation or
  augmented assignment with a D operand (any operator: the builder also reads subtractions and
  sums of terms as additions), and every call with a D input unless the call can only be a
  bound layer (a layer node, no addition: ``_adds``; a file with a bias-adding module class
  makes every call an addition) or a function whose name holds no spelling of torch's addition
  family (the table's ``torch.add`` spellings, ``baddbmm``, ``addcmul_``, ``sum``);
* stores into attributes, subscripts and containers (``self.h = d``, ``outs.append(d)``, any
  call's name arguments) add their tags to what they store into and are never taken back;
  ``if`` branches are joined, loops run to a fixed point (with ``break``/``continue`` states).

The root may be skipped only when no call that may be the last step (``_may_call`` with its
group) ever receives an S-tagged value.  Anything the gate does not model answers "may reach"
(the flow is built): a root that reaches a helper (``ClassStructure.words`` read anything
beyond the root's own text: inlined methods, file functions, tables, dispatches), nested
functions and lambdas, calls of a non-layer attribute the class assigns (a stored lambda or
partial), ``try``, ``match``, ``global``/``nonlocal``, the walrus, and names that
reach code or attributes by strings (``getattr``, ``setattr``, ``super``, ``exec``...).
"""

from __future__ import annotations

import ast
import itertools

from .structure.formulas import bias_add_module
from .structure.treewalk import children, walk

D, S = 1, 2
# the (first step, last step) word keys of every chain pattern a matcher was made for
CHAINS: dict[tuple, None] = {}
# middle steps of a chain whose value the gate's tags carry (``outputs[0]``: a subscript)
_CARRYING = frozenset({"canon.first"})
# layer classes whose call may pass its input on (read as a copy, or running members that may)
_PASSING = frozenset({"Identity", "Sequential", "ModuleList", "ModuleDict"})
# names that reach attributes or code the gate cannot follow: the root's flow is built
_OPAQUE_WORDS = frozenset({"getattr", "setattr", "delattr", "super", "exec", "eval", "locals", "globals",
                           "vars", "__dict__", "__setattr__", "__getattribute__", "_modules", "apply"})
# statements and expressions the gate does not model
_UNMODELLED = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda, ast.Try, ast.Global,
               ast.Nonlocal, ast.NamedExpr) + ((ast.Match,) if hasattr(ast, "Match") else ()) \
    + ((ast.TryStar,) if hasattr(ast, "TryStar") else ())


class _Unknown(Exception):
    """The gate met something it does not model: the flow must be built."""


class _Reached(Exception):
    """An S-tagged value reaches a call that may be the last step."""


def pattern_shape(nodes) -> tuple | None:
    """(index of the first step, index of the last) when a pattern's steps are a chain from a
    call step through an addition into a last call step (``$d = src(..); $s = $d + $r;
    $y = L($s, ...)``, each step before the addition reading the previous one's output, none
    optional); None for any other pattern (the gate then never asks)."""
    if len(nodes) < 3 or any(p.optional for p in nodes):
        return None
    if any(p.op not in _CARRYING for p in nodes[1:-2]):
        return None  # (a middle layer or call step's output is a new value to the gate, which
        # would lose a chain through it: only selections of the first step's value pass)
    add, last = nodes[-2], nodes[-1]
    if add.op not in ("+", "torch.add") or len(add.outs) != 1 or not last.args or last.args[0] != add.outs[0]:
        return None
    if last.op == "method" or not (last.op == "layer" or last.op[:1].isalpha()):
        return None
    first = nodes[0]
    if first.op == "method" or not (first.op == "layer" or first.op[:1].isalpha()):
        return None
    for before, step in itertools.pairwise(nodes[:-1]):
        if not set(before.outs) & {*step.args, *(v for _, v in step.kwargs)}:
            return None  # (a step that does not read the previous one: not a chain)
    return (0, len(nodes) - 1)


def may_reach(cls, module, root: str, source_words: frozenset | None, sink_words: frozenset | None) -> bool:
    """Can a value of a call that may be the first step reach, through an addition, an argument
    of a call that may be the last step, in root ``root`` of ``cls``?  (``*_words``: the steps'
    prefilter word groups; None: any call may be that step.)

    One analysis per root serves every chain pattern that asks (ADP005's alternatives differ in
    their first step): it runs with the union of the groups asked for so far in this class (a
    larger group only lets more calls be a step, so the answer stays an over-approximation for
    each asker), and is redone only when a group outside that union is asked for."""
    state = cls.__dict__.get("_sum_gate")
    if state is None:
        state = cls._sum_gate = [frozenset(), frozenset(), False, False, {}]
    sources, sinks, any_source, any_sink, answers = state
    grown = False
    if source_words is None:
        grown |= not any_source
        any_source = state[2] = True
    elif not source_words <= sources:
        sources = state[0] = sources | source_words
        grown = True
    if sink_words is None:
        grown |= not any_sink
        any_sink = state[3] = True
    elif not sink_words <= sinks:
        sinks = state[1] = sinks | sink_words
        grown = True
    if grown:
        answers.clear()
    found = answers.get(root)
    if found is None:
        found = answers[root] = _may_reach(cls, module, root, None if any_source else sources,
                                           None if any_sink else sinks)
    return found


def _may_reach(cls, module, root, source_words, sink_words) -> bool:
    func = cls.functions.get(root)
    if func is None:
        return True
    own = module.mention(func)
    if cls.words(root) is not own or not own.isdisjoint(_OPAQUE_WORDS):
        return True  # (a helper, a table, a dispatch is reached: its code is the flow's too)
    try:
        _Gate(cls, module, func, source_words, sink_words).run()
    except _Reached:
        return True
    except (_Unknown, RecursionError):
        return True
    return False


def _add_spelled(name: str) -> bool:
    """Can a function or method of this name compute an addition in the flow?  ``torch.add``'s
    spellings (``add``, ``add_``, ``__add__``, ``__iadd__``) and the builder's other readings
    (``baddbmm``, ``addcmul_``, a ``sum`` of terms): every name holding ``add`` or ``sum``,
    a superset of them (a callee imported under another name is resolved first: _adds)."""
    lowered = name.lower()
    return "add" in lowered or "sum" in lowered


def _bias_adders(module) -> bool:
    """Does the file define a module class whose call adds a bias to its input (a layer call the
    builder reads as an addition)?  Once per file."""
    found = module.__dict__.get("_sum_gate_adders")
    if found is None:
        classes = list(module.names.classes.values())
        found = module._sum_gate_adders = any(bias_add_module(c) for c in classes)
    return found


def _assigned_attributes(cls, names) -> set:
    """The attributes of ``self`` the class's methods assign (once per class)."""
    found = cls.__dict__.get("_sum_gate_assigned")
    if found is None:
        owner = names.classes.get(cls.name)
        found = cls._sum_gate_assigned = {
            n.attr for n in walk(owner) if n.__class__ is ast.Attribute and n.ctx.__class__ is not ast.Load
            and n.value.__class__ is ast.Name and n.value.id == "self"} if owner is not None else set()
    return found


def _words_of(expr: ast.expr) -> set:
    """The identifiers of a callee: its names and attributes (a chain's, its subscripts' too)."""
    words = set()
    todo = [expr]
    while todo:
        node = todo.pop()
        kind = node.__class__
        if kind is ast.Attribute:
            words.add(node.attr)
            todo.append(node.value)
        elif kind is ast.Name:
            words.add(node.id)
        elif kind is ast.Subscript:
            todo.append(node.value)
            todo.append(node.slice)
        else:
            todo.extend(n for n in children(node) if isinstance(n, ast.expr))
    return words


def _path(expr: ast.expr) -> str | None:
    """``self.a.b`` for ``self.a[i].b`` (subscripts dropped); None when not rooted at a name."""
    parts = []
    while True:
        if expr.__class__ is ast.Attribute:
            parts.append(expr.attr)
            expr = expr.value
        elif expr.__class__ is ast.Subscript:
            expr = expr.value
        elif expr.__class__ is ast.Name:
            parts.append(expr.id)
            return ".".join(reversed(parts))
        else:
            return None


class _Gate:
    """One run of the taint analysis over a root's body (see the module's docstring)."""

    def __init__(self, cls, module, func, source_words, sink_words):
        self.func = func
        self.source = source_words
        self.sink = sink_words
        args = func.args
        params = [a.arg for a in (*args.posonlyargs, *args.args, *args.kwonlyargs)]
        params += [a.arg for a in (args.vararg, args.kwarg) if a is not None]
        info = cls.info
        self.self_name = params[0] if params and params[0] == "self" and info is not None else None
        self.bindings = info.bindings if info is not None else {}
        # the attributes whose layers __init__ binds (``layers`` for ``layers[0]``, ``mlp.fc``)
        self.bound_heads = {attr.split("[", 1)[0].split(".", 1)[0] for attr in self.bindings}
        self.methods = cls.functions
        self.adders = _bias_adders(module)
        names = module.names
        self.resolve = names.resolve
        self.file_classes = set(names.classes)
        # attributes of ``self`` the class assigns that are no layer: a callable stored there
        # (a lambda, a partial, a function) may be inlined where it is called
        self.stored_callables = _assigned_attributes(cls, names) if info is not None else set()
        self.module_opaque = set(names.functions) | set(names.lambdas) | set(names.partials) \
            | set(names.choices) | set(names.constants) | set(names.classes)
        local = set(params)
        layerish: dict[str, bool] = {}
        nodes = list(walk(func))  # (one walk, read four times)
        for node in nodes:
            if isinstance(node, _UNMODELLED) and node is not func:
                raise _Unknown
            if node.__class__ is ast.Name and node.ctx.__class__ is not ast.Load:
                local.add(node.id)
            elif node.__class__ in (ast.Import, ast.ImportFrom):
                local.update((a.asname or a.name).split(".")[0] for a in node.names)
            elif node.__class__ in (ast.For, ast.AsyncFor) and node.target.__class__ is ast.Name:
                pass
        stored_names = {n.id for n in nodes if n.__class__ is ast.Name and n.ctx.__class__ is not ast.Load}
        if self.self_name is not None and self.self_name in stored_names:
            raise _Unknown  # (``self`` rebound)
        self.local = local
        # locals that only ever hold layers bound in __init__: ``for layer in self.layers``,
        # ``layer = self.layers[i]`` (their calls are layer nodes, no addition)
        for node in nodes:
            if node.__class__ in (ast.For, ast.AsyncFor):
                for name, held in self._bound_by_loop(node.target, node.iter):
                    layerish[name] = layerish.get(name, True) and held
            elif node.__class__ is ast.Assign:
                for target in node.targets:
                    for sub in walk(target):
                        if sub.__class__ is ast.Name:
                            held = target.__class__ is ast.Name and self._layer_path(node.value)
                            layerish[sub.id] = layerish.get(sub.id, True) and held
            elif node.__class__ in (ast.AugAssign, ast.AnnAssign, ast.comprehension, ast.withitem):
                target = node.optional_vars if node.__class__ is ast.withitem else node.target
                for sub in walk(target) if target is not None else ():
                    if sub.__class__ is ast.Name:
                        layerish[sub.id] = False
            elif node.__class__ in (ast.Import, ast.ImportFrom):
                for a in node.names:
                    layerish[(a.asname or a.name).split(".")[0]] = False
        for name in params:
            layerish[name] = False
        self.layerish = {name for name, held in layerish.items() if held}
        self.stored: dict[str, int] = {}
        self.aliases, self.held = _alias_classes(nodes, self.self_name)

    # -- what a callee may be ---------------------------------------------------------------
    def _layer_path(self, expr: ast.expr) -> bool:
        """Is ``expr`` an attribute chain of ``self`` whose head ``__init__`` binds as a layer
        (not a method): ``self.attn``, ``self.layers[i]``, ``self.blocks.0``?"""
        path = _path(expr)
        if path is None or self.self_name is None:
            return False
        parts = path.split(".")
        if parts[0] != self.self_name or len(parts) < 2:
            return False
        head = parts[1]
        return head not in self.methods and head in self.bound_heads

    def _bound_by_loop(self, target, iterable):
        """(name, holds a layer) for a loop's target names: ``for layer in self.layers`` and
        ``for i, layer in enumerate(self.layers)`` hold layers."""
        if target.__class__ is ast.Name:
            return [(target.id, self._layer_path(iterable))]
        if (target.__class__ is ast.Tuple and len(target.elts) == 2 and target.elts[1].__class__ is ast.Name
                and iterable.__class__ is ast.Call and iterable.func.__class__ is ast.Name
                and iterable.func.id == "enumerate" and "enumerate" not in self.module_opaque
                and len(iterable.args) == 1 and not iterable.keywords):
            found = [(target.elts[1].id, self._layer_path(iterable.args[0]))]
            return found + [(n.id, False) for n in walk(target.elts[0]) if n.__class__ is ast.Name]
        return [(n.id, False) for n in walk(target) if n.__class__ is ast.Name]

    def _may_call(self, func: ast.expr, words: frozenset | None) -> bool:
        """May a call of ``func`` be the step whose prefilter word group is ``words``?  Its words
        decide where the gate can name the callee: a layer ``__init__`` binds (``self.drop``,
        ``self.layers[i]``), a name (or attribute chain of one) that is no local of the root nor
        a function, lambda, partial, class or constant of the file (``F.dropout``), a method of a
        local value (``h.view``: by the method's name; ``forward`` and ``__call__`` may run
        anything).  Anything else may be the step: a local callable, a call's result, an
        attribute of ``self`` no layer binding names, a local module's attribute."""
        if words is None:
            return True
        path = _path(func)
        if path is None:
            if func.__class__ is ast.Attribute:  # (a method of a computed value: by its name)
                return func.attr in words or func.attr in ("forward", "__call__")
            return True
        parts = path.split(".")
        head = parts[0]
        if head == self.self_name:
            return not self._layer_path(func) or not words.isdisjoint(_words_of(func))
        if head in self.local:
            if func.__class__ is not ast.Attribute or len(parts) != 2 or head in self.layerish \
                    or func.value.__class__ is not ast.Name:
                return True
            return func.attr in words or func.attr in ("forward", "__call__")
        if head in self.module_opaque:
            return True
        return not words.isdisjoint(_words_of(func))

    def _new_value(self, func: ast.expr) -> bool:
        """Is a call of ``func`` a layer node whose output is a new value, never its input passed
        on: ``self.<attr>(...)`` with every class ``__init__`` binds to ``attr`` one of another
        file, none an ``Identity`` (read as a copy) nor a container (``Sequential`` runs its
        members, which may be)?  (A bias-adding class of the file is one of this file's.)"""
        if func.__class__ is not ast.Attribute or func.value.__class__ is not ast.Name \
                or func.value.id != self.self_name or self.self_name is None or func.attr in self.methods:
            return False
        ctors = self.bindings.get(func.attr)
        if not ctors:
            return False
        for ctor in ctors:
            last = ctor.fqn.rsplit(".", 1)[-1]
            if last in _PASSING or last in self.file_classes or not ctor.fqn.startswith("torch."):
                return False
        return True

    def _hands_layer(self, call: ast.Call, words: frozenset | None) -> bool:
        """Does the call hand on a layer that may be the step (``checkpoint(self.drop, x)``,
        ``checkpoint(layer, x)`` with ``layer`` one of ``self.layers``)?"""
        for arg in (*call.args, *(k.value for k in call.keywords)):
            if arg.__class__ is ast.Starred:
                arg = arg.value
            if arg.__class__ is ast.Name and arg.id in self.layerish:
                return True
            if self._layer_path(arg) and (words is None or not words.isdisjoint(_words_of(arg))):
                return True
        return False

    def _adds(self, func: ast.expr) -> bool:
        """May a call of ``func`` with a D input be an addition of it?"""
        if self.adders:
            return True
        if func.__class__ is ast.Name and func.id in self.layerish:
            return False
        if self._layer_path(func):
            return False
        path = _path(func)
        if path is None:
            return True
        head = path.split(".")[0]
        if head in self.local and func.__class__ is ast.Name:
            return True  # (a local callable: anything)
        last = path.rsplit(".", 1)[-1]
        if _add_spelled(last) or head in self.module_opaque:
            return True
        resolved = self.resolve(func)  # (``from torch import add as plus``: what it names)
        return resolved is not None and _add_spelled(resolved.rsplit(".", 1)[-1])

    # -- the analysis ---------------------------------------------------------------------
    def run(self) -> None:
        self._block(self.func.body, {}, None)

    def _block(self, body, env: dict, loop) -> dict:
        for stmt in body:
            env = self._stmt(stmt, env, loop)
        return env

    def _stmt(self, stmt, env: dict, loop) -> dict:
        kind = stmt.__class__
        if kind is ast.Assign:
            tags = self._expr(stmt.value, env)
            for target in stmt.targets:
                self._store(target, tags, env, strong=True)
        elif kind is ast.AugAssign:
            tags = self._expr(stmt.value, env) | self._expr(stmt.target, env)
            if tags & D:
                tags |= S
            self._store(stmt.target, tags, env, strong=False)
        elif kind is ast.AnnAssign:
            if stmt.value is not None:
                self._store(stmt.target, self._expr(stmt.value, env), env, strong=True)
        elif kind in (ast.Expr, ast.Return):
            if stmt.value is not None:
                self._expr(stmt.value, env)
        elif kind is ast.If:
            self._expr(stmt.test, env)
            left = self._block(stmt.body, dict(env), loop)
            right = self._block(stmt.orelse, dict(env), loop)
            env = _join(left, right)
        elif kind in (ast.For, ast.AsyncFor, ast.While):
            env = self._loop(stmt, env)
        elif kind in (ast.With, ast.AsyncWith):
            for item in stmt.items:
                tags = self._expr(item.context_expr, env)
                if item.optional_vars is not None:
                    self._store(item.optional_vars, tags, env, strong=True)
            env = self._block(stmt.body, env, loop)
        elif kind in (ast.Break, ast.Continue):
            if loop is not None:
                loop.append(dict(env))
        elif kind in (ast.Raise, ast.Assert, ast.Delete):
            for sub in children(stmt):
                if isinstance(sub, ast.expr) and sub.__class__ not in (ast.Name,):
                    self._expr(sub, env)
        elif kind in (ast.Pass, ast.Import, ast.ImportFrom):
            pass
        else:
            raise _Unknown
        return env

    def _loop(self, stmt, env: dict) -> dict:
        is_for = stmt.__class__ is not ast.While
        iter_tags = self._expr(stmt.iter, env) if is_for else 0
        head = dict(env)
        for _ in range(50):
            state = (dict(head), dict(self.stored))
            inner = dict(head)
            if is_for:
                self._store(stmt.target, iter_tags, inner, strong=True)
            else:
                self._expr(stmt.test, inner)
            exits: list = []
            end = self._block(stmt.body, inner, exits)
            for other in exits:
                end = _join(end, other)
            head = _join(head, end)
            if is_for:
                iter_tags = iter_tags | self._expr(stmt.iter, head)
            if (head, self.stored) == state:
                break
        else:
            raise _Unknown
        after = head
        if is_for:
            self._store(stmt.target, iter_tags, after, strong=False)
        return self._block(stmt.orelse, after, None)

    def _store(self, target, tags: int, env: dict, strong: bool) -> None:
        kind = target.__class__
        if kind is ast.Name:
            env[target.id] = tags if strong else env.get(target.id, 0) | tags
        elif kind in (ast.Tuple, ast.List):
            for elt in target.elts:
                self._store(elt, tags, env, strong)
        elif kind is ast.Starred:
            self._store(target.value, tags, env, strong)
        elif kind in (ast.Attribute, ast.Subscript):
            if kind is ast.Subscript:
                self._expr(target.slice, env)
            self._spoil(target, tags, env)
        else:
            raise _Unknown

    def _spoil(self, target, tags: int, env: dict) -> None:
        """A value stored into (or handed to a call that may change) what ``target`` names: the
        tags are added to it, never taken back."""
        if not tags:
            return
        path = _path(target)
        if path is None:
            return
        head = path.split(".")[0]
        if path == self.self_name:
            return
        if head != self.self_name:
            for name in self.aliases.get(head, (head,)):
                env[name] = env.get(name, 0) | tags
                for held in self.held.get(name, ()):
                    self.stored[held] = self.stored.get(held, 0) | tags
        if "." in path:
            self.stored[path] = self.stored.get(path, 0) | tags

    def _read(self, path: str) -> int:
        tags = 0
        for key, more in self.stored.items():
            if key == path or key.startswith(path + ".") or path.startswith(key + "."):
                tags |= more
        return tags

    def _expr(self, expr, env: dict) -> int:
        kind = expr.__class__
        if kind is ast.Name:
            return env.get(expr.id, 0)
        if kind is ast.Constant:
            return 0
        if kind is ast.Call:
            return self._call(expr, env)
        if kind is ast.BinOp:
            tags = self._expr(expr.left, env) | self._expr(expr.right, env)
            return tags | S if tags & D else tags
        if kind in (ast.Attribute, ast.Subscript):
            tags = self._expr(expr.value, env)
            if kind is ast.Subscript:
                tags |= self._expr(expr.slice, env)
            if self.stored:
                path = _path(expr)
                if path is not None:
                    tags |= self._read(path)
            return tags
        if kind in (ast.ListComp, ast.SetComp, ast.GeneratorExp, ast.DictComp):
            inner = dict(env)
            tags = 0
            for _ in range(2):  # (a generator's names may feed the next generator's iterable)
                for gen in expr.generators:
                    self._store(gen.target, self._expr(gen.iter, inner), inner, strong=False)
                    for test in gen.ifs:
                        tags |= self._expr(test, inner)
            if kind is ast.DictComp:
                tags |= self._expr(expr.key, inner) | self._expr(expr.value, inner)
            else:
                tags |= self._expr(expr.elt, inner)
            for name, more in inner.items():  # (what the comprehension changed, kept)
                if more:
                    env[name] = env.get(name, 0) | more
            return tags
        tags = 0
        for sub in children(expr):
            if isinstance(sub, ast.expr):
                tags |= self._expr(sub, env)
            elif sub.__class__ is ast.keyword:
                tags |= self._expr(sub.value, env)
        return tags

    def _call(self, call: ast.Call, env: dict) -> int:
        func = call.func
        path = _path(func)
        if path is not None and self.self_name is not None and path.startswith(self.self_name + "."):
            attr = path.split(".")[1]
            if attr in self.stored_callables and not self._layer_path(func) and attr not in self.methods:
                raise _Unknown  # (a callable stored on self: its body may be inlined here)
        inputs = [self._expr(a, env) for a in call.args] + [self._expr(k.value, env) for k in call.keywords]
        given = 0
        for tags in inputs:
            given |= tags
        receiver = self._expr(func, env)
        given_all = given | receiver
        if given_all & S and (self._may_call(func, self.sink) or self._hands_layer(call, self.sink)):
            raise _Reached
        tags = 0 if self._new_value(func) else given_all
        if self._may_call(func, self.source) or self._hands_layer(call, self.source):
            tags |= D
        if given_all & D and self._adds(func):
            tags |= S
        if given_all:
            # what the call may change: its receiver (``outs.append(d)``) and name arguments,
            # with what the call's own result may hold (an in-place ``h.add_(x)`` leaves a sum
            # in ``h``)
            changed = given_all | tags
            if func.__class__ is ast.Attribute and not self._layer_path(func):
                self._spoil(func.value, changed, env)
            for arg in (*call.args, *(k.value for k in call.keywords)):
                if arg.__class__ is ast.Starred:
                    arg = arg.value
                if arg.__class__ in (ast.Name, ast.Attribute, ast.Subscript):
                    self._spoil(arg, changed, env)
        return tags


def _alias_classes(nodes, self_name) -> tuple[dict[str, tuple], dict[str, set]]:
    """Local names that may hold the same object (``a = outs``, ``a, b = x, y``, ``a = self.c``
    joins ``a`` and ``self``'s attribute's holders): name -> every name of its class, so that a
    change through one name (``a.append(d)``) reaches the others."""
    parent: dict[str, str] = {}
    held: dict[str, set] = {}  # name -> the attribute paths of ``self`` assigned to it

    def find(name):
        while parent.get(name, name) != name:
            name = parent[name]
        return name

    for node in nodes:
        if node.__class__ is ast.Assign:
            names = [n.id for t in node.targets for n in walk(t) if n.__class__ is ast.Name]
            values = [node.value] if node.value.__class__ not in (ast.Tuple, ast.List) else node.value.elts
            for value in values:
                path = _path(value.value if value.__class__ is ast.Starred else value)
                if path is not None and path.split(".")[0] == self_name:
                    for n in names[:]:
                        held.setdefault(n, set()).add(path)
                elif path is not None:
                    names.append(path.split(".")[0])
            for a, b in itertools.pairwise(names):
                ra, rb = find(a), find(b)
                if ra != rb:
                    parent[ra] = rb
    classes: dict[str, list] = {}
    for name in parent:
        classes.setdefault(find(name), []).append(name)
    found = {}
    for root, members in classes.items():
        members = tuple(set(members) | {root})
        for name in members:
            found[name] = members
    return found, held


def _join(left: dict, right: dict) -> dict:
    joined = dict(left)
    for name, tags in right.items():
        joined[name] = joined.get(name, 0) | tags
    return joined
