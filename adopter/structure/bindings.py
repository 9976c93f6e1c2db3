"""What each ``self.<attr>`` of a module class is bound to in ``__init__``.

A layer call in ``forward`` (``self.dropout(x)``) is only meaningful once we know that
``__init__`` did ``self.dropout = nn.Dropout(p)``.  Bindings are collected from every
branch of ``__init__`` (a layer bound differently under ``if``/``else`` keeps each
constructor), from helper methods that ``__init__`` calls, and from base classes defined in
the same file.  ``nn.ModuleList``/``nn.Sequential`` members are recorded as the element
binding ``attr[]`` so that ``for layer in self.layers: layer(x)`` resolves.
"""

from __future__ import annotations

import ast
import functools
import copy
import os
from ..records import dataclass, field, replace

from .layers import (INPUT_KINDS, MEMBERS, OUTPUT_KINDS, OUTPUT_OF, SEQUENTIAL, TABLE_SUFFIXES, Built, Key, LayerTyper,
                     SeqGraph, _Param, _param_item, _returns, _super_init)
from .module_copies import repeated_element
from .ops import RUNTIME_PARAM
from .treewalk import blocks
from .names import ModuleNames
from . import library_layers
from .torch_bases import BASES, described, inherited
from .treewalk import ast_walk

CONTAINERS = frozenset({"torch.nn.ModuleList", "torch.nn.Sequential"})
_COMPREHENSIONS = (ast.ListComp, ast.GeneratorExp)  # (module_copies.repeated_element's gate)
# The layers an ``nn.Sequential`` attribute's output is typed as when it ends in one (a Linear:
# ``self.embed = nn.Sequential(nn.LayerNorm(d), nn.Linear(d, h))`` then ``self.act(self.embed(x))``)
ATTRIBUTE_OUTPUT_KINDS = OUTPUT_KINDS | {"torch.nn.Linear"}


@dataclass(frozen=True)
class Ctor:
    """One constructor bound to an attribute.

    ``fqn`` is the constructor's fully qualified name (a local class keeps its bare name);
    ``table`` is True for activation-table lookups (``ACT2FN[config.hidden_act]``), where
    ``args`` holds the key.  ``stmt`` is the span of the assignment statement, ``call`` the
    span of the constructor expression: (line, col, end_line, end_col), cols in bytes.
    """

    attr: str
    fqn: str
    args: tuple[ast.expr, ...]
    kwargs: tuple[tuple[str, ast.expr], ...]
    table: bool
    stmt: tuple[int, int, int, int]
    call: tuple[int, int, int, int]
    func: str
    in_init: bool = True
    via: str = ""  # the factory or parameter the layer was typed through ('' for a direct call)
    conditional: bool = False  # built by one branch of ``a if c else b``
    unlike: str = ""  # why the layer is not exactly ``fqn`` (see layers.Built.unlike): not fixed
    # For a member of an ``nn.Sequential``: the span of the expression naming the container's
    # class where it is built (``nn.Sequential`` in the call, or the base of a same-file
    # subclass calling ``super().__init__(...)``): what a fix replaces to change the container.
    container: tuple[int, int, int, int] | None = None
    function: bool = False  # an activation function held as a value (layers.Built.function)
    rate: str = ""  # a same-file dropout module's rate attribute (layers.Built.rate)
    # Built by the constructor of a base class in another module of the package
    # (_inherit_sibling): a container it builds is that module's, whose own check reports
    # the pairs inside it.
    sibling: bool = False


@dataclass
class ClassInfo:
    name: str
    node: ast.ClassDef
    methods: dict[str, ast.FunctionDef | ast.AsyncFunctionDef] = field(default_factory=dict)
    bindings: dict[str, list[Ctor]] = field(default_factory=dict)
    bases: list[str] = field(default_factory=list)
    is_module: bool = False
    bound: bool = False
    # self.<attr> -> whether every assignment the class makes to it is a number (filled once,
    # on first use, by the flow builder's rank pass: graph.FlowBuilder._scalar_attribute)
    scalar_attrs: dict[str, bool] | None = None
    # self.<attr> -> the int every construction in the file leaves it holding, or None
    # (graph.FlowBuilder._fixed_axis, filled on first use)
    fixed_axes: dict | None = None
    # self.<attr> -> the bool literal the file only ever assigns it (graph.FlowBuilder._literal_flag)
    literal_flags: dict[str, bool | None] | None = None
    # (graph.FlowBuilder._keyed_ctors, filled on first use) self.<attr> -> the ``__init__``
    # parameter it holds (``self.activation_type = activation``), and each ``__init__`` statement
    # inside ``if <param> == "<key>"`` branches -> the (param, key, taken) tests around it
    key_attrs: dict | None = None
    key_branches: dict | None = None
    # each ``__init__`` statement in a branch of a setting's ``if`` -> its tests (setting_branches)
    setting_branches: dict | None = None
    setting_gates: frozenset | None = None  # the lead words of those tests (setting_branches._gate_words)
    setting_attrs: dict | None = None  # self.<attr> -> its text in a setting, or None (setting_branches)
    # self.<attr> -> the callables a call of it may be: the default of the ``__init__`` parameter
    # it holds (graph.FlowBuilder._attr_choices, filled on first use)
    attr_choices: dict | None = None
    # self.<attr> -> how a call of it applies its first argument to the others (``self.run =
    # lambda f, x: f(x)``; :func:`_appliers`): the call computes ``first(*others)``
    appliers: dict[str, Applier] | None = None
    # forward's parameters that every module of the package's folder constructing this class
    # passes a layer for (``self.attention(q, k, v, dropout=self.dropout)`` in a sibling): the
    # parameter -> the binding (``<dropout>``) holding what is passed (:func:`_passed_in`)
    passed_in: dict[str, str] | None = None
    # the file's constructions of the class: a function returning (call, caller, owner) for each
    # (LayerTyper.callers; set by bind_class when the file's text is known, else None)
    constructions: object = None


# torch's function that calls its first argument on the other arguments and returns what that
# returns (activation checkpointing: the call is recomputed in the backward pass, the value is
# the call's), with the keywords it keeps for itself; the others go to the function.
APPLY_FIRST = {"torch.utils.checkpoint.checkpoint": frozenset(
    {"use_reentrant", "preserve_rng_state", "context_fn", "determinism_check", "debug"})}


@dataclass(frozen=True)
class Applier:
    """A callable that returns ``f(*args)`` for a call ``applier(f, *args)``: ``arity`` the
    number of ``args`` it takes (None: any), ``own`` keywords it keeps for itself (None: a call
    with keywords is not read through it)."""

    arity: int | None
    own: frozenset | None


# nn.Module's methods that bind a child module under a name (``register_module`` is
# ``add_module`` under another name, torch >= 1.13)
_ADDS_NAMED = frozenset({"add_module", "register_module"})


def span(node: ast.AST) -> tuple[int, int, int, int]:
    return (node.lineno, node.col_offset, node.end_lineno or node.lineno, node.end_col_offset or 0)


def _ctor_of(value: ast.expr, names: ModuleNames) -> tuple[str, tuple, tuple, bool] | None:
    """Describe a direct constructor expression (``nn.Linear(...)``, ``ACT2FN[key]``)."""
    if isinstance(value, ast.Call):
        fqn = names.resolve(value.func)
        if fqn is None:
            return None
        kwargs = tuple((k.arg, k.value) for k in value.keywords if k.arg is not None)
        return fqn, tuple(value.args), kwargs, fqn.rsplit(".", 1)[-1] in ("get_activation",)
    if isinstance(value, ast.Subscript):
        fqn = names.resolve(value.value)
        if fqn is not None and fqn.rsplit(".", 1)[-1] in TABLE_SUFFIXES:
            return fqn, (value.slice,), (), True
    return None


def module_key(expr: ast.expr) -> str | None:
    """The name ``add_module`` is given, or a ``self._modules[...]`` lookup reads: a string
    literal as it is; a literal prefix joined to one computed part (``"bn_end" + str(i)``,
    ``f"bn_end{i}"``, ``"bn_end%d" % i``) as the family ``bn_end{}``; None for any other expression."""
    if isinstance(expr, ast.Constant) and isinstance(expr.value, str):
        return expr.value
    if (isinstance(expr, ast.BinOp) and isinstance(expr.op, ast.Add) and isinstance(expr.left, ast.Constant)
            and isinstance(expr.left.value, str) and expr.left.value and isinstance(expr.right, ast.Call)
            and isinstance(expr.right.func, ast.Name) and expr.right.func.id == "str"
            and len(expr.right.args) == 1 and not expr.right.keywords):
        return expr.left.value + "{}"
    if (expr.__class__ is ast.BinOp and expr.op.__class__ is ast.Mod and expr.left.__class__ is ast.Constant
            and expr.left.value.__class__ is str and expr.left.value[-2:] in ("%d", "%s", "%i")
            and expr.left.value.count("%") == 1 and len(expr.left.value) > 2
            and expr.right.__class__ not in (ast.Tuple, ast.Dict)):
        return expr.left.value[:-2] + "{}"  # "conv%d" % i
    if (isinstance(expr, ast.JoinedStr) and len(expr.values) == 2 and isinstance(expr.values[0], ast.Constant)
            and expr.values[0].value and isinstance(expr.values[1], ast.FormattedValue)
            and expr.values[1].format_spec is None):
        return expr.values[0].value + "{}"
    return None


def _module_dict_item(target: ast.expr, out: dict) -> str | None:
    """``attr.key`` for ``self.<attr>["key"] = ...`` where ``self.<attr>`` is bound to an
    ``nn.ModuleDict``; None otherwise (a run-time key, another container, a plain dict)."""
    if not (isinstance(target, ast.Subscript) and isinstance(target.slice, ast.Constant)
            and isinstance(target.slice.value, str) and target.slice.value.isidentifier()):
        return None
    attr = _self_attr(target.value)
    if attr is None or not any(c.fqn == "torch.nn.ModuleDict" for c in out.get(attr, ())):
        return None
    return f"{attr}.{target.slice.value}"


def _submodule_member(target: ast.expr, out: dict) -> str | None:
    """``attr.name`` for ``self.<attr>.<name> = ...`` where ``self.<attr>`` is bound (earlier in
    ``__init__``) to a same-file module or a torch layer: the assignment sets (or replaces) that
    module's submodule, so ``self.<attr>.<name>(x)`` calls what is assigned.  None otherwise (a
    deeper path, an attribute of anything else)."""
    if target.__class__ is not ast.Attribute:
        return None
    attr = _self_attr(target.value)
    if attr is None or not out.get(attr) or any(c.fqn == "?" for c in out[attr]):
        return None
    return f"{attr}.{target.attr}"


def _self_attr(target: ast.expr) -> str | None:
    if target.__class__ is ast.Attribute and target.value.__class__ is ast.Name and target.value.id == "self":
        return target.attr
    return None


def collect_class(cls: ast.ClassDef, names: ModuleNames) -> ClassInfo:
    info = ClassInfo(name=cls.name, node=cls)
    for stmt in cls.body:
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
            info.methods[stmt.name] = stmt
        elif (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name)
              and isinstance(stmt.value, ast.Name) and stmt.value.id in info.methods):
            # ``forward = _forward`` in the class body: the name is that method (torchvision-style
            # ResNets that keep ``_forward`` for subclasses); a later ``def`` of it replaces it.
            info.methods[stmt.targets[0].id] = info.methods[stmt.value.id]
    for base in cls.bases:
        fqn = names.resolve(base)
        if fqn:
            info.bases.append(fqn)
    return info


def bind_class(info: ClassInfo, classes: dict[str, ClassInfo], names: ModuleNames,
               typer: LayerTyper | None = None) -> None:
    """Fill ``info.bindings`` from ``__init__`` (inherited from local bases first)."""
    if info.bound:
        return
    info.bound = True
    typer = typer or LayerTyper(names)
    seen: set[str] = set()
    for base in info.bases:
        if base in classes and base != info.name:
            base_info = classes[base]
            bind_class(base_info, classes, names, typer)
            rebound = _passed_to_base(info, base_info, names, typer)
            for attr, ctors in base_info.bindings.items():
                info.bindings.setdefault(attr, []).extend(rebound.get(attr, ctors))
            for mname, method in base_info.methods.items():
                info.methods.setdefault(mname, method)
            info.is_module = info.is_module or base_info.is_module
        elif base in BASES or typer.library and described(base):
            # nn.TransformerEncoderLayer: torch's constructor built norm1, dropout1, ... and
            # the subclass calls them and the inherited _ff_block (structure/torch_bases.py)
            _inherit(info, base, names, typer)
        elif typer.package is not None and typer.package.owns(base) and _inherit_sibling(info, base, typer):
            pass
        elif base.startswith("torch.nn") or base.endswith(("Module", "PreTrainedModel", "Layer")):
            info.is_module = True
    init = info.methods.get("__init__")
    if init is not None:
        own: dict[str, list[Ctor]] = {}
        _walk_init(init, info, names, own, seen, 0, typer, {})
        for attr, ctors in own.items():
            # Rebinding in the subclass's __init__ replaces the base's constructor.
            info.bindings[attr] = ctors
        if typer.library:
            _held_members(info, typer)
        statements = _statements(init.body)
        appliers = _appliers(statements, info, names)
        if appliers:
            info.appliers = appliers
        for attr, method in _lambda_methods(init, statements).items():
            if attr not in info.methods and all(c.fqn == "?" for c in info.bindings.get(attr, ())):
                info.bindings.pop(attr, None)
                info.methods[attr] = method
    if typer.lines is not None:
        _passed_in(info, typer)
        # (a partial, not a lambda closing over info: info would hold itself, cyclic garbage
        # after every analysis; test_engine_gc)
        info.constructions = functools.partial(typer.callers, info.name)


def _held_members(info: ClassInfo, typer: LayerTyper) -> None:
    """``self.backbone = torchvision.models.resnet50()`` (a described library class,
    library_layers): the members that class's constructor binds, reached as
    ``self.backbone.conv1``, are ``backbone.conv1`` here: built by the library, so reported,
    not fixed.  Only an attribute bound once, to one such class.  (A same-file class held the
    same way is not read: every ``self.encoder = Encoder(config)`` of a transformers file would
    then carry its members' bindings, a tenth more analysis time for no site.)"""
    for attr, ctors in list(info.bindings.items()):
        # (built by a described factory -- ``via`` its name --: a class constructed directly
        # may be handed anything, its arguments are not all kept on the Ctor)
        if len(ctors) != 1 or "." in attr or "[" in attr or ctors[0].fqn == "?" or not ctors[0].via:
            continue
        fqn = ctors[0].fqn
        held = _library_class(fqn) if fqn.startswith(library_layers.PREFIXES) else None
        text = "\n".join(typer.lines[info.node.lineno - 1:info.node.end_lineno]) if typer.lines is not None else None
        if held is None or not held.is_module:
            continue
        why = f"built by the constructor of {fqn} (held in `self.{attr}`), not here"
        for sub, subctors in held.bindings.items():
            if "." not in sub and "[" not in sub and f"{attr}.{sub}" not in info.bindings \
                    and not library_layers.holder_changed(text, "self." + attr, sub):
                info.bindings[f"{attr}.{sub}"] = [replace(c, unlike=c.unlike or why) for c in subctors]


def _plain_super_init(info: ClassInfo, base: str | None = None) -> bool:
    """Does the subclass's ``__init__`` hand the described library base only arguments that
    leave its described members as they are (library_layers.PLAIN_KEYWORDS, any positional)?
    The base's own leading parameters may be written as keywords (``block=Bottleneck,
    layers=[...]``: what a positional argument may be), and a keyword whose documented default
    is None may pass None or the subclass's own parameter left at a None default
    (``norm_layer=norm_layer`` with ``norm_layer=None`` in the signature, never rebound):
    at its default the base builds what its description says."""
    init = info.methods.get("__init__")
    for stmt in init.body if init is not None else ():
        call = _super_init(stmt)
        if call is not None:
            keywords = call.keywords
            if base is not None and keywords and not all(k.arg in library_layers.PLAIN_KEYWORDS for k in keywords):
                leading, none = library_layers.class_parameters(base)
                keywords = [k for k in keywords if k.arg not in leading
                            and not (k.arg in none and _none_default(k.value, init))
                            and not (k.arg is None and _untouched_kwargs(k.value, init))]
            return library_layers.plain_arguments(call.args, keywords, library_layers.MAX_CLASS_POSITIONAL)
    return True


def _untouched_kwargs(value: ast.expr, init) -> bool:
    """Is ``value`` (spread as ``**value``) ``init``'s own ``**kwargs`` parameter, read nowhere
    else in ``init`` and never bound or changed there?  At its default it is empty: the base gets
    no keyword from it (``super().__init__(block=..., layers=[...], **kwargs)``)."""
    kwarg = init.args.kwarg
    if value.__class__ is not ast.Name or kwarg is None or value.id != kwarg.arg:
        return False
    return sum(n.__class__ is ast.Name and n.id == value.id for n in ast_walk(init)) == 1


def _none_default(value: ast.expr, init) -> bool:
    """Is ``value`` None, or a parameter of ``init`` defaulting to None that ``init`` never
    rebinds?"""
    if value.__class__ is ast.Constant:
        return value.value is None
    if value.__class__ is not ast.Name:
        return False
    args = init.args
    positional = args.posonlyargs + args.args
    pairs = list(zip(positional[len(positional) - len(args.defaults):], args.defaults))
    pairs += [(a, d) for a, d in zip(args.kwonlyargs, args.kw_defaults) if d is not None]
    if not any(a.arg == value.id and d.__class__ is ast.Constant and d.value is None for a, d in pairs):
        return False
    return not any(n.__class__ is ast.Name and n.id == value.id and n.ctx.__class__ is not ast.Load
                   for n in ast_walk(init))


def _library_class(fqn: str) -> ClassInfo | None:
    """The bound description of a library class (library_layers), or None."""
    found = library_layers.find(fqn)
    if found is None or found[1] not in found[0].names.classes:
        return None
    typer, name = found
    node = typer.names.classes.get(name)
    if not isinstance(node, ast.ClassDef):
        return None
    held = collect_class(node, typer.names)
    bind_class(held, {}, typer.names, typer)
    held.is_module = True
    return held


def _passed_in(info: ClassInfo, typer: LayerTyper) -> None:
    """Layers that other modules of the package pass for ``forward``'s callable parameters.

    ``def forward(self, query, key, value, mask=None, dropout=None)`` calling ``dropout(p)``:
    the file says nothing of what ``dropout`` is.  The modules beside it in its folder that
    import the class, bind an instance in ``__init__`` and call it passing ``self.<attr>``
    for the parameter (the Annotated Transformer's split into ``single.py`` and
    ``multi_head.py``) say what it is there: when every such call passes a layer of one
    kind, the parameter holds that layer (recorded as the binding ``<dropout>``).  Its
    constructor is in another file: reported, not fixed.  Read only for a parameter
    defaulting to None that the forward calls (a cheap look at its text first)."""
    forward = info.methods.get("forward")
    if forward is None or not forward.body:
        return
    params = [a.arg for a in forward.args.args[1:]]
    defaults = forward.args.defaults
    none = {a.arg for a, d in zip(forward.args.args[len(forward.args.args) - len(defaults):], defaults)
            if isinstance(d, ast.Constant) and d.value is None}
    if not none.intersection(params):  # (no parameter defaulting to None: none wanted, no text joined)
        return
    text = "\n".join(typer.lines[forward.body[0].lineno - 1:forward.end_lineno])
    wanted = [(index, name) for index, name in enumerate(params) if name in none and _called(name, text)]
    if not wanted:
        return
    passed: dict[str, list] = {}
    # the classes of this file that bind an instance and call it (the Annotated Transformer's
    # MultiHeadAttention beside its ScaledDotProductAttention module, in one file)
    classes = typer.names.classes
    for cls_name in (classes.defined() if hasattr(classes, "defined") else list(classes)):
        node = classes.get(cls_name)
        if cls_name != info.name and isinstance(node, ast.ClassDef) \
                and not _passes_layers(node, typer, info.name, wanted, passed):
            return
    package = typer.package
    files = []
    if package is not None and getattr(typer, "path", None) is not None:
        folder, here = os.path.split(os.path.abspath(typer.path))
        fqn = f"{package.package}.{here[:-3]}.{info.name}"
        try:
            files = sorted(os.listdir(folder))
        except OSError:
            return
    for file in files:
        if not file.endswith(".py") or file == here or file == "__init__.py":
            continue
        other = package.typer(f"{package.package}.{file[:-3]}")
        if other is None or info.name not in (getattr(other, "source", "") or "") \
                or fqn not in other.names.imports.values():
            continue
        for cls_name in other.names.classes.defined():
            node = other.names.classes.get(cls_name)
            if isinstance(node, ast.ClassDef) and not _passes_layers(node, other, fqn, wanted, passed):
                return
    for _, name in wanted:
        layers = passed.get(name)
        if not layers or len({b.fqn for b in layers}) != 1:
            continue
        attr = f"<{name}>"
        where = span(forward.args.args[params.index(name) + 1])
        info.bindings[attr] = [Ctor(attr, layers[0].fqn, (), (), layers[0].table, where, where, "forward",
                                    via=name, unlike=f"`{name}` is a layer the module's callers pass in "
                                                     f"(its constructor is not in this class)")]
        info.passed_in = info.passed_in or {}
        info.passed_in[name] = "self." + attr


def _called(name: str, text: str) -> bool:
    r"""``re.search(rf"(?<![\w.]){name}\(", text)`` for an identifier ``name``, without a pattern
    made (and compiled) per name: ``name(`` not written after a word character or a dot
    (``\w`` is ``str.isalnum()`` or ``_``)."""
    needle = name + "("
    at = text.find(needle)
    while at >= 0:
        if at == 0 or not (text[at - 1].isalnum() or text[at - 1] in "_."):
            return True
        at = text.find(needle, at + 1)
    return False


def _passes_layers(cls: ast.ClassDef, typer: LayerTyper, fqn: str, wanted: list, passed: dict) -> bool:
    """Record, for each wanted (index, parameter) of ``fqn``'s forward, the layers ``cls``
    passes for it in every call of its instances of ``fqn``; False when a call passes it
    something that is no layer of this class's ``__init__`` (nothing is read then)."""
    init = next((m for m in cls.body if isinstance(m, ast.FunctionDef) and m.name == "__init__"), None)
    if init is None:
        return True
    bound: dict[str, ast.expr] = {}
    instances = set()
    for stmt in ast_walk(init):
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1:
            attr = _self_attr(stmt.targets[0])
            if attr is None:
                continue
            bound[attr] = stmt.value
            if isinstance(stmt.value, ast.Call) and typer.names.resolve(stmt.value.func) == fqn:
                instances.add(attr)
    if not instances:
        return True
    for node in ast_walk(cls):
        if not (isinstance(node, ast.Call) and _self_attr(node.func) in instances):
            continue
        for index, name in wanted:
            given = next((k.value for k in node.keywords if k.arg == name), None)
            if given is None and index < len(node.args) and not any(isinstance(a, ast.Starred) for a in node.args):
                given = node.args[index]
            if given is None:
                continue  # the default (None): the forward's other path
            attr = _self_attr(given)
            value = bound.get(attr) if attr is not None else None
            layers = [b for b in typer.values(value, {}) if isinstance(b, Built) and not b.table] if value is not None else []
            if not layers:
                return False
            passed.setdefault(name, []).extend(layers)
    return True


def _applier(expr: ast.expr, names: ModuleNames, depth: int = 0) -> Applier | None:
    """How ``expr`` applies its first argument to the others: a lambda whose body calls its
    first parameter on the others in order (``lambda f, x: f(x)``, ``lambda f, *a: f(*a)``),
    torch's checkpoint, or a conditional expression each of whose choices is one (the same
    arity where they fix one)."""
    if isinstance(expr, ast.IfExp) and depth < 4:
        one, other = _applier(expr.body, names, depth + 1), _applier(expr.orelse, names, depth + 1)
        if one is None or other is None:
            return None
        if one.arity is not None and other.arity is not None and one.arity != other.arity:
            return None
        own = None if one.own is None or other.own is None else one.own | other.own
        return Applier(one.arity if one.arity is not None else other.arity, own)
    if isinstance(expr, ast.Lambda):
        args = expr.args
        params = [a.arg for a in args.args]
        body = expr.body
        if args.posonlyargs or args.kwonlyargs or args.defaults or args.kwarg or not params \
                or not (isinstance(body, ast.Call) and isinstance(body.func, ast.Name) and body.func.id == params[0]):
            return None
        passed = [a.id if isinstance(a, ast.Name) else None for a in body.args]
        if args.vararg is not None:
            if body.keywords or passed[-1:] != [None] or not isinstance(body.args[-1], ast.Starred) \
                    or not (isinstance(body.args[-1].value, ast.Name) and body.args[-1].value.id == args.vararg.arg):
                return None
            if passed[:-1] != params[1:]:
                return None
            return Applier(None, None)
        if body.keywords or passed != params[1:]:
            return None
        return Applier(len(params) - 1, None)
    if isinstance(expr, (ast.Name, ast.Attribute)):
        own = APPLY_FIRST.get(names.resolve(expr) or "")
        if own is not None:
            return Applier(None, own)
    return None


def _appliers(statements: list, info: ClassInfo, names: ModuleNames) -> dict[str, Applier]:
    """The attributes ``__init__`` (its ``statements``) assigns once, to a callable that applies
    its first argument to the others (:func:`_applier`): OpenNMT's ``self.maybe_ckpt =
    checkpoint if ckpt else lambda f, x: f(x)``, then ``self.maybe_ckpt(self.w_1, x)`` is
    ``self.w_1(x)``; and the methods whose body returns their first parameter called on the
    others."""
    out: dict[str, Applier] = {}
    for stmt in statements:  # (every class's __init__: exact type tests, the cheapest first)
        if type(stmt) is not ast.Assign:
            continue
        kind = type(stmt.value)
        if not (kind is ast.Lambda or kind is ast.IfExp
                or ((kind is ast.Name or kind is ast.Attribute) and names.resolve(stmt.value) in APPLY_FIRST)):
            continue
        attr = _self_attr(stmt.targets[0]) if len(stmt.targets) == 1 else None
        if attr is not None:
            applier = _applier(stmt.value, names)
            if applier is not None:
                out[attr] = applier
    if out:  # (rare) each assigned once
        assigned: dict[str, int] = {}
        for stmt in statements:
            if isinstance(stmt, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
                for target in stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]:
                    for node in ast_walk(target):
                        if (attr := _self_attr(node)) is not None:
                            assigned[attr] = assigned.get(attr, 0) + 1
        out = {attr: applier for attr, applier in out.items() if assigned.get(attr) == 1}
    for name, method in info.methods.items():
        body = method.body
        last = body[-1]
        if type(last) is not ast.Return or type(last.value) is not ast.Call or body[2:] \
                or name in out or method.decorator_list:
            continue
        if body[1:] and not (isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)):
            continue
        args = method.args
        if not args.args or args.args[0].arg != "self":
            continue
        lam = ast.Lambda(args=ast.arguments(posonlyargs=args.posonlyargs, args=args.args[1:], vararg=args.vararg,
                                            kwonlyargs=args.kwonlyargs, kw_defaults=args.kw_defaults,
                                            kwarg=args.kwarg, defaults=args.defaults), body=body[-1].value)
        applier = _applier(lam, names)
        if applier is not None:
            out[name] = applier
    return out


def _lambda_methods(init: ast.FunctionDef, statements: list | None = None) -> dict[str, ast.FunctionDef]:
    """``self.mlpf = lambda x: m.dropout(m.c_proj(m.act(m.c_fc(x))))`` in ``__init__``
    (minGPT), with ``m = self.mlp`` before it: ``self.mlpf(x)`` in forward runs the lambda's
    body on the layers, as a method would.  Returned as a method ``def mlpf(self, x): return
    self.mlp.dropout(...)`` (the closure's names that ``__init__`` assigns once to an attribute
    of ``self`` read as that attribute; positions stay those of the lambda's text), for each
    attribute ``__init__`` assigns once, to a lambda with plain parameters."""
    statements = _statements(init.body) if statements is None else statements
    if not any(isinstance(s, ast.Assign) and isinstance(s.value, ast.Lambda) for s in statements):
        return {}
    assigned: dict[str, list[ast.expr]] = {}
    aliases: dict[str, list[ast.expr]] = {}
    for stmt in statements:
        if not isinstance(stmt, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            continue
        targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
        for target in targets:
            for node in ast_walk(target):
                if (attr := _self_attr(node)) is not None:
                    assigned.setdefault(attr, []).append(stmt.value if target is node else None)
                elif isinstance(node, ast.Name):
                    aliases.setdefault(node.id, []).append(stmt.value if target is node else None)
    out: dict[str, ast.FunctionDef] = {}
    for attr, values in assigned.items():
        if len(values) != 1 or not isinstance(values[0], ast.Lambda):
            continue
        lam = values[0]
        args = lam.args
        if args.vararg or args.kwarg or args.kwonlyargs or args.posonlyargs or args.defaults:
            continue
        params = {a.arg for a in args.args}
        closure = {name: vals[0] for name, vals in aliases.items()
                   if name not in params and len(vals) == 1 and _self_attr(vals[0]) is not None}
        body = _Closure(closure).visit(copy.deepcopy(lam.body))
        self_arg = ast.copy_location(ast.arg("self"), lam)
        func = ast.FunctionDef(
            name=attr,
            args=ast.arguments(posonlyargs=[], args=[self_arg, *copy.deepcopy(args.args)], vararg=None,
                               kwonlyargs=[], kw_defaults=[], kwarg=None, defaults=[]),
            body=[ast.copy_location(ast.Return(value=body), lam.body)], decorator_list=[], returns=None,
            type_params=[])
        out[attr] = ast.fix_missing_locations(ast.copy_location(func, lam))
    return out


def _passed_to_base(info: ClassInfo, base_info: ClassInfo, names: ModuleNames, typer: LayerTyper) -> dict:
    """The base's ``self.attr = param`` bindings that the subclass's ``super().__init__(...)``
    passes a value for (uni2ts's ``GatedLinearUnitFeedForward(FeedForward)`` passes its own
    ``activation=F.silu`` default where the base's default is ``F.gelu``), typed in the
    subclass's constructor; the other inherited bindings keep the base's types."""
    own = next((n for n in info.node.body if isinstance(n, ast.FunctionDef) and n.name == "__init__"), None)
    base_init = base_info.methods.get("__init__")
    if own is None or base_init is None:
        return {}
    stmt = next((s for s in own.body if _super_init(s) is not None), None)
    call = _super_init(stmt) if stmt is not None else None
    if call is None or not (call.args or call.keywords) or any(isinstance(a, ast.Starred) for a in call.args):
        return {}
    positional = [a.arg for a in base_init.args.posonlyargs + base_init.args.args][1:]
    passed = dict(zip(positional, call.args))
    passed.update((k.arg, k.value) for k in call.keywords if k.arg is not None)
    stored = {}
    for node in base_init.body:  # self.attr = param, at the top level of the base's __init__
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.value, ast.Name) \
                and node.value.id in passed:
            attr = _self_attr(node.targets[0])
            if attr is not None and attr in base_info.bindings:
                stored[attr] = node.value.id
    if not stored:
        return {}
    reassigned = {n.id for n in ast_walk(base_init) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    env = typer.function_env(own, info.name, cls_name=info.name)
    out: dict = {}
    for attr, param in stored.items():
        if param not in reassigned:
            _record(attr, passed[param], stmt, "__init__", typer, env, names, out, info.node)
    return {attr: ctors for attr, ctors in out.items() if all(c.fqn != "?" for c in ctors)}


_SIBLING_BASES: set = set()  # sibling base classes being read now


def _sibling_class(typer: LayerTyper, fqn: str, place):
    """``(module, name, class node)`` for the class ``fqn`` another module of the package
    defines, the node a copy whose every line is ``place(name)``'s (this file has no text for
    it); None when no such class is found."""
    found = typer.package.find(fqn)
    if found is None:
        return None
    other, name = found
    node = other.names.classes.get(name) if other is not typer else None
    if not isinstance(node, ast.ClassDef):
        return None
    at = place(name)
    node = copy.deepcopy(node)
    for sub in ast_walk(node):
        if "lineno" in sub._attributes:
            sub.lineno, sub.col_offset = at.lineno, at.col_offset
            sub.end_lineno, sub.end_col_offset = at.end_lineno, at.end_col_offset
    return other, name, node


def _inherit_sibling(info: ClassInfo, base: str, typer: LayerTyper) -> bool:
    """The layers a base class of another module of the package builds in its ``__init__``
    (min-dalle's ``DecoderSelfAttention(AttentionBase)``, ``AttentionBase`` imported from the
    encoder's module): typed as that module types them, placed at the subclass's base
    expression (this file has no text for them) and not fixed (a fix would edit the other
    module).  Its methods are not inherited: they are that module's code, checked there.
    False when the base is no class found there."""
    found = _sibling_class(typer, base, lambda name: next(
        (b for b in info.node.bases if names_resolve_text(b) == name), info.node)) if base not in _SIBLING_BASES else None
    if found is None:
        return False
    other, name, node = found
    base_info = collect_class(node, other.names)
    _SIBLING_BASES.add(base)  # (a base of the base is read the same way, never in a cycle)
    try:
        bind_class(base_info, {}, other.names, other)
    finally:
        _SIBLING_BASES.discard(base)
    if not base_info.is_module:
        return False
    why = f"built by the constructor of {base} (another module of the package), not in this file"
    for attr, ctors in base_info.bindings.items():
        info.bindings.setdefault(attr, []).extend(replace(c, unlike=c.unlike or why, sibling=True) for c in ctors)
    info.is_module = True
    return True


def sibling_module_class(fqn: str, typer: LayerTyper, at: ast.AST) -> ClassInfo | None:
    """The module class ``fqn`` that another module of the package defines, read as
    :func:`_inherit_sibling` reads a base class: its layers placed at ``at`` (this file has no
    text for them) and not fixed (its methods are that module's code, read only for what they
    call).  None when ``fqn`` is no module class found there."""
    package = typer.package
    if package is None or fqn in _SIBLING_BASES or not package.owns(fqn):
        return None
    found = _sibling_class(typer, fqn, lambda name: at)
    if found is None:
        return None
    other, name, node = found
    info = collect_class(node, other.names)
    _SIBLING_BASES.add(fqn)
    try:
        bind_class(info, {}, other.names, other)
        overridden = _subclass_overrides(other, name, info)
    finally:
        _SIBLING_BASES.discard(fqn)
    for attr in overridden:
        # (the object handed over may be that subclass at run time: attn.to_k may be its layer)
        del info.bindings[attr]
    if not (info.is_module or any(c.fqn.startswith("torch.nn.") for ctors in info.bindings.values() for c in ctors)):
        # (a class on another package's module base -- diffusers' Attention -- is known to be
        # a module by the torch layers its constructor builds: attn.to_q(x) runs that Linear)
        return None
    info.is_module = True
    why = f"built by the constructor of {name} (another module of the package), not in this file"
    for attr, ctors in info.bindings.items():
        info.bindings[attr] = [replace(c, unlike=c.unlike or why, sibling=True) for c in ctors]
    return info


def _subclass_overrides(other: LayerTyper, name: str, info: ClassInfo) -> set:
    """Attributes of the class ``name`` that a subclass in its own module binds to other layers
    (``self.to_k = nn.Identity()`` over the base's Linear), as model._borrow_layers leaves out
    the attributes a same-file subclass rebinds."""
    out: set = set()
    classes = other.names.classes
    for cname in classes.defined():
        sub = classes.get(cname) if cname != name else None
        if not isinstance(sub, ast.ClassDef) or not any(
                (b.__class__ is ast.Name and b.id == name) or (b.__class__ is ast.Attribute and b.attr == name)
                for b in sub.bases):
            continue
        sub_info = collect_class(sub, other.names)
        bind_class(sub_info, {}, other.names, other)
        for attr, ctors in sub_info.bindings.items():
            mine = info.bindings.get(attr)
            if mine is not None and [c.fqn for c in ctors] != [c.fqn for c in mine]:
                out.add(attr)
    return out


def _inherit(info: ClassInfo, base: str, names: ModuleNames | None = None, typer: LayerTyper | None = None) -> None:
    """Bindings and methods of a described torch base class, placed at the subclass's base
    expression; the layers are torch's, built outside the file: not fixed (``unlike``).  The
    activation the subclass's ``super().__init__(...)`` hands torch's constructor is read as
    torch documents it (_torch_activation)."""
    at = next((b for b in info.node.bases if names_resolve_text(b) == base.rsplit(".", 1)[-1]), info.node)
    described = inherited(base, at)
    if described is None:
        return
    if library_layers.class_source(base) is not None and not _plain_super_init(info, base):
        info.is_module = True  # super().__init__(..., norm_layer=...): members we do not describe
        return
    names, cls = described
    base_info = collect_class(cls, names)
    bind_class(base_info, {}, names, LayerTyper(names))
    why = f"built by the constructor of {base} (inherited), not in this file"
    activation = _torch_activation(info, base_info, names, typer, why) \
        if typer is not None and "activation" in base_info.bindings else None
    for attr, ctors in base_info.bindings.items():
        if attr == "activation" and activation:
            ctors = activation
        info.bindings.setdefault(attr, []).extend(replace(c, unlike=c.unlike or why, sibling=True) for c in ctors)
    for mname, method in base_info.methods.items():
        if mname != "__init__":
            info.methods.setdefault(mname, method)
    info.is_module = True


# torch's Transformer*Layer constructors take ``activation`` as a string ("relu" or "gelu", read by
# torch.nn.modules.transformer._get_activation_fn as F.relu / F.gelu) or a callable; F.relu by default
_TORCH_ACTIVATION_STRINGS = {"relu": "torch.nn.functional.relu", "gelu": "torch.nn.functional.gelu"}


def _torch_activation(info: ClassInfo, base_info: ClassInfo, names, typer: LayerTyper, why: str) -> list | None:
    """What ``self.activation`` of a described torch Transformer*Layer holds, read off the
    subclass's ``super().__init__(...)``: torch's documented strings ("gelu" -> F.gelu, "relu"
    -> F.relu), given as a literal or as a parameter of the subclass's ``__init__`` whose
    default and every value the file's constructions pass are such strings; F.relu when no
    activation is passed.  None (left untyped) for anything else: a callable, a string not
    known here, ``*args``/``**kwargs`` that may hold one."""
    own = info.methods.get("__init__")
    base_init = base_info.methods.get("__init__")
    if own is None or base_init is None:
        return None
    stmt = next((st for st in own.body if _super_init(st) is not None), None)
    call = _super_init(stmt) if stmt is not None else None
    if call is None or any(a.__class__ is ast.Starred for a in call.args) \
            or any(k.arg is None for k in call.keywords):
        return None
    positional = [a.arg for a in base_init.args.args][1:]
    passed = dict(zip(positional, call.args))
    passed.update((k.arg, k.value) for k in call.keywords)
    expr = passed.get("activation")
    if expr is None:
        strings: tuple = ("relu",)
    elif expr.__class__ is ast.Constant:
        strings = (expr.value,)
    elif expr.__class__ is ast.Name:
        env = typer.function_env(own, info.name, cls_name=info.name)
        param = env.get(expr.id)
        if not isinstance(param, _Param):
            return None
        held = param.resolve(typer)
        if not held or not all(isinstance(v, Key) for v in held):
            return None
        strings = tuple(v.value for v in held)
    else:
        return None
    if not strings or not all(isinstance(v, str) and v in _TORCH_ACTIVATION_STRINGS for v in strings):
        return None
    at = span(expr if expr is not None else call)
    fqns = list(dict.fromkeys(_TORCH_ACTIVATION_STRINGS[v] for v in strings))
    return [Ctor("activation", fqn, (), (), False, span(stmt), at, "__init__", conditional=len(fqns) > 1,
                 unlike=why, function=True) for fqn in fqns]


def names_resolve_text(expr: ast.expr) -> str:
    """The last component of a dotted base expression (``nn.TransformerEncoderLayer``)."""
    return expr.attr if isinstance(expr, ast.Attribute) else getattr(expr, "id", "")


def _walk_init(func, info: ClassInfo, names: ModuleNames, out: dict[str, list[Ctor]], seen: set[str], depth: int,
               typer: LayerTyper, class_env: dict) -> dict:
    """Record what ``__init__`` (and the helper methods it calls) binds to ``self.<attr>``.

    Values are typed by :class:`~.layers.LayerTyper` with the names as they stand at each
    assignment: parameters with their defaults (or what the file's callers pass), locals,
    same-file factories, ``self.attr`` values bound earlier (``self._norm_layer``).
    """
    if func.name in seen or depth > 3:
        return class_env

    none_at = _known_none(func)

    def hook(stmt, env):
        kind = stmt.__class__  # (no statement type has a subclass)
        if kind is ast.AugAssign:  # self.convs += [nn.Conv2d(...)] on a ModuleList
            attr = _self_attr(stmt.target)
            if isinstance(stmt.op, ast.Add) and attr is not None and any(
                    c.fqn == "torch.nn.ModuleList" for c in out.get(attr, ())):
                _record_members(attr, stmt.value, stmt, func.name, typer, env, names, out)
            return
        if kind is ast.Assign or kind is ast.AnnAssign:
            if stmt.value is None or _is_none(stmt.value, none_at.get(id(stmt), ())):
                return  # self.dropout = None: no layer a call could run
            targets = stmt.targets if kind is ast.Assign else [stmt.target]
            for target in targets:
                attr = _self_attr(target)
                if attr is not None:
                    if len(targets) == 1:
                        # (typed once: the walk types ``self.<attr> = <value>`` again just after
                        # this hook, in the same env, and takes this answer when nothing the
                        # read depends on changed in between: LayerTyper._walk)
                        resolved = typer.resolved
                        typed = typer.values(stmt.value, env)
                        clean = typer.resolved == resolved
                        _record(attr, stmt.value, stmt, func.name, typer, env, names, out, info.node,
                                built=[v for v in typed if isinstance(v, Built)])
                    else:
                        _record(attr, stmt.value, stmt, func.name, typer, env, names, out, info.node)
                    if stmt.value.__class__ is ast.Dict:
                        _record_loss_entries(attr, stmt.value, stmt, func.name, typer, env, names, out)
                    if len(targets) == 1 and clean:
                        typer.typed = (stmt.value, env, typed, resolved)
                elif stmt.value.__class__ is ast.Call and (member := _submodule_member(target, out)) is not None:
                    # self.encoder.lm_head = nn.Linear(...): a layer built and set on a module bound
                    # before (jukebox's lyric encoder), under its path, as a ModuleDict member is
                    # (only a layer: ``self.head.weight = nn.Parameter(...)`` and tied weights bind
                    # nothing a call runs)
                    built = [v for v in typer.values(stmt.value, env)
                             if isinstance(v, Built) and v.fqn not in ("?", "torch.nn.Parameter")]
                    if built:
                        _record(member, stmt.value, stmt, func.name, typer, env, names, out, built=built)
                elif (member := _module_dict_item(target, out)) is not None:
                    # self.nets["qkv"] = nn.Linear(...) into an nn.ModuleDict bound before (robomimic):
                    # the member under its key, as a ModuleDict literal's members are
                    _record(member, stmt.value, stmt, func.name, typer, env, names, out)
                    _record(member.split(".", 1)[0] + "[]", stmt.value, stmt, func.name, typer, env, names, out)
                elif (isinstance(target, ast.Tuple) and isinstance(stmt.value, ast.Tuple)
                      and len(target.elts) == len(stmt.value.elts)):
                    # self.conv, self.bn = nn.Conv2d(...), nn.BatchNorm2d(...)
                    for element, value in zip(target.elts, stmt.value.elts):
                        attr = _self_attr(element)
                        if attr is not None:
                            _record(attr, value, stmt, func.name, typer, env, names, out)
                elif (isinstance(target, ast.Tuple) and stmt.value.__class__ in (ast.GeneratorExp, ast.ListComp)
                      and len(stmt.value.generators) == 1 and not stmt.value.generators[0].ifs):
                    # self.q, self.k, self.v, self.o = (nn.Linear(dim, dim) for _ in range(4)): each
                    # name gets one element the comprehension builds (the unpacking runs only when
                    # it builds exactly as many), so each is a layer of the element's kind
                    for element in target.elts:
                        attr = _self_attr(element)
                        if attr is not None:
                            _record(attr, stmt.value.elt, stmt, func.name, typer, env, names, out)
                elif (target.__class__ is ast.Tuple and stmt.value.__class__ is ast.Call
                      and any(_self_attr(element) is not None for element in target.elts)
                      and not any(element.__class__ is ast.Starred for element in target.elts)):
                    # self.conv, self.bn = conv_bn(c, d): each attribute holds that element of the
                    # tuples the same-file (or sibling) factory returns
                    for index, element in enumerate(target.elts):
                        attr = _self_attr(element)
                        if attr is not None:
                            built = [v for v in typer._factory_item(stmt.value, index, env, 0) if isinstance(v, Built)]
                            _record(attr, stmt.value, stmt, func.name, typer, env, names, out, built=built)
            return
        node = stmt.value
        if node.__class__ is ast.Tuple and len(node.elts) == 1:
            node = node.elts[0]  # ``self.add_module(...),``: the call, its value discarded in a tuple
        if node.__class__ is not ast.Call:
            return
        # Helper methods called from __init__ (self._build_layers()) bind layers too.
        f = node.func
        if (
            isinstance(f, ast.Attribute)
            and isinstance(f.value, ast.Name)
            and f.value.id == "self"
            and f.attr in info.methods
        ):
            env.update(_walk_init(info.methods[f.attr], info, names, out, seen, depth + 1, typer,
                                  {k: v for k, v in env.items() if k.startswith("self.")}))
        # self.add_module("name", nn.Linear(...)) (or its alias register_module) / setattr(self, "name", ...)
        elif (
            isinstance(f, ast.Attribute) and f.attr in _ADDS_NAMED and len(node.args) == 2
            and isinstance(f.value, ast.Name) and f.value.id == "self"
            and (key := module_key(node.args[0])) is not None
        ):
            # a computed name (``"bn_end" + str(i)`` in a loop) binds the family ``bn_end{}``,
            # which ``self._modules["bn_end" + str(j)]`` reads (graph._layer_of)
            _record(key, node.args[1], node, func.name, typer, env, names, out)
        elif (
            f.__class__ is ast.Name and f.id == "setattr" and len(node.args) == 3 and not node.keywords
            and node.args[0].__class__ is ast.Name and node.args[0].id == "self"
            and "setattr" not in names.imports and "setattr" not in names.functions
            and (key := module_key(node.args[1])) is not None
        ):
            # setattr(self, f"conv{i}", nn.Conv2d(...)) in a loop: the family ``conv{}``, as
            # add_module's, which ``getattr(self, f"conv{j}")`` reads (graph._layer_of)
            _record(key, node.args[2], node, func.name, typer, env, names, out)
        # self.convs.append(nn.Conv2d(...)) / self.convs.extend([...]) on an nn.ModuleList the
        # constructor bound (PointNet++'s mlp_convs / mlp_bns, GIN's lins / bns): its members
        elif (
            isinstance(f, ast.Attribute) and f.attr in ("append", "extend") and len(node.args) == 1
            and not node.keywords and (attr := _self_attr(f.value)) is not None
            and any(c.fqn == "torch.nn.ModuleList" for c in out.get(attr, ()))
        ):
            _record_members(attr, node.args[0] if f.attr == "extend" else None, node, func.name, typer, env,
                            names, out)

    seen.add(func.name)
    owner = info.name if func.name == "__init__" else None
    env = typer.function_env(func, owner, class_env=class_env, hook=hook, cls_name=info.name)
    return {k: v for k, v in env.items() if k.startswith("self.")}


def _is_none(value: ast.expr, none_names) -> bool:
    """Is ``value`` None where it is assigned (the constant, or a name known None there)?"""
    return (isinstance(value, ast.Constant) and value.value is None) or (
        isinstance(value, ast.Name) and value.id in none_names)


def _known_none(func) -> dict:
    """id(statement) -> the names that are None where it runs: the body of ``if x is None:``
    and the ``else`` of ``if x is not None:`` (``self.dropout = dropout`` there binds None)."""
    out: dict = {}
    _visit_none(func.body, frozenset(), out)  # (a module function: a nested recursive one is a cycle)
    return out


def _visit_none(body, known, out: dict) -> None:
    for stmt in body:
        if known:
            out[id(stmt)] = known
        if isinstance(stmt, ast.If):
            test = stmt.test
            name = None
            if (isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.left, ast.Name)
                    and isinstance(test.comparators[0], ast.Constant) and test.comparators[0].value is None):
                name = test.left.id
            is_none = name is not None and isinstance(test.ops[0], ast.Is)
            not_none = name is not None and isinstance(test.ops[0], ast.IsNot)
            _visit_none(stmt.body, known | {name} if is_none else known, out)
            _visit_none(stmt.orelse, known | {name} if not_none else known, out)
        elif isinstance(stmt, (ast.For, ast.While, ast.With, ast.Try)):
            for field_name in ("body", "orelse", "finalbody"):
                _visit_none(getattr(stmt, field_name, []), known, out)
            for handler in getattr(stmt, "handlers", []):
                _visit_none(handler.body, known, out)
        if known:  # a name assigned here is no longer known None after it
            known = known - {n.id for n in ast_walk(stmt) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}


def _record_positions(attr, elements, stmt, func_name, typer: LayerTyper, env: dict, out,
                      container=None, unlike: str = ""):
    """Record each element of a container's display as the layer at its position
    (``attr[0]``, ``attr[1]``, ...): an element the typer cannot type is an unknown layer there.
    ``unlike`` (when the element's own type has no reason of its own) says why such a member is
    not fixed; ``container`` is the span a Sequential's fix replaces."""
    for index, element in enumerate(elements):
        inner = [v for v in typer.values(element, env) if isinstance(v, Built)]
        if not inner:
            inner = [Built("?", (), (), False, element)]
        for b in inner:
            out.setdefault(f"{attr}[{index}]", []).append(
                Ctor(f"{attr}[{index}]", b.fqn, b.args, b.kwargs, b.table, span(stmt), span(element), func_name,
                     via=b.via, unlike=b.unlike or unlike, container=container)
            )


def _required_elsewhere(param, owner: ast.ClassDef, attr: str, typer: LayerTyper) -> bool:
    """Is ``param`` a required parameter (no default) of ``owner``'s ``__init__``, a class the
    file builds nowhere (every construction is another file's) and that calls ``self.<attr>``
    as a layer?  What it holds is then chosen where the class is built, at run time."""
    if not isinstance(param, _Param) or param.default or param.owner != owner.name \
            or getattr(param.func, "name", None) != "__init__":
        return False
    args = param.func.args
    positional = args.posonlyargs + args.args
    if any(a.arg == param.name for a in positional[len(positional) - len(args.defaults):]) \
            or any(a.arg == param.name and d is not None for a, d in zip(args.kwonlyargs, args.kw_defaults)) \
            or not any(a.arg == param.name for a in (*positional, *args.kwonlyargs)):
        return False
    return typer.calls_attr(owner, attr) and not typer.callers(owner.name)


def _record(attr, value, stmt, func_name, typer: LayerTyper, env: dict, names: ModuleNames, out, owner=None,
            built: list | None = None):
    """Record what ``self.<attr> = value`` binds (``built``: what it holds when that is not
    ``value``'s own type, one element of the tuple a factory returns)."""
    if built is None:
        built = [v for v in typer.values(value, env) if isinstance(v, Built)]
    if (built and owner is not None and isinstance(value, ast.Name) and isinstance(env.get(value.id), _Param)
            and typer.calls_attr(owner, attr)):
        # self.activation = activation, a parameter with a layer default that the class calls as
        # a layer: the file's constructions of the class may pass other layers for it
        # (pytorch-tabular's GEGLU / SwiGLU wrappers pass nn.GELU() / nn.SiLU() where the
        # default is nn.ReLU()); each is one of the values the attribute may hold at run time
        resolved = [v for v in env[value.id].resolve(typer) if isinstance(v, Built)]
        if len({v.fqn for v in resolved}) > 1:
            built = [replace(v, conditional=True) for v in resolved]
    if (not built and owner is not None and isinstance(value, ast.Name) and isinstance(env.get(value.id), _Param)
            and typer.calls_attr(owner, attr)):
        # self.feed_forward = feed_forward, called as a layer: what every call of the class passes
        # for it (calls passing different layers: each, as one the attribute may hold at run time)
        built = list(typer.passed_by_every_caller(env[value.id], mixed=True))
    if not built and owner is not None and value.__class__ is ast.Subscript and typer.calls_attr(owner, attr):
        # self.first = layers[0], called as a layer: what every caller's list holds there
        item = _param_item(value, env)
        if item is not None:
            built = list(typer.passed_by_every_caller(item))
    if not built and _number(value, env):
        # a number (``self.dropout = dropout``, a parameter whose default is ``0.0``, in the
        # branch that keeps the rate for a functional call): calling it would fail, so a call
        # of the attribute runs one of its other bindings (bio-attention's WindowAttention
        # binds nn.Dropout in one branch and the rate in the other; research33)
        return
    if not built:
        # Bound to something we cannot type (config.hidden_act, None, a parameter).  A required
        # parameter of a class the file never builds, called as a layer, is chosen by other
        # files at run time (RUNTIME_PARAM: curated-transformers' ``activation: Module``).
        fqn = RUNTIME_PARAM if owner is not None and value.__class__ is ast.Name \
            and _required_elsewhere(env.get(value.id), owner, attr, typer) else "?"
        out.setdefault(attr, []).append(
            Ctor(attr, fqn, (), (), False, span(stmt), span(value), func_name)
        )
        return
    for b in built:
        # The span of the constructor call in this statement (each branch of ``a if c else
        # b``); a layer built inside a factory keeps the factory call's span.
        call = span(b.node) if not b.via or (b.via not in names.functions and b.via not in names.lambdas) else span(value)
        out.setdefault(attr, []).append(
            Ctor(attr, b.fqn, b.args, b.kwargs, b.table, span(stmt), call, func_name, via=b.via,
                 conditional=b.conditional, unlike=b.unlike, function=b.function, rate=b.rate)
        )
        last = _last_member_kind(b, ATTRIBUTE_OUTPUT_KINDS)
        if last is not None:
            # calling the Sequential ends in its last member: its output is that layer's
            # output (a feed-forward ending in its dropout, added to the residual), which a
            # kernel would take over inside the container: reported, not fixed
            out[attr].append(Ctor(attr, OUTPUT_OF + last, (), (), False, span(stmt), call, func_name, via=b.fqn,
                                  conditional=b.conditional, unlike=(
                                      f"`self.{attr}`'s output is its last member's, a {last.rsplit('.', 1)[-1]}: "
                                      f"the kernel would take over that member inside the container")))
        first = _first_member(b)
        if first is not None:
            # calling the Sequential runs its first member on its input first (a BatchNorm, then
            # its activation: ``self.bn_act = nn.Sequential(nn.BatchNorm2d(c), nn.ReLU())``
            # after a convolution): what runs before the call runs into that BatchNorm, as for
            # a module class normalising first (LayerTyper._input_kind); reported, not fixed
            out[attr].append(Ctor(attr, first.fqn, first.args, first.kwargs, False, span(stmt), call, func_name,
                                  via=b.via or b.fqn, conditional=b.conditional, unlike=(
                                      f"`self.{attr}` runs its first member, a {first.fqn.rsplit('.', 1)[-1]}, on "
                                      f"its input: the kernel would take over that member inside the container")))
    if value.__class__ is ast.IfExp:
        # ``nn.Sequential(...) if flag else None``: None cannot be called, so a call of the
        # attribute runs the container built in the other arm; its members are that arm's
        arms = [a for a in (value.body, value.orelse) if not (a.__class__ is ast.Constant and a.value is None)]
        if len(arms) == 1:
            value = arms[0]
    described = _ctor_of(value, names)
    if described is None:
        return
    fqn = described[0]
    if fqn == "torch.nn.ModuleDict" and isinstance(value, ast.Call):
        # Each member under its key, as ``self.<attr>.<key>`` (minGPT's ``nn.ModuleDict(dict(
        # c_fc=nn.Linear(...), act=NewGELU(), ...))``): what ``self.mlp.c_fc(x)`` and
        # ``self.mlp["c_fc"](x)`` call
        members = _dict_members(value, names, typer, env)
        if not members and len(value.args) == 1 and value.args[0].__class__ is ast.Name and not value.keywords:
            # nn.ModuleDict(layers), ``layers`` a dict built in this function with string keys
            # (``layers = dict(..., final_out=nn.Linear(d, vocab))``, then ``layers["pos"] = ...``)
            members = env.get(MEMBERS + value.args[0].id) or ()
        for key, element in members:
            _record(f"{attr}.{key}", element, stmt, func_name, typer, env, names, out)
        for _, element in members:
            # ``self.<attr>[key]`` with a key chosen at run time: any member, as an element of a
            # ModuleList is (one kind when every member is that kind)
            _record(f"{attr}[]", element, stmt, func_name, typer, env, names, out)
    if fqn == "torch.nn.Sequential" and isinstance(value, ast.Call) and value.args and not any(
        isinstance(a, ast.Starred) for a in value.args
    ):
        # Calling the Sequential runs its members in order: record each position.
        _record_positions(attr, value.args, stmt, func_name, typer, env, out, container=span(value.func))
    elif value.__class__ is ast.Call and fqn in names.functions and fqn not in names.classes:
        kept = typer.builder_members(fqn, value)
        if kept:
            # a same-file helper returning its layers run in order (``Sequential(norm if post
            # else None, nn.Linear(d, vocab))``): each kept layer at its position, reported,
            # not fixed (a None dropped on some ways moves the members after it)
            _record_positions(attr, kept, stmt, func_name, typer, env, out, unlike=(
                f"`self.{attr}` is built by `{fqn}`, which runs the layers passed to it in order: rewrite by hand"))
    if (fqn == "torch.nn.ModuleList" and value.__class__ is ast.Call and value.args and not value.args[1:]
            and not value.keywords and value.args[0].__class__ in (ast.List, ast.Tuple)  # (no call: most are
            and not any(isinstance(a, ast.Starred) for a in value.args[0].elts)):       # comprehensions)
        # nn.ModuleList([conv, bn]) that forward calls by position (``self.layers[0](x)``, then
        # ``self.layers[1](x)``): each position, as a Sequential's (graph._layer_of reads a
        # literal index only while no statement of the class reorders or replaces members).
        # Reported, not fixed: the members are no Sequential's, and forward picks them by index.
        _record_positions(attr, value.args[0].elts, stmt, func_name, typer, env, out,
                          unlike=f"the members of `{attr}` (an nn.ModuleList) run by index in forward; "
                                 "rewrite it by hand")
    repeated = repeated_element(value, names.resolve, names.functions) if value.__class__ is ast.Call and value.args \
        and (value.args[0].__class__ in _COMPREHENSIONS or value.func.__class__ is ast.Name and value.args[1:]) else None
    if repeated is not None:
        # nn.ModuleList([nn.Linear(d, d) for _ in range(4)]), clones(nn.Linear(d, d), 4): each
        # position holds its own copy of the element (module_copies)
        element, count = repeated
        _record_positions(attr, [element] * count, stmt, func_name, typer, env, out,
                          unlike=f"the members of `{attr}` (copies in an nn.ModuleList) run by index in forward; "
                                 "rewrite it by hand")
        if fqn != "torch.nn.ModuleList":
            _record(f"{attr}[]", element, stmt, func_name, typer, env, names, out)
    if fqn in CONTAINERS and isinstance(value, ast.Call):
        for element in _container_elements(value):
            listed = env.get("list:" + element.id) if isinstance(element, ast.Name) else None
            if isinstance(listed, SeqGraph) and listed.members and not listed.named:
                # nn.ModuleList(convs), convs a local list filled with append/extend/+=
                elements = [b for built, _ in listed.members for b in built]
                for _, member in listed.members:
                    _record_row(attr, member, stmt, func_name, typer, env, names, out)
            else:
                elements = typer.values(element, env)
                _record_row(attr, element, stmt, func_name, typer, env, names, out)
            for b in elements:
                if isinstance(b, Built):
                    out.setdefault(attr + "[]", []).append(
                        Ctor(attr + "[]", b.fqn, b.args, b.kwargs, b.table, span(stmt), span(element), func_name,
                             via=b.via, unlike=b.unlike)
                    )


def _number(value: ast.expr, env: dict) -> bool:
    """Is ``value`` a number: an int or float literal, or a parameter (not rebound) whose
    default is one and whose annotation, if any, is ``int`` or ``float``?"""
    if value.__class__ is ast.Constant:
        return value.value.__class__ in (int, float)
    if value.__class__ is not ast.Name:
        return False
    param = env.get(value.id)
    if not isinstance(param, _Param) or param.default:
        return False
    args = getattr(param.func, "args", None)
    if args is None:
        return False
    positional = args.posonlyargs + args.args
    pairs = list(zip(positional[len(positional) - len(args.defaults):], args.defaults)) + [
        (a, d) for a, d in zip(args.kwonlyargs, args.kw_defaults) if d is not None]
    for arg, default in pairs:
        if arg.arg == value.id:
            note = arg.annotation
            return (default.__class__ is ast.Constant and default.value.__class__ in (int, float)
                    and (note is None or (note.__class__ is ast.Name and note.id in ("int", "float"))))
    return False


def _record_loss_entries(attr, value: ast.Dict, stmt, func_name, typer: LayerTyper, env: dict, names: ModuleNames,
                        out) -> None:
    """The entries of a plain dict literal bound to ``self.<attr>`` that are torch loss modules,
    each under its written-out key as ``attr.key`` (what ``self.<attr>["key"](...)`` calls, as
    for an ``nn.ModuleDict``'s members): LXMERT's ``self.loss_fcts = {"ce": CrossEntropyLoss(),
    ...}``.  A loss module holds no parameters, so a plain dict holds it as a ModuleDict would;
    other layers in a plain dict are not the module's submodules (``self.<attr>.key`` does not
    reach them), and are not recorded."""
    for key, element in zip(value.keys, value.values):
        if not (isinstance(key, ast.Constant) and isinstance(key.value, str) and key.value.isidentifier()):
            continue
        built = [b for b in typer.values(element, env) if isinstance(b, Built)]
        if built and all(b.fqn.startswith("torch.nn.") and b.fqn.endswith("Loss") for b in built):
            _record(f"{attr}.{key.value}", element, stmt, func_name, typer, env, names, out)


def _record_members(attr, listed, stmt, func_name, typer: LayerTyper, env: dict, names: ModuleNames, out) -> None:
    """Members added to the ``nn.ModuleList`` bound to ``self.<attr>``: the one appended
    (``listed`` None: the call's argument), or each element of a list literal or comprehension
    extended or added with ``+=``; recorded as the element binding ``attr[]``."""
    if listed is None:
        elements = [stmt.args[0]]
    elif isinstance(listed, (ast.List, ast.Tuple)):
        elements = list(listed.elts)
    elif isinstance(listed, (ast.ListComp, ast.GeneratorExp)):
        elements = [listed.elt]
    else:
        elements = [listed]  # a name or a call: what it is typed as (a list of layers is not)
    for element in elements:
        if isinstance(element, ast.Starred):
            continue
        _record_row(attr, element, stmt, func_name, typer, env, names, out)
        for b in typer.values(element, env):
            if isinstance(b, Built):
                out.setdefault(attr + "[]", []).append(
                    Ctor(attr + "[]", b.fqn, b.args, b.kwargs, b.table, span(stmt), span(element), func_name,
                         via=b.via, unlike=b.unlike))


def _record_row(attr, element, stmt, func_name, typer: LayerTyper, env: dict, names: ModuleNames, out) -> None:
    """A member of the ``nn.ModuleList`` bound to ``self.<attr>`` that is itself a container
    written out (``nn.ModuleList([conv, bn])``): each of its elements as the layer at that
    position of every row, ``attr[][0]``, ``attr[][1]``, ... (what ``for conv, bn in
    self.<attr>`` unpacks; graph._row_aliases).  Reported, not fixed: the layers run through
    the unpacking.  (A row that is an ``nn.Sequential`` is read as the Sequential it is built
    as, its pairs reported there.)"""
    if element.__class__ is not ast.Call or element.keywords:
        return
    args = element.args
    if len(args) != 1:
        return
    if args[0].__class__ in (ast.Dict, ast.Call) and names.resolve(element.func) == "torch.nn.ModuleDict":
        # a row that is an nn.ModuleDict written out (``nn.ModuleList(nn.ModuleDict({"q_proj":
        # nn.Linear(...), ...}) for _ in range(n))``, or appended in a loop): each member under
        # its key as ``attr[].key``, what ``layer["q_proj"]`` calls for ``layer`` a row of
        # ``self.<attr>`` (graph._dict_member), as a ModuleDict bound to an attribute records
        # ``attr.key``
        for key, value in _dict_members(element, names, typer, env):
            _record(f"{attr}[].{key}", value, stmt, func_name, typer, env, names, out)
        return
    if args[0].__class__ not in (ast.List, ast.Tuple) or names.resolve(element.func) != "torch.nn.ModuleList":
        return
    args = args[0].elts
    if not args or any(a.__class__ is ast.Starred for a in args):
        return
    _record_positions(attr + "[]", args, stmt, func_name, typer, env, out,
                      unlike=f"the layers of each member of `{attr}` run as forward unpacks them; rewrite it by hand")


class _Closure(ast.NodeTransformer):
    """Reads of the closure's names (``m``, bound once in ``__init__`` to ``self.mlp``) as the
    attribute they hold (``self.mlp``), at the name's position; a nested lambda's names are its own."""

    def __init__(self, closure: dict[str, ast.Attribute]):
        self.closure = closure

    def visit_Name(self, node):
        if isinstance(node.ctx, ast.Load) and node.id in self.closure:
            value = self.closure[node.id]
            return ast.copy_location(
                ast.Attribute(value=ast.copy_location(ast.Name("self", ast.Load()), node), attr=value.attr,
                              ctx=ast.Load()), node)
        return node

    def visit_Lambda(self, node):
        return node


def _statements(body, out: list | None = None) -> list:
    """Every statement of ``body``, those of compound statements' blocks too (not of nested
    functions or classes: their names are their own), in order: a statement, then its blocks'.
    A list filled in place, ``blocks`` asked only of the statement kinds that hold any (every
    class's ``__init__`` is read so: a generator per block and a ``blocks`` call per simple
    statement were a tenth of the binding walk's own time)."""
    if out is None:
        out = []
    for stmt in body:
        out.append(stmt)
        holds = _HOLDS_BLOCKS.get(stmt.__class__)
        if holds is None:
            holds = _HOLDS_BLOCKS[stmt.__class__] = _holds_blocks(stmt.__class__)
        if holds:
            for block in blocks(stmt):
                _statements(block, out)
    return out


# statement class -> whether :func:`_statements` reads its blocks (a compound statement's, not
# a nested function's or class's); a class without these fields has none (``blocks`` gives []).
_HOLDS_BLOCKS: dict[type, bool] = {}


def _holds_blocks(kind: type) -> bool:
    return not issubclass(kind, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and any(
        f in kind._fields for f in ("body", "orelse", "finalbody", "handlers", "cases"))


def _dict_members(call: ast.Call, names: ModuleNames, typer: LayerTyper | None = None,
                  env: dict | None = None) -> list[tuple[str, ast.expr]]:
    """The (key, value) pairs of ``nn.ModuleDict(dict(a=..., b=...))`` or ``nn.ModuleDict({"a":
    ..., "b": ...})`` whose keys are all written out (none: a computed key, or a ``**`` that is
    not the dict a same-class method returns); with ``typer``, also of ``nn.ModuleDict(self.m(...))``,
    the dict ``m`` returns (:func:`_returned_members`)."""
    if len(call.args) != 1 or call.keywords:
        return []
    return _mapping_members(call.args[0], names, typer, env, 0) or []


def _mapping_members(members: ast.expr, names: ModuleNames, typer, env, depth: int):
    """The written-out (key, value) pairs of a dict display or ``dict(k=...)`` call (a ``**``
    entry read as the members of the dict a same-class method returns), or of the dict such a
    method call returns; None when a key is not written out or a ``**`` is not read."""
    if isinstance(members, ast.Call) and isinstance(members.func, ast.Name) and members.func.id == "dict" and \
            names.resolve(members.func) is None and not members.args:
        if any(k.arg is None for k in members.keywords):
            return None
        return [(k.arg, k.value) for k in members.keywords]
    if isinstance(members, ast.Dict):
        out: dict[str, ast.expr] = {}
        for k, v in zip(members.keys, members.values):
            if k is None:
                # {**self._create_attn_projs(cfg), "gate_proj": ...}: the spread dict's members,
                # a later key replacing an earlier one as the display does
                spread = _returned_members(v, names, typer, env, depth)
                if spread is None:
                    return None
                out.update(spread)
            elif isinstance(k, ast.Constant) and isinstance(k.value, str) and k.value.isidentifier():
                out[k.value] = v
            else:
                return None
        return list(out.items())
    if members.__class__ is ast.DictComp:
        return _comprehension_members(members)
    return _returned_members(members, names, typer, env, depth)


def _comprehension_members(comp: ast.DictComp):
    """``{name: nn.Linear(d, d) for name in ("q", "k", "v")}``: one member per written-out key,
    each the value expression (built once per key, as the loop does); None for any other
    comprehension (a filter, a nested loop, a key that is not the loop name, keys not written
    out as identifier strings)."""
    if len(comp.generators) != 1:
        return None
    loop = comp.generators[0]
    if (loop.ifs or loop.is_async or loop.target.__class__ is not ast.Name or comp.key.__class__ is not ast.Name
            or comp.key.id != loop.target.id or loop.iter.__class__ not in (ast.Tuple, ast.List)):
        return None
    keys = [e.value for e in loop.iter.elts if e.__class__ is ast.Constant and isinstance(e.value, str)]
    if len(keys) != len(loop.iter.elts) or not all(k.isidentifier() for k in keys):
        return None
    members = []
    for key in dict.fromkeys(keys):
        value = _value_for_key(comp.value, loop.target.id, key)
        if value is None:
            return None
        members.append((key, value))
    return members


def _value_for_key(value: ast.expr, name: str, key: str) -> ast.expr | None:
    """The value a comprehension gives the key ``key`` of its loop name ``name``: a conditional
    value (``nn.Linear(d, d) if name != "k" else nn.Identity()``) is the branch the key's test
    takes; None when a test is not a comparison of the name with written-out strings."""
    while value.__class__ is ast.IfExp:
        taken = _key_test(value.test, name, key)
        if taken is None:
            return None
        value = value.body if taken else value.orelse
    return value


def _key_test(test: ast.expr, name: str, key: str) -> bool | None:
    """``name == "k"``, ``name != "k"``, ``name in ("q", "k")``, ``name not in [...]`` (or the
    string first) at ``name = key``; None for any other test."""
    if test.__class__ is not ast.Compare or len(test.ops) != 1:
        return None
    left, right, op = test.left, test.comparators[0], test.ops[0].__class__
    if right.__class__ is ast.Name and right.id == name and op in (ast.Eq, ast.NotEq):
        left, right = right, left
    if left.__class__ is not ast.Name or left.id != name:
        return None
    if op in (ast.Eq, ast.NotEq):
        if right.__class__ is not ast.Constant or not isinstance(right.value, str):
            return None
        return (key == right.value) == (op is ast.Eq)
    if op in (ast.In, ast.NotIn) and right.__class__ in (ast.Tuple, ast.List, ast.Set):
        if not all(e.__class__ is ast.Constant and isinstance(e.value, str) for e in right.elts):
            return None
        return any(key == e.value for e in right.elts) == (op is ast.In)
    return None


def _returned_members(call: ast.expr, names: ModuleNames, typer, env, depth: int):
    """The members of the dict that a same-class method called as ``self.m(...)`` (or a same-file
    function) returns: its one
    ``return`` of a dict display, or of a local name bound once to one (``layer_dict = {...}``)
    whose other writes are items under written-out keys (``layer_dict["q_norm"] = ...`` under an
    ``if``: a member that may be there), nothing else touching the name but reads; None
    otherwise (llm-infer's ``nn.ModuleDict(self._create_layer_dict())``)."""
    if typer is None or depth >= 3 or call.__class__ is not ast.Call:
        return None
    func = call.func
    if func.__class__ is ast.Name:
        # a same-file function: make_layer(d) returning {"q_proj": nn.Linear(d, d), ...}
        method = names.functions.get(func.id) if func.id not in names.imports else None
    elif func.__class__ is ast.Attribute and func.value.__class__ is ast.Name and func.value.id == "self":
        method = typer._method(func, env)
    else:
        return None
    if method is None:
        return None
    returned = list(_returns(method.body))
    if len(returned) != 1:
        return None
    value = returned[0].value
    if value.__class__ is ast.Name:
        name = value.id
        bound, items, read = [], [], set()
        for node in ast_walk(method):  # (a statement before the names in it)
            if node.__class__ is ast.Name and node.id == name and node.ctx.__class__ is not ast.Load \
                    and id(node) not in read:
                return None  # bound in a loop, a with, an augmented assignment, deleted
            if node.__class__ in (ast.Assign, ast.AnnAssign):
                targets = node.targets if node.__class__ is ast.Assign else [node.target]
                for target in targets:
                    if target.__class__ is ast.Name and target.id == name:
                        read.add(id(target))
                        bound.append(node.value)
                    elif target.__class__ is ast.Subscript and target.value.__class__ is ast.Name \
                            and target.value.id == name:
                        key = target.slice
                        if not (key.__class__ is ast.Constant and isinstance(key.value, str)
                                and key.value.isidentifier()):
                            return None
                        items.append((key.value, node.value))
                    elif any(n.__class__ is ast.Name and n.id == name for n in ast_walk(target)):
                        return None
            elif node.__class__ is ast.Attribute and node.value.__class__ is ast.Name and node.value.id == name:
                return None  # layer_dict.update(...), .pop(...): members not written out
        if len(bound) != 1 or bound[0] is None:
            return None
        members = _mapping_members(bound[0], names, typer, env, depth + 1)
        return None if members is None else members + items
    return _mapping_members(value, names, typer, env, depth + 1)


def _container_elements(call: ast.Call):
    for arg in call.args:
        if isinstance(arg, (ast.List, ast.Tuple)):
            yield from arg.elts
        elif isinstance(arg, (ast.ListComp, ast.GeneratorExp)):
            yield arg.elt
        else:
            yield arg


def _first_member(built: Built) -> Built | None:
    """The BatchNorm (one of ``INPUT_KINDS``) an ``nn.Sequential`` always runs first on its
    input (:func:`first_input`); else None."""
    if built.fqn != SEQUENTIAL or built.members is None:
        return None
    return first_input(built.members)


def first_input(graph: SeqGraph) -> Built | None:
    """The BatchNorm (one of ``INPUT_KINDS``) a chain of layers always runs first: its one first
    member on every way through its construction, a layer of exactly that class built
    unconditionally; else None."""
    if not graph.members:
        return None
    starts = {b for a, b in graph.edges if a == -1}
    if len(starts) != 1 or -1 in graph.frontier:
        return None  # (several first members, or a way through that adds none)
    members = graph.members[next(iter(starts))][0]
    if len(members) != 1:
        return None
    only = members[0]
    if not (isinstance(only, Built) and only.fqn in INPUT_KINDS and not only.conditional and not only.unlike
            and not only.table):
        return None
    return only


def _last_member_kind(built: Built, kinds_of: frozenset = OUTPUT_KINDS) -> str | None:
    """The layer an ``nn.Sequential``'s output always is (one of ``kinds_of``): its one
    last member on every way through its construction, of exactly that class; else None."""
    graph = built.members
    if built.fqn != SEQUENTIAL or graph is None or len(graph.frontier) != 1 or -1 in graph.frontier:
        return None
    members = graph.members[next(iter(graph.frontier))][0]
    kinds = {m.fqn for m in members if isinstance(m, Built) and not m.conditional and not m.unlike and not m.table}
    if len(kinds) != 1 or len(members) != len([m for m in members if isinstance(m, Built)]):
        return None
    kind = kinds.pop()
    return kind if kind in kinds_of else None
