"""Unchain a method into DL nodes and connect them into a control-flow graph.

Every call and tensor operation becomes a node with explicit inputs and outputs: nested
calls get temporaries (``self.LayerNorm(self.dropout(h) + r)`` is Dropout -> Add ->
LayerNorm).  Statements that compute nothing interesting still become ``other``/``copy``
nodes because matching must know what they read and write (data flow, liveness).

The graph is kept as adjacency lists over node ids (``Flow.out``): the matcher walks them
millions of times and ``import networkx`` alone costs more than analysing a file on the
pre-commit path.  ``Flow.graph`` gives the same graph as a networkx DiGraph for tools and
tests.  Loop bodies are taken once (no back edges), so the graph is a DAG and matching on it
terminates without enumerating paths.
Edges out of an ``if`` carry ``guard=(text, taken)`` so that two ``if``s with the same guard
text are correlated: a path that took one branch of the first takes it of the second too.

Helper methods of the class and functions of the same file are inlined at their call
sites (parameters substituted by the argument values, locals renamed per inlining), also
when passed as a callable argument (``apply_chunking_to_forward(self.ff_chunk, ...)``).
"""

from __future__ import annotations

import ast
import copy
import re
import unicodedata
from ..records import dataclass, field, replace

from . import canon as canonical
from . import groups, key_cats, layouts, never_none, partial_rope, ranks, rows, written_equations
from .bindings import APPLY_FIRST, Applier, ClassInfo, Ctor, module_key, span
from .canon import TABLE, View
from .ops import CASTS, SOFTMAX
from .setting_norm import NORMS as SETTING_NORMS
from .formulas import (SAME, bias_add_module, function_forward, function_module, gelu_formula, gelu_on_every_path,
                       passed_argument, passes_tensor_through, softmax_formula, strip_casts, untransposed)
from .halves import chunk_in_two_last
from .module_copies import zipped_rows
from .layers import LIST_REORDERS, LM_HEAD, OUTPUT_OF
from .literals import (class_table, entry_keys, imported_table_reads, imported_table_reads_in, literal_keywords,
                       literal_table, spread_keys)
from . import passed_defaults
from .passed_defaults import int_literal as _int_literal
from .names import BINDERS, ModuleNames, PlainFunctions, bound_by, builtin_unbound, declared_global, imported_by, param_default
from .normed_rows import norm_checks_width, same_size, size_text
from .siblings import sibling_gelu, sibling_passes_through, sibling_softmax, sibling_table
from .held_layers import self_chain as held_chain
from .torch_bases import INHERITED
from .setting_branches import NO_GATES, forward_setting
from .setting_dispatch import GATE as DISPATCH_GATE, class_dispatches, dispatch_branches, dispatched_attr, local_dispatches
from .unpacked_members import unpacked_members
from .zero_input import adds_nothing
from .treewalk import _AST, _FIELDS, _SKIP_FIELDS, _fields_of, blocks, children, walk  # noqa: F401 (graph.walk etc.)
from .treewalk import ast_walk

MAX_INLINE_DEPTH = 3
_NAME, _CALL = ast.Name, ast.Call
_LOAD, _BINOP, _CONSTANT = ast.Load, ast.BinOp, ast.Constant
# (the same classes for the exact-class tests that are not _value's fast path, which a test turns
# off by rebinding _NAME and _CALL)
_AST_NAME, _AST_CALL = ast.Name, ast.Call
# choice_alias key prefix: a local list of a module's (name, value) members (``inspect.getmembers``)
_MEMBER_LIST = "\0members:"
# calls that keep such members as they are (some of them, in order) or make them
_MEMBERS_KEPT = frozenset({"list", "tuple", "sorted", "filter", "getmembers"})
_IMPORTS = (ast.Import, ast.ImportFrom)
_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)  # statements that open a scope
_TRY_STAR = getattr(ast, "TryStar", None)  # (Python 3.11+)
# Containers whose lambda elements are a table of factories (see _inner_calls)
_TABLES = (ast.Dict, ast.List, ast.Tuple)

# layer arguments an inlined helper's calls are read through (FlowBuilder._inline): the
# attention's own modules, and a batch norm with the conv or Linear handed in beside it
_ALIASED = frozenset({"torch.nn.Dropout", "torch.nn.Softmax", LM_HEAD})
_BATCH_NORMS = frozenset({"torch.nn.BatchNorm1d", "torch.nn.BatchNorm2d", "torch.nn.BatchNorm3d",
                          "torch.nn.SyncBatchNorm"})
_BN_PRODUCERS = frozenset({"torch.nn.Conv1d", "torch.nn.Conv2d", "torch.nn.Conv3d", "torch.nn.Linear"})

BINOPS = {
    ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.MatMult: "@",
    ast.FloorDiv: "//", ast.Mod: "%", ast.Pow: "**",
}


# Tensor methods taking a shape either as separate sizes or as one tuple (``x.view(b, -1)`` and
# ``x.view((b, -1))`` are one call)
_SIZE_TUPLE_METHODS = frozenset({"view", "reshape"})


@dataclass(frozen=True)
class Const:
    value: object

    @property
    def text(self) -> str:
        return repr(self.value)


@dataclass(frozen=True)
class Assumed(Const):
    """A number the code reads from a constructor parameter's default (``dim=self.dim`` with
    ``self.dim = dim`` and ``dim: int = -1`` in ``__init__``): the value unless a caller passes
    another.  A rule matches it as that literal; a fix must not assume it (``why``)."""

    why: str = ""


@dataclass(frozen=True)
class Ref:
    """A value by identity (``key``) and by its source text (``text``, for synthesis)."""

    key: str
    text: str


Value = Ref | Const

LINEAR = "torch.nn.functional.linear"
EMBEDDING = "torch.nn.Embedding"
GELU = "torch.nn.functional.gelu"  # what a same-file GELU formula function is called as
# torch.max(s, torch.tensor(torch.finfo(s.dtype).min)) and torch.clamp(s, min=...): maybe a floor
# at the dtype's minimum (canon.floors_at_dtype_min)
_FLOORS = frozenset({"torch.max", "torch.maximum", "torch.clamp"})
IDENTITY = "torch.nn.Identity"
# Operations a layer may stand for when another branch of __init__ binds nn.Identity: those
# that are the identity at a setting of theirs (dropout at p = 0)
DROPOUT = "torch.nn.functional.dropout"
IDENTITY_AT_ZERO = frozenset({DROPOUT})


@dataclass(slots=True)  # (no __dict__ each: a file's flows hold tens of thousands of nodes)
class Node:
    id: int
    kind: str  # layer | call | method | op | copy | other | branch | entry | exit
    op: str = ""
    types: frozenset = frozenset()
    layer: str | None = None
    args: tuple = ()
    kwargs: tuple = ()
    outs: tuple = ()
    uses: frozenset = frozenset()
    defs: frozenset = frozenset()
    func: str = ""
    span: tuple | None = None
    stmt: tuple | None = None
    scope: tuple = ()
    guard: str | None = None
    inlined: bool = False
    # Where each argument is written (``ast`` spans; None for a value the call site does not
    # write, such as a constructor's keyword merged into ``nn.Softmax(dim=-1)(x)``): the
    # receiver first for methods, (left, right) for operators.  ``kwarg_spans`` pairs each
    # keyword's value span with the span of the whole ``name=value`` (or ``**kw``).
    # Synthesis reads values here instead of searching the syntax tree by position.
    arg_spans: tuple = ()
    kwarg_spans: tuple = ()
    func_span: tuple | None = None  # the callee expression (``self.dropout``, ``F.softmax``)
    # The canonical operation the node computes (``torch.nn.functional.softmax`` for every
    # spelling of a softmax; see structure/ops.py), "" when none; ``maybe``: the operations
    # a layer chosen at run time may compute (``ACT2FN[config.hidden_act]``); ``view``: the
    # arguments in canonical form (canon.View), None when they are ``args``/``kwargs`` as they are.
    canon: str = ""
    maybe: frozenset = frozenset()
    view: object = None
    # ``klass(...)`` where ``klass = Lion if use_lion else Adam``: (fqn, span of the
    # alternative's expression) for each class or function the name may hold
    choices: tuple = ()
    # A softmax or transpose whose dims count from the front of a value of unknown rank, read
    # at the rank its product makes attention (ranks._contracted): that rank; None otherwise
    assumed_rank: int | None = None
    # A fill on one query's keys-first scores whose size-1 query axis is squeezed (singletons):
    # its mask is laid out over the squeezed scores, (..., keys), so the fused call's mask is
    # that mask with the query axis put back before the keys (``.unsqueeze(-2)``)
    squeezed_keys: bool = False
    # A layer typed as ``canon`` whose __init__ may bind nn.Identity instead, the operation at
    # its no-op setting (a dropout at p = 0): the module may have no attribute of the op's
    identity: bool = False
    # Spans of the work written inside the node's own span, outside its arguments, that the
    # node computes as one step (the sum and the size of ``s.sum(-1) / x.shape[-1]``, read as
    # a mean): a patch replacing the node replaces them with it
    inner: tuple = ()
    # ``outputs[1:]`` / ``outputs[1]`` of ``outputs = self.attn(x)``: reads the module's outputs
    # after its first only (canon.first is the first)
    rest: bool = False
    # A dropout layer whose module is a same-file dropout wrapper (formulas.dropout_wrapper):
    # the attribute holding its rate ("" for nn.Dropout's ``p``)
    rate: str = ""

    @property
    def line(self) -> int:
        return (self.span or self.stmt or (0,))[0]


# FlowBuilder._new: a node's attributes as Node.__init__ sets them by default (in field order;
# id and kind are always given), and the fields a caller may give besides those _new sets.
_NODE_TEMPLATE = {name: f.default for name, f in Node.__record_fields__.items()}
_FREE_FIELDS = frozenset(_NODE_TEMPLATE) - {"id", "func", "stmt", "scope", "inlined"}
_new_node = object.__new__


def _node_maker(given: tuple) -> object:
    """``make(id, func, stmt, scope, inlined, fields)`` for a ``fields`` dict with the keys
    ``given``: a Node with those attributes and fields, the others at their defaults -- what
    ``Node(id=..., func=..., **fields)`` makes, without matching some thirty keywords per call
    (a tenth of building a flow).  One straight run of slot stores, made once per key tuple
    (the builder's call sites pass a few dozen)."""
    space = {"_new": _new_node, "_Node": Node}
    lines = ["def make(id, func, stmt, scope, inlined, fields):", "  node = _new(_Node)"]
    fixed = ("id", "func", "stmt", "scope", "inlined")
    for name, default in _NODE_TEMPLATE.items():
        if name in given:
            lines.append(f"  node.{name} = fields[{name!r}]")
        elif name in fixed:
            lines.append(f"  node.{name} = {name}")
        else:
            space[f"_default_{name}"] = default
            lines.append(f"  node.{name} = _default_{name}")
    lines.append("  return node")
    exec("\n".join(lines), space)  # noqa: S102 (straight-line stores, made once per key tuple)
    return space["make"]


_NODE_MAKERS: dict[tuple, object] = {}  # the keys of _new's fields -> _node_maker's function


@dataclass
class Flow:
    """The graph of one root function, with its helpers inlined."""

    name: str
    nodes: list[Node]
    out: list[list[tuple[int, tuple | None]]]  # per node id: (successor, guard) in insertion order
    entry: int
    exit: int
    params: frozenset = frozenset()  # the root function's parameter names
    # A temporary computed again by the same layout steps from the same values (``cos.unsqueeze(0)``
    # written once for q and once for k) -> the temporary first computing it (_recomputed)
    repeats: dict | None = None
    # A softmax read in the layout of the einsum product its scores come from (layouts.read):
    # softmax node id -> that product's node id.  Its dim is the product's, not the written one:
    # only a match holding that product reads it so (matcher: _finish).
    layouts: dict | None = None
    # The text of each constant slice of a leading axis (``x[:, 1:]`` -> ``":,1:"``): the
    # subscript's span -> the slice, spaces removed (FlowBuilder._slice_at); None when none.
    slices: dict | None = None
    # The file's classes by name (ModuleNames.classes): a call of one builds an instance
    # (``xLSTMCausalLMOutput(loss=loss, logits=logits)``, a record however it is spelled)
    classes: dict | None = None
    # The ids of the nodes a torch base class's method (structure/torch_bases.py) computes,
    # inlined at the call that runs it: code the file does not write; None when none
    inherited: frozenset | None = None

    def successors(self, pos: int) -> list[int]:
        return [succ for succ, _ in self.out[pos]]

    @property
    def graph(self):
        """The flow as a ``networkx.DiGraph`` (edges carry ``guard``); built on demand."""
        import networkx as nx

        graph = nx.DiGraph()
        graph.add_nodes_from(range(len(self.nodes)))
        for pred, edges in enumerate(self.out):
            for succ, guard in edges:
                graph.add_edge(pred, succ, guard=guard)
        return graph


@dataclass
class _Ctx:
    instance: int
    func: str
    params: dict[str, Value] = field(default_factory=dict)
    layer_alias: dict[str, str] = field(default_factory=dict)
    # local names bound to a module of the canonical table built in the body
    # (``loss_fct = CrossEntropyLoss(ignore_index=-100)``): a call through the name is a call
    # of that module, with the constructor's arguments
    built_alias: dict[str, ast.Call] = field(default_factory=dict)
    # local names bound by a plain assignment (``half = x.shape[-1] // 2``, ``x1 = x[..., :half]``)
    # and halves of a tensor (``x1, x2 = x.chunk(2, dim=-1)``): what a rotate-half reads
    exprs: dict[str, object] = field(default_factory=dict)
    # local names holding a masking fill value (``mask_value = torch.finfo(w.dtype).min``, then
    # ``mask_value = torch.full([], mask_value, ...)``): "inf" or "finite" (canon.held_fill)
    fills: dict[str, str] = field(default_factory=dict)
    # local names bound to a same-file function (``attention_interface = eager_attention_forward``):
    # a call through the name may call that function, so it is inlined there
    func_alias: dict[str, str] = field(default_factory=dict)
    # local names bound to a module of one row of a host's layer list, reached from self
    # (``origin = self.transformer.layers[i].mlp`` in a mixin): a call of one of its attributes
    # (``origin.dense_h_to_4h(x)``) is a call of that row's layer (_borrowed_layer)
    row_alias: dict[str, str] = field(default_factory=dict)
    # local names bound to one canonical function in every alternative (``softmax =
    # torch.softmax if not self.stable else stable_softmax``, a same-file softmax): its fqn
    fqn_alias: dict[str, str] = field(default_factory=dict)
    # local names bound to one of several imported callables (``optim_klass = Lion if use_lion
    # else Adam``): ((fqn, span of the alternative), ...), see Node.choices
    choice_alias: dict[str, tuple] = field(default_factory=dict)
    # local names bound to one of two same-file functions (``attn_fn = attention if not
    # memory_efficient else memory_efficient_attention``): the conditional expression; a
    # statement calling through the name is read as an ``if`` calling each (_func_choice_if)
    func_choice: dict[str, ast.IfExp] = field(default_factory=dict)
    local_funcs: dict = field(default_factory=dict)  # functions defined in the body (closures)
    # id of a closure a same-file factory returned (a copy in local_funcs) -> the factory's
    # parameters and the expressions its call passed for them (``fn = factory(self.norm, ...)``)
    closure_args: dict = field(default_factory=dict)
    stack: tuple = ()
    ret: Ref | None = None
    ret_frontier: list = field(default_factory=list)
    loops: list = field(default_factory=list)  # (break_frontier, continue_frontier)
    stmt: tuple | None = None
    scope: tuple = ()
    top: ast.expr | None = None  # the whole right-hand side of the current assignment
    bare: ast.expr | None = None  # the call an expression statement makes (``x.masked_fill_(...)``)
    # the one name the current assignment binds (``attn = attn.masked_fill_(m, v).softmax(-2)``)
    rebinds: str | None = None
    returned: ast.expr | None = None  # the value a return statement returns
    held: ast.expr | None = None  # a list or tuple literal one name is bound to (``outs = [norm(x + y)]``)
    # ``self.<attr>`` -> the torch.nn class an enclosing ``if self.<attr> == nn.GELU:`` says it
    # holds: ``self.<attr>(approximate="tanh")(y)`` there builds that layer and calls it
    classes: dict | None = None
    casts: dict | None = None  # (receiver key, cast) -> its value, within the current statement
    # local names bound to the chunks of a tensor (``c = h.chunk(2, dim=-1)``, read as ``c[0]``,
    # ``c[1]``): the name -> the keys of its chunks, as if unpacked (``c0, c1 = h.chunk(...)``)
    chunked: dict[str, tuple] = field(default_factory=dict)
    # local names holding the outputs of every member of a ModuleList stacked on a new axis
    # (``logits = torch.stack([head(h) for head in self.heads], dim=1)``), or a selection of
    # such a stack that keeps that axis whole: the name -> the stack's axis (see _member_stack)
    members: dict[str, int] = field(default_factory=dict)
    # those of them bound to one Linear's last axis split into members (``x.reshape(*x.shape[:k],
    # n, V)``, _split_last_axis): their pick is canon.split_member
    split: set = field(default_factory=set)
    # local names bound to a view or reshape to two axes (``flat = x.view(-1, n)``): ``flat[m]``
    # (one index, a mask or indices) selects rows, the last axis whole (canon.rows)
    flat: set = field(default_factory=set)
    # local names bound to a call of a module attribute (``outputs = self.attn(x)``): ``outputs[0]``
    # is the module's first output (canon.first), which a module returning a tuple or list
    # (``(out,) + rest``) makes its output layer's
    called: set = field(default_factory=set)
    # local names bound to a call of a helper method of the class -> that call: where every
    # return of the method is a layer's output (``logits = self._logits(h)``, each return
    # ``self.lm_head(h)`` or ``F.linear(h, self.embed.weight)``; FlowBuilder._layer_output_method,
    # asked only when such a name is indexed by a mask), ``logits[mask]`` selects rows (canon.rows)
    layer_outputs: dict | None = None  # (made when the first is met: no dict per context)
    # those of them that hold the halves stacked on a new second-to-last axis (``h.view(B, T, 2,
    # -1)``): read as ``h[..., k, :]``, never ``h[k]``
    stacked: set = field(default_factory=set)
    body_scope: tuple = ()  # ctx.scope of this function's own top-level statements
    definition: ast.AST | None = None  # the function whose body this is (literals.spread_keys)
    # local names unpacked from an entry of a literal table whose entries hold dict literals
    # there: the name -> those dicts (FlowBuilder._table_entry; literals.entry_keys checks the
    # name is bound nowhere else, so an item store does not drop it)
    table_entries: dict = field(default_factory=dict)
    # parameters of an inlined method passed the first features of a tensor (``x[..., :self.d]``
    # at the call, partial rotary): the parameter -> that width (``self.d``), see _width
    widths: dict | None = None
    # the call an assignment unpacks into n names (``a, b = self.helper(x)``): (call, n)
    unpack: tuple | None = None
    # ``if self.<attr> == "<key>":`` tests around the statement, where ``__init__`` set the attribute
    # to a parameter: ((param, key), ...) (_keyed_ctors)
    keys: tuple = ()
    # ``if <name> == "<literal>":`` tests around the statement: ((name, literal), ...), read by
    # a table entry called in place under them (``OPTS[name](params)``, _narrowed_entry)
    literal_keys: tuple = ()
    # the values an inlined helper's returns unpack into, one per name (see _inline)
    ret_parts: tuple | None = None
    # local names holding the parts of a tensor split along one axis (``g = s.split(n, dim=1)``),
    # and lists of those parts each plus a term (``g = [b(p) + p for b, p in zip(m, g)]``):
    # name -> (the split tensor's name, the axis, whether a term was added)
    split_parts: dict = field(default_factory=dict)
    # local names holding a row maximum of another name (``m = s.amax(dim=-1, keepdim=True)``:
    # ("max", "s")) or a name divided by a number or a name (``s = x / alpha``: ("scaled", "x",
    # "alpha")), forgotten when either name is reassigned: a softmax shift written in steps
    # (canon.row_max_of, canon.scaled_name)
    row_parts: dict = field(default_factory=dict)
    # parameters of an inlined helper that the call fixes to a bool literal, passed or by the
    # default it leaves (``attn, v = self.scores(x, return_v=True)``), and that the helper never
    # rebinds: the name -> the bool.  ``if return_v:`` there goes one way (_if)
    flags: dict | None = None
    # a helper the root function calls: (its parameters, the call).  Those the call passes a
    # ``self.<attr>`` read (``_apply_canon_d(h, self.conv_d, ...)``) are the module's settings
    # there: an ``if`` of the helper testing only them tests the settings (_guard_text)
    settings: tuple | dict | None = None
    # an inlined helper's call: (its parameters, the call, the caller's context); an ``if`` of
    # the helper testing a parameter against None goes one way where the call hands a value
    # that is never None (structure/never_none.py)
    site: tuple | None = None


# torch.nn modules whose output is not one tensor (a tuple, or whatever their members return)
_NOT_ONE_TENSOR = frozenset({"torch.nn.LSTM", "torch.nn.GRU", "torch.nn.RNN", "torch.nn.MultiheadAttention",
                             "torch.nn.Sequential", "torch.nn.ModuleList", "torch.nn.ModuleDict",
                             "torch.nn.Transformer", "torch.nn.Module"})


def _tensor_valued(node: Node) -> bool:
    """Is ``node``'s output one tensor: a canonical tensor operation, or a call of a layer of
    torch.nn's that returns one (a Linear; not an LSTM's tuple)?"""
    if node.canon:
        return True
    return node.kind == "layer" and bool(node.types) and all(
        t.startswith("torch.nn.") and t not in _NOT_ONE_TENSOR for t in node.types)


# the literals a helper's parameter is bound to where it is inlined (a Const argument): numbers,
# the axes and fill values a helper reads (flags and None stay names: a call passing them is
# common, and a branch on them is read both ways anyway)
_LITERAL_TYPES = {int: True, float: True}


class _Stop(Exception):
    """Raised when a function is too large to analyse within the budget."""


# Operations whose result is a tensor of their operands' dtype (``w.to(t)`` of such a t casts w
# to a value's dtype and device: FlowBuilder._like_view), and how far back its producer is looked for
_TENSOR_MATH = frozenset({"torch.add", "torch.sub", "torch.mul", "torch.div", "torch.pow", "torch.mean",
                          "torch.rsqrt", "torch.sqrt"})
_LIKE_LOOKBACK = 33


class FlowTooLarge(Exception):
    """A function whose flow graph would pass ``FlowBuilder.MAX_NODES``: the file is reported as
    too large to analyse (one line), instead of the valve's signal escaping as a crash."""


def _int_or_str(expr):
    """The int (``-1``) or string (``"mul"``) an expression writes, else None: a setting's
    value every construction in the file passes (FlowBuilder._fixed_literal)."""
    if expr.__class__ is ast.Constant and expr.value.__class__ is str:
        return expr.value
    return _int_literal(expr)



def _rebinds(comp: ast.ListComp | ast.GeneratorExp, gen: ast.comprehension) -> bool:
    """Whether the element or a filter of ``comp`` binds a name of its loop target again (an
    inner comprehension's loop, a lambda's parameter, a walrus): that name there is not the
    outer list's member, so the loop alias would misread it."""
    names = {n.id for n in ast_walk(gen.target) if n.__class__ is _NAME}
    for part in (comp.elt, *gen.ifs):
        for node in ast_walk(part):
            cls = node.__class__
            if cls is ast.Lambda:
                a = node.args
                if any(arg.arg in names for arg in (*a.posonlyargs, *a.args, *a.kwonlyargs,
                                                    *((a.vararg,) if a.vararg else ()),
                                                    *((a.kwarg,) if a.kwarg else ()))):
                    return True
            elif cls is ast.NamedExpr:
                if node.target.__class__ is _NAME and node.target.id in names:
                    return True
            elif cls is ast.comprehension:
                if any(n.__class__ is _NAME and n.id in names for n in ast_walk(node.target)):
                    return True
    return False

class FlowBuilder:
    MAX_NODES = 20000

    def __init__(self, names: ModuleNames, cls: ClassInfo | None, lines: list[str] | None = None, package=None,
                 text: str | None = None, dispatches: dict | None = None):
        self.names = names
        self.package = package  # siblings.Package: the package's other modules, or None
        self.lines = lines
        # the text ``lines`` was split from (``"\n".join(lines)``), when the caller holds it: the
        # whole-file text tests read it as it is instead of joining the lines again
        self.text = text
        self.cls = cls
        self.nodes: list[Node] = []
        self.out: list[list[tuple[int, tuple | None]]] = []
        self.instances = 0
        self.temps = 0
        self.moved_products = False
        self.key_cats: list = []
        self.producers: dict[str, Node] = {}  # temporary value -> the node computing it
        # id of a same-file function (or "sibling:<fqn>" for another module's) -> the GELU variant it computes
        self._formulas: dict = {}
        self._annotated: dict[str, list] = {}  # "<func:param>" -> the layer its annotation names (bindings.Ctor)
        self._softmaxes: dict[int, str] = {}  # id of a same-file function -> the softmax's dtype ("": none)
        self._layer_canon: dict[str, tuple] = {}  # layer path -> (definite op, maybe ops, constructor kwargs)
        self._identities: dict[str, bool] = {}  # layer path -> bound to nn.Identity() alone
        self._inherited: set | None = None  # ids of nodes a torch base's method computes (Flow.inherited)
        self._through: dict[int, bool] = {}  # id of a same-file helper -> it returns a tensor as it is
        self._picked: dict[str, tuple | None] = {}  # attribute -> the method(s) __init__ binds it to
        self._pickable: dict | None = None  # picked_attributes of the class, on first use
        # a method chosen by a setting (setting_dispatch): only a file whose text holds
        # ``getattr(self, self.`` asks; attribute -> the branches' values, on first use
        # (``dispatches``: the caller's class_dispatches of ``cls``, read once per class and
        # shared by its roots' builders -- only read here; None: worked out here)
        self._setting_values: dict = {}  # attribute -> its decided values (class_dispatches)
        if dispatches is not None:
            self._setting_values = dispatches
        elif cls is not None and text is not None and DISPATCH_GATE in text:
            self._setting_values = class_dispatches(cls, names, text)
        self._dispatching = bool(self._setting_values)
        self._guard_texts: dict[int, tuple] = {}  # id of a test it writes -> (test, its text)
        self._dispatch_locals: dict = {}  # function -> its locals bound to getattr(self, self.<attr>)
        self._positions: dict[str, bool] = {}  # ModuleList attribute -> its literal indices name fixed members
        self._bias_adders: dict[str, bool] = {}  # layer path -> a same-file module adding a bias to its input
        # opaque value (``h[0]``, ``x.shape``) -> the names it reads: a node reading the opaque
        # value reads them too (liveness: ``self.proj(h[0])`` keeps ``h`` alive)
        self.opaque_uses: dict[str, frozenset] = {}
        self._literal_names: dict[str, bool] = {}  # literals.literal_keywords' cache
        self._tables: dict[str, tuple | None] = {}  # literals.literal_table's, by name
        self._assigned: dict = {}  # function -> _assigned_choices' names, once per function
        self._flag_checked: dict[str, bool] = {}  # attribute -> nothing else in the file writes it
        self._root_params: frozenset[str] = frozenset()  # the built function's parameters
        # value key -> the rank an ``assert x.dim() == 3`` states for it where the assert runs
        # (the run stops there otherwise): read by the rank pass (structure/ranks.py)
        self.asserted: dict[str, int] = {}
        # result of an inlined helper -> the values its returned tuple's elements were copied to
        self._parts: dict[str, tuple] = {}
        self._tuple_returns: dict[tuple, bool] = {}  # (id of a helper, n) -> _returns_tuple
        # rows step's temporary -> its slice's text, for a slice of constants (``x[:, 1:]``):
        # the same slice of the same value written again is the same tensor (_recomputed)
        self._slices: dict[str, str] = {}
        # the same texts by the subscript's span, which a later renaming of the step's
        # temporary leaves as it is (Flow.slices)
        self._slice_at: dict[tuple, str] = {}
        # id of a ``Module(...)`` built and called at once -> its forward as a function (_built_forward)
        self._built_forwards: dict[int, ast.FunctionDef | None] = {}

    # ------------------------------------------------------------------ graph plumbing
    def _new(self, ctx: _Ctx, frontier: list, **fields) -> tuple[Node, list]:
        if len(self.nodes) >= self.MAX_NODES:
            raise _Stop()
        uses = fields.get("uses")
        if uses and self.opaque_uses and not self.opaque_uses.keys().isdisjoint(uses):
            # (the C-level test first: most nodes read no opaque value)
            extra = [self.opaque_uses[k] for k in uses if k in self.opaque_uses]
            fields["uses"] = uses.union(*extra)
        # Node(id=..., func=..., stmt=..., scope=..., inlined=..., **fields), without the call
        # (_node_maker).  The keywords __init__ refused still raise TypeError (tested when a
        # key tuple is first met: a tuple made again holds the same keys).
        given = tuple(fields)
        make = _NODE_MAKERS.get(given)
        if make is None:
            if "kind" not in fields or not _FREE_FIELDS.issuperset(fields):
                raise TypeError(f"Node fields: {sorted(fields)}")
            make = _NODE_MAKERS[given] = _node_maker(given)
        nodes = self.nodes
        node = make(len(nodes), ctx.func, ctx.stmt, ctx.scope, ctx.instance > 0, fields)
        outs = node.outs
        if len(outs) == 1 and outs[0].key.startswith("%"):
            self.producers[outs[0].key] = node
        nodes.append(node)
        out = self.out
        out.append([])
        node_id = node.id
        for pred, guard in frontier:
            edge = (node_id, guard)
            edges = out[pred]
            if edge not in edges:
                edges.append(edge)
        return node, [(node_id, None)]

    def build(self, func: ast.FunctionDef | ast.AsyncFunctionDef, qualname: str) -> Flow:
        ctx = _Ctx(instance=0, func=qualname, stack=(func.name,), definition=func)
        args = func.args
        self._root_params = frozenset(a.arg for a in (*args.posonlyargs, *args.args, *args.kwonlyargs))
        self._root_func = func
        if args.defaults or args.kwonlyargs:
            self._default_choices(func, ctx)
        self._import_choices(func, ctx)
        self.asserted = {}
        self._inherited = None
        self.moved_products = False  # an einsum product written with its axes moved (layouts.read)
        self.grouped_products = False  # an einsum read as attention over grouped axes (groups.read)
        self.key_cats: list = []  # two-part cats along the last axis (key_cats.read)
        if self.cls is not None and self.cls.passed_in and func is self.cls.methods.get("forward"):
            # forward(..., dropout=None) calling dropout(p): the layer the package's other
            # modules pass in for it (bindings._passed_in)
            ctx.layer_alias.update(self.cls.passed_in)
        if self.cls is not None and func.body and func.body[0].__class__ is ast.Assign \
                and func.body[0].targets[0].__class__ is ast.Tuple and func.body[0].value.__class__ is _AST_CALL:
            # l, bn = self._modules.values(): each name the member registered in that place
            ctx.layer_alias.update(unpacked_members(func.body[0], self.cls))
        if self.lines is not None and func.body and "nn" in "".join(self.lines[func.lineno - 1:func.body[0].lineno - 1]):
            # (a signature that never writes ``nn``, most, annotates no parameter with a layer)
            ctx.layer_alias.update(self._annotated_layers(func))
        entry, frontier = self._new(ctx, [], kind="entry")
        try:
            frontier = self._body(func.body, frontier, ctx)
        except _Stop:
            raise FlowTooLarge(f"{qualname} has more than {self.MAX_NODES:,} flow-graph nodes; "
                               "too large to analyse") from None
        except RecursionError:
            frontier = [(entry.id, None)]
        exit_node, _ = self._new(ctx, frontier + ctx.ret_frontier, kind="exit")
        read_in = None
        if self.moved_products:
            # einsum("ibnd,jbnd->ijbn") scores normalised over the keys' written axis: read in
            # the product's own layout (see structure/layouts.py)
            read_in = layouts.read(self.nodes)
        if self.grouped_products:
            # attention over grouped axes, the key group flattened for the softmax (groups.py)
            groups.read(self.nodes)
        if self.key_cats:
            # scores of one query against two key blocks concatenated on the key axis (key_cats.py)
            key_cats.read(self.nodes, self.key_cats)
        # a softmax over the scores flattened to rows, viewed straight back (structure/rows.py),
        # or over one query's scores with its size-1 axis squeezed (structure/singletons.py)
        squeezed = rows.read(self.nodes)
        if squeezed:
            read_in = {**(read_in or {}), **squeezed}
        if self.asserted or ranks.wanted(self.nodes):
            # softmax(w, dim=2) of a 3-D w is dim=-1 (see structure/ranks.py)
            ranks.normalise(self.nodes, lambda sp: segment(self.lines, sp) if self.lines is not None else "",
                            self._scalar_attribute, self.out, self.asserted)
        return Flow(qualname, self.nodes, self.out, entry.id, exit_node.id, self._root_params,
                    _recomputed(self.nodes, self.out, entry.id, self._slices), read_in or None,
                    self._slice_at or None, self.names.classes,
                    frozenset(self._inherited) if self._inherited else None)

    def _default_choices(self, func: ast.FunctionDef | ast.AsyncFunctionDef, ctx: _Ctx,
                         passed: frozenset = frozenset()) -> None:
        """A parameter whose default names an imported callable (``optimizer=optim.Adam``) and
        that the body never binds again: a call through it (``optimizer(params, lr=lr)``) calls
        that callable unless the caller passes another, so it is read as a callee chosen at run
        time (``klass = Lion if use_lion else Adam``, Node.choices), with the default as its one
        known choice: the fix then passes its keywords only when the parameter *is* the default.
        For an inlined helper, ``passed`` names the parameters its call passes (they hold the
        arguments); one the call leaves out holds its default there just the same
        (``self.training(loader)`` of ``def training(self, loader, opt_func=torch.optim.Adam)``)."""
        args = func.args
        positional = (*args.posonlyargs, *args.args)
        pairs = [*zip(positional[len(positional) - len(args.defaults):], args.defaults),
                 *((a, d) for a, d in zip(args.kwonlyargs, args.kw_defaults) if d is not None)]
        found = {}
        for param, default in pairs:
            if param.arg in passed:
                continue
            kind = default.__class__
            if kind is not ast.Attribute and kind is not ast.Name:
                continue
            root = default
            while root.__class__ is ast.Attribute:
                root = root.value
            if root.__class__ is not ast.Name or root.id in self._root_params:
                continue
            fqn = self.names.resolve(default)
            if fqn is not None:
                found[param.arg] = ((fqn, span(default)),)
        if not found:
            return
        for node in walk(func):
            # bound again anywhere in the body (an assignment, a loop or with target, del,
            # global/nonlocal): the name no longer holds the default for sure, not read
            if node.__class__ is ast.Name and node.id in found and node.ctx.__class__ is not ast.Load:
                del found[node.id]
            elif node.__class__ in (ast.Global, ast.Nonlocal):
                for name in node.names:
                    found.pop(name, None)
            if not found:
                return
        ctx.choice_alias.update(found)

    def _import_choices(self, func: ast.FunctionDef | ast.AsyncFunctionDef, ctx: _Ctx) -> None:
        """A name the two branches of one of the function's own ``if``/``else`` statements bind
        by imports, each to another callable (``if mup: from mup.optim import MuSGD as SGD`` /
        ``else: from torch.optim import SGD``), and that the function binds nowhere else: a
        call through it (``SGD(params, lr=lr)``) calls either, chosen at run time (Node.choices,
        as ``klass = SGD if sgd else Adam``).  No expression there names one alternative apart
        (both are ``SGD``): each choice's span is None, and the fix spells the rule's callee
        from the module's own imports (synth.plan._guarded_call)."""
        found: dict[str, tuple] = {}
        for stmt in func.body:
            if stmt.__class__ is not ast.If or not stmt.orelse:
                continue
            first, second = stmt.body[0].__class__, stmt.orelse[0].__class__
            if first not in _IMPORTS or second not in _IMPORTS:
                continue  # (nearly every if: no import opens either branch)
            body, orelse = imported_by(stmt.body), imported_by(stmt.orelse)
            if not body or not orelse:
                continue
            for name in body.keys() & orelse.keys():
                if body[name] != orelse[name] and self.names.resolve(ast.Name(id=name)) is None:
                    found[name] = ((body[name], None), (orelse[name], None))
        if not found:
            return
        imported = dict.fromkeys(found, 0)
        for node in walk(func):
            # bound again (an assignment, a loop or with target, del, global) or imported again
            if node.__class__ is ast.Name and node.id in found and node.ctx.__class__ is not ast.Load:
                del found[node.id]
            elif node.__class__ in _IMPORTS:
                for alias in node.names:
                    bound = alias.asname or alias.name.split(".")[0]
                    if bound in imported:
                        imported[bound] += 1
            elif node.__class__ in (ast.Global, ast.Nonlocal):
                for name in node.names:
                    found.pop(name, None)
        # (the two imports of the if's branches, no third)
        ctx.choice_alias.update({name: choices for name, choices in found.items() if imported[name] == 2})

    def _assigned_choices(self, definition) -> dict:
        """The names a function binds only by plain assignments of imported callables
        (``optimizer_fn = AdamW`` and, under an ``if``, ``optimizer_fn = Adam``), each with
        ((fqn, span of one assignment's value), ...): a name the function assigns is local all
        through it, so a call through it calls the value of whichever assignment ran last, one of
        those callables, chosen at run time (Node.choices, as ``klass = Adam if normal else
        AdamW``; the fix guards its keywords by them).  Any other binding of the name anywhere
        in the definition (a parameter, a loop, with or except target, an augmented, annotated,
        unpacking or nested scope's assignment, ``:=``, del, an import, a def or class,
        global/nonlocal), or a value whose root name is bound there, leaves the name out.  Read
        once per function, and only when such an assignment is met."""
        found = self._assigned.get(definition)
        if found is not None:
            return found
        values: dict[str, list] = {}
        plain: set = set()  # the target nodes of the qualifying assignments
        stack = list(definition.body)
        while stack:  # the function's own statements (a nested scope's binding spoils below)
            stmt = stack.pop()
            kind = stmt.__class__
            if kind is ast.Assign:
                target = stmt.targets[0]
                if not stmt.targets[1:] and target.__class__ is _AST_NAME \
                        and stmt.value.__class__ in (_AST_NAME, ast.Attribute):
                    values.setdefault(target.id, []).append(stmt.value)
                    plain.add(target)
            elif kind not in _SCOPES:
                for block in blocks(stmt):
                    stack += block
        spoiled: set = set()
        for node in walk(definition):
            kind = node.__class__
            if kind is _AST_NAME:
                if node.ctx.__class__ is not ast.Load and node not in plain:
                    spoiled.add(node.id)
            elif kind in BINDERS and node is not definition:
                spoiled.update(bound_by(node))
        found = {}
        for name, exprs in values.items():
            if name in spoiled:
                continue
            choices: dict = {}
            for expr in exprs:
                root = expr
                while root.__class__ is ast.Attribute:
                    root = root.value
                fqn = self.names.resolve(expr) if root.__class__ is _AST_NAME and root.id not in spoiled \
                    and root.id not in values else None
                if fqn is None:
                    break
                choices.setdefault(fqn, span(expr))
            else:
                found[name] = tuple(choices.items())
        self._assigned[definition] = found
        return found

    def _scalar_attribute(self, attr: str) -> bool:
        """Whether every assignment the class makes to ``self.<attr>`` is a number
        (``self.scale = dim_head ** -0.5``): names, attributes, literals, arithmetic and the
        number functions of math (a tensor is built by a call of torch or nn)."""
        if self.cls is None:
            return False
        found = self.cls.scalar_attrs  # once per class, not per flow
        if found is None:
            found = self.cls.scalar_attrs = {}
            stack = list(self.cls.node.body)  # statements only: expressions hold no assignment
            while stack:
                node = stack.pop()
                for block in ("body", "orelse", "finalbody", "handlers", "cases"):
                    stack.extend(getattr(node, block, ()))
                if isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)) and node.value is not None:
                    targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                    for target in targets:
                        if isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name) \
                                and target.value.id == "self":
                            found[target.attr] = found.get(target.attr, True) and _number_expr(node.value)
        return found.get(attr, False)

    def _literal_flag(self, test: ast.expr) -> bool | None:
        """The value of an ``if`` test that reads a flag the file fixes: ``self.<attr>`` (or
        ``not self.<attr>``) where every assignment the class makes to it is the same bool
        literal (GLIP's ``self.clamp_min_for_underflow = True`` in ``__init__``) and nothing
        else in the file can set it on the class's instances (:meth:`_flag_fixed`).  Such a
        branch is taken (or not) on every run of
        the model as built, so only the way it goes is a path: a clamp under it sits between
        the scores and the softmax on every path.  None for any other test."""
        negate = False
        if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
            negate, test = True, test.operand
        if not (isinstance(test, ast.Attribute) and isinstance(test.value, ast.Name) and test.value.id == "self") \
                or self.cls is None or self.lines is None:
            return None
        flags = self.cls.literal_flags
        if flags is None:
            flags = self.cls.literal_flags = {}
            stack = list(self.cls.node.body)
            while stack:
                node = stack.pop()
                for block in ("body", "orelse", "finalbody", "handlers", "cases"):
                    stack.extend(getattr(node, block, ()))
                if isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
                    targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                    for target in targets:
                        if isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name) \
                                and target.value.id == "self":
                            value = node.value
                            literal = value.value if isinstance(node, (ast.Assign, ast.AnnAssign)) \
                                and isinstance(value, ast.Constant) and isinstance(value.value, bool) else None
                            known = flags.get(target.attr, literal)
                            flags[target.attr] = literal if known is literal else None
        value = flags.get(test.attr)
        if value is None:
            return None
        cache = self._flag_checked
        if test.attr not in cache:
            cache[test.attr] = self._flag_fixed(test.attr)
        if not cache[test.attr]:
            return None
        return value != negate

    def _flag_fixed(self, attr: str, text: str | None = None) -> bool:
        """Whether nothing in the file but the class's own literal assignments can set
        ``<obj>.<attr>`` on its instances: no write through another object (``block.attr =
        False``), no ``setattr`` or ``getattr`` string naming it, no ``self.<attr> =`` in a same-file
        class related to this one (a base or a subclass), no class attribute of that name here.
        Another class's own ``self.<attr> = flag`` sets its own instances only."""
        if text is None:  # (a caller may pass the file with reads it knows harmless masked)
            text = self.text if self.text is not None else "\n".join(self.lines)
        if _attr_written(text, attr):
            return False
        if any(isinstance(st, (ast.Assign, ast.AnnAssign)) and any(
                isinstance(t, ast.Name) and t.id == attr
                for t in (st.targets if isinstance(st, ast.Assign) else [st.target])) for st in self.cls.node.body):
            return False
        classes = self.names.classes
        def bases(node: ast.ClassDef) -> set[str]:
            return {b.id for b in node.bases if isinstance(b, ast.Name)}
        related, todo = {self.cls.name}, [self.cls.name]
        while todo:  # bases and subclasses, transitively, within the file
            current = todo.pop()
            node = classes.get(current)
            linked = (bases(node) if node is not None else set()) | {
                other for other, other_node in classes.items() if current in bases(other_node)}
            for other in linked - related:
                related.add(other)
                todo.append(other)
        name = re.escape(attr)
        write = re.compile(rf"\bself\.{name}\s*(?:[-+*/%@&|^]|//|\*\*|<<|>>)?=(?!=)")
        for other in related - {self.cls.name}:
            node = classes.get(other)
            if node is not None and write.search("\n".join(self.lines[node.lineno - 1:node.end_lineno])):
                return False
        return True

    def _text(self, expr: ast.AST) -> str:
        """The source text of an expression (ast.unparse is ten times slower)."""
        if self.lines is None:
            return ast.unparse(expr)
        return segment(self.lines, (expr.lineno, expr.col_offset, expr.end_lineno, expr.end_col_offset))

    # ------------------------------------------------------------------ names and values
    def _key(self, name: str, ctx: _Ctx) -> str:
        return name if ctx.instance == 0 else f"{name}@{ctx.instance}"

    @staticmethod
    def _shifts(expr: ast.BinOp, ctx: _Ctx) -> bool:
        """``x - rowmax(x)`` (canon.subtracts_row_max), the row max maybe held in a name
        (``m = x.amax(dim=-1, keepdim=True); x - m``: ctx.row_parts)."""
        right = expr.right
        if right.__class__ is ast.Name and expr.left.__class__ is ast.Name and ctx.row_parts:
            return ctx.row_parts.get(right.id) == ("max", expr.left.id)
        return canonical.subtracts_row_max(expr)

    def _unscaled_shift(self, expr: ast.BinOp, ctx: _Ctx) -> str | None:
        """The name ``x`` when ``expr`` is ``(s - rowmax(s)) * a`` (either order) with ``s``
        holding ``x / a`` (the same number or name ``a``): None otherwise."""
        for shifted, factor in ((expr.left, expr.right), (expr.right, expr.left)):
            if not (isinstance(shifted, ast.BinOp) and isinstance(shifted.op, ast.Sub)
                    and shifted.left.__class__ is ast.Name and self._shifts(shifted, ctx)):
                continue
            part = ctx.row_parts.get(shifted.left.id)
            if part is not None and part[0] == "scaled" and part[2] == ast.unparse(factor):
                return part[1]
        return None

    def _name_value(self, name: str, ctx: _Ctx) -> Value:
        if name in ctx.params:
            return ctx.params[name]
        return Ref(self._key(name, ctx), name)

    def _temp(self, text: str) -> Ref:
        self.temps += 1
        return Ref(f"%{self.temps}", text)

    def _uses_of(self, expr: ast.AST, ctx: _Ctx) -> frozenset:
        keys = set()
        # (walk()'s loop written out: no generator resumption per node; the keys are a set, so
        # the order of the visit does not matter)
        stack = [expr]
        pop = stack.pop
        push = stack.append
        fields = _FIELDS
        while stack:
            sub = pop()
            kind = sub.__class__
            if kind is _AST_NAME:
                # (a name has no child to visit: its one node field is the context)
                if sub.ctx.__class__ is _LOAD:
                    if ctx.chunked and sub.id in ctx.chunked:
                        keys.update(ctx.chunked[sub.id])
                        continue
                    # (_name_value written out: a parameter's value when it is a reference, else
                    # the name's key, without making its Ref)
                    name = sub.id
                    if name in ctx.params:
                        value = ctx.params[name]
                        if isinstance(value, Ref):
                            keys.add(value.key)
                    else:
                        keys.add(name if ctx.instance == 0 else f"{name}@{ctx.instance}")
                continue
            names = fields.get(kind)
            if names is None:
                names = _fields_of(kind)
            for field_name in names:
                value = getattr(sub, field_name, None)
                if type(value) is list:
                    stack += [v for v in value if isinstance(v, _AST)]
                elif isinstance(value, _AST):
                    push(value)
            if kind is ast.Attribute and sub.value.__class__ is _AST_NAME and sub.value.id == "self":
                keys.add("self." + sub.attr)
        return frozenset(keys)

    def _opaque(self, expr: ast.expr, ctx: _Ctx) -> Ref:
        ref = self._opaque_ref(expr, ctx)
        if ref.key not in self.opaque_uses and not (
            isinstance(expr, ast.Attribute) and isinstance(expr.value, ast.Name) and expr.value.id == "self"
        ):
            self.opaque_uses[ref.key] = self._uses_of(expr, ctx) - {ref.key}
        return ref

    def _opaque_ref(self, expr: ast.expr, ctx: _Ctx) -> Ref:
        text = self._text(expr)
        if isinstance(expr, ast.Attribute) and isinstance(expr.value, ast.Name) and expr.value.id == "self":
            return Ref(text, text)
        root = expr
        while isinstance(root, (ast.Attribute, ast.Subscript)):
            root = root.value
        if isinstance(root, ast.Name):
            base = self._name_value(root.id, ctx)
            if isinstance(base, Ref) and base.key != root.id:
                return Ref(base.key + "|" + text, text)
        return Ref(text if ctx.instance == 0 else f"{text}@{ctx.instance}", text)

    # ------------------------------------------------------------------ expressions
    def _value(self, expr: ast.expr, frontier: list, ctx: _Ctx) -> tuple[Value, list]:
        """Evaluate ``expr``: emit nodes for calls and operations; return its value."""
        kind = expr.__class__
        if kind is _NAME and not (ctx.chunked and expr.id in ctx.chunked):
            # (the two commonest kinds first, by exact class: a name not holding chunks is its
            # value, _name_value written out; a call is _call's.  Other kinds, and a name of
            # chunks, take the tests below, which give these two the same answers)
            name = expr.id
            params = ctx.params
            if name in params:
                return params[name], frontier
            return Ref(name if ctx.instance == 0 else f"{name}@{ctx.instance}", name), frontier
        if kind is _CALL:
            func = expr.func
            if func.__class__ is ast.Attribute and func.attr in CASTS and func.value.__class__ is _NAME \
                    and not expr.args and not expr.keywords:
                return self._cast(expr, frontier, ctx)
            return self._call(expr, frontier, ctx)
        if kind is _CONSTANT:
            return Const(expr.value), frontier
        if kind is ast.UnaryOp and expr.op.__class__ is ast.USub and expr.operand.__class__ is _CONSTANT:
            value = expr.operand.value
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                return Const(-value), frontier
        if isinstance(expr, ast.Name):
            if ctx.chunked and expr.id in ctx.chunked:
                # the whole tuple of chunks: a value that reads every chunk
                out = self._temp("")
                _, frontier = self._new(ctx, frontier, kind="other", outs=(out,),
                                        uses=frozenset(ctx.chunked[expr.id]), defs=frozenset({out.key}),
                                        span=span(expr))
                return out, frontier
            return self._name_value(expr.id, ctx), frontier
        if ctx.chunked and kind is ast.Subscript and expr.value.__class__ is _AST_NAME \
                and expr.value.id in ctx.chunked:
            # c[1] of c = h.chunk(2, dim=-1): that chunk (c[-1] the last)
            keys = ctx.chunked[expr.value.id]
            if expr.value.id in ctx.stacked:
                index = _stacked_index(expr.slice)
            else:
                index = _int_literal(expr.slice)
            if index is not None and -len(keys) <= index < len(keys):
                return self._chunk_ref(expr.value.id, index % len(keys), ctx), frontier
        if isinstance(expr, ast.Call):
            return self._call(expr, frontier, ctx)
        if kind is _BINOP and (expr.op.__class__ is ast.Add or expr.op.__class__ is ast.Sub) \
                and (blend := canonical.mask_blend(expr)) is not None:
            # w * b - 1e4 * (1 - b): w.masked_fill(b == 0, -1e4) for the 0/1 mask b
            x, b, constant, fill = blend
            kept, frontier = self._value(x, frontier, ctx)
            mask, frontier = self._value(b, frontier, ctx)
            out = self._temp("")
            view = View((kept,), (("mask", mask), ("value", Const(fill))), (span(x),),
                        ((span(b), span(b)), (span(constant), span(constant))))
            _, frontier = self._new(
                ctx, frontier, kind="op", op="canon.mask_blend", args=(kept, mask), outs=(out,),
                uses=_keys((kept, mask)), defs=frozenset({out.key}), span=span(expr),
                arg_spans=(span(x), span(b)), canon="torch.Tensor.masked_fill", view=view,
            )
            return out, frontier
        if expr.__class__ is ast.BinOp and expr.op.__class__ is ast.Add and expr.left.__class__ is ast.BinOp \
                and expr.left.op.__class__ is ast.Add:
            summed = self._product_plus_terms(expr, frontier, ctx)
            if summed is not None:
                return summed
        if expr.__class__ is ast.BinOp and expr.op.__class__ is ast.Sub \
                and (canonical.subtracted_mask(expr) or (expr.left.__class__ is ast.BinOp
                                                         and (canonical.subtracted_term(expr)
                                                              or self._scaled_scores_minus(expr, ctx)))):
            # s - 1e30 * m: s + (-(1e30 * m)), a large additive mask subtracted (a negation
            # node, then an add whose right operand is written at the subtracted product);
            # s + a - b likewise: the sum's last term negated (canon.subtracted_term)
            left, frontier = self._value(expr.left, frontier, ctx)
            right, frontier = self._value(expr.right, frontier, ctx)
            negated, out = self._temp(""), self._temp("")
            spans = (span(expr.left), span(expr.right))
            _, frontier = self._new(
                ctx, frontier, kind="op", op="neg", args=(right,), outs=(negated,), uses=_keys((right,)),
                defs=frozenset({negated.key}), span=spans[1], arg_spans=(spans[1],),
            )
            op = TABLE.operator("+")
            view = self._origins(op, View((left, negated), (), spans, ())) if op is not None else None
            _, frontier = self._new(
                ctx, frontier, kind="op", op="+", args=(left, negated), outs=(out,),
                uses=_keys((left, negated)), defs=frozenset({out.key}), span=span(expr), arg_spans=spans,
                canon=(op.name if op else ""), view=(view if view is not None and view.origins else None),
            )
            return out, frontier
        if expr.__class__ is ast.BinOp and expr.op.__class__ is ast.Div and expr.left.__class__ is _CALL \
                and expr.left.func.__class__ is ast.Attribute and expr.left.func.attr == "sum":
            # x.pow(2).sum(-1, keepdim=True) / x.shape[-1]: a sum over an axis divided by that
            # axis's width is the mean over it (a step of torch.mean's)
            mean = self._mean_of_sum(expr, ctx)
            if mean is not None:
                summed, kwargs = mean
                value, frontier = self._value(summed, frontier, ctx)
                frontier = self._inner_calls(expr.right, frontier, ctx)
                out = self._temp("")
                view = View((value,), kwargs, (span(summed),), tuple((None, None) for _ in kwargs))
                _, frontier = self._new(
                    ctx, frontier, kind="call", op="torch.mean", args=(value,), outs=(out,),
                    uses=_keys((value,)) | self._uses_of(expr.right, ctx), defs=frozenset({out.key}),
                    span=span(expr), arg_spans=(span(summed),), canon="torch.mean", view=view,
                    inner=(span(expr.left), *(span(n) for n in ast_walk(expr.right) if n.__class__ is _CALL)),
                )
                return out, frontier
        if kind is _BINOP and type(expr.op) in BINOPS:
            left, frontier = self._value(expr.left, frontier, ctx)
            right, frontier = self._value(expr.right, frontier, ctx)
            out = self._temp("")
            symbol = BINOPS[type(expr.op)]
            op = TABLE.operator(symbol)
            spans = (span(expr.left), span(expr.right))
            view = self._origins(op, View((left, right), (), spans, ())) if op is not None else None
            canon, view = (op.name if op else ""), (view if view is not None and view.origins else None)
            if isinstance(expr.op, ast.MatMult) and self._embedding_weight(expr.right, transposed=True, ctx=ctx):
                # h @ self.embed.weight.T: logits over the embedding's entries (a tied head)
                canon, view = "canon.tied_logits", View((left,), (), (spans[0],), ())
            if isinstance(expr.op, ast.Sub) and self._shifts(expr, ctx):
                # sim - sim.amax(dim=-1, keepdim=True).detach(): the softmax that follows is
                # the same without it (shift invariance); a step of its own, not a mask
                canon, view = "canon.softmax_shift", View((left,), (), (spans[0],), ())
            elif isinstance(expr.op, ast.Mult) and ctx.row_parts:
                unscaled = self._unscaled_shift(expr, ctx)
                if unscaled is not None:
                    # (s - s.amax(-1, keepdim=True)) * a with s = x / a: the shift of x / a
                    # scaled back by a, x shifted by a row constant (CogView's relaxation)
                    canon, view = "canon.softmax_shift", View((self._name_value(unscaled, ctx),), (), (span(expr),), ())
            node, frontier = self._new(
                ctx, frontier, kind="op", op=symbol, args=(left, right), outs=(out,),
                uses=_keys((left, right)), defs=frozenset({out.key}), span=span(expr),
                arg_spans=spans, canon=canon, view=view,
            )
            return out, frontier
        if kind is ast.Attribute and TABLE.attribute(expr.attr) is not None and not (
            isinstance(expr.value, ast.Name) and expr.value.id == "self"
        ):
            # x.mT: an attribute that computes (a transpose of the last two axes)
            receiver, frontier = self._value(expr.value, frontier, ctx)
            op, values = TABLE.attribute(expr.attr)
            out = self._temp("")
            view = View((receiver,), tuple((k, Const(v)) for k, v in values), (span(expr.value),),
                        tuple((None, None) for _ in values))
            _, frontier = self._new(
                ctx, frontier, kind="method", op=expr.attr, args=(receiver,), outs=(out,), uses=_keys((receiver,)),
                defs=frozenset({out.key}), span=span(expr), arg_spans=(span(expr.value),), canon=op.name, view=view,
            )
            return out, frontier
        if kind is ast.Await:
            return self._value(expr.value, frontier, ctx)
        if kind is ast.NamedExpr:
            value, frontier = self._value(expr.value, frontier, ctx)
            target = self._name_value(expr.target.id, ctx)
            _, frontier = self._new(ctx, frontier, kind="copy", args=(value,), outs=(target,),
                                    uses=_keys((value,)), defs=_keys((target,)), span=span(expr))
            return target, frontier
        if kind is ast.Subscript and expr.slice.__class__ is ast.Constant and expr.slice.value == 0 \
                and expr.slice.value is not False and (
                    (ctx.called and expr.value.__class__ is _NAME and expr.value.id in ctx.called)
                    or (expr.value.__class__ is _CALL and self._member_call(expr.value))):
            # outputs[0] of outputs = self.attn(x), or self.attn(x)[0]: the module's first output
            receiver, frontier = self._value(expr.value, frontier, ctx)
            out = self._temp("")
            _, frontier = self._new(
                ctx, frontier, kind="method", op="__getitem__", args=(receiver,), outs=(out,),
                uses=_keys((receiver,)), defs=frozenset({out.key}), span=span(expr),
                arg_spans=(span(expr.value),), canon="canon.first", view=View((receiver,), (), (span(expr.value),), ()),
            )
            return out, frontier
        if (ctx.members or ctx.flat) and kind is ast.Subscript and expr.value.__class__ is _NAME \
                and (expr.value.id in ctx.members or expr.value.id in ctx.flat):
            if expr.value.id in ctx.flat:
                # flat[mask] of flat = x.view(-1, n): rows of a 2-D value (a row for an int)
                canon = "canon.rows" if _one_index(expr.slice) else None
            else:
                axis = ctx.members[expr.value.id]
                canon = ("canon.split_member" if expr.value.id in ctx.split else "canon.member") \
                    if _member_pick(expr.slice, axis) else (
                    "canon.rows" if _keeps_axis(expr.slice, axis) else None)
            if canon is not None:
                # logits[:, k] of a stack of the members' outputs on axis 1: the k-th member's
                # output (canon.member); logits[:, :, -n:]: a selection keeping the stack axis
                # whole, of each member's positions (canon.rows, see _keeps_axis)
                frontier = self._inner_calls(expr.slice, frontier, ctx)
                receiver, frontier = self._value(expr.value, frontier, ctx)
                out = self._temp("")
                _, frontier = self._new(
                    ctx, frontier, kind="method", op="__getitem__", args=(receiver,), outs=(out,),
                    uses=_keys((receiver,)) | self._uses_of(expr.slice, ctx), defs=frozenset({out.key}),
                    span=span(expr), arg_spans=(span(expr.value),), canon=canon,
                    view=View((receiver,), (), (span(expr.value),), ()),
                )
                return out, frontier
        rows = "canon.rows" if kind is ast.Subscript and expr.value.__class__ is _AST_NAME \
            and canonical.selects_rows(expr) else None
        if rows is None and (ctx.called or ctx.layer_outputs) and kind is ast.Subscript \
                and expr.value.__class__ is _NAME and expr.slice.__class__ in _MASK_INDEX \
                and (expr.value.id in ctx.called or ctx.layer_outputs and expr.value.id in ctx.layer_outputs
                     and self._layer_output_method(ctx.layer_outputs[expr.value.id])):
            # logits[mask] of logits = self.head(h): a mask of the leading axes (or indices of the
            # first) selects rows, the last axis whole (a layer's output: a tensor, of rank 2 or
            # more where a loss reads classes on its last axis)
            rows = "canon.rows"
        if rows is None and kind is ast.Subscript and expr.value.__class__ is _AST_NAME \
                and canonical.slices_two_leading(expr):
            rows = "canon.lead2"
        rest = ctx.called and kind is ast.Subscript and expr.value.__class__ is _NAME \
            and expr.value.id in ctx.called and _after_first(expr.slice)
        if rows is not None or rest:
            # logits[..., :-1, :]: the rows of a value (its last axis whole), a step of its own;
            # outputs[1:] or outputs[1] of outputs = self.attn(x): its outputs after the first
            frontier = self._inner_calls(expr.slice, frontier, ctx)
            receiver, frontier = self._value(expr.value, frontier, ctx)
            out = self._temp("")
            own = _keys((receiver,))
            uses = own | self._uses_of(expr.slice, ctx)
            if uses == own:
                self._slices[out.key] = self._slice_at[span(expr)] = self._text(expr.slice).replace(" ", "")
            _, frontier = self._new(
                ctx, frontier, kind="method", op="__getitem__", args=(receiver,), outs=(out,), uses=uses,
                defs=frozenset({out.key}), span=span(expr), arg_spans=(span(expr.value),), canon=rows or "",
                view=View((receiver,), (), (span(expr.value),), ()) if rows else None, rest=bool(rest),
            )
            return out, frontier
        if (kind is ast.Tuple or kind is ast.List) and (
                expr is ctx.returned or expr is ctx.held or any(e.__class__ is _CALL for e in expr.elts)) \
                and not any(isinstance(e, ast.Starred) for e in expr.elts):
            # return self.norm2(x + y), attn: a container of its elements' values; it reads what
            # they are, not the names inside a call that computed one of them (so does a list
            # or tuple one name is bound to: Transformer-XL's ``outputs = [self.norm(w + out)]``,
            # and one holding a call wherever it is: ``torch.cat((self.norm(h), x), 1)`` reads
            # the norm's output, not ``h`` a second time)
            values = []
            for element in expr.elts:
                value, frontier = self._value(element, frontier, ctx)
                values.append(value)
            out = self._temp("")
            _, frontier = self._new(ctx, frontier, kind="other", outs=(out,), uses=_keys(values),
                                    defs=frozenset({out.key}), span=span(expr))
            return out, frontier
        # Anything else: evaluate the calls inside it (in source order), then treat the
        # expression itself as an opaque value that reads what it mentions.
        if kind is ast.Attribute:
            # (``x.shape``, ``self.config.eps``: attributes of a name hold no call, so neither
            # walk below finds one; the commonest kind to reach here)
            root = expr.value
            while root.__class__ is ast.Attribute:
                root = root.value
            if root.__class__ is _NAME:
                return self._opaque(expr, ctx), frontier
        if (kind is ast.ListComp or kind is ast.GeneratorExp) and self.cls is not None:
            gen = self._comprehension_member(expr)
            if gen is not None:
                # [e["fc2"](e["act"](e["fc1"](x))) for e in self.experts]: the loop name calls
                # a member of the list on each pass, as ``for e in self.experts:`` aliases it
                # (_alias_loop_target: also ``enumerate``, ``zip`` of parallel lists, a slice;
                # a filter only picks which members run); the element's calls read with those
                # aliases, then restored
                aliases = ctx.layer_alias
                saved = dict(aliases)
                self._alias_loop_target(gen, ctx)
                try:
                    frontier = self._inner_calls(expr, frontier, ctx)
                finally:
                    aliases.clear()
                    aliases.update(saved)
                out = self._temp("")
                _, frontier = self._new(ctx, frontier, kind="other", outs=(out,), uses=self._uses_of(expr, ctx),
                                        defs=frozenset({out.key}), span=span(expr))
                return out, frontier
        met: list = []
        frontier = self._inner_calls(expr, frontier, ctx, met)
        if (kind is ast.Attribute or kind is ast.Subscript) \
                and not (True in met or met and _contains_call(expr)):
            # (the walk above has met every call or operator in ``expr`` but those inside a
            # lambda or a comprehension, which it marks unsure: _contains_call's second walk
            # only for those)
            return self._opaque(expr, ctx), frontier
        out = self._temp("")
        test = expr
        while test.__class__ is ast.UnaryOp and test.op.__class__ in (ast.Invert, ast.Not):
            test = test.operand
        if test.__class__ is ast.Compare or test.__class__ is ast.BoolOp:
            # ``ids > 0``, ``~(ids == pad)``, ``a and b``: a mask or a truth value made from
            # what it reads, not that value (match.Matcher._predicts_input stops there)
            _, frontier = self._new(ctx, frontier, kind="other", op="compare", outs=(out,),
                                    uses=self._uses_of(expr, ctx), defs=frozenset({out.key}), span=span(expr))
            return out, frontier
        _, frontier = self._new(ctx, frontier, kind="other", outs=(out,), uses=self._uses_of(expr, ctx),
                                defs=frozenset({out.key}), span=span(expr))
        return out, frontier

    def _comprehension_member(self, comp: ast.ListComp | ast.GeneratorExp) -> ast.comprehension | None:
        """The one loop of a comprehension over ``self.<attr>``, a list the class binds members
        of (``[m(x) for m in self.heads]``), maybe filtered (``if ...``), sliced, enumerated or
        zipped with other lists (:meth:`_alias_loop_target` reads its names); None otherwise."""
        if len(comp.generators) != 1:
            return None
        gen = comp.generators[0]
        it = gen.iter
        if gen.is_async:
            return None
        lists = (it,)
        if it.__class__ is _CALL and it.func.__class__ is _NAME and it.func.id in ("enumerate", "zip"):
            lists = it.args[:1] if it.func.id == "enumerate" else it.args
        bindings = self.cls.bindings
        for lst in lists:
            if lst.__class__ is ast.Subscript and lst.slice.__class__ is ast.Slice:
                lst = lst.value
            if lst.__class__ is ast.Attribute and lst.value.__class__ is _NAME and lst.value.id == "self" \
                    and (lst.attr + "[]" in bindings or lst.attr + "[][0]" in bindings):
                if _rebinds(comp, gen):
                    return None
                return gen
        return None

    def _cast(self, call: ast.Call, frontier: list, ctx: _Ctx) -> tuple[Value, list]:
        """``q.float()``: a cast of the name's value; the same cast of the same value again in one
        statement is the value already made (ModernBERT's ``(q.float() * cos) + (rotate_half(
        q.float()) * sin)`` rotates one tensor, not two equal ones)."""
        receiver, _ = self._value(call.func.value, frontier, ctx)
        key = (receiver.key, call.func.attr) if isinstance(receiver, Ref) else None
        casts = ctx.casts
        if key is not None and casts is not None and key in casts:
            return casts[key], frontier
        value, frontier = self._call(call, frontier, ctx)
        if key is not None and isinstance(value, Ref):
            if casts is None:
                casts = ctx.casts = {}
            casts[key] = value
        return value, frontier

    def _embedding_weight(self, expr: ast.expr, transposed: bool, ctx: _Ctx | None = None) -> bool:
        """Is ``expr`` the weight of an ``nn.Embedding`` this class binds (``self.embed.weight``,
        dtype casts allowed), transposed when ``transposed`` (``.T``, ``.t()``, ``.mT``,
        ``.transpose(0, 1)``, ``torch.transpose(w, 0, 1)``; a 2-D weight has no other swap)?
        A local name is read through its plain assignment (``w = self.item_embedding.weight``
        then ``h @ w.transpose(0, 1)``, the sequential recommenders' scoring over every item)."""
        if self.cls is None:
            return False
        expr = self._local(expr, ctx)
        if transposed:
            expr = untransposed(expr, self.names) if isinstance(expr, ast.expr) else None
            if expr is None:
                return False
            expr = self._local(expr, ctx)
        if not (isinstance(expr, ast.Attribute) and expr.attr == "weight" and isinstance(expr.value, ast.Attribute)
                and isinstance(expr.value.value, ast.Name) and expr.value.value.id == "self"):
            return False
        ctors = self.cls.bindings.get(expr.value.attr, ())
        return bool(ctors) and all(c.fqn == EMBEDDING and not c.table for c in ctors)

    def _inner_calls(self, expr: ast.expr, frontier: list, ctx: _Ctx, met: list | None = None) -> list:
        """Evaluate the calls and operators inside ``expr`` in source order.  ``met``, when
        given, gets True for each call or operator met, and None for a child the walk does not
        look through whole (a lambda, a comprehension, any other non-expression): empty, it
        says ``expr`` holds no call or operator below itself, what _contains_call would walk
        the tree again to find."""
        for child in children(expr):
            kind = child.__class__
            if kind is _AST_NAME or kind is _CONSTANT:
                continue  # (a leaf: no call in it, nothing below to visit)
            if kind is ast.Lambda:
                if met is not None:
                    met.append(None)
                if expr.__class__ in _TABLES:
                    # {"adam": lambda p: optim.Adam(p, lr=lr), ...}[name](params): a table of
                    # factories, each run when the table's entry is called; their calls are
                    # read where the table is written, as a lambda bound to a name is
                    frontier = self._inner_calls(child, frontier, ctx)
                continue
            if kind is _AST_CALL or kind is _BINOP:
                if met is not None:
                    met.append(True)
                _, frontier = self._value(child, frontier, ctx)
            elif isinstance(child, ast.expr):
                frontier = self._inner_calls(child, frontier, ctx, met)
            else:
                if met is not None:
                    met.append(None)
                if isinstance(child, ast.comprehension):
                    _, frontier = self._value(child.iter, frontier, ctx)
                    for cond in child.ifs:
                        frontier = self._inner_calls(cond, frontier, ctx)
        return frontier

    def _alike_arms(self, expr: ast.IfExp, ctx: _Ctx) -> str | None:
        """The first arm's layer when every arm of a conditional expression (nested ones too) is
        a layer attribute of the class built by the same constructors, plain calls, no table
        (``up = self.up_speech if mode == "speech" else self.up_vision``, two ``nn.Linear``): a
        call through the name runs that kind of layer whichever arm is taken.  None otherwise."""
        arms = [expr.body, expr.orelse]
        layers = []
        while arms:
            arm = arms.pop()
            if arm.__class__ is ast.IfExp:
                arms += (arm.body, arm.orelse)
                continue
            if arm.__class__ is not ast.Attribute:  # (a call-free test first: self.x arms only)
                return None
            layer = self._layer_of(arm, ctx)
            if layer is None:
                return None
            layers.append(layer)
        kinds = set()
        for layer in layers:
            ctors = self.cls.bindings.get(_attr(layer))
            # (what a container's output is, ``adopter.output_of...`` of its last member, carries
            # a note for the fixer, not a doubt about the class: the containers are compared)
            if not ctors or any(c.table or (c.unlike and not c.fqn.startswith(OUTPUT_OF)) for c in ctors):
                return None
            kinds.add(frozenset(c.fqn for c in ctors))
        if len(kinds) != 1:
            return None
        return layers[-1]  # (the arms are popped from the end: the last one read is the first arm)

    def _setting_norm_layer(self, layer: str) -> bool:
        """Is every binding of ``self.<attr>`` a same-file norm module typed by the norm its
        setting runs (LayerTyper._setting_norm: the norm's FQN, ``via`` the module's class)?"""
        ctors = self.cls.bindings.get(layer[5:]) if layer.startswith("self.") else None
        return bool(ctors) and all(c.fqn in SETTING_NORMS and c.via in self.names.classes and c.unlike
                                   for c in ctors)

    def _layer_of(self, func: ast.expr, ctx: _Ctx) -> str | None:
        cls = self.cls
        kind = func.__class__
        if kind is _AST_NAME:  # (a name is a layer only through an alias: no test below takes one)
            return ctx.layer_alias.get(func.id)
        if cls is None or not (kind is ast.Attribute or kind is ast.Subscript or kind is _AST_CALL):
            return None  # (what the tests below read: attributes, subscripts, getattr calls)
        member = self._dict_member(func, ctx)
        if member is not None:
            return member
        if kind is ast.Attribute:
            # (the attribute's tests under one class test: none of the tests after them takes one)
            holder = func.value
            if holder.__class__ is not _AST_NAME:
                # self.encoder.lm_head(x): the member ``__init__`` set itself, under its path
                # (bindings._submodule_member); tested in place: every such call asks
                if holder.__class__ is ast.Attribute and holder.value.__class__ is _AST_NAME \
                        and holder.value.id == "self":
                    key = f"{holder.attr}.{func.attr}"
                    if key in cls.bindings:
                        return "self." + key
                return None
            if ctx.row_alias and holder.id in ctx.row_alias and TABLE.method(func.attr) is None:
                # origin.dense_h_to_4h(x), origin = self.transformer.layers[i].mlp: a layer of that
                # row (its kind unknown here: a rule that needs a kind does not match it)
                return f"{ctx.row_alias[holder.id]}.{func.attr}"
            if holder.id == "self":
                if func.attr in cls.bindings:
                    return "self." + func.attr
                if func.attr not in cls.methods:
                    return "self." + func.attr
            if ctx.instance == 0 and holder.id in self._root_params and f"{holder.id}.{func.attr}" in cls.bindings:
                # attn.to_q(x), attn a parameter annotated with a same-file module class: that
                # class's layer (model._borrow_layers), in the root's own body only
                return f"{holder.id}.{func.attr}"
            return None
        if (func.__class__ is ast.Call and func.func.__class__ is ast.Name and func.func.id == "getattr"
                and len(func.args) == 2 and not func.keywords and func.args[0].__class__ is ast.Name
                and func.args[0].id == "self" and "getattr" not in self.names.imports
                and "getattr" not in self.names.functions and builtin_unbound(self.names, "getattr")):
            # getattr(self, f"conv{i}")(x): the layer setattr / add_module gave that name (or
            # name family, bindings.module_key); unknown when none did, or when the family's
            # members are not all one kind (which member a computed name reads is not known)
            key = module_key(func.args[1])
            if key is None or key not in cls.bindings:
                return None
            if "{}" in key and len({c.fqn for c in cls.bindings[key]}) != 1:
                return None
            return "self." + key
        if (
            isinstance(func, ast.Subscript)
            and isinstance(func.value, ast.Attribute)
            and isinstance(func.value.value, ast.Name)
            and func.value.value.id == "self"
        ):
            if func.value.attr == "_modules":
                # self._modules["bn_end" + str(i)]: the layer ``add_module`` gave that name (or
                # name family, bindings.module_key); unknown when none did, or when the family's
                # members are of more than one kind (as through getattr above)
                key = module_key(func.slice)
                if key is None or key not in cls.bindings or (
                        "{}" in key and len({c.fqn for c in cls.bindings[key]}) != 1):
                    return None
                return "self." + key
            index = func.slice
            if (index.__class__ is ast.Constant and index.value.__class__ is int
                    and f"{func.value.attr}[{index.value}]" in cls.bindings and self._positional(func.value.attr)):
                # self.layers[0](x) on an nn.ModuleList literal: the member at that position
                return f"self.{func.value.attr}[{index.value}]"
            if func.value.attr not in cls.bindings \
                    and class_table(cls.node, func.value.attr, self.lines, self.text) is not None:
                return None  # self.methods[name](params): an entry of a class-body literal table, no layer
            return f"self.{func.value.attr}[]"
        return None

    def _positional(self, attr: str) -> bool:
        """Does ``self.<attr>[k]`` always name the k-th member of the ``nn.ModuleList([...])``
        display ``__init__`` binds?  Yes when that is the attribute's one binding and no
        statement of the class assigns or deletes one of its items, calls a method that moves or
        removes members (``insert``, ``pop``, ...) or binds the attribute again (appending keeps
        every position).  Once per attribute."""
        found = self._positions.get(attr)
        if found is None:
            ctors = [c for c in self.cls.bindings.get(attr, ()) if not c.fqn.startswith(OUTPUT_OF)]
            found = len(ctors) == 1 and ctors[0].fqn == "torch.nn.ModuleList"
            stores = 0
            for node in ast_walk(self.cls.node) if found else ():
                if (node.__class__ is ast.Subscript and node.ctx.__class__ is not ast.Load) or (
                        node.__class__ is ast.Attribute and node.attr in LIST_REORDERS):
                    holder = node.value
                elif node.__class__ is ast.Attribute and node.ctx.__class__ is ast.Store:
                    holder = node
                    stores += node.attr == attr and node.value.__class__ is ast.Name and node.value.id == "self"
                    if stores < 2:
                        continue
                else:
                    continue
                if holder.__class__ is ast.Attribute and holder.attr == attr and holder.value.__class__ is ast.Name \
                        and holder.value.id == "self":
                    found = False
                    break
            self._positions[attr] = found
        return found

    def _dict_member(self, func: ast.expr, ctx: _Ctx) -> str | None:
        """``self.mlp.c_fc``, ``self.mlp["c_fc"]`` or ``m.c_fc`` (``m = self.mlp``): a member of
        an ``nn.ModuleDict`` that ``__init__`` binds (bindings record it as ``mlp.c_fc``); also
        ``layer["q_proj"]`` / ``self.layers[i]["q_proj"]`` of a row of an ``nn.ModuleList``
        whose rows are ModuleDicts (``layers[].q_proj``)."""
        if func.__class__ is ast.Attribute:
            holder, key = func.value, func.attr
        elif func.__class__ is ast.Subscript and func.slice.__class__ is ast.Constant and \
                isinstance(func.slice.value, str):
            holder, key = func.value, func.slice.value
        else:
            return None
        if holder.__class__ is ast.Name and holder.id in ctx.layer_alias:
            path = ctx.layer_alias[holder.id]
        elif holder.__class__ is ast.Attribute and holder.value.__class__ is ast.Name and holder.value.id == "self":
            path = "self." + holder.attr
        elif holder.__class__ is ast.Attribute and holder.value.__class__ is ast.Attribute:
            # self.txt_encoder.encoder.lm_head(h): a layer of a module held through held modules
            # (held_layers binds ``txt_encoder.encoder.lm_head``)
            chain = held_chain(holder)
            if chain is None:
                return None
            path = "self." + ".".join(chain)
        elif holder.__class__ is ast.Subscript and holder.value.__class__ is ast.Attribute \
                and holder.value.value.__class__ is ast.Name and holder.value.value.id == "self":
            # self.layers[i]["q_proj"]: a member of a row of the list (bindings record ``layers[].q_proj``)
            path = f"self.{holder.value.attr}[]"
        else:
            return None
        attr = f"{path[len('self.'):]}.{key}"
        return "self." + attr if attr in self.cls.bindings else None

    def _sequence(self, layer: str) -> list[str]:
        """The member layer paths of a Sequential bound to ``layer`` (empty if it is not one)."""
        if self.cls is None or layer.endswith("]") or not layer.startswith("self."):
            return []
        attr = layer[len("self."):]
        # (what its output is, ``adopter.output_of...`` of its last member, describes the same one)
        ctors = [c for c in self.cls.bindings.get(attr, []) if not c.fqn.startswith(OUTPUT_OF)]
        if len(ctors) != 1 or ctors[0].fqn != "torch.nn.Sequential":
            return []
        members = []
        index = 0
        while f"{attr}[{index}]" in self.cls.bindings:
            members.append(f"self.{attr}[{index}]")
            index += 1
        return members

    def _adds_bias(self, layer: str) -> bool:
        """Is every constructor of ``layer`` one same-file module class whose forward returns its
        input plus a bias (formulas.bias_add_module)?  Once per layer path."""
        found = self._bias_adders.get(layer)
        if found is None:
            ctors = self.cls.bindings.get(_attr(layer), []) if self.cls is not None else []
            built = {c.fqn for c in ctors}
            cls = self.names.classes.get(next(iter(built))) if len(built) == 1 else None
            found = self._bias_adders[layer] = cls is not None and bias_add_module(cls)
        return found

    def _key_test(self, test: ast.Compare) -> tuple | None:
        """(param, key) for ``self.<attr> == "<key>"`` where ``__init__`` sets ``self.<attr>`` to
        its parameter ``param`` (a top-level statement, the class's only assignment of it, the
        parameter never assigned in ``__init__``) and nothing else in the file sets the attribute
        (:meth:`_flag_fixed`); else None.  (Attribute and class checks, not calls: this runs for
        every ``if`` comparing an attribute, cProfile counts calls.)"""
        left, right = test.left, test.comparators[0]
        if test.ops[1:] or test.ops[0].__class__ is not ast.Eq or right.__class__ is not ast.Constant \
                or right.value.__class__ is not str or left.value.__class__ is not ast.Name or left.value.id != "self":
            return None
        param = self._held_param(left.attr)
        return None if param is None else (param, right.value)

    def _held_param(self, attr: str) -> str | None:
        """The ``__init__`` parameter ``self.<attr>`` holds for sure (``self.activation_type =
        activation`` at ``__init__``'s top level, :meth:`_kept_param`), else None."""
        attrs = self.cls.key_attrs
        if attrs is None:  # once per class: the attributes __init__'s top level sets to a parameter
            attrs = self.cls.key_attrs = {}
            init = self.cls.methods.get("__init__")
            if init is not None:
                for stmt in init.body:
                    if stmt.__class__ is ast.Assign and stmt.value.__class__ is ast.Name and not stmt.targets[1:]:
                        target = stmt.targets[0]
                        if target.__class__ is ast.Attribute and target.value.__class__ is ast.Name \
                                and target.value.id == "self":
                            attrs[target.attr] = stmt.value.id
        param = attrs.get(attr)
        if param is None:
            return None
        if param.__class__ is str:  # first use of this attribute: check it once
            param = attrs[attr] = (self._kept_param(attr, param),)
        return param[0]

    def _attr_choices(self, func: ast.Attribute) -> tuple:
        """``self.opt(params, lr=lr)`` where ``__init__(..., opt=torch.optim.Adam)`` set ``self.opt =
        opt`` and nothing else sets the attribute (:meth:`_held_param`): the default is the one
        known choice of a callee chosen at run time, as for a parameter called in its own function
        (:meth:`_default_choices`, Node.choices); () otherwise."""
        attr = func.attr
        found = self.cls.attr_choices
        if found is None:
            found = self.cls.attr_choices = {}
        if attr in found:
            return found[attr]
        choices = found[attr] = ()
        param = self._held_param(attr)
        if param is not None:
            args = self.cls.methods["__init__"].args
            positional = args.args
            pairs = [*zip(positional[len(positional) - len(args.defaults):], args.defaults),
                     *zip(args.kwonlyargs, args.kw_defaults)]
            default = next((d for a, d in pairs if a.arg == param), None)
            if default is not None and default.__class__ in (ast.Attribute, ast.Name):
                root = default
                while root.__class__ is ast.Attribute:
                    root = root.value
                params = {a.arg for a in (*args.posonlyargs, *args.args, *args.kwonlyargs)}
                fqn = self.names.resolve(default) if root.__class__ is ast.Name and root.id not in params else None
                if fqn is not None:
                    choices = found[attr] = ((fqn, span(default)),)
        return choices

    def _kept_param(self, attr: str, name: str) -> str | None:
        """``name`` when it is a parameter of ``__init__`` that ``__init__`` never assigns,
        ``self.<attr> =`` appears once in the class, and nothing else sets the attribute."""
        if not self._param_kept(name):
            return None
        node = self.cls.node
        text = "\n".join(self.lines[node.lineno - 1:node.end_lineno])
        if len(re.findall(rf"\bself\.{re.escape(attr)}\s*(?:[-+*/%@&|^]|//|\*\*|<<|>>)?=(?!=)", text)) != 1:
            return None
        cache = self._flag_checked
        if attr not in cache:
            cache[attr] = self._flag_fixed(attr)
        return name if cache[attr] else None

    def _param_kept(self, name: str) -> bool:
        """Whether ``name`` is a parameter of ``__init__`` that its body never assigns (its
        value there is the caller's, on every line)."""
        init = self.cls.methods["__init__"]
        args = init.args
        if not any(a.arg == name for a in args.args[1:] + args.kwonlyargs) or self.lines is None:
            return False
        # (read from the text, not by walking __init__'s tree: a statement assigning the name,
        # also in a tuple, a loop, a with or a walrus; a keyword argument ``f(kind=kind)`` is not one.
        # The body's lines only: a signature written one parameter a line reads ``kind="exact",``)
        name_re = re.escape(name)
        body = "\n".join(self.lines[init.body[0].lineno - 1:init.end_lineno])
        return re.search(rf"(?m)^\s*(?:[\w.\[\]\s]*,\s*)?\(?{name_re}\s*(?:,[^=\n]*)?(?:[-+*/%@&|^]|//|\*\*|<<|>>)?=(?!=)"
                         rf"|\b(?:for|as)\s+(?:[\w\s,(]*,\s*)?\(?{name_re}\b|\b{name_re}\s*:=", body) is None

    def _keyed_ctors(self, layer: str, keys: tuple) -> list:
        """The constructors of ``layer`` that ``__init__`` may have bound under the ``keys`` an
        enclosing ``if self.<attr> == "<key>":`` fixes: one built inside ``if <param> == "other":``
        (or in the ``else`` of ``if <param> == "<key>":``) is not the layer on this path."""
        branches = self.cls.key_branches
        if branches is None:  # once per class: the tests of those parameters around each statement
            branches = self.cls.key_branches = {}
            held = {p[0] for p in self.cls.key_attrs.values() if p.__class__ is tuple and p[0]}

            # (a stack, not a recursive closure: that would be a reference cycle, test_engine_gc)
            todo = [(self.cls.methods["__init__"].body, ())]
            while todo:
                body, tests = todo.pop()
                for stmt in body:
                    if isinstance(stmt, ast.If):
                        cond = stmt.test
                        if (isinstance(cond, ast.Compare) and len(cond.ops) == 1 and isinstance(cond.ops[0], ast.Eq)
                                and isinstance(cond.left, ast.Name) and cond.left.id in held
                                and isinstance(cond.comparators[0], ast.Constant)
                                and isinstance(cond.comparators[0].value, str)):
                            key = (cond.left.id, cond.comparators[0].value)
                            todo.append((stmt.body, tests + ((*key, True),)))
                            todo.append((stmt.orelse, tests + ((*key, False),)))
                        else:
                            todo.append((stmt.body, tests))
                            todo.append((stmt.orelse, tests))
                    elif tests:
                        branches[span(stmt)] = tests
        known = dict(keys)
        kept = []
        settings = self.cls.setting_branches or {}
        for ctor in self._ctors(layer):
            tests = branches.get(ctor.stmt, ()) + settings.get(ctor.stmt, ())
            if any(param in known and (known[param] == key) != taken for param, key, taken in tests):
                continue
            kept.append(ctor)
        return kept

    def _rowwise_softmax(self, call: ast.Call, ctx: _Ctx) -> ast.Call | None:
        """``softmax(s.view(-1, s.size(k))).view(*s.size())`` (also ``reshape``, ``s.shape[k]``,
        the view back as ``.view(s.size())``, ``.view(s.shape)`` or ``.view_as(s)``): the rows
        of the last axis of ``s`` (when k is its last axis) flattened into a matrix, a softmax
        over each row, and the matrix viewed back -- the softmax of ``s`` over axis k, read as
        ``s.softmax(dim=k)`` (2017-era attention written for a 2-D-only softmax).  The softmax
        is a torch softmax function or ``Tensor.softmax`` over dim 1 or -1 of the matrix, or an
        ``nn.Softmax`` layer built with ``dim=-1`` or ``dim=1``; k stays as written, so the
        step reads as the attention's softmax only where the rank of ``s`` makes k its last axis
        (structure/ranks.py), as a softmax written ``dim=2`` does."""
        back, inner = call, call.func.value
        name = self._viewed_back(back)
        if name is None:
            return None
        func = inner.func
        if func.__class__ is ast.Attribute and func.attr == "softmax" and func.value.__class__ is ast.Call:
            flat, args, keywords = func.value, inner.args, inner.keywords  # m.softmax(dim=-1)
        elif len(inner.args) >= 1 and inner.args[0].__class__ is ast.Call:
            flat, args, keywords = inner.args[0], inner.args[1:], inner.keywords
            layer = self._layer_of(func, ctx)
            if layer is not None:
                ctors = self.cls.bindings.get(_attr(layer), []) if self.cls is not None else []
                if args or keywords or not ctors or any(
                        c.fqn != "torch.nn.Softmax" or not _last_of_two(_ctor_dim(c)) for c in ctors):
                    return None
                args, keywords = (), [ast.keyword(arg="dim", value=ast.Constant(value=-1))]
            elif self.names.resolve(func) not in ("torch.softmax", SOFTMAX):
                return None
        else:
            return None
        dim = args[0] if args else next((k.value for k in keywords if k.arg == "dim"), None)
        if len(args) > 1 or any(k.arg not in ("dim", "dtype") for k in keywords) or not _last_of_two(dim):
            return None
        k = _flattened_rows(flat, name)
        if k is None:
            return None
        kept = [kw for kw in keywords if kw.arg == "dtype"]
        rows = ast.Call(func=ast.Attribute(value=ast.Name(id=name, ctx=ast.Load()), attr="softmax", ctx=ast.Load()),
                        args=[], keywords=[ast.keyword(arg="dim", value=k), *kept])
        for node in (rows, rows.func, rows.func.value, rows.keywords[0], k):
            ast.copy_location(node, call)
            node.end_lineno, node.end_col_offset = call.end_lineno, call.end_col_offset
        return rows

    @staticmethod
    def _viewed_back(call: ast.Call) -> str | None:
        """The name ``s`` of ``.view(*s.size())``, ``.view(s.size())``, ``.view(s.shape)`` (or
        ``reshape``), ``.view_as(s)`` / ``.reshape_as(s)``: a view back to the shape of ``s``."""
        if call.keywords or len(call.args) != 1:
            return None
        arg = call.args[0]
        if call.func.attr in ("view_as", "reshape_as"):
            return arg.id if arg.__class__ is ast.Name else None
        if arg.__class__ is ast.Starred:
            arg = arg.value
            if not (arg.__class__ is ast.Call and not arg.args and not arg.keywords):
                return None
        if arg.__class__ is ast.Call and not arg.args and not arg.keywords:
            arg = arg.func
            if not (arg.__class__ is ast.Attribute and arg.attr == "size"):
                return None
        elif not (arg.__class__ is ast.Attribute and arg.attr == "shape"):
            return None
        return arg.value.id if arg.value.__class__ is ast.Name else None

    def _annotated_layers(self, func) -> dict[str, str]:
        """The root's parameters annotated with a torch layer class (``dropout: nn.Dropout |
        None = None``, ``Optional[nn.Dropout]``) and never assigned in it: a call of one is a
        call of that layer (its constructor is the caller's: reported, not fixed), as a
        parameter the package's modules pass a layer for is (bindings._passed_in).  Recorded
        under ``<name>`` in ``self._annotated``, read where the class's bindings are."""
        args = func.args
        found = {}
        for arg in (*args.posonlyargs, *args.args, *args.kwonlyargs):
            fqn = _layer_annotation(arg.annotation, self.names) if arg.annotation is not None else None
            if fqn is None:
                continue
            key = f"<{func.name}:{arg.arg}>"
            where = span(arg)
            self._annotated[key] = [Ctor(key, fqn, (), (), False, where, where, func.name, in_init=False, via=arg.arg,
                                         unlike=f"`{arg.arg}` is a layer the function's callers pass in "
                                                f"(typed by its annotation)")]
            found[arg.arg] = key
        if found:
            stored = {n.id for n in ast_walk(func) if n.__class__ is ast.Name and n.ctx.__class__ is not ast.Load}
            found = {name: key for name, key in found.items() if name not in stored}
        return found

    def _layer_types(self, layer: str) -> frozenset:
        if layer in self._annotated:
            return frozenset(c.fqn for c in self._annotated[layer])
        if self.cls is None:
            return frozenset({"?"})
        ctors = self.cls.bindings.get(_attr(layer), [])
        return frozenset(c.fqn for c in ctors) or frozenset({"?"})

    def _softmax_call(self, func: ast.FunctionDef, call: ast.Call | None):
        """Is ``func`` a same-file softmax (formulas.softmax_formula)?  Without ``call``: the
        dtype it computes in (formulas.SAME: its input's), or None.  With ``call``: how the call
        binds it -- (dtype, where the tensor is, where the dim is: an index of ``call.args``, a
        keyword's name, or None for the parameter's default) -- when the tensor is passed, the
        dim by position or by its name, and any other parameter (a flag its tests read, a
        scaling that cancels) only as a name, an attribute or a constant; None otherwise."""
        found = self._softmaxes.get(id(func))
        if found is None:
            found = self._softmaxes[id(func)] = softmax_formula(func, self.names) or ""
        if not found or call is None:
            return found or None
        params = [a.arg for a in func.args.posonlyargs + func.args.args]
        named = params[len(func.args.posonlyargs):] + [a.arg for a in func.args.kwonlyargs]
        positional = set(params[:len(call.args)])
        if len(call.args) > len(params) or any(isinstance(a, ast.Starred) for a in call.args) or any(
                k.arg not in named or k.arg in positional for k in call.keywords):
            return None  # (k.arg None: a ** spread)
        where = {params[i]: i for i in range(len(call.args))}
        where.update({k.arg: k.arg for k in call.keywords})
        x, dim = params[0], params[1]
        if x not in where:
            return None
        for name, at in where.items():
            if name in (x, dim):
                continue
            expr = call.args[at] if isinstance(at, int) else next(k.value for k in call.keywords if k.arg == at)
            if not isinstance(expr, (ast.Name, ast.Attribute, ast.Constant)):
                return None
        if dim not in where and self._ints([_dim_default(func)], tuple_ok=False) is None:
            return None  # no default (the call would raise), or not a number
        return found, where[x], where.get(dim)

    def _callable_alias(self, value_expr: ast.expr) -> str | None:
        """The function a local name bound to ``value_expr`` calls, when every alternative of
        it (``torch.softmax if cond else stable_softmax``) is the same canonical operation:
        a torch function of the table, or a same-file function that computes it (softmax)."""
        alternatives, stack = [], [value_expr]
        while stack:
            expr = stack.pop()
            if isinstance(expr, ast.IfExp):
                stack += [expr.body, expr.orelse]
            else:
                alternatives.append(expr)
        if len(alternatives) < 2:
            return None
        fqns, ops = [], set()
        for expr in alternatives:
            if isinstance(expr, ast.Name) and expr.id in self.names.functions:
                if self._softmax_call(self.names.functions[expr.id], None) != SAME:
                    return None
                ops.add(SOFTMAX)
                continue
            fqn = self.names.resolve(expr) if isinstance(expr, (ast.Name, ast.Attribute)) else None
            op = TABLE.function(fqn) if fqn is not None else None
            if op is None:
                return None
            fqns.append(fqn)
            ops.add(op.name)
        if len(ops) != 1:
            return None
        return fqns[0] if fqns else ops.pop()

    def _table_entry(self, target: ast.expr, table: str, ctx: _Ctx) -> None:
        """A name bound to an entry of a module-level dict literal the file never changes
        (literals.literal_table), or names unpacking its tuple entries: a name whose element is
        an imported callable in every entry (``{"sgd": (torch.optim.SGD, {...}), "adam":
        (torch.optim.Adam, {...})}``) is a callee chosen at run time among them (Node.choices,
        as ``klass = SGD if sgd else Adam``); a name whose element is a dict literal in every
        entry, where only this statement reads the table, keeps the entries' dicts for a
        ``**name`` spread (literals.entry_keys)."""
        if table not in self._tables:
            self._tables[table] = literal_table(table, self.names.constants.get(table), self.lines, self.text)
        found = self._tables[table]
        if found is None:
            return
        entries, reads = found
        if target.__class__ is _AST_NAME:
            names, columns = [target], [entries]
        else:
            names = target.elts
            if not all(e.__class__ is ast.Tuple and len(e.elts) == len(names) for e in entries):
                return
            columns = [[e.elts[i] for e in entries] for i in range(len(names))]
        for name, column in zip(names, columns):
            if name.__class__ is not _AST_NAME or not column:
                continue
            if all(e.__class__ is ast.Dict for e in column):
                if reads == 1:
                    ctx.table_entries[name.id] = column
                continue
            choices: dict = {}
            for expr in column:
                fqn = self.names.resolve(expr) if expr.__class__ in (ast.Name, ast.Attribute) else None
                if fqn is None:
                    break
                choices.setdefault(fqn, span(expr))
            else:
                ctx.choice_alias[name.id] = tuple(choices.items())

    def _choices(self, value_expr: ast.IfExp) -> tuple:
        """((fqn, span), ...) when every alternative of a conditional expression names an
        imported callable (``Lion if use_lion else Adam``) and they are not all one; () otherwise."""
        found, stack = [], [value_expr]
        while stack:
            expr = stack.pop()
            if isinstance(expr, ast.IfExp):
                stack += [expr.orelse, expr.body]
                continue
            fqn = self.names.resolve(expr) if isinstance(expr, (ast.Name, ast.Attribute)) else None
            if fqn is None:
                return ()
            found.append((fqn, span(expr)))
        return tuple(found) if len({f for f, _ in found}) > 1 else ()

    def _dict_choices(self, table: ast.expr) -> tuple:
        """((fqn, span), ...) of a dict display written in place whose keys are literals and
        whose every value names an imported callable (``{"sgd": torch.optim.SGD, "adam":
        torch.optim.Adam}[name]``): a callee chosen at run time among them, as an entry of a
        module-level table is (_table_entry); () for any other expression."""
        if table.__class__ is not ast.Dict or not table.values:
            return ()
        for key in table.keys:
            if key is None or key.__class__ is not ast.Constant:
                return ()
        return self._callable_choices(table.values)

    def _table_choices(self, table: ast.expr, ctx: _Ctx) -> tuple:
        """((fqn, span), ...) of a module-level literal table (literals.literal_table) whose
        entry is called in place (``OPTIMIZERS[name](params)``) when every entry names an
        imported callable, as ``klass = OPTIMIZERS[name]`` reads it (_table_entry); ()
        otherwise."""
        if table.__class__ is not _AST_NAME or table.id not in self.names.constants or table.id in ctx.params:
            return ()
        if table.id not in self._tables:
            self._tables[table.id] = literal_table(table.id, self.names.constants.get(table.id), self.lines,
                                                   self.text)
        found = self._tables[table.id]
        if found is None:
            return ()
        return self._callable_choices(found[0])

    def _narrowed_entry(self, func: ast.Subscript, ctx: _Ctx) -> tuple:
        """``OPTS[name](params)`` (``OPTS`` a module-level literal table, or ``cls.OPTS`` /
        ``self.OPTS`` a class-body one, each read only an entry at a time) inside ``if name ==
        "sgd":`` with ``name`` never rebound in the function: the call calls that one entry,
        ((fqn, span), ) when it names an imported callable, whatever the table's other entries
        are (a lambda, another optimizer); () otherwise."""
        key = func.slice
        if key.__class__ is not _AST_NAME or ctx.definition is None:
            return ()
        literal = next((value for name, value in reversed(ctx.literal_keys) if name == key.id), None)
        if literal is None or any(node.__class__ is _AST_NAME and node.id == key.id and node.ctx.__class__ is not ast.Load
                                  for node in ast_walk(ctx.definition)):
            return ()
        table = func.value
        if table.__class__ is _AST_NAME and table.id in self.names.constants and table.id not in ctx.params:
            value = self.names.constants.get(table.id)
            if literal_table(table.id, value, self.lines, self.text) is None:
                return ()
        elif table.__class__ is ast.Attribute and table.value.__class__ is _AST_NAME \
                and table.value.id in ("self", "cls") and self.cls is not None:
            value = class_table(self.cls.node, table.attr, self.lines, self.text)
        else:
            return ()
        if value.__class__ is not ast.Dict:
            return ()
        entries = [v for k, v in zip(value.keys, value.values)
                   if k.__class__ is ast.Constant and k.value == literal]
        if len(entries) != 1 or entries[0].__class__ not in (_AST_NAME, ast.Attribute):
            return ()
        fqn = self.names.resolve(entries[0])
        return ((fqn, span(entries[0])),) if fqn is not None else ()

    def _callable_choices(self, exprs) -> tuple:
        """((fqn, span), ...), one per distinct callable, when every one of ``exprs`` (a table's
        entries) names an imported callable: the callees an entry chosen at run time may be;
        () when any entry is something else (then no choice is known)."""
        choices: dict = {}
        for expr in exprs:
            fqn = self.names.resolve(expr) if expr.__class__ in (ast.Name, ast.Attribute) else None
            if fqn is None:
                return ()
            choices.setdefault(fqn, span(expr))
        return tuple(choices.items())

    def _imported_table_choices(self, table: ast.expr, ctx: _Ctx) -> tuple:
        """((fqn, None), ...) of a table another module of the package holds
        (siblings.sibling_table: ``_valid_optimizers = {"adamw": torch.optim.AdamW, ...}`` in
        ``config/valid.py``) that this file imports and reads only one entry at a time
        (literals.imported_table_reads): a callee chosen at run time among its callables, as an
        entry of a table the file binds itself is (_table_choices).  No text of this file names
        the alternatives (span None): a fix guards by their module-level spelling here, if any
        (plan._guarded_call); () otherwise."""
        if table.id in ctx.params:
            return ()
        fqn = self.names.imports[table.id]
        key = "imported:" + fqn
        if key not in self._tables:
            found = None
            if (imported_table_reads_in(table.id, self.text) if self.text is not None
                    else imported_table_reads(table.id, self.lines)):
                found = sibling_table(self.package, fqn)
            self._tables[key] = found
        found = self._tables[key]
        return tuple((target, None) for target in found) if found else ()

    def _lookup_choices(self, value_expr: ast.Call) -> tuple:
        """``getattr(torch.optim, name)`` with a run-time ``name``: a class of ``torch.optim``
        looked up by the string (fuxictr's ``get_optimizer``), a callee chosen at run time among
        that module's classes, as ``Lion if use_lion else Adam`` is (Node.choices): its one
        choice ``torch.optim.*`` is any of them (match.py), with no text in the file to guard by
        (span None): the call is reported, and not fixed.  A literal name, another module, or a ``getattr`` the
        file binds itself are not this lookup."""
        if not (value_expr.func.__class__ is _AST_NAME and value_expr.func.id == "getattr"
                and len(value_expr.args) == 2 and not value_expr.keywords
                and value_expr.args[1].__class__ is not ast.Constant
                and "getattr" not in self.names.functions and "getattr" not in self.names.imports and builtin_unbound(self.names, "getattr")):
            return ()
        module = value_expr.args[0]
        if module.__class__ not in (_AST_NAME, ast.Attribute) or self.names.resolve(module) != "torch.optim":
            return ()
        return (("torch.optim.*", None),)

    def _dict_lookup_choices(self, func: ast.Subscript) -> tuple:
        """``torch.optim.__dict__[name]`` with a run-time ``name`` (the ImageNet example's
        ``models.__dict__[args.arch]`` spelling): a class of ``torch.optim`` looked up by the
        string, as ``getattr(torch.optim, name)`` is (:meth:`_lookup_choices`): reported, not
        fixed.  A literal key or another module is not this lookup."""
        module = func.value.value
        if func.slice.__class__ is ast.Constant or module.__class__ not in (_AST_NAME, ast.Attribute) \
                or self.names.resolve(module) != "torch.optim":
            return ()
        return (("torch.optim.*", None),)

    def _members_choices(self, expr: ast.expr) -> tuple:
        """``inspect.getmembers(torch.optim)``, also kept in order by ``list``/``tuple``/``sorted``,
        thinned by ``filter(pred, ...)`` or a comprehension keeping its items: (name, value)
        pairs of that module's members, a value chosen at run time among its classes (as
        ``getattr(torch.optim, name)``, :meth:`_lookup_choices`: ``torch.optim.*``, no text to
        guard by).  () for anything else (another module, items changed on the way)."""
        for _ in range(4):
            kind = expr.__class__
            if kind is ast.ListComp and len(expr.generators) == 1 and not expr.generators[0].is_async \
                    and expr.elt.__class__ is _AST_NAME and expr.generators[0].target.__class__ is _AST_NAME \
                    and expr.generators[0].target.id == expr.elt.id:
                expr = expr.generators[0].iter  # [m for m in members if ...]
                continue
            if kind is not _AST_CALL or expr.keywords or expr.func.__class__ is not _AST_NAME:
                break
            name = expr.func.id
            if name in self.names.functions or name in self.names.imports:
                break
            if name in ("list", "tuple", "sorted") and len(expr.args) == 1:
                expr = expr.args[0]
            elif name == "filter" and len(expr.args) == 2:
                expr = expr.args[1]
            else:
                break
        if not (expr.__class__ is _AST_CALL and len(expr.args) == 1 and not expr.keywords
                and self.names.resolve(expr.func) == "inspect.getmembers"):
            return ()
        module = expr.args[0]
        if module.__class__ not in (_AST_NAME, ast.Attribute) or self.names.resolve(module) != "torch.optim":
            return ()
        return (("torch.optim.*", None),)

    def _member_value(self, func: ast.Subscript, ctx: _Ctx) -> tuple:
        """``optim[i][1]`` with ``optim`` a local list of a module's (name, value) members
        (:meth:`_members_choices`): the value of one of them."""
        inner = func.value.value
        if not (inner.__class__ is _AST_NAME and func.slice.__class__ is ast.Constant and func.slice.value == 1
                and func.slice.value is not True):
            return ()
        return ctx.choice_alias.get(_MEMBER_LIST + inner.id, ())

    def _sibling_softmax(self, func: ast.Attribute, call: ast.Call) -> tuple | None:
        """How ``call`` binds a softmax function of another module of the package that ``func``
        (``utils.softmax``) names through the module (siblings.sibling_softmax;
        ``_softmax_call``'s answer with the def in front), or None.  Looked up once per name
        and file, only for a module of this package (the caller asks)."""
        cache = self.names.sibling_softmaxes  # (made by the caller)
        key = (func.value.id, func.attr)
        if key in cache:
            found = cache[key]
        else:
            found = cache[key] = sibling_softmax(self.package, f"{self.names.imports[func.value.id]}.{func.attr}")
        if found is None:
            return None
        func_def, dtype = found
        self._softmaxes.setdefault(id(func_def), dtype)  # read with its own module's imports
        bound = self._softmax_call(func_def, call)
        return None if bound is None else (func_def, *bound)

    def _sibling_gelu(self, fqn: str) -> str | None:
        """The GELU variant a function of another module of the package computes
        (siblings.sibling_gelu: a formula, or F.gelu of its argument), or None; once per name."""
        key = "sibling:" + fqn
        if key not in self._formulas:
            self._formulas[key] = sibling_gelu(self.package, fqn)
        return self._formulas[key]

    def _helper_of(self, func: ast.expr, ctx: _Ctx):
        """The same-class method or same-file function a callee names, if any."""
        kind = func.__class__  # (by exact class: every call asks)
        if kind is not ast.Attribute and kind is not _AST_NAME:
            return None
        if (
            self.cls is not None
            and kind is ast.Attribute
            and func.value.__class__ is _AST_NAME
            and func.value.id == "self"
            and func.attr in self.cls.methods
            and func.attr not in self.cls.bindings
        ):
            return self.cls.methods[func.attr], True
        if (
            self.cls is not None
            and kind is ast.Attribute
            and func.value.__class__ is _AST_NAME
            and func.value.id == self.cls.name
            and func.value.id not in ctx.params
            and func.attr in self.cls.methods
            and all(isinstance(d, ast.Name) and d.id == "staticmethod" for d in self.cls.methods[func.attr].decorator_list)
        ):
            # MultiheadAttention.apply_sparse_mask(w, ...): a function of the class called through
            # the class binds its parameters as written (no instance)
            return self.cls.methods[func.attr], False
        if (
            self.cls is not None
            and kind is ast.Attribute
            and func.value.__class__ is _AST_NAME
            and func.attr in self.cls.methods
            and _class_param(ctx.definition) == func.value.id
            and self.cls.methods[func.attr].decorator_list
            and all(isinstance(d, ast.Name) and d.id == "staticmethod"
                    for d in self.cls.methods[func.attr].decorator_list)
        ):
            # cls._rotate_half(x) in a class method: the class's own static method, its
            # parameters bound as written (as ``ClassName._rotate_half(x)`` above)
            return self.cls.methods[func.attr], False
        if kind is not _AST_NAME:
            return None
        if func.id in ctx.local_funcs:
            return ctx.local_funcs[func.id], False
        if func.id in self.names.functions and func.id not in ctx.params:
            return self.names.functions[func.id], False
        if func.id in ctx.func_alias:
            return self.names.functions[ctx.func_alias[func.id]], False
        return None

    def _call(self, call: ast.Call, frontier: list, ctx: _Ctx) -> tuple[Value, list]:
        func = call.func
        if func.__class__ is ast.Attribute and func.attr == "contiguous" and not call.args and not call.keywords \
                and func.value.__class__ is ast.Call:
            # einsum(...).contiguous() / d: the values of the call (a copy in another memory
            # layout at most), read as the call itself, as ``y = x.contiguous()`` is read y = x
            return self._value(func.value, frontier, ctx)
        if func.__class__ is ast.Attribute and func.attr == "reshape" and func.value.__class__ is _AST_NAME \
                and len(call.args) == 2 and not call.keywords and self.names.imports.get(func.value.id) == "torch":
            # torch.reshape(w, (B, H, W, H * W)): the method w.reshape(B, H, W, H * W), one
            # reading for both spellings (the view readings below, heads folded into a softmax)
            call = _reshape_as_method(call)
            func = call.func
        if func.__class__ is ast.Attribute and func.attr in _VIEW_BACK and func.value.__class__ is ast.Call:
            rows = self._rowwise_softmax(call, ctx)
            if rows is not None:  # softmax(s.view(-1, s.size(2))).view(*s.size()): s.softmax(dim=2)
                call, func = rows, rows.func
        if func.__class__ is ast.Attribute and (func.attr == "view" or func.attr == "reshape"):
            for a in call.args:
                if a.__class__ is ast.Subscript:
                    # x.view(-1, y.shape[-1]): the size read as y.size(-1), one step either way
                    call = _shape_as_size(call)
                    func = call.func
                    break
            else:
                rows = None
                if len(call.args) == 2 and call.args[1].__class__ is _NAME and ctx.exprs:
                    rows = _unpacked_rows(call, ctx.exprs)
                    if rows is not None:  # B, T, C = x.shape; x.view(B * T, C): x.view(-1, x.size(-1))
                        call, func = rows, rows.func
                if rows is None and len(call.args) == 2 and self._last_size_may_be_width(call, ctx) \
                        and _sizes_not_unpacked(call, ctx.exprs):
                    free = _free_lead(call)
                    if free is not None:  # x.view(B * T, V): x.view(-1, V), the same matrix
                        call, func = free, free.func
                elif rows is None and len(call.args) == 2 and _int_literal(call.args[0]) == -1 \
                        and call.func.value.__class__ is _AST_NAME and self._producer_ctors(call.func.value, ctx):
                    # x.view(-1, T * V), x a Linear's output of another width: rows of several of
                    # x's rows merged, not x's rows; its count spelled out (the same view) so no
                    # reading of ``view(-1, _)`` as x's rows takes it (review39)
                    call, func = _counted_lead(call), call.func
        elif func.__class__ is ast.Attribute and func.attr == "flatten" and func.value.__class__ is _NAME \
                and (call.args or call.keywords):
            rows = _flatten_to_rows(call)
            if rows is not None:  # x.flatten(0, -2): x.reshape(-1, x.size(-1))
                call, func = rows, rows.func
        if self.cls is not None and len(call.args) == 1 and call.args[0].__class__ is _AST_CALL \
                and func.__class__ is ast.Attribute and not call.keywords:
            rows = self._normed_linear_rows(call, ctx)
            if rows is not None:  # self.bn(h.view(-1, self.d * 2)), h = self.fc(x), out 2 * self.d
                call, func = rows, rows.func
        if call.args and call.args[0].__class__ is ast.ListComp and self.cls is not None:
            stacked = self._member_stack(call, ctx)
            if stacked is not None:
                return self._stack_members(call, stacked[1], frontier, ctx)
        if (func.__class__ is ast.Attribute and func.attr == "forward"
                and isinstance(func.value, (ast.Attribute, ast.Subscript, ast.Name))
                and self._layer_of(func.value, ctx) is not None):
            # self.fc.forward(x): the layer's forward called by name, the layer's computation
            # (min-dalle's ``self.fc0.forward(z)``; only its hooks are skipped)
            call = ast.copy_location(ast.Call(func=func.value, args=call.args, keywords=call.keywords), call)
            func = call.func
        if self.cls is not None and self.cls.appliers and func.__class__ is ast.Attribute \
                and func.attr in self.cls.appliers and func.value.__class__ is ast.Name and func.value.id == "self":
            # self.maybe_ckpt(self.w_1, x), maybe_ckpt applying its first argument to the others
            # (bindings._appliers): the call of self.w_1 on x
            applied = _applied(call, self.cls.appliers[func.attr])
            if applied is not None:
                call = applied
                func = call.func
        elif (call.args and call.args[0].__class__ is ast.Attribute and func.__class__ in (_NAME, ast.Attribute)
              and (own := APPLY_FIRST.get(self.names.resolve(func) or "")) is not None
              and self._layer_of(call.args[0], ctx) is not None):
            # checkpoint(self.conv, x): activation checkpointing returns the layer's output on x
            # (recomputed the same way in the backward pass): the call of self.conv on x
            applied = _applied(call, Applier(None, own))
            if applied is not None:
                call = applied
                func = call.func
        if func.__class__ is ast.Call or (func.__class__ is ast.Name and func.id in ctx.exprs):
            bound = self._partial_call(call, ctx)
            if bound is not None:  # apply = partial(helper, freqs); apply(q): helper(freqs, q)
                call = bound
                func = call.func
        # Receiver of a method call is evaluated first (x.view(...), self.foo(x).permute(...)).
        receiver: Value | None = None
        layer = self._layer_of(func, ctx)
        chosen = False
        if layer is not None and func.__class__ is ast.Attribute and func.attr in self.cls.bindings:
            # (subscripts and slices, not calls: this runs for every layer call)
            ctors = self.cls.bindings[func.attr]
            if ctors and ctors[0].fqn == "?" and not ctors[1:] and self._attr_choices(func):
                # self.opt(params, lr=lr), ``self.opt = opt`` of an __init__ parameter defaulting to
                # an imported class: a call of a callee chosen at run time, not a layer's
                layer, chosen = None, True
        wrapped = None
        if layer is not None and self.cls is not None:
            wrappers = self.names.wrappers
            if wrappers is None:
                wrappers = self.names.wrappers = _function_wrappers(self.names)
            if wrappers:
                # self.matmul_qk(q, k), a same-file module whose forward returns torch.matmul of
                # its arguments: a call of that function
                wrapped = _wrapped_function(layer, self.cls, wrappers, call)
                if wrapped is not None:
                    layer = None
        helper = None if layer is not None else self._helper_of(func, ctx)
        function_ctx = False
        if helper is None and layer is None and func.__class__ is _AST_CALL and func.func.__class__ is _AST_NAME \
                and func.func.id in self.names.classes and func.func.id not in ctx.params:
            # MaskedSoftmax(dim=-1)(scores, mask=mask): a same-file module built and called at once
            # whose forward is a function of its inputs and of settings the construction passes
            # as literals: that forward, the settings in place (_built_forward)
            target = self._built_forward(func)
            if target is not None:
                helper = (target, False)
        if helper is None and layer is None:
            applied = func  # Fn.apply, or a module-level name bound once to it (attention_op = Fn.apply)
            if func.__class__ is _AST_NAME and func.id in self.names.constants and func.id not in ctx.params \
                    and func.id not in ctx.exprs:
                applied = self.names.constants[func.id]
            if applied.__class__ is ast.Attribute and applied.attr == "apply" \
                    and applied.value.__class__ is _AST_NAME and applied.value.id not in ctx.params:
                # AttentionOp.apply(q, k) of a same-file torch.autograd.Function: its static
                # forward(ctx, q, k) is what runs (EDM's attention weights in fp32 with a
                # hand-written backward, the analytic gradient of the same computation): inlined
                # there, ctx unbound
                target = function_forward(applied.value.id, self.names)
                if target is not None and target is not ctx.definition and target.args.args \
                        and not target.args.vararg and not target.args.kwonlyargs:
                    helper, function_ctx = (target, False), True
        fqn = wrapped
        formula = None
        softmax = None  # a same-file softmax called: (its def, dtype, where the tensor is, where the dim is)
        if helper is not None and not helper[1] and func.__class__ is ast.Name:
            # def gelu(x): return x * 0.5 * (1.0 + torch.erf(x / math.sqrt(2.0))): a call of
            # the function is a GELU (structure/formulas.py), not a body to inline.
            formula = self._formulas.get(id(helper[0]), False)
            if formula is False:  # once per function (a local def may share a module function's name)
                formula = self._formulas[id(helper[0])] = gelu_formula(helper[0], self.names)
            if formula is not None:
                helper, fqn = None, func.id
            else:
                bound = self._softmax_call(helper[0], call)
                if bound is not None:
                    # def stable_softmax(t, dim=-1, alpha=...): ... (t * alpha).softmax(dim=dim):
                    # the softmax of t (structure/formulas.py), a call of the canonical softmax
                    # under the function's own name (not a spelling of F.softmax: the paper
                    # benchmark's exact spellings do not count it)
                    softmax = (helper[0], *bound)
                    helper, fqn = None, func.id
        elif helper is not None and helper[1]:
            # def gelu(self, gate): F.gelu of gate on every path (upcast on some): a GELU call
            formula = self._formulas.get(id(helper[0]), False)
            if formula is False:
                formula = self._formulas[id(helper[0])] = gelu_on_every_path(helper[0], self.names, method=True)
            if formula is not None:
                helper, fqn = None, f"self.{func.attr}"
        through = False
        if (self.package is not None and layer is None and helper is None and fqn is None
                and func.__class__ is ast.Name and func.id in self.names.imports and func.id not in ctx.params):
            # from .gelu import gelu, the package's def gelu(x): x * 0.5 * (1 + erf(x / sqrt(2))):
            # a GELU call, as a same-file one is (the package's module read once)
            formula = self._sibling_gelu(self.names.imports[func.id])
            if formula is not None:
                fqn = func.id
            elif len(call.args) == 1 and not call.keywords:
                # from .utils import grab_first_if_tuple: the package's def returns a tensor as it
                # is (formulas.passes_tensor_through), as a same-file one does (below)
                through = self._sibling_through(self.names.imports[func.id])
        if (self.package is not None and layer is None and helper is None and fqn is None
                and func.__class__ is ast.Attribute and func.value.__class__ is _AST_NAME
                and func.value.id in self.names.imports and func.value.id not in ctx.params):
            # from fairseq import utils; utils.softmax(scores, dim=-1): the package's def returns
            # the softmax of its first parameter over its second on every path, as a same-file
            # softmax does (siblings.sibling_softmax: the module read once, with its own imports)
            owned = self.names.sibling_softmaxes
            if owned is None:
                owned = self.names.sibling_softmaxes = {}
            module = func.value.id
            if module not in owned:  # (torch, nn, F: another package's module, never looked in)
                owned[module] = self.package.owns(f"{self.names.imports[module]}.x")
            if owned[module]:
                bound = self._sibling_softmax(func, call)
                if bound is not None:
                    softmax, fqn = bound, f"{module}.{func.attr}"
        if layer is None and helper is None and fqn is None:
            fqn = self.names.resolve(func)
            if fqn is None and func.__class__ is ast.Name and func.id in ctx.fqn_alias:
                fqn = ctx.fqn_alias[func.id]  # softmax = torch.softmax if ... else stable_softmax
            if fqn is None and func.__class__ is ast.Attribute and not chosen:
                receiver, frontier = self._value(func.value, frontier, ctx)
            elif fqn is None and func.__class__ is not ast.Name and not chosen:
                frontier = self._inner_calls(func, frontier, ctx)
        if fqn == "torch.exp" and softmax is None and len(call.args) == 1 and not call.keywords \
                and call.args[0].__class__ is ast.BinOp and call.args[0].op.__class__ is ast.Sub:
            shifted = self._logsumexp_shift(call, ctx)
            if shifted is not None:
                # torch.exp(x - lse) with lse = torch.logsumexp(x, dim, keepdim=True): the
                # softmax of x over dim, written out (Reformer's local attention)
                call, softmax = shifted
        if fqn in ("torch.einsum", "torch.functional.einsum") and len(call.args) == 2 and not call.keywords \
                and isinstance(call.args[1], (ast.List, ast.Tuple)) \
                and not any(isinstance(e, ast.Starred) for e in call.args[1].elts):
            # torch.einsum(eq, [a, b]): the operands given as one list are the operands
            call = ast.copy_location(ast.Call(func=call.func, args=[call.args[0], *call.args[1].elts], keywords=[]),
                                     call)
        if (receiver is not None and func.attr in _SIZE_TUPLE_METHODS and len(call.args) == 1 and not call.keywords
                and call.args[0].__class__ in (ast.Tuple, ast.List)
                and not any(e.__class__ is ast.Starred for e in call.args[0].elts)):
            # x.view((b, -1, c, v)): the sizes given as one tuple are the sizes, as for einsum's list
            call = ast.copy_location(ast.Call(func=call.func, args=list(call.args[0].elts), keywords=[]), call)
        args: list[Value] = []
        # A starred argument's span includes the star, so synthesis can tell it apart.
        arg_spans: list = [span(func.value)] if receiver is not None else []
        flat = receiver is not None and len(call.args) == 2 and _flattens_lead(call, ctx.exprs)
        for arg in call.args:
            inner = arg.value if arg.__class__ is ast.Starred else arg
            if flat and arg is call.args[0]:
                # x.view(B * T, V) with B, T, V = x.shape: x.view(-1, V), every axis but the
                # last flattened into one (the product is the count -1 stands for)
                args.append(Const(-1))
                arg_spans.append(span(arg))
                continue
            value, frontier = self._value(inner, frontier, ctx)
            args.append(value)
            arg_spans.append(span(arg))
            if inner.__class__ is ast.Attribute or ctx.local_funcs and inner.__class__ is _AST_NAME:
                # (what _inline_callable_arg follows: other arguments asked nothing)
                frontier = self._inline_callable_arg(inner, frontier, ctx)
        kwargs: list[tuple[str, Value]] = []
        kwarg_spans: list = []
        for kw in call.keywords:
            value, frontier = self._value(kw.value, frontier, ctx)
            spread = None if kw.arg is not None or len(ctx.stack) != 1 else literal_keywords(
                kw.value, ctx.exprs.get(getattr(kw.value, "id", "")), self.lines, self._literal_names, self.text)
            if kw.arg is None and spread is None and kw.value.__class__ is _AST_NAME and ctx.definition is not None:
                held = ctx.table_entries.get(kw.value.id) if ctx.table_entries else None
                if held is not None:
                    # ``klass, defaults = OPTIMIZERS[name]`` then ``klass(p, **defaults)``: the
                    # keys of the table's dict literals (literals.entry_keys)
                    spread = entry_keys(kw.value.id, held, ctx.definition)
            if kw.arg is None and spread is None and ctx.definition is not None:
                # ``softmax_kwargs = dict()``, ``softmax_kwargs.update(dtype=torch.float32)`` under
                # an if, then ``x.softmax(dim=-1, **softmax_kwargs)``: a keyword the dict may
                # hold, with the one value the function ever gives it
                spread = spread_keys(kw.value, ctx.definition, self.text)
                if spread and all(isinstance(v, ast.Constant) or _dotted(v) for _, v in spread):
                    # values of their own: dotted names (``torch.float32``) and constants
                    for index, (key, item) in enumerate(spread):
                        if isinstance(item, ast.Constant):
                            kwargs.append((key, Const(item.value)))
                        else:
                            item_value, frontier = self._value(item, frontier, ctx)
                            kwargs.append((key, item_value))
                        kwarg_spans.append((span(kw.value), span(kw)) if index == 0 else (None, None))
                    continue
                # other values (``kw = dict(lr=args.lr, betas=(0.9, 0.999))``): the keys are
                # still certain, each holding the dict's value as a dict literal's do below
            if spread:  # **opt_kwargs of a dict literal: its keys, the spread written once
                for index, (key, item) in enumerate(spread):
                    kwargs.append((key, Const(item.value) if isinstance(item, ast.Constant) else value))
                    kwarg_spans.append((span(kw.value), span(kw)) if index == 0 else (None, None))
                continue
            kwargs.append((kw.arg or "**", value))
            kwarg_spans.append((span(kw.value), span(kw)))
            if kw.value.__class__ is ast.Attribute or ctx.local_funcs and kw.value.__class__ is _AST_NAME:
                frontier = self._inline_callable_arg(kw.value, frontier, ctx)
        if layer is not None and args and not args[1:] and not kwargs and call.args[0].__class__ is not ast.Starred \
                and not ctx.keys and (self._identities[layer] if layer in self._identities
                                      else self._identity_layer(layer)):
            # self.decoder(x) where __init__ binds self.decoder = nn.Identity() and nothing else
            # (UltraBERT's decoder after a head that ends in the vocabulary Linear): x itself
            return args[0], frontier
        if (helper is not None or through) and args and not args[1:] and not kwargs and not function_ctx \
                and args[0].__class__ is Ref and call.args[0].__class__ is not ast.Starred \
                and (self._tensor_ref(args[0]) if through else self._passes_through(helper, args[0])):
            # grab_first_if_tuple(z1), z1 a Linear's output: the helper returns a tensor as it
            # is (formulas.passes_tensor_through): z1 itself
            return args[0], frontier
        if helper is not None:
            target, is_method = helper
            if (target.name not in ctx.stack or function_ctx) and len(ctx.stack) <= MAX_INLINE_DEPTH:
                # A marker node for the call itself (patterns may name a helper, e.g.
                # ``self._split_heads(...)``), then the helper's body inlined.
                # It reads nothing itself: the inlined body does the reading.
                op = f"self.{target.name}" if is_method else target.name
                _, frontier = self._new(ctx, frontier, kind="call", op=op, args=tuple(args), kwargs=tuple(kwargs),
                                        span=span(call), arg_spans=tuple(arg_spans), kwarg_spans=tuple(kwarg_spans),
                                        func_span=span(func))
                if function_ctx:
                    # forward(ctx, *args): the arguments bind after ctx, which stays unbound
                    args = [None, *args]
                    call = ast.copy_location(ast.Call(func=func, args=[ast.Constant(None), *call.args],
                                                      keywords=call.keywords), call)
                return self._inline(target, args, kwargs, is_method, call, frontier, ctx)
        if func.__class__ is ast.Attribute and func.attr == "chunk" and self.cls is not None \
                and self._chunk_on_fixed_axis(call):
            # x.chunk(2, dim=self.dim) with -1 in self.dim wherever the file builds the module
            if call.args[1:]:
                args = [*args[:len(args) - 1], Const(-1)]
            else:
                kwargs = [(key, Const(-1) if key == "dim" else value) for key, value in kwargs]
        if layer is not None and args[1:] and self._setting_norm_layer(layer):
            # self.norm(out, octree, depth), a same-file norm module built to run its torch norm on
            # its first input (setting_norm): the other inputs are not read on that arm
            args, arg_spans = args[:1], arg_spans[:1]
        out = self._temp("")
        # (a display, not dict()'s keywords: one dict made, not a keyword dict and its copy)
        common = {"args": tuple(args), "kwargs": tuple(kwargs), "outs": (out,), "defs": frozenset({out.key}),
                  "span": span(call), "arg_spans": tuple(arg_spans), "kwarg_spans": tuple(kwarg_spans),
                  "func_span": span(func)}
        uses = set()  # (what set(_keys(args)) | set(_keys(kwargs' values)) holds, in one loop each)
        for value in args:
            if value.__class__ is Ref:  # (Ref has no subclass)
                uses.add(value.key)
        for _, value in kwargs:
            if value.__class__ is Ref:
                uses.add(value.key)
        if layer is not None and args and not kwargs and self._adds_bias(layer) \
                and not any(isinstance(a, ast.Starred) for a in call.args) \
                and not (isinstance(args[0], Ref) and args[0].key in _keys(args[1:])):
            # (an other argument that is the scores again would make the bias read them)
            # sim = self.cpb(sim), the module's forward returning its input plus a bias computed
            # from its own parameters and the input's shape only (formulas.bias_add_module): the
            # bias (the layer's output, read from no tensor) added to the argument.  The bias has
            # no expression of its own here: a rewrite that needs it cannot read it.
            bias = self._temp("")
            # (its other arguments, FasterViT's window size, are read by the bias only)
            _, frontier = self._new(ctx, frontier, kind="layer", op=layer, layer=layer, types=self._layer_types(layer),
                                    args=(), outs=(bias,), defs=frozenset({bias.key}),
                                    uses=frozenset({layer, *_keys(args[1:])}), span=span(call), func_span=span(func))
            plus = TABLE.operator("+")
            _, frontier = self._new(ctx, frontier, kind="op", op="+", args=(args[0], bias), outs=(out,),
                                    uses=frozenset(_keys((args[0], bias))), defs=frozenset({out.key}), span=span(call),
                                    arg_spans=(arg_spans[0], None), canon=plus.name if plus else "")
            return out, frontier
        if layer is not None and call is ctx.top and self._sequence(layer):
            # self.block(x) where block = nn.Sequential(a, b, c): a -> b -> c.
            value = args[0] if len(args) == 1 and not kwargs else None
            if value is not None:
                members = self._sequence(layer)
                for index, member in enumerate(members):
                    out_i = out if index == len(members) - 1 else self._temp("")
                    arg_spans = (span(call.args[0]) if index == 0 else None,)
                    fields, frontier = self._canonical(
                        "layer", member, call,
                        {"args": (value,), "kwargs": (), "arg_spans": arg_spans, "kwarg_spans": ()}, frontier, ctx)
                    _, frontier = self._new(
                        ctx, frontier, kind="layer", op=member, layer=member, types=self._layer_types(member),
                        args=(value,), outs=(out_i,), defs=frozenset({out_i.key}),
                        uses=frozenset(_keys((value,)) | {layer}),
                        # Where the member is built: the same place for every call site.
                        span=self.cls.bindings[member[len("self."):]][0].call,
                        arg_spans=arg_spans, **fields,
                    )
                    value = out_i
                return out, frontier
        if layer is not None:
            uses.add(layer)
            fields, frontier = self._canonical("layer", layer, call, common, frontier, ctx)
            node, frontier = self._new(ctx, frontier, kind="layer", op=layer, layer=layer,
                                       types=self._layer_types(layer) if not ctx.keys else frozenset(
                                           c.fqn for c in self._keyed_ctors(layer, ctx.keys)) or frozenset({"?"}),
                                       uses=frozenset(uses), **common, **fields)
        elif fqn is not None:
            if softmax is not None:
                fields = self._softmax_fields(softmax, call, common)
            else:
                fields, frontier = self._canonical("call", GELU if formula is not None else fqn, call, common,
                                                   frontier, ctx)
            wide = fields.pop("span", None)
            if wide is not None:  # a node that stands for a computation over several statements
                common["span"] = wide
            moved = fields.pop("moved", None)
            if moved is not None:  # an einsum's product with its axes moved: this node reads the product
                common.update(args=(moved,), arg_spans=(None,), kwargs=(), kwarg_spans=())
                uses = set(_keys((moved,)))
            if fqn in _FLOORS and canonical.floors_at_dtype_min(call, fqn, self.names.resolve) is not None:
                # torch.max(s, torch.tensor(torch.finfo(s.dtype).min)): a floor no finite value of
                # s is below, the softmax after it the same (a step of the shift's kind)
                fields = {"canon": "canon.softmax_shift", "view": View(args[:1], (), tuple(arg_spans[:1]), ())}
            if ((fqn == LINEAR and 2 <= len(call.args) <= 3 and not call.keywords
                 and self._embedding_weight(call.args[1], transposed=False, ctx=ctx))
                    or (fqn == "torch.matmul" and len(call.args) == 2 and not call.keywords
                        and self._embedding_weight(call.args[1], transposed=True, ctx=ctx))):
                # F.linear(h, self.embed.weight): logits over the embedding's entries (a tied head)
                fields = {"canon": "canon.tied_logits", "view": View(args[:1], (), tuple(arg_spans[:1]), ())}
            if formula == "tanh" and fields.get("view") is not None:
                view = fields["view"]
                fields["view"] = View(view.args, view.kwargs + (("approximate", Const("tanh")),), view.arg_spans,
                                      view.kwarg_spans + ((None, None),))
            node, frontier = self._new(ctx, frontier, kind="call", op=fqn, uses=frozenset(uses), **common, **fields)
        elif receiver is not None:
            holder = func.value
            if holder.__class__ is ast.Attribute and holder.attr == "data" and holder.value.__class__ is ast.Name \
                    and call is ctx.bare and func.attr[-1:] == "_":
                # x.data.masked_fill_(m, v) as a statement (torch-light's attention): the fill writes
                # x's own storage, so past it x holds the filled values, as after x.masked_fill_(m, v)
                owner = self._name_value(holder.value.id, ctx)
                if isinstance(owner, Ref):
                    receiver = owner
            uses |= _keys((receiver,))
            common["args"] = (receiver, *common["args"])
            common["func_span"] = None
            fields, frontier = self._canonical("method", func.attr, call, common, frontier, ctx)
            if fields.pop("inplace", False):
                # x.masked_fill_(m, v) as a statement: x is redefined, as by x = x.masked_fill(m, v)
                common["outs"], common["defs"] = (receiver,), frozenset({receiver.key})
            node, frontier = self._new(ctx, frontier, kind="method", op=func.attr, uses=frozenset(uses), **common,
                                       **fields)
        elif isinstance(func, ast.Name) and func.id in ctx.built_alias and func.id not in ctx.params:
            # loss_fct = CrossEntropyLoss(...); loss_fct(a, b): a call of the built module
            ctor = ctx.built_alias[func.id]
            built = self.names.resolve(ctor.func)
            as_call = ast.Call(func=ctor, args=call.args, keywords=call.keywords)
            fields, frontier = self._canonical("built", built, as_call, common, frontier, ctx)
            uses.add(self._key(func.id, ctx))
            node, frontier = self._new(ctx, frontier, kind="call", op=built, uses=frozenset(uses), **common, **fields)
        elif self._built_and_called(func, ctx) is not None or (
            isinstance(func, ast.Call) and TABLE.module(self.names.resolve(func.func)) is not None
        ):
            # nn.Softmax(dim=-1)(x): a layer built and called at once is a call of its type,
            # with the constructor's (constant) keywords.
            built, extra = self._built_and_called(func, ctx) or (self.names.resolve(func.func), ())
            held = ctx.classes.get(func.func.attr) if ctx.classes and func.func.__class__ is ast.Attribute else None
            if held is not None and self.names.resolve(func.func) is None:
                # self.activation(approximate="tanh")(y) under ``if self.activation == nn.GELU``:
                # read as the class the test names built with those keywords
                inner = ast.copy_location(ast.Call(func=held[1], args=func.args, keywords=func.keywords), func)
                call = ast.copy_location(ast.Call(func=inner, args=call.args, keywords=call.keywords), call)
            fields, frontier = self._canonical("built", built, call, common, frontier, ctx)
            common["kwargs"] = (*common["kwargs"], *extra)
            common["kwarg_spans"] = (*common["kwarg_spans"], *((None, None) for _ in extra))
            node, frontier = self._new(ctx, frontier, kind="call", op=built, uses=frozenset(uses), **common, **fields)
        elif (isinstance(func, (ast.Subscript, ast.Call))
              and (table := self._table_lookup(func)) is not None):
            # ACT2FN[self.config.act](x): an activation looked up and called in place, which
            # may compute each operation the key can choose (a layer bound to it would).
            fqn, ops = table
            uses |= self._uses_of(func, ctx)
            node, frontier = self._new(ctx, frontier, kind="call", op=fqn, uses=frozenset(uses), maybe=ops,
                                       **common)
        else:
            uses |= self._uses_of(func, ctx)
            name = func.id if isinstance(func, ast.Name) else self._text(func)
            if func.__class__ is ast.Name:
                choices = ctx.choice_alias.get(name, ())
            elif ctx.literal_keys and func.__class__ is ast.Subscript \
                    and (narrowed := self._narrowed_entry(func, ctx)):
                choices = narrowed  # if name == "sgd": OPTS[name](params): that entry only
            elif func.__class__ is ast.Subscript and func.value.__class__ is ast.Dict:
                choices = self._dict_choices(func.value)  # {"sgd": SGD, "adam": Adam}[name](params)
            elif func.__class__ is ast.Subscript and func.value.__class__ is _AST_NAME \
                    and func.value.id in self.names.constants:
                choices = self._table_choices(func.value, ctx)  # OPTIMIZERS[name](params)
            elif func.__class__ is ast.Subscript and func.value.__class__ is _AST_NAME and self.package is not None \
                    and func.value.id in self.names.imports:
                choices = self._imported_table_choices(func.value, ctx)  # from .valid import OPTS; OPTS[k](p)
            elif func.__class__ is ast.Subscript and func.value.__class__ is ast.Subscript and ctx.choice_alias:
                choices = self._member_value(func, ctx)  # optim[0][1](params), optim a members list
            elif func.__class__ is ast.Subscript and func.value.__class__ is ast.Attribute and self.cls is not None \
                    and func.value.value.__class__ is _AST_NAME and func.value.value.id in ("self", "cls"):
                # self.methods[name](params): a class-body literal table read an entry at a time
                choices = self._dict_choices(class_table(self.cls.node, func.value.attr, self.lines, self.text))
            elif func.__class__ is _AST_CALL:
                choices = self._lookup_choices(func)  # getattr(torch.optim, name)(params, ...)
            elif func.__class__ is ast.Subscript and func.value.__class__ is ast.Attribute \
                    and func.value.attr == "__dict__":
                choices = self._dict_lookup_choices(func)  # torch.optim.__dict__[name](params, ...)
            elif func.__class__ is ast.Attribute and func.value.__class__ is ast.Name and func.value.id == "self" \
                    and self.cls is not None and "__init__" in self.cls.methods:
                choices = self._attr_choices(func)  # self.opt(...), opt an __init__ default
            else:
                choices = ()
            node, frontier = self._new(ctx, frontier, kind="call", op="?" + name, uses=frozenset(uses),
                                       choices=choices, **common)
        return out, frontier

    def _logsumexp_shift(self, call: ast.Call, ctx: _Ctx):
        """For ``torch.exp(x - lse)`` where ``lse`` was last bound to ``torch.logsumexp(x, dim,
        keepdim=True)`` (or ``x.logsumexp(...)``), ``x`` a name not rebound since and ``lse`` read
        nowhere else in the function (``del lse`` aside): (a call of the softmax of ``x`` over
        ``dim``, as :meth:`_softmax_fields` reads one), else None.  ``exp(x - logsumexp(x))`` is
        ``softmax(x)`` exactly; a log-sum-exp read again (returned, as Reformer's LSH attention
        returns it to combine its hash rounds) is a result the softmax does not give."""
        diff = call.args[0]
        x, lse = diff.left, diff.right
        if x.__class__ is not ast.Name or lse.__class__ is not ast.Name or ctx.definition is None:
            return None
        held = ctx.exprs.get(lse.id)
        if held.__class__ is not ast.Call:
            return None
        func = held.func
        args = list(held.args)
        if func.__class__ is ast.Attribute and func.attr == "logsumexp" and func.value.__class__ is ast.Name \
                and self.names.resolve(func) is None:
            args = [func.value] + args  # x.logsumexp(dim, keepdim=True)
        elif self.names.resolve(func) != "torch.logsumexp":
            return None
        keywords = {k.arg: k.value for k in held.keywords}
        if len(args) > 3 or None in keywords or set(keywords) - {"dim", "keepdim"} or not args:
            return None
        if len(args) > 1:
            if "dim" in keywords:
                return None
            keywords["dim"] = args[1]
        if len(args) > 2:
            if "keepdim" in keywords:
                return None
            keywords["keepdim"] = args[2]
        tensor, dim, keep = args[0], keywords.get("dim"), keywords.get("keepdim")
        if tensor.__class__ is not ast.Name or tensor.id != x.id or not (
                keep.__class__ is ast.Constant and keep.value is True) or self._ints([dim], tuple_ok=False) is None:
            return None
        start, end = held.lineno, call.lineno
        for node in walk(ctx.definition):
            if node.__class__ is ast.Name:
                if node.id == x.id and node.ctx.__class__ is ast.Store and start <= node.lineno <= end:
                    return None  # x rebound between the two: another tensor
                if node.id == lse.id and node.ctx.__class__ is ast.Load and node is not lse:
                    return None  # the log-sum-exp is read again
        softmax_call = ast.copy_location(ast.Call(func=call.func, args=[x], keywords=[
            ast.copy_location(ast.keyword(arg="dim", value=dim), dim)]), call)
        return softmax_call, (None, SAME, 0, "dim")

    def _softmax_fields(self, softmax: tuple, call: ast.Call, common: dict) -> dict:
        """The softmax node of a call of a same-file softmax function (``_softmax_call``):
        its tensor, its dim, and the dtype it computes in where that is not the input's (a
        ``dtype=`` the function's softmax takes, or an upcast before it); the function's other
        arguments are not the softmax's."""
        func, dtype, x_at, dim_at = softmax
        args, arg_spans = common["args"], common["arg_spans"]
        kwargs, kwarg_spans = common["kwargs"], common["kwarg_spans"]

        def argument(at):
            if isinstance(at, int):
                return args[at], (arg_spans[at], arg_spans[at])
            index = [name for name, _ in kwargs].index(at)
            return kwargs[index][1], kwarg_spans[index]

        x, (x_span, _) = argument(x_at)
        if dim_at is None:  # the parameter's default (an int: _softmax_call)
            dim, dim_spans = Const(self._ints([_dim_default(func)], tuple_ok=False)[0]), (None, None)
        else:
            dim, dim_spans = argument(dim_at)
        out_kwargs, out_spans = [("dim", dim)], [dim_spans]
        if dtype != SAME:
            out_kwargs.append(("dtype", Ref(dtype, dtype)))
            out_spans.append((None, None))
        op = TABLE.ops[SOFTMAX]
        view = View((x,), tuple(out_kwargs), (x_span,), tuple(out_spans))
        return {"canon": op.name, "view": self._origins(op, self._dims(op, view, call))}

    def _table_lookup(self, func: ast.Subscript | ast.Call) -> tuple[str, frozenset] | None:
        if isinstance(func, ast.Call):
            # getattr(F, self.activation)(x): the torch.nn.functional function the string names
            if not (isinstance(func.func, ast.Name) and func.func.id == "getattr" and len(func.args) == 2
                    and not func.keywords and "getattr" not in self.names.functions
                    and "getattr" not in self.names.imports
                    and self.names.resolve(func.args[0]) == "torch.nn.functional" and builtin_unbound(self.names, "getattr")):
                return None
            fqn, key = "torch.nn.functional", func.args[1]
        else:
            fqn, key = self.names.resolve(func.value), func.slice
        if fqn is None:
            return None
        ops = TABLE.lookup_ops(fqn, key)
        return (fqn, ops) if ops else None

    # ------------------------------------------------------------------ canonical operations
    def _canonical(self, kind: str, name: str, call: ast.Call, common: dict, frontier: list,
                   ctx: _Ctx) -> tuple[dict, list]:
        """The canonical operation of a call node (``canon``/``maybe``/``view`` fields; see
        structure/ops.py), and the frontier after any node it implies first (the transpose
        of ``k`` in ``einsum("bhid,bhjd->bhij", q, k)``)."""
        args, kwargs = common["args"], common["kwargs"]
        arg_spans, kwarg_spans = common["arg_spans"], common["kwarg_spans"]
        for a in call.args:  # (loops, not any() over generators: every call node asks)
            if a.__class__ is ast.Starred:
                return {}, frontier
        for k, _ in kwargs:
            if k == "**":
                return {}, frontier
        extra: tuple = ()
        if kind == "layer":
            found = self._layer_canon.get(name) if not ctx.keys else None
            if found is None:  # per layer, once: what its constructors build
                ctors = self._ctors(name) if not ctx.keys else self._keyed_ctors(name, ctx.keys)
                definite, maybe = TABLE.layer_ops(ctors)
                identity = False
                if not definite and not maybe and len(ctors) > 1:
                    # nn.Dropout(p) if p > 0 else nn.Identity() (espnet's attention dropout):
                    # the identity is the dropout at p = 0, so the layer is a dropout whose
                    # module may have no rate to read (Node.identity)
                    kept = [c for c in ctors if self._builds(c) != IDENTITY]
                    if kept and len(kept) < len(ctors):
                        kept_definite, kept_maybe = TABLE.layer_ops(kept)
                        if kept_definite in IDENTITY_AT_ZERO and not kept_maybe:
                            definite, identity, ctors = kept_definite, True, kept
                if definite == SOFTMAX and len(ctors) > 1:
                    # a partial softmax chosen beside another value (canon.layer_ops): its dim
                    ctors = [c for c in ctors if TABLE._ctor_ops(c) is not None]
                extra = self._ctor_kwargs(TABLE.ops[definite], ctors) if definite else None
                rate = ""
                if definite == DROPOUT:
                    rates = {c.rate if c.__class__ is Ctor else "" for c in ctors}
                    rate = rates.pop() if len(rates) == 1 else None
                    if rate is None:
                        extra = None  # wrappers keeping their rates under other names: no one rate to read
                found = (definite, maybe, extra, identity, rate)
                if not ctx.keys:
                    self._layer_canon[name] = found
            definite, maybe, extra, identity, rate = found
            if maybe:
                return {"maybe": maybe}, frontier
            if not definite or extra is None:
                return {}, frontier
            op = TABLE.ops[definite]
            form = "function"
        elif kind == "built":
            found = TABLE.module(name)
            if found is None:
                return {}, frontier
            op = found[0]
            extra = self._ctor_kwargs(op, [call.func])
            if extra is None:
                return {}, frontier
            form = "function"
        elif kind == "call":
            special = self._special_call(name, call, common, frontier, ctx)
            if special is not None:
                return special
            op = TABLE.function(name)
            if op is None:
                return {}, frontier
            form = "function"
        elif name == "baddbmm":
            return self._baddbmm(call, common, frontier, ctx) or ({}, frontier)
        else:
            return self._canonical_method(name, call, common, ctx), frontier
        view = canonical.normalise(op, form, args, kwargs, arg_spans, kwarg_spans, name if kind == "call" else None)
        if view is None:
            return {}, frontier
        if extra:
            names = {k for k, _ in view.kwargs}
            if names & {k for k, _ in extra}:
                return {}, frontier
            view = View(view.args, view.kwargs + tuple(extra), view.arg_spans,
                        view.kwarg_spans + tuple((None, None) for _ in extra))
        fields = {"canon": op.name, "view": self._origins(op, self._dims(op, view, call))}
        if kind == "layer":
            if identity:
                fields["identity"] = True
            if rate:
                fields["rate"] = rate
        return fields, frontier

    def _passes_through(self, helper: tuple, value: Ref) -> bool:
        """Does the same-file ``helper`` (function, is a method) return ``value`` as it is?  When
        it returns any tensor as it is (formulas.passes_tensor_through; once per function) and
        ``value`` is a tensor: the output of a canonical tensor operation (a Linear, a matmul, a
        softmax; not a module whose output may be a tuple)."""
        func, method = helper
        found = self._through.get(id(func))
        if found is None:
            found = self._through[id(func)] = passes_tensor_through(func, method)
        return found and self._tensor_ref(value)

    def _sibling_through(self, fqn: str) -> bool:
        """Does the function ``fqn`` of another module of the package return any tensor as it is
        (formulas.passes_tensor_through, read by siblings.sibling_passes_through)?  Once per name."""
        key = "sibling:" + fqn
        found = self._through.get(key)
        if found is None:
            found = self._through[key] = sibling_passes_through(self.package, fqn)
        return found

    def _tensor_ref(self, value: Ref) -> bool:
        """Is ``value`` a tensor: the output of a canonical tensor operation (a Linear, a matmul,
        a softmax; not a module whose output may be a tuple), or a name every node of the flow so
        far that binds it computes one?"""
        key = value.key
        producer = self.producers.get(key)
        if producer is not None:
            return _tensor_valued(producer)
        # a name: every node of the flow so far that binds it computes a tensor
        found = False
        for node in self.nodes:
            if key in node.defs:
                if not _tensor_valued(node):
                    return False
                found = True
        return found

    def _identity_layer(self, layer: str) -> bool:
        """Is every constructor ``__init__`` binds to ``layer`` an ``nn.Identity()``?  Computed
        once per layer (``_identities``); a constructor call not spelled ``...Identity(...)`` is
        none without resolving its name."""
        ctors = self._ctors(layer)
        found = bool(ctors)
        for ctor in ctors:
            if ctor.__class__ is ast.Call:
                func = ctor.func
                spelled = func.attr if func.__class__ is ast.Attribute else func.id if func.__class__ is ast.Name else ""
                if spelled != "Identity" or self._builds(ctor) != IDENTITY:
                    found = False
                    break
            elif self._builds(ctor) != IDENTITY:
                found = False
                break
        self._identities[layer] = found
        return found

    def _builds(self, ctor) -> str | None:
        """The class a constructor of a layer builds (its resolved name), None when unknown."""
        if isinstance(ctor, ast.Call):
            return self.names.resolve(ctor.func)
        return getattr(ctor, "fqn", None)

    def _product_plus_terms(self, expr: ast.BinOp, frontier, ctx: _Ctx):
        """``ac + bd + ef`` (three or more terms summed inline, Transformer-XL / XLNet's content,
        position and segment scores) whose first term names a product (a matmul, any spelling):
        read as ``ac + (bd + ef)``, the product plus one additive bias (the other terms, products
        of q with position embeddings included: what the fixer passes as the mask, exact in any
        grouping up to rounding).  None for any other sum (read as written)."""
        terms = [expr.right]
        left = expr.left
        while left.__class__ is ast.BinOp and left.op.__class__ is ast.Add:
            terms.append(left.right)
            left = left.left
        terms.append(left)
        terms.reverse()
        if terms[0].__class__ is not ast.Name:
            return None
        if not self._is_product(terms[0].id, ctx):
            return None
        op = TABLE.operator("+")
        canon = op.name if op is not None else ""
        first, frontier = self._value(terms[0], frontier, ctx)
        rest, frontier = self._value(terms[1], frontier, ctx)
        rest_span = span(terms[1])
        for term in terms[2:]:
            value, frontier = self._value(term, frontier, ctx)
            out = self._temp("")
            term_span = span(term)
            spans = (rest_span, term_span)
            rest_span = (rest_span[0], rest_span[1], term_span[2], term_span[3])
            _, frontier = self._new(
                ctx, frontier, kind="op", op="+", args=(rest, value), outs=(out,), uses=_keys((rest, value)),
                defs=frozenset({out.key}), span=rest_span, arg_spans=spans, canon=canon,
            )
            rest = out
        out = self._temp("")
        _, frontier = self._new(
            ctx, frontier, kind="op", op="+", args=(first, rest), outs=(out,), uses=_keys((first, rest)),
            defs=frozenset({out.key}), span=span(expr), arg_spans=(span(terms[0]), rest_span), canon=canon,
        )
        return out, frontier

    def _scaled_scores_minus(self, expr: ast.BinOp, ctx: _Ctx) -> bool:
        """``s * w - t`` (or ``s / c - t``) where ``s`` names a product (any spelling), maybe
        scaled once before (``s = q @ k^T / sqrt(3)``) and ``t`` is a tensor term, no number,
        no number times a tensor and nothing the minuend's factor reads (those are blends):
        ``s * w + (-t)``, the scaled scores plus a bias (ESM3's geometric attention, a rotation
        term minus a weighted distance term).  A difference whose minuend is no scaled product
        (rotary ``x1 * cos - x2 * sin``, a centring ``x - mean``) keeps its own node."""
        left = expr.left
        if left.op.__class__ not in (ast.Mult, ast.Div) or left.left.__class__ is not _AST_NAME:
            return False
        right = expr.right.operand if expr.right.__class__ is ast.UnaryOp else expr.right
        if right.__class__ is ast.Constant:
            return False
        if right.__class__ is ast.BinOp and right.op.__class__ is ast.Mult \
                and ast.Constant in (right.left.__class__, right.right.__class__):
            return False  # (w * b - 10 * (1 - b): a blend with a number, canon.mask_blend's kind)
        weights = {n.id for n in ast_walk(left.right) if n.__class__ is _AST_NAME}
        if weights and any(n.__class__ is _AST_NAME and n.id in weights for n in ast_walk(right)):
            return False  # (the minuend's factor read again in the subtrahend: a blend, no bias)
        if right.__class__ is _AST_NAME and self._bound_term_blends(right.id, weights, ctx):
            return False
        key = getattr(self._name_value(left.left.id, ctx), "key", None)
        steps = 2
        for node in reversed(self.nodes):
            if key not in node.defs:
                continue
            if node.canon == "torch.matmul":
                return True
            steps -= 1
            if not steps or node.op not in ("*", "/") or not node.args:
                return False
            key = getattr(node.args[0], "key", None)
        return False

    def _bound_term_blends(self, name: str, weights: set, ctx: _Ctx) -> bool:
        """The subtrahend of ``_scaled_scores_minus`` bound to a name before (``fill = 1e4 *
        (1 - keep)``, then ``s * keep - fill``): a blend when the value bound is a number times
        a tensor or reads (through its temporaries, a few steps back) a name of the minuend's
        factor, as the same term written inline would be."""
        bound = self._last_def(getattr(self._name_value(name, ctx), "key", None))
        if bound is None:
            return False
        if bound.op == "*" and any(a.__class__ is Const for a in bound.args):
            return True
        factors = {getattr(self._name_value(w, ctx), "key", None) for w in weights}
        stack, steps = [bound], 8
        while stack and steps:
            steps -= 1
            node = stack.pop()
            for value in node.args:
                if value.__class__ is not Ref:
                    continue
                if value.key in factors:
                    return True
                producer = self.producers.get(value.key) or self._last_def(value.key)
                if producer is not None:
                    stack.append(producer)
        return False

    def _last_def(self, key) -> Node | None:
        """The last node of the flow so far that binds ``key`` (None when none does)."""
        for node in reversed(self.nodes):
            if key in node.defs:
                return node
        return None

    @staticmethod
    def _cat_dim(call: ast.Call, common: dict):
        """The dim a ``torch.cat`` call writes as a literal (keyword or second positional), else None."""
        for name, value in common["kwargs"]:
            if name == "dim":
                return getattr(value, "value", None)
        if len(call.args) == 2:
            second = common["args"][1] if len(common["args"]) > 1 else None
            return getattr(second, "value", None)
        return None

    def _key_cat(self, call: ast.Call, ctx: _Ctx) -> None:
        """Record a two-part ``torch.cat`` along the last axis with the keys its parts hold (a
        name's value, or the node an expression written in place made): structure/key_cats.py
        reads it once the flow is built."""
        keys = []
        for elt in call.args[0].elts:
            if elt.__class__ is _AST_NAME:
                value = self._name_value(elt.id, ctx)
                keys.append(getattr(value, "key", None))
                continue
            where = span(elt)
            made = next((n for n in reversed(self.nodes[-64:]) if n.span == where and len(n.outs) == 1), None)
            keys.append(made.outs[0].key if made is not None else None)
        if None not in keys:
            self.key_cats.append((span(call), keys[0], keys[1]))

    def _is_product(self, name: str, ctx: _Ctx) -> bool:
        """Was ``name`` last assigned a matmul product (any spelling) in this flow?"""
        ref = self._name_value(name, ctx)
        key = getattr(ref, "key", None)
        for node in reversed(self.nodes):
            if key in node.defs:
                return node.canon == "torch.matmul"
        return False

    def _origins(self, op, view: View) -> View:
        """Mark the operands of a product that are transposes written inline (see View)."""
        if op.name != "torch.matmul":
            return view
        origins = []
        for value in view.args:
            producer = self.producers.get(value.key) if isinstance(value, Ref) else None
            if producer is not None and producer.canon == "torch.transpose" and producer.view is not None:
                dims = tuple(v.value for _, v in producer.view.kwargs if isinstance(v, Const))
                origins.append((producer.view.arg_spans[0], dims))
            else:
                origins.append(None)
        if not any(origins):
            return view
        return replace(view, origins=tuple(origins))

    def _canonical_method(self, name: str, call: ast.Call, common: dict, ctx: _Ctx) -> dict:
        args, kwargs = common["args"], common["kwargs"]
        arg_spans, kwarg_spans = common["arg_spans"], common["kwarg_spans"]
        receiver = args[0]
        if name in canonical.CASTS and len(args) == 1 and not kwargs:
            dtype = canonical.CASTS[name]
            return {"canon": "torch.Tensor.to",
                    "view": View((receiver,), (("dtype", Ref(dtype, dtype)),), arg_spans[:1], ((None, None),))}
        if name == "type_as" and len(args) == 2 and not kwargs and isinstance(args[1], Ref):
            other = args[1]
            dtype = Ref(other.key + ".dtype", self._text(call.args[0]) + ".dtype")
            return {"canon": "torch.Tensor.to",
                    "view": View((receiver,), (("dtype", dtype),), arg_spans[:1], ((None, None),))}
        if (name == "clamp" or name == "clamp_min") \
                and canonical.floors_at_dtype_min(call, None, self.names.resolve) is not None:
            # s.clamp(min=torch.finfo(s.dtype).min): the floor of torch.max's kind (above)
            return {"canon": "canon.softmax_shift", "view": View((receiver,), (), arg_spans[:1], ())}
        if name == "permute" and not kwargs:
            perm = self._ints(call.args[0] if len(call.args) == 1 else call.args, tuple_ok=len(call.args) == 1)
            if perm is not None and canonical.permutation_swaps_last_two(perm):
                return self._last_two(receiver, arg_spans[0])
            return {}
        inplace = False
        op = TABLE.method(name)
        if op is None:
            op = TABLE.inplace(name)
            inplace = op is not None and call is ctx.bare and isinstance(receiver, Ref)
            # scores.float().masked_fill_(m, v): a temporary that no name holds, filled in
            # place, is the filled copy (LayoutLMv2)
            fresh = op is not None and call is not ctx.bare and isinstance(receiver, Ref) and receiver.key.startswith("%")
            if not (inplace or fresh or op is not None and self._filled_then_rebound(call, ctx)):
                return {}
        view = canonical.normalise(op, "method", args, kwargs, arg_spans, kwarg_spans)
        if view is None:
            return {}
        if op.name == "torch.Tensor.to":
            cast = self._dtype_view(view, call, ctx)
            if cast is None:
                cast = self._like_view(view)
                if cast is None:
                    return {}
            view = cast
        fields = {"canon": op.name, "view": self._origins(op, self._dims(op, view, call))}
        if inplace:
            fields["inplace"] = True
        return fields

    @staticmethod
    def _filled_then_rebound(call: ast.Call, ctx: _Ctx) -> bool:
        """``attn = attn.masked_fill_(m, v).softmax(-2)`` (supar's relative attention): the fill
        writes ``attn`` in place and hands it on, and the statement binds the name again, so no
        later read sees the filled tensor under its old name: the value is the filled copy, as
        ``attn.masked_fill(m, v)``.  Only when the name is read once in the statement."""
        receiver = call.func.value
        name = ctx.rebinds
        if name is None or receiver.__class__ is not _AST_NAME or receiver.id != name:
            return False
        return sum(1 for n in ast_walk(ctx.top) if n.__class__ is _AST_NAME and n.id == name) == 1

    @staticmethod
    def _einsum_vector(equation: str) -> tuple:
        """An einsum that is a matrix-vector product (canon.einsum_vector), read as the matrix
        product with the vector's size-1 row axis: (einsum_product's reading of the widened
        equation, with that axis added to the vector's broadcast dims, nearest the end first),
        and the dims the written output is squeezed at; (None, ()) for any other equation."""
        vector = canonical.einsum_vector(equation)
        if vector is None:
            return None, ()
        written, index = vector
        kind, pair, broadcast, moves = canonical.einsum_product(written)
        broadcast = tuple(((-2,) + dims) if n == index else dims for n, dims in enumerate(broadcast))
        return (kind, pair, broadcast, moves), (-2,)

    def _special_call(self, fqn: str, call: ast.Call, common: dict, frontier: list, ctx: _Ctx):
        """einsum / permute / rearrange / where that compute a table operation."""
        args, arg_spans = common["args"], common["arg_spans"]
        tail = fqn.rsplit(".", 1)[-1]
        if tail == "einsum" and fqn in ("torch.einsum", "torch.functional.einsum", "einops.einsum") \
                and not common["kwargs"] and len(args) == 3:
            if fqn == "einops.einsum":
                equation, operands, spans = args[2], args[:2], arg_spans[:2]
            else:
                equation, operands, spans = args[0], args[1:], arg_spans[1:]
            if not (isinstance(equation, Const) and isinstance(equation.value, str)):
                written = call.args[-1 if fqn == "einops.einsum" else 0] if call.args else None
                if written.__class__ is not ast.JoinedStr:
                    return None
                # an f-string over locals holding literals: the one choice read as a product
                written = written_equations.equation(
                    written, lambda name: None if name in ctx.params else ctx.exprs.get(name))
                if written is None:
                    return None
                equation = Const(written)
            if fqn == "einops.einsum":  # axis names may be words: one letter each, as torch's
                written = canonical.einops_equation(equation.value)
                if written is None:
                    return None
                equation = Const(written)
            found = canonical.einsum_product(equation.value)
            squeezed: tuple = ()
            if found is None:
                found, squeezed = self._einsum_vector(equation.value)
                if found is None:
                    grouped = canonical.einsum_grouped(equation.value)
                    if grouped is None:
                        return None
                    # attention over grouped axes: the product of the flattened groups, which
                    # structure/groups.py keeps only where a view around the softmax flattens
                    # the key group
                    first = grouped[1]
                    view = View((operands[first], operands[1 - first]), (), (spans[first], spans[1 - first]), (),
                                grouped=grouped)
                    self.grouped_products = True
                    return {"canon": "torch.matmul", "view": view}, frontier
            kind, (i, j), broadcast, moves = found
            a, b, a_span, b_span = operands[i], operands[j], spans[i], spans[j]
            if kind.startswith("t_"):  # a^T @ b (channel-first operands)
                a, frontier = self._implied_transpose(a, a_span, call, frontier, ctx)
                a_span = None
            if kind.endswith("matmul_t"):  # a @ b^T (scores q . k)
                b, frontier = self._implied_transpose(b, b_span, call, frontier, ctx)
                b_span = None
            view = View((a, b), (), (a_span, b_span), (), broadcast=(broadcast[i], broadcast[j]) if any(broadcast) else (),
                        moves=(moves[i], moves[j], moves[2]) if any(moves) else (), squeezed=squeezed)
            view = self._origins(TABLE.ops["torch.matmul"], view)
            if moves[2] is None:
                return {"canon": "torch.matmul", "view": view}, frontier
            # The product, then its axes moved to the written output: a node of its own, so a
            # step after the einsum sees the moved value (a softmax over it is over another axis)
            product = self._temp("")
            self.moved_products = True
            _, frontier = self._new(ctx, frontier, kind="call", op=fqn, args=(a, b),
                                    outs=(product,), uses=_keys((a, b)), defs=frozenset({product.key}),
                                    span=span(call), arg_spans=(a_span, b_span), canon="torch.matmul", view=view)
            return {"moved": product}, frontier
        if fqn in ("torch.baddbmm", "torch.Tensor.baddbmm"):
            return self._baddbmm(call, common, frontier, ctx)
        if fqn in ("torch.cat", "torch.concat", "torch.concatenate"):
            rotated = self._rotate_half(call, ctx)
            if rotated is not None:
                view = View((rotated,), (), (None,), ())
                return {"canon": "canon.rotate_half", "view": view}, frontier
            rope = self._rope_halves(call, ctx)
            if rope is None and call.args and call.args[0].__class__ in (ast.Tuple, ast.List) \
                    and len(call.args[0].elts) == 3:
                rope = self._partial_rope_halves(call, ctx)
            if rope is not None:
                (x, cos, sin), first = rope
                view = View((x, cos, sin), (), (None, None, None), ())
                # the finding covers the rotation from its first half's expression to the cat
                wide = (first.lineno, first.col_offset, call.end_lineno or call.lineno, call.end_col_offset or 0)
                return {"canon": "canon.rope_halves", "view": view, "span": wide}, frontier
            if key_cats.gate(call) and self._cat_dim(call, common) == -1:
                # two parts along the last axis: maybe scores of one query against two key blocks
                self._key_cat(call, ctx)
            return None
        if fqn == "torch.permute" and len(call.args) == 2 and not common["kwargs"]:
            perm = self._ints(call.args[1], tuple_ok=True)
            if perm is not None and canonical.permutation_swaps_last_two(perm):
                return self._last_two(args[0], arg_spans[0]), frontier
            return {}, frontier
        if fqn == "einops.rearrange" and len(args) == 2 and isinstance(args[1], Const) \
                and isinstance(args[1].value, str):
            listed = call.args[0] if call.args else None
            if listed.__class__ in (ast.List, ast.Tuple) and len(listed.elts) == 2 \
                    and canonical.rearrange_concatenates_last(args[1].value):
                # rearrange([-x2, x1], "h ... d -> ... (h d)"): the parts stacked, then laid end
                # to end along the last axis -- torch.cat's rotate-half (torchmix, research58)
                rotated = self._rotated_parts(list(listed.elts), ctx)
                if rotated is not None:
                    return {"canon": "canon.rotate_half", "view": View((rotated,), (), (None,), ())}, frontier
            if canonical.rearrange_swaps_last_two(args[1].value):
                return self._last_two(args[0], arg_spans[0]), frontier
            if canonical.rearrange_class_axis_second(args[1].value):
                return self._class_axis_second(args[0], arg_spans[0]), frontier
            return {}, frontier
        if fqn == "torch.where" and len(args) == 3 and not common["kwargs"]:
            # where(c, x, fill) is x.masked_fill(~c, fill); where(c, fill, x) is x.masked_fill(c, fill)
            fills = [self._fill_of(a, ctx) is not None for a in call.args[1:]]
            if fills.count(True) != 1:
                return None
            keep = 1 if fills[1] else 2
            fill = 3 - keep
            view = View((args[keep],), (("mask", args[0]), ("value", args[fill])), (arg_spans[keep],),
                        ((arg_spans[0], arg_spans[0]), (arg_spans[fill], arg_spans[fill])))
            return {"canon": "torch.Tensor.masked_fill", "view": view}, frontier
        if fqn == "einx.where" and len(args) == 4 and not common["kwargs"] and isinstance(args[0], Const) \
                and isinstance(args[0].value, str):
            # einx.where("b j, b h i j, -> b h i j", cond, x, fill) is torch.where with cond
            # broadcast over the axes it lacks (canon.einx_where_layout; the synthesis indexes it)
            layout = canonical.einx_where_layout(args[0].value)
            if layout is None or self._fill_of(call.args[4 - layout[0]], ctx) is None:
                return None
            keep = layout[0] + 1
            fill = 5 - keep
            view = View((args[keep],), (("mask", args[1]), ("value", args[fill])), (arg_spans[keep],),
                        ((arg_spans[1], arg_spans[1]), (arg_spans[fill], arg_spans[fill])))
            return {"canon": "torch.Tensor.masked_fill", "view": view}, frontier
        return None

    def _fill_lookup(self, ctx: _Ctx):
        """The kind of fill a name holds (canon.held_fill's ``lookup``): a local name's, else a
        module-level constant's (:meth:`_module_fill`)."""
        fills = ctx.fills
        if not self.names.constants:
            return fills.get
        return lambda name: fills.get(name) or self._module_fill(name, ctx)

    def _module_fill(self, name: str, ctx: _Ctx) -> str | None:
        """The fill a module-level constant holds (recurrentgemma's ``_MIN_LOGITS_VALUE =
        -2.3819763e38`` in ``torch.where(mask, logits, _MIN_LOGITS_VALUE)``), where the function
        neither takes the name as a parameter nor binds it (the module's value is what it reads)."""
        value = self.names.constants.get(name)
        if value is None or name in ctx.params or name in self.names.rebound:
            return None  # (a constant bound again: which value the function reads is not known)
        kind = canonical.fill_value(value)
        definition = ctx.definition
        if kind is None or definition is None or name in declared_global(self.names):
            return None  # (a function writing it through ``global`` may change it)
        if isinstance(definition, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            a = definition.args
            if any(p.arg == name for p in (*a.posonlyargs, *a.args, *a.kwonlyargs, a.vararg, a.kwarg) if p):
                return None
        if any(node.__class__ is _AST_NAME and node.id == name and node.ctx.__class__ is not ast.Load
               for node in ast_walk(definition)):
            return None
        return kind

    def _fill_of(self, expr: ast.expr, ctx: _Ctx) -> str | None:
        """:func:`canon.held_fill` of ``expr``, also when it calls a function of the file whose
        body only returns a fill (``max_neg_value(t)``: ``return -torch.finfo(t.dtype).max``)."""
        kind = canonical.held_fill(expr, self._fill_lookup(ctx))
        if kind is not None or not (isinstance(expr, ast.Call) and isinstance(expr.func, ast.Name)):
            return kind
        definition = self.names.functions.get(expr.func.id) if expr.func.id not in ctx.params else None
        body = [st for st in definition.body if not (isinstance(st, ast.Expr) and isinstance(st.value, ast.Constant))] \
            if isinstance(definition, (ast.FunctionDef, ast.AsyncFunctionDef)) else []
        if len(body) == 1 and isinstance(body[0], ast.Return) and body[0].value is not None:
            return canonical.fill_value(body[0].value)
        return None

    def _baddbmm(self, call: ast.Call, common: dict, frontier: list, ctx: _Ctx):
        """``baddbmm(input, a, b, beta=, alpha=)`` (function or method, operands positional or
        ``batch1=`` / ``batch2=``) is ``beta * input + alpha * (a @ b)``: with beta 0 the input
        is ignored, ``(a @ b) * alpha``; with beta 1 (the default) it is an additive bias,
        ``(a @ b) * alpha + input`` (BLOOM's ALiBi scores ``alibi.baddbmm(q, k^T, beta=1.0,
        alpha=1/sqrt(d))``).  A beta written as ``self.beta`` counts when every assignment the
        class makes to it is that number.  Other betas are not a product and a bias."""
        args, arg_spans = list(common["args"]), list(common["arg_spans"])
        kwargs = dict(common["kwargs"])
        spans = {name: value_span for (name, _), (value_span, _) in zip(common["kwargs"], common["kwarg_spans"])}
        for name in ("input", "batch1", "batch2")[len(args):]:
            if name not in kwargs:
                return None
            args.append(kwargs.pop(name))
            arg_spans.append(spans[name])
        if len(args) != 3 or set(kwargs) - {"beta", "alpha"}:
            return None
        written = {k.arg: k.value for k in call.keywords if k.arg}
        beta = 1 if "beta" not in kwargs else self._number_of(written.get("beta"))
        if beta is None and written.get("beta").__class__ is ast.Name:
            beta = self._beta_on_zeros(call, written, ctx)
        if beta not in (0, 1):
            return None
        a, b, a_span, b_span = args[1], args[2], arg_spans[1], arg_spans[2]
        view = self._origins(TABLE.ops["torch.matmul"], View((a, b), (), (a_span, b_span), ()))
        if beta == 0 and "alpha" not in kwargs:
            return {"canon": "torch.matmul", "view": view}, frontier
        product = self._temp("")  # (batch1 and batch2 are 3-D: the product is a bmm)
        _, frontier = self._new(ctx, frontier, kind="call", op="torch.bmm", args=(a, b), outs=(product,),
                                uses=_keys((a, b)), defs=frozenset({product.key}), span=span(call),
                                arg_spans=(a_span, b_span), canon="torch.matmul", view=view)
        scaled = View((product, kwargs["alpha"]), (), (None, spans["alpha"]), ()) if "alpha" in kwargs else None
        if beta == 0:
            return {"canon": "torch.mul", "view": scaled}, frontier
        if scaled is not None:
            out = self._temp("")
            _, frontier = self._new(ctx, frontier, kind="call", op="torch.mul", args=scaled.args, outs=(out,),
                                    uses=_keys(scaled.args), defs=frozenset({out.key}), span=span(call),
                                    arg_spans=scaled.arg_spans, canon="torch.mul", view=scaled)
            product = out
        add = TABLE.operator("+")
        return {"canon": add.name, "view": View((product, args[0]), (), (None, arg_spans[0]), ())}, frontier

    def _beta_on_zeros(self, call: ast.Call, written: dict, ctx: _Ctx) -> int | None:
        """0 when ``beta`` is a local name that the ``if`` just before sets to 0 on one path and
        to a number on a path that zero-fills the input (GPT-BigCode's CPU workaround): the
        input adds nothing on any path (zero_input.adds_nothing).  None otherwise."""
        name = written["beta"].id
        given = call.args[0] if len(call.args) == 3 else written.get("input") if len(call.args) < 3 else None
        if given is None and len(call.args) == 2 and call.func.__class__ is ast.Attribute:
            given = call.func.value  # (the method form: the receiver is the input)
        if name in ctx.params or given.__class__ is not ast.Name:
            return None
        return 0 if adds_nothing(ctx.definition, ctx.stmt, name, given.id, self.names.resolve) else None

    def _number_of(self, expr: ast.expr | None):
        """The number a literal or a ``self.<attr>`` the class only ever sets to one literal
        holds; None otherwise."""
        if isinstance(expr, ast.UnaryOp) and isinstance(expr.op, ast.USub):
            value = self._number_of(expr.operand)
            return None if value is None else -value
        if isinstance(expr, ast.Constant):
            value = expr.value
            return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None
        if not (isinstance(expr, ast.Attribute) and isinstance(expr.value, ast.Name) and expr.value.id == "self") \
                or self.cls is None:
            return None
        values = set()
        stack = list(self.cls.node.body)
        while stack:
            node = stack.pop()
            for block in ("body", "orelse", "finalbody", "handlers", "cases"):
                stack.extend(getattr(node, block, ()))
            if isinstance(node, (ast.AugAssign, ast.AnnAssign)) and isinstance(node.target, ast.Attribute) \
                    and isinstance(node.target.value, ast.Name) and node.target.value.id == "self" \
                    and node.target.attr == expr.attr:
                return None  # (an annotated or augmented assignment: not read here)
            if isinstance(node, ast.Assign):
                for target in node.targets:
                    if isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name) \
                            and target.value.id == "self" and target.attr == expr.attr:
                        value = node.value
                        values.add(value.value if isinstance(value, ast.Constant) and not isinstance(value.value, bool)
                                   and isinstance(value.value, (int, float)) else None)
        return values.pop() if len(values) == 1 else None

    def _default_here(self, target, name: str, value) -> Const:
        """The default a call leaving ``name`` out hands the inlined ``target``: a literal, or an
        :class:`Assumed` one where the default is an integer and another call in the file
        passes the module-level function something else (its text, which a fix rewrites, runs
        for that call too: passed_defaults)."""
        if value.__class__ is int and self._overridden(target, name, value):
            return Assumed(value, f"`{name}` of `{target.name}` is {value} by default, and a call of "
                                  f"`{target.name}` in the file passes another: the kernel would assume {value}")
        return Const(value)

    def _overridden(self, target, name: str, value: int) -> bool:
        """May a use of ``target`` -- a module-level function, or a method of the class analysed
        (``self._norm(x, dim=1)``) -- pass ``name`` another value than ``value``?"""
        if self.names.functions.get(target.name) is target:
            return passed_defaults.overridden(self.names, target, name, value, self.lines)
        if self.cls is not None and self.cls.methods.get(target.name) is target:
            return passed_defaults.overridden(self.names, target, name, value, self.lines, cls=self.cls)
        return False

    def _root_param_default(self, expr: ast.expr, value) -> Assumed | None:
        """A dim written as a parameter of the function analysed (``dim=dim`` in ``def
        rms_norm(x, dim=-1, eps=1e-5)`` as a root), that the function never binds again and
        whose default is an integer: that integer, as an :class:`Assumed` value (a caller may
        pass another).  Only the root's own name: an inlined helper's parameters are bound to
        the caller's values (keys of their own), not read here."""
        if expr.__class__ is not ast.Name or value.__class__ is not Ref or value.key != expr.id \
                or expr.id not in self._root_params:
            return None
        func = self._root_func
        number = passed_defaults.int_default(func, expr.id)
        if number is None:
            return None
        for node in ast_walk(func):
            if node.__class__ is ast.Name and node.id == expr.id and node.ctx.__class__ is not ast.Load:
                return None
        return Assumed(number, f"`{expr.id}` is a parameter of `{func.name}`, {number} by default: the kernel "
                               f"would assume that value, and a caller may pass another")

    def _parameter_default(self, expr: ast.expr) -> Assumed | None:
        """``self.<attr>`` that the class sets once, in ``__init__``, to a parameter whose default
        is an integer literal (``self.dim = dim`` with ``dim: int = -1``) and that ``__init__``
        does not change: that integer, as an :class:`Assumed` value."""
        if not (isinstance(expr, ast.Attribute) and isinstance(expr.value, ast.Name) and expr.value.id == "self") \
                or self.cls is None:
            return None
        init = self.cls.methods.get("__init__")
        if init is None:
            return None
        found = []
        stack = list(self.cls.node.body)
        while stack:
            node = stack.pop()
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                stack.extend(node.body)
                continue
            for block in ("body", "orelse", "finalbody", "handlers", "cases"):
                stack.extend(getattr(node, block, ()))
            targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(
                node, (ast.AugAssign, ast.AnnAssign)) else []
            for target in targets:
                for sub in ast_walk(target):
                    if isinstance(sub, ast.Attribute) and isinstance(sub.value, ast.Name) \
                            and sub.value.id == "self" and sub.attr == expr.attr:
                        found.append(node)
        if len(found) != 1 or not isinstance(found[0], ast.Assign) or len(found[0].targets) != 1 \
                or not isinstance(found[0].value, ast.Name) or found[0] not in init.body:
            return None
        name = found[0].value.id
        number = self._number_of(param_default(init.args, name))
        if not isinstance(number, int) or isinstance(number, bool):
            return None
        for node in ast_walk(init):  # the parameter is not reassigned before it is stored
            if isinstance(node, ast.Name) and node.id == name and isinstance(node.ctx, (ast.Store, ast.Del)):
                return None
        return Assumed(number, f"`self.{expr.attr}` is the constructor's `{name}`, {number} by default: the "
                               f"kernel would assume that value, and a caller may pass another")

    # -- rotate-half: cat((-x2, x1), dim=-1) of the two halves of x's last axis ----------
    def _remember(self, targets: list, value_expr: ast.expr, ctx: _Ctx) -> None:
        if len(targets) == 1 and targets[0].__class__ is _AST_NAME:
            names = [targets[0].id]  # (the commonest target, without the comprehension)
        else:
            names = [n.id for t in targets for n in ((t,) if isinstance(t, ast.Name) else walk(t))
                     if isinstance(n, ast.Name)]
        # read before the names are forgotten: the value may rewrap the name's earlier binding
        fill = None
        if len(targets) == 1 and isinstance(targets[0], ast.Name):
            func = value_expr.func if value_expr.__class__ is _AST_CALL else None
            # (a method call other than .to and the fill holders is no fill, as canon.held_fill
            # answers for it after its tests: most assigned calls, asked nothing)
            if func.__class__ is not ast.Attribute or func.attr == "to" or func.attr in canonical._FILL_HOLDERS:
                fill = canonical.held_fill(value_expr, self._fill_lookup(ctx))
        parts = None
        kind = value_expr.__class__
        if (kind is ast.Call and value_expr.func.__class__ is ast.Attribute and value_expr.func.attr == "split"
                or kind is ast.ListComp and ctx.split_parts) and len(targets) == 1 \
                and targets[0].__class__ is ast.Name:
            parts = self._split_parts(value_expr, ctx)
        if ctx.split_parts:
            for key in [k for k, (whole, _, _) in ctx.split_parts.items() if k in names or whole in names]:
                del ctx.split_parts[key]
        if ctx.row_parts:
            for key in [k for k, part in ctx.row_parts.items() if k in names or any(p in names for p in part[1:])]:
                del ctx.row_parts[key]
        part = None
        if kind is ast.BinOp:
            if value_expr.op.__class__ is ast.Div and value_expr.left.__class__ is ast.Name:
                scaled = canonical.scaled_name(value_expr)
                part = ("scaled", *scaled) if scaled is not None else None
        elif (kind is ast.Call and value_expr.func.__class__ is ast.Attribute
              and value_expr.func.attr in canonical.ROW_MAX_CALLS) \
                or (kind is ast.Subscript and value_expr.value.__class__ is ast.Call) \
                or (kind is ast.Attribute and value_expr.attr == "values"):
            target = canonical.row_max_of(value_expr)
            part = ("max", target.id) if target.__class__ is ast.Name else None
        if part is not None and len(targets) == 1 and targets[0].__class__ is ast.Name \
                and targets[0].id not in part[1:]:
            ctx.row_parts[targets[0].id] = part
        for name in names:
            ctx.fills.pop(name, None)
            ctx.exprs.pop(name, None)
            ctx.fqn_alias.pop(name, None)
            ctx.choice_alias.pop(name, None)
            if ctx.choice_alias:
                ctx.choice_alias.pop(_MEMBER_LIST + name, None)
            if ctx.func_choice:
                ctx.func_choice.pop(name, None)
        if fill is not None:
            ctx.fills[targets[0].id] = fill
        if parts is not None and parts[2] != "cat":
            ctx.split_parts[targets[0].id] = parts
        if len(targets) != 1:
            return
        target = targets[0]
        if target.__class__ is _AST_NAME:
            # x = rearrange(x, "... (j d) -> ... j d", j=2): the value split, read now, before
            # the name is reassigned (each of the three readers takes only a call).  (The
            # commonest target first: the two readings below take tuples and lists only.)
            ctx.exprs[target.id] = (self._split_in_two(value_expr, ctx) or self._view_in_two(value_expr, ctx)
                                    or self._unflatten_in_two(value_expr, ctx) or value_expr) \
                if value_expr.__class__ is _AST_CALL else value_expr
            return
        if isinstance(target, (ast.Tuple, ast.List)) and isinstance(value_expr, (ast.Tuple, ast.List)) \
                and len(target.elts) == len(value_expr.elts) and all(isinstance(e, ast.Name) for e in target.elts):
            # x1, x2 = x[..., :h], x[..., h:]: each name holds its own element (an element that
            # reads one of the names being assigned holds their earlier values: not kept)
            stored = {e.id for e in target.elts}
            for elt, part in zip(target.elts, value_expr.elts):
                if not any(isinstance(n, ast.Name) and n.id in stored for n in walk(part)):
                    ctx.exprs[elt.id] = part
            return
        owner = _sizes_of(value_expr)
        if owner is not None and isinstance(target, (ast.Tuple, ast.List)) \
                and all(isinstance(e, ast.Name) for e in target.elts) and owner not in {e.id for e in target.elts}:
            # B, H, T, D = x.size() (or x.shape): each name is the size of one axis of x
            for index, elt in enumerate(target.elts):
                ctx.exprs[elt.id] = ("dim_size", owner, index, len(target.elts))
            return
        if not (isinstance(target, (ast.Tuple, ast.List)) and len(target.elts) == 2
                and all(isinstance(e, ast.Name) for e in target.elts) and isinstance(value_expr, ast.Call)
                and isinstance(value_expr.func, ast.Attribute)):
            return
        base = None
        if value_expr.func.attr == "chunk":
            # x1, x2 = x.chunk(2, dim=-1), or the function spelling torch.chunk(x, 2, dim=-1)
            base = chunk_in_two_last(value_expr, self.names.resolve)
            if base is None and self.cls is not None and self.names.resolve(value_expr.func) != "torch.chunk" \
                    and self._chunk_on_fixed_axis(value_expr):
                base = value_expr.func.value
        elif value_expr.func.attr == "unbind" and _unbind_second_last(value_expr):
            # x1, x2 = rearrange(x, "... (j d) -> ... j d", j=2).unbind(dim=-2): the halves too
            split = self._resolved(value_expr.func.value, ctx)
            split = self._split_in_two(split, ctx) or self._unflatten_in_two(split, ctx) or split
            base = split[1] if isinstance(split, tuple) and split[0] == "split2" else None
        if base is not None:
            for index, elt in enumerate(target.elts):
                ctx.exprs[elt.id] = ("half", base, index)

    def _chunk_on_fixed_axis(self, call: ast.Call) -> bool:
        """``x.chunk(2, dim=self.<attr>)`` where the attribute holds -1 in every instance the
        file builds (:meth:`_fixed_axis`): a GLU module built ``GLU(dim=-1)`` halves its
        input's last axis."""
        args = list(call.args) + [k.value for k in call.keywords if k.arg == "dim"]
        if len(args) != 2 or any(k.arg != "dim" for k in call.keywords) or _int_literal(args[0]) != 2:
            return False
        dim = args[1]
        return dim.__class__ is ast.Attribute and dim.value.__class__ is _AST_NAME and dim.value.id == "self" \
            and self._fixed_axis(dim.attr) == -1

    def _fixed_axis(self, attr: str) -> int | None:
        """The int ``self.<attr>`` holds in every instance of the class the file builds
        (:meth:`_fixed_literal`), else None."""
        value = self._fixed_literal(attr)
        return value if value.__class__ is int else None

    def _fixed_literal(self, attr: str) -> int | str | None:
        """The int or string ``self.<attr>`` holds in every instance of the class the file
        builds: ``__init__`` binds it once, to a parameter it never rebinds, nothing else in the
        file writes it, no same-file class derives from this one, and every construction in the
        file passes the same literal for the parameter (or leaves its literal default).  None
        otherwise (also when the file builds the class nowhere: another file's value is
        unknown)."""
        cls = self.cls
        found = cls.fixed_axes
        if found is None:
            found = cls.fixed_axes = {}
        if attr in found:
            return found[attr]
        found[attr] = None
        init = cls.methods.get("__init__")
        if init is None or cls.constructions is None or init not in cls.node.body or self.lines is None:
            return None
        held = [st.value for st in init.body if st.__class__ is ast.Assign and len(st.targets) == 1
                and st.targets[0].__class__ is ast.Attribute and st.targets[0].value.__class__ is _AST_NAME
                and st.targets[0].value.id == "self" and st.targets[0].attr == attr]
        writes = sum(1 for node in ast_walk(cls.node) if node.__class__ is ast.Attribute
                     and node.ctx.__class__ is ast.Store and node.value.__class__ is _AST_NAME
                     and node.value.id == "self" and node.attr == attr)
        if len(held) != 1 or writes != 1 or held[0].__class__ is not _AST_NAME:
            return None
        param = held[0].id
        args = init.args
        if param not in [a.arg for a in args.posonlyargs + args.args + args.kwonlyargs][1:] or any(
                node.__class__ is _AST_NAME and node.id == param and node.ctx.__class__ is not _LOAD
                for node in ast_walk(init)):
            return None
        if any(any(b.__class__ is _AST_NAME and b.id == cls.name for b in other.bases)
               for other in self.names.classes.values()) or not self._flag_fixed(attr):
            return None
        default = param_default(args, param)
        values = set()
        constructions = cls.constructions()
        for call, _, _ in constructions:
            passed = passed_argument(init, call, param)
            if passed is False:
                return None
            value = _int_or_str(default if passed is None and default is not None else passed) \
                if passed is not None or default is not None else None
            if value is None:
                return None
            values.add(value)
        if len(values) != 1:
            return None
        found[attr] = values.pop()
        return found[attr]

    def _split_in_two(self, expr, ctx: _Ctx) -> tuple | None:
        """``("split2", value of x)`` when ``expr`` is ``einops.rearrange(x, "... (j d) -> ... j d",
        j=2)``, x a name: the last axis split into two halves along a new second-to-last axis
        (any axis names)."""
        if not (isinstance(expr, ast.Call) and len(expr.args) == 2 and isinstance(expr.args[0], ast.Name)
                and len(expr.keywords) == 1 and self.names.resolve(expr.func) == "einops.rearrange"):
            return None
        pattern, size = expr.args[1], expr.keywords[0]
        if not (isinstance(pattern, ast.Constant) and isinstance(pattern.value, str)
                and isinstance(size.value, ast.Constant) and size.value.value == 2):
            return None
        found = _SPLIT_LAST.fullmatch(_einops_words(pattern.value))
        if not (found and found.group(2) == found.group(4) == size.arg
                and found.group(3) == found.group(5)):
            return None
        return "split2", self._name_value(expr.args[0].id, ctx)

    def _view_in_two(self, expr, ctx: _Ctx, minus_one: bool = False) -> tuple | None:
        """``("split2", value of x)`` when ``expr`` is ``x.view(B, H, T, 2, D // 2)`` (or
        ``reshape``; with ``minus_one`` also ``-1`` for the last size) with ``B, H, T, D =
        x.size()``: the last axis split into two halves along a new second-to-last axis, the
        other axes kept."""
        if not (isinstance(expr, ast.Call) and isinstance(expr.func, ast.Attribute) and expr.func.attr in ("view", "reshape")
                and isinstance(expr.func.value, ast.Name) and not expr.keywords):
            return None
        args = expr.args
        if len(args) == 1 and isinstance(args[0], (ast.Tuple, ast.List)):
            args = args[0].elts  # x.reshape((B, T, 2, D // 2)): the sizes as one tuple
        if len(args) < 3 or any(isinstance(a, ast.Starred) for a in args):
            return None
        base = expr.func.value.id
        *lead, two, half = args
        if not (isinstance(two, ast.Constant) and two.value == 2
                and ((minus_one and _int_literal(half) == -1) or self._is_half_of(half, base, ctx))):
            return None
        if len(lead) == 2 and _int_literal(lead[1]) == -1 and self._first_size_of(lead[0], base, ctx) \
                and not minus_one:
            # x.reshape((x.shape[0], -1, 2, x.shape[-1] // 2)) (poolformer's rotate_half): the
            # axes between the first and the last merged into one, the halves of the last axis
            # on a new one.  At rank 3, the rank at which the concatenated halves have x's shape
            # (rotary code adds them to x * cos), it is the split above; the fix's run-time
            # probe checks the rotation on the tensors it gets.
            return "split2", self._name_value(base, ctx)
        sizes = [ctx.exprs.get(a.id) if isinstance(a, ast.Name) else None for a in lead]
        if sizes != [("dim_size", base, i, len(lead) + 1) for i in range(len(lead))]:
            return None
        return "split2", self._name_value(base, ctx)

    def _first_size_of(self, expr, base: str, ctx: _Ctx) -> bool:
        """``x.shape[0]``, ``x.size(0)`` or a name holding it (``B, T, D = x.shape``)."""
        if isinstance(expr, ast.Name):
            held = ctx.exprs.get(expr.id)
            return isinstance(held, tuple) and len(held) == 4 and held[:3] == ("dim_size", base, 0)
        read = _size_read(expr)
        return read is not None and isinstance(read[0], ast.Name) and read[0].id == base and _int_literal(read[1]) == 0

    def _unflatten_in_two(self, expr, ctx: _Ctx) -> tuple | None:
        """``("split2", value of x)`` when ``expr`` is ``x.unflatten(-1, (2, -1))`` (or ``(2,
        x.shape[-1] // 2)``): the last axis split into two halves along a new second-to-last
        axis."""
        if not (isinstance(expr, ast.Call) and isinstance(expr.func, ast.Attribute) and expr.func.attr == "unflatten"
                and isinstance(expr.func.value, ast.Name)):
            return None
        given = dict(zip(("dim", "sizes"), expr.args))
        given.update((k.arg, k.value) for k in expr.keywords)
        if len(expr.args) + len(expr.keywords) != 2 or set(given) != {"dim", "sizes"}:
            return None
        dim, sizes, base = given["dim"], given["sizes"], expr.func.value.id
        if not (isinstance(dim, ast.UnaryOp) and isinstance(dim.op, ast.USub) and isinstance(dim.operand, ast.Constant)
                and dim.operand.value == 1 and isinstance(sizes, (ast.Tuple, ast.List)) and len(sizes.elts) == 2):
            return None
        two, half = sizes.elts
        rest = (isinstance(half, ast.UnaryOp) and isinstance(half.op, ast.USub)
                and isinstance(half.operand, ast.Constant) and half.operand.value == 1) or self._is_half_of(half, base, ctx)
        if not (isinstance(two, ast.Constant) and two.value == 2 and type(two.value) is int and rest):
            return None
        return "split2", self._name_value(base, ctx)

    def _local(self, expr: ast.expr, ctx: _Ctx | None):
        """``expr`` less its dtype casts, a local name read through what it holds (:meth:`_resolved`)."""
        expr = strip_casts(expr)
        if ctx is not None and isinstance(expr, ast.Name):
            expr = self._resolved(expr, ctx)
            if isinstance(expr, ast.expr):
                expr = strip_casts(expr)
        return expr

    def _resolved(self, expr, ctx: _Ctx, depth: int = 0):
        while isinstance(expr, ast.Name) and expr.id in ctx.exprs and depth < 4:
            expr = ctx.exprs[expr.id]
            depth += 1
        return expr

    def _half(self, expr, ctx: _Ctx, leading: bool = False):
        """(text of x, 0 or 1) when ``expr`` is the first or second half of x's last axis.
        ``leading``: also ``x[:, :, :, h:]``, whole leading axes written out, the last axis if
        the halves are to be concatenated along it into a value of x's shape (the rotate-half
        the rule adds to ``x * cos``: any other rank gives another shape, or an error)."""
        expr = self._resolved(expr, ctx)
        if isinstance(expr, tuple):
            if expr[0] != "half":
                return None
            _, base, index = expr
            if isinstance(base, Ref):  # halves of a value read before its name was reassigned
                return base, index
            if base.__class__ is _AST_CALL:
                # x1, x2 = x.float().chunk(2, dim=-1): the halves of a floating copy of x are
                # x's halves, rotated in that precision (btvit's golden-gate RoPE, research48)
                base = _float_copy_of(base)
            return (self._text(base), index) if isinstance(base, ast.Name) else None
        if not (isinstance(expr, ast.Subscript) and isinstance(expr.value, ast.Name)):
            return None
        index = expr.slice
        if not (isinstance(index, ast.Tuple) and len(index.elts) == 2 and isinstance(index.elts[0], ast.Constant)
                and index.elts[0].value is Ellipsis and isinstance(index.elts[1], ast.Slice)) and not (
                leading and isinstance(index, ast.Tuple) and len(index.elts) >= 2
                and isinstance(index.elts[-1], ast.Slice)
                and all(isinstance(e, ast.Slice) and e.lower is None and e.upper is None and e.step is None
                        for e in index.elts[:-1])):
            return None
        part = index.elts[-1]
        if part.step is not None:
            return None
        base = expr.value.id
        if part.lower is None and part.upper is not None and self._is_half_of(part.upper, base, ctx):
            return base, 0
        if part.upper is None and part.lower is not None and self._is_half_of(part.lower, base, ctx):
            return base, 1
        return None

    def _split_half(self, expr, ctx: _Ctx, points: set):
        """(x, 0 or 1) for ``x[..., :n]`` / ``x[..., n:]`` with ``n`` written as ``<size> // 2``
        of a size the function cannot tie to x (``self.d_k // 2``: the head width as the module
        holds it), its text added to ``points``.  Only the per-half rotation reads this: there
        ``x1 * c - x2 * s`` is element-wise across the two slices, which only agrees in size
        when n splits the last axis in two (encoder-decoder-transformer, research33); a
        concatenation alone (rotate-half's ``cat((-x2, x1))``) proves nothing of the kind."""
        expr = self._resolved(expr, ctx)
        if not (isinstance(expr, ast.Subscript) and isinstance(expr.value, ast.Name)):
            return None
        index = expr.slice
        if not (isinstance(index, ast.Tuple) and len(index.elts) == 2 and isinstance(index.elts[0], ast.Constant)
                and index.elts[0].value is Ellipsis and isinstance(index.elts[1], ast.Slice)):
            return None
        part = index.elts[1]
        if part.step is not None or part.lower is None and part.upper is None:
            return None
        point = self._resolved(part.upper if part.lower is None else part.lower, ctx)
        if not (isinstance(point, ast.BinOp) and isinstance(point.op, ast.FloorDiv)
                and isinstance(point.right, ast.Constant) and point.right.value == 2 and _pure_size(point.left)):
            return None
        if part.lower is not None and part.upper is not None \
                and ast.dump(self._resolved(part.upper, ctx)) != ast.dump(point.left):
            # x[..., n // 2 : n]: the second half of x's first n features only (mlx-style
            # partial rotary, ``self.dims`` of them, the rest concatenated back or absent);
            # any other upper bound is no half
            return None
        points.add(ast.dump(point))
        return expr.value.id, 0 if part.lower is None else 1

    def _is_half_of(self, expr, base: str, ctx: _Ctx) -> bool:
        """``x.shape[-1] // 2`` or ``x.size(-1) // 2`` (also through a local name)."""
        expr = self._resolved(expr, ctx)
        if not (isinstance(expr, ast.BinOp) and isinstance(expr.op, ast.FloorDiv)
                and isinstance(expr.right, ast.Constant) and expr.right.value == 2):
            return False
        size = expr.left
        if ctx.widths is not None or isinstance(ctx.exprs.get(base), ast.Subscript):
            # d // 2 of x = y[..., :d] (or of a method's parameter passed that slice): partial
            # rotary over the first d features, their halves
            width = self._width(base, ctx)
            if width is not None and _pure_size(size) and ast.dump(size) == ast.dump(width):
                return True
        if isinstance(size, ast.Name):  # D // 2 with B, H, T, D = x.size()
            held = ctx.exprs.get(size.id)
            if held.__class__ is not tuple:
                # d // 2 with d = x.size(-1) (or x.shape[-1]) bound on a line of its own
                read = _size_read(held) if isinstance(held, ast.expr) else None
                return read is not None and isinstance(read[0], ast.Name) and read[0].id == base \
                    and _int_literal(read[1]) == -1
            return len(held) == 4 and held[0] == "dim_size" and held[1] == base and held[2] == held[3] - 1
        read = _size_read(size)
        return read is not None and isinstance(read[0], ast.Name) and read[0].id == base and _int_literal(read[1]) == -1

    def _layer_output_method(self, call: ast.Call) -> bool:
        """Is ``call`` a call of a helper method of the class (``self._logits(h)``) whose every
        ``return`` hands back a layer's output: a call of a module attribute the class binds
        (``self.lm_head(h)``) or ``F.linear`` (a tied head, ``F.linear(h, self.embed.weight)``)?
        Its value is then a tensor of the layer's rank, as a module call's is.  A method that
        returns anything else on some path (a tuple, a name, another call) is none."""
        func = call.func
        if func.__class__ is not ast.Attribute or func.value.__class__ is not _NAME or func.value.id != "self" \
                or self.cls is None or func.attr not in self.cls.methods:
            return False
        returns = _own_returns(self.cls.methods[func.attr])
        return bool(returns) and all(
            r.value.__class__ is _CALL and (self._member_call(r.value)
                                           or self.names.resolve(r.value.func) == "torch.nn.functional.linear")
            for r in returns)

    def _member_call(self, call: ast.Call) -> bool:
        """Is ``call`` a call of a module attribute the class binds (``self.attn(x)``, not a method)?"""
        func = call.func
        return func.__class__ is ast.Attribute and func.value.__class__ is _NAME and func.value.id == "self" \
            and self.cls is not None and func.attr in self.cls.bindings and func.attr not in self.cls.methods

    def _mean_of_sum(self, expr: ast.BinOp, ctx: _Ctx):
        """(the summed tensor, the mean's keywords) for ``s.sum(d) / n`` (``torch.sum(s, dim=d,
        keepdim=k)`` too) where ``n`` is provably the width of ``s`` along ``d``: ``x.shape[d]`` or
        ``x.size(d)`` (or a name bound to one, or ``B, T, C = x.shape``'s name for that axis), with
        ``s`` the tensor ``x`` itself or its square (``x ** 2``, ``x.pow(2)``, ``x * x``,
        ``x.square()``, maybe of a cast of ``x``), ``d`` an int literal.  None otherwise (another
        divisor, an attribute such as ``self.dim`` whose value the file does not tie to the axis)."""
        call = expr.left
        fqn = self.names.resolve(call.func)
        if fqn == "torch.sum":
            if not call.args:
                return None
            summed, rest = call.args[0], call.args[1:]
        elif fqn is None or not fqn.startswith("torch"):
            summed, rest = call.func.value, call.args
        else:
            return None
        dim = rest[0] if rest else None
        keep = rest[1] if len(rest) > 1 else None
        if len(rest) > 2:
            return None
        for kw in call.keywords:
            if kw.arg == "dim" and dim is None:
                dim = kw.value
            elif kw.arg == "keepdim" and keep is None:
                keep = kw.value
            else:
                return None
        axis = _int_literal(dim) if dim is not None else None
        if axis is None or (keep is not None and not (keep.__class__ is ast.Constant and type(keep.value) is bool)):
            return None
        base = _squared_name(summed)
        if base is None or not self._is_width(expr.right, base, axis, ctx):
            return None
        kwargs = (("dim", Const(axis)),) + ((("keepdim", Const(keep.value)),) if keep is not None else ())
        return summed, kwargs

    def _is_width(self, size: ast.expr, base: str, axis: int, ctx: _Ctx) -> bool:
        """Is ``size`` the width of the name ``base`` along the int ``axis``: ``base.shape[axis]``,
        ``base.size(axis)``, or a local name bound to one (``d = x.shape[-1]``; ``B, T, C =
        x.size()`` for the last axis when ``axis`` is -1 or the unpacked position otherwise)?"""
        if size.__class__ is _NAME:
            held = ctx.exprs.get(size.id)
            if held.__class__ is tuple:
                if len(held) != 4 or held[0] != "dim_size" or held[1] != base:
                    return False
                return held[2] == (axis % held[3] if axis < 0 and -axis <= held[3] else axis)
            if not isinstance(held, ast.expr):
                return False
            size = held
        read = _size_read(size, keyword=True)
        return read is not None and read[0].__class__ is _NAME and read[0].id == base and _int_literal(read[1]) == axis

    def _width(self, name: str, ctx: _Ctx):
        """``d`` when ``name`` holds the first ``d`` features of a tensor's last axis
        (``name = y[..., :d]``, d a size written without calls; or a method parameter the
        caller passed such a slice): the width of its last axis, y having at least d features
        (partial rotary: the first d of them rotated)."""
        if ctx.widths is not None and name in ctx.widths:
            return ctx.widths[name]
        expr = ctx.exprs.get(name)
        if not (isinstance(expr, ast.Subscript) and isinstance(expr.slice, ast.Tuple) and len(expr.slice.elts) == 2):
            return None
        lead, part = expr.slice.elts
        if isinstance(lead, ast.Constant) and lead.value is Ellipsis and isinstance(part, ast.Slice) \
                and part.lower is None and part.step is None and part.upper is not None and _pure_size(part.upper) \
                and not any(isinstance(n, ast.Name) and n.id != "self" for n in ast_walk(part.upper)):
            return part.upper
        return None

    def _rotate_half(self, call: ast.Call, ctx: _Ctx):
        """The value x when ``call`` is ``torch.cat((-x2, x1), dim=-1)`` with x1, x2 the first
        and second halves of x's last axis (the rotate-half of rotary embeddings)."""
        parts = _two_parts_on_last_axis(call)
        if parts is None and len(call.args) >= 1 and isinstance(call.args[0], (ast.Tuple, ast.List)) \
                and len(call.args[0].elts) == 2:
            # cat((-x2, x1), dim=len(x.shape) - 1): the rank of the x the halves are sliced
            # from (a slice keeps the rank), checked once the halves are known to be x's
            half = self._half(call.args[0].elts[1], ctx)
            if half is not None and isinstance(half[0], str):
                parts = _two_parts_on_last_axis(call, same_rank=half[0])
        return self._rotated_parts(parts, ctx)

    def _rotated_parts(self, parts, ctx: _Ctx):
        """The value x when ``parts``, laid end to end along the last axis, are ``(-x2, x1)``
        with x1, x2 the first and second halves of x's last axis; None otherwise (or no parts)."""
        if parts is None:
            return None
        negated, other = parts
        if negated.__class__ is ast.Name:
            # x1 = -x[..., h:]; cat((x1, x2), -1): the negated half through a local name
            # (curated-transformers' RotaryEmbeddings._rotate, research54)
            negated = self._resolved(negated, ctx)
        if not (isinstance(negated, ast.UnaryOp) and isinstance(negated.op, ast.USub)):
            return None
        second, first = self._half(negated.operand, ctx, leading=True), self._half(other, ctx, leading=True)
        if second is None or first is None or second != (first[0], 1) or first[1] != 0:
            return None
        return first[0] if isinstance(first[0], Ref) else self._name_value(first[0], ctx)

    def _rope_halves(self, call: ast.Call, ctx: _Ctx):
        """``((x, cos, sin), first)`` when ``call`` is ``torch.cat((x1 * c - x2 * s, x2 * c + x1 *
        s), dim=-1)`` with x1, x2 the first and second halves of x's last axis (each part written
        in place or through a name): rotary position embedding of the halves, which is ``x * cos +
        rotate_half(x) * sin`` with ``cos = cat((c, c), -1)`` and ``sin = cat((s, s), -1)``.
        ``first`` is the expression of the first part (where the rotation is written)."""
        parts = _two_parts_on_last_axis(call)
        if parts is None:
            return None
        first, second = (self._resolved(e, ctx) for e in parts)
        if not (isinstance(first, ast.BinOp) and isinstance(first.op, ast.Sub)
                and isinstance(second, ast.BinOp) and isinstance(second.op, ast.Add)):
            return None

        points: set[str] = set()  # the split points of halves read by _split_half

        def product(expr):  # (half index, x, table text, table expr) of ``half * table``
            if not (isinstance(expr, ast.BinOp) and isinstance(expr.op, ast.Mult)):
                return None
            for half, table in ((expr.left, expr.right), (expr.right, expr.left)):
                found = self._half(half, ctx)
                if found is None and isinstance(table, ast.Name):
                    found = self._split_half(half, ctx, points)
                if found is not None and isinstance(table, ast.Name):
                    return found[1], found[0], table.id, table
            return None

        terms = [product(e) for e in (first.left, first.right, second.left, second.right)]
        if None in terms or len(points) > 1:
            return None
        a, b, c, d = terms
        if c[0] == 0:  # x2 * c + x1 * s, either order of the sum
            c, d = d, c
        bases = {t[1].key if isinstance(t[1], Ref) else t[1] for t in terms}
        if len(bases) != 1 or (a[0], b[0], c[0], d[0]) != (0, 1, 1, 0):
            return None
        if a[2] != c[2] or b[2] != d[2] or a[2] == b[2]:
            return None  # x1 * cos - x2 * sin and x2 * cos + x1 * sin: one cos, one sin
        base = a[1]
        x = base if isinstance(base, Ref) else self._name_value(base, ctx)
        return (x, self._name_value(a[2], ctx), self._name_value(b[2], ctx)), first

    def _training_dropout(self, expr, ctx: _Ctx) -> str | None:
        """The Dropout layer of ``self.drop if self.training else None`` (or ``None if not
        self.training else self.drop``; also through a local name bound to it), handed to a
        helper whose only use of it is ``if p is not None: y = p(y)`` (:func:`_applied_when_given`;
        SwissArmyTransformer's and GPT-Neo-style ``attention_fn(q, k, v, mask, dropout_fn)``):
        outside training a Dropout is the identity, so handing None there computes what handing the layer does, and the helper's
        dropout is that layer's (the SDPA fix's ``dropout_p=drop.p if self.training else 0.0``
        is both).  Only a Dropout and only the module's own ``self.training``: under any other
        test the layer may be left out while training.  None otherwise."""
        if expr.__class__ is ast.Name:
            held = ctx.exprs.get(expr.id)
            if held.__class__ is not ast.IfExp or expr.id in ctx.params:
                return None
            expr = held
        elif expr.__class__ is not ast.IfExp:
            return None
        test, chosen, other = expr.test, expr.body, expr.orelse
        if test.__class__ is ast.UnaryOp and test.op.__class__ is ast.Not:
            test, chosen, other = test.operand, other, chosen
        if not (test.__class__ is ast.Attribute and test.attr == "training" and test.value.__class__ is ast.Name
                and test.value.id == "self" and other.__class__ is ast.Constant and other.value is None
                and chosen.__class__ is ast.Attribute):
            return None
        layer = self._layer_of(chosen, ctx)
        if layer is None or layer.endswith("]") or self._layer_types(layer) != {"torch.nn.Dropout"}:
            return None
        return layer

    def _partial_rope_halves(self, call: ast.Call, ctx: _Ctx):
        """``((x, cos, sin), first)`` for ``cat((y1, y2, x3), -1)`` that rotates the first ``2d``
        features of x per half and keeps the rest (partial rotary, partial_rope.read): the
        canon.rope_halves step of x, a finding form (the fixer hands the kernel whole heads)."""
        found = partial_rope.read(call, ctx.definition, ctx.stmt, self.names.resolve)
        if found is None:
            return None
        x, cos, sin, first = found
        return (self._name_value(x, ctx), self._name_value(cos, ctx), self._name_value(sin, ctx)), first

    def _implied_transpose(self, value: Value, value_span, call: ast.Call, frontier, ctx: _Ctx):
        """The transpose of an einsum operand that the equation implies (written nowhere), as
        a node of its own before the product: the product then reads as ``a @ b``."""
        out = self._temp("")
        _, frontier = self._new(ctx, frontier, kind="call", op="", args=(value,), outs=(out,),
                                uses=_keys((value,)), defs=frozenset({out.key}), span=span(call),
                                arg_spans=(value_span,), **self._last_two(value, value_span))
        return out, frontier

    @staticmethod
    def _class_axis_second(value: Value, value_span) -> dict:
        # the last axis moved, alone, to position 1 (cross-entropy's class axis); the other axes
        # moved or merged: the rule patterns read it after a vocabulary head only
        return {"canon": "canon.class_axis_second", "view": View((value,), (), (value_span,), ())}

    @staticmethod
    def _last_two(value: Value, value_span) -> dict:
        view = View((value,), (("dim0", Const(-2)), ("dim1", Const(-1))), (value_span,), ((None, None), (None, None)))
        return {"canon": "torch.transpose", "view": view}

    def _ints(self, node, tuple_ok: bool) -> list[int] | None:
        items = node
        if not isinstance(node, list):
            if not (tuple_ok and isinstance(node, (ast.Tuple, ast.List))):
                return None
            items = node.elts
        out = []
        for item in items:
            value = item.value if isinstance(item, ast.Constant) else (
                -item.operand.value if isinstance(item, ast.UnaryOp) and isinstance(item.op, ast.USub)
                and isinstance(item.operand, ast.Constant) else None)
            if not isinstance(value, int) or isinstance(value, bool):
                return None
            out.append(value)
        return out

    def _dims(self, op, view: View, call: ast.Call) -> View:
        """``dim=x.dim() - 1`` (or ``x.ndim - 1``, ``len(x.shape) - 1``) of the input is ``dim=-1``."""
        if not op.dims or not view.args or view.arg_spans[0] is None:
            return view
        kwargs = list(view.kwargs)
        changed = False
        for index, (name, value) in enumerate(kwargs):
            if name in op.dims and not isinstance(value, Const):
                expr = self._expr_at(call, view.kwarg_spans[index][0])
                input_text = segment(self.lines, view.arg_spans[0]) if self.lines is not None else None
                if expr is not None and input_text is not None and canonical.last_dim(expr, input_text, self._text):
                    kwargs[index] = (name, Const(-1))
                    changed = True
                elif expr is not None:
                    default = self._parameter_default(expr) or self._root_param_default(expr, value)
                    if default is not None:
                        kwargs[index] = (name, default)
                        changed = True
        return View(view.args, tuple(kwargs), view.arg_spans, view.kwarg_spans) if changed else view

    def _dtype_view(self, view: View, call: ast.Call, ctx: _Ctx | None = None) -> View | None:
        """``x.to(d)`` / ``x.type(d)`` as a dtype conversion: ``d`` must be a dtype (a torch
        dtype or ``y.dtype``, or a local name assigned one of those or
        ``torch.promote_types(...)``); torch dtype aliases become one name."""
        kwargs = dict(view.kwargs)
        if set(kwargs) - {"dtype"} or "dtype" not in kwargs:
            return None
        index = [k for k, _ in view.kwargs].index("dtype")
        expr = self._expr_at(call, view.kwarg_spans[index][0])
        if expr is None:
            return None
        if isinstance(expr, ast.Attribute) and expr.attr == "dtype":
            return view
        if isinstance(expr, ast.Name) and ctx is not None and expr.id not in ctx.params:
            held = self._resolved(expr, ctx)
            if isinstance(held, ast.Attribute) and held.attr == "dtype" or self._promoted_dtype(held):
                return view  # dtype = torch.promote_types(x.dtype, torch.float32); x.to(dtype)
            if isinstance(held, ast.Attribute):
                expr = held  # dtype = torch.float32; x.to(dtype) is x.to(torch.float32)
        resolved = self.names.resolve(expr)
        name = canonical.dtype_name(resolved, lambda n: n) if resolved else None
        if name is None:
            return None
        new = list(view.kwargs)
        new[index] = ("dtype", Ref(name, name))
        return View(view.args, tuple(new), view.arg_spans, view.kwarg_spans)

    def _promoted_dtype(self, held) -> bool:
        """``torch.promote_types(a, b)``, or ``functools.reduce(torch.promote_types, dtypes)``
        (hdit's ``reduce(torch.promote_types, (x.dtype, scale.dtype, torch.float32))``): the
        promotion of dtypes is a dtype (or an error), never a device or a tensor, so ``x.to``
        of it is a dtype conversion."""
        if held.__class__ is not _AST_CALL:
            return False
        callee = self.names.resolve(held.func)
        if callee == "torch.promote_types":
            return True
        return (callee == "functools.reduce" and len(held.args) == 2 and not held.keywords
                and self.names.resolve(held.args[0]) == "torch.promote_types")

    def _like_view(self, view: View) -> View | None:
        """``w.to(t)`` with ``t`` a tensor the flow has just computed by arithmetic (``var = eps +
        torch.mean(x ** 2, ...)``; ``alpha.to(var)``): a cast to t's dtype and device, read as
        ``to(other=t)`` (torch's name for that overload) so that no dtype step matches it."""
        kwargs = view.kwargs
        if len(kwargs) != 1 or kwargs[0][0] not in ("dtype", "other") or not isinstance(kwargs[0][1], Ref):
            return None
        key = kwargs[0][1].key
        producer = self.producers.get(key)
        if producer is None and "." not in key:
            for node in self.nodes[-1:-_LIKE_LOOKBACK:-1]:  # a value of the last few statements
                if key in node.defs:
                    producer = node
                    break
        if producer is None or producer.canon not in _TENSOR_MATH or len(producer.outs) != 1:
            return None
        return View(view.args, (("other", kwargs[0][1]),), view.arg_spans, view.kwarg_spans)

    @staticmethod
    def _expr_at(call: ast.Call, value_span) -> ast.expr | None:
        if value_span is None:
            return None
        for node in (*call.args, *(kw.value for kw in call.keywords)):
            if span(node) == value_span:
                return node
        return None

    def _ctors(self, layer: str) -> list:
        if layer in self._annotated:
            return self._annotated[layer]
        if self.cls is None:
            return []
        return self.cls.bindings.get(_attr(layer), [])

    def _ctor_kwargs(self, op, ctors) -> tuple | None:
        """The constructor arguments of a module of ``op``, as keywords of the call (the same
        for every constructor ``__init__`` may bind), or None."""
        merged = None
        for ctor in ctors:
            if isinstance(ctor, ast.Call):
                fqn, args, keywords = self.names.resolve(ctor.func), ctor.args, [(k.arg, k.value) for k in ctor.keywords]
            elif ctor.table or ctor.fqn.rsplit(".", 1)[-1] in ("get_activation",) or getattr(ctor, "function", False):
                # ACT2FN["gelu"]: the key chose the operation; F.gelu held as a value: the
                # function itself, with its defaults; nothing to merge
                values = ()
                if getattr(ctor, "function", False) and op.name == SOFTMAX:
                    # partial(F.softmax, dim=-1): the dim (and dtype) it binds
                    values = tuple((k, self._ctor_value(v)) for k, v in ctor.kwargs)
                if merged is not None and merged != values:
                    return None
                merged = values
                continue
            else:
                fqn, args, keywords = ctor.fqn, ctor.args, list(ctor.kwargs)
            found = TABLE.module(fqn)
            if found is None or found[0] is not op:
                return None
            params = found[1]
            if len(args) > len(params) or any(isinstance(a, ast.Starred) for a in args) or any(k is None for k, _ in keywords):
                return None
            values = tuple((name, self._ctor_value(a)) for name, a in zip(params, args))
            values += tuple((k, self._ctor_value(v)) for k, v in keywords)
            if merged is not None and merged != values:
                return None
            merged = values
        return merged if merged is not None else ()

    def _ctor_value(self, expr: ast.expr) -> Value:
        if isinstance(expr, ast.Constant):
            return Const(expr.value)
        if isinstance(expr, ast.UnaryOp) and isinstance(expr.op, ast.USub) and isinstance(expr.operand, ast.Constant) \
                and isinstance(expr.operand.value, (int, float)):
            return Const(-expr.operand.value)
        text = self._text(expr)
        return Ref("init:" + text, text)

    def _built_forward(self, built: ast.Call) -> ast.FunctionDef | None:
        """The ``forward`` of the same-file module that ``built`` constructs, as a function of
        its inputs, when it computes from them and from literal settings alone: a direct
        ``nn.Module`` subclass whose ``__init__`` only calls ``super().__init__`` and binds
        ``self.<attr>`` to literals or to its parameters (never rebound), and whose forward
        reads ``self`` only as those attributes (no layer, no ``self.training``, no write).
        Each attribute read becomes the literal the construction passes for its parameter (or
        the parameter's literal default).  None otherwise (a setting that is no literal there,
        any other statement).  One function per construction, so that its caches hold."""
        key = id(built)
        cache = self._built_forwards
        if key in cache:
            return cache[key]
        cache[key] = None
        cls = self.names.classes[built.func.id]
        if len(cls.bases) != 1 or self.names.resolve(cls.bases[0]) != "torch.nn.Module" or cls.keywords \
                or cls.decorator_list:
            return None
        forward = init = None
        for item in cls.body:
            if item.__class__ is ast.FunctionDef and item.name == "forward":
                forward = item
            elif item.__class__ is ast.FunctionDef and item.name == "__init__":
                init = item
            elif item.__class__ is ast.FunctionDef or item.__class__ is ast.AsyncFunctionDef \
                    or item.__class__ is ast.Assign or item.__class__ is ast.AnnAssign:
                return None  # (other methods or class attributes: forward may reach them)
        if forward is None or forward.decorator_list or not forward.args.args or forward.args.posonlyargs:
            return None
        settings = _literal_settings(init, built) if init is not None else {}
        if settings is None:
            return None
        reads = _SettingReads(forward.args.args[0].arg, settings)
        body = reads.visit(copy.deepcopy(forward))
        if reads.other:
            return None  # ``self`` read otherwise: a layer, a mode, a method, a write
        body.args.args = body.args.args[1:]
        body.name = built.func.id
        cache[key] = body
        return body

    def _built_and_called(self, func: ast.expr, ctx: _Ctx | None = None) -> tuple[str, tuple] | None:
        if not isinstance(func, ast.Call) or func.args:
            return None
        fqn = self.names.resolve(func.func)
        if fqn is None and ctx is not None and ctx.classes and func.func.__class__ is ast.Attribute \
                and func.func.value.__class__ is ast.Name and func.func.value.id == "self":
            held = ctx.classes.get(func.func.attr)  # a class the enclosing ``if`` says the attribute holds
            fqn = held[0] if held is not None else None
        if fqn is None or not all(kw.arg and isinstance(kw.value, (ast.Constant, ast.UnaryOp)) for kw in func.keywords):
            return None
        extra = []
        for kw in func.keywords:
            value = kw.value
            if isinstance(value, ast.UnaryOp):
                if not (isinstance(value.op, ast.USub) and isinstance(value.operand, ast.Constant)):
                    return None
                extra.append((kw.arg, Const(-value.operand.value)))
            else:
                extra.append((kw.arg, Const(value.value)))
        return fqn, tuple(extra)

    def _inline_callable_arg(self, arg: ast.expr, frontier: list, ctx: _Ctx) -> list:
        """Follow ``self.helper`` passed as a callable (apply_chunking_to_forward), and a
        function defined in the body (``checkpoint(_inner_forward, x)``)."""
        if isinstance(arg, ast.Name) and arg.id in ctx.local_funcs:
            target = ctx.local_funcs[arg.id]
            if target.name not in ctx.stack and len(ctx.stack) <= MAX_INLINE_DEPTH:
                _, frontier = self._inline(target, [], [], False, arg, frontier, ctx)
            return frontier
        if (
            self.cls is not None
            and isinstance(arg, ast.Attribute)
            and isinstance(arg.value, ast.Name)
            and arg.value.id == "self"
            and arg.attr in self.cls.methods
            and arg.attr not in self.cls.bindings
        ):
            target = self.cls.methods[arg.attr]
            if target.name not in ctx.stack and len(ctx.stack) <= MAX_INLINE_DEPTH:
                _, frontier = self._inline(target, [], [], True, arg, frontier, ctx)
        return frontier

    def _closure_call(self, name: str, call: ast.Call, ctx: _Ctx) -> bool:
        """``fn = factory(self.norm1, self.relu1, self.conv1)``, the same-file ``factory``'s body
        one nested ``def`` it returns (old torchvision DenseNets' ``_bn_function_factory``): ``fn``
        is that closure, a local function inlined where it is called (or handed to a checkpoint),
        the factory's parameters there the layers and names the call passes.  Only for a call
        whose arguments compute nothing (names and attributes): then binding ``fn`` builds no step."""
        factory = self.names.functions[call.func.id]
        body = factory.body
        if body and body[0].__class__ is ast.Expr and body[0].value.__class__ is ast.Constant:
            body = body[1:]  # (a docstring)
        if (len(body) != 2 or body[0].__class__ is not ast.FunctionDef or body[1].__class__ is not ast.Return
                or body[1].value.__class__ is not ast.Name or body[1].value.id != body[0].name):
            return False
        if not all(a.__class__ in (ast.Name, ast.Attribute) for a in (*call.args, *(k.value for k in call.keywords))) \
                or any(k.arg is None for k in call.keywords):
            return False
        fargs = factory.args
        params = [a.arg for a in fargs.posonlyargs + fargs.args]
        if len(call.args) > len(params) or fargs.vararg is not None:
            return False
        passed = list(zip(params, call.args)) + [(k.arg, k.value) for k in call.keywords]
        closure = copy.copy(body[0])
        closure.name = name
        ctx.local_funcs[name] = closure
        ctx.closure_args[id(closure)] = passed
        return True

    def _inline(self, target, args, kwargs, is_method, call, frontier, ctx: _Ctx):
        self.instances += 1
        params = [a.arg for a in target.args.posonlyargs + target.args.args]
        if is_method and params and params[0] in ("self", "cls"):
            params = params[1:]
        bound: dict[str, Value] = {}
        for name, value in zip(params, args):
            if isinstance(value, Ref):
                bound[name] = value
            elif value.__class__ is Const and _LITERAL_TYPES.get(value.value.__class__):
                # fp32_softmax(s, -1): the helper's dim is -1 there (unless the helper binds it again)
                bound[name] = value
        names = set(params) | {a.arg for a in target.args.kwonlyargs}
        for key, value in kwargs:
            if key in names and isinstance(value, Ref):
                bound[key] = value
            elif key in names and value.__class__ is Const and _LITERAL_TYPES.get(value.value.__class__):
                bound[key] = value
        # the parameters the call passes, by position or keyword (a ``**`` spread as the key
        # "**"): read for the literal defaults, the bool parameters and the callable defaults
        given = None
        if call.__class__ is ast.Call and not any(a.__class__ is ast.Starred for a in call.args):
            given = set(params[:len(args)])
            for key, _ in kwargs:
                given.add(key)
        if target.args.defaults and len(args) < len(params) and not target.args.vararg \
                and given is not None and "**" not in given:
            # masked_softmax(s, mask) of ``def masked_softmax(x, mask, dim=-1)``: a parameter the
            # call does not pass holds its literal default
            positional = params[len(params) - len(target.args.defaults):]
            for name, default in zip(positional, target.args.defaults[len(target.args.defaults) - len(positional):]):
                if name in bound or name in given:
                    continue
                if default.__class__ is ast.UnaryOp and default.op.__class__ is ast.USub \
                        and default.operand.__class__ is ast.Constant \
                        and default.operand.value.__class__ in (int, float):
                    bound[name] = self._default_here(target, name, -default.operand.value)  # dim=-1
                elif default.__class__ is ast.Constant and _LITERAL_TYPES.get(default.value.__class__):
                    bound[name] = self._default_here(target, name, default.value)
        closure = ctx.closure_args.get(id(target)) if ctx.closure_args else None
        closure_layers = {}
        closure_funcs = None
        if closure:
            # a closure a factory returned: its free names are the factory's parameters
            assigned = None  # (_free_assigned(target), walked once, on first need)
            for name, expr in closure:
                layer = self._layer_of(expr, ctx)
                if layer is not None:
                    closure_layers[name] = layer
                elif expr.__class__ is ast.Name and name not in bound and expr.id in self.names.functions \
                        and expr.id not in ctx.params \
                        and name not in (assigned := assigned if assigned is not None else _free_assigned(target)):
                    # indices_padding_wrapper(_run_experts) returning a wrapper that calls
                    # ``func(...)``: that call is the same-file function the factory was handed
                    closure_funcs = {**(closure_funcs or {}), name: expr.id}
                elif expr.__class__ is ast.Name and name not in bound:
                    value = self._name_value(expr.id, ctx)
                    if isinstance(value, Ref):
                        bound[name] = value
            names = names | {name for name, _ in closure}
        if ctx.local_funcs.get(target.name) is target:
            # A closure reads the enclosing function's names as they are at the call.
            for name in _free_names(target, names):
                if name not in bound:
                    bound[name] = self._name_value(name, ctx)
        result = self._temp("")
        layer_alias = dict(ctx.layer_alias)
        if closure_layers:
            layer_alias.update(closure_layers)
        if isinstance(call, ast.Call):
            # attention(q, k, v, dropout=self.dropout): in the helper, dropout(p) calls that layer
            # (the Annotated Transformer's module-level attention function)
            passed = list(zip(params, call.args)) + [(k.arg, k.value) for k in call.keywords if k.arg in names]
            producers = None
            for name, expr in passed:
                if isinstance(expr, ast.Starred):
                    break
                layer = self._layer_of(expr, ctx) if isinstance(expr, (ast.Attribute, ast.Name)) else None
                if layer is None and (expr.__class__ is ast.IfExp or expr.__class__ is ast.Name
                                      and ctx.exprs.get(expr.id).__class__ is ast.IfExp):
                    layer = self._training_dropout(expr, ctx)
                    if layer is not None and not _applied_when_given(target, name):
                        layer = None
                # (only the attention's own modules: aliasing every layer argument made the
                # helpers of other models' flows richer to search, at a cost to every rule)
                if layer is None or layer.endswith("]"):
                    continue
                types = self._layer_types(layer)
                if types & _ALIASED or any(c.table or c.function for c in self._ctors(layer)):
                    # (and an activation chosen at run time, or a function held as a value:
                    # ``kernel(w_in, w_out, self.activation, x)`` calling ``activation(...)``;
                    # and a vocabulary head: ``self.logits(h, self.text_head)`` calling ``head(h)``)
                    layer_alias[name] = layer
                elif types & _BATCH_NORMS:
                    # a batch norm handed in with the layer whose output it normalises
                    # (``branch(x, self.conv_a, self.bn_a)`` doing ``bn(conv(x))``): both aliased,
                    # the convolution or Linear only when the call hands in a batch norm too
                    layer_alias[name] = layer
                    if producers:
                        layer_alias.update(producers)
                    producers = ()
                elif types <= _BN_PRODUCERS:
                    if producers == ():
                        layer_alias[name] = layer
                    else:
                        producers = (producers or ()) + ((name, layer),)
        widths = None
        if is_method and (ctx.exprs or ctx.widths) and isinstance(call, ast.Call):
            for name, expr in zip(params, call.args):
                width = self._width(expr.id, ctx) if isinstance(expr, ast.Name) and (
                    expr.id in ctx.exprs or (ctx.widths and expr.id in ctx.widths)) else None
                if width is not None and not any(isinstance(n, ast.Name) and n.id == name
                                                 and not isinstance(n.ctx, ast.Load) for n in ast_walk(target)):
                    # (a parameter the method never rebinds; self.<attr> means the same there)
                    widths = widths or {}
                    widths[name] = width
        parts = None
        if ctx.unpack is not None and ctx.unpack[0] is call and self._returns_tuple(target, ctx.unpack[1]):
            # a, b = self.helper(x) where the helper returns a tuple of as many elements: each
            # name is a copy of its element (a return of something else defines them opaquely)
            parts = tuple(self._temp("") for _ in range(ctx.unpack[1]))
            self._parts[result.key] = parts
        inner = _Ctx(
            instance=self.instances, func=f"{ctx.func.split('.')[0]}.{target.name}" if is_method else target.name,
            params=bound, layer_alias=layer_alias, stack=ctx.stack + (target.name,), ret=result,
            local_funcs=dict(ctx.local_funcs), closure_args=ctx.closure_args,
            stmt=ctx.stmt, scope=ctx.scope, body_scope=ctx.scope, definition=target, widths=widths,
            ret_parts=parts, flags=_bool_params(target, params, args, kwargs, call, given),
            func_alias=closure_funcs or {},
            settings=(params, call) if ctx.instance == 0 and self.cls is not None else None,
            site=(params, call, ctx) if call.__class__ is ast.Call else None,
        )
        if (target.args.defaults or target.args.kwonlyargs) and given is not None \
                and _callable_default(target.args) and all(k.arg is not None for k in call.keywords):
            # a defaulted callable the call leaves out: its default, as in a root function
            # (not past a starred argument or a ``**`` spread: then any parameter may be passed)
            self._default_choices(target, inner, frozenset(given))
        self._import_choices(target, inner)  # (its own imports: the same wherever it is called)
        first = len(self.nodes)
        after = self._body(target.body, frontier, inner) + inner.ret_frontier
        if getattr(target, INHERITED, None):
            # A method a torch base class defines (structure/torch_bases.py): the file has no
            # text for it, so its operations are where the call that runs them is.
            at = span(call)
            if self._inherited is None:
                self._inherited = set()
            for node in self.nodes[first:]:
                self._inherited.add(node.id)
                node.span = node.stmt = node.func_span = at
                node.arg_spans = tuple(at for _ in node.arg_spans)
                node.kwarg_spans = tuple((at, at) for _ in node.kwarg_spans)
        if not after:
            # The helper cannot return (a stub that raises when an optional dependency such as
            # natten is missing, say): the real callee is elsewhere, so the call stays opaque
            # and the caller's code after it stays reachable.
            return result, frontier
        return result, after

    # ------------------------------------------------------------------ statements
    def _body(self, stmts: list[ast.stmt], frontier: list, ctx: _Ctx) -> list:
        if len(stmts) < 3 or not self._names_neg_():
            # (no ``.neg_()`` statement two or three on, which the in-place rotate-half below
            # needs: the plain walk, with no per-statement tests)
            for stmt in stmts:
                frontier = self._stmt(stmt, frontier, ctx)
            return frontier
        skip = 0
        for i, stmt in enumerate(stmts):
            if skip:
                skip -= 1
                continue
            if stmt.__class__ is ast.Assign and i + 2 < len(stmts):
                # (the cheap tests inline: a write into a subscript, two statements on)
                if stmt.targets[0].__class__ is ast.Subscript and stmts[i + 2].__class__ is ast.Expr \
                        and _negates_in_place(stmts[i + 2]):
                    read = self._halves_swapped_in_place(stmts[i:i + 3], frontier, ctx)
                    if read is not None:
                        frontier, skip = read, 2
                        continue
                elif stmts[i + 1].__class__ is ast.Assign and stmts[i + 1].targets[0].__class__ is ast.Subscript \
                        and i + 3 < len(stmts) and _negates_in_place(stmts[i + 3]) \
                        and _storage_only(stmt, stmts[i + 1:i + 4]):
                    # ``r = buf[:, :n]`` then r's whole last axis written with a rotate-half: the
                    # view only lends r its storage; no value of ``buf`` is read
                    read = self._halves_swapped_in_place(stmts[i + 1:i + 4], frontier, ctx)
                    if read is not None:
                        frontier, skip = read, 3
                        continue
            frontier = self._stmt(stmt, frontier, ctx)
        return frontier

    def _names_neg_(self) -> bool:
        """May a statement of this file be ``<...>.neg_()``?  False when the file's text has no
        ``neg_`` (an attribute's name is written as it is, or NFKC-normalised from other
        characters: a text outside ASCII is tested normalised); True when the text is not
        known.  Once per file."""
        found = self.names.names_neg_
        if found is None:
            if self.lines is None:
                return True
            text = self.text if self.text is not None else "\n".join(self.lines)
            if not text.isascii():
                text = unicodedata.normalize("NFKC", text)
            found = self.names.names_neg_ = "neg_" in text
        return found

    def _addcmul_in_place(self, call: ast.Call, frontier: list, ctx: _Ctx) -> list | None:
        """``x.addcmul_(a, b)`` as a statement, x a local name: ``x = x + a * b`` written into x
        (torch's addcmul with its default ``value=1``), a product step then a sum step, so the
        rotation ``x *= cos; x.addcmul_(rotate_half(x), sin)`` reads as ``x * cos +
        rotate_half(x) * sin``.  None (nothing built) for another spelling: a ``value=``
        factor, a receiver that is no name."""
        owner = call.func.value
        if owner.__class__ is not ast.Name or len(call.args) != 2 or call.keywords \
                or any(a.__class__ is ast.Starred for a in call.args):
            return None
        x = self._name_value(owner.id, ctx)
        a, frontier = self._value(call.args[0], frontier, ctx)
        b, frontier = self._value(call.args[1], frontier, ctx)
        product = self._temp("")
        spans = (span(call.args[0]), span(call.args[1]))
        times, plus = TABLE.operator("*"), TABLE.operator("+")
        _, frontier = self._new(ctx, frontier, kind="op", op="*", args=(a, b), outs=(product,),
                                uses=_keys((a, b)), defs=frozenset({product.key}), span=span(call),
                                arg_spans=spans, canon=times.name if times else "")
        targets = self._target_values(ast.Name(id=owner.id, ctx=ast.Store()), ctx)
        _, frontier = self._new(ctx, frontier, kind="op", op="+", args=(x, product), outs=tuple(targets),
                                uses=_keys((x, product)), defs=_keys(targets), span=span(call),
                                arg_spans=(span(owner), span(call)), canon=plus.name if plus else "")
        return frontier

    def _halves_swapped_in_place(self, stmts: list[ast.stmt], frontier: list, ctx: _Ctx) -> list | None:
        """``r[..., :h] = x[..., h:]; r[..., h:] = x[..., :h]; r[..., :h].neg_()`` (canon.
        swapped_halves_negated: a preallocated buffer filled with x's rotate-half, unsloth's
        in-place RoPE): one step ``r = canon.rotate_half(x)``, so that ``x *= cos;
        x.addcmul_(r, sin)`` reads as the rotation it computes.  None (and nothing built) for
        any other statements."""
        found = canonical.swapped_halves_negated(stmts)
        if found is None:
            return None
        r, x = found
        ctx.stmt = span(stmts[0])
        value = self._name_value(x, ctx)
        targets = self._target_values(ast.Name(id=r, ctx=ast.Store()), ctx)
        whole = (stmts[0].lineno, stmts[0].col_offset, stmts[2].end_lineno, stmts[2].end_col_offset)
        view = View((value,), (), (None,), ())
        _, frontier = self._new(ctx, frontier, kind="call", op="canon.rotate_half", args=(value,), outs=tuple(targets),
                                uses=_keys((value,)), defs=_keys(targets), span=whole, canon="canon.rotate_half",
                                view=view)
        return frontier

    def _function_pair(self, value_expr: ast.IfExp, ctx: _Ctx) -> bool:
        """``f if c else g``, f and g two different same-file functions (not parameters), or
        two different methods of the class (``self._rope_a if self.traditional else
        self._rope_b``, mlx-style RoPE modules)."""
        body, other = value_expr.body, value_expr.orelse
        if body.__class__ is ast.Attribute and other.__class__ is ast.Attribute:
            cls = self.cls
            return (cls is not None and body.attr != other.attr
                    and all(n.value.__class__ is ast.Name and n.value.id == "self" and n.attr in cls.methods
                            and n.attr not in cls.bindings for n in (body, other)))
        return (body.__class__ is ast.Name and other.__class__ is ast.Name and body.id != other.id
                and all(n.id in self.names.functions and n.id not in ctx.params
                        and n.id not in ctx.local_funcs for n in (body, other)))

    def _func_choice_if(self, stmt: ast.stmt, ctx: _Ctx) -> ast.If | None:
        """``out = attn_fn(q, k, v)`` with ``attn_fn = f if c else g`` (ctx.func_choice): the
        statement as ``if c: out = f(q, k, v) else: out = g(q, k, v)``, each way calling its
        function (inlined as a direct call is).  None for any other statement."""
        value = stmt.value if stmt.__class__ in (ast.Assign, ast.Expr, ast.Return) else None
        if not (value.__class__ is ast.Call and value.func.__class__ is ast.Name and value.func.id in ctx.func_choice):
            return None
        if stmt.__class__ is ast.Assign and len(stmt.targets) != 1:
            return None
        choice = ctx.func_choice[value.func.id]
        ways = []
        for alternative in (choice.body, choice.orelse):
            way = copy.deepcopy(stmt)
            if alternative.__class__ is ast.Attribute:  # self.method: the call of that method
                owner = ast.copy_location(ast.Name(id="self", ctx=ast.Load()), value.func)
                way.value.func = ast.copy_location(ast.Attribute(value=owner, attr=alternative.attr, ctx=ast.Load()),
                                                   value.func)
            else:
                way.value.func = ast.copy_location(ast.Name(id=alternative.id, ctx=ast.Load()), value.func)
            ways.append(way)
        return ast.copy_location(ast.If(test=choice.test, body=[ways[0]], orelse=[ways[1]]), stmt)

    def _stmt(self, stmt: ast.stmt, frontier: list, ctx: _Ctx) -> list:
        ctx.stmt = span(stmt)
        ctx.casts = None
        if ctx.func_choice:
            chosen = self._func_choice_if(stmt, ctx)
            if chosen is not None:
                return self._if(chosen, frontier, ctx)
        kind = stmt.__class__  # (the statement kinds by exact class, the commonest first)
        if kind is ast.Assign or kind is ast.AnnAssign:
            targets = stmt.targets if kind is ast.Assign else [stmt.target]
            if stmt.value is None:
                return frontier
            frontier = self._assign(targets, stmt.value, frontier, ctx)
            if targets[0].__class__ is not ast.Subscript and len(targets) == 1:
                value = stmt.value
                if value.__class__ is _CALL and value.func.__class__ is ast.Attribute \
                        and targets[0].__class__ is _NAME and self.cls is not None \
                        and value.func.attr in self.cls.methods and value.func.value.__class__ is _NAME \
                        and value.func.value.id == "self":
                    # logits = self._logits(h): a helper method's value, read as a layer's output
                    # where the name is indexed by a mask (_layer_output_method, asked then)
                    if ctx.layer_outputs is None:
                        ctx.layer_outputs = {}
                    ctx.layer_outputs[targets[0].id] = value
                return frontier  # (the common case, without a call)
            return self._stored_items(targets, stmt, frontier, ctx)
        if kind is ast.AugAssign:
            target = self._target_values(stmt.target, ctx)
            left = target[0] if target else self._opaque(stmt.target, ctx)
            right, frontier = self._value(stmt.value, frontier, ctx)
            symbol = BINOPS.get(type(stmt.op), "?")
            op = TABLE.operator(symbol)
            _, frontier = self._new(ctx, frontier, kind="op", op=symbol, args=(left, right),
                                    outs=tuple(target), uses=_keys((left, right)), defs=_keys(target), span=span(stmt),
                                    arg_spans=(span(stmt.target), span(stmt.value)), canon=op.name if op else "")
            if stmt.target.__class__ is not ast.Subscript:
                return frontier
            return self._stored_items([stmt.target], stmt, frontier, ctx)
        if kind is ast.Expr:
            if stmt.value.__class__ is _CALL and stmt.value.func.__class__ is ast.Attribute \
                    and stmt.value.func.attr == "addcmul_":
                added = self._addcmul_in_place(stmt.value, frontier, ctx)
                if added is not None:
                    return added
            if stmt.value.__class__ is ast.BinOp and not _mutates(stmt.value):
                # ``x * torch.rsqrt(ms + eps)`` as a statement of its own: computed and thrown
                # away (Mega's RMSNorm returns x unnormalised); nothing reads it, so no step
                return frontier
            ctx.bare = stmt.value
            _, frontier = self._value(stmt.value, frontier, ctx)
            ctx.bare = None
            return frontier
        if kind is ast.Return:
            if stmt.value is not None and ctx.ret_parts is not None:
                frontier = self._return_parts(stmt, frontier, ctx)
            elif stmt.value is not None:
                ctx.returned = stmt.value
                value, frontier = self._value(stmt.value, frontier, ctx)
                ctx.returned = None
                if ctx.ret is not None:
                    _, frontier = self._new(ctx, frontier, kind="copy", args=(value,), outs=(ctx.ret,),
                                            uses=_keys((value,)), defs=frozenset({ctx.ret.key}), span=span(stmt))
                else:
                    _, frontier = self._new(ctx, frontier, kind="other", uses=_keys((value,)), span=span(stmt))
            ctx.ret_frontier.extend(frontier)
            return []
        if kind is ast.If:
            return self._if(stmt, frontier, ctx)
        if kind is ast.For or kind is ast.AsyncFor or kind is ast.While:
            return self._loop(stmt, frontier, ctx)
        if kind is ast.With or kind is ast.AsyncWith:
            for item in stmt.items:
                value, frontier = self._value(item.context_expr, frontier, ctx)
                if item.optional_vars is not None:
                    targets = self._target_values(item.optional_vars, ctx)
                    _, frontier = self._new(ctx, frontier, kind="other", outs=tuple(targets), defs=_keys(targets),
                                            uses=_keys((value,)), span=span(item.context_expr))
            return self._scoped(stmt.body, frontier, ctx, (span(stmt), 0))
        if kind is ast.Try or kind is _TRY_STAR:
            return self._try(stmt, frontier, ctx)
        if kind is ast.Match:
            return self._match(stmt, frontier, ctx)
        if kind is ast.Raise:
            if stmt.exc is not None:
                _, frontier = self._value(stmt.exc, frontier, ctx)
            return []
        if kind is ast.Break:
            if ctx.loops:
                ctx.loops[-1][0].extend(frontier)
            return []
        if kind is ast.Continue:
            if ctx.loops:
                ctx.loops[-1][1].extend(frontier)
            return []
        if kind is ast.Assert:
            stated = _asserted_rank(stmt.test)
            if stated is not None:
                # assert x.dim() == 3: past this statement x (the value it holds here) is 3-D
                value = self._name_value(stated[0], ctx)
                if isinstance(value, Ref):
                    self.asserted[value.key] = stated[1]
            _, frontier = self._new(ctx, frontier, kind="other", uses=self._uses_of(stmt.test, ctx), span=span(stmt))
            return frontier
        if kind is ast.Delete:
            targets = [v for t in stmt.targets for v in self._target_values(t, ctx)]
            _, frontier = self._new(ctx, frontier, kind="other", defs=_keys(targets), span=span(stmt))
            return frontier
        if kind is ast.FunctionDef or kind is ast.AsyncFunctionDef:
            ctx.local_funcs[stmt.name] = stmt  # inlined where it is called (closures)
        return frontier  # pass, global, nonlocal, imports

    def _stored_items(self, targets: list, stmt: ast.stmt, frontier: list, ctx: _Ctx) -> list:
        """``dot[:, i, i] = v`` (or ``+=``): the items of the local value ``dot`` holds change in
        place, so past this statement ``dot`` holds another value, as after ``dot.masked_fill_(m,
        v)``: a step that redefines it (a match whose later step reads the value as it was -- a
        softmax of the scores -- is no longer one; reformer's shared-QK diagonal set to -5e4 beside
        a causal fill of -finfo.max).  Except a plain mask fill (``_one_fill_level``): a masking
        value (-inf, the dtype's extreme, a literal <= -1e4) written where every other fill of the
        name in the function writes the same, which a boolean mask states (Longformer's global
        rows set to finfo.min beside a masked_fill of finfo.min).  And a read-modify-write sum
        into a block (:func:`_block_added`, outside any if, loop or with): an add step."""
        nodes = None
        for target in targets:
            if target.__class__ is not ast.Subscript:
                continue  # (a name, an attribute, a tuple: the common case, no call)
            root = target.value
            while root.__class__ in (ast.Subscript, ast.Attribute):
                root = root.value
            if root.__class__ is not ast.Name or root.id == "self":
                continue
            value = self._name_value(root.id, ctx)
            if not isinstance(value, Ref):
                continue
            if target.value is root and len(targets) == 1 and not ctx.scope:
                terms = _block_added(target, stmt, root.id, self._text)
                if terms is not None:
                    # ``attn[:, :, s:, s:] += rel`` / ``attn[..., s:, s:] = (attn[..., s:, s:].view(..)
                    # + rel_h + rel_w).view(..)`` (MViT's relative positions): the terms added to a
                    # block of the value, an additive bias of the whole that is zero outside the
                    # block -- a step ``value = value + bias`` (its bias no expression of the code).
                    # Only outside any if, loop or with (of the function, or of the call inlining
                    # it): under one the store stays a change of the value that is no step, as
                    # before, which the fixer sends to the original under its test (regionvit's
                    # `if patch_attn:`), where it cannot yet build the padded bias
                    uses = {value.key}
                    for term in terms:
                        uses |= self._uses_of(term, ctx)
                    bias = self._temp(self._text(stmt))
                    _, frontier = self._new(ctx, frontier, kind="op", op="+", args=(value, bias), outs=(value,),
                                            uses=frozenset(uses), defs=frozenset({value.key}), span=span(stmt),
                                            arg_spans=(span(target), span(stmt)), canon=TABLE.operator("+").name)
                    continue
            if not (stmt.__class__ is ast.Assign and target.value is root and self._fill_of(stmt.value, ctx) is not None
                    and self._one_fill_level(root.id, stmt.value, ctx)):
                nodes = (nodes or frozenset()) | {value.key}
        if nodes is None:
            return frontier
        _, frontier = self._new(ctx, frontier, kind="other", uses=nodes, defs=nodes, span=span(stmt))
        return frontier

    def _one_fill_level(self, name: str, fill: ast.expr, ctx: _Ctx) -> bool:
        """Does every fill of ``name`` in the function being read -- an item assignment
        ``name[...] = v``, a ``name.masked_fill(m, v)`` (or in place) -- write the value ``fill``
        is written as?  Then its positions are one mask's."""
        definition = ctx.definition
        if definition is None:
            return False
        text = self._text(fill)
        for node in ast_walk(definition):
            kind = node.__class__
            if kind is ast.Assign:
                for target in node.targets:
                    if target.__class__ is ast.Subscript and target.value.__class__ is ast.Name \
                            and target.value.id == name and self._text(node.value) != text:
                        return False
            elif kind is ast.AugAssign:
                target = node.target
                if target.__class__ is ast.Subscript and target.value.__class__ is ast.Name and target.value.id == name:
                    return False
            elif kind is ast.Call and node.func.__class__ is ast.Attribute \
                    and node.func.attr in ("masked_fill", "masked_fill_") and node.func.value.__class__ is ast.Name \
                    and node.func.value.id == name:
                given = node.args[1] if len(node.args) > 1 else next(
                    (k.value for k in node.keywords if k.arg == "value"), None)
                if given is None or self._text(given) != text:
                    return False
        return True

    def _member_stack(self, call: ast.Call, ctx: _Ctx) -> tuple[int, str] | None:
        """``torch.stack([m(x, ...) for m in self.heads], dim=d)`` (``d`` an int literal, 0 or
        more, by keyword or position), ``self.heads`` a ModuleList or Sequential the class binds
        members of: (d, the loop name).  Each member's output, stacked on a new axis ``d``; the
        axes after it (the last, a Linear's output features, included) are each member's own.
        Only a comprehension of one unconditional loop over the attribute whose element is a
        call of the loop name on arguments that do not mention it."""
        comp = call.args[0]
        if len(comp.generators) != 1 or len(call.args) > 2 or len(call.keywords) > (2 - len(call.args)):
            return None
        gen = comp.generators[0]
        target, it, elt = gen.target, gen.iter, comp.elt
        if gen.ifs or gen.is_async or target.__class__ is not _NAME or elt.__class__ is not _CALL \
                or elt.func.__class__ is not _NAME or elt.func.id != target.id:
            return None
        if not (it.__class__ is ast.Attribute and it.value.__class__ is _NAME and it.value.id == "self"
                and it.attr + "[]" in self.cls.bindings):
            return None
        dims = call.args[1:] + [k.value for k in call.keywords if k.arg == "dim"]
        if len(dims) != 1 or any(k.arg != "dim" for k in call.keywords):
            return None
        axis = _int_literal(dims[0])
        if axis is None or axis < 0 or self.names.resolve(call.func) != "torch.stack":
            return None
        if any(n.__class__ is _NAME and n.id == target.id for a in (*elt.args, *(k.value for k in elt.keywords))
               for n in ast_walk(a)):
            return None
        return axis, target.id

    def _stack_members(self, call: ast.Call, name: str, frontier: list, ctx: _Ctx) -> tuple[Value, list]:
        """The stack of _member_stack: the member's call (the loop name a layer alias of the
        attribute's members), then a step canon.members of its output."""
        elt = call.args[0].elt
        attr = call.args[0].generators[0].iter.attr
        saved = ctx.layer_alias.get(name)
        ctx.layer_alias[name] = f"self.{attr}[]"
        try:
            value, frontier = self._value(elt, frontier, ctx)
        finally:
            if saved is None:
                ctx.layer_alias.pop(name, None)
            else:
                ctx.layer_alias[name] = saved
        out = self._temp("")
        _, frontier = self._new(
            ctx, frontier, kind="call", op="stack", args=(value,), outs=(out,), uses=_keys((value,)),
            defs=frozenset({out.key}), span=span(call), arg_spans=(span(elt),), canon="canon.members",
            view=View((value,), (), (span(elt),), ()),
        )
        return out, frontier

    def _members_axis(self, value_expr: ast.expr, ctx: _Ctx) -> int | None:
        """The stack axis of what ``value_expr`` holds when it is a stack of a ModuleList's
        member outputs (_member_stack), a name holding one, or a selection of such a name
        (``logits = stacked[:, :, -n:]``) by slices that leave the stack axis whole (_keeps_axis)."""
        if value_expr.__class__ is _CALL:
            if value_expr.args and value_expr.args[0].__class__ is ast.ListComp and self.cls is not None:
                found = self._member_stack(value_expr, ctx)
                return found[0] if found is not None else None
            return _split_last_axis(value_expr)
        if value_expr.__class__ is _NAME:  # (a copy: logits = stacked)
            return ctx.members.get(value_expr.id)
        if value_expr.__class__ is ast.Subscript and value_expr.value.__class__ is _NAME:
            name = value_expr.value.id
            axis = ctx.members.get(name)
            if axis is not None and _keeps_axis(value_expr.slice, axis):
                return axis
        return None

    def _scoped(self, body, frontier, ctx: _Ctx, scope) -> list:
        saved = ctx.scope
        ctx.scope = saved + (scope,)
        try:
            return self._body(body, frontier, ctx)
        finally:
            ctx.scope = saved

    def _chunk_ref(self, name: str, index: int, ctx: _Ctx) -> Ref:
        """The ``index``-th chunk of a name bound to ``x.chunk(...)`` (see _Ctx.chunked): a key no
        source text has (an opaque ``c[0]`` of a later ``c`` is another value), the text c[k]."""
        text = f"{name}[..., {index}, :]" if name in ctx.stacked else f"{name}[{index}]"
        return Ref(self._key(f"{name}#{index}", ctx), text)

    def _stacked_halves(self, call: ast.Call, ctx: _Ctx) -> ast.Call | None:
        """``h.chunk(2, dim=-1)`` (placed where ``call`` is) when ``call`` is ``h.view(B, T, 2, -1)``
        (or ``reshape``; the last size also ``D // 2``) with ``B, T, D = h.shape``: every axis
        of h kept but the last, split into two halves along a new second-to-last axis."""
        if self._view_in_two(call, ctx, minus_one=True) is None:
            return None
        func = call.func
        two, rest = call.args[-2:]
        count = ast.copy_location(ast.Constant(2), two)
        last = ast.copy_location(ast.UnaryOp(op=ast.USub(), operand=ast.copy_location(ast.Constant(1), rest)), rest)
        method = ast.copy_location(ast.Attribute(value=func.value, attr="chunk", ctx=ast.Load()), func)
        return ast.copy_location(ast.Call(func=method, args=[count], keywords=[
            ast.copy_location(ast.keyword(arg="dim", value=last), rest)]), call)

    def _split_call(self, call: ast.Call, method: str):
        """(functional, the tensor or None, the other positional arguments, the keywords by name)
        of ``h.<method>(...)`` or ``torch.<method>(h, ...)`` (the functional form when the callee
        is an imported name resolving to ``torch.<method>``); None for any other call, or one with
        ``*`` or ``**`` arguments.  What :meth:`_split_in_halves` and
        :meth:`_tensor_split_halves` read."""
        func = call.func
        if func.__class__ is not ast.Attribute or func.attr != method \
                or any(isinstance(a, ast.Starred) for a in call.args) or any(k.arg is None for k in call.keywords):
            return None
        functional = isinstance(func.value, ast.Name) and func.value.id in self.names.imports
        if functional and self.names.resolve(func) != "torch." + method:
            return None
        args = list(call.args)
        base = args.pop(0) if functional and args else (None if functional else func.value)
        return functional, base, args, {k.arg: k.value for k in call.keywords}

    def _split_in_halves(self, call: ast.Call, ctx: _Ctx) -> ast.Call | None:
        """``h.chunk(2, dim=-1)`` (placed where ``call`` is) when ``call`` splits the last axis of
        a name h into two equal parts: ``torch.split(h, h.shape[-1] // 2, dim=-1)`` /
        ``h.split(h.size(-1) // 2, -1)`` or sizes ``[n, n]`` (one expression twice).  Only read
        for a result unpacked into two names: with an odd axis the first form has three parts
        and the unpacking fails, and split sizes must add up to the axis, so when the code runs
        the parts are the halves chunk gives.  The half size may be a local name bound to such
        a half, also of ``shape[-1]`` with ``shape = h.shape`` (ProtFlash's rope(), research85:
        :func:`_local_half_of_last`).  None for any other call."""
        split = _split_arguments(self._split_call(call, "split"))
        if split is None or not isinstance(split[0], ast.Name):
            return None
        base, size, dim = split
        if not (_half_of_last(size, base.id) or _local_half_of_last(size, base.id, ctx.exprs) or (
                isinstance(size, (ast.List, ast.Tuple)) and len(size.elts) == 2
                and _pure_size(size.elts[0]) and ast.dump(size.elts[0]) == ast.dump(size.elts[1]))):
            return None
        return _chunk_halves(call, base, size, dim)

    def _tensor_split_halves(self, call: ast.Call, ctx: _Ctx) -> ast.Call | None:
        """``h.chunk(2, dim=-1)`` (placed where ``call`` is) when ``call`` is
        ``torch.tensor_split(h, (n,), dim=-1)`` / ``h.tensor_split([n], -1)`` (one split index:
        two parts, ``h[..., :n]`` and ``h[..., n:]``) and h was last bound to a call of a
        ``nn.Linear`` attribute whose output width is written ``2 * n`` (or ``n * 2``, the same
        text n, no call in it): the parts are the halves.  Also ``h.tensor_split(2, dim=-1)`` /
        ``torch.tensor_split(h, 2, -1)`` of any tensor h (two sections: the first gets the odd
        element, exactly the two parts ``h.chunk(2, dim=-1)`` gives; voltron's SwishGLU,
        research112).  None for any other call."""
        parts = self._split_call(call, "tensor_split") if self.cls is not None else None
        if parts is None:
            return None
        _, base, args, keywords = parts
        index = args.pop(0) if args else keywords.pop(
            "indices", keywords.pop("indices_or_sections", keywords.pop("sections", None)))
        dim = args.pop(0) if args else keywords.pop("dim", None)
        if args or keywords or base is None or index is None or dim is None or _int_literal(dim) != -1:
            return None
        if _int_literal(index) == 2:
            return _chunk_halves(call, base, index, dim)
        if base.__class__ is not ast.Name \
                or index.__class__ not in (ast.Tuple, ast.List) or len(index.elts) != 1 \
                or not _pure_size(index.elts[0]):
            return None
        if not self._twice_linear(base, index.elts[0], ctx):
            return None
        return _chunk_halves(call, base, index, dim)

    def _split_linear_halves(self, call: ast.Call, ctx: _Ctx) -> ast.Call | None:
        """``h.chunk(2, dim=-1)`` (placed where ``call`` is) when ``call`` is
        ``h.split(n, dim=-1)`` / ``torch.split(h, n, -1)`` (parts of n along the last axis, the
        result unpacked into two names) and h is a call of a ``nn.Linear`` attribute, or a name
        last bound to one, whose output width is written ``2 * n`` (:meth:`_twice_linear`): two
        parts of n, the halves (xLSTM's ``gate, up = self.proj_up(x).split(self.d, dim=-1)``
        with ``out_features=2 * self.d``).  None for any other call."""
        split = _split_arguments(self._split_call(call, "split")) if self.cls is not None else None
        if split is None:
            return None
        base, size, dim = split
        if size.__class__ in (ast.List, ast.Tuple) or not _pure_size(size) \
                or not self._twice_linear(base, size, ctx):
            return None
        return _chunk_halves(call, base, size, dim)

    def _twice_linear(self, base: ast.expr, half: ast.expr, ctx: _Ctx) -> bool:
        """True when ``base`` is a call of a ``nn.Linear`` attribute (or a name last bound to
        one) whose every construction writes the output width ``2 * half`` (or ``half * 2``,
        the same text as ``half``, no call in it): cut at ``half``, its output has two halves."""
        kind = base.__class__
        held = base if kind is _AST_CALL else ctx.exprs.get(base.id) if kind is _AST_NAME else None
        layer = self._layer_of(held.func, ctx) if held.__class__ is _AST_CALL else None
        ctors = self.cls.bindings.get(_attr(layer)) if layer is not None else None
        if not ctors:
            return False
        text = ast.dump(half)
        for ctor in ctors:
            width = ctor.args[1] if len(ctor.args) > 1 else dict(ctor.kwargs).get("out_features")
            if ctor.fqn != "torch.nn.Linear" or ctor.unlike or width.__class__ is not ast.BinOp \
                    or width.op.__class__ is not ast.Mult:
                return False
            if not ((_int_literal(width.left) == 2 and ast.dump(width.right) == text)
                    or (_int_literal(width.right) == 2 and ast.dump(width.left) == text)):
                return False
        return True

    def _normed_linear_rows(self, call: ast.Call, ctx: _Ctx) -> ast.Call | None:
        """``call`` with its argument read as ``h.view(-1, h.size(-1))`` when ``call`` is a
        ``nn.BatchNorm1d`` attribute's call of ``h.view(-1, W)`` that :meth:`_linear_rows` reads
        so, or of any two-axis view of a Linear's output whose width the norm checks
        (:meth:`_norm_checked_rows`); None for anything else.  Only there: other rules read such
        a view as written (an LM head's ``logits.view(-1, self.vocab)`` beside its targets, ADP015)."""
        view = call.args[0]
        method = view.func
        if method.__class__ is not ast.Attribute or (method.attr != "view" and method.attr != "reshape") \
                or len(view.args) != 2 or view.keywords or view.args[0].__class__ is ast.Starred \
                or view.args[1].__class__ is ast.Starred:
            return None
        norm = call.func
        if norm.value.__class__ is not _AST_NAME or norm.value.id != "self":
            return None
        ctors = self.cls.bindings.get(norm.attr)
        if not ctors:
            return None
        rows = None
        if _int_literal(view.args[0]) == -1 and all(c.fqn == "torch.nn.BatchNorm1d" for c in ctors):
            rows = self._linear_rows(view, ctx)
        if rows is None:
            rows = self._norm_checked_rows(view, ctors, ctx)
        if rows is None:
            return None
        return ast.copy_location(ast.Call(func=call.func, args=[rows], keywords=[]), call)

    def _norm_checked_rows(self, call: ast.Call, norm_ctors, ctx: _Ctx) -> ast.Call | None:
        """``h.view(-1, h.size(-1))`` when ``call`` is ``h.view(A, B)`` (or ``reshape``), h the
        output of an ``nn.Linear`` attribute's call in this block, and the norm it goes into
        checks B against the Linear's width (structure/normed_rows.py: ``self.bn(h.view(N * M,
        -1))``, speechbrain's ``w.reshape(w.shape[0] * w.shape[1], w.shape[2])``); else None."""
        base = call.func.value
        if base.__class__ is not _AST_NAME or not size_text(call.args[0]) or not size_text(call.args[1]):
            return None
        linear = self._producer_ctors(base, ctx)
        if not linear or not norm_checks_width(norm_ctors, linear, self.cls.methods):
            return None
        return _linear_rows_view(call, base, call.args[1])

    def _last_size_may_be_width(self, call: ast.Call, ctx: _Ctx) -> bool:
        """May ``x.view(N, X)``'s X be x's own last size, so that :func:`_free_lead` reads the
        view as x's rows?  Not when X is a product of sizes none a literal (``T * V``: rows of
        the positions and the vocabulary merged, review39's ``logits.reshape(B, T * V)``), unless
        x is the output of a Linear attribute every construction of which writes its width as
        that same product (:meth:`_linear_rows`'s reading)."""
        last = call.args[1]
        if last.__class__ is not ast.BinOp or last.op.__class__ is not ast.Mult \
                or _int_literal(last.left) is not None or _int_literal(last.right) is not None:
            return True
        base = call.func.value
        if base.__class__ is not _AST_NAME:
            return False
        ctors = self._producer_ctors(base, ctx)
        if not ctors:
            return False
        text = ast.dump(last)
        for ctor in ctors:
            width = ctor.args[1] if len(ctor.args) > 1 else dict(ctor.kwargs).get("out_features")
            if ctor.fqn != "torch.nn.Linear" or width is None or ast.dump(width) != text:
                return False
        return True

    def _producer_ctors(self, base: ast.Name, ctx: _Ctx) -> list | None:
        """The constructions of the layer attribute whose call last bound the name ``base`` in
        this block or a block around it outside any loop (speechbrain's ``w = self.w(x)``, then
        ``if self.normalize: self.norm(w.reshape(...))``); None when a statement of another
        block, or no layer call, bound it, or when a loop may bind it again later in its body."""
        key = self._key(base.id, ctx)
        producer = None
        for node in self.nodes[-1:-_LIKE_LOOKBACK:-1]:  # base's last definition
            if key in node.defs:
                producer = node if node.scope == ctx.scope or (
                    not ctx.loops and ctx.scope[:len(node.scope)] == node.scope) else None
                break
        layer = producer.layer if producer is not None and producer.kind == "layer" else None
        return self.cls.bindings.get(_attr(layer)) if layer is not None else None

    def _linear_rows(self, call: ast.Call, ctx: _Ctx) -> ast.Call | None:
        """``h.view(-1, h.size(-1))`` when ``call`` is ``h.view(-1, W)`` (or ``h.reshape``) and h is
        a name whose value the flow has from a call of an ``nn.Linear`` attribute whose every construction
        writes its output width as W (the same text, or a product of the same two factors in
        the other order, no call in it): W is h's last size, so the call flattens h to rows of
        it (MOFTransformer's CGCNN: ``h = self.fc_full(x)`` with ``out_features=2 * self.d``,
        then ``self.bn1(h.view(-1, self.d * 2))``); None for anything else."""
        base, width = call.func.value, call.args[1]
        # (a bare name in forward is not the name __init__ built the layer with: tested first,
        # the common ``x.view(-1, C)``, before any walk)
        if call.keywords or base.__class__ is not _AST_NAME or width.__class__ is _AST_NAME \
                or width.__class__ is ast.Call or not _pure_size(width) \
                or any(n.__class__ is _AST_NAME and n.id != "self" for n in ast_walk(width)):
            return None
        ctors = self._producer_ctors(base, ctx)
        if not ctors:
            return None
        for ctor in ctors:
            out = ctor.args[1] if len(ctor.args) > 1 else dict(ctor.kwargs).get("out_features")
            if ctor.fqn != "torch.nn.Linear" or ctor.unlike or out is None or not same_size(out, width):
                return None
        return _linear_rows_view(call, base, width)

    def _chunk_count(self, call: ast.Call) -> int | None:
        """N of ``x.chunk(N, ...)`` / ``torch.chunk(x, N, ...)`` with a literal N (2 to 8)."""
        func = call.func
        if not isinstance(func, ast.Attribute) or func.attr != "chunk":
            return None
        at = 1 if isinstance(func.value, ast.Name) and func.value.id in self.names.imports \
            and self.names.resolve(func) == "torch.chunk" else 0  # torch.chunk(x, 2) or x.chunk(2)
        count = call.args[at] if len(call.args) > at else next(
            (k.value for k in call.keywords if k.arg == "chunks"), None)
        number = _int_literal(count) if count is not None else None
        return number if number is not None and 2 <= number <= 8 else None

    def _target_values(self, target: ast.expr, ctx: _Ctx) -> list[Ref]:
        if isinstance(target, ast.Name):
            if ctx.members and target.id in ctx.members:
                del ctx.members[target.id]
                ctx.split.discard(target.id)
            if ctx.flat and target.id in ctx.flat:
                ctx.flat.discard(target.id)
            if ctx.called and target.id in ctx.called:
                ctx.called.discard(target.id)
            if ctx.layer_outputs and target.id in ctx.layer_outputs:
                del ctx.layer_outputs[target.id]
            if ctx.chunked:
                ctx.chunked.pop(target.id, None)
                ctx.stacked.discard(target.id)
            value = self._name_value(target.id, ctx)
            if target.id in ctx.params and (isinstance(value, Ref) or value.__class__ is Const):
                # Assigning to a parameter starts a new local of that name (one bound to the
                # call's literal too: ``dim = 1`` in the helper)
                ctx.params.pop(target.id)
                value = Ref(self._key(target.id, ctx), target.id)
            return [value] if isinstance(value, Ref) else []
        if isinstance(target, (ast.Tuple, ast.List)):
            out: list[Ref] = []
            for elt in target.elts:
                out.extend(self._target_values(elt.value if isinstance(elt, ast.Starred) else elt, ctx))
            return out
        if isinstance(target, ast.Starred):
            return self._target_values(target.value, ctx)
        return [self._opaque(target, ctx)]

    def _partial_call(self, call: ast.Call, ctx: _Ctx) -> ast.Call | None:
        """``f(x)`` where ``f = functools.partial(helper, a, k=b)`` (bound by name earlier, or
        written inline): the call ``helper(a, x, k=b)`` of a same-file function, which is then
        inlined like any call of it (None otherwise)."""
        func = call.func
        bound = ctx.exprs.get(func.id) if isinstance(func, ast.Name) else func
        if not (isinstance(bound, ast.Call) and bound.args and isinstance(bound.args[0], ast.Name)
                and not any(isinstance(a, ast.Starred) for a in bound.args)
                and all(k.arg is not None for k in bound.keywords)
                and self.names.resolve(bound.func) == "functools.partial"):
            return None
        helper = self._helper_of(bound.args[0], ctx)
        if helper is None or helper[1]:
            return None
        return ast.copy_location(ast.Call(func=bound.args[0], args=[*bound.args[1:], *call.args],
                                          keywords=[*bound.keywords, *call.keywords]), call)

    def _map_calls(self, target: ast.expr, value_expr: ast.Call, ctx: _Ctx) -> list | None:
        """``q, k = map(f, (q, k))`` with ``f`` a same-file function (by name or through
        ``functools.partial``) or a lambda whose body is one call: the assignments ``q = f(q)``,
        ``k = f(k)`` in order (None when ``map`` is not the builtin, the shapes differ, or an
        substituted call -- the element or what the function reads from outside, as a lambda's
        closure or a partial's bound arguments -- reads a name an earlier assignment rebinds:
        ``map`` evaluates every call before any target is bound)."""
        if (len(value_expr.args) != 2 or value_expr.keywords or self.names.resolve(value_expr.func) is not None
                or "map" in self.names.functions or "map" in ctx.params or "map" in ctx.exprs):
            return None
        fn, seq = value_expr.args
        if not (isinstance(seq, (ast.Tuple, ast.List)) and len(seq.elts) == len(target.elts)
                and all(isinstance(t, ast.Name) for t in target.elts)
                and not any(isinstance(e, ast.Starred) for e in seq.elts)):
            return None
        if isinstance(fn, ast.Lambda):
            params = [a.arg for a in fn.args.posonlyargs + fn.args.args]
            body = fn.body
            # (any call in the body, as a comprehension's element is read: MST's ``q, k, v, m =
            # map(lambda t: rearrange(t, ...), (q, k, v, m))`` lays out each element alone)
            if not (len(params) == 1 and not fn.args.defaults and not fn.args.vararg and not fn.args.kwonlyargs
                    and not fn.args.kwarg and isinstance(body, ast.Call)
                    and not any(n.__class__ in _NESTED_SCOPES for n in ast_walk(body))):
                return None
        elif isinstance(fn, (ast.Name, ast.Call)):
            probe = ast.Call(func=fn, args=[], keywords=[])
            if self._partial_call(probe, ctx) is None and (
                    not isinstance(fn, ast.Name) or self._helper_of(fn, ctx) is None):
                return None
        else:
            return None
        bound = ctx.exprs.get(fn.id) if isinstance(fn, ast.Name) else None
        out, rebound = [], set()
        for name, elt in zip(target.elts, seq.elts):
            if isinstance(fn, ast.Lambda):
                call = _Substitute(params[0], elt).visit(copy.deepcopy(fn.body))
            else:
                call = ast.copy_location(ast.Call(func=fn, args=[elt], keywords=[]), value_expr)
            if rebound and (_reads_any(call, rebound) or (bound is not None and _reads_any(bound, rebound))):
                return None
            rebound.add(name.id)
            out.append((name, call))
        return out

    def _setting_dispatch(self, targets: list, call: ast.Call, ctx: _Ctx):
        """``y = fn(a, b)`` with ``fn = getattr(self, self.mode)`` bound once in the function (or
        ``getattr(self, self.mode)(a, b)`` itself): the ``if self.mode == "<v>": y = self.<v>(a,
        b)`` chain over the values the file lets the setting take (setting_dispatch), or the one
        call when one value names a method; None for any other call or an undecidable setting."""
        if self._guard_texts.get(id(call), (None,))[0] is call:
            return None  # the chain's last ``else``: the call as written
        func = call.func
        if func.__class__ is _AST_NAME:
            if ctx.definition is None or func.id in ctx.params or "getattr" in self.names.functions:
                return None
            local = self._dispatch_locals.get(ctx.definition)
            if local is None:
                local = self._dispatch_locals[ctx.definition] = local_dispatches(ctx.definition)
            attr = local.get(func.id)
        elif func.__class__ is _CALL:
            attr = dispatched_attr(func)
        else:
            return None
        if attr is None or "getattr" in self.names.imports:
            return None
        values = self._setting_values.get(attr)
        if values is None:
            return None
        chain = dispatch_branches(targets, call, attr, values, self.cls.methods)
        if chain is not None:
            self._guard_texts[id(call)] = (call, None)  # (read once: the else keeps it)
        return chain

    def _assign(self, targets: list[ast.expr], value_expr: ast.expr, frontier: list, ctx: _Ctx,
                tracked: bool = False) -> list:
        if value_expr.__class__ is _CALL and value_expr.func.__class__ is _AST_NAME \
                and value_expr.func.id in self.names.functions and value_expr.args and not value_expr.args[1:] \
                and value_expr.args[0].__class__ is _AST_NAME and not value_expr.keywords:
            # z1 = grab_first_if_tuple(z1), z1 a Linear's output: z1 = z1 (_passes_through)
            helper = self._helper_of(value_expr.func, ctx)
            if helper is not None:
                value = self._name_value(value_expr.args[0].id, ctx)
                if value.__class__ is Ref and self._passes_through(helper, value):
                    value_expr = value_expr.args[0]
        elif value_expr.__class__ is _CALL and self.package is not None and value_expr.func.__class__ is _AST_NAME \
                and value_expr.func.id in self.names.imports and value_expr.args and not value_expr.args[1:] \
                and value_expr.args[0].__class__ is _AST_NAME and not value_expr.keywords \
                and value_expr.func.id not in ctx.params and self._sibling_through(self.names.imports[value_expr.func.id]):
            # the same, the function imported from another module of the package
            value = self._name_value(value_expr.args[0].id, ctx)
            if value.__class__ is Ref and self._tensor_ref(value):
                value_expr = value_expr.args[0]
        if value_expr.__class__ is _AST_NAME and targets[0].__class__ is _AST_NAME and not targets[1:] \
                and targets[0].id == value_expr.id:
            return frontier  # x = x: nothing changes
        if self._dispatching and value_expr.__class__ is _CALL and value_expr.func.__class__ is not ast.Attribute \
                and not targets[1:]:
            chain = self._setting_dispatch(targets, value_expr, ctx)
            if chain is not None:
                stmt, texts = chain
                self._guard_texts.update(texts)
                return self._if(stmt, frontier, ctx)
        if value_expr.__class__ is _CALL and value_expr.func.__class__ is ast.Attribute and self.cls is not None \
                and value_expr.func.value.__class__ is _AST_NAME and value_expr.func.value.id == "self" \
                and not targets[1:] and targets[0].__class__ is _AST_NAME:
            pickable = self._pickable
            if pickable is None:
                pickable = self._pickable = picked_attributes(self.cls.methods)
            picked = None
            if value_expr.func.attr in pickable:
                if value_expr.func.attr not in self._picked:
                    self._picked[value_expr.func.attr] = _picked_methods(self.cls, value_expr.func.attr)
                picked = self._picked[value_expr.func.attr]
            if picked is not None:
                # attn = self.attention_function(q, k) with ``self.attention_function =
                # self.softmax_attention if <test> else self.element_attention`` in __init__:
                # that method's call, or `if <test>: attn = <first> else: attn = <second>`
                test, methods = picked
                calls = [ast.copy_location(ast.Call(
                    func=ast.copy_location(ast.Attribute(value=value_expr.func.value, attr=m, ctx=ast.Load()),
                                           value_expr.func),
                    args=value_expr.args, keywords=value_expr.keywords), value_expr) for m in methods]
                if test is None:
                    value_expr = calls[0]
                else:
                    return self._if(_optional_step(targets, ast.copy_location(
                        ast.IfExp(test=test, body=calls[0], orelse=calls[1]), value_expr)), frontier, ctx)
        if not tracked and ((value_expr.__class__ is _CALL and value_expr.args and (
                value_expr.args[0].__class__ is ast.ListComp or value_expr.func.__class__ is ast.Attribute
                and value_expr.func.attr in _VIEWS and value_expr.args[1:] and (
                    not value_expr.args[2:] or value_expr.args[0].__class__ is ast.Starred
                    and _split_last_axis(value_expr) is not None)))
                or (ctx.members and value_expr.__class__ in (_NAME, ast.Subscript))) \
                and targets[0].__class__ is _NAME and not targets[1:]:
            # a stack of a ModuleList's member outputs, or a selection of one keeping its axis
            # (_Ctx.members), or a view to two axes (_Ctx.flat): tracked by name until the name
            # is assigned again (the reading holds on the paths from that assignment)
            axis = self._members_axis(value_expr, ctx)
            flat = axis is None and value_expr.__class__ is _CALL and _two_axis_view(value_expr)
            frontier = self._assign(targets, value_expr, frontier, ctx, tracked=True)
            if axis is not None:
                ctx.members[targets[0].id] = axis
                if value_expr.__class__ is _CALL and value_expr.args[0].__class__ is ast.Starred:
                    ctx.split.add(targets[0].id)  # (_members_axis: a starred first argument is the split)
            elif flat:
                ctx.flat.add(targets[0].id)
            return frontier
        if not tracked and value_expr.__class__ is _CALL and targets[0].__class__ is _NAME and not targets[1:] \
                and self._member_call(value_expr):
            frontier = self._assign(targets, value_expr, frontier, ctx, tracked=True)
            ctx.called.add(targets[0].id)
            return frontier
        if (value_expr.__class__ is ast.Call and value_expr.func.__class__ is ast.Attribute
                and value_expr.func.attr == "contiguous" and not value_expr.args and not value_expr.keywords):
            # y = x.contiguous(): the values of x (x itself when it is contiguous already, else
            # a copy in another memory layout), read as y = x -- a layout call between two steps
            # (Uni-Mol's softmax helper makes the scores contiguous before adding the bias) is
            # no operation between them
            value_expr = value_expr.func.value
        if (value_expr.__class__ is ast.Call and value_expr.func.__class__ is ast.Name
                and value_expr.func.id in self.names.functions and len(targets) == 1
                and targets[0].__class__ is ast.Name and value_expr.func.id not in ctx.params
                and self._closure_call(targets[0].id, value_expr, ctx)):
            # (the call-free tests first: ``len`` only for a call of a same-file function)
            return frontier
        # (_optional_step reads a conditional expression only: other values ask no call)
        optional = _optional_step(targets, value_expr) if value_expr.__class__ is ast.IfExp else None
        if optional is not None:
            # sim = (sim + bias) if self.use_bias else sim: a step taken only when the test
            # holds, the other choice keeping the value; read as `if test: sim = sim + bias`
            return self._if(optional, frontier, ctx)
        if ctx.split_parts and value_expr.__class__ is ast.Call and len(targets) == 1 \
                and targets[0].__class__ is ast.Name:
            parts = self._split_parts(value_expr, ctx)
            if parts is not None and parts[2] == "cat":
                # g = s.split(n, dim=1); g = [b(p) + p for b, p in zip(m, g)]; s = torch.cat(g, dim=1):
                # s plus the parts' terms, put together along the axis the parts split
                left, right = self._name_value(parts[0], ctx), self._name_value(value_expr.args[0].id, ctx)
                self._remember(targets, value_expr, ctx)
                out = self._target_values(targets[0], ctx)[0]
                op = TABLE.operator("+")
                _, frontier = self._new(ctx, frontier, kind="op", op="+", args=(left, right), outs=(out,),
                                        uses=_keys((left, right)), defs=_keys((out,)), span=span(value_expr),
                                        arg_spans=(span(value_expr), span(value_expr.args[0])),
                                        canon=op.name if op else "")
                return frontier
        # (the tests below by exact class, read once: this runs for every assignment)
        single = len(targets) == 1
        target_kind = targets[0].__class__ if single else None
        one_name = target_kind is _AST_NAME
        unpacking = target_kind is ast.Tuple or target_kind is ast.List
        if unpacking and len(targets[0].elts) == 2 \
                and all(e.__class__ is _AST_NAME for e in targets[0].elts) and value_expr.__class__ is _AST_CALL:
            # a, b = torch.split(h, h.shape[-1] // 2, dim=-1) (or h.split([n, n], -1)): two equal
            # parts of the last axis unpacked into two names are its halves, h.chunk(2, dim=-1)
            value_expr = self._split_in_halves(value_expr, ctx) or self._tensor_split_halves(value_expr, ctx) \
                or self._split_linear_halves(value_expr, ctx) or value_expr
        value_kind = value_expr.__class__
        if one_name and value_kind is _AST_CALL and ctx.scope == ctx.body_scope:
            # (the callee's attribute read once: this runs for every call assigned to a name)
            method = value_expr.func.attr if value_expr.func.__class__ is ast.Attribute else None
            count = self._chunk_count(value_expr) if method == "chunk" else None
            stacked = None
            if method == "view" or method == "reshape":
                # h = h.view(B, T, 2, -1) then h[..., 0, :], h[..., 1, :]: the halves of the last
                # axis, stacked on a new one; read as h.chunk(2, dim=-1)
                stacked = self._stacked_halves(value_expr, ctx)
                if stacked is not None:
                    # (what _remember records for such a view, read before the chunks are
                    # bound: ``x1, x2 = h.unbind(dim=-2)`` of it are the halves too)
                    split = ("split2", self._name_value(value_expr.func.value.id, ctx))
                    value_expr, count = stacked, 2
            if count is not None:
                # c = h.chunk(2, dim=-1) read as c[0], c[1]: the chunks as if unpacked, so that
                # c[k] is the k-th output of the chunk step (a whole read of c reads them all)
                name = targets[0].id
                parts = [ast.copy_location(ast.Name(id=f"{name}#{k}", ctx=ast.Store()), targets[0])
                         for k in range(count)]
                unpacked = ast.copy_location(ast.Tuple(elts=parts, ctx=ast.Store()), targets[0])
                frontier = self._assign([unpacked], value_expr, frontier, ctx)
                ctx.stacked.discard(name)
                if stacked is not None:
                    ctx.stacked.add(name)
                    ctx.exprs[name] = split
                refs = tuple(self._chunk_ref(name, k, ctx) for k in range(count))
                node = self.nodes[-1]
                if tuple(o.key for o in node.outs) == tuple(r.key for r in refs):
                    node.outs = refs  # the chunks' text is c[k] (what synthesis writes)
                ctx.chunked.pop(name, None)
                ctx.chunked[name] = tuple(r.key for r in refs)
                return frontier
        if unpacking and (value_kind is ast.Tuple or value_kind is ast.List) and _parallel(targets[0], value_expr):
            # (_parallel's first test inline: a tuple or list unpacked from a display)
            # n, m = 2 ** 9, x.shape[0]: each name holds its own element, as if assigned in turn
            # (no element reads a name being assigned, so the order cannot matter)
            for target, part in zip(targets[0].elts, value_expr.elts):
                frontier = self._assign([target], part, frontier, ctx)
            return frontier
        if (unpacking and value_kind is _AST_CALL
                and value_expr.func.__class__ is _AST_NAME and value_expr.func.id == "map"):
            calls = self._map_calls(targets[0], value_expr, ctx)
            if calls is not None:
                for target, call in calls:
                    frontier = self._assign([target], call, frontier, ctx)
                return frontier
        if (value_kind is ast.ListComp or value_kind is ast.GeneratorExp) and unpacking:
            calls = _comprehension_calls(targets[0], value_expr)
            if calls is not None:
                for target, call in calls:
                    frontier = self._assign([target], call, frontier, ctx)
                return frontier
        if one_name:
            # attention_interface = eager_attention_forward, or a dispatcher given it as the
            # default (ALL_ATTENTION_FUNCTIONS.get_interface(impl, eager_attention_forward))
            # (the names among the arguments tested in place, no list of them made: most
            # assignments name no same-file function)
            functions = None
            own = self.names.functions
            if value_kind is _AST_NAME:
                if value_expr.id in own and value_expr.id not in ctx.params:
                    functions = {value_expr.id}
            elif value_kind is _AST_CALL:
                for n in value_expr.args:
                    if n.__class__ is _AST_NAME and n.id in own and n.id not in ctx.params:
                        functions = {n.id} if functions is None else functions | {n.id}
                for k in value_expr.keywords:
                    n = k.value
                    if n.__class__ is _AST_NAME and n.id in own and n.id not in ctx.params:
                        functions = {n.id} if functions is None else functions | {n.id}
            if functions is not None and len(functions) == 1:
                ctx.func_alias[targets[0].id] = functions.pop()
        self._remember(targets, value_expr, ctx)
        if one_name and value_kind is ast.IfExp and self._function_pair(value_expr, ctx):
            ctx.func_choice[targets[0].id] = value_expr
        elif one_name and value_kind is ast.IfExp:
            alias = self._callable_alias(value_expr)
            if alias is not None:
                ctx.fqn_alias[targets[0].id] = alias
            else:
                choices = self._choices(value_expr)
                if choices:
                    ctx.choice_alias[targets[0].id] = choices
        elif one_name and value_kind is _AST_CALL and value_expr.func.__class__ is _AST_NAME \
                and value_expr.func.id == "getattr":
            # klass = getattr(torch.optim, name): the class that lookup chooses (_lookup_choices)
            choices = self._lookup_choices(value_expr)
            if choices:
                ctx.choice_alias[targets[0].id] = choices
        elif one_name and (value_kind is ast.ListComp or value_kind is _AST_CALL and (
                value_expr.func.__class__ is _AST_NAME and value_expr.func.id in _MEMBERS_KEPT
                or value_expr.func.__class__ is ast.Attribute and value_expr.func.attr == "getmembers")):
            # optim = list(filter(pred, inspect.getmembers(torch.optim))): (name, class) pairs
            # of that module's members; ``optim[0][1]`` is one of its classes (_member_value)
            choices = self._members_choices(value_expr)
            if choices:
                ctx.choice_alias[_MEMBER_LIST + targets[0].id] = choices
        elif (one_name or unpacking) and value_kind is ast.Subscript and value_expr.value.__class__ is _AST_NAME \
                and value_expr.value.id in self.names.constants and value_expr.value.id not in ctx.params:
            # klass = OPTIMIZERS[name], or klass, defaults = OPTIMIZERS[name]: an entry of a
            # module-level literal table (_table_entry)
            self._table_entry(targets[0], value_expr.value.id, ctx)
        elif one_name and value_kind is ast.Subscript and value_expr.value.__class__ is _AST_NAME \
                and self.package is not None and value_expr.value.id in self.names.imports:
            # klass = OPTS[name], OPTS a table imported from another module of the package
            choices = self._imported_table_choices(value_expr.value, ctx)
            if choices:
                ctx.choice_alias[targets[0].id] = choices
        elif one_name and value_kind is ast.Subscript and value_expr.value.__class__ is ast.Dict:
            # klass = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam}[name]: the same, written in place
            choices = self._dict_choices(value_expr.value)
            if choices:
                ctx.choice_alias[targets[0].id] = choices
        elif one_name and (value_kind is ast.Attribute or value_kind is _AST_NAME) \
                and getattr(value_expr, "id", None) not in ctx.params:
            # ce = F.cross_entropy: a local name for a torch function of the table, called
            # later through the name (a shorthand, the same call)
            fqn = self.names.resolve(value_expr)
            if fqn is not None and TABLE.function(fqn) is not None:
                ctx.fqn_alias[targets[0].id] = fqn
            elif fqn is not None and ctx.definition is not None:
                # optimizer_fn = AdamW, then under an if optimizer_fn = Adam: a call through
                # the name calls one of the callables it is ever assigned (_assigned_choices)
                choices = self._assigned_choices(ctx.definition).get(targets[0].id)
                if choices:
                    ctx.choice_alias[targets[0].id] = choices
        if one_name:
            name = targets[0].id
            if value_kind is _AST_CALL and TABLE.module(self.names.resolve(value_expr.func)) is not None:
                ctx.built_alias[name] = value_expr
            else:
                ctx.built_alias.pop(name, None)
            # Layer aliases: drop = self.dropout
            layer = self._layer_of(value_expr, ctx) if value_kind is ast.Attribute or value_kind is ast.Subscript \
                else self._alike_arms(value_expr, ctx) if value_kind is ast.IfExp and self.cls is not None else None
            if layer is not None and self.cls is not None and _attr(layer).rstrip("[]") in self.cls.bindings:
                ctx.layer_alias[targets[0].id] = layer
            # (``y = self.proj`` and ``d = x.shape``-like reads stop at the name: no call for those)
            row = _row_module(value_expr) if value_kind is ast.Attribute and self.cls is not None \
                and value_expr.value.__class__ is not _AST_NAME else None
            if row is not None:
                ctx.row_alias[name] = row
            elif ctx.row_alias and name in ctx.row_alias:
                del ctx.row_alias[name]
        before = len(self.nodes)
        ctx.top = value_expr
        ctx.rebinds = targets[0].id if one_name else None
        if (value_kind is ast.List or value_kind is ast.Tuple) and one_name:
            ctx.held = value_expr
        unpacked = value_kind is _AST_CALL and unpacking and all(e.__class__ is _AST_NAME for e in targets[0].elts)
        if unpacked:
            ctx.unpack = (value_expr, len(targets[0].elts))
        value, frontier = self._value(value_expr, frontier, ctx)
        ctx.top = ctx.unpack = ctx.held = ctx.rebinds = None
        outs: list[Ref] = []
        for target in targets:
            outs.extend(self._target_values(target, ctx))
        parts = self._parts.get(value.key) if unpacked and isinstance(value, Ref) else None
        if parts is not None and len(parts) == len(outs):
            for out, part in zip(outs, parts):
                _, frontier = self._new(ctx, frontier, kind="copy", args=(part,), outs=(out,), defs=_keys((out,)),
                                        uses=_keys((part,)), span=span(value_expr))
            return frontier
        produced = len(self.nodes) > before and self.nodes[-1].outs == (value,) and isinstance(value, Ref) \
            and value.key.startswith("%") and self.nodes[-1].kind != "copy"
        if produced and len(targets) == 1 and not (targets[0].__class__ in (ast.Tuple, ast.List) and targets[0].elts
                                                     and targets[0].elts[0].__class__ is not ast.Name):
            # (``*rest, h = f(x)``, ``(a, b), c = f(x)``: the first name is not the call's first
            # element, so the names are not the call's outputs in order: an opaque step below)
            node = self.nodes[-1]
            node.outs = tuple(outs)
            node.defs = _keys(outs)
            return frontier
        if len(targets) > 1 and isinstance(value, Ref) and all(isinstance(t, ast.Name) for t in targets):
            # y = x = self.norm1(x): each name is a copy of the one value
            for out in outs:
                _, frontier = self._new(ctx, frontier, kind="copy", args=(value,), outs=(out,), defs=_keys((out,)),
                                        uses=_keys((value,)), span=span(value_expr))
            return frontier
        kind = "copy" if isinstance(value, Ref) and len(outs) == 1 else "other"
        _, frontier = self._new(ctx, frontier, kind=kind, args=(value,), outs=tuple(outs), defs=_keys(outs),
                                uses=_keys((value,)), span=span(value_expr))
        return frontier

    def _returns_tuple(self, func, n: int) -> bool:
        key = (id(func), n)
        known = self._tuple_returns.get(key)
        if known is None:
            known = self._tuple_returns[key] = _returns_tuple(func, n)
        return known

    def _split_parts(self, expr: ast.expr, ctx: _Ctx) -> tuple | None:
        """What an assignment's value says of split parts (see _Ctx.split_parts): ``s.split(n,
        dim=d)`` (or ``torch.split``) of a name -> (s, d, False); a list comprehension
        adding a term to each part of such a name -> (s, d, True); ``torch.cat`` of such a list
        along d -> (s, d, "cat").  None otherwise."""
        if isinstance(expr, ast.Call) and isinstance(expr.func, ast.Attribute) \
                and expr.func.attr == "split" and isinstance(expr.func.value, ast.Name):
            fqn = self.names.resolve(expr.func)
            if fqn == "torch.split":
                whole, rest = (expr.args[0], expr.args[1:]) if expr.args else (None, [])
            elif fqn is None or not fqn.startswith("torch"):
                whole, rest = expr.func.value, expr.args
            else:
                return None
            dims = [kw.value for kw in expr.keywords if kw.arg == "dim"] + list(rest[1:])
            if not (isinstance(whole, ast.Name) and len(rest) >= 1 and len(dims) == 1
                    and all(kw.arg == "dim" for kw in expr.keywords) and _int_literal(dims[0]) is not None):
                return None
            return whole.id, _int_literal(dims[0]), False
        if isinstance(expr, ast.ListComp) and len(expr.generators) == 1:
            gen = expr.generators[0]
            if gen.ifs or gen.is_async or not (isinstance(expr.elt, ast.BinOp) and isinstance(expr.elt.op, ast.Add)):
                return None
            names = [gen.target] if isinstance(gen.target, ast.Name) else list(getattr(gen.target, "elts", []))
            sources = [gen.iter] if isinstance(gen.target, ast.Name) else (
                list(gen.iter.args) if isinstance(gen.iter, ast.Call) and isinstance(gen.iter.func, ast.Name)
                and gen.iter.func.id == "zip" and not gen.iter.keywords else [])
            if len(names) != len(sources) or not all(isinstance(n, ast.Name) for n in names):
                return None
            for name, source in zip(names, sources):
                held = ctx.split_parts.get(source.id) if isinstance(source, ast.Name) else None
                if held is None or held[2] is not False:
                    continue
                operands = (expr.elt.left, expr.elt.right)
                if sum(isinstance(o, ast.Name) and o.id == name.id for o in operands) == 1:
                    return held[0], held[1], True
            return None
        if isinstance(expr, ast.Call) and self.names.resolve(expr.func) == "torch.cat" and expr.args \
                and isinstance(expr.args[0], ast.Name) and len(expr.args) <= 2:
            held = ctx.split_parts.get(expr.args[0].id)
            dims = [kw.value for kw in expr.keywords if kw.arg == "dim"] + list(expr.args[1:])
            dim = _int_literal(dims[0]) if len(dims) == 1 else 0 if not dims else None
            if held is not None and held[2] is True and dim == held[1] \
                    and all(kw.arg == "dim" for kw in expr.keywords):
                return held[0], held[1], "cat"
        return None

    def _return_parts(self, stmt: ast.Return, frontier: list, ctx: _Ctx) -> list:
        """``return a, b`` of a helper whose call is unpacked into as many names: each element
        copied to its part; any other return defines the parts from what it returns."""
        parts = ctx.ret_parts
        ctx.returned = stmt.value
        elements = None
        if isinstance(stmt.value, (ast.Tuple, ast.List)) and len(stmt.value.elts) == len(parts) \
                and not any(isinstance(e, ast.Starred) for e in stmt.value.elts):
            elements = stmt.value.elts
        elif stmt.value.__class__ is _AST_CALL and stmt.value.func.__class__ is _AST_NAME \
                and stmt.value.func.id == "map" and "map" not in self.names.functions \
                and "map" not in ctx.params and "map" not in ctx.exprs and self.names.resolve(stmt.value.func) is None:
            # return map(lambda t: rearrange(t, ...), (q, k, v)): each element mapped to its part
            elements = _mapped_elements(stmt.value)
            if elements is not None and len(elements) != len(parts):
                elements = None
        if elements is not None:
            for element, part in zip(elements, parts):
                value, frontier = self._value(element, frontier, ctx)
                _, frontier = self._new(ctx, frontier, kind="copy", args=(value,), outs=(part,),
                                        uses=_keys((value,)), defs=frozenset({part.key}), span=span(element))
        else:
            value, frontier = self._value(stmt.value, frontier, ctx)
            _, frontier = self._new(ctx, frontier, kind="other", args=(value,), outs=parts, uses=_keys((value,)),
                                    defs=_keys(parts), span=span(stmt))
        ctx.returned = None
        return frontier

    def _guard_text(self, test: ast.expr, ctx: _Ctx) -> str:
        # (a test the setting dispatch wrote is in no source line: its text is kept aside)
        kept = self._guard_texts.get(id(test)) if self._guard_texts else None
        text = kept[1] if kept is not None and kept[0] is test else self._text(test)
        if ctx.instance == 0:
            return text
        settings = ctx.settings
        if settings.__class__ is tuple:  # (worked out once per inlined helper, when an if asks)
            settings = ctx.settings = _self_reads(*settings)
        if settings:
            read = _settings_read(test, settings, ctx.definition)
            if read is not None:
                # ``if conv_d is None:`` of a helper called with ``self.conv_d``: the test the
                # module's settings decide, kept apart from the caller's own tests by the instance
                text = ast.unparse(read)
        return f"{text}@{ctx.instance}"

    def _if(self, stmt: ast.If, frontier: list, ctx: _Ctx) -> list:
        _, frontier = self._value(stmt.test, frontier, ctx) if _contains_call(stmt.test) else (None, frontier)
        guard = self._guard_text(stmt.test, ctx)
        branch, _ = self._new(ctx, frontier, kind="branch", guard=guard, uses=self._uses_of(stmt.test, ctx),
                              span=span(stmt.test))
        test = stmt.test
        keyed = None
        if test.__class__ is ast.Compare and test.left.__class__ is ast.Attribute and self.cls is not None:
            # ``if self.kind == "swiglu": h = self.act(g) * u`` with ``self.kind = kind`` and
            # ``self.act`` built under ``if kind == "gelu"`` in __init__: that layer is not what
            # the branch calls (_keyed_ctors)
            keyed = self._key_test(test)
        known = self._literal_flag(stmt.test)
        if known is None and keyed is not None and ctx.instance == 0:
            # ``if self.attention_type == "mul":`` where every construction in the file passes
            # one literal key: the way that key goes
            fixed = self._fixed_literal(test.left.attr)
            if fixed.__class__ is str:
                if fixed == keyed[1]:
                    # (the arm calls what __init__ built under that key: _keyed_ctors)
                    saved = ctx.keys
                    ctx.keys = saved + (keyed,)
                    try:
                        return self._scoped(stmt.body, [(branch.id, (guard, True))], ctx, (span(stmt), 0))
                    finally:
                        ctx.keys = saved
                known = False
        if known is None and ctx.flags:
            known = _param_flag(stmt.test, ctx.flags)
        if known is None and ctx.site is not None and test.__class__ is ast.Compare:
            known = self._none_tested(test, ctx)
            if known is not None and _updates_in_place(stmt.body if known else stmt.orelse):
                # the taken way updates a local in place (``x += extra`` on the helper's scores):
                # no decision, both ways read as before -- the fixer reads such a helper's adds
                # off the call's arguments (fix23), and an in-place add there is no add step
                known = None
        if known is not None:  # the one way a flag the file (or the helper's call) fixes goes
            if known:
                return self._scoped(stmt.body, [(branch.id, (guard, True))], ctx, (span(stmt), 0))
            if stmt.orelse:
                return self._scoped(stmt.orelse, [(branch.id, (guard, False))], ctx, (span(stmt), 1))
            return [(branch.id, (guard, False))]
        # ``if self.use_swiglu:`` where __init__ built a layer under the same setting: each arm
        # calls only what that setting's branch of __init__ bound (setting_branches)
        setting = forward_setting(test, self) if self.cls is not None and ctx.instance == 0 \
            and self.cls.setting_gates is not NO_GATES else None
        outer = ctx.keys
        if setting is not None:
            ctx.keys = outer + (setting,)
        before = dict(ctx.params) if ctx.params else None
        saved_literals = ctx.literal_keys
        if test.__class__ is ast.Compare and test.ops[0].__class__ is ast.Eq:
            literal = _literal_key(test)
            if literal is not None:  # ``if name == "sgd":``: in the branch, the name holds that string
                ctx.literal_keys = (*saved_literals, literal)
        held = _class_test(test, self.names) if keyed is None and test.__class__ is ast.Compare \
            and test.left.__class__ is ast.Attribute and test.comparators[0].__class__ is ast.Attribute else None
        if held is not None:
            # ``if self.activation == torch.nn.GELU:``: in the branch, the attribute holds that class
            saved = ctx.classes
            ctx.classes = {**(saved or {}), held[0]: held[1]}
            try:
                then = self._scoped(stmt.body, [(branch.id, (guard, True))], ctx, (span(stmt), 0))
            finally:
                ctx.classes = saved
        elif keyed is None:
            then = self._scoped(stmt.body, [(branch.id, (guard, True))], ctx, (span(stmt), 0))
        else:
            saved = ctx.keys
            ctx.keys = saved + (keyed,)
            try:
                then = self._scoped(stmt.body, [(branch.id, (guard, True))], ctx, (span(stmt), 0))
            finally:
                ctx.keys = saved
        ctx.literal_keys = saved_literals
        ctx.stmt = span(stmt)
        after_then = None
        if before is not None and len(ctx.params) != len(before):
            # the branch assigned a parameter of an inlined helper: the other branch still
            # reads the caller's value (SenseVoice's `if mask is not None: scores = ...fill...`)
            after_then, ctx.params = ctx.params, dict(before)
        if setting is not None:
            ctx.keys = outer + ((setting[0], not setting[1]),)
        if stmt.orelse:
            other = self._scoped(stmt.orelse, [(branch.id, (guard, False))], ctx, (span(stmt), 1))
        else:
            other = [(branch.id, (guard, False))]
        ctx.keys = outer
        if before is not None and (after_then is not None or len(ctx.params) != len(before)):
            then, other = self._join_params(stmt, before, before if after_then is None else after_then,
                                            then, other, ctx)
        return then + other

    def _none_tested(self, test: ast.Compare, ctx: _Ctx) -> bool | None:
        """The value of ``if p is not None:`` (or ``is None``) in an inlined helper whose call
        hands parameter ``p``, never rebound there, a value that is never None
        (structure/never_none.py; earthformer's ``masked_softmax(s, mask=F.pad(...))``); None
        when the test has another shape or the value may be None."""
        tested = never_none.none_test(test)
        if tested is None:
            return None
        name, is_not = tested
        params, call, caller = ctx.site
        helper = ctx.definition
        if name not in params or helper is None:
            return None
        expr = never_none.passed_argument(params, call, name)
        if expr is None:
            return None
        if expr.__class__ is ast.Name and not never_none.may_hold_value(caller.exprs.get(expr.id)):
            # (the name's binding the caller last read, when it may be None or is not one plain
            # assignment: no walk of the caller's other bindings can make it never None)
            return None
        if not never_none.never_none(expr, caller.definition, self.names.resolve, PlainFunctions(self.names)) \
                or never_none.binds_in_body(helper, name):
            return None
        return is_not

    def _join_params(self, stmt: ast.If, before: dict, after_then: dict, then: list, other: list,
                     ctx: _Ctx) -> tuple[list, list]:
        """After an ``if`` one of whose branches assigned a parameter of an inlined helper (a new
        local ``name@instance``) and the other did not: the way that did not assign it copies the
        caller's value into that local, so that code after the join reads one key on both ways.
        A branch that does not reach the join (it returned) leaves the parameter as it was."""
        after_other = ctx.params
        params = dict(before)
        for name, value in before.items():
            in_then, in_other = name in after_then, name in after_other
            if in_then and in_other:
                continue
            if not in_then and not in_other:
                params.pop(name)
                continue
            assigned, keeping = (then, other) if not in_then else (other, then)
            if not assigned:
                continue  # only the way that kept the parameter goes on
            params.pop(name)
            if keeping:
                local = Ref(self._key(name, ctx), name)
                _, copied = self._new(ctx, keeping, kind="copy", args=(value,), outs=(local,),
                                      uses=_keys((value,)), defs=frozenset({local.key}), span=span(stmt))
                if keeping is then:
                    then = copied
                else:
                    other = copied
        ctx.params = params
        return then, other

    def _loop(self, stmt, frontier: list, ctx: _Ctx) -> list:
        if isinstance(stmt, ast.While):
            if _contains_call(stmt.test):
                _, frontier = self._value(stmt.test, frontier, ctx)
            head, _ = self._new(ctx, frontier, kind="branch", uses=self._uses_of(stmt.test, ctx), span=span(stmt.test))
            body_frontier = [(head.id, None)]
        else:
            iterable, frontier = self._value(stmt.iter, frontier, ctx)
            self._alias_loop_target(stmt, ctx)
            targets = self._target_values(stmt.target, ctx)
            if stmt.target.__class__ is ast.Tuple and len(stmt.target.elts) == 2 \
                    and stmt.target.elts[1].__class__ is _AST_NAME and stmt.iter.__class__ is _AST_CALL:
                # for name, klass in inspect.getmembers(torch.optim): klass is one of its classes
                choices = self._members_choices(stmt.iter)
                if choices:
                    ctx.choice_alias[stmt.target.elts[1].id] = choices
            head, _ = self._new(ctx, frontier, kind="other", outs=tuple(targets), defs=_keys(targets),
                                uses=_keys((iterable,)), span=span(stmt.target))
            body_frontier = [(head.id, None)]
        ctx.loops.append(([], []))
        end = self._scoped(stmt.body, body_frontier, ctx, (span(stmt), 0))
        breaks, continues = ctx.loops.pop()
        ctx.stmt = span(stmt)
        after = end + continues + [(head.id, None)]
        if stmt.orelse:
            after = self._scoped(stmt.orelse, after, ctx, (span(stmt), 1))
        return after + breaks

    def _alias_loop_target(self, stmt, ctx: _Ctx) -> None:
        """``for layer in self.layers`` / ``enumerate(self.layers)`` / ``zip(self.convs,
        self.norms)`` (parallel lists, one element of each per iteration): layer calls resolve."""
        it, target = stmt.iter, stmt.target
        if isinstance(it, ast.Call) and isinstance(it.func, ast.Name) and it.func.id == "enumerate" and it.args:
            it = it.args[0]
            if isinstance(target, ast.Tuple) and len(target.elts) == 2:
                target = target.elts[1]
        if (isinstance(it, ast.Call) and isinstance(it.func, ast.Name) and it.func.id == "zip" and not it.keywords
                and isinstance(target, ast.Tuple) and len(target.elts) == len(it.args)):
            pairs = list(zip(target.elts, it.args))
        else:
            pairs = [(target, it)]
        if it.__class__ in (ast.List, ast.Tuple) and it.elts:
            self._alias_literal_rows(target, it.elts, ctx)
            return
        for name, lst in pairs:
            if isinstance(lst, ast.Subscript) and isinstance(lst.slice, ast.Slice):
                lst = lst.value  # self.lins[:-1]: a slice of the list holds its elements
            if (name.__class__ is ast.Tuple and lst.__class__ is ast.Attribute and lst.value.__class__ is ast.Name
                    and lst.value.id == "self" and self.cls is not None and lst.attr + "[][0]" in self.cls.bindings):
                self._row_aliases(name, lst.attr, ctx)
                continue
            if (
                isinstance(name, ast.Name)
                and isinstance(lst, ast.Attribute)
                and isinstance(lst.value, ast.Name)
                and lst.value.id == "self"
                and self.cls is not None
                and lst.attr + "[]" in self.cls.bindings
            ):
                ctx.layer_alias[name.id] = f"self.{lst.attr}[]"

    def _row_aliases(self, target: ast.Tuple, attr: str, ctx: _Ctx) -> None:
        """``for conv, bn in self.blocks``, each member of ``self.blocks`` a container written
        out with one layer per name (bindings._record_row): each name calls the layer at its
        position, when every member of the list is such a container of exactly that width and
        each position holds one kind of layer in every member."""
        bindings = self.cls.bindings
        rows = bindings.get(attr + "[]", ())
        width = len(target.elts)
        if not rows or any(c.fqn != "torch.nn.ModuleList" for c in rows) \
                or attr + f"[][{width}]" in bindings:
            return
        for index, name in enumerate(target.elts):
            key = f"{attr}[][{index}]"
            ctors = bindings.get(key, ())
            if name.__class__ is not ast.Name or len(ctors) != len(rows) or len({c.fqn for c in ctors}) != 1:
                return
        for index, name in enumerate(target.elts):
            ctx.layer_alias[name.id] = f"self.{attr}[][{index}]"

    def _alias_literal_rows(self, target: ast.expr, rows: list, ctx: _Ctx) -> None:
        """``for conv, bn in [(self.conv1, self.bn1), (self.conv2, self.bn2)]``: a literal list
        whose rows are layers of ``self`` (one per target name, or a row of one for a single
        name).  A name whose layers are all built alike (the same constructors, bindings.Ctor)
        calls a layer of that kind on every iteration: it resolves to the first row's, as a
        layer alias; a name whose rows differ in kind resolves to none."""
        cls = self.cls
        if cls is None:
            return
        names = [target] if target.__class__ is ast.Name else (
            target.elts if target.__class__ in (ast.Tuple, ast.List) else [])
        if not names or any(n.__class__ is not ast.Name for n in names):
            return
        width = len(names)
        columns: list[list] = [[] for _ in names]
        for row in rows:
            parts = [row] if width == 1 and target.__class__ is ast.Name else (
                row.elts if row.__class__ in (ast.Tuple, ast.List) and len(row.elts) == width else None)
            if parts is None:
                return
            for column, part in zip(columns, parts):
                column.append(part)
        for name, column in zip(names, columns):
            kinds = set()
            for part in column:
                if not (part.__class__ is ast.Attribute and part.value.__class__ is ast.Name
                        and part.value.id == "self" and part.attr in cls.bindings):
                    kinds = None
                    break
                kinds.add(tuple(sorted((c.fqn, c.table, c.conditional, c.unlike, c.function, c.via)
                                       for c in cls.bindings[part.attr])))
            if kinds is not None and len(kinds) == 1:
                ctx.layer_alias[name.id] = "self." + column[0].attr

    def _try(self, stmt, frontier: list, ctx: _Ctx) -> list:
        start = list(frontier)
        body_end = self._scoped(stmt.body, frontier, ctx, (span(stmt), 0))
        ends = []
        for index, handler in enumerate(stmt.handlers, start=1):
            ctx.stmt = span(handler)
            ends += self._scoped(handler.body, start + body_end, ctx, (span(stmt), index))
        if stmt.orelse:
            body_end = self._scoped(stmt.orelse, body_end, ctx, (span(stmt), len(stmt.handlers) + 1))
        ends += body_end
        if stmt.finalbody:
            ends = self._scoped(stmt.finalbody, ends, ctx, (span(stmt), -1))
        return ends

    def _match(self, stmt: ast.Match, frontier: list, ctx: _Ctx) -> list:
        subject, frontier = self._value(stmt.subject, frontier, ctx)
        guard_base = self._text(stmt.subject)
        head, _ = self._new(ctx, frontier, kind="branch", uses=_keys((subject,)), span=span(stmt.subject))
        ends = []
        for index, case in enumerate(stmt.cases):
            ctx.stmt = span(case.pattern)
            guard = (f"{guard_base} ~ {self._text(case.pattern)}", True)
            ends += self._scoped(case.body, [(head.id, guard)], ctx, (span(stmt), index))
        if not any(isinstance(c.pattern, ast.MatchAs) and c.pattern.pattern is None for c in stmt.cases):
            ends.append((head.id, None))
        return ends


def _bool_params(target, params: list, args, kwargs, call, passed: set | None) -> dict | None:
    """The parameters of helper ``target`` that its call fixes to a bool literal: passed as
    ``True``/``False`` (positionally or by keyword) or left at a bool default, and never rebound
    in the helper.  None when there are none (the common case: no walk of the helper).
    ``passed``: the parameters the call passes (None past a starred argument)."""
    if not isinstance(call, ast.Call):
        return None
    fixed = {}
    for name, value in zip(params, args):
        if value.__class__ is Const and value.value.__class__ is bool:
            fixed[name] = value.value
    for key, value in kwargs:
        if value.__class__ is Const and value.value.__class__ is bool:
            fixed[key] = value.value
    fargs = target.args
    if passed is not None and all(k.arg is not None for k in call.keywords):
        every = fargs.posonlyargs + fargs.args
        for arg, default in zip(every[len(every) - len(fargs.defaults):], fargs.defaults):
            if arg.arg not in passed and default.__class__ is ast.Constant and default.value.__class__ is bool:
                fixed[arg.arg] = default.value
        for arg, default in zip(fargs.kwonlyargs, fargs.kw_defaults):
            if arg.arg not in passed and default is not None and default.__class__ is ast.Constant \
                    and default.value.__class__ is bool:
                fixed[arg.arg] = default.value
    if not fixed:
        return None
    for node in ast_walk(target):
        if node.__class__ is ast.Name and node.id in fixed and node.ctx.__class__ is not ast.Load:
            fixed.pop(node.id)
            if not fixed:
                return None
    return fixed


def _applied_when_given(helper: ast.AST, param: str) -> bool:
    """Is ``param`` used in ``helper`` only as ``if param is not None: y = param(y)`` (one
    statement, no ``else``, the parameter never stored)?  Then handing None computes what handing
    an identity layer does; any other use (an ``else`` that does something else, a return, a
    second statement under the test) makes None differ from an eval-mode Dropout (review36)."""
    guard = None
    uses = 0
    for node in ast_walk(helper):
        if node.__class__ is ast.Name and node.id == param:
            if node.ctx.__class__ is not ast.Load:
                return False
            uses += 1
        elif node.__class__ is ast.If and guard is None:
            test = node.test
            if test.__class__ is ast.Compare and test.left.__class__ is ast.Name and test.left.id == param \
                    and len(test.ops) == 1 and test.ops[0].__class__ is ast.IsNot \
                    and test.comparators[0].__class__ is ast.Constant and test.comparators[0].value is None:
                guard = node
    if guard is None or guard.orelse or len(guard.body) != 1 or uses != 2:
        return False
    stmt = guard.body[0]
    if stmt.__class__ is not ast.Assign or len(stmt.targets) != 1 or stmt.targets[0].__class__ is not ast.Name:
        return False
    call = stmt.value
    return call.__class__ is ast.Call and call.func.__class__ is ast.Name and call.func.id == param \
        and not call.keywords and len(call.args) == 1 and call.args[0].__class__ is ast.Name \
        and call.args[0].id == stmt.targets[0].id


def _free_assigned(func) -> set:
    """The names ``func`` binds anywhere in its body (a closure's free name it rebinds is its own)."""
    return {node.id for node in ast_walk(func) if node.__class__ is _AST_NAME and node.ctx.__class__ is not _LOAD}


def _self_reads(params: list, call) -> dict | None:
    """The parameters of a helper that its call (from the root function) passes a ``self.<attr>``
    read: the name -> that expression; None when there are none."""
    if call.__class__ is not ast.Call:
        return None
    found = None
    for name, expr in list(zip(params, call.args)) + [(k.arg, k.value) for k in call.keywords]:
        if expr.__class__ is ast.Attribute and expr.value.__class__ is ast.Name and expr.value.id == "self" \
                and name is not None:
            if found is None:
                found = {}
            found[name] = expr
    return found


def _settings_read(test: ast.expr, settings: dict, helper) -> ast.expr | None:
    """``test`` with each parameter of ``settings`` replaced by the ``self.<attr>`` read its call
    passed, when the test reads nothing else but constants (comparisons, ``not``, ``and``/``or``)
    and the helper never rebinds those parameters; None otherwise."""
    used = set()
    for node in ast_walk(test):
        if node.__class__ is ast.Name:
            if node.id not in settings:
                return None
            used.add(node.id)
        elif not isinstance(node, (ast.Compare, ast.BoolOp, ast.UnaryOp, ast.Constant, ast.expr_context,
                                   ast.cmpop, ast.boolop, ast.unaryop)):
            return None
    if not used or helper is None:
        return None
    for node in ast_walk(helper):
        if node.__class__ is ast.Name and node.id in used and node.ctx.__class__ is not ast.Load:
            return None
    read = copy.deepcopy(test)
    for name in used:
        read = _Substitute(name, settings[name]).visit(read)
    return read



def _updates_in_place(body: list) -> bool:
    """Does a statement of ``body`` update a local by an augmented assignment (``x += extra``)?"""
    for stmt in body:
        for node in walk(stmt):
            if node.__class__ is ast.AugAssign and node.target.__class__ is _AST_NAME:
                return True
    return False

def _param_flag(test: ast.expr, flags: dict) -> bool | None:
    """The value of an ``if`` test that is (``not``) a parameter the helper's call fixes."""
    negate = False
    if test.__class__ is ast.UnaryOp and test.op.__class__ is ast.Not:
        negate, test = True, test.operand
    if test.__class__ is not ast.Name:
        return None
    value = flags.get(test.id)
    return None if value is None else value != negate


def _stacked_index(index: ast.expr) -> int | None:
    """k of ``h[..., k, :]``: the k-th entry of the second-to-last axis, all of the last."""
    if not (isinstance(index, ast.Tuple) and len(index.elts) == 3 and isinstance(index.elts[0], ast.Constant)
            and index.elts[0].value is Ellipsis and isinstance(index.elts[2], ast.Slice)):
        return None
    whole = index.elts[2]
    if whole.lower is not None or whole.upper is not None or whole.step is not None:
        return None
    return _int_literal(index.elts[1])


def _asserted_rank(test: ast.expr) -> tuple[str, int] | None:
    """(name, rank) when ``test`` states a name's rank: ``x.dim() == 3``, ``x.ndim == 3``,
    ``x.ndimension() == 3`` or ``len(x.shape) == 3`` (either side of the ``==``)."""
    if not (isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], ast.Eq)):
        return None
    for side, other in ((test.left, test.comparators[0]), (test.comparators[0], test.left)):
        rank = _int_literal(other)
        if rank is None or rank < 1:
            continue
        if isinstance(side, ast.Call) and not side.args and not side.keywords:
            if isinstance(side.func, ast.Attribute) and side.func.attr in ("dim", "ndimension") \
                    and isinstance(side.func.value, ast.Name):
                return side.func.value.id, rank
            continue
        if isinstance(side, ast.Attribute) and side.attr == "ndim" and isinstance(side.value, ast.Name):
            return side.value.id, rank
    if isinstance(test.left, ast.Call) and isinstance(test.left.func, ast.Name) and test.left.func.id == "len" \
            and len(test.left.args) == 1 and not test.left.keywords:
        arg = test.left.args[0]
        rank = _int_literal(test.comparators[0])
        if rank is not None and rank >= 1 and isinstance(arg, ast.Attribute) and arg.attr == "shape" \
                and isinstance(arg.value, ast.Name):
            return arg.value.id, rank
    return None


def _dotted(node: ast.expr) -> bool:
    """Is ``node`` a name or an attribute chain of one (``torch.float32``)?"""
    while isinstance(node, ast.Attribute):
        node = node.value
    return isinstance(node, ast.Name)


def _function_wrappers(names: ModuleNames) -> dict:
    """Same-file module class -> the torch function (one the canon knows) that calling it
    computes of its arguments (formulas.function_module); empty for most files."""
    out = {}
    for name, cls in names.classes.items():
        fqn = function_module(cls, names)
        if fqn is not None and TABLE.function(fqn) is not None:
            out[name] = fqn
    return out


def _wrapped_function(layer: str, cls: ClassInfo, wrappers: dict, call: ast.Call) -> str | None:
    """The function a call of ``layer`` computes when the layer is bound once, to such a
    wrapper class, and the call passes its arguments plainly (positional, none starred)."""
    ctors = cls.bindings.get(_attr(layer), ())
    if len(ctors) != 1 or ctors[0].table or ctors[0].fqn not in wrappers or call.keywords \
            or any(isinstance(a, ast.Starred) for a in call.args):
        return None
    return wrappers[ctors[0].fqn]


_VIEW_BACK = frozenset({"view", "reshape", "view_as", "reshape_as"})


def _layer_annotation(note: ast.expr, names: ModuleNames) -> str | None:
    """The torch layer class an annotation names, also as ``X | None``, ``Optional[X]`` or
    ``Union[X, None]`` (``nn.Dropout``: ``torch.nn.Dropout``); None for anything else, and
    for ``nn.Module`` itself: the base of every layer types nothing (``dropout:
    Optional[nn.Module] = None`` leaves the parameter to what the callers pass in)."""
    if note.__class__ is ast.BinOp and note.op.__class__ is ast.BitOr:
        sides = [s for s in (note.left, note.right) if not (s.__class__ is ast.Constant and s.value is None)]
        if len(sides) != 1:
            return None
        note = sides[0]
    elif note.__class__ is ast.Subscript:
        wrapper = names.resolve(note.value)
        inner = note.slice.elts if note.slice.__class__ is ast.Tuple else [note.slice]
        inner = [s for s in inner if not (s.__class__ is ast.Constant and s.value is None)]
        if wrapper not in ("typing.Optional", "typing.Union") or len(inner) != 1:
            return None
        note = inner[0]
    if note.__class__ is not ast.Attribute:
        return None
    fqn = names.resolve(note)
    if fqn is None or not fqn.startswith("torch.nn.") or not fqn.rsplit(".", 1)[-1][:1].isupper() \
            or fqn in _ANY_LAYER:
        return None
    return fqn


# annotations naming the base class of every layer: no layer kind
_ANY_LAYER = frozenset({"torch.nn.Module", "torch.nn.modules.module.Module"})


def _last_of_two(dim) -> bool:
    """Is ``dim`` the last axis of a matrix: the literal 1 or -1?"""
    if dim.__class__ is ast.UnaryOp and dim.op.__class__ is ast.USub:
        return dim.operand.__class__ is ast.Constant and dim.operand.value == 1 and type(dim.operand.value) is int
    return dim.__class__ is ast.Constant and dim.value in (1, -1) and type(dim.value) is int


def _ctor_dim(ctor):
    """The ``dim`` an ``nn.Softmax(...)`` constructor is given (None without one)."""
    if ctor.args:
        return ctor.args[0]
    return next((value for name, value in ctor.kwargs if name == "dim"), None)


def _flattened_rows(flat: ast.expr, name: str) -> ast.expr | None:
    """k of ``name.view(-1, name.size(k))`` (or ``reshape``, ``name.shape[k]``): the rows of the
    axis k of ``name`` as a matrix (an int literal k, or -1)."""
    if not (flat.__class__ is ast.Call and flat.func.__class__ is ast.Attribute and flat.func.attr in ("view", "reshape")
            and flat.func.value.__class__ is ast.Name and flat.func.value.id == name and not flat.keywords
            and len(flat.args) == 2):
        return None
    first, last = flat.args
    if not (first.__class__ is ast.UnaryOp and first.op.__class__ is ast.USub and first.operand.__class__ is ast.Constant
            and first.operand.value == 1):
        return None
    if last.__class__ is ast.Call and last.func.__class__ is ast.Attribute and last.func.attr == "size" \
            and len(last.args) == 1 and not last.keywords:
        holder, k = last.func.value, last.args[0]
    elif last.__class__ is ast.Subscript and last.value.__class__ is ast.Attribute and last.value.attr == "shape":
        holder, k = last.value.value, last.slice
    else:
        return None
    if not (holder.__class__ is ast.Name and holder.id == name):
        return None
    if k.__class__ is ast.Constant and type(k.value) is int and k.value >= 0:
        return ast.Constant(value=k.value)
    if k.__class__ is ast.UnaryOp and k.op.__class__ is ast.USub and k.operand.__class__ is ast.Constant \
            and k.operand.value == 1:
        return ast.Constant(value=-1)
    return None



def _row_module(expr: ast.expr) -> str | None:
    """``self.transformer.layers[i].mlp``: a module of one row of a layer list reached from
    ``self`` (attributes, one subscript of a row, then at least one attribute), as the path
    ``self.transformer.layers[].mlp``; None for anything else.  The subscript makes it a row of
    modules (a list of layers indexed per layer), so the trailing attribute is a module of that
    row, not a tensor of the class.  (Checked before any string is built: this runs for every
    assignment of an attribute.)"""
    node = expr.value
    rows = 0
    while True:
        kind = node.__class__
        if kind is ast.Attribute:
            node = node.value
        elif kind is ast.Subscript:
            rows += 1
            node = node.value
        else:
            break
    if rows != 1 or node.__class__ is not _AST_NAME or node.id != "self":
        return None
    path = ""
    node = expr
    while node.__class__ is not _AST_NAME:
        if node.__class__ is ast.Attribute:
            path = "." + node.attr + path
        else:
            path = "[]" + path
        node = node.value
    if path[0] == "[":  # self[i].mlp: not a layer list of the class
        return None
    return "self" + path


def _attr(layer: str) -> str:
    """The key of ``cls.bindings`` for a layer path: ``proj`` for ``self.proj``; a layer borrowed
    through a parameter (``attn.to_q``) is bound under its path."""
    return layer[len("self."):] if layer.startswith("self.") else layer


def _dim_default(func: ast.FunctionDef) -> ast.expr | None:
    """The default of a function's second parameter (None without one)."""
    params = func.args.posonlyargs + func.args.args
    index = 1 - (len(params) - len(func.args.defaults))
    return func.args.defaults[index] if 0 <= index < len(func.args.defaults) else None


def _number_expr(expr: ast.expr) -> bool:
    """An expression of numbers: literals, names, attributes (``config.head_dim``),
    arithmetic, ``int``/``float``/``math.*`` calls."""
    if isinstance(expr, ast.Constant):
        return isinstance(expr.value, (int, float)) and not isinstance(expr.value, bool)
    if isinstance(expr, (ast.Name, ast.Attribute)):
        return True
    if isinstance(expr, ast.BinOp):
        return _number_expr(expr.left) and _number_expr(expr.right)
    if isinstance(expr, ast.UnaryOp):
        return _number_expr(expr.operand)
    if isinstance(expr, ast.Call) and not expr.keywords:
        func = expr.func
        name = func.id if isinstance(func, ast.Name) else (
            f"{func.value.id}.{func.attr}" if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name)
            else "")
        if name in canonical.NUMBER_CALLS or name.startswith("math."):
            return all(_number_expr(a) for a in expr.args)
    return False


def _own_returns(func) -> list:
    """The ``return`` statements of ``func`` itself (not of a nested function, class or lambda)."""
    returns, todo = [], list(func.body)
    while todo:
        node = todo.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
            continue
        if node.__class__ is ast.Return:
            returns.append(node)
        todo.extend(ast.iter_child_nodes(node))
    return returns


def _returns_tuple(func, n: int) -> bool:
    """Does some ``return`` of ``func`` itself (not of a nested function) return a tuple of
    ``n`` elements, none starred?"""
    todo = list(func.body)
    while todo:
        node = todo.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
            continue
        if isinstance(node, ast.Return) and isinstance(node.value, (ast.Tuple, ast.List)) \
                and len(node.value.elts) == n and not any(isinstance(e, ast.Starred) for e in node.value.elts):
            return True
        if node.__class__ is ast.Return and node.value.__class__ is _AST_CALL:
            mapped = _mapped_elements(node.value)
            if mapped is not None and len(mapped) == n:
                return True
        todo.extend(ast.iter_child_nodes(node))
    return False


_NESTED_SCOPES = (ast.Lambda, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp, ast.NamedExpr)


def _mapped_elements(expr: ast.Call) -> list | None:
    """``map(lambda t: body, (a, b, c))``: the expressions ``body`` with ``t`` replaced by each
    element in turn, what the map yields when unpacked (a helper's ``return map(lambda t:
    rearrange(t, ...), (q, k, v))``); None for any other call.  Whether ``map`` is the builtin
    is the caller's to ask."""
    func = expr.func
    if func.__class__ is not _AST_NAME or func.id != "map" or len(expr.args) != 2 or expr.keywords:
        return None
    fn, seq = expr.args
    if fn.__class__ is not ast.Lambda or seq.__class__ not in (ast.Tuple, ast.List):
        return None
    a = fn.args
    if len(a.args) != 1 or a.posonlyargs or a.defaults or a.vararg or a.kwonlyargs or a.kwarg \
            or any(isinstance(e, ast.Starred) for e in seq.elts) \
            or any(n.__class__ in _NESTED_SCOPES for n in ast_walk(fn.body)):
        return None
    param = a.args[0].arg
    return [_Substitute(param, elt).visit(copy.deepcopy(fn.body)) for elt in seq.elts]


def _free_names(func, params) -> set[str]:
    """Names a nested function reads but neither takes nor assigns (it reads them from the
    enclosing function)."""
    loaded, stored = set(), set(params)
    for node in walk(func):
        if isinstance(node, ast.Name):
            (loaded if isinstance(node.ctx, ast.Load) else stored).add(node.id)
        elif isinstance(node, ast.arg):
            stored.add(node.arg)
    return loaded - stored - {"self"}


def _negates_in_place(stmt: ast.stmt) -> bool:
    """Is ``stmt`` a statement ``<...>.neg_()`` (the last of canon.swapped_halves_negated's
    three; tested first, inline in _body's loop, so that other statements cost no call)?"""
    call = stmt.value if stmt.__class__ is ast.Expr else None
    return call.__class__ is _CALL and call.func.__class__ is ast.Attribute and call.func.attr == "neg_"


def _storage_only(stmt: ast.Assign, after: list[ast.stmt]) -> bool:
    """Is ``stmt`` ``r = buf`` / ``r = buf[:, :n]`` / ``r = self.buf`` (one name bound to a
    call-free view), with the next three statements writing r's whole last axis with a
    rotate-half (canon.swapped_halves_negated)?  Then r's earlier contents are never read: the
    binding only lends r the buffer's storage (unsloth's ``RH_K = RH_Q[:, :n_kv_heads]``)."""
    if len(stmt.targets) != 1 or stmt.targets[0].__class__ is not ast.Name \
            or stmt.value.__class__ not in (ast.Name, ast.Attribute, ast.Subscript):
        return False
    found = canonical.swapped_halves_negated(after)
    return found is not None and found[0] == stmt.targets[0].id and not _contains_call(stmt.value)


def _keys(values) -> frozenset:
    # (a loop: no generator, nor a list comprehension's frame, per call; most calls pass one or
    # two values)
    keys = []
    for v in values:
        if v.__class__ is Ref:  # (Ref has no subclass)
            keys.append(v.key)
    return frozenset(keys)


def segment(lines: list[str], span: tuple[int, int, int, int]) -> str:
    """The source text at an ast span (line numbers 1-based, columns in UTF-8 bytes)."""
    l1, c1, l2, c2 = span
    if l1 == l2:
        line = lines[l1 - 1]
        if line.isascii():
            return line[c1:c2]
        return line.encode()[c1:c2].decode("utf-8", "replace")
    first = lines[l1 - 1].encode()[c1:].decode("utf-8", "replace")
    last = lines[l2 - 1].encode()[:c2].decode("utf-8", "replace")
    return "\n".join([first, *lines[l1:l2 - 1], last])


def _literal_key(test: ast.Compare) -> tuple[str, str] | None:
    """(name, literal) of ``name == "literal"`` (either side): in the branch it guards, the
    name holds that string; None for any other test."""
    if len(test.ops) != 1 or test.ops[0].__class__ is not ast.Eq:
        return None
    left, right = test.left, test.comparators[0]
    if right.__class__ is _AST_NAME:
        left, right = right, left
    if left.__class__ is _AST_NAME and right.__class__ is ast.Constant and right.value.__class__ is str:
        return left.id, right.value
    return None


def _class_test(test: ast.Compare, names) -> tuple[str, tuple] | None:
    """``self.<attr> == nn.GELU`` (or ``is``): (attr, (the torch.nn layer class's fqn, the
    expression naming it)) when the class is one of the canonical table's modules; None
    otherwise."""
    if len(test.ops) != 1 or test.ops[0].__class__ not in (ast.Eq, ast.Is):
        return None
    left, right = test.left, test.comparators[0]
    if left.__class__ is not ast.Attribute or not (left.value.__class__ is ast.Name and left.value.id == "self") \
            or right.__class__ is not ast.Attribute:
        return None
    fqn = names.resolve(right)
    if fqn is None or not fqn.startswith("torch.nn.") or TABLE.module(fqn) is None:
        return None
    return left.attr, (fqn, right)


def _contains_call(expr: ast.AST) -> bool:
    """Is there a call or an operator anywhere in ``expr`` (itself included)?  :func:`walk`'s
    loop written out, stopping at the first (no generator resumption per node; names and
    constants, which have no child, not looked into)."""
    stack = [expr]
    pop = stack.pop
    push = stack.append
    fields = _FIELDS
    while stack:
        node = pop()
        kind = node.__class__
        if kind is _AST_CALL or kind is _BINOP:
            return True
        if kind is _AST_NAME or kind is _CONSTANT:
            continue
        names = fields.get(kind)
        if names is None:
            names = _fields_of(kind)
        for name in names:
            value = getattr(node, name, None)
            if type(value) is list:
                stack += [v for v in value if isinstance(v, _AST)]
            elif isinstance(value, _AST):
                push(value)
    return False


# "... (j d) -> ... j d", also with kept axes before the ellipsis or instead of it ("b ... (r d)
# -> b ... r d", "b h n (j d) -> b h n j d"), read off the pattern with its spaces normalised
# (_einops_words): group 1 the kept axes, the same on both sides (a backreference), then the
# split group of the last axis
_SPLIT_LAST = re.compile(r"((?:(?:\w+|\.\.\.) )+)\( (\w+) (\w+) \) -> \1(\w+) (\w+)")


def _einops_words(pattern: str) -> str:
    """An einops pattern with one space between its words and around its parentheses."""
    return " ".join(pattern.replace("(", " ( ").replace(")", " ) ").replace("->", " -> ").split())


def _unbind_second_last(call: ast.Call) -> bool:
    """``y.unbind(dim=-2)`` / ``y.unbind(-2)``."""
    args = list(call.args) + [kw.value for kw in call.keywords if kw.arg == "dim"]
    if len(args) != 1 or any(kw.arg != "dim" for kw in call.keywords):
        return False
    dim = args[0]
    return isinstance(dim, ast.UnaryOp) and isinstance(dim.op, ast.USub) and isinstance(dim.operand, ast.Constant) \
        and dim.operand.value == 2


def _applied(call: ast.Call, applier) -> ast.Call | None:
    """``first(*others)`` for a call ``applier(first, *others)`` (bindings.Applier), its keywords
    less the applier's own; None when the call does not fit the applier (a starred first
    argument, another count of arguments, keywords a lambda would not take)."""
    if not call.args or isinstance(call.args[0], ast.Starred):
        return None
    rest = call.args[1:]
    if applier.arity is not None and (len(rest) != applier.arity or any(isinstance(a, ast.Starred) for a in rest)):
        return None
    keywords = call.keywords
    if keywords:
        if applier.own is None:
            return None
        keywords = [k for k in keywords if k.arg not in applier.own]
    return ast.copy_location(ast.Call(func=call.args[0], args=list(rest), keywords=keywords), call)


def _half_of_last(expr: ast.expr, name: str) -> bool:
    """``name.shape[-1] // 2`` or ``name.size(-1) // 2``: half the last axis of ``name``."""
    if not (isinstance(expr, ast.BinOp) and isinstance(expr.op, ast.FloorDiv) and _int_literal(expr.right) == 2):
        return False
    read = _size_read(expr.left, keyword=True)
    return read is not None and isinstance(read[0], ast.Name) and read[0].id == name and _int_literal(read[1]) == -1


def _local_half_of_last(size: ast.expr, name: str, exprs: dict) -> bool:
    """``n`` bound in the function to half the last axis of ``name``: ``n = name.shape[-1] // 2``,
    or ``n = shape[-1] // 2`` with ``shape = name.shape`` (``size()`` alike), the names read as
    last bound (as :meth:`FlowBuilder._is_half_of` reads ``d = x.size(-1)``).  A split of
    ``name`` at such an ``n`` unpacked into two names gives its halves."""
    if size.__class__ is not _NAME:
        return False
    held = exprs.get(size.id)
    if held.__class__ is not ast.BinOp or held.op.__class__ is not ast.FloorDiv or _int_literal(held.right) != 2:
        return False
    if _half_of_last(held, name):
        return True
    axis = held.left  # shape[-1] with shape = name.shape (or name.size())
    if axis.__class__ is not ast.Subscript or axis.value.__class__ is not _NAME or _int_literal(axis.slice) != -1:
        return False
    shape = exprs.get(axis.value.id)
    if shape.__class__ is ast.Call and shape.func.__class__ is ast.Attribute and shape.func.attr == "size" \
            and not shape.args and not shape.keywords:
        shape = shape.func
    elif shape.__class__ is not ast.Attribute or shape.attr != "shape":
        return False
    return shape.value.__class__ is _NAME and shape.value.id == name


def _after_first(index: ast.expr) -> bool:
    """``[k]`` or ``[k:]`` (``[k:j]``) with an int literal ``k >= 1``: elements after the first."""
    if index.__class__ is ast.Slice:
        if index.step is not None or index.lower is None:
            return False
        index = index.lower
    return index.__class__ is ast.Constant and type(index.value) is int and index.value >= 1


def _squared_name(expr: ast.expr) -> str | None:
    """The name ``x`` of ``x``, ``x ** 2``, ``x.pow(2)``, ``torch.pow(x, 2)``, ``x * x``,
    ``x.square()`` or ``torch.square(x)``, ``x`` maybe cast (``x.float()``, ``x.to(dtype)``):
    an element-wise function of ``x`` alone, of ``x``'s shape.  None for anything else."""
    for _ in range(4):
        kind = expr.__class__
        if kind is _NAME:
            return expr.id
        if kind is ast.BinOp:
            op = expr.op.__class__
            squared = (op is ast.Pow and expr.right.__class__ is ast.Constant and expr.right.value == 2) or (
                op is ast.Mult and ast.dump(expr.left) == ast.dump(expr.right))
            if not squared:
                return None
            expr = expr.left
        elif kind is _CALL and expr.func.__class__ is ast.Attribute and not expr.keywords:
            attr, args = expr.func.attr, expr.args
            owner = expr.func.value
            if owner.__class__ is _NAME and owner.id == "torch" and args and (
                    attr == "square" and len(args) == 1 or attr == "pow" and len(args) == 2
                    and args[1].__class__ is ast.Constant and args[1].value == 2):
                expr = args[0]
            elif (attr == "pow" and len(args) == 1 and args[0].__class__ is ast.Constant and args[0].value == 2) \
                    or (attr in ("square", "float", "double", "half", "bfloat16") and not args) \
                    or (attr == "to" and len(args) == 1):
                expr = owner
            else:
                return None
        else:
            return None
    return None


def _size_read(expr: ast.expr, keyword: bool = False) -> tuple[ast.expr, ast.expr] | None:
    """(tensor, axis) of ``x.shape[i]`` or ``x.size(i)`` (``keyword``: also ``x.size(dim=i)``);
    None for anything else."""
    if isinstance(expr, ast.Subscript) and isinstance(expr.value, ast.Attribute) and expr.value.attr == "shape":
        return expr.value.value, expr.slice
    if not (isinstance(expr, ast.Call) and isinstance(expr.func, ast.Attribute) and expr.func.attr == "size"):
        return None
    if len(expr.args) == 1 and not expr.keywords:
        return expr.func.value, expr.args[0]
    if keyword and not expr.args and len(expr.keywords) == 1 and expr.keywords[0].arg == "dim":
        return expr.func.value, expr.keywords[0].value
    return None


def _unpacked_rows(call: ast.Call, exprs: dict) -> ast.Call | None:
    """``x.view(-1, x.size(-1))`` when ``call`` is ``x.view(B * T, C)`` (or ``reshape``, or
    ``-1`` first) with ``B, T, C = x.shape`` (or ``x.size()``) unpacked into as many names as x
    has axes: C is x's last size and the product of all the others is every row, so the call
    flattens x to rows of its last axis, one step either way; None for anything else (a
    product missing an axis, or one of another tensor, is another view)."""
    base, (lead, last) = call.func.value, call.args
    if base.__class__ is not _NAME or call.keywords:
        return None
    if _int_literal(lead) != -1:
        if not _flattens_lead(call, exprs):  # (the product of every leading axis, C the last)
            return None
    else:
        held = exprs.get(last.id)
        if not (held.__class__ is tuple and held[:2] == ("dim_size", base.id) and held[2] == held[3] - 1):
            return None
    return _rows_view(call.func, base, call, lead, last)


def _sizes_not_unpacked(call: ast.Call, exprs: dict) -> bool:
    """May :func:`_free_lead` read ``x.view(N, X)``?  Not where N names a size unpacked from x's
    own shape (``batch, length, classes = x.shape``: :func:`_unpacked_rows` reads those views
    exactly, and ``x.view(batch, classes)`` is no flattening of x's leading axes), nor where X is
    a size unpacked from a tensor's shape other than x (``v`` of ``b, t, v = h.shape``: another
    tensor's axis, not x's last)."""
    if not exprs:
        return True
    base = call.func.value
    owner = base.id if base.__class__ is _AST_NAME else None
    lead, last = call.args
    for part, is_last in ((lead, False), (last, True)):
        for node in ast_walk(part):
            if node.__class__ is not _AST_NAME:
                continue
            held = exprs.get(node.id)
            if held.__class__ is tuple and held[:1] == ("dim_size",) and (held[1] == owner or is_last):
                return False
    return True


def _counted_lead(call: ast.Call) -> ast.Call:
    """``x.view(x.numel() // (X), X)`` for ``call`` ``x.view(-1, X)``: the same view (the row
    count -1 stands for), spelled with its count."""
    base, last = call.func.value, call.args[1]
    numel = ast.copy_location(ast.Call(func=ast.copy_location(ast.Attribute(value=base, attr="numel", ctx=ast.Load()),
                                                               call.args[0]), args=[], keywords=[]), call.args[0])
    count = ast.copy_location(ast.BinOp(left=numel, op=ast.FloorDiv(), right=last), call.args[0])
    return ast.copy_location(ast.Call(func=call.func, args=[count, last], keywords=[]), call)


def _free_lead(call: ast.Call) -> ast.Call | None:
    """``x.view(-1, C)`` when ``call`` is ``x.view(N, C)`` (or ``reshape``), N any size but -1 and
    C any size but -1: a 2-D view that succeeds has N * C elements, all of x's, so N is x's
    element count over C and ``-1`` names the same number -- one matrix either way, whatever N
    is computed from (``B * T`` of another tensor's shape); None for anything else (keywords,
    a starred size, ``-1`` already first or last)."""
    lead, last = call.args
    if call.keywords or lead.__class__ is ast.Starred or last.__class__ is ast.Starred \
            or _int_literal(lead) == -1 or _int_literal(last) == -1:
        return None
    minus_one = ast.copy_location(ast.UnaryOp(op=ast.USub(), operand=ast.copy_location(ast.Constant(1), lead)), lead)
    return ast.copy_location(ast.Call(func=call.func, args=[minus_one, last], keywords=[]), call)


def _linear_rows_view(call: ast.Call, base: ast.Name, width: ast.AST) -> ast.Call:
    """``base.view(-1, base.size(-1))`` placed at ``call`` (``base.view(A, width)`` or
    ``base.reshape(...)``), a Linear's output flattened to rows.  One spelling for both methods
    (the rows of a Linear's output are contiguous, so view and reshape give the same value):
    one ADP008 form reads them."""
    func = call.func if call.func.attr == "view" else ast.copy_location(
        ast.Attribute(value=base, attr="view", ctx=ast.Load()), call.func)
    return _rows_view(func, base, call, call.args[0], width)


def _rows_view(func: ast.expr, base: ast.expr, call: ast.Call, lead: ast.AST, last: ast.AST) -> ast.Call:
    """``func(-1, base.size(-1))``, placed at ``call`` (the ``-1`` at ``lead``, the size at
    ``last``): the flattening to rows of base's last axis that :func:`_unpacked_rows` and
    :func:`_flatten_to_rows` read a spelling as."""
    minus_one = ast.copy_location(ast.UnaryOp(op=ast.USub(), operand=ast.copy_location(ast.Constant(1), lead)), lead)
    size = ast.copy_location(ast.Attribute(value=base, attr="size", ctx=ast.Load()), last)
    axis = ast.copy_location(ast.UnaryOp(op=ast.USub(), operand=ast.copy_location(ast.Constant(1), last)), last)
    rows = ast.copy_location(ast.Call(func=size, args=[axis], keywords=[]), last)
    return ast.copy_location(ast.Call(func=func, args=[minus_one, rows], keywords=[]), call)


_FLOAT_COPIES = frozenset(("float", "double"))
_FLOAT_DTYPES = frozenset(("float", "float32", "float64", "double"))


def _float_copy_of(call: ast.Call) -> ast.expr | None:
    """x when ``call`` is a floating upcast of the name x: ``x.float()``, ``x.double()`` or
    ``x.to(torch.float32)`` / ``x.type(torch.float32)`` (also float64); None otherwise.  An
    upcast keeps every element's value, so the halves of the copy are x's own halves."""
    func = call.func
    if func.__class__ is not ast.Attribute or func.value.__class__ is not _NAME or call.keywords:
        return None
    if func.attr in _FLOAT_COPIES and not call.args:
        return func.value
    if func.attr in ("to", "type") and len(call.args) == 1:
        dtype = call.args[0]
        if dtype.__class__ is ast.Attribute and dtype.attr in _FLOAT_DTYPES \
                and dtype.value.__class__ is _NAME and dtype.value.id == "torch":
            return func.value
    return None


def _reshape_as_method(call: ast.Call) -> ast.Call:
    """``x.reshape(a, b)`` for ``torch.reshape(x, (a, b))`` (``x.reshape(shape)`` for a shape held
    in a name): the function and the method compute the same view, and the builder's readings of
    a view (its sizes, rows, heads folded into a softmax's rows) are written for the method.  The
    values keep their own places in the source."""
    x, shape = call.args
    sizes = list(shape.elts) if shape.__class__ in (ast.Tuple, ast.List) else [shape]
    func = ast.copy_location(ast.Attribute(value=x, attr="reshape", ctx=ast.Load()), call.func)
    return ast.copy_location(ast.Call(func=func, args=sizes, keywords=[]), call)


def _flatten_to_rows(call: ast.Call) -> ast.Call | None:
    """``x.reshape(-1, x.size(-1))`` when ``call`` is ``x.flatten(0, -2)`` (or ``flatten(end_dim=-2)``,
    ``flatten(start_dim=0, end_dim=-2)``), ``x`` a name: every axis but the last merged into
    one, the rows of x's last axis, whatever x's rank (of 2-D x, x itself); None for any other
    flattening (``flatten(0, 1)`` merges the last axis into the rows where x has two axes)."""
    if len(call.args) > 2 or any(a.__class__ is ast.Starred for a in call.args):
        return None
    dims = {}
    for name, value in zip(("start_dim", "end_dim"), call.args):
        dims[name] = _int_literal(value)
    for kw in call.keywords:
        if kw.arg not in ("start_dim", "end_dim") or kw.arg in dims:
            return None
        dims[kw.arg] = _int_literal(kw.value)
    if dims.get("start_dim", 0) != 0 or dims.get("end_dim", -1) != -2:
        return None
    base = call.func.value
    where = call.args[-1] if call.args else call.keywords[-1].value
    func = ast.copy_location(ast.Attribute(value=base, attr="reshape", ctx=ast.Load()), call.func)
    return _rows_view(func, base, call, where, where)


def _pure_size(expr: ast.expr) -> bool:
    """A size written with names, attributes, constants and arithmetic only (no call): the same
    text twice is the same number twice."""
    return all(isinstance(n, (ast.Name, ast.Attribute, ast.Constant, ast.BinOp, ast.UnaryOp, ast.Load,
                              ast.operator, ast.unaryop)) for n in ast_walk(expr))


def _class_param(definition) -> str | None:
    """The name a class method's first parameter gives the class (``cls``), or None when
    ``definition`` is not a method decorated ``@classmethod``."""
    if definition is None or not definition.decorator_list or not definition.args.args:
        return None
    if not any(d.__class__ is _AST_NAME and d.id == "classmethod" for d in definition.decorator_list):
        return None
    return definition.args.args[0].arg


def _shape_as_size(call: ast.Call) -> ast.Call:
    """``call`` with each argument ``y.shape[i]`` (``y`` a name, ``i`` an int literal) written
    ``y.size(i)``: the same number, read as the same step (a ``size`` method of ``y``)."""
    args = []
    for a in call.args:
        if a.__class__ is ast.Subscript and a.value.__class__ is ast.Attribute and a.value.attr == "shape" \
                and a.value.value.__class__ is _NAME and _int_literal(a.slice) is not None:
            size = ast.Attribute(value=a.value.value, attr="size", ctx=ast.Load())
            a = ast.copy_location(ast.Call(func=ast.copy_location(size, a.value), args=[a.slice], keywords=[]), a)
        args.append(a)
    return ast.copy_location(ast.Call(func=call.func, args=args, keywords=call.keywords), call)


def _two_axis_view(call: ast.Call) -> bool:
    """Is ``call`` ``x.view(a, b)`` / ``x.reshape(a, b)``: two sizes, so a value of two axes?"""
    func = call.func
    return func.__class__ is ast.Attribute and func.attr in _VIEWS and len(call.args) == 2 and not call.keywords \
        and not any(a.__class__ is ast.Starred or a.__class__ is ast.Tuple or a.__class__ is ast.List
                    for a in call.args)


# a mask or an index tensor written as a name or a comparison (``x[mask]``, ``x[m != 0]``)
_MASK_INDEX = (_NAME, ast.Compare)


def _one_index(index: ast.expr) -> bool:
    """Is ``index`` one name, attribute, subscript, comparison or int literal (a mask, indices,
    a row): of a 2-D value, rows with the last axis whole?"""
    kind = index.__class__
    if kind is ast.Constant:
        return type(index.value) is int
    return kind in (_NAME, ast.Attribute, ast.Subscript, ast.Compare)


def _member_pick(index: ast.expr, axis: int) -> bool:
    """Is ``index`` ``[:, k]`` for ``axis`` 1 (``[k]`` for 0): bare slices of the axes before
    ``axis``, then one name or int literal at it, only bare slices after (``[:, :, k, :]``)?  Of
    a stack of member outputs on ``axis`` it is the k-th member's output (the slices keep their
    axes whole)."""
    elts = index.elts if index.__class__ is ast.Tuple else [index]
    if len(elts) < axis + 1:
        return False
    last = elts[axis]
    if not (last.__class__ is _NAME or (last.__class__ is ast.Constant and type(last.value) is int)):
        return False
    return all(e.__class__ is ast.Slice and e.lower is None and e.upper is None and e.step is None
               for i, e in enumerate(elts) if i != axis)


def _split_last_axis(call: ast.Call) -> int | None:
    """k when ``call`` is ``x.reshape(*x.shape[:k], n, V)`` (``view``, ``x.size()[:k]``): x's
    axes before k kept, its last axis split into n members of V each, the members on axis k
    (one Linear to ``n * V`` read as n heads stacked, higgs-audio's per-codebook logits).  Only
    where x's rank is k + 1 is that the whole of x: the member picked (``[:, :, i, :]``) is then
    the i-th block of V of the Linear's outputs, a Linear's output itself; the pattern's loss
    over V (the same expression as the view's last size) says what the rows are."""
    func = call.func
    if not (func.__class__ is ast.Attribute and func.attr in _VIEWS and len(call.args) == 3 and not call.keywords
            and func.value.__class__ is _NAME and call.args[0].__class__ is ast.Starred):
        return None
    shape = call.args[0].value
    if not (shape.__class__ is ast.Subscript and shape.slice.__class__ is ast.Slice):
        return None
    cut = shape.slice
    if cut.lower is not None or cut.step is not None or not (
            cut.upper.__class__ is ast.Constant and type(cut.upper.value) is int and cut.upper.value >= 1):
        return None
    of = shape.value
    if of.__class__ is _CALL and not of.args and not of.keywords:
        of = of.func
        if not (of.__class__ is ast.Attribute and of.attr == "size"):
            return None
    elif not (of.__class__ is ast.Attribute and of.attr == "shape"):
        return None
    if not (of.value.__class__ is _NAME and of.value.id == func.value.id):
        return None
    if any(a.__class__ is ast.Starred for a in call.args[1:]):
        return None
    return cut.upper.value


def _keeps_axis(index: ast.expr, axis: int) -> bool:
    """Is ``index`` slices only (no ellipsis, integer or ``None``), the one at ``axis`` (if
    written) bare, at most ``axis + 2`` of them (``[:, :, -n:]`` of a stack on axis 1: the
    positions of each member's output)?  A slice of a Linear's output is a Linear's output
    (of those rows of its weight where it cuts the last axis), and the stack axis stays
    whole, so ``[:, k]`` of the result is still the k-th member's output, selected."""
    elts = index.elts if index.__class__ is ast.Tuple else [index]
    if len(elts) > axis + 2 or not all(e.__class__ is ast.Slice for e in elts):
        return False
    if len(elts) > axis:
        s = elts[axis]
        return s.lower is None and s.upper is None and s.step is None
    return True


# Steps that lay a tensor out or cast it, computing nothing else, and the element-wise cosine
# and sine of a rotary table (`q * freqs.cos() + rotate_half(q) * freqs.sin()`, the same for k):
# the same step of the same values computes the same tensor again (_recomputed).
_LAYOUT_STEPS = frozenset({"unsqueeze", "squeeze", "view", "reshape", "transpose", "permute", "expand", "expand_as",
                           "flatten", "contiguous", "float", "half", "double", "bfloat16", "to", "type_as", "t",
                           "cos", "sin"})


def _recomputed(nodes: list, out: list, entry: int, slices: dict | None = None) -> dict | None:
    """Temporaries a layout step computes again from the values an earlier step gave it (LLaMA
    rotary code writing ``cos.unsqueeze(0).unsqueeze(0)`` once in q's line and once in k's) ->
    the earlier temporary, when that step is on every way to the later one and each value read
    is one that cannot change between them: a layout temporary of the same steps, a constant,
    or a plain name the function assigns (or writes into in place) only before the first step.
    None when there is none.  (Each layout step is keyed by its steps and arguments in one
    string, made with no call: most flows have no two alike and cost nothing more.)  A slice of
    constants (``x[:, 1:]``, its text in ``slices``) is such a step too, keyed by the slice: the
    same slice of one value is one tensor, another slice of it another."""
    first: dict = {}
    sig: dict = {}  # a layout step's temporary -> its key (the steps computing it, and their arguments)
    pairs = None
    for node in nodes:
        if node.kind == "method" and (node.op in _LAYOUT_STEPS or slices and node.op == "__getitem__"
                                      and node.outs and node.outs[0].key in slices) \
                and node.args and node.args[0].__class__ is Ref and node.outs:
            receiver = node.args[0].key
            key = node.op + "(" + (sig[receiver] if receiver in sig else receiver)
            if node.op == "__getitem__":
                key += "," + slices[node.outs[0].key]
            for value in node.args[1:]:
                key += "," + (value.key if value.__class__ is Ref else f"{value.value!r}")
            for name, value in node.kwargs:
                key += f",{name}=" + (value.key if value.__class__ is Ref else f"{value.value!r}")
            key += ")"
            sig[node.outs[0].key] = key
            if key in first:
                if pairs is None:
                    pairs = []
                pairs.append((first[key], node))
            else:
                first[key] = node
    if pairs is None:
        return None
    last: dict[str, int] = {}  # name -> the last node assigning it or writing into it in place
    for node in nodes:
        for key in node.defs:
            last[key] = node.id
        if node.kind == "method" and node.op[-1:] == "_" and node.args and node.args[0].__class__ is Ref \
                and node.op != "__getitem__":  # (a read, not an in-place write)
            last[node.args[0].key] = node.id
    repeats: dict[str, str] = {}
    reached = stack = blank = None
    for earlier, later in pairs:
        stable = len(earlier.outs) == len(later.outs) == 1 and earlier.outs[0].key[:1] == "%" \
            and later.outs[0].key[:1] == "%"
        values = list(later.args)
        for _, value in later.kwargs:
            values.append(value)
        for value in values:
            if value.__class__ is Ref:
                key = value.key
                if key[:1] == "%":
                    # a temporary argument is the same one only through the receiver's steps
                    stable = stable and value is later.args[0] and (key in repeats or key == earlier.args[0].key)
                elif "." in key or "[" in key or "(" in key or (key in last and last[key] > earlier.id):
                    # an attribute, an element, or a name assigned (or written into) after the
                    # first step: node ids follow the flow (a loop's body is taken once), so
                    # one assigned only before it holds one value at both steps
                    stable = False
            elif value.__class__ is not Const:
                stable = False
        if not stable:
            continue
        # the earlier step is on every way from the entry to the later one: the later one is
        # not reached from the entry around it (a walk that calls nothing per node)
        if reached is None:
            reached, stack = [False] * len(nodes), [0] * len(nodes)
        else:
            reached[:] = blank
        if blank is None:
            blank = reached[:]
        reached[earlier.id] = reached[entry] = True
        stack[0], top = entry, 1
        while top:
            top -= 1
            for succ, _ in out[stack[top]]:
                if not reached[succ]:
                    reached[succ] = True
                    stack[top] = succ
                    top += 1
        if not reached[later.id]:
            repeats[later.outs[0].key] = repeats.get(earlier.outs[0].key, earlier.outs[0].key)
    return repeats or None


def _mutates(expr: ast.expr) -> bool:
    """Does ``expr`` call an in-place method (``x.add_(y)``) or bind a name (``:=``) -- an effect
    that outlives a value nobody reads?"""
    return any(n.__class__ is ast.NamedExpr or (n.__class__ is ast.Call and n.func.__class__ is ast.Attribute
                                                 and n.func.attr.endswith("_") and not n.func.attr.startswith("_"))
               for n in ast_walk(expr))


def _comprehension_calls(target: ast.expr, comp: ast.ListComp | ast.GeneratorExp) -> list | None:
    """``q, k, v = [t.view(b, n, h, d).transpose(1, 2) for t in (q, k, v)]``: the assignments
    ``q = q.view(...).transpose(1, 2)``, ``k = ...``, ``v = ...`` in order, as ``_map_calls``
    reads ``map``.  Only a comprehension of one call over a literal tuple or list of as many
    elements as the names unpacked, with one loop name and no condition; None when an element,
    or the call itself, reads a name an earlier assignment rebinds (the comprehension reads
    every element before any name is assigned)."""
    if len(comp.generators) != 1 or comp.elt.__class__ is not ast.Call:
        return None
    gen = comp.generators[0]
    seq, names = gen.iter, target.elts
    if (gen.ifs or gen.is_async or len(names) < 2 or not all(isinstance(t, ast.Name) for t in names)):
        return None
    if isinstance(gen.target, ast.Name) and isinstance(seq, (ast.Tuple, ast.List)) and len(seq.elts) == len(names) \
            and not any(isinstance(e, ast.Starred) for e in seq.elts):
        loops, rows = (gen.target.id,), [(e,) for e in seq.elts]
    else:
        # ``for layer, y in zip(self.linears, [x] * 3)``: row i is (self.linears[i], x)
        zipped = zipped_rows(gen.target, seq, len(names))
        if zipped is None:
            return None
        loops, rows = zipped
    body = {n.id for n in ast_walk(comp.elt) if isinstance(n, ast.Name) and n.id not in loops}
    if any(isinstance(n, (ast.Lambda, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp, ast.NamedExpr))
           for n in ast_walk(comp.elt)) or body & {t.id for t in names}:
        return None
    out, rebound = [], set()
    for name, row in zip(names, rows):
        if any(isinstance(n, ast.Name) and n.id in rebound | set(loops) for e in row for n in ast_walk(e)):
            return None
        rebound.add(name.id)
        value = copy.deepcopy(comp.elt)
        for loop, elt in zip(loops, row):
            value = _Substitute(loop, elt).visit(value)
        out.append((name, value))
    return out


def _split_arguments(parts: tuple | None) -> tuple | None:
    """``(base, size, dim)`` of a split call's parts (FlowBuilder._split_call): the tensor split
    (``tensor=`` of ``torch.split`` too), its split size and a dim of -1; None when there are no
    parts, any of the three is missing, the dim is another, or anything else is passed."""
    if parts is None:
        return None
    functional, base, args, keywords = parts
    if base is None and functional:
        base = keywords.pop("tensor", None)
    size = args.pop(0) if args else keywords.pop("split_size_or_sections", keywords.pop("split_size", None))
    dim = args.pop(0) if args else keywords.pop("dim", None)
    if args or keywords or base is None or size is None or dim is None or _int_literal(dim) != -1:
        return None
    return base, size, dim


def _chunk_halves(call: ast.Call, base: ast.Name, count_at: ast.AST, dim: ast.AST) -> ast.Call:
    """``base.chunk(2, dim=-1)``, placed where ``call`` is (the 2 where ``count_at`` is, the -1
    where ``dim`` is): what FlowBuilder._split_in_halves and _tensor_split_halves read a split
    into the last axis's halves as."""
    two = ast.copy_location(ast.Constant(2), count_at)
    last = ast.copy_location(ast.UnaryOp(op=ast.USub(), operand=ast.copy_location(ast.Constant(1), dim)), dim)
    method = ast.copy_location(ast.Attribute(value=base, attr="chunk", ctx=ast.Load()), call.func)
    return ast.copy_location(ast.Call(func=method, args=[two], keywords=[
        ast.copy_location(ast.keyword(arg="dim", value=last), dim)]), call)


def _literal_settings(init: ast.FunctionDef, built: ast.Call) -> dict | None:
    """``self.<attr>`` -> the literal it holds in the module ``built`` constructs, for an
    ``__init__`` that only calls ``super().__init__`` (a docstring aside) and binds attributes
    to literals or to parameters it never rebinds; None when it does anything else or a
    setting is no literal at this construction."""
    args = init.args
    if args.vararg or args.posonlyargs:
        return None
    params = {a.arg for a in args.args[1:] + args.kwonlyargs}
    settings = {}
    for stmt in init.body:
        kind = stmt.__class__
        if kind is ast.Expr and (stmt.value.__class__ is ast.Constant or (
                stmt.value.__class__ is _AST_CALL and stmt.value.func.__class__ is ast.Attribute
                and stmt.value.func.attr == "__init__" and stmt.value.func.value.__class__ is _AST_CALL
                and stmt.value.func.value.func.__class__ is _AST_NAME
                and stmt.value.func.value.func.id == "super")):
            continue
        if not (kind is ast.Assign and len(stmt.targets) == 1 and stmt.targets[0].__class__ is ast.Attribute
                and stmt.targets[0].value.__class__ is _AST_NAME and stmt.targets[0].value.id == args.args[0].arg):
            return None
        value = stmt.value
        if value.__class__ is _AST_NAME and value.id in params:
            passed = passed_argument(init, built, value.id)
            if passed is False:
                return None
            value = param_default(args, value.id) if passed is None else passed
        if value is None or _literal_value(value) is None or stmt.targets[0].attr in settings:
            return None
        settings[stmt.targets[0].attr] = value
    for node in ast_walk(init):
        if node.__class__ is _AST_NAME and node.id in params and node.ctx.__class__ is not _LOAD:
            return None
    return settings


def _literal_value(expr: ast.expr) -> bool | None:
    """True for a literal a setting may hold: a number, a string, a bool or None, ``-<number>``."""
    if expr.__class__ is ast.UnaryOp and expr.op.__class__ is ast.USub:
        expr = expr.operand
        return True if expr.__class__ is ast.Constant and expr.value.__class__ in (int, float) else None
    return True if expr.__class__ is ast.Constant else None


class _SettingReads(ast.NodeTransformer):
    """Replace ``self.<attr>`` reads by the literal each setting holds (a copy placed where
    the read is); ``other`` is set when ``self`` is read or written in any other way."""

    def __init__(self, name: str, settings: dict):
        self.name, self.settings, self.other = name, settings, False

    def visit_Attribute(self, node: ast.Attribute):
        if node.value.__class__ is _AST_NAME and node.value.id == self.name:
            if node.ctx.__class__ is _LOAD and node.attr in self.settings:
                return ast.copy_location(copy.deepcopy(self.settings[node.attr]), node)
            self.other = True
            return node
        return self.generic_visit(node)

    def visit_Name(self, node: ast.Name):
        if node.id == self.name:
            self.other = True
        return node


def _reads_any(node: ast.AST, names: set) -> bool:
    """Whether ``node`` reads one of ``names`` anywhere in it (what an unrolled ``map`` call
    would read after an earlier target rebinds it)."""
    return any(n.__class__ is _AST_NAME and n.id in names for n in ast_walk(node))


class _Substitute(ast.NodeTransformer):
    """Replace the reads of one name by an expression (a lambda's parameter by the argument
    ``map`` gives it); the expression keeps its own position in the file."""

    def __init__(self, name: str, value: ast.expr):
        self.name, self.value = name, value

    def visit_Name(self, node: ast.Name):
        return self.value if node.id == self.name and isinstance(node.ctx, ast.Load) else node


def _two_parts_on_last_axis(call: ast.Call, same_rank: str | None = None) -> list[ast.expr] | None:
    """The two parts of ``cat((a, b), dim=-1)`` (or ``cat([a, b], -1)``), the shape both
    rotary spellings concatenate; None for any other call.  ``same_rank``: a name of a tensor
    the parts have the rank of (the one they are slices of), whose rank minus one is the last
    axis too."""
    # ``axis=`` is the numpy-style alias of ``dim`` (``torch.concatenate(parts, axis=-1)``)
    dims = [kw.value for kw in call.keywords if kw.arg == "dim" or kw.arg == "axis"] + list(call.args[1:2])
    if len(call.args) < 1 or len(dims) != 1 or len(call.keywords) > (1 if len(call.args) == 1 else 0):
        return None
    dim = dims[0]
    parts = call.args[0]
    if not (isinstance(parts, (ast.Tuple, ast.List)) and len(parts.elts) == 2):
        return None
    if same_rank is not None and canonical.last_dim(dim, same_rank, _name_text):
        return list(parts.elts)
    if not (isinstance(dim, ast.UnaryOp) and isinstance(dim.op, ast.USub) and isinstance(dim.operand, ast.Constant)
            and dim.operand.value == 1):
        # dim=x1.ndim - 1 (or x1.dim() - 1, len(x1.shape) - 1) of a part written as a name: the
        # parts and the result share their rank, so that is the last axis
        names = {(p.operand if isinstance(p, ast.UnaryOp) else p).id for p in parts.elts
                 if isinstance(p.operand if isinstance(p, ast.UnaryOp) else p, ast.Name)}
        if not any(canonical.last_dim(dim, name, _name_text) for name in names):
            return None
    return list(parts.elts)


def _sizes_of(expr) -> str | None:
    """x when ``expr`` is ``x.size()`` or ``x.shape`` (all of x's axis sizes), x a name."""
    if isinstance(expr, ast.Call) and not expr.args and not expr.keywords and isinstance(expr.func, ast.Attribute) \
            and expr.func.attr == "size":
        expr = expr.func.value
    elif isinstance(expr, ast.Attribute) and expr.attr == "shape":
        expr = expr.value
    else:
        return None
    return expr.id if isinstance(expr, ast.Name) else None


def _name_text(expr) -> str | None:
    return expr.id if isinstance(expr, ast.Name) else None


def defaulted_attributes(functions: dict) -> dict:
    """``self.<attr>`` -> the words of the default of the ``__init__`` parameter that ``__init__``'s
    top level binds it to (``self.opt = opt`` with ``opt=torch.optim.Adam``: {"torch", "optim",
    "Adam"}), for a default that is a name or a dotted name: what a call of the attribute may
    call (FlowBuilder._attr_choices reads it exactly).  A pre-filter's superset."""
    init = functions.get("__init__")
    found: dict = {}
    if init is None:
        return found
    args = init.args
    if not args.defaults and not args.kwonlyargs:
        return found
    defaults = {a.arg: d for a, d in zip(args.args[len(args.args) - len(args.defaults):], args.defaults)}
    defaults.update((a.arg, d) for a, d in zip(args.kwonlyargs, args.kw_defaults) if d is not None)
    for stmt in init.body:
        if stmt.__class__ is not ast.Assign or stmt.value.__class__ is not ast.Name:
            continue
        default = defaults.get(stmt.value.id)
        target = stmt.targets[0]
        if default is None or default.__class__ not in (ast.Attribute, ast.Name) or stmt.targets[1:] \
                or target.__class__ is not ast.Attribute or target.value.__class__ is not ast.Name \
                or target.value.id != "self":
            continue
        words = []
        while default.__class__ is ast.Attribute:
            words.append(default.attr)
            default = default.value
        if default.__class__ is ast.Name:
            words.append(default.id)
            found[target.attr] = frozenset(words)
    return found


def picked_attributes(functions: dict) -> dict:
    """``self.<attr>`` -> the methods ``__init__`` binds it to at its top level: one
    (``self.fn = self.method``) or one of two by a test (``self.fn = self.a if <test> else
    self.b``); what a call of the attribute may run (_picked_methods reads it exactly)."""
    init = functions.get("__init__")
    found: dict = {}
    if init is None:
        return found
    for stmt in init.body:
        if stmt.__class__ is not ast.Assign:
            continue
        value = stmt.value
        kind = value.__class__
        if kind is ast.IfExp:
            choices = (value.body, value.orelse)
        elif kind is ast.Attribute:
            choices = (value,)
        else:
            continue  # (most: a layer built)
        target = stmt.targets[0]
        if stmt.targets[1:] or target.__class__ is not ast.Attribute or target.value.__class__ is not ast.Name \
                or target.value.id != "self":
            continue
        methods = []
        for c in choices:
            if c.__class__ is ast.Attribute and c.value.__class__ is ast.Name and c.value.id == "self" \
                    and c.attr in functions:
                methods.append(c.attr)
        if len(methods) == len(choices):
            found[target.attr] = tuple(methods)
    return found


def _picked_methods(cls: ClassInfo, attr: str) -> tuple | None:
    """(None, (method,)) when ``__init__`` binds ``self.<attr>`` to one of the class's own
    methods (``self.attn_fn = self.softmax_attention``), (test, (first, second)) when to one of
    two by a test (``self.fn = self.a if <test> else self.b``), and nothing else in the class
    binds it; None otherwise.  Read once per attribute a statement calls."""
    ctors = cls.bindings.get(attr)
    init = cls.methods.get("__init__")
    if not ctors or init is None or any(c.fqn != "?" for c in ctors) or len(ctors) != 1:
        return None
    value = None
    for stmt in init.body:
        if stmt.__class__ is ast.Assign and len(stmt.targets) == 1:
            target = stmt.targets[0]
            if target.__class__ is ast.Attribute and target.attr == attr and target.value.__class__ is ast.Name \
                    and target.value.id == "self":
                if value is not None:
                    return None
                value = stmt.value

    def method(expr) -> str | None:
        if expr.__class__ is ast.Attribute and expr.value.__class__ is ast.Name and expr.value.id == "self" \
                and expr.attr in cls.methods and expr.attr != "__init__" \
                and not cls.methods[expr.attr].decorator_list:
            return expr.attr
        return None

    if value is None:
        return None
    if value.__class__ is ast.IfExp:
        first, second = method(value.body), method(value.orelse)
        found = (value.test, (first, second)) if first and second else None
    else:
        one = method(value)
        found = (None, (one,)) if one else None
    if found is None:
        return None
    for func in cls.methods.values():
        for node in ast_walk(func):
            if node.__class__ is ast.Attribute and node.attr == attr and node.ctx.__class__ is not ast.Load \
                    and node.value.__class__ is ast.Name and node.value.id == "self" and node is not target_of(init, attr):
                return None
    return found


def target_of(init, attr: str):
    """The ``self.<attr>`` target ``__init__``'s one top-level binding of it assigns."""
    for stmt in init.body:
        if stmt.__class__ is ast.Assign and len(stmt.targets) == 1:
            target = stmt.targets[0]
            if target.__class__ is ast.Attribute and target.attr == attr:
                return target
    return None


def _optional_step(targets: list[ast.expr], value: ast.expr) -> ast.If | None:
    """``x = step(x) if test else x`` (or ``x = x if test else step(x)``): a conditional
    expression one of whose choices is the assigned name itself, the other computed from it.
    Returns the ``if test: x = step(x)`` statement it is the same as (the kept choice an empty
    ``else``, or an empty ``then``), located at the expression; for ``x = f(a) if test else
    g(b)`` (both choices calls) the ``if``/``else`` of the two assignments; None for any other
    assignment."""
    if len(targets) != 1 or not isinstance(targets[0], ast.Name) or not isinstance(value, ast.IfExp):
        return None
    name = targets[0].id
    body_keeps = isinstance(value.body, ast.Name) and value.body.id == name
    else_keeps = isinstance(value.orelse, ast.Name) and value.orelse.id == name
    if body_keeps == else_keeps:
        if body_keeps or value.body.__class__ is not ast.Call or value.orelse.__class__ is not ast.Call:
            return None
        # h = up_conv(x, self.c1) if self.upsample else self.c1(x): two computations, one taken
        # by the test; the same as `if test: h = <first> else: h = <second>`, so each path's
        # data flow is read on its own
        first = ast.copy_location(ast.Assign(targets=[targets[0]], value=value.body), value.body)
        second = ast.copy_location(ast.Assign(targets=[targets[0]], value=value.orelse), value.orelse)
        return ast.copy_location(ast.If(test=value.test, body=[first], orelse=[second]), value)
    other = value.orelse if body_keeps else value.body
    if not isinstance(other, (ast.BinOp, ast.Call)) or not any(
            isinstance(n, ast.Name) and n.id == name for n in ast_walk(other)):
        return None  # a choice between the value and another one, not a step taken on it
    step = ast.copy_location(ast.Assign(targets=[targets[0]], value=other), other)
    keep = ast.copy_location(ast.Pass(), value)
    body, orelse = ([keep], [step]) if body_keeps else ([step], [])
    return ast.copy_location(ast.If(test=value.test, body=body, orelse=orelse), value)


def _parallel(target: ast.expr, value: ast.expr) -> bool:
    """``a, b = e1, e2`` whose elements read none of the names assigned before them (not a swap,
    ``a, b = b, a``; ``z1, z2 = f(z1), f(z2)`` is one): the same as ``a = e1`` then ``b = e2``."""
    if not (isinstance(target, (ast.Tuple, ast.List)) and isinstance(value, (ast.Tuple, ast.List))
            and len(target.elts) == len(value.elts) and len(target.elts) > 1
            and all(isinstance(e, ast.Name) for e in target.elts)
            and not any(isinstance(e, ast.Starred) for e in value.elts)):
        return False
    # each element may read the names assigned after it (still their old values when it is
    # assigned in turn), none assigned before it
    names = [e.id for e in target.elts]
    if len(set(names)) != len(names):
        return False
    for index, part in enumerate(value.elts):
        if index:
            before = names[:index]
            if any(isinstance(n, ast.Name) and n.id in before for n in ast_walk(part)):
                return False
    return True


def _flattens_lead(call: ast.Call, exprs: dict) -> bool:
    """``x.view(B * T, V)`` (or ``reshape``) where ``B, T, V = x.shape`` (or ``x.size()``) named
    every axis of x: the leading axes flattened into one and the last kept whole, which is
    ``x.view(-1, V)``.  The product must name each leading axis once (``B * T`` of a 3-D x; ``T``
    alone of a 2-D one); a product of other sizes, or of some of the axes, is another view."""
    func = call.func
    if not (func.attr in ("view", "reshape") and isinstance(func.value, ast.Name) and not call.keywords):
        return False
    owner = func.value.id
    lead, last = call.args
    size = exprs.get(last.id) if isinstance(last, ast.Name) else None
    if not (isinstance(size, tuple) and size[:2] == ("dim_size", owner) and size[2] == size[3] - 1):
        return False
    axes, pending = [], [lead]
    while pending:
        expr = pending.pop()
        if isinstance(expr, ast.BinOp) and isinstance(expr.op, ast.Mult):
            pending += [expr.left, expr.right]
            continue
        held = exprs.get(expr.id) if isinstance(expr, ast.Name) else None
        if not (isinstance(held, tuple) and held[:2] == ("dim_size", owner) and held[3] == size[3]):
            return False
        axes.append(held[2])
    return sorted(axes) == list(range(size[3] - 1))


_VIEWS = ("view", "reshape")


def _unviewed(expr: ast.expr) -> ast.expr:
    """``expr`` without the ``.view(...)``/``.reshape(...)`` calls around it."""
    while expr.__class__ is ast.Call and expr.func.__class__ is ast.Attribute and expr.func.attr in _VIEWS:
        expr = expr.func.value
    return expr


def _block_added(target: ast.Subscript, stmt: ast.stmt, root: str, text) -> list | None:
    """The terms a read-modify-write store adds to a block of ``root``: ``root[i] += t`` gives
    ``[t]``; ``root[i] = (root[i].view(..) + t1 + t2).view(..)`` (the block itself, viewed,
    among terms summed, then viewed back) gives ``[t1, t2]``.  None when the store is no such
    sum, or a term reads ``root``."""
    if stmt.__class__ is ast.AugAssign:
        if stmt.op.__class__ is not ast.Add:
            return None
        terms = [stmt.value]
    else:
        summed = _unviewed(stmt.value)
        if summed.__class__ is not ast.BinOp or summed.op.__class__ is not ast.Add:
            return None
        leaves, todo = [], [summed]
        while todo:
            node = todo.pop()
            if node.__class__ is ast.BinOp and node.op.__class__ is ast.Add:
                todo += (node.left, node.right)
            else:
                leaves.append(node)
        block = text(target)
        own = [leaf for leaf in leaves if _unviewed(leaf).__class__ is ast.Subscript and text(_unviewed(leaf)) == block]
        if len(own) != 1:
            return None
        terms = [leaf for leaf in leaves if leaf is not own[0]]
    for term in terms:
        if any(n.__class__ is ast.Name and n.id == root for n in ast_walk(term)):
            return None
    return terms


def _attr_written(text: str, attr: str) -> bool:
    """``re.search(rf"(?<!self)\\.{name}\\s*(?:[-+*/%@&|^]|//|\\*\\*|<<|>>)?=(?!=)|[\\"']{name}[\\"']",
    text)`` with ``name = re.escape(attr)`` (FlowBuilder._flag_fixed: ``<obj>.attr`` written to,
    or the name quoted), tried only one character before each place ``str.find`` gives the
    name (where every match of it starts, at the dot or the quote; overlapping places too);
    ``match`` at a position sees the character before it for the look-behind.  The search tried
    it at every character of the file (3 ms a search)."""
    written = re.compile(rf"(?<!self)\.{re.escape(attr)}\s*(?:[-+*/%@&|^]|//|\*\*|<<|>>)?=(?!=)|[\"']{re.escape(attr)}[\"']")
    if not attr:  # (no name to find: the pattern's own search)
        return written.search(text) is not None
    at = text.find(attr, 1)
    while at >= 0:
        if written.match(text, at - 1):
            return True
        at = text.find(attr, at + 1)
    return False


def _callable_default(args: ast.arguments) -> bool:
    """Does some parameter default to a name or an attribute (``opt_cls=torch.optim.Adam``)?
    Most defaults are literals: then no inlining asks :meth:`FlowBuilder._default_choices`."""
    for default in args.defaults:
        if default.__class__ is ast.Attribute or default.__class__ is _AST_NAME:
            return True
    for default in args.kw_defaults:
        if default.__class__ is ast.Attribute or default.__class__ is _AST_NAME:
            return True
    return False
