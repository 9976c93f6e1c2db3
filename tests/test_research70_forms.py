"""Forms found while checking the blind batch research70 (vision papers' code as published:
NaViT, D-FINE's decoder, hybrid encoder and backbone, BLIP's ViT, an explainability ViT,
TokenLearner, pix2tex's training script).  The fixtures are ours.

- ADP006, false positive: ``self.act(layer(x))`` with ``self.act = get_activation(act)``, a
  key-to-activation function imported from another module, and ``act="relu"`` a default that
  every construction in the file keeps (D-FINE's MLP).  Another file's table function was read
  as a run-time key whatever its argument held; a parameter whose string keys the file decides
  is now read as those keys, as ``ACT2FN[act]`` already was (GUIDE: a key handed to another
  file's function, every construction in the file leaving a non-GELU default, is no site).
- ADP006, a key the file does not decide: a class handed to a registering decorator
  (``@register()``) is built by a registry from configurations with any arguments, so a key it
  hands on to its layers is a run-time key whatever its default (D-FINE's registered transformer
  building its decoder layers; the bert4torch precedent for registered feed-forwards).
Near-misses: a construction in the file passing ``"gelu"`` (found), a plain decorator
(``@dataclass``-like wrappers hand the class back: its calls still decide).
"""
from __future__ import annotations

import textwrap

from corpus_forms import covered

NEEDLE = "self.act(self.fc1(x))"

MLP = textwrap.dedent("""\
    import torch.nn as nn
    from .utils import get_activation


    class MLP(nn.Module):
        def __init__(self, dim, hidden, act="relu"):
            super().__init__()
            self.fc1 = nn.Linear(dim, hidden)
            self.act = get_activation(act)
            self.fc2 = nn.Linear(hidden, dim)

        def forward(self, x):
            return self.fc2(self.act(self.fc1(x)))


    class Head(nn.Module):
        def __init__(self, dim):
            super().__init__()
            self.mlp = MLP(dim, 4 * dim{passed})

        def forward(self, x):
            return self.mlp(x)
""")


def test_another_files_table_function_with_a_decided_non_gelu_key_is_no_site():
    code = MLP.replace("{passed}", "")
    assert not covered(code, NEEDLE, "ADP006")


def test_another_files_table_function_given_gelu_by_a_construction_is_a_site():
    code = MLP.replace("{passed}", ', act="gelu"')
    assert covered(code, NEEDLE, "ADP006")


def test_a_key_no_construction_decides_stays_a_run_time_key():
    # MLP built nowhere in the file: its callers elsewhere choose the key
    code = MLP.replace("MLP(dim, 4 * dim{passed})", "None")
    assert covered(code, NEEDLE, "ADP006")


REGISTERED = textwrap.dedent("""\
    import torch.nn as nn
    from .core import register
    from .utils import get_activation


    class DecoderLayer(nn.Module):
        def __init__(self, dim, hidden, act="relu"):
            super().__init__()
            self.fc1 = nn.Linear(dim, hidden)
            self.act = get_activation(act)
            self.fc2 = nn.Linear(hidden, dim)

        def forward(self, x):
            return self.fc2(self.act(self.fc1(x)))


    {decorator}
    class Decoder(nn.Module):
        def __init__(self, dim=256, activation="relu"):
            super().__init__()
            self.layer = DecoderLayer(dim, 4 * dim, activation)

        def forward(self, x):
            return self.layer(x)
""")


def test_a_key_handed_on_from_a_registered_class_is_a_run_time_key():
    code = REGISTERED.replace("{decorator}", "@register()")
    assert covered(code, NEEDLE, "ADP006")


def test_a_key_handed_on_from_an_undecorated_class_is_decided():
    code = REGISTERED.replace("{decorator}\n", "")
    assert not covered(code, NEEDLE, "ADP006")


def test_a_plain_decorator_leaves_the_key_decided():
    code = REGISTERED.replace("{decorator}", "@torch.jit.ignore").replace(
        "import torch.nn as nn\n", "import torch\nimport torch.nn as nn\n")
    assert not covered(code, NEEDLE, "ADP006")


TABLE = textwrap.dedent("""\
    import torch.nn as nn
    from transformers.activations import ACT2FN
    {imports}

    {decorator}
    class FeedForward(nn.Module):
        def __init__(self, dim, hidden, act="relu"):
            super().__init__()
            self.fc1 = nn.Linear(dim, hidden)
            self.act = ACT2FN[act]
            self.fc2 = nn.Linear(hidden, dim)

        def forward(self, x):
            return self.fc2(self.act(self.fc1(x)))


    class Block(nn.Module):
        def __init__(self, dim):
            super().__init__()
            self.ff = FeedForward(dim, 4 * dim)

        def forward(self, x):
            return self.ff(x)
""")


def test_a_registered_class_s_table_key_is_a_run_time_key():
    code = TABLE.replace("{imports}", "from .registry import register_ffn").replace("{decorator}", "@register_ffn")
    assert covered(code, NEEDLE, "ADP006")


def test_an_undecorated_class_s_table_key_is_decided():
    code = TABLE.replace("{imports}\n", "").replace("{decorator}\n", "")
    assert not covered(code, NEEDLE, "ADP006")
