"""research134 (session 48, blind batch: audio / music / speech): an LM head module that another
module of the package defines.

YourMT3-style models hold ``self.lm_head = LMHead(decoder_config, ...)``, ``LMHead`` imported from
a sibling module whose ``forward`` returns its bias-free ``nn.Linear(d_model,
decoder_config["vocab_size"])``'s output (scaled first under a flag), and take the logits into a
cross-entropy beside an ``nn.Embedding(decoder_config["vocab_size"], ...)``.  The sibling class
is read there (parsed, never imported: siblings.Package, held_layers._class_info) and its
Linear's width, the constructor's parameters read as the arguments this file passes, is the size
the file embeds tokens with: a vocabulary head, as the same class written in this file is.

Look-alikes that stay silent: a sibling head ending in a GELU (not a Linear's output), and a
sibling head whose Linear is as wide as a class count the file does not embed tokens with.
"""

from __future__ import annotations

import textwrap

import torch
from corpus_forms import rules
from torch import nn

from adopter.engine import analyze
from adopter.structure.names import package_of

HEADS = textwrap.dedent('''
    import torch
    from torch import nn


    class TokenHead(nn.Module):
        def __init__(self, cfg, init_factor, tied):
            super().__init__()
            self.d_model = cfg["d_model"]
            self.tied = tied
            self.proj = nn.Linear(cfg["d_model"], cfg["vocab_size"], bias=False)

        def forward(self, h):
            if self.tied:
                h = h * (self.d_model ** -0.5)
            logits = self.proj(h)
            return logits


    class ActHead(nn.Module):
        def __init__(self, cfg):
            super().__init__()
            self.proj = nn.Linear(cfg["d_model"], cfg["vocab_size"])
            self.act = nn.GELU()

        def forward(self, h):
            return self.act(self.proj(h))


    class ClassHead(nn.Module):
        def __init__(self, dim, n_classes):
            super().__init__()
            self.proj = nn.Linear(dim, n_classes)

        def forward(self, h):
            return self.proj(h)
''')

MODEL = textwrap.dedent('''
    import torch
    from torch import nn
    from torch.nn import CrossEntropyLoss

    from IMPORT import TokenHead, ActHead, ClassHead


    class Transcriber(nn.Module):
        def __init__(self, cfg):
            super().__init__()
            self.body = nn.Linear(cfg["d_model"], cfg["d_model"])
            self.lm_head = TokenHead(cfg, 1.0, False)
            self.embed_tokens = nn.Embedding(cfg["vocab_size"], cfg["d_model"])

        def forward(self, ids, labels):
            h = self.body(self.embed_tokens(ids))
            logits = self.lm_head(h)  # head
            loss_fct = CrossEntropyLoss(ignore_index=-100)
            return loss_fct(logits.view(-1, logits.size(-1)), labels.view(-1))


    class Activated(nn.Module):
        def __init__(self, cfg):
            super().__init__()
            self.embed_tokens = nn.Embedding(cfg["vocab_size"], cfg["d_model"])
            self.lm_head = ActHead(cfg)

        def forward(self, ids, labels):
            logits = self.lm_head(self.embed_tokens(ids))  # activated
            loss_fct = CrossEntropyLoss()
            return loss_fct(logits.view(-1, logits.size(-1)), labels.view(-1))


    class Tagger(nn.Module):
        def __init__(self, cfg, n_tags):
            super().__init__()
            self.embed_tokens = nn.Embedding(cfg["vocab_size"], cfg["d_model"])
            self.tagger = ClassHead(cfg["d_model"], n_tags)

        def forward(self, ids, tags):
            logits = self.tagger(self.embed_tokens(ids))  # tags
            loss_fct = CrossEntropyLoss()
            return loss_fct(logits.view(-1, logits.size(-1)), tags.view(-1))
''')


def _package(tmp_path, where: str):
    root = tmp_path / "ymt"
    model = root / "model"
    for folder in (root, model):
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "__init__.py").write_text("")
    (model / "heads.py").write_text(HEADS)
    code = MODEL.replace("IMPORT", where)
    path = model / "network.py"
    path.write_text(code)
    return path, code


def _lines(path, code) -> list[int]:
    return [f.line for f in analyze(code, str(path), rules("ADP015"), package=package_of(str(path))).findings
            if f.rule == "ADP015"]


def _line(code: str, needle: str) -> int:
    return next(n for n, text in enumerate(code.splitlines(), 1) if needle in text)


def test_a_sibling_module_head_ending_in_a_vocabulary_linear_is_an_lm_head(tmp_path):
    for where in ("ymt.model.heads", ".heads"):
        path, code = _package(tmp_path, where)
        got = _lines(path, code)
        assert _line(code, "# head") in got, (where, got)
        assert _line(code, "# activated") not in got  # a GELU after the Linear: not the Linear's logits
        assert _line(code, "# tags") not in got  # a Linear as wide as a tag count, not the vocabulary


def test_the_same_file_without_its_package_reads_no_head(tmp_path):
    # outside a package on disk the imported class is not read: nothing is reported
    path = tmp_path / "network.py"
    code = MODEL.replace("IMPORT", "heads")
    path.write_text(code)
    assert _lines(path, code) == []


def test_the_head_module_computes_the_loss_over_its_linear_logits():
    # what the report says: the head's logits are its Linear's output (the scaling off), so a
    # fused linear cross-entropy over (h, proj.weight) is the loss the forward computes
    namespace: dict = {}
    exec(compile(HEADS, "heads.py", "exec"), namespace)
    torch.manual_seed(0)
    cfg = {"d_model": 16, "vocab_size": 37}
    head = namespace["TokenHead"](cfg, 1.0, False)
    h = torch.randn(3, 5, 16, dtype=torch.float64)
    labels = torch.randint(0, 37, (3, 5))
    head = head.double()
    logits = head(h)
    loss = nn.CrossEntropyLoss()(logits.view(-1, logits.size(-1)), labels.view(-1))
    fused = nn.functional.cross_entropy(h.reshape(-1, 16) @ head.proj.weight.T, labels.view(-1))
    assert torch.allclose(loss, fused, atol=1e-12, rtol=0)
