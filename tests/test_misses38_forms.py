"""Forms of the dev corpus's ADP015 misses (session 31, helper misses38), read by their
computation.  The fixtures are ours.

- A causal shift over two axes (``shift_logits = logits[:, :-1].contiguous()``, ``shift_labels
  = labels[:, 1:].contiguous()``, ``F.cross_entropy(shift_logits.view(-1,
  shift_logits.shape[-1]), shift_labels.view(-1))``, nano-deepseek-v4).  ``logits[:, :-1]``
  alone does not say the logits have a position axis (of 2-D logits it would cut the
  classes); the target's complementary shift of the same axes does: the next-token target
  puts the positions on axis 1, so the slice keeps the vocabulary axis whole.
Float32 upcasts before or after the slice are read too.
Near-misses: a target shifted the same way (``labels[:, :-1]``), a target not shifted, a
target shifted by another step (``labels[:, 2:]``), a shift over the first axis only of the
logits against a target's second.

- Logits flattened by ``flatten(0, -2)`` (``flatten(end_dim=-2)``, torchtitan's loss): every
  axis but the last merged, ``reshape(-1, x.size(-1))`` whatever the rank.
Near-misses: ``flatten(0, 1)`` (of 2-D logits it merges the classes into the rows),
``flatten()``, ``flatten(1)``, ``flatten(1, -2)``.
"""

from __future__ import annotations

import textwrap

from corpus_forms import found

SHIFTED = textwrap.dedent('''
    import torch.nn.functional as F
    from torch import nn


    class LM(nn.Module):
        def __init__(self, config):
            super().__init__()
            self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size)
            self.blocks = nn.ModuleList()
            self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)

        def forward(self, input_ids, labels=None):
            hidden_states = self.embed_tokens(input_ids)
            for block in self.blocks:
                hidden_states = block(hidden_states)
            logits = self.lm_head(hidden_states)
            loss = None
            if labels is not None:
                shift_logits = logits[:, :-1].contiguous()
                shift_labels = labels[:, 1:].contiguous()
                loss = F.cross_entropy(
                    shift_logits.view(-1, shift_logits.shape[-1]),
                    shift_labels.view(-1),
                    ignore_index=-100,
                )
            return logits, loss
''')


def _head_line(code: str) -> int:
    return next(n for n, text in enumerate(code.splitlines(), 1) if "logits = self.lm_head(" in text)


def test_a_shift_over_two_axes_with_the_complementary_target_is_read():
    assert [f.line for f in found(SHIFTED, "ADP015")] == [_head_line(SHIFTED)]
    plain = SHIFTED.replace("logits[:, :-1].contiguous()", "logits[:, :-1]") \
        .replace("labels[:, 1:].contiguous()", "labels[:, 1:]").replace(".shape[-1]", ".size(-1)")
    assert [f.line for f in found(plain, "ADP015")] == [_head_line(plain)]
    first_axis = SHIFTED.replace("logits[:, :-1]", "logits[:-1]").replace("labels[:, 1:]", "labels[1:]")
    assert [f.line for f in found(first_axis, "ADP015")] == [_head_line(first_axis)]


def test_a_shift_over_two_axes_without_the_complementary_target_is_not_read():
    for target in ("labels[:, :-1]", "labels", "labels[:, 2:]", "labels[1:]", "labels[:, 1:-1]"):
        code = SHIFTED.replace("labels[:, 1:]", target)
        assert found(code, "ADP015") == [], target
    # a vocabulary of the head's width is not shown (a plain Linear): nothing said of the classes
    no_embedding = SHIFTED.replace("self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size)",
                                   "self.embed_tokens = nn.Linear(config.n_in, config.hidden_size)")
    assert found(no_embedding, "ADP015") == []


def test_an_upcast_before_or_after_the_two_axis_shift_is_read():
    before = SHIFTED.replace("logits = self.lm_head(hidden_states)", "logits = self.lm_head(hidden_states).float()")
    assert [f.line for f in found(before, "ADP015")] == [_head_line(before)]
    after = SHIFTED.replace("logits[:, :-1].contiguous()", "logits[:, :-1].float()")
    assert [f.line for f in found(after, "ADP015")] == [_head_line(after)]
    assert found(after.replace("labels[:, 1:]", "labels[:, :-1]"), "ADP015") == []


FLATTENED = textwrap.dedent('''
    import torch.nn.functional as F
    from torch import nn


    class LM(nn.Module):
        def __init__(self, num_tokens, dim):
            super().__init__()
            self.token_emb = nn.Embedding(num_tokens, dim)
            self.to_logits = nn.Linear(dim, num_tokens)

        def forward(self, x, labels):
            h = self.token_emb(x)
            logits = self.to_logits(h)
            flat = logits.flatten(0, -2).float()
            return F.cross_entropy(flat, labels.flatten(), ignore_index=-100)
''')


def test_logits_flattened_to_the_rows_of_their_last_axis_are_read():
    # flatten(0, -2) merges every axis but the last: view(-1, logits.size(-1)), whatever the rank
    for spelling in ("logits.flatten(0, -2)", "logits.flatten(end_dim=-2)", "logits.flatten(start_dim=0, end_dim=-2)"):
        code = FLATTENED.replace("logits.flatten(0, -2)", spelling)
        head = code.splitlines().index("        logits = self.to_logits(h)") + 1
        assert [f.line for f in found(code, "ADP015")] == [head], spelling


def test_other_flattenings_are_not_read_as_rows():
    # flatten(0, 1) merges the class axis into the rows where the logits have two axes;
    # flatten() makes one axis; flatten(1) keeps the first
    for spelling in ("logits.flatten(0, 1)", "logits.flatten()", "logits.flatten(1)", "logits.flatten(1, -2)"):
        code = FLATTENED.replace("logits.flatten(0, -2)", spelling)
        assert found(code, "ADP015") == [], spelling
