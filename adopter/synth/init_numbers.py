"""Is what a module stores in ``self.<attr>`` known to be a Python number?

ADP010's fix writes a scale factor as ``scale=<factor>``, which takes a Python number only.
A factor that reads ``self.scale`` looks like a number to the fixer, but ``__init__`` may have
bound it to a constructor parameter a caller hands a tensor (a per-head temperature).  Where
that cannot be ruled out, the fix keeps the original code for any value but a number, the way
it does for a factor handed to the forward itself (sdpa's ``_handed_factor_terms``).

Known to be a number: a literal; arithmetic, ``or``/``if``-choices and math calls of known
numbers; a non-``self`` attribute (``config.x``) or a size read (``x.shape[...]``,
``x.size(...)``); a local of ``__init__`` every binding of which is such a value; another
such ``self.<attr>``; and a constructor parameter that is a size (handed to a torch.nn layer's
constructor in ``__init__``) or whose default is a number (or None where the expression
replaces None by a number: ``qk_scale or head_dim ** -0.5``) and to which every construction
of the class in the file passes a number or nothing; a literal power of a required constructor
parameter (``dim_head ** -0.5``: a size made a scale).  Everything else may be a tensor.
"""

from __future__ import annotations

import ast
import re

from ..structure.formulas import passed_argument
from ..structure.treewalk import ast_walk

_NUMBER_CALLS = {"math.sqrt", "float", "int", "math.pow", "numpy.sqrt", "np.sqrt", "math.log", "len", "max", "min",
                 "abs", "round", "math.exp", "math.log2", "numpy.power",
                 "numpy.log", "numpy.exp"}
_SIZE_METHODS = {"size", "dim", "ndimension", "numel"}
# torch.nn constructors that take anything but sizes and rates as arguments
_NOT_SIZED = {"Parameter", "Buffer", "Identity", "Sequential", "ModuleList", "ModuleDict", "ParameterList",
              "ParameterDict"}
_TENSOR_OF_NUMBER = {"torch.tensor", "torch.as_tensor"}
_MATH_OF_TENSOR = {"torch.sqrt", "torch.rsqrt", "torch.exp", "torch.log"}
# methods that keep a 0-d tensor of one number so (a cast, a move, the root of a 0-d tensor)
_SAME_NUMBER_METHODS = {"to", "type", "float", "double", "half", "bfloat16", "sqrt", "rsqrt", "item"}
# torch functions whose positional arguments are sizes
_SIZE_FACTORIES = {"torch.zeros", "torch.ones", "torch.empty", "torch.randn", "torch.rand", "torch.arange"}
# tensor methods whose arguments are sizes
_SHAPE_METHODS = {"reshape", "view", "expand", "repeat", "unflatten", "new_zeros", "new_ones", "new_empty", "split"}
_DEPTH = 6
_NONE = ""  # (in ``none_ok``: a literal None is passed over where the value is read)


class InitNumbers:
    """Reads one module (its tree and names, a ``ModuleNames``) for the questions above."""

    def __init__(self, tree: ast.Module, names) -> None:
        self.tree = tree
        self.names = names
        self.classes = {n.name: n for n in tree.body if isinstance(n, ast.ClassDef)}
        self._constructions: dict[str, list] | None = None
        self._memo: dict = {}
        self._sizes: dict = {}
        self._class_of = {id(f): (c,) for c in ast_walk(tree) if isinstance(c, ast.ClassDef)
                          for f in c.body if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))}

    # -- the question -------------------------------------------------------------------------
    def attribute_number(self, cls: ast.ClassDef, attr: str, depth: int = 0) -> bool:
        """Is every value the class (or the nearest same-file base that binds it) stores in
        ``self.<attr>`` a known number?  An attribute the file never binds is left as it was
        read (True): the class body's constant, a base class's of another file."""
        key = (id(cls), attr)
        if key in self._memo:
            return self._memo[key]
        self._memo[key] = False  # (a cycle through the same attribute: not known)
        bound = self._bindings(cls, attr)
        result = all(self._number(value, func, owner, frozenset(), depth + 1) for func, owner, value in bound) \
            if depth < _DEPTH else False
        self._memo[key] = result
        return result

    def flag_always_on(self, cls: ast.ClassDef, attr: str, text: str) -> bool:
        """Is ``self.<attr>`` True on every instance the file builds, so that ``if self.<attr>:``
        is no configuration?  Every binding is in ``__init__`` and is the literal True, or a
        parameter of it (not rebound there) that every construction of the class in the file
        -- one at least, each one seen -- passes the literal True, or passes nothing where the
        default is True; nothing else in the file writes ``<obj>.<attr>`` (``text``: the file)."""
        bound = self._bindings(cls, attr)
        if not bound or _written_elsewhere(text, attr):
            return False
        for func, owner, value in bound:
            if func.name != "__init__" or value is None:
                return False
            if _true(value):
                continue
            if not isinstance(value, ast.Name) or value.id not in _params(func) or any(
                    isinstance(n, ast.Name) and n.id == value.id and isinstance(n.ctx, ast.Store)
                    for n in ast_walk(func)):
                return False
            default = _default(func, value.id)
            constructions = self._constructions_of(owner)
            if not constructions:
                return False  # (built only outside the file: its callers choose)
            for call, _, _, skip_self in constructions:
                if call is None:
                    return False
                passed = _passed(func, call, value.id, skip_self)
                if passed is False or not _true(default if passed is None else passed):
                    return False
        return True

    def _bindings(self, cls: ast.ClassDef, attr: str) -> list:
        """(function, class, value) of each ``self.<attr> = value`` of ``cls`` or, where it
        binds none, of its nearest same-file base that does."""
        seen: set[int] = set()
        while cls is not None and id(cls) not in seen:
            seen.add(id(cls))
            found = []
            for func in cls.body:
                if not isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    continue
                for node in ast_walk(func):
                    if isinstance(node, ast.Assign):
                        targets, value = node.targets, node.value
                    elif isinstance(node, (ast.AnnAssign, ast.AugAssign)) and node.value is not None:
                        targets, value = [node.target], node.value
                    else:
                        continue
                    for target in targets:
                        for t in ast_walk(target):
                            if isinstance(t, ast.Attribute) and t.attr == attr and isinstance(t.value, ast.Name) \
                                    and t.value.id == "self" and isinstance(t.ctx, ast.Store):
                                # (a tuple target: not one value it takes)
                                found.append((func, cls, value if t is target else None))
            if found:
                return found
            cls = next((self.classes[b.id] for b in cls.bases if isinstance(b, ast.Name) and b.id in self.classes),
                       None)
        return []

    # -- values -------------------------------------------------------------------------------
    def _number(self, node, func, cls, none_ok: frozenset, depth: int) -> bool:
        if node is None or depth > _DEPTH:
            return False
        if isinstance(node, ast.Constant):
            if node.value is None:
                return _NONE in none_ok  # (a None the expression that reads this value passes over)
            return isinstance(node.value, (int, float)) and not isinstance(node.value, bool)
        if isinstance(node, ast.Name):
            return self._name_number(node.id, func, cls, none_ok, depth)
        if isinstance(node, ast.Attribute):
            if isinstance(node.value, ast.Name) and node.value.id == "self":
                return cls is not None and self.attribute_number(cls, node.attr, depth + 1)
            return True  # config.scale, math.pi, x.ndim
        if isinstance(node, ast.Subscript):
            value = node.value
            if isinstance(value, ast.Dict):
                # a literal table of numbers picked by a key (``{'small': 768 ** -0.5, 'base': None}[depth]``)
                return all(v is not None and self._number(v, func, cls, none_ok, depth) for v in value.values)
            return isinstance(value, ast.Attribute) and value.attr == "shape" or (
                isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute) and value.func.attr == "size"
                and not value.args and not isinstance(node.slice, ast.Slice))
        if isinstance(node, ast.BinOp):
            if isinstance(node.op, ast.Pow) and _number_literal(node.right) and isinstance(node.left, ast.Name) \
                    and func is not None and func.name == "__init__" and node.left.id in _params(func) \
                    and _default(func, node.left.id) is _NO_DEFAULT and not _local_bindings(func, node.left.id) \
                    and self._constructions_pass_numbers(func, cls, node.left.id, False, depth):
                # ``dim_head ** -0.5`` of a required constructor parameter that no construction
                # in the file hands anything but a number: a literal power of it is a size made
                # a scale (guarding it made most patches longer for nothing)
                return True
            return self._number(node.left, func, cls, none_ok, depth) and \
                self._number(node.right, func, cls, none_ok, depth)
        if isinstance(node, ast.UnaryOp):
            return not isinstance(node.op, ast.Not) and self._number(node.operand, func, cls, none_ok, depth)
        if isinstance(node, ast.IfExp):
            tested = _none_test(node.test)
            body_ok = orelse_ok = none_ok
            if tested is not None:
                name, is_not = tested
                if is_not:
                    body_ok = none_ok | {name}
                else:
                    orelse_ok = none_ok | {name}
            return self._number(node.body, func, cls, body_ok, depth) and \
                self._number(node.orelse, func, cls, orelse_ok, depth)
        if isinstance(node, ast.BoolOp) and isinstance(node.op, ast.Or):
            # ``qk_scale or head_dim ** -0.5``: a None before the last value is passed over
            return all(self._number(v, func, cls, none_ok | ({v.id} if isinstance(v, ast.Name) else set()), depth)
                       for v in node.values[:-1]) and self._number(node.values[-1], func, cls, none_ok, depth)
        if isinstance(node, ast.Call):
            if isinstance(node.func, ast.Attribute) and node.func.attr in _SIZE_METHODS:
                return True
            fqn = (self.names.resolve(node.func) or "") if isinstance(node.func, (ast.Name, ast.Attribute)) else ""
            if fqn in _NUMBER_CALLS or (isinstance(node.func, ast.Name) and node.func.id in _NUMBER_CALLS
                                        and node.func.id not in self.names.functions):
                return not node.keywords and all(self._number(a, func, cls, none_ok, depth) for a in node.args)
            # a 0-d tensor made from a number (GPT-J's ``torch.sqrt(torch.tensor(self.head_dim,
            # dtype=torch.float32)).to(torch.get_default_dtype())``): ``scale=`` takes it as that number
            if fqn in _TENSOR_OF_NUMBER:
                return len(node.args) == 1 and all(k.arg in ("dtype", "device") for k in node.keywords) \
                    and self._number(node.args[0], func, cls, none_ok, depth)
            if fqn in _MATH_OF_TENSOR:
                return len(node.args) == 1 and not node.keywords and self._number(node.args[0], func, cls, none_ok, depth)
            if isinstance(node.func, ast.Attribute) and node.func.attr in _SAME_NUMBER_METHODS and not fqn.startswith("torch.") \
                    and all(k.arg in ("dtype", "device") for k in node.keywords) and len(node.args) <= 1:
                return self._number(node.func.value, func, cls, none_ok, depth)
            return False
        return False

    def _name_number(self, name: str, func, cls, none_ok: frozenset, depth: int) -> bool:
        if func is None:
            return False
        params = _params(func)
        bound = _local_bindings(func, name)
        if bound is None:
            return False  # (bound in a form whose value is not one expression)
        if name not in params:
            passes = none_ok | {_NONE} if name in none_ok else none_ok
            return bool(bound) and all(self._number(v, func, cls, passes, depth + 1) for v, _ in bound)
        # a parameter, perhaps replaced in the body: ``if scale is None: scale = dim ** -0.5``
        if not all(self._number(v, func, cls, none_ok, depth + 1) for v, _ in bound):
            return False
        if any(replaces_none for _, replaces_none in bound):
            none_ok = none_ok | {name}
        if bound and all(_at_top(func, v) for v, _ in bound):
            return True  # (rebound on every path before any use we read)
        return self._param_number(func, cls, name, name in none_ok, depth)

    def _param_number(self, func, cls, name: str, none_ok: bool, depth: int) -> bool:
        """A parameter of ``func`` (``cls``'s ``__init__``): a size, or a number (None where
        ``none_ok``) by default and at every construction of ``cls`` in the file."""
        if cls is None or func.name != "__init__" or depth > _DEPTH:
            return False
        if self.is_size(func, ("name", name), depth):
            return True
        default = _default(func, name)
        if default is _NO_DEFAULT:
            return False
        if not (_number_literal(default) or (none_ok and isinstance(default, ast.Constant) and default.value is None)):
            return False
        return self._constructions_pass_numbers(func, cls, name, none_ok, depth)

    def _constructions_pass_numbers(self, func, cls, name: str, none_ok: bool, depth: int) -> bool:
        """Does every construction of ``cls`` in the file pass parameter ``name`` of its
        ``__init__`` ``func`` a number, or nothing (a None too where ``none_ok``)?"""
        if cls is None:
            return False
        for call, caller, caller_cls, skip_self in self._constructions_of(cls):
            if call is None:
                return False  # (the class handed on or stored: constructed where the file cannot see)
            passed = _passed(func, call, name, skip_self)
            if passed is False:
                return False
            if passed is None or (none_ok and isinstance(passed, ast.Constant) and passed.value is None):
                continue
            # (a None this parameter passes over may come from the caller's own None default)
            passes_none = frozenset({passed.id}) if none_ok and isinstance(passed, ast.Name) else frozenset()
            if not self._number(passed, caller, caller_cls, passes_none, depth + 1):
                return False
        return True

    def is_size(self, func, key: tuple, depth: int = 0) -> bool:
        """Does ``__init__`` hand ``key`` (a name, or ``self.<attr>``) -- alone or in
        arithmetic, through locals and attributes it is assigned to -- to a torch.nn layer's
        constructor, where only sizes and rates are taken, or to the same place of a same-file
        module's constructor whose own parameter is such a size?  Then it is a number."""
        memo = (id(func), key)
        if memo in self._sizes:
            return self._sizes[memo]
        self._sizes[memo] = False  # (a cycle: not shown)
        found = depth <= _DEPTH and self._size_use(func, key, depth)
        self._sizes[memo] = found
        return found

    def _size_use(self, func, key: tuple, depth: int) -> bool:
        scopes = [func]
        if key[0] == "self":
            # (an attribute: every method of the class may read it as a size)
            cls = next((c for c in self._class_of.get(id(func), ())), None)
            if cls is not None:
                scopes = [f for f in cls.body if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))]
        return any(self._size_use_in(scope, func, key, depth) for scope in scopes)

    def _size_use_in(self, scope, func, key: tuple, depth: int) -> bool:
        keys = [key]
        if scope is not func:
            # (another method's local copy: ``heads = self.heads``, then ``rearrange(..., h=heads)``)
            keys += [("name", n.targets[0].id) for n in ast_walk(scope) if isinstance(n, ast.Assign)
                     and len(n.targets) == 1 and isinstance(n.targets[0], ast.Name) and _key(n.value) == key]
        for node in ast_walk(scope):
            if isinstance(node, ast.Call):
                parts = [(i, a) for i, a in enumerate(node.args)] + [(k.arg, k.value) for k in node.keywords]
                read = next((k for k in keys if any(_arithmetic_of(a, k) for _, a in parts)), None)
                if read is None:
                    continue  # (else ``read``: the key, or the copy of it this call reads)
                if isinstance(node.func, ast.Attribute) and node.func.attr in _SHAPE_METHODS \
                        or isinstance(node.func, ast.Name) and node.func.id == "range":
                    return True  # (``x.reshape(b, n, self.heads, -1)``: a size)
                fqn = (self.names.resolve(node.func) or "") if isinstance(node.func, (ast.Name, ast.Attribute)) else ""
                if fqn in _SIZE_FACTORIES and any(_arithmetic_of(a, read) for a in node.args):
                    return True  # (``torch.zeros(heads, 1, 1)``: sizes)
                if fqn.startswith("einops.") and any(_arithmetic_of(k.value, read) for k in node.keywords):
                    return True  # (``rearrange(t, 'b (h d) n -> b h n d', h=self.heads)``: an axis length)
                last = fqn.rsplit(".", 1)[-1]
                if fqn.startswith("torch.nn.") and fqn.count(".") == 2 and last not in _NOT_SIZED \
                        and last[:1].isupper():
                    return True
                target = self.classes.get(node.func.id) if isinstance(node.func, ast.Name) else None
                init = self._init_of(target)
                if init is None:
                    continue
                params = [a.arg for a in (*init.args.posonlyargs, *init.args.args)][1:]
                for where, arg in parts:
                    if not _arithmetic_of(arg, read):
                        continue
                    param = params[where] if isinstance(where, int) and where < len(params) else where
                    if isinstance(param, str) and self.is_size(init, ("name", param), depth + 1):
                        return True
            elif scope is func and isinstance(node, ast.Assign) and _arithmetic_of(node.value, key) \
                    and len(node.targets) == 1:
                other = _key(node.targets[0])
                if other is not None and other != key and self.is_size(func, other, depth + 1):
                    return True
        return False

    def _init_of(self, cls: ast.ClassDef | None):
        seen: set[int] = set()
        while cls is not None and id(cls) not in seen:
            seen.add(id(cls))
            init = next((f for f in cls.body if isinstance(f, ast.FunctionDef) and f.name == "__init__"), None)
            if init is not None:
                return init
            cls = next((self.classes[b.id] for b in cls.bases if isinstance(b, ast.Name) and b.id in self.classes),
                       None)
        return None

    def _constructions_of(self, cls: ast.ClassDef) -> list:
        """(call, enclosing function, enclosing class, whether the call binds ``self`` itself)
        for each construction of ``cls`` in the file: ``Cls(...)`` and a same-file subclass's
        ``super().__init__(...)``; (None, ...) for any other use of the class's name."""
        if self._constructions is None:
            self._constructions = {}
            self._walk(self.tree, None, None)
        return self._constructions.get(cls.name, [])

    def _walk(self, node, func, cls) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.ClassDef):
                for base in child.bases:
                    if isinstance(base, ast.Name) and base.id in self.classes:
                        self._super_calls(child, self.classes[base.id])
                for part in (*child.decorator_list, *child.keywords):
                    self._walk(part, func, cls)
                for stmt in child.body:
                    method = isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef))
                    self._walk(stmt, stmt if method else None, child)
                continue
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                self._walk(child, child, cls)
                continue
            if isinstance(child, ast.arg) or (isinstance(child, ast.AnnAssign) and child.value is None):
                continue  # (an annotation names the class: no construction)
            if isinstance(child, ast.Call) and isinstance(child.func, ast.Name) and child.func.id in self.classes:
                self._constructions.setdefault(child.func.id, []).append((child, func, cls, False))
                for part in (*child.args, *child.keywords):
                    self._walk(part, func, cls)
                continue
            if isinstance(child, ast.Call) and isinstance(child.func, ast.Name) and child.func.id == "super":
                continue  # (``super(Cls, self)``: no construction)
            if isinstance(child, ast.Name) and child.id in self.classes and isinstance(child.ctx, ast.Load):
                self._constructions.setdefault(child.id, []).append((None, func, cls, False))
                continue
            self._walk(child, func, cls)

    def _super_calls(self, sub: ast.ClassDef, base: ast.ClassDef) -> None:
        init = next((f for f in sub.body if isinstance(f, ast.FunctionDef) and f.name == "__init__"), None)
        if init is None:
            # (the base's __init__ runs with whatever the subclass's constructions pass)
            self._constructions.setdefault(base.name, []).append((None, None, sub, False))
            return
        for node in ast_walk(init):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "__init__":
                target = node.func.value
                if isinstance(target, ast.Call) and isinstance(target.func, ast.Name) and target.func.id == "super":
                    self._constructions.setdefault(base.name, []).append((node, init, sub, False))
                elif isinstance(target, ast.Name) and target.id == base.name:
                    self._constructions.setdefault(base.name, []).append((node, init, sub, True))


_NO_DEFAULT = object()


def _params(func) -> set:
    args = func.args
    names = {a.arg for a in (*args.posonlyargs, *args.args, *args.kwonlyargs)}
    for extra in (args.vararg, args.kwarg):
        if extra is not None:
            names.add(extra.arg)
    return names


def _default(func, name: str):
    args = func.args
    positional = (*args.posonlyargs, *args.args)
    for param, default in zip(positional[len(positional) - len(args.defaults):], args.defaults):
        if param.arg == name:
            return default
    for param, default in zip(args.kwonlyargs, args.kw_defaults):
        if param.arg == name:
            return _NO_DEFAULT if default is None else default
    return _NO_DEFAULT


def _number_literal(expr) -> bool:
    if isinstance(expr, ast.UnaryOp) and isinstance(expr.op, (ast.USub, ast.UAdd)):
        expr = expr.operand
    return isinstance(expr, ast.Constant) and isinstance(expr.value, (int, float)) and not isinstance(expr.value, bool)


def _none_test(test) -> tuple[str, bool] | None:
    """``(name, True)`` for ``name is not None``, ``(name, False)`` for ``name is None``."""
    if not isinstance(test, ast.Compare) or len(test.ops) != 1 or not isinstance(test.left, ast.Name):
        return None
    right = test.comparators[0]
    if not isinstance(right, ast.Constant) or right.value is not None:
        return None
    if isinstance(test.ops[0], ast.IsNot):
        return test.left.id, True
    if isinstance(test.ops[0], ast.Is):
        return test.left.id, False
    return None


def _local_bindings(func, name: str) -> list | None:
    """(value, replaces None) of each binding of ``name`` in ``func``'s body, where the second
    says it sits directly under ``if name is None:``; None where some binding is not one value
    (a loop or with target, a tuple target, an import, a nested definition)."""
    found: list = []
    parents: dict[int, ast.AST] = {}
    for node in ast_walk(func):
        for child in ast.iter_child_nodes(node):
            parents[id(child)] = node
    for node in ast_walk(func):
        if node is func:
            continue
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
            if getattr(node, "name", None) == name:
                return None
            continue
        if isinstance(node, ast.Name) and node.id == name and not isinstance(node.ctx, ast.Load):
            stmt = parents.get(id(node))
            if (isinstance(stmt, ast.Assign) and any(t is node for t in stmt.targets)) or (
                    isinstance(stmt, (ast.AnnAssign, ast.AugAssign)) and stmt.target is node and stmt.value is not None):
                value = stmt.value  # (an augmented one: the name's earlier value is read on its own)
            else:
                return None
            holder = parents.get(id(stmt))
            tested = _none_test(holder.test) if isinstance(holder, ast.If) and stmt in holder.body else None
            found.append((value, tested == (name, False)))
        elif isinstance(node, (ast.Import, ast.ImportFrom)) and any(
                (a.asname or a.name).split(".")[0] == name for a in node.names):
            return None
    return found


def _at_top(func, value) -> bool:
    """Is ``value`` the value of an assignment among ``func``'s top-level statements?"""
    return any(isinstance(stmt, (ast.Assign, ast.AnnAssign)) and stmt.value is value for stmt in func.body)


def _arithmetic_of(expr, key: tuple) -> bool:
    """Is ``expr`` the name (or ``self.<attr>``) ``key``, alone or in arithmetic?"""
    if isinstance(expr, ast.BinOp):
        return _arithmetic_of(expr.left, key) or _arithmetic_of(expr.right, key)
    if isinstance(expr, ast.UnaryOp):
        return _arithmetic_of(expr.operand, key)
    if isinstance(expr, (ast.List, ast.Tuple)):
        return any(_arithmetic_of(e, key) for e in expr.elts)  # (``x.split([self.dk, self.dk, self.dv])``)
    return _key(expr) == key


def _key(expr) -> tuple | None:
    if isinstance(expr, ast.Name):
        return ("name", expr.id)
    if isinstance(expr, ast.Attribute) and isinstance(expr.value, ast.Name) and expr.value.id == "self":
        return ("self", expr.attr)
    return None


def _true(node) -> bool:
    return isinstance(node, ast.Constant) and node.value is True


def _written_elsewhere(text: str, attr: str) -> bool:
    """``<obj>.<attr> = ...`` (not ``self``), or the name quoted (``setattr``): the flag may be
    set where the class's own bindings do not say."""
    return re.search(rf"(?<!self)\.{re.escape(attr)}\s*=(?!=)|[\"']{re.escape(attr)}[\"']", text) is not None


def _passed(init, call: ast.Call, name: str, skip_self: bool):
    """What ``call`` passes for ``init``'s parameter ``name``: the expression, None for
    nothing, False when that cannot be told (``*args``, ``**kwargs``); ``skip_self``: the call
    hands the instance first (``Base.__init__(self, ...)``)."""
    if skip_self:
        call = ast.Call(func=call.func, args=call.args[1:], keywords=call.keywords)
    return passed_argument(init, call, name)
