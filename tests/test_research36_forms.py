"""Forms found missing while checking the blind batch research36 (GPT/LLaMA/MaxViT/MLA
reimplementations from eight packages new to the corpus).  The fixtures are ours.

- ADP015: the causal shift written on the first two axes of the 3-D logits (``logits[:, :-1]``)
  then flattened to rows of the unsliced logits' own last size (``.reshape(-1,
  logits.size(-1))``, maybe ``.float()``): rows of that size are positions' logits only if the
  slice kept the last axis whole, so the loss is per position over the vocabulary (a tied
  ``F.linear(h, emb.weight)`` head or a Linear to the embedding's size).
- ADP015: a head Sequential whose last member is, or may be by a flag, ``nn.Identity``
  (``Scale(s) if tie_embedding else nn.Identity()``): on that path the Linear before it gives
  the logits; and a head Sequential built as ``nn.Sequential(...) if flag else None`` (None
  cannot be called, so a call runs the Sequential; its members are read).
- ADP014: the halves of a rotate-half cut at ``d // 2`` where ``d = x.size(-1)`` is bound on a
  line of its own.
"""

from __future__ import annotations

import textwrap

from corpus_forms import covered, findings

# ---------------------------------------------------------------- ADP015: lead2 slice, flattened

SHIFTED = textwrap.dedent("""\
    import torch
    from torch import nn
    import torch.nn.functional as F


    class TiedLM(nn.Module):
        def __init__(self, vocab, dim):
            super().__init__()
            self.wte = nn.Embedding(vocab, dim)
            self.ln_f = nn.LayerNorm(dim)

        def forward(self, ids, labels=None):
            x = self.ln_f(self.wte(ids))
            logits = F.linear(x, self.wte.weight)
            loss = F.cross_entropy(logits[:, :-1].reshape(-1, logits.size(-1)).float(), labels[:, 1:].reshape(-1))
            return {"logits": logits, "loss": loss}


    class HeadLM(nn.Module):
        def __init__(self, vocab, dim):
            super().__init__()
            self.emb = nn.Embedding(vocab, dim)
            self.lm_head = nn.Linear(dim, vocab, bias=False)

        def forward(self, ids, labels):
            logits = self.lm_head(self.emb(ids))
            return F.cross_entropy(logits[:, :-1].reshape(-1, logits.size(-1)), labels[:, 1:].reshape(-1))


    class FixedWidth(nn.Module):
        def __init__(self, vocab, dim):
            super().__init__()
            self.emb = nn.Embedding(vocab, dim)
            self.out = nn.Linear(dim, vocab, bias=False)

        def forward(self, ids, labels):
            scores = self.out(self.emb(ids))
            return F.cross_entropy(scores[:, :-1].reshape(-1, 512), labels[:, 1:].reshape(-1))


    class OtherWidth(nn.Module):
        def __init__(self, vocab, dim):
            super().__init__()
            self.emb = nn.Embedding(vocab, dim)
            self.proj = nn.Linear(dim, vocab, bias=False)

        def forward(self, ids, labels, other):
            z = self.proj(self.emb(ids))
            return F.cross_entropy(z[:, :-1].reshape(-1, other.size(-1)), labels[:, 1:].reshape(-1))


    class Classifier(nn.Module):
        def __init__(self, vocab, dim, classes):
            super().__init__()
            self.emb = nn.Embedding(vocab, dim)
            self.cls = nn.Linear(dim, classes)

        def forward(self, ids, labels):
            y = self.cls(self.emb(ids))
            return F.cross_entropy(y[:, :-1].reshape(-1, y.size(-1)), labels[:, 1:].reshape(-1))
""")


def test_tied_head_sliced_on_leading_axes_then_flattened_to_its_width():
    assert covered(SHIFTED, "logits = F.linear(x, self.wte.weight)", "ADP015")


def test_linear_head_sliced_on_leading_axes_then_flattened_to_its_width():
    assert covered(SHIFTED, "logits = self.lm_head(self.emb(ids))", "ADP015")
    assert len(findings(SHIFTED, "ADP015")) == 2  # the two heads, none of the look-alikes


def test_leading_slice_near_misses():
    # flattened to a literal or another tensor's width: nothing says the slice kept the
    # vocabulary axis whole; a Linear to a class count that is no embedding's size: no head
    assert not covered(SHIFTED, "scores = self.out(self.emb(ids))", "ADP015")
    assert not covered(SHIFTED, "z = self.proj(self.emb(ids))", "ADP015")
    assert not covered(SHIFTED, "y = self.cls(self.emb(ids))", "ADP015")


# ---------------------------------------------------------------- ADP015: Sequential heads

SEQUENTIAL_HEADS = textwrap.dedent("""\
    from functools import partial

    import torch
    from torch import nn
    import torch.nn.functional as F
    from einops import rearrange

    LinearNoBias = partial(nn.Linear, bias=False)


    class Scale(nn.Module):
        def __init__(self, scale):
            super().__init__()
            self.scale = scale

        def forward(self, x):
            return x * self.scale


    class FlagScaled(nn.Module):
        def __init__(self, num_tokens, dim, tie_embedding=True):
            super().__init__()
            self.token_emb = nn.Embedding(num_tokens, dim)
            self.to_logits = nn.Sequential(
                nn.RMSNorm(dim),
                LinearNoBias(dim, num_tokens),
                Scale(dim ** -0.5) if tie_embedding else nn.Identity(),
            )

        def forward(self, x, labels):
            logits = self.to_logits(self.token_emb(x))
            return F.cross_entropy(rearrange(logits, "b n v -> b v n"), labels)


    class Optional(nn.Module):
        def __init__(self, num_tokens, dim):
            super().__init__()
            self.token_emb = nn.Embedding(num_tokens, dim)
            self.to_logits = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, num_tokens)) if num_tokens else None

        def forward(self, x, labels):
            logits = self.to_logits(self.token_emb(x))
            return F.cross_entropy(logits.transpose(1, 2), labels)


    class Softmaxed(nn.Module):
        def __init__(self, num_tokens, dim):
            super().__init__()
            self.token_emb = nn.Embedding(num_tokens, dim)
            self.to_probs = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, num_tokens), nn.Softmax(dim=-1))

        def forward(self, x, labels):
            probs = self.to_probs(self.token_emb(x))
            return F.cross_entropy(probs.transpose(1, 2), labels)


    class EitherHead(nn.Module):
        def __init__(self, num_tokens, dim, small=False):
            super().__init__()
            self.token_emb = nn.Embedding(num_tokens, dim)
            self.to_out = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, num_tokens)) if small else nn.Linear(dim, 3)

        def forward(self, x, labels):
            out = self.to_out(self.token_emb(x))
            return F.cross_entropy(out.transpose(1, 2), labels)
""")


def test_head_sequential_ending_in_a_flag_scale_or_identity():
    assert covered(SEQUENTIAL_HEADS, 'rearrange(logits, "b n v -> b v n")', "ADP015")


def test_head_sequential_or_none():
    assert covered(SEQUENTIAL_HEADS, "logits.transpose(1, 2), labels)", "ADP015")
    assert len(findings(SEQUENTIAL_HEADS, "ADP015")) == 2  # the two heads, none of the look-alikes


def test_sequential_head_near_misses():
    # a Sequential ending in a softmax (the loss of probabilities: no logits); a Sequential
    # head or a 3-way Linear chosen by a flag (not None: the other arm is another layer)
    assert not covered(SEQUENTIAL_HEADS, "probs.transpose(1, 2), labels)", "ADP015")
    assert not covered(SEQUENTIAL_HEADS, "out.transpose(1, 2), labels)", "ADP015")


# ---------------------------------------------------------------- ADP014: half width bound alone

ROPE = textwrap.dedent("""\
    import torch
    from torch import nn


    def apply_rope(x, cos, sin):
        head_dim = x.size(-1)
        x1 = x[..., : head_dim // 2]
        x2 = x[..., head_dim // 2 :]
        rotated = torch.cat((-x2, x1), dim=-1)
        roped = (x * cos) + (rotated * sin)
        return roped.to(dtype=x.dtype)


    def apply_other(x, cos, sin):
        width = x.size(1)
        x1 = x[..., : width // 2]
        x2 = x[..., width // 2 :]
        rotated = torch.cat((-x2, x1), dim=-1)
        return (x * cos) + (rotated * sin)


    def apply_table(x, cos, sin):
        width = cos.size(-1)
        x1 = x[..., : width // 2]
        x2 = x[..., width // 2 :]
        rotated = torch.cat((-x2, x1), dim=-1)
        return (x * cos) + (rotated * sin)


    class Attention(nn.Module):
        def __init__(self, dim, n):
            super().__init__()
            self.qkv = nn.Linear(dim, 3 * dim, bias=False)
            self.n = n

        def forward(self, x, cos, sin):
            q, k, v = self.qkv(x).chunk(3, dim=-1)
            q_roped = apply_rope(q[..., : self.n], cos, sin)
            k_roped = apply_rope(k[..., : self.n], cos, sin)
            q = torch.cat((q_roped, q[..., self.n :]), dim=-1)
            k = torch.cat((k_roped, k[..., self.n :]), dim=-1)
            return q, k, v


    class Other(nn.Module):
        def forward(self, q, k, cos, sin):
            return apply_other(q, cos, sin), apply_other(k, cos, sin)


    class Table(nn.Module):
        def forward(self, q, k, cos, sin):
            return apply_table(q, cos, sin), apply_table(k, cos, sin)
""")


def test_rotate_half_cut_at_half_a_width_bound_from_the_last_axis():
    assert covered(ROPE, "roped = (x * cos) + (rotated * sin)", "ADP014")
    assert len(findings(ROPE, "ADP014")) == 1  # the one helper, none of the look-alikes


def test_rotate_half_width_near_misses():
    # the width of another axis, or of another tensor (the table's): not x's last axis halved
    lines = ROPE.splitlines()
    other = lines.index("def apply_other(x, cos, sin):") + 1
    table = lines.index("def apply_table(x, cos, sin):") + 1
    found = findings(ROPE, "ADP014")
    assert not any(other <= f.line <= other + 5 for f in found)
    assert not any(table <= f.line <= table + 5 for f in found)
