"""The dev corpus's misses misses41 did not reach, read by their computation (session 33, helper
misses42).  The fixtures are ours.

- ADP015: a same-file head module whose ``forward`` returns linear maps of its input by a
  weight it holds, one per position, stacked (``torch.stack([F.linear(h[:, i, :], w[i].T) for i
  in range(n)], dim=1)``, ``w`` its ``nn.Parameter`` indexed: CSM's codebooks head), called
  with more arguments than the hidden states, its logits into the loss API with
  ``vocab_size=``: a Linear-ending head's logits over the vocabulary the loss is told.
  Near-misses: stacked on the last axis (the width no longer last), the weight a forward
  argument rather than the module's own Parameter, the element a softmax of the product, and
  the logits returned without a loss.
- ADP015: the rows of a vocabulary head's logits kept by a mask (``logits[mask]``,
  ``logits[labels != pad]``: a mask of the leading axes, or indices of the first, keeps the last
  axis whole) straight into ``F.cross_entropy``, the masked-LM spelling of research repositories.
  Near-misses: a Linear of another width (a classifier over a number of classes the file embeds
  nothing with) read the same way, and the mask selecting the head's input rather than a
  loss.
"""

from __future__ import annotations

import textwrap

from corpus_forms import found, line_of

STACKED_HEAD = textwrap.dedent('''
    import torch
    from torch import nn


    class PositionHeads(nn.Module):
        def __init__(self, hidden_size, num_positions, vocab_size):
            super().__init__()
            self.num_positions = num_positions
            self.weight = nn.Parameter(torch.empty(num_positions, hidden_size, vocab_size))

        def forward(self, hidden_states, positions):
            chosen = self.weight[positions - 1]
            hidden_states = [
                nn.functional.linear(hidden_states[:, p, :], chosen[p].T)
                for p in range(chosen.shape[0])
            ]
            hidden_states = torch.stack(hidden_states, dim=1)
            return hidden_states


    class DepthDecoder(nn.Module):
        def __init__(self, config, backbone):
            super().__init__()
            self.config = config
            self.model = backbone
            self.heads = PositionHeads(config.hidden_size, config.num_positions, config.vocab_size)

        def forward(self, input_ids, positions, labels=None):
            hidden_states = self.model(input_ids)[0]
            logits = self.heads(hidden_states[:, 1:, :], positions[1:])
            logits = logits.contiguous()
            loss = None
            if labels is not None:
                shift_labels = labels[..., 1:].contiguous()
                loss = self.loss_function(
                    logits=logits, labels=None, vocab_size=self.config.vocab_size, shift_labels=shift_labels
                )
            return loss, logits
''')

HEAD_CALL = "logits = self.heads(hidden_states"


def _head_found(code: str) -> bool:
    line = line_of(code, HEAD_CALL)
    return any(f.line <= line <= f.end_line for f in found(code, "ADP015"))


def test_stacked_per_position_linear_maps_by_a_held_weight_are_a_vocabulary_head():
    assert _head_found(STACKED_HEAD)


def test_the_stack_on_axis_0_and_the_head_called_with_the_hidden_states_alone():
    code = STACKED_HEAD.replace("torch.stack(hidden_states, dim=1)", "torch.stack(hidden_states)").replace(
        "def forward(self, hidden_states, positions):", "def forward(self, hidden_states, positions=None):").replace(
        "self.heads(hidden_states[:, 1:, :], positions[1:])", "self.heads(hidden_states[:, 1:, :])")
    assert "torch.stack(hidden_states)" in code and "self.heads(hidden_states[:, 1:, :])" in code
    assert _head_found(code)


def test_stacked_on_the_last_axis_the_width_is_no_longer_last():
    # Near miss: the stack's new axis is the last one, the classes are not
    code = STACKED_HEAD.replace("torch.stack(hidden_states, dim=1)", "torch.stack(hidden_states, dim=-1)")
    assert "dim=-1" in code
    assert not _head_found(code)


def test_a_weight_given_as_an_argument_is_not_the_heads_own():
    # Near miss: the matrix comes from the caller (nothing says what it is)
    code = STACKED_HEAD.replace("chosen = self.weight[positions - 1]", "chosen = positions")
    assert "chosen = positions" in code
    assert not _head_found(code)


def test_a_softmax_of_each_product_is_no_linear_map():
    code = STACKED_HEAD.replace(
        "nn.functional.linear(hidden_states[:, p, :], chosen[p].T)",
        "nn.functional.softmax(hidden_states[:, p, :] @ chosen[p], dim=-1)")
    assert "softmax" in code
    assert not _head_found(code)


def test_logits_returned_without_a_loss_are_no_site():
    code = STACKED_HEAD.replace("loss = self.loss_function(", "loss = dict(")
    assert "loss_function" not in code
    assert not _head_found(code)


MASKED_LM = textwrap.dedent('''
    import torch
    from torch import nn
    import torch.nn.functional as F


    class MaskedModel(nn.Module):
        def __init__(self, num_tokens, dim):
            super().__init__()
            self.token_emb = nn.Embedding(num_tokens, dim)
            self.net = nn.TransformerEncoder(nn.TransformerEncoderLayer(dim, 8, batch_first=True), 2)
            self.to_logits = nn.Linear(dim, num_tokens)

        def forward(self, seq, mask, labels):
            h = self.net(self.token_emb(seq))
            logits = self.to_logits(h)
            return F.cross_entropy(logits[mask], labels[mask])
''')

MASKED_CALL = "logits = self.to_logits(h)"


def _masked_found(code: str) -> bool:
    line = line_of(code, MASKED_CALL)
    return any(f.line <= line <= f.end_line for f in found(code, "ADP015"))


def test_a_vocabulary_heads_logits_kept_by_a_mask_into_cross_entropy():
    assert _masked_found(MASKED_LM)


def test_the_mask_written_as_a_comparison():
    code = MASKED_LM.replace("F.cross_entropy(logits[mask], labels[mask])",
                             "F.cross_entropy(logits[labels != 0], labels[labels != 0])")
    assert "logits[labels != 0]" in code
    assert _masked_found(code)


def test_a_classifier_of_another_width_kept_by_a_mask_is_no_vocabulary_head():
    # Near miss: the Linear's width is a number of classes, not the embedded tokens'
    code = MASKED_LM.replace("def __init__(self, num_tokens, dim):", "def __init__(self, num_tokens, dim, classes):") \
        .replace("nn.Linear(dim, num_tokens)", "nn.Linear(dim, classes)")
    assert "nn.Linear(dim, classes)" in code
    assert not _masked_found(code)


def test_a_mask_of_the_heads_input_without_a_loss_is_no_site():
    code = MASKED_LM.replace("return F.cross_entropy(logits[mask], labels[mask])", "return logits[mask]")
    assert "cross_entropy" not in code
    assert not _masked_found(code)
