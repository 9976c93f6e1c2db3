"""Calls into Liger Kernel (Triton, CUDA only) behind a run-time guard.

Liger's kernels are the best maintained fused kernels for LLaMA-style blocks, but they run on
CUDA tensors only, and Hugging Face models pick their activation at run time
(``ACT2FN[config.hidden_act]``).  So the patched code calls these wrappers: they take Liger's
path only when it computes what the original expression computes (the activation really is
SiLU, the tensors are on CUDA, Liger is installed) and evaluate the original expression
otherwise.  Liger is imported lazily, on the first CUDA call, so importing
``adopter_kernels`` never needs it.

Liger API used (liger-kernel 0.8.5; checked against its wheel by the test suite):
``liger_kernel.transformers.functional.liger_swiglu(a, b) == silu(a) * b``;
``liger_kernel.transformers.functional.liger_rope(q, k, cos, sin, position_ids=None,
unsqueeze_dim=1, rotary_dim=None)``: Hugging Face's rotate-half RoPE of q and k, both
``(bsz, heads, seq, head_dim)``, with cos/sin ``(1 or bsz, 1, seq, head_dim)`` or
``(seq, head_dim)``.  Its Triton kernel writes the result into the storage of
``q.transpose(1, 2).contiguous()``, which *is* the caller's tensor when q was made by
``view(...).transpose(1, 2)`` (Hugging Face's layout), so :func:`liger_rope` hands it fresh
copies and the caller's q and k are never overwritten.
``liger_kernel.transformers.functional.liger_fused_linear_cross_entropy(input, weight, target,
bias=None, ce_weight=None, ignore_index=-100, lse_square_scale=0.0, label_smoothing=0.0,
reduction="mean", ...)``: ``cross_entropy(input @ weight.T + bias, target)`` computed chunk by
chunk, so the (tokens x vocabulary) logits are never materialised.
"""

from __future__ import annotations

import functools
from typing import Callable, Optional, Tuple

import torch
from torch import nn

from ._runtime import Layer, _compiling, is_plain, recording

__all__ = ["liger_swiglu", "liger_silu_mul", "is_silu", "liger_rope", "is_rotate_half", "liger_fused_linear_cross_entropy"]

LIGER_SWIGLU = ("liger_kernel.transformers.functional", "liger_swiglu")
LIGER_ROPE = ("liger_kernel.transformers.functional", "liger_rope")
LIGER_FLCE = ("liger_kernel.transformers.functional", "liger_fused_linear_cross_entropy")


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
def _liger(module: str, name: str) -> Optional[Callable]:
    try:
        return getattr(__import__(module, fromlist=[name]), name)
    except Exception:  # not installed, or no Triton / CUDA: the eager expression is used
        return None


def liger_swiglu(gate: torch.Tensor, up: torch.Tensor, act: Layer) -> torch.Tensor:
    """``act(gate) * up``, as one fused Liger kernel when ``act`` is SiLU on CUDA tensors
    (TorchScript, ``torch.jit.trace``, ``torch.fx`` and ``torch.export`` record ``act(gate) * up``)."""
    if torch.jit.is_scripting():
        return act.forward(gate) * up
    return _liger_swiglu(gate, up, act)


def _liger_swiglu(gate: torch.Tensor, up: torch.Tensor, act: Callable) -> torch.Tensor:
    if recording(gate, up):
        return act(gate) * up
    if gate.is_cuda and up.is_cuda and gate.shape == up.shape and gate.dtype == up.dtype and is_silu(act):
        fused = _liger(*LIGER_SWIGLU)
        if fused is not None:
            return fused(gate, up)
    return act(gate) * up


def liger_silu_mul(gate: torch.Tensor, up: torch.Tensor) -> torch.Tensor:
    """``silu(gate) * up``: the function form of :func:`liger_swiglu`, for code that calls
    ``F.silu`` itself (no activation object to pass; a function passed as a value would not
    compile under TorchScript).  One fused Liger kernel on CUDA tensors of one shape and dtype,
    exactly ``F.silu(gate) * up`` everywhere else (and under TorchScript, ``torch.jit.trace``,
    ``torch.fx`` and ``torch.export``)."""
    if torch.jit.is_scripting():
        return nn.functional.silu(gate) * up
    return _liger_swiglu(gate, up, nn.functional.silu)


@functools.lru_cache(maxsize=64)
def is_rotate_half(fn: Callable, head_dim: int) -> bool:
    """``fn`` is Hugging Face's ``rotate_half`` for this head size: ``cat((-x2, x1), dim=-1)``
    of the two halves of the last dimension, which is the rotation Liger's kernel applies.

    The patched code passes its own module-level ``rotate_half``; it is probed once per head
    size on a CPU tensor of distinct values (so any other permutation, sign or scaling shows)
    and anything else - or a function that fails on the probe - keeps the eager expression.
    """
    if head_dim < 2 or head_dim % 2:
        return False
    probe = torch.arange(1, head_dim + 1, dtype=torch.float32).reshape(1, 1, 1, head_dim)
    half = head_dim // 2
    expected = torch.cat((-probe[..., half:], probe[..., :half]), dim=-1)
    try:
        with torch.no_grad():
            out = fn(probe)
    except Exception:  # noqa: BLE001 - not a rotate_half we can vouch for
        return False
    return isinstance(out, torch.Tensor) and out.dtype == expected.dtype and out.shape == expected.shape and bool(
        torch.equal(out, expected))


def _rope_shapes_fit(q: torch.Tensor, k: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> bool:
    """Liger computes what broadcasting ``q * cos`` computes only for these layouts."""
    if q.dim() != 4 or k.dim() != 4:
        return False
    bsz, _, seq, head_dim = q.shape
    if k.shape[0] != bsz or k.shape[2] != seq or k.shape[3] != head_dim or head_dim % 2:
        return False
    if cos.shape != sin.shape:
        return False
    if cos.dim() == 2:
        return tuple(cos.shape) == (seq, head_dim)
    return cos.dim() == 4 and cos.shape[0] in (1, bsz) and tuple(cos.shape[1:]) == (1, seq, head_dim)


def _fresh(x: torch.Tensor) -> torch.Tensor:
    """A copy of ``x`` in the physical layout Liger writes into (seq before heads), so its
    in-place kernel overwrites the copy and never the caller's tensor."""
    return x.transpose(1, 2).clone(memory_format=torch.contiguous_format).transpose(1, 2)


def liger_rope(q: torch.Tensor, k: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor,
               rotate_half: Callable) -> Tuple[torch.Tensor, torch.Tensor]:
    """``(q * cos) + (rotate_half(q) * sin)`` and the same for ``k``, as one Liger kernel on CUDA.

    Liger's path is taken only when everything it assumes holds: CUDA tensors of one floating
    dtype (so the result dtype is the eager one), the layouts of :func:`_rope_shapes_fit`,
    cos/sin that need no gradient (Liger returns none for them), ``rotate_half`` that really is
    the half rotation, and no ``torch.compile`` tracing (which fuses the eager code itself).
    Otherwise the original expression is evaluated, with the caller's ``rotate_half``; so do
    ``torch.jit.trace``, ``torch.fx`` and ``torch.export`` (:func:`recording`).  TorchScript
    cannot compile a call that passes a function, which is why ADP014's fix is marked unsafe.
    """
    if (
        not recording(q, k, cos, sin)
        and q.is_cuda and k.is_cuda and cos.is_cuda and sin.is_cuda
        and q.is_floating_point() and q.dtype == k.dtype == cos.dtype == sin.dtype
        and not cos.requires_grad and not sin.requires_grad
        and _rope_shapes_fit(q, k, cos, sin)
        and not _compiling()
        and is_rotate_half(rotate_half, q.shape[-1])
    ):
        fused = _liger(*LIGER_ROPE)
        if fused is not None:
            return fused(_fresh(q), _fresh(k), cos, sin)
    q_embed = (q * cos) + (rotate_half(q) * sin)
    k_embed = (k * cos) + (rotate_half(k) * sin)
    return q_embed, k_embed


def liger_fused_linear_cross_entropy(hidden: torch.Tensor, lm_head: nn.Module, labels: torch.Tensor, *,
                                     ignore_index: int = -100, label_smoothing: float = 0.0,
                                     reduction: str = "mean") -> torch.Tensor:
    """``cross_entropy(lm_head(hidden).float().view(-1, V), labels.view(-1))``, on CUDA without
    ever building the logits (Liger's chunked fused linear cross-entropy).

    For training code that needs only the loss: ADP015 reports the places, and the caller
    passes the already shifted hidden states and labels.  Liger's path needs a plain
    ``nn.Linear`` head (no hooks, no ``forward`` override: LoRA and quantised heads compute
    something else), CUDA tensors, hidden states in the weight's dtype, integer labels and a
    reduction Liger implements; everything else computes the eager expression, logits
    upcast to float32 as Hugging Face's causal LMs do.
    """
    if (
        not recording(hidden, labels)
        and hidden.is_cuda and labels.is_cuda and not labels.is_floating_point()
        and is_plain(lm_head, nn.Linear) and hidden.dtype == lm_head.weight.dtype
        and hidden.shape[:-1] == labels.shape and reduction in ("mean", "sum")
        and not _compiling()
    ):
        fused = _liger(*LIGER_FLCE)
        if fused is not None:
            return fused(hidden.reshape(-1, hidden.shape[-1]), lm_head.weight, labels.reshape(-1), lm_head.bias,
                         ignore_index=ignore_index, label_smoothing=label_smoothing, reduction=reduction)
    logits = lm_head(hidden).float()
    return nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1),
                                       ignore_index=ignore_index, label_smoothing=label_smoothing,
                                       reduction=reduction)
