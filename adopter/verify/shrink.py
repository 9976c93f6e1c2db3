"""Small sizes for research-style constructor arguments and config fields, by what they mean.

A class is verified at a tiny size so the checks run in seconds on a CPU.  Hugging Face configs
are shrunk in ``hf.py``; this module does the same for plain constructor arguments and for the
fields of research configs (dataclasses, attribute bags), recognising a value by its *name*
(``dim``, ``n_embd``, ``heads``, ``depth``, ``block_size``, ``patch_size``, ...) and shrinking
only values larger than the tiny size.  Then the constraints such models state in asserts are
restored: heads divide the width (and key/value heads divide heads), a per-head width is the
width over the heads, a patch divides the image, and lists of stage widths keep their ratios.

``kind_of(name)`` says what a name means; ``shrink(values, sizes)`` returns the shrunk mapping.
Nothing here imports torch.
"""

from __future__ import annotations

import math
from typing import Any

from .sizes import Sizes

HIDDEN = {"hidden", "hidden_size", "hidden_dim", "d_model", "dim", "embed_dim", "embedding_dim", "n_embd", "n_embed",
          "in_dim", "out_dim", "model_dim", "input_dim", "output_dim", "d_hidden", "n_state", "emb_dim", "d_embed",
          "latent_dim", "token_dim", "emb_size", "embed_size", "embedding_size", "width", "features", "num_features",
          "in_features", "out_features", "hid_dim", "n_hidden", "nhid", "ninp", "d_emb", "embed", "d"}
HEADS = {"num_heads", "n_heads", "heads", "num_attention_heads", "n_head", "nhead", "num_head", "attention_heads",
         "n_heads_q", "num_q_heads", "head_num", "nheads"}
KV_HEADS = {"num_kv_heads", "n_kv_heads", "n_kv_head", "num_key_value_heads", "kv_heads", "n_kv", "num_kv"}
HEAD_DIM = {"dim_head", "head_dim", "d_head", "d_k", "d_v", "head_size", "attention_head_size", "kv_channels",
            "d_kv", "dim_per_head", "headdim", "head_dim_qk"}
FFN = {"intermediate_size", "ffn_dim", "mlp_dim", "hidden_features", "d_ff", "inner_dim", "d_inner", "ff_dim",
       "dim_feedforward", "intermediate_dim", "n_inner", "ffn_hidden_size", "mlp_hidden_dim", "ff_hidden_dim",
       "hidden_ff", "d_mlp", "mlp_size", "ffn_size", "dim_ff", "n_mlp", "ff", "ffn", "d_ffn", "ff_size"}
LAYERS = {"num_layers", "n_layers", "depth", "n_layer", "num_hidden_layers", "layers", "num_blocks", "n_blocks",
          "num_encoder_layers", "num_decoder_layers", "enc_layers", "dec_layers", "nlayers", "n_block", "blocks",
          "num_transformer_layers", "encoder_layers", "decoder_layers", "depths", "num_stages", "levels",
          "num_levels", "n_levels", "stages", "n_stages"}
POSITIONS = {"max_len", "max_length", "seq_len", "block_size", "n_ctx", "max_position_embeddings", "max_seq_len",
             "context_length", "n_positions", "max_seq_length", "seq_length", "num_positions", "context_size",
             "max_positions", "ctx_len", "sequence_length", "max_sequence_length", "num_patches"}
VOCAB = {"vocab_size", "num_embeddings", "n_vocab", "num_tokens", "vocab", "n_tokens", "ntoken", "n_token",
         "ntokens", "vocab_len", "num_vocab", "codebook_size"}
CLASSES = {"num_classes", "num_labels", "n_classes", "out_classes", "num_outputs", "n_outputs", "nclasses",
           "num_class", "n_class", "classes", "nb_classes"}
IMAGE = {"image_size", "img_size", "resolution", "image_res", "img_res", "input_resolution", "image_height",
         "image_width", "img_h", "img_w", "input_size", "image_shape"}
PATCH = {"patch_size", "patch", "patch_height", "patch_width", "patch_len", "frame_patch_size"}
CHANNELS = {"in_planes", "planes", "inplanes", "out_planes", "outplanes", "in_channels", "out_channels",
            "in_chans", "out_chans", "in_ch", "out_ch", "c_in", "c_out", "filters", "num_filters",
            "stem_width", "base_channels", "hidden_channels", "mid_channels", "ch", "channels", "n_channels",
            "num_channels", "input_channels", "in_chs", "out_chs", "chs", "inp", "oup", "in_c", "out_c", "nf",
            "ngf", "ndf", "base_dim", "n_mels", "n_feats"}
STAGE_WIDTHS = {"dims", "embed_dims", "hidden_sizes", "widths", "channels_list", "stage_channels", "num_channels",
                "out_channels", "channels", "planes", "dim_mults", "embed_dim", "hidden_dims", "filters", "chs",
                "block_channels", "stem_channels", "dim"}
STAGE_HEADS = {"heads", "num_heads", "n_heads", "head_counts"}
STAGE_DEPTHS = {"depths", "num_blocks", "layers", "blocks", "depth", "stage_blocks", "block_counts", "n_blocks",
                "num_layers", "repeats", "layer_counts", "stage_depths", "levels", "num_levels"}


_KINDS = (("head_dim", HEAD_DIM), ("kv_heads", KV_HEADS), ("heads", HEADS), ("ffn", FFN), ("layers", LAYERS),
          ("positions", POSITIONS), ("vocab", VOCAB), ("classes", CLASSES), ("image", IMAGE), ("patch", PATCH),
          ("channels", CHANNELS), ("hidden", HIDDEN))


def kind_of(name: str) -> str | None:
    """What an argument or field named ``name`` sizes (``hidden``, ``heads``, ...), or None."""
    lowered = name.lower().lstrip("_")
    for kind, names in _KINDS:
        if lowered in names:
            return kind
    kind = _kind_by_pattern(lowered)
    if kind is not None:
        return kind
    # a known name behind a prefix the module gives its fields (``gpt_n_head``, ``gpt_n_layer``:
    # the GPT part of a config): the longest known tail
    parts = lowered.split("_")
    for start in range(1, len(parts)):
        tail = "_".join(parts[start:])
        for kind, names in _KINDS:
            if tail in names:
                return kind
    return None


def _kind_by_pattern(lowered: str) -> str | None:
    if lowered.endswith(("_layers", "_layer")) and lowered.startswith(("n_", "num_")):
        return "layers"
    if lowered.endswith("_ctx"):
        return "positions"
    if lowered.endswith(("_heads", "_head")) and lowered.startswith(("n_", "num_")):
        return "heads"
    if lowered.endswith(("_channels", "_planes", "_chans")):
        return "channels"
    if lowered.endswith(("_dim", "_size", "_features", "_width")) and not lowered.startswith(("kernel", "window",
                                                                                                "pool", "batch")):
        return "hidden"
    return None


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def target(kind: str, sizes: Sizes) -> int | None:
    return {"hidden": sizes.hidden, "heads": sizes.heads, "kv_heads": sizes.heads,
            "head_dim": max(1, sizes.hidden // sizes.heads), "ffn": sizes.ffn, "layers": sizes.layers,
            "positions": sizes.positions, "vocab": sizes.vocab, "classes": 10, "image": sizes.image,
            "channels": sizes.channels}.get(kind)


def _scale_list(values: list[int], high: int) -> list[int]:
    """Divide every entry by one power of two so the largest is at most ``high``, keeping
    ratios and divisibility (every entry stays a whole multiple of the same factor)."""
    factor = 1
    while max(values) // factor > high and all(v % (factor * 2) == 0 for v in values) \
            and min(values) // (factor * 2) >= 2:
        factor *= 2
    return [v // factor for v in values]


def shrink_value(name: str, value: Any, sizes: Sizes) -> Any:
    """``value`` at the tiny size, judged by ``name`` alone (constraints come later)."""
    kind = kind_of(name)
    lowered = name.lower()
    if isinstance(value, float) and _is_dropout(lowered):
        return 0.1 if value == 0.0 or 0.0 < value < 1.0 else value
    if isinstance(value, (list, tuple)) and value and all(is_int(v) for v in value):
        out: list[int] | None = None
        if lowered in STAGE_DEPTHS:
            out = [min(v, 1) if v > 0 else v for v in value]
        elif lowered in STAGE_HEADS:
            out = [min(v, 2) if v > 0 else v for v in value]
        elif lowered in STAGE_WIDTHS or kind in ("hidden", "channels"):
            out = _scale_list(list(value), 2 * sizes.hidden)
        elif kind == "image" or kind == "patch":
            high = sizes.image if kind == "image" else max(1, sizes.image // 4)
            out = [min(v, high) for v in value]
        if out is None:
            return value
        return type(value)(out) if isinstance(value, tuple) else out
    if not is_int(value) or kind is None:
        return value
    goal = target(kind, sizes)
    if kind == "patch":
        goal = max(1, sizes.image // 4)
    if goal is not None and kind in ("vocab", "classes") and value <= 0:
        return goal  # "set later" placeholders such as LLaMA's vocab_size = -1
    if goal is None or value <= goal:
        return value
    return goal


def _is_dropout(lowered: str) -> bool:
    return "dropout" in lowered or "pdrop" in lowered or lowered.endswith(("drop_prob", "drop_rate", "_drop")) \
        or lowered in ("drop", "p_drop", "attn_drop", "proj_drop", "drop_path", "layerdrop", "emb_dropout")


def shrink(values: dict[str, Any], sizes: Sizes) -> dict[str, Any]:
    """Shrink a mapping of argument (or field) names to values, then restore the constraints
    between them: heads divide the width, head width = width / heads, kv heads divide heads,
    the patch divides the image, positions cover the sequence."""
    out = {k: shrink_value(k, v, sizes) for k, v in values.items()}
    kinds = {k: kind_of(k) for k in out}

    def first(kind: str) -> str | None:
        return next((k for k, v in kinds.items() if v == kind and is_int(out[k])), None)

    hidden, heads, head_dim = first("hidden"), first("heads"), first("head_dim")
    if heads and out[heads] <= 0:
        heads = None
    if hidden and heads:
        width, count = out[hidden], out[heads]
        if width % count:
            out[heads] = max(d for d in range(1, min(count, width) + 1) if width % d == 0)
    if head_dim and heads and hidden and kinds[head_dim] == "head_dim":
        out[head_dim] = max(1, out[hidden] // out[heads])
    kv = first("kv_heads")
    if kv and heads and out[kv] > 0 and out[heads] % out[kv]:
        out[kv] = math.gcd(out[kv], out[heads]) or 1
    image, patch = first("image"), first("patch")
    if image and patch and out[patch] > 0 and out[image] % out[patch]:
        out[patch] = max(d for d in range(1, out[patch] + 1) if out[image] % d == 0)
    return out
