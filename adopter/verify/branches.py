"""The conditions a patched line sits under, and the build variants that may satisfy them.

When the edited lines did not run, the reason is almost always a branch: nanoGPT's
``if self.flash: ... else: <the patched manual attention>``, ``if targets is not None:``, ``if
mask is not None:``, ``if self.training:``, ``if config.use_cache:``.  :func:`guards` reads them
from the patched source (``ast``), outermost first, each with the side of the branch the edit is
on and what it tests (an instance flag, a config field, an optional argument given or left out);
the builder turns each into the one change that takes that side.  A test of a layer that
``__init__`` creates only sometimes (``if self.conv_dw is not None:``) is traced back to the
constructor arguments that create it (``if stride > 1: self.conv_dw = ...`` -> ``stride=2``)
by :func:`init_conditions`.  :func:`unexercised` names the branch that the traced lines show
was decided the other way, for the skip reason.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass


@dataclass(frozen=True)
class Guard:
    line: int  # the line of the test
    text: str  # ``if self.flash`` as written (shortened)
    branch: str  # "body" or "else"
    body_start: int  # first line of the side the edit is on
    # "attr" | "attr_set" | "attr_eq" | "config" | "param" | "param_eq" / "param_ne" (or a module
    # flag) | "global" | "training" | "other"
    kind: str
    name: str = ""
    want: object = None  # the value the name must have (True/False), "given" / "absent" for params
    # every part of the test must take its value at once to reach the side (the else of ``a or b``,
    # the body of ``a and b``): one change at a time never reaches it
    joint: bool = False

    def describe(self) -> str:
        return f"`{self.text}`" + (" (its else branch)" if self.branch == "else" else "")


_CONFIG_ROOTS = {"config", "cfg", "conf", "args", "opt", "hparams", "params", "settings"}


def _classify(test: ast.expr, truth: bool) -> list[tuple[str, str, object]]:
    """(kind, name, wanted value) for the parts of ``test`` that must be ``truth``."""
    if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
        return _classify(test.operand, not truth)
    if isinstance(test, ast.BoolOp):
        # all of them must hold (and/true, or/false), or any one would do (and/false, or/true):
        # either way each operand taken on its own is a candidate change
        return [item for value in test.values for item in _classify(value, truth)]
    if isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.comparators[0], ast.Constant) \
            and test.comparators[0].value is None and isinstance(test.ops[0], (ast.Is, ast.IsNot)):
        present = isinstance(test.ops[0], ast.IsNot) == truth
        left = test.left
        if isinstance(left, ast.Name):
            return [("param", left.id, "given" if present else "absent")]
        if isinstance(left, ast.Attribute) and isinstance(left.value, ast.Name) and left.value.id == "self":
            return [("attr_set", left.attr, "given" if present else "absent")]
        return []
    if isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], (ast.Eq, ast.NotEq)) \
            and isinstance(test.comparators[0], ast.Constant) and isinstance(test.left, ast.Name) \
            and isinstance(test.comparators[0].value, (str, int)) \
            and not isinstance(test.comparators[0].value, bool) and isinstance(test.ops[0], ast.Eq) != truth:
        # ``if PRECISION == "fp32": <original> else: <edit>``: any value but that one takes the
        # side (a module's switch: which value, the builder decides from how the module reads it)
        return [("param_ne", test.left.id, test.comparators[0].value)]
    if isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], (ast.Eq, ast.NotEq)) \
            and isinstance(test.comparators[0], ast.Constant) \
            and isinstance(test.comparators[0].value, (str, int, float)) \
            and not isinstance(test.comparators[0].value, bool) and isinstance(test.ops[0], ast.Eq) == truth:
        # ``if self.mode == 'temporal':`` (or the else of ``!=``): the one value that takes the side
        left, value = test.left, test.comparators[0].value
        if isinstance(left, ast.Attribute) and isinstance(left.value, ast.Name) and left.value.id == "self":
            return [("attr_eq", left.attr, value)]
        if isinstance(left, ast.Name):
            return [("param_eq", left.id, value)]
        return []
    if isinstance(test, ast.Call) and isinstance(test.func, ast.Name) and test.func.id == "exists" \
            and len(test.args) == 1 and not test.keywords and isinstance(test.args[0], ast.Name):
        # lucidrains' ``exists(cache)`` (``cache is not None``): read only for a value the module
        # makes itself (Builder.variants, a decode step)
        return [("param_exists", test.args[0].id, "given" if truth else "absent")]
    if isinstance(test, ast.Name):
        return [("param", test.id, truth)]
    if isinstance(test, ast.Subscript) and isinstance(test.slice, ast.Constant) and isinstance(test.slice.value, str):
        # ``if config["dual_domain"]:``, ``if self.config["dual_domain"]:``: a config read by key
        base = test.value
        if isinstance(base, ast.Name) and base.id in _CONFIG_ROOTS or isinstance(base, ast.Attribute) and \
                isinstance(base.value, ast.Name) and base.value.id == "self" and base.attr in _CONFIG_ROOTS:
            return [("config", test.slice.value, truth)]
    if isinstance(test, ast.Attribute):
        base = test.value
        if isinstance(base, ast.Name) and base.id == "self":
            if test.attr == "training":
                return [("training", "training", truth)]
            return [("attr", test.attr, truth)]
        if isinstance(base, ast.Name) and base.id in _CONFIG_ROOTS:
            return [("config", test.attr, truth)]
        if isinstance(base, ast.Attribute) and isinstance(base.value, ast.Name) and base.value.id == "self" and \
                base.attr in _CONFIG_ROOTS:
            return [("config", test.attr, truth)]
        if isinstance(base, ast.Name):  # a class attribute or a module's flag: ``Attention.use_sdpa``
            return [("global", f"{base.id}.{test.attr}", truth)]
    return [("other", ast.unparse(test) if hasattr(ast, "unparse") else "", truth)]


def guards(text: str, lines: set[int]) -> list[Guard]:
    """The ``if`` tests enclosing any of ``lines`` in ``text``, outermost first."""
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return []
    out: list[Guard] = []

    def span(stmts: list[ast.stmt]) -> set[int]:
        found: set[int] = set()
        for stmt in stmts:
            found.update(range(stmt.lineno, (stmt.end_lineno or stmt.lineno) + 1))
        return found

    def visit(node: ast.AST, aliases: dict[str, ast.expr]) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                visit(child, {})
                continue
            if isinstance(child, ast.If) and not child.orelse and _exits(child.body):
                # ``if group_ids is None: return x`` ahead of the edit in the same block: the
                # edit runs only when the test fails, as on the else side of an enclosing ``if``
                after = _after(node, child)
                if after and span(after) & lines:
                    test = _through_alias(child.test, _test_aliases(node)
                                          if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) else {})
                    source = " ".join((ast.get_source_segment(text, child.test) or "").split())
                    if len(source) > 60:
                        source = source[:57] + "..."
                    joint = _all_must_hold(test, False)
                    for kind, name, want in _classify(test, False) or [("other", "", None)]:
                        out.append(Guard(child.lineno, f"if {source}", "else", after[0].lineno, kind, name,
                                         want, joint))
            if isinstance(child, ast.If):
                for branch, stmts in (("body", child.body), ("else", child.orelse)):
                    if stmts and span(stmts) & lines:
                        source = ast.get_source_segment(text, child.test) or ""
                        source = " ".join(source.split())
                        if len(source) > 60:
                            source = source[:57] + "..."
                        if not aliases and isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                            aliases = _test_aliases(node)
                        test = _through_alias(child.test, aliases)
                        joint = _all_must_hold(test, branch == "body")
                        for kind, name, want in _classify(test, branch == "body") or [("other", "", None)]:
                            out.append(Guard(child.lineno, f"if {source}", branch, stmts[0].lineno, kind, name,
                                             want, joint))
            visit(child, aliases)

    visit(tree, {})
    return out


def _exits(stmts: list[ast.stmt]) -> bool:
    """Whether a block returns early: it ends in ``return`` (a ``raise`` refuses the call instead:
    its test is no path to take, and a module that raises on a flag when training is one verify
    must say cannot train, test_verify_train_inputs_as_data)."""
    return bool(stmts) and isinstance(stmts[-1], ast.Return)


def _after(parent: ast.AST, stmt: ast.stmt) -> list[ast.stmt]:
    """The statements after ``stmt`` in the block of ``parent`` that holds it."""
    for field in ("body", "orelse", "finalbody"):
        block = getattr(parent, field, None)
        if isinstance(block, list) and any(s is stmt for s in block):
            at = next(i for i, s in enumerate(block) if s is stmt)
            return block[at + 1:]
    return []


def _all_must_hold(test: ast.expr, truth: bool) -> bool:
    """Whether every operand of ``test`` must take its value for ``test`` to be ``truth``: a
    conjunction's body, a disjunction's else (``not`` turns them round)."""
    while isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
        test, truth = test.operand, not truth
    return isinstance(test, ast.BoolOp) and len(test.values) > 1 and isinstance(test.op, ast.And) == truth


def _test_aliases(func: ast.FunctionDef | ast.AsyncFunctionDef) -> dict[str, ast.expr]:
    """Locals of ``func`` bound once, by a plain assignment, to a test (``is_inferencing =
    exists(cache)``, ``has_mask = mask is not None``) and never a parameter: a branch on such a
    name is the branch on its test."""
    params = {a.arg for a in func.args.posonlyargs + func.args.args + func.args.kwonlyargs}
    bound: dict[str, ast.expr] = {}
    again: set[str] = set()
    for node in ast.walk(func):
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            name = node.targets[0].id
            if name in bound:
                again.add(name)
            bound[name] = node.value
        elif isinstance(node, (ast.AugAssign, ast.AnnAssign, ast.For, ast.With, ast.NamedExpr, ast.Assign)):
            for target in ast.walk(node):
                if isinstance(target, ast.Name) and isinstance(target.ctx, ast.Store):
                    again.add(target.id)
    return {k: v for k, v in bound.items() if k not in again and k not in params
            and isinstance(v, (ast.Compare, ast.Call, ast.UnaryOp, ast.BoolOp))}


def _through_alias(test: ast.expr, aliases: dict[str, ast.expr]) -> ast.expr:
    """``test`` with a name (or ``not`` a name) bound once to a test read as that test."""
    if not aliases:
        return test
    if isinstance(test, ast.Name) and test.id in aliases:
        return aliases[test.id]
    if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not) and isinstance(test.operand, ast.Name) \
            and test.operand.id in aliases:
        return ast.UnaryOp(ast.Not(), aliases[test.operand.id])
    return test


def returning_flags(text: str, class_name: str, method: str = "forward") -> list[str]:
    """Parameters of ``class_name.method`` whose test decides what it returns: ``if not flag:
    return out`` then ``return out, kv``, or ``if flag: return out, kv`` (a flag under which the
    method hands back more than its output)."""
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return []
    cls = next((n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == class_name), None)
    func = next((n for n in cls.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.name == method),
                None) if cls is not None else None
    if func is None:
        return []
    params = {a.arg for a in func.args.args + func.args.kwonlyargs}
    out: list[str] = []
    for node in ast.walk(func):
        if not isinstance(node, ast.If):
            continue
        test = node.test.operand if isinstance(node.test, ast.UnaryOp) and isinstance(node.test.op, ast.Not) \
            else node.test
        if isinstance(test, ast.Name) and test.id in params and test.id not in out and \
                any(isinstance(stmt, ast.Return) for stmt in node.body):
            out.append(test.id)
    return out


def switch_value(text: str, name: str, want: object, differ: bool) -> object | None:
    """A value for the module-level name ``name`` that takes a branch testing it against the
    literal ``want`` (``differ``: the side where it is not ``want``), when every read of ``name``
    in the module (``text``) is a comparison with a literal (``==``, ``!=``, ``in`` a tuple of
    them): then the value matters only through those comparisons.  ``want`` itself for the equal
    side; for the other, another literal the module compares it with, else a value none of them
    equals.  None when ``name`` is read any other way (handed to a function, formatted, indexed:
    a made-up value could change more than the branch), or is assigned in a function."""
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return None
    compared: list[object] = []
    inside: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            for sub in ast.walk(node):
                if isinstance(sub, (ast.Global, ast.Nonlocal)) and name in sub.names:
                    return None
        if isinstance(node, ast.Compare) and isinstance(node.left, ast.Name) and node.left.id == name:
            for op, right in zip(node.ops, node.comparators):
                if isinstance(op, (ast.Eq, ast.NotEq)) and isinstance(right, ast.Constant):
                    compared.append(right.value)
                elif isinstance(op, (ast.In, ast.NotIn)) and isinstance(right, (ast.Tuple, ast.List, ast.Set)) \
                        and all(isinstance(e, ast.Constant) for e in right.elts):
                    compared += [e.value for e in right.elts]
                else:
                    return None
            inside.add(id(node.left))
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id == name and isinstance(node.ctx, ast.Load) \
                and id(node) not in inside:
            return None
    if not differ:
        return want
    others = [v for v in dict.fromkeys(compared) if v != want and type(v) is type(want)]
    if others:
        return others[0]
    if isinstance(want, str):
        return f"not {want}"
    if isinstance(want, int):
        return max([v for v in compared if isinstance(v, int)] + [want]) + 1
    return None


def unexercised(found: list[Guard], ran: set[int]) -> Guard | None:
    """The innermost guard whose test ran but whose side with the edit did not."""
    best = None
    for guard in found:
        if guard.line in ran and guard.body_start not in ran:
            best = guard
    return best


class _Zeros:
    """A constructor value: the argument's own value with every entry 0 (``shift_size=[0, 0]``)."""

    def __repr__(self) -> str:
        return "zeros"


ZEROS = _Zeros()


def zeros_like(value: object) -> object:
    """``value`` (an int, or a list or tuple of ints) with every entry 0; None when it is neither."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return 0
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, int) and not isinstance(v, bool)
                                                          for v in value):
        return type(value)(0 for _ in value)
    return None


def _conditions(test: ast.expr, truth: bool, stored: dict[str, str], names: dict[str, str] | None = None,
                partial: bool = False) -> list[tuple[str, object]] | None:
    """Constructor-argument values that make ``test`` equal ``truth`` (None: not expressible).
    ``names`` maps plain names to constructor arguments (a helper function's parameters, through
    the call); without it a plain name is one.  ``partial``: parts of a conjunction that are not
    expressible are left to the inputs instead of making the whole inexpressible."""
    if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
        return _conditions(test.operand, not truth, stored, names, partial)
    if isinstance(test, ast.BoolOp):
        if (isinstance(test.op, ast.And) and truth) or (isinstance(test.op, ast.Or) and not truth):
            out: list[tuple[str, object]] = []
            for value in test.values:
                part = _conditions(value, truth, stored, names, partial)
                if part is None:
                    if partial:
                        continue
                    return None
                out += part
            return out or None
        for value in test.values:  # one of them is enough: take the first that is expressible
            part = _conditions(value, truth, stored, names, partial)
            if part is not None:
                return part
        return None

    def param_of(node: ast.expr) -> str | None:
        if isinstance(node, ast.Name):
            return node.id if names is None else names.get(node.id)
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "self":
            return stored.get(node.attr)
        return None

    name = param_of(test)
    if name is not None:
        return [(name, truth)]
    if isinstance(test, ast.Call) and isinstance(test.func, ast.Name) and test.func.id == "exists" \
            and len(test.args) == 1 and not test.keywords:
        # lucidrains' ``exists(v)`` (``v is not None``)
        name = param_of(test.args[0])
        return [(name, "given" if truth else None)] if name is not None else None
    if isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.comparators[0], ast.Constant):
        left = test.left
        value = test.comparators[0].value
        op = test.ops[0]
        if isinstance(left, ast.Call) and isinstance(left.func, ast.Name) and left.func.id in ("sum", "any") \
                and len(left.args) == 1 and not left.keywords and value == 0 and not isinstance(value, bool):
            # ``sum(shift_size) > 0`` false: every entry 0 (sizes are not negative)
            nothing = {(ast.Gt, False), (ast.NotEq, False), (ast.Eq, True), (ast.LtE, True)}
            name = param_of(left.args[0])
            return [(name, ZEROS)] if name is not None and (type(op), truth) in nothing else None
        name = param_of(left)
        if name is None:
            return None
        if value is None and isinstance(op, (ast.Is, ast.IsNot)):
            return [(name, "given" if isinstance(op, ast.IsNot) == truth else None)]
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            return None
        if isinstance(value, str):
            if isinstance(op, ast.Eq) and truth or isinstance(op, ast.NotEq) and not truth:
                return [(name, value)]
            return None
        wanted = {(ast.Gt, True): value + 1, (ast.GtE, True): value, (ast.Lt, True): value - 1,
                  (ast.LtE, True): value, (ast.Eq, True): value, (ast.NotEq, True): value + 1,
                  (ast.Gt, False): value, (ast.GtE, False): value - 1, (ast.Lt, False): value,
                  (ast.LtE, False): value + 1, (ast.Eq, False): value + 1, (ast.NotEq, False): value}
        key = (type(op), truth)
        if key in wanted:
            return [(name, wanted[key])]
    return None


def _is_test(value: ast.expr) -> bool:
    """A presence test: ``exists(x)``, ``x is None``, ``x is not None``."""
    if isinstance(value, ast.Call):
        return isinstance(value.func, ast.Name) and value.func.id == "exists" and len(value.args) == 1
    return isinstance(value, ast.Compare) and len(value.ops) == 1 and isinstance(value.ops[0], (ast.Is, ast.IsNot)) \
        and isinstance(value.comparators[0], ast.Constant) and value.comparators[0].value is None


def init_conditions(text: str, class_name: str, attr: str, want_set: bool) -> list[list[tuple[str, object]]]:
    """Ways (constructor-argument values) in which ``__init__`` of ``class_name`` makes
    ``self.<attr>`` set to something (``want_set``) or None/false."""
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return []
    init = None
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == class_name:
            init = next((i for i in node.body if isinstance(i, ast.FunctionDef) and i.name == "__init__"), None)
    if init is None:
        return []
    stored: dict[str, str] = {}
    params = {a.arg for a in [*init.args.posonlyargs, *init.args.args, *init.args.kwonlyargs]}
    for sub in ast.walk(init):
        if isinstance(sub, ast.Assign) and isinstance(sub.value, ast.Name) and sub.value.id in params:
            for target in sub.targets:
                if isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name) and target.value.id == "self":
                    stored[target.attr] = sub.value.id

    def sets(stmts: list[ast.stmt]) -> bool | None:
        """True: sets self.attr to a value, False: to None/False; None: does not set it."""
        for stmt in stmts:
            if isinstance(stmt, ast.Assign) and any(isinstance(t, ast.Attribute) and t.attr == attr and
                                                    isinstance(t.value, ast.Name) and t.value.id == "self"
                                                    for t in stmt.targets):
                value = stmt.value
                return not (isinstance(value, ast.Constant) and value.value in (None, False))
        return None

    out: list[list[tuple[str, object]]] = []
    for sub in ast.walk(init):
        if isinstance(sub, ast.If):
            for branch, stmts in ((True, sub.body), (False, sub.orelse)):
                if sets(stmts) is want_set:
                    found = _conditions(sub.test, branch, stored)
                    if found:
                        out.append(found)
        elif isinstance(sub, ast.Assign) and _is_test(sub.value) and any(
                isinstance(t, ast.Attribute) and t.attr == attr and isinstance(t.value, ast.Name)
                and t.value.id == "self" for t in sub.targets):
            # ``self.is_local_attn = exists(window_size)``, ``self.cross = context_dim is not None``
            found = _conditions(sub.value, want_set, stored)
            if found:
                out.append(found)
        elif isinstance(sub, ast.Assign) and isinstance(sub.value, ast.IfExp) and any(
                isinstance(t, ast.Attribute) and t.attr == attr for t in sub.targets):
            value = sub.value
            for branch, expr in ((True, value.body), (False, value.orelse)):
                is_set = not (isinstance(expr, ast.Constant) and expr.value in (None, False))
                if is_set is want_set:
                    found = _conditions(value.test, branch, stored)
                    if found:
                        out.append(found)
    return out


def init_value_conditions(text: str, class_name: str, attr: str, want: object) -> list[list[tuple[str, object]]]:
    """Ways (constructor-argument values) in which ``__init__`` of ``class_name`` sets
    ``self.<attr>`` to the literal ``want`` under an ``if`` (birder's HiLo attention: ``if
    window_size == 1: self.h_heads = 0``, which ``forward``'s ``if self.h_heads == 0:`` tests):
    the test's conditions for the branch that assigns it."""
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return []
    cls = next((n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == class_name), None)
    init = next((i for i in cls.body if isinstance(i, ast.FunctionDef) and i.name == "__init__"), None) if cls else None
    if init is None or isinstance(want, bool) or not isinstance(want, (int, float, str)):
        return []
    stored = _stored_parameters(tree, class_name)

    def assigns(stmts: list[ast.stmt]) -> bool:
        return any(isinstance(st, ast.Assign) and isinstance(st.value, ast.Constant) and st.value.value == want
                   and type(st.value.value) is type(want)
                   and any(isinstance(t, ast.Attribute) and t.attr == attr and isinstance(t.value, ast.Name)
                           and t.value.id == "self" for t in st.targets) for st in stmts)

    out: list[list[tuple[str, object]]] = []
    for sub in ast.walk(init):
        if isinstance(sub, ast.If):
            for branch, stmts in ((True, sub.body), (False, sub.orelse)):
                if assigns(stmts):
                    found = _conditions(sub.test, branch, stored)
                    if found and found not in out:
                        out.append(found)
    return out


def kept_conditions(text: str, class_name: str, method: str = "forward") -> dict[str, list[tuple[str, object]]]:
    """Optional parameters of ``class_name.method`` that the method throws away unless the
    constructor switched it on (graphium's ``if not self.biased_attention or attn_bias is None:
    attn_bias = 0.0``), each with the constructor-argument values under which a given value is
    kept: every other part of the ``or`` false.  Read from an ``if`` whose ``or`` test holds
    ``p is None`` and whose body assigns ``p``; the other parts must all be expressible as
    constructor arguments (an attribute ``__init__`` stores a parameter in as it is)."""
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return {}
    cls = next((n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == class_name), None)
    func = next((n for n in cls.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.name == method),
                None) if cls is not None else None
    if func is None:
        return {}
    optional = {a.arg for a, d in zip(func.args.args[::-1], func.args.defaults[::-1])
                if isinstance(d, ast.Constant) and d.value is None}
    stored = _stored_parameters(tree, class_name)
    out: dict[str, list[tuple[str, object]]] = {}
    for node in ast.walk(func):
        if not (isinstance(node, ast.If) and isinstance(node.test, ast.BoolOp) and isinstance(node.test.op, ast.Or)):
            continue
        for value in node.test.values:
            if not (_is_test(value) and isinstance(value, ast.Compare) and isinstance(value.ops[0], ast.Is)
                    and isinstance(value.left, ast.Name) and value.left.id in optional):
                continue
            name = value.left.id
            assigned = any(isinstance(t, ast.Name) and t.id == name for stmt in node.body
                           if isinstance(stmt, ast.Assign) for t in stmt.targets)
            others = [v for v in node.test.values if v is not value]
            if not assigned or not others or name in out:
                continue
            rest = others[0] if len(others) == 1 else ast.BoolOp(op=ast.Or(), values=others)
            condition = _conditions(rest, False, stored, names={})
            if condition:
                out[name] = condition
    return out


def stored_parameters(text: str, class_name: str) -> dict[str, str]:
    """``self.<attr>`` -> the constructor parameter ``__init__`` of ``class_name`` stores in it
    unchanged (``self.mode = mode``)."""
    try:
        return _stored_parameters(ast.parse(text), class_name)
    except SyntaxError:
        return {}


def _init_and_params(tree: ast.Module, class_name: str):
    """``class_name``'s ``__init__`` (module level) and the names of its parameters; None when
    the file defines no such class or the class no ``__init__``."""
    cls = next((n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == class_name), None)
    init = next((i for i in cls.body if isinstance(i, ast.FunctionDef) and i.name == "__init__"), None) if cls else None
    if init is None:
        return None
    return init, {a.arg for a in [*init.args.posonlyargs, *init.args.args, *init.args.kwonlyargs]}


def _stored_parameters(tree: ast.Module, class_name: str) -> dict[str, str]:
    found = _init_and_params(tree, class_name)
    if found is None:
        return {}
    init, params = found
    return {attr: value.id for attr, value in _self_stores(init) if isinstance(value, ast.Name) and value.id in params}


def _self_stores(init: ast.FunctionDef):
    """(attr, value expression) for each ``self.<attr> = value`` in ``init``, in walk order."""
    for sub in ast.walk(init):
        if isinstance(sub, ast.Assign):
            for target in sub.targets:
                if isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name) and target.value.id == "self":
                    yield target.attr, sub.value


def init_values(text: str, class_name: str, attr: str) -> list[ast.expr]:
    """Every value ``__init__`` of ``class_name`` assigns to ``self.<attr>`` (empty when it
    assigns none, or the file defines no such class)."""
    try:
        found = _init_and_params(ast.parse(text), class_name)
    except SyntaxError:
        return []
    return [value for name, value in _self_stores(found[0]) if name == attr] if found else []


def stored_fields(text: str, class_name: str) -> dict[str, str]:
    """``self.<attr>`` -> the field of a constructor argument ``__init__`` of ``class_name``
    stores in it unchanged (``self.dual_domain = config["dual_domain"]``, ``self.std =
    cfg.std``): a branch on the attribute is taken by building with that field."""
    if f"class {class_name}" not in text:
        return {}
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return {}
    found = _init_and_params(tree, class_name)
    if found is None:
        return {}
    init, params = found
    stored: dict[str, str] = {}
    for attr, value in _self_stores(init):
        if isinstance(value, ast.Attribute):
            key, base = value.attr, value.value
        elif isinstance(value, ast.Subscript) and isinstance(value.slice, ast.Constant) and \
                isinstance(value.slice.value, str):
            key, base = value.slice.value, value.value
        else:
            continue
        if isinstance(base, ast.Name) and base.id in params and base.id != "self":
            stored[attr] = key
    return stored


def call_lines(text: str, class_name: str, method: str) -> set[int]:
    """Lines of ``class_name`` that call ``self.<method>(...)``: where a patched helper method is
    entered, so the branches around those calls decide whether it runs."""
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return set()
    out: set[int] = set()
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == class_name:
            for sub in ast.walk(node):
                if isinstance(sub, ast.Call) and isinstance(sub.func, ast.Attribute) and sub.func.attr == method \
                        and isinstance(sub.func.value, ast.Name) and sub.func.value.id == "self":
                    out.add(sub.lineno)
    return out


def helper_conditions(text: str, class_name: str, lines: set[int]) -> list[list[tuple[str, object]]]:
    """Constructor-argument values that take the side holding ``lines`` of the ``if`` tests in a
    module-level function that ``class_name`` calls, traced through the call: a helper's parameter
    is the constructor argument whose stored attribute the class passes for it (torchvision's
    ``shifted_window_attention(x, ..., self.shift_size, ...)`` with ``self.shift_size = shift_size``)."""
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return []
    stored = _stored_parameters(tree, class_name)
    if not stored:  # no argument reaches a helper through an attribute
        return []
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == class_name)
    out: list[list[tuple[str, object]]] = []
    for func in tree.body:
        if not isinstance(func, ast.FunctionDef) or not any(func.lineno <= line <= (func.end_lineno or func.lineno)
                                                            for line in lines):
            continue
        positional = [a.arg for a in [*func.args.posonlyargs, *func.args.args]]
        for call in ast.walk(cls):
            if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id == func.name):
                continue
            names: dict[str, str] = {}
            passed = list(zip(positional, call.args)) + [(k.arg, k.value) for k in call.keywords if k.arg]
            for param, arg in passed:
                if isinstance(arg, ast.Attribute) and isinstance(arg.value, ast.Name) and arg.value.id == "self" \
                        and arg.attr in stored:
                    names[param] = stored[arg.attr]
            if not names:
                continue
            for node in ast.walk(func):
                if not isinstance(node, ast.If):
                    continue
                for branch, stmts in (("body", node.body), ("else", node.orelse)):
                    covered = {n for s in stmts for n in range(s.lineno, (s.end_lineno or s.lineno) + 1)}
                    if stmts and covered & lines:
                        found = _conditions(node.test, branch == "body", {}, names, partial=True)
                        if found and found not in out:
                            out.append(found)
    return out
