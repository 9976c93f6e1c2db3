"""Costs the first round of session 27 added, paid back without changing what is read (trim).

- Function-local imports (research35): a file's function bodies are read for them only when its
  text may hold one -- an indented ``import``/``from``, or one after ``;``, ``:`` or a line
  continuation.  The odd spellings still bind their names (ADP012 on the optimizer they build);
  a file without such a line never reads the bodies.
- ``LayerTyper._only_called`` (hf31: classes named in ``_init_weights``' isinstance tests reach
  it, and their callers are read): only the top-level statements whose text (decorators
  included) holds the name are walked.  A class handed on anywhere else -- a decorator's
  argument, a module-level table -- still is not "only called" (its relu default is not
  decided: ADP006 still reported); isinstance tests and calls still are.
"""

from __future__ import annotations

import ast
import textwrap

from corpus_forms import finding_at, found

from adopter.structure import layers, model, names
from adopter.structure.layers import LayerTyper
from adopter.structure.names import collect_names, may_import_locally

# --------------------------------------------------------------------------- local imports

TRAINER = """\
from __future__ import annotations


def train(net, lr=1e-4):
IMPORT
    opt = torch.optim.AdamW(net.parameters(), lr=lr)
    for _ in range(3):
        opt.zero_grad(set_to_none=True)
        net(torch.randn(2, 3)).mean().backward()
        opt.step()
    return net
"""


def test_local_imports_in_odd_spellings_still_bind():
    for spelling in ("    import torch", "\timport torch", "    x = 1; import torch",
                     "    if True: import torch", "    x = 1; \\\nimport torch",
                     "    try:\n        import torch\n    except ImportError:\n        raise"):
        code = TRAINER.replace("IMPORT", spelling)
        if spelling.startswith("\t"):
            code = code.replace("\n    ", "\n\t")
        assert finding_at(code, "ADP012", "opt = torch.optim.AdamW(") is not None, spelling


def test_no_local_import_no_binding():
    # near-miss: torch bound nowhere (only named in a comment and a string) stays unresolved
    code = TRAINER.replace("IMPORT", '    # import torch later\n    doc = "import torch"')
    assert found(code, "ADP012") == []


def test_may_import_locally_text_test():
    assert may_import_locally(None)
    assert not may_import_locally("import torch\nfrom torch import nn\n\nx = 1\n")
    assert not may_import_locally("import torch\n# import numpy\nclass A:\n    important = 1\n")
    for text in ("def f():\n    import torch\n", "def f():\n\tfrom a import b\n",
                 "def f(): import torch\n", "def f():\n    x = 1; import y\n", "x = 1; \\\nimport y\n"):
        assert may_import_locally(text), text


def test_function_bodies_are_not_read_without_a_local_import_line(monkeypatch):
    calls = []
    real = names._local_imports
    monkeypatch.setattr(names, "_local_imports", lambda *a: calls.append(1) or real(*a))
    text = "import torch\nfrom torch import nn\n\n\nclass M(nn.Module):\n    def forward(self, x):\n" \
           "        if x is None:\n            return x\n        return torch.relu(x)\n"
    model.module_structure(ast.parse(text), None, text)
    assert calls == []
    text = text.replace("        if x is None", "        import math\n        if x is None")
    model.module_structure(ast.parse(text), None, text)
    assert calls == [1]


# --------------------------------------------------------------------------- _only_called

FFN = textwrap.dedent("""\
    import torch
    from torch import nn
    from transformers.activations import ACT2FN


    class FFNLayer(nn.Module):
        def __init__(self, d_model, dim_feedforward=2048, dropout=0.0, activation="relu"):
            super().__init__()
            self.linear1 = nn.Linear(d_model, dim_feedforward)
            self.dropout = nn.Dropout(dropout)
            self.linear2 = nn.Linear(dim_feedforward, d_model)
            self.activation = ACT2FN[activation]

        def forward(self, x):
            return self.linear2(self.dropout(self.activation(self.linear1(x))))


    class Model(nn.Module):
        def __init__(self, config):
            super().__init__()
            self.ffn = FFNLayer(config.hidden_size)

        def forward(self, x):
            return self.ffn(x)

        def _init_weights(self, module):
            if isinstance(module, FFNLayer):
                module.weight.data.normal_()
    EXTRA
""")
NEEDLE = "self.activation(self.linear1(x))"


def test_a_class_only_called_and_tested_keeps_its_relu_default():
    assert found(FFN.replace("EXTRA", ""), "ADP006") == []
    assert found(FFN.replace("EXTRA", "\ndef helper(x):\n    return FFNLayer(8)(x)\n"), "ADP006") == []


def test_a_class_handed_on_elsewhere_is_not_only_called():
    # near-misses: the class is handed on in a decorator's argument (lines before the def's
    # own line), a module-level table, a later module-level call's argument
    for extra in ("\n@register(FFNLayer)\ndef helper(x):\n    return x\n",
                  "\n@register(\n    FFNLayer,\n)\nclass Other:\n    pass\n",
                  "\nBLOCKS = {'ffn': FFNLayer}\n",
                  "\nregister(1); register(FFNLayer)\n"):
        code = FFN.replace("EXTRA", extra)
        assert finding_at(code, "ADP006", NEEDLE) is not None, extra


def _typer(text: str) -> LayerTyper:
    tree = ast.parse(text)
    typer = LayerTyper(collect_names(tree), tree)
    typer.lines = text.split("\n")
    return typer


def test_only_called_walks_only_the_statements_that_mention_the_name(monkeypatch):
    text = FFN.replace("EXTRA", "\n@register(FFNLayer)\ndef helper(x):\n    return x\n\n\nSIZE = 3\n")
    typer = _typer(text)
    walked = []
    real = layers.walk
    monkeypatch.setattr(layers, "walk", lambda node: walked.append(node) or real(node))
    assert typer._only_called("FFNLayer") is False
    tops = {id(stmt): stmt for stmt in typer.tree.body}
    assert walked and all(id(node) in tops for node in walked)
    assert [getattr(node, "name", None) for node in walked] == ["FFNLayer", "Model", "helper"]
    assert _typer(FFN.replace("EXTRA", ""))._only_called("FFNLayer") is True


def test_mentioning_falls_back_to_every_statement_when_lines_are_not_the_parsers():
    # a lone carriage return is a line break to the parser, not to str.split("\n")
    text = "import torch\rx = 1\nclass A:\n    pass\n"
    typer = _typer(text)
    assert typer._mentioning("A") is typer.tree.body
    text = "import torch\r\nx = 1\r\nclass A:\r\n    pass\r\n"
    typer = _typer(text)
    assert [type(s).__name__ for s in typer._mentioning("A")] == ["ClassDef"]
    typer = _typer(text)
    typer.lines = None
    assert typer._mentioning("A") is typer.tree.body
