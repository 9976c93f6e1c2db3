"""small78 (session 45): finding-side leftovers, each with its form and a look-alike.

(1) ADP015: a loss target that is a comparison of the input ids (``rearrange(ids > 0, ...)``)
is a mask of the ids, not the ids: the model does not predict its own input there.
(2) ADP008: a setting-picked norm module (``SetNorm(c, norm_type=norm_type)``) is read at its
parameter's default only when no construction in the file passes an undecided value for the
setting (``Block(8, norm_type=cfg.norm)``); a class handed on as a value keeps the default.
(3) ADP006: a comprehension over a list of the class's layers reads its loop name as the
list's member (research114) also when it is filtered (``if``), enumerated, sliced or zipped with
another list (each name its own list's member), as the statement loop does; a name bound to the
index, or to the other iterable of a ``zip``, stays unread.
Our own fixtures."""

from __future__ import annotations

import textwrap

from corpus_forms import finding_at, line_of

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
        'rearrange(~(ids == 0), "b n -> (b n)").long()',
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


# ---------- (3) ADP006: filtered / enumerated / zipped / sliced comprehensions over a layer list

HEADS = textwrap.dedent("""\
    import torch
    from torch import nn


    class Heads(nn.Module):
        def __init__(self, d, n):
            super().__init__()
            self.heads = nn.ModuleList(
                [nn.ModuleDict({"fc": nn.Linear(d, 4 * d), "act": ACT, "out": nn.Linear(4 * d, d)})
                 for _ in range(n)])
            self.mix = nn.ModuleList([nn.Linear(d, d) for _ in range(n)])
            self.used = [True] * n

        def forward(self, x, gates):
            outs = COMP
            return torch.stack(outs, 1).sum(1)
""")


def _heads(comp: str, act: str = "nn.GELU()") -> str:
    return HEADS.replace("COMP", comp).replace("ACT", act)


def _adp006(code: str) -> list:
    from corpus_forms import found
    return [f.line for f in found(code, "ADP006")]


def test_filtered_enumerated_zipped_comprehensions_read_the_member():
    for comp in (
        '[h["out"](h["act"](h["fc"](x))) for h in self.heads]',  # research114's form
        '[h["out"](h["act"](h["fc"](x))) for h in self.heads if h is not None]',
        '[h["out"](h["act"](h["fc"](x))) for i, h in enumerate(self.heads) if self.used[i]]',
        '[h["out"](h["act"](h["fc"](x))) * g for h, g in zip(self.heads, gates.unbind(1))]',
        '[m(h["out"](h["act"](h["fc"](x)))) for h, m in zip(self.heads, self.mix)]',
        '[h["out"](h["act"](h["fc"](x))) for h in self.heads[1:]]',
    ):
        code = _heads(comp)
        assert _adp006(code) == [line_of(code, "outs = ")], comp


def test_names_not_bound_to_the_members_stay_unread():
    for comp in (
        '[g["out"](g["act"](g["fc"](x))) for h, g in zip(self.heads, gates.unbind(1))]',  # g: the other iterable
        '[h["out"](h["act"](h["fc"](x))) for h, i in enumerate(self.heads)]',  # h: the index
        '[h["out"](h["act"](h["fc"](x))) for i, h in enumerate(self.used)]',  # a plain list of flags
    ):
        assert _adp006(_heads(comp)) == [], comp
    for comp in (
        '[h["out"](h["act"](h["fc"](x))) for h in self.heads if h is not None]',
        '[h["out"](h["act"](h["fc"](x))) for i, h in enumerate(self.heads)]',
        '[m(h["out"](h["act"](h["fc"](x)))) for h, m in zip(self.heads, self.mix)]',
    ):
        assert _adp006(_heads(comp, "nn.ReLU()")) == [], comp  # no GELU


def test_the_heads_fixture_runs():
    import torch

    from corpus_forms import load_fixture
    cls = load_fixture(_heads('[m(h["out"](h["act"](h["fc"](x)))) for h, m in zip(self.heads, self.mix)]'),
                       "Heads")
    torch.manual_seed(0)
    mod = cls(8, 3).double()
    x = torch.randn(2, 8, dtype=torch.float64)
    want = sum(m(h["out"](torch.nn.functional.gelu(h["fc"](x)))) for h, m in zip(mod.heads, mod.mix))
    torch.testing.assert_close(mod(x, torch.ones(2, 3, dtype=torch.float64)), want, rtol=1e-12, atol=1e-12)
