"""Shared machinery for the kernels: when a fast path may be taken, and lazy compilation.

Every kernel in this package is called by *patched user code* with the user's own submodules.
The fast paths are only allowed when we can be sure they compute what the module would have
computed itself, so the checks here are deliberately conservative: a subclass that overrides
``forward``, or any module hook (which could observe or change inputs and outputs), sends the
call back to the eager modules.
"""

from __future__ import annotations

import os
import warnings
from typing import Any, Callable, Optional

import torch
from torch import nn
from torch.nn.modules import module as _module_mod

__all__ = ["is_plain", "LazyCompiled", "compile_allowed", "tensor_signature", "autocast_active", "Layer",
           "recording"]


@torch.jit.interface
class Layer(nn.Module):
    """The TorchScript type of every module argument of the kernels: any module whose forward
    maps one tensor to one (Conv2d, BatchNorm2d, Linear, Dropout, LayerNorm, an activation).

    TorchScript compiles the functions a scripted forward calls, and a module can be an
    argument there only through a module interface; so each kernel is annotated with this type
    and, under ``torch.jit.is_scripting()``, runs the original expression through ``.forward``
    (its eager body, with caches and Python checks, is never compiled).
    """

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        pass


def recording(*tensors: Any) -> bool:
    """True while a program transformation records this call instead of running it:
    ``torch.jit.trace``, ``torch.fx.symbolic_trace`` (a Proxy argument), ``torch.export`` and
    ``torch.compile`` (Dynamo).  The kernels then run the original expression, so the recorded
    program is the one the unpatched module gives - the same graph, the same ``train()`` /
    ``eval()`` behaviour of its modules - and a compiler fuses it by itself.
    (``torch.jit.script`` is handled by each kernel's ``is_scripting()`` branch.)
    """
    if torch.jit.is_tracing() or _compiling():
        return True
    proxy = torch.fx.Proxy
    return any(isinstance(t, proxy) for t in tensors)


def _has_hooks(m: nn.Module) -> bool:
    # Global hooks apply to every module call; a fused kernel would silently skip them.
    if (
        _module_mod._global_forward_hooks
        or _module_mod._global_forward_pre_hooks
        or _module_mod._global_backward_hooks
        or _module_mod._global_backward_pre_hooks
    ):
        return True
    return bool(
        m._forward_hooks or m._forward_pre_hooks or m._backward_hooks or m._backward_pre_hooks
    )


def is_plain(m: Any, cls: type) -> bool:
    """True when calling ``m`` is exactly ``cls.forward`` with no hooks in the way.

    A subclass that only adds attributes (e.g. ``NonDynamicallyQuantizableLinear``) or a
    parametrization (whose ``weight`` property we read like ``forward`` does) still qualifies;
    one that overrides ``forward`` (LoRA wrappers, quantized layers) does not, because its
    computation is no longer the one the kernel reproduces.
    """
    return isinstance(m, cls) and type(m).forward is cls.forward and not _has_hooks(m)


def autocast_active(device_type: str) -> bool:
    """Whether autocast will cast operands of ops on ``device_type`` for us."""
    try:
        return torch.is_autocast_enabled(device_type)
    except TypeError:  # pragma: no cover - very old torch signature
        return torch.is_autocast_enabled()


def _compiling() -> bool:
    compiler = getattr(torch, "compiler", None)
    if compiler is None:
        return False
    exporting = getattr(compiler, "is_exporting", None)  # torch >= 2.5 (non-strict export)
    return bool(compiler.is_compiling() or (exporting is not None and exporting()))


def compile_allowed(t: torch.Tensor) -> bool:
    """Use a compiled kernel only when asked for (``ADOPTER_KERNELS_COMPILE=1``), only for CUDA
    tensors and only outside an outer compile.

    Measured on an H200 (``benchmarks/results/train-gpu.json``, docs/training.md): training
    BERT-family models with the compiled ``bias_gelu`` / ``dropout_add_layer_norm`` was never
    faster than eager, and 12-32% slower in bfloat16 autocast, where a base-size step is bound
    by the CPU's dispatch and each compiled call adds its guards and autograd wrapper.  So the
    default CUDA path is the eager one (the same kernels the original code launches; the gains
    that remain are the ones that do not depend on the compiler, such as a Python-formula GELU
    run as the built-in ``F.gelu``).  On CPU torch.compile costs seconds of start-up and
    measured slower than eager for these small fusions (SPEC section 7).  Inside a user's own
    ``torch.compile`` the outer graph fuses our eager code anyway, and a nested compiled call
    would only add a graph break.  ``ADOPTER_KERNELS_NO_COMPILE=1`` wins over the opt-in, e.g.
    to bisect a problem.
    """
    return (
        t.is_cuda
        and os.environ.get("ADOPTER_KERNELS_COMPILE", "") in ("1", "true", "yes")
        and os.environ.get("ADOPTER_KERNELS_NO_COMPILE", "") not in ("1", "true", "yes")
        and not _compiling()
    )


class LazyCompiled:
    """A function that is compiled on first use and falls back to eager for good on failure.

    ``torch.compile`` is only *called* on the first CUDA invocation, so importing this package
    never starts Dynamo or Inductor. If the compiled call raises but the eager function
    succeeds on the same arguments, the failure is the compiler's (missing Triton, an
    unsupported op, ...): we warn once and use eager from then on. If eager raises too, the
    error is the caller's, and it is re-raised from eager so the user sees the normal message.
    """

    def __init__(self, fn: Callable[..., Any], name: Optional[str] = None) -> None:
        self.fn = fn
        self.name = name or fn.__name__
        self._compiled: Optional[Callable[..., Any]] = None
        self.broken = False

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self.broken:
            return self.fn(*args, **kwargs)
        try:
            if self._compiled is None:
                self._compiled = torch.compile(self.fn, dynamic=None)
            return self._compiled(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - any compiler failure must degrade to eager
            failure = exc
        # Outside the ``except`` block so that a genuine user error raised by eager is reported
        # on its own, not chained to the compiler's traceback.
        result = self.fn(*args, **kwargs)
        self.broken = True
        warnings.warn(
            f"adopter_kernels: torch.compile of {self.name} failed ({type(failure).__name__}: "
            f"{failure}); using the eager implementation from now on.",
            RuntimeWarning,
            stacklevel=2,
        )
        return result


def tensor_signature(*tensors: Optional[torch.Tensor]) -> Optional[tuple]:
    """A key that changes whenever any of ``tensors`` is replaced or updated in place.

    ``data_ptr`` catches ``param.data = new`` and re-allocation, ``_version`` catches in-place
    updates made through the tensor itself (optimizer steps, ``load_state_dict``, ``nn.init``).
    Updates made through ``param.data`` bypass the version counter and cannot be seen; that is a
    documented limit of every version-keyed cache in PyTorch. Inference tensors have no version
    counter, so they get no key (``None``) and callers must not cache.
    """
    key = []
    for t in tensors:
        if t is None:
            key.append(None)
            continue
        try:
            version = t._version
        except RuntimeError:
            return None
        key.append((t.data_ptr(), version, t.dtype, t.device, tuple(t.shape)))
    return tuple(key)
