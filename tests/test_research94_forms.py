"""Forms found while checking the blind batch research94 (efficient and alternative sequence
models: mixture-of-experts layers, linear and sparse attention, state-space hybrids: qorva,
pyhalos, hydra-attention, lin-mil, memodo).  The fixtures are ours.

- ADP015: a vocabulary head's logits shifted by a slice of the first two axes
  (``logits[:, :-1]``) beside the complementary shift of the target (``labels[:, 1:]``), then
  flattened to rows of the model's vocabulary as a setting (``.view(-1, self.cfg.vocab_size)``)
  was missed: the next-token target already says axis 1 holds the positions (the slice keeps
  the vocabulary axis whole), whatever the flattening view's size is spelled as.
  Near-misses: the same code over a classifier head (a Linear to a class count beside a token
  embedding of another size), and the slice beside an unshifted target (of 2-D logits the slice
  would cut the classes), stay unreported.
- ADP011: a hand-written RMSNorm class defined after ``if hasattr(nn, "RMSNorm"): return
  nn.RMSNorm(d, eps=eps)`` in a factory is the fallback of torch's RMSNorm module, whose
  forward is ``F.rms_norm``: the kernel is adopted there, as for ``F.rms_norm`` itself.
  Near-misses: the same norm with no such return before it, and after a return of a
  same-file class that happens to be called ``RMSNorm`` (no torch module), are reported.
"""

from __future__ import annotations

from corpus_forms import finding_at, found

SHIFTED_SETTING_VIEW = """\
import torch.nn as nn
import torch.nn.functional as F


class TinyLM(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(cfg.vocab_size, cfg.hidden_dim)
        self.lm_head = nn.Linear(cfg.hidden_dim, cfg.vocab_size, bias=False)

    def forward(self, input_ids, labels=None):
        x = self.embed(input_ids)
        logits = self.lm_head(x)
        loss = None
        if labels is not None:
            loss = F.cross_entropy(
                logits[:, :-1].contiguous().view(-1, self.cfg.vocab_size),
                labels[:, 1:].contiguous().view(-1),
                ignore_index=-100,
            )
        return {"logits": logits, "loss": loss}
"""


def test_shifted_logits_viewed_to_the_vocabulary_setting_are_a_head():
    assert finding_at(SHIFTED_SETTING_VIEW, "ADP015", "logits = self.lm_head(x)") is not None


def test_a_classifier_head_with_the_same_shift_is_not_a_vocabulary_head():
    code = SHIFTED_SETTING_VIEW.replace(
        "self.lm_head = nn.Linear(cfg.hidden_dim, cfg.vocab_size, bias=False)",
        "self.lm_head = nn.Linear(cfg.hidden_dim, cfg.num_classes, bias=False)",
    ).replace("view(-1, self.cfg.vocab_size)", "view(-1, self.cfg.num_classes)")
    assert found(code, "ADP015") == []


def test_the_slice_beside_an_unshifted_target_is_not_followed():
    code = SHIFTED_SETTING_VIEW.replace("labels[:, 1:].contiguous().view(-1)", "labels.view(-1)")
    assert found(code, "ADP015") == []


FALLBACK_AFTER_MODULE = """\
import torch
import torch.nn as nn


def make_norm(dim, eps):
    if hasattr(nn, "RMSNorm"):
        return nn.RMSNorm(dim, eps=eps)

    class _Fallback(nn.Module):
        def __init__(self):
            super().__init__()
            self.eps = eps
            self.weight = nn.Parameter(torch.ones(dim))

        def forward(self, x):
            norm = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)
            return norm.type_as(x) * self.weight

    return _Fallback()
"""

NEEDLE = "norm = x * torch.rsqrt"


def test_norm_after_returning_torch_rmsnorm_is_a_fallback():
    assert finding_at(FALLBACK_AFTER_MODULE, "ADP011", NEEDLE) is None


def test_the_same_norm_without_the_return_is_reported():
    code = FALLBACK_AFTER_MODULE.replace(
        '    if hasattr(nn, "RMSNorm"):\n        return nn.RMSNorm(dim, eps=eps)\n\n', "")
    assert finding_at(code, "ADP011", NEEDLE) is not None


def test_a_return_of_a_same_file_class_named_rmsnorm_is_no_fallback():
    code = FALLBACK_AFTER_MODULE.replace("return nn.RMSNorm(dim, eps=eps)", "return RMSNorm(dim, eps=eps)")
    assert finding_at(code, "ADP011", NEEDLE) is not None


def test_a_return_of_rmsnorm_through_a_project_module_named_nn_is_no_fallback():
    # ``nn`` is the project's own layers module: ``nn.RMSNorm`` is no torch module, so the
    # hand-written norm after it is the code that runs where that one is not taken -- reported
    code = FALLBACK_AFTER_MODULE.replace("import torch.nn as nn\n",
                                         "import torch\nimport torch.nn\nfrom mypkg import layers as nn\n", 1)
    code = code.replace("class _Fallback(nn.Module)", "class _Fallback(torch.nn.Module)")
    code = code.replace("nn.Parameter(", "torch.nn.Parameter(")
    assert "from mypkg import layers as nn" in code
    assert finding_at(code, "ADP011", NEEDLE) is not None
    # torch's module written in full (``torch.nn.RMSNorm``) is still the fallback's kernel
    full = code.replace("return nn.RMSNorm(dim, eps=eps)", "return torch.nn.RMSNorm(dim, eps=eps)")
    assert finding_at(full, "ADP011", NEEDLE) is None


def test_shifted_logits_regrouped_into_rows_of_another_size_are_no_head_and_loss():
    # one Linear to n_q * C codes per position (an embedding of that size makes it a vocabulary
    # head), its logits regrouped into rows of C, one per codebook: the cross-entropy's classes
    # are not the head's outputs, so no fused head-and-loss kernel computes it
    code = SHIFTED_SETTING_VIEW.replace("nn.Embedding(cfg.vocab_size, cfg.hidden_dim)",
                                        "nn.Embedding(cfg.n_q * cfg.codebook_size, cfg.hidden_dim)")
    code = code.replace("nn.Linear(cfg.hidden_dim, cfg.vocab_size, bias=False)",
                        "nn.Linear(cfg.hidden_dim, cfg.n_q * cfg.codebook_size, bias=False)")
    code = code.replace("x = self.embed(input_ids)", "x = self.embed(input_ids).sum(2)")
    regrouped = code.replace("view(-1, self.cfg.vocab_size)", "view(-1, self.cfg.codebook_size)")
    assert regrouped.count("codebook_size") == 3
    assert found(regrouped, "ADP015") == []
    # the same head flattened to its own width (the expression it is built with, or the sliced
    # logits' last size) is one
    own = code.replace("view(-1, self.cfg.vocab_size)", "view(-1, self.cfg.n_q * self.cfg.codebook_size)")
    assert finding_at(own, "ADP015", "logits = self.lm_head(x)") is not None
    sized = code.replace("logits[:, :-1].contiguous().view(-1, self.cfg.vocab_size)",
                         "logits[:, :-1].contiguous().view(-1, logits.size(-1))")
    assert finding_at(sized, "ADP015", "logits = self.lm_head(x)") is not None
