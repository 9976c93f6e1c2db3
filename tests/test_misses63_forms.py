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

Look-alikes that stay unreported: the construction passes another size than the head's (or
nothing, leaving the default), no embedding at all (a classifier viewed to its width), and a
member set on an attribute that holds no layer.
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
