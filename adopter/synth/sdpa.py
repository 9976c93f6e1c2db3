"""Planning hook of ADP010: hand-written attention -> ``scaled_dot_product_attention``.

The rule's pattern (``rules/ADP010-sdpa.toml``) finds ``q @ k^T`` -> optional scaling ->
optional additive mask -> softmax -> optional dropout -> ``@ v``.  A target pattern cannot
say the rewrite: the statements from the scores to the context form a *region* of one
block, and the region becomes

    if <the cases the fused call does not cover>:
        <the region, unchanged>
    else:
        <statements of the region that do not touch the attention>
        context = scaled_dot_product_attention(q, k, v, attn_mask=..., dropout_p=..., scale=...)

The guard collects the tests of the ``if`` statements in the region that the match went
around because they touch the attention values (a head mask, a relative-position bias,
Bart's ``output_attentions`` reshape), and the conditions under which later code reads a
value only the original path computes (the probabilities returned when
``output_attentions``).  With an additive mask it also sends a training step whose mask
hides every key of some query row (a sequence that is all padding) to the original: the
eager softmax is uniform there, and so is SDPA's, but SDPA's fused backward pass
recomputes those probabilities from a log-sum-exp that lost its ``log(keys)`` to rounding
at ``finfo.min``, and its gradients are wrong (:func:`_blind_rows_term`).  With an empty guard the region is replaced outright.  Everything
that cannot be shown to be equivalent is a :class:`Skip` with the reason: a guarded patch
that falls back is preferred to a clever one.
"""

from __future__ import annotations

import ast

from ..match import Match
from ..ruleset import Rule
from ..structure.names import collect_names
from .plan import Edits, Planner, Skip, Wrap
from .text import Span, dotted_name, read_names, span_of, stored_names

MASK_STEPS = ("m1", "m2", "s3")
DROPOUT_STEPS = ("p1", "p2")
SCALE_STEPS = ("s1", "s2")
SAFE_SCALE_CALLS = {"math.sqrt", "float", "int", "math.pow", "numpy.sqrt", "np.sqrt"}


def plan(planner: Planner, rule: Rule, match: Match, edits: Edits, regions: list[Span]) -> None:
    """Fill ``edits`` with the guarded rewrite of ``match`` (or raise :class:`Skip`)."""
    _Attention(planner, rule, match).plan(edits, regions)


def _atom(text: str, node: ast.AST) -> str:
    simple = (ast.Name, ast.Attribute, ast.Call, ast.Constant, ast.Subscript)
    return text if isinstance(node, simple) else f"({text})"


def _guard_term(text: str, node: ast.AST) -> str:
    """A term of ``a or b``: parenthesised only where ``or`` would bind it differently."""
    return f"({text})" if isinstance(node, (ast.BoolOp, ast.IfExp, ast.Lambda, ast.NamedExpr)) else text


def _blind_rows_term(torch: str, mask: str, condition: str | None) -> str:
    """The guard term for an additive mask ``mask`` (a name): gradients are wanted and some
    query row has every key at ``finfo.min`` (its largest entry is; one device sync per call,
    only while gradients are enabled)."""
    term = (f"{torch}.is_grad_enabled() and {mask}.is_floating_point() and "
            f"{mask}.amax(-1).min() <= {torch}.finfo({mask}.dtype).min / 2")
    return f"{condition} and {term}" if condition else term


def _parse_einsum(equation: str) -> tuple[str, str, str] | None:
    parts = equation.replace(" ", "").split("->")
    if len(parts) != 2 or "." in equation:
        return None
    inputs = parts[0].split(",")
    if len(inputs) != 2:
        return None
    return inputs[0], inputs[1], parts[1]


def _einsum_ok(equation: str, first: bool) -> bool:
    """``P x d, P y d -> P x y`` (scores) or ``P x y, P y d -> P x d`` (context)."""
    parsed = _parse_einsum(equation)
    if parsed is None:
        return False
    a, b, out = parsed
    if not (len(a) == len(b) == len(out) >= 2) or len(set(a + b + out)) != len(a) + 1:
        return False
    prefix = a[:-2]
    if b[:-2] != prefix or out[:-2] != prefix:
        return False
    x, d = a[-2:]
    if first:
        y = b[-2]
        return b[-1] == d and out[-2:] == x + y and len({x, y, d}) == 3
    y, e = b[-2:]
    return a[-1] == y and out[-2:] == x + e and len({x, y, e}) == 3


class _Attention:
    def __init__(self, planner: Planner, rule: Rule, match: Match):
        self.planner = planner
        self.index = planner.index
        self.rule = rule
        self.match = match
        self.env = dict(match.env)
        if len(match.roles) != len(match.nodes):
            raise Skip("the match does not say which step each operation is")
        self.roles = dict(zip(match.roles, match.nodes))

    # ------------------------------------------------------------------ helpers
    def _expr(self, role: str, kinds=(ast.Call, ast.BinOp)) -> ast.AST:
        node = self.roles[role]
        info = self.index.stmt(node.stmt)
        expr = self.index.find_expr(info.stmt, node.span, kinds) if info is not None else None
        if expr is None:
            raise Skip(f"the operation at line {node.line} could not be located")
        return expr

    def _text(self, node: ast.AST) -> str:
        return self.index.segment(span_of(node))

    def _stmt_text(self, stmt: ast.stmt, replace: tuple[Span, str] | None = None) -> str:
        """The statement's source, dedented to column 0 (optionally with one span replaced)."""
        lines = self.index.lines[stmt.lineno - 1:stmt.end_lineno]
        first_col = self.index.char_col(stmt.lineno, stmt.col_offset)
        end_col = self.index.char_col(stmt.end_lineno, stmt.end_col_offset)
        if replace is not None:
            (l0, c0, l1, c1), new = replace
            c0, c1 = self.index.char_col(l0, c0), self.index.char_col(l1, c1)
            r0, r1 = l0 - stmt.lineno, l1 - stmt.lineno
            head, tail = lines[r0][:c0], lines[r1][c1:]
            if r1 == len(lines) - 1:
                end_col = len(head) + len(new) + (end_col - c1)
            lines = lines[:r0] + [head + new + tail] + lines[r1 + 1:]
        lines = list(lines)
        lines[-1] = lines[-1][:end_col]
        out = []
        for number, line in enumerate(lines):
            if number == 0:
                out.append(line[first_col:])
            else:
                strip = min(first_col, len(line) - len(line.lstrip(" \t")))
                out.append(line[strip:])
        return "\n".join(out)

    def _top(self, node) -> tuple[int, list[ast.stmt]]:
        """Index in the region's block of the statement holding ``node``, and the chain of
        enclosing statements from that one down to the node's own."""
        info = self.index.stmt(node.stmt)
        chain = []
        while info is not None and info.block is not self.block:
            chain.append(info.stmt)
            owner = info.owner
            if not isinstance(owner, ast.If) or info.field != "body":
                raise Skip(f"the step at line {node.line} is inside a loop, with, try or else block")
            info = self.index.stmt(span_of(owner))
        if info is None:
            raise Skip(f"the step at line {node.line} is not in the block of the context")
        chain.append(info.stmt)
        return info.index, list(reversed(chain))

    # ------------------------------------------------------------------ the plan
    def plan(self, edits: Edits, regions: list[Span]) -> None:
        nodes = self.match.nodes
        if any(n.span is None or n.stmt is None for n in nodes):
            raise Skip("the matched code could not be located")
        if len({n.func for n in nodes}) > 1 or any(n.inlined for n in nodes):
            raise Skip("the match spans a helper method inlined into its caller; rewrite it by hand")
        last = self.index.stmt(self.roles["c"].stmt)
        if last is None:
            raise Skip("the context statement could not be located")
        self.block, hi = last.block, last.index
        owner = last.owner
        if isinstance(owner, ast.If) and last.field == "body" and any(
            "scaled_dot_product_attention" in self._text(s) for s in owner.orelse
        ):
            raise Skip("this is already the eager fallback of a scaled_dot_product_attention rewrite")

        tops: dict[str, tuple[int, list[ast.stmt]]] = {role: self._top(node) for role, node in self.roles.items()}
        lo = min(i for i, _ in tops.values())
        if max(i for i, _ in tops.values()) > hi:
            raise Skip("the attention steps are not in order in one block")
        if len(tops["c"][1]) != 1:
            raise Skip("the context matmul is inside an if-statement")
        region = self.block[lo:hi + 1]
        all_stored = set().union(*(stored_names(s) for s in region))
        step_tops = {i for i, _ in tops.values()}
        step_stored = set().union(*(stored_names(s) for off, s in enumerate(region) if lo + off in step_tops))
        kinds: list[str] = []
        for offset, stmt in enumerate(region):
            if lo + offset in step_tops:
                if isinstance(stmt, ast.If):
                    self._check_step_if(stmt)
                elif not isinstance(stmt, (ast.Assign, ast.AnnAssign, ast.AugAssign, ast.Expr)) and not (
                    isinstance(stmt, ast.Return) and offset == len(region) - 1
                ):
                    raise Skip(f"the statement at line {stmt.lineno} is not a plain assignment")
                kinds.append("step")
            elif isinstance(stmt, ast.Assert) or (isinstance(stmt, ast.If) and _raises_only(stmt)):
                kinds.append("check")
            elif isinstance(stmt, ast.If):
                touches = (_loads(stmt) | stored_names(stmt)) & step_stored
                kinds.append("guard" if touches else "keep")
            elif isinstance(stmt, (ast.Assign, ast.AnnAssign, ast.Expr, ast.Pass)):
                if _loads(stmt) & step_stored:
                    raise Skip(f"the statement at line {stmt.lineno} uses a value of the attention")
                if stored_names(stmt) & step_stored:
                    raise Skip(f"the statement at line {stmt.lineno} reassigns a value of the attention")
                kinds.append("keep")
            else:
                raise Skip(f"the statement at line {stmt.lineno} between the attention steps is not simple")
        # Values only the original path computes: the steps' and the guarded branches'.
        stored = step_stored | set().union(
            *(stored_names(s) for s, kind in zip(region, kinds) if kind == "guard"))

        self._check_softmax()
        self._check_cast()
        q, k, v = self._operands()
        for text, node in (q, k, v):
            clash = read_names(node) & stored
            if clash:
                raise Skip(f"`{sorted(clash)[0]}` is reassigned in the attention, so `{text}` would change meaning")

        guard: list[str] = []
        conditions: dict[str, ast.expr] = {}  # step role -> the if test it runs under
        for role, (_, chain) in tops.items():
            if len(chain) > 2:
                raise Skip(f"the step at line {self.roles[role].line} is nested in more than one if")
            if len(chain) == 2:
                if_stmt = chain[0]
                if if_stmt.orelse:
                    raise Skip(f"the if at line {if_stmt.lineno} holding an attention step has an else branch")
                if role not in MASK_STEPS:
                    raise Skip(f"the {role} step at line {self.roles[role].line} only runs under a condition")
                conditions[role] = if_stmt.test

        fast: list[str] = []
        for offset, (stmt, kind) in enumerate(zip(region, kinds)):
            before = set().union(*(stored_names(s) for s in region[:offset]))
            if kind == "step":
                continue
            if kind == "check":
                if not _loads(stmt) & stored:
                    fast.append(self._stmt_text(stmt))  # an input check: keep it
                continue  # a check of the scores' shape: the fused call checks shapes itself
            if kind == "keep":
                # Kept statements run before the fused call: none may change what an earlier
                # step read.
                earlier = set().union(*(_loads(s) for s, k in zip(region[:offset], kinds[:offset])
                                        if k in ("step", "guard")))
                clash = stored_names(stmt) & earlier
                if clash:
                    raise Skip(f"line {stmt.lineno} reassigns `{sorted(clash)[0]}` after the attention read it")
                fast.append(self._stmt_text(stmt))
                continue
            clash = read_names(stmt.test) & before
            if clash:
                raise Skip(f"the if at line {stmt.lineno} tests `{sorted(clash)[0]}`, assigned after the attention begins")
            guard.append(_guard_term(self._text(stmt.test), stmt.test))
            for inner in stmt.orelse:
                if not isinstance(inner, (ast.Assign, ast.AnnAssign, ast.Expr, ast.Pass)):
                    raise Skip(f"the else branch at line {inner.lineno} does more than assign")
                if _loads(inner) & stored:
                    raise Skip(f"the else branch at line {inner.lineno} reads a value of the attention")
                fast.append(self._stmt_text(inner))

        self.blind_rows = None
        call = self._call(q[0], k[0], v[0], conditions, stored)
        if self.blind_rows is not None and not read_names(ast.parse(self.blind_rows, mode="eval")) & all_stored:
            guard.append(_guard_term(self.blind_rows, ast.parse(self.blind_rows, mode="eval").body))
        edits.imports.add(self.edits_import)
        c_expr = self._expr("c")
        c_stmt = region[-1]
        fast.append(self._stmt_text(c_stmt, (span_of(c_expr), call)))
        fast_defs = set().union(*(stored_names(ast.parse(t)) for t in fast))
        guard += self._live_reads(region, all_stored - fast_defs)

        unique = list(dict.fromkeys(guard))
        for term in unique:
            clash = read_names(ast.parse(term, mode="eval")) & all_stored
            if clash and term not in {_guard_term(self._text(s.test), s.test) for s in region if isinstance(s, ast.If)}:
                raise Skip(f"the fallback condition `{term}` reads `{sorted(clash)[0]}`, computed by the attention")
        guard_text = " or ".join(unique) if unique else None
        first, final = region[0], region[-1]
        edits.wrap = Wrap(
            first=(first.lineno, self.index.char_col(first.lineno, first.col_offset)),
            last=(final.lineno, self.index.char_col(final.lineno, final.col_offset)),
            guard=guard_text,
            fast="\n".join(fast),
        )
        regions.append((first.lineno, first.col_offset, final.end_lineno, final.end_col_offset))

    def _check_cast(self) -> None:
        """``probs.to(value.dtype)``: a no-op when q, k, v share a dtype, which SDPA requires
        (it raises otherwise); any other ``.to`` (a device, a fixed dtype) is not covered."""
        if "p3" not in self.roles:
            return
        expr = self._expr("p3", (ast.Call,))
        c = self._expr("c")
        value = c.right if isinstance(c, ast.BinOp) else c.args[-1]
        ok = (len(expr.args) == 1 and not expr.keywords and isinstance(expr.args[0], ast.Attribute)
              and expr.args[0].attr == "dtype" and self._text(expr.args[0].value) == self._text(value))
        if not ok:
            raise Skip("the probabilities are cast with .to() to something other than the value's dtype")

    def _check_softmax(self) -> None:
        expr = self._expr("p0", (ast.Call,))
        extra = [*expr.args[1:], *(kw.value for kw in expr.keywords)]
        names = [kw.arg for kw in expr.keywords]
        if isinstance(expr.func, ast.Call):  # nn.Softmax(dim=-1)(scores)
            built = expr.func
            if len(expr.args) != 1 or expr.keywords or built.args:
                raise Skip("the softmax layer is not built with dim=-1 alone")
            extra = [kw.value for kw in built.keywords]
            names = [kw.arg for kw in built.keywords]
        minus_one = len(extra) == 1 and isinstance(extra[0], ast.UnaryOp) and isinstance(extra[0].op, ast.USub) \
            and isinstance(extra[0].operand, ast.Constant) and extra[0].operand.value == 1
        if not minus_one or names not in ([], ["dim"]):
            raise Skip("the softmax is not a plain softmax over the last dimension")

    def _check_step_if(self, stmt: ast.If) -> None:
        step_stmts = {n.stmt for n in self.match.nodes}
        for inner in stmt.body:
            if span_of(inner) in step_stmts:
                continue
            if isinstance(inner, ast.If) and _raises_only(inner):
                continue
            raise Skip(f"the if at line {stmt.lineno} does more than an attention step")

    # ------------------------------------------------------------------ operands
    def _operands(self):
        s0 = self._expr("s0")
        c = self._expr("c")
        if isinstance(s0, ast.BinOp):
            q, kt = s0.left, s0.right
            pv, v = c.left, c.right
            kind = "@"
        else:
            op = self.roles["s0"].op
            kind = op.rsplit(".", 1)[-1]
            if kind == "einsum":
                if len(s0.args) != 3 or len(c.args) != 3 or s0.keywords or c.keywords:
                    raise Skip("an einsum with other than two operands")
                eq1, eq2 = s0.args[0], c.args[0]
                if not (isinstance(eq1, ast.Constant) and isinstance(eq1.value, str) and _einsum_ok(eq1.value, True)):
                    raise Skip("the scores einsum is not a batched q @ k^T")
                if not (isinstance(eq2, ast.Constant) and isinstance(eq2.value, str) and _einsum_ok(eq2.value, False)):
                    raise Skip("the context einsum is not a batched probabilities @ v")
                q, k, v = s0.args[1], s0.args[2], c.args[2]
                return (self._text(q), q), (self._text(k), k), (self._text(v), v)
            if len(s0.args) != 2 or len(c.args) != 2 or s0.keywords or c.keywords:
                raise Skip(f"a {kind} with other than two operands")
            q, kt = s0.args
            pv, v = c.args
        del pv
        if "kt" not in self.roles:
            raise Skip("the key is not transposed in the attention")
        kt_expr = self._expr("kt", (ast.Call,))
        if not isinstance(kt_expr.func, ast.Attribute) or len(kt_expr.args) != 2 or kt_expr.keywords:
            raise Skip("the key transpose could not be read")
        dims = []
        for arg in kt_expr.args:
            value = arg.value if isinstance(arg, ast.Constant) else (
                -arg.operand.value if isinstance(arg, ast.UnaryOp) and isinstance(arg.operand, ast.Constant) else None)
            dims.append(value)
        allowed = [{-1, -2}] + ([{1, 2}] if kind == "bmm" else [])
        if set(dims) not in allowed or len(set(dims)) != 2:
            raise Skip(f"the key transpose {tuple(dims)} is not over its last two dimensions")
        k = kt_expr.func.value
        return (self._text(q), q), (self._text(k), k), (self._text(v), v)

    def _operand_of(self, role: str, var: str) -> ast.expr:
        """The code operand of a binary step that the pattern bound to ``$var``."""
        expr = self._expr(role, (ast.BinOp, ast.AugAssign))
        node = self.roles[role]
        bound = self.env.get(var)
        operands = (expr.target, expr.value) if isinstance(expr, ast.AugAssign) else (expr.left, expr.right)
        for position, value in enumerate(node.args[:2]):
            if value == bound:
                return operands[position]
        raise Skip(f"the {var} operand at line {node.line} could not be located")

    # ------------------------------------------------------------------ the call
    def _call(self, q: str, k: str, v: str, conditions: dict, stored: set) -> str:
        local, request = self.planner.names.local(self.rule.kernel.import_)
        self.edits_import = request
        args = [q, k, v]

        if "m2" in self.roles:
            mask = self._operand_of("m2", "mask")
            text = self._text(mask)
            if read_names(mask) & stored:
                raise Skip(f"the mask `{text}` is computed by the attention")
            views = [r for r in ("m1", "s3") if r in self.roles]
            if views and len(views) != 2:
                raise Skip("the mask is added to a reshaped score without reshaping it back")
            if views:
                shape = self._view_args("m1")
                back = self._view_args("s3")
                if any(isinstance(a, ast.UnaryOp) or (isinstance(a, ast.Constant) and a.value == -1)
                       for a in shape):
                    raise Skip("the mask is added in a shape with -1, which expand cannot take")
                text = (f"{_atom(text, mask)}.expand({', '.join(map(self._text, shape))})"
                        f".reshape({', '.join(map(self._text, back))})")
            condition = conditions.get("m2")
            torch = next((local for local, fqn in collect_names(self.index.tree).imports.items() if fqn == "torch"),
                         None)
            if torch is not None and isinstance(mask, (ast.Name, ast.Attribute)) and dotted_name(mask):  # cheap to test
                self.blind_rows = _blind_rows_term(
                    torch, self._text(mask), None if condition is None else _guard_term(self._text(condition), condition))
            if condition is not None:
                if read_names(condition) & stored:
                    raise Skip("the mask condition reads a value of the attention")
                test = self._text(condition)
                plain = (isinstance(condition, ast.Compare) and len(condition.ops) == 1
                         and isinstance(condition.ops[0], ast.IsNot)
                         and isinstance(condition.comparators[0], ast.Constant)
                         and condition.comparators[0].value is None
                         and self._text(condition.left) == self._text(mask))
                if not (plain and not views):
                    text = f"{text} if {test} else None"
            args.append(f"attn_mask={text}")
        elif any(r in self.roles for r in MASK_STEPS):
            raise Skip("the scores are reshaped without a mask being added")

        dropouts = [r for r in DROPOUT_STEPS if r in self.roles]
        if len(dropouts) > 1:
            raise Skip("the probabilities go through more than one dropout")
        if dropouts:
            args.append(f"dropout_p={self._dropout(dropouts[0])}")

        args.append(f"scale={self._scale(stored)}")
        return f"{local}({', '.join(args)})"

    def _view_args(self, role: str) -> list[ast.expr]:
        expr = self._expr(role, (ast.Call,))
        if not isinstance(expr.func, ast.Attribute) or expr.func.attr != "view" or expr.keywords:
            raise Skip(f"the reshape at line {self.roles[role].line} could not be read")
        args = list(expr.args)
        if len(args) == 1 and isinstance(args[0], (ast.Tuple, ast.List)):
            args = list(args[0].elts)
        if any(isinstance(a, ast.Starred) for a in args) or not args:
            raise Skip(f"the reshape at line {self.roles[role].line} takes a starred shape")
        return args

    def _dropout(self, role: str) -> str:
        node = self.roles[role]
        if node.kind == "layer":
            return f"{node.layer}.p if self.training else 0.0"
        expr = self._expr(role, (ast.Call,))
        kwargs = {kw.arg: kw.value for kw in expr.keywords}
        if None in kwargs or any(isinstance(a, ast.Starred) for a in expr.args):
            raise Skip("the dropout call takes ** or * arguments")
        p = expr.args[1] if len(expr.args) > 1 else kwargs.get("p")
        training = expr.args[2] if len(expr.args) > 2 else kwargs.get("training")
        p_text = "0.5" if p is None else _atom(self._text(p), p)
        if training is None:
            return p_text
        if isinstance(training, ast.Constant):
            return p_text if training.value else "0.0"
        return f"{p_text} if {self._text(training)} else 0.0"

    def _scale(self, stored: set) -> str:
        parts = {}
        for role, var in (("s1", "div"), ("s2", "mul")):
            if role not in self.roles:
                continue
            operand = self._operand_of(role, var)
            if read_names(operand) & stored:
                raise Skip("the scale is computed by the attention")
            if not _plain_number(operand):
                raise Skip(f"the scale `{self._text(operand)}` may be a tensor (scale= takes a number)")
            parts[var] = _atom(self._text(operand), operand)
        if "mul" in parts and "div" in parts:
            return f"{parts['mul']} / {parts['div']}"
        if "div" in parts:
            return f"1 / {parts['div']}"
        return parts.get("mul", "1.0")

    # ------------------------------------------------------------------ later reads
    def _live_reads(self, region: list[ast.stmt], live: set[str]) -> list[str]:
        """The conditions under which code after the region reads what only the original
        path defines (each read must sit under such a condition, or the match is skipped)."""
        if not live:
            return []
        func = self._function(region[0])
        if func is None:
            raise Skip("the attention is not inside a function")
        parents = {}
        for parent in ast.walk(func):
            for child in ast.iter_child_nodes(parent):
                parents[child] = parent
        end = (region[-1].end_lineno, region[-1].end_col_offset)
        terms: list[str] = []
        for node in ast.walk(func):
            if not (isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load) and node.id in live):
                continue
            if (node.lineno, node.col_offset) < end:
                continue
            term = None
            child, parent = node, parents.get(node)
            while parent is not None and parent is not func:
                if isinstance(parent, ast.IfExp) and child is parent.body:
                    term = parent.test
                    break
                if isinstance(parent, ast.If) and child in parent.body:
                    term = parent.test
                    break
                child, parent = parent, parents.get(parent)
            if term is None:
                raise Skip(f"`{node.id}` (computed by the attention) is read at line {node.lineno} unconditionally")
            changed = {
                n.id for n in ast.walk(func)
                if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)
                and (region[0].lineno, 0) <= (n.lineno, n.col_offset) < (term.lineno, term.col_offset)
            }
            if read_names(term) & changed:
                raise Skip(f"the condition at line {term.lineno} is assigned after the attention begins")
            terms.append(_guard_term(self._text(term), term))
        return terms

    def _function(self, stmt: ast.stmt):
        info = self.index.stmt(span_of(stmt))
        while info is not None and not isinstance(info.owner, (ast.FunctionDef, ast.AsyncFunctionDef)):
            info = self.index.stmt(span_of(info.owner)) if isinstance(info.owner, ast.stmt) else None
        return info.owner if info is not None else None


def _loads(stmt: ast.AST) -> set[str]:
    """Names (and dotted chains) a statement reads; unlike read_names, not those it assigns."""
    out: set[str] = set()
    for node in ast.walk(stmt):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
            out.add(node.id)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Load):
            dotted = dotted_name(node)
            if dotted:
                out.add(dotted)
    return out


def _raises_only(stmt: ast.If) -> bool:
    return not stmt.orelse and all(isinstance(s, ast.Raise) for s in stmt.body)


def _plain_number(node: ast.expr) -> bool:
    """An expression of numbers, names, attributes and math functions (not a tensor op)."""
    for sub in ast.walk(node):
        if isinstance(sub, ast.Call):
            name = dotted_name(sub.func)
            if name not in SAFE_SCALE_CALLS:
                return False
        elif isinstance(sub, (ast.Subscript, ast.Lambda, ast.NamedExpr)):
            return False
    return True
