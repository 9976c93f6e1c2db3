"""Forms found missing while checking the blind batch corpus17a (language, speech, audio and
time-series research code from ten packages new to the corpus).  The fixtures are ours.

- ADP015: logits sliced along positions (``logits[:, :-1]``, the two leading axes of the 3-D
  logits) before the classes are moved to axis 1 (``rearrange(..., 'b n c -> b c n')``,
  ``transpose(1, 2)``) for the cross-entropy: the head is row-wise, the slice commutes with it.
- ADP015: a head picked from an ``nn.ModuleDict`` by a key chosen at run time
  (``self.to_logits[kind](h)``) when every member is a Linear to a vocabulary, one of them
  through an embedding built with ``n_eos = n + int(flag)`` (a local bound once).
- ADP006 / ADP015: a layer class bound once at module level as a ``functools.partial`` of an
  ``nn`` class (``Dense = partial(nn.Linear, bias=False)``) builds that class wherever the file
  calls it: in an ``nn.Sequential`` before a GELU, or as the head to the vocabulary.
"""

from __future__ import annotations

import textwrap

from corpus_forms import covered, findings

# ---------------------------------------------------------------- module-level partial layers

PARTIAL_LAYERS = textwrap.dedent("""\
    from functools import partial

    import torch
    from torch import nn
    import torch.nn.functional as F

    Dense = partial(nn.Linear, bias=False)
    Pointwise = partial(nn.Conv1d, kernel_size=1)
    Twice = partial(nn.Linear, bias=True)
    Twice = partial(nn.Linear, bias=False)


    class Block(nn.Module):
        def __init__(self, dim, hidden):
            super().__init__()
            self.net = nn.Sequential(nn.LayerNorm(dim), Dense(dim, hidden), nn.GELU(), Dense(hidden, dim))
            self.gate = nn.Sequential(Dense(dim, hidden), nn.SiLU())
            self.conv = nn.Sequential(Pointwise(dim, hidden), nn.GELU())
            self.again = nn.Sequential(Twice(dim, hidden), nn.GELU())

        def forward(self, x):
            return self.net(x) + self.gate(x).mean() + self.again(x)


    class TinyLM(nn.Module):
        def __init__(self, vocab, dim):
            super().__init__()
            self.emb = nn.Embedding(vocab, dim)
            self.block = Block(dim, 4 * dim)
            self.norm = nn.LayerNorm(dim)
            self.head = Dense(dim, vocab)

        def forward(self, ids, labels=None):
            h = self.norm(self.block(self.emb(ids)))
            logits = self.head(h)
            if labels is None:
                return logits
            logits = logits.transpose(1, 2)
            return F.cross_entropy(logits, labels)
""")


def test_module_level_partial_linear_before_gelu():
    assert covered(
        PARTIAL_LAYERS, "nn.LayerNorm(dim), Dense(dim, hidden), nn.GELU()", "ADP006"
    )


def test_module_level_partial_linear_head_with_cross_entropy():
    assert covered(PARTIAL_LAYERS, "logits = self.head(h)", "ADP015")


def test_module_level_partial_near_misses():
    # the partial Linear before a SiLU; a partial Conv1d before a GELU; a name bound twice at
    # module level (which partial it is depends on the order: not read)
    assert not covered(PARTIAL_LAYERS, "Dense(dim, hidden), nn.SiLU()", "ADP006")
    assert not covered(PARTIAL_LAYERS, "Pointwise(dim, hidden), nn.GELU()", "ADP006")
    assert not covered(PARTIAL_LAYERS, "Twice(dim, hidden), nn.GELU()", "ADP006")
    assert len(findings(PARTIAL_LAYERS, "ADP006")) == 1


def test_partial_rebound_through_global_is_not_read():
    code = PARTIAL_LAYERS + textwrap.dedent("""\


        def configure(bias):
            global Dense
            Dense = partial(nn.Linear, bias=bias) if bias else partial(nn.Conv1d, kernel_size=1)
    """)
    assert not findings(code, "ADP006")


# ---------------------------------------------------------------- ADP015: shifted, then classes first

SHIFTED_CLASSES_FIRST = textwrap.dedent("""\
    import torch
    from torch import nn
    import torch.nn.functional as F
    from einops import rearrange


    class SpeechLM(nn.Module):
        def __init__(self, vocab, dim, labels):
            super().__init__()
            self.emb = nn.Embedding(vocab, dim)
            self.body = nn.Linear(dim, dim)
            self.to_tokens = nn.Linear(dim, vocab, bias=False)
            self.tagger = nn.Linear(dim, labels)

        def forward(self, ids, target, tags):
            h = self.body(self.emb(ids))
            logits = self.to_tokens(h)
            logits = rearrange(logits[:, :-1], 'b n c -> b c n')
            loss = F.cross_entropy(logits, target)
            cut = self.to_tokens(h)
            cut = cut[..., :-1].transpose(1, 2)
            loss = loss + F.cross_entropy(cut, target)
            scores = self.tagger(h)
            scores = rearrange(scores[:, 1:], 'b n c -> b c n')
            return loss + F.cross_entropy(scores, tags)


    class TiedLM(nn.Module):
        def __init__(self, vocab, dim):
            super().__init__()
            self.emb = nn.Embedding(vocab, dim)

        def forward(self, ids, target):
            h = self.emb(ids)
            logits = F.linear(h, self.emb.weight)
            shifted = logits[:, :-1]
            return F.cross_entropy(shifted.transpose(1, 2), target)
""")


def test_head_logits_shifted_along_positions_then_classes_moved_first():
    assert covered(SHIFTED_CLASSES_FIRST, "logits = self.to_tokens(h)", "ADP015")
    assert covered(
        SHIFTED_CLASSES_FIRST, "logits = F.linear(h, self.emb.weight)", "ADP015"
    )


def test_shifted_classes_first_near_misses():
    # a slice of the class axis (drops a class); a tagger over labels (not the vocabulary)
    assert not covered(SHIFTED_CLASSES_FIRST, "cut = self.to_tokens(h)", "ADP015")
    assert not covered(SHIFTED_CLASSES_FIRST, "scores = self.tagger(h)", "ADP015")


# ---------------------------------------------------------------- ADP015: a head picked by a run-time key

KEYED_HEADS = textwrap.dedent("""\
    import torch
    from torch import nn
    import torch.nn.functional as F


    class TwoVocabLM(nn.Module):
        def __init__(self, n_speech, n_text, dim, n_tags, add_eos=True):
            super().__init__()
            n_speech_eos = n_speech + int(add_eos)
            speech_emb = nn.Embedding(n_speech_eos, dim)
            text_emb = nn.Embedding(n_text, dim)
            self.emb = nn.ModuleDict(dict(speech=speech_emb, text=text_emb))
            self.body = nn.Linear(dim, dim)
            self.heads = nn.ModuleDict(dict(speech=nn.Linear(dim, n_speech), text=nn.Linear(dim, n_text)))
            self.mixed = nn.ModuleDict(dict(speech=nn.Linear(dim, n_speech), tags=nn.Linear(dim, n_tags)))

        def forward(self, ids, target, kind="speech"):
            h = self.body(self.emb[kind](ids))
            to_logits = self.heads[kind]
            logits = to_logits(h)
            loss = F.cross_entropy(logits.transpose(1, 2), target)
            scores = self.mixed[kind](h)
            return loss + F.cross_entropy(scores.transpose(1, 2), target)


    class Rebound(nn.Module):
        def __init__(self, n, dim, n_other):
            super().__init__()
            n_all = n + 1
            n_all = n + n_other
            self.emb = nn.Embedding(n_all, dim)
            self.out = nn.Linear(dim, n)

        def forward(self, ids, target):
            logits = self.out(self.emb(ids))
            return F.cross_entropy(logits.transpose(1, 2), target)
""")


def test_head_picked_from_a_module_dict_by_a_runtime_key():
    # every member is a Linear to a vocabulary the file embeds with (one through
    # n_speech_eos = n_speech + int(add_eos))
    assert covered(KEYED_HEADS, "logits = to_logits(h)", "ADP015")


def test_keyed_head_near_misses():
    # one member maps to tags, not to a vocabulary; an embedding size bound twice
    assert not covered(KEYED_HEADS, "scores = self.mixed[kind](h)", "ADP015")
    assert not covered(KEYED_HEADS, "logits = self.out(self.emb(ids))", "ADP015")
    assert len(findings(KEYED_HEADS, "ADP015")) == 1
