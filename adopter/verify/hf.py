"""Tiny configurations for Hugging Face model files, derived from the model's own config class.

Nothing here imports transformers: config classes are recognised by their base class *name*
(``PretrainedConfig``), found in the loaded modeling module (the ``*Config`` it imports, the
``config_class`` of its ``PreTrainedModel`` subclasses, the annotation of ``__init__``'s
``config`` parameter).  A tiny config is the class's defaults with the sizes replaced by name:
``hidden_size``/``n_embd``/``d_model``/``dim`` by ``sizes.hidden``, head counts by
``sizes.heads``, layer counts by ``sizes.layers``, feed-forward widths by ``sizes.ffn``, and so
on; list-valued stage settings (ResNet ``hidden_sizes``/``depths``) keep their length, nested
configs (GroupViT's ``text_config``) are shrunk recursively, and every dropout-like probability
becomes 0.1 (so the eval check notices a kernel that drops in eval mode; the training check sets
them to 0).
"""

from __future__ import annotations

import dataclasses
import inspect
import typing
from types import SimpleNamespace
from types import ModuleType
from typing import Any

from .sizes import Sizes

HIDDEN = {"hidden_size", "n_embd", "d_model", "dim", "embed_dim", "projection_dim", "word_embed_proj_dim"}
HEADS = {"num_attention_heads", "n_head", "num_heads", "n_heads", "encoder_attention_heads",
         "decoder_attention_heads"}
LAYERS = {"num_hidden_layers", "n_layer", "num_layers", "n_layers", "num_decoder_layers", "encoder_layers",
          "decoder_layers"}
FFN = {"intermediate_size", "d_ff", "ffn_dim", "encoder_ffn_dim", "decoder_ffn_dim", "projection_intermediate_dim",
       "n_inner"}
POSITIONS = {"max_position_embeddings", "n_positions", "n_ctx", "max_seq_len", "max_sequence_length"}


def is_config_class(obj: Any) -> bool:
    return isinstance(obj, type) and any(c.__name__ == "PretrainedConfig" for c in obj.__mro__)


def is_config(obj: Any) -> bool:
    return is_config_class(type(obj))


def is_pretrained_model_class(obj: Any) -> bool:
    return isinstance(obj, type) and any(c.__name__ == "PreTrainedModel" for c in obj.__mro__)


def is_dropout_name(name: str) -> bool:
    lowered = name.lower()
    return "dropout" in lowered or "pdrop" in lowered or lowered.endswith(("drop_prob", "drop_rate", "drop_path_rate")) \
        or lowered in ("layerdrop", "drop_path", "attention_dropout", "activation_dropout")


def _annotation_configs(annotation: Any) -> list[type]:
    if is_config_class(annotation):
        return [annotation]
    return [a for a in typing.get_args(annotation) if is_config_class(a)]


def config_candidates(cls: type, module: ModuleType) -> list[type]:
    """Config classes that may build ``cls``, most likely first."""
    found: list[type] = []

    def add(item: Any) -> None:
        if is_config_class(item) and item.__name__ != "PretrainedConfig" and item not in found:
            found.append(item)

    try:
        params = inspect.signature(cls.__init__).parameters
    except (TypeError, ValueError):
        params = {}
    for name in ("config",):
        if name in params:
            for item in _annotation_configs(params[name].annotation):
                add(item)
    if is_pretrained_model_class(cls):
        add(getattr(cls, "config_class", None))
    for value in vars(module).values():
        if is_pretrained_model_class(value):
            add(getattr(value, "config_class", None))
    plain: list[type] = []
    composite: list[type] = []
    for value in vars(module).values():
        if is_config_class(value) and value.__name__ != "PretrainedConfig" and value not in found:
            (composite if _has_subconfigs(value) else plain).append(value)
    for item in plain + composite:
        add(item)
    return found


def _has_subconfigs(config_cls: type) -> bool:
    try:
        default = config_cls()
    except Exception:
        return False
    return any(is_config(v) for v in vars(default).values())


def tiny_config(config_cls: type, sizes: Sizes, overrides: dict | None = None):
    """An instance of ``config_cls`` at ``sizes``; ``overrides`` are set last (by attribute name)."""
    default = config_cls()
    kwargs = shrink_values(default, sizes)
    try:
        config = config_cls(**kwargs)
    except Exception:
        config = config_cls()
        for key, value in kwargs.items():
            try:
                setattr(config, key, value)
            except Exception:
                pass
    for key, value in (overrides or {}).items():
        setattr(config, key, value)
    return config


def shrink_values(default: Any, sizes: Sizes) -> dict[str, Any]:
    values = {k: v for k, v in vars(default).items() if not k.startswith("_")}
    out: dict[str, Any] = {}
    hidden, heads = sizes.hidden, sizes.heads
    for key, value in values.items():
        if isinstance(value, bool):
            continue
        if is_config(value):
            out[key] = config_dict(type(value), shrink_values(value, sizes))
        elif isinstance(value, int):
            if key in HIDDEN:
                out[key] = hidden
            elif key == "hidden_dim":
                out[key] = sizes.ffn if "dim" in values else hidden
            elif key in HEADS:
                out[key] = heads
            elif key in LAYERS:
                out[key] = sizes.layers
            elif key in FFN:
                out[key] = sizes.ffn
            elif key in ("d_kv", "head_dim", "attention_head_size", "kv_channels"):
                out[key] = hidden // heads
            elif key == "vocab_size":
                out[key] = sizes.vocab
            elif key in POSITIONS:
                out[key] = sizes.positions
            elif key == "embedding_size":
                out[key] = sizes.embed
            elif key == "image_size":
                out[key] = sizes.image
            elif key == "patch_size":
                out[key] = max(1, min(value, sizes.image // 4))
        elif isinstance(value, float) and is_dropout_name(key):
            out[key] = 0.1
        elif isinstance(value, list) and value and all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            if key == "depths":
                out[key] = [1] * len(value)
            elif key == "hidden_sizes":
                out[key] = [sizes.channels * 2 ** i for i in range(len(value))]
        elif key == "attention_types" and isinstance(value, list):
            # GPT-Neo: [[["global", "local"], n]] must expand to exactly num_layers entries.
            try:
                kinds = list(value[0][0])
                out[key] = [[kinds, max(1, sizes.layers // len(kinds))]]
            except (IndexError, TypeError, ZeroDivisionError):
                pass
    if "depths" in out:  # stage-based encoders (GroupViT) expect num_hidden_layers == sum(depths)
        for key in LAYERS & set(out):
            out[key] = sum(out["depths"])
    return out


def config_dict(config_cls: type, values: dict) -> dict:
    default = config_cls()
    try:
        return config_cls(**values).to_dict()
    except Exception:
        data = default.to_dict()
        data.update(values)
        return data


def config_bool_flags(config: Any) -> list[str]:
    return [k for k, v in vars(config).items() if isinstance(v, bool) and not k.startswith("_")]


def zero_dropout_config(config: Any, seen: set[int] | None = None) -> None:
    """Set every dropout-like probability of ``config`` (and its sub-configs) to 0."""
    seen = seen if seen is not None else set()
    if id(config) in seen:
        return
    seen.add(id(config))
    if isinstance(config, dict):  # verify's own attribute bags
        for key, value in list(config.items()):
            if isinstance(value, dict):
                zero_dropout_config(value, seen)
            elif isinstance(value, float) and is_dropout_name(str(key)):
                config[key] = 0.0
        return
    try:
        items = list(vars(config).items())
    except TypeError:
        return
    for key, value in items:
        if key.startswith("_"):
            continue
        if is_config(value) or isinstance(value, (dict, SimpleNamespace)) or (
                dataclasses.is_dataclass(value) and not isinstance(value, type)):
            zero_dropout_config(value, seen)
        elif isinstance(value, float) and not isinstance(value, bool) and is_dropout_name(key):
            try:
                setattr(config, key, 0.0)
            except Exception:
                pass


def describe(config: Any, sizes: Sizes) -> str:
    """A short description of the tiny config for reports."""
    values = shrink_values(type(config)(), sizes) if is_config(config) else {}
    keys = [k for k in values if not is_config(getattr(config, k, None)) and not isinstance(values[k], dict)]
    shown = ", ".join(f"{k}={getattr(config, k, values[k])!r}" for k in keys[:8])
    return f"{type(config).__name__}({shown})"
