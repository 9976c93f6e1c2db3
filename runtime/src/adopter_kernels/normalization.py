"""Softmax and the Dropout -> residual add -> LayerNorm block (rules ADP004 and ADP005).

The paper's targets (xformers' Triton softmax, epoi's FusedDropoutAddLayerNorm) no longer exist,
so these are first-party and written against PyTorch built-ins only.
"""

from __future__ import annotations

from typing import Callable, List, Optional, Union

import torch
import torch.nn.functional as F
from torch import nn

from ._runtime import LazyCompiled, Layer, compile_allowed, is_plain, recording

__all__ = ["softmax", "dropout_add_layer_norm"]


def softmax(input: torch.Tensor, dim: int = -1, dtype: Optional[torch.dtype] = None) -> torch.Tensor:
    """Softmax over ``dim``; the stable target of the softmax rule.

    The paper's target, xformers' Triton softmax, was removed from xformers in 2024, and
    PyTorch's own softmax is already one fused, numerically stable kernel on both CPU and CUDA,
    so a Triton rewrite would buy nothing measurable. Routing the rule through this function
    rather than through ``F.softmax`` directly keeps patched code stable if a faster backend
    appears, and keeps the ``dim`` argument explicit: ``F.softmax`` without ``dim`` picks a
    dimension implicitly (with a deprecation warning), which is easy to get wrong.
    """
    return F.softmax(input, dim=dim, dtype=dtype)


def _dropout_add_layer_norm_ref(
    x: torch.Tensor,
    residual: torch.Tensor,
    p: float,
    training: bool,
    normalized_shape: List[int],
    weight: Optional[torch.Tensor],
    bias: Optional[torch.Tensor],
    eps: float,
) -> torch.Tensor:
    # Written as one function so that Inductor sees dropout, the add and the normalization
    # together and emits a single kernel (one read of x and residual, one write) on CUDA.
    if training and p > 0.0:
        x = F.dropout(x, p, True)
    return F.layer_norm(x + residual, normalized_shape, weight, bias, eps)


_fused_dropout_add_layer_norm = LazyCompiled(_dropout_add_layer_norm_ref, "dropout_add_layer_norm")


def dropout_add_layer_norm(
    x: torch.Tensor,
    residual: torch.Tensor,
    dropout: Union[Layer, float],
    norm: Layer,
    training: Optional[bool] = None,
) -> torch.Tensor:
    """``norm(dropout(x) + residual)`` over the caller's own ``nn.Dropout`` and ``nn.LayerNorm``.

    Taking the existing modules (not their hyper-parameters) keeps patched models' state dicts
    and ``train()``/``eval()`` behaviour unchanged. When dropout is a no-op (eval mode or
    ``p == 0``) it is skipped outright; on CUDA the whole block runs as one compiled kernel.
    Anything we cannot reproduce exactly - a custom dropout or norm callable, a subclass with its
    own ``forward``, hooks, in-place dropout whose side effect on ``x`` the caller might rely on
    - runs the original expression unchanged.

    ``dropout`` may also be the probability of a functional dropout,
    ``F.dropout(x, p, training)`` (Hugging Face's encoder layers), with ``training`` given.

    With ``p > 0`` in training the compiled CUDA path draws its dropout mask from Inductor's
    random stream, so masks differ from eager's for the same seed (same distribution); on CPU the
    eager dropout is called, so masks are identical.  TorchScript, ``torch.jit.trace``,
    ``torch.fx`` and ``torch.export`` record the original expression (:func:`recording`).
    """
    if torch.jit.is_scripting():
        if isinstance(dropout, float):
            assert training is not None, "dropout_add_layer_norm: a dropout probability needs training="
            return norm.forward(F.dropout(x, dropout, training) + residual)
        return norm.forward(dropout.forward(x) + residual)
    return _dropout_add_layer_norm(x, residual, dropout, norm, training)


def _dropout_add_layer_norm(x: torch.Tensor, residual: torch.Tensor, dropout, norm, training) -> torch.Tensor:
    if isinstance(dropout, (int, float)) and not isinstance(dropout, bool):
        if training is None:
            raise TypeError("dropout_add_layer_norm: a dropout probability needs training=")
        p, training, inplace = float(dropout), bool(training), False

        def eager_dropout(t: torch.Tensor) -> torch.Tensor:
            return F.dropout(t, p, training)

        dropout = eager_dropout
        if recording(x, residual) or not is_plain(norm, nn.LayerNorm):
            return norm(dropout(x) + residual)
    elif recording(x, residual) or not is_plain(norm, nn.LayerNorm):
        return norm(dropout(x) + residual)
    elif is_plain(dropout, nn.Dropout):
        p, training, inplace = float(dropout.p), bool(dropout.training), bool(dropout.inplace)
    elif is_plain(dropout, nn.Identity):
        p, training, inplace = 0.0, False, False
    else:
        return norm(dropout(x) + residual)
    active = training and p > 0.0
    if compile_allowed(x) and not (active and inplace):
        return _fused_dropout_add_layer_norm(
            x, residual, p, training, list(norm.normalized_shape), norm.weight, norm.bias, norm.eps
        )
    if active:
        x = dropout(x)
    return F.layer_norm(x + residual, norm.normalized_shape, norm.weight, norm.bias, norm.eps)
