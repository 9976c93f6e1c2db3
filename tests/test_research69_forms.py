"""Forms found while checking the blind batch research69 (research LLM/NLP code on PyPI:
memory-transformer-xl, kan-gpt, supar, speculative-decoding, h-transformer-1d,
gateloop-transformer, rela-transformer, FLASH-pytorch, soft-moe-pytorch, product-key-memory,
adjacent-attention-pytorch, bert-seq2seq).  The fixtures are ours.

- ADP012: a trainer class whose ``train`` method builds the optimizer, and whose ``evaluate``
  runs ``self.transform.train()`` (another object's namesake).  Mentions are words, so
  ``evaluate`` was taken to call ``train`` and ``train`` was read nowhere; a method that the
  class's other methods name only as another object's attribute is a root of its own.
  Near-miss: ``evaluate`` calling ``self.train()`` keeps ``train`` inlined there (the optimizer
  is still found once, where the flow reads it).
"""

from __future__ import annotations

import textwrap

from corpus_forms import finding_at, found

# --------------------------------------------------------------------------- ADP012

TRAINER = textwrap.dedent("""\
    import torch
    from torch.optim import Adam


    class Trainer:
        def __init__(self, model, transform):
            self.model = model
            self.transform = transform

        def train(self, lr, betas, eps, decay):
            self.optimizer = Adam(self.model.parameters(), lr, betas, eps, decay)
            self.transform.train()
            return self._steps()

        def evaluate(self, data):
            CALL
            return self._score(data)

        def _steps(self):
            return 0

        def _score(self, data):
            return data
    """)


def test_method_named_only_as_another_objects_namesake_is_read():
    code = TRAINER.replace("CALL", "self.transform.train()")
    assert finding_at(code, "ADP012", "self.optimizer = Adam(") is not None


def test_method_named_only_through_a_chain_of_attributes_is_read():
    code = TRAINER.replace("CALL", "self.model.encoder.train(False)")
    assert finding_at(code, "ADP012", "self.optimizer = Adam(") is not None


def test_method_the_class_calls_on_self_is_still_found_once():
    code = TRAINER.replace("CALL", "self.train(1e-3, (0.9, 0.99), 1e-8, 0.0)")
    assert len(found(code, "ADP012")) == 1
