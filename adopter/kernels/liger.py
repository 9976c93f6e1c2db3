"""Calls into Liger Kernel (Triton, CUDA only) behind a run-time guard.

Liger's kernels are the best maintained fused kernels for LLaMA-style blocks, but they run on
CUDA tensors only, and Hugging Face models pick their activation at run time
(``ACT2FN[config.hidden_act]``).  So the patched code calls these wrappers: they take Liger's
path only when it computes what the original expression computes (the activation really is
SiLU, the tensors are on CUDA, Liger is installed) and evaluate the original expression
otherwise.  Liger is imported lazily, on the first CUDA call, so importing
``adopter.kernels`` never needs it.

Liger API used (liger-kernel 0.8.5; checked against its wheel by the test suite):
``liger_kernel.transformers.functional.liger_swiglu(a, b) == silu(a) * b``.
"""

from __future__ import annotations

import functools
from typing import Callable

import torch
from torch import nn

from ._runtime import is_plain

__all__ = ["liger_swiglu", "is_silu"]

LIGER_SWIGLU = ("liger_kernel.transformers.functional", "liger_swiglu")


def is_silu(act: object) -> bool:
    """``act(x)`` is exactly ``silu(x)``: ``nn.SiLU`` or transformers' ``SiLUActivation``
    (recognised by name: transformers is never imported here), with no hooks or overrides."""
    if act is nn.functional.silu:
        return True
    if isinstance(act, nn.SiLU):
        return is_plain(act, nn.SiLU) and not act.inplace
    if isinstance(act, nn.Module) and type(act).__name__ == "SiLUActivation" and type(act).__module__.startswith(
            "transformers."):
        return is_plain(act, type(act))
    return False


@functools.lru_cache(maxsize=None)
def _liger(module: str, name: str) -> Callable | None:
    try:
        return getattr(__import__(module, fromlist=[name]), name)
    except Exception:  # not installed, or no Triton / CUDA: the eager expression is used
        return None


def liger_swiglu(gate: torch.Tensor, up: torch.Tensor, act: Callable) -> torch.Tensor:
    """``act(gate) * up``, as one fused Liger kernel when ``act`` is SiLU on CUDA tensors."""
    if gate.is_cuda and up.is_cuda and gate.shape == up.shape and gate.dtype == up.dtype and is_silu(act):
        fused = _liger(*LIGER_SWIGLU)
        if fused is not None:
            return fused(gate, up)
    return act(gate) * up
