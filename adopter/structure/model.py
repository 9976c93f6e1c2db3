"""The model structure of a file: per class, its bindings and one flow per root method.

A root is ``forward``, or any method (module-level function) that no other method (function)
of the same class (file) calls: the others are inlined where they are called, so their nodes
are matched in their caller's context and need no graph of their own.

Only code that a ``forward`` can reach is a model structure (SPEC section 1: the composition
function).  When the file defines a ``forward``, roots that no ``forward`` reaches (``generate``,
sampling utilities, an unused scripted function) are dropped: their tensor code does not run
in the model's training or inference step, and the paper's ground truth does not count it.  A
module's public method that calls the module's own layers (``forward_intermediates``,
``forward_features``) is an entry point like ``forward``, and so is a public module-level
function that nothing in the file calls (fairseq's ``apply_rotary_pos_emb``, a reference
attention function a registry names): it is the file's API for other files, whose models run
it.  A file without any ``forward`` (functional code) keeps every root.

Flows are built lazily and only for roots that can contain a rule's first pattern node: each
method is summarised once by the identifiers it mentions (with its helpers'), and a rule is
tried on a root only if one of its trigger identifiers is there.  On a typical modeling file
most roots are never built, which keeps the check path near the cost of ``ast.parse``.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from ..records import dataclass, field, replace

from .bindings import (ClassInfo, Ctor, _first_member, _last_member_kind, bind_class, collect_class, first_input,
                       sibling_module_class, span)
from .canon import HALF_PAIR, LEAD_SLICE, NEG_PAIR, SPLIT_SHAPE, TABLE, slices_two_leading
from .graph import GELU, Flow, FlowBuilder, Node, Ref, defaulted_attributes, picked_attributes, walk
from .layers import _closure as layer_closure
from .layers import (OUTPUT_KINDS, OUTPUT_OF, OWN_CALL, Built, LayerTyper, SequentialSite, chain_loop, mark_lm_heads, registers,
                     runs_children, runs_in_order)
from . import held_layers, passed_defaults
from .names import ModuleNames, collect_names, may_import_locally, module_functions, names_match, star_module_package
from .formulas import function_forward, gelu_formula
from .partial_rope import doubled
from .siblings import MAX_HOPS, Package, imported_tables, sibling_gelu
from .setting_dispatch import GATE as DISPATCH_GATE, class_dispatches, dispatched_methods
from .treewalk import ast_walk, blocks

_STRING, _COMMENT = tokenize.STRING, tokenize.COMMENT
_FSTRING_MIDDLE = getattr(tokenize, "FSTRING_MIDDLE", -1)  # (3.12: an f-string's literal text)

INIT_NAMES = frozenset({"__init__", "_init_weights", "post_init"})
# The module's own statements (a training script's body) as one more root of ``<module>``.
TOP_LEVEL = "<top-level>"
# The owner of the flows of the file's nn.Sequential constructions (see sequential_structure).
SEQUENTIAL_OWNER = "<sequential>"
_DEFINITIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Import, ast.ImportFrom)


def _top_level(tree: ast.Module) -> ast.FunctionDef | None:
    """The module's executable statements wrapped in a function node (positions kept), or
    None when they call nothing (most library files: imports, constants, docstrings)."""
    body = [s for s in tree.body if not isinstance(s, _DEFINITIONS)]
    if not any(isinstance(n, ast.Call) for s in body for n in ast_walk(s)):
        return None
    func = ast.FunctionDef(
        name=TOP_LEVEL, args=ast.arguments(posonlyargs=[], args=[], kwonlyargs=[], kw_defaults=[], defaults=[]),
        body=body, decorator_list=[], returns=None, type_params=[],
    )
    func.lineno, func.col_offset = body[0].lineno, body[0].col_offset
    func.end_lineno, func.end_col_offset = body[-1].end_lineno, body[-1].end_col_offset
    return func


_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# A call whose first argument is a tuple or list written with a negated first element
# (``torch.cat((-x2, x1), dim=-1)``, brackets and line breaks between): what the flow builder
# needs to read a rotate-half (graph._rotate_half).  A function whose text has one mentions the
# pseudo-word NEG_PAIR (not an identifier), so that a root can be skipped before its graph is
# built when none of the code it reaches has one.
_NEG_PAIR = re.compile(r"\([\s\\]*[(\[][\s(\\]*-")
# ... or with the negated half through a local name (``x1 = -x[..., h:]`` then ``cat((x1, x2),
# -1)``, graph._rotate_half resolves it): a name assigned a negated subscript (research54)
_NEG_ASSIGN = re.compile(r"\b\w+[ \t]*=[ \t]*-[ \t]*[A-Za-z_][\w.]*\[")
# (what _neg_assign searches for: from the ``=`` on, a literal start the regex engine scans for
# fast, the name before it checked at each hit; the form above tried every word of the code)
_NEG_ASSIGN_TAIL = re.compile(r"=[ \t]*-[ \t]*[A-Za-z_][\w.]*\[")


def _neg_assign(code: str) -> bool:
    """Does ``code`` hold a match of :data:`_NEG_ASSIGN` (a name, then ``= -x[``)?"""
    for hit in _NEG_ASSIGN_TAIL.finditer(code):
        at = hit.start()
        while at > 0 and code[at - 1] in " \t":
            at -= 1
        if at > 0 and _WORD_CHAR.match(code[at - 1]):
            return True
    return False
# A call whose first argument is a tuple or list written in place (``torch.cat((a, b), -1)``):
# with halves of a last axis taken in the same function (graph._half: ``x[..., : n]`` with
# ``n = x.shape[-1] // 2`` -- an Ellipsis and a floor division --, or ``x.chunk(2, -1)``, or
# ``rearrange(...).unbind(-2)``; graph._rope_halves resolves names only within the function
# that concatenates), the function mentions the pseudo-word HALF_PAIR.
_SEQ_ARG = re.compile(r"\([\s\\]*[(\[]")
_HALVES = frozenset({"chunk", "unbind", "split"})
# ``x[..., d : d * 2]`` (or ``2 * d``) inside one subscript after an Ellipsis: the end of a
# rotary prefix split at d, its rest concatenated after (partial_rope.read, a three-part
# concatenation), which has no floor division
_TWICE = re.compile(r"(?<!\*)\*\s*2(?![\w.])|(?<![\w.])2\s*\*(?!\*)")
_ELLIPSIS_SUBSCRIPT = re.compile(r"\[\s*\.\.\.\s*,([^\[\]\n]*)\]")


def _twice_slice(code: str) -> bool:
    """Does ``code`` slice after an Ellipsis at a bound written ``<x> * 2`` / ``2 * <x>``?"""
    return any(":" in hit.group(1) and _TWICE.search(hit.group(1)) for hit in _ELLIPSIS_SUBSCRIPT.finditer(code))


# x[:, 1:] or x[:-1] (one or two slices, maybe a trailing ellipsis: x[:, :-1, ...]): what
# canon.lead2 is read off (the LEAD_SLICE pseudo-word)
_LEAD_SLICE = re.compile(r"\w\[\s*-?\w*\s*:\s*-?\w*\s*(?:,\s*-?\w*\s*:\s*-?\w*\s*)?(?:,\s*\.\.\.\s*)?\]")
# (the same without its first character, searched by _lead_slice: a pattern that starts with
# the bracket is looked for where one is written, the one above tried at every word character;
# a tenth of the time over a function's text)
_SLICE_BRACKET = re.compile(_LEAD_SLICE.pattern[2:])
_WORD_CHAR = re.compile(r"\w")
# x.reshape(*x.shape[:2], n, V) (or view, x.size()[:2]): a last axis split into members
# (graph._split_last_axis; the SPLIT_SHAPE pseudo-word)
_SPLIT_SHAPE = re.compile(r"\(\s*\*\s*\w+\s*\.\s*(?:shape|size\s*\(\s*\))\s*\[\s*:\s*\d+\s*\]")
# h.view(B, T, 2, -1) (or reshape, the last size also written ``D // 2``): the halves of a last
# axis stacked on a new one, read as its chunks (graph.FlowBuilder._stacked_halves)
_STACKED = re.compile(r"\b(?:view|reshape)\([^()]*,\s*2\s*,\s*(?:-\s*1|[\w.]+\s*//\s*2)\s*\)")
# (each string form unrolled, ``'[^'\\\n]*(?:\\.[^'\\\n]*)*'`` for ``'(?:\\.|[^'\\\n])*'`` and a
# triple-quoted string's body as runs of other characters and quotes not starting its end,
# for ``.*?``: the same matches, found in a loop over a character class instead of one
# alternation or lazy step per character; a third less time over a file)
_NOISE = re.compile(r"""#[^\n]*|'''[^']*(?:'(?!'')[^']*)*'''|\"\"\"[^"]*(?:"(?!"")[^"]*)*\"\"\"|'[^'\\\n]*(?:\\.[^'\\\n]*)*'"""
                    r"""|"[^"\\\n]*(?:\\.[^"\\\n]*)*\"""", re.S)


def attr_words(path: str) -> tuple[str, ...]:
    """The identifiers a function that calls the layer bound at ``path`` mentions, one of
    them at least: the attribute itself for ``layers[0]`` (a Sequential's member) and
    ``layers[]`` (a container's element); for ``mlp.c_fc`` (an ``nn.ModuleDict``'s member) the
    dict's attribute (``self.mlp["c_fc"]``, ``m = self.mlp``) or the key (``m.c_fc`` in a
    lambda over a name ``__init__`` bound to ``self.mlp``); for ``attn.to_q`` (a layer
    borrowed through an annotated parameter, see _borrow_layers) the layer's name."""
    head = path.split("[", 1)[0]
    first, _, rest = head.partition(".")
    if not first.isidentifier():
        # a name ``add_module`` gave (``bn_end{}``, a family of computed names; a string that
        # is no identifier), read as ``self._modules[...]`` or ``getattr(self, ...)``
        # (graph._layer_of) only
        return ("_modules", "getattr")
    # (any layer may also be read as ``self._modules["name"]``)
    return (first, rest.rsplit(".", 1)[-1], "_modules") if rest else (first, "_modules")


def _mentions(func: ast.AST, lines: list[str] | None) -> frozenset[str]:
    """Identifiers in a function's text (a regex over its lines: ast.walk is 20x slower)."""
    if lines is None:
        words: set[str] = set()
        seq_arg = floor_div = ellipsis = neg_assign = False
        for node in walk(func):  # (treewalk's: the nodes tested here, without the ctx/op singletons)
            kind = node.__class__  # (no node type tested here has a subclass)
            if kind is ast.Attribute:
                words.add(node.attr)
            elif kind is ast.Name:
                words.add(node.id)
            elif kind is ast.keyword and node.arg:
                words.add(node.arg)
            elif kind is ast.Call and node.args and isinstance(node.args[0], (ast.Tuple, ast.List)):
                seq_arg = True
                if node.args[0].elts and isinstance(node.args[0].elts[0], ast.UnaryOp) \
                        and isinstance(node.args[0].elts[0].op, ast.USub):
                    words.add(NEG_PAIR)
            elif kind is ast.Assign and isinstance(node.value, ast.UnaryOp) \
                    and isinstance(node.value.op, ast.USub) and isinstance(node.value.operand, ast.Subscript):
                neg_assign = True
            elif kind is ast.BinOp and isinstance(node.op, ast.FloorDiv):
                floor_div = True
            elif node.__class__ is ast.Slice and (doubled(node.lower) is not None or doubled(node.upper) is not None):
                floor_div = True  # (x[..., d : d * 2]: a rotary prefix's end, partial_rope.read)
            if kind is ast.Call and node.func.__class__ is ast.Attribute \
                    and node.func.attr in ("view", "reshape") and len(node.args) >= 3 \
                    and isinstance(node.args[-2], ast.Constant) and node.args[-2].value == 2:
                words.add("chunk")  # the halves stacked on a new axis (graph.FlowBuilder._stacked_halves)
            elif kind is ast.Constant and node.value is Ellipsis:
                ellipsis = True
            elif node.__class__ is ast.Subscript and slices_two_leading(node):
                words.add(LEAD_SLICE)
            elif node.__class__ is ast.Starred and node.value.__class__ is ast.Subscript:
                words.add(SPLIT_SHAPE)  # (a superset of the starred splits: only a pre-filter)
        if seq_arg and ((floor_div and ellipsis) or not words.isdisjoint(_HALVES)):
            words.add(HALF_PAIR)
        if seq_arg and neg_assign:
            words.add(NEG_PAIR)
        if "split" in words or "tensor_split" in words:
            words.add("chunk")  # two equal parts of a last axis are read as its chunks (graph._split_in_halves)
        return frozenset(words)
    code = _NOISE.sub(" ", "\n".join(lines[func.lineno - 1:func.end_lineno]))  # comments, strings
    # (the identifiers as a set first: the tests below look words up in it, not in the list of
    # every occurrence; the pseudo-words, rarely any, are added at the end)
    words = frozenset(_WORD.findall(code))
    extra = []
    # (a negated pair starts where a sequence argument does: no sequence argument, no pair)
    seq_arg = _SEQ_ARG.search(code)
    if seq_arg and (_NEG_PAIR.search(code, seq_arg.start()) or _neg_assign(code)):
        extra.append(NEG_PAIR)
    if seq_arg and (("//" in code and "..." in code) or not _HALVES.isdisjoint(words)
                    or ("..." in code and _twice_slice(code))):
        extra.append(HALF_PAIR)
    if _lead_slice(code):
        extra.append(LEAD_SLICE)
    if "*" in code and ("reshape" in words or "view" in words) and _SPLIT_SHAPE.search(code):
        extra.append(SPLIT_SHAPE)
    if "split" in words or "tensor_split" in words or (("view" in words or "reshape" in words) and _stacked(code)):
        # two equal parts of a last axis are read as its chunks (graph._split_in_halves), and so
        # are its halves stacked on a new axis (graph.FlowBuilder._stacked_halves)
        extra.append("chunk")
    return words.union(extra) if extra else words


# ``AttentionOp.apply``: the class named (``\w*+`` possessive: a shorter name is followed by a
# word character, never the dot, so giving characters back finds no other match)
_APPLIED = re.compile(r"\b([A-Za-z_]\w*+)\.apply\b")
# ``Name(<arguments without a call>)(``: a class built and called at once (built_forwards)
_BUILT_CALLED = re.compile(r"\b([A-Za-z_]\w*+)\([^()]*+\)\(")


def _lines_holding(text: str, needle: str) -> list[str]:
    """The lines of ``text`` (``text.split("\n")``'s items) that hold ``needle`` (no newline in
    it), in order, each once: found by ``str.find`` over the text, not by a test of every line
    in turn (most files hold a rare needle on no line, or on a few of a thousand)."""
    found = []
    at = text.find(needle)
    while at >= 0:
        end = text.find("\n", at)
        if end < 0:
            end = len(text)
        found.append(text[text.rfind("\n", 0, at) + 1:end])
        at = text.find(needle, end)
    return found


def _lead_slice(code: str) -> bool:
    """``_LEAD_SLICE.search(code) is not None``: every place the bracket and slices match, in
    order, until one has a word character before it (the pattern's first, ``\\w``)."""
    found = _SLICE_BRACKET.search(code)
    while found is not None:
        at = found.start()
        if at and _WORD_CHAR.match(code, at - 1):
            return True
        found = _SLICE_BRACKET.search(code, at + 1)
    return False


def _stacked(code: str) -> bool:
    """``_STACKED.search(code)``, tried only where ``view(`` or ``reshape(`` is written (where
    its matches start; the word boundary before them is the pattern's own test, which sees the
    character before the position): a scan for two strings instead of the pattern tried at
    every character."""
    for word in ("view(", "reshape("):
        at = code.find(word)
        while at >= 0:
            if _STACKED.match(code, at):
                return True
            at = code.find(word, at + 1)
    return False


# ClassStructure._bound_by_name: a set of constructor names -> (name, its last component) each
# (the matchers' sets: a few dozen in a process)
_LAST_PARTS: dict[frozenset, tuple] = {}


_PICKED = "\0picked"  # ClassStructure._words key: graph.picked_attributes' answer
_DEFAULTED = "\0defaulted"  # ClassStructure._words key: graph.defaulted_attributes' answer
_DISPATCHES = "\0dispatches"  # ClassStructure._words key: setting_dispatch.class_dispatches' answer
_CLASS_TABLES = "\0class tables"  # ClassStructure._words key: _class_table_words' answer


@dataclass
class ClassStructure:
    name: str
    info: ClassInfo | None
    module: "ModuleStructure"
    functions: dict[str, ast.FunctionDef | ast.AsyncFunctionDef] = field(default_factory=dict)
    roots: list[str] = field(default_factory=list)
    # Every root, also those no forward reaches and __init__: for rules about the code around
    # the model (an optimizer built in configure_optimizers or a script's main()).
    all_roots: list[str] = field(default_factory=list)
    _flows: dict[str, Flow] = field(default_factory=dict)
    _words: dict[str, frozenset] = field(default_factory=dict)
    _bound: dict[frozenset, frozenset] = field(default_factory=dict)
    _op_attrs: dict[str, frozenset] = field(default_factory=dict)

    @property
    def bindings(self):
        return self.info.bindings if self.info else {}

    def bound_to(self, constructors: frozenset) -> frozenset[str]:
        """The attributes bound in ``__init__`` to one of these constructors (cached: every
        alternative of every rule asks)."""
        attrs = self._bound.get(constructors)
        if attrs is None:
            attrs = self._bound[constructors] = frozenset(
                word for attr in self._bound_by_name(constructors) for word in attr_words(attr)
            )
        return attrs

    def _bound_by_name(self, constructors: frozenset) -> list[str]:
        """The attributes (in binding order) some constructor of which one of ``constructors``
        denotes (names_match).  A name denotes another only when their last components agree,
        so the bindings are looked up by the constructors' last components (indexed once per
        class) rather than each one tested against every constructor name."""
        index = self._bound.get(None)
        if index is None:
            index = {}
            for attr, ctors in self.bindings.items():
                for c in ctors:
                    index.setdefault(c.fqn.rsplit(".", 1)[-1], {})[attr] = None
            self._bound[None] = index
        if not index:
            return []  # (a class that binds nothing)
        bindings = self.bindings
        found: dict[str, None] = {}
        lasts = _LAST_PARTS.get(constructors)
        if lasts is None:  # (each constructor's last component, once per set in the process)
            lasts = _LAST_PARTS[constructors] = tuple((a, a.rsplit(".", 1)[-1]) for a in constructors)
        for a, last in lasts:
            for attr in index.get(last, ()):
                if attr not in found and any(names_match(a, c.fqn) for c in bindings[attr]):
                    found[attr] = None
        if len(found) > 1 and len(constructors) > 1:
            return [attr for attr in bindings if attr in found]
        return list(found)

    def op_attrs(self, op: str) -> frozenset[str]:
        """The attributes bound in ``__init__`` to layers that compute (or may compute, an
        activation chosen at run time) the canonical operation ``op``: ``attend`` for
        ``self.attend = nn.Softmax(dim=-1)``."""
        attrs = self._op_attrs.get(op)
        if attrs is None:
            attrs = self._op_attrs[op] = frozenset(self._layer_op_words().get(op, ()))
        return attrs

    def _layer_op_words(self) -> dict[str, set[str]]:
        """Canonical operation -> the words of the attributes bound to layers that compute (or
        may compute) it: every layer's operations, worked out once per class."""
        by_op = self._op_attrs.get("")
        if by_op is None:
            by_op = {}
            for attr, ctors in self.bindings.items():
                definite, maybe = TABLE.layer_ops(ctors)
                for name in ({definite} if definite else set()) | maybe:
                    by_op.setdefault(name, set()).update(attr_words(attr))
            self._op_attrs[""] = by_op
        return by_op

    def layer_ops_named(self, words: frozenset) -> frozenset[str]:
        """The operations ``op`` whose :meth:`op_attrs` meet ``words`` (a root's words): for
        a class that binds layers, one pass over its few operations answers, for every ``op``
        a matcher asks about, whether a root names a layer computing it -- without a word set
        made per class and operation (most of those asked about are not named at all)."""
        by_op = self._layer_op_words()
        return frozenset(op for op, attrs in by_op.items() if not words.isdisjoint(attrs)) if by_op else frozenset()

    def op_words(self, op: str) -> frozenset[str]:
        """What a root must mention to compute ``op`` in this class: a spelling's name, or an
        attribute bound to a layer computing it."""
        key = "words:" + op
        words = self._op_attrs.get(key)
        if words is None:
            # (the file's spellings themselves when no layer of the class computes ``op``: a
            # union with nothing is the same words, without a copy per class; the layers'
            # words read off the class's table, without op_attrs' frozenset of them)
            attrs = self._layer_op_words().get(op)
            words = self._op_attrs[key] = self.module.op_words(op) | attrs if attrs else self.module.op_words(op)
        return words

    def bound_paths(self, constructors: frozenset) -> frozenset[str]:
        """Like :meth:`bound_to`, but the members of a Sequential (``block[0]``) and the
        elements of a container (``layers[]``) count separately."""
        key = ("paths", constructors)
        paths = self._bound.get(key)
        if paths is None:
            paths = self._bound[key] = frozenset(self._bound_by_name(constructors))
        return paths

    def flow(self, name: str) -> Flow:
        flow = self._flows.get(name)
        if flow is None:
            qualname = name if self.info is None else f"{self.name}.{name}"
            builder = FlowBuilder(self.module.names, self.info, self.module.lines, self.module.package,
                                  text=self.module.text, dispatches=self.dispatches())
            flow = self._flows[name] = builder.build(self.functions[name], qualname)
        return flow

    def dispatches(self) -> dict:
        """``setting_dispatch.class_dispatches`` of the class ({} for a file's functions, or a
        file that writes no ``getattr(self, self.``): read once per class, since the word
        prefilter and the flow builder of every root ask (the builder only reads it)."""
        found = self._words.get(_DISPATCHES)
        if found is None:
            module = self.module
            found = self._words[_DISPATCHES] = class_dispatches(self.info, module.names, module.text) \
                if self.info is not None and module.dispatching() else {}
        return found

    @property
    def flows(self) -> dict[str, Flow]:
        """Every root's flow (builds them all; the matcher uses :meth:`flow` selectively)."""
        return {name: self.flow(name) for name in self.roots}

    def words(self, name: str, _seen: frozenset = frozenset()) -> frozenset[str]:
        """Identifiers mentioned by a function and by the helpers it reaches."""
        cached = self._words.get(name)
        if cached is not None:
            return cached
        func = self.functions.get(name) or self.module.names.functions.get(name)
        if func is None:
            return frozenset()
        own = self.module.mention(func)
        # the words that name a function of the class or of the file, read off those functions
        # (a few) rather than off every word the function mentions; the union is order-free
        functions, module_functions = self.functions, self.module.names.functions
        callees = [word for word in functions if word in own]
        callees += [word for word in module_functions if word in own and word not in functions]
        picks = self._words.get(_PICKED)
        if picks is None:
            picks = self._words[_PICKED] = picked_attributes(functions)
        if picks:
            # self.attention_function(q, k) with __init__ binding it to a method of the class
            # (graph._picked_methods): that method is reached
            callees += [m for attr, methods in picks.items() if attr in own for m in methods if m not in callees]
        if "getattr" in own and self.info is not None:
            dispatches = self.dispatches()
            if dispatches:
                # fn = getattr(self, self.mode): the methods the setting's values name are reached
                # (graph.FlowBuilder._setting_dispatch)
                callees += [m for m in dispatched_methods(dispatches, functions, own) if m not in callees]
        total = None
        defaulted = self._words.get(_DEFAULTED)
        if defaulted is None:
            defaulted = self._words[_DEFAULTED] = defaulted_attributes(functions)
        if defaulted:
            # self.opt(params, lr=lr) with __init__ binding self.opt to a parameter defaulting to
            # torch.optim.Adam (graph.FlowBuilder._attr_choices): what the default names
            for attr, named in defaulted.items():
                if attr in own:
                    total = set(own) if total is None else total
                    total |= named
        tables = self.module.table_words()
        if tables:
            # a literal table of callables the function reads (``klass = OPTIMIZERS[name]``):
            # what its entries name is what the function may call (graph's _table_entry)
            for word, named in tables.items():
                if word in own:
                    total = set(own) if total is None else total
                    total |= named
        ctables = self._words.get(_CLASS_TABLES)
        if ctables is None:
            ctables = self._words[_CLASS_TABLES] = _class_table_words(self.info)
        if ctables:
            # cls._OPTIMIZERS[name](params): a class-body table of callables the function reads
            # (graph.FlowBuilder._narrowed_entry): what its entries name, as for a module's
            for word, named in ctables.items():
                if word in own:
                    total = set(own) if total is None else total
                    total |= named
        for word in callees:
            if word in _seen or word == name:
                continue
            owner = self if word in functions else self.module.function_owner
            if total is None:
                total = set(own)
            total |= owner.words(word, _seen | {name})
        if "getattr" in own:
            # klass = getattr(torch.optim, name): a class of that module looked up by a run-time
            # name (graph.FlowBuilder._lookup_choices) may be any the module defines: the
            # module's lookup word, which call_names gives each of its classes
            looked = lookups(func, self.module.names, self.module.lines)
            if looked:
                total = set(own) if total is None else total
                total |= looked
        if "__dict__" in own:
            # torch.optim.__dict__[name](params): a class of that module looked up by a
            # run-time name, as through getattr (graph.FlowBuilder._dict_lookup_choices)
            looked = dict_lookups(func, self.module.names, self.module.lines)
            if looked:
                total = set(own) if total is None else total
                total |= looked
        if "getmembers" in own:
            # optim = list(filter(pred, inspect.getmembers(torch.optim))); optim[0][1](params):
            # a class of that module chosen at run time (graph.FlowBuilder._members_choices)
            looked = member_lookups(func, self.module.names)
            if looked:
                total = set(own) if total is None else total
                total |= looked
        forwards = self.module.autograd_forwards()
        if forwards:
            # AttentionOp.apply(q, k) (or attention_op(q, k), attention_op = AttentionOp.apply):
            # the static forward of a same-file torch.autograd.Function, which the flow inlines
            # there (graph.FlowBuilder._call), and what it mentions
            for word, fwd in forwards.items():
                if word in own:
                    if total is None:
                        total = set(own)
                    total |= self.module.mention(fwd)
        built = self.module._built
        if built is None:
            built = self.module.built_forwards()
        if built:
            # MaskedSoftmax(dim=-1)(s, mask=m): a same-file module built and called at once,
            # whose forward the flow inlines there (graph.FlowBuilder._built_forward)
            for word, fwd in built.items():
                if word in own:
                    if total is None:
                        total = set(own)
                    total |= self.module.mention(fwd)
        result = own if total is None else frozenset(total)
        if not _seen:
            self._words[name] = result
        return result


@dataclass
class ModuleStructure:
    names: ModuleNames
    lines: list[str] | None
    classes: dict[str, ClassStructure] = field(default_factory=dict)
    _mentions: dict[int, frozenset] = field(default_factory=dict)
    _autograd: dict | None = None  # autograd Function class name -> its static forward (autograd_forwards)
    _built: dict | None = None  # class name -> its forward, for classes built and called at once (built_forwards)
    _call_names: dict[str, frozenset] = field(default_factory=dict)
    # Matcher._candidates: per word-key set, the (class name, roots) pairs with candidate roots;
    # per (scope, first word key), the names of the classes some root of which passes that key's
    # test (names, not class structures: no reference cycle through the module).
    candidates: dict[int, list] = field(default_factory=dict)
    _tables: dict | None = None  # table_words'
    first_candidates: dict[tuple, list] = field(default_factory=dict)
    # scope (file: True) -> [class name, its roots' words, the operations of the layers those
    # words name, the last name components of those layers' constructors] of each class with
    # roots there, the last two made on first use (match._first_candidates; names, not class
    # structures, as above)
    rooted: dict[bool, list] = field(default_factory=dict)
    # the package's other modules on disk (siblings.Package), when the file lies in one
    package: object = None
    # Module classes of sibling modules that a processor's ``__call__`` here takes by an
    # annotated parameter: name -> their ClassInfo (model._annotated_siblings); None: none
    foreign: dict | None = None
    # the file's text (``lines`` joined): kept so that readings of the whole text take it as it
    # is, the same object the engine read, rather than joining the lines again per reading
    text: str | None = None
    # does the text write ``getattr(self, self.`` (setting_dispatch.GATE)?  None until asked:
    # one scan of the text per file, not one per class and flow builder
    _dispatching: bool | None = None

    def dispatching(self) -> bool:
        """Does the file's text write a method dispatch on a setting (setting_dispatch.GATE)?
        (Worked out once per file: every class's prefilter and flow builder ask.)"""
        found = self._dispatching
        if found is None:
            found = self._dispatching = self.text is not None and DISPATCH_GATE in self.text
        return found

    def table_words(self) -> dict:
        """Module-level dict literals whose entries are dotted names or tuples holding some
        (``{"sgd": (torch.optim.SGD, {...}), ...}``): name -> the words of those dotted names;
        worked out once per file (most files have none)."""
        found = self._tables
        if found is None:
            found = self._tables = {}
            for name, value in self.names.constants.items():
                if value.__class__ is not ast.Dict or not value.values:
                    continue
                words = _entry_words(value, tuples=True)
                if words:
                    found[name] = frozenset(words)
            if self.package is not None and self.text is not None:
                # a table imported from another module of the package (siblings.imported_tables):
                # the last components of what its entries name
                for name, table in imported_tables(self.names.imports, self.text, self.package).items():
                    found[name] = frozenset(fqn.rpartition(".")[2] for fqn in table)
        return found

    def call_names(self, fqn: str) -> frozenset[str]:
        """The words code uses to call ``fqn`` here: its last component and its import aliases."""
        words = self._call_names.get(fqn)
        if words is None:
            # (a name denotes another only when their last components agree: the imports are
            # looked up by last component, indexed once per file, in the file's import order)
            by_last = self._call_names.get("<imports>")
            if by_last is None:
                by_last = {}
                for local, imported in self.names.imports.items():
                    by_last.setdefault(imported.rsplit(".", 1)[-1], []).append((local, imported))
                self._call_names["<imports>"] = by_last
            module, _, last = fqn.rpartition(".")
            aliases = {local for local, imported in by_last.get(last, ()) if names_match(fqn, imported)}
            # (and the word of a run-time lookup in its module, see lookups)
            words = self._call_names[fqn] = frozenset({last, *aliases, module + ".*"})
        return words

    def op_words(self, op: str) -> frozenset[str]:
        """The words code uses to compute the canonical operation ``op`` here: every spelling's
        name (functions with their import aliases, methods, module classes)."""
        key = "op:" + op
        words = self._call_names.get(key)
        if words is None:
            found = set(TABLE.words(op))
            for fqn in TABLE.ops[op].functions:
                found |= self.call_names(fqn)
            if op == GELU:
                found |= self._gelu_functions()
            words = self._call_names[key] = frozenset(found)
        return words

    def _gelu_functions(self) -> set[str]:
        """Names of functions that compute a GELU which no spelling table knows: the file's own
        functions whose body is the formula (nanoGPT's ``new_gelu``; the flow builder reads a
        call of one as a GELU), and functions of the package's other modules it imports that
        are a GELU (a ``gelu_tanh(x)`` returning ``F.gelu(x, approximate="tanh")``)."""
        found = set()
        # A name no root mentions is called by none, and leaving it out changes no word test;
        # the roots' words are read here only when the matcher has gathered them already.
        mentioned = self._call_names.get("<roots>")
        for name, func in self.names.functions.items():
            if mentioned is not None and name not in mentioned:
                continue
            args = func.args
            if (len(args.args) == 1 and not (args.vararg or args.kwarg or args.kwonlyargs or args.posonlyargs)
                    and gelu_formula(func, self.names) is not None):
                found.add(name)
        if self.package is not None:
            for local, fqn in self.names.imports.items():
                if ((mentioned is None or local in mentioned) and self.package.owns(fqn)
                        and sibling_gelu(self.package, fqn) is not None):
                    found.add(local)
        return found

    def mention(self, func: ast.AST) -> frozenset[str]:
        key = id(func)
        words = self._mentions.get(key)
        if words is None:
            # The module's statements are not one span of lines (definitions sit between
            # them), so they are read off the tree.
            lines = None if getattr(func, "name", None) == TOP_LEVEL else self.lines
            words = self._mentions[key] = _mentions(func, lines)
        return words

    def built_forwards(self) -> dict[str, ast.FunctionDef]:
        """The file's classes that some line builds and calls at once (``Name(...)(``, the
        constructor's arguments on that line, none of them a call) -> their ``forward``
        (worked out on first use; most files have none)."""
        found = self._built
        if found is None:
            found = self._built = {}
            classes = self.names.classes
            if self.text is not None and classes:
                for name in {name for line in _lines_holding(self.text, ")(") for name in _BUILT_CALLED.findall(line)}:
                    cls = classes.get(name)
                    forward = next((item for item in cls.body if item.__class__ is ast.FunctionDef
                                    and item.name == "forward"), None) if cls is not None else None
                    if forward is not None:
                        found[name] = forward
        return found

    def autograd_forwards(self) -> dict[str, ast.FunctionDef]:
        """The file's ``torch.autograd.Function`` subclasses by name -> their static forward, and
        module-level names bound once to such a class's ``apply`` -> the same forward (worked out
        on first use; a file that never writes ``.apply`` has none)."""
        found = self._autograd
        if found is None:
            found = self._autograd = {}
            classes = self.names.classes
            if self.text is not None:
                # (the classes whose ``.apply`` the text names: most files name none, and
                # ``self.apply(fn)`` names no class)
                # (read only on the lines that write ``.apply``: no match spans a line, and the
                # pattern tried at every word of the file cost 7% of the analysis)
                classes = {name for line in _lines_holding(self.text, ".apply")
                           for name in _APPLIED.findall(line)}.intersection(classes)
            for name in classes:
                fwd = function_forward(name, self.names)
                if fwd is not None:
                    found[name] = fwd
            if found:
                for name, value in self.names.constants.items():
                    if value.__class__ is ast.Attribute and value.attr == "apply" \
                            and value.value.__class__ is ast.Name and value.value.id in found:
                        found[name] = found[value.value.id]  # attention_op = AttentionOp.apply
        return found

    @property
    def function_owner(self) -> ClassStructure:
        return self.classes["<module>"]

    def root_words(self) -> frozenset[str]:
        """Every word some root of some class mentions (:meth:`ClassStructure.words` of each
        root, also the roots no forward reaches): a word group of a matcher that no class
        needs to work out (a function's name) and that none of these holds rules out every
        root of the file at once.  Worked out on first use, after the classes are made."""
        words = self._call_names.get("<roots>")
        if words is None:
            found: set[str] = set()
            for cls in self.classes.values():
                for root in {*cls.roots, *cls.all_roots}:
                    found |= cls.words(root)
            words = self._call_names["<roots>"] = frozenset(found)
        return words


def _roots(functions: dict, mention, extra_callers=(), lines: list[str] | None = None) -> list[str]:
    """The functions nothing else in ``functions`` (or ``extra_callers``) mentions: where
    flows start; a helper is inlined into its callers instead.

    Mentions are words, so a method that calls another object's namesake (``network.train()``
    in a ``_toggle`` helper that ``train`` calls, ``self.evaluator.run(...)`` in an ``evaluate``
    that ``run`` calls) closes a cycle in which every member is "called": none would be a root
    and their code would be read nowhere (a trainer's optimizer).  Among a class's functions
    that no root reaches, the calls are read again as the flow builder inlines them
    (:func:`_own_call`); those no other one of them calls that way become roots (and, for a
    cycle of such calls, its first)."""
    called: set[str] = set()
    # (each function's callees as a set, the names of ``functions`` among its words in one C-level
    # intersection instead of a test per word: every use below is a membership test or an
    # order-free closure)
    callees: dict[str, set[str]] = {}
    method_calls: list[tuple[ast.AST, set[str]]] = []  # (a method, the module functions it names)
    names = functions.keys()
    for name, func in functions.items():
        if name in INIT_NAMES or name == TOP_LEVEL:  # a function the script calls stays a root
            continue
        words = callees[name] = names & mention(func)
        words.discard(name)
        if words:
            called.update(words)
    for name, func in extra_callers:  # (a module's functions: methods call them too)
        if name in INIT_NAMES:  # (a function only __init__ names stays a root, as above)
            continue
        words = names & mention(func)
        if words:
            called.update(words)
            method_calls.append((func, words))
    roots = [n for n in functions if n not in INIT_NAMES and (n == "forward" or n not in called)]
    if not called:
        return roots

    def own(func, name) -> bool:
        # a module function's own call is its bare name: with the file's lines, read off the
        # function's text (a name outside quotes, not after a dot; a comment's counts, as a
        # mention did before), far cheaper than walking its tree
        if lines is None or getattr(func, "end_lineno", None) is None:
            return _own_call(func, name)
        return _bare_word("\n".join(lines[func.lineno - 1:func.end_lineno]), name)

    if extra_callers:
        # a module function whose every mention is another object's namesake (``model.train()``
        # in an ``estimate_loss`` that the scripts call, for a ``def train(model, ...)``) is
        # inlined nowhere: it starts a flow of its own (gpt2lm's bigram.py, research33)
        for name in [n for n in functions if n in called and n not in roots and n in callees]:
            callers = [functions[n] for n, words in callees.items() if name in words]
            callers += [func for func, words in method_calls if name in words]
            if not any(own(func, name) for func in callers):
                roots.append(name)
    covered = _cover(roots, callees, set(roots))
    left = [n for n in functions if n not in covered and n in callees]
    if not left:  # (nearly every class: its roots reach every helper)
        return roots
    own_calls = {n: [w for w in callees[n] if w in left and own(functions[n], w)] for n in left}
    reached = {w for words in own_calls.values() for w in words}
    # a module function a method calls by its bare name is that method's helper, not a root; one
    # only a method's namesake call names (``model.train()`` in a function ``train`` calls
    # through ``estimate_loss``) is read from where it starts (gpt2lm's bigram.py, research33)
    helpers = {w for func, words in method_calls for w in words if w in left and own(func, w)}
    covered |= helpers
    _cover(list(helpers), own_calls, covered)  # (and the functions those helpers call in turn)
    for name in (*(n for n in left if n not in reached), *left):
        if name not in covered:  # (then a cycle of own calls: its first)
            roots.append(name)
            covered.add(name)
            _cover([name], own_calls, covered)
    return roots


def _namesake_roots(structure: "ClassStructure", mention, lines: list[str]) -> None:
    """Methods that other methods of the class mention only as another object's namesake
    (supar's ``Parser.evaluate`` runs ``self.transform.train()``, which names no
    ``Parser.train``): no flow inlines them, so each is a root of its own, read where it
    starts (the optimizer ``Parser.train`` builds).  Mentions are words, which :func:`_roots`
    takes for calls; here each caller's text is read for an own call (``self.name``,
    ``cls.name``, a call's result such as ``super().name``, a class-qualified or a bare
    ``name``: any of them keeps the method inlined)."""
    functions = structure.functions
    roots = structure.roots
    texts: dict[str, str] = {}
    whole = None
    for name in functions:
        if name in roots or name in INIT_NAMES or name == "forward":
            continue
        if whole is None:
            node = structure.info.node
            whole = "\n".join(lines[node.lineno - 1:node.end_lineno])
        if _own_attribute(whole, name):
            continue  # (an own call somewhere: kept inlined)
        callers = [n for n, func in functions.items() if n != name and name in mention(func)]
        if not callers:
            continue
        for caller in callers:
            text = texts.get(caller)
            if text is None:
                func = functions[caller]
                end = getattr(func, "end_lineno", None)
                if end is None:
                    break  # (no span to read: kept inlined)
                text = texts[caller] = "\n".join(lines[func.lineno - 1:end])
            # (the caller's prose is read only where its raw text names the method: blanking
            # removes words, so a raw text that names none has none to remove)
            if _own_method_word(text, name) and _names_in_code(functions[caller], lines, name):
                break
        else:
            roots.append(name)


def _names_in_code(func, lines: list[str], name: str) -> bool:
    """Does ``func`` name the method ``name`` (:func:`_own_method_word`) outside its docstring,
    comments and prose strings?  A line with no quote and no ``#`` is code when no triple-quoted
    string is left to span it (the docstring taken off by its node): read first, the tokenizer
    (:func:`_code_text`) only where that line test does not decide."""
    first = func.body[0] if func.body else None
    start, end = func.lineno - 1, func.end_lineno
    body = lines[start:end]
    if first is not None and first.__class__ is ast.Expr and first.value.__class__ is ast.Constant \
            and isinstance(first.value.value, str):
        body = lines[start:first.lineno - 1] + lines[first.end_lineno:end]
    text = "\n".join(body)
    if '"""' not in text and "'''" not in text:
        plain = "\n".join(line for line in body if "#" not in line and '"' not in line and "'" not in line)
        if _own_method_word(plain, name):
            return True
    return _own_method_word(_code_text(text), name)


def _code_text(text: str) -> str:
    """A method's text with its comments and the text of its strings blanked, save strings that
    are one identifier (``getattr(self, "train")`` still names ``train``).  Prose runs nothing:
    ``Dataset to train the downstream model`` or a ``"Loss/train"`` log key in an ``evaluate``
    is no call of the class's ``train`` (AK_SSL's trainer), which then was inlined nowhere."""
    chunk = text.split("\n")
    if "#" not in text and "'" not in text and '"' not in text:
        return text
    rows = [list(line) for line in chunk]
    try:
        for tok in tokenize.generate_tokens(io.StringIO(text).readline):
            kind = tok.type
            if kind == _STRING:
                if tok.string[:1] in "\"'" and tok.string[1:-1].isidentifier():
                    continue
            elif kind != _COMMENT and kind != _FSTRING_MIDDLE:
                continue
            (srow, scol), (erow, ecol) = tok.start, tok.end
            for row in range(srow - 1, erow):
                line = rows[row]
                start = scol if row == srow - 1 else 0
                stop = ecol if row == erow - 1 else len(line)
                line[start:stop] = " " * (stop - start)
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return text
    return "\n".join("".join(line) for line in rows)


def _own_attribute(text: str, name: str) -> bool:
    """Does ``text`` read ``self.name``, ``cls.name`` or ``(...).name`` as that whole word?  A
    longer method that starts with it (``self.train_one_epoch`` for ``train``) is another
    method: taking it for an own call left AK_SSL's ``Trainer.train`` inlined nowhere, its
    optimizers read by no rule."""
    size = len(name)
    for owner in ("self.", "cls.", ")."):
        word = owner + name
        at = text.find(word)
        while at >= 0:
            after = text[at + len(owner) + size:at + len(owner) + size + 1]
            if not (after.isalnum() or after == "_"):
                return True
            at = text.find(word, at + 1)
    return False


def _own_method_word(text: str, name: str) -> bool:
    """Does ``text`` name the method ``name`` other than as an attribute of another object:
    ``self.name``, ``cls.name``, ``Class.name``, ``super().name`` (any call's or item's result,
    conservatively), or the bare word (a string or a comment too)?  Only ``obj.name`` with an
    ``obj`` of another name (``self.transform.name``, ``network.name``) does not count."""
    size = len(name)
    at = text.find(name)
    while at >= 0:
        before = text[at - 1:at]
        after = text[at + size:at + size + 1]
        if not (after.isalnum() or after == "_" or before.isalnum() or before == "_"):
            if before != ".":
                return True
            dot = at - 1
            if text[dot - 1:dot] in (")", "]"):
                return True
            start = dot
            while start > 0 and (text[start - 1].isalnum() or text[start - 1] == "_"):
                start -= 1
            owner = text[start:dot]
            if text[start - 1:start] != "." and (owner in ("self", "cls") or owner[:1].isupper()):
                return True
        at = text.find(name, at + 1)
    return False


def _cover(names, edges: dict, covered: set) -> set:
    """``covered`` and every function ``names`` reach along ``edges`` (added to it)."""
    todo = list(names)
    while todo:
        for word in edges.get(todo.pop(), ()):
            if word not in covered:
                covered.add(word)
                todo.append(word)
    return covered


def _closure_roots(structure: ClassStructure, lines: list[str] | None) -> None:
    """A function defined in the body of another and never called there (an Optuna
    ``objective`` the enclosing function returns, a callback it hands on) runs where no flow of
    the file inlines it: its body is read on its own, as one more of ``all_roots`` (the code
    file-scope rules read: an optimizer built in the closure), under the key
    ``parent.<locals>.name``.  A closure the parent calls (``name(...)``) is inlined there
    already and is not read twice.  One the parent stores on another object's attribute
    (:func:`_closure_stored_on`) is a root of model flows too, as a module function patched in
    that way is (:func:`_patched_method_roots`)."""
    functions = structure.functions
    found = None
    for parent in functions:  # (no items() list per class: most classes nest no def)
        func = functions[parent]
        for stmt in func.body:
            if stmt.__class__ is not ast.FunctionDef and stmt.__class__ is not ast.AsyncFunctionDef:
                continue  # (most statements: a call-free class test first)
            if _calls_local(func, stmt, lines):
                continue
            if found is None:
                found = []
            found.append((f"{parent}.<locals>.{stmt.name}", stmt, func))
    if found is not None:
        for key, stmt, func in found:
            functions[key] = stmt
            structure.all_roots.append(key)
            if _closure_stored_on(func, stmt):
                structure.roots.append(key)


def _closure_stored_on(func: ast.AST, local: ast.AST) -> bool:
    """Does ``func`` store its uncalled closure ``local`` on an attribute of another object
    (``self.aggregator.attention = sparse_attention``: a forward that monkey-patches the
    attention of a module it wraps, then runs that module)?  Whoever calls it there runs its
    body, so the model rules read it like a method.  A store on ``self``'s own attribute does
    not count (the module calls it through that attribute, as FNet's ``self.fourier_transform``
    is left by :func:`_patched_method_roots`); a closure handed to a call is read where that
    call is already."""
    name = local.name
    for stmt in func.body:
        if stmt is local:
            continue
        for node in ast_walk(stmt):
            if node.__class__ is ast.Assign and node.value.__class__ is ast.Name and node.value.id == name and any(
                    t.__class__ is ast.Attribute
                    and not (t.value.__class__ is ast.Name and t.value.id == "self") for t in node.targets):
                return True
    return False


def _value_only_roots(structure: ClassStructure, text: str) -> None:
    """A module function that other code names but that the file never calls (no ``name(``
    anywhere in its text): it is handed on as a value (a recipe table's
    ``procedure = optim_cifar10_resnet18``, returned to a trainer or wrapped in ``partial``) and
    runs where no flow of the file inlines it.  Being named made it no root, so its body was
    read nowhere: it is read on its own, as one more of ``all_roots`` (the code file-scope rules
    read: the recipe's optimizer).  Functions the file calls by name, in any spelling, are
    inlined at their calls as before."""
    left = [n for n in structure.functions if n not in structure.all_roots and n != TOP_LEVEL]
    if not left:
        return
    for name in left:
        if not _called_by_name(text, name):
            structure.all_roots.append(name)


def _value_only_methods(structure: ClassStructure, text: str) -> None:
    """Every method not yet a root (nor one of :data:`INIT_NAMES`) that the file never calls
    (no ``name(`` anywhere in its text), whether other methods name it or not: it may be handed
    on as a value -- a dispatch table's ``{"kd": self._distill_kd}`` whose entry is then
    called, a callback ``on_step=self._step`` -- or called from outside the file, and runs
    where no flow of the file inlines it.  A named one was no root (:func:`_roots` takes a
    mention for a call), so its body was read nowhere: each is read on its own, as one more of
    ``all_roots`` (the code file-scope rules read: the optimizer such a method builds), as
    :func:`_value_only_roots` does for module functions.  Methods the file calls by name, in
    any spelling, stay inlined at their calls."""
    roots = structure.all_roots
    for name in structure.functions:
        if name not in roots and name not in INIT_NAMES and not _called_by_name(text, name):
            roots.append(name)


def _run_time_default_roots(structure: ClassStructure, names, lines) -> None:
    """A module function the file calls only with a run-time value for one of its integer
    defaults (``rms_norm(x, dim=self.dim)`` of ``def rms_norm(x, dim=-1, eps=1e-5)``): no flow
    that inlines it reads its default, so it is read on its own as well, a root of model flows
    (passed_defaults.run_time_default_functions), where the parameter is an assumption."""
    left = [n for n in structure.functions if n not in structure.roots and n != TOP_LEVEL]
    if not left:
        return
    for name in passed_defaults.run_time_default_functions(names, left, lines):
        structure.roots.append(name)
        if name not in structure.all_roots:
            structure.all_roots.append(name)


def _patched_classes(tree: ast.Module, names: ModuleNames) -> dict[str, ClassInfo] | None:
    """The methods a module-level function defines for another file's class and patches onto it
    (``def patch(): def __init__(self, config): self.q_proj = nn.Linear(...) ...; def
    forward(self, x): ... self.q_proj(x) ...; patch_function(cls, "__init__", __init__)``, the
    fine-tuning kits' idiom): the ``__init__`` it hands on builds the layers that its sibling
    methods call on ``self``, so the nested definitions are read as one class, its methods
    every nested ``def`` whose first parameter is ``self`` (and each name the function binds
    to one of them, ``_full = forward``, as a class body's ``forward = _forward`` is).  Only
    where the function never calls that ``__init__`` itself and hands it to a call (the patch):
    a nested function named so but called in place is the function's own helper."""
    found = None
    for func in tree.body:
        if func.__class__ is not ast.FunctionDef:
            continue
        init = None
        for stmt in func.body:  # (a function's own statements, no walk: most define no __init__)
            if stmt.__class__ is ast.FunctionDef and stmt.name == "__init__" and _takes_self(stmt):
                init = stmt
        if init is None or not _handed_on(func, init):
            continue
        targets = _handed_targets(func)
        own = targets.get(init.name)
        body = [s for s in func.body if (s.__class__ is ast.FunctionDef and _takes_self(s) and (
            not own or not targets.get(s.name) or targets[s.name] & own)) or (
            s.__class__ is ast.Assign and len(s.targets) == 1 and s.targets[0].__class__ is ast.Name
            and s.value.__class__ is ast.Name)]
        if sum(s.__class__ is ast.FunctionDef for s in body) < 2:
            continue
        node = ast.ClassDef(name=f"{func.name}.<locals>", bases=[], keywords=[], body=body, decorator_list=[])
        ast.copy_location(node, func)
        info = collect_class(node, names)
        info.is_module = True
        if found is None:
            found = {}
        found[info.name] = info
    return found


def _handed_targets(func: ast.FunctionDef) -> dict[str, set]:
    """For each name ``func`` hands to a call, what else those calls are handed (the class a
    patch puts it on: ``patch_function(cls, "forward", forward)``), literals left out.  A
    nested method the patch hands to another class than the ``__init__`` (a vision MLP's forward
    beside a text MLP's ``__init__``) is that class's, not read with these layers (review63)."""
    found: dict[str, set] = {}
    for node in ast_walk(func):
        if node.__class__ is ast.Call:
            values = [*node.args, *(k.value for k in node.keywords)]
            handed = [a.id for a in values if a.__class__ is ast.Name]
            if not handed:
                continue
            for name in handed:
                others = {ast.dump(a) for a in values if a.__class__ is not ast.Constant
                          and not (a.__class__ is ast.Name and a.id == name)}
                found.setdefault(name, set()).update(others)
    return found


def _takes_self(func: ast.FunctionDef) -> bool:
    args = func.args.posonlyargs or func.args.args
    return bool(args) and args[0].arg == "self"


def _handed_on(func: ast.FunctionDef, init: ast.FunctionDef) -> bool:
    """Does ``func`` hand its nested ``init`` to a call as an argument, and never call it?"""
    handed = False
    for node in ast_walk(func):
        if node.__class__ is ast.Call:
            if node.func.__class__ is ast.Name and node.func.id == init.name:
                return False
            if any(a.__class__ is ast.Name and a.id == init.name for a in (*node.args, *(k.value for k in node.keywords))):
                handed = True
    return handed


def _patched_method_roots(structure: ClassStructure, tree: ast.AST, text: str) -> None:
    """A module function the file never calls but stores on an attribute (``Attention.forward
    = patched_forward``, the monkey-patching idiom of fine-tuning kits) becomes a method of
    the object it is stored on: whoever calls that method runs its body, with ``self`` the
    patched module.  Only :func:`_value_only_roots` read it (file-scope rules), so the model
    rules never saw the attention, RoPE or projections it computes: it is a root of model flows
    too.  So is one handed to a call as an argument (``registry.register_attention(fn)``,
    ``make_forward(fn)``, ``hook=fn``: unsloth's decode attention): the callee runs it, and the
    GUIDE counts a public function nothing in its file calls as code that runs (lead ruling,
    session 34).  A function handed on in any other way (a table's value, a tuple) stays as
    :func:`_value_only_roots` leaves it, and so does one stored on ``self`` (FNet's
    ``self.fourier_transform = fftn``), which the module calls through that attribute."""
    stored = [n for n in structure.all_roots if n not in structure.roots and n in structure.functions
              and n != TOP_LEVEL and not _called_by_name(text, n)]
    if not stored:
        return
    wanted = {n for n in stored if _assigned_by_name(text, n)}
    found: set[str] = set()
    if wanted:  # (nearly every file: a text scan before any walk)
        for node in ast_walk(tree):
            if (node.__class__ is ast.Assign and node.value.__class__ is ast.Name and node.value.id in wanted
                    and any(t.__class__ is ast.Attribute
                            and not (t.value.__class__ is ast.Name and t.value.id == "self") for t in node.targets)):
                found.add(node.value.id)
    for name in stored:
        if name not in found and _handed_to_a_call(tree, text, name, structure.functions):
            found.add(name)
    structure.roots.extend(n for n in stored if n in found)


def _handed_to_a_call(tree: ast.Module, text: str, name: str, own: dict) -> bool:
    """Is the module function ``name`` an argument of some call (``register(fn)``,
    ``runner(fn, x)``, ``hook=fn``: unsloth's decode attention handed to a registry and to a
    model-forward factory)?  Only the statements on the lines where the text writes the word
    as an argument (:func:`_handed_lines`) are walked, not the whole tree.  A call of one of
    the file's own functions (``own``) does not count: the file's flows inline that function
    and see whether it calls what it was handed (a closure that rebinds its parameter never
    runs it)."""
    for line in _handed_lines(text, name):
        stmt = _innermost_statement(tree.body, line)
        if stmt is None:
            continue
        for node in ast_walk(stmt):
            if node.__class__ is ast.Call and not (
                    node.func.__class__ is ast.Name and node.func.id in own) and any(
                    arg.__class__ is ast.Name and arg.id == name
                    for arg in (*node.args, *(k.value for k in node.keywords))):
                return True
    return False


def _innermost_statement(body: list, line: int) -> ast.stmt | None:
    """The simple statement (or a compound one's header) of ``body``, searched into nested
    blocks, whose lines hold ``line``."""
    for stmt in body:
        if stmt.lineno <= line <= (stmt.end_lineno or stmt.lineno):
            inner = [b for block in blocks(stmt) for b in block]
            found = _innermost_statement(inner, line) if inner else None
            return found if found is not None else stmt
    return None


def _handed_lines(text: str, name: str) -> list[int]:
    """The lines (1-based) where ``text`` writes the word ``name`` as a whole argument of a call
    (after ``(``, ``,`` or ``=`` and before ``)`` or ``,``, white space allowed): where
    :func:`_handed_to_a_call` looks for the call (looser: a tuple's element or a default passes
    the text test too)."""
    size = len(name)
    lines = []
    start = text.find(name)
    while start >= 0:
        end = start + size
        if not (_WORD_CHAR.match(text[start - 1:start]) or _WORD_CHAR.match(text[end:end + 1])):
            before = text[max(0, start - 40):start].rstrip()
            after = text[end:end + 40].lstrip()
            if before[-1:] in ("(", ",", "=") and after[:1] in (")", ",") and before[-2:] != "==":
                lines.append(text.count("\n", 0, start) + 1)
        start = text.find(name, end)
    return lines


def _assigned_by_name(text: str, name: str) -> bool:
    """Does ``text`` write the word ``name`` right after a plain ``=`` whose line stores on an
    attribute of something other than ``self`` (``mod.Attention.forward = name``)?  The text
    test before :func:`_patched_method_roots` walks the tree for the assignment."""
    size = len(name)
    start = text.find(name)
    while start >= 0:
        end = start + size
        if not (_WORD_CHAR.match(text[start - 1:start]) or _WORD_CHAR.match(text[end:end + 1])):
            before = text[max(0, start - 8):start].rstrip()
            if before[-1:] == "=" and before[-2:-1] not in ("=", "!", "<", ">"):
                target = text[text.rfind("\n", 0, start) + 1:start].strip()
                if "." in target and not target.startswith("self."):
                    return True
        start = text.find(name, end)
    return False


def _called_by_name(text: str, name: str) -> bool:
    """Does ``text`` write the word ``name`` as a call's callee (``name(``, ``x.name (``, white
    space allowed before the parenthesis), other than a ``def``'s own name?  A scan of the
    places ``str.find`` gives (a few per function name), not a regular expression over every
    word of the file."""
    size = len(name)
    start = text.find(name)
    while start >= 0:
        end = start + size
        before = text[start - 1:start]
        after = text[end:end + 1]
        if not (_WORD_CHAR.match(before) or _WORD_CHAR.match(after)) and text[start - 4:start] != "def ":
            rest = text[end:end + 200].lstrip()
            if rest[:1] == "(":
                return True
        start = text.find(name, end)
    return False


def _bare_word(text: str, name: str) -> bool:
    r"""``re.search(r"(?<![\w.'\"])" + re.escape(name) + r"(?![\w'\"])", text) is not None`` for
    an identifier ``name`` (the own-call test of :func:`_roots`), from the places ``str.find``
    gives: a pattern that starts with a look-behind has no literal to skip to, and was tried at
    every character of the caller's text (0.1 s per pass over the paper's 199 files).  ``\w`` is
    ``str.isalnum()`` or ``_``; the text's ends pass both look-arounds."""
    size = len(name)
    at = text.find(name)
    while at >= 0:
        before = text[at - 1:at]
        after = text[at + size:at + size + 1]
        if not (before.isalnum() or before in _NOT_BEFORE_BARE or after.isalnum() or after in _NOT_AFTER_BARE):
            return True
        at = text.find(name, at + 1)
    return False


# (_bare_word: the characters other than letters and digits that may not stand just before or
# just after the name; "" is the text's end, which may)
_NOT_BEFORE_BARE = ("_", ".", "'", '"')
_NOT_AFTER_BARE = ("_", "'", '"')


def _calls_local(func: ast.AST, local: ast.AST, lines: list[str] | None) -> bool:
    """Does ``func`` call its nested function ``local`` by its bare name outside ``local``'s own
    text (read off the file's lines; a walk of the tree without them)?"""
    name = local.name
    if lines is None or getattr(func, "end_lineno", None) is None:
        return any(isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == name
                   for node in walk(func))
    segment = "\n".join(lines[func.lineno - 1:local.lineno - 1] + lines[local.end_lineno:func.end_lineno])
    return re.search(r"(?<![\w.])" + re.escape(name) + r"\s*\(", segment) is not None


def _own_call(func: ast.AST, name: str) -> bool:
    """Does ``func`` name ``name`` as the flow builder would inline it: ``self.name``,
    ``cls.name``, ``super().name`` or a bare ``name`` (not ``network.name``)?"""
    for node in walk(func):
        if isinstance(node, ast.Attribute):
            if node.attr == name and (
                    (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))
                    or (isinstance(node.value, ast.Call) and isinstance(node.value.func, ast.Name)
                        and node.value.func.id == "super")):
                return True
        elif isinstance(node, ast.Name) and node.id == name:
            return True
    return False


def _reachable(module: "ModuleStructure", infos: dict[str, ClassInfo]) -> set[tuple[str, str]] | None:
    """(owner, function) pairs that some ``forward`` (or the module's own statements) reaches;
    None when the file has no forward.

    Calls are read off the identifiers a function mentions (the same summary the trigger
    prefilter uses), so the graph over-approximates: a word naming a method of any class in
    the file, or a module-level function, is an edge.  Over-approximating keeps recall; the
    point is only to drop code that nothing in a forward mentions at all.
    """
    by_name: dict[str, list[tuple[str, ast.AST]]] = {}
    for owner, info in infos.items():
        for name, func in info.methods.items():
            by_name.setdefault(name, []).append((owner, func))
    for name, func in module.names.functions.items():
        by_name.setdefault(name, []).append(("<module>", func))
    todo = [(owner, func) for owner, func in by_name.get("forward", ()) if owner != "<module>"]
    if not todo:
        return None
    # A module's other public methods that call its own layers are entry points too: timm's
    # forward_intermediates runs the stem and blocks for feature extraction, called by the
    # user's code.  A sampling method that calls the model itself (``self(idx)``) or plain
    # functions is not model structure.
    inherited = _inherited_forward(infos)
    modules = {owner for owner, _ in todo} | inherited
    top = module.classes["<module>"].functions.get(TOP_LEVEL)
    if top is not None:  # a script's own statements run too: what they call is live code
        todo.append(("<module>", top))
    seen: set[tuple[str, str]] = set()

    def close(todo: list) -> None:
        while todo:
            owner, func = todo.pop()
            key = (owner, func.name)
            if key in seen:
                continue
            seen.add(key)
            # (the words that name a function, in one C-level intersection: the closure does not
            # depend on the order its edges are followed in)
            for word in by_name.keys() & module.mention(func):
                for callee in by_name[word]:
                    if (callee[0], word) not in seen:
                        todo.append(callee)

    close(todo)
    # A method __init__ stores in an attribute, uncalled (jukebox's ``self.qkv, self.attn,
    # self.attn_mask = {0: (self.factored_qkv, self.dense_attn, ...), ...}[attn_func]``), runs
    # where a forward calls that attribute (``self.attn(q, k, v)``): reached as that call is.
    stored = [(owner, info) for owner, info in infos.items()
              if (owner, "forward") in seen and "__init__" in info.methods and len(info.methods) > 2
              and any((owner, name) not in seen for name in info.methods)]
    if stored:
        close([found for owner, info in stored for found in _stored_methods(module, owner, info, seen)])
    # A module function __init__ stores in an attribute, uncalled (flash-cosine-sim-attention's
    # ``self.attn_fn = non_cosine_sim_attn_fn`` under an ``if``), runs where a reached method
    # calls that attribute (``self.attn_fn(q, k, v, ...)``): reached as that call is.
    close(_stored_functions(module, infos, seen))
    # Then the entry points; only a method the forwards do not reach already needs its body
    # walked (the forwards themselves were most of that walking).
    close([(owner, func) for owner, info in infos.items() if owner in modules
           for name, func in info.methods.items()
           if (owner, func.name) not in seen and not name.startswith("_") and name not in INIT_NAMES
           and not info.bindings.keys().isdisjoint(module.mention(func)) and _calls_own_layer(func, info)])
    # A module's public method over tensors it is handed (``def attend(self, q, k, v, mask)``),
    # which uses the module for its settings alone, is the module's API as a public module-level
    # function is the file's (below): its code runs where other files call it.
    close(_tensor_methods(module, infos, modules, seen))
    close(_alternative_forwards(module, infos, modules, seen))
    # A module whose forward is a package base's (srforge's ``Model.forward`` routing its
    # inputs to ``self._forward(...)``) runs the private hooks that forward calls: those of
    # its methods that run the module's own layers are entry points too.
    if inherited and module.package is not None:
        for owner in inherited:
            info = infos[owner]
            private = [(name, func) for name, func in info.methods.items()
                       if name[:1] == "_" and name[:2] != "__" and (owner, name) not in seen]
            called = _base_forward_calls(info, module.package) if private else ()
            close([(owner, func) for name, func in private
                   if name in called and _calls_own_layer(func, info)])
    # A class derived from torch's Module alone that defines no forward cannot be called as a
    # module (Module.forward raises): it is used through its other public methods (a rotary
    # table holding its cos/sin caches, ``rope.rotate(q, k)`` in a sibling's attention).  One
    # that takes arguments and that nothing in the file calls runs in other files' forwards,
    # as a public module-level function does (below).  Its own ``__call__``, when it defines
    # one, is what calling the module runs (PixGS's rotary module, handed to a block's forward
    # as ``rope`` and called ``rope(q, k, ...)``): its forward in all but name.
    close([(owner, func) for owner, info in infos.items()
           if "forward" not in info.methods and info.bases and all(b in _TORCH_MODULE for b in info.bases)
           for name, func in info.methods.items()
           if (owner, name) not in seen and (name == "__call__" or not name.startswith("_")) and name not in INIT_NAMES
           and len(func.args.args) > 1 and not _called_in(module, name)])
    # A processor's ``__call__`` that a module hands itself to (``self.processor(self, x)``)
    # runs that module's layers in its forward (diffusers-style attention processors).
    close([(owner, info.methods["__call__"]) for owner, info in infos.items()
           if "__call__" in info.methods and (owner, "__call__") not in seen
           and _processes(info, infos, module)])
    # A public module-level function that nothing in the file calls is the file's API for other
    # files (fairseq's apply_rotary_pos_emb, an attention function a registry names): its tensor
    # code runs in their models.
    close([("<module>", func) for name, func in module.names.functions.items()
           if ("<module>", name) not in seen and not name.startswith("_") and name not in _SCRIPT_NAMES
           and func.args.args and not _called_in(module, name)])
    return seen


# ``self.<attr>`` not called (``self.attend = self.dense_attend``): the literal first, so that the
# engine skips to each ``self``; the look-behind after it is the ``\b`` before it (no word
# character before ``self``).  Written ``\bself\.(\w+)...`` the pattern started with an
# assertion, had no literal to skip to, and was tried at every character of each ``__init__``.
_STORED = re.compile(r"self(?<!\wself)\.(\w+)\b(?!\s*\()")


def _class_table_words(info: ClassInfo | None) -> dict:
    """Dict literals the class body binds to a name (``_OPTIMIZERS = {"sgd": optim.SGD, ...}``)
    whose entries are dotted names: name -> the words of those names (as
    ModuleStructure.table_words for a module's); {} for most classes."""
    found: dict = {}
    if info is None:
        return found
    for stmt in info.node.body:
        if stmt.__class__ is not ast.Assign or len(stmt.targets) != 1 or stmt.targets[0].__class__ is not ast.Name \
                or stmt.value.__class__ is not ast.Dict:
            continue
        words = _entry_words(stmt.value, tuples=False)
        if words:
            found[stmt.targets[0].id] = frozenset(words)
    return found


def _entry_words(table: ast.Dict, tuples: bool) -> set:
    """The words of the dotted names a dict literal's entries are (with ``tuples``, also those
    inside tuple entries, a module table's ``(torch.optim.SGD, {...})``): what
    ModuleStructure.table_words and :func:`_class_table_words` read of a table."""
    words: set = set()
    for entry in table.values:
        for elt in (entry.elts if tuples and entry.__class__ is ast.Tuple else (entry,)):
            if elt.__class__ is ast.Attribute or elt.__class__ is ast.Name:
                words |= _mentions(elt, None)
    return words


def _stored_methods(module: ModuleStructure, owner: str, info: ClassInfo, seen: set) -> list:
    """The (owner, method) pairs of ``info``'s methods that its ``__init__`` assigns, uncalled,
    to an attribute (``self.attn = self.dense_attn``, or one member of a tuple or table of
    them) which a method the forwards reach already (``seen``) mentions.  A method __init__
    calls, or hands to a call (``self.apply(self._init_weights)``), is not stored."""
    init = info.methods["__init__"]
    lines = module.lines
    if lines is None or getattr(init, "end_lineno", None) is None:
        return []
    text = "\n".join(lines[init.lineno - 1:init.end_lineno])
    names = {name for name in _STORED.findall(text) if name in info.methods and (owner, name) not in seen
             and name not in INIT_NAMES}
    if not names:  # (nearly every class: a call-free text test before any walk)
        return []
    mentioned: set[str] = set()
    for (who, name) in seen:
        if who == owner and name in info.methods:
            mentioned |= module.mention(info.methods[name])
    found: list = []
    local: dict[str, list] = {}  # a local table of them first (HF jukebox's ATTENTION_MAP = {...})
    assigns = sorted((node for node in walk(init) if node.__class__ is ast.Assign), key=lambda a: a.lineno)
    for stmt in assigns:  # (in the order they run: walk's is a stack's)
        targets = [t for target in stmt.targets
                   for t in (target.elts if target.__class__ in (ast.Tuple, ast.List) else (target,))]
        stored = any(t.__class__ is ast.Attribute and t.attr in mentioned for t in targets)
        held = [t.id for t in targets if t.__class__ is ast.Name]
        if not stored and not held:
            continue
        called = {id(node.func) for node in walk(stmt.value) if node.__class__ is ast.Call}
        called |= {id(arg) for node in walk(stmt.value) if node.__class__ is ast.Call for arg in node.args}
        methods = []
        for node in walk(stmt.value):
            if (node.__class__ is ast.Attribute and node.attr in names and id(node) not in called
                    and node.value.__class__ is ast.Name and node.value.id == "self"):
                methods.append((owner, info.methods[node.attr]))
            elif stored and node.__class__ is ast.Name and node.id in local:
                methods.extend(local[node.id])
        if stored:
            found.extend(methods)
        elif methods:
            for name in held:
                local[name] = methods
    return found


def _stored_functions(module: ModuleStructure, infos: dict[str, ClassInfo], seen: set) -> list:
    """The ("<module>", function) pairs of module-level functions that a class's ``__init__``
    assigns, uncalled, to an attribute (``self.attn_fn = attend``, also one branch of a
    conditional value) which a method of that class the forwards reach already (``seen``)
    mentions: calling the attribute runs the function, so it is live code there, as
    :func:`_stored_methods` reads for the class's own methods.  A function ``__init__`` calls,
    or hands to a call (``partial(fn, ...)``, ``self.apply(fn)``), is not stored.  Substring
    tests of the ``__init__`` text come first: most files leave no module function unreached,
    and most ``__init__`` bodies name none that is."""
    functions = module.names.functions
    lines = module.lines
    if not functions or lines is None:
        return []
    unreached = [n for n in functions if ("<module>", n) not in seen]
    if not unreached:
        return []
    found: list = []
    for owner, info in infos.items():
        init = info.methods.get("__init__")
        if init is None or getattr(init, "end_lineno", None) is None:
            continue
        text = "\n".join(lines[init.lineno - 1:init.end_lineno])
        names = {n for n in unreached if n in text}  # (substring tests: a word test follows)
        if not names:
            continue
        mentioned: set[str] = set()
        for name, func in info.methods.items():
            if name not in INIT_NAMES and (owner, name) in seen:
                mentioned |= module.mention(func)
        if not mentioned:
            continue
        for stmt in _assignments(init.body):
            if not any(t.__class__ is ast.Attribute and t.attr in mentioned and t.value.__class__ is ast.Name
                       and t.value.id == "self" for t in stmt.targets):
                continue
            nodes = list(walk(stmt.value))
            handed = {id(part) for node in nodes if node.__class__ is ast.Call
                      for part in (node.func, *node.args, *(k.value for k in node.keywords))}
            found += [("<module>", functions[node.id]) for node in nodes
                      if node.__class__ is ast.Name and node.id in names and id(node) not in handed]
    return found


def _assignments(body: list):
    """The ``Assign`` statements of ``body`` and of its compound statements' blocks (not of
    nested functions or classes), found statement by statement: no walk of the expressions."""
    for stmt in body:
        kind = stmt.__class__
        if kind is ast.Assign:
            yield stmt
        elif kind in _COMPOUND:
            for block in blocks(stmt):
                yield from _assignments(block)


_COMPOUND = frozenset({ast.If, ast.For, ast.AsyncFor, ast.While, ast.With, ast.AsyncWith, ast.Try,
                       getattr(ast, "TryStar", ast.Try), ast.Match})


_TORCH_MODULE = frozenset({"torch.nn.Module", "torch.nn.modules.module.Module"})
_SCRIPT_NAMES = frozenset({"main", "train", "evaluate", "test", "run", "cli"})


def _inherited_forward(infos: dict[str, ClassInfo]) -> set[str]:
    """Module classes whose ``forward`` is another file's: a base of the package
    (``class MLFN(ReIDBackbone)``, ``ReIDBackbone.forward`` calling ``forward_head(
    forward_features(x))`` in a sibling module) runs the subclass's public methods, so those
    are entry points as a forward's own class's are.  Only classes known to be modules
    (``is_module``: a torch base, a module base of the package read by siblings.py)."""
    return {owner for owner, info in infos.items()
            if info.is_module and "forward" not in info.methods and info.bindings}


def _base_forward_calls(info: ClassInfo, package) -> set[str]:
    """The ``self.<name>`` attributes the ``forward`` of ``info``'s package bases reads (each
    base class read in the module of the package that defines it)."""
    called: set[str] = set()
    for base in info.bases:
        found = package.find(base) if package.owns(base) else None
        if found is None:
            continue
        other, name = found
        node = other.names.classes.get(name)
        if node is None:
            continue
        for item in node.body:
            if item.__class__ in _FUNCTION_DEFS and item.name == "forward":  # (each @overload too)
                called.update(n.attr for n in walk(item) if n.__class__ is ast.Attribute
                              and n.value.__class__ is ast.Name and n.value.id == "self")
    return called


_FUNCTION_DEFS = (ast.FunctionDef, ast.AsyncFunctionDef)


def _annotated_class(annotation: ast.expr | None, infos: dict[str, ClassInfo]) -> str | None:
    """The same-file class an annotation names (``attn: Attention``, ``attn: "Attention"``)."""
    if isinstance(annotation, ast.Constant) and isinstance(annotation.value, str):
        name = annotation.value.strip()
    elif isinstance(annotation, ast.Name):
        name = annotation.id
    else:
        return None
    return name if name in infos else None


def _annotated_siblings(infos: dict[str, ClassInfo], names, typer) -> dict | None:
    """Module classes of other modules of the package that a ``__call__`` of this file takes by
    an annotated parameter (hdi1's ``HiDreamAttnProcessor.__call__(self, attn:
    HiDreamAttention, ...)``, the attention class imported from its sibling module): name ->
    its ClassInfo, read there (bindings.sibling_module_class: layers typed as that module
    types them, placed at the annotation, not fixed).  Only ``__call__`` (a processor a module
    hands itself to, :func:`_processes`), only a name the file imports; None when there is
    none (most files)."""
    found: dict = {}
    for info in infos.values():
        call = info.methods.get("__call__")
        if call is None:
            continue
        args = call.args
        for arg in (*args.posonlyargs, *args.args, *args.kwonlyargs)[1:]:
            note = arg.annotation
            if note.__class__ is ast.Constant and isinstance(note.value, str):
                name = note.value.strip()
            elif note.__class__ is ast.Name:
                name = note.id
            else:
                continue
            if name in infos or name in found or name not in names.imports:
                continue
            read = sibling_module_class(names.imports[name], typer, note)
            if read is not None:
                found[name] = read
    return found or None


def _borrow_layers(infos: dict[str, ClassInfo], names, own: dict[str, ClassInfo] | None = None) -> None:
    """Layers a method reaches through a parameter annotated with a same-file ``nn.Module``
    class (a diffusers-style attention processor: ``def __call__(self, attn: Attention, x):
    query = attn.to_q(x)``): ``attn.to_q`` is typed by that class's ``__init__``, bound here as
    ``<param>.<attr>`` (graph.FlowBuilder._layer_of reads it only in a root's own body).

    Only when the name means the one object in every method of the class: each method that has
    a parameter of that name annotates it with that class, and no method assigns the name.  An
    attribute that a same-file subclass of the annotated class binds to another layer is left
    out (the object may be the subclass at run time)."""
    for info in (own or infos).values():
        params: dict[str, str | None] = {}
        for method in info.methods.values():
            args = method.args
            for arg in (*args.posonlyargs, *args.args, *args.kwonlyargs)[1:]:
                owner = _annotated_class(arg.annotation, infos) if arg.annotation is not None else None
                if arg.arg in params and params[arg.arg] != owner:
                    owner = None
                params[arg.arg] = owner
        if not any(params.values()):
            continue  # (most classes: no method takes a same-file class by annotation)
        stored = {n.id for method in info.methods.values() for n in walk(method)
                  if isinstance(n, ast.Name) and not isinstance(n.ctx, ast.Load)}
        for param, owner in params.items():
            if owner is None or param in stored or param == "self" or owner == info.name:
                continue
            other = infos[owner]
            if not other.is_module:
                continue
            subclasses = [i for i in (own or infos).values() if i is not other and owner in i.bases]
            for attr, ctors in other.bindings.items():
                if any([c.fqn for c in sub.bindings.get(attr, ())] != [c.fqn for c in ctors] for sub in subclasses):
                    continue
                info.bindings.setdefault(f"{param}.{attr}", list(ctors))


def _processes(info: ClassInfo, infos: dict[str, ClassInfo], module: "ModuleStructure") -> bool:
    """Is ``info`` a processor of a same-file module: its ``__call__`` calls layers of a module
    it takes by an annotated parameter (:func:`_borrow_layers`), and that module's class hands
    itself to a call somewhere in its methods (``self.processor(self, x)``)?"""
    call = info.methods["__call__"]
    args = call.args
    if module.foreign is not None:
        infos = {**infos, **module.foreign}
    owners = {arg.arg: _annotated_class(arg.annotation, infos)
              for arg in (*args.posonlyargs, *args.args, *args.kwonlyargs)[1:]}
    for node in walk(call):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Name) and owners.get(node.func.value.id) is not None
                and f"{node.func.value.id}.{node.func.attr}" in info.bindings):
            owner = infos[owners[node.func.value.id]]
            if any(isinstance(n, ast.Call) and any(isinstance(a, ast.Name) and a.id == "self" for a in n.args)
                   for method in owner.methods.values() for n in walk(method)):
                return True
    return False


def _called_in(module: "ModuleStructure", name: str) -> bool:
    """Is ``name`` mentioned by another function or method of the file (a helper, not API)?"""
    for structure in module.classes.values():
        for other, func in structure.functions.items():
            if other != name and name in module.mention(func):
                return True
    return False


def _stranded(owner: str, structure: ClassStructure, kept: list, reachable: set, mention) -> list[str]:
    """Reachable functions of ``structure`` that only dropped roots call: an entry point (a
    public method that runs the module's own layers, flair's ``decode``) whose callers are
    dropped (``forward_pass`` called by ``forward_loss``: no layer of their own) would be
    inlined nowhere.  Each becomes a root of its own, as if nothing in the file called it
    (one that another of them calls is inlined there instead)."""
    functions = structure.functions
    covered: set = set()

    def cover(names) -> None:  # what these reach (their helpers are inlined there)
        todo = [n for n in names if n not in covered]
        covered.update(todo)
        while todo:
            # (the words that name a function, in one C-level intersection: the covered set
            # does not depend on the order the walk takes them in)
            for word in functions.keys() & mention(functions[todo.pop()]):
                if word not in covered:
                    covered.add(word)
                    todo.append(word)

    left = [n for n in functions if n not in kept and n not in INIT_NAMES and (owner, n) in reachable]
    if left:  # (most are helpers a kept root calls itself: no walk needed for those)
        direct = set().union(*(mention(functions[r]) for r in kept)) if kept else set()
        left = [n for n in left if n not in direct]
    if not left:
        return []
    cover(kept)
    left = [n for n in left if n not in covered]
    if not left:
        return []
    called = {word for n in left for word in mention(functions[n]) if word != n}
    out = [n for n in left if n not in called]
    cover(out)
    for name in left:  # (calls in a cycle: the first of it)
        if name not in covered:
            out.append(name)
            cover([name])
    return out


def _tensor_methods(module: "ModuleStructure", infos: dict[str, ClassInfo], modules: set, seen: set) -> list:
    """The (owner, method) pairs of the file's modules (``modules``) that no forward reaches and
    that nothing in the file calls by name: public plain methods (no decorator: no static or
    class method, no autograd ``backward``) over two operands or more they must be handed
    (parameters without a default; optional ones are settings), that use their module for
    settings alone (``def attention(self, q, k, v, mask)``: no call through ``self`` -- no
    layer, method or ``self(idx)`` of a sampling loop -- and no attribute set): functions
    written as methods.  Public methods that run the module's layers are entry points
    already (:func:`_reachable`); private code nothing calls stays dead code there."""
    found = []
    for owner, info in infos.items():
        if owner not in modules:
            continue
        for name, func in info.methods.items():
            args = func.args
            if ((owner, name) in seen or name[:1] == "_" or len(args.args) - len(args.defaults) < 3
                    or func.decorator_list or args.args[0].arg != "self" or _called_in(module, name)):
                continue
            if _settings_only(func):
                found.append((owner, func))
    return found


def _alternative_forwards(module: "ModuleStructure", infos: dict[str, ClassInfo], modules: set, seen: set) -> list:
    """The (owner, method) pairs of the file's modules that no forward reaches and nothing in
    the file calls, whose parameters are their class's ``forward``'s exactly (the same names in
    the same order, the same defaults count, ``*args``/``**kwargs`` alike): a second forward
    the package's runner calls in its place (exllamav2's ``forward_torch``, the plain-torch path
    of a layer whose ``forward`` calls an extension; a ``forward_tp`` for tensor parallelism).
    Such a method takes what ``forward`` takes and computes the same layer, so its code is as
    live as ``forward``'s; one with any other signature is left to the tests above, and one that
    runs the module itself (``sample(self, x)`` over ``self(x)``) only uses it."""
    found = []
    for owner, info in infos.items():
        forward = info.methods.get("forward") if owner in modules else None
        if forward is None:
            continue
        shape, width = None, len(forward.args.args)
        for name, func in info.methods.items():
            if ((owner, name) in seen or name[:1] == "_" or func is forward or func.decorator_list
                    or len(func.args.args) != width):
                continue
            if shape is None:
                shape = _signature(forward)
            if _signature(func) != shape or _called_in(module, name) or _runs_itself(func):
                continue
            found.append((owner, func))
    return found


def _runs_itself(func: ast.AST) -> bool:
    """Does ``func`` call its own module (``self(x)``, ``self.forward(x)``)?  Then it uses the
    module (a sampling or scoring method over its output), it is not another way to compute it."""
    for node in walk(func):
        if node.__class__ is ast.Call:
            target = node.func
            if target.__class__ is ast.Attribute and target.attr in ("forward", "__call__"):
                target = target.value
            if target.__class__ is ast.Name and target.id == "self":
                return True
    return False


def _signature(func: ast.AST) -> tuple:
    """A function's parameter names in order, how many have defaults, and its ``*``/``**``
    parameters' names: what two functions must share to be called alike."""
    args = func.args
    return (tuple(a.arg for a in (*args.posonlyargs, *args.args)), len(args.defaults),
            tuple(a.arg for a in args.kwonlyargs), args.vararg and args.vararg.arg,
            args.kwarg and args.kwarg.arg)


def _settings_only(func: ast.AST) -> bool:
    """Does ``func`` use ``self`` only to read attributes (``self.head_dim``): no call through it
    (``self(x)``, ``self.proj(x)``, ``self.helper()``), no attribute stored or deleted?"""
    for node in walk(func):
        kind = node.__class__
        if kind is ast.Call:
            target = node.func
            while target.__class__ is ast.Attribute:
                target = target.value
            if target.__class__ is ast.Name and target.id == "self":
                return False
        elif kind is ast.Attribute and node.ctx.__class__ is not ast.Load and node.value.__class__ is ast.Name \
                and node.value.id == "self":
            return False
    return True


def _calls_own_layer(func: ast.AST, info: ClassInfo) -> bool:
    """Does ``func`` call a layer its class binds in ``__init__`` (``self.conv1(x)``)?"""
    for node in walk(func):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Name) and node.func.value.id == "self"
                and node.func.attr in info.bindings):
            return True
    return False


def _bind_stars(names, siblings) -> None:
    """``from ..imports import *`` of a module of the file's own package: the names it binds
    (``nn``, ``F`` from ``import torch.nn as nn`` there; its classes and functions) resolve as
    they do there, unless the file binds them itself."""
    own = names.imports.keys() | names.classes.keys() | names.functions.keys() | names.constants.keys()
    for star in names.stars:
        for name, fqn in siblings.star_names(star).items():
            if name not in own:
                names.imports.setdefault(name, fqn)


def _bind_reexports(names, siblings, text: str | None) -> None:
    """``from xuance.torch import nn, Module`` or ``from .nn_module import F``, where that module
    of the file's own package binds the name by importing it (``import torch.nn as nn``,
    ``from torch.nn import Module``): the name is what that module imported, as
    :func:`_bind_stars` reads a star import.  Read for a name the file uses as a module (an
    attribute of it is read: ``nn.Linear``, ``F.softmax``) or as a class (a capitalised name):
    an imported function of the package is the package's own, and its module is not parsed."""
    for local, fqn in list(names.imports.items()):
        if not siblings.owns(fqn):
            continue
        if not local[:1].isupper() and (text is None or not _reads_attribute(text, local)):
            continue
        target = _reexported(siblings, fqn, 0)
        if target is not None:
            names.imports[local] = target


def _reads_attribute(text: str, name: str) -> bool:
    """Does ``text`` read an attribute of ``name`` (``name.attr``, not ``other.name.attr``)?"""
    at = text.find(name + ".")
    while at >= 0:
        before = text[at - 1] if at else " "
        if not (before.isalnum() or before in "_."):
            return True
        at = text.find(name + ".", at + 1)
    return False


def _reexported(siblings, fqn: str, hops: int) -> str | None:
    """The FQN outside the package that the own-package name ``fqn`` is an import of (followed
    through up to ``siblings.MAX_HOPS`` modules of the package), else None (a definition of the
    package, a module, or nothing the module's imports bind).  A module that imports the name
    and then binds it again itself (``from torch.nn import LayerNorm`` above its own ``class
    LayerNorm``) exports its own definition: None."""
    module, _, name = fqn.rpartition(".")
    typer = siblings.typer(module) if hops <= MAX_HOPS and module else None
    target = typer.names.imports.get(name) if typer is not None else None
    if target is None or target == fqn or _module_rebinds(typer, name):
        return None
    return _reexported(siblings, target, hops + 1) if siblings.owns(target) else target


def _module_rebinds(typer, name: str) -> bool:
    """Does the module bind ``name`` itself by a class, a def or an assignment (and not only
    by its import)?  Read off its names, then its text (a sibling's typer keeps the text, not
    the tree): a ``class`` at any depth, a ``def`` or an assignment at the module's top level."""
    names = typer.names
    if name in names.classes or name in names.functions or name in names.constants:
        return True
    text = getattr(typer, "source", None)
    if text is None:
        return False
    word = re.escape(name)
    binding = re.compile(rf"^(?:[ \t]*class[ \t]+{word}\b|(?:async[ \t]+)?def[ \t]+{word}\b"
                         rf"|{word}[ \t]*(?::[^=\n]*)?=(?!=))", re.MULTILINE)
    return binding.search(text) is not None


def _generates_init(decorator: ast.expr) -> bool:
    """Is ``decorator`` ``@dataclass`` / ``@dataclasses.dataclass(...)`` without ``init=False``:
    a decorator that writes the class's ``__init__``, one that calls ``__post_init__``."""
    func = decorator.func if decorator.__class__ is ast.Call else decorator
    name = func.id if func.__class__ is ast.Name else func.attr if func.__class__ is ast.Attribute else None
    if name != "dataclass":
        return False
    return decorator.__class__ is not ast.Call or not any(
        k.arg == "init" and k.value.__class__ is ast.Constant and k.value.value is False for k in decorator.keywords)


def _dataclass_constructors(tree: ast.Module) -> None:
    """A dataclass module (``@dataclass(eq=False) class Attention(nn.Module)``) that writes no
    ``__init__`` of its own builds its layers in ``__post_init__``: the ``__init__`` the
    decorator generates stores the fields and then calls it, once, at construction -- what a
    written ``__init__`` is to every other module.  Such a ``__post_init__`` is read as the
    class's ``__init__`` (the node is renamed; its lines, and so every edit, stay where they
    are).  A ``__post_init__`` of a class no such decorator builds, or beside a written
    ``__init__`` (which the decorator keeps, and which calls nothing by itself), is left alone."""
    for cls in ast_walk(tree):
        if cls.__class__ is not ast.ClassDef or not any(_generates_init(d) for d in cls.decorator_list):
            continue
        defs = [item for item in cls.body if item.__class__ is ast.FunctionDef]
        post = next((item for item in defs if item.name == "__post_init__"), None)
        if post is not None and not any(item.name == "__init__" for item in defs):
            post.name = "__init__"


def module_structure(tree: ast.Module, package: str | None = None, text: str | None = None,
                     path: str | None = None) -> ModuleStructure:
    """The structure of one module; ``path``, with ``package``, is where the file lies in its
    package on disk: layer typing may read the package's other modules (siblings.py)."""
    if text is None or "__post_init__" in text:
        _dataclass_constructors(tree)
    names = collect_names(tree, package, local_imports=may_import_locally(text))
    module = ModuleStructure(names, text.split("\n") if text is not None else None, text=text)
    infos: dict[str, ClassInfo] = {name: collect_class(node, names) for name, node in names.classes.items()}
    patched = _patched_classes(tree, names)
    if patched:
        infos.update(patched)
    siblings = Package.of(package, path) if package and path else None
    if siblings is not None and names.stars:
        _bind_stars(names, siblings)
    if siblings is not None:
        _bind_reexports(names, siblings, text)
    if names.stars and (siblings is None or not all(siblings.owns(star + ".x") for star in names.stars)):
        star_module_package(names, tree)
    typer = LayerTyper(names, tree, module.mention, siblings)
    module.package = siblings
    typer.lines = module.lines
    typer.text = text
    typer.path = path
    for info in infos.values():
        bind_class(info, infos, names, typer)
    foreign = _annotated_siblings(infos, names, typer) if siblings is not None else None
    if foreign is not None:
        module.foreign = foreign
        _borrow_layers({**infos, **foreign}, names, own=infos)
    else:
        _borrow_layers(infos, names)
    if held_layers.wanted(text):
        held_layers.borrow_held_layers(infos, typer, text)
    # LM heads matter where logits meet a cross-entropy (ADP015): files that compute none, or
    # neither build an embedding nor name a vocabulary size to say what the vocabulary is, are
    # not searched for them (``nll_loss`` of a ``log_softmax`` is a cross-entropy too).
    if text is None or (("Embedding" in text or "num_embeddings" in text or "vocab_size" in text)
                        and ("cross_entropy" in text or "CrossEntropy" in text or "loss_function" in text
                             or "nll_loss" in text or "NLLLoss" in text)):
        mark_lm_heads(infos, names, tree, text, typer)
    all_methods = []
    for name, info in infos.items():
        structure = ClassStructure(name, info, module, functions=dict(info.methods))
        structure.roots = _roots(structure.functions, module.mention)
        if patched and name in patched:  # (each method is patched onto the class: each runs)
            structure.roots = [n for n in structure.functions if n not in INIT_NAMES]
        if module.lines is not None and len(structure.roots) < len(structure.functions):
            _namesake_roots(structure, module.mention, module.lines)
        structure.all_roots = [*structure.roots, *(n for n in structure.functions if n in INIT_NAMES)]
        module.classes[name] = structure
        all_methods.extend(info.methods.items())
    module_level = ClassStructure("<module>", None, module, functions=dict(names.functions))
    module_level.roots = _roots(module_level.functions, module.mention, extra_callers=all_methods,
                                lines=module.lines)
    top = _top_level(tree)
    if top is not None:
        module_level.functions[TOP_LEVEL] = top
        module_level.roots.append(TOP_LEVEL)
    module_level.all_roots = list(module_level.roots)
    module.classes["<module>"] = module_level
    for structure in module.classes.values():
        _closure_roots(structure, module.lines)
    if text is not None:
        _value_only_roots(module_level, text)
        _patched_method_roots(module_level, tree, text)
        for structure in module.classes.values():
            if structure is not module_level and len(structure.all_roots) < len(structure.functions):
                _value_only_methods(structure, text)
    _run_time_default_roots(module_level, names, module.lines)
    reachable = _reachable(module, infos)
    if reachable is not None:
        for owner, structure in module.classes.items():
            if patched and owner in patched:
                continue  # (methods patched onto another file's class run where it runs)
            # (a closure stored on another object, ``parent.<locals>.name``: live where its parent is)
            kept = [r for r in structure.roots if (owner, r) in reachable
                    or ("<locals>" in r and (owner, r.partition(".<locals>.")[0]) in reachable)]
            if len(kept) < len(structure.roots):
                kept += _stranded(owner, structure, kept, reachable, module.mention)
            structure.roots = kept
    words = _sequential_words(module, typer, text)
    # (the file's text looked at once, not once per class)
    lists = text is None or "ModuleList" in text or "ModuleDict" in text
    chained = {name: found for name, info in infos.items() if lists for found in [_chained_lists(info)] if found}
    if (text is None or "Sequential" in text or chained or "children()" in text or "_modules.values()" in text
            or len(words) > len(module.call_names("torch.nn.Sequential")) or _chain_subclass(infos, typer)):
        sequential = sequential_structure(module, typer, infos, tree, words, chained)
        if sequential.roots:
            module.classes[SEQUENTIAL_OWNER] = sequential
    return module


# What a forward reads to run the module's own children in order (layers.runs_children).
_CHILDREN_WORDS = frozenset({"children", "_modules"})


def _writes_self(func: ast.FunctionDef, attrs: frozenset) -> bool:
    """Does ``func`` store to ``self.<attr>`` for one of ``attrs`` (assigned, augmented, deleted)?"""
    if not attrs:
        return False
    return any(isinstance(node, ast.Attribute) and node.attr in attrs and not isinstance(node.ctx, ast.Load)
               and isinstance(node.value, ast.Name) and node.value.id == "self" for node in ast_walk(func))


def _registered_child(stmt: ast.stmt) -> ast.expr | None:
    """The value an ``__init__`` statement may register as a child module of ``self``:
    ``self.x = value`` (``nn.Module.__setattr__`` puts a module value among the children, after
    those there) or ``setattr(self, name, value)``; None for a value that is no module
    (layers.registers) and any other statement.  In an nn.Sequential subclass, such a child is
    a member forward runs in that place (``self.append(conv); self.act = nn.ReLU();
    self.append(bn)`` runs conv, ReLU, BN), so the sequence must hold it."""
    if isinstance(stmt, (ast.Assign, ast.AnnAssign)) and stmt.value is not None:
        targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
        if any(isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name) and t.value.id == "self"
               for t in targets) and registers(stmt.value):
            return stmt.value
    call = stmt.value if isinstance(stmt, ast.Expr) else None
    if (isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id == "setattr"
            and len(call.args) == 3 and isinstance(call.args[0], ast.Name) and call.args[0].id == "self"
            and registers(call.args[2])):
        return call.args[2]
    return None


def _chain_subclass(infos: dict[str, ClassInfo], typer: LayerTyper) -> bool:
    """Does a class of the file derive from a same-file or package ``nn.Sequential`` subclass
    that runs its members in order (its ``super().__init__(...)`` builds a sequence, or it
    starts empty and keeps nn.Sequential's ``append``: ``LayerTyper.appends_in_order``)?"""
    return any(fqn != name and (typer.in_order_sequential(fqn) or typer.appends_in_order(fqn))
               for name, info in infos.items() for fqn in info.bases if fqn != "torch.nn.Sequential")


# A call's first argument that builds a layer (``nn.Conv2d(``) or spreads a list (``*layers``).
_LAYER_ARGUMENT = re.compile(r"\s*(?:\*|[\w.]+\()")


def _sequential_words(module: ModuleStructure, typer: LayerTyper, text: str | None) -> frozenset[str]:
    """The names this file calls to build an ``nn.Sequential``: nn.Sequential's own, and the
    same-file or package classes that are built and run like one (``LayerTyper.
    in_order_sequential``).  A class of another module of the package is only read when the file
    calls it with a layer (or ``*layers``) as its first argument."""
    words = module.call_names("torch.nn.Sequential")
    names = module.names
    extra = {name for name, cls in names.classes.items()
             if cls.bases and (typer.in_order_sequential(name) or typer.chain_kind(name) == "list")}
    # functions returning such a class they define (``Skip(torch.add)(a, b)``): a class
    # statement and a return, maybe after a docstring (call-free, before the function is read)
    extra.update(name for name, func in names.functions.items()
                 if func.body[-1].__class__ is ast.Return and func.body[-1].value.__class__ is ast.Name
                 and func.body[0].__class__ is not ast.Return and typer.factory_sequential(name) is not None)
    if text is not None and typer.package is not None:
        for local, fqn in names.imports.items():
            if not local[:1].isupper() or local in words or not typer.package.owns(fqn):
                continue
            at = text.find(local + "(")
            called = False
            while at >= 0:  # (str.find per name: one regex alternation over the text costs 10x more)
                if at == 0 or not (text[at - 1].isalnum() or text[at - 1] in "_."):
                    called = True
                    if _LAYER_ARGUMENT.match(text, at + len(local) + 1):
                        if typer.in_order_sequential(fqn):
                            extra.add(local)
                        break
                at = text.find(local + "(", at + 1)
            if called and local not in extra and typer.sibling_block(fqn) is not None:
                extra.add(local)  # a block class of the package building its members from the call's arguments
    return words | extra if extra else words


def sequential_structure(module: ModuleStructure, typer: LayerTyper, infos: dict[str, ClassInfo],
                         tree: ast.Module, words: frozenset[str] | None = None,
                         chained: dict | None = None) -> ClassStructure:
    """Every ``nn.Sequential`` the file builds, each as a flow of its own (``SEQUENTIAL_OWNER``).

    Calling a Sequential runs its members one after the other, whatever calls it and wherever
    it is built (a factory's return value, ``_make_layer``'s downsample branch, a list filled
    in a loop), so the construction itself says what runs in sequence.  Each member is a layer
    node typed by its constructor; members joined in the order the code puts them together.
    These layers run inside their container: forward cannot be edited to fuse them, so the
    findings are reported but not fixable (:attr:`adopter.match.Match.in_container`).
    """
    if words is None:
        words = module.call_names("torch.nn.Sequential")
    seen: list = []  # (owner, function) walked so far: a nested function's definer is among them
    for owner, func in _all_functions(tree, module.names):
        seen.append((owner, func))
        info = infos.get(owner) if owner is not None else None
        # (a subclass whose forward does not run its members in order builds no sequence; one
        # of a same-file or package subclass of nn.Sequential that runs them in order does)
        chained_base = None
        # (the bases are read first: runs_in_order walks the class's forward)
        if info is not None and func.name == "__init__" and "torch.nn.Sequential" not in info.bases:
            chained_base = next((b for b in info.node.bases if (fqn := module.names.resolve(b)) is not None
                                 and fqn != owner and (typer.in_order_sequential(fqn) or typer.appends_in_order(fqn))),
                                None)
            if chained_base is not None and not typer.in_order_sequential(module.names.resolve(chained_base)) \
                    and _writes_self(func, typer.appending_state(module.names.resolve(chained_base))):
                chained_base = None  # the base's counter written again: an append may replace a member
        skips: list = []
        builds_itself = (info is not None and func.name == "__init__"
                         and ("torch.nn.Sequential" in info.bases or chained_base is not None)
                         and runs_in_order(info.node, skips if chained_base is None else None))
        # the layer classes its forward leaves out (``if not isinstance(m, nn.MaxPool2d):``):
        # torch.nn classes only, whose members the Sequential site can tell
        skipped = frozenset(fqn for fqn in map(module.names.resolve, skips) if fqn is not None)
        if builds_itself and (len(skipped) != len(skips) or any(not fqn.startswith("torch.nn.") for fqn in skipped)):
            builds_itself = False
        chained_here = (chained or {}).get(owner) if func.name == "__init__" else None
        children = None
        if info is not None and func.name == "__init__" and not builds_itself and not chained_here:
            forward = info.methods.get("forward")
            if forward is not None and _CHILDREN_WORDS & module.mention(forward):
                children = runs_children(info.node, module.names)
        if not builds_itself and not chained_here and children is None and not words & module.mention(func):
            continue  # builds no Sequential (a factory it calls is walked on its own)
        hook = None
        if chained_here:
            rows_here = frozenset(a for a in chained_here if a.endswith(NESTED_ROWS))
            row_lists = _row_lists(func, rows_here) if rows_here else frozenset()

            def hook(stmt, env, _typer=typer, _chained=chained_here, _names=module.names, _rows=rows_here,
                     _lists=row_lists):
                if _rows:
                    for attr, row in _row_calls(stmt, _rows, _lists, _names):
                        _typer.record_chained_list(row, stmt, env, attr)
                value = stmt.value
                if (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(value, ast.Call)
                        and isinstance(stmt.targets[0], ast.Attribute) and isinstance(stmt.targets[0].value, ast.Name)
                        and stmt.targets[0].value.id == "self" and stmt.targets[0].attr in _chained
                        and _names.resolve(value.func) in _CHAINED_CONTAINERS):
                    _typer.record_chained_list(value, stmt, env, stmt.targets[0].attr)
        elif children is not None:
            def hook(stmt, env, _typer=typer, _first=children):
                if isinstance(stmt, ast.Expr) and stmt.value is _first:
                    _typer.record_children(_first, stmt, env)
                elif (isinstance(stmt, (ast.Assign, ast.AnnAssign)) and stmt.value is not None
                      and registers(stmt.value)):
                    targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
                    if len(targets) == 1 and isinstance(targets[0], ast.Attribute) \
                            and isinstance(targets[0].value, ast.Name) and targets[0].value.id == "self":
                        _typer.add_child(stmt.value, env)
        elif builds_itself:
            base = chained_base or next((b for b in info.node.bases
                                         if module.names.resolve(b) == "torch.nn.Sequential"), None)
            # a base with code of its own (its forward): the container's class cannot be swapped
            why = (f"`{ast.unparse(chained_base)}` is an nn.Sequential subclass with its own code: giving the "
                   f"container another class would drop it") if chained_base is not None else ""

            def hook(stmt, env, _typer=typer, _base=base, _why=why, _skipped=skipped):
                call = stmt.value if isinstance(stmt, ast.Expr) else None
                if (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute)
                        and call.func.attr == "__init__" and isinstance(call.func.value, ast.Call)
                        and isinstance(call.func.value.func, ast.Name) and call.func.value.func.id == "super"):
                    _typer.record_super_init(call, stmt, env, _base, _why, _skipped)
                else:
                    child = _registered_child(stmt)
                    if child is not None:
                        _typer.add_child(child, env)
        class_env = _class_env(typer, info, owner) if info is not None and func.name != "__init__" else None
        if owner is None and hook is None:
            class_env = _definer_closure(typer, infos, seen, func) or class_env
        typer.function_env(func, owner if func.name == "__init__" else None, class_env=class_env, record=True,
                           hook=hook, cls_name=owner)
    looping: dict[str, bool] = {}
    for owner, info in infos.items():
        # a subclass handing its base's __init__ the blocks the base loops over to build a
        # Sequential (``super().__init__([(in, out, nn.BatchNorm1d(out), nn.ReLU()), ...])``)
        init = info.methods.get("__init__")
        base = next((infos[b] for b in info.bases if b in infos and b != owner), None) if init is not None else None
        base_init = base.methods.get("__init__") if base is not None else None
        if base_init is None:
            continue
        if base.name not in looping:
            looping[base.name] = bool(words & module.mention(base_init)) and _loops_over_parameter(base_init)
        if not looping[base.name]:
            continue

        def hook(stmt, env, _typer=typer, _init=base_init, _owner=base.name):
            call = stmt.value if isinstance(stmt, ast.Expr) else None
            if (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute) and call.func.attr == "__init__"
                    and isinstance(call.func.value, ast.Call) and isinstance(call.func.value.func, ast.Name)
                    and call.func.value.func.id == "super"):
                _typer.instantiate_base(_init, _owner, call, env)
        typer.function_env(init, owner, cls_name=owner, hook=hook)
    top = [s for s in tree.body if not isinstance(s, _DEFINITIONS)]
    if top and any(isinstance(n, ast.Name) and n.id in words or isinstance(n, ast.Attribute) and n.attr in words
                   for s in top for n in walk(s)):
        typer._walk(top, {}, 0, True, None)
    outputs = _sequential_outputs(typer.sites, infos)
    inputs = _sequential_inputs(typer.sites, infos)
    if outputs or inputs:
        for info in infos.values():
            for attr, ctors in info.bindings.items():
                ctors.extend(_output_ctors(ctors, outputs) + _input_ctors(ctors, inputs))
    structure = ClassStructure(SEQUENTIAL_OWNER, ClassInfo(SEQUENTIAL_OWNER, ast.ClassDef(
        name=SEQUENTIAL_OWNER, bases=[], keywords=[], body=[], decorator_list=[], type_params=[])), module)
    structure.info.is_module = True
    for number, site in enumerate(typer.sites):
        flow = sequential_flow(site, f"seq{number}", structure.info, outputs, inputs)
        if flow is None:
            continue
        name = f"seq{number}"
        structure.roots.append(name)
        structure._flows[name] = flow
        structure._words[name] = frozenset({name})
    return structure


MODULE_LIST = "torch.nn.ModuleList"


def _loops_over_parameter(func) -> bool:
    """Does the function loop (``for x in p:``) over one of its own parameters?"""
    args = func.args
    params = {a.arg for a in (*args.posonlyargs, *args.args, *args.kwonlyargs)}
    return any(isinstance(n, ast.For) and isinstance(n.iter, ast.Name) and n.iter.id in params
               for n in ast_walk(func))


MODULE_DICT = "torch.nn.ModuleDict"
_CHAINED_CONTAINERS = frozenset({MODULE_LIST, MODULE_DICT})


def _chained_lists(info: ClassInfo) -> frozenset[str]:
    """The attributes whose members ``forward`` applies in order (``for m in self.blocks: x =
    m(x)``, layers.chain_loop), when ``__init__`` binds them to an ``nn.ModuleList``; also an
    ``nn.ModuleDict``'s members run in its order (``for m in self.layers.values(): x = m(x)``,
    ``for _, m in self.layers.items(): x = m(x)``, the key read nowhere in the loop)."""
    forward = info.methods.get("forward")
    if forward is None:
        return frozenset()
    found = set()
    for stmt in forward.body:
        if stmt.__class__ is not ast.For:
            continue
        it, kind = stmt.iter, MODULE_LIST
        loop = stmt
        if (it.__class__ is ast.Call and not it.args and not it.keywords and it.func.__class__ is ast.Attribute
                and it.func.attr in ("values", "items")):
            kind, it = MODULE_DICT, it.func.value
            if stmt.iter.func.attr == "items":
                target = stmt.target
                if not (target.__class__ is ast.Tuple and len(target.elts) == 2
                        and all(e.__class__ is ast.Name for e in target.elts)):
                    continue
                key = target.elts[0].id
                if key == target.elts[1].id or any(
                        n.__class__ is ast.Name and n.id == key for s in stmt.body for n in ast_walk(s)):
                    continue
                loop = ast.For(target=target.elts[1], iter=it, body=stmt.body, orelse=stmt.orelse)
            else:
                loop = ast.For(target=stmt.target, iter=it, body=stmt.body, orelse=stmt.orelse)
        if not (it.__class__ is ast.Attribute and it.value.__class__ is ast.Name and it.value.id == "self"):
            continue
        ctors = info.bindings.get(it.attr, ())
        if not (ctors and all(c.fqn == kind for c in ctors)):
            continue
        if chain_loop(loop):
            found.add(it.attr)
        elif kind == MODULE_LIST and _runs_rows_in_order(stmt):
            found.add(it.attr + NESTED_ROWS)
    return frozenset(found)


# The mark ``_chained_lists`` puts after an attribute whose members are themselves lists that
# forward runs in order, each one after the other (``for stage in self.stages: for layer in
# stage: x = layer(x)``).
NESTED_ROWS = "[]"


def _runs_rows_in_order(loop: ast.For) -> bool:
    """Is ``loop`` ``for row in <outer>: for m in row: x = m(x)``: its body one loop over the
    row that chains the row's members (layers.chain_loop)?  Then every row runs its members in
    order on the running value, and the rows one after the other, as nested nn.Sequentials
    would; a row's member pairs are pairs as one level's are."""
    if loop.orelse or loop.target.__class__ is not ast.Name or len(loop.body) != 1:
        return False
    inner = loop.body[0]
    return (inner.__class__ is ast.For and inner.iter.__class__ is ast.Name and inner.iter.id == loop.target.id
            and chain_loop(inner))


def _row_lists(init: ast.FunctionDef, attrs: frozenset[str]) -> frozenset[str]:
    """The local names whose list ``__init__`` hands to ``self.<attr> = nn.ModuleList(<name>)``
    for a nested-rows attribute: what the code appends to those names become its rows."""
    out = set()
    for node in ast_walk(init):
        if (node.__class__ is ast.Assign and len(node.targets) == 1 and node.targets[0].__class__ is ast.Attribute
                and node.targets[0].value.__class__ is ast.Name and node.targets[0].value.id == "self"
                and node.targets[0].attr + NESTED_ROWS in attrs and node.value.__class__ is ast.Call
                and len(node.value.args) == 1 and node.value.args[0].__class__ is ast.Name):
            out.add(node.value.args[0].id)
    return frozenset(out)


def _row_calls(stmt: ast.stmt, attrs: frozenset[str], lists: frozenset[str], names: ModuleNames) -> tuple:
    """The ``nn.ModuleList(...)`` rows ``stmt`` puts into a nested-rows attribute: the
    elements of ``self.<attr> = nn.ModuleList([row, ...])`` (or of a comprehension's element),
    or the row of ``<list>.append(row)`` / ``self.<attr>.append(row)``.  Each with the attribute."""
    rows: list = []
    attr = None
    if (stmt.__class__ is ast.Assign and len(stmt.targets) == 1 and stmt.targets[0].__class__ is ast.Attribute
            and stmt.targets[0].value.__class__ is ast.Name and stmt.targets[0].value.id == "self"
            and stmt.targets[0].attr + NESTED_ROWS in attrs and stmt.value.__class__ is ast.Call
            and names.resolve(stmt.value.func) == MODULE_LIST and len(stmt.value.args) == 1):
        attr, arg = stmt.targets[0].attr, stmt.value.args[0]
        if arg.__class__ in (ast.List, ast.Tuple):
            rows = list(arg.elts)
        elif arg.__class__ is ast.ListComp:
            rows = [arg.elt]
    elif (stmt.__class__ is ast.Expr and stmt.value.__class__ is ast.Call
          and stmt.value.func.__class__ is ast.Attribute and stmt.value.func.attr == "append"
          and len(stmt.value.args) == 1 and not stmt.value.keywords):
        owner = stmt.value.func.value
        if owner.__class__ is ast.Name and owner.id in lists:
            attr = owner.id
        elif (owner.__class__ is ast.Attribute and owner.value.__class__ is ast.Name and owner.value.id == "self"
              and owner.attr + NESTED_ROWS in attrs):
            attr = owner.attr
        rows = [stmt.value.args[0]] if attr is not None else []
    return tuple((attr, row) for row in rows
                 if row.__class__ is ast.Call and names.resolve(row.func) == MODULE_LIST)


def _class_env(typer: LayerTyper, info: ClassInfo, owner: str) -> dict:
    """The ``self.<attr>`` layer values ``__init__`` leaves (``self._norm_layer``)."""
    cached = typer.class_envs.get(owner)
    if cached is None:
        init = info.methods.get("__init__")
        env = typer.function_env(init, owner, cls_name=owner) if init is not None else {}
        cached = typer.class_envs[owner] = {k: v for k, v in env.items() if k.startswith("self.")}
    return cached


def _definer_closure(typer: LayerTyper, infos: dict, seen: list, func) -> dict | None:
    """The names' values a function defined in another function's body sees there (a block
    builder ``def make_block(prenorm): return nn.Sequential(Linear(d, d), Activation(d))`` in
    ``__init__``, after ``Linear = nn.Linear`` and ``Activation = lambda n: ...``): the
    definer's, at the end of its body (a closure reads its names when it runs), less the
    function's parameters; None for a function of the module or a class."""
    definer = next(((o, f) for o, f in reversed(seen[:-1]) if any(s is func for s in f.body)), None)
    if definer is None:
        return None
    d_owner, d_func = definer
    d_info = infos.get(d_owner) if d_owner is not None else None
    d_class_env = _class_env(typer, d_info, d_owner) if d_info is not None and d_func.name != "__init__" else None
    env = typer.function_env(d_func, d_owner if d_func.name == "__init__" else None, class_env=d_class_env,
                             cls_name=d_owner)
    return layer_closure(func, env)


def _all_functions(tree: ast.Module, names: ModuleNames | None = None):
    """Every function of the module, methods and functions defined in functions too."""
    return module_functions(tree, names, nested=True)


# OUTPUT_OF (layers.py) is also given to a same-file ``nn.Sequential`` subclass whose last
# member is a Conv2d (a separable convolution: depth-wise, then a 1x1 Conv2d); the BatchNorm
# after it folds into that last member, which the kernel reaches through nn.Sequential's loop.



def _sequential_outputs(sites, infos: dict[str, ClassInfo]) -> dict[str, str]:
    """Same-file ``nn.Sequential`` subclasses (that keep nn.Sequential's forward) whose
    ``super().__init__(...)`` ends, on every way through the code, in one member of one layer
    class: class name -> that layer's constructor (followed through such classes)."""
    last: dict[str, str] = {}
    for site in sites:
        if site.base is None:
            continue
        owner = next((info for info in infos.values() if any(b is site.base for b in info.node.bases)), None)
        if owner is None or OWN_CALL & owner.methods.keys():
            continue
        graph = site.graph
        if len(graph.frontier) != 1 or -1 in graph.frontier:
            continue
        built = graph.members[next(iter(graph.frontier))][0]
        fqns = {b.fqn for b in built if isinstance(b, Built) and not b.conditional and not b.unlike and not b.table}
        if len(fqns) == 1 and len(built) == len([b for b in built if isinstance(b, Built)]):
            last[owner.name] = fqns.pop()
    resolved: dict[str, str] = {}
    for name, fqn in last.items():
        seen = {name}
        while fqn in last and fqn not in seen:
            seen.add(fqn)
            fqn = last[fqn]
        if fqn not in last and fqn.startswith("torch.nn."):
            resolved[name] = fqn
    return resolved


# A member that is itself an nn.Sequential (written in place, or returned by a same-file
# factory: ``nn.Sequential(embedding(dim), nn.GELU())`` with ``embedding`` returning
# ``nn.Sequential(Fourier(dim), nn.Linear(...))``) outputs its own last member's output.
NESTED_OUTPUT_KINDS = OUTPUT_KINDS | {"torch.nn.Linear"}


def _nested_outputs(built: tuple, attr: str, stmt, expr: ast.expr, qualname: str, container) -> list[Ctor]:
    """``adopter.output_of.<layer>`` for a Sequential member that is an ``nn.Sequential`` whose
    last member is, on every way through its construction, that layer: reported, not fixed (the
    layer sits inside the nested container, built where the member is written or in a factory)."""
    out = []
    for b in built:
        last = _last_member_kind(b, NESTED_OUTPUT_KINDS) if isinstance(b, Built) else None
        if last is None:
            continue
        out.append(Ctor(attr, OUTPUT_OF + last, (), (), False, stmt, span(expr), qualname, via=b.via or b.fqn,
                        conditional=b.conditional, container=container, unlike=(
                            f"the member's output is its last layer's, a {last.rsplit('.', 1)[-1]} inside a nested "
                            f"nn.Sequential: the kernel would take over that layer inside the container")))
    return out


def _sequential_inputs(sites, infos: dict[str, ClassInfo]) -> dict[str, Built]:
    """Same-file ``nn.Sequential`` subclasses (that keep nn.Sequential's forward) whose
    ``super().__init__(...)`` starts, on every way through the code, with one BatchNorm (one of
    ``INPUT_KINDS``, built unconditionally): class name -> that member.  What runs before a call
    of such a class runs into that BatchNorm (``class BNReLU(nn.Sequential)`` after a conv)."""
    first: dict[str, Built] = {}
    for site in sites:
        if site.base is None:
            continue
        built = first_input(site.graph)
        if built is None:
            continue
        owner = next((info for info in infos.values() if any(b is site.base for b in info.node.bases)), None)
        if owner is None or OWN_CALL & owner.methods.keys():
            continue
        first[owner.name] = built
    return first


def _input_ctors(ctors: list[Ctor], inputs: dict[str, Built]) -> list[Ctor]:
    """The BatchNorm an ``nn.Sequential`` subclass runs first (``_sequential_inputs``), for each
    constructor of such a class: reported, not fixed (the norm sits inside the container)."""
    return [replace(c, fqn=inputs[c.fqn].fqn, args=inputs[c.fqn].args, kwargs=inputs[c.fqn].kwargs, via=c.fqn,
                    unlike=(f"`{c.fqn}` runs its first member, a {inputs[c.fqn].fqn.rsplit('.', 1)[-1]}, on its "
                            f"input: the kernel would take over that member inside the container"))
            for c in ctors if c.fqn in inputs and not c.table]


def _nested_inputs(built: tuple, attr: str, stmt, expr: ast.expr, qualname: str, container) -> list[Ctor]:
    """The BatchNorm a Sequential member that is an ``nn.Sequential`` runs first on every way
    through its construction (bindings._first_member): reported, not fixed."""
    out = []
    for b in built:
        first = _first_member(b) if isinstance(b, Built) else None
        if first is None:
            continue
        out.append(Ctor(attr, first.fqn, first.args, first.kwargs, False, stmt, span(expr), qualname,
                        via=b.via or b.fqn, conditional=b.conditional, container=container, unlike=(
                            f"the member runs its first layer, a {first.fqn.rsplit('.', 1)[-1]} inside a nested "
                            f"nn.Sequential, on its input: the kernel would take over that layer inside the container")))
    return out


def _output_ctors(ctors: list[Ctor], outputs: dict[str, str]) -> list[Ctor]:
    return [replace(c, fqn=OUTPUT_OF + outputs[c.fqn], args=(), kwargs=(), via=c.fqn)
            for c in ctors if c.fqn in outputs and not c.table]


def sequential_flow(site: SequentialSite, name: str, info: ClassInfo,
                    outputs: dict[str, str] | None = None, inputs: dict[str, Built] | None = None) -> Flow | None:
    """The flow of one Sequential construction, its members bound in ``info`` as
    ``<name>[i]``; None when fewer than two members run in a row."""
    graph = site.graph
    if len([e for e in graph.edges if e[0] != -1]) == 0:
        return None
    stmt = span(site.stmt)
    container = span(site.container)
    qualname = f"{SEQUENTIAL_OWNER}.{name}"
    nodes: list[Node] = []
    out: list[list] = []

    def new(**fields) -> Node:
        node = Node(id=len(nodes), func=qualname, **fields)
        nodes.append(node)
        out.append([])
        return node

    entry = new(kind="entry")
    source = Ref(f"{name}:in", "x")
    ids: dict[int, int] = {-1: entry.id}
    outs: dict[int, Ref] = {-1: source}
    for index, (built, expr) in enumerate(graph.members):
        attr = f"{name}[{index}]"
        ctors = [Ctor(attr, b.fqn, b.args, b.kwargs, b.table, stmt, span(expr), qualname, via=b.via,
                      unlike=b.unlike or site.unlike, container=container)
                 for b in built if isinstance(b, Built)]
        if outputs:
            ctors += _output_ctors(ctors, outputs)
        if inputs:
            ctors += _input_ctors(ctors, inputs)
        ctors += _nested_outputs(built, attr, stmt, expr, qualname, container)
        ctors += _nested_inputs(built, attr, stmt, expr, qualname, container)
        info.bindings[attr] = ctors or [Ctor(attr, "?", (), (), False, stmt, span(expr), qualname,
                                             container=container)]
        value_in = Ref(f"{name}:in{index}", "x")
        preds = sorted(i for i, j in graph.edges if j == index)
        copies = []
        for pred in preds:
            copy = new(kind="copy", args=(outs[pred],), outs=(value_in,), uses=frozenset({outs[pred].key}),
                       defs=frozenset({value_in.key}))
            out[ids[pred]].append((copy.id, None))
            copies.append(copy.id)
        value_out = Ref(f"{name}:out{index}", "x")
        layer = f"self.{attr}"
        # a member chosen at run time (ACT2FN[config.act], get_activation(name)) may compute each
        # activation it can be, as the same layer bound to an attribute may (graph._canonical)
        maybe = TABLE.layer_ops(ctors)[1] if any(c.table for c in ctors) else frozenset()
        node = new(kind="layer", op=layer, layer=layer, types=frozenset(c.fqn for c in info.bindings[attr]),
                   args=(value_in,), outs=(value_out,), uses=frozenset({value_in.key, layer}),
                   defs=frozenset({value_out.key}), span=span(expr), stmt=None, maybe=maybe)
        for copy in copies:
            out[copy].append((node.id, None))
        ids[index] = node.id
        outs[index] = value_out
    exit_node = new(kind="exit")
    for end in graph.frontier:
        out[ids[end]].append((exit_node.id, None))
    return Flow(qualname, nodes, out, entry.id, exit_node.id)


def lookups(func: ast.AST, names, lines: list[str] | None) -> frozenset[str]:
    """``module.*`` for each ``getattr(module, name)`` in ``func`` with a run-time ``name`` and a
    module the file imports (``getattr(torch.optim, optimizer)``): the word that stands for any
    class of that module (ModuleStructure.call_names), since the text names none of them.
    Read off the function's lines (most ``getattr`` calls test an object's attribute by a
    literal name: no walk of the tree for them)."""
    if lines is not None and getattr(func, "end_lineno", None) is not None:
        text = "\n".join(lines[func.lineno - 1:func.end_lineno])
        candidates = _LOOKUP.findall(text)
    else:
        candidates = [ast.unparse(node.args[0]) for node in ast_walk(func)
                      if node.__class__ is ast.Call and node.func.__class__ is ast.Name and node.func.id == "getattr"
                      and len(node.args) == 2 and node.args[1].__class__ is not ast.Constant]
    return _module_words(candidates, names)


def _module_words(candidates, names) -> frozenset[str]:
    """``module.*`` for each dotted text of ``candidates`` that names a module the file imports
    (what :func:`lookups` and :func:`dict_lookups` read off a function's lines)."""
    found = set()
    for dotted in candidates:
        try:
            expr = ast.parse(dotted, mode="eval").body
        except SyntaxError:
            continue
        if expr.__class__ in (ast.Name, ast.Attribute):
            module = names.resolve(expr)
            if module is not None:
                found.add(module + ".*")
    return frozenset(found)


def dict_lookups(func: ast.AST, names, lines: list[str] | None) -> frozenset[str]:
    """``module.*`` for each ``module.__dict__[name]`` in ``func`` with a run-time ``name`` and
    a module the file imports (``torch.optim.__dict__[args.optimizer]``): the word for any class
    of that module, as :func:`lookups` gives for ``getattr(module, name)``.  Read off the
    function's lines."""
    if lines is None or getattr(func, "end_lineno", None) is None:
        return frozenset()
    return _module_words(_DICT_LOOKUP.findall("\n".join(lines[func.lineno - 1:func.end_lineno])), names)


def member_lookups(func: ast.AST, names) -> frozenset[str]:
    """``module.*`` for each ``inspect.getmembers(module)`` in ``func`` (a function that
    mentions it: rare, so its tree is walked): any class of that module may be called through
    the (name, value) pairs it gives, as for :func:`lookups`."""
    found = set()
    for node in ast_walk(func):
        if node.__class__ is ast.Call and len(node.args) == 1 and names.resolve(node.func) == "inspect.getmembers" \
                and node.args[0].__class__ in (ast.Name, ast.Attribute):
            module = names.resolve(node.args[0])
            if module is not None:
                found.add(module + ".*")
    return frozenset(found)


# getattr(<dotted name>, <not a string literal>: the module of a run-time lookup (lookups)
_DICT_LOOKUP = re.compile(r"(?<![\w.])([A-Za-z_][\w.]*)\.__dict__\s*\[\s*(?![\s\"'rbfu]*[\"'])")
_LOOKUP = re.compile(r"(?<![\w.])getattr\(\s*([A-Za-z_][\w.]*)\s*,\s*(?![\s\"'rbfu]*[\"'])")
