"""``fused_optimizer``: build a torch optimizer with ``fused=True`` when its parameters allow it.

``torch.optim.Adam/AdamW/SGD(..., fused=True)`` runs the whole update as one multi-tensor
kernel per step instead of a loop of small kernels per parameter, but it requires every
parameter to be a floating-point tensor on a device with fused kernels; on CUDA that is the
case for ordinary training.  Whether the parameters *are* on CUDA is only known at run time
(the same script trains on a laptop and on a GPU box), so the patch cannot simply add
``fused=True``: ``fused_optimizer(torch.optim.AdamW)(params, ...)`` looks at the parameters
when the optimizer is built and passes ``fused=True`` only when all of them are CUDA floating
point tensors; everywhere else it builds exactly the optimizer the code asked for.

``params`` may be a generator (``model.parameters()``): it is read once, into lists, and the
same lists are given to the optimizer.  An explicit ``fused=``, ``foreach=`` or
``differentiable=True`` is the user's choice and is passed on untouched.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any, Callable

import torch

__all__ = ["fused_optimizer", "fused_applies"]

# Fused kernels are used where this module claims a speed-up: CUDA (torch also has fused CPU
# kernels since 2.4; they are not what the rule proposes, see docs/rules/ADP012.md).
FUSED_DEVICES = ("cuda",)


def _materialise(params: Any) -> Any:
    """Read an iterable of tensors or of param-group dicts into lists (a generator once)."""
    if isinstance(params, torch.Tensor):
        return params  # the optimizer's own error message for a bare tensor
    items = list(params)
    out = []
    for item in items:
        if isinstance(item, dict) and "params" in item:
            group = dict(item)
            inner = group["params"]
            group["params"] = [inner] if isinstance(inner, torch.Tensor) else list(inner)
            out.append(group)
        else:
            out.append(item)
    return out


def _tensors(groups: Any) -> list:
    found = []
    for item in groups:
        if isinstance(item, dict):
            found.extend(item.get("params", []))
        else:
            found.append(item)
    return found


def fused_applies(params: Any) -> bool:
    """Whether ``fused=True`` is valid and proposed for these (materialised) parameters."""
    if isinstance(params, torch.Tensor):
        return False
    tensors = _tensors(params)
    return bool(tensors) and all(
        isinstance(p, torch.Tensor)
        and p.device.type in FUSED_DEVICES
        and torch.is_floating_point(p)
        and not p.is_sparse
        for p in tensors
    )


@functools.lru_cache(maxsize=None)
def _accepts_fused(cls: type) -> bool:
    try:
        return "fused" in inspect.signature(cls).parameters
    except (TypeError, ValueError):
        return False


def fused_optimizer(cls: type) -> Callable[..., torch.optim.Optimizer]:
    """``cls`` (an optimizer class) as a factory that adds ``fused=True`` when it applies."""

    @functools.wraps(cls, updated=())
    def build(params: Any, *args: Any, **kwargs: Any) -> torch.optim.Optimizer:
        if {"fused", "foreach"} & kwargs.keys() or kwargs.get("differentiable") or not _accepts_fused(cls):
            return cls(params, *args, **kwargs)
        groups = _materialise(params)
        if fused_applies(groups):
            kwargs["fused"] = True
        return cls(groups, *args, **kwargs)

    return build
