"""Forms of the dev corpus's remaining misses (session 30, helper misses36), read by their
computation.  The fixtures are ours.

- An optimizer class taken from a module-level literal table (efficientvit's
  ``REGISTERED_OPTIMIZER_DICT: dict[...] = {"sgd": (torch.optim.SGD, {"momentum": 0.9}),
  ...}``, then ``optimizer_class, default_params = REGISTERED_OPTIMIZER_DICT[name]`` and
  ``optimizer_class(params, lr, **default_params)``).  The file binds the table once and reads
  it only by assigning one entry, so the class name holds one of the entries' classes: a callee
  chosen at run time, as ``klass = SGD if sgd else AdamW`` is (the fix passes ``fused=True``
  only when the name holds the class it matched).  The entry's dict literal, where only this
  statement reads the table and the function only iterates it, tests membership in it, gives
  a key the loop over it yields a new value (no new key) and spreads it, passes the entries'
  own keys: none is ``fused``/``foreach``/``differentiable``.  Also a table of classes
  (``klass = OPTIMIZERS[name]``).
Near-misses: an entry's dict holding ``foreach``; a new key given to the dict (``d["fused"] =
False``, ``d.update(...)``); the table changed elsewhere (an item store), so its classes are
not certain; the table read by a second statement (its dicts may be changed there).

- A head module given the weight it multiplies the hidden states by, its rows flattened and
  grouped back (Perceiver's embedding decoder: ``b, s, d = h.shape``; ``out =
  torch.matmul(h.reshape([-1, d]), emb.weight.transpose(0, 1))``; ``out = out + self.bias``;
  ``return out.reshape([b, s, self.vocab_size])``), called with the weight's module as a
  keyword, its logits flattened over the model's vocabulary size into a cross-entropy.  The
  flattening view keeps each row's last axis whole and the view back gives the rows their
  places (the product has ``b * s`` rows), so the module computes a row-wise linear map, as
  a Linear-ending head does; the file does not show the weight is a token embedding's (the
  model holding it is built elsewhere), so, as for a Linear-ending head, the loss's view over
  the vocabulary size says the logits are over the vocabulary.  Reported (ADP015 is report
  only).
Near-misses: the hidden states flattened by another size than their own last (``h.reshape([b,
-1])``: not rows), the product viewed back merging the positions into the classes
(``out.reshape([b, -1])``), the weight not transposed, the loss flattened over another size
(a classifier's ``num_labels``).

- A Linear head scored against ids the forward computes (jukebox's prior: ``prime`` from
  ``self.get_cond(...)``, the head's input ``self.get_encoder_kv(prime)``, the loss in a helper
  given both: ``cross_entropy(self.prime_x_out(kv).view(-1, self.prime_bins),
  prime_t.view(-1))``), in a file without a token embedding.  The model predicts the very ids
  its head's input is computed from, so its classes are the tokens, as for ids given as an
  argument (predicts_input); the ids may now be any value the forward computes, not only an
  argument.
Near-misses: a target computed beside the ids from the same input (``self.labeler(audio)``),
the ids turned into other classes (``tokens.argmax(-1)``), a head whose input is not computed
from the ids.
"""

from __future__ import annotations

import textwrap

from corpus_forms import found, rules

from adopter.synth import fix_text

TABLE = textwrap.dedent('''
    import torch

    __all__ = ["OPTIMIZERS", "build"]

    OPTIMIZERS: dict[str, tuple] = {
        "sgd": (torch.optim.SGD, {"momentum": 0.9, "nesterov": True}),
        "adamw": (torch.optim.AdamW, {"betas": (0.9, 0.999), "eps": 1e-8}),
    }


    def build(params, name, given, lr):
        klass, defaults = OPTIMIZERS[name]
        given = given or {}
        for key in defaults:
            if key in given:
                defaults[key] = given[key]
        return klass(params, lr, **defaults)
''')


def test_an_optimizer_class_and_its_keywords_from_a_literal_table_are_read():
    hits = found(TABLE, "ADP012")
    assert [f.line for f in hits] == [TABLE.splitlines().index("    return klass(params, lr, **defaults)") + 1]
    fixed = fix_text(TABLE, "model.py", rules("ADP012")).text
    assert '**({"fused": True} if klass is torch.optim.AdamW else {})' in fixed
    compile(fixed, "model.py", "exec")


def test_a_table_of_classes_is_read_too():
    code = textwrap.dedent('''
        import torch

        OPTIMIZERS = {"adam": torch.optim.Adam, "sgd": torch.optim.SGD}


        def build(params, name):
            klass = OPTIMIZERS[name]
            return klass(params, lr=1e-3)
    ''')
    assert len(found(code, "ADP012")) == 1


def test_an_entry_dict_choosing_the_implementation_is_not_matched():
    code = TABLE.replace('"eps": 1e-8}', '"eps": 1e-8, "foreach": False}')
    assert found(code, "ADP012") == []


def test_a_key_added_to_the_entry_dict_is_not_certain():
    for added in ('    defaults["fused"] = False\n', '    defaults.update(fused=False)\n'):
        code = TABLE.replace("    return klass(", added + "    return klass(")
        assert found(code, "ADP012") == [], added


def test_a_table_changed_elsewhere_or_read_twice_is_not_read():
    changed = TABLE + '\n\nOPTIMIZERS["mine"] = (object, {"fused": True})\n'
    assert found(changed, "ADP012") == []
    twice = TABLE + '\n\ndef tweak(name):\n    _, d = OPTIMIZERS[name]\n    d["fused"] = False\n'
    assert found(twice, "ADP012") == []


DECODER = textwrap.dedent('''
    import torch
    from torch import nn
    from torch.nn import CrossEntropyLoss


    class EmbeddingDecoder(nn.Module):
        def __init__(self, config):
            super().__init__()
            self.vocab_size = config.vocab_size
            self.bias = nn.Parameter(torch.zeros(self.vocab_size))

        def forward(self, hidden_states, embedding_layer):
            batch_size, seq_len, d_model = hidden_states.shape
            output = torch.matmul(hidden_states.reshape([-1, d_model]), embedding_layer.weight.transpose(0, 1))
            output = output + self.bias
            return output.reshape([batch_size, seq_len, self.vocab_size])


    class ForMaskedLM(nn.Module):
        def __init__(self, config, model):
            super().__init__()
            self.config = config
            self.model = model
            self.embedding_decoder = EmbeddingDecoder(config)

        def forward(self, inputs, labels=None, return_dict=True):
            outputs = self.model(inputs)
            logits = self.embedding_decoder(
                outputs.logits if return_dict else outputs[0], embedding_layer=self.model.preprocessor.embeddings
            )
            masked_lm_loss = None
            if labels is not None:
                loss_fct = CrossEntropyLoss()
                masked_lm_loss = loss_fct(logits.view(-1, self.config.vocab_size), labels.view(-1))
            return masked_lm_loss, logits
''')


def test_a_head_given_its_weight_with_rows_flattened_and_grouped_back_is_followed():
    line = next(n for n, text in enumerate(DECODER.splitlines(), 1) if "logits = self.embedding_decoder(" in text)
    assert [f.line for f in found(DECODER, "ADP015")] == [line]
    # called with the weight's module by position too
    positional = DECODER.replace("embedding_layer=self.model", "self.model")
    assert [f.line for f in found(positional, "ADP015")] == [line]


def test_a_decoder_that_is_not_row_wise_or_a_loss_over_other_classes_is_not_followed():
    for old, new in (
            ("hidden_states.reshape([-1, d_model])", "hidden_states.reshape([batch_size, -1])"),
            ("output.reshape([batch_size, seq_len, self.vocab_size])", "output.reshape([batch_size, -1])"),
            ("embedding_layer.weight.transpose(0, 1)", "embedding_layer.weight"),
            ("logits.view(-1, self.config.vocab_size)", "logits.view(-1, self.config.num_labels)"),
    ):
        assert old in DECODER
        assert found(DECODER.replace(old, new), "ADP015") == [], new


PRIOR = textwrap.dedent('''
    from torch import nn


    class TokenPrior(nn.Module):
        def __init__(self, width, bins, tokenizer, labeler, encoder):
            super().__init__()
            self.tokenizer = tokenizer
            self.labeler = labeler
            self.encoder = encoder
            self.bins = bins
            self.x_out = nn.Linear(width, self.bins, bias=False)

        def get_loss(self, h, tokens):
            h = h.float()
            h = self.x_out(h)
            return nn.functional.cross_entropy(h.view(-1, self.bins), tokens.view(-1))

        def forward(self, audio):
            tokens = self.tokenizer(audio)
            h = self.encoder(tokens)
            return self.get_loss(h, tokens)
''')


def test_a_head_scored_against_ids_the_forward_computes_and_encodes_is_followed():
    line = next(n for n, text in enumerate(PRIOR.splitlines(), 1) if "h = self.x_out(h)" in text)
    assert [f.line for f in found(PRIOR, "ADP015")] == [line]


def test_a_target_beside_the_ids_or_other_classes_of_them_is_not_followed():
    for old, new in (
            ("return self.get_loss(h, tokens)", "return self.get_loss(h, self.labeler(audio))"),
            ("return self.get_loss(h, tokens)", "return self.get_loss(h, tokens.argmax(-1))"),
            ("h = self.encoder(tokens)", "h = self.encoder(audio)"),
    ):
        assert old in PRIOR
        assert found(PRIOR.replace(old, new), "ADP015") == [], new


def test_the_view_back_bound_to_a_name_before_the_return_is_read_too():
    aliased = DECODER.replace(
        "        return output.reshape([batch_size, seq_len, self.vocab_size])",
        "        output = output.reshape([batch_size, seq_len, self.vocab_size])\n        return output")
    assert aliased != DECODER
    assert len(found(aliased, "ADP015")) == 1
    # a module given two arguments returning a view of something else (no product) is no head
    other = DECODER.replace(
        "        return output.reshape([batch_size, seq_len, self.vocab_size])",
        "        scores = hidden_states.view(batch_size, seq_len, -1)\n        return scores")
    assert found(other, "ADP015") == []
