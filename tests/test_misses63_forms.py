"""ADP015 heads the file's data flow names only across two modules (session 42, helper
misses63).  The fixtures are ours.

- A layer set on a module bound before in ``__init__`` (``self.encoder.lm_head =
  nn.Linear(...)`` after ``self.encoder = Body(...)``: the lyric encoder of a prior) replaces
  that module's member, so ``self.encoder.lm_head(h)`` runs the Linear: it is bound under its
  path (bindings._submodule_member) and the graph calls it (graph._submodule_layer).
- An embedding built in ``__init__`` with one of its constructor's parameters (``nn.Embedding(
  self.embed_dim, d)``, ``self.embed_dim = embed_dim if embed_dim is not None else ...``) has
  the sizes the file's constructions pass for that parameter (layers._passed_sizes): a Linear
  to that size is a vocabulary head, and any cross-entropy of its logits is over the tokens.

- Masked modeling (BEiT's masked image modeling): a Linear head's logits at the rows a mask
  picks (``scores[m]``, or ``head(h[m])``), where the function hands that mask, a parameter it
  does not rebind, to a same-file module whose code replaces those rows of its input by a
  learned token (``x * (1 - w) + self.mask_token.expand(...) * w``, ``torch.where(w, t, x)``,
  ``x[m] = t``; structure/mask_tokens.py).  The loss is over the content of inputs the model
  did not see: its classes are that content's tokens, a vocabulary whatever its width is named.

Look-alikes that stay unreported: the construction passes another size than the head's (or
nothing, leaving the default), no embedding at all (a classifier viewed to its width), a member
set on an attribute that holds no layer; rows zeroed or filled with a constant (or a registered
buffer, not a learned token), a mask the body never gets, the mask rebound before the
selection, a selection over the vocabulary axis, a transformed output before the loss.
"""

from __future__ import annotations

import textwrap

import torch
from torch import nn
from corpus_forms import found

PRIOR = textwrap.dedent("""\
    import numpy as np
    from torch import nn


    class Body(nn.Module):
        def __init__(self, config, n_ctx=None, embed_dim=None):
            super().__init__()
            self.embed_dim = embed_dim if embed_dim is not None else config.music_vocab_size
            self.embed_tokens = nn.Embedding(self.embed_dim, config.hidden_size)

        def forward(self, ids):
            return self.embed_tokens(ids)


    class Prior(nn.Module):
        def __init__(self, config):
            super().__init__()
            self.encoder_dim = config.lyric_vocab_size
            self.encoder = Body(config, n_ctx=8, embed_dim=PASSED)
            self.encoder.lm_head = nn.Linear(config.hidden_size, config.lyric_vocab_size, bias=False)

        def encoder_loss(self, hidden, target):
            hidden = self.encoder.lm_head(hidden)
            loss = nn.functional.cross_entropy(hidden.view(-1, self.encoder_dim), target.view(-1))
            return loss / np.log(2.0)
    """)


def _prior(passed: str) -> str:
    return PRIOR.replace("PASSED", passed)


def _line(code: str, needle: str) -> int:
    return next(n for n, text in enumerate(code.splitlines(), 1) if needle in text)


def test_a_member_head_over_the_size_its_encoder_embeds_is_found_at_the_head_call():
    code = _prior("self.encoder_dim")
    [finding] = found(code, "ADP015")
    assert finding.line == _line(code, "hidden = self.encoder.lm_head(hidden)")


def test_the_size_passed_as_written_or_by_position_counts_too():
    assert len(found(_prior("config.lyric_vocab_size"), "ADP015")) == 1
    by_position = _prior("X").replace("Body(config, n_ctx=8, embed_dim=X)", "Body(config, 8, self.encoder_dim)")
    assert len(found(by_position, "ADP015")) == 1


def test_a_plain_attribute_head_beside_an_inner_embedding_sized_by_the_constructor_is_found():
    code = _prior("self.encoder_dim").replace("self.encoder.lm_head", "self.lm_head")
    assert len(found(code, "ADP015")) == 1


def test_a_member_head_set_on_a_torch_layer_over_the_file_embedding_size_is_found():
    code = textwrap.dedent("""\
        from torch import nn


        class Prior(nn.Module):
            def __init__(self, config):
                super().__init__()
                self.embed = nn.Embedding(config.lyric_vocab_size, config.hidden_size)
                self.encoder = nn.Identity()
                self.encoder.lm_head = nn.Linear(config.hidden_size, config.lyric_vocab_size, bias=False)

            def encoder_loss(self, hidden, target):
                hidden = self.encoder.lm_head(hidden)
                return nn.functional.cross_entropy(hidden.view(-1, 7), target.view(-1))
        """)
    [finding] = found(code, "ADP015")
    assert finding.line == _line(code, "hidden = self.encoder.lm_head(hidden)")


def test_another_size_passed_or_none_or_the_default_is_no_vocabulary_for_the_head():
    assert found(_prior("config.lyric_width"), "ADP015") == []
    assert found(_prior("None"), "ADP015") == []
    default = _prior("X").replace("Body(config, n_ctx=8, embed_dim=X)", "Body(config)")
    assert found(default, "ADP015") == []


def test_without_any_embedding_the_width_alone_names_no_vocabulary():
    code = _prior("X").replace("self.encoder = Body(config, n_ctx=8, embed_dim=X)",
                               "self.encoder = nn.Identity()")
    assert "Embedding" in code  # Body still embeds music tokens, but nothing of the head's width
    assert found(code, "ADP015") == []


def test_a_member_set_on_an_attribute_that_holds_no_layer_is_not_bound():
    code = _prior("self.encoder_dim").replace("self.encoder = Body(config, n_ctx=8, embed_dim=self.encoder_dim)",
                                              "self.encoder = config.encoder\n"
                                              "        self.body = Body(config, embed_dim=self.encoder_dim)")
    assert found(code, "ADP015") == []


def test_a_member_set_after_construction_is_what_the_call_runs_and_the_view_is_per_position():
    """Why both readings are exact: assigning a Linear to a built module's attribute registers
    (or replaces) that submodule, and logits viewed to (rows, the head's width) are each
    position's logits, so the loss is the per-token cross-entropy the fused kernel computes."""
    torch.manual_seed(0)
    vocab, d = 11, 6

    class Body(nn.Module):
        def __init__(self):
            super().__init__()
            self.lm_head = nn.Identity()

    body = Body()
    body.lm_head = nn.Linear(d, vocab, bias=False)
    assert dict(body.named_children())["lm_head"] is body.lm_head
    hidden = torch.randn(2, 5, d, dtype=torch.float64)
    target = torch.randint(0, vocab, (2, 5))
    body = body.double()
    logits = body.lm_head(hidden)
    flat = nn.functional.cross_entropy(logits.view(-1, vocab), target.view(-1))
    per_position = torch.stack([nn.functional.cross_entropy(logits[b, t], target[b, t])
                                for b in range(2) for t in range(5)]).mean()
    torch.testing.assert_close(flat, per_position, rtol=1e-12, atol=1e-12)


# --- masked modeling: the loss over rows whose input a same-file module replaced by a learned token

MIM = textwrap.dedent("""\
    import torch
    from torch import nn
    from torch.nn import CrossEntropyLoss


    class Embeddings(nn.Module):
        def __init__(self, config):
            super().__init__()
            self.patch = nn.Conv2d(3, config.hidden_size, 4, 4)
            if config.use_mask_token:
                self.mask_token = nn.Parameter(torch.zeros(1, 1, config.hidden_size))
            else:
                self.mask_token = None

        def forward(self, pixel_values, bool_masked_pos=None):
            embeddings = self.patch(pixel_values).flatten(2).transpose(1, 2)
            batch_size, seq_len, _ = embeddings.size()
            if bool_masked_pos is not None:
                mask_tokens = self.mask_token.expand(batch_size, seq_len, -1)
                w = bool_masked_pos.unsqueeze(-1).type_as(mask_tokens)
                REPLACE
            return embeddings


    class Body(nn.Module):
        def __init__(self, config):
            super().__init__()
            self.embeddings = Embeddings(config)
            self.layer = nn.Linear(config.hidden_size, config.hidden_size)

        def forward(self, pixel_values, bool_masked_pos=None):
            return (self.layer(self.embeddings(pixel_values, bool_masked_pos=bool_masked_pos)),)


    class MaskedImageModel(nn.Module):
        def __init__(self, config):
            super().__init__()
            self.body = Body(config)
            self.norm = nn.LayerNorm(config.hidden_size)
            self.lm_head = nn.Linear(config.hidden_size, config.vocab_size)

        def forward(self, pixel_values, bool_masked_pos, labels=None):
            sequence_output = self.norm(self.body(pixel_values, BODY_MASK)[0])
            prediction_scores = self.lm_head(sequence_output)
            masked_lm_loss = None
            if labels is not None:
                loss_fct = CrossEntropyLoss()
                masked_lm_loss = loss_fct(SCORED, labels)
            return masked_lm_loss, prediction_scores
    """)
MIXED = "embeddings = embeddings * (1 - w) + mask_tokens * w"


def _mim(replace: str = MIXED, body_mask: str = "bool_masked_pos=bool_masked_pos",
         scored: str = "prediction_scores[bool_masked_pos]") -> str:
    return MIM.replace("REPLACE", replace).replace("BODY_MASK", body_mask).replace("SCORED", scored)


def test_masked_rows_whose_input_a_same_file_module_replaced_by_a_learned_token_are_a_site():
    code = _mim()
    [finding] = found(code, "ADP015")
    assert finding.line == _line(code, "prediction_scores = self.lm_head(sequence_output)")


def test_the_replacement_by_position_by_where_or_by_assignment_counts_too():
    assert len(found(_mim(body_mask="bool_masked_pos"), "ADP015")) == 1
    assert len(found(_mim(replace="embeddings = torch.where(w.bool(), mask_tokens, embeddings)"), "ADP015")) == 1
    assert len(found(_mim(replace="embeddings[bool_masked_pos] = self.mask_token.to(embeddings.dtype)"),
                     "ADP015")) == 1
    assert len(found(_mim(replace="embeddings = mask_tokens * w + (1 - w) * embeddings"), "ADP015")) == 1


def test_rows_zeroed_or_filled_with_a_constant_are_no_mask_token():
    assert found(_mim(replace="embeddings = embeddings * (1 - w)"), "ADP015") == []
    assert found(_mim(replace="embeddings = torch.where(w.bool(), 0.0, embeddings)"), "ADP015") == []
    # a token that is not a learned parameter (a buffer of zeros the module registers)
    code = _mim().replace("self.mask_token = nn.Parameter(torch.zeros(1, 1, config.hidden_size))",
                          'self.register_buffer("mask_token", torch.zeros(1, 1, config.hidden_size))')
    assert found(code, "ADP015") == []


def test_a_mask_the_body_never_gets_or_only_as_an_attention_mask_types_no_head():
    assert found(_mim(body_mask="None"), "ADP015") == []
    attention = _mim(replace="embeddings = embeddings.masked_fill(w == 0, 0.0)")
    assert found(attention, "ADP015") == []


def test_a_selection_over_the_vocabulary_axis_or_a_transformed_output_is_no_site():
    assert found(_mim(scored="prediction_scores[:, :, bool_masked_pos]"), "ADP015") == []
    assert found(_mim(scored="prediction_scores[bool_masked_pos].sigmoid()"), "ADP015") == []


def test_a_mask_rebound_before_the_selection_is_not_the_one_the_body_got():
    code = _mim().replace("        masked_lm_loss = None\n",
                          "        masked_lm_loss = None\n        bool_masked_pos = labels != -100\n")
    assert "bool_masked_pos = labels != -100" in code
    assert found(code, "ADP015") == []


def test_replaced_rows_scored_by_the_head_at_those_rows_are_the_head_over_masked_inputs():
    """Why the reading is exact: where ``w`` is set the body's input row is the learned token
    whatever the pixels were, and scoring ``scores[m]`` takes exactly those rows: row selection
    commutes with the Linear head, so ``lm_head(h)[m] == lm_head(h[m])`` and the loss is the
    fused kernel's over the selected hidden rows."""
    torch.manual_seed(0)
    d, vocab = 8, 13
    x = torch.randn(2, 5, d, dtype=torch.float64)
    token = torch.randn(1, 1, d, dtype=torch.float64)
    m = torch.tensor([[True, False, True, False, False], [False, True, True, False, True]])
    w = m.unsqueeze(-1).type_as(token)
    mixed = x * (1 - w) + token.expand(2, 5, -1) * w
    assert torch.equal(mixed[m], token.reshape(1, d).expand(int(m.sum()), d))
    head = nn.Linear(d, vocab).double()
    labels = torch.randint(0, vocab, (int(m.sum()),))
    torch.testing.assert_close(nn.functional.cross_entropy(head(mixed)[m], labels),
                               nn.functional.cross_entropy(head(mixed[m]), labels), rtol=1e-12, atol=1e-12)


def test_a_token_parameter_bound_on_one_way_only_is_the_callers_value_too():
    # review49: ``if fill is None: fill = self.mask_token...`` binds the parameter once, but on the
    # other way it holds what the caller hands (a constant, zeros): no learned token for sure
    code = _mim().replace("def forward(self, pixel_values, bool_masked_pos=None):\n"
                          "        embeddings = self.patch",
                          "def forward(self, pixel_values, bool_masked_pos=None, mask_tokens=None):\n"
                          "        embeddings = self.patch")
    code = code.replace("            mask_tokens = self.mask_token.expand(batch_size, seq_len, -1)\n",
                        "            if mask_tokens is None:\n"
                        "                mask_tokens = self.mask_token.expand(batch_size, seq_len, -1)\n")
    assert "if mask_tokens is None:" in code and "bool_masked_pos=None, mask_tokens=None" in code
    assert found(code, "ADP015") == []
