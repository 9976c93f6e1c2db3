"""Forms found while checking the blind batch research32 (vision and speech reimplementations:
windowed and channel attention, Conformer and VITS-style encoders, an icefall-style attention
decoder, a DINOv2-based segmenter).  The fixtures are ours.

- Projections bound by unpacking a comprehension in ``__init__`` (``self.q, self.k, self.v,
  self.o = (nn.Linear(dim, dim) for _ in range(4))``): each name holds one layer the
  comprehension builds, so three of them projecting one input are a fused-QKV site (ADP009).
  Near-misses: the comprehension builds convolutions, the projections read two inputs, or only
  two of the three are Linears built so.
- A vocabulary head module called with keywords only (``self.decoder(x=ys_in, x_lens=lens,
  memory=enc, memory_lens=enc_lens)``) whose logits go into ``F.cross_entropy`` (ADP015): the
  head's input need not be its first positional argument.  Near-misses: the same keyword call of
  a module that ends in a classifier (no token embedding, no vocabulary), and the vocabulary
  head's logits scored by a mean-squared error.
"""

from __future__ import annotations

from corpus_forms import finding_at, found

UNPACKED = """\
import torch.nn as nn


class Refiner(nn.Module):
    def __init__(self, dim=16, heads=4):
        super().__init__()
        self.h = heads
        self.norm = nn.LayerNorm(dim)
        BINDING

    def forward(self, x, y):
        n = self.norm(x)
        q, k, v = self.q(n), self.k(INPUT), self.v(n)
        return x + self.o((q @ k.transpose(-2, -1)).softmax(-1) @ v)
"""


def _unpacked(binding: str, key_input: str = "n") -> str:
    return UNPACKED.replace("BINDING", binding).replace("INPUT", key_input)


def test_projections_unpacked_from_a_generator_are_fused_qkv():
    code = _unpacked("self.q, self.k, self.v, self.o = (nn.Linear(dim, dim) for _ in range(4))")
    assert finding_at(code, "ADP009", "q, k, v = self.q(n), self.k(n), self.v(n)") is not None


def test_projections_unpacked_from_a_list_comprehension_are_fused_qkv():
    code = _unpacked("self.q, self.k, self.v, self.o = [nn.Linear(dim, dim, bias=False) for i in range(4)]")
    assert finding_at(code, "ADP009", "q, k, v = self.q(n), self.k(n), self.v(n)") is not None


def test_convolutions_unpacked_from_a_generator_are_not_linear_projections():
    code = _unpacked("self.q, self.k, self.v, self.o = (nn.Conv1d(dim, dim, 1) for _ in range(4))")
    assert found(code, "ADP009") == []


def test_unpacked_projections_of_two_inputs_are_not_one_input():
    code = _unpacked("self.q, self.k, self.v, self.o = (nn.Linear(dim, dim) for _ in range(4))", key_input="y")
    assert found(code, "ADP009") == []


def test_two_unpacked_linears_and_a_convolution_are_not_three_projections():
    code = _unpacked("self.q, self.k, self.o = (nn.Linear(dim, dim) for _ in range(3))\n"
                     "        self.v = nn.Conv1d(dim, dim, 1)")
    assert found(code, "ADP009") == []


DECODER = """\
import torch
import torch.nn.functional as F


class Decoder(torch.nn.Module):
    def __init__(self, vocab_size, d_model):
        super().__init__()
        EMBED
        self.layer = torch.nn.Linear(d_model, d_model)
        self.output_layer = torch.nn.Linear(d_model, OUT)

    def forward(self, x, x_lens=None, memory=None):
        x = INPUT
        x = self.layer(x) + memory.mean(1, keepdim=True)
        return self.output_layer(x)


class AttentionDecoderModel(torch.nn.Module):
    def __init__(self, vocab_size=32, d_model=16):
        super().__init__()
        self.decoder = Decoder(vocab_size=vocab_size, d_model=d_model)

    def score(self, ys_in, ys_lens, encoder_out, ys_out):
        decoder_out = self.decoder(
            x=ys_in,
            x_lens=ys_lens,
            memory=encoder_out,
        )
        batch_size, _, num_classes = decoder_out.size()
        per_token = LOSS
        return per_token.view(batch_size, -1)
"""

CE = 'F.cross_entropy(decoder_out.view(-1, num_classes), ys_out.view(-1), reduction="none")'


def _decoder(embed="self.embed = torch.nn.Embedding(vocab_size, d_model)", out="vocab_size",
             first="self.embed(x)", loss=CE) -> str:
    return DECODER.replace("EMBED", embed).replace("OUT", out).replace("INPUT", first).replace("LOSS", loss)


def test_vocabulary_head_called_with_keywords_only_then_cross_entropy():
    code = _decoder()
    finding = finding_at(code, "ADP015", "decoder_out = self.decoder(")
    assert finding is not None
    assert finding.line == code.splitlines().index("        decoder_out = self.decoder(") + 1


def test_classifier_called_with_keywords_only_is_not_a_vocabulary_head():
    code = _decoder(embed="self.num_labels = 3", out="3", first="x")
    assert found(code, "ADP015") == []


def test_vocabulary_head_called_with_keywords_scored_by_mse_is_no_cross_entropy():
    code = _decoder(loss='F.mse_loss(decoder_out.view(-1, num_classes), ys_out.view(-1, num_classes), reduction="none")')
    assert found(code, "ADP015") == []
