"""Three projections of one input computed by one GEMM (rule ADP009).

slapo's FusedQKV, the paper's target, interleaves heads and so needs permuted checkpoints. Here
the three existing ``nn.Linear`` modules stay as they are (checkpoints load unchanged) and their
weights are concatenated along the output dimension, which needs no permutation at all.
"""

from __future__ import annotations

import weakref
from typing import List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from ._runtime import Layer, is_plain, recording, tensor_signature

__all__ = ["fused_qkv"]

# q module -> (weakref k, weakref v, signature, weight, bias)
_QKV_CACHE: "weakref.WeakKeyDictionary[nn.Module, tuple]" = weakref.WeakKeyDictionary()


def _concat(layers: Tuple[nn.Linear, ...]) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
    weight = torch.cat([m.weight for m in layers], dim=0)
    if all(m.bias is None for m in layers):
        return weight, None
    # A missing bias contributes zeros: F.linear with a zero bias equals F.linear without one.
    biases: List[torch.Tensor] = [
        m.bias if m.bias is not None else weight.new_zeros(m.out_features) for m in layers
    ]
    return weight, torch.cat(biases, dim=0)


def _fusable(q: nn.Module, k: nn.Module, v: nn.Module) -> bool:
    layers = (q, k, v)
    if not all(is_plain(m, nn.Linear) for m in layers):
        return False
    w0 = q.weight
    return all(
        m.in_features == q.in_features
        and m.weight.dtype == w0.dtype
        and m.weight.device == w0.device
        and (m.bias is None or (m.bias.dtype == w0.dtype and m.bias.device == w0.device))
        for m in layers
    )


def fused_qkv(x: torch.Tensor, q: Layer, k: Layer, v: Layer) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(q(x), k(x), v(x))`` from one ``F.linear`` over the concatenated weights.

    One GEMM with three times the output width uses the GPU better than three small ones and
    reads ``x`` once; on CPU the measured gain is nil (SPEC section 7). Output widths may differ
    (grouped-query attention) and any of the biases may be missing.

    While autograd must reach the weights, the concatenation is redone inside the graph every
    call, so gradients land on the three original parameters and an optimizer step can never
    meet a stale copy. Without grad (``no_grad``, ``inference_mode``, frozen weights) the
    concatenation is cached until any weight or bias is replaced or updated in place; the cache
    costs one extra copy of the three weights.

    The three results are column slices of one ``(..., q+k+v)`` tensor, like the
    ``c_attn(x).split(...)`` in GPT-2: ``.view`` calls that only split the last dimension or
    merge leading ones work, a ``.view(-1)`` over a whole slice needs ``.reshape``. They are made
    with ``narrow`` rather than ``torch.split`` because autograd forbids in-place updates
    (``q_out.mul_(scale)``) on outputs of multi-view functions like ``split``, and user code
    that scaled ``q(x)`` in place must keep working.

    TorchScript, ``torch.jit.trace``, ``torch.fx`` and ``torch.export`` record the three
    projections as written (:func:`recording`).
    """
    if torch.jit.is_scripting():
        return q.forward(x), k.forward(x), v.forward(x)
    return _fused_qkv(x, q, k, v)


def _fused_qkv(x: torch.Tensor, q: nn.Module, k: nn.Module, v: nn.Module) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    if recording(x) or not _fusable(q, k, v):
        return q(x), k(x), v(x)
    layers = (q, k, v)
    params = [t for m in layers for t in (m.weight, m.bias)]
    needs_grad = torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in params)
    if needs_grad:
        weight, bias = _concat(layers)
    else:
        sig = tensor_signature(*params)
        entry = _QKV_CACHE.get(q)
        if sig is not None and entry is not None and entry[0]() is k and entry[1]() is v and entry[2] == sig:
            weight, bias = entry[3], entry[4]
        else:
            # Outside inference mode so the cache stays usable by later grad-enabled calls.
            with torch.inference_mode(False), torch.no_grad():
                weight, bias = _concat(layers)
            if sig is not None:
                _QKV_CACHE[q] = (weakref.ref(k), weakref.ref(v), sig, weight, bias)
    out = F.linear(x, weight, bias)
    sizes = (q.out_features, k.out_features, v.out_features)
    return (
        out.narrow(-1, 0, sizes[0]),
        out.narrow(-1, sizes[0], sizes[1]),
        out.narrow(-1, sizes[0] + sizes[1], sizes[2]),
    )
