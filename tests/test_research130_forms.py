"""Forms read while labelling blind batch research130 (time-series, tabular and recommender
models of 7 packages new to the corpus).  First sight missed a retrieval-model MLP's two
bias-GELU sites; the fixture below is ours.

- ``Activation = lambda n: getattr(nn, activation)()`` bound in ``__init__`` (``activation`` a
  run-time string): calling the lambda builds the torch.nn class that string names, as
  ``getattr(nn, activation)()`` does in place -- GELU among them.
- ``make_block`` defined inside ``__init__`` returns an ``nn.Sequential`` of ``Linear(...)``
  and ``Activation(...)``, names bound in ``__init__`` before it (``Linear = nn.Linear``): the
  nested function sees its definer's names (a closure), so its Sequential's members are typed
  with them.
- Near-misses stay silent: a lambda whose key is its own parameter, called with ``"ReLU"``; a
  closure whose ``Linear`` is a module of the file that is no Linear; a lambda building a
  fixed ReLU.
"""

from __future__ import annotations

import textwrap

from corpus_forms import edit, finding_at, float64_pair, found, line_of, rules

from adopter.synth import fix_text

RETRIEVAL = textwrap.dedent("""\
    import torch
    from torch import nn


    class Scaled(nn.Module):
        def __init__(self, n):
            super().__init__()
            self.w = nn.Parameter(torch.ones(n))

        def forward(self, x):
            return x * self.w


    class Retriever(nn.Module):
        def __init__(self, d=8, d_block=16, n_blocks=2, activation="GELU", dropout=0.0):
            super().__init__()
            if activation == "scaled":
                Activation = lambda n: Scaled(n)
            else:
                Activation = lambda n: getattr(nn, activation)()
            Linear = nn.Linear

            def make_block(prenorm):
                return nn.Sequential(
                    *([nn.LayerNorm(d)] if prenorm else []),
                    Linear(d, d_block),
                    Activation(d_block),  # block pair
                    nn.Dropout(dropout),
                    Linear(d_block, d),
                )

            self.blocks = nn.ModuleList([make_block(i > 0) for i in range(n_blocks)])
            self.T = nn.Sequential(
                Linear(d, d_block),
                Activation(d_block),  # direct pair
                nn.Dropout(dropout),
                Linear(d_block, d, bias=False),
            )

        def forward(self, x):
            for block in self.blocks:
                x = x + block(x)
            return self.T(x)
""")


def test_a_closure_lambda_of_a_run_time_torch_nn_class_is_a_site():
    assert finding_at(RETRIEVAL, "ADP006", "# direct pair") is not None


def test_a_nested_block_builder_sees_its_definers_names():
    assert finding_at(RETRIEVAL, "ADP006", "# block pair") is not None
    got = sorted(f.line for f in found(RETRIEVAL, "ADP006"))
    assert len(got) == 2


def test_the_fixed_retriever_computes_what_it_did():
    import torch

    fixed = fix_text(RETRIEVAL, "model.py", rules("ADP006")).text
    assert fixed.count("FoldingSequential(") == 2
    for activation in ("GELU", "ReLU", "scaled"):
        a, b = float64_pair(RETRIEVAL, fixed, "Retriever", activation=activation)
        a.eval()
        b.eval()
        x = torch.randn(3, 5, 8, dtype=torch.float64)
        with torch.no_grad():
            torch.testing.assert_close(b(x), a(x), rtol=1e-12, atol=1e-12)


def test_near_misses():
    own_key = edit(RETRIEVAL, "Activation = lambda n: getattr(nn, activation)()",
                   "Activation = lambda name: getattr(nn, name)()")
    own_key = own_key.replace("Activation(d_block)", 'Activation("ReLU")')
    assert found(own_key, "ADP006") == []
    not_linear = edit(RETRIEVAL, "Linear = nn.Linear", "Linear = lambda i, o, bias=True: Scaled(i)")
    assert finding_at(not_linear, "ADP006", "# block pair") is None
    assert finding_at(not_linear, "ADP006", "# direct pair") is None
    relu = edit(RETRIEVAL, "Activation = lambda n: getattr(nn, activation)()",
                "Activation = lambda n: nn.ReLU()")
    assert found(relu, "ADP006") == []
    assert line_of(RETRIEVAL, "# block pair") < line_of(RETRIEVAL, "# direct pair")
