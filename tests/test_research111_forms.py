"""research111 (session 44): two ways an activation string reaches a Linear's activation.

The fixtures are ours.  Blind batch research111 (NLP outside transformers, retrieval, OCR and
document models) missed two ADP006 sites at first sight, both a string key handed on:

1. A module class whose construction setting picks the activation it runs (paddleocr ports'
   ``Activation(act_type)``): ``__init__`` binds ``self.act`` in an ``if act_type == "relu":
   ... elif act_type == "gelu":`` chain (maybe after ``act_type = act_type.lower()``, maybe an
   ``or`` of two names in one arm), and the forward is ``return self.act(x)`` alone.  Built as
   ``Activation(act_type=act_layer)`` with ``act_layer="gelu"`` the default every construction
   keeps, calling it runs the GELU arm: a Linear before it is a bias-GELU site (GUIDE ADP006: a
   same-file activation table or factory keyed by a string), in the file or in another module
   of the package.  Reported, not fixed (the activation is the module's member).
2. torch's own ``transformer._get_activation_fn(activation)`` with ``activation="gelu"`` the
   default (parseq's decoder layer): torch's documented strings, "gelu" -> F.gelu.

Look-alikes that must stay silent: the same modules with a "relu" default (or a construction
picking "hard_swish"), a forward that does more than return the member of its input, and a
run-time string the file does not decide.
"""

from __future__ import annotations

import textwrap

import pytest
from corpus_forms import found, line_of, rules

from adopter.engine import analyze
from adopter.structure import package_of
from adopter.synth import fix_text

ACTIVATION = textwrap.dedent("""\
    import torch
    import torch.nn.functional as F
    from torch import nn


    class Erf(nn.Module):
        def __init__(self, inplace=True):
            super().__init__()
            self.inplace = inplace

        def forward(self, x):
            return F.gelu(x)


    class Activation(nn.Module):
        def __init__(self, act_type, inplace=True):
            super().__init__()
            act_type = act_type.lower()
            if act_type == "relu":
                self.act = nn.ReLU(inplace=inplace)
            elif act_type == "hard_swish" or act_type == "hswish":
                self.act = nn.Hardswish(inplace=inplace)
            elif act_type == "gelu":
                self.act = Erf(inplace=inplace)
            elif act_type == "tanh":
                self.act = nn.Tanh()
            else:
                raise NotImplementedError(act_type)

        def forward(self, inputs):
            RETURN
""")

MLP = textwrap.dedent("""\
    class Mlp(nn.Module):
        def __init__(self, dim, hidden, act_layer=DEFAULT):
            super().__init__()
            self.fc1 = nn.Linear(dim, hidden)
            self.act = Activation(act_type=act_layer, inplace=True)
            self.fc2 = nn.Linear(hidden, dim)

        def forward(self, x):
            x = self.fc1(x)
            x = self.act(x)  # site
            return self.fc2(x)


    class Block(nn.Module):
        def __init__(self, dim, act=DEFAULT):
            super().__init__()
            self.mlp = Mlp(dim, 4 * dim, act_layer=act)

        def forward(self, x):
            return x + self.mlp(x)
""")


def _same_file(default: str = '"gelu"', ret: str = "return self.act(inputs)") -> str:
    return ACTIVATION.replace("RETURN", ret) + "\n\n" + MLP.replace("DEFAULT", default)


def _sites(code: str, path: str = "model.py", package=None) -> list:
    line = line_of(code, "# site")
    return [f for f in analyze(code, path, rules("ADP006"), package).findings
            if f.rule == "ADP006" and f.line <= line <= f.end_line]


def test_a_gelu_setting_module_after_a_linear_is_a_bias_gelu_site():
    code = _same_file()
    assert len(_sites(code)) == 1
    # the GELU is the module's member, behind its forward: reported, not fixed
    assert "bias_gelu" not in fix_text(code, "model.py", rules("ADP006")).text


def test_the_setting_is_lowered_before_the_chain():
    assert len(_sites(_same_file('"GELU"'))) == 1


@pytest.mark.parametrize("default", ['"relu"', '"hard_swish"', '"hswish"', '"tanh"'])
def test_a_non_gelu_setting_stays_silent(default):
    assert not _sites(_same_file(default))


def test_a_construction_picking_another_activation_stays_silent():
    code = _same_file().replace("Mlp(dim, 4 * dim, act_layer=act)", 'Mlp(dim, 4 * dim, act_layer="relu")')
    assert not _sites(code)


def test_a_forward_that_does_more_than_return_the_member_stays_silent():
    assert not _sites(_same_file(ret="return self.act(inputs) * 2"))


def test_the_setting_module_in_another_module_of_the_package(tmp_path):
    top = tmp_path / "ocrpkg"
    (top / "modeling").mkdir(parents=True)
    (top / "__init__.py").touch()
    (top / "modeling" / "__init__.py").touch()
    (top / "modeling" / "common.py").write_text(ACTIVATION.replace("RETURN", "return self.act(inputs)"))
    head = "import torch\nfrom torch import nn\n\nfrom .common import Activation\n\n\n"
    for default, expected in (('"gelu"', 1), ('"relu"', 0)):
        path = top / "modeling" / "backbone.py"
        path.write_text(head + MLP.replace("DEFAULT", default))
        code = path.read_text()
        assert len(_sites(code, str(path), package_of(str(path)))) == expected, default


def test_the_setting_module_computes_what_it_is_read_as():
    """The reading's premise, on real torch modules: built with "gelu" (any case) the module is
    F.gelu of its input, with "relu" it is not."""
    torch = pytest.importorskip("torch")
    scope: dict = {}
    exec(compile(ACTIVATION.replace("RETURN", "return self.act(inputs)"), "act.py", "exec"), scope)  # noqa: S102
    x = torch.randn(64, 32, dtype=torch.float64)
    gelu = scope["Activation"]("GELU")
    assert torch.equal(gelu(x), torch.nn.functional.gelu(x))
    assert not torch.allclose(scope["Activation"]("relu", inplace=False)(x), torch.nn.functional.gelu(x))


TORCH_FN = textwrap.dedent("""\
    import torch.nn.functional as F
    from torch import nn
    from torch.nn.modules import transformer


    class DecoderLayer(nn.Module):
        def __init__(self, dim, hidden, dropout=0.1, activation=DEFAULT):
            super().__init__()
            self.linear1 = nn.Linear(dim, hidden)
            self.dropout = nn.Dropout(dropout)
            self.linear2 = nn.Linear(hidden, dim)
            self.activation = transformer._get_activation_fn(activation)

        def forward(self, x):
            return self.linear2(self.dropout(self.activation(self.linear1(x))))  # site


    class Decoder(nn.Module):
        def __init__(self, dim, depth):
            super().__init__()
            self.layers = nn.ModuleList([BUILD for _ in range(depth)])

        def forward(self, x):
            for layer in self.layers:
                x = layer(x)
            return x
""")


def _torch_fn(default: str, build: str = "DecoderLayer(dim, 4 * dim)") -> str:
    return TORCH_FN.replace("DEFAULT", default).replace("BUILD", build)


def test_torch_get_activation_fn_of_a_gelu_default_is_a_bias_gelu_site():
    code = _torch_fn('"gelu"')
    assert len(_sites(code)) == 1
    # F.gelu held as a value: the runtime's bias_gelu takes it (fused, or run as written)
    assert "bias_gelu(x, self.linear1, self.activation)" in fix_text(code, "model.py", rules("ADP006")).text


def test_torch_get_activation_fn_with_a_gelu_construction_is_a_site():
    assert len(_sites(_torch_fn('"relu"', 'DecoderLayer(dim, 4 * dim, activation="gelu")'))) == 1


@pytest.mark.parametrize("default, build", [
    ('"relu"', "DecoderLayer(dim, 4 * dim)"),
    ('"relu"', 'DecoderLayer(dim, 4 * dim, activation="relu")'),
])
def test_torch_get_activation_fn_of_relu_stays_silent(default, build):
    assert not _sites(_torch_fn(default, build))


def test_torch_get_activation_fn_of_a_string_the_file_does_not_decide_stays_silent():
    code = _torch_fn('"gelu"', "DecoderLayer(dim, 4 * dim, activation=name)").replace(
        "def __init__(self, dim, depth):", "def __init__(self, dim, depth, name):")
    assert not found(code, "ADP006")


def test_torch_get_activation_fn_strings_are_what_the_reading_says():
    torch = pytest.importorskip("torch")
    from torch.nn.modules import transformer

    assert transformer._get_activation_fn("gelu") is torch.nn.functional.gelu
    assert transformer._get_activation_fn("relu") is torch.nn.functional.relu
