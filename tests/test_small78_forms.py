"""small78 (session 45): finding-side leftovers, each with its form and a look-alike.

(1) ADP015: a loss target that is a comparison of the input ids (``rearrange(ids > 0, ...)``)
is a mask of the ids, not the ids: the model does not predict its own input there.
(2) ADP008: a setting-picked norm module (``SetNorm(c, norm_type=norm_type)``) is read at its
parameter's default only when no construction in the file passes an undecided value for the
setting (``Block(8, norm_type=cfg.norm)``); a class handed on as a value keeps the default.
Our own fixtures."""

from __future__ import annotations

import textwrap

from corpus_forms import finding_at

# ---------- (1) ADP015: a comparison of the ids is a mask, not the ids

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
            flat = rearrange(logits, "b n v -> (b n) v")
            targets = TARGET
            return F.cross_entropy(flat, targets, reduction="none")
""")


def test_a_comparison_of_the_ids_is_no_token_target():
    for target in (
        'rearrange(ids > 0, "b n -> (b n)").long()',
        'rearrange(ids != 0, "b n -> (b n)").long()',
        'rearrange((ids > 0) == (ids < 5), "b n -> (b n)").long()',
        '(ids > 0).long().reshape(-1)',
    ):
        assert finding_at(SCORER.replace("TARGET", target), "ADP015", "# head") is None, target


def test_the_ids_themselves_stay_a_token_target():
    for target in (
        'rearrange(ids, "b n -> (b n)").long()',
        'rearrange(ids, "b n -> (b n)")',
        'ids.reshape(-1)',
    ):
        assert finding_at(SCORER.replace("TARGET", target), "ADP015", "# head") is not None, target


# ---------- (2) ADP008: a setting's default is no reading when a construction passes cfg.norm

SETNORM = textwrap.dedent("""\
    import torch
    from torch import nn


    class SetNorm(nn.Module):
        def __init__(self, channels, norm_type="batch_norm"):
            super().__init__()
            self.norm_type = norm_type
            if self.norm_type == "batch_norm":
                self.norm = nn.BatchNorm1d(channels)
            elif self.norm_type == "layer_norm":
                self.norm = nn.LayerNorm(channels)

        def forward(self, x):
            if self.norm_type == "batch_norm":
                out = self.norm(x)
            elif self.norm_type == "layer_norm":
                out = self.norm(x)
            return out


    class Block(nn.Module):
        def __init__(self, c, norm_type="batch_norm"):
            super().__init__()
            self.lin = nn.Linear(c, c)
            self.norm = SetNorm(c, norm_type=norm_type)

        def forward(self, x):
            return self.norm(self.lin(x))  # pair


""")


def _setnorm(holder: str) -> str:
    return SETNORM + textwrap.dedent(holder)


def test_an_undecided_setting_passed_leaves_the_norm_unread():
    for holder in (
        """\
        class Net(nn.Module):
            def __init__(self, cfg):
                super().__init__()
                self.b = Block(8, norm_type=cfg.norm)
        """,
        """\
        class Net(nn.Module):
            def __init__(self, cfg):
                super().__init__()
                kind = cfg["norm"]
                self.b = Block(8, kind)
        """,
        """\
        class Net(nn.Module):
            def __init__(self, c, kind="batch_norm"):
                super().__init__()
                self.b = Block(c, kind)


        class Top(nn.Module):
            def __init__(self, cfg):
                super().__init__()
                self.net = Net(8, kind=cfg.norm)
        """,
        """\
        class Net(nn.Module):
            def __init__(self, c, **kwargs):
                super().__init__()
                self.b = Block(c, **kwargs)
        """,
    ):
        assert finding_at(_setnorm(holder), "ADP008", "# pair") is None, holder


def test_a_setting_at_its_default_or_a_literal_is_still_read():
    for holder in (
        "",  # Block built by another file: its default
        """\
        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.b = Block(8)
        """,
        """\
        class Net(nn.Module):
            def __init__(self, c, kind="batch_norm"):
                super().__init__()
                self.b = Block(c, kind)


        class Top(nn.Module):
            def __init__(self):
                super().__init__()
                self.net = Net(8)
        """,
        """\
        def pick(flag):
            return Block if flag else nn.Identity


        class Net(nn.Module):
            def __init__(self, flag):
                super().__init__()
                self.b = pick(flag)(8)
        """,
    ):
        assert finding_at(_setnorm(holder), "ADP008", "# pair") is not None, holder
    # a LayerNorm setting is no BatchNorm to fold
    assert finding_at(_setnorm("""\
        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.b = Block(8, norm_type="layer_norm")
        """), "ADP008", "# pair") is None
