"""Forms found while checking the blind batch research89 (speech synthesis, vocoders and neural
audio codecs: xcodec2, OpenVoice, Vocex, e2-tts, DiffWave, Audio Flamingo).  The fixtures are
ours.

- ADP005: a post-norm layer whose self-attention helper returns its dropout on two paths
  (``return self.drop1(x)`` and ``return self.drop1(x), weights``), called from both branches
  of ``if need_weights`` before one ``norm1(x + attn)``, gave two findings at that LayerNorm
  (one per return line of the helper): the second was charged as a false positive.  Matches
  whose first step is inlined from a helper are now told apart by the line of the finding in
  the root (engine._first_line), so the two are one place.
Near-miss: the two dropout paths feeding two different LayerNorms stay two places.
"""

from __future__ import annotations

from corpus_forms import found, line_of

TWO_RETURNS = """\
import torch.nn as nn


class PostNormLayer(nn.Module):
    def __init__(self, d, heads=2, p=0.1):
        super().__init__()
        self.attn = nn.MultiheadAttention(d, heads, batch_first=True)
        self.drop1 = nn.Dropout(p)
        self.norm1 = nn.LayerNorm(d)

    def forward(self, x, need_weights=False):
        if not need_weights:
            attn = self._attend(x)
        else:
            attn, weights = self._attend(x, need_weights=True)
        x = self.norm1(x + attn)
        if need_weights:
            return x, weights
        return x

    def _attend(self, x, need_weights=False):
        if not need_weights:
            y = self.attn(x, x, x, need_weights=False)[0]
            return self.drop1(y)
        y, w = self.attn(x, x, x, need_weights=True)
        return self.drop1(y), w
"""


def test_helper_dropout_returned_on_two_paths_is_one_place():
    at = line_of(TWO_RETURNS, "x = self.norm1(x + attn)")
    hits = [f for f in found(TWO_RETURNS, "ADP005") if f.line <= at <= f.end_line]
    assert len(hits) == 1
    assert hits[0].line == at


def test_two_layer_norms_stay_two_places():
    code = TWO_RETURNS.replace(
        "        if not need_weights:\n            attn = self._attend(x)\n"
        "        else:\n            attn, weights = self._attend(x, need_weights=True)\n"
        "        x = self.norm1(x + attn)\n",
        "        if not need_weights:\n            attn = self._attend(x)\n            x = self.norm1(x + attn)\n"
        "        else:\n            attn, weights = self._attend(x, need_weights=True)\n"
        "            x = self.norm2(x + attn)\n",
    ).replace("        self.norm1 = nn.LayerNorm(d)\n",
              "        self.norm1 = nn.LayerNorm(d)\n        self.norm2 = nn.LayerNorm(d)\n")
    lines = {f.line for f in found(code, "ADP005")}
    assert lines == {line_of(code, "x = self.norm1(x + attn)"), line_of(code, "x = self.norm2(x + attn)")}
