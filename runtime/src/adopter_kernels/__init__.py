"""Adopter's first-party kernels: the call targets of the rewrites Adopter proposes.

Patched model code calls these functions with the model's *existing* submodules (``self.dropout``,
``self.LayerNorm``, ...), so a patch adds no parameters and pretrained checkpoints keep loading.
Each function computes what the original expression computes - in training and eval mode,
forward and backward - and takes a faster route only where that is provably the same
computation; everything else falls through to the original modules.

Importing this package imports torch and nothing heavier: ``torch.compile`` is only invoked on
the first call with CUDA tensors (never on CPU, where it measured slower for these fusions), and
transformers is never imported - its classes are recognised by name and shape.
"""

from .activations import bias_gelu, linear_gelu
from .attention import sdpa_bert_self_attention, sdpa_gpt2_attention, sdpa_t5_attention
from .folding import FoldingSequential, conv_bn, linear_bn
from .liger import liger_fused_linear_cross_entropy, liger_rope, liger_silu_mul, liger_swiglu
from .normalization import dropout_add_layer_norm, softmax
from .projections import fused_qkv

__all__ = [
    "softmax",
    "dropout_add_layer_norm",
    "bias_gelu",
    "linear_gelu",
    "conv_bn",
    "linear_bn",
    "FoldingSequential",
    "fused_qkv",
    "sdpa_bert_self_attention",
    "sdpa_t5_attention",
    "sdpa_gpt2_attention",
    "liger_swiglu",
    "liger_silu_mul",
    "liger_rope",
    "liger_fused_linear_cross_entropy",
]
