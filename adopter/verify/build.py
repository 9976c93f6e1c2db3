"""Build the original and the patched class with the same arguments, and example inputs for them.

Ways, tried in order:

1. a factory named in ``[tool.adopter.verify] factories`` for the class (``"pkg.mod.Block" =
   "pkg.factories:make_block"``): ``make_block(cls)`` returns ``(instance, inputs)`` and is
   called once with the original class and once with the patched one;
2. a Hugging Face config class found in the module: a tiny config (see ``hf.py``) is passed as
   the ``config`` argument;
3. otherwise constructor recipes (``construct.py``): the project's own calls of the class, config
   dataclasses / attribute bags, the signature; shrunk, with the sizes as written as a fallback;
4. when none of those builds and runs, the class as a model of the same file builds and feeds it
   (``capture.py``).

Example inputs come from the ``forward`` signature and the built module (``inputs.py``).  The
first inputs the *original* module runs without error are used; when nothing runs the class is
skipped with the reason, which names what to provide (``factory_hint``).  A :class:`Variant`
steers the build onto another code path (a flag, an optional argument, a method to call) so
that a patched line runs; :meth:`Builder.variants` derives them from the branches around the
edited lines (``branches.py``).
"""

from __future__ import annotations

import ast
import copy
import functools
import importlib
import importlib.util
import inspect
import itertools
import logging
import math
import os
import re
import sys
import warnings
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, Callable, Iterator

import torch
from torch import nn

from . import branches, hf, memory
from .branches import ZEROS, _stored_parameters, init_conditions, init_value_conditions, stored_parameters, zeros_like
from .callsites import find_call_sites
from .capture import Recording, first_inputs, to_recipe
from .construct import ClassFacts, NeedsFactory, Recipe, compared_choices, gather, guess_value, recipes
from .inputs import (
    guarding_params,
    hints_of,
    input_options,
    map_tensors,
    none_used,
    optional_params,
    raising_params,
    repairs,
)
from . import facts
from .parallel import Groups, as_exception, construct
from .oversized import huge_sizes, subclass_attributes
from .recipes import AttrBag, Ref, resolve
from .sizes import Sizes
from .stubs import missing_package, needs_text

MAX_CTOR_TRIES = 12
MAX_REPAIRED = 12  # calls tried from what the module's errors say (and failures kept to read)
_MISSING = object()
# A build this big means the sizes were not shrunk (the equivalence checks run in float64 too).
MAX_PARAMETERS = {"verify": 60_000_000, "benchmark": 400_000_000}


class Skip(Exception):
    """The class cannot be built or fed automatically; the message says why."""


class Broken(Exception):
    """The original class builds and runs, the patched one does not: the patch is wrong."""


# ----------------------------------------------------------------------------- calls


def _full_rows(mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The last-axis rows of a boolean mask that are all True, and those that are all False."""
    return mask.all(-1), ~mask.any(-1)


def _any_tensor(value: Any, test: Any) -> bool:
    """Whether ``test`` holds for a tensor in ``value`` (a call's arguments), through tuples,
    lists and dicts."""
    if isinstance(value, torch.Tensor):
        return bool(test(value))
    if isinstance(value, (tuple, list)):
        return any(_any_tensor(v, test) for v in value)
    if isinstance(value, dict):
        return any(_any_tensor(v, test) for v in value.values())
    return False


def _has_full_row(mask: torch.Tensor) -> bool:
    if mask.dtype != torch.bool or mask.dim() == 0 or mask.shape[-1] < 2:
        return False
    every, none = _full_rows(mask)
    return bool(every.any() or none.any())


def has_full_rows(value: Any) -> bool:
    """Whether a boolean tensor in ``value`` (a call's arguments) has a last-axis row of one value:
    a row that hides every key whichever value the code reads as hidden."""
    return _any_tensor(value, _has_full_row)


def mixed_rows(value: Any) -> Any:
    """``value`` with each boolean tensor's last-axis rows holding both values: an all-True row
    gets its last entry False, an all-False row its first entry True.  A mask read either way
    (True hides, or True keeps) then hides no row entirely, the degenerate case where a fused
    attention differs from a softmax over filled scores and a guarded patch takes its original
    path.  Other values are returned as they are (a new tensor where one changes)."""
    def mix(mask: torch.Tensor) -> torch.Tensor:
        if mask.dtype != torch.bool or mask.dim() == 0 or mask.shape[-1] < 2:
            return mask
        every, none = _full_rows(mask)
        if not (every.any() or none.any()):
            return mask
        out = mask.clone()
        out[..., -1] = torch.where(every, torch.zeros_like(every), out[..., -1])
        out[..., 0] = torch.where(none, torch.ones_like(none), out[..., 0])
        return out

    return map_tensors(value, mix)


def _two_valued(value: torch.Tensor) -> bool:
    """A floating tensor of two or more axes holding only 0 and 1, both of them."""
    if not value.is_floating_point() or value.dim() < 2 or value.shape[-1] < 2:
        return False
    ones = value == 1
    return bool(((value == 0) | ones).all()) and bool(ones.any()) and not bool(ones.all())


def has_two_valued(value: Any) -> bool:
    """Whether ``value`` (a call's arguments) holds a floating 0/1 mask (:func:`flipped_masks`)."""
    return _any_tensor(value, _two_valued)


def flipped_masks(value: Any) -> Any:
    """``value`` with each floating tensor that holds only 0 and 1 (both) turned to ``1 - m``.
    A 0/1 float mask is read either way round by the code that takes it (1 keeps, or 1 hides:
    d3rlpy's ``attention_mask * -10000``); the padding the inputs give (:func:`inputs.mask_values`:
    the last positions of the last sequence) read the other way hides every position but those,
    so a guarded patch whose guard looks at the rows' kept keys takes its original path.  The
    same padding flipped reaches the fused call.  Other values as they are."""
    return map_tensors(value, lambda m: 1 - m if _two_valued(m) else m)


def blind_rows(value: Any) -> Any:
    """``value`` with each boolean tensor of two or more axes given a last-axis row of each
    value (its first row all False, its last all True): whichever value the code reads as
    hidden, some row hides every key -- the case a guarded patch sends to its original path.
    Other values as they are."""

    def blind(mask: torch.Tensor) -> torch.Tensor:
        if mask.dtype != torch.bool or mask.dim() < 2 or mask.shape[-1] < 2 or mask[..., 0].numel() < 2:
            return mask
        out = mask.clone().reshape(-1, mask.shape[-1])
        out[0] = False
        out[-1] = True
        return out.reshape(mask.shape)

    return map_tensors(value, blind)


def _clone_value(value: Any, device: torch.device | None, grad: bool) -> Any:
    def clone(tensor: torch.Tensor) -> torch.Tensor:
        out = tensor.detach().clone()
        if device is not None:
            out = out.to(device)
        if grad and out.is_floating_point():
            out.requires_grad_(True)
        return out

    return map_tensors(value, clone)


def _describe_value(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        kind = "float" if value.is_floating_point() else str(value.dtype).replace("torch.", "")
        return f"{kind}{list(value.shape)}"
    if isinstance(value, (tuple, list)):
        return "(" + ", ".join(_describe_value(v) for v in value) + ")"
    if isinstance(value, nn.Module) and any(True for _ in value.children()):
        return f"<a {type(value).__name__}>"  # a layer handed in (its repr spans lines)
    return repr(value)


@dataclass
class Call:
    args: tuple = ()
    kwargs: dict = field(default_factory=dict)

    method: str = "forward"  # another method when the patch sits outside forward (``generate``)
    # some tensor is a shape guess only (a [seq, head width] table for a ``cos``/``table`` argument):
    # the inputs the model of the file passes are preferred when there is one
    guessed: bool = False
    # the arguments that hold a guessed mask (positions of ``args``, names of ``kwargs``): the
    # first working call is checked against the same call without them (``_widened_by_mask``)
    masked: tuple = ()

    def clone(self, device: torch.device | None = None, grad: bool = False) -> "Call":
        return Call(_clone_value(self.args, device, grad), _clone_value(self.kwargs, device, grad), self.method)

    def run(self, module: nn.Module) -> Any:
        if self.method == "forward":
            return module(*self.args, **self.kwargs)
        return getattr(module, self.method)(*self.args, **self.kwargs)

    def leaves(self) -> list[torch.Tensor]:
        out: list[torch.Tensor] = []

        def walk(value: Any) -> None:
            if isinstance(value, torch.Tensor):
                out.append(value)
            elif isinstance(value, (tuple, list)):
                for v in value:
                    walk(v)
            elif isinstance(value, dict):
                for v in value.values():
                    walk(v)

        walk(self.args)
        walk(self.kwargs)
        return out

    def describe(self) -> str:
        parts = [_describe_value(v) for v in self.args]
        parts += [f"{k}={_describe_value(v)}" for k, v in self.kwargs.items()]
        text = ", ".join(parts)
        return text if self.method == "forward" else f"{self.method}({text})"

    def mapped(self, fn: Callable[[Any], Any]) -> "Call":
        """The same call with ``fn`` applied to its arguments (``compare._double``)."""
        return Call(fn(self.args), fn(self.kwargs), self.method, self.guessed)


@dataclass
class StepCall(Call):
    """Two calls of one module, the second fed what the first handed back: a decode step.

    The first call passes ``flag=True`` (a forward flag under which it hands back more than its
    output: ``return out, kv``); the second passes one step of the first input (its last position)
    with ``param=`` the ``index``-th value the first returned (the module's own cache, made by the
    module being run: the original's for the original, the patched one's for the patched).  Both
    calls' outputs are compared."""

    param: str = ""
    index: int = 1
    step_args: tuple = ()
    step_kwargs: dict = field(default_factory=dict)

    def clone(self, device: torch.device | None = None, grad: bool = False) -> "StepCall":
        return StepCall(_clone_value(self.args, device, grad), _clone_value(self.kwargs, device, grad), self.method,
                        self.guessed, param=self.param, index=self.index,
                        step_args=_clone_value(self.step_args, device, grad),
                        step_kwargs=_clone_value(self.step_kwargs, device, grad))

    def mapped(self, fn: Callable[[Any], Any]) -> "StepCall":
        return StepCall(fn(self.args), fn(self.kwargs), self.method, self.guessed, param=self.param,
                        index=self.index, step_args=fn(self.step_args), step_kwargs=fn(self.step_kwargs))

    def run(self, module: nn.Module) -> Any:
        first = Call.run(self, module)
        handed = first[self.index]
        second = Call(self.step_args, {**self.step_kwargs, self.param: handed}, self.method).run(module)
        return first, second

    def leaves(self) -> list[torch.Tensor]:
        return Call.leaves(self) + Call(self.step_args, self.step_kwargs).leaves()

    def describe(self) -> str:
        step = Call(self.step_args, self.step_kwargs, self.method).describe()
        return f"{Call.describe(self)}; then {step}, {self.param}=<what the first call handed back [{self.index}]>"


@dataclass(frozen=True)
class Variant:
    """Changes that steer a class onto another code path (to reach a patched line)."""

    config: tuple[tuple[str, Any], ...] = ()  # config fields set before building
    ctor: tuple[tuple[str, Any], ...] = ()  # constructor arguments
    forward: tuple[tuple[str, Any], ...] = ()  # forward arguments
    attrs: tuple[tuple[str, Any], ...] = ()  # boolean instance flags set on every layer that has them
    give: tuple[str, ...] = ()  # optional forward arguments to pass (``targets``, ``mask``)
    method: str = "forward"  # the method to call
    flags: tuple[tuple[str, Any], ...] = ()  # module flags / class attributes (``USE_SDPA``, ``Attn.use_sdpa``)
    # parameters only the patched method has, passed False to it alone: an attention that hands
    # its probabilities back takes the fused path when told they are not needed (``need_weights``)
    decline: tuple[str, ...] = ()
    # (param, flag): a decode step, ``param`` fed what a ``flag=True`` call handed back (StepCall)
    steps: tuple[tuple[str, str], ...] = ()
    # the boolean masks of the chosen inputs with no fully hidden row (:func:`mixed_rows`): a
    # guarded patch (ADP010's ``mask.all(-1).any()``) sends such rows to its original path, so
    # inputs that hold one never reach the fused call
    mixed_rows: bool = False
    # the boolean masks with a row hidden entirely whichever value hides (:func:`blind_rows`):
    # after a pass, a guarded patch's original path is checked with them
    blind_rows: bool = False
    # the floating 0/1 masks of the chosen inputs flipped (:func:`flipped_masks`): tried after a
    # guarded patch took its original path with them as given
    flipped_masks: bool = False

    def label(self) -> str:
        parts = [f"{k}={v!r}" for k, v in self.flags]
        if self.mixed_rows:
            parts.append("masks with no fully hidden row")
        if self.blind_rows:
            parts.append("masks with a fully hidden row")
        if self.flipped_masks:
            parts.append("0/1 float masks flipped (1 - mask)")
        parts += [f"{p} from the module's own {f}=True call (a second call of one step)" for p, f in self.steps]
        parts += [f"{k}=False (the patched {self.method}() only)" for k in self.decline]
        parts += [f"config.{k}={v!r}" for k, v in self.config]
        parts += [f"{k}={v!r} (constructor)" for k, v in self.ctor]
        parts += [f"{k}={v!r} (forward)" for k, v in self.forward]
        parts += [f"self.{k}={v!r}" for k, v in self.attrs]
        parts += [f"{k} given" for k in self.give]
        if self.method != "forward":
            parts.append(f"calling {self.method}()")
        return ", ".join(parts)


@dataclass
class Pair:
    original: nn.Module
    patched: nn.Module
    call: Call
    configs: list = field(default_factory=list)
    how: str = ""
    declined: bool = False  # the patched module was told it need not hand some outputs back (Variant.decline)
    # names of the original's outputs the patched one hands back as None there (compare.flatten's
    # names): not compared, and left out of the training loss on both sides
    dropped: set = field(default_factory=set)
    # what the verdict must say of the build beyond its label (a namespace verify filled in)
    note: str = ""


# ----------------------------------------------------------------------------- factories


def load_factory(spec: str, root: str | None) -> Callable:
    """``"pkg.mod:func"`` (importable, or relative to the config's folder) or ``"file.py:func"``."""
    if ":" not in spec:
        raise Skip(f"factory {spec!r} must look like 'module:function' or 'file.py:function'")
    target, _, func = spec.rpartition(":")
    added = False
    if root and root not in sys.path:
        sys.path.insert(0, root)
        added = True
    try:
        if target.endswith(".py"):
            file = target if os.path.isabs(target) else os.path.join(root or os.getcwd(), target)
            name = "_adopter_factory_" + os.path.splitext(os.path.basename(file))[0]
            spec_ = importlib.util.spec_from_file_location(name, file)
            if spec_ is None or spec_.loader is None:
                raise Skip(f"factory file {file} cannot be loaded")
            module = importlib.util.module_from_spec(spec_)
            spec_.loader.exec_module(module)
        else:
            module = importlib.import_module(target)
    except Skip:
        raise
    except Exception as exc:
        raise Skip(f"factory {spec!r} cannot be imported: {type(exc).__name__}: {exc}") from None
    finally:
        if added:
            try:
                sys.path.remove(root)
            except ValueError:
                pass
    try:
        return getattr(module, func)
    except AttributeError:
        raise Skip(f"factory {spec!r}: no function {func!r} in {target}") from None


def _factory_inputs(value: Any) -> Call:
    if isinstance(value, Call):
        return value
    if isinstance(value, dict):
        return Call((), dict(value))
    if isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], (tuple, list)) and isinstance(value[1], dict):
        return Call(tuple(value[0]), dict(value[1]))
    if isinstance(value, (tuple, list)):
        return Call(tuple(value), {})
    return Call((value,), {})


# ----------------------------------------------------------------------------- the builder


def _is_module_class(obj: Any) -> bool:
    return isinstance(obj, type) and issubclass(obj, nn.Module)


def _seed() -> None:
    torch.manual_seed(0)


def _has_nan(value: Any, depth: int = 0) -> bool:
    """Does an output (a tensor, or tuples, lists and dicts of them) hold a NaN?"""
    if isinstance(value, torch.Tensor):
        return bool(value.is_floating_point() and torch.isnan(value).any())
    if depth < 3 and isinstance(value, (tuple, list)):
        return any(_has_nan(v, depth + 1) for v in value)
    if depth < 3 and isinstance(value, dict):
        return any(_has_nan(v, depth + 1) for v in value.values())
    return False


def _output_leaves(value: Any, depth: int = 0) -> list[torch.Tensor]:
    """The tensors of an output (a tensor, or tuples, lists and dicts of them), in order."""
    if isinstance(value, torch.Tensor):
        return [value]
    out: list[torch.Tensor] = []
    if depth < 3 and isinstance(value, (tuple, list)):
        for v in value:
            out += _output_leaves(v, depth + 1)
    elif depth < 3 and isinstance(value, dict):
        for v in value.values():
            out += _output_leaves(v, depth + 1)
    return out


def _widened_by_mask(masked: Any, plain: Any) -> bool:
    """Does the output under a guessed mask have more axes, or a wider axis, than the same call's
    output without it?  Then the mask broadcast the module's own tensors wider (a ``[b, 1, s, s]``
    mask filled out of place into ``[b, s, s]`` scores): it is no mask of that module's layout,
    and a patch is not judged on it (a fused call rightly refuses it).  Outputs of different
    structure are not compared."""
    a, b = _output_leaves(masked), _output_leaves(plain)
    if not a or len(a) != len(b):
        return False
    return any(x.dim() > y.dim() or (x.dim() == y.dim() and any(m > n for m, n in zip(x.shape, y.shape)))
               for x, y in zip(a, b))


def _without_masks(call: Call) -> Call:
    """``call`` with its guessed masks None."""
    args = tuple(None if i in call.masked else v for i, v in enumerate(call.args))
    kwargs = {k: None if k in call.masked else v for k, v in call.kwargs.items()}
    return Call(args, kwargs, call.method, call.guessed)


def _narrowed_masks(call: Call) -> Iterator[Call]:
    """``call`` with one guessed mask narrower by one of its size-1 axes (``[b, 1, s, s]`` ->
    ``[b, s, s]``, ``[b, 1, 1, s]`` -> ``[b, 1, s]``), each mask and axis in turn."""
    for key in call.masked:
        value = call.args[key] if isinstance(key, int) else call.kwargs[key]
        if not isinstance(value, torch.Tensor) or value.dim() < 3:
            continue
        shapes: set[tuple[int, ...]] = set()
        for axis in range(value.dim()):
            if value.shape[axis] != 1 or value.shape[:axis] + value.shape[axis + 1:] in shapes:
                continue  # (two size-1 axes side by side narrow to one shape, tried once)
            shapes.add(value.shape[:axis] + value.shape[axis + 1:])
            narrow = value.squeeze(axis).contiguous()
            if isinstance(key, int):
                args, kwargs = tuple(narrow if i == key else v for i, v in enumerate(call.args)), dict(call.kwargs)
            else:
                args, kwargs = call.args, {**call.kwargs, key: narrow}
            yield Call(args, kwargs, call.method, call.guessed, masked=call.masked)


def run_quietly(fn: Callable[[], Any]) -> Any:
    """Run ``fn`` without the warnings and log messages model code prints while being built."""
    previous = logging.root.manager.disable
    logging.disable(max(previous, logging.WARNING))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return as_exception(fn)
    finally:
        logging.disable(previous)


def _is_cache_name(name: str) -> bool:
    """Arguments that carry state between calls (a KV cache): left at None."""
    lowered = name.lower()
    return any(part in lowered for part in ("cache", "past", "state", "memory", "hidden"))


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if len(text) > 160:
        text = text[:157] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def factory_hint(class_name: str, why: str) -> str:
    """A skip reason that names the one thing to provide: a factory for this class."""
    return f"name a factory in [tool.adopter.verify] factories for {class_name}: {why}"


def _closure_forward(module: nn.Module) -> Callable | None:
    """The function a ``forward(self, *args, **kwargs)`` hands its arguments to, when it is the
    one function its closure holds (a-unet's ``Module(modules, forward_fn)``): its signature
    says what the module takes.  None otherwise (the forward's own signature is read)."""
    forward = getattr(type(module), "forward", None)
    try:
        params = list(inspect.signature(forward).parameters.values())[1:]
    except (TypeError, ValueError):
        return None
    if not params or any(p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in params):
        return None
    cells = [c.cell_contents for c in (getattr(forward, "__closure__", None) or ())
             if inspect.isfunction(getattr(c, "cell_contents", None))]
    return cells[0] if len(cells) == 1 else None


def _own_call(module: nn.Module) -> Callable | None:
    """The class's own ``__call__`` when it replaces ``nn.Module.__call__`` and defines no
    ``forward`` (score-models' attention layers, research48): calling the module runs that
    method, so its signature says what the module takes.  None otherwise."""
    cls = type(module)
    if cls.__call__ is nn.Module.__call__ or cls.forward is not nn.Module.forward:
        return None
    return module.__call__


class _FunctionModule(nn.Module):
    """A module-level function as a module (no parameters), so it is compared like one."""

    def __init__(self, func: Callable):
        super().__init__()
        self.func = func

    def forward(self, *args, **kwargs):
        return self.func(*args, **kwargs)


@dataclass
class _Option:
    """One way to construct the class: ``make(module)`` gives (args, kwargs) in that module."""

    make: Callable[[ModuleType, bool], tuple[tuple, dict]]
    shown: str
    config: Any = None  # a Hugging Face config (shared, deep-copied for the patched class)
    config_param: str | None = None


def _overridden(option: _Option, changed: dict, note: str) -> _Option:
    """``option``'s build with the keyword arguments ``changed`` put over its own; shown as
    "<option> with <note>"."""

    def make(module: ModuleType, original: bool) -> tuple[tuple, dict]:
        args, given = option.make(module, original)
        return args, dict(given, **changed)

    return _Option(make, f"{option.shown} with {note}", option.config, option.config_param)


_DIVISIBLE = re.compile(r"divisible by\D{0,40}?\b(\d+)\b")
MAX_DIVISIBLE = 3  # arguments tried per divisibility error


NAMED_SIZE = 4  # the value given to a size argument the class's error names (``named_options``)


def _names_parameter(error: str, name: str) -> bool:
    """Whether an error message names the constructor parameter ``name``: as written
    (``max_block_size``), or in words, its underscores as spaces ("Specify window size.", audyn's
    Swin attention for ``window_size``; a name of two words or more, so one plain word does not
    count)."""
    if re.search(rf"(?<![A-Za-z0-9_]){re.escape(name)}(?![A-Za-z0-9_])", error):
        return True
    words = [w for w in name.strip("_").split("_") if w]
    if len(words) < 2:
        return False
    spaced = r"\s+".join(re.escape(w) for w in words)
    return re.search(rf"(?<![A-Za-z0-9_]){spaced}(?![A-Za-z0-9_])", error, re.IGNORECASE) is not None


def _unpacked_in_init(cls: type, name: str) -> int:
    """How many names ``cls.__init__`` unpacks its parameter ``name`` into (two or more), as it
    is or through one call of one argument (``window_size = _pair(window_size)`` then
    ``window_height, window_width = window_size``, or ``h, w = to_2tuple(size)``); 0 if it does not."""
    from .inputs import _function_def

    node = _function_def(cls.__init__)
    if node is None:
        return 0
    held = {name}

    def of_held(value: ast.expr) -> bool:
        if isinstance(value, ast.Call) and len(value.args) == 1 and not value.keywords:
            value = value.args[0]
        return isinstance(value, ast.Name) and value.id in held

    for sub in ast.walk(node):
        if not (isinstance(sub, ast.Assign) and len(sub.targets) == 1):
            continue
        target = sub.targets[0]
        if isinstance(target, ast.Name) and of_held(sub.value):
            held.add(target.id)
        elif isinstance(target, (ast.Tuple, ast.List)) and len(target.elts) >= 2 and of_held(sub.value) \
                and not any(isinstance(e, ast.Starred) for e in target.elts):
            return len(target.elts)
    return 0


def named_options(option: _Option, kwargs: dict, error: str, cls: type, seq: int | None = None) -> list[_Option]:
    """When the class's own error names constructor parameters left at their default None
    ("either max_block_size or blocks are given on initialization", charformer's GBST): the same
    build with one of them given a small size, one at a time.  A guess the class refuses (a
    tuple wanted) costs a try, never a verdict."""
    try:
        params = inspect.signature(cls.__init__).parameters
    except (TypeError, ValueError):
        return []
    out: list[_Option] = []
    for name, param in params.items():
        if param.default is not None or kwargs.get(name) is not None or not _names_parameter(error, name):
            continue
        arity = _unpacked_in_init(cls, name) if seq is not None else 0
        if arity:
            from .inputs import grids

            # unpacked into sides (``window_height, window_width = _pair(window_size)``): first
            # the sides of a grid of the sequence the inputs are guessed at, unequal ones first
            # (so a swapped pair fails loudly), as a size unpacked by name is (``_unpacked_sizes``)
            grid = next((g for g in grids(seq, arity) if min(g) >= 2), None)
            if grid is not None:
                out.append(_overridden(option, {name: grid}, f"{name}={grid} (named by its error, a grid of "
                                                             f"the sequence)"))
        out.append(_overridden(option, {name: NAMED_SIZE}, f"{name}={NAMED_SIZE} (named by its error)"))
        if len(out) >= MAX_DIVISIBLE:
            break
    return out


def _unpacked_attributes(tree: ast.Module | None, class_name: str) -> dict[str, int]:
    """``self.<attr>`` -> how many names a method of the file's class ``class_name`` unpacks it
    into (two or more: ``k1, k2 = self.kernel_size``); empty when it has none."""
    node = next((n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == class_name), None) \
        if tree is not None else None
    out: dict[str, int] = {}
    if node is None:
        return out
    for sub in ast.walk(node):
        if not (isinstance(sub, ast.Assign) and len(sub.targets) == 1):
            continue
        target, value = sub.targets[0], sub.value
        if isinstance(target, (ast.Tuple, ast.List)) and len(target.elts) >= 2 \
                and not any(isinstance(e, ast.Starred) for e in target.elts) \
                and isinstance(value, ast.Attribute) and isinstance(value.value, ast.Name) and value.value.id == "self":
            out[value.attr] = max(out.get(value.attr, 0), len(target.elts))
    return out


def unpacked_none_options(option: _Option, kwargs: dict, cls: type, text: str, tree: ast.Module | None,
                          seq: int) -> list[_Option]:
    """When no call of the built module ran: the same build with a constructor argument left at
    its default None given as sides, for an argument ``__init__`` stores unchanged
    (``self.kernel_size = kernel_size``) and a method unpacks into k names (``k1, k2 =
    self.kernel_size``): with None that line cannot run, whatever the inputs.  The sides are a
    grid of the sequence the inputs are guessed at (unequal ones first, so a swapped pair fails
    loudly), then a small size on every side, as for a size the class's error names
    (``named_options``).  A wrong guess costs a try, never a verdict."""
    from .inputs import grids

    try:
        params = inspect.signature(cls.__init__).parameters
    except (TypeError, ValueError):
        return []
    unpacked = _unpacked_attributes(tree, cls.__name__)
    if not unpacked:
        return []
    out: list[_Option] = []
    for attr, name in stored_parameters(text, cls.__name__).items():
        arity = unpacked.get(attr, 0)
        param = params.get(name)
        if not arity or param is None or param.default is not None or kwargs.get(name) is not None:
            continue
        grid = next((g for g in grids(seq, arity) if min(g) >= 2), None)
        for sides in ([grid] if grid is not None else []) + [(NAMED_SIZE,) * arity]:
            out.append(_overridden(option, {name: sides}, f"{name}={sides} (None cannot be unpacked into the "
                                                          f"{arity} names self.{attr} is)"))
        if len(out) >= MAX_DIVISIBLE:
            break
    return out[:MAX_DIVISIBLE]


def divisible_options(option: _Option, kwargs: dict, error: str) -> list[_Option]:
    """When the class's own error says a size must be divisible by N ("feature size is not
    divisible by number of components (6)"): the same build with one integer argument that N
    does not divide raised to the next multiple of N that keeps the divisors it had up to 8 (a
    width that heads divide stays so), one argument at a time.  Each is still built and run on
    the original first: a wrong guess costs a try, never a verdict."""
    found = _DIVISIBLE.search(error)
    if not found:
        return []
    factor = int(found.group(1))
    if not 2 <= factor <= 64:
        return []
    out: list[_Option] = []
    for name, value in kwargs.items():
        if not isinstance(value, int) or isinstance(value, bool) or value < 2 or value % factor == 0:
            continue
        step = factor
        for divisor in range(2, 9):
            if value % divisor == 0:
                step = step * divisor // math.gcd(step, divisor)
        new = -(-value // step) * step
        if new > 4096:
            continue
        out.append(_overridden(option, {name: new}, f"{name}={new} (divisible by {factor})"))
        if len(out) >= MAX_DIVISIBLE:
            break
    # A size derived from an argument the error names ("head_dim (embed_dim / num_heads = 4)
    # must be divisible by 8"): the argument N times as large, which N divides already
    for name, value in kwargs.items():
        if len(out) >= MAX_DIVISIBLE:
            break
        if not isinstance(value, int) or isinstance(value, bool) or value < 2 or value % factor \
                or not re.search(rf"\b{re.escape(name)}\b", error) or value * factor > 4096:
            continue
        out.append(_overridden(option, {name: value * factor},
                               f"{name}={value * factor} (a size derived from it divisible by {factor})"))
    return out


SMALL_GRID = 4  # an image side whose square is a token count that fits the sequences verify tries


def small_grid_option(option: _Option, kwargs: dict, cls: type) -> list[_Option]:
    """When no build ran: the first build again with every integer image-side argument (given, or
    left at its default) above ``SMALL_GRID`` set to it.  Token models take an image side to lay
    their sequence out as a grid (``img_seq_len = image_size ** 2``), which must fit the sequence
    length verify builds them with; a convolutional model runs at any side, so it loses nothing."""
    from .shrink import is_int, kind_of

    try:
        params = list(inspect.signature(cls.__init__).parameters.values())[1:]
    except (TypeError, ValueError):
        return []
    changed = {}
    for param in params:
        if kind_of(param.name) != "image":
            continue
        value = kwargs.get(param.name, param.default)
        if is_int(value) and value > SMALL_GRID:
            changed[param.name] = SMALL_GRID
    if not changed:
        return []
    shown = ", ".join(f"{k}={v}" for k, v in changed.items())
    return [_overridden(option, changed, f"{shown} (a small grid)")]


def _grid_sides(tree: ast.Module | None, class_name: str) -> list[tuple[str, ...]]:
    """Groups of ``class_name``'s constructor parameters that its code reshapes a tensor into as
    neighbouring sides of a grid: two or more adjacent arguments of one ``reshape``/``view`` call
    that are attributes ``__init__`` stores those parameters in unchanged (area attention's
    ``features.reshape(batch_size, self.memory_height, self.memory_width, feature_size)``)."""
    if tree is None:
        return []
    cls = next((n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == class_name), None)
    stored = _stored_parameters(tree, class_name) if cls is not None else {}
    out: list[tuple[str, ...]] = []
    for sub in ast.walk(cls) if stored else ():
        if not (isinstance(sub, ast.Call) and isinstance(sub.func, ast.Attribute) and sub.func.attr in ("reshape", "view")):
            continue
        run: list[str] = []
        for arg in [*sub.args, None]:
            param = stored.get(arg.attr) if isinstance(arg, ast.Attribute) and isinstance(arg.value, ast.Name) \
                and arg.value.id == "self" else None
            if param is not None and param not in run:
                run.append(param)
                continue
            if len(run) >= 2 and tuple(run) not in out:
                out.append(tuple(run))
            run = []
    return out


def grid_side_options(option: _Option, kwargs: dict, cls: type, tree: ast.Module | None,
                      seq: int) -> list[_Option]:
    """When no input ran: the first build again with each group of integer arguments the class
    reshapes its input into as the sides of a grid (``_grid_sides``) set to a grid of the
    sequence length the inputs are guessed at, unequal sides first (a swapped pair fails loudly).
    Area attention's memory is 1 x 1 by default, so only one key fits it, and softmax over one
    key is 1 whatever the scores: a check that could not tell a wrong scale.  Each build is still
    run on the original first: a wrong guess costs a try, never a verdict."""
    from .inputs import grids
    from .shrink import is_int

    try:
        params = {p.name: p for p in list(inspect.signature(cls.__init__).parameters.values())[1:]}
    except (TypeError, ValueError):
        return []
    out: list[_Option] = []
    for group in _grid_sides(tree, cls.__name__):
        if not all(name in params and is_int(kwargs.get(name, params[name].default)) for name in group):
            continue
        for grid in grids(seq, len(group)):
            if min(grid) >= 2:
                changed = dict(zip(group, grid))
                shown = ", ".join(f"{k}={v}" for k, v in changed.items())
                out.append(_overridden(option, changed, f"{shown} (a grid of the sequence)"))
    return out[:2]


def _smaller_options(option: _Option, kwargs: dict, cls: type) -> list[_Option]:
    """The build again with the huge sizes its constructor builds layers from set small
    (``oversized.huge_sizes``); options already so shrunk give none."""
    if "set small" in option.shown:
        return []
    return [_overridden(option, changed, note) for changed, note in huge_sizes(cls, kwargs)]


def _set_attributes(module: nn.Module, attrs: list[tuple[str, Any]]) -> None:
    """Set the attributes ``oversized.subclass_attributes`` found on the built module itself."""
    for key, value in attrs:
        setattr(module, key, value)


def _fixed_arguments(args: tuple, kwargs: dict, module: ModuleType, original: bool) -> tuple[tuple, dict]:
    """The same arguments for both builds (a deep copy for the patched one: configs are mutable)."""
    if original:
        return args, kwargs
    return copy.deepcopy((args, kwargs))


def _apply_attrs(module: nn.Module, attrs: tuple[tuple[str, Any], ...]) -> int:
    """Set boolean instance flags (``self.flash``) on every layer that has one; how many were set."""
    count = 0
    for sub in module.modules():
        for key, value in attrs:
            if isinstance(vars(sub).get(key), bool):
                setattr(sub, key, value)
                count += 1
    return count


def _decline(module: nn.Module, variant: Variant) -> None:
    """The patched module's ``variant.method`` with each of ``variant.decline`` passed False
    (an instance attribute: ``nn.Module.__call__`` calls ``self.forward``)."""
    if variant.decline:
        import functools

        bound = getattr(module, variant.method)
        setattr(module, variant.method, functools.partial(bound, **{name: False for name in variant.decline}))


def _declined(pair: Pair, variant: Variant) -> Pair:
    _decline(pair.patched, variant)
    pair.declined = bool(variant.decline)
    return pair


def _set_config(value: Any, overrides: dict[str, Any]) -> None:
    for key, item in overrides.items():
        try:
            setattr(value, key, item)
        except Exception:
            pass



def _merged(variants: list[Variant | None], method: str) -> Variant | None:
    """One variant making all of ``variants``' changes at once; None when two of them set one name
    to different values, or when one of them is None (a change no user can make, see
    ``Builder._joinable``)."""
    if any(v is None for v in variants):
        return None
    parts = {part: tuple(dict.fromkeys(i for v in variants for i in getattr(v, part)))
             for part in ("flags", "config", "ctor", "forward", "attrs")}
    give = tuple(dict.fromkeys(i for v in variants for i in v.give))
    if any(len({k for k, _ in items}) != len(items) for items in parts.values()) \
            or set(give) & {k for k, _ in parts["forward"]}:
        return None
    return Variant(**parts, give=give, method=method)

class Builder:
    """Builds (original, patched) instances of one class of one analysed file."""

    def __init__(self, original: ModuleType, source_text: str, sizes: Sizes, factories: dict[str, str] | None = None,
                 root: str | None = None, module_name: str = "", path: str | None = None,
                 package: str | None = None, groups: Groups | None = None):
        self.original = original
        # the variants ``variants`` made by joining a side's parts: tried on top of the usual cap
        # (core.MAX_VARIANTS), so that they never push out a variant tried before
        self.joined: set[Variant] = set()
        self.groups = groups  # process groups model-parallel layers need, set up on demand (parallel.py)
        self.sizes = sizes
        self.factories = dict(factories or {})
        self.root = root
        self.module_name = module_name
        self.path = path
        self.package = package
        self.text = source_text
        self._facts: dict[str, Any] = {}
        try:
            self._tree = ast.parse(source_text)
        except SyntaxError:
            self._tree = None

    # ------------------------------------------------------------ helpers

    def factory_for(self, class_name: str) -> str | None:
        for key in (f"{self.module_name}.{class_name}", class_name):
            if key in self.factories:
                return self.factories[key]
        for key, value in self.factories.items():
            if key.endswith("." + class_name) or key.endswith(":" + class_name):
                return value
        return None

    def class_of(self, module: ModuleType, class_name: str) -> type:
        cls = module
        for part in class_name.split("."):
            # ``Outer.Inner``: a class defined in another class's body (babyGPT's AttentionHead
            # inside babyGPT), reached as Python reaches it, one attribute at a time
            cls = getattr(cls, part, None)
        if not _is_module_class(cls):
            missing = next((getattr(base, "_adopter_package", None) for base in getattr(cls, "__mro__", ())
                            if getattr(base, "_adopter_package", None)), None)
            if missing:  # class Model(pl.LightningModule) with lightning not installed
                raise Skip(needs_text(missing))
            raise Skip(f"{class_name} is not an nn.Module class at module level")
        return cls

    def _class_node(self, class_name: str) -> ast.ClassDef | None:
        if self._tree is None:
            return None
        found, body = None, self._tree.body
        for part in class_name.split("."):  # ``Outer.Inner``: the class in its outer class's body
            found = next((node for node in body if isinstance(node, ast.ClassDef) and node.name == part), None)
            if found is None:
                return None
            body = found.body
        return found

    def config_flags_used(self, class_name: str) -> list[str]:
        node = self._class_node(class_name)
        if node is None:
            return []
        names: list[str] = []
        for sub in ast.walk(node):
            if isinstance(sub, ast.Attribute):
                base = sub.value
                if (isinstance(base, ast.Name) and base.id == "config") or (
                        isinstance(base, ast.Attribute) and base.attr == "config"):
                    if sub.attr not in names:
                        names.append(sub.attr)
        return names

    def facts_for(self, cls: type) -> ClassFacts:
        """What the source says about building ``cls`` (call sites included), once per class."""
        name = cls.__name__
        if name not in self._facts:
            try:
                sites = find_call_sites(self.path, name, self.package, self.text) if self.path else []
            except Exception:  # a strange project layout must not stop verification
                sites = []
            try:
                self._facts[name] = gather(cls, self.original, self._tree, sites)
            except NeedsFactory as exc:
                self._facts[name] = exc
        found = self._facts[name]
        if isinstance(found, NeedsFactory):
            raise found
        return found

    def compared_choices(self, class_name: str) -> list[tuple[str, list[str]]]:
        """The config fields a recipe values by the strings the class compares them with, each
        with the values tried (``construct.compared_choices``); none for a class built by a
        factory or from a Hugging Face config."""
        if class_name.startswith("function:") or self.factory_for(class_name):
            return []
        try:
            cls = self.class_of(self.original, class_name)
            if self._hf_configs(cls):
                return []
            return compared_choices(self.facts_for(cls), self.original)
        except (Skip, NeedsFactory):
            return []

    def _hf_configs(self, cls: type) -> list[type] | None:
        """The Hugging Face config classes for ``cls`` (None when it does not take one)."""
        if not self._takes_config(cls):
            return None
        candidates = hf.config_candidates(cls, self.original)
        return candidates or None

    @staticmethod
    def _takes_config(cls: type) -> bool:
        try:
            params = list(inspect.signature(cls.__init__).parameters.values())[1:]
        except (TypeError, ValueError):
            return False
        return any(p.name == "config" or hf._annotation_configs(p.annotation) for p in params)

    # ------------------------------------------------------------ module flags

    def _flag_value(self, module: ModuleType, name: str) -> Any:
        head, _, attr = name.partition(".")
        value = vars(module).get(head, _MISSING)
        if attr and value is not _MISSING:
            value = vars(value).get(attr, _MISSING) if isinstance(value, type) else _MISSING
        return value

    @contextmanager
    def flags(self, variant: Variant, patched_module: ModuleType | None = None):
        """Module-level flags and class attributes of the variant set in the original and the
        patched module while the check runs, then put back."""
        saved: list[tuple[Any, str, Any]] = []
        try:
            for module in (self.original, patched_module):
                if module is None:
                    continue
                for name, value in variant.flags:
                    head, _, attr = name.partition(".")
                    owner = module if not attr else vars(module).get(head)
                    key = attr or head
                    if owner is None:
                        continue
                    saved.append((owner, key, getattr(owner, key)))
                    setattr(owner, key, value)
            yield
        finally:
            for owner, key, value in reversed(saved):
                setattr(owner, key, value)

    def _switch_variant(self, guard, method: str) -> Variant | None:
        current = self._flag_value(self.original, guard.name)
        if isinstance(current, bool) or not isinstance(current, (str, int)) or type(current) is not type(guard.want):
            return None
        differ = guard.kind == "param_ne"
        if (current != guard.want) == differ:
            return None  # the default build already takes that side
        value = branches.switch_value(self.text, guard.name, guard.want, differ)
        return None if value is None else Variant(flags=((guard.name, value),), method=method)

    # ------------------------------------------------------------ variants

    def _function_variants(self, name: str, found_guards: list, method: str) -> list[Variant]:
        """A module-level function verified alone: its own parameters steered into the branches
        the edit is under (``causal=True`` for ``if softclamp or not causal: <original> else:
        <fused>``), each guard alone, then all of them at once."""
        try:
            params = inspect.signature(getattr(self.original, name)).parameters
        except (TypeError, ValueError, AttributeError):
            return []
        items: list[tuple[str, Any]] = []
        gives: list[str] = []
        for guard in found_guards:
            param = params.get(guard.name) if guard.kind == "param" else None
            if param is None:
                continue
            if isinstance(guard.want, bool) and isinstance(param.default, bool):
                if (guard.name, guard.want) not in items and param.default != guard.want:
                    items.append((guard.name, guard.want))
            elif guard.want in ("given", True) and param.default is None and guard.name not in gives:
                gives.append(guard.name)
            elif guard.want == "absent" and param.default is None:
                continue  # already absent by default
        if len({k for k, _ in items}) != len(items):
            items = []  # both sides of one flag: no single setting
        out = [Variant(forward=(item,), method=method) for item in items]
        out += [Variant(give=(g,), method=method) for g in gives]
        if len(items) + len(gives) > 1:
            out.append(Variant(forward=tuple(items), give=tuple(gives), method=method))
        return out

    def _kept_variants(self, class_name: str, method: str, forward_params: dict, ctor_params: dict,
                       from_guards: list[Variant]) -> list[Variant]:
        """An optional forward argument the forward throws away unless a constructor switch is on
        (``branches.kept_conditions``): given, with the build that keeps it, and with the
        arguments the edit's guards give (graphium's ``attn_bias`` with ``biased_attention=True``
        and a ``key_padding_mask``): a guarded patch's fused path may want them all at once."""
        out: list[Variant] = []
        gives = tuple(dict.fromkeys(g for v in from_guards for g in v.give))
        for name, condition in branches.kept_conditions(self.text, class_name, method).items():
            param = forward_params.get(name)
            values = tuple((k, v) for k, v in condition if k in ctor_params and v not in ("given", None))
            if param is None or param.default is not None or len(values) != len(condition):
                continue
            out.append(Variant(ctor=values, give=tuple(dict.fromkeys((name, *gives))), method=method))
        return out

    def _joinable(self, variant: Variant, class_name: str, ctor_params: dict) -> Variant | None:
        """``variant`` as a part of a joint change (every part of a side's test at once), or None
        when no user could make it.  Forward arguments, constructor arguments, config fields and
        module switches are inputs; an attribute set after building is a state a user reaches only where
        ``__init__`` sets it to constants (``self.tpu = False``).  An attribute ``__init__``
        computes from its arguments (``self.gated = not sharp`` beside ``self.causal = sharp``)
        goes through those arguments (stored as it is, or the conditions under which ``__init__``
        sets it), else not at all: set alone it makes a module no constructor builds, where a
        patch that drops a branch of the other attribute passes."""
        if not variant.attrs:
            return variant
        ctor: list[tuple[str, Any]] = []
        attrs: list[tuple[str, Any]] = []
        stored = branches.stored_parameters(self.text, class_name)
        for name, want in variant.attrs:
            values = branches.init_values(self.text, class_name, name)
            if values and all(isinstance(v, ast.Constant) for v in values):
                attrs.append((name, want))
                continue
            param = stored.get(name)
            if param in ctor_params and len(values) == 1:
                ctor.append((param, want))
                continue
            condition = next(iter(branches.init_conditions(self.text, class_name, name, bool(want))), None)
            if not condition or any(k not in ctor_params or v in ("given", None) for k, v in condition):
                return None
            ctor += condition
        return Variant(flags=variant.flags, config=variant.config, ctor=variant.ctor + tuple(ctor),
                       forward=variant.forward, attrs=tuple(attrs), give=variant.give, method=variant.method)

    def _step_variants(self, name: str, found_guards: list, forward_params: dict, ctor_params: dict,
                       class_name: str, method: str) -> list[Variant]:
        """Two-step calls that feed the optional forward argument ``name`` what a first call hands
        back under a flag of the forward (``if not flag: return out`` / ``return out, kv``): the
        first such flag, alone and with each boolean switch of the constructor flipped.  Where a
        guard of the edit also wants that flag True (``if use_cache and layer_past is not
        None:``), the second call keeps it set (``forward=((flag, True),)``)."""
        out: list[Variant] = []
        for flag in branches.returning_flags(self.text, class_name, method):
            if flag in forward_params and forward_params[flag].default is False:
                steps = ((name, flag),)
                keep = ((flag, True),) if any(g.kind == "param" and g.name == flag and g.want is True
                                              for g in found_guards) else ()
                out.append(Variant(steps=steps, forward=keep, method=method))
                for ctor_name, param in ctor_params.items():  # with each switch of the constructor
                    if isinstance(param.default, bool):
                        out.append(Variant(steps=steps, forward=keep, ctor=((ctor_name, not param.default),),
                                           method=method))
                break
        return out

    def variants(self, class_name: str, found_guards: list = (), method: str = "forward",
                 helper_conditions: list = ()) -> list[Variant]:
        """The default build first, then the changes that take the branches the edit is under
        (``helper_conditions``: those of a module-level function the class calls, as constructor
        argument values, ``branches.helper_conditions``), then one flag flipped at a time."""
        out = [Variant(method=method)]
        if class_name.startswith("function:"):
            out += self._function_variants(class_name.split(":", 1)[1], found_guards, method)
            return out
        spec = self.factory_for(class_name)
        cls = self.class_of(self.original, class_name)
        try:
            forward_params = {p.name: p for p in list(inspect.signature(getattr(cls, method)).parameters.values())[1:]}
        except (TypeError, ValueError, AttributeError):
            forward_params = {}
        try:
            ctor_params = {p.name: p for p in list(inspect.signature(cls.__init__).parameters.values())[1:]}
        except (TypeError, ValueError):
            ctor_params = {}
        from_guards: list[Variant] = []
        sides: dict[tuple[int, str], list[Variant]] = {}  # a side all of whose parts must hold: their changes
        stepped: list[Variant] = []  # two-step calls (a decode step), tried after the guards' own changes
        for guard in found_guards:
            variant = None
            if guard.kind == "attr" and isinstance(guard.want, bool):
                field_ = branches.stored_fields(self.text, class_name).get(guard.name) if not spec else None
                if field_ is not None:
                    # ``self.dual_domain = config["dual_domain"]``: built with the config's field
                    # so (what __init__ makes under it exists too), then the attribute as before
                    candidate = Variant(config=((field_, guard.want),), method=method)
                    if candidate not in from_guards:
                        from_guards.append(candidate)
                variant = Variant(attrs=((guard.name, guard.want),), method=method)
            elif guard.kind == "config" and isinstance(guard.want, bool) and not spec:
                variant = Variant(config=((guard.name, guard.want),), method=method)
            elif guard.kind == "param" and guard.name in forward_params and not spec:
                param = forward_params[guard.name]
                if guard.want == "given" and param.default is not inspect.Parameter.empty:
                    variant = Variant(give=(guard.name,), method=method)
                    if param.default is None:
                        # ``if use_cache and layer_past is not None:`` a past the module may make
                        # itself (``present = torch.stack([k, v])`` handed back under its flag):
                        # a guessed tensor rarely has the shape its code reads, the module's own does
                        stepped += self._step_variants(guard.name, found_guards, forward_params, ctor_params,
                                                       class_name, method)
                elif guard.want == "absent" and param.default is None:
                    variant = Variant(forward=((guard.name, None),), method=method)
                elif isinstance(guard.want, bool) and isinstance(param.default, bool):
                    variant = Variant(forward=((guard.name, guard.want),), method=method)
                elif guard.want is True and param.default is None:
                    variant = Variant(give=(guard.name,), method=method)
            elif guard.kind == "attr_eq" and not spec:
                # the constructor argument stored in the attribute, else the attribute set after
                # building (a mode read only by forward)
                param = stored_parameters(self.text, class_name).get(guard.name)
                if param in ctor_params:
                    variant = Variant(ctor=((param, guard.want),), method=method)
                else:
                    # the constructor arguments under which __init__ sets the attribute to that
                    # value (``if window_size == 1: self.h_heads = 0``): built so, the layers the
                    # branch uses exist too; then the attribute set after building, as before
                    for condition in init_value_conditions(self.text, class_name, guard.name, guard.want)[:2]:
                        values = tuple((k, v) for k, v in condition if k in ctor_params and v not in ("given", None))
                        candidate = Variant(ctor=values, method=method)
                        if values and len(values) == len(condition) and candidate not in from_guards:
                            from_guards.append(candidate)
                    variant = Variant(attrs=((guard.name, guard.want),), method=method)
            elif guard.kind == "param_eq" and guard.name in forward_params and not spec:
                variant = Variant(forward=((guard.name, guard.want),), method=method)
            elif guard.kind == "param_exists" and guard.want == "given" and not spec and \
                    guard.name in forward_params and forward_params[guard.name].default is None:
                # ``if exists(cache):`` a value only the module itself makes: fed back from a call
                # whose flag makes it hand back more than its output (``return out, kv``)
                stepped += self._step_variants(guard.name, found_guards, forward_params, ctor_params, class_name,
                                               method)
            elif guard.kind in ("param_eq", "param_ne") and guard.name not in forward_params \
                    and guard.name not in ctor_params:
                # a module-level switch compared with a literal (``if _ATTN_PRECISION == "fp32":``,
                # read from the environment when the module loads): set on both modules alike
                variant = self._switch_variant(guard, method)
            elif guard.kind == "param" and guard.name in ctor_params and not spec:
                param = ctor_params[guard.name]
                if isinstance(guard.want, bool) and isinstance(param.default, bool):
                    variant = Variant(ctor=((guard.name, guard.want),), method=method)
            elif guard.kind in ("param", "global") and isinstance(guard.want, bool) and \
                    isinstance(self._flag_value(self.original, guard.name), bool):
                variant = Variant(flags=((guard.name, guard.want),), method=method)
            if variant is not None and variant not in from_guards:
                from_guards.append(variant)
            if variant is not None and guard.joint:
                sides.setdefault((guard.line, guard.branch), []).append(
                    self._joinable(variant, class_name, ctor_params))
            if guard.kind == "attr_set" and guard.want == "absent" and not spec:
                # ``if self.attn_type is None:`` where __init__ stores a constructor argument in it
                # as it is (``self.attn_type = attn_type``): built with that argument None, the
                # value the class's own test names (its default, a caller of the file or a guess
                # may give it another; a build that fails with None only costs a try)
                param = stored_parameters(self.text, class_name).get(guard.name)
                if param in ctor_params:
                    candidate = Variant(ctor=((param, None),), method=method)
                    if candidate not in from_guards:
                        from_guards.append(candidate)
            if guard.kind in ("attr", "attr_set") and not spec:
                want_set = guard.want in (True, "given")
                for condition in init_conditions(self.text, class_name, guard.name, want_set)[:3]:
                    values = tuple((k, v if v != "given" else self._given_value(ctor_params[k]))
                                   for k, v in condition if k in ctor_params)
                    values = tuple((k, v) for k, v in values if v is not None and v != "given")
                    if values and len(values) == len(condition):
                        candidate = Variant(ctor=values, method=method)
                        if candidate not in from_guards:
                            from_guards.append(candidate)
        for condition in helper_conditions if not spec else ():
            values = tuple((k, v) for k, v in condition if k in ctor_params and v not in ("given", None))
            if values and len(values) == len(condition):
                candidate = Variant(ctor=values, method=method)
                if candidate not in from_guards:
                    from_guards.append(candidate)
        merged = _merged(from_guards, method) if len(from_guards) > 1 else None
        if merged is not None and merged not in from_guards:
            # nested branches: all of them at once (one value per name: not both sides of ``mode
            # == 'a'`` / ``'b'``)
            from_guards.insert(0, merged)
        for joint in reversed([j for j in (_merged(v, method) for v in sides.values() if len(v) > 1)
                               if j is not None]):
            # ``if need_weights or self.tpu or before_softmax: <original> else: <fused>``: the else
            # wants every part false at once, which no change of one part reaches
            if joint not in from_guards:
                from_guards.insert(0, joint)
                self.joined.add(joint)
        out += from_guards
        if not spec and found_guards:
            out += [v for v in self._kept_variants(class_name, method, forward_params, ctor_params, from_guards)
                    if v not in out]
        out += [v for v in stepped if v not in out]
        if spec:
            return out
        flips: list[Variant] = []
        hf_configs = self._hf_configs(cls)
        if hf_configs:
            try:
                default = hf.tiny_config(hf_configs[0], self.sizes)
            except Exception:
                default = None
            if default is not None:
                for name in self.config_flags_used(class_name):
                    value = getattr(default, name, None)
                    if isinstance(value, bool):
                        flips.append(Variant(config=((name, not value),), method=method))
        for where, params in (("ctor", ctor_params), ("forward", forward_params)):
            for param in params.values():
                if isinstance(param.default, bool):
                    item = ((param.name, not param.default),)
                    flips.append(Variant(ctor=item, method=method) if where == "ctor"
                                 else Variant(forward=item, method=method))
                elif where == "forward" and param.default is None and param.name.lower() in (
                        "targets", "target", "labels", "label", "y", "mask", "attn_mask", "attention_mask"):
                    flips.append(Variant(give=(param.name,), method=method))
        for variant in flips:
            if variant not in out:
                out.append(variant)
        return out

    # ------------------------------------------------------------ construction

    def _options(self, cls: type, variant: Variant) -> Iterator[_Option]:
        hf_configs = self._hf_configs(cls)
        if hf_configs:
            yield from self._hf_options(cls, hf_configs, variant)
            return
        try:
            info = self.facts_for(cls)
            for recipe in recipes(info, self.original, self.sizes, dict(variant.ctor), dict(variant.config)):
                yield self._recipe_option(recipe, variant)
        except NeedsFactory as exc:
            raise Skip(factory_hint(cls.__name__, str(exc))) from None

    def _recipe_option(self, recipe: Recipe, variant: Variant) -> _Option:
        overrides = dict(variant.config)

        def make(module: ModuleType, original: bool) -> tuple[tuple, dict]:
            args = resolve(recipe.args, module)
            kwargs = resolve(recipe.kwargs, module)
            if overrides and recipe.config_param and recipe.config_param in kwargs:
                _set_config(kwargs[recipe.config_param], overrides)
            return tuple(args), dict(kwargs)

        return _Option(make, recipe.label, None, recipe.config_param)

    def _hf_options(self, cls: type, candidates: list[type], variant: Variant) -> Iterator[_Option]:
        try:
            params = list(inspect.signature(cls.__init__).parameters.values())[1:]
        except (TypeError, ValueError):
            raise Skip(f"cannot read the signature of {cls.__name__}.__init__") from None
        ctor_overrides = dict(variant.ctor)
        config_param = next((p for p in params if p.name == "config" or hf._annotation_configs(p.annotation)), None)
        configs: list[tuple[Any, str]] = []
        for config_cls in candidates:
            try:
                config = hf.tiny_config(config_cls, self.sizes, dict(variant.config))
            except Exception:
                continue
            configs.append((config, hf.describe(config, self.sizes)))
        if not configs:
            raise Skip(factory_hint(cls.__name__, f"none of {', '.join(c.__name__ for c in candidates)} builds "
                                                  "with default arguments"))
        for config, label in configs:
            per_param: list[tuple[inspect.Parameter, list[Any]]] = []
            for param in params:
                if param is config_param:
                    per_param.append((param, [config]))
                elif param.name in ctor_overrides:
                    value = ctor_overrides[param.name]
                    if value is ZEROS:
                        value = zeros_like(param.default)
                        value = 0 if value is None else value
                    per_param.append((param, [value]))
                elif param.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
                    continue
                elif param.default is not inspect.Parameter.empty:
                    continue
                else:
                    values = ([getattr(config, param.name)] if param.name in vars(config) else []) + \
                        guess_value(param.name, param.annotation, self.sizes)
                    if not values:
                        raise Skip(factory_hint(cls.__name__, f"cannot infer argument `{param.name}`"))
                    per_param.append((param, values))
            for count, combo in enumerate(itertools.product(*[v for _, v in per_param])):
                if count >= MAX_CTOR_TRIES:
                    break
                args: list[Any] = []
                kwargs: dict[str, Any] = {}
                for (param, _), value in zip(per_param, combo):
                    if param.kind == inspect.Parameter.POSITIONAL_ONLY:
                        args.append(value)
                    else:
                        kwargs[param.name] = value
                shown = ", ".join([label] + [f"{p.name}={v!r}" for (p, _), v in zip(per_param, combo)
                                             if p is not config_param])

                yield _Option(functools.partial(_fixed_arguments, tuple(args), dict(kwargs)),
                              f"{cls.__name__}({shown})", config,
                              config_param.name if config_param is not None else None)

    def build(self, class_name: str, patched_module: ModuleType, variant: Variant = Variant(),
              patched_context: Callable[[], Any] = nullcontext) -> Pair:
        if class_name.startswith("function:"):
            return self._build_function(class_name.split(":", 1)[1], patched_module, variant, patched_context)
        original_cls = self.class_of(self.original, class_name)
        try:
            patched_cls = self.class_of(patched_module, class_name)
        except Skip as exc:
            raise Broken(f"the patched module has no class {class_name}: {exc}") from None
        spec = self.factory_for(class_name)
        if spec:
            pair = self._build_with_factory(spec, original_cls, patched_cls, patched_context)
            if variant.attrs:
                _apply_attrs(pair.original, variant.attrs)
                _apply_attrs(pair.patched, variant.attrs)
            return _declined(pair, variant)
        first_error: str | None = None
        needs: str | None = None
        options = self._options(original_cls, variant)
        retries: list[_Option] = []  # builds the class's own errors ask for (``divisible_options``)
        repaired = False
        first: tuple[_Option, dict] | None = None  # the first build tried, for ``small_grid_option``
        grid_tried = False
        smaller: list[_Option] = []  # builds too large to check, their huge sizes set small (``_smaller_options``)
        while True:
            option = next(options, None)
            if option is None and not retries and first is not None and not grid_tried:
                retries, grid_tried = small_grid_option(first[0], first[1], original_cls) + grid_side_options(
                    first[0], first[1], original_cls, self._tree, self.sizes.seq), True
            if option is None:
                if not retries and smaller:
                    retries = [smaller.pop(0)]  # one at a time: a failed one's own retries replace ``retries``
                if not retries:
                    break
                option = retries.pop(0)
            _seed()
            kwargs = {}
            try:
                args, kwargs = option.make(self.original, True)
                if first is None:
                    first = (option, kwargs)
                original = run_quietly(lambda: construct(self.groups, lambda: original_cls(*args, **kwargs)))
            except Exception as exc:
                memory.note(exc)
                needs = needs or missing_package(exc)
                first_error = first_error or f"{option.shown} raised {_short(exc)}"
                if not repaired:
                    retries = divisible_options(option, kwargs, str(exc)) or \
                        named_options(option, kwargs, str(exc), original_cls, self.sizes.seq)
                    repaired = bool(retries)
                continue
            count = sum(p.numel() for p in original.parameters())
            if count > MAX_PARAMETERS.get(self.sizes.name, MAX_PARAMETERS["verify"]):
                first_error = first_error or f"{option.shown} has {count / 1e6:.0f}M parameters, too many to check here"
                smaller += _smaller_options(option, kwargs, original_cls)
                continue
            set_attrs = subclass_attributes(self._tree, class_name, original)
            _set_attributes(original, set_attrs)
            if variant.attrs and not _apply_attrs(original, variant.attrs):
                raise Skip(f"no layer of {class_name} has the flag {variant.attrs[0][0]}")
            original.eval()
            redrawn = redraw_uninitialised(original)
            config = option.config
            if config is None and option.config_param:
                config = kwargs.get(option.config_param)
            hints = hints_of(config, {k: v for k, v in kwargs.items() if k != option.config_param})
            call = self._first_working_call(original, hints, variant)
            if isinstance(call, tuple):
                needs = needs or call[1]
                first_error = first_error or call[0]
                if not repaired:
                    retries = divisible_options(option, kwargs, call[0]) or \
                        unpacked_none_options(option, kwargs, original_cls, self.text, self._tree,
                                              self.sizes.seq)
                    repaired = bool(retries)
                continue
            if call.guessed:
                captured = self._build_captured(original_cls, patched_cls, patched_module, variant, patched_context)
                if captured is not None:
                    return _declined(captured, variant)
            _seed()
            try:
                with patched_context():
                    patched_args, patched_kwargs = option.make(patched_module, False)
                    patched = run_quietly(lambda: construct(self.groups, lambda: patched_cls(*patched_args, **patched_kwargs)))
            except Exception as exc:
                raise Broken(f"the patched {option.shown} raised {_short(exc)}; the original builds") from None
            _set_attributes(patched, set_attrs)
            _apply_attrs(patched, variant.attrs)
            _decline(patched, variant)
            configs = [c for c in (config, *[v for v in [*patched_args, *patched_kwargs.values()]
                                             if _is_config_object(v)]) if c is not None and _is_config_object(c)]
            shown = option.shown + (self.groups.describe() if self.groups is not None else "")
            if redrawn:
                shown += f"; {redrawn} parameter(s) the constructor left uninitialised drawn afresh"
            if set_attrs:
                shown += "; " + ", ".join(f"self.{k} = {v!r}" for k, v in set_attrs) + \
                    " set as the file's subclasses set it (its methods read it; only they set it)"
            return Pair(original, patched, call, configs, shown, declined=bool(variant.decline),
                        note=unread_note(kwargs))
        captured = self._build_captured(original_cls, patched_cls, patched_module, variant, patched_context)
        if captured is not None:
            return _declined(captured, variant)
        if needs:
            raise Skip(needs_text(needs))
        raise Skip(factory_hint(class_name, first_error or f"no way to build {class_name}"))

    # ------------------------------------------------------------ from the model that contains it

    def users(self, class_name: str, limit: int = 4) -> list[tuple[str, tuple]]:
        """Classes of the file that build ``class_name``, nearest first (users of users next),
        each with the constructor arguments that make it do so: none when it names the class,
        ``block=<the class>`` when it takes a class-valued argument the class fits."""
        if self._tree is None:
            return []
        classes = {n.name: n for n in self._tree.body if isinstance(n, ast.ClassDef)}
        mentions = {name: {sub.id for sub in ast.walk(node) if isinstance(sub, ast.Name) and sub.id in classes
                           and sub.id != name} for name, node in classes.items()}
        out: list[tuple[str, tuple]] = []
        seen = {class_name}
        frontier = [class_name]
        memo: dict = {}  # each class's reads worked out once for the whole search (only read here)
        while frontier and len(out) < limit:
            current = frontier.pop(0)
            for name in classes:
                if name in seen:
                    continue
                overrides: tuple | None = None
                if current in mentions[name]:
                    overrides = ()
                else:
                    reads = facts.argument_reads(classes, name, memo=memo)
                    for param, read in reads.items():
                        if read.called >= 0:
                            attrs = {k for k, v in read.attrs.items() if not v.attrs and v.called < 0}
                            if current in facts.local_module_classes_with(classes, attrs, read.called):
                                overrides = ((param, Ref(current)),)
                                break
                if overrides is not None:
                    seen.add(name)
                    out.append((name, overrides))
                    frontier.append(name)
        return out[:limit]

    @staticmethod
    def _switches(user_cls: type, class_name: str) -> list[tuple]:
        """Constructor switches of a user that may be what makes it build ``class_name``: none
        first, then its boolean arguments that default to False, those naming the class first
        (``use_cope=True`` for ``CoPE``)."""
        try:
            params = list(inspect.signature(user_cls.__init__).parameters.values())[1:]
        except (TypeError, ValueError):
            return [()]
        flags = [p.name for p in params if p.default is False]
        key = class_name.lower()
        flags.sort(key=lambda name: not any(part and part in key for part in name.lower().split("_")
                                            if part not in ("use", "add", "with", "is", "has", "enable")))
        return [()] + [((name, True),) for name in flags[:3]]

    def _given_value(self, param: inspect.Parameter) -> Any:
        """A value for a constructor argument that defaults to None and must be given to take a
        branch (alphafold3's ``window_size=None``, ``self.is_local_attn = exists(window_size)``):
        what its name and annotation suggest, else a small count for a size, length or window
        (half the verify sequence, so there are windows to split); None when nothing fits."""
        if param.default is not None:
            return None
        annotation = param.annotation if param.annotation is not inspect.Parameter.empty else None
        guessed = guess_value(param.name, annotation, self.sizes)
        if guessed:
            return guessed[0]
        lowered = param.name.lower()
        if any(part in lowered for part in ("size", "len", "window")):
            return max(1, self.sizes.seq // 2)
        return None

    def _builds_in_forward(self, user: str, class_name: str) -> bool:
        """Whether ``user``'s ``forward`` calls ``class_name`` (builds an instance on every call)."""
        cls = next((n for n in self._tree.body if isinstance(n, ast.ClassDef) and n.name == user), None) \
            if self._tree is not None else None
        forward = next((f for f in cls.body if isinstance(f, ast.FunctionDef) and f.name == "forward"), None) \
            if cls is not None else None
        return forward is not None and any(isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
                                           and n.func.id == class_name for n in ast.walk(forward))

    def _build_captured(self, original_cls: type, patched_cls: type, patched_module: ModuleType, variant: Variant,
                        patched_context: Callable[[], Any]) -> Pair | None:
        """Build the class with the arguments and inputs a model of the same file gives it."""
        if variant.method != "forward" or variant.config:
            return None
        for user, overrides in self.users(original_cls.__name__):
            user_cls = getattr(self.original, user, None)
            if not _is_module_class(user_cls) or self.factory_for(user):
                continue
            options: list[_Option] = []
            for extra in self._switches(user_cls, original_cls.__name__):
                try:
                    options += list(itertools.islice(self._options(user_cls, Variant(ctor=overrides + extra)), 2))
                except Skip:
                    break
            for option in options[:8]:
                model = None  # the last try's build freed before the next is made (two never held at once)
                recording = Recording(original_cls)
                try:
                    with recording:
                        _seed()
                        args, kwargs = option.make(self.original, True)
                        model = run_quietly(lambda: construct(self.groups, lambda: user_cls(*args, **kwargs)))
                except Exception as exc:
                    memory.note(exc)
                    continue
                model.eval()
                config = option.config if option.config is not None else kwargs.get(option.config_param or "")
                hints = hints_of(config, {k: v for k, v in kwargs.items() if k != option.config_param})
                if recording.ctor is None or recording.instance is None:
                    # not built by the user's __init__: perhaps by its forward, on every call
                    # (tsai's `_ScaledDotProductAttention(self.d_k)(q_s, k_s, v_s)`)
                    if not self._builds_in_forward(user, original_cls.__name__):
                        continue  # this user does not build the class with these arguments
                    call = self._first_working_call(model, hints, Variant())
                    if isinstance(call, tuple):
                        continue
                    recording = Recording(original_cls, inputs=True)
                    try:
                        with recording, torch.no_grad():
                            run_quietly(lambda call=call, model=model: call.clone().run(model))
                    except Exception as exc:
                        memory.note(exc)
                        continue
                    if recording.ctor is None:
                        continue
                    seen = recording.seen
                else:
                    call = self._first_working_call(model, hints, Variant())
                    if isinstance(call, tuple):
                        continue
                    seen = first_inputs(recording.instance, lambda: run_quietly(lambda: call.clone().run(model)))
                recipe = to_recipe(*recording.ctor, self.original)
                if seen is None or recipe is None:
                    continue
                ctor_args, ctor_kwargs = recipe
                ctor_kwargs = dict(ctor_kwargs, **{k: (v if v is not ZEROS else
                                                       (zeros_like(ctor_kwargs.get(k)) if zeros_like(ctor_kwargs.get(k))
                                                        is not None else 0))
                                                   for k, v in variant.ctor})
                inputs = Call(tuple(seen[0]), dict(seen[1]))
                for key, value in variant.forward:
                    inputs.kwargs[key] = value
                shown = f"{original_cls.__name__}(...) as {user} builds it ({option.shown})"
                _seed()
                try:
                    original = run_quietly(lambda: original_cls(*resolve(ctor_args, self.original),
                                                                **resolve(ctor_kwargs, self.original)))
                    _apply_attrs(original, variant.attrs)
                    original.eval()
                    redraw_uninitialised(original)
                    with torch.no_grad():
                        run_quietly(lambda: inputs.clone().run(original))
                except Exception:
                    continue
                _seed()
                try:
                    with patched_context():
                        patched = run_quietly(lambda: patched_cls(*resolve(ctor_args, patched_module),
                                                                  **resolve(ctor_kwargs, patched_module)))
                except Exception as exc:
                    raise Broken(f"the patched {shown} raised {_short(exc)}; the original builds") from None
                _apply_attrs(patched, variant.attrs)
                return Pair(original, patched, inputs, [], shown)
        return None

    def _build_function(self, name: str, patched_module: ModuleType, variant: Variant,
                        patched_context: Callable[[], Any]) -> Pair:
        original_fn = getattr(self.original, name, None)
        patched_fn = getattr(patched_module, name, None)
        if not callable(original_fn):
            raise Skip(f"{name} is not a module-level function")
        if not callable(patched_fn):
            raise Broken(f"the patched module has no function {name}")
        original = _FunctionModule(original_fn)
        call = self._first_working_call(original, {}, variant, signature=original_fn)
        if isinstance(call, tuple):
            if call[1]:
                raise Skip(needs_text(call[1]))
            raise Skip(f"name a factory in [tool.adopter.verify] factories for {name}: {call[0]}")
        _seed()
        with torch.no_grad():
            made = run_quietly(lambda: construct(self.groups, lambda: call.clone().run(original)))
        if isinstance(made, nn.Module):
            return self._build_made(name, original, patched_fn, call, variant, patched_context)
        with patched_context():
            patched = _FunctionModule(patched_fn)
        return _declined(Pair(original, patched, call, [], f"{name}(...)"), variant)

    def _build_made(self, name: str, original_fn: nn.Module, patched_fn: Callable, call: Call, variant: Variant,
                    patched_context: Callable[[], Any]) -> Pair:
        """A function that builds a module (a-unet's ``AttentionBase(features, head_features,
        num_heads)`` returns ``Module([to_out], forward)``, its attention in the closure
        ``forward``): the module the original function builds and the one the patched function
        builds with the same arguments, fed like any module."""
        def make(fn: nn.Module) -> nn.Module:
            _seed()
            return run_quietly(lambda: construct(self.groups, lambda: call.clone().run(fn)))

        original = make(original_fn)
        original.eval()
        redraw_uninitialised(original)
        inner = self._first_working_call(original, {}, variant, signature=_closure_forward(original))
        if isinstance(inner, tuple):
            if inner[1]:
                raise Skip(needs_text(inner[1]))
            raise Skip(f"name a factory in [tool.adopter.verify] factories for {name}: the module it builds "
                       f"takes {inner[0]}")
        with patched_context():
            patched = make(_FunctionModule(patched_fn))
        if not isinstance(patched, nn.Module):
            raise Broken(f"the patched {name}({call.describe()}) built no module; the original builds one")
        return Pair(original, patched, inner, [], f"the module {name}({call.describe()}) builds")

    def _first_working_steps(self, module: nn.Module, hints: dict, variant: Variant, works) -> "StepCall | None":
        """A :class:`StepCall` the original runs: a first call with the flag set (the first few
        candidate inputs it runs), then one step of its first input with the value it handed back."""
        param, flag = variant.steps[0]
        overrides = {**dict(variant.forward), flag: True}
        for count, call in enumerate(input_options(module, hints, self.sizes, overrides, variant.method, variant.give)):
            if count >= 4:
                break
            call.method = variant.method
            if not call.args or not isinstance(call.args[0], torch.Tensor) or call.args[0].dim() < 3 \
                    or call.args[0].shape[1] < 2:
                continue
            _seed()
            try:
                with torch.no_grad():
                    out = run_quietly(lambda: call.clone().run(module))
            except Exception:
                continue
            if not isinstance(out, (tuple, list)) or len(out) < 2:
                continue
            # the flag is dropped for the step unless the edit's guards want it set there too
            keep = dict(variant.forward).get(flag) is True
            step_kwargs = {k: v for k, v in call.kwargs.items() if k != flag or keep}
            for index in range(1, len(out)):
                if not isinstance(out[index], (torch.Tensor, tuple, list)):
                    continue
                step = StepCall(call.args, call.kwargs, variant.method, call.guessed, param=param, index=index,
                                step_args=(call.args[0][:, -1:].clone(), *call.args[1:]), step_kwargs=step_kwargs)
                if works(step):
                    return step
        return None

    def _layer_arguments(self, module: nn.Module, func: Callable | None, variant: Variant) -> dict[str, nn.Module]:
        """Required arguments of ``func`` annotated with another torch module class of the file
        (physis-lm's ``forward(self, Z, slot_pool: AdaptiveSlotPool)``, whose weights the forward
        reads): one built as verify builds a class (its first recipe that constructs), from the
        original module, and handed alike to the original and the patched module.  A written
        annotation or one postponed (a string naming the class); nothing for any other."""
        if func is None or variant.method != "forward":
            return {}
        try:
            params = inspect.signature(func).parameters.values()
        except (TypeError, ValueError):
            return {}
        out: dict[str, nn.Module] = {}
        namespace = vars(self.original)
        for param in params:
            annotation = param.annotation
            if param.default is not inspect.Parameter.empty or annotation is inspect.Parameter.empty:
                continue
            if isinstance(annotation, str):
                annotation = namespace.get(annotation.strip().strip("'\""))
            if not isinstance(annotation, type) or not issubclass(annotation, nn.Module) or \
                    annotation is type(module) or namespace.get(annotation.__name__) is not annotation:
                continue
            made = self._instance_of(annotation)
            if made is not None:
                out[param.name] = made
        return out

    def _instance_of(self, cls: type) -> nn.Module | None:
        """``cls`` built from its first few recipes (the first that constructs), or None."""
        try:
            for count, option in enumerate(self._options(cls, Variant())):
                if count >= 3:
                    break
                _seed()
                try:
                    args, kwargs = option.make(self.original, True)
                    made = run_quietly(lambda a=args, k=kwargs: construct(self.groups, lambda: cls(*a, **k)))
                except Exception:  # noqa: BLE001 (the class's own error: its next recipe)
                    made = None
                if isinstance(made, nn.Module):
                    return made.eval()
        except Skip:
            return None
        return None

    def _first_working_call(self, module: nn.Module, hints: dict, variant: Variant,
                            signature: Callable | None = None) -> Call | tuple[str, str | None]:
        with filled_empty():  # (the state a run leaves on the module is the state compared next)
            return self._first_working_call_raw(module, hints, variant, signature)

    def _first_working_call_raw(self, module: nn.Module, hints: dict, variant: Variant,
                                signature: Callable | None = None) -> Call | tuple[str, str | None]:
        """The first candidate call (``input_options``) the original module runs; failing those,
        the calls its own errors ask for: optional arguments it reads although they default to
        None, lengths and ranks it fixes (``inputs.repairs``)."""
        first_error: str | None = None
        needs: str | None = None
        tried = 0
        method = variant.method
        if signature is None and method == "forward":
            signature = _own_call(module)
        failures: list[tuple[Call, BaseException]] = []
        none_seen = False
        degenerate: list[Call] = []  # calls the original runs to a NaN (a mask hiding every key of a row)
        widened: list[Call] = []  # calls whose guessed mask widens the original's output (_widened_by_mask)
        last: list[Any] = [None]  # the output of the last call that ran

        def works(call: Call) -> bool:
            nonlocal first_error, needs, tried, none_seen
            call.method = method
            tried += 1
            _seed()
            try:
                with torch.no_grad():
                    out = run_quietly(lambda: construct(self.groups, lambda: call.clone().run(module)))
            except Exception as exc:
                memory.note(exc)
                needs = needs or missing_package(exc)
                first_error = first_error or f"{type(module).__name__}.{method}({call.describe()}) raised {_short(exc)}"
                none_seen = none_seen or none_used(exc)
                if len(failures) < MAX_REPAIRED:
                    failures.append((call, exc))
                return False
            if _has_nan(out):
                degenerate.append(call)  # kept for when no candidate gives numbers
                return False
            last[0] = out
            return True

        def working(call: Call) -> Call | None:
            """``call`` when the original runs it and its guessed masks keep the output's shape;
            else a narrower mask (a size-1 axis dropped) that does; else None (a widening call is
            kept in ``widened``, used only when no other candidate runs)."""
            if not works(call):
                return None
            if not call.masked:
                return call
            masked_out = last[0]
            plain = _without_masks(call)
            _seed()
            try:
                with torch.no_grad():
                    plain_out = run_quietly(lambda: construct(self.groups, lambda: plain.clone().run(module)))
            except Exception:
                return call  # no unmasked call to compare with
            if not _widened_by_mask(masked_out, plain_out):
                return call
            widened.append(call)
            for narrow in _narrowed_masks(call):
                if works(narrow) and not _widened_by_mask(last[0], plain_out):
                    return narrow
            return None

        if variant.steps:
            return self._first_working_steps(module, hints, variant, works) or \
                (first_error or f"no two-step call of {type(module).__name__} ran", needs)
        given = {**self._layer_arguments(module, signature or getattr(module, method, None), variant),
                 **dict(variant.forward)}
        for call in input_options(module, hints, self.sizes, given, method, variant.give,
                                  signature=signature):
            found = working(call)
            if found is not None:
                return found
        if widened:  # only masks that widen the output ran: the first of them, as before
            return widened[0]
        if degenerate:
            return degenerate[0]
        if not tried:
            return f"cannot infer the inputs of {type(module).__name__}.{method}", needs
        func = signature or getattr(module, method, None)
        # a local assigned only under ``if arg is not None:`` was read, or the code raised under
        # ``if arg is None:``: those arguments are needed
        guarded = tuple(dict.fromkeys(n for _, exc in failures
                                      for n in (*guarding_params(func, exc), *raising_params(func, exc))
                                      if n not in variant.give and n not in dict(variant.forward)))
        def first_given(give: tuple[str, ...]):
            """The first of at most MAX_REPAIRED calls with the arguments ``give`` that works."""
            for count, call in enumerate(input_options(module, hints, self.sizes, given, method,
                                                       variant.give + give, signature=signature)):
                if count >= MAX_REPAIRED:
                    return None
                found = working(call)
                if found is not None:
                    return found
            return None

        if guarded and func is not None:
            # give those arguments
            found = first_given(guarded)
            if found is not None:
                return found
        if none_seen:
            # an argument that defaults to None is read as a tensor: give every such argument
            extra = tuple(n for n in optional_params(module, method) if n not in variant.give
                          and n not in dict(variant.forward) and not _is_cache_name(n))
            if signature is not None:
                extra = tuple(p.name for p in inspect.signature(signature).parameters.values()
                              if p.default is None and p.name not in variant.give and not _is_cache_name(p.name))
            if extra:
                found = first_given(extra)
                if found is not None:
                    return found
        if widened:
            return widened[0]
        budget = MAX_REPAIRED * 2
        queue = [(call, exc, 0) for call, exc in failures]
        while queue and budget > 0:
            call, exc, depth = queue.pop(0)
            for repaired in repairs(call, exc):
                budget -= 1
                before = len(failures)
                if works(repaired):
                    return repaired
                if depth < 2 and len(failures) > before:
                    queue.append((repaired, failures[-1][1], depth + 1))
                elif depth < 2:  # the failure list is full: repair this one from its own error
                    try:
                        with torch.no_grad():
                            run_quietly(lambda: repaired.clone().run(module))
                    except Exception as again:
                        queue.append((repaired, again, depth + 1))
        return f"no inputs it accepts: {first_error or 'none'}", needs

    def _build_with_factory(self, spec: str, original_cls: type, patched_cls: type,
                            patched_context: Callable[[], Any]) -> Pair:
        factory = load_factory(spec, self.root)
        kwargs: dict[str, Any] = {}
        try:
            if "size" in inspect.signature(factory).parameters:
                kwargs["size"] = self.sizes.name
        except (TypeError, ValueError):
            pass
        _seed()
        try:
            made = run_quietly(lambda: factory(original_cls, **kwargs))
            original, inputs = made
        except Exception as exc:
            raise Skip(f"factory {spec} raised {_short(exc)} for the original class") from None
        if not isinstance(original, nn.Module):
            raise Skip(f"factory {spec} must return (module, inputs)")
        _seed()
        try:
            with patched_context():
                patched, _ = run_quietly(lambda: factory(patched_cls, **kwargs))
        except Exception as exc:
            raise Broken(f"factory {spec} raised {_short(exc)} for the patched class; it works for the original") from None
        call = _factory_inputs(inputs)
        configs = [c for c in (getattr(original, "config", None), getattr(patched, "config", None)) if hf.is_config(c)]
        return Pair(original, patched, call, configs, f"factory {spec}")


def unread_note(kwargs: dict) -> str:
    """The verdict's word on constructor arguments verify built as namespaces holding fields that
    the class stores and nothing it runs reads (``construct._bag_for``, ``unread.py``)."""
    parts = []
    for name, value in kwargs.items():
        if isinstance(value, AttrBag) and value.unread():
            fields_ = ", ".join(f"{k}={value[k]!r}" for k in value if k in value.unread())
            parts.append(f"`{name}` is a namespace verify built of the fields the code reads ({fields_}: "
                         f"small counts, stored on self and read by nothing the class runs, so any value "
                         f"builds the same module)")
    return "; ".join(parts)


def _is_config_object(value: Any) -> bool:
    """A config object whose dropout fields the training check zeroes: a Hugging Face config, a
    dataclass instance, a namespace, a verify-made attribute bag."""
    import dataclasses
    from types import SimpleNamespace

    return hf.is_config(value) or isinstance(value, (AttrBag, SimpleNamespace)) or (
        dataclasses.is_dataclass(value) and not isinstance(value, type))


@contextmanager
def filled_empty(poisoned: tuple[str, set[int]] | None = None):
    """While the original and the patched module run: ``torch.empty``, ``torch.empty_like``,
    ``torch.empty_strided``, ``Tensor.new_empty`` and ``Tensor.new`` given sizes hand back
    zeros (not the legacy ``torch.FloatTensor(n)`` constructors: they are types, which
    ``isinstance`` reads).  A module that reads entries of such a buffer it has not written yet
    (a decoding cache made with ``torch.empty`` and filled one step at a time, read whole by a
    call that starts past the first step) computes from whatever the allocator left
    there, which differs between the two runs: their outputs would differ for reasons no patch
    caused.  Zeros make each run a function of its inputs; a module that writes before it reads
    computes the same either way.

    ``poisoned`` (a file and lines of it: the patch's edited lines) is the exception: a floating
    buffer allocated on one of those lines is filled with NaN instead.  A patch that reads memory
    it never wrote is wrong whatever the allocator left there, and zeros could make it agree with
    an original that starts from zeros (``torch.zeros`` replaced by ``torch.empty``); NaN makes
    such a read show in the outputs.  The original's own allocations, and the patched module's
    outside the edited lines, stay zeros as above."""
    empty, empty_like, new_empty = torch.empty, torch.empty_like, torch.Tensor.new_empty
    empty_strided, new = torch.empty_strided, torch.Tensor.new
    where = None
    if poisoned is not None:
        where = ({poisoned[0], os.path.realpath(poisoned[0])}, poisoned[1])

    def zeroed(tensor):
        if isinstance(tensor, torch.Tensor):
            poison = False
            if where is not None:
                frame = sys._getframe(2)
                poison = frame.f_code.co_filename in where[0] and frame.f_lineno in where[1] and \
                    (tensor.is_floating_point() or tensor.is_complex())
            try:
                with torch.no_grad():
                    tensor.fill_(float("nan")) if poison else tensor.zero_()
            except (RuntimeError, NotImplementedError):
                pass
        return tensor

    def empty_zeroed(*args, **kwargs):
        return zeroed(empty(*args, **kwargs))

    def empty_like_zeroed(*args, **kwargs):
        return zeroed(empty_like(*args, **kwargs))

    def new_empty_zeroed(self, *args, **kwargs):
        return zeroed(new_empty(self, *args, **kwargs))

    def empty_strided_zeroed(*args, **kwargs):
        return zeroed(empty_strided(*args, **kwargs))

    def new_zeroed(self, *args, **kwargs):
        # ``x.new(2, 3)`` / ``x.new(torch.Size([2, 3]))`` allocate without writing; ``x.new(data)``
        # (a list, a plain tuple -- ``x.new((2, 3))`` is ``tensor([2., 3.])`` -- or a tensor)
        # copies it, and is left as it is
        sizes = args[0] if len(args) == 1 and isinstance(args[0], torch.Size) else args
        result = new(self, *args, **kwargs)
        if sizes and all(isinstance(n, int) and not isinstance(n, bool) for n in sizes):
            return zeroed(result)
        return result

    torch.empty = empty_zeroed
    torch.empty_like = empty_like_zeroed
    torch.empty_strided = empty_strided_zeroed
    torch.Tensor.new_empty = new_empty_zeroed
    torch.Tensor.new = new_zeroed
    try:
        yield
    finally:
        torch.empty, torch.empty_like, torch.Tensor.new_empty = empty, empty_like, new_empty
        torch.empty_strided = empty_strided
        torch.Tensor.new = new


# no initialisation draws a weight this large; raw ``torch.empty`` memory mostly holds larger
# entries (1e20 until session 20: torchtext T5's projection weights, left as raw memory, were
# sometimes all below it, up to 1e14, which saturates the softmax and made its verdict flip)
UNINITIALISED = 1e4


def redraw_uninitialised(module: nn.Module) -> int:
    """Draw afresh the parameters the constructor left as raw memory (``torch.empty`` under an
    ``init_method=lambda x: x``: fairscale's parallel Linears in llama-models): any entry not
    finite or beyond :data:`UNINITIALISED` in magnitude (buffers are left alone: a causal mask
    holds -inf).
    Outputs of such weights overflow to inf and NaN, which compare equal on both sides and prove
    nothing.  Weights of two or more axes get N(0, 1/fan_in), others N(0, 0.02^2); the patched
    module loads these values with the rest of the state dict.  Returns how many were drawn."""
    count = 0
    generator = torch.Generator().manual_seed(4321)
    with torch.no_grad():
        for tensor in module.parameters():
            if not tensor.is_floating_point() or tensor.numel() == 0:
                continue
            values = tensor.detach()
            if bool(torch.isfinite(values).all()) and float(values.abs().max()) <= UNINITIALISED:
                continue
            std = values.shape[1] ** -0.5 if values.dim() >= 2 and values.shape[1] else 0.02
            fresh = torch.randn(values.shape, generator=generator, dtype=torch.float64) * std
            tensor.copy_(fresh.to(device=tensor.device, dtype=tensor.dtype))
            count += 1
    return count


# the normalisation layers whose affine weight starts at all ones
_NORMS = (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm, *([nn.RMSNorm] if hasattr(nn, "RMSNorm") else []))


def draw_constants(module: nn.Module) -> int:
    """Draw afresh what a fresh module holds as a constant that hides a wrong patch.

    A zero-initialised gate or output projection (ReZero's ``gamma``, adaLN-Zero modulation,
    a zero ``to_out``) multiplies the attention by 0: its output and every gradient through it
    are 0 on both sides whatever the patch computes.  Batch-norm statistics at their start (mean
    0, variance 1) and norm weights at 1 with biases at 0 make a folded convolution that drops
    the mean, the bias or the scale agree with the original.  So, before the patched module
    loads the original's state dict: every floating parameter that is all zeros is drawn from
    N(0, 0.02^2) (enough to show what a zero hid, small enough to keep the model's scale: a
    zero bias beside weights of std 1 must not push a softmax further into saturation);
    a norm layer's all-ones weight becomes 1 + N(0, 0.1^2); running statistics still at their
    start become mean N(0, 0.1^2) and variance U(0.5, 2).  Anything else (trained or drawn
    values, a buffer such as a causal mask) is left as built.  Returns how many tensors were
    drawn."""
    count = 0
    generator = torch.Generator().manual_seed(8765)

    def fill(tensor: torch.Tensor, values: torch.Tensor) -> None:
        nonlocal count
        tensor.copy_(values.to(device=tensor.device, dtype=tensor.dtype))
        count += 1

    with torch.no_grad():
        for sub in module.modules():
            if not isinstance(sub, _NORMS):
                continue
            weight = getattr(sub, "weight", None)
            if isinstance(weight, torch.Tensor) and weight.is_floating_point() and weight.numel() and bool((weight == 1).all()):
                fill(weight, 1 + 0.1 * torch.randn(weight.shape, generator=generator, dtype=torch.float64))
            mean, var = getattr(sub, "running_mean", None), getattr(sub, "running_var", None)
            if isinstance(mean, torch.Tensor) and isinstance(var, torch.Tensor) and mean.numel() \
                    and not bool(mean.any()) and bool((var == 1).all()):
                fill(mean, 0.1 * torch.randn(mean.shape, generator=generator, dtype=torch.float64))
                fill(var, 0.5 + 1.5 * torch.rand(var.shape, generator=generator, dtype=torch.float64))
        for tensor in module.parameters():
            # (a norm weight drawn above is no longer all zeros, nor ever was)
            if not tensor.is_floating_point() or tensor.numel() == 0 or bool(tensor.any()):
                continue
            fill(tensor, torch.randn(tensor.shape, generator=generator, dtype=torch.float64) * 0.02)
    return count


def zero_dropout(module: nn.Module) -> None:
    """Every dropout probability to 0: ``nn.Dropout*`` modules and float attributes named like dropout."""
    for sub in module.modules():
        if isinstance(sub, nn.modules.dropout._DropoutNd):
            sub.p = 0.0
        for key, value in list(vars(sub).items()):
            if key.startswith("_"):
                continue
            if isinstance(value, float) and hf.is_dropout_name(key) and 0.0 < value < 1.0:
                setattr(sub, key, 0.0)
            elif _is_config_object(value):
                hf.zero_dropout_config(value)
