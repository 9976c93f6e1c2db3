"""ADP015: a head the same file scores as a vocabulary head, used again over rows a mask picks
(session 39, helper misses58; lead ruling, session 39).  The fixtures are ours.

A same-file head module ending in a Linear (or a Linear attribute) is shown to be a vocabulary
head by one use: its logits shifted against the next element of the sequence.  The same head,
called in another forward over the masked positions only (``self.head(h[labels != -100])``,
or ``logits[mask]`` after it) into a cross-entropy, is the masked model's loss over the same
vocabulary: the selected logits are (rows, vocabulary), so the loss is over the head's own
output axis, and the fused linear cross-entropy takes any rows.

Near-misses: the same masked form where no use of the head is scored as a vocabulary head (a
classifier over selected rows); another head class than the one scored; an index over another
axis (``h[:, m]``); the head's 3-D logits straight into the loss (no rows picked); a mask
that does not pick the target's rows (``hidden[keep]``, keep over the batch axis alone).
"""

from __future__ import annotations

import textwrap

from corpus_forms import found, line_of

HEAD = textwrap.dedent("""\
    import torch
    from torch import nn
    from torch.nn.functional import cross_entropy, gelu


    class ClusterHead(nn.Module):
        def __init__(self, config):
            super().__init__()
            self.dense = nn.Linear(config.hidden_size, config.hidden_size)
            self.norm = nn.LayerNorm(config.hidden_size)
            self.decoder = nn.Linear(config.hidden_size, config.cluster_vocab_size, bias=False)
            self.bias = nn.Parameter(torch.zeros(config.cluster_vocab_size))

        def forward(self, features):
            x = self.norm(gelu(self.dense(features)))
            x = self.decoder(x) + self.bias
            return x


    class OtherHead(nn.Module):
        def __init__(self, config):
            super().__init__()
            self.out = nn.Linear(config.hidden_size, config.cluster_vocab_size)

        def forward(self, features):
            return self.out(features)
""")

CAUSAL = textwrap.dedent("""\


    class NextCluster(nn.Module):
        def __init__(self, config, backbone):
            super().__init__()
            self.backbone = backbone
            self.head = ClusterHead(config)

        def forward(self, feats, labels=None):
            scores = self.head(self.backbone(feats))
            loss = None
            if labels is not None:
                flat = scores[:, :-1, :].contiguous().view(-1, scores.shape[-1])
                labels = labels[:, 1:].contiguous().view(-1)
                loss = cross_entropy(flat, labels)
            return loss, scores
""")

MASKED = textwrap.dedent("""\


    class MaskedCluster(nn.Module):
        def __init__(self, config, backbone):
            super().__init__()
            self.backbone = backbone
            self.head = HEAD_CLASS(config)

        def forward(self, feats, labels=None):
            hidden = self.backbone(feats)
            loss = None
            if labels is not None:
                SELECTION
                labels = labels[labels != -100]
                loss = cross_entropy(scores, labels)
            else:
                scores = self.head(hidden)
            return loss, scores
""")

BEFORE = "hidden = hidden[labels != -100]\n            scores = self.head(hidden)  # masked head"
INLINE = "scores = self.head(hidden[labels != -100])  # masked head"
AFTER = "scores = self.head(hidden)  # masked head\n            scores = scores[labels != -100]"


def code(selection: str = BEFORE, causal: bool = True, head_class: str = "ClusterHead") -> str:
    masked = MASKED.replace("SELECTION", selection).replace("HEAD_CLASS", head_class)
    return HEAD + (CAUSAL if causal else "") + masked


def lines(text: str) -> set:
    return {f.line for f in found(text, "ADP015")}


def test_masked_rows_of_a_head_scored_on_the_next_element_found():
    text = code()
    shifted = line_of(text, "scores = self.head(self.backbone(feats))")
    masked = line_of(text, "# masked head")
    assert lines(text) == {shifted, masked}


def test_rows_picked_inside_the_call_and_after_the_head():
    for selection in (INLINE, AFTER):
        text = code(selection)
        assert line_of(text, "# masked head") in lines(text), selection


def test_no_vocabulary_use_in_the_file_leaves_it_alone():
    # a classifier over selected rows: nothing in the file scores the head as a vocabulary head
    for selection in (BEFORE, INLINE, AFTER):
        assert found(code(selection, causal=False), "ADP015") == []


def test_another_head_class_is_not_made_a_vocabulary_head():
    text = code(head_class="OtherHead")
    assert lines(text) == {line_of(text, "scores = self.head(self.backbone(feats))")}


def test_a_selection_over_another_axis_or_no_rows_is_no_site():
    masked = lambda text: line_of(text, "# masked head") in lines(text)  # noqa: E731
    assert not masked(code("scores = self.head(hidden[:, labels[0] != -100])  # masked head"))
    assert not masked(code("scores = self.head(hidden)  # masked head"))
    assert not masked(code("scores = self.head(hidden)  # masked head\n            scores = scores[:, :-1, :]"))


def keep_mask(selection: str, target: str) -> str:
    """The masked use with rows picked by a mask argument ``keep`` and the target line given."""
    text = code(selection)
    head, _, tail = text.rpartition("def forward(self, feats, labels=None):")
    tail = tail.replace("labels = labels[labels != -100]", target)
    return head + "def forward(self, feats, labels=None, keep=None):" + tail


def test_a_mask_that_picks_the_target_rows_too_is_a_site():
    for selection in ("scores = self.head(hidden[keep])  # masked head",
                      "scores = self.head(hidden)  # masked head\n            scores = scores[keep]"):
        text = keep_mask(selection, "labels = labels[keep]")
        assert line_of(text, "# masked head") in lines(text), selection
    inline = keep_mask("scores = self.head(hidden[keep])  # masked head", "pass").replace(
        "cross_entropy(scores, labels)", "cross_entropy(scores, labels[keep])")
    assert line_of(inline, "# masked head") in lines(inline)


def test_a_mask_the_target_is_not_selected_by_is_no_site():
    # (session 39, review42) ``hidden[keep]`` with keep over the batch axis alone keeps 3-D
    # logits (b, T, V): a cross-entropy of them takes the positions for the classes.  Only a
    # mask that also picks the target's rows (``labels[keep]``) or compares the target itself
    # (``labels != -100``) says the rows are the flattened positions.
    masked = lambda text: line_of(text, "# masked head") in lines(text)
    for selection in ("scores = self.head(hidden[keep])  # masked head",
                      "scores = self.head(hidden)  # masked head\n            scores = scores[keep]"):
        assert not masked(keep_mask(selection, "pass")), selection
        assert not masked(keep_mask(selection, "labels = labels[other]")), selection
    # a comparison of something else than the target
    assert not masked(keep_mask("scores = self.head(hidden[keep > 0])  # masked head", "pass"))
