"""Which layers compute logits over the vocabulary (adopter/structure/layers.py mark_lm_heads):
the file's data flow decides (the size its token embedding is built with), not the names."""

from __future__ import annotations

import ast
import textwrap

from adopter.structure import module_structure
from adopter.structure.layers import LM_HEAD


def _heads(code: str, loss: bool = True) -> dict[str, set[str]]:
    # LM heads are only looked for in files that compute a cross-entropy
    text = textwrap.dedent(code) + ("\nLOSS = nn.CrossEntropyLoss()\n" if loss else "")
    module = module_structure(ast.parse(text), None, text)
    return {name: {attr for attr, ctors in cls.bindings.items() if any(c.fqn == LM_HEAD for c in ctors)}
            for name, cls in module.classes.items() if cls.info is not None}


def test_a_linear_to_the_size_an_embedding_is_built_with_is_a_head_whatever_the_names():
    heads = _heads("""
        from torch import nn

        class M(nn.Module):
            def __init__(self, cfg, k):
                super().__init__()
                self.table = nn.Embedding(cfg.n, cfg.d)
                self.a = nn.Linear(cfg.d, cfg.n)
                self.b = nn.Linear(cfg.d, out_features=cfg.n)
                self.c = nn.Linear(cfg.d, cfg.d)
                self.e = nn.Linear(cfg.d, k)
    """)
    assert heads["M"] == {"a", "b"}


def test_self_attributes_are_read_as_the_values_init_gave_them():
    heads = _heads("""
        from torch import nn

        class M(nn.Module):
            def __init__(self, params):
                super().__init__()
                self.params = params
                self.size = params.vocab
                self.tok = nn.Embedding(params.vocab, params.dim)
                self.out = nn.Linear(params.dim, self.size)
                self.out2 = nn.Linear(params.dim, self.params.vocab)
                self.other = nn.Linear(params.dim, self.params.dim)
    """)
    assert heads["M"] == {"out", "out2"}


def test_the_embedding_may_be_in_another_class_or_a_container_and_num_embeddings_counts():
    heads = _heads("""
        from torch import nn

        class Stem(nn.Module):
            def __init__(self, config):
                super().__init__()
                self.layers = nn.ModuleDict(dict(wte=nn.Embedding(config.vocab, config.d)))

        class LM(nn.Module):
            def __init__(self, config, shared):
                super().__init__()
                self.stem = Stem(config)
                self.lm = nn.Linear(config.d, config.vocab, bias=False)
                self.tied = nn.Linear(config.d, shared.num_embeddings)
                self.cls = nn.Linear(config.d, config.labels)
    """)
    assert heads["LM"] == {"lm", "tied"}
    assert heads["Stem"] == set()


def test_small_literal_sizes_are_not_a_vocabulary_large_ones_are():
    heads = _heads("""
        from torch import nn

        class M(nn.Module):
            def __init__(self, d):
                super().__init__()
                self.seg = nn.Embedding(2, d)
                self.tok = nn.Embedding(50257, d)
                self.nsp = nn.Linear(d, 2)
                self.lm = nn.Linear(d, 50257)
    """)
    assert heads["M"] == {"lm"}


def test_no_embedding_no_head():
    heads = _heads("""
        from torch import nn

        class M(nn.Module):
            def __init__(self, cfg):
                super().__init__()
                self.lm_head = nn.Linear(cfg.d, cfg.vocab_size)
    """)
    assert heads["M"] == set()


def test_local_head_modules_and_sequentials_ending_in_a_head_are_heads():
    heads = _heads("""
        from torch import nn

        class Predict(nn.Module):
            def __init__(self, c):
                super().__init__()
                self.dense = nn.Linear(c.d, c.d)
                self.decoder = nn.Linear(c.d, c.n)

            def forward(self, x):
                x = self.dense(x)
                x = self.decoder(x)
                return x

        class OnlyHead(nn.Module):
            def __init__(self, c):
                super().__init__()
                self.predictions = Predict(c)

            def forward(self, x):
                return self.predictions(x)

        class NotHead(nn.Module):
            def __init__(self, c):
                super().__init__()
                self.decoder = nn.Linear(c.d, c.n)

            def forward(self, x):
                y = self.decoder(x)
                y = y.softmax(-1)
                return y

        class Model(nn.Module):
            def __init__(self, c):
                super().__init__()
                self.emb = nn.Embedding(c.n, c.d)
                self.cls = OnlyHead(c)
                self.probs = NotHead(c)
                self.seq = nn.Sequential(nn.Linear(c.d, c.d), nn.GELU(), nn.Linear(c.d, c.n))
                self.seq2 = nn.Sequential(nn.Linear(c.d, c.n), nn.GELU())
    """)
    assert heads["Predict"] == {"decoder"}
    assert heads["OnlyHead"] == {"predictions"}
    assert heads["NotHead"] == {"decoder"}
    assert heads["Model"] == {"cls", "seq"}


def test_files_without_a_cross_entropy_are_not_searched_for_heads():
    code = """
        from torch import nn

        class M(nn.Module):
            def __init__(self, n, d):
                super().__init__()
                self.tok = nn.Embedding(n, d)
                self.lm = nn.Linear(d, n)
    """
    assert _heads(code)["M"] == {"lm"}
    assert _heads(code, loss=False)["M"] == set()


def test_a_head_module_returning_the_vocabulary_logits_first_in_a_pair():
    from adopter.structure.layers import LM_HEAD_FIRST

    code = """
        from torch import nn

        class Predict(nn.Module):
            def __init__(self, c):
                super().__init__()
                self.decoder = nn.Linear(c.d, c.n)

            def forward(self, x):
                return self.decoder(x)

        class First(nn.Module):
            def __init__(self, c):
                super().__init__()
                self.predictions = Predict(c)
                self.pair = nn.Linear(c.d, 2)

            def forward(self, x, pooled):
                scores = self.predictions(x)
                pair = self.pair(pooled)
                return scores, pair

        class Second(First):
            def forward(self, x, pooled):
                scores = self.predictions(x)
                pair = self.pair(pooled)
                return pair, scores

        class Model(nn.Module):
            def __init__(self, c):
                super().__init__()
                self.emb = nn.Embedding(c.n, c.d)
                self.first = First(c)
                self.second = Second(c)
    """
    text = textwrap.dedent(code) + "\nLOSS = nn.CrossEntropyLoss()\n"
    module = module_structure(ast.parse(text), None, text)
    kinds = {attr: [c.fqn for c in ctors] for attr, ctors in module.classes["Model"].bindings.items()}
    assert kinds["first"] == ["First", LM_HEAD_FIRST]
    # (Second returns the 2-way pair first: no vocabulary head; only a Linear-ending head
    # marker, which says nothing about the vocabulary)
    assert [k for k in kinds["second"] if k in (LM_HEAD, LM_HEAD_FIRST)] == []


def _adp015_lines(code: str) -> list[int]:
    from adopter.engine import analyze
    from adopter.ruleset import load_rules

    rules = [r for r in load_rules() if r.id == "ADP015"]
    return sorted(f.line for f in analyze(textwrap.dedent(code), "m.py", rules).findings)


SHIFTED = """
    from torch import nn

    class LM(nn.Module):
        def __init__(self, n, d):
            super().__init__()
            self.emb = nn.Embedding(n, d)
            self.head = nn.Linear(d, n, bias=False)

        def forward(self, ids, labels):
            logits = self.head(self.emb(ids))
            shifted = logits{index}.contiguous()
            loss = nn.functional.cross_entropy(shifted.view(-1, shifted.size(-1)), labels[:, 1:].reshape(-1))
            return loss, logits
"""


def test_shifted_logits_rows_selected_with_the_vocabulary_axis_whole_are_followed():
    for index in ("[..., :-1, :]", "[:, :-1, :]", "[:, 1:, :]", "[..., : n - 1, :]"):
        assert _adp015_lines(SHIFTED.replace("{index}", index)) == [11], index


def test_a_subscript_that_touches_the_vocabulary_axis_or_indexes_is_not_followed():
    # the last axis sliced (part of the classes), an integer index, a new axis, a lone slice
    for index in ("[..., :-1]", "[:, :-1, :100]", "[:, 0, :]", "[:, None, :]", "[:-1]", "[..., :-1, ::2]"):
        assert _adp015_lines(SHIFTED.replace("{index}", index)) == [], index


def test_shifted_logits_of_a_classifier_are_not_a_vocabulary_loss():
    code = SHIFTED.replace("self.head = nn.Linear(d, n, bias=False)", "self.head = nn.Linear(d, 7)")
    assert _adp015_lines(code.replace("{index}", "[:, :-1, :]")) == []


TIED = """
    import torch
    import torch.nn.functional as F
    from torch import nn

    class LM(nn.Module):
        def __init__(self, n, d):
            super().__init__()
            self.emb = nn.Embedding(n, d)
            self.proj = nn.Linear(d, d)

        def forward(self, ids, labels):
            h = self.emb(ids)
            logits = {logits}
            return F.cross_entropy(logits.view(-1, logits.size(-1)), labels.view(-1))
"""


def test_a_matmul_with_the_transposed_weight_of_an_embedding_is_a_tied_head():
    for spelling in ("h @ self.emb.weight.t()", "h @ self.emb.weight.T", "torch.matmul(h, self.emb.weight.mT)",
                     "h @ self.emb.weight.transpose(0, 1)", "h @ torch.transpose(self.emb.weight.to(h.dtype), -1, -2)",
                     "F.linear(h, self.emb.weight)", "F.linear(h, self.emb.weight.type_as(h))"):
        assert _adp015_lines(TIED.format(logits=spelling)) == [14], spelling


def test_other_weights_and_untransposed_embedding_weights_are_not_heads():
    for spelling in ("h @ self.proj.weight.t()", "h @ self.emb.weight", "F.linear(h, self.proj.weight)",
                     "h @ self.emb.weight.t() @ self.proj.weight", "F.linear(h, self.emb.weight.t())"):
        assert _adp015_lines(TIED.format(logits=spelling)) == [], spelling


GIVEN = """
    import torch
    import torch.nn.functional as F
    from torch import nn

    class Head(nn.Module):
        def __init__(self, d):
            super().__init__()
            self.dense = nn.Linear(d, d)

        def forward(self, h, table):
            h = self.dense(h)
            return {logits}

    class LM(nn.Module):
        def __init__(self, n, d):
            super().__init__()
            self.emb = nn.Embedding(n, d)
            self.head = Head(d)

        def forward(self, ids, labels):
            scores = self.head(self.emb(ids), self.emb)
            return F.cross_entropy(scores.view(-1, scores.size(-1)), labels.view(-1))
"""


def test_a_head_given_the_embedding_reads_every_transpose_the_in_class_reader_does():
    # one reading of "the transposed weight" (formulas.untransposed) for both kinds of tied head
    for spelling in ("h @ table.weight.t()", "torch.matmul(h, table.weight.mT)", "h @ table.weight.transpose(-2, -1)",
                     "h @ torch.transpose(table.weight, 0, 1)", "F.linear(h, table.weight)"):
        assert _adp015_lines(GIVEN.format(logits=spelling)) == [22], spelling
    assert _adp015_lines(GIVEN.format(logits="h @ table.weight")) == []


def test_a_width_chosen_by_a_helper_returning_an_argument_and_an_embedding_with_special_rows():
    """``pick(width, vocab)`` of a same-file helper that returns one of its arguments may be the
    vocabulary; an embedding of ``vocab + 2`` rows (two special tokens) says ``vocab`` is one.
    A helper that computes something else, or a table with many more rows, says nothing."""
    heads = _heads("""
        from torch import nn

        def pick(given, fallback=None):
            if given is None:
                return fallback
            return given

        def widen(given, extra):
            return given * extra

        class M(nn.Module):
            def __init__(self, vocab, dim, width=None, pad=False):
                super().__init__()
                self.words = nn.Embedding(vocab + 2, dim)
                self.tags = nn.Embedding(vocab + int(pad), dim)
                self.width = pick(width, vocab)
                self.head = nn.Linear(dim, self.width)
                self.head2 = nn.Linear(dim, pick(fallback=vocab, given=width))
                self.proj = nn.Linear(dim, widen(width, vocab))
                self.mid = nn.Linear(dim, pick(width, dim))
    """)
    assert heads["M"] == {"head", "head2"}
    heads = _heads("""
        from torch import nn

        class N(nn.Module):
            def __init__(self, vocab, dim):
                super().__init__()
                self.words = nn.Embedding(vocab + 4096, dim)
                self.head = nn.Linear(dim, vocab)
    """)
    assert heads["N"] == set()
