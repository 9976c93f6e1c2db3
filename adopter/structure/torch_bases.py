"""What a torch layer class gives the same-file classes that subclass it.

``class Layer(nn.TransformerEncoderLayer)`` whose ``forward`` calls ``self.norm1``,
``self.dropout1`` and the inherited ``self._ff_block(x)`` uses members that torch's
constructor built: nothing in the file says what they are.  For the torch classes that user
code subclasses to reuse those members, this module describes them as code the engine reads
like a same-file base class: the ``__init__`` binding each member (to torch's layer classes,
with the constructor's documented parameters and defaults), and the helper methods subclasses
call, written as the computation they document (``_ff_block``: linear1, activation, dropout,
linear2, dropout2).  Only what the engine can be sure of is typed: ``self.activation`` is
whatever the caller passed (a string or any callable, ReLU by default), so it stays untyped.

The descriptions are ours, written from the classes' documented behaviour; nothing here
imports torch.  Members a subclass binds itself replace them, and its own methods win over
these.  Inherited members are built by torch's constructor, not in the file: findings that
involve them are reported, never fixed (the ``unlike`` reason below), and the nodes of an
inherited method take the position of the call that runs it (see graph.FlowBuilder).
"""

from __future__ import annotations

import ast
import copy
import functools

from . import library_layers
from .names import collect_names
from .treewalk import ast_walk

# An attribute on FunctionDef nodes of inherited methods: the flow builder places their nodes
# at the call that runs them (the file has no text for them).
INHERITED = "_adopter_inherited_from"

_TRANSFORMER_IMPORTS = "import torch\nfrom torch import nn\n"

_ENCODER_LAYER = _TRANSFORMER_IMPORTS + '''
class TransformerEncoderLayer(nn.Module):
    def __init__(self, d_model, nhead, dim_feedforward=2048, dropout=0.1, activation=None,
                 layer_norm_eps=1e-05, batch_first=False, norm_first=False, bias=True, device=None, dtype=None):
        self.self_attn = nn.MultiheadAttention(d_model, nhead, dropout=dropout, bias=bias, batch_first=batch_first)
        self.linear1 = nn.Linear(d_model, dim_feedforward, bias=bias)
        self.dropout = nn.Dropout(dropout)
        self.linear2 = nn.Linear(dim_feedforward, d_model, bias=bias)
        self.norm_first = norm_first
        self.norm1 = nn.LayerNorm(d_model, eps=layer_norm_eps, bias=bias)
        self.norm2 = nn.LayerNorm(d_model, eps=layer_norm_eps, bias=bias)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)
        self.activation = activation

    def _sa_block(self, x, attn_mask, key_padding_mask, is_causal=False):
        out = self.self_attn(x, x, x, attn_mask=attn_mask, key_padding_mask=key_padding_mask,
                             need_weights=False, is_causal=is_causal)[0]
        return self.dropout1(out)

    def _ff_block(self, x):
        hidden = self.activation(self.linear1(x))
        out = self.linear2(self.dropout(hidden))
        return self.dropout2(out)
'''

_DECODER_LAYER = _TRANSFORMER_IMPORTS + '''
class TransformerDecoderLayer(nn.Module):
    def __init__(self, d_model, nhead, dim_feedforward=2048, dropout=0.1, activation=None,
                 layer_norm_eps=1e-05, batch_first=False, norm_first=False, bias=True, device=None, dtype=None):
        self.self_attn = nn.MultiheadAttention(d_model, nhead, dropout=dropout, bias=bias, batch_first=batch_first)
        self.multihead_attn = nn.MultiheadAttention(d_model, nhead, dropout=dropout, bias=bias,
                                                    batch_first=batch_first)
        self.linear1 = nn.Linear(d_model, dim_feedforward, bias=bias)
        self.dropout = nn.Dropout(dropout)
        self.linear2 = nn.Linear(dim_feedforward, d_model, bias=bias)
        self.norm_first = norm_first
        self.norm1 = nn.LayerNorm(d_model, eps=layer_norm_eps, bias=bias)
        self.norm2 = nn.LayerNorm(d_model, eps=layer_norm_eps, bias=bias)
        self.norm3 = nn.LayerNorm(d_model, eps=layer_norm_eps, bias=bias)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)
        self.dropout3 = nn.Dropout(dropout)
        self.activation = activation

    def _sa_block(self, x, attn_mask, key_padding_mask, is_causal=False):
        out = self.self_attn(x, x, x, attn_mask=attn_mask, key_padding_mask=key_padding_mask,
                             is_causal=is_causal, need_weights=False)[0]
        return self.dropout1(out)

    def _mha_block(self, x, mem, attn_mask, key_padding_mask, is_causal=False):
        out = self.multihead_attn(x, mem, mem, attn_mask=attn_mask, key_padding_mask=key_padding_mask,
                                  is_causal=is_causal, need_weights=False)[0]
        return self.dropout2(out)

    def _ff_block(self, x):
        hidden = self.activation(self.linear1(x))
        out = self.linear2(self.dropout(hidden))
        return self.dropout3(out)
'''

BASES: dict[str, str] = {
    "torch.nn.TransformerEncoderLayer": _ENCODER_LAYER,
    "torch.nn.modules.transformer.TransformerEncoderLayer": _ENCODER_LAYER,
    "torch.nn.TransformerDecoderLayer": _DECODER_LAYER,
    "torch.nn.modules.transformer.TransformerDecoderLayer": _DECODER_LAYER,
}


def described(fqn: str) -> bool:
    """Is ``fqn`` a class described here or by :mod:`library_layers` (torchvision's ResNet)?"""
    return fqn in BASES or library_layers.class_source(fqn) is not None


@functools.lru_cache(maxsize=None)
def _described(fqn: str):
    """(names, class node) of the description of class ``fqn``, parsed once."""
    tree = ast.parse(BASES.get(fqn) or library_layers.class_source(fqn))
    names = collect_names(tree)
    name = fqn.rsplit(".", 1)[-1]
    cls = next(s for s in tree.body if isinstance(s, ast.ClassDef) and s.name == name)
    return names, cls


def inherited(fqn: str, at: ast.expr):
    """(names, class node) describing torch class ``fqn`` for a subclass whose base expression
    is ``at``: a fresh copy whose every position is ``at``'s (the file has no text for it), its
    methods marked :data:`INHERITED`.  None when ``fqn`` is not described."""
    if not described(fqn):
        return None
    names, cls = _described(fqn)
    cls = copy.deepcopy(cls)
    for node in ast_walk(cls):
        if "lineno" in node._attributes:
            node.lineno, node.col_offset = at.lineno, at.col_offset
            node.end_lineno, node.end_col_offset = at.end_lineno, at.end_col_offset
        if isinstance(node, ast.FunctionDef):
            setattr(node, INHERITED, fqn)
    return names, cls
