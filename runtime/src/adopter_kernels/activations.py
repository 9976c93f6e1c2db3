"""Linear followed by a GELU, with the bias add fused into the activation (rule ADP006).

Hugging Face models pick the activation at run time (``ACT2FN[config.hidden_act]``), so the
patched call site cannot know statically whether it holds a GELU. The kernel therefore decides
per call from the activation object, and anything it does not recognise runs unchanged.
"""

from __future__ import annotations

import types
from typing import Any, Callable, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from ._runtime import LazyCompiled, Layer, compile_allowed, is_plain, recording

__all__ = ["bias_gelu", "linear_gelu"]

# transformers' activation classes (4.34 ``activations.py``), by class name, mapped to the
# ``approximate`` mode of ``F.gelu`` that computes the same function. Recognised by name so
# that this package never imports transformers (and so that vendored copies of that file, common
# in research code, are recognised too). QuickGELU (x * sigmoid(1.702 x)) is a different
# function and deliberately absent.
_TANH_FORMULA_CLASSES = {
    # 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), written out in Python
    "NewGELUActivation": "tanh",
    "AccurateGELUActivation": "tanh",
    # same function with the constant rounded to 0.7978845608 and x^3 factored as x * x * x
    "FastGELUActivation": "tanh",
    # F.gelu(x, approximate="tanh")
    "PytorchGELUTanh": "tanh",
    "GELUTanh": "tanh",
}

# (approximate, clip_min, clip_max)
_GeluMode = Tuple[str, Optional[float], Optional[float]]


def _gelu_mode(act: Any) -> Optional[_GeluMode]:
    """How ``act`` maps onto ``F.gelu``, or None when it is not (provably) a GELU."""
    if act is F.gelu:
        return ("none", None, None)
    if isinstance(act, types.FunctionType):
        mode = _probed_function(act)
        return (mode, None, None) if mode is not None else None
    if not isinstance(act, nn.Module) or not is_plain(act, type(act)):
        return None
    if is_plain(act, nn.GELU):
        return (act.approximate, None, None)
    name = type(act).__name__
    if name in _TANH_FORMULA_CLASSES:
        return (_TANH_FORMULA_CLASSES[name], None, None)
    if name == "GELUActivation":
        # Its ``act`` attribute is either F.gelu or the erf formula ``_gelu_python``; both are
        # the exact (erf) GELU. Anything else assigned there is not ours to interpret.
        inner = getattr(act, "act", None)
        if inner is F.gelu:
            return ("none", None, None)
        if getattr(inner, "__func__", None) is getattr(type(act), "_gelu_python", object()):
            return ("none", None, None)
        return None
    if name == "ClippedGELUActivation":
        lo, hi = getattr(act, "min", None), getattr(act, "max", None)
        if isinstance(lo, (int, float)) and isinstance(hi, (int, float)):
            return ("none", float(lo), float(hi))
        return None
    mode = _probed_mode(act)
    return (mode, None, None) if mode is not None else None


# The attributes every nn.Module instance has; a module with any other instance state may
# compute something else per instance, so its class is not probed.
_MODULE_STATE = frozenset(vars(nn.Module()))
_PROBED: "dict[type, Optional[str]]" = {}


_PROBED_FUNCTIONS: "dict[Callable, Optional[str]]" = {}


def _probed_function(act: Callable) -> Optional[str]:
    """The ``approximate`` mode of ``F.gelu`` that a plain Python function computes, found once
    per function on the float64 probe of :func:`_probed_mode`: research code holds GELU
    written out as a function value (BERT's ``def gelu(x): return x * 0.5 * (1.0 +
    torch.erf(x / math.sqrt(2.0)))`` in an activation table).  A closure (state of its own)
    is not probed; a function that computes in float32 (fairseq's ``F.gelu(x.float()).type_as(x)``)
    does not agree on the float64 probe and runs as written."""
    if act.__closure__ is not None:
        return None
    if act not in _PROBED_FUNCTIONS:
        _PROBED_FUNCTIONS[act] = _probe(act)
    return _PROBED_FUNCTIONS[act]


def _probe(act: Callable) -> Optional[str]:
    """The mode of ``F.gelu`` whose float64 values ``act`` reproduces to rounding, or None."""
    probe = torch.linspace(-8.0, 8.0, 1601, dtype=torch.float64)
    try:
        with torch.no_grad():
            out = act(probe)
    except Exception:  # noqa: BLE001 - anything that cannot take the probe is not a GELU
        return None
    if isinstance(out, torch.Tensor) and out.shape == probe.shape and out.dtype == probe.dtype:
        for candidate in ("none", "tanh"):
            # float64 formulas agree with the built-in to rounding (~1e-16 relative)
            if torch.allclose(out, F.gelu(probe, approximate=candidate), rtol=1e-12, atol=1e-12):
                return candidate
    return None


def _probed_mode(act: nn.Module) -> Optional[str]:
    """The ``approximate`` mode of ``F.gelu`` that a stateless module class computes, found
    once per class by running it on a float64 probe (research code writes GELU out as a
    formula, minGPT's ``NewGELU``: ``0.5 * x * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 *
    x ** 3)))``); None for anything else, or when it has parameters, buffers, submodules or
    instance state of its own."""
    if act._parameters or act._buffers or act._modules or set(vars(act)) - _MODULE_STATE:
        return None
    cls = type(act)
    if cls not in _PROBED:
        _PROBED[cls] = _probe(act)
    return _PROBED[cls]


def _bias_gelu_ref(
    x: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor], approximate: str
) -> torch.Tensor:
    # Compiled on CUDA: Inductor turns the matmul plus "add bias, GELU" into a GEMM with a fused
    # epilogue instead of a GEMM followed by a separate elementwise pass over the activations.
    y = F.linear(x, weight)
    if bias is not None:
        y = y + bias
    return F.gelu(y, approximate=approximate)


_fused_bias_gelu = LazyCompiled(_bias_gelu_ref, "bias_gelu")


def bias_gelu(x: torch.Tensor, linear: Layer, act: Layer) -> torch.Tensor:
    """``act(linear(x))``, fused when ``act`` is a GELU.

    GELU variants written as Python formulas (``NewGELUActivation`` and friends) launch half a
    dozen elementwise kernels; replacing them by the single built-in ``F.gelu`` with the same
    ``approximate`` mode is exact up to float rounding and pays off on CPU as well. On CPU the
    bias stays inside ``F.linear`` (``addmm`` adds it for free), and so it does on CUDA unless
    ``ADOPTER_KERNELS_COMPILE=1`` asks for the bias add and GELU compiled into the matmul's
    epilogue (measured no faster on an H200: :func:`compile_allowed`). ReLU, SiLU, QuickGELU, plain functions and
    anything unrecognised run as ``act(linear(x))``, and so do TorchScript, ``torch.jit.trace``,
    ``torch.fx`` and ``torch.export`` (:func:`recording`).
    """
    if torch.jit.is_scripting():
        return act.forward(linear.forward(x))
    return _bias_gelu(x, linear, act)


def _bias_gelu(x: torch.Tensor, linear: nn.Module, act: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    mode = None if recording(x) else _gelu_mode(act)
    if mode is None or not is_plain(linear, nn.Linear):
        return act(linear(x))
    return _fused(x, linear, *mode)


def linear_gelu(x: torch.Tensor, linear: Layer, approximate: str = "none") -> torch.Tensor:
    """``F.gelu(linear(x), approximate=approximate)``: the function form of :func:`bias_gelu`,
    for code that calls ``F.gelu`` itself (no activation object to pass; a function passed as
    a value would not compile under TorchScript).  Fused as :func:`bias_gelu` is when
    ``linear`` is a plain ``nn.Linear`` and ``approximate`` is a mode ``F.gelu`` knows; a
    subclass, a hooked layer or any other module runs as written, and so do TorchScript,
    ``torch.jit.trace``, ``torch.fx`` and ``torch.export``."""
    if torch.jit.is_scripting():
        return F.gelu(linear.forward(x), approximate=approximate)
    if recording(x) or approximate not in ("none", "tanh") or not is_plain(linear, nn.Linear):
        return F.gelu(linear(x), approximate=approximate)
    return _fused(x, linear, approximate, None, None)


def _fused(x: torch.Tensor, linear: nn.Module, approximate: str, lo: Optional[float],
           hi: Optional[float]) -> torch.Tensor:
    if compile_allowed(x):
        y = _fused_bias_gelu(x, linear.weight, linear.bias, approximate)
    else:
        y = F.gelu(F.linear(x, linear.weight, linear.bias), approximate=approximate)
    if lo is not None:
        y = torch.clip(y, lo, hi)
    return y
