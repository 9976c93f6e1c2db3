"""Forms from research128's blind batch (diffusion / DiT / video generation models).  The
fixtures are ours.

1. Attention projections held in an ``nn.ModuleDict`` built by a dict comprehension over
   written-out keys (``{name: nn.Linear(d, d) for name in ("q", "k", "v", "o")}``): each key is
   a member, built by the value expression, so ``self.proj["q"](y)``, ``["k"]`` and ``["v"]``
   of one ``y`` are three Linears of one input (ADP009, fixed, equal in float64).
   Look-alikes: a comprehension over a run-time list of names, one whose keys are computed
   (``f"{n}_proj"``) and one with a filter name no member the analysis can know: silent.
2. A subclass of a base class that another module of the package defines inherits the base's
   ``self.ffn = nn.Sequential(nn.Linear, nn.GELU, nn.Linear)``: the Linear -> GELU pair runs in
   that container's own forward and is the other module's site (reported there, once), not
   this file's.  Near-misses that stay reported: the subclass's forward itself applies F.gelu
   to an inherited Linear (a pair this file writes), and a Sequential the file builds itself.
"""

from __future__ import annotations

import textwrap

from corpus_forms import float64_pair, found, line_of, rules

from adopter.engine import analyze
from adopter.structure import package_of
from adopter.synth import fix_text

DICT_ATTENTION = textwrap.dedent("""\
    import torch
    import torch.nn as nn


    class Block(nn.Module):
        def __init__(self, dim=8, heads=2, NAMES_PARAM):
            super().__init__()
            self.heads = heads
            self.proj = nn.ModuleDict({KEY: nn.Linear(dim, dim, bias=False) for name in NAMES})
            self.proj["up"] = nn.Linear(dim, 2 * dim)

        def forward(self, x):
            q = self.proj["q"](x)  # needle
            k = self.proj["k"](x)
            b, n, d = q.shape
            q, k = (t.view(b, n, self.heads, -1).transpose(1, 2) for t in (q, k))
            v = self.proj["v"](x).view(b, n, self.heads, -1).transpose(1, 2)
            att = torch.softmax(q @ k.transpose(-1, -2) / (d // self.heads) ** 0.5, dim=-1)
            out = (att @ v).transpose(1, 2).reshape(b, n, d)
            return self.proj["o"](out)
""")


def _dict_attention(key="name", names='("q", "k", "v", "o")', param="unused=None"):
    return DICT_ATTENTION.replace("NAMES_PARAM", param).replace("KEY", key).replace("NAMES", names)


def test_module_dict_comprehension_over_written_keys_is_fused_qkv():
    import torch

    code = _dict_attention()
    hits = found(code, "ADP009")
    assert [f.line for f in hits] == [line_of(code, "# needle")]
    result = fix_text(code, "model.py", rules("ADP009"))
    assert 'fused_qkv(x, self.proj["q"], self.proj["k"], self.proj["v"])' in result.text
    a, b = float64_pair(code, result.text, "Block")
    x = torch.randn(2, 5, 8, dtype=torch.float64)
    # float64, 8-term dot products and a 5-key softmax: agreement to rounding
    torch.testing.assert_close(b(x), a(x), rtol=1e-12, atol=1e-12)


def test_module_dict_comprehensions_whose_keys_are_not_written_name_no_member():
    cases = {
        "run-time names": dict(names="names", param='names=("q", "k", "v", "o")'),
        "computed keys": dict(key='f"{name}"'),
        "filtered": dict(names='("q", "k", "v", "o") if name'),
    }
    for case, parts in cases.items():
        code = _dict_attention(**parts)
        assert not found(code, "ADP009"), case


BASE_MODULE = textwrap.dedent("""\
    import torch.nn as nn


    class DiTBlock(nn.Module):
        def __init__(self, dim, ffn_dim):
            super().__init__()
            self.norm = nn.LayerNorm(dim)
            self.fc = nn.Linear(dim, dim)
            self.ffn = nn.Sequential(
                nn.Linear(dim, ffn_dim),
                nn.GELU(approximate="tanh"),  # base pair
                nn.Linear(ffn_dim, dim),
            )

        def forward(self, x):
            return x + self.ffn(self.norm(x))
""")

SUB_MODULE = textwrap.dedent("""\
    import torch.nn as nn
    import torch.nn.functional as F
    from PKG.base import DiTBlock


    class MotBlock(DiTBlock):
        def __init__(self, dim, ffn_dim):
            super().__init__(dim, ffn_dim)

        def forward(self, x, y):
            h = self.ffn(self.norm(x))
            x = x + h
            BODY
            return x


    class TextEmbedding(nn.Module):
        def __init__(self, dim):
            super().__init__()
            self.mlp = nn.Sequential(
                nn.Linear(dim, dim),
                nn.GELU(approximate="tanh"),  # embedding pair
                nn.Linear(dim, dim),
            )

        def forward(self, t):
            return self.mlp(t)
""")


def _package(tmp_path, name: str, body: str):
    top = tmp_path / name
    top.mkdir()
    (top / "__init__.py").touch()
    (top / "base.py").write_text(BASE_MODULE)
    (top / "mot.py").write_text(SUB_MODULE.replace("PKG", name).replace("BODY", body))
    return top


def _findings(path, rule="ADP006"):
    text = path.read_text()
    return [f for f in analyze(text, str(path), rules(rule), package_of(str(path))).findings if f.rule == rule]


def test_an_inherited_container_pair_is_the_base_module_s_site(tmp_path):
    top = _package(tmp_path, "motpkg", "x = x + self.norm(y)")
    text = (top / "mot.py").read_text()
    own = line_of(text, "# embedding pair")
    # the file's own Sequential pair only (this file writes GELU, so the rule runs here)
    assert [f.line <= own <= f.end_line for f in _findings(top / "mot.py")] == [True]
    base = _findings(top / "base.py")
    anchor = line_of(BASE_MODULE, "# base pair")
    assert len(base) == 1 and base[0].line <= anchor <= base[0].end_line


def test_the_subclass_s_own_pair_over_an_inherited_linear_stays_reported(tmp_path):
    top = _package(tmp_path, "motpkg2", "x = x + F.gelu(self.fc(y))  # own pair")
    text = (top / "mot.py").read_text()
    hits = [f for f in _findings(top / "mot.py") if f.line == line_of(text, "# own pair")]
    assert len(hits) == 1
    assert len(_findings(top / "mot.py")) == 2  # and the embedding's own pair


# ------------------------------------------- a processor handed a sibling module's attention
# (hdi1's HiDreamAttnProcessor: ``__call__(self, attn: HiDreamAttention, ...)``, the attention
# class imported from the package's other module, whose base is another package's module)

ATTENTION_MODULE = textwrap.dedent("""\
    import torch.nn as nn
    from otherlib.attention import BaseAttention


    class Attention(BaseAttention):
        def __init__(self, dim, heads=2, processor=None):
            super(BaseAttention, self).__init__()
            self.heads = heads
            linear_cls = nn.Linear
            self.to_q = linear_cls(dim, dim)
            self.to_k = linear_cls(dim, dim)
            self.to_v = linear_cls(dim, dim)
            self.to_out = linear_cls(dim, dim)
            self.processor = processor

        def forward(self, x, context=None):
            return self.processor(self, x, context)
""")

PROCESSOR_MODULE = textwrap.dedent("""\
    import torch.nn.functional as F
    from PKG.attention import Attention


    class Processor:
        def __call__(self, ANNOTATION, x, context=None):
            q = attn.to_q(x)  # needle
            k = attn.to_k(SOURCE)
            v = attn.to_v(SOURCE)
            b, n, d = q.shape
            q, k, v = (t.view(b, -1, attn.heads, d // attn.heads).transpose(1, 2) for t in (q, k, v))
            out = F.scaled_dot_product_attention(q, k, v)
            return attn.to_out(out.transpose(1, 2).reshape(b, n, d))
""")


def _processor_package(tmp_path, name: str, annotation="attn: Attention", source="x"):
    top = tmp_path / name
    top.mkdir()
    (top / "__init__.py").touch()
    (top / "attention.py").write_text(ATTENTION_MODULE)
    (top / "processor.py").write_text(PROCESSOR_MODULE.replace("PKG", name).replace("ANNOTATION", annotation)
                                      .replace("SOURCE", source))
    return top / "processor.py"


def test_a_processor_annotated_with_a_sibling_attention_runs_its_projections(tmp_path):
    path = _processor_package(tmp_path, "procpkg")
    hits = _findings(path, "ADP009")
    assert [f.line for f in hits] == [line_of(path.read_text(), "# needle")]
    # reported, not fixed: the Linears are built in the other module (as a sibling base's are)
    result = fix_text(path.read_text(), str(path), rules("ADP009"), package_of(str(path)))
    assert result.text == path.read_text()


def test_processor_look_alikes_stay_silent(tmp_path):
    cases = {
        "unannotated": dict(annotation="attn"),
        "keys and values of the context": dict(source="context"),
        "a class of no layers": dict(annotation="attn: F.__class__"),
    }
    for index, (case, parts) in enumerate(cases.items()):
        path = _processor_package(tmp_path, f"procalike{index}", **parts)
        assert not _findings(path, "ADP009"), case
