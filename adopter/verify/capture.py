"""A block's constructor arguments and forward inputs, as the model that contains it uses them.

Some blocks cannot be built on their own with guessed arguments: a bottleneck whose input width
must be four times its ``planes`` when it has no downsample layer, a block whose group count must
divide widths only its parent knows.  The model that contains the block builds it right, though.
So when a class cannot be built or fed on its own, verify builds a class of the same file that
uses it (its *user*, found by name in the source), with the user's own inferred arguments,
records the arguments of the first ``__init__`` of the block and the inputs of that instance's
first forward (a forward pre-hook), and builds the block alone with exactly those.

Arguments that are classes or functions of the analysed module become
:class:`~adopter.verify.recipes.Ref` (the patched block gets the patched module's classes); torch
layers passed as arguments (``downsample=nn.Sequential(...)``) are copied per build; a config
dataclass of the file is rebuilt from its fields in each module; other instances of the file's
own classes cannot be mapped to the patched module, so such a capture is not used.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import torch
from torch import nn

from .recipes import AttrBag, Make, Ref


@dataclass
class Captured:
    args: tuple
    kwargs: dict
    inputs: Any  # a build.Call
    via: str


class _NotMappable(Exception):
    pass


def _to_recipe(value: Any, module: ModuleType, depth: int = 0) -> Any:
    """A captured constructor argument as a recipe value valid in the original and the patched module."""
    if depth > 6:
        raise _NotMappable()
    name = getattr(value, "__name__", None)
    if (isinstance(value, type) or callable(value) and not isinstance(value, nn.Module)) and name and \
            getattr(module, name, None) is value and getattr(value, "__module__", None) == module.__name__:
        return Ref(name)
    if isinstance(value, functools.partial):
        return Make(functools.partial, (_to_recipe(value.func, module, depth + 1),
                                        *[_to_recipe(a, module, depth + 1) for a in value.args]),
                    {k: _to_recipe(v, module, depth + 1) for k, v in value.keywords.items()})
    if isinstance(value, nn.Module):
        for sub in value.modules():
            if type(sub).__module__ == module.__name__:
                raise _NotMappable()
        return Make(copy.deepcopy, (value,), {})
    if isinstance(value, (list, tuple)):
        items = [_to_recipe(v, module, depth + 1) for v in value]
        return items if isinstance(value, list) else tuple(items)
    if isinstance(value, dict):
        return {k: _to_recipe(v, module, depth + 1) for k, v in value.items()}
    if isinstance(value, torch.Tensor):
        return Make(torch.Tensor.clone, (value.detach(),), {})
    if isinstance(value, AttrBag):
        return AttrBag({k: _to_recipe(v, module, depth + 1) for k, v in value.items()})
    cls = type(value)
    if cls.__module__ == module.__name__ and getattr(module, cls.__name__, None) is cls and \
            dataclasses.is_dataclass(value):
        # a config dataclass of the file: rebuilt from its fields in each module
        return Make(Ref(cls.__name__), (), {f.name: _to_recipe(getattr(value, f.name), module, depth + 1)
                                            for f in dataclasses.fields(value) if f.init})
    if cls.__module__ == module.__name__:
        raise _NotMappable()
    return copy.deepcopy(value)


class Recording:
    """Records the first construction of ``cls`` (exactly that class) while active; with
    ``inputs``, also that instance's first forward inputs (``self.seen``): for a class its user
    builds inside its own forward (tsai's ``_ScaledDotProductAttention(self.d_k)(q, k, v)``)."""

    def __init__(self, cls: type, inputs: bool = False):
        self.cls = cls
        self.inputs = inputs
        self.ctor: tuple[tuple, dict] | None = None
        self.instance: nn.Module | None = None
        self.seen: tuple[tuple, dict] | None = None
        self._original_init = None
        self._handle = None

    def __enter__(self) -> "Recording":
        cls = self.cls
        original_init = cls.__dict__.get("__init__")
        self._original_init = original_init
        recording = self
        inner = cls.__init__

        def init(instance, *args, **kwargs):
            if type(instance) is cls and recording.ctor is None:
                try:
                    recording.ctor = (tuple(args), dict(kwargs))
                except Exception:
                    recording.ctor = None
                recording.instance = instance
                inner(instance, *args, **kwargs)
                if recording.inputs:
                    recording._handle = instance.register_forward_pre_hook(recording._hook, with_kwargs=True)
                return
            inner(instance, *args, **kwargs)

        cls.__init__ = init
        return self

    def _hook(self, module, args, kwargs):
        if self.seen is None:
            self.seen = _detached(args, kwargs)

    def __exit__(self, *exc) -> None:
        if self._handle is not None:
            self._handle.remove()
        if self._original_init is not None:
            self.cls.__init__ = self._original_init
        else:
            try:
                del self.cls.__init__
            except AttributeError:
                pass


def _detached(args: tuple, kwargs: dict) -> tuple[tuple, dict]:
    return (tuple(a.detach().clone() if isinstance(a, torch.Tensor) else a for a in args),
            {k: v.detach().clone() if isinstance(v, torch.Tensor) else v for k, v in kwargs.items()})


def first_inputs(instance: nn.Module, run) -> tuple[tuple, dict] | None:
    """The (args, kwargs) of ``instance``'s first forward while ``run()`` runs."""
    seen: list[tuple[tuple, dict]] = []

    def hook(module, args, kwargs):
        if not seen:
            seen.append(_detached(args, kwargs))

    handle = instance.register_forward_pre_hook(hook, with_kwargs=True)
    try:
        with torch.no_grad():
            run()
    except Exception:
        pass
    finally:
        handle.remove()
    return seen[0] if seen else None


def to_recipe(args: tuple, kwargs: dict, module: ModuleType) -> tuple[tuple, dict] | None:
    try:
        return tuple(_to_recipe(a, module) for a in args), {k: _to_recipe(v, module) for k, v in kwargs.items()}
    except _NotMappable:
        return None
