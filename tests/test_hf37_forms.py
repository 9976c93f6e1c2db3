"""Forms from hf37's blind batch of transformers 5.23.0 model files (granite_speech's LM head:
a Linear to the text vocabulary in a file that embeds no tokens, its logits shifted --
``logits[..., :-1, :]``, the rows an attention mask keeps on one arm of an ``if`` -- into a
CrossEntropyLoss against ``labels[..., 1:]``).  Our own fixtures, each with near-misses."""

from __future__ import annotations

import textwrap

from corpus_forms import finding_at, found

# ---------- ADP015: a Linear's logits scored against the next position's labels (next-token
# prediction): the classes are the sequence's tokens, whatever the file embeds

SHIFTED = textwrap.dedent("""\
    import torch
    from torch import nn


    class SpeechLM(nn.Module):
        def __init__(self, config):
            super().__init__()
            self.encoder = AudioEncoder(config)
            self.language_model = build_decoder(config)
            self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)

        def forward(self, features, attention_mask=None, labels=None):
            hidden_states = self.language_model(self.encoder(features))
            logits = self.lm_head(hidden_states)  # head
            loss = None
            if labels is not None:
                SHIFT
                loss_fct = nn.CrossEntropyLoss()
                loss = loss_fct(shift_logits.view(-1, shift_logits.size(-1)), shift_labels.view(-1))
            return loss, logits
""")

PLAIN = """shift_logits = logits[..., :-1, :].contiguous()
            shift_labels = labels[..., 1:].contiguous()"""

MASKED = """if attention_mask is not None:
                keep = attention_mask[:, -(logits.shape[1] - 1):].to(logits.device)
                shift_logits = logits[..., :-1, :][keep != 0].contiguous()
                shift_labels = labels[..., 1:][keep.to(labels.device) != 0].contiguous()
            else:
                shift_logits = logits[..., :-1, :].contiguous()
                shift_labels = labels[..., 1:].contiguous()"""

UPCAST = """logits = logits.float()
            shift_logits = logits[..., :-1, :].contiguous()
            shift_labels = labels[..., 1:].contiguous()"""


def _lm(shift: str) -> str:
    return SHIFTED.replace("SHIFT", shift)


def test_linear_logits_against_the_next_positions_labels_are_an_lm_head():
    for shift in (PLAIN, MASKED, UPCAST):
        assert finding_at(_lm(shift), "ADP015", "# head") is not None, shift


def test_targets_that_are_not_the_next_position_are_no_lm_head():
    # the labels of the same positions (a tagger's), shifted the other way, by two, or unshifted:
    # nothing says the classes are the sequence's own tokens
    for labels in ("labels[..., :-1]", "labels[..., 2:]", "labels"):
        shift = PLAIN.replace("labels[..., 1:]", labels)
        assert not found(_lm(shift), "ADP015"), labels
    shift = MASKED.replace("labels[..., 1:][keep", "labels[..., :-1][keep").replace(
        "labels[..., 1:].contiguous()", "labels[..., :-1].contiguous()")
    assert not found(_lm(shift), "ADP015")


def test_a_shift_of_the_class_axis_is_no_position_shift():
    # logits[..., :-1] cuts the last axis (the classes), not the positions
    shift = PLAIN.replace("logits[..., :-1, :]", "logits[..., :-1]")
    assert not found(_lm(shift), "ADP015")



def test_a_head_beside_a_token_embedding_of_another_size_is_no_lm_head():
    # the class embeds its tokens itself with vocab_size entries: a Linear to num_labels scored
    # against the next position's labels is not over those tokens (a Linear to the embedding's
    # size is, typed by the embedding as before)
    embedded = _lm(PLAIN).replace(
        "        self.encoder = AudioEncoder(config)\n",
        "        self.encoder = AudioEncoder(config)\n        self.embed = nn.Embedding(config.vocab_size, config.hidden_size)\n")
    assert finding_at(embedded, "ADP015", "# head") is not None
    other = embedded.replace("nn.Linear(config.hidden_size, config.vocab_size", "nn.Linear(config.hidden_size, config.num_labels")
    assert not found(other, "ADP015")


def test_a_head_over_features_the_class_projects_is_no_lm_head():
    # the sequence model's input is the forward's features through a Linear of the class: its
    # positions are features, not tokens, and a next-position target says nothing of a vocabulary
    projected = _lm(PLAIN).replace(
        "        self.encoder = AudioEncoder(config)\n",
        "        self.encoder = nn.Linear(config.n_in, config.hidden_size)\n")
    assert not found(projected, "ADP015")
