"""What layer an expression builds, following the code of the file rather than its spelling.

``self.bn1 = norm_layer(planes)`` builds a BatchNorm2d when ``norm_layer`` is a constructor
parameter whose default is ``nn.BatchNorm2d`` (or ``None`` followed by ``if norm_layer is None:
norm_layer = nn.BatchNorm2d``, or a ``functools.partial`` of a layer class), or when every call
in the file that builds the class passes a layer class for it.  ``self.conv1 = conv3x3(a, b)``
builds a Conv2d when ``conv3x3`` is a function of the same file that returns one (a *factory*;
one returning an ``nn.Sequential`` builds that Sequential, members and all).
``nn.Dropout(p) if p > 0 else nn.Identity()`` builds either: both are kept, as for a layer bound
differently under ``if``/``else``.

The same walk records every ``nn.Sequential`` the file builds, wherever it is (assigned to an
attribute, returned by a factory or by ``_make_layer``, passed to another block as
``downsample``, built from an ``OrderedDict`` or from a list filled with ``append``/``+=``/
``extend`` under ``if``s and loops).  Calling a Sequential runs its members in order, so each
construction is a small flow of its own: the order in which the members are put together, with
a member added under an ``if`` being optional.  :func:`sequential_sites` returns them; the model
structure turns each into a flow that rules match like any forward.

Only names are followed (parameters, locals, ``self.attr`` of the class, same-file functions
and classes), within a small depth: the point is the idioms of model code, not a general
abstract interpreter, and the check path must stay near the cost of ``ast.parse``.
"""

from __future__ import annotations

import ast
import bisect
import copy
import re
from ..records import dataclass, field, replace

from .treewalk import walk
from .appending import CONTAINER_API, appends_last, starts_empty
from .built_blocks import block_factory, defaults_call
from .sequential_builders import builder_shape, rebound_builtins
# (layers.py's own names for the shared class readings: its many uses keep their spelling)
from .class_syntax import is_name as _is_name, methods as _methods, self_attr as _self_attribute, super_init as _super_init
from .canon import TABLE
from .passed_defaults import int_literal
from .passed_lists import list_items
from .list_appenders import as_list_builder, passed_list
from .run_time_dims import run_time_family, shares_one_dimension
from .literals import held_whole, written_in_place
from . import library_layers
from .siblings import changed_in_package
from .member_appliers import applies_member
from .ops import SOFTMAX, TENSOR_METADATA
from .formulas import (addmm_linear_module, autograd_gelu_module, dropout_function_module, dropout_wrapper,
                       flagged_layer_norm_module, functional_layer_norm_module, gelu_formula, gelu_function,
                       gelu_module, layer_norm_module,
                       passed_argument, rate_parts, silu_module, softmax_module, strip_casts,
                       untransposed)
from .moved_norm import moves_last_axis_through_norm
from .cast_linear import cast_linear
from .setting_norm import setting_activation_module, setting_norm_module
from .registries import file_registry, registry_methods
from .names import ModuleNames, builtin_unbound, class_body_value, module_functions as _functions, names_match, param_default
from .treewalk import ast_walk

SEQUENTIAL = "torch.nn.Sequential"
SOFTMAX_MODULE = "torch.nn.Softmax"
MODULE = "torch.nn.Module"
MODULE_LIST = "torch.nn.ModuleList"
ORDERED_DICTS = frozenset({"collections.OrderedDict", "OrderedDict", "typing.OrderedDict"})
PARTIALS = frozenset({"functools.partial", "partial"})
# torch.nn.utils.skip_init(cls, *args, **kwargs): ``cls(*args, **kwargs)`` built without
# initialising its parameters (OpenNMT-py's projections): that layer.
SKIP_INIT = "torch.nn.utils.skip_init"
TABLE_SUFFIXES = ("ACT2FN", "ACT2CLS")
# The tables among them whose entries are classes (ACT2FN's are built layers): ``ACT2CLS[key]()``
# builds the activation the key names.
CLASS_TABLES = ("ACT2CLS",)
# Functions mapping a key to an activation (a table lookup by another name): typed as the table,
# whatever module defines them.
TABLE_FUNCTIONS = ("get_activation",)
# torch.nn.modules.transformer._get_activation_fn: torch's documented activation strings
TORCH_ACTIVATION_FN = "torch.nn.modules.transformer._get_activation_fn"
_TORCH_ACTIVATION_STRINGS = {"relu": "torch.nn.functional.relu", "gelu": "torch.nn.functional.gelu"}
# getattr(nn, key)(...) where the key is known (a literal, parameters' constant defaults): the
# structural layer classes read as that class (activations stay run-time table keys)
_GETATTR_CLASS = re.compile(r"(?:Conv|ConvTranspose|BatchNorm|InstanceNorm)[123]d|Linear|LayerNorm|GroupNorm|SyncBatchNorm")
_GETATTR_KEYS = (ast.Constant, ast.Name, ast.JoinedStr, ast.BinOp)
# The LayerClass of ``getattr(nn, key)`` held as a value with a key known only where the code
# runs (its one argument): called, a table lookup in torch.nn (LayerTyper._call)
GETATTR_NN = "\0getattr(torch.nn)"
MAX_DEPTH = 5
# ``self.x.m("key", builder)``: a registration of a builder on a registry object (_registry_create)
_REGISTRATION = re.compile(r"^[ \t]*self[ \t]*\.[ \t]*\w+[ \t]*\.[ \t]*\w+[ \t]*\([ \t]*['\"][^'\"\n]*['\"][ \t]*,", re.M)
# env keys of loops unrolled over a list a caller gives (LayerTyper._unroll)
ELEMENTS = "elts:"  # a list name -> (its literal expression, the names' values where it is built; None: here)
TABLE_OF = "\0table:"  # env key: a local name holding a dict literal (an activation table)
ELEMENT_OF = "elt:"  # the loop variable -> (the current element's expression, those values)
# a list name bound to a comprehension -> what item stores put in it since (``acts[-1] = out_act``:
# each store's values; None for a store or a change of the list whose values are not known)
ITEMS = "\0items:"
ELEMENT = "item:"  # a name unpacked from the element -> the element's item expression
ITERATION = "\0iteration"  # the current element's expression (where its members are placed)
MAX_UNROLL = 64
# Decorators that hand the class or function back as it is, built by the file's own calls
# (LayerTyper._registered): any other one may register it with a builder of its own.
_PLAIN_DECORATORS = frozenset({
    "dataclasses.dataclass", "staticmethod", "classmethod", "property", "functools.wraps",
    "functools.lru_cache", "functools.cache", "torch.no_grad", "torch.jit.script", "torch.jit.ignore",
    "torch.jit.unused", "torch.compile", "typing.final", "typing.overload", "dataclass"})
# The environment key (prefixing a name) saying the name may hold an untyped value on some path.
UNKNOWN = "unknown:"
# env key: a parameter a call binds to a literal True/False/None (passed, or its default when the
# call passes nothing for it), in a function whose body never re-binds it: ``if bn:`` runs one way
LITERAL = "\0literal:"
# a factory's parameter -> the int or str constant its call passes (a literal, or the caller's
# parameter with such a default): what ``getattr(nn, f"Conv{dim}d")`` there names (_getattr_class)
CONSTANT = "\0constant:"
# list methods that move, drop or replace members: the list's order is no longer known
# env key prefix: a local name bound to an empty ``nn.Sequential()`` whose site this walk recorded
# (the value is that call); ``name.add_module(key, layer)`` then adds a member, as for ``self.x``
EMPTY_SEQUENTIAL = "empty-sequential:"
# env key prefix: the function's ``**kwargs`` parameter (the value: that function); ``kwargs.get("norm_layer",
# nn.BatchNorm2d)`` reads a keyword as a defaulted parameter would be (LayerTyper._kwargs_read)
KWARGS = "\0kwargs:"
# env key prefix: a function defined in the walked body (``def add_block(...)`` inside
# ``__init__``); a call statement of it runs its body there (LayerTyper._walk_local)
LOCAL_DEF = "\0def:"
# A name bound to ``OrderedDict([(name, layer), ...])``: the graph of its pairs, in order, for
# ``nn.Sequential(<name>)``; dropped when the name is bound again or the dict is changed.
ODICT = "\0odict:"
_ODICT_LEN = len(ODICT)
# The keys of such a name filled by item assignment (``layers = OrderedDict()``, then
# ``layers["conv"] = ...``): a key put in again would replace a member where it stands.
ODICT_KEYS = "\0odict-keys:"
# set while walking the body of ``if <flag>:`` whose flag is a parameter defaulting to True: an
# OrderedDict's new key put in there goes to the end on the way the default takes (the pair is
# there when the flag keeps its default, as the GUIDE reads flags)
ODICT_IF = "\0odict-if"
# ``nested`` while walking a branch of an ``if`` that no loop encloses: an OrderedDict's new
# keys put in there go to its end on the ways through that branch (_walk's If)
BRANCH = "if-branch"
# how many such branches the walk is in, and how many it was in where each followed
# OrderedDict was made: a put at a deeper level is on some ways only
BRANCH_LEVEL = "\0branch-level"
ODICT_LEVEL = "\0odict-level:"
# A name bound to a list of list displays (``sequence = [[conv, act]]; sequence += [[conv, bn,
# act]]``): each sublist's graph, and whether it was added on some ways only (in a loop or an
# if); a loop concatenating them (``for n in range(len(sequence)): stream += sequence[n]``)
# gives their members in order, ``*sequence[n]`` any one of them.
NESTED = "\0nested:"
# env key: a local name holding a dict built here with string keys (``layers = dict(emb=...,
# head=nn.Linear(...))``, then ``layers["pos"] = ...``), as its (key, value) pairs in order: what
# ``nn.ModuleDict(layers)`` holds under each key (bindings._record)
MEMBERS = "\0members:"
# A local name bound (outside branches) to a call of a same-file name, or of what a call or a
# table gives (``resnet = get_backbone("resnet34")(pretrain=True)``): the call, read on
# ``resnet.conv1`` as the instance of the same-file module class it builds
# (LayerTyper._instance_class), whose ``__init__`` says what ``.conv1`` is.
INSTANCE = "\0instance:"
# A name or ``self.<attr>`` bound to ``list(<holder>.children())`` (a file importing a library
# library_layers describes): the holder expression, whose described child order says what the
# list's members are (``nn.Sequential(*layers[:3])``: conv1, bn1, relu of a torchvision ResNet)
CHILDREN_OF = "\0children:"
FUNCTION_TEXT = "\0function-text"  # env: the module-level function walked (its text bounds a local holder)
_DISPLAYS = (ast.List, ast.Tuple)
LIST_REORDERS = frozenset({"insert", "pop", "remove", "reverse", "sort", "clear", "__setitem__", "__delitem__"})
# Layers of other libraries that compute a torch layer's operation with another parameter
# layout: (the torch layer, why a fix cannot treat them as it).  Their constructor arguments
# are in another order, so none is kept.
LOOK_ALIKES = {
    "transformers.pytorch_utils.Conv1D": (
        "torch.nn.Linear", "transformers' Conv1D is a Linear with a transposed (in, out) weight, which the kernel "
                           "does not fuse"),
}
# torch's lazy layers (``nn.LazyConv2d(out, k)``, ``nn.LazyBatchNorm2d()``, d2l's ResNet): the
# layer itself once its first input fixes the input size (the module's class then becomes that
# layer), so a pair folds as the plain one does (the kernel runs the two modules as written until
# then).  The constructors take no input size, so no argument is kept.  LazyLinear is left out:
# a fused-projection or bias-activation fix builds a Linear from its arguments.
LAZY_LAYERS = {f"torch.nn.Lazy{name}": f"torch.nn.{name}"
               for name in ("Conv1d", "Conv2d", "Conv3d", "BatchNorm1d", "BatchNorm2d", "BatchNorm3d")}
# torch's own synchronised BatchNorm: in eval (or with no process group) its forward is
# F.batch_norm on its running statistics, a BatchNorm of whatever rank its input has; after a
# Conv2d that is a BatchNorm2d.  Reported, not fixed, as a package's own synchronised BatchNorm
# on ``_BatchNorm`` is (lead ruling, session 25): the kernel folds plain BatchNorm classes only.
SYNC_BATCH_NORM = "torch.nn.SyncBatchNorm"
SYNC_BATCH_NORM_KIND = (
    "torch.nn.BatchNorm2d",
    ("torch's nn.SyncBatchNorm is a BatchNorm on its running statistics in eval mode but synchronises batch "
     "statistics across processes in training: the kernel folds plain BatchNorm classes only"), True)
# ... and after a Linear, whose (N, C) rows it normalises per feature, a BatchNorm1d: one
# construction is typed as both (which one it is depends on its input's rank, as for torch's
# class itself), each rule pairing the one its first layer produces.
SYNC_BATCH_NORM_1D = "torch.nn.BatchNorm1d"
# torch.nn classes that are containers, not layers: a same-file subclass of one is no layer.
CONTAINER_CLASSES = frozenset({"torch.nn.Module", "torch.nn.Sequential", "torch.nn.ModuleList", "torch.nn.ModuleDict",
                               "torch.nn.ParameterList", "torch.nn.ParameterDict"})
# Functions computing a torch layer's forward from its own parameters (for subclasses whose
# forward calls them on ``self.weight``/``self.bias``).
LAYER_FUNCTIONS = {"torch.nn.Linear": "torch.nn.functional.linear"}
# The constructor name given (besides its own) to a module whose output is a layer's output:
# ``adopter.output_of.torch.nn.Conv2d`` for a module whose forward returns a Conv2d's output
# (a separable convolution: depth-wise, then a 1x1 Conv2d; a Conv2d subclass that pads its
# input first).  A rule names it in an init pattern for a step whose layer only has to
# *produce* that layer's output (a BatchNorm after it folds into that convolution); its input
# is not a Conv2d's input.
OUTPUT_OF = "adopter.output_of."
# The layers whose output a module's output may be typed as (a Dropout: a feed-forward module
# ending in its output dropout, whose output a post-norm block adds to the residual).
OUTPUT_KINDS = frozenset({"torch.nn.Conv2d", "torch.nn.Dropout"})
# The layers a same-file module class's output is typed as when its forward returns one of its
# attributes' output (``return self.linear(x)``: a Linear wrapper, whose output a BatchNorm1d
# after it normalises as it would the Linear's own)
_MODULE_OUTPUT_KINDS = OUTPUT_KINDS | {"torch.nn.Linear"}
# The layers a module's whole computation may start with, on its one input (see
# LayerTyper._input_kind): a module after a convolution or a Linear that normalises first.
INPUT_KINDS = frozenset({"torch.nn.BatchNorm1d", "torch.nn.BatchNorm2d"})
# The functions computing those layers on a module's own parameters.
OUTPUT_FUNCTIONS = {"torch.nn.Conv2d": "torch.nn.functional.conv2d"}
# ``adopter.output_of.first.<layer>``: a module whose forward returns a tuple literal whose
# first element is that layer's output (an attention returning ``out, weights, cache``, ``out``
# its output dropout's); a rule reads it only through an unpacking of every element
# (``out, _, _ = self.attn(...)``), which takes that first element and nothing else.
OUTPUT_OF_FIRST = OUTPUT_OF + "first."

# (statement kinds _walk dispatches on, as sets: one lookup instead of an isinstance of a tuple)
_HOOKED_STATEMENTS = frozenset({ast.Assign, ast.AnnAssign, ast.AugAssign, ast.Expr})
_BLOCK_STATEMENTS = frozenset({ast.For, ast.AsyncFor, ast.While, ast.With, ast.AsyncWith})


@dataclass(frozen=True)
class Built:
    """A layer built by a call: its constructor's FQN, the arguments it was given, where the
    call is (``node``), and the name it was typed through (``via``: a factory or a parameter;
    empty for a direct constructor call).  ``members`` is set for a Sequential."""

    fqn: str
    args: tuple
    kwargs: tuple
    table: bool
    node: ast.expr
    via: str = ""
    members: "SeqGraph | None" = None  # for a Sequential: its members, in order
    conditional: bool = False  # one branch of ``a if c else b``
    # Why calling the layer is not exactly ``fqn``'s computation although it is one of its kind
    # (a same-file subclass whose forward casts dtypes around it, a library look-alike): a
    # rule may report it, a fix must not assume the plain layer ("" when it is exactly that).
    unlike: str = ""
    # A torch activation function held as a value (``self.act = F.gelu``, ``activation=F.relu``
    # as a default): called like a layer, it computes that function; ``fqn`` is the function's.
    function: bool = False
    # A dropout module of this file that is not nn.Dropout (formulas.dropout_wrapper): the
    # attribute holding its rate, which a fused call reads instead of nn.Dropout's ``p``
    rate: str = ""


@dataclass(frozen=True)
class LayerClass:
    """A callable that builds a layer: a class (``nn.BatchNorm2d``) or a partial of one."""

    fqn: str
    args: tuple = ()
    kwargs: tuple = ()
    unlike: str = ""  # as Built.unlike, for the layers it builds
    foreign: bool = False  # defined in another module: ``args`` are not this file's expressions


@dataclass(frozen=True)
class Key:
    """A string known where the code runs (a literal, a parameter's string default): what a
    factory is called with to choose a layer by name (``get_norm_layer("batchnorm2d")``).  The
    factory's own code says what it does with it: string methods on it are computed
    (``name.lower().replace("_", "")``), a same-file (or sibling-module) table looked up with it
    gives that entry, and an ``if`` whose test it decides (``isinstance(name, str)``, ``name is
    None``, ``name == "bn"``) runs its one branch.  No layer itself."""

    value: str  # (None: a parameter holding None wherever the file builds it, LayerTyper._none_where_built)
    # a parameter's default: the key when the caller passes none, another one otherwise (the
    # key is chosen at run time: ``if``s are not decided by it, a table gives its entry and,
    # conditionally, every other)
    default: bool = False

    @property
    def fqn(self) -> str:  # (for _unique)
        return ("\0default:" if self.default else "\0key:") + str(self.value)


# String methods computed on a known key: pure, with constant arguments.
# dict reads of a function's ``**kwargs`` with a default (``kwargs.get(key, default)``)
_KWARGS_READS = frozenset({"get", "pop"})
# nn.Module methods that move or cast the module in place and return it (``nn.Linear(d, h).to(dtype)``,
# ``.cuda()``, ``.half()``): called on a layer just built, the value is that layer
_MODULE_SELF_METHODS = frozenset({"to", "cuda", "cpu", "half", "float", "double", "bfloat16", "train", "eval",
                                  "requires_grad_", "to_empty"})
STR_METHODS = frozenset({"lower", "upper", "casefold", "strip", "lstrip", "rstrip", "replace", "split", "rsplit",
                         "removeprefix", "removesuffix", "title", "capitalize"})
# Types a string is not an instance of (``isinstance(key, T)`` is False for all of them).
NOT_STR_TYPES = frozenset({"int", "float", "bool", "bytes", "list", "tuple", "dict", "set", "type", "callable",
                           "types.FunctionType", "types.MethodType", "types.LambdaType", "functools.partial",
                           "torch.nn.Module", "typing.Callable", "collections.abc.Callable"})


@dataclass
class SeqGraph:
    """The members of a Sequential in the order they are put together: ``edges`` join
    members that run one right after the other on some way through the building code."""

    members: list = field(default_factory=list)  # (tuple[Built, ...], member expression)
    edges: set = field(default_factory=set)  # (i, j); -1 is the start
    frontier: set = field(default_factory=lambda: {-1})
    ends: set = field(default_factory=set)
    # members put in as ``(name, layer)`` pairs (a list for ``OrderedDict(list)``) and as
    # plain layers (a list for ``*list``): a list of pairs is no list of layers, nor the reverse
    named: int = 0
    unnamed: int = 0

    def add(self, built: tuple, expr: ast.expr, named: bool = False) -> None:
        index = len(self.members)
        if named:
            self.named += 1
        else:
            self.unnamed += 1
        self.members.append((built, expr))
        for before in self.frontier:
            self.edges.add((before, index))
        self.frontier = {index}

    def extend(self, other: "SeqGraph") -> None:
        if other is self:  # nn.Sequential(*layers, *layers)
            other = other.copy()
        offset = len(self.members)
        self.members.extend(other.members)
        self.named += other.named
        self.unnamed += other.unnamed
        for a, b in other.edges:
            if a == -1:
                for before in self.frontier:
                    self.edges.add((before, b + offset))
            else:
                self.edges.add((a + offset, b + offset))
        ends = {i + offset for i in other.frontier if i != -1}
        self.frontier = ends | (self.frontier if -1 in other.frontier else set())

    def either(self, other: "SeqGraph") -> "SeqGraph":
        """The graph of a list built as this one on some ways and as ``other`` on the others."""
        graph = self.copy()
        offset = len(graph.members)
        graph.members.extend(other.members)
        graph.edges |= {(a if a == -1 else a + offset, b + offset) for a, b in other.edges}
        graph.frontier |= {i if i == -1 else i + offset for i in other.frontier}
        graph.named += other.named
        graph.unnamed += other.unnamed
        return graph

    def forget(self, index: int | None) -> bool:
        """``layers[index] = value``: every member that may sit at ``index`` (a constant: 0, 1,
        ... from the start on some way through the building code, -1 at the end) is no longer
        known (the value put there is another layer on some ways only).  False when the index
        is not one this can follow (the caller then forgets the whole list)."""
        if index is None or index < -1:
            return False
        if index == -1:
            at = {i for i in self.frontier if i != -1}
        else:
            at = {-1}
            for _ in range(index + 1):
                at = {j for i, j in self.edges if i in at}
        for i in at:
            self.members[i] = ((), self.members[i][1])
        return True

    def copy(self) -> "SeqGraph":
        return SeqGraph(list(self.members), set(self.edges), set(self.frontier), set(self.ends), self.named,
                        self.unnamed)


@dataclass(frozen=True)
class SequentialSite:
    """One ``nn.Sequential(...)`` construction: where (``call``, the statement ``stmt``) and
    its members in order (``graph``)."""

    call: ast.expr
    stmt: ast.stmt
    graph: SeqGraph
    # ``super().__init__(...)`` of a same-file subclass: the base naming nn.Sequential
    base: ast.expr | None = None
    # Why the container's class cannot be changed to fold its members ("" when it can): a
    # call of an nn.Sequential subclass that runs its members in order but adds to nn.Sequential
    unlike: str = ""

    @property
    def container(self) -> ast.expr:
        """The expression naming the container's class (see ``Ctor.container``)."""
        return self.base if self.base is not None else self.call.func


def _returns_own_call_only(forward) -> bool:
    """Is ``forward``'s whole body (a docstring aside) ``return self.<attr>(<its input>)``?"""
    body = [s for s in forward.body if not (s.__class__ is ast.Expr and s.value.__class__ is ast.Constant)]
    if len(body) != 1 or body[0].__class__ is not ast.Return or len(forward.args.args) != 2:
        return False
    value = body[0].value
    return (value.__class__ is ast.Call and len(value.args) == 1 and value.args[0].__class__ is ast.Name
            and value.args[0].id == forward.args.args[1].arg)


def _module_only(names: ModuleNames, fqn: str) -> bool:
    """Is ``fqn`` a class of this file deriving ``nn.Module`` alone (a module that computes
    something written out, not a subclass of a torch layer)?"""
    cls = names.classes.get(fqn)
    return cls is not None and bool(cls.bases) and all(
        names.resolve(base) in ("torch.nn.Module", "torch.nn.modules.module.Module") for base in cls.bases)


def _branch_statements(body: list):
    """The statements of ``body`` and of the branches of its ``if`` statements, nested ones
    too (not of loops or definitions)."""
    stack = list(body)
    while stack:
        stmt = stack.pop()
        yield stmt
        if stmt.__class__ is ast.If:
            stack.extend(stmt.body)
            stack.extend(stmt.orelse)


def _is_layer_class_name(fqn: str) -> bool:
    last = fqn.rsplit(".", 1)[-1]
    return bool(last[:1].isupper()) and (fqn.startswith("torch.nn.") or "." in fqn or last == fqn)


# ``self.<attr>`` followed by a comma or a closing parenthesis (an argument passed on), its
# attribute name captured: what LayerTyper.calls_attr's per-attribute search needs to find.
_SELF_ATTR_PASSED = re.compile(r"\bself\.(\w+)\s*[,)]")
# LayerTyper._kinds key: the file's functions that call one of their parameters (calls_attr)
_PARAM_CALLERS = ("param callers",)
_TOP_TEXTS = ("top-level texts",)  # (statement, its text) for the file's statements (LayerTyper._mentioning)
_DECORATED = frozenset({ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef})
_CONV_OUTPUT = frozenset({"torch.nn.Conv2d"})  # a module's container output read by _output_kind
_MODULE_CODE = ("module code",)  # LayerTyper._kinds key: the module-level code as a function (_module_code)
_FILE_TEXT = ("file text",)  # the file's lines joined (LayerTyper._file_text)
_BATCH_NORM_TEXT = ("file text mentions BatchNorm",)  # LayerTyper._input_kind's text test, once per file
_AXIS_MOVE_TEXT = ("file text moves an axis",)  # LayerTyper._moved_norm_kind's text test, once per file
_WORD_ONLY = re.compile(r"\w+")


class LayerTyper:
    """Types layer-valued expressions of one file (cached per function)."""

    # _walk takes what a hook typed for ``self.<attr> = <value>`` (tests turn it off to compare)
    reuse_typed = True

    def __init__(self, names: ModuleNames, tree: ast.Module | None = None, mention=None, package=None):
        self.names = names
        self.package = package  # siblings.Package: the modules of the file's own package
        # does the file import a library structure/library_layers describes (torchvision)?
        self.library = library_layers.imported(names.imports)
        self.module = None  # this module's dotted name when it is such a sibling
        self.tree = tree
        self._indexed_only: dict[tuple, bool] = {}  # (comprehension, list name) -> read only by index
        self._tree_functions: list | None = None  # the tree's function definitions (_function_holding)
        self.mention = mention  # function node -> the identifiers in its text (a cheap prefilter)
        self.lines = None  # the file's lines, when known (cheap text prefilters)
        self.text = None  # the text ``lines`` is the split of (``"\n".join(lines)``), when known
        self.path = None  # where the file lies, when known (bindings._passed_in reads its folder)
        # function name -> the GELU variant it computes, for a sibling module (siblings.sibling_gelu)
        self.gelu_functions: dict[str, str | None] = {}
        # function name -> whether it returns a tensor as it is, for a sibling module
        # (siblings.sibling_passes_through)
        self.pass_throughs: dict[str, bool] = {}
        # function name -> (its def, its dtype) when it is a softmax, for a sibling module
        # (siblings.sibling_softmax)
        self.softmax_functions: dict[str, tuple | None] = {}
        # (as a sibling module: its dict literals of callables by name, siblings.sibling_table)
        self.tables: dict[str, tuple | None] = {}
        self._returns: dict[str, tuple] = {}
        self._callers: dict[str, list] | None = None
        self._busy: set = set()
        self._list_builders: dict = {}  # (helper, position) -> its list-builder rewrite or None
        self.sites: list[SequentialSite] = []
        self._site_keys: set = set()
        # the call a base class's __init__ is walked for (instantiate_base): its sites are that
        # caller's, recorded beside the base's own
        self._instance: tuple | None = None
        self._param_cache: dict = {}
        # while a parameter's callers are looked up: may module-level calls count (required)?
        self._module_calls: bool | None = None
        self._kinds: dict = {}  # class FQN -> what _kind_of says
        self._written: dict[str, bool] = {}  # module-level name -> changed in place (_module_table)
        self._sibling_dicts: dict = {}  # FQN -> (typer, dict literal) of a sibling module's table, or None
        self._instantiators: dict = {}  # class name -> reads a tuple entry (instantiating_table), or None
        self._dropout_wrappers: dict = {}  # class FQN -> formulas.dropout_wrapper's reading
        self._softmax_modules: dict = {}  # class FQN -> formulas.softmax_module's reading
        self._setting_norms: dict = {}  # class FQN -> setting_norm.setting_norm_module's reading
        self._setting_acts: dict = {}  # class FQN -> setting_norm.setting_activation_module's reading
        self._class_attrs: dict = {}  # class name -> its body's dotted-name bindings (_class_layer)
        self._lambda_defs: dict = {}  # module-level lambda's name -> it as a function (_lambda_def)
        # registry attribute -> what _read_registry read (None key: the text; None: not searched)
        self._registries: dict | None = None
        self.class_envs: dict = {}
        # how many parameters a read resolved in the env it was given (values: the one write a
        # read makes to that env), and what a hook typed for the statement _walk is at
        # (bindings' ``__init__`` hook: (value, env, its values, ``resolved`` then), or None):
        # _walk takes that answer instead of typing the same value in the same env again
        self.resolved = 0
        self.typed: tuple | None = None
        self._in_init: set = set()  # _init_env keys whose __init__ is being walked
        self._cut = 0  # how many reads of such an __init__'s env were cut short

    # ------------------------------------------------------------------ expressions
    def values(self, expr: ast.expr, env: dict, depth: int = 0, called: bool = False) -> tuple:
        """The layers or layer classes ``expr`` may stand for (empty: unknown).  What the
        file's callers pass for a parameter is only looked up when it is ``called`` (built
        into a layer): most parameters (``config``) never are, and the lookup walks the file."""
        kind = expr.__class__  # (one read for the dispatch below: no node type here has a subclass)
        if kind is ast.IfExp:
            if expr.test.__class__ is ast.Compare and (expr.body.__class__ is ast.Call
                                                       or expr.orelse.__class__ is ast.Call):
                # nn.Identity() if act is None else ACT2CLS[act](), act a parameter that defaults
                # to None and that no call of the file sets: only the layer built when it is None
                # (a branch builds one: sizes and flags chosen the same way are not walked for it)
                taken = self._none_branch(expr, env)
                if taken is None:
                    taken = self._built_key_branch(expr, env)
                if taken is not None:
                    return self.values(taken, env, depth, called)
            both = self.values(expr.body, env, depth, called) + self.values(expr.orelse, env, depth, called)
            return tuple(replace(v, conditional=True) if isinstance(v, Built) else v for v in both)
        if kind is ast.BoolOp and expr.op.__class__ is ast.Or:
            # norm_layer = norm_layer or nn.BatchNorm2d: either operand.
            return _unique(sum((self.values(v, env, depth, called) for v in expr.values), ()))
        if kind is ast.Name:
            if expr.id in env:
                value = env[expr.id]
                if isinstance(value, _Param):
                    if not called:
                        return value.default
                    value = env[expr.id] = value.resolve(self)
                    self.resolved += 1
                return value
            if expr.id in self.names.partials and depth < MAX_DEPTH:
                # Linear = partial(nn.Linear, bias=False) at module level: that partial
                return self.values(self.names.partials[expr.id], {}, depth + 1, called)
            if expr.id in self.names.choices and depth < MAX_DEPTH:
                # GELU = nn.GELU if hasattr(nn, "GELU") else GELU_ at module level: either class
                return self.values(self.names.choices[expr.id], {}, depth + 1, called)
            return self._class_of(expr)
        if kind is ast.Attribute:
            if expr.value.__class__ is ast.Name and expr.value.id == "self":
                value = env.get("self." + expr.attr, ())
                if isinstance(value, _Param):
                    return value.resolve(self) if called else value.default
                if not value and "__class__" in env:
                    held = self._class_layer(expr.attr, env) if depth < MAX_DEPTH else None
                    if held is not None:
                        # conv = nn.Conv2d in the class body, built as self.conv(...): that class
                        value = self.values(held, {}, depth + 1, called)
                        if value:
                            return value
                    return self._own_function(expr, env)
                return value
            if (expr.value.__class__ is ast.Attribute and expr.value.value.__class__ is ast.Name
                    and expr.value.value.id == "self" and depth < MAX_DEPTH and self.library):
                # nn.Sequential(self.backbone.conv1, self.backbone.bn1, ...) with self.backbone a
                # described library class's instance
                held = env.get("self." + expr.value.attr, ())
                if held.__class__ is tuple and len(held) == 1 \
                        and not library_layers.holder_changed(self._class_text(env), "self." + expr.value.attr, expr.attr):
                    member = self._held_member(held[0], expr, depth)
                    if member:
                        return member
            if expr.value.__class__ is ast.Name and INSTANCE + expr.value.id in env and depth < MAX_DEPTH:
                # backbone = Backbone(); self.stem_conv = backbone.conv1: the layer the same-file
                # module class's __init__ binds to self.conv1
                owner = self._instance_class(env[INSTANCE + expr.value.id])
                if owner is None:
                    # net = torchvision.models.resnet50(): the described class's member
                    built = self.values(env[INSTANCE + expr.value.id], env, depth + 1)
                    if len(built) == 1 and built[0].__class__ is Built \
                            and built[0].fqn.startswith(library_layers.PREFIXES) \
                            and not library_layers.holder_changed(self._class_text(env), expr.value.id, expr.attr):
                        return self._held_member(built[0], expr, depth)
                if owner is not None:
                    value = self._init_env(owner, depth + 1).get("self." + expr.attr, ())
                    if isinstance(value, _Param):
                        return value.resolve(self) if called else value.default
                    return value
            if expr.value.__class__ is ast.Name and depth < MAX_DEPTH \
                    and isinstance(env.get(expr.value.id), _Param):
                # cfg.norm_layer, cfg a parameter typed with a same-file config record
                found = self._config_field(env[expr.value.id], expr.attr, depth, called)
                if found:
                    return found
            return self._class_of(expr)
        if kind is ast.Subscript:
            if expr.value.__class__ is ast.Call:
                return self._split_item(expr, env, depth)  # name.split("-")[0]
            held = _param_item(expr, env)
            if held is not None:
                # layers[0], layers a parameter: the item every caller's list holds there
                return held.resolve(self) if called else ()
            fqn = self.names.resolve(expr.value)
            if fqn is not None and self.package is not None and self.package.owns(fqn) \
                    and self._sibling_dict(expr.value, fqn) is not None:
                # ACT2FN[hidden_act], ACT2FN a dict literal of another module of the package: its
                # entries, read as a table of this file is (_table), whatever the dict is named
                return self._table(expr, env, depth, called)
            if fqn is not None and fqn.rsplit(".", 1)[-1] in TABLE_SUFFIXES:
                keys = self._decided_keys(expr.slice, env)
                if not keys and isinstance(expr.slice, ast.IfExp):
                    # ACT2FN["swish" if ext else "relu"]: the key is one of the branches' literals
                    keys = _literal_choices(expr.slice)
                if keys:
                    # ACT2FN[activation] with activation="relu" that no call in the file changes
                    return tuple(Built(fqn, (ast.copy_location(ast.Constant(k), expr.slice),), (), True, expr,
                                       conditional=len(keys) > 1) for k in keys)
                return (Built(fqn, (expr.slice,), (), True, expr),)
            if expr.value.__class__ is ast.Name and ELEMENTS + expr.value.id in env:
                item = self._comprehension_item(expr, env, depth, called)
                if item:
                    return item
            return self._table(expr, env, depth, called)
        if kind is ast.Call:
            return self._call(expr, env, depth)
        if kind is ast.Constant:
            return (Key(expr.value),) if isinstance(expr.value, str) else ()
        if kind is ast.Lambda and expr.body.__class__ is ast.Call and depth < MAX_DEPTH:
            # lambda c: nn.BatchNorm2d(c, eps=eps): a callable building that layer (its
            # arguments are the lambda's: none is kept)
            params = {a.arg for a in _lambda_params(expr)}
            inner = {k: v for k, v in env.items() if k not in params}
            out = []
            for b in self.values(expr.body, inner, depth + 1):
                if b.__class__ is not Built or b.members is not None or b.fqn == SEQUENTIAL:
                    continue
                if not b.table:
                    out.append(LayerClass(b.fqn, (), (), b.unlike, True))
                elif b.via == "getattr" and b.fqn == "torch.nn" and len(b.args) == 1 \
                        and not any(n.__class__ is ast.Name and n.id in params for n in ast_walk(b.args[0])):
                    # lambda n: getattr(nn, activation)(), the key a name of the enclosing code:
                    # the torch.nn class that run-time string names, as getattr(nn, key) held
                    out.append(LayerClass(GETATTR_NN, b.args, (), b.unlike))
            return tuple(out)
        return ()

    def _comprehension_item(self, expr: ast.Subscript, env: dict, depth: int, called: bool) -> tuple:
        """``acts[i]`` of ``acts = [get_activation(name) for _ in range(n)]`` built in this
        function: every item is the element's value (the element names no variable of the
        comprehension), or what a later item store put there (``acts[-1] = out_act``: either, so
        only a run-time index reads it: at a literal index which one is not read here).  Empty
        when the list is not such a comprehension or a change of it is not known."""
        spec = env[ELEMENTS + expr.value.id]
        comp = spec[0]
        if spec[1] is not None or comp.__class__ is not ast.ListComp or len(comp.generators) != 1 \
                or depth >= MAX_DEPTH:
            return ()
        bound = {n.id for n in ast_walk(comp.generators[0].target) if n.__class__ is ast.Name}
        if any(n.__class__ is ast.Name and n.id in bound for n in ast_walk(comp.elt)):
            return ()
        if not self._only_indexed(comp, expr.value.id):
            return ()
        stored = env.get(ITEMS + expr.value.id, ())
        if stored and (None in stored or expr.slice.__class__ is ast.Constant):
            return ()
        out = self.values(comp.elt, env, depth + 1, called)
        if not out:
            return ()
        for values in stored:
            out += values
        return _unique(out)

    def _only_indexed(self, comp: ast.ListComp, name: str) -> bool:
        """Is list ``name`` (built by ``comp``) read only as ``name[i]`` or ``len(name)`` in the
        function that builds it?  Any other read (``same = name``, ``to_relu(name)``) may
        change its items where the item stores recorded here do not see it."""
        key = (id(comp), name)
        known = self._indexed_only.get(key)
        if known is None:
            if self._tree_functions is None:
                self._tree_functions = _functions_of(self.tree)
            func = _function_holding(self._tree_functions, comp)
            known = func is not None and _read_only_indexed(func, name)
            self._indexed_only[key] = known
        return known

    def _item_store(self, name: str, value: ast.expr, env: dict, depth: int) -> None:
        """Record ``acts[k] = value`` for a list built by a comprehension (:meth:`_comprehension_item`):
        the values stored there, None when they are not known (or the list is not one)."""
        comp = env[ELEMENTS + name][0]
        if comp.__class__ is not ast.ListComp:
            env[ITEMS + name] = (None,)  # layers[k] = ... of a display: its items are not the built ones
            return
        values = self.values(value, env, depth, called=True) if depth < MAX_DEPTH else ()
        env[ITEMS + name] = env.get(ITEMS + name, ()) + ((values or None),)

    def _config_field(self, param: "_Param", attr: str, depth: int, called: bool) -> tuple:
        """``cfg.norm_layer`` where ``cfg`` is a parameter annotated with a same-file dataclass or
        ``NamedTuple`` whose field ``norm_layer`` has a default (``norm_layer: Callable =
        nn.BatchNorm2d``): the record's generated constructor takes its fields as parameters, so
        the field reads as a parameter written with that default would, and, once built into a
        layer, also as what the file's constructions of the record pass for it.  Empty when the
        annotation is not such a record, the field has no default, or the class assigns it again
        (``__post_init__``)."""
        func = param.func
        arg = next((a for a in (*func.args.posonlyargs, *func.args.args, *func.args.kwonlyargs)
                    if a.arg == param.name), None)
        annotation = arg.annotation if arg is not None else None
        if annotation.__class__ is ast.Constant and isinstance(annotation.value, str):
            name = annotation.value  # a forward reference: cfg: "StageConfig"
        elif annotation.__class__ is ast.Name:
            name = annotation.id
        else:
            return ()
        cls = self.names.classes.get(name)
        if cls is None or not self._record_class(cls):
            return ()
        fields = [item for item in cls.body if item.__class__ is ast.AnnAssign and item.target.__class__ is ast.Name
                  and "ClassVar" not in ast.unparse(item.annotation)]
        wanted = next((item for item in fields if item.target.id == attr), None)
        if wanted is None:
            return ()
        default = _field_default(wanted.value, self.names)
        if default is None or any(node.__class__ is ast.Attribute and node.attr == attr
                                  and node.ctx.__class__ is ast.Store for node in ast_walk(cls)):
            return ()
        # the constructor's parameters: the fields ``field(init=False)`` leaves out, in order
        taken = [item for item in fields if not _not_init(item.value, self.names)]
        index = next((i for i, item in enumerate(taken) if item is wanted), None)
        own = _default_of(param)
        if own is not None and not (own.__class__ is ast.Constant and own.value is None):
            # cfg: Cfg = Cfg(norm_layer=nn.InstanceNorm2d): the record the module reads by
            # default is that construction, which may pass the field; any other default: unknown
            if not (own.__class__ is ast.Call and own.func.__class__ is ast.Name and own.func.id == name
                    and name not in self.names.imports):
                return ()
            if any(a.__class__ is ast.Starred for a in own.args) or any(kw.arg is None for kw in own.keywords):
                return ()  # Cfg(*args), Cfg(**options): what it passes is unknown
            passed = _passed(own, index, attr, None, True) if index is not None else None
            if passed is not None:
                default = passed
        out = self.values(default, {}, depth + 1)
        if called:
            for call, caller, caller_owner in self.callers(name):
                passed = _passed(call, index, attr, None, True) if index is not None else None
                if passed is None:
                    continue
                caller_env = {}
                if passed.__class__ in (ast.Name, ast.Attribute) and caller is not None:
                    caller_env = self._caller_env(passed, caller, caller_owner, depth)
                out += self.values(passed, caller_env, depth + 1, called=True)
        return _unique(out)

    def _record_class(self, cls: ast.ClassDef) -> bool:
        """Is ``cls`` a dataclass (``@dataclass``, ``@dataclass(...)``) or a ``typing.NamedTuple``:
        a record whose constructor takes its annotated fields in order?"""
        for deco in cls.decorator_list:
            target = deco.func if deco.__class__ is ast.Call else deco
            if self.names.resolve(target) == "dataclasses.dataclass":
                return True
        return any(self.names.resolve(base) == "typing.NamedTuple" for base in cls.bases)

    def _own_function(self, expr: ast.Attribute, env: dict) -> tuple:
        """``self.gelu`` held as a value (``{"gelu": self.gelu, "relu": F.relu}[act]``), where
        ``gelu`` is a method of the class whose body is the GELU formula: what calling it
        computes, as for a same-file function (:meth:`_class_of`)."""
        method = self._method(expr, env)
        if method is None or gelu_formula(method, self.names, method=True) is None:
            return ()
        why = (f"`{ast.unparse(expr)}` is a method held as a value, not a layer: the kernel takes a "
               f"layer module (and TorchScript cannot pass a function as a value)")
        return (Built("torch.nn.functional.gelu", (), (), False, expr, unlike=why, function=True),)

    def _class_text(self, env: dict) -> str | None:
        """The text of the same-file class whose method ``env`` walks, or of the module-level
        function it walks (``def backbone(): net = models.resnet50(); ... net.bn1``: a local
        holder lives in that function; None: unknown)."""
        cls = self.names.classes.get(env.get("__class__")) if self.lines is not None else None
        if not isinstance(cls, ast.ClassDef):
            cls = env.get(FUNCTION_TEXT) if self.lines is not None else None
            if cls is None:
                return None
        key = ("text", id(cls))
        text = self._kinds.get(key)
        if text is None:
            text = self._kinds[key] = "\n".join(self.lines[cls.lineno - 1:cls.end_lineno])
        return text

    def _held_member(self, held, expr: ast.Attribute, depth: int) -> tuple:
        """The layer ``expr`` (``<holder>.<attr>``) reaches when the holder is ``held``, one
        instance of a class :mod:`library_layers` describes: what its description binds to
        ``self.<attr>``, placed at ``expr`` (built by that library: reported, not fixed).
        Empty otherwise."""
        if held.__class__ is not Built or held.members is not None or not held.via:
            return ()  # (only what a described factory built: ``via`` its name)
        fqn = held.fqn
        if not fqn.startswith(library_layers.PREFIXES):
            return ()
        found = library_layers.find(fqn)
        if found is None or found[1] not in found[0].names.classes:
            return ()
        other, name = found
        value = other._init_env(name, depth + 1).get("self." + expr.attr, ())
        if value.__class__ is not tuple:
            return ()
        why = f"built by the constructor of {fqn} (a library class), not in this file"
        out = []
        for member in value:
            member = other._export(member) if member.__class__ in (Built, LayerClass) else None
            if member.__class__ is Built:
                out.append(Built(member.fqn, (), (), member.table, expr, unlike=member.unlike or why))
        return tuple(out)

    def _instance_class(self, call: ast.Call) -> str | None:
        """The same-file ``nn.Module`` class whose instance ``call`` returns, when there is one
        such class on every way: the class called by name, or what the same-file functions it
        reaches return (``model = build_resnet(...); return model``), also through a call that
        returns a function or a module-level dict of them (``get_backbone(name)(pretrain=True)``
        with ``return _backbones[name]``).  None when any way gives something else."""
        found = self._made(call.func, 0)
        if not found or len(found) != 1:
            return None
        owner = next(iter(found))
        cls = self.names.classes.get(owner)
        return owner if cls is not None and cls.bases else None

    def _made(self, func: ast.expr, depth: int) -> set | None:
        """The same-file classes calling ``func`` may build (None: unknown)."""
        if depth > MAX_DEPTH:
            return None
        if func.__class__ is ast.Name:
            if func.id in self.names.classes:
                return {func.id}
            fdef = self.names.functions.get(func.id)
            if fdef is None:
                return None
            found: set = set()
            for value in self._returned(fdef):
                if value.__class__ is not ast.Call:
                    return None
                more = self._made(value.func, depth + 1)
                if not more:
                    return None
                found |= more
            return found or None
        callables = self._callables(func, depth)
        if not callables:
            return None
        found = set()
        for each in callables:
            more = self._made(each, depth + 1)
            if not more:
                return None
            found |= more
        return found

    def _callables(self, expr: ast.expr, depth: int) -> list | None:
        """The same-file names ``expr`` (a call or a table entry) may stand for, when it gives
        a function or a class: ``_backbones[name]`` of a module-level dict, or what a same-file
        function returns (None: unknown)."""
        if expr.__class__ is ast.Subscript:
            table = self._module_table(expr.value.id) if expr.value.__class__ is ast.Name else None
            if table.__class__ is not ast.Dict or not table.values or not all(
                    v.__class__ is ast.Name for v in table.values):
                return None
            return list(table.values)
        if expr.__class__ is not ast.Call or expr.func.__class__ is not ast.Name or depth > MAX_DEPTH:
            return None
        fdef = self.names.functions.get(expr.func.id)
        if fdef is None:
            return None
        out = []
        for value in self._returned(fdef):
            if value.__class__ is ast.Name and (value.id in self.names.functions or value.id in self.names.classes):
                out.append(value)
                continue
            more = self._callables(value, depth + 1)
            if not more:
                return None
            out.extend(more)
        return out

    @staticmethod
    def _returned(fdef: ast.FunctionDef) -> list:
        """What ``fdef`` returns on each ``return``: the expression, or for a returned local name
        the values of its assignments in the function (empty when a return is bare, or a name
        returned is bound otherwise: unpacked, in a loop header, augmented)."""
        returns = []
        bound: dict = {}
        for node in ast_walk(fdef):
            if node.__class__ is ast.Return:
                if node.value is None:
                    return []
                returns.append(node.value)
            elif node.__class__ is ast.Assign:
                for target in node.targets:
                    if target.__class__ is ast.Name:
                        bound.setdefault(target.id, []).append(node.value)
                    else:
                        for name in ast_walk(target):
                            if name.__class__ is ast.Name:
                                bound.setdefault(name.id, []).append(None)
            elif node.__class__ in (ast.AugAssign, ast.AnnAssign, ast.For, ast.With, ast.NamedExpr):
                for name in ast_walk(node.target if node.__class__ is not ast.With else node):
                    if name.__class__ is ast.Name and name.ctx.__class__ is ast.Store:
                        bound.setdefault(name.id, []).append(None)
        out = []
        for value in returns:
            if value.__class__ is ast.Name and value.id in bound:
                if None in bound[value.id]:
                    return []
                out.extend(bound[value.id])
            else:
                out.append(value)
        return out

    def _table(self, expr: ast.Subscript, env: dict, depth: int, called: bool) -> tuple:
        """``ACTIVATIONS[act]`` with ``ACTIVATIONS = {"gelu": nn.GELU, ...}`` a dict of the file (or a
        dict literal subscripted in place): the entry a constant key names, else any entry (the
        key is chosen at run time, so each is a conditional value)."""
        table = self._table_source(expr.value, env)
        entries = self  # the module whose names the entries are written with
        if table is None and self.package is not None:
            sibling = self._sibling_dict(expr.value, self.names.resolve(expr.value))
            if sibling is not None:
                entries, table = sibling
        if (isinstance(table, ast.Call) and _is_name(table.func, "dict") and "dict" not in self.names.imports
                and not table.args and all(k.arg is not None for k in table.keywords)):
            # dict(batchnorm=BatchNormAct2d, ...): the same table
            table = ast.Dict(keys=[ast.Constant(k.arg) for k in table.keywords], values=[k.value for k in table.keywords])
        instantiated = None
        if table.__class__ is ast.Call:
            # ACT2FN = ClassInstantier(ACT2CLS): a dict whose item read builds the entry
            found = entries._instantiated(table)
            if found is not None and entries is self and (
                    expr.value.__class__ is not ast.Name or self._changed(expr.value.id)):
                found = None  # (``ACT2FN["gelu"] = ...`` in this file: not the literal's entries)
            if found is not None:
                if called:
                    return ()  # (the entry's instance called: not a layer built here)
                table, instantiated = found
                called = True
        if not isinstance(table, ast.Dict) or None in table.keys:
            return self._registry(expr, env, depth) if table is None and self.package is not None else ()
        if instantiated is not None:
            # each entry as the item read builds it: a (class, kwargs) pair's class
            table = ast.Dict(keys=table.keys, values=[
                v.elts[0] if instantiated and v.__class__ is ast.Tuple and v.elts else v for v in table.values])
        key = expr.slice
        # the entries are read without the function's names, but a method of the class an
        # entry names (``self.gelu``) is still the class's
        own = {"__class__": env["__class__"]} if "__class__" in env else {}
        known = self._known(key, env, depth, True)
        if known is not None and not any(default for _, default in known):
            # the entry each key the code may look up names (a key the table lacks fails there)
            out = []
            for wanted, _ in known:
                for k, v in zip(table.keys, table.values):
                    if isinstance(k, ast.Constant) and k.value == wanted:
                        out.extend(self._entry_values(entries, v, own, expr, depth, called))
                        break
            if instantiated is not None:
                out = _built_entries(out, expr, False)
            if len(known) > 1:
                out = [replace(value, conditional=True) if isinstance(value, Built) else value for value in out]
            return _unique(tuple(out))
        defaults = {wanted for wanted, _ in known or ()}
        out = []
        for k, v in zip(table.keys, table.values):
            # a parameter's default key: its entry, and (another key may be passed) any other
            chosen = isinstance(k, ast.Constant) and k.value in defaults and len(defaults) == 1
            found = self._entry_values(entries, v, own, expr, depth, called)
            if instantiated is not None:
                found = _built_entries(found, expr, not chosen)
            for value in found:
                out.append(replace(value, conditional=True) if isinstance(value, Built) and not chosen else value)
        return _unique(tuple(out))

    def _table_get(self, table: ast.expr, call: ast.Call, env: dict, depth: int) -> tuple:
        """``TABLE.get(key, default)`` with ``TABLE`` a dict of activations (as :meth:`_table`
        reads ``TABLE[key]``): the entries the key may name, and the default where the key
        may be one the table lacks (any key chosen at run time; a known key the table has
        never falls back).  Empty when ``TABLE`` is no such dict."""
        looked_up = ast.copy_location(ast.Subscript(value=table, slice=call.args[0], ctx=ast.Load()), call)
        out = self._table(looked_up, env, depth, False)
        if not out or len(call.args) == 1:
            return out
        known = self._known(call.args[0], env, depth)
        entries = self._dict_of(table, env)
        if known is not None and entries is not None and all(
                any(isinstance(k, ast.Constant) and k.value == wanted for k in entries.keys) for wanted in known):
            return out
        fallback = tuple(replace(v, conditional=True) if isinstance(v, Built) else v
                         for v in self.values(call.args[1], env, depth + 1))
        return _unique(out + fallback)

    def _entry_values(self, entries: "LayerTyper", value: ast.expr, own: dict, lookup: ast.Subscript,
                      depth: int, called: bool) -> tuple:
        """What a table entry holds: typed here for a table of this file; for one of a sibling
        module (``entries``), typed there and exported (_export), a layer it builds placed at
        the ``lookup`` in this file (its arguments are the other module's expressions: none is
        kept, as for a sibling factory's layers)."""
        if entries is self:
            return self.values(value, own, depth + 1, called)
        out = []
        for found in entries.values(value, {}, depth + 1, called):
            found = entries._export(found)
            if isinstance(found, Built):
                out.append(Built(found.fqn, (), (), found.table, lookup, via=found.via, unlike=found.unlike,
                                 function=found.function))
            elif isinstance(found, LayerClass):
                out.append(found)
        return tuple(out)

    def _sibling_dict(self, table: ast.expr, fqn: str | None):
        """(the sibling module's typer, the dict literal) a table expression of this file names
        when it is a module-level dict literal of another module of the package, with literal
        keys, that neither that module nor this file changes in place (written_in_place):
        basicts' ``from .activations import ACT2FN``, ``ACT2FN = {"relu": nn.ReLU(), "gelu":
        nn.GELU(), ...}``.  None for anything else, and where a module of the package (this file,
        the defining one, any other) changes it or holds it under another name
        (siblings.changed_in_package); worked out once per name."""
        if fqn is None or table.__class__ is not ast.Name or not self.package.owns(fqn):
            return None
        cache = self._sibling_dicts
        if fqn in cache:
            return cache[fqn]
        cache[fqn] = None
        module, _, name = fqn.rpartition(".")
        other = self.package.typer(module)
        for _ in range(3):  # re-exported: ``from .tables import ACT2FN`` in the package's __init__
            if other is None or name not in other.names.imports:
                break
            module, _, name = other.names.imports[name].rpartition(".")
            other = self.package.typer(module) if self.package.owns(f"{module}.{name}") else None
        if other is None or other is self:
            return None
        value = other._module_table(name)
        held = other._instantiated(value) if value.__class__ is ast.Call else None
        if held is not None and held[0].__class__ is ast.Dict:
            # ACT2FN = ClassInstantier(ACT2CLS) there: the dict it holds, neither changed
            source = other._instantiated_source(value)
            if source is not None and changed_in_package(self.package, source, held=False):
                return None
            checked = held[0]
        else:
            checked = value
        if checked.__class__ is not ast.Dict or not checked.keys \
                or not all(k is not None and k.__class__ is ast.Constant for k in checked.keys):
            return None
        text = self._file_text() if self.lines is not None else getattr(self, "source", None)
        if text is None or written_in_place(table.id, text) or held_whole(table.id, text) \
                or changed_in_package(self.package, name):
            return None
        cache[fqn] = (other, value)
        return cache[fqn]

    def _instantiated(self, value: ast.expr) -> tuple | None:
        """(the dict literal, whether a tuple entry is a (class, kwargs) pair) when ``value``
        builds an instance of a class of this file that derives from ``dict`` or
        ``OrderedDict`` alone and whose only method ``__getitem__`` reads the stored entry and
        returns it called (:func:`_instantiating_getitem`): ``ACT2FN =
        ClassInstantier(ACT2CLS)`` of an activation module, where ``ACT2FN[key]`` is
        ``ACT2CLS[key]()``.  The dict is a literal in place or a module-level literal the file
        does not change (_module_table).  None for anything else."""
        if value.__class__ is not ast.Call or value.func.__class__ is not ast.Name or len(value.args) != 1 \
                or value.keywords:
            return None
        name = value.func.id
        if name not in self._instantiators:
            cls = self.names.classes.get(name)
            self._instantiators[name] = None if cls is None else _instantiating_class(cls, self.names)
        pairs = self._instantiators[name]
        if pairs is None:
            return None
        arg = value.args[0]
        table = arg if arg.__class__ is ast.Dict else (
            self._module_table(arg.id) if arg.__class__ is ast.Name else None)
        if table.__class__ is not ast.Dict or None in table.keys:
            return None
        return table, pairs

    @staticmethod
    def _instantiated_source(value: ast.Call) -> str | None:
        """The module-level name an instantiating table (:meth:`_instantiated`) wraps, if any."""
        arg = value.args[0]
        return arg.id if arg.__class__ is ast.Name else None

    def _table_source(self, table: ast.expr, env: dict) -> ast.expr | None:
        """What a table expression names: the dict literal a local name was assigned in the
        function, a module constant's value (None for a name the file does not bind), or the
        value the class body assigns an attribute read through ``self`` (``self._ACT``: a table
        every instance shares); the expression itself otherwise."""
        if isinstance(table, ast.Name) and TABLE_OF + table.id in env:
            return env[TABLE_OF + table.id]  # a dict literal the function itself assigned
        if isinstance(table, ast.Name) and table.id not in env:
            return self._module_table(table.id)
        if (table.__class__ is ast.Attribute and table.value.__class__ is ast.Name and table.value.id == "self"
                and "self." + table.attr not in env):
            return self._class_constant(table.attr, env) or table
        return table

    def _changed(self, name: str) -> bool:
        """Does the file change the module-level container ``name`` in place (an item store,
        ``update``, ``del``: literals.written_in_place)?  Worked out once per name."""
        written = self._written.get(name)
        if written is None:
            text = self._file_text() if self.lines is not None else getattr(self, "source", None)
            written = self._written[name] = text is not None and written_in_place(name, text)
        return written

    def _module_table(self, name: str) -> ast.expr | None:
        """The value a module-level ``name`` is bound to, as a table's entries are read from it:
        None where the file changes that container after binding it (an item store, ``update``,
        ``del``: literals.written_in_place), since the literal is then not what a later read
        finds.  Worked out once per name; with no text known, the binding as it is."""
        value = self.names.constants.get(name)
        if value is None or value.__class__ not in (ast.Dict, ast.List):
            return value
        written = self._written.get(name)
        if written is None:
            text = self._file_text() if self.lines is not None else getattr(self, "source", None)
            written = self._written[name] = text is not None and written_in_place(name, text)
        return None if written else value

    def _dict_of(self, table: ast.expr, env: dict) -> ast.Dict | None:
        """The dict literal a table expression names (:meth:`_table_source`), else None."""
        table = self._table_source(table, env)
        return table if isinstance(table, ast.Dict) and None not in table.keys else None

    def _class_layer(self, attr: str, env: dict) -> ast.expr | None:
        """The dotted name a class body binds ``attr`` to (``conv = nn.Conv2d``, ``norm_layer =
        nn.BatchNorm2d``), read for ``self.<attr>`` in a method of the class of ``env``: its own
        body first, then its same-file bases (one base each).  None when that is not certain: a
        method of one of these classes stores ``.<attr>``, a body binds it more than once or to
        anything but a dotted name, or a same-file class deriving from the class of ``env`` binds
        it in its own body (this code then runs with another class too)."""
        owner = env["__class__"]
        table = self._class_attrs.get(owner) if owner.__class__ is str else None
        if table is None:
            if owner.__class__ is not str or owner not in self.names.classes:
                return None
            table = self._class_attrs[owner] = self._class_table(owner)
        found = table.get(attr)
        if found is None or found[1]:
            return None if found is None else found[0]
        # first read of this name: a store of ``.<attr>`` in a method of one of the classes
        # (``self.conv = ...``) makes it the instance's, not the class's
        for cls in found[2]:
            for node in ast_walk(cls):
                if node.__class__ is ast.Attribute and node.attr == attr and node.ctx.__class__ is not ast.Load:
                    table[attr] = None
                    return None
        table[attr] = (found[0], True, ())
        return found[0]

    def _class_table(self, owner: str) -> dict:
        """attr -> (dotted name, checked, the classes whose methods may store it), for
        :meth:`_class_layer` (computed once per class; the stores are looked for on first read)."""
        chain = []
        cls = self.names.classes.get(owner)
        while cls is not None and cls not in chain and len(chain) <= MAX_DEPTH:
            chain.append(cls)
            bases = [b for b in cls.bases if b.__class__ is ast.Name and b.id in self.names.classes]
            cls = self.names.classes[bases[0].id] if len(bases) == 1 else None
        table: dict = {}
        for cls in reversed(chain):  # a subclass's binding replaces its base's
            counts: dict = {}
            for item in cls.body:
                if item.__class__ is ast.Assign:
                    targets = item.targets
                elif item.__class__ is ast.AnnAssign and item.value is not None:
                    targets = [item.target]
                elif item.__class__ is ast.ClassDef and f"{cls.name}.{item.name}" in self.names.classes:
                    # a class defined in the body (``self.Block(...)``): the file's class under
                    # its qualified name (names._member_classes)
                    counts[item.name] = counts.get(item.name, 0) + 1
                    table[item.name] = ast.copy_location(ast.Attribute(
                        value=ast.Name(id=cls.name, ctx=ast.Load()), attr=item.name, ctx=ast.Load()), item)
                    continue
                else:
                    continue
                value = item.value
                if value.__class__ is ast.Name and f"{cls.name}.{value.id}" in self.names.classes:
                    # ``block_cls = Block`` of a class defined in this body: that class
                    value = ast.copy_location(ast.Attribute(
                        value=ast.Name(id=cls.name, ctx=ast.Load()), attr=value.id, ctx=ast.Load()), value)
                for target in targets:
                    if target.__class__ is ast.Name:
                        counts[target.id] = counts.get(target.id, 0) + 1
                        table[target.id] = value if value.__class__ in (ast.Name, ast.Attribute) else None
            for name, count in counts.items():
                if count > 1:
                    table[name] = None
        table = {k: (v, False, chain) for k, v in table.items() if v is not None}
        if not table:
            return table
        # a same-file class deriving from ``owner`` that binds the name again in its body
        derived = {owner}
        grew = True
        while grew and table:
            grew = False
            for name, cls in self.names.classes.items():
                if name in derived or not any(b.__class__ is ast.Name and b.id in derived for b in cls.bases):
                    continue
                derived.add(name)
                grew = True
                for item in cls.body:
                    targets = item.targets if item.__class__ is ast.Assign else [item.target] if (
                        item.__class__ is ast.AnnAssign) else []
                    for target in targets:
                        if target.__class__ is ast.Name:
                            table.pop(target.id, None)
        return table

    def _class_constant(self, attr: str, env: dict) -> ast.expr | None:
        """The value the class of ``env`` assigns ``attr`` in its own body (``_ACT = {...}``,
        also annotated), when it assigns it once there and no method assigns ``self.<attr>``."""
        cls = self.names.classes.get(env.get("__class__")) if isinstance(env.get("__class__"), str) else None
        if cls is None:
            return None
        value = class_body_value(cls, attr)
        if value is None:
            return None
        for node in ast_walk(cls):
            if (isinstance(node, ast.Attribute) and node.attr == attr and isinstance(node.ctx, ast.Store)):
                return None
        return value

    def _registry(self, expr: ast.Subscript, env: dict, depth: int) -> tuple:
        """``Act[name]`` with ``Act`` a registry object of another module of the package (see
        :meth:`siblings.Package.registered`): any class registered in it, each built where the
        code calls it (the key is chosen at run time: which class is not known here, so the
        layers it builds are reported, not rewritten)."""
        value = expr.value
        if depth >= MAX_DEPTH or not isinstance(value, (ast.Name, ast.Attribute)) or (
                isinstance(value, ast.Name) and value.id in env):
            return ()
        fqn = self.names.resolve(value)
        found = self.package.registered(fqn) if fqn is not None and self.package.owns(fqn) else None
        if found is None:
            return ()
        other, classes = found
        why = f"`{ast.unparse(expr)}` is a class looked up by a run-time key in the registry `{fqn}`"
        out = []
        for cls in classes:
            for layer in other.values(cls, {}, depth + 1):
                if isinstance(layer, LayerClass):
                    name = layer.fqn
                    if name.startswith("torch.nn.modules."):  # nn.modules.GELU is nn.GELU
                        name = "torch.nn." + name.rsplit(".", 1)[-1]
                    out.append(LayerClass(name, (), (), layer.unlike or why, True))
        return _unique(tuple(out))

    def _known(self, expr: ast.expr, env: dict, depth: int = 0, defaults: bool = False) -> tuple | None:
        """The strings ``expr`` may be where it runs (:class:`Key`), when it is one of them on
        every way there (None: not known).  A parameter's default is not known (callers may
        pass another) unless ``defaults``: then (string, is a default) pairs."""
        if isinstance(expr, ast.Constant):
            return None if not isinstance(expr.value, str) else ((expr.value, False),) if defaults else (expr.value,)
        if isinstance(expr, ast.Name):
            held = env.get(expr.id)
            if not isinstance(held, tuple) or not held or UNKNOWN + expr.id in env:
                return None
        elif not isinstance(expr, (ast.Call, ast.Subscript)):
            return None
        else:
            held = self.values(expr, env, depth)
        if not held or not all(isinstance(v, Key) for v in held):
            return None
        if defaults:
            return tuple((v.value, v.default) for v in held)
        if any(v.default for v in held):
            return None
        return tuple(v.value for v in held)

    def _fold(self, call: ast.Call, env: dict, depth: int) -> tuple | None:
        """``key.lower()``, ``key.replace("_", "")``, ``key.split("-")`` on a known key: each
        result (a tuple of strings for a split), or None when not computed here."""
        func = call.func
        if call.keywords or not all(isinstance(a, ast.Constant) for a in call.args):
            return None
        known = self._known(func.value, env, depth, defaults=True)
        if known is None:
            return None
        out = []
        for value, default in known:
            try:
                out.append((getattr(value, func.attr)(*(a.value for a in call.args)), default))
            except (TypeError, ValueError, AttributeError):
                return None
        return tuple(out)

    def _split_item(self, expr: ast.Subscript, env: dict, depth: int) -> tuple:
        """``key.split("-")[0]`` on a known key: the part it names."""
        call, index = expr.value, expr.slice
        if not (isinstance(call.func, ast.Attribute) and call.func.attr in ("split", "rsplit")
                and isinstance(index, ast.Constant) and type(index.value) is int):
            return ()
        parts = self._fold(call, env, depth)
        if parts is None:
            return ()
        try:
            return _unique(tuple(Key(p[index.value], default) for p, default in parts))
        except (IndexError, TypeError):
            return ()

    def _decide(self, test: ast.expr, env: dict):
        """True or False when known keys decide an ``if`` test on every way here
        (``isinstance(name, str)``, ``name is None``, ``not name``, ``name == "bn"``,
        ``name in ("bn", "batchnorm")``), else None."""
        if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
            decided = self._decide(test.operand, env)
            return None if decided is None else not decided
        if isinstance(test, ast.Name):
            if LITERAL + test.id in env:  # ``if bn:`` with the call passing ``bn=True``
                return bool(env[LITERAL + test.id])
            at = env.get(ELEMENT + test.id)
            if isinstance(at, ast.Constant):  # ``if batch_norm:`` with the caller's block giving None
                return bool(at.value)
            if at is not None:
                # the block gives a layer built there (no container: those have a length)
                held = env.get(test.id, ())
                if held and all(isinstance(v, Built) and not v.conditional and not v.table and v.members is None
                                and v.fqn.startswith("torch.nn.") and v.fqn not in CONTAINER_CLASSES for v in held):
                    return True
            known = self._known(test, env)
            return None if known is None else _same(bool(k) for k in known)
        if isinstance(test, ast.Call):
            if not (_is_name(test.func, "isinstance") and "isinstance" not in self.names.imports
                    and len(test.args) == 2 and not test.keywords):
                return None
            kinds = test.args[1].elts if isinstance(test.args[1], ast.Tuple) else [test.args[1]]
            if self._known(test.args[0], env) is None:
                # ``activation: str | Callable = F.relu`` then ``if isinstance(activation, str):``
                # a table: the string path runs only for a string the file never gives it
                if len(kinds) != 1 or not _is_name(kinds[0], "str"):
                    return None
                if self._never_str(test.args[0], env):
                    return False
                # ``activation="swish"`` that every call of the file leaves a string it decides
                # (_built_keys): the string path runs
                return True if self._built_keys(test.args[0], env) else None
            named = ["str" if _is_name(k, "str") else self.names.resolve(k) or getattr(k, "id", None) for k in kinds]
            if "str" in named:
                return True
            return False if all(n in NOT_STR_TYPES for n in named) else None
        if isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.left, ast.Name):
            op, right = test.ops[0], test.comparators[0]
            if not isinstance(op, (ast.Is, ast.IsNot, ast.Eq, ast.NotEq, ast.In, ast.NotIn)):
                return None
            known = self._known(test.left, env)
            if known is None:
                return None
            if isinstance(op, (ast.Is, ast.IsNot)):
                if not (isinstance(right, ast.Constant) and right.value is None):
                    return None
                # (a Key(None): a None-default parameter no construction sets, _none_where_built)
                decided = _same(k is None for k in known)
                return decided if decided is None or isinstance(op, ast.Is) else not decided
            if isinstance(op, (ast.Eq, ast.NotEq)):
                if not (isinstance(right, ast.Constant) and isinstance(right.value, str)):
                    return None
                decided = _same(k == right.value for k in known)
                return decided if decided is None or isinstance(op, ast.Eq) else not decided
            if not (isinstance(right, (ast.Tuple, ast.List, ast.Set))
                    and all(isinstance(e, ast.Constant) and isinstance(e.value, str) for e in right.elts)):
                return None
            options = {e.value for e in right.elts}
            decided = _same(k in options for k in known)
            return decided if decided is None or isinstance(op, ast.In) else not decided
        return None

    def _kind_of(self, fqn: str, depth: int = 0):
        """(torch layer, why it is not exactly that layer or "", constructor arguments alike)
        when ``fqn`` is a class that computes a torch layer's operation: a library look-alike
        (:data:`LOOK_ALIKES`), or a same-file subclass of the layer that does not override
        ``forward`` (exactly the layer) or whose ``forward`` returns the layer's computation on
        its own parameters wrapped in dtype casts (``F.linear(x, self.weight.to(x.dtype), ...)``,
        ``super().forward(x.float()).type(x.dtype)``: the same operation, reported, not fixed).
        None otherwise (a forward that computes something else is another layer)."""
        if fqn == SYNC_BATCH_NORM:
            return SYNC_BATCH_NORM_KIND
        if fqn in LAZY_LAYERS:
            return LAZY_LAYERS[fqn], "", False
        for name, (base, why) in LOOK_ALIKES.items():
            if names_match(name, fqn):
                return base, why, False
        if depth:
            return self._find_kind(fqn, depth)
        if fqn not in self._kinds:
            self._kinds[fqn] = self._find_kind(fqn, depth)
        return self._kinds[fqn]

    def _wrapper(self, fqn: str, call: ast.Call, env: dict, activation: bool = True) -> Built | None:
        """What a same-file module class of no other kind builds at ``call`` when it wraps one
        operation: a dropout (:meth:`_dropout_wrapper`), a softmax (:meth:`_softmax_module`), a norm
        or (``activation``: for this file's classes; a sibling's is decided by the checked file's
        typer, :meth:`_sibling_wrapper`) an activation its construction setting picks."""
        if fqn not in self._dropout_wrappers:  # (read once per class: most are neither)
            cls = self.names.classes[fqn]
            self._dropout_wrappers[fqn] = dropout_wrapper(cls, self.names)
            self._softmax_modules[fqn] = softmax_module(cls, self.names)
        if self._dropout_wrappers[fqn] is not None:
            return self._dropout_wrapper(fqn, call, env)
        if self._softmax_modules[fqn] is not None:
            return self._softmax_module(fqn, call, env)
        if fqn not in self._setting_norms:
            self._setting_norms[fqn] = setting_norm_module(self.names.classes[fqn], self.names)
            self._setting_acts[fqn] = setting_activation_module(self.names.classes[fqn], self.names)
        if self._setting_norms[fqn] is not None:
            return self._setting_norm(fqn, call, env)
        if activation and self._setting_acts[fqn] is not None:
            return self._setting_activation(self, fqn, call, env)
        return None

    def _setting_norm(self, fqn: str, call: ast.Call, env: dict) -> Built | None:
        """The torch norm a same-file norm module runs on its input when ``call`` builds it with
        a setting whose value the file decides (setting_norm: ognn's ``GraphNorm(c, norm_type)``
        running ``nn.BatchNorm1d`` under ``norm_type == "batch_norm"``): the literal passed, or a
        parameter's decided values (:meth:`_decided_keys`), else that parameter's string default.
        Reported, not fixed: the norm is the module's member, behind its own forward."""
        reading = self._setting_norms[fqn]
        init = next(i for i in self.names.classes[fqn].body if i.__class__ is ast.FunctionDef
                    and i.name == "__init__")
        passed = passed_argument(init, call, reading.param)
        if passed is False:
            return None
        values = self._setting_values(passed if passed is not None else reading.default, env)
        norm = reading.norm(values) if values else None
        if norm is None:
            return None
        name = fqn.rsplit(".", 1)[-1]
        return Built(norm, (), (), False, call, via=name, unlike=(
            f"`{name}` is a module of the package running its {norm.rsplit('.', 1)[-1]} member on its input under "
            f"the setting it is built with: the kernel would take over that member behind the module's forward"))

    def _setting_values(self, expr: ast.expr | None, env: dict) -> tuple | None:
        """The strings a construction's setting holds (:meth:`_setting_norm`); None when the
        file does not decide them."""
        if expr.__class__ is ast.Constant:
            return (expr.value,) if isinstance(expr.value, str) else None
        if expr.__class__ is not ast.Name:
            return None
        if LITERAL + expr.id in env:
            value = env[LITERAL + expr.id]
            return (value,) if isinstance(value, str) else None
        decided = self._decided_keys(expr, env)
        if decided is not None:
            return decided
        param = env.get(expr.id)
        if isinstance(param, _Param) and len(param.default) == 1 and isinstance(param.default[0], Key) \
                and isinstance(param.default[0].value, str) \
                and not self._passes_undecided(param.func, param.owner, param.index, param.name, param.positional, 0):
            return (param.default[0].value,)  # (a class handed on: built elsewhere at its default)
        return None

    def _passes_undecided(self, func, owner, index: int, name: str, positional: bool, depth: int) -> bool:
        """Does a construction (call) in this file of ``func`` (its class, for ``__init__``) pass
        for its parameter ``name`` a value the file does not decide (``norm_type=cfg.norm``, a
        local, a starred argument), directly or through callers handing their own parameter
        on?  Then the parameter's default is no reading of it (:meth:`_setting_values`; a class
        only handed on as a value keeps its default)."""
        target = owner if owner is not None and func.name == "__init__" else (func.name if owner is None else None)
        if target is None or self.tree is None or depth > 3:
            return False
        for call, caller, caller_owner in self.callers(target):
            if any(a.__class__ is ast.Starred for a in call.args):
                return True
            passed = None
            for k in call.keywords:
                if k.arg is None:
                    # ``Block(**extra)``, ``extra = {"c": 8}`` a dict literal of string keys the
                    # caller binds once and reads only there: it passes exactly its keys
                    spread = _local_dict(caller, k.value)
                    if spread is None:
                        return True
                    if name in spread:
                        passed = spread[name]
            if passed is None:
                passed = _passed(call, index, name, None, positional)
            if passed is None or passed.__class__ is ast.Constant and isinstance(passed.value, str):
                continue
            if passed.__class__ is ast.Name and self._module_string(passed.id) \
                    and not _binds_param(caller, passed.id) and not _rebinds(caller, passed.id):
                continue  # (``NORM = "batch_norm"`` at module level, never bound again: decided)
            if passed.__class__ is not ast.Name or caller.__class__ is not ast.FunctionDef \
                    or _rebinds(caller, passed.id):
                return True
            args = caller.args
            params = [*args.posonlyargs, *args.args]
            skip = 1 if caller_owner is not None and params and params[0].arg in ("self", "cls") else 0
            at = next((i for i, a in enumerate(params) if a.arg == passed.id), None)
            if at is not None:
                if self._passes_undecided(caller, caller_owner, at - skip, passed.id, True, depth + 1):
                    return True
            elif any(a.arg == passed.id for a in args.kwonlyargs):
                if self._passes_undecided(caller, caller_owner, 0, passed.id, False, depth + 1):
                    return True
            else:
                return True  # (a local or a global name: not the file's decision)
        return False

    def _module_string(self, name: str) -> bool:
        """Is ``name`` a module constant: one module-level ``name = "<string>"``, and no other
        binding of ``name`` anywhere in the file (no parameter, assignment, import, def, loop
        target, ``global``)?"""
        tree = self.tree
        if tree is None:
            return False
        ones = [s for s in tree.body if s.__class__ is ast.Assign and len(s.targets) == 1
                and s.targets[0].__class__ is ast.Name and s.targets[0].id == name]
        if len(ones) != 1 or ones[0].value.__class__ is not ast.Constant or not isinstance(ones[0].value.value, str):
            return False
        for node in ast_walk(tree):
            kind = node.__class__
            if kind is ast.Name:
                if node.id == name and node.ctx.__class__ is not ast.Load and node is not ones[0].targets[0]:
                    return False
            elif kind is ast.arg:
                if node.arg == name:
                    return False
            elif kind in (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef):
                if node.name == name:
                    return False
            elif kind in (ast.Import, ast.ImportFrom):
                if any((a.asname or a.name.split(".")[0]) == name for a in node.names):
                    return False
            elif kind in (ast.Global, ast.Nonlocal):
                if name in node.names:
                    return False
            elif kind is ast.ExceptHandler and node.name == name:
                return False
        return True

    def _softmax_module(self, fqn: str, call: ast.Call, env: dict) -> Built | None:
        """An ``nn.Softmax(dim=<axis>)`` when ``call`` builds a same-file module whose forward
        returns the softmax of its input over an axis the construction fixes, maybe in float32
        and cast back (formulas.softmax_module): the axis is the literal this call passes for
        the ``__init__`` parameter (or its literal default).  Not an nn.Softmax: reported for a
        rule whose fix would hand the module to a kernel (``unlike``)."""
        (source, *rest), cast = self._softmax_modules[fqn]
        if source == "literal":
            axis = rest[0]
        else:
            param, default = rest
            init = next(i for i in self.names.classes[fqn].body if i.__class__ is ast.FunctionDef
                        and i.name == "__init__")
            axis = passed_argument(init, call, param)
            if axis is False:
                return None
            if axis is None:
                axis = default
            if axis.__class__ is ast.Name and LITERAL + axis.id in env:
                axis = ast.Constant(env[LITERAL + axis.id])
        if not (axis.__class__ is ast.Constant and axis.value.__class__ is int or (
                axis.__class__ is ast.UnaryOp and axis.op.__class__ is ast.USub
                and axis.operand.__class__ is ast.Constant and axis.operand.value.__class__ is int)):
            return None
        name = fqn.rsplit(".", 1)[-1]
        how = "in float32, cast back to its input's dtype" if cast else "over the axis it is built with"
        return Built(SOFTMAX_MODULE, (), (("dim", axis),), False, call, via=name, unlike=(
            f"`{name}` is a module of the package computing a softmax {how}, not an nn.Softmax"))

    def _dropout_wrapper(self, fqn: str, call: ast.Call, env: dict) -> Built | None:
        """An ``nn.Dropout`` when ``call`` builds a same-file module whose forward, on the
        branch this construction's arguments (or the parameters' defaults) select, returns
        ``F.dropout(x, p=self.<rate>, training=self.training)`` (formulas.dropout_wrapper):
        mega's ``MegaDropout(p, is_featurewise=False)``.  Reported, not fixed: the rate is the
        module's own attribute, not nn.Dropout's ``p``."""
        wrapper = self._dropout_wrappers[fqn]

        def known(expr):  # a name of the walked function holding a literal where it runs
            if expr.__class__ is ast.Name and LITERAL + expr.id in env:
                return ast.Constant(env[LITERAL + expr.id])
            return None

        rate = wrapper.rate(call, self.names, known)
        if rate is None:
            return None
        name = fqn.rsplit(".", 1)[-1]
        attr, flags = rate_parts(rate)
        also = "".join(f" (and in eval when `self.{flag}` is set)" for flag in flags)
        return Built("torch.nn.Dropout", (), (), False, call, via=name, rate=rate, unlike=(
            f"`{name}` is a module of the package whose forward runs F.dropout with its rate in "
            f"`self.{attr}`{also}, not an nn.Dropout: the kernel reads nn.Dropout's p"))

    def _sibling_wrapper(self, fqn: str, call: ast.Call, env: dict) -> Built | None:
        """:meth:`_wrapper` for a class another module of the package defines (fairseq's
        ``FairseqDropout``, imported by its attention module): read in that module's reader
        (its names resolve the forward's calls), the construction's arguments in this one's
        ``env``."""
        found = self.package.find(fqn)
        if found is None or found[1] not in found[0].names.classes:
            return None
        wrapped = found[0]._wrapper(found[1], call, env, activation=False)
        return wrapped if wrapped is not None else self._setting_activation(found[0], found[1], call, env)

    def _torch_activation_fn(self, call: ast.Call, env: dict) -> tuple | None:
        """torch's ``transformer._get_activation_fn(activation)`` (parseq's decoder layer): F.relu
        for "relu", F.gelu for "gelu" (torch's documented strings, as its Transformer*Layer
        constructors read them), given a literal or a parameter whose string default and every
        value the file's constructions pass are such strings; a function held as a value.  None
        when the file does not decide the string."""
        arg = call.args[0]
        if arg.__class__ is ast.Constant:
            keys = (arg.value,)
        elif arg.__class__ is ast.Name:
            keys = self._setting_values(arg, env) if LITERAL + arg.id in env else self._decided_keys(arg, env)
        else:
            return None
        if not keys or not all(k in _TORCH_ACTIVATION_STRINGS for k in keys):
            return None
        why = (f"`{ast.unparse(call)}` returns a function held as a value, not a layer: the kernel takes a "
               f"layer module (and TorchScript cannot pass a function as a value)")
        fqns = tuple(dict.fromkeys(_TORCH_ACTIVATION_STRINGS[k] for k in keys))
        return tuple(Built(f, (), (), False, call, via="_get_activation_fn", unlike=why, function=True,
                           conditional=len(fqns) > 1) for f in fqns)

    def _setting_activation(self, typer, name: str, call: ast.Call, env: dict) -> Built | None:
        """The activation a module class of ``typer``'s module (this one's, or a sibling's) runs
        on its input when ``call`` builds it with a setting this file decides
        (setting_activation_module: paddleocr ports' ``Activation(act_type=act_layer)`` with
        ``act_layer="gelu"`` the default every construction keeps): the layer that value's arm
        binds, as that module types it.  Reported, not fixed: the layer is the module's member,
        behind its own forward."""
        if name not in typer._setting_acts:
            typer._setting_acts[name] = setting_activation_module(typer.names.classes[name], typer.names)
        reading = typer._setting_acts[name]
        if reading is None:
            return None
        init = next(i for i in typer.names.classes[name].body if i.__class__ is ast.FunctionDef
                    and i.name == "__init__")
        passed = passed_argument(init, call, reading.param) if reading.param is not None else None
        if passed is False:
            return None
        if reading.param is None:  # (one activation, whatever the construction passes)
            values = (None,)
        elif passed is None:  # (the module's own default: what this construction gets)
            default = reading.default
            values = (default.value,) if default.__class__ is ast.Constant else None
        elif passed.__class__ is ast.Constant:
            values = (passed.value,)
        elif passed.__class__ is ast.Name and LITERAL + passed.id in env:
            values = (env[LITERAL + passed.id],)
        else:
            # a parameter: only what the file decides (its default and every value the file's
            # constructions pass, its class built nowhere else); a default alone is not a
            # decision when the class is handed on, subclassed or built with another value
            values = self._decided_keys(passed, env)
        if not values or not all(isinstance(v, str) for v in values) and reading.param is not None:
            return None
        chosen = dict(reading.ctors)
        kinds = {}
        for value in values:
            ctor = chosen.get(value.lower() if reading.lowered else value)
            if ctor is None:
                return None  # (a value no arm binds: the module raises, or it is not read here)
            if ctor in typer.names.classes:
                kind = typer._kind_of(ctor)
                if kind is None:
                    return None
                kinds[kind[0]] = True
            elif ctor[:9] == "torch.nn." and _is_layer_class_name(ctor):
                kinds[ctor] = True
            else:
                return None
        if len(kinds) != 1:
            return None
        fqn = next(iter(kinds))
        short = name.rsplit(".", 1)[-1]
        if reading.param is None:
            return Built(fqn, (), (), False, call, via=short, unlike=(
                f"`{short}` is a module running its {fqn.rsplit('.', 1)[-1]} member on its input: the kernel would "
                f"take over that member behind the module's forward"))
        return Built(fqn, (), (), False, call, via=short, unlike=(
            f"`{short}` is a module running its {fqn.rsplit('.', 1)[-1]} member on its input under the setting "
            f"it is built with: the kernel would take over that member behind the module's forward"))

    def _find_kind(self, fqn: str, depth: int):
        cls = self.names.classes.get(fqn)
        if cls is None and self.package is not None and depth <= MAX_DEPTH and self.package.owns(fqn):
            found = self.package.find(fqn)
            if found is not None and found[1] in found[0].names.classes:
                return found[0]._kind_of(found[1], depth + 1)
            return None
        if cls is None or depth > MAX_DEPTH:
            return None
        forward = next((item for item in cls.body if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef))
                        and item.name == "forward"), None)
        if gelu_module(cls, self.names) is not None:
            # minGPT's NewGELU: a module whose forward is the GELU formula is a GELU.  The
            # kernels take layers through a TorchScript interface whose forward's argument is
            # named ``input``; a class naming it otherwise would break torch.jit.script.
            argument = forward.args.args[1].arg
            why = "" if argument == "input" else (
                f"`{cls.name}.forward` names its argument `{argument}`, not `input` as torch's layers do: "
                f"passing it to the kernel would break torch.jit.script")
            return "torch.nn.GELU", why, False
        silu = silu_module(cls, self.names)
        if silu is not None:
            # diffusers' FP32SiLU: F.silu of a float32 copy of the input, cast back.  A SiLU,
            # reported; the fix would pass the module to a kernel that only fuses nn.SiLU, and
            # whether the fused kernel rounds like the cast-around SiLU is not checked here.
            argument = forward.args.args[1].arg
            why = (f"`{cls.name}` computes SiLU on a dtype conversion of its input and converts the result: "
                   f"the kernel does not check that its rounding matches") if silu == "cast" else (
                "" if argument == "input" else
                f"`{cls.name}.forward` names its argument `{argument}`, not `input` as torch's layers do: "
                f"passing it to the kernel would break torch.jit.script")
            return "torch.nn.SiLU", why, False
        if layer_norm_module(cls, self.names):
            # TF-style BertLayerNorm (s3prl's Mockingjay): a LayerNorm over the last axis written
            # out, (x - mean) / sqrt(var + eps) * weight + bias.  A LayerNorm, reported: the
            # kernels read nn.LayerNorm's attributes (eps, normalized_shape), which it need not have.
            return "torch.nn.LayerNorm", (f"`{cls.name}` computes a LayerNorm written out, not an nn.LayerNorm: "
                                          f"the kernel reads nn.LayerNorm's eps and normalized_shape"), False
        flag = flagged_layer_norm_module(cls, self.names) if self.tree is not None else None
        if flag is not None and self._flag_left_off(cls, *flag):
            # bert_seq2seq's BertLayerNorm: the written-out LayerNorm under ``if self.conditional
            # == False:``, every build of the file leaving the flag at its False default
            return "torch.nn.LayerNorm", (f"`{cls.name}` computes a LayerNorm written out, not an nn.LayerNorm: "
                                          f"the kernel reads nn.LayerNorm's eps and normalized_shape"), False
        if functional_layer_norm_module(cls, self.names):
            # nanoGPT's LayerNorm (an optional bias), a bias-free one, VALL-E X's (an unused
            # stage embedding asserted None): a forward returning F.layer_norm of its input.  A
            # LayerNorm, reported, not fixed (as the written-out one above).
            return "torch.nn.LayerNorm", (f"`{cls.name}` calls F.layer_norm in its forward, not an nn.LayerNorm: "
                                          f"the kernel reads nn.LayerNorm's eps and normalized_shape"), False
        if addmm_linear_module(cls, self.names):
            # GPT-2's Conv1D copied into a port: addmm(bias, x.view(-1, d), weight) with an
            # (in, out) weight, a Linear; reported, not fixed (as transformers' Conv1D).
            return "torch.nn.Linear", (f"`{cls.name}` computes a Linear written out with a transposed (in, out) "
                                       f"weight: the kernel does not fuse it"), False
        if autograd_gelu_module(cls, self.names) is not None:
            # BLOOM's BloomGelu: a torch.autograd.Function whose forward is the GELU formula;
            # the same forward, but the kernel would differentiate GELU, not the Function's
            # own backward: reported, not fixed.
            return "torch.nn.GELU", (f"`{cls.name}` computes GELU through a torch.autograd.Function with its own "
                                     f"backward: the kernel would replace that gradient"), False
        if dropout_function_module(cls, self.names):
            # DeBERTa's StableDropout: element-wise dropout in training (a per-element Bernoulli
            # mask, the rest rescaled by 1/(1-p)) through a torch.autograd.Function, the input
            # itself otherwise.  A dropout, reported: its probability is an attribute of its own
            # and its mask and backward are the Function's.
            return "torch.nn.Dropout", (f"`{cls.name}` drops elements through a torch.autograd.Function with its own "
                                        f"mask and backward, not nn.Dropout: the kernel reads nn.Dropout's p"), False
        found = None
        for base in cls.bases:
            base_fqn = self.names.resolve(base)
            if base_fqn is None or base_fqn == fqn:
                continue
            if base_fqn.startswith("torch.nn.") and base_fqn not in CONTAINER_CLASSES and _is_layer_class_name(base_fqn):
                found = (base_fqn, "", True)
            elif base_fqn in BATCH_NORM_BASES:
                found = (BATCH_NORM_BASE, "", True)  # its dimension: the subclass's input check
            elif base_fqn in self.names.classes:
                found = self._kind_of(base_fqn, depth + 1)
            if found is not None:
                break
        if found is None:
            return (self._output_kind(cls, forward, depth) or self._input_kind(cls, forward, depth)
                    or self._moved_norm_kind(cls, forward, depth))
        layer, unlike, same_args = found
        if layer == BATCH_NORM_BASE:
            dims = _batch_norm_dims(cls)
            if dims is not None:
                layer = f"torch.nn.BatchNorm{dims}d"
                found = (layer, unlike, same_args)
            if forward is not None and _batch_norm_in_eval(forward, self.names):
                # a synchronised BatchNorm (``_BatchNorm`` subclass): F.batch_norm on its own
                # running statistics whenever it is not training; its own path in training
                if dims is None and _rank_free(cls):
                    # its input check accepts any rank (``def _check_input_dim(self, x): pass``):
                    # a BatchNorm of its input's rank, as torch's nn.SyncBatchNorm is; after a
                    # Conv2d that is a BatchNorm2d
                    layer = "torch.nn.BatchNorm2d"
                return layer, unlike or (f"`{cls.name}` overrides forward with the BatchNorm computation in eval "
                                         f"mode and its own in training: the kernel would not run it as written"), \
                    same_args
        if forward is None:
            return found
        if _computes_base(forward, layer, self.names):
            how = "around the {} computation (dtype casts)"
        elif layer == "torch.nn.Linear" and _computes_base(forward, layer, self.names, derived_weight=True):
            how = "with the {} computation on a weight it derives from its own parameters"
        elif _matmul_linear(forward, layer):
            how = "with the {} computation written out (a matmul with the transposed weight, then the bias)"
        elif layer == "torch.nn.Linear" and cast_linear(cls, forward, self.names):
            how = "with the bias-free {} computation on every way out (its input and weight cast)"
        elif _starts_with_base(forward, layer, self.names):
            how = "with the {} computation on its input first, then more steps on its output (an activation)"
        elif _base_then_if(forward, layer, self.names):
            how = "with the {} computation, then more steps on its output under an `if` (none when its test fails)"
        else:
            return self._output_kind(cls, forward, depth)
        how = how.format(layer.rsplit('.', 1)[-1])
        return layer, unlike or (f"`{cls.name}` overrides forward {how}: the kernel would not run it as written"), \
            same_args

    def _output_kind(self, cls: ast.ClassDef, forward, depth: int):
        """(``adopter.output_of.<layer>``, why a fix leaves it, False) for a module class whose
        forward returns, on its only way out, a convolution's output: the output of a Conv2d
        attribute bound in ``__init__`` (``return self.pointwise(self.conv1(x))``), or for a
        Conv2d subclass ``F.conv2d(<input>, self.weight, self.bias, ...)`` on its own
        parameters after other steps on the input (padding).  A BatchNorm after it folds into
        that convolution's weight and bias.  None for any other module."""
        if forward is None or depth > MAX_DEPTH:
            return None
        last = forward.body[-1] if forward.body else None
        if last.__class__ is ast.If and last.orelse:
            # ``if self.mode == "same": x = F.pad(x, ...); return F.conv2d(x, self.weight,
            # self.bias, ...)`` ``else: return super().forward(x)`` (glasses' Conv2dPad): a
            # forward whose ways out are the arms of its last if/else (elif nested) is the
            # layer's output when each arm, read after the statements before the if as a forward
            # of its own, returns that same layer's output
            return self._arms_output_kind(cls, forward, last, depth)
        value = _returned_value(forward)
        prefix = OUTPUT_OF
        if value is None:
            # ``return self.conv_fn(x, padding=p)`` on every way out, ``self.conv_fn`` a lambda
            # ``__init__`` binds (``lambda input, padding: F.conv2d(input, self.weight, ...)``):
            # the lambda's body on the input, checked below as a returned ``F.conv2d`` is
            # (the first test inline: no call for the many forwards ending otherwise)
            last = forward.body[-1] if forward.body else None
            if (last.__class__ is ast.Return and last.value.__class__ is ast.Call
                    and last.value.func.__class__ is ast.Attribute and last.value.func.value.__class__ is ast.Name
                    and last.value.func.value.id == "self"):
                value = _lambda_returned(cls, forward)
        if value is None:
            # the first of a returned tuple: a functional dropout only (an attribute there
            # would cost every attention returning ``self.o_proj(x), weights`` its __init__'s
            # reading; no rule needs it)
            value = _returned_value(forward, first=lambda v: _functional_dropout_output(v, self.names)
                                    or (v.func.__class__ is ast.Attribute and len(v.args) == 1 and not v.keywords
                                        and _is_own(v.func, v.func.attr) and self._init_line(cls, v.func.attr, "Dropout")))
            prefix = OUTPUT_OF_FIRST
        if not isinstance(value, ast.Call):
            return None
        func = value.func
        # ``self._conv_forward(<input>, self.weight, self.bias)``: torch's convolution classes
        # compute their forward through that method (F.conv2d with the module's stride,
        # padding, dilation and groups), so a subclass that pads its input first and calls it
        # returns the convolution's output, as with ``F.conv2d`` below
        conv_method = (prefix == OUTPUT_OF and _is_own(func, "_conv_forward")
                       and "_conv_forward" not in _methods(cls))
        # ``super().forward(<input>)``: the base class's own forward, which for torch's
        # convolution classes is that same computation on the module's parameters (a subclass
        # that pads its input to "same" size, then hands it to its base)
        base_forward = (prefix == OUTPUT_OF and func.__class__ is ast.Attribute and func.attr == "forward"
                        and value.args and not value.args[1:] and not value.keywords and _super_forward(func))
        if not conv_method and _is_own(func, func.attr if isinstance(func, ast.Attribute) else ""):
            if len(value.args) != 1 or value.keywords:
                return None
            built = self._init_binding(cls, func.attr, depth)
            if isinstance(built, _Param) or not built:
                return None
            if not all(isinstance(b, Built) and not b.conditional for b in built):
                return None
            if len(built) == 1 and built[0].fqn == SEQUENTIAL and prefix == OUTPUT_OF:
                # ``return self.sepconv(x)``, ``self.sepconv`` an nn.Sequential whose last member
                # on every way through its construction is a Conv2d (a depth-wise then a
                # point-wise convolution): the module's output is that convolution's, as for an
                # attribute ending in one (bindings._last_member_kind)
                from .bindings import _last_member_kind
                layer = _last_member_kind(built[0], _CONV_OUTPUT)
                if layer is None:
                    return None  # (a container ending in its dropout is left to the attribute reading)
                why = (f"`{cls.name}`'s output is its `{func.attr}` container's last member's, a "
                       f"{layer.rsplit('.', 1)[-1]}: the kernel would take over that member, which it does not "
                       f"reach through a module with its own forward")
                return prefix + layer, why, False
            kinds = {b.fqn for b in built} & (OUTPUT_KINDS if prefix != OUTPUT_OF else _MODULE_OUTPUT_KINDS)
            # one constructor, or one factory that builds one of several implementations (timm's
            # create_conv2d: nn.Conv2d or a padded/mixed/conditional variant): a layer bound two
            # ways counts as each of them, as it does for a pair in forward
            one_call = len(built) == 1 or (built[0].via and all(b.via == built[0].via for b in built))
            if len(kinds) != 1 or not one_call:
                return None
            layer = kinds.pop()
            if layer == "torch.nn.Linear" and not _returns_own_call_only(forward):
                # (a Linear wrapper only: ``return self.linear(x)`` its whole forward; a head
                # module with steps before its Linear is read as a head by ADP015's readings)
                return None
            if any(b.fqn.startswith("torch.nn.") and b.fqn != layer for b in built):
                return None  # another torch layer (an nn.Identity) may stand there instead
            if prefix == OUTPUT_OF_FIRST and layer != "torch.nn.Dropout":
                return None  # (the first of a tuple is read for an output dropout only)
            return (prefix + layer, f"`{cls.name}`'s {_which_output(prefix)} is its `{func.attr}` "
                                    f"{layer.rsplit('.', 1)[-1]}'s: the kernel would take over that member, which it "
                                    f"does not reach through a module with its own forward", False)
        if _functional_dropout_output(value, self.names):
            why = (f"`{cls.name}`'s {_which_output(prefix)} is a functional dropout's: the kernel would take over "
                   f"that dropout, which it does not reach through a module with its own forward")
            return prefix + "torch.nn.Dropout", why, False
        if prefix != OUTPUT_OF:
            return None
        bases = {self.names.resolve(b) for b in cls.bases}
        for layer in OUTPUT_KINDS & bases:
            if base_forward and layer in OUTPUT_FUNCTIONS:
                if any(_is_own(n, "weight") or _is_own(n, "bias") for n in ast_walk(value.args[0])):
                    continue
                why = (f"`{cls.name}` overrides forward around the {layer.rsplit('.', 1)[-1]} computation "
                       f"(its base's forward on a changed input): the kernel would not run it as written")
                return OUTPUT_OF + layer, why, False
            if not conv_method and self.names.resolve(func) != OUTPUT_FUNCTIONS.get(layer) or len(value.args) < 2:
                continue
            weight = value.args[1]
            bias = value.args[2] if len(value.args) > 2 else next(
                (k.value for k in value.keywords if k.arg == "bias"), None)
            if not (_is_own(weight, "weight") and bias is not None and _is_own(bias, "bias")):
                continue
            if any(_is_own(n, "weight") or _is_own(n, "bias") for n in ast_walk(value.args[0])):
                continue
            return (OUTPUT_OF + layer, f"`{cls.name}` overrides forward around the {layer.rsplit('.', 1)[-1]} "
                                       f"computation: the kernel would not run it as written", False)
        return None

    def _arms_output_kind(self, cls: ast.ClassDef, forward, last: ast.If, depth: int):
        """:meth:`_output_kind` of a forward ending in ``if ...: <arm> else: <arm>``: each arm
        read as the forward's body (the statements before the if, then the arm); the kind when
        every arm gives the same one, None otherwise."""
        found = None
        for arm in (last.body, last.orelse):
            if not arm or arm[-1].__class__ not in (ast.Return, ast.If):
                return None  # an arm that falls through: the value after the if is no arm's
            alone = copy.copy(forward)
            alone.body = forward.body[:-1] + arm
            kind = self._output_kind(cls, alone, depth)
            if kind is None or (found is not None and kind[0] != found[0]):
                return None
            found = found or kind
        return found

    def _file_text(self) -> str:
        """The file's lines joined, once per file (the readings' cheap text tests; only where
        ``self.lines`` is known)."""
        text = self._kinds.get(_FILE_TEXT)
        if text is None:
            # (the text the lines were split from, when the module structure gave it: the
            # same string, without joining the whole file again)
            text = self.text if self.text is not None else "\n".join(self.lines)
            self._kinds[_FILE_TEXT] = text
        return text

    def _init_line(self, cls: ast.ClassDef, attr: str, word: str) -> bool:
        """Does a line of ``cls``'s own ``__init__`` that assigns ``self.<attr>`` mention ``word``
        (a string test on its lines, before any reading of what it binds)?"""
        if self.lines is None:
            return False
        for item in cls.body:
            if item.__class__ is ast.FunctionDef and item.name == "__init__":
                target = "self." + attr
                for line in self.lines[item.lineno - 1:item.end_lineno]:
                    if word in line and target in line:
                        return True
                return False
        return False

    def _mentions_batch_norm(self) -> bool:
        """Does the file's text mention BatchNorm?  The text does not change: scanned once per
        file, not once per same-file class the module readings below look at."""
        mentioned = self._kinds.get(_BATCH_NORM_TEXT)
        if mentioned is None:
            mentioned = self._kinds[_BATCH_NORM_TEXT] = "BatchNorm" in self._file_text()
        return mentioned

    def _input_kind(self, cls: ast.ClassDef, forward, depth: int):
        """(the BatchNorm, why a fix leaves it, False) for a module class whose forward puts its
        one input first through a BatchNorm attribute bound in ``__init__`` and reads the input
        nowhere else (HoVer-Net's ``_BatchNormRelu``: ``return self.relu(self.batch_norm(x))``):
        what runs before the module runs into that BatchNorm, as for a BatchNorm subclass that
        adds an activation (``_starts_with_base``).  None for any other module."""
        if forward is None or depth > MAX_DEPTH or self.lines is None:
            return None
        if not self._mentions_batch_norm():
            return None  # (a cheap text test first: most files build no BatchNorm)
        args = forward.args
        if len(args.args) != 2 or args.posonlyargs or args.vararg or args.kwarg or args.kwonlyargs:
            return None
        body = forward.body
        if body and body[0].__class__ is ast.Expr and body[0].value.__class__ is ast.Constant:
            body = body[1:]  # (a docstring)
        # the step is in the first statement (call-free tests first: most forwards start
        # otherwise), ``y = <expr>`` or ``return <expr>``, on the way every call takes
        first = body[0] if body else None
        if first.__class__ not in (ast.Assign, ast.Return) or first.value.__class__ is not ast.Call:
            return None
        x = args.args[1].arg
        step = next((n for n in ast_walk(first.value)
                     if n.__class__ is ast.Call and len(n.args) == 1 and not n.keywords
                     and n.args[0].__class__ is ast.Name and n.args[0].id == x
                     and n.func.__class__ is ast.Attribute and n.func.value.__class__ is ast.Name
                     and n.func.value.id == "self"), None)
        if step is None:
            return None
        # the input read nowhere else (its shape and dtype aside), nor bound again
        read = step.args[0]
        for stmt in body:
            metadata = {id(n.value) for n in ast_walk(stmt) if n.__class__ is ast.Attribute
                        and n.attr in TENSOR_METADATA}
            if any(n.__class__ is ast.Name and n.id == x and n is not read and id(n) not in metadata
                   for n in ast_walk(stmt)):
                return None
        built = self._init_binding(cls, step.func.attr, depth)
        if isinstance(built, _Param) or not built or len(built) != 1:
            return None
        only = built[0]
        if not (isinstance(only, Built) and not only.conditional and only.fqn in INPUT_KINDS):
            return None
        return only.fqn, (f"`{cls.name}` runs its `{step.func.attr}` {only.fqn.rsplit('.', 1)[-1]} on its input "
                          f"first, then more steps on its output: the kernel would take over that member, which it "
                          f"does not reach through a module with its own forward"), False

    def _moved_norm_kind(self, cls: ast.ClassDef, forward, depth: int):
        """(``nn.BatchNorm1d``, why a fix leaves it, False) for a module class whose forward runs
        a BatchNorm1d attribute over its input's last axis, moved to the channel axis and back
        (moved_norm: torch-points3d's fast BatchNorm).  After a Linear it normalises the
        Linear's output features, as a BatchNorm1d on them does: the pair folds exactly in eval
        mode.  Reported, not fixed: the kernel takes an nn.BatchNorm1d, not a module holding one
        behind its own layout steps.  None for any other module."""
        if forward is None or depth > MAX_DEPTH or self.lines is None:
            return None
        if not self._mentions_batch_norm():
            return None  # (cheap tests first, once per file: most files build no BatchNorm ...)
        moves = self._kinds.get(_AXIS_MOVE_TEXT)
        if moves is None:
            text = self._file_text()
            moves = self._kinds[_AXIS_MOVE_TEXT] = ".permute(" in text or ".transpose(" in text
        if not moves:
            return None  # (... and most that do move no axis)

        def is_norm(attr: str) -> bool:
            built = self._init_binding(cls, attr, depth)
            return (not isinstance(built, _Param) and len(built) == 1 and isinstance(built[0], Built)
                    and not built[0].conditional and built[0].fqn == "torch.nn.BatchNorm1d")

        if not moves_last_axis_through_norm(cls, forward, is_norm):
            return None
        return "torch.nn.BatchNorm1d", (
            f"`{cls.name}` runs a BatchNorm1d over its input's last axis moved to the channel axis and back: "
            f"folding it into the Linear before it is exact in eval mode, but the kernel takes an nn.BatchNorm1d, "
            f"not a module holding one behind its own layout steps"), False

    def _init_binding(self, cls: ast.ClassDef, attr: str, depth: int):
        """What ``cls.__init__`` binds to ``self.<attr>`` (its function environment's entry), or
        ``()`` where the class has no ``__init__`` or is already being read (a cycle)."""
        init = next((item for item in cls.body if isinstance(item, ast.FunctionDef) and item.name == "__init__"),
                    None)
        if init is None:
            return ()
        key = ("init", id(init))
        if key in self._busy:
            return ()
        self._busy.add(key)
        try:
            return self.function_env(init, cls.name, depth + 1, cls_name=cls.name).get("self." + attr, ())
        finally:
            self._busy.discard(key)

    def _partial_softmax(self, call: ast.Call, kwargs: tuple):
        """``partial(F.softmax, dim=-1)`` (any torch spelling of softmax; an optional ``dtype``):
        a softmax over that dim, held as a value and called on the scores (lucidrains'
        ``self.attn_fn``).  Without a ``dim`` keyword it is not one (softmax's implicit dim is
        the first axis of 3-D input), nor with positional arguments bound.  None otherwise."""
        if len(call.args) != 1 or not any(name == "dim" for name, _ in kwargs) or any(
                name not in ("dim", "dtype") for name, _ in kwargs):
            return None
        target = self.names.resolve(call.args[0])
        if target is None or target[:6] != "torch." or target in self.names.functions:
            return None
        op = TABLE.function(target)
        if op is None or op.name != SOFTMAX:
            return None
        why = (f"`{ast.unparse(call)}` is a function held as a value, not a layer: the kernel takes a "
               f"layer module (and TorchScript cannot pass a function as a value)")
        return Built(op.name, (), kwargs, False, call, unlike=why, function=True)

    def _class_of(self, expr: ast.expr) -> tuple:
        fqn = self.names.resolve(expr)
        if fqn is None:
            return ()
        if not _is_layer_class_name(fqn):
            if fqn in self.names.functions and gelu_function(self.names.functions[fqn], self.names) is not None:
                # ACT2FN = {"gelu": gelu, ...} with def gelu(x): x * 0.5 * (1 + erf(x / sqrt(2))),
                # or fairseq's def gelu(x): return F.gelu(x.float()).type_as(x) that WavLM/BEATs
                # copies return from their get_activation_fn: the same-file function computes
                # GELU; held as a value, it is what calling it does
                why = (f"`{ast.unparse(expr)}` is a function held as a value, not a layer: the kernel takes a "
                       f"layer module (and TorchScript cannot pass a function as a value)")
                return (Built("torch.nn.functional.gelu", (), (), False, expr, unlike=why, function=True),)
            if fqn[:6] == "torch." and fqn not in self.names.functions:
                op = TABLE.function(fqn)
                if op is not None and op.name in TABLE.runtime:
                    # an activation function as a value: what calling it computes
                    why = (f"`{ast.unparse(expr)}` is a function held as a value, not a layer: the kernel takes a "
                           f"layer module (and TorchScript cannot pass a function as a value)")
                    return (Built(op.name, (), (), False, expr, unlike=why, function=True),)
            elif "activations." in fqn:
                return _activation_instance(fqn, expr)
            return ()
        if fqn in self.names.functions:
            return ()
        if self.package is not None and fqn not in self.names.classes and self.package.owns(fqn):
            found = self.package.find(fqn)  # a class of another module of the package, or an alias there
            if found is not None:
                other, name = found
                if name in other.names.classes:
                    exported = other._export(LayerClass(name))
                    return (exported,) if exported is not None else ()
                if name not in other.names.functions and not self.package.owns(name):
                    return (LayerClass(name),) if _is_layer_class_name(name) else ()
        return (LayerClass(fqn),)

    def _kwargs_read(self, call: ast.Call, env: dict, depth: int) -> tuple:
        """``kwargs.get("norm_layer", nn.BatchNorm2d)`` (or ``.pop``) of the function's ``**kwargs``:
        the default, as for a parameter written with it, unless the call being walked passes that
        keyword (its keys known: ``dict:`` of the env), whose value is not kept there, or the body
        may change the dict (_kwargs_only_read, asked here: few functions read kwargs so): unknown."""
        key = call.args[0] if len(call.args) == 2 and not call.keywords else None
        if key is None or key.__class__ is not ast.Constant or not isinstance(key.value, str):
            return ()
        name = call.func.value.id
        if not _kwargs_only_read(env[KWARGS + name], name):
            return ()  # kwargs["norm_layer"] = ...: the body may change what the read returns
        passed = env.get("dict:" + name)
        if passed is not None and key.value in passed:
            return ()
        return self.values(call.args[1], env, depth)

    def _moved_layer(self, inner: ast.Call, env: dict, depth: int) -> tuple:
        """The layers ``inner`` builds, for ``inner.to(dtype)`` and the other in-place moves and
        casts of nn.Module (``_MODULE_SELF_METHODS``), which return the module itself: the
        projections of torchao's test transformer are ``nn.Linear(...).to(dtype)``.  Only layer
        modules (torch.nn classes other than functions, Sequentials, same-file classes) pass:
        ``torch.randn(n).to(dtype)`` is a tensor, not a layer."""
        out = []
        for value in self._call(inner, env, depth):
            if not isinstance(value, Built) or value.function or value.table:
                continue
            if (value.fqn.startswith("torch.nn.") and not value.fqn.startswith(("torch.nn.functional", "torch.nn.init"))
                    and value.fqn.rsplit(".", 1)[-1][:1].isupper()) or value.fqn in self.names.classes:
                out.append(value)
        return tuple(out)

    def _call(self, call: ast.Call, env: dict, depth: int) -> tuple:
        func = call.func
        if func.__class__ is ast.Name and LOCAL_DEF + func.id in env:
            # unit(c): a function defined in the walked body (a block builder nested in
            # __init__), called for its value: what it returns, its free names the caller's
            local = env[LOCAL_DEF + func.id]
            return self._factory(func.id, call, env, depth, local, closure=_closure(local, env))
        if func.__class__ is ast.Attribute and func.attr in _KWARGS_READS and func.value.__class__ is ast.Name \
                and KWARGS + func.value.id in env:
            return self._kwargs_read(call, env, depth)
        if func.__class__ is ast.Attribute and func.attr in _MODULE_SELF_METHODS and func.value.__class__ is ast.Call:
            moved = self._moved_layer(func.value, env, depth)
            if moved:
                return moved
        kwargs = tuple((k.arg, k.value) for k in call.keywords if k.arg is not None)
        fqn = None
        if func.__class__ is ast.Attribute and func.attr in STR_METHODS:
            folded = self._fold(call, env, depth)  # key.lower(): a known key's method
            if folded is not None:
                return _unique(tuple(Key(v, default) for v, default in folded if isinstance(v, str)))
        if not (func.__class__ is ast.Name and func.id in env):
            fqn = self.names.resolve(func)
            if fqn in _COPIES and len(call.args) == 1 and not call.keywords:
                # cfg = copy.deepcopy(cfg) at a builder's top: a copy of a known key (None
                # included: ``if cfg is None: return nn.Identity()`` below it still decides)
                copied = self._known(call.args[0], env)
                if copied is not None:
                    return tuple(Key(k) for k in copied)
        if (func.__class__ is ast.Name and func.id == "getattr" and func.id not in env
                and func.id not in self.names.functions and func.id not in self.names.imports
                and len(call.args) == 2 and not call.keywords
                and self.names.resolve(call.args[0]) == "torch.nn.functional" and builtin_unbound(self.names, "getattr")):
            # getattr(F, activation): the function of torch.nn.functional the string names, held
            # as a value and looked up like a table (a run-time string may name any activation)
            if call.args[1].__class__ is ast.Name and self._never_str_here(call.args[1], env):
                # ... unless the parameter holds no string wherever the file builds its class
                # (``activation=F.relu`` handed on, the string path never taken here: GUIDE, a
                # callable non-GELU default that no construction in the file replaces)
                return ()
            why = (f"`{ast.unparse(call)}` is a function held as a value, not a layer: the kernel takes a "
                   f"layer module (and TorchScript cannot pass a function as a value)")
            return (Built("torch.nn.functional", (call.args[1],), (), True, call, via="getattr", unlike=why),)
        if (func.__class__ is ast.Name and func.id == "getattr" and func.id not in env
                and func.id not in self.names.functions and func.id not in self.names.imports
                and len(call.args) == 2 and not call.keywords
                and self.names.resolve(call.args[0]) == "torch.nn" and builtin_unbound(self.names, "getattr")):
            # cls = getattr(nn, name), then cls(*args) (rtdl's _make_nn_module): the torch.nn
            # class the string names, held as a value; called, it is what getattr(nn, name)(...)
            # builds in place (below): the class a known key names, else a run-time table key
            named = self._getattr_class(call.args[1], env) if call.args[1].__class__ in _GETATTR_KEYS else None
            if named is not None:
                return (LayerClass("torch.nn." + named),)
            known = self._known(call.args[1], env, depth)
            if known and all(k.isidentifier() for k in known):
                # a key the caller passes as a literal ("Tanh"): the classes it names
                return tuple(LayerClass("torch.nn." + k) for k in known)
            return (LayerClass(GETATTR_NN, (call.args[1],)),)
        if (isinstance(func, ast.Name) and func.id == "getattr" and func.id not in env
                and func.id not in self.names.functions and func.id not in self.names.imports
                and len(call.args) == 3 and not call.keywords and isinstance(call.args[1], ast.Constant)
                and isinstance(call.args[1].value, str)
                and self.names.resolve(call.args[0]) not in ("torch.nn", "torch.nn.functional")
                and builtin_unbound(self.names, "getattr")):
            # getattr(config, "activation", nn.GELU()): what the object holds under that name,
            # else the default: read as a parameter's default is (what the object holds is not
            # in this file)
            return self.values(call.args[2], env, depth)
        if fqn == "typing.cast" and len(call.args) == 2 and not call.keywords:
            return self.values(call.args[1], env, depth)  # cast(Activation, GELU()): the value
        if (fqn is not None and isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name)
                and func.value.id in self.names.classes and func.value.id not in env):
            method = self._method(func, env)  # Activation.build(config): a same-file class's factory
            if method is not None:
                return self._factory(method.name, call, env, depth, method)
        if fqn is not None and fqn in PARTIALS and call.args:
            bound_softmax = self._partial_softmax(call, kwargs)
            if bound_softmax is not None:
                return (bound_softmax,)
            out = []
            for value in self.values(call.args[0], env, depth, called=True):
                if isinstance(value, LayerClass):
                    if value.foreign:  # a class another module chose: what it is given there is not ours
                        out.append(value)
                    else:
                        out.append(LayerClass(value.fqn, value.args + tuple(call.args[1:]), value.kwargs + kwargs,
                                              value.unlike))
                elif isinstance(value, Built) and value.function and len(call.args) == 1:
                    # partial(F.gelu, approximate="tanh"): still that function, with these keywords
                    out.append(replace(value, kwargs=value.kwargs + kwargs, node=call))
            return tuple(out)
        if fqn == SKIP_INIT and call.args and not isinstance(call.args[0], ast.Starred):
            return tuple(Built(value.fqn, value.args + tuple(call.args[1:]), value.kwargs + kwargs, False, call,
                               via="skip_init", unlike=value.unlike)
                         for value in self.values(call.args[0], env, depth, called=True)
                         if isinstance(value, LayerClass) and not value.foreign)
        if fqn is not None and fqn in self.names.functions and fqn not in self.names.classes:
            built = self._built_sequential(fqn, call, env, depth)
            return built if built is not None else self._factory(fqn, call, env, depth)
        if fqn is None and func.__class__ is ast.Name and func.id in self.names.lambdas and func.id not in env:
            # conv3x3(cin, cout) with conv3x3 = lambda cin, cout, stride=1: nn.Conv2d(...) at
            # module level: what the lambda's body builds with these arguments, as a function's
            return self._factory(func.id, call, env, depth, self._lambda_def(func.id))
        if (fqn is not None and self.package is not None and fqn not in self.names.classes
                and self.package.owns(fqn) and depth < MAX_DEPTH and fqn.rsplit(".", 1)[-1] not in TABLE_FUNCTIONS):
            found = self.package.find(fqn)
            if found is not None and found[1] in found[0].names.functions and found[1] not in found[0].names.classes:
                return self._foreign_factory(found[0], found[1], call, env, depth)
            if found is not None and found[1] not in found[0].names.classes and not self.package.owns(found[1]):
                fqn = found[1]  # Norm2d = nn.BatchNorm2d in the other module
        if self.library and fqn is not None and fqn.startswith(library_layers.PREFIXES) and depth < MAX_DEPTH \
                and not (func.__class__ is ast.Name and (func.id in self.names.functions or func.id in self.names.classes)):
            # conv3x3(c, c) imported from torchvision.models.resnet: what its documented
            # description builds (library_layers), walked like a sibling module's factory
            found = library_layers.find(fqn)
            if found is not None and found[1] in found[0].names.functions:
                if not library_layers.plain_call(found, call):
                    return ()  # resnet50(norm_layer=FrozenBatchNorm2d): members we do not describe
                return self._foreign_factory(found[0], found[1], call, env, depth)
        if fqn is not None:
            kind = self._kind_of(fqn)
            if (kind is None or kind[0] == OUTPUT_OF + "torch.nn.Dropout") and fqn in self.names.classes:
                wrapped = self._wrapper(fqn, call, env)
                if wrapped is not None:
                    return (wrapped,)
            elif kind is None and self.package is not None and self.package.owns(fqn):
                wrapped = self._sibling_wrapper(fqn, call, env)
                if wrapped is not None:
                    return (wrapped,)
            if kind is not None:
                base, unlike, same_args = kind
                args, kws = (tuple(call.args), kwargs) if same_args else ((), ())
                built = Built(base, args, kws, False, call, via=fqn.rsplit(".", 1)[-1], unlike=unlike)
                if base.startswith(OUTPUT_OF):  # the module is itself too
                    return (Built(fqn, tuple(call.args), kwargs, False, call), built)
                if fqn == SYNC_BATCH_NORM:
                    return (built, replace(built, fqn=SYNC_BATCH_NORM_1D))
                return (built,)
            if fqn == SEQUENTIAL:
                graph = self.sequence(call.args, env, depth)
                return (Built(fqn, tuple(call.args), kwargs, False, call, members=graph),)
            if fqn == TORCH_ACTIVATION_FN and len(call.args) == 1 and not call.keywords:
                got = self._torch_activation_fn(call, env)
                if got is not None:
                    return got
            table = fqn.rsplit(".", 1)[-1] in TABLE_FUNCTIONS
            if table and call.args and call.args[0].__class__ is ast.Name and not call.keywords \
                    and self._never_str_here(call.args[0], env):
                # if isinstance(activation, str): activation = get_activation(activation), another
                # file's string function given a parameter that holds no string where the file
                # builds it (F.relu handed on from builder to layer, audyn's Swin blocks): the
                # file never runs the table (GUIDE: a key handed to another file's function,
                # every construction in the file leaving a non-GELU default)
                return ()
            if table and call.args and call.args[0].__class__ is ast.Name:
                keys = self._built_keys(call.args[0], env)
                if keys:
                    # get_activation(activation), another file's string function given a
                    # parameter whose string default every construction in the file keeps, or a
                    # literal each passes (D-FINE's decoder layers, "relu"): those keys, as
                    # ACT2FN[activation] reads them (GUIDE: a key handed to another file's
                    # function, every construction in the file leaving a non-GELU default)
                    return tuple(Built(fqn, (ast.copy_location(ast.Constant(k), call.args[0]), *call.args[1:]),
                                       kwargs, True, call, conditional=len(keys) > 1) for k in keys)
            if not table and len(call.args) == 1 and not fqn.startswith("torch.") and fqn not in self.names.classes:
                key = self._config_type(call.args[0], env)
                if key is not None:
                    # build_activation_layer(dict(type="GELU")): another package's builder given
                    # a config naming a torch.nn activation class builds that class (a config
                    # that is a parameter's default may be another one: looked up at run time)
                    return (Built("torch.nn", (key,), (), True, call, via=fqn.rsplit(".", 1)[-1]),)
            return (Built(fqn, tuple(call.args), kwargs, table, call),)
        method = self._method(func, env)
        if method is not None:
            return self._factory(method.name, call, env, depth, method)
        if (func.__class__ is ast.Attribute and call.args and func.value.__class__ is ast.Attribute
                and func.value.value.__class__ is ast.Name and func.value.value.id == "self" and depth < MAX_DEPTH):
            made = self._registry_create(func, call, env, depth)
            if made is not None:
                return made
        if (self.library and func.__class__ is ast.Call and func.func.__class__ is ast.Name
                and func.func.id == "getattr" and len(func.args) == 2 and not func.keywords and depth < MAX_DEPTH
                and func.func.id not in env and func.func.id not in self.names.functions
                and func.func.id not in self.names.imports and builtin_unbound(self.names, "getattr")):
            # getattr(models, arch)(pretrained=...) with arch="resnet34" a parameter's default (or
            # a literal): the described library factory the key names where it runs, walked as
            # models.resnet34(...) would be (library_layers)
            holder = self.names.resolve(func.args[0])
            key = func.args[1]
            text = key.value if key.__class__ is ast.Constant and isinstance(key.value, str) else \
                self._param_constant(key, env, str) if key.__class__ is ast.Name else None
            found = library_layers.find(f"{holder}.{text}") if holder is not None and text else None
            if found is not None and found[1] in found[0].names.functions:
                if not library_layers.plain_call(found, call):
                    return ()
                return self._foreign_factory(found[0], found[1], call, env, depth)
        if (isinstance(func, ast.Call) and isinstance(func.func, ast.Name) and func.func.id == "getattr"
                and func.func.id not in env and func.func.id not in self.names.functions
                and func.func.id not in self.names.imports and len(func.args) == 2 and not func.keywords
                and self.names.resolve(func.args[0]) == "torch.nn" and builtin_unbound(self.names, "getattr")):
            # getattr(nn, f"Conv{ndim}d")(...), getattr(nn, norm)(...) with norm="BatchNorm2d":
            # a structural layer class the key names where it runs (a literal, or parameters'
            # constant defaults, as for norm_layer=nn.BatchNorm2d): that class, built here
            named = self._getattr_class(func.args[1], env) if func.args[1].__class__ in _GETATTR_KEYS else None
            if named is not None:
                return (Built("torch.nn." + named, tuple(call.args), kwargs, False, call, via="getattr"),)
            # getattr(nn, activation)(): the torch.nn class the string names, looked up like a
            # table (a run-time string may name any activation: checked where it runs)
            return (Built("torch.nn", (func.args[1],), (), True, call, via="getattr"),)
        if func.__class__ is ast.Subscript and func.value.__class__ is ast.Call:
            looked_up = self._vars_lookup(func, call, kwargs, env)
            if looked_up is not None:
                return looked_up
        if isinstance(func, ast.Subscript):
            table = self.names.resolve(func.value)
            if table is not None and table.rsplit(".", 1)[-1] in CLASS_TABLES:
                # ACT2CLS[config.act](): the class the key names, built here: the table's activation
                return (Built(table, (func.slice,), (), True, call),)
            # ACTIVATIONS[act](): a layer class taken from a same-file table, built here.
            out = []
            for value in self.values(func, env, depth, called=True):
                if isinstance(value, LayerClass):
                    out.append(Built(value.fqn, value.args + tuple(call.args), value.kwargs + kwargs, False, call,
                                     conditional=not isinstance(func.slice, ast.Constant)))
            return tuple(out)
        if (func.__class__ is ast.Attribute and func.attr == "get" and 1 <= len(call.args) <= 2
                and not call.keywords and depth < MAX_DEPTH):
            # ACTIVATIONS.get(act, F.silu): a table lookup that falls back to the default
            got = self._table_get(func.value, call, env, depth)
            if got:
                return got
        # A call of a name or attribute that holds a layer class: norm_layer(planes); of a call
        # that returns one: MaybeSyncBatchnorm(is_distributed)(dim)
        if isinstance(func, (ast.Name, ast.Attribute)) or (isinstance(func, ast.Call) and depth < MAX_DEPTH):
            via = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else (
                getattr(func.func, "id", None) or getattr(func.func, "attr", ""))
            out = []
            values = [value for value in self.values(func, env, depth, called=True) if isinstance(value, LayerClass)]
            for value in values:
                if value.fqn == GETATTR_NN:  # a class getattr(nn, key) named, called here
                    out.append(Built("torch.nn", value.args, (), True, call, via="getattr", unlike=value.unlike))
                    continue
                kind = self._kind_of(value.fqn) if (value.fqn == SYNC_BATCH_NORM
                                                    or _module_only(self.names, value.fqn)) else None
                if kind is None and value.fqn in self.names.classes:
                    # norm_layer=FrozenBN, a same-file subclass of a torch layer: typed as
                    # when built by name (_kind_of).  One that is not exactly the layer (an
                    # activation after the norm, the norm in eval only) and is one of several
                    # classes the name may hold keeps its own name: the kernel runs any class
                    # but the plain layer as written, so the others' pairs stay fixable.
                    kind = self._kind_of(value.fqn)
                    if kind is not None and kind[1] and len(values) > 1:
                        kind = None
                if kind is not None and not kind[0].startswith(OUTPUT_OF):
                    # activation = default(activation, GELU_), GELU_ a same-file nn.Module
                    # whose forward is the GELU formula: built here, what the class computes
                    base, unlike, same_args = kind
                    out.append(Built(base, tuple(call.args) if same_args else (), kwargs if same_args else (),
                                     False, call, via=value.fqn, unlike=unlike or value.unlike))
                    if value.fqn == SYNC_BATCH_NORM:
                        out.append(replace(out[-1], fqn=SYNC_BATCH_NORM_1D))
                elif value.foreign:  # a class another module chose: its arguments are not ours
                    out.append(Built(value.fqn, (), (), False, call, via=via, unlike=value.unlike))
                else:
                    out.append(Built(value.fqn, value.args + tuple(call.args), value.kwargs + kwargs, False, call,
                                     via=via, unlike=value.unlike))
                    if kind is not None:
                        # conv=Conv2dPad, a same-file Conv2d subclass padding its input in its
                        # own forward: the module, and a layer's output too, as when the class
                        # is called by its name
                        base, unlike, same_args = kind
                        out.append(Built(base, tuple(call.args) if same_args else (),
                                         kwargs if same_args else (), False, call, via=value.fqn,
                                         unlike=unlike or value.unlike))
            return tuple(out)
        return ()

    def _vars_lookup(self, func: ast.Subscript, call: ast.Call, kwargs: tuple, env: dict) -> tuple | None:
        """``vars(torch.nn.modules.activation)[key](...)`` (graphium's ``get_activation``) or
        ``vars(nn)[key](...)``: the builtin ``vars`` of a module is its namespace, so the call
        builds what ``getattr(module, key)(...)`` builds, read as that is: a structural class
        a known key names, else the torch.nn class a run-time key names, looked up like a table
        (an activation checked where it runs).  None for anything else (``vars`` rebound, at
        module level too: ``vars = lambda obj: {...}``; another module, another object)."""
        inner = func.value
        if not (inner.func.__class__ is ast.Name and inner.func.id == "vars" and len(inner.args) == 1
                and not inner.keywords and "vars" not in env and "vars" not in self.names.functions
                and "vars" not in self.names.imports and builtin_unbound(self.names, "vars")):
            return None
        module = self.names.resolve(inner.args[0])
        if module != "torch.nn" and module != "torch.nn.modules.activation":
            return None
        key = func.slice
        named = self._getattr_class(key, env) if module == "torch.nn" and key.__class__ in _GETATTR_KEYS else None
        if named is not None:
            return (Built("torch.nn." + named, tuple(call.args), kwargs, False, call, via="vars"),)
        return (Built("torch.nn", (key,), (), True, call, via="vars"),)

    def _getattr_class(self, key: ast.expr, env: dict) -> str | None:
        """The structural torch.nn class (:data:`_GETATTR_CLASS`) that ``getattr(nn, key)`` names:
        ``key`` a string literal, a parameter whose default is one, or an f-string whose parts
        are literals and parameters with a constant default (``f"Conv{ndim}d"``, ``ndim=2``).
        None for anything else (an activation's name stays a run-time table key)."""
        if key.__class__ is ast.Constant:
            text = key.value if isinstance(key.value, str) else None
        elif key.__class__ is ast.Name:
            text = self._param_constant(key, env, str)
        elif key.__class__ is ast.BinOp:
            # "Conv%dd" % dim, "%s%dd" % (kind, dim): the format applied to the known constants
            if key.op.__class__ is not ast.Mod or key.left.__class__ is not ast.Constant \
                    or not isinstance(key.left.value, str):
                return None
            operands = key.right.elts if key.right.__class__ is ast.Tuple else [key.right]
            values = []
            for operand in operands:
                if operand.__class__ is ast.Constant and isinstance(operand.value, (str, int)) \
                        and not isinstance(operand.value, bool):
                    values.append(operand.value)
                    continue
                got = self._param_constant(operand, env, (str, int)) if operand.__class__ is ast.Name else None
                if got is None:
                    return None
                values.append(got)
            try:
                text = key.left.value % tuple(values)
            except (TypeError, ValueError):
                return None
        else:
            parts = []
            for part in key.values:
                if part.__class__ is ast.Constant:
                    parts.append(str(part.value))
                    continue
                if part.conversion != -1 or part.format_spec is not None or part.value.__class__ is not ast.Name:
                    return None
                got = self._param_constant(part.value, env, (str, int))
                if got is None:
                    return _run_time_class(key, env)
                parts.append(str(got))
            text = "".join(parts)
        return text if text is not None and _GETATTR_CLASS.fullmatch(text) else None

    @staticmethod
    def _param_constant(name: ast.Name, env: dict, kinds) -> object:
        """The constant default (of one of ``kinds``, not a bool) of the parameter ``name``
        holds, or None when it is not a parameter with such a default."""
        held = env.get(name.id)
        if not isinstance(held, _Param):
            # a factory's parameter its call fixes to a constant (function_env, CONSTANT), in
            # each function it was passed through never rebound
            got = env.get(CONSTANT + name.id)
            if got is None or not isinstance(got[0], kinds) or any(_rebinds(f, n) for f, n in got[1]):
                return None
            return got[0]
        default = _default_of(held)
        if default.__class__ is not ast.Constant or isinstance(default.value, bool) \
                or not isinstance(default.value, kinds):
            return None
        return default.value

    def _config_type(self, arg: ast.expr, env: dict) -> ast.expr | None:
        """The key of a registry config naming a torch.nn activation class: ``dict(type="GELU")``
        or ``{"type": "GELU"}`` in place (the constant), or a parameter whose default is one
        (the parameter: callers may pass another config).  None for anything else."""
        default = False
        if isinstance(arg, ast.Name):
            held = env.get(arg.id)
            if not isinstance(held, _Param):
                return None
            arg = _default_of(held)
            default = True
        name = None
        if isinstance(arg, ast.Call) and _is_name(arg.func, "dict") and "dict" not in self.names.imports \
                and not arg.args:
            name = next((k.value for k in arg.keywords if k.arg == "type"), None)
        elif isinstance(arg, ast.Dict):
            name = next((v for k, v in zip(arg.keys, arg.values)
                         if isinstance(k, ast.Constant) and k.value == "type"), None)
        if not (isinstance(name, ast.Constant) and isinstance(name.value, str)):
            return None
        found = TABLE.module("torch.nn." + name.value)
        if found is None or found[0].name not in TABLE.runtime:
            return None
        return ast.copy_location(ast.Name(id="<config>", ctx=ast.Load()), name) if default else name

    def _foreign_factory(self, other: "LayerTyper", name: str, call: ast.Call, env: dict, depth: int,
                         item: int | None = None) -> tuple:
        """What a function of a sibling module (``other``) returns when this file calls it: its
        arguments are typed here, the function is walked there.  The layers it builds are
        placed at the call (their arguments are the other module's expressions: none is kept)."""
        marshalled = self._foreign_call(other, name, call, env, depth)
        if marshalled is None:
            return ()
        inner, passed, via = marshalled
        out = []
        for value in other._factory(name, inner, passed, depth + 1, item=item):
            value = other._export(value)
            if isinstance(value, Built):
                out.append(Built(value.fqn, (), (), value.table, call, via=via, conditional=value.conditional,
                                 unlike=value.unlike, function=value.function))
            elif isinstance(value, LayerClass):
                out.append(value)
        return tuple(out)

    def _foreign_call(self, other: LayerTyper, name: str, call: ast.Call, env: dict, depth: int):
        """The call as the sibling module walks it: (a call whose arguments are names of the
        values typed here, or the literal ``True``/``False``/``None`` written, those names'
        values, the name the call uses); None when what it passes is not known here."""
        if any(isinstance(a, ast.Starred) for a in call.args):
            return None  # what *args pass is not known here
        spread = []  # **dd with dd a dict of this function whose keys are known: those keywords
        unknown = False
        for keyword in call.keywords:
            if keyword.arg is None:
                keys = env.get("dict:" + keyword.value.id) if isinstance(keyword.value, ast.Name) else None
                if keys is None:
                    unknown = True
                else:
                    spread.extend(ast.keyword(arg=k, value=ast.Constant(None)) for k in keys)
        if unknown:
            # What **kwargs pass is not known here: it can only reach the function's own
            # **kwargs when every named parameter is passed explicitly (else it may set one)
            func = other.names.functions.get(name)
            args = func.args if func is not None else None
            if args is None or args.kwarg is None or args.vararg is not None:
                return None
            given = {k.arg for k in call.keywords if k.arg is not None}
            positional = args.posonlyargs + args.args
            if any(a.arg not in given for a in positional[len(call.args):]) or any(
                    a.arg not in given for a in args.kwonlyargs):
                return None
            spread = []
        if spread or unknown:
            # (a key also passed by name was popped from the dict first: passing both would fail)
            named = [k for k in call.keywords if k.arg is not None]
            spread = [k for k in spread if k.arg not in {n.arg for n in named}]
            if unknown:  # (still unknown to the function: its **kwargs holds keys we do not know)
                spread.append(ast.keyword(arg=None, value=ast.Name(id="\0unknown", ctx=ast.Load())))
            call = ast.copy_location(ast.Call(func=call.func, args=call.args, keywords=named + spread), call)
        passed: dict = {}
        args = []
        for index, arg in enumerate(call.args):
            if _literal_flag(arg) is not None:
                args.append(arg)  # a literal flag stays one: ``if bn:`` there runs one way
                continue
            number = _foreign_int(arg, env)
            if number is not None:
                args.append(number)  # get_nd_conv(nd), nd=2: ``"Conv%dd" % dim`` there is Conv2d
                continue
            # build_act(act_func), act_func=None that no construction in the file sets: the
            # other module runs with None there (a table holds no None key: no entry), not with
            # a run-time key (GUIDE: a key handed to another file's function, every construction
            # in the file leaving a non-GELU default; efficientvit's LinearLayer)
            passed[f"\0{index}"] = (Key(None),) if self._none_where_built(arg, env) else \
                self._passed_on(arg, env, depth)
            args.append(ast.Name(id=f"\0{index}", ctx=ast.Load()))
        keywords = []
        for keyword in call.keywords:
            if keyword.arg is None or _literal_flag(keyword.value) is not None:
                keywords.append(keyword)
                continue
            number = _foreign_int(keyword.value, env)
            if number is not None:
                keywords.append(ast.keyword(arg=keyword.arg, value=number))
                continue
            # (by name as by position: BuildNormalization(c, norm_cfg=norm_cfg), norm_cfg=None
            # that no construction in the file sets, runs the other module's None branch)
            passed[f"\0{keyword.arg}"] = (Key(None),) if self._none_where_built(keyword.value, env) else \
                self._passed_on(keyword.value, env, depth)
            keywords.append(ast.keyword(arg=keyword.arg, value=ast.Name(id=f"\0{keyword.arg}", ctx=ast.Load())))
        inner = ast.Call(func=call.func, args=args, keywords=keywords)
        via = call.func.id if isinstance(call.func, ast.Name) else getattr(call.func, "attr", name)
        return inner, passed, via

    def _none_where_built(self, arg: ast.expr, env: dict) -> bool:
        """Is ``arg`` a parameter defaulting to ``None`` that no call of its function (class) in
        the file passes (:meth:`_never_str_at`): it holds ``None`` wherever the file builds it."""
        param = env.get(arg.id) if arg.__class__ is ast.Name else None
        return (param.__class__ is _Param and param.method_of is None and param.item is None
                and _none_default(param)
                and self._never_str_at(param.func, param.owner, param.index, param.name, param.positional))

    def _passed_on(self, arg: ast.expr, env: dict, depth: int) -> tuple:
        """What an argument of a call of a sibling module's function holds: its values, or for a
        parameter with a string default that the file decides where it builds the function
        (:meth:`_built_keys`), those strings as known keys (the other module's ``if name ==
        "swish":`` then runs its one branch: yet-another-retnet's "swish" default)."""
        if arg.__class__ is ast.Name:
            keys = self._built_keys(arg, env)
            if keys:
                return tuple(Key(k) for k in keys)
        return self.values(arg, env, depth + 1)

    def _built_keys(self, expr: ast.expr, env: dict) -> tuple | None:
        """:meth:`_decided_keys` of a parameter whose function (class) the file builds at least
        once: every way the file builds it gives one of these strings.  A class the file never
        builds takes its key from callers elsewhere (altasr's and diffusers' feed-forward
        activations, "silu" defaults: a run-time key)."""
        param = env.get(expr.id) if expr.__class__ is ast.Name else None
        if not (param.__class__ is _Param and len(param.default) == 1 and param.default[0].__class__ is Key
                and param.method_of is None):
            return None
        func, owner = param.func, param.owner
        target = owner if owner is not None and func.name == "__init__" else (func.name if owner is None else None)
        if target is None or self.tree is None or not self.callers(target):
            return None
        return self._decided_keys(expr, env)

    def _export(self, value):
        """A value of this (sibling) module as another module sees it: its own classes named by
        the layer they compute (else qualified by this module), no argument expressions."""
        fqn = value.fqn
        unlike = value.unlike
        if fqn in self.names.classes:
            kind = self._kind_of(fqn)
            if kind is not None:
                fqn, why, _ = kind
                unlike = unlike or why or (f"`{value.fqn}` is defined in `{self.module}`"
                                           if isinstance(value, LayerClass) and value.args + value.kwargs else "")
            else:
                fqn = f"{self.module}.{fqn}"
        elif not fqn.startswith("torch.") and "." not in fqn:
            return None
        if isinstance(value, LayerClass):
            if value.args or value.kwargs:  # partial(Layer, ...): arguments the fix cannot see
                unlike = unlike or f"`{value.fqn}` is given arguments in `{self.module}`"
            return LayerClass(fqn, (), (), unlike, True)
        return replace(value, fqn=fqn, unlike=unlike, members=None)

    def _method(self, func: ast.expr, env: dict):
        """The method ``self.m`` / ``Cls.m`` names, when it is a method of a same-file class
        (not a layer attribute): a factory too (``self.depthwise_conv(...)``)."""
        if not (isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name)):
            return None
        owner = func.value.id
        if owner == "self":
            if "self." + func.attr in env:
                return None
            owner = env.get("__class__")
        elif isinstance(env.get(owner), _Param):
            # activation.build() with ``activation: Act = Act.silu``: a method of the same-file
            # class the parameter is annotated with (or whose member is its default); whichever
            # member is passed, the method returns one of its return values
            owner = self._param_class(env[owner])
        cls = self.names.classes.get(owner) if isinstance(owner, str) else None
        if cls is None:
            return None
        for item in cls.body:
            if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)) and item.name == func.attr:
                return item if item.name != "__init__" else None
        return None

    def _registry_create(self, func: ast.Attribute, call: ast.Call, env: dict, depth: int) -> tuple | None:
        """What ``self.acts.create(key)`` builds when ``self.acts`` is a registry object
        (:mod:`.registries`: an instance of a class of this file or of a sibling module that
        stores builders by key and calls the chosen one) the file fills with builders under
        literal keys: each registered builder's layer, conditional unless the key is known
        here.  None for any other call; the file's text is searched once for a registration
        (``self.x.m("key", builder)``) before anything else is read."""
        cache = self._registries
        if cache is None:
            text = self.text if self.text is not None else "\n".join(self.lines) if self.lines is not None else ""
            cache = self._registries = {None: text if _REGISTRATION.search(text) else None}
        text = cache[None]
        if text is None:
            return None  # (no registration written in the file)
        attr = func.value.attr
        if attr not in cache:
            cache[attr] = self._read_registry(attr, text)
        found = cache[attr]
        if found is None or func.attr not in found[0] or len(call.args) != 1 or call.keywords:
            return None
        creates, entries = found
        known = self._known(call.args[0], env, depth)
        chosen = [e for e in entries if known is None or e[0] in known]
        out = []
        for _, builder in chosen:
            if builder.__class__ is ast.FunctionDef:
                values = self._factory(builder.name, ast.copy_location(ast.Call(builder, [], []), call), env,
                                       depth + 1, builder)
            else:
                values = self._call(ast.copy_location(ast.Call(builder, [], []), call), env, depth + 1)
            for value in values:
                if isinstance(value, Built) and not value.table and value.members is None:
                    out.append(replace(value, args=(), kwargs=(), node=call, via=func.attr,
                                       conditional=value.conditional or len(chosen) > 1))
                else:
                    return None  # a builder of something not typed as one layer: unknown
        return tuple(out) if out else None

    def _read_registry(self, attr: str, text: str) -> tuple | None:
        """(create method names, [(key, builder)]) of the registry object ``self.<attr>`` (see
        :meth:`_registry_create`), a lambda builder as a function; None when it is none."""
        read = file_registry(text, attr)
        if read is None:
            return None
        constructor, registered, called = read
        try:
            made = ast.parse(constructor, mode="eval").body
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            return None
        if not (isinstance(made, ast.Call) and not made.args and not made.keywords):
            return None
        fqn = self.names.resolve(made.func)
        cls = None
        if fqn is not None and fqn in self.names.classes:
            cls = self.names.classes[fqn]
        elif fqn is not None and self.package is not None and self.package.owns(fqn):
            found = self.package.find(fqn)
            if found is not None and found[1] in found[0].names.classes:
                cls = found[0].names.classes[found[1]]
        methods = registry_methods(cls) if isinstance(cls, ast.ClassDef) else None
        if methods is None:
            return None
        registers, creates = methods
        if any(name not in registers for name, _, _ in registered) or any(name not in creates for name in called):
            return None
        entries = []
        for _, key, builder in registered:
            if builder.__class__ is ast.Lambda:
                builder = ast.copy_location(ast.FunctionDef(
                    name=f"<{attr}:{key}>", args=builder.args,
                    body=[ast.copy_location(ast.Return(value=builder.body), builder.body)],
                    decorator_list=[], returns=None), builder)
            elif builder.__class__ not in (ast.Name, ast.Attribute):
                return None
            entries.append((key, builder))
        return creates, entries

    def _param_class(self, param: "_Param") -> str | None:
        """The same-file class a parameter holds an instance of, by its annotation (``act:
        Act``) or its default (``act=Act.silu``, a member of an enum-like class); None if
        neither names one."""
        args = param.func.args
        arg = next((a for a in (*args.posonlyargs, *args.args, *args.kwonlyargs) if a.arg == param.name), None)
        named = arg.annotation if arg is not None else None
        default = _default_of(param)
        if named is None and isinstance(default, ast.Attribute):
            named = default.value
        if isinstance(named, ast.Constant) and isinstance(named.value, str):
            named = ast.Name(id=named.value.strip(), ctx=ast.Load())
        if isinstance(named, ast.Name) and named.id in self.names.classes:
            if isinstance(default, ast.Attribute) and not (isinstance(default.value, ast.Name)
                                                           and default.value.id == named.id):
                return None  # annotated with one class, defaulting to another's member
            return named.id
        return None

    def _factory(self, name: str, call: ast.Call, env: dict, depth: int, func=None, item: int | None = None,
                 closure: dict | None = None) -> tuple:
        """What a same-file function (or method) returns when called like this; with ``item``,
        what the ``item``-th element of the tuple it returns holds (``act, scale =
        get_act(name)``; a return of anything but a tuple that long gives nothing)."""
        key = name if func is None else ("method", id(func))
        if depth >= MAX_DEPTH or key in self._busy:
            return ()
        is_method = func is not None
        func = func or self.names.functions[name]
        self._busy.add(key)
        try:
            first = (func.args.posonlyargs + func.args.args)[:1]
            bound = is_method and first and first[0].arg in ("self", "cls") and not any(
                isinstance(d, ast.Name) and d.id == "staticmethod" for d in func.decorator_list)
            inner = self.function_env(func, "<method>" if bound else None, depth + 1, call=(call, env),
                                      class_env=closure, cls_name=env.get("__class__"))
            out = []
            for stmt in self._decided_returns(func.body, inner):
                returned = stmt.value
                if item is not None:
                    if not (isinstance(returned, ast.Tuple) and item < len(returned.elts)
                            and not any(isinstance(e, ast.Starred) for e in returned.elts)):
                        continue
                    returned = returned.elts[item]
                # A name that holds, on some way through the function, a value we cannot type
                # (a class looked up in a table by a computed key): the layer it builds may be
                # another class than the one typed here: reported, not fixed.
                unsure = isinstance(returned, ast.Name) and UNKNOWN + returned.id in inner
                values = self.values(returned, inner, depth + 1)
                # ... or holds a class getattr(nn, key) names by a run-time key (any torch.nn class)
                unsure = unsure or any(value.__class__ is LayerClass and value.fqn == GETATTR_NN for value in values)
                why = (f"`{name}` may return another class than `{{}}` (one it computes at run time)"
                       if unsure else "")
                for value in values:
                    if isinstance(value, Built):
                        out.append(replace(value, via=name, unlike=value.unlike or why.format(value.fqn)))
                    elif isinstance(value, LayerClass):  # a function choosing a layer class
                        out.append(replace(value, unlike=value.unlike or why.format(value.fqn)))
            return tuple(out)
        finally:
            self._busy.discard(key)

    def builder_members(self, name: str, call: ast.Call) -> list | None:
        """The layers a call of a same-file function that returns its ``*layers`` run in order
        hands it (:mod:`.sequential_builders`: ``nn.Sequential(*layers)``, the one layer, or
        ``nn.Identity()``, ``None`` entries dropped first), ``None`` entries left out; None for
        any other call or function.  The shape is read once per function, and only for one
        whose last statement returns a call and that takes ``*args``."""
        func = self.names.functions.get(name)
        if func is None or func.args.vararg is None or not func.body:
            return None  # (cheap gate: most factories take named parameters)
        last = func.body[-1]
        if last.__class__ is not ast.Return or last.value.__class__ is not ast.Call:
            return None
        key = ("sequential-builder", name)
        if key not in self._kinds:
            rebound = self._kinds.get("rebound-builtins")
            if rebound is None:
                rebound = self._kinds["rebound-builtins"] = rebound_builtins(self.tree, self.names)
            self._kinds[key] = builder_shape(func, self.names.resolve, self.names.functions, rebound)
        drops_none = self._kinds[key]
        if drops_none is None or call.keywords or any(a.__class__ is ast.Starred for a in call.args):
            return None
        kept = []
        for arg in call.args:
            if _is_none(arg) or (arg.__class__ is ast.IfExp and (_is_none(arg.body) or _is_none(arg.orelse))):
                if not drops_none:
                    return None  # (nn.Sequential keeps a None, and calling it fails)
                if _is_none(arg):
                    continue
            kept.append(arg)
        return kept

    def _built_sequential(self, name: str, call: ast.Call, env: dict, depth: int) -> tuple | None:
        """:meth:`builder_members`'s call as an nn.Sequential of those layers, an entry ``X if
        c else None`` one that runs on some ways only.  None for any other call."""
        kept = self.builder_members(name, call)
        if kept is None:
            return None
        graph = SeqGraph()
        for arg in kept:
            before = set(graph.frontier)
            graph.add(self.values(arg, env, depth + 1), arg)
            if arg.__class__ is ast.IfExp:
                graph.frontier |= before  # (X if c else None: the ways without it)
        return (Built(SEQUENTIAL, tuple(call.args), (), False, call, via=name, members=graph, unlike=(
            f"`{name}` builds the nn.Sequential of the layers passed to it: rewrite by hand")),)

    def _decided_returns(self, body: list, env: dict):
        """:func:`_returns` of a factory's body, less those in the branches of an ``if`` that the
        keys the call gives decide the other way (``if activation == "swish": return F.silu``
        with a known ``"swish"``: only that return; statements after a decided branch that
        always returns do not run).  The tests are only read where the body has an ``if`` whose
        branch returns (most factories return once)."""
        for stmt in body:
            cls = stmt.__class__
            if cls is ast.If:
                decided = self._decide(stmt.test, env) if _any_return(stmt) else None
                if decided is None:
                    yield from self._decided_returns(stmt.body, env)
                    yield from self._decided_returns(stmt.orelse, env)
                    continue
                taken = stmt.body if decided else stmt.orelse
                yield from self._decided_returns(taken, env)
                if taken and taken[-1].__class__ is ast.Return:
                    return
            elif cls is ast.Return:
                if stmt.value is not None:
                    yield stmt
                return
            elif cls in _BLOCKS:  # (a simple statement holds no return)
                yield from _returns((stmt,))

    def _lambda_def(self, name: str) -> ast.FunctionDef:
        """A module-level lambda as the function ``def <name>(<its args>): return <its body>``
        (made once per name), for :meth:`_factory`."""
        made = self._lambda_defs.get(name)
        if made is None:
            lam = self.names.lambdas[name]
            made = ast.copy_location(ast.FunctionDef(name=name, args=lam.args,
                                                     body=[ast.copy_location(ast.Return(value=lam.body), lam.body)],
                                                     decorator_list=[], returns=None), lam)
            self._lambda_defs[name] = made
        return made

    def _factory_item(self, call: ast.Call, index: int, env: dict, depth: int) -> tuple:
        """What the ``index``-th name of ``a, b = factory(...)`` holds, ``factory`` a function of
        this file or of a sibling module returning tuples; () for any other call."""
        if depth >= MAX_DEPTH or (isinstance(call.func, ast.Name) and call.func.id in env):
            return ()
        fqn = self.names.resolve(call.func)
        if fqn is None and call.func.__class__ is ast.Attribute:
            method = self._method(call.func, env)  # self.conv, self.bn = self._conv_bn(c, d)
            return self._factory(method.name, call, env, depth, method, item=index) if method is not None else ()
        if fqn is None or fqn in self.names.classes:
            return ()
        if fqn in self.names.functions:
            return self._factory(fqn, call, env, depth, item=index)
        if self.package is not None and self.package.owns(fqn):
            found = self.package.find(fqn)
            if found is not None and found[1] in found[0].names.functions and found[1] not in found[0].names.classes:
                return self._foreign_factory(found[0], found[1], call, env, depth, item=index)
        return ()

    def _factory_list(self, name: str, call: ast.Call, env: dict, depth: int, func=None,
                      closure: dict | None = None) -> SeqGraph | None:
        """The members of the list a same-file function (or method) returns when called like
        this (``seq = [nn.Conv2d(...)]; if bn: seq.append(nn.BatchNorm2d(...)); return seq``),
        in order, an ``if`` on a parameter the call binds to a literal (``bn=True``) walked the
        one way it runs.  None unless the function's one ``return`` ends its body and gives a
        list it builds (a name holding such a list, or a list display)."""
        key = ("list", name if func is None else id(func))
        if depth >= MAX_DEPTH or key in self._busy:
            return None
        is_method = func is not None
        func = func or self.names.functions.get(name)
        if func is None or not func.body:
            return None
        last = func.body[-1]
        if not (isinstance(last, ast.Return) and last.value is not None):
            return None
        if isinstance(last.value, ast.Name) and not any(
                isinstance(stmt, (ast.Assign, ast.AnnAssign)) and isinstance(stmt.value, (ast.List, ast.Tuple))
                and any(_is_name(t, last.value.id) for t in (stmt.targets if isinstance(stmt, ast.Assign)
                                                               else [stmt.target]))
                for stmt in _branch_statements(func.body)):
            # (cheap: a returned name is a list this reads only when bound to a display, also in
            # the branches of an if: ``if self.use_bn: layers = [conv, bn, act] else: ...``)
            return None
        if not isinstance(last.value, (ast.Name, ast.List, ast.Tuple, ast.BinOp, ast.IfExp)) or any(
                isinstance(node, (ast.Return, ast.Yield, ast.YieldFrom)) for stmt in func.body[:-1]
                for node in ast_walk(stmt)):
            return None
        first = (func.args.posonlyargs + func.args.args)[:1]
        bound = is_method and first and first[0].arg in ("self", "cls") and not any(
            isinstance(d, ast.Name) and d.id == "staticmethod" for d in func.decorator_list)
        self._busy.add(key)
        try:
            inner = self.function_env(func, "<method>" if bound else None, depth + 1, call=(call, env),
                                      class_env=closure, cls_name=env.get("__class__"), literals=True)
            return self._list_graph(last.value, inner, depth + 1)
        finally:
            self._busy.discard(key)

    def _list_call(self, call: ast.Call, env: dict, depth: int) -> SeqGraph | None:
        """The members of the list a call of a same-file or sibling-module function returns
        (``*conv_sequence(cin, cout, True, True)`` spread into a Sequential), each placed at the
        call; None when the call is not such a function's."""
        func = call.func
        if isinstance(func, ast.Name) and func.id in env:
            return None
        if func.__class__ is ast.Name and LOCAL_DEF + func.id in env:
            # *block(cin, cout): a list builder defined in the walked body
            local = env[LOCAL_DEF + func.id]
            graph = self._factory_list(func.id, call, env, depth, local, closure=_closure(local, env))
            if graph is None:
                return None
            placed = graph.copy()
            placed.members = [(built, call) for built, _ in graph.members]
            return placed
        fqn = self.names.resolve(func)
        if fqn is None and _is_name(func, "list") and not call.args and not call.keywords:
            return SeqGraph()  # layers = list(): the builtin's empty list, then appended to
        if fqn == MODULE_LIST and not call.keywords and not call.args[1:]:
            # layers = nn.ModuleList([conv, norm, act]) (or empty, then appended to), later
            # spread into nn.Sequential(*layers): the members of its list, in order (ezflow's
            # encoders); a ModuleList holds its modules as the list does
            if not call.args:
                return SeqGraph()
            if call.args[0].__class__ in _LIST_VALUES:
                return self._list_graph(call.args[0], env, depth)
            return None
        graph = None
        if fqn is not None and fqn in self.names.functions and fqn not in self.names.classes:
            graph = self._factory_list(fqn, call, env, depth)
        elif (fqn is not None and self.package is not None and fqn not in self.names.classes
              and self.package.owns(fqn) and depth < MAX_DEPTH):
            found = self.package.find(fqn)
            if found is not None and found[1] in found[0].names.functions and found[1] not in found[0].names.classes:
                return self._foreign_factory_list(found[0], found[1], call, env, depth)
        elif fqn is None:
            method = self._method(func, env)
            if method is not None:
                graph = self._factory_list(method.name, call, env, depth, method)
        if graph is None:
            return None
        placed = graph.copy()
        placed.members = [(built, call) for built, _ in graph.members]
        return placed

    def _foreign_factory_list(self, other: LayerTyper, name: str, call: ast.Call, env: dict,
                              depth: int) -> SeqGraph | None:
        """:meth:`_factory_list` of a sibling module's function: its members as this file sees
        them (typed by the layer they compute, no argument expressions), placed at the call."""
        marshalled = self._foreign_call(other, name, call, env, depth)
        if marshalled is None:
            return None
        inner, passed, via = marshalled
        graph = other._factory_list(name, inner, passed, depth + 1)
        if graph is None:
            return None
        return _exported_at(other, graph, call, via)

    # ------------------------------------------------------------------ Sequential members
    def sequence(self, args, env: dict, depth: int) -> SeqGraph:
        graph = SeqGraph()
        for arg in args:
            if isinstance(arg, ast.Starred):
                inner = arg.value
                listed = env.get("list:" + inner.id) if inner.__class__ is ast.Name else (
                    env.get("list:self." + inner.attr) if _self_attribute(inner) else None)
                if isinstance(listed, SeqGraph) and not listed.named:
                    graph.extend(listed)
                elif isinstance(inner, (ast.List, ast.Tuple)):
                    for elt in inner.elts:
                        graph.add(self.values(elt, env, depth), elt)
                elif isinstance(inner, (ast.ListComp, ast.GeneratorExp)):
                    kept = _without_none(inner, env)
                    if kept is not None:
                        graph.extend(kept)  # *(m for m in layers if m is not None)
                    else:
                        graph.add(self.values(inner.elt, env, depth), inner.elt)
                elif inner.__class__ is ast.IfExp and inner.body.__class__ in (ast.List, ast.Tuple) \
                        and inner.orelse.__class__ in (ast.List, ast.Tuple) \
                        and not any(e.__class__ is ast.Starred for e in inner.body.elts + inner.orelse.elts):
                    # *([nn.BatchNorm2d(c)] if bn else []): the members of one list or the
                    # other, which one not known (either way joined to what comes before and after)
                    decided = self._decide(inner.test, env)
                    one = None
                    for side in (inner.body, inner.orelse) if decided is None else (
                            inner.body if decided else inner.orelse,):
                        sub = SeqGraph()
                        for elt in side.elts:
                            sub.add(self.values(elt, env, depth), elt)
                        one = sub if one is None else one.either(sub)
                    graph.extend(one)
                elif inner.__class__ is ast.Subscript and inner.value.__class__ is ast.Name and (
                        NESTED + inner.value.id in env):
                    # *sequence[n]: one of the sublists, which one not known
                    one = None
                    for sub, _ in env[NESTED + inner.value.id]:
                        one = sub.copy() if one is None else one.either(sub)
                    graph.extend(one)
                else:
                    returned = self._list_call(inner, env, depth) if isinstance(inner, ast.Call) else None
                    if returned is not None and not returned.named:
                        graph.extend(returned)  # *conv_bn(cin, cout): the list a factory returns
                    else:
                        spread = self._children_spread(inner, arg, env, depth) if self.library else None
                        if spread is not None:
                            graph.extend(spread)  # *list(net.children())[:3]: conv1, bn1, relu
                        else:
                            graph.add((), inner)
                continue
            if arg.__class__ is ast.Name and ODICT + arg.id in env:
                graph.extend(env[ODICT + arg.id])  # nn.Sequential(layers), layers an OrderedDict of pairs
                continue
            if isinstance(arg, ast.Call) and self.names.resolve(arg.func) in ORDERED_DICTS:
                first = arg.args[0] if len(arg.args) == 1 else None
                listed = env.get("list:" + first.id) if first.__class__ is ast.Name else (
                    self._list_call(first, env, depth) if first.__class__ is ast.Call else None)
                if isinstance(listed, SeqGraph) and listed.members and not listed.unnamed and not arg.keywords:
                    # OrderedDict(pairs), pairs a list of (name, layer), or the call of a function
                    # returning one (OrderedDict(make_layers(cfg)))
                    graph.extend(listed)
                    continue
                for element in _ordered_dict_values(arg, self.names):
                    before = graph.frontier
                    graph.add(self.values(element, env, depth), element)
                    if element.__class__ is ast.IfExp and self._may_skip(element, env):
                        graph.frontier |= before  # (graph.add binds a new frontier set)
                continue
            # a parameter named as a member (nn.ModuleList([nn.Linear(...), activation])) is a
            # layer the container runs: what the file's callers pass for it counts, as for a call
            before = graph.frontier
            graph.add(self.values(arg, env, depth, called=arg.__class__ is ast.Name
                                  and env.get(arg.id).__class__ is _Param), arg)
            if arg.__class__ is ast.IfExp and self._may_skip(arg, env):
                graph.frontier |= before  # (graph.add binds a new frontier set)
        return graph

    def _children_spread(self, inner: ast.expr, at: ast.expr, env: dict, depth: int) -> SeqGraph | None:
        """``*list(net.children())[a:b]``, ``*net.children()``, ``*layers[a:b]`` with ``layers =
        list(net.children())`` (never reordered): the members of a described library instance
        (library_layers.CHILDREN) in its registration order, each typed as ``net.<member>`` is
        (built by the library: reported, not fixed) and placed at ``at``.  None when the holder
        or the slice is not one this reads."""
        lo = hi = None
        base = inner
        if inner.__class__ is ast.Subscript:
            part = inner.slice
            if part.__class__ is not ast.Slice or part.step is not None:
                return None
            lo, hi = _int_bound(part.lower), _int_bound(part.upper)
            if lo is False or hi is False:
                return None
            base = inner.value
        holder = _children_holder(base, base is inner)
        if holder is None:
            key = _key(base)
            holder = env.get(CHILDREN_OF + key) if key is not None else None
            if holder is None or library_layers.list_reordered(self._class_text(env), key):
                return None
        if _self_attribute(holder):
            held = env.get("self." + holder.attr, ())
        elif holder.__class__ is ast.Name and INSTANCE + holder.id in env and depth < MAX_DEPTH:
            held = self.values(env[INSTANCE + holder.id], env, depth + 1)
        else:
            return None
        if held.__class__ is not tuple or len(held) != 1 or held[0].__class__ is not Built:
            return None
        order = library_layers.children(held[0].fqn)
        if order is None:
            return None
        graph = SeqGraph()
        for name in order[lo:hi]:
            member = ast.copy_location(ast.Attribute(value=holder, attr=name, ctx=ast.Load()), at)
            graph.add(self.values(member, env, depth), member)
        return graph

    def _may_skip(self, member: ast.IfExp, env: dict) -> bool:
        """Is the Sequential member ``X if flag else nn.Identity()`` (either side) with a test
        the known keys do not decide for ``X``?  On the ways that build the identity the member
        computes nothing, so the members around it run one right after the other there (open_clip's
        ``norm_layer(w) if scale_fc else nn.Identity()`` between ``c_fc`` and the GELU), as the
        ways without an ``X if c else None`` entry join its neighbours."""
        sides = (member.body, member.orelse)
        identity = [s.__class__ is ast.Call and not s.args and not s.keywords
                    and self.names.resolve(s.func) == _IDENTITY for s in sides]
        if not any(identity):
            return False
        test = member.test
        decided = bool(test.value) if test.__class__ is ast.Constant else self._decide(test, env)
        return decided is None or identity[0 if decided else 1]

    # ------------------------------------------------------------------ functions
    def function_env(self, func, owner: str | None, depth: int = 0, call=None, class_env: dict | None = None,
                     record: bool = False, hook=None, cls_name: str | None = None, literals: bool = False) -> dict:
        """The layer values of a function's names after walking its body (parameters from
        their defaults, from ``call`` when given, else from every call of ``owner``'s
        constructor or of the function in the file)."""
        env: dict = dict(class_env or {})
        if cls_name is not None:
            env["__class__"] = cls_name  # for self.method(...) factories
        elif owner is None and "__class__" not in env:
            env[FUNCTION_TEXT] = func  # a function outside any class: its own text (_class_text)
        args = func.args
        positional = args.posonlyargs + args.args
        defaults = [None] * (len(positional) - len(args.defaults)) + list(args.defaults)
        params = list(zip(positional, defaults)) + list(zip(args.kwonlyargs, args.kw_defaults))
        skip_first = owner is not None and positional and positional[0].arg in ("self", "cls")
        # a method of class ``cls_name`` walked without its owner (its ``self`` a parameter)
        method_of = cls_name if (owner is None and cls_name is not None and positional
                                 and positional[0].arg == "self") else None
        for index, (arg, default) in enumerate(params):
            if skip_first and index == 0:
                continue
            values: tuple = ()
            if default is not None and depth < MAX_DEPTH:
                values = self.values(default, {}, depth + 1)
                if call is None and values and isinstance(values[0], Key):
                    values = (replace(values[0], default=True),)  # callers may pass another
            if call is not None:
                passed = _passed(call[0], index - (1 if skip_first else 0), arg.arg, len(positional) - skip_first,
                                 index < len(positional))
                if literals:
                    literal = _literal_flag(passed if passed is not None else default if _binds_all(call[0]) else None)
                    if literal is not None and not _rebinds(func, arg.arg):
                        env[LITERAL + arg.arg] = literal[0]
                if passed is not None:
                    if passed.__class__ is ast.Constant or passed.__class__ is ast.Name:
                        constant = _constant_passed(passed, call[1])
                        if constant is not None:
                            # get_nd_conv(nd) with nd=2: ``getattr(nn, "Conv%dd" % dim)`` there is
                            # Conv2d, unless the body rebinds dim (checked where it is read)
                            env[CONSTANT + arg.arg] = (constant[0], (*constant[1], (func, arg.arg)))
                    values = self.values(passed, call[1], depth + 1)
                    if isinstance(passed, (ast.List, ast.Tuple, ast.ListComp)) or (
                            isinstance(passed, ast.Name) and ELEMENTS + passed.id in call[1]):
                        env[ELEMENTS + arg.arg] = (passed, call[1])  # a list the body may loop over
                if values:
                    env[arg.arg] = _unique(values)
            elif depth < MAX_DEPTH:
                # What the file's callers pass is only looked up if the parameter is used as a layer.
                env[arg.arg] = _Param(values, func, owner, index - (1 if skip_first else 0), arg.arg,
                                      index < len(positional), depth, method_of)
            elif values:
                env[arg.arg] = _unique(values)
        if args.kwarg is not None:
            env[KWARGS + args.kwarg.arg] = func
        if call is not None and args.kwarg is not None and all(k.arg is not None for k in call[0].keywords):
            # the **kwargs parameter holds the keywords the call passes beyond the named ones
            named = {a.arg for a, _ in params}
            env["dict:" + args.kwarg.arg] = tuple(k.arg for k in call[0].keywords if k.arg not in named)
        self._walk(func.body, env, depth, record, hook)
        return env

    def caller_values(self, func, owner: str | None, index: int, name: str, positional: bool, depth: int,
                      cls: str | None = None, item: int | None = None) -> tuple:
        module_calls = self._module_calls is not False
        key = (id(func), index, name, module_calls, item)
        if key in self._param_cache:
            return self._param_cache[key]
        self._param_cache[key] = ()
        if cls is not None:
            # a method walked as a function (``self`` counted): ``_make_layer(..., norm_layer=None)``
            # gets what its class's ``self._make_layer(...)`` calls pass
            found, index = self.method_callers(cls, func.name), index - 1
        elif owner is not None and func.name != "__init__":
            # a method walked with its owner (a caller's own method, read for what it passes:
            # ``self._make_layer(block, 64, norm_layer=norm_layer)``): its ``self.<name>(...)``
            # calls in the class (``self`` not counted in ``index``)
            found = self.method_callers(owner, func.name)
        else:
            target = owner if owner is not None and func.name == "__init__" else (func.name if owner is None else None)
            found = self.callers(target) if target is not None else []
        out: tuple = ()
        cut = self._cut
        if found:
            module_code = self._kinds.get(_MODULE_CODE)
            for call, caller, caller_owner in found:
                if caller is module_code and not module_calls:
                    continue  # (a module-level demo does not turn on a layer that is off by default)
                passed = _passed(call, index, name, None, positional)
                if passed is not None and item is not None:
                    for element in list_items(passed, caller, item):
                        caller_env = self._caller_env(element, caller, caller_owner, depth) \
                            if element.__class__ is ast.Name and caller is not None and caller is not func else {}
                        out += self.values(element, caller_env, depth + 1, called=True)
                    continue
                if passed is None:
                    continue
                if isinstance(passed, (ast.Name, ast.Attribute)) and caller is not None and caller is not func:
                    caller_env = self._caller_env(passed, caller, caller_owner, depth)
                else:
                    caller_env = {}
                # the parameter is built into a layer, so what is passed for it is too: a
                # parameter of the caller passed on is looked up in the caller's callers
                out += self.values(passed, caller_env, depth + 1, called=True)
        out = _unique(out)
        if out or self._cut == cut:
            self._param_cache[key] = out
        else:
            del self._param_cache[key]  # cut short by a walk in progress: looked up again later
        return out

    def _caller_env(self, passed: ast.expr, caller, caller_owner: str | None, depth: int) -> dict:
        """The names a caller's argument is read with: the caller's own after its body, which
        for a method other than ``__init__`` starts from the ``self.`` values its class's
        ``__init__`` leaves (HRNet's ``HighResolutionModule(..., self.norm_layer)`` in
        ``_make_stage``, or ``norm = self.norm_layer`` there, ``self.norm_layer`` being
        ``__init__``'s parameter)."""
        class_env = None
        if caller_owner is not None and caller.name != "__init__":
            class_env = self._init_env(caller_owner, depth)
        return self.function_env(caller, caller_owner, depth + 1, class_env=class_env)

    def _init_env(self, owner: str, depth: int) -> dict:
        """The ``self.<attr>`` values the same-file class ``owner``'s ``__init__`` leaves."""
        key = ("init env", owner, depth, self._module_calls)
        env = self._kinds.get(key)
        if env is None:
            self._kinds[key] = {}  # (a call of the class inside its own __init__ reads none)
            cls = self.names.classes.get(owner)
            init = next((s for s in cls.body if isinstance(s, ast.FunctionDef) and s.name == "__init__"),
                        None) if cls is not None and depth < MAX_DEPTH else None
            self._in_init.add(key)
            found = self.function_env(init, owner, depth + 1, cls_name=owner) if init is not None else {}
            self._in_init.discard(key)
            env = self._kinds[key] = {k: v for k, v in found.items() if k.startswith("self.")}
        elif key in self._in_init:
            # read while that __init__ is being walked (HRNet's __init__ builds the blocks whose
            # parameter this looks up): what is read now is not the class's, and is not kept
            self._cut += 1
        return env

    def calls_attr(self, cls: ast.ClassDef, attr: str) -> bool:
        """Does the class's text call ``self.<attr>(...)``, or pass ``self.<attr>`` on as an
        argument of a function of this file (``kernel(self.linear_in.weight, self.activation,
        x)``: the flow inlines it, and it may call it)?  A cheap look at its lines, when the file's lines are
        known; else assumed."""
        if self.lines is None:
            return True
        key = ("text", id(cls))
        text = self._kinds.get(key)
        if text is None:
            text = self._kinds[key] = "\n".join(self.lines[cls.lineno - 1:cls.end_lineno])
        if f"self.{attr}(" in text:
            return True
        if f"self.{attr}" not in text:
            return False
        # the callee written just before the argument list holding it: a function of this file
        # that calls one of its parameters (``drop_path(x, self.drop_prob, ...)`` calls none).
        # The search below needs a function of the file, and ``self.<attr>`` followed by a comma
        # or a closing parenthesis somewhere in the class: both are cheap to rule out first (a
        # search with a pattern made per attribute costs a compilation and a scan of the class).
        # The search below answers True only for a callee that is such a function, so the
        # file's functions that call a parameter are listed once per file (most files have none:
        # no class's text is searched then), and one of them must be written before a ``(`` in
        # the class's text (the search's callee is a word followed by ``(``).
        callers = self._kinds.get(_PARAM_CALLERS)
        if callers is None:
            # (names.functions holds each function under its own name)
            callers = self._kinds[_PARAM_CALLERS] = frozenset(
                func.name for func in self.names.functions.values() if self._calls_param(func))
        if not callers:
            return False
        if _WORD_ONLY.fullmatch(attr):
            key = ("passed", id(cls))
            passed = self._kinds.get(key)
            if passed is None:
                passed = self._kinds[key] = frozenset(m.group(1) for m in _SELF_ATTR_PASSED.finditer(text))
            if attr not in passed:
                return False
        if not any(name + "(" in text for name in callers):
            return False
        for found in re.finditer(rf"\b(\w+)\([^()]*[(,]?\s*\bself\.{re.escape(attr)}\s*[,)]", text):
            if found.group(1) in callers:
                return True
        return False

    def _calls_param(self, func) -> bool:
        """Is ``func`` a function (not a class) whose body calls one of its positional
        parameters (``f(`` written after a word boundary)?  calls_attr's test of a callee."""
        if not isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef)):
            return False
        body = "\n".join(self.lines[func.body[0].lineno - 1:func.end_lineno])
        return any(re.search(rf"\b{a.arg}\(", body) for a in func.args.args if f"{a.arg}(" in body)

    def passed_by_every_caller(self, param: "_Param", mixed: bool = False) -> tuple:
        """The layer every call in the file passes for a constructor (or function) parameter
        that has no layer default (``feed_forward: Module``), when each passes one and all the
        same class: what the parameter holds, as far as this file says (empty otherwise).
        ``mixed``: when each call passes an activation but not all the same one (rectools'
        feed-forward built with ``torch.nn.GELU()`` by one call and ``torch.nn.ReLU()`` by
        another), each of them, as conditional values: the parameter holds one of them at run
        time, as a parameter whose layer default the file's calls replace does (bindings._record).
        Only activations (canon.OpTable.layer_ops: what a choice made at run time may be); calls
        passing different modules (a feed-forward by one, a residual block by another) still
        leave the parameter untyped."""
        key = ("every", id(param.func), param.index, param.name, param.item, mixed)
        if key in self._param_cache:
            return self._param_cache[key]
        self._param_cache[key] = ()
        func, owner = param.func, param.owner
        target = owner if owner is not None and func.name == "__init__" else (func.name if owner is None else None)
        callers = self.callers(target) if target is not None and param.depth < MAX_DEPTH else []
        if not self.required(param):
            module_code = self._kinds.get(_MODULE_CODE)
            callers = [c for c in callers if c[1] is not module_code]
        out: tuple = ()
        kinds = set()
        for call, caller, caller_owner in callers:
            passed = _passed(call, param.index, param.name, None, param.positional)
            if passed is None or caller is func:
                out = ()
                break
            # layers[i]: what the caller's list holds there (each display it may pass)
            held = [passed] if param.item is None else list_items(passed, caller, param.item)
            values = ()
            for expr in held:
                caller_env = self._caller_env(expr, caller, caller_owner, param.depth) if isinstance(
                    expr, (ast.Name, ast.Attribute)) else {}
                # (the parameter is called as a layer, so what is passed for it is too: a
                # parameter of the caller passed on is what the caller's callers pass for it; a
                # choice the caller makes, ``nn.Dropout(p) if p > 0 else nn.Identity()``, is
                # passed on as the choice, as if the class had made it itself)
                found = tuple(v for v in self.values(expr, caller_env, param.depth + 1, called=True)
                              if isinstance(v, Built))
                if not found:
                    values = ()
                    break
                values += found
            if not values:
                out = ()
                break
            out += values
            kinds.add(frozenset(v.fqn for v in values))
        if len(kinds) > 1 and mixed and out and all(_runtime_activation(v) for v in out):
            out = tuple(replace(v, conditional=True) for v in out)
        elif len(kinds) != 1:  # (a module and what its output is, ``adopter.output_of...``, count as one)
            out = ()
        out = _unique(out)
        self._param_cache[key] = out
        return out

    def required(self, param: _Param) -> bool:
        """Must ``param`` be given for its function to build its layer: no default, or a
        ``None`` default the body never tests (``BatchNorm=None`` then ``BatchNorm(c)``: None
        cannot be called)?  Then what the file's module-level code passes (a ``__main__`` demo
        building ``Net(BatchNorm=nn.BatchNorm2d)``) is what it holds, as a caller's argument
        is.  A parameter with a layer default, or a ``None`` default the body tests (an
        optional layer, off by default: nnU-Net's ``if norm_op is not None:``), is not turned
        on by such a demo."""
        key = ("required", id(param.func), param.name)
        found = self._param_cache.get(key)
        if found is None:
            default = param_default(param.func.args, param.name)
            found = default is None or (default.__class__ is ast.Constant and default.value is None
                                        and not _tests_none(param.func, param.name))
            self._param_cache[key] = found
        return found

    def _flag_left_off(self, cls: ast.ClassDef, index: int, param: str, attr: str) -> bool:
        """Does the same-file class ``cls`` hold its flag ``self.<attr>`` at the constant False
        its ``__init__`` parameter ``param`` (position ``index`` after ``self``, -1:
        keyword-only) defaults to, wherever it is built: the parameter never rebound, every
        build leaving it False (:meth:`_always_constant`), and nothing else in the file
        writing ``.<attr>`` (a method or a builder turning the flag on after ``__init__``
        stored it)?"""
        init = next(s for s in cls.body if isinstance(s, ast.FunctionDef) and s.name == "__init__")
        return self._always_constant(init, cls.name, index, param, index >= 0, False) \
            and _writes_attr_once(self.tree, attr)

    def _built_key_branch(self, expr: ast.IfExp, env: dict) -> ast.expr | None:
        """The branch of ``nn.ReLU() if activation == "relu" else nn.GELU()`` that runs when
        ``activation`` is a parameter with a string default and every build of its class (or
        call of its function) in the file leaves that default or passes strings the test decides
        the same way (supar's encoder layer, built once with its ``"relu"`` default): a class
        the file never builds keeps both branches (its callers are elsewhere); None then, and
        where the function rebinds the parameter (a tuple unpacking, a loop or ``:=`` may set
        another string than any caller passes)."""
        test = expr.test
        left = test.left
        if left.__class__ is not ast.Name:
            return None
        param = env.get(left.id)
        if not (param.__class__ is _Param and len(param.default) == 1 and param.default[0].__class__ is Key) \
                or _rebinds(param.func, left.id):
            return None
        keys = self._built_keys(left, env)
        if not keys:
            return None
        decided = self._decide(test, {**env, left.id: tuple(Key(k) for k in keys)})
        if decided is None:
            return None
        return expr.body if decided else expr.orelse

    def _none_branch(self, expr: ast.IfExp, env: dict) -> ast.expr | None:
        """The branch of ``A if p is None else B`` (or ``is not None``) that runs when ``p`` is a
        parameter whose default is ``None`` that the file never sets: the function (class) is
        called in the file, used nowhere but in calls that leave it out or pass ``None``, and its
        body never rebinds it.  None when the test is another, or the parameter may hold anything else."""
        test = expr.test
        if not (len(test.ops) == 1 and test.ops[0].__class__ in (ast.Is, ast.IsNot)
                and test.left.__class__ is ast.Name and test.comparators[0].__class__ is ast.Constant
                and test.comparators[0].value is None):
            return None
        param = env.get(test.left.id)
        if not isinstance(param, _Param) or param.method_of is not None or not self._always_none(param):
            return None
        return expr.body if test.ops[0].__class__ is ast.Is else expr.orelse

    def _always_none(self, param: _Param) -> bool:
        """Does ``param`` (see :meth:`_none_branch`) hold ``None`` wherever its function runs?"""
        key = ("none", id(param.func), param.name)
        found = self._param_cache.get(key)
        if found is not None:
            return found
        found = False
        func = param.func
        default = param_default(func.args, param.name)
        target = param.owner if param.owner is not None and func.name == "__init__" else (
            func.name if param.owner is None else None)
        if default.__class__ is ast.Constant and default.value is None and target is not None:
            found = self._always_constant(func, target, param.index, param.name, param.positional, None)
        self._param_cache[key] = found
        return found

    def _always_constant(self, func, target: str, index: int, name: str, positional: bool, value) -> bool:
        """Does parameter ``name`` of ``func`` (``target``'s, the same-file function or class
        it builds) hold the constant ``value`` its default gives wherever ``func`` runs: the
        body never rebinds it, ``target`` is called in the file (a class the file never builds
        is built elsewhere, with anything) and used nowhere but in calls, and every call leaves
        the argument out or passes ``value``, no ``*args`` / ``**kwargs`` spread that may set it?"""
        if self.tree is None or _rebinds(func, name):
            return False
        # the calls first (a call that passes something settles it), the file's other
        # mentions of the function (a walk of the statements naming it) last
        calls = self.callers(target)
        if not calls:
            return False
        for call, _caller, _owner in calls:
            if any(isinstance(a, ast.Starred) for a in call.args) or any(k.arg is None for k in call.keywords):
                return False
            passed = _passed(call, index, name, None, positional)
            if passed is not None and not (passed.__class__ is ast.Constant and passed.value is value):
                return False
        return self._only_called(target)

    def _never_str(self, expr: ast.expr, env: dict) -> bool:
        """Is ``expr`` a parameter that holds no string where the file builds it: a default
        that is no string (``F.relu``, ``nn.GELU``), and its function (class) only called in
        the file, no call passing the argument (as :meth:`_decided_keys` decides a string
        default: what a caller outside the file may pass is not this file's choice; the
        string path of ``activation: str | Callable = F.relu`` is then not taken here)."""
        param = env.get(expr.id) if expr.__class__ is ast.Name else None
        if not (isinstance(param, _Param) and param.default and param.method_of is None
                and not any(isinstance(v, Key) for v in param.default)):
            return False
        return self._never_str_at(param.func, param.owner, param.index, param.name, param.positional)

    def _never_str_here(self, expr: ast.Name, env: dict) -> bool:
        """Is ``expr`` a parameter with a default that is no string, whose function (class) is
        only called in the file, and every call of which passes no string for it: nothing, or
        a parameter of the caller's own that holds no string the same way (a builder handing
        its own ``activation=F.relu`` on to the layer, the builder built nowhere in the file)?
        A ``None`` default holds no string either: ``output_activation=None`` reaches
        ``get_activation(output_activation)`` only when a caller outside the file passes one."""
        param = env.get(expr.id)
        if not (isinstance(param, _Param) and param.method_of is None
                and (param.default or _none_default(param))
                and not any(isinstance(v, Key) for v in param.default)):
            return False
        return self._never_str_deep(param.func, param.owner, param.index, param.name, param.positional, 0)

    def _never_str_deep(self, func, owner, index: int, name: str, positional: bool, depth: int) -> bool:
        target = owner if owner is not None and func.name == "__init__" else (func.name if owner is None else None)
        if target is None or self.tree is None:
            return False
        hand_ons = ()
        if not self._only_called(target):
            # a base class whose same-file subclasses hand their own parameter on through
            # ``super().__init__(..., activation=activation)`` (universal-set-transformers'
            # attention blocks): those calls build it too, the subclasses' callers theirs
            hand_ons = self._super_init_calls(target) if target == owner else None
            if hand_ons is None:
                return False
        for call, caller, caller_owner in (*self.callers(target), *hand_ons):
            if _opaque_arguments(call, caller, name, self.names):
                return False
            passed = _passed(call, index, name, None, positional)
            if passed is None:
                continue
            if depth >= 3 or passed.__class__ is not ast.Name or not isinstance(caller, ast.FunctionDef):
                return False
            # the caller's own parameter handed on: no string where the caller is built either
            args = caller.args
            positional_args = args.posonlyargs + args.args
            skip = 1 if caller_owner is not None and positional_args and positional_args[0].arg in ("self", "cls") else 0
            defaults = dict(zip([a.arg for a in positional_args[len(positional_args) - len(args.defaults):]],
                                args.defaults))
            defaults.update((a.arg, d) for a, d in zip(args.kwonlyargs, args.kw_defaults) if d is not None)
            default = defaults.get(passed.id)
            if default is None or default.__class__ is ast.Constant and isinstance(default.value, str) \
                    or _rebinds(caller, passed.id):
                return False
            at = next((i for i, a in enumerate(positional_args) if a.arg == passed.id), None)
            if not self._never_str_deep(caller, caller_owner, (at - skip) if at is not None else -1, passed.id,
                                        at is not None, depth + 1):
                return False
        return True

    def _super_init_calls(self, name: str, depth: int = 0) -> tuple | None:
        """The ``super().__init__(...)`` calls by which the same-file subclasses of the class
        ``name`` build it, each as a call of it made in the subclass's ``__init__``: a subclass
        without an ``__init__`` is built as the base is, so its own callers (and subclasses') are
        the base's.  None unless every mention of ``name`` in the file is a call of it, a test
        of a value, or a base of a same-file class with that one base; a subclass that builds
        its base another way (``Base.__init__(self, ...)``) is not read either."""
        subclasses = self._subclasses(name) if depth <= 3 else None
        if not subclasses or not self._only_called(name, bases=True):
            return None  # (a class no same-file class derives from: no walk)
        found = []
        for sub in subclasses:
            if len(sub.bases) != 1 or sub.keywords:
                return None
            init = next((s for s in sub.body if s.__class__ is ast.FunctionDef and s.name == "__init__"), None)
            if init is None:
                deeper = self._super_init_calls(sub.name, depth + 1) if not self._only_called(sub.name) else ()
                if deeper is None:
                    return None
                found += [*self.callers(sub.name), *deeper]
                continue
            for node in walk(init):
                if node.__class__ is not ast.Call or node.func.__class__ is not ast.Attribute \
                        or node.func.attr != "__init__":
                    continue
                base = node.func.value
                if base.__class__ is ast.Call and base.func.__class__ is ast.Name and base.func.id == "super" \
                        and "super" not in self.names.imports:
                    found.append((node, init, sub.name))
                elif base.__class__ is ast.Name and base.id == name:
                    return None  # ``Base.__init__(self, ...)``: self comes first, not read
        return tuple(found)

    def _subclasses(self, name: str) -> list:
        """The file's classes (its own, at module level) that list ``name`` among their bases."""
        return [cls for cls in self.names.classes.values() if "." not in cls.name
                and any(b.__class__ is ast.Name and b.id == name for b in cls.bases)]

    def _never_str_at(self, func, owner, index: int, name: str, positional: bool) -> bool:
        """:meth:`_never_str` of ``func``'s parameter ``name``: its function (class) only called
        in the file, no call passing the argument, by name or through ``**kwargs`` (a dict the
        caller binds once to a literal without the name passes nothing for it: audyn's
        ``**factory_kwargs`` of device and dtype)."""
        target = owner if owner is not None and func.name == "__init__" else (func.name if owner is None else None)
        if target is None or self.tree is None or not self._only_called(target):
            return False
        for call, caller, _ in self.callers(target):
            if _opaque_arguments(call, caller, name, self.names):
                return False
            if _passed(call, index, name, None, positional) is not None:
                # (a caller's own parameter handed on counts as given: torchtext's T5 layers,
                # whose encoder gets the activation string from the package's config)
                return False
        return True

    def _decided_keys(self, key: ast.expr, env: dict) -> tuple | None:
        """The strings a parameter used as a table key holds, when the file decides them: its
        string default and the string literals the file's calls of its function (or class) pass
        for it, every call readable and the function (class) used nowhere but in those calls (a
        class handed on as a value, or subclassed, may be built with any key).  None otherwise."""
        param = env.get(key.id) if isinstance(key, ast.Name) else None
        if not (isinstance(param, _Param) and len(param.default) == 1 and isinstance(param.default[0], Key)):
            return None
        found = self._param_keys(param.func, param.owner, param.index, param.name, param.positional,
                                 param.default[0].value, 0)
        return tuple(sorted(found)) if found is not None else None

    def _param_keys(self, func, owner, index: int, name: str, positional: bool, default: str, depth: int):
        """The strings a parameter with a string default holds (:meth:`_decided_keys`): the
        default and what every call of its function passes, a caller's own parameter handed
        on (``Layer(d, n, activation)`` in ``__init__(self, ..., activation="relu")``) decided
        the same way.  None when a call passes anything else, or the function is not only called."""
        target = owner if owner is not None and func.name == "__init__" else (func.name if owner is None else None)
        if target is None or self.tree is None or not self._only_called(target) or self._registered(target):
            return None
        keys = {default}
        for call, caller, caller_owner in self.callers(target):
            if any(isinstance(a, ast.Starred) for a in call.args) or any(k.arg is None for k in call.keywords):
                return None
            passed = _passed(call, index, name, None, positional)
            if passed is None:
                continue
            if isinstance(passed, ast.Constant) and isinstance(passed.value, str):
                keys.add(passed.value)
                continue
            got = self._handed_param_keys(caller, caller_owner, passed.id, depth + 1) \
                if isinstance(passed, ast.Name) and depth < 3 and isinstance(caller, ast.FunctionDef) else None
            if got is None:
                return None
            keys |= got
        return keys

    def _registered(self, name: str) -> bool:
        """Is the same-file class or function ``name`` handed to a decorator that is no plain
        wrapper (``@register()``, ``@register_mlp``)?  The decorator receives the class itself,
        and a registry builds it from configurations with any arguments, so the file's calls do
        not decide its parameters (bert4torch's registered feed-forwards, D-FINE's registered
        transformers: their activation keys are run-time keys)."""
        node = self.names.classes.get(name) or self.names.functions.get(name)
        for decorator in getattr(node, "decorator_list", ()):
            named = decorator.func if decorator.__class__ is ast.Call else decorator
            fqn = self.names.resolve(named) or (named.id if named.__class__ is ast.Name else None)
            if fqn not in _PLAIN_DECORATORS:
                return True
        return False

    def _handed_param_keys(self, func: ast.FunctionDef, owner, name: str, depth: int):
        """:meth:`_param_keys` of ``func``'s parameter ``name`` (a caller handing its own
        parameter on), when its default is a string and the body never rebinds it."""
        args = func.args
        positional = [*args.posonlyargs, *args.args]
        skip = 1 if owner is not None and positional and positional[0].arg in ("self", "cls") else 0
        defaults = [None] * (len(positional) - len(args.defaults)) + list(args.defaults)
        for index, arg in enumerate(positional):
            if arg.arg == name:
                default, at, by_position = defaults[index], index - skip, True
                break
        else:
            for arg, kw_default in zip(args.kwonlyargs, args.kw_defaults):
                if arg.arg == name:
                    default, at, by_position = kw_default, 0, False
                    break
            else:
                return None
        if not (isinstance(default, ast.Constant) and isinstance(default.value, str)) or _rebinds(func, name):
            return None
        return self._param_keys(func, owner, at, name, by_position, default.value, depth)

    def _only_called(self, name: str, bases: bool = False) -> bool:
        """Is every mention of the same-file ``name`` the callee of a call (no base class, no
        value handed on, no rebinding)?  ``bases``: a base of a same-file class counts too."""
        if "." in name:
            return False  # a class defined in another's body (``Outer.Block``): its calls are not listed
        if self._callers is None:
            self._callers = {}
        key = ("only+bases:" if bases else "only:") + name
        found = self._callers.get(key)
        if found is None:
            callees = set()
            mentions = 0
            for stmt in self._mentioning(name):
                for node in walk(stmt):
                    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                        if node.func.id == name:
                            callees.add(id(node.func))
                        elif node.func.id in ("isinstance", "issubclass") and len(node.args) == 2:
                            # ``isinstance(module, Block)`` tests a value: it builds nothing
                            tested = node.args[1]
                            for item in (tested.elts if isinstance(tested, ast.Tuple) else (tested,)):
                                if isinstance(item, ast.Name) and item.id == name:
                                    callees.add(id(item))
                        elif node.func.id == "super" and node.args and node.args[0].__class__ is ast.Name \
                                and node.args[0].id == name and "super" not in self.names.imports:
                            # ``super(Block, self).__init__()`` in Block's own methods: the
                            # class names where the lookup starts, it builds nothing
                            callees.add(id(node.args[0]))
                    elif isinstance(node, ast.Name) and node.id == name:
                        mentions += 1
                    else:
                        # an annotation (``layer: Block``, ``-> Net``) names a type: it builds
                        # nothing and hands no class on
                        cls = node.__class__
                        note = node.annotation if cls is ast.arg or cls is ast.AnnAssign else (
                            node.returns if cls is ast.FunctionDef or cls is ast.AsyncFunctionDef else None)
                        if note is not None:
                            callees.update(id(n) for n in walk(note) if n.__class__ is ast.Name and n.id == name)
                        if bases and cls is ast.ClassDef:
                            callees.update(id(b) for b in node.bases if b.__class__ is ast.Name and b.id == name)
            found = self._callers[key] = [mentions == len(callees)]
        return found[0]

    def _mentioning(self, name: str) -> list:
        """The file's top-level statements whose text holds ``name`` (with their decorators): a
        name mentioned nowhere else is in none of the others, which are not walked (a string
        test on each statement's text, joined once per file).  Every statement when the lines
        are not known, or do not count as the parser's do (a lone carriage return)."""
        tops = self._kinds.get(_TOP_TEXTS)
        if tops is None:
            tops = False
            if self.lines is not None:
                text = self._file_text()
                if "\r" not in text or text.count("\r") == text.count("\r\n"):
                    lines = self.lines
                    tops = []
                    for stmt in self.tree.body:
                        first = stmt.lineno
                        if stmt.__class__ in _DECORATED and stmt.decorator_list:
                            first = stmt.decorator_list[0].lineno
                        tops.append((stmt, "\n".join(lines[first - 1:stmt.end_lineno])))
            self._kinds[_TOP_TEXTS] = tops
        if tops is False:
            return self.tree.body
        return [stmt for stmt, text in tops if name in text]

    def method_callers(self, owner: str, name: str) -> list:
        """Every ``self.<name>(...)`` call in the methods of the same-file class ``owner``, with
        the method it is in (only methods whose text mentions the name are walked)."""
        if self._callers is None:
            self._callers = {}
        key = f"method:{owner}.{name}"
        found = self._callers.get(key)
        if found is None:
            found = self._callers[key] = []
            if self.tree is not None:
                for cls_name, func in _functions(self.tree, self.names):
                    if cls_name != owner or (self.mention is not None and name not in self.mention(func)):
                        continue
                    for node in walk(func):
                        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                                and node.func.attr == name and isinstance(node.func.value, ast.Name)
                                and node.func.value.id == "self"):
                            found.append((node, func, owner))
        return found

    def callers(self, name: str) -> list:
        """Every call of the same-file class or function ``name``, with the function it is in
        (only functions whose text mentions the name are walked)."""
        if self._callers is None:
            self._callers = {}
        found = self._callers.get(name)
        if found is None:
            found = self._callers[name] = []
            if self.tree is not None:
                for owner, func in _functions(self.tree, self.names):
                    if self.mention is not None and name not in self.mention(func):
                        continue
                    aliases = None
                    named_calls = []
                    for node in walk(func):
                        if node.__class__ is ast.Call and node.func.__class__ is ast.Name:
                            if node.func.id == name:
                                found.append((node, func, owner))
                            else:
                                named_calls.append(node)
                        elif (node.__class__ is ast.Assign and len(node.targets) == 1
                              and node.targets[0].__class__ is ast.Name and _may_be(node.value, name)):
                            # ``block = InvertedResidual`` then ``block(inp, oup, ...)``: a local
                            # name bound to the class calls it; so does one bound to a choice
                            # that may be it (``block = Basic if arch < 50 else Bottleneck``)
                            aliases = (aliases or set()) | {node.targets[0].id}
                    if aliases is not None:
                        found += [(node, func, owner) for node in named_calls if node.func.id in aliases]
                found += self._module_level_calls(name)
                found += self._first_base_super_inits(name)
                tables = self._class_tables(name)
                if tables:
                    if ("table calls", tables) in self._in_init:
                        # asked while those calls are being looked for: not known yet, not kept
                        del self._callers[name]
                        return found
                    found.extend(self._table_calls(tables))
                found += self._calls_through_params(name)
        return found

    def _first_base_super_inits(self, name: str) -> list:
        """The ``super().__init__(...)`` calls (also ``super(Sub, self).__init__(...)``) in the
        ``__init__`` of the file's classes whose first base is the same-file class ``name``: each
        runs ``name``'s ``__init__`` with the arguments it passes, as ``name(...)`` would
        (``class Child(Base): super().__init__(c, nn.BatchNorm2d)`` passes Base's
        ``norm_layer``), so it is a caller like any other, with the subclass's ``__init__`` as
        the function it is in.  A class whose first base is another one (the MRO would run that
        class's ``__init__``) is not read."""
        found = []
        for sub, node in self.names.classes.items():
            bases = node.bases
            if not bases or bases[0].__class__ is not ast.Name or bases[0].id != name or sub == name:
                continue
            init = next((s for s in node.body if s.__class__ is ast.FunctionDef and s.name == "__init__"), None)
            if init is None:
                continue
            for call in walk(init):
                if call.__class__ is ast.Call and call.func.__class__ is ast.Attribute \
                        and call.func.attr == "__init__" and call.func.value.__class__ is ast.Call \
                        and call.func.value.func.__class__ is ast.Name and call.func.value.func.id == "super":
                    found.append((call, init, sub))
        return found

    def _module_level_calls(self, name: str) -> list:
        """The calls of ``name`` in the file's module-level code outside any definition (an
        ``if __name__ == "__main__":`` demo building ``Net(BatchNorm=nn.BatchNorm2d)``), each
        with the module's code as the function it is in (:meth:`_module_code`): a construction
        in the file like any other.  Only the top-level statements whose text names ``name``
        are walked, and no definition inside them."""
        found = []
        for stmt in self._mentioning(name):
            if stmt.__class__ in _DECORATED or stmt.__class__ in (ast.Import, ast.ImportFrom):
                continue
            stack = [stmt]
            while stack:
                node = stack.pop()
                if node.__class__ is ast.Call and node.func.__class__ is ast.Name and node.func.id == name:
                    found.append(node)
                for child in ast.iter_child_nodes(node):
                    if child.__class__ not in _DECORATED and child.__class__ is not ast.Lambda:
                        stack.append(child)
        if not found:
            return []
        code = self._module_code()
        found.sort(key=lambda n: (n.lineno, n.col_offset))
        return [(node, code, None) for node in found]

    def _module_code(self) -> ast.FunctionDef:
        """The file's module-level statements outside definitions and imports, as a function
        without parameters (what a module-level call's arguments are read with), once per file."""
        code = self._kinds.get(_MODULE_CODE)
        if code is None:
            body = [s for s in self.tree.body
                    if s.__class__ not in _DECORATED and s.__class__ not in (ast.Import, ast.ImportFrom)]
            code = ast.FunctionDef(name="<module>", args=ast.arguments(posonlyargs=[], args=[], vararg=None,
                                                                       kwonlyargs=[], kw_defaults=[], kwarg=None,
                                                                       defaults=[]),
                                   body=body or [ast.Pass()], decorator_list=[], returns=None,
                                   lineno=1, col_offset=0, end_lineno=1, end_col_offset=0)
            if "type_params" in ast.FunctionDef._fields:
                code.type_params = []
            self._kinds[_MODULE_CODE] = code
        return code

    def _class_tables(self, name: str) -> frozenset:
        """The module-level dicts of the file holding the same-file class ``name`` as an entry's
        value (``blocks_dict = {"BASIC": BasicBlock, ...}``): a block class chosen by a key and
        built through the name it is looked up into.  Empty for anything else (a string test first)."""
        if name not in self.names.classes or self.tree is None:
            return frozenset()
        found = [table for table, value in self.names.constants.items()
                 if value.__class__ is ast.Dict and None not in value.keys
                 and any(v.__class__ is ast.Name and v.id == name for v in value.values)
                 and self._module_table(table) is not None]
        return frozenset(found)

    def _table_calls(self, tables: frozenset) -> list:
        """The calls of a name that holds an entry of one of ``tables`` (module-level dicts of
        classes): ``block(...)`` where ``block = blocks_dict[key]`` in the function, or where
        ``block`` is a parameter some call of the function (or method, or class) passes such a
        name or lookup for (HRNet's ``_make_layer(block, ...)`` called with ``block =
        blocks_dict[cfg["BLOCK"]]``), followed through a few callers.  Each call may build any
        entry, so each is a call of each entry's class, with the function it is in."""
        key = ("table calls", tables)
        found = self._kinds.get(key)
        if found is not None:
            return found
        found = []
        held: dict = {}
        self._in_init.add(key)
        for owner, func in _functions(self.tree, self.names):
            for node in walk(func):
                if (node.__class__ is ast.Call and node.func.__class__ is ast.Name
                        and self._holds_entry(func, owner, node.func.id, tables, held, 0)):
                    found.append((node, func, owner))
                elif (node.__class__ is ast.Call and node.func.__class__ is ast.Subscript
                      and node.func.value.__class__ is ast.Name and node.func.value.id in tables):
                    found.append((node, func, owner))  # blocks_dict[key](...)
        self._in_init.discard(key)
        self._kinds[key] = found
        return found

    def _holds_entry(self, func, owner: str | None, name: str, tables: frozenset, held: dict, depth: int) -> bool:
        """Does the name ``name`` of ``func`` hold an entry of one of ``tables``: every binding
        of it in the function a lookup ``table[...]``, or, never bound there, a parameter that a
        call of the function passes such a lookup (or a name holding one) for?"""
        if name in self.names.classes or name in self.names.functions or name in self.names.imports:
            return False
        cache = (id(func), name)
        if cache in held:
            return held[cache]
        held[cache] = False
        bound = [node.value for node in walk(func) if node.__class__ in (ast.Assign, ast.AnnAssign)
                 and any(t.__class__ is ast.Name and t.id == name
                         for t in (node.targets if node.__class__ is ast.Assign else [node.target]))]
        if bound:
            answer = all(_table_lookup(v, tables) for v in bound)
        elif depth >= MAX_DEPTH:
            answer = False
        else:
            args = func.args
            positional = [a.arg for a in args.posonlyargs + args.args]
            skip = 1 if owner is not None and positional[:1] in (["self"], ["cls"]) else 0
            if name in positional:
                index, is_positional = positional.index(name) - skip, True
            elif name in [a.arg for a in args.kwonlyargs]:
                index, is_positional = -1, False
            else:
                return False
            if owner is None:
                calls = self.callers(func.name) if func.name not in self.names.classes else []
            elif func.name == "__init__":
                calls = [c for c in self.callers(owner) if c[0].func.__class__ is ast.Name]
            else:
                calls = self.method_callers(owner, func.name)
            answer = False
            for call, caller, caller_owner in calls:
                passed = _passed(call, index, name, None, is_positional)
                if passed is None:
                    continue
                if _table_lookup(passed, tables) or (
                        passed.__class__ is ast.Name and caller is not None and caller is not func
                        and self._holds_entry(caller, caller_owner, passed.id, tables, held, depth + 1)):
                    answer = True
                    break
        held[cache] = answer
        return answer

    def _calls_through_params(self, name: str) -> list:
        """The calls of a parameter that the same-file class or function ``name`` is passed for
        (``ResNet(Bottleneck, [3, 4, 6, 3])``, then ``self._make_layer(block, 64, ...)``, then
        ``block(self.inplanes, planes, norm_layer=norm_layer)``): each builds ``name`` when the
        caller chose it, so it is one of its calls, as a call naming it is.  The value is
        followed from call to parameter (a same-file function, a class's ``__init__``, a
        ``self.<method>`` of the calling method's class; by keyword or by position before any
        ``*args``), three calls deep, into parameters the body never binds again."""
        aliased = True
        if self.lines is not None:
            text = self._file_text()
            aliased = _aliased(text, name)
            if not aliased and not _handed_over(text, name):
                return []  # (a cheap text test: the name is never handed over as an argument)
        funcs = [(owner, func) for owner, func in _functions(self.tree, self.names)]
        by_name = {func.name: func for owner, func in funcs if owner is None}
        by_method = {(owner, func.name): func for owner, func in funcs if owner is not None}
        out: list = []
        seen: set = set()
        wanted = [(name, None, None)]  # (the name holding the value, the function it is read in, its owner)
        if aliased:
            # a local name bound to the class, or to a choice that may be it (``block = Basic if
            # arch in (18, 34) else Bottleneck``, then ``ResNet(block=block, ...)``), holds it
            # in that function
            for owner, func in funcs:
                if self.mention is not None and name not in self.mention(func):
                    continue
                for node in walk(func):
                    if (node.__class__ is ast.Assign and len(node.targets) == 1
                            and node.targets[0].__class__ is ast.Name and node.targets[0].id != name
                            and _may_be(node.value, name)):
                        wanted.append((node.targets[0].id, func, owner))
        for _ in range(3):
            found = []
            for held, where, where_owner in wanted:
                scope = funcs if where is None else [(where_owner, where)]
                for owner, func in scope:
                    if self.mention is not None and held not in self.mention(func):
                        continue
                    for node in walk(func):
                        if not isinstance(node, ast.Call):
                            continue
                        target = _param_target(node, held, owner, by_name, by_method)
                        if target is None:
                            continue
                        callee, callee_owner, param = target
                        key = (id(callee), param)
                        if key in seen or _rebinds(callee, param):
                            continue
                        seen.add(key)
                        found.append((param, callee, callee_owner))
            for param, callee, callee_owner in found:
                for node in walk(callee):
                    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == param:
                        out.append((node, callee, callee_owner))
            if not found:
                break
            wanted = found
        return out

    def _walk(self, body, env: dict, depth: int, record: bool, hook, nested: bool = False) -> None:
        """Walk statements in order, updating ``env``; ``hook(stmt, env)`` sees each assignment
        (augmented too) and call statement with the names' values just before it."""
        for stmt in body:
            typed = None
            kind = stmt.__class__  # (one read for the dispatch below: no statement type has a subclass)
            if hook is not None and kind in _HOOKED_STATEMENTS:
                self.typed = None
                hook(stmt, env)
                typed, self.typed = self.typed, None
            if (kind is ast.Assign or kind is ast.AnnAssign) and stmt.value is not None:
                targets = stmt.targets if kind is ast.Assign else [stmt.target]
                if INSTANCE in env and targets[0].__class__ is not ast.Name:
                    _drop_instances(targets[0], env)  # net, x = ...: no longer that call's instance
                if record:
                    self._record_sites(stmt.value, stmt, env, depth)
                value = stmt.value
                if (len(targets) == 1 and isinstance(targets[0], (ast.Tuple, ast.List)) and isinstance(value, ast.Name)
                        and ELEMENT_OF + value.id in env):
                    self._unpack(targets[0], env[ELEMENT_OF + value.id], env, depth)
                    continue
                if (len(targets) == 1 and isinstance(targets[0], ast.Tuple) and isinstance(value, ast.Call)
                        and isinstance(value.func, (ast.Name, ast.Attribute))
                        and all(_key(t) is not None for t in targets[0].elts)):
                    # act, scale = get_act(name): each name holds that element of what the
                    # function returns (a same-file or sibling function returning tuples); also
                    # ``self.conv, self.bn = conv_bn(c, d)``, each attribute its element
                    for index, target in enumerate(targets[0].elts):
                        bound = _key(target)
                        values = self._factory_item(value, index, env, depth)
                        env.pop(ELEMENTS + bound, None)
                        env.pop(TABLE_OF + bound, None)
                        env.pop("list:" + bound, None)
                        env.pop("dict:" + bound, None)
                        env.pop(MEMBERS + bound, None)
                        if nested and (not values or bound not in env and isinstance(values[0], Key)):
                            env[UNKNOWN + bound] = True
                        elif not nested:
                            env.pop(UNKNOWN + bound, None)
                        if nested and bound in env:
                            current = env[bound]
                            if isinstance(current, _Param):
                                current = current.resolve(self)
                            env[bound] = _unique(tuple(current) + values)
                        elif values:
                            env[bound] = values
                        else:
                            env.pop(bound, None)
                    continue
                for target in targets:
                    if target.__class__ is ast.Subscript and _self_attribute(target.value):
                        env.pop("list:self." + target.value.attr, None)  # self.blocks[i] = ...
                    if isinstance(target, ast.Subscript) and isinstance(target.value, ast.Name):
                        if ELEMENTS + target.value.id in env:
                            self._item_store(target.value.id, value, env, depth)
                        if ODICT + target.value.id in env:
                            if not ((nested and nested != BRANCH and ODICT_IF not in env) or len(targets) != 1
                                    or not self._odict_item(target, value, env, depth)):
                                continue  # layers["bn"] = nn.BatchNorm2d(c): a new key, at the end
                            del env[ODICT + target.value.id]  # layers["pad"] = ...: another order
                        _add_key(env, target.value.id, target.slice)  # kwargs["depthwise"] = True
                        members = env.get(MEMBERS + target.value.id)
                        if members is not None:
                            if len(targets) == 1 and target.slice.__class__ is ast.Constant \
                                    and target.slice.value.__class__ is str:
                                # layers["pos"] = nn.Embedding(...): one more member under its key
                                env[MEMBERS + target.value.id] = members + ((target.slice.value, value),)
                            else:
                                del env[MEMBERS + target.value.id]
                        listed = env.get("list:" + target.value.id)
                        if isinstance(listed, SeqGraph) and not listed.forget(_constant_index(target.slice)):
                            env.pop("list:" + target.value.id, None)  # layers[i] = ...: which one is not known
                    if target.__class__ is ast.Attribute and target.value.__class__ is ast.Name \
                            and INSTANCE + target.value.id in env:
                        del env[INSTANCE + target.value.id]  # net.bn1 = nn.Identity(): not the class's own
                    key = _key(target)
                    if key is None:
                        continue
                    if self.library:
                        holder = _children_holder(value, False)
                        if holder is not None and not nested:
                            env[CHILDREN_OF + key] = holder  # layers = list(net.children())
                        else:
                            env.pop(CHILDREN_OF + key, None)
                    if isinstance(target, ast.Name):
                        built = EMPTY_SEQUENTIAL + key
                        if built in env and env[built] is not value:
                            del env[built]  # bound again: no longer the container add_module fills
                        if ODICT + key in env:
                            del env[ODICT + key]
                            env.pop(ODICT_KEYS + key, None)
                        if NESTED + key in env:
                            del env[NESTED + key]
                        if value.__class__ is ast.List and value.elts and value.elts[0].__class__ in _DISPLAYS:
                            sublists = self._sublists(value, env, depth, nested)
                            if sublists is not None:
                                env[NESTED + key] = sublists
                                env[NESTED] = True  # some name holds sublists: loops may flatten them
                        keys = _dict_keys(value, self.names)
                        if keys is not None:
                            env["dict:" + key] = keys  # dd = {"device": device, ...}: its keys
                            env[MEMBERS + key] = tuple(zip(keys, value.values if value.__class__ is ast.Dict
                                                           else (k.value for k in value.keywords)))
                        else:
                            env.pop("dict:" + key, None)
                            env.pop(MEMBERS + key, None)
                    if isinstance(target, ast.Name):
                        if value.__class__ is ast.Call and not nested and (
                                value.func.__class__ in (ast.Call, ast.Subscript) or value.func.__class__ is ast.Name
                                and (value.func.id in self.names.classes or value.func.id in self.names.functions)):
                            env[INSTANCE + key] = value  # net = Backbone(...): read on net.<attr>
                            env[INSTANCE] = True  # (other bindings of names then drop theirs)
                        elif value.__class__ is ast.Call and not nested and self.library \
                                and (self.names.resolve(value.func) or "").startswith(library_layers.PREFIXES):
                            env[INSTANCE + key] = value  # net = torchvision.models.resnet50(): read on net.<attr>
                            env[INSTANCE] = True
                        elif INSTANCE + key in env:
                            del env[INSTANCE + key]
                        if isinstance(value, (ast.List, ast.Tuple, ast.ListComp)):
                            env[ELEMENTS + key] = (value, None)  # blocks = [(64, 64, nn.BatchNorm1d(64)), ...]
                        else:
                            env.pop(ELEMENTS + key, None)
                        env.pop(ITEMS + key, None)
                        if isinstance(value, ast.Dict):
                            env[TABLE_OF + key] = value  # ACT2FN = {"gelu": gelu, "relu": torch.relu}
                        else:
                            env.pop(TABLE_OF + key, None)
                    if value.__class__ in _LIST_VALUES and target.__class__ is ast.Name:
                        graph = self._list_graph(value, env, depth)
                        if graph is not None:
                            env["list:" + key] = graph
                            continue
                    elif (value.__class__ in _LIST_VALUES or value.__class__ is ast.Name) \
                            and target.__class__ is ast.Attribute:
                        # self.blocks = [...], self.blocks.append(...), then
                        # nn.Sequential(*self.blocks): a list held in an attribute while it is built
                        graph = self._list_graph(value, env, depth)
                        if graph is not None:
                            env["list:" + key] = graph
                    elif value.__class__ is ast.Call and not value.keywords and len(value.args) < 2 \
                            and _self_attribute(target) and self.names.resolve(value.func) == MODULE_LIST \
                            and (value.lineno, value.col_offset) not in self._site_keys:
                        # self.head = nn.ModuleList(), self.head.append(layer) in a loop, then
                        # nn.Sequential(*self.head): the members in the order they are added, as
                        # for a ModuleList bound to a local name (climate-learn's ViT head).  Not
                        # where the hook has just started this list as a site of its own
                        # (record_chained_list: forward runs the members in a loop).
                        graph = self._list_call(value, env, depth)
                        if graph is not None:
                            env["list:" + key] = graph
                    if isinstance(value, ast.Call) and isinstance(target, ast.Name):
                        graph = self._list_call(value, env, depth)
                        if graph is not None and not (graph.named and graph.unnamed):
                            # layers = conv_bn(...): a list a factory returns (of layers, or of
                            # (name, layer) pairs for an OrderedDict: its readers tell them apart)
                            env["list:" + key] = graph
                            continue
                        args = value.args
                        if (graph is None and not args and not value.keywords and (not nested or nested == BRANCH)
                                and self.names.resolve(value.func) in ORDERED_DICTS):
                            # layers = OrderedDict(), then layers["conv"] = ... statement by
                            # statement (_odict_item): its pairs in the order they are put in
                            env[ODICT + key] = SeqGraph()
                            env[ODICT_KEYS + key] = ()
                            env[ODICT_LEVEL + key] = env.get(BRANCH_LEVEL, 0)
                            continue
                        if (graph is None and args and args[0].__class__ in _DISPLAYS and not args[1:]
                                and not value.keywords and self.names.resolve(value.func) in ORDERED_DICTS):
                            # layers = OrderedDict([("conv", ...), ("bn", ...)]): its pairs, in order
                            graph = self._list_graph(args[0], env, depth)
                            if graph is not None and graph.members and not graph.unnamed:
                                env[ODICT + key] = graph
                                keys = _pair_keys(args[0])
                                if keys is not None:
                                    # its keys known: a new key put in later goes to the end
                                    # (layers["bn"] = ..., _odict_item), as for OrderedDict()
                                    env[ODICT_KEYS + key] = keys
                                    env[ODICT_LEVEL + key] = env.get(BRANCH_LEVEL, 0)
                                continue
                        if (graph is None and args and args[0].__class__ in (ast.Dict, ast.Call) and not args[1:]
                                and not value.keywords and self.names.resolve(value.func) in ORDERED_DICTS):
                            # layers = OrderedDict({"conv": ..., "bn": ...}) (or of dict(conv=..., ...)):
                            # its pairs in the literal's order, with its keys
                            items = _dict_items(args[0], self.names)
                            if items:
                                graph = SeqGraph()
                                for _, element in items:
                                    graph.add(self.values(element, env, depth), element, named=True)
                                env[ODICT + key] = graph
                                env[ODICT_KEYS + key] = tuple(k for k, _ in items)
                                env[ODICT_LEVEL + key] = env.get(BRANCH_LEVEL, 0)
                                continue
                    if isinstance(value, ast.Name) and isinstance(env.get(value.id), _Param):
                        current = env.get(key) if nested else None
                        if current.__class__ is tuple and current:
                            # self.act = TABLE[name]() in one branch, self.act = act (a module
                            # the caller passes) in the other (vit-zoo's MLP head): either
                            resolved = env[value.id] = env[value.id].resolve(self)
                            self.resolved += 1
                            env[key] = _unique(current + tuple(resolved))
                            continue
                        env[key] = env[value.id]  # self.norm_layer = norm_layer: still unresolved
                        continue
                    held = _param_item(value, env) if value.__class__ is ast.Subscript and not nested else None
                    if held is not None:
                        env[key] = held  # self.first = layers[0]: the callers' items, still unresolved
                        continue
                    if self._resolver(value, key, env):
                        continue  # norm_layer = get_norm_layer(norm_layer): still the layer class
                    if (typed is not None and self.reuse_typed and typed[0] is value and typed[1] is env
                            and typed[3] == self.resolved
                            and depth == 0 and not record and len(targets) == 1 and target.__class__ is ast.Attribute
                            and value.__class__ not in _LIST_VALUES and value.__class__ is not ast.Name):
                        # ``self.<attr> = <value>`` typed by the hook just before, in this env, at
                        # this depth, no parameter resolved into the env since (nor while typing):
                        # the same answer (the attribute's value and a list's are read as before)
                        values = typed[2]
                    else:
                        values = self.values(value, env, depth)
                    if nested and (not values or key not in env and isinstance(values[0], Key)):
                        # on some way through the code the name holds what we cannot type
                        # (or, for a key, what it held before, which we do not know)
                        env[UNKNOWN + key] = True
                    elif not nested:
                        env.pop(UNKNOWN + key, None)
                    if nested and key in env:
                        current = env[key]
                        if isinstance(current, _Param):
                            current = current.resolve(self)
                        env[key] = _unique(tuple(current) + values)
                    elif values:
                        env[key] = values
                    else:
                        env.pop(key, None)
            elif kind is ast.AugAssign and stmt.target.__class__ is ast.Name:
                if isinstance(env.get(stmt.target.id), _Param):
                    # arch += "_x": the parameter no longer holds its default (or what a
                    # caller passes) from here on
                    del env[stmt.target.id]
                if record and stmt.value.__class__ in _LIST_VALUES:
                    # ``model += [nn.Sequential(conv, bn, act)]``: the inline containers in the
                    # added display are sites as in ``model.append(...)`` or ``model = [...]``
                    self._record_sites(stmt.value, stmt, env, depth)
                if INSTANCE in env:
                    _drop_instances(stmt.target, env)
                if ELEMENTS + stmt.target.id in env:
                    env[ITEMS + stmt.target.id] = (None,)  # acts += [...]: items not known
                if NESTED + stmt.target.id in env:
                    more = self._sublists(stmt.value, env, depth, nested) if stmt.op.__class__ is ast.Add else None
                    if more is None:
                        del env[NESTED + stmt.target.id]
                    else:
                        env[NESTED + stmt.target.id] = env[NESTED + stmt.target.id] + more
                graph = env.get("list:" + stmt.target.id)
                if isinstance(graph, SeqGraph) and isinstance(stmt.value, (ast.List, ast.Tuple)):
                    for elt in stmt.value.elts:
                        self._member(graph, elt, env, depth)
                elif isinstance(graph, SeqGraph):
                    self._extend(graph, stmt.value, env, depth)  # layers += conv_bn(...)
            elif kind is ast.Delete:
                if INSTANCE in env:
                    _drop_instances(stmt, env)
                for target in stmt.targets:
                    if isinstance(target, ast.Subscript) and isinstance(target.value, ast.Name):
                        env.pop("list:" + target.value.id, None)  # del layers[1]
                        env.pop(ODICT + target.value.id, None)
            elif kind is ast.Expr and (
                    stmt.value.__class__ is ast.Call or _one_call_tuple(stmt.value)):
                # (``self.add_module(...),``: the call, its value discarded in a 1-tuple)
                call = stmt.value if stmt.value.__class__ is ast.Call else stmt.value.elts[0]
                if record:
                    self._record_sites(call, stmt, env, depth)
                f = call.func
                if f.__class__ is ast.Attribute and f.value.__class__ is ast.Name and ODICT + f.value.id in env \
                        and not (f.attr == "update" and (not nested or nested == BRANCH or ODICT_IF in env)
                                 and self._odict_update(call, f.value.id, env, depth)):
                    del env[ODICT + f.value.id]  # .move_to_end(...), .update(**kw): another order
                if f.__class__ is ast.Attribute and f.value.__class__ is ast.Name and NESTED + f.value.id in env:
                    more = None
                    if f.attr == "append" and len(call.args) == 1 and not call.keywords:
                        more = self._sublists(ast.List(elts=[call.args[0]], ctx=ast.Load()), env, depth, nested)
                    if more is None:
                        del env[NESTED + f.value.id]
                    else:
                        env[NESTED + f.value.id] = env[NESTED + f.value.id] + more
                if f.__class__ is ast.Attribute and f.value.__class__ is ast.Name and f.attr != "get":
                    env.pop(MEMBERS + f.value.id, None)  # layers.update(...), .pop(...): members not known
                    if ELEMENTS + f.value.id in env and f.attr not in ("index", "count", "copy"):
                        env[ITEMS + f.value.id] = (None,)  # acts.append(...), .insert(...): items not known
                if isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) and "dict:" + f.value.id in env:
                    if f.attr == "setdefault" and call.args:
                        _add_key(env, f.value.id, call.args[0])  # kwargs.setdefault("bias", False)
                    elif f.attr not in ("pop", "get"):
                        env.pop("dict:" + f.value.id, None)  # dd.update(...): keys we may not know
                if isinstance(f, ast.Attribute) and (isinstance(f.value, ast.Name) or _self_attribute(f.value)):
                    owner = f.value.id if isinstance(f.value, ast.Name) else "self." + f.value.attr
                    graph = env.get("list:" + owner)
                    if isinstance(graph, SeqGraph) and (call.args or call.keywords):
                        if f.attr == "append" and call.args:
                            self._member(graph, call.args[0], env, depth)
                        elif f.attr in ("add_module", "register_module") and (
                                owner.startswith("self") or EMPTY_SEQUENTIAL + owner in env):
                            added = call.args[1] if len(call.args) == 2 and not call.keywords else \
                                _added_module(call)
                            if added is not None:
                                self._member(graph, added, env, depth)
                            else:
                                graph.add((), call)  # add_module(**spec): a member not known
                        elif not call.args:
                            pass
                        elif f.attr == "extend" and isinstance(call.args[0], (ast.List, ast.Tuple)):
                            for elt in call.args[0].elts:
                                self._member(graph, elt, env, depth)
                        elif f.attr == "extend":
                            self._extend(graph, call.args[0], env, depth)  # layers.extend(conv_bn(...))
                    if isinstance(graph, SeqGraph) and f.attr in LIST_REORDERS:
                        env.pop("list:" + owner, None)  # layers.insert(1, ...): the order is not known
                elif f.__class__ is ast.Name and LOCAL_DEF + f.id in env:
                    self._walk_local(env[LOCAL_DEF + f.id], env, depth, record, hook, nested)
                elif f.__class__ is ast.Name and call.args:
                    self._helper_appends(call, env, depth)
            elif kind is ast.Return and stmt.value is not None and record:
                self._record_sites(stmt.value, stmt, env, depth)
            elif kind is ast.If:
                decided = self._decide(stmt.test, env)
                if decided is not None:  # a known key decides it: only that branch runs
                    self._walk(stmt.body if decided else stmt.orelse, env, depth, record, hook, nested)
                    continue
                lists = {k: v for k, v in env.items() if isinstance(v, SeqGraph)}
                before = {k: v.copy() for k, v in lists.items()}
                flagged = (stmt.test.__class__ is ast.Name and not stmt.orelse and not nested
                           and self._odict_flag(stmt, env))
                if flagged:
                    env[ODICT_IF] = True
                # an if outside any loop: an OrderedDict's new keys put in a branch go to its
                # end on the ways through that branch (keys as they were for the other branch)
                branch = BRANCH if not nested or nested == BRANCH else True
                odicts = []  # (a loop, no comprehension: every if asks)
                for k in lists:
                    if k[:_ODICT_LEN] == ODICT:
                        odicts.append(k)
                sizes = {k: len(lists[k].members) for k in odicts} if odicts else None
                keys_before = _odict_keys(env, odicts) if odicts else None
                level = env[BRANCH_LEVEL] if BRANCH_LEVEL in env else 0  # noqa: SIM401 (no call: every if asks)
                if branch == BRANCH:
                    env[BRANCH_LEVEL] = level + 1
                self._walk(stmt.body, env, depth, record, hook, nested=branch)
                env.pop(ODICT_IF, None)
                keys_body = None
                if odicts:
                    keys_body = _odict_keys(env, odicts)
                    env.update(keys_before)
                after_body = {k: env[k].copy() for k in lists if isinstance(env.get(k), SeqGraph)}
                # a list the body binds anew (``middle = []``) rather than extends: the other
                # branch starts from the list as it was, and after the if it is either one
                rebound = {k for k in after_body if env[k] is not lists[k]}
                for k, v in before.items():
                    if k in rebound:
                        env[k] = lists[k] = v.copy()
                    elif isinstance(env.get(k), SeqGraph):
                        env[k].frontier = set(v.frontier)
                # a list first built in this if: ``layers = [...]`` in one branch, other
                # members in the other; the list after the if is either one
                built = {k: env.pop(k) for k in [k for k, v in env.items() if isinstance(v, SeqGraph)
                                                 and k not in lists]}
                self._walk(stmt.orelse, env, depth, record, hook, nested=branch)
                env[BRANCH_LEVEL] = level
                if keys_body:
                    _merge_odict_keys(env, keys_body)
                for k, graph in built.items():
                    other = env.get(k)
                    env[k] = graph.either(other) if isinstance(other, SeqGraph) and k not in lists else graph
                for k, v in after_body.items():
                    current = env.get(k)
                    if not isinstance(current, SeqGraph):
                        continue
                    if k in rebound or current is not lists[k]:
                        env[k] = v.either(current)
                        continue
                    current.frontier |= v.frontier
                    if not stmt.orelse:
                        current.frontier |= before[k].frontier
                if sizes and not flagged:
                    _cut_odicts(env, sizes)
            elif INSTANCE in env and stmt.__class__ in (ast.For, ast.AsyncFor, ast.With, ast.AsyncWith) \
                    and _drop_instances(stmt.target if stmt.__class__ in (ast.For, ast.AsyncFor) else stmt, env):
                pass  # (never taken: the loop's or with's names are no longer a call's instance)
            elif (stmt.__class__ is ast.For and NESTED in env and self._flatten(stmt, env)) or (
                    isinstance(stmt, ast.For) and isinstance(stmt.iter, ast.Name) and _loop_target(stmt.target)
                    and ELEMENTS + stmt.iter.id in env and not stmt.orelse
                    and self._unroll(stmt, _list_spec(env, stmt.iter.id), env, depth, record, hook, nested)) or (
                    stmt.__class__ is ast.For and (counted := _counted_list(stmt)) is not None
                    and ELEMENTS + counted in env
                    and self._unroll(stmt, _list_spec(env, counted), env, depth, record, hook, nested)):
                continue
            elif kind in _BLOCK_STATEMENTS:
                lists = {k: v.frontier.copy() for k, v in env.items() if isinstance(v, SeqGraph)}
                self._walk(stmt.body, env, depth, record, hook, nested=True)
                if not isinstance(stmt, (ast.With, ast.AsyncWith)):
                    for k, frontier in lists.items():
                        if isinstance(env.get(k), SeqGraph):
                            env[k].frontier |= frontier  # the body may run zero times
                    self._walk(getattr(stmt, "orelse", []), env, depth, record, hook, nested=True)
            elif kind is ast.Try or kind.__name__ == "TryStar":
                for block in (stmt.body, *(h.body for h in stmt.handlers), stmt.orelse, stmt.finalbody):
                    self._walk(block, env, depth, record, hook, nested=True)
            elif stmt.__class__ is ast.FunctionDef:
                env[LOCAL_DEF + stmt.name] = stmt  # run where a call statement of it stands

    def _sublists(self, value: ast.expr, env: dict, depth: int, optional: bool) -> list | None:
        """The graphs of a display of list displays (``[[conv, bn, act], [conv]]``), each with
        whether it is added on some ways only; None for any other value or an unknown sublist."""
        if value.__class__ is not ast.List or not value.elts:
            return None
        out = []
        for elt in value.elts:
            if elt.__class__ not in _DISPLAYS:
                return None
            graph = self._list_graph(elt, env, depth)
            if graph is None or graph.named:
                return None
            out.append((graph, optional))
        return out

    def _flatten(self, loop: ast.For, env: dict) -> bool:
        """``for n in range(len(seq)): stream += seq[n]`` (also ``stream.extend(seq[n])``, ``for
        sub in seq: stream += sub``), ``seq`` a list of list displays and ``stream`` a list being
        built: ``stream`` gets every sublist's members in order (one added on some ways only may
        be missing).  False (nothing done) for any other loop."""
        if loop.orelse or loop.body[1:] or loop.target.__class__ is not ast.Name:
            return False
        stmt = loop.body[0]
        if stmt.__class__ is ast.AugAssign and stmt.op.__class__ is ast.Add and stmt.target.__class__ is ast.Name:
            owner, item = stmt.target.id, stmt.value
        elif (stmt.__class__ is ast.Expr and stmt.value.__class__ is ast.Call
              and stmt.value.func.__class__ is ast.Attribute and stmt.value.func.attr == "extend"
              and stmt.value.func.value.__class__ is ast.Name and len(stmt.value.args) == 1):
            owner, item = stmt.value.func.value.id, stmt.value.args[0]
        else:
            return False
        it, var = loop.iter, loop.target.id
        if it.__class__ is ast.Name:  # for sub in seq: stream += sub
            seq = it.id if _is_name(item, var) else None
        elif (it.__class__ is ast.Call and _is_name(it.func, "range") and len(it.args) == 1
              and it.args[0].__class__ is ast.Call and _is_name(it.args[0].func, "len")
              and len(it.args[0].args) == 1 and it.args[0].args[0].__class__ is ast.Name
              and item.__class__ is ast.Subscript and _is_name(item.value, it.args[0].args[0].id)
              and _is_name(item.slice, var)):
            seq = it.args[0].args[0].id  # for n in range(len(seq)): stream += seq[n]
        else:
            seq = None
        graph = env.get("list:" + owner)
        if seq is None or NESTED + seq not in env or not isinstance(graph, SeqGraph):
            return False
        for sub, optional in env[NESTED + seq]:
            before = set(graph.frontier)
            graph.extend(sub)
            if optional:
                graph.frontier |= before
        return True

    def _walk_local(self, func: ast.FunctionDef, env: dict, depth: int, record: bool, hook, nested: bool) -> None:
        """A call statement of a function defined in the walked body (deep convnets that add
        each block's layers by ``self.add_module`` in a nested ``def`` called once per block):
        its body runs there, so the members it adds come in that order.  Its parameters and
        locals are its own (a copy of the names' values, those of its parameters dropped); the
        lists it fills are the caller's."""
        if depth >= MAX_DEPTH:
            return
        self._walk(func.body, _closure(func, env), depth + 1, record, hook, nested)

    def _elements(self, spec: tuple, depth: int = 0) -> list | None:
        """The elements of a list known where it is built, in order: (expression, the names'
        values there, may repeat); a comprehension's element may run any number of times.  None
        when some part is not known."""
        value, env = spec
        if isinstance(value, ast.ListComp):
            return [(value.elt, env, True)] if len(value.generators) == 1 else None
        if isinstance(value, ast.Name):
            inner = _list_spec(env, value.id)
            return self._elements(inner, depth + 1) if inner is not None and depth < MAX_DEPTH else None
        if not isinstance(value, (ast.List, ast.Tuple)):
            return None
        out = []
        for elt in value.elts:
            if isinstance(elt, ast.Starred):
                inner = self._elements((elt.value, env), depth + 1) if depth < MAX_DEPTH else None
                if inner is None:
                    return None
                out.extend(inner)
            else:
                out.append((elt, env, False))
        return out

    def _unroll(self, loop: ast.For, spec: tuple, env: dict, depth: int, record: bool, hook, nested: bool) -> bool:
        """``for block in blocks:`` over a list a caller gives literally (``[(in, out,
        nn.BatchNorm1d(out), nn.ReLU()), ...]``): the body walked once per element, in order,
        with ``block`` standing for that element (a comprehension's element as a loop body that
        may run zero times).  False (nothing walked) when the list is not known."""
        elements = self._elements(spec)
        if not elements or len(elements) > MAX_UNROLL:
            return False
        target = loop.target
        if loop.iter.__class__ is ast.Call:
            # ``for i, layer in enumerate(layers):`` (see _counted_list): ``layer`` stands for
            # each element; the running count ``i`` is no layer
            env.pop(target.elts[0].id, None)
            target = target.elts[1]
        # ``for a, b, norm, act in blocks:``: the names unpacked from each element at the loop
        # head, as ``a, b, norm, act = block`` would in the body (AK_SSL's projection heads)
        name = target.id if target.__class__ is ast.Name else None
        hold = name is not None and _holds_each_element(loop, name, env)
        for expr, where, repeated in elements:
            if name is None:
                self._unpack(target, (expr, where), env, depth)
            else:
                env[ELEMENT_OF + name] = (expr, where)
                if hold:
                    self._hold_element(name, expr, where, env, depth)
                else:
                    env.pop(name, None)
            if repeated:
                lists = {k: v.frontier.copy() for k, v in env.items() if isinstance(v, SeqGraph)}
                self._walk(loop.body, env, depth, record, hook, nested=True)
                for k, frontier in lists.items():
                    if isinstance(env.get(k), SeqGraph):
                        env[k].frontier |= frontier
            else:
                self._walk(loop.body, env, depth, record, hook, nested)
        for key in [k for k in env if isinstance(k, str) and k.startswith((ELEMENT, ITERATION))]:
            del env[key]
        if name is not None:
            env.pop(ELEMENT_OF + name, None)
            env.pop(name, None)  # (what the name holds after the loop: not followed)
        return True

    def _hold_element(self, name: str, expr: ast.expr, where: dict | None, env: dict, depth: int) -> None:
        """``for layer in layers: seq.append(layer)`` over ``layers = [nn.Linear(a, b) for ...]``:
        the loop variable holds the layer the current element builds, so a list the body fills
        gets that layer (mnistvit's MLP: each Linear of a comprehension, then its activation).
        An element that is no known layer (a tuple of block settings) leaves the name unknown."""
        held = self.values(expr, where if where is not None else env, depth)
        if held:
            env[name] = held
        else:
            env.pop(name, None)

    def _unpack(self, targets: ast.expr, element: tuple, env: dict, depth: int) -> None:
        """``a, b, norm, act, *rest = block`` with ``block`` an unrolled element: each name
        holds what the element's item is where the caller wrote it (and is placed there)."""
        expr, where = element
        env[ITERATION] = expr
        items = expr.elts if isinstance(expr, (ast.Tuple, ast.List)) else None
        for index, target in enumerate(targets.elts):
            if not isinstance(target, ast.Name):
                break  # *rest: what follows is not positional any more
            item = items[index] if items is not None and index < len(items) else None
            values = self.values(item, where, depth) if item is not None else ()
            if values:
                env[target.id] = values
            else:
                env.pop(target.id, None)
            if item is not None:
                env[ELEMENT + target.id] = item
            else:
                env.pop(ELEMENT + target.id, None)

    def instantiate_base(self, init, owner: str, call: ast.Call, env: dict) -> None:
        """Walk a same-file base class's ``__init__`` for one ``super().__init__(...)`` call of
        a subclass: the Sequential sites it builds from what this call passes (a list of
        per-block tuples its loop turns into members) are recorded as this call's."""
        previous = self._instance
        self._instance = (call.lineno, call.col_offset)
        try:
            self.function_env(init, owner, call=(call, env), record=True, cls_name=owner)
        finally:
            self._instance = previous

    def _list_graph(self, value: ast.expr, env: dict, depth: int) -> SeqGraph | None:
        """The graph of a list expression: a literal, a list name, ``a + b`` (a's members then
        b's), ``a if c else b`` (either); None for anything else.  (fastai's LinBnDrop:
        ``layers = [bn] if bn else []``, ``lin = [nn.Linear(...), act]``, then ``layers = lin +
        layers if linear_first else layers + lin``.)"""
        if isinstance(value, (ast.List, ast.Tuple)):
            graph = SeqGraph()
            for elt in value.elts:
                if isinstance(elt, ast.Starred):
                    # [*conv_bn(...), pool]: the members of the list spread, when known (also
                    # pairs spread into pairs: ``[("pad", pad), *modules]`` for an OrderedDict)
                    inner = self._list_graph(elt.value, env, depth) if depth < MAX_DEPTH else None
                    if inner is not None and not (inner.named and inner.unnamed):
                        graph.extend(inner)
                    else:
                        graph.add((), elt)
                    continue
                self._member(graph, elt, env, depth)
            return graph
        if isinstance(value, ast.Name):
            listed = env.get("list:" + value.id)
            return listed.copy() if isinstance(listed, SeqGraph) else None
        if value.__class__ is ast.ListComp:
            # [Block(c) for _ in range(n)]: its element's layer, none or many times (what is put
            # after it may follow what came before it)
            graph = SeqGraph()
            graph.add(self.values(value.elt, env, depth), value.elt)
            graph.frontier.add(-1)
            return graph
        if isinstance(value, ast.Call):
            return self._list_call(value, env, depth)  # layers = conv_bn(...): the list it returns
        if isinstance(value, ast.BinOp) and isinstance(value.op, ast.Add):
            left = self._list_graph(value.left, env, depth)
            right = self._list_graph(value.right, env, depth) if left is not None else None
            if right is None:
                return None
            left.extend(right)
            return left
        if isinstance(value, ast.IfExp):
            body = self._list_graph(value.body, env, depth)
            orelse = self._list_graph(value.orelse, env, depth) if body is not None else None
            return body.either(orelse) if orelse is not None else None
        return None

    def _helper_appends(self, call: ast.Call, env: dict, depth: int) -> None:
        """``conv_bn(layers, cin, cout)`` as a statement, ``layers`` a followed list and
        ``conv_bn`` a same-file function: the layers it appends to the list, in order, placed
        at the call (ReXNet's ``ConvBNAct(out, ...)``); a same-file function that may do
        anything else with the list puts a member we cannot type there (nothing before the
        call joins what comes after it)."""
        passed = passed_list(call, lambda name: isinstance(env.get("list:" + name), SeqGraph))
        if passed is None:
            return
        fqn = self.names.resolve(call.func)
        func = self.names.functions.get(fqn) if fqn is not None and fqn not in self.names.classes else None
        if func is None:
            return
        graph = env["list:" + passed[1]]
        key = (id(func), passed[0])
        builder = self._list_builders.get(key, False)
        if builder is False:
            builder = self._list_builders[key] = as_list_builder(func, passed[0])
        built = self._factory_list(func.name, call, env, depth, builder) if builder is not None else None
        if built is None or built.named:
            graph.add((), call)
            return
        placed = built.copy()
        placed.members = [(layer, call) for layer, _ in built.members]
        graph.extend(placed)

    def _extend(self, graph: SeqGraph, value: ast.expr, env: dict, depth: int) -> None:
        """``layers.extend(value)`` / ``layers += value`` with value no list display: the
        members of the list it is when known (a list name, a factory's list), else one member
        we cannot type (nothing joins what came before to what comes after)."""
        other = self._list_graph(value, env, depth) if depth < MAX_DEPTH else None
        if other is not None and not other.named:
            graph.extend(other)
        else:
            graph.add((), value)

    def _odict_item(self, target: ast.Subscript, value: ast.expr, env: dict, depth: int) -> bool:
        """``layers["bn"] = nn.BatchNorm2d(c)`` on a name bound to an empty ``OrderedDict()`` in
        the same straight-line code: a key not put in before goes to the end, so the pair is the
        graph's next member (True); any other key (a repeat, a name, an f-string) is not followed
        (False: the caller forgets the order)."""
        name = target.value.id
        keys = env.get(ODICT_KEYS + name)
        key = target.slice
        if keys is None or key.__class__ is not ast.Constant or key.value.__class__ is not str or key.value in keys:
            return False
        env[ODICT_KEYS + name] = (*keys, key.value)
        env[ODICT + name].add(self._odict_member(value, name, env, depth), value, named=True)
        return True

    def _odict_member(self, value: ast.expr, name: str, env: dict, depth: int) -> tuple:
        """What a layer put into a followed OrderedDict builds: in the straight-line code the
        dict was made in (or under a flag on by default) its layers; in a branch of another
        ``if`` nothing known (the member is there on some ways only, so no pair is read
        through it)."""
        if ODICT_IF not in env and env.get(BRANCH_LEVEL, 0) != env.get(ODICT_LEVEL + name, 0):
            return ()
        return self.values(value, env, depth)

    def _odict_update(self, call: ast.Call, name: str, env: dict, depth: int) -> bool:
        """``layers.update({"conv": conv, "bn": bn})`` (or ``update(dict(conv=..., ...))``,
        ``update(conv=..., bn=...)``) on a name ``_odict_item`` follows: keys not put in before
        go to the end in the literal's order, so each layer is the graph's next member (True);
        a key put in before (it would stay where it stands) or any other argument is not
        followed (False: the caller forgets the order)."""
        if call.args and (call.args[1:] or call.keywords):
            return False
        if call.args:
            items = _dict_items(call.args[0], self.names)
        elif all(kw.arg is not None for kw in call.keywords):
            items = [(kw.arg, kw.value) for kw in call.keywords]
        else:
            items = None
        keys = env.get(ODICT_KEYS + name)
        if not items or keys is None or any(k in keys for k, _ in items):
            return False
        env[ODICT_KEYS + name] = (*keys, *(k for k, _ in items))
        for _, value in items:
            env[ODICT + name].add(self._odict_member(value, name, env, depth), value, named=True)
        return True

    def _odict_flag(self, stmt: ast.If, env: dict) -> bool:
        """Is ``stmt`` ``if <flag>:`` putting items into an OrderedDict that ``_odict_item``
        follows, in straight-line statements, ``flag`` a parameter whose default is ``True``
        that the function never binds again?  (A flag's default is the way the GUIDE reads.)"""
        if not any(s.__class__ is ast.Assign and len(s.targets) == 1 and s.targets[0].__class__ is ast.Subscript
                   and s.targets[0].value.__class__ is ast.Name and ODICT + s.targets[0].value.id in env
                   for s in stmt.body):
            return False
        if not all(s.__class__ in (ast.Assign, ast.Expr, ast.Pass) for s in stmt.body):
            return False
        param = env.get(stmt.test.id)
        if param.__class__ is not _Param:
            return False
        func, name = param.func, param.name
        default = param_default(func.args, name)
        return (default.__class__ is ast.Constant and default.value is True
                and not _rebinds(func, name))

    def _member(self, graph: SeqGraph, elt: ast.expr, env: dict, depth: int) -> None:
        """Put one list element into the list's graph: a layer, or a ``(name, layer)`` pair
        (the items of ``OrderedDict(list)``), whose layer is the member."""
        if isinstance(elt, ast.Tuple) and len(elt.elts) == 2 and _pair_name(elt.elts[0]):
            layer = elt.elts[1]
            graph.add(self.values(layer, env, depth), layer, named=True)
        elif ITERATION in env:
            # in a loop unrolled over a caller's list: the member is placed where the caller
            # gives it (the element's item it was unpacked from, else the whole element)
            at = env.get(ELEMENT + elt.id) if isinstance(elt, ast.Name) else None
            graph.add(self.values(elt, env, depth), at if isinstance(at, ast.expr) else env[ITERATION])
        else:
            graph.add(self.values(elt, env, depth), elt)

    def _resolver(self, value: ast.expr, key: str, env: dict) -> bool:
        """Is ``key = f(key, ...)`` the idiom that normalises a layer-class parameter
        (``norm_layer = get_norm_layer(norm_layer)``, ``act_layer = get_act_layer(act_layer)``)
        through a function of another module?  Given a layer class such resolvers return it
        (they map strings and None to classes), so the name keeps what it held."""
        if not (isinstance(value, ast.Call) and value.args and isinstance(value.args[0], ast.Name)
                and value.args[0].id == key and key in env):
            return False
        func = value.func
        if isinstance(func, ast.Name) and func.id in env:
            return False
        fqn = self.names.resolve(func)
        if fqn is None or fqn in self.names.functions or fqn in self.names.classes or fqn.startswith("torch."):
            return False
        current = env[key]
        held = current.default if isinstance(current, _Param) else current
        return any(isinstance(v, LayerClass) for v in held)

    # ------------------------------------------------------------------ Sequential sites
    def _record_sites(self, expr: ast.expr, stmt: ast.stmt, env: dict, depth: int) -> None:
        sliced = None  # id of a call sliced as ``nn.Sequential(...)[a:b]`` -> the slice
        for node in walk(expr):
            if not isinstance(node, ast.Call):
                if node.__class__ is ast.Subscript and node.value.__class__ is ast.Call \
                        and node.slice.__class__ is ast.Slice:
                    if sliced is None:
                        sliced = {}
                    sliced[id(node.value)] = node.slice  # (walk yields the slice before the call)
                continue
            func = node.func
            if isinstance(func, ast.Name) and func.id in env:
                continue
            fqn = self.names.resolve(func)
            if fqn is None:
                if func.__class__ is not ast.Call or func.func.__class__ is not ast.Name \
                        or self.factory_sequential(func.func.id) is None:
                    continue
                fqn = func.func.id  # ``Skip(torch.add)(a, b, c)``: the class the factory returns
            unlike = "" if self._instance is None else (
                "its members are built by a base class's loop from the blocks a subclass passes: rewrite by hand")
            if func.__class__ is ast.Call:
                unlike = (f"`{fqn}(...)` returns an nn.Sequential subclass with its own code: giving the "
                          f"container another class would drop it")
            elif fqn != SEQUENTIAL:
                if fqn[:1] == "t" and fqn.startswith("torch."):
                    continue
                if self.in_order_sequential(fqn) is None:
                    if self.package is not None and fqn not in self.names.classes and self.package.owns(fqn) \
                            and self._sibling_block_site(fqn, node, stmt, env, depth):
                        continue
                    if not (len(node.args) == 1 and not node.keywords and fqn in self.names.classes
                            and self.chain_kind(fqn) == "list"):
                        continue
                    # Chain([a, b, c]) / Chain(layers): the list's members, run in order
                    spread = ast.copy_location(ast.Starred(value=node.args[0], ctx=ast.Load()), node.args[0])
                    key = (node.lineno, node.col_offset, self._instance)
                    if key not in self._site_keys:
                        self._site_keys.add(key)
                        self.sites.append(SequentialSite(node, stmt, self.sequence([spread], env, depth), unlike=(
                            f"`{fqn}` runs the list's layers in its own loop: rewrite it by hand")))
                    continue
                unlike = (f"`{fqn.rsplit('.', 1)[-1]}` is an nn.Sequential subclass with its own code: giving the "
                          f"container another class would drop it")
            key = (node.lineno, node.col_offset, self._instance)
            if key in self._site_keys:
                continue
            self._site_keys.add(key)
            graph = self.sequence(node.args, env, depth)
            if sliced is not None and id(node) in sliced:
                graph = _slice_graph(graph, sliced[id(node)])  # nn.Sequential(...)[:3]: what is kept
            self.sites.append(SequentialSite(node, stmt, graph, unlike=unlike))
            if (fqn == SEQUENTIAL and not node.args and not node.keywords and isinstance(stmt, ast.Assign)
                    and stmt.value is node and len(stmt.targets) == 1):
                target = stmt.targets[0]
                if isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name) \
                        and target.value.id == "self":
                    # self.features = nn.Sequential(), then self.features.add_module(name, layer) /
                    # .append(layer): the members come in the order the code adds them
                    env["list:self." + target.attr] = self.sites[-1].graph
                elif isinstance(target, ast.Name):
                    # result = nn.Sequential(), then result.add_module(name, layer) (a factory
                    # filling the container it returns, RepVGG's conv_bn): the name holds that
                    # container until it is bound again (:data:`EMPTY_SEQUENTIAL`)
                    env["list:" + target.id] = self.sites[-1].graph
                    env[EMPTY_SEQUENTIAL + target.id] = node

    def _sibling_block_site(self, fqn: str, call: ast.Call, stmt: ast.stmt, env: dict, depth: int) -> bool:
        """A call of an ``nn.Sequential`` subclass of another module of the package that builds
        its own members (built_blocks.block_factory: towhee's ``Conv2dBNActivation(...,
        norm_layer=nn.BatchNorm2d)``): a Sequential site here, its members typed with this call's
        arguments and placed at the call, keeping only the joins a member this call decides
        takes part in (a member typed otherwise at the class's own defaults: a pair the class
        forms by itself is its own module's, not this call's).  Reported, not fixed: the layers
        are built in the other module.  False when no site is recorded."""
        found = self.sibling_block(fqn)
        if found is None or depth >= MAX_DEPTH:
            return False
        other, func = found
        graph = self._placed_block(other, func, call, env, depth)
        if graph is None:
            return False
        base = self._placed_block(other, func, defaults_call(func, call), env, depth)
        if base is None:
            return False

        def kinds(member) -> tuple:
            return tuple(sorted(b.fqn for b in member[0]))

        changed = {i for i, member in enumerate(graph.members)
                   if i >= len(base.members) or kinds(member) != kinds(base.members[i])}
        graph.edges = {(a, b) for a, b in graph.edges if a == -1 or a in changed or b in changed}
        if not any(a != -1 for a, _ in graph.edges):
            return False
        site_key = (call.lineno, call.col_offset, self._instance)
        if site_key in self._site_keys:
            return True
        self._site_keys.add(site_key)
        self.sites.append(SequentialSite(call, stmt, graph, unlike=(
            f"`{func.name}` builds these layers in its own `__init__` in `{other.module}`, from the arguments "
            f"passed here: rewrite it by hand")))
        return True

    def sibling_block(self, fqn: str):
        """(typer of the defining module, built_blocks.block_factory of the class) for a class
        ``fqn`` of another module of the package that builds its own members; None otherwise.
        Memoised."""
        key = ("block", fqn)
        if key not in self._kinds:
            self._kinds[key] = self._sibling_block(fqn) if self.package is not None else None
        return self._kinds[key]

    def _sibling_block(self, fqn: str):
        found = self.package.find(fqn)
        if found is None or found[1] not in found[0].names.classes:
            return None
        other, name = found
        cls = other.names.classes[name]
        is_sequential = len(cls.bases) == 1 and other.names.resolve(cls.bases[0]) == SEQUENTIAL
        func = block_factory(cls, is_sequential, runs_in_order)
        return None if func is None else (other, func)

    def _placed_block(self, other: LayerTyper, func: ast.FunctionDef, call: ast.Call, env: dict,
                      depth: int) -> SeqGraph | None:
        """The members of the one nn.Sequential the block factory ``func`` of module ``other``
        returns when called like this, as this file sees them, placed at the call."""
        marshalled = self._foreign_call(other, func.name, call, env, depth)
        if marshalled is None:
            return None
        inner, passed, via = marshalled
        values = other._factory(func.name, inner, passed, depth + 1, func=func)
        if len(values) != 1 or values[0].__class__ is not Built or values[0].members is None:
            return None
        graph = values[0].members
        return _exported_at(other, graph, call, via)

    def record_chained_list(self, call: ast.Call, stmt: ast.stmt, env: dict, attr: str) -> None:
        """``self.<attr> = nn.ModuleList([a, b, c])`` (or a list filled before) whose members the
        forward applies in order (``for m in self.<attr>: x = m(x)``): a sequence, as an
        nn.Sequential of them would be.  Reported, not fixed: the container is no Sequential."""
        key = (call.lineno, call.col_offset)
        if key in self._site_keys or len(call.args) > 1 or call.keywords:
            return
        arg = call.args[0] if call.args else None
        if arg is None:
            # self.<attr> = nn.ModuleList(), then self.<attr>.append(layer) / .extend([...]):
            # the members come in the order the code adds them (as for an empty nn.Sequential)
            graph = SeqGraph()
            env["list:self." + attr] = graph
        elif self.names.resolve(call.func) == "torch.nn.ModuleDict":
            # nn.ModuleDict({"conv": ..., "bn": ...}) / (OrderedDict([...])) / (dict(conv=...)):
            # its members in the order the mapping keeps them
            items = _dict_items(arg, self.names)
            if items is not None:
                values = [value for _, value in items]
            elif arg.__class__ is ast.Call and self.names.resolve(arg.func) in ORDERED_DICTS:
                values = list(_ordered_dict_values(arg, self.names))
            else:
                return
            if not values:
                return
            graph = SeqGraph()
            for value in values:
                graph.add(self.values(value, env, 0), value)
        elif isinstance(arg, (ast.List, ast.Tuple)):
            graph = self.sequence(arg.elts, env, 0)
        elif isinstance(arg, ast.Name) and isinstance(env.get("list:" + arg.id), SeqGraph) \
                and not env["list:" + arg.id].named:
            graph = env["list:" + arg.id].copy()
        else:
            return
        self._site_keys.add(key)
        kind = "nn.ModuleDict" if self.names.resolve(call.func) == "torch.nn.ModuleDict" else "nn.ModuleList"
        self.sites.append(SequentialSite(call, stmt, graph, unlike=(
            f"the members of `{attr}` run in forward's loop over an {kind}; rewrite it by hand")))

    def chain_kind(self, fqn: str) -> str | None:
        """:func:`_chain_kind` of the same-file class ``fqn`` (an ``nn.Module`` subclass): "args"
        when calling it with layers runs them in order, "list" when calling it with one list
        of layers does; None otherwise.  Memoised."""
        cls = self.names.classes.get(fqn)
        if cls is None:
            return None
        # (first, call-free but for len: the class ends in ``__init__`` taking the layers alone,
        # in two statements, then ``forward``)
        body = cls.body
        init = body[-2] if len(body) >= 2 else None
        if init.__class__ is not ast.FunctionDef or init.name != "__init__" or len(init.body) > 3 \
                or body[-1].__class__ is not ast.FunctionDef or len(body) > 3 \
                or len(init.args.args) != (1 if init.args.vararg is not None else 2):
            return None
        key = ("chain", fqn)
        if key not in self._kinds:
            self._kinds[key] = _chain_kind(cls, self.names) if any(
                self.names.resolve(base) == MODULE for base in cls.bases) else None
        return self._kinds[key]

    def factory_sequential(self, name: str) -> str | None:
        """``name(a)`` where ``name`` is a function of this file whose body only defines a class
        and returns it (``def Skip(merge_fn): class Skip(Sequential): ...; return Skip``), the
        class built and run like an nn.Sequential (:meth:`in_order_sequential`, its base named
        by no parameter of the function): that class's name.  ``name(a)(x, y)`` then runs
        ``x``, ``y`` in sequence.  None otherwise."""
        fdef = self.names.functions.get(name)
        if fdef is None:
            return None
        body = fdef.body
        if body and body[0].__class__ is ast.Expr and isinstance(body[0].value, ast.Constant):
            body = body[1:]
        if not (len(body) == 2 and body[0].__class__ is ast.ClassDef and body[1].__class__ is ast.Return
                and _is_name(body[1].value, body[0].name)):
            return None
        key = ("factory-sequential", name)
        if key in self._kinds:
            return self._kinds[key]
        self._kinds[key] = None
        cls = body[0]
        params = {a.arg for a in (*fdef.args.posonlyargs, *fdef.args.args, *fdef.args.kwonlyargs)}
        params.update(a.arg for a in (fdef.args.vararg, fdef.args.kwarg) if a is not None)
        found = None
        for base in cls.bases:
            if base.__class__ is not ast.Name or base.id in params:
                break
            base_fqn = self.names.resolve(base)
            if base_fqn == SEQUENTIAL or (base_fqn is not None and base_fqn in self.names.classes
                                          and self.in_order_sequential(base_fqn)):
                if _forwards_to_sequential(cls) and runs_in_order(cls):
                    found = cls.name
                break
        self._kinds[key] = found
        return found

    def in_order_sequential(self, fqn: str, depth: int = 0) -> str | None:
        """The name of the class ``fqn`` (of this file or of the package) when it is an
        ``nn.Sequential`` subclass built like one and run like one: its ``__init__`` (if any)
        hands its positional arguments to ``nn.Sequential``'s and adds no member itself, and its
        ``forward`` (if any) applies each member in order to the running value
        (:func:`runs_in_order`).  Calling it with layers then runs those layers in sequence.
        None for any other class."""
        key = ("sequential", fqn)
        if key in self._kinds:
            return self._kinds[key]
        self._kinds[key] = None
        found = None
        cls = self.names.classes.get(fqn)
        if cls is not None:
            for base in cls.bases:
                base_fqn = self.names.resolve(base)
                if base_fqn == MODULE:
                    if self.chain_kind(fqn) == "args":
                        found = cls.name  # a ModuleList of the constructor's layers, run in order
                    break
                if base_fqn == SEQUENTIAL or (depth < MAX_DEPTH and base_fqn is not None and (
                        base_fqn in self.names.classes or (self.package is not None and self.package.owns(base_fqn)))
                                              and self.in_order_sequential(base_fqn, depth + 1)):
                    if _forwards_to_sequential(cls) and runs_in_order(cls, applier=self._member_applier):
                        found = cls.name
                    break
        elif self.package is not None and depth < MAX_DEPTH and self.package.owns(fqn):
            other = self.package.find(fqn)
            if other is not None and other[1] in other[0].names.classes:
                found = other[0].in_order_sequential(other[1], depth + 1)
        self._kinds[key] = found
        return found

    def _member_applier(self, name: str) -> bool:
        """Is ``name`` a function of this module that runs a torch-layer member of a Sequential
        subclass on the running tensor and threads a state along
        (:func:`adopter.structure.member_appliers.applies_member`)?"""
        fdef = self.names.functions.get(name)
        if fdef is None or fdef.__class__ is not ast.FunctionDef:
            return False
        package = self.package
        classes = self.names.classes
        return applies_member(fdef, self.names.resolve,
                              lambda fqn: fqn in classes or (package is not None and package.owns(fqn)))

    def appends_in_order(self, fqn: str, depth: int = 0) -> str | None:
        """The name of the class ``fqn`` (of this file or of the package) when it is an
        ``nn.Sequential`` subclass (directly, or through such classes) that starts empty and
        keeps nn.Sequential's ``append`` and forward (:mod:`adopter.structure.appending`):
        a subclass's ``super().__init__()`` then ``self.append(layer)`` calls build a
        sequence, run in the order appended.  None for any other class."""
        key = ("appends", fqn)
        if key in self._kinds:
            return self._kinds[key]
        self._kinds[key] = None
        found = None
        cls = self.names.classes.get(fqn)
        if cls is not None and len(cls.bases) == 1:
            # the base first (most chains end at nn.Module: no walk of this class's methods)
            base = self.names.resolve(cls.bases[0])
            methods = None
            if base == SEQUENTIAL or (
                    depth < MAX_DEPTH and base is not None
                    and (base in self.names.classes or (self.package is not None and self.package.owns(base)))
                    and self.appends_in_order(base, depth + 1)
                    and "append" not in (methods := _methods(cls))):
                methods = _methods(cls) if methods is None else methods
                if not (CONTAINER_API & methods.keys()) and starts_empty(methods.get("__init__")) \
                        and appends_last(methods.get("append"), methods.get("__init__"), methods) \
                        and runs_in_order(cls):
                    found = cls.name
        elif self.package is not None and depth < MAX_DEPTH and self.package.owns(fqn):
            other = self.package.find(fqn)
            if other is not None and other[1] in other[0].names.classes:
                found = other[0].appends_in_order(other[1], depth + 1)
        self._kinds[key] = found
        return found

    def appending_state(self, fqn: str, depth: int = 0) -> frozenset:
        """The ``self`` attributes the ``__init__`` of the class ``fqn`` and of its bases (this
        file's or the package's) sets, for a class :meth:`appends_in_order` accepts: its
        ``append``'s counter among them.  A subclass that writes one of them (``self.count =
        0`` between two appends) makes the next ``append`` reuse a member's name, which
        replaces that member in place: no longer the order appended."""
        found: set = set()
        cls = self.names.classes.get(fqn)
        if cls is not None:
            init = _methods(cls).get("__init__")
            for stmt in init.body if init is not None else ():
                if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and _self_attribute(stmt.targets[0]):
                    found.add(stmt.targets[0].attr)
            base = self.names.resolve(cls.bases[0]) if len(cls.bases) == 1 else None
            if base is not None and base != SEQUENTIAL and depth < MAX_DEPTH:
                found |= self.appending_state(base, depth + 1)
        elif self.package is not None and depth < MAX_DEPTH and self.package.owns(fqn):
            other = self.package.find(fqn)
            if other is not None and other[1] in other[0].names.classes:
                found |= other[0].appending_state(other[1], depth + 1)
        return frozenset(found)

    def record_children(self, call: ast.Call, stmt: ast.stmt, env: dict) -> None:
        """``super().__init__()`` of a module whose forward runs its children in order
        (:func:`runs_children`): the layers the rest of ``__init__`` registers are the members
        of a sequence, in the order it registers them.  Reported, not fixed: the container is
        the class itself, whose members forward reaches only through its loop."""
        key = (call.lineno, call.col_offset)
        if key in self._site_keys:
            return
        self._site_keys.add(key)
        site = SequentialSite(call, stmt, SeqGraph(), unlike=(
            "the layers run in forward's loop over the module's children; rewrite it by hand"))
        self.sites.append(site)
        env["list:self"] = site.graph

    def add_child(self, value: ast.expr, env: dict) -> None:
        """``self.x = value`` in such an ``__init__``: the next member."""
        graph = env.get("list:self")
        if isinstance(graph, SeqGraph):
            self._member(graph, value, env, 0)

    def record_super_init(self, call: ast.Call, stmt: ast.stmt, env: dict, base: ast.expr | None = None,
                          unlike: str = "", skips: frozenset = frozenset()) -> None:
        """``super().__init__(a, b)`` in a class derived from nn.Sequential (named by ``base``
        in the class statement) builds one.  ``skips``: the layer classes its forward leaves
        out (``runs_in_order``): such a member is kept as a step of unknown kind, so that it is
        neither one end of a pair nor a way to join its neighbours (a miss, never a pair that
        does not run)."""
        key = (call.lineno, call.col_offset)
        if key not in self._site_keys:
            self._site_keys.add(key)
            graph = self.sequence(call.args, env, 0)
            if skips:
                graph.members = [((), expr) if any(getattr(b, "fqn", None) in skips for b in built) else (built, expr)
                                 for built, expr in graph.members]
            site = SequentialSite(call, stmt, graph, base, unlike)
            self.sites.append(site)
            if skips:
                return  # members added later are not read (the skipped ones among them unknown)
            # members the rest of __init__ adds (``self.add_module(name, layer)``, ``self.append``)
            # come after these, in the order the code adds them
            env["list:self"] = site.graph


def _runtime_activation(value) -> bool:
    """Is ``value`` (a layer a call passes) an activation a choice made at run time may be
    (``torch.nn.GELU()``, ``torch.nn.ReLU()``: the op table's ``runtime`` operations)?"""
    if not isinstance(value, Built) or value.table:
        return False
    op = TABLE.canonical(value.fqn)
    return op is not None and op.name in TABLE.runtime


@dataclass
class _Param:
    """A parameter's layer values, resolved on first use: its default's, and what the file's
    calls of the function (or of the class, for ``__init__``) pass for it."""

    default: tuple
    func: object
    owner: str | None
    index: int
    name: str
    positional: bool
    depth: int
    method_of: str | None = None  # the class of a method walked as a function (``self`` counted)
    # ``param[item]``: the item each caller's list (or tuple) holds at that place, not the
    # value passed (``self.first = layers[0]``; LayerTyper._list_item)
    item: int | None = None

    def resolve(self, typer: "LayerTyper") -> tuple:
        outer = typer._module_calls is None
        if outer:
            # the parameter a layer is built from decides, for the whole chain of callers
            # looked up for it, whether module-level calls count (LayerTyper.required)
            typer._module_calls = typer.required(self)
        try:
            passed = typer.caller_values(self.func, self.owner, self.index, self.name, self.positional,
                                         self.depth, self.method_of, self.item)
        finally:
            if outer:
                typer._module_calls = None
        return _unique(self.default + passed)


def _tests_none(func, name: str) -> bool:
    """Does ``func`` test its parameter ``name`` for None or for truth (``name is None``,
    ``name is not None``, ``if name:``, ``name or default``, ``A if name else B``)?"""
    for node in walk(func):
        cls = node.__class__
        if cls is ast.Compare:
            operands = (node.left, *node.comparators)
            if any(o.__class__ is ast.Name and o.id == name for o in operands) and any(
                    o.__class__ is ast.Constant and o.value is None for o in operands):
                return True
        elif cls is ast.If or cls is ast.IfExp or cls is ast.While:
            test = node.test
            if test.__class__ is ast.UnaryOp and test.op.__class__ is ast.Not:
                test = test.operand
            if test.__class__ is ast.Name and test.id == name:
                return True
        elif cls is ast.BoolOp and any(v.__class__ is ast.Name and v.id == name for v in node.values):
            return True
    return False


def _computes_base(forward, layer: str, names: ModuleNames, derived_weight: bool = False) -> bool:
    """Is ``forward`` one ``return`` of the base layer's computation on the layer's own
    parameters, with only dtype conversions around it and its operands?  ``derived_weight``:
    the weight operand may be any expression of the module's own state that does not read the
    input (``F.linear(x, self.get_weight(), self.bias)``: a spectral-normalised Linear, cellplm,
    research85): still the layer's computation with its own bias, on another weight."""
    body = [s for s in forward.body if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))]
    if len(body) != 1 or not isinstance(body[0], ast.Return) or body[0].value is None:
        return False
    params = [a.arg for a in forward.args.posonlyargs + forward.args.args]
    if len(params) != 2 or forward.args.vararg or forward.args.kwarg or forward.args.kwonlyargs:
        return False
    x = params[1]
    expr = strip_casts(body[0].value)
    if not isinstance(expr, ast.Call):
        return False
    func = expr.func
    if (isinstance(func, ast.Attribute) and func.attr == "forward" and isinstance(func.value, ast.Call)
            and isinstance(func.value.func, ast.Name) and func.value.func.id == "super"):
        # super().forward(x) with x maybe cast: the base computation as it is
        return (len(expr.args) == 1 and not expr.keywords and _is_name(strip_casts(expr.args[0]), x))
    function = LAYER_FUNCTIONS.get(layer)
    if function is None or names.resolve(func) != function:
        return False
    operands = dict(zip(("input", "weight", "bias"), expr.args))
    for keyword in expr.keywords:
        if keyword.arg not in ("input", "weight", "bias") or keyword.arg in operands:
            return False
        operands[keyword.arg] = keyword.value
    if len(expr.args) > 3 or not _is_name(strip_casts(operands.get("input")), x):
        return False
    weight = strip_casts(operands.get("weight"))
    if not (_is_own(weight, "weight") or derived_weight and _of_own_state(weight, x)):
        return False
    if "bias" not in operands:  # the layer's bias would be left out
        return False
    bias = operands["bias"]
    if isinstance(bias, ast.IfExp):
        # None if self.bias is None else self.bias.to(x.dtype): the bias when there is one
        test = bias.test
        if not (isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], (ast.Is, ast.IsNot))
                and _is_own(test.left, "bias") and isinstance(test.comparators[0], ast.Constant)
                and test.comparators[0].value is None):
            return False
        none, other = (bias.body, bias.orelse) if isinstance(test.ops[0], ast.Is) else (bias.orelse, bias.body)
        if not (isinstance(none, ast.Constant) and none.value is None):
            return False
        bias = other
    return _is_own(strip_casts(bias), "bias")


def _base_then_if(forward, layer: str, names: ModuleNames) -> bool:
    """Is ``forward`` the base layer's computation bound to a name (``out = F.linear(x,
    self.weight, self.bias)``, as :func:`_computes_base` reads it), then one or more ``if``
    statements without ``else`` whose bodies only rebind that name (``out = torch.cat((out,
    self.extra(x)), -1)``), then ``return out``?  On the way where no test holds the module
    returns the base layer's output (transformers' IdeficsDecoupledLinear: extra vocabulary
    rows only when configured): the layer, with steps under a condition, reported."""
    body = [s for s in forward.body if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))]
    if len(body) < 3 or not isinstance(body[0], ast.Assign) or len(body[0].targets) != 1:
        return False
    target = body[0].targets[0]
    last = body[-1]
    if not (isinstance(target, ast.Name) and isinstance(last, ast.Return) and _is_name(last.value, target.id)):
        return False
    for stmt in body[1:-1]:
        if not isinstance(stmt, ast.If) or stmt.orelse:
            return False
        if not all(isinstance(inner, ast.Assign) and all(isinstance(t, ast.Name) for t in inner.targets)
                   for inner in stmt.body):
            return False  # only local names are bound there: no return, no member changed
        if not any(isinstance(inner, ast.Assign) and any(_is_name(t, target.id) for t in inner.targets)
                   for inner in stmt.body):
            return False
    alone = copy.copy(forward)
    alone.body = [ast.Return(value=body[0].value)]
    return _computes_base(alone, layer, names)


# Layers whose computation a subclass's forward may start with, and the function computing it
# on the layer's own parameters: (function, index of the weight argument, of the bias argument).
FIRST_STEPS = {"torch.nn.BatchNorm2d": ("torch.nn.functional.batch_norm", 3, 4)}


def _starts_with_base(forward, layer: str, names: ModuleNames) -> bool:
    """Does ``forward`` put its input first through the base layer's computation on the layer's
    own parameters (``super().forward(x)``, or ``F.batch_norm(x, ..., self.weight, self.bias,
    ...)`` for a BatchNorm2d, timm's BatchNormAct2d), and read the input nowhere else (its shape
    and dtype aside)?  Its output is then the base layer's output taken further (an activation):
    whatever runs before it runs into that layer."""
    params = [a.arg for a in forward.args.posonlyargs + forward.args.args]
    if len(params) != 2 or forward.args.vararg or forward.args.kwarg or forward.args.kwonlyargs:
        return False
    x = params[1]
    step = FIRST_STEPS.get(layer)
    found = None
    for node in ast_walk(forward):
        if not isinstance(node, ast.Call) or not node.args or not _is_name(strip_casts(node.args[0]), x):
            continue
        func = node.func
        if (isinstance(func, ast.Attribute) and func.attr == "forward" and isinstance(func.value, ast.Call)
                and _is_name(func.value.func, "super") and len(node.args) == 1 and not node.keywords):
            pass
        elif step is not None and names.resolve(func) == step[0]:
            operands = dict(enumerate(node.args))
            keywords = {k.arg: k.value for k in node.keywords}
            weight = operands.get(step[1], keywords.get("weight"))
            bias = operands.get(step[2], keywords.get("bias"))
            if not (weight is not None and _is_own(weight, "weight") and bias is not None and _is_own(bias, "bias")):
                continue
        else:
            continue
        if found is not None:
            return False
        found = node
    if found is None:
        return False
    first = strip_casts(found.args[0])
    for stmt in forward.body:  # before the step, and in it, the input is read for its shape only
        metadata = {id(n.value) for n in ast_walk(stmt) if isinstance(n, ast.Attribute) and n.attr in TENSOR_METADATA}
        if any(_is_name(n, x) and isinstance(n.ctx, ast.Load) and n is not first and id(n) not in metadata
               for n in ast_walk(stmt)):
            return False
        if any(n is found for n in ast_walk(stmt)):
            # ``x = step(x)``: later reads are of its output (else the input must not be read again)
            return (isinstance(stmt, ast.Assign) and stmt.value is found and len(stmt.targets) == 1
                    and _is_name(stmt.targets[0], x))
    return False


def _kwargs_only_read(func: ast.AST, name: str) -> bool:
    """Does ``func`` leave its ``**name`` dict as the call made it: every use of the name a read
    (``name.get(key, d)``, ``name.pop(key, d)``, ``name[key]``, ``key in name``, ``**name``
    passed on)?  A store (``name["norm_layer"] = ...``), another method (``update``,
    ``setdefault``), a rebinding or the dict handed to other code may change what a later
    ``name.get(key, default)`` returns: then no read takes the default (_kwargs_read)."""
    for node in ast_walk(func):
        for child in ast.iter_child_nodes(node):
            if child.__class__ is ast.Name and child.id == name and not _reads_kwargs(node, child):
                return False
    return True


def _reads_kwargs(parent: ast.AST, use: ast.Name) -> bool:
    """Is ``use`` (a name of the ``**kwargs`` dict, a child of ``parent``) only read there?"""
    if use.ctx.__class__ is not ast.Load:
        return False
    kind = parent.__class__
    if kind is ast.Attribute:
        return parent.attr in _KWARGS_READS
    if kind is ast.keyword:
        return parent.arg is None  # f(**kwargs): a copy
    if kind is ast.Subscript:
        return parent.value is use and parent.ctx.__class__ is ast.Load
    if kind is ast.Compare:
        return use in parent.comparators and all(op.__class__ in (ast.In, ast.NotIn) for op in parent.ops)
    return False


def _none_default(param: _Param) -> bool:
    """Is the parameter's default the constant ``None`` (no value of its own)?"""
    default = _default_of(param)
    return default.__class__ is ast.Constant and default.value is None


def _run_time_class(key: ast.JoinedStr, env: dict) -> str | None:
    """``f"Conv{n_dims}d"`` / ``f"BatchNorm{n_dims}d"`` with ``n_dims`` a required parameter of
    the function building the layer: its family's 2-d class, standing for a dimension known
    where the model is built, when every run-time dimension that function gives a convolution
    or a BatchNorm is that one parameter (run_time_dims); None otherwise."""
    name = run_time_family(key)
    held = env.get(name) if name is not None else None
    if not isinstance(held, _Param) or held.item is not None or _default_of(held) is not None \
            or not shares_one_dimension(held.func, name):
        return None
    return key.values[0].value + "2d"


def _default_of(param: "_Param") -> ast.expr | None:
    """The default expression of a function parameter (None: it has none)."""
    args = param.func.args
    positional = args.posonlyargs + args.args
    defaults = [None] * (len(positional) - len(args.defaults)) + list(args.defaults)
    for arg, default in list(zip(positional, defaults)) + list(zip(args.kwonlyargs, args.kw_defaults)):
        if arg.arg == param.name:
            return default
    return None


# transformers.activations' module-level activations, each built there as ``get_activation(key)``
# (the ACT2FN entry of that key): the name held as a value is that table entry
ACTIVATION_INSTANCES = {"gelu": "gelu", "gelu_new": "gelu_new", "gelu_fast": "gelu_fast", "quick_gelu": "quick_gelu",
                        "silu": "silu", "mish": "mish", "linear_act": "linear"}


def _activation_instance(fqn: str, expr: ast.expr) -> tuple:
    """``gelu_new`` imported from transformers' activations and held as a value (an entry of a
    same-file table ``{"gelu": gelu_new, ...}``): ``ACT2FN["gelu_new"]``, the object it is."""
    last = fqn.rsplit(".", 1)[-1]
    key = ACTIVATION_INSTANCES.get(last)
    if key is None or not names_match("transformers.activations." + last, fqn):
        return ()
    return (Built("transformers.activations.ACT2FN", (ast.copy_location(ast.Constant(key), expr),), (), True, expr),)


def _literal_choices(expr: ast.IfExp) -> tuple | None:
    """The strings ``"a" if c else "b"`` (nested alike) can be, sorted; None when a branch is
    anything but a string literal or a choice of them."""
    keys = set()
    todo = [expr]
    while todo:
        node = todo.pop()
        if isinstance(node, ast.IfExp):
            todo += (node.body, node.orelse)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            keys.add(node.value)
        else:
            return None
    return tuple(sorted(keys))


def _lambda_params(expr: ast.Lambda) -> list:
    args = expr.args
    return [*args.posonlyargs, *args.args, *args.kwonlyargs, *filter(None, (args.vararg, args.kwarg))]


def _which_output(prefix: str) -> str:
    return "output" if prefix == OUTPUT_OF else "first output (of the tuple it returns)"


def _returned_value(forward, first=None) -> ast.expr | None:
    """The expression ``forward`` returns on its only way out: ``return <expr>`` as its last
    statement, or ``return x`` after a last ``x = <expr>`` that no statement between reads or
    changes (None when there is no such single value).  ``first`` (a test of the value): the
    first element of a returned tuple literal of two or more (no starred element), found the
    same way, when it passes the test."""
    body = forward.body
    if body and body[-1].__class__ is ast.Try:
        # ``try: ...; return x`` whose every handler ends in ``raise`` (logs, then re-raises):
        # the try's body is the only way out (tabular-transformers' feed-forward, research33)
        last = body[-1]
        if last.orelse or last.finalbody or not last.handlers or not all(
                h.body and h.body[-1].__class__ is ast.Raise for h in last.handlers):
            return None
        body = body[:-1] + last.body
    if not body or not isinstance(body[-1], ast.Return) or body[-1].value is None:
        return None
    value = body[-1].value
    stop = len(body) - 1
    if first:
        if value.__class__ is ast.Name:
            # ``outputs = (a,) + rest; return outputs``: the container a name holds
            held = _bound_before(body, stop, value.id)
            if held is None:
                return None
            value, stop = held
        if value.__class__ is ast.BinOp and value.op.__class__ is ast.Add \
                and value.left.__class__ in (ast.Tuple, ast.List) and value.left.elts:
            # ``[a] + attn_outputs[1:]``, ``(a,) + outputs``: a sequence whose first element is
            # ``a`` (what is added after it comes after it)
            elts = value.left.elts
        elif isinstance(value, ast.Tuple) and len(value.elts) >= 2:
            elts = value.elts
        else:
            return None
        if any(isinstance(e, ast.Starred) for e in elts):
            return None
        value = elts[0]
    if isinstance(value, ast.Name):
        for stmt in reversed(body[:stop]):
            if (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name)
                    and stmt.targets[0].id == value.id):
                value = stmt.value
                break
            if any(isinstance(node, ast.Name) and node.id == value.id for node in walk(stmt)) \
                    and not _reads_metadata_only(stmt, value.id):
                return None
        else:
            return None
    if not isinstance(value, ast.Call) or not isinstance(value.func, ast.Attribute):
        return None  # self.layer(...), F.conv2d(...): checked before walking the whole forward
    if first is not None and not first(value):
        return None
    if _count_returns(forward.body) != 1:
        return None
    return value


# Attributes of a tensor that describe it without reading its values.
_METADATA = frozenset({"shape", "dtype", "device", "ndim", "size", "dim"})


def _bound_before(body: list, stop: int, name: str) -> tuple | None:
    """(value, index) of the last ``name = <value>`` among ``body[:stop]`` when the value is a
    tuple, or a tuple or list literal plus more (``[a] + rest``), no statement after it reading
    or changing ``name`` (metadata reads aside); None otherwise."""
    for index in range(stop - 1, -1, -1):
        stmt = body[index]
        if (stmt.__class__ is ast.Assign and len(stmt.targets) == 1 and stmt.targets[0].__class__ is ast.Name
                and stmt.targets[0].id == name):
            value = stmt.value
            if not (value.__class__ is ast.Tuple or value.__class__ is ast.BinOp and value.op.__class__ is ast.Add
                    and value.left.__class__ in (ast.Tuple, ast.List)):
                return None  # (checked before the statements between are walked)
            for between in body[index + 1:stop]:
                if any(node.__class__ is ast.Name and node.id == name for node in walk(between)) \
                        and not _reads_metadata_only(between, name):
                    return None
            return value, index
    return None


def _reads_metadata_only(stmt: ast.stmt, name: str) -> bool:
    """Is ``stmt`` an expression statement (a logging call, a print) that reads ``name`` only
    through its metadata (``f"{x.shape}"``, ``x.size()``, ``x.dtype``)?  Such a line neither
    changes the tensor nor needs its values, so the value returned after it is still the one
    assigned before it."""
    if stmt.__class__ is not ast.Expr:
        return False
    described = {id(node.value) for node in walk(stmt) if node.__class__ is ast.Attribute
                 and node.attr in _METADATA and node.value.__class__ is ast.Name and node.value.id == name}
    return all(id(node) in described for node in walk(stmt) if node.__class__ is ast.Name and node.id == name)


def _lambda_returned(cls: ast.ClassDef, forward) -> ast.Call | None:
    """The body of the lambda that ``forward`` returns a call of on every way out: each
    ``return`` is ``self.<attr>(<input>, ...)`` of one attribute that ``__init__`` binds once,
    to ``lambda <p>, ...: <call>(<p>, ...)`` (a TF-ported convolution's ``self.forward_func``),
    with no input reading the module's own weight or bias.  None otherwise (a method, another
    binding, a path returning something else)."""
    last = forward.body[-1] if forward.body else None
    if last.__class__ is not ast.Return or last.value.__class__ is not ast.Call:
        return None
    func = last.value.func
    if not (func.__class__ is ast.Attribute and func.value.__class__ is ast.Name and func.value.id == "self"):
        return None
    attr = func.attr
    if attr in _methods(cls):
        return None
    init = next((item for item in cls.body if isinstance(item, ast.FunctionDef) and item.name == "__init__"), None)
    if init is None:
        return None
    bound = [node for node in walk(init) if isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign))
             and any(_is_own(t, attr) for t in (node.targets if isinstance(node, ast.Assign) else [node.target]))]
    if len(bound) != 1 or not isinstance(bound[0], ast.Assign) or not isinstance(bound[0].value, ast.Lambda):
        return None
    lam = bound[0].value
    params = lam.args.posonlyargs + lam.args.args
    body = lam.body
    if not (params and isinstance(body, ast.Call) and body.args and isinstance(body.args[0], ast.Name)
            and body.args[0].id == params[0].arg):
        return None
    returns = [node for node in walk(forward) if isinstance(node, ast.Return)]
    if len(returns) != _count_returns(forward.body):
        return None  # (a nested function's return)
    for ret in returns:
        call = ret.value
        if not (isinstance(call, ast.Call) and _is_own(call.func, attr) and call.args
                and not any(isinstance(a, ast.Starred) for a in call.args)):
            return None
        if any(_is_own(n, "weight") or _is_own(n, "bias") for n in walk(call)):
            return None
    return body


def _functional_dropout_output(value: ast.Call, names) -> bool:
    """True for ``F.dropout(x, p, training=t)`` (``training`` given by keyword or as the third
    argument, and not the literal False): the element-wise dropout a Hugging Face feed-forward
    module ends in (``hidden_states = nn.functional.dropout(h, p=self.dropout,
    training=self.training); return hidden_states``), the functional twin of an output Dropout
    attribute, as ADP005's functional forms require ``training`` too."""
    if names.resolve(value.func) != "torch.nn.functional.dropout" or not value.args:
        return False
    training = value.args[2] if len(value.args) > 2 else next(
        (k.value for k in value.keywords if k.arg == "training"), None)
    return training is not None and not (isinstance(training, ast.Constant) and training.value is False)


def _count_returns(body) -> int:
    """How many ``return`` statements (bare ones too) a function body has, nested defs aside."""
    count = 0
    for stmt in body:
        if isinstance(stmt, ast.Return):
            count += 1
        elif not isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.expr, ast.Expr,
                                   ast.Assign, ast.AugAssign, ast.AnnAssign)):
            for name in ("body", "orelse", "finalbody"):
                count += _count_returns(getattr(stmt, name, None) or [])
            for handler in getattr(stmt, "handlers", None) or []:
                count += _count_returns(handler.body)
            for case in getattr(stmt, "cases", None) or []:
                count += _count_returns(case.body)
    return count


def _matmul_linear(forward, layer: str) -> bool:
    """Is ``forward`` a Linear's computation written out on the layer's own parameters:
    ``x @ self.weight.T`` plus ``self.bias`` (``return x @ self.weight.T + self.bias``, or
    Falcon's ``h = x @ self.weight.T; if self.bias is None: return h; return h + self.bias``)?"""
    if layer != "torch.nn.Linear":
        return False
    params = [a.arg for a in forward.args.posonlyargs + forward.args.args]
    if len(params) != 2 or forward.args.vararg or forward.args.kwarg or forward.args.kwonlyargs:
        return False
    x = params[1]
    body = [s for s in forward.body if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))]

    def product(expr) -> bool:  # x @ W^T, W this layer's weight
        expr = strip_casts(expr)
        if not (isinstance(expr, ast.BinOp) and isinstance(expr.op, ast.MatMult)
                and _is_name(strip_casts(expr.left), x)):
            return False
        w = strip_casts(expr.right)
        if isinstance(w, ast.Attribute) and w.attr in ("T", "mT"):
            return _is_own(strip_casts(w.value), "weight")
        if isinstance(w, ast.Call) and isinstance(w.func, ast.Attribute) and not w.keywords:
            dims = [a.value for a in w.args if isinstance(a, ast.Constant)]
            if (w.func.attr == "t" and not w.args) or (
                    w.func.attr == "transpose" and len(dims) == 2 == len(w.args) and sorted(dims) in ([0, 1], [-2, -1])):
                return _is_own(strip_casts(w.func.value), "weight")
        return False

    def biased(expr, h) -> bool:  # h + self.bias, either order
        expr = strip_casts(expr)
        return (isinstance(expr, ast.BinOp) and isinstance(expr.op, ast.Add) and any(
            h(a) and _is_own(strip_casts(b), "bias") for a, b in ((expr.left, expr.right), (expr.right, expr.left))))

    if len(body) == 1 and isinstance(body[0], ast.Return) and body[0].value is not None:
        return biased(body[0].value, product)
    if not (len(body) == 3 and isinstance(body[0], ast.Assign) and len(body[0].targets) == 1
            and isinstance(body[0].targets[0], ast.Name) and product(body[0].value)):
        return False
    name = body[0].targets[0].id
    branch, last = body[1], body[2]
    if not (isinstance(branch, ast.If) and not branch.orelse and len(branch.body) == 1
            and isinstance(branch.body[0], ast.Return) and isinstance(last, ast.Return)
            and branch.body[0].value is not None and last.value is not None):
        return False
    test = branch.test
    if not (isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], (ast.Is, ast.IsNot))
            and _is_own(test.left, "bias") and isinstance(test.comparators[0], ast.Constant)
            and test.comparators[0].value is None):
        return False
    plain, with_bias = (branch.body[0].value, last.value) if isinstance(test.ops[0], ast.Is) else (
        last.value, branch.body[0].value)
    return _is_name(plain, name) and biased(with_bias, lambda e: _is_name(e, name))


#: torch's private base of the BatchNorm classes: a subclass says its input rank in
#: ``_check_input_dim`` (torch.nn.BatchNorm2d checks for 4-D input).
BATCH_NORM_BASE = "torch.nn.modules.batchnorm._BatchNorm"
BATCH_NORM_BASES = frozenset({BATCH_NORM_BASE, "torch.nn.modules.batchnorm._NormBase"})
_RANK_DIMS = {frozenset({2, 3}): 1, frozenset({4}): 2, frozenset({5}): 3}


def _batch_norm_dims(cls: ast.ClassDef) -> int | None:
    """1, 2 or 3 for a ``_BatchNorm`` subclass whose ``_check_input_dim`` raises unless its
    input has the ranks of BatchNorm1d (2 or 3), 2d (4) or 3d (5): ``if input.dim() != 4:
    raise ...`` (comparisons joined by ``and``); None otherwise."""
    method = next((item for item in cls.body if isinstance(item, ast.FunctionDef) and item.name == "_check_input_dim"),
                  None)
    if method is None or len(method.args.args) != 2:
        return None
    x = method.args.args[1].arg
    for stmt in method.body:
        if not (isinstance(stmt, ast.If) and stmt.body and isinstance(stmt.body[0], ast.Raise)):
            continue
        tests = stmt.test.values if isinstance(stmt.test, ast.BoolOp) and isinstance(stmt.test.op, ast.And) \
            else [stmt.test]
        ranks = set()
        for test in tests:
            if not (isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], ast.NotEq)
                    and isinstance(test.left, ast.Call) and isinstance(test.left.func, ast.Attribute)
                    and test.left.func.attr in ("dim", "ndimension") and not test.left.args
                    and _is_name(test.left.func.value, x) and isinstance(test.comparators[0], ast.Constant)
                    and type(test.comparators[0].value) is int):
                return None
            ranks.add(test.comparators[0].value)
        return _RANK_DIMS.get(frozenset(ranks))
    return None


def _rank_free(cls: ast.ClassDef) -> bool:
    """Does the ``_BatchNorm`` subclass override ``_check_input_dim`` with a body that checks
    nothing (``pass``, a docstring): any input rank accepted?"""
    method = next((item for item in cls.body if isinstance(item, ast.FunctionDef) and item.name == "_check_input_dim"),
                  None)
    return method is not None and all(
        isinstance(stmt, ast.Pass) or (isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant))
        for stmt in method.body)


def _base_forward_of(call: ast.Call, x: str) -> bool:
    """Is ``call`` ``super().forward(x)`` (or ``super(Cls, self).forward(x)``): the base
    class's own forward on the input, nothing else passed?"""
    func = call.func
    return (isinstance(func, ast.Attribute) and func.attr == "forward" and isinstance(func.value, ast.Call)
            and _is_name(func.value.func, "super") and not func.value.keywords and len(func.value.args) in (0, 2)
            and len(call.args) == 1 and not call.keywords and _is_name(call.args[0], x))


def _batch_norm_in_eval(forward, names: ModuleNames) -> bool:
    """Does ``forward`` return ``F.batch_norm`` of its input on the module's own running
    statistics, weight and bias whenever ``self.training`` is False?  Its first statement (after
    a docstring) is that return, or an ``if`` whose test is true when not training (read with
    ``self.training`` False and anything else unknown) and whose body starts with it."""
    params = [a.arg for a in forward.args.posonlyargs + forward.args.args]
    if len(params) != 2 or forward.args.vararg or forward.args.kwarg or forward.args.kwonlyargs:
        return False
    body = [s for s in forward.body if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))]
    if not body:
        return False
    first = body[0]
    if isinstance(first, ast.If):
        if _when_not_training(first.test) is not True or not first.body:
            return False
        first = first.body[0]
    if not (isinstance(first, ast.Return) and isinstance(first.value, ast.Call)):
        return False
    if _base_forward_of(first.value, params[1]):
        # ``if not self.training: return super().forward(x)``: _BatchNorm's own forward, which
        # out of training is F.batch_norm on the running statistics
        return True
    if names.resolve(first.value.func) != "torch.nn.functional.batch_norm":
        return False
    call = first.value
    slots = ("input", "running_mean", "running_var", "weight", "bias", "training", "momentum", "eps")
    operands = dict(zip(slots, call.args))
    for keyword in call.keywords:
        if keyword.arg not in slots or keyword.arg in operands:
            return False
        operands[keyword.arg] = keyword.value
    if len(call.args) > len(slots) or not _is_name(operands.get("input"), params[1]):
        return False
    return all(_is_own(operands.get(slot), slot) for slot in ("running_mean", "running_var", "weight", "bias")) \
        and _is_own(operands.get("training"), "training")


def _when_not_training(test: ast.expr):
    """The truth of ``test`` with ``self.training`` False: True, False, or None (unknown)."""
    if _is_own(test, "training"):
        return False
    if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
        value = _when_not_training(test.operand)
        return None if value is None else not value
    if isinstance(test, ast.BoolOp):
        values = [_when_not_training(v) for v in test.values]
        stop = isinstance(test.op, ast.Or)  # or: any True decides; and: any False decides
        if stop in values:
            return stop
        return None if None in values else not stop
    return None


def _of_own_state(expr: ast.expr | None, x: str) -> bool:
    """Does ``expr`` read ``self`` and never the input name ``x`` (a weight the module derives
    from its own parameters, the same for every input)?"""
    if expr is None:
        return False
    reads = {n.id for n in walk(expr) if n.__class__ is ast.Name}
    return "self" in reads and x not in reads


def _is_own(expr: ast.expr, attr: str) -> bool:
    return (isinstance(expr, ast.Attribute) and expr.attr == attr and isinstance(expr.value, ast.Name)
            and expr.value.id == "self")


#: Methods whose definition in an nn.Module subclass replaces how it runs its members: an
#: ``nn.Sequential`` subclass defining one is not typed by its last member, nor re-based.
OWN_CALL = frozenset({"forward", "__call__", "_call_impl"})
# Calls on ``self`` in ``__init__`` that add a member to a Sequential.
_ADDS_MEMBER = frozenset({"add_module", "register_module", "append", "extend", "insert"})


def _closure(func: ast.FunctionDef, env: dict) -> dict:
    """The names' values a function defined in the walked body sees when it runs there: the
    caller's, less those its parameters shadow, and less itself (no recursion)."""
    args = func.args
    params = {a.arg for a in (*args.posonlyargs, *args.args, *args.kwonlyargs)}
    params.update(a.arg for a in (args.vararg, args.kwarg) if a is not None)
    inner = {k: v for k, v in env.items()
             if not (isinstance(k, str) and (k in params or k.rpartition(":")[2] in params))}
    inner.pop(LOCAL_DEF + func.name, None)
    return inner


def _super_forward(func: ast.expr) -> bool:
    """``super().forward`` (also ``super(Cls, self).forward``) as a called function."""
    call = func.value if func.__class__ is ast.Attribute and func.attr == "forward" else None
    args = call.args if call.__class__ is ast.Call else None
    return (args is not None and call.func.__class__ is ast.Name and call.func.id == "super"
            and not call.keywords and not args[2:] and (not args or bool(args[1:])))


def _chain_kind(cls: ast.ClassDef, names: ModuleNames) -> str | None:
    """Is this ``nn.Module`` subclass an ``nn.Sequential`` written by hand: its ``__init__``
    takes the layers as ``*blocks`` ("args") or as one list ``blocks`` ("list"), calls
    ``super().__init__()`` with nothing and holds them as its one member, ``self.<attr> =
    nn.ModuleList(blocks)``; its ``forward(self, x, *args)`` is one loop ``for b in
    self.<attr>: x = b(x)`` (maybe ``b(x, *args)``: a torch layer given more than its input
    raises, so where the chain runs one it gets the running value alone) then ``return x``,
    ``self`` read nowhere else.  Calling it with layers (or a list of them) runs them one after
    the other, as nn.Sequential's constructor would (a-unet's ``Sequential``).  None for any
    other class."""
    methods = _methods(cls)
    init, forward = methods.get("__init__"), methods.get("forward")
    if init is None or forward is None or len(methods) != 2:
        return None
    given = init.args
    if given.posonlyargs or given.kwonlyargs or given.kwarg is not None:
        return None
    if given.vararg is not None and len(given.args) == 1:
        vararg, kind = given.vararg.arg, "args"
    elif given.vararg is None and len(given.args) == 2:
        vararg, kind = given.args[1].arg, "list"
    else:
        return None
    body = [s for s in init.body if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))]
    if len(body) != 2 or _super_init(body[0]) is None or body[0].value.args or body[0].value.keywords:
        return None
    held = body[1]
    if not (isinstance(held, ast.Assign) and len(held.targets) == 1 and isinstance(held.targets[0], ast.Attribute)
            and _is_name(held.targets[0].value, "self") and isinstance(held.value, ast.Call)
            and len(held.value.args) == 1 and not held.value.keywords and _is_name(held.value.args[0], vararg)
            and names.resolve(held.value.func) == MODULE_LIST):
        return None
    attr = held.targets[0].attr
    params = forward.args
    if len(params.args) != 2 or params.kwonlyargs or params.kwarg is not None or params.posonlyargs:
        return None
    running, extra = params.args[1].arg, params.vararg.arg if params.vararg is not None else None
    fbody = [s for s in forward.body if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))]
    if len(fbody) != 2 or not (isinstance(fbody[1], ast.Return) and _is_name(fbody[1].value, running)):
        return None
    loop = fbody[0]
    if not (isinstance(loop, ast.For) and not loop.orelse and isinstance(loop.target, ast.Name)
            and isinstance(loop.iter, ast.Attribute) and loop.iter.attr == attr and _is_name(loop.iter.value, "self")
            and len(loop.body) == 1 and isinstance(loop.body[0], ast.Assign)):
        return None
    step = loop.body[0]
    call = step.value
    if not (len(step.targets) == 1 and _is_name(step.targets[0], running) and isinstance(call, ast.Call)
            and _is_name(call.func, loop.target.id) and not call.keywords and call.args
            and _is_name(call.args[0], running)):
        return None
    rest = call.args[1:]
    if rest and not (extra is not None and len(rest) == 1 and isinstance(rest[0], ast.Starred)
                     and _is_name(rest[0].value, extra)):
        return None
    if sum(1 for node in ast_walk(forward) if isinstance(node, ast.Name) and node.id == "self") != 1:
        return None
    return kind


def _forwards_to_sequential(cls: ast.ClassDef) -> bool:
    """Does the class's ``__init__`` (if it defines one) hand its ``*args`` unchanged to
    ``super().__init__`` and add no member of its own (no ``self.x = ...``, ``add_module``,
    ``append``, ``setattr(self, ...)``)?"""
    init = _methods(cls).get("__init__")
    if init is None:
        return True
    vararg = init.args.vararg
    if vararg is None:
        return False
    handed = False
    for stmt in init.body:
        call = _super_init(stmt)
        if call is not None:
            if (len(call.args) != 1 or call.keywords or not isinstance(call.args[0], ast.Starred)
                    or not _is_name(call.args[0].value, vararg.arg)):
                return False
            handed = True
    if not handed:
        return False
    for node in ast_walk(init):
        if isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Attribute) and _is_name(t.value, "self") for t in targets):
                return False
        elif isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Attribute) and _is_name(func.value, "self") and func.attr in _ADDS_MEMBER:
                return False
            if _is_name(func, "setattr") and node.args and _is_name(node.args[0], "self"):
                return False
        elif isinstance(node, ast.Name) and node.id == vararg.arg and isinstance(node.ctx, ast.Store):
            return False
    return True


def runs_in_order(cls: ast.ClassDef, skips: list | None = None, applier=None) -> bool:
    """Does calling an instance of this ``nn.Sequential`` subclass apply each member, in order,
    to the running value?  True when it defines no ``forward`` (nn.Sequential's), or when its
    ``forward`` is one loop over ``self`` whose body only replaces a value by the member's output
    on it (``for m in self: x = m(x)``; dtype casts around the member's input or output, also in
    the two branches of an ``if``), ``self`` read nowhere else but in the test of an ``if``
    before the loop, as a plain attribute (``if self.stride == 2: x = F.pad(x, ...)``: a value,
    no member run), or calls nn.Sequential's own (``super().forward(x)``) once (or once per
    branch, on one input).  Statements before or after the loop choose what goes in and what
    comes out of the chain, not what runs inside it.

    With ``skips`` (a list the caller reads), the loop may also leave out the members of a
    type (``if not isinstance(m, nn.MaxPool2d): x = m(x)``): the type expressions are added to
    ``skips``, and the caller must not count those members as run (see ``chain_loop``).

    With ``applier`` (``applier(name)``: is ``name`` a function of the class's module that runs
    a torch layer on the running tensor, :mod:`adopter.structure.member_appliers`), the loop's
    step may also be ``x, s = name(m, x, s)``."""
    methods = _methods(cls)
    if (OWN_CALL - {"forward"}) & methods.keys():
        return False
    forward = methods.get("forward")
    if forward is None:
        return True
    supers = [node for node in ast_walk(forward) if isinstance(node, ast.Call) and _is_name(node.func, "super")]
    if supers:
        # nn.Sequential's own forward on one value (``super().forward(x) * 0.5``), self read nowhere
        calls = [node for node in ast_walk(forward) if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                 and node.func.attr == "forward" and node.func.value in supers]
        # (one call, or one per branch on the same input: ``if self.residual: return
        # super().forward(x) + x`` / ``return super().forward(x)``: each runs the whole chain;
        # ``super().forward(x, *args)``: forward's own extra arguments handed on (the chain's
        # torch layers take one input: where they run, those are empty)
        vararg = forward.args.vararg
        if not (len(supers) == len(calls) and all(not c.keywords and (len(c.args) == 1 or (
                len(c.args) == 2 and vararg is not None and isinstance(c.args[1], ast.Starred)
                and _is_name(c.args[1].value, vararg.arg))) for c in calls)):
            return False
        if len(calls) > 1 and not (calls[0].args[0].__class__ is ast.Name
                                   and all(_is_name(c.args[0], calls[0].args[0].id) for c in calls)):
            return False
        # ``super(Cls, self)`` names self only to find the base: not a read of the members
        allowed = set()
        for sup in supers:
            named = sup.args
            explicit = (len(named) == 2 and not sup.keywords and _is_name(named[0], cls.name)
                        and _is_name(named[1], "self"))
            if named and not explicit:
                return False
            if explicit:
                allowed.add(id(named[1]))
        others = [node for node in ast_walk(forward)
                  if isinstance(node, ast.Name) and node.id == "self" and id(node) not in allowed]
        if others:
            # a child the __init__ binds (``self.relu = nn.ReLU()``), called on a value around
            # the chain (``out = super().forward(x); return self.relu(out + x)``): it runs
            # outside nn.Sequential's loop, which runs the members in order all the same
            others = [node for node in others if id(node) not in _own_child_calls(forward, methods.get("__init__"))]
        return not others or not (set(map(id, others)) - _value_reads(forward))
    loops = [s for s in forward.body if isinstance(s, ast.For) and _iterates_self(_enumerated(s.iter))]
    if len(loops) != 1:
        return False
    loop = loops[0]
    selfs = sum(1 for node in ast_walk(forward) if isinstance(node, ast.Name) and node.id == "self")
    if selfs != sum(1 for node in ast_walk(loop.iter) if isinstance(node, ast.Name) and node.id == "self") \
            + _attributes_tested(forward.body[:forward.body.index(loop)]):
        return False
    return chain_loop(loop, skips, applier)


def _own_child_calls(forward: ast.FunctionDef, init) -> set[int]:
    """The ``self`` nodes of ``forward``'s calls ``self.<attr>(...)`` of an attribute that
    ``init`` binds once to a constructed value (``self.relu = nn.ReLU(True)``) and forward never
    assigns: a child module called on a value, not the container changed."""
    if init is None:
        return set()
    bound: dict = {}
    for node in ast_walk(init):
        if node.__class__ is ast.Assign:
            for target in node.targets:
                if target.__class__ is ast.Attribute and _is_name(target.value, "self"):
                    bound[target.attr] = bound.get(target.attr, 0) + (2 if node.value.__class__ is not ast.Call else 1)
        elif node.__class__ in (ast.AugAssign, ast.AnnAssign) and node.target.__class__ is ast.Attribute \
                and _is_name(node.target.value, "self"):
            bound[node.target.attr] = 2
    once = {attr for attr, count in bound.items() if count == 1 and attr not in _ADDS_MEMBER}
    stored = {node.attr for node in ast_walk(forward)
              if node.__class__ is ast.Attribute and node.ctx.__class__ is not ast.Load}
    return {id(node.func.value) for node in ast_walk(forward)
            if node.__class__ is ast.Call and node.func.__class__ is ast.Attribute
            and _is_name(node.func.value, "self") and node.func.attr in once and node.func.attr not in stored}


def _value_reads(forward: ast.FunctionDef) -> set[int]:
    """The ``self`` nodes of ``forward`` that read a plain value, not a member: ``self.training``,
    and ``self.<attr>`` where the forward compares that attribute (``if self.drop_rate > 0``: a
    number, no module) and never calls it (its other reads, ``p=self.drop_rate``, are the same
    value).  A Sequential subclass whose forward runs ``super().forward(x)`` reads such values
    around its chain (a DenseNet layer's dropout after it)."""
    compared, called, reads = set(), set(), []
    for node in ast_walk(forward):
        cls = node.__class__
        if cls is ast.Attribute:
            if node.value.__class__ is ast.Name and node.value.id == "self":
                reads.append(node)
        elif cls is ast.Compare:
            for operand in (node.left, *node.comparators):
                if operand.__class__ is ast.Attribute and _is_name(operand.value, "self"):
                    compared.add(operand.attr)
        elif cls is ast.If or cls is ast.IfExp:
            # ``if self.residual:`` / ``if not self.residual:``: a flag's truth, no member run
            test = node.test.operand if node.test.__class__ is ast.UnaryOp else node.test
            if test.__class__ is ast.Attribute and _is_name(test.value, "self"):
                compared.add(test.attr)
        elif cls is ast.Call and node.func.__class__ is ast.Attribute and _is_name(node.func.value, "self"):
            called.add(node.func.attr)
    return {id(node.value) for node in reads
            if node.attr == "training" or (node.attr in compared and node.attr not in called)}


def _attributes_tested(before: list) -> int:
    """How many times the ``if`` tests among the statements ``before`` read ``self`` as a plain
    attribute's owner (``self.stride`` in ``if self.stride == 2:``), no attribute called: values
    that choose what goes into the chain, no member run."""
    count = 0
    for stmt in before:
        if not isinstance(stmt, ast.If):
            continue
        called = {id(node.func) for node in ast_walk(stmt.test) if isinstance(node, ast.Call)}
        for node in ast_walk(stmt.test):
            if isinstance(node, ast.Attribute) and _is_name(node.value, "self") and id(node) not in called:
                count += 1
    return count


def runs_children(cls: ast.ClassDef, names: ModuleNames) -> ast.Call | None:
    """The ``super().__init__()`` call of a plain ``nn.Module`` subclass whose forward applies
    its children one after the other (``for m in self.children(): x = m(x)``, or over
    ``self._modules.values()``): calling it runs the layers its ``__init__`` registers, in the
    order it registers them, as an ``nn.Sequential`` of them would.  None unless the order is
    read from ``__init__`` alone: its only base is ``nn.Module``, whose ``__init__`` it calls
    first with no argument; it registers no member through a method of its own or ``setattr``
    (``add_module`` and ``register_module`` place members where they are called); it does not
    bind one attribute to two layers; and no ``__call__`` of its own."""
    if len(cls.bases) != 1 or cls.keywords or names.resolve(cls.bases[0]) != "torch.nn.Module":
        return None
    methods = _methods(cls)
    if (OWN_CALL - {"forward"}) & methods.keys():
        return None
    forward, init = methods.get("forward"), methods.get("__init__")
    if forward is None or init is None or not init.body:
        return None
    loops = [s for s in forward.body if isinstance(s, ast.For)]
    if len(loops) != 1 or not _iterates_self(loops[0].iter) or _is_name(loops[0].iter, "self"):
        return None
    selfs = sum(1 for node in ast_walk(forward) if isinstance(node, ast.Name) and node.id == "self")
    if selfs != 1 or not chain_loop(loops[0]):
        return None
    # statements before ``super().__init__()`` (argument checks) may not touch self
    first = None
    for stmt in init.body:
        first = _super_init(stmt)
        if first is not None:
            break
        if any(isinstance(n, ast.Name) and n.id == "self" for n in ast_walk(stmt)):
            return None
    if first is None or first.args or first.keywords:
        return None
    bound: set = set()
    for node in ast_walk(init):
        if isinstance(node, ast.Call):
            func = node.func
            if node is not first and isinstance(func, ast.Attribute) and _is_name(func.value, "self") \
                    and func.attr not in ("add_module", "register_module"):
                return None
            if _is_name(func, "setattr") or _is_name(func, "super") and node is not first.func.value:
                return None
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if isinstance(target, ast.Attribute) and _is_name(target.value, "self"):
                    if isinstance(node, ast.AugAssign):
                        return None
                    if node.value is None or not registers(node.value):
                        continue
                    if target.attr in bound:
                        return None
                    bound.add(target.attr)
                elif not isinstance(target, (ast.Name, ast.Attribute, ast.Subscript)) and any(
                        isinstance(n, ast.Attribute) and _is_name(n.value, "self") for n in ast_walk(target)):
                    return None  # self.a, self.b = ...: not read
    return first


def _added_module(call: ast.Call) -> ast.expr | None:
    """The layer an ``add_module`` / ``register_module`` call hands the container: torch's
    ``(name, module)``, positional or by keyword (scArches' ``add_module(name="L0",
    module=nn.Linear(...))``).  None for any other spelling (``**kwargs``, a missing argument)."""
    args, keywords = call.args, call.keywords
    if not keywords:
        return args[1] if len(args) == 2 else None
    if len(args) + len(keywords) != 2 or (args and args[0].__class__ is ast.Starred):
        return None
    named = {k.arg: k.value for k in keywords}
    if "module" in named and (args or "name" in named):
        return named["module"]
    return None


def _one_call_tuple(value: ast.expr) -> bool:
    """``call(...),`` as an expression statement: a 1-tuple of a call (a stray comma after
    ``self.add_module(name, layer)``, as in old torchvision DenseNets)."""
    return value.__class__ is ast.Tuple and len(value.elts) == 1 and value.elts[0].__class__ is ast.Call


def registers(value: ast.expr) -> bool:
    """Can ``self.x = value`` register a child module?  Not for values that are no module:
    constants (``None`` included), comparisons, boolean and arithmetic expressions, f-strings,
    and list/tuple/dict displays (a plain container registers nothing)."""
    return not isinstance(value, (ast.Constant, ast.Compare, ast.BoolOp, ast.BinOp, ast.UnaryOp, ast.JoinedStr,
                                  ast.List, ast.Tuple, ast.Dict, ast.Set, ast.ListComp, ast.DictComp, ast.SetComp))


def _loop_target(target: ast.expr) -> bool:
    """A loop variable :meth:`LayerTyper._unroll` can stand for each element: one name, or a
    tuple of plain names unpacked from each element (``for a, b, norm, act in blocks:``)."""
    if target.__class__ is ast.Name:
        return True
    return target.__class__ in (ast.Tuple, ast.List) and all(t.__class__ is ast.Name for t in target.elts)


def _holds_each_element(loop: ast.For, name: str, env: dict) -> bool:
    """May :meth:`LayerTyper._unroll` let loop variable ``name`` stand for each element's layer
    (:meth:`LayerTyper._hold_element`)?  Only when the element reaches the body's end as built:
    the list was not changed after it was built (``layers[:] = ...``, ``layers[k] = ...``,
    ``.clear()`` then ``.append``: its items are then other layers), and the body neither binds
    the name again (``layer = nn.Sequential(layer, act)``), nor names the list (it may change it
    while looping), nor leaves an iteration early (``continue``/``break``: what follows may never
    see the element)."""
    listed = loop.iter if loop.iter.__class__ is ast.Name else _enumerated(loop.iter)
    if listed.__class__ is not ast.Name or _changed_list(env, listed.id):
        return False
    for stmt in loop.body:
        for node in ast_walk(stmt):
            cls = node.__class__
            if cls is ast.Continue or cls is ast.Break:
                return False
            if cls is ast.Name:
                if node.ctx.__class__ is not ast.Load and node.id in (name, listed.id):
                    return False  # layer = nn.Sequential(layer, act); del layer
            elif cls is ast.NamedExpr:
                if node.target.id == name:
                    return False
            elif cls is ast.Subscript:
                if node.ctx.__class__ is not ast.Load and _is_name(node.value, listed.id):
                    return False  # layers[k] = ... while looping
            elif cls is ast.Attribute:
                if _is_name(node.value, listed.id) and node.attr not in ("index", "count", "copy"):
                    return False  # layers.append(...), .clear() while looping
    return True


def _changed_list(env: dict, name: str, depth: int = 0) -> bool:
    """Was list ``name`` changed after it was built (an item store, an ``.append``/``.clear()``,
    ``+=``: its ``ITEMS`` entry), here or, for a list a caller passed, where the caller built it?"""
    if ITEMS + name in env:
        return True
    spec = env.get(ELEMENTS + name)
    if spec is None or spec[1] is None or spec[0].__class__ is not ast.Name or depth >= MAX_DEPTH:
        return False
    return _changed_list(spec[1], spec[0].id, depth + 1)


def _counted_list(loop: ast.For) -> str | None:
    """The list name of ``for i, layer in enumerate(layers):`` (two plain names, no ``start``,
    no ``else``): :meth:`LayerTyper._unroll` walks it as ``for layer in layers:``; None for any
    other loop."""
    target, it = loop.target, loop.iter
    if (loop.orelse or target.__class__ is not ast.Tuple or len(target.elts) != 2
            or not all(t.__class__ is ast.Name for t in target.elts)):
        return None
    counted = _enumerated(it)
    return counted.id if counted is not it and counted.__class__ is ast.Name else None


def _list_spec(env: dict, name: str) -> tuple | None:
    """The ``ELEMENTS`` entry of list ``name`` in ``env``: (its literal expression, the names'
    values where it is built).  A list built in ``env`` itself is stored with ``None`` for
    ``env``: the environment holding itself was a reference cycle that kept the syntax tree
    alive until the next cyclic collection (tests/test_engine_gc.py)."""
    spec = env.get(ELEMENTS + name)
    if spec is None or spec[1] is not None:
        return spec
    return spec[0], env


def _is_none(expr: ast.expr) -> bool:
    return isinstance(expr, ast.Constant) and expr.value is None


def _without_none(comp: ast.ListComp | ast.GeneratorExp, env: dict) -> SeqGraph | None:
    """``(m for m in layers if m is not None)`` over a list of layers built in order (pykeen's
    ConvE: ``[nn.BatchNorm2d(c) if bn else None, nn.Dropout(p), nn.Conv2d(...), ...]``): its
    members with the ``None`` entries dropped, an entry ``X if c else None`` kept as one that
    runs on some ways (the ways without it join its neighbours).  None when the comprehension
    does anything else or the list is not known member by member."""
    if len(comp.generators) != 1:
        return None
    gen = comp.generators[0]
    if gen.is_async or not isinstance(gen.target, ast.Name) or not _is_name(comp.elt, gen.target.id) \
            or not isinstance(gen.iter, ast.Name) or not gen.ifs:
        return None
    name = gen.target.id
    for cond in gen.ifs:
        if not (_is_name(cond, name) or (
                isinstance(cond, ast.Compare) and _is_name(cond.left, name) and len(cond.ops) == 1
                and isinstance(cond.ops[0], ast.IsNot) and _is_none(cond.comparators[0]))):
            return None
    listed = env.get("list:" + gen.iter.id)
    if not isinstance(listed, SeqGraph) or listed.named \
            or listed.edges != {(i - 1, i) for i in range(len(listed.members))}:
        return None
    out = SeqGraph()
    for built, expr in listed.members:
        if _is_none(expr):
            continue
        before = set(out.frontier)
        out.add(built, expr)
        if isinstance(expr, ast.IfExp) and (_is_none(expr.orelse) or _is_none(expr.body)):
            out.frontier |= before
    return out


def _enumerated(expr: ast.expr) -> ast.expr:
    """The members ``enumerate(<members>)`` counts (the expression itself otherwise)."""
    if (isinstance(expr, ast.Call) and _is_name(expr.func, "enumerate") and len(expr.args) == 1
            and not expr.keywords):
        return expr.args[0]
    return expr


def _chain_step(body: list, member: str, counted: bool, values: set, skips: list | None, applier=None) -> bool:
    """One step of :func:`chain_loop`'s body (both branches of an ``if``; an ``if not
    isinstance(m, T):`` around it when ``skips`` collects the skipped types), collecting the
    running value's name in ``values``.  A module-level function, not a closure: a nested
    function that calls itself is a reference cycle (function, cell), and through its cell it
    kept the syntax tree alive until the next cyclic collection (tests/test_engine_gc.py)."""
    body = [s for s in body if not isinstance(s, ast.Pass)]
    if len(body) != 1:
        return False
    stmt = body[0]
    if isinstance(stmt, ast.If):
        if not stmt.orelse and skips is not None:
            test = stmt.test
            if (isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not)
                    and isinstance(test.operand, ast.Call) and _is_name(test.operand.func, "isinstance")
                    and len(test.operand.args) == 2 and not test.operand.keywords
                    and _is_name(test.operand.args[0], member)):
                skips.append(test.operand.args[1])
                return _chain_step(stmt.body, member, counted, values, skips, applier)
            return False
        return bool(stmt.orelse) and _chain_step(stmt.body, member, counted, values, skips, applier) \
            and _chain_step(stmt.orelse, member, counted, values, skips, applier)
    if applier is not None and isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 \
            and isinstance(stmt.targets[0], ast.Tuple):
        return _applied_step(stmt, member, values, applier)
    if not (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name)):
        return False
    value = strip_casts(stmt.value)
    if not (isinstance(value, ast.Call) and _is_name(value.func, member) and len(value.args) == 1):
        return False
    arg = value.args[0]
    if counted and isinstance(arg, ast.Starred):
        arg = arg.value  # m(*x): the running value unpacked
    elif value.keywords:
        return False
    if not _is_name(strip_casts(arg), stmt.targets[0].id) or any(k.arg is not None for k in value.keywords):
        return False
    values.add(stmt.targets[0].id)
    return True


def _applied_step(stmt: ast.Assign, member: str, values: set, applier) -> bool:
    """``x, s = step(m, x, s)`` with ``step`` a function ``applier`` accepts: the member runs
    on the running value ``x`` (a torch layer on a tensor), the state ``s`` passes along."""
    target = stmt.targets[0].elts
    call = stmt.value
    if len(target) != 2 or not all(isinstance(t, ast.Name) for t in target) or not isinstance(call, ast.Call) \
            or not isinstance(call.func, ast.Name) or call.keywords or len(call.args) != 3:
        return False
    value, state = target[0].id, target[1].id
    if len({member, value, state}) != 3 or not (_is_name(call.args[0], member) and _is_name(call.args[1], value)
                                                and _is_name(call.args[2], state)):
        return False
    if not applier(call.func.id):
        return False
    values.add(value)
    return True


def chain_loop(loop: ast.stmt, skips: list | None = None, applier=None) -> bool:
    """Is ``loop`` ``for m in <members>: x = m(x)``: its body only replaces one value by the
    member's output on it (dtype casts around the member's input or output allowed, also in
    both branches of an ``if``), so the members run one after the other on the running value?
    With ``skips``, also under an ``if`` with no ``else`` that leaves out the members of a type
    (``if not isinstance(m, T):``): ``T`` is added to ``skips``, those members do not run.

    Also ``for i, m in enumerate(<members>)`` with the member given the running value unpacked
    (``x = m(*x)``, when the chain starts from ``forward(self, *x)``) or extra keywords spread
    (``m(*x, **kwargs)``): a torch layer takes one tensor and no keywords, so where the chain
    runs a torch layer it gets the running value alone, whatever the ``if`` around it tests."""
    if not isinstance(loop, ast.For) or loop.orelse:
        return False
    target = loop.target
    counted = loop.iter is not _enumerated(loop.iter)
    if counted and isinstance(target, ast.Tuple) and len(target.elts) == 2 \
            and all(isinstance(e, ast.Name) for e in target.elts):
        index, target = target.elts
        if index.id == target.id:
            return False
    elif counted or not isinstance(target, ast.Name):
        return False
    member = target.id
    values: set = set()

    return _chain_step(loop.body, member, counted, values, skips, applier) and len(values) == 1 \
        and member not in values


def _iterates_self(expr: ast.expr) -> bool:
    """``self``, ``self.children()``, ``self._modules.values()``: the members in order."""
    if _is_name(expr, "self"):
        return True
    if isinstance(expr, ast.Call) and not expr.args and not expr.keywords and isinstance(expr.func, ast.Attribute):
        owner = expr.func.value
        if expr.func.attr == "children" and _is_name(owner, "self"):
            return True
        return expr.func.attr == "values" and isinstance(owner, ast.Attribute) and owner.attr == "_modules" \
            and _is_name(owner.value, "self")
    return False


def _add_key(env: dict, name: str, key: ast.expr) -> None:
    """A key put into the dict ``name`` holds: known if a string literal, else the keys are not."""
    keys = env.get("dict:" + name)
    if keys is None:
        return
    if isinstance(key, ast.Constant) and isinstance(key.value, str):
        if key.value not in keys:
            env["dict:" + name] = keys + (key.value,)
    else:
        del env["dict:" + name]


def _opaque_arguments(call: ast.Call, caller, name: str, names) -> bool:
    """May ``call`` pass ``name`` where it cannot be read: a starred positional argument, or a
    ``**`` splat other than a name the caller binds once to a literal dict without ``name``
    (audyn's ``**factory_kwargs`` of device and dtype)?"""
    if any(a.__class__ is ast.Starred for a in call.args):
        return True
    return any(kw.arg is None and not (isinstance(caller, ast.FunctionDef) and kw.value.__class__ is ast.Name
                                       and name not in (_splat_keys(caller, kw.value.id, names) or (name,)))
               for kw in call.keywords)


def _splat_keys(func: ast.FunctionDef, name: str, names: ModuleNames) -> tuple | None:
    """The keys of the dict ``name`` that ``func`` binds once to a literal (:func:`_dict_keys`)
    and reads only as ``**name`` in calls (never changed, never handed on): what every such
    splat passes.  None otherwise."""
    keys, splats, loads, bound = None, set(), [], None
    for node in ast_walk(func):
        if node.__class__ is ast.keyword and node.arg is None and node.value.__class__ is ast.Name:
            splats.add(id(node.value))
        elif node.__class__ is ast.Name and node.id == name:
            if node.ctx.__class__ is not ast.Load:
                if node is not bound:
                    return None  # bound elsewhere too: only the one assignment below may bind it
                continue
            loads.append(node)
        elif node.__class__ is ast.Assign and any(t.__class__ is ast.Name and t.id == name for t in node.targets):
            if keys is not None or len(node.targets) != 1:
                return None
            keys, bound = _dict_keys(node.value, names), node.targets[0]
            if keys is None:
                return None
    if keys is None or any(id(n) not in splats for n in loads):
        return None
    return keys


def _dict_keys(value: ast.expr, names: ModuleNames) -> tuple | None:
    """The keys of a dict built here with string keys only (``{"device": d}``, ``dict(device=d)``)."""
    if isinstance(value, ast.Dict):
        if all(isinstance(k, ast.Constant) and isinstance(k.value, str) for k in value.keys):
            return tuple(k.value for k in value.keys)
        return None
    if (isinstance(value, ast.Call) and _is_name(value.func, "dict") and "dict" not in names.imports
            and not value.args and all(k.arg is not None for k in value.keywords)):
        return tuple(k.arg for k in value.keywords)
    return None


def _pair_name(expr: ast.expr, depth: int = 0) -> bool:
    """Is ``expr`` a string a ``(name, layer)`` pair names its layer by: a string literal, an
    f-string, or a string computed from one (``"fc_%d" % i``, ``"fc_" + str(i)``,
    ``"fc_{}".format(i)``, ``str(i)``)."""
    if isinstance(expr, ast.Constant):
        return isinstance(expr.value, str)
    if isinstance(expr, ast.JoinedStr):
        return True
    if depth > 3:
        return False
    if isinstance(expr, ast.BinOp):
        if isinstance(expr.op, ast.Mod):
            return _pair_name(expr.left, depth + 1)
        return isinstance(expr.op, ast.Add) and (_pair_name(expr.left, depth + 1) or _pair_name(expr.right, depth + 1))
    if isinstance(expr, ast.Call) and not expr.keywords:
        func = expr.func
        if isinstance(func, ast.Attribute) and func.attr == "format":
            return _pair_name(func.value, depth + 1)
        return isinstance(func, ast.Name) and func.id == "str" and len(expr.args) == 1
    return False


def _odict_keys(env: dict, odicts: list) -> dict:
    """The keys put into each followed OrderedDict (``odicts``: their ODICT env keys)."""
    out = {}
    for k in odicts:
        key = ODICT_KEYS + k[len(ODICT):]
        if key in env:
            out[key] = env[key]
    return out


def _merge_odict_keys(env: dict, keys_body: dict) -> None:
    """After both branches of an ``if``: an OrderedDict's keys are those either branch put in
    (a key put in on one way only is a repeat if put in again afterwards)."""
    for k, body in keys_body.items():
        current = env.get(k)
        if current is body:
            continue
        if current is not None:
            env[k] = (*current, *(key for key in body if key not in current))


def _cut_odicts(env: dict, sizes: dict) -> None:
    """After an ``if`` (no flag on by default) that put members into a followed OrderedDict:
    the next member follows none, so no pair is read across the ``if`` (what runs before it
    depends on the way taken); pairs put in after it are read as in straight-line code."""
    for k, size in sizes.items():
        graph = env.get(k)
        if isinstance(graph, SeqGraph) and len(graph.members) > size:
            graph.frontier = set()


def _dict_items(value: ast.expr, names: ModuleNames) -> list | None:
    """The (key, value) items of a dict display whose keys are distinct string literals, or of
    ``dict(k=v, ...)`` (the builtin: keywords only), in the order a dict keeps them; None for
    anything else (a computed key or ``**spread`` may put a key anywhere)."""
    if value.__class__ is ast.Dict:
        keys = value.keys
        if not all(k.__class__ is ast.Constant and k.value.__class__ is str for k in keys):
            return None
        items = [(k.value, v) for k, v in zip(keys, value.values)]
    elif (value.__class__ is ast.Call and value.func.__class__ is ast.Name and value.func.id == "dict"
          and not value.args and "dict" not in names.imports and "dict" not in names.functions
          and "dict" not in names.classes and "dict" not in names.constants):
        if any(k.arg is None for k in value.keywords):
            return None
        items = [(k.arg, k.value) for k in value.keywords]
    else:
        return None
    return items if len({k for k, _ in items}) == len(items) else None


def _pair_keys(display: ast.expr) -> tuple | None:
    """The keys of a display of ``(key, layer)`` pairs (``OrderedDict([("conv", ...), ("bn",
    ...)])``) when every element is such a 2-tuple whose key is a string literal and no key
    repeats: the keys the dict holds, in order; None otherwise (a computed key, a spread or a
    repeat could put a later key anywhere)."""
    keys = []
    for elt in display.elts:
        if elt.__class__ is not ast.Tuple or len(elt.elts) != 2:
            return None
        first = elt.elts[0]
        if first.__class__ is not ast.Constant or first.value.__class__ is not str:
            return None
        keys.append(first.value)
    return tuple(keys) if len(set(keys)) == len(keys) else None


def _ordered_dict_values(call: ast.Call, names: ModuleNames | None = None):
    if names is not None and call.args and not call.args[1:] and not call.keywords and (
            call.args[0].__class__ in (ast.Dict, ast.Call)):
        # OrderedDict({"conv": conv, "bn": bn}) / OrderedDict(dict(conv=conv, bn=bn)): its items in order
        for _, value in _dict_items(call.args[0], names) or ():
            yield value
        return
    for kw in call.keywords:
        if kw.arg is not None:
            yield kw.value
    if call.args and isinstance(call.args[0], (ast.List, ast.Tuple)):
        for item in call.args[0].elts:
            if isinstance(item, ast.Tuple) and len(item.elts) == 2:
                yield item.elts[1]


# the statements other than ``if`` whose bodies may hold a return (_decided_returns)
_BLOCKS = frozenset({ast.For, ast.AsyncFor, ast.While, ast.With, ast.AsyncWith, ast.Try,
                     *((ast.TryStar,) if hasattr(ast, "TryStar") else ())})


def _any_return(stmt) -> bool:
    """Does ``stmt`` hold a ``return`` (not in a nested definition)?"""
    return next(_returns([stmt]), None) is not None


def _returns(body):
    for stmt in body:
        if isinstance(stmt, ast.Return) and stmt.value is not None:
            yield stmt
        elif isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            continue
        else:
            for name in ("body", "orelse", "finalbody"):
                yield from _returns(getattr(stmt, name, None) or [])
            for handler in getattr(stmt, "handlers", None) or []:
                yield from _returns(handler.body)


def _constant_index(expr) -> int | None:
    """The integer a subscript's index is written as (``0``, ``-1``), else None."""
    if isinstance(expr, ast.UnaryOp) and isinstance(expr.op, ast.USub):
        inner = _constant_index(expr.operand)
        return None if inner is None else -inner
    if isinstance(expr, ast.Constant) and type(expr.value) is int:
        return expr.value
    return None


def _literal_flag(expr) -> tuple | None:
    """(value,) for a literal ``True``, ``False`` or ``None``; None for anything else."""
    if isinstance(expr, ast.Constant) and (expr.value is None or isinstance(expr.value, bool)):
        return (expr.value,)
    return None


def _binds_all(call: ast.Call) -> bool:
    """Does the call say what every parameter gets (no ``*args`` / ``**kwargs`` spread)?  Then a
    parameter it does not pass holds its default."""
    return not any(isinstance(a, ast.Starred) for a in call.args) and all(k.arg is not None for k in call.keywords)


def _writes_attr_once(tree: ast.AST, attr: str) -> bool:
    """Does ``tree`` write an attribute named ``attr`` at one place only (``self.<attr> = ...``
    in ``__init__``): no other ``.<attr> =`` / ``del``, no ``setattr(..., "<attr>", ...)``?"""
    writes = 0
    for node in ast_walk(tree):
        cls = node.__class__
        if cls is ast.Attribute and node.attr == attr and node.ctx.__class__ is not ast.Load:
            writes += 1
        elif cls is ast.Call and node.func.__class__ is ast.Name and node.func.id == "setattr" \
                and len(node.args) > 1 and node.args[1].__class__ is ast.Constant and node.args[1].value == attr:
            return False
    return writes == 1


def _binds_param(func, name: str) -> bool:
    """Is ``name`` a parameter of ``func``?"""
    a = func.args
    return any(p is not None and p.arg == name
               for p in (*a.posonlyargs, *a.args, *a.kwonlyargs, a.vararg, a.kwarg))


def _local_dict(func, value: ast.expr) -> dict | None:
    """``value`` a name that ``func`` binds once, to a dict literal whose keys are all strings,
    and reads nowhere but as a ``**`` argument (so nothing adds a key): its key -> value node;
    None otherwise."""
    if value.__class__ is not ast.Name or func.__class__ not in (ast.FunctionDef, ast.AsyncFunctionDef) \
            or _binds_param(func, value.id):
        return None
    name = value.id
    bound = None
    spread = set()
    for node in ast_walk(func):
        kind = node.__class__
        if kind is ast.Assign:
            if any(t.__class__ is ast.Name and t.id == name for t in node.targets):
                if bound is not None or len(node.targets) != 1:
                    return None
                bound = node.value
        elif kind is ast.keyword:
            if node.arg is None and node.value.__class__ is ast.Name and node.value.id == name:
                spread.add(id(node.value))
        elif kind in (ast.Global, ast.Nonlocal):
            if name in node.names:
                return None
    if bound is None or bound.__class__ is not ast.Dict:
        return None
    stores = 0
    for node in ast_walk(func):
        if node.__class__ is ast.Name and node.id == name:
            ctx = node.ctx.__class__
            if ctx is ast.Store:
                stores += 1
            elif ctx is ast.Del or id(node) not in spread:
                return None
    if stores != 1:
        return None
    keys = {}
    for k, v in zip(bound.keys, bound.values):
        if k is None or k.__class__ is not ast.Constant or not isinstance(k.value, str):
            return None
        keys[k.value] = v
    return keys


def _rebinds(func, name: str) -> bool:
    """Is ``name`` assigned, deleted or declared global/nonlocal anywhere in ``func``'s body?"""
    for node in ast_walk(func):
        if isinstance(node, ast.Name) and node.id == name and isinstance(node.ctx, (ast.Store, ast.Del)):
            return True
        if isinstance(node, (ast.Global, ast.Nonlocal)) and name in node.names:
            return True
    return False


def _may_be(value: ast.AST, name: str) -> bool:
    """Is ``value`` the bare name ``name``, or a choice that may be it: a conditional expression
    one of whose arms may be it (``A if c else B``, nested), or a dict literal looked up at once
    one of whose values may be (``{18: Basic, 50: Bottleneck}[depth]``)?"""
    while value.__class__ is ast.IfExp:
        if _may_be(value.body, name):
            return True
        value = value.orelse
    if value.__class__ is ast.Subscript and value.value.__class__ is ast.Dict:
        return any(v is not None and _may_be(v, name) for v in value.value.values)
    return value.__class__ is ast.Name and value.id == name


def _aliased(text: str, name: str) -> bool:
    """Does ``text`` write ``name`` as a value a local name may be bound to: right after ``=``
    (not ``==``) or ``else``, right before `` if ``, or as a dict literal's value (after ``:``,
    before ``,`` or ``}``)?  A text test for the aliases of
    :meth:`LayerTyper._calls_through_params`."""
    for start, end in _whole_word(text, name, ("_", "(", ".", "[")):
        before = text[max(0, start - 80):start].rstrip()
        if ((before[-1:] == "=" and before[-2:-1] not in ("=", "!", "<", ">"))
                or before.endswith(" else") or text[end:end + 4] == " if "
                or (before[-1:] == ":" and text[end:end + 8].lstrip()[:1] in (",", "}"))):
            return True
    return False


def _whole_word(text: str, name: str, right_stops: tuple[str, ...]):
    """The (start, end) of each place ``text`` writes ``name`` as a whole word: no word character
    or ``.`` just before it, no word character or one of ``right_stops`` just after (the text
    tests of :func:`_aliased` and :func:`_handed_over`)."""
    size = len(name)
    start = text.find(name)
    while start >= 0:
        end = start + size
        left = text[start - 1:start]
        right = text[end:end + 1]
        if not (left.isalnum() or left in ("_", ".") or right.isalnum() or right in right_stops):
            yield start, end
        start = text.find(name, end)


def _handed_over(text: str, name: str) -> bool:
    """Does ``text`` write ``name`` as a whole argument (after ``(``, ``,`` or ``=``, before
    ``,`` or ``)``), other than ``super(name, self)`` and ``isinstance(x, name)``?  A text test
    for :meth:`LayerTyper._calls_through_params` (a class handed to a function or class)."""
    for start, end in _whole_word(text, name, ("_",)):
        before = text[max(0, start - 80):start]
        before = before[before.rfind("\n") + 1:].rstrip()
        if (before[-1:] in ("(", ",", "=") and text[end:end + 8].lstrip()[:1] in (",", ")")
                and not before.endswith("super(") and "isinstance(" not in before):
            return True
    return False


def _param_target(call: ast.Call, held: str, owner: str | None, by_name: dict, by_method: dict):
    """(function, its owner, parameter name) that ``call`` passes the name ``held`` for: a
    same-file function or class (its ``__init__``), or ``self.<method>`` of ``owner``; None
    when it passes no such name, or passes it where no parameter can be told."""
    index = None
    keyword = None
    for i, arg in enumerate(call.args):
        if isinstance(arg, ast.Starred):
            break
        if isinstance(arg, ast.Name) and arg.id == held:
            index = i
            break
    if index is None:
        for kw in call.keywords:
            if kw.arg is not None and isinstance(kw.value, ast.Name) and kw.value.id == held:
                keyword = kw.arg
                break
        if keyword is None:
            return None
    callee = call.func
    skip = 0
    if isinstance(callee, ast.Name):
        func = by_name.get(callee.id)
        func_owner = None
        if func is None:
            func = by_method.get((callee.id, "__init__"))
            func_owner, skip = callee.id, 1
    elif (isinstance(callee, ast.Attribute) and isinstance(callee.value, ast.Name)
          and callee.value.id == "self" and owner is not None):
        func = by_method.get((owner, callee.attr))
        func_owner, skip = owner, 1
    else:
        return None
    if func is None:
        return None
    params = [*func.args.posonlyargs, *func.args.args]
    if keyword is not None:
        if keyword in {a.arg for a in params[len(func.args.posonlyargs):]} or keyword in {
                a.arg for a in func.args.kwonlyargs}:
            return func, func_owner, keyword
        return None
    position = index + skip
    if position < len(params):
        return func, func_owner, params[position].arg
    return None


def _constant_passed(passed: ast.expr, env: dict) -> tuple | None:
    """(the int or str constant an argument is where the call runs, the (function, parameter)
    pairs that must not rebind it for that to hold): a literal, a parameter of the calling
    function with such a default (the value ``getattr(nn, f"Conv{nd}d")`` reads there,
    LayerTyper._param_constant), or a name the caller's own call fixed so; else None."""
    checks = ()
    if passed.__class__ is ast.Constant:
        value = passed.value
    else:
        held = env.get(passed.id)
        if held.__class__ is _Param:
            default = _default_of(held)
            value = default.value if default.__class__ is ast.Constant else None
        elif held is None and CONSTANT + passed.id in env:
            value, checks = env[CONSTANT + passed.id]
        else:
            return None
    return (value, checks) if isinstance(value, (int, str)) and not isinstance(value, bool) else None


def _foreign_int(arg: ast.expr, env: dict) -> ast.Constant | None:
    """An argument of a call of a sibling module's function that is an int where the call runs
    (:func:`_constant_passed`: a literal, or the caller's parameter at its int default, never
    rebound on the way), as the literal the sibling's walk then reads: ``Conv =
    get_nd_conv(nd)`` with ``nd=2`` here and ``getattr(nn, "Conv%dd" % dim)`` in the other
    module is Conv2d, as when the factory is in this file (function_env's CONSTANT).  Strings
    are left to the key readings (a string default is a key callers may replace); None else."""
    if arg.__class__ is not ast.Name and arg.__class__ is not ast.Constant:
        return None
    constant = _constant_passed(arg, env)
    if constant is None or constant[0].__class__ is not int or any(_rebinds(f, n) for f, n in constant[1]):
        return None
    return ast.copy_location(ast.Constant(constant[0]), arg)


def _field_default(value: ast.expr | None, names: ModuleNames) -> ast.expr | None:
    """A record field's default: the value written (``norm: type = nn.BatchNorm2d``) or the
    ``default=`` of ``dataclasses.field(...)``; None when it has none."""
    if value.__class__ is ast.Call and names.resolve(value.func) == "dataclasses.field":
        return next((k.value for k in value.keywords if k.arg == "default"), None)
    return value


def _not_init(value: ast.expr | None, names: ModuleNames) -> bool:
    """Is a record field ``dataclasses.field(init=False, ...)``: no parameter of the generated
    constructor, so the positions of the fields after it are one less?"""
    return value.__class__ is ast.Call and names.resolve(value.func) == "dataclasses.field" and any(
        k.arg == "init" and k.value.__class__ is ast.Constant and k.value.value is False for k in value.keywords)


def _param_item(expr: ast.Subscript, env: dict) -> "_Param | None":
    """``layers[i]`` with ``layers`` a parameter not yet read and ``i`` a literal index from the
    front: that parameter, standing for what the callers' lists hold at ``i``
    (:func:`adopter.structure.passed_lists.list_items`); None for any other subscript."""
    if expr.value.__class__ is not ast.Name:
        return None
    param = env.get(expr.value.id)
    index = expr.slice
    if not (param.__class__ is _Param and param.item is None and index.__class__ is ast.Constant
            and index.value.__class__ is int and index.value >= 0):
        return None
    return replace(param, item=index.value, default=())


def _passed(call: ast.Call, index: int, name: str, count, positional: bool) -> ast.expr | None:
    """The argument expression a call passes for a parameter (None: not passed, or unknown)."""
    for kw in call.keywords:
        if kw.arg == name:
            return kw.value
    if positional and index < len(call.args) and not any(isinstance(a, ast.Starred) for a in call.args[:index + 1]):
        return call.args[index]
    return None


def _exported_at(other: LayerTyper, graph: SeqGraph, call: ast.Call, via) -> SeqGraph:
    """A copy of ``graph`` (the members a sibling module's function or block class builds) as
    the calling file sees it: each layer typed by what it computes (``other._export``), with
    none of that module's argument expressions, and placed at ``call`` (where this file's
    finding anchors), ``via`` naming the function it went through."""
    placed = graph.copy()
    members = []
    for built, _ in graph.members:
        out = []
        for value in built:
            value = other._export(value)
            if isinstance(value, Built):
                out.append(Built(value.fqn, (), (), value.table, call, via=via, conditional=value.conditional,
                                 unlike=value.unlike))
        members.append((tuple(out), call))
    placed.members = members
    return placed


def _built_entries(values, lookup: ast.Subscript, conditional: bool) -> list:
    """An instantiating table's entries (LayerTyper._instantiated) as the item read ``lookup``
    builds them: each class built there (a sibling module's with none of its arguments kept,
    as a sibling factory's layers are), anything else dropped."""
    out = []
    for value in values:
        if value.__class__ is LayerClass:
            out.append(Built(value.fqn, () if value.foreign else value.args, () if value.foreign else value.kwargs,
                             False, lookup, unlike=value.unlike, conditional=conditional))
    return out


def _instantiating_class(cls: ast.ClassDef, names) -> bool | None:
    """Does the class ``cls`` derive from ``dict``/``collections.OrderedDict`` alone, with no
    class-level statement but a docstring and its one method ``__getitem__(self, key)`` that
    reads the stored entry (``super().__getitem__(key)``) and returns it called, or, for an
    entry that is a tuple (``cls, kwargs = content if isinstance(content, tuple) else
    (content, {})``), its first item called: True when tuple entries are read as such pairs,
    False when the entry itself is called, None for any other class (it changes what an item
    read gives: not a table)."""
    if len(cls.bases) != 1 or cls.keywords or cls.decorator_list:
        return None
    base = cls.bases[0]
    if not ((base.__class__ is ast.Name and base.id == "dict" and builtin_unbound(names, "dict"))
            or names.resolve(base) == "collections.OrderedDict"):
        return None
    method = None
    for item in cls.body:
        if item.__class__ is ast.Expr and item.value.__class__ is ast.Constant and isinstance(item.value.value, str):
            continue
        if item.__class__ is not ast.FunctionDef or item.name != "__getitem__" or method is not None \
                or item.decorator_list:
            return None
        method = item
    if method is None:
        return None
    return _instantiating_getitem(method)


def _instantiating_getitem(method: ast.FunctionDef) -> bool | None:
    """_instantiating_class's reading of ``__getitem__``'s body (statements in order)."""
    args = method.args
    if len(args.args) != 2 or args.vararg or args.kwarg or args.kwonlyargs or args.posonlyargs:
        return None
    key = args.args[1].arg
    entry = None  # the local holding the stored entry
    first = None  # the local holding a pair's class (or the entry)
    pairs = False
    body = method.body
    if body and body[0].__class__ is ast.Expr and body[0].value.__class__ is ast.Constant:
        body = body[1:]
    for stmt in body[:-1]:
        if stmt.__class__ is not ast.Assign or len(stmt.targets) != 1:
            return None
        target, value = stmt.targets[0], stmt.value
        if entry is None and target.__class__ is ast.Name and _super_item(value, key):
            entry = target.id
        elif entry is not None and first is None and target.__class__ is ast.Tuple and len(target.elts) == 2 \
                and all(t.__class__ is ast.Name for t in target.elts) and _pair_of(value, entry):
            first = target.elts[0].id
            pairs = True
            if target.elts[0].id == entry or target.elts[1].id == entry:
                return None
        else:
            return None
    if not body or body[-1].__class__ is not ast.Return:
        return None
    returned = body[-1].value
    if returned.__class__ is not ast.Call or returned.func.__class__ is not ast.Name or returned.args:
        return None
    called = first if pairs else entry
    if called is None or returned.func.id != called:
        return None
    # ``cls(**kwargs)``: the pair's keyword arguments, else no argument
    if any(k.arg is not None for k in returned.keywords) or (returned.keywords and not pairs):
        return None
    return pairs


def _super_item(value: ast.expr, key: str) -> bool:
    """Is ``value`` ``super().__getitem__(key)``?"""
    return (value.__class__ is ast.Call and value.func.__class__ is ast.Attribute
            and value.func.attr == "__getitem__" and value.func.value.__class__ is ast.Call
            and _is_name(value.func.value.func, "super") and not value.func.value.args
            and len(value.args) == 1 and not value.keywords and _is_name(value.args[0], key))


def _pair_of(value: ast.expr, entry: str) -> bool:
    """Is ``value`` ``entry if isinstance(entry, tuple) else (entry, {})``?"""
    if value.__class__ is not ast.IfExp or not _is_name(value.body, entry):
        return False
    test, other = value.test, value.orelse
    return (test.__class__ is ast.Call and _is_name(test.func, "isinstance") and len(test.args) == 2
            and _is_name(test.args[0], entry) and _is_name(test.args[1], "tuple")
            and other.__class__ is ast.Tuple and len(other.elts) == 2 and _is_name(other.elts[0], entry)
            and other.elts[1].__class__ is ast.Dict and not other.elts[1].keys)


def _table_lookup(expr: ast.expr, tables: frozenset) -> bool:
    """``table[...]`` with ``table`` one of ``tables``."""
    return expr.__class__ is ast.Subscript and expr.value.__class__ is ast.Name and expr.value.id in tables


# what an assignment's value may be for the name to hold a list of layers (_list_graph)
_LIST_VALUES = frozenset({ast.List, ast.Tuple, ast.BinOp, ast.IfExp, ast.ListComp})


def _drop_instances(node: ast.AST, env: dict) -> bool:
    """Forget the call instance (INSTANCE) of every name ``node`` binds or deletes (a loop
    target, a with's ``as``, an unpacking); False, so that it can stand in an ``elif`` test."""
    for name in ast_walk(node):
        if name.__class__ is ast.Name and name.ctx.__class__ is not ast.Load and INSTANCE + name.id in env:
            del env[INSTANCE + name.id]
    return False


def _slice_graph(graph: SeqGraph, part: ast.Slice) -> SeqGraph:
    """The members ``nn.Sequential(...)[a:b]`` keeps of a container built as ``graph``: those
    in the slice when the members form one chain and the bounds are int literals; else every
    member, none of them known (no pair of the whole container is one of the slice's)."""
    lo, hi = _int_bound(part.lower), _int_bound(part.upper)
    count = len(graph.members)
    chain = part.step is None and lo is not False and hi is not False \
        and graph.edges == {(i - 1, i) for i in range(count)}
    kept = SeqGraph()
    for built, expr in (graph.members[lo:hi] if chain else graph.members):
        kept.add(built if chain else (), expr)
    return kept


def _children_holder(value: ast.expr, generator: bool) -> ast.expr | None:
    """``net`` of ``list(net.children())`` (or of ``net.children()`` itself when ``generator``);
    None for any other expression."""
    if value.__class__ is not ast.Call:
        return None
    if value.func.__class__ is ast.Name and value.func.id == "list" and len(value.args) == 1 \
            and not value.keywords:
        value = value.args[0]
    elif not generator:
        return None
    if value.__class__ is ast.Call and value.func.__class__ is ast.Attribute and value.func.attr == "children" \
            and not value.args and not value.keywords:
        return value.func.value
    return None


def _int_bound(bound: ast.expr | None) -> int | None | bool:
    """A slice bound: None when absent, its int when an int literal (``3``, ``-1``), False else."""
    if bound is None:
        return None
    negative = bound.__class__ is ast.UnaryOp and bound.op.__class__ is ast.USub
    if negative:
        bound = bound.operand
    if bound.__class__ is ast.Constant and bound.value.__class__ is int:
        return -bound.value if negative else bound.value
    return False


def _key(target: ast.expr) -> str | None:
    kind = target.__class__
    if kind is ast.Name:
        return target.id
    if kind is ast.Attribute and target.value.__class__ is ast.Name and target.value.id == "self":
        return "self." + target.attr
    return None


_COPIES = frozenset({"copy.deepcopy", "copy.copy"})


def _same(results) -> bool | None:
    """The one value every result has (None when they differ or there is none)."""
    found = set(results)
    return found.pop() if len(found) == 1 else None


def _unique(values: tuple) -> tuple:
    seen, out = set(), []
    for value in values:
        key = (type(value), value.fqn, id(getattr(value, "node", None)))
        if key not in seen:
            seen.add(key)
            out.append(value)
    return tuple(out)


# ---------------------------------------------------------------------------- LM heads
# The constructor name given (besides their own) to layers that compute logits over the
# vocabulary: rules name it in an init pattern (``$lm = adopter.lm_head(...)``).
LM_HEAD = "adopter.lm_head"
# A same-file module whose forward returns a pair whose first element is an LM head's logits
# (BERT's pre-training heads: the vocabulary logits, then the next-sentence logits).
LM_HEAD_FIRST = "adopter.lm_head_first"
# A same-file module whose forward ends by returning a Linear's output (through heads made of
# heads; plus a bias it holds): its logits' width is that Linear's, whatever it is; a loss that
# flattens them over the model's vocabulary size says they are over the vocabulary.
LINEAR_END = "adopter.linear_head"
LINEAR_END_FIRST = "adopter.linear_head_first"  # ... the first of a returned pair
EMBEDDING = "torch.nn.Embedding"
LINEAR = "torch.nn.Linear"
_IDENTITY = "torch.nn.Identity"
# A literal size below this is a handful of classes (a 2-way head), never a vocabulary.
MIN_LITERAL_VOCABULARY = 1000


def _end_kind(name: str, infos: dict, returned: dict, ends: dict, names: ModuleNames | None = None) -> str | None:
    """LINEAR_END when the same-file module ``name`` returns what a Linear it holds computes
    (also through another such module), LINEAR_END_FIRST when it returns that first in a tuple;
    memoised in ``ends``, ``returned`` caching :func:`_returned_attr`.  Module-level, not a
    closure of :func:`mark_lm_heads`: a nested function that calls itself is a reference cycle
    (function, cell) that kept every class's syntax tree alive until the next cyclic collection
    (tests/test_engine_gc.py)."""
    if name not in ends:
        ends[name] = None  # (a cycle of classes ends nowhere)
        if name not in returned:
            returned[name] = _returned_attr(infos[name], names)
        inner, index = returned[name] or (None, None)
        bound = infos[name].bindings.get(inner, ()) if inner and not inner.endswith("]") else ()
        if index in (None, 0) and any(
                names_match(LINEAR, c.fqn) and not c.table
                or c.fqn in infos and c.fqn != name and _end_kind(c.fqn, infos, returned, ends, names) == LINEAR_END
                for c in bound):
            ends[name] = LINEAR_END if index is None else LINEAR_END_FIRST
    return ends[name]


def mark_lm_heads(infos: dict, names: ModuleNames, tree: ast.Module, text: str | None = None,
                  typer=None) -> None:
    """Bind ``LM_HEAD`` (beside the layer's own constructor) to every attribute that maps
    hidden states to the vocabulary, as the data flow of the file says:

    - an ``nn.Linear`` whose ``out_features`` is the vocabulary: the size an ``nn.Embedding``
      of the file is built with (the same expression, ``self.x`` read as the value ``__init__``
      gave it: ``config.vocab_size`` for both, or the ``vocab`` parameter), or an embedding's
      ``num_embeddings``;
    - a same-file module whose ``forward`` ends by returning the output of such a layer (a
      prediction head: transform, then the decoder Linear), or an ``nn.Sequential`` whose last
      member is one; also such a module that another module of the package defines
      (``self.lm_head = LMHead(cfg)``, ``LMHead`` imported from a sibling module: read there
      through ``typer``'s package, never imported; research134).

    Names are not read: a Linear to ``config.num_labels`` is a vocabulary head only if the
    file embeds tokens with ``config.num_labels`` entries."""
    from .bindings import Ctor  # bindings imports this module

    values: dict = {}

    def own(owner):
        found = values.get(owner)
        if found is None:
            found = values[owner] = _self_values(infos[owner]) if owner in infos else {}
        return found

    sizes = _embedding_sizes(names, tree, own, text, infos)
    linears, others = [], []  # (owner, attr, ctors): Linear layers; local modules and Sequentials
    elements = []  # (owner, attr, ctors): the element bindings (``heads[]``) made of Linears only
    package = getattr(typer, "package", None)
    foreign = []  # (owner, attr, ctors): one constructor, a class another module of the package defines
    for owner, info in infos.items():
        for attr, ctors in info.bindings.items():
            if attr.endswith("]"):
                if attr.endswith("[]") and all(names_match(LINEAR, c.fqn) and not c.table for c in ctors):
                    elements.append((owner, attr, ctors))
                continue
            if any(names_match(LINEAR, c.fqn) and not c.table for c in ctors):
                linears.append((owner, attr, ctors))
            elif any(c.fqn in infos or c.fqn == SEQUENTIAL for c in ctors):
                others.append((owner, attr, ctors))
            elif package is not None and len(ctors) == 1 and not ctors[0].conditional and package.owns(ctors[0].fqn):
                foreign.append((owner, attr, ctors))

    def mark(attr: str, ctors: list, kind: str = LM_HEAD) -> None:
        first = ctors[0]
        ctors.append(Ctor(attr, kind, (), (), False, first.stmt, first.call, first.func, via=first.fqn))

    def linear_head(ctor, owner) -> bool:
        out = dict(ctor.kwargs).get("out_features")
        if out is None and len(ctor.args) >= 2:
            out = ctor.args[1]
        if out.__class__ is ast.Name and owner in infos:
            # a same-file factory's parameter (``def Linear(in_features, out_features): m =
            # nn.Linear(in_features, out_features); return m``): the width the call passes
            out = _factory_argument(out, ctor, infos[owner], names) or out
            if out.__class__ is ast.Name:
                out = _init_local_size(out, infos[owner])
        return out is not None and _is_vocabulary(out, own(owner), sizes, names)

    if sizes or any(isinstance(o, ast.Attribute) and o.attr == "num_embeddings"
                    for _, _, ctors in linears for c in ctors for o in (*c.args[1:2], *dict(c.kwargs).values())):
        for owner, attr, ctors in linears:
            if any(names_match(LINEAR, c.fqn) and not c.table and linear_head(c, owner) for c in ctors):
                mark(attr, ctors)
        for owner, attr, ctors in elements:
            # self.heads[key](h) (a ModuleDict or ModuleList element): a head whichever member
            # runs only when every member is a Linear to a vocabulary
            if all(linear_head(c, owner) for c in ctors):
                mark(attr, ctors)
    returned: dict = {}  # local class -> (attribute whose output its forward returns, tuple index)
    heads: dict = {}  # local class -> LM_HEAD or LM_HEAD_FIRST

    def head_kind(name: str) -> str | None:
        if name not in heads:
            if name not in returned:
                returned[name] = _returned_attr(infos[name], names)
            inner, index = returned[name] or (None, None)
            bound = infos[name].bindings.get(inner, ()) if inner else ()
            if bound and bound[-1].fqn == LM_HEAD and index in (None, 0):
                heads[name] = LM_HEAD if index is None else LM_HEAD_FIRST
        return heads.get(name)

    tied = _tied_heads(infos, names) if others else {}
    given_weight = _weight_given_heads(infos) if others else {}
    for _ in range(MAX_DEPTH + 1):  # heads made of heads: BertOnlyMLMHead -> BertLMPredictionHead
        changed = False
        for owner, attr, ctors in others:
            if ctors[-1].fqn in (LM_HEAD, LM_HEAD_FIRST):
                continue
            kind = None
            for ctor in ctors:
                if ctor.fqn in infos:
                    kind = kind or head_kind(ctor.fqn)
                    if kind is None and ctor.fqn in tied and len(ctors) == 1 \
                            and _given_embedding(infos, owner, attr, tied[ctor.fqn], names):
                        kind = LM_HEAD
                    if kind is None and ctor.fqn in given_weight and len(ctors) == 1 \
                            and _built_with_embedding_weight(infos, owner, ctor, given_weight[ctor.fqn], names):
                        kind = LM_HEAD
                elif ctor.fqn == SEQUENTIAL and sum(not c.fqn.startswith(OUTPUT_OF) for c in ctors) == 1:
                    # (the output its last member gives it, ``adopter.output_of...``, is the same one)
                    info = infos[owner]
                    last = 0
                    while f"{attr}[{last + 1}]" in info.bindings:
                        last += 1
                    member = info.bindings.get(f"{attr}[{last}]", ())
                    # a last member that is (or may be, by a flag: ``Scale(s) if tied else
                    # nn.Identity()``) the identity leaves a path on which the member before it
                    # gives the Sequential's output
                    if last and any(c.fqn == _IDENTITY for c in member):
                        member = info.bindings.get(f"{attr}[{last - 1}]", ())
                    if any(names_match(LINEAR, c.fqn) and not c.table and linear_head(c, owner)
                           or heads.get(c.fqn) == LM_HEAD for c in member):
                        kind = LM_HEAD
            if kind is not None:
                mark(attr, ctors, kind)
                changed = True
        if not changed:
            break
    ends: dict = {}  # local class -> LINEAR_END or LINEAR_END_FIRST

    for owner, attr, ctors in others:
        if ctors[-1].fqn in (LM_HEAD, LM_HEAD_FIRST) or len(ctors) != 1 or ctors[0].fqn not in infos:
            continue
        kind = _end_kind(ctors[0].fqn, infos, returned, ends, names)
        if kind is None and _stacked_linear_end(infos[ctors[0].fqn], names):
            kind = LINEAR_END
        if kind is None and ctors[0].fqn in tied:
            # a head given a weight it multiplies the hidden states by (tied to a weight this
            # file does not show to be a token embedding's): logits as wide as that weight,
            # as a Linear-ending head's are (a loss over the vocabulary says what they are)
            kind = LINEAR_END
        if kind is not None:
            mark(attr, ctors, kind)
    if foreign:
        _mark_sibling_heads(foreign, typer, mark, lambda out, owner: _is_vocabulary(out, own(owner), sizes, names))


def _mark_sibling_heads(foreign: list, typer, mark, vocabulary) -> None:
    """LINEAR_END (or LINEAR_END_FIRST) for each attribute built by a module class that another
    module of the package defines and whose ``forward`` returns what a Linear it holds
    computes, as :func:`_end_kind` reads a same-file one (in its own module, with that module's
    names: held_layers._class_info reads the class there, never imported).  LM_HEAD instead when
    that Linear's width, its constructor's parameters read as the arguments this file passes
    (``LMHead(decoder_config, ...)``, ``nn.Linear(d, decoder_config["vocab_size"])`` there), is
    a size this file embeds tokens with (``vocabulary``: :func:`_is_vocabulary` of the owner)."""
    from .held_layers import _class_info  # (held_layers imports bindings, which imports this module)

    siblings: dict = {}
    for owner, attr, ctors in foreign:
        held, held_infos, held_typer = _class_info(ctors[0].fqn, {}, typer, siblings)
        if held is None or not held.is_module:
            continue
        kind = _end_kind(held.name, held_infos, {}, {}, held_typer.names)
        if kind is None:
            continue
        if kind == LINEAR_END:
            out = _passed_width(held, held_typer.names, ctors[0])
            if out is not None and vocabulary(out, owner):
                kind = LM_HEAD
        mark(attr, ctors, kind)


def _passed_width(held, names: ModuleNames, ctor) -> ast.expr | None:
    """The ``out_features`` of the Linear whose output the held module's ``forward`` returns,
    each parameter of the module's ``__init__`` it reads replaced by the argument ``ctor`` (the
    holding file's construction) passes for it; None where that is not one plain Linear or a
    parameter read is not passed."""
    returned = _returned_attr(held, names)
    if returned is None or returned[1] is not None:
        return None
    bound = held.bindings.get(returned[0], ())
    if len(bound) != 1 or not names_match(LINEAR, bound[0].fqn) or bound[0].table:
        return None
    out = dict(bound[0].kwargs).get("out_features")
    if out is None and len(bound[0].args) >= 2:
        out = bound[0].args[1]
    init = held.methods.get("__init__")
    if out is None or init is None:
        return None
    params = [a.arg for a in (*init.args.posonlyargs, *init.args.args)][1:]
    passed = dict(zip(params, ctor.args))
    passed.update((k, v) for k, v in ctor.kwargs if k in params or k in {a.arg for a in init.args.kwonlyargs})
    missing = []

    class _Passed(ast.NodeTransformer):
        def visit_Name(self, node):
            if node.id in passed:
                return passed[node.id]
            if node.id in params:
                missing.append(node.id)
            return node

    width = _Passed().visit(copy.deepcopy(out))
    return None if missing else width


_STACK_FUNCS = frozenset(("torch.stack",))
_PARAMETER = frozenset(("torch.nn.Parameter", "torch.nn.parameter.Parameter"))


def _stacked_linear_end(info, names: ModuleNames) -> bool:
    """Does the same-file module's ``forward`` return linear maps of its input by a weight it
    holds, one per position, stacked (CSM's codebooks head: ``torch.stack([F.linear(h[:, i, :],
    w[i].T) for i in range(n)], dim=1)``, ``w`` an ``nn.Parameter`` of the module, indexed)?  Each
    element is a Linear's output (the rows of the input times a matrix); stacked on axis 0, or
    on axis 1 of elements of rank 2 or more (the input a subscript keeping two axes), their
    last axis stays last: the module's logits are as wide as that matrix, as a Linear-ending
    head's are (a loss over the vocabulary says what they are)."""
    forward = info.methods.get("forward")
    if forward is None or not info.is_module or len(forward.body) < 2:
        return False
    value = _final_value(forward)
    if value.__class__ is not ast.Call or len(value.args) != 1 or value.func.__class__ is not ast.Attribute \
            or value.func.attr != "stack" or names.resolve(value.func) not in _STACK_FUNCS:
        return False
    dim = value.keywords[0].value if len(value.keywords) == 1 and value.keywords[0].arg == "dim" else None
    if len(value.keywords) > (dim is not None):
        return False
    axis = 0 if dim is None else _int_literal_of(dim)
    if axis not in (0, 1):
        return False
    listed = value.args[0]
    body = forward.body
    if listed.__class__ is ast.Name:  # out = [... for ...]; (out = torch.stack(out, ...);) return out
        bound = [s.value for s in body if s.__class__ is ast.Assign and len(s.targets) == 1
                 and _is_name(s.targets[0], listed.id) and s.value.__class__ is ast.ListComp]
        listed = bound[0] if len(bound) == 1 else None
    if listed.__class__ is not ast.ListComp or len(listed.generators) != 1:
        return False
    elt = listed.elt
    if elt.__class__ is not ast.Call or len(elt.args) != 2 or elt.keywords \
            or names.resolve(elt.func) != "torch.nn.functional.linear":
        return False
    params = {a.arg for a in forward.args.posonlyargs + forward.args.args[1:]}
    hidden, weight = elt.args
    rank2 = hidden.__class__ is ast.Subscript and hidden.slice.__class__ is ast.Tuple \
        and len(hidden.slice.elts) >= 3 and hidden.slice.elts[-1].__class__ is ast.Slice
    while hidden.__class__ is ast.Subscript:
        hidden = hidden.value
    if not (hidden.__class__ is ast.Name and hidden.id in params) or (axis == 1 and not rank2):
        return False
    while True:  # w[i].T, w[i].t(), w.transpose(-1, -2)[i]: the held matrix
        if weight.__class__ is ast.Attribute and weight.attr in ("T", "mT"):
            weight = weight.value
        elif weight.__class__ is ast.Call and weight.func.__class__ is ast.Attribute \
                and weight.func.attr in ("t", "transpose") and not weight.keywords:
            weight = weight.func.value
        elif weight.__class__ is ast.Subscript:
            weight = weight.value
        else:
            break
    if weight.__class__ is ast.Name:  # w = self.weight[idx] in forward, bound once
        bound = [s.value for s in body if s.__class__ is ast.Assign and len(s.targets) == 1
                 and _is_name(s.targets[0], weight.id)]
        weight = bound[0] if len(bound) == 1 else None
        while weight.__class__ is ast.Subscript:
            weight = weight.value
    if not (weight.__class__ is ast.Attribute and weight.value.__class__ is ast.Name and weight.value.id == "self"):
        return False
    init = info.methods.get("__init__")
    held = [s.value for s in ast_walk(init) if s.__class__ is ast.Assign and len(s.targets) == 1
            and _is_own(s.targets[0], weight.attr)] if init is not None else []
    return len(held) == 1 and held[0].__class__ is ast.Call and names.resolve(held[0].func) in _PARAMETER \
        and _count_returns(forward.body) == 1


def _int_literal_of(expr: ast.expr) -> int | None:
    if expr.__class__ is ast.Constant and expr.value.__class__ is int:
        return expr.value
    return None


def _tied_heads(infos: dict, names: ModuleNames) -> dict:
    """Same-file modules whose ``forward`` returns hidden states times the transposed weight of
    a module it is given as an argument (DeBERTa's ``matmul(h, word_embeddings.weight.t()) +
    self.bias``; ``F.linear(h, emb.weight, bias)``), also through a module that passes its own
    argument on to one (``return self.lm_head(h, word_embeddings)``): class -> the position of
    that argument (after ``self``) in its forward's call. Whether the weight is a token
    embedding's is for the caller to show (``_given_embedding``)."""
    found: dict = {}
    for _ in range(MAX_DEPTH + 1):
        changed = False
        for name, info in infos.items():
            forward = info.methods.get("forward")
            if name in found or forward is None or not info.is_module or forward.args.vararg:
                continue
            params = [a.arg for a in forward.args.posonlyargs + forward.args.args][1:]
            if len(params) < 2:
                continue
            value = _final_value(forward)
            if value is None:
                continue
            while isinstance(value, ast.BinOp) and isinstance(value.op, ast.Add):  # + bias
                value = value.left if _weight_of(value.right, params, names) is None else value.right
            index = _weight_of(value, params, names)
            if index is None and value.__class__ is ast.Call and value.func.__class__ is ast.Attribute \
                    and value.func.attr in ("reshape", "view"):
                inner = _rows_restored(forward, params, value)
                index = _weight_of(inner, params, names) if inner is not None else None
            if index is None and isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute) \
                    and _is_own(value.func, value.func.attr):
                inner = [c.fqn for c in info.bindings.get(value.func.attr, ())]
                if len(inner) == 1 and inner[0] in found and found[inner[0]] < len(value.args):
                    passed = value.args[found[inner[0]]]
                    if isinstance(passed, ast.Name) and passed.id in params[1:]:
                        index = params.index(passed.id)
            if index is not None and index > 0 and _count_returns(forward.body) == 1:
                found[name] = index
                changed = True
        if not changed:
            break
    return found


def _rows_restored(forward, params: list, ret: ast.Call) -> ast.expr | None:
    """The product a forward computes on its input's rows flattened and returns with the rows
    grouped back (Perceiver's embedding decoder: ``b, s, d = h.shape``; ``out =
    torch.matmul(h.reshape([-1, d]), emb.weight.transpose(0, 1))``; ``out = out + self.bias``;
    ``return out.reshape([b, s, self.vocab_size])``), or None.  ``h`` is a parameter unpacked
    into three sizes, the product's first operand is ``h`` viewed to ``(-1, d)`` (its rows, the
    last axis whole) and the returned view's first two sizes are ``b`` and ``s``: the product
    has ``b * s`` rows, so the view gives each row back its place and its last axis whole (the
    product's width, whatever the view writes for it, as the element count fixes it).  A bias
    the module holds may be added between (``out + self.bias``, ``out += self.bias``).  What the
    product is (a weight given as an argument) is :func:`_weight_of`'s to say."""
    # the statements before the view back (the return's, or ``h = <view>; return h``'s)
    body = forward.body[:-1] if forward.body[-1].value is ret else forward.body[:-2]
    sizes = ret.args[0].elts if len(ret.args) == 1 and ret.args[0].__class__ in (ast.List, ast.Tuple) else ret.args
    if ret.keywords or len(sizes) != 3 or ret.func.value.__class__ is not ast.Name \
            or sizes[0].__class__ is not ast.Name or sizes[1].__class__ is not ast.Name:
        return None
    out, lead = ret.func.value.id, (sizes[0].id, sizes[1].id)
    hidden = width = None
    for stmt in body:  # b, s, d = h.shape (or h.size()) of a parameter
        if stmt.__class__ is ast.Assign and len(stmt.targets) == 1 and stmt.targets[0].__class__ is ast.Tuple \
                and len(stmt.targets[0].elts) == 3 and all(e.__class__ is ast.Name for e in stmt.targets[0].elts) \
                and tuple(e.id for e in stmt.targets[0].elts[:2]) == lead:
            value = stmt.value
            if value.__class__ is ast.Call and value.func.__class__ is ast.Attribute and value.func.attr == "size" \
                    and not value.args and not value.keywords:
                value = ast.Attribute(value=value.func.value, attr="shape")
            if value.__class__ is ast.Attribute and value.attr == "shape" and value.value.__class__ is ast.Name \
                    and value.value.id in params:
                hidden, width = value.value.id, stmt.targets[0].elts[2].id
    if hidden is None:
        return None
    stores = [n.id for n in walk(forward) if n.__class__ is ast.Name and n.ctx.__class__ is not ast.Load]
    if any(stores.count(name) != (name != hidden) for name in (hidden, width, *lead)):
        return None  # the input or its sizes bound again (only the sizes' unpacking binds them)
    for at in range(len(body) - 1, -1, -1):  # back from the view: the held bias, then the product
        stmt = body[at]
        if stmt.__class__ is ast.AugAssign and _is_name(stmt.target, out) and stmt.op.__class__ is ast.Add \
                and _held(stmt.value):
            continue
        if not (stmt.__class__ is ast.Assign and len(stmt.targets) == 1 and _is_name(stmt.targets[0], out)):
            if any(n.__class__ is ast.Name and n.id == out and n.ctx.__class__ is not ast.Load for n in walk(stmt)):
                return None  # bound otherwise
            continue
        value = stmt.value
        if value.__class__ is ast.BinOp and value.op.__class__ is ast.Add and _is_name(value.left, out) \
                and _held(value.right):
            continue
        product = strip_casts(value)
        if product.__class__ is ast.BinOp and product.op.__class__ is ast.MatMult:
            first = product.left
        elif product.__class__ is ast.Call and len(product.args) == 2:
            first = product.args[0]
        else:
            return None
        first_sizes = first.args[0].elts if first.__class__ is ast.Call and len(first.args) == 1 \
            and first.args[0].__class__ in (ast.List, ast.Tuple) else getattr(first, "args", ())
        if not (first.__class__ is ast.Call and first.func.__class__ is ast.Attribute
                and first.func.attr in ("reshape", "view") and _is_name(first.func.value, hidden)
                and not first.keywords and len(first_sizes) == 2 and int_literal(first_sizes[0]) == -1
                and _is_name(first_sizes[1], width)):
            return None
        return product
    return None


def _assigns_weight(method: ast.AST) -> bool:
    """Does ``method`` hold an assignment ``<something>.weight = ...`` (one target)?  What
    :func:`_weight_given_heads` reads first of every statement it walks: without one, its walk
    finds nothing (treewalk.walk: the same nodes less the ctx/op singletons, in another order)."""
    for stmt in walk(method):
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Attribute) \
                and stmt.targets[0].attr == "weight":
            return True
    return False


def _weight_given_heads(infos: dict) -> dict:
    """Same-file modules whose ``forward`` returns the output of a Linear whose weight is one
    the module is built with (OpenAI GPT's head: ``self.decoder = nn.Linear(...)`` then
    ``self.decoder.weight = embeddings_weights``, in ``__init__`` or in a method ``__init__``
    calls with its parameter): class -> the position of that constructor parameter (after
    ``self``).  Whether the weight is a token embedding's is for the builder to show
    (``_built_with_embedding_weight``)."""
    found: dict = {}
    for name, info in infos.items():
        init = info.methods.get("__init__")
        inner = (_returned_attr(info) or (None, 1))
        if init is None or inner[0] is None or inner[1] is not None \
                or not any(names_match(LINEAR, c.fqn) and not c.table for c in info.bindings.get(inner[0], ())):
            continue
        init_params = [a.arg for a in init.args.posonlyargs + init.args.args][1:]
        for method_name, method in info.methods.items():
            if not _assigns_weight(method):
                continue  # (most methods: the walk below would find nothing to read)
            params = [a.arg for a in method.args.posonlyargs + method.args.args][1:]
            for stmt in ast_walk(method):  # (its order: the last such statement's position is kept)
                if not (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1
                        and isinstance(stmt.targets[0], ast.Attribute) and stmt.targets[0].attr == "weight"
                        and _is_own(stmt.targets[0].value, inner[0])
                        and isinstance(stmt.value, ast.Name) and stmt.value.id in params):
                    continue
                given = stmt.value.id
                if method is not init:  # ``self.set_weights(weights)`` in __init__ hands it on
                    position = params.index(given)
                    passed = {c.args[position].id if position < len(c.args) and isinstance(c.args[position], ast.Name)
                              else None
                              for c in ast_walk(init) if isinstance(c, ast.Call) and _is_own(c.func, method_name)}
                    given = passed.pop() if len(passed) == 1 else None  # every call passes one name
                if given in init_params:
                    found[name] = init_params.index(given)
    return found


def _built_with_embedding_weight(infos: dict, owner: str, ctor, index: int, names: ModuleNames) -> bool:
    """Is ``ctor`` (the owner's constructor call of such a head) given, at ``index``, the
    weight of an ``nn.Embedding`` the owner reaches through its layers
    (``self.transformer.tokens_embed.weight``)?"""
    args = ctor.args
    if index >= len(args) or any(isinstance(a, ast.Starred) for a in args[:index + 1]):
        return False
    arg = args[index]
    return isinstance(arg, ast.Attribute) and arg.attr == "weight" \
        and _reaches_embedding(infos, owner, arg.value, names)


def _weight_of(expr: ast.expr, params: list, names: ModuleNames) -> int | None:
    """The position in ``params`` of ``P`` when ``expr`` is ``matmul(h, P.weight.t())``,
    ``h @ P.weight.T`` (``.mT``, ``.transpose(0, 1)``) or ``F.linear(h, P.weight[, b])``."""
    expr = strip_casts(expr)
    weight = None
    if isinstance(expr, ast.BinOp) and isinstance(expr.op, ast.MatMult):
        weight, transposed = expr.right, True
    elif isinstance(expr, ast.Call) and len(expr.args) >= 2 and not expr.keywords:
        fqn = names.resolve(expr.func)
        if fqn == "torch.matmul" and len(expr.args) == 2:
            weight, transposed = expr.args[1], True
        elif fqn == "torch.nn.functional.linear":
            weight, transposed = expr.args[1], False
    if weight is None:
        return None
    weight = strip_casts(weight)
    if transposed:
        weight = untransposed(weight, names)
        if weight is None:
            return None
    if (isinstance(weight, ast.Attribute) and weight.attr == "weight" and isinstance(weight.value, ast.Name)
            and weight.value.id in params):
        return params.index(weight.value.id)
    return None


def _final_value(forward) -> ast.expr | None:
    """What ``forward``'s last statement returns (``return <expr>``), through a last
    assignment of the returned name (``h = <expr>; return h``); whether it is the only way
    out is for the caller to ask (``_count_returns``), once the value is worth it."""
    body = forward.body
    if not body or not isinstance(body[-1], ast.Return) or body[-1].value is None:
        return None
    value = body[-1].value
    if isinstance(value, ast.Name):
        last = body[-2] if len(body) > 1 else None
        if not (isinstance(last, ast.Assign) and len(last.targets) == 1 and _is_name(last.targets[0], value.id)):
            return None
        value = last.value
    return value


def _given_embedding(infos: dict, owner: str, attr: str, index: int, names: ModuleNames) -> bool:
    """Does every call of ``self.<attr>`` in ``owner``'s methods (at least one) pass, at
    ``index``, an ``nn.Embedding`` the class reaches through its layers
    (``self.deberta.embeddings.word_embeddings``: each step a same-file module's attribute)?"""
    calls = 0
    for method in infos[owner].methods.values():
        for node in ast_walk(method):
            if not (isinstance(node, ast.Call) and _is_own(node.func, attr)):
                continue
            if index >= len(node.args) or not _reaches_embedding(infos, owner, node.args[index], names):
                return False
            calls += 1
    return calls > 0


def _reaches_embedding(infos: dict, owner: str, expr: ast.expr, names: ModuleNames) -> bool:
    path = []
    while isinstance(expr, ast.Attribute):
        path.append(expr.attr)
        expr = expr.value
    if not (isinstance(expr, ast.Name) and expr.id == "self" and path):
        return False
    cls = owner
    for step in reversed(path[1:]):
        # what the attribute's output is (adopter.output_of...) describes the same constructor
        ctors = [c for c in infos[cls].bindings.get(step, ()) if not c.fqn.startswith(OUTPUT_OF)]
        if len(ctors) != 1 or ctors[0].fqn not in infos:
            return False
        cls = ctors[0].fqn
    ctors = infos[cls].bindings.get(path[0], ())
    return bool(ctors) and all(c.fqn == EMBEDDING and not c.table for c in ctors)


def _self_values(info) -> dict:
    """``self.a = <expr>`` statements of ``__init__`` (its top level): attribute -> expr."""
    init = info.methods.get("__init__")
    out: dict = {}
    for stmt in init.body if init is not None else ():
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1:
            key = _key(stmt.targets[0])
            if key is not None and key.startswith("self.") and key[5:] not in out:
                out[key[5:]] = stmt.value
    return out


def _size_text(expr: ast.expr, values: dict, depth: int = 0) -> str:
    """The text of a size expression with ``self.a`` (and ``self.a.b``) read as what
    ``__init__`` assigned to ``self.a``."""
    if isinstance(expr, ast.Attribute) and depth < 3:
        root, attrs = expr, []
        while isinstance(root, ast.Attribute):
            attrs.append(root.attr)
            root = root.value
        if isinstance(root, ast.Name) and root.id == "self" and attrs:
            first = attrs[-1]
            if first in values and not isinstance(values[first], ast.Call):
                base = _size_text(values[first], {}, depth + 1)
                return ".".join([base, *reversed(attrs[:-1])])
    return ast.unparse(expr)


def _init_local_size(name: ast.Name, info) -> ast.expr:
    """The choice a local name of ``__init__`` holds when a Linear's width is given through it,
    bound once there, at its top level, to a conditional expression (Marian's
    ``target_vocab_size = config.vocab_size if shared else config.decoder_vocab_size;
    self.lm_head = nn.Linear(d, target_vocab_size)``); the name itself otherwise (a parameter,
    a name bound twice, any other value)."""
    init = info.methods.get("__init__")
    if init is None:
        return name
    value = None  # (a cheap look at the top level first: a choice there is the only form read)
    for stmt in init.body:  # (class tests by identity: no call per statement)
        if stmt.__class__ is ast.Assign and stmt.targets[0].__class__ is ast.Name \
                and stmt.targets[0].id == name.id and len(stmt.targets) == 1:
            value = stmt.value
    if value.__class__ is not ast.IfExp:
        return name
    bound = bound_once(init, name.id)
    return name if bound is None else bound


def _is_vocabulary(expr: ast.expr, values: dict, sizes: set, names: ModuleNames | None = None) -> bool:
    if expr.__class__ is ast.IfExp:
        # a width chosen between two sizes the file embeds tokens with (the shared vocabulary
        # or the decoder's own): a vocabulary either way
        return _is_vocabulary(expr.body, values, sizes, names) and _is_vocabulary(expr.orelse, values, sizes, names)
    if isinstance(expr, ast.BinOp) and isinstance(expr.op, ast.Sub) and isinstance(expr.right, ast.Constant) \
            and type(expr.right.value) is int and 0 < expr.right.value <= 8:
        # the vocabulary less a few entries the head never predicts (ImageGPT's start-of-sequence
        # token: ``nn.Linear(d, config.vocab_size - 1)`` beside ``nn.Embedding(config.vocab_size, d)``)
        expr = expr.left
    if isinstance(expr, ast.Attribute) and expr.attr == "num_embeddings":
        return True  # the number of entries of an nn.Embedding
    if _size_text(expr, values) in sizes:
        return True
    if expr.__class__ is ast.Attribute and expr.value.__class__ is ast.Attribute \
            and expr.value.value.__class__ is ast.Name and f"{expr.value.value.id}.{expr.attr}" in sizes:
        # the same field of a configuration one level down (``config.text_config.vocab_size``
        # where the file's embeddings, built from that sub-configuration, read
        # ``config.vocab_size``): the head predicts the entries its text model embeds
        return True
    if names is None:
        return False
    if isinstance(expr, ast.Attribute) and isinstance(expr.value, ast.Name) and expr.value.id == "self":
        expr = values.get(expr.attr, expr)  # self.dim_out = default(dim_out, num_tokens)
    return any(_size_text(e, values) in sizes for e in _chosen_arguments(expr, names))


def _returns_given(value: ast.expr | None, given: dict, out: list) -> bool:
    """Is ``value`` a parameter of ``given`` (both choices of a conditional expression)?  Each
    one's passed expression goes to ``out``.  Module-level: a nested function calling itself
    is a reference cycle that kept the syntax tree alive (tests/test_engine_gc.py)."""
    if isinstance(value, ast.IfExp):
        return _returns_given(value.body, given, out) and _returns_given(value.orelse, given, out)
    if isinstance(value, ast.Name) and value.id in given:
        out.append(given[value.id])
        return True
    return False


def _chosen_arguments(expr: ast.expr, names: ModuleNames) -> list:
    """The argument expressions a call of a same-file function may return, when every way out
    of the function returns one of its parameters (``def default(val, d): return val if
    exists(val) else d``); a parameter the call does not pass is its default.  Empty otherwise."""
    if not (isinstance(expr, ast.Call) and isinstance(expr.func, ast.Name) and expr.func.id in names.functions):
        return []
    func = names.functions[expr.func.id]
    args = func.args
    if any(isinstance(a, ast.Starred) for a in expr.args) or any(k.arg is None for k in expr.keywords):
        return []
    positional = args.posonlyargs + args.args
    given = dict(zip([a.arg for a in positional[len(positional) - len(args.defaults):]], args.defaults))
    given.update((a.arg, d) for a, d in zip(args.kwonlyargs, args.kw_defaults) if d is not None)
    given.update((a.arg, v) for a, v in zip(positional, expr.args))
    given.update((k.arg, k.value) for k in expr.keywords)
    out: list = []
    returns = list(_returns(func.body))
    if not returns or not all(_returns_given(r.value, given, out) for r in returns):
        return []
    for node in walk(func):  # the parameters are returned as passed
        if isinstance(node, ast.Name) and node.id in given and isinstance(node.ctx, (ast.Store, ast.Del)):
            return []
    return out


def _factory_argument(name: ast.Name, ctor, info, names: ModuleNames) -> ast.expr | None:
    """What the call of a same-file factory function passes for its parameter ``name``, for a
    layer the factory builds from that parameter (``ctor.via``; the call at ``ctor.call`` in the
    method ``ctor.func`` of ``info``); None when the layer was built otherwise or the argument
    is not written there (a default, a starred argument)."""
    func = names.functions.get(ctor.via) if ctor.via else None
    method = info.methods.get(ctor.func) if func is not None else None
    if method is None:
        return None
    line, col = ctor.call[0], ctor.call[1]
    for node in walk(method):
        if node.__class__ is ast.Call and node.lineno == line and node.col_offset == col:
            return _passed_for(func, name.id, node)
    return None


def _passed_for(func, param: str, call: ast.Call) -> ast.expr | None:
    """The argument ``call`` passes for ``func``'s parameter ``param`` (by position or by
    keyword); None when it passes none (the default) or a starred argument comes first."""
    for i, arg in enumerate((*func.args.posonlyargs, *func.args.args)):
        if arg.arg == param:
            if i < len(call.args) and not any(a.__class__ is ast.Starred for a in call.args[:i + 1]):
                return call.args[i]
            break
    return next((k.value for k in call.keywords if k.arg == param), None)


def _embedding_factories(names: ModuleNames, embeddings: set, near) -> dict:
    """Same-file functions that build an embedding whose size is one of their parameters
    (fairseq's and XLM's ``def Embedding(num_embeddings, embedding_dim, padding_idx): m =
    nn.Embedding(num_embeddings, ...); ...; return m``): function name -> (function, parameter).
    A call of one builds an embedding with the size it passes."""
    found: dict = {}
    for fname, func in names.functions.items():
        if func.__class__ is not ast.FunctionDef or not near(func):
            continue
        params = {a.arg for a in (*func.args.posonlyargs, *func.args.args)}
        for node in walk(func):
            if node.__class__ is ast.Call and names.resolve(node.func) in embeddings:
                size = next((k.value for k in node.keywords if k.arg == "num_embeddings"), None)
                if size is None and node.args:
                    size = node.args[0]
                if size.__class__ is ast.Name and size.id in params:
                    found[fname] = (func, size.id)
                    break
    return found


def _embedding_sizes(names: ModuleNames, tree: ast.Module, own, text: str | None, infos: dict | None = None) -> set:
    """The texts of the sizes (``num_embeddings``) the file builds its embeddings with (only
    the statements on lines that mention an embedding class, or a same-file function building
    one from a parameter, are walked).  A size that is a parameter of the class's ``__init__``
    is also what the file's constructions of the class pass for it (_passed_sizes)."""
    embeddings = {EMBEDDING}
    for name, cls in names.classes.items():  # local subclasses of nn.Embedding, same signature
        if any(names.resolve(b) == EMBEDDING for b in cls.bases):
            embeddings.add(name)
    words = {e.rsplit(".", 1)[-1] for e in embeddings}
    hits = None
    if text is not None:  # the lines that mention one (a regex over the text: a line loop costs more)
        hits = _lines_naming(words, text)
        if not hits:
            return set()
    sizes: set = set()

    def near(node) -> bool:
        if hits is None:
            return True
        at = bisect.bisect_left(hits, node.lineno)
        return at < len(hits) and hits[at] <= (node.end_lineno or node.lineno)

    factories = _embedding_factories(names, embeddings, near)
    if hits is not None and not factories.keys() <= words:  # their calls' lines too
        hits = _lines_naming(words | factories.keys(), text)
    for owner, func in _functions(tree, names):
        if not near(func):
            continue
        for stmt in func.body:
            if not near(stmt):
                continue
            for node in walk(stmt):
                if node.__class__ is not ast.Call:
                    continue
                if names.resolve(node.func) in embeddings:
                    size = next((k.value for k in node.keywords if k.arg == "num_embeddings"), None)
                    if size is None and node.args and not isinstance(node.args[0], ast.Starred):
                        size = node.args[0]
                elif node.func.__class__ is ast.Name and node.func.id in factories:
                    size = _passed_for(*factories[node.func.id], node)
                else:
                    continue
                if size is None:
                    continue
                if isinstance(size, ast.Constant) and not (isinstance(size.value, int)
                                                           and size.value >= MIN_LITERAL_VOCABULARY):
                    continue
                sizes.add(_size_text(size, own(owner) if owner is not None else {}))
                if infos and owner in infos and func.name == "__init__":
                    sizes.update(_passed_sizes(size, func, infos[owner], own))
                if isinstance(size, ast.Name):
                    # n_eos = n + int(eos); nn.Embedding(n_eos, d): the sum, bound once in this function
                    size = bound_once(func, size.id) or size
                if isinstance(size, ast.BinOp) and isinstance(size.op, ast.Add) and _extra_rows(size.right):
                    # num_tokens + int(add_mask_id): the vocabulary and a few special tokens
                    sizes.add(_size_text(size.left, own(owner) if owner is not None else {}))
    return sizes


def _passed_sizes(size: ast.expr, init: ast.FunctionDef, info, own) -> set:
    """The sizes an embedding built in ``__init__`` with one of its parameters has where the
    file constructs the class: the text of what each same-file construction passes for that
    parameter (jukebox's ``nn.Embedding(self.embed_dim, d)``, ``self.embed_dim = embed_dim if
    embed_dim is not None else ...``, built with ``embed_dim=self.encoder_dim``, read as its
    constructor's value ``config.lyric_vocab_size``).  The size is the parameter itself, or
    ``self.x`` that ``__init__`` bound to it or to ``p if p is not None else default``; a
    construction passing nothing for it (the default) or splatting arguments adds nothing."""
    if info.constructions is None:
        return set()
    if size.__class__ is ast.Attribute and size.value.__class__ is ast.Name and size.value.id == "self":
        size = own(info.name).get(size.attr)
        if size.__class__ is ast.IfExp and size.body.__class__ is ast.Name and size.test.__class__ is ast.Compare \
                and size.test.left.__class__ is ast.Name and size.test.left.id == size.body.id \
                and len(size.test.ops) == 1 and size.test.ops[0].__class__ is ast.IsNot \
                and size.test.comparators[0].__class__ is ast.Constant and size.test.comparators[0].value is None:
            size = size.body  # p if p is not None else default: p wherever a construction passes one
    if size.__class__ is not ast.Name:
        return set()
    params = [a.arg for a in init.args.posonlyargs + init.args.args][1:]  # (after self)
    if size.id not in params and size.id not in {a.arg for a in init.args.kwonlyargs}:
        return set()
    out: set = set()
    for call, _, owner in info.constructions():
        passed = passed_argument(init, call, size.id)  # (False: a splat before it, unknown)
        if passed and not (passed.__class__ is ast.Constant and passed.value is None):
            out.add(_size_text(passed, own(owner) if owner is not None else {}))
    return out


def _lines_naming(words: set, text: str) -> list:
    """The (sorted) numbers of the lines of ``text`` where one of ``words`` occurs."""
    hits, line, pos = [], 1, 0
    for found in re.finditer("|".join(sorted(map(re.escape, words))), text):
        line += text.count("\n", pos, found.start())
        pos = found.start()
        if not hits or hits[-1] != line:
            hits.append(line)
    return hits


def bound_once(func, name: str) -> ast.expr | None:
    """The value of the one plain assignment ``name = value`` in ``func`` (None when the name is
    bound otherwise or more than once: a parameter, a loop target, an augmented assignment)."""
    if any(a.arg == name for a in (*func.args.posonlyargs, *func.args.args, *func.args.kwonlyargs)):
        return None
    found = None
    for node in walk(func):
        if isinstance(node, ast.Name) and node.id == name and not isinstance(node.ctx, ast.Load):
            if found is not None:
                return None
            found = node
    if found is None:
        return None
    for node in walk(func):
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and node.targets[0] is found:
            return node.value
    return None


def _extra_rows(expr: ast.expr) -> bool:
    """A handful of rows added to a vocabulary's: a small literal, or ``int(flag)``."""
    if isinstance(expr, ast.Constant):
        return type(expr.value) is int and 0 < expr.value < 16
    return (isinstance(expr, ast.Call) and isinstance(expr.func, ast.Name) and expr.func.id == "int"
            and len(expr.args) == 1 and not expr.keywords)


def _returned_attr(info, names: ModuleNames | None = None) -> tuple | None:
    """(attribute, None) when the class's ``forward`` ends by returning the output of that
    attribute's call (``return self.decoder(h)``, or ``h = self.decoder(h); return h``) and has
    no other way out; (attribute, 0) when it returns a pair whose first element is that.  With
    ``names``, also hidden states times a matrix whose columns are a Linear's outputs (the
    attribute's weight transposed, alone or concatenated along its rows with other matrices:
    :func:`_columns_of`), which gives the same width as the Linear's call; a held bias added
    in place (``h += self.decoder.bias``) is passed over as an added one is."""
    forward = info.methods.get("forward")
    if forward is None or not info.is_module:
        return None
    body = forward.body
    if not body or not isinstance(body[-1], ast.Return) or body[-1].value is None:
        return None
    value, index = body[-1].value, None
    if isinstance(value, ast.Tuple) and len(value.elts) == 2:
        value, index = value.elts[0], 0
    start = len(body) - 2
    while isinstance(value, ast.Name):  # through plain aliases: ``scores = h; return scores``
        name, value = value.id, None
        for at in range(start, -1, -1):
            stmt = body[at]
            if (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name)
                    and stmt.targets[0].id == name):
                value, start = stmt.value, at - 1
                break
            if names is not None and isinstance(stmt, ast.AugAssign) and isinstance(stmt.op, ast.Add) \
                    and isinstance(stmt.target, ast.Name) and stmt.target.id == name and _held(stmt.value):
                continue  # h += self.decoder.bias: a bias the module holds, added
            if isinstance(stmt, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
                targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
                if any(isinstance(n, ast.Name) and n.id == name for t in targets for n in walk(t)):
                    return None  # bound otherwise (unpacked, augmented)
            elif not isinstance(stmt, (ast.Expr, ast.Pass)) and any(
                    isinstance(n, ast.Name) and n.id == name and isinstance(n.ctx, ast.Store) for n in walk(stmt)):
                return None  # rebound under a branch or loop
        if value is None:
            return None
    if isinstance(value, ast.BinOp) and isinstance(value.op, ast.Add):
        # ``self.decoder(h) + self.bias``: the logits plus a bias vector the module holds (ESM's,
        # BERT's output-only bias beside a tied decoder)
        sides = [value.left, value.right]
        held = [isinstance(v, ast.Attribute) and isinstance(v.value, ast.Name) and v.value.id == "self"
                for v in sides]
        value = sides[held.index(False)] if held.count(True) == 1 else value
    columns = _product_columns(value, names) if names is not None else None
    if columns is not None:
        if any(True for stmt in body[:-1] if not isinstance(stmt, (ast.Assign, ast.AnnAssign, ast.AugAssign, ast.Expr))
               for _ in _returns([stmt])):
            return None  # another way out of the forward
        return columns, index
    if not (isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute)
            and isinstance(value.func.value, ast.Name) and value.func.value.id == "self"):
        return None
    if any(True for stmt in body[:-1] if not isinstance(stmt, (ast.Assign, ast.AnnAssign, ast.AugAssign, ast.Expr))
           for _ in _returns([stmt])):
        return None  # another way out of the forward
    return value.func.attr, index


def _held(expr: ast.expr) -> bool:
    """Is ``expr`` an attribute the module holds (``self.bias``, ``self.decoder.bias``): a chain
    of attributes from ``self``, no call?"""
    while isinstance(expr, ast.Attribute):
        expr = expr.value
    return isinstance(expr, ast.Name) and expr.id == "self"


def _product_columns(value: ast.expr, names: ModuleNames) -> str | None:
    """The attribute whose Linear outputs are the columns of ``value``: ``h.matmul(w)``,
    ``h @ w`` or ``torch.matmul(h, w)`` with ``w`` such a matrix (:func:`_columns_of`)."""
    if isinstance(value, ast.BinOp) and isinstance(value.op, ast.MatMult):
        return _columns_of(value.right, names)
    if not (isinstance(value, ast.Call) and not value.keywords):
        return None
    if isinstance(value.func, ast.Attribute) and value.func.attr == "matmul" and len(value.args) == 1 \
            and names.resolve(value.func) is None:
        return _columns_of(value.args[0], names)
    if len(value.args) == 2 and names.resolve(value.func) == "torch.matmul":
        return _columns_of(value.args[1], names)
    return None


def _columns_of(matrix: ast.expr, names: ModuleNames) -> str | None:
    """``A`` when the columns of ``matrix`` are the outputs of the layer ``self.A`` (its weight
    transposed: ``self.A.weight.t()``, ``.T``, ``.transpose(0, 1)``), also when ``matrix``
    concatenates along its rows (``torch.cat([...], dim=0)``) such a transpose with other
    matrices (MobileBERT's decoder weight stacked over a dense weight: more input rows, the
    same output columns); whether ``A`` is a Linear is the caller's."""
    if isinstance(matrix, ast.Call) and names.resolve(matrix.func) == "torch.cat" and matrix.args \
            and isinstance(matrix.args[0], (ast.List, ast.Tuple)):
        dims = [k.value for k in matrix.keywords if k.arg == "dim"] + list(matrix.args[1:2])
        if len(matrix.args) + len(matrix.keywords) != 2 or len(dims) != 1 \
                or not (isinstance(dims[0], ast.Constant) and dims[0].value == 0):
            return None
        found = {_columns_of(elt, names) for elt in matrix.args[0].elts}
        found.discard(None)
        return found.pop() if len(found) == 1 else None
    inner = untransposed(matrix, names)
    if (isinstance(inner, ast.Attribute) and inner.attr == "weight" and isinstance(inner.value, ast.Attribute)
            and isinstance(inner.value.value, ast.Name) and inner.value.value.id == "self"):
        return inner.value.attr
    return None


def _functions_of(tree: ast.AST | None) -> list:
    """The function definitions of ``tree`` in walk order (walked once per tree: a file may
    build many comprehension lists, each looked up in :func:`_function_holding`)."""
    if tree is None:
        return []
    return [f for f in ast_walk(tree) if f.__class__ in (ast.FunctionDef, ast.AsyncFunctionDef)]


def _function_holding(functions: list, node: ast.expr):
    """The innermost of ``functions`` (:func:`_functions_of`) whose lines hold ``node`` (None: none)."""
    found = None
    for func in functions:
        if func.lineno <= node.lineno <= func.end_lineno and (found is None or func.lineno >= found.lineno):
            found = func
    return found


def _read_only_indexed(func: ast.AST, name: str) -> bool:
    """Is every load of ``name`` in ``func`` the value of a subscript or ``len``'s argument?"""
    allowed: set[int] = set()
    reads = []
    for node in ast_walk(func):
        cls = node.__class__
        if cls is ast.Subscript and node.value.__class__ is ast.Name:
            allowed.add(id(node.value))
        elif cls is ast.Call and node.func.__class__ is ast.Name and node.func.id == "len" \
                and len(node.args) == 1 and node.args[0].__class__ is ast.Name:
            allowed.add(id(node.args[0]))
        elif cls is ast.Name and node.id == name and node.ctx.__class__ is ast.Load:
            reads.append(node)
    return all(id(read) in allowed for read in reads)
