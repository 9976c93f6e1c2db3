"""Constructor arguments for classes that have no Hugging Face config: research and application code.

For a class ``C`` of the analysed file, candidate argument sets (:class:`Recipe`) come from, in
order of trust:

1. **calls that build it in the project** (``callsites.py``): ``ResNet(BasicBlock, [2, 2, 2, 2])``
   in a factory function, ``GPT(GPTConfig(...))`` in a training script, a ``__main__`` block, a
   test;
2. **config objects** for an argument that is read as one (``config.n_embd``; ``facts.py``): a
   dataclass or attribute-bag class of the module that has the fields the class (and the local
   classes it hands the config to) reads, built from its defaults; failing that, an
   :class:`~adopter.verify.recipes.AttrBag` with exactly those fields, valued by their names;
3. **the signature**: defaults; required arguments guessed from their names and annotations
   (``dim``, ``heads``, ``in_planes``, ``num_classes``...), a class-valued argument (``block``)
   from the local classes that fit how it is used (``block.expansion``, called with three
   arguments), a list-valued one (``num_blocks[3]``) as a list long enough.

Every recipe is shrunk (``shrink.py``: widths, depth, image size, sequence length, vocabulary)
with the divisibility constraints restored; the sizes as written come after, as a fallback.
Values naming classes of the file stay :class:`~adopter.verify.recipes.Ref` so the patched class
is built with the patched module's classes.  When an argument cannot be inferred at all, the
:class:`NeedsFactory` reason names it.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import math
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any, Iterator

from . import callsites, facts
from .branches import ZEROS, zeros_like
from .callsites import UNKNOWN, CallSite
from .inputs import grids, sequence_of
from .recipes import AttrBag, Link, Make, Ref, describe, has_links, lookup, substitute_links
from .shrink import CHANNELS, STAGE_DEPTHS, STAGE_HEADS, STAGE_WIDTHS, is_int, kind_of, shrink, shrink_value, target
from .sizes import VERIFY, Sizes
from .unread import unread_fields

MAX_RECIPES = 10
# strings a required ``str`` config field is compared with that verify tries, in the order the
# class compares them; one string equal to none of them comes after (the side no comparison names)
MAX_COMPARED = 3


class NeedsFactory(Exception):
    """No way to infer an argument: the message names it."""


@dataclass
class Recipe:
    """One way to call a constructor: values may hold refs and makes (resolved per module)."""

    args: tuple
    kwargs: dict
    label: str
    config_param: str | None = None  # the argument that is a config object (for config variants)
    source: str = ""  # "call site file:line", "signature", ...

    def key(self) -> str:
        return repr((self.args, sorted(self.kwargs.items(), key=lambda kv: kv[0])))


@dataclass
class ClassFacts:
    """What verify knows about building one class, gathered once per class."""

    cls: type
    params: list[inspect.Parameter]
    reads: dict[str, facts.Reads]
    classes: dict[str, ast.ClassDef]
    sites: list[CallSite] = field(default_factory=list)


# ----------------------------------------------------------------------------- values by name


_BOOLISH = ("use_", "is_", "has_", "add_", "enable_", "with_", "do_", "apply_", "return_", "no_", "skip_")


GROUP_NORM_GROUPS = 32  # the group count diffusion / VQ-GAN code passes to nn.GroupNorm


def guess_value(name: str, annotation: Any, sizes: Sizes) -> list[Any]:
    """Candidate values for an argument or config field known only by its name (and annotation)."""
    lowered = name.lower().lstrip("_")
    kind = kind_of(lowered)
    if annotation is bool or lowered.startswith(_BOOLISH) or lowered in ("bias", "flash", "causal", "qkv_bias",
                                                                          "affine", "training", "bidirectional",
                                                                          "pre_norm", "prenorm", "residual"):
        return [True, False] if lowered in ("bias", "qkv_bias", "affine", "residual") else [False, True]
    if lowered in ("layer_idx", "layer_id", "layer_index", "layer_number", "idx", "index", "block_idx", "stage_idx",
                   "layer_num", "i", "depth_idx", "block_id", "stage", "layer"):
        return [0]
    if lowered == "attention_type":
        return ["global", "local"]
    if lowered in ("kernel_size", "kernel", "k", "ks", "conv_kernel"):
        return [3]
    if lowered in ("stride", "strides"):
        return [1]
    if lowered in ("padding", "pad"):
        return [1]
    if lowered in ("dilation", "groups", "expansion", "expand_ratio", "multiplier"):
        return [1]
    if lowered in ("eps", "layer_norm_eps", "epsilon", "norm_eps", "ln_eps", "rms_norm_eps", "layer_norm_epsilon"):
        return [1e-5]
    if "drop" in lowered or lowered in ("p", "rate"):
        return [0.1]
    if lowered in ("reduction", "reduction_ratio", "se_reduction", "rd_divisor"):
        return [4]
    if lowered in ("se_ratio", "rd_ratio", "se_layer_ratio"):
        return [0.25]
    if lowered in ("mlp_ratio", "ff_mult", "mult", "ffn_mult", "expansion_factor", "mlp_mult"):
        return [4]
    if lowered in ("scale", "temperature", "init_scale", "layer_scale_init_value", "gamma"):
        return [1.0]
    if lowered in ("activation", "act", "hidden_act", "activation_function", "act_fn", "nonlinearity"):
        return ["gelu", "relu"]
    if lowered in ("norm_type", "norm"):
        return ["layernorm"]
    if lowered in ("rope_theta", "theta", "base", "rotary_base"):
        return [10000.0]
    if kind is not None:
        goal = target(kind, sizes)
        if kind == "patch":
            goal = max(1, sizes.image // 4)
        if kind == "channels" and lowered in ("in_chans", "num_channels", "input_channels", "n_channels", "channels"):
            return [3, goal]
        return [goal] if goal is not None else []
    if annotation is int:
        # an unknown count: small, since it may be a recursion depth as well as a width
        return [8, 2]
    if annotation is float:
        return [0.1]
    return []


def _list_guess(name: str, length: int, sizes: Sizes) -> list[int] | None:
    lowered = name.lower()
    if lowered in STAGE_DEPTHS or lowered.startswith(("num_", "n_")) or "block" in lowered or "layer" in lowered \
            or "depth" in lowered:
        return [1] * length
    if lowered in STAGE_HEADS or "head" in lowered:
        return [2] * length
    if lowered in STAGE_WIDTHS or lowered in CHANNELS or kind_of(lowered) in ("hidden", "channels"):
        return [sizes.channels * 2 ** i for i in range(length)]
    return None


# ----------------------------------------------------------------------------- config objects


def _config_fields(cls: type) -> dict[str, Any] | None:
    """Field names (and defaults, ``inspect.Parameter.empty`` when required) of a config-like
    class: a dataclass, a NamedTuple, or a class whose ``__init__`` only stores its arguments."""
    if isinstance(cls, type) and cls.__module__ == "builtins":
        return None  # ``dropout: float``: a number (float's signature is ``float(x=0)``), no config
    if dataclasses.is_dataclass(cls):
        out: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            if not f.init:
                continue
            if f.default is not dataclasses.MISSING:
                out[f.name] = f.default
            elif f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
                out[f.name] = f.default_factory()  # type: ignore[misc]
            else:
                out[f.name] = inspect.Parameter.empty
        return out
    if isinstance(cls, type) and issubclass(cls, tuple) and hasattr(cls, "_fields"):
        defaults = getattr(cls, "_field_defaults", {})
        return {name: defaults.get(name, inspect.Parameter.empty) for name in cls._fields}
    if isinstance(cls, type) and issubclass(cls, SimpleNamespace):
        return {}
    if isinstance(cls, type) and _stores_only(cls):
        try:
            params = list(inspect.signature(cls).parameters.values())
        except (TypeError, ValueError):
            return None
        out = {}
        for p in params:
            if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                continue
            out[p.name] = p.default
        # class-level defaults (``class Config: dim = 64``) are fields too
        for key, value in vars(cls).items():
            if not key.startswith("_") and not callable(value) and key not in out and \
                    isinstance(value, (int, float, str, bool, tuple, list, type(None))):
                out[key] = value
        return out
    return None


def _stores_only(cls: type) -> bool:
    """A plain class (not a torch module) whose ``__init__`` only stores values on ``self``, or a
    class with only constant class attributes: an attribute bag."""
    try:
        import torch.nn as nn

        if issubclass(cls, nn.Module):
            return False
    except ImportError:  # pragma: no cover
        pass
    init = cls.__dict__.get("__init__")
    if init is None:
        consts = [k for k, v in vars(cls).items() if not k.startswith("_") and not callable(v)]
        return bool(consts) and cls.__bases__ == (object,)
    try:
        source = inspect.getsource(init)
        tree = ast.parse(_dedent(source))
    except (OSError, TypeError, SyntaxError, IndentationError):
        return False
    func = tree.body[0] if tree.body else None
    if not isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef)):
        return False
    body = func.body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]
    for stmt in body:
        if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call) and \
                isinstance(stmt.value.func, ast.Attribute) and stmt.value.func.attr == "__init__":
            continue  # super().__init__()
        targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target] if isinstance(
            stmt, (ast.AnnAssign, ast.AugAssign)) else None
        if targets is None:
            if isinstance(stmt, ast.Pass):
                continue
            return False
        if not all(isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name) and t.value.id == "self"
                   for t in targets):
            return False
    return bool(body)


def _dedent(source: str) -> str:
    import textwrap

    return textwrap.dedent(source)


def config_classes(module: ModuleType, reads: facts.Reads, annotation: Any) -> list[tuple[str, type, dict]]:
    """Config classes in the module's namespace that have the fields ``reads`` reads, best first."""
    wanted = set(reads.attrs)
    found: list[tuple[float, str, type, dict]] = []
    for name, value in list(vars(module).items()):
        if not isinstance(value, type) or name.startswith("__"):
            continue
        fields_ = _config_fields(value)
        if fields_ is None or not fields_:
            continue
        have = set(fields_)
        coverage = len(wanted & have) / len(wanted) if wanted else 0.0
        if value is annotation:
            coverage += 1.0
        if coverage >= 0.6:
            found.append((coverage, name, value, fields_))
    found.sort(key=lambda item: -item[0])
    return [(name, value, fields_) for _, name, value, fields_ in found]


def _bag_for(reads: facts.Reads, sizes: Sizes, path: str = "config", typed: bool = False,
             unread: frozenset[str] = frozenset()) -> AttrBag:
    """An attribute bag with every field ``reads`` reads, valued by name; raises NeedsFactory
    naming a field it cannot value.  ``typed``: a field the name says nothing of is typed from its
    uses instead (looped over: empty, nothing built from it; a condition: False; handed on by
    keyword: as that keyword, else a small size; stored on self and read by nothing the class
    runs, ``unread``: a small count, marked on the bag so the build says so)."""
    bag = AttrBag()
    for key, sub in reads.attrs.items():
        if sub.attrs and sub.called < 0:
            bag[key] = _bag_for(sub, sizes, f"{path}.{key}", typed)
            continue
        if key in reads.defaults:
            try:
                bag[key] = ast.literal_eval(reads.defaults[key])
                continue
            except (ValueError, SyntaxError, TypeError):
                pass
        if sub.max_index >= 0 or sub.iterated:
            guess = _list_guess(key, max(sub.max_index + 1, 2), sizes)
            if guess is None:
                raise NeedsFactory(f"cannot infer `{path}.{key}` (a list)")
            bag[key] = guess
            continue
        values = guess_value(key, inspect.Parameter.empty, sizes)
        if not values and typed and sub.called < 0 and sub.max_index < 0:
            if sub.looped:
                values = [[]]
            elif sub.tested:
                values = [False]
            elif sub.passed:
                values = next((guessed for k in sub.passed
                               if (guessed := guess_value(k, inspect.Parameter.empty, sizes))), [2])
            elif sub.numeric or sub.ordered:
                # stored, then used in arithmetic or ordered (``self.factor = cfg["topk_factor"];
                # top_k = int(self.factor * math.log(n))``): a number, small
                values = [2]
            elif sub.compared:
                # stored, then only compared with strings (kan-gpt's ``self.kan_implementation ==
                # "EFFICIENT_KAN"``): a mode, the first string it is compared with
                values = [sub.compared[0]]
            elif key in unread and sub == facts.Reads():
                # stored on self and read by no class of the hierarchy (``unread.py``): the
                # module built is the same whatever it holds
                values = guess_value(key, int, sizes)
                bag.mark_unread([key])
        if not values:
            if sub.optional:
                continue  # read only where `hasattr(config, key)`: the bag goes without it
            raise NeedsFactory(f"cannot infer `{path}.{key}`")
        bag[key] = values[0]
    return bag


def _field_annotations(cls: type | None) -> dict[str, Any]:
    """A config class's field annotations, resolved (``from __future__ import annotations``
    leaves them strings); empty where they cannot be resolved."""
    if cls is None:
        return {}
    import typing

    try:
        return typing.get_type_hints(cls)
    except Exception:
        return {}


def _typed_guess(name: str, annotation: Any, sizes: Sizes, read: bool,
                 sub: facts.Reads | None = None) -> list[Any]:
    """A required config field's value from its name, else from its annotation: a number as
    ``guess_value`` types it, and a ``str`` or ``bool`` field the class under test never reads
    (it reaches the computation, if at all, only through the config's own properties) valued
    by its type (empty, False); a ``str`` field it compares with strings where it reads it
    (``config.model_type != "gpt2"``) by those strings and one equal to none of them
    (:func:`compared_values`), a mode as ``_bag_for`` values one (fixver53); the first is the
    default build's, the others are tried when it does not build and checked after a pass
    (``core._check_compared_values``, mend55).  The checked patch must still run and match the original on the
    config built, so a value that changes nothing the patch touches cannot make it pass."""
    guess = guess_value(name, inspect.Parameter.empty, sizes)
    if guess:
        return guess
    if annotation in (int, float):
        return guess_value(name, annotation, sizes)
    if not read and annotation is str:
        return [""]
    if annotation is str and sub is not None and sub.compared:
        # a mode the class compares with strings (``config.model_type != "gpt2"``): the strings
        # it is compared with, the first first (as a typed bag values such a field, ``_bag_for``),
        # then one equal to none of them (mend55: ``!= "none"`` is true only for another string)
        return compared_values(sub.compared)
    if not read and annotation is bool:
        return [False]
    return []


def compared_values(compared: list[str]) -> list[str]:
    """The values tried for a required ``str`` field compared with ``compared``: the first
    ``MAX_COMPARED`` of them in the order the class compares them, then a string equal to none
    of them (``if config.pos_type != "none":`` holds only for another string)."""
    values = list(compared[:MAX_COMPARED])
    other, count = "other", 1
    while other in compared:
        count += 1
        other = f"other{count}"
    return values + [other]


def _choice_fields(fields_: dict[str, Any], reads: facts.Reads, cls: type) -> dict[str, list[str]]:
    """The required fields of config class ``cls`` that verify values by the strings the class
    compares them with (``_typed_guess``), with the values it tries, in order."""
    out: dict[str, list[str]] = {}
    annotations: dict[str, Any] | None = None
    for name, default in fields_.items():
        sub = reads.attrs.get(name)
        if default is not inspect.Parameter.empty or sub is None or not sub.compared or \
                sub.max_index >= 0 or sub.iterated or guess_value(name, inspect.Parameter.empty, VERIFY):
            continue
        if annotations is None:
            annotations = _field_annotations(cls)
        if annotations.get(name) is str:
            out[name] = compared_values(sub.compared)
    return out


def _value_choices(fields_: dict[str, Any], reads: facts.Reads, cls: type,
                   chosen: dict[str, Any]) -> list[dict[str, Any]]:
    """One field assignment per config to build: the values of the first field valued by a
    compared string (``_choice_fields``) one at a time, the default build's first, so that a
    value whose construction raises (``if config.pos_type == "flash": raise ...``) gives way to
    the next; ``chosen`` (a build variant's config values) fixes a field instead."""
    fields = _choice_fields(fields_, reads, cls)
    fixed = {k: v for k, v in chosen.items() if k in fields}
    free = [(k, v) for k, v in fields.items() if k not in chosen]
    if not free:
        return [fixed]
    name, values = free[0]
    return [dict(fixed, **{name: value}) for value in values]


def compared_choices(info: ClassFacts, module: ModuleType) -> list[tuple[str, list[str]]]:
    """The required ``str`` fields of the config classes a class may be built with that verify
    values by the strings the class compares them with, each with the values it tries (mend55):
    a pass is checked again with the others (``core._check_compared_values``, which goes by the
    value the built config holds)."""
    out: dict[str, list[str]] = {}
    for param in info.params:
        reads = info.reads.get(param.name, facts.Reads())
        annotation = param.annotation
        if not (facts.is_config_like(param.name, reads) or
                (isinstance(annotation, type) and _config_fields(annotation))):
            continue
        for _, ccls, fields_ in config_classes(module, reads, annotation):
            for name, values in _choice_fields(fields_, reads, ccls).items():
                out.setdefault(name, values)
    return list(out.items())


def _shrunk_fields(fields_: dict[str, Any], given: dict[str, Any], sizes: Sizes, shrink_it: bool,
                   reads: facts.Reads | None = None, cls: type | None = None,
                   chosen: dict[str, Any] | None = None) -> dict[str, Any]:
    """Keyword arguments for a config class: the given values, required fields guessed (by name,
    else by the annotation ``cls`` gives them; ``chosen``: the values of fields valued by a
    compared string, ``_value_choices``), sizes shrunk."""
    values: dict[str, Any] = {}
    annotations: dict[str, Any] | None = None
    for name, default in fields_.items():
        if name in given:
            values[name] = given[name]
        elif default is inspect.Parameter.empty:
            sub = reads.attrs.get(name) if reads is not None else None
            guess = guess_value(name, inspect.Parameter.empty, sizes)
            if not guess and cls is not None:
                if annotations is None:
                    annotations = _field_annotations(cls)
                guess = _typed_guess(name, annotations.get(name), sizes,
                                     read=reads is None or sub is not None, sub=sub)
                if chosen and name in chosen and sub is not None and sub.compared and \
                        guess == compared_values(sub.compared):
                    guess = [chosen[name]]
            if sub is not None and (sub.max_index >= 0 or sub.iterated):
                listed = _list_guess(name, max(sub.max_index + 1, 2), sizes)
                guess = [listed] if listed is not None else guess
            if not guess:
                raise NeedsFactory(f"cannot infer the config field `{name}`")
            values[name] = guess[0]
        else:
            values[name] = default
    for name, value in given.items():
        values.setdefault(name, value)
    if shrink_it:
        shrunk = shrink({k: v for k, v in values.items() if not isinstance(v, (Make, Ref))}, sizes)
        values.update(shrunk)
    # pass only what differs from the class's own defaults (shorter labels, same object)
    return {k: v for k, v in values.items() if k in given or fields_.get(k, inspect.Parameter.empty) is
            inspect.Parameter.empty or not _same(v, fields_.get(k))}


def _same(a: Any, b: Any) -> bool:
    try:
        return type(a) is type(b) and bool(a == b)
    except Exception:
        return False


def shrink_make(value: Any, module: ModuleType, sizes: Sizes, shrink_it: bool) -> Any:
    """A call-site value with the configs it builds shrunk too (``GPTConfig(**model_args)``)."""
    if isinstance(value, Make):
        try:
            func = lookup(module, value.func.path) if isinstance(value.func, Ref) else value.func
        except (LookupError, AttributeError):
            return value
        fields_ = _config_fields(func) if isinstance(func, type) else None
        kwargs = {k: shrink_make(v, module, sizes, shrink_it) for k, v in value.kwargs.items()}
        args = tuple(shrink_make(a, module, sizes, shrink_it) for a in value.args)
        if fields_ is not None and not args:
            try:
                kwargs = _shrunk_fields(fields_, kwargs, sizes, shrink_it)
            except NeedsFactory:
                pass
        elif shrink_it:
            kwargs.update(shrink({k: v for k, v in kwargs.items() if not isinstance(v, (Make, Ref))}, sizes))
        return Make(value.func, args, kwargs)
    if isinstance(value, AttrBag):
        out = AttrBag({k: shrink_make(v, module, sizes, shrink_it) for k, v in value.items()})
        out.mark_unread(value.unread())
        if shrink_it:
            out.update(shrink({k: v for k, v in out.items() if not isinstance(v, (Make, Ref, AttrBag))}, sizes))
        return out
    return value


# ----------------------------------------------------------------------------- the recipes


def gather(cls: type, module: ModuleType, tree: ast.Module | None, sites: list[CallSite]) -> ClassFacts:
    try:
        params = list(inspect.signature(cls.__init__).parameters.values())[1:]
    except (TypeError, ValueError):
        raise NeedsFactory(f"cannot read the signature of {cls.__name__}.__init__") from None
    params = [_plain_annotation(p) for p in params]
    classes = facts.class_nodes(tree) if tree is not None else {}
    reads = facts.argument_reads(classes, cls.__name__) if cls.__name__ in classes else {}
    inherit_reads(cls, classes, reads)
    return ClassFacts(cls, params, reads, classes, sites)


MAX_BASE_DEPTH = 4  # base constructors followed up the class's own hierarchy


def inherit_reads(cls: type, classes: dict[str, ast.ClassDef], reads: dict[str, facts.Reads],
                  depth: int = 0) -> None:
    """Merge into ``reads`` what the base class's constructor does with the arguments
    ``__init__`` hands it whole (xuance's ``TarMAC.__init__(input_shape, hidden_sizes, ...)``
    only passes them to ``super().__init__``, and a base in another file of the package indexes
    ``input_shape[0]`` and reads ``hidden_sizes["recurrent_hidden_size"]``): the base's own
    reads of its parameter, followed up its own ``super().__init__`` in turn.  torch's classes
    are not read (their arguments are documented, not guessed from code)."""
    node = classes.get(cls.__name__)
    init = facts.method(node, "__init__") if node is not None else None
    if init is None or depth >= MAX_BASE_DEPTH:
        return
    call = next((n for n in ast.walk(init) if facts.calls_super_init(n)), None)
    base = next((b for b in cls.__mro__[1:] if "__init__" in vars(b)), None)
    if call is None or base is None or base.__module__.split(".")[0] == "builtins":
        return
    if base.__module__.split(".")[0] == "torch":
        _hand_to_torch_base(init, call, base, reads)
        return
    base_classes = _module_classes(base)
    if base.__name__ not in base_classes:
        return
    base_reads = facts.argument_reads(base_classes, base.__name__)
    inherit_reads(base, base_classes, base_reads, depth + 1)
    node_params = set(facts._params(init)[1:])
    try:
        targets = [p.name for p in inspect.signature(base.__init__).parameters.values()][1:]
    except (TypeError, ValueError):
        return
    handed = [(i, a) for i, a in enumerate(call.args)] + [(k.arg, k.value) for k in call.keywords if k.arg]
    for where, arg in handed:
        if isinstance(where, int) and any(isinstance(a, ast.Starred) for a in call.args[:where]):
            continue  # positions after a ``*args`` are unknown (keywords still name their parameter)
        target = (targets[where] if where < len(targets) else None) if isinstance(where, int) else where
        if isinstance(arg, ast.Name) and arg.id in node_params and arg.id in reads and target in base_reads:
            reads[arg.id].merge(base_reads[target])


def _hand_to_torch_base(init: ast.FunctionDef, call: ast.Call, base: type, reads: dict[str, facts.Reads]) -> None:
    """A torch base's constructor is not read, but its signature names what each argument
    ``__init__`` hands it whole is (``super().__init__(embedding_len, num_heads)`` over
    ``nn.MultiheadAttention``: the first is its ``embed_dim``): recorded as handed on by that
    keyword, so that an argument whose own name says nothing is guessed by the base's name for it
    (``handed_names``)."""
    try:
        targets = [p.name for p in inspect.signature(base.__init__).parameters.values()
                   if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)][1:]
    except (TypeError, ValueError):
        return
    node_params = set(facts._params(init)[1:])
    for where, arg in [*enumerate(call.args), *((k.arg, k.value) for k in call.keywords if k.arg)]:
        if isinstance(arg, ast.Starred):
            break  # positions after a ``*args`` are unknown
        target = (targets[where] if where < len(targets) else None) if isinstance(where, int) else where
        if target is None or not isinstance(arg, ast.Name) or arg.id not in node_params or arg.id not in reads:
            continue
        if ("", target) not in reads[arg.id].handed_as:
            reads[arg.id].handed_as.append(("", target))


def _module_classes(cls: type) -> dict[str, ast.ClassDef]:
    """The class definitions of the module that defines ``cls`` (parsed from its source)."""
    module = inspect.getmodule(cls)
    try:
        tree = ast.parse(inspect.getsource(module)) if module is not None else None
    except (OSError, TypeError, SyntaxError):
        return {}
    return facts.class_nodes(tree) if tree is not None else {}


_BUILTIN_ANNOTATIONS = {"float": float, "bool": bool}


def _plain_annotation(param: inspect.Parameter) -> inspect.Parameter:
    """``param`` with a ``float`` or ``bool`` annotation that ``from __future__ import
    annotations`` left a string (``init_std: "float"``) read as the type: the guesses go by the
    annotation, and a float read as an unknown count (8) scaled physis-lm's random weights by 8,
    saturating every softmax until float32 rounding alone told the two modules apart.  A string
    ``int`` stays as it is: the guesses for an ``int`` come before what the argument is handed to
    (``torch.randn(C, C)``: a width), which a string annotation reaches first."""
    annotation = param.annotation
    if isinstance(annotation, str):
        plain = _BUILTIN_ANNOTATIONS.get(annotation.strip().strip("'\""))
        if plain is not None:
            return param.replace(annotation=plain)
    return param


def _bind(site: CallSite, params: list[inspect.Parameter]) -> dict[str, Any] | None:
    """Call-site values by parameter name (None when the call does not fit the signature)."""
    out: dict[str, Any] = {}
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    var_kw = any(p.kind == p.VAR_KEYWORD for p in params)
    var_pos = any(p.kind == p.VAR_POSITIONAL for p in params)
    if len(site.args) > len(positional) and not var_pos:
        return None
    for param, value in zip(positional, site.args):
        out[param.name] = value
    names = {p.name for p in params}
    for key, value in site.kwargs.items():
        if key not in names and (site.indirect or not var_kw):
            if site.indirect:  # a builder's own keyword (pretrained_filter_fn=...), not the class's
                continue
            return None
        out[key] = value
    return out


def _named_links(values: dict[str, Any], params: list[inspect.Parameter]) -> dict[str, Any]:
    """Call-site values whose links to the call's positional arguments name the parameter bound
    there (a link to an argument the signature does not have drops the value)."""
    positional = [p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    names = {p.name for p in params}

    def name_of(link: Link) -> Link | None:
        where = link.where
        if isinstance(where, int):
            return Link(positional[where]) if where < len(positional) else None
        return link if where in names else None

    def walk(value: Any) -> Any:
        if isinstance(value, Link):
            named = name_of(value)
            if named is None:
                raise LookupError
            return named
        if isinstance(value, Make):
            return Make(value.func, tuple(walk(a) for a in value.args), {k: walk(v) for k, v in value.kwargs.items()})
        if isinstance(value, list):
            return [walk(v) for v in value]
        if isinstance(value, tuple):
            return tuple(walk(v) for v in value)
        return value

    out = {}
    for key, value in values.items():
        if not has_links(value):
            out[key] = value
            continue
        try:
            out[key] = walk(value)
        except LookupError:
            continue
    return out


def _through_var_keyword(bound: dict[str, Any], params: list[inspect.Parameter], sizes: Sizes) -> dict[str, Any]:
    """The keywords a call site hands through the class's ``**kwargs`` whose values are unknown, with
    a guessed value: the key's presence is part of the call (essmc2-style ``Attention(...,
    einops_from='b (f n) d', n=num_patches)`` hands ``n`` on to einops as an axis size, and left
    out, the pattern cannot be solved), so the key is kept with the guess its name earns, else a
    small count (2: an axis of one would not tell axes apart)."""
    if not any(p.kind == p.VAR_KEYWORD for p in params):
        return {}
    names = {p.name for p in params}
    out: dict[str, Any] = {}
    for key, value in bound.items():
        if key in names or value is not UNKNOWN:
            continue
        guesses = [g for g in guess_value(key, None, sizes) if isinstance(g, int) and not isinstance(g, bool)]
        out[key] = guesses[0] if guesses else 2
    return out


def _unread(info: ClassFacts, name: str) -> frozenset[str]:
    """The fields of argument ``name`` stored on self and read by nothing the class runs."""
    return frozenset(unread_fields(info.cls, name, info.classes))


def _mentions_group_norm(module: ModuleType) -> bool:
    """Whether the module's source builds a GroupNorm (the text read once per run, by the
    reader call-site lookup already uses)."""
    path = getattr(module, "__file__", None)
    text = callsites.source_text(Path(path)) if path else None
    return text is not None and "GroupNorm" in text


def _param_candidates(info: ClassFacts, param: inspect.Parameter, module: ModuleType, sizes: Sizes,
                      config: dict[str, Any] | None = None) -> list[Any]:
    """Values for one required argument that no call site gave (``config``: a build variant's
    config field values, for the fields valued by a compared string)."""
    name = param.name
    reads = info.reads.get(name, facts.Reads())
    annotation = param.annotation
    # a config object read by attribute
    if facts.is_config_like(name, reads) or (isinstance(annotation, type) and _config_fields(annotation)):
        out: list[Any] = []
        for cname, ccls, fields_ in config_classes(module, reads, annotation):
            for chosen in _value_choices(fields_, reads, ccls, config or {}):
                try:
                    out.append(Make(Ref(cname), (), _shrunk_fields(fields_, {}, sizes, True, reads, ccls, chosen)))
                except NeedsFactory:
                    break
        try:
            out.append(_bag_for(reads, sizes, name))
        except NeedsFactory as exc:
            if not out and param.default is not inspect.Parameter.empty:
                raise NeedsFactory(f"{exc} for {info.cls.__name__}") from None
            if not out:
                # a required config whose fields' names say nothing (``cfg["topk_factor"]``): a bag
                # typed from the fields' uses, as for a None-default one (``_complete``)
                try:
                    out.append(_bag_for(reads, sizes, name, typed=True, unread=_unread(info, name)))
                except NeedsFactory:
                    raise NeedsFactory(f"{exc} for {info.cls.__name__}") from None
        return out
    # a class (``block``): the local classes that fit how it is used
    if reads.called >= 0:
        class_attrs = {k for k, v in reads.attrs.items() if not v.attrs and v.called < 0}
        names = facts.local_module_classes_with(info.classes, class_attrs, reads.called)
        names = [n for n in names if n != info.cls.__name__ and isinstance(getattr(module, n, None), type)]
        if names:
            return [Ref(n) for n in names[:3]]
        if annotation is inspect.Parameter.empty and facts.none_guarded(info.classes.get(info.cls.__name__), name):
            # a layer called only under ``if self.<it> is not None:`` (sssegmentation's
            # SelfAttentionBlock ``query_downsample``) and no class of the file fits: the
            # class's own code handles None, so None (the guarded call is left unbuilt)
            return [None]
        raise NeedsFactory(f"cannot infer argument `{name}` (a class it calls)")
    # a list (``num_blocks[3]``)
    if reads.max_index >= 0 or (reads.iterated and not reads.attrs):
        length = max(reads.max_index + 1, 2)
        guess = _list_guess(name, length, sizes)
        if guess is not None:
            lowered = name.lower()
            if not reads.iterated and reads.max_index >= 0 and len(set(guess)) > 1 and \
                    lowered not in STAGE_WIDTHS and lowered not in CHANNELS:
                # only read entry by entry, and a width only by the name's ending (``fmap_size[0]``,
                # ``fmap_size[1]``): maybe the sides of a grid, so equal small sides next
                return [guess, (4,) * length]
            return [guess]
    values = guess_value(name, annotation, sizes)
    if reads.compared_ints and _int_switch(reads) and (not values or not guess_value(name, inspect.Parameter.empty,
                                                                                     sizes)):
        # tested for equality with int constants and used no other way its name or an ``int``
        # annotation could size (``if self.spatial_dims == 2: b, c, h, w = x.shape``): a switch
        # between code paths written for those values, each tried in the order the code tests them
        values = list(reads.compared_ints)
    if values and reads.max_index >= 0 and not reads.attrs and reads.called < 0 and not reads.iterated and not reads.numeric \
            and all(is_int(v) for v in values):
        # a size by its name (``input_resolution``) but indexed with constants
        # (``input_resolution[0] // window_size[0]``): one such size per axis
        values = [(v,) * (reads.max_index + 1) for v in values]
    if reads.unpacked >= 2 and not reads.attrs and reads.called < 0 and reads.max_index < 0 \
            and not reads.iterated and all(is_int(v) for v in values):
        values = _unpacked_sizes(reads.unpacked, values, sizes)
    if len(values) == 1 and is_int(values[0]) and values[0] % GROUP_NORM_GROUPS and \
            kind_of(name.lower().lstrip("_")) == "channels" and _mentions_group_norm(module):
        # then a multiple of 32: diffusion and VQ-GAN blocks normalise with GroupNorm(32, c)
        values = [values[0], values[0] * GROUP_NORM_GROUPS // math.gcd(values[0], GROUP_NORM_GROUPS)]
    if not values:
        # what the parameters it is handed to call it: ``proj_kernel`` passed as ``kernel_size=``
        for alias in handed_names(reads, module):
            values = guess_value(alias, annotation, sizes)
            if values:
                break
    if not values and reads.truth and not reads.numeric and not reads.attrs and reads.called < 0 \
            and reads.max_index < 0 and not reads.iterated:
        # only tested (``if shifted:``): a switch, both sides tried
        values = [False, True]
    if not values and reads.numeric and not reads.attrs and reads.called < 0 and reads.max_index < 0 \
            and not reads.iterated:
        # multiplied or added like a number (``num_positions = num_frames * num_patches``): an
        # unknown count, small as for an ``int`` annotation
        values = guess_value(name, int, sizes)
    if not values and reads.max_index >= 0 and not reads.attrs and reads.called < 0:
        # indexed with constants and nothing else (``window_size[0]``, ``window_size[1]``): a
        # tuple of small sizes, one per axis
        length = reads.max_index + 1
        values = [(2,) * length, (4,) * length]
    if not values and reads.handed_as and not reads.attrs and reads.called < 0 and reads.max_index < 0 \
            and not reads.iterated and not reads.truth and not reads.defaults:
        # only handed on to a function whose parameter says nothing (``self.window = pair(window)``):
        # a small size, as for an unknown count
        values = [2, 4]
    if not values and reads.compared and not reads.attrs and reads.called < 0 and reads.max_index < 0 \
            and not reads.iterated and not reads.numeric:
        # only compared with strings (``if self.type != "W":``): a mode, each string it is compared with
        values = list(reads.compared)
    if not values:
        made = _default_instance(annotation, module)
        if made is not None:
            return [made]
        if reads.ordered and not reads.attrs and reads.called < 0 and reads.max_index < 0 and not reads.iterated:
            # only ordered against numbers (``if self.cmem_len <= 0:``, ``min(n, self.mem_len)``)
            # besides what says nothing: a count, small as for an ``int`` annotation
            values = guess_value(name, int, sizes)
        if not values and reads == facts.Reads() and annotation is inspect.Parameter.empty \
                and facts.stored_only(info.classes.get(info.cls.__name__), name):
            # read nowhere the class's code shows (``self.n = n``, kept for a caller): the module
            # built is the same whatever it is, so a small count, as for an ``int`` annotation
            values = guess_value(name, int, sizes)
        if not values and reads == facts.Reads() and annotation is not inspect.Parameter.empty \
                and facts.stored_only(info.classes.get(info.cls.__name__), name):
            # annotated, and read nowhere the class's code shows (picogpt's ``rope:
            # RotaryEmbedding``, kept as ``self.rope`` and never read: its caller hands each head
            # the cos/sin tables): the module built computes the same whatever it holds, so None
            # (no submodule, no state of its own on either side)
            values = [None]
        if not values and annotation is inspect.Parameter.empty and \
                facts.none_guarded(info.classes.get(info.cls.__name__), name):
            # every read of it sits under ``if <it> is not None:`` (linformer's ``causal_mask``):
            # the class's own code handles None, so None (the guarded path is left unbuilt)
            values = [None]
        if not values:
            raise NeedsFactory(f"cannot infer argument `{name}`")
    held = sequence_of(annotation)
    if held is not None and held[0] == "int":
        # annotated as sizes per axis (``kernel_q: list[int]``): the guessed size on every axis
        length = held[1] or _axes(reads, module) or max(reads.max_index + 1, 2)
        values = [[v] * length if is_int(v) else v for v in values]
    return values


def _int_switch(reads: facts.Reads) -> bool:
    """Whether ``reads`` use a value only as a switch: compared for equality, never sized with
    (arithmetic, an order), handed on (a layer's width, stored or not), indexed, iterated,
    truth-tested, called or read by attribute."""
    return not (reads.attrs or reads.called >= 0 or reads.max_index >= 0 or reads.iterated or reads.numeric
                or reads.ordered or reads.unpacked or reads.handed_as or reads.stored_handed or reads.truth)


def _unpacked_sizes(arity: int, values: list[Any], sizes: Sizes) -> list[tuple[int, ...]]:
    """Values for a size argument the constructor unpacks into ``arity`` names (``self.ih, self.iw
    = image_size``): the sides of the grid its tokens fill (a relative-position bias over ``ih *
    iw`` tokens, added to scores of the tokens the forward is handed), so first grids of the
    sequence length inputs are guessed at, with unequal sides so that a swapped pair fails
    loudly, then the size the name suggests on every side (an image the forward is handed)."""
    out: list[tuple[int, ...]] = [g for g in grids(sizes.seq, arity) if min(g) >= 2]
    out += [(v,) * arity for v in values if (v,) * arity not in out]
    return out


def _default_instance(annotation: Any, module: ModuleType) -> Make | None:
    """An argument annotated with a class of the module's namespace (written, or a string under
    ``from __future__ import annotations``) that is no torch module and whose constructor needs
    no argument (OLMo's ``cache: BufferCache``, a dict subclass): one made with its defaults,
    looked up by name in each module so the patched class gets the patched module's class.
    None for anything else (a module class, a class that needs arguments, a typing form)."""
    import torch.nn as nn

    if isinstance(annotation, str):
        path = annotation.strip().strip("'\"")
    elif isinstance(annotation, type):
        path = annotation.__name__ if vars(module).get(annotation.__name__) is annotation else ""
    else:
        return None
    if not path or not all(part.isidentifier() for part in path.split(".")):
        return None
    try:
        cls = lookup(module, path)
    except (LookupError, AttributeError):
        return None
    if not isinstance(cls, type) or issubclass(cls, nn.Module) or cls.__module__ == "builtins" or \
            getattr(cls, "__origin__", None) is not None:
        return None
    try:
        params = list(inspect.signature(cls).parameters.values())
    except (TypeError, ValueError):
        # no Python signature: a subclass of a builtin container that keeps its constructor
        # (``dict()``, ``list()``, ``set()``: empty without arguments)
        owner = next((c for c in cls.__mro__ if "__init__" in vars(c)), object)
        return Make(Ref(path)) if owner in (dict, list, set) else None
    if any(p.default is inspect.Parameter.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
           for p in params):
        return None
    return Make(Ref(path))


def _axes(reads: facts.Reads, module: ModuleType) -> int | None:
    """The axes of the convolution or pooling layer a value is handed to (``nn.Conv3d(c, c,
    kernel)``: 3), read from the layer class, not its name."""
    for callee, _ in reads.handed_as:
        target: Any = module
        try:
            for part in callee.split("."):
                target = getattr(target, part)
        except AttributeError:
            continue
        if isinstance(target, type):
            for axes, kinds in _AXES:
                if issubclass(target, kinds):
                    return axes
    return None


def _layer_axes() -> tuple:
    from torch import nn

    return ((1, (nn.Conv1d, nn.ConvTranspose1d, nn.MaxPool1d, nn.AvgPool1d)),
            (2, (nn.Conv2d, nn.ConvTranspose2d, nn.MaxPool2d, nn.AvgPool2d)),
            (3, (nn.Conv3d, nn.ConvTranspose3d, nn.MaxPool3d, nn.AvgPool3d)))


_AXES = _layer_axes()


SIZE_ALIAS = "hidden_size"  # what a value handed to a tensor factory as an axis size is guessed as


def _makes_tensor_of_sizes(target: Any) -> bool:
    """Is ``target`` one of torch's factories whose positional arguments are the sizes of the
    tensor it makes (``torch.rand(2, 3)``)?"""
    import sys

    torch = sys.modules.get("torch")
    if torch is None:
        return False
    return any(target is getattr(torch, name, None) for name in ("rand", "randn", "zeros", "ones", "empty"))


def handed_names(reads: facts.Reads, module: ModuleType) -> list[str]:
    """The names of the parameters a value is handed to: keywords as written, positions resolved
    through the callee's signature (``nn.Conv2d(d, d, k)`` -> ``kernel_size``)."""
    out: list[str] = []
    for callee, where in [*reads.handed_as, *reads.stored_handed]:
        name: str | None = where if isinstance(where, str) else None
        if name is None and callee:
            target: Any = module
            try:
                for part in callee.split("."):
                    target = getattr(target, part)
            except AttributeError:
                continue
            try:
                params = [p for p in inspect.signature(target).parameters.values()
                          if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
            except (TypeError, ValueError):
                if isinstance(where, int) and _makes_tensor_of_sizes(target) and SIZE_ALIAS not in out:
                    # ``torch.rand(d_in, d_out)`` (a builtin: no signature to read): each
                    # positional argument is an axis of the tensor it makes, sized as a width
                    out.append(SIZE_ALIAS)
                continue
            if isinstance(where, int) and where < len(params):
                name = params[where].name
        if name and name not in out:
            out.append(name)
    return out


def recipes(info: ClassFacts, module: ModuleType, sizes: Sizes, overrides: dict[str, Any],
            config: dict[str, Any] | None = None) -> Iterator[Recipe]:
    """Candidate constructor calls of ``info.cls``, most trusted first, shrunk first (``config``:
    the build variant's config field values, see ``_value_choices``)."""
    params = [p for p in info.params if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    config_param = next((p.name for p in params if facts.is_config_like(p.name, info.reads.get(p.name, facts.Reads()))
                         or (isinstance(p.annotation, type) and _config_fields(p.annotation))), None)
    bases: list[tuple[dict[str, Any], str]] = []
    later: list[tuple[dict[str, Any], str]] = []  # a site's call with its unknown ``**kwargs`` keys guessed
    for site in info.sites:
        bound = _bind(site, info.params)
        if bound is None:
            continue
        known = {k: v for k, v in bound.items() if v is not UNKNOWN}
        known = _named_links(known, params)
        bases.append((known, f"as called at {_short(site.where)}"))
        guessed = _through_var_keyword(bound, info.params, sizes)
        if guessed:
            later.append(({**known, **guessed}, f"as called at {_short(site.where)}, "
                                                f"{', '.join(sorted(guessed))} guessed"))
    bases += later
    bases.append(({}, "arguments inferred from the signature"))
    seen: set[str] = set()
    made = 0
    error: NeedsFactory | None = None
    for shrink_it in (True, False):
        for given, source in bases:
            try:
                options = _complete(info, params, given, module, sizes, config)
            except NeedsFactory as exc:
                error = error or exc
                continue
            for values in options:
                before = dict(values)
                values.update(overrides)
                for key, value in overrides.items():
                    if value is ZEROS:  # the argument's own value (given, guessed or default), every entry 0
                        default = next((p.default for p in params if p.name == key), None)
                        zeros = zeros_like(before.get(key, default))
                        values[key] = zeros if zeros is not None else 0
                if shrink_it:
                    plain = {k: v for k, v in values.items() if not isinstance(v, (Make, Ref, AttrBag))}
                    for p in params:  # shrink big defaults too, by passing them
                        if p.name not in values and p.default is not inspect.Parameter.empty and \
                                not _same(shrink_value(p.name, p.default, sizes), p.default):
                            plain[p.name] = p.default
                    shrunk = shrink(plain, sizes)
                    for key, value in shrunk.items():
                        if key not in overrides:
                            values[key] = value
                values = {k: (shrink_make(v, module, sizes, shrink_it) if k not in overrides else v)
                          for k, v in values.items()}
                _keep_divisible(values, info, overrides)
                _keep_quotients_positive(values, info, params, overrides)
                if any(has_links(v) for v in values.values()):
                    # a layer the caller built from what it also hands the class: of the value
                    # the class gets here (its own default where none is given)
                    plain = {p.name: p.default for p in params if p.default is not inspect.Parameter.empty}
                    plain.update({k: v for k, v in values.items() if not has_links(v)})
                    values = {k: substitute_links(v, plain) for k, v in values.items()}
                    if any(has_links(v) for v in values.values()):
                        continue
                args, kwargs = _split(params, values)
                recipe = Recipe(args, kwargs, _label(info.cls.__name__, args, kwargs), config_param, source)
                if recipe.key() in seen:
                    continue
                seen.add(recipe.key())
                made += 1
                yield recipe
                if made >= MAX_RECIPES:
                    return
    if not made and error is not None:
        raise error


def divisions(cls: ast.ClassDef | None) -> list[tuple[str, str]]:
    """The (dividend, divisor) parameter pairs ``cls.__init__`` asserts divisible: ``assert a %
    b == 0`` (or ``not a % b``), or ``if a % b != 0: raise ...`` (also ``if a % b:``)."""
    init = next((n for n in cls.body if isinstance(n, ast.FunctionDef) and n.name == "__init__"), None) \
        if cls is not None else None
    if init is None:
        return []
    params = {a.arg for a in init.args.posonlyargs + init.args.args + init.args.kwonlyargs}

    def pair(test: ast.expr, holds: bool) -> tuple[str, str] | None:
        # ``holds``: the test is true when the division is exact (assert); else when it is not (raise)
        if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
            return pair(test.operand, not holds)
        if isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.comparators[0], ast.Constant) \
                and test.comparators[0].value == 0 and type(test.comparators[0].value) is int:
            if isinstance(test.ops[0], ast.Eq) and holds or isinstance(test.ops[0], ast.NotEq) and not holds:
                test = test.left
            else:
                return None
        elif holds:
            return None  # ``assert a % b`` asks for a remainder
        if isinstance(test, ast.BinOp) and isinstance(test.op, ast.Mod) and isinstance(test.left, ast.Name) \
                and isinstance(test.right, ast.Name) and {test.left.id, test.right.id} <= params:
            return test.left.id, test.right.id
        return None

    out: list[tuple[str, str]] = []
    for stmt in init.body:
        found = None
        if isinstance(stmt, ast.Assert):
            found = pair(stmt.test, True)
        elif isinstance(stmt, ast.If) and not stmt.orelse and len(stmt.body) == 1 and isinstance(stmt.body[0], ast.Raise):
            found = pair(stmt.test, False)
        if found is not None and found not in out:
            out.append(found)
    return out


def _keep_divisible(values: dict[str, Any], info: ClassFacts, overrides: dict[str, Any]) -> None:
    """What ``__init__`` asserts divisible stays so after the guesses and the shrinking: the
    divisor becomes the largest common divisor (``num_heads % num_groups == 0`` with heads 4 and
    groups 8 as written elsewhere: groups 4)."""
    for dividend, divisor in divisions(info.classes.get(info.cls.__name__)):
        a, b = values.get(dividend), values.get(divisor)
        if divisor in overrides or not (is_int(a) and is_int(b)) or b <= 0 or a % b == 0:
            continue
        values[divisor] = math.gcd(a, b) or 1


def floor_quotients(cls: ast.ClassDef | None) -> list[tuple[str, str]]:
    """The (dividend, divisor) ``__init__`` parameter pairs the class floor-divides anywhere in
    its methods, as the parameters themselves in ``__init__`` or as the attributes ``__init__``
    stores them in (``self.hidden_size // self.period``: Leddam's count of shifted copies, which
    ``range`` then iterates).  A quotient of 0 leaves such a count empty: nothing to attend over."""
    init = next((n for n in cls.body if isinstance(n, ast.FunctionDef) and n.name == "__init__"), None) \
        if cls is not None else None
    if init is None:
        return []
    params = {a.arg for a in init.args.posonlyargs + init.args.args + init.args.kwonlyargs}
    stored: dict[str, str] = {}  # attribute -> the parameter __init__ stores in it as it is
    for stmt in init.body:
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.value, ast.Name) \
                and stmt.value.id in params:
            target = stmt.targets[0]
            if isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name) and target.value.id == "self":
                stored[target.attr] = stmt.value.id

    def param_of(node: ast.expr, in_init: bool) -> str | None:
        if in_init and isinstance(node, ast.Name) and node.id in params:
            return node.id
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "self":
            return stored.get(node.attr)
        return None

    out: list[tuple[str, str]] = []
    for method in cls.body:
        if not isinstance(method, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for node in ast.walk(method):
            if isinstance(node, ast.BinOp) and isinstance(node.op, ast.FloorDiv):
                a, b = param_of(node.left, method is init), param_of(node.right, method is init)
                if a is not None and b is not None and a != b and (a, b) not in out:
                    out.append((a, b))
    return out


def _keep_quotients_positive(values: dict[str, Any], info: ClassFacts, params: list[inspect.Parameter],
                             overrides: dict[str, Any]) -> None:
    """A floor quotient of two arguments (``floor_quotients``) that the guesses and the shrinking
    made 0 -- a guessed width of 32 below a default period of 64 -- is made 2 by the divisor
    (half the dividend), so the count it sizes holds more than one item (a softmax over one key
    would hide a wrong scale).  Only a quotient of 0 is touched: every other guess stays."""
    defaults = {p.name: p.default for p in params if p.default is not inspect.Parameter.empty}
    for dividend, divisor in floor_quotients(info.classes.get(info.cls.__name__)):
        a = values.get(dividend, defaults.get(dividend))
        b = values.get(divisor, defaults.get(divisor))
        if divisor in overrides or not (is_int(a) and is_int(b)) or a < 2 or b <= 0 or a // b > 0:
            continue
        values[divisor] = a // 2


def forwarded_base_params(info: ClassFacts) -> list[inspect.Parameter]:
    """The required parameters of the base class's constructor that ``__init__`` can only be
    handed through its ``**kwargs``, which it passes on whole and alone to
    ``super().__init__(**kwargs)`` (graphium's ``MultiheadAttentionMup(biased_attention,
    **kwargs)`` over ``nn.MultiheadAttention``): without them the base cannot be built."""
    cls_node = info.classes.get(info.cls.__name__)
    init = next((n for n in cls_node.body if isinstance(n, ast.FunctionDef) and n.name == "__init__"), None) \
        if cls_node is not None else None
    if init is None or init.args.kwarg is None:
        return []
    kw = init.args.kwarg.arg
    passed = any(isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr == "__init__"
                 and isinstance(n.func.value, ast.Call) and isinstance(n.func.value.func, ast.Name)
                 and n.func.value.func.id == "super" and not n.args
                 and [k.arg for k in n.keywords] == [None] and isinstance(n.keywords[0].value, ast.Name)
                 and n.keywords[0].value.id == kw for n in ast.walk(init))
    bases = info.cls.__mro__[1:2]
    if not passed or not bases:
        return []
    try:
        base_params = list(inspect.signature(bases[0].__init__).parameters.values())[1:]
    except (TypeError, ValueError):
        return []
    own = {p.name for p in info.params}
    return [p for p in base_params if p.default is inspect.Parameter.empty and p.name not in own
            and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]


def _complete(info: ClassFacts, params: list[inspect.Parameter], given: dict[str, Any], module: ModuleType,
              sizes: Sizes, config: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Fill in the required arguments a call site did not give; a few combinations at most."""
    choices: list[tuple[str, list[Any]]] = []
    for param in params:
        if param.name in given or param.default is not inspect.Parameter.empty:
            continue
        choices.append((param.name, _param_candidates(info, param, module, sizes, config)))
    for param in forwarded_base_params(info):
        # the base's required arguments, handed through ``**kwargs``: guessed as its own would be
        if param.name not in given:
            values = guess_value(param.name, param.annotation, sizes)
            if values:
                choices.append((param.name, values))
    # a config argument with a default of None that the class reads: give it one
    for param in params:
        reads = info.reads.get(param.name)
        if param.name not in given and param.default is None and reads is not None and \
                facts.is_config_like(param.name, reads):
            try:
                choices.append((param.name, _param_candidates(info, param, module, sizes, config)))
            except NeedsFactory:
                # a bag typed from the fields' uses (adapter-plus's ``lora_config``: ``dim``,
                # ``location`` looped over, ``act_layer`` a condition), after the default None
                try:
                    choices.append((param.name, [None, _bag_for(reads, sizes, param.name, typed=True,
                                                                unread=_unread(info, param.name))]))
                except NeedsFactory:
                    pass
    # a sequence of sizes that defaults to empty (``ch: tuple[int, ...] = ()``, one layer per
    # entry): the default first, then two entries (distinct widths, so that entries taken in the
    # wrong order fail loudly), for a class that does not run without any
    for param in params:
        held = sequence_of(param.annotation)
        if param.name not in given and isinstance(param.default, (tuple, list)) and not param.default and \
                held is not None and held[0] == "int":
            filled = type(param.default)(sizes.channels * 2 ** i for i in range(held[1] or 2))
            choices.append((param.name, [param.default, filled]))
    combos: list[dict[str, Any]] = [dict(given)]
    for name, values in choices:
        combos = [dict(c, **{name: v}) for c in combos for v in values[:3]][:MAX_RECIPES]
    return combos


def _split(params: list[inspect.Parameter], values: dict[str, Any]) -> tuple[tuple, dict]:
    args: list[Any] = []
    kwargs: dict[str, Any] = {}
    for param in params:
        if param.name not in values:
            continue
        if param.kind == param.POSITIONAL_ONLY:
            args.append(values[param.name])
        else:
            kwargs[param.name] = values[param.name]
    for key, value in values.items():
        if key not in {p.name for p in params}:
            kwargs[key] = value  # through **kwargs
    return tuple(args), kwargs


def _label(name: str, args: tuple, kwargs: dict) -> str:
    parts = [describe(a) for a in args] + [f"{k}={describe(v)}" for k, v in kwargs.items()]
    return f"{name}({', '.join(parts)})"


def _short(where: str) -> str:
    import os

    path, _, line = where.rpartition(":")
    return f"{os.path.basename(path)}:{line}"
