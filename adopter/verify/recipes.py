"""Constructor arguments as recipes, resolved once against the original module and once against
the patched one.

The original and the patched class must be built with the *same* arguments, but an argument
may be a class of the file itself (``ResNet(BasicBlock, [2, 2, 2, 2])``) or a config built from
one (``GPT(GPTConfig(n_layer=2))``): the patched ``ResNet`` must get the patched ``BasicBlock``,
so such values are kept as :class:`Ref` (a module-level name) and :class:`Make` (a call to make
at build time) and :func:`resolve` turns them into objects of the module being built.

:class:`AttrBag` is the config verify makes when a class reads ``config.n_embd``-style
attributes and no config class of the project fits: attribute and item access both work
(``cfg.dim``, ``cfg["dim"]``, ``cfg.get("dim", 8)``), nested for ``cfg.model.dim``.
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any


@dataclass(frozen=True)
class Ref:
    """A name looked up in the module being built (``BasicBlock``, ``nn.ReLU``)."""

    path: str

    def __repr__(self) -> str:
        return self.path


@dataclass
class Make:
    """A call made at build time, in the module being built: ``func(*args, **kwargs)``."""

    func: Any
    args: tuple = ()
    kwargs: dict = field(default_factory=dict)

    def __repr__(self) -> str:
        parts = [repr(a) for a in self.args] + [f"{k}={v!r}" for k, v in self.kwargs.items()]
        name = self.func.path if isinstance(self.func, Ref) else getattr(self.func, "__name__", repr(self.func))
        return f"{name}({', '.join(parts)})"


@dataclass(frozen=True)
class Link:
    """The value a call of the class passes as its own argument ``where`` (a position, then the
    parameter's name once bound): ``w_q = nn.Linear(emb_dim, emb_dim); Head(ctx, emb_dim, w_q)``
    makes the layer of whatever ``emb_dim`` the class gets.  Replaced by that value
    (:func:`substitute_links`) before anything is built."""

    where: Any

    def __repr__(self) -> str:
        return f"<{self.where}>"


def substitute_links(value: Any, values: dict[str, Any]) -> Any:
    """``value`` with each :class:`Link` to a parameter replaced by that parameter's value."""
    if isinstance(value, Link):
        return values.get(value.where, value)
    if isinstance(value, Make):
        return Make(value.func, tuple(substitute_links(a, values) for a in value.args),
                    {k: substitute_links(v, values) for k, v in value.kwargs.items()})
    if isinstance(value, list):
        return [substitute_links(v, values) for v in value]
    if isinstance(value, tuple):
        return tuple(substitute_links(v, values) for v in value)
    return value


def has_links(value: Any) -> bool:
    if isinstance(value, Link):
        return True
    if isinstance(value, Make):
        return any(has_links(a) for a in value.args) or any(has_links(v) for v in value.kwargs.values())
    if isinstance(value, (list, tuple)):
        return any(has_links(v) for v in value)
    return False


class AttrBag(dict):
    """A config object made of the attributes a class reads: ``bag.x``, ``bag['x']``, ``bag.get``."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def __setattr__(self, name: str, value: Any) -> None:
        self[name] = value

    def __delattr__(self, name: str) -> None:
        self.pop(name, None)

    def __deepcopy__(self, memo):
        import copy

        out = AttrBag({k: copy.deepcopy(v, memo) for k, v in self.items()})
        out.mark_unread(self.unread())
        return out

    def mark_unread(self, keys) -> None:
        """Note fields valued only because nothing the class runs reads them (``unread.py``)."""
        object.__setattr__(self, "_unread", frozenset(self.unread()) | frozenset(keys))

    def unread(self) -> frozenset:
        return self.__dict__.get("_unread", frozenset())

    def __repr__(self) -> str:
        unread = self.unread()
        return "config(" + ", ".join(f"{k}={v!r}" + (" (stored, read nowhere)" if k in unread else "")
                                     for k, v in self.items()) + ")"


def lookup(module: ModuleType, path: str) -> Any:
    """``path`` (dotted) in ``module``'s namespace, then the builtins."""
    head, *rest = path.split(".")
    namespace = vars(module)
    if head in namespace:
        value = namespace[head]
    elif hasattr(builtins, head):
        value = getattr(builtins, head)
    else:
        raise LookupError(f"{head} is not defined in {module.__name__}")
    for part in rest:
        value = getattr(value, part)
    return value


def resolve(value: Any, module: ModuleType) -> Any:
    """A fresh object for ``value`` in ``module``: refs looked up, makes called, containers copied."""
    if isinstance(value, Ref):
        return lookup(module, value.path)
    if isinstance(value, Make):
        func = resolve(value.func, module)
        return func(*[resolve(a, module) for a in value.args], **{k: resolve(v, module) for k, v in value.kwargs.items()})
    if isinstance(value, AttrBag):
        out = AttrBag({k: resolve(v, module) for k, v in value.items()})
        out.mark_unread(value.unread())
        return out
    if isinstance(value, list):
        return [resolve(v, module) for v in value]
    if isinstance(value, tuple):
        return tuple(resolve(v, module) for v in value)
    if isinstance(value, dict):
        return {k: resolve(v, module) for k, v in value.items()}
    return value


def has_refs(value: Any) -> bool:
    if isinstance(value, (Ref, Make)):
        return True
    if isinstance(value, (list, tuple)):
        return any(has_refs(v) for v in value)
    if isinstance(value, dict):
        return any(has_refs(v) for v in value.values())
    return False


def describe(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 120 else text[:117] + "..."
