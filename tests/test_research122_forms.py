"""Forms found while checking the blind batch research122 (GPT / LLaMA / MoE research code
outside the big frameworks: a byte-level hybrid LM, a from-scratch Qwen3, a BitNet, a diffusion
LM with attention variants, an RWKV-7 port, a Mamba package).  The fixtures are ours.

- A causal LM's head (any ``nn.Linear``; the token embedding lives in the backbone, another
  file's module the forward hands the ids to) whose logits' positions are cut by a slice of the
  first two axes (``logits[:, :-1]``), flattened to rows of the logits' own last size
  (``.reshape(-1, logits.shape[-1])``), upcast after the flattening, beside the complementary
  shift of the target (``labels[:, 1:]``): ADP015 (pflm1's modeling file).  The next-token
  target says axis 1 holds the positions, so the slice keeps the vocabulary axis whole and the
  loss equals the cross-entropy of the head over the shifted hidden states (what the fused
  kernel computes; checked below in float64).  Near-misses, silent: the target cut the same way
  as the logits (no next-token shift), a head over labels beside a token embedding of the file
  (the tokens have another size than the head's classes), and a head whose input the forward
  projects from features with a Linear (nothing says the sequence's elements are tokens).
"""

from __future__ import annotations

import textwrap

import pytest
from corpus_forms import found, line_of

SHIFTED = """\
import torch
import torch.nn as nn

from .backbone import Backbone


class ByteLM(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.model = Backbone(config)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)

    def forward(self, input_ids, labels=None):
        hidden = self.model(input_ids)
        logits = self.lm_head(hidden)
        loss = None
        if labels is not None:
            loss = nn.functional.cross_entropy(
                logits[:, :-1].reshape(-1, logits.shape[-1]).float(),
                labels[:, 1:].reshape(-1),
            )
        return loss, logits
"""


def test_a_head_whose_logits_are_cut_on_the_first_two_axes_beside_the_shifted_target_is_reported():
    hits = found(SHIFTED, "ADP015")
    assert [f.line for f in hits] == [line_of(SHIFTED, "logits = self.lm_head(hidden)")]


@pytest.mark.parametrize("spelling", [
    "logits[:, :-1].reshape(-1, logits.size(-1))",
    "logits[:, :-1].contiguous().view(-1, logits.shape[-1])",
])
def test_other_spellings_of_the_cut_and_the_rows_are_reported(spelling):
    code = SHIFTED.replace("logits[:, :-1].reshape(-1, logits.shape[-1]).float()", spelling)
    assert [f.line for f in found(code, "ADP015")] == [line_of(code, "logits = self.lm_head(hidden)")]


def test_a_target_cut_like_the_logits_is_no_next_token_loss():
    code = SHIFTED.replace("labels[:, 1:].reshape(-1)", "labels[:, :-1].reshape(-1)")
    assert found(code, "ADP015") == []


def test_a_head_over_labels_beside_a_token_embedding_of_the_file_stays_silent():
    code = SHIFTED.replace(
        "        self.model = Backbone(config)\n",
        "        self.model = Backbone(config)\n"
        "        self.embed = nn.Embedding(config.vocab_size, config.hidden_size)\n",
    ).replace("nn.Linear(config.hidden_size, config.vocab_size, bias=False)",
              "nn.Linear(config.hidden_size, config.num_labels, bias=False)").replace(
        "hidden = self.model(input_ids)", "hidden = self.model(self.embed(input_ids))")
    assert found(code, "ADP015") == []


def test_a_head_over_features_the_forward_projects_stays_silent():
    code = SHIFTED.replace(
        "        self.model = Backbone(config)\n",
        "        self.model = Backbone(config)\n"
        "        self.proj = nn.Linear(config.feature_size, config.hidden_size)\n",
    ).replace("hidden = self.model(input_ids)", "hidden = self.model(self.proj(input_ids))")
    assert found(code, "ADP015") == []


def test_the_cut_keeps_the_classes_whole_so_the_loss_is_the_heads_over_shifted_hidden_states():
    torch = pytest.importorskip("torch")
    namespace = {}
    code = SHIFTED.replace("from .backbone import Backbone\n", textwrap.dedent("""\
        class Backbone(nn.Module):
            def __init__(self, config):
                super().__init__()
                self.embed = nn.Embedding(config.vocab_size, config.hidden_size)
                self.mix = nn.Linear(config.hidden_size, config.hidden_size)

            def forward(self, ids):
                return torch.tanh(self.mix(self.embed(ids)))
        """))
    exec(compile(code, "model.py", "exec"), namespace)  # noqa: S102 (our own fixture)

    class Config:
        hidden_size, vocab_size = 16, 37

    torch.manual_seed(0)
    model = namespace["ByteLM"](Config()).double()
    ids = torch.randint(0, Config.vocab_size, (3, 11))
    loss, _ = model(ids, labels=ids)
    hidden = model.model(ids)
    fused_form = torch.nn.functional.cross_entropy(
        model.lm_head(hidden[:, :-1]).float().reshape(-1, Config.vocab_size), ids[:, 1:].reshape(-1))
    # float64 logits, float32 upcast in both (the same values): equal to float32 rounding
    assert torch.allclose(loss, fused_form, rtol=1e-6, atol=1e-6)


# ------------------------------------------------ logits a helper method of the class computes

HELPER = """\
import torch
import torch.nn as nn
import torch.nn.functional as F


class DiffusionLM(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.config = config
        self.embed = nn.Embedding(config.vocab_size, config.hidden_size)
        self.body = nn.Linear(config.hidden_size, config.hidden_size)
        self.lm_head = None if config.tie else nn.Linear(config.hidden_size, config.vocab_size, bias=False)

    def _logits(self, hidden):
        if self.lm_head is not None:
            return self.lm_head(hidden)
        return F.linear(hidden, self.embed.weight)

    def forward(self, input_ids, labels=None):
        hidden = torch.tanh(self.body(self.embed(input_ids)))
        logits = self._logits(hidden)
        loss = None
        if labels is not None:
            mask = labels != self.config.pad_token_id
            loss = F.cross_entropy(logits[mask].float(), labels[mask])
        return loss, logits
"""


def test_logits_of_a_helper_method_returning_a_head_over_masked_rows_are_reported_per_head():
    # one finding per head, as for a head chosen by an if in the forward itself
    lines = sorted(f.line for f in found(HELPER, "ADP015"))
    assert lines == [line_of(HELPER, "return self.lm_head(hidden)"), line_of(HELPER, "return F.linear(hidden")]


def test_the_same_with_one_head_is_reported_once():
    code = HELPER.replace("        if self.lm_head is not None:\n            return self.lm_head(hidden)\n"
                          "        return F.linear(hidden, self.embed.weight)\n",
                          "        return self.lm_head(hidden)\n")
    assert [f.line for f in found(code, "ADP015")] == [line_of(code, "return self.lm_head(hidden)")]


@pytest.mark.parametrize("other", [
    "        return hidden\n",                       # the hidden states themselves on one path
    "        return self.lm_head(hidden), hidden\n",  # a pair: logits[mask] picks elements of it
])
def test_a_helper_method_returning_anything_else_on_a_path_stays_silent(other):
    code = HELPER.replace("        return F.linear(hidden, self.embed.weight)\n", other)
    assert found(code, "ADP015") == []


def test_the_masked_rows_of_a_helpers_logits_give_the_heads_loss_over_those_rows():
    torch = pytest.importorskip("torch")
    namespace = {}
    exec(compile(HELPER, "model.py", "exec"), namespace)  # noqa: S102 (our own fixture)

    class Config:
        hidden_size, vocab_size, pad_token_id, tie = 8, 29, 0, False

    torch.manual_seed(0)
    model = namespace["DiffusionLM"](Config()).double()
    ids = torch.randint(0, Config.vocab_size, (2, 9))
    labels = ids.masked_fill(torch.rand(2, 9) < 0.4, 0)
    loss, _ = model(ids, labels)
    mask = labels != 0
    hidden = torch.tanh(model.body(model.embed(ids)))
    rows = torch.nn.functional.cross_entropy(model.lm_head(hidden[mask]).float(), labels[mask])
    assert torch.allclose(loss, rows, rtol=1e-6, atol=1e-6)
