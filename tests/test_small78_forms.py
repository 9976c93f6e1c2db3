"""small78 (session 45): finding-side leftovers, each with its form and a look-alike.

(1) ADP015: a loss target that is a comparison of the input ids (``rearrange(ids > 0, ...)``)
is a mask of the ids, not the ids: the model does not predict its own input there.  Our own
fixtures."""

from __future__ import annotations

import textwrap

from corpus_forms import finding_at

# ---------- (1) ADP015: a comparison of the ids is a mask, not the ids

SCORER = textwrap.dedent("""\
    import torch
    import torch.nn.functional as F
    from einops import rearrange
    from torch import nn


    class Captioner(nn.Module):
        def __init__(self, dim, vocab, depth):
            super().__init__()
            self.text_model = TextModel()
            self.project = nn.Linear(dim, dim)
            self.blocks = nn.ModuleList([Block(dim) for _ in range(depth)])
            self.to_words = nn.Linear(dim, vocab, bias=True)

        def embed(self, ids):
            return self.text_model.embeddings(ids)

        def score(self, feats, ids, labels):
            x = torch.cat([feats, self.project(self.embed(ids))], dim=1)
            for block in self.blocks:
                x = block(x)
            text = x[:, -ids.shape[-1]:, ...]
            logits = self.to_words(text)  # head
            flat = rearrange(logits, "b n v -> (b n) v")
            targets = TARGET
            return F.cross_entropy(flat, targets, reduction="none")
""")


def test_a_comparison_of_the_ids_is_no_token_target():
    for target in (
        'rearrange(ids > 0, "b n -> (b n)").long()',
        'rearrange(ids != 0, "b n -> (b n)").long()',
        'rearrange((ids > 0) == (ids < 5), "b n -> (b n)").long()',
        '(ids > 0).long().reshape(-1)',
    ):
        assert finding_at(SCORER.replace("TARGET", target), "ADP015", "# head") is None, target


def test_the_ids_themselves_stay_a_token_target():
    for target in (
        'rearrange(ids, "b n -> (b n)").long()',
        'rearrange(ids, "b n -> (b n)")',
        'ids.reshape(-1)',
    ):
        assert finding_at(SCORER.replace("TARGET", target), "ADP015", "# head") is not None, target
