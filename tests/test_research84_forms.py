"""Forms found while checking the blind batch research84 (reinforcement-learning model code on
PyPI: a Gated Transformer-XL, a decision transformer, multi-agent communication, a ViT
representation).  The fixtures are ours.

- Names a file imports from a module of its own package that only imports them there
  (``from mypkg.backend import nn, Module`` where ``mypkg/backend/__init__.py`` says ``import
  torch.nn as nn``; ``from .nn_module import F`` where that module imported ``F``): they are
  torch's, so ``nn.Linear`` is a Linear and a class on ``Module`` is a module.  Before, the whole
  file read as unknown code.  Near-miss: a package whose module *defines* its own ``nn``
  namespace (a module of the package, not an import of torch) stays the package's own.
- A layer handed down two constructors (``Model`` builds ``nn.Dropout(p) if p > 0 else
  nn.Identity()`` and passes it to ``Layer``, which passes its parameter on to ``Attention``):
  the attention's ``self.dropout`` holds what the outermost caller built, the choice included,
  as one level of passing did already.  The SDPA fix computes what the original did (float64,
  eval, with and without the mask).  Near-miss: two constructions that pass different layers
  (a Dropout from one, a LayerNorm from the other) leave the attribute unknown: nothing found.
"""

from __future__ import annotations

import textwrap

import pytest
from corpus_forms import line_of, rules

from adopter.engine import analyze
from adopter.structure import package_of
from adopter.synth import fix_text

REEXPORT = textwrap.dedent("""\
    import torch.nn as nn
    from torch.nn import Module
    from torch import Tensor

    __all__ = ["nn", "Module", "Tensor"]
""")

OWN_NN = textwrap.dedent("""\
    from . import nn
    from .nn import Module
""")

OWN_NN_MODULE = textwrap.dedent("""\
    class Module:
        pass


    class Linear(Module):
        def __init__(self, *args):
            self.args = args


    class GELU(Module):
        pass


    class Softmax(Module):
        def __init__(self, dim):
            self.dim = dim


    class Dropout(Module):
        def __init__(self, p):
            self.p = p


    class Sequential(Module):
        def __init__(self, *layers):
            self.layers = layers
""")

VIT = textwrap.dedent("""\
    import torch
    from mypkg.backend import nn, Module, Tensor


    class FeedForward(Module):
        def __init__(self, dim, hidden):
            super().__init__()
            self.net = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

        def forward(self, x: Tensor) -> Tensor:
            return self.net(x)


    class Attention(Module):
        def __init__(self, dim, heads=4):
            super().__init__()
            self.heads = heads
            self.scale = (dim // heads) ** -0.5
            self.attend = nn.Softmax(dim=-1)
            self.dropout = nn.Dropout(0.1)
            self.to_qkv = nn.Linear(dim, dim * 3, bias=False)

        def forward(self, x: Tensor) -> Tensor:
            b, n, d = x.shape
            q, k, v = (t.reshape(b, n, self.heads, -1).transpose(1, 2) for t in self.to_qkv(x).chunk(3, dim=-1))
            dots = torch.matmul(q, k.transpose(-1, -2)) * self.scale
            attn = self.attend(dots)
            attn = self.dropout(attn)
            out = torch.matmul(attn, v)
            return out.transpose(1, 2).reshape(b, n, d)
""")


def _package(tmp_path, backend: dict):
    root = tmp_path / "mypkg"
    (root / "backend").mkdir(parents=True)
    (root / "models").mkdir()
    (root / "__init__.py").write_text("")
    (root / "models" / "__init__.py").write_text("")
    for name, text in backend.items():
        (root / "backend" / name).write_text(text)
    path = root / "models" / "vit.py"
    path.write_text(VIT)
    return path


def _found(path, *rule_ids) -> list:
    text = path.read_text()
    return [(f.rule, f.line) for f in analyze(text, str(path), rules(*rule_ids), package_of(str(path))).findings
            if f.rule in rule_ids]


def test_torch_names_an_own_package_module_imports_are_torch(tmp_path):
    path = _package(tmp_path, {"__init__.py": REEXPORT})
    hits = _found(path, "ADP006", "ADP010")
    assert ("ADP006", line_of(VIT, "nn.Linear(dim, hidden), nn.GELU()")) in hits
    softmax = line_of(VIT, "attn = self.attend(dots)")
    assert any(rule == "ADP010" and line <= softmax for rule, line in hits)


def test_an_own_package_nn_module_stays_the_package_own(tmp_path):
    path = _package(tmp_path, {"__init__.py": OWN_NN, "nn.py": OWN_NN_MODULE})
    assert _found(path, "ADP006", "ADP010") == []


def test_a_name_imported_from_an_own_module_and_read_as_a_module(tmp_path):
    # ``from .helpers import F``: the sibling imported ``torch.nn.functional as F``
    root = tmp_path / "rlpkg"
    root.mkdir()
    (root / "__init__.py").write_text("")
    (root / "helpers.py").write_text("import torch.nn.functional as F\n\n\ndef block(i, o):\n    return i + o\n")
    code = textwrap.dedent("""\
        import torch
        import torch.nn as nn
        from .helpers import block, F


        class Attention(nn.Module):
            def __init__(self, dim):
                super().__init__()
                self.qkv = nn.Linear(dim, dim * 3)

            def forward(self, x):
                q, k, v = self.qkv(x).chunk(3, dim=-1)
                scores = torch.matmul(q, k.transpose(-2, -1)) / q.shape[-1] ** 0.5
                probs = F.softmax(scores, dim=-1)
                return torch.matmul(probs, v)
    """)
    path = root / "attn.py"
    path.write_text(code)
    softmax = line_of(code, "probs = F.softmax")
    hits = _found(path, "ADP010")
    assert len(hits) == 1 and hits[0][1] <= softmax


PASSED_DOWN = textwrap.dedent("""\
    import math
    import torch
    import torch.nn as nn
    import torch.nn.functional as F


    class Attention(nn.Module):
        def __init__(self, dim, heads, dropout):
            super().__init__()
            self.heads = heads
            self.dropout = dropout
            self.qkv = nn.Linear(dim, dim * 3)

        def forward(self, x, mask=None):
            b, n, d = x.shape
            q, k, v = (t.view(b, n, self.heads, -1).permute(0, 2, 1, 3) for t in self.qkv(x).chunk(3, dim=-1))
            score = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(d // self.heads)
            if mask is not None:
                score = score.masked_fill(~mask, -1e9)
            score = F.softmax(score, dim=-1)
            score = self.dropout(score)
            out = torch.matmul(score, v)
            return out.permute(0, 2, 1, 3).reshape(b, n, d)


    class Layer(nn.Module):
        def __init__(self, dim, heads, dropout):
            super().__init__()
            self.attention = Attention(dim, heads, dropout)
            self.norm = nn.LayerNorm(dim)

        def forward(self, x, mask=None):
            return self.norm(x + self.attention(x, mask))


    class Model(nn.Module):
        def __init__(self, dim=16, heads=2, p=0.1):
            super().__init__()
            self.dropout = DROPOUT
            self.layers = nn.ModuleList([Layer(dim, heads, self.dropout) for _ in range(2)])

        def forward(self, x, mask=None):
            for layer in self.layers:
                x = layer(x, mask)
            return x
""")

CHOSEN = PASSED_DOWN.replace("DROPOUT", "nn.Dropout(p) if p > 0 else nn.Identity()")


def _softmax_found(code: str) -> bool:
    softmax = line_of(code, "score = F.softmax")
    hits = [f for f in analyze(code, "model.py", rules("ADP010")).findings if f.rule == "ADP010"]
    return len(hits) == 1 and hits[0].line <= softmax <= hits[0].end_line


@pytest.mark.parametrize("dropout", ["nn.Dropout(p)", "nn.Dropout(p) if p > 0 else nn.Identity()"])
def test_a_dropout_passed_down_two_constructors_is_dropout(dropout):
    assert _softmax_found(PASSED_DOWN.replace("DROPOUT", dropout))


def test_different_layers_passed_down_leave_the_attribute_unknown():
    code = PASSED_DOWN.replace("DROPOUT", "nn.Dropout(p)") + textwrap.dedent("""\


        class Other(nn.Module):
            def __init__(self, dim=16):
                super().__init__()
                self.layer = Layer(dim, 2, nn.LayerNorm([5, 5]))
    """)
    assert not _softmax_found(code)


def test_the_fixed_passed_down_attention_computes_what_the_original_did():
    torch = pytest.importorskip("torch")
    fixed = fix_text(CHOSEN, "model.py", rules("ADP010")).text
    assert "scaled_dot_product_attention" in fixed
    original, patched = {}, {}
    exec(compile(CHOSEN, "orig.py", "exec"), original)  # noqa: S102 (our own fixture)
    exec(compile(fixed, "fixed.py", "exec"), patched)  # noqa: S102
    torch.manual_seed(0)
    x = torch.randn(3, 5, 16, dtype=torch.float64)
    mask = torch.ones(3, 1, 5, 5, dtype=torch.bool)
    mask[:, :, :, 3:] = False
    for p in (0.1, 0.0):
        torch.manual_seed(1)
        a = original["Model"](p=p).double().eval()
        b = patched["Model"](p=p).double().eval()
        b.load_state_dict(a.state_dict(), strict=True)
        for m in (None, mask):
            # float64, softmax over 5 keys and a product over 5 values: rounding far below 1e-10
            torch.testing.assert_close(b(x, m), a(x, m), rtol=0, atol=1e-10)


NORM_BLOCK = textwrap.dedent("""\
    import torch
    from torch import nn
    from .common import LayerNorm, Dropout


    class Block(nn.Module):
        def __init__(self, d):
            super().__init__()
            self.fc = nn.Linear(d, d)
            self.drop = Dropout(0.1)
            self.norm = LayerNorm(d)

        def forward(self, x):
            return self.norm(x + self.drop(self.fc(x)))
""")

OWN_LAYER_NORM = textwrap.dedent("""\


    class LayerNorm(torch.nn.Module):
        \"\"\"Scale-only norm under the imported name.\"\"\"

        def __init__(self, d, eps=1e-6):
            super().__init__()
            self.weight = torch.nn.Parameter(torch.ones(d))
            self.eps = eps

        def forward(self, x):
            return self.weight * x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)
""")


def _norm_package(tmp_path, common: str):
    root = tmp_path / "normpkg"
    root.mkdir(parents=True)
    (root / "__init__.py").write_text("")
    (root / "common.py").write_text(common)
    path = root / "block.py"
    path.write_text(NORM_BLOCK)
    return path


def test_a_sibling_that_imports_a_name_then_binds_it_again_exports_its_own(tmp_path):
    # (session 39, review42) ``from torch.nn import LayerNorm`` above the module's own ``class
    # LayerNorm``: the module exports its class, not torch's
    imports = "import torch\nfrom torch.nn import LayerNorm, Dropout\n"
    assert _found(_norm_package(tmp_path / "own", imports + OWN_LAYER_NORM), "ADP005") == []
    assigned = imports + "\nLayerNorm = make_norm()\n"
    assert _found(_norm_package(tmp_path / "assigned", assigned), "ADP005") == []
    # the sibling that only imports them re-exports torch's: the dropout-add-LayerNorm is found
    line = line_of(NORM_BLOCK, "return self.norm(")
    assert _found(_norm_package(tmp_path / "plain", imports), "ADP005") == [("ADP005", line)]
