"""Forms from corpus24's misses on newer Hugging Face files (transformers 4.45.2): an attention
returning a tuple whose first element is its output dropout's, unpacked whole before the
residual add and the LayerNorm.  Our own fixtures, each with near-misses."""

from __future__ import annotations

import textwrap

from corpus_forms import finding_at, found, rules

from adopter.synth import fix_text

# ---------- ADP005: the first element of a returned tuple is a functional dropout's output

TUPLE_FIRST_DROPOUT = textwrap.dedent("""\
    import torch
    from torch import nn
    from torch.nn import LayerNorm


    class Mixer(nn.Module):
        def __init__(self, d, p):
            super().__init__()
            self.proj = nn.Linear(d, d)
            self.out = nn.Linear(d, d)
            self.p = p

        def forward(self, hidden_states, mask=None):
            scores = self.proj(hidden_states).softmax(-1)
            mixed = self.out(scores * hidden_states)
            mixed = nn.functional.dropout(mixed, p=self.p, training=self.training)
            return mixed, scores, None


    class Block(nn.Module):
        def __init__(self, d):
            super().__init__()
            self.mix = Mixer(d, 0.1)
            self.norm = LayerNorm(d)

        def forward(self, h, mask):
            mixed, weights, _ = self.mix(hidden_states=h, mask=mask)
            h = self.norm(mixed + h)
            return h, weights
""")


def test_the_first_of_an_unpacked_tuple_is_the_output_dropout():
    assert finding_at(TUPLE_FIRST_DROPOUT, "ADP005", "h = self.norm(mixed + h)") is not None


def test_two_or_four_elements_and_the_residual_first():
    text = TUPLE_FIRST_DROPOUT.replace("return mixed, scores, None", "return mixed, scores").replace(
        "mixed, weights, _ = self.mix", "mixed, weights = self.mix").replace("mixed + h", "h + mixed")
    assert finding_at(text, "ADP005", "h = self.norm(h + mixed)") is not None
    text = TUPLE_FIRST_DROPOUT.replace("return mixed, scores, None", "return mixed, scores, None, None").replace(
        "mixed, weights, _ = self.mix", "mixed, weights, _, _ = self.mix")
    assert finding_at(text, "ADP005", "h = self.norm(mixed + h)") is not None


def test_the_finding_is_reported_not_fixed():
    # the dropout's input is inside the attention module: nothing to rewrite at the call
    assert fix_text(TUPLE_FIRST_DROPOUT, "model.py", rules("ADP005")).text == TUPLE_FIRST_DROPOUT


def test_another_element_of_the_tuple_is_not_the_dropout():
    # the weights, not the dropout's output, are added
    text = TUPLE_FIRST_DROPOUT.replace("h = self.norm(mixed + h)", "h = self.norm(weights + h)")
    assert found(text, "ADP005") == []


def test_the_dropout_not_first_in_the_tuple():
    text = TUPLE_FIRST_DROPOUT.replace("return mixed, scores, None", "return scores, mixed, None")
    assert found(text, "ADP005") == []


def test_a_starred_name_before_the_first():
    # `*rest, last = ...`: the first name is not the tuple's first element
    text = TUPLE_FIRST_DROPOUT.replace("mixed, weights, _ = self.mix", "*weights, mixed = self.mix")
    assert found(text, "ADP005") == []
    text = TUPLE_FIRST_DROPOUT.replace("mixed, weights, _ = self.mix", "(mixed, weights), _ = self.mix")
    assert found(text, "ADP005") == []


def test_the_dropout_output_changed_or_read_after_it():
    text = TUPLE_FIRST_DROPOUT.replace("        return mixed, scores, None",
                                       "        mixed = mixed * 2\n        return mixed, scores, None")
    assert found(text, "ADP005") == []
    text = TUPLE_FIRST_DROPOUT.replace("        return mixed, scores, None",
                                       "        scores = scores + mixed\n        return mixed, scores, None")
    assert found(text, "ADP005") == []


def test_an_element_built_from_the_dropout_output_is_not_it():
    text = TUPLE_FIRST_DROPOUT.replace("return mixed, scores, None", "return mixed * 2, scores, None")
    assert text != TUPLE_FIRST_DROPOUT
    assert found(text, "ADP005") == []


def test_without_training_or_with_two_ways_out():
    text = TUPLE_FIRST_DROPOUT.replace(", training=self.training)", ")")
    assert found(text, "ADP005") == []
    text = TUPLE_FIRST_DROPOUT.replace("        return mixed, scores, None",
                                       "        if mask is None:\n            return hidden_states, scores, mask\n"
                                       "        return mixed, scores, None")
    assert found(text, "ADP005") == []


def test_the_tuple_itself_added_is_not_read_as_the_dropout():
    text = TUPLE_FIRST_DROPOUT.replace("mixed, weights, _ = self.mix(hidden_states=h, mask=mask)",
                                       "mixed = self.mix(hidden_states=h, mask=mask)").replace(
        "return h, weights", "return h")
    assert found(text, "ADP005") == []


# ---------- ADP015: nll_loss of a log_softmax over the vocabulary (a cross-entropy), in a helper

NLL_OF_LOG_SOFTMAX = textwrap.dedent("""\
    import torch
    from torch import nn


    class NgramLM(nn.Module):
        def __init__(self, config):
            super().__init__()
            self.config = config
            self.embed = nn.Embedding(config.vocab_size, config.hidden_size)
            self.body = nn.Linear(config.hidden_size, config.hidden_size)
            self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)

        def forward(self, input_ids, labels=None):
            b, n = input_ids.shape
            streams = self.body(self.embed(input_ids)).view(b, 2, n, -1)
            logits = self.lm_head(streams)
            loss = None
            if labels is not None:
                loss = self._loss(logits, labels)
            return loss, logits

        def _loss(self, logits, labels, ignore_index=-100):
            targets = labels.new_zeros(2, labels.size(0), labels.size(1)).fill_(ignore_index)
            targets[0] = labels
            logits = logits.transpose(0, 1).contiguous()
            lprobs = nn.functional.log_softmax(logits.view(-1, logits.size(-1)), dim=-1, dtype=torch.float32)
            loss = nn.functional.nll_loss(lprobs, targets.view(-1), reduction="mean")
            if self.config.eps > 0.0:
                smooth = -lprobs.sum(dim=-1, keepdim=True)
                smooth = smooth[targets.ne(ignore_index).view(-1)].mean()
                loss = (1.0 - self.config.eps) * loss + self.config.eps / lprobs.size(-1) * smooth
            return loss
""")


def test_nll_of_log_softmax_over_the_vocabulary_after_swapping_leading_axes():
    assert finding_at(NLL_OF_LOG_SOFTMAX, "ADP015", "logits = self.lm_head(streams)") is not None


def test_nll_of_log_softmax_without_the_swap_and_other_spellings():
    text = NLL_OF_LOG_SOFTMAX.replace("        logits = logits.transpose(0, 1).contiguous()\n", "").replace(
        ".view(b, 2, n, -1)", "")
    assert finding_at(text, "ADP015", "logits = self.lm_head(streams)") is not None
    text2 = text.replace("nn.functional.log_softmax(logits.view(-1, logits.size(-1)), dim=-1, dtype=torch.float32)",
                         "logits.view(-1, logits.size(-1)).float().log_softmax(1)")
    assert text2 != text
    assert finding_at(text2, "ADP015", "logits = self.lm_head(streams)") is not None
    text3 = text.replace("loss = nn.functional.nll_loss(lprobs, targets.view(-1), reduction=\"mean\")",
                         "loss = nn.NLLLoss(ignore_index=ignore_index)(lprobs, targets.view(-1))")
    assert text3 != text
    assert finding_at(text3, "ADP015", "logits = self.lm_head(streams)") is not None


def test_log_softmax_over_another_axis_is_not_a_cross_entropy():
    text = NLL_OF_LOG_SOFTMAX.replace("dim=-1, dtype=torch.float32)", "dim=0, dtype=torch.float32)")
    assert text != NLL_OF_LOG_SOFTMAX
    assert found(text, "ADP015") == []


def test_nll_without_log_softmax_or_unflattened_logits():
    # nll_loss of the logits themselves is no cross-entropy
    text = NLL_OF_LOG_SOFTMAX.replace(
        "nn.functional.log_softmax(logits.view(-1, logits.size(-1)), dim=-1, dtype=torch.float32)",
        "logits.view(-1, logits.size(-1)).float()")
    assert found(text, "ADP015") == []
    # (b, n, V) logits: nll_loss reads axis 1 (the positions) as the classes
    text = NLL_OF_LOG_SOFTMAX.replace("        logits = logits.transpose(0, 1).contiguous()\n", "").replace(
        ".view(b, 2, n, -1)", "").replace("logits.view(-1, logits.size(-1)), dim=-1", "logits, dim=-1")
    assert found(text, "ADP015") == []


def test_swapped_leading_axes_of_a_head_output_of_unknown_rank():
    # a 2-D head output transposed would put the positions last: not read without the rank
    text = NLL_OF_LOG_SOFTMAX.replace(".view(b, 2, n, -1)", "")
    assert found(text, "ADP015") == []


def test_a_linear_to_a_label_count_is_no_vocabulary_head():
    text = NLL_OF_LOG_SOFTMAX.replace("nn.Linear(config.hidden_size, config.vocab_size, bias=False)",
                                      "nn.Linear(config.hidden_size, config.num_labels, bias=False)")
    assert found(text, "ADP015") == []
