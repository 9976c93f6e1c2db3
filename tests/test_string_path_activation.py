"""An activation parameter with PyTorch's legacy string support (research49's VALL-E X layers,
torch's own ``nn.TransformerEncoderLayer`` signature): ``activation: str | Callable = F.relu``
then ``if isinstance(activation, str): activation = table(activation)``, the table holding
``F.gelu``.  The string path runs only for a string, and where the file builds the layer with
its default (no call passing the argument) no string is given: a fixed ReLU, labelled ``no`` as
zoedepth's ``ACT2FN[activation]`` with a ``"relu"`` default that no call changes.  The layer
typing read the table's every entry as a possible value.  Also ``super(Layer, self)`` names the
class only to start the method lookup: it builds nothing and hands nothing on, so a class whose
methods write it is still only called in the file.  The fixtures are ours.
"""

from __future__ import annotations

import textwrap

import pytest

from corpus_forms import covered

LAYER = textwrap.dedent("""\
    from functools import partial

    import torch.nn as nn
    import torch.nn.functional as F


    def _activation_fn(name):
        if name == "relu":
            return F.relu
        elif name == "gelu":
            return F.gelu
        raise RuntimeError(name)


    class EncoderLayer(nn.Module):
        def __init__(self, d, activation=F.relu):
            super(EncoderLayer, self).__init__()
            self.linear1 = nn.Linear(d, 4 * d)
            self.linear2 = nn.Linear(4 * d, d)
            if isinstance(activation, str):
                activation = _activation_fn(activation)
            self.activation = activation

        def forward(self, x):
            return self.linear2(self.activation(self.linear1(x)))


    class DecoderLayer(nn.Module):
        def __init__(self, d, activation=F.relu):
            super(DecoderLayer, self).__init__()
            self.linear1 = nn.Linear(d, 4 * d)
            self.linear2 = nn.Linear(4 * d, d)
            if isinstance(activation, str):
                self.activation = _activation_fn(activation)
            elif isinstance(activation, partial):
                self.activation = activation(d)
            else:
                self.activation = activation

        def forward(self, x):
            return self.linear2(self.activation(self.linear1(x)))
    """)

NEEDLE = "return self.linear2(self.activation(self.linear1(x)))"


def _lines(code: str) -> list[int]:
    return [n for n, text in enumerate(code.splitlines(), 1) if NEEDLE in text]


def _reported(code: str) -> int:
    from corpus_forms import findings

    lines = _lines(code)
    return sum(any(f.line <= line <= f.end_line for f in findings(code, "ADP006")) for line in lines)


def test_string_path_not_taken_with_a_function_default_and_no_caller():
    assert len(_lines(LAYER)) == 2
    assert _reported(LAYER) == 0


def test_string_path_not_taken_where_the_file_builds_the_layer_with_its_default():
    built = LAYER + textwrap.dedent("""\


        def build(d):
            return nn.Sequential(EncoderLayer(d), DecoderLayer(d))
        """)
    assert _reported(built) == 0


@pytest.mark.parametrize("case, code", [
    ("a call in the file passes a string", LAYER + textwrap.dedent("""\


        def build(d):
            return EncoderLayer(d, activation="gelu"), DecoderLayer(d, "gelu")
        """)),
    ("a call passes a name: any value, maybe a string", LAYER + textwrap.dedent("""\


        def build(d, act):
            return EncoderLayer(d, activation=act), DecoderLayer(d, activation=act)
        """)),
    ("a call hands on keyword arguments", LAYER + textwrap.dedent("""\


        def build(d, **kw):
            return EncoderLayer(d, **kw), DecoderLayer(d, **kw)
        """)),
    ("a same-file subclass may pass a string to the base", LAYER + textwrap.dedent("""\


        class GeluEncoder(EncoderLayer):
            pass


        class GeluDecoder(DecoderLayer):
            pass
        """)),
    ("the class is handed on as a value", LAYER + textwrap.dedent("""\


        LAYERS = {"enc": EncoderLayer, "dec": DecoderLayer}
        """)),
    ("the default is GELU itself", LAYER.replace("activation=F.relu", "activation=F.gelu")),
    ("the default is the string key of GELU", LAYER.replace("activation=F.relu", 'activation="gelu"')),
])
def test_gelu_still_possible(case, code):
    assert _reported(code) == 2, case
