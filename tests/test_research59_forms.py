"""Forms found while checking the blind batch research59 (research model code of speech,
diffusion, science and multimodal packages: scGPT, neuraloperator's CODA layer, SE(3)-
Transformer, Transfusion, Bark, RVC, ClimateLearn, chemprop).  The fixtures are ours.

- ADP006, missed: a head built as an attribute ModuleList, filled with ``append`` in a loop
  (Linear, GELU, ...), then turned into ``nn.Sequential(*self.head)`` (ClimateLearn's ViT
  decoder head).  A ModuleList bound to a local name was followed; one bound to ``self.<attr>``
  was not (layers.LayerTyper._walk: the assignment now starts the attribute's list, as
  ``self.blocks = []`` does).  Fixed as the container (FoldingSequential), the same output.
  Near-misses: a ReLU instead, a LayerNorm between, the ModuleList left as it is.
- ADP015, missed: ``F.nll_loss(rearrange(logits, "b n l -> b l n").log_softmax(dim=1), t)`` of a
  vocabulary head's logits (Transfusion's text loss): the pair is cross_entropy of the moved
  logits (torch defines it so).  The rule read nll_loss of a log_softmax only over flattened
  logits and cross_entropy only with the class axis moved; three alternatives now read the
  log_softmax over axis 1 after each move (an einops pattern, transpose(1, 2), transpose(-2, -1)).
  Near-misses: log_softmax over the last axis after the move (the positions), over axis 1
  without a move, and a masked_fill of the logits between the head and the loss.
"""
from __future__ import annotations

import textwrap

import torch
import torch.nn.functional as F
from corpus_forms import covered, found, rules
from einops import rearrange

from adopter.synth import fix_text

HEAD = textwrap.dedent("""\
    import torch
    from torch import nn


    class Decoder(nn.Module):
        def __init__(self, dim=16, out=4, depth=2):
            super().__init__()
            self.head = nn.ModuleList()
            for _ in range(depth):
                self.head.append(nn.Linear(dim, dim))
                self.head.append(ACT)
            self.head.append(nn.Linear(dim, out))
            self.head = nn.Sequential(*self.head)

        def forward(self, x):
            return self.head(x)
""")


def _head(act="nn.GELU()", before=None):
    code = HEAD
    if before is not None:
        code = code.replace("self.head.append(ACT)", "self.head.append(" + before + ")\n"
                            "            self.head.append(ACT)")
    return code.replace("ACT", act)


def test_attribute_module_list_appended_then_sequential():
    code = _head()
    assert covered(code, "self.head.append(nn.GELU())", "ADP006")


def test_attribute_module_list_fix_keeps_the_output():
    code = _head()
    fixed = fix_text(code, "model.py", rules("ADP006")).text
    assert "FoldingSequential(*self.head)" in fixed
    original, patched = {}, {}
    exec(compile(code, "orig.py", "exec"), original)  # noqa: S102 (our own fixture)
    exec(compile(fixed, "fixed.py", "exec"), patched)  # noqa: S102
    torch.manual_seed(0)
    a = original["Decoder"]().double().eval()
    b = patched["Decoder"]().double().eval()
    b.load_state_dict(a.state_dict(), strict=True)
    x = torch.randn(3, 5, 16, dtype=torch.float64)
    with torch.no_grad():
        # float64, three Linears of width 16: the fold only reorders a few adds
        torch.testing.assert_close(b(x), a(x), rtol=1e-12, atol=1e-12)


def test_attribute_module_list_near_misses():
    assert found(_head(act="nn.ReLU()"), "ADP006") == []
    assert found(_head(before="nn.LayerNorm(dim)"), "ADP006") == []
    # left a ModuleList (no Sequential), its members applied one by one: no container to fold
    looped = _head().replace("        self.head = nn.Sequential(*self.head)\n", "").replace(
        "return self.head(x)", "for m in self.head:\n            x = m(x) * 2\n        return x")
    assert "Sequential" not in looped
    assert found(looped, "ADP006") == []


LM = textwrap.dedent("""\
    import torch.nn.functional as F
    from torch import nn
    from einops import rearrange


    class TextLM(nn.Module):
        def __init__(self, num_tokens=10, dim=8):
            super().__init__()
            n = num_tokens + 2
            self.embed = nn.Embedding(n, dim)
            self.to_logits = nn.Linear(dim, n, bias=False)

        def forward(self, ids, labels):
            logits = self.to_logits(self.embed(ids))
            BETWEEN
            loss = F.nll_loss(MOVED.log_softmax(dim=DIM), labels, reduction="none")
            return loss.sum()
""")


def _lm(moved='rearrange(logits, "b n l -> b l n")', dim="1", between="pass"):
    return LM.replace("MOVED", moved).replace("DIM", dim).replace("BETWEEN", between)


def test_nll_of_log_softmax_over_the_moved_vocabulary_axis():
    for moved in ('rearrange(logits, "b n l -> b l n")', "logits.transpose(1, 2)",
                  "logits.transpose(-2, -1)"):
        assert covered(_lm(moved=moved), "logits = self.to_logits", "ADP015"), moved


def test_nll_of_log_softmax_near_misses():
    # over the positions (the last axis after the move), over axis 1 of unmoved logits
    assert found(_lm(dim="-1"), "ADP015") == []
    assert found(_lm(moved="logits", dim="1"), "ADP015") == []
    # the logits masked between the head and the loss
    assert found(_lm(between='logits = logits.masked_fill(ids[..., None] > 3, -1e4)'), "ADP015") == []


def test_nll_of_log_softmax_after_the_move_is_cross_entropy():
    # what the alternatives rely on: the moved pair computes cross_entropy over the vocabulary
    torch.manual_seed(0)
    logits = torch.randn(2, 5, 12, dtype=torch.float64)
    labels = torch.randint(0, 12, (2, 5))
    pair = F.nll_loss(rearrange(logits, "b n l -> b l n").log_softmax(dim=1), labels)
    ce = F.cross_entropy(logits.reshape(-1, 12), labels.reshape(-1))
    torch.testing.assert_close(pair, ce, rtol=1e-12, atol=1e-12)
