"""Forms found while checking the blind batch research86 (video, multimodal and vision-language
research code on PyPI: small CLIP/ALBEF/MLM reimplementations sharing one GPT module).  The
fixtures are ours.

- ADP015: the LM head of a module another module holds, called through it
  (``self.encoder = GPT(config)`` in ``__init__``, ``logits = self.encoder.lm_head(out)`` then a
  cross-entropy over the flattened logits in ``forward``; also two modules deep,
  ``self.txt_encoder.encoder.lm_head``).  The held class's constructor says the head is an
  ``nn.Linear`` (structure/held_layers.py), in this file or in another module of the package.
- The package of a file in a folder without ``__init__.py`` right below a regular package (a
  PEP 420 namespace portion, ``tinymm/MLM/model.py`` with ``tinymm/__init__.py`` only) is that
  package's (``tinymm.MLM``), so the module the file imports its GPT from is read.
- Near-misses: a held module's LayerNorm, a held module's method (not a layer) and a held
  attribute whose class depends on a condition are not heads; a contrastive loss is not one.
"""

from __future__ import annotations

from pathlib import Path

from corpus_forms import found, line_of

from adopter.engine import analyze
from adopter.ruleset import load_rules, select_rules
from adopter.structure import package_of

GPT = """\
import torch
from torch import nn


class GPT(nn.Module):
    def __init__(self, dim, vocab):
        super().__init__()
        self.wte = nn.Embedding(vocab, dim)
        self.ln_f = nn.LayerNorm(dim)
        self.lm_head = nn.Linear(dim, vocab, bias=False)
        self.wte.weight = self.lm_head.weight

    def project(self, x):
        return x @ self.wte.weight.t()

    def forward(self, idx):
        return self.ln_f(self.wte(idx))
"""

MLM = """\
import torch.nn.functional as F
from torch import nn
IMPORT


class MLM(nn.Module):
    def __init__(self, dim, vocab):
        super().__init__()
        self.encoder = HELD

    def forward(self, texts, targets):
        out = self.encoder(texts)
        logits = self.encoder.HEAD(out)
        loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1), ignore_index=-1)
        return logits, loss
"""

TWO_DEEP = """\
import torch.nn.functional as F
from torch import nn


class TextEncoder(nn.Module):
    def __init__(self, dim, vocab):
        super().__init__()
        self.encoder = GPT(dim, vocab)
        self.txt_proj = nn.Linear(dim, 128)

    def forward(self, texts):
        out = self.encoder(texts)
        return self.txt_proj(out[:, -1]), out


class ALBEF(nn.Module):
    def __init__(self, dim, vocab):
        super().__init__()
        self.txt_encoder = TextEncoder(dim, vocab)

    def forward(self, texts, targets):
        _, out = self.txt_encoder(texts)
        logits = self.txt_encoder.encoder.lm_head(out)
        loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1), ignore_index=-1)
        return logits, loss
"""


def _mlm(held: str = "GPT(dim, vocab)", head: str = "lm_head") -> str:
    return GPT + "\n\n" + MLM.replace("IMPORT\n", "").replace("HELD", held).replace("HEAD", head)


def _head_found(code: str, needle: str = "logits = self.") -> bool:
    line = line_of(code, needle)
    return any(f.line <= line <= f.end_line for f in found(code, "ADP015"))


def test_the_lm_head_of_a_held_module_is_a_head():
    assert _head_found(_mlm())


def test_the_lm_head_of_a_module_held_two_modules_deep_is_a_head():
    assert _head_found(GPT + "\n\n" + TWO_DEEP)


def test_a_held_modules_layer_norm_is_no_head():
    assert found(_mlm(head="ln_f"), "ADP015") == []


def test_a_held_modules_method_is_no_head():
    assert found(_mlm(head="project"), "ADP015") == []


def test_a_held_attribute_whose_class_depends_on_a_condition_is_not_read():
    code = _mlm(held="GPT(dim, vocab) if dim > 64 else nn.Identity()")
    assert found(code, "ADP015") == []


def test_a_held_layer_the_holder_replaces_is_not_the_held_classes():
    # (session 39, review42) the holder rebinds the held module's head, in its constructor or
    # in another method, or through setattr: GPT's constructor no longer says what is called
    replaced = "        self.encoder.lm_head = nn.Sequential(nn.Linear(dim, vocab), nn.Tanh())\n"
    init = _mlm().replace("        self.encoder = GPT(dim, vocab)\n", "        self.encoder = GPT(dim, vocab)\n" + replaced)
    assert "self.encoder.lm_head = nn.Sequential" in init
    assert found(init, "ADP015") == []
    later = _mlm().replace("    def forward(self, texts, targets):\n",
                           "    def use_adaptive(self, dim, vocab):\n" + replaced + "\n"
                           "    def forward(self, texts, targets):\n")
    assert "def use_adaptive" in later
    assert found(later, "ADP015") == []
    by_setattr = init.replace(replaced, '        setattr(self.encoder, "lm_head", nn.Tanh())\n')
    assert "setattr(self.encoder" in by_setattr
    assert found(by_setattr, "ADP015") == []
    # another class of the same file that holds GPT untouched still calls its Linear head
    both = later + "\n\n" + MLM.replace("IMPORT\n", "").replace("HELD", "GPT(dim, vocab)").replace(
        "HEAD", "lm_head").replace("class MLM", "class Plain")
    plain = line_of(both, "class Plain")
    assert [f.line > plain for f in found(both, "ADP015")] == [True]


def test_a_contrastive_loss_is_no_head():
    code = GPT + """

class CLIP(nn.Module):
    def __init__(self, dim, vocab):
        super().__init__()
        self.encoder = GPT(dim, vocab)

    def forward(self, texts, images):
        txt = self.encoder(texts)[:, -1]
        logits = images @ txt.T
        labels = torch.arange(logits.size(0))
        return torch.nn.functional.cross_entropy(logits, labels)
"""
    assert found(code, "ADP015") == []


def _write(root: Path, files: dict) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_a_namespace_folder_below_a_regular_package_belongs_to_it(tmp_path):
    _write(tmp_path, {"tiny/__init__.py": "", "tiny/MLM/model.py": "", "tiny/a/b/c.py": "",
                      "loose/x/y.py": ""})
    assert package_of(str(tmp_path / "tiny/MLM/model.py")) == "tiny.MLM"
    assert package_of(str(tmp_path / "tiny/a/b/c.py")) == "tiny.a.b"
    assert package_of(str(tmp_path / "tiny/__init__.py")) == "tiny"
    assert package_of(str(tmp_path / "loose/x/y.py")) is None  # no regular package above


def test_the_lm_head_of_a_module_another_file_of_the_package_defines(tmp_path):
    mlm = MLM.replace("IMPORT", "from tiny.GPT.model import GPT").replace("HELD", "GPT(dim, vocab)")
    _write(tmp_path, {"tiny/__init__.py": "", "tiny/GPT/model.py": GPT, "tiny/MLM/model.py": mlm.replace(
        "HEAD", "lm_head"), "tiny/NORM/model.py": mlm.replace("HEAD", "ln_f")})
    rules = select_rules(load_rules(), ["ADP015"])
    path = tmp_path / "tiny/MLM/model.py"
    text = path.read_text()
    hits = analyze(text, str(path), rules, package_of(str(path))).findings
    line = line_of(text, "logits = self.encoder.lm_head")
    assert [(f.line <= line <= f.end_line) for f in hits] == [True]
    other = tmp_path / "tiny/NORM/model.py"
    assert analyze(other.read_text(), str(other), rules, package_of(str(other))).findings == []


def test_chain_patterns_match_as_their_word_boundary_forms():
    """held_layers' literal-first patterns (fast) find exactly what ``\\b``-prefixed ones find,
    including a match that starts inside a passed-over one (``xself.self.c.d(``)."""
    import re

    from adopter.structure import held_layers

    text = ("xself.self.c.d( self.a.b( _self.q.r( setattr(self.x, 'y', 1) xsetattr(self.z, 'w', 2)\n"
            "self.m.n = 3\nself.m.n == 4\néself.u.v( self.enc.head(h) self.enc.head: nn.Module = h\n")
    for pattern in (held_layers._CHAIN_CALL, held_layers._CHAIN_STORE, held_layers._CHAIN_SETATTR):
        bounded = re.compile(r"\b" + pattern.pattern)
        assert ([(m.span(), m.groups()) for m in held_layers._word_matches(pattern, text)]
                == [(m.span(), m.groups()) for m in bounded.finditer(text)])
    assert held_layers._called_chains(text) == [("c", "d"), ("a", "b"), ("enc", "head")]
