"""Planning hook of ADP010: hand-written attention -> ``scaled_dot_product_attention``.

The rule's pattern (``rules/ADP010-sdpa.toml``) finds, in canonical operations (every
spelling of each step is one node: ``@``/``matmul``/``bmm``/``einsum``, ``softmax`` however
written, ``masked_fill``/``where``, ``.float()``/``.to(...)``):

    [k^T =] transpose(k)      ->  scores = q @ k^T  ->  [/ d] [* s]  ->  [+ bias] [view + mask view]
    -> [masked_fill(where, fill)] -> [.float()] -> softmax(dim=-1) -> [dropout] -> [.to(q.dtype)]
    -> context = probs @ v

A target pattern cannot say the rewrite: the statements from the scores to the context form
a *region* of one block, and the region becomes

    if <the cases the fused call does not cover>:
        <the region, unchanged>
    else:
        <statements of the region that do not touch the attention>
        context = scaled_dot_product_attention(q, k, v, attn_mask=..., dropout_p=..., scale=...)

The guard collects the tests of the ``if`` statements in the region that the match went
around because they touch the attention values (a head mask, a relative-position bias,
Bart's ``output_attentions`` reshape), the conditions under which later code reads a value
only the original path computes (the probabilities returned when ``output_attentions``),
and the forward hooks of the softmax and dropout modules the fused call would not run (an
attention map recorded by a hook).  With an additive mask held in a name it also sends a
training step whose mask hides every key of some query row (a sequence that is all padding;
every key at -100 or below, :data:`HIDDEN_ROW`) to the original: the eager softmax is (near)
uniform there, and so is SDPA's, but SDPA's fused backward pass recomputes those
probabilities from a log-sum-exp that lost its ``log(keys)`` to rounding at -1e4, -1e9 or
``finfo.min``, and its gradients are wrong (:func:`_blind_rows_term`; the same
for a mask written as a 0/1 mask times a large negative literal, ``m * -1e9``, whose rows at
about the literal lose it too: :meth:`_Attention._note_blind_rows`); and a
mask of that name that is not floating point, which the code adds as 0/1 where SDPA would
read a bool one as keep/drop.  With
an empty guard the region is replaced outright.  Everything that cannot be shown to be
equivalent is a :class:`Skip` with the reason: a guarded patch that falls back is preferred
to a clever one.
"""

from __future__ import annotations

import ast
import copy
import re
from collections import Counter
from ..records import replace

from ..match import Match
from ..ruleset import Rule
from ..structure import Const
from ..structure.canon import (LARGE_NEGATIVE, einx_where_layout, fill_choices, fill_number, fill_value, held_fill,
                               ones_times)
from ..structure.formulas import bias_add_in_place, function_forward, rate_parts
from ..structure.ops import CASTS, DTYPE_ALIASES
from ..structure.setting_dispatch import dispatched_attr, local_dispatches
from ..structure.sized import SHAPE_METADATA, SHAPE_METADATA_METHODS
from ..structure.sized import plain_forward as _plain_forward, shape_metadata_only as _shape_metadata_only
from ..structure.names import class_body_value, collect_names, param_default
from .init_numbers import InitNumbers
from .interleaved import RANDOM_WORDS, effectful_call, movable_tail, tail_text
from .plan import Edits, Planner, Skip, Wrap
from .ranks import bool_by_code, rank_leaves, static_rank
from .text import Span, contains, dotted_name, numeric_literal, read_names, span_of, stored_names
from .run import current_run
from .weights import Decline, unread_store
from ..structure.class_syntax import is_docstring
from ..structure.treewalk import ast_walk
from ..structure import key_cats, written_equations

# The dtypes a 0-d scale tensor may be named outright in (``torch.tensor(d, dtype=torch.float32)``):
# floating, so it promotes no floating scores, and full precision, so it holds the number itself
# (a float16 copy of the scale stays declined unless it is the scores' own dtype).
FULL_FLOAT_DTYPES = frozenset({"torch.float32", "torch.float64"})
# the scores multiplied or divided by the scale: s1 divides, s2 multiplies, and sp multiplies
# the product first where a second factor (s2) follows with no bias between (two factors in a
# row, x-metaformer's ``scores * head_dim ** -0.5 * self.scale``; with a bias or fill after sp,
# the de-stationary forms, sp scales the product alone: _Attention.product_factor)
SCALE_STEPS = ("sp", "s1", "s2")
SCALE_VARS = {"s1": "div", "s2": "mul", "sp": "pre"}  # the pattern's variable for each one's factor
ADD_STEPS = ("b0", "b1", "m2")  # additive masks: a bias before the scale, one after, Bart's mask added to
# reshaped scores
VIEW_STEPS = ("m1", "s3")
FILL_STEPS = ("fs", "f0", "fv", "f1")  # a masked_fill / where on the product before the scale, before the
# additive mask, between the two reshapes of the scores (in the heads' view), or after it
# the steps from the product to the softmax, in order; those that never change the dtype
SCORE_STEPS = ("s0", "sp", "b0", "fs", "s1", "s2", "b1", "f0", "m1", "m2", "fv", "s3", "u0", "f1", "ub", "u", "z")
# a cast of the (upcast, filled) scores before the softmax, to a dtype the match does not
# state (fastNLP's keys-first ``s.float().masked_fill_(pad, -inf).type_as(s)``): the softmax
# then computes in that dtype, which the plan does not follow -- declined (:meth:`plan`)
RECAST = "ub"
UPCASTS = ("u0", "u")  # the scores upcast to float32 before the softmax: before the fill (u0) or after it
TENSOR_FACTORIES = frozenset({"torch.full", "torch.zeros", "torch.ones", "torch.empty"})  # dtype= sets theirs
DTYPE_KEEPING = ("s0", "fs", "f0", "m1", "fv", "s3", "f1", "z")
MASK_STEPS = ("b0", "fs", "b1", "f0", "m1", "m2", "fv", "s3", "f1")  # the steps that may run under `if mask is not None:`
SAFE_SCALE_CALLS = {"math.sqrt", "float", "int", "math.pow", "numpy.sqrt", "np.sqrt", "math.log", "len"}
SIZE_METHODS = {"size", "dim", "ndimension", "numel"}  # tensor methods that return Python ints
# Elementwise functions and methods: a tensor built from a constant-along-the-keys one stays so.
ELEMENTWISE = {"exp", "log", "sigmoid", "clamp", "clip", "abs", "sqrt", "softplus", "reciprocal", "detach", "float",
               "to", "type_as"}
FACTORIES = {"ones", "zeros", "rand", "randn", "empty", "full"}


# A step between the matched ones that only a configuration ``if`` runs (area attention's
# optional top-k renormalisation under ``if self.top_k_areas > 0:``; ``Match.settings``) is taken
# here: that if is one the match went around, and the guard sends its test to the original path,
# where the step runs as written.  A setting whose test the guard does not hold declines with the
# match's ``unfixable`` reason (:meth:`_Attention._check_settings_sent`).
GUARDS_SETTINGS = True


def plan(planner: Planner, rule: Rule, match: Match, edits: Edits, regions: list[Span]) -> None:
    """Fill ``edits`` with the guarded rewrite of ``match`` (or raise :class:`Skip`).  Where
    the match cannot be rewritten, the other ways to its softmax (``match.others``: the scores
    computed another way in the other branch of an if) are tried, best first.  Each try plans
    into edits of its own (a try that fails late leaves nothing behind)."""
    error: Skip | None = None
    around = [m for m in (_around_bias_before_scale(match), _around_recast_fill(match)) if m is not None]
    other_arm = _other_arm_call(match)
    for index, candidate in enumerate([match, *around, *match.others,
                                       *([other_arm] if other_arm is not None else [])]):
        trial_edits, trial_regions = Edits(), []
        try:
            _Attention(planner, rule, candidate).plan(trial_edits, trial_regions)
        except Skip as exc:
            error = error or exc
            continue
        edits.expr.update(trial_edits.expr)
        edits.delete |= trial_edits.delete
        edits.params.update(trial_edits.params)
        edits.keywords.update(trial_edits.keywords)
        edits.imports |= trial_edits.imports
        edits.wrap = trial_edits.wrap
        regions.extend(trial_regions)
        return
    raise error


def _around_bias_before_scale(match: Match) -> Match | None:
    """``match`` without its bias added before the scale (``b0``) when that add is a statement
    of its own (BERT's relative-position scores under ``if self.position_embedding_type ==
    ...``, an if that computes more than the bias): the if around it is then one the match
    went around, and the guard sends it to the original, as before the step was read.  None
    when there is no such step: dropping an add that shares a statement with another step
    would lose it from the fused call."""
    roles = list(match.roles)
    if "b0" not in roles:
        return None
    index = roles.index("b0")
    stmt = match.nodes[index].stmt
    if stmt is None or any(n.stmt == stmt for i, n in enumerate(match.nodes) if i != index):
        return None
    keep = [i for i in range(len(roles)) if i != index]
    return replace(match, nodes=tuple(match.nodes[i] for i in keep), roles=tuple(roles[i] for i in keep))


def _around_recast_fill(match: Match) -> Match | None:
    """``match`` without its upcast, fill and cast back (``u0``/``f1``/``ub``/``u``: Transformer-XL's
    ``score.float().masked_fill(m, v).type_as(score)`` under ``if mask is not None:``) when they
    are statements of their own: where the fused call cannot take that fill (scores with their
    axes moved), the if around it is one the match goes around and the guard sends it to the
    original -- the fix the match had before the cast back was read as a step (misses52).
    None without a cast back, or where a dropped step shares a statement with a kept one."""
    roles = list(match.roles)
    if RECAST not in roles:
        return None
    dropped = [i for i, role in enumerate(roles) if role in ("u0", "f1", RECAST, "u")]
    stmts = {match.nodes[i].stmt for i in dropped}
    if None in stmts or any(n.stmt in stmts for i, n in enumerate(match.nodes) if i not in dropped):
        return None
    keep = [i for i in range(len(roles)) if i not in dropped]
    return replace(match, nodes=tuple(match.nodes[i] for i in keep), roles=tuple(roles[i] for i in keep))


def _other_arm_call(match: Match) -> Match | None:
    """``match`` through the helper's call in the other arm of the if holding the call it
    went through (unimol's ``if not return_attn: attn = softmax_dropout(w, p, training,
    bias=attn_bias)`` / ``else: w += attn_bias; attn = softmax_dropout(w, p, training,
    inplace=False)``, matched through the else arm, which adds more): the helper's steps
    (``inlined``, the same nodes) in the other arm, and without the steps of the arm left,
    which that path does not run.  None unless every inlined step sits in one arm and the
    steps dropped are adds of the scores (:data:`ADD_STEPS`), statements of their own in that
    arm.  Which call (_inline_probs_helper) and whether the rest holds (the whole plan) is
    checked as for any match; tried last."""
    inlined = [n for n in match.nodes if n.inlined]
    if not inlined or not inlined[0].scope or any(n.scope != inlined[0].scope for n in inlined):
        return None
    if_span, arm = inlined[0].scope[-1]
    if arm not in (0, 1):
        return None
    keep, dropped = [], []
    for index, node in enumerate(match.nodes):
        if node.inlined:
            continue
        (dropped if (if_span, arm) in node.scope else keep).append(index)
    if not dropped or any(match.roles[i] not in ADD_STEPS for i in dropped):
        return None
    if any(match.nodes[i].stmt == n.stmt for i in dropped for j, n in enumerate(match.nodes) if j not in dropped):
        return None
    flipped = (*inlined[0].scope[:-1], (if_span, 1 - arm))
    nodes = tuple(replace(n, scope=flipped) if n.inlined else n
                  for i, n in enumerate(match.nodes) if i not in dropped)
    roles = tuple(r for i, r in enumerate(match.roles) if i not in dropped)
    return replace(match, nodes=nodes, roles=roles, others=())


def _transposed(operand: tuple[str, ast.expr]) -> tuple[str, ast.expr]:
    text = f"{_atom(*operand)}.transpose(-2, -1)"
    return text, ast.parse(text, mode="eval").body


RANK_SKIP = "the softmax's dim counts from the front of scores whose rank the code does not fix"


def _untransposed(node: ast.expr) -> ast.expr:
    """``node`` without the transposes around it (``torch.transpose(x, 1, 2).transpose(-2, -1)``
    is ``x``, as far as its rank goes)."""
    while isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "transpose" \
            and not node.keywords:
        if len(node.args) == 2:
            node = node.func.value  # x.transpose(a, b)
        elif len(node.args) == 3 and isinstance(node.func.value, ast.Name) and node.func.value.id == "torch":
            node = node.args[0]  # torch.transpose(x, a, b)
        else:
            break
    return node


def _atom(text: str, node: ast.AST) -> str:
    simple = (ast.Name, ast.Attribute, ast.Call, ast.Constant, ast.Subscript)
    return text if isinstance(node, simple) else f"({text})"


def _atom_text(text: str, node: ast.AST) -> str:
    """:func:`_atom` of ``text`` read as the expression it is: a value rewritten on the way
    (``sim.shape`` read off q and k as ``broadcast_shapes(...) + (...)``) is no longer the
    kind of expression ``node`` was, and an index put after it must not bind to its last term."""
    if _wrapped(text):
        return text
    try:
        parsed = ast.parse(text.strip(), mode="eval").body
    except SyntaxError:
        parsed = node
    return _atom(text, parsed)


def _wrapped(text: str) -> bool:
    """Is ``text`` one parenthesised expression, ``(...)`` whose first parenthesis closes last?"""
    if not (text.startswith("(") and text.endswith(")")):
        return False
    depth = 0
    for at, char in enumerate(text):  # (brackets inside strings are rare in a mask; a miss only adds parentheses)
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth == 0:
            return at == len(text) - 1
    return False


def _guard_term(text: str, node: ast.AST) -> str:
    """A term of ``a or b``: parenthesised only where ``or`` would bind it differently."""
    return f"({text})" if isinstance(node, (ast.BoolOp, ast.IfExp, ast.Lambda, ast.NamedExpr)) else text


def _sent_body_names(region: list[ast.stmt], kinds: list[str]) -> set[str]:
    """Names only the bodies of the ifs the guard sends to the original assign in ``region``
    (texar's T5 `if position_bias is None: position_bias = self.compute_bias(...)`).  The fused
    path runs where each such test fails, as the original does without running the body, so
    there the name holds its value from before the attention on both paths: the fused call may
    read it (as the mask, or beside the product)."""
    sent = set().union(*(stored_names(inner) for s, kind in zip(region, kinds) if kind == "guard"
                         for inner in s.body))
    others = set().union(*(stored_names(s) for s, kind in zip(region, kinds) if kind != "guard"),
                         *(stored_names(inner) for s, kind in zip(region, kinds) if kind == "guard"
                           for inner in s.orelse))
    return sent - others


def _sent_bound_before(names: set[str], func, first: ast.stmt) -> set[str]:
    """Of ``names`` (assigned in the region only by the bodies of ifs the guard sends to the
    original: :func:`_sent_body_names`), those bound before the region on every path: the
    function's parameters, or names a statement of the function's own body assigns before
    ``first``.  A widening term (``getattr(b, "dtype", q.dtype) != q.dtype``, which reads any
    value without raising) may read them before the attention (bert-seq2seq's T5 `if
    position_bias is None: position_bias = self.compute_bias(...)` before `scores +=
    position_bias`): where a sent test holds the guard takes the original whatever the term
    says, and where none does no body ran, so the name holds at the add what the term read."""
    if not names or func is None:
        return set()
    args = func.args
    bound = {a.arg for a in [*args.posonlyargs, *args.args, *args.kwonlyargs]}
    bound |= {a.arg for a in (args.vararg, args.kwarg) if a is not None}
    for stmt in func.body:
        if (stmt.lineno, stmt.col_offset) >= (first.lineno, first.col_offset):
            break
        if isinstance(stmt, (ast.Assign, ast.AnnAssign)) and not (isinstance(stmt, ast.AnnAssign) and stmt.value is None):
            bound |= stored_names(stmt)
    return names & bound


def _eager_training(torch: str) -> str:
    """The first terms of a guard that tests a mask's values: gradients are wanted, and the
    code runs eagerly.  Under ``torch.compile`` or ``torch.export`` a branch on a tensor's
    values is a graph break or an export error, so the compiled program takes the fused call
    (``torch.compiler.is_compiling``: torch >= 2.3, the rule's ``min_version``)."""
    return f"{torch}.is_grad_enabled() and not {torch}.compiler.is_compiling()"


_SWAMPING = 1e30  # a literal fill this large leaves no score's value beside it, in any dtype's rounding


# what an if the fused path runs may hold (an if reading the scores' metadata: plan)
_PLAIN_IF_STATEMENTS = (ast.If, ast.Assign, ast.AnnAssign, ast.AugAssign, ast.Expr, ast.Pass)


_LIKE = frozenset({"ones_like", "zeros_like", "full_like", "empty_like"})  # torch.<x>_like(t, ...) -> torch.<x>(shape, ...)
_AS_SHAPE = {"expand_as": "expand", "view_as": "view", "reshape_as": "reshape"}  # x.<m>_as(t) -> x.<m>(t.shape)


def _number(expr) -> float | None:
    """The value of a numeric literal (``-10000``, ``-1e9``) as a float, None for anything else."""
    value = numeric_literal(expr)
    return None if value is None else float(value)


def _number_on_a_path(value: ast.expr) -> bool:
    """Is ``value`` a number literal, or a conditional expression one of whose branches is
    (``0.0 if bias is None else bias``)?  A name bound to it holds a Python number on that path."""
    if value.__class__ is ast.IfExp:
        return _number_on_a_path(value.body) or _number_on_a_path(value.orelse)
    return _number(value) is not None


def _fill_literal(expr) -> float | None:
    """The fill's number as :func:`_number` reads it; for a fill chosen at run time between two
    (``float("-inf") if precision == "32" else -10000``), the least negative branch's number:
    the entirely filled rows that number leaves must be checked on every path, as a literal's."""
    numbers = [float(n) for n in map(fill_number, fill_choices(expr)) if n is not None]
    return max(numbers) if numbers else None


SHAPE_METHODS = {"view", "reshape", "unsqueeze", "squeeze", "transpose", "permute", "expand", "contiguous", "flatten"}


def _uncast(node: ast.AST, removed: dict | None = None) -> ast.AST:
    """``node`` with every cast method call (``x.half()``, ``x.float()``, ``x.to(...)``,
    ``x.type_as(y)``, ``x.type(...)``) replaced by its receiver (``removed``: the span of each
    dropped call -> its receiver)."""

    class Strip(ast.NodeTransformer):
        def visit_Call(self, call: ast.Call) -> ast.AST:
            self.generic_visit(call)
            func = call.func
            if isinstance(func, ast.Attribute) and (
                    (func.attr in CASTS and not call.args and not call.keywords)
                    or func.attr in ("to", "type", "type_as")):
                if removed is not None:
                    removed[span_of(call)] = func.value
                return func.value
            return call

    return Strip().visit(node)


def _dtype_source(name: str, region: list[ast.stmt], before: Span) -> ast.expr | None:
    """The tensor read before ``region`` whose dtype ``name`` has at the statement ``before``:
    the region's statements assigning ``name`` up to there are top-level ``name = <expr>``
    whose value is, through indexing and reshapes (:data:`SHAPE_METHODS`), ``name`` itself or
    a name or attribute the region does not assign.  None otherwise."""
    assigns = []
    for st in region:
        if (st.lineno, st.col_offset) >= (before[0], before[1]):
            break
        if name not in stored_names(st):
            continue
        if not (isinstance(st, ast.Assign) and len(st.targets) == 1 and isinstance(st.targets[0], ast.Name)):
            return None
        assigns.append(st.value)
    stored = set().union(*(stored_names(st) for st in region))
    for value in reversed(assigns):
        while True:
            value = _dtype_of(value)
            if isinstance(value, ast.Subscript):
                value = value.value
                continue
            break
        if isinstance(value, ast.Name) and value.id == name:
            continue  # `b = b.permute(2, 0, 1)`: the dtype of the assignment before
        if isinstance(value, (ast.Name, ast.Attribute)) and dotted_name(value) and not read_names(value) & stored:
            return value
        return None
    return None


def _dtype_fallback(stmt: ast.Try) -> bool:
    """A ``try`` of one statement whose every handler is that statement again with casts added
    and nothing else (yolov7's ``try: x = (attn @ v)...`` / ``except: x = (attn.half() @ v)...``):
    a fallback for operands of mixed dtypes.  Cheap: one statement each, compared by dump."""
    if len(stmt.body) != 1 or stmt.orelse or stmt.finalbody or not stmt.handlers:
        return False
    body = stmt.body[0]
    if not isinstance(body, (ast.Assign, ast.AnnAssign)):
        return False
    want = ast.dump(body, annotate_fields=False)
    for handler in stmt.handlers:
        if len(handler.body) != 1 or type(handler.body[0]) is not type(body) or handler.name is not None:
            return False
        again = ast.dump(_uncast(copy.deepcopy(handler.body[0])), annotate_fields=False)
        if again != want or ast.dump(handler.body[0], annotate_fields=False) == want:
            return False
    return True


def _dtype_of(expr: ast.expr) -> ast.expr:
    """The tensor whose dtype ``expr`` has: through methods that only reshape
    (``attn_bias.view(b * h, t, s)`` has ``attn_bias``'s), else ``expr`` itself."""
    while isinstance(expr, ast.Call) and isinstance(expr.func, ast.Attribute) and expr.func.attr in SHAPE_METHODS:
        expr = expr.func.value
    return expr


def _not_none_tested(test: ast.expr) -> set[str]:
    """The name of a test ``name is not None`` (alone), else nothing."""
    if isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], ast.IsNot) \
            and isinstance(test.left, ast.Name) and isinstance(test.comparators[0], ast.Constant) \
            and test.comparators[0].value is None:
        return {test.left.id}
    return set()


def _only_cleared(stmt: ast.stmt, names: set[str]) -> bool:
    """Does ``stmt`` assign the ``names`` nothing but ``None`` (``m = None``, also in an if)?"""
    for node in ast_walk(stmt):
        if isinstance(node, (ast.AugAssign, ast.AnnAssign, ast.NamedExpr, ast.For, ast.With, ast.comprehension)):
            targets = [getattr(node, "target", None)] + [i.optional_vars for i in getattr(node, "items", [])]
            if any(isinstance(t, ast.AST) and {n.id for n in ast_walk(t) if isinstance(n, ast.Name)} & names
                   for t in targets):
                return False
        elif isinstance(node, ast.Assign):
            stored = {n.id for t in node.targets for n in ast_walk(t) if isinstance(n, ast.Name)}
            if stored & names and not (len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)
                                       and isinstance(node.value, ast.Constant) and node.value.value is None):
                return False
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Global, ast.Nonlocal)):
            return False
    return True


# A query row whose every key an additive mask of unknown values lowers by at least this much
# is one the mask hides whole.  SDPA's fused CPU kernel (flash; the one taken without dropout
# and with a mask that needs no gradient) agrees with the eager softmax in the forward there,
# but its backward recomputes the weights as exp(s - lse) from the row's log-sum-exp, which at
# that magnitude lost log(keys) to rounding: the fused-vs-original gradient error grows with
# the shift (float32: 2e-6 at -100, 2e-5 at -1e3, 2e-4 at -1e4, 2e-3 at -1e5, 5.0 (every
# weight 1) at -1e9 and at finfo.min; float64: only finfo.min's).  At -100 it is as small as
# the fused call's usual difference from the original (4e-7); no bias that keeps a row's keys
# shifts all of them that far (a relative-position bias, ALiBi: the row's own key is near 0).
HIDDEN_ROW = "-100.0"


# tensor methods that only view, reshape or cast their tensor: an expression of names and these
# is cheap to read again for the guard, and reads the same values there
_VIEWING = frozenset({"unsqueeze", "squeeze", "view", "reshape", "expand", "expand_as", "view_as", "transpose",
                      "permute", "contiguous", "flatten", "unflatten", "to", "float", "half", "bfloat16", "double",
                      "type_as", "type", "clone", "detach"})


def _rereadable(node: ast.expr) -> bool:
    """``node`` is built of names, constants, index slices and the viewing and casting
    methods of :data:`_VIEWING` only, and is no bare name (those the caller reads as such): the
    guard may read it again before the region, cheaply and with the same values.  Arithmetic
    (`mask * self.penalty`, `slope * distance`) is not: it would be computed twice, and a mask
    always given (no `is not None` around it) would put a tensor test where the original had
    none (fx.symbolic_trace refuses it: tests/patches)."""
    if isinstance(node, (ast.Name, ast.Constant)):
        return False
    for part in ast_walk(node):
        if isinstance(part, ast.Subscript):
            # basic indexing only (a view): slices, numbers, None and `...`; an index that may
            # be a tensor (`table[self.indices[:, :, 0]]`) gathers a copy on every read
            items = part.slice.elts if isinstance(part.slice, ast.Tuple) else [part.slice]
            if not all(isinstance(i, ast.Slice) or (isinstance(i, ast.Constant) and not isinstance(i.value, str))
                       or (isinstance(i, ast.UnaryOp) and isinstance(i.operand, ast.Constant)) for i in items):
                return False
        elif isinstance(part, ast.Call):
            if not (isinstance(part.func, ast.Attribute) and part.func.attr in _VIEWING) \
                    or any(isinstance(a, ast.Starred) for a in part.args) or any(kw.arg is None for kw in part.keywords):
                return False
        elif not isinstance(part, (ast.Name, ast.Attribute, ast.Constant, ast.Subscript, ast.Slice, ast.Tuple,
                                   ast.UnaryOp, ast.expr_context, ast.unaryop, ast.keyword)):
            return False
    return True


_MASK_ARITHMETIC = (ast.Add, ast.Sub, ast.Mult, ast.Div)  # (no bit operators: `m & n` of bools is bool)


def _rereadable_arithmetic(node: ast.expr) -> bool:
    """``node`` is arithmetic (``+ - * /``, a negation) whose operands are names, attributes,
    numbers or views and casts of names (:func:`_rereadable`): boltz's ``(1 -
    mask[:, None, None].float()) * -self.inf``.  Its values are unknown to the file (a
    factor read at run time may be 1e6 or 1e9), like a name's, and reading it again computes
    a mask-sized product once more, with no call whose effects or randomness could differ
    between the two reads."""
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return _arithmetic_operand(node.operand)
    return isinstance(node, ast.BinOp) and isinstance(node.op, _MASK_ARITHMETIC) \
        and _arithmetic_operand(node.left) and _arithmetic_operand(node.right)


def _arithmetic_operand(node: ast.expr) -> bool:
    if isinstance(node, ast.Constant):
        return isinstance(node.value, (int, float)) and not isinstance(node.value, bool)
    return (isinstance(node, (ast.Name, ast.Attribute)) and dotted_name(node) is not None) or _rereadable(node) \
        or _rereadable_arithmetic(node)


def _negated_penalty(node: ast.expr) -> bool:
    """``node`` multiplies by a negated name or attribute (``(1 - mask) * -self.inf``): the
    file lowers the masked scores by a magnitude it reads at run time (a constructor argument,
    1e6 or 1e9), so the mask may hide every key of a row, even where it is always given.  An
    arithmetic bias with no such penalty (ALiBi's ``self.slope * distance``) keeps no row test:
    one the original lacks, which fx.symbolic_trace refuses (rafix50)."""
    return isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult) and any(
        isinstance(side, ast.UnaryOp) and isinstance(side.op, ast.USub)
        and isinstance(side.operand, (ast.Name, ast.Attribute)) for side in (node.left, node.right))


def _blind_rows_term(torch: str, mask: str, condition: str | None, keeps_bool: bool = False) -> str:
    """The guard term for an additive mask ``mask`` (a name, or an expression of names that
    is cheap to read again: :func:`_rereadable`): it is not floating point, or gradients are
    wanted, the code runs eagerly (:func:`_eager_training`) and some query row has every key
    at :data:`HIDDEN_ROW` or below (its largest entry is; one reduction and one device sync
    per call, only then: a -1e4 or -1e9 mask as much as a ``finfo.min`` or -inf one).  The
    code *adds* the mask to the scores, so a bool (or integer) mask adds 1 where it is True;
    SDPA would read a bool ``attn_mask`` as keep/drop instead, so such a mask
    takes the original path (a dtype test: no sync, and no graph break when compiled).  With
    ``keeps_bool`` the code fills the scores where a bool mask is False instead of adding it
    (a dtype choice, :meth:`_Attention._dtype_mask_if`): a bool mask is SDPA's keep-mask then."""
    term = (f"not {mask}.is_floating_point() or ({_eager_training(torch)} and "
            f"{mask}.amax(-1).min() <= {HIDDEN_ROW})")
    if keeps_bool:
        term = f"{mask}.dtype != {torch}.bool and ({term})"
    return f"{condition} and ({term})" if condition else term


def _layout_copy(stmt: ast.stmt, step_stored: set) -> bool:
    """``y = x.contiguous()`` of a value an attention step stored: the same values in another
    memory layout (the flow reads it as ``y = x``), so the fused path, which does not compute
    the scores, drops it; the original path keeps it."""
    value = stmt.value if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 else None
    return (isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute) and value.func.attr == "contiguous"
            and not value.args and not value.keywords and isinstance(stmt.targets[0], ast.Name)
            and isinstance(value.func.value, ast.Name) and value.func.value.id in step_stored)


def _step_if_detail(inner: ast.stmt, step_stored: set, read_before: set, has_else: bool) -> str:
    """Why a statement in the ``if`` around a mask step is neither a step nor one the fused path
    can run before the call (:meth:`_Attention._check_step_if`), for the decline's reason."""
    where = f"the statement at line {inner.lineno}"
    assigned = sorted(stored_names(inner) & step_stored)
    if assigned:
        return (f"{where} assigns `{assigned[0]}`, a value of the attention, in a way that is no step of it "
                "(the fused call never forms that value)")
    changed = sorted(_changed(inner) & read_before)
    if changed:
        return f"{where} changes `{changed[0]}` after an attention step read it"
    if not _plain_block(inner):
        return f"{where} is not a plain assignment, expression or loop"
    if has_else:
        return "the if has an else branch that does not end as its body does"
    return f"{where} reads values of the attention (not only their shape or dtype)"


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
        # q k^T * tau + delta (de-stationary attention): the factor (sp) scales the product
        # only, not the bias or fill after it.  It folds into the query where it is the same
        # for every key (a number goes into ``scale=``; a tensor, into q; one whose shape the code
        # does not fix, under a test of its last dimension: :meth:`_product_factor_terms`), and
        # a bias after it is scaled by the later steps alone (:meth:`_scale`'s ``after_product``).
        self.product_factor = "sp" in self.roles and ("b0" in self.roles or "fs" in self.roles)
        self.dtype_mask_ifs: dict[int, dict | None] = {}  # id of an if -> its reading by _dtype_mask_if
        self.dtype_choices: dict[str, dict] = {}  # a fill or add step -> the dtype choice it is one branch of
        self._names = None
        self.made_texts: dict[int, str] = {}  # id of an expression built from the caller's text -> that text
        self.made_nodes: list[ast.AST] = []  # (the expressions made_texts holds: alive while it is, _made)
        # (line, col, end col) of a name in the inlined attention helper -> its name in the caller
        self.helper_renames: dict[tuple[int, int, int], str] = {}
        self.fallback_try: ast.Try | None = None  # `try: x = p @ v` / `except: x = p.half() @ v` (_dtype_fallback)
        self.off_roles: dict[str, str] = {}  # add steps whose if the guard sends to the original (_guarded_off)
        self.branched_factors: set[str] = set()  # scale steps in an if/elif choice the guard sends away (_branched_factor)
        self.scale_definitions: dict[str, ast.expr] = {}  # a divisor named inside the scale's if -> its value

    # ------------------------------------------------------------------ helpers
    def _at(self, span: Span | None, what: str = "an argument") -> ast.expr:
        """The expression the code writes at ``span`` (an argument the graph node recorded)."""
        expr = self.index.expr_at(span) if span is not None else None
        if expr is None:
            raise Skip(f"{what} of the attention could not be read")
        if self.helper_renames:
            for node in ast_walk(expr):  # (read in the caller's names; the text by _segment)
                if isinstance(node, ast.Name):
                    node.id = self.helper_renames.get((node.lineno, node.col_offset, node.end_col_offset), node.id)
        return expr

    def _spanned(self, span: Span | None) -> tuple[str, ast.expr]:
        return self._segment(span) if span is not None else "", self._at(span)

    def _renames_in(self, span: Span) -> list:
        """The renamed names of the inlined helper (:meth:`_inline_attention_helper`) written
        within ``span``: ((line, col, end col), new name), last first."""
        return sorted(((key, new) for key, new in self.helper_renames.items()
                       if (key[0], key[1]) >= (span[0], span[1]) and (key[0], key[2]) <= (span[2], span[3])),
                      reverse=True)

    def _segment(self, span: Span) -> str:
        """The text at ``span``, with the inlined helper's renamed names in their new spelling
        (the helper's lines are ASCII: columns are characters)."""
        text = self.index.segment(span)
        if not self.helper_renames:
            return text
        lines = self.index.lines
        for (line, start, end), new in self._renames_in(span):
            offset = start - span[1] if line == span[0] else \
                len(lines[span[0] - 1]) - span[1] + 1 + sum(len(lines[i - 1]) + 1 for i in range(span[0] + 1, line)) \
                + start
            text = text[:offset] + new + text[offset + end - start:]
        return text

    def _view(self, role: str):
        """The canonical reading (args, kwargs, arg spans, kwarg spans) of a step."""
        node = self.roles[role]
        view = node.view
        if view is None:
            return node.args, node.kwargs, node.arg_spans, node.kwarg_spans
        return view.args, view.kwargs, view.arg_spans, view.kwarg_spans

    @property
    def names(self):
        if self._names is None:
            self._names = collect_names(self.index.tree)
        return self._names

    def _made(self, node: ast.AST, text: str) -> None:
        """Record ``text`` as the text of ``node``, an expression built here (not in the source),
        and keep ``node`` alive with the instance: ``made_texts`` is keyed by ``id``, which a
        freed node's successor would take over -- a new node then read as a stale text (a fix
        that declined or not depending on what the process allocated before)."""
        self.made_texts[id(node)] = text
        self.made_nodes.append(node)

    def _text(self, node: ast.AST) -> str:
        made = self.made_texts.get(id(node)) if self.made_texts else None
        return made if made is not None else self._segment(span_of(node))

    def _stmt_text(self, stmt: ast.stmt, replace: tuple[Span, str] | list | None = None) -> str:
        """The statement's source, dedented to column 0 (optionally with spans replaced: one
        (span, text) or a list of them, none inside another)."""
        lines = self.index.lines[stmt.lineno - 1:stmt.end_lineno]
        first_col = self.index.char_col(stmt.lineno, stmt.col_offset)
        end_col = self.index.char_col(stmt.end_lineno, stmt.end_col_offset)
        swaps = replace if isinstance(replace, list) else [replace] if replace is not None else []
        if self.helper_renames:
            # the inlined helper's renamed names, outside the spans replaced (whose texts have them)
            swaps = swaps + [((line, start, line, end), new) for (line, start, end), new in self._renames_in(span_of(stmt))
                             if not any((sp[0], sp[1]) <= (line, start) and (line, end) <= (sp[2], sp[3])
                                        for sp, _ in swaps)]
        for (l0, c0, l1, c1), new in sorted(swaps, reverse=True):
            c0, c1 = self.index.char_col(l0, c0), self.index.char_col(l1, c1)
            r0, r1 = l0 - stmt.lineno, l1 - stmt.lineno
            head, tail = lines[r0][:c0], lines[r1][c1:]
            if (r0 > 0 or c0 > first_col + 1) and _grouping_parentheses(head, tail) and _is_call(new):
                # ``(attn @ v).transpose(1, 2)`` becomes ``scaled_dot_product_attention(...).transpose(1,
                # 2)``: the parentheses grouped the product, a call needs none
                head, tail, c1 = head[:-1], tail[1:], c1 + 1
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

    def _unread_step_store(self, target: ast.expr, stmt: ast.stmt, region: list[ast.stmt], step_stmts: set) -> bool:
        """``--unsafe-fixes``: may a step that stores its own value in an attribute
        (``self.attn = torch.softmax(scores, -1)``, later steps reading ``self.attn``) run on the
        fused path as ``self.attn = None``?  As unread_store's policy for a store after the steps
        (weights.py): the attribute of a plain name, stored on every path of the function (under
        no ``try``/``with``/loop, and under an ``if`` only where its other arm stores the same
        attribute too: a flag choosing when to keep the values is the safe form), and no file of
        the run or the project around it reads it -- the steps' own reads of it in this region
        (dropped on the fused path) aside; any other read in this file, later in the function or
        in another method, counts."""
        run = current_run()
        if run is None or not run.unsafe_fixes or not isinstance(target, ast.Attribute) \
                or not isinstance(target.value, ast.Name) or not isinstance(stmt, (ast.Assign, ast.AnnAssign)):
            return False
        func = self._function(region[0])
        if func is None or self._function(stmt) is not func:
            return False
        text = self._text(target)
        parents = _parents(func)
        child, up = stmt, parents.get(stmt)
        while up is not None and up is not func:
            if not isinstance(up, ast.If):
                return False
            other = up.orelse if child in up.body else up.body if child in up.orelse else None
            if other is None or not any((t := _stored_attribute(o)) is not None and isinstance(t, ast.Attribute)
                                        and self._text(t) == text for o in other):
                return False  # (an if choosing whether the values are kept: a flag)
            child, up = up, parents.get(up)
        if up is not func:
            return False
        base, name = target.value.id, target.attr
        own: set[int] = set()  # the steps' reads of the attribute, which the fused path drops
        for top in region:
            for inner in ast_walk(top):
                if isinstance(inner, (ast.Assign, ast.AnnAssign, ast.AugAssign, ast.Expr, ast.Return)) \
                        and span_of(inner) in step_stmts:
                    own.update(id(n) for n in ast_walk(inner) if isinstance(n, ast.Attribute) and n.attr == name
                               and isinstance(n.ctx, ast.Load) and isinstance(n.value, ast.Name) and n.value.id == base)
        return not run.reads_attribute_besides(name, self.index.tree, own)

    def _stored_skip(self, target: ast.expr, stmt: ast.stmt, step_stored: set[str] = frozenset()) -> Skip:
        """Why attention whose values ``stmt`` stores in ``target`` (an attribute or item) on every
        call is left alone.  An item of a value of the attention itself (nemo's `scores[pad] =
        -10000.0`) is no store for outside code but a change to that value the fused call has no
        argument for: said so, with the spelling it does take."""
        base = target
        while isinstance(base, ast.Subscript):
            base = base.value
        if isinstance(target, ast.Subscript) and isinstance(base, ast.Name) and base.id in step_stored:
            return Skip(f"line {stmt.lineno} changes `{base.id}`, a value of the attention, by an index assignment "
                        f"(`{self._text(target)} = ...`), which the fused call has no argument for (a "
                        f"`{base.id} = {base.id}.masked_fill(<bool mask>, <value>)` it can take as a mask)")
        return Skip(f"the attention's values are stored in `{self._text(target)}` at line {stmt.lineno} on every "
                    "call, for code outside the call to read (a visualization hook): only the module's user can "
                    "say they are not wanted, so the fused path is left to a hand edit")

    def _check_flagged_store(self, stmt: ast.If, step_stored: set[str]) -> None:
        """``if self.vis: self.attn_map = attn``: a store of the attention's values for code
        outside the call, under a flag the guard sends to the original path -- exact, and the
        fused path runs wherever the flag is off.  Where the file turns the flag on for every
        instance it builds (the attribute only ever the literal True, or a constructor parameter
        every construction in the file passes True: :meth:`.InitNumbers.flag_always_on`), the
        values are stored on every call as the model is built, and the patch's fused path would
        never run: declined as a store on every call is."""
        test = stmt.test
        if not (isinstance(test, ast.Attribute) and isinstance(test.value, ast.Name) and test.value.id == "self"):
            return
        target = next((t for inner in stmt.body for t in [_stored_attribute(inner)]
                       if t is not None and _loads(inner) & step_stored), None)
        if target is None:
            return
        cls = self._class()
        if cls is None:
            return
        numbers = getattr(self.planner, "init_numbers", None)
        if numbers is None:
            numbers = self.planner.init_numbers = InitNumbers(self.index.tree, self.names)
        if numbers.flag_always_on(cls, test.attr, self.index.text):
            inner = next(i for i in stmt.body if _stored_attribute(i) is target)
            raise Skip(f"the attention's values are stored in `{self._text(target)}` at line {inner.lineno} under "
                       f"`self.{test.attr}`, which every instance the file builds sets to True: stored on every "
                       "call as the model is built, so the fused path would never run")

    def _top(self, node) -> tuple[int, list[ast.stmt]]:
        """Index in the region's block of the statement holding ``node``, and the chain of
        enclosing statements from that one down to the node's own."""
        if self.handed is not None and node.stmt in self.handed.spans:
            # a scores step of the caller: computed where the helper first reads the scores
            return self.handed.entry, [self.block[self.handed.entry]]
        info = self.index.stmt(node.stmt)
        chain = []
        while info is not None and info.block is not self.block:
            owner = info.owner
            if owner is not None and owner is self.fallback_try and info.field == "body":
                # the context product in a try whose handler computes it again with the
                # probabilities cast: the try statement is the step's (_dtype_fallback)
                info = self.index.stmt(span_of(owner))
                continue
            if self.block_bias is not None and self.block_bias.get("loop") is owner and info.field == "body":
                # the biases added in a loop (_loop_bias): the loop is the step's statement
                info = self.index.stmt(span_of(owner))
                continue
            if not isinstance(owner, ast.If) or info.field not in ("body", "orelse"):
                raise Skip(f"the step at line {node.line} is inside a loop, with, try or else block")
            # A step in the tail both branches share (``attn = self.softmax(attn)`` ending the
            # if and the else) runs whichever branch is taken: it counts as after the if.
            tail = self._common_tail(owner)
            if (info.field == "body" and info.index < len(owner.body) - tail) or (info.field == "orelse" and not tail):
                chain.append(info.stmt)
            info = self.index.stmt(span_of(owner))
        if info is None:
            raise Skip(f"the step at line {node.line} is not in the block of the context")
        chain.append(info.stmt)
        chain.reverse()
        if len(chain) == 3 and isinstance(chain[1], ast.If) and isinstance(chain[1].test, ast.Compare) \
                and self._dtype_mask_if(chain[1]) is not None:
            # `if m.dtype == torch.bool: s = s.masked_fill(~m, -inf) else: s = s + m` inside the
            # mask's own if: one mask argument as SDPA reads it (_dtype_mask_if), so the step
            # counts as in the outer if alone
            del chain[1]
        elif len(chain) == 3 and self._else_to_original(chain[1]):
            # `if not self.tpu: s = s.masked_fill(m, -inf) else: <the fill in another layout>`
            # inside the mask's own if: the guard sends the else to the original
            # (_check_step_if), so the step counts as in the outer if alone
            del chain[1]
        choice = self.choice_ifs.get(node.stmt)
        if choice is not None:
            # `s = (s + bias) if flag else s`, read as `if flag: s = s + bias` (_choice_steps)
            if len(chain) != 1:
                raise Skip(f"the conditional expression at line {node.line} is inside an if-statement")
            chain.insert(0, choice)
        return info.index, chain

    def _else_to_original(self, stmt: ast.stmt) -> bool:
        """Is ``stmt`` an ``if`` whose body is attention steps alone and whose ``else`` holds
        none (lightseq's `if not self.tpu: <fill> else: <transpose, fill, transpose>`)?  With a
        test that only reads names and attributes, the guard can send the else to the original
        before the attention begins: the fused path is then the body, whose steps the fused call
        takes (:meth:`_check_step_if` records the guard's term)."""
        if not (isinstance(stmt, ast.If) and stmt.orelse and stmt.body and _plain_test(stmt.test)):
            return False
        step_stmts = {n.stmt for n in self.nodes}
        return all(span_of(inner) in step_stmts for inner in stmt.body) and not any(
            isinstance(inner, ast.stmt) and span_of(inner) in step_stmts
            for branch in stmt.orelse for inner in ast_walk(branch))

    def _context_if(self, last) -> bool:
        """Is the context product's statement (``last``, its index entry) the whole of one arm
        of an if / else whose other arm holds no attention step (fairseq's beam-folded ``einsum``
        under ``if self.encoder_decoder_attention and bsz != kv_bsz:``, ``bmm`` in the else;
        gpt_bigcode's MQA ``bmm`` or MHA ``matmul`` on ``self.multi_query``)?  The other arm
        computes the context another way, from the same probabilities: the if is then the
        region's last statement, taken as a branch if (the guard sends the other arm's case to
        the original, as for the scores' own if / else) and the fused path assigns what the
        product's arm assigns.  Only for a test that reads names and attributes (the guard
        reads it again before the attention; what assigns them there is checked as for any
        branch if) and an arm that is the product's statement alone, a plain assignment."""
        owner = last.owner
        if not (isinstance(owner, ast.If) and owner.orelse and last.field in ("body", "orelse")
                and _plain_test(owner.test) and isinstance(last.stmt, (ast.Assign, ast.AnnAssign))):
            return False
        arm, other = (owner.body, owner.orelse) if last.field == "body" else (owner.orelse, owner.body)
        if len(arm) != 1 or arm[0] is not last.stmt or self._common_tail(owner):
            return False
        # the product alone in its arm: an arm that also computes the scores or the softmax is a
        # whole attention of its own (one per branch of `if mask is not None:`), fixed as such --
        # taking the if here would send the other branch's own attention to the original
        arm_stmt = span_of(last.stmt)
        if any(node.stmt == arm_stmt for role, node in zip(self.match.roles, self.match.nodes) if role != "c"):
            return False
        step_stmts = {n.stmt for n in self.match.nodes}
        return not any(isinstance(inner, ast.stmt) and span_of(inner) in step_stmts
                       for stmt in other for inner in ast_walk(stmt))

    def _context_elif(self, last) -> tuple | None:
        """The context product's statement (``last``) the whole body of an ``elif`` arm, each if
        of the chain the only statement of the previous one's else (mixste's ``if self.comb ==
        True: <channel attention's product> elif self.comb == False: x = (attn @ v)...``), no
        arm but its own holding a step of this attention: the chain's first if, in its block,
        is then the region's last statement, taken as an if / elif chain with the steps in one
        arm (:func:`_elif_arm`: the guard sends every other arm to the original, reading the
        tests before the region).  (The first if's index entry and the length of the chain
        down to the product's statement; None otherwise.)"""
        owner = last.owner
        if not (isinstance(owner, ast.If) and last.field == "body" and len(owner.body) == 1
                and owner.body[0] is last.stmt and isinstance(last.stmt, (ast.Assign, ast.AnnAssign))
                and _plain_test(owner.test)):
            return None
        ifs = [owner]
        info = self.index.stmt(span_of(owner))
        while info is not None and isinstance(info.owner, ast.If) and info.field == "orelse" \
                and len(info.owner.orelse) == 1 and _plain_test(info.owner.test):
            ifs.insert(0, info.owner)
            info = self.index.stmt(span_of(info.owner))
        if len(ifs) < 2 or info is None:
            return None
        # the context's arm tests what the scores' arm tests (review61: an arm on another test,
        # `elif mode != "tokens"` beside the scores' `elif mode == "tokens"`, makes a fused path
        # that never runs)
        scores = self.index.stmt(self.roles["s0"].stmt) if "s0" in self.roles else None
        if scores is not None and isinstance(scores.owner, ast.If) and scores.field == "body" \
                and ast.dump(scores.owner.test) != ast.dump(owner.test):
            return None
        # no step of this attention in the chain but the product (its other arms compute
        # another attention's context, or none)
        others = {n.stmt for role, n in zip(self.match.roles, self.match.nodes) if role != "c"}
        if any(isinstance(inner, ast.stmt) and span_of(inner) in others for inner in ast_walk(ifs[0])):
            return None
        return info, len(ifs) + 1

    def _original_test(self, test: ast.expr, at_else: bool) -> str:
        """The guard's term (after ``and``) for an inner if that goes to the original where its
        test holds, or (``at_else``) where it fails: ``if not self.tpu:`` gives ``self.tpu``."""
        if not at_else:
            return _guard_term(self._text(test), test)
        if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
            return _guard_term(self._text(test.operand), test.operand)
        return f"not {_atom(self._text(test), test)}"

    def _dtype_mask_if(self, stmt: ast.If) -> dict | None:
        """An if / else that applies a mask ``m`` as ``scaled_dot_product_attention`` reads its
        ``attn_mask`` (attzoo's helper, baby-llm's eager backend): ``if m.dtype == torch.bool:
        s = s.masked_fill(~m, -inf)`` (-inf where m is False: SDPA's boolean keep-mask) ``else:
        s = s + m`` (a float mask, added as it is).  Each branch is that one statement on the same
        scores name ``s``; the test may be ``is`` / ``!=`` (branches swapped), the fill's mask
        ``~m``, ``m == 0``, ``m.logical_not()``, ``torch.logical_not(m)`` (keep m) or ``m`` itself
        (keep ``~m``: the fused call inverts a boolean m).  Only a fill of -inf: a finite one
        leaves a row m hides entirely uniform where the fused call's boolean mask leaves it NaN.
        Returns {"mask": m, "keep": text of the mask SDPA takes, "stmts": the two statements}
        or None; the caller checks that one of them is a matched step and that m is not
        assigned in the attention."""
        cached = self.dtype_mask_ifs.get(id(stmt))
        if cached is not None or id(stmt) in self.dtype_mask_ifs:
            return cached
        self.dtype_mask_ifs[id(stmt)] = found = self._read_dtype_mask_if(stmt)
        return found

    def _read_dtype_mask_if(self, stmt: ast.If) -> dict | None:
        test = stmt.test
        if not (len(test.ops) == 1 and isinstance(test.ops[0], (ast.Eq, ast.Is, ast.NotEq, ast.IsNot))
                and isinstance(test.left, ast.Attribute) and test.left.attr == "dtype"
                and isinstance(test.left.value, ast.Name) and len(stmt.body) == 1 and len(stmt.orelse) == 1
                and self.names.resolve(test.comparators[0]) == "torch.bool"):
            return None
        mask = test.left.value.id
        fill, add = (stmt.body[0], stmt.orelse[0]) if isinstance(test.ops[0], (ast.Eq, ast.Is)) \
            else (stmt.orelse[0], stmt.body[0])
        # the float branch: `s = s + m`, `s = m + s` or `s += m`
        if isinstance(add, ast.AugAssign) and isinstance(add.op, ast.Add) and isinstance(add.target, ast.Name):
            scores, operands = add.target.id, [add.value]
        elif isinstance(add, ast.Assign) and len(add.targets) == 1 and isinstance(add.targets[0], ast.Name) \
                and isinstance(add.value, ast.BinOp) and isinstance(add.value.op, ast.Add):
            scores = add.targets[0].id
            operands = [add.value.left, add.value.right]
            names = [o.id if isinstance(o, ast.Name) else None for o in operands]
            if sorted(names, key=str) != sorted([scores, mask], key=str) or scores == mask:
                return None
            operands = [o for o in operands if o.id == mask]
        else:
            return None
        if not (len(operands) == 1 and isinstance(operands[0], ast.Name) and operands[0].id == mask):
            return None
        # the boolean branch: `s = s.masked_fill(c, -inf)` or `s.masked_fill_(c, -inf)`
        if isinstance(fill, ast.Assign) and len(fill.targets) == 1 and isinstance(fill.targets[0], ast.Name) \
                and fill.targets[0].id == scores:
            call, method = fill.value, "masked_fill"
        elif isinstance(fill, ast.Expr):
            call, method = fill.value, "masked_fill_"
        else:
            return None
        if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute) and call.func.attr == method
                and isinstance(call.func.value, ast.Name) and call.func.value.id == scores
                and len(call.args) == 2 and not call.keywords and fill_value(call.args[1]) == "inf"):
            return None
        cond = call.args[0]

        def is_mask(expr) -> bool:
            return isinstance(expr, ast.Name) and expr.id == mask

        bool_text = self._text(test.comparators[0])
        if is_mask(cond):
            keep = f"{mask}.logical_not() if {mask}.dtype == {bool_text} else {mask}"
            hidden = mask
        elif (isinstance(cond, ast.UnaryOp) and isinstance(cond.op, ast.Invert) and is_mask(cond.operand)) \
                or (isinstance(cond, ast.Compare) and len(cond.ops) == 1 and isinstance(cond.ops[0], ast.Eq)
                    and is_mask(cond.left) and isinstance(cond.comparators[0], ast.Constant)
                    and cond.comparators[0].value is not None and cond.comparators[0].value == 0) \
                or (isinstance(cond, ast.Call) and not cond.keywords and isinstance(cond.func, ast.Attribute)
                    and cond.func.attr == "logical_not"
                    and ((not cond.args and is_mask(cond.func.value))
                         or (len(cond.args) == 1 and is_mask(cond.args[0])
                             and self.names.resolve(cond.func) == "torch.logical_not"))):
            keep = mask
            hidden = f"{mask}.logical_not()"
        else:
            return None
        # beside another part of the mask (a causal fill, a bias), a boolean m goes in as the
        # float mask the fill makes of it, which the parts' sum or where() can take
        made = f"{self._torch()}.zeros_like({mask}, dtype={self._q_dtype()}).masked_fill({hidden}, float('-inf'))"
        return {"mask": mask, "keep": keep, "stmts": (span_of(fill), span_of(add)),
                "float": f"({made} if {mask}.dtype == {bool_text} else {mask})"}

    def _common_tail(self, stmt: ast.If) -> int:
        """How many statements end both branches of ``stmt`` identically when the else branch
        is exactly those statements (0 otherwise)."""
        tail = len(stmt.orelse)
        if not tail or tail >= len(stmt.body):
            return 0
        same = all(self._stmt_text(a) == self._stmt_text(b) for a, b in zip(stmt.body[-tail:], stmt.orelse))
        return tail if same else 0

    # ------------------------------------------------------------------ the plan
    def plan(self, edits: Edits, regions: list[Span]) -> None:
        nodes = self.match.nodes
        if any(n.span is None or n.stmt is None for n in nodes):
            raise Skip("the matched code could not be located")
        if "sd" in self.roles:
            # (rules/ADP010-sdpa.toml, the last alternative: `s / a / b`, a cosine attention's
            # norms then a per-head temperature) _scale plans one divisor; the second is not folded
            raise Skip("the scores are divided twice; only one divisor is folded into the fused call")
        # (structure/ranks._contracted: attention only at the rank its product contracts the
        # normalised axis; the fused call is taken only where q, k and v have that rank, checked
        # at run time by the guard: _rank_terms)
        assumed = {n.assumed_rank for n in nodes if n.assumed_rank is not None}
        if len(assumed) > 1:
            raise Skip(RANK_SKIP)
        self.assumed_rank: int | None = assumed.pop() if assumed else None
        self.block_bias: dict | None = None  # a bias added into a block of the scores here (_block_bias)
        for role in ADD_STEPS:
            node = self.roles.get(role)
            if node is not None and _block_add(node) and node.func == self.roles["c"].func:
                self._block_bias(node, role)
            elif node is not None and self.block_bias is None and node.func == self.roles["c"].func \
                    and isinstance(getattr(self.index.stmt(node.stmt), "owner", None), ast.For):
                self._loop_bias(node, role)
        self._check_moved_scores(nodes)
        self.helper_steps: dict[Span, list[ast.stmt]] = {}  # caller statement -> the helper's own statements
        self.helper_adds: list[tuple[str, ast.expr, ast.expr | None]] = []  # (text, operand, test): _inline_probs_helper
        self.fill_helper: dict | None = None  # the fill a helper makes, as a mask of a stand-in: _inline_fill_helper
        self.runtime_fill: tuple[str, ast.expr | None] | None = None  # (value, test): a fill checked by the guard
        self.helper_args: dict[str, tuple[str, ast.expr]] = {}  # the probabilities helper's parameter -> the call's argument
        self.helper_call: ast.stmt | None = None  # the caller's statement calling that helper
        self.helper_inlined = False  # that helper computes the scores too (_inline_attention_helper)
        self.helper_conditions: dict[str, ast.expr] = {}  # its scale step's role -> the setting's test (_setting_scales)
        self.helper_exports: set[str] = set()  # names it hands back beside them, bound on the fused path too
        self.helper_made: set[str] = set()  # names its statements bind (on the fused path, in the caller)
        self.helper_def = None  # the inlined helper's def and its parameters the call hands names (_helper_value)
        self.helper_params: list[str] = []
        self.helper_step_stored: set[str] = set()  # names its steps bind (never on the fused path)
        self.inlined_method: tuple[str, str] | None = None  # (class, method) of such a helper
        self.chain_methods: list[tuple[str, str]] = []  # (class, method) of a chain of them (_inline_helper_chain)
        self.chain_settings: list[ast.expr] = []  # the settings under which its outer methods change the scores
        # (attr, value, owner, local or None, call) picking it: _dispatched_calls, _picked_term
        self.dispatch_setting: tuple | None = None
        self.helper_call_arm = False  # that statement is in an arm of an if of the region (_other_arm_call)
        self.helper_roles: set[str] = set()  # the steps in that helper
        self.helper_defs: list = []  # the functions holding steps outside the caller (_inline_helper)
        self.grouped_cat: ast.expr | None = None  # the m2 step's `torch.cat(groups, dim=d)` (_grouped_split)
        self.list_stand_ins: list[str] = []  # ModuleLists whose modules are handed a stand-in (_grouped_split)
        self.stand_ins: list[tuple[str, str]] = []  # (module, add step) handed a stand-in of the scores
        self.stand_in_types: dict[str, list[str]] = {}  # a module handed in as a parameter -> the classes that may take it
        self.choice_ifs: dict[Span, ast.If] = {}  # `s = step(s) if c else s` -> the `if c: s = step(s)` it is
        self.mask_choices: dict[str, ast.expr] = {}  # a bias name -> the mask it is as SDPA reads it (_sdpa_mask_choice)
        # (the step's if, an if in it whose body changes the scores otherwise): sent to the
        # original by the guard (_check_step_if)
        self.original_ifs: list[tuple[ast.If, ast.If, bool]] = []  # (..., the original runs at its else)
        nodes = self._choice_steps(nodes)
        self.handed: _Handed | None = None  # scores a caller computes and hands to the helper (_handed_scores)
        if len({n.func for n in nodes}) > 1:
            try:
                self.handed = self._handed_scores(nodes)
                if self.handed is None:
                    nodes = self._inline_helper(nodes)
            except Skip:
                # (espnet's `self.attn = torch.softmax(scores, dim=-1)` in the helper the scores are
                # handed to: what keeps it declined whatever the split is the values stored for
                # code outside the call, so the decline says that)
                context = self.roles["c"].stmt
                for node in nodes:
                    info = self.index.stmt(node.stmt) if node.stmt != context else None
                    target = _stored_attribute(info.stmt) if info is not None else None
                    if target is not None:
                        raise self._stored_skip(target, info.stmt) from None
                raise
        self.nodes = nodes
        self._check_containers()
        # (All in one helper -- Whisper's qkv_attention, an eager_attention_forward function --
        # is rewritten there: the spans are the helper's, and what the region computes is
        # checked against the helper's own code after it.)
        last = self.index.stmt(self.roles["c"].stmt)
        if last is None:
            raise Skip("the context statement could not be located")
        if isinstance(last.owner, ast.ExceptHandler):
            # the product read in the handler of a dtype fallback: the same product in the try
            # body, which runs first (and alone, on the fused path)
            last = self._try_twin(last)
        if isinstance(last.owner, ast.Try) and last.field == "body" and _dtype_fallback(last.owner):
            self.fallback_try = last.owner
            last = self.index.stmt(span_of(last.owner))
            if last is None:
                raise Skip("the context statement could not be located")
        self.block, hi = last.block, last.index
        owner = last.owner
        if key_cats.concatenated_keys(self.roles["s0"]):
            raise Skip("the scores are products of q with two key blocks concatenated along the key axis "
                       "(structure/key_cats.py): the fused call would need the keys, the values and the bias "
                       "concatenated; not written")
        if isinstance(owner, ast.If) and any(
            "scaled_dot_product_attention" in self._text(s) for s in (owner.orelse if last.field == "body" else owner.body)
            if not isinstance(s, (ast.If, ast.For, ast.While, ast.With, ast.Try))
        ):
            raise Skip("this is already the eager fallback of a scaled_dot_product_attention call")
        self.context_arm: ast.stmt | None = None  # the context product alone in an arm of an if (_context_if)
        context_depth = 2  # the ifs down to the context's arm, and the product's statement
        if self._context_if(last):
            self.context_arm = last.stmt
            last = self.index.stmt(span_of(owner))
            if last is None:
                raise Skip("the context statement could not be located")
            self.block, hi = last.block, last.index
        elif (elif_top := self._context_elif(last)) is not None:
            self.context_arm = last.stmt
            last, context_depth = elif_top
            self.block, hi = last.block, last.index

        tops: dict[str, tuple[int, list[ast.stmt]]] = {role: self._top(node) for role, node in self.roles.items()}
        lo = min(i for i, _ in tops.values())
        if max(i for i, _ in tops.values()) > hi:
            raise Skip("the attention steps are not in order in one block")
        if len(tops["c"][1]) != (1 if self.context_arm is None else context_depth):
            raise Skip("the context matmul is inside an if-statement")
        region = self.block[lo:hi + 1]
        # (`del q, k` between the steps unbinds names, changing no value: the fused path runs it
        # after the call, which reads them; its names are no value the attention computes)
        deletes = [s for s in region if isinstance(s, ast.Delete) and all(isinstance(t, ast.Name) for t in s.targets)]
        all_stored = set().union(*(stored_names(s) for s in region if not any(s is d for d in deletes)))
        self.region_stored = all_stored
        self.step_region = region  # (_provisional_kept, before kept_names is settled)
        if self.helper_call is not None:
            # The fused call reads the helper's arguments after the region's other statements:
            # none of those from the call on may assign what they read.
            at = next((i for i, s in enumerate(region) if s is self.helper_call), None)
            if at is None and self.helper_call_arm:
                # (in an arm of an if of the region: _other_arm_call; from that if on)
                at = next((i for i, s in enumerate(region) if isinstance(s, ast.If)
                           and any(inner is self.helper_call for inner in ast_walk(s))), None)
            if at is None:
                raise Skip(f"the call of the helper at line {self.helper_call.lineno} is inside an if or a loop")
            scores_arg = self.helper_call.value.args[0] if self.helper_call.value.args and not self.helper_inlined \
                else None
            read = set().union(*(read_names(e) for _, e in self.helper_args.values() if e is not scores_arg))
            clash = read & set().union(*(stored_names(s) for s in region[at:]))
            if clash:
                raise Skip(f"`{sorted(clash)[0]}`, handed to the helper at line {self.helper_call.lineno}, is assigned "
                           "again before the attention ends")
        step_tops = {i for i, _ in tops.values()}
        # Names the attention steps assign (the statements holding matched operations, not the
        # ifs around them, whose other statements are kept on the fused path).
        step_stmts = {n.stmt for n in self.nodes}
        step_stored = {name for s in region for inner in ast_walk(s)
                       if isinstance(inner, ast.stmt) and span_of(inner) in step_stmts for name in stored_names(inner)}
        if self.handed is not None:
            step_stored.add(self.handed.param)  # the scores, as the helper is handed them
        step_stored -= self.helper_exports  # (bound by the inlined helper's statements on the fused path)
        self._check_changed_between(region, step_stmts, step_stored)
        # A step that stores its value on the module itself (deepctr's `self.normalized_att_scores
        # = F.softmax(...)`): the fused path would no longer set the attribute, which code outside
        # the call may read (as a statement storing the probabilities after the steps, below).
        context = self.roles["c"].stmt if "c" in self.roles else None
        self.step_nones: list[str] = []  # --unsafe-fixes: steps storing their value in an attribute no file reads
        for s in region:
            for inner in ast_walk(s):
                if isinstance(inner, ast.stmt) and span_of(inner) in step_stmts and span_of(inner) != context \
                        and (target := _stored_attribute(inner)) is not None:
                    if not self._unread_step_store(target, inner, region, step_stmts):
                        raise self._stored_skip(target, inner)
                    self.step_nones.append(f"{self._text(target)} = None")
        # An if / else with steps in one branch only (the scores computed one way there and
        # another way -- cosine attention, say -- in the other): the fused path is taken only
        # when that branch would run, the other goes to the original.
        branch_ifs: dict[int, str] = {}  # id of the if -> "body" / "orelse", the branch of the steps
        self.elif_arms: dict[int, tuple] = {}  # id of the if -> (its ifs down to the steps' arm, field): "elif"
        for _, chain in tops.values():
            if len(chain) == 2 and chain[0].orelse and not self._common_tail(chain[0]):
                field = "body" if any(inner is chain[1] for inner in chain[0].body) else "orelse"
                if branch_ifs.setdefault(id(chain[0]), field) != field:
                    raise Skip(f"the if at line {chain[0].lineno} holds attention steps in both branches")
            elif (arm := _elif_arm(chain)) is not None:
                # (an if / elif chain with the steps in one arm: _elif_arm)
                if branch_ifs.setdefault(id(chain[0]), "elif") != "elif" \
                        or self.elif_arms.setdefault(id(chain[0]), arm) != arm:
                    raise Skip(f"the if at line {chain[0].lineno} holds attention steps in more than one arm")
        kinds: list[str] = []
        self.kept_methods: list[tuple[str, str]] = []  # (class, method) of a dropped `w = self.m(w, ...)`: _keeps_value
        self.dtype_holders: dict[str, ast.Assign] = {}  # name -> the dropped cast it holds (_dtype_only)
        self.fill_holders: dict[str, ast.expr] = {}  # name -> the fill value of its dropped tensor (_fill_holder)
        self.fill_products: set[str] = set()  # those of fill_holders bound to ones times the value (_zero_filled)
        metadata: dict[int, str] = {}  # region offset -> the statement reading q's and k's dtype, device, shape
        step_if_keeps: dict[int, list[ast.stmt]] = {}
        branch_tests: set[str] = set()  # the guard terms of those ifs
        for offset, stmt in enumerate(region):
            if lo + offset in step_tops:
                if isinstance(stmt, ast.If) and id(stmt) in branch_ifs:
                    if branch_ifs[id(stmt)] == "elif":
                        ifs, field = self.elif_arms[id(stmt)]
                        step_if_keeps[offset] = self._check_branch(ifs[-1], field, step_stored, outer=stmt)
                    else:
                        step_if_keeps[offset] = self._check_branch(stmt, branch_ifs[id(stmt)], step_stored)
                    kinds.append("branch")
                    continue
                if isinstance(stmt, ast.If):
                    step_if_keeps[offset] = self._check_step_if(stmt, step_stored)
                elif self.block_bias is not None and self.block_bias.get("loop") is stmt:
                    self._check_loop_bias(stmt, region, step_stored)
                elif not isinstance(stmt, (ast.Assign, ast.AnnAssign, ast.AugAssign, ast.Expr)) and not (
                    isinstance(stmt, ast.Return) and offset == len(region) - 1
                ) and stmt is not self.fallback_try:
                    raise Skip(f"the statement at line {stmt.lineno} is not a plain assignment")
                kinds.append("step")
            elif isinstance(stmt, ast.Assert) or (isinstance(stmt, ast.If) and _raises_only(stmt)):
                kinds.append("check")
            elif isinstance(stmt, ast.If) and (zero := self._zero_bias_if(stmt, step_stored, region)) is not None:
                metadata[offset] = zero  # the bias chosen there, "no bias" where it was zeros of the scores
                kinds.append("keep")
            elif isinstance(stmt, ast.If):
                touches = (_loads(stmt) | stored_names(stmt)) & step_stored
                if touches and not stored_names(stmt) & step_stored and not any(r in self.roles for r in UPCASTS) \
                        and all(isinstance(n, (*_PLAIN_IF_STATEMENTS, ast.For)) for n in ast_walk(stmt)
                                if isinstance(n, ast.stmt)) \
                        and self._fresh_tensor_stores(stmt) \
                        and (text := self._scores_metadata(stmt, step_stored, statement=True)) is not None:
                    # rlt's `if self.causal: causal_mask = torch.ones((i, j), dtype=torch.bool,
                    # device=sim.device).triu(...)`: an if reading only what the scores are (their
                    # device, dtype, sizes), never their values, and assigning none of them runs
                    # on the fused path too, with those read off q and k (also a mask made as a
                    # new tensor and filled by index in a loop: UniZero's per-sample context mask)
                    metadata[offset] = text
                    kinds.append("keep")
                else:
                    if touches:
                        self._check_flagged_store(stmt, step_stored)
                    kinds.append("guard" if touches else "keep")
            elif (chosen := self._chosen_probabilities(stmt, step_stored)) is not None:
                metadata[offset] = chosen  # the guard term and the fused path's assignment
                kinds.append("choice")
            elif (grouped := self._grouped_split(stmt, region, offset)) is not None:
                metadata[offset] = grouped  # the split of a stand-in of zeros: the groups' biases
                kinds.append("keep")
            elif self._keeps_value(stmt):
                kinds.append("drop")  # `w = Attention.apply_sparse_mask(w, ...)` of a helper returning w
            elif _layout_copy(stmt, step_stored) or self._grouped_back(stmt, step_stored) \
                    or self._alias_for_steps(stmt, step_stored, step_stmts):
                kinds.append("drop")  # `w = w.contiguous()`: the same values, which the fused path does not need
            elif (factor := self._fill_holder(stmt, step_stored, region)) is not None:
                # tzrec's `padding = torch.ones_like(scores) * (-(2**31) + 1)`, read only as the
                # fill of the where step: the fused call takes the fill value alone (_full_like_value)
                self.fill_holders[stmt.targets[0].id] = factor
                if ones_times(stmt.value) is not None:
                    self.fill_products.add(stmt.targets[0].id)
                kinds.append("drop")
            elif self._dtype_only(stmt, region[offset + 1:]):
                # fairseq's `attn_weights = attn_weights_float.type_as(attn_weights)`, read only as
                # the dtype the next cast converts to: the fused path does not compute it (a later
                # read of the name is a read of what only the original computes: guarded below)
                self.dtype_holders[stmt.targets[0].id] = stmt
                kinds.append("drop")
            elif any(stmt is d for d in deletes):
                gone = {t.id for t in stmt.targets}
                if gone & step_stored:
                    raise Skip(f"the statement at line {stmt.lineno} deletes `{sorted(gone & step_stored)[0]}`, "
                               "a value of the attention")
                again = gone & set().union(*(stored_names(s) for s in region[offset + 1:]))
                if again:
                    raise Skip(f"line {stmt.lineno} deletes `{sorted(again)[0]}`, which the attention assigns after it")
                kinds.append("del")
            elif isinstance(stmt, (ast.Assign, ast.AnnAssign, ast.Expr, ast.Pass)):
                if _loads(stmt) & step_stored:
                    # lucidrains' `mask_value = -torch.finfo(sim.dtype).max` reads only what the
                    # scores are, not their values: the fused path reads the same of q and k
                    # (not after an upcast, which changes the scores' dtype)
                    # (read before the upcast -- jukebox's ``wtype = w.dtype`` ahead of ``w = w.float()``
                    # -- the scores still have the product's dtype)
                    text = None if any(r in self.roles and self.roles[r].line <= stmt.lineno for r in UPCASTS) \
                        else self._scores_metadata(stmt, step_stored, statement=True)
                    if text is None:
                        stored = _stored_attribute(stmt)
                        if stored is not None:  # widedeep's `self.attn_weights = attn_weights`
                            raise self._stored_skip(stored, stmt, step_stored)
                        raise Skip(f"the statement at line {stmt.lineno} uses a value of the attention: "
                                   + self._value_use(stmt, region[:offset], step_stored))
                    metadata[offset] = text
                if stored_names(stmt) & step_stored:
                    raise Skip(f"the statement at line {stmt.lineno} reassigns a value of the attention")
                kinds.append("keep")
            else:
                raise Skip(f"the statement at line {stmt.lineno} between the attention steps is not simple")
        # Values only the original path computes: the steps' and the guarded branches'.  Names
        # only the last statement assigns are read by the fused call before it assigns them.
        c_stmt_stored = stored_names(region[-1])
        earlier = set().union(*(stored_names(s) for s in region[:-1]))
        # (an if the guard sends to the original runs on the fused path only through its else
        # branch: what its body assigns is never computed there)
        stored = (step_stored - (c_stmt_stored - earlier)) | set().union(
            *(stored_names(inner) for s, kind in zip(region, kinds) if kind == "guard" for inner in s.orelse))
        # (the inlined helper's steps: values only the original computes, and names q, k or v
        # must not read as the helper rebinds them between its steps)
        stored |= self.helper_step_stored

        if "t3" in self.roles:
            # (DeBERTa folds the heads back into the batch here: the fused call would need the
            # mask and the scores' reshape read in that layout)
            raise Skip("the probabilities are reshaped before the value product")
        upcast = self._check_softmax()
        q, k, v = self._operands()
        self.dtype_casts: list = []  # (target, cast step): probabilities cast to another tensor's dtype
        self.held_dtypes: list = []  # (name, operand): a cast to a dtype read before the operand's recast
        self.widening: list = []  # (add step, operand): biases that may widen the scores cast back to
        if RECAST in self.roles:
            self._check_recast((q, k, v))
        self._check_casts(upcast, (q, k, v))
        self._check_softmax_dtype((q, k, v))
        self.kept_names: set[str] = set()  # q's or k's names the steps alone rebind (_rebound_by_steps)
        for index, (text, node) in enumerate((q, k, v)):
            clash = read_names(node) & stored
            if clash and index < 2 and self._rebound_by_steps(clash, region):
                self.kept_names |= clash
                continue
            if clash:
                raise Skip(f"`{sorted(clash)[0]}` is reassigned in the attention, so `{text}` would change meaning")

        # (a name only the context product's statement assigns -- `V = torch.matmul(p, V)` -- is
        # read there before it is assigned: the guard, before the region, reads the same value)
        guard: list[str] = self._rank_terms((q, k, v), all_stored - (c_stmt_stored - earlier))
        rank_terms = set(guard)
        dtype_terms: set[str] = set()
        for target, cast in self.dtype_casts:
            # `attn.softmax(dim=-1).type_as(x)` (x the block's input): the same computation
            # when x has q's dtype, which the guard checks (the original runs otherwise).  The
            # guard reads x before the region: no statement of it may assign x before the cast.
            index, _ = self._top(cast)
            earlier_stored = set().union(*(stored_names(st) for st in region[:index - lo]))
            text = self._text(target)
            if read_names(target) & (earlier_stored | stored):
                raise Skip(f"the probabilities are cast to the dtype of `{text}`, not of q, k or v")
            term = f"{_atom(text, target)}.dtype != {self._q_dtype()}"
            guard.append(term)
            dtype_terms.add(term)
        for name, operand in self.held_dtypes:
            # (_held_operand_dtype) the dtype read before the operand's recast: the fused call
            # only where the recast left the dtype as it was
            if {name, operand} & stored:
                raise Skip(f"`{name}` or `{operand}` is assigned in the attention before the cast")
            term = f"{operand}.dtype != {name}"
            guard.append(term)
            dtype_terms.add(term)
        conditions: dict[str, ast.expr] = {}  # step role -> the if test it runs under
        for role, (_, chain) in tops.items():
            if len(chain) > 2 and id(chain[0]) in self.elif_arms and _elif_arm(chain) == self.elif_arms[id(chain[0])]:
                continue  # runs whenever the fused path is taken (the guard sends the other arms away)
            if len(chain) > 2:
                raise Skip(f"the step at line {self.roles[role].line} is nested in more than one if")
            if len(chain) == 2:
                if_stmt = chain[0]
                if id(if_stmt) in branch_ifs:
                    if branch_ifs[id(if_stmt)] == "elif":
                        raise Skip(f"the if at line {if_stmt.lineno} holds attention steps in more than one arm")
                    continue  # runs whenever the fused path is taken (the guard sends the other branch away)
                if role == "g" and self._optional_head_scale(if_stmt, all_stored, step_stored):
                    continue  # (folded into v under the same test: _head_scaled)
                if role not in MASK_STEPS and not (role == "p1" and self._optional_dropout(if_stmt)) \
                        and not (role in SCALE_STEPS and self._optional_scale(if_stmt, role, all_stored)) \
                        and not (role in SCALE_STEPS and self._branched_factor(if_stmt, role, all_stored)):
                    words = {"s0": "the scores' product", "s1": "the scale", "s2": "the scale", "p0": "the softmax",
                             "p1": "the dropout", "c": "the context product"}.get(role, f"the {role} step")
                    others = [str(s.lineno) for s in if_stmt.body if span_of(s) != self.roles[role].stmt]
                    detail = (f"whose body also runs line{'s' if len(others) > 1 else ''} {', '.join(others)}"
                              if others else "whose test the fused call cannot read" if not _plain_test(if_stmt.test)
                              else "an optional step the fused call does not take")
                    raise Skip(f"{words} at line {self.roles[role].line} only runs under a condition "
                               f"(`if {self._text(if_stmt.test)}:` at line {if_stmt.lineno}, {detail})")
                conditions[role] = if_stmt.test
        for test in conditions.values():
            effect = self._call_effect(test) or self._property_effect(test)
            if effect is not None:
                # (the guard reads the test again, before the region: review61's counting property)
                raise Skip(f"the test `{self._text(test)}` reads {effect}, which the guard would run a second time")
        for role, test in self.helper_conditions.items():
            # the inlined helper's `if self.<setting>: w /= ...` (_setting_scales): at the
            # caller's call, the scale runs exactly when the setting's test holds
            if read_names(test) & all_stored:
                raise Skip(f"the test of the scale at line {self.roles[role].line} reads what the attention assigns")
            conditions[role] = test
        self._check_setting_holds(conditions, tops, region, kinds, lo, step_if_keeps)

        self.off_roles = self._guarded_off(region, conditions, all_stored)
        guard += self._widening_terms(conditions)
        for role in SCALE_STEPS:
            test = conditions.get(role)
            if test is None:
                continue
            if not any(other in self.roles for other in SCALE_STEPS if other != role) \
                    and role not in self.branched_factors:
                continue  # (the only scale, chosen by the test: `scale=` says it, _scale, or declines)
            # A second factor of the scores under an if (External-Attention's `att = q @ k /
            # np.sqrt(d_k)` then `if attention_weights is not None: att = att * attention_weights`,
            # a weight of every score, though a bare name reads like a number): one `scale=`
            # cannot say both, so the guard sends the case where the test holds to the original
            # and the fused path never runs the step.
            term = _guard_term(self._text(test), test)
            self.off_roles[role] = term
            guard.append(term)
            del conditions[role]
        guard += self._handed_factor_terms(conditions, all_stored)
        term = self._product_factor_term("sp", conditions, all_stored)
        if term is not None and term not in guard:
            guard.append(term)
        fast: list[str] = []
        deferred: list[str] = []  # the `del` statements, run after the fused call
        kept_at: dict[int, int] = {}  # region offset of a kept statement -> its place in fast
        self.hoisted: tuple = ()  # region offsets put before the guard's if (_hoisted)
        tail = self._interleaved_tail(region, kinds, metadata, step_if_keeps, step_stmts)
        sent: set[str] = set()  # the tests of the ifs the guard sends to the original (ast.dump)
        for offset, (stmt, kind) in enumerate(zip(region, kinds)):
            before = set().union(*(stored_names(s) for s in region[:offset]))
            if kind == "tail":
                continue  # (run after the guarded region, on both paths: _interleaved_tail)
            if kind == "step":
                # A bias added by a helper (``dots = self.apply_pos_bias(dots)``): the fused
                # path runs the helper's statements that compute it
                fast.extend(self._stmt_text(inner) for inner in self.helper_steps.get(span_of(stmt), ()))
                if self.block_bias is not None and self.block_bias["stmt"] is stmt:
                    fast.extend(self.block_bias["made"])  # the block's bias, written into zeros
                for outer, inner, at_else in self.original_ifs:
                    if outer is not stmt:
                        continue
                    clash = (read_names(outer.test) | read_names(inner.test)) & before
                    if clash:
                        raise Skip(f"the if at line {inner.lineno} tests `{min(clash)}`, assigned after the "
                                   "attention begins")
                    whole = _guard_term(self._text(outer.test), outer.test)
                    if whole in guard:
                        continue  # (the guard already sends the whole if away: _branched_factor)
                    term = f"{whole} and {self._original_test(inner.test, at_else)}"
                    guard.append(term)
                    branch_tests.add(term)
                keeps = step_if_keeps.get(offset)
                if keeps and self.off_roles and all(
                        role in self.off_roles for role, node in self.roles.items()
                        if stmt.lineno <= node.line <= stmt.end_lineno):
                    keeps = None  # (an if the guard sends to the original: never runs on the fused path)
                if keeps:
                    # The if around a mask step also computes the mask (``causal_mask =
                    # attention_mask[...]``): the fused path computes it under the same test.
                    body = "\n".join("    " + line for text in keeps for line in text.split("\n"))
                    fast.append(f"if {self._text(stmt.test)}:\n{body}")
                continue
            if kind == "branch" and branch_ifs[id(stmt)] == "elif":
                term = self._elif_term(self.elif_arms[id(stmt)], before)
                guard.append(term)
                branch_tests.add(term)
                fast.extend(step_if_keeps.get(offset, ()))
                continue
            if kind == "branch":
                effect = self._call_effect(stmt.test) or self._property_effect(stmt.test)
                if effect is not None:
                    # the guard evaluates the test again before the if runs (review61)
                    raise Skip(f"the if at line {stmt.lineno} tests {effect}, which the guard would run a second time")
                clash = read_names(stmt.test) & before
                if clash:
                    raise Skip(f"the if at line {stmt.lineno} tests `{sorted(clash)[0]}`, assigned after the attention "
                               "begins")
                test = self._text(stmt.test)
                if branch_ifs[id(stmt)] == "body":  # the fused path is the body: the else goes away
                    term = f"not {_atom(test, stmt.test)}"
                    if isinstance(stmt.test, ast.UnaryOp) and isinstance(stmt.test.op, ast.Not):
                        # (`if not return_attn:`: the else runs where `return_attn` holds)
                        term = _guard_term(self._text(stmt.test.operand), stmt.test.operand)
                else:  # the fused path is the else branch: the body goes away
                    term = _guard_term(test, stmt.test)
                guard.append(term)
                branch_tests.add(term)
                fast.extend(step_if_keeps.get(offset, ()))
                continue
            if kind == "choice":
                clash = _loads(stmt.value.test) & before
                if clash:
                    raise Skip(f"the test at line {stmt.lineno} reads `{sorted(clash)[0]}`, assigned after the attention "
                               "begins")
                term, assignment = metadata[offset]
                guard.append(term)
                branch_tests.add(term)
                fast.append(assignment)
                continue
            if kind == "drop":
                continue  # the name keeps the value the fused path does not compute
            if kind == "del":
                deferred.append(self._stmt_text(stmt))
                continue
            if kind == "check":
                if not _loads(stmt) & stored:
                    fast.append(self._stmt_text(stmt))  # an input check: keep it
                continue  # a check of the scores' shape: the fused call checks shapes itself
            if kind == "keep":
                # Kept statements run before the fused call: none may change what an earlier
                # step read.  (A guard if's body runs on the original path only, its test is
                # read before the region and its else branch runs in place on the fused path:
                # a later reassignment of a name the body reads changes nothing there --
                # compressive-transformer's `mask` built for the input mask under `if
                # input_mask is not None:`, then reused for the causal mask.)
                earlier = set().union(*(_step_loads(s, step_stmts, step_stored)
                                        for s, k in zip(region[:offset], kinds[:offset]) if k == "step"))
                clash = stored_names(stmt) & earlier
                if clash:
                    held = self._held_operands(stmt, clash, region[:offset], kinds[:offset], (q, k, v))
                    if held is None:
                        raise Skip(f"line {stmt.lineno} reassigns `{sorted(clash)[0]}` after the attention read it")
                    (q, k, v), snapshots = held
                    fast.extend(snapshots)
                if offset not in metadata:
                    kept_at[offset] = len(fast)
                fast.append(metadata.get(offset) or self._stmt_text(stmt))
                continue
            clash = read_names(stmt.test) & before
            if clash and clash == _not_none_tested(stmt.test) and all(
                    _only_cleared(s, clash) for s in region[:offset]):
                # fairseq's `if m is not None and m.dim() == 0: m = None` before `if m is not
                # None:`: a name only ever set to None on the way is None after it whenever it
                # was None before, so testing it before the attention sends no more than the
                # cases it might hold a value to the original code
                clash = set()
            if clash:
                raise Skip(f"the if at line {stmt.lineno} tests `{sorted(clash)[0]}`, assigned after the attention begins")
            guard.append(_guard_term(self._text(stmt.test), stmt.test))
            sent.add(ast.dump(stmt.test))
            for inner in stmt.orelse:
                if not isinstance(inner, (ast.Assign, ast.AnnAssign, ast.Expr, ast.Pass)):
                    raise Skip(f"the else branch at line {inner.lineno} does more than assign")
                if _loads(inner) & stored:
                    raise Skip(f"the else branch at line {inner.lineno} reads a value of the attention")
                fast.append(self._stmt_text(inner))
        self._check_settings_sent(sent)

        self.blind_rows = None
        self.blind_rows_required = False  # the guard of a product mask (_note_blind_rows): no fused call without it
        self.filled_rows = None
        self.filled_before_add = None  # (the fill and the added mask's text: _mask, _filled_rows_before)
        self.zeroed_rows = None  # the fill whose whole rows the fused call's query zeroes (_call)
        filled_term = None  # the filled-rows term: it reads names of the region as they are before it
        self.extra_imports: set = set()  # ``import torch`` where the module has no name for it
        self.moved_rank_terms: list[str] = []  # (a moved mask's rank, read off a parameter: _moved_rank_guard)
        call = self._call(q, k, v, conditions, stored)
        guard += self.moved_rank_terms
        guard += self._float32_terms()
        guard += self._written_equation_terms(region, all_stored)
        for text, operand, test in self.helper_adds:
            if read_names(operand) & all_stored:
                continue  # (in the scores' dtype in the mask: _mask)
            # Added in place by the helper, read before the region here: one of another dtype
            # than the scores (the helper's `x += p` keeps theirs; SDPA would refuse it), one
            # that is not floating point (SDPA reads a bool one as keep/drop) and a training
            # step whose mask hides every key of a row (_blind_rows_term) take the original.
            torch = self._torch("the guard for the helper's added tensors")
            term = (f"{text}.dtype != {self._q_dtype()} or ({_eager_training(torch)} and "
                    f"{text}.amax(-1).min() <= {HIDDEN_ROW})")
            if test is not None:
                term = f"{_guard_term(self._text(test), test)} and ({term})"
            guard.append(_guard_term(term, ast.parse(term, mode="eval").body))
        if self.fill_helper is not None and self.fill_helper["method"] is not None:
            # a subclass overriding the fill helper (in another file) may read the scores' values:
            # its instances take the original (_inline_fill_helper)
            owner, name = self.fill_helper["method"]
            guard.append(self._overridden_term(owner, name, edits))
        for owner, name in dict.fromkeys(self.kept_methods):
            # a method returning the scores as they are, dropped from the fused path (_keeps_value):
            # a subclass overriding it (in another file) may change them
            guard.append(self._overridden_term(owner, name, edits))
        if self.inlined_method is not None:
            # a subclass overriding the inlined helper (in another file) computes something else:
            # its instances take the original (_inline_attention_helper)
            owner, name = self.inlined_method
            guard.append(self._overridden_term(owner, name, edits))
        for owner, name in self.chain_methods:
            # (the same for each method of a chain of them, _inline_helper_chain)
            guard.append(self._overridden_term(owner, name, edits))
        for setting in self.chain_settings:
            # an outer method of that chain returns the scores unchanged only while its setting is off
            guard.append(_guard_term(self._text(setting), setting))
        if self.dispatch_setting is not None:
            # the helper picked by a setting (``getattr(self, self.mode)``): the other values pick
            # other methods, which take the original path (_dispatched_calls)
            attr, value, owner, local, picked_call = self.dispatch_setting
            guard.append(f"self.{attr} != {value!r}")
            guard.append(self._picked_term(attr, value, owner, local, picked_call, region, edits))
        if self.fill_helper is not None and self.fill_helper["rows"]:
            # A fill helper whose finite fill follows its other arguments may fill a whole row:
            # the fused call's forward is the same there (uniform weights), but its backward,
            # recomputing the weights from the rows' log-sum-exp at the dtype's extreme, is
            # not; such a training step takes the original (_inline_fill_helper)
            text, operand = self.fill_helper["text"], self.fill_helper["operand"]
            if read_names(operand) & all_stored:
                raise Skip(f"the mask `{text}` of the fill helper reads what the attention assigns, so the rows it "
                           "fills entirely (where the fused call's gradients differ) cannot be checked before it")
            torch = self._torch("the guard for the fill helper's rows")
            term = f"{_eager_training(torch)} and {_atom(text, operand)}.amax(-1).min() <= {HIDDEN_ROW}"
            test = conditions.get(next(r for r, n in self.roles.items() if n is self.fill_helper["node"]))
            if test is not None:
                term = f"{_guard_term(self._text(test), test)} and ({term})"
            guard.append(_guard_term(term, ast.parse(term, mode="eval").body))
        if self.runtime_fill is not None:
            # a fill value read at run time: -inf or at most LARGE_NEGATIVE takes the fused path (_runtime_fill)
            text, test = self.runtime_fill
            term = f"not ({_atom(text, ast.parse(text, mode='eval').body)} <= {LARGE_NEGATIVE})"
            if test is not None:
                term = f"{_guard_term(self._text(test), test)} and {term}"
            guard.append(_guard_term(term, ast.parse(term, mode="eval").body))
        # (a mask the inlined helper computes is computed in the attention on the fused path too:
        # the guard, which runs before the helper's statements, cannot read it, as one of the region)
        in_attention = all_stored | self.helper_made
        if self.blind_rows is not None and self.blind_rows_required \
                and read_names(ast.parse(self.blind_rows, mode="eval")) & in_attention:
            raise Skip("the added mask, a large negative constant times a mask, reads what the attention assigns, "
                       "so the rows it hides entirely (where the fused call's gradients differ) cannot be checked "
                       "before it")
        if self.blind_rows is not None and not read_names(ast.parse(self.blind_rows, mode="eval")) & in_attention:
            guard.append(_guard_term(self.blind_rows, ast.parse(self.blind_rows, mode="eval").body))
        if self.filled_before_add is not None:
            term = self._filled_rows_before(region, step_stored, *self.filled_before_add)
            if term is None:
                raise Skip("the fill's mask, before an added mask, is computed in the attention from what cannot be "
                           "read before it, so the rows whose kept keys the added mask hides cannot be checked")
            guard.append(term)
            filled_term = term
        elif self.filled_rows is not None:
            term = self._filled_rows_before(region, step_stored, self.filled_rows)
            if term is None and self._can_zero_rows():
                # the mask is known only where the fused call runs: its rows filled whole are
                # made exact there instead (the query zeroed on them: _call)
                self.zeroed_rows = self.filled_rows
                call = self._call(q, k, v, conditions, stored)
            elif term is None:
                term = self._aligned_triangle_rows(all_stored)
                if term is None:
                    raise Skip("the fill's mask is computed in the attention from what cannot be read before it, "
                               "so the rows it fills entirely (where the fused call differs) cannot be checked")
                guard.append(term)
                filled_term = term
            else:
                guard.append(term)
                filled_term = term
        edits.imports.add(self.edits_import)
        edits.imports |= self.extra_imports
        c_stmt = region[-1] if self.context_arm is None else self.context_arm
        if c_stmt is self.fallback_try:
            # the fused path runs the try's statement alone: its handler ran only where the
            # product raised, for probabilities of another dtype than v's, which the guard
            # sends to the original (_fallback_terms)
            c_stmt = c_stmt.body[0]
            guard += self._fallback_terms(conditions, region, set(kept_at))
        self._hoist_widening(region, set(kept_at), all_stored)
        if self.hoisted:
            # (run before the if on both paths: not in fast, not values of the attention)
            for offset in sorted(self.hoisted, reverse=True):
                del fast[kept_at[offset]]
            all_stored = all_stored - set().union(*(stored_names(region[h]) for h in self.hoisted))
        tail_stored = set() if tail is None else stored_names(ast.parse(tail[2]))
        all_stored = all_stored - tail_stored  # (computed after the region on both paths)
        before_c = set().union(*(stored_names(ast.parse(t)) for t in fast),
                               *(stored_names(region[h]) for h in self.hoisted), tail_stored)
        func = self._function(c_stmt)
        changed = _changed_in_place(func, stored_names(c_stmt), (c_stmt.end_lineno, c_stmt.end_col_offset)) \
            if func is not None else None
        if changed is not None:
            # `x[:, :, 1:] += q[:, :, 1:]` after `x = attn @ v`: the fused call's backward reads
            # its output, which autograd forbids changing in place; a matmul's does not
            call = f"{call}.clone()"
        c_text = self._stmt_text(c_stmt, (self.roles["c"].span, call))
        # The context statement may read more than the product it replaces (Whisper returns
        # `qk.detach()` beside it): those reads must be defined on the fused path too, or be
        # handed back beside the product, which the fused path then hands back as None.
        only_original = set().union(*(stored_names(s) for s in region[:-1] if not any(s is d for d in deletes))) \
            - before_c
        sent_only = _sent_body_names(region[:-1], kinds)
        only_original -= sent_only
        for s in region[:-1]:
            if id(s) in branch_ifs and branch_ifs[id(s)] != "elif":
                # An if whose other branch the guard sends to the original (latent-diffusion's
                # `q, k = q.float(), k.float()` there): what only that branch assigns and the
                # fused branch's steps read is the value from before the if on the fused path.
                fused = s.body if branch_ifs[id(s)] == "body" else s.orelse
                other = s.orelse if branch_ifs[id(s)] == "body" else s.body
                # (Only names that branch recasts, `x = x.float()`: what else it assigns stays
                # declined -- torchvision's Swin reads a reassigned `logit_scale` as the scale.)
                fused_stored = set().union(*(stored_names(t) for t in fused))
                fused_reads = set().union(*(_loads(t) for t in fused))
                recast = _recast_only(other) | self._sent_branch_inputs(fused, other)
                only_original -= (recast - fused_stored) & fused_reads
        missing = _loads(ast.parse(c_text)) & (only_original - self.kept_names)
        self.in_context: list[tuple[ast.Return, int, int, str]] = []
        if missing:
            c_text = self._returned_beside(c_stmt, call, only_original)
            if c_text is None:
                raise Skip(f"the statement at line {c_stmt.lineno} also reads `{sorted(missing)[0]}`, "
                           "which only the original attention computes")
        fast.append(c_text)
        if not isinstance(c_stmt, ast.Return):  # (after a return the function's names are gone anyway)
            fast.extend(deferred)
        fast_defs = set().union(*(stored_names(ast.parse(t)) for t in fast))
        # `del attn, v` after the attention (memory freed early): the fused path never binds the
        # probabilities, so it binds them to None for the `del` to unbind, as after the original.
        later = (c_stmt.end_lineno, c_stmt.end_col_offset)
        unbound = sorted({n.id for n in ast_walk(func) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Del)
                          and (n.lineno, n.col_offset) >= later} & (all_stored - fast_defs)) if func is not None else []
        fast += [f"{name} = None" for name in unbound]  # (reads of them are still checked below)
        self.declined: list[str] = []  # what the fused path hands back as None (weights.Decline)
        self.unsafe_nones: list[str] = []  # --unsafe-fixes: values stored in an attribute no file reads
        # (a name only a sent if's body assigns keeps its value from before on the fused path,
        # as on the original's where the test fails: _sent_body_names)
        guard += self._live_reads(region, all_stored - fast_defs - sent_only, edits, regions)
        if self.declined or self.in_context:
            guard.insert(0, guard.pop(guard.index(self.flag)))  # the caller's choice reads first
        guard += getattr(self, "scale_number_terms", [])  # (_number_terms)
        fast += list(dict.fromkeys(self.declined + self.unsafe_nones + self.step_nones))
        for none in dict.fromkeys(self.step_nones):
            # the attribute a step stored is None on the fused path: nothing the fused path or the
            # guard runs may read it (the steps' own reads are dropped there)
            attribute = re.compile(rf"(?<![\w.]){re.escape(none[:-len(' = None')])}\b")
            if any(attribute.search(t) for t in [*guard, *fast] if t != none):
                raise Skip(f"`{none[:-len(' = None')]}`, which a step stores, is read on the fused path too")
        guard += self._hooks(edits, set(conditions))
        guard += self._stand_in_hooks(edits, conditions)

        unique = list(dict.fromkeys(guard))
        _contradiction(unique)
        for role, term in self.off_roles.items():
            if term not in unique:  # (left out of the mask for the guard's term: it must be there)
                raise Skip(f"the step at line {self.roles[role].line} was left out of the fused call's mask for a "
                           "condition the guard does not send to the original")
        widening_terms = set(self._widening_terms(conditions))
        for term in unique:
            clash = read_names(ast.parse(term, mode="eval")) & self.helper_made
            if clash:  # (the guard runs before the call whose helper binds them)
                raise Skip(f"the fallback condition `{term}` reads `{min(clash)}`, which the inlined helper "
                           "computes")
        for term in unique:
            clash = read_names(ast.parse(term, mode="eval")) & all_stored
            if term in widening_terms:
                # fairseq's `attn_mask = attn_mask.unsqueeze(0)` before `attn_weights += attn_mask`:
                # the guard reads the mask before the region, of the same dtype and None-ness
                clash = {name for name in clash if not _reshaped_only(name, region)}
                clash -= _sent_bound_before(clash & sent_only, func, region[0])
            if clash and term not in branch_tests and term not in dtype_terms and term not in rank_terms \
                    and term != filled_term and \
                    term not in {_guard_term(self._text(s.test), s.test) for s in region if isinstance(s, ast.If)}:
                raise Skip(f"the fallback condition `{term}` reads `{sorted(clash)[0]}`, computed by the attention")
        if self.declined or self.in_context:
            # (after the flag, a term that is an `and` chain gets its parentheses: its lines are
            # then split like the others')
            unique = [unique[0], *(_guard_term(t, ast.parse(t, mode="eval").body) for t in unique[1:])]
        prelude = ""
        if self.handed is not None:
            unique, fast, prelude = self._handed_edits(edits, regions, region, unique, fast)
        guard_text = " or ".join(unique) if unique else None
        first, final = region[0], region[-1]
        tail_offsets, tail_code = (), ""
        if tail is not None and guard_text is None:
            fast.append(tail[2])  # (no original arm: the moved statements follow the fused call)
        elif tail is not None:
            tail_offsets, tail_code = tuple(sorted(tail[0])), tail[2]
            for inner in (i for inners in tail[1].values() for i in inners):
                edits.delete.add(self.index.char_span(span_of(inner)))  # (out of the original arm's if)
        edits.wrap = Wrap(
            first=(first.lineno, self.index.char_col(first.lineno, first.col_offset)),
            last=(final.lineno, self.index.char_col(final.lineno, final.col_offset)),
            guard=guard_text,
            fast="\n".join(fast),
            prelude=prelude,
            hoist=self.hoisted,
            tail=tail_code,
            tail_offsets=tail_offsets,
        )
        regions.append((first.lineno, first.col_offset, final.end_lineno, final.end_col_offset))

    def _interleaved_tail(self, region, kinds, metadata, step_if_keeps, step_stmts) -> tuple | None:
        """Another computation's statements interleaved with the steps (slp's second
        cross-attention, through the mask's if: :func:`interleaved.movable_tail`), moved after
        the guarded region on both paths: ``(offsets, {if offset: statements}, text)``; their
        kinds become ``tail`` and the step's if keeps none of them on the fused path.  None where
        they cannot all move (they stay as they were)."""
        if self.helper_call is not None or self.handed is not None or self.context_arm is not None \
                or self.fallback_try is not None:
            return None
        found = movable_tail(region, kinds, metadata, step_if_keeps, step_stmts, self._stmt_text, _plain_test)
        if found is None:
            return None
        tops, inners = found
        for offset in tops:
            kinds[offset] = "tail"
        for offset in inners:
            step_if_keeps[offset] = []
        return tops, inners, tail_text(region, tops, inners, self._stmt_text, self._text)

    def _inferred_view_shape(self, shape_text: str, grouped: bool) -> str:
        """The shape the scores' view ``m1`` (``scores.view(B * H, T, -1)``: a -1, which expand
        cannot take) gives them, read off a stand-in of the scores made of q and k (a 0-d tensor
        expanded to their shape: every stride 0, so any view of it is allowed, and no memory):
        ``q.new_empty(()).expand(<scores' shape>).view(<m1's sizes>).shape``."""
        # (only where the folded scores are q @ k^T's shape: a bias, fill or tensor factor before
        # the fold may broadcast them wider than q and k say)
        widening = [r for r in ("b0", "fs", "sp", "b1", "f0") if r in self.roles] + [
            r for r in ("s1", "s2") if r in self.roles and not self._number_like(self._operand_of(r, SCALE_VARS[r]))]
        if grouped or widening:
            raise Skip("the mask is added in a shape with -1, which expand cannot take")
        q_atom, scores_shape = self._stand_in_shape()
        return f"{q_atom}.new_empty(()).expand({scores_shape}).view({shape_text}).shape"

    def _stand_in_shape(self) -> tuple[str, str]:
        """q's text (an atom) and the text of the scores' shape, ``(*batch, queries, keys)``
        from q and k: what a stand-in of the scores (``q.new_zeros(()).expand(shape)``) handed
        to a bias module, a fill helper or a group of biases is made of."""
        (q_text, q_node), (k_text, k_node) = self._operands()[:2]
        q_atom, k_atom, torch = _atom(q_text, q_node), _atom(k_text, k_node), self._torch("a stand-in of the scores")
        return q_atom, (f"(*{torch}.broadcast_shapes({q_atom}.shape[:-2], {k_atom}.shape[:-2]), "
                        f"{q_atom}.shape[-2], {k_atom}.shape[-2])")

    def _rank_terms(self, operands, all_stored: set) -> list[str]:
        """The guard's terms for a softmax whose dim counts from the front of scores of a rank the
        code does not fix (flair's keys-first ``softmax(enc @ out^T, dim=1)``, then ``enc^T @ p``):
        the normalised axis is the keys' only at the rank the products contract it at
        (``assumed_rank``), which the scores have exactly when q, k and v (the products' operands,
        up to transposes) all have it; at any other the original runs.  Only for operands that
        are names or attributes the region does not assign (read before it, cheaply)."""
        if self.assumed_rank is None:
            return []
        terms: list[str] = []
        for _, node in operands:
            found = self._rank_leaves(node, self.assumed_rank, all_stored)
            if found is None:
                raise Skip(RANK_SKIP)
            terms += [f"{ast.unparse(leaf)}.dim() != {rank}" for leaf, rank in found]
        return list(dict.fromkeys(terms))

    def _rank_leaves(self, node: ast.expr, rank: int, all_stored: set) -> list[tuple[ast.expr, int]] | None:
        """Names (or attributes) and the ranks that, all held, give ``node`` exactly ``rank``
        (None where no such reading is known): a name as is, through transposes; ``x.unsqueeze(i)``
        (a constant i) is ``x`` at one rank less; ``a @ b`` (``torch.matmul``) at a rank of at
        least 2 is ``a`` and ``b`` both at that rank (their batch axes broadcast to it).
        wavencoder's ``(query @ self.W).unsqueeze(1) @ values.transpose(1, 2)``: the guard
        then reads ``query``, ``self.W`` and ``values``, cheaply, before the region.  A sufficient
        condition: where it fails the original runs."""
        node = _untransposed(node)
        base = node
        while isinstance(base, ast.Attribute):
            base = base.value
        if isinstance(base, ast.Name):
            if read_names(node) & all_stored:
                # pyhealth's ``q = torch.reshape(input_q, (b, h, 1))`` in the region: the rank its
                # shape fixes (no guard term), or no reading where it is another
                fixed = self._reshaped_rank(node) if isinstance(node, ast.Name) else None
                return [] if fixed == rank else None
            return [(node, rank)]
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "unsqueeze" \
                and len(node.args) == 1 and not node.keywords and isinstance(node.args[0], ast.Constant) \
                and type(node.args[0].value) is int and rank >= 2 and -rank <= node.args[0].value < rank:
            return self._rank_leaves(node.func.value, rank - 1, all_stored)
        pair = None
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.MatMult):
            pair = (node.left, node.right)
        elif isinstance(node, ast.Call) and len(node.args) == 2 and not node.keywords \
                and self.names.resolve(node.func) == "torch.matmul":
            pair = tuple(node.args)
        if pair is None or rank < 2:
            return None
        left, right = (self._rank_leaves(side, rank, all_stored) for side in pair)
        return None if left is None or right is None else left + right

    def _reshaped_rank(self, name: ast.Name) -> int | None:
        """The rank of ``name`` where the region binds it once, by a reshape to a shape it writes
        out (``torch.reshape(x, (b, h, 1))``, ``x.view(b, h, 1)``, ``x.reshape((b, -1))``): the
        number of sizes, whatever they are.  None for any other binding, or more than one."""
        # (the arms of an if / elif chain that the guard sends to the original: _elif_arm)
        elsewhere = {id(t) for ifs, field in getattr(self, "elif_arms", {}).values()
                     for i in ifs for t in (i.body if i is not ifs[-1] or field == "orelse" else
                                            (i.orelse if i is ifs[-1] else []))}
        values = []
        stack = list(getattr(self, "step_region", ()))
        while stack:
            n = stack.pop()
            if id(n) in elsewhere:
                continue
            if isinstance(n, (ast.Assign, ast.AnnAssign, ast.AugAssign, ast.For, ast.With, ast.NamedExpr)) \
                    and name.id in stored_names(n if isinstance(n, ast.stmt) else ast.Expr(n)):
                # (after the scores' product, the product read the value from before the region)
                values.append(getattr(n, "value", None) if n.lineno < self.roles["s0"].line else None)
            stack.extend(ast.iter_child_nodes(n))
        if len(values) != 1 or not isinstance(values[0], ast.Call) or values[0].keywords:
            return None
        call = values[0]
        if isinstance(call.func, ast.Attribute) and call.func.attr in ("reshape", "view") \
                and not self.names.resolve(call.func):
            sizes = call.args
        elif self.names.resolve(call.func) == "torch.reshape" and len(call.args) == 2:
            sizes = call.args[1:]
        else:
            return None
        if len(sizes) == 1 and isinstance(sizes[0], (ast.Tuple, ast.List)):
            sizes = sizes[0].elts
        elif len(sizes) < 2:
            return None  # (one size that may be a shape: ``x.view(shape)``)
        if any(isinstance(e, ast.Starred) for e in sizes):
            return None
        return len(sizes)

    def _value_use(self, stmt: ast.stmt, before: list[ast.stmt], step_stored: set) -> str:
        """What a statement between the steps does with a value of the attention (the decline's
        detail): which value it reads -- the scores or the probabilities, by the step that
        last assigned the name -- and, where it keeps them in another name (molgpt's
        ``attn_save = att``), where that name is read next."""
        name = sorted(_loads(stmt) & step_stored)[0]
        step_stmts = {n.stmt: role for role, n in self.roles.items()}
        what = "a value"
        for earlier in before:
            for inner in ast_walk(earlier):
                role = step_stmts.get(span_of(inner)) if isinstance(inner, ast.stmt) else None
                if role is not None and name in stored_names(inner):
                    what = ("the probabilities" if role in ("p0", "p1") else "the scores" if role in SCORE_STEPS
                            else "a value")
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name) \
                and isinstance(stmt.value, ast.Name):
            alias = stmt.targets[0].id
            func = self._function(stmt)
            end = (stmt.end_lineno, stmt.end_col_offset)
            parents = _parents(func) if func is not None else {}
            reads = sorted(((n.lineno, n.col_offset), n) for n in ast_walk(func) if isinstance(n, ast.Name)
                           and n.id == alias and isinstance(n.ctx, ast.Load) and (n.lineno, n.col_offset) > end) \
                if func is not None else []
            use = ""
            if reads:
                node = reads[0][1]
                holder = parents.get(node)
                while holder is not None and not isinstance(holder, ast.stmt):
                    holder = parents.get(holder)
                use = (f", which line {node.lineno} returns" if isinstance(holder, ast.Return)
                       else f", read at line {node.lineno}")
            return (f"it keeps {what} (`{name}`) in `{alias}`{use} (to callers that may read them); the fused "
                    "call never forms them")
        text = " ".join(self._stmt_text(stmt).split())
        text = text if len(text) <= 60 else text[:57] + "..."
        return (f"it reads {what} (`{name}`) in a way that is no step of the attention (`{text}`); the fused "
                "call never forms them")

    def _grouped_split(self, stmt: ast.stmt, region: list[ast.stmt], offset: int) -> str | None:
        """Tranception's ALiBi per group of heads, which the graph reads as one add (the m2 step
        at the ``torch.cat``): ``g = s.split(n, dim=1)``; ``g2 = [m(p) + p for m, p in
        zip(self.biases, g)]``; ``s = torch.cat(g2, dim=1)``, each module of the ``nn.ModuleList``
        of one class of this file whose ``forward`` reads its input only for what it is (sizes,
        device, rank; its dtype only where the scores keep q's).  Each group's output is then
        its scores plus a bias that does not depend on their values, so the concatenation is
        the scores plus the concatenated biases.  On the fused path the split (``stmt``) is of
        a stand-in of zeros of the scores' shape, device and dtype (``0 + b`` is ``b``
        exactly): the comprehension builds the biases, and the ``torch.cat`` is the mask's
        part.  Returns the split's fused text; None where ``stmt`` is no such split."""
        node = self.roles.get("m2")
        info = self.index.stmt(node.stmt) if node is not None else None
        if info is None or offset + 2 >= len(region) or info.stmt is not region[offset + 2]:
            return None
        cat, comp = region[offset + 2], region[offset + 1]
        added = self._added_to("m2")
        if not (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name)
                and isinstance(stmt.value, ast.Call) and isinstance(stmt.value.func, ast.Attribute)
                and stmt.value.func.attr == "split" and isinstance(stmt.value.func.value, ast.Name)
                and stmt.value.func.value.id == added and added is not None
                and isinstance(comp, ast.Assign) and len(comp.targets) == 1 and isinstance(comp.targets[0], ast.Name)
                and isinstance(comp.value, ast.ListComp) and len(comp.value.generators) == 1
                and isinstance(cat, ast.Assign) and isinstance(cat.value, ast.Call) and cat.value.args
                and isinstance(cat.value.args[0], ast.Name) and cat.value.args[0].id == comp.targets[0].id):
            return None
        groups, parts = stmt.targets[0].id, comp.targets[0].id
        gen = comp.value.generators[0]
        elt = comp.value.elt
        if gen.ifs or gen.is_async or not (isinstance(gen.target, ast.Tuple) and len(gen.target.elts) == 2
                                           and all(isinstance(e, ast.Name) for e in gen.target.elts)
                                           and isinstance(gen.iter, ast.Call) and isinstance(gen.iter.func, ast.Name)
                                           and gen.iter.func.id == "zip" and len(gen.iter.args) == 2
                                           and not gen.iter.keywords):
            return None
        (mod, part), (modules, source) = [e.id for e in gen.target.elts], gen.iter.args
        if not (isinstance(source, ast.Name) and source.id == groups and isinstance(modules, ast.Attribute)
                and isinstance(modules.value, ast.Name) and modules.value.id == "self"
                and isinstance(elt, ast.BinOp) and isinstance(elt.op, ast.Add)):
            return None
        sides = [elt.left, elt.right]
        plain = [e for e in sides if isinstance(e, ast.Name) and e.id == part]
        calls = [e for e in sides if isinstance(e, ast.Call) and isinstance(e.func, ast.Name) and e.func.id == mod
                 and len(e.args) == 1 and isinstance(e.args[0], ast.Name) and e.args[0].id == part and not e.keywords]
        if len(plain) != 1 or len(calls) != 1:
            return None
        # The modules: one class of this file, built in a ModuleList (a list or a comprehension of calls).
        values = self._attribute_values(modules.attr)
        classes = set()
        for value in values:
            inner = value.args[0] if (isinstance(value, ast.Call) and len(value.args) == 1 and not value.keywords
                                      and self.names.resolve(value.func) == "torch.nn.ModuleList") else None
            built = [inner.elt] if isinstance(inner, ast.ListComp) else list(inner.elts) if isinstance(inner, ast.List) \
                else None
            if not built or not all(isinstance(b, ast.Call) and isinstance(b.func, ast.Name) for b in built):
                return None
            classes |= {b.func.id for b in built}
        cls = self.names.classes.get(next(iter(classes))) if len(classes) == 1 else None
        if cls is None:
            return None
        forward = _plain_forward(cls)
        if forward is None:
            return None
        params = [a.arg for a in forward.args.posonlyargs + forward.args.args][1:]
        if not params or not _shape_metadata_only(forward, params[0]):
            return None
        if any(r in self.roles for r in VIEW_STEPS) or self.scores_t:
            return None  # (the stand-in has the product's shape)
        earlier = SCORE_STEPS[:SCORE_STEPS.index("m2")]
        if any(r in self.roles and r not in DTYPE_KEEPING and not (r in SCALE_STEPS and self._number_like(
                self._operand_of(r, SCALE_VARS[r]))) for r in earlier):
            return None  # (a tensor scale or a bias before: the stand-in's axes or dtype may differ)
        if _reads_attribute(forward, params[0], "dtype") and not self._keeps_q_dtype_before("m2"):
            return None
        # The groups the fused path builds hold the biases, not the scores' groups: no later read.
        func = self._function(cat)
        end = (cat.end_lineno, cat.end_col_offset)
        if func is None or any(isinstance(n, ast.Name) and n.id in (groups, parts) and isinstance(n.ctx, ast.Load)
                               and (n.lineno, n.col_offset) > end for n in ast_walk(func)):
            return None
        q_atom, shape = self._stand_in_shape()
        self.grouped_cat = cat.value
        self.list_stand_ins.append(f"self.{modules.attr}")
        return self._stmt_text(stmt, (span_of(stmt.value.func.value), f"{q_atom}.new_zeros(()).expand({shape})"))

    def _chosen_probabilities(self, stmt: ast.stmt, step_stored: set[str]) -> tuple[str, str] | None:
        """``weights = attention_probs if self.vis else None``: a value of the attention kept
        only when a test holds (probabilities handed back for visualization), the other choice
        reading nothing the attention computes.  The test joins the guard (the original path
        runs when the value is wanted) and the fused path assigns the other choice, as an
        ``if self.vis: weights = probs`` / ``else: weights = None`` would.  Returns the guard
        term and that assignment; None for any other statement."""
        if not isinstance(stmt, ast.Assign) or not isinstance(stmt.value, ast.IfExp):
            return None
        choice = stmt.value
        if _loads(choice.test) & step_stored or any(isinstance(t, ast.Attribute) for t in stmt.targets):
            return None
        body_reads = bool(_loads(choice.body) & step_stored)
        else_reads = bool(_loads(choice.orelse) & step_stored)
        if body_reads == else_reads:
            return None
        test = self._text(choice.test)
        term = _guard_term(test, choice.test) if body_reads else f"not {_atom(test, choice.test)}"
        other = choice.orelse if body_reads else choice.body
        targets = " = ".join(self._text(t) for t in stmt.targets)
        return term, f"{targets} = {self._text(other)}"

    def _choice_steps(self, nodes: list) -> list:
        """Steps taken in one choice of a conditional expression that otherwise keeps the value
        (``sim = (sim + bias) if self.use_bias else sim``, graph._optional_step): the same as
        ``if self.use_bias: sim = sim + bias``, which the plan rewrites.  Each such step is moved
        to the assignment holding the expression, and that assignment is read (by ``_top``) as
        the body of an ``if`` on the expression's test.  Returns the nodes with those steps'
        statements replaced."""
        moved_nodes = {}
        for node in nodes:
            if self.index.stmt(node.stmt) is not None or node.span is None:
                continue
            holder = next((info.stmt for info in self.index.stmts.values()
                           if isinstance(info.stmt, ast.Assign) and isinstance(info.stmt.value, ast.IfExp)
                           and contains(span_of(info.stmt.value), node.span)), None)
            if holder is None:
                continue
            choice = holder.value
            target = holder.targets[0] if len(holder.targets) == 1 else None
            kept = [side for side in (choice.body, choice.orelse) if isinstance(target, ast.Name)
                    and isinstance(side, ast.Name) and side.id == target.id]
            if not kept:
                raise Skip(f"the step at line {node.line} is one choice of a conditional expression whose other "
                           "choice is not the value it steps from")
            if not contains(span_of(choice.body), node.span):
                # `s = s if flag else s + bias`: the step runs when the test fails, which the
                # fused call's mask cannot be conditioned on without writing the test anew
                raise Skip(f"the step at line {node.line} runs when the test of its conditional expression "
                           "fails; written as `(step) if test else value`, the attention would be rewritten")
            pseudo = ast.If(test=choice.test, body=[holder], orelse=[])
            ast.copy_location(pseudo, holder)
            self.choice_ifs[span_of(holder)] = pseudo
            moved_nodes[id(node)] = replace(node, stmt=span_of(holder))
        if not moved_nodes:
            return nodes
        for role, value in self.roles.items():
            if id(value) in moved_nodes:
                self.roles[role] = moved_nodes[id(value)]
        return [moved_nodes.get(id(n), n) for n in nodes]

    def _inline_helper(self, nodes: list) -> list:
        """A match spread over the caller and one helper (method of the class or function of
        the file) that only adds a bias to the scores: ``dots = self.apply_pos_bias(dots)``
        with ``def apply_pos_bias(self, fmap): bias = ...; return fmap + bias / self.scale``.
        The add step is moved to the caller's statement, and the helper's statements before
        its return are what the fused path runs to compute the bias.  Returns the nodes with
        that step's statement replaced."""
        caller = self.roles["c"].func
        outside = [n for n in nodes if n.func != caller]
        roles = {id(n): r for r, n in self.roles.items()}
        for n in outside:
            info = self.index.stmt(n.stmt)
            helper = self._function(info.stmt) if info is not None else None
            if helper is not None and all(h is not helper for h in self.helper_defs):
                self.helper_defs.append(helper)
        if {roles.get(id(n)) for n in outside} in ({"p0"}, {"p0", "p1"}):
            return self._inline_probs_helper(nodes, outside, roles)
        if len(outside) == 1 and roles.get(id(outside[0])) in ("f0", "f1"):
            return self._inline_fill_helper(nodes, outside[0], roles[id(outside[0])])
        if len(outside) == 1 and roles.get(id(outside[0])) in ADD_STEPS and _block_add(outside[0]):
            return self._inline_block_helper(nodes, outside[0], roles[id(outside[0])])
        if "s0" in {roles.get(id(n)) for n in outside}:
            chained = self._inline_helper_chain(nodes, outside, roles)
            if chained is not None:
                return chained
            inlined = self._inline_attention_helper(nodes, outside, roles)
            if inlined is not None:
                return inlined
        if len(outside) != 1 or roles.get(id(outside[0])) not in ADD_STEPS:
            raise self._helper_skip(nodes, roles)
        node = outside[0]
        info = self.index.stmt(node.stmt)
        helper = self._function(info.stmt) if info is not None else None
        caller_def = self._function(self.index.stmt(self.roles["c"].stmt).stmt)
        why = "the bias is added in a helper that does more than add it; rewrite it by hand"
        if helper is None or caller_def is None or info.block is not helper.body or info.index != len(helper.body) - 1:
            raise Skip(why)
        args = helper.args
        params = [a.arg for a in (*args.posonlyargs, *args.args)]
        method = bool(params) and params[0] == "self"
        if args.vararg or args.kwarg or args.kwonlyargs or args.defaults or len(params) != 1 + method:
            raise Skip(why)
        scores = params[-1]
        ret = helper.body[-1]
        if not (isinstance(ret, ast.Return) and isinstance(ret.value, ast.BinOp) and isinstance(ret.value.op, ast.Add)
                and span_of(ret.value) == node.span):
            raise Skip(why)
        sides = [ret.value.left, ret.value.right]
        plain = [e for e in sides if isinstance(e, ast.Name) and e.id == scores]
        if len(plain) != 1 or scores in read_names(sides[1 - sides.index(plain[0])]):
            raise Skip(why)
        pre = helper.body[:-1]
        for stmt in pre:
            if not isinstance(stmt, (ast.Assign, ast.AnnAssign)) or scores in _loads(stmt) \
                    or any(isinstance(n, (ast.Yield, ast.YieldFrom, ast.Await)) for n in ast_walk(stmt)):
                raise Skip(why)
        if not method and any(isinstance(n, ast.Name) and n.id == "self" for n in ast_walk(helper)):
            raise Skip(why)
        locals_ = set().union(*(stored_names(s) for s in pre))
        free = set().union(*(_loads(s) for s in helper.body)) - locals_ - {scores, "self"}
        caller_names = {n.id for n in ast_walk(caller_def) if isinstance(n, ast.Name)}
        caller_stored = {n.id for n in ast_walk(caller_def) if isinstance(n, ast.Name)
                         and isinstance(n.ctx, (ast.Store, ast.Del))} | {a.arg for a in ast_walk(caller_def.args)
                                                                          if isinstance(a, ast.arg)}
        clash = (locals_ & caller_names) | (({f.split(".")[0] for f in free} - {"self"}) & caller_stored)
        if clash:
            raise Skip(f"the helper's `{sorted(clash)[0]}` is also a name of its caller; rewrite it by hand")
        # The caller's statement: ``x = self.<helper>(x)`` (or ``<helper>(x)``), the only call.
        calls = []
        for stmt in ast_walk(caller_def):
            value = stmt.value if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 else None
            if isinstance(value, ast.Call) and (
                    (method and isinstance(value.func, ast.Attribute) and value.func.attr == helper.name
                     and isinstance(value.func.value, ast.Name) and value.func.value.id == "self")
                    or (not method and isinstance(value.func, ast.Name) and value.func.id == helper.name)):
                calls.append((stmt, value))
        if len(calls) != 1 or calls[0][1].keywords or len(calls[0][1].args) != 1 \
                or isinstance(calls[0][1].args[0], ast.Starred):
            raise Skip("the helper adding the bias is called in other ways; rewrite it by hand")
        stmt = calls[0][0]
        self.helper_steps[span_of(stmt)] = pre
        moved = replace(node, stmt=span_of(stmt))
        for role, value in self.roles.items():
            if value is node:
                self.roles[role] = moved
        return [moved if n is node else n for n in nodes]

    def _inline_attention_helper(self, nodes: list, outside: list, roles: dict) -> list | None:
        """A helper that computes the probabilities from its parameters and returns them, the
        caller taking them to the context: EDM's ``w = AttentionOp.apply(q, k)`` then ``a =
        torch.einsum("nqk,nck->ncq", w, v)``, with the static ``forward`` of a
        ``torch.autograd.Function`` computing ``einsum(q, k / sqrt(c)).softmax(dim=2)`` (or a
        function of the file, or a method of the caller's class called on ``self``).  The fused
        path replaces the helper's work and the caller's step together: at the caller's call
        the helper's other statements run (their values are the fused call's operands, under
        the helper's names), its steps do not, and the product with v becomes the fused call.

        Taken only where that is the same computation, by the data flow: the helper returns
        the probabilities alone (the value of its last step), is called once in the file, as
        the value of ``name = helper(...)`` handed each parameter by a name of the caller that
        is that parameter's own name (so every text read in the helper means the same in the
        caller), binds no name the caller uses and reads no module name the caller binds; its
        other statements are plain assignments no step reads a later value of, or records on
        an autograd Function's ``ctx`` (for its backward, which the fused call's own gradient
        replaces).  Returns None where the match is not of this form (the context not in the
        caller, the steps in more than one other function)."""
        caller_info = self.index.stmt(self.roles["c"].stmt)
        caller_def = self._function(caller_info.stmt) if caller_info is not None else None
        infos = [self.index.stmt(n.stmt) for n in outside]
        if caller_def is None or any(i is None for i in infos):
            return None
        funcs = {id(f): f for f in (self._function(i.stmt) for i in infos)}
        helper = next(iter(funcs.values())) if len(funcs) == 1 else None
        if not isinstance(helper, ast.FunctionDef) or helper is caller_def \
                or any(n.func == self.roles["s0"].func for n in nodes if roles.get(id(n)) == "c"):
            return None
        tree = self.index.tree
        owner = next((c for c in tree.body if isinstance(c, ast.ClassDef) and any(s is helper for s in c.body)), None)
        kind = None
        if any(f is helper for f in tree.body) and (not helper.decorator_list or self._plain_script(helper)):
            kind = "function"
        elif owner is not None and function_forward(owner.name, self.names) is helper:
            kind = "autograd"
        elif owner is not None and owner is self._class() and not helper.decorator_list:
            kind = "method"
        if kind is None:
            return None
        said = f"{owner.name}.{helper.name}" if owner is not None else helper.name
        computed = "probabilities" if any(roles.get(id(n), "").startswith("p") for n in outside) else "scores"
        why = f"the match spans the helper `{said}` (line {helper.lineno}), which computes the {computed} " \
              f"its caller `{caller_def.name}` takes to the context, "
        args = helper.args
        params = [a.arg for a in (*args.posonlyargs, *args.args)]
        lead = params[:1] if kind in ("autograd", "method") else []
        if kind in ("autograd", "method") and not lead:
            return None
        params = params[len(lead):]
        flags: dict[str, bool] = {}  # (a flag the one call hands a constant: its arm picked)
        if args.defaults and not (args.vararg or args.kwarg or args.kwonlyargs):
            flags = _picked_flags(helper, kind, params, caller_def)
            params = [p for p in params if p not in flags]
        if args.vararg or args.kwarg or args.kwonlyargs or (args.defaults and not flags) or not params:
            raise Skip(why + "and takes its arguments in a way not read here; rewrite it by hand")
        if any(isinstance(n, (ast.Global, ast.Nonlocal, ast.Yield, ast.YieldFrom, ast.Await, ast.FunctionDef,
                              ast.AsyncFunctionDef, ast.ClassDef)) for n in ast_walk(helper) if n is not helper):
            raise Skip(why + "and does more than compute values; rewrite it by hand")
        body = list(helper.body)
        if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                and isinstance(body[0].value.value, str):
            body = body[1:]  # the docstring
        if flags:
            body = body[:-1] + _picked_arm(body[-1], flags)
        if not body or not isinstance(body[-1], ast.Return) or body[-1].value is None:
            raise Skip(why + "and does not end in returning them; rewrite it by hand")
        # The returned value: the last step's value, or the name its statement binds.
        last = max(outside, key=lambda n: (n.span[2], n.span[3]))
        ret = body[-1].value
        step_spans = {n.stmt for n in outside}
        steps = [st for st in body[:-1] if span_of(st) in step_spans]
        # (a tuple may hand back beside them names of the helper the caller binds under the same
        # names: ``return self.drop(attn), v`` to ``attn, v = self.weights(x)``)
        elts = ret.elts if isinstance(ret, ast.Tuple) else [ret]

        def is_probs(e) -> bool:
            if span_of(body[-1]) in step_spans:
                return span_of(e) == last.span
            return isinstance(e, ast.Name) and bool(steps) and span_of(steps[-1]) == last.stmt \
                and isinstance(steps[-1], ast.Assign) and len(steps[-1].targets) == 1 \
                and isinstance(steps[-1].targets[0], ast.Name) and steps[-1].targets[0].id == e.id \
                and span_of(steps[-1].value) == last.span

        at = [i for i, e in enumerate(elts) if is_probs(e)]
        others = [e for i, e in enumerate(elts) if i not in at]
        if len(at) != 1 or not all(isinstance(e, ast.Name) for e in others):
            raise Skip(why + "and returns more than them; rewrite it by hand")
        caller_args = [*caller_def.args.posonlyargs, *caller_def.args.args]
        # (a method's instance, read by the caller under the same name: the test moves there as it is)
        same = kind == "method" and bool(caller_args) and lead == [caller_args[0].arg]
        nested = _setting_scales(body[:-1], step_spans, {n.stmt: roles.get(id(n)) for n in outside},
                                 lead if same else [])
        if len(steps) + len(nested) + (span_of(body[-1]) in step_spans) != len(step_spans):
            raise Skip(why + "with steps nested in its statements; rewrite it by hand")
        for st in steps:
            if not (isinstance(st, ast.Assign) and len(st.targets) == 1 and isinstance(st.targets[0], ast.Name)):
                raise Skip(why + f"with a step at line {st.lineno} that is no assignment of one name; "
                           "rewrite it by hand")
        ctx = lead[0] if kind == "autograd" else None
        kept: list[ast.stmt] = []
        step_reads: set[str] = set()
        step_stored: set[str] = set()
        for st in body[:-1]:
            if span_of(st) in step_spans or span_of(st) in nested:
                step_reads |= _loads(st)
                step_stored |= stored_names(st)
                continue
            on_ctx = ctx is not None and (
                (isinstance(st, ast.Expr) and isinstance(st.value, ast.Call)
                 and isinstance(st.value.func, ast.Attribute) and isinstance(st.value.func.value, ast.Name)
                 and st.value.func.value.id == ctx)
                or (isinstance(st, ast.Assign) and all(isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name)
                                                       and t.value.id == ctx for t in st.targets)))
            if on_ctx:
                continue  # (what the backward reads: the fused call's gradient replaces it)
            if not (isinstance(st, ast.Assign) and all(isinstance(n, ast.Name) for t in st.targets
                                                       for n in ast_walk(t) if isinstance(n, ast.expr)
                                                       and not isinstance(n, (ast.Tuple, ast.List)))):
                raise Skip(why + f"and runs a statement at line {st.lineno} that is no plain assignment; "
                           "rewrite it by hand")
            if _loads(st) & step_stored:
                raise Skip(why + f"and reads a value of the attention at line {st.lineno}; rewrite it by hand")
            if stored_names(st) & step_reads:
                raise Skip(why + f"and reassigns at line {st.lineno} a name a step has read; rewrite it by hand")
            kept.append(st)
        if ctx is not None and any(isinstance(n, ast.Name) and n.id == ctx for st in kept for n in ast_walk(st)):
            raise Skip(why + "and reads its ctx; rewrite it by hand")
        exports = [e.id for e in others]
        if set(exports) & step_stored or len(set(exports)) != len(exports):
            said_ = sorted(set(exports) & step_stored) or exports
            raise Skip(why + f"and returns beside them `{said_[0]}`, a value of the attention (or twice); "
                       "rewrite it by hand")
        # One call in the whole file: ``name = <helper>(...)`` in the caller, the arguments the
        # caller's names that are the parameters' own.
        def is_call(value) -> bool:
            func = value.func if isinstance(value, ast.Call) else None
            if kind == "function":
                return isinstance(func, ast.Name) and func.id == helper.name
            if kind == "method":
                return isinstance(func, ast.Attribute) and func.attr == helper.name \
                    and isinstance(func.value, ast.Name) and func.value.id == "self"
            return isinstance(func, ast.Attribute) and func.attr == "apply" \
                and isinstance(func.value, ast.Name) and func.value.id == owner.name

        name = helper.name if kind != "autograd" else f"{owner.name}.apply"
        calls = [n for n in ast_walk(tree) if isinstance(n, ast.Call) and is_call(n)]
        mentions = [n for n in ast_walk(tree) if (isinstance(n, ast.Name) and n.id == (helper.name if kind ==
                    "function" else owner.name if kind == "autograd" else None))
                    or (kind == "method" and isinstance(n, ast.Attribute) and n.attr == helper.name)]
        if kind != "autograd":
            # The fused path leaves the helper as it is and runs its other statements in the caller
            # alone: other callers (a visualisation, another module's `m._get_weights(x, h)`) still
            # call it and get what they got.  Only where every other mention is a call (the helper
            # not rebound, stored or handed on) and the caller calls it once.
            calls = [c for c in calls if any(n is c for n in ast_walk(caller_def))]
            if not calls and kind == "method":
                calls = _dispatched_calls(caller_def)  # ``fn = getattr(self, self.mode); w = fn(q, k)``
                if len(calls) == 1:
                    call_, attr_ = calls[0]
                    local = call_.func.id if isinstance(call_.func, ast.Name) else None
                    self.dispatch_setting = (attr_, helper.name, owner.name, local, call_)
                calls = [c for c, _ in calls]
            mentions = _uncalled_mentions(tree, mentions) + [c.func for c in calls]
        if len(calls) != 1 or len(mentions) != 1:
            raise Skip(why + f"and `{name}` is called or named elsewhere in the file (the fused path would replace "
                       "its work for this caller alone); rewrite it by hand")
        call = calls[0]
        call_stmt = next((st for st in ast_walk(caller_def) if isinstance(st, ast.Assign) and st.value is call
                          and len(st.targets) == 1), None)
        target = call_stmt.targets[0] if call_stmt is not None else None
        names_ = target.elts if isinstance(target, ast.Tuple) and isinstance(ret, ast.Tuple) else [target]
        if call_stmt is None or len(names_) != len(elts) or not all(isinstance(t, ast.Name) for t in names_) \
                or any(names_[i].id != e.id for i, e in enumerate(elts) if i not in at):
            raise Skip(why + "and is not called as the value of an assignment of what it returns to names (those "
                       "beside the probabilities its own); rewrite it by hand")
        if any(k.arg not in flags for k in call.keywords) or len(call.args) != len(params) \
                or not all(isinstance(a, ast.Name) for a in call.args):
            raise Skip(why + f"and is handed at line {call.lineno} other than its parameters' own names or other "
                       "names of the caller; rewrite it by hand")
        caller_names = {n.id for n in ast_walk(caller_def) if isinstance(n, ast.Name)} \
            | {a.arg for a in ast_walk(caller_def.args) if isinstance(a, ast.arg)}
        caller_bound = {n.id for n in ast_walk(caller_def) if isinstance(n, ast.Name)
                        and isinstance(n.ctx, (ast.Store, ast.Del))} \
            | {a.arg for a in ast_walk(caller_def.args) if isinstance(a, ast.arg)}
        locals_ = set().union(*(stored_names(st) for st in body[:-1])) - set(params)
        free = set().union(*(_loads(st) for st in body)) - locals_ - set(params) - set(lead)
        made = set().union(*(stored_names(st) for st in kept))  # (bound in the caller on the fused path)
        renames = self._helper_renames(helper, body, params, call, locals_, caller_names, exports, why)
        if renames:
            made = {renames.get(n, n) for n in made}
            step_stored = {renames.get(n, n) for n in step_stored}
        clash = sorted(((made - set(exports)) & caller_names) | (free & caller_bound))
        if clash:
            raise Skip(why + f"and `{clash[0]}` is a name of both; rewrite it by hand")
        if kind == "method" and any(lead[0] in _loads(st) for st in body) and lead[0] != "self":
            raise Skip(why + "and names its instance otherwise than `self`; rewrite it by hand")
        if renames:
            self.helper_renames = {(n.lineno, n.col_offset, n.end_col_offset): renames[n.id] for n in ast_walk(helper)
                                   if isinstance(n, ast.Name) and n.id in renames}
        self.helper_steps[span_of(call_stmt)] = kept
        self.helper_call = call_stmt
        self.helper_inlined = True
        self.helper_conditions = {role: if_stmt.test for role, if_stmt in nested.values()}
        self.helper_exports = set(exports)
        self.helper_made = made
        self.helper_step_stored = step_stored
        self.helper_def, self.helper_params = helper, list(params)
        for param, arg in zip(params, call.args):
            self.helper_args[param] = (arg.id, arg)
        if kind == "method":
            self.inlined_method = (owner.name, helper.name)
        moved_nodes = {id(n): replace(n, stmt=span_of(call_stmt)) for n in outside}
        for role, value in self.roles.items():
            if id(value) in moved_nodes:
                self.roles[role] = moved_nodes[id(value)]
        return [moved_nodes.get(id(n), n) for n in nodes]

    def _inline_helper_chain(self, nodes: list, outside: list, roles: dict) -> list | None:
        """A match whose steps run in a chain of methods of the class nested in one statement of
        the caller: x-metaformer-style ``scores = self.sparsify(self.adjust(self.scale_scores(
        self.compute_scores(q, k))))`` with ``compute_scores`` forming the product (after
        statements that only prepare q and k: ``if self.l2: q, k = <normalized>``),
        ``scale_scores`` returning the scaled scores, and the outer methods returning the scores
        unchanged unless a setting holds (``if self.topk and ...: <in-place fill>``; ``return
        scores``), the softmax, dropout and context product in the caller.

        The fused path replaces the whole statement: the innermost method's statements before
        its return run in the caller (binding only its parameters, which the caller hands under
        the same names and reads nowhere after the statement), its product and the other
        step methods' scales become the fused call.  Taken only where every method of the chain
        is a plain method of the class called once in the file, each step method returns the
        value of its steps, each outer method is ``if <setting> ...: ...`` blocks then ``return``
        of its one parameter (the guard sends a set setting to the original), and the match has
        no mask, bias or fill.  A subclass overriding any of them takes the original.  Returns
        None where the match is not of this form."""
        allowed = {"s0", "p0", "p1", "c", *SCALE_STEPS}
        if not set(self.roles) <= allowed:
            return None
        caller_info = self.index.stmt(self.roles["c"].stmt)
        caller_def = self._function(caller_info.stmt) if caller_info is not None else None
        cls = self._class()
        if caller_def is None or cls is None or not any(s is caller_def for s in cls.body):
            return None
        holders: dict[str, list] = {}
        for node in outside:
            info = self.index.stmt(node.stmt)
            func = self._function(info.stmt) if info is not None else None
            if func is None or not any(s is func for s in cls.body):
                return None
            holders.setdefault(func.name, []).append(node)
        if len(holders) < 2:
            return None
        methods = {f.name: f for f in cls.body if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))}
        stmt = next((s for s in caller_def.body if isinstance(s, ast.Assign) and len(s.targets) == 1
                     and isinstance(s.targets[0], ast.Name) and any(isinstance(c, ast.Call) and _self_method(c) in
                                                                    holders for c in ast_walk(s.value))), None)
        if stmt is None:
            return None
        chain: list[ast.Call] = []  # outermost first
        value = stmt.value
        while isinstance(value, ast.Call) and _self_method(value) in methods:
            chain.append(value)
            if len(value.args) == 1 and not value.keywords and isinstance(value.args[0], ast.Call) \
                    and _self_method(value.args[0]) in methods:
                value = value.args[0]
                continue
            break
        names = [_self_method(c) for c in chain]
        said = " -> ".join(f"`{n}`" for n in reversed(names))
        why = f"the match spans the chain of methods {said} called at line {stmt.lineno}, "
        steps_in = [n for n in names if n in holders]
        if set(steps_in) != set(holders) or names[len(names) - len(steps_in):] != steps_in:
            return None  # (the step methods must be the innermost of the chain)
        if len(set(names)) != len(names):
            raise Skip(why + "one of them twice; rewrite it by hand")
        inner = chain[-1]
        if inner.keywords or not inner.args or not all(isinstance(a, ast.Name) for a in inner.args):
            raise Skip(why + "the innermost handed other than names; rewrite it by hand")
        tree = self.index.tree
        compared = {id(e) for n in ast_walk(tree) if isinstance(n, ast.Compare)
                    and all(isinstance(op, (ast.Is, ast.IsNot)) for op in n.ops) for e in (n.left, *n.comparators)}
        for name in names:
            func = methods[name]
            # (its one mention the chain's call; a fused path's own `type(self).m is not C.m` aside)
            mentions = [n for n in ast_walk(tree) if ((isinstance(n, ast.Attribute) and n.attr == name)
                                                      or (isinstance(n, ast.Name) and n.id == name))
                        and id(n) not in compared]
            if isinstance(func, ast.AsyncFunctionDef) or func.decorator_list or len(mentions) != 1 \
                    or any(isinstance(c, ast.ClassDef) and c is not cls and any(
                        isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef)) and f.name == name for f in c.body)
                           for c in tree.body):
                raise Skip(why + f"and `{name}` is decorated, defined again or named elsewhere in the file (the fused "
                           "path would replace its work for this caller alone); rewrite it by hand")
            args = func.args
            if args.vararg or args.kwarg or args.kwonlyargs or args.defaults or args.posonlyargs \
                    or not args.args or args.args[0].arg != "self":
                raise Skip(why + f"and `{name}` takes its arguments in a way not read here; rewrite it by hand")
            if any(isinstance(n, (ast.Global, ast.Nonlocal, ast.Yield, ast.YieldFrom, ast.Await, ast.FunctionDef,
                                  ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)) for n in ast_walk(func)
                   if n is not func):
                raise Skip(why + f"and `{name}` does more than compute values; rewrite it by hand")
        guard_attrs: list[ast.expr] = []
        for call, name in zip(chain, names):
            if name in holders:
                continue
            # an outer method: its settings' ifs, then its parameter returned unchanged
            func = methods[name]
            body = _without_docstring(func.body)
            params = [a.arg for a in func.args.args[1:]]
            if len(params) != 1 or len(call.args) != 1 or not body or not isinstance(body[-1], ast.Return) \
                    or not (isinstance(body[-1].value, ast.Name) and body[-1].value.id == params[0]):
                raise Skip(why + f"and `{name}` does more than return the scores unless a setting holds; "
                           "rewrite it by hand")
            for st in body[:-1]:
                setting = _setting_of(st.test) if isinstance(st, ast.If) and not st.orelse else None
                if setting is None:  # (its body runs only where the setting is set: the original's path)
                    raise Skip(why + f"and `{name}` does more than return the scores unless a setting holds "
                               f"(line {st.lineno}); rewrite it by hand")
                effect = self._property_effect(setting)
                if effect is not None:
                    raise Skip(why + f"and the setting `{self._text(setting)}` reads {effect}; rewrite it by hand")
                guard_attrs.append(setting)
        # the step methods: the innermost forms the product after statements preparing its
        # parameters; every step method returns the value of its steps
        kept: list[ast.stmt] = []
        made: set[str] = set()
        for i, name in enumerate(steps_in):
            func = methods[name]
            body = _without_docstring(func.body)
            params = [a.arg for a in func.args.args[1:]]
            own = holders[name]
            last = max(own, key=lambda n: (n.span[2], n.span[3]))
            if not body or not isinstance(body[-1], ast.Return) or body[-1].value is None \
                    or span_of(body[-1].value) != last.span \
                    or any(n.stmt != span_of(body[-1]) for n in own):
                raise Skip(why + f"and `{name}` does more than return the value of its steps; rewrite it by hand")
            if i < len(steps_in) - 1:
                # (a step method the next one's result is handed to: its one parameter, read once)
                reads = [n for n in ast_walk(body[-1]) if isinstance(n, ast.Name) and n.id in params]
                if len(body) != 1 or len(params) != 1 or len(reads) != 1:
                    raise Skip(why + f"and `{name}` does more than take the scores to its steps; rewrite it by hand")
                continue
            if len(params) != len(inner.args) or any(a.id != p for a, p in zip(inner.args, params)):
                raise Skip(why + f"and `{name}` is handed other than its parameters' own names; rewrite it by hand")
            for st in body[:-1]:
                if not _preparing(st):
                    raise Skip(why + f"and `{name}` runs a statement at line {st.lineno} that is no plain assignment "
                               "(or one under a setting); rewrite it by hand")
                effect = self._property_effect(st.test) if isinstance(st, ast.If) else None
                if effect is not None:
                    raise Skip(why + f"and its test at line {st.lineno} reads {effect}; rewrite it by hand")
                handed = self._hands_self(st, methods)
                if handed is not None:
                    # (the guard reads the settings before these statements run: a call handed
                    # the module could set one, review66's `q = _arm(self, q)`)
                    raise Skip(why + f"and line {st.lineno} hands the module to `{handed}`, which could change "
                               "its settings; rewrite it by hand")
                kept.append(st)
                made |= _chain_binds(st)
            if not made <= set(params):
                raise Skip(why + f"and `{name}` binds `{min(made - set(params))}`, no parameter of it; "
                           "rewrite it by hand")
            # (a comprehension's own targets aside: `x` of `(f(x) for x in (q, k))`)
            own_names = {n.id for st in body for c in ast_walk(st) if isinstance(c, ast.comprehension)
                         for n in ast_walk(c.target) if isinstance(n, ast.Name)}
            free = {r.split(".")[0] for st in body for r in _loads(st)} - set(params) - {"self"} - own_names
            bound = {n.id for n in ast_walk(caller_def) if isinstance(n, ast.Name)
                     and isinstance(n.ctx, (ast.Store, ast.Del))} | {a.arg for a in ast_walk(caller_def.args)
                                                                      if isinstance(a, ast.arg)}
            clash = sorted(free & bound)
            if clash:
                raise Skip(why + f"and `{clash[0]}` is a name of both; rewrite it by hand")
            # the caller's names the statements rebind on the fused path: read nowhere after the call
            later = sorted({n.id for s in caller_def.body if s.lineno > stmt.end_lineno for n in ast_walk(s)
                            if isinstance(n, ast.Name) and n.id in made})
            if later:
                raise Skip(why + f"and `{name}` rebinds `{later[0]}`, which the caller reads after the call; "
                           "rewrite it by hand")
        for name in names:
            self.chain_methods.append((cls.name, name))
        self.chain_settings.extend(guard_attrs)
        innermost = methods[steps_in[-1]]
        self.helper_steps[span_of(stmt)] = kept
        self.helper_call = stmt
        self.helper_inlined = True
        self.helper_made = made
        self.helper_def, self.helper_params = innermost, [a.arg for a in innermost.args.args[1:]]
        for param, arg in zip(self.helper_params, inner.args):
            self.helper_args[param] = (arg.id, arg)
        moved_nodes = {id(n): replace(n, stmt=span_of(stmt)) for n in outside}
        for role, value in self.roles.items():
            if id(value) in moved_nodes:
                self.roles[role] = moved_nodes[id(value)]
        return [moved_nodes.get(id(n), n) for n in nodes]

    def _overridden_term(self, owner: str, name: str, edits) -> str:
        """The guard term sending an instance whose method ``name`` is not ``owner``'s own to the
        original: a subclass overriding it, or a function stored on the instance (``self.m = f``,
        ``types.MethodType``), which ``type(self)`` does not see (review66)."""
        return (f"(False if {self._is_scripting(edits)}() else (type(self).{name} is not {owner}.{name} "
                f"or {name!r} in self.__dict__))")

    def _hands_self(self, stmt: ast.stmt, methods: dict) -> str | None:
        """The text of a call in ``stmt`` that could change the module's state: a method of the
        class (``self.<method>(...)``), or a call handed ``self`` or a member of it that is not a
        ``torch`` function nor a method of another value (``q.mul(self.scale)``).  None where there
        is no such call (_inline_helper_chain)."""
        for call in (n for n in ast_walk(stmt) if isinstance(n, ast.Call)):
            if _self_method(call) in methods:
                return self._text(call.func)
            if (self.names.resolve(call.func) or "").startswith("torch."):
                continue
            func = call.func
            root = func.value if isinstance(func, ast.Attribute) else None
            while isinstance(root, (ast.Attribute, ast.Subscript, ast.Call)):
                root = root.func if isinstance(root, ast.Call) else root.value
            if root is not None and not (isinstance(root, ast.Name) and root.id == "self"):
                continue
            if any(isinstance(n, ast.Name) and n.id == "self" for a in (*call.args, *(k.value for k in call.keywords))
                   for n in ast_walk(a)):
                return self._text(call.func)
        return None

    def _plain_script(self, helper: ast.FunctionDef) -> bool:
        """Is ``helper`` a function compiled by a bare ``@torch.jit.script`` whose body reads the
        same run by Python (sockeye's ``interleaved_matmul_encdec_qk``: sizes, views, a product)?
        TorchScript runs such a body as Python would for the arguments it accepts; what it does
        otherwise is named by ``torch.jit`` inside the body (``is_scripting()`` is True only there,
        ``annotate``, ``isinstance`` refinements of ``Optional``): a body that names ``torch.jit``
        or tests a type is not read here.  (The inliner's own checks still hold: plain assignments
        and steps, one call, no state written.)"""
        if len(helper.decorator_list) != 1 or self.names.resolve(helper.decorator_list[0]) != "torch.jit.script":
            return False
        args = helper.args
        for arg in (*args.posonlyargs, *args.args, *args.kwonlyargs):
            # (TorchScript converts what the caller hands a parameter annotated as a number -- a
            # 0-d Parameter handed to ``scale: float`` becomes a Python float, with no gradient --
            # which the inlined text, run by Python, would not: review59.  An ``int`` or ``bool``
            # carries no gradient either way; anything else but a tensor is not read here)
            annotation = arg.annotation
            if annotation is not None and (self.names.resolve(annotation) or "") != "torch.Tensor" \
                    and not (isinstance(annotation, ast.Name) and annotation.id in ("int", "bool")):
                return False
        for node in (n for st in helper.body for n in ast_walk(st)):
            if isinstance(node, (ast.Attribute, ast.Name)) and (self.names.resolve(node) or "").startswith("torch.jit"):
                return False
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("isinstance", "type"):
                return False
        return True

    def _helper_renames(self, helper, body: list, params: list[str], call: ast.Call, locals_: set[str],
                        caller_names: set[str], exports: list[str], why: str) -> dict[str, str]:
        """The names the helper's text takes when its statements run in the caller
        (:meth:`_inline_attention_helper`): each parameter the caller hands a name of its own
        (hsir's ``f = self.count_cov_second(theta_x)`` to ``def count_cov_second(self, input)``)
        is read as that name, and each local the caller also names (its ``x``) under a fresh
        one, so that the fused path reads q and k as the parameters bind them and leaves the
        caller's names as they were.  Empty where every argument is its parameter's own name
        (nothing to rename).  Declined where the helper rebinds a parameter (the caller's name
        would be rebound), reads the caller's argument's name as its own (it would be captured), hands
        back more than the probabilities or its lines are not ASCII."""
        renames = {p: a.id for p, a in zip(params, call.args) if a.id != p}
        if not renames:
            return {}
        if exports:
            raise Skip(why + f"is handed at line {call.lineno} other than its parameters' own names of the caller "
                       "and returns more than them; rewrite it by hand")
        bound = set().union(*(stored_names(st) for st in body))
        rebound = sorted(bound & set(params))
        if rebound:
            raise Skip(why + f"and rebinds its parameter `{rebound[0]}`, handed `{renames.get(rebound[0], rebound[0])}` "
                       "of the caller; rewrite it by hand")
        written = {n.id for n in ast_walk(helper) if isinstance(n, ast.Name)} \
            | {a.arg for a in ast_walk(helper.args) if isinstance(a, ast.arg)}
        captured = sorted(set(renames.values()) & (written - set(renames) - locals_))
        if captured:
            raise Skip(why + f"and names `{captured[0]}`, which the caller hands it, itself; rewrite it by hand")
        lines = self.index.lines[helper.lineno - 1:helper.end_lineno]
        if not all(line.isascii() for line in lines):
            raise Skip(why + "and is handed other than its parameters' own names in lines that are not ASCII; "
                       "rewrite it by hand")
        taken = self.index.identifiers | caller_names | written | set(renames.values())
        for name in sorted(locals_ & (caller_names | set(renames.values()))):
            fresh = f"{name}_{helper.name}"
            while fresh in taken:
                fresh += "_"
            renames[name] = fresh
            taken.add(fresh)
        return renames

    def _inline_fill_helper(self, nodes: list, node, role: str) -> list:
        """A match whose fill is in a helper (method of the class or function of the file) the
        caller hands the scores to: retro's ``attn = self.mask_attention(attn)`` with

            def mask_attention(self, attn):
                if not self.is_causal:
                    return attn
                mask = torch.tril(attn.new_ones(attn.shape[-2:]))
                return attn.masked_fill(mask == 0, float('-inf'))

        A helper that reads the scores only for what they are (sizes, device, dtype), and
        otherwise only returns them or ``masked_fill``s them with -inf or the dtype's extreme,
        returns for a stand-in of zeros exactly the additive mask: 0 where it keeps, the fill
        where it fills (``s + (-inf)`` is -inf; ``s + finfo.min`` rounds to finfo.min for any
        score under 2**100).  The fused path calls it on such a stand-in (q's dtype: the scores
        must have it) and adds the result to the mask.  Declined with the reason where the
        helper reads the scores' values, fills with another value, may fill whole rows with
        -inf from its other arguments (the fused call then gives zeros where the original gives
        NaN), fills with a finite value beside other mask terms (where they are -inf too the
        sums differ), or is called in another way.  A finite fill that follows the helper's
        other arguments may fill whole rows, where the fused call's gradients differ: a
        training step with such a row takes the original (the guard reads the helper's mask).  Returns the nodes with the fill moved to the
        caller's statement (the fill step, which :meth:`_fill` then leaves to this part)."""
        info = self.index.stmt(node.stmt)
        helper = self._function(info.stmt) if info is not None else None
        caller_def = self._function(self.index.stmt(self.roles["c"].stmt).stmt)
        name = getattr(helper, "name", "?")
        why = f"the fill is in the helper `{name}`, which "
        if helper is None or caller_def is None or isinstance(helper, ast.AsyncFunctionDef) or helper.decorator_list:
            raise Skip(f"the masked_fill is in a helper ({name}) that cannot be called on a stand-in of the scores; "
                       "rewrite it by hand")
        args = helper.args
        params, method, scores = _helper_params(helper, why)
        kind, reason = _fill_only(helper, scores)
        if kind is None:
            raise Skip(why + reason + "; rewrite it by hand")
        if method and any(c is not self._class() and any(isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))
                                                          and f.name == helper.name for f in c.body)
                          for c in self.names.classes.values()):
            raise Skip(why + "another class of the file defines too (a subclass's may read the scores); "
                       "rewrite it by hand")
        others = {p for p in params if p not in ("self", scores)} | {a.arg for a in args.kwonlyargs}
        loaded = {n.id for n in ast_walk(helper) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
        if kind == "inf" and loaded & others:
            raise Skip(why + f"fills with -inf where its argument `{sorted(loaded & others)[0]}` says: a row it "
                       "fills entirely is NaN in the original and zeros in the fused call; rewrite it by hand")
        if kind == "finite" and any(r in self.roles and r != role for r in (*ADD_STEPS, *FILL_STEPS)):
            raise Skip(why + "fills with a finite value beside other mask terms, which the fused call would add "
                       "to it; rewrite it by hand")
        if any(r in self.roles for r in VIEW_STEPS) or self.scores_t:
            raise Skip(why + "is handed scores that are reshaped or written (keys, queries); rewrite it by hand")
        self._check_stand_in(why, role, "a stand-in")
        # The caller's statement: ``x = self.<helper>(x, ...)`` (or ``<helper>(x, ...)``), its only call.
        # (or ``x = <helper>(x, m) if c else x``, a choice step: _choice_steps, whose test the
        # part then runs under)
        def helper_call(value) -> bool:
            return _calls_helper(value, helper.name, method)

        calls = [(None, value) for value in ast_walk(caller_def) if helper_call(value)]
        if len(calls) == 1:
            for stmt in ast_walk(caller_def):
                held = stmt.value if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 else None
                if held is calls[0][1] or (isinstance(held, ast.IfExp) and held.body is calls[0][1]
                                           and isinstance(held.orelse, ast.Name)
                                           and isinstance(stmt.targets[0], ast.Name)
                                           and held.orelse.id == stmt.targets[0].id):
                    calls = [(stmt, calls[0][1])]
                    if held is not calls[0][1] and span_of(stmt) not in self.choice_ifs:
                        pseudo = ast.If(test=held.test, body=[stmt], orelse=[])
                        ast.copy_location(pseudo, stmt)
                        self.choice_ifs[span_of(stmt)] = pseudo
        if len(calls) != 1 or calls[0][0] is None or not calls[0][1].args or any(isinstance(a, ast.Starred) for a in calls[0][1].args) \
                or any(kw.arg is None for kw in calls[0][1].keywords):
            raise Skip(why + "is called in other ways; rewrite it by hand")
        stmt, call = calls[0]
        first = call.args[0]
        if not (isinstance(first, ast.Name) and isinstance(stmt.targets[0], ast.Name) and stmt.targets[0].id == first.id):
            raise Skip(why + "is called in other ways; rewrite it by hand")
        rest = [*call.args[1:], *(kw.value for kw in call.keywords)]
        if any(isinstance(n, ast.Name) and n.id == first.id for a in rest for n in ast_walk(a)):
            raise Skip(why + "is handed the scores again in another argument; rewrite it by hand")
        q_atom, shape = self._stand_in_shape()
        stand_in = f"{q_atom}.new_zeros(()).expand({shape})"
        text = self._stmt_text(call, (span_of(first), stand_in))
        moved = replace(node, stmt=span_of(stmt))
        owner = self._class() if method else None
        if method and (owner is None or not any(c is owner for c in self.index.tree.body)):
            raise Skip(why + "is a method of a class the guard cannot name; rewrite it by hand")
        self.fill_helper = {"text": text, "operand": ast.parse(text, mode="eval").body, "node": moved,
                            "rows": bool(loaded & others), "method": (owner.name, helper.name) if method else None}
        for r, value in self.roles.items():
            if value is node:
                self.roles[r] = moved
        return [moved if n is node else n for n in nodes]

    def _check_stand_in(self, why: str, role: str, what: str) -> None:
        """Skip where a helper run on ``what`` (a stand-in of the scores, made from q) instead of
        the scores at ``role`` may not see what the scores are there: q's dtype lost before it,
        or scores scaled by a tensor whose axes the stand-in may lack.  Shared by the fill and the
        block-bias helpers."""
        if not self._keeps_q_dtype_before(role):
            raise Skip(why + f"would be handed {what} in q's dtype, which the scores may not have there; "
                       "rewrite it by hand")
        if any(r in self.roles and r in SCORE_STEPS[:SCORE_STEPS.index(role)] and not self._number_like(
                self._operand_of(r, SCALE_VARS[r])) for r in SCALE_STEPS):
            raise Skip(why + "is handed scores scaled by a tensor, whose axes the stand-in may lack; "
                       "rewrite it by hand")

    def _block_bias(self, node, role: str) -> None:
        """A bias added into a block of the scores by an item store in the attention's own
        function (graph: ``_block_added``; ``attn[:, :, 1:, 1:] += rel_pos``, ``attn[..] =
        (attn[..].view(..) + rel_h + rel_w).view(..)``): the fused path runs the store on zeros
        of the scores' shape and q's dtype, a new name (``attn_bias = q.new_zeros(shape)`` then
        ``attn_bias[:, :, 1:, 1:] += rel_pos``), which holds the bias padded with zeros to the
        scores' size -- the fused call's mask part (:meth:`_mask`).  Declined with the reason
        where the scores may not have q's dtype or shape there, or a scale follows it."""
        info = self.index.stmt(node.stmt)
        store = info.stmt if info is not None else None
        why = f"the bias at line {node.line} is added into a block of the scores by an item store"
        target = store.targets[0] if isinstance(store, ast.Assign) and len(store.targets) == 1 else \
            store.target if isinstance(store, ast.AugAssign) else None
        if not isinstance(target, ast.Subscript) or not isinstance(target.value, ast.Name):
            raise Skip(why + " that could not be read; rewrite it by hand")
        self._check_zeros_bias(role, why, "of")
        root = target.value.id
        taken = self.index.identifiers
        name = next(n for n in (f"{root}_bias", *(f"{root}_bias{i}" for i in range(2, 99)), "sdpa_block_bias")
                    if n not in taken)
        swaps = [(span_of(n), name) for n in ast_walk(store) if isinstance(n, ast.Name) and n.id == root]
        q_atom, shape = self._stand_in_shape()
        self.block_bias = {"node": node, "role": role, "stmt": store, "name": name,
                           "made": [f"{name} = {q_atom}.new_zeros({shape})", self._text_with(store, swaps)]}

    def _check_zeros_bias(self, role: str, why: str, joint: str) -> None:
        """What :meth:`_block_bias` and :meth:`_loop_bias` both need to build the fused call's
        mask part on zeros of q's dtype and the scores' shape: scores neither reshaped nor
        written transposed, no scale after a bias added before it, and zeros that are the
        scores' dtype and shape where the bias is added.  Raises Skip with ``why`` otherwise."""
        if any(r in self.roles for r in VIEW_STEPS) or self.scores_t:
            raise Skip(why + f" {joint} scores that are reshaped or written (keys, queries); rewrite it by hand")
        if role == "b0" and any(r in self.roles for r in SCALE_STEPS):
            raise Skip(why + " before a scale, which the fused call would not apply to it; rewrite it by hand")
        if not self._keeps_q_dtype_before(role) or any(
                r in self.roles and r in SCORE_STEPS[:SCORE_STEPS.index(role)] and not self._number_like(
                    self._operand_of(r, SCALE_VARS[r])) for r in SCALE_STEPS):
            raise Skip(why + ", where zeros of q's dtype and the product's shape may not be the scores'; "
                       "rewrite it by hand")

    def _loop_bias(self, node, role: str) -> None:
        """Biases added to the scores in a ``for`` loop (AlphaFold/OpenFold-style attention:
        ``for b in biases: a += b`` before the softmax): the loop's body is that one in-place
        add of a bias that does not read the scores.  The fused path runs the same loop on zeros
        of the scores' shape and q's dtype, a new name (``a_bias = q.new_zeros(shape)`` then
        ``for b in biases: a_bias += b``), which then holds the biases' sum as the scores would
        get it (an in-place add keeps the dtype; no bias, zeros: no change) -- the fused call's
        mask part (:meth:`_mask`, as :meth:`_block_bias`'s).  ``a = a + b`` may widen the
        scores' dtype by a bias of another, which no guard can read before the loop without
        iterating it: declined with the reason, as is a loop whose body does more, or (checked
        with the region: :meth:`_check_loop_bias`) whose iterable the attention makes."""
        info = self.index.stmt(node.stmt)
        loop, stmt = info.owner, info.stmt
        why = f"the bias at line {node.line} is added in a loop"
        if loop.orelse or len(loop.body) != 1 or info.field != "body":
            raise Skip(why + " whose body does more than add it; rewrite it by hand")
        if isinstance(stmt, ast.Assign):
            raise Skip(why + " as `a = a + b`, which a bias of another dtype may widen; written `a += b` "
                       "(the scores keep their dtype) it is taken")
        if not (isinstance(stmt, ast.AugAssign) and isinstance(stmt.op, ast.Add) and isinstance(stmt.target, ast.Name)):
            raise Skip(why + " that could not be read; rewrite it by hand")
        root = stmt.target.id
        if root in read_names(stmt.value) or root in read_names(loop.iter) or root in stored_names(loop.target):
            raise Skip(why + " whose bias or iterable reads the scores")
        self._check_zeros_bias(role, why, "to")
        taken = self.index.identifiers
        name = next(n for n in (f"{root}_bias", *(f"{root}_bias{i}" for i in range(2, 99)), "sdpa_loop_bias")
                    if n not in taken)
        q_atom, shape = self._stand_in_shape()
        self.block_bias = {"node": node, "role": role, "stmt": loop, "name": name, "loop": loop,
                           "made": [f"{name} = {q_atom}.new_zeros({shape})",
                                    self._stmt_text(loop, [(span_of(stmt.target), name)])]}

    def _check_loop_bias(self, loop: ast.For, region: list, step_stored: set) -> None:
        """Skip where the loop of :meth:`_loop_bias` reads a value of the attention (its iterable
        or its bias made from the scores) or another statement of the region reads or assigns
        what its iterable reads (a bias list built inside the attention, which the fused path's
        loop, run in the step's place, might not see as the original did)."""
        why = f"the biases added in the loop at line {loop.lineno}"
        body = loop.body[0]
        reads = read_names(loop.iter) | read_names(body.value) | stored_names(loop.target)
        if reads & (step_stored - {body.target.id}) or body.target.id in read_names(body.value):
            raise Skip(why + " are computed by the attention")
        names = read_names(loop.iter)
        for other in region:
            if other is loop:
                continue
            if (read_names(other) | stored_names(other)) & names:
                raise Skip(why + f" are read or built at line {other.lineno}, inside the attention")

    def _inline_block_helper(self, nodes: list, node, role: str) -> list:
        """A match whose bias a helper adds into a block of the scores by an item store (graph:
        ``_block_added``), the caller handing it the scores: birder's MViT v2 ``attn =
        cal_rel_pos_spatial(attn, q, ...)`` with ``attn[:, :, s:, s:] = (attn[:, :, s:,
        s:].view(...) + rel_h + rel_w).view(...)`` then ``return attn``.  A helper that reads
        the scores only in that store (the block it adds to) and returns them on every path
        returns for a tensor of zeros exactly the bias padded with zeros to the scores' size
        (``0 + t`` is t): the fused call's mask part, as the helper makes it of zeros (a real
        tensor, q's dtype, the scores' shape: the store writes into it).  Declined with the
        reason where the helper reads the scores otherwise, the stand-in's shape or dtype may
        not be the scores', or the helper is called in another way.  Returns the nodes with the
        add moved to the caller's statement (:meth:`_mask` takes the part from ``fill_helper``)."""
        info = self.index.stmt(node.stmt)
        helper = self._function(info.stmt) if info is not None else None
        caller_def = self._function(self.index.stmt(self.roles["c"].stmt).stmt)
        name = getattr(helper, "name", "?")
        why = f"the bias is added into a block of the scores in the helper `{name}`, which "
        if helper is None or caller_def is None or isinstance(helper, ast.AsyncFunctionDef) or helper.decorator_list \
                or any(isinstance(n, (ast.Yield, ast.YieldFrom, ast.Await, ast.Global, ast.Nonlocal, ast.Lambda,
                                      ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and n is not helper
                       for n in ast_walk(helper)):
            raise Skip(why + "cannot be called on a stand-in of the scores; rewrite it by hand")
        _, method, scores = _helper_params(helper, why)
        store = info.stmt
        inside = {id(n) for n in ast_walk(store)}
        for n in ast_walk(helper):
            if not (isinstance(n, ast.Name) and n.id == scores) or id(n) in inside:
                continue
            if not isinstance(n.ctx, ast.Load) or not isinstance(self._parent_in(helper, n), ast.Return):
                raise Skip(why + f"also reads or assigns the scores `{scores}` at line {n.lineno}; rewrite it by hand")
        if any(not (isinstance(r.value, ast.Name) and r.value.id == scores) for r in ast_walk(helper)
               if isinstance(r, ast.Return)) or not isinstance(helper.body[-1], ast.Return):
            raise Skip(why + "does not return the scores on every path; rewrite it by hand")
        if any(r in self.roles for r in VIEW_STEPS) or self.scores_t:
            raise Skip(why + "is handed scores that are reshaped or written (keys, queries); rewrite it by hand")
        if role == "b0" and any(r in self.roles for r in SCALE_STEPS):
            raise Skip(why + "adds it before a scale, which the fused call would not apply to it; rewrite it by hand")
        self._check_stand_in(why, role, "zeros")

        def helper_call(value) -> bool:
            return _calls_helper(value, helper.name, method)

        calls = [value for value in ast_walk(caller_def) if helper_call(value)]
        stmts = [st for st in ast_walk(caller_def) if isinstance(st, ast.Assign) and len(st.targets) == 1
                 and len(calls) == 1 and st.value is calls[0]]
        if len(stmts) != 1 or not calls[0].args or any(isinstance(a, ast.Starred) for a in calls[0].args) \
                or any(kw.arg is None for kw in calls[0].keywords):
            raise Skip(why + "is called in other ways; rewrite it by hand")
        stmt, call = stmts[0], calls[0]
        first = call.args[0]
        if not (isinstance(first, ast.Name) and isinstance(stmt.targets[0], ast.Name) and stmt.targets[0].id == first.id):
            raise Skip(why + "is called in other ways; rewrite it by hand")
        rest = [*call.args[1:], *(kw.value for kw in call.keywords)]
        if any(isinstance(n, ast.Name) and n.id == first.id for a in rest for n in ast_walk(a)):
            raise Skip(why + "is handed the scores again in another argument; rewrite it by hand")
        owner = self._class() if method else None
        if method and (owner is None or not any(c is owner for c in self.index.tree.body)):
            raise Skip(why + "is a method of a class the guard cannot name; rewrite it by hand")
        q_atom, shape = self._stand_in_shape()
        text = self._stmt_text(call, (span_of(first), f"{q_atom}.new_zeros({shape})"))
        moved = replace(node, stmt=span_of(stmt))
        self.fill_helper = {"text": text, "operand": ast.parse(text, mode="eval").body, "node": moved,
                            "rows": False, "method": (owner.name, helper.name) if method else None}
        for r, value in self.roles.items():
            if value is node:
                self.roles[r] = moved
        return [moved if n is node else n for n in nodes]

    @staticmethod
    def _parent_in(func: ast.AST, node: ast.AST) -> ast.AST | None:
        return _parents(func).get(node)

    def _inline_probs_helper(self, nodes: list, outside: list, roles: dict) -> list:
        """A module-level helper taking the scores to the probabilities (``outside``: its
        softmax and dropout steps), called once by the caller: unimol's ``attn =
        softmax_dropout(attn, self.dropout, self.training, mask=mask, bias=bias)`` with

            def softmax_dropout(input, dropout_prob, is_training=True, mask=None, bias=None, inplace=True):
                input = input.contiguous()
                if not inplace:
                    input = input.clone()
                if mask is not None:
                    input += mask
                if bias is not None:
                    input += bias
                return F.dropout(F.softmax(input, dim=-1), p=dropout_prob, training=is_training)

        The helper's body may only copy the scores (``.contiguous()``, ``.clone()`` under a
        test of its parameters), add its tensor parameters to them (``x += p`` or ``x = x +
        p``, each under ``if p is not None:`` or always) and return the dropout of the
        softmax.  Each add becomes a part of the mask, read from the call's argument (a name
        or an attribute, so reading it again changes nothing; None or left at a default of
        None: no part), and the dropout's rate and flag are read from the call's arguments.
        The helper changes the scores in place: the fused path never computes them, and a
        later read of the scores' name goes through the checks of values only the original
        computes.  Returns the nodes with the helper's steps at the caller's statement."""
        why = str(self._helper_skip(nodes, roles))
        funcs = {id(f): f for f in (self._function(self.index.stmt(n.stmt).stmt) if self.index.stmt(n.stmt) else None
                                    for n in outside)}
        helper = next(iter(funcs.values())) if len(funcs) == 1 else None
        tree = self.index.tree
        if not isinstance(helper, ast.FunctionDef) or not any(f is helper for f in tree.body) or helper.decorator_list:
            raise Skip(why)
        args = helper.args
        if args.vararg or args.kwarg:
            raise Skip(why)
        positional = [a.arg for a in (*args.posonlyargs, *args.args)]
        params = positional + [a.arg for a in args.kwonlyargs]
        defaults = dict(zip(positional[len(positional) - len(args.defaults):], args.defaults))
        defaults.update({a.arg: d for a, d in zip(args.kwonlyargs, args.kw_defaults) if d is not None})
        if not positional:
            raise Skip(why)
        scores = positional[0]
        body = list(helper.body)
        if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                and isinstance(body[0].value.value, str):
            body = body[1:]  # the docstring
        if not body or not isinstance(body[-1], ast.Return) or body[-1].value is None:
            raise Skip(why)
        last = "p1" if "p1" in {roles.get(id(n)) for n in outside} else "p0"
        ret = body[-1].value
        if span_of(ret) != self.roles[last].span:
            raise Skip(why + " (the helper returns more than the probabilities)")
        reads = [n for n in ast_walk(ret) if isinstance(n, ast.Name) and n.id == scores]
        if len(reads) != 1 or any(isinstance(n, (ast.NamedExpr, ast.Lambda)) for n in ast_walk(ret)):
            raise Skip(why)

        def same(expr) -> bool:
            return isinstance(expr, ast.Name) and expr.id == scores

        def plain_test(expr) -> bool:  # a test of the parameters with no effect of its own
            return all(isinstance(n, (ast.Name, ast.Constant, ast.UnaryOp, ast.BoolOp, ast.Compare, ast.Load,
                                      ast.unaryop, ast.boolop, ast.cmpop)) for n in ast_walk(expr)) \
                and all(n.id in params and n.id != scores for n in ast_walk(expr) if isinstance(n, ast.Name))

        added: list[tuple[str, bool]] = []  # (parameter, under `if p is not None:`)
        for stmt in body[:-1]:
            copy = isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and same(stmt.targets[0]) \
                and isinstance(stmt.value, ast.Call) and not stmt.value.args and not stmt.value.keywords \
                and isinstance(stmt.value.func, ast.Attribute) and same(stmt.value.func.value)
            if copy and stmt.value.func.attr == "contiguous" and not added:
                continue  # the same values (the flow reads it as `x = x`)
            if isinstance(stmt, ast.If) and not stmt.orelse and len(stmt.body) == 1:
                inner = stmt.body[0]
                if isinstance(inner, ast.Assign) and len(inner.targets) == 1 and same(inner.targets[0]) \
                        and isinstance(inner.value, ast.Call) and not inner.value.args and not inner.value.keywords \
                        and isinstance(inner.value.func, ast.Attribute) and same(inner.value.func.value) \
                        and inner.value.func.attr == "clone" and plain_test(stmt.test) and not added:
                    continue  # `if not inplace: x = x.clone()`: the same values, in a copy
                test = stmt.test
                guarded = isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], ast.IsNot) \
                    and isinstance(test.left, ast.Name) and isinstance(test.comparators[0], ast.Constant) \
                    and test.comparators[0].value is None
                param = _added_param(inner, scores)
                if guarded and param is not None and param == test.left.id:
                    added.append((param, True))
                    continue
            param = _added_param(stmt, scores)
            if param is not None:
                added.append((param, False))
                continue
            raise Skip(why)
        if {p for p, _ in added} & {scores} or len({p for p, _ in added}) != len(added) \
                or any(p not in params for p, _ in added):
            raise Skip(why)
        if any(isinstance(n, (ast.Global, ast.Nonlocal, ast.Yield, ast.YieldFrom, ast.Await)) for n in ast_walk(helper)):
            raise Skip(why)
        # The module binds the helper's name once (its def), the caller not at all; the caller
        # calls it once, as the value of `name = helper(...)`.
        top = [s for s in tree.body if helper.name in stored_names(s)
               or (isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and s.name == helper.name)]
        caller_def = self._function(self.index.stmt(self.roles["c"].stmt).stmt)
        if top != [helper] or caller_def is None or helper.name in {a.arg for a in ast_walk(caller_def.args)
                                                                   if isinstance(a, ast.arg)} \
                or helper.name in set().union(*(stored_names(s) for s in caller_def.body)):
            raise Skip(why)
        # The helper's own free names (the module's, `F`; a global rate) are read in the caller's
        # scope on the fused path: the caller may not bind them.
        caller_bound = set().union(*(stored_names(s) for s in caller_def.body)) \
            | {a.arg for a in ast_walk(caller_def.args) if isinstance(a, ast.arg)}
        shadowed = (_loads(body[-1]) - set(params)) & caller_bound
        if shadowed:
            raise Skip(f"the helper `{helper.name}` reads `{sorted(shadowed)[0]}`, which its caller binds; "
                       "rewrite it by hand")
        calls = [n for n in ast_walk(caller_def) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
                 and n.func.id == helper.name]
        if len(calls) > 1 and outside[0].scope:
            # One call in each arm of an if (unimol's `if not return_attn:` ... `else:`): the one
            # in the arm the match goes through (the inlined steps' scope), the others in the
            # if's other arm, which the path does not run (_other_arm_call)
            if_span, arm = outside[0].scope[-1]
            owner = next((s for s in ast_walk(caller_def) if isinstance(s, ast.If) and span_of(s) == if_span), None)
            if owner is not None:
                arms = (owner.body, owner.orelse)

                def within(block, call) -> bool:
                    return any(c is call for st in block for c in ast_walk(st))

                if all(within(arms[0], c) or within(arms[1], c) for c in calls):
                    mine = [c for c in calls if within(arms[arm], c)]
                    if len(mine) == 1 and all(within(arms[1 - arm], c) for c in calls if c is not mine[0]):
                        calls = mine
                        self.helper_call_arm = True
        call_stmt = None
        if len(calls) == 1:
            for stmt in ast_walk(caller_def):
                if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name) \
                        and stmt.value is calls[0]:
                    call_stmt = stmt
        if call_stmt is None:
            lines = ", ".join(str(c.lineno) for c in sorted(calls, key=lambda c: (c.lineno, c.col_offset)))
            said = (f"{len(calls)} times in `{caller_def.name}`, at lines {lines}" if len(calls) > 1
                    else "not as the value of a plain assignment")
            raise Skip(f"the helper `{helper.name}` taking the scores to the probabilities is called in other ways "
                       f"({said}); rewrite it by hand")
        call = calls[0]
        if any(isinstance(a, ast.Starred) for a in call.args) or any(k.arg is None for k in call.keywords) \
                or len(call.args) > len(positional):
            raise Skip(f"the call of `{helper.name}` at line {call.lineno} passes its arguments in a way not read here")
        bound: dict[str, ast.expr] = dict(zip(positional, call.args))
        for keyword in call.keywords:
            if keyword.arg not in params or keyword.arg in bound or keyword.arg in positional[:len(args.posonlyargs)]:
                raise Skip(f"the call of `{helper.name}` at line {call.lineno} passes its arguments in a way not read "
                           "here")
            bound[keyword.arg] = keyword.value
        for name in params:
            if name not in bound:
                if name not in defaults:
                    raise Skip(f"the call of `{helper.name}` at line {call.lineno} leaves out `{name}`")
                bound[name] = defaults[name]  # (a default is read in the helper's module: a constant here)
                if not isinstance(defaults[name], ast.Constant):
                    raise Skip(f"the default of `{name}` in `{helper.name}` is not a constant")
        if not isinstance(bound[scores], ast.Name):
            raise Skip(f"the call of `{helper.name}` at line {call.lineno} hands it scores that are not a name")
        plain = (ast.Name, ast.Attribute, ast.Constant, ast.Subscript, ast.Slice, ast.Tuple, ast.UnaryOp, ast.BinOp,
                 ast.BoolOp, ast.Compare, ast.IfExp, ast.expr_context, ast.unaryop, ast.operator, ast.boolop, ast.cmpop)
        for expr in (*call.args, *(k.value for k in call.keywords)):
            if not all(isinstance(n, plain) for n in ast_walk(expr)):
                # (the fused call reads the arguments it needs once, after the region's other
                # statements, and the others not at all: a call among them could do more)
                raise Skip(f"the call of `{helper.name}` at line {call.lineno} computes an argument "
                           f"(`{self._text(expr)}`) the fused call would not compute as the call does")
        for name, expr in bound.items():
            text = self._text(expr) if not (name in defaults and bound[name] is defaults[name]) else ast.unparse(expr)
            self.helper_args[name] = (text, expr)
        for param, guarded in added:
            expr = bound[param]
            if isinstance(expr, ast.Constant) and expr.value is None:
                continue  # the add never runs
            if not (isinstance(expr, (ast.Name, ast.Attribute)) and dotted_name(expr)):
                raise Skip(f"`{param}` of `{helper.name}`, added to the scores, is handed "
                           f"`{self._text(expr)}` at line {call.lineno}: not a name the fused call can read again")
            text = self._text(expr)
            operand = ast.parse(text, mode="eval").body
            self._made(operand, text)
            test = None
            if guarded:
                test = ast.parse(f"{text} is not None", mode="eval").body
                self._made(test, f"{text} is not None")
                self._made(test.left, text)
            self.helper_adds.append((text, operand, test))
        self.helper_call = call_stmt
        self.helper_roles = {roles[id(n)] for n in outside}
        moved_nodes = {id(n): replace(n, stmt=span_of(call_stmt)) for n in outside}
        for role, value in self.roles.items():
            if id(value) in moved_nodes:
                self.roles[role] = moved_nodes[id(value)]
        return [moved_nodes.get(id(n), n) for n in nodes]

    def _from_helper(self, text: str) -> str:
        """``text`` (an expression read in the probabilities helper) with the helper's
        parameters replaced by the caller's arguments (:meth:`_inline_probs_helper`)."""
        if not self.helper_args:
            return text
        tree = ast.parse(text, mode="eval")
        swaps = sorted(((n.col_offset, n.end_col_offset, n.id) for n in ast_walk(tree)
                        if isinstance(n, ast.Name) and n.id in self.helper_args and n.lineno == n.end_lineno == 1),
                       reverse=True)
        if any(isinstance(n, ast.Name) and n.id in self.helper_args and n.lineno != 1 for n in ast_walk(tree)):
            raise Skip("the dropout's arguments in the helper could not be read")
        encoded = text.encode()
        for start, end, name in swaps:
            arg, expr = self.helper_args[name]
            encoded = encoded[:start] + _atom(arg, expr).encode() + encoded[end:]
        return encoded.decode()

    def _helper_skip(self, nodes: list, roles: dict) -> Skip:
        """The decline of a match spread over functions in another way than one added bias in a
        helper (``nodes``: the match's): which steps run in which function (TorchScript
        ones said so), and what a helper other than the context's function also changes in
        place (``input += mask`` under an if: steps the match does not hold, which a fused call
        in the caller would have to take over from the helper's arguments)."""
        names = {"s0": "the scores' product", "p0": "the softmax", "p1": "the dropout", "c": "the context product",
                 "z": "the shift by the row maximum"}
        helpers: dict[int, tuple[ast.AST, list[str]]] = {}
        steps_of: dict[int, set] = {}  # the roles in each function (the context's: the caller)
        for node in nodes:
            info = self.index.stmt(node.stmt)
            func = self._function(info.stmt) if info is not None else None
            if func is None:
                return Skip("the match spans a helper method inlined into its caller; rewrite it by hand")
            role = roles.get(id(node))
            step = names.get(role, "the bias" if role in ADD_STEPS else f"the {role} step")
            steps = helpers.setdefault(id(func), (func, []))[1]
            steps_of.setdefault(id(func), set()).add(role)
            if step not in steps:
                steps.append(step)
        step_stmts = {n.stmt for n in nodes}
        parts = []
        for func, steps in helpers.values():
            said = " and ".join(steps) if len(steps) < 3 else ", ".join(steps[:-1]) + " and " + steps[-1]
            scripted = any(self.names.resolve(d) == "torch.jit.script" for d in func.decorator_list)
            part = f"{said} in `{func.name}` (line {func.lineno}{', a TorchScript function' if scripted else ''})"
            changes = [s for s in ast_walk(func) if isinstance(s, ast.AugAssign) and isinstance(s.target, ast.Name)
                       and span_of(s) not in step_stmts] if "c" not in steps_of[id(func)] else []
            if changes:
                lines = ", ".join(str(s.lineno) for s in changes)
                texts = ", ".join(f"`{self._text(s)}`" for s in changes)
                part += (f", which also changes a tensor in place at line{'s' if len(changes) > 1 else ''} {lines} "
                         f"({texts}), no step of the match")
            parts.append(part)
        return Skip("the match spans helpers inlined into their caller: " + "; ".join(parts)
                    + "; rewrite it by hand")

    # ------------------------------------------------------------------ scores handed over
    def _handed_scores(self, nodes: list) -> "_Handed | None":
        """ESPnet's split (``forward_qkv`` / ``forward_attention``): the caller computes the
        scores and hands them to a helper method that takes them on to the context
        (``scores = torch.matmul(q, k.transpose(-2, -1)) / math.sqrt(self.d_k)`` then
        ``return self.forward_attention(v, scores, mask)``).  The fused call needs q and k, not
        the scores, so the caller hands over what its scores statements read instead (a new last
        parameter of the helper, None by default: other callers keep the original path), and the
        helper computes the scores from them on the original path.  The scores statements move
        from the caller to the helper's guarded branch verbatim, under the caller's own names.

        Returns None when the match is not of this form (the scores steps in a caller, every
        other step in one method it calls); raises :class:`Skip` when it is but cannot be moved
        exactly."""
        context_func = self.roles["c"].func
        outside = [n for n in nodes if n.func != context_func]
        roles = {id(n): r for r, n in self.roles.items()}
        if not outside or any(roles.get(id(n)) not in ("s0", "s1", "s2", "b0", "b1") for n in outside) \
                or "s0" not in {roles.get(id(n)) for n in outside} or len({n.func for n in outside}) != 1:
            return None
        c_info = self.index.stmt(self.roles["c"].stmt)
        s_info = self.index.stmt(outside[0].stmt)
        helper = self._function(c_info.stmt) if c_info is not None else None
        caller = self._function(s_info.stmt) if s_info is not None else None
        if not isinstance(helper, ast.FunctionDef) or not isinstance(caller, ast.FunctionDef) or helper is caller:
            return None
        if _calls_in(helper, caller.name) and not _calls_in(caller, helper.name):
            # the other way round: the product's method calls the one computing the scores, which
            # returns them (wavencoder's `weights = self._get_weights(values, query)`), a helper
            # inlined in its caller (_inline_attention_helper)
            return None
        if any(f is caller for f in self.index.tree.body) \
                and any(_calls_helper(n, caller.name, False) for n in ast_walk(helper)):
            return None  # (the same with a function of the file: `s = scores(q, k)`)
        why = "the scores are computed in `{}` and handed to `{}`, {}; rewrite it by hand"

        def skip(reason: str) -> Skip:
            return Skip(why.format(caller.name, helper.name, reason))

        cls = self._class()
        if cls is None or not any(s is helper for s in cls.body):
            raise skip("not a method of the class")
        subclasses = self._subclasses(cls)
        if not any(any(s is caller for s in c.body) for c in subclasses.values()):
            raise skip("not two methods of one class or of a class and its subclass")
        if helper.decorator_list or any(isinstance(n, (ast.Yield, ast.YieldFrom)) for n in ast_walk(helper)):
            raise skip("a decorated method or a generator")
        if c_info.block is not helper.body:
            raise skip("whose value product is not in its body's own block")
        # The caller's statements computing the scores: consecutive plain assignments of one
        # block, the helper's call the statement right after them.
        spans = sorted({n.stmt for n in outside})
        infos = [self.index.stmt(span) for span in spans]
        if any(i is None or i.block is not infos[0].block for i in infos):
            raise skip("in statements of different blocks")
        block, first = infos[0].block, infos[0].index
        last = infos[-1].index
        if last + 1 >= len(block):
            raise skip("in statements that are not consecutive and followed by the call")
        moved = [i.stmt for i in infos]
        if any(not (isinstance(s, ast.Assign) and len(s.targets) == 1 and isinstance(s.targets[0], ast.Name))
               for s in moved):
            raise skip("in statements that are not assignments to one name")
        # Statements between them (gigaam's ``matrix_bd = matrix_bd[:, :, :, : matrix_ac.size(-1)]``
        # between the product and the scores' sum) stay in the caller and so run before every
        # moved statement: each must be a plain assignment of names that no earlier moved
        # statement reads or assigns, reading of what those assign only the product's sizes
        # (read off q and k instead: _handed_edits), and calling nothing but ``.size``.
        moved_ids = {id(s) for s in moved}
        gaps = [s for s in block[first:last + 1] if id(s) not in moved_ids]
        s0_stmt = self.index.stmt(self.roles["s0"].stmt)
        for gap in gaps:
            earlier = [s for s in moved if s.lineno < gap.lineno]
            earlier_reads = set().union(*(_loads(s) for s in earlier))
            earlier_stored = {s.targets[0].id for s in earlier}
            product = s0_stmt.stmt.targets[0].id if s0_stmt is not None and any(s0_stmt.stmt is s for s in earlier) \
                and not any(self.roles[r].stmt == self.roles["s0"].stmt for r in ADD_STEPS if r in self.roles) else None
            plain = isinstance(gap, ast.Assign) and all(
                isinstance(t, ast.Name) for t in gap.targets) and all(
                isinstance(n, (ast.Name, ast.Attribute, ast.Subscript, ast.Slice, ast.Constant, ast.BinOp, ast.UnaryOp,
                               ast.Tuple, ast.expr_context, ast.operator, ast.unaryop))
                or (isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr == "size"
                    and not n.keywords) for n in ast_walk(gap.value))
            if not plain or stored_names(gap) & (earlier_reads | earlier_stored) \
                    or _loads(gap) & earlier_stored - ({product} if product else set()):
                raise skip(f"in statements that are not consecutive (line {gap.lineno} is between them) "
                           "and followed by the call")
        call_stmt = block[last + 1]
        scores = moved[-1].targets[0].id
        calls = [n for n in ast_walk(call_stmt) if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)
                 and n.func.attr == helper.name and isinstance(n.func.value, ast.Name) and n.func.value.id == "self"]
        if len(calls) != 1:
            raise skip(f"but the statement after them (line {call_stmt.lineno}) is not one call of it")
        call = calls[0]
        # The argument: the scores' name as it is, positional (before any *args) or by keyword.
        params = [a.arg for a in (*helper.args.posonlyargs, *helper.args.args)]
        if not params or params[0] != "self":
            raise skip("not a method taking self")
        param, arg = None, None
        for place, value in enumerate(call.args):
            if isinstance(value, ast.Starred):
                break
            if isinstance(value, ast.Name) and value.id == scores:
                if place + 1 < len(params):
                    param, arg = params[place + 1], value
                break
        for keyword in call.keywords:
            if keyword.arg is not None and isinstance(keyword.value, ast.Name) and keyword.value.id == scores:
                if keyword.arg in (*params[len(helper.args.posonlyargs):], *(a.arg for a in helper.args.kwonlyargs)):
                    param, arg = keyword.arg, keyword.value
        if arg is None:
            raise skip("as an argument that is not one of its named parameters")
        # What the moved statements assign is read nowhere after them but by that argument
        # (the call's statement may assign the names anew: ``scores = self.attend(v, scores)``).
        assigned = {s.targets[0].id for s in moved}
        # (a tuple target renews each name it binds: ``output, attn = self.forward_attention(attn, v)``)
        renewed = {n.id for t in call_stmt.targets for n in ast_walk(t) if isinstance(n, ast.Name)
                   and isinstance(n.ctx, ast.Store)} if isinstance(call_stmt, ast.Assign) else set()
        end = (call_stmt.end_lineno, call_stmt.end_col_offset)
        later = [n for n in ast_walk(caller) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)
                 and n.id in assigned and n is not arg
                 and (any(n is m for m in ast_walk(call_stmt)) or ((n.lineno, n.col_offset) > end and n.id not in renewed))]
        if later:
            raise skip(f"which the caller also reads at line {later[0].lineno}")
        if any(isinstance(n, (ast.Global, ast.Nonlocal)) for n in ast_walk(caller)):
            raise skip("in a caller with global or nonlocal names")
        # The names the moved statements read from the caller go over in one tuple; names they
        # read from the module (torch, math) mean the same in the helper when it binds none.
        caller_locals = {n.id for n in ast_walk(caller) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)} \
            | {a.arg for a in ast_walk(caller.args) if isinstance(a, ast.arg)} \
            | {alias.asname or alias.name.split(".")[0] for n in ast_walk(caller)
               if isinstance(n, (ast.Import, ast.ImportFrom)) for alias in n.names}  # a local import
        reads: list[str] = []
        for stmt in moved:
            for node in sorted((n for n in ast_walk(stmt.value) if isinstance(n, ast.Name)),
                               key=lambda n: (n.lineno, n.col_offset)):
                if node.id not in reads:
                    reads.append(node.id)
        handed = [name for name in reads if name in caller_locals and name not in assigned and name != "self"]
        # In the helper the handed names and the statements' own names other than the scores
        # (which become the helper's parameter) must be new; the module's names (torch, math)
        # must not be bound there to something else.
        helper_names = {n.id for n in ast_walk(helper) if isinstance(n, ast.Name)} \
            | {a.arg for a in ast_walk(helper.args) if isinstance(a, ast.arg)}
        helper_bound = {n.id for n in ast_walk(helper) if isinstance(n, ast.Name) and not isinstance(n.ctx, ast.Load)} \
            | {a.arg for a in ast_walk(helper.args) if isinstance(a, ast.arg)}
        module_reads = set(reads) - set(handed) - assigned - {"self"}
        clash = sorted((module_reads & helper_bound) | ((set(handed) | (assigned - {scores})) & helper_names))
        if clash:
            raise skip(f"whose statements read or assign `{clash[0]}`, a name the helper binds too")
        if not handed:
            raise skip("from no value of the caller")
        # The helper: a method no other class of the file overrides (a subclass's own
        # version would get an argument it does not take).
        for name, node in subclasses.items():
            if node is not cls and any(isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Assign))
                                       and helper.name in (s.name if not isinstance(s, ast.Assign) else
                                                           {t.id for t in s.targets if isinstance(t, ast.Name)})
                                       for s in node.body):
                raise skip(f"which `{name}` overrides")
        # The helper reads the scores only from the statement holding its first step on.
        entry = next((i for i, s in enumerate(helper.body) if param in _loads(s) or param in stored_names(s)), None)
        step_indexes = set()
        for info in (self.index.stmt(n.stmt) for n in nodes if n.func == context_func):
            while info is not None and info.block is not helper.body:
                info = self.index.stmt(span_of(info.owner)) if isinstance(info.owner, ast.stmt) else None
            if info is not None:
                step_indexes.add(info.index)
        if entry is None or entry not in step_indexes:
            raise skip(f"which `{helper.name}` reads before the attention's first step")
        flag = next((n for n in ("qk", "scores_inputs", "sdpa_qk") if n not in self.index.identifiers), None)
        if flag is None:
            raise skip("and no name for the new parameter is free")
        return _Handed(caller=caller, helper=helper, call=call, call_stmt=call_stmt, arg=arg, param=param,
                       moved=moved, spans=set(spans), handed=handed, entry=entry, flag=flag, scores=scores,
                       gaps=gaps)

    def _subclasses(self, cls: ast.ClassDef) -> dict[str, ast.ClassDef]:
        """``cls`` and the classes of the module that derive from it (by the last part of a
        base's name), at any depth."""
        found, grown = {cls.name: cls}, True
        while grown:
            grown = False
            for node in ast_walk(self.index.tree):
                if isinstance(node, ast.ClassDef) and node.name not in found and any(
                        (dotted_name(b) or "").rsplit(".", 1)[-1] in found for b in node.bases):
                    found[node.name] = node
                    grown = True
        return found

    def _handed_edits(self, edits: Edits, regions: list[Span], region: list[ast.stmt], guard: list[str],
                      fast: list[str]) -> tuple[list[str], list[str], str]:
        """The edits of :meth:`_handed_scores`' form besides the wrap: the caller stops computing
        the scores and hands over what they are computed from, the helper takes it as its last
        parameter.  Returns the guard terms (the handed value missing first: other callers), the
        fused statements (the handed names bound first) and the wrap's prelude (the scores
        computed as the caller computed them, on the original path when the caller handed
        their inputs over)."""
        handed: _Handed = self.handed
        helper, caller = handed.helper, handed.caller
        if self.declined or self.in_context:
            raise Skip(f"the scores are handed to `{helper.name}`, which also hands back what only the original "
                       "attention computes; rewrite it by hand")
        inside = {id(n) for s in region for n in ast_walk(s)}
        for node in ast_walk(helper):
            if isinstance(node, ast.Name) and node.id == handed.param and id(node) not in inside:
                raise Skip(f"`{helper.name}` reads the scores it is handed at line {node.lineno}, after the attention")
        names = set(handed.handed)
        for term in guard:
            clash = read_names(ast.parse(term, mode="eval")) & names
            if clash:
                raise Skip(f"the fallback condition `{term}` reads `{sorted(clash)[0]}`, which `{helper.name}` is "
                           "handed only for the fused call")
        flag = handed.flag
        tuple_text = f"({', '.join(handed.handed)}{',' if len(handed.handed) == 1 else ''})"
        bind = f"{', '.join(handed.handed)}{',' if len(handed.handed) == 1 else ''} = {flag}"
        # the scores' name in the caller is the parameter's in the helper
        moved = "\n".join(self._stmt_text(s, [(span_of(n), handed.param) for n in ast_walk(s)
                                              if isinstance(n, ast.Name) and n.id == handed.scores])
                          for s in handed.moved)
        body = "\n".join("    " + line for text in (bind, moved) for line in text.split("\n"))
        prelude = f"if {flag} is not None:\n{body}"
        # the helper: its new last parameter
        key = (helper.lineno, self.index.char_col(helper.lineno, helper.col_offset))
        note = self._handed_annotation(edits, handed)
        edits.params[key] = f"{flag}: {note} = None" if note else f"{flag}=None"
        # the scores' argument: None; an empty tensor of q where the helper's parameter is
        # annotated as a tensor (TorchScript refuses None for it; the helper never reads it then)
        param = next((a for a in helper.args.posonlyargs + helper.args.args + helper.args.kwonlyargs
                      if a.arg == handed.param), None)
        placeholder = "None"
        if note and param is not None and param.annotation is not None and not any(
                word in self.index.segment(span_of(param.annotation)) for word in ("Optional", "None", "|")):
            placeholder = f"{handed.handed[0]}.new_empty(0)"
        regions.append((helper.lineno, helper.col_offset, helper.lineno, helper.col_offset + 3))
        # the caller: the scores statements go, the call hands over their inputs instead
        for stmt in handed.moved:
            edits.delete.add(self.index.char_span(span_of(stmt)))
        for gap in handed.gaps:
            # (run before the moved statements now: the product's sizes read off q and k)
            earlier = {s.targets[0].id for s in handed.moved if s.lineno < gap.lineno}
            reads = [n for n in ast_walk(gap.value) if isinstance(n, ast.Name) and n.id in earlier]
            covered: set[int] = set()
            for node in ast_walk(gap.value):
                held = node.func.value if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                    else node.value.value if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Attribute) \
                    else None
                if not (isinstance(held, ast.Name) and held.id in earlier) or id(held) in covered:
                    continue
                text = self._scores_metadata(node, earlier)
                if text is None or read_names(ast.parse(text, mode="eval")) & earlier:
                    break
                covered.add(id(held))
                edits.expr[self.index.char_span(span_of(node))] = text
            if any(id(n) not in covered for n in reads):
                raise Skip(f"the statement at line {gap.lineno}, between the scores' statements in "
                           f"`{caller.name}`, reads the product otherwise than by its sizes; rewrite it by hand")
        edits.expr[self.index.char_span(span_of(handed.arg))] = placeholder
        edits.keywords[self.index.char_span(span_of(handed.call))] = f"{flag}={tuple_text}"
        first, call_stmt = handed.moved[0], handed.call_stmt
        regions.append((first.lineno, first.col_offset, call_stmt.end_lineno, call_stmt.end_col_offset))
        return [f"{flag} is None", *guard], [bind, *fast], prelude

    def _handed_annotation(self, edits: Edits, handed: "_Handed") -> str:
        """The new parameter's annotation, where every name handed over is q's or k's operand
        (a tensor): ``Optional[Tuple[Tensor, Tensor]]`` (its default None), so a helper
        compiled with ``torch.jit.script`` -- which types an unannotated parameter as a Tensor
        -- takes the tuple.  "" where another name goes over with them (its type is not known
        here)."""
        operands = [text for text, _ in self._operands(broadcast=False)[:2]]
        if not handed.handed or not all(name.isidentifier() for name in operands) \
                or set(handed.handed) - set(operands):
            return ""
        optional, request = self.planner.names.local("typing.Optional")
        edits.imports.add(request)
        tuple_, request = self.planner.names.local("typing.Tuple")
        edits.imports.add(request)
        tensor = f"{self._torch()}.Tensor"
        return f"{optional}[{tuple_}[{', '.join([tensor] * len(handed.handed))}]]"

    # ------------------------------------------------------------------ the steps
    def _check_softmax(self) -> bool:
        """A softmax over the last dimension; True when it computes in float32 (``dtype=``)."""
        args, kwargs, arg_spans, _ = self._view("p0")
        values = dict(kwargs)
        dim = values.pop("dim", None)
        own = values.get("dtype")
        if getattr(own, "text", "").endswith(".dtype") and args and arg_spans and arg_spans[0] is not None \
                and own.text == self.index.segment(arg_spans[0]) + ".dtype" and own.text[:-6].isidentifier():
            values.pop("dtype")  # ``softmax(attn, dim=-1, dtype=attn.dtype)``: its input's own dtype, the default
        if not (isinstance(dim, Const) and not isinstance(dim.value, bool) and dim.value in (-1, -2)):
            raise Skip("the softmax is not a plain softmax over the last dimension")
        if (dim.value == -2) != self.scores_t:
            raise Skip("the softmax does not normalise the axis of the keys")
        dtype = values.pop("dtype", None)
        if values:
            raise Skip(f"the softmax takes `{sorted(values)[0]}=`, which the fused call does not")
        self.softmax_dtype = None
        if dtype is not None and not (isinstance(dtype, Const) and dtype.value is None):
            if getattr(dtype, "text", None) != "torch.float32" and not self._names_float32(dtype):
                self.softmax_dtype = self._softmax_operand_dtype(kwargs, *self._view("p0")[2:])
                return False
            return True
        if RECAST in self.roles:
            return "u" in self.roles  # (an upcast before the fill is undone by the cast after it)
        return any(r in self.roles for r in UPCASTS)

    def _check_recast(self, operands) -> None:
        """The filled scores cast again before the softmax (fairseq-era ``s.float().masked_fill(
        m, -inf).type_as(s)``): exact only as a cast back to the dtype of q, k or v (or of the
        scores' product, which has q's), where the softmax computes in the dtype the fused call
        computes in; the fill in float32 then rounds to the same masked value.  Checked as the
        probabilities' cast back is (:meth:`_check_cast`: any other target is declined, a
        tensor's dtype that may differ is guarded).  (A local helper: the rest of the plan
        reads the recast scores as the plain filled ones.)"""
        try:
            self._check_cast(self.roles[RECAST], operands)
        except Skip:
            raise Skip("the scores are cast again between the fill and the softmax, to a dtype other than q's, "
                       "which the fused call does not follow") from None

    def _names_float32(self, dtype) -> bool:
        """Is the softmax's ``dtype=`` another spelling of float32 (``torch.float``, ParlAI's
        ``F.softmax(scores, dim=-1, dtype=torch.float)``; ``torch.float32`` under another
        import name), resolved through the file's imports?"""
        text = getattr(dtype, "text", None)
        try:
            expr = ast.parse(text, mode="eval").body if text else None
        except SyntaxError:
            return False
        fqn = self.names.resolve(expr) if isinstance(expr, (ast.Name, ast.Attribute)) else None
        return DTYPE_ALIASES.get(fqn, fqn) == "torch.float32"

    def _softmax_operand_dtype(self, kwargs, arg_spans, kwarg_spans) -> ast.expr:
        """The tensor X of a softmax's ``dtype=X.dtype`` (vortex's ``torch.softmax(scores,
        dim=-1, dtype=v.dtype)``).  The softmax then computes in X's dtype: the plain softmax
        exactly where the scores already have that dtype -- checked in :meth:`_check_softmax_dtype`
        -- and a Skip for any other dtype (float16 from float32 scores, say)."""
        for (name, _), (value_span, _) in zip(kwargs, kwarg_spans):
            if name != "dtype" or not value_span:
                continue
            arg = self.index.expr_at(value_span)
            if isinstance(arg, ast.Attribute) and arg.attr == "dtype" and isinstance(arg.value, ast.Name):
                return arg.value
        raise Skip("the softmax computes in a dtype other than float32")

    def _check_softmax_dtype(self, operands) -> None:
        """``softmax(scores, dtype=X.dtype)`` is the plain softmax where the scores have X's
        dtype.  They have q's (SDPA requires q, k and v of one dtype) when no step widens them
        (:meth:`_is_scores`, a widening bias guarded at run time); X is q or k (one dtype with
        the scores' product), or v or another tensor whose dtype the guard compares with q's
        (``v.dtype != q.dtype`` takes the original, which computes then in v's dtype)."""
        target = getattr(self, "softmax_dtype", None)
        if target is None:
            return
        node = self.roles["p0"]
        args, _, arg_spans, _ = self._view("p0")
        scores = self.index.expr_at(arg_spans[0]) if args and arg_spans and arg_spans[0] is not None else None
        if not isinstance(scores, ast.Name) or not self._is_scores(scores, node):
            raise Skip("the softmax computes in a dtype other than float32, of scores that may have another")
        text = self._text(target)
        if text in {t for t, _ in operands[:2]}:
            return
        self.dtype_casts.append((target, node))  # guarded in plan: its dtype must be q's

    def _check_casts(self, upcast: bool, operands) -> None:
        """The probabilities cast back to the dtype of q, k or v (a no-op when they share one,
        which SDPA requires), before or after the dropout, after a softmax computed in float32
        (``.float()``, ``dtype=torch.float32``): SDPA computes in that dtype and accumulates in
        float32."""
        casts = [role for role in ("t1", "t2") if role in self.roles]
        self.float32_only = False
        self.cast_back: list[str] = []  # casts to the dtype of a name an operand upcasts (_check_cast)
        if not casts:
            # (parti's ``attn = sim.softmax(dim=-1, dtype=torch.float32)`` then ``attn @ v``: the
            # value product computes in float32, exactly the fused call's when q, k and v are
            # float32 -- the upcast is a no-op then -- and the others go to the original)
            self.float32_only = upcast
            return
        for role in casts:
            self._check_cast(self.roles[role], operands)

    def _written_equation_terms(self, region: list[ast.stmt], all_stored: set) -> list[str]:
        """An einsum of the region whose equation is an f-string over locals holding literals
        (structure/written_equations.py): the engine read one choice, so the guard sends the
        others to the original, comparing the f-string's value before the region with it."""
        joined = [(node, arg) for stmt in region for node in ast_walk(stmt) if node.__class__ is ast.Call
                  and node.args for arg in dict.fromkeys((node.args[0], node.args[-1]))
                  if arg.__class__ is ast.JoinedStr]
        if not joined:
            return []
        func = self._function(region[0])
        lookup = written_equations.function_lookup(func) if func is not None else None
        terms = []
        for call, arg in joined:
            name = call.func.attr if call.func.__class__ is ast.Attribute else getattr(call.func, "id", "")
            if name != "einsum":
                continue
            written = written_equations.equation(arg, lookup) if lookup is not None else None
            if written is None:
                raise Skip(f"the einsum at line {call.lineno} writes its equation as an f-string that could not be read")
            if read_names(arg) & all_stored:
                raise Skip(f"the einsum equation at line {call.lineno} reads what the attention assigns")
            terms.append(written_equations.guard_term(arg, self._text(arg), written))
        return list(dict.fromkeys(terms))

    def _float32_terms(self) -> list[str]:
        """Guard terms for probabilities left in float32 after an upcast softmax (no cast back,
        :meth:`_check_casts`): the fused path only where q, k and v are float32 already."""
        if getattr(self, "cast_back", None):
            torch = self._torch("the float32 test")
            texts = dict.fromkeys([*self.cast_back, *(_dtype_held(text, node) for text, node in self._operands(
                broadcast=False, scaled=False) if not _float32_upcast(node, self.names))])
            return [f"{text}.dtype != {torch}.float32" for text in texts]
        if not self.float32_only:
            return []
        torch = self._torch("the float32 test")
        texts = dict.fromkeys(_atom(text, node) for text, node in self._operands(broadcast=False, scaled=False))
        return [f"{text}.dtype != {torch}.float32" for text in texts]

    def _check_cast(self, node, operands) -> None:
        target = None
        if node.kind == "method" and node.op in ("to", "type") and len(node.arg_spans) == 1:
            for (name, _), (value_span, _) in zip(node.kwargs, node.kwarg_spans):
                arg = self.index.expr_at(value_span) if name == "dtype" and value_span else None
                if isinstance(arg, ast.Name) and (held := self._held_operand_dtype(arg, operands)) is not None:
                    target = held  # (monai-generative's ``.to(dtype=dtype)``: _held_operand_dtype)
        if node.kind == "method" and node.op in ("to", "type") and len(node.arg_spans) == 2:
            arg = self.index.expr_at(node.arg_spans[1])
            if isinstance(arg, ast.Name) and (held := self._held_operand_dtype(arg, operands)) is not None:
                arg = ast.Attribute(value=held, attr="dtype", ctx=ast.Load())
            elif isinstance(arg, ast.Name):
                # ``dtype = q.dtype`` once, then ``attn.to(dtype)``: q's dtype, unless the
                # function rebinds q to a cast of it in between
                resolved = self._resolve_local(arg)
                if isinstance(resolved, ast.Attribute) and isinstance(resolved.value, ast.Name) \
                        and not self._recast(resolved.value.id):
                    arg = resolved
                elif isinstance(resolved, ast.Attribute) and resolved.attr == "dtype" \
                        and (held := self._dtype_read(arg.id, resolved)) is not None \
                        and self._is_scores(resolved.value, _At(span_of(held))):
                    return  # jukebox's ``wtype = w.dtype`` of the scaled product, before ``w = w.float()``
            if isinstance(arg, ast.Attribute) and arg.attr == "dtype":
                target = arg.value
        elif node.kind == "method" and node.op in ("to", "type") and len(node.arg_spans) == 1:
            for (name, _), (value_span, _) in zip(node.kwargs, node.kwarg_spans):
                arg = self.index.expr_at(value_span) if name == "dtype" and value_span else None
                if target is None and isinstance(arg, ast.Attribute) and arg.attr == "dtype":
                    target = arg.value
        elif node.kind == "method" and node.op == "type_as" and len(node.arg_spans) == 2:
            target = self.index.expr_at(node.arg_spans[1])
        if target is None:
            raise Skip("the probabilities are cast to something other than the dtype of q, k or v")
        held = self.dtype_holders.get(target.id) if isinstance(target, ast.Name) else None
        if held is not None and span_of(held) < node.stmt:
            # the dtype of a dropped cast (`w = p.type_as(scores)`) is its target's, there
            target, node = _dtype_target(held.value), _At(span_of(held))
        if self._is_scores(target, node):
            return  # the dtype of q @ k^T: q's and k's, which the fused call requires to agree
        if self._holder(target, node) is not None:
            raise Skip(f"the probabilities are cast to the dtype of the scores `{self._text(target)}`, which a "
                       "bias, mask, tensor scale or upcast before the cast may have made wider than q's")
        text = self._text(target)
        texts = {t for t, _ in operands}
        names = set().union(*(read_names(e) for _, e in operands))
        if text not in texts and isinstance(target, ast.Name) and target.id in names \
                and any(_float32_upcast(e, self.names) for _, e in operands):
            # EDM's ``einsum(q.to(torch.float32), (k / s).to(torch.float32)).softmax(2).to(q.dtype)``:
            # back to the dtype q had before the operand's upcast -- the same computation only
            # where q (and v, not upcast) are float32 already: the guard (_float32_terms)
            self.cast_back.append(text)
            return
        if text not in texts and not (isinstance(target, ast.Name) and target.id in names):
            if isinstance(target, (ast.Name, ast.Attribute)) and dotted_name(target):
                self.dtype_casts.append((target, node))  # guarded in plan: the dtypes must agree
                return
            raise Skip(f"the probabilities are cast to the dtype of `{text}`, not of q, k or v")

    def _held_operand_dtype(self, arg: ast.Name, operands) -> ast.Name | None:
        """The operand ``x`` (q, k or v, a bare name) when ``arg`` is a local name the function
        assigns once, at its top level, ``arg = x.dtype``, and then rebinds ``x`` with a cast
        (monai-generative's ``dtype = query.dtype`` ahead of ``if self.upcast_attention: query =
        query.float()``, then ``probs.to(dtype=dtype)``).  Whether the cast ran is decided at run
        time (a flag, the input's dtype), so the cast of the probabilities to ``arg`` is one to
        x's dtype exactly where ``x.dtype == arg`` at the attention: the guard
        (``self.held_dtypes``, read in :meth:`_check_cast`'s caller) sends the other cases to the
        original.  None otherwise."""
        func = self._function(self.block[0]) if self.block else None
        if func is None:
            return None
        assigns = [n for n in func.body if isinstance(n, ast.Assign) and len(n.targets) == 1
                   and isinstance(n.targets[0], ast.Name) and n.targets[0].id == arg.id]
        value = assigns[0].value if len(assigns) == 1 else None
        if not (isinstance(value, ast.Attribute) and value.attr == "dtype" and isinstance(value.value, ast.Name)):
            return None
        if any(isinstance(n, ast.Name) and n.id == arg.id and isinstance(n.ctx, (ast.Store, ast.Del))
               for n in ast_walk(func)) and self._resolve_local(arg) is not value:
            return None
        held = value.value
        if held.id not in {t for t, _ in operands} or not self._recast(held.id):
            return None
        self.held_dtypes.append((arg.id, held.id))
        return held

    def _dtype_read(self, name: str, value: ast.Attribute) -> ast.Assign | None:
        """The statement ``name = <scores>.dtype`` of the region, at its top level (so it runs
        before the cast on every path), whose value is ``value``; None otherwise."""
        for stmt in self.block:
            if isinstance(stmt, ast.Assign) and stmt.value is value and len(stmt.targets) == 1 \
                    and isinstance(stmt.targets[0], ast.Name) and stmt.targets[0].id == name:
                return stmt
        return None

    def _is_scores(self, target: ast.expr, cast) -> bool:
        """Is ``target`` (read by the step ``cast``) a name holding the scores ``q @ k^T`` in
        q's dtype at ``cast``: the product itself (guided-diffusion's
        ``softmax(weight.float(), dim=-1).type(weight.dtype)``), or the product after steps
        that keep its dtype -- a scale that is a number (a Python number, or a 0-d tensor,
        neither promotes a floating tensor), ``masked_fill``, a view, the max shift -- as in
        lucidrains' ``sim = sim.masked_fill(~mask, v); attn = sim.softmax(-1,
        dtype=torch.float32).type(sim.dtype)``.  An added bias or mask may be a tensor of a
        wider dtype, and the upcast is one: a name holding those is not q's dtype.  An added
        bias or mask held in a name (imagen's ``sim = sim + attn_bias``) is read into
        ``self.widening``: the fallback then takes the cases where its dtype is not q's (see
        :meth:`_widening_terms`)."""
        holder = self._holder(target, cast)
        if holder is None:
            return False
        widening = []
        for role in SCORE_STEPS[:SCORE_STEPS.index(holder) + 1]:
            if role not in self.roles or role in DTYPE_KEEPING:
                continue
            if role in SCALE_STEPS and self._number_like(self._operand_of(role, SCALE_VARS[role])):
                continue
            if role in ADD_STEPS:
                operand = _dtype_of(self._operand_of(role, {"b0": "bias0", "b1": "bias"}.get(role, "mask")))
                operand = self._rearranged(operand)
                if self._made_in_scores_dtype(operand):
                    continue
                if isinstance(operand, (ast.Name, ast.Attribute)) and dotted_name(operand):
                    widening.append((role, operand))
                    continue
            return False
        self.widening += widening
        return True

    def _rearranged(self, expr: ast.expr) -> ast.expr:
        """The tensor an ``einops.rearrange(name, pattern)`` moves the axes of (its dtype is
        that tensor's), else ``expr``."""
        if isinstance(expr, ast.Call) and len(expr.args) == 2 and not expr.keywords \
                and isinstance(expr.args[0], ast.Name) and isinstance(expr.args[1], ast.Constant) \
                and isinstance(expr.args[1].value, str) and self.names.resolve(expr.func) == "einops.rearrange":
            return expr.args[0]
        return expr

    def _made_in_scores_dtype(self, operand: ast.expr) -> bool:
        """Is ``operand`` a local name assigned once, by a tensor factory given ``dtype=s.dtype``
        with ``s`` holding the scores in q's dtype there (vortex's ``padding_mask =
        torch.full(..., dtype=scores.dtype, ...)``, then filled in place): an added mask that
        cannot widen the scores."""
        value = self._resolve_local(operand) if isinstance(operand, ast.Name) else None
        if not isinstance(value, ast.Call):
            return False
        dtype = next((kw.value for kw in value.keywords if kw.arg == "dtype"), None)
        if not (isinstance(dtype, ast.Attribute) and dtype.attr == "dtype" and isinstance(dtype.value, ast.Name)):
            return False
        stmt = next((st for st in ast_walk(self._function(self.block[0])) if isinstance(st, ast.Assign)
                     and st.value is value), None) if self.block else None
        if stmt is None or self.names.resolve(value.func) not in TENSOR_FACTORIES:
            return False
        holder = self._holder(dtype.value, _At(span_of(stmt)))
        return holder is not None and all(r in DTYPE_KEEPING for r in SCORE_STEPS[:SCORE_STEPS.index(holder) + 1]
                                          if r in self.roles)

    def _hoist_widening(self, region: list[ast.stmt], kept: set, all_stored: set) -> None:
        """A widening bias the region computes from a module between the scores' product and
        the add (tardis's pair-bias attention: ``pair_weights = self.pairs_proj(pairs)`` after
        ``pairs = self.norm_pairs(pairs)``): the guard's dtype test (:meth:`_widening_terms`)
        reads it before the attention, so the kept statements computing it move above the
        guard's if (``self.hoisted``) where :meth:`_hoisted` finds the two orders compute the
        same, as Swin-v2's bias does for a dtype fallback's terms.  Otherwise nothing moves and
        the guard's clash check declines, as before.  A bias only reshaped in the region
        (fairseq's ``attn_mask.unsqueeze(0)``) keeps its dtype and needs no move."""
        for role, operand in self.widening:
            if not (isinstance(operand, ast.Name) and operand.id in all_stored) \
                    or _reshaped_only(operand.id, region):
                continue
            hoist = self._hoisted(operand.id, region, kept, self.roles[role].stmt)
            if hoist is not None:
                self.hoisted = tuple(sorted(set(self.hoisted) | hoist))

    def _widening_terms(self, conditions: dict) -> list[str]:
        """Guard terms for the added biases and masks of ``self.widening``: the probabilities
        are cast back to the scores' dtype, which is q's unless such a tensor is of another
        dtype (it would promote them); a value with no dtype (a Python number) does not
        promote.  Under the step's condition, when it has one."""
        terms = []
        q_dtype = self._q_dtype()
        for role, operand in self.widening:
            text = self._text(operand)
            terms.append(self._under(conditions, role, f'getattr({text}, "dtype", {q_dtype}) != {q_dtype}'))
        return terms

    def _try_twin(self, last):
        """For the context product in the handler of a dtype fallback (:func:`_dtype_fallback`),
        the statement info of the try body's statement, with the ``c`` step moved to the same
        product there (its spans the body's); ``last`` as it is otherwise."""
        handler = last.owner
        owner = next((info.stmt for info in self.index.stmts.values()
                      if isinstance(info.stmt, ast.Try) and any(h is handler for h in info.stmt.handlers)), None)
        if owner is None or not _dtype_fallback(owner):
            return last
        body = owner.body[0]
        spans: dict[Span, Span] = {}
        removed: dict[Span, ast.AST] = {}  # span of a cast call dropped -> its receiver
        twin = _uncast(copy.deepcopy(last.stmt), removed)  # (the copy keeps the handler's positions)
        for mine, theirs in zip(ast_walk(twin), ast_walk(body)):
            if hasattr(mine, "lineno") and hasattr(theirs, "lineno"):
                spans.setdefault(span_of(mine), span_of(theirs))
        for call, receiver in removed.items():  # `attn.half()`: the span of `attn`'s twin
            if span_of(receiver) in spans:
                spans.setdefault(call, spans[span_of(receiver)])

        def moved(span):
            if span is None:
                return None
            if len(span) == 4 and all(isinstance(x, int) for x in span):
                return spans.get(tuple(span), span)
            return tuple(moved(x) for x in span)

        node = self.roles["c"]
        if node.span not in spans:
            return last
        self.roles["c"] = replace(node, span=spans[node.span], stmt=span_of(body),
                                  arg_spans=tuple(moved(s) for s in node.arg_spans),
                                  kwarg_spans=tuple(moved(s) for s in node.kwarg_spans),
                                  func_span=moved(node.func_span))
        # the handler's own steps (the cast `attn.half()`) are not the body's: the body reads
        # the probabilities as they are
        handled = span_of(last.stmt)
        dropped = [r for r, n in self.roles.items() if r != "c" and n.stmt == handled]
        gone = {id(self.roles[r]) for r in dropped}
        for role in dropped:
            del self.roles[role]
        self.nodes = tuple(self.roles["c"] if n is node else n for n in self.nodes if id(n) not in gone)
        info = self.index.stmt(span_of(body))
        return info if info is not None else last

    def _fallback_terms(self, conditions: dict, region: list[ast.stmt], kept: set) -> list[str]:
        """Guard terms for a context product whose ``except`` computes it again with the
        probabilities cast (yolov7's ``try: x = attn @ v`` / ``except: x = attn.half() @ v``):
        the product raises when the probabilities' dtype is not v's, which happens only when v's
        dtype is not q's or an added bias or mask (whose dtype the scores take) is a tensor of
        another dtype.  Those cases take the original, handler and all; on the fused path the
        probabilities have q's dtype and the handler would never run.  An added operand whose
        dtype cannot be read before the attention (not a name or an attribute) is declined; one
        the region computes from a tensor read before it by indexing and reshapes only (Swin's
        ``relative_position_bias = self.relative_position_bias_table[...].view(...)``) has that
        tensor's dtype; one it computes otherwise, in kept statements that can run before the
        attention (Swin-v2's bias from a module, :meth:`_hoisted`), is read after them, with
        the statements moved above the guard's if (``self.hoisted``)."""
        q_dtype = self._q_dtype()
        v_text, v_node = self._operands(scaled=False)[2]
        terms = [f"{_atom(v_text, v_node)}.dtype != {q_dtype}"]
        stored = set().union(*(stored_names(st) for st in region))
        for role in ADD_STEPS:
            if role not in self.roles:
                continue
            operand = _dtype_of(self._operand_of(role, {"b0": "bias0", "b1": "bias"}.get(role, "mask")))
            if isinstance(operand, ast.Name) and operand.id in stored:
                source = _dtype_source(operand.id, region, self.roles[role].stmt)
                if source is None and (hoist := self._hoisted(operand.id, region, kept,
                                                              self.roles[role].stmt)) is not None:
                    self.hoisted = tuple(sorted(set(self.hoisted) | hoist))
                    stored = stored - set().union(*(stored_names(region[h]) for h in hoist))
                operand = source or operand
            if not (isinstance(operand, (ast.Name, ast.Attribute)) and dotted_name(operand)) or \
                    read_names(operand) & stored:
                raise Skip(f"the context product at line {self.roles['c'].line} falls back to a cast of the "
                           f"probabilities when it raises, and the dtype of `{self._text(operand)}`, added to the "
                           "scores, cannot be read before the attention")
            terms.append(self._under(conditions, role,
                                     f'getattr({self._text(operand)}, "dtype", {q_dtype}) != {q_dtype}'))
        return terms

    def _hoisted(self, name: str, region: list[ast.stmt], kept: set, before: Span) -> set | None:
        """The region offsets of the kept statements computing ``name`` (cnstd's Swin-v2
        ``relative_position_bias = 16 * torch.sigmoid(...)`` from ``self.cpb_mlp(...)``, a
        module's output whose dtype is known only once it runs), when they can run before the
        attention instead, on both paths: then the guard reads the name itself.  Exact where
        they are plain ``name = <expr>`` assignments kept as they are on the fused path
        (``kept``: their region offsets) before the step
        ``before`` reading it, reading of the region only what they assign themselves (each
        name they read assigned only by such statements before them); no other statement of
        the region assigns what they assign or reads it before them; and the statements they
        move above change nothing in place and call nothing but functions and tensor methods
        (no module, so no hook, of ``self``; nothing random), so the two orders compute the
        same.  None otherwise."""
        def plain(st) -> bool:
            return isinstance(st, ast.Assign) and all(isinstance(t, ast.Name) for t in st.targets) \
                and not any(isinstance(n, (ast.NamedExpr, ast.Lambda, ast.Await, ast.Yield, ast.YieldFrom))
                            for n in ast_walk(st))

        stored_at = [stored_names(st) for st in region]
        limit = next((i for i, st in enumerate(region) if (st.lineno, st.col_offset) >= (before[0], before[1])),
                     len(region))
        chain: set[int] = set()
        wanted, seen = [name], set()
        while wanted:
            want = wanted.pop()
            if want in seen:
                continue
            seen.add(want)
            for offset, names in enumerate(stored_at):
                if want not in names:
                    continue
                st = region[offset]
                if offset == 0 or offset >= limit or offset not in kept or not plain(st):
                    return None
                chain.add(offset)
                wanted.extend(read_names(st.value) & set().union(*stored_at[:offset]))
        if not chain:
            return None
        moved = set().union(*(stored_at[h] for h in chain))
        last = max(chain)
        for offset, st in enumerate(region):
            if offset in chain:
                continue
            if stored_at[offset] & moved:
                return None  # (assigned again outside the chain)
            if offset > last:
                continue
            if read_names(st) & moved:
                return None  # (read before the chain's statement moved above it)
            for node in ast_walk(st):
                if isinstance(node, (ast.AugAssign, ast.Delete, ast.Global, ast.Nonlocal)) or (
                        isinstance(node, (ast.Attribute, ast.Subscript)) and isinstance(node.ctx, (ast.Store, ast.Del))):
                    return None
                if isinstance(node, ast.Call) and effectful_call(node):
                    return None
        return chain

    def _under(self, conditions: dict, role: str, term: str) -> str:
        """``term`` under the condition of step ``role`` (``cond and term``), when it has one."""
        test = conditions.get(role)
        return term if test is None else f"{_guard_term(self._text(test), test)} and {term}"

    def _holder(self, target: ast.expr, cast) -> str | None:
        """The scores step whose output the name ``target`` holds when ``cast`` runs."""
        if not isinstance(target, ast.Name):
            return None
        holder = None
        for role, node in zip(self.match.roles, self.match.nodes):
            if node.stmt == cast.stmt or (isinstance(cast, _At) and node.stmt > cast.stmt):
                break
            if any(o.text == target.id for o in node.outs):
                holder = role
        return holder if holder in SCORE_STEPS else None

    def _check_step_if(self, stmt: ast.If, step_stored: set) -> list[str]:
        """An ``if`` holding attention steps; returns the statements in it that only compute
        what a mask step then reads (kept on the fused path under the same test)."""
        step_stmts = {n.stmt for n in self.nodes}
        keeps = []
        read_before: set[str] = set()  # what the steps that run before each statement read
        for outer in self.block:
            if outer is stmt:
                break
            read_before |= set().union(*(_loads(s) for s in ast_walk(outer)
                                         if isinstance(s, ast.stmt) and span_of(s) in step_stmts))
        stored_before: set[str] = set()  # what the if's statements before each one assign
        read_steps = [s for outer in self.block[:next((i for i, o in enumerate(self.block) if o is stmt),
                                                          len(self.block))]
                      for s in ast_walk(outer) if isinstance(s, ast.stmt) and span_of(s) in step_stmts]
        for inner in stmt.body:
            if span_of(inner) in step_stmts:
                read_before |= _loads(inner)
                stored_before |= stored_names(inner)
                read_steps.append(inner)
                continue
            if isinstance(inner, ast.If) and _raises_only(inner):
                if "g" in self.roles and any(span_of(s) == self.roles["g"].stmt for s in stmt.body) \
                        and not _loads(inner) & (step_stored | stored_before):
                    keeps.append(self._stmt_text(inner))  # (the head factor's check: _optional_head_scale)
                continue
            if isinstance(inner, ast.If) and isinstance(inner.test, ast.Compare) \
                    and (choice := self._dtype_mask_if(inner)) is not None:
                # `if m.dtype == torch.bool: <fill> else: <add>`: one step is matched, the other
                # branch applies the same mask as SDPA reads it; m may not be a value the
                # attention or the if's earlier statements assign
                held = [r for r, n in self.roles.items() if n.stmt in choice["stmts"]]
                if len(held) == 1 and held[0] in ("f0", "f1", "b1", "m2") \
                        and not any(r in self.roles for r in VIEW_STEPS) \
                        and choice["mask"] not in step_stored | stored_before:
                    self.dtype_choices[held[0]] = choice
                    read_before |= _loads(inner)
                    stored_before |= stored_names(inner)
                    continue
            if isinstance(inner, ast.If) and not inner.orelse and _plain_test(inner.test) \
                    and not (read_names(inner.test) & (step_stored | stored_before)) \
                    and stored_names(inner) & step_stored and inner is stmt.body[-1]:
                # VITS' `if self.block_length is not None:` filling the scores outside a band,
                # after the mask step under `if mask is not None:`: a change the fused call does
                # not make, on a test it can read before the attention (neither reads nor
                # follows a value of it): the guard sends that case to the original, as an if
                # of its own between the steps (kind "guard"), and the fused path never runs it
                self.original_ifs.append((stmt, inner, False))
                continue
            if self._else_to_original(inner) and not (read_names(inner.test) & (step_stored | stored_before)):
                # the steps in the body of an if whose else branch does them another way: the
                # guard sends the else to the original (a test it can read before the attention)
                self.original_ifs.append((stmt, inner, True))
                for step in inner.body:
                    read_before |= _loads(step)
                    stored_before |= stored_names(step)
                continue
            stored_before |= stored_names(inner)
            if isinstance(inner, ast.Assert) and not (_changed(inner) & read_before):
                # ``assert attn_bias.ndim == sim.ndim``: a check of the mask's shape, kept on the
                # fused path with what it reads of the scores read off q and k
                text = self._scores_metadata(inner, step_stored, statement=True) \
                    if _loads(inner) & step_stored else self._stmt_text(inner)
                if text is not None:
                    keeps.append(text)
                    continue
            if isinstance(inner, ast.Delete) and self._unread_after(inner, stmt, step_stored):
                continue  # `del mask` of a name nothing reads later: the fused path may keep it bound
            if isinstance(inner, ast.If) and (chosen := self._sdpa_mask_choice(inner, stmt, step_stored)) is not None:
                self.mask_choices[chosen[0]] = chosen[1]  # the bias is the mask as SDPA reads it
                continue
            # A mask built in plain statements and loops (Swin's shift mask: a zero tensor
            # filled region by region in nested ``for`` loops): the fused path builds it under
            # the same test before the call, so it may not change what an earlier step read.
            if _plain_block(inner) and not (stored_names(inner) & step_stored) \
                    and not (_changed(inner) - _other_attributes_set(inner, read_steps)) & read_before \
                    and (not stmt.orelse or self._common_tail(stmt)):
                if not (_loads(inner) & step_stored):
                    keeps.append(self._stmt_text(inner))
                    continue
                # ``mask_value = -torch.finfo(dots.dtype).max``: the scores' dtype is the query's
                text = self._scores_metadata(inner, step_stored, statement=True) or \
                    self._rebound_metadata(inner, step_stored) or \
                    self._stand_in_statement(inner, stmt, step_stored)
                if text is not None:
                    keeps.append(text)
                    continue
            raise Skip(f"the if at line {stmt.lineno} does more than an attention step: "
                       f"{_step_if_detail(inner, step_stored, read_before, bool(stmt.orelse))}")
        return keeps

    def _rebound_metadata(self, inner: ast.stmt, step_stored: set) -> str | None:
        """:meth:`_scores_metadata` of ``inner`` where q's or k's name is the scores' too
        (linformer's ``Q = torch.matmul(Q, K)`` then, in the mask's if, ``self.mask =
        self.mask.to(Q.device)``): read before :attr:`kept_names` is settled, with the names
        :meth:`_rebound_by_steps` would keep (on the fused path they still hold q and k, whose
        dtype, device and shape the swap reads); None where there are none."""
        if hasattr(self, "kept_names") or not hasattr(self, "step_region"):
            return None
        q, k, _ = self._operands()
        names = (read_names(q[1]) | read_names(k[1])) & step_stored & _loads(inner)
        names = {n for n in names if self._rebound_by_steps({n}, self.step_region)}
        if not names:
            return None
        self.kept_names = names
        try:
            return self._scores_metadata(inner, step_stored, statement=True)
        finally:
            del self.kept_names

    def _fresh_tensor_stores(self, stmt: ast.stmt) -> bool:
        """Does ``stmt`` store by index or attribute only into tensors it makes itself?  Each
        such store (``mask[i] = ...``, ``mask[i, :, :n] = 0``) is an index into a name that
        ``stmt`` first binds to a new tensor of a torch factory (``mask = torch.zeros(B, T, n,
        device=...)``) and otherwise only to views or copies of that name (``mask =
        mask.unsqueeze(1).expand(...)``): the writes then change no tensor the attention reads
        (q, k, v, an earlier mask), so the statement may run before the fused call as well as
        after the scores' product.  No attribute store (``self.x = ...``) is read that way.
        The branches of an ``if`` are read apart (the else branch may bind the name to a
        buffer's slice, which it never writes)."""
        if isinstance(stmt, ast.If):
            return all(self._fresh_tensor_stores_in(block) for block in (stmt.body, stmt.orelse))
        return self._fresh_tensor_stores_in([stmt])

    def _fresh_tensor_stores_in(self, block: list[ast.stmt]) -> bool:
        """:meth:`_fresh_tensor_stores` of the statements ``block`` (one branch)."""
        nodes = [n for stmt in block for n in ast_walk(stmt)]
        stores = [n for n in nodes if isinstance(n, (ast.Attribute, ast.Subscript))
                  and isinstance(n.ctx, ast.Store)]
        if not stores:
            return True
        bases = set()
        for node in stores:
            base = node
            while isinstance(base, ast.Subscript):
                base = base.value
            if not isinstance(base, ast.Name):
                return False  # self.cache[i] = ..., or an attribute store
            bases.add(base.id)
        assigns = sorted((n for n in nodes if isinstance(n, (ast.Assign, ast.AugAssign, ast.AnnAssign))),
                         key=lambda n: (n.lineno, n.col_offset))
        loop_targets = set().union(*(read_names(n.target) for n in nodes if isinstance(n, ast.For)))
        for name in bases:
            if name in loop_targets:
                return False
            first = True
            for node in assigns:
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                if not any(isinstance(t, ast.Name) and t.id == name for t in targets):
                    if any(name in read_names(t) for t in targets if not isinstance(t, (ast.Subscript, ast.Name))):
                        return False  # (bound inside a tuple target or the like)
                    continue  # (an index store into the name is no binding of it)
                value = node.value if isinstance(node, ast.Assign) and len(node.targets) == 1 else None
                if value is None:
                    return False
                if first:
                    factory = (self.names.resolve(value.func) or "") if isinstance(value, ast.Call) else ""
                    made = factory.startswith("torch.") and factory.rsplit(".", 1)[-1] in FACTORIES
                    if not made:
                        return False
                    first = False
                    continue
                root = value  # a later binding: a chain of method calls on the name itself
                while isinstance(root, ast.Call) and isinstance(root.func, ast.Attribute):
                    root = root.func.value
                if not (isinstance(root, ast.Name) and root.id == name):
                    return False
            if first:
                return False  # stored into, never made here
        return True

    def _check_settings_sent(self, sent: set[str]) -> None:
        """Every configuration test the match went around (``Match.settings``: a step only that
        ``if`` runs lies between the matched ones) is the test of an ``if`` statement of the
        region that the guard sends to the original path (``sent``: their tests, ``ast.dump``),
        so the fused path runs only where the test is false and the step would not run; else
        the match's own reason declines it (an if nested in another, or with the step in its
        else branch, is not read here)."""
        for text in self.match.settings:
            try:
                test = ast.parse(text.strip(), mode="eval").body
            except SyntaxError:
                raise Skip(self.match.unfixable) from None
            if ast.dump(test) not in sent:
                raise Skip(self.match.unfixable)

    def _sdpa_mask_choice(self, inner: ast.If, owner: ast.If, step_stored: set) -> tuple[str, ast.expr] | None:
        """An if / else in a mask step's ``if`` that turns a mask ``m`` into the bias ``b`` the
        step adds exactly as ``scaled_dot_product_attention`` reads its ``attn_mask`` (uni2ts'
        reference implementation): ``if m.dtype == torch.bool: b = zeros_like(scores);
        b.masked_fill_(m.logical_not(), -inf)`` (-inf where m is False, 0 where True: SDPA's
        boolean mask) ``else: b = m`` (a float mask, added as it is).  Returns (b, m) when the
        add step adds b whole, nothing else reads b, and m is a name nothing in the function
        reassigns after the if begins; the fused path then passes m and drops the if."""
        if not (isinstance(inner.test, ast.Compare) and len(inner.test.ops) == 1
                and isinstance(inner.test.ops[0], (ast.Eq, ast.Is))
                and isinstance(inner.test.left, ast.Attribute) and inner.test.left.attr == "dtype"
                and isinstance(inner.test.left.value, ast.Name)
                and self.names.resolve(inner.test.comparators[0]) == "torch.bool"):
            return None
        mask = inner.test.left.value
        if mask.id in step_stored or len(inner.orelse) != 1 or not isinstance(inner.orelse[0], ast.Assign):
            return None
        other = inner.orelse[0]
        if not (len(other.targets) == 1 and isinstance(other.targets[0], ast.Name)
                and isinstance(other.value, ast.Name) and other.value.id == mask.id):
            return None
        bias = other.targets[0].id

        def inverted(expr) -> bool:  # `~m`, `m.logical_not()`, `torch.logical_not(m)`
            if isinstance(expr, ast.UnaryOp) and isinstance(expr.op, ast.Invert):
                return isinstance(expr.operand, ast.Name) and expr.operand.id == mask.id
            if isinstance(expr, ast.Call) and not expr.keywords:
                if isinstance(expr.func, ast.Attribute) and expr.func.attr == "logical_not" and not expr.args:
                    return isinstance(expr.func.value, ast.Name) and expr.func.value.id == mask.id
                return self.names.resolve(expr.func) == "torch.logical_not" and len(expr.args) == 1 \
                    and isinstance(expr.args[0], ast.Name) and expr.args[0].id == mask.id
            return False

        def filled(call, method: str) -> bool:  # `<x>.<method>(~m, -inf)`
            return isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute) and call.func.attr == method \
                and len(call.args) == 2 and not call.keywords and inverted(call.args[0]) \
                and fill_value(call.args[1]) == "inf"

        body = inner.body
        first = body[0] if body else None
        if not (isinstance(first, ast.Assign) and len(first.targets) == 1 and isinstance(first.targets[0], ast.Name)
                and first.targets[0].id == bias):
            return None
        if len(body) == 1:  # b = zeros_like(scores).masked_fill(~m, -inf)
            value = first.value
            if not (filled(value, "masked_fill") and self._zeros_of_scores(value.func.value, step_stored)):
                return None
        elif len(body) == 2:  # b = zeros_like(scores); b.masked_fill_(~m, -inf)
            second = body[1]
            if not (self._zeros_of_scores(first.value, step_stored) and isinstance(second, ast.Expr)
                    and filled(second.value, "masked_fill_") and isinstance(second.value.func.value, ast.Name)
                    and second.value.func.value.id == bias):
                return None
        else:
            return None
        adds = {self.roles[r].stmt for r in ADD_STEPS if r in self.roles}
        readers = [s for s in owner.body if s is not inner and bias in _loads(s)]
        if len(readers) != 1 or span_of(readers[0]) not in adds or not self._added_as_is(readers[0], bias):
            return None
        func = self._function(owner)
        if func is None:
            return None
        start = (owner.lineno, owner.col_offset)
        inside = {id(n) for s in (inner, readers[0]) for n in ast_walk(s)}
        for node in ast_walk(func):
            if isinstance(node, ast.Name) and (node.lineno, node.col_offset) > start and (
                    (node.id == mask.id and not isinstance(node.ctx, ast.Load))
                    or (node.id == bias and id(node) not in inside)):
                return None  # m reassigned after the if begins; b read (or bound) elsewhere
        return bias, mask

    def _unread_after(self, stmt: ast.Delete, owner: ast.If, step_stored: set) -> bool:
        """Does ``del a, b`` (plain names the steps do not assign) delete names that no code
        after ``owner`` reads, ``owner`` in no loop?  Leaving them bound then changes nothing
        the function computes (only when their memory is freed)."""
        names = {t.id for t in stmt.targets if isinstance(t, ast.Name)}
        if len(names) != len(stmt.targets) or names & step_stored:
            return False
        func = self._function(owner)
        if func is None:
            return False
        end = (owner.end_lineno, owner.end_col_offset)
        parents = _parents(func)

        def rebound(read: ast.Name) -> bool:
            """Is ``read`` preceded, in a block holding it, by a plain assignment of its name
            after ``owner`` (dalle's causal branch: ``mask = torch.ones(...)`` then a read)?"""
            child, parent = read, parents.get(read)
            while parent is not None:
                for field in ("body", "orelse", "finalbody"):
                    block = getattr(parent, field, None)
                    if isinstance(block, list) and child in block:
                        for earlier in block[:block.index(child)]:
                            if isinstance(earlier, ast.Assign) and (earlier.lineno, earlier.col_offset) > end \
                                    and any(isinstance(t, ast.Name) and t.id == read.id for t in earlier.targets) \
                                    and read.id not in _loads(earlier):
                                return True
                if parent is func:
                    return False
                child, parent = parent, parents.get(parent)
            return False

        for node in ast_walk(func):
            if isinstance(node, (ast.For, ast.AsyncFor, ast.While)) and node.lineno <= owner.lineno \
                    and (node.end_lineno, node.end_col_offset) >= end:
                return False
            if isinstance(node, ast.Name) and node.id in names and (node.lineno, node.col_offset) > end \
                    and isinstance(node.ctx, ast.Load) and not rebound(node):
                return False
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)) and node is not func \
                    and names & {n.id for n in ast_walk(node) if isinstance(n, ast.Name)}:
                return False  # a closure reading the name
        return True

    def _elif_term(self, arm: tuple, before: set) -> str:
        """The guard term sending every arm of an if / elif chain but the steps' (``arm``, from
        :func:`_elif_arm`) to the original: an earlier test holds, or the arm's own fails (or,
        for the final else, holds).  The tests must read nothing the attention assigns before
        them (the guard reads them before the region)."""
        ifs, field = arm
        for test in (i.test for i in ifs):
            effect = _test_effect(test, self._pure_dict_get) or self._property_effect(test)
            if effect is not None:
                # the guard evaluates the test again before the chain runs (review58: a
                # ``self.kind()`` counting its calls would count twice)
                raise Skip(f"the if at line {ifs[0].lineno} tests {effect}, which the guard would run a second time")
            clash = read_names(test) & before
            if clash:
                raise Skip(f"the if at line {ifs[0].lineno} tests `{sorted(clash)[0]}`, assigned after the attention "
                           "begins")
        terms = [_guard_term(self._text(i.test), i.test) for i in ifs[:-1]]
        last = ifs[-1]
        text = self._text(last.test)
        terms.append(f"not {_atom(text, last.test)}" if field == "body" else _guard_term(text, last.test))
        return " or ".join(f"({t})" if " or " in t else t for t in terms)

    def _sent_branch_inputs(self, fused: list[ast.stmt], other: list[ast.stmt]) -> set[str]:
        """Names the branch sent to the original assigns anew (not only recast: alphafold2's
        tied-rows branch ``q, k = map(lambda t: rearrange(t, ...), (q, k))`` then ``q =
        q.mean(dim=1)``) that the fused path reads as their value from before the if, as the
        original does whenever the guard lets the fused path run.  Only where the fused
        branch holds nothing but the attention's steps (torchvision's Swin assigns its scale
        in the branch it would take, which the scale check would misread), and only names the
        function also binds elsewhere, so that no analysis reading a name assigned once takes
        the sent branch's value for it (:meth:`_resolve_local`).  Empty otherwise."""
        step_stmts = {n.stmt for n in self.nodes}
        if not fused or any(span_of(t) not in step_stmts for t in fused):
            return set()
        func = self._function(fused[0])
        if func is None:
            return set()
        sent = set().union(*(stored_names(t) for t in other))
        inside = {id(n) for t in other for n in ast_walk(t)}
        found = set()
        for name in sent:
            binds = [n for n in ast_walk(func) if isinstance(n, ast.Name) and n.id == name
                     and isinstance(n.ctx, ast.Store)]
            single = [n for n in ast_walk(func) if isinstance(n, ast.Assign) and len(n.targets) == 1
                      and isinstance(n.targets[0], ast.Name) and n.targets[0].id == name]
            params = any(isinstance(a, ast.arg) and a.arg == name for a in ast_walk(func.args))
            elsewhere = params or any(id(n) not in inside for n in binds)
            if elsewhere and not (len(single) == 1 and id(single[0]) in inside):
                found.add(name)
        return found

    def _check_branch(self, stmt: ast.If, field: str, step_stored: set, outer: ast.If | None = None) -> list[str]:
        """An if / else whose ``field`` branch holds attention steps: the statements of that
        branch other than the steps (``q = q * scale`` before ``attn = q @ k.T``), which the
        fused path runs in order; they may compute nothing from the attention and change
        nothing an earlier step read."""
        step_stmts = {n.stmt for n in self.nodes}
        read_before: set[str] = set()
        top = outer if outer is not None else stmt  # (an elif arm: the chain's first if, in the block)
        for outer in self.block:
            if outer is top:
                break
            read_before |= set().union(*(_loads(s) for s in ast_walk(outer)
                                         if isinstance(s, ast.stmt) and span_of(s) in step_stmts))
        keeps = []
        fresh: set[str] = set()  # names an earlier step of this branch assigned (a tensor it made)
        for inner in getattr(stmt, field):
            if span_of(inner) in step_stmts:
                if not isinstance(inner, (ast.Assign, ast.AnnAssign, ast.AugAssign)) \
                        and _in_place_step(inner) not in fresh:
                    raise Skip(f"the statement at line {inner.lineno} is not a plain assignment")
                read_before |= _loads(inner)
                fresh |= set(stored_names(inner))
                continue
            why = f"the if at line {stmt.lineno} does more than an attention step in the branch that holds it"
            if _input_assert(inner, step_stored):
                keeps.append(self._stmt_text(inner))  # PEER's causal ``assert not exists(mask)``
                continue
            if not _plain_block(inner) or stored_names(inner) & step_stored or _changed(inner) & read_before:
                raise Skip(why)
            if _loads(inner) & step_stored:
                # ``i, j = sim.shape[-2:]`` before the causal mask is built: what it reads of the
                # scores (their shape, dtype, device) read off q and k, as in a step's own if
                text = self._scores_metadata(inner, step_stored, statement=True)
                if text is None:
                    raise Skip(why)
                keeps.append(text)
                continue
            keeps.append(self._stmt_text(inner))
        return keeps

    # ------------------------------------------------------------------ operands
    @property
    def scores_t(self) -> bool:
        """The scores are written transposed, (keys, queries): ``k @ q^T`` normalised over
        dim -2 (the pattern's layouts; see the rule file)."""
        dim = dict(self._view("p0")[1]).get("dim")
        return isinstance(dim, Const) and dim.value == -2

    @property
    def context_t(self) -> bool:
        """The value product is written channel-first, ``v^T @ p^T`` (``torch.bmm(v, w_)``
        with ``w_`` the probabilities transposed, or an einsum "bts,bcs->bct"): it gives the
        context transposed, and v is the transpose of its first operand."""
        c_args = self._view("c")[0]
        return len(c_args) == 2 and c_args[0] == self.env.get("v")

    def _operand(self, role: str, index: int, transposed: bool, broadcast: bool = True) -> tuple[str, ast.expr]:
        """(text, expression) of operand ``index`` of the product ``role``, or of its
        transpose: an operand written as a transpose of the last two axes in the product
        (``k.transpose(-2, -1)``, the transposed operand of an einsum) reads as the value it
        transposes, any other one as ``x.transpose(-2, -1)``, which is exact whatever x is.
        An operand an einsum broadcasts over axes it lacks (multi-query keys and values, one
        head for all: ``einsum("b h i d, b j d -> b h i j", q, k)``) gets a size-1 axis in
        each place, ``k.unsqueeze(-3)``: SDPA broadcasts it over q's heads as the einsum did
        (its reference ``q @ k.transpose(-2, -1)`` is a broadcasting matmul)."""
        found = self._operand_written(role, index, transposed)
        view = self.roles[role].view
        dims = view.broadcast[index] if broadcast and view is not None and view.broadcast else ()
        for dim in dims:
            text = f"{_atom(*found)}.unsqueeze({dim})"
            found = text, ast.parse(text, mode="eval").body
        return found

    def _moved(self, role: str, text: str, move: tuple) -> str:
        """``text`` with an einsum's axis move applied: ``.permute(*move)``, or, where the
        equation starts with ``...`` (the move is of the last ``len(move)`` axes of a tensor of
        any rank: ESMFold's ``"...hqk,...hkc->...qhc"``), ``.movedim`` of those axes."""
        node = self.roles[role]
        written = self.index.segment(node.span) if node.span is not None else ""
        if "..." not in written:
            return f"{text}.permute{move}"
        size = len(move)
        return f"{text}.movedim({tuple(m - size for m in move)}, {tuple(range(-size, 0))})"

    def _operand_written(self, role: str, index: int, transposed: bool) -> tuple[str, ast.expr]:
        _, _, spans, _ = self._view(role)
        if len(spans) != 2:
            raise Skip("a matrix product with other than two operands")
        view = self.roles[role].view
        move = view.moves[index] if view is not None and view.moves else None
        if move is not None:
            # an einsum operand whose axes the product reads moved: x.permute(...) as written,
            # then the transpose the einsum implies (its span is None), as for any operand
            origin = view.origins[index] if view.origins else None
            written = spans[index] if spans[index] is not None else (origin[0] if origin is not None else None)
            if written is None:
                raise Skip("an operand of the attention could not be read")
            text = self._moved(role, _atom(*self._spanned(written)), move)
            found = text, ast.parse(text, mode="eval").body
            if spans[index] is None:  # the einsum's implied transpose: found is what it transposes
                return found if transposed else _transposed(found)
            return _transposed(found) if transposed else found
        origin = view.origins[index] if view is not None and view.origins else None
        three_d = self.roles[role].op.rsplit(".", 1)[-1] == "bmm"  # torch.bmm / x.bmm: 3-D operands
        # (at the rank the guard checks, _rank_terms, the last two axes counted from the front)
        rank = 3 if three_d else getattr(self, "assumed_rank", None)
        if origin is not None and (set(origin[1]) == {-2, -1} or (rank and set(origin[1]) == {rank - 2, rank - 1})):
            inner = self._spanned(origin[0])
            if transposed:
                return inner
            if spans[index] is None:  # a transpose the einsum implies: not written anywhere
                return _transposed(inner)
        if spans[index] is None:
            raise Skip("an operand of the attention could not be read")
        found = self._spanned(spans[index])
        return _transposed(found) if transposed else found

    def _operands(self, broadcast: bool = True, scaled: bool = True):
        """(text, expression) of q, k and v as the fused call takes them: scores ``a @ b`` are
        ``q @ k^T`` (q is a, k is b transposed) or, normalised over dim -2, ``k @ q^T``; the
        context ``p @ v``, or channel-first ``v^T @ p^T`` (v is its first operand transposed)."""
        c_view = self.roles["c"].view
        s_view = self.roles["s0"].view
        if (c_view is not None and c_view.grouped) or (s_view is not None and s_view.grouped):
            # einsum("bnchw,bncyx->bnhwyx", q, k): attention over grouped axes (structure/
            # groups.py); SDPA takes q, k and v with each group flattened (_grouped)
            if "g" in self.roles:
                # (the factor is laid out for the probabilities over the flattened key group, not
                # for the values moved to (batch, key group, feature))
                raise Skip("the attention runs over grouped query or key axes, with the probabilities scaled "
                           "per head")
            return self._grouped()["operands"]
        if c_view is not None and c_view.broadcast and \
                set(c_view.broadcast[1 if self.context_t else 0]) - set(c_view.squeezed or ()):
            # einsum("b s i j, b r j d -> b s r i d", p, v): the context has an axis only the
            # values have, the probabilities broadcast over it; SDPA's q, k and mask would each
            # need that axis too (compositional attention's retrievals).  (A single query's
            # axis, absent from the probabilities and squeezed from the context, is no such axis.)
            raise Skip("the probabilities are broadcast over an axis of the values (an einsum output axis "
                       "the scores lack)")
        if self.scores_t:
            k, q = self._operand("s0", 0, False, broadcast), self._operand("s0", 1, True, broadcast)
        else:
            q, k = self._operand("s0", 0, False, broadcast), self._operand("s0", 1, True, broadcast)
        v = self._operand("c", 0, True, broadcast) if self.context_t else self._operand("c", 1, False, broadcast)
        if "g" in self.roles and scaled:
            v = self._head_scaled(v)
        return q, k, v

    def _head_scaled(self, v: tuple[str, ast.expr]) -> tuple[str, ast.expr]:
        """v with the probabilities' per-head factor folded in: ``softmax(s) * w`` with w a
        number or of size 1 on the last two axes (structure/headscale.py) is constant over the
        queries and keys, and the value product is linear, so ``(p * w) @ v`` is ``p @ (v * w)``
        (w broadcast as matmul broadcasts v's batch axes over p's; a dropout between the two
        multiplies each probability alike).  The fused call takes ``v * w``."""
        spans = self._view("g")[2]
        if len(spans) != 2 or spans[1] is None:
            raise Skip("the probabilities are scaled per head by a factor that could not be read")
        w_text, w_node = self._spanned(spans[1])
        text = f"{_atom(*v)} * {_atom(w_text, w_node)}"
        _, chain = self._top(self.roles["g"])
        if len(chain) == 2 and isinstance(chain[0], ast.If) and not chain[0].orelse:
            # transformers' ``if layer_head_mask is not None: attn = mask.view(1, -1, 1, 1) *
            # attn``: the factor only where the test holds (_optional_head_scale)
            test = chain[0].test
            text = f"{_atom(*v)} * {_atom(w_text, w_node)} if {self._text(test)} else {v[0]}"
        return text, ast.parse(text, mode="eval").body

    def _optional_head_scale(self, if_stmt: ast.If, all_stored: set, step_stored: set) -> bool:
        """The per-head factor of the probabilities (role g) under ``if <test>:`` with no else:
        a test the fused call can read (plain, reading nothing the attention assigns, so the
        same before the region as at the step) and, beside the step, only checks that raise
        (``if layer_head_mask.size() != (h,): raise ValueError(...)``) reading no value of the
        attention.  The fused call takes ``v * w if <test> else v`` (:meth:`_head_scaled`) and
        the checks run under the same test (:meth:`_check_step_if`)."""
        if if_stmt.orelse or not _plain_test(if_stmt.test) or read_names(if_stmt.test) & all_stored:
            return False
        g_stmt = self.roles["g"].stmt
        for inner in if_stmt.body:
            if span_of(inner) == g_stmt:
                continue
            if not (isinstance(inner, ast.If) and _raises_only(inner)) or _loads(inner) & (step_stored | all_stored):
                return False
        return True

    def _subtracted(self, role: str) -> bool:
        """Is the add step ``role`` written as a subtraction (``s - 1e30 * m``, read as
        ``s + (-(1e30 * m))``)?"""
        node = self.roles[role]
        if node.op != "+" or node.span is None:
            return False
        expr = self.index.expr_at(node.span)
        return expr.__class__ is ast.BinOp and expr.op.__class__ is ast.Sub

    def _operand_of(self, role: str, var: str) -> ast.expr:
        """The code operand of a binary step that the pattern bound to ``$var``."""
        args, _, spans, _ = self._view(role)
        bound = self.env.get(var)
        for position, value in enumerate(args[:2]):
            if value == bound:
                return self._at(spans[position], f"the {var} operand")
        raise Skip(f"the {var} operand at line {self.roles[role].line} could not be located")

    # ------------------------------------------------------------------ the call
    def _call(self, q, k, v, conditions: dict, stored: set) -> str:
        local, request = self.planner.names.local(self.rule.kernel.import_)
        self.edits_import = request
        scale, factors = self._scale(stored, conditions)
        s0_view = self.roles["s0"].view
        if factors and s0_view is not None and s0_view.out_move is not None:
            raise Skip("the scores are written with their axes moved (the keys not last) and scaled by a tensor "
                       "laid out for them: not folded into the moved query")
        if factors and s0_view is not None and s0_view.grouped:
            raise Skip("the attention runs over grouped query or key axes, with the scores scaled by a tensor "
                       "laid out over the groups")
        q_text = q[0]
        for symbol, text in factors:  # a tensor temperature, folded into the query
            q_text = f"{_atom(q_text, q[1]) if q_text == q[0] else q_text} {symbol} {text}"
        args = [q_text, k[0], v[0]]
        mask = self._mask(conditions, stored)
        squeezed = self._squeezed_query(factors, mask)
        if self.zeroed_rows is not None:
            # A row the finite fill covers whole is uniform in the original (every score the
            # same fill) and passes no gradient to q or k; the fused call adds the fill to the
            # row's scores, which passes gradients through them (and which a fill that does not
            # swamp the scores shows in the forward too), and its backward recomputes the
            # weights from the row's log-sum-exp, which at the fill's magnitude loses the
            # log of the row's length (every weight 1).  With the query zeroed on such rows
            # (a `where`: no gradient reaches q there) and the mask left at 0 on them (_mask),
            # the row's scores are exactly 0: uniform, forward and backward, as the original's,
            # and q and k get nothing from it.
            fill = self.zeroed_rows
            torch = self._torch("zeroing the query on the rows the fill hides entirely")
            where = fill["where"]
            rows = f"{where if _wrapped(where) else _atom(where, ast.parse(where, mode='eval').body)}.all(-1, keepdim=True)"
            zeroed = f"{torch}.where({rows}, 0.0, {q_text})"
            if fill["test"] is not None:
                zeroed = f"{zeroed} if {self._text(fill['test'])} else {q_text}"
            q_text = zeroed
        args = [q_text, k[0], v[0]]
        if mask is not None:
            args.append(f"attn_mask={mask}")
        if "p1" in self.roles:
            rate = self._dropout("p1")
            if "p1" in conditions:  # `if dropout is not None: p = dropout(p)`
                rate = f"({rate}) if {self._text(conditions['p1'])} else 0.0"
            args.append(f"dropout_p={rate}")
        args.append(f"scale={scale}")
        call = f"{local}({', '.join(args)})"
        # the channel-first product gives the context transposed: so does the fused path, laid
        # out as the product's own result is (contiguous: timm's LeViT `.view`s it next, which
        # a transposed view of the fused output cannot take)
        if self.context_t:
            call = f"{call}.transpose(-2, -1).contiguous()"
        view = self.roles["c"].view
        if squeezed:
            call = f"{call}.squeeze(-2)"  # one query written without a query axis (einsum_vector)
        if view is not None and view.out_move is not None:
            call = self._moved("c", call, view.out_move)  # the einsum wrote the context's axes moved
        if view is not None and view.grouped:
            call = f"{call}{self._grouped()['output']}"  # the query group and the axes as written
        return call

    def _grouped_back(self, stmt: ast.stmt, step_stored: set) -> bool:
        """``attn = rearrange(attn, "b k h w (n i j) -> b k h w n i j", ...)`` (or a ``.view``)
        between the softmax and the value product of attention over grouped axes: the view
        back to the key group that structure/groups.py verified (the flow reads it as a
        copy); the fused path, which takes the groups flattened, drops it."""
        view = self.roles["s0"].view
        value = stmt.value if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 else None
        if view is None or not view.grouped or not isinstance(value, ast.Call) \
                or not isinstance(stmt.targets[0], ast.Name) or "p0" not in self.roles \
                or not self.roles["p0"].line < stmt.lineno < self.roles["c"].line:
            return False
        source = value.func.value if isinstance(value.func, ast.Attribute) and value.func.attr in ("view", "reshape") \
            else value.args[0] if value.args and isinstance(value.func, (ast.Name, ast.Attribute)) \
            and (value.func.attr if isinstance(value.func, ast.Attribute) else value.func.id) == "rearrange" else None
        if isinstance(source, ast.Name) and source.id not in step_stored and isinstance(value.func, ast.Attribute) \
                and value.func.attr == "reshape" and self.names.resolve(value.func) == "torch.reshape" \
                and len(value.args) == 2 and not value.keywords:
            source = value.args[0]  # torch.reshape(attn, (b, k, h, w, n, i, j)): the function form (graph reads it so)
        return isinstance(source, ast.Name) and source.id in step_stored

    def _equation(self, role: str) -> str:
        """The equation of the einsum the step ``role`` is (its first argument, a string)."""
        node = self.roles[role]
        written = self.index.segment(node.span) if node.span is not None else ""
        try:
            tree = ast.parse(written.strip(), mode="eval").body
        except SyntaxError:
            tree = None
        for call in ast_walk(tree) if tree is not None else ():
            if isinstance(call, ast.Call) and call.args and isinstance(call.args[0], ast.Constant) \
                    and isinstance(call.args[0].value, str) and "->" in call.args[0].value:
                return call.args[0].value.replace(" ", "")
        raise Skip("the attention runs over grouped query or key axes, in an einsum whose equation could not be read")

    def _grouped(self) -> dict:
        """Attention over grouped axes (structure/groups.py) as SDPA takes it: the scores'
        einsum ``"<q>,<k>-><B><Q><K>"`` (batch axes B, the query group Q, the key group K, one
        summed index d) and the values' ``"<B'><Q'><K'>,<v>-><out>"`` (the probabilities'
        axes, read by position, the values' own index e).  q is moved to B Q d, k to B K d, v
        to B' K' e (a batch axis an operand lacks a size-1 axis in its place, broadcast as
        the einsum broadcasts it), each group flattened to one axis in the order the scores
        write it (the order the view around the softmax flattens); the fused output (B', Q
        flattened, e) gets the query group back from q's sizes and its axes moved to the
        written ``out``.  Declined where a mask or bias is added to the scores (laid out over
        the groups, not flattened) or q's sizes cannot be read without computing it again."""
        cached = getattr(self, "_grouped_plan", None)
        if cached is not None:
            return cached
        for role in ADD_STEPS + FILL_STEPS:
            if role in self.roles:
                raise Skip("the attention runs over grouped query or key axes, with a mask or bias added to the "
                           "scores laid out over the groups")
        scores, values = self._equation("s0"), self._equation("c")
        (x, y), out = scores.split("->")[0].split(","), scores.split("->")[1]
        _, first, rank, keys, rows = self.roles["s0"].view.grouped
        qa, ka = (x, y) if first == 0 else (y, x)
        nb = rank - keys - rows
        batch, group, kgroup = out[:nb], out[nb:rank - keys], out[rank - keys:]
        summed = [c for c in qa if c in ka and c not in out]
        (px, py), vout = values.split("->")[0].split(","), values.split("->")[1]
        _, pfirst, vrank, vkeys, vrows = self.roles["c"].view.grouped
        pa, va = (px, py) if pfirst == 0 else (py, px)
        if len(summed) != 1 or (vrank, vkeys, vrows) != (rank, keys, rows) or len(pa) != rank:
            raise Skip("the attention runs over grouped query or key axes the value product reads otherwise")
        own = [c for c in va if c not in pa]
        vbatch, vgroup, vkgroup = pa[:nb], pa[nb:rank - keys], pa[rank - keys:]
        if len(own) != 1 or any(c not in batch for c in qa if c not in group + summed[0]):
            raise Skip("the attention runs over grouped query or key axes the value product reads otherwise")
        spans = self._view("s0")[2]
        c_spans = self._view("c")[2]
        if len(spans) != 2 or len(c_spans) != 2 or None in spans or None in c_spans:
            raise Skip("an operand of the attention could not be read")
        q, k, v = self._spanned(spans[0]), self._spanned(spans[1]), self._spanned(c_spans[1])

        def laid(operand, letters: str, lead: str, grouped: str, last: str) -> tuple[str, ast.expr]:
            text = _atom(*operand)
            present = [c for c in lead + grouped + last if c in letters]
            order = tuple(letters.index(c) for c in present)
            if len(order) != len(letters):
                raise Skip("the attention runs over grouped query or key axes the value product reads otherwise")
            if order != tuple(range(len(order))):
                text = f"{text}.permute{order}"
            for at, c in enumerate(lead):
                if c not in letters:
                    text = f"{text}.unsqueeze({at})"  # a batch axis the einsum broadcasts it over
            if len(grouped) > 1:
                text = f"{text}.flatten({len(lead)}, {len(lead) + len(grouped) - 1})"
            return text, ast.parse(text, mode="eval").body

        operands = (laid(q, qa, batch, group, summed[0]), laid(k, ka, batch, kgroup, summed[0]),
                    laid(v, va, vbatch, vkgroup, own[0]))
        output = ""
        if len(group) > 1:
            if not isinstance(q[1], (ast.Name, ast.Attribute)):
                raise Skip("the attention runs over grouped query axes, of a query that is not a name (its "
                           "sizes restore the group)")
            at = [qa.index(c) for c in group]
            sizes = f"{q[0]}.shape[{at[0]}:{at[-1] + 1}]" if at == list(range(at[0], at[-1] + 1)) \
                else "(" + ", ".join(f"{q[0]}.shape[{i}]" for i in at) + ")"
            output = f".unflatten({nb}, {sizes})"
        laid_out = vbatch + vgroup + own[0]
        if sorted(laid_out) != sorted(vout):
            raise Skip("the attention runs over grouped query or key axes the value product reads otherwise")
        move = tuple(laid_out.index(c) for c in vout)
        if move != tuple(range(len(move))):
            output += f".permute{move}"
        self._grouped_plan = {"operands": operands, "output": output}
        return self._grouped_plan

    def _keeps_first_key(self, fill: dict) -> bool:
        """Does the finite fill leave the first key of every query row unfilled, whatever the
        sizes?  Read for a triangle of ones (``torch.tril``/``triu`` of ``torch.ones``, or
        ``x.tril()``/``triu``), through the module's buffers, locals assigned once, views,
        casts and slices that keep the keys' axis from 0 (``bias[:, :, ns - nd:ns, :ns]``),
        ``== 0``/``~``/``logical_not``: a fill where ``tril(d)`` (d >= 0) does not hold, or
        where ``triu(d)`` (d >= 1) holds, keeps key 0 in every row.  False for anything else
        (undecided: the rows' guard)."""
        found = self._triangle(fill["cond"], 0)
        if found is None:
            return self._keeps_own_key(fill)
        kind, diagonal, negated = found
        filled_where_true = fill["filled_by_cond"] != negated  # (the fill's region is the triangle's)
        if kind == "tril":
            return not filled_where_true and diagonal >= 0
        return filled_where_true and diagonal >= 1

    def _keeps_own_key(self, fill: dict) -> bool:
        """Does the finite fill leave each query row's own key unfilled, whatever the sizes?  Read
        for a slice ``B[..., a:n, :n]`` (the rows' and the keys' slices ending at the same ``n``,
        the keys' from 0) of a square buffer ``B`` whose diagonal holds true (:meth:`_diagonal_true`:
        a causal ``tril``, or a band such as ``bitwise_xor(tril, tril(-w))`` with a literal
        ``w >= 1``), kept where true: a row ``r`` of the slice is buffer row ``r < n``, whose key
        ``r`` lies among the keys ``0..n-1``.  False for anything else (the rows' guard)."""
        found = self._own_key_slice(fill["cond"], 0)
        return found is not None and fill["filled_by_cond"] == found

    def _own_key_slice(self, expr: ast.expr, depth: int) -> bool | None:
        """Negated-ness of ``expr`` as :meth:`_keeps_own_key` reads it; None when it is no such
        slice."""
        if depth > 8:
            return None
        if isinstance(expr, ast.Name):
            value = self._resolve_local(expr)
            return None if value is expr else self._own_key_slice(value, depth + 1)
        if isinstance(expr, ast.UnaryOp) and isinstance(expr.op, (ast.Invert, ast.Not)):
            inner = self._own_key_slice(expr.operand, depth + 1)
            return None if inner is None else not inner
        if isinstance(expr, ast.Compare) and len(expr.ops) == 1 and isinstance(expr.ops[0], (ast.Eq, ast.NotEq)) \
                and isinstance(expr.comparators[0], ast.Constant) and expr.comparators[0].value in (0, 1) \
                and not isinstance(expr.comparators[0].value, bool):
            inner = self._own_key_slice(expr.left, depth + 1)
            flip = (expr.comparators[0].value == 0) == isinstance(expr.ops[0], ast.Eq)
            return None if inner is None else inner != flip
        if isinstance(expr, ast.Call) and isinstance(expr.func, ast.Attribute) and not expr.args \
                and not expr.keywords and expr.func.attr in ("bool", "contiguous", "detach", "clone"):
            return self._own_key_slice(expr.func.value, depth + 1)
        if not isinstance(expr, ast.Subscript) or not isinstance(expr.slice, ast.Tuple):
            return None
        parts = expr.slice.elts
        if len(parts) < 2 or not all(isinstance(p, ast.Slice) and p.step is None for p in parts[-2:]):
            return None
        rows, keys = parts[-2], parts[-1]
        if rows.upper is None or keys.upper is None or ast.dump(rows.upper) != ast.dump(keys.upper) \
                or any(isinstance(n, ast.Call) for n in ast_walk(rows.upper)) \
                or not (keys.lower is None or isinstance(keys.lower, ast.Constant) and keys.lower.value == 0) \
                or any(isinstance(p, ast.Starred) or isinstance(p, ast.Constant) and p.value in (None, Ellipsis)
                       for p in parts[:-2]):
            return None
        return False if self._diagonal_true(expr.value, 0, set()) else None

    def _diagonal_true(self, expr: ast.expr, depth: int, visiting: set) -> bool:
        """Is ``expr`` a square tensor of ones-and-zeros whose diagonal holds true: a square
        ``torch.ones``, ``tril(d >= 0)`` / ``triu(d <= 0)`` of one, casts and views of one, the
        module's buffers (every value it registers; an ``__init__`` local assigned several times,
        each value reading the earlier one, as GPT-Neo's local-window buffer), and ``&`` of two
        such, ``xor``/``& ~`` of one with a tensor whose diagonal is false (:meth:`_diagonal_false`)."""
        if depth > 10:
            return False
        if isinstance(expr, ast.Name):
            found = self._init_values(expr)
            if found is None:
                return False
            key, values = found
            if key in visiting:
                return True  # (a value that reads the name's earlier value: each assignment keeps it)
            return bool(values) and all(self._diagonal_true(v, depth + 1, visiting | {key}) for v in values)
        if isinstance(expr, ast.Attribute) and isinstance(expr.value, ast.Name) and expr.value.id == "self":
            values = self._attribute_values(expr.attr)
            return bool(values) and not self._attribute_changed_in_place(expr.attr) \
                and all(self._diagonal_true(v, depth + 1, visiting) for v in values)
        if isinstance(expr, ast.BinOp) and isinstance(expr.op, (ast.BitXor, ast.BitAnd)):
            pair = (expr.left, expr.right)
            return self._diagonal_pair(pair, isinstance(expr.op, ast.BitXor), depth, visiting)
        if not isinstance(expr, ast.Call):
            return False
        func = expr.func
        fqn = self.names.resolve(func) or ""
        method = not fqn.startswith("torch.") and isinstance(func, ast.Attribute)
        name = fqn.rsplit(".", 1)[-1] if not method else func.attr
        if not method and fqn and not fqn.startswith("torch."):
            return False
        if not method and name == "ones":
            sizes = expr.args[0].elts if len(expr.args) == 1 and isinstance(expr.args[0], (ast.Tuple, ast.List)) \
                else expr.args
            return len(sizes) == 2 and ast.dump(sizes[0]) == ast.dump(sizes[1]) \
                and not any(isinstance(n, ast.Call) for n in ast_walk(sizes[0]))
        if name in ("tril", "triu"):
            base = func.value if method else (expr.args[0] if expr.args else None)
            d = self._literal_diagonal(expr, method)
            if base is None or d is None or (d < 0 if name == "tril" else d > 0):
                return False
            return self._diagonal_true(base, depth + 1, visiting)
        if name in ("bitwise_xor", "logical_xor", "bitwise_and", "logical_and"):
            pair = (func.value, *expr.args) if method else tuple(expr.args)
            if len(pair) != 2 or expr.keywords:
                return False
            return self._diagonal_pair(pair, name.endswith("xor"), depth, visiting)
        if method and name in ("view", "reshape", "bool", "byte", "float", "to", "type", "unsqueeze", "expand",
                               "contiguous", "detach", "clone"):
            return self._diagonal_true(func.value, depth + 1, visiting)
        return False

    def _diagonal_pair(self, pair: tuple, xor: bool, depth: int, visiting: set) -> bool:
        a, b = pair
        if xor:
            return any(self._diagonal_true(x, depth + 1, visiting) and self._diagonal_false(y, depth + 1)
                       for x, y in ((a, b), (b, a)))
        inverted = [isinstance(x, ast.UnaryOp) and isinstance(x.op, ast.Invert) for x in pair]
        return all(self._diagonal_false(x.operand, depth + 1) if inv else self._diagonal_true(x, depth + 1, visiting)
                   for x, inv in zip(pair, inverted))

    def _diagonal_false(self, expr: ast.expr, depth: int) -> bool:
        """Is ``expr`` a ``tril`` with a literal diagonal below 0 (or ``triu`` above 0) of anything:
        false on the diagonal, whatever it triangles."""
        if depth > 10 or not isinstance(expr, ast.Call):
            return False
        func = expr.func
        fqn = self.names.resolve(func) or ""
        method = not fqn.startswith("torch.") and isinstance(func, ast.Attribute)
        name = fqn.rsplit(".", 1)[-1] if not method else func.attr
        if (not method and not fqn.startswith("torch.")) or name not in ("tril", "triu"):
            return False
        d = self._literal_diagonal(expr, method)
        return d is not None and (d < 0 if name == "tril" else d > 0)

    def _literal_diagonal(self, expr: ast.Call, method: bool) -> int | None:
        operands = list(expr.args if method else expr.args[1:])
        diagonal = next((k.value for k in expr.keywords if k.arg == "diagonal"), operands[0] if operands else None)
        d = 0 if diagonal is None else numeric_literal(diagonal)
        return d if isinstance(d, int) and not isinstance(d, bool) else None

    def _init_values(self, name: ast.Name) -> tuple | None:
        """((the method's line, the name), every value the method of the class holding ``name``
        assigns it: plain one-target assignments, the only stores of it there; not a
        parameter); None otherwise."""
        cls = self._class()
        line = getattr(name, "lineno", None)
        for func in (cls.body if cls is not None and line is not None else ()):
            if isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef)) \
                    and func.lineno <= line <= (func.end_lineno or func.lineno):
                stores = [n for n in ast_walk(func) if isinstance(n, ast.Name) and n.id == name.id
                          and isinstance(n.ctx, (ast.Store, ast.Del))]
                assigns = [a for a in ast_walk(func) if isinstance(a, ast.Assign) and len(a.targets) == 1
                           and isinstance(a.targets[0], ast.Name) and a.targets[0].id == name.id]
                if any(isinstance(a, ast.arg) and a.arg == name.id for a in ast_walk(func.args)) \
                        or len(stores) != len(assigns):
                    return None
                return (func.lineno, name.id), [a.value for a in assigns]
        return None

    def _triangle(self, expr: ast.expr, depth: int) -> tuple[str, int, bool] | None:
        """(``"tril"``/``"triu"``, the diagonal, negated) where ``expr`` is (the negation of) a
        triangle of ones as :meth:`_keeps_first_key` reads it; None otherwise."""
        if depth > 8:
            return None
        if isinstance(expr, ast.Name):
            value = self._resolve_local(expr)
            if value is expr:
                value = self._assigned_once_around(expr)  # (a buffer's value: a local of __init__)
            return None if value is None or value is expr else self._triangle(value, depth + 1)
        if isinstance(expr, ast.Attribute) and isinstance(expr.value, ast.Name) and expr.value.id == "self":
            if self._attribute_changed_in_place(expr.attr):
                return None  # (no longer the triangle it was made as)
            values = self._attribute_values(expr.attr)
            found = {self._triangle(v, depth + 1) for v in values}
            return found.pop() if len(found) == 1 else None
        if isinstance(expr, ast.UnaryOp) and isinstance(expr.op, (ast.Invert, ast.Not)):
            inner = self._triangle(expr.operand, depth + 1)
            return None if inner is None else (inner[0], inner[1], not inner[2])
        if isinstance(expr, ast.Compare) and len(expr.ops) == 1 and isinstance(expr.ops[0], (ast.Eq, ast.NotEq)) \
                and isinstance(expr.comparators[0], ast.Constant) and expr.comparators[0].value in (0, 1) \
                and not isinstance(expr.comparators[0].value, bool):
            inner = self._triangle(expr.left, depth + 1)
            flip = (expr.comparators[0].value == 0) == isinstance(expr.ops[0], ast.Eq)
            return None if inner is None else (inner[0], inner[1], inner[2] != flip)
        if isinstance(expr, ast.Subscript):
            index = expr.slice
            parts = list(index.elts) if isinstance(index, ast.Tuple) else [index]
            last = next((p for p in reversed(parts) if not (isinstance(p, ast.Constant) and p.value is None)), None)
            keys_kept = last is None or (isinstance(last, ast.Constant) and last.value is Ellipsis) or (
                isinstance(last, ast.Slice) and last.step is None
                and (last.lower is None or isinstance(last.lower, ast.Constant) and last.lower.value == 0))
            if not keys_kept or (parts and isinstance(parts[-1], ast.Constant) and parts[-1].value is None):
                return None  # (a column picked or shifted, or a new last axis: not the keys' axis as made)
            return self._triangle(expr.value, depth + 1)
        if not isinstance(expr, ast.Call):
            return None
        func = expr.func
        fqn = self.names.resolve(func) or ""
        name = fqn.rsplit(".", 1)[-1] if fqn.startswith("torch.") else func.attr if isinstance(func, ast.Attribute) \
            else ""
        method = not fqn.startswith("torch.") and isinstance(func, ast.Attribute)
        if name in ("tril", "triu", "tril_", "triu_"):
            operands = list(expr.args[1:] if not method else expr.args)
            base = (expr.args[0] if expr.args else None) if not method else func.value
            diagonal = next((k.value for k in expr.keywords if k.arg == "diagonal"), operands[0] if operands else None)
            d = 0 if diagonal is None else numeric_literal(diagonal)
            if base is None or not isinstance(d, int) or isinstance(d, bool) or not self._ones(base):
                return None
            return name.rstrip("_"), d, False
        if name == "logical_not":
            inner = self._triangle(func.value if method else (expr.args[0] if expr.args else None), depth + 1) \
                if (method or expr.args) else None
            return None if inner is None else (inner[0], inner[1], not inner[2])
        if method and name in ("view", "reshape", "bool", "byte", "float", "half", "int", "long", "to", "type",
                               "unsqueeze", "expand", "expand_as", "contiguous", "detach", "clone", "cuda", "cpu"):
            return self._triangle(func.value, depth + 1)
        return None

    def _aligned_triangle_rows(self, stored: set) -> str | None:
        """The guard term, of sizes alone (no device sync), for a finite fill whose mask is a
        triangle of ones of the scores' own sizes aligned to the last key (lucidrains'
        ``torch.ones((i, j)).triu(j - i + 1)`` filled where true, with ``i, j`` the scores'
        query and key lengths; or ``tril(j - i + c)`` kept where true): query row r keeps the
        keys before ``r + j - i + c`` (``triu``) or up to ``r + j - i + c`` (``tril``), so a
        row is filled whole exactly when row 0 is: ``i - j >= c`` (``triu``) or ``i - j > c``
        (``tril``).  Those steps take the original.  None for any other mask (the caller's
        decline stands): a triangle filled on its own side, other sizes, a diagonal not of the
        form ``j - i + c``, scores reshaped or transposed before the sizes are read."""
        fill = self.filled_rows
        if self.scores_t or any(r in self.roles for r in VIEW_STEPS) or "s0" not in self.roles:
            return None
        found = self._aligned_triangle(fill["cond"], 0)
        if found is None:
            return None
        kind, constant, negated = found
        filled_where_true = fill["filled_by_cond"] != negated
        q_text = self._q_dtype()[:-len(".dtype")]
        k_text = _atom(*self._operands(broadcast=False)[1])
        if read_names(ast.parse(f"({q_text}, {k_text})", mode="eval")) & stored:
            return None
        if kind == "triu" and filled_where_true:
            return f"{q_text}.shape[-2] - {k_text}.shape[-2] >= {constant}"
        if kind == "tril" and not filled_where_true:
            return f"{q_text}.shape[-2] - {k_text}.shape[-2] > {constant}"
        return None

    def _aligned_triangle(self, expr: ast.expr, depth: int) -> tuple[str, int, bool] | None:
        """(``"tril"``/``"triu"``, c, negated) where ``expr`` is (the negation of) a triangle of
        ones of shape (the scores' query length, their key length) whose diagonal is ``keys -
        queries + c`` (:meth:`_aligned_triangle_rows`); None otherwise."""
        if depth > 6:
            return None
        if isinstance(expr, ast.Name):
            value = self._single_store(expr.id)
            return None if value is None else self._aligned_triangle(value, depth + 1)
        if isinstance(expr, ast.UnaryOp) and isinstance(expr.op, ast.Invert):
            inner = self._aligned_triangle(expr.operand, depth + 1)
            return None if inner is None else (inner[0], inner[1], not inner[2])
        if not isinstance(expr, ast.Call):
            return None
        func = expr.func
        fqn = self.names.resolve(func) or ""
        method = not fqn.startswith("torch.") and isinstance(func, ast.Attribute)
        name = fqn.rsplit(".", 1)[-1] if not method else func.attr
        if method and name in ("bool", "contiguous", "detach") and not expr.args and not expr.keywords:
            return self._aligned_triangle(func.value, depth + 1)
        if name not in ("tril", "triu") or (fqn and not fqn.startswith("torch.") and not method):
            return None
        base = func.value if method else (expr.args[0] if expr.args else None)
        operands = list(expr.args if method else expr.args[1:])
        diagonal = next((k.value for k in expr.keywords if k.arg == "diagonal"), operands[0] if operands else None)
        if base is None or diagonal is None or len(operands) + len(expr.keywords) != 1:
            return None
        sizes = self._ones_sizes(base)
        if sizes is None or [self._score_axis(s) for s in sizes] != [-2, -1]:
            return None
        linear = self._size_linear(diagonal, 0)
        if linear is None:
            return None
        coef, constant = linear
        if coef != {-1: 1, -2: -1}:
            return None
        return name, constant, False

    def _ones_sizes(self, expr: ast.expr) -> list | None:
        """The two size expressions of ``torch.ones((a, b), ...)`` / ``torch.ones(a, b, ...)``
        (dtype and device keywords only), None otherwise."""
        if not isinstance(expr, ast.Call) or (self.names.resolve(expr.func) or "") != "torch.ones" \
                or any(k.arg not in ("dtype", "device") for k in expr.keywords):
            return None
        args = expr.args
        if len(args) == 1 and isinstance(args[0], (ast.Tuple, ast.List)):
            args = args[0].elts
        return list(args) if len(args) == 2 and not any(isinstance(a, ast.Starred) for a in args) else None

    def _single_store(self, name: str) -> ast.expr | None:
        """The value the attention's function gives ``name`` where it stores it exactly once, by a
        plain one-target assignment; for a tuple target of plain names, that name's item
        (``i, j, device = *sim.shape[-2:], x.device`` gives ``i`` as ``sim.shape[-2]``)."""
        func = self._function(self.block[0]) if self.block else None
        if func is None or any(isinstance(a, ast.arg) and a.arg == name for a in ast_walk(func.args)):
            return None
        stores = [n for n in ast_walk(func) if isinstance(n, ast.Name) and n.id == name
                  and isinstance(n.ctx, (ast.Store, ast.Del))]
        assigns = [a for a in ast_walk(func) if isinstance(a, ast.Assign) and len(a.targets) == 1
                   and any(n is stores[0] for n in ast_walk(a.targets[0]))] if len(stores) == 1 else []
        if len(assigns) != 1:
            return None
        target, value = assigns[0].targets[0], assigns[0].value
        if isinstance(target, ast.Name):
            return value
        if not isinstance(target, ast.Tuple) or not all(isinstance(t, ast.Name) for t in target.elts):
            return None
        at = next(i for i, t in enumerate(target.elts) if t is stores[0])
        n = len(target.elts)
        items = list(value.elts) if isinstance(value, ast.Tuple) else [ast.Starred(value=value, ctx=ast.Load())]
        flat = []
        for item in items:
            if not isinstance(item, ast.Starred):
                flat.append(item)
                continue
            inner, whole = item.value, None
            if isinstance(inner, ast.Attribute) and inner.attr == "shape":
                whole, lower = inner, -(n - len(flat) - (len(items) - 1 - items.index(item)))
            elif isinstance(inner, ast.Subscript) and isinstance(inner.value, ast.Attribute) \
                    and inner.value.attr == "shape" and isinstance(inner.slice, ast.Slice) \
                    and inner.slice.upper is None and inner.slice.step is None \
                    and isinstance(numeric_literal(inner.slice.lower) if inner.slice.lower is not None else None, int) \
                    and numeric_literal(inner.slice.lower) < 0:
                whole, lower = inner.value, numeric_literal(inner.slice.lower)
            if whole is None or lower >= 0:
                return None
            flat.extend(ast.Subscript(value=whole, slice=ast.Constant(value=lower + t), ctx=ast.Load())
                        for t in range(-lower))
        return flat[at] if len(flat) == n else None

    def _score_axis(self, expr: ast.expr) -> int | None:
        """-2 / -1 where ``expr`` is the product's query / key length (``sim.shape[-2]``,
        ``sim.size(-1)``, or a name holding one): the product's output names only."""
        if isinstance(expr, ast.Name):
            value = self._single_store(expr.id)
            return None if value is None or isinstance(value, ast.Name) else self._score_axis(value)
        index = None
        if isinstance(expr, ast.Subscript) and isinstance(expr.value, ast.Attribute) and expr.value.attr == "shape":
            holder, index = expr.value.value, numeric_literal(expr.slice)
        elif isinstance(expr, ast.Call) and isinstance(expr.func, ast.Attribute) and expr.func.attr == "size" \
                and len(expr.args) == 1 and not expr.keywords:
            holder, index = expr.func.value, numeric_literal(expr.args[0])
        if index not in (-1, -2) or isinstance(index, bool) or not isinstance(holder, ast.Name):
            return None
        return index if holder.id in {o.text for o in self.roles["s0"].outs} else None

    def _size_linear(self, expr: ast.expr, depth: int) -> tuple[dict, int] | None:
        """({axis: coefficient}, constant) of an integer sum of the scores' lengths
        (:meth:`_score_axis`) and int literals; None otherwise."""
        if depth > 8:
            return None
        if isinstance(expr, ast.Constant) and isinstance(expr.value, int) and not isinstance(expr.value, bool):
            return {}, expr.value
        axis = self._score_axis(expr)
        if axis is not None:
            return {axis: 1}, 0
        if isinstance(expr, ast.UnaryOp) and isinstance(expr.op, (ast.USub, ast.UAdd)):
            inner = self._size_linear(expr.operand, depth + 1)
            sign = -1 if isinstance(expr.op, ast.USub) else 1
            return None if inner is None else ({a: sign * c for a, c in inner[0].items()}, sign * inner[1])
        if isinstance(expr, ast.BinOp) and isinstance(expr.op, (ast.Add, ast.Sub)):
            left, right = self._size_linear(expr.left, depth + 1), self._size_linear(expr.right, depth + 1)
            if left is None or right is None:
                return None
            sign = 1 if isinstance(expr.op, ast.Add) else -1
            coef = dict(left[0])
            for a, c in right[0].items():
                coef[a] = coef.get(a, 0) + sign * c
            return {a: c for a, c in coef.items() if c}, left[1] + sign * right[1]
        return None

    def _assigned_once_around(self, name: ast.Name) -> ast.expr | None:
        """The value of ``name`` where the method of the class holding it (``__init__``: bark's
        ``bias = torch.tril(...)`` then ``self.register_buffer("bias", bias)``) binds it once, by
        a plain assignment (:meth:`_init_values` with one value); None otherwise."""
        found = self._init_values(name)
        return found[1][0] if found is not None and len(found[1]) == 1 else None

    def _ones(self, expr: ast.expr) -> bool:
        """Is ``expr`` a tensor of ones (``torch.ones(...)``, ``ones_like``, ``x.new_ones(...)``,
        any cast or view of one)?"""
        if isinstance(expr, ast.Name):
            value = self._resolve_local(expr)
            return value is not expr and self._ones(value)
        if not isinstance(expr, ast.Call):
            return False
        fqn = self.names.resolve(expr.func) or ""
        if fqn in ("torch.ones", "torch.ones_like"):
            return True
        if isinstance(expr.func, ast.Attribute) and not fqn.startswith("torch."):
            if expr.func.attr == "new_ones":
                return True
            if expr.func.attr in ("view", "reshape", "bool", "byte", "float", "to", "type", "unsqueeze"):
                return self._ones(expr.func.value)
        return False

    def _can_zero_rows(self) -> bool:
        """Can the fused call zero the query on the rows the fill hides entirely (:meth:`_call`)?
        Where the fill's mask is laid out as the product's scores (no view step, no operand
        broadcast or axes moved by an einsum, no transposed scores, not handed to a helper),
        so that its last axis is the keys' and the one before the queries'."""
        if any(r in self.roles for r in VIEW_STEPS) or self.scores_t or self.context_t \
                or getattr(self, "handed", None) is not None:
            return False
        for role in ("s0", "c"):
            view = self.roles[role].view if role in self.roles else None
            if view is not None and (any(view.broadcast) or view.squeezed or view.out_move is not None
                                     or any(m is not None for m in (view.moves or ()))):
                return False
        return self.roles[self.filled_rows["role"]].op not in ("einx.where", "canon.mask_blend")

    def _squeezed_query(self, factors, mask) -> bool:
        """Is this one query per head written without a query axis (an einsum matrix-vector
        product, canon.einsum_vector: the fused call takes q with a size-1 query axis and its
        output is squeezed)?  A mask or a tensor scale is written for the squeezed scores and
        would broadcast against the fused call's differently: such a site is declined."""
        views = [self.roles[role].view for role in ("s0", "c") if role in self.roles]
        squeezed = [bool(view is not None and view.squeezed) for view in views]
        if not any(squeezed):
            return False
        if not all(squeezed) or len(squeezed) != 2 or self.context_t:
            raise Skip("the scores or the context is a product over one query written without a query axis, "
                       "the other is not (or is channel-first)")
        if mask is not None or factors:
            raise Skip("one query written without a query axis, with a mask or tensor scale written for the "
                       "squeezed scores")
        return True

    def _scores_dtype_as_q(self, operand: ast.expr, stored: set, role: str) -> tuple | None:
        """(text, expression) of the mask with ``scores.dtype`` read as q's dtype (nemo's
        ``attention_mask.to(attention_scores.dtype)``), when the attention's values it reads are
        only those dtypes and each is the product of q and k as it was written, the mask added
        right after it (a scale or bias before could promote the scores).  None when it reads
        anything else of the attention."""
        order = list(self.match.roles)
        if "s0" not in self.roles or order.index(role) != order.index("s0") + 1:
            return None
        product = {o.text for o in self.roles["s0"].outs}
        hits = []
        for node in ast_walk(operand):
            if isinstance(node, ast.Attribute) and node.attr == "dtype" and isinstance(node.value, ast.Name) \
                    and node.value.id in stored:
                if node.value.id not in product:
                    return None
                hits.append(node)
        read = {n.value.id for n in hits} | {f"{n.value.id}.dtype" for n in hits}
        if not hits or (read_names(operand) - read) & stored:
            return None
        text = self._text_with(operand, [(span_of(n), self._q_dtype()) for n in hits])
        return text, ast.parse(text, mode="eval").body

    def _scores_sizes_as_qk(self, operand: ast.expr, stored: set) -> tuple | None:
        """(text, expression) of a bias that reads only the scores' sizes (styletts2's
        ``self.rel_pos(*sim.shape[-2:])``), with them read off q and k: the scores' last two
        axes are the queries' and the keys' lengths (``_scores_metadata``).  None when it reads
        anything else of the attention (a dtype is ``_scores_dtype_as_q``'s)."""
        parents = {id(child): node for node in ast_walk(operand) for child in ast.iter_child_nodes(node)}
        for node in ast_walk(operand):
            if isinstance(node, ast.Name) and node.id in stored:
                parent = parents.get(id(node))
                if not isinstance(parent, ast.Attribute) or parent.attr not in ("shape", "size"):
                    return None
        text = self._scores_metadata(operand, stored)
        return (text, ast.parse(text, mode="eval").body) if text is not None else None

    def _bias_of_scores_metadata(self, operand: ast.expr, stored: set, role: str) -> tuple | None:
        """(text, expression) of an added bias that reads of the scores only what they are, not
        their values -- matcha's ``bias(t).to(device=scores.device, dtype=scores.dtype)`` --
        with those reads made of q and k as :meth:`_scores_metadata` makes them.  The scores it
        reads must be the value the add step itself adds to; their dtype is read as q's only
        when every step before the add keeps q's dtype (see :meth:`_keeps_q_dtype_before`).
        None when the bias reads anything else of the attention."""
        scores = {n.id for n in ast_walk(operand) if isinstance(n, ast.Name) and n.id in stored}
        added = self._added_to(role)
        if not scores or added is None or scores != {added}:
            return None
        reads_dtype = any(
            (isinstance(n, ast.Attribute) and n.attr == "dtype" and isinstance(n.value, ast.Name) and n.value.id == added)
            or (isinstance(n, ast.Call) and any(isinstance(a, ast.Name) and a.id == added for a in n.args)
                and not (isinstance(n.func, ast.Attribute) and isinstance(n.func.value, ast.Name)
                         and n.func.value.id == "self"))  # (a module's call: _stand_in_swaps)
            for n in ast_walk(operand))
        if reads_dtype and not self._keeps_q_dtype_before(role):
            return None
        swaps = self._stand_in_swaps(operand, added, role)
        if swaps is None:
            return None
        text = self._scores_metadata(operand, stored, text=self._text_with(operand, swaps) if swaps else None)
        if text is None:
            return None
        return text, ast.parse(text, mode="eval").body

    def _stand_in_swaps(self, operand: ast.expr, added: str, role: str) -> list | None:
        """Where the bias hands the scores to a module of a class of this file whose ``forward``
        reads that argument only for what it is -- its sizes, device, dtype, rank (phenaki's
        ALiBi bias: ``h, i, j, device = *sim.shape[-3:], sim.device``) -- the swaps that hand
        it instead a stand-in of the scores' shape, device and dtype built without computing
        them: a one-element tensor of q, expanded (no memory) to the broadcast batch axes of q
        and k, then q's and k's sequence lengths.  The scores' shape is the product's when no
        step reshapes them before (an added mask the fused call takes must broadcast to them);
        their dtype q's when every step before keeps it.  The module's forward hooks, which
        would see the stand-in, send the call to the original (:meth:`_stand_in_hooks`).
        [] when the bias passes the scores to no module; None when it passes them to one that
        may read their values, or where the stand-in would differ."""
        swaps = []
        for call in ast_walk(operand):
            if not isinstance(call, ast.Call):
                continue
            positions = [i for i, a in enumerate(call.args) if isinstance(a, ast.Name) and a.id == added]
            if not positions:
                continue
            func = call.func
            if any(isinstance(kw.value, ast.Name) and kw.value.id == added for kw in call.keywords) \
                    or any(isinstance(a, ast.Starred) for a in call.args) or len(positions) != 1:
                return None
            if isinstance(func, ast.Attribute) and func.attr == "type_as" and len(call.args) == 1 \
                    and not call.keywords:
                # piper's VITS ``bias(t).type_as(scores)``: the scores' dtype and device, which are
                # q's where every step before keeps q's dtype (the caller checks it) -- the cast
                # made to q, not to the scores the fused call does not compute
                swaps.append((span_of(call.args[0]), self._q_dtype()[:-len(".dtype")]))
                continue
            handed = self._handed_module_classes(func, positions[0], role)
            if handed == []:
                return None
            if handed is None and not (isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name)
                                       and func.value.id == "self"):
                continue  # a function of this file: _scores_metadata reads what it reads
            forward = self._local_forward(func.attr) if handed is None else None
            if handed is None and forward is None:
                return None
            params = [a.arg for a in forward.args.posonlyargs + forward.args.args][1:] if forward is not None else []
            if forward is not None and (positions[0] >= len(params)
                                        or not _shape_metadata_only(forward, params[positions[0]])):
                return None
            if any(r in self.roles for r in VIEW_STEPS) or self.scores_t:
                return None
            earlier = SCORE_STEPS[:SCORE_STEPS.index(role)]
            if any(r in self.roles and r in earlier and not self._number_like(
                    self._operand_of(r, SCALE_VARS[r])) for r in SCALE_STEPS):
                return None  # (a tensor scale, folded into q, may broadcast the scores beyond q's axes)
            if forward is not None and _reads_attribute(forward, params[positions[0]], "dtype") \
                    and not self._keeps_q_dtype_before(role):
                return None
            q_atom, shape = self._stand_in_shape()
            swaps.append((span_of(call.args[positions[0]]), f"{q_atom}.new_empty(()).expand({shape})"))
            if handed is not None:
                self.stand_ins.append((func.id, role))
                self.stand_in_types[func.id] = handed
            else:
                self.stand_ins.append((f"self.{func.attr}", role))
        return swaps

    def _handed_module_classes(self, func: ast.expr, position: int, role: str) -> list[str] | None:
        """``sim + pos_emb(sim)`` with ``pos_emb`` a parameter of the attention's function
        (feedback-transformer's attention is handed its caller's ``self.pos_emb``): the module
        classes of this file that such a call may run where it reads the scores only for what
        they are -- each class whose own ``forward`` (undecorated, no ``__call__``) reads its
        argument at ``position`` only as sizes, device or rank (not its dtype unless the scores
        keep q's).  The guard sends every other type of value (``type(pos_emb) is not C``: a
        subclass may read more) to the original (:meth:`_stand_in_hooks`).  None where ``func``
        is no parameter of that function (or is rebound in it); [] where no class fits."""
        if not isinstance(func, ast.Name) or "c" not in self.roles:
            return None
        stmt = self.index.stmt(self.roles["c"].stmt)
        function = self._function(stmt.stmt) if stmt is not None else None
        if function is None:
            return None
        args = function.args
        params = {a.arg for a in [*args.posonlyargs, *args.args, *args.kwonlyargs]}
        if func.id not in params or func.id in set().union(*(stored_names(s) for s in function.body)):
            return None
        out = []
        for name, cls in self.names.classes.items():
            if name in params or name in set().union(*(stored_names(s) for s in function.body)):
                continue
            methods = {m.name: m for m in cls.body if isinstance(m, (ast.FunctionDef, ast.AsyncFunctionDef))}
            forward = methods.get("forward")
            if forward is None or "__call__" in methods or forward.decorator_list \
                    or isinstance(forward, ast.AsyncFunctionDef):
                continue
            names = [a.arg for a in forward.args.posonlyargs + forward.args.args][1:]
            if position >= len(names) or not _shape_metadata_only(forward, names[position]):
                continue
            if _reads_attribute(forward, names[position], "dtype") and not self._keeps_q_dtype_before(role):
                continue
            out.append(name)
        return out

    def _bias_module_operand(self, role: str, var: str) -> tuple | None:
        """``sim = self.cpb(sim)`` (dalle2's and nuwa's VQ-GAN attention): the graph reads a call
        of a module of this file whose ``forward`` returns its input plus a bias computed from
        its parameters and the input's shape, device and dtype only (``formulas.
        bias_add_module``) as an add of that bias, which has no expression of its own.  The bias
        is the module's output for a stand-in of zeros of the scores' shape, device and dtype
        (``0 + b`` is ``b`` exactly, broadcast as the scores would broadcast it):
        ``self.cpb(q.new_zeros(()).expand(S))``, S the product's shape, times each tensor scale
        before the add (nuwa's ``* self.scale.exp()``: the scores' axes and dtype are the scaled
        product's).  Declined with the reason where the scores are reshaped or transposed, or
        a step before the add other than a scale may change their dtype; the module's forward hooks,
        which would see the stand-in, send the call to the original (:meth:`_stand_in_hooks`).
        None where the step's operand is written in the code (or the step is anything else)."""
        node = self.roles[role]
        args, _, spans, _ = self._view(role)
        bound = self.env.get(var)
        if len(args) != 2 or args[1] != bound or args[0] == bound or spans[1] is not None or node.span is None:
            return None
        call = self.index.expr_at(node.span)
        if not (isinstance(call, ast.Call) and call.args and not call.keywords
                and isinstance(call.args[0], ast.Name) and span_of(call.args[0]) == spans[0]
                and not any(isinstance(a, ast.Starred) for a in call.args)
                and isinstance(call.func, ast.Attribute) and isinstance(call.func.value, ast.Name)
                and call.func.value.id == "self"):
            return None
        module = f"`self.{call.func.attr}`"
        forward = self._local_forward(call.func.attr)
        if forward is None:
            return None
        if any(isinstance(n, ast.Name) and n.id == call.args[0].id for a in call.args[1:] for n in ast_walk(a)):
            raise Skip(f"{module} is handed the scores again in another argument: its bias may read them")
        if any(r in self.roles for r in VIEW_STEPS) or self.scores_t:
            raise Skip(f"{module} adds its bias to scores that are reshaped or written (keys, queries): the fused "
                       "call's mask would need the bias laid out as they are")
        earlier = SCORE_STEPS[:SCORE_STEPS.index(role)]
        if any(r in self.roles and r not in DTYPE_KEEPING and r not in SCALE_STEPS for r in earlier):
            raise Skip(f"{module} adds its bias to scores that may not have q's dtype, which the stand-in of zeros "
                       "it would be handed has")
        q_atom, shape = self._stand_in_shape()
        # a module adding its bias in place (FasterViT's ``input_tensor += self.pos_emb``) is
        # handed zeros of its own: an in-place add into a broadcast view raises
        stand_in = f"{q_atom}.new_zeros({shape})" if bias_add_in_place(forward) else \
            f"{q_atom}.new_zeros(()).expand({shape})"
        for r in SCALE_STEPS:
            if r in self.roles and r in earlier and r not in self.off_roles:
                # a tensor scale (nuwa's learned ``self.scale.exp()``) scales the stand-in too: the
                # scores' axes and dtype are then the scaled product's, and zeros stay zeros
                factor = self._operand_of(r, SCALE_VARS[r])
                if not self._number_like(factor):
                    stand_in = f"({stand_in}) {'/' if r == 's1' else '*'} {_atom(self._text(factor), factor)}"
        self.stand_ins.append((f"self.{call.func.attr}", role))
        # its other arguments (FasterViT's window size) as the code passes them
        rest = "".join(f", {self._text(a)}" for a in call.args[1:])
        text = f"self.{call.func.attr}({stand_in}{rest})"
        return text, ast.parse(text, mode="eval").body

    def _stand_in_statement(self, inner: ast.stmt, owner: ast.If, step_stored: set) -> str | None:
        """``pos_bias = self.rel_pos_bias(sim)`` in the ``if`` whose next step adds it
        (``sim = sim + pos_bias``, parti): the bias computed in a statement of its own by a
        module that reads only what the scores are (:meth:`_stand_in_swaps`), handed a stand-in
        of them on the fused path.  The bias is then the original's value, whoever reads it.
        None for any other statement."""
        if not (isinstance(inner, ast.Assign) and len(inner.targets) == 1 and isinstance(inner.targets[0], ast.Name)):
            return None
        target = inner.targets[0].id
        for role in ADD_STEPS:
            node = self.roles.get(role)
            info = self.index.stmt(node.stmt) if node is not None else None
            if info is None or not any(info.stmt is s for s in owner.body) or target not in _loads(info.stmt):
                continue
            added = self._added_to(role)
            if added is None or _loads(inner) & step_stored != {added}:
                return None
            swaps = self._stand_in_swaps(inner.value, added, role)
            if not swaps:
                return None
            text = self._stmt_text(inner, swaps)
            return None if _loads(ast.parse(text)) & step_stored else text
        return None

    def _local_forward(self, attr: str) -> ast.FunctionDef | None:
        """The ``forward`` of the class of this file that every assignment of ``self.<attr>``
        builds (None where one builds anything else, or the class defines ``__call__``, or its
        forward is decorated or not its own)."""
        values = [v for v in self._attribute_values(attr) if not (isinstance(v, ast.Constant) and v.value is None)]
        classes = {v.func.id for v in values if isinstance(v, ast.Call) and isinstance(v.func, ast.Name)}
        if not values or len(classes) != 1 or len(values) != sum(isinstance(v, ast.Call) for v in values):
            return None
        cls = self.names.classes.get(classes.pop())
        if cls is None:
            return None
        return _plain_forward(cls)

    def _stand_in_hooks(self, edits: Edits, conditions: dict) -> list[str]:
        """Guard terms: a module handed a stand-in of the scores (:meth:`_stand_in_swaps`) with
        forward hooks, which would see the stand-in, runs on the original path; under its add's
        condition (the module may not exist otherwise)."""
        terms = []
        for layer in dict.fromkeys(self.list_stand_ins):
            # (every module of a ModuleList handed stand-ins of the score groups: _grouped_split)
            term = (f"(False if {self._is_scripting(edits)}() else any(m._forward_hooks or m._forward_pre_hooks "
                    f"for m in {layer}))")
            under = self._under(conditions, "m2", term)
            terms.append(under if under == term else f"({under})")
        for layer, role in dict.fromkeys(getattr(self, "stand_ins", ())):
            scripting = self._is_scripting(edits)
            term = f"(False if {scripting}() else bool({layer}._forward_hooks or {layer}._forward_pre_hooks))"
            types = self.stand_in_types.get(layer)
            if types:
                # a module handed in by the caller: only the classes whose forward reads the
                # scores for what they are take the stand-in (_handed_module_classes)
                kinds = f"({', '.join(types)},)" if len(types) > 1 else types[0]
                test = f"type({layer}) not in {kinds}" if len(types) > 1 else f"type({layer}) is not {kinds}"
                term = f"(True if {scripting}() else {test} or bool({layer}._forward_hooks or {layer}._forward_pre_hooks))"
            under = self._under(conditions, role, term)
            terms.append(under if under == term else f"({under})")
        return terms

    def _added_to(self, role: str) -> str | None:
        """The name holding the scores that the add step ``role`` adds to: the output of the
        score step just before it in the match."""
        order = list(self.match.roles)
        at = order.index(role)
        if at == 0 or order[at - 1] not in SCORE_STEPS:
            return None
        outs = [o.text for o in self.roles[order[at - 1]].outs]
        args, _, _, _ = self._view(role)
        inputs = {getattr(a, "text", None) for a in args[:2]}
        found = [o for o in outs if o in inputs]
        return found[0] if len(found) == 1 else None

    def _guarded_off(self, region: list[ast.stmt], conditions: dict, all_stored: set) -> dict[str, str]:
        """The add steps (role -> guard term) under an ``if`` whose test, written the same, also
        holds a later read of a value only the original computes: VITS' relative-key logits
        added under ``if self.window_size is not None:``, whose probabilities the same test
        reads again after the product for the relative values.  :meth:`_live_reads` sends that
        test to the original, so on the fused path the step never runs and is no part of the
        mask (nor of the scores' dtype).  The caller checks that the guard holds each term
        (else the site is declined).  Only tests that read nothing the region assigns (the
        same value before the region and at the step)."""
        if not any(role in conditions for role in ADD_STEPS):
            return {}
        tests: dict[str, list[str]] = {}
        for role in ADD_STEPS:
            test = conditions.get(role)
            if test is not None and not read_names(test) & all_stored:
                tests.setdefault(self._text(test), []).append(role)
        func = self._function(region[0]) if tests else None
        if func is None:
            return {}
        end = (region[-1].end_lineno, region[-1].end_col_offset)
        off: dict[str, str] = {}
        for node in ast_walk(func):
            if node.__class__ is not ast.If or (node.lineno, node.col_offset) < end:
                continue
            text = self._text(node.test)
            if text in tests and set().union(*(_loads(s) for s in node.body)) & all_stored:
                for role in tests[text]:
                    off[role] = _guard_term(text, node.test)
        return off

    def _keeps_q_dtype_before(self, role: str) -> bool:
        """Do the scores still have q's dtype when the step ``role`` reads them: every step
        before it keeps the dtype (the product of q and k is in their common dtype; a scale by
        a number, a fill and a view keep it; an upcast, a tensor scale or an added bias may
        not)?"""
        for before in SCORE_STEPS[:SCORE_STEPS.index(role)]:
            if before not in self.roles or before in DTYPE_KEEPING or before in self.off_roles:
                continue  # (an add under an if the guard sends to the original never runs on the fused path)
            if before in SCALE_STEPS and self._number_like(self._operand_of(before, SCALE_VARS[before])):
                continue
            return False
        return True

    def _mask(self, conditions: dict, stored: set) -> str | None:
        """The ``attn_mask`` the steps amount to: the additive terms summed; a masked_fill as a
        boolean keep-mask (fill -inf) or, with a large negative fill, as a float mask; at most
        one part under an ``if`` (``m if cond else None``)."""
        parts: list[dict] = []
        if self.scores_t and (any(r in self.roles for r in (*ADD_STEPS, *VIEW_STEPS)) or not all(
                self.roles[r].squeezed_keys for r in FILL_STEPS if r in self.roles)):
            # (the mask would be the transpose of the one written, and its rank is not known;
            # a fill on one query's squeezed scores is laid out over the keys alone: _fill)
            raise Skip("a mask is applied to scores written (keys, queries)")
        self._check_moved_mask_parts()
        views = [r for r in VIEW_STEPS if r in self.roles]
        grouped = self.roles["s0"].view is not None and bool(self.roles["s0"].view.grouped)
        if views and grouped and not any(r in self.roles for r in (*ADD_STEPS, *FILL_STEPS)):
            return None  # the view flattening the key group, around the softmax (_grouped)
        if views and "m2" not in self.roles and "fv" not in self.roles:
            raise Skip("the scores are reshaped without a mask being added")
        for role in ADD_STEPS:
            if role not in self.roles or role in self.off_roles:
                continue  # (off_roles: under an if the guard sends to the original: never on the fused path)
            if self.fill_helper is not None and self.roles[role] is self.fill_helper["node"]:
                continue  # (a block bias a helper adds, made of zeros: _inline_block_helper, below)
            if self.block_bias is not None and self.roles[role] is self.block_bias["node"]:
                # (written into zeros on the fused path before the call: _block_bias)
                name = self.block_bias["name"]
                parts.append({"text": name, "atom": name, "test": conditions.get(role),
                              "operand": ast.Name(id=name, ctx=ast.Load()), "viewed": False, "role": role})
                continue
            var = {"b0": "bias0", "b1": "bias"}.get(role, "mask")
            module_bias = self._bias_module_operand(role, var)
            as_added = module_bias is None  # (the operand the code adds, as it adds it: a bool one as 0/1)
            if role == "m2" and self.grouped_cat is not None:
                # the biases of the groups put together (_grouped_split): the groups the fused path
                # builds are the biases added to a stand-in of zeros
                module_bias = self._text(self.grouped_cat), self.grouped_cat
            if module_bias is None and role not in self.dtype_choices \
                    and self._always_number(self._operand_of(role, var)):
                # a Python number added to every score (``+ self.shift``, ``+ delta.item()``):
                # the softmax does not see it, and ``attn_mask`` takes no number -- left out
                continue
            if module_bias is not None:
                text, operand = module_bias
            elif role in self.dtype_choices:
                # the float branch of a dtype choice: the mask as SDPA reads it, bool or float
                text = self.dtype_choices[role]["keep"]
                operand = ast.parse(text, mode="eval").body
                self._made(operand, text)
                as_added = False
            else:
                operand = self._operand_of(role, var)
                if isinstance(operand, ast.Name) and operand.id in self.mask_choices:
                    operand = self.mask_choices[operand.id]  # (the bias built from the mask is the mask itself)
                    as_added = False  # (SDPA reads it as the code's own choice does: a bool one keep/drop)
                text = self._text(operand)
            if module_bias is None and read_names(operand) & stored:
                as_added = False
                swapped = (self._scores_dtype_as_q(operand, stored, role) or self._scores_sizes_as_qk(operand, stored)
                           or self._bias_of_scores_metadata(operand, stored, role))
                if swapped is None:
                    raise Skip(f"the mask `{text}` is computed by the attention")
                text, operand = swapped
            if module_bias is None and self._subtracted(role):
                # s - 1e30 * m: the mask is the product negated (graph: canon.subtracted_mask)
                text = f"-{_atom(text, operand)}"
                operand = ast.parse(text, mode="eval").body
                self._made(operand, text)
            if role == "b0" and ("s1" in self.roles or "s2" in self.roles):
                # ((q @ k^T + bias) / d) * m is q @ k^T * (m / d) + bias * (m / d): the bias
                # scaled as the scores are (Transformer-XL's (ac + bd) / sqrt(d)); a factor of
                # the product before the bias (sp) scales the product alone
                scale, factors = self._scale(stored, conditions, after_product=self.product_factor)
                if factors:
                    raise Skip("a bias added before a tensor scale")
                text = f"{_atom(text, operand)} * {_atom(scale, ast.parse(scale, mode='eval').body)}"
                operand = ast.parse(text, mode="eval").body
            if module_bias is None:
                # (scores an einsum writes with their axes moved: the mask moved into the fused call's layout)
                moved = self._in_product_layout(text, self._operand_of(role, var), conditions.get(role))
                if moved != text:
                    text = moved
                    operand = ast.parse(text, mode="eval").body
                    self._made(operand, text)
            plain = text  # (the mask as written, before the views below: what the guard reads)
            viewed = role == "m2" and bool(views)
            if viewed:
                if len(views) != 2:
                    raise Skip("the mask is added to a reshaped score without reshaping it back")
                shape = self._view_args("m1")
                back = self._view_args("s3")
                shape_text = ", ".join(map(self._text, shape))
                if any(isinstance(a, ast.UnaryOp) or (isinstance(a, ast.Constant) and a.value == -1)
                       for a in shape):
                    shape_text = self._inferred_view_shape(shape_text, grouped)
                if len({self._text(t) if t is not None else None
                        for t in (conditions.get(r) for r in ("m1", "m2", "s3"))}) != 1:
                    raise Skip("the mask's reshapes run under other conditions than its add")
                text = (f"{_atom(text, operand)}.expand({shape_text})"
                        f".reshape({', '.join(map(self._text, back))})")
            if role == "m2" and role in self.dtype_choices:
                # (a boolean mask is the choice's other branch, which SDPA reads as keep/drop)
                name = ast.Name(id=self.dtype_choices[role]["mask"], ctx=ast.Load())
                self._made(name, name.id)
                self._note_blind_rows(name, conditions.get(role), keeps_bool=True)
            elif role == "m2":
                converted = self._bool_added_as_float(text, operand) \
                    if as_added and not viewed and self._keeps_q_dtype_before(role) else None
                if converted is not None:
                    text = converted
                    operand = ast.parse(text, mode="eval").body
                    self._made(operand, text)
                else:
                    self._note_blind_rows(operand, conditions.get(role), text=plain)
            test = conditions.get(role)
            if test is None and role == "b0":
                test = self._number_bias_test()
            if module_bias is None and role not in self.dtype_choices:
                test = self._number_attribute_test(self._operand_of(role, var), test)
            parts.append({"text": text, "atom": text if viewed else _atom(text, operand),
                          "test": test, "operand": operand, "viewed": viewed, "role": role})
        for role, choice in self.dtype_choices.items():
            if role not in FILL_STEPS:
                continue
            # the boolean branch of a dtype choice matched (_dtype_mask_if): its mask, bool or
            # float, is the one SDPA takes
            text = choice["keep"]
            operand = ast.parse(text, mode="eval").body
            self._made(operand, text)
            if read_names(operand) & stored:
                raise Skip(f"the mask `{choice['mask']}` is computed by the attention")
            name = ast.Name(id=choice["mask"], ctx=ast.Load())
            self._made(name, name.id)
            self._note_blind_rows(name, conditions.get(role), keeps_bool=True)
            parts.append({"text": text, "atom": _atom(text, operand), "test": conditions.get(role),
                          "operand": operand, "viewed": False, "role": role, "float": choice["float"]})
        for part in parts:
            if part["role"] in self.dtype_choices and part["role"] in ADD_STEPS:
                part["float"] = self.dtype_choices[part["role"]]["float"]
        for text, operand, test in self.helper_adds:
            # (the probabilities helper's `x += p`: _inline_probs_helper; read at the fused call,
            # after the region's statements, so they may not be reassigned there)
            if read_names(operand) & stored:
                raise Skip(f"the mask `{text}` is computed by the attention")
            if read_names(operand) & self.region_stored:
                # (computed in the region, so no guard can read it before: added as the helper
                # adds it in place, in the scores' dtype -- a bool one as 0/1, as `x += p` does)
                text = f"{_atom(text, operand)}.to({self._q_dtype()})"
                operand = ast.parse(text, mode="eval").body
                self._made(operand, text)
            parts.append({"text": text, "atom": _atom(text, operand), "test": test, "operand": operand,
                          "viewed": False, "role": "h"})
        if self.fill_helper is not None:
            # (the helper's fill, as the helper makes it of a stand-in of zeros: _inline_fill_helper)
            text, operand = self.fill_helper["text"], self.fill_helper["operand"]
            if read_names(operand) & stored:
                raise Skip(f"the mask `{text}` is computed by the attention")
            role = next(r for r, n in self.roles.items() if n is self.fill_helper["node"])
            parts.append({"text": text, "atom": _atom(text, operand), "test": conditions.get(role),
                          "operand": operand, "viewed": False, "role": "hf"})
        fill = self._fill(stored, conditions)
        if fill is not None and fill["kind"] == "finite" and (
                self._reads_inputs(fill["cond"]) or not self._keeps_first_key(fill)):
            # A mask built from sizes and the module's buffers alone is the same for every
            # input, yet may still fill a whole row (review60: a causal buffer filled where it
            # is true fills the last row; the original's row is uniform, the fused call's the
            # softmax of the row's scores): such a mask gets the rows' guard too, unless it is a
            # causal triangle read to keep the first key of every row (GPT-2's
            # ``masked_fill(bias[..., :n] == 0, -1e4)``, _keeps_first_key)
            self.filled_rows = fill
        optional = [p for p in parts if p["test"] is not None]
        if fill is not None and fill["test"] is not None:
            optional.append(fill)
        # Parts under one if (phenaki's `if self.causal:` adding a bias and filling a causal
        # mask) are present together: one condition.
        groups: dict[int, list] = {}
        for part in optional:
            groups.setdefault(id(part["test"]), []).append(part)
        grouped = list(groups.values())
        if len(grouped) > 2:
            raise Skip("more than two parts of the mask run under conditions")
        for part in optional:
            if read_names(part["test"]) & stored:
                raise Skip("the mask condition reads a value of the attention")

        def compose(present: list) -> str | None:
            terms = [p for p in parts if p["test"] is None or p in present]
            if len(terms) > 1 or (fill is not None and (fill["test"] is None or fill in present)):
                # (a dtype choice's mask, beside other parts: its float form, _dtype_mask_if)
                terms = [dict(p, text=p["float"], atom=p["float"]) if "float" in p else p for p in terms]
            total = None
            if len(terms) == 1:
                total = terms[0]["text"]
            elif terms:
                total = " + ".join(p["atom"] for p in terms)
            if fill is None or not (fill["test"] is None or fill in present):
                return total
            if self.zeroed_rows is not None and total is not None:
                # (beside the fill, a term added to its whole rows would not be the original's:
                # fill + term rounds to the fill at the dtype's extreme, the term alone does not)
                raise Skip("the fill's mask is computed in the attention from what cannot be read before it, so "
                           "the rows it fills entirely (where the fused call differs) cannot be checked, and "
                           "another part of the mask is added to them")
            if total is None:
                if fill["kind"] == "inf":
                    return fill["keep"]
                where = fill["where"]
                filled = where
                if self.zeroed_rows is not None:
                    # the rows it fills whole left at 0, where the fused call's query is zeroed (_call)
                    atom = where if _wrapped(where) else _atom(where, ast.parse(where, mode="eval").body)
                    filled = f"{atom} & ~{atom}.all(-1, keepdim=True)"
                return self._zero_filled(where, filled, fill)
            after = [p for p in terms if fill.get("role") == "f0" and p["role"] == "m2"]
            if fill["kind"] != "inf" and after:
                # A finite fill, then a mask added (GPT-2's where(causal, s, finfo.min) +
                # attention_mask): the filled positions end at fill + mask, not at the fill. Where
                # the added mask is itself large and negative (padding), a row whose kept keys
                # are all padded weighs them against the filled ones as the original does only
                # if the fill is added to as well.
                literal = fill.get("literal")
                before = [p for p in terms if p not in after]
                if literal is not None and literal > -1e30:
                    # -10000 is no float's extreme: where a row's kept keys are all masked by
                    # the added mask, fill + mask is as large as kept + mask there, and the fused
                    # call adds the scores to the filled keys the original replaced.  Where every
                    # row keeps a key the added mask favours as much as any filled one, the
                    # filled keys lie |fill| below the row's best in both and weigh nothing, as
                    # beside a finite fill alone: the guard sends the other steps to the original
                    # (_filled_rows_before, `added`); it reads the added mask before the region
                    if before or fill["test"] is not None or any(p["test"] is not None for p in after) \
                            or any(read_names(p["operand"]) & self.region_stored for p in after):
                        raise Skip(f"a fill of {fill['value']} before an added mask: rows whose kept keys the mask "
                                   f"hides all weigh the filled keys by their scores in the fused call")
                    self.filled_before_add = (fill, " + ".join(p["atom"] for p in after))
                where = fill["where"]
                if before:
                    inner = before[0]["text"] if len(before) == 1 else " + ".join(p["atom"] for p in before)
                    base = f"{self._torch()}.where({where}, {fill['value']}, {inner})"
                else:
                    base = self._zero_filled(where, where, fill)
                return f"{base} + {' + '.join(p['atom'] for p in after)}"
            return f"{self._torch()}.where({fill['where']}, {fill['value']}, {total})"

        def choose(index: int, present: list) -> str:
            """The mask for each combination of the conditional parts, as nested ``a if c else b``."""
            if index == len(grouped):
                found = compose(present)
                return found if found is not None else "None"
            part = grouped[index][0]
            test = part["test"]
            with_part = choose(index + 1, present + grouped[index])
            without = choose(index + 1, present)
            # `if mask is not None: scores = scores + mask` and nothing else: the mask as it is
            plain = (len(grouped[index]) == 1 and part is not fill and not part["viewed"] and without == "None"
                     and with_part == part["text"] and isinstance(test, ast.Compare) and len(test.ops) == 1
                     and isinstance(test.ops[0], ast.IsNot) and isinstance(test.comparators[0], ast.Constant)
                     and test.comparators[0].value is None and self._text(test.left) == self._text(part["operand"]))
            if plain:
                return with_part
            with_part, without = (f"({t})" if " if " in t else t for t in (with_part, without))
            return f"{with_part} if {self._text(test)} else {without}"

        found = choose(0, [])
        return None if found == "None" else found

    def _fill(self, stored: set, conditions: dict) -> dict | None:
        """The masked_fill step: its kind ("inf" or "finite"), where it fills, the keep-mask
        (where it does not), the if test it runs under and the fill value; None without one.

        The fill may come before the additive mask (``f0``: GPT-2's causal ``where`` of a
        registered buffer, then ``+ attention_mask``) or after it (``f1``).  Either way the
        filled positions end at -inf or a large negative number whatever is added there, so
        the fused call's mask is the same: the fill where it fills, the additive terms
        elsewhere."""
        helper_fill = self.fill_helper["node"] if self.fill_helper is not None else None
        present = [r for r in FILL_STEPS if r in self.roles and self.roles[r] is not helper_fill
                   and r not in self.dtype_choices]  # (a dtype choice's fill is its mask: _mask)
        if not present:
            return None
        if len(present) > 1:
            raise Skip("two masked_fill steps")
        role = present[0]
        test = conditions.get(role)
        node = self.roles[role]
        _, kwargs, _, kwarg_spans = self._view(role)
        spans = {name: value_span for (name, _), (value_span, _) in zip(kwargs, kwarg_spans)}
        if set(spans) != {"mask", "value"} or None in spans.values():
            raise Skip("the masked_fill could not be read")
        cond = self._at(spans["mask"], "the mask")
        if node.op == "canon.mask_blend":
            return self._blend_fill(cond, dict(kwargs)["value"].value, stored, test, role)
        value = self._at(spans["value"], "the fill value")
        text_of = self._text
        if read_names(cond) & stored:
            # panodac's ``mask.repeat(1, sim.shape[1], 1) == 0``: a mask that reads only the
            # scores' sizes, read off q and k as an added bias's are (the guards read the mask as
            # it stood before the region themselves, sizes included)
            if self._scores_sizes_as_qk(cond, stored) is None:
                raise Skip("the mask is computed by the attention")

            def text_of(node: ast.expr) -> str:
                if not read_names(node) & stored:
                    return self._text(node)
                swapped = self._scores_metadata(node, stored)
                if swapped is None:
                    raise Skip("the mask is computed by the attention")
                return swapped
        # (ones times the fill, computed in the scores' dtype: float16 rounds -(2**31) + 1 to -inf)
        product = value.__class__ is ast.Name and value.id in getattr(self, "fill_products", ())
        value = self._full_like_value(value, stored)
        value_text = self._text(value)
        if read_names(value) & stored:
            # ``-torch.finfo(sim.dtype).max``: the scores' dtype is the query's
            value_text = self._scores_metadata(value, stored)
            if value_text is None:
                raise Skip("the fill value is computed by the attention")
        resolved = self._resolve_local(value)
        if resolved is value:
            resolved = self._same_assigned(value)
        kind = fill_value(resolved) or self._held_fill(value)
        if kind is None and isinstance(resolved, ast.Call) and isinstance(resolved.func, ast.Name):
            # max_neg_value(t), a same-file function that returns -torch.finfo(t.dtype).max
            definition = self.names.functions.get(resolved.func.id)
            body = [st for st in definition.body if not (isinstance(st, ast.Expr) and isinstance(st.value, ast.Constant))] \
                if definition is not None else []
            if len(body) == 1 and isinstance(body[0], ast.Return) and body[0].value is not None:
                kind = fill_value(body[0].value)
        if kind is None:
            # (the class's constant stands for the value: its number is the fill's literal, so a
            # fill that does not swamp the scores is checked for entirely filled rows always)
            # (a module-level constant too: ``MASK_VALUE = -1e9`` above the class)
            constant = self._class_constant(value)
            if constant is None:
                constant = self._module_constant(value)
            kind = fill_value(constant) if constant is not None else None
            if kind is not None:
                resolved = constant
            elif constant is not None and _number(constant):
                # glom's ``TOKEN_ATTEND_SELF_VALUE = -5e-4``: the fill sets the scores it covers to a
                # score, which no mask added to them gives
                raise Skip(f"the fill value `{self._text(value)}` is {ast.unparse(constant)}: it sets the scores "
                           "it covers to that score, which no mask added to them gives (not -inf or a large "
                           "negative number)")
        runtime = None
        if kind is None:
            runtime = self._runtime_fill(value, stored, role)
            if runtime is None:
                raise Skip(f"the fill value `{self._text(value)}` is not known to be -inf or a large negative number")
            kind = "finite"
            self.runtime_fill = (runtime, test)
        if role == "fs":
            # a fill the scale then divides or multiplies: -inf stays -inf under a positive
            # number (a size, a root of one), and a tensor (a learned temperature) may have
            # any sign (a factor of the product alone runs before the fill: it scales no fill)
            scales = [(v, self._operand_of(r, v)) for r, v in SCALE_VARS.items()
                      if r in self.roles and not (r == "sp" and self.product_factor)]
            if not all(self._plain_number(o) for _, o in scales):
                raise Skip("a fill before a scale that may be a tensor")
            if kind != "inf":
                # a finite fill ends where the scale puts it (bitnet's GQA helper:
                # masked_fill_(~mask, finfo.min), then softmax(similarity / scale)): the fused
                # call's mask, added after its scale, holds the fill scaled the same way
                for op, operand in scales:
                    value_text = f"({value_text}) {'/' if op == 'div' else '*'} ({self._text(operand)})"
        cond_text = text_of(cond)
        by_where = node.kind == "call" and node.op.rsplit(".", 1)[-1] == "where"
        filled_by_cond = False
        if node.op == "einx.where":
            # the condition as the scores' layout broadcasts it: indexed, then read as code of its own
            cond_text = f"{_atom(cond_text, cond)}{self._einx_index(node)}"
            indexed = ast.parse(cond_text, mode="eval").body
            keep, where = cond_text, _negate(indexed, cond_text, ast.unparse)
            if self._einx_kept(node) == 2:
                # einx.where(pattern, cond, fill, scores): the fill is taken where cond holds
                keep, where, filled_by_cond = where, keep, True
        elif by_where and self._where_keeps_second(node):
            # where(c, scores, fill): the scores are kept where c holds
            keep, where = cond_text, _negate(cond, cond_text, text_of)
        else:
            # masked_fill(c, fill), or where(c, fill, scores): the fill is taken where c holds
            keep, where, filled_by_cond = _negate(cond, cond_text, text_of), cond_text, True
        # (a fill read at run time: taken as the least negative literal the guard lets through,
        # so its entirely filled rows are tested in every step, as a literal fill's are)
        literal = LARGE_NEGATIVE if runtime is not None else _fill_literal(resolved)
        if role == "fv":
            # filled in the heads' view between the scores' two reshapes: the mask as the fused
            # call reads the scores, broadcast to that view and folded back as they are
            where, keep = self._folded_fill(where, conditions), self._folded_fill(keep, conditions)
        # (scores an einsum writes with their axes moved: the mask moved into the fused call's layout)
        where, keep = self._in_product_layout(where, cond, test), self._in_product_layout(keep, cond, test)
        if node.squeezed_keys:
            # one query's squeezed keys-first scores (tzrec's target attention, fastNLP's Luong
            # attention): the mask has one entry per key; the fused call's scores have the query
            # axis before the keys (q is the query unsqueezed there)
            where, keep = (f"{_atom_text(t, ast.parse(t, mode='eval').body)}.unsqueeze(-2)" for t in (where, keep))
        return {"kind": kind, "where": where, "keep": keep, "test": test, "value": value_text, "cond": cond,
                "filled_by_cond": filled_by_cond, "role": role, "literal": literal, "product": product}

    def _folded_fill(self, text: str, conditions: dict) -> str:
        """A fill's mask ``text``, made for the scores viewed by ``m1`` (``w.view(b, h, t, s)``),
        broadcast to that view and reshaped as ``s3`` folds the scores back (``.view(b * h, t,
        s)``): the mask of the scores the fused call reads.  The reshapes and the fill must run
        under one condition, and the view's shape name every size (``expand`` cannot take -1)."""
        shape, back = self._view_args("m1"), self._view_args("s3")
        if any(isinstance(a, ast.UnaryOp) or (isinstance(a, ast.Constant) and a.value == -1) for a in shape):
            raise Skip("the mask is filled in a shape with -1, which expand cannot take")
        if len({self._text(t) if t is not None else None for t in (conditions.get(r) for r in ("m1", "fv", "s3"))}) != 1:
            raise Skip("the fill's reshapes run under other conditions than the fill")
        return (f"{_atom(text, ast.parse(text, mode='eval').body)}.expand({', '.join(map(self._text, shape))})"
                f".reshape({', '.join(map(self._text, back))})")

    def _runtime_fill(self, value: ast.expr, stored: set, role: str) -> str | None:
        """A fill value the code does not spell (allennlp's ``util.min_value_of_dtype(scores.dtype)``,
        another module's function; pytorch-forecasting's ``self.mask_bias``, a constructor
        argument any caller may set; native-sparse-attention's ``mask_value // 10`` of
        ``mask_value = max_neg_value(sim)``, which float16 leaves at -6551): the guard reads it
        before the attention and sends a call whose fill is not -inf or at most
        :data:`LARGE_NEGATIVE` to the original code, so the fused path sees only fills that
        mask a score out, as a literal ``-1e9`` does.  Returns the value as the guard reads it,
        or None.  Read so only where reading it once more changes nothing and reads nothing
        the attention assigns: a module attribute (``self.mask_bias``), a name bound before the
        attention (not in a loop around it), a call of a named function whose arguments are
        dtypes or the scores (read off q), a known fill; each maybe negated, or divided or
        multiplied by a positive number; a local name bound once to one of these."""
        info = self.index.stmt(self.roles[role].stmt)
        func = self._function(info.stmt) if info is not None else None
        if func is None:
            return None
        first = min(n.stmt for n in self.nodes)[0]
        if any(isinstance(loop, (ast.For, ast.AsyncFor, ast.While)) and loop.lineno <= first <= loop.end_lineno
               for loop in ast_walk(func)):
            return None
        stores: dict[str, list[int]] = {}
        for n in ast_walk(func):
            if isinstance(n, ast.Name) and isinstance(n.ctx, (ast.Store, ast.Del)):
                stores.setdefault(n.id, []).append(n.lineno)
        for n in ast_walk(func.args):
            if isinstance(n, ast.arg):
                stores.setdefault(n.arg, []).append(func.lineno)

        def plain(expr: ast.expr) -> bool:  # a name or a chain of attributes of one
            while isinstance(expr, ast.Attribute):
                expr = expr.value
            return isinstance(expr, ast.Name)

        def known(expr: ast.expr) -> bool:
            if fill_value(expr) is not None:
                return True
            if isinstance(expr, ast.Call) and isinstance(expr.func, ast.Name) and len(expr.args) == 1 \
                    and not expr.keywords:
                # max_neg_value(t), a same-file function that returns -torch.finfo(t.dtype).max
                definition = self.names.functions.get(expr.func.id)
                body = [st for st in definition.body if not (isinstance(st, ast.Expr) and isinstance(st.value, ast.Constant))] \
                    if definition is not None else []
                return len(body) == 1 and isinstance(body[0], ast.Return) and body[0].value is not None \
                    and fill_value(body[0].value) is not None
            return False

        def positive(expr: ast.expr) -> bool:
            return isinstance(expr, ast.Constant) and isinstance(expr.value, (int, float)) \
                and not isinstance(expr.value, bool) and expr.value > 0

        def expand(expr: ast.expr, depth: int = 0) -> str | None:
            if depth > 4:
                return None
            if isinstance(expr, ast.UnaryOp) and isinstance(expr.op, ast.USub):
                inner = expand(expr.operand, depth + 1)
                return None if inner is None else f"-({inner})"
            if isinstance(expr, ast.BinOp) and isinstance(expr.op, (ast.Div, ast.FloorDiv, ast.Mult)):
                symbol = {ast.Div: "/", ast.FloorDiv: "//", ast.Mult: "*"}[type(expr.op)]
                if positive(expr.right):
                    inner = expand(expr.left, depth + 1)
                    return None if inner is None else f"({inner}) {symbol} {expr.right.value!r}"
                if isinstance(expr.op, ast.Mult) and positive(expr.left):
                    inner = expand(expr.right, depth + 1)
                    return None if inner is None else f"{expr.left.value!r} * ({inner})"
                return None
            if isinstance(expr, ast.Name) and expr.id in stores and not any(line < first for line in stores[expr.id]):
                resolved = self._resolve_local(expr)  # (bound in the attention: its one value)
                return None if resolved is expr else expand(resolved, depth + 1)
            if isinstance(expr, ast.Call):
                if not (plain(expr.func) and not expr.keywords and expr.args and all(
                        isinstance(a, ast.Attribute) and a.attr == "dtype" and plain(a) or known(expr)
                        for a in expr.args)):
                    return None
            elif not (plain(expr) or known(expr)) or isinstance(expr, ast.Name) and expr.id == "self":
                return None
            if read_names(expr) & stored:
                return self._scores_metadata(expr, stored)
            return self._text(expr)

        text = expand(value)
        if text is None:
            return None
        try:
            node = ast.parse(text, mode="eval").body
        except SyntaxError:
            return None
        if read_names(node) & stored or any(line >= first for name in read_names(node) for line in stores.get(name, ())):
            return None
        return text

    def _where_keeps_second(self, node) -> bool:
        """Does the ``torch.where(c, a, b)`` of a fill step keep the scores in ``a`` (the fill
        taken where c does not hold)?  The step reads the kept tensor as its input (graph:
        ``where(c, x, fill)`` and ``where(c, fill, x)`` are both a masked_fill of x); False when
        that input is ``b`` (the fill taken where c holds), and a Skip when neither is known."""
        call = self._at(node.span, "the where call")
        kept = self._view(next(r for r, n in self.roles.items() if n is node))[2][0]
        if not isinstance(call, ast.Call) or len(call.args) != 3 or kept is None:
            raise Skip("the where call could not be read")
        if span_of(call.args[1]) == kept:
            return True
        if span_of(call.args[2]) == kept:
            return False
        raise Skip("the where call could not be read")

    def _einx_layout(self, node) -> tuple:
        """canon.einx_where_layout of the ``einx.where`` call at ``node``'s span."""
        call = self._at(node.span, "the einx.where call")
        pattern = call.args[0] if isinstance(call, ast.Call) and call.args else None
        layout = einx_where_layout(pattern.value) \
            if isinstance(pattern, ast.Constant) and isinstance(pattern.value, str) else None
        if layout is None:
            raise Skip("the einx.where pattern could not be read")
        return layout

    def _einx_kept(self, node) -> int:
        """The position (1 or 2) of the scores among ``einx.where(pattern, cond, a, b)``'s
        tensors."""
        return self._einx_layout(node)[0]

    def _einx_index(self, node) -> str:
        """How the condition of ``einx.where(pattern, cond, scores, fill)`` is indexed to
        broadcast as the scores' layout does: ``None`` at each output axis it lacks
        (``"b j, b h i j, -> b h i j"``: ``[:, None, None, :]``; nothing when it has them all)."""
        layout = self._einx_layout(node)
        if all(layout[1]):
            return ""
        return "[" + ", ".join(":" if present else "None" for present in layout[1]) + "]"

    def _blend_fill(self, cond: ast.expr, fill: float, stored: set, test, role: str) -> dict:
        """OpenAI GPT's ``w * b - 1e4 * (1 - b)`` (graph: ``canon.mask_blend``): ``b`` is the 0/1
        mask of the scores kept, ``-1e4`` what the others become.  Read only where ``b`` is built
        from sizes and buffers (the causal triangle): a 0/1 mask from the input would need the
        filled-rows test, which reads a boolean mask."""
        if read_names(cond) & stored:
            raise Skip("the mask is computed by the attention")
        if self._reads_inputs(cond):
            raise Skip("the 0/1 mask that blends the scores with the fill depends on the input")
        atom = _atom(self._text(cond), cond)
        return {"kind": "finite", "where": f"{atom} == 0", "keep": f"{atom} != 0", "test": test, "value": repr(fill),
                "cond": cond, "filled_by_cond": False, "role": role}

    def _fill_holder(self, stmt: ast.stmt, step_stored: set, region: list) -> ast.expr | None:
        """The fill value ``v`` of ``name = torch.ones_like(scores) * v`` (either operand order) or
        ``name = torch.full_like(scores, v)``, a statement between the attention steps that
        reads only the scores' shape, dtype and device, when ``v`` is -inf or a large negative
        number that reads nothing the attention assigns and the region reads ``name`` once, as
        the value of its masked_fill / where step: the tensor is that value wherever the step
        takes it, so the fused path drops the statement and fills with ``v`` (a read of
        ``name`` after the region is checked as any value only the original computes)."""
        if not (stmt.__class__ is ast.Assign and len(stmt.targets) == 1 and stmt.targets[0].__class__ is ast.Name):
            return None
        value, shaped = stmt.value, None
        factor = ones_times(value)
        if factor is not None:
            ones = value.left if value.right is factor else value.right
            if len(ones.args) == 1 and not ones.keywords and self.names.resolve(ones.func) == "torch.ones_like":
                shaped = ones.args[0]
        elif value.__class__ is ast.Call and len(value.args) == 2 and not value.keywords \
                and self.names.resolve(value.func) == "torch.full_like":
            shaped, factor = value.args
        if shaped is None or shaped.__class__ is not ast.Name or shaped.id not in step_stored \
                or read_names(factor) & step_stored or fill_value(factor) is None:
            return None
        name = stmt.targets[0].id
        roles = [r for r in FILL_STEPS if r in self.roles]
        if len(roles) != 1:
            return None
        _, kwargs, _, kwarg_spans = self._view(roles[0])
        spans = {key: value_span for (key, _), (value_span, _) in zip(kwargs, kwarg_spans)}
        taken = self.index.expr_at(spans["value"]) if spans.get("value") is not None else None
        if not (taken.__class__ is ast.Name and taken.id == name):
            return None
        reads = [n for s in region if s is not stmt for n in ast_walk(s)
                 if n.__class__ is ast.Name and n.id == name]
        if len(reads) != 1 or (reads[0].lineno, reads[0].col_offset) != (taken.lineno, taken.col_offset):
            return None  # (read again, or assigned again, between the steps)
        return factor

    def _full_like_value(self, value: ast.expr, stored: set) -> ast.expr:
        """``torch.full_like(scores, v)`` (where(c, scores, full_like(scores, -inf))) or
        ``scores.new_full(shape, v)`` fills with ``v``: where the tensor is taken only ``v``
        counts (also through a name bound to such a tensor between the steps: _fill_holder)."""
        if value.__class__ is ast.Name and value.id in getattr(self, "fill_holders", ()):
            return self.fill_holders[value.id]
        if isinstance(value, ast.Call) and not value.keywords and len(value.args) == 2 \
                and isinstance(value.args[0], ast.Name) and value.args[0].id in stored \
                and self.names.resolve(value.func) == "torch.full_like":
            return value.args[1]
        if isinstance(value, ast.Call) and not value.keywords and len(value.args) == 2 \
                and isinstance(value.func, ast.Attribute) and value.func.attr == "new_full" \
                and isinstance(value.func.value, ast.Name) and value.func.value.id in stored:
            # ``scores.new_full([1], -np.inf)`` (JoeyNMT's where(mask > 0, scores, ...)): a tensor
            # of v alone, broadcast where it is taken, whatever shape it is given
            return value.args[1]
        return value

    def _zero_bias_if(self, stmt: ast.If, step_stored: set, region: list) -> str | None:
        """An if choosing the bias the scores are then added (OLMo: the causal bias, the
        caller's mask, or ``torch.zeros_like(scores)`` when there is neither), as the fused
        path's text: the zeros of the scores' shape and dtype add nothing, so that branch
        binds None (no ``attn_mask``).  None unless the zeros are the if's only reading of the
        attention and the name holding them is read nowhere but as the added bias."""
        zeros = [node for node in ast_walk(stmt) if isinstance(node, ast.Assign) and len(node.targets) == 1
                 and isinstance(node.targets[0], ast.Name) and self._zeros_of_scores(node.value, step_stored)]
        if len(zeros) != 1:
            return None
        assign = zeros[0]
        name = assign.targets[0].id
        text = self._stmt_text(stmt, (span_of(assign.value), "None"))
        rewritten = ast.parse(text).body[0]
        if (_loads(rewritten) | stored_names(rewritten)) & step_stored:
            return None
        adds = {self.roles[r].stmt for r in ADD_STEPS if r in self.roles}
        readers = [s for s in region if s is not stmt and name in _loads(s)]
        if len(readers) != 1 or span_of(readers[0]) not in adds or not self._added_as_is(readers[0], name):
            return None
        func = self._function(stmt)
        later = [n for n in ast_walk(func) if isinstance(n, ast.Name) and n.id == name and isinstance(n.ctx, ast.Load)
                 and not any(n is inner for s in (stmt, readers[0]) for inner in ast_walk(s))] if func else [None]
        return None if later else text

    def _zeros_of_scores(self, value: ast.expr, step_stored: set) -> bool:
        """``torch.zeros_like(s)`` or ``s.new_zeros(s.shape)`` / ``s.new_zeros(s.size())`` of
        a value of the attention ``s``, nothing else passed."""
        if not isinstance(value, ast.Call) or value.keywords:
            return False
        func = value.func
        if len(value.args) == 1 and isinstance(value.args[0], ast.Name) and value.args[0].id in step_stored \
                and self.names.resolve(func) == "torch.zeros_like":
            return True
        if isinstance(func, ast.Attribute) and func.attr == "new_zeros" and isinstance(func.value, ast.Name) \
                and func.value.id in step_stored and len(value.args) == 1:
            arg = value.args[0]
            of = arg.value if isinstance(arg, ast.Attribute) and arg.attr == "shape" else (
                arg.func.value if isinstance(arg, ast.Call) and isinstance(arg.func, ast.Attribute)
                and arg.func.attr == "size" and not arg.args and not arg.keywords else None)
            return isinstance(of, ast.Name) and of.id == func.value.id
        return False

    @staticmethod
    def _added_as_is(stmt: ast.stmt, name: str) -> bool:
        """``s += name`` or ``s = s + name`` / ``name + s``: the name added whole to the scores."""
        if isinstance(stmt, ast.AugAssign):
            return isinstance(stmt.op, ast.Add) and isinstance(stmt.value, ast.Name) and stmt.value.id == name
        value = stmt.value if isinstance(stmt, (ast.Assign, ast.AnnAssign)) else None
        return isinstance(value, ast.BinOp) and isinstance(value.op, ast.Add) and any(
            isinstance(side, ast.Name) and side.id == name for side in (value.left, value.right))

    def _scores_metadata(self, value: ast.AST, stored: set, statement: bool = False,
                         text: str | None = None) -> str | None:
        """``value`` (an expression, or a statement) with what it reads of the scores -- not
        their values -- read off q and k: ``<scores>.dtype`` as ``<q>.dtype`` (the same dtype,
        before any upcast), ``.device`` as q's, and, where no step reshapes the scores,
        ``.shape[-1]`` / ``.size(-1)`` as the number of keys ``<k>.shape[-2]``, ``.shape[-2]``
        / ``.size(-2)`` as the queries' ``<q>.shape[-2]``, ``.shape[-2:]`` as both; None when
        it reads a value of the attention otherwise."""
        q_text = self._q_dtype()[:-len(".dtype")]
        functions = self.names.functions
        k_text = _atom(*self._operands(broadcast=False)[1])  # (a broadcast axis is never one of the last two)
        of = {"dtype": f"{q_text}.dtype", "device": f"{q_text}.device"}
        rank = None
        views = [self.roles[r] for r in VIEW_STEPS if r in self.roles]
        line = getattr(value, "lineno", None)
        # a read before every view of the scores (DAT's ``N = attn.shape[3]`` ahead of the shift
        # mask's ``attn.view(B // nW, nW, heads, N, N)``) reads the product's own shape
        if not self.scores_t and (not views or line is not None and all(
                n.func == self.roles["s0"].func and line < n.line for n in views)):
            rank = self._scores_rank()
            of.update({-1: f"{k_text}.shape[-2]", -2: f"{q_text}.shape[-2]",
                       "last two": f"({q_text}.shape[-2], {k_text}.shape[-2])"})
            view = self.roles["s0"].view
            q_index = 1 if self.scores_t else 0
            if not (view is not None and view.broadcast and view.broadcast[q_index]):
                # the scores have q's axes but its last, which becomes the keys' axis
                of["ndim"] = f"{q_text}.ndim"
            if self.roles["s0"].op.rsplit(".", 1)[-1] == "bmm":
                # torch.bmm(q, k^T): 3-D, one batch axis that q and k share (no broadcasting)
                of[0] = f"{q_text}.shape[0]"
            whole = self._scores_shape(value, q_text, k_text)
            if whole is not None:
                of["shape"] = whole
            if rank is None:
                # ``scores.shape[3]`` of a product whose rank the code leaves open: that item of
                # the shape q and k give.  An additive mask or fill read before it cannot have
                # widened the scores where the fused call runs: it raises on a mask wider than them
                indexed = self._scores_shape(None, q_text, k_text)
                if indexed is not None:
                    of["indexed"] = indexed

        def scores(node) -> bool:
            return isinstance(node, ast.Name) and node.id in stored

        def counted(node) -> int | None:  # a dim from the back; one from the front where the rank is fixed
            if rank is not None and isinstance(node, ast.Constant) and type(node.value) is int \
                    and 0 < node.value < rank:
                return node.value - rank
            if rank is None and "indexed" in of and isinstance(node, ast.Constant) and type(node.value) is int \
                    and node.value > 0:
                return node.value  # an item of the shape q and k give (swap)
            return _dim_int(node)

        def index(node) -> object:
            if isinstance(node, ast.Slice) and node.upper is None and node.step is None and node.lower is not None \
                    and counted(node.lower) == -2:
                return "last two"  # sim.shape[-2:], or sim.shape[1:] of 3-D scores
            return counted(node)

        def swap(key) -> ast.expr | None:
            if isinstance(key, int) and key >= 0 and key not in of and "indexed" in of:
                return ast.parse(f"{of['indexed']}[{key}]", mode="eval").body
            return ast.parse(of[key], mode="eval").body if key in of else None

        class Swap(ast.NodeTransformer):
            def visit_Attribute(self, node):
                if node.attr in ("dtype", "device", "ndim", "shape") and scores(node.value):
                    return swap(node.attr) or node  # (a shape read at the last axes: visit_Subscript)
                return self.generic_visit(node)

            def visit_Subscript(self, node):  # sim.shape[-1], sim.shape[-2:]
                if isinstance(node.value, ast.Attribute) and node.value.attr == "shape" and scores(node.value.value):
                    return swap(index(node.slice)) or self.generic_visit(node)  # else the whole shape, indexed
                return self.generic_visit(node)

            def visit_Call(self, node):  # sim.size(-1)
                func = node.func
                if isinstance(func, ast.Attribute) and func.attr in _LIKE and node.args and scores(node.args[0]) \
                        and "shape" in of and all(k.arg not in (None, "layout", "memory_format") for k in node.keywords):
                    # torch.ones_like(sim, dtype=torch.bool): a tensor of the scores' shape, dtype and
                    # device, made from q and k (stable-diffusion's causal mask, ``.triu(1)`` of it)
                    given = {k.arg for k in node.keywords}
                    extra = [ast.keyword(arg=key, value=swap(key)) for key in ("dtype", "device") if key not in given]
                    return ast.Call(func=ast.Attribute(value=func.value, attr=func.attr[:-len("_like")], ctx=ast.Load()),
                                    args=[swap("shape"), *[self.visit(a) for a in node.args[1:]]],
                                    keywords=[*node.keywords, *extra])
                if isinstance(func, ast.Attribute) and func.attr == "type" and scores(func.value) \
                        and not node.args and not node.keywords:
                    # linformer's ``.type(Q.type())``: the scores' tensor type, q's (dtype and device)
                    return ast.parse(f"{q_text}.type()", mode="eval").body
                if isinstance(func, ast.Attribute) and func.attr == "size" and scores(func.value) \
                        and len(node.args) == 1 and not node.keywords:
                    return swap(counted(node.args[0])) or node
                if isinstance(func, ast.Attribute) and func.attr == "size" and scores(func.value) \
                        and not node.args and not node.keywords and "shape" in of:
                    # stanza's ``assert attn_mask.size() == attn.size()``: the whole shape, which
                    # q and k give (a torch.Size, as ``.size()`` is)
                    return swap("shape")
                if isinstance(func, ast.Attribute) and func.attr in _AS_SHAPE and len(node.args) == 1 \
                        and not node.keywords and scores(node.args[0]) and "shape" in of:
                    # mask.expand_as(scores): the mask at the scores' shape, which q and k give
                    # (NJUNMT's ``mask.unsqueeze(1).expand_as(scores)``; also view_as, reshape_as)
                    return ast.Call(func=ast.Attribute(value=self.visit(func.value), attr=_AS_SHAPE[func.attr],
                                                       ctx=ast.Load()), args=[swap("shape")], keywords=[])
                # max_neg_value(sim), a same-file function that reads only its argument's dtype
                # or device (``return -torch.finfo(t.dtype).max``): the same of q
                if isinstance(func, ast.Name) and not node.keywords and any(scores(a) for a in node.args):
                    definition = functions.get(func.id)
                    params = [a.arg for a in definition.args.posonlyargs + definition.args.args] if definition else []
                    if definition is not None and len(node.args) <= len(params) and all(
                            not scores(a) or _metadata_only(definition, params[i]) for i, a in enumerate(node.args)):
                        node.args = [ast.parse(q_text, mode="eval").body if scores(a) else a for a in node.args]
                        return node
                return self.generic_visit(node)

        tree = ast.parse(self._stmt_text(value)) if statement else \
            ast.parse(text if text is not None else self._text(value), mode="eval")
        # q's or k's name that only the steps rebind (_rebound_by_steps): read as the scores in
        # ``value``, every such read must be swapped; the q and k the swap writes hold them
        kept = getattr(self, "kept_names", None)
        # (the nodes themselves are held, not only their ids: a node the swap replaces is freed,
        # and a new node taking its id would read as an unswapped one -- a decline that came
        # and went with what the process had allocated before)
        read_nodes = [n for n in ast_walk(tree) if isinstance(n, ast.Name) and n.id in kept] if kept else []
        read = {id(n) for n in read_nodes}
        new = Swap().visit(tree)
        new = new if statement else new.body
        if read and any(id(n) in read for n in ast_walk(new)):
            return None
        del read_nodes
        if (_loads(new) & stored) - self._operands_until_context(q_text, k_text) - (kept or set()):
            return None
        return ast.unparse(new)

    def _operands_until_context(self, q_text: str, k_text: str) -> set[str]:
        """Names q's and k's texts read that only the context statement assigns (charformer's
        ``scores = einsum('b i j, b j m -> b i m', score_attn, scores)``, whose q and k are the
        ``scores`` it overwrites): read before that statement, as a metadata reading is, they
        still hold q and k."""
        context = self.index.stmt(self.roles["c"].stmt)
        if context is None:
            return set()
        others = set().union(*(stored_names(info.stmt) for n in self.nodes if n.stmt != self.roles["c"].stmt
                               and (info := self.index.stmt(n.stmt)) is not None))
        operands = read_names(ast.parse(q_text, mode="eval")) | read_names(ast.parse(k_text, mode="eval"))
        return (operands & stored_names(context.stmt)) - others

    def _scores_shape(self, value: ast.AST, q_text: str, k_text: str) -> str | None:
        """The scores' whole shape written from q's and k's (self-attention-cv's ``assert
        mask.shape == scaled_dot_prod.shape[2:]``, of an einsum over ``...``, whose rank the
        code does not fix): the batch axes q and k broadcast to, then the queries' and the
        keys' lengths.  Only for a product whose operands have every axis as written (no einsum
        broadcasting one of them, no axes moved), read before any step that could broadcast the
        scores to more axes (an additive mask, a ``where``); None otherwise."""
        view = self.roles["s0"].view
        if view is not None and (any(view.broadcast) or any(m is not None for m in (view.moves or ()))):
            return None
        torch = next((local for local, fqn in self.names.imports.items() if fqn == "torch"), None)
        if value is None:  # (no widening test: for an item read where the fused call runs, above)
            return None if torch is None else (
                f"({torch}.broadcast_shapes({q_text}.shape[:-2], {k_text}.shape[:-2]) + ({q_text}.shape[-2], {k_text}.shape[-2]))")
        line = getattr(value, "lineno", None)
        s0_func = self.roles["s0"].func
        widening = [self.roles[r] for r in (*ADD_STEPS, *FILL_STEPS)
                    if r in self.roles and self.roles[r].op.rsplit(".", 1)[-1] != "masked_fill"]
        if line is None or any(n.func != s0_func or n.line <= line for n in widening):
            return None
        torch = next((local for local, fqn in self.names.imports.items() if fqn == "torch"), None)
        if torch is None:
            return None
        return f"({torch}.broadcast_shapes({q_text}.shape[:-2], {k_text}.shape[:-2]) + ({q_text}.shape[-2], {k_text}.shape[-2]))"

    def _scores_rank(self) -> int | None:
        """The scores' rank where the product's code fixes it: 3 for ``torch.bmm``; the number
        of output axes of an einsum whose equation names every one (``"b i d, b j d -> b i j"``:
        torch's equation first, one letter an axis; einops' last, one name an axis; none with
        an ellipsis, whose axes the operands decide); None otherwise."""
        s0 = self.roles["s0"]
        if s0.op.rsplit(".", 1)[-1] in ("bmm", "baddbmm"):
            return 3
        call = self.index.expr_at(s0.span) if s0.span is not None else None
        if not isinstance(call, ast.Call) or len(call.args) != 3 or call.keywords:
            return None
        first, last = call.args[0], call.args[-1]
        if isinstance(first, ast.Constant) and isinstance(first.value, str):
            equation, torch_style = first.value, True
        elif isinstance(last, ast.Constant) and isinstance(last.value, str):
            equation, torch_style = last.value, False
        else:
            return None
        if equation.count("->") != 1 or "." in equation:
            return None
        out = equation.split("->")[1]
        axes = [c for c in out if not c.isspace()] if torch_style else out.split()
        if not axes or not all(a.isidentifier() for a in axes) or (torch_style and len(set(axes)) != len(axes)):
            return None
        return len(axes)

    def _recast(self, name: str) -> bool:
        """Does the function assign ``name`` a value with a dtype conversion in it?"""
        func = self._function(self.block[0]) if self.block else None
        if func is None:
            return True
        for node in ast_walk(func):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target] \
                if isinstance(node, (ast.AugAssign, ast.AnnAssign)) else []
            if not any(isinstance(n, ast.Name) and n.id == name for t in targets for n in ast_walk(t)):
                continue
            value = getattr(node, "value", None)
            if value is None or any(isinstance(c, ast.Call) and isinstance(c.func, ast.Attribute)
                                    and c.func.attr in ("to", "type", "type_as", *CASTS)
                                    for c in ast_walk(value)):
                return True
        return False

    def _same_assigned(self, expr: ast.expr) -> ast.expr:
        """A local name (no parameter) that the function assigns more than once, each time by a
        plain ``name = <the same expression>`` (``mask_value = max_neg_value(sim)`` before the
        padding fill and again before the causal one, each under its own ``if``): that
        expression, for the fill's kind (the value at the use is one of them, whichever path
        ran).  ``expr`` itself otherwise, also when any other statement binds the name."""
        func = self._function(self.block[0]) if isinstance(expr, ast.Name) and self.block else None
        if func is None or any(isinstance(n, ast.arg) and n.arg == expr.id for n in ast_walk(func.args)):
            return expr
        values = []
        for node in ast_walk(func):
            if isinstance(node, ast.Name) and node.id == expr.id and isinstance(node.ctx, (ast.Store, ast.Del)):
                values.append(node)
        plain = [n.value for n in ast_walk(func) if isinstance(n, ast.Assign) and len(n.targets) == 1
                 and isinstance(n.targets[0], ast.Name) and n.targets[0].id == expr.id]
        if len(plain) < 2 or len(plain) != len(values):
            return expr
        first = ast.dump(plain[0])
        return plain[0] if all(ast.dump(v) == first for v in plain[1:]) else expr

    def _resolve_local(self, expr: ast.expr, depth: int = 0) -> ast.expr:
        """A local name's value, when the function assigns it exactly once."""
        if not isinstance(expr, ast.Name) or depth > 3:
            return expr
        func = self._function(self.block[0]) if self.block else None
        if func is None:
            return expr
        assigns = [n for n in ast_walk(func) if isinstance(n, ast.Assign) and len(n.targets) == 1
                   and isinstance(n.targets[0], ast.Name) and n.targets[0].id == expr.id]
        if any(isinstance(n, ast.arg) and n.arg == expr.id for n in ast_walk(func.args)) \
                and not all(any(a is stmt for stmt in func.body) for a in assigns):
            return expr  # a parameter assigned only on some paths: the caller's value may reach the use
        values = [a.value for a in assigns]
        if len(values) != 1:
            return expr
        return self._resolve_local(values[0], depth + 1)

    def _filled_rows_before(self, region: list[ast.stmt], step_stored: set, fill: dict,
                            added: str | None = None) -> str | None:
        """The guard term for a fill with a large negative number (not -inf): gradients are
        wanted, the code runs eagerly (:func:`_eager_training`) and some query row has every
        key filled.  The original's softmax is uniform
        there (every score is the same fill) and the filled scores take no gradient; the fused
        call adds the fill to the scores instead, so it passes gradients to q and k through
        every key of such a row.  One reduction of the boolean mask and one device sync per
        call, only then.  Without gradients such a row's values agree where the fill
        swamps the scores (``finfo`` of float32, bfloat16, float64); a fill that does not
        (``-1e4``, float16's ``finfo``) leaves the fused call's softmax of the row's own scores
        where the original averages every value (regionvit's ``masked_fill(mask == 0, -65000)``:
        float32 keeps the row's score differences beside 65000).  So a literal fill
        (:data:`_SWAMPING` or more excepted: nothing the scores hold survives beside it) is
        tested whether or not gradients are wanted; a ``finfo`` or named fill keeps the test to
        training steps.

        The guard runs before the region: a name of the mask that the region assigns first
        (lucidrains' ``mask = rearrange(mask, 'b j -> b 1 1 j')``) is read as the value that
        assignment gives it, when the assignment runs whenever the fill does and reads nothing
        the attention computes.  None when the mask cannot be read so.

        ``added``: a float mask added after the fill (read before the region as written;
        d3rlpy's ``masked_fill(causal == 0, -10000)`` then ``+ attention_mask.view(b, 1, 1, t) *
        -10000``).  The filled keys end at fill + added in the original and at scores + fill +
        added in the fused call; they weigh nothing in either where the row keeps a key whose
        added value is at least every filled key's (the row's best then lies |fill| above them,
        as beside a fill alone).  The term is true where some row keeps no such key (a row
        filled whole among them): the row's maximum of the added mask over its kept keys below
        that over its filled ones, on the mask exactly as the fill reads it (no reading through
        expansions)."""
        parents: dict[int, tuple[list, ast.stmt | None]] = {}  # id(statement) -> (its block, the statement holding it)

        def index(block: list, owner) -> None:
            for st in block:
                parents[id(st)] = (block, owner)
                for field in ("body", "orelse", "finalbody"):
                    inner = getattr(st, field, None)
                    if isinstance(inner, list) and inner and isinstance(inner[0], ast.stmt):
                        index(inner, st)
                for handler in getattr(st, "handlers", None) or ():
                    index(handler.body, st)

        index(region, None)

        def own_stores(st: ast.stmt) -> set[str]:
            names, todo = set(), [c for c in ast.iter_child_nodes(st) if not isinstance(c, ast.stmt)]
            while todo:
                node = todo.pop()
                if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
                    names.add(node.id)
                todo.extend(c for c in ast.iter_child_nodes(node) if not isinstance(c, ast.stmt))
            return names

        binders = [(st, own_stores(st)) for top in region for st in ast_walk(top) if isinstance(st, ast.stmt)]

        def blocks_of(st: ast.stmt) -> list[list]:
            out = []
            while id(st) in parents:
                block, owner = parents[id(st)]
                out.append(block)
                if owner is None:
                    break
                st = owner
            return out

        func = self._function(region[0])
        first = (region[0].lineno, region[0].col_offset)
        bound_before = set() if func is None else {a.arg for a in ast_walk(func.args) if isinstance(a, ast.arg)} | {
            n.id for st in func.body if (st.end_lineno, st.end_col_offset) <= first
            for n in ast_walk(st) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}

        def before(node: ast.expr, at: ast.stmt, depth: int = 0, rows: bool = False) -> str:
            # rows: the text is read only as `<it>.all(-1).any()`, which a reshape that only adds
            # size-1 axes before the last does not change (GQA's `mask = rearrange(mask, "b s ->
            # b () () () s")` under `if mask.ndim == 2:`): such bindings are read through
            if depth > 4:
                raise LookupError
            if rows and isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                    and node.func.attr in ("expand", "expand_as"):
                # `mask.unsqueeze(1).expand_as(scores)` (NJUNMT): an expansion repeats the mask's
                # entries along its size-1 axes, so whether a row has every key filled is the
                # same for the mask before it
                return _atom(before(node.func.value, at, depth + 1, rows), node.func.value)
            # `x.device` (bitnet's causal `torch.ones(..., device=query.device).tril_()`): where a
            # tensor of the mask is made, never its values, so the guard reads the device of x
            # as bound before the region, whatever the region rebinds x to (the q it scales)
            placed = {id(n.value) for n in ast_walk(node) if isinstance(n, ast.Attribute) and n.attr == "device"
                      and isinstance(n.value, ast.Name) and n.value.id in bound_before}
            reads = _loads(node)
            if placed:
                kept = {n.id for n in ast_walk(node)
                        if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load) and id(n) not in placed}
                reads = {r for r in reads if r.split(".")[0] in kept}
            if reads & step_stored:
                # ``i, j = sim.shape[-2:]`` (protein-bert's mask sizes): what it reads of the
                # scores read off q and k, when nothing else it reads is bound in the region
                text = self._scores_metadata(node, step_stored)
                if text is None or any(name in names for name in _loads(ast.parse(text, mode="eval"))
                                       for _, names in binders):
                    raise LookupError
                return text
            swaps = []
            for name in (n for n in ast_walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)
                         and id(n) not in placed):
                earlier = [st for st, names in binders if name.id in names
                           and (st.lineno, st.col_offset) < (at.lineno, at.col_offset)
                           and not (rows and self._unit_axes_rebinding(st, name.id))]
                if not earlier and name.id in self.helper_made and name.id not in self.helper_exports:
                    # a name the inlined helper computes from its parameters: its value there,
                    # read as the caller's names are at the call (the region's statement `at`)
                    value = self._helper_value(name.id)
                    if value is None:
                        raise LookupError
                    swaps.append((span_of(name), _atom_text(before(value, at, depth + 1, rows), value)))
                    continue
                if not earlier:
                    continue  # bound before the region: the guard reads the same value
                binding = max(earlier, key=lambda st: (st.lineno, st.col_offset))
                if name.id in step_stored:
                    raise LookupError
                text = value_of(binding, name.id, depth, rows)
                ancestors = blocks_of(at)
                if not any(any(binding is st for st in block) for block in ancestors):
                    # ``if exists(self.null_k): mask = F.pad(mask, ...)``: the value under the
                    # if's test, the earlier one otherwise; with an else binding it too, the
                    # else's value otherwise
                    block, owner = parents[id(binding)]
                    if not (isinstance(owner, ast.If) and any(any(owner is st for st in b) for b in ancestors)):
                        raise LookupError
                    inside = [st for st, names in binders if name.id in names
                              and any(st is inner for inner in ast_walk(owner))]
                    body = [st for st in inside if any(st is inner for b in owner.body for inner in ast_walk(b))]
                    orelse = [st for st in inside if st not in body]
                    test = _guard_term(before(owner.test, owner, depth + 1), owner.test)
                    if not owner.orelse and block is owner.body and inside == [binding]:
                        otherwise = ast.Name(id=name.id, ctx=ast.Load(), lineno=name.lineno, col_offset=name.col_offset,
                                             end_lineno=name.end_lineno, end_col_offset=name.end_col_offset)
                        text = f"({text} if {test} else {before(otherwise, owner, depth + 1)})"
                    elif block is owner.orelse and len(body) == 1 and orelse == [binding] and body[0] in owner.body:
                        # ``if exists(context_mask): context_mask = F.pad(...) else: context_mask = ones``
                        text = f"({value_of(body[0], name.id, depth)} if {test} else {text})"
                    else:
                        raise LookupError
                swaps.append((span_of(name), text))
            return self._text_with(node, swaps)

        def value_of(binding: ast.stmt, name: str, depth: int, rows: bool = False) -> str:
            """The value ``binding`` gives ``name``, as read before the region (an element of a
            tuple unpacked from one value: ``i, j = <value>`` gives ``<value>[0]`` to i)."""
            if not isinstance(binding, ast.Assign):
                raise LookupError
            value = self._assigned_value(binding, name)
            if value is not None:
                return _atom_text(before(value, binding, depth + 1, rows), value)
            target = binding.targets[0] if len(binding.targets) == 1 else None
            if not isinstance(target, ast.Tuple) or isinstance(binding.value, ast.Tuple) or \
                    not all(isinstance(e, ast.Name) for e in target.elts):
                raise LookupError
            place = [e.id for e in target.elts].index(name)
            return f"{_atom_text(before(binding.value, binding, depth + 1), binding.value)}[{place}]"

        use = self.index.stmt(self.roles[fill["role"]].stmt)
        if use is None:
            return None
        use = use.stmt
        cond, test = fill["cond"], fill["test"]
        rows = added is None
        # The keys' axis of the mask as the fill reads it: the last, but for scores an einsum
        # writes with their axes moved (``"bqkh"``: the keys third of four), where the mask is
        # laid out as written (its rank the scores', or sent to the original by the rank terms
        # read before this one: _in_product_layout).  There a reshape adding size-1 axes may
        # move the keys' place from the end, so no binding is read through as one.
        view = self.roles["s0"].view
        move = view.out_move if view is not None else None
        keys = -1 if move is None else move.index(len(move) - 1) - len(move)
        if keys != -1:
            rows = False
        try:
            if fill["filled_by_cond"]:
                where = before(cond, use, rows=rows)
            else:
                where = _negate(cond, before(cond, use, rows=rows), lambda n: before(n, use, rows=rows))
            if test is not None:
                held_by = parents.get(id(use), (None, None))[1]
                test_text = before(test, held_by if isinstance(held_by, ast.If) else use)
        except LookupError:
            return None
        torch = self._torch()
        literal = fill.get("literal")
        eager = f"not {torch}.compiler.is_compiling()" if literal is not None and abs(literal) < _SWAMPING \
            else _eager_training(torch)
        if "\n" in where and not _wrapped(where):
            # (a mask its assignment writes over several lines inside its own parentheses,
            # ParlAI's ``attn_mask = (\n (mask == 0)\n .view(...)\n)``: read, and put, as one)
            where = f"({where})"
        where_atom = where if _wrapped(where) else _atom(where, ast.parse(where, mode='eval').body)
        if added is not None:
            inf = 'float("-inf")'
            term = (f"{eager} and ({torch}.where({where_atom}, {inf}, {added}).amax({keys}) "
                    f"< {torch}.where({where_atom}, {added}, {inf}).amax({keys})).any()")
        else:
            term = f"{eager} and {where_atom}.all({keys}).any()"
        wider = self._fill_widens(fill, use, before, binders)
        if wider is not None and read_names(ast.parse(wider, mode="eval")) & self.helper_made:
            wider = None  # (q and k made by the inlined helper: not read before its call, as before)
        if wider is not None:
            term = f"({wider} or ({term}))" if test is not None else f"{wider} or ({term})"
        return f"{_guard_term(test_text, test)} and {term}" if test is not None else term

    def _fill_widens(self, fill: dict, use: ast.stmt, before, binders) -> str | None:
        """A guard term: the fill's mask, as read before the region, broadcasts the scores to
        more (or longer) axes than q and k's product has -- bert-pytorch's 4-D mask over a 3-D
        query, where ``scores.masked_fill(mask == 0, -1e9)`` widens the scores (and the output)
        but the fused call raises (its mask must broadcast to the product's shape).  Written
        only where the product's shape is q's and k's as written (no view step, no operand
        broadcast by an einsum, scores not transposed) and q and k are not bound in the
        region, and not handed to a helper (:meth:`_handed_scores`), and the fill broadcasts its
        mask as written (``masked_fill``, ``torch.where``: not an ``einx.where`` pattern, which
        lays the mask out anew) into a new tensor (an in-place ``masked_fill_`` raises for a
        wider mask as the fused call does); None otherwise (the patch is then as before)."""
        node = self.roles[fill["role"]]
        if node.op in ("einx.where", "canon.mask_blend"):
            return None
        call = self.index.expr_at(node.span) if node.span is not None else None
        if isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute) and call.func.attr.endswith("_"):
            return None  # masked_fill_ cannot widen the scores it fills: a wider mask raises there too
        cond = fill["cond"]
        if any(r in self.roles for r in VIEW_STEPS) or self.scores_t or getattr(self, "handed", None) is not None:
            return None  # (q and k handed to a helper exist there only for the fused call)
        view = self.roles["s0"].view
        if view is not None and (any(view.broadcast) or any(m is not None for m in (view.moves or ()))):
            return None
        try:
            mask = before(cond, use)
        except LookupError:
            return None
        q_text = self._q_dtype()[:-len(".dtype")]
        k_text = _atom(*self._operands(broadcast=False)[1])
        read = _loads(ast.parse(q_text, mode="eval")) | _loads(ast.parse(k_text, mode="eval"))
        if any(read & names for _, names in binders):
            return None
        torch = self._torch()
        shape = (f"({torch}.broadcast_shapes({q_text}.shape[:-2], {k_text}.shape[:-2]) "
                 f"+ ({q_text}.shape[-2], {k_text}.shape[-2]))")
        mask_atom = mask if _wrapped(mask) else _atom(mask, ast.parse(mask, mode="eval").body)
        return f"{torch}.broadcast_shapes({mask_atom}.shape, {shape}) != {shape}"

    def _unit_axes_rebinding(self, stmt: ast.stmt, name: str) -> bool:
        """Is ``stmt`` ``name = <name with size-1 axes added before its last>``: an einops
        ``rearrange`` whose output axes are its input's, in order, with ``()`` / ``1`` between
        them and the last one kept last, or ``name.unsqueeze(d)`` with ``d <= -2``?"""
        if not (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name)
                and stmt.targets[0].id == name and isinstance(stmt.value, ast.Call)):
            return False
        call = stmt.value
        if isinstance(call.func, ast.Attribute) and call.func.attr == "unsqueeze" and isinstance(call.func.value, ast.Name) \
                and call.func.value.id == name and len(call.args) == 1 and not call.keywords:
            dim = _negative_int(call.args[0])
            return dim is not None and dim <= -2
        if self.names.resolve(call.func) != "einops.rearrange" or len(call.args) != 2 or call.keywords \
                or not (isinstance(call.args[0], ast.Name) and call.args[0].id == name) \
                or not (isinstance(call.args[1], ast.Constant) and isinstance(call.args[1].value, str)):
            return False
        sides = call.args[1].value.split("->")
        if len(sides) != 2:
            return False
        left, right = sides[0].split(), sides[1].replace("()", " () ").split()
        if not left or "(" in sides[0] or any(("(" in t or ")" in t) and t != "()" for t in right):
            return False
        kept = [t for t in right if t not in ("()", "1")]
        return kept == left and right[-1] == left[-1] and "..." not in left[:-1]

    @staticmethod
    def _assigned_value(stmt: ast.Assign, name: str) -> ast.expr | None:
        """The value ``stmt`` gives ``name``: ``x = v``, its element of ``a, b = u, w``; None
        for any other form."""
        if len(stmt.targets) != 1:
            return None
        target = stmt.targets[0]
        if isinstance(target, ast.Name):
            return stmt.value if target.id == name else None
        if isinstance(target, ast.Tuple) and isinstance(stmt.value, ast.Tuple) \
                and len(target.elts) == len(stmt.value.elts):
            for element, value in zip(target.elts, stmt.value.elts):
                if isinstance(element, ast.Name) and element.id == name:
                    return value
        return None

    def _text_with(self, node: ast.AST, swaps: list[tuple[Span, str]]) -> str:
        """The source of ``node`` with each span of ``swaps`` (inside it) replaced by its text."""
        l0, c0 = node.lineno, self.index.char_col(node.lineno, node.col_offset)

        def offset(line: int, byte_col: int) -> int:
            col = self.index.char_col(line, byte_col)
            return col - c0 + sum(len(self.index.lines[i - 1]) + 1 for i in range(l0, line))

        text = self._text(node)
        for (a, b, c, d), new in sorted(swaps, reverse=True):
            text = text[:offset(a, b)] + new + text[offset(c, d):]
        return text

    def _helper_value(self, name: str) -> ast.expr | None:
        """The value the inlined helper (:meth:`_inline_attention_helper`) gives ``name``, one of
        its own names (``m = mask[:, None, None, :] == 0``), for reading before the caller's call
        in the caller's names (the row guard of a fill whose mask the helper computes).  Only
        where the helper binds ``name`` once, by a plain assignment among the statements that
        run in the caller on every call (its top level), and that value reads parameters the call
        hands under their own names (not bound again in the helper) or other such names (read
        through by the caller).  None otherwise (renamed names, a name bound twice or under a
        test, a parameter handed under another name)."""
        helper = self.helper_def
        if helper is None or self.helper_renames or name not in self.helper_made or name in self.helper_exports:
            return None
        kept = self.helper_steps.get(span_of(self.helper_call), ()) if self.helper_call is not None else ()
        stores = [n for n in ast_walk(helper) if isinstance(n, ast.Name) and n.id == name
                  and isinstance(n.ctx, (ast.Store, ast.Del))]
        binding = next((st for st in kept if isinstance(st, ast.Assign) and len(st.targets) == 1
                        and isinstance(st.targets[0], ast.Name) and st.targets[0].id == name), None)
        if binding is None or len(stores) != 1:
            return None
        bound = {n.id for n in ast_walk(helper) if isinstance(n, ast.Name) and isinstance(n.ctx, (ast.Store, ast.Del))}
        for read in read_names(binding.value):
            head = read.split(".")[0]
            if head in self.helper_params:
                if head in bound or self.helper_args.get(head, (None,))[0] != head:
                    return None
            elif head in bound and head not in self.helper_made:
                return None
        return binding.value

    def _reads_inputs(self, expr: ast.expr, depth: int = 0) -> bool:
        """Does the value of ``expr`` depend on the values the function is given (its
        parameters but ``self``), not only on tensors' sizes, dtypes and devices, the module's
        state and constants?  Locals bound once by a plain assignment are followed to their
        value; a name bound any other way counts as an input."""
        func = self._function(self.block[0]) if self.block else None
        if func is None or depth > 4:
            return True
        params = [a.arg for a in (*func.args.posonlyargs, *func.args.args)]
        owner = params[0] if params and params[0] in ("self", "cls") else None
        inputs = {a.arg for a in ast_walk(func.args) if isinstance(a, ast.arg)} - {owner}
        parents = _parents(expr)
        for node in ast_walk(expr):
            if not isinstance(node, ast.Name) or not isinstance(node.ctx, ast.Load) or node.id == owner:
                continue
            parent = parents.get(node)
            if isinstance(parent, ast.Attribute) and (
                    parent.attr in ("shape", "dtype", "device", "ndim", "is_cuda")
                    or (parent.attr in SIZE_METHODS and isinstance(parents.get(parent), ast.Call)
                        and parents[parent].func is parent)):
                continue  # what the tensor is, not what it holds
            if node.id in inputs:
                return True
            if node.id in self.helper_made and node.id not in self.helper_exports:
                # (a name the inlined helper computes: its value there, or an input if unread)
                value = self._helper_value(node.id)
                if value is None or self._reads_inputs(value, depth + 1):
                    return True
                continue
            values = self._plain_values(func, node.id)
            if values is None or any(self._reads_inputs(value, depth + 1) for value in values):
                return True
        return False

    @staticmethod
    def _plain_values(func, name: str) -> list[ast.expr] | None:
        """The values the function's assignments give ``name`` (``x = v``; its element of ``a, b
        = u, w``; all of ``v`` for ``a, b = v``), whichever reaches a read; empty for a name the
        function never binds (a global), None when some binding is not such an assignment."""
        stores = [n for n in ast_walk(func) if isinstance(n, ast.Name) and n.id == name
                  and isinstance(n.ctx, (ast.Store, ast.Del))]
        values = []
        for node in ast_walk(func):
            if not isinstance(node, ast.Assign) or len(node.targets) != 1:
                continue
            target = node.targets[0]
            elements = target.elts if isinstance(target, ast.Tuple) else [target]
            if any(isinstance(e, ast.Name) and e.id == name for e in elements):
                # (`a, b = v`, v not a tuple written out: all of v)
                values.append(_Attention._assigned_value(node, name) or node.value)
        return values if len(values) == len(stores) else None

    def _held_fill(self, value: ast.expr) -> str | None:
        """The fill a local name holds through rebindings (``mask_value = torch.finfo(w.dtype).min``
        then ``mask_value = torch.full([], mask_value, dtype=w.dtype, device=w.device)``), read as
        the graph reads it (canon.held_fill): each binding's earlier ones in source order.  Only
        when every binding of the name in the function holds a fill, so that no path can reach
        the mask with another value."""
        func = self._function(self.block[0]) if self.block else None
        if func is None or not isinstance(value, ast.Name):
            return None
        bindings: dict[str, list[tuple[int, ast.expr | None]]] = {}
        for node in ast_walk(func):
            # parameters and names bound by loops, with, except and imports: values not read
            # here (None), so a fill assigned on only some paths is no fill
            if isinstance(node, ast.arg):
                bindings.setdefault(node.arg, []).append((func.lineno, None))
            elif isinstance(node, (ast.For, ast.AsyncFor, ast.comprehension, ast.withitem)):
                bound = node.optional_vars if isinstance(node, ast.withitem) else node.target
                for name in (n for n in ast_walk(bound) if isinstance(n, ast.Name)) if bound is not None else ():
                    bindings.setdefault(name.id, []).append((getattr(node, "lineno", func.lineno), None))
            elif isinstance(node, ast.ExceptHandler) and node.name:
                bindings.setdefault(node.name, []).append((node.lineno, None))
            elif isinstance(node, ast.alias):
                bindings.setdefault((node.asname or node.name).split(".")[0], []).append((func.lineno, None))
            if isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign, ast.NamedExpr)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for target in targets:
                    for name in (n for n in ast_walk(target) if isinstance(n, ast.Name)):
                        plain = isinstance(node, ast.Assign) and len(targets) == 1 and target is name
                        bindings.setdefault(name.id, []).append((node.lineno, node.value if plain else None))
        for entries in bindings.values():
            entries.sort(key=lambda entry: entry[0])

        def lookup_before(line: int):
            def lookup(name: str) -> str | None:
                entries = bindings.get(name, [])
                if not entries or any(v is None for _, v in entries):
                    return None
                earlier = [(at, v) for at, v in entries if at < line]
                if not earlier:
                    return None
                at, bound = earlier[-1]
                return held_fill(bound, lookup_before(at))
            return lookup

        entries = bindings.get(value.id, [])
        if not entries or not all(held_fill(v, lookup_before(at)) for at, v in entries if v is not None):
            return None
        return lookup_before(value.lineno + 1)(value.id) if value.lineno else None

    def _bool_added_as_float(self, text: str, operand: ast.expr) -> str | None:
        """The added mask ``text`` as SDPA must take it where the code makes it bool on every
        path (:func:`.ranks.bool_by_code`: qwen-tts's ``arange(n)[None, :] < lengths[:, None]``,
        viewed, then "filled" by a ``masked_fill`` that leaves a bool tensor bool): the code's
        ``scores + mask`` promotes it to the scores' dtype, 1 where True and 0 where False (a
        shift of those scores, not a keep/drop mask), and the scores have q's dtype here
        (:meth:`_keeps_q_dtype_before`), so the fused call takes ``mask.to(q.dtype)``.  Such a
        mask hides no row, so it needs no guard; the guard's dtype test would send every call
        to the original (an inert patch).  None for any other mask (the guard decides)."""
        if not bool_by_code(operand, self._function(self.block[0]) if self.block else None):
            return None
        try:
            return f"{_atom(text, operand)}.to({self._q_dtype()})"
        except Skip:
            return None

    def _note_blind_rows(self, mask, condition, keeps_bool: bool = False, text: str | None = None) -> None:
        """Remember the guard term for an additive mask held in a name (see
        :func:`_blind_rows_term`).  The guard is what keeps the training path exact, so it
        is never left out: without a name for ``torch`` the module gets ``import torch``, and
        where that name is taken the match is not rewritten (:meth:`_torch`)."""
        if isinstance(mask, ast.BinOp) and isinstance(mask.op, ast.Mult) and not keeps_bool:
            # `scores + attention_mask * -1e9` (diffusionlm): a 0/1 mask times a large negative
            # constant.  A row it hides whole is at about the constant, finite: the original's
            # softmax is (near) uniform there and passes gradients to q and k through the add;
            # the fused call's forward agrees, but its backward recomputes the weights from the
            # row's log-sum-exp, which at that magnitude lost log(keys) to rounding (every
            # weight 1 at -1e9 in float32: gradients off by the row's length).  A training step
            # with such a row takes the original: every key at half the constant or below (one
            # reduction of the product and one device sync per call, only then).
            factor = next((f for f in (mask.right, mask.left) if fill_value(f) == "finite"), None)
            if factor is not None:
                torch = self._torch("the guard for rows whose every key is masked")
                text = self._text(mask)
                term = (f"{_eager_training(torch)} and {_atom(text, mask)}.amax(-1).min() <= "
                        f"{_atom(self._text(factor), factor)} / 2")
                self.blind_rows = term if condition is None else \
                    f"{_guard_term(self._text(condition), condition)} and ({term})"
                self.blind_rows_required = True
                return
        if (isinstance(mask, (ast.Name, ast.Attribute)) and dotted_name(mask)) \
                or (_rereadable(mask) and self._written_beside_context(mask)) \
                or ((condition is not None or _negated_penalty(mask)) and _rereadable_arithmetic(mask)
                    and self._written_beside_context(mask)):
            # A name, or a view or cast of a name (`mask[:, None, None, :]`, `mask.unsqueeze(1)`),
            # or arithmetic of those where the mask is optional or the file lowers the masked
            # scores by a magnitude read at run time (`(1 - mask) * -self.inf`; rafix55):
            # its values are not known, so a bool
            # one (added as 0/1, SDPA would read keep/drop) and a training step with a row it
            # hides whole at any large negative value take the original (_blind_rows_term)
            torch = self._torch("the guard for rows whose every key is masked")
            atom = _atom_text(self._text(mask) if text is None else text, mask)
            self.blind_rows = _blind_rows_term(
                torch, atom, None if condition is None else _guard_term(self._text(condition), condition), keeps_bool)
            if self._may_hold_number(mask):
                # (a bias the function sets to a Python number on some path, graphium's
                # `attn_bias = 0.0` when there is none: no tensor to test, nor for SDPA to read)
                self.blind_rows = f"not {torch}.is_tensor({atom}) or ({self.blind_rows})"

    def _may_hold_number(self, mask: ast.expr) -> bool:
        """Does the function bind the mask's name to a number literal anywhere (``attn_bias =
        0.0`` where no bias was given)?  Then the name holds a Python number on that path, which
        has no ``is_floating_point`` and which SDPA takes as no mask: the original runs there."""
        func = self._function(self.block[0]) if isinstance(mask, ast.Name) and self.block else None
        if func is None:
            return False
        return any(node.__class__ is ast.Assign and any(t.__class__ is ast.Name and t.id == mask.id for t in node.targets)
                   and _number_on_a_path(node.value) for node in ast_walk(func))

    def _torch(self, what: str = "building the float mask") -> str:
        """The module's local name for ``torch`` (the fused path builds a float mask with it,
        the guards call its functions): the module's own import of it; else the name through
        which the matched steps already call torch's functions (``torch.matmul`` with ``torch``
        bound by a star import of a module that imports it: the same binding where the fused
        path runs); else ``torch``, imported for the rewrite, when nothing in the module or
        the function binds that name."""
        for local, fqn in self.names.imports.items():
            if fqn == "torch":
                return local
        for node in self.match.nodes:
            if node.kind != "call" or not node.op.startswith("torch.") or node.span is None:
                continue
            call = self.index.expr_at(node.span)
            written = dotted_name(call.func) if isinstance(call, ast.Call) else None
            if written and "." in written:
                head, tail = written.split(".", 1)
                if f"torch.{tail}" == node.op:
                    return head
        names = self.names
        func = self._function(self.index.stmt(self.roles["c"].stmt).stmt)
        bound = names.imports.keys() | names.classes.keys() | names.functions.keys() | names.constants.keys()
        if func is not None:
            bound |= {n.id for n in ast_walk(func) if isinstance(n, ast.Name) and not isinstance(n.ctx, ast.Load)}
            bound |= {a.arg for a in ast_walk(func.args) if isinstance(a, ast.arg)}
        if "torch" in bound:
            raise Skip(f"{what} needs `torch`, and the module binds that name to something else")
        self.extra_imports.add(("torch", "", None))
        return "torch"

    def _zero_filled(self, where: str, filled: str, fill: dict) -> str:
        """The fill as an additive mask: zeros with the fill value where it fills.  Built in q's
        dtype, except a finite fill whose scores are cast again after it (``s.float().masked_fill(
        m, -1e9).type_as(s)``, :meth:`_check_recast`): the original fills in float32, where -1e9
        fits, and its cast back rounds it (to -inf in float16); the mask is built in float32 and
        cast to q's dtype as the original casts, since -1e9 does not fit float16 and
        ``masked_fill`` of a float16 tensor with it raises where the original runs."""
        if RECAST in self.roles and fill.get("kind") != "inf":
            return (f"{self._torch()}.zeros_like({where}, dtype={self._torch()}.float32)"
                    f".masked_fill({filled}, {fill['value']}).to({self._q_dtype()})")
        if fill.get("product") and fill.get("kind") != "inf":
            # tzrec's ``torch.ones_like(scores) * (-(2**31) + 1)``: the original multiplies in the
            # scores' dtype, where float16 overflows the product to -inf (which still masks) and
            # masked_fill of the number raises; the mask multiplies as the original does
            torch = self._torch()
            return f"{torch}.where({filled}, {torch}.ones_like({where}, dtype={self._q_dtype()}) * ({fill['value']}), 0.0)"
        return f"{self._torch()}.zeros_like({where}, dtype={self._q_dtype()}).masked_fill({filled}, {fill['value']})"

    def _q_dtype(self) -> str:
        return f"{_atom(*self._operands(broadcast=False)[0])}.dtype"

    def _view_args(self, role: str) -> list[ast.expr]:
        node = self.roles[role]
        if node.kind != "method" or node.op not in ("view", "reshape") or node.kwargs:
            raise Skip(f"the reshape at line {node.line} could not be read")
        if any(self.index.segment(sp).startswith("*") for sp in node.arg_spans[1:] if sp is not None):
            raise Skip(f"the reshape at line {node.line} takes a starred shape")
        args = [self._at(sp, "a reshape") for sp in node.arg_spans[1:]]
        if len(args) == 1 and isinstance(args[0], (ast.Tuple, ast.List)):
            args = list(args[0].elts)
        if any(isinstance(a, ast.Starred) for a in args) or not args:
            raise Skip(f"the reshape at line {node.line} takes a starred shape")
        return args

    def _layer_text(self, node) -> str:
        """A layer as the code calls it where the rewrite goes: ``self.attn_drop``, or the name
        of a helper's parameter the caller passed it as (``dropout(p_attn)`` in the Annotated
        Transformer's ``attention(..., dropout=self.dropout)``), which has no ``self``."""
        written = self.index.segment(node.func_span) if node.func_span is not None else ""
        if not written.isidentifier() or written == "self" or node.stmt is None:
            return node.layer
        info = self.index.stmt(node.stmt)
        func = self._function(info.stmt) if info is not None else None
        params = {a.arg for a in ast_walk(func.args) if isinstance(a, ast.arg)} if func is not None else set()
        return written if written in params else node.layer

    def _optional_dropout(self, if_stmt: ast.If) -> bool:
        """``if dropout is not None: p = dropout(p)``, nothing else in it: the dropout of a
        module the caller may pass or not (its rate then 0 without it)."""
        node = self.roles["p1"]
        if node.kind != "layer":
            # ``if dropout_p > 0.0: w = F.dropout(w, dropout_p)`` (fairseq2, MosaicML's
            # ``if dropout_p:``): a functional dropout under a plain test, alone in the if; the
            # fused call's rate is the rate when the test holds, else 0
            return not if_stmt.orelse and len(if_stmt.body) == 1 and _plain_test(if_stmt.test)
        text = self._layer_text(node)
        test = if_stmt.test
        plain = text.isidentifier() or (text.startswith("self.") and text[5:].isidentifier())
        if not if_stmt.orelse and len(if_stmt.body) == 1 and _plain_test(test):
            # ``if self.training and self.dropout > 0: p = self.attn_dropout(p)``: a dropout
            # module under a plain test, alone in the if; the fused call's rate is the module's
            # when the test holds, else 0 (as a functional dropout's above)
            return True
        return node.kind == "layer" and plain and not if_stmt.orelse and len(if_stmt.body) == 1 \
            and isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], ast.IsNot) \
            and isinstance(test.left, (ast.Name, ast.Attribute)) and self._text(test.left) == text \
            and isinstance(test.comparators[0], ast.Constant) and test.comparators[0].value is None

    def _dropout(self, role: str) -> str:
        text = self._dropout_text(role)
        return self._from_helper(text) if role in self.helper_roles else text

    def _dropout_text(self, role: str) -> str:
        node = self.roles[role]
        if node.kind == "layer":
            text = self._layer_text(node)
            # nn.Dropout's p, or the attribute a same-file dropout module keeps its rate in
            # (mega's ``MegaDropout``: ``F.dropout(x, p=self.dropout_probability, ...)``)
            p, flags = rate_parts(getattr(node, "rate", "") or "p")
            if flags:
                # fairseq's ``FairseqDropout``: it drops in training or when a flag set at run
                # time says so (``apply_during_inference``): the module's own test, as it reads it
                gate = " or ".join(f"{text}.{flag}" for flag in ("training", *flags))
                if getattr(node, "identity", False):
                    raise Skip(f"`{node.layer}` is a dropout module of the package or an nn.Identity: "
                               "the fused call cannot tell which to read the rate of")
                return f"{text}.{p} if {gate} else 0.0"
            if text != node.layer:  # a helper's parameter: the module's own training flag
                return f"{text}.{p} if {text}.training else 0.0"
            if getattr(node, "identity", False):
                # nn.Dropout(p) if ... else nn.Identity(): the identity has no rate (p = 0)
                if p != "p":
                    raise Skip(f"`{node.layer}` is a dropout module of this file or an nn.Identity: "
                               "the fused call cannot tell which to read the rate of")
                rate = f"({node.layer}.p if isinstance({node.layer}, {self._torch('reading the dropout rate')}.nn.Dropout) else 0.0)"
                return f"{rate} if self.training else 0.0"
            return f"{node.layer}.{p} if self.training else 0.0"
        _, kwargs, _, kwarg_spans = self._view(role)
        values = {name: (value, value_span) for (name, value), (value_span, _) in zip(kwargs, kwarg_spans)}
        if set(values) - {"p", "training", "inplace"}:
            raise Skip("the dropout call takes arguments the fused call does not")
        p = values.get("p")
        training = values.get("training")
        if p is not None and p[1] is None:
            raise Skip("the dropout rate could not be read")
        p_text = "0.5" if p is None else _atom(self.index.segment(p[1]), self._at(p[1], "the dropout rate"))
        if training is None:
            return p_text
        if isinstance(training[0], Const):
            return p_text if training[0].value else "0.0"
        return f"{p_text} if {self.index.segment(training[1])} else 0.0"

    def _scale(self, stored: set, conditions: dict | None = None,
               after_product: bool = False) -> tuple[str, list[tuple[str, str]]]:
        """``scale=`` for the number the scores are multiplied or divided by, and the tensor
        factors (a learned temperature) that are folded into the query instead: ``scale=``
        takes a number, and ``(q @ k^T) * t == (q * t) @ k^T`` when ``t`` is the same for every
        key (a scalar, or a tensor whose last dimension is 1).  A scale step under an ``if``
        (OpenAI GPT's ``if self.scale: w = w / math.sqrt(v.size(-1))``) gives a scale chosen by
        the same test: ``1 / math.sqrt(v.size(-1)) if self.scale else 1.0``.  With
        ``after_product`` only the steps after a factor of the product alone (``q k^T * tau +
        delta``): what the bias added after that factor is scaled by."""
        conditions = conditions or {}
        parts = {}
        factors: list[tuple[str, str]] = []
        for role, var, symbol in (("sp", "pre", "*"), ("s1", "div", "/"), ("s2", "mul", "*")):
            if role not in self.roles or role in self.off_roles or (after_product and role == "sp"):
                continue  # (off_roles: under an if the guard sends to the original)
            operand = self._operand_of(role, var)
            defined = isinstance(operand, ast.Name) and role in conditions \
                and self.scale_definitions.get(operand.id) is not None
            name = operand
            if defined:
                # the divisor named inside the if (:meth:`_scale_definitions`): its value, with
                # the scores' dtype and device read off q (the same before any upcast), is what
                # the fused path's copy of the if assigns the name (:meth:`_check_step_if`)
                operand = self.scale_definitions[operand.id]
                operand = self._metadata_off_q(operand, stored)
            kept = getattr(self, "kept_names", set())
            if kept and not defined and read_names(operand) & stored and read_names(operand) & stored <= kept:
                # linformer's ``Q / torch.sqrt(torch.tensor(d).type(Q.type())).to(Q.device)`` with
                # Q the scores: their dtype and device, q's -- which Q still holds on the fused path
                operand = self._metadata_off_q(operand, stored)
                if read_names(operand) & stored - kept:
                    raise Skip("the scale is computed by the attention")
            elif read_names(operand) & stored:
                raise Skip("the scale is computed by the attention")
            text = _atom(self._text(operand), operand)
            if self._plain_number(operand):
                parts[var] = text
            elif (self._constant_along_keys(operand) or self._number_like(operand, dtype=self._q_dtype())) \
                    and role not in conditions:
                factors.append((symbol, text))
            elif defined and self._number_like(operand, dtype=self._q_dtype()) and len(conditions.keys() & set(SCALE_STEPS)) == 1 \
                    and not (set(SCALE_STEPS) - {role}) & self.roles.keys():
                # a 0-d tensor of the scores' own dtype, applied only when the test holds: folded
                # into the query under the same test (1.0 otherwise)
                test = conditions[role]
                factors.append((symbol, f"({name.id} if {_guard_term(self._text(test), test)} else 1.0)"))
                conditions = {r: t for r, t in conditions.items() if r != role}
            elif self._product_factor_term(role, conditions, stored) is not None:
                factors.append((symbol, text))  # (the guard tests its last dimension)
            elif role not in conditions and (terms := self._number_terms(operand, stored)):
                factors.append((symbol, text))  # (the guard sends what is no number to the original)
                self.scale_number_terms = list(dict.fromkeys(getattr(self, "scale_number_terms", []) + terms))
            else:
                raise Skip(f"the scale `{self._text(operand)}` may be a tensor that differs between keys")
        chosen = [role for role in SCALE_STEPS if role in conditions]
        if chosen:
            if len(parts) != 1:
                raise Skip("the scores are scaled twice, one step under a condition")
            number = f"1 / {parts['div']}" if "div" in parts else next(iter(parts.values()))
            test = conditions[chosen[0]]
            return f"{number} if {_guard_term(self._text(test), test)} else 1.0", factors
        if "pre" in parts:
            # two factors in a row (sp, then s2): their product is the one number
            pre = parts.pop("pre")
            parts["mul"] = f"{pre} * {parts['mul']}" if "mul" in parts else pre
        if "mul" in parts and "div" in parts:
            return f"{parts['mul']} / {parts['div']}", factors
        if "div" in parts:
            return f"1 / {parts['div']}", factors
        return parts.get("mul", "1.0"), factors

    def _undeclared_setting(self, arg: ast.expr) -> bool:
        """Is ``arg`` ``self.<attr>`` that the class binds only to parameters of the function
        binding it, each with no default, no annotation and never
        rebound there (linformer's ``self.dim = dim``): a value the code does not declare, which a
        caller may give as a number.  A default or an annotation declares it (a number is read
        by :meth:`_known_number`; a tuple or a list is one temperature per key), as does a value
        built in the class (``list(key_temps)``).  (A bare parameter of the attention's own
        function may be a tensor handed in: declined, mend40's ruling.)"""
        if not (isinstance(arg, ast.Attribute) and isinstance(arg.value, ast.Name) and arg.value.id == "self"):
            return False
        values = self._attribute_values(arg.attr)
        cls = self._class()
        if not values or cls is None:
            return False
        scope = [cls]
        base = self._same_file_base(cls)
        while base is not None and base not in scope:
            scope.append(base)
            base = self._same_file_base(base)
        functions = [f for c in scope for f in ast_walk(c) if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))]
        for value in values:
            owner = next((f for f in functions if any(n is value for n in ast_walk(f))), None)
            if not isinstance(value, ast.Name) or owner is None or not _bare_param(owner, value.id):
                return False
        return True

    def _number_terms(self, operand: ast.expr, stored: set) -> list[str]:
        """The guard terms under which ``operand`` is a 0-d tensor of q's dtype made from a
        number (:meth:`_number_like` with ``terms``): each reads a name or attribute the
        attention does not assign, so the guard, before the region, reads the same.  Empty where
        it is no such tensor."""
        terms: list[str] = []
        if not self._number_like(operand, dtype=self._q_dtype(), terms=terms) or not terms:
            return []
        if any(read_names(ast.parse(t, mode="eval")) & (stored | self.region_stored) for t in terms):
            return []
        bound = {f"self.{t.attr}" for s in getattr(self, "step_region", ()) for n in ast_walk(s)
                 if isinstance(n, (ast.Assign, ast.AugAssign, ast.AnnAssign))
                 for t in (n.targets if isinstance(n, ast.Assign) else [n.target])
                 if isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name) and t.value.id == "self"}
        if any(f"isinstance({b}," in t for t in terms for b in bound):
            return []  # (an attribute the attention binds: the guard, before it, would read another value)
        return terms

    def _product_factor_term(self, role: str, conditions: dict, stored: set) -> str | None:
        """The guard term for a factor of the product alone (``q k^T * tau + delta``, a bias or
        fill after it) whose shape the code does not fix (a tensor the caller hands in, made
        ``[batch, 1, 1, 1]`` by ``unsqueeze``): ``(q @ k^T) * t == (q * t) @ k^T`` holds when
        ``t``'s last dimension is 1, whatever the others, so the fused call takes ``q * t`` and
        a factor that is a tensor of another last dimension (one per key) goes to the original.
        None where the step is not such a factor: another step, one under a condition, a number
        or a value the code already fixes as the same for every key, one the attention computes,
        or one that is not a name or attribute the guard can read again before the region."""
        if role != "sp" or not self.product_factor or role not in self.roles or role in conditions \
                or role in self.off_roles:
            return None
        operand = self._operand_of(role, "pre")
        if not isinstance(operand, (ast.Name, ast.Attribute)) or not dotted_name(operand) \
                or read_names(operand) & stored or self._plain_number(operand) \
                or self._constant_along_keys(operand):
            return None
        text = self._text(operand)
        # (a 0-d tensor -- ``taus[layer]`` of a 1-D table -- is the same for every key: the fused
        # call; ``.ndim``/``.shape``, not ``.size(-1)``, which a 0-d tensor has no axis for)
        return f"not isinstance({text}, (int, float)) and {text}.ndim > 0 and {text}.shape[-1] != 1"

    def _number_bias_test(self) -> ast.expr | None:
        """The test under which the fused call adds the bias after a factor of the product alone
        where the function binds its name to a Python number on some path (``delta = 0.0 if
        delta is None else delta.unsqueeze(1)``): ``torch.is_tensor(delta)``.  A number adds
        the same to every score, which the softmax does not see, and SDPA's ``attn_mask`` takes
        no number, so the fused call leaves it out there.  None for any other bias."""
        if not self.product_factor or "b0" not in self.roles or "b0" in self.off_roles:
            return None
        operand = self._operand_of("b0", "bias0")
        func = self._function(self.block[0]) if isinstance(operand, ast.Name) and self.block else None
        if func is None:
            return None

        if not any(node.__class__ is ast.Assign and any(t.__class__ is ast.Name and t.id == operand.id
                                                         for t in node.targets)
                   and _number_on_a_path(node.value) for node in ast_walk(func)):
            return None
        text = f"{self._torch('the test for a bias that may be a number')}.is_tensor({operand.id})"
        test = ast.parse(text, mode="eval").body
        for node in ast_walk(test):
            if isinstance(node, ast.expr):
                self._made(node, ast.unparse(node))
        return test

    def _number_attribute_test(self, operand: ast.expr, test: ast.expr | None) -> ast.expr | None:
        """``test`` and ``torch.is_tensor(self.<attr>)`` where the bias is a ``self.<attr>`` the
        class binds to a value that may be a Python number (a constructor argument whose
        default is one, :mod:`.init_numbers`): ``attn_mask`` takes no number, and a number
        shifts every score alike, so the fused call adds the bias only where it is a tensor
        (one bound to a number only is left out: :meth:`_always_number`).  ``test`` as it is
        for any other bias."""
        if not (isinstance(operand, ast.Attribute) and isinstance(operand.value, ast.Name)
                and operand.value.id == "self") or not self._attribute_values(operand.attr) \
                or self._is_tensor_attribute(operand.attr):
            return test
        cls = self._class()
        numbers = getattr(self.planner, "init_numbers", None)
        if numbers is None:
            numbers = self.planner.init_numbers = InitNumbers(self.index.tree, self.names)
        if cls is None or not numbers.attribute_number(cls, operand.attr):
            return test
        text = f"{self._torch('the test for a bias that may be a number')}.is_tensor(self.{operand.attr})"
        if test is not None:
            text = f"{_guard_term(self._text(test), test)} and {text}"
        made = ast.parse(text, mode="eval").body
        for node in ast_walk(made):
            if isinstance(node, ast.expr):
                self._made(node, ast.unparse(node))
        self._made(made, text)
        return made

    def _handed_factor_terms(self, conditions: dict, stored: set) -> list[str]:
        """Guard terms for a scale the caller hands in: ``scores * pos`` with ``pos`` a
        parameter of the attention reads like a number (:meth:`_plain_number`), but the caller
        may pass a tensor (a per-head temperature, a (query, key) table), which ``scale=``
        cannot take.  ``not isinstance(<the factor>, (int, float))`` sends any value but a
        Python number to the original; a number takes the fused call.  Under the step's
        condition, when it has one."""
        func = self._function(self.block[0]) if self.block else None
        if func is None:
            return []
        params = {a.arg for a in (*func.args.posonlyargs, *func.args.args, *func.args.kwonlyargs)}
        for extra in (func.args.vararg, func.args.kwarg):
            if extra is not None:
                params.add(extra.arg)
        terms = []
        for role, var in (("sp", "pre"), ("s1", "div"), ("s2", "mul")):
            if role not in self.roles or role in self.off_roles:
                continue
            operand = self._operand_of(role, var)
            if isinstance(operand, ast.Name) and role in conditions \
                    and self.scale_definitions.get(operand.id) is not None:
                continue  # (a divisor named inside the if: its value is read, _scale)
            if self._bare_names(operand) & (params - stored) or self._handed_attribute(operand):
                # the factor's own value, as ``scale=`` gets it (``factor = d ** -0.5 if scale is
                # None else scale`` is a float whenever the caller leaves scale None)
                term = self._under(conditions, role, f"not isinstance({self._text(operand)}, (int, float))")
                if term not in terms:
                    terms.append(term)
        return terms

    def _handed_attribute(self, node: ast.expr) -> bool:
        """Does the factor compute, as a value itself (:meth:`_bare_names`' places), with a
        ``self.<attr>`` that ``__init__`` may have bound to a value a caller handed in -- a
        constructor parameter (or an expression of one) not known to be a Python number
        (:mod:`.init_numbers`)?  A tensor attribute is read elsewhere (a factor folded into q)."""
        attrs = self._bare_attributes(node)
        if not attrs:
            return False
        cls = self._class()
        if cls is None:
            return False
        numbers = getattr(self.planner, "init_numbers", None)
        if numbers is None:
            numbers = self.planner.init_numbers = InitNumbers(self.index.tree, self.names)
        return any(not self._is_tensor_attribute(attr) and not numbers.attribute_number(cls, attr) for attr in attrs)

    def _bare_attributes(self, node: ast.expr, depth: int = 0) -> set[str]:
        """The ``self.<attr>`` the factor computes with as values themselves (through
        arithmetic, choices and once-assigned locals, as :meth:`_bare_names`)."""
        if depth > 4:
            return set()
        if isinstance(node, ast.Attribute):
            return {node.attr} if isinstance(node.value, ast.Name) and node.value.id == "self" else set()
        if isinstance(node, ast.Name):
            value = self._resolve_local(node)
            return set() if value is node else self._bare_attributes(value, depth + 1)
        if isinstance(node, ast.BinOp):
            return self._bare_attributes(node.left, depth) | self._bare_attributes(node.right, depth)
        if isinstance(node, ast.UnaryOp):
            return self._bare_attributes(node.operand, depth)
        if isinstance(node, ast.IfExp):
            return self._bare_attributes(node.body, depth) | self._bare_attributes(node.orelse, depth)
        if isinstance(node, ast.BoolOp):
            return set().union(*(self._bare_attributes(v, depth) for v in node.values))
        return set()

    def _bare_names(self, node: ast.expr, depth: int = 0, through: frozenset = frozenset()) -> set[str]:
        """The names ``node`` computes with as values themselves, through arithmetic, ``if``
        expressions and once-assigned locals: not under a call (``math.sqrt(d)`` is a float),
        an attribute or a subscript.  Those a tensor could stand for in the scale.  A name read
        inside its own one assignment (``tau = 1.0 if tau is None else tau``) is the value it
        held before, the caller's: that name itself (``through``: the names being read)."""
        if depth > 4:
            return set()
        if isinstance(node, ast.Name):
            if node.id in through:
                return {node.id}
            value = self._resolve_local(node)
            return {node.id} if value is node else self._bare_names(value, depth + 1, through | {node.id})
        if isinstance(node, ast.BinOp):
            return self._bare_names(node.left, depth, through) | self._bare_names(node.right, depth, through)
        if isinstance(node, ast.UnaryOp):
            return self._bare_names(node.operand, depth, through)
        if isinstance(node, ast.IfExp):
            return self._bare_names(node.body, depth, through) | self._bare_names(node.orelse, depth, through)
        if isinstance(node, ast.BoolOp):
            # (``scale = scale or default``: the caller's value tested for its truth, which a
            # tensor allows only with one element -- the same for every key, folded into q)
            return set().union(*(self._bare_names(v, depth, through) for v in node.values
                                 if not (v.__class__ is ast.Name and v.id in through and v is not node.values[-1])))
        return set()

    def _always_number(self, node: ast.expr, depth: int = 0, through: frozenset = frozenset()) -> bool:
        """Is ``node`` a Python number (or a 0-d tensor of one) whenever it runs, whatever the
        caller hands in: a numeric literal; ``float(...)``, ``int(...)``, ``len(...)``, a math
        function, ``.item()``, a size read (``x.size(i)``, ``x.shape[i]``); arithmetic and ``if``
        choices of such; a local whose one assignment is such; a ``self.<attr>`` that the class
        binds only to such values of no name.  A bare parameter may be a tensor: not one.  Such a value added to the scores adds the same to every score, which the
        softmax does not see."""
        if depth > 8:
            return False
        if isinstance(node, ast.Constant):
            return isinstance(node.value, (int, float)) and not isinstance(node.value, bool)
        if isinstance(node, ast.Name):
            if node.id in through or "self" in through:
                return False  # (the value before its one assignment: a parameter's, the caller's)
            value = self._resolve_local(node)
            return value is not node and self._always_number(value, depth + 1, through | {node.id})
        if isinstance(node, ast.BinOp):
            return isinstance(node.op, (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv, ast.Mod, ast.Pow)) \
                and self._always_number(node.left, depth + 1, through) and self._always_number(node.right, depth + 1, through)
        if isinstance(node, ast.UnaryOp):
            return isinstance(node.op, (ast.USub, ast.UAdd)) and self._always_number(node.operand, depth + 1, through)
        if isinstance(node, ast.IfExp):
            return self._always_number(node.body, depth + 1, through) and self._always_number(node.orelse, depth + 1, through)
        if isinstance(node, ast.Subscript):
            value = node.value
            return not isinstance(node.slice, ast.Slice) and (
                isinstance(value, ast.Attribute) and value.attr == "shape"
                or isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute) and value.func.attr == "size"
                and not value.args and not value.keywords)
        if isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Attribute) and not node.keywords and (
                    func.attr == "item" and not node.args
                    or func.attr in SIZE_METHODS and (node.args or func.attr != "size")):
                return True  # (Python numbers whatever the tensor)
            if isinstance(func, ast.Name) and func.id in ("float", "int", "len") and func.id not in self.names.functions:
                return bool(node.args)
            return (self.names.resolve(func) or "").startswith("math.")
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "self":
            # every value the class binds it to such a number of no name (``self.shift = 0.1``,
            # ``-1.0 / 2``): a constructor argument may be handed a tensor of one bias per key
            # (dropped, that would change the result silently, where ``scale=`` would raise)
            values = self._attribute_values(node.attr)
            return bool(values) and all(self._always_number(v, depth + 1, through | {"self"}) for v in values)
        return False

    def _metadata_off_q(self, operand: ast.expr, stored: set) -> ast.expr:
        """``operand`` with its reads of the scores' dtype and device read off q instead
        (:meth:`_scores_metadata`; the same before any upcast), as a new expression the fix may
        write; a Skip where that cannot be said."""
        swapped = None if any(r in self.roles for r in UPCASTS) else self._scores_metadata(operand, stored)
        if swapped is None:
            raise Skip("the scale is computed by the attention")
        operand = ast.parse(swapped, mode="eval").body
        self._made(operand, swapped)
        return operand

    def _rebound_by_steps(self, names: set, region: list) -> bool:
        """linformer's ``Q = torch.matmul(Q, K)``: q's (or k's) name rebound to the scores by the
        product that reads it.  q and k are read by the scores' product; where every statement
        of the region that assigns the name is a step at or after that product (no other
        statement, no loop or with target), the fused path -- which runs none of the steps --
        keeps the name bound to what the product read, up to the call.  What reads the name
        later as the scores is checked as before: between the steps only for the scores' dtype,
        device or shape (the same of q), after the region by the live-read checks."""
        s0 = self.roles["s0"].stmt
        step_stmts = {n.stmt for n in self.nodes}
        compound = (ast.If, ast.For, ast.AsyncFor, ast.While, ast.With, ast.AsyncWith, ast.Try)
        for top in region:
            for inner in ast_walk(top):
                if not isinstance(inner, ast.stmt):
                    continue
                if isinstance(inner, compound):
                    own = [getattr(inner, "target", None)] + [i.optional_vars for i in getattr(inner, "items", [])]
                    if any(isinstance(t, ast.AST) and {n.id for n in ast_walk(t) if isinstance(n, ast.Name)} & names
                           for t in own) or any(h.name in names for h in getattr(inner, "handlers", [])):
                        return False
                    continue
                if stored_names(inner) & names and (span_of(inner) not in step_stmts or span_of(inner)[:2] < s0[:2]):
                    return False
        return True

    def _held_operands(self, stmt: ast.stmt, clash: set, before: list, kinds: list, operands: tuple):
        """learning3d's curve aggregation: ``x_inter = F.softmax(torch.bmm(x_logits, c), dim=-1)``,
        then ``c = self.convn(c).transpose(1, 2)`` (the values made from the keys, under their
        name), then ``torch.bmm(x_inter, c)``.  The statement ``stmt`` between the steps rebinds
        names (``clash``) an earlier step read; the fused path runs it before the call, so the call
        would read the new value where the step read the old.  Exact where each such name is read
        by the earlier steps only as a whole operand of the call (q or k of the scores' product,
        or v of a context product before ``stmt``), and ``stmt`` only rebinds it (a plain
        assignment changing nothing in place: the old tensor is left as it was): the fused path
        keeps the old value under a new name just before ``stmt`` and the call reads that name
        there.  Returns the operands with those reads renamed and the snapshot statements, or
        None (declined)."""
        if not isinstance(stmt, ast.Assign) or not all(isinstance(t, ast.Name) for t in stmt.targets):
            return None
        for node in ast_walk(stmt):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                    and node.func.attr.endswith("_") and not node.func.attr.startswith("_"):
                return None  # (an in-place method: the old tensor may change)
            if isinstance(node, (ast.Subscript, ast.Attribute)) and isinstance(node.ctx, ast.Store):
                return None
        roles = ("s0", "s0", "c")  # the steps q, k and v are read at
        reads = [n for s, kind in zip(before, kinds) if kind == "step" for n in ast_walk(s)
                 if isinstance(n, ast.Name) and n.id in clash and isinstance(n.ctx, ast.Load)]
        held = {}
        for index, ((text, node), role) in enumerate(zip(operands, roles)):
            node = _untransposed(node)  # (k of ``q @ k^T`` is the product's operand transposed back)
            if isinstance(node, ast.Name) and node.id in clash and self.roles[role].line < stmt.lineno:
                held[index] = node
        counts = Counter(n.id for n in held.values())
        if not held or Counter(n.id for n in reads) != counts:
            return None  # the name read otherwise too (a mask, a scale): its old value is not the call's alone
        func = self._function(stmt)
        if func is None:
            return None
        taken = {n.id for n in ast_walk(func) if isinstance(n, ast.Name)} | \
            {a.arg for a in ast_walk(func.args) if isinstance(a, ast.arg)}
        fresh: dict[str, str] = {}
        for name in sorted({n.id for n in held.values()}):
            new = f"{name}_before"
            while new in taken:
                new += "_"
            taken.add(new)
            fresh[name] = new
        out = list(operands)
        for index, node in held.items():
            text, _ = operands[index]
            renamed = re.sub(rf"(?<![\w.]){re.escape(node.id)}(?!\w)", fresh[node.id], text, count=1)
            if renamed == text:
                return None
            out[index] = (renamed, node)
        return tuple(out), [f"{new} = {name}" for name, new in fresh.items()]

    def _picked_term(self, attr: str, value: str, owner: str, local: str | None, call: ast.Call, region: list,
                     edits: Edits) -> str:
        """The guard term that sends away any method but ``owner.value`` bound to this instance,
        read off what the setting picked (the bound method's ``__func__`` and ``__self__``), not
        off the setting at the guard: a ``setattr(self, 'mode', ...)`` after the pick, or an
        instance attribute shadowing the method (``self.__dict__['plain'] = self.halved``),
        makes the call run another method whatever ``self.mode`` then says.  A local bound to the
        pick is read as it is (bound before the guard, else declined); ``getattr(self,
        self.<attr>)(...)`` called in place is read again at the guard, so nothing the fused
        path runs before the call may change the instance."""
        first = region[0].lineno
        if local is not None:
            binds = [n for n in ast_walk(self._function(self.block[0]) or region[0])
                     if isinstance(n, ast.Assign) and any(isinstance(t, ast.Name) and t.id == local for t in n.targets)]
            if not binds or any((b.end_lineno or b.lineno) >= first for b in binds):
                raise Skip(f"the method `{local}` picked by `self.{attr}` is bound inside the attention, after "
                           "where the fused path would test it")
            picked = local
        else:
            for stmt in region:
                if stmt.lineno > call.lineno or any(n is call for n in ast_walk(stmt)):
                    break
                changer = _may_change(stmt, {"self"})
                if changer is not None:
                    raise Skip(f"line {changer.lineno} may change `self` between the test of the method "
                               f"`self.{attr}` picks and its call at line {call.lineno}")
            picked = f"getattr(self, self.{attr})"
        return (f"(False if {self._is_scripting(edits)}() else getattr({picked}, '__func__', None) is not "
                f"{owner}.{value} or {picked}.__self__ is not self)")

    def _check_setting_holds(self, conditions: dict, tops: dict, region: list, kinds: list, lo: int,
                             step_if_keeps: dict) -> None:
        """Decline a scale chosen by a test of an object's attributes (``if self.use_scale: w /=
        ...``, in the attention or an inlined helper) when a statement the fused path keeps
        between the scale step and the fused call may change that object: ``scale=`` reads the
        test at the fused call, the original read it where the step ran (``w = pick(q, k);
        self.toggle(); y = w @ v``).  A call on the object (a method, a submodule), a call handed
        it, ``setattr``, or a store to one of its attributes may change it."""
        for role in SCALE_STEPS:
            test = conditions.get(role)
            if test is None or role not in tops:
                continue
            roots = {_root_name(n) for n in ast_walk(test) if isinstance(n, ast.Attribute)} - {None}
            if not roots:
                continue  # (names alone: the region's stores of them are checked where the test is read)
            start = tops[role][0] - lo
            between: list[ast.stmt] = []  # what the fused path runs after the step, before the call
            for offset in range(max(start + 1, 0), len(region) - 1):
                if kinds[offset] in ("step", "branch"):
                    between += _kept_statements(step_if_keeps.get(offset) or [])
                else:
                    between.append(region[offset])
            buffers = None
            for stmt in between:
                changer = _may_change(stmt, roots)
                while changer is not None and _buffer_copy(changer) is not None:
                    # (a cast or view of a registered buffer, GPT-2's ``self.masked_bias.to(w.dtype)``,
                    # returns a new tensor: the instance is as it was; read the class once, here)
                    buffers = self._registered_buffers() if buffers is None else buffers
                    if _buffer_copy(changer) not in buffers:
                        break
                    changer = _may_change(stmt, roots, skip=changer)
                if changer is not None:
                    raise Skip(f"the scale at line {self.roles[role].line} runs only when "
                               f"`{self._text(test)}` holds, and line {changer.lineno} may change it "
                               "before the fused call would read it")

    def _registered_buffers(self) -> set[str]:
        """The attributes the attention's class only ever sets with ``register_buffer``: tensors,
        so a cast or view of one (``self.masked_bias.to(w.dtype)``) changes nothing the module
        holds, unlike ``.to()`` on a submodule, which moves it in place."""
        cls = self._class()
        if cls is None:
            return set()
        registered, assigned = set(), set()
        for node in ast_walk(cls):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                    and node.func.attr == "register_buffer" and node.args \
                    and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
                registered.add(node.args[0].value)
            elif isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign)):
                for target in node.targets if isinstance(node, ast.Assign) else [node.target]:
                    if isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name) \
                            and target.value.id == "self":
                        assigned.add(target.attr)
        return registered - assigned

    def _optional_scale(self, if_stmt: ast.If, role: str, stored: set) -> bool:
        """Is ``if_stmt`` an ``if`` whose last statement is the scale step ``role`` (no
        ``else``), testing names, attributes and constants the attention does not assign?  Then
        the scores are scaled exactly when the test holds, which ``scale=`` can say.  Statements
        before the step may only name the divisor (:meth:`_scale_definitions`)."""
        if not (not if_stmt.orelse and if_stmt.body and span_of(if_stmt.body[-1]) == self.roles[role].stmt
                and _plain_test(if_stmt.test) and not (read_names(if_stmt.test) & stored)):
            return False
        if len(if_stmt.body) == 1:
            return True
        definitions = self._scale_definitions(if_stmt, role)
        if definitions is None:
            return False
        self.scale_definitions.update(definitions)
        return True

    def _branched_factor(self, if_stmt: ast.If, role: str, stored: set) -> bool:
        """Is ``if_stmt`` (no ``else``, a test of names and attributes the attention does not
        assign) an ``if`` whose whole body is one ``if``/``elif``/``else`` choosing how a tensor
        of the caller weighs the scores, the scale step ``role`` one of its branches?  Every
        branch is one statement: the scores rebound from themselves and one name or attribute
        the attention does not assign (``s = s * w``, ``s = s + w``), or a ``raise``
        (External-Attention's ``if w is not None: if way == 'mul': s = s * w elif way == 'add':
        s = s + w else: raise``).  No ``scale=`` or mask says which branch runs: the guard sends
        the outer test to the original (``branched_factors``), so on the fused path none of it
        runs."""
        if if_stmt.orelse or len(if_stmt.body) != 1 or not isinstance(if_stmt.body[0], ast.If) \
                or not _plain_test(if_stmt.test) or read_names(if_stmt.test) & stored:
            return False
        step = self.roles[role].stmt
        target = None
        found = False
        pending = [if_stmt.body[0]]
        while pending:
            node = pending.pop()
            if read_names(node.test) & stored:
                return False
            branches = [node.body]
            if len(node.orelse) == 1 and isinstance(node.orelse[0], ast.If):
                pending.append(node.orelse[0])
            elif node.orelse:
                branches.append(node.orelse)
            for branch in branches:
                if len(branch) != 1:
                    return False
                leaf = branch[0]
                if isinstance(leaf, ast.Raise):
                    continue
                if not (isinstance(leaf, ast.Assign) and len(leaf.targets) == 1
                        and isinstance(leaf.targets[0], ast.Name) and isinstance(leaf.value, ast.BinOp)
                        and isinstance(leaf.value.op, (ast.Mult, ast.Add, ast.Sub, ast.Div))
                        and isinstance(leaf.value.left, ast.Name) and leaf.value.left.id == leaf.targets[0].id
                        and isinstance(leaf.value.right, (ast.Name, ast.Attribute))
                        and not read_names(leaf.value.right) & stored):
                    return False
                if target is None:
                    target = leaf.targets[0].id
                elif target != leaf.targets[0].id:
                    return False
                found = found or span_of(leaf) == step
        if not found:
            return False
        self.branched_factors.add(role)
        return True

    def _scale_definitions(self, if_stmt: ast.If, role: str) -> dict | None:
        """pytorch-forecasting's ``if self.scale: dimension = torch.as_tensor(k.size(-1), ...).sqrt();
        attn = attn / dimension``: the statements before the scale step each assign one local
        name, read by the step's operand alone -- no other statement of the function reads or
        assigns it, so the name never holds the value outside the ``if`` -- and nothing else.
        The fused path runs none of the if's statements: the operand is read through its
        definition (name -> value), and only when the test holds (:meth:`_scale`)."""
        func = self._function(self.block[0]) if self.block else None
        if func is None:
            return None
        step = if_stmt.body[-1]
        definitions: dict = {}
        for stmt in if_stmt.body[:-1]:
            if not (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name)):
                return None
            name = stmt.targets[0].id
            if name in definitions or read_names(stmt.value) & set(definitions):
                return None
            definitions[name] = stmt.value
        inside = {id(n) for stmt in if_stmt.body for n in ast_walk(stmt)}
        for node in ast_walk(func):
            if isinstance(node, ast.Name) and node.id in definitions and id(node) not in inside:
                return None  # read or assigned outside the if
            if isinstance(node, (ast.Global, ast.Nonlocal)) and set(node.names) & set(definitions):
                return None
        step_reads = [n for n in ast_walk(step) if isinstance(n, ast.Name) and n.id in definitions]
        if {n.id for n in step_reads} != set(definitions):
            return None  # a name the step never reads: a statement of its own
        try:
            operand = self._operand_of(role, SCALE_VARS[role])
        except Skip:
            return None
        if not (isinstance(operand, ast.Name) and operand.id in definitions and len(definitions) == 1
                and len(step_reads) == 1 and span_of(step_reads[0]) == span_of(operand)):
            return None
        return definitions

    def _plain_number(self, node: ast.expr, depth: int = 0) -> bool:
        """An expression of numbers, names, attributes, sizes and math functions (not a
        tensor): what ``scale=`` takes.  A local name is read through its assignment."""
        if isinstance(node, ast.Constant):
            return isinstance(node.value, (int, float)) and not isinstance(node.value, bool)
        if isinstance(node, ast.Name):
            value = self._resolve_local(node) if depth < 4 else node
            return value is node or self._plain_number(value, depth + 1)
        if isinstance(node, ast.Attribute):
            if isinstance(node.value, ast.Name) and node.value.id == "self":
                return not self._is_tensor_attribute(node.attr)
            return True  # x.shape[...], config.scale, ...
        if isinstance(node, ast.Subscript):
            # x.shape[-1], and x.size()[-1] (torch-multi-head-attention's ``dk = query.size()[-1]``):
            # an element of a torch.Size is a Python int whatever x is
            value = node.value
            return isinstance(value, ast.Attribute) and value.attr == "shape" or (
                isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute) and value.func.attr == "size"
                and not value.args and not value.keywords and not isinstance(node.slice, ast.Slice))
        if isinstance(node, ast.Call):
            method = node.func.attr if isinstance(node.func, ast.Attribute) else None
            if method in SIZE_METHODS:
                return True  # x.size(-1), x.dim(): Python ints whatever x is
            if dotted_name(node.func) in SAFE_SCALE_CALLS or (
                    isinstance(node.func, ast.Name) and self.names.resolve(node.func) in SAFE_SCALE_CALLS):
                # (``from math import sqrt``: ``sqrt(E)`` is math.sqrt too)
                return all(self._plain_number(a, depth) for a in node.args)
            if isinstance(node.func, ast.Name) and node.args and not node.keywords and depth < 4 \
                    and _returns_an_argument(self.names.functions.get(node.func.id), len(node.args)):
                # lucidrains' ``scale = default(scale, dim_head ** -0.5)`` (``return v if exists(v)
                # else d``): a same-file function that returns one of its arguments as it is
                return all(self._plain_number(a, depth + 1) for a in node.args)
            return False
        if isinstance(node, ast.BinOp):
            return self._plain_number(node.left, depth) and self._plain_number(node.right, depth)
        if isinstance(node, ast.UnaryOp):
            return self._plain_number(node.operand, depth)
        if isinstance(node, ast.IfExp):
            # `1 / math.sqrt(q.size(-1)) if scale is None else scale`: a number whichever is chosen
            return self._plain_number(node.body, depth) and self._plain_number(node.orelse, depth)
        if isinstance(node, ast.BoolOp) and isinstance(node.op, ast.Or):
            # `self.scale or 1. / sqrt(E)` (Informer's FullAttention): a module attribute read
            # as a number wherever it is used alone, else the default; a bare parameter tested
            # for its truth (`scale or default`) may be a one-element tensor (folded into q)
            return all(isinstance(v, ast.Attribute) and isinstance(v.value, ast.Name) and v.value.id == "self"
                       for v in node.values[:-1]) and all(self._plain_number(v, depth) for v in node.values)
        return False

    def _number_like(self, node: ast.expr, depth: int = 0, dtype: str | None = None,
                     terms: list | None = None) -> bool:
        """A Python number (:meth:`_plain_number`) or a 0-d tensor made from one and math on
        it (torchmultimodal's ``torch.sqrt(torch.tensor(q.shape[-1]))``): neither changes the
        dtype of floating scores it scales (a 0-d tensor promotes only a tensor of a lower
        category, integers or booleans).  With ``terms`` (a list), ``torch.tensor(x)`` of a name
        or attribute ``x`` the code does not fix as a number is allowed too, the guard term
        ``not isinstance(x, (int, float))`` added to ``terms`` (:meth:`_scale`)."""
        if depth > 8:
            return False
        if self._plain_number(node):
            return True
        if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.Pow)):
            return self._number_like(node.left, depth + 1, dtype, terms) \
                and self._number_like(node.right, depth + 1, dtype, terms)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            return self._number_like(node.operand, depth + 1, dtype, terms)
        if not isinstance(node, ast.Call):
            return False
        fqn = self.names.resolve(node.func) or ""
        if fqn in ("torch.tensor", "torch.as_tensor"):
            # (``dtype=`` the scores' own dtype, given as ``dtype``, or float32/float64 named
            # outright -- V-JEPA's ``torch.tensor(k.size(-1), dtype=torch.float32)``: a 0-d
            # floating tensor is of the scores' own category, so it promotes nothing)
            keywords = all(
                kw.arg in ("device", "requires_grad") or kw.arg == "dtype" and (
                    dtype is not None and ast.unparse(kw.value) == dtype or self._full_float_dtype(kw.value))
                for kw in node.keywords)
            if len(node.args) != 1 or not keywords:
                return False
            if self._known_number(node.args[0]):
                return True
            arg = node.args[0]
            if terms is not None and self._undeclared_setting(arg):
                # linformer's ``torch.tensor(self.dim)``, ``self.dim = dim`` a constructor argument:
                # a number makes a 0-d tensor, the same for every key; anything else (a list of
                # one temperature per key) takes the original code
                terms.append(f"not isinstance({ast.unparse(node.args[0])}, (int, float))")
                return True
            return False
        if fqn in ("torch.sqrt", "torch.rsqrt", "torch.exp", "torch.log") and len(node.args) == 1 and not node.keywords:
            return self._number_like(node.args[0], depth + 1, dtype, terms)
        if isinstance(node.func, ast.Attribute) and node.func.attr in ("sqrt", "rsqrt", "exp", "log") \
                and not node.args and not node.keywords and not fqn:
            return self._number_like(node.func.value, depth + 1, dtype, terms) \
                and not self._plain_number(node.func.value)
        if dtype is not None and isinstance(node.func, ast.Attribute) and node.func.attr in ("type", "to") \
                and len(node.args) == 1 and not node.keywords and not fqn:
            # ``t.type(q.type())``, ``t.to(q.device)``: the 0-d tensor in q's own dtype or on its device
            q = dtype[:-len(".dtype")]
            wanted = {"type": (f"{q}.type()", dtype), "to": (dtype, f"{q}.device")}[node.func.attr]
            return ast.unparse(node.args[0]) in wanted and self._number_like(node.func.value, depth + 1, dtype, terms)
        return False

    def _known_number(self, node: ast.expr, depth: int = 0) -> bool:
        """:meth:`_plain_number`, where each bare name must be one the function assigns a
        number: inside ``torch.tensor(...)`` a parameter may be a list or a tensor of one
        temperature per key, not a 0-d tensor (folding it into q would be wrong)."""
        if isinstance(node, ast.Name):
            value = self._resolve_local(node) if depth < 4 else node
            return value is not node and self._known_number(value, depth + 1)
        if isinstance(node, ast.BinOp):
            return self._known_number(node.left, depth) and self._known_number(node.right, depth)
        if isinstance(node, ast.UnaryOp):
            return self._known_number(node.operand, depth)
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "self":
            # (``torch.tensor(self.key_temps)``: what the class stores there must be a number;
            # a list of one temperature per key is no 0-d tensor)
            values = self._attribute_values(node.attr) if depth < 4 else []
            return bool(values) and all(self._built_number(v, depth + 1) for v in values)
        return self._plain_number(node, depth)

    def _built_number(self, node: ast.expr, depth: int = 0) -> bool:
        """A number ``__init__`` can compute from its settings (inside ``torch.tensor(...)``):
        :meth:`_known_number`, and also a name used as a number -- the base of ``**`` with a
        numeric literal exponent (``dim ** -0.5``), divided by or dividing a numeric literal,
        multiplied by a float literal, or the argument of a math function (``math.sqrt(dim)``):
        Python lists allow none of these, so the name holds a number.  A bare name may hold one
        temperature per key (``torch.tensor(key_temps)``): not a 0-d tensor."""
        if depth > 8:
            return False
        if isinstance(node, ast.BinOp):
            left, right = node.left, node.right
            if isinstance(node.op, ast.Pow) and numeric_literal(right) is not None:
                return isinstance(left, ast.Name) or self._built_number(left, depth + 1)
            if isinstance(node.op, (ast.Div, ast.Mult)):
                wanted = (int, float) if isinstance(node.op, ast.Div) else (float,)
                for literal, other in ((right, left), (left, right)):
                    if isinstance(numeric_literal(literal), wanted):
                        return isinstance(other, ast.Name) or self._built_number(other, depth + 1)
            return self._built_number(left, depth + 1) and self._built_number(right, depth + 1)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            return self._built_number(node.operand, depth + 1)
        if isinstance(node, ast.Call) and not node.keywords and node.args and (
                dotted_name(node.func) in SAFE_SCALE_CALLS - {"len"}
                or isinstance(node.func, ast.Name) and self.names.resolve(node.func) in SAFE_SCALE_CALLS - {"len"}):
            return all(isinstance(a, ast.Name) or self._built_number(a, depth + 1) for a in node.args)
        if isinstance(node, ast.Name) and self._numeric_setting(node.id):
            return True
        return self._known_number(node, depth)

    def _numeric_setting(self, name: str) -> bool:
        """Is ``name`` a parameter of the class's ``__init__`` declared a number -- a numeric
        literal default (linformer's ``dim=8`` stored as ``self.dim`` and read as
        ``torch.tensor(self.dim)``) or an ``int``/``float`` annotation -- and never bound again
        there?  A list of one temperature per key is declared neither way."""
        cls = self._class()
        init = next((n for n in cls.body if isinstance(n, ast.FunctionDef) and n.name == "__init__"), None) \
            if cls is not None else None
        if init is None:
            return False
        args = init.args
        param = next((a for a in (*args.posonlyargs, *args.args, *args.kwonlyargs) if a.arg == name), None)
        if param is None or any(isinstance(n, (ast.Assign, ast.AugAssign, ast.AnnAssign)) and any(
                isinstance(t, ast.Name) and t.id == name
                for t in (n.targets if isinstance(n, ast.Assign) else [n.target])) for n in ast_walk(init)):
            return False
        default = param_default(args, name)
        annotated = isinstance(param.annotation, ast.Name) and param.annotation.id in ("int", "float")
        return annotated or default is not None and numeric_literal(default) is not None

    def _full_float_dtype(self, node: ast.expr) -> bool:
        """``torch.float32`` or ``torch.float64`` (or an alias) named outright."""
        fqn = self.names.resolve(node) or ""
        return DTYPE_ALIASES.get(fqn, fqn) in FULL_FLOAT_DTYPES

    def _dtype_only(self, stmt: ast.stmt, rest: list) -> bool:
        """``w = p.type_as(x)`` / ``w = p.to(x.dtype)`` (a cast to another tensor's dtype) whose
        name the rest of the region reads only for its dtype (``y.type_as(w)``, ``w.dtype``)."""
        if not (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name)
                and isinstance(stmt.value, ast.Call) and isinstance(stmt.value.func, ast.Attribute)
                and isinstance(stmt.value.func.value, ast.Name) and _dtype_target(stmt.value) is not None):
            return False
        name = stmt.targets[0].id
        for later in rest:
            parents = _parents(later)
            for node in ast_walk(later):
                if not (isinstance(node, ast.Name) and node.id == name):
                    continue
                if not isinstance(node.ctx, ast.Load):
                    return True  # assigned again: later reads are not of this value
                parent = parents.get(node)
                if isinstance(parent, ast.Attribute) and parent.attr == "dtype":
                    continue
                if isinstance(parent, ast.Call) and parent.args == [node] and not parent.keywords \
                        and isinstance(parent.func, ast.Attribute) and parent.func.attr == "type_as":
                    continue
                return False
        return True

    def _keeps_value(self, stmt: ast.stmt) -> bool:
        """``w = helper(w, ...)`` where the helper (a function of the file, or a method of the
        class called on ``self`` or, static, on the class) returns that argument unchanged, on
        its only path, and the other arguments only read (names, attributes, constants, sizes):
        a statement that computes nothing."""
        if not (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name)
                and isinstance(stmt.value, ast.Call)):
            return False
        call, name = stmt.value, stmt.targets[0].id
        func = call.func
        target = None
        if isinstance(func, ast.Name):
            target = self.names.functions.get(func.id)
        elif isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
            cls = self._class()
            if cls is not None and func.value.id in ("self", cls.name):
                target = next((f for f in cls.body if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))
                               and f.name == func.attr), None)
                if target is None or not all(isinstance(d, ast.Name) and d.id == "staticmethod"
                                             for d in target.decorator_list):
                    return False
                # through the class, or static: the parameters bind as written; else after self
                offset = 0 if func.value.id != "self" or target.decorator_list else 1
        if target is None or target.decorator_list and not isinstance(func, ast.Attribute):
            return False
        body = [b for b in target.body if not (isinstance(b, ast.Expr) and isinstance(b.value, ast.Constant))]
        if len(body) != 1 or not isinstance(body[0], ast.Return) or not isinstance(body[0].value, ast.Name):
            return False
        params = [a.arg for a in target.args.posonlyargs + target.args.args]
        if isinstance(func, ast.Attribute):
            params = params[offset:]
        if target.args.vararg or target.args.kwarg or any(isinstance(a, ast.Starred) for a in call.args) \
                or any(k.arg is None for k in call.keywords):
            return False
        passed = dict(zip(params, call.args)) | {k.arg: k.value for k in call.keywords}
        returned = passed.get(body[0].value.id)
        keeps = isinstance(returned, ast.Name) and returned.id == name and all(_reads_only(v) for v in passed.values())
        if keeps and isinstance(func, ast.Attribute) and func.value.id == "self":
            # a subclass may override it (fairseq's SparseMultiheadAttention masks the scores in
            # its `apply_sparse_mask`): the guard sends such instances to the original
            self.kept_methods.append((cls.name, func.attr))
        return keeps

    def _pure_dict_get(self, call: ast.Call) -> bool:
        """``self.cfg.get("kind")`` (constant arguments) where every value the class assigns to
        ``self.cfg`` is a dict display or ``dict(...)``: a dict's ``get`` only reads."""
        func = call.func
        # (a same-file function is not taken as a read, however plain its body: an attribute it
        # reads off its argument may be a property that changes state, review62)
        if not (isinstance(func, ast.Attribute) and func.attr == "get" and isinstance(func.value, ast.Attribute)
                and isinstance(func.value.value, ast.Name) and func.value.value.id == "self"
                and not call.keywords and 1 <= len(call.args) <= 2
                and all(isinstance(a, ast.Constant) for a in call.args)):
            return False
        values = self._attribute_values(func.value.attr)
        return bool(values) and all(isinstance(v, ast.Dict) or (isinstance(v, ast.Call) and isinstance(v.func, ast.Name)
                                                                and v.func.id == "dict") for v in values)

    def _call_effect(self, test: ast.expr) -> str | None:
        """A part of ``test`` known to change state when evaluated (:func:`_body_effect` read on
        the test: a method of the class or a same-file function whose body may, ``next``,
        ``setattr``, a mutating or in-place method), a walrus, an await or a yield, as the
        reason's words; None otherwise (a tensor's reductions, sizes and other calls read)."""
        if any(isinstance(n, (ast.NamedExpr, ast.Await, ast.Yield, ast.YieldFrom)) for n in ast_walk(test)):
            return "an expression with a side effect"
        if not any(isinstance(n, ast.Call) for n in ast_walk(test)):
            return None
        cls = self._class()
        methods = {n.name: n for n in cls.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))} \
            if cls is not None else {}
        for node in ast_walk(test):
            if not isinstance(node, ast.Call):
                continue
            if _body_effect(node, methods, functions=self.names.functions, own=False):
                return f"a call (`{ast.unparse(node.func)}(...)`) that may change state"
        return None

    def _property_effect(self, test: ast.expr) -> str | None:
        """A ``self.<name>`` that ``test`` reads where ``<name>`` is a ``@property`` of the class
        whose getter may do more than read (:func:`_body_effect`: a counter it bumps, review61),
        as the reason's words; None otherwise (and for a test reading no attribute of self)."""
        names = {n.attr for n in ast_walk(test) if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name)
                 and n.value.id == "self"}
        names |= {n.args[1].value for n in ast_walk(test) if isinstance(n, ast.Call) and _attribute_lookup(n)
                  and isinstance(n.args[0], ast.Name) and n.args[0].id == "self"}
        cls = self._class() if names else None
        if cls is not None:
            methods = {n.name: n for n in cls.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
            for name in sorted(names):
                func = methods.get(name)
                if func is not None and any(dotted_name(d) in ("property", "builtins.property")
                                            for d in func.decorator_list) and _body_effect(func, methods):
                    return f"`self.{name}`, a property whose getter may change state"
        return self._foreign_property_effect(test)

    def _foreign_property_effect(self, test: ast.expr) -> str | None:
        """An attribute of another object than the module (``self.sub.flag``, ``cfg.flag``) that
        ``test`` reads, where a class of the same file defines a ``@property`` of that name whose
        getter may change state (review62: the object's class is not known here, so any such
        property of the file counts); None otherwise."""
        names = {n.attr for n in ast_walk(test) if isinstance(n, ast.Attribute)
                 and not (isinstance(n.value, ast.Name) and n.value.id == "self")}
        if not names:
            return None
        for cls in ast_walk(self.index.tree):
            if not isinstance(cls, ast.ClassDef):
                continue
            methods = {n.name: n for n in cls.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
            for name in sorted(names & methods.keys()):
                func = methods[name]
                if any(dotted_name(d) in ("property", "builtins.property") for d in func.decorator_list) \
                        and _body_effect(func, methods):
                    return f"`.{name}`, a property of {cls.name} whose getter may change state"
        return None

    def _class(self) -> ast.ClassDef | None:
        """The innermost class around the context product.  Only statement bodies are
        searched (not every expression of the module: that walk was a quarter of a one-file
        check of modeling_bert.py)."""
        line = self.roles["c"].line
        best = None
        stack = list(self.index.tree.body)
        while stack:
            node = stack.pop()
            if not isinstance(node, ast.stmt) or not node.lineno <= line <= (node.end_lineno or node.lineno):
                continue
            if isinstance(node, ast.ClassDef) and (best is None or node.lineno > best.lineno):
                best = node
            for field in ("body", "orelse", "finalbody", "handlers"):
                stack.extend(getattr(node, field, ()))
        return best

    def _module_constant(self, expr: ast.expr) -> ast.expr | None:
        """``NAME`` that the module's top level binds once (``NAME = <value>``) and that nothing
        in the file binds again (no other assignment, loop or ``with`` target, ``del``, import,
        parameter or ``global`` of that name): that value; None otherwise."""
        if not isinstance(expr, ast.Name):
            return None
        name = expr.id
        tree = self.index.tree
        if not any(isinstance(st, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in st.targets)
                   for st in tree.body):
            return None  # (a call-free test before the walk: most names are no module constant)
        value = None
        for st in tree.body:
            if isinstance(st, ast.Assign) and len(st.targets) == 1 and isinstance(st.targets[0], ast.Name) \
                    and st.targets[0].id == name:
                if value is not None:
                    return None
                value = st.value
        stores = 0
        for node in ast_walk(tree):
            cls = node.__class__
            if cls is ast.Name and node.id == name and node.ctx.__class__ is not ast.Load:
                stores += 1
            elif (cls is ast.arg and node.arg == name) or (cls in (ast.Global, ast.Nonlocal) and name in node.names) \
                    or (cls is ast.alias and (node.asname or node.name) == name):
                return None
        return value if stores == 1 else None

    def _class_constant(self, expr: ast.expr) -> ast.expr | None:
        """``self.<X>`` where the class body binds ``X = <value>`` once and nothing in the
        module binds an attribute or class variable of that name again (no ``self.X = ...``, no
        subclass overriding it): that value (freerec's ``ATTENTION_MASK_VALUE = -1.0e6``, the
        fill of its scores); None otherwise."""
        if not (isinstance(expr, ast.Attribute) and isinstance(expr.value, ast.Name) and expr.value.id == "self"):
            return None
        cls = self._class()
        if cls is None:
            return None
        attr = expr.attr
        value = class_body_value(cls, attr)
        if value is None:
            return None
        binds = 0
        for node in ast_walk(self.index.tree):
            if isinstance(node, ast.Attribute) and node.attr == attr and isinstance(node.ctx, (ast.Store, ast.Del)):
                return None
            if isinstance(node, ast.ClassDef):
                binds += sum(1 for st in node.body if isinstance(st, (ast.Assign, ast.AnnAssign, ast.AugAssign))
                             for t in (st.targets if isinstance(st, ast.Assign) else [st.target])
                             if isinstance(t, ast.Name) and t.id == attr)
        return value if binds == 1 else None

    def _attribute_values(self, attr: str) -> list[ast.expr]:
        """What the class assigns to ``self.<attr>`` (also ``register_buffer`` /
        ``register_parameter``); where it assigns nothing, what the nearest same-file base class
        that does assigns (hsir's ``LocalAttention(Attention)`` reads the per-head
        ``self.temperature`` parameter its base's ``__init__`` makes: no number for ``scale=``)."""
        cls = self._class()
        seen: set[int] = set()
        while cls is not None and id(cls) not in seen:
            seen.add(id(cls))
            values = self._assigned_in(cls, attr)
            if values:
                return values
            cls = self._same_file_base(cls)
        return []

    def _attribute_changed_in_place(self, attr: str) -> bool:
        """Does the class (or a same-file base) change the tensor ``self.<attr>`` holds in place
        anywhere: ``self.bias[..., 0] = 0``, ``self.bias[i] += x``, ``self.bias[:, 0].zero_()``,
        ``self.bias.data.fill_(1)`` (review62: a triangle buffer changed in ``__init__`` after it
        is registered is no triangle).  The receiver is followed through subscripts, ``.data``
        and methods that return a view of it."""
        cls = self._class()
        seen: set[int] = set()
        while cls is not None and id(cls) not in seen:
            seen.add(id(cls))
            for node in ast_walk(cls):
                if isinstance(node, ast.AugAssign) and _roots_at_attribute(node.target, attr):
                    return True
                if isinstance(node, ast.Assign) and any(
                        isinstance(t, (ast.Subscript, ast.Attribute)) and not _is_self_attr(t, attr)
                        and _roots_at_attribute(t, attr) for t in node.targets):
                    return True
                if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                        and node.func.attr.endswith("_") and not node.func.attr.startswith("_") \
                        and _roots_at_attribute(node.func.value, attr):
                    return True
            cls = self._same_file_base(cls)
        return False

    def _same_file_base(self, cls: ast.ClassDef) -> ast.ClassDef | None:
        """The first base of ``cls`` written as a bare name that names a class defined at the top
        level of the same file (None for any other base: torch's, an import's)."""
        for base in cls.bases:
            if isinstance(base, ast.Name):
                found = next((n for n in self.index.tree.body if isinstance(n, ast.ClassDef) and n.name == base.id),
                             None)
                if found is not None:
                    return found
        return None

    def _assigned_in(self, cls: ast.ClassDef, attr: str) -> list[ast.expr]:
        """What ``cls``'s own body assigns to ``self.<attr>`` (:meth:`_attribute_values`)."""
        values = []
        for node in ast_walk(cls):
            if isinstance(node, ast.Assign):
                for target in node.targets:
                    if isinstance(target, ast.Attribute) and target.attr == attr and isinstance(target.value, ast.Name) \
                            and target.value.id == "self":
                        values.append(node.value)
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                    and node.func.attr in ("register_buffer", "register_parameter") and len(node.args) >= 2 \
                    and isinstance(node.args[0], ast.Constant) and node.args[0].value == attr:
                values.append(node.args[1])
        return values

    def _held_partial(self, attr: str) -> str | None:
        """How the class holds a function in ``self.<attr>``: "" when every value it assigns
        is a ``functools.partial`` call (a function held as a value: no forward hooks to
        read); the module's name for ``functools.partial`` when the values are conditional
        expressions choosing between such calls and other values (the fused path is then taken
        only while the attribute holds a partial, tested by that name); None otherwise."""
        values = self._attribute_values(attr) if "." not in attr else []
        branches: list = []
        todo = list(values)
        while todo:
            value = todo.pop()
            if isinstance(value, ast.IfExp):
                todo += [value.body, value.orelse]
            else:
                branches.append(value)
        held = [isinstance(v, ast.Call) and self.names.resolve(v.func) in ("functools.partial", "partial")
                for v in branches]
        if not branches or not any(held):
            return None
        if all(held):
            return ""
        if any(isinstance(v, ast.Call) and self.names.resolve(v.func) in ("functools.partial", "partial")
               for v, h in zip(branches, held) if not h):
            return None
        name = next((local for local, fqn in self.names.imports.items() if fqn == "functools.partial"), None)
        if name is None:
            module = next((local for local, fqn in self.names.imports.items() if fqn == "functools"), None)
            name = f"{module}.partial" if module is not None else None
        if name is None:
            raise Skip(f"`self.{attr}` holds a partial or another value, and the module has no name for partial")
        return name

    def _is_tensor_attribute(self, attr: str) -> bool:
        return any(self._tensor_expr(value) for value in self._attribute_values(attr))

    def _tensor_expr(self, expr: ast.expr) -> bool:
        if isinstance(expr, ast.Call):
            fqn = self.names.resolve(expr.func) or ""
            return fqn.startswith("torch.") or fqn.endswith("Parameter")
        return False

    def _constant_along_keys(self, expr: ast.expr, depth: int = 0, built: bool = False) -> bool:
        """Is ``expr`` a number or a tensor whose last dimension is 1 (so that multiplying the
        scores by it equals multiplying the query)?  ``built``: ``expr`` is (part of) the value
        ``__init__`` stores on a module attribute, whose names are the constructor's settings."""
        if depth > 12:
            return False
        if self._plain_number(expr):
            return True
        if isinstance(expr, ast.Constant):
            return isinstance(expr.value, (int, float)) and not isinstance(expr.value, bool)
        if isinstance(expr, ast.UnaryOp):
            return self._constant_along_keys(expr.operand, depth + 1, built)
        if isinstance(expr, ast.BinOp):
            return self._constant_along_keys(expr.left, depth + 1, built) and self._constant_along_keys(expr.right, depth + 1, built)
        if isinstance(expr, ast.BoolOp) and isinstance(expr.op, ast.Or):
            # `scale or q.size(-1) ** 0.5`: Python tests the truth of every operand but the
            # last, which a tensor allows only when it holds one element -- the same for every
            # key; the last operand is the value when the others are false.
            return all(isinstance(v, (ast.Name, ast.Attribute)) for v in expr.values[:-1]) \
                and self._constant_along_keys(expr.values[-1], depth + 1, built)
        if isinstance(expr, ast.Name):
            value = self._resolve_local(expr)
            return value is not expr and self._constant_along_keys(value, depth + 1, built)
        if isinstance(expr, ast.Attribute) and isinstance(expr.value, ast.Name) and expr.value.id == "self":
            # (None where the module has no such tensor: the attention cannot run with it)
            values = [v for v in self._attribute_values(expr.attr)
                      if not (isinstance(v, ast.Constant) and v.value is None)]
            return bool(values) and all(self._constant_along_keys(v, depth + 1, True) for v in values)
        if isinstance(expr, ast.Call):
            fqn = self.names.resolve(expr.func) or ""
            tail = fqn.rsplit(".", 1)[-1] if fqn else (expr.func.attr if isinstance(expr.func, ast.Attribute) else "")
            if fqn.endswith("Parameter") and expr.args:
                return self._constant_along_keys(expr.args[0], depth + 1, built)
            if fqn.startswith("torch.") and tail in FACTORIES:
                shape = list(expr.args[:-1] if tail == "full" else expr.args)
                if len(shape) == 1 and isinstance(shape[0], (ast.Tuple, ast.List)):
                    shape = list(shape[0].elts)
                return not shape or (isinstance(shape[-1], ast.Constant) and shape[-1].value == 1)
            if fqn in ("torch.tensor", "torch.as_tensor") and expr.args:
                # (inside the attention's function a name must be one the function assigns a
                # number: a parameter may hold one temperature per key; in ``__init__``, as in
                # the learned temperature ``nn.Parameter(torch.log(torch.tensor(dim ** -0.5)))``,
                # a name is a constructor setting: a per-key tensor cannot be sized before the
                # keys exist)
                arg = expr.args[0]
                return isinstance(arg, ast.Constant) or (
                    isinstance(arg, (ast.UnaryOp, ast.BinOp, ast.Name))
                    and (self._built_number(arg) if built else self._known_number(arg)))
            if fqn.startswith("torch.") and tail in ELEMENTWISE and expr.args:
                return self._constant_along_keys(expr.args[0], depth + 1, built) \
                    and self._bounds_along_keys(tail, expr.args[1:], expr.keywords, depth, built)
            if not fqn and isinstance(expr.func, ast.Attribute) and expr.func.attr in ELEMENTWISE:
                return self._constant_along_keys(expr.func.value, depth + 1, built) \
                    and self._bounds_along_keys(expr.func.attr, expr.args, expr.keywords, depth, built)
            if not fqn and isinstance(expr.func, ast.Attribute) and _in_place_method(expr.func.attr):
                # ``torch.ones(1, heads, 1, 1).mul_(scale_value)``: an in-place method returns
                # the tensor it changes, whose shape it cannot change (its other operands
                # broadcast to that shape), so the last dimension is the receiver's
                return self._constant_along_keys(expr.func.value, depth + 1, built)
        return False

    def _bounds_along_keys(self, name: str, args: list, keywords: list, depth: int, built: bool) -> bool:
        """Are a ``clamp``/``clip``'s bounds (the only elementwise operands here that are not the
        receiver) each the same along the keys?  Their shape broadcasts into the result's:
        ``ones(1, h, 1, 1).clamp(max=w)`` with ``w`` of one entry per key differs per key
        (review59).  Any other elementwise call keeps its receiver's shape."""
        if name not in ("clamp", "clip"):
            return True
        bounds = [*args, *(kw.value for kw in keywords if kw.arg in ("min", "max"))]

        def scalar(b: ast.expr) -> bool:
            # (Swin v2's ``max=np.log(1. / 0.01)``: a math or numpy function of numbers)
            if not isinstance(b, ast.Call):
                return False
            fqn = self.names.resolve(b.func) or dotted_name(b.func) or ""
            return fqn.split(".", 1)[0] in ("math", "numpy", "np") and not b.keywords \
                and all(self._known_number(a) for a in b.args)

        def stored(b: ast.expr) -> bool:
            # (``self.<attr>``: read for what the class stores there -- a registered buffer or a
            # tensor attribute of one entry per key is no number, review61 -- not through
            # _plain_number, which takes an attribute it does not know as a tensor for a number)
            values = self._attribute_values(b.attr)
            return bool(values) and all(self._constant_along_keys(v, depth + 1, True) for v in values)

        def foreign(b: ast.expr) -> bool:
            # (``max=self.cfg.bound``, ``max=cfg.bound``: an attribute of another object than the
            # module, which may hold one entry per key -- not a number because it is read as one
            # elsewhere (review61); a module's constant such as ``math.pi`` and a tensor's
            # ``.shape``/``.ndim``/``.device``/``.dtype`` are known)
            parents = _parents(b)
            for node in ast_walk(b):
                if not isinstance(node, ast.Attribute) or isinstance(parents.get(node), ast.Attribute) \
                        or (isinstance(parents.get(node), ast.Call) and parents[node].func is node):
                    continue  # (the outermost attribute of each chain, not a method called)
                if node.attr in ("shape", "ndim", "device", "dtype") or isinstance(node.value, ast.Subscript):
                    continue
                root = node.value
                while isinstance(root, ast.Attribute):
                    root = root.value
                if not isinstance(root, ast.Name):
                    return True
                if root.id == "self" and isinstance(node.value, ast.Name):
                    continue  # (``self.<attr>``: read for what the class stores there)
                fqn = self.names.resolve(node) or ""
                if fqn.split(".", 1)[0] not in ("math", "numpy", "np", "torch", "sys"):
                    return True
            return False

        def held(b: ast.expr, hops: int = 0) -> ast.expr | None:
            # (review62: a bound bound to a local first, ``bnd = self.cfg.bound``, or held by a
            # module-level constant tensor, ``BOUNDS = torch.linspace(...).view(1, 1, 1, n)``, is
            # read for its value; None where that value is not one expression)
            if not isinstance(b, ast.Name) or hops > 4:
                return b
            value = self._resolve_local(b)
            if value is not b:
                return held(value, hops + 1)
            func = self._function(self.block[0]) if self.block else None
            if func is not None and any(n.__class__ is ast.Name and n.id == b.id and n.ctx.__class__ is ast.Store
                                        for n in ast_walk(func)):
                # (review66: a local the function binds in a form not read for one value --
                # ``_, lim = 0, BOUNDS``, ``lim: Tensor = BOUNDS``, ``lim = x = BOUNDS``, twice --
                # may hold a per-key tensor: declined)
                return None
            module = [n.value for n in self.index.tree.body if isinstance(n, (ast.Assign, ast.AnnAssign))
                      and any(isinstance(t, ast.Name) and t.id == b.id
                              for t in (n.targets if isinstance(n, ast.Assign) else [n.target]))]
            if not module:
                return b  # (a parameter or a name made elsewhere: read as before)
            return held(module[0], hops + 1) if len(module) == 1 and module[0] is not None else None

        def bound_ok(b: ast.expr) -> bool:
            b = held(b)
            if b is None:
                return False
            return (isinstance(b, ast.Constant) and b.value is None) \
                or (stored(b) if isinstance(b, ast.Attribute) and isinstance(b.value, ast.Name)
                    and b.value.id == "self" else
                    not foreign(b) and (self._known_number(b) or scalar(b)
                                        or self._constant_along_keys(b, depth + 1, built)))

        return all(bound_ok(b) for b in bounds)

    def _check_moved_scores(self, nodes) -> None:
        """Scores an einsum writes with their axes moved (``einsum("ibnd,jbnd->ijbn", q, k)``,
        read in the product's layout by structure/layouts.py): q, k and v are moved into the
        fused call's layout and its output back (the products' moves), which is exact for the
        scores themselves and a scalar scale.  A mask, bias or fill is written in the moved
        layout (and may broadcast from fewer axes), as are the guards that read it along the
        keys' axis: not moved here, so such a site is declined."""
        view = self.roles["s0"].view
        if view is None or view.out_move is None:
            return
        extra = [r for r in (*VIEW_STEPS, "z") if r in self.roles]
        moved = [r for r in (*ADD_STEPS, *FILL_STEPS) if r in self.roles]
        written = self.index.segment(self.roles["s0"].span) if self.roles["s0"].span is not None else ""
        if moved and "..." in written:
            extra.extend(moved)  # (a move of the last axes of any rank: the mask's rank is not fixed)
        if extra or len({n.func for n in nodes}) > 1:
            raise Skip("the scores are written with their axes moved (the keys not last) and a mask, bias or "
                       "fill is added in that layout, or a helper computes a step: not moved into the fused "
                       "call's layout")

    def _check_moved_mask_parts(self) -> None:
        """On scores an einsum writes with their axes moved, only the add steps' operands and a
        plain fill's mask are moved into the fused call's layout (:meth:`_in_product_layout`);
        a mask made another way (a dtype or mask choice, a blend, a block or helper bias, the
        groups of a split) is laid out for the written scores, so such a site is declined."""
        view = self.roles["s0"].view
        if view is None or view.out_move is None:
            return
        blend = any(r in self.roles and self.roles[r].op == "canon.mask_blend" for r in FILL_STEPS)
        if blend or self.dtype_choices or self.mask_choices or self.block_bias is not None \
                or self.fill_helper is not None or self.helper_adds or self.grouped_cat is not None:
            raise Skip("the scores are written with their axes moved (the keys not last) and a mask is made for "
                       "that layout in a way not moved into the fused call's layout")

    def _moved_rank_guard(self, node: ast.expr, rank: int, test: ast.expr | None) -> bool:
        """For a mask on moved scores whose rank the code fixes but for a parameter's
        (:func:`.ranks.rank_leaves`: ``key_mask[:, None, :, None]`` has the scores' four axes
        when ``key_mask`` has two): the guard's terms sending any other rank to the original
        (``key_mask.dim() != 2``, under the step's test), kept in ``moved_rank_terms``.  Only
        parameters of the function that it never binds again (read before the region as at
        the step).  False where there is no such reading."""
        func = self._function(self.block[0]) if self.block else None
        if func is None:
            return False
        terms = getattr(self, "moved_rank_terms", None)
        if terms is None:
            terms = self.moved_rank_terms = []
        leaves = rank_leaves(node, rank, self._resolve_local)
        params = {a.arg for a in (*func.args.posonlyargs, *func.args.args, *func.args.kwonlyargs)}
        bound = {n.id for n in ast_walk(func) if isinstance(n, ast.Name) and not isinstance(n.ctx, ast.Load)}
        # (a mask handed in whole, a leaf of the scores' own rank, stays declined as before: no
        # index or unsqueeze of it says the layout it was written for)
        if not leaves or any(not isinstance(leaf, ast.Name) or leaf.id not in params or leaf.id in bound
                             or leaf_rank == rank for leaf, leaf_rank in leaves):
            before = {n.id for n in ast_walk(func) if isinstance(n, ast.Name) and not isinstance(n.ctx, ast.Load)
                      and test is not None and n.lineno < test.lineno}
            if test is None or not self._plain_step_test(test, params, before):
                return False
            # clipcap's ``if mask:`` around a fill of a mask whose rank no parameter says: the
            # guard sends every call where the test holds to the original, so the fused path
            # runs only without that step (its mask is then None)
            term = _guard_term(self._text(test), test)
            if term not in terms:
                terms.append(term)
            return True
        for leaf, leaf_rank in leaves:
            term = f"{leaf.id}.dim() != {leaf_rank}"
            if test is not None:
                term = f"{_guard_term(self._text(test), test)} and {term}"
            if term not in terms:
                terms.append(term)
        return True

    @staticmethod
    def _plain_step_test(test: ast.expr, params: set, bound: set) -> bool:
        """A step's if test the guard can read before the region as the step reads it: names
        that are parameters the function does not bind again before the test (``mask``, ``mask
        is not None``, ``self.flag``; ``bound``: the names bound before it), and no call
        (nothing it runs twice)."""
        for node in ast_walk(test):
            if isinstance(node, (ast.Call, ast.Await, ast.Lambda, ast.NamedExpr)):
                return False
            if isinstance(node, ast.Name) and node.id != "self" and (node.id not in params or node.id in bound):
                return False
        return True

    def _in_product_layout(self, text: str, node: ast.expr, test: ast.expr | None = None) -> str:
        """A mask or bias ``text`` (the code ``node``) written for scores an einsum lays out
        with their axes moved (``"bqkh"``), moved into the product's own layout, the fused
        call's (``"bhqk"``): the inverse of the scores' move, ``.permute(...)`` -- the same
        values at the same (query, key) pairs, so the guards that read the mask along its last
        axis read it along the keys, as for unmoved scores.  Only where the code fixes the
        mask's rank at the scores' (:func:`.ranks.static_rank`); a mask broadcast from fewer
        axes, or of a rank the code does not say, is declined.  Other scores: ``text``."""
        view = self.roles["s0"].view
        if view is None or view.out_move is None:
            return text
        move = view.out_move
        if static_rank(node) != len(move) and not self._moved_rank_guard(node, len(move), test):
            raise Skip("the scores are written with their axes moved (the keys not last) and a mask, bias or fill "
                       f"is added in that layout whose rank the code does not fix (`{self._text(node)}`): not "
                       "moved into the fused call's layout")
        inverse = tuple(move.index(axis) for axis in range(len(move)))
        return f"{_atom_text(text, node)}.permute{inverse}"

    def _check_containers(self) -> None:
        """The softmax and dropout modules may be the members of one ``nn.Sequential``
        attribute called on the scores (``self.attend = nn.Sequential(nn.Softmax(dim=-1),
        nn.Dropout(p))``; ``attn = self.attend(sim)``).  The fused call replaces the
        container's call, so the container must run exactly the matched members, in the
        pattern's order (the softmax, then the dropout), and nothing in the class may change
        its members after it is built."""
        members: dict[str, list[tuple[int, str]]] = {}
        for role in ("p0", "p1"):
            node = self.roles.get(role)
            member = re.fullmatch(r"self\.([A-Za-z_][A-Za-z0-9_]*)\[(\d+)\]", node.layer or "") \
                if node is not None and node.kind == "layer" else None
            if member:
                members.setdefault(member.group(1), []).append((int(member.group(2)), role))
        for attr, found in members.items():
            values = self._attribute_values(attr)
            if len(values) != 1 or not isinstance(values[0], ast.Call) \
                    or self.names.resolve(values[0].func) != "torch.nn.Sequential":
                raise Skip(f"`self.{attr}` is not built once as an nn.Sequential of the softmax and dropout")
            built = values[0]
            if built.keywords or any(isinstance(a, ast.Starred) for a in built.args):
                raise Skip(f"the members of `self.{attr}` could not be read")
            found.sort()
            if [index for index, _ in found] != list(range(len(built.args))):
                raise Skip(f"`self.{attr}` (an nn.Sequential) runs modules besides the attention's "
                           "softmax and dropout; rewrite it by hand")
            if [role for _, role in found] != sorted(role for _, role in found):  # p0 (softmax) < p1 (dropout)
                raise Skip(f"`self.{attr}` runs the dropout before the softmax")
            self._check_unchanged(attr)

    def _check_unchanged(self, attr: str) -> None:
        """Nothing in the class adds, replaces or removes members of ``self.<attr>``."""
        cls = self._class()
        for node in ast_walk(cls) if cls is not None else ():
            target = None
            if isinstance(node, ast.Subscript) and isinstance(node.ctx, (ast.Store, ast.Del)):
                target = node.value
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in (
                    "append", "extend", "insert", "add_module", "register_module", "pop", "__setitem__",
                    "__delitem__", "__iadd__"):
                target = node.func.value
            elif isinstance(node, ast.AugAssign):
                target = node.target
            if isinstance(target, ast.Attribute) and target.attr == attr and isinstance(target.value, ast.Name) \
                    and target.value.id == "self":
                raise Skip(f"the class changes the members of `self.{attr}` (line {node.lineno}); rewrite it by hand")

    def _hooks(self, edits: Edits, conditional: set = frozenset()) -> list[str]:
        """Forward hooks registered on the softmax or dropout module (an attention map
        recorded by a hook) would not run on the fused path: it is taken only without them.
        TorchScript cannot read a module's hook dicts, so the test is one conditional
        expression a scripted module never evaluates (``False if is_scripting() else (...)``:
        TorchScript compiles only the branch a scripting check selects, where ``and``/``or``
        would still compile the attribute reads); a scripted module runs no Python hooks.
        ``conditional``: the steps that run under an if (a dropout the caller may not pass)."""
        terms = []
        held: list[str] = []  # a softmax held as a partial or another module: the fused path only with the partial
        for role in ("p0", "p1"):
            node = self.roles.get(role)
            if node is None or node.kind != "layer":
                continue
            layer = self._layer_text(node)
            member = re.fullmatch(r"self\.([A-Za-z_][A-Za-z0-9_]*)\[(\d+)\]", layer)
            if member:  # a member of an nn.Sequential: its hooks, and the container's
                container = f"self.{member.group(1)}"
                terms += [f"{container}._forward_hooks", f"{container}._forward_pre_hooks"]
            elif layer.isidentifier() and layer != node.layer:
                # A dropout module a helper takes as a parameter: the fused path reads its rate,
                # which other callers' arguments may not have (anything but an nn.Dropout, or one
                # with hooks, goes to the original); a dropout the caller may omit, only when passed.
                if role != "p1":
                    raise Skip(f"the softmax module `{layer}` is a parameter of the function")
                term = (f"not isinstance({layer}, {self._torch('the dropout test')}.nn.Dropout) "
                        f"or bool({layer}._forward_hooks or {layer}._forward_pre_hooks)")
                terms.append(f"({layer} is not None and ({term}))" if role in conditional else f"({term})")
                continue
            elif not layer.startswith("self.") or not all(part.isidentifier() for part in layer[5:].split(".")):
                # (a path of attributes names a module too: a submodule's member, or an
                # nn.ModuleDict's member under its key, `self.nets.attn_dropout`)
                raise Skip(f"the {'softmax' if role == 'p0' else 'dropout'} module `{layer}` is not a plain attribute")
            elif role == "p0" and self._held_partial(layer[len("self."):]) is not None:
                # `self.attn_fn = partial(F.softmax, dim=-1)`: a function, no module, no hooks;
                # chosen beside another module (`... if not flag else OtherFn()`), the fused path
                # only while it holds the partial
                partial_name = self._held_partial(layer[len("self."):])
                if partial_name:  # (scripted, it is a module: the original path)
                    held.append(f"(True if {self._is_scripting(edits)}() else not isinstance({layer}, {partial_name}))")
                continue
            elif role in conditional:  # `if self.dropout is not None:` -- its hooks only when there is one
                terms.append(f"({layer} is not None and bool({layer}._forward_hooks or {layer}._forward_pre_hooks))")
                continue
            terms += [f"{layer}._forward_hooks", f"{layer}._forward_pre_hooks"]
        if not terms:
            return held
        return [f"(False if {self._is_scripting(edits)}() else ({' or '.join(dict.fromkeys(terms))}))", *held]

    def _is_scripting(self, edits: Edits) -> str:
        """How the module calls ``torch.jit.is_scripting``: through its own import of torch, else
        a name imported for the rewrite."""
        torch = next((local for local, fqn in self.names.imports.items() if fqn == "torch"), None)
        if torch is not None:
            return f"{torch}.jit.is_scripting"
        scripting, request = self.planner.names.local("torch.jit.is_scripting")
        edits.imports.add(request)
        return scripting

    def _returned_beside(self, c_stmt: ast.stmt, call: str, only_original: set[str]) -> str | None:
        """The fused path's context statement when it is ``return <product>, <value only the
        original computes>, ...`` (Whisper's ``..., qk.detach()``): those elements hand back
        None there, and the callers are asked to decline them (:mod:`.weights`); None when
        the statement reads such values otherwise."""
        value = c_stmt.value if isinstance(c_stmt, ast.Return) else None
        if not isinstance(value, ast.Tuple) or any(isinstance(e, ast.Starred) for e in value.elts):
            return None
        c_span = self.roles["c"].span
        swaps = [(c_span, call)]
        for place, element in enumerate(value.elts):
            if contains(span_of(element), c_span) or not _loads(element) & only_original:
                continue  # (the product's own element reads the probabilities the fused call replaces)
            if contains(c_span, span_of(element)):
                return None
            swaps.append((span_of(element), "None"))
            self.in_context.append((c_stmt, place, len(value.elts), sorted(_loads(element) & only_original)[0]))
        text = self._stmt_text(c_stmt, swaps)
        return text if self.in_context and not _loads(ast.parse(text)) & only_original else None

    def _live_reads(self, region: list[ast.stmt], live: set[str], edits: Edits | None = None,
                    regions: list[Span] | None = None) -> list[str]:
        """The conditions under which code after the region reads what only the original
        path defines (each read must sit under such a condition, or the match is skipped).
        Values handed back to the callers on every path (``return x, attn``) are declined
        through a flag the callers in the file pass (:mod:`.weights`): its term is returned
        too, and ``self.declined`` gets the fused path's ``attn = None``."""
        in_context = getattr(self, "in_context", [])
        if not live and not in_context:
            return []
        func = self._function(region[0])
        if func is None:
            raise Skip("the attention is not inside a function")
        parents = _parents(func)
        end = (region[-1].end_lineno, region[-1].end_col_offset)
        # Code in the other branch of an if around the region never runs after it.
        unreachable: set[int] = set()
        # The arms of the ifs around the region: a read in the same arm is reached only where the
        # region ran, so that arm's test holds wherever the attention runs -- no condition the
        # guard could send to the original (yadis's `if use_triton: <kernel> else: <attention>;
        # weights = probs`: `not use_triton` would send every call of the arm to the original)
        shared: set[tuple[int, bool]] = set()
        child, parent = region[0], parents.get(region[0])
        while parent is not None and parent is not func:
            if isinstance(parent, ast.If):
                other = parent.orelse if child in parent.body else parent.body if child in parent.orelse else []
                for stmt in other:
                    unreachable.update(id(n) for n in ast_walk(stmt))
                if child in parent.body or child in parent.orelse:
                    shared.add((id(parent), child in parent.body))
            child, parent = parent, parents.get(parent)
        terms: list[str] = []
        unconditional: list[ast.Name] = []
        for node in ast_walk(func):
            if not (isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load) and node.id in live):
                continue
            if (node.lineno, node.col_offset) < end or id(node) in unreachable or _reassigned(node, parents, func, end):
                continue
            term = None
            child, parent = node, parents.get(node)
            while parent is not None and parent is not func:
                if isinstance(parent, ast.IfExp) and child is parent.body:
                    term = parent.test
                    break
                if isinstance(parent, ast.If) and child in parent.body:
                    if (id(parent), True) not in shared:
                        term = parent.test
                    break
                child, parent = parent, parents.get(parent)
            text = None
            if term is None:
                # (a read in the else branch of an if: `if not return_attn: return o` / `else:
                # return o, w, attn`, read only where the test fails)
                test = _else_test(node, parents, func)
                if test is not None and (id(parents.get(test)), False) in shared:
                    test = None  # (the region's own else arm: read wherever the attention runs)
                if test is None:
                    test = _early_return_test(node, parents, func, end,
                                              lambda t: not _changed_before(t, region[0], func))
                if test is not None:
                    term = test
                    inner = test.operand if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not) else None
                    text = _guard_term(self._text(inner), inner) if inner is not None \
                        else f"not {_atom(self._text(test), test)}"
            if term is None:
                found = _cleared_unless(node, parents, func, end)
                if found is None:
                    unconditional.append(node)
                    continue
                term, text = found
            if _changed_before(term, region[0], func):
                raise Skip(f"the condition at line {term.lineno} is assigned after the attention begins")
            terms.append(text or _guard_term(self._text(term), term))
        run = current_run()
        if unconditional and run is not None and run.unsafe_fixes:
            # `self.scores = scores` that no file reads: with --unsafe-fixes the fused path binds
            # the name to None, so the attribute is None after a fused call (weights.unread_store)
            dropped = [n for n in unconditional if unread_store(n, parents, func) is not None]
            unconditional = [n for n in unconditional if n not in dropped]
            self.unsafe_nones = [*getattr(self, "unsafe_nones", []), *(f"{n.id} = None" for n in dropped)]
        if unconditional or in_context:
            unconditional.sort(key=lambda n: (n.lineno, n.col_offset))
            if edits is None or regions is None or not isinstance(func, ast.FunctionDef):
                read = unconditional[0] if unconditional else None
                raise Skip(f"`{read.id}` (computed by the attention) is read at line {read.lineno} unconditionally"
                           if read is not None else "the attention's values are handed back beside the product")
            self.flag, self.declined = Decline(self.index, self.planner.names, edits, regions).plan(
                func, unconditional, in_context)
            terms.insert(0, self.flag)
        return terms

    def _written_beside_context(self, node: ast.expr) -> bool:
        """Is ``node`` written in the function that holds the context product (or made for the
        rewrite)?  An operand of a helper's body inlined into its caller (_inline_probs_helper)
        may read the helper's locals, which the guard before the region cannot."""
        if id(node) in self.made_texts or "c" not in self.roles:
            return id(node) in self.made_texts
        info = self.index.stmt(self.roles["c"].stmt)
        while info is not None and not isinstance(info.owner, (ast.FunctionDef, ast.AsyncFunctionDef)):
            info = self.index.stmt(span_of(info.owner)) if isinstance(info.owner, ast.stmt) else None
        return info is not None and info.owner.lineno <= node.lineno <= info.owner.end_lineno

    def _alias_for_steps(self, stmt: ast.stmt, step_stored: set, step_stmts: set) -> bool:
        """``p2 = p``: another name for a value an attention step stored, read only by later
        steps (tardis's pair-bias attention: ``attn_probs = attn_weights`` then ``bmm(attn_probs,
        v)``).  The fused path, which does not compute the value, drops it as it drops a layout
        copy.  An alias read anywhere else, or assigned again, stays a decline: molgpt's
        ``attn_save = att``, returned to callers (_value_use says where it is read)."""
        if not (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name)
                and isinstance(stmt.value, ast.Name) and stmt.value.id in step_stored):
            return False
        func = self._function(stmt)
        if func is None:
            return False
        alias, target = stmt.targets[0].id, stmt.targets[0]
        parents = _parents(func)
        for node in ast_walk(func):
            if not isinstance(node, ast.Name) or node.id != alias or node is target:
                continue
            if not isinstance(node.ctx, ast.Load):
                return False
            holder = parents.get(node)
            while holder is not None and not isinstance(holder, ast.stmt):
                holder = parents.get(holder)
            if holder is None or span_of(holder) not in step_stmts:
                return False
        return True

    def _check_changed_between(self, region: list[ast.stmt], step_stmts: set, step_stored: set) -> None:
        """The fused call runs where the context product was, after the region's kept statements,
        and reads q, k, v, the mask and the scale there; the steps it replaces read them where
        they were.  Declined where a kept statement between a step and the context product
        changes what that step read (``k.mul_(2.0)``, ``k += 1``, ``k[i] = 0``, ``out=k``, a
        ``self.temp = 1.0`` with a helper step reading ``self.temp``), or reads what a
        step changed in place (a helper's ``a.mul_(scale)`` of the caller's ``q``, read by
        ``r = q.sum()`` before the fused call, which would then change it after)."""
        context = self.roles["c"].stmt
        read: dict[str, int] = {}  # name or dotted name a dropped step read -> its line
        changed: dict[str, int] = {}  # name a dropped step changed in place -> its line
        for stmt in _leaf_statements(region):
            span = span_of(stmt)
            if span == context:
                break
            if span in step_stmts:
                reads, changes = self._step_effects(stmt)
                for name in reads - stored_names(stmt) - step_stored:
                    read.setdefault(name, stmt.lineno)
                for name in changes - step_stored:
                    changed.setdefault(name, stmt.lineno)
                continue
            hit = sorted(_written(stmt) & set(read))
            if hit:
                raise Skip(f"`{hit[0]}`, read by the attention at line {read[hit[0]]}, is changed at line "
                           f"{stmt.lineno}, before the fused call would read it")
            self._check_may_change(stmt, read, step_stored)
            hit = sorted(read_names(stmt) & set(changed))
            if hit:
                raise Skip(f"`{hit[0]}`, changed in place by the attention at line {changed[hit[0]]}, is read at "
                           f"line {stmt.lineno}, before the fused call would change it")

    def _check_may_change(self, stmt: ast.stmt, read: dict, step_stored: set) -> None:
        """Declines where a kept statement between the steps may change in place, directly or
        through another name holding the same storage, a tensor a dropped step read (review56):
        ``kk = k; kk.mul_(2.0)``, ``k0 = k[0]; k0.zero_()``, ``k.data.mul_(2.0)``,
        ``F.relu(k, inplace=True)``, a module attribute built with ``inplace=True`` called on
        it, a function or method of this file that may change an argument in place handed it
        (``scale_(k)``), ``self.cache = k; self.cache[0] = 0``, ``nn.init.zeros_(k)``.
        Conservative: a name bound from such a tensor by a plain copy, an index, a view or an
        attribute chain (anywhere in the function, in either direction) counts as holding it."""
        tree = self.index.tree
        cached = getattr(self.planner, "_in_place_cache", None)
        if cached is None or cached.tree is not tree:
            cached = self.planner._in_place_cache = _InPlace(tree)
        targets = cached.targets(stmt)
        if not targets:
            return  # (the common case: nothing between may change a tensor in place)
        tracked = cached.held(set(read) - step_stored - _MODULE_ROOTS, self._function(stmt))
        for name, how in targets:
            if name in tracked:
                source = tracked[name]
                held = f"`{name}`," if name == source else f"`{name}`, which may hold `{source}`,"
                raise Skip(f"{held} read by the attention at line {read[source]}, may be changed in place "
                           f"at line {stmt.lineno} ({how}), before the fused call would read it")

    def _step_effects(self, stmt: ast.stmt) -> tuple[set[str], set[str]]:
        """The names a step statement reads and those it changes in place, with those of the
        helper it calls (the helper's ``self.x`` reads and in-place changes of its parameters,
        as the caller's arguments)."""
        reads = set(read_names(stmt))
        changes = _written(stmt)
        call = stmt.value if isinstance(stmt, (ast.Assign, ast.AnnAssign, ast.Expr, ast.Return)) else None
        for helper in self.helper_defs if isinstance(call, ast.Call) else ():
            func = call.func
            called = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else None
            if called != helper.name:
                continue
            params = [a.arg for a in (*helper.args.posonlyargs, *helper.args.args)]
            if isinstance(func, ast.Attribute) and params:
                params = params[1:]  # (a method: its instance)
            handed = {p: a.id for p, a in zip(params, call.args) if isinstance(a, ast.Name)}
            handed.update({k.arg: k.value.id for k in call.keywords if k.arg and isinstance(k.value, ast.Name)})
            for inner in helper.body:
                reads |= {n for n in read_names(inner) if n.startswith("self.")}
                written = _written(inner)
                changes |= {handed[p] for p in written if p in handed}
                changes |= {n for n in written if n.startswith("self.")}
        return reads, changes

    def _function(self, stmt: ast.stmt):
        info = self.index.stmt(span_of(stmt))
        while info is not None and not isinstance(info.owner, (ast.FunctionDef, ast.AsyncFunctionDef)):
            info = self.index.stmt(span_of(info.owner)) if isinstance(info.owner, ast.stmt) else None
        return info.owner if info is not None else None


_SAME_DTYPE = frozenset({"transpose", "permute", "contiguous", "unsqueeze", "squeeze", "reshape", "view", "flatten",
                         "movedim", "swapaxes", "expand"})


def _dtype_held(text: str, node: ast.expr) -> str:
    """The atom whose dtype ``node`` (``text``) has: ``v`` of ``v.transpose(-2, -1)``."""
    peeled = node
    while isinstance(peeled, ast.Call) and isinstance(peeled.func, ast.Attribute) and peeled.func.attr in _SAME_DTYPE:
        peeled = peeled.func.value
    return _atom(text, node) if peeled is node else _atom(ast.unparse(peeled), peeled)


def _float32_upcast(node: ast.expr, names) -> bool:
    """``x.float()``, ``x.to(torch.float32)`` or ``x.type(torch.float32)``: a float32 tensor
    (also moved or reshaped after it: ``.transpose(-2, -1)``, which keeps the dtype)."""
    while isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in _SAME_DTYPE:
        node = node.func.value
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
        return False
    if node.func.attr == "float":
        return not node.args and not node.keywords
    return node.func.attr in ("to", "type") and len(node.args) == 1 and not node.keywords \
        and names.resolve(node.args[0]) == "torch.float32"


def _returns_an_argument(func, count: int) -> bool:
    """Does ``func`` (a module-level function, or None) return, on every path, one of the
    parameters its ``count`` positional arguments bind, as it is (``return v if exists(v) else d``,
    ``if v is None: return d`` / ``return v``), doing nothing else but test them?  Then its call
    is one of those arguments."""
    if not isinstance(func, ast.FunctionDef) or func.decorator_list or func.args.vararg or func.args.kwarg \
            or func.args.posonlyargs or len(func.args.args) != count or len(func.body) > 4:
        return False
    params = {a.arg for a in func.args.args}

    def chosen(expr) -> bool:
        if isinstance(expr, ast.Name):
            return expr.id in params
        return isinstance(expr, ast.IfExp) and chosen(expr.body) and chosen(expr.orelse)

    def block(body: list, tail: bool) -> bool:
        for index, stmt in enumerate(body):
            last = index == len(body) - 1
            if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant) and isinstance(stmt.value.value, str):
                continue  # (a docstring)
            if isinstance(stmt, ast.Return):
                return stmt.value is not None and chosen(stmt.value)
            if isinstance(stmt, ast.If) and not any(isinstance(n, (ast.NamedExpr, ast.Await)) for n in ast_walk(stmt.test)):
                if not block(stmt.body, False):
                    return False
                if stmt.orelse and not block(stmt.orelse, last and tail):
                    return False
                continue
            return False
        return not tail  # (falling off the end returns None)

    return block(func.body, True)


def _contradiction(terms: list[str]) -> None:
    """Raise :class:`Skip` when the guard holds a term and its negation (``not x`` beside
    ``x``): it always holds, so the fused path would never run (a read of the attention's
    values in the else branch of an if whose test is the complement of the branch the fused
    path takes, say)."""
    if not any("not " in t for t in terms):
        return
    try:
        parsed = [(term, ast.parse(term, mode="eval").body) for term in terms]
    except SyntaxError:
        return
    # (an if / elif chain's term is an `or` of its tests: each counts as a term of its own)
    parsed = [(ast.unparse(value), value) for _, node in parsed
              for value in (node.values if isinstance(node, ast.BoolOp) and isinstance(node.op, ast.Or) else [node])]
    dumps = {ast.dump(node) for _, node in parsed}
    for term, node in parsed:
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not) and ast.dump(node.operand) in dumps:
            raise Skip(f"the guard would always hold (`{term}` beside `{ast.unparse(node.operand)}`): the fused "
                       "path would never run")


def _else_test(node: ast.AST, parents: dict, func: ast.AST) -> ast.expr | None:
    """The test of the innermost ``if`` (not an ``elif``: the else of a plain if/else) whose
    ``else`` branch holds ``node``, with no loop, ``with``, ``try`` or nested function between
    them; None otherwise."""
    child, parent = node, parents.get(node)
    while parent is not None and parent is not func:
        if isinstance(parent, (ast.For, ast.AsyncFor, ast.While, ast.With, ast.AsyncWith, ast.Try,
                               ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
            return None
        if isinstance(parent, ast.If):
            if isinstance(child, ast.stmt) and any(s is child for s in parent.orelse):
                if len(parent.orelse) == 1 and isinstance(parent.orelse[0], ast.If):
                    return None  # (an elif)
                return parent.test
            return None
        child, parent = parent, parents.get(parent)
    return None


def _changed_before(term: ast.expr, start: ast.stmt, func: ast.AST) -> bool:
    """Does ``term`` read a name that ``func`` assigns between ``start`` (the attention's first
    statement) and ``term``?  Then the guard, written where the attention begins, would test
    another value than ``term`` does."""
    changed = {
        n.id for n in ast_walk(func)
        if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)
        and (start.lineno, 0) <= (n.lineno, n.col_offset) < (term.lineno, term.col_offset)
    }
    return bool(read_names(term) & changed)


def _early_return_test(node: ast.AST, parents: dict, func: ast.AST, end: tuple, usable=None) -> ast.expr | None:
    """native-sparse-attention's ``if not return_sim: return attn_out`` after the attention, then
    ``return attn_out, sim``: the test of the nearest ``if`` (no ``else``) whose body ends in a
    ``return``, placed after the region (``end``) and before ``node`` in a block holding it, with
    no loop, ``with``, ``try`` or nested function between them: ``node`` is reached only where
    that test fails.  None otherwise.  An ``if`` whose body ends in ``raise`` is passed over: an
    error exit (transformers' ``if attn_output.size() != (...): raise ValueError``) stops the
    original and the fused path alike, so it chooses nothing the guard could send to one of them.
    A test ``usable`` rejects (one reading a value assigned after the attention began:
    fast-weight-attention's ``if tokens.shape[-2] == 0: return`` after ``tokens`` is sliced) is
    passed over for an earlier one: ``node`` is reached only where every such test fails, so
    any one of them is a condition the reads need (its ``if not return_next_memories: return``)."""
    child, parent = node, parents.get(node)
    while parent is not None:
        if isinstance(parent, (ast.For, ast.AsyncFor, ast.While, ast.With, ast.AsyncWith, ast.Try,
                               ast.Lambda, ast.ClassDef)) or (
                isinstance(parent, (ast.FunctionDef, ast.AsyncFunctionDef)) and parent is not func):
            return None
        if isinstance(child, ast.stmt):
            block = next((b for b in (getattr(parent, "body", None), getattr(parent, "orelse", None))
                          if isinstance(b, list) and any(s is child for s in b)), None)
            if block is not None:
                at = next(i for i, s in enumerate(block) if s is child)
                for sibling in reversed(block[:at]):
                    if (sibling.lineno, sibling.col_offset) <= end:
                        break
                    if isinstance(sibling, ast.If) and not sibling.orelse and sibling.body \
                            and isinstance(sibling.body[-1], ast.Return) and (usable is None or usable(sibling.test)):
                        return sibling.test
        if parent is func:
            return None
        child, parent = parent, parents.get(parent)
    return None


def _added_param(stmt: ast.stmt, scores: str) -> str | None:
    """The parameter ``stmt`` adds to ``scores`` (``x += p`` or ``x = x + p``), else None."""
    if isinstance(stmt, ast.AugAssign) and isinstance(stmt.op, ast.Add) and isinstance(stmt.target, ast.Name) \
            and stmt.target.id == scores and isinstance(stmt.value, ast.Name) and stmt.value.id != scores:
        return stmt.value.id
    if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name) \
            and stmt.targets[0].id == scores and isinstance(stmt.value, ast.BinOp) and isinstance(stmt.value.op, ast.Add) \
            and isinstance(stmt.value.left, ast.Name) and stmt.value.left.id == scores \
            and isinstance(stmt.value.right, ast.Name) and stmt.value.right.id != scores:
        return stmt.value.right.id
    return None


_MODULE_ROOTS = frozenset({"self", "cls", "torch", "F", "nn", "math", "np", "numpy", "einops", "functional"})
# attributes and methods whose result may share storage with the tensor they are taken of
_VIEW_ATTRS = frozenset({"data", "T", "mT", "H", "mH", "real", "imag"})
# a tensor's in-place operator methods (``k.__imul__(2.0)``) and the ``operator`` module's
# in-place functions (``operator.imul(k, 2.0)``): each changes its first operand
_IN_PLACE_DUNDERS = frozenset({f"__i{op}__" for op in (
    "add", "sub", "mul", "matmul", "truediv", "floordiv", "div", "mod", "pow", "lshift", "rshift",
    "and", "xor", "or")} | {"__setitem__", "__setattr__", "__delitem__", "__setstate__"})
_OPERATOR_IN_PLACE = frozenset({"iadd", "isub", "imul", "imatmul", "itruediv", "ifloordiv", "imod", "ipow",
                                "ilshift", "irshift", "iand", "ixor", "ior", "iconcat", "setitem", "delitem"}
                               | _IN_PLACE_DUNDERS)
_VIEW_CALLS = frozenset({
    "view", "view_as", "reshape", "reshape_as", "transpose", "permute", "unsqueeze", "squeeze", "expand", "expand_as",
    "narrow", "select", "as_strided", "unflatten", "flatten", "movedim", "moveaxis", "swapaxes", "swapdims", "t",
    "detach", "contiguous", "to", "type", "type_as", "float", "half", "double", "bfloat16", "cuda", "cpu", "chunk",
    "split", "unbind", "tensor_split", "split_with_sizes", "hsplit", "vsplit", "dsplit", "unfold", "diagonal",
    "view_as_real", "view_as_complex", "rearrange", "align_to", "rename", "refine_names", "__getitem__", "get",
    "pop", "values", "items",
    # numpy's view of a CPU tensor and the tensors made over an array or another tensor's
    # memory share its storage (``k.numpy().__imul__(2.0)`` changes ``k``: review61)
    "numpy", "__array__", "asarray", "asanyarray", "from_numpy", "as_tensor", "from_dlpack",
    # a DLPack capsule shares the tensor's memory (review62: ``from_dlpack(to_dlpack(k)).mul_(2)``)
    "to_dlpack", "__dlpack__"})


def _maybe_true(value: ast.expr) -> bool:
    """An ``inplace=`` value that may be true: anything but a literal false."""
    return not (isinstance(value, ast.Constant) and not value.value)


def _bound_names(target: ast.AST) -> list[str]:
    """The names and dotted attributes an assignment target binds (not an item store, which
    copies values into a tensor rather than naming one)."""
    if isinstance(target, ast.Name):
        return [target.id]
    if isinstance(target, ast.Attribute):
        name = dotted_name(target)
        return [name] if name else []
    if isinstance(target, (ast.Tuple, ast.List)):
        return [n for e in target.elts for n in _bound_names(e)]
    if isinstance(target, ast.Starred):
        return _bound_names(target.value)
    return []


def _namespace(expr: ast.expr) -> bool:
    """Is ``expr`` an object's attribute namespace, ``x.__dict__`` or ``vars(x)``?"""
    return isinstance(expr, ast.Attribute) and expr.attr == "__dict__" or (
        isinstance(expr, ast.Call) and isinstance(expr.func, ast.Name) and expr.func.id == "vars"
        and len(expr.args) == 1)


def _held_function(value: ast.expr) -> tuple[ast.expr, list, list] | None:
    """The function ``value`` holds, when it is one taken by reference (an attribute such as
    ``torch.Tensor.mul_`` or ``k.mul_``, ``getattr(x, "name")``) or a ``partial`` of one:
    (the function, the partial's arguments, its keywords); None otherwise."""
    args: list = []
    keywords: list = []
    if isinstance(value, ast.Call) and value.args and (
            isinstance(value.func, ast.Name) and value.func.id == "partial"
            or isinstance(value.func, ast.Attribute) and value.func.attr == "partial"):
        value, args, keywords = value.args[0], value.args[1:], value.keywords
    if isinstance(value, ast.Call) and isinstance(value.func, ast.Name) and value.func.id == "getattr" \
            and len(value.args) == 2 and isinstance(value.args[1], ast.Constant) and isinstance(value.args[1].value, str):
        value = ast.Attribute(value=value.args[0], attr=value.args[1].value, ctx=ast.Load())
    if isinstance(value, ast.Attribute) or (args or keywords) and isinstance(value, ast.Name):
        return value, args, keywords
    return None


def _in_place_name(name: str) -> bool:
    return (name.endswith("_") and not name.startswith("_")) or name in _IN_PLACE_DUNDERS


def _loose_in_place(tree: ast.AST) -> bool:
    """Does ``tree`` take an in-place function by reference (an attribute ``x.mul_`` that is not
    the function of the call around it: ``torch.Tensor.mul_.__call__``, ``map(torch.Tensor.mul_,
    ...)``) or name one by a string (``operator.methodcaller("mul_")``)?"""
    called = {id(n.func) for n in ast_walk(tree) if isinstance(n, ast.Call)}
    for node in ast_walk(tree):
        if isinstance(node, ast.Attribute) and _in_place_name(node.attr) and id(node) not in called \
                and isinstance(node.ctx, ast.Load):
            return True
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and _in_place_name(node.value) \
                and node.value.isidentifier():
            return True
    return False


class _InPlace:
    """What a file's statements may change in place, for the ADP010 fixer's check of the kept
    statements between the replaced steps (review56): the file's functions and methods (and
    which of them may change an argument in place), its names and attributes bound to a call
    built with ``inplace=True``, and its imported modules (``F.relu_(k)`` changes ``k``, not
    ``F``)."""

    def __init__(self, tree: ast.AST):
        self.tree = tree
        self.funcs: dict[str, list] = {}
        self.in_place: set[str] = set()
        self.modules: set[str] = set(_MODULE_ROOTS)
        self.mutating: dict[str, set] = {}
        self.lambdas: dict[str, ast.Lambda] = {}  # name bound to a lambda -> the lambda (any one)
        # a name or attribute bound to a function taken by reference (``f = torch.Tensor.mul_``,
        # ``f = k.mul_``, ``f = getattr(torch.Tensor, "mul_")``) or to a ``functools.partial``
        # of one -> (the function, the partial's arguments, its keywords): each binding (review61)
        self.aliases: dict[str, list[tuple[ast.expr, list, list]]] = {}
        self.holders: set[str] = set()  # names bound to a value holding an in-place function
        for node in ast_walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                self.funcs.setdefault(node.name, []).append(node)
            elif isinstance(node, ast.Assign) and isinstance(node.value, ast.Lambda):
                for target in node.targets:
                    if isinstance(target, ast.Name):
                        self.lambdas[target.id] = node.value
            elif isinstance(node, ast.Assign) and (held := _held_function(node.value)) is not None:
                for target in node.targets:
                    for name in _bound_names(target):
                        self.aliases.setdefault(name, []).append(held)
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                self.modules.update((a.asname or a.name).split(".")[0] for a in node.names)
            if isinstance(node, (ast.Assign, ast.NamedExpr)) and _loose_in_place(node.value):
                # ``ops = {"m": torch.Tensor.mul_}``, ``(f := torch.Tensor.mul_)``: a name holding
                # an in-place function by reference somewhere in its value (review62)
                for target in (node.targets if isinstance(node, ast.Assign) else [node.target]):
                    self.holders.update(_bound_names(target))
        for node in ast_walk(tree):
            # ``g = torch.Tensor``: a name for a module's attribute (``g.mul_(k, 2.0)`` is the
            # function form, changing its first argument; review62)
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Attribute) \
                    and (dotted_name(node.value) or "").split(".")[0] in self.modules - {"self", "cls"}:
                self.modules.update(t.id for t in node.targets if isinstance(t, ast.Name))
            elif isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None \
                    and any(isinstance(k, ast.keyword) and k.arg == "inplace" and _maybe_true(k.value)
                            for k in ast_walk(node.value)):
                for target in (node.targets if isinstance(node, ast.Assign) else [node.target]):
                    self.in_place.update(_bound_names(target))

    def _function_form(self, func: ast.expr) -> bool:
        """Is ``func`` a function taking the tensor first (``torch.transpose``, ``F.relu_``,
        ``rearrange``), rather than a method of the tensor it is taken of?"""
        if isinstance(func, ast.Name):
            return True
        root = func.value if isinstance(func, ast.Attribute) else None
        if isinstance(root, ast.Name) and root.id in ("self", "cls"):
            return True  # (``self.scale_(k)``; but ``self.cache.mul_(2)`` is a method of ``self.cache``)
        while isinstance(root, ast.Attribute):
            root = root.value
        return isinstance(root, ast.Name) and root.id in self.modules - {"self", "cls"}

    def roots(self, expr: ast.AST | None) -> set[str]:
        """Names and dotted names whose tensor ``expr``'s value may share storage with: ``k`` of
        ``k``, ``k[0]``, ``k.data``, ``k.transpose(1, 2)``, ``torch.chunk(k, 2)``, ``(k, v)``,
        ``a if c else k``; none of a new tensor (``k * 2``, ``k.clone()``, ``torch.matmul(q, k)``)."""
        if expr is None:
            return set()
        if isinstance(expr, ast.Name):
            return {expr.id}
        if isinstance(expr, ast.Attribute):
            name = dotted_name(expr)
            out = {name} if name else set()
            if expr.attr in _VIEW_ATTRS:
                out |= self.roots(expr.value)
            return out
        if isinstance(expr, (ast.Subscript, ast.Starred, ast.NamedExpr)):
            return self.roots(expr.value)
        if isinstance(expr, (ast.Tuple, ast.List, ast.Set)):
            return set().union(*(self.roots(e) for e in expr.elts)) if expr.elts else set()
        if isinstance(expr, ast.Dict):
            return set().union(*(self.roots(e) for e in expr.values)) if expr.values else set()
        if isinstance(expr, ast.IfExp):
            return self.roots(expr.body) | self.roots(expr.orelse)
        if isinstance(expr, ast.BoolOp):
            return set().union(*(self.roots(e) for e in expr.values))
        if isinstance(expr, ast.Call):
            func = expr.func
            called = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else None
            if called is not None and (called in _VIEW_CALLS or (called.endswith("_") and not called.startswith("_"))):
                # a view or an in-place method (which returns its tensor): of the tensor it is
                # taken of, or of the first argument of a function (``torch.transpose(k, 1, 2)``)
                if self._function_form(func):
                    return self.roots(expr.args[0]) if expr.args else set()
                return self.roots(func.value)
        return set()

    def targets(self, stmt: ast.stmt, depth: int = 0) -> list[tuple[str, str]]:
        """(name, how) for each name whose tensor ``stmt`` may change in place: an augmented
        assignment, an item store, ``x.data = ...``, a method ending ``_`` (its tensor, or the
        first argument of a function: ``F.relu_(x)``, ``nn.init.zeros_(x)``), ``out=``, a call
        with ``inplace=`` not literally false, a call of a name or attribute bound to a module
        built with ``inplace=True``, and a call of a function or method of this file that may
        change an argument in place (every tensor handed to it)."""
        out: list[tuple[str, str]] = []

        def add(expr, how):
            out.extend((name, how) for name in sorted(self.roots(expr)))

        if _loose_in_place(stmt) or any(isinstance(n, ast.Name) and n.id in self.holders for n in ast_walk(stmt)):
            # an in-place function taken by reference or named by a string (``map(torch.Tensor.mul_,
            # [k], [2.0])``, ``torch.Tensor.mul_.__call__(k, 2.0)``, ``methodcaller("mul_", 2.0)(k)``,
            # a dict of functions): every tensor the statement hands to a call may be changed
            for node in ast_walk(stmt):
                if isinstance(node, ast.Call):
                    for arg in [*node.args, *(k.value for k in node.keywords)]:
                        add(arg, "an in-place function taken by reference")
        for node in ast_walk(stmt):
            if isinstance(node, ast.AugAssign):
                add(node.target, "an augmented assignment")
            elif isinstance(node, ast.Assign) and any(isinstance(t, ast.Subscript) and _namespace(t.value)
                                                      for t in node.targets):
                # ``self.__dict__["cache"] = k``, ``vars(self)["cache"] = k``: as ``setattr``, the
                # value is named by an attribute a later statement may change in place
                add(node.value, "a store into an instance's `__dict__`")
            elif isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Store):
                add(node.value, "an item store")
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store) and node.attr in _VIEW_ATTRS:
                add(node.value, f"`.{node.attr}` set")
            elif isinstance(node, ast.Call):
                func = node.func
                called = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) \
                    else None
                handed = [*node.args, *(k.value for k in node.keywords)]
                local = called in self.funcs and (isinstance(func, ast.Name) or (
                    isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name)
                    and func.value.id in ("self", "cls")))
                alias = dotted_name(func) if isinstance(func, (ast.Name, ast.Attribute)) else None
                if alias in self.aliases and depth <= 4:
                    # ``f = torch.Tensor.mul_; f(k, 2.0)``, ``g = partial(torch.Tensor.mul_, k); g(2.0)``:
                    # read as the call of the function it holds, with the partial's arguments first
                    for held, args, keywords in self.aliases[alias]:
                        call = ast.Call(func=held, args=[*args, *node.args], keywords=[*keywords, *node.keywords])
                        out.extend((name, f"`{alias}`, which holds {how}")
                                   for name, how in self.targets(ast.Expr(value=call), depth + 1))
                if called == "swap_tensors":
                    for arg in node.args:  # ``torch.utils.swap_tensors(k, k * 2)`` swaps their contents
                        add(arg, "`swap_tensors`")
                if called == "__setattr__" and len(node.args) >= 3:
                    # ``object.__setattr__(self, "cache", k)``: as ``setattr``
                    for arg in node.args[:1] + node.args[2:3]:
                        add(arg, "`__setattr__`")
                elif called in ("update", "setdefault", "__setitem__") and isinstance(func, ast.Attribute) \
                        and _namespace(func.value):
                    for arg in handed:  # ``self.__dict__.update(cache=k)``: ``k`` named by an attribute
                        add(arg, "a store into an instance's `__dict__`")
                elif called in _IN_PLACE_DUNDERS:  # ``k.__imul__(2.0)``, ``torch.Tensor.__imul__(k, 2.0)``
                    if not self._function_form(func):
                        add(func.value, f"`{called}`")
                    elif node.args:
                        add(node.args[0], f"`{called}`")
                elif called in _OPERATOR_IN_PLACE and not local and self._function_form(func):
                    if node.args:  # ``operator.imul(k, 2.0)``
                        add(node.args[0], f"`{called}`")
                elif called == "setattr" and isinstance(func, ast.Name):
                    # ``setattr(k, "data", ...)`` changes ``k``; ``setattr(self, "cache", k)``
                    # names ``k`` by an attribute a later statement may change in place
                    for arg in node.args[:1] + node.args[2:3]:
                        add(arg, "`setattr`")
                elif called == "getattr" and isinstance(func, ast.Name) and len(node.args) >= 2 and not (
                        isinstance(node.args[1], ast.Constant) and isinstance(node.args[1].value, str)
                        and not (node.args[1].value.endswith("_") and not node.args[1].value.startswith("_"))
                        and node.args[1].value not in _IN_PLACE_DUNDERS):
                    add(node.args[0], "a `getattr` of an in-place or computed name")
                elif isinstance(func, ast.Name) and func.id in self.lambdas and handed \
                        and self._lambda_mutates(self.lambdas[func.id], depth):
                    for arg in handed:
                        add(arg, f"`{func.id}`, a lambda that may change its argument in place")
                elif any(isinstance(a, ast.Lambda) and self._lambda_mutates(a, depth) for a in handed):
                    for arg in handed:  # ``map(lambda t: t.mul_(2.0), [k])``
                        add(arg, "a lambda that may change its argument in place")
                if called and called.endswith("_") and not called.startswith("_") and not local:
                    if self._function_form(func):
                        if node.args:
                            add(node.args[0], f"`{called}`")
                    else:
                        add(func.value, f"`{called}`")
                for k in node.keywords:
                    if k.arg == "out":
                        add(k.value, "`out=`")
                    elif k.arg == "inplace" and _maybe_true(k.value):
                        for arg in node.args:
                            add(arg, "`inplace=`")
                base = func
                while isinstance(base, ast.Subscript):
                    base = base.value
                callee = dotted_name(base) if isinstance(base, (ast.Name, ast.Attribute)) else None
                if callee and callee in self.in_place:
                    for arg in handed:
                        add(arg, f"`{callee}`, built with `inplace=True`")
                elif called in self.funcs and handed and (isinstance(func, ast.Name) or (
                        isinstance(func, ast.Attribute) and (
                            isinstance(func.value, ast.Name) and func.value.id in ("self", "cls")
                            or isinstance(func.value, ast.Call) and isinstance(func.value.func, ast.Name)
                            and func.value.func.id == "super"))):
                    for arg in self._changed_arguments(called, node, isinstance(func, ast.Attribute), depth):
                        add(arg, f"`{called}` of this file, which may change that argument in place")
        return out

    def _lambda_mutates(self, lam: ast.Lambda, depth: int) -> bool:
        """May ``lam`` change one of its parameters in place (``lambda t: t.mul_(2.0)``)?
        Undecided (calls nested too deep) counts as yes."""
        if depth > 4:
            return True
        params = {a.arg for a in (*lam.args.posonlyargs, *lam.args.args, *lam.args.kwonlyargs)}
        params |= {a.arg for a in (lam.args.vararg, lam.args.kwarg) if a is not None}
        return any(name in params for name, _ in self.targets(ast.Expr(value=lam.body), depth + 1))

    def _changed_arguments(self, name: str, call: ast.Call, method: bool, depth: int) -> list:
        """The arguments of ``call`` (of this file's function or method ``name``) bound to a
        parameter that one of the definitions of ``name`` may change in place: every argument
        where that cannot be told (a changed ``*args`` or ``**kwargs``, a starred argument)."""
        changed = self._mutates(name, depth)
        if not changed:
            return []
        handed = [*call.args, *(k.value for k in call.keywords)]
        if None in changed or any(isinstance(a, ast.Starred) for a in call.args) \
                or any(k.arg is None for k in call.keywords):
            return handed
        out = []
        for func in self.funcs.get(name, ()):
            positional = [a.arg for a in (*func.args.posonlyargs, *func.args.args)]
            if method and positional:
                positional = positional[1:]  # (its instance)
            for index, arg in enumerate(call.args):
                param = positional[index] if index < len(positional) else None
                if param is None or param in changed:
                    out.append(arg)  # (past the named parameters: into *args, or a wrong call)
            for k in call.keywords:
                if k.arg in changed or k.arg not in {*positional, *(a.arg for a in func.args.kwonlyargs)}:
                    out.append(k.value)
        return out

    def _mutates(self, name: str, depth: int) -> set:
        """The parameters that a function or method of this file called ``name`` (any of them,
        where several share it) may change in place (None among them: a ``*args`` or
        ``**kwargs``, or undecided -- a cycle, or calls nested too deep)."""
        if name in self.mutating:
            return self.mutating[name]
        if depth > 4:
            return {None}
        self.mutating[name] = {None}  # (while deciding: a call back to it counts as a change)
        found: set = set()
        for func in self.funcs.get(name, ()):
            params = {a.arg for a in (*func.args.posonlyargs, *func.args.args, *func.args.kwonlyargs)}
            packed = {a.arg for a in (func.args.vararg, func.args.kwarg) if a is not None}
            held = self.held((params | packed) - {"self", "cls"}, func, backward=False)
            for stmt in func.body:
                for changed, _ in self.targets(stmt, depth + 1):
                    if changed in held:
                        found.add(None if held[changed] in packed else held[changed])
        self.mutating[name] = found
        return found

    def held(self, names: set, func, backward: bool = True) -> dict[str, str]:
        """``names`` and every name that may hold the same storage as one of them: bound from it
        by a copy, an index, a view or an attribute chain (``kk = k``, ``k0 = k[0]``, ``kt =
        k.transpose(1, 2)``, ``self.cache = k``), and (``backward``) the names it was itself
        bound from that way (a view of ``qkv`` changes with it), read flow-insensitively over
        ``func`` -> the name of ``names`` each stands for."""
        edges: list[tuple[str, set[str]]] = []  # (bound name, the names its value may share storage with)
        for node in ast_walk(func) if func is not None else ():
            if isinstance(node, (ast.Assign, ast.AnnAssign, ast.NamedExpr)) and node.value is not None:
                roots = self.roots(node.value)
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            elif isinstance(node, (ast.For, ast.AsyncFor, ast.comprehension)):
                roots, targets = self.roots(node.iter), [node.target]
            elif isinstance(node, ast.withitem) and node.optional_vars is not None:
                roots, targets = self.roots(node.context_expr), [node.optional_vars]
            else:
                continue
            if roots:
                edges.extend((bound, roots) for target in targets for bound in _bound_names(target))
        held = {name: name for name in names}
        changed = True
        while changed:  # forward: names bound from a held one
            changed = False
            for bound, roots in edges:
                if bound not in held:
                    source = next((held[r] for r in sorted(roots) if r in held), None)
                    if source is not None:
                        held[bound] = source
                        changed = True
        frontier = set(names) if backward else set()
        while frontier:  # backward: the names a read one was bound from
            step = set()
            for bound, roots in edges:
                if bound in frontier:
                    for r in roots - _MODULE_ROOTS:
                        if r not in held:
                            held[r] = held[bound]
                            step.add(r)
            frontier = step
        return held


_VIEW_METHODS = frozenset({"view", "view_as", "reshape", "transpose", "permute", "narrow", "select", "expand",
                           "expand_as", "squeeze", "unsqueeze", "flatten", "unflatten", "t", "diagonal", "unfold",
                           "as_strided", "detach", "contiguous", "movedim", "swapaxes", "split", "chunk", "unbind"})


def _is_self_attr(expr: ast.expr, attr: str) -> bool:
    return isinstance(expr, ast.Attribute) and expr.attr == attr and isinstance(expr.value, ast.Name) \
        and expr.value.id == "self"


def _roots_at_attribute(expr: ast.expr, attr: str) -> bool:
    """Is ``expr`` ``self.<attr>`` or a part or view of it (subscripts, ``.data``/``.T``/``.mT``,
    view methods) -- a place whose change in place changes that tensor?"""
    for _ in range(16):
        if _is_self_attr(expr, attr):
            return True
        if isinstance(expr, ast.Subscript):
            expr = expr.value
        elif isinstance(expr, ast.Attribute) and expr.attr in ("data", "T", "mT", "H", "mH", "real", "imag"):
            expr = expr.value
        elif isinstance(expr, ast.Call) and isinstance(expr.func, ast.Attribute) and expr.func.attr in _VIEW_METHODS:
            expr = expr.func.value
        else:
            return False
    return False


def _in_place_step(stmt: ast.stmt) -> str | None:
    """The name ``x`` of a step written as an in-place method statement, ``x.mul_(s)`` (jukebox's
    ``w.mul_(scale * scale)``), or None.  Where ``x`` holds a tensor an earlier step of the same
    block made (``w = torch.matmul(q, k)``), and nothing between them read it (the branch's own
    check), no other name, argument, attribute or view holds that tensor: changing it in place
    is the assignment ``x = x * s``, which the fused path leaves out with the other steps."""
    if isinstance(stmt, ast.Expr) and isinstance(call := stmt.value, ast.Call) \
            and isinstance(call.func, ast.Attribute) and call.func.attr.endswith("_") \
            and not call.func.attr.startswith("_") and isinstance(call.func.value, ast.Name):
        return call.func.value.id
    return None


def _changed_in_place(func, names: set, end: tuple) -> ast.AST | None:
    """The first statement after ``end`` that changes a tensor one of ``names`` holds in place
    (``x += y``, ``x[i] += y``, ``x[i] = y``, ``x.add_(y)``); None when none does."""
    if not names:
        return None

    def held(expr) -> bool:
        while isinstance(expr, ast.Subscript):
            expr = expr.value
        return isinstance(expr, ast.Name) and expr.id in names

    for node in ast_walk(func):
        if getattr(node, "lineno", 0) < end[0] or (node.lineno, node.col_offset) < end:
            continue
        if isinstance(node, ast.AugAssign) and held(node.target):
            return node
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Subscript) and held(t) for t in node.targets):
            return node
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr.endswith("_")
                and not node.func.attr.startswith("_") and held(node.func.value)):
            return node
    return None


_RELAYOUTS = frozenset({"view", "reshape", "transpose", "permute", "flatten", "unflatten", "contiguous"})


def _relayout_of(value: ast.expr, name: str) -> bool:
    """Is ``value`` the tensor ``name`` holds with its axes moved or regrouped: ``name.view(...)``
    (reshape, transpose, permute, flatten, unflatten, contiguous) or einops' ``rearrange(name,
    "<pattern>", g=...)`` -- the same values, laid out another way (bitnet's grouped branch
    ``query = rearrange(query, "b (h g) n d -> b g h n d", g=groups)``)."""
    if not isinstance(value, ast.Call):
        return False
    func = value.func
    if isinstance(func, ast.Attribute) and func.attr in _RELAYOUTS:
        return isinstance(func.value, ast.Name) and func.value.id == name
    called = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None
    return called == "rearrange" and len(value.args) == 2 and isinstance(value.args[0], ast.Name) \
        and value.args[0].id == name and isinstance(value.args[1], ast.Constant) and isinstance(value.args[1].value, str) \
        and all(k.arg is not None for k in value.keywords)


def _recast_only(stmts: list) -> set[str]:
    """The names ``stmts`` assign only by recasting them to a dtype (``q = q.float()``, ``q, k
    = q.float(), k.float()``) or laying them out again (``_relayout_of``): the same values in
    another dtype or layout."""
    recast: set[str] = set()
    other: set[str] = set()
    for stmt in stmts:
        for node in ast_walk(stmt):
            if not isinstance(node, ast.stmt) or not stored_names(node) or isinstance(
                    node, (ast.If, ast.With, ast.For, ast.While, ast.Try)):
                continue
            pairs = []
            if isinstance(node, ast.Assign) and len(node.targets) == 1:
                target, value = node.targets[0], node.value
                if isinstance(target, ast.Tuple) and isinstance(value, ast.Tuple) and len(target.elts) == len(value.elts):
                    pairs = list(zip(target.elts, value.elts))
                else:
                    pairs = [(target, value)]
            ok = bool(pairs)
            for target, value in pairs:
                ok = ok and isinstance(target, ast.Name) and isinstance(value, ast.Call) and ((
                    not value.args and not value.keywords and isinstance(value.func, ast.Attribute)
                    and value.func.attr in CASTS and isinstance(value.func.value, ast.Name)
                    and value.func.value.id == target.id) or _relayout_of(value, target.id))
            (recast if ok else other).update(stored_names(node))
    return recast - other


def _stored_attribute(stmt: ast.stmt) -> ast.expr | None:
    """The attribute (or item) a plain assignment stores its value in, if any."""
    if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], (ast.Attribute,
                                                                                                 ast.Subscript)):
        return stmt.targets[0]
    if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, (ast.Attribute, ast.Subscript)):
        return stmt.target
    return None


def _reads_only(expr: ast.expr) -> bool:
    """Names, attributes, constants, subscripts and arithmetic of them, and sizes read off a
    tensor (``k.size(1)``, ``x.dim()``, ``len(x)``): nothing evaluating it changes."""
    for node in ast_walk(expr):
        if isinstance(node, ast.Call):
            func = node.func
            if not ((isinstance(func, ast.Attribute) and func.attr in SIZE_METHODS)
                    or (isinstance(func, ast.Name) and func.id == "len")):
                return False
        elif isinstance(node, (ast.NamedExpr, ast.Lambda, ast.Await, ast.Yield, ast.YieldFrom)):
            return False
    return True


class _Handed:
    """Scores a caller computes and hands to a helper method (:meth:`_Attention._handed_scores`)."""

    def __init__(self, **fields):
        self.caller: ast.FunctionDef = fields["caller"]
        self.helper: ast.FunctionDef = fields["helper"]
        self.call: ast.Call = fields["call"]  # the caller's call of the helper
        self.call_stmt: ast.stmt = fields["call_stmt"]
        self.arg: ast.Name = fields["arg"]  # the scores as the call passes them
        self.param: str = fields["param"]  # the helper's parameter taking them
        self.moved: list[ast.Assign] = fields["moved"]  # the caller's statements computing them
        self.spans: set[Span] = fields["spans"]  # their spans (the scores steps' statements)
        self.handed: list[str] = fields["handed"]  # the caller's names those statements read
        self.entry: int = fields["entry"]  # the helper's statement (in its body) first reading them
        self.flag: str = fields["flag"]  # the helper's new parameter
        self.scores: str = fields["scores"]  # the scores' name in the caller
        self.gaps: list[ast.Assign] = fields.get("gaps", [])  # the caller's statements between those


class _At:
    """A place in the region (a statement's span) that :meth:`_Attention._holder` reads up to."""

    def __init__(self, stmt: Span):
        self.stmt = stmt


def _dtype_target(call: ast.Call) -> ast.expr | None:
    """``x`` of ``p.type_as(x)``, ``p.to(x.dtype)``, ``p.type(x.dtype)``, ``p.to(dtype=x.dtype)``
    (a name or an attribute): the tensor whose dtype the cast converts to; None otherwise."""
    func = call.func
    if not isinstance(func, ast.Attribute):
        return None
    if func.attr == "type_as" and len(call.args) == 1 and not call.keywords:
        target = call.args[0]
    elif func.attr in ("to", "type") and len(call.args) + len(call.keywords) == 1:
        arg = call.args[0] if call.args else call.keywords[0].value
        if call.keywords and call.keywords[0].arg != "dtype" or not (isinstance(arg, ast.Attribute)
                                                                     and arg.attr == "dtype"):
            return None
        target = arg.value
    else:
        return None
    return target if isinstance(target, (ast.Name, ast.Attribute)) else None


def _statements_between(read: ast.Name, parents: dict, func: ast.AST, end: tuple):
    """The statements that start at or after ``end`` (the region's end) and come before
    ``read``'s statement in a block that holds it (its own block, then each enclosing one up to
    ``func``): the statements every way from the region to the read passes."""
    child, parent = read, parents.get(read)
    while parent is not None:
        for field in ("body", "orelse", "finalbody"):
            block = getattr(parent, field, None)
            if not isinstance(block, list) or child not in block:
                continue
            for stmt in block[:block.index(child)]:
                if (stmt.lineno, stmt.col_offset) >= end:
                    yield stmt
        if parent is func:
            return
        child, parent = parent, parents.get(parent)


def _reassigned(read: ast.Name, parents: dict, func: ast.AST, end: tuple) -> bool:
    """Does a statement after the region and before ``read``, in a block that holds the read's
    statement, assign the name outright (``attn_weights: Optional[Tensor] = None``)?  Every
    way to the read then passes it: the read does not see what the region computed."""
    for stmt in _statements_between(read, parents, func, end):
        targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target] if isinstance(
            stmt, ast.AnnAssign) and stmt.value is not None else []
        if any(isinstance(t, ast.Name) and t.id == read.id for t in targets):
            return True
    return False


def _cleared_unless(read: ast.Name, parents: dict, func: ast.AST, end: tuple) -> tuple[ast.expr, str] | None:
    """``if not output_attentions: attn_weights = None`` after the region and before ``read``
    (in a block that holds the read's statement): the name then holds what the region
    computed only when the test is false.  Returns (the test, the guard term that holds
    then: ``output_attentions``, or ``not (test)``); None without such an if."""
    for stmt in _statements_between(read, parents, func, end):
        if not (isinstance(stmt, ast.If) and not stmt.orelse):
            continue
        clears = any(isinstance(inner, ast.Assign) and any(isinstance(t, ast.Name) and t.id == read.id
                                                           for t in inner.targets)
                     and read.id not in _loads(inner) for inner in stmt.body)
        if not clears or not all(isinstance(inner, (ast.Assign, ast.AnnAssign, ast.Pass)) for inner in stmt.body):
            continue
        test = stmt.test
        if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
            return test.operand, _guard_term(ast.unparse(test.operand), test.operand)
        return test, f"not ({ast.unparse(test)})"
    return None


def _parents(tree: ast.AST) -> dict:
    """Each node of ``tree`` (below its root) -> the node holding it."""
    return {child: parent for parent in ast_walk(tree) for child in ast.iter_child_nodes(parent)}


def _metadata_only(func: ast.FunctionDef, param: str) -> bool:
    """Does ``func`` read its parameter ``param`` only as ``param.dtype`` / ``param.device``
    (and never assign it)?"""
    parents = _parents(func)
    uses = [n for n in ast_walk(func) if isinstance(n, ast.Name) and n.id == param]
    return bool(uses) and all(
        isinstance(n.ctx, ast.Load) and isinstance(parents.get(n), ast.Attribute)
        and parents[n].attr in ("dtype", "device") for n in uses)


#: Tensor methods that make a new tensor from their receiver's dtype and device only
_NEW_LIKE = {"new_ones", "new_zeros", "new_empty", "new_full", "new_tensor"}


def _block_add(node) -> bool:
    """Is ``node`` a bias added into a block of the scores by an item store (graph:
    ``_block_added``: an add whose bias is no expression, its span the statement's)?"""
    return node.kind == "op" and len(node.arg_spans) == 2 and node.arg_spans[1] == node.span


def _fill_only(func: ast.FunctionDef, param: str) -> tuple[str | None, str]:
    """Does ``func`` (a fill helper: :meth:`SDPAFixer._inline_fill_helper`) read ``param``
    only for what it is (sizes, device, dtype, ``param.new_ones(...)``), assign it only as
    ``param = param.masked_fill(m, v)``, and return only ``param`` or ``param.masked_fill(m, v)``,
    on every path, with ``v`` -inf or the dtype's extreme (``fill_value``, through a local name
    assigned once)?  The fill kind ("inf", "finite") and "", or None and the reason."""
    if any(isinstance(n, (ast.Yield, ast.YieldFrom, ast.Await, ast.Global, ast.Nonlocal, ast.Lambda,
                          ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and n is not func
           for n in ast_walk(func)):
        return None, "holds a nested function, a yield or a global"
    if not func.body or not isinstance(func.body[-1], ast.Return):
        return None, "does not end in a return"
    parents = _parents(func)
    assigned: dict[str, list] = {}
    for n in ast_walk(func):
        if isinstance(n, (ast.Assign, ast.AnnAssign, ast.AugAssign, ast.NamedExpr, ast.For, ast.With)):
            for t in ast_walk(n.target if isinstance(n, (ast.AnnAssign, ast.AugAssign, ast.NamedExpr, ast.For))
                              else ast.Tuple(elts=[w.optional_vars for w in n.items if w.optional_vars])
                              if isinstance(n, ast.With) else ast.Tuple(elts=n.targets)):
                if isinstance(t, ast.Name):
                    assigned.setdefault(t.id, []).append(n)

    def kind_of(call: ast.Call) -> str | None:
        values = [*call.args[1:2], *(kw.value for kw in call.keywords if kw.arg == "value")]
        if len(call.args) + len(call.keywords) != 2 or len(values) != 1 \
                or any(kw.arg not in ("mask", "value") for kw in call.keywords):
            return None
        value = values[0]
        if isinstance(value, ast.Name) and len(assigned.get(value.id, ())) == 1 \
                and isinstance(assigned[value.id][0], ast.Assign) and len(assigned[value.id][0].targets) == 1:
            value = assigned[value.id][0].value
        kind = fill_value(value)
        number = _number(value)
        if isinstance(value, ast.Call) and isinstance(value.func, ast.Name) and value.func.id == "float" \
                and len(value.args) == 1 and isinstance(value.args[0], ast.Constant):
            try:
                number = float(value.args[0].value)
            except (TypeError, ValueError):
                number = None
        if kind == "finite" and number is not None and number > -1e30:
            # (-10000, -1e9: no float's extreme, so the scores added to it are not lost to rounding)
            return "near"
        return kind

    def is_fill(expr) -> bool:
        return (isinstance(expr, ast.Call) and isinstance(expr.func, ast.Attribute) and expr.func.attr == "masked_fill"
                and isinstance(expr.func.value, ast.Name) and expr.func.value.id == param)

    kinds = set()
    for ret in (n for n in ast_walk(func) if isinstance(n, ast.Return)):
        if not (isinstance(ret.value, ast.Name) and ret.value.id == param or is_fill(ret.value)):
            return None, f"returns `{ast.unparse(ret.value) if ret.value else 'None'}`, not the scores or their fill"
    for n in ast_walk(func):
        if not (isinstance(n, ast.Name) and n.id == param):
            continue
        parent = parents.get(n)
        if isinstance(n.ctx, ast.Store):
            if isinstance(parent, ast.Assign) and len(parent.targets) == 1 and parent.targets[0] is n \
                    and is_fill(parent.value):
                continue
            return None, f"assigns the scores `{param}` otherwise than by a masked_fill"
        if isinstance(parent, ast.Return):
            continue
        if isinstance(parent, ast.Attribute) and parent.attr in SHAPE_METADATA:
            continue
        call = parents.get(parent)
        if isinstance(parent, ast.Attribute) and isinstance(call, ast.Call) and call.func is parent:
            if parent.attr in SHAPE_METADATA_METHODS | _NEW_LIKE:
                continue
            if parent.attr == "masked_fill":
                holder = parents.get(call)
                kind = kind_of(call)
                if kind == "near":
                    return None, (f"fills with `{ast.unparse(call)}`: a number the scores added to it still "
                                  "change, not -inf or the dtype's extreme")
                if kind is None:
                    return None, f"fills with `{ast.unparse(call)}`, not known to be -inf or the dtype's extreme"
                if isinstance(holder, ast.Return) or (isinstance(holder, ast.Assign) and len(holder.targets) == 1
                                                       and isinstance(holder.targets[0], ast.Name)
                                                       and holder.targets[0].id == param):
                    kinds.add(kind)
                    continue
        return None, f"reads the scores' values (`{ast.unparse(parent) if parent is not None else param}`)"
    if len(kinds) != 1:
        return None, "fills with -inf and a finite value both" if kinds else "fills nothing"
    return kinds.pop(), ""


def _reads_attribute(func: ast.FunctionDef, param: str, attr: str) -> bool:
    return any(isinstance(n, ast.Attribute) and n.attr == attr and isinstance(n.value, ast.Name) and n.value.id == param
               for n in ast_walk(func))



def _step_loads(stmt: ast.stmt, step_stmts: set, step_stored: set) -> set[str]:
    """What a step statement of the region reads that the fused call may read at its place:
    all of it, but for an ``if`` holding steps the plain assignments in it that hold no step
    and assign no value of the attention (slp's two interleaved cross-attentions:
    ``if mask is not None: s1 = s1 + m; s2 = s2 + m``, where ``s2 = ...`` is the other
    attention's): the fused path keeps those under the same test, in their place before the
    later kept statements, so a later reassignment of what they read changes nothing they
    read."""
    if not isinstance(stmt, ast.If) or span_of(stmt) in step_stmts:
        return _loads(stmt)
    out = _loads(stmt.test)
    for inner in (*stmt.body, *stmt.orelse):
        if isinstance(inner, (ast.Assign, ast.AnnAssign)) and span_of(inner) not in step_stmts \
                and not (stored_names(inner) & step_stored) \
                and not any(isinstance(n, (ast.NamedExpr, ast.Lambda)) for n in ast_walk(inner)):
            continue
        out |= _step_loads(inner, step_stmts, step_stored)
    return out


def _loads(stmt: ast.AST) -> set[str]:
    """Names (and dotted chains) a statement reads; unlike read_names, not those it assigns."""
    out: set[str] = set()
    for node in ast_walk(stmt):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
            out.add(node.id)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Load):
            dotted = dotted_name(node)
            if dotted:
                out.add(dotted)
    return out


def _negative_int(node) -> int | None:
    """``-1`` for the expression ``-1`` (and so on), else None."""
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub) and isinstance(node.operand, ast.Constant) \
            and isinstance(node.operand.value, int) and not isinstance(node.operand.value, bool):
        return -node.operand.value
    return None


RESHAPES = {"unsqueeze", "squeeze", "view", "reshape", "repeat", "expand", "expand_as", "permute", "transpose",
            "contiguous", "flatten", "unflatten"}  # Tensor methods that keep the dtype (and give a tensor)


def _reshaped_only(name: str, region: list) -> bool:
    """Does every assignment to ``name`` in the region read ``name.<reshape>(...)`` (so the
    name keeps its dtype, and a tensor stays one)?"""
    for stmt in region:
        for node in ast_walk(stmt):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(
                node, (ast.AnnAssign, ast.AugAssign)) else []
            if not any(isinstance(t, ast.Name) and t.id == name for t in targets):
                continue
            value = getattr(node, "value", None)
            if isinstance(node, ast.AugAssign) or len(targets) != 1 or not (
                    isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute)
                    and value.func.attr in RESHAPES and isinstance(value.func.value, ast.Name)
                    and value.func.value.id == name):
                return False
    return True


def _dim_int(node) -> int | None:
    """A negative dim, or dim 0, written as a literal; None otherwise."""
    if isinstance(node, ast.Constant) and node.value == 0 and not isinstance(node.value, bool):
        return 0
    return _negative_int(node)


def _plain_block(stmt: ast.stmt) -> bool:
    """Assignments, expression statements and ``for`` loops / ``if`` statements of them, with
    no return, raise, try, with or definition anywhere inside."""
    plain = (ast.Assign, ast.AnnAssign, ast.AugAssign, ast.Expr, ast.Pass, ast.For, ast.If, ast.Break, ast.Continue)
    if not isinstance(stmt, (ast.Assign, ast.AnnAssign, ast.AugAssign, ast.Expr, ast.For, ast.If)):
        return False
    return all(isinstance(s, plain) for s in ast_walk(stmt) if isinstance(s, ast.stmt)) and \
        not any(isinstance(n, (ast.Yield, ast.YieldFrom, ast.Await)) for n in ast_walk(stmt))


def _input_assert(stmt: ast.stmt, step_stored: set) -> bool:
    """Is ``stmt`` an ``assert`` that reads no value the attention steps make (``assert not
    exists(mask)`` in a causal branch)?  It checks the call's inputs alone and binds nothing,
    so the fused path may run it in the branch's order: it raises where the original raised
    (the steps before it in the original only compute the scores, which raise or not alike),
    and passes where it passed."""
    return isinstance(stmt, ast.Assert) and not (_loads(stmt) & step_stored) and not any(
        isinstance(n, (ast.NamedExpr, ast.Yield, ast.YieldFrom, ast.Await, ast.Lambda)) for n in ast_walk(stmt))


def _leaf_statements(stmts: list[ast.stmt]):
    """The statements of ``stmts`` that hold no others, in the order they run (the bodies of
    ifs, loops, withs and trys, in their source order)."""
    for stmt in stmts:
        inner = [s for field in ("body", "orelse", "handlers", "finalbody") for s in getattr(stmt, field, ())
                 if not isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda))]
        inner = [s for h in inner for s in (h.body if isinstance(h, ast.ExceptHandler) else [h])]
        if inner:
            yield from _leaf_statements(inner)
        else:
            yield stmt


def _written(stmt: ast.stmt) -> set[str]:
    """Names and dotted names a statement changes in place or whose attribute it sets: ``x +=
    y``, ``x[i] = y``, ``x.mul_(s)``, ``torch.add(a, b, out=x)``, ``self.t = ...``.  (A plain
    rebinding ``x = ...`` or ``del x`` leaves the old tensor as it was: the fixer's other checks
    read those.)"""
    out: set[str] = set()
    for node in ast_walk(stmt):
        bases = []
        if isinstance(node, ast.AugAssign):
            bases.append(node.target)
        elif isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Store):
            bases.append(node.value)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            bases.append(node)
        elif isinstance(node, ast.Call):
            if isinstance(node.func, ast.Attribute) and node.func.attr.endswith("_") \
                    and not node.func.attr.startswith("_"):
                root = node.func.value
                while isinstance(root, ast.Attribute):
                    root = root.value
                if isinstance(root, ast.Name) and root.id == "torch":
                    # a torch function changing its first argument in place (``torch.sigmoid_(g)``,
                    # ``torch.nn.init.zeros_(k)``): that argument is written, not the module
                    bases.extend(node.args[:1])
                else:
                    bases.append(node.func.value)
            bases.extend(k.value for k in node.keywords if k.arg == "out")
        for base in bases:
            while isinstance(base, ast.Subscript):
                base = base.value
            name = dotted_name(base) if isinstance(base, (ast.Name, ast.Attribute)) else None
            if name:
                out.add(name)
    return out


def _changed(stmt: ast.stmt) -> set[str]:
    """Names a statement assigns or changes in place (``m[i] = v``, ``m.fill_(v)``, ``m += v``)."""
    out = set(stored_names(stmt))
    for node in ast_walk(stmt):
        base = None
        if isinstance(node, (ast.Subscript, ast.Attribute)) and isinstance(node.ctx, (ast.Store, ast.Del)):
            base = node.value
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr.endswith("_") \
                and not node.func.attr.startswith("_"):
            base = node.func.value
        while isinstance(base, (ast.Subscript, ast.Attribute)):
            base = base.value
        if isinstance(base, ast.Name):
            out.add(base.id)
    return out


def _other_attributes_set(stmt: ast.stmt, reads: list) -> set[str]:
    """Names ``stmt`` changes only by binding attributes of them (linformer's ``self.mask =
    self.mask.to(Q.device)``, a plain ``Assign``) that the statements ``reads`` (the attention
    steps before it) read only through other attributes, never called (a method could read the
    attribute bound) nor whole: moved before those steps, the binding changes nothing they read."""
    if not isinstance(stmt, ast.Assign):
        return set()
    bound: dict[str, set[str]] = {}
    for target in stmt.targets:
        if not (isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name)):
            return set()
        bound.setdefault(target.value.id, set()).add(target.attr)
    if any(not isinstance(t, ast.Attribute) for t in stmt.targets):
        return set()
    out = set(bound)
    for step in reads:
        parents = {id(child): node for node in ast_walk(step) for child in ast.iter_child_nodes(node)}
        for node in ast_walk(step):
            if not (isinstance(node, ast.Name) and node.id in out):
                continue
            parent = parents.get(id(node))
            if not (isinstance(parent, ast.Attribute) and parent.value is node and parent.attr not in bound[node.id]):
                out.discard(node.id)  # read whole, or the attribute bound
                continue
            grand = parents.get(id(parent))
            if isinstance(grand, ast.Call) and grand.func is parent:
                out.discard(node.id)  # a method of it called
    return out


# calls an if / elif test may make that read and change nothing (a copied test runs twice)
_PURE_TEST_FUNCS = frozenset({"isinstance", "len", "callable", "type"})
_PURE_TEST_METHODS = frozenset({"size", "dim", "numel", "is_floating_point", "is_complex", "is_contiguous"})
_PURE_TEST_TORCH = frozenset({"torch.is_tensor", "torch.is_floating_point", "torch.jit.is_scripting",
                              "torch.jit.is_tracing", "torch.is_grad_enabled", "torch.compiler.is_compiling",
                              "torch.compiler.is_dynamo_compiling", "torch._dynamo.is_compiling",
                              "torch.is_inference_mode_enabled", "torch.is_autocast_enabled"})


_MUTATING_METHODS = frozenset({"append", "extend", "insert", "pop", "popitem", "update", "add", "remove", "discard",
                               "clear", "setdefault", "__setattr__", "__setitem__", "__delitem__", "send"})


def _body_effect(func: ast.AST, methods: dict, depth: int = 0, functions: dict | None = None,
                 own: bool = True) -> bool:
    """May ``func``'s body change state beyond its own locals: store to an attribute or item, a
    ``global``/``nonlocal``, ``setattr``/``delattr``/``next``, an in-place tensor method
    (``_`` ending), a container's mutating method, or a call of a method of ``methods`` (its
    class's) or of ``functions`` (the file's, by name) that may?  Calls of other functions count
    as reads (a getter computing a value).  ``own``: ``func`` is a definition (a store to one of
    its local names is its own); else an expression."""
    if depth > 3:
        return True
    for node in ast_walk(func):
        if functions and isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
                and isinstance(functions.get(node.func.id), (ast.FunctionDef, ast.AsyncFunctionDef)) \
                and functions[node.func.id] is not func \
                and _body_effect(functions[node.func.id], methods, depth + 1, functions):
            return True
        if isinstance(node, (ast.Global, ast.Nonlocal)):
            return True
        if isinstance(node, (ast.Attribute, ast.Subscript)) and isinstance(node.ctx, (ast.Store, ast.Del)):
            return True
        if isinstance(node, ast.Call):
            f = node.func
            if isinstance(f, ast.Name) and f.id in ("setattr", "delattr", "next", "exec"):
                return True
            if _random_draw(f):
                return True  # (review62: a draw advances a generator; a second draw differs)
            if isinstance(f, ast.Attribute):
                if f.attr in _MUTATING_METHODS or f.attr in _ITERATOR_STEPS \
                        or (f.attr.endswith("_") and not f.attr.startswith("_")):
                    return True
                if isinstance(f.value, ast.Name) and f.value.id == "self" and f.attr in methods \
                        and methods[f.attr] is not func and _body_effect(methods[f.attr], methods, depth + 1):
                    return True
    return False


# Methods that advance an iterator or generator (``it.__next__()``, ``gen.send(x)``).
_ITERATOR_STEPS = frozenset({"__next__", "send", "throw"})
# torch's draws from its generator; a tensor's drawing methods.
_TORCH_DRAWS = frozenset({"rand", "randn", "randint", "randperm", "rand_like", "randn_like", "randint_like",
                          "bernoulli", "multinomial", "normal", "poisson", "dropout"})


def _random_draw(func: ast.expr) -> bool:
    """Is ``func`` a function that draws from a random generator: Python's ``random.<f>``,
    numpy's ``np.random.<f>``, torch's ``torch.rand``/``randn``/... or a tensor's
    ``.bernoulli()``/``.multinomial()``?  Each call advances the generator, so calling it again
    (a guard copying a test) gives another draw and changes later draws."""
    parts = (dotted_name(func) or "").split(".")
    if not parts or not parts[0]:
        return isinstance(func, ast.Attribute) and func.attr in ("bernoulli", "multinomial")
    if parts[0] == "random" and len(parts) == 2 or "random" in parts[1:-1]:
        return True
    if parts[0] == "torch" and parts[-1] in _TORCH_DRAWS:
        return True
    return isinstance(func, ast.Attribute) and func.attr in ("bernoulli", "multinomial")


def _attribute_lookup(call: ast.Call) -> bool:
    """``getattr(x, "name")`` / ``hasattr(x, "name")`` (a default a constant) of a name or a
    chain of attributes: the attribute read ``x.name`` (a property's getter is checked as for
    any attribute read: :meth:`_Attention._property_effect`)."""
    func = call.func
    return isinstance(func, ast.Name) and func.id in ("getattr", "hasattr") and not call.keywords \
        and 2 <= len(call.args) <= (3 if func.id == "getattr" else 2) \
        and isinstance(call.args[1], ast.Constant) and isinstance(call.args[1].value, str) \
        and all(isinstance(a, ast.Constant) for a in call.args[2:]) \
        and all(isinstance(n, (ast.Name, ast.Attribute, ast.Load)) for n in ast_walk(call.args[0]))


def _own_attribute_lookup(call: ast.Call) -> bool:
    """:func:`_attribute_lookup` of ``self``'s own attribute (whose getter, when a property of
    the class, :meth:`_Attention._property_effect` checks); another object's may be a property
    of a class not read here (review62)."""
    return _attribute_lookup(call) and isinstance(call.args[0], ast.Name) and call.args[0].id == "self"


def _test_effect(test: ast.expr, pure=None) -> str | None:
    """What in an if test may do more than read when evaluated (a call other than a known pure
    read -- ``isinstance``, ``len``, ``x.size()``, ``x.dim()``, ``torch.is_tensor``,
    ``getattr``/``hasattr`` of a constant name --, a walrus, an await or a yield), as the
    reason's words; None where the test only reads.  ``pure``: a further test of a call."""
    for node in ast_walk(test):
        if isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Name) and func.id in _PURE_TEST_FUNCS or _own_attribute_lookup(node) \
                    or (pure is not None and pure(node)):
                continue
            if isinstance(func, ast.Attribute) and (func.attr in _PURE_TEST_METHODS
                                                    or dotted_name(func) in _PURE_TEST_TORCH):
                continue
            return f"a call (`{ast.unparse(func)}(...)`)"
        if isinstance(node, (ast.NamedExpr, ast.Await, ast.Yield, ast.YieldFrom)):
            return "an expression with a side effect"
    return None


def _elif_arm(chain: list) -> tuple | None:
    """pyhealth's ``if kind == "add": ... elif kind == "mul": e = torch.matmul(k, q) ... else:
    raise ...``: a step (``chain[-1]``) in one arm of an if / elif chain, each if after the first
    the only statement of the previous one's else.  (The ifs from the first down to the one
    whose body or else holds the step, and that field); None for any other nesting."""
    if len(chain) < 3 or not all(isinstance(c, ast.If) for c in chain[:-1]):
        return None
    ifs = chain[:-1]
    if any(len(a.orelse) != 1 or a.orelse[0] is not b for a, b in zip(ifs, ifs[1:])):
        return None
    last = ifs[-1]
    if any(s is chain[-1] for s in last.body):
        return ifs, "body"
    if any(s is chain[-1] for s in last.orelse) and not (len(last.orelse) == 1 and isinstance(last.orelse[0], ast.If)):
        return ifs, "orelse"
    return None


def _bare_param(func: ast.AST, name: str) -> bool:
    """Is ``name`` a parameter of ``func`` with no default and no annotation that ``func`` never
    binds again (:meth:`_Attention._undeclared_setting`)?"""
    args = func.args
    positional = args.posonlyargs + args.args
    defaults = dict(zip([a.arg for a in positional][len(positional) - len(args.defaults):], args.defaults))
    defaults.update({a.arg: d for a, d in zip(args.kwonlyargs, args.kw_defaults) if d is not None})
    param = next((a for a in positional + args.kwonlyargs if a.arg == name), None)
    if param is None or param.annotation is not None or name in defaults:
        return False
    return not any(isinstance(n, ast.Name) and n.id == name and isinstance(n.ctx, (ast.Store, ast.Del))
                   for n in ast_walk(func))


def _raises_only(stmt: ast.If) -> bool:
    return not stmt.orelse and all(isinstance(s, ast.Raise) for s in stmt.body)


def _negate(cond: ast.expr, text: str, text_of) -> str:
    """The text of ``not cond`` for a boolean mask (``b == 0`` -> ``b != 0``, ``~m`` -> ``m``)."""
    if isinstance(cond, ast.Compare) and len(cond.ops) == 1 and isinstance(cond.ops[0], (ast.Eq, ast.NotEq)):
        symbol = "!=" if isinstance(cond.ops[0], ast.Eq) else "=="
        return f"{text_of(cond.left)} {symbol} {text_of(cond.comparators[0])}"
    if isinstance(cond, ast.UnaryOp) and isinstance(cond.op, (ast.Invert, ast.Not)):
        return text_of(cond.operand)
    if isinstance(cond, ast.Call) and isinstance(cond.func, ast.Attribute) and cond.func.attr == "logical_not" \
            and not cond.args:
        return text_of(cond.func.value)
    return f"~{_atom(text, cond)}"


def _plain_test(test: ast.expr) -> bool:
    """A test that only reads names, attributes and constants (compared, negated, combined), or
    a local tensor's rank (`len(q.size()) == 3`, `q.dim() == 4`): evaluating it again where the
    fused call stands gives the same truth."""
    allowed = (ast.Name, ast.Attribute, ast.Constant, ast.Compare, ast.BoolOp, ast.UnaryOp, ast.Load,
               ast.cmpop, ast.boolop, ast.unaryop)
    todo = [test]
    for node in todo:  # breadth first, a rank read's own call not entered
        if isinstance(node, ast.Call):
            if not _rank_read(node):
                return False
        elif isinstance(node, allowed):
            todo.extend(ast.iter_child_nodes(node))
        else:
            return False
    return True


def _rank_read(call: ast.Call) -> bool:
    """Is ``call`` a read of a local tensor's rank, which no code runs to answer: ``len(x.size())``,
    ``len(x.shape)`` or ``x.dim()`` (``x`` a name other than ``self``, whose methods a module may
    define)?"""
    def local(expr) -> bool:
        return isinstance(expr, ast.Name) and expr.id != "self"

    if call.keywords:
        return False
    func = call.func
    if isinstance(func, ast.Attribute) and func.attr == "dim" and not call.args:
        return local(func.value)
    if not (isinstance(func, ast.Name) and func.id == "len" and len(call.args) == 1):
        return False
    arg = call.args[0]
    if isinstance(arg, ast.Call) and not arg.args and not arg.keywords and isinstance(arg.func, ast.Attribute):
        return arg.func.attr == "size" and local(arg.func.value)
    return isinstance(arg, ast.Attribute) and arg.attr == "shape" and local(arg.value)


def _grouping_parentheses(head: str, tail: str) -> bool:
    """Is the text between ``head`` and ``tail`` alone inside a pair of parentheses that only
    group it (``= (a @ v).t()``), not a call's (``f(a @ v)``) or a tuple's (``(a @ v, w)``)?"""
    if not (head.endswith("(") and tail.startswith(")")):
        return False
    before = head[:-1].rstrip()
    return not before or not (before[-1].isalnum() or before[-1] in "_)]}'\"")


def _is_call(text: str) -> bool:
    try:
        return isinstance(ast.parse(text.strip(), mode="eval").body, ast.Call)
    except SyntaxError:
        return False


def _calls_in(function: ast.AST, name: str) -> bool:
    """Does ``function`` call ``self.<name>(...)``?"""
    return any(_calls_helper(n, name, True) for n in ast_walk(function))


def _root_name(node: ast.expr) -> str | None:
    """The name an attribute chain or call chain starts from (``self`` of ``self.a.b(x)``)."""
    while isinstance(node, (ast.Attribute, ast.Call, ast.Subscript)):
        node = node.func if isinstance(node, ast.Call) else node.value
    return node.id if isinstance(node, ast.Name) else None


def _may_change(stmt: ast.stmt, roots: set, skip: ast.AST | None = None) -> ast.AST | None:
    """The first node of ``stmt`` that may change an object named in ``roots``: a store to an
    attribute of it, a call on it or handed it, ``setattr``/``delattr``; None when there is none.
    ``skip``: a node found before and cleared by the caller (looking on from it)."""
    walk = ast_walk(stmt)
    if skip is not None:
        nodes = list(walk)
        walk = nodes[next(i for i, n in enumerate(nodes) if n is skip) + 1:]
    for node in walk:
        if isinstance(node, (ast.Attribute, ast.Subscript)) and not isinstance(node.ctx, ast.Load) \
                and _root_name(node) in roots:
            return node
        if isinstance(node, ast.Call):
            if _root_name(node.func) in roots or isinstance(node.func, ast.Name) and node.func.id in (
                    "setattr", "delattr"):
                return node
            if any(isinstance(a, ast.Name) and a.id in roots
                   for a in (*node.args, *(k.value for k in node.keywords))):
                return node
    return None


def _kept_statements(texts: list[str]) -> list[ast.stmt]:
    """The statements an ``if`` around a step keeps on the fused path, held as their texts
    (:meth:`_Attention._check_step_if`), parsed back so they can be read like the region's own;
    a text that does not parse alone declines (nothing it may change is then known)."""
    out: list[ast.stmt] = []
    for text in texts:
        try:
            out += ast.parse(text).body
        except SyntaxError:
            raise Skip("a statement kept beside a step could not be read") from None
    return out


_COPYING_TENSOR_METHODS = frozenset({
    "to", "type", "type_as", "bool", "float", "half", "double", "bfloat16", "long", "int",
    "clone", "detach", "contiguous", "view", "reshape", "expand", "unsqueeze", "squeeze", "size",
})


def _buffer_copy(node: ast.AST) -> str | None:
    """``<attr>`` where ``node`` is ``self.<attr>.<m>(...)`` with ``m`` a tensor method that
    returns a new tensor or a view and writes nothing (``to``, ``bool``, ``view``...), handed no
    ``self``; None otherwise.  On a registered buffer such a call changes no attribute."""
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            and node.func.attr in _COPYING_TENSOR_METHODS):
        return None
    owner = node.func.value
    if not (isinstance(owner, ast.Attribute) and isinstance(owner.value, ast.Name) and owner.value.id == "self"):
        return None
    if any(isinstance(n, ast.Name) and n.id == "self" for a in (*node.args, *(k.value for k in node.keywords))
           for n in ast_walk(a)):
        return None
    return owner.attr


def _setting_scales(stmts: list[ast.stmt], step_spans: set, role_of: dict, lead: list[str]) -> dict:
    """The inlined helper's scale steps each alone under an ``if`` on the instance's settings
    (sssegmentation's ``if self.use_scale: pairwise_weight /= theta_x.shape[-1]**0.5``): the
    if's span -> (the step's role, the if).  The test reads attributes of the instance and
    constants alone (no parameter or local of the helper), so at the caller's call it is the
    same value, and the scores are scaled exactly when it holds: ``scale=`` says it (_scale).
    An if with an else, more statements, or another step in it is not one (the helper then
    declines, its steps nested in its statements).  ``lead``: the method's instance parameter,
    given only where the caller reads its instance under the same name (the test moves there as
    it is); empty, there are none."""
    out: dict = {}
    for st in stmts:
        if not (isinstance(st, ast.If) and not st.orelse and len(st.body) == 1 and span_of(st.body[0]) in step_spans):
            continue
        inner = st.body[0]
        if role_of.get(span_of(inner)) not in SCALE_STEPS or not _plain_test(st.test):
            continue
        if not (isinstance(inner, (ast.Assign, ast.AugAssign)) and len(getattr(inner, "targets", [inner.target if
                isinstance(inner, ast.AugAssign) else None])) == 1):
            continue
        names = {n.id for n in ast_walk(st.test) if isinstance(n, ast.Name)}
        if not lead or not names <= set(lead[:1]):
            continue
        out[span_of(st)] = (role_of[span_of(inner)], st)
    return out


# In-place tensor methods that change values only: each returns its receiver with the
# receiver's shape (its operands broadcast to it).  ``unsqueeze_``, ``t_``, ``resize_``,
# ``as_strided_`` and the like change the shape and are not here.
SHAPE_KEEPING_IN_PLACE = {"mul_", "div_", "add_", "sub_", "clamp_", "clip_", "fill_", "zero_", "exp_", "log_",
                          "abs_", "sqrt_", "pow_", "neg_", "reciprocal_", "sigmoid_", "copy_", "normal_",
                          "uniform_", "requires_grad_"}


def _in_place_method(attr: str) -> bool:
    """Is ``attr`` a tensor's in-place method that keeps its receiver's shape (``mul_``)?"""
    return attr in SHAPE_KEEPING_IN_PLACE


def _picked_flags(helper: ast.FunctionDef, kind: str, params: list[str], caller_def: ast.AST) -> dict[str, bool]:
    """The flags of a probabilities helper whose arm the one call picks
    (:meth:`_inline_attention_helper`): ``def weights(self, x, with_v=False)`` ending in ``if
    with_v: return drop(p), v`` / ``else: return drop(p)``, called by its caller once as ``p, v =
    self.weights(x, with_v=True)``.  Each parameter with a default is such a flag: its default a
    constant, handed a constant by keyword (or nothing), read nowhere in the helper but in the
    test of its last statement, an ``if`` on the flag alone (or ``not`` it) whose arms are one
    ``return`` each.  Returns the flags with their truth at that call; empty (the helper then
    declined as before) where any of that does not hold."""
    args = helper.args
    flagged = params[len(params) - len(args.defaults):]
    body = list(helper.body)
    last = body[-1] if body else None
    if not isinstance(last, ast.If) or len(last.body) != 1 or len(last.orelse) != 1 \
            or not all(isinstance(st, ast.Return) for st in (*last.body, *last.orelse)):
        return {}
    test = last.test.operand if isinstance(last.test, ast.UnaryOp) and isinstance(last.test.op, ast.Not) \
        else last.test
    if len(flagged) != 1 or not isinstance(test, ast.Name) or test.id != flagged[0] \
            or not all(isinstance(d, ast.Constant) for d in args.defaults):
        return {}
    reads = [n for n in ast_walk(helper) if isinstance(n, ast.Name) and n.id == test.id]
    if reads != [test]:
        return {}

    def is_call(node) -> bool:
        func = node.func if isinstance(node, ast.Call) else None
        if kind == "method":
            return isinstance(func, ast.Attribute) and func.attr == helper.name \
                and isinstance(func.value, ast.Name) and func.value.id == "self"
        return kind == "function" and isinstance(func, ast.Name) and func.id == helper.name

    calls = [n for n in ast_walk(caller_def) if is_call(n)]
    if len(calls) != 1 or len(calls[0].args) != len(params) - 1 \
            or any(isinstance(a, ast.Starred) for a in calls[0].args):
        return {}
    value = args.defaults[0].value
    for keyword in calls[0].keywords:
        if keyword.arg != test.id or not isinstance(keyword.value, ast.Constant):
            return {}
        value = keyword.value.value
    return {test.id: bool(value) != (test is not last.test)}


def _picked_arm(last: ast.If, flags: dict[str, bool]) -> list[ast.stmt]:
    """The arm of ``last`` (:func:`_picked_flags`'s test) the flags' truth runs."""
    return last.body if next(iter(flags.values())) else last.orelse


def _dispatched_calls(caller_def: ast.AST) -> list:
    """(call, attr) for each call in ``caller_def`` of the method a setting picks: ``fn(a, b)``
    with ``fn`` a local bound once to ``getattr(self, self.<attr>)``, or that ``getattr`` called
    in place (sssegmentation's non-local block: ``pairwise_func = getattr(self, self.mode)``).
    Such a call runs the helper named by the setting's value: where that value names the
    inlined helper the call is the helper's call, and the fused path is guarded on the value
    (``self.<attr> != "<helper>"`` takes the original), so every other value keeps its path."""
    picked = local_dispatches(caller_def)
    # (a caller that sets the setting itself may change it between the pick and the guard)
    set_here = {n.attr for n in ast_walk(caller_def) if isinstance(n, ast.Attribute)
                and not isinstance(n.ctx, ast.Load) and isinstance(n.value, ast.Name) and n.value.id == "self"}
    found = []
    for node in ast_walk(caller_def):
        if not isinstance(node, ast.Call):
            continue
        attr = picked.get(node.func.id) if isinstance(node.func, ast.Name) else dispatched_attr(node.func)
        if attr is not None:
            found.append((node, attr))
    return [] if any(attr in set_here for _, attr in found) else found



def _self_method(call) -> str | None:
    """The method name of a ``self.<name>(...)`` call; None for any other expression."""
    func = call.func if isinstance(call, ast.Call) else None
    if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id == "self":
        return func.attr
    return None


def _without_docstring(body: list) -> list:
    """The statements of a function body after its docstring (a new list)."""
    return list(body[1:] if body and is_docstring(body[0]) else body)


def _setting_of(test: ast.expr) -> ast.expr | None:
    """``self.<attr>`` where ``test`` is that attribute or an ``and`` beginning with it: while
    the attribute is falsy the test fails without reading anything else (_inline_helper_chain)."""
    if isinstance(test, ast.BoolOp) and isinstance(test.op, ast.And):
        test = test.values[0]
    if isinstance(test, ast.Attribute) and isinstance(test.value, ast.Name) and test.value.id == "self" \
            and isinstance(test.ctx, ast.Load):
        return test
    return None


def _chain_binds(stmt: ast.AST) -> set[str]:
    """The names ``stmt`` binds in its own scope (a comprehension's targets are its own, a
    walrus in it binds outside); ``"[item]"`` for an attribute or item it assigns."""
    out: set[str] = set()
    stack = [stmt]
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp, ast.Lambda)):
            out |= {n.target.id for n in ast_walk(node) if isinstance(n, ast.NamedExpr)}
            continue
        if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            out.add(node.id)
        elif isinstance(node, (ast.Attribute, ast.Subscript)) and isinstance(node.ctx, (ast.Store, ast.Del)):
            out.add("[item]")
        stack.extend(ast.iter_child_nodes(node))
    return out


def _preparing(stmt: ast.stmt) -> bool:
    """A statement of the innermost method of a chain that may run in the caller: a plain
    assignment to names, or an ``if`` whose test calls nothing holding only such assignments
    (``if self.l2: q, k = (F.normalize(x, dim=-1) for x in (q, k))``)."""
    if isinstance(stmt, ast.If):
        return not any(isinstance(n, (ast.Call, ast.NamedExpr, ast.Await)) for n in ast_walk(stmt.test)) \
            and all(not isinstance(s, ast.If) and _preparing(s) for s in stmt.body + stmt.orelse)
    return isinstance(stmt, ast.Assign) and all(
        isinstance(n, (ast.Name, ast.Tuple, ast.List)) for t in stmt.targets for n in ast_walk(t)
        if isinstance(n, ast.expr)) and "[item]" not in _chain_binds(stmt)


def _uncalled_mentions(tree: ast.AST, mentions: list) -> list:
    """Those of ``mentions`` (names or attributes naming a helper) that are not what a call of the
    file calls, nor an operand of an identity test (a fused path's own `type(self).h is not
    Owner.h`, once another attention of the file is fixed): a helper rebound, stored or handed
    on, whose other uses a caller's inlined copy of its work cannot follow."""
    read = {id(n.func) for n in ast_walk(tree) if isinstance(n, ast.Call)}
    read |= {id(e) for n in ast_walk(tree) if isinstance(n, ast.Compare)
             and all(isinstance(op, (ast.Is, ast.IsNot)) for op in n.ops) for e in (n.left, *n.comparators)}
    return [m for m in mentions if id(m) not in read or not isinstance(m.ctx, ast.Load)]


def _calls_helper(value, name: str, method: bool) -> bool:
    """Is ``value`` a call of the helper ``name``: ``self.<name>(...)`` for a method, ``<name>(...)``
    for a module function?"""
    return isinstance(value, ast.Call) and (
        (method and isinstance(value.func, ast.Attribute) and value.func.attr == name
         and isinstance(value.func.value, ast.Name) and value.func.value.id == "self")
        or (not method and isinstance(value.func, ast.Name) and value.func.id == name))


def _helper_params(helper, why: str) -> tuple[list[str], bool, str]:
    """(the positional parameters, whether it is a method, the scores' parameter) of a helper
    the fused path calls on a stand-in of the scores: its first argument after ``self``; Skip
    where it takes ``*args``/``**kwargs`` or no such argument."""
    args = helper.args
    params = [a.arg for a in (*args.posonlyargs, *args.args)]
    method = bool(params) and params[0] == "self"
    if args.vararg or args.kwarg or len(params) < 1 + method:
        raise Skip(why + "takes its arguments in a way the fused path cannot repeat; rewrite it by hand")
    return params, method, params[int(method)]
