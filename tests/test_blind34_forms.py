"""Forms found while checking the blind batch blind34 (three newer Hugging Face model files,
three research reimplementations, three CNN files).  The fixtures are ours.

- Attention whose probabilities go through a step that only a setting of the module turns on
  (area attention's optional top-k renormalisation, ``if self.top_k_areas > 0:`` with
  ``top_k_areas`` assigned once in ``__init__``): on the path the default settings take the
  code is ``softmax(q k^T / t) -> dropout -> @ v``, which SDPA reproduces, so the site is
  reported (ADP010, like ADP013's ``setting_paths``); since rafix53 it is also rewritten, the
  guard sending the setting's test to the original path, where the top-k step runs.  Near-misses: the same step under
  ``if self.training:`` (a mode switched per call), under a test of a call argument, with
  no ``if`` at all (the step runs on every path), under a setting another method assigns, and
  a module handed the probabilities under a setting (a token sampler: a layer the fixer would
  have to prove an identity, as for talking heads).
"""

from __future__ import annotations

from corpus_forms import finding_at, found

from adopter.engine import analyze
from adopter.ruleset import load_rules, select_rules
from adopter.synth.fixable import plan_findings

RULES = load_rules()

# --------------------------------------------------------------------------- ADP010

AREA_ATTENTION = """\
import numpy as np
import torch
from torch import nn


class AreaAttention(nn.Module):
    def __init__(self, key_query_size, dropout_rate=0.0, top_k_areas=0):
        super().__init__()
        self.dropout = nn.Dropout(p=dropout_rate)
        self.top_k_areas = top_k_areas
        self.area_temperature = np.power(key_query_size, 0.5)

    def forward(self, q, k, v, top_k=0):
        logits = torch.matmul(q, k.transpose(1, 2))
        logits = logits / self.area_temperature
        weights = logits.softmax(dim=-1)
TOPK
        weights = self.dropout(weights)
        return torch.matmul(weights, v)
"""

TOPK_STEP = """\
            top = min(weights.size(-1), self.top_k_areas)
            top_weights, _ = weights.topk(top)
            min_values, _ = torch.min(top_weights, dim=-1, keepdim=True)
            weights = torch.where(weights >= min_values, weights, torch.zeros_like(weights))
            weights /= weights.sum(dim=-1, keepdim=True)"""


def _with(test: str | None) -> str:
    if test is None:
        body = "\n".join(line[4:] for line in TOPK_STEP.splitlines())
        return AREA_ATTENTION.replace("TOPK", body)
    return AREA_ATTENTION.replace("TOPK", f"        if {test}:\n{TOPK_STEP}")


def test_renormalisation_only_a_setting_turns_on_leaves_an_attention_site():
    code = _with("self.top_k_areas > 0")
    assert finding_at(code, "ADP010", "weights = logits.softmax(") is not None
    # the top-k step stays on the other path: the guard sends the setting's test to the
    # original (rafix53; reported, not fixed, before)
    planned = plan_findings(analyze(code, "model.py", select_rules(RULES, ["ADP010"])), code, "model.py")
    assert len(planned) == 1 and planned[0].fixable


def test_renormalisation_under_the_training_mode_is_no_site():
    assert found(_with("self.training"), "ADP010") == []


def test_renormalisation_chosen_by_a_call_argument_is_no_site():
    assert found(_with("top_k > 0"), "ADP010") == []


def test_renormalisation_on_every_path_is_no_site():
    assert found(_with(None), "ADP010") == []


def test_setting_changed_outside_init_is_no_site():
    code = _with("self.top_k_areas > 0") + """
    def sparsify(self, k):
        self.top_k_areas = k
"""
    assert found(code, "ADP010") == []


def test_probabilities_handed_to_a_module_under_a_setting_are_no_site():
    # a layer handed the probabilities (a token sampler, talking heads) would have to be proved
    # an identity at run time: no site even when a setting turns it on
    code = AREA_ATTENTION.replace("top_k_areas=0):", "top_k_areas=0, sampler=None):").replace(
        "self.top_k_areas = top_k_areas", "self.top_k_areas = top_k_areas\n        self.sampler = sampler"
    ).replace("TOPK", "        if self.sampler is not None:\n            weights = self.sampler(weights, v)")
    assert found(code, "ADP010") == []
