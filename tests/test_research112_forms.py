"""Forms from research112's blind batch (robot learning, world models, multimodal adapters):
a SwiGLU whose one projection is cut by ``tensor_split(2, dim=-1)`` (voltron's SwishGLU), and
a caption scorer's vocabulary head whose shifted logits are flattened by einops
(``rearrange(logits[:, :-1, ...], "b n v -> (b n) v")``) against the shifted input ids.  Our
own fixtures, each with near-misses that must stay silent."""

from __future__ import annotations

import ast
import textwrap

import torch

from adopter.match import _complementary
from adopter.structure import model as model_mod
from adopter.structure.canon import slices_two_leading
from corpus_forms import finding_at, found

# ---------- ADP013: the two sections of tensor_split(2, dim=-1) are chunk(2, dim=-1)'s halves

GLU = textwrap.dedent("""\
    import torch
    from torch import nn


    class GatedUnit(nn.Module):
        def __init__(self, d, e):
            super().__init__()
            self.act, self.project = ACT, nn.Linear(d, 2 * e)

        def forward(self, x):
            projected, gate = SPLIT
            return projected * self.act(gate)  # product
""")


def _glu(split="self.project(x).tensor_split(2, dim=-1)", act="nn.SiLU()") -> str:
    return GLU.replace("SPLIT", split).replace("ACT", act)


def test_tensor_split_in_two_sections_is_read_as_the_halves():
    for split in (
        "self.project(x).tensor_split(2, dim=-1)",
        "self.project(x).tensor_split(2, -1)",
        "torch.tensor_split(self.project(x), 2, dim=-1)",
        "self.project(x).tensor_split(sections=2, dim=-1)",
    ):
        assert finding_at(_glu(split), "ADP013", "# product") is not None, split


def test_tensor_split_look_alikes_stay_silent():
    for split in (
        "self.project(x).tensor_split(2, dim=1)",  # another axis
        "self.project(x).tensor_split(3, dim=-1)[:2]",  # a third and a third
        "self.project(x).tensor_split(4, dim=-1)[1:3]",  # the middle quarters
    ):
        assert not found(_glu(split), "ADP013"), split
    assert not found(_glu(act="nn.GELU()"), "ADP013")  # a GELU gate (GeGLU)
    assert not found(_glu(act="nn.Sigmoid()"), "ADP013")  # a sigmoid gate (GLU)


def test_tensor_split_two_sections_equal_chunk_two_on_real_tensors():
    # the reading's premise, even and odd widths alike: the same two parts, element for element
    for width in (2, 7, 8, 129):
        x = torch.randn(3, 5, width)
        a, b = x.tensor_split(2, dim=-1)
        c, d = x.chunk(2, dim=-1)
        assert torch.equal(a, c) and torch.equal(b, d), width


# ---------- ADP015: shifted logits flattened by einops, scored against the shifted input ids

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
            flat = FLAT
            targets = TARGET
            return F.cross_entropy(flat, targets, reduction="none")
""")


def _scorer(flat='rearrange(logits[:, :-1, ...], "b n v -> (b n) v")',
            target='rearrange(ids[:, 1:], "b n -> (b n)")') -> str:
    return SCORER.replace("FLAT", flat).replace("TARGET", target)


def test_einops_flattened_shifted_logits_against_the_shifted_input_are_an_lm_head():
    for flat, target in (
        ('rearrange(logits[:, :-1, ...], "b n v -> (b n) v")', 'rearrange(ids[:, 1:], "b n -> (b n)")'),
        ('rearrange(logits[:, :-1], "b n v -> (b n) v")', 'ids[:, 1:].reshape(-1)'),
        ('rearrange(logits[..., :-1, :], "b n v -> (b n) v")', 'rearrange(ids[:, 1:], "b n -> (b n)")'),
        ('rearrange(logits, "b n v -> (b n) v")', 'rearrange(ids, "b n -> (b n)")'),
    ):
        assert finding_at(_scorer(flat, target), "ADP015", "# head") is not None, (flat, target)


def test_einops_flattened_logits_look_alikes_stay_silent():
    # a target given as its own argument (a token classifier's labels): nothing says the
    # classes are the input's tokens
    assert not found(_scorer(target='rearrange(labels[:, 1:], "b n -> (b n)")'), "ADP015")
    # the class axis merged with the positions: no row holds one position's classes
    assert not found(_scorer(flat='rearrange(logits[:, :-1, ...], "b n v -> b (n v)")'), "ADP015")
    # the head's input not computed from the ids
    code = _scorer().replace("text = x[:, -ids.shape[-1]:, ...]", "text = feats")
    assert not found(code, "ADP015")


def test_a_trailing_ellipsis_stands_for_no_axis_more():
    def sub(text):
        return ast.parse(text, mode="eval").body

    assert slices_two_leading(sub("x[:, :-1, ...]")) and slices_two_leading(sub("x[1:, ...]"))
    assert not slices_two_leading(sub("x[..., :-1]"))  # a leading ellipsis counts from the right
    assert not slices_two_leading(sub("x[:, :-1, ..., 0]"))  # an index after it
    assert not slices_two_leading(sub("x[...]"))  # no slice at all
    assert model_mod._lead_slice("y = x[:, :-1, ...]") and model_mod._lead_slice("y = x[:, :-1]")
    assert _complementary(":,:-1,...", ":,1:") and _complementary(":,:-1", ":,1:,...")
    assert not _complementary(":,:-1,...", ":,:-1") and not _complementary(":,:-1,...", "...,1:")
