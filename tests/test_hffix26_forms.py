"""Forms from the dev corpus's known misses on newer Hugging Face files (transformers 4.45.2),
read by what the code computes, never by a name.  Our own fixtures, each with near-misses."""

from __future__ import annotations

import textwrap

from corpus_forms import finding_at, found, line_of, rules

from adopter.engine import analyze
from adopter.synth import fix_text
from adopter.synth.fixable import plan_findings


def edit(text: str, old: str, new: str) -> str:
    """``text`` with ``old`` replaced (which must be there: a near-miss that edits nothing tests nothing)."""
    assert old in text, old
    return text.replace(old, new)


# ---------- ADP005: element-wise dropout through a torch.autograd.Function (DeBERTa's form)

FUNCTION_DROPOUT = textwrap.dedent("""\
    import torch
    from torch import nn


    def draw_zeros(t, p):
        keep = torch.empty_like(t).bernoulli_(1 - p)
        return (1 - keep).to(torch.bool)


    class MaskedDrop(torch.autograd.Function):
        @staticmethod
        def forward(ctx, t, p):
            zeros = draw_zeros(t, p)
            ctx.factor = 1.0 / (1 - p)
            ctx.save_for_backward(zeros)
            return t.masked_fill(zeros, 0) * ctx.factor

        @staticmethod
        def backward(ctx, g):
            (zeros,) = ctx.saved_tensors
            return g.masked_fill(zeros, 0) * ctx.factor, None


    class RandomZero(nn.Module):
        def __init__(self, p):
            super().__init__()
            self.p = p

        def forward(self, t):
            if self.training and self.p > 0:
                return MaskedDrop.apply(t, self.p)
            return t


    class Out(nn.Module):
        def __init__(self, d, p):
            super().__init__()
            self.proj = nn.Linear(d, d)
            self.norm = nn.LayerNorm(d)
            self.drop = RandomZero(p)

        def forward(self, h, res):
            h = self.proj(h)
            h = self.drop(h)
            return self.norm(h + res)
""")
NORM_LINE = "return self.norm(h + res)"


def test_the_fixture_is_a_dropout():
    # what the test below relies on: eval is the identity; training zeroes elements at random
    # and scales the rest by 1 / (1 - p), with its own backward
    import torch

    ns: dict = {}
    exec(compile(FUNCTION_DROPOUT, "fixture.py", "exec"), ns)  # noqa: S102 (our own fixture)
    drop = ns["RandomZero"](0.25)
    x = torch.rand(64, 64, dtype=torch.float64) + 1.0
    drop.eval()
    assert torch.equal(drop(x), x)
    drop.train()
    torch.manual_seed(0)
    y = drop(x.requires_grad_())
    kept = y != 0
    assert 0.15 < 1 - kept.double().mean().item() < 0.35  # 4096 draws of p = 0.25
    torch.testing.assert_close(y[kept], x[kept] / 0.75, rtol=0, atol=1e-12)
    y.sum().backward()
    assert torch.equal(x.grad != 0, kept)


def test_a_function_dropout_module_before_the_residual_add():
    assert finding_at(FUNCTION_DROPOUT, "ADP005", NORM_LINE) is not None
    text = edit(FUNCTION_DROPOUT, "self.norm(h + res)", "self.norm(res + h)")
    assert finding_at(text, "ADP005", "return self.norm(res + h)") is not None


def test_reported_not_fixed():
    # its probability is an attribute of its own and its mask is the Function's
    planned = plan_findings(analyze(FUNCTION_DROPOUT, "model.py", rules("ADP005")), FUNCTION_DROPOUT, "model.py")
    assert len(planned) == 1 and not planned[0].fixable
    assert "torch.autograd.Function" in planned[0].not_fixable
    assert fix_text(FUNCTION_DROPOUT, "model.py", rules("ADP005")).text == FUNCTION_DROPOUT


def test_other_spellings_of_the_draw_and_the_rescale():
    # the draw inline, a comparison with uniform numbers; the rescale as a division
    text = edit(FUNCTION_DROPOUT, "zeros = draw_zeros(t, p)", "zeros = torch.rand_like(t) < p").replace(
        "return t.masked_fill(zeros, 0) * ctx.factor", "return t.masked_fill(zeros, 0) / (1 - p)")
    assert finding_at(text, "ADP005", NORM_LINE) is not None
    # the helper hands back the mask and the probability (DeBERTa's get_mask), a keep mask multiplied
    text = edit(FUNCTION_DROPOUT, "return (1 - keep).to(torch.bool)", "return keep, p").replace(
        "zeros = draw_zeros(t, p)", "zeros, q = draw_zeros(t, p)").replace(
        "ctx.factor = 1.0 / (1 - p)", "ctx.factor = 1.0 / (1 - q)").replace(
        "return t.masked_fill(zeros, 0) * ctx.factor", "return ctx.factor * (t * zeros)")
    assert finding_at(text, "ADP005", NORM_LINE) is not None


def test_no_rescale_is_no_dropout():
    text = edit(FUNCTION_DROPOUT, "return t.masked_fill(zeros, 0) * ctx.factor", "return t.masked_fill(zeros, 0)")
    assert found(text, "ADP005") == []


def test_another_rescale_is_no_dropout():
    text = edit(FUNCTION_DROPOUT, "ctx.factor = 1.0 / (1 - p)", "ctx.factor = 2.0")
    assert found(text, "ADP005") == []


def test_a_mask_that_is_not_drawn_at_random():
    # zeroing the negative elements: a function of the input, not a dropout
    text = edit(FUNCTION_DROPOUT, "zeros = draw_zeros(t, p)", "zeros = t < 0")
    assert found(text, "ADP005") == []


def test_a_draw_not_shaped_like_the_input():
    # one draw per row (a channel dropout), not per element
    text = edit(FUNCTION_DROPOUT, "torch.empty_like(t).bernoulli_(1 - p)",
                                    "torch.empty(t.shape[0], 1).bernoulli_(1 - p)")
    assert found(text, "ADP005") == []
    # a draw shaped like another tensor the helper is handed
    text = edit(FUNCTION_DROPOUT, "def draw_zeros(t, p):", "def draw_zeros(t, p, other):").replace(
        "torch.empty_like(t)", "torch.empty_like(other)").replace("draw_zeros(t, p)", "draw_zeros(t, p, ctx.ref)")
    assert found(text, "ADP005") == []


def test_zeroing_outside_training_is_no_dropout():
    # random zeroing in eval too: not the identity nn.Dropout is there
    text = edit(FUNCTION_DROPOUT, "if self.training and self.p > 0:", "if self.p > 0:")
    assert found(text, "ADP005") == []
    text = edit(FUNCTION_DROPOUT, """        if self.training and self.p > 0:
            return MaskedDrop.apply(t, self.p)
        return t""", """        return MaskedDrop.apply(t, self.p)""")
    assert found(text, "ADP005") == []


def test_a_function_returning_something_else_on_another_path():
    text = edit(FUNCTION_DROPOUT, """        zeros = draw_zeros(t, p)""", """        if p == 0:
            return t * 2
        zeros = draw_zeros(t, p)""")
    assert found(text, "ADP005") == []


# ---------- ADP015: the loss module held in a plain dict under a written-out key (lxmert's form)

DICT_LOSS = textwrap.dedent("""\
    import torch
    from torch import nn
    from torch.nn import CrossEntropyLoss, SmoothL1Loss


    class Pretrainer(nn.Module):
        def __init__(self, config):
            super().__init__()
            self.config = config
            self.tokens = nn.Embedding(config.vocab_size, config.hidden)
            self.body = nn.Linear(config.hidden, config.hidden)
            self.decoder = nn.Linear(config.hidden, config.vocab_size)
            self.pair = nn.Linear(config.hidden, 2)
            self.losses = {
                "smooth": SmoothL1Loss(reduction="none"),
                "ce": CrossEntropyLoss(),
            }

        def forward(self, ids, labels=None, pair_label=None):
            h = torch.tanh(self.body(self.tokens(ids)))
            scores = self.decoder(h)
            pair = self.pair(h[:, 0])
            total = 0.0
            if labels is not None:
                total = total + self.losses["ce"](scores.view(-1, self.config.vocab_size), labels.view(-1))
            if pair_label is not None:
                total = total + self.losses["ce"](pair.view(-1, 2), pair_label.view(-1))
            return total, scores
""")
DECODER_LINE = "scores = self.decoder(h)"


def test_a_cross_entropy_held_in_a_plain_dict():
    # one finding, at the vocabulary head: the 2-way head through the same loss is a
    # classification, not a vocabulary head
    assert [f.line for f in found(DICT_LOSS, "ADP015")] == [line_of(DICT_LOSS, DECODER_LINE)]


def test_another_loss_of_the_dict_is_no_cross_entropy():
    text = edit(DICT_LOSS, 'self.losses["ce"](scores', 'self.losses["smooth"](scores')
    assert found(text, "ADP015") == []


def test_a_key_chosen_at_run_time_is_not_read():
    text = edit(DICT_LOSS, "def forward(self, ids, labels=None, pair_label=None):",
                'def forward(self, ids, labels=None, pair_label=None, which="ce"):')
    text = edit(text, 'self.losses["ce"](scores', "self.losses[which](scores")
    assert found(text, "ADP015") == []


def test_a_dict_entry_that_is_not_a_loss_is_not_a_member():
    # a Linear in a plain dict is no submodule: `self.parts["head"]` is not typed as one
    text = edit(DICT_LOSS, '"smooth": SmoothL1Loss(reduction="none"),',
                '"head": nn.Linear(config.hidden, config.vocab_size),')
    text = edit(text, "scores = self.decoder(h)", 'scores = self.losses["head"](h)')
    assert found(text, "ADP015") == []
