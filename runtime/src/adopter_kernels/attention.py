"""Attention layers rewritten onto ``F.scaled_dot_product_attention`` (rules ADP001-ADP003).

Each factory takes the user's attention class (a local copy of, or the actual, transformers 4.34
``BertSelfAttention`` / ``T5Attention`` / ``GPT2Attention``) and returns a subclass that differs
only in ``forward``. Subclassing, rather than a new module, is what keeps patched models
compatible: same ``__init__``, same parameters and buffers, same state-dict keys, so
``load_state_dict(strict=True)`` and ``from_pretrained`` keep working, and ``isinstance`` checks
in user code still hold.

The new ``forward`` reproduces the original step by step (projections, caches, mask handling,
returned tuples) and only replaces "scores -> mask -> softmax -> dropout -> @ value" by one SDPA
call. Where SDPA cannot reproduce the original exactly - the attention probabilities are
requested, a head mask multiplies them, relative position scores are added, the mask is boolean
(added as 0/1 by the original, but read as keep/drop by SDPA), dtypes would promote differently -
it calls the original ``forward`` unchanged.

So does a batch with a query row whose every key is masked (a sequence that is all padding, the
padded positions of a left-padded decoder): see :func:`_blind_rows_differ` for when SDPA's
result there is not the eager one.

With dropout active in training, SDPA draws its own dropout mask, so individual masks differ
from the eager ones for the same seed; the distribution is the same.
"""

from __future__ import annotations

import inspect
import math
import warnings
import weakref
from typing import Any, Callable, Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from ._runtime import autocast_active, is_plain, recording, tensor_signature

__all__ = ["sdpa_bert_self_attention", "sdpa_t5_attention", "sdpa_gpt2_attention"]

_PATCHED: Dict[Tuple[str, type], type] = {}
_FACTORIES: Dict[str, Callable[[type], type]] = {}


def _rebuild_patched(kind: str, base: type) -> nn.Module:
    # Pickle/deepcopy entry point: the subclass is created at run time and cannot be found by
    # its qualified name, so instances are pickled as "factory(base)" plus their state.
    cls = _FACTORIES[kind](base)
    return cls.__new__(cls)


def _reduce_ex(self: nn.Module, protocol: int) -> Any:
    return (_rebuild_patched, (self._adopter_sdpa_kind, self._adopter_sdpa_base), self.__getstate__())


def _patched_subclass(kind: str, cls: type, forward: Callable[..., Any], params: List[str]) -> type:
    if getattr(cls, "_adopter_sdpa_kind", None) == kind:
        return cls  # already patched: patching twice must not stack subclasses
    key = (kind, cls)
    if key in _PATCHED:
        return _PATCHED[key]
    if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
        raise TypeError(f"expected an nn.Module subclass, got {cls!r}")
    found = list(inspect.signature(cls.forward).parameters)[1:]
    if found != params:
        # A local class with the expected name but a different forward has semantics we cannot
        # vouch for; running it unpatched is safe, replacing its forward would not be.
        warnings.warn(
            f"adopter_kernels: {cls.__qualname__}.forward{tuple(found)} does not have the "
            f"{kind} signature {tuple(params)}; leaving it unpatched.",
            RuntimeWarning,
            stacklevel=3,
        )
        _PATCHED[key] = cls
        return cls
    namespace = {
        "forward": forward,
        "__module__": cls.__module__,
        "__qualname__": cls.__qualname__ + "Sdpa",
        "__doc__": cls.__doc__,
        "__reduce_ex__": _reduce_ex,
        "_adopter_sdpa_kind": kind,
        "_adopter_sdpa_base": cls,
    }
    sub = type(cls.__name__ + "Sdpa", (cls,), namespace)
    _PATCHED[key] = sub
    return sub


def _attn_dropout_p(dropout: Any) -> Optional[float]:
    """Probability SDPA must use to match ``dropout``, or None if it is not a plain Dropout."""
    if not is_plain(dropout, nn.Dropout):
        return None
    return float(dropout.p) if dropout.training else 0.0


def _mask_ok(mask: Optional[torch.Tensor]) -> bool:
    """Whether an additive mask may go to SDPA as ``attn_mask`` as it is.

    Integer/boolean masks are *added* by the eager code (True counts as +1.0) but SDPA reads
    boolean masks as keep/drop, so only floating masks qualify; more than 4 dimensions would
    broadcast the eager scores to a different shape.
    """
    return mask is None or (isinstance(mask, torch.Tensor) and mask.is_floating_point() and mask.dim() <= 4)


def _same_dtypes(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: Optional[torch.Tensor]) -> bool:
    # Eager attention promotes "fp16 scores + fp32 mask" to fp32; SDPA does not. Under autocast
    # SDPA casts the mask itself, matching what the eager matmul-based code sees.
    if not (q.dtype == k.dtype == v.dtype):
        return False
    return mask is None or mask.dtype == q.dtype or autocast_active(q.device.type)


def _blind_rows_differ(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: Optional[torch.Tensor]) -> bool:
    """Whether a query row that hides every key (each mask entry near ``finfo.min``) would come
    out of SDPA differently from the eager attention, so that such rows must take the original.

    The eager code adds ``finfo.min`` to the scores in the scores' dtype, which absorbs them: the
    row is all ``finfo.min`` and its softmax uniform.  SDPA's fused kernels give the same values
    in float32, float64 and bfloat16, but not
    - the same gradients: they keep the log-sum-exp of each row for the backward pass, and at
      ``finfo.min`` its ``+ log(number of keys)`` is lost to rounding, so the backward pass
      recomputes every probability of the row as 1 instead of 1/keys (BERT with one sequence all
      padding: gradients off by the whole value of the row, through every layer below);
    - the same values in float16, whose ``finfo.min`` (-65504) does not absorb the scores in the
      kernels' float32 arithmetic (the row becomes a softmax of its scores, not uniform); nor
      under autocast, which casts a float32 mask's ``finfo.min`` to ``-inf`` in half precision.
    Where none of this applies (inference in float32/float64/bfloat16) nothing is checked, so the
    fast path costs no device sync there.
    """
    needs_grad = torch.is_grad_enabled() and (q.requires_grad or k.requires_grad or v.requires_grad)
    return needs_grad or q.dtype == torch.float16 or (mask is not None and mask.dtype != q.dtype)


# Last answer of _hides_every_key_of_a_row: (weakref to the mask, its signature, result). One slot
# suffices because every layer of a model receives the same mask tensor in turn.
_HIDDEN_ROW_SLOT: List[Any] = [None]


def _hides_every_key_of_a_row(mask: torch.Tensor) -> bool:
    """Whether some query row of an additive mask hides every key (entries at or below
    ``finfo.min / 2``: BERT's ``(1 - mask) * finfo.min``, or ``-inf``).  One device sync per mask
    tensor, not per layer."""
    sig = tensor_signature(mask)
    slot = _HIDDEN_ROW_SLOT[0]
    if sig is not None and slot is not None and slot[0]() is mask and slot[1] == sig:
        return slot[2]
    result = bool((mask <= torch.finfo(mask.dtype).min / 2).all(dim=-1).any())
    if sig is not None:
        _HIDDEN_ROW_SLOT[0] = (weakref.ref(mask), sig, result)
    return result


# --------------------------------------------------------------------------------------------
# BERT


_BERT_PARAMS = [
    "hidden_states",
    "attention_mask",
    "head_mask",
    "encoder_hidden_states",
    "encoder_attention_mask",
    "past_key_value",
    "output_attentions",
]


def _bert_forward(
    self,
    hidden_states: torch.Tensor,
    attention_mask: Optional[torch.Tensor] = None,
    head_mask: Optional[torch.Tensor] = None,
    encoder_hidden_states: Optional[torch.Tensor] = None,
    encoder_attention_mask: Optional[torch.Tensor] = None,
    past_key_value: Optional[Tuple[torch.Tensor, torch.Tensor]] = None,
    output_attentions: Optional[bool] = False,
) -> Tuple[Any, ...]:
    def original() -> Tuple[Any, ...]:
        return self._adopter_sdpa_base.forward(
            self,
            hidden_states,
            attention_mask=attention_mask,
            head_mask=head_mask,
            encoder_hidden_states=encoder_hidden_states,
            encoder_attention_mask=encoder_attention_mask,
            past_key_value=past_key_value,
            output_attentions=output_attentions,
        )

    is_cross_attention = encoder_hidden_states is not None
    mask = encoder_attention_mask if is_cross_attention else attention_mask
    dropout_p = _attn_dropout_p(getattr(self, "dropout", None))
    if (
        recording(hidden_states)  # traced, exported, compiled: the program the original gives
        or output_attentions
        or head_mask is not None
        or getattr(self, "position_embedding_type", None) != "absolute"
        or dropout_p is None
        or not _mask_ok(mask)
    ):
        return original()

    mixed_query_layer = self.query(hidden_states)
    if is_cross_attention and past_key_value is not None:
        key_layer, value_layer = past_key_value[0], past_key_value[1]
    elif is_cross_attention:
        key_layer = self.transpose_for_scores(self.key(encoder_hidden_states))
        value_layer = self.transpose_for_scores(self.value(encoder_hidden_states))
    elif past_key_value is not None:
        key_layer = self.transpose_for_scores(self.key(hidden_states))
        value_layer = self.transpose_for_scores(self.value(hidden_states))
        key_layer = torch.cat([past_key_value[0], key_layer], dim=2)
        value_layer = torch.cat([past_key_value[1], value_layer], dim=2)
    else:
        key_layer = self.transpose_for_scores(self.key(hidden_states))
        value_layer = self.transpose_for_scores(self.value(hidden_states))
    query_layer = self.transpose_for_scores(mixed_query_layer)

    if not _same_dtypes(query_layer, key_layer, value_layer, mask):
        return original()  # rare (mixed dtypes without autocast): recompute the eager way
    if (
        mask is not None
        and _blind_rows_differ(query_layer, key_layer, value_layer, mask)
        and _hides_every_key_of_a_row(mask)
    ):
        return original()  # a sequence that is all padding, with gradients wanted (or in half precision)

    context_layer = F.scaled_dot_product_attention(
        query_layer,
        key_layer,
        value_layer,
        attn_mask=mask,
        dropout_p=dropout_p,
        scale=1.0 / math.sqrt(self.attention_head_size),
    )
    context_layer = context_layer.permute(0, 2, 1, 3).contiguous()
    context_layer = context_layer.view(context_layer.size()[:-2] + (self.all_head_size,))
    if self.is_decoder:
        return (context_layer, (key_layer, value_layer))
    return (context_layer,)


def sdpa_bert_self_attention(cls: type) -> type:
    """Subclass of a ``BertSelfAttention``-shaped class whose forward uses SDPA.

    Fast path when ``position_embedding_type == "absolute"``, ``head_mask is None``,
    ``output_attentions`` is false, ``self.dropout`` is a plain ``nn.Dropout`` and the mask is a
    floating additive mask. The BERT model already folds padding and (for decoders) causality
    into that additive mask, so it is passed to SDPA as ``attn_mask`` unchanged and the result is
    the eager result up to float rounding, for self-, cross- and cached decoder attention.
    A mask that hides every key of some row (a sequence that is all padding) takes the original
    where SDPA would differ there (:func:`_blind_rows_differ`: with gradients, in float16).
    Returns ``(context,)`` or ``(context, (key, value))`` for decoders, like the original.
    """
    return _patched_subclass("bert", cls, _bert_forward, _BERT_PARAMS)


# --------------------------------------------------------------------------------------------
# T5


_T5_PARAMS = [
    "hidden_states",
    "mask",
    "key_value_states",
    "position_bias",
    "past_key_value",
    "layer_head_mask",
    "query_length",
    "use_cache",
    "output_attentions",
]


def _t5_forward(
    self,
    hidden_states: torch.Tensor,
    mask: Optional[torch.Tensor] = None,
    key_value_states: Optional[torch.Tensor] = None,
    position_bias: Optional[torch.Tensor] = None,
    past_key_value: Optional[Tuple[torch.Tensor, torch.Tensor]] = None,
    layer_head_mask: Optional[torch.Tensor] = None,
    query_length: Optional[int] = None,
    use_cache: bool = False,
    output_attentions: bool = False,
) -> Tuple[Any, ...]:
    def original() -> Tuple[Any, ...]:
        return self._adopter_sdpa_base.forward(
            self,
            hidden_states,
            mask=mask,
            key_value_states=key_value_states,
            position_bias=position_bias,
            past_key_value=past_key_value,
            layer_head_mask=layer_head_mask,
            query_length=query_length,
            use_cache=use_cache,
            output_attentions=output_attentions,
        )

    if (
        recording(hidden_states)
        or output_attentions
        or layer_head_mask is not None
        or not isinstance(self.dropout, (int, float))
        or not _mask_ok(mask)
        or not _mask_ok(position_bias)
        or (past_key_value is not None and len(past_key_value) != 2)  # original raises
    ):
        return original()

    batch_size, seq_length = hidden_states.shape[:2]
    real_seq_length = seq_length
    if past_key_value is not None:
        real_seq_length += past_key_value[0].shape[2] if query_length is None else query_length
    key_length = real_seq_length if key_value_states is None else key_value_states.shape[1]

    def shape(states: torch.Tensor) -> torch.Tensor:
        return states.view(batch_size, -1, self.n_heads, self.key_value_proj_dim).transpose(1, 2)

    def unshape(states: torch.Tensor) -> torch.Tensor:
        return states.transpose(1, 2).contiguous().view(batch_size, -1, self.inner_dim)

    def project(proj: nn.Module, past: Optional[torch.Tensor]) -> torch.Tensor:
        # Same case analysis as T5: self-attention appends to the cache; cross-attention reuses
        # the cached projection unless its length no longer matches (prefix tuning).
        if key_value_states is None:
            states = shape(proj(hidden_states))
        elif past is None:
            states = shape(proj(key_value_states))
        if past is not None:
            if key_value_states is None:
                states = torch.cat([past, states], dim=2)
            elif past.shape[2] != key_value_states.shape[1]:
                states = shape(proj(key_value_states))
            else:
                states = past
        return states

    query_states = shape(self.q(hidden_states))
    key_states = project(self.k, past_key_value[0] if past_key_value is not None else None)
    value_states = project(self.v, past_key_value[1] if past_key_value is not None else None)

    if position_bias is None:
        # The bias (relative positions + mask) is returned and reused by every later layer, so it
        # is built exactly as T5 builds it, including its dtype and requires_grad quirks.
        if not self.has_relative_attention_bias:
            position_bias = torch.zeros(
                (1, self.n_heads, real_seq_length, key_length),
                device=query_states.device,
                dtype=torch.result_type(query_states, key_states),
            )
            if getattr(self, "gradient_checkpointing", False) and self.training:
                position_bias.requires_grad = True
        else:
            position_bias = self.compute_bias(real_seq_length, key_length, device=query_states.device)
        if past_key_value is not None:
            position_bias = position_bias[:, :, -hidden_states.size(1) :, :]
        if mask is not None:
            position_bias = position_bias + mask

    if self.pruned_heads:
        keep = torch.ones(position_bias.shape[1])
        keep[list(self.pruned_heads)] = 0
        position_bias_masked = position_bias[:, keep.bool()]
    else:
        position_bias_masked = position_bias

    if not (query_states.dtype == key_states.dtype == value_states.dtype):
        return original()
    attn_bias = position_bias_masked
    if attn_bias.dtype != query_states.dtype and not autocast_active(query_states.device.type):
        # T5 adds the bias *in place* into the scores, so the sum takes the scores' dtype.
        attn_bias = attn_bias.to(query_states.dtype)

    attn_output = F.scaled_dot_product_attention(
        query_states,
        key_states,
        value_states,
        attn_mask=attn_bias,
        dropout_p=float(self.dropout) if self.training else 0.0,
        scale=1.0,  # T5 folds the 1/sqrt(d) into its initialisation and never scales scores
    )
    attn_output = self.o(unshape(attn_output))

    present_key_value_state = (key_states, value_states) if (self.is_decoder and use_cache) else None
    return (attn_output, present_key_value_state, position_bias)


def sdpa_t5_attention(cls: type) -> type:
    """Subclass of a ``T5Attention``-shaped class whose forward uses SDPA.

    T5's relative position bias plus the extended mask is an additive bias, which SDPA takes as
    ``attn_mask`` (gradients reach ``relative_attention_bias`` through it); scores are not
    scaled, hence ``scale=1.0``. The returned ``position_bias`` is built exactly as T5 builds it,
    because later layers reuse it. Falls back to the original for ``output_attentions`` and
    ``layer_head_mask``. T5 computes its softmax in float32 even for half inputs; SDPA's fused
    CUDA kernels accumulate in float32 too, so half-precision results agree to half precision.
    """
    return _patched_subclass("t5", cls, _t5_forward, _T5_PARAMS)


# --------------------------------------------------------------------------------------------
# GPT-2


_GPT2_PARAMS = [
    "hidden_states",
    "layer_past",
    "attention_mask",
    "head_mask",
    "encoder_hidden_states",
    "encoder_attention_mask",
    "use_cache",
    "output_attentions",
]

# module -> (signature of its ``bias`` buffer, whether that buffer is the plain lower triangle)
_TRIL_CACHE: "weakref.WeakKeyDictionary[nn.Module, tuple]" = weakref.WeakKeyDictionary()


def _causal_buffer_is_tril(module: nn.Module, buf: torch.Tensor) -> bool:
    """Whether GPT-2's ``bias`` buffer is the standard causal mask (checked once per buffer).

    Only then may the mask be replaced by SDPA's ``is_causal`` (which lets CUDA pick the flash
    kernel); a modified buffer (local attention windows) is passed on as an explicit mask.
    """
    sig = tensor_signature(buf)
    entry = _TRIL_CACHE.get(module)
    if sig is not None and entry is not None and entry[0] == sig:
        return entry[1]
    result = (
        buf.dtype == torch.bool
        and buf.dim() == 4
        and buf.shape[0] == buf.shape[1] == 1
        and buf.shape[2] == buf.shape[3]
        and bool(torch.equal(buf[0, 0], torch.ones_like(buf[0, 0]).tril()))
    )
    if sig is not None:
        _TRIL_CACHE[module] = (sig, result)
    return result


# Last answer of _has_blind_rows: (weakref to the mask, its signature, causal key, result). One slot
# suffices because every layer of a model receives the same mask tensor in turn.
_BLIND_SLOT: List[Any] = [None]


def _has_blind_rows(causal_mask: torch.Tensor, mask: Optional[torch.Tensor], causal_key: tuple) -> bool:
    """Whether some query row sees no key that is both causally visible and not padding.

    Such rows (left-padded positions, fully padded sequences) are where GPT-2's ``torch.where``
    and SDPA's additive mask differ - not in value (both give a uniform distribution over the
    ``finfo.min`` entries) but in gradient: ``where`` blocks the gradient to the hidden scores,
    an additive mask does not. Their outputs are meaningless and masked out of any sensible
    loss, but "equal gradients" is the contract, so the caller falls back when they exist and
    gradients are wanted. Costs one device sync per mask tensor (not per layer) on CUDA.
    """
    tril, query_length, key_length, module = causal_key
    key = (query_length, key_length) if tril else (query_length, key_length, tensor_signature(module.bias))
    slot = _BLIND_SLOT[0]
    mask_sig = tensor_signature(mask) if mask is not None else None
    if mask is None:
        if tril:
            return False
    elif mask_sig is not None and slot is not None and slot[0]() is mask and slot[1:3] == (mask_sig, key):
        return slot[3]
    seen = causal_mask
    if mask is not None:
        # A visible key whose mask value is near finfo.min leaves the hidden keys (at exactly
        # finfo.min) with non-negligible probability, which is the divergent case.
        seen = seen & (mask > torch.finfo(mask.dtype).min / 2)
    result = bool((~seen.any(dim=-1)).any())
    if mask_sig is not None:
        _BLIND_SLOT[0] = (weakref.ref(mask), mask_sig, key, result)
    return result


def _gpt2_forward(
    self,
    hidden_states: torch.Tensor,
    layer_past: Optional[Tuple[torch.Tensor, torch.Tensor]] = None,
    attention_mask: Optional[torch.Tensor] = None,
    head_mask: Optional[torch.Tensor] = None,
    encoder_hidden_states: Optional[torch.Tensor] = None,
    encoder_attention_mask: Optional[torch.Tensor] = None,
    use_cache: Optional[bool] = False,
    output_attentions: Optional[bool] = False,
) -> Tuple[Any, ...]:
    def original() -> Tuple[Any, ...]:
        return self._adopter_sdpa_base.forward(
            self,
            hidden_states,
            layer_past=layer_past,
            attention_mask=attention_mask,
            head_mask=head_mask,
            encoder_hidden_states=encoder_hidden_states,
            encoder_attention_mask=encoder_attention_mask,
            use_cache=use_cache,
            output_attentions=output_attentions,
        )

    cross = encoder_hidden_states is not None
    mask = encoder_attention_mask if cross else attention_mask
    dropout_p = _attn_dropout_p(getattr(self, "attn_dropout", None))
    if (
        recording(hidden_states)
        or output_attentions
        or head_mask is not None
        or self.reorder_and_upcast_attn
        or dropout_p is None
        or not _mask_ok(mask)
        # Cases where the original raises: let it raise with its own message.
        or (cross and not hasattr(self, "q_attn"))
        or (not cross and self.is_cross_attention)
    ):
        return original()

    if cross:
        query = self.q_attn(hidden_states)
        key, value = self.c_attn(encoder_hidden_states).split(self.split_size, dim=2)
    else:
        query, key, value = self.c_attn(hidden_states).split(self.split_size, dim=2)
    query = self._split_heads(query, self.num_heads, self.head_dim)
    key = self._split_heads(key, self.num_heads, self.head_dim)
    value = self._split_heads(value, self.num_heads, self.head_dim)
    if layer_past is not None:
        past_key, past_value = layer_past
        key = torch.cat((past_key, key), dim=-2)
        value = torch.cat((past_value, value), dim=-2)
    present = (key, value) if use_cache is True else None

    if not _same_dtypes(query, key, value, mask):
        return original()

    scale = 1.0
    if self.scale_attn_weights:
        scale /= value.size(-1) ** 0.5
    if self.scale_attn_by_inverse_layer_idx:
        scale /= float(self.layer_idx + 1)

    is_causal = False
    attn_mask = mask
    if not self.is_cross_attention:
        query_length, key_length = query.size(-2), key.size(-2)
        if query_length > key_length or key_length > self.bias.size(-1):
            return original()  # the original's mask slice is malformed here; keep its behaviour
        tril = _causal_buffer_is_tril(self, self.bias)
        if tril and mask is None and query_length == key_length:
            is_causal = True
        elif tril and mask is None:
            # Bottom-right aligned triangle: every row keeps its diagonal, so no row is fully
            # masked and "-inf" (SDPA's boolean mask) equals GPT-2's "finfo.min" exactly.
            attn_mask = self.bias[:, :, key_length - query_length : key_length, :key_length]
        else:
            # Reproduce GPT-2 literally: masked scores become finfo.min, then the padding mask is
            # added. Keeping this additive form matters for rows whose visible keys are all
            # padding (left-padded batches): the eager softmax is uniform over the "finfo.min"
            # entries there, and so is SDPA's with this mask.
            causal_mask = self.bias[:, :, key_length - query_length : key_length, :key_length]
            if _blind_rows_differ(query, key, value, mask) and _has_blind_rows(
                causal_mask, mask, (tril, query_length, key_length, self)
            ):
                return original()
            zero = torch.zeros((), dtype=query.dtype, device=query.device)
            floor = torch.full((), torch.finfo(query.dtype).min, dtype=query.dtype, device=query.device)
            attn_mask = torch.where(causal_mask, zero, floor)
            if mask is not None:
                attn_mask = attn_mask + mask
            if attn_mask.dtype != query.dtype and not autocast_active(query.device.type):
                return original()
    elif (
        mask is not None
        and _blind_rows_differ(query, key, value, mask)
        and _hides_every_key_of_a_row(mask)
    ):
        return original()  # cross-attention to an encoder sequence that is all padding

    attn_output = F.scaled_dot_product_attention(
        query, key, value, attn_mask=attn_mask, dropout_p=dropout_p, is_causal=is_causal, scale=scale
    )
    attn_output = self._merge_heads(attn_output, self.num_heads, self.head_dim)
    attn_output = self.c_proj(attn_output)
    attn_output = self.resid_dropout(attn_output)
    return (attn_output, present)


def sdpa_gpt2_attention(cls: type) -> type:
    """Subclass of a ``GPT2Attention``-shaped class whose forward uses SDPA.

    Reproduces GPT-2's scaling (``scale_attn_weights``, ``scale_attn_by_inverse_layer_idx``) in
    SDPA's ``scale``, its causal ``bias`` buffer (as ``is_causal`` when the buffer is the plain
    triangle and no padding mask is given), padding masks, cross-attention and the
    ``layer_past``/``use_cache`` cache. Falls back to the original for ``output_attentions``,
    ``head_mask`` and ``reorder_and_upcast_attn`` (whose float32 upcast is the point of that
    option). Returns ``(attn_output, present)`` like the original.
    """
    return _patched_subclass("gpt2", cls, _gpt2_forward, _GPT2_PARAMS)


_FACTORIES.update(
    bert=sdpa_bert_self_attention, t5=sdpa_t5_attention, gpt2=sdpa_gpt2_attention
)
