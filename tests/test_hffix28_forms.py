"""Forms of the known Hugging Face misses (session 24, hffix28): a floor of the attention
scores at their dtype's minimum before the softmax; one dropout and add before a LayerNorm on
either branch; global-token attention whose scores are transposed and transposed back around
an in-place write, and probabilities reshaped after the attention.  Our own fixtures, each with
near-misses."""

from __future__ import annotations

import textwrap

from corpus_forms import finding_at, float64_pair, found, line_of, rules

from adopter.synth import fix_text

# ---------- ADP010: scores floored at their dtype's minimum before the softmax

FLOORED = textwrap.dedent("""\
    import torch
    from torch import nn


    class Attention(nn.Module):
        def __init__(self, d=16, h=2):
            super().__init__()
            self.h, self.dh = h, d // h
            self.q = nn.Linear(d, d, bias=False)
            self.k = nn.Linear(d, d, bias=False)
            self.v = nn.Linear(d, d, bias=False)
            self.p = 0.0

        def heads(self, x):
            b, n, _ = x.shape
            return x.view(b, n, self.h, self.dh).transpose(1, 2)

        def forward(self, x, mask):
            q, k, v = self.heads(self.q(x)), self.heads(self.k(x)), self.heads(self.v(x))
            scores = torch.matmul(q, k.transpose(3, 2))
            scores += mask
            scores = FLOOR
            weights = nn.functional.softmax(scores, dim=-1, dtype=torch.float32).type_as(scores)
            weights = nn.functional.dropout(weights, p=self.p, training=self.training)
            out = torch.matmul(weights, v)
            return out.transpose(1, 2).flatten(2)
""")


def floored(floor: str) -> str:
    return FLOORED.replace("FLOOR", floor)


FLOORS = [
    "torch.max(scores, torch.tensor(torch.finfo(scores.dtype).min))",
    "torch.maximum(scores, torch.tensor(torch.finfo(scores.dtype).min, device=scores.device))",
    "torch.clamp(scores, min=torch.finfo(scores.dtype).min)",
    "scores.clamp(min=torch.finfo(scores.dtype).min)",
    "scores.clamp_min(torch.finfo(scores.dtype).min)",
]


def test_scores_floored_at_their_dtype_minimum_are_attention():
    # every finite score is at or above the floor: the softmax differs only on a row whose
    # every key is at the minimum (fully masked), as the additive finfo.min mask's rows already do
    for floor in FLOORS:
        assert finding_at(floored(floor), "ADP010", "weights = nn.functional.softmax") is not None, floor


def test_floors_that_cut_finite_scores_are_not_attention():
    for floor in [
        "torch.max(scores, torch.tensor(0.0))",  # a ReLU of the scores
        "torch.max(scores, torch.tensor(-5.0))",  # a floor inside the range
        "torch.max(scores, torch.tensor(torch.finfo(scores.dtype).max))",  # every score the maximum
        "torch.max(scores, torch.tensor(torch.finfo(torch.float16).min))",  # another dtype's minimum
        "torch.max(scores, torch.tensor(torch.finfo(mask.dtype).min))",  # another tensor's dtype
        "torch.max(scores, mask)",  # a tensor floor
        "torch.clamp(scores, max=torch.finfo(scores.dtype).min)",  # a ceiling
        "scores.clamp(torch.finfo(scores.dtype).min, 0.0)",  # a ceiling at 0 too
        "scores.clamp_max(torch.finfo(scores.dtype).min)",
        "torch.max(scores, torch.tensor(torch.finfo(scores.dtype).min, requires_grad=True))",
    ]:
        assert found(floored(floor), "ADP010") == [], floor


def test_floored_scores_fixed_and_the_same():
    import torch

    for floor in (FLOORS[0], FLOORS[3]):
        code = floored(floor)
        fixed = fix_text(code, "model.py", rules("ADP010")).text
        assert "scaled_dot_product_attention(" in fixed, floor
        assert "finfo(scores.dtype).min)" not in fixed.split("scaled_dot_product_attention(")[1].split("else")[0]
        a, b = float64_pair(code, fixed, "Attention")
        a.eval(), b.eval()
        x = torch.randn(3, 5, 16, dtype=torch.float64)
        mask = torch.zeros(3, 1, 1, 5, dtype=torch.float64)
        mask[0, ..., 3:] = torch.finfo(torch.float64).min
        # the original's softmax runs in float32 (its dtype=): probabilities rounded to float32
        # (relative 6e-8) over 5 keys of values of order 1, then the float64 product: 1e-6
        with torch.no_grad():
            torch.testing.assert_close(b(x, mask), a(x, mask), rtol=1e-6, atol=1e-6)
        # float32 (the softmax's own dtype: a float64 minimum would cast to -inf in it), a row
        # of the first batch fully masked: the minimum absorbs every score, uniform in both
        a, b, x = a.float(), b.float(), x.float()
        mask = torch.zeros(3, 1, 1, 5)
        mask[0, ..., 3:] = torch.finfo(torch.float32).min
        mask[1] = torch.finfo(torch.float32).min
        # float32, 8-wide dot products, 5-key softmax: a few ulps of values of order 1
        with torch.no_grad():
            torch.testing.assert_close(b(x, mask), a(x, mask), rtol=1e-5, atol=1e-5)


# ---------- ADP005: one dropout and add, a LayerNorm on each branch: one finding spanning both

BRANCHED = textwrap.dedent("""\
    import torch
    from torch import nn


    class Output(nn.Module):
        def __init__(self, d=16, own=False, reuse=True):
            super().__init__()
            self.dense = nn.Linear(d, d)
            self.norm = nn.LayerNorm(d)
            self.drop = nn.Dropout(0.1)
            self.own_norm = nn.LayerNorm(d) if own else None
            self.reuse = reuse

        def forward(self, h, res):
            h = self.drop(self.dense(h))
            h = h + res
            if self.own_norm is not None:
                h = self.own_norm(h)
            elif self.reuse:
                SECOND
            return h
""")


def test_one_dropout_add_before_either_of_two_layernorms_is_one_finding_over_both():
    # the sum reaches a LayerNorm on either path (a flag picks which): one place, whose
    # finding reaches the second path's norm too, and the fix rewrites both paths
    code = BRANCHED.replace("SECOND", "h = self.norm(h)")
    (finding,) = found(code, "ADP005")
    assert finding.line <= line_of(code, "h = self.own_norm(h)") <= finding.end_line
    assert finding.line <= line_of(code, "h = self.norm(h)") <= finding.end_line
    fixed = fix_text(code, "model.py", rules("ADP005")).text
    assert fixed.count("h = dropout_add_layer_norm(") == 2


def test_a_branch_whose_sum_is_read_again_is_not_spanned():
    # on the second path the sum is also the residual after the norm: no fusion there, so
    # the one finding ends at the first path's norm
    code = BRANCHED.replace("SECOND", "h = self.norm(h) + h")
    (finding,) = found(code, "ADP005")
    assert finding.end_line < line_of(code, "h = self.norm(h) + h")
    # no LayerNorm on the second path: the same
    code = BRANCHED.replace("SECOND", "h = torch.tanh(h)")
    (finding,) = found(code, "ADP005")
    assert finding.end_line < line_of(code, "h = torch.tanh(h)")


# ---------- ADP010: scores transposed and back around an in-place write; probabilities reshaped

GLOBAL = textwrap.dedent("""\
    import torch
    from torch import nn


    class GlobalAttention(nn.Module):
        def __init__(self, heads=2, p=0.0):
            super().__init__()
            self.heads = heads
            self.p = p

        def forward(self, q, k, v, empty, padded, head_mask=None):
            return self.attend(q, k, v, empty, padded, head_mask)

        def attend(self, q, k, v, empty, padded, head_mask):
            b, n = padded.shape[0], q.shape[1]
            s = torch.bmm(q, k.transpose(1, 2))
            s = s.view(b, self.heads, n, -1)
            s = s.transpose(1, 2)
            s[empty[0], empty[1], :, :] = torch.finfo(s.dtype).min
            s = s.transpose(1, 2)
            s = s.masked_fill(padded[:, None, None, :], torch.finfo(s.dtype).min)
            s = s.view(b * self.heads, n, -1)
            w = nn.functional.softmax(s, dim=-1, dtype=torch.float32)
            if head_mask is not None:
                w = head_mask.view(1, -1, 1, 1) * w.view(b, self.heads, n, -1)
                w = w.view(b * self.heads, n, -1)
            w = nn.functional.dropout(w.type_as(s), p=self.p, training=self.training)
            out = torch.bmm(w, v)
            AFTER
            return out, w
""")


def global_attention(after: str = "w = w.view(b, self.heads, n, -1)") -> str:
    return GLOBAL.replace("AFTER", after)


def test_scores_transposed_and_back_around_an_index_write_are_attention_declined_by_the_fix():
    # the two transposes of the same axes cancel; the write of rows (empty global slots) is a
    # mask the fused call has no argument for: reported, and the fix declines it
    code = global_attention()
    assert finding_at(code, "ADP010", "w = nn.functional.softmax(s") is not None
    result = fix_text(code, "model.py", rules("ADP010"))
    assert result.text == code
    assert any("index assignment" in str(note) for note in result.skipped), result.skipped


def test_transposes_that_do_not_cancel_are_not_attention():
    lines = global_attention().splitlines(keepends=True)
    second = [i for i, text in enumerate(lines) if text.strip() == "s = s.transpose(1, 2)"][1]
    # the second transpose over other axes: the heads end up elsewhere
    other = lines[second].replace("(1, 2)", "(2, 3)")
    assert found("".join(lines[:second] + [other] + lines[second + 1:]), "ADP010") == []
    # one transpose only: the view back mixes heads and queries
    assert found("".join(lines[:second] + lines[second + 1:]), "ADP010") == []


def test_probabilities_reshaped_after_the_attention_are_passed_on():
    # ``w = w.view(...)`` then returned: the values passed on in another shape (as a plain
    # return is): the site stays; what is computed with the reshaped value still counts.
    # (research43: their sum or mean over an axis, handed back, is handed back too -- the TFT's
    # head-averaged probabilities; a maximum over the heads stays computation here)
    code = global_attention("w = w.reshape(b, self.heads, n, -1).transpose(1, 2)")
    assert finding_at(code, "ADP010", "w = nn.functional.softmax(s") is not None
    code = global_attention("w = w.view(b, self.heads, n, -1).sum(dim=1)")
    assert finding_at(code, "ADP010", "w = nn.functional.softmax(s") is not None
    for after in ["w = w.view(b, self.heads, n, -1).amax(dim=1)",
                  "w = w.view(b, self.heads, n, -1) * 2",
                  "w = torch.log(w.view(b, self.heads, n, -1))"]:
        assert found(global_attention(after), "ADP010") == [], after


PLAIN = textwrap.dedent("""\
    import torch
    from torch import nn


    class Attention(nn.Module):
        def forward(self, q, k, v):
            s = torch.matmul(q, k.transpose(-1, -2))
            p = s.softmax(dim=-1)
            o = torch.matmul(p, v)
            AFTER
            return o, p
""")


def test_plain_attention_whose_probabilities_are_reshaped_and_returned():
    code = PLAIN.replace("AFTER", "p = p.flatten(1)")
    assert len(found(code, "ADP010")) == 1
    # read on every call: the fix declines with the reason (no flag skips the probabilities)
    result = fix_text(code, "model.py", rules("ADP010"))
    assert result.text == code
    assert any("unconditionally" in str(note) for note in result.skipped), result.skipped
    assert found(PLAIN.replace("AFTER", "p = p.flatten(1).max(dim=-1).values"), "ADP010") == []
    # permuted, made contiguous, viewed, then multiplied by relative-position values (a second
    # product of the probabilities): computed with, through the copy
    assert found(PLAIN.replace("AFTER", "p = p.permute(2, 0, 1, 3).contiguous().view(4, -1, 8) @ v"),
                 "ADP010") == []
    assert found(PLAIN.replace("AFTER", "o = o + torch.matmul(p.detach().flatten(1), v)"), "ADP010") == []


# ---------- ADP015: a head multiplying by a decoder weight stacked over another weight

STACKED = textwrap.dedent("""\
    import torch
    from torch import nn
    from torch.nn import CrossEntropyLoss


    class Embeddings(nn.Module):
        def __init__(self, config):
            super().__init__()
            self.tokens = nn.Embedding(config.vocab_size, config.embedding_size)

        def forward(self, ids):
            return self.tokens(ids)


    class PredictionHead(nn.Module):
        def __init__(self, config):
            super().__init__()
            self.transform = nn.Linear(config.hidden_size, config.hidden_size)
            self.extra = nn.Linear(config.vocab_size, config.hidden_size - config.embedding_size, bias=False)
            self.decoder = nn.Linear(config.embedding_size, DECODER_OUT, bias=False)
            self.bias = nn.Parameter(torch.zeros(config.vocab_size))

        def forward(self, h):
            h = torch.tanh(self.transform(h))
            h = PRODUCT
            h += self.decoder.bias
            return h


    class ForMaskedLM(nn.Module):
        def __init__(self, config):
            super().__init__()
            self.config = config
            self.embeddings = Embeddings(config)
            self.up = nn.Linear(config.embedding_size, config.hidden_size)
            self.cls = PredictionHead(config)

        def forward(self, ids, labels=None):
            scores = self.cls(self.up(self.embeddings(ids)))
            loss = None
            if labels is not None:
                loss = CrossEntropyLoss()(scores.view(-1, self.DECODER_OUT), labels.view(-1))
            return loss, scores
""")

STACK = "h.matmul(torch.cat([self.decoder.weight.t(), self.extra.weight], dim=0))"


def stacked(product: str = STACK, decoder_out: str = "config.vocab_size") -> str:
    return STACKED.replace("PRODUCT", product).replace("DECODER_OUT", decoder_out)


def test_head_times_a_decoder_weight_stacked_over_another_is_a_vocabulary_head():
    # cat along the rows keeps the decoder's output columns: logits over the vocabulary the
    # decoder projects to (the size the file embeds tokens with)
    for product in (STACK, "h @ torch.cat((self.decoder.weight.T, self.extra.weight), 0)",
                    "torch.matmul(h, self.decoder.weight.t())"):
        assert finding_at(stacked(product), "ADP015", "scores = self.cls(") is not None, product


def test_stacked_weight_near_misses():
    # concatenated along the columns: another width
    assert found(stacked(STACK.replace("dim=0", "dim=1")), "ADP015") == []
    # the decoder's weight not transposed: its columns are its inputs
    assert found(stacked("h.matmul(torch.cat([self.decoder.weight, self.decoder.weight], dim=0))"), "ADP015") == []
    # a decoder to a size the file embeds nothing with (the loss flattening over that size)
    assert found(stacked(decoder_out="config.num_labels"), "ADP015") == []
    # a computed value added in place after the product: not the head's logits
    code = stacked().replace("h += self.decoder.bias", "h += self.transform(h)")
    assert found(code, "ADP015") == []
