"""Forms found missing while checking the blind batch corpus18a (language, speech, graphs, RL,
molecules and tabular research code from eleven packages new to the corpus).  The fixtures are
ours.

- ADP006: a layer taken from an object with a default, ``getattr(config, "activation",
  nn.GELU())``: the object's attribute if it has one, else the default -- read as a parameter's
  default is (what the object holds is not in the file), so a Linear before it in an
  ``nn.Sequential`` is a bias-GELU site.  The fix passes the module itself to the kernel, which
  runs whatever activation it is at run time.
- ADP015: LM heads passed to a helper method as arguments (``self.get_logits(h, self.text_head,
  ...)`` calling ``first_head(h)``), whose logits the helper returns as a tuple the caller unpacks
  (``text_logits, mel_logits = self.get_logits(...)``) and scores with a cross-entropy.  Two
  readings: a vocabulary head passed in is an alias of that layer in the helper, and a tuple a
  helper returns, unpacked at the call into as many names, binds each name to its element.
- ADP010: scores split into head groups, a term added to each part in a list comprehension,
  then concatenated back along the same axis (``g = s.split(n, dim=1); g = [b(p) + p for b, p in
  zip(self.biases, g)]; s = torch.cat(g, dim=1)``, tranception's per-group ALiBi): the scores
  plus the parts' terms, an additive bias.
"""

from __future__ import annotations

import textwrap

from corpus_forms import covered, findings, rules

from adopter.synth import fix_text

# ---------------------------------------------------------------- ADP006: getattr with a default

GETATTR_DEFAULT = textwrap.dedent("""\
    import torch
    from torch import nn


    class Mixer(nn.Module):
        def __init__(self, config, dim):
            super().__init__()
            activation = getattr(config, "activation", nn.GELU())
            gate = getattr(config, "gate", nn.SiLU())
            self.ff = nn.Sequential(nn.LayerNorm(dim), nn.Sequential(nn.Linear(dim, 4 * dim), activation,
                                    nn.Linear(4 * dim, dim)))
            self.gated = nn.Sequential(nn.Linear(dim, dim), gate)
            self.fc = nn.Linear(dim, 2 * dim)
            self.act = getattr(config, "act", nn.GELU())

        def forward(self, x):
            return self.ff(x) + self.gated(x) + self.act(self.fc(x)).mean()  # act
""")


def test_getattr_default_gelu_in_a_sequential_and_an_attribute():
    assert covered(GETATTR_DEFAULT, "nn.Linear(dim, 4 * dim), activation", "ADP006")
    assert covered(GETATTR_DEFAULT, "# act", "ADP006")


def test_getattr_default_near_misses():
    # a SiLU default is no GELU; nor is an attribute name computed at run time, nor an object
    # without a default (what it holds is not in the file)
    assert not covered(
        GETATTR_DEFAULT,
        "self.gated = nn.Sequential(nn.Linear(dim, dim), gate)",
        "ADP006",
    )
    assert len(findings(GETATTR_DEFAULT, "ADP006")) == 2
    computed = GETATTR_DEFAULT.replace(
        'getattr(config, "activation", nn.GELU())',
        "getattr(config, config.name, nn.GELU())",
    )
    assert not covered(computed, "nn.Linear(dim, 4 * dim), activation", "ADP006")
    bare = GETATTR_DEFAULT.replace(
        'getattr(config, "activation", nn.GELU())', 'getattr(config, "activation")'
    )
    assert not covered(bare, "nn.Linear(dim, 4 * dim), activation", "ADP006")


def test_getattr_default_fix_runs_what_the_object_holds():
    import torch

    fixed = fix_text(GETATTR_DEFAULT, "model.py", rules("ADP006"))
    assert fixed.error is None and "bias_gelu" in fixed.text

    class Config:
        pass

    relu = Config()
    relu.act = torch.nn.ReLU()  # the object's own activation, not the default
    for config in (Config(), relu):
        original, patched = {}, {}
        exec(compile(GETATTR_DEFAULT, "orig.py", "exec"), original)  # noqa: S102 (our own fixture)
        exec(compile(fixed.text, "fixed.py", "exec"), patched)  # noqa: S102
        torch.manual_seed(0)
        a = original["Mixer"](config, 16).double()
        torch.manual_seed(0)
        b = patched["Mixer"](config, 16).double()
        b.load_state_dict(a.state_dict(), strict=True)
        x = torch.randn(3, 5, 16, dtype=torch.float64)
        # float64, reductions over 16-64 features: eager and fused agree to rounding
        torch.testing.assert_close(b(x), a(x), rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------- ADP015: heads passed to a helper

HEADS_IN_A_HELPER = textwrap.dedent("""\
    import torch
    from torch import nn
    import torch.nn.functional as F


    class TwoStreamLM(nn.Module):
        def __init__(self, dim, num_text, num_codes, num_tags):
            super().__init__()
            self.text_embedding = nn.Embedding(num_text, dim)
            self.code_embedding = nn.Embedding(num_codes, dim)
            self.body = nn.GRU(dim, dim, batch_first=True)
            self.norm = nn.LayerNorm(dim)
            self.text_head = nn.Linear(dim, num_text)
            self.code_head = nn.Linear(dim, num_codes)
            self.tagger = nn.Linear(dim, num_tags)

        def streams(self, first, first_head, second=None, second_head=None, latent=False):
            enc, _ = self.body(torch.cat([first, second], dim=1) if second is not None else first)
            enc = self.norm(enc)
            if latent:
                return enc[:, :first.shape[1]], enc[:, first.shape[1]:]
            first_logits = first_head(enc[:, :first.shape[1]])  # first
            first_logits = first_logits.permute(0, 2, 1)
            if second is None:
                return first_logits
            second_logits = second_head(enc[:, first.shape[1]:])  # second
            second_logits = second_logits.permute(0, 2, 1)
            return first_logits, second_logits

        def forward(self, text, codes, text_targets, code_targets, text_first=True):
            text_emb = self.text_embedding(text)
            code_emb = self.code_embedding(codes)
            if text_first:
                text_logits, code_logits = self.streams(text_emb, self.text_head, code_emb, self.code_head)
            else:
                code_logits, text_logits = self.streams(code_emb, self.code_head, text_emb, self.text_head)
            loss_text = F.cross_entropy(text_logits, text_targets)
            loss_code = F.cross_entropy(code_logits, code_targets)
            return loss_text, loss_code, code_logits


    class Tagger(nn.Module):
        def __init__(self, dim, num_text, num_tags):
            super().__init__()
            self.text_embedding = nn.Embedding(num_text, dim)
            self.tagger = nn.Linear(dim, num_tags)

        def scores(self, h, head):
            logits = head(h).transpose(1, 2)  # tags
            return logits, h

        def forward(self, text, tags):
            logits, _ = self.scores(self.text_embedding(text), self.tagger)
            return F.cross_entropy(logits, tags)
""")


def test_vocabulary_heads_passed_to_a_helper_returning_a_tuple():
    assert covered(HEADS_IN_A_HELPER, "# first", "ADP015")
    assert covered(HEADS_IN_A_HELPER, "# second", "ADP015")


def test_a_tagger_passed_to_a_helper_is_no_lm_head():
    # a Linear to labels, not to a vocabulary the file embeds: a classification head
    assert not covered(HEADS_IN_A_HELPER, "# tags", "ADP015")
    assert len(findings(HEADS_IN_A_HELPER, "ADP015")) == 2


def test_unpacked_tuple_of_another_length_is_not_read_element_wise():
    # three names unpacking a helper that returns pairs: no element binds to any of them
    code = HEADS_IN_A_HELPER.replace(
        "text_logits, code_logits = self.streams(text_emb, self.text_head, code_emb, self.code_head)",
        "text_logits, code_logits, _ = self.streams(text_emb, self.text_head, code_emb, self.code_head)",
    ).replace(
        "code_logits, text_logits = self.streams(code_emb, self.code_head, text_emb, self.text_head)",
        "code_logits, text_logits, _ = self.streams(code_emb, self.code_head, text_emb, self.text_head)",
    )
    assert not findings(code, "ADP015")


def test_unpacked_tuple_elements_keep_their_order():
    # the helper returns (hidden, logits): the name bound to the hidden states is no LM head's
    code = textwrap.dedent("""\
        import torch
        from torch import nn
        import torch.nn.functional as F


        class SwappedLM(nn.Module):
            def __init__(self, dim, vocab):
                super().__init__()
                self.emb = nn.Embedding(vocab, dim)
                self.head = nn.Linear(dim, vocab)

            def run(self, h, head):
                return h, head(h).transpose(1, 2)

            def forward(self, ids, target):
                logits, h = self.run(self.emb(ids), self.head)
                return F.cross_entropy(logits, target)
    """)
    assert not findings(code, "ADP015")
    assert (
        len(
            findings(
                code.replace("logits, h = self.run", "h, logits = self.run"), "ADP015"
            )
        )
        == 1
    )


# ---------------------------------------------------------------- ADP010: a bias added per head group

GROUPED_BIAS = textwrap.dedent("""\
    import torch
    from torch import nn, einsum
    from einops import rearrange


    class Slopes(nn.Module):
        def __init__(self, heads):
            super().__init__()
            self.slopes = nn.Parameter(torch.ones(heads, 1, 1))

        def forward(self, sim):
            i, j = sim.shape[-2:]
            pos = torch.arange(j, device=sim.device)[None, :] - torch.arange(i, device=sim.device)[:, None]
            return -pos.abs() * self.slopes


    class GroupedAttention(nn.Module):
        def __init__(self, dim, heads=8, groups=4, dim_head=16):
            super().__init__()
            self.heads, self.groups = heads, groups
            self.scale = dim_head ** -0.5
            self.to_qkv = nn.Linear(dim, heads * dim_head * 3, bias=False)
            self.biases = nn.ModuleList([Slopes(heads // groups) for _ in range(groups)])
            self.to_out = nn.Linear(heads * dim_head, dim)

        def forward(self, x):
            q, k, v = self.to_qkv(x).chunk(3, dim=-1)
            q, k, v = map(lambda t: rearrange(t, "b n (h d) -> b h n d", h=self.heads), (q, k, v))
            sim = einsum("b h i d, b h j d -> b h i j", q * self.scale, k)
            parts = sim.split(self.heads // self.groups, dim=1)
            parts = [bias(part) + part for bias, part in zip(self.biases, parts)]
            sim = torch.cat(parts, dim=1)
            attn = sim.softmax(dim=-1)  # softmax
            out = einsum("b h i j, b h j d -> b h i d", attn, v)
            return self.to_out(rearrange(out, "b h n d -> b n (h d)"))
""")


def test_bias_added_per_head_group_then_concatenated():
    assert covered(GROUPED_BIAS, "# softmax", "ADP010")
    # the same with torch.split and the part first in the sum
    other = GROUPED_BIAS.replace(
        "parts = sim.split(self.heads // self.groups, dim=1)",
        "parts = torch.split(sim, self.heads // self.groups, dim=1)",
    ).replace("[bias(part) + part for", "[part + bias(part) for")
    assert covered(other, "# softmax", "ADP010")


def test_grouped_parts_near_misses():
    # concatenated along another axis; each part scaled, not shifted; a term that is not added
    # to the part; the scores reassigned between the split and the concatenation
    variants = [
        GROUPED_BIAS.replace("torch.cat(parts, dim=1)", "torch.cat(parts, dim=2)"),
        GROUPED_BIAS.replace("[bias(part) + part for", "[bias(part) * part for"),
        GROUPED_BIAS.replace("[bias(part) + part for", "[bias(part) + 1.0 for"),
        GROUPED_BIAS.replace(
            "        sim = torch.cat(parts, dim=1)\n",
            "        sim = sim * 2\n        sim = torch.cat(parts, dim=1)\n",
        ),
    ]
    assert all(code != GROUPED_BIAS for code in variants)
    for code in variants:
        assert not covered(code, "# softmax", "ADP010"), code
