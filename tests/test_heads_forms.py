"""ADP015 heads the engine missed in the dev corpus (session 27, helper heads).  The fixtures
are ours.

- Multi-codebook heads (musicgen's form): one vocabulary Linear per codebook in an
  ``nn.ModuleList`` (typed as LM heads by the file's token embedding, ``vocab_size + 1``),
  their outputs stacked on a new axis (``torch.stack([head(h) for head in self.lm_heads],
  dim=1)``), maybe the positions selected (``logits = stacked[:, :, -n:]``), then per codebook
  ``logits[:, k].contiguous().view(-1, logits.shape[-1])`` into a cross-entropy.  The stack is
  read as the member's call then a step canon.members; ``stacked[:, k]`` (bare slices before
  the stack axis, a name or an int at it) as canon.member, the k-th member's output; a slice
  keeping the stack axis whole as canon.rows.  Each codebook's loss is a Linear + a
  cross-entropy over its last axis: the fused kernel applies per head (report only).
  A name holding the stack is tracked until it is assigned again, so a stack in one branch
  (parler-tts: a fused head in the other) is read on the paths from it.
- ``x.view(-1, y.shape[-1])``: the size read as ``y.size(-1)`` (the same step), so a pattern
  that flattens over the logits' own last size reads either spelling.
- ``flat[mask]`` of ``flat = x.view(-1, n)`` (one index of a value of two axes): rows, the last
  axis whole (canon.rows), parler-tts's per-codebook mask before the loss.
Near-misses: stacked heads to the number of labels (classifiers, not vocabulary heads: the
lead's ruling), stacked logits that reach no cross-entropy, softmaxed heads (a probability, not
a head's output), the heads' outputs summed first, a pick on another axis than the stack's,
a stack on the last axis, a list of other modules' outputs, flattened over another size, the
name rebound before the pick, a mask of logits not viewed to two axes (rank unknown), a slice
of the flattened logits' last axis.
"""

from __future__ import annotations

import textwrap

from corpus_forms import found

BASE = textwrap.dedent("""\
    import torch
    from torch import nn
    from torch.nn import CrossEntropyLoss


    class CodebookLM(nn.Module):
        def __init__(self, config):
            super().__init__()
            self.config = config
            self.embed_tokens = nn.Embedding(config.vocab_size + 1, config.hidden_size)
            self.lm_heads = nn.ModuleList(
                [nn.Linear(config.hidden_size, config.vocab_size, bias=False) for _ in range(config.num_codebooks)]
            )
            self.proj = nn.Linear(config.hidden_size, config.hidden_size)

        def forward(self, hidden_states, labels=None):
            STACK
            loss = None
            if labels is not None:
                logits = lm_logits[:, :, -labels.shape[1]:]
                loss_fct = CrossEntropyLoss()
                loss = torch.zeros([])
                for codebook in range(self.config.num_codebooks):
                    codebook_logits = PICK.contiguous().view(-1, SIZE)
                    codebook_labels = labels[..., codebook].contiguous().view(-1)
                    loss += loss_fct(codebook_logits, codebook_labels)
                loss = loss / self.config.num_codebooks
            return loss, lm_logits
    """)

STACKED = "lm_logits = torch.stack([head(hidden_states) for head in self.lm_heads], dim=1)"


def code(stack=STACKED, pick="logits[:, codebook]", size="logits.shape[-1]"):
    return BASE.replace("STACK", stack).replace("PICK", pick).replace("SIZE", size)


def test_stacked_codebook_heads_found_at_the_stack():
    text = code()
    (finding,) = found(text, "ADP015")
    stack_line = next(n for n, line in enumerate(text.splitlines(), 1) if "torch.stack" in line)
    assert finding.line == stack_line
    assert finding.end_line > stack_line  # through the loss in the loop


def test_stacked_heads_without_the_position_slice():
    text = code().replace("lm_logits[:, :, -labels.shape[1]:]", "lm_logits")
    assert len(found(text, "ADP015")) == 1


def test_size_spelled_as_a_method_and_an_int_pick():
    assert len(found(code(pick="logits[:, 0]", size="logits.size(-1)"), "ADP015")) == 1


def test_stack_on_axis_zero_picked_by_a_leading_index():
    text = code(stack=STACKED.replace("dim=1", "dim=0"), pick="logits[codebook]")
    text = text.replace("lm_logits[:, :, -labels.shape[1]:]", "lm_logits[:, -labels.shape[1]:]")
    assert len(found(text, "ADP015")) == 1


# -- near-misses -------------------------------------------------------------------------


def test_stacked_classifier_heads():
    text = code().replace("nn.Linear(config.hidden_size, config.vocab_size, bias=False)",
                          "nn.Linear(config.hidden_size, config.num_labels, bias=False)")
    assert found(text, "ADP015") == []


def test_stacked_logits_reaching_no_cross_entropy():
    text = code().replace("loss += loss_fct(codebook_logits, codebook_labels)",
                          "loss += (codebook_logits.float() - codebook_labels.float()).pow(2).mean()")
    assert found(text, "ADP015") == []


def test_softmaxed_heads_are_not_logits():
    stack = "lm_logits = torch.stack([head(hidden_states).softmax(-1) for head in self.lm_heads], dim=1)"
    assert found(code(stack=stack), "ADP015") == []


def test_heads_summed_first():
    stack = "lm_logits = torch.stack([head(hidden_states) for head in self.lm_heads], dim=1).sum(1, keepdim=True)"
    assert found(code(stack=stack), "ADP015") == []


def test_pick_on_another_axis_than_the_stack():
    # logits[:, :, k] of a stack on axis 1 is a position of every head, not one head's logits
    assert found(code(pick="logits[:, :, codebook]"), "ADP015") == []


def test_stack_on_the_last_axis():
    # dim=-1 puts the heads last: the vocabulary is no longer the last axis
    assert found(code(stack=STACKED.replace("dim=1", "dim=-1")), "ADP015") == []


def test_stack_of_calls_on_the_loop_value_not_its_member():
    # [self.proj(h) for h in self.lm_heads]: the loop name is not the callee
    stack = "lm_logits = torch.stack([self.proj(hidden_states) for head in self.lm_heads], dim=1)"
    assert found(code(stack=stack), "ADP015") == []


def test_flattened_over_another_size():
    assert found(code(size="logits.shape[1]"), "ADP015") == []


def test_name_rebound_before_the_pick():
    text = code().replace("loss_fct = CrossEntropyLoss()", "logits = logits.sum(1)\n            loss_fct = CrossEntropyLoss()")
    assert found(text, "ADP015") == []


def test_stack_in_one_branch_read_after_the_join():
    # parler-tts: a fused head in one branch, the stacked heads in the other; the finding is
    # on the stacked path
    stack = ("if self.config.fused:\n"
             "            lm_logits = self.proj(hidden_states).unsqueeze(1)\n"
             "        else:\n"
             "            " + STACKED)
    text = code(stack=stack)
    (finding,) = found(text, "ADP015")
    assert finding.line == next(n for n, line in enumerate(text.splitlines(), 1) if "torch.stack" in line)


MASKED = ("codebook_loss = loss_fct(codebook_logits[codebook_mask], codebook_labels[codebook_mask])\n"
          "                loss += codebook_loss")


def masked(text):
    text = text.replace("loss += loss_fct(codebook_logits, codebook_labels)", MASKED)
    return text.replace("codebook_labels = labels[..., codebook].contiguous().view(-1)",
                        "codebook_labels = labels[..., codebook].contiguous().view(-1)\n"
                        "                codebook_mask = codebook_labels != -100")


def test_rows_of_the_flattened_logits_selected_by_a_mask():
    assert len(found(masked(code()), "ADP015")) == 1


def test_mask_of_a_value_not_viewed_to_two_axes():
    # a mask of the (batch, positions, vocabulary) logits: its rank is not known here
    text = masked(code()).replace(".contiguous().view(-1, logits.shape[-1])", ".contiguous()")
    assert found(text, "ADP015") == []


def test_slice_of_the_flattened_logits_is_not_a_row_selection():
    text = masked(code()).replace("codebook_logits[codebook_mask]", "codebook_logits[:, codebook_mask]")
    assert found(text, "ADP015") == []
