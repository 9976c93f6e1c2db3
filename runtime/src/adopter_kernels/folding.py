"""Convolution/Linear followed by BatchNorm, folded when BatchNorm uses running statistics
(rules ADP007 and ADP008).

In eval mode BatchNorm is an affine map per channel, ``y = (z - mean) / sqrt(var + eps) * gamma
+ beta``, so it can be absorbed into the preceding layer's weight and bias and the whole block
becomes one convolution (or one GEMM). In training mode BatchNorm normalises with the batch's own
statistics and updates its running buffers; nothing can be folded, so the two modules run
exactly as written.
"""

from __future__ import annotations

import weakref
from typing import Optional, Tuple

import torch
from torch import nn

from ._runtime import Layer, _has_hooks, is_plain, recording, tensor_signature
from .activations import _bias_gelu, _gelu_mode

__all__ = ["conv_bn", "linear_bn", "FoldingSequential"]

# conv type -> the BatchNorm type that accepts its (batched) output
_CONV_BN = ((nn.Conv1d, nn.BatchNorm1d), (nn.Conv2d, nn.BatchNorm2d), (nn.Conv3d, nn.BatchNorm3d))

# first module -> (weakref to the BatchNorm, signature, folded weight, folded bias). Keyed weakly
# so a cache entry dies with the model; one entry per layer, since a layer feeds one BatchNorm.
_FOLD_CACHE: "weakref.WeakKeyDictionary[nn.Module, tuple]" = weakref.WeakKeyDictionary()


def _uses_running_stats(bn: nn.modules.batchnorm._BatchNorm) -> bool:
    # Mirrors BatchNorm's own rule: batch statistics in training mode, and also in eval mode when
    # it tracks no running statistics (``track_running_stats=False``).
    return not bn.training and bn.running_mean is not None and bn.running_var is not None


def _fold(
    weight: torch.Tensor,
    bias: Optional[torch.Tensor],
    bn: nn.modules.batchnorm._BatchNorm,
    compute_dtype: torch.dtype,
) -> Tuple[torch.Tensor, torch.Tensor]:
    # Differentiable on purpose: with trainable parameters in eval mode (fine-tuning with frozen
    # BatchNorm statistics), gradients reach the layer's weight and BatchNorm's gamma/beta through
    # this arithmetic exactly as they would through the unfolded pair.
    inv_std = torch.rsqrt(bn.running_var.to(compute_dtype) + bn.eps)
    scale = inv_std if bn.weight is None else bn.weight.to(compute_dtype) * inv_std
    folded_w = weight.to(compute_dtype) * scale.reshape((-1,) + (1,) * (weight.dim() - 1))
    shift = -bn.running_mean.to(compute_dtype)
    if bias is not None:
        shift = shift + bias.to(compute_dtype)
    folded_b = shift * scale
    if bn.bias is not None:
        folded_b = folded_b + bn.bias.to(compute_dtype)
    return folded_w.to(weight.dtype), folded_b.to(weight.dtype)


def _folded(
    layer: nn.Module, weight: torch.Tensor, bias: Optional[torch.Tensor], bn: nn.Module
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Folded parameters, from the cache when nothing can need their gradient.

    While autograd must reach the parameters, folding happens inside the graph on every call, so
    an optimizer step can never meet a stale copy. Otherwise (``no_grad``, ``inference_mode``,
    frozen parameters) the folded tensors are cached per layer and reused until one of the six
    source tensors is replaced or updated in place. The cached copy is computed in float64 (one
    rounding instead of four) and costs as much memory as the layer's weight.
    """
    sources = (weight, bias, bn.running_mean, bn.running_var, bn.weight, bn.bias)
    needs_grad = torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in sources)
    if needs_grad:
        return _fold(weight, bias, bn, torch.promote_types(weight.dtype, torch.float32))
    sig = tensor_signature(*sources)
    if sig is None:  # inference tensors: no version counter, nothing to key a cache on
        return _fold(weight, bias, bn, torch.promote_types(weight.dtype, torch.float32))
    sig = sig + (float(bn.eps),)
    entry = _FOLD_CACHE.get(layer)
    if entry is not None and entry[0]() is bn and entry[1] == sig:
        return entry[2], entry[3]
    wide = torch.float64 if weight.device.type in ("cpu", "cuda") else torch.float32
    # Built outside inference mode so the cached tensors stay usable if a later call runs with
    # grad enabled on an input that requires grad (autograd refuses to save inference tensors).
    with torch.inference_mode(False), torch.no_grad():
        folded = _fold(weight, bias, bn, wide)
    _FOLD_CACHE[layer] = (weakref.ref(bn), sig, folded[0], folded[1])
    return folded


def conv_bn(x: torch.Tensor, conv: Layer, bn: Layer) -> torch.Tensor:
    """``bn(conv(x))``, computed as a single convolution when BatchNorm is in eval mode.

    Exact (up to float rounding) for any padding mode, stride, dilation, groups and ``bias=None``,
    because the folded weights go through the conv module's own ``_conv_forward``. Also accepts
    the Conv1d/BatchNorm1d and Conv3d/BatchNorm3d pairs, and for ``conv`` an ``nn.Sequential``
    (not overriding ``forward``) whose last member is the convolution: a separable convolution,
    whose other members run as its forward runs them. On GPUs this saves a full read and
    write of the activations; on CPU the measured gain is nil (0.86-1.05x, SPEC section 7).
    Training mode, unbatched input, transposed or customised layers run the two modules as
    written, so batch statistics and running-stat updates are the eager ones.  So do
    ``torch.jit.script``, ``torch.jit.trace``, ``torch.fx`` and ``torch.export``
    (:func:`recording`): they record the two modules, as they did before the patch.
    """
    if torch.jit.is_scripting():
        return bn.forward(conv.forward(x))
    return _conv_bn(x, conv, bn)


def _conv_bn(x: torch.Tensor, conv: nn.Module, bn: nn.Module) -> torch.Tensor:
    if recording(x):
        return bn(conv(x))
    if isinstance(conv, nn.Sequential):
        return _through_sequential(x, conv, bn)
    for conv_cls, bn_cls in _CONV_BN:
        if is_plain(conv, conv_cls) and is_plain(bn, bn_cls):
            break
    else:
        return bn(conv(x))
    if (
        not _uses_running_stats(bn)
        or x.dim() != len(conv.kernel_size) + 2  # BatchNorm rejects unbatched input; keep that
        or bn.num_features != conv.out_channels
    ):
        return bn(conv(x))
    weight, bias = _folded(conv, conv.weight, conv.bias, bn)
    return conv._conv_forward(x, weight, bias)


def linear_bn(x: torch.Tensor, linear: Layer, bn: Layer) -> torch.Tensor:
    """``bn(linear(x))``, computed as a single ``F.linear`` when BatchNorm is in eval mode.

    Folding is only valid for 2-D input ``(N, features)``: for 3-D input BatchNorm1d normalises
    dimension 1, which ``Linear`` does not produce as its feature dimension, so that case (and
    training mode) runs the two modules as written, and so do the program transformations
    (see :func:`conv_bn`).
    """
    if torch.jit.is_scripting():
        return bn.forward(linear.forward(x))
    return _linear_bn(x, linear, bn)


def _linear_bn(x: torch.Tensor, linear: nn.Module, bn: nn.Module) -> torch.Tensor:
    if not recording(x) and isinstance(linear, nn.Sequential):
        return _through_sequential(x, linear, bn)
    if recording(x) or not (is_plain(linear, nn.Linear) and is_plain(bn, nn.BatchNorm1d)):
        return bn(linear(x))
    if not _uses_running_stats(bn) or x.dim() != 2 or bn.num_features != linear.out_features:
        return bn(linear(x))
    weight, bias = _folded(linear, linear.weight, linear.bias, bn)
    return torch.nn.functional.linear(x, weight, bias)


def _through_sequential(x: torch.Tensor, first: nn.Sequential, bn: nn.Module) -> torch.Tensor:
    """``bn(first(x))`` for an ``nn.Sequential`` ``first`` (a separable convolution: depth-wise,
    then 1x1): its members but the last run as its forward runs them, and the BatchNorm folds
    into the last one when that is a foldable layer.  Only when calling ``first`` is exactly
    nn.Sequential's loop: a subclass with its own forward, or hooks on ``first``, run as written."""
    if (type(first).forward not in (nn.Sequential.forward, FoldingSequential.forward) or _has_hooks(first)
            or len(first) == 0):
        return bn(first(x))
    *prefix, last = first._modules.values()
    for module in prefix:
        x = module(x)
    if not isinstance(x, torch.Tensor):
        return bn(last(x))
    if isinstance(last, nn.Linear) and isinstance(bn, nn.BatchNorm1d):
        return _linear_bn(x, last, bn)
    return _conv_bn(x, last, bn)


def _pair_kernel(first: nn.Module, second: nn.Module):
    """The folding kernel for two adjacent members, or None when they are no candidate pair.
    (The kernel itself checks the rest - plain classes, no hooks, running statistics, shapes -
    and otherwise runs the two modules as written, which is what the container would do.)"""
    if isinstance(second, nn.modules.batchnorm._BatchNorm):
        if isinstance(first, (nn.Conv1d, nn.Conv2d, nn.Conv3d)):
            return _conv_bn
        if isinstance(first, nn.Linear) and isinstance(second, nn.BatchNorm1d):
            return _linear_bn
        if isinstance(first, nn.Sequential):  # ends in a conv or Linear (a separable convolution)?
            return _through_sequential
    elif isinstance(first, nn.Linear) and _gelu_mode(second) is not None:
        # Linear -> GELU (rule ADP006): adopter_kernels.bias_gelu's path, which runs the pair as
        # written unless the Linear is plain and the activation a GELU it knows
        return _bias_gelu
    return None


def _past_identities(modules: list, index: int) -> int:
    """The index of the first member from ``index`` on that is not a plain ``nn.Identity``
    (no subclass forward, no hooks): such a member returns its input unchanged, so the members
    around it run one right after the other (``norm(w) if flag else nn.Identity()`` between a
    Linear and its GELU folds when the flag leaves the identity)."""
    while index < len(modules) and is_plain(modules[index], nn.Identity):
        index += 1
    return index


class FoldingSequential(nn.Sequential):
    """An ``nn.Sequential`` that folds each Conv -> BatchNorm (and Linear -> BatchNorm1d)
    pair of adjacent members when the BatchNorm uses its running statistics (rules ADP007 and
    ADP008, for layers that run inside a container), and runs each Linear -> GELU pair as
    :func:`adopter_kernels.bias_gelu` runs it (rule ADP006: fused when the Linear is plain and
    the activation a GELU; otherwise the two members as written).

    It *is* an ``nn.Sequential``: the same constructor (modules, or one ``OrderedDict``), the
    same children under the same names (so the same ``state_dict`` keys: checkpoints load with
    ``strict=True``), indexing, slicing, ``len``, iteration, ``append``/``insert``/``extend``.
    Only ``forward`` differs, and only in how a foldable pair is computed: members are read at
    every call, so members added or replaced later are honoured.  A pair runs as written - each
    module called as ``nn.Sequential`` calls it, hooks included - whenever folding is not exactly
    the same computation: BatchNorm in training mode or without running statistics, a member
    with hooks (or global module hooks), a subclass overriding ``forward``, mismatched channels
    or unbatched input (see :func:`conv_bn`).  While ``torch.jit.script``, ``torch.jit.trace``,
    ``torch.fx``, ``torch.export`` or ``torch.compile`` record it, it runs exactly
    ``nn.Sequential.forward``, so they record the program the unpatched container gives.
    """

    def forward(self, input):  # noqa: A002 - nn.Sequential's own parameter name
        if torch.jit.is_scripting():
            for module in self:
                input = module(input)
            return input
        return self._folding_forward(input)

    @torch.jit.unused
    def _folding_forward(self, input):  # noqa: A002
        if not isinstance(input, torch.Tensor) or recording(input):
            return super().forward(input)
        modules = list(self._modules.values())
        count = len(modules)
        index = 0
        while index < count:
            module = modules[index]
            partner = _past_identities(modules, index + 1)
            kernel = _pair_kernel(module, modules[partner]) if partner < count else None
            if kernel is None:
                input = module(input)
                index += 1
            else:
                input = kernel(input, module, modules[partner])
                index = partner + 1
            if not isinstance(input, torch.Tensor) and index < count:
                # a member returned something else (a tuple): the rest runs as nn.Sequential runs it
                for module in modules[index:]:
                    input = module(input)
                return input
        return input
